//! # Lab 10: POSIX shared memory and semaphores (POSIX 共享内存, 信号量)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/10-posix-shm.md` and the grading
//! suite `tests/10-posix-shm.rs`. Run `cargo test` in this directory to
//! grade your work; `cargo run -- --help` shows the command you are
//! building.
//!
//! Three files are given: `cli.rs`, the command line, which calls these
//! functions and prints what they return; `posix.rs`, a thin safe layer
//! over `mmap`, POSIX semaphores and pthread mutexes and condition
//! variables in shared memory (nix has shm_open, ftruncate, fstat and
//! shm_unlink: use those directly); and `layout.rs`, the documented layout
//! of the lab's counter and ring objects. You may add private helper
//! functions.
//!
//! Every object is named by a POSIX IPC name such as `/jobs`, which any
//! other program on the machine can open too.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::time::Duration;

use self::layout::{CounterBlock, Record, RingHeader};
use self::posix::{Deadline, Mapping, NamedSemaphore, Shared, SharedSemaphore};

pub mod cli;
pub mod layout;
pub mod posix;

// ANCHOR: names_objects
/// The longest name after the leading `/`: `NAME_MAX`, as for a file in
/// `/dev/shm` (a semaphore's name loses 4 more to its `sem.` prefix).
pub const NAME_MAX: usize = 255;

/// An open POSIX shared memory object.
#[derive(Debug)]
pub struct Object {
    /// The name it was opened by, such as `/jobs`.
    pub name: String,
    /// The descriptor `shm_open` returned (closed when dropped).
    pub fd: OwnedFd,
    /// `st_size` from `fstat`: the size its creator set with `ftruncate`.
    pub size: u64,
    /// `st_mode & 0o777` from `fstat`: its permission bits.
    pub mode: u32,
    /// `st_uid` from `fstat`: its owner.
    pub owner: u32,
}

/// Checks that `name` is a portable POSIX IPC name and returns it as a C
/// string: a `/`, then 1 to [`NAME_MAX`] bytes, none of them `/` or NUL.
/// Errors name the rule that was broken, e.g. `"jobs" is not a POSIX IPC
/// name: it must start with '/'`.
///
/// glibc's `shm_open` would accept `jobs` or `//jobs` too, but POSIX leaves
/// any name but `/jobs` to the implementation: other systems treat them as
/// paths, or refuse them. The lab takes only what works everywhere.
pub fn check_name(name: &str) -> anyhow::Result<CString> {
    // TODO(1): the rules of a portable name.
    todo!("TODO(1): check_name")
}

/// Creates the shared memory object `name` with `size` bytes and the
/// permission bits `mode` (the umask applies):
///
/// 1. [`check_name`];
/// 2. `shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode)`: a new object, or
///    `EEXIST` if the name is taken (never quietly reuse someone else's);
/// 3. `ftruncate(fd, size)`: a new object has 0 bytes; this gives it its
///    size, filled with zeros;
/// 4. `fstat` for the [`Object`]'s fields.
///
/// Errors carry the context `create NAME` and keep their errno. If a step
/// after `shm_open` fails, `shm_unlink` the name before returning: a failed
/// create leaves nothing in `/dev/shm`.
pub fn create(name: &str, size: u64, mode: u32) -> anyhow::Result<Object> {
    // TODO(1): shm_open(O_CREAT | O_EXCL | O_RDWR), ftruncate, fstat.
    todo!("TODO(1): create")
}

/// Opens the existing shared memory object `name` (after [`check_name`]):
/// `shm_open(name, O_RDWR, 0)` if `writable`, else `O_RDONLY`; then `fstat`
/// for its size, mode and owner. Context `open NAME`: `ENOENT` (no such
/// object), `EACCES` (its mode denies the access asked for).
pub fn open(name: &str, writable: bool) -> anyhow::Result<Object> {
    // TODO(1): shm_open(O_RDWR or O_RDONLY), fstat.
    todo!("TODO(1): open")
}

/// Maps all of `object` (`Mapping::new(fd, size, writable)`): `writable`
/// needs an object opened for writing. An object of 0 bytes cannot be
/// mapped: say so (`NAME is empty (0 bytes): nothing to map`) rather than
/// pass `mmap` a length of 0. Context `mmap NAME` for `mmap`'s errors.
pub fn map(object: &Object, writable: bool) -> anyhow::Result<Mapping> {
    // TODO(1): refuse 0 bytes, then Mapping::new.
    todo!("TODO(1): map")
}

/// Removes the name (after [`check_name`]): `shm_unlink`. Processes that
/// have the object mapped keep it until they unmap it; the name may be
/// created again at once. Context `unlink NAME`: `ENOENT`.
pub fn unlink(name: &str) -> anyhow::Result<()> {
    // TODO(1): shm_unlink.
    todo!("TODO(1): unlink")
}
// ANCHOR_END: names_objects

