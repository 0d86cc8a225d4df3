//! # Lab 12: file locks (文件锁) — reference solution
//!
//! The same functions as `labs/12-file-locks/src/lib.rs`, done. Read it
//! after you have written your own: compare which command each case
//! passes to `fcntl`, when each lock is released, and which process takes
//! the pid file's lock.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getpid, pipe, setsid};

#[path = "../../../labs/12-file-locks/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/12-file-locks/src/daemon.rs"]
pub mod daemon;
#[path = "../../../labs/12-file-locks/src/journal.rs"]
pub mod journal;

/// What a lock keeps others from doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read lock (`F_RDLCK`), or a shared lock (`LOCK_SH`) for `flock`:
    /// any number of processes may hold one at once; it keeps out write
    /// locks.
    Read,
    /// A write lock (`F_WRLCK`), or an exclusive lock (`LOCK_EX`) for
    /// `flock`: one holder, and no other lock of either kind beside it.
    Write,
}

/// A byte range of a file, as `struct flock` gives it with `l_whence =
/// SEEK_SET`: `l_start` and `l_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first byte (`l_start`). Never negative: the command line checks.
    pub start: i64,
    /// How many bytes (`l_len`), never negative. 0 means every byte from
    /// `start` on, however far the file grows.
    pub len: i64,
}

/// The whole file, whatever its size, now and later: `l_start = 0`,
/// `l_len = 0`.
pub const WHOLE_FILE: Range = Range { start: 0, len: 0 };

/// Who owns a record lock made with `fcntl(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A traditional, process-associated ("POSIX") record lock:
    /// `F_SETLK`, `F_SETLKW`, `F_GETLK`. The process owns it: a child
    /// does not inherit it, and the process loses it when it closes *any*
    /// descriptor of the file.
    Process,
    /// An open file description lock: `F_OFD_SETLK`, `F_OFD_SETLKW`,
    /// `F_OFD_GETLK` (Linux 3.15). The open file description owns it, as
    /// for `flock`: shared across `fork` and `dup`, released when the last
    /// descriptor of that description is closed.
    OpenFile,
}

/// Whether a lock request may sleep until the lock is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Sleep until the conflicting locks are gone (`F_SETLKW`,
    /// `F_OFD_SETLKW`, `flock` without `LOCK_NB`).
    Block,
    /// Return at once if the lock is taken (`F_SETLK`, `F_OFD_SETLK`,
    /// `LOCK_NB`).
    NoWait,
}

/// What a lock request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is ours.
    Locked,
    /// Someone else holds a conflicting lock, and we were told not to
    /// wait.
    Busy,
}

/// A lock that stands in the way of a request, as `F_GETLK` or
/// `F_OFD_GETLK` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its kind (`l_type`).
    pub kind: Kind,
    /// Its range (`l_start`, `l_len`; `l_whence` comes back as
    /// `SEEK_SET`).
    pub range: Range,
    /// The process that holds it (`l_pid`), for a process-associated
    /// lock; `None` for an open file description lock, which no single
    /// process owns (the kernel says `l_pid = -1`).
    pub pid: Option<Pid>,
}

/// Opens the existing file at `path` in order to lock it with a `kind`
/// lock: read-only for [`Kind::Read`], read-write for [`Kind::Write`].
/// `fcntl` insists: a read lock needs a descriptor open for reading, a
/// write lock one open for writing (`EBADF` otherwise); `flock` takes any.
/// So whether you may lock a file for writing is decided by whether you
/// may open it for writing.
///
/// * Never create it (no `O_CREAT`): a typing mistake must fail with
///   `ENOENT`, not lock a new, empty file that nobody else uses.
/// * Add `O_NONBLOCK`, so that a FIFO at that path does not make `open`
///   wait for a writer (it is refused below; on a regular file the flag
///   changes nothing), and `O_NOCTTY`.
/// * Then `fstat` the descriptor (`file.metadata()`): a directory opens
///   read-only, and `flock` and `fcntl` lock it without a word; refuse it,
///   and anything else that is not a regular file.
///
/// Errors, word for word (the tests compare them): `open PATH` as the
/// context of a failed `open` (`open data.txt: No such file or directory
/// (os error 2)`), `PATH: is a directory`, `PATH: not a regular file`.
pub fn open_to_lock(path: &Path, kind: Kind) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(kind == Kind::Write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("fstat {}", path.display()))?;
    if meta.is_dir() {
        bail!("{}: is a directory", path.display());
    }
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    Ok(file)
}

