//! Why the client's timer repeats: a `SIGALRM` that comes after the request
//! is sent but before `msgrcv` starts waiting interrupts nothing. With a
//! one-shot timer the wait then never ends; with a timer that fires again
//! every 20 ms, the next tick interrupts `msgrcv`.
//!
//! Usage (inside `labs/05-msgq`): `cargo run --example alarm_race`
//!
//! Each case runs in a child on a private queue that nothing is ever sent
//! to; the parent kills a child still waiting after one second, then
//! removes the queue.

use std::io;
use std::ptr;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::Context;
use libc::{c_int, c_long};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

extern "C" fn tick(_: c_int) {}

fn main() -> anyhow::Result<()> {
    for (name, repeat) in [("one-shot", Duration::ZERO), ("repeating", TICK)] {
        // SAFETY: msgget takes two integers.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        if id == -1 {
            return Err(io::Error::last_os_error()).context("msgget");
        }
        // SAFETY: single-threaded; the child waits in msgrcv and _exits.
        let forked = unsafe { fork() }.context("fork");
        let waited = match forked {
            Ok(ForkResult::Child) => child(id, name, repeat),
            Ok(ForkResult::Parent { child }) => watch(child, name),
            Err(error) => Err(error),
        };
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::msgctl(id, libc::IPC_RMID, ptr::null_mut()) };
        waited?;
    }
    Ok(())
}

/// Waits for `child`, killing it if it still waits after one second.
fn watch(child: nix::unistd::Pid, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)).context("waitpid")? {
            WaitStatus::StillAlive if Instant::now() < deadline => {
                sleep(Duration::from_millis(10));
            }
            WaitStatus::StillAlive => {
                println!("{name:<10} still waiting after 1 s: killed");
                kill(child, Signal::SIGKILL).context("kill")?;
                waitpid(child, None).context("waitpid")?;
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
}

/// How often the repeating timer fires once it has expired.
const TICK: Duration = Duration::from_millis(20);

/// One case on queue `id`: a timer of 1 ms, the alarm let through before
/// `msgrcv`, then `msgrcv`.
fn child(id: c_int, name: &str, repeat: Duration) -> ! {
    // ANCHOR: race
    let action = SigAction::new(SigHandler::Handler(tick), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler does nothing.
    let _ = unsafe { sigaction(Signal::SIGALRM, &action) };
    arm(Duration::from_millis(1), repeat);
    // The request is sent here; meanwhile the alarm comes and goes.
    sleep(Duration::from_millis(50));
    let mut buf = [0u8; 64];
    // SAFETY: the kernel writes a long and at most 32 bytes into `buf`.
    let got = unsafe { libc::msgrcv(id, buf.as_mut_ptr().cast(), 32, 0 as c_long, 0) };
    // ANCHOR_END: race
    let error = io::Error::last_os_error();
    println!("{name:<10} msgrcv returned {got}: {error}");
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(0) }
}

/// `setitimer(ITIMER_REAL)`: `SIGALRM` after `first`, then every `then`.
fn arm(first: Duration, then: Duration) {
    let timeval = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: timeval(then),
        it_value: timeval(first),
    };
    // SAFETY: setitimer reads the itimerval we pass.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, ptr::null_mut()) };
}
