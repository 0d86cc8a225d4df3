//! # Lab 06: System V semaphores (信号量) — reference solution
//!
//! The same functions as `labs/06-sem/src/lib.rs`, done. Read it after you
//! have written your own: compare where each set is removed, and how each
//! errno is turned into an answer or an error.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use libc::c_int;
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use self::sysv::{SemSet, sembuf};

#[path = "../../../labs/06-sem/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/06-sem/src/sysv.rs"]
pub mod sysv;

/// The `proj_id` that every command passes to `ftok` with its key file.
pub const PROJ_ID: u8 = b'S';

/// **P** (申请资源, "take one"): one `semop` with one `sembuf`,
/// `{ sem_num: num, sem_op: -1, sem_flg }`. While the value is 0 the call
/// sleeps; the kernel subtracts 1 only when it can do so without going
/// below 0, so testing and decrementing are one atomic step.
///
/// With `undo`, `sem_flg` is `SEM_UNDO`: the kernel remembers the unit this
/// process took and gives it back if the process ends without its V (a
/// crash, `SIGKILL`). Without it, `sem_flg` is 0.
///
/// If `semop` fails with `EINTR` (a signal handler ran while it slept, and
/// nothing was taken), call it again. Any other error is returned with the
/// context `P on semaphore NUM`, e.g. `P on semaphore 7: EFBIG: File too
/// large` when the set has fewer than 8 semaphores.
pub fn p(set: SemSet, num: u16, undo: bool) -> anyhow::Result<()> {
    op_retrying(set, &[one(num, -1, undo_flag(undo))])
        .with_context(|| format!("P on semaphore {num}"))
}

/// **V** (释放资源, "give one back"): `sem_op: +1`, with `SEM_UNDO` if
/// `undo` (then the kernel also cancels the adjustment the matching P
/// recorded). It never sleeps, and it wakes the processes whose operations
/// can now proceed. Errors: context `V on semaphore NUM`.
pub fn v(set: SemSet, num: u16, undo: bool) -> anyhow::Result<()> {
    op_retrying(set, &[one(num, 1, undo_flag(undo))])
        .with_context(|| format!("V on semaphore {num}"))
}

/// A P that never sleeps: `sem_flg` is `IPC_NOWAIT`. Returns `Ok(true)` if
/// it took one, `Ok(false)` if the value was 0 (`semop` failed with
/// `EAGAIN`, and nothing changed). Other errors: context `P on semaphore
/// NUM`.
pub fn try_p(set: SemSet, num: u16) -> anyhow::Result<bool> {
    match set.op(&[one(num, -1, libc::IPC_NOWAIT)]) {
        Ok(()) => Ok(true),
        Err(Errno::EAGAIN) => Ok(false),
        Err(errno) => Err(errno).with_context(|| format!("P on semaphore {num}")),
    }
}

/// Waits until semaphore `num` is 0: `sem_op: 0`. It changes nothing; it
/// is how a process sleeps until a count of outstanding work drops to
/// zero. Retry on `EINTR`; errors: context `wait for zero on semaphore NUM`.
pub fn wait_zero(set: SemSet, num: u16) -> anyhow::Result<()> {
    op_retrying(set, &[one(num, 0, 0)]).with_context(|| format!("wait for zero on semaphore {num}"))
}

/// One semaphore of a set, as `semctl` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semaphore {
    /// `semval`: the current value (`GETVAL`, or one entry of `GETALL`).
    pub value: u16,
    /// `sempid`: the last process that operated on it (`GETPID`), if any.
    pub last_pid: Option<Pid>,
    /// `semncnt`: processes sleeping until the value grows (`GETNCNT`).
    pub ncnt: u16,
    /// `semzcnt`: processes sleeping until the value is 0 (`GETZCNT`).
    pub zcnt: u16,
}

