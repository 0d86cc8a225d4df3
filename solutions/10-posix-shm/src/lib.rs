//! # Lab 10: POSIX shared memory and semaphores (POSIX 共享内存, 信号量) — reference solution
//!
//! The same functions as `labs/10-posix-shm/src/lib.rs`, done. Read it after
//! you have written your own: compare how every path out of a `create`
//! removes the name again, where each `unsafe` block states why it is
//! sound, and what happens with `EINTR`, `ETIMEDOUT` and `EOWNERDEAD`.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::ftruncate;

use self::layout::{
    COUNTER_MAGIC, CounterBlock, RECORD_SIZE, RING_HEADER, RING_MAGIC, Record, RingHeader,
    ring_size,
};
use self::posix::{Deadline, Mapping, MutexAttributes, NamedSemaphore, Shared, SharedSemaphore};

#[path = "../../../labs/10-posix-shm/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/10-posix-shm/src/layout.rs"]
pub mod layout;
#[path = "../../../labs/10-posix-shm/src/posix.rs"]
pub mod posix;

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
    let rule = match name.strip_prefix('/') {
        None => Some("it must start with '/'"),
        Some("") => Some("it needs at least one character after the '/'"),
        Some(rest) if rest.contains('/') => Some("it may contain no '/' after the first"),
        Some(rest) if rest.len() > NAME_MAX => Some("it is longer than 255 bytes after the '/'"),
        Some(_) => None,
    };
    if let Some(rule) = rule {
        bail!("{name:?} is not a POSIX IPC name: {rule}");
    }
    CString::new(name).with_context(|| format!("{name:?} is not a POSIX IPC name"))
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
    let c_name = check_name(name)?;
    let length = i64::try_from(size)
        .ok()
        .with_context(|| format!("create {name}: {size} bytes is too large for ftruncate"))?;
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
    let fd = shm_open(c_name.as_c_str(), flags, Mode::from_bits_truncate(mode))
        .with_context(|| format!("create {name}"))?;
    let sized = ftruncate(&fd, length)
        .with_context(|| format!("create {name}: ftruncate to {size} bytes"))
        .and_then(|()| described(name, fd));
    if sized.is_err() {
        // The name exists only because of us: take it back.
        let _ = shm_unlink(c_name.as_c_str());
    }
    sized
}

/// Opens the existing shared memory object `name` (after [`check_name`]):
/// `shm_open(name, O_RDWR, 0)` if `writable`, else `O_RDONLY`; then `fstat`
/// for its size, mode and owner. Context `open NAME`: `ENOENT` (no such
/// object), `EACCES` (its mode denies the access asked for).
pub fn open(name: &str, writable: bool) -> anyhow::Result<Object> {
    let c_name = check_name(name)?;
    let access = if writable {
        OFlag::O_RDWR
    } else {
        OFlag::O_RDONLY
    };
    let fd = shm_open(c_name.as_c_str(), access, Mode::empty())
        .with_context(|| format!("open {name}"))?;
    described(name, fd)
}

/// Maps all of `object` (`Mapping::new(fd, size, writable)`): `writable`
/// needs an object opened for writing. An object of 0 bytes cannot be
/// mapped: say so (`NAME is empty (0 bytes): nothing to map`) rather than
/// pass `mmap` a length of 0. Context `mmap NAME` for `mmap`'s errors.
pub fn map(object: &Object, writable: bool) -> anyhow::Result<Mapping> {
    let name = &object.name;
    if object.size == 0 {
        bail!("{name} is empty (0 bytes): nothing to map");
    }
    let length = usize::try_from(object.size)
        .with_context(|| format!("mmap {name}: {} bytes", object.size))?;
    Mapping::new(object.fd.as_fd(), length, writable).with_context(|| format!("mmap {name}"))
}

/// Removes the name (after [`check_name`]): `shm_unlink`. Processes that
/// have the object mapped keep it until they unmap it; the name may be
/// created again at once. Context `unlink NAME`: `ENOENT`.
pub fn unlink(name: &str) -> anyhow::Result<()> {
    let c_name = check_name(name)?;
    shm_unlink(c_name.as_c_str()).with_context(|| format!("unlink {name}"))
}

