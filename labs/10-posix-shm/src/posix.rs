//! A thin safe layer over `mmap`, POSIX semaphores and process-shared
//! pthread mutexes and condition variables (given: you do not need to
//! change this file, but do read it).
//!
//! nix wraps `shm_open`, `ftruncate`, `fstat` and `shm_unlink` (use those
//! in your code), but not semaphores or pthread objects, and its `mmap`
//! hands out a raw pointer. This module calls libc for those. Each method
//! is one call, and every failure is `Err(Errno)`, returned as the call
//! reported it: deciding what an errno *means* (`EINTR`, `ETIMEDOUT`,
//! `EOWNERDEAD` …) is the work of the lab.
//!
//! Why this part is given rather than a TODO: memory that other processes
//! change at any moment does not fit Rust's rules for references, and a
//! `pthread_mutex_t` or a `sem_t` must never be copied or moved once it is
//! initialised. The types below keep those rules once, here:
//!
//! * **No data race on bytes.** [`Mapping::read_at`] and
//!   [`Mapping::write_at`] copy byte by byte with atomic (relaxed) loads
//!   and stores, never through a `&[u8]` or `&mut [u8]` into the mapping,
//!   as the layers of chapters 07 and 08 do, so another process writing at
//!   the same moment is not undefined behaviour (you may read a torn
//!   mixture: the protocol's job is to prevent that). Volatile copies would
//!   not do: a mapping is taken to be an allocation (made by the kernel),
//!   and inside an allocation a volatile access racing with a store is a
//!   data race like a plain one. They check every range. (Chapter 07's
//!   section "shmat and shmdt" lists all that this relies on.)
//! * **Alignment.** A mapping starts on a page boundary (4096 bytes), so a
//!   `#[repr(C)]` block at offset 0 is aligned for any type the layout
//!   uses (at most 8 bytes); [`Shared::new`] checks it anyway.
//! * **Nothing moves.** [`SharedMutex`], [`SharedCond`] and
//!   [`SharedSemaphore`] wrap the C objects in `UnsafeCell`, are neither
//!   `Copy` nor `Clone`, and are only ever reached through a `&` into the
//!   mapping ([`Shared`] derefs to the block, it never hands it out by
//!   value), so they stay at the address where they were initialised.
//! * **Plain data is atomic.** The other fields of a shared block are
//!   `AtomicU32`/`AtomicU64`: loads and stores that no other process can
//!   tear, whatever it does. Atomic accesses that race must be of one size,
//!   so a block's bytes are reached through its fields only, never with
//!   `read_at` or `write_at` (which are for the bytes after it, such as the
//!   ring's slots).
//!
//! What no layer can check is the other processes: a mutex is only as good
//! as every process that maps it (see [`Shared::new`]), and a process that
//! shrinks the object (`ftruncate`) leaves pages with nothing behind them
//! in every mapping of it, where any access raises `SIGBUS`.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering, fence};
use std::time::Duration;

use libc::c_int;
use nix::errno::Errno;

