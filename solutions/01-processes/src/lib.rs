//! # Lab 01: processes — fork, exec, wait (reference solution)
//!
//! The same functions as `labs/01-processes/src/lib.rs`, done. Read it after
//! you have written your own: compare how each error path is handled.

use std::ffi::CString;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execv, execvp, fork, write};

#[path = "../../../labs/01-processes/src/cli.rs"]
pub mod cli;

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
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, false) => format!("killed by signal {}", signal.as_str()),
        WaitStatus::Signaled(_, signal, true) => {
            format!("killed by signal {} (core dumped)", signal.as_str())
        }
        WaitStatus::Stopped(_, signal) => format!("stopped by signal {}", signal.as_str()),
        other => format!("{other:?}"),
    }
}

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
    let c_argv = to_c_strings(argv)?;
    let Some(program) = c_argv.first() else {
        bail!("run: no program given");
    };
    // Everything the child needs is ready before fork.
    let failure = ExecFailure::new(&argv[0]);
    // SAFETY: the child only calls execvp, write and _exit, which are
    // async-signal-safe, on memory prepared before the fork.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let Err(errno) = execvp(program, &c_argv);
            failure.report_and_exit(errno)
        }
        ForkResult::Parent { child } => wait_for(child),
    }
}

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
    let mut children = Vec::with_capacity(usize::from(n));
    for k in 1..=n {
        // SAFETY: single-threaded; the child only calls _exit.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => exit_child(i32::from(k)),
            Ok(ForkResult::Parent { child }) => children.push(child),
            Err(errno) => {
                // Do not leave the children already started as zombies.
                for child in children {
                    let _ = waitpid(child, None);
                }
                return Err(errno).context(format!("fork child {k} of {n}"));
            }
        }
    }
    children.into_iter().map(wait_for).collect()
}

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
    writeln!(out, "parent: about to fork").context("write")?;
    // Empty the buffer now, or the child inherits a copy of these bytes and
    // writes them a second time when it flushes.
    out.flush().context("flush before fork")?;
    // SAFETY: single-threaded, so no other thread can hold a lock the child
    // needs; the child formats into `out`, flushes it and calls _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let written = writeln!(out, "child: hello, I exit with status {status}")
                .and_then(|()| out.flush());
            // _exit skips destructors and atexit handlers: whatever is not
            // flushed by now is lost, which is why we flushed explicitly.
            // A child that could not say its line exits with 255 instead.
            exit_child(if written.is_ok() {
                i32::from(status)
            } else {
                255
            })
        }
        ForkResult::Parent { child } => wait_for(child),
    }
}

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
    let open_read_only = |extra: OFlag| {
        open(file, OFlag::O_RDONLY | extra, Mode::empty())
            .with_context(|| format!("open {}", file.display()))
    };
    let closed_on_exec = open_read_only(OFlag::O_CLOEXEC)?;
    let inherited = open_read_only(OFlag::empty())?;

    let me = std::env::current_exe().context("find this program's path")?;
    let program = CString::new(me.as_os_str().as_encoded_bytes()).context("program path")?;
    let args = [program.clone(), CString::from(c"show-fds")];
    let failure = ExecFailure::new(&me.display().to_string());
    // SAFETY: the child only calls execv, write and _exit, which are
    // async-signal-safe, on memory prepared before the fork.
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let Err(errno) = execv(&program, &args);
            failure.report_and_exit(errno)
        }
        ForkResult::Parent { child } => child,
    };
    // Dropping an OwnedFd closes it: the parent no longer needs either.
    drop(closed_on_exec);
    drop(inherited);
    wait_for(child)
}

/// Waits for `child` to end (retrying if a signal interrupts the wait).
fn wait_for(child: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            result => return result.with_context(|| format!("waitpid {child}")),
        }
    }
}

/// Converts arguments to the NUL-terminated strings `exec` takes.
fn to_c_strings(argv: &[String]) -> anyhow::Result<Vec<CString>> {
    argv.iter()
        .map(|arg| CString::new(arg.as_bytes()).with_context(|| format!("argument {arg:?}")))
        .collect()
}

/// The line a child writes when `exec` fails, `processes: cannot run
/// PROGRAM: ERRNO`. Its start is built before `fork`; the child adds the
/// errno in a buffer on its stack and writes the whole line with one
/// `write(2)`: no allocation and no lock, so it is safe even in the child of
/// a multi-threaded program, where `eprintln!` could wait for ever on a lock
/// that another thread held at the moment of the fork.
struct ExecFailure {
    prefix: Vec<u8>,
}

impl ExecFailure {
    /// Prepares the report for `program` (before `fork`).
    fn new(program: &str) -> ExecFailure {
        ExecFailure {
            prefix: format!("processes: cannot run {program}: ").into_bytes(),
        }
    }

    /// In the child, after `exec` failed with `errno`: writes the line to
    /// descriptor 2 and leaves with `_exit(127)`. A line longer than the
    /// buffer is cut.
    fn report_and_exit(&self, errno: Errno) -> ! {
        const LINE: usize = 1024;
        let mut line = [0u8; LINE];
        let mut free = &mut line[..];
        // Writing into a `&mut [u8]` fills it and moves it on; formatting
        // an `Errno` ("ENOENT: No such file or directory") allocates nothing.
        let _ = free.write_all(&self.prefix);
        let _ = writeln!(free, "{errno}");
        let used = LINE - free.len();
        let _ = write(std::io::stderr(), &line[..used]);
        exit_child(127)
    }
}

/// Ends a child process at once with `_exit(2)`: no destructors, no atexit
/// handlers, no flushing of the parent's buffers copied by fork.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
