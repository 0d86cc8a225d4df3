//! # Lab 07: System V shared memory (共享内存)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/07-shm.md` and the grading suite
//! `tests/07-shm.rs`. Run `cargo test` in this directory to grade your
//! work; `cargo run -- --help` shows the command you are building.
//!
//! Two files are given: `cli.rs`, the command line, which calls these
//! functions and prints what they return; and `sysv.rs`, a thin safe layer
//! over `shmget`, `shmat`, `shmdt` and `shmctl` (one method per system
//! call, errors as `nix::errno::Errno`), plus a small semaphore helper.
//! Build everything here on `sysv`. You may add private helper functions.
//!
//! Commands take a **key file**: `ftok(key_file, PROJ_ID)` names the
//! segment, and `ftok(key_file, SEM_PROJ_ID)` the semaphores of task 4.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use self::sysv::{Attachment, Segment, Semaphores};

pub mod cli;
pub mod sysv;

/// The `proj_id` that names a segment: `ftok(key_file, PROJ_ID)`.
pub const PROJ_ID: u8 = b'M';

/// The `proj_id` that names the semaphores of a transfer (task 4).
pub const SEM_PROJ_ID: u8 = b'S';

// ANCHOR: figures_type
/// What `shmctl(IPC_STAT)` says about a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// The identifier `shmget` returned (`ipcs -m` shows it too).
    pub shmid: i32,
    /// `shm_perm.__key`: the key, or 0 (`IPC_PRIVATE`) for a private
    /// segment or one marked for removal.
    pub key: i32,
    /// `shm_segsz`: the size asked for at creation, in bytes.
    pub size: usize,
    /// `shm_nattch`: how many attachments exist, in all processes.
    pub nattch: u64,
    /// `shm_cpid`: the process that created the segment.
    pub cpid: Pid,
    /// `shm_lpid`: the last process to `shmat` or `shmdt` it, if any yet.
    pub lpid: Option<Pid>,
    /// `shm_atime`: seconds since the epoch of the last `shmat`, 0 if none.
    pub atime: i64,
    /// `shm_dtime`: seconds since the epoch of the last `shmdt`, 0 if none.
    pub dtime: i64,
    /// `shm_ctime`: seconds since the epoch of the creation or last `IPC_SET`.
    pub ctime: i64,
    /// `shm_perm.uid` and `.gid`: the owner.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// `shm_perm.cuid` and `.cgid`: the creator.
    pub cuid: u32,
    /// See `cuid`.
    pub cgid: u32,
    /// `shm_perm.mode & 0o777`: the permission bits.
    pub mode: u16,
    /// `shm_perm.mode & SHM_LOCKED`: pages locked in memory (`SHM_LOCK`).
    pub locked: bool,
    /// `shm_perm.mode & SHM_DEST`: marked for removal (`IPC_RMID`), still
    /// attached somewhere.
    pub marked_for_removal: bool,
}
// ANCHOR_END: figures_type

// ANCHOR: create_open
/// Creates the segment of `key_file`: `ftok(key_file, PROJ_ID)` (context:
/// `ftok KEY_FILE`), then `Segment::create(key, size, mode)`, which uses
/// `IPC_CREAT | IPC_EXCL`. Errors keep their errno, with the context
/// `create a segment for KEY_FILE`: `EEXIST` if one exists, `EINVAL` for a
/// size of 0 or above `SHMMAX`.
pub fn create(key_file: &Path, size: usize, mode: u16) -> anyhow::Result<Segment> {
    // TODO(1): ftok, then shmget with IPC_CREAT | IPC_EXCL.
    todo!("TODO(1): create")
}

/// Opens the existing segment of `key_file`, asking for at least `size`
/// bytes (0: any size): `ftok`, then `Segment::open(key, size)`. Errors
/// keep their errno, with the context `no segment for KEY_FILE` (`no
/// segment of at least SIZE bytes for KEY_FILE` when `size` is not 0):
/// `ENOENT` if there is none, `EINVAL` if it is smaller than `size`.
pub fn open(key_file: &Path, size: usize) -> anyhow::Result<Segment> {
    // TODO(1): ftok, then shmget(key, size, 0).
    todo!("TODO(1): open")
}

