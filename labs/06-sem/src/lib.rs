//! # Lab 06: System V semaphores (信号量)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/06-sem.md` and the grading suite
//! `tests/06-sem.rs`. Run `cargo test` in this directory to grade your
//! work; `cargo run -- --help` shows the command you are building.
//!
//! Two files are given: `cli.rs`, the command line, which calls these
//! functions and prints what they return; and `sysv.rs`, a thin safe layer
//! over `semget`, `semop` and `semctl` (one method per system call, errors
//! as `nix::errno::Errno`). Build everything here on `sysv`. You may add
//! private helper functions.
//!
//! Every command takes a **key file**: `ftok(key_file, PROJ_ID)` gives the
//! key that names the semaphore set, so every process given the same file
//! finds the same set.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::path::Path;
use std::time::Duration;

use nix::unistd::Pid;

use self::sysv::SemSet;

pub mod cli;
pub mod sysv;

/// The `proj_id` that every command passes to `ftok` with its key file.
pub const PROJ_ID: u8 = b'S';

// ANCHOR: p_v
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
    // TODO(1): one sembuf with sem_op -1; semop; retry on EINTR.
    todo!("TODO(1): p")
}

/// **V** (释放资源, "give one back"): `sem_op: +1`, with `SEM_UNDO` if
/// `undo` (then the kernel also cancels the adjustment the matching P
/// recorded). It never sleeps, and it wakes the processes whose operations
/// can now proceed. Errors: context `V on semaphore NUM`.
pub fn v(set: SemSet, num: u16, undo: bool) -> anyhow::Result<()> {
    // TODO(1): one sembuf with sem_op +1.
    todo!("TODO(1): v")
}

/// A P that never sleeps: `sem_flg` is `IPC_NOWAIT`. Returns `Ok(true)` if
/// it took one, `Ok(false)` if the value was 0 (`semop` failed with
/// `EAGAIN`, and nothing changed). Other errors: context `P on semaphore
/// NUM`.
pub fn try_p(set: SemSet, num: u16) -> anyhow::Result<bool> {
    // TODO(1): IPC_NOWAIT; EAGAIN means "would block".
    todo!("TODO(1): try_p")
}

/// Waits until semaphore `num` is 0: `sem_op: 0`. It changes nothing; it
/// is how a process sleeps until a count of outstanding work drops to
/// zero. Retry on `EINTR`; errors: context `wait for zero on semaphore NUM`.
pub fn wait_zero(set: SemSet, num: u16) -> anyhow::Result<()> {
    // TODO(1): one sembuf with sem_op 0.
    todo!("TODO(1): wait_zero")
}
// ANCHOR_END: p_v

// ANCHOR: report_types
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
// ANCHOR_END: report_types

// ANCHOR: report
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
    // TODO(2): ftok, open, IPC_STAT, GETALL, GETPID/GETNCNT/GETZCNT.
    todo!("TODO(2): report")
}
// ANCHOR_END: report

// ANCHOR: count
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
    // TODO(3): counter file, lock set, fork workers, reap, read, remove.
    todo!("TODO(3): count")
}
// ANCHOR_END: count

// ANCHOR: p_timeout
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
    // TODO(4): semtimedop; EAGAIN means the time ran out.
    todo!("TODO(4): p_timeout")
}
// ANCHOR_END: p_timeout

// ANCHOR: create_ready
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
    // TODO(5): IPC_EXCL, delay, SETALL, then a no-op semop to publish.
    todo!("TODO(5): create_ready")
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
    // TODO(5): open, then wait for sem_otime != 0, at most `limit`.
    todo!("TODO(5): open_ready")
}
// ANCHOR_END: create_ready
