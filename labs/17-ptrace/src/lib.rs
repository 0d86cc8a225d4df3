//! # Lab 17: process control (进程控制), a tiny syscall tracer
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/17-ptrace.md` and the grading suite
//! `tests/17-ptrace.rs`. Run `cargo test` in this directory to grade your
//! work; `cargo run -- --help` shows the command you are building.
//!
//! Given, in files of their own: `cli.rs`, the command line, which calls
//! these functions; `sys.rs`, thin wrappers over the `ptrace` and `waitpid`
//! requests nix lacks; `syscalls.rs` and its generated `syscall_table.rs`,
//! the names of the system calls and the `--filter`; `decode.rs`, which
//! writes a call as strace does; `tracer.rs`, the plumbing of [`Tracer`]
//! (`Tracer::new`, `Tracer::say`); `workload.rs`, the small programs the
//! tests trace. You may add private helper functions.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::collections::HashMap;
use std::io::Write;

use nix::unistd::Pid;

use self::decode::Call;
use self::syscalls::Filter;

pub mod cli;
pub mod decode;
pub mod sys;
pub mod syscalls;
pub mod tracer;
pub mod workload;

// ANCHOR: types
/// What a syscall-stop says about the system call it stopped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallStop {
    /// The tracee is about to make system call `nr` with these arguments
    /// (syscall-entry-stop).
    Entry { nr: u64, args: [u64; 6] },
    /// The system call returned `value`; when `is_error`, `value` is a
    /// negative errno, `-EBADF` (syscall-exit-stop).
    Exit { value: i64, is_error: bool },
    /// The stop is not a syscall-stop.
    Other,
}

/// How a traced process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `exit(code)` or a return from `main`.
    Exited(i32),
    /// Killed by this signal.
    Killed(i32),
}

/// What the tracer knows about one tracee (a process or a thread).
#[derive(Debug, Default)]
pub struct Tracee {
    /// The system call it is inside of, if the filter shows it: made at its
    /// syscall-entry-stop, printed at its syscall-exit-stop.
    pub call: Option<Call>,
    /// Announced by its parent's fork, vfork or clone event; its first stop
    /// (`SIGSTOP`, or `PTRACE_EVENT_STOP` if seized) has not come yet.
    pub awaiting_first_stop: bool,
}

/// A tracer following a program and every process and thread it starts.
pub struct Tracer {
    /// Where the lines go.
    out: Box<dyn Write>,
    /// Which system calls are shown.
    filter: Filter,
    /// Every tracee, by pid (for a thread, its thread ID).
    tracees: HashMap<Pid, Tracee>,
    /// The program the tracer started (or attached to).
    first: Pid,
    /// How the first one ended, once it has.
    ending: Option<Ending>,
}
// ANCHOR_END: types

// ANCHOR: spawn_traced
/// Starts `argv` as a tracee of this process, stopped right after its
/// `exec`, and returns its pid.
///
/// 1. `pipe2(O_CLOEXEC)`: a pipe on which a failed exec reports its errno
///    (a successful one closes it);
/// 2. `fork()`. The **child** calls `ptrace(PTRACE_TRACEME)` (nix:
///    `ptrace::traceme()`), "my parent traces me"; puts `SIGPIPE` back to
///    its default action (Rust ignores it, and an ignored signal stays
///    ignored across exec: chapter 02); and `execvp`s. A tracee whose exec
///    succeeds stops with `SIGTRAP` before the new program's first
///    instruction. If `execvp` fails, the child writes the errno (4 bytes)
///    into the pipe and leaves with `_exit(127)`;
/// 3. the **parent** closes its write end and waits for the child: a stop
///    with `SIGTRAP` means the exec worked; an exit means it did not: read
///    the errno from the pipe and fail with `cannot run PROGRAM: ERRNO`;
/// 4. `ptrace(PTRACE_SETOPTIONS)` (nix: `ptrace::setoptions`) with
///    * `PTRACE_O_TRACESYSGOOD`: syscall-stops report `SIGTRAP | 0x80`,
///      which no signal can be mistaken for;
///    * `PTRACE_O_TRACEFORK`, `PTRACE_O_TRACEVFORK` and
///      `PTRACE_O_TRACECLONE`: processes and threads it starts are traced
///      too, from their first instruction;
///    * `PTRACE_O_TRACEEXEC`: a later `execve` stops in an event, instead
///      of sending the tracee a plain `SIGTRAP`;
///    * `PTRACE_O_EXITKILL`: if the tracer dies, the kernel kills its
///      tracees instead of letting them run on, untraced.
///
/// The tracee is left stopped; the caller restarts it.
pub fn spawn_traced(argv: &[String]) -> anyhow::Result<Pid> {
    // TODO(1): fork; the child: PTRACE_TRACEME, SIGPIPE back to default, execvp; the parent: waitpid, PTRACE_SETOPTIONS.
    todo!("TODO(1): spawn_traced")
}
// ANCHOR_END: spawn_traced

// ANCHOR: read_syscall
/// What the syscall-stop `pid` is in says, from `PTRACE_GET_SYSCALL_INFO`
/// ([`sys::syscall_info`], the same on every architecture): at a
/// syscall-entry-stop the call's number and its six arguments
/// (`info.u.entry.nr`, `info.u.entry.args`), at a syscall-exit-stop its
/// return value and whether it failed (`info.u.exit.sval`,
/// `info.u.exit.is_error != 0`), at any other stop [`SyscallStop::Other`].
///
/// `info.op` says which field of the union `u` the kernel filled:
/// `libc::PTRACE_SYSCALL_INFO_ENTRY`, `libc::PTRACE_SYSCALL_INFO_EXIT`
/// (or `NONE`). Reading a union field is `unsafe` in Rust: it is sound here
/// because the buffer is plain integers, zeroed before the kernel wrote
/// into it.
///
/// Errors are returned as they are: `ESRCH` means the tracee was killed
/// meanwhile (`SIGKILL` can strike at any moment), and its death is the
/// next thing `waitpid` reports.
pub fn read_syscall(pid: Pid) -> nix::Result<SyscallStop> {
    // TODO(2): sys::syscall_info, then match info.op.
    todo!("TODO(2): read_syscall")
}
// ANCHOR_END: read_syscall

// ANCHOR: read_memory
/// `len` bytes of the tracee's memory at `address`, read with
/// `ptrace(PTRACE_PEEKDATA, pid, word_address)` (nix: `ptrace::read`),
/// which returns one machine word, 8 bytes here.
///
/// Read the aligned words that cover `[address, address + len)`: start at
/// `address` rounded down to a multiple of 8, and keep the bytes from
/// `address % 8` on. Aligned words never straddle a page, so a string that
/// ends just before an unmapped page is still readable. `PEEKDATA` fails
/// with `EIO` or `EFAULT` where nothing is mapped: return that error.
/// (`process_vm_readv` reads many bytes in one call; one word a time is the
/// ptrace way, and enough for arguments.)
pub fn read_memory(pid: Pid, address: u64, len: usize) -> nix::Result<Vec<u8>> {
    // TODO(2): PTRACE_PEEKDATA the aligned words, keep the bytes asked for.
    todo!("TODO(2): read_memory")
}
// ANCHOR_END: read_memory

impl Tracer {
    // ANCHOR: run
    /// Follows every tracee until none is left, and returns how the first
    /// one (the program) ended.
    ///
    /// Each turn, `waitpid(-1, __WALL)` ([`sys::wait_for_stop`] with
    /// `WaitPidFlag::__WALL`): `-1` for any tracee; `__WALL` for threads
    /// too, whose exit signal is not `SIGCHLD` (Linux implies it for
    /// tracees since 4.7; older kernels report threads only with it). Then,
    /// by what it reports:
    ///
    /// * a [`Stop::Syscall`] goes to [`Tracer::on_syscall_stop`];
    /// * a [`Stop::Signal`] to [`Tracer::on_signal_stop`] (task 4);
    /// * a [`Stop::Event`] to [`Tracer::on_event_stop`] (task 5);
    /// * a [`Stop::Exited`] or [`Stop::Killed`] to [`Tracer::on_exit`].
    ///
    /// Every stop must end with the tracee restarted ([`sys::restart`]),
    /// or it stays stopped: each handler does that. `ECHILD` from
    /// `waitpid` means nothing is left to wait for: stop there too.
    pub fn run(&mut self) -> anyhow::Result<Ending> {
        // TODO(3): waitpid(-1, __WALL) until no tracee is left; hand each stop to its handler.
        todo!("TODO(3): run")
    }
    // ANCHOR_END: run

    // ANCHOR: on_syscall_stop
    /// `pid` is in a syscall-stop: read it with [`read_syscall`].
    ///
    /// * At an entry, make the call with [`Call::enter`], which returns
    ///   `None` for a call the filter does not show, and keep it in the
    ///   tracee's [`Tracee::call`];
    /// * at an exit, take that call (if any: the tracer may have attached
    ///   while the call was running) and [`Tracer::say`] its
    ///   [`Call::finish`] line, `pipe2([3, 4], O_CLOEXEC) = 0`. Only now
    ///   are its outputs (the descriptors `pipe2` wrote) there to read.
    ///
    /// Then restart the tracee, with no signal. If the tracee has died
    /// meanwhile (`read_syscall` fails with `ESRCH`), do nothing: its
    /// death comes next.
    pub fn on_syscall_stop(&mut self, pid: Pid) -> anyhow::Result<()> {
        // TODO(3): read_syscall; keep the call at the entry, say it at the exit; restart.
        todo!("TODO(3): on_syscall_stop")
    }
    // ANCHOR_END: on_syscall_stop

    // ANCHOR: on_exit
    /// `pid` has exited or was killed: it is no tracee any more. Say the
    /// call it died in, if it was inside one the filter shows
    /// ([`Call::unfinished`], `accept4(3, NULL, NULL, SOCK_CLOEXEC) = ?`),
    /// then how it ended, `+++ exited with 0 +++` or `+++ killed by
    /// SIGKILL +++` (the [`Ending`]'s `Display`). If it is the first
    /// tracee, keep its ending: the program's.
    pub fn on_exit(&mut self, pid: Pid, ending: Ending) -> anyhow::Result<()> {
        // TODO(3): remove the tracee; say its unfinished call and how it ended.
        todo!("TODO(3): on_exit")
    }
    // ANCHOR_END: on_exit

    // ANCHOR: on_signal_stop
    /// `pid` stopped with `signal`, and it is not a syscall-stop nor an
    /// event. Three stops look like that:
    ///
    /// * the **first stop of a new tracee**: its pid is not in the table
    ///   yet (its parent's fork event has not been seen), or its
    ///   [`Tracee::awaiting_first_stop`] is set: hand it to
    ///   [`Tracer::on_first_stop`] (task 5);
    /// * a **group-stop**: `signal` is a stopping one ([`sys::is_stopping`])
    ///   and `PTRACE_GETSIGINFO` (nix: `ptrace::getsiginfo`) fails with
    ///   `EINVAL`, as it does only in a group-stop. The process has already
    ///   taken the signal: say `--- stopped by SIGSTOP ---` and restart it
    ///   with no signal (a tracee attached with `PTRACE_TRACEME` cannot be
    ///   kept stopped: the stop is lost);
    /// * a **signal-delivery-stop**: the signal is about to be delivered.
    ///   Say `--- SIGUSR1 ---` and restart the tracee *with* `signal`, or
    ///   the program never gets it: its handler never runs, a `SIGTERM`
    ///   never ends it.
    pub fn on_signal_stop(&mut self, pid: Pid, signal: i32) -> anyhow::Result<()> {
        // TODO(4): first stop, group-stop or signal-delivery-stop? Restart with the right signal.
        todo!("TODO(4): on_signal_stop")
    }
    // ANCHOR_END: on_signal_stop

    // ANCHOR: on_event_stop
    /// `pid` stopped in a `PTRACE_EVENT` stop (`event` is
    /// `libc::PTRACE_EVENT_FORK` …):
    ///
    /// * `FORK`, `VFORK`, `CLONE`: `pid` is creating a process or thread,
    ///   whose pid `ptrace(PTRACE_GETEVENTMSG)` gives (nix:
    ///   `ptrace::getevent`). The kernel has made it a tracee already. Add
    ///   it to the table with `awaiting_first_stop`, unless its first stop
    ///   came first and put it there (the two stops arrive in either order);
    /// * `EXEC`: `pid` has just execed. If a thread other than the main one
    ///   called `execve`, the kernel gave it the main thread's pid;
    ///   `PTRACE_GETEVENTMSG` gives its former thread ID: forget that one;
    /// * `STOP`: only for seized tracees, [`Tracer::on_seized_stop`]
    ///   (task 6).
    ///
    /// Then restart `pid`, with no signal: an event is not a signal.
    pub fn on_event_stop(&mut self, pid: Pid, event: i32, signal: i32) -> anyhow::Result<()> {
        // TODO(5): fork, vfork, clone: note the new tracee; exec: forget a former thread ID; restart.
        todo!("TODO(5): on_event_stop")
    }
    // ANCHOR_END: on_event_stop

    // ANCHOR: on_first_stop
    /// The first stop of a new tracee `pid`: the `SIGSTOP` the kernel sends
    /// every process traced from birth (or a `PTRACE_EVENT_STOP` if its
    /// parent was seized). It is the tracer's business, not the program's:
    /// put the tracee in the table if it is not there yet, clear its
    /// `awaiting_first_stop`, and restart it **without** the signal.
    pub fn on_first_stop(&mut self, pid: Pid) -> anyhow::Result<()> {
        // TODO(5): note the tracee as started; restart it without the SIGSTOP.
        todo!("TODO(5): on_first_stop")
    }
    // ANCHOR_END: on_first_stop

    // ANCHOR: on_seized_stop
    /// A `PTRACE_EVENT_STOP` of `pid` with `signal`; only tracees attached
    /// with `PTRACE_SEIZE` (and their children) have them:
    ///
    /// * the first stop of a new tracee (as in [`Tracer::on_signal_stop`]):
    ///   [`Tracer::on_first_stop`];
    /// * a **group-stop**: `signal` is a stopping one. Say `--- stopped by
    ///   SIGSTOP ---` and keep the tracee stopped with `PTRACE_LISTEN`
    ///   ([`sys::listen`]), so that it stays stopped, as its user wanted,
    ///   until a `SIGCONT`; the tracer is told then, with another
    ///   `PTRACE_EVENT_STOP`;
    /// * anything else (`SIGTRAP`): the stop `PTRACE_INTERRUPT` asked for,
    ///   or the end of a listen. Restart the tracee, with no signal.
    pub fn on_seized_stop(&mut self, pid: Pid, signal: i32) -> anyhow::Result<()> {
        // TODO(6): first stop, group-stop (PTRACE_LISTEN), or anything else (restart).
        todo!("TODO(6): on_seized_stop")
    }
    // ANCHOR_END: on_seized_stop
}