/// Locks the whole of `file` with `flock(2)`: a shared lock (`LOCK_SH`)
/// for [`Kind::Read`], an exclusive one (`LOCK_EX`) for [`Kind::Write`],
/// with `LOCK_NB` added for [`Wait::NoWait`].
///
/// * The lock belongs to the **open file description**: every descriptor
///   that shares it (after `dup`, or in a child after `fork`) shares the
///   lock. Locking again through any of them converts it (shared to
///   exclusive or back) instead of conflicting.
/// * A request with `LOCK_NB` that would have to wait fails with
///   `EWOULDBLOCK` (the same number as `EAGAIN` on Linux): return
///   `Ok(Acquired::Busy)`. Any other errno is an error.
/// * `flock` works whatever mode the file was opened in.
///
/// `libc::flock(fd, operation)` takes no pointer: the `unsafe` block only
/// needs `fd` to be an open descriptor, which a `&File` is
/// (`file.as_raw_fd()`). `Errno::result` turns its `-1` into the errno.
pub fn flock_file(file: &File, kind: Kind, wait: Wait) -> nix::Result<Acquired> {
    let mut operation = match kind {
        Kind::Read => libc::LOCK_SH,
        Kind::Write => libc::LOCK_EX,
    };
    if wait == Wait::NoWait {
        operation |= libc::LOCK_NB;
    }
    match flock(file, operation) {
        Ok(()) => Ok(Acquired::Locked),
        Err(Errno::EWOULDBLOCK) => Ok(Acquired::Busy),
        Err(errno) => Err(errno),
    }
}

/// Releases the `flock` lock of `file`'s open file description:
/// `flock(fd, LOCK_UN)`. Closing the last descriptor of the description
/// releases it too.
pub fn unflock_file(file: &File) -> nix::Result<()> {
    flock(file, libc::LOCK_UN)
}

/// `flock(2)` on `file`'s descriptor.
fn flock(file: &File, operation: libc::c_int) -> nix::Result<()> {
    // SAFETY: flock takes a descriptor and flags, no pointer; `file` keeps
    // the descriptor open for the whole call.
    Errno::result(unsafe { libc::flock(file.as_raw_fd(), operation) }).map(drop)
}