// ANCHOR: semaphores
/// Creates the named semaphore `name` with the initial `value` and the
/// permission bits `mode` (after [`check_name`]):
/// `NamedSemaphore::create`, which is `sem_open(name, O_CREAT | O_EXCL,
/// mode, value)`. Context `create semaphore NAME`: `EEXIST`, `EINVAL`
/// (`value` above `SEM_VALUE_MAX`), `ENAMETOOLONG` (a semaphore's name may
/// have at most 251 bytes after the `/`).
pub fn sem_create(name: &str, value: u32, mode: u32) -> anyhow::Result<NamedSemaphore> {
    // TODO(2): NamedSemaphore::create.
    todo!("TODO(2): sem_create")
}

/// P on `sem`: takes one unit, sleeping while there is none, for at most
/// `timeout` if one is given (`sem_timedwait` with a [`Deadline`] made once,
/// before the first wait), else for as long as it takes (`sem_wait`).
///
/// A signal handler that runs while it sleeps can make the call fail with
/// `EINTR`, having taken nothing: always if the handler was installed
/// without `SA_RESTART`, and for `sem_timedwait` even with it (Linux
/// restarts only `sem_wait`). Call `interrupted()` and wait again, until
/// the same deadline. Errors: `ETIMEDOUT` as `timed out after N ms`; any
/// other errno with context.
pub fn wait(
    sem: &SharedSemaphore,
    timeout: Option<Duration>,
    interrupted: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    // TODO(2): sem_wait or sem_timedwait until one deadline; EINTR: again.
    todo!("TODO(2): wait")
}

/// `sem_trywait` on `sem`: `Ok(true)` if it took one unit, `Ok(false)` if
/// the value was 0 (`EAGAIN`); any other error with context.
pub fn try_wait(sem: &SharedSemaphore) -> anyhow::Result<bool> {
    // TODO(2): sem_trywait; EAGAIN is Ok(false).
    todo!("TODO(2): try_wait")
}
// ANCHOR_END: semaphores

// ANCHOR: counter
/// A counter object, mapped: `Deref`s to its [`CounterBlock`].
pub type Counter = Shared<CounterBlock>;

/// Creates the counter object `name`:
///
/// 1. [`create`] it with `size_of::<CounterBlock>()` bytes, mode 0600;
/// 2. [`map`] it writable and view it as a block (`Shared::new`: state in
///    a `// SAFETY:` comment why its precondition holds);
/// 3. initialise `mutex` (process-shared **and** robust) and `changed`
///    (process-shared) with their `unsafe` `init`;
/// 4. publish it: store [`layout::COUNTER_MAGIC`] in `magic` with
///    `Ordering::Release`, last.
///
/// If anything fails after step 1, [`unlink`] the name, then return the
/// error.
pub fn counter_create(name: &str) -> anyhow::Result<Counter> {
    // TODO(3): create, map, Shared::new, init mutex and cond, publish the magic word.
    todo!("TODO(3): counter_create")
}

/// Opens the counter object `name`: [`open`] it writable, [`map`] it, check
/// that it holds a whole [`CounterBlock`] and that its magic word (loaded
/// with `Mapping::load_u32(0)`, an acquire load) is [`layout::COUNTER_MAGIC`], and
/// only then view it (`Shared::new`). Anything else is refused with `NAME
/// is not a counter`, and a short reason.
pub fn counter_open(name: &str) -> anyhow::Result<Counter> {
    // TODO(3): open, map, check size and magic, Shared::new.
    todo!("TODO(3): counter_open")
}

/// How [`lock_counter`] got the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// From a process that had unlocked it.
    Normally,
    /// From a holder that died holding it: `value` was `found`, and was
    /// set back to `restored` (the `mirror`), the last complete value.
    Repaired {
        /// What `value` held when the lock was taken.
        found: u64,
        /// What it holds now.
        restored: u64,
    },
}

/// Locks the counter's mutex, waiting until `deadline` at most
/// (`mutex.lock_until`). The mutex is robust: `Err(EOWNERDEAD)` means that
/// this process **has** the lock, and that its last holder died holding
/// it, perhaps half-way through an update. Then repair the data (store
/// `mirror` into `value`), call `mutex.consistent()`, and return
/// [`Locked::Repaired`]. Returns with the lock held.
///
/// Errors: `ETIMEDOUT` as `the lock of the counter is still held after N
/// ms`; `ENOTRECOVERABLE` (someone unlocked after `EOWNERDEAD` without
/// `consistent`) and others with context.
pub fn lock_counter(counter: &CounterBlock, deadline: &Deadline) -> anyhow::Result<Locked> {
    // TODO(3): lock_until; EOWNERDEAD: repair, consistent.
    todo!("TODO(3): lock_counter")
}
// ANCHOR_END: counter

