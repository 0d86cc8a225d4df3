//! File locks, one fact per line: what each call answers, checked on a
//! small file in a temporary directory. Calls go straight to libc, as a C
//! program would make them; the lab does the same through nix.
//!
//! Usage (inside `labs/12-file-locks`): `cargo run --example lock_tour`

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, getpid};

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("lock-tour-{}", getpid()));
    fs::create_dir(&dir).context("mkdir")?;
    let path = dir.join("data.txt");
    fs::write(&path, b"0123456789").context("write the file")?;
    let result = tour(&path);
    fs::remove_dir_all(&dir).context("remove the directory")?;
    result
}

// ANCHOR: setlk
/// `fcntl(fd, cmd, &lock)` with a `struct flock` for `len` bytes from
/// `start` (`l_whence = SEEK_SET`, `l_pid = 0`): the errno, if it failed.
fn fcntl_lock(fd: RawFd, cmd: libc::c_int, l_type: libc::c_int, start: i64, len: i64) -> String {
    // SAFETY: plain integers, and padding on some platforms: zeros are valid.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = start;
    lock.l_len = len;
    // SAFETY: `lock` is a valid struct flock for the whole call.
    outcome(unsafe { libc::fcntl(fd, cmd, &mut lock) })
}
// ANCHOR_END: setlk

/// `flock(fd, operation)`: the errno, if it failed.
fn flock(fd: RawFd, operation: libc::c_int) -> String {
    // SAFETY: no pointers.
    outcome(unsafe { libc::flock(fd, operation) })
}

/// "granted", or the errno's name and text.
fn outcome(result: libc::c_int) -> String {
    match Errno::result(result) {
        Ok(_) => "granted".to_string(),
        Err(errno) => errno.to_string(),
    }
}

fn yes(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn granted(flag: bool) -> &'static str {
    if flag { "granted" } else { "refused" }
}

fn show(what: &str, answer: impl std::fmt::Display) {
    println!("{what:<58} {answer}");
}

/// The `lock:` lines of `/proc/self/fdinfo/FD`: this process's locks on
/// the file behind `fd`, as the kernel lists them.
fn own_locks(fd: RawFd) -> String {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    let locks: Vec<String> = info
        .lines()
        .filter_map(|line| line.strip_prefix("lock:"))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            // 1: POSIX ADVISORY WRITE PID DEV:INODE START END
            format!("{} {} {}-{}", words[1], words[3], words[6], words[7])
        })
        .collect();
    locks.join(", ")
}

/// Runs `child` in a child process, whose result becomes its exit status
/// (0 for `true`), and returns that status.
fn in_child(child: impl FnOnce() -> bool) -> anyhow::Result<bool> {
    // SAFETY: one thread here; the child runs `child` and leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let code = if child() { 0 } else { 1 };
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            Ok(waitpid(child, None).context("waitpid")? == WaitStatus::Exited(child, 0))
        }
    }
}

