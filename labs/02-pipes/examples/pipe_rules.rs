//! The rules of a pipe, tried out one by one in a single process: the
//! close-on-exec flag, reading an empty pipe, end-of-file, writing with no
//! reader left, and how much a pipe holds.
//!
//! Usage (inside `labs/02-pipes`): `cargo run --example pipe_rules`
//!
//! No process is forked: one process may hold both ends of a pipe. The
//! non-blocking flag (`O_NONBLOCK`) turns "this would block for ever" into
//! the error `EAGAIN`, so every experiment finishes.

use std::os::fd::OwnedFd;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::unistd::{pipe, pipe2, read, write};

fn main() -> anyhow::Result<()> {
    // ANCHOR: cloexec
    let (plain, _plain_write) = pipe().context("pipe")?;
    let (cloexec, _cloexec_write) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    show("pipe(): close-on-exec", on_off(has_cloexec(&plain)?));
    show(
        "pipe2(O_CLOEXEC): close-on-exec",
        on_off(has_cloexec(&cloexec)?),
    );
    // ANCHOR_END: cloexec

    // ANCHOR: eof
    let (read_end, write_end) = pipe2(OFlag::O_NONBLOCK).context("pipe2")?;
    let mut buffer = [0u8; 64];
    match read(&read_end, &mut buffer) {
        Err(Errno::EAGAIN) => show("read, pipe empty, a writer open", "EAGAIN"),
        other => bail!("expected EAGAIN, got {other:?}"),
    }
    write(&write_end, b"hello").context("write")?;
    let n = read(&read_end, &mut buffer).context("read")?;
    show("read after writing \"hello\"", format!("{n} bytes"));
    drop(write_end); // closes the only write end
    let n = read(&read_end, &mut buffer).context("read")?;
    show(
        "read, pipe empty, no writer left",
        format!("{n} (end-of-file)"),
    );
    // ANCHOR_END: eof

    // ANCHOR: epipe
    let (read_end, write_end) = pipe().context("pipe")?;
    drop(read_end); // closes the only read end
    match write(&write_end, b"anyone there?") {
        Err(Errno::EPIPE) => show("write, no reader left", "EPIPE"),
        other => bail!("expected EPIPE, got {other:?}"),
    }
    // ANCHOR_END: epipe

    // ANCHOR: capacity
    let (_read_end, write_end) = pipe2(OFlag::O_NONBLOCK).context("pipe2")?;
    show(
        "a new pipe fills up after",
        format!("{} bytes", fill(&write_end)?),
    );
    let (_read_end, write_end) = pipe2(OFlag::O_NONBLOCK).context("pipe2")?;
    let granted = fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(200_000)).context("F_SETPIPE_SZ")?;
    show("F_SETPIPE_SZ(200000) grants", format!("{granted} bytes"));
    show(
        "that pipe fills up after",
        format!("{} bytes", fill(&write_end)?),
    );
    // ANCHOR_END: capacity
    Ok(())
}

/// Whether `fd` has the close-on-exec flag (`fcntl(fd, F_GETFD)`).
fn has_cloexec(fd: &OwnedFd) -> anyhow::Result<bool> {
    let bits = fcntl(fd, FcntlArg::F_GETFD).context("F_GETFD")?;
    Ok(FdFlag::from_bits_truncate(bits).contains(FdFlag::FD_CLOEXEC))
}

/// Prints one finding: what was tried, then what the kernel answered.
fn show(what: &str, answer: impl std::fmt::Display) {
    println!("{what:<36} {answer}");
}

fn on_off(flag: bool) -> &'static str {
    if flag { "on" } else { "off" }
}

// ANCHOR: fill
/// Writes 4096-byte blocks into a non-blocking pipe nobody reads, until the
/// kernel says `EAGAIN` (a blocking write would sleep here); returns how
/// many bytes went in.
fn fill(write_end: &OwnedFd) -> anyhow::Result<usize> {
    let block = [b'x'; 4096];
    let mut total = 0;
    loop {
        match write(write_end, &block) {
            Ok(n) => total += n,
            Err(Errno::EAGAIN) => return Ok(total),
            Err(error) => return Err(error).context("write"),
        }
    }
}
// ANCHOR_END: fill
