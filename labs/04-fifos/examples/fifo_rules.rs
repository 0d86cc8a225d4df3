//! The rules of FIFOs, tried one at a time: file type `p`, what `open` does
//! with and without `O_NONBLOCK`, and what a write with no reader gets.
//!
//! Run it with `cargo run -q --example fifo_rules`. It works in a private
//! directory under $TMPDIR and removes it at the end.

use std::error::Error;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, open};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, mkfifo, read, write};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("fifo-rules.{}", std::process::id()));
    fs::create_dir(&dir)?;
    let fifo = dir.join("demo");
    let result = try_the_rules(&fifo);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn try_the_rules(fifo: &Path) -> Result<(), Box<dyn Error>> {
    // ANCHOR: mkfifo
    mkfifo(fifo, Mode::S_IRUSR | Mode::S_IWUSR)?;
    let metadata = fs::metadata(fifo)?;
    println!(
        "{:<44} is_fifo: {}, mode {:o}, size {}",
        "mkfifo(demo, 0600)",
        metadata.file_type().is_fifo(),
        metadata.permissions().mode() & 0o777,
        metadata.len()
    );
    // ANCHOR_END: mkfifo

    // ANCHOR: nonblock
    let reader = open_end(fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    println!(
        "{:<44} returned at once",
        "open(O_RDONLY | O_NONBLOCK), no writer"
    );
    let mut buffer = [0u8; 64];
    println!(
        "{:<44} {} bytes: end-of-file",
        "read, no writer",
        read(&reader, &mut buffer)?
    );
    let writer = open_end(fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    println!(
        "{:<44} returned at once",
        "open(O_WRONLY | O_NONBLOCK), a reader"
    );
    drop(writer);
    drop(reader);
    let refused = open_end(fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK);
    println!(
        "{:<44} {}",
        "open(O_WRONLY | O_NONBLOCK), no reader",
        outcome(refused)
    );
    // ANCHOR_END: nonblock

    // ANCHOR: blocking
    // A child opens the write end after 100 ms; the parent's plain open for
    // reading waits until then.
    // SAFETY: single-threaded; the child only sleeps, opens and exits.
    let child = match unsafe { fork() }? {
        ForkResult::Child => {
            std::thread::sleep(Duration::from_millis(100));
            let code = i32::from(open_end(fifo, OFlag::O_WRONLY).is_err());
            // SAFETY: _exit ends the child at once; it closes the write end.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    let started = Instant::now();
    let reader = open_end(fifo, OFlag::O_RDONLY)?;
    let waited = started.elapsed() >= Duration::from_millis(50);
    println!(
        "{:<44} {}",
        "open(O_RDONLY), the writer comes later",
        if waited {
            "waited for the writer"
        } else {
            "returned at once"
        }
    );
    waitpid(child, None)?;
    println!(
        "{:<44} {} bytes: end-of-file",
        "read, the writer has exited",
        read(&reader, &mut buffer)?
    );
    drop(reader);
    // ANCHOR_END: blocking

    // ANCHOR: epipe
    // A write end whose reader has gone: open both ends, close the reader.
    let reader = open_end(fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    let writer = open_end(fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    drop(reader);
    println!(
        "{:<44} {}",
        "write, no reader, SIGPIPE ignored (Rust)",
        outcome(write(&writer, b"hello"))
    );
    // SAFETY: single-threaded; the child resets SIGPIPE, writes, exits.
    let status = match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: SIG_DFL installs no handler.
            let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
            let _ = write(&writer, b"hello");
            // SAFETY: _exit ends the child at once (not reached: SIGPIPE).
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => waitpid(child, None)?,
    };
    let ending = match status {
        WaitStatus::Signaled(_, signal, _) => format!("the child was killed by {signal}"),
        other => format!("{other:?}"),
    };
    println!("{:<44} {ending}", "write, no reader, SIGPIPE default (C)");
    // ANCHOR_END: epipe
    drop(writer);

    fs::remove_file(fifo)?;
    println!("{:<44} exists: {}", "unlink(demo)", fifo.exists());
    Ok(())
}

/// open(2) on the FIFO, always with O_CLOEXEC.
fn open_end(fifo: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    open(fifo, flags | OFlag::O_CLOEXEC, Mode::empty())
}

/// "ok" or the errno's name.
fn outcome<T>(result: nix::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(errno) => format!("{errno:?}: {}", errno.desc()),
    }
}