/// Reads the segment's `shmid_ds` (`segment.stat()`, context: `IPC_STAT`)
/// into [`Figures`]: every field, with `shm_lpid` 0 as `None`, and the two
/// flag bits of `shm_perm.mode` (`sysv::SHM_LOCKED`, `sysv::SHM_DEST`)
/// apart from the permission bits. `EACCES` if you may not read it.
pub fn figures(segment: Segment) -> anyhow::Result<Figures> {
    // TODO(1): IPC_STAT, then copy the fields.
    todo!("TODO(1): figures")
}
// ANCHOR_END: create_open

// ANCHOR: lifecycle
/// A moment in the life of a segment, at which [`lifecycle`] records its
/// [`Figures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// After `shmget` created it.
    Created,
    /// After this process attached it.
    Attached,
    /// Right after `fork`, in the parent, the child still attached.
    Forked,
    /// After that child detached and exited, and was reaped.
    ChildDetached,
    /// After a second child exited without detaching, and was reaped.
    ChildExited,
    /// After `IPC_RMID`, this process still attached.
    MarkedForRemoval,
    /// After this process detached too: the last attachment.
    Detached,
}

/// Walks a segment through its life, calling `record(step, segment)` after
/// each [`Step`], in order. The command line passes a `record` that reads
/// the segment's figures (with your [`figures`]) and prints them as a table.
///
/// 1. [`create`] a segment of `size` bytes, mode 0600 (`Created`);
/// 2. attach it read-write (`Attached`);
/// 3. make a pipe, then fork a child. The child shares the attachment: it
///    drops its copy of the pipe's write end, waits for end-of-file on the
///    read end, then detaches (`shmdt`, with `Attachment::detach`) and
///    `_exit(0)`s. The parent records `Forked` at once: the child cannot
///    have detached yet, since it waits for the parent. Then the parent
///    closes its write end, reaps the child and records `ChildDetached`;
/// 4. fork a second child that `_exit(0)`s at once, without detaching:
///    exit detaches for it. Reap it, record `ChildExited`;
/// 5. `remove` (`IPC_RMID`) while still attached: the segment stays, with
///    its key released (`MarkedForRemoval`);
/// 6. detach: the last attachment is gone, and so is the segment. Record
///    `Detached` (the recorder finds that `IPC_STAT` now fails).
///
/// Before it reads the figures at `Forked`, the command line's `record`
/// waits until every child of this process has settled, asleep in a
/// system call or ended: whichever process the scheduler ran first, a
/// child that detaches without waiting for the parent has done so by then,
/// and the figures show it.
///
/// An error from `record` ends the walk: return it. On any error, remove
/// the segment before returning.
pub fn lifecycle(
    key_file: &Path,
    size: usize,
    record: &mut impl FnMut(Step, Segment) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // TODO(2): create, attach, fork twice, IPC_RMID, detach; record each step.
    todo!("TODO(2): lifecycle")
}
// ANCHOR_END: lifecycle

// ANCHOR: read_only
/// What [`read_only`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnly {
    /// The private segment's identifier.
    pub shmid: i32,
    /// How the child ended.
    pub child: WaitStatus,
    /// What the segment held after the child was gone.
    pub after: String,
}

/// The text the parent writes and the child reads, unless told otherwise.
pub const MESSAGE: &str = "written by the parent";

/// Shows that `SHM_RDONLY` is enforced by the hardware:
///
/// 1. `Segment::create_private(4096, 0o600)`: `IPC_PRIVATE`, no key;
/// 2. attach it read-write and write `text` at offset 0 (`EINVAL` from
///    `write_at` if it is longer than the segment);
/// 3. fork. The **child** detaches the attachment it inherited, attaches
///    again with `SHM_RDONLY`, reads `text.len()` bytes, prints
///    `child: read "TEXT" through SHM_RDONLY`, then `child: writing through
///    it`, flushing after each line, and writes one byte at offset 0. That
///    store kills it with `SIGSEGV`; should it not, it prints `child: the
///    write went through` and `_exit(0)`s;
/// 4. the **parent** reaps the child, reads the text back, detaches, and
///    removes the segment (also when something failed in between).
pub fn read_only(text: &str) -> anyhow::Result<ReadOnly> {
    // TODO(3): private segment, fork, SHM_RDONLY in the child, reap, remove.
    todo!("TODO(3): read_only")
}
// ANCHOR_END: read_only

// ANCHOR: transfer
/// The semaphore a writer takes before filling the segment: 1 when the
/// segment may be written (the reader is done with it).
pub const EMPTY: u16 = 0;

/// The semaphore a reader takes before reading: 1 when a chunk is waiting.
pub const FULL: u16 = 1;

