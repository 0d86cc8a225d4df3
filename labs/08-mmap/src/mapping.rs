//! A thin safe layer over `mmap`, `munmap`, `msync` and `mprotect` (given:
//! you do not need to change this file, but do read it).
//!
//! Each method is one system call, and every failure is `Err(Errno)` with
//! the kernel's own errno: a length of 0 or an offset that is not a
//! multiple of the page size reaches the kernel, which answers `EINVAL`.
//! Deciding what an error *means* is the work of the lab.
//!
//! # Why this part is given, and how it stays sound
//!
//! `mmap` returns a raw pointer to memory that other processes (and the
//! file's other users) may change at any moment, and that can fault when
//! touched. Turning that into safe Rust takes four rules, and a mistake in
//! any of them is undefined behaviour, not a lesson about mappings:
//!
//! 1. **No reference to the mapped bytes is ever handed out.** A `&[u8]`
//!    promises the compiler that nobody changes those bytes while it lives;
//!    another process writing the file breaks that promise behind the
//!    compiler's back. Bytes are copied in and out one at a time with
//!    **relaxed atomic** loads and stores ([`Mapping::read_at`],
//!    [`Mapping::write_at`], [`Mapping::bytes`]), as chapter 07's layer
//!    copies a System V segment: an atomic access may race with other
//!    writers, a plain or volatile one may not. (A mapping is taken to be
//!    an allocation, made by the kernel; inside an allocation Rust treats
//!    volatile accesses as plain ones where concurrency is concerned. Its
//!    looser rules for volatile cover only memory outside every
//!    allocation, such as device registers.) Relaxed loads of one byte are
//!    also documented to work on read-only pages. Chapter 07's section
//!    "shmat and shmdt" lists all that this relies on.
//! 2. **No atomic store to a page that is not writable.** Rust documents
//!    atomic stores to read-only memory as undefined behaviour, so
//!    [`Mapping::write_at`] refuses a mapping that is not read-write
//!    (`EACCES`). The one store that hits a read-only page on purpose, to
//!    show `SIGSEGV`, is [`Mapping::write_unchecked`]'s: one processor
//!    instruction, in assembly, whose fault ends the process.
//! 3. **The pages stay mapped, and keep their protection, while they are
//!    used.** `munmap` happens only in [`Mapping::unmap`] and in `Drop`,
//!    both of which consume or end the `Mapping`; [`Mapping::protect`]
//!    takes `&mut self`, so no borrowed [`Mapping::counters`] can be alive
//!    when the protection changes. The layer never passes `MAP_FIXED`, so a
//!    new mapping never replaces memory the program is using.
//! 4. **Atomics of one size on the same bytes.** Atomic accesses that race
//!    must be of the same size. The byte copies are one byte wide, the
//!    counters eight; [`Mapping::counters`] takes `&mut self`, so while the
//!    counters are in use (by any thread of this process) no byte copy of
//!    the same mapping can run. Other processes that share the memory must
//!    keep the same rule: nothing in this process can check them.
//!
//! One thing no layer can prevent: a page of a file mapping that lies
//! entirely past the end of the file (because the mapping was made longer
//! than the file, or the file shrank since, perhaps truncated by another
//! process) has nothing behind it. Touching it, even through `read_at`,
//! makes the processor fault, and the kernel kills the process with
//! `SIGBUS`: the access never completes, and no code runs after it. That
//! is a crash, not undefined behaviour (the `memmap2` crate says the same
//! of its raw mappings). Check the file's size (`fstat`) before you map
//! it, as the lab's tasks do.

use std::ffi::c_void;
use std::iter::FusedIterator;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use nix::errno::Errno;

/// Whether stores through a mapping are seen by others: the `MAP_SHARED`
/// or `MAP_PRIVATE` flag of `mmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// `MAP_SHARED`: stores reach the file (and every other process that
    /// maps it), and this mapping sees theirs.
    Shared,
    /// `MAP_PRIVATE`: the first store to a page gives this mapping its own
    /// copy of that page (copy-on-write); the file and other processes
    /// never see it.
    Private,
}