// ANCHOR: mapping
/// A `MAP_SHARED` mapping of a whole shared memory object (or of the first
/// `len` bytes of one): every store is seen by every process that maps the
/// same object. Unmapped (`munmap`) when dropped.
#[derive(Debug)]
pub struct Mapping {
    addr: NonNull<u8>,
    len: usize,
    writable: bool,
}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED, fd, 0)`: maps
    /// the first `len` bytes of the object open on `fd`, at an address the
    /// kernel chooses (always a multiple of the page size).
    ///
    /// `writable` needs a descriptor opened `O_RDWR` (`EACCES` otherwise).
    /// Errors: `EINVAL` (`len` is 0); `EACCES`; `ENODEV` (`fd` cannot be
    /// mapped); `ENOMEM` (no room in the address space). Mapping more bytes
    /// than the object has succeeds, but touching a page past its end
    /// raises `SIGBUS`: take `len` from `fstat`.
    pub fn new(fd: BorrowedFd<'_>, len: usize, writable: bool) -> nix::Result<Mapping> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: no MAP_FIXED: the kernel picks a free range, so no
        // existing mapping (and no Rust object) is replaced.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(Errno::EINVAL)?;
        Ok(Mapping {
            addr,
            len,
            writable,
        })
    }

    /// How many bytes are mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: `new` refuses a length of 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the mapping allows stores (`PROT_WRITE`).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Copies `buf.len()` bytes out of the mapping, starting `offset` bytes
    /// in, with relaxed atomic loads of one byte. `EINVAL` if that runs past
    /// the end. They work on a read-only mapping too: the standard library
    /// allows relaxed one-byte loads on read-only memory
    /// (`std::sync::atomic`, "Atomic accesses to read-only memory").
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> nix::Result<()> {
        let start = self.check(offset, buf.len())?;
        for (i, byte) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds (checked) and mapped while `self` lives; an
            // AtomicU8 has the size and alignment (1) of a u8, and every
            // byte is a valid one; every access this layer makes to these
            // bytes is atomic and one byte wide (a block's fields are not
            // read this way); a relaxed one-byte load is allowed on
            // read-only memory. A reference, not AtomicU8::from_ptr: that
            // one wants memory valid for writes, which a read-only mapping
            // is not. It lives for this one load.
            *byte = unsafe { &*start.add(i).cast::<AtomicU8>() }.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `data` into the mapping, starting `offset` bytes in, with
    /// atomic stores. `EINVAL` if that runs past the end; `EACCES` if the
    /// mapping is read-only (the store would be killed by `SIGSEGV`).
    pub fn write_at(&self, offset: usize, data: &[u8]) -> nix::Result<()> {
        if !self.writable {
            return Err(Errno::EACCES);
        }
        let start = self.check(offset, data.len())?;
        for (i, &byte) in data.iter().enumerate() {
            // SAFETY: as in read_at; and the mapping is writable, so valid
            // for reads and writes, as from_ptr needs.
            unsafe { AtomicU8::from_ptr(start.add(i)) }.store(byte, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Loads the 4-byte word at `offset` (a multiple of 4) with acquire
    /// ordering: everything the process that stored it did before its
    /// `Release` store is visible after this load. This is how an opener
    /// checks that a creator published a block (its magic word).
    pub fn load_u32(&self, offset: usize) -> nix::Result<u32> {
        let start = self.check(offset, 4)?;
        if !offset.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned);
        // every bit pattern is a valid u32; a word a block keeps in an
        // AtomicU32 field (the magic word), so reached by atomics of this
        // size only; a relaxed load of 4 bytes, allowed even on a read-only
        // mapping (a reference, not from_ptr, which wants writable memory).
        let word = unsafe { &*start.cast::<AtomicU32>() }.load(Ordering::Relaxed);
        // A relaxed load followed by an acquire fence is an acquire load.
        fence(Ordering::Acquire);
        Ok(word)
    }

    /// The address of byte `offset`, if `count` bytes from there fit.
    fn check(&self, offset: usize, count: usize) -> nix::Result<*mut u8> {
        match offset.checked_add(count) {
            // SAFETY: offset <= len: the result stays inside the mapping
            // (or one past its end, for count 0).
            Some(end) if end <= self.len => Ok(unsafe { self.addr.as_ptr().add(offset) }),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range came from mmap and is unmapped only here; no
        // reference into it outlives `self` (Shared borrows from it).
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.len) };
    }
}
// ANCHOR_END: mapping

// ANCHOR: shared
/// A type that may live at the start of a shared mapping and be reached by
/// `&` in several processes at once.
///
/// # Safety
///
/// Implement it only for `#[repr(C)]` structs whose every field is an
/// atomic integer or one of [`SharedMutex`], [`SharedCond`] and
/// [`SharedSemaphore`]: every bit pattern is then a valid value, and all
/// mutation goes through atomics or through pointers handed to libc.
pub unsafe trait SharedLayout {}

/// A `T` at offset 0 of a shared mapping: derefs to `&T`, never moves it.
#[derive(Debug)]
pub struct Shared<T: SharedLayout> {
    mapping: Mapping,
    layout: PhantomData<T>,
}