/// Locks `range` of `file` for reading or writing with `fcntl(2)`: a
/// `struct flock` with `l_type` `F_RDLCK` or `F_WRLCK`, `l_whence =
/// SEEK_SET`, `l_start` and `l_len` from `range`, and `l_pid = 0`, passed
/// with the command that [`Owner`] and [`Wait`] choose:
///
/// | | [`Wait::Block`] | [`Wait::NoWait`] |
/// |---|---|---|
/// | [`Owner::Process`] | `F_SETLKW` | `F_SETLK` |
/// | [`Owner::OpenFile`] | `F_OFD_SETLKW` | `F_OFD_SETLK` |
///
/// * Make the `libc::flock` with `std::mem::zeroed()` (its layout differs
///   between platforms, some have padding), then set the fields: every
///   field 0 is a valid value. `l_pid` **must** be 0 for the `F_OFD_*`
///   commands (`EINVAL` otherwise).
/// * A conflicting lock with `F_SETLK` or `F_OFD_SETLK`: `EAGAIN`, or
///   `EACCES` on some systems (POSIX allows both): `Ok(Acquired::Busy)`.
/// * `F_SETLKW` that would close a cycle of processes waiting for each
///   other fails with `EDEADLK` (process locks only: the kernel does not
///   look for deadlocks among open file description locks, which then
///   wait for ever). A range whose last byte lies past the largest file
///   offset fails with `EOVERFLOW`. A write lock needs `file` open for
///   writing, a read lock open for reading (`EBADF`). Return those, and
///   any other errno, as errors.
/// * Locking a range you already hold changes its kind (and may split or
///   merge your locks); bytes past the end of the file may be locked.
///
/// `nix::fcntl::fcntl(file, FcntlArg::F_SETLKW(&lock))` and its siblings
/// make the call.
pub fn lock_range(
    file: &File,
    owner: Owner,
    kind: Kind,
    range: Range,
    wait: Wait,
) -> nix::Result<Acquired> {
    let request = flock_struct(lock_type(kind), range);
    let command = match (owner, wait) {
        (Owner::Process, Wait::Block) => FcntlArg::F_SETLKW(&request),
        (Owner::Process, Wait::NoWait) => FcntlArg::F_SETLK(&request),
        (Owner::OpenFile, Wait::Block) => FcntlArg::F_OFD_SETLKW(&request),
        (Owner::OpenFile, Wait::NoWait) => FcntlArg::F_OFD_SETLK(&request),
    };
    match fcntl(file, command) {
        Ok(_) => Ok(Acquired::Locked),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(Acquired::Busy),
        Err(errno) => Err(errno),
    }
}

/// Releases `range` of `file`: the same `struct flock` with `l_type =
/// F_UNLCK`, passed with `F_SETLK` (or `F_OFD_SETLK` for
/// [`Owner::OpenFile`]). Unlocking bytes you do not hold is not an error.
pub fn unlock_range(file: &File, owner: Owner, range: Range) -> nix::Result<()> {
    let request = flock_struct(libc::F_UNLCK, range);
    let command = match owner {
        Owner::Process => FcntlArg::F_SETLK(&request),
        Owner::OpenFile => FcntlArg::F_OFD_SETLK(&request),
    };
    fcntl(file, command).map(drop)
}

/// `F_RDLCK` or `F_WRLCK`.
fn lock_type(kind: Kind) -> libc::c_int {
    match kind {
        Kind::Read => libc::F_RDLCK,
        Kind::Write => libc::F_WRLCK,
    }
}

/// A `struct flock` for `range`, from the start of the file, with `l_pid`
/// 0 (required by the open file description commands).
fn flock_struct(l_type: libc::c_int, range: Range) -> libc::flock {
    // SAFETY: `struct flock` is plain integers (and, on some platforms,
    // padding): all zeros is a valid value of it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = range.start;
    lock.l_len = range.len;
    lock.l_pid = 0;
    lock
}

/// Asks who would keep a [`Kind`] lock on `range` of `file` from being
/// placed, without placing it: `F_GETLK` for [`Owner::Process`],
/// `F_OFD_GETLK` for [`Owner::OpenFile`], with the `struct flock` that
/// [`lock_range`] would pass.
///
/// * If nothing is in the way, the kernel sets `l_type` to `F_UNLCK`
///   (and leaves the rest alone): return `Ok(None)`.
/// * Otherwise it overwrites the structure with one of the conflicting
///   locks: `l_type`, `l_start`, `l_len` (with `l_whence = SEEK_SET`) and
///   `l_pid`, the holder's pid for a process-associated lock, or -1 for an
///   open file description lock (then [`Holder::pid`] is `None`).
/// * Your own locks never stand in your way: `F_GETLK` leaves out the
///   calling process's locks, `F_OFD_GETLK` those of the same open file
///   description. The answer may be stale by the time you read it.
/// * `F_GETLK` only asks, so it works on a descriptor of any mode.
pub fn lock_holder(
    file: &File,
    owner: Owner,
    kind: Kind,
    range: Range,
) -> nix::Result<Option<Holder>> {
    let mut answer = flock_struct(lock_type(kind), range);
    let command = match owner {
        Owner::Process => FcntlArg::F_GETLK(&mut answer),
        Owner::OpenFile => FcntlArg::F_OFD_GETLK(&mut answer),
    };
    fcntl(file, command)?;
    let kind = match libc::c_int::from(answer.l_type) {
        libc::F_UNLCK => return Ok(None),
        libc::F_RDLCK => Kind::Read,
        _ => Kind::Write,
    };
    Ok(Some(Holder {
        kind,
        range: Range {
            start: answer.l_start,
            len: answer.l_len,
        },
        pid: (answer.l_pid > 0).then(|| Pid::from_raw(answer.l_pid)),
    }))
}

