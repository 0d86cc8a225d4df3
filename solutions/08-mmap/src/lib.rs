//! # Lab 08: mmap (内存映射) — reference solution
//!
//! The same functions as `labs/08-mmap/src/lib.rs`, done. Read it after you
//! have written your own: compare where each function checks the file's
//! size, how offsets are rounded to pages, and how every child ends with
//! `_exit` whatever happens.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, SysconfVar, fork, sysconf};

use self::gate::Gate;
use self::mapping::{Access, Mapping, Share};

#[path = "../../../labs/08-mmap/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/08-mmap/src/gate.rs"]
pub mod gate;
#[path = "../../../labs/08-mmap/src/mapping.rs"]
pub mod mapping;
/// Returns the page size, `sysconf(_SC_PAGESIZE)`: the unit of every
/// mapping, and what `mmap` offsets must be multiples of. Never assume 4096.
/// An error if `sysconf` fails or has no answer.
pub fn page_size() -> anyhow::Result<usize> {
    let size = sysconf(SysconfVar::PAGE_SIZE)
        .context("sysconf(_SC_PAGESIZE)")?
        .context("sysconf(_SC_PAGESIZE) has no value")?;
    usize::try_from(size).context("sysconf(_SC_PAGESIZE) is out of range")
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
    let (file, size) = open_sized(path)?;
    let length = match length {
        Some(length) => length,
        None => match size.checked_sub(offset) {
            Some(0) => return Ok(None),
            Some(rest) => usize::try_from(rest).context("the file is too large to map")?,
            None => bail!(
                "offset {offset} is beyond the end of {} ({size} bytes)",
                path.display()
            ),
        },
    };
    check_range(path, size, offset, length)?;
    let mapping =
        Mapping::file(file.as_fd(), offset, length, Access::Read, share).with_context(|| {
            format!(
                "mmap {length} bytes of {} at offset {offset}",
                path.display()
            )
        })?;
    Ok(Some(mapping))
}

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
    let (file, size) = open_sized(path)?;
    let mut counts = Counts::default();
    let mut in_word = false;
    let mut offset = 0u64;
    while offset < size {
        let length = usize::try_from(size - offset)
            .unwrap_or(usize::MAX)
            .min(window);
        let view = Mapping::file(file.as_fd(), offset, length, Access::Read, Share::Private)
            .with_context(|| {
                format!(
                    "mmap {length} bytes of {} at offset {offset}",
                    path.display()
                )
            })?;
        for byte in view.bytes() {
            let space = WHITE_SPACE.contains(&byte);
            counts.lines += u64::from(byte == b'\n');
            counts.words += u64::from(!space && !in_word);
            in_word = !space;
        }
        counts.bytes += length as u64;
        view.unmap().context("munmap")?;
        offset += length as u64;
    }
    Ok(counts)
}

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
    let (file, size) = open_sized_rw(path)?;
    check_range(path, size, 0, text.len())?;
    let shared = Mapping::file(
        file.as_fd(),
        0,
        text.len(),
        Access::ReadWrite,
        Share::Shared,
    )
    .with_context(|| format!("mmap {} bytes of {} MAP_SHARED", text.len(), path.display()))?;
    let before = seen(&shared, &file)?;

    // SAFETY: single-threaded; the child maps, writes, prints and _exits.
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => exit_child(write_privately(&file, text)),
        ForkResult::Parent { child } => child,
    };
    reap(child)?;
    let after_private = seen(&shared, &file)?;

    // SAFETY: single-threaded; the child writes, prints and _exits.
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => exit_child(write_shared(&shared, text)),
        ForkResult::Parent { child } => child,
    };
    reap(child)?;
    let after_shared = seen(&shared, &file)?;
    shared.unmap().context("munmap")?;
    Ok(CopyOnWrite {
        before,
        after_private,
        after_shared,
    })
}

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
    let page = page_size()?;
    let (file, size) = open_sized(path)?;
    let file_pages = size.div_ceil(page as u64);
    let mapped = usize::try_from(file_pages + 1)
        .ok()
        .and_then(|pages| pages.checked_mul(page))
        .context("the file is too large to map")?;
    let view = Mapping::file(file.as_fd(), 0, mapped, Access::Read, Share::Private)
        .with_context(|| format!("mmap {mapped} bytes of {}", path.display()))?;
    let last_byte = match size {
        0 => None,
        _ => Some(byte_at(&view, size - 1)?),
    };
    let past_the_end = match size % page as u64 {
        0 => None,
        _ => Some(byte_at(&view, size)?),
    };

    // SAFETY: single-threaded; the child maps, writes and dies (or _exits).
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => exit_child(store_after_mprotect(page)),
        ForkResult::Parent { child } => child,
    };
    let read_only_store = wait_for(child)?;

    let probed = file_pages * page as u64;
    // SAFETY: single-threaded; the child reads and dies (or _exits).
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => exit_child(byte_at(&view, probed).map(drop)),
        ForkResult::Parent { child } => child,
    };
    let past_the_last_page = wait_for(child)?;
    view.unmap().context("munmap")?;
    Ok(Faults {
        page_size: page,
        file_size: size,
        file_pages,
        mapped,
        last_byte,
        past_the_end,
        read_only_store,
        probed,
        past_the_last_page,
    })
}

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
    let page = page_size()? as u64;
    let (file, size) = open_sized_rw(path)?;
    check_range(path, size, offset, text.len())?;
    let map_offset = offset - offset % page;
    let start = usize::try_from(offset - map_offset).context("the offset is out of range")?;
    let map_len = start + text.len();
    let view = Mapping::file(
        file.as_fd(),
        map_offset,
        map_len,
        Access::ReadWrite,
        Share::Shared,
    )
    .with_context(|| {
        format!(
            "mmap {map_len} bytes of {} at offset {map_offset}",
            path.display()
        )
    })?;
    view.write_at(start, text)
        .context("write through the mapping")?;
    view.sync().context("msync")?;
    view.unmap().context("munmap")?;
    Ok(Poked {
        map_offset,
        map_len,
    })
}

