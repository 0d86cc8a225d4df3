//! # Lab 03: popen and coprocesses (协同进程) — reference solution
//!
//! The same functions as `labs/03-popen/src/lib.rs`, done. Read it after you
//! have written your own: compare which process holds which pipe end, and
//! when each one is closed.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, dup2_stdin, dup2_stdout, execvp, fork, pipe2};

#[path = "../../../labs/03-popen/src/cli.rs"]
pub mod cli;

/// What `Coprocess::ask` says when the filter has exited.
const FILTER_ENDED: &str = "the filter ended without replying";

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
    let command = CString::new(command).context("the command contains a NUL byte")?;
    let argv = [c"sh".to_owned(), c"-c".to_owned(), command];
    open_pipe_to(c"/bin/sh", &argv, mode)
}

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
    let Popen { pipe, pid } = child;
    // In Mode::Write this is the command's end-of-file: close before waiting.
    drop(pipe);
    wait_for(pid)
}

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
    let argv = to_c_strings(argv)?;
    open_pipe_to(&argv[0], &argv, mode)
}

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
    let argvs = stages
        .iter()
        .enumerate()
        .map(|(at, words)| {
            if words.is_empty() {
                bail!("stage {} is empty", at + 1);
            }
            to_c_strings(words)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut children = Vec::with_capacity(argvs.len());
    let started = start_stages(&argvs, &mut children);
    // Wait for every child that was started, even after a failure: none may
    // be left running or as a zombie.
    let statuses = children.into_iter().map(wait_for).collect();
    started?;
    statuses
}

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

impl Coprocess {
    /// Starts `argv` (looked up in `PATH`, no shell) with two pipes: one
    /// `dup2`ed onto its standard input, one onto its standard output.
    ///
    /// As in [`spawn`]: `pipe2(O_CLOEXEC)` twice, reset `SIGPIPE` in the
    /// child, and if `execvp` fails print `popen: cannot run PROGRAM: ERRNO`
    /// and `_exit(127)`. The parent closes the two ends the filter uses.
    ///
    /// Errors: as [`spawn`].
    pub fn start(argv: &[String]) -> anyhow::Result<Coprocess> {
        let argv = to_c_strings(argv)?;
        let (request_read, request_write) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
        let (reply_read, reply_write) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
        let pid = fork_exec(&argv[0], &argv, Some(&request_read), Some(&reply_write))?;
        // The filter's ends: if we kept reply_write, we would never see the
        // filter's end-of-file; if we kept request_read, a write to a filter that
        // has exited would block instead of failing with EPIPE.
        drop(request_read);
        drop(reply_write);
        Ok(Coprocess {
            to_filter: File::from(request_write),
            from_filter: BufReader::new(File::from(reply_read)),
            pid,
        })
    }

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
        // One write for the whole line; a File has no buffer to flush.
        let line = format!("{request}\n");
        match self.to_filter.write_all(line.as_bytes()) {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => bail!(FILTER_ENDED),
            written => written.context("write the request")?,
        }
        if !self.from_filter.buffer().contains(&b'\n') {
            wait_for_input(self.from_filter.get_ref(), timeout)?;
        }
        let mut reply = Vec::new();
        if self
            .from_filter
            .read_until(b'\n', &mut reply)
            .context("read the reply")?
            == 0
        {
            bail!(FILTER_ENDED);
        }
        if reply.last() == Some(&b'\n') {
            reply.pop();
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// Ends the conversation: closes both pipes (the filter sees
    /// end-of-file, and if it still writes, `SIGPIPE` or `EPIPE`), then
    /// waits for the filter, retrying on `EINTR`, and returns its status.
    ///
    /// Errors: `waitpid` failing, as `waitpid: ERRNO`.
    pub fn finish(self) -> anyhow::Result<WaitStatus> {
        let Coprocess {
            to_filter,
            from_filter,
            pid,
        } = self;
        drop(to_filter);
        drop(from_filter);
        wait_for(pid)
    }
}

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
    let Coprocess {
        to_filter,
        from_filter,
        pid,
    } = Coprocess::start(argv)?;
    let (written, read) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_and_close(to_filter, input));
        let read = read_to_eof(from_filter);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
        (written, read)
    });
    let status = wait_for(pid)?;
    written.context("write to the filter")?;
    let output = read.context("read from the filter")?;
    Ok((output, status))
}

