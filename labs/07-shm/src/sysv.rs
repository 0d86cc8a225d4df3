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
//! into the segment, checking every offset, detaching exactly once) is
//! subtle, and a mistake there is undefined behaviour, not a lesson about
//! shared memory. [`Attachment`] does it once: it copies bytes in and out
//! with bounds checks, and `shmdt`s when dropped.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

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
    /// Errors: `ENOENT` (no segment for this key); `EINVAL` (the segment is
    /// smaller than `size`); `EIDRM` (it is being removed). Permissions are
    /// checked later, by `shmat` and `shmctl`.
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
    /// such segment); `EIDRM` (removed); `ENOMEM` (no address space left).
    pub fn attach(self, flags: c_int) -> nix::Result<Attachment> {
        self.attach_at(0, flags)
    }

    /// `shmat(shmid, addr, flags)` with an address hint: the segment is
    /// mapped exactly at `addr`, which must be a multiple of `SHMLBA` (the
    /// page size on most machines) unless `flags` has `SHM_RND`, which
    /// rounds `addr` down to one. An unaligned `addr` without `SHM_RND`
    /// fails with `EINVAL`.
    pub fn attach_at(self, addr: usize, flags: c_int) -> nix::Result<Attachment> {
        let len = self.stat()?.shm_segsz;
        // SAFETY: shmat maps new memory (or fails); with a non-null address
        // and no SHM_REMAP it never replaces an existing mapping.
        let at = unsafe { libc::shmat(self.id, addr as *const libc::c_void, flags) };
        if at as isize == -1 {
            return Err(Errno::last());
        }
        Ok(Attachment {
            addr: at.cast(),
            len,
        })
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
    /// never swapped out. Needs `CAP_IPC_LOCK`, or a `RLIMIT_MEMLOCK`
    /// (`ulimit -l`) large enough for it (`ENOMEM` otherwise).
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
/// time, so no Rust reference into it is ever handed out. Copy only when
/// your protocol (semaphores, for one) says nobody else is writing.
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
}

impl Attachment {
    /// The address the segment is mapped at in this process.
    pub fn addr(&self) -> usize {
        self.addr as usize
    }

    /// The segment's size (`shm_segsz`) when it was attached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a segment of 0 bytes (which `shmget` never makes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `buf.len()` bytes from the segment, starting `offset` bytes in.
    /// `EINVAL` if that runs past the end.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> nix::Result<()> {
        self.check(offset, buf.len())?;
        // SAFETY: the range lies inside the mapping (checked above), which
        // stays mapped while `self` lives; `buf` cannot overlap it.
        unsafe { ptr::copy_nonoverlapping(self.addr.add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into the segment, starting `offset` bytes in. `EINVAL`
    /// if that runs past the end.
    ///
    /// The store happens whatever the attachment's flags: through a
    /// `SHM_RDONLY` attachment, the processor refuses it and the kernel
    /// kills the process with `SIGSEGV`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> nix::Result<()> {
        self.check(offset, data.len())?;
        // SAFETY: as for read_at. Writing through a read-only mapping is not
        // undefined behaviour here: the hardware traps it, and the process
        // dies of SIGSEGV before anything is written.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.addr.add(offset), data.len()) };
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

/// The fourth argument of `semctl` (see chapter 06), reduced to what
/// `SETVAL` needs; the pointer member gives it the size and passing
/// convention of the full union.
#[repr(C)]
#[allow(dead_code)] // the kernel reads the members, Rust never does
union semun {
    val: c_int,
    array: *mut libc::c_ushort,
}

// ANCHOR: semaphores
/// A small System V semaphore set, as chapter 06 built it: created with
/// `IPC_EXCL` and given its values, opened, P and V (retried after
/// `EINTR`), removed. No `SEM_UNDO`: in this lab one process does the P
/// and another the V, so per-process adjustments would not cancel out.
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

    /// P on semaphore `num`: take one, sleeping while it is 0.
    pub fn p(self, num: u16) -> nix::Result<()> {
        self.op(num, -1)
    }

    /// V on semaphore `num`: give one back.
    pub fn v(self, num: u16) -> nix::Result<()> {
        self.op(num, 1)
    }

    /// `semctl(semid, 0, IPC_RMID)`: removes the set at once.
    pub fn remove(self) -> nix::Result<()> {
        // SAFETY: IPC_RMID takes no fourth argument.
        Errno::result(unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) }).map(drop)
    }

    fn op(self, num: u16, delta: i16) -> nix::Result<()> {
        let mut op = libc::sembuf {
            sem_num: num,
            sem_op: delta,
            sem_flg: 0,
        };
        loop {
            // SAFETY: one valid sembuf, which the kernel only reads.
            match Errno::result(unsafe { libc::semop(self.id, &mut op, 1) }) {
                Err(Errno::EINTR) => continue,
                result => return result.map(drop),
            }
        }
    }
}
// ANCHOR_END: semaphores
