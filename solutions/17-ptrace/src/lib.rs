//! # Lab 17: process control (进程控制), a tiny syscall tracer — reference solution
//!
//! The same functions as `labs/17-ptrace/src/lib.rs`, done. Read it after
//! you have written your own: compare which stop each function expects,
//! which signal each restart delivers, and what happens to a tracee that
//! dies between two requests.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execvp, fork, pipe2};

use self::decode::Call;
use self::sys::Stop;
use self::syscalls::Filter;

#[path = "../../../labs/17-ptrace/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/17-ptrace/src/decode.rs"]
pub mod decode;
#[path = "../../../labs/17-ptrace/src/sys.rs"]
pub mod sys;
#[path = "../../../labs/17-ptrace/src/syscalls.rs"]
pub mod syscalls;
#[path = "../../../labs/17-ptrace/src/tracer.rs"]
pub mod tracer;
#[path = "../../../labs/17-ptrace/src/workload.rs"]
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
    let words = argv
        .iter()
        .map(|word| CString::new(word.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .context("an argument holds a NUL byte")?;
    let program = words.first().context("no program to run")?;
    let (errno_read, errno_write) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    // SAFETY: this program has one thread; the child only makes system
    // calls before it execs or leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => exec_traced(program, &words, errno_write),
        ForkResult::Parent { child } => {
            drop(errno_write);
            match waitpid(child, None).context("waitpid")? {
                WaitStatus::Stopped(_, Signal::SIGTRAP) => {
                    ptrace::setoptions(child, run_options()).context("PTRACE_SETOPTIONS")?;
                    Ok(child)
                }
                _ => bail!("cannot run {}: {}", argv[0], exec_error(errno_read)),
            }
        }
    }
}
// ANCHOR_END: spawn_traced

/// The options of a program the tracer starts.
fn run_options() -> Options {
    follow_options() | Options::PTRACE_O_EXITKILL
}

/// The options of every tracee: syscall-stops told apart, children and
/// execs followed.
fn follow_options() -> Options {
    Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
}

/// The child of [`spawn_traced`]: asks to be traced, execs, and reports
/// the errno of a failure on `errno_write`.
fn exec_traced(program: &CString, words: &[CString], errno_write: OwnedFd) -> ! {
    let errno = match ptrace::traceme() {
        Err(errno) => errno,
        Ok(()) => {
            // SAFETY: no handler is installed, the default is restored.
            let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
            match execvp(program, words) {
                Err(errno) => errno,
                Ok(never) => match never {},
            }
        }
    };
    let _ = nix::unistd::write(&errno_write, &(errno as i32).to_ne_bytes());
    // SAFETY: leaves the child without running the parent's exit handlers.
    unsafe { libc::_exit(127) }
}

