//! # Lab 02: pipes (管道)
//!
//! Write the five functions below, in order; each has a `TODO(N)` that
//! matches task N in the book chapter `book/src/02-pipes.md` and the grading
//! suite `tests/02-pipes.rs`. Run `cargo test` in this directory to grade
//! your work; `cargo run -- --help` shows the command you are building.
//!
//! The command line in `cli.rs` is given: it calls these functions and
//! prints what they return. You may add private helper functions here.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::{self, Write};

use nix::sys::wait::WaitStatus;

pub mod cli;

// ANCHOR: pipe_limits_type
/// What the kernel says about pipes on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeLimits {
    /// The largest write that is guaranteed to be atomic (`PIPE_BUF`).
    pub pipe_buf: usize,
    /// How many bytes a pipe holds before a writer blocks.
    pub capacity: usize,
}
// ANCHOR_END: pipe_limits_type

// ANCHOR: tally_type
/// What [`gather_records`] found in the pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// How many whole records arrived (bytes received / record size).
    pub records: usize,
    /// How many of them were intact: one writer's letter throughout.
    pub intact: usize,
    /// Intact records per writer: index 0 is writer 1 (letter `a`).
    pub intact_per_writer: Vec<usize>,
}
// ANCHOR_END: tally_type

// ANCHOR: pipe_limits
/// Creates a pipe and asks the kernel for its limits:
///
/// * `PIPE_BUF` with `fpathconf(fd, _PC_PIPE_BUF)` (nix:
///   `unistd::fpathconf(&fd, PathconfVar::PIPE_BUF)`): POSIX only promises
///   it is at least 512; Linux says 4096;
/// * the capacity with `fcntl(fd, F_GETPIPE_SZ)` (nix:
///   `fcntl(&fd, FcntlArg::F_GETPIPE_SZ)`): by default 16 pages, 65536
///   bytes on a machine with 4 KiB pages.
///
/// With `capacity`, first ask for a pipe that holds at least that many
/// bytes, `fcntl(fd, F_SETPIPE_SZ, capacity)` (nix:
/// `FcntlArg::F_SETPIPE_SZ(n)`), and report what `F_GETPIPE_SZ` says
/// afterwards: the kernel rounds the request up (today to a power-of-two
/// number of pages). An ordinary user may not ask for more than
/// `/proc/sys/fs/pipe-max-size` (`EPERM`).
///
/// Both ends are closed when the function returns (dropping an `OwnedFd`
/// closes it).
pub fn pipe_limits(capacity: Option<usize>) -> anyhow::Result<PipeLimits> {
    // TODO(1): pipe(), maybe F_SETPIPE_SZ, then fpathconf and F_GETPIPE_SZ.
    todo!("TODO(1): pipe_limits")
}
// ANCHOR_END: pipe_limits

// ANCHOR: count_in_child
/// Sends `input` to a child process through a pipe; the child counts it.
///
/// * `pipe()` gives two descriptors: `fds[0]` (nix: the first `OwnedFd`) is
///   the read end, `fds[1]` the write end; then `fork()`;
/// * the **child** closes the write end, reads the read end until `read`
///   returns 0 (end-of-file), prints `child: read N bytes in M lines`
///   (M = number of `\n`), flushes, and leaves with `_exit(0)`;
/// * the **parent** closes the read end, writes all of `input`, closes the
///   write end, and waits for the child, returning its status.
///
/// End-of-file arrives only once *every* copy of the write end is closed,
/// the child's own copy included. The input may be far larger than the
/// pipe: the writer then blocks until the reader catches up.
pub fn count_in_child(input: &[u8]) -> anyhow::Result<WaitStatus> {
    // TODO(2): pipe, fork, close the ends each side does not use.
    todo!("TODO(2): count_in_child")
}
// ANCHOR_END: count_in_child

// ANCHOR: write_numbers
/// Writes the numbers 1 to `count` to `out`, one per line, then flushes.
///
/// `out` is usually a pipe to another program (`pipes numbers 1000000 |
/// head -n 3`). When the reader exits, the next write fails with `EPIPE`
/// (`io::ErrorKind::BrokenPipe`): Rust programs ignore `SIGPIPE`, so instead
/// of being killed by it they get this error. That is not a failure here:
/// return `Ok(())` and stop quietly, as `yes` or `seq` would. Return any
/// other error.
pub fn write_numbers<W: Write>(count: u64, out: &mut W) -> io::Result<()> {
    // TODO(3): write each line; treat BrokenPipe as the end.
    todo!("TODO(3): write_numbers")
}
// ANCHOR_END: write_numbers

// ANCHOR: pipeline
/// Runs `left | right`: `left`'s standard output feeds `right`'s standard
/// input, as the shell does for `ls | wc -l`.
///
/// 1. `pipe()`;
/// 2. fork the left child: `dup2` the write end onto descriptor 1, close
///    both pipe descriptors, `execvp(left)`;
/// 3. fork the right child: `dup2` the read end onto descriptor 0, close
///    both, `execvp(right)`;
/// 4. the parent closes both ends and waits for both children.
///
/// Before `execvp`, each child puts `SIGPIPE` back to its default action
/// (`signal(SIGPIPE, SIG_DFL)`): Rust ignored it at start-up, and an ignored
/// signal stays ignored across exec. Then `seq 1 1000000 | head -n 1` ends
/// the way it does in a shell — `seq` is killed quietly when `head` leaves —
/// instead of `seq` complaining about a write error.
///
/// If `execvp` fails, the child prints `pipes: cannot run PROGRAM: ERRNO`
/// on stderr and leaves with `_exit(127)`. Returns the statuses of (left,
/// right).
pub fn pipeline(left: &[String], right: &[String]) -> anyhow::Result<(WaitStatus, WaitStatus)> {
    // TODO(4): pipe, two forks, dup2, execvp, close, wait for both.
    todo!("TODO(4): pipeline")
}
// ANCHOR_END: pipeline

// ANCHOR: gather_records
/// `writers` children write into one pipe at the same time; the parent
/// reads everything and checks whether any record was torn apart.
///
/// Writer `w` (1-based) writes `records` records, each with **one**
/// `write(2)` call of `size` bytes: its letter (`a` for writer 1, `b` for
/// writer 2, …) `size - 1` times, then `\n`. Then it leaves with `_exit(0)`.
///
/// The parent closes its write end, reads until end-of-file, cuts the bytes
/// into `size`-byte records, counts those made of one letter and `\n`, and
/// only then reaps the writers. Writes of up to `PIPE_BUF` bytes are atomic:
/// they never interleave with other writers' data. Larger ones may.
///
/// Together the writers may send far more than the pipe holds: a writer
/// blocks until the parent reads, so reading comes before waiting.
pub fn gather_records(writers: u8, size: usize, records: u32) -> anyhow::Result<Tally> {
    // TODO(5): pipe, fork the writers, read to EOF, tally, reap.
    todo!("TODO(5): gather_records")
}
// ANCHOR_END: gather_records