/// Creates the named semaphore `name` with the initial `value` and the
/// permission bits `mode` (after [`check_name`]):
/// `NamedSemaphore::create`, which is `sem_open(name, O_CREAT | O_EXCL,
/// mode, value)`. Context `create semaphore NAME`: `EEXIST`, `EINVAL`
/// (`value` above `SEM_VALUE_MAX`), `ENAMETOOLONG` (a semaphore's name may
/// have at most 251 bytes after the `/`).
pub fn sem_create(name: &str, value: u32, mode: u32) -> anyhow::Result<NamedSemaphore> {
    let c_name = check_name(name)?;
    NamedSemaphore::create(&c_name, mode, value).with_context(|| format!("create semaphore {name}"))
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
    let deadline = timeout.map(Deadline::after);
    loop {
        let result = match &deadline {
            Some(deadline) => sem.wait_until(deadline),
            None => sem.wait(),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => interrupted(),
            Err(Errno::ETIMEDOUT) => bail!("timed out after {} ms", millis(timeout)),
            Err(errno) => return Err(errno).context("sem_wait"),
        }
    }
}

/// `sem_trywait` on `sem`: `Ok(true)` if it took one unit, `Ok(false)` if
/// the value was 0 (`EAGAIN`); any other error with context.
pub fn try_wait(sem: &SharedSemaphore) -> anyhow::Result<bool> {
    match sem.try_wait() {
        Ok(()) => Ok(true),
        Err(Errno::EAGAIN) => Ok(false),
        Err(errno) => Err(errno).context("sem_trywait"),
    }
}

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
    let object = create(name, size_of::<CounterBlock>() as u64, 0o600)?;
    let counter = initialise_counter(&object);
    if counter.is_err() {
        let _ = unlink(name);
    }
    counter
}

/// Opens the counter object `name`: [`open`] it writable, [`map`] it, check
/// that it holds a whole [`CounterBlock`] and that its magic word (loaded
/// with `Mapping::load_u32(0)`, an acquire load) is [`layout::COUNTER_MAGIC`], and
/// only then view it (`Shared::new`). Anything else is refused with `NAME
/// is not a counter`, and a short reason.
pub fn counter_open(name: &str) -> anyhow::Result<Counter> {
    let mapping = map(&open(name, true)?, true)?;
    if mapping.len() < size_of::<CounterBlock>() {
        bail!(
            "{name} is not a counter: {} bytes is too small",
            mapping.len()
        );
    }
    if mapping.load_u32(0).context("load the magic word")? != COUNTER_MAGIC {
        bail!("{name} is not a counter: wrong magic word");
    }
    // SAFETY: the magic word says its creator initialised and published the
    // block; the object is ours (mode 0600), shared only with processes that
    // follow the layout's rules.
    unsafe { Shared::new(mapping) }.with_context(|| format!("{name} is not a counter"))
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
    match counter.mutex.lock_until(deadline) {
        Ok(()) => Ok(Locked::Normally),
        Err(Errno::EOWNERDEAD) => recover(counter),
        Err(Errno::ETIMEDOUT) => bail!(
            "the lock of the counter is still held after {} ms",
            deadline.timeout().as_millis()
        ),
        Err(errno) => Err(errno).context("lock the counter"),
    }
}

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
    let locked = lock_counter(counter, deadline)?;
    let value = counter.value.load(Ordering::Relaxed).wrapping_add(amount);
    counter.value.store(value, Ordering::Relaxed);
    counter.mirror.store(value, Ordering::Relaxed);
    let woken = counter.changed.broadcast().context("broadcast");
    let unlocked = counter.mutex.unlock().context("unlock the counter");
    woken.and(unlocked)?;
    Ok(Added { locked, value })
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
    lock_counter(counter, deadline)?;
    let reached = wait_locked(counter, target, deadline);
    let unlocked = counter.mutex.unlock().context("unlock the counter");
    let value = reached?;
    unlocked?;
    Ok(value)
}

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
    if slots == 0 {
        bail!("create ring {name}: a ring needs at least 1 slot");
    }
    let size = ring_size(slots).with_context(|| format!("create ring {name}: too many slots"))?;
    let object = create(name, size, 0o600)?;
    let ring = initialise_ring(&object, slots);
    if ring.is_err() {
        let _ = unlink(name);
    }
    ring
}

