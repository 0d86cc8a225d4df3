//! The documented layout of the lab's two kinds of shared objects, the
//! counter and the ring, and of a ring's records (given: you do not need to
//! change this file, but do read it).
//!
//! Any program on the machine can use these objects by name: `shm_open`
//! the name, `mmap` it, and follow the layout below (the chapter has it as
//! a C `struct`). Offsets hold for glibc on 64-bit Linux (x86-64, aarch64),
//! where `pthread_mutex_t` is 40 bytes, `pthread_cond_t` 48 and `sem_t` 32,
//! all aligned to 8; the build fails elsewhere rather than disagree with a
//! C program. Integers are in the machine's native byte order, as a C
//! program on the same machine writes them.
//!
//! Each block starts with a **magic word**, 0 in a fresh object. Its
//! creator stores it last, with `Ordering::Release`, once every
//! synchronisation object is initialised; an opener loads it with
//! `Mapping::load_u32` (`Acquire`) and refuses the object unless it matches.

use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::posix::{Deadline, SharedCond, SharedLayout, SharedMutex, SharedSemaphore};

// ANCHOR: counter
/// The counter's magic word: the bytes `CNTR` read as a little-endian u32.
pub const COUNTER_MAGIC: u32 = u32::from_le_bytes(*b"CNTR");

/// A counter shared by unrelated processes: a value, the mutex that guards
/// it, and the condition variable on which processes wait for it to change.
///
/// An update stores `value` first and `mirror` last, both under the mutex:
/// outside an update the two are equal. A process that dies half-way
/// through an update leaves them different, and `mirror` holds the last
/// complete value.
#[repr(C)]
#[derive(Debug)]
pub struct CounterBlock {
    /// `COUNTER_MAGIC` once the block is initialised.
    pub magic: AtomicU32,
    /// Always 0 (keeps `value` aligned to 8).
    pub reserved: AtomicU32,
    /// The counter.
    pub value: AtomicU64,
    /// A copy of `value`, stored last by every update.
    pub mirror: AtomicU64,
    /// Guards `value` and `mirror`: process-shared, robust, error-checking.
    pub mutex: SharedMutex,
    /// Broadcast after every update: process-shared.
    pub changed: SharedCond,
}

// SAFETY: repr(C); atomics and synchronisation objects only.
unsafe impl SharedLayout for CounterBlock {}

impl CounterBlock {
    /// Sleeps until another process broadcasts `changed` (or spuriously,
    /// or until the deadline: `ETIMEDOUT`), with `mutex` unlocked meanwhile
    /// and locked again on return: `pthread_cond_timedwait(&changed,
    /// &mutex, deadline)`. Hold `mutex` when you call it. `Err(EOWNERDEAD)`:
    /// you hold the lock, and its last holder died; repair as after
    /// `lock_until`.
    pub fn wait_changed(&self, deadline: &Deadline) -> nix::Result<()> {
        // SAFETY: this block's condition variable is only ever used with
        // this block's mutex (the layout's rule, kept by every user).
        unsafe { self.changed.wait_until(&self.mutex, deadline) }
    }
}
// ANCHOR_END: counter

// ANCHOR: ring
/// The ring's magic word: the bytes `RING` read as a little-endian u32.
pub const RING_MAGIC: u32 = u32::from_le_bytes(*b"RING");

/// Bytes in one record (see [`Record`]).
pub const RECORD_SIZE: usize = 24;

/// The header of a ring of `slots` fixed-size records, which follow it:
/// slot `i` is at offset `RING_HEADER + i * RECORD_SIZE`.
///
/// `tail` counts the records ever put, `head` those ever taken; the next
/// record goes into slot `tail % slots` and comes out of slot
/// `head % slots`. Both are changed only under `mutex`. `free` counts the
/// empty slots (it starts at `slots`), `used` the full ones (it starts at
/// 0): a producer waits on `free` and posts `used`, a consumer the reverse.
#[repr(C)]
#[derive(Debug)]
pub struct RingHeader {
    /// `RING_MAGIC` once the ring is initialised.
    pub magic: AtomicU32,
    /// The number of slots, at least 1.
    pub slots: AtomicU32,
    /// Always `RECORD_SIZE`.
    pub record_size: AtomicU32,
    /// Always 0.
    pub reserved: AtomicU32,
    /// Records taken so far.
    pub head: AtomicU64,
    /// Records put so far.
    pub tail: AtomicU64,
    /// Guards `head`, `tail` and the slots: process-shared, robust.
    pub mutex: SharedMutex,
    /// Empty slots: `sem_init(&free, 1, slots)`.
    pub free: SharedSemaphore,
    /// Full slots: `sem_init(&used, 1, 0)`.
    pub used: SharedSemaphore,
}

// SAFETY: repr(C); atomics and synchronisation objects only.
unsafe impl SharedLayout for RingHeader {}

/// Bytes before the first slot.
pub const RING_HEADER: usize = size_of::<RingHeader>();

/// The size of a ring object with `slots` slots, if it fits in a `u64`.
pub fn ring_size(slots: u32) -> Option<u64> {
    u64::from(slots)
        .checked_mul(RECORD_SIZE as u64)?
        .checked_add(RING_HEADER as u64)
}
// ANCHOR_END: ring

