//! A tour of synchronisation in shared memory: a named semaphore is a small
//! file in /dev/shm; which waits a signal interrupts (EINTR) with and
//! without SA_RESTART; a semaphore that is not process-shared loses its
//! wake-ups; a mutex whose holder is killed, robust or not.
//!
//! Usage (inside `labs/10-posix-shm`): `cargo run --example sync_tour`
//!
//! The objects it maps are unlinked as soon as they are mapped (the
//! memory stays shared with the children it forks), and its named
//! semaphore is unlinked before it ends.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, ftruncate, getpid};

#[path = "../src/posix.rs"]
pub mod posix;

use posix::{
    Deadline, Mapping, MutexAttributes, NamedSemaphore, Shared, SharedLayout, SharedMutex,
    SharedSemaphore,
};

/// The block every demonstration shares with a child.
#[repr(C)]
struct Block {
    sem: SharedSemaphore,
    mutex: SharedMutex,
}

// SAFETY: repr(C), synchronisation objects only.
unsafe impl SharedLayout for Block {}

fn main() -> anyhow::Result<()> {
    named()?;
    eintr()?;
    private_semaphore()?;
    robust()
}

fn named() -> anyhow::Result<()> {
    // ANCHOR: named
    let name = CString::new(format!("/sync-tour-{}", getpid()))?;
    let sem = NamedSemaphore::create(&name, 0o600, 3).context("sem_open")?;
    let file = format!("/dev/shm/sem.{}", &name.to_string_lossy()[1..]);
    let size = Path::new(&file).metadata().map(|m| m.len());
    show(
        "sem_open(\"/sync-tour-…\", O_CREAT | O_EXCL, 0600, 3)",
        "made",
    );
    show("  it is the file /dev/shm/sem.sync-tour-…, bytes", size?);
    show("  sem_getvalue", sem.value()?);
    NamedSemaphore::unlink(&name).context("sem_unlink")?;
    sem.try_wait()?;
    show("  after sem_unlink, still usable: value", sem.value()?);
    // ANCHOR_END: named
    Ok(())
}

/// A fresh block in a fresh object, already unlinked: shared with the
/// children forked from now on, gone with the last of them.
fn block() -> anyhow::Result<Shared<Block>> {
    let name = format!("/sync-tour-block-{}", getpid());
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
    let fd = shm_open(name.as_str(), flags, Mode::from_bits_truncate(0o600))?;
    shm_unlink(name.as_str())?;
    ftruncate(&fd, size_of::<Block>() as i64)?;
    let mapping = Mapping::new(fd.as_fd(), size_of::<Block>(), true)?;
    // SAFETY: fresh, zero-filled, and ours alone until we fork.
    Ok(unsafe { Shared::new(mapping) }?)
}

/// Forks a child that runs `child` and `_exit`s with what it returns.
fn spawn(child: impl FnOnce() -> i32) -> anyhow::Result<Pid> {
    // SAFETY: single-threaded; the child runs `child`, then _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let code = child();
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

extern "C" fn nothing(_: libc::c_int) {}

fn eintr() -> anyhow::Result<()> {
    // ANCHOR: eintr
    for flags in [SaFlags::empty(), SaFlags::SA_RESTART] {
        let action = SigAction::new(SigHandler::Handler(nothing), flags, SigSet::empty());
        // SAFETY: the handler does nothing.
        unsafe { sigaction(Signal::SIGUSR1, &action) }?;
        for timed in [false, true] {
            let block = block()?;
            // SAFETY: nobody else uses it yet.
            unsafe { block.sem.init(true, 0) }?;
            let parent = getpid();
            let child = spawn(|| {
                sleep(Duration::from_millis(100));
                let _ = kill(parent, Signal::SIGUSR1);
                sleep(Duration::from_millis(100));
                i32::from(block.sem.post().is_err())
            })?;
            let result = match timed {
                true => block
                    .sem
                    .wait_until(&Deadline::after(Duration::from_secs(2))),
                false => block.sem.wait(),
            };
            waitpid(child, None)?;
            let call = if timed { "sem_timedwait" } else { "sem_wait" };
            let how = if flags.is_empty() {
                "no SA_RESTART"
            } else {
                "SA_RESTART"
            };
            show(
                &format!("{call}, SIGUSR1 handler with {how}"),
                outcome(result),
            );
        }
    }
    // ANCHOR_END: eintr
    Ok(())
}

fn private_semaphore() -> anyhow::Result<()> {
    // ANCHOR: private
    for process_shared in [true, false] {
        let block = block()?;
        // SAFETY: nobody else uses it yet.
        unsafe { block.sem.init(process_shared, 0) }?;
        let child = spawn(|| {
            let deadline = Deadline::after(Duration::from_millis(500));
            i32::from(block.sem.wait_until(&deadline).is_err())
        })?;
        sleep(Duration::from_millis(100)); // let the child fall asleep
        block.sem.post()?;
        let woken = waitpid(child, None)? == WaitStatus::Exited(child, 0);
        show(
            &format!(
                "sem_init(pshared = {}): child asleep in sem_wait",
                u8::from(process_shared)
            ),
            if woken {
                "woken by the parent's sem_post"
            } else {
                "never woken (timed out)"
            },
        );
    }
    // ANCHOR_END: private
    Ok(())
}

fn robust() -> anyhow::Result<()> {
    // ANCHOR: robust
    for (robust, repair) in [(true, true), (true, false), (false, false)] {
        let block = block()?;
        let attributes = MutexAttributes {
            process_shared: true,
            robust,
        };
        // SAFETY: nobody else uses it yet.
        unsafe { block.mutex.init(attributes) }?;
        let child = spawn(|| {
            let _ = block
                .mutex
                .lock_until(&Deadline::after(Duration::from_secs(1)));
            let _ = kill(getpid(), Signal::SIGKILL); // dies holding the lock
            1
        })?;
        waitpid(child, None)?;
        let soon = || Deadline::after(Duration::from_millis(300));
        let first = block.mutex.lock_until(&soon());
        let mut label = format!("robust = {robust}: lock after the holder's SIGKILL");
        show(&label, outcome(first));
        if first == Err(Errno::EOWNERDEAD) {
            if repair {
                block.mutex.consistent()?;
            }
            block.mutex.unlock()?;
            label = format!(
                "  then {}unlock, lock again",
                if repair { "consistent, " } else { "" }
            );
            show(&label, outcome(block.mutex.lock_until(&soon())));
        }
    }
    // ANCHOR_END: robust
    Ok(())
}

fn outcome(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(errno) => errno.to_string(),
    }
}

fn show(label: &str, value: impl std::fmt::Display) {
    println!("{label:<58} {value}");
}
