//! # Lab 08: mmap (内存映射)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/08-mmap.md` and the grading suite
//! `tests/08-mmap.rs`. Run `cargo test` in this directory to grade your
//! work; `cargo run -- --help` shows the command you are building.
//!
//! Three files are given: `cli.rs`, the command line, which calls these
//! functions and prints what they return; `mapping.rs`, a thin safe layer
//! over `mmap`, `munmap`, `msync` and `mprotect` (one method per system
//! call, errors as `nix::errno::Errno`, and bytes copied in and out with
//! atomic operations, never through a `&[u8]`); and `gate.rs`, a starting
//! gate made of two pipes, for task 6. Build everything here on them. You
//! may add private helper functions.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::path::Path;

use nix::sys::wait::WaitStatus;

use self::mapping::{Mapping, Share};

pub mod cli;
pub mod gate;
pub mod mapping;

// ANCHOR: map_file
/// Returns the page size, `sysconf(_SC_PAGESIZE)`: the unit of every
/// mapping, and what `mmap` offsets must be multiples of. Never assume 4096.
/// An error if `sysconf` fails or has no answer.
pub fn page_size() -> anyhow::Result<usize> {
    // TODO(1): sysconf(_SC_PAGESIZE).
    todo!("TODO(1): page_size")
}

/// Maps part of the file at `path` for reading: `length` bytes starting
/// `offset` bytes in, or, with `length` `None`, everything from `offset`
/// to the end of the file.
///
/// 1. Open the file read-only (context: `open PATH`) and learn its size
///    with `fstat` (`File::metadata`).
/// 2. Check the range against that size **before** mapping: `mmap` does
///    not, and a page past the end of the file kills the process with
///    `SIGBUS` when it is touched. A range that ends past the end is an
///    error whose message says `beyond the end of PATH (SIZE bytes)`.
/// 3. With `length` `None` and nothing left after `offset` (an empty file,
///    say), return `Ok(None)` without calling `mmap`: a mapping of 0 bytes
///    is `EINVAL`.
/// 4. Otherwise `Mapping::file(fd, offset, len, Access::Read, share)`,
///    context `mmap LEN bytes of PATH at offset OFFSET`. Pass `offset` and
///    an explicit `length` of 0 on as they are: the kernel answers `EINVAL`
///    for an offset that is not a multiple of the page size and for a
///    length of 0, and that error is what the user should see.
/// 5. Let the file close: the mapping keeps it.
pub fn map_file(
    path: &Path,
    offset: u64,
    length: Option<usize>,
    share: Share,
) -> anyhow::Result<Option<Mapping>> {
    // TODO(1): open, fstat, check the range, mmap.
    todo!("TODO(1): map_file")
}
// ANCHOR_END: map_file

// ANCHOR: word_count
/// What [`word_count`] counted, as `wc` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Newline bytes.
    pub lines: u64,
    /// Maximal runs of bytes that are not white space.
    pub words: u64,
    /// All bytes.
    pub bytes: u64,
}

/// The white space of `wc` (and of C's `isspace` in the C locale): space,
/// `\t`, `\n`, `\v`, `\f` and `\r`. Note that Rust's
/// `u8::is_ascii_whitespace` leaves out `\v` (0x0b).
pub const WHITE_SPACE: &[u8] = b" \t\n\x0b\x0c\r";

/// Counts the lines, words and bytes of the file at `path` through
/// mappings of `window` bytes, the way `wc` counts them:
///
/// * open the file once and `fstat` it; an empty file counts 0 0 0 and is
///   never mapped (`mmap` of 0 bytes is `EINVAL`);
/// * map window after window, `MAP_PRIVATE` and read-only: the first at
///   offset 0, the next at `window`, then `2 * window` …, the last one only
///   as long as what is left of the file (never past its end). Each offset
///   must be a multiple of the page size, so `window` must be one; when it
///   is not, the second `mmap` fails with `EINVAL`: report that error
///   (context: `mmap LEN bytes of PATH at offset OFFSET`), do not round;
/// * a word is a maximal run of bytes not in [`WHITE_SPACE`]; a word that
///   a window boundary cuts in two is still **one** word;
/// * unmap each window before mapping the next ([`Mapping::unmap`]).
///
/// Scan each window with [`Mapping::bytes`]: no copy, and no `&[u8]` into
/// a file that another process may be changing.
pub fn word_count(path: &Path, window: usize) -> anyhow::Result<Counts> {
    // TODO(2): map window after window, count like wc.
    todo!("TODO(2): word_count")
}
// ANCHOR_END: word_count