// The layout the chapter documents, checked at compile time.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
const _: () = {
    assert!(offset_of!(CounterBlock, value) == 8);
    assert!(offset_of!(CounterBlock, mirror) == 16);
    assert!(offset_of!(CounterBlock, mutex) == 24);
    assert!(offset_of!(CounterBlock, changed) == 64);
    assert!(size_of::<CounterBlock>() == 112);
    assert!(offset_of!(RingHeader, head) == 16);
    assert!(offset_of!(RingHeader, tail) == 24);
    assert!(offset_of!(RingHeader, mutex) == 32);
    assert!(offset_of!(RingHeader, free) == 72);
    assert!(offset_of!(RingHeader, used) == 104);
    assert!(RING_HEADER == 136);
    assert!(align_of::<RingHeader>() == 8 && align_of::<CounterBlock>() == 8);
};

/// `(name, offset, size)` of every field of both blocks, for `ring layout`.
pub fn fields() -> Vec<(&'static str, usize, usize)> {
    vec![
        ("counter.magic", offset_of!(CounterBlock, magic), 4),
        ("counter.value", offset_of!(CounterBlock, value), 8),
        ("counter.mirror", offset_of!(CounterBlock, mirror), 8),
        (
            "counter.mutex",
            offset_of!(CounterBlock, mutex),
            size_of::<SharedMutex>(),
        ),
        (
            "counter.changed",
            offset_of!(CounterBlock, changed),
            size_of::<SharedCond>(),
        ),
        ("counter (size)", 0, size_of::<CounterBlock>()),
        ("ring.magic", offset_of!(RingHeader, magic), 4),
        ("ring.slots", offset_of!(RingHeader, slots), 4),
        ("ring.record_size", offset_of!(RingHeader, record_size), 4),
        ("ring.head", offset_of!(RingHeader, head), 8),
        ("ring.tail", offset_of!(RingHeader, tail), 8),
        (
            "ring.mutex",
            offset_of!(RingHeader, mutex),
            size_of::<SharedMutex>(),
        ),
        (
            "ring.free",
            offset_of!(RingHeader, free),
            size_of::<SharedSemaphore>(),
        ),
        (
            "ring.used",
            offset_of!(RingHeader, used),
            size_of::<SharedSemaphore>(),
        ),
        ("ring header (size)", 0, RING_HEADER),
        ("record", 0, RECORD_SIZE),
    ]
}

// ANCHOR: record
/// One record of a ring, 24 bytes:
///
/// | offset | type | field |
/// |---|---|---|
/// | 0 | u32 | `producer` |
/// | 4 | u32 | `sequence`: 0, 1, 2 … for each producer |
/// | 8 | u64 | `value` |
/// | 16 | u64 | `check`: FNV-1a of bytes 0 to 15 |
///
/// `check` lets a consumer tell a whole record from a torn one (half
/// overwritten, or never written). A batch of records is summed up by the
/// wrapping sum of their `check` words: the same whatever the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Who made it.
    pub producer: u32,
    /// Its number among the producer's records, from 0.
    pub sequence: u32,
    /// The payload.
    pub value: u64,
    /// FNV-1a of the first 16 bytes.
    pub check: u64,
}

impl Record {
    /// Record number `sequence` of `producer`, its value derived from
    /// `seed`: `splitmix64(seed + (producer << 32 | sequence))`.
    pub fn new(producer: u32, sequence: u32, seed: u64) -> Record {
        let key = (u64::from(producer) << 32) | u64::from(sequence);
        let mut record = Record {
            producer,
            sequence,
            value: splitmix64(seed.wrapping_add(key)),
            check: 0,
        };
        record.check = fnv1a(&record.to_bytes()[..16]);
        record
    }

    /// The 24 bytes, in native byte order.
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut bytes = [0; RECORD_SIZE];
        bytes[0..4].copy_from_slice(&self.producer.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.sequence.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.value.to_ne_bytes());
        bytes[16..24].copy_from_slice(&self.check.to_ne_bytes());
        bytes
    }

    /// The record in `bytes`, whole or not: see [`Record::is_intact`].
    pub fn from_bytes(bytes: &[u8; RECORD_SIZE]) -> Record {
        let mut four = [0; 4];
        let mut eight = [0; 8];
        let mut u32_at = |at: usize| {
            four.copy_from_slice(&bytes[at..at + 4]);
            u32::from_ne_bytes(four)
        };
        let (producer, sequence) = (u32_at(0), u32_at(4));
        let mut u64_at = |at: usize| {
            eight.copy_from_slice(&bytes[at..at + 8]);
            u64::from_ne_bytes(eight)
        };
        Record {
            producer,
            sequence,
            value: u64_at(8),
            check: u64_at(16),
        }
    }

    /// Whether `check` matches the other fields: false for a record that
    /// was torn or never written (all zeros).
    pub fn is_intact(&self) -> bool {
        self.check == fnv1a(&self.to_bytes()[..16])
    }
}

/// 64-bit FNV-1a: start from 0xcbf29ce484222325; for each byte, xor it
/// in, then multiply by 0x100000001b3 (wrapping).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: a well-mixed 64-bit value from any 64-bit input.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
// ANCHOR_END: record
