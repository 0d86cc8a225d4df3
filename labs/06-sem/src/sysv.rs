//! A thin safe layer over the System V semaphore calls (given: you do not
//! need to change this file, but do read it).
//!
//! nix has no wrappers for System V IPC, so this module calls libc directly.
//! Each function is one system call: it turns Rust arguments into C ones,
//! makes the call, and turns `-1` plus `errno` into `Err(Errno)`. Nothing
//! is hidden and nothing is added: no retries, no removal on drop, no
//! context in the errors. Deciding what an error *means* (a set that is not
//! there yet, a P that would block, a signal that interrupted a wait) is the
//! work of the lab.
//!
//! Why this part is given rather than a TODO: `semctl` is a variadic C
//! function whose fourth argument is a `union semun` that the program must
//! define itself, and `IPC_STAT`/`GETALL`/`SETALL` pass raw pointers to
//! buffers the kernel reads or fills. Mistakes there corrupt memory or pass
//! garbage silently; they teach C's calling conventions, not semaphores.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use libc::{c_int, c_ushort};
use nix::errno::Errno;
use nix::unistd::Pid;

/// A System V IPC key (`key_t`), as `ftok` makes it.
pub type Key = libc::key_t;

/// One operation of a `semop` call: `struct sembuf`, re-exported from libc.
///
/// * `sem_num`: which semaphore of the set, `0..nsems`;
/// * `sem_op`: negative = take that much (P), waiting while the value is too
///   small; positive = give it back (V); zero = wait until the value is 0;
/// * `sem_flg`: `IPC_NOWAIT` and/or `SEM_UNDO` (both `c_int` in libc: cast
///   them with `as i16`), or 0.
pub use libc::sembuf;

// ANCHOR: ftok
/// `ftok(path, proj_id)`: makes a key from the inode and device numbers of
/// an existing file and the low 8 bits of `proj_id`. Every process that
/// passes the same file and `proj_id` gets the same key.
///
/// Errors: those of `stat(2)` on `path`, e.g. `ENOENT` (no such file) or
/// `EACCES` (a directory on the way cannot be searched).
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

// ANCHOR: semun
/// The fourth argument of `semctl`, which C programs must declare
/// themselves (`man 2 semctl`). Which member the kernel reads depends on
/// the command: `val` for `SETVAL`, `buf` for `IPC_STAT`/`IPC_SET`, `array`
/// for `GETALL`/`SETALL`, `__buf` for `IPC_INFO` (Linux).
#[repr(C)]
#[allow(dead_code)] // the kernel reads the members, Rust never does
union semun {
    val: c_int,
    buf: *mut libc::semid_ds,
    array: *mut c_ushort,
    __buf: *mut libc::seminfo,
}
// ANCHOR_END: semun

unsafe extern "C" {
    /// `semtimedop(2)`: glibc has it, the libc crate does not declare it.
    fn semtimedop(
        semid: c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> c_int;
}

/// A System V semaphore set (信号量集), known by its identifier (`semid`).
///
/// It is only a number, like a file descriptor, so it is `Copy`; but unlike
/// a descriptor, nothing closes or removes the set when the number goes out
/// of scope. The set lives in the kernel until [`SemSet::remove`] (or a
/// reboot), whatever happens to the processes that use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemSet {
    id: c_int,
}

