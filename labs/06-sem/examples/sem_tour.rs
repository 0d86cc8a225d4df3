//! A tour of `semctl` and `semop` on one set of three semaphores: every
//! `semctl` command the chapter lists, the three kinds of `sem_op`, an
//! atomic array of operations, and what a sleeping process sees when the
//! set is removed.
//!
//! Usage (inside `labs/06-sem`): `cargo run --example sem_tour`
//!
//! The set is made with `IPC_PRIVATE`: only this process and the children
//! it forks know its identifier. It is removed at the end, whatever happens
//! in between.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};
#[path = "../src/sysv.rs"]
pub mod sysv;

use sysv::{SemSet, sembuf};

fn main() -> anyhow::Result<()> {
    let set = SemSet::create_private(3, 0o600).context("semget(IPC_PRIVATE)")?;
    let result = tour(set);
    // Removing an already removed set fails with EINVAL: nothing to undo.
    let _ = set.remove();
    result
}

fn tour(set: SemSet) -> anyhow::Result<()> {
    // ANCHOR: setall
    let ds = set.stat().context("IPC_STAT")?;
    show("semget: sem_nsems", ds.sem_nsems);
    show("semget: sem_otime", ds.sem_otime);
    show(
        "values of a new set (GETALL)",
        format!("{:?}", set.get_all()?),
    );
    set.set_all(&[1, 0, 2]).context("SETALL")?;
    show("after SETALL [1, 0, 2]", format!("{:?}", set.get_all()?));
    set.set_val(1, 5).context("SETVAL")?;
    show("after SETVAL(1, 5): GETVAL(1)", set.get_val(1)?);
    // ANCHOR_END: setall

    // ANCHOR: semop
    set.op(&[op(0, -1, 0)]).context("P on 0")?;
    show("P on 0: GETVAL(0)", set.get_val(0)?);
    show("GETPID(0)", who(set.get_pid(0)?, None));
    show(
        "sem_otime after the first semop",
        if set.stat()?.sem_otime != 0 {
            "set"
        } else {
            "0"
        },
    );
    // P on 0 and P on 1 in one call: 0 cannot be taken, so neither is.
    let nowait = libc::IPC_NOWAIT;
    match set.op(&[op(1, -1, nowait), op(0, -1, nowait)]) {
        Err(Errno::EAGAIN) => show("[P(1), P(0)] with IPC_NOWAIT", "EAGAIN"),
        other => bail!("expected EAGAIN, got {other:?}"),
    }
    show("GETVAL(1): untouched", set.get_val(1)?);
    // ANCHOR_END: semop

    // ANCHOR: ncnt
    let child = spawn(|| set.op(&[op(0, -1, 0)]))?; // sleeps: 0 is 0
    wait_until(|| set.get_ncnt(0), 1)?;
    show("a child sleeps in P(0): GETNCNT(0)", set.get_ncnt(0)?);
    set.op(&[op(0, 1, 0)]).context("V on 0")?;
    show("V on 0 wakes it", describe(wait(child)?));
    show("GETPID(0)", who(set.get_pid(0)?, Some(child)));
    // ANCHOR_END: ncnt

    // ANCHOR: zcnt
    let child = spawn(|| set.op(&[op(2, 0, 0)]))?; // sleeps: 2 is 2
    wait_until(|| set.get_zcnt(2), 1)?;
    show("a child waits for 2 to be 0: GETZCNT(2)", set.get_zcnt(2)?);
    set.op(&[op(2, -2, 0)]).context("take 2 from 2")?;
    show("sem_op -2 on 2 wakes it", describe(wait(child)?));
    // ANCHOR_END: zcnt

    // ANCHOR: eidrm
    let child = spawn(|| set.op(&[op(0, -1, 0)]))?; // sleeps: 0 is 0 again
    wait_until(|| set.get_ncnt(0), 1)?;
    set.remove().context("IPC_RMID")?;
    show("IPC_RMID while a child sleeps in P", describe(wait(child)?));
    match set.get_val(0) {
        Err(errno) => show("GETVAL after IPC_RMID", errno),
        Ok(value) => bail!("the set is still there, value {value}"),
    }
    // ANCHOR_END: eidrm
    Ok(())
}

// ANCHOR: op
/// One `sembuf`: add `delta` to semaphore `num` (0: wait for zero).
fn op(num: u16, delta: i16, flags: i32) -> sembuf {
    sembuf {
        sem_num: num,
        sem_op: delta,
        sem_flg: flags as i16,
    }
}
// ANCHOR_END: op

/// Forks a child that runs `semop` and exits with 0, or with the errno
/// number if the call failed.
fn spawn(semop: impl FnOnce() -> nix::Result<()>) -> anyhow::Result<Pid> {
    // SAFETY: single-threaded; the child makes one system call and _exits.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let code = match semop() {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: _exit never returns and runs no destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Polls a `semctl` count until it equals `wanted` (at most 2 s).
fn wait_until(count: impl Fn() -> nix::Result<u16>, wanted: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while count()? != wanted {
        if Instant::now() > deadline {
            bail!("the child never went to sleep");
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn wait(child: Pid) -> anyhow::Result<WaitStatus> {
    waitpid(child, None).context("waitpid")
}

/// "the child's semop succeeded", or the errno it failed with.
fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, 0) => "the child's semop returned 0".to_string(),
        WaitStatus::Exited(_, code) => {
            format!("the child's semop failed: {}", Errno::from_raw(code))
        }
        other => format!("{other:?}"),
    }
}

/// A pid as a relation: this process, the child, or nobody.
fn who(pid: Option<Pid>, child: Option<Pid>) -> &'static str {
    match pid {
        None => "nobody (0)",
        Some(pid) if pid == getpid() => "this process",
        Some(pid) if Some(pid) == child => "the child",
        Some(_) => "another process",
    }
}

fn show(label: &str, value: impl std::fmt::Display) {
    println!("{label:<42} {value}");
}
