//! The grader's own "why" lines: the likely cause of a symptom the grader
//! sees by itself (an exit status, a signal, a program still waiting at
//! its deadline, a child that never goes away). Each is chosen from what
//! was observed, not from what usually goes wrong, and suites' own `why`
//! texts take precedence where a test gives one.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::procfs::{self, ProcInfo};

/// Why a program exited with `status` when `expected` was wanted.
pub(crate) fn wrong_status(expected: i32, status: ExitStatus, stderr: &str) -> Option<String> {
    if let Some(signal) = status.signal() {
        return Some(signal_cause(signal));
    }
    let code = status.code()?;
    let said = !stderr.trim().is_empty();
    Some(match (expected, code) {
        (0, 2) => "exit status 2 is a usage error: the command line was refused (see stderr \
                   below), though it is a valid one"
            .to_string(),
        (0, _) if said => "the program reported an error (see stderr below)".to_string(),
        (0, _) => format!(
            "it failed (exit status {code}) without a word on stderr: a program that fails \
             says why on one line of stderr, and this command should succeed"
        ),
        (_, 0) => format!(
            "it reported success where it must fail: this case ends with a one-line error \
             on stderr and exit status {expected}"
        ),
        (2, 1) => "exit status 1 means an operation failed, but this command line must be \
                   refused as a usage error (exit status 2) before anything is tried"
            .to_string(),
        (1, 2) => "exit status 2 is a usage error: the command line was refused, though it \
                   is valid; it is the operation that must fail here (exit status 1)"
            .to_string(),
        _ => format!("it exited with status {code}, not {expected}"),
    })
}

/// Why a signal ended a program, by signal.
pub(crate) fn signal_cause(signal: i32) -> String {
    let name = signal_name(signal);
    match signal {
        libc::SIGPIPE => "SIGPIPE ended it: it wrote to a pipe or FIFO whose read ends were all \
                          closed (ignore SIGPIPE to get EPIPE from write instead)"
            .to_string(),
        libc::SIGSEGV => "it crashed with SIGSEGV: an invalid memory access, in unsafe code or \
                          through a pointer into memory that was unmapped or detached"
            .to_string(),
        libc::SIGBUS => "SIGBUS ended it: an access to a mapped page past the end of its file \
                         (the file was shorter than the mapping)"
            .to_string(),
        libc::SIGABRT => "it aborted (SIGABRT): abort() was called, or a panic happened while \
                          panicking"
            .to_string(),
        libc::SIGFPE => {
            "SIGFPE ended it: an arithmetic error such as a division by zero".to_string()
        }
        libc::SIGKILL => {
            "it was killed with SIGKILL, which no program can catch or ignore".to_string()
        }
        libc::SIGTERM
        | libc::SIGINT
        | libc::SIGHUP
        | libc::SIGQUIT
        | libc::SIGUSR1
        | libc::SIGUSR2
        | libc::SIGALRM => format!(
            "a {name} it did not handle ended it (the default action): where the task asks \
             for it, install a handler with sigaction() before the signal can come"
        ),
        _ => format!("signal {signal} ({name}) ended it"),
    }
}

/// The conventional name of a signal number.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGSYS => "SIGSYS",
        _ => "?",
    }
}

/// Why a program was still running at its deadline, from what it was
/// doing then: `program` and the rest of its `tree`.
pub(crate) fn hang(program: i32, tree: &[ProcInfo]) -> String {
    match procfs::state(program) {
        Some('T') | Some('t') => {
            return "it was stopped (SIGSTOP or SIGTSTP) and nobody continued it".to_string();
        }
        Some('R') => {
            return "it was running, not waiting for anything: a loop that never ends \
                    (or never sees the condition that ends it)"
                .to_string();
        }
        _ => {}
    }
    let Some(call) = procfs::syscall(program) else {
        return "it was still running, not asleep in a system call: a loop that never ends"
            .to_string();
    };
    let waiting = blocked_cause(call);
    if call == libc::SYS_wait4 || call == libc::SYS_waitid {
        // Say what the child it waits for was doing.
        let children: Vec<&ProcInfo> = tree
            .iter()
            .filter(|p| p.ppid == program && p.state != 'Z')
            .collect();
        if let Some(child) = children.first() {
            let child_call = procfs::syscall(child.pid);
            let doing = procfs::activity(child.pid);
            let because = child_call.map(blocked_cause).unwrap_or_default();
            return format!(
                "it was waiting for a child that never exited: the child (pid {}, {}) was \
                 {doing}{}{because}",
                child.pid,
                child.command,
                if because.is_empty() { "" } else { ": " }
            );
        }
    }
    format!("it was asleep in {}: {waiting}", procfs::manual_name(call))
}