/// How the writers of task 4 keep each other out of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// No lock at all: the writers race.
    None,
    /// An exclusive `flock` on the whole file ([`flock_file`]).
    Flock,
    /// A write record lock on the whole file ([`lock_range`] with
    /// [`WHOLE_FILE`]), owned as given.
    Record(Owner),
}

/// Appends one `record` to the end of `file`, which several processes
/// append to at once, and returns the offset it was written at.
///
/// The file is **not** opened with `O_APPEND` (the command line opens it):
/// finding the end and writing there are two steps, and another process
/// may write between them. Make them one critical section (临界区):
///
/// 1. take the lock that `lock` names, waiting for it ([`Wait::Block`],
///    [`Kind::Write`]); take nothing for [`Lock::None`];
/// 2. find the end of the file: `file.seek(SeekFrom::End(0))`
///    (`lseek(fd, 0, SEEK_END)`);
/// 3. call `gate()`: the tests use it to hold every writer at this point
///    at once (it returns at once unless a test closed the gate);
/// 4. write the whole record at that offset (`write_all`);
/// 5. release the lock.
///
/// Without the lock, two writers can find the same end and the later
/// write lands on the earlier one: a record lost, or torn. With it, the
/// record is whole and every other writer's too. If a step fails after the
/// lock was taken, release it before returning the error.
pub fn append_record(
    file: &mut File,
    lock: Lock,
    record: &[u8],
    gate: &mut impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    take_append_lock(file, lock)?;
    let appended = write_at_end(file, record, gate);
    let released = release_append_lock(file, lock);
    let offset = appended?;
    released?;
    Ok(offset)
}

/// Step 1 of [`append_record`]: the lock, waiting as long as it takes.
fn take_append_lock(file: &File, lock: Lock) -> anyhow::Result<()> {
    match lock {
        Lock::None => Ok(()),
        Lock::Flock => flock_file(file, Kind::Write, Wait::Block)
            .map(drop)
            .context("flock(LOCK_EX)"),
        Lock::Record(owner) => lock_range(file, owner, Kind::Write, WHOLE_FILE, Wait::Block)
            .map(drop)
            .context("write-lock the whole file"),
    }
}

/// Steps 2 to 4 of [`append_record`]: the end, the gate, the record.
fn write_at_end(
    file: &mut File,
    record: &[u8],
    gate: &mut impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let end = file.seek(SeekFrom::End(0)).context("lseek(SEEK_END)")?;
    gate()?;
    file.write_all(record).context("write")?;
    Ok(end)
}

/// Step 5 of [`append_record`].
fn release_append_lock(file: &File, lock: Lock) -> anyhow::Result<()> {
    match lock {
        Lock::None => Ok(()),
        Lock::Flock => unflock_file(file).context("flock(LOCK_UN)"),
        Lock::Record(owner) => unlock_range(file, owner, WHOLE_FILE).context("unlock"),
    }
}

/// The mode a new pid file gets (before the umask): its owner may write
/// it, everyone may read it, and so learn (with `F_GETLK`) which process
/// runs.
pub const PID_FILE_MODE: u32 = 0o644;

