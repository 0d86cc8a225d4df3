//! Shared memory for the ping-pong (given: you do not need to change this
//! file): a [`Region`] mapped into both processes, and its layout.
//!
//! ```text
//!  offset 0        a header: one 32-bit counter per 64-byte line, for the doors
//!  HEADER_BYTES    ping → pong: SLOTS slots of SLOT_BYTES each
//!  … + SLOTS × SLOT_BYTES
//!                  pong → ping: SLOTS slots of SLOT_BYTES each
//!  REGION_BYTES    end
//! ```
//!
//! A [`Region`] never hands out a Rust reference to the bytes of a slot,
//! only copies in and out, and those are `unsafe`: they are plain
//! `memcpy`s (a shared-memory transport that copied one byte at a time
//! would measure the loop, not the memory), and a plain copy while the
//! other process writes the same bytes is a data race, undefined behaviour
//! in Rust as in C. The precondition of each copy is the protocol: *this
//! process owns the slot now*, which the doors (`Door`) guarantee. The
//! counters are another matter: they are only ever accessed as atomics
//! (`AtomicU32`), which is what makes them safe to share.

use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicU32;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap};

// ANCHOR: layout
/// Slots per direction: the writer may fill one while the reader empties
/// the other.
pub const SLOTS: usize = 2;

/// Bytes per slot: a longer message goes through in several pieces.
pub const SLOT_BYTES: usize = 256 * 1024;

/// Bytes at the start of a region for counters, one per 64-byte cache
/// line (so that two processes spinning on two counters never fight over
/// one line).
pub const HEADER_BYTES: usize = 4096;

/// The size of a region: the header, then both directions' slots.
pub const REGION_BYTES: usize = HEADER_BYTES + 2 * SLOTS * SLOT_BYTES;

/// How many counters the header holds.
pub const COUNTERS: usize = HEADER_BYTES / COUNTER_STRIDE;

/// Bytes between two counters: a cache line.
const COUNTER_STRIDE: usize = 64;

/// One way through the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What ping sends and pong receives.
    PingToPong,
    /// What pong sends and ping receives.
    PongToPing,
}

impl Direction {
    /// 0 for ping → pong, 1 for pong → ping.
    pub fn index(self) -> usize {
        match self {
            Direction::PingToPong => 0,
            Direction::PongToPing => 1,
        }
    }
}

/// Where slot `slot` (0 to `SLOTS - 1`) of `direction` starts.
pub fn slot_offset(direction: Direction, slot: usize) -> usize {
    assert!(slot < SLOTS, "there is no slot {slot}");
    HEADER_BYTES + (direction.index() * SLOTS + slot) * SLOT_BYTES
}

/// A door of the mailbox protocol: something one side rings and the other
/// waits for. Each door counts: every ring lets exactly one wait through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// Rung by the writer of a direction once a slot holds a piece of a
    /// message; waited for by its reader.
    Full(Direction),
    /// Rung by the reader of a direction once it has copied a slot out;
    /// waited for by its writer.
    Empty(Direction),
}

impl Door {
    /// The four doors, in [`Door::index`] order.
    pub const ALL: [Door; 4] = [
        Door::Full(Direction::PingToPong),
        Door::Empty(Direction::PingToPong),
        Door::Full(Direction::PongToPing),
        Door::Empty(Direction::PongToPing),
    ];

    /// 0 to 3: the door's number, for a counter, a semaphore, an eventfd
    /// or a signal.
    pub fn index(self) -> usize {
        match self {
            Door::Full(direction) => 2 * direction.index(),
            Door::Empty(direction) => 2 * direction.index() + 1,
        }
    }
}
// ANCHOR_END: layout

// ANCHOR: region
/// Memory mapped into this process that other processes map too.
#[derive(Debug)]
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    /// `shmdt` (System V) rather than `munmap` when dropped.
    attached: bool,
}