/// Maps the whole file at `path`, `MAP_SHARED` and read-only, for a
/// watcher: stores that other processes make through their own shared
/// mappings (or with `write`) show in it at once, with no `read`. The
/// descriptor is closed before this returns. `Ok(None)` for an empty file.
pub fn view(path: &Path) -> anyhow::Result<Option<Mapping>> {
    map_file(path, 0, None, Share::Shared)
}

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
    let len = children
        .checked_add(1)
        .and_then(|slots| slots.checked_mul(8))
        .context("too many children")?;
    let mut shared =
        Mapping::anonymous(len, Share::Shared).context("mmap MAP_SHARED | MAP_ANONYMOUS")?;
    let counters = shared.counters().context("the shared counters")?;
    let gate = Gate::new().context("pipe")?;
    let (forked, fork_error) = fork_counters(counters, gate, rounds, increment);
    // Reap every child before looking at any result: none is left a zombie.
    let reaped: Vec<anyhow::Result<()>> = forked.into_iter().map(reap).collect();
    if let Some(error) = fork_error {
        return Err(error);
    }
    reaped.into_iter().collect::<anyhow::Result<()>>()?;
    let tally = Tally {
        children: counters[1..]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect(),
        total: counters[0].load(Ordering::Relaxed),
    };
    shared.unmap().context("munmap")?;
    Ok(tally)
}

/// Forks one child per counter after the first, opens the gate for those
/// forked, and returns their pids with the first error met, if any.
fn fork_counters(
    counters: &[AtomicU64],
    gate: Gate,
    rounds: u64,
    increment: Increment,
) -> (Vec<Pid>, Option<anyhow::Error>) {
    let (total, own) = counters.split_at(1);
    let mut forked = Vec::with_capacity(own.len());
    let mut error = None;
    for mine in own {
        // SAFETY: single-threaded; the child counts, passes the gate and
        // _exits without returning.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => exit_child(add_up(&total[0], mine, gate, rounds, increment)),
            Ok(ForkResult::Parent { child }) => forked.push(child),
            Err(errno) => {
                error = Some(anyhow::Error::new(errno).context("fork"));
                break;
            }
        }
    }
    if let Err(opened) = gate.open(forked.len()).context("the starting gate") {
        error.get_or_insert(opened);
    }
    (forked, error)
}