/// What `semctl` says about a whole set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetReport {
    /// The identifier `semget` returned (`ipcs -s` shows it too).
    pub semid: i32,
    /// `sem_nsems`: how many semaphores the set has.
    pub nsems: usize,
    /// `sem_perm.uid` and `sem_perm.gid`: the owner (`IPC_SET` may change it).
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// `sem_perm.cuid` and `sem_perm.cgid`: the creator (never changes).
    pub cuid: u32,
    /// See `cuid`.
    pub cgid: u32,
    /// `sem_perm.mode & 0o777`: the permission bits, as for a file.
    pub mode: u16,
    /// `sem_otime`: seconds since the epoch of the last `semop`; 0 until
    /// the first one.
    pub otime: i64,
    /// `sem_ctime`: seconds since the epoch of the creation or the last
    /// `SETVAL`, `SETALL` or `IPC_SET`.
    pub ctime: i64,
    /// One entry per semaphore, `0..nsems`.
    pub semaphores: Vec<Semaphore>,
}

/// Opens the set of `key_file` and asks the kernel everything about it:
///
/// 1. `ftok(key_file, PROJ_ID)` (context: `ftok KEY_FILE`), then
///    `SemSet::open` (context: `no semaphore set for KEY_FILE`);
/// 2. `IPC_STAT` for the `semid_ds`: owner, creator, mode, `sem_nsems`,
///    `sem_otime`, `sem_ctime` (context: `IPC_STAT`);
/// 3. `GETALL` for the values, and for each semaphore `GETPID`, `GETNCNT`
///    and `GETZCNT`.
///
/// Any failure is returned with its context: a missing key file is
/// `ENOENT` from `ftok`, a key without a set is `ENOENT` from `semget`, a
/// set whose mode denies you reading is `EACCES` from `IPC_STAT`.
pub fn report(key_file: &Path) -> anyhow::Result<SetReport> {
    let set = open(key_file)?;
    let ds = set.stat().context("IPC_STAT")?;
    let values = set.get_all().context("GETALL")?;
    let semaphores = (0..)
        .zip(values)
        .map(|(num, value)| describe(set, num, value))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(SetReport {
        semid: set.id(),
        nsems: usize::try_from(ds.sem_nsems).context("sem_nsems out of range")?,
        uid: ds.sem_perm.uid,
        gid: ds.sem_perm.gid,
        cuid: ds.sem_perm.cuid,
        cgid: ds.sem_perm.cgid,
        mode: ds.sem_perm.mode & 0o777,
        otime: ds.sem_otime,
        ctime: ds.sem_ctime,
        semaphores,
    })
}

/// The figures `semctl` keeps for semaphore `num`, whose value is `value`.
fn describe(set: SemSet, num: u16, value: u16) -> anyhow::Result<Semaphore> {
    Ok(Semaphore {
        value,
        last_pid: set.get_pid(num).context("GETPID")?,
        ncnt: set.get_ncnt(num).context("GETNCNT")?,
        zcnt: set.get_zcnt(num).context("GETZCNT")?,
    })
}

/// `procs` processes each add 1 to a shared counter `times` times; returns
/// the final value. With `lock`, a binary semaphore (二值信号量) makes each
/// increment a critical section (临界区); without it, updates get lost.
///
/// * The counter is 8 bytes (a `u64`, little-endian) at offset 0 of the
///   file `counter`: create or truncate it and write 0 before forking.
/// * With `lock`: create a set of **one** semaphore under
///   `ftok(key_file, PROJ_ID)` with `SemSet::create(key, 1, 0o600)` and set
///   its value to 1 (free). Remove it before returning, on every path.
/// * Each child, `times` times: [`p`] (with `undo`, so that a worker that
///   dies cannot leave the lock taken), read the counter
///   (`FileExt::read_exact_at`), `std::thread::yield_now()` (which is
///   `sched_yield`: it invites another process to run right there), write
///   the value + 1 (`write_all_at`), [`v`] (with `undo`). Then `_exit(0)`,
///   or `_exit(1)` after an error. Without `lock`, the same steps without
///   P and V.
/// * The parent forks every child first, then waits for all of them, then
///   reads the counter. A child that did not exit with 0 is an error.
pub fn count(
    key_file: &Path,
    counter: &Path,
    procs: u16,
    times: u32,
    lock: bool,
) -> anyhow::Result<u64> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(counter)
        .with_context(|| format!("open {}", counter.display()))?;
    file.write_all_at(&0u64.to_le_bytes(), 0)
        .context("write the counter")?;
    let lock = if lock {
        Some(create_lock(key_file)?)
    } else {
        None
    };
    let total = run_workers(&file, lock, procs, times).and_then(|()| read_counter(&file));
    // Whatever happened to the workers, the set must not outlive us.
    let removed = match lock {
        Some(set) => set.remove().context("remove the lock (IPC_RMID)"),
        None => Ok(()),
    };
    let total = total?;
    removed?;
    Ok(total)
}