fn tour(path: &Path) -> anyhow::Result<()> {
    // ANCHOR: modes
    let read_only = File::open(path).context("open")?;
    let ro = read_only.as_raw_fd();
    show(
        "O_RDONLY: F_SETLK write lock",
        fcntl_lock(ro, libc::F_SETLK, libc::F_WRLCK, 0, 0),
    );
    show(
        "O_RDONLY: F_SETLK read lock",
        fcntl_lock(ro, libc::F_SETLK, libc::F_RDLCK, 0, 0),
    );
    fcntl_lock(ro, libc::F_SETLK, libc::F_UNLCK, 0, 0);
    show("O_RDONLY: flock(LOCK_EX)", flock(ro, libc::LOCK_EX));
    let beside = in_child(|| {
        let Ok(other) = OpenOptions::new().write(true).open(path) else {
            return false;
        };
        fcntl_lock(other.as_raw_fd(), libc::F_SETLK, libc::F_WRLCK, 0, 0) == "granted"
    })?;
    show(
        "child: F_SETLK write lock while we hold LOCK_EX",
        granted(beside),
    );
    flock(ro, libc::LOCK_UN);
    drop(read_only);
    // ANCHOR_END: modes

    // ANCHOR: ranges
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .context("open")?;
    let fd = file.as_raw_fd();
    show(
        "bytes 1000-1009 of a 10-byte file",
        fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 1000, 10),
    );
    show(
        "2 bytes from i64::MAX (the largest offset)",
        fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, i64::MAX, 2),
    );
    fcntl_lock(fd, libc::F_SETLK, libc::F_UNLCK, 0, 0);
    fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 0, 100);
    fcntl_lock(fd, libc::F_SETLK, libc::F_UNLCK, 40, 20);
    show("write-lock 0-99, unlock 40-59: we hold", own_locks(fd));
    fcntl_lock(fd, libc::F_SETLK, libc::F_RDLCK, 0, 40);
    show("then a read lock on 0-39: we hold", own_locks(fd));
    fcntl_lock(fd, libc::F_SETLK, libc::F_UNLCK, 0, 0);
    // ANCHOR_END: ranges

    // ANCHOR: getlk
    fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 0, 5);
    let parent = getpid().as_raw();
    let named_parent = in_child(|| {
        // SAFETY: zeros are a valid struct flock.
        let mut ask: libc::flock = unsafe { std::mem::zeroed() };
        ask.l_type = libc::F_WRLCK as libc::c_short;
        ask.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: `ask` is valid for the call.
        let ok = unsafe { libc::fcntl(fd, libc::F_GETLK, &mut ask) } == 0;
        ok && ask.l_pid == parent && ask.l_start == 0 && ask.l_len == 5
    })?;
    show(
        "child: F_GETLK names the parent (pid, bytes 0-4)",
        yes(named_parent),
    );
    fcntl_lock(fd, libc::F_SETLK, libc::F_UNLCK, 0, 0);
    show(
        "F_OFD_SETLK, then F_SETLK, same process and fd",
        format!(
            "{}, then {}",
            fcntl_lock(fd, libc::F_OFD_SETLK, libc::F_WRLCK, 0, 0),
            fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 0, 0)
        ),
    );
    let no_pid = in_child(|| {
        // SAFETY: zeros are a valid struct flock.
        let mut ask: libc::flock = unsafe { std::mem::zeroed() };
        ask.l_type = libc::F_WRLCK as libc::c_short;
        ask.l_whence = libc::SEEK_SET as libc::c_short;
        // A new open: a new open file description, whose lock would conflict.
        let Ok(other) = File::open(path) else {
            return false;
        };
        // SAFETY: `ask` is valid for the call.
        let ok = unsafe { libc::fcntl(other.as_raw_fd(), libc::F_OFD_GETLK, &mut ask) } == 0;
        ok && ask.l_pid == -1
    })?;
    show(
        "child: F_OFD_GETLK on an OFD lock gives l_pid -1",
        yes(no_pid),
    );
    fcntl_lock(fd, libc::F_OFD_SETLK, libc::F_UNLCK, 0, 0);
    // SAFETY: zeros are a valid struct flock.
    let mut with_pid: libc::flock = unsafe { std::mem::zeroed() };
    with_pid.l_type = libc::F_WRLCK as libc::c_short;
    with_pid.l_pid = parent;
    // SAFETY: `with_pid` is valid for the call.
    let refused = outcome(unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &mut with_pid) });
    show("F_OFD_SETLK with l_pid = getpid()", refused);
    // ANCHOR_END: getlk

    // ANCHOR: advisory
    fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 0, 0);
    let wrote = in_child(|| {
        OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut other| other.write_all(b"written without asking\n"))
            .is_ok()
    })?;
    show(
        "child writes, never asking, while we hold it all",
        granted(wrote),
    );
    // ANCHOR_END: advisory
    Ok(())
}