impl<T: SharedLayout> Shared<T> {
    /// Views the start of `mapping` as a `T`. `EACCES` if the mapping is
    /// read-only (locking stores into the mutex); `EINVAL` if it is shorter
    /// than a `T` or not aligned for one.
    ///
    /// # Safety
    ///
    /// The synchronisation objects in the block must be usable, which no
    /// check can tell from their bytes. Either:
    ///
    /// * **you are creating it**: the memory is fresh from `ftruncate`
    ///   (zero-filled), no other process uses the block until you have
    ///   called `init` on each of its synchronisation objects and published
    ///   it (its magic word, stored with `Ordering::Release`); or
    /// * **you are opening it**: its creator initialised and published it
    ///   (you checked the magic word with [`Mapping::load_u32`]), and every
    ///   process that maps it follows the same rules: plain fields through
    ///   atomics of their own size, synchronisation objects only through
    ///   libc. In this process too, the block's bytes are reached through
    ///   its fields only, never with `read_at` or `write_at` on
    ///   [`Shared::mapping`], which is for what follows the block: atomic
    ///   accesses of different sizes to the same bytes must not race. A
    ///   process that
    ///   writes garbage over a robust mutex can corrupt the memory of the
    ///   next process that locks it (the mutex holds list pointers that the
    ///   C library follows): map such objects only with processes you trust,
    ///   which is why they are created with mode 0600.
    pub unsafe fn new(mapping: Mapping) -> nix::Result<Shared<T>> {
        if !mapping.is_writable() {
            return Err(Errno::EACCES);
        }
        if mapping.len() < size_of::<T>() || !mapping.addr.as_ptr().cast::<T>().is_aligned() {
            return Err(Errno::EINVAL);
        }
        Ok(Shared {
            mapping,
            layout: PhantomData,
        })
    }

    /// The mapping the block lives in (and whatever follows the block).
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }
}

impl<T: SharedLayout> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the mapping is at least size_of::<T>() bytes, aligned for
        // T (checked in new), lives as long as the returned borrow, and T's
        // fields are valid for any bytes and interior-mutable (SharedLayout).
        unsafe { &*self.mapping.addr.as_ptr().cast::<T>() }
    }
}
// ANCHOR_END: shared

// ANCHOR: deadline
/// An absolute time on `CLOCK_REALTIME`, as `sem_timedwait`,
/// `pthread_mutex_timedlock` and `pthread_cond_timedwait` take it: made
/// once, it stays the same however often a wait is restarted.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: libc::timespec,
    timeout: Duration,
}

impl Deadline {
    /// Now plus `timeout` (a huge timeout is a deadline far in the future).
    pub fn after(timeout: Duration) -> Deadline {
        let mut now = MaybeUninit::<libc::timespec>::uninit();
        // SAFETY: clock_gettime fills the timespec; CLOCK_REALTIME always
        // exists, so it cannot fail.
        let now = unsafe {
            libc::clock_gettime(libc::CLOCK_REALTIME, now.as_mut_ptr());
            now.assume_init()
        };
        let nanos = now.tv_nsec + libc::c_long::from(timeout.subsec_nanos());
        let secs = libc::time_t::try_from(timeout.as_secs())
            .ok()
            .and_then(|secs| now.tv_sec.checked_add(secs))
            .and_then(|secs| secs.checked_add(nanos / 1_000_000_000));
        let at = match secs {
            Some(tv_sec) => libc::timespec {
                tv_sec,
                tv_nsec: nanos % 1_000_000_000,
            },
            None => libc::timespec {
                tv_sec: libc::time_t::MAX,
                tv_nsec: 0,
            },
        };
        Deadline { at, timeout }
    }

    /// The timeout it was made from.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}
// ANCHOR_END: deadline

/// pthread functions return the error number instead of setting `errno`.
fn check(code: c_int) -> nix::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(code))
    }
}

/// Semaphore functions return -1 and set `errno`.
fn check_errno(result: c_int) -> nix::Result<()> {
    Errno::result(result).map(drop)
}

// ANCHOR: semaphore
/// A POSIX semaphore (`sem_t`, 32 bytes with glibc on 64-bit Linux) that
/// lives in shared memory: unnamed, in a block of yours, or named, in the
/// small object `sem_open` maps ([`NamedSemaphore`] derefs to one).
///
/// A `sem_t` holds only counters, no pointers: whatever another process
/// writes over it, these calls cannot corrupt this process's memory (the
/// count may be wrong, or the call may fail with `EINVAL`).
#[repr(transparent)]
#[derive(Debug)]
pub struct SharedSemaphore(UnsafeCell<libc::sem_t>);

