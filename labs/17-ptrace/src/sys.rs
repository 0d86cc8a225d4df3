//! Thin wrappers over the `ptrace` and `waitpid` requests that nix does not
//! wrap, or wraps in a way a tracer cannot use (given: you do not need to
//! change this file).
//!
//! nix's `WaitStatus` and `ptrace::syscall(pid, Some(Signal))` name signals
//! with its `Signal` enum, which has no real-time signals: a tracee that
//! receives `SIGRTMIN + 1` would make `waitpid` itself fail. So the lab
//! keeps signals as plain numbers here, and decodes wait statuses itself.

use std::mem;

use nix::errno::Errno;
use nix::sys::wait::WaitPidFlag;
use nix::unistd::Pid;

// ANCHOR: stop
/// What `waitpid` reported about a tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A syscall-stop, entry or exit: `WSTOPSIG(status)` is
    /// `SIGTRAP | 0x80`, which needs `PTRACE_O_TRACESYSGOOD` (without it,
    /// a syscall-stop looks like a `SIGTRAP` arriving).
    Syscall(Pid),
    /// A `PTRACE_EVENT` stop: `status >> 16` is the event
    /// (`libc::PTRACE_EVENT_FORK` …), `WSTOPSIG(status)` the signal,
    /// `SIGTRAP`, or the stopping signal of a group-stop of a seized tracee.
    Event { pid: Pid, event: i32, signal: i32 },
    /// Any other stop with `signal`: a signal-delivery-stop, a group-stop
    /// of a tracee not seized, or the first stop of a new tracee.
    Signal(Pid, i32),
    /// The tracee exited with this status.
    Exited(Pid, i32),
    /// The tracee was killed by this signal (and dumped core, or not).
    Killed(Pid, i32, bool),
}
// ANCHOR_END: stop

// ANCHOR: wait_for_stop
/// `waitpid(pid or -1, &status, flags)`, decoded. A tracer waits with
/// `__WALL`: without it, `waitpid` reports only children whose exit signal
/// is `SIGCHLD`, not threads (Linux 4.7 and later imply it for tracees;
/// earlier ones do not). Interrupted calls (`EINTR`) are retried.
pub fn wait_for_stop(pid: Option<Pid>, flags: WaitPidFlag) -> nix::Result<Stop> {
    let wanted = pid.map_or(-1, Pid::as_raw);
    let mut status = 0;
    let found = loop {
        // SAFETY: waitpid writes one int, `status`, which outlives the call.
        let found = unsafe { libc::waitpid(wanted, &mut status, flags.bits()) };
        match Errno::result(found) {
            Err(Errno::EINTR) => continue,
            other => break Pid::from_raw(other?),
        }
    };
    Ok(decode_status(found, status))
}
// ANCHOR_END: wait_for_stop

/// The [`Stop`] that the raw wait status `status` of `pid` describes.
fn decode_status(pid: Pid, status: i32) -> Stop {
    if libc::WIFEXITED(status) {
        return Stop::Exited(pid, libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        return Stop::Killed(pid, libc::WTERMSIG(status), libc::WCOREDUMP(status));
    }
    let signal = libc::WSTOPSIG(status);
    let event = status >> 16;
    if signal == libc::SIGTRAP | 0x80 {
        Stop::Syscall(pid)
    } else if event != 0 {
        Stop::Event { pid, event, signal }
    } else {
        Stop::Signal(pid, signal)
    }
}

// ANCHOR: restart
/// `ptrace(PTRACE_SYSCALL, pid, 0, signal)`: lets a stopped tracee run to
/// its next syscall-stop (or other stop), delivering `signal` first if it is
/// not 0 and the tracee is in a signal-delivery-stop (in any other stop the
/// kernel ignores it).
///
/// A tracee can be killed (`SIGKILL`) at any moment, even while stopped; it
/// then cannot be restarted, `ESRCH`. That is not an error of the tracer:
/// its death is the next thing `waitpid` reports. So `ESRCH` returns `Ok`.
pub fn restart(pid: Pid, signal: i32) -> nix::Result<()> {
    request(libc::PTRACE_SYSCALL, pid, signal)
}

/// `ptrace(PTRACE_CONT, pid, 0, signal)`: as [`restart`], but the tracee
/// then runs without syscall-stops.
pub fn cont(pid: Pid, signal: i32) -> nix::Result<()> {
    request(libc::PTRACE_CONT, pid, signal)
}

/// `ptrace(PTRACE_LISTEN, pid, 0, 0)`, for a seized tracee in a group-stop:
/// it stays stopped, as job control wants, but the tracer hears of it again
/// when a `SIGCONT` (or another event) wakes it, with a `PTRACE_EVENT_STOP`.
pub fn listen(pid: Pid) -> nix::Result<()> {
    request(libc::PTRACE_LISTEN, pid, 0)
}
// ANCHOR_END: restart

fn request(request: libc::c_uint, pid: Pid, data: i32) -> nix::Result<()> {
    // SAFETY: these requests read no memory of this process: `data` is a
    // signal number passed by value.
    let result = unsafe {
        libc::ptrace(
            request,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            data as libc::c_long as *mut libc::c_void,
        )
    };
    match Errno::result(result) {
        Ok(_) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno),
    }
}

// ANCHOR: syscall_info
/// `ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info)` (Linux 5.3):
/// what the tracee's current stop says about its system call, on every
/// architecture alike. `info.op` says which part of the union the kernel
/// filled: `PTRACE_SYSCALL_INFO_ENTRY` (number and six arguments),
/// `PTRACE_SYSCALL_INFO_EXIT` (return value, error flag), or
/// `PTRACE_SYSCALL_INFO_NONE` (a stop that is not a syscall-stop).
///
/// The kernel writes only the bytes of that part (88 are asked for; an
/// exit fills 33) and returns how many it had: the buffer starts zeroed so
/// that every byte read is initialised. (nix 0.31's `ptrace::syscall_info`
/// hands back a `MaybeUninit` buffer as if the kernel had filled it all.)
pub fn syscall_info(pid: Pid) -> nix::Result<libc::ptrace_syscall_info> {
    // SAFETY: ptrace_syscall_info is plain data: all zeroes is a value.
    let mut info: libc::ptrace_syscall_info = unsafe { mem::zeroed() };
    // SAFETY: the kernel writes at most `size` bytes into `info`.
    let result = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            mem::size_of::<libc::ptrace_syscall_info>(),
            &mut info as *mut libc::ptrace_syscall_info,
        )
    };
    Errno::result(result).map(|_| info)
}
// ANCHOR_END: syscall_info

/// The four signals that stop a process (and start a group-stop).
pub fn is_stopping(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// The kernel's first real-time signal. glibc keeps two for itself, so
/// its `SIGRTMIN()` is 34, which strace (and this lab) calls `SIGRT_2`.
const KERNEL_SIGRTMIN: i32 = 32;

/// `SIGTERM`, `SIGRT_2` (signal 34, counted from the kernel's first
/// real-time signal, as strace writes it), or the number.
pub fn signal_name(signal: i32) -> String {
    if (KERNEL_SIGRTMIN..=libc::SIGRTMAX()).contains(&signal) {
        return format!("SIGRT_{}", signal - KERNEL_SIGRTMIN);
    }
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(known) => known.as_str().to_string(),
        Err(_) => signal.to_string(),
    }
}