impl SemSet {
    // ANCHOR: semget
    /// `semget(key, nsems, IPC_CREAT | IPC_EXCL | mode)`: creates a set of
    /// `nsems` semaphores, or fails with `EEXIST` if `key` already has one.
    /// Linux starts every value at 0; POSIX leaves it undefined, so set the
    /// values yourself (`SETVAL`, `SETALL`) before anyone uses the set.
    ///
    /// Errors: `EEXIST`; `EINVAL` (`nsems` is 0 or above `SEMMSL`);
    /// `ENOSPC` (the system-wide limit of sets or semaphores is reached).
    pub fn create(key: Key, nsems: u16, mode: u16) -> nix::Result<SemSet> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | c_int::from(mode & 0o777);
        Self::get(key, c_int::from(nsems), flags)
    }

    /// `semget(IPC_PRIVATE, nsems, mode)`: always a new set, with no key
    /// that another process could look up. Only processes that learn the
    /// identifier (children forked afterwards, for one) can use it.
    pub fn create_private(nsems: u16, mode: u16) -> nix::Result<SemSet> {
        Self::get(
            libc::IPC_PRIVATE,
            c_int::from(nsems),
            c_int::from(mode & 0o777),
        )
    }

    /// `semget(key, 0, 0)`: opens the set that `key` already names. `nsems`
    /// is 0 because an existing set keeps its size.
    ///
    /// Errors: `ENOENT` (no set for this key: never made, or removed, since
    /// `IPC_RMID` takes a set away at once). Permissions are checked later,
    /// by each `semop` and `semctl`.
    pub fn open(key: Key) -> nix::Result<SemSet> {
        Self::get(key, 0, 0)
    }
    // ANCHOR_END: semget

    fn get(key: Key, nsems: c_int, flags: c_int) -> nix::Result<SemSet> {
        // SAFETY: semget takes plain integers.
        let id = unsafe { libc::semget(key, nsems, flags) };
        if id == -1 {
            Err(Errno::last())
        } else {
            Ok(SemSet { id })
        }
    }

    /// The identifier (`semid`), as `ipcs -s` shows it.
    pub fn id(self) -> i32 {
        self.id
    }

    // ANCHOR: semop
    /// `semop(semid, ops, ops.len())`: applies every operation of `ops`, as
    /// one atomic step: either all of them happen, or none does and the
    /// caller sleeps until all of them can (or fails at once with `EAGAIN`
    /// if one of the operations that cannot proceed has `IPC_NOWAIT`).
    ///
    /// Errors: `EAGAIN` (`IPC_NOWAIT` and it would block); `EINTR` (a signal
    /// handler ran while it slept: nothing was done, try again); `EIDRM`
    /// (the set was removed while it slept); `EFBIG` (a `sem_num` is not
    /// below `nsems`); `EACCES` (no permission); `E2BIG` (more than `SEMOPM`
    /// operations); `ERANGE` (a value would exceed `SEMVMX`, 32767).
    pub fn op(self, ops: &[sembuf]) -> nix::Result<()> {
        // SAFETY: the pointer and length describe `ops`; the kernel only
        // reads the array (the C prototype lacks `const` for history's sake).
        let result = unsafe { libc::semop(self.id, ops.as_ptr().cast_mut(), ops.len()) };
        Errno::result(result).map(drop)
    }

    /// `semtimedop(semid, ops, ops.len(), timeout)`: like [`SemSet::op`],
    /// but a caller that would sleep longer than `timeout` gives up with
    /// `EAGAIN`, having done nothing.
    pub fn op_timeout(self, ops: &[sembuf], timeout: Duration) -> nix::Result<()> {
        let timeout = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).map_err(|_| Errno::EINVAL)?,
            tv_nsec: timeout.subsec_nanos().into(),
        };
        // SAFETY: as for semop; `timeout` is a valid timespec for the call.
        let result = unsafe { semtimedop(self.id, ops.as_ptr().cast_mut(), ops.len(), &timeout) };
        Errno::result(result).map(drop)
    }
    // ANCHOR_END: semop

    // ANCHOR: semctl
    /// `semctl(semid, num, GETVAL)`: the value (`semval`) of semaphore `num`.
    pub fn get_val(self, num: u16) -> nix::Result<u16> {
        // SAFETY: GETVAL takes no fourth argument.
        let value = unsafe { libc::semctl(self.id, c_int::from(num), libc::GETVAL) };
        Errno::result(value).map(to_u16)
    }

    /// `semctl(semid, num, SETVAL, arg.val = value)`: sets one value, and
    /// wakes the processes whose operations can now proceed. Also clears
    /// every process's `SEM_UNDO` adjustment for this semaphore.
    pub fn set_val(self, num: u16, value: u16) -> nix::Result<()> {
        let arg = semun {
            val: c_int::from(value),
        };
        // SAFETY: SETVAL reads `arg.val`, an int.
        let result = unsafe { libc::semctl(self.id, c_int::from(num), libc::SETVAL, arg) };
        Errno::result(result).map(drop)
    }

    /// `semctl(semid, 0, GETALL, arg.array)`: every value of the set, in
    /// order (`semnum` is ignored). It sizes the buffer with `IPC_STAT`.
    pub fn get_all(self) -> nix::Result<Vec<u16>> {
        let mut values = vec![0 as c_ushort; self.nsems()?];
        let arg = semun {
            array: values.as_mut_ptr(),
        };
        // SAFETY: GETALL writes nsems unsigned shorts to `arg.array`, and
        // `values` has exactly that many.
        let result = unsafe { libc::semctl(self.id, 0, libc::GETALL, arg) };
        Errno::result(result)?;
        Ok(values)
    }

    /// `semctl(semid, 0, SETALL, arg.array)`: sets every value at once.
    /// `values` must have exactly `nsems` entries (else `EINVAL` here, before
    /// the kernel could read past the end of the slice). To check that, it
    /// reads `sem_nsems` with `IPC_STAT` first, so it needs read permission
    /// as well as alter; [`SemSet::set_val`] needs only alter.
    pub fn set_all(self, values: &[u16]) -> nix::Result<()> {
        if values.len() != self.nsems()? {
            return Err(Errno::EINVAL);
        }
        let mut values = values.to_vec();
        let arg = semun {
            array: values.as_mut_ptr(),
        };
        // SAFETY: SETALL reads nsems unsigned shorts from `arg.array`, and
        // `values` has exactly that many.
        let result = unsafe { libc::semctl(self.id, 0, libc::SETALL, arg) };
        Errno::result(result).map(drop)
    }

    /// `semctl(semid, num, GETPID)`: `sempid`, the process that last
    /// operated on semaphore `num` (Linux counts `SETVAL` and `SETALL` too),
    /// or `None` (0) if none has yet.
    pub fn get_pid(self, num: u16) -> nix::Result<Option<Pid>> {
        // SAFETY: GETPID takes no fourth argument.
        let pid = unsafe { libc::semctl(self.id, c_int::from(num), libc::GETPID) };
        Errno::result(pid).map(|pid| (pid != 0).then(|| Pid::from_raw(pid)))
    }

    /// `semctl(semid, num, GETNCNT)`: `semncnt`, how many processes sleep in
    /// `semop` waiting for semaphore `num` to grow (a P that cannot proceed).
    /// Since Linux 3.16 a sleeping `semop` counts once, against the first of
    /// its operations that cannot proceed, as POSIX says.
    pub fn get_ncnt(self, num: u16) -> nix::Result<u16> {
        // SAFETY: GETNCNT takes no fourth argument.
        let count = unsafe { libc::semctl(self.id, c_int::from(num), libc::GETNCNT) };
        Errno::result(count).map(to_u16)
    }

    /// `semctl(semid, num, GETZCNT)`: `semzcnt`, how many processes sleep in
    /// `semop` waiting for semaphore `num` to become 0 (`sem_op == 0`),
    /// counted the same way.
    pub fn get_zcnt(self, num: u16) -> nix::Result<u16> {
        // SAFETY: GETZCNT takes no fourth argument.
        let count = unsafe { libc::semctl(self.id, c_int::from(num), libc::GETZCNT) };
        Errno::result(count).map(to_u16)
    }

    /// `semctl(semid, 0, IPC_STAT, arg.buf)`: the set's `semid_ds`:
    /// `sem_perm` (owner, creator, mode), `sem_nsems`, `sem_otime` (time of
    /// the last `semop`, 0 if none yet) and `sem_ctime` (creation or last
    /// `SETVAL`/`SETALL`/`IPC_SET`), in seconds since the epoch.
    ///
    /// Errors: `EACCES` (no read permission); `EINVAL`/`EIDRM` (no such set).
    pub fn stat(self) -> nix::Result<libc::semid_ds> {
        // SAFETY: semid_ds is plain old data; all zeroes is a valid value.
        let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
        let arg = semun { buf: &mut ds };
        // SAFETY: IPC_STAT fills the semid_ds `arg.buf` points to.
        let result = unsafe { libc::semctl(self.id, 0, libc::IPC_STAT, arg) };
        Errno::result(result)?;
        Ok(ds)
    }

    /// `semctl(semid, 0, IPC_RMID)`: removes the set at once. Processes
    /// sleeping in `semop` on it wake up with `EIDRM`.
    ///
    /// Errors: `EPERM` (only the owner, the creator or a privileged process
    /// may remove it); `EINVAL` (no such set).
    pub fn remove(self) -> nix::Result<()> {
        // SAFETY: IPC_RMID takes no fourth argument.
        let result = unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) };
        Errno::result(result).map(drop)
    }
    // ANCHOR_END: semctl

    /// `sem_nsems`, from `IPC_STAT`.
    fn nsems(self) -> nix::Result<usize> {
        usize::try_from(self.stat()?.sem_nsems).map_err(|_| Errno::EOVERFLOW)
    }
}

/// A count or value that `semctl` returned as a non-negative `int`.
fn to_u16(value: c_int) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}
