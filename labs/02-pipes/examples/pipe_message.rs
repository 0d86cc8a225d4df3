//! A child sends one message to its parent through a pipe (管道); the parent
//! reads until end-of-file, prints what arrived, then reaps the child.
//!
//! Usage (inside `labs/02-pipes`): `cargo run --example pipe_message`
//!
//! The data flows from child to parent here; the lab's task 2 sends it the
//! other way.

use std::os::fd::OwnedFd;

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe, read, write};

const MESSAGE: &[u8] = b"results from the child: 3 files, 42 lines";

fn main() -> anyhow::Result<()> {
    // ANCHOR: pipe_fork
    // read_end is fds[0], write_end is fds[1]. Neither has close-on-exec.
    let (read_end, write_end) = pipe().context("pipe")?;

    // SAFETY: one thread only; the child uses write(2), close(2) and _exit(2).
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(read_end); // the child only writes: close its read end
            let status = match write_all(&write_end, MESSAGE) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: leave at once; _exit also closes write_end.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => {
            drop(write_end); // the parent only reads: close its write end
            let received = read_to_eof(&read_end).context("read from the pipe")?;
            println!(
                "parent: received {} bytes: {}",
                received.len(),
                String::from_utf8_lossy(&received)
            );
            // Read first, reap second: see "Pitfalls".
            match waitpid(child, None).context("waitpid")? {
                WaitStatus::Exited(_, code) => {
                    println!("parent: the child exited with status {code}")
                }
                other => println!("parent: the child ended in another way: {other:?}"),
            }
        }
    }
    Ok(())
    // ANCHOR_END: pipe_fork
}

// ANCHOR: write_all
/// Writes all of `bytes`: `write` may accept fewer bytes than it was given.
fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue, // interrupted by a signal: try again
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
// ANCHOR_END: write_all

// ANCHOR: read_to_eof
/// Reads until `read` returns 0, which on a pipe means: empty, and every
/// write end closed, in every process.
fn read_to_eof(fd: &OwnedFd) -> nix::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match read(fd, &mut buffer) {
            Ok(0) => return Ok(data), // end-of-file
            Ok(n) => data.extend_from_slice(&buffer[..n]),
            Err(Errno::EINTR) => continue,
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: read_to_eof
