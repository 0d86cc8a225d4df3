//! # Lab 07: System V shared memory (共享内存) — reference solution
//!
//! The same functions as `labs/07-shm/src/lib.rs`, done. Read it after you
//! have written your own: compare when each process attaches and detaches,
//! and how every path out removes the segment and the semaphores.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, pipe};

use self::sysv::{Attachment, Segment, Semaphores};

#[path = "../../../labs/07-shm/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/07-shm/src/sysv.rs"]
pub mod sysv;
/// The `proj_id` that names a segment: `ftok(key_file, PROJ_ID)`.
pub const PROJ_ID: u8 = b'M';

/// The `proj_id` that names the semaphores of a transfer (task 4).
pub const SEM_PROJ_ID: u8 = b'S';

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

/// Creates the segment of `key_file`: `ftok(key_file, PROJ_ID)` (context:
/// `ftok KEY_FILE`), then `Segment::create(key, size, mode)`, which uses
/// `IPC_CREAT | IPC_EXCL`. Errors keep their errno, with the context
/// `create a segment for KEY_FILE`: `EEXIST` if one exists, `EINVAL` for a
/// size of 0 or above `SHMMAX`.
pub fn create(key_file: &Path, size: usize, mode: u16) -> anyhow::Result<Segment> {
    Segment::create(key_of(key_file, PROJ_ID)?, size, mode)
        .with_context(|| format!("create a segment for {}", key_file.display()))
}

/// Opens the existing segment of `key_file`, asking for at least `size`
/// bytes (0: any size): `ftok`, then `Segment::open(key, size)`. Errors
/// keep their errno, with the context `no segment for KEY_FILE` (`no
/// segment of at least SIZE bytes for KEY_FILE` when `size` is not 0):
/// `ENOENT` if there is none, `EINVAL` if it is smaller than `size`.
pub fn open(key_file: &Path, size: usize) -> anyhow::Result<Segment> {
    Segment::open(key_of(key_file, PROJ_ID)?, size).with_context(|| match size {
        0 => format!("no segment for {}", key_file.display()),
        _ => format!(
            "no segment of at least {size} bytes for {}",
            key_file.display()
        ),
    })
}

/// Reads the segment's `shmid_ds` (`segment.stat()`, context: `IPC_STAT`)
/// into [`Figures`]: every field, with `shm_lpid` 0 as `None`, and the two
/// flag bits of `shm_perm.mode` (`sysv::SHM_LOCKED`, `sysv::SHM_DEST`)
/// apart from the permission bits. `EACCES` if you may not read it.
pub fn figures(segment: Segment) -> anyhow::Result<Figures> {
    let ds = segment.stat().context("IPC_STAT")?;
    let perm = &ds.shm_perm;
    Ok(Figures {
        shmid: segment.id(),
        key: perm.__key,
        size: ds.shm_segsz,
        nattch: ds.shm_nattch,
        cpid: Pid::from_raw(ds.shm_cpid),
        lpid: (ds.shm_lpid != 0).then(|| Pid::from_raw(ds.shm_lpid)),
        atime: ds.shm_atime,
        dtime: ds.shm_dtime,
        ctime: ds.shm_ctime,
        uid: perm.uid,
        gid: perm.gid,
        cuid: perm.cuid,
        cgid: perm.cgid,
        mode: perm.mode & 0o777,
        locked: perm.mode & sysv::SHM_LOCKED != 0,
        marked_for_removal: perm.mode & sysv::SHM_DEST != 0,
    })
}

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
    let segment = create(key_file, size, 0o600)?;
    let walked = walk(segment, record);
    if walked.is_err() {
        // Harmless if the walk got as far as IPC_RMID: EINVAL, ignored.
        let _ = segment.remove();
    }
    walked
}

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
    let segment = Segment::create_private(4096, 0o600).context("shmget(IPC_PRIVATE)")?;
    let seen = read_only_in(segment, text);
    // Removed on every path: nothing else knows this segment's identifier.
    let removed = segment.remove().context("IPC_RMID");
    let seen = seen?;
    removed?;
    Ok(seen)
}

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
    let mut chunk = vec![0; capacity(segment)?];
    let mut sent = Sent {
        bytes: 0,
        chunks: 0,
    };
    loop {
        let filled = match fill(input, &mut chunk) {
            Ok(filled) => filled,
            Err(error) => {
                // Tell the reader the transfer is over before giving up.
                put_chunk(segment, sems, &[], reader_alive)?;
                return Err(error).context("read the input");
            }
        };
        put_chunk(segment, sems, &chunk[..filled], reader_alive)?;
        if filled == 0 {
            return Ok(sent);
        }
        sent.bytes += filled as u64;
        sent.chunks += 1;
    }
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
    let capacity = capacity(segment)?;
    let mut chunk = vec![0; capacity];
    let mut received = 0u64;
    let mut write_error = None;
    loop {
        take_turn(sems, FULL, writer_alive).context("the writer is gone")?;
        let mut header = [0u8; HEADER];
        segment.read_at(0, &mut header).context("read the length")?;
        let length = usize::try_from(u64::from_le_bytes(header))
            .ok()
            .filter(|&length| length <= capacity)
            .context("a chunk longer than the segment holds")?;
        segment
            .read_at(HEADER, &mut chunk[..length])
            .context("read the chunk")?;
        // The bytes are copied out: the writer may refill the segment now.
        sems.v(EMPTY).context("V(EMPTY)")?;
        if length == 0 {
            break;
        }
        received += length as u64;
        if write_error.is_none()
            && let Err(error) = output.write_all(&chunk[..length])
        {
            // Keep taking chunks, or the writer would wait for ever.
            write_error = Some(error);
        }
    }
    match write_error {
        Some(error) => Err(error).context("write the output"),
        None => {
            output.flush().context("write the output")?;
            Ok(received)
        }
    }
}

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
    let mut input = File::open(input).with_context(|| format!("open {}", input.display()))?;
    let output = File::create(output).with_context(|| format!("create {}", output.display()))?;
    let sem_key = key_of(key_file, SEM_PROJ_ID)?;
    let segment = create(key_file, segment_size, 0o600)?;
    let sems = match Semaphores::create(sem_key, &[1, 0]) {
        Ok(sems) => sems,
        Err(errno) => {
            let _ = segment.remove();
            return Err(errno).context("create the semaphores");
        }
    };
    let sent = transfer(segment, sems, &mut input, output);
    let sems_removed = sems.remove().context("remove the semaphores (IPC_RMID)");
    let segment_removed = segment.remove().context("remove the segment (IPC_RMID)");
    let sent = sent?;
    sems_removed?;
    segment_removed?;
    Ok(sent)
}