// ANCHOR: copy_on_write
/// What the parent of [`copy_on_write`] saw, through its `MAP_SHARED`
/// mapping and with `read(2)`, at three moments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOnWrite {
    /// Before any child ran.
    pub before: Seen,
    /// After child 1 wrote through a `MAP_PRIVATE` mapping of its own.
    pub after_private: Seen,
    /// After child 2 wrote through the `MAP_SHARED` mapping it inherited.
    pub after_shared: Seen,
}

/// The first `text.len()` bytes of the file, seen two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Through the parent's `MAP_SHARED` mapping.
    pub mapped: Vec<u8>,
    /// With `read(2)` (`pread` at offset 0, `FileExt::read_exact_at`).
    pub read: Vec<u8>,
}

/// Shows copy-on-write: writes `text` at the start of the file at `path`
/// twice, from two children, and records what the parent sees each time.
///
/// 1. Open the file read-write; `fstat`; if it is shorter than `text`, fail
///    with `beyond the end of PATH (SIZE bytes)`. Map its first
///    `text.len()` bytes `MAP_SHARED`, read-write, and record `before`.
/// 2. Fork **child 1**. It maps the same bytes again, `MAP_PRIVATE` and
///    read-write (its own mapping, from the descriptor it inherited),
///    writes `text` through it, reads its mapping back, prints
///    `child 1: wrote "TEXT" through its own MAP_PRIVATE mapping, which now
///    holds "…"` (text shown with `{:?}` of `String::from_utf8_lossy`),
///    flushes, and `_exit`s (0, or 1 after printing an error). The parent
///    reaps it (anything but exit 0 is an error) and records
///    `after_private`: the private write reached neither.
/// 3. Fork **child 2**. It writes `text` through the `MAP_SHARED` mapping
///    it inherited, prints `child 2: wrote "TEXT" through the MAP_SHARED
///    mapping it inherited`, flushes and `_exit`s. Reap, record
///    `after_shared`: both see it now.
/// 4. Unmap.
pub fn copy_on_write(path: &Path, text: &[u8]) -> anyhow::Result<CopyOnWrite> {
    // TODO(3): a shared mapping, a private child, a shared child.
    todo!("TODO(3): copy_on_write")
}
// ANCHOR_END: copy_on_write

// ANCHOR: faults
/// What [`faults`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    /// `sysconf(_SC_PAGESIZE)`.
    pub page_size: usize,
    /// The file's size, from `fstat`.
    pub file_size: u64,
    /// The pages the file's bytes occupy: `file_size` divided by the page
    /// size, rounded up (0 for an empty file).
    pub file_pages: u64,
    /// The length of the mapping: one page more than `file_pages`.
    pub mapped: usize,
    /// The file's last byte, read through the mapping (`None` if empty).
    pub last_byte: Option<u8>,
    /// The byte just past the end of the file, when that is still inside
    /// the file's last page (`None` when the file ends on a page boundary).
    pub past_the_end: Option<u8>,
    /// How child 1 ended: it wrote to a page made read-only by `mprotect`.
    pub read_only_store: WaitStatus,
    /// The offset child 2 read: the first byte of the page after the
    /// file's last (`file_pages * page_size`).
    pub probed: u64,
    /// How child 2 ended.
    pub past_the_last_page: WaitStatus,
}

/// Shows the two faults of a mapping: `SIGSEGV` for an access the page's
/// protection forbids, `SIGBUS` for a page with no file behind it.
///
/// 1. [`page_size`]; open the file read-only; `fstat` its size; map it
///    `MAP_PRIVATE`, read-only, **one page longer** than the pages its bytes
///    occupy (`mmap` allows that: it never checks the file's size).
/// 2. Read the file's last byte and, if the file does not end on a page
///    boundary, the byte after it: the rest of the last page reads as 0.
/// 3. Fork **child 1**: it maps one page of anonymous memory,
///    `MAP_PRIVATE`, writes to it (fine), makes it read-only with
///    [`Mapping::protect`] (`mprotect`), and writes again with
///    [`Mapping::write_unchecked`]: `SIGSEGV`. Reap it and keep its status.
/// 4. Fork **child 2**: it reads, with [`Mapping::read_at`], the first byte
///    of the extra page, which lies wholly past the end of the file:
///    `SIGBUS`. Reap it and keep its status.
///
/// Children print nothing. One that survives its access `_exit`s with
/// status 0 (it should not have), or 1 if something else failed first.
pub fn faults(path: &Path) -> anyhow::Result<Faults> {
    // TODO(4): mprotect then store: SIGSEGV; past the last page: SIGBUS.
    todo!("TODO(4): faults")
}
// ANCHOR_END: faults