/// Bytes at the start of the segment that hold the chunk's length, a `u64`
/// in little-endian order; the data follows. A chunk of length 0 means
/// "end of file".
pub const HEADER: usize = 8;

/// How long a writer or a reader waits on a semaphore before it asks
/// whether the other side is still there.
pub const PATIENCE: Duration = Duration::from_millis(100);

/// What [`send`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Data bytes.
    pub bytes: u64,
    /// Chunks with data (the final empty chunk is not counted).
    pub chunks: u64,
}

/// The writer's half of a transfer: sends all of `input` through
/// `segment`, one chunk at a time, paced by `sems`:
///
/// * a chunk holds up to `segment.len() - HEADER` bytes. Fill each one as
///   far as `input` allows (a `read` may return fewer bytes than asked:
///   read again until the chunk is full or `input` ends), so that only the
///   last chunk is short;
/// * for each chunk: P on [`EMPTY`], write its length at offset 0 and its
///   bytes at `HEADER`, V on [`FULL`];
/// * at end of input, send an empty chunk (length 0) the same way.
///
/// A semaphore knows nothing of the process that should give it back: if
/// the reader dies, a plain P on `EMPTY` sleeps for ever. So take `EMPTY`
/// with `sems.p_timeout(EMPTY, PATIENCE)` (`semtimedop`), and each time
/// the time runs out, ask `reader_alive()`; once it says no, fail with
/// `the reader is gone`.
///
/// If reading `input` fails, still send the empty chunk (the reader would
/// otherwise wait for ever), then return the error.
pub fn send(
    segment: &Attachment,
    sems: Semaphores,
    input: &mut impl Read,
    reader_alive: &mut impl FnMut() -> bool,
) -> anyhow::Result<Sent> {
    // TODO(4): P(EMPTY), length + bytes, V(FULL); an empty chunk at the end.
    todo!("TODO(4): send")
}

/// The reader's half: P on [`FULL`], read the length at offset 0 and that
/// many bytes at `HEADER`, V on [`EMPTY`], then write the bytes to
/// `output`; stop after the empty chunk. Returns the number of bytes
/// received. A length larger than the segment holds is an error.
///
/// Take `FULL` as the writer takes `EMPTY`: `p_timeout` with [`PATIENCE`],
/// asking `writer_alive()` each time the time runs out, and failing with
/// `the writer is gone` once it says no.
///
/// If writing `output` fails, keep taking chunks until the empty one (so
/// that the writer is not left waiting), then return the error.
pub fn receive(
    segment: &Attachment,
    sems: Semaphores,
    output: &mut impl Write,
    writer_alive: &mut impl FnMut() -> bool,
) -> anyhow::Result<u64> {
    // TODO(4): P(FULL), length + bytes, V(EMPTY), write; until length 0.
    todo!("TODO(4): receive")
}
// ANCHOR_END: transfer

// ANCHOR: copy
/// Copies the file `input` to `output` through a segment of
/// `segment_size` bytes: this process writes, a child reads.
///
/// 1. Open `input` and create (or truncate) `output` first: an error there
///    must leave nothing behind;
/// 2. create the segment with [`create`] (mode 0600) and the two
///    semaphores with `Semaphores::create(ftok(key_file, SEM_PROJ_ID),
///    &[1, 0])`: [`EMPTY`] starts at 1, [`FULL`] at 0; attach the segment;
/// 3. fork: the child runs [`receive`] into `output` and `_exit`s (0, or 1
///    after printing the error); the parent runs [`send`] from `input`,
///    then reaps the child;
/// 4. each side asks whether the other is still there. The reader: its
///    parent, the writer, is alive while `getppid()` is still the writer's
///    pid (a child whose parent dies gets a new one). The writer: the
///    reader is alive while `waitid(P_PID, reader, WEXITED | WNOHANG |
///    WNOWAIT)` finds it has not ended; `WNOWAIT` looks without reaping,
///    so that the `waitpid` of step 3 still collects it. If the reader dies
///    (killed, say), `send` fails, and `copy` reaps it and says how it
///    ended: `the reader was killed by SIGKILL`;
/// 5. detach, remove the semaphores and the segment, on every path;
/// 6. a child that did not exit with 0 is an error.
pub fn copy(
    key_file: &Path,
    input: &Path,
    output: &Path,
    segment_size: usize,
) -> anyhow::Result<Sent> {
    // TODO(5): files, segment, semaphores, fork reader, send, reap, remove.
    todo!("TODO(5): copy")
}
// ANCHOR_END: copy