impl SharedSemaphore {
    /// `sem_init(sem, pshared, value)`. `process_shared` must be true for
    /// a semaphore that several processes use (pshared = 1): with 0, a
    /// process asleep in `sem_wait` is never woken by another process's
    /// `sem_post`. `EINVAL` if `value` exceeds `SEM_VALUE_MAX`.
    ///
    /// # Safety
    ///
    /// Nobody uses the semaphore yet: no process waits on it, and it is not
    /// initialised a second time while in use.
    pub unsafe fn init(&self, process_shared: bool, value: u32) -> nix::Result<()> {
        // SAFETY: the caller guarantees nobody uses it; the pointer is valid.
        check_errno(unsafe { libc::sem_init(self.0.get(), c_int::from(process_shared), value) })
    }

    /// `sem_wait`: takes one, sleeping while the value is 0. `EINTR` if a
    /// signal handler ran while it slept (nothing was taken).
    pub fn wait(&self) -> nix::Result<()> {
        // SAFETY: a valid sem_t in memory that stays mapped while self lives.
        check_errno(unsafe { libc::sem_wait(self.0.get()) })
    }

    /// `sem_timedwait`: like `wait`, but gives up with `ETIMEDOUT` at the
    /// deadline. `EINTR` if a signal handler ran while it slept.
    pub fn wait_until(&self, deadline: &Deadline) -> nix::Result<()> {
        // SAFETY: as in wait; the timespec is valid for the call.
        check_errno(unsafe { libc::sem_timedwait(self.0.get(), &deadline.at) })
    }

    /// `sem_trywait`: takes one if the value is above 0, else `EAGAIN`.
    pub fn try_wait(&self) -> nix::Result<()> {
        // SAFETY: as in wait.
        check_errno(unsafe { libc::sem_trywait(self.0.get()) })
    }

    /// `sem_post`: gives one back, waking a sleeper if there is one.
    /// `EOVERFLOW` past `SEM_VALUE_MAX`. Never sleeps.
    pub fn post(&self) -> nix::Result<()> {
        // SAFETY: as in wait.
        check_errno(unsafe { libc::sem_post(self.0.get()) })
    }

    /// `sem_getvalue`: the value now (it may change the moment after).
    pub fn value(&self) -> nix::Result<i32> {
        let mut value = 0;
        // SAFETY: as in wait; `value` is a valid out-pointer.
        check_errno(unsafe { libc::sem_getvalue(self.0.get(), &mut value) })?;
        Ok(value)
    }
}

/// A named semaphore: `sem_open` maps the 32-byte object
/// `/dev/shm/sem.NAME` and returns the `sem_t` in it. Derefs to
/// [`SharedSemaphore`] for `wait`, `post` … Closed (`sem_close`, which
/// unmaps it) when dropped; the name stays until [`NamedSemaphore::unlink`].
#[derive(Debug)]
pub struct NamedSemaphore {
    sem: NonNull<SharedSemaphore>,
}

