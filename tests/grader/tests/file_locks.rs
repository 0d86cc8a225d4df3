//! The grader's own tests of its file-lock helpers: what `/proc/locks` and
//! `/proc/PID/fdinfo` say about locks this test process takes itself, a
//! kill that waits for its process to be gone, and a wait for a program
//! asleep in one of several calls.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use grader::{Cmd, FileLock, LockClass, Sandbox, file_locks_on, kill_and_wait, locks_held_by};

/// A write record lock (`cmd`: `F_SETLK` or `F_OFD_SETLK`) on `len`
/// bytes from `start`.
fn record_lock(file: &File, cmd: libc::c_int, start: i64, len: i64) {
    // SAFETY: plain integers (and padding): zeros are a valid struct flock.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = start;
    lock.l_len = len;
    // SAFETY: `lock` is valid for the whole call.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut lock) };
    assert_eq!(result, 0, "fcntl: {}", std::io::Error::last_os_error());
}

#[test]
fn the_locks_of_this_process_are_read_from_fdinfo_and_proc_locks() {
    let sandbox = Sandbox::new();
    let path = sandbox.write_file("data.txt", "0123456789");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    record_lock(&file, libc::F_OFD_SETLK, 10, 0);
    let ofd = FileLock {
        class: LockClass::Ofd,
        write: true,
        pid: -1,
        start: 10,
        end: None,
        waiting: false,
    };
    assert_eq!(locks_held_by(std::process::id(), &path), vec![ofd.clone()]);
    assert!(file_locks_on(&path).contains(&ofd));
    // A process lock too: both show, through the one descriptor.
    record_lock(&file, libc::F_SETLK, 0, 5);
    let posix = FileLock {
        class: LockClass::Posix,
        write: true,
        pid: std::process::id() as i32,
        start: 0,
        end: Some(4),
        waiting: false,
    };
    let held = locks_held_by(std::process::id(), &path);
    assert!(held.contains(&posix) && held.contains(&ofd), "{held:?}");
    drop(file);
    assert!(locks_held_by(std::process::id(), &path).is_empty());
    let other = sandbox.write_file("other.txt", "");
    assert!(file_locks_on(&other).is_empty());
    assert!(locks_held_by(std::process::id(), &sandbox.path("missing")).is_empty());
}

#[test]
fn kill_and_wait_returns_once_the_process_has_ended() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    kill_and_wait(child.id(), libc::SIGKILL, Duration::from_secs(5)).unwrap();
    // It has ended (a zombie until reaped): waiting for it is immediate.
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // A process that no longer exists is fine too.
    kill_and_wait(child.id(), libc::SIGKILL, Duration::from_secs(1)).unwrap();
}

#[test]
fn kill_and_wait_says_when_the_process_outlives_the_wait() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    // Signal 0 checks the process exists, and ends nothing.
    let outcome = kill_and_wait(child.id(), 0, Duration::from_millis(50));
    child.kill().unwrap();
    child.wait().unwrap();
    let message = outcome.unwrap_err();
    assert!(message.contains("still running"), "{message}");
}

#[test]
fn a_program_asleep_in_one_of_several_calls_is_seen() {
    // A shell that reads from a FIFO it holds open both ways waits in
    // read(2) for ever.
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let fifo = fifo.to_str().unwrap().to_string();
    let mut running = Cmd::new("sh", sandbox)
        .args(["-c", r#"exec 3<>"$1"; read line <&3"#, "sh", &fifo])
        .start();
    running
        .wait_until_blocked_in_one_of(&[libc::SYS_flock, libc::SYS_read], Duration::from_secs(5));
    drop(running.kill());
}
