//! Several children end at once: the parent gets one SIGCHLD for all of
//! them, and a `waitpid(-1, WNOHANG)` loop reaps every one. The signal
//! arrives as a readable event, twice: through a signalfd, then through a
//! self-pipe written by a handler; a `poll` waits on the descriptor.
//!
//! Usage (inside `labs/11-signals`): `cargo run --example sigchld_events`
//!
//! The children end while SIGCHLD is blocked, and the parent lets it in
//! only once `waitid(WNOWAIT)` has seen every one of them end: the
//! signals then collapse into one, every time.

use std::ffi::c_int;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{ForkResult, Pid, fork, pipe2};

#[path = "../src/sig.rs"]
pub mod sig;

use sig::{Action, SigMask, sigaction};

const CHILDREN: usize = 4;

fn main() -> anyhow::Result<()> {
    let chld = SigMask::of(&[Signal::SIGCHLD.into()]);
    let before = chld.block()?;
    through_a_signalfd(&chld)?;
    through_a_self_pipe(&chld)?;
    before.set()?;
    Ok(())
}

/// Forks `CHILDREN` children that exit at once with codes 1, 2, …, and
/// returns once all have ended (without reaping them).
fn children_that_end_together() -> anyhow::Result<Vec<Pid>> {
    let mut children = Vec::new();
    for code in 1..=CHILDREN {
        // SAFETY: one thread; the child only exits.
        match unsafe { fork() }? {
            // SAFETY: ends only the child.
            ForkResult::Child => unsafe { libc::_exit(code as c_int) },
            ForkResult::Parent { child } => children.push(child),
        }
    }
    for &child in &children {
        // WNOWAIT: see that it ended, leave it to be reaped.
        waitid(Id::Pid(child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)?;
    }
    Ok(children)
}

// ANCHOR: reap
/// Reaps every child that has ended: one SIGCHLD may stand for many.
fn reap_all() -> anyhow::Result<Vec<String>> {
    let mut reaped = Vec::new();
    loop {
        match sig::waitpid(None, WaitPidFlag::WNOHANG) {
            Ok(Some((pid, status))) => reaped.push(format!("{pid}: {status:?}")),
            Ok(None) | Err(Errno::ECHILD) => return Ok(reaped),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}
// ANCHOR_END: reap

/// Waits until `fd` is readable.
fn wait_readable(fd: BorrowedFd<'_>) -> anyhow::Result<()> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    while let Err(errno) = poll(&mut fds, PollTimeout::NONE) {
        if errno != Errno::EINTR {
            return Err(errno.into());
        }
    }
    Ok(())
}

// ANCHOR: signalfd
fn through_a_signalfd(chld: &SigMask) -> anyhow::Result<()> {
    let fd = SignalFd::with_flags(
        &chld.to_sigset(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?;
    children_that_end_together()?;
    wait_readable(fd.as_fd())?;
    let mut reads = 0;
    while let Some(info) = fd.read_signal()? {
        reads += 1;
        println!(
            "signalfd: read signal {} (si_pid {}, si_status {})",
            info.ssi_signo, info.ssi_pid, info.ssi_status
        );
    }
    let reaped = reap_all()?;
    println!(
        "signalfd: {reads} read(s), {} children reaped: {}",
        reaped.len(),
        reaped.join(", ")
    );
    Ok(())
}
// ANCHOR_END: signalfd

// ANCHOR: self_pipe
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

extern "C" fn write_a_byte(signal: c_int) {
    let saved = Errno::last_raw();
    let byte = signal as u8;
    // SAFETY: write(2) is async-signal-safe; a one-byte buffer on the stack.
    unsafe {
        libc::write(
            WRITE_END.load(Ordering::SeqCst),
            (&raw const byte).cast(),
            1,
        )
    };
    Errno::set_raw(saved);
}

fn through_a_self_pipe(chld: &SigMask) -> anyhow::Result<()> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    WRITE_END.store(write_end.as_raw_fd(), Ordering::SeqCst);
    let flags = SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP;
    // SAFETY: the handler calls write(2) only, and restores errno.
    unsafe {
        sigaction(
            Signal::SIGCHLD.into(),
            Action::Handler(write_a_byte),
            flags,
            &SigMask::empty(),
        )
    }?;
    children_that_end_together()?;
    chld.unblock()?; // the one pending SIGCHLD runs the handler now
    wait_readable(read_end.as_fd())?;
    let mut bytes = Vec::new();
    let mut pipe = File::from(read_end);
    let _ = pipe.read_to_end(&mut bytes); // non-blocking: stops at EAGAIN
    let reaped = reap_all()?;
    println!(
        "self-pipe: {} byte(s), {} children reaped: {}",
        bytes.len(),
        reaped.len(),
        reaped.join(", ")
    );
    Ok(())
}
// ANCHOR_END: self_pipe