// ANCHOR: poke
/// Where [`poke`] mapped the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poked {
    /// The mapping's offset in the file: `offset` rounded down to a page.
    pub map_offset: u64,
    /// The mapping's length: from `map_offset` to the end of the text.
    pub map_len: usize,
}

/// Changes the file at `path` in place: writes `text` at `offset` through
/// a `MAP_SHARED` mapping, then `msync`s it.
///
/// 1. [`page_size`]; open the file **read-write** (context `open PATH`;
///    `EACCES` if you may not write it); `fstat`; a range that ends past
///    the end of the file is an error, `beyond the end of PATH (SIZE
///    bytes)`: writing there would be lost (or `SIGBUS`), and a mapping
///    never makes a file longer.
/// 2. Map only the pages the text touches: from `offset` rounded **down**
///    to a multiple of the page size, to the end of the text, `MAP_SHARED`,
///    read-write. (`offset` itself need not be aligned; the mapping's must.)
/// 3. Write `text` at `offset - map_offset` within the mapping, then
///    [`Mapping::sync`] (`msync(MS_SYNC)`, context `msync`) and
///    [`Mapping::unmap`] (context `munmap`).
pub fn poke(path: &Path, offset: u64, text: &[u8]) -> anyhow::Result<Poked> {
    // TODO(5): round the offset down to a page, map shared, write, msync.
    todo!("TODO(5): poke")
}

/// Maps the whole file at `path`, `MAP_SHARED` and read-only, for a
/// watcher: stores that other processes make through their own shared
/// mappings (or with `write`) show in it at once, with no `read`. The
/// descriptor is closed before this returns. `Ok(None)` for an empty file.
pub fn view(path: &Path) -> anyhow::Result<Option<Mapping>> {
    // TODO(5): the whole file, MAP_SHARED, read-only.
    todo!("TODO(5): view")
}
// ANCHOR_END: poke

// ANCHOR: count
/// How [`count`]'s children add 1 to the shared total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Increment {
    /// `fetch_add(1)`: one atomic read-modify-write. Nothing is lost.
    FetchAdd,
    /// `load`, then `store(value + 1)`: two separate atomic steps, between
    /// which another process can store too. Updates get lost.
    LoadThenStore,
}

/// What [`count`] found in the shared counters once every child was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Each child's own counter, in the order the children were forked.
    pub children: Vec<u64>,
    /// The counter they all added to.
    pub total: u64,
}

/// Shares counters between this process and `children` children through
/// anonymous shared memory (有亲缘关系的进程间通信: related processes use
/// mmap), and adds to them from every child at once.
///
/// 1. Map `(children + 1) * 8` bytes with `Mapping::anonymous(len,
///    Share::Shared)` **before** forking, and take
///    [`Mapping::counters`]: counter 0 is the total, counter `i` belongs
///    to child `i` (1-based). Make a [`gate::Gate`].
/// 2. Fork the children. Child `i` adds 1 to its own counter and 1 to the
///    total, `rounds` times, with `increment`:
///    * `FetchAdd`: [`gate::Gate::pass`] first, then `fetch_add(1, Relaxed)` on
///      both counters each round;
///    * `LoadThenStore`: each round, `load` the total, then `store` it plus
///      1; the **first** round passes the gate between its load and its
///      store, so that every child has loaded before any has stored. Its
///      own counter, which no one else touches, it may update the same way.
///
///    A child never returns: it `_exit`s, 0 when done, 1 after printing an
///    error.
/// 3. [`gate::Gate::open`] once every child is forked; reap them all (anything
///    but exit status 0 is an error); then read the counters, unmap, and
///    return them. If a `fork` fails, still open the gate for, and reap,
///    the children already forked.
///
/// With `FetchAdd` the total is exactly `children * rounds`. With
/// `LoadThenStore`, each child's own counter is still exact, but the total
/// is at most `children * rounds - (children - 1)`: in the first round all
/// of them loaded 0 and stored 1.
pub fn count(children: usize, rounds: u64, increment: Increment) -> anyhow::Result<Tally> {
    // TODO(6): anonymous shared counters, fork, gate, reap.
    todo!("TODO(6): count")
}
// ANCHOR_END: count