impl Region {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
    /// -1, 0)`: zero-filled memory that this process and the children it
    /// forks from now on share (chapter 08). It has no name.
    pub fn anonymous(len: usize) -> Result<Region, Errno> {
        let size = std::num::NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a new anonymous mapping aliases nothing.
        let base = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )?
        };
        Ok(Region {
            base: base.cast(),
            len,
            attached: false,
        })
    }

    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`: the
    /// first `len` bytes of the file `fd` (a POSIX shared memory object,
    /// chapter 10), which must be at least that long (`ftruncate`). The
    /// mapping stays after `fd` is closed.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> Result<Region, Errno> {
        let size = std::num::NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a new shared mapping of a file aliases no Rust object.
        let base = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )?
        };
        Ok(Region {
            base: base.cast(),
            len,
            attached: false,
        })
    }

    /// `shmat(shmid, NULL, 0)`: attaches the System V segment `shmid`
    /// (chapter 07) read-write, all of it (`shm_segsz` bytes).
    pub fn attach(shmid: i32) -> Result<Region, Errno> {
        // SAFETY: shmid_ds is plain data that IPC_STAT fills.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT writes one shmid_ds.
        if unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) } == -1 {
            return Err(Errno::last());
        }
        // SAFETY: shmat with a null address lets the kernel choose free
        // addresses, so the new mapping aliases nothing.
        let base = unsafe { libc::shmat(shmid, ptr::null(), 0) };
        if base as isize == -1 {
            return Err(Errno::last());
        }
        Ok(Region {
            base: NonNull::new(base.cast()).ok_or(Errno::EINVAL)?,
            len: ds.shm_segsz,
            attached: true,
        })
    }

    /// The region's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes at all (never, in this program).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counter `index` of the header (0 to `COUNTERS - 1`), zero in a new
    /// region. Panics if the region has no header or `index` is too large.
    pub fn counter(&self, index: usize) -> &AtomicU32 {
        assert!(index < COUNTERS, "there is no counter {index}");
        assert!(self.len >= HEADER_BYTES, "a region too small for a header");
        // SAFETY: the address is inside the region, aligned (the region
        // starts on a page, counters are 64 bytes apart), and valid for as
        // long as `self`; the header is only ever accessed atomically,
        // since `copy_in` and `copy_out` refuse it.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(index * COUNTER_STRIDE).cast()) }
    }

    /// Copies `bytes` into the region at `offset`. Panics if that is not
    /// wholly inside the region, after its header.
    ///
    /// # Safety
    ///
    /// No other process (or thread) reads or writes these bytes while the
    /// copy runs: your protocol must give this process the slot first.
    pub unsafe fn copy_in(&self, offset: usize, bytes: &[u8]) {
        self.check_range(offset, bytes.len());
        // SAFETY: in range (checked), and the caller owns those bytes now.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.as_ptr().add(offset), bytes.len())
        };
    }

    /// Copies `into.len()` bytes out of the region from `offset`. Panics
    /// if that is not wholly inside the region, after its header.
    ///
    /// # Safety
    ///
    /// No other process (or thread) writes these bytes while the copy
    /// runs: your protocol must give this process the slot first.
    pub unsafe fn copy_out(&self, offset: usize, into: &mut [u8]) {
        self.check_range(offset, into.len());
        // SAFETY: in range (checked), and nobody writes those bytes now.
        unsafe {
            ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                into.as_mut_ptr(),
                into.len(),
            )
        };
    }

    /// Panics unless `offset..offset + len` is inside the region and past
    /// its header.
    fn check_range(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len);
        assert!(
            offset >= HEADER_BYTES && end.is_some_and(|end| end <= self.len),
            "bytes {offset}..{offset}+{len} are not in the slots of a region of {} bytes",
            self.len
        );
    }

    /// The address the region starts at in this process (to tell it apart
    /// in `/proc/self/maps`).
    pub fn address(&self) -> usize {
        self.base.as_ptr() as usize
    }
}

impl Drop for Region {
    /// `munmap`, or `shmdt` for a System V segment.
    fn drop(&mut self) {
        if self.attached {
            // SAFETY: the address came from shmat, and nothing borrows the
            // region any more.
            unsafe { libc::shmdt(self.base.as_ptr().cast()) };
        } else {
            // SAFETY: the mapping came from mmap with this length, and
            // nothing borrows the region any more.
            let _ = unsafe { munmap(self.base.cast(), self.len) };
        }
    }
}
// ANCHOR_END: region