/// A new set of one semaphore under the key of `key_file`, value 1: free.
fn create_lock(key_file: &Path) -> anyhow::Result<SemSet> {
    let set = SemSet::create(key_of(key_file)?, 1, 0o600)
        .with_context(|| format!("create the lock for {}", key_file.display()))?;
    if let Err(errno) = set.set_val(0, 1) {
        let _ = set.remove();
        return Err(errno).context("SETVAL");
    }
    Ok(set)
}

/// Forks `procs` workers, then reaps every one of them.
fn run_workers(file: &File, lock: Option<SemSet>, procs: u16, times: u32) -> anyhow::Result<()> {
    let mut workers = Vec::with_capacity(usize::from(procs));
    let mut fork_error = None;
    for _ in 0..procs {
        // SAFETY: single-threaded; the child only increments and calls _exit.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let code = match increment(file, lock, times) {
                    Ok(()) => 0,
                    Err(error) => {
                        eprintln!("sem: worker: {error:#}");
                        1
                    }
                };
                exit_child(code)
            }
            Ok(ForkResult::Parent { child }) => workers.push(child),
            Err(errno) => {
                // Stop forking, but still reap the workers already running.
                fork_error = Some(errno);
                break;
            }
        }
    }
    // Reap every worker, even after a failed wait: none may be left behind.
    let mut failed = 0;
    let mut wait_error = None;
    for worker in workers {
        match wait_for(worker) {
            Ok(WaitStatus::Exited(_, 0)) => {}
            Ok(_) => failed += 1,
            Err(error) => wait_error = wait_error.or(Some(error)),
        }
    }
    if let Some(errno) = fork_error {
        return Err(errno).context("fork a worker");
    }
    if let Some(error) = wait_error {
        return Err(error);
    }
    if failed > 0 {
        bail!("{failed} worker(s) failed");
    }
    Ok(())
}

/// One worker's loop: read, yield, write back plus one, `times` times;
/// between P and V when there is a lock.
fn increment(file: &File, lock: Option<SemSet>, times: u32) -> anyhow::Result<()> {
    for _ in 0..times {
        if let Some(set) = lock {
            p(set, 0, true)?;
        }
        let value = read_counter(file)?;
        // Another process may run here: without the lock, it reads the
        // same value, and one of the two increments is lost.
        thread::yield_now();
        file.write_all_at(&(value + 1).to_le_bytes(), 0)
            .context("write the counter")?;
        if let Some(set) = lock {
            v(set, 0, true)?;
        }
    }
    Ok(())
}

/// The counter: 8 bytes, little-endian, at offset 0.
fn read_counter(file: &File) -> anyhow::Result<u64> {
    let mut bytes = [0u8; 8];
    file.read_exact_at(&mut bytes, 0)
        .context("read the counter")?;
    Ok(u64::from_le_bytes(bytes))
}

/// A P that gives up: like [`p`], but through `semtimedop`
/// (`SemSet::op_timeout`), which sleeps at most `limit`. Returns
/// `Ok(true)` if it took one, `Ok(false)` if `limit` passed first (the call
/// fails with `EAGAIN` and takes nothing).
///
/// A holder that was killed without `SEM_UNDO` never gives its unit back:
/// a plain P would sleep for ever, and this one reports it instead.
///
/// On `EINTR`, call it again with the time that is left. Other errors:
/// context `P on semaphore NUM`.
pub fn p_timeout(set: SemSet, num: u16, undo: bool, limit: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + limit;
    let take = [one(num, -1, undo_flag(undo))];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match set.op_timeout(&take, left) {
            Ok(()) => return Ok(true),
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).with_context(|| format!("P on semaphore {num}")),
        }
    }
}