/// Steps 2 to 6 of [`lifecycle`], on a segment already created.
fn walk(
    segment: Segment,
    record: &mut impl FnMut(Step, Segment) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    record(Step::Created, segment)?;
    let attachment = segment.attach(0).context("shmat")?;
    record(Step::Attached, segment)?;

    // The child may detach only after the parent has looked: it waits for
    // end-of-file on a pipe, which comes when the parent closes its end.
    let (go_read, go_write) = pipe().context("pipe")?;
    // SAFETY: single-threaded; the child reads a pipe, calls shmdt and _exit.
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(go_write);
            let detached = wait_for_eof(go_read)
                .context("read the pipe")
                .and_then(|()| attachment.detach().context("shmdt"));
            exit_child(report_child_error(detached))
        }
        ForkResult::Parent { child } => child,
    };
    drop(go_read);
    let forked = record(Step::Forked, segment);
    drop(go_write);
    reap(child)?;
    forked?;
    record(Step::ChildDetached, segment)?;

    // SAFETY: single-threaded; the child only calls _exit.
    let child = match unsafe { fork() }.context("fork")? {
        // _exit detaches every attachment the child has.
        ForkResult::Child => exit_child(0),
        ForkResult::Parent { child } => child,
    };
    reap(child)?;
    record(Step::ChildExited, segment)?;

    segment.remove().context("IPC_RMID")?;
    record(Step::MarkedForRemoval, segment)?;
    attachment.detach().context("shmdt")?;
    record(Step::Detached, segment)
}

/// The body of [`read_only`], on a segment already created.
fn read_only_in(segment: Segment, text: &str) -> anyhow::Result<ReadOnly> {
    let attachment = segment.attach(0).context("shmat")?;
    attachment
        .write_at(0, text.as_bytes())
        .context("write the message")?;
    // SAFETY: single-threaded; the child attaches, prints and _exits (or
    // dies of SIGSEGV).
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // Not needed, but it leaves the child one way in: read-only.
            let detached = attachment.detach().context("shmdt");
            exit_child(report_child_error(
                detached.and_then(|()| write_read_only(segment, text.len())),
            ))
        }
        ForkResult::Parent { child } => child,
    };
    let status = wait_for(child)?;
    let mut after = vec![0; text.len()];
    attachment
        .read_at(0, &mut after)
        .context("read the message back")?;
    attachment.detach().context("shmdt")?;
    Ok(ReadOnly {
        shmid: segment.id(),
        child: status,
        after: String::from_utf8_lossy(&after).into_owned(),
    })
}