/// Opens the ring object `name`: [`open`] it writable, [`map`] it, and check
/// it before viewing it (`Shared::new`): at least `RING_HEADER` bytes,
/// magic word (`Mapping::load_u32(0)`) [`layout::RING_MAGIC`], then `record_size`
/// `RECORD_SIZE`, `slots` at least 1 and the object at least
/// `ring_size(slots)` bytes. Anything else is refused with `NAME is not a
/// ring`, and a short reason.
pub fn ring_open(name: &str) -> anyhow::Result<Ring> {
    let mapping = map(&open(name, true)?, true)?;
    if mapping.len() < RING_HEADER {
        bail!("{name} is not a ring: {} bytes is too small", mapping.len());
    }
    if mapping.load_u32(0).context("load the magic word")? != RING_MAGIC {
        bail!("{name} is not a ring: wrong magic word");
    }
    // SAFETY: the magic word says its creator initialised and published the
    // header; the object is ours (mode 0600), shared only with processes that
    // follow the layout's rules.
    let ring: Ring =
        unsafe { Shared::new(mapping) }.with_context(|| format!("open ring {name}"))?;
    let slots = ring.slots.load(Ordering::Relaxed);
    let fits = ring_size(slots).is_some_and(|size| size <= ring.mapping().len() as u64);
    if ring.record_size.load(Ordering::Relaxed) as usize != RECORD_SIZE || slots == 0 || !fits {
        bail!("{name} is not a ring: its header does not match its size");
    }
    Ok(ring)
}

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
    wait(&ring.free, timeout, &mut || {}).context("no free slot")?;
    lock_ring(ring, timeout)?;
    let tail = ring.tail.load(Ordering::Relaxed);
    let copied = ring
        .mapping()
        .write_at(slot_offset(ring, tail), &record.to_bytes())
        .context("write the record");
    if copied.is_ok() {
        ring.tail.store(tail + 1, Ordering::Relaxed);
    }
    let unlocked = ring.mutex.unlock().context("unlock the ring");
    copied.and(unlocked)?;
    ring.used.post().context("V(used)")
}

/// Takes one record out of the ring, waiting for one for at most `timeout`
/// (if given): the mirror image of [`put`]. P on `used` (context `no
/// record`), lock, copy slot `head % slots` out (`mapping().read_at`),
/// `head += 1`, unlock, V on `free`: only now may a producer reuse the
/// slot. Returns the record as it was, intact or not.
pub fn take(ring: &Ring, timeout: Option<Duration>) -> anyhow::Result<Record> {
    wait(&ring.used, timeout, &mut || {}).context("no record")?;
    lock_ring(ring, timeout)?;
    let head = ring.head.load(Ordering::Relaxed);
    let mut bytes = [0; RECORD_SIZE];
    let copied = ring
        .mapping()
        .read_at(slot_offset(ring, head), &mut bytes)
        .context("read the record");
    if copied.is_ok() {
        ring.head.store(head + 1, Ordering::Relaxed);
    }
    let unlocked = ring.mutex.unlock().context("unlock the ring");
    copied.and(unlocked)?;
    ring.free.post().context("V(free)")?;
    Ok(Record::from_bytes(&bytes))
}

/// Fills an [`Object`] from `fstat` on its descriptor.
fn described(name: &str, fd: OwnedFd) -> anyhow::Result<Object> {
    let stat = fstat(&fd).with_context(|| format!("fstat {name}"))?;
    Ok(Object {
        name: name.to_string(),
        size: u64::try_from(stat.st_size).unwrap_or(0),
        mode: stat.st_mode & 0o777,
        owner: stat.st_uid,
        fd,
    })
}

/// A timeout in milliseconds, for messages.
fn millis(timeout: Option<Duration>) -> u128 {
    timeout.map_or(0, |timeout| timeout.as_millis())
}

