//! A tour of signals in one process and a few short-lived children: how a
//! child killed by a signal looks to its parent and to a shell; an ignored
//! disposition that survives exec; blocked, pending, and what unblocking
//! delivers (one standard signal, every real-time one, with its value);
//! the wake-up that `pause()` loses and `sigsuspend()` does not; and
//! `SA_NOCLDSTOP`.
//!
//! Usage (inside `labs/11-signals`): `cargo run --example signal_tour`
//!
//! Every step is deterministic: the process sends its signals to itself,
//! or waits for its children with `waitid`, never with a sleep.

use std::ffi::{CString, c_int, c_void};
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use nix::sys::signal::{SaFlags, Signal};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, execvp, fork, getpid};

#[path = "../src/sig.rs"]
pub mod sig;

use sig::{Action, Info, Sig, SigMask, SignalLog, sigaction};

fn main() -> anyhow::Result<()> {
    dispositions()?;
    ignored_across_exec()?;
    pending()?;
    lost_wakeup()?;
    nocldstop()
}

/// Prints one line of the tour.
fn show(what: &str, result: impl std::fmt::Display) {
    println!("{what:<48} {result}");
}

// ANCHOR: dispositions
/// Children that raise a signal: how each ended, as the parent's waitpid
/// and a shell see it.
fn dispositions() -> anyhow::Result<()> {
    for signal in [Signal::SIGTERM, Signal::SIGPIPE, Signal::SIGCHLD] {
        // SAFETY: one thread; the child raises a signal and exits.
        match unsafe { fork() }? {
            ForkResult::Child => {
                // Rust ignores SIGPIPE: give every signal its default back.
                // SAFETY: SIG_DFL runs no code of ours.
                let _ = unsafe {
                    sigaction(
                        signal.into(),
                        Action::Default,
                        SaFlags::empty(),
                        &SigMask::empty(),
                    )
                };
                let _ = sig::raise(signal.into());
                // Still here: its default action is to ignore it.
                // SAFETY: ends only the child.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                let what = format!("child raises {} (default action)", signal.as_str());
                match waitpid(child, None)? {
                    WaitStatus::Signaled(_, killed, _) => show(
                        &what,
                        format!(
                            "killed by {killed}: a shell shows $? = {}",
                            128 + killed as i32
                        ),
                    ),
                    WaitStatus::Exited(_, code) => {
                        show(&what, format!("exited with {code}: ignored"))
                    }
                    other => show(&what, format!("{other:?}")),
                }
            }
        }
    }
    Ok(())
}
// ANCHOR_END: dispositions

// ANCHOR: ignored_across_exec
/// A child that ignores SIGTERM, then execs a shell that signals itself.
fn ignored_across_exec() -> anyhow::Result<()> {
    let script = CString::new("kill -TERM $$; echo \"sh: SIGTERM did nothing\"")?;
    let argv = [c"sh".to_owned(), c"-c".to_owned(), script];
    // SAFETY: one thread; the child sets a disposition and execs.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: SIG_IGN runs no code of ours.
            let _ = unsafe {
                sigaction(
                    Signal::SIGTERM.into(),
                    Action::Ignore,
                    SaFlags::empty(),
                    &SigMask::empty(),
                )
            };
            let _ = execvp(&argv[0], &argv);
            // SAFETY: ends only the child.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            let how = match waitpid(child, None)? {
                WaitStatus::Exited(_, code) => format!("exit status {code}"),
                other => format!("{other:?}"),
            };
            show("SIGTERM ignored, then exec sh: sh ended with", how);
        }
    }
    Ok(())
}
// ANCHOR_END: ignored_across_exec

// ANCHOR: pending
static DELIVERED: SignalLog = SignalLog::new();

extern "C" fn record(_signal: c_int, info: *mut libc::siginfo_t, _context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    DELIVERED.record(unsafe { Info::from_siginfo(info) });
}

/// Three of a standard signal and three of a real-time one, sent while
/// both are blocked, then unblocked.
fn pending() -> anyhow::Result<()> {
    let usr1 = Sig::from(Signal::SIGUSR1);
    let rt = Sig::new(Sig::rtmin() + 1).context("SIGRTMIN+1")?;
    let both = SigMask::of(&[usr1, rt]);
    for &signal in &[usr1, rt] {
        // SAFETY: the handler records into atomics only.
        unsafe {
            sigaction(
                signal,
                Action::InfoHandler(record),
                SaFlags::empty(),
                &SigMask::empty(),
            )
        }?;
    }
    both.block()?;
    for value in [10, 20, 30] {
        sig::sigqueue(getpid(), usr1, value)?;
        sig::sigqueue(getpid(), rt, value)?;
    }
    let pending: Vec<c_int> = SigMask::pending()?
        .signals()
        .iter()
        .map(|s| s.number())
        .collect();
    show(
        "sent 3 SIGUSR1 and 3 SIGRTMIN+1, blocked: pending",
        format!("{pending:?}"),
    );
    show("/proc/self/status", status_line("ShdPnd")?);
    both.unblock()?;
    let delivered: Vec<String> = DELIVERED
        .entries()
        .iter()
        .map(|info| format!("{}={}", info.signo, info.value))
        .collect();
    show("unblocked: delivered (signal=value)", delivered.join(" "));
    Ok(())
}

