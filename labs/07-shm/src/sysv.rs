//! A thin safe layer over the System V shared memory calls, and a small
//! semaphore helper (given: you do not need to change this file, but do
//! read it).
//!
//! nix has no wrappers for System V IPC, so this module calls libc directly.
//! Each method is one system call, and every failure is `Err(Errno)`:
//! deciding what an error *means* is the work of the lab.
//!
//! Why this part is given rather than a TODO: `shmat` returns a raw pointer
//! into memory that other processes change behind the compiler's back.
//! Turning it into safe Rust (never handing out a `&[u8]` or `&mut [u8]`
//! into the segment, copying with relaxed atomic accesses of one byte,
//! checking every offset, accepting only the `shmat` flags that cannot
//! unmap anything, detaching exactly once) is subtle, and a mistake there
//! is undefined behaviour, not a lesson about shared memory.
//! [`Attachment`] does it once, and every function here is sound whatever
//! its arguments.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use libc::c_int;
use nix::errno::Errno;

/// A System V IPC key (`key_t`), as `ftok` makes it.
pub type Key = libc::key_t;

/// `shm_perm.mode` bit: the segment is locked in memory (`SHM_LOCK`).
pub const SHM_LOCKED: u16 = 0o2000;

/// `shm_perm.mode` bit: `IPC_RMID` was called; the segment goes away at
/// its last detach.
pub const SHM_DEST: u16 = 0o1000;

// ANCHOR: ftok
/// `ftok(path, proj_id)`: makes a key from the inode and device numbers of
/// an existing file and the low 8 bits of `proj_id`.
///
/// Errors: those of `stat(2)` on `path`, e.g. `ENOENT` or `EACCES`.
pub fn ftok(path: &Path, proj_id: u8) -> nix::Result<Key> {
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let key = unsafe { libc::ftok(path.as_ptr(), c_int::from(proj_id)) };
    if key == -1 {
        Err(Errno::last())
    } else {
        Ok(key)
    }
}
// ANCHOR_END: ftok

/// A System V shared memory segment (共享内存段), known by its identifier
/// (`shmid`). Only a number: it is `Copy`, and nothing removes the segment
/// when it goes out of scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    id: c_int,
}