/// Steps 2 to 4 of [`counter_create`], on an object just created.
fn initialise_counter(object: &Object) -> anyhow::Result<Counter> {
    let name = &object.name;
    let mapping = map(object, true)?;
    // SAFETY: the object is brand new (O_EXCL) and zero-filled, and nobody
    // uses it before the magic word is stored below.
    let counter: Counter =
        unsafe { Shared::new(mapping) }.with_context(|| format!("view {name} as a counter"))?;
    let robust = MutexAttributes {
        process_shared: true,
        robust: true,
    };
    // SAFETY: as above: nobody else can reach the mutex or the condition
    // variable yet, and each is initialised once.
    unsafe {
        counter.mutex.init(robust).context("pthread_mutex_init")?;
        counter.changed.init(true).context("pthread_cond_init")?;
    }
    counter.magic.store(COUNTER_MAGIC, Ordering::Release);
    Ok(counter)
}

/// After `EOWNERDEAD`: puts the last complete value back, marks the mutex
/// consistent. The lock is held; on an error, it is released.
fn recover(counter: &CounterBlock) -> anyhow::Result<Locked> {
    let found = counter.value.load(Ordering::Relaxed);
    let restored = counter.mirror.load(Ordering::Relaxed);
    counter.value.store(restored, Ordering::Relaxed);
    if let Err(errno) = counter.mutex.consistent() {
        let _ = counter.mutex.unlock();
        return Err(errno).context("pthread_mutex_consistent");
    }
    Ok(Locked::Repaired { found, restored })
}

/// The waiting loop of [`wait_for`], with the lock held.
fn wait_locked(counter: &CounterBlock, target: u64, deadline: &Deadline) -> anyhow::Result<u64> {
    loop {
        let value = counter.value.load(Ordering::Relaxed);
        if value >= target {
            return Ok(value);
        }
        match counter.wait_changed(deadline) {
            Ok(()) => {}
            Err(Errno::EOWNERDEAD) => {
                recover(counter)?;
            }
            Err(Errno::ETIMEDOUT) => bail!(
                "the counter is still {value}, not {target}, after {} ms",
                deadline.timeout().as_millis()
            ),
            Err(errno) => return Err(errno).context("pthread_cond_timedwait"),
        }
    }
}

/// Steps 2 to 4 of [`ring_create`], on an object just created.
fn initialise_ring(object: &Object, slots: u32) -> anyhow::Result<Ring> {
    let name = &object.name;
    let mapping = map(object, true)?;
    // SAFETY: the object is brand new (O_EXCL) and zero-filled, and nobody
    // uses it before the magic word is stored below.
    let ring: Ring =
        unsafe { Shared::new(mapping) }.with_context(|| format!("view {name} as a ring"))?;
    ring.slots.store(slots, Ordering::Relaxed);
    ring.record_size
        .store(RECORD_SIZE as u32, Ordering::Relaxed);
    let robust = MutexAttributes {
        process_shared: true,
        robust: true,
    };
    // SAFETY: as above: nobody else can reach these objects yet, and each is
    // initialised once.
    unsafe {
        ring.mutex.init(robust).context("pthread_mutex_init")?;
        ring.free.init(true, slots).context("sem_init(free)")?;
        ring.used.init(true, 0).context("sem_init(used)")?;
    }
    ring.magic.store(RING_MAGIC, Ordering::Release);
    Ok(ring)
}

/// Locks the ring's mutex; after `EOWNERDEAD` there is nothing to repair.
fn lock_ring(ring: &Ring, timeout: Option<Duration>) -> anyhow::Result<()> {
    let deadline = Deadline::after(timeout.unwrap_or(Duration::MAX));
    match ring.mutex.lock_until(&deadline) {
        Ok(()) => Ok(()),
        // `head` and `tail` move only after a whole record is copied, so a
        // dead holder left the ring consistent.
        Err(Errno::EOWNERDEAD) => ring.mutex.consistent().or_else(|errno| {
            let _ = ring.mutex.unlock();
            Err(errno).context("pthread_mutex_consistent")
        }),
        Err(Errno::ETIMEDOUT) => bail!(
            "the lock of the ring is still held after {} ms",
            millis(timeout)
        ),
        Err(errno) => Err(errno).context("lock the ring"),
    }
}

/// The offset of the slot for the `count`-th record put or taken.
fn slot_offset(ring: &Ring, count: u64) -> usize {
    let slots = u64::from(ring.slots.load(Ordering::Relaxed).max(1));
    RING_HEADER + (count % slots) as usize * RECORD_SIZE
}
