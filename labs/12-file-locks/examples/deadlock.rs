//! Two processes, each holding one range of a file and asking for the
//! other's with a blocking request: with process-associated locks the
//! kernel sees the circle and refuses one request with `EDEADLK`; with
//! open file description locks it does not look, and both wait for ever
//! (until this program kills them).
//!
//! Usage (inside `labs/12-file-locks`): `cargo run --example deadlock`

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, pipe};

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("deadlock-{}", getpid()));
    fs::create_dir(&dir).context("mkdir")?;
    let path = dir.join("data.txt");
    fs::write(&path, b"").context("create the file")?;
    let result = circle(&path, libc::F_SETLKW, "process-associated locks (F_SETLKW)")
        .and_then(|()| circle(&path, libc::F_OFD_SETLKW, "open file description locks"));
    fs::remove_dir_all(&dir).context("remove the directory")?;
    result
}

/// A blocking write lock on `len` bytes from `start`, with `cmd`.
fn lock(file: &File, cmd: libc::c_int, start: i64, len: i64) -> Result<(), Errno> {
    // SAFETY: plain integers, and padding on some platforms: zeros are valid.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = start;
    lock.l_len = len;
    // SAFETY: `lock` is valid for the whole call.
    Errno::result(unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut lock) }).map(drop)
}

// ANCHOR: circle
/// Child `i` (0 or 1) locks bytes `10 i` to `10 i + 9`, says so, waits for
/// the word to go on, then asks for the other child's ten bytes.
fn circle(path: &Path, cmd: libc::c_int, name: &str) -> anyhow::Result<()> {
    println!("{name}:");
    let (go_read, go_write) = pipe().context("pipe")?;
    let mut go_write = Some(go_write);
    let mut children = Vec::new();
    for i in 0..2i64 {
        let (ready_read, ready_write) = pipe().context("pipe")?;
        // SAFETY: one thread; the child runs `child` and leaves with _exit.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                // A child that kept a write end would never see the word.
                drop(go_write.take());
                drop(ready_read);
                let code = child(path, cmd, i, ready_write, &go_read);
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(ready_write);
                // End-of-file: the child holds its first range.
                File::from(ready_read).read(&mut [0]).context("wait")?;
                children.push(child);
            }
        }
    }
    // Both hold their first range: let them ask for the second.
    drop(go_write);
    drop(go_read);
    let outcome = watch(path, &children);
    // Children still waiting for each other are killed, and every child
    // is reaped (one already reaped: ECHILD, fine).
    for child in &children {
        let _ = kill(*child, Signal::SIGKILL);
        let _ = waitpid(*child, None);
    }
    outcome
}

/// A child: its first range, then the other's, blocking.
fn child(path: &Path, cmd: libc::c_int, i: i64, ready: OwnedFd, go: &OwnedFd) -> i32 {
    let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
        return 2;
    };
    if lock(&file, cmd, 10 * i, 10).is_err() {
        return 2;
    }
    drop(ready);
    // Wait for the parent's word: end-of-file on `go`.
    let _ = nix::unistd::read(go, &mut [0]);
    match lock(&file, cmd, 10 * (1 - i), 10) {
        Ok(()) => {
            println!("  child {i}: got the other range too");
            0
        }
        Err(errno) => {
            println!("  child {i}: asking for the other range: {errno}");
            1
        }
    }
}
// ANCHOR_END: circle

// ANCHOR: watch
/// Waits (at most 2 s) until one child has ended (then reaps both), or
/// until `/proc/locks` shows both asleep, each waiting for a lock (a `->`
/// line); says which.
fn watch(path: &Path, children: &[Pid]) -> anyhow::Result<()> {
    let inode = fs::metadata(path).context("stat")?;
    let suffix = format!(":{} ", std::os::unix::fs::MetadataExt::ino(&inode));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        for child in children {
            let status = waitpid(*child, Some(WaitPidFlag::WNOHANG))?;
            if let WaitStatus::Exited(..) = status {
                // The other one gets its second range now, and ends too.
                for other in children.iter().filter(|other| *other != child) {
                    waitpid(*other, None)?;
                }
                println!("  both ended: the kernel broke the circle");
                return Ok(());
            }
        }
        let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
        let waiting = locks
            .lines()
            .filter(|line| line.contains("->") && line.contains(&suffix))
            .count();
        if waiting == 2 {
            println!(
                "  /proc/locks: both children wait, each for the other: nobody will ever go on"
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("neither ended nor both waiting after 2 s");
        }
        thread::sleep(Duration::from_millis(5));
    }
}
// ANCHOR_END: watch
