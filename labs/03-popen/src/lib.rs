//! # Lab 03: popen and coprocesses (协同进程)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/03-popen.md` and the grading suite
//! `tests/03-popen.rs`. Run `cargo test` in this directory to grade your
//! work; `cargo run -- --help` shows the command you are building.
//!
//! The command line in `cli.rs` is given: it calls these functions and
//! prints what they return. It also holds `filter`, the small program that
//! tasks 4 and 5 drive. You may add private helper functions here.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::fs::File;
use std::io::BufReader;
use std::time::Duration;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

pub mod cli;

// ANCHOR: popen_types
/// Which way the pipe between us and the command goes: popen's `type`
/// argument, `"r"` or `"w"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `"r"`: we read what the command writes to its standard output.
    Read,
    /// `"w"`: what we write becomes the command's standard input.
    Write,
}

/// A command running in a child process, connected to us by one pipe: what
/// `popen` returns (C gives you a `FILE *` and keeps the pid hidden).
#[derive(Debug)]
pub struct Popen {
    /// Our end of the pipe: the read end of the command's standard output
    /// (`Mode::Read`) or the write end of its standard input (`Mode::Write`).
    pub pipe: File,
    /// The child's process ID, which `pclose` waits for.
    pub pid: Pid,
}
// ANCHOR_END: popen_types

// ANCHOR: popen
/// Runs `command` the way POSIX `popen(command, "r")` or `"w"` does: in a
/// child process, as `/bin/sh -c command`, with one pipe between us and it.
///
/// 1. `pipe2(O_CLOEXEC)`: after `exec` the command keeps only the copy
///    that `dup2` makes, and no other pipe this process holds (POSIX asks
///    popen to close the pipes of earlier popen calls in the child);
/// 2. `fork()`; in the child, `dup2` the write end onto descriptor 1
///    (`Mode::Read`) or the read end onto descriptor 0 (`Mode::Write`),
///    put `SIGPIPE` back to its default action, and
///    `execv("/bin/sh", ["sh", "-c", command])`. If `execv` fails, print
///    `popen: cannot run /bin/sh: ERRNO` on stderr and `_exit(127)`;
/// 3. in the parent, close the child's end and return our end with the
///    child's pid.
///
/// The shell parses `command`: quotes, `;`, `|`, `$VAR`, `*` all work, which
/// is exactly why a command built from untrusted text is dangerous.
///
/// Errors: `command` contains a NUL byte; `pipe2` or `fork` fails.
pub fn popen(command: &str, mode: Mode) -> anyhow::Result<Popen> {
    // TODO(1): pipe2, fork, dup2 in the child, execv /bin/sh -c command.
    todo!("TODO(1): popen")
}
// ANCHOR_END: popen

// ANCHOR: pclose
/// Closes the pipe and waits for the command: POSIX `pclose`.
///
/// Close our end **first** (drop the `File`): in `Mode::Write` the command
/// reads until end-of-file, and it gets end-of-file only once our end is
/// closed. Then `waitpid(pid)` (this pid, never `-1`: other children are
/// none of pclose's business) and return the status.
///
/// If a signal handler interrupts `waitpid`, it fails with `EINTR`: call it
/// again. The caller may have a `SIGCHLD` handler installed without
/// `SA_RESTART`, and any child's exit then interrupts the wait.
///
/// Errors: `waitpid` failing with anything but `EINTR`, as `waitpid: ERRNO`
/// (`.context("waitpid")`). `ECHILD` means the child is already gone: a
/// `SIGCHLD` handler that reaps every child took its status first, and
/// nothing can bring it back.
pub fn pclose(child: Popen) -> anyhow::Result<WaitStatus> {
    // TODO(1): drop the pipe, then waitpid; retry on EINTR.
    todo!("TODO(1): pclose")
}
// ANCHOR_END: pclose

// ANCHOR: spawn
/// Like [`popen`], without a shell: runs `argv[0]` (looked up in `PATH`)
/// with the arguments `argv[1..]`, exactly as given, with `execvp`.
///
/// Nothing is parsed: a word `x; touch PWNED` reaches the program as one
/// argument, a file name like any other. The child is wired and cleaned up
/// as in [`popen`]; if `execvp` fails it prints
/// `popen: cannot run PROGRAM: ERRNO` on stderr and leaves with `_exit(127)`.
/// `pclose` waits for it as for any other `Popen`.
///
/// Errors: `argv` is empty (`empty command`) or a word contains a NUL byte
/// (both checked before forking); `pipe2` or `fork` fails.
pub fn spawn(argv: &[String], mode: Mode) -> anyhow::Result<Popen> {
    // TODO(2): like popen, but execvp(argv[0], argv) with no shell.
    todo!("TODO(2): spawn")
}
// ANCHOR_END: spawn