impl NamedSemaphore {
    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)`: a new semaphore, or
    /// `EEXIST`. The umask applies to `mode`. Errors: `EEXIST`; `EINVAL`
    /// (`value` above `SEM_VALUE_MAX`, or a bad name); `ENAMETOOLONG`;
    /// `EACCES`.
    pub fn create(name: &CStr, mode: u32, value: u32) -> nix::Result<NamedSemaphore> {
        // SAFETY: with O_CREAT, sem_open reads two more arguments: a mode_t
        // and an unsigned int, both passed as c_uint (their promoted type).
        let sem = unsafe {
            libc::sem_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                mode as libc::c_uint,
                value as libc::c_uint,
            )
        };
        Self::from_raw(sem)
    }

    /// `sem_open(name, 0)`: the existing semaphore. Errors: `ENOENT`;
    /// `EACCES` (it needs read and write permission); `EINVAL`.
    pub fn open(name: &CStr) -> nix::Result<NamedSemaphore> {
        // SAFETY: without O_CREAT, sem_open reads no further argument.
        Self::from_raw(unsafe { libc::sem_open(name.as_ptr(), 0) })
    }

    /// `sem_unlink(name)`: removes the name; processes that have the
    /// semaphore open keep using it. `ENOENT` if there is no such name.
    pub fn unlink(name: &CStr) -> nix::Result<()> {
        // SAFETY: a valid NUL-terminated name.
        check_errno(unsafe { libc::sem_unlink(name.as_ptr()) })
    }

    fn from_raw(sem: *mut libc::sem_t) -> nix::Result<NamedSemaphore> {
        if sem == libc::SEM_FAILED {
            return Err(Errno::last());
        }
        // SEM_FAILED is NULL with glibc; any other failure value was caught.
        let sem = NonNull::new(sem.cast::<SharedSemaphore>()).ok_or(Errno::EINVAL)?;
        Ok(NamedSemaphore { sem })
    }
}

impl Deref for NamedSemaphore {
    type Target = SharedSemaphore;

    fn deref(&self) -> &SharedSemaphore {
        // SAFETY: sem_open returned a valid sem_t that stays mapped until
        // sem_close in drop; SharedSemaphore is a transparent wrapper.
        unsafe { self.sem.as_ref() }
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // SAFETY: the pointer came from sem_open and is closed only here.
        unsafe { libc::sem_close(self.sem.as_ptr().cast()) };
    }
}
// ANCHOR_END: semaphore

// ANCHOR: mutex
/// The attributes a [`SharedMutex`] is initialised with. Its type is always
/// `PTHREAD_MUTEX_ERRORCHECK`: unlocking a mutex you do not hold fails with
/// `EPERM`, and locking one you hold fails with `EDEADLK`, instead of
/// undefined behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MutexAttributes {
    /// `PTHREAD_PROCESS_SHARED`: the mutex may be used by several
    /// processes. Without it, a process asleep on the mutex is never woken
    /// by another process's unlock.
    pub process_shared: bool,
    /// `PTHREAD_MUTEX_ROBUST`: if its holder dies, the next locker gets
    /// `EOWNERDEAD` (and the lock) instead of waiting for ever.
    pub robust: bool,
}

/// A `pthread_mutex_t` (40 bytes with glibc on 64-bit Linux) in shared
/// memory.
#[repr(transparent)]
#[derive(Debug)]
pub struct SharedMutex(UnsafeCell<libc::pthread_mutex_t>);

impl SharedMutex {
    /// `pthread_mutexattr_settype(ERRORCHECK)`, then `setpshared` and
    /// `setrobust` as `attributes` say, then `pthread_mutex_init`.
    ///
    /// # Safety
    ///
    /// Nobody uses the mutex yet (no holder, no waiter), and it is not
    /// initialised a second time while in use.
    pub unsafe fn init(&self, attributes: MutexAttributes) -> nix::Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: pthread_mutexattr_init initialises `attr`.
        check(unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) })?;
        let attr = attr.as_mut_ptr();
        // SAFETY: `attr` is initialised; the caller guarantees nobody uses
        // the mutex while pthread_mutex_init writes it.
        let result = unsafe {
            check(libc::pthread_mutexattr_settype(
                attr,
                libc::PTHREAD_MUTEX_ERRORCHECK,
            ))
            .and_then(|()| match attributes.process_shared {
                true => check(libc::pthread_mutexattr_setpshared(
                    attr,
                    libc::PTHREAD_PROCESS_SHARED,
                )),
                false => Ok(()),
            })
            .and_then(|()| match attributes.robust {
                true => check(libc::pthread_mutexattr_setrobust(
                    attr,
                    libc::PTHREAD_MUTEX_ROBUST,
                )),
                false => Ok(()),
            })
            .and_then(|()| check(libc::pthread_mutex_init(self.0.get(), attr)))
        };
        // SAFETY: `attr` is initialised and no longer needed.
        unsafe { libc::pthread_mutexattr_destroy(attr) };
        result
    }

    /// `pthread_mutex_timedlock`: takes the lock, waiting at most until the
    /// deadline. Errors: `ETIMEDOUT`; `EDEADLK` (you hold it already);
    /// `ENOTRECOVERABLE` (a robust mutex whose state was never repaired).
    ///
    /// **`Err(EOWNERDEAD)` is not a failure:** you now hold the lock, but
    /// its previous holder died holding it, perhaps half-way through an
    /// update. Repair the data, then call [`SharedMutex::consistent`]
    /// before you unlock, or the mutex becomes unusable for everyone.
    pub fn lock_until(&self, deadline: &Deadline) -> nix::Result<()> {
        // SAFETY: an initialised mutex that stays mapped while self lives.
        check(unsafe { libc::pthread_mutex_timedlock(self.0.get(), &deadline.at) })
    }

    /// `pthread_mutex_consistent`: after `EOWNERDEAD`, says that the data
    /// is repaired; the mutex works normally again. `EINVAL` if the mutex
    /// is not robust or not in that state.
    pub fn consistent(&self) -> nix::Result<()> {
        // SAFETY: as in lock_until.
        check(unsafe { libc::pthread_mutex_consistent(self.0.get()) })
    }

    /// `pthread_mutex_unlock`. `EPERM` if this process does not hold it.
    /// Unlocking after `EOWNERDEAD` without `consistent` makes the mutex
    /// unusable: every later lock fails with `ENOTRECOVERABLE`.
    pub fn unlock(&self) -> nix::Result<()> {
        // SAFETY: as in lock_until; an error-checking mutex refuses an
        // unlock by a process that does not hold it.
        check(unsafe { libc::pthread_mutex_unlock(self.0.get()) })
    }
}
// ANCHOR_END: mutex

// ANCHOR: cond
/// A `pthread_cond_t` (48 bytes with glibc on 64-bit Linux) in shared
/// memory: processes sleep on it until another one says that the data the
/// mutex protects has changed.
#[repr(transparent)]
#[derive(Debug)]
pub struct SharedCond(UnsafeCell<libc::pthread_cond_t>);

impl SharedCond {
    /// `pthread_condattr_setpshared` as asked, then `pthread_cond_init`.
    /// Without `process_shared`, a process asleep on it is never woken by
    /// another process's broadcast.
    ///
    /// # Safety
    ///
    /// Nobody uses it yet, and it is not initialised twice while in use.
    pub unsafe fn init(&self, process_shared: bool) -> nix::Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
        // SAFETY: pthread_condattr_init initialises `attr`.
        check(unsafe { libc::pthread_condattr_init(attr.as_mut_ptr()) })?;
        let attr = attr.as_mut_ptr();
        // SAFETY: `attr` is initialised; nobody uses the condition variable.
        let result = unsafe {
            match process_shared {
                true => check(libc::pthread_condattr_setpshared(
                    attr,
                    libc::PTHREAD_PROCESS_SHARED,
                )),
                false => Ok(()),
            }
            .and_then(|()| check(libc::pthread_cond_init(self.0.get(), attr)))
        };
        // SAFETY: `attr` is initialised and no longer needed.
        unsafe { libc::pthread_condattr_destroy(attr) };
        result
    }

    /// `pthread_cond_timedwait`: unlocks `mutex`, sleeps until a broadcast
    /// or signal (or for no reason at all: a *spurious* wake-up), and locks
    /// `mutex` again before returning, also on `ETIMEDOUT`. It never
    /// returns `EINTR`. With a robust mutex, `Err(EOWNERDEAD)` means what it
    /// means for `lock_until`: you hold the lock, repair the data. `EPERM`
    /// if you did not hold `mutex`.
    ///
    /// # Safety
    ///
    /// Every process that waits on this condition variable uses the same
    /// mutex with it (POSIX leaves two different mutexes undefined).
    pub unsafe fn wait_until(&self, mutex: &SharedMutex, deadline: &Deadline) -> nix::Result<()> {
        // SAFETY: both objects are initialised and mapped; the caller
        // guarantees the pairing; an error-checking mutex not held is EPERM.
        check(unsafe { libc::pthread_cond_timedwait(self.0.get(), mutex.0.get(), &deadline.at) })
    }

    /// `pthread_cond_broadcast`: wakes every process asleep on it.
    pub fn broadcast(&self) -> nix::Result<()> {
        // SAFETY: an initialised condition variable, mapped while self lives.
        check(unsafe { libc::pthread_cond_broadcast(self.0.get()) })
    }
}
// ANCHOR_END: cond