/// The pid file of the running daemon: open, write-locked (a
/// process-associated lock on the whole file), holding its pid.
#[derive(Debug)]
pub struct PidFile {
    /// The open file. The lock lasts as long as this process keeps it
    /// open, and no longer: keep it for the daemon's whole life.
    pub file: File,
}

/// What [`claim_pid_file`] found.
#[derive(Debug)]
pub enum Claim {
    /// This process holds the lock now, and the file holds its pid.
    Ours(PidFile),
    /// Another process holds the lock: this pid, as `F_GETLK` reports it.
    Running(Pid),
}

/// Makes the calling process the one that holds the pid file at `path`,
/// or finds which process does.
///
/// 1. Open `path` read-write, creating it if needed with
///    [`PID_FILE_MODE`]: `O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC`
///    (`OpenOptions` with `mode` and `custom_flags`). Never `O_TRUNC`: the
///    file may belong to a daemon that is running. `O_NOFOLLOW` refuses a
///    symbolic link (`ELOOP`), which someone could have put there to make
///    you overwrite another file. Then `fstat` it (`file.metadata()`): a
///    path that is not a regular file is an error, `not a regular file`.
/// 2. Take a write lock on the whole file without waiting
///    (`F_SETLK`, [`Owner::Process`]: so that `F_GETLK` can tell others
///    the holder's pid).
/// 3. If the lock is busy, ask who holds it ([`lock_holder`]) and return
///    [`Claim::Running`] with that pid. If the holder went away in
///    between (no holder), try again from step 2. A holder without a pid
///    (an open file description lock, which no daemon of ours takes) is
///    an error, `locked by an open file description`.
/// 4. If the lock is ours: only now truncate the file (`set_len(0)`),
///    then write this process's pid and a newline at offset 0
///    (`write_all_at`), and return [`Claim::Ours`].
///
/// The pid in the file is a note for people; the lock is the truth. A
/// pid file left behind by a daemon killed with `SIGKILL` still names its
/// pid, but the lock died with it.
///
/// Errors carry the step that failed as context: `open PATH`, `not a
/// regular file`, `lock`, `F_GETLK`, `truncate`, `write`.
pub fn claim_pid_file(path: &Path) -> anyhow::Result<Claim> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PID_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    if !file.metadata().context("fstat")?.is_file() {
        bail!("not a regular file");
    }
    loop {
        let acquired = lock_range(&file, Owner::Process, Kind::Write, WHOLE_FILE, Wait::NoWait)
            .context("lock")?;
        if acquired == Acquired::Locked {
            write_own_pid(&file)?;
            return Ok(Claim::Ours(PidFile { file }));
        }
        let holder =
            lock_holder(&file, Owner::Process, Kind::Write, WHOLE_FILE).context("F_GETLK")?;
        match holder {
            Some(Holder { pid: Some(pid), .. }) => return Ok(Claim::Running(pid)),
            Some(Holder { pid: None, .. }) => bail!("locked by an open file description"),
            // The holder let go between our two calls: try again.
            None => {}
        }
    }
}

/// Replaces the pid file's text with this process's pid (the lock held).
fn write_own_pid(file: &File) -> anyhow::Result<()> {
    file.set_len(0).context("truncate")?;
    file.write_all_at(format!("{}\n", getpid()).as_bytes(), 0)
        .context("write")
}

/// The process that holds the pid file at `path`, if any: open it
/// read-only (`O_RDONLY | O_NOFOLLOW | O_CLOEXEC`; a missing file means
/// nobody: `Ok(None)`), then [`lock_holder`] for a write lock on the whole
/// file, process-associated.
///
/// Never read the pid written in the file: after a crash it names a dead
/// process, or by now someone else's. Errors carry the context `open
/// PATH` or `F_GETLK`; a lock held with no pid (an open file description
/// lock) is an error too.
///
/// Call it from another process than the daemon: in the daemon, the open
/// and close of the file here would drop the daemon's own lock.
pub fn pid_file_holder(path: &Path) -> anyhow::Result<Option<Pid>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("open {}", path.display())),
    };
    let holder = lock_holder(&file, Owner::Process, Kind::Write, WHOLE_FILE).context("F_GETLK")?;
    match holder {
        None => Ok(None),
        Some(Holder { pid: Some(pid), .. }) => Ok(Some(pid)),
        Some(Holder { pid: None, .. }) => {
            bail!(
                "{} is locked by an open file description, which has no pid",
                path.display()
            )
        }
    }
}

