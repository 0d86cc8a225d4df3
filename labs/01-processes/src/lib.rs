//! # Lab 01: processes — fork, exec, wait
//!
//! Write the five functions below, in order; each has a `TODO(N)` that
//! matches task N in the book chapter `book/src/01-processes.md` and the
//! grading suite `tests/01-processes.rs`. Run `cargo test` in this directory
//! to grade your work; `cargo run -- --help` shows the command you are
//! building.
//!
//! The command line in `cli.rs` is given: it calls these functions and
//! prints what they return. You may add private helper functions here.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::Write;
use std::path::Path;

use nix::sys::wait::WaitStatus;

pub mod cli;

// ANCHOR: describe_status
/// Describes how a process ended, in the words the lab prints:
///
/// | status                              | description                           |
/// |-------------------------------------|---------------------------------------|
/// | `Exited(_, 3)`                      | `exited with status 3`                |
/// | `Signaled(_, SIGTERM, false)`       | `killed by signal SIGTERM`            |
/// | `Signaled(_, SIGSEGV, true)`        | `killed by signal SIGSEGV (core dumped)` |
/// | `Stopped(_, SIGSTOP)`               | `stopped by signal SIGSTOP`           |
/// | anything else                       | its `Debug` form                      |
///
/// These are the cases the C macros `WIFEXITED`/`WEXITSTATUS`,
/// `WIFSIGNALED`/`WTERMSIG`/`WCOREDUMP` and `WIFSTOPPED`/`WSTOPSIG` take
/// apart; nix's [`WaitStatus`] has already done it for you.
pub fn describe_status(status: WaitStatus) -> String {
    // TODO(1): match on the status; `Signal::as_str()` gives "SIGTERM".
    todo!("TODO(1): describe_status")
}
// ANCHOR_END: describe_status

// ANCHOR: run_program
/// Runs `argv[0]` with arguments `argv[1..]` in a child process and returns
/// how the child ended.
///
/// * `fork()` (unsafe in nix: only async-signal-safe calls are allowed in
///   the child of a multi-threaded parent, so prepare everything — the
///   `CString`s — *before* forking);
/// * in the child, `execvp()` searches `PATH` like a shell. It returns only
///   on failure: then write `processes: cannot run PROGRAM: ERRNO` on stderr
///   and leave with `_exit(127)`, the status shells use for "command not
///   found" (never return into the parent's code from the child). The
///   allocation-free way: build the message up to `PROGRAM: ` before
///   `fork`, and in the child write it and the errno's text to descriptor 2
///   with `write(2)`. (`eprintln!` takes a lock and may allocate; it is
///   tolerated here only because this program has a single thread.)
/// * in the parent, `waitpid(child, None)` until the child has ended,
///   calling it again if it fails with `EINTR`.
///
/// Errors: an argument containing a NUL byte, or `fork`/`waitpid` failing.
pub fn run_program(argv: &[String]) -> anyhow::Result<WaitStatus> {
    // TODO(2): fork, execvp in the child, waitpid in the parent.
    todo!("TODO(2): run_program")
}
// ANCHOR_END: run_program

// ANCHOR: fan_out
/// Starts `n` children that all run at the same time; child `k` (counting
/// from 1) does nothing but exit with status `k`. Then reaps every one of
/// them and returns their statuses in creation order.
///
/// Every child must be waited for: a child that has exited but was never
/// waited for stays in the process table as a *zombie* until its parent
/// waits or exits. The grader checks that none is left.
///
/// Errors: `fork` or `waitpid` failing (reap the children already started
/// before returning the error).
pub fn fan_out(n: u8) -> anyhow::Result<Vec<WaitStatus>> {
    // TODO(3): fork n children first, then waitpid for each pid, in order.
    todo!("TODO(3): fan_out")
}
// ANCHOR_END: fan_out

// ANCHOR: greet
/// Parent and child both write to `out`, a *buffered* writer that the
/// caller later flushes:
///
/// 1. the parent writes the line `parent: about to fork`;
/// 2. it forks; the child writes `child: hello, I exit with status STATUS`
///    (`status`, e.g. `7`), flushes `out` and leaves with `_exit(status)`;
/// 3. the parent waits for the child and returns its status (the caller
///    then writes `parent: the child exited with status 7`).
///
/// The three lines must appear once each, in that order. `fork()` copies
/// the whole address space, *including bytes still sitting in `out`'s
/// buffer*: think about what the child's flush writes.
pub fn greet<W: Write>(out: &mut W, status: u8) -> anyhow::Result<WaitStatus> {
    // TODO(4): write, make sure nothing is left buffered, fork, …
    todo!("TODO(4): greet")
}
// ANCHOR_END: greet

// ANCHOR: exec_with_fds
/// Shows which descriptors survive `exec`:
///
/// 1. open `file` read-only **with** `O_CLOEXEC` (it gets descriptor 3),
///    then open it again **without** it (descriptor 4) — use
///    `nix::fcntl::open`: `std::fs::File` always sets `O_CLOEXEC`;
/// 2. fork; in the child, `execv()` this very program
///    (`std::env::current_exe()`) with the single argument `show-fds`, which
///    lists the descriptors it was born with; if exec fails, `_exit(127)`;
/// 3. the parent closes both descriptors, waits for the child and returns
///    its status.
///
/// Only descriptor 4 should be listed: the kernel closes close-on-exec
/// descriptors during a successful exec, and keeps every other one open.
///
/// Errors: `file` cannot be opened (say which file), `fork`/`waitpid` fail.
pub fn exec_with_fds(file: &Path) -> anyhow::Result<WaitStatus> {
    // TODO(5): open twice, fork, execv show-fds, wait.
    todo!("TODO(5): exec_with_fds")
}
// ANCHOR_END: exec_with_fds