// ANCHOR: add_wait
/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// How it got the lock.
    pub locked: Locked,
    /// The counter after the addition.
    pub value: u64,
}

/// Adds `amount` to the counter (wrapping): [`lock_counter`], store the new
/// value into `value`, then into `mirror`, broadcast `changed` (so that
/// waiters look again), unlock. Errors with context; the lock is released
/// on every path once taken.
pub fn add(counter: &CounterBlock, amount: u64, deadline: &Deadline) -> anyhow::Result<Added> {
    // TODO(4): lock, value, mirror, broadcast, unlock.
    todo!("TODO(4): add")
}

/// Waits until the counter is at least `target`, and returns its value
/// then: [`lock_counter`], then as long as `value < target`,
/// `counter.wait_changed(deadline)`, then unlock. Test the condition in a
/// loop: a wake-up says the value *may* have changed, not that it is big
/// enough (another process may have added less, or the wake-up may be
/// spurious). `ETIMEDOUT` from the wait: `the counter is still N, not
/// TARGET, after MS ms`. `EOWNERDEAD` from the wait: repair as
/// [`lock_counter`] does. The lock is released on every path.
pub fn wait_for(counter: &CounterBlock, target: u64, deadline: &Deadline) -> anyhow::Result<u64> {
    // TODO(4): lock, loop on wait_changed while value < target, unlock.
    todo!("TODO(4): wait_for")
}
// ANCHOR_END: add_wait

// ANCHOR: ring
/// A ring object, mapped: `Deref`s to its [`RingHeader`]; the records
/// follow it in `ring.mapping()`.
pub type Ring = Shared<RingHeader>;

/// Creates the ring object `name` with `slots` slots (at least 1):
///
/// 1. [`create`] it with `ring_size(slots)` bytes, mode 0600;
/// 2. [`map`] it, view it as a [`RingHeader`] (`Shared::new`, with a
///    `// SAFETY:` comment);
/// 3. store `slots` and `RECORD_SIZE`; initialise `mutex` (process-shared,
///    robust), `free` with `slots` and `used` with 0, both process-shared
///    (`sem_init` with pshared = 1);
/// 4. publish: [`layout::RING_MAGIC`] into `magic`, `Ordering::Release`, last.
///
/// If anything fails after step 1, [`unlink`] the name.
pub fn ring_create(name: &str, slots: u32) -> anyhow::Result<Ring> {
    // TODO(5): create, map, Shared::new, slots, init mutex, free and used, publish.
    todo!("TODO(5): ring_create")
}

/// Opens the ring object `name`: [`open`] it writable, [`map`] it, and check
/// it before viewing it (`Shared::new`): at least `RING_HEADER` bytes,
/// magic word (`Mapping::load_u32(0)`) [`layout::RING_MAGIC`], then `record_size`
/// `RECORD_SIZE`, `slots` at least 1 and the object at least
/// `ring_size(slots)` bytes. Anything else is refused with `NAME is not a
/// ring`, and a short reason.
pub fn ring_open(name: &str) -> anyhow::Result<Ring> {
    // TODO(5): open, map, check size, magic, record_size, slots.
    todo!("TODO(5): ring_open")
}
// ANCHOR_END: ring

// ANCHOR: put_take
/// Puts one record into the ring, waiting for a free slot for at most
/// `timeout` (if given):
///
/// 1. P on `free` with [`wait`] (context `no free slot`);
/// 2. lock `mutex` (`EOWNERDEAD`: a producer or consumer died holding it;
///    `head` and `tail` only move once a record is copied, so there is
///    nothing to repair: call `consistent`);
/// 3. copy the record's bytes into slot `tail % slots` (offset
///    `RING_HEADER + slot * RECORD_SIZE`, `mapping().write_at`), then
///    `tail += 1`;
/// 4. unlock;
/// 5. V on `used`: only now may a consumer take it.
pub fn put(ring: &Ring, record: &Record, timeout: Option<Duration>) -> anyhow::Result<()> {
    // TODO(6): P(free), lock, copy into slot tail % slots, tail += 1, unlock, V(used).
    todo!("TODO(6): put")
}

/// Takes one record out of the ring, waiting for one for at most `timeout`
/// (if given): the mirror image of [`put`]. P on `used` (context `no
/// record`), lock, copy slot `head % slots` out (`mapping().read_at`),
/// `head += 1`, unlock, V on `free`: only now may a producer reuse the
/// slot. Returns the record as it was, intact or not.
pub fn take(ring: &Ring, timeout: Option<Duration>) -> anyhow::Result<Record> {
    // TODO(6): P(used), lock, copy out of slot head % slots, head += 1, unlock, V(free).
    todo!("TODO(6): take")
}
// ANCHOR_END: put_take