/// One child's rounds of [`count`].
fn add_up(
    total: &AtomicU64,
    mine: &AtomicU64,
    gate: Gate,
    rounds: u64,
    increment: Increment,
) -> anyhow::Result<()> {
    if rounds == 0 {
        return gate.pass().context("the starting gate");
    }
    match increment {
        Increment::FetchAdd => {
            gate.pass().context("the starting gate")?;
            for _ in 0..rounds {
                total.fetch_add(1, Ordering::Relaxed);
                mine.fetch_add(1, Ordering::Relaxed);
            }
        }
        Increment::LoadThenStore => {
            // The first round, in slow motion: everyone loads, then everyone stores.
            let seen = total.load(Ordering::Relaxed);
            gate.pass().context("the starting gate")?;
            total.store(seen + 1, Ordering::Relaxed);
            mine.store(1, Ordering::Relaxed);
            for _ in 1..rounds {
                let seen = total.load(Ordering::Relaxed);
                total.store(seen + 1, Ordering::Relaxed);
                mine.store(mine.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// Opens `path` read-only and returns it with its size.
fn open_sized(path: &Path) -> anyhow::Result<(File, u64)> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("fstat {}", path.display()))?
        .len();
    Ok((file, size))
}

/// Opens `path` read-write and returns it with its size.
fn open_sized_rw(path: &Path) -> anyhow::Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("fstat {}", path.display()))?
        .len();
    Ok((file, size))
}

/// Fails unless `length` bytes at `offset` lie within a file of `size` bytes.
fn check_range(path: &Path, size: u64, offset: u64, length: usize) -> anyhow::Result<()> {
    match offset.checked_add(length as u64) {
        Some(end) if end <= size => Ok(()),
        _ => bail!(
            "{length} byte(s) at offset {offset} reach beyond the end of {} ({size} bytes)",
            path.display()
        ),
    }
}

/// The first bytes of the file, through the shared mapping and with `pread`.
fn seen(shared: &Mapping, file: &File) -> anyhow::Result<Seen> {
    use std::os::unix::fs::FileExt;
    let mut mapped = vec![0; shared.len()];
    shared
        .read_at(0, &mut mapped)
        .context("read through the mapping")?;
    let mut read = vec![0; shared.len()];
    file.read_exact_at(&mut read, 0).context("pread")?;
    Ok(Seen { mapped, read })
}

/// Child 1 of [`copy_on_write`]: a private mapping of its own, written.
fn write_privately(file: &File, text: &[u8]) -> anyhow::Result<()> {
    let private = Mapping::file(
        file.as_fd(),
        0,
        text.len(),
        Access::ReadWrite,
        Share::Private,
    )
    .context("mmap MAP_PRIVATE")?;
    private.write_at(0, text).context("write")?;
    let mut now = vec![0; text.len()];
    private.read_at(0, &mut now).context("read")?;
    say(&format!(
        "child 1: wrote {:?} through its own MAP_PRIVATE mapping, which now holds {:?}",
        String::from_utf8_lossy(text),
        String::from_utf8_lossy(&now)
    ))
}

/// Child 2 of [`copy_on_write`]: the inherited shared mapping, written.
fn write_shared(shared: &Mapping, text: &[u8]) -> anyhow::Result<()> {
    shared.write_at(0, text).context("write")?;
    say(&format!(
        "child 2: wrote {:?} through the MAP_SHARED mapping it inherited",
        String::from_utf8_lossy(text)
    ))
}

/// Child 1 of [`faults`]: a store to a page made read-only.
fn store_after_mprotect(page: usize) -> anyhow::Result<()> {
    let mut anonymous = Mapping::anonymous(page, Share::Private).context("mmap")?;
    anonymous.write_at(0, b"x").context("write")?;
    anonymous.protect(Access::Read).context("mprotect")?;
    // The page is read-only now: this store kills the child with SIGSEGV.
    anonymous.write_unchecked(0, b"y").context("write")?;
    Ok(())
}

/// One byte of a mapping, by file offset.
fn byte_at(view: &Mapping, offset: u64) -> anyhow::Result<u8> {
    let mut byte = [0u8];
    let at = usize::try_from(offset).context("offset out of range")?;
    view.read_at(at, &mut byte)
        .with_context(|| format!("read byte {offset}"))?;
    Ok(byte[0])
}

/// Prints one line on stdout and flushes it, before a child `_exit`s.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Waits for `child` and fails unless it exited with status 0.
fn reap(child: Pid) -> anyhow::Result<()> {
    match wait_for(child)? {
        WaitStatus::Exited(_, 0) => Ok(()),
        status => bail!("child {child} failed: {status:?}"),
    }
}

/// Waits for `child` to end (retrying if a signal interrupts the wait).
fn wait_for(child: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            result => return result.with_context(|| format!("waitpid {child}")),
        }
    }
}

/// Ends a child with `_exit`: 0 if `result` is `Ok`, else 1 after printing
/// the error. A child must never return into the parent's code.
fn exit_child(result: anyhow::Result<()>) -> ! {
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("mmap: child: {error:#}");
            1
        }
    };
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