// ANCHOR: pipeline
/// Runs `stages[0] | stages[1] | … | stages[n-1]`: `n` commands joined by
/// `n - 1` pipes, as a shell runs `ps -ef | grep x | awk '{print $2}'`.
/// Returns every stage's status, in order.
///
/// * Check and convert every stage **before the first fork**: a stage with
///   no words fails with `stage N is empty` (counting from 1), and nothing
///   is started.
/// * Stage `i` reads from pipe `i - 1` (stage 0: our standard input) and
///   writes into pipe `i` (the last stage: our standard output). Each child
///   `dup2`s its pipe ends onto 0 and 1, resets `SIGPIPE` to its default
///   action and `execvp`s its stage; if that fails it prints
///   `popen: cannot run PROGRAM: ERRNO` and leaves with `_exit(127)`.
/// * Every other descriptor of every pipe must be closed in every process,
///   the parent included, or a reader never sees end-of-file. (With
///   `O_CLOEXEC` pipes, exec closes the children's; the parent drops its
///   copies as soon as the children that need them are forked.)
/// * Start every stage before waiting for any: all of them run at the same
///   time, and each pipe holds only 64 KiB.
pub fn pipeline(stages: &[Vec<String>]) -> anyhow::Result<Vec<WaitStatus>> {
    // TODO(3): n - 1 pipes, n forks, dup2, execvp, close, wait for all.
    todo!("TODO(3): pipeline")
}
// ANCHOR_END: pipeline

// ANCHOR: coprocess_type
/// A filter running as a coprocess (协同进程): we write its standard input
/// and read its standard output, over two pipes.
#[derive(Debug)]
pub struct Coprocess {
    /// The write end of the pipe to the filter's standard input.
    pub to_filter: File,
    /// The read end of the pipe from the filter's standard output, buffered
    /// so that replies can be read a line at a time.
    pub from_filter: BufReader<File>,
    /// The filter's process ID.
    pub pid: Pid,
}
// ANCHOR_END: coprocess_type

impl Coprocess {
    // ANCHOR: coprocess_start
    /// Starts `argv` (looked up in `PATH`, no shell) with two pipes: one
    /// `dup2`ed onto its standard input, one onto its standard output.
    ///
    /// As in [`spawn`]: `pipe2(O_CLOEXEC)` twice, reset `SIGPIPE` in the
    /// child, and if `execvp` fails print `popen: cannot run PROGRAM: ERRNO`
    /// and `_exit(127)`. The parent closes the two ends the filter uses.
    ///
    /// Errors: as [`spawn`].
    pub fn start(argv: &[String]) -> anyhow::Result<Coprocess> {
        // TODO(4): two pipes, fork, dup2 both, execvp.
        todo!("TODO(4): Coprocess::start")
    }
    // ANCHOR_END: coprocess_start

    // ANCHOR: coprocess_ask
    /// Sends one request, `request` and a newline, and returns the filter's
    /// one-line reply without its newline.
    ///
    /// * Write the whole line with one `write_all`. (A `File` has no buffer
    ///   of its own; if you wrap it in a `BufWriter`, flush it, or the
    ///   request never leaves this process.)
    /// * Wait for the reply with `poll(POLLIN)` and `timeout`, then
    ///   `read_line`. If `from_filter` already holds a whole line, it is
    ///   the reply: do not poll for it.
    ///
    /// A filter that buffers its output (as C stdio does when standard
    /// output is a pipe) keeps the reply to itself until its buffer fills
    /// or it exits, and it waits for our next request meanwhile: without a
    /// timeout, both sides would wait for ever.
    ///
    /// Errors: `no reply within N ms` (N = `timeout` in milliseconds) when
    /// poll times out; `the filter ended without replying` when the write
    /// fails with `EPIPE` or the read meets end-of-file (the filter has
    /// exited: which of the two you see first is a matter of timing).
    pub fn ask(&mut self, request: &str, timeout: Duration) -> anyhow::Result<String> {
        // TODO(4): write and flush, poll with the timeout, read one line.
        todo!("TODO(4): Coprocess::ask")
    }
    // ANCHOR_END: coprocess_ask

    // ANCHOR: coprocess_finish
    /// Ends the conversation: closes both pipes (the filter sees
    /// end-of-file, and if it still writes, `SIGPIPE` or `EPIPE`), then
    /// waits for the filter, retrying on `EINTR`, and returns its status.
    ///
    /// Errors: `waitpid` failing, as `waitpid: ERRNO`.
    pub fn finish(self) -> anyhow::Result<WaitStatus> {
        // TODO(4): drop both ends, then waitpid.
        todo!("TODO(4): Coprocess::finish")
    }
    // ANCHOR_END: coprocess_finish
}

// ANCHOR: filter_all
/// Sends all of `input` through the filter `argv` and returns everything it
/// writes back, with its status.
///
/// Writing everything first and reading afterwards deadlocks as soon as the
/// input is larger than the two pipes can hold: the filter fills its output
/// pipe, stops reading while it waits for us, and our write blocks on its
/// full input pipe. So write and read **at the same time**: start the
/// filter with [`Coprocess::start`], give `to_filter` to a writer thread
/// (`std::thread::scope`; a thread in the parent after `fork` is fine),
/// which writes `input` and then closes it, and read `from_filter` to
/// end-of-file here. Then wait for the filter.
///
/// A filter that exits without reading all of its input makes the writer
/// fail with `EPIPE`: that is the filter's choice, not an error.
///
/// Errors: starting the filter, writing (other than `EPIPE`), reading or
/// waiting fails.
pub fn filter_all(argv: &[String], input: &[u8]) -> anyhow::Result<(Vec<u8>, WaitStatus)> {
    // TODO(5): start, write on a thread while reading here, then wait.
    todo!("TODO(5): filter_all")
}
// ANCHOR_END: filter_all
