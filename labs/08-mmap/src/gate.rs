//! A starting gate for a parent and its children, made of two pipes
//! (given: you do not need to change this file).
//!
//! Each child, once ready, reports that it has arrived and then waits; the
//! parent waits until every child it forked has arrived, then opens the
//! gate, and they all go on at once. Nobody sleeps for a guessed time:
//! chapter 02's rules do the work. A child writes one byte into the
//! *arrived* pipe and reads the *go* pipe until end-of-file; the parent
//! reads one byte per child from *arrived*, then closes its write end of
//! *go*, which is the last one (each child closed its own copy), so every
//! child's read returns end-of-file together.
//!
//! ```text
//!  child 1 ── 1 byte ──▶ ┐
//!  child 2 ── 1 byte ──▶ ├─ arrived ──▶ parent: N bytes? close(go) ──▶ every child reads EOF
//!  child N ── 1 byte ──▶ ┘
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

// ANCHOR: gate
/// The two pipes of a gate. Make it **before** forking, so that every child
/// inherits it; then each child calls [`Gate::pass`] and the parent
/// [`Gate::open`].
#[derive(Debug)]
pub struct Gate {
    arrived_read: OwnedFd,
    arrived_write: OwnedFd,
    go_read: OwnedFd,
    go_write: OwnedFd,
}

impl Gate {
    /// Two pipes, close-on-exec.
    pub fn new() -> nix::Result<Gate> {
        let (arrived_read, arrived_write) = pipe2(OFlag::O_CLOEXEC)?;
        let (go_read, go_write) = pipe2(OFlag::O_CLOEXEC)?;
        Ok(Gate {
            arrived_read,
            arrived_write,
            go_read,
            go_write,
        })
    }

    /// In a child: closes the ends that belong to the parent, says "arrived"
    /// (one byte), then waits until the parent opens the gate (end-of-file
    /// on *go*). An error means the parent is gone or the gate is broken.
    pub fn pass(self) -> io::Result<()> {
        let Gate {
            arrived_read,
            arrived_write,
            go_read,
            go_write,
        } = self;
        drop((arrived_read, go_write));
        File::from(arrived_write).write_all(b"!")?;
        let mut rest = Vec::new();
        File::from(go_read).read_to_end(&mut rest)?;
        Ok(())
    }

    /// In the parent, after forking the `children` children that will each
    /// call [`Gate::pass`]: waits until all of them have arrived, then lets
    /// them all through. If a child ends before it arrives, the gate still
    /// opens for the others, and the error says how many arrived.
    pub fn open(self, children: usize) -> io::Result<()> {
        let Gate {
            arrived_read,
            arrived_write,
            go_read,
            go_write,
        } = self;
        // Without these, neither end-of-file below nor the children's could come.
        drop((arrived_write, go_read));
        let arrived = count_arrivals(File::from(arrived_read), children);
        drop(go_write);
        match arrived? {
            n if n == children => Ok(()),
            n => Err(io::Error::other(format!(
                "only {n} of {children} children reached the gate"
            ))),
        }
    }
}
// ANCHOR_END: gate

/// Reads one byte per arrival, up to `expected`, or until end-of-file
/// (every child has arrived or died, and none holds the write end open).
fn count_arrivals(mut arrived: File, expected: usize) -> io::Result<usize> {
    let mut seen = 0;
    let mut buf = [0u8; 64];
    while seen < expected {
        let wanted = (expected - seen).min(buf.len());
        match arrived.read(&mut buf[..wanted]) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(seen)
}