impl Segment {
    // ANCHOR: shmget
    /// `shmget(key, size, IPC_CREAT | IPC_EXCL | mode)`: creates a segment
    /// of `size` bytes, filled with zeros, or fails with `EEXIST` if `key`
    /// already has one. The kernel rounds the memory up to whole pages, but
    /// `shm_segsz` keeps the size asked for.
    ///
    /// Errors: `EEXIST`; `EINVAL` (`size` is below `SHMMIN`, 1, or above
    /// `SHMMAX`); `ENOSPC` (`SHMMNI` segments, or `SHMALL` pages, in use);
    /// `ENOMEM` (no memory for it).
    pub fn create(key: Key, size: usize, mode: u16) -> nix::Result<Segment> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | c_int::from(mode & 0o777);
        Self::get(key, size, flags)
    }

    /// `shmget(IPC_PRIVATE, size, mode)`: always a new segment, with no key
    /// another process could look up: for this process and its children.
    pub fn create_private(size: usize, mode: u16) -> nix::Result<Segment> {
        Self::get(libc::IPC_PRIVATE, size, c_int::from(mode & 0o777))
    }

    /// `shmget(key, size, 0)`: opens the segment `key` already names. `size`
    /// is the least the caller needs: 0 accepts any segment.
    ///
    /// Errors: `ENOENT` (no segment for this key: never made, or marked
    /// for removal, which releases the key at once); `EINVAL` (the segment
    /// is smaller than `size`). Permissions are checked later, by `shmat`
    /// and `shmctl`.
    pub fn open(key: Key, size: usize) -> nix::Result<Segment> {
        Self::get(key, size, 0)
    }
    // ANCHOR_END: shmget

    fn get(key: Key, size: usize, flags: c_int) -> nix::Result<Segment> {
        // SAFETY: shmget takes plain integers.
        let id = unsafe { libc::shmget(key, size, flags) };
        if id == -1 {
            Err(Errno::last())
        } else {
            Ok(Segment { id })
        }
    }

    /// The identifier (`shmid`), as `ipcs -m` shows it.
    pub fn id(self) -> i32 {
        self.id
    }

    // ANCHOR: shmat
    /// `shmat(shmid, NULL, flags)`: maps the segment into this process at an
    /// address the kernel chooses. `flags` is 0 (read and write) or
    /// `SHM_RDONLY` (read only: a store through it is killed by `SIGSEGV`).
    /// Raises `shm_nattch` by one and sets `shm_atime` and `shm_lpid`.
    ///
    /// Errors: `EACCES` (no read, or no write, permission); `EINVAL` (no
    /// such segment, or a flag other than `SHM_RDONLY` and `SHM_RND`);
    /// `EIDRM` (removed); `ENOMEM` (no address space left).
    pub fn attach(self, flags: c_int) -> nix::Result<Attachment> {
        self.attach_at(0, flags)
    }

    /// `shmat(shmid, addr, flags)` with an address hint: the segment is
    /// mapped exactly at `addr`, which must be a multiple of `SHMLBA` (the
    /// page size on most machines) unless `flags` has `SHM_RND`, which
    /// rounds `addr` down to one. An unaligned `addr` without `SHM_RND`
    /// fails with `EINVAL`, and so does an address where something is
    /// mapped already.
    ///
    /// `flags` may hold `SHM_RDONLY` and `SHM_RND`, nothing else (`EINVAL`
    /// before any system call). `SHM_REMAP`, above all, stays out: it makes
    /// `shmat` replace whatever is mapped at `addr` (the heap, a stack, this
    /// program's code) without a word, which no safe function may allow.
    pub fn attach_at(self, addr: usize, flags: c_int) -> nix::Result<Attachment> {
        if flags & !(libc::SHM_RDONLY | libc::SHM_RND) != 0 {
            return Err(Errno::EINVAL);
        }
        // SAFETY: without SHM_REMAP, shmat only maps the segment where
        // nothing is mapped yet (or fails): no memory of this process changes.
        let at = unsafe { libc::shmat(self.id, addr as *const libc::c_void, flags) };
        if at as isize == -1 {
            return Err(Errno::last());
        }
        let mut attachment = Attachment {
            addr: at.cast(),
            len: 0,
            writable: flags & libc::SHM_RDONLY == 0,
        };
        // Sized only now: while we are attached, the identifier cannot
        // name another segment, so this is the size of the one we mapped.
        // (If IPC_STAT fails, dropping `attachment` detaches it again.)
        attachment.len = self.stat()?.shm_segsz;
        Ok(attachment)
    }
    // ANCHOR_END: shmat

    // ANCHOR: shmctl
    /// `shmctl(shmid, IPC_STAT, &buf)`: the segment's `shmid_ds`:
    /// `shm_perm`, `shm_segsz`, `shm_cpid` (creator), `shm_lpid` (last
    /// `shmat`/`shmdt`), `shm_nattch`, and the times `shm_atime` (last
    /// attach), `shm_dtime` (last detach), `shm_ctime` (creation or last
    /// `IPC_SET`), in seconds since the epoch, 0 for "never".
    ///
    /// Errors: `EACCES` (no read permission); `EINVAL`/`EIDRM` (no such
    /// segment: it never existed, or it is gone).
    pub fn stat(self) -> nix::Result<libc::shmid_ds> {
        // SAFETY: shmid_ds is plain old data; all zeroes is a valid value.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT fills the shmid_ds we pass.
        let result = unsafe { libc::shmctl(self.id, libc::IPC_STAT, &mut ds) };
        Errno::result(result)?;
        Ok(ds)
    }

    /// `shmctl(shmid, IPC_RMID, NULL)`: marks the segment for removal. Its
    /// key is released at once (`shmget` by key now fails with `ENOENT`),
    /// but the memory lives on until the last process detaches.
    ///
    /// Errors: `EPERM` (only the owner, the creator or a privileged process
    /// may remove it); `EINVAL` (no such segment).
    pub fn remove(self) -> nix::Result<()> {
        self.ctl(libc::IPC_RMID)
    }

    /// `shmctl(shmid, SHM_LOCK, NULL)`: keeps the segment's pages in RAM,
    /// never swapped out. It does not bring them in: a page is resident
    /// once a process touches it, and stays so while the lock holds. Needs
    /// `CAP_IPC_LOCK`, or an `RLIMIT_MEMLOCK` (`ulimit -l`) that covers
    /// this segment and every other one locked by the same (real) user
    /// (`ENOMEM` otherwise).
    pub fn lock(self) -> nix::Result<()> {
        self.ctl(libc::SHM_LOCK)
    }

    /// `shmctl(shmid, SHM_UNLOCK, NULL)`: lets its pages be swapped again.
    pub fn unlock(self) -> nix::Result<()> {
        self.ctl(libc::SHM_UNLOCK)
    }
    // ANCHOR_END: shmctl

    fn ctl(self, cmd: c_int) -> nix::Result<()> {
        // SAFETY: IPC_RMID, SHM_LOCK and SHM_UNLOCK take no buffer.
        let result = unsafe { libc::shmctl(self.id, cmd, ptr::null_mut()) };
        Errno::result(result).map(drop)
    }
}