// ANCHOR: attach
/// Starts tracing the running process `pid`: `ptrace(PTRACE_SEIZE, pid,
/// 0, options)` (nix: `ptrace::seize`), then `ptrace(PTRACE_INTERRUPT)`
/// (nix: `ptrace::interrupt`) to stop it, and waits for that stop (a
/// `PTRACE_EVENT_STOP`) with `waitpid(pid, __WALL)`. A signal may be
/// delivered first: pass it on ([`sys::cont`] with the signal) and wait
/// again. The tracee is left in that stop, as [`spawn_traced`] leaves its
/// own: once the caller restarts it with [`sys::restart`], every system
/// call stops it.
///
/// Unlike `PTRACE_ATTACH`, `PTRACE_SEIZE` sends the process no `SIGSTOP`
/// (which it would notice: a `read` interrupted, a stop its parent sees),
/// and it makes group-stops visible as `PTRACE_EVENT_STOP`. The options are
/// those of [`spawn_traced`] but `PTRACE_O_EXITKILL`: the process is not
/// ours to kill; if the tracer dies, the kernel detaches it and it runs on.
///
/// Errors: `ESRCH`, no such process; `EPERM`, not allowed: another user's
/// process, a more privileged one, one already traced, or one that
/// `/proc/sys/kernel/yama/ptrace_scope` protects. Fail with `cannot attach
/// to pid PID: ERRNO`.
pub fn attach(pid: Pid) -> anyhow::Result<()> {
    // TODO(6): PTRACE_SEIZE, PTRACE_INTERRUPT, wait for the PTRACE_EVENT_STOP.
    todo!("TODO(6): attach")
}
// ANCHOR_END: attach