/// Creates the pipe, forks the child that runs `program` with `argv` on the
/// far end of it, and keeps the near end for the caller.
fn open_pipe_to(program: &CStr, argv: &[CString], mode: Mode) -> anyhow::Result<Popen> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    let (ours, theirs) = match mode {
        Mode::Read => (read_end, write_end),
        Mode::Write => (write_end, read_end),
    };
    let (stdin, stdout) = match mode {
        Mode::Read => (None, Some(&theirs)),
        Mode::Write => (Some(&theirs), None),
    };
    let pid = fork_exec(program, argv, stdin, stdout)?;
    // The child's end: while we hold it, the command's reader would never
    // see end-of-file (Read), or its writer never get EPIPE (Write).
    drop(theirs);
    Ok(Popen {
        pipe: File::from(ours),
        pid,
    })
}

/// Starts the stages of a pipeline, pushing each child's pid onto
/// `children` as soon as it exists.
fn start_stages(argvs: &[Vec<CString>], children: &mut Vec<Pid>) -> anyhow::Result<()> {
    // The read end of the previous stage's pipe: the next stage's stdin.
    let mut previous: Option<OwnedFd> = None;
    for (at, argv) in argvs.iter().enumerate() {
        let (next, output) = if at + 1 < argvs.len() {
            let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
            (Some(read_end), Some(write_end))
        } else {
            (None, None)
        };
        children.push(fork_exec(
            &argv[0],
            argv,
            previous.as_ref(),
            output.as_ref(),
        )?);
        // Those two ends now belong to the child alone. `next` waits for
        // the following stage.
        drop(output);
        previous = next;
    }
    Ok(())
}

/// Forks a child that makes `stdin` and `stdout` (when given) its
/// descriptors 0 and 1, puts SIGPIPE back to its default action and execs
/// `program` with `argv`, searching `PATH` if `program` has no slash.
fn fork_exec(
    program: &CStr,
    argv: &[CString],
    stdin: Option<&OwnedFd>,
    stdout: Option<&OwnedFd>,
) -> anyhow::Result<Pid> {
    // SAFETY: this process is single-threaded when it forks; the child
    // only rewires descriptors, resets a signal, execs, writes and _exits.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            if let Err(errno) = prepare_child(stdin, stdout) {
                eprintln!("popen: prepare the child: {errno}");
                exit_child(126);
            }
            let Err(errno) = execvp(program, argv);
            eprintln!("popen: cannot run {}: {errno}", program.to_string_lossy());
            exit_child(127)
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// In the child: `dup2` the pipe ends onto 0 and 1 (the copies lose
/// close-on-exec, the originals close at exec), and give SIGPIPE back its
/// default action, which Rust set to "ignore" and exec would keep.
fn prepare_child(stdin: Option<&OwnedFd>, stdout: Option<&OwnedFd>) -> nix::Result<()> {
    if let Some(fd) = stdin {
        dup2_stdin(fd)?;
    }
    if let Some(fd) = stdout {
        dup2_stdout(fd)?;
    }
    // SAFETY: SIG_DFL installs no handler.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map(drop)
}

/// Waits until `fd` has something to read (data, or end-of-file), for at
/// most `timeout`, restarting `poll` if a signal interrupts it.
fn wait_for_input(fd: &File, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => bail!("no reply within {} ms", timeout.as_millis()),
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("poll"),
        }
    }
}

/// Writes all of `input` into the filter, then closes the pipe (dropping
/// it) so the filter sees end-of-file. `EPIPE` means the filter stopped
/// reading, which is its right.
fn write_and_close(mut pipe: File, input: &[u8]) -> io::Result<()> {
    match pipe.write_all(input) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Reads `reader` to end-of-file, then closes it.
fn read_to_eof(mut reader: impl Read) -> io::Result<Vec<u8>> {
    let mut output = Vec::new();
    reader.read_to_end(&mut output)?;
    Ok(output)
}

/// Waits for `child` to end, retrying when a signal interrupts the wait.
fn wait_for(child: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            result => return result.context("waitpid"),
        }
    }
}

/// Converts a command's words to the NUL-terminated strings `exec` takes.
fn to_c_strings(words: &[String]) -> anyhow::Result<Vec<CString>> {
    if words.is_empty() {
        bail!("empty command");
    }
    words
        .iter()
        .map(|word| CString::new(word.as_bytes()).with_context(|| format!("argument {word:?}")))
        .collect()
}

/// Ends a child process at once with `_exit(2)`.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