// ANCHOR: attachment
/// One mapping of a segment into this process: what `shmat` returned.
///
/// Bytes go in and out by copy ([`Attachment::read_at`],
/// [`Attachment::write_at`]): other processes may change the memory at any
/// time, so no Rust reference to its bytes is ever handed out. Copy only
/// when your protocol (semaphores, for one) says nobody else is writing;
/// if it is wrong, you copy wrong bytes, never undefined behaviour (see
/// `read_at`).
///
/// Dropping it calls `shmdt`; [`Attachment::detach`] does the same and
/// reports errors. A `fork`ed child inherits the mapping at the same
/// address (the kernel counts it: `shm_nattch` + 1), so a child may use,
/// drop or detach its copy of an `Attachment`. `exec` and `_exit` detach
/// everything.
#[derive(Debug)]
pub struct Attachment {
    addr: *mut u8,
    len: usize,
    writable: bool,
}

impl Attachment {
    /// The address the segment is mapped at in this process.
    pub fn addr(&self) -> usize {
        self.addr as usize
    }

    /// The segment's size (`shm_segsz`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a segment of 0 bytes (which `shmget` never makes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `buf.len()` bytes from the segment, starting `offset` bytes in.
    /// `EINVAL` if that runs past the end.
    ///
    /// The copy is made of **relaxed atomic loads** of one byte each. The
    /// segment is memory that another process may store into at any moment.
    /// Rust defines what happens when atomic accesses race: each load reads
    /// a byte that some store wrote. A plain copy, or a volatile one, racing
    /// with a store is a data race, which is undefined behaviour: the
    /// segment is taken to be an allocation (made by the kernel; this layer
    /// does pointer arithmetic in it), and for memory inside an allocation
    /// the standard library says volatile accesses behave exactly like
    /// non-atomic ones where threads (here, processes) are concerned. Its
    /// looser rules for volatile cover only memory outside every
    /// allocation, such as device registers. So a mistake in your
    /// semaphores gives you torn or stale bytes, which the tests can see,
    /// never undefined behaviour, provided every process that attaches the
    /// segment copies it this way (the chapter's section "shmat and shmdt"
    /// lists what the layer relies on). Relaxed one-byte loads also work
    /// through a `SHM_RDONLY` attachment: the standard library allows them
    /// on read-only memory (`std::sync::atomic`, "Atomic accesses to
    /// read-only memory").
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> nix::Result<()> {
        self.check(offset, buf.len())?;
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = self.load(offset + i);
        }
        Ok(())
    }

    /// Copies `data` into the segment, starting `offset` bytes in, with
    /// relaxed atomic stores of one byte each. `EINVAL` if that runs past
    /// the end.
    ///
    /// Through a `SHM_RDONLY` attachment the store is still made, as one
    /// processor instruction: the page is mapped read-only, the processor
    /// refuses the store, and the kernel kills the process with `SIGSEGV`
    /// (task 3 shows it). That store is written in assembly on purpose: Rust
    /// forbids an atomic store to read-only memory, and a volatile store
    /// that traps, while what an instruction does is the processor's to
    /// define.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> nix::Result<()> {
        self.check(offset, data.len())?;
        if !self.writable {
            if let Some(&first) = data.first() {
                // SAFETY: the byte lies inside the mapping (checked above),
                // which stays mapped while `self` lives and holds no Rust
                // value. The page is read-only, so the
                // store faults: the kernel sends SIGSEGV, whose default
                // action ends the process (Rust's own handler, there for
                // stack overflows, restores that default for any other
                // fault), and the instruction never completes.
                unsafe { store_refused(self.addr.add(offset), first) };
            }
            return Err(Errno::EACCES);
        }
        for (i, &byte) in data.iter().enumerate() {
            // SAFETY: the byte lies inside the mapping (checked above),
            // which stays mapped while `self` lives and, attached without
            // SHM_RDONLY, is valid for reads and writes, as from_ptr needs;
            // an AtomicU8 has the size and alignment (1) of a u8; and this
            // layer reaches the segment only through one-byte atomics, so
            // no access of another size overlaps (see `load`).
            let cell = unsafe { AtomicU8::from_ptr(self.addr.add(offset + i)) };
            cell.store(byte, Ordering::Relaxed);
        }
        Ok(())
    }

    /// `shmdt(addr)`: unmaps the segment from this process. Lowers
    /// `shm_nattch` by one and sets `shm_dtime` and `shm_lpid`; if the
    /// segment was marked with `IPC_RMID` and this was the last attachment,
    /// the kernel destroys it now.
    pub fn detach(self) -> nix::Result<()> {
        let addr = self.addr;
        std::mem::forget(self);
        // SAFETY: `addr` came from shmat and, `self` being forgotten, is
        // detached exactly once.
        Errno::result(unsafe { libc::shmdt(addr.cast()) }).map(drop)
    }

    /// The byte at `index`, which the caller has checked is below `len`,
    /// with a relaxed atomic load.
    fn load(&self, index: usize) -> u8 {
        // SAFETY: `index < len`, so the byte lies inside the mapping, which
        // stays mapped while `self` lives (only `detach` and `drop` unmap
        // it, and both end `self`); an AtomicU8 has the size and alignment
        // (1) of a u8, and every byte is a valid one; this layer reaches
        // the segment only through atomics of one byte, so the load may
        // race with stores but never with an access of another size (other
        // processes, which nothing here can check, keep the same rule by
        // running this same layer); and a relaxed load of one byte is
        // allowed on read-only memory (SHM_RDONLY). The reference lives for
        // this one load, never beyond `self`.
        let cell = unsafe { &*self.addr.add(index).cast::<AtomicU8>() };
        cell.load(Ordering::Relaxed)
    }

    fn check(&self, offset: usize, count: usize) -> nix::Result<()> {
        match offset.checked_add(count) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: `addr` came from shmat and is detached only here.
        unsafe { libc::shmdt(self.addr.cast()) };
    }
}
// ANCHOR_END: attachment