/// The errno a failed exec wrote into the pipe.
fn exec_error(errno_read: OwnedFd) -> String {
    let mut bytes = [0u8; 4];
    match std::fs::File::from(errno_read).read_exact(&mut bytes) {
        Ok(()) => Errno::from_raw(i32::from_ne_bytes(bytes)).to_string(),
        Err(_) => "it ended before its exec".to_string(),
    }
}

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
    let info = sys::syscall_info(pid)?;
    // SAFETY: the kernel filled the field `op` names; all of `info` was
    // zeroed first, so whatever is read is initialised integers.
    Ok(match info.op {
        libc::PTRACE_SYSCALL_INFO_ENTRY => {
            let entry = unsafe { info.u.entry };
            SyscallStop::Entry {
                nr: entry.nr,
                args: entry.args,
            }
        }
        libc::PTRACE_SYSCALL_INFO_EXIT => {
            let exit = unsafe { info.u.exit };
            SyscallStop::Exit {
                value: exit.sval,
                is_error: exit.is_error != 0,
            }
        }
        _ => SyscallStop::Other,
    })
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
    const WORD: u64 = std::mem::size_of::<libc::c_long>() as u64;
    let start = address - address % WORD;
    let end = address.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    let mut words = Vec::with_capacity(len + 2 * WORD as usize);
    let mut at = start;
    while at < end {
        let word = ptrace::read(pid, at as ptrace::AddressType)?;
        words.extend_from_slice(&word.to_ne_bytes());
        at += WORD;
    }
    let skip = (address - start) as usize;
    Ok(words[skip..skip + len].to_vec())
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
        while !self.tracees.is_empty() {
            let stop = match sys::wait_for_stop(None, WaitPidFlag::__WALL) {
                Err(Errno::ECHILD) => break,
                other => other.context("waitpid")?,
            };
            match stop {
                Stop::Syscall(pid) => self.on_syscall_stop(pid)?,
                Stop::Signal(pid, signal) => self.on_signal_stop(pid, signal)?,
                Stop::Event { pid, event, signal } => self.on_event_stop(pid, event, signal)?,
                Stop::Exited(pid, code) => self.on_exit(pid, Ending::Exited(code))?,
                Stop::Killed(pid, signal, _) => self.on_exit(pid, Ending::Killed(signal))?,
            }
        }
        self.ending
            .context("the program ended without the tracer seeing how")
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
        let stop = match read_syscall(pid) {
            Err(Errno::ESRCH) => return Ok(()),
            other => other.context("PTRACE_GET_SYSCALL_INFO")?,
        };
        match stop {
            SyscallStop::Entry { nr, args } => {
                let call = Call::enter(pid, nr, args, &self.filter);
                self.tracees.entry(pid).or_default().call = call;
            }
            SyscallStop::Exit { value, is_error } => {
                let entered = self.tracees.get_mut(&pid).and_then(|t| t.call.take());
                if let Some(call) = entered {
                    self.say(pid, &call.finish(pid, value, is_error))?;
                }
            }
            SyscallStop::Other => {}
        }
        sys::restart(pid, 0).context("PTRACE_SYSCALL")
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
        let Some(tracee) = self.tracees.remove(&pid) else {
            return Ok(());
        };
        if let Some(call) = tracee.call {
            self.say(pid, &call.unfinished(pid))?;
        }
        self.say(pid, &format!("+++ {ending} +++"))?;
        if pid == self.first {
            self.ending = Some(ending);
        }
        Ok(())
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
        let first_stop = self
            .tracees
            .get(&pid)
            .is_none_or(|tracee| tracee.awaiting_first_stop);
        if first_stop {
            return self.on_first_stop(pid);
        }
        let name = sys::signal_name(signal);
        let group_stop =
            sys::is_stopping(signal) && matches!(ptrace::getsiginfo(pid), Err(Errno::EINVAL));
        if group_stop {
            self.say(pid, &format!("--- stopped by {name} ---"))?;
            sys::restart(pid, 0).context("PTRACE_SYSCALL")
        } else {
            self.say(pid, &format!("--- {name} ---"))?;
            sys::restart(pid, signal).context("PTRACE_SYSCALL")
        }
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
        match event {
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                match ptrace::getevent(pid) {
                    Ok(child) => {
                        let child = Pid::from_raw(child as i32);
                        self.tracees.entry(child).or_insert_with(|| Tracee {
                            call: None,
                            awaiting_first_stop: true,
                        });
                    }
                    Err(Errno::ESRCH) => return Ok(()),
                    Err(errno) => return Err(errno).context("PTRACE_GETEVENTMSG"),
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                if let Ok(former) = ptrace::getevent(pid) {
                    let former = Pid::from_raw(former as i32);
                    if former != pid {
                        self.tracees.remove(&former);
                    }
                }
            }
            libc::PTRACE_EVENT_STOP => return self.on_seized_stop(pid, signal),
            _ => {}
        }
        sys::restart(pid, 0).context("PTRACE_SYSCALL")
    }
    // ANCHOR_END: on_event_stop

    // ANCHOR: on_first_stop
    /// The first stop of a new tracee `pid`: the `SIGSTOP` the kernel sends
    /// every process traced from birth (or a `PTRACE_EVENT_STOP` if its
    /// parent was seized). It is the tracer's business, not the program's:
    /// put the tracee in the table if it is not there yet, clear its
    /// `awaiting_first_stop`, and restart it **without** the signal.
    pub fn on_first_stop(&mut self, pid: Pid) -> anyhow::Result<()> {
        self.tracees.entry(pid).or_default().awaiting_first_stop = false;
        sys::restart(pid, 0).context("PTRACE_SYSCALL")
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
        let first_stop = self
            .tracees
            .get(&pid)
            .is_none_or(|tracee| tracee.awaiting_first_stop);
        if first_stop {
            return self.on_first_stop(pid);
        }
        if sys::is_stopping(signal) {
            self.say(
                pid,
                &format!("--- stopped by {} ---", sys::signal_name(signal)),
            )?;
            sys::listen(pid).context("PTRACE_LISTEN")
        } else {
            sys::restart(pid, 0).context("PTRACE_SYSCALL")
        }
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
    ptrace::seize(pid, follow_options()).with_context(|| format!("cannot attach to pid {pid}"))?;
    ptrace::interrupt(pid).with_context(|| format!("PTRACE_INTERRUPT pid {pid}"))?;
    loop {
        match sys::wait_for_stop(Some(pid), WaitPidFlag::__WALL).context("waitpid")? {
            Stop::Event {
                event: libc::PTRACE_EVENT_STOP,
                ..
            } => break,
            Stop::Signal(_, signal) => sys::cont(pid, signal).context("PTRACE_CONT")?,
            Stop::Exited(..) | Stop::Killed(..) => bail!("pid {pid} ended while being attached"),
            _ => sys::cont(pid, 0).context("PTRACE_CONT")?,
        }
    }
    Ok(())
}
// ANCHOR_END: attach