/// What a process asleep in system call `call` is most likely waiting
/// for, in words.
pub(crate) fn blocked_cause(call: libc::c_long) -> String {
    let text = match call {
        c if c == libc::SYS_read || c == libc::SYS_readv || c == libc::SYS_recvfrom => {
            "waiting for input that never came; a read sees end-of-file only once every \
             write end is closed, in every process, its own copy included"
        }
        c if c == libc::SYS_write || c == libc::SYS_writev || c == libc::SYS_sendto => {
            "the pipe (or FIFO, socket) was full and nobody read from it"
        }
        c if c == libc::SYS_openat => {
            "opening a FIFO blocks until another process opens its other end"
        }
        c if c == libc::SYS_wait4 || c == libc::SYS_waitid => {
            "waiting for a child that never exited"
        }
        c if c == libc::SYS_msgrcv => {
            "waiting for a message that never came (none of the type it asked for)"
        }
        c if c == libc::SYS_msgsnd => "the queue was full and nobody received",
        c if c == libc::SYS_semop || c == libc::SYS_semtimedop => {
            "waiting on a semaphore nobody released (a wait without its post)"
        }
        c if c == libc::SYS_rt_sigsuspend || c == libc::SYS_rt_sigtimedwait => {
            "waiting for a signal that never came"
        }
        c if c == libc::SYS_nanosleep || c == libc::SYS_clock_nanosleep => {
            "sleeping longer than the test waits"
        }
        c if c == libc::SYS_futex => "waiting on a lock or a thread (futex)",
        c if c == libc::SYS_fcntl || c == libc::SYS_flock => {
            "waiting for a file lock that another process (or open file) holds and never \
             released"
        }
        c if c == libc::SYS_ppoll || c == libc::SYS_pselect6 || c == libc::SYS_epoll_pwait => {
            "waiting for a descriptor that never became ready"
        }
        #[cfg(target_arch = "x86_64")]
        c if c == libc::SYS_pause => "waiting for a signal that never came",
        #[cfg(target_arch = "x86_64")]
        c if c == libc::SYS_open => {
            "opening a FIFO blocks until another process opens its other end"
        }
        #[cfg(target_arch = "x86_64")]
        c if c == libc::SYS_poll || c == libc::SYS_select || c == libc::SYS_epoll_wait => {
            "waiting for a descriptor that never became ready"
        }
        _ => "waiting for something no other process did",
    };
    text.to_string()
}

/// Why [`crate::Running::wait_until_alone`] saw the program not alone:
/// `others` is what it saw besides the program.
pub(crate) fn not_alone(program: i32, others: &[ProcInfo]) -> String {
    let zombie = others.iter().find(|p| p.ppid == program && p.state == 'Z');
    let running = others.iter().find(|p| p.state != 'Z');
    match (zombie, running) {
        (Some(zombie), None) => format!(
            "a child it forked has ended but was never waited for (pid {}, a zombie): reap \
             every child with waitpid(), in a SIGCHLD handler for a server that goes on \
             serving",
            zombie.pid
        ),
        (_, Some(running)) => {
            let doing = procfs::activity(running.pid);
            let because = procfs::syscall(running.pid)
                .filter(|_| running.state != 'R')
                .map(blocked_cause);
            match because {
                Some(because) => format!(
                    "a process it started is still running (pid {}, {}, {doing}: {because}): \
                     it must finish its work and exit",
                    running.pid, running.command
                ),
                None => format!(
                    "a process it started is still running (pid {}, {}, {doing}): it must \
                     finish its work and exit",
                    running.pid, running.command
                ),
            }
        }
        (None, None) => "it still had children".to_string(),
    }
}