/// One store of `byte` at `addr`, in assembly, for a page mapped read-only:
/// the processor faults, and the kernel sends `SIGSEGV`.
///
/// # Safety
///
/// `addr` must lie inside a mapping that this process made with `shmat` or
/// `mmap` and keeps mapped during the call, never in memory that Rust code
/// holds as a value (a variable, the heap). (On a page that turned out to
/// be writable, the instruction would store the byte exactly as a relaxed
/// atomic store of one byte does: `mov` and `strb` are what such a store
/// compiles to.)
#[cfg(target_arch = "x86_64")]
unsafe fn store_refused(addr: *mut u8, byte: u8) {
    // SAFETY: the caller's promise; the instruction writes one byte there.
    unsafe {
        std::arch::asm!("mov byte ptr [{addr}], {byte}", addr = in(reg) addr,
            byte = in(reg_byte) byte, options(nostack, preserves_flags));
    }
}

/// See the x86-64 version.
///
/// # Safety
///
/// As for the x86-64 version.
#[cfg(target_arch = "aarch64")]
unsafe fn store_refused(addr: *mut u8, byte: u8) {
    // SAFETY: the caller's promise; the instruction writes one byte there.
    unsafe {
        std::arch::asm!("strb {byte:w}, [{addr}]", addr = in(reg) addr,
            byte = in(reg) u32::from(byte), options(nostack, preserves_flags));
    }
}

/// On other processors the store is not attempted: the process raises the
/// `SIGSEGV` the processor would have caused, with its default action
/// (Rust's handler for stack overflows would return from a raised one).
///
/// # Safety
///
/// None needed; `unsafe` only to match the other versions.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn store_refused(_addr: *mut u8, _byte: u8) {
    // SAFETY: signal(2) and raise(2) take no pointers; SIG_DFL is a valid
    // disposition.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
}