/// The child of [`read_only`]: attach with `SHM_RDONLY`, read `len`
/// bytes, then try to write.
fn write_read_only(segment: Segment, len: usize) -> anyhow::Result<()> {
    let view = segment
        .attach(libc::SHM_RDONLY)
        .context("shmat(SHM_RDONLY)")?;
    let mut text = vec![0; len];
    view.read_at(0, &mut text).context("read")?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "child: read {:?} through SHM_RDONLY",
        String::from_utf8_lossy(&text)
    )?;
    out.flush()?;
    writeln!(out, "child: writing through it")?;
    out.flush()?;
    // The page is mapped read-only: this store raises SIGSEGV.
    view.write_at(0, b"X").context("write")?;
    writeln!(out, "child: the write went through")?;
    out.flush()?;
    Ok(())
}

/// The reader child's and the writer's work, around one attachment.
fn transfer(
    segment: Segment,
    sems: Semaphores,
    input: &mut File,
    mut output: File,
) -> anyhow::Result<Sent> {
    let attachment = segment.attach(0).context("shmat")?;
    let writer = getpid();
    // SAFETY: single-threaded; the child receives, then calls _exit.
    let reader = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // A child whose parent dies is given another one.
            let received = receive(&attachment, sems, &mut output, &mut || getppid() == writer);
            exit_child(report_child_error(received.map(drop)))
        }
        ForkResult::Parent { child } => child,
    };
    drop(output);
    let sent = send(&attachment, sems, input, &mut || has_not_ended(reader));
    let status = wait_for(reader)?;
    if !matches!(status, WaitStatus::Exited(_, 0)) {
        bail!("the reader {}", ending(status));
    }
    let sent = sent?;
    attachment.detach().context("shmdt")?;
    Ok(sent)
}

/// Whether `child` is still running: `waitid` with `WNOWAIT` looks at it
/// without reaping it.
fn has_not_ended(child: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(waitid(Id::Pid(child), flags), Ok(WaitStatus::StillAlive))
}

/// "was killed by SIGKILL", "exited with status 1".
fn ending(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, signal, _) => format!("was killed by {}", signal.as_str()),
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        other => format!("ended: {other:?}"),
    }
}

/// Bytes of data a chunk can hold in this segment.
fn capacity(segment: &Attachment) -> anyhow::Result<usize> {
    segment
        .len()
        .checked_sub(HEADER)
        .filter(|&capacity| capacity > 0)
        .context("the segment has no room for data after its header")
}

/// Reads until `buf` is full or `input` ends; returns how much it read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// One chunk, writer's side: wait for an empty segment, fill it, say so.
fn put_chunk(
    segment: &Attachment,
    sems: Semaphores,
    data: &[u8],
    reader_alive: &mut impl FnMut() -> bool,
) -> anyhow::Result<()> {
    take_turn(sems, EMPTY, reader_alive).context("the reader is gone")?;
    let length = data.len() as u64;
    segment
        .write_at(0, &length.to_le_bytes())
        .context("write the length")?;
    segment.write_at(HEADER, data).context("write the chunk")?;
    sems.v(FULL).context("V(FULL)")
}

/// P on `num`, in slices of [`PATIENCE`]: after each slice that ran out,
/// give up (with `ESRCH`, for "no such process") once the other side is
/// gone.
fn take_turn(
    sems: Semaphores,
    num: u16,
    other_alive: &mut impl FnMut() -> bool,
) -> anyhow::Result<()> {
    loop {
        if sems
            .p_timeout(num, PATIENCE)
            .with_context(|| format!("P({num})"))?
        {
            return Ok(());
        }
        if !other_alive() {
            return Err(Errno::ESRCH.into());
        }
    }
}

/// `ftok(key_file, proj_id)`, with the file named in the error.
fn key_of(key_file: &Path, proj_id: u8) -> anyhow::Result<sysv::Key> {
    sysv::ftok(key_file, proj_id).with_context(|| format!("ftok {}", key_file.display()))
}

/// Reads `fd` until end-of-file.
fn wait_for_eof(fd: OwnedFd) -> io::Result<()> {
    io::copy(&mut File::from(fd), &mut io::sink()).map(drop)
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

/// A child's exit code: 0, or 1 after printing the error.
fn report_child_error(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("shm: child: {error:#}");
            1
        }
    }
}

/// Ends a child process at once with `_exit(2)`.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