/// What `daemon start` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new daemon runs, with this pid, and holds the pid file.
    Daemon(Pid),
    /// A daemon was already running, with this pid; nothing new runs.
    AlreadyRunning(Pid),
}

/// Starts a daemon that holds the pid file at `path` for its whole life,
/// and says whether it could.
///
/// The lock must be taken by the daemon itself: a process-associated
/// lock is not inherited across `fork`, so a lock taken here, before
/// forking, would stay with this process and vanish when it exits. And
/// this process must learn the outcome, to say it. So:
///
/// 1. make a pipe (`nix::unistd::pipe`), then `fork`;
/// 2. the **parent** drops its write end (or it never sees end-of-file),
///    then reads the child's report with [`daemon::read_report`]. If a
///    daemon started, the child *is* that daemon: leave it running (when
///    it ends, `init` reaps it). Otherwise (another daemon runs, or the
///    claim failed) the child is ending: reap it (`waitpid`). Return the
///    report's answer, or its error;
/// 3. the **child** drops its read end and leaves this session with
///    `setsid()`: in a session and process group of its own, it has no
///    controlling terminal, and neither Ctrl-C nor a signal to the shell's
///    process group reaches it. It blocks `SIGTERM` and `SIGINT`
///    ([`daemon::block_termination`]), calls [`claim_pid_file`], and sends
///    what it got with [`daemon::report`], which also closes the pipe.
///    If the pid file is now its own, it calls [`daemon::detach`]
///    (standard streams to `/dev/null`, working directory `/`), then
///    [`daemon::wait_for_termination`], keeping the [`PidFile`] open until
///    then, and ends with `_exit(0)`. If not, it ends at once: `_exit(0)`
///    if another daemon runs, `_exit(1)` after an error.
///
/// In the child, end with `libc::_exit` (which runs no exit handlers and
/// flushes nothing), never by returning: the code after `start_daemon`
/// belongs to the parent.
pub fn start_daemon(path: &Path) -> anyhow::Result<Started> {
    let (report_read, report_write) = pipe().context("pipe")?;
    // SAFETY: this program has one thread; the child runs plain code and
    // leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => {
            drop(report_write);
            let started = daemon::read_report(report_read);
            if !matches!(started, Ok(Started::Daemon(_))) {
                waitpid(child, None).context("waitpid")?;
            }
            started
        }
        ForkResult::Child => {
            drop(report_read);
            be_the_daemon(path, report_write)
        }
    }
}

/// The child: a session of its own, the claim, the report; then, if the
/// pid file is its own, a daemon's life until SIGTERM.
fn be_the_daemon(path: &Path, report_write: OwnedFd) -> ! {
    let prepared = setsid()
        .context("setsid")
        .and_then(|_| daemon::block_termination());
    let signals = match prepared {
        Ok(signals) => signals,
        Err(error) => {
            daemon::report(report_write, &Err(error));
            exit_now(1)
        }
    };
    let claim = claim_pid_file(path);
    daemon::report(report_write, &claim);
    match claim {
        Ok(Claim::Ours(pid_file)) => {
            if daemon::detach().is_err() {
                exit_now(1);
            }
            daemon::wait_for_termination(&signals);
            drop(pid_file);
            exit_now(0)
        }
        Ok(Claim::Running(_)) => exit_now(0),
        Err(_) => exit_now(1),
    }
}

/// Ends this process at once, with `code`, running no exit handlers and
/// flushing nothing: for a forked child, whose buffers are its parent's.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}
