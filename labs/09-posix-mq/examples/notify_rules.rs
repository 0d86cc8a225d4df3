//! The rules of `mq_notify`, one by one, with child processes as the other
//! parties: a notification by signal and what its `siginfo_t` says; one
//! notification per registration; one registered process per queue
//! (`EBUSY`); no notification for a queue that was not empty; none while
//! another process is blocked in `mq_receive`; and a notification by thread.
//!
//! Usage (inside `labs/09-posix-mq`): `cargo run --example notify_rules`
//!
//! Where the point is that nothing comes, the example waits 100 ms for it.
//! The queue's name carries the process ID; it is removed at the end.

#[path = "../src/mq.rs"]
pub mod mq;

use std::fs;
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_open, mq_receive, mq_send, mq_unlink};
use nix::sys::signal::{SigEvent, SigSet, SigevNotify, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe, read};

/// Where the thread of a notification by thread writes one byte.
static WOKEN: AtomicI32 = AtomicI32::new(-1);

fn main() -> anyhow::Result<()> {
    let name = format!("/mq-notify.{}", std::process::id());
    let attr = MqAttr::new(0, 4, 32, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
    let queue = mq_open(
        name.as_str(),
        flags,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .with_context(|| format!("mq_open {name}"))?;
    let result = rules(&name, &queue);
    mq_close(queue).context("mq_close")?;
    mq_unlink(name.as_str()).context("mq_unlink")?;
    result
}

fn rules(name: &str, queue: &MqdT) -> anyhow::Result<()> {
    // ANCHOR: signal
    // Block SIGUSR1 first: its default action would end the process.
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    usr1.thread_block().context("sigprocmask")?;
    let by_signal = SigEvent::new(SigevNotify::SigevSignal {
        signal: Signal::SIGUSR1,
        si_value: 0,
    })
    .sigevent();
    register(queue, &by_signal).context("mq_notify")?;
    let sender = in_child("sends \"hello\"", || send_as_child(name, "hello"))?;
    match notification(&usr1)? {
        Some(info) => println!(
            "SIGUSR1: si_code is SI_MESGQ: {}; si_pid is the child's: {}",
            info.si_code == libc::SI_MESGQ,
            // SAFETY: for SI_MESGQ the kernel sets si_pid.
            unsafe { info.si_pid() } == sender.as_raw()
        ),
        None => bail!("no notification came"),
    }
    // ANCHOR_END: signal
    drain(queue)?;

    // ANCHOR: one_shot
    // The notification ended the registration: someone else may register.
    in_child("registers", || register_as_child(name))?;
    // ANCHOR_END: one_shot

    // ANCHOR: busy
    register(queue, &by_signal).context("mq_notify")?;
    in_child("registers", || register_as_child(name))?;
    // ANCHOR_END: busy

    // ANCHOR: not_empty
    in_child("sends \"first\"", || send_as_child(name, "first"))?;
    notification(&usr1)?.context("no notification came")?;
    // Registered again while "first" is still in the queue: "second" does
    // not make the queue go from empty to non-empty.
    register(queue, &by_signal).context("mq_notify")?;
    in_child("sends \"second\"", || send_as_child(name, "second"))?;
    println!("notified: {}", notification(&usr1)?.is_some());
    // ANCHOR_END: not_empty
    drain(queue)?;

    // ANCHOR: receiver
    // The queue is empty and we are registered; a child waits in mq_receive.
    let receiver = blocked_receiver(name)?;
    in_child("sends \"taken\"", || send_as_child(name, "taken"))?;
    let status = waitpid(receiver, None).context("waitpid")?;
    println!(
        "the child blocked in mq_receive got it: {}",
        status == WaitStatus::Exited(receiver, 0)
    );
    println!("notified: {}", notification(&usr1)?.is_some());
    in_child("registers", || register_as_child(name))?;
    // ANCHOR_END: receiver

    // ANCHOR: thread
    // NULL removes our registration; then register for a new thread.
    register_none(queue)?;
    let (woken, wake) = pipe().context("pipe")?;
    WOKEN.store(wake.into_raw_fd(), Ordering::SeqCst);
    register(queue, &mq::thread_notification(wake_main_thread)).context("mq_notify")?;
    in_child("sends \"by thread\"", || send_as_child(name, "by thread"))?;
    let mut byte = [0];
    read(woken.as_fd(), &mut byte).context("read")?;
    println!("main thread: woken by the thread of the notification");
    // ANCHOR_END: thread
    drain(queue)
}

/// `mq_notify(queue, event)`.
fn register(queue: &MqdT, event: &libc::sigevent) -> nix::Result<()> {
    // SAFETY: mq_notify (or glibc, for SIGEV_THREAD) reads the sigevent.
    Errno::result(unsafe { libc::mq_notify(queue.as_fd().as_raw_fd(), event) }).map(drop)
}

/// `mq_notify(queue, NULL)`: no more notification for us.
fn register_none(queue: &MqdT) -> nix::Result<()> {
    // SAFETY: NULL asks for no notification.
    Errno::result(unsafe { libc::mq_notify(queue.as_fd().as_raw_fd(), std::ptr::null()) }).map(drop)
}

/// Runs in a new thread when a message arrives: wakes the main thread.
extern "C" fn wake_main_thread(_: libc::sigval) {
    // SAFETY: a pipe's write end, kept open for the whole program.
    unsafe { libc::write(WOKEN.load(Ordering::SeqCst), [1u8].as_ptr().cast(), 1) };
}

/// Takes the pending SIGUSR1 within 100 ms; `None` if none came.
fn notification(usr1: &SigSet) -> anyhow::Result<Option<libc::siginfo_t>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    let wait = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    // SAFETY: sigtimedwait reads the set and the timeout, fills the info.
    let signal = unsafe { libc::sigtimedwait(usr1.as_ref(), info.as_mut_ptr(), &wait) };
    match Errno::result(signal) {
        Err(Errno::EAGAIN) => Ok(None),
        // SAFETY: zeroed, then filled in by the kernel.
        Ok(_) => Ok(Some(unsafe { info.assume_init() })),
        Err(errno) => Err(errno).context("sigtimedwait"),
    }
}

/// Receives every message in the queue (which the caller knows is there).
fn drain(queue: &MqdT) -> anyhow::Result<()> {
    let mut buffer = [0; 32];
    loop {
        let attr = nix::mqueue::mq_getattr(queue).context("mq_getattr")?;
        if attr.curmsgs() == 0 {
            return Ok(());
        }
        mq_receive(queue, &mut buffer, &mut 0).context("mq_receive")?;
    }
}

/// Forks a child that prints `child DOES: RESULT` and exits; waits for it.
fn in_child(does: &str, act: impl FnOnce() -> nix::Result<()>) -> anyhow::Result<Pid> {
    std::io::stdout().flush()?;
    // SAFETY: single-threaded here; the child prints and leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let code = match act() {
                Ok(()) => {
                    println!("child {does}: ok");
                    0
                }
                Err(errno) => {
                    println!("child {does}: {errno}");
                    1
                }
            };
            // SAFETY: _exit skips the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            waitpid(child, None).context("waitpid")?;
            Ok(child)
        }
    }
}