/// What the pages of a mapping allow: the `prot` argument of `mmap` and
/// `mprotect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `PROT_READ`: loads only; a store is killed by `SIGSEGV`.
    Read,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

impl Access {
    fn prot(self) -> libc::c_int {
        match self {
            Access::Read => libc::PROT_READ,
            Access::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        }
    }
}

// ANCHOR: mapping
/// One mapping: `len` bytes of this process's address space, made by
/// `mmap` and unmapped (`munmap`) when dropped.
///
/// A `fork`ed child inherits the mapping at the same address, with the same
/// sharing: a shared mapping is then one memory for both processes, a
/// private one becomes two copies as soon as either writes. A child may use,
/// drop or unmap its copy of a `Mapping` without affecting its parent's.
#[derive(Debug)]
pub struct Mapping {
    addr: NonNull<u8>,
    len: usize,
    access: Access,
    anonymous: bool,
}

impl Mapping {
    /// `mmap(NULL, len, prot, share, fd, offset)`: maps `len` bytes of the
    /// file open on `fd`, starting `offset` bytes into it, at an address the
    /// kernel chooses. The descriptor may be closed at once afterwards: the
    /// mapping keeps the file.
    ///
    /// The mapping may be longer than the file: `mmap` does not check.
    /// Bytes past the end of the file in its last page read as 0; pages
    /// wholly past it fault with `SIGBUS` when touched.
    ///
    /// Errors: `EINVAL` (`len` is 0, or `offset` is not a multiple of the
    /// page size); `EACCES` (`fd` is not open for reading; or `Shared` with
    /// `ReadWrite` on a descriptor not open for writing); `ENODEV` (the file
    /// cannot be mapped: a directory, a pipe, `/dev/null`, most of `/proc`);
    /// `EBADF`; `ENOMEM` (no room in the address space).
    pub fn file(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        access: Access,
        share: Share,
    ) -> nix::Result<Mapping> {
        let offset = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let flags = match share {
            Share::Shared => libc::MAP_SHARED,
            Share::Private => libc::MAP_PRIVATE,
        };
        // SAFETY: with a null address and no MAP_FIXED, mmap only creates a
        // new mapping where nothing is mapped; it touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                access.prot(),
                flags,
                fd.as_raw_fd(),
                offset,
            )
        };
        Self::from_raw(addr, len, access, false)
    }

    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, share | MAP_ANONYMOUS, -1,
    /// 0)`: `len` bytes of fresh memory, all zeros, backed by no file. With
    /// `Shared`, made before `fork`, it is memory that a parent and its
    /// children share: nothing names it, so only related processes
    /// (亲缘关系) can reach it.
    ///
    /// Errors: `EINVAL` (`len` is 0); `ENOMEM`.
    pub fn anonymous(len: usize, share: Share) -> nix::Result<Mapping> {
        let flags = libc::MAP_ANONYMOUS
            | match share {
                Share::Shared => libc::MAP_SHARED,
                Share::Private => libc::MAP_PRIVATE,
            };
        let access = Access::ReadWrite;
        // SAFETY: as in `file`: a new mapping, nothing existing replaced.
        let addr = unsafe { libc::mmap(ptr::null_mut(), len, access.prot(), flags, -1, 0) };
        Self::from_raw(addr, len, access, true)
    }

    fn from_raw(
        addr: *mut c_void,
        len: usize,
        access: Access,
        anonymous: bool,
    ) -> nix::Result<Mapping> {
        if addr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(Errno::EINVAL)?;
        Ok(Mapping {
            addr,
            len,
            access,
            anonymous,
        })
    }

    /// The address the mapping starts at: always a multiple of the page size.
    pub fn addr(&self) -> usize {
        self.addr.as_ptr() as usize
    }

    /// The mapping's length in bytes, as asked of `mmap`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a mapping of 0 bytes (which `mmap` never makes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What the pages allow now.
    pub fn access(&self) -> Access {
        self.access
    }
    // ANCHOR_END: mapping

    // ANCHOR: access
    /// Copies `buf.len()` bytes out of the mapping, starting `offset` bytes
    /// in, with relaxed atomic loads. `EINVAL` if that runs past the end of
    /// the mapping. A page past the end of a mapped file faults: `SIGBUS`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> nix::Result<()> {
        self.check(offset, buf.len())?;
        for (i, slot) in buf.iter_mut().enumerate() {
            *slot = self.load(offset + i);
        }
        Ok(())
    }

    /// Copies `data` into the mapping, starting `offset` bytes in, with
    /// relaxed atomic stores. `EINVAL` if that runs past the end; `EACCES`
    /// if the mapping is not read-write (see [`Mapping::write_unchecked`]).
    pub fn write_at(&self, offset: usize, data: &[u8]) -> nix::Result<()> {
        self.check(offset, data.len())?;
        if self.access != Access::ReadWrite {
            return Err(Errno::EACCES);
        }
        for (i, &byte) in data.iter().enumerate() {
            // SAFETY: in bounds (checked above), mapped while `self` lives,
            // and valid for reads and writes, as from_ptr needs: the
            // mapping is read-write, and `protect`, which could change
            // that, needs `&mut self`; alignment 1; and no counter of this
            // process overlaps (`counters` borrows `self` mutably).
            let cell = unsafe { AtomicU8::from_ptr(self.addr.as_ptr().add(offset + i)) };
            cell.store(byte, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Every byte of the mapping in order, each read with a relaxed atomic
    /// load when the iterator reaches it: a way to scan a mapping without
    /// copying it and without a reference into it.
    pub fn bytes(&self) -> Bytes<'_> {
        Bytes {
            mapping: self,
            next: 0,
        }
    }

    /// The mapping as `len / 8` atomic 64-bit counters, for memory that a
    /// parent and its children share. Only for an anonymous, read-write
    /// mapping (`EINVAL` otherwise): a file's pages could lie past its end,
    /// and atomics on read-only pages are undefined behaviour.
    ///
    /// It takes `&mut self`: while the counters are borrowed, this process
    /// can make no byte copy (`read_at`, `write_at`, `bytes`) of the same
    /// memory, because atomic accesses of different sizes must not race.
    /// Every other process that shares the counters must use them the same
    /// way: through atomic operations of eight bytes only.
    pub fn counters(&mut self) -> nix::Result<&[AtomicU64]> {
        if !self.anonymous || self.access != Access::ReadWrite {
            return Err(Errno::EINVAL);
        }
        // SAFETY: the mapping starts on a page boundary, so it is aligned
        // for u64; `len / 8` counters fit in it; it is mapped and writable
        // while the slice borrows `self` (munmap and mprotect need `self`
        // by value or `&mut`); any bit pattern is a valid u64; shared
        // mutation through `&AtomicU64` is what atomics allow; and the
        // slice borrows `self` mutably, so no one-byte access of this layer
        // overlaps the counters while it lives.
        Ok(unsafe {
            std::slice::from_raw_parts(self.addr.as_ptr().cast::<AtomicU64>(), self.len / 8)
        })
    }
    // ANCHOR_END: access

    // ANCHOR: unchecked
    /// Copies `data` into the mapping at `offset` **without** refusing a
    /// mapping that is not writable: through a page made read-only with
    /// [`Mapping::protect`], the processor refuses the store and the kernel
    /// kills the process with `SIGSEGV`. It exists to show that. `EINVAL`
    /// if the range runs past the end of the mapping; on a read-write
    /// mapping it does what [`Mapping::write_at`] does.
    ///
    /// The store to a read-only page is one processor instruction, written
    /// in assembly, exactly as chapter 07's layer stores through
    /// `SHM_RDONLY`: Rust defines neither an atomic store to read-only
    /// memory nor a volatile store that traps, while what an instruction
    /// does is the processor's to define. The instruction never completes,
    /// and the process ends there: `SIGSEGV`'s default action kills it (the
    /// handler Rust installs for stack overflows restores that default for
    /// any other fault), and a handler that returned would only make the
    /// instruction fault again.
    pub fn write_unchecked(&self, offset: usize, data: &[u8]) -> nix::Result<()> {
        self.check(offset, data.len())?;
        if self.access == Access::ReadWrite {
            return self.write_at(offset, data);
        }
        if let Some(&first) = data.first() {
            // SAFETY: in bounds (checked above) and mapped while `self`
            // lives; a mapping holds no Rust value; the pages are read-only
            // (`access` follows every mmap and mprotect of this mapping),
            // so the store faults and the process ends there.
            unsafe { store_refused(self.addr.as_ptr().add(offset), first) };
        }
        Err(Errno::EACCES)
    }
    // ANCHOR_END: unchecked

    // ANCHOR: syscalls
    /// `msync(addr, len, MS_SYNC)`: writes the mapping's changed pages back
    /// to the file and waits until that is done. A shared file mapping and
    /// `read` see the same pages of the page cache at once, without it;
    /// `msync` is about the copy **on disk**, which a crash or a power cut
    /// would otherwise lose. (`MS_ASYNC` only schedules the write, and on
    /// Linux does nothing at all: the kernel writes dirty pages back anyway.)
    ///
    /// `msync` wants a page-aligned address: the start of a mapping always
    /// is. Errors: `ENOMEM` (the range is not mapped), `EINVAL`, `EIO`.
    pub fn sync(&self) -> nix::Result<()> {
        // SAFETY: the whole mapping, which is mapped while `self` lives.
        let result = unsafe { libc::msync(self.addr.as_ptr().cast(), self.len, libc::MS_SYNC) };
        Errno::result(result).map(drop)
    }

    /// `mprotect(addr, len, prot)`: changes what the mapping's pages allow.
    /// Making a shared mapping of a file writable needs a descriptor that
    /// was open for writing when the mapping was made (`EACCES`
    /// otherwise); a private mapping may always become writable.
    ///
    /// Errors: `EACCES`; `EINVAL` (an address not page-aligned, which the
    /// start of a mapping never is); `ENOMEM` (part of the range not mapped).
    pub fn protect(&mut self, access: Access) -> nix::Result<()> {
        // SAFETY: the whole mapping, ours while `self` lives; `&mut self`
        // guarantees that no slice from `counters` is alive to see the change.
        let result = unsafe { libc::mprotect(self.addr.as_ptr().cast(), self.len, access.prot()) };
        Errno::result(result)?;
        self.access = access;
        Ok(())
    }

    /// `munmap(addr, len)`: removes the mapping from this process, and
    /// reports an error if there is one. (Dropping a `Mapping` does the
    /// same, silently.) Exit and `exec` unmap everything too; closing the
    /// file does not.
    pub fn unmap(self) -> nix::Result<()> {
        let (addr, len) = (self.addr, self.len);
        std::mem::forget(self);
        // SAFETY: `addr` and `len` came from mmap; `self` is forgotten, so
        // nothing can use the range again or unmap it a second time.
        Errno::result(unsafe { libc::munmap(addr.as_ptr().cast(), len) }).map(drop)
    }
    // ANCHOR_END: syscalls

    fn load(&self, index: usize) -> u8 {
        // SAFETY: callers check `index < self.len`; the byte is mapped while
        // `self` lives (only `unmap` and `drop` unmap it, and both end
        // `self`); an AtomicU8 has the size and alignment (1) of a u8, and
        // every byte is a valid one; a relaxed one-byte load is sound on
        // read-only pages too; it may race with one-byte stores of other
        // processes, and no counter of this process can overlap it
        // (`counters` borrows `self` mutably). The reference lives for this
        // one load only.
        let cell = unsafe { &*self.addr.as_ptr().add(index).cast::<AtomicU8>() };
        cell.load(Ordering::Relaxed)
    }

    fn check(&self, offset: usize, count: usize) -> nix::Result<()> {
        match offset.checked_add(count) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr` and `len` came from mmap, and are unmapped only here.
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.len) };
    }
}

/// The iterator of [`Mapping::bytes`].
#[derive(Debug)]
pub struct Bytes<'a> {
    mapping: &'a Mapping,
    next: usize,
}

impl Iterator for Bytes<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.next >= self.mapping.len {
            return None;
        }
        let byte = self.mapping.load(self.next);
        self.next += 1;
        Some(byte)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.mapping.len - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Bytes<'_> {}
impl FusedIterator for Bytes<'_> {}

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