/// Creates and initialises the set of `key_file`, in the order that makes
/// it safe for others to open it at any moment:
///
/// 1. `SemSet::create(key, values.len(), 0o600)`: `IPC_EXCL`, so exactly
///    one process creates the set and knows it must initialise it. On
///    `EEXIST`, fail (context: `a semaphore set already exists for
///    KEY_FILE`) and touch nothing;
/// 2. sleep for `delay` (0 except to widen the race window on purpose);
/// 3. `SETALL` with `values`;
/// 4. a `semop` that changes nothing, `[{0, +1, 0}, {0, -1, 0}]` (give one
///    and take it back, atomically), so that `sem_otime` becomes non-zero:
///    the sign that [`open_ready`] waits for.
///
/// If a step after `semget` fails, remove the set before returning the
/// error: a half-made set would make every later opener wait in vain.
pub fn create_ready(key_file: &Path, values: &[u16], delay: Duration) -> anyhow::Result<SemSet> {
    let nsems = u16::try_from(values.len()).context("too many semaphores")?;
    let set = match SemSet::create(key_of(key_file)?, nsems, 0o600) {
        Ok(set) => set,
        Err(Errno::EEXIST) => {
            return Err(Errno::EEXIST).with_context(|| {
                format!("a semaphore set already exists for {}", key_file.display())
            });
        }
        Err(errno) => {
            return Err(errno).with_context(|| format!("create a set for {}", key_file.display()));
        }
    };
    match initialise(set, values, delay) {
        Ok(()) => Ok(set),
        Err(error) => {
            let _ = set.remove();
            Err(error)
        }
    }
}

/// Steps 2 to 4 of [`create_ready`]: wait, set the values, publish.
fn initialise(set: SemSet, values: &[u16], delay: Duration) -> anyhow::Result<()> {
    // Until SETALL, an opener would see a set of zeros that nobody meant.
    thread::sleep(delay);
    set.set_all(values).context("SETALL")?;
    // The first semop sets sem_otime: from now on the set is ready.
    op_retrying(set, &[one(0, 1, 0), one(0, -1, 0)]).context("publish the set (no-op semop)")
}

/// Opens the set of `key_file` and waits until its creator has finished
/// initialising it: poll `IPC_STAT` every few milliseconds until
/// `sem_otime` is not 0. If `limit` passes first, fail with a message that
/// says the set is `not initialised after N ms`.
///
/// A key without a set is an error at once (`ENOENT`, context: `no
/// semaphore set for KEY_FILE`): waiting for a set to appear is another
/// problem.
pub fn open_ready(key_file: &Path, limit: Duration) -> anyhow::Result<SemSet> {
    let set = open(key_file)?;
    let deadline = Instant::now() + limit;
    while set.stat().context("IPC_STAT")?.sem_otime == 0 {
        if Instant::now() >= deadline {
            bail!(
                "the semaphore set of {} is not initialised after {} ms (sem_otime is still 0)",
                key_file.display(),
                limit.as_millis()
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
    Ok(set)
}

/// `ftok(key_file, PROJ_ID)`, with the file named in the error.
fn key_of(key_file: &Path) -> anyhow::Result<sysv::Key> {
    sysv::ftok(key_file, PROJ_ID).with_context(|| format!("ftok {}", key_file.display()))
}

/// Opens the existing set of `key_file`.
fn open(key_file: &Path) -> anyhow::Result<SemSet> {
    SemSet::open(key_of(key_file)?)
        .with_context(|| format!("no semaphore set for {}", key_file.display()))
}

/// One `sembuf`: add `delta` to semaphore `num` (or wait for 0 if `delta`
/// is 0), with `flags` (`SEM_UNDO`, `IPC_NOWAIT`, or 0).
fn one(num: u16, delta: i16, flags: c_int) -> sembuf {
    sembuf {
        sem_num: num,
        sem_op: delta,
        // Both flags fit in a short: SEM_UNDO is 0x1000, IPC_NOWAIT 0x800.
        sem_flg: flags as i16,
    }
}

/// `SEM_UNDO` or nothing.
fn undo_flag(undo: bool) -> c_int {
    if undo { libc::SEM_UNDO } else { 0 }
}

/// `semop`, called again after `EINTR`.
fn op_retrying(set: SemSet, ops: &[sembuf]) -> nix::Result<()> {
    loop {
        match set.op(ops) {
            Err(Errno::EINTR) => continue,
            result => return result,
        }
    }
}

/// Waits for `child` to end (retrying if a signal interrupts the wait).
fn wait_for(child: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            result => return result.with_context(|| format!("waitpid {child}")),
        }
    }
}

/// Ends a child process at once with `_exit(2)`.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