/// Opens the queue for writing and sends `text`.
fn send_as_child(name: &str, text: &str) -> nix::Result<()> {
    let queue = mq_open(name, MQ_OFlag::O_WRONLY, Mode::empty(), None)?;
    mq_send(&queue, text.as_bytes(), 0)
}

/// Opens the queue and asks for notification by signal.
fn register_as_child(name: &str) -> nix::Result<()> {
    let queue = mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None)?;
    let event = SigEvent::new(SigevNotify::SigevNone).sigevent();
    register(&queue, &event)
}

/// A child asleep in `mq_receive` on the queue, which exits with 0 once it
/// has a message; returns once it sleeps.
fn blocked_receiver(name: &str) -> anyhow::Result<Pid> {
    std::io::stdout().flush()?;
    // SAFETY: single-threaded here; the child receives, prints and _exits.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let mut buffer = [0; 32];
            let received = mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None)
                .and_then(|queue| mq_receive(&queue, &mut buffer, &mut 0));
            let code = if received.is_ok() { 0 } else { 1 };
            // SAFETY: _exit skips the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            // /proc/PID/syscall names the call the child sleeps in.
            let asleep = libc::SYS_mq_timedreceive.to_string();
            while !fs::read_to_string(format!("/proc/{child}/syscall"))?.starts_with(&asleep) {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(child)
        }
    }
}