/// A line of `/proc/self/status` (its tab shown as a space), such as
/// `ShdPnd: 0000000400000200`.
fn status_line(field: &str) -> anyhow::Result<String> {
    let status = fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_default();
    Ok(line.replace('\t', " "))
}
// ANCHOR_END: pending

// ANCHOR: lost_wakeup
static WOKEN: AtomicBool = AtomicBool::new(false);
static ALARMS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn wake(_signal: c_int) {
    WOKEN.store(true, Ordering::SeqCst);
}

extern "C" fn alarm_rang(_signal: c_int) {
    ALARMS.fetch_add(1, Ordering::SeqCst);
}

/// The wake-up signal arrives between the check of the flag and the
/// sleep: raise() plays the part of a signal sent at the worst moment.
fn lost_wakeup() -> anyhow::Result<()> {
    let usr2 = Sig::from(Signal::SIGUSR2);
    let alarm = Sig::from(Signal::SIGALRM);
    // SAFETY: both handlers store into atomics only.
    unsafe {
        sigaction(
            usr2,
            Action::Handler(wake),
            SaFlags::empty(),
            &SigMask::empty(),
        )?;
        sigaction(
            alarm,
            Action::Handler(alarm_rang),
            SaFlags::empty(),
            &SigMask::empty(),
        )?;
    }
    let blocked = SigMask::of(&[usr2]);

    // Wrong: unblock, check, pause.
    let before = blocked.block()?;
    WOKEN.store(false, Ordering::SeqCst);
    before.set()?; // USR2 may be delivered from here on
    if !WOKEN.load(Ordering::SeqCst) {
        sig::raise(usr2)?; // ... and it is, right here
        // SAFETY: alarm(2) and pause(2) take no pointers; the alarm (one
        // second) is only there to end the demonstration.
        unsafe {
            libc::alarm(1);
            libc::pause();
        }
    }
    let lost = ALARMS.load(Ordering::SeqCst) == 1;
    show(
        "check, then pause(): woken by",
        if lost {
            "the alarm, a second later"
        } else {
            "USR2"
        },
    );

    // Right: keep it blocked, check, sigsuspend unblocks and sleeps at once.
    WOKEN.store(false, Ordering::SeqCst);
    let before = blocked.block()?;
    sig::raise(usr2)?; // pending: it waits for sigsuspend
    let mut waiting = before;
    waiting.remove(usr2);
    while !WOKEN.load(Ordering::SeqCst) {
        waiting.suspend();
    }
    before.set()?;
    show("check, then sigsuspend(): woken by", "USR2, at once");
    Ok(())
}
// ANCHOR_END: lost_wakeup

// ANCHOR: nocldstop
/// A child is stopped and continued while SIGCHLD is blocked: is a
/// SIGCHLD pending, with and without SA_NOCLDSTOP?
fn nocldstop() -> anyhow::Result<()> {
    let chld = Sig::from(Signal::SIGCHLD);
    let before = SigMask::of(&[chld]).block()?;
    for flags in [SaFlags::empty(), SaFlags::SA_NOCLDSTOP] {
        // SAFETY: SIG_DFL runs no code of ours.
        unsafe { sigaction(chld, Action::Default, flags, &SigMask::empty()) }?;
        // SAFETY: one thread; the child only waits to be killed.
        let child = match unsafe { fork() }? {
            ForkResult::Child => loop {
                // SAFETY: pause(2) takes no pointers.
                unsafe { libc::pause() };
            },
            ForkResult::Parent { child } => child,
        };
        stop_and_continue(child)?;
        let pending = SigMask::pending()?.contains(chld);
        sig::kill(child, Some(Signal::SIGKILL.into()))?;
        waitpid(child, None)?;
        // Take the SIGCHLD of its death (and any other) out of pending.
        SigMask::of(&[chld]).to_sigset().wait()?;
        let name = if flags.is_empty() {
            "no flags"
        } else {
            "SA_NOCLDSTOP"
        };
        show(
            &format!("child stopped, continued; SIGCHLD {name}"),
            format!("SIGCHLD pending: {pending}"),
        );
    }
    before.set()?;
    Ok(())
}

/// Stops `child` and continues it, waiting (without reaping) for each.
fn stop_and_continue(child: Pid) -> anyhow::Result<()> {
    let keep = WaitPidFlag::WNOWAIT;
    sig::kill(child, Some(Signal::SIGSTOP.into()))?;
    waitid(Id::Pid(child), WaitPidFlag::WSTOPPED | keep)?;
    sig::kill(child, Some(Signal::SIGCONT.into()))?;
    waitid(Id::Pid(child), WaitPidFlag::WCONTINUED | keep)?;
    Ok(())
}
// ANCHOR_END: nocldstop