/// The fourth argument of `semctl` (see chapter 06), reduced to what
/// `SETVAL` needs; the pointer member gives it the size and passing
/// convention of the full union.
#[repr(C)]
#[allow(dead_code)] // the kernel reads the members, Rust never does
union semun {
    val: c_int,
    array: *mut libc::c_ushort,
}

unsafe extern "C" {
    /// `semtimedop(2)`: glibc has it, the libc crate does not declare it.
    fn semtimedop(
        semid: c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> c_int;
}

// ANCHOR: semaphores
/// A small System V semaphore set, as chapter 06 built it: created with
/// `IPC_EXCL` and given its values, opened, P (with or without a time
/// limit) and V, each retried after `EINTR`, removed. No `SEM_UNDO`: in
/// this lab one process does the P and another the V, so per-process
/// adjustments would not cancel out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Semaphores {
    id: c_int,
}

impl Semaphores {
    /// `semget(key, values.len(), IPC_CREAT | IPC_EXCL | 0600)`, then
    /// `SETVAL` for each value. Removes the set again if a `SETVAL` fails.
    pub fn create(key: Key, values: &[u16]) -> nix::Result<Semaphores> {
        let nsems = c_int::try_from(values.len()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: semget takes plain integers.
        let id = unsafe { libc::semget(key, nsems, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        let set = Semaphores {
            id: Errno::result(id)?,
        };
        for (num, &value) in (0..).zip(values) {
            let arg = semun {
                val: c_int::from(value),
            };
            // SAFETY: SETVAL reads `arg.val`, an int.
            let result = unsafe { libc::semctl(set.id, num, libc::SETVAL, arg) };
            if let Err(errno) = Errno::result(result) {
                let _ = set.remove();
                return Err(errno);
            }
        }
        Ok(set)
    }

    /// `semget(key, 0, 0)`: the set `key` already names (`ENOENT` if none).
    pub fn open(key: Key) -> nix::Result<Semaphores> {
        // SAFETY: semget takes plain integers.
        let id = unsafe { libc::semget(key, 0, 0) };
        Ok(Semaphores {
            id: Errno::result(id)?,
        })
    }

    /// P on semaphore `num`: take one, sleeping while it is 0.
    pub fn p(self, num: u16) -> nix::Result<()> {
        self.op(num, -1, None).map(drop)
    }

    /// P on semaphore `num` that sleeps at most `limit` (`semtimedop`):
    /// `Ok(true)` if it took one, `Ok(false)` if the time ran out first
    /// (`EAGAIN`; nothing was taken).
    pub fn p_timeout(self, num: u16, limit: Duration) -> nix::Result<bool> {
        self.op(num, -1, Some(Instant::now() + limit))
    }

    /// V on semaphore `num`: give one back.
    pub fn v(self, num: u16) -> nix::Result<()> {
        self.op(num, 1, None).map(drop)
    }

    /// `semctl(semid, 0, IPC_RMID)`: removes the set at once.
    pub fn remove(self) -> nix::Result<()> {
        // SAFETY: IPC_RMID takes no fourth argument.
        Errno::result(unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) }).map(drop)
    }

    /// One `semop` (or `semtimedop` until `deadline`), retried after
    /// `EINTR` with the time that is left. `Ok(false)`: the time ran out.
    fn op(self, num: u16, delta: i16, deadline: Option<Instant>) -> nix::Result<bool> {
        let mut op = libc::sembuf {
            sem_num: num,
            sem_op: delta,
            sem_flg: 0,
        };
        loop {
            let result = match deadline {
                // SAFETY: one valid sembuf, which the kernel only reads.
                None => unsafe { libc::semop(self.id, &mut op, 1) },
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let timeout = libc::timespec {
                        tv_sec: libc::time_t::try_from(left.as_secs())
                            .map_err(|_| Errno::EINVAL)?,
                        tv_nsec: left.subsec_nanos().into(),
                    };
                    // SAFETY: as for semop; `timeout` is valid for the call.
                    unsafe { semtimedop(self.id, &mut op, 1, &timeout) }
                }
            };
            match Errno::result(result) {
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) if deadline.is_some() => return Ok(false),
                Err(errno) => return Err(errno),
            }
        }
    }
}
// ANCHOR_END: semaphores
