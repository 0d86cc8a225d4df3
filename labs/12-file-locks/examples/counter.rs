//! A counter kept in a file, as text, that several processes increment:
//! read it, add one, write it back. Without a lock, two processes read the
//! same value and one increment is lost (a lost update, 丢失更新); with a
//! write lock around the three steps, none is. Then the case that needs no
//! lock: appends through `O_APPEND`, where the kernel finds the end and
//! writes there in one step.
//!
//! Usage (inside `labs/12-file-locks`): `cargo run --example counter`
//! (add `--release` to see more updates lost: the window is narrower, but
//! the processes run more truly at once).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, getpid};

const PROCESSES: usize = 4;
const TIMES: usize = 2000;

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("counter-{}", getpid()));
    fs::create_dir(&dir).context("mkdir")?;
    let result = run_all(&dir);
    fs::remove_dir_all(&dir).context("remove the directory")?;
    result
}

fn run_all(dir: &Path) -> anyhow::Result<()> {
    let counter = dir.join("counter");
    for locked in [false, true] {
        fs::write(&counter, format!("{:>20}\n", 0)).context("write the counter")?;
        in_children(|| increments(&counter, locked))?;
        let value = fs::read_to_string(&counter).context("read the counter")?;
        println!(
            "{:<40} expected {}, the file says {}",
            if locked {
                "read, add, write under F_SETLKW:"
            } else {
                "read, add, write with no lock:"
            },
            PROCESSES * TIMES,
            value.trim()
        );
    }
    let log = dir.join("log");
    in_children(|| appends(&log))?;
    let text = fs::read_to_string(&log).context("read the log")?;
    let whole = text.lines().filter(|line| *line == LINE.trim_end()).count();
    println!(
        "{:<40} expected {} whole lines, found {whole} of {}",
        "O_APPEND writes with no lock:",
        PROCESSES * TIMES,
        text.lines().count()
    );
    Ok(())
}

/// Runs `work` in [`PROCESSES`] children at once and reaps them.
fn in_children(work: impl Fn() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        // SAFETY: one thread; the child runs `work` and leaves with _exit.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                let code = if work().is_ok() { 0 } else { 1 };
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => children.push(child),
        }
    }
    for child in children {
        waitpid(child, None).context("waitpid")?;
    }
    Ok(())
}

// ANCHOR: increments
/// Adds 1 to the counter [`TIMES`] times: read the 21 bytes at offset 0,
/// add one, write them back; around the three, a write lock on the whole
/// file if `locked` (`F_SETLKW`, released with `F_UNLCK`).
fn increments(path: &Path, locked: bool) -> anyhow::Result<()> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    for _ in 0..TIMES {
        if locked {
            whole_file(&file, libc::F_WRLCK)?;
        }
        let mut text = [0u8; 21];
        file.read_exact_at(&mut text, 0)?;
        let value: u64 = std::str::from_utf8(&text)?.trim().parse()?;
        file.write_all_at(format!("{:>20}\n", value + 1).as_bytes(), 0)?;
        if locked {
            whole_file(&file, libc::F_UNLCK)?;
        }
    }
    Ok(())
}
// ANCHOR_END: increments

/// `fcntl(F_SETLKW)` on the whole file with `l_type`.
fn whole_file(file: &File, l_type: libc::c_int) -> anyhow::Result<()> {
    // SAFETY: plain integers (and padding): zeros are a valid struct flock.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: `lock` is valid for the whole call.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &mut lock) };
    nix::errno::Errno::result(result).context("F_SETLKW")?;
    Ok(())
}

const LINE: &str = "one line, written by one write() through O_APPEND\n";

// ANCHOR: appends
/// Appends [`LINE`] [`TIMES`] times, one `write` each, through `O_APPEND`:
/// the kernel moves the offset to the end and writes, as one step.
fn appends(path: &Path) -> anyhow::Result<()> {
    let mut log = OpenOptions::new().append(true).create(true).open(path)?;
    for _ in 0..TIMES {
        log.write_all(LINE.as_bytes())?;
    }
    Ok(())
}
// ANCHOR_END: appends
