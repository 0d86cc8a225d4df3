//! The `file-locks` command line (given: you do not need to change this
//! file).
//!
//! Every command takes the path of an existing regular file, opened with
//! your `open_to_lock`, except `append`, which creates its journal, and
//! `daemon`, whose pid file is made by the daemon. Errors are reported on one line, `file-locks: …`,
//! with exit status 1; usage mistakes exit with status 2; `daemon status`
//! exits with 3 when no daemon runs, as an init script's `status` does.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork};

use super::daemon;
use super::journal::{self, Fnv1a};
use super::{
    Acquired, Holder, Kind, Lock, Owner, Range, Started, WHOLE_FILE, Wait, append_record,
    flock_file, lock_holder, lock_range, open_to_lock, pid_file_holder, start_daemon, unflock_file,
    unlock_range,
};

/// How long `daemon stop` waits for the daemon to end.
const STOP_TIMEOUT_MS: u16 = 5000;

/// The exit status of `daemon status` when no daemon runs.
const NOT_RUNNING: u8 = 3;

/// Lab 12: file locks.
#[derive(Parser, Debug)]
#[command(name = "file-locks", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Lock FILE (or a range of it), say so, and hold the lock until
    /// SIGTERM or SIGINT, then release it (TODOs 1 and 2).
    Hold {
        /// The file to lock: it must exist.
        path: PathBuf,
        /// Which kind of lock: flock(2), fcntl process-associated record
        /// locks (posix), or open file description locks (ofd).
        #[arg(long, value_enum, default_value_t = Api::Posix)]
        api: Api,
        /// Read (shared) or write (exclusive).
        #[arg(long, value_enum, default_value_t = KindArg::Write)]
        kind: KindArg,
        /// The bytes to lock, START:LEN (LEN 0: to the end of the file and
        /// beyond). Not with --api flock, which locks whole files.
        #[arg(long, value_parser = parse_range)]
        range: Option<Range>,
        /// Fail at once if the lock is taken, instead of waiting.
        #[arg(long)]
        nonblock: bool,
        /// Once the first range is locked, lock this one too (START:LEN).
        #[arg(long, value_parser = parse_range)]
        then: Option<Range>,
        /// Before locking the --then range, wait until a shared flock on
        /// GATE can be had (the tests hold the gate shut).
        #[arg(long, requires = "then")]
        gate: Option<PathBuf>,
        /// Once locked, close another descriptor of FILE: one from opening
        /// it again (open), or a duplicate of the locked one (dup).
        #[arg(long, value_enum)]
        close_another: Option<Another>,
    },
    /// Ask with F_GETLK (or F_OFD_GETLK) who keeps a lock off FILE
    /// (TODO 3).
    Test {
        /// The file to ask about: it must exist.
        path: PathBuf,
        /// Ask as an open file description lock would (F_OFD_GETLK).
        #[arg(long)]
        ofd: bool,
        /// The kind of lock to ask about.
        #[arg(long, value_enum, default_value_t = KindArg::Write)]
        kind: KindArg,
        /// The bytes to ask about, START:LEN (LEN 0: to the end and beyond).
        #[arg(long, value_parser = parse_range)]
        range: Option<Range>,
    },
    /// Lock FILE, fork, and show whose lock it is: the child locks through
    /// the descriptor it inherited, then through a new open of the file,
    /// before and after each side closes its descriptor (TODOs 1 and 2).
    Inherit {
        /// The file to lock: it must exist.
        path: PathBuf,
        /// Which kind of lock.
        #[arg(long, value_enum, default_value_t = Api::Posix)]
        api: Api,
    },
    /// Append this writer's records to the journal FILE, one locked
    /// append each (TODO 4).
    Append {
        /// The journal: created (mode 600) if missing, never truncated.
        path: PathBuf,
        /// This writer's number.
        #[arg(long)]
        writer: u32,
        /// How many records to append.
        #[arg(long)]
        records: u32,
        /// The seed the records are made from.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How to keep the other writers out.
        #[arg(long, value_enum, default_value_t = LockArg::Posix)]
        lock: LockArg,
        /// Before writing the first record, once its offset is known, wait
        /// until a shared flock on GATE can be had (the tests hold it
        /// shut).
        #[arg(long)]
        gate: Option<PathBuf>,
    },
    /// Count the whole records of the journal FILE, writer by writer, and
    /// the torn lines. Given.
    Check {
        /// The journal.
        path: PathBuf,
    },
    /// A single-instance daemon that holds a pid file (TODOs 5 and 6).
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
}

#[derive(Subcommand, Debug)]
enum DaemonAction {
    /// Start the daemon, unless one already holds PIDFILE (exit status 1).
    Start {
        /// The pid file: created if missing.
        pid_file: PathBuf,
    },
    /// Say which process holds PIDFILE (exit status 3 if none).
    Status {
        /// The pid file.
        pid_file: PathBuf,
    },
    /// Send SIGTERM to the process that holds PIDFILE and wait until it
    /// has ended.
    Stop {
        /// The pid file.
        pid_file: PathBuf,
    },
}

/// The three kinds of lock.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// flock(2): whole files, owned by the open file description.
    Flock,
    /// fcntl(2) record locks owned by the process.
    Posix,
    /// fcntl(2) record locks owned by the open file description.
    Ofd,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum KindArg {
    /// A read lock: shared.
    #[value(alias = "shared")]
    Read,
    /// A write lock: exclusive.
    #[value(alias = "exclusive")]
    Write,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum LockArg {
    /// No lock at all.
    None,
    /// flock(2) on the whole file.
    Flock,
    /// A process-associated write lock on the whole file.
    Posix,
    /// An open file description write lock on the whole file.
    Ofd,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Another {
    /// Open FILE again, then close that descriptor.
    Open,
    /// Duplicate the locked descriptor, then close the duplicate.
    Dup,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(code) => code,
        Err(error) => {
            print_error(&format!("file-locks: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints `line` and a line break on standard error in one `write(2)`.
/// `eprintln!` writes a line in pieces, so the error lines of processes
/// that share a pipe for their standard error could mix; a pipe keeps each
/// write of at most `PIPE_BUF` bytes whole (chapter 02).
fn print_error(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Hold {
            path,
            api,
            kind,
            range,
            nonblock,
            then,
            gate,
            close_another,
        } => {
            if api == Api::Flock && (range.is_some() || then.is_some()) {
                usage_error("--api flock locks whole files: --range and --then need posix or ofd");
            }
            let wait = if nonblock { Wait::NoWait } else { Wait::Block };
            let held = Held {
                path: &path,
                api,
                kind: kind.into(),
            };
            hold(
                &held,
                range.unwrap_or(WHOLE_FILE),
                wait,
                then,
                gate.as_deref(),
                close_another,
            )?;
        }
        Command::Test {
            path,
            ofd,
            kind,
            range,
        } => {
            let owner = if ofd { Owner::OpenFile } else { Owner::Process };
            test(&path, owner, kind.into(), range.unwrap_or(WHOLE_FILE))?;
        }
        Command::Inherit { path, api } => inherit(&path, api)?,
        Command::Append {
            path,
            writer,
            records,
            seed,
            lock,
            gate,
        } => append(&path, writer, records, seed, lock.into(), gate.as_deref())?,
        Command::Check { path } => check(&path)?,
        Command::Daemon { action } => return daemon_command(action),
    }
    Ok(ExitCode::SUCCESS)
}

/// Exits like clap does for a usage mistake: a message, status 2.
fn usage_error(message: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

/// Parses `START:LEN`, each from 0 to the largest file offset.
fn parse_range(text: &str) -> Result<Range, String> {
    let (start, len) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not START:LEN"))?;
    let number = |part: &str| {
        part.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{part:?} is not a number from 0 to {}", i64::MAX))
    };
    Ok(Range {
        start: number(start)?,
        len: number(len)?,
    })
}

impl From<KindArg> for Kind {
    fn from(kind: KindArg) -> Kind {
        match kind {
            KindArg::Read => Kind::Read,
            KindArg::Write => Kind::Write,
        }
    }
}

impl From<LockArg> for Lock {
    fn from(lock: LockArg) -> Lock {
        match lock {
            LockArg::None => Lock::None,
            LockArg::Flock => Lock::Flock,
            LockArg::Posix => Lock::Record(Owner::Process),
            LockArg::Ofd => Lock::Record(Owner::OpenFile),
        }
    }
}

// ---- words ------------------------------------------------------------------

/// `bytes 0-99`, or `bytes 100-EOF` for a range that goes on for ever.
pub fn describe_range(range: Range) -> String {
    if range.len == 0 {
        format!("bytes {}-EOF", range.start)
    } else {
        // The last byte may lie past the largest offset (EOVERFLOW): i128.
        let last = i128::from(range.start) + i128::from(range.len) - 1;
        format!("bytes {}-{last}", range.start)
    }
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Read => "read",
        Kind::Write => "write",
    }
}

fn flock_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Read => "shared",
        Kind::Write => "exclusive",
    }
}

fn api_word(api: Api) -> &'static str {
    match api {
        Api::Flock => "flock",
        Api::Posix => "posix",
        Api::Ofd => "ofd",
    }
}

fn owner_of(api: Api) -> Owner {
    if api == Api::Ofd {
        Owner::OpenFile
    } else {
        Owner::Process
    }
}

/// `a write lock on bytes 0-99 (posix)`, `an exclusive lock on the whole
/// file (flock)`.
fn describe_lock(api: Api, kind: Kind, range: Range) -> String {
    match api {
        Api::Flock => format!("{} lock on the whole file (flock)", flock_word(kind)),
        _ => format!(
            "{} lock on {} ({})",
            kind_word(kind),
            describe_range(range),
            api_word(api)
        ),
    }
}

/// Prints `line` and flushes at once: another process may be waiting for
/// it.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("write to standard output")
}

// ---- opening files ------------------------------------------------------------

/// Fails unless `file` is a regular file (a directory can be opened for
/// reading, and locked).
fn expect_regular(file: &File, path: &Path) -> anyhow::Result<()> {
    let meta = file
        .metadata()
        .with_context(|| format!("fstat {}", path.display()))?;
    if meta.is_dir() {
        bail!("{}: is a directory", path.display());
    }
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    Ok(())
}

// ---- hold ---------------------------------------------------------------------

/// The file `hold` locks, and how.
struct Held<'a> {
    path: &'a Path,
    api: Api,
    kind: Kind,
}

// ANCHOR: cli_hold
/// `hold`: lock, maybe lock a second range after the gate, maybe close
/// another descriptor, then hold until SIGTERM or SIGINT.
fn hold(
    held: &Held,
    range: Range,
    wait: Wait,
    then: Option<Range>,
    gate: Option<&Path>,
    close_another: Option<Another>,
) -> anyhow::Result<()> {
    let file = open_to_lock(held.path, held.kind)?;
    take(&file, held, range, wait)?;
    if let Some(second) = then {
        if let Some(gate) = gate {
            pass_gate(gate)?;
        }
        take(&file, held, second, wait)?;
    }
    if let Some(another) = close_another {
        close_another_descriptor(&file, held.path, another)?;
    }
    let signals = daemon::block_termination()?;
    say("holding")?;
    daemon::wait_for_termination(&signals);
    release(&file, held, range)?;
    if let Some(second) = then {
        release(&file, held, second)?;
    }
    say("released")
}

/// Takes one lock for `hold` and says so, or fails saying why.
fn take(file: &File, held: &Held, range: Range, wait: Wait) -> anyhow::Result<()> {
    let what = describe_lock(held.api, held.kind, range);
    let context = || format!("{}: {what}", held.path.display());
    let acquired = match held.api {
        Api::Flock => flock_file(file, held.kind, wait),
        api => lock_range(file, owner_of(api), held.kind, range, wait),
    }
    .with_context(context)?;
    if acquired == Acquired::Busy {
        let errno = if held.api == Api::Flock {
            "EWOULDBLOCK"
        } else {
            "EAGAIN"
        };
        bail!("{}: busy: a conflicting lock is held ({errno})", context());
    }
    say(&format!("locked: {what}"))
}
// ANCHOR_END: cli_hold

/// Releases one lock of `hold`.
fn release(file: &File, held: &Held, range: Range) -> anyhow::Result<()> {
    match held.api {
        Api::Flock => unflock_file(file),
        api => unlock_range(file, owner_of(api), range),
    }
    .with_context(|| format!("unlock {}", held.path.display()))
}

/// Waits at the gate: until a shared flock on `gate` can be had (a test
/// holds an exclusive one until every process it started is in place),
/// then lets go of it at once. nix's `Flock` owns the file it locks and
/// unlocks it when dropped.
fn pass_gate(gate: &Path) -> anyhow::Result<()> {
    let file = File::open(gate).with_context(|| format!("open the gate {}", gate.display()))?;
    let passed = Flock::lock(file, FlockArg::LockShared)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("wait at the gate {}", gate.display()))?;
    drop(passed);
    Ok(())
}

// ANCHOR: close_another
/// Closes a descriptor of `path` other than `file`'s: a new one from
/// `open` (as a library that reads the file would), or a `dup` of
/// `file`'s. A process-associated record lock does not survive either.
fn close_another_descriptor(file: &File, path: &Path, another: Another) -> anyhow::Result<()> {
    match another {
        Another::Open => {
            let other = File::open(path).with_context(|| format!("open {}", path.display()))?;
            drop(other);
            say("closed another descriptor of the file (open, then close)")
        }
        Another::Dup => {
            let copy = file.try_clone().context("dup")?;
            drop(copy);
            say("closed another descriptor of the file (dup, then close)")
        }
    }
}
// ANCHOR_END: close_another

// ---- test ---------------------------------------------------------------------

/// `test`: who keeps a `kind` lock on `range` off the file.
fn test(path: &Path, owner: Owner, kind: Kind, range: Range) -> anyhow::Result<()> {
    // F_GETLK only asks: a descriptor open for reading will do.
    let file = open_to_lock(path, Kind::Read)?;
    let holder = lock_holder(&file, owner, kind, range)
        .with_context(|| format!("ask about {} of {}", describe_range(range), path.display()))?;
    match holder {
        None => say(&format!(
            "free: nothing keeps a {} lock off {}",
            kind_word(kind),
            describe_range(range)
        )),
        Some(holder) => say(&format!("held: {}", describe_holder(&holder))),
    }
}

/// `write lock on bytes 0-99 by pid 4242`.
fn describe_holder(holder: &Holder) -> String {
    let whose = match holder.pid {
        Some(pid) => format!("pid {pid}"),
        None => "an open file description (no pid)".to_string(),
    };
    format!(
        "{} lock on {} by {whose}",
        kind_word(holder.kind),
        describe_range(holder.range)
    )
}

// ---- inherit ------------------------------------------------------------------

// ANCHOR: cli_inherit
/// `inherit`: whose lock is it, the process's or the open file's?
///
/// The parent write-locks the whole file and forks. The child locks again
/// through the descriptor it inherited; the parent then closes its copy;
/// the child tries a new open of the file, closes its inherited copy, and
/// tries a new open again. Every try is non-blocking; the parent prints
/// the story once the child has ended.
fn inherit(path: &Path, api: Api) -> anyhow::Result<()> {
    let file = open_to_lock(path, Kind::Write)?;
    let held = Held {
        path,
        api,
        kind: Kind::Write,
    };
    let what = describe_lock(api, Kind::Write, WHOLE_FILE);
    let context = || format!("{}: {what}", path.display());
    let acquired = lock_any(&file, api).with_context(context)?;
    if acquired == Acquired::Busy {
        bail!("{}: busy: a conflicting lock is held", context());
    }
    let (to_child_read, to_child_write) = nix::unistd::pipe().context("pipe")?;
    let (from_child_read, from_child_write) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: this program has one thread; the child uses only its own
    // descriptors and plain code, then leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(to_child_write);
            drop(from_child_read);
            let code = match inherit_child(file, &held, to_child_read, from_child_write) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: ends the child without running the parent's code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(to_child_read);
            drop(from_child_write);
            let mut from_child = File::from(from_child_read);
            let first = read_outcome(&mut from_child);
            drop(file);
            drop(to_child_write);
            let second = read_outcome(&mut from_child);
            let third = read_outcome(&mut from_child);
            waitpid(child, None).context("waitpid")?;
            say(&format!("parent: locked: {what}"))?;
            say(&format!(
                "child: locking again through the inherited descriptor: {}",
                first?
            ))?;
            say("parent: closed its descriptor")?;
            say(&format!(
                "child: locking through a new open of the file: {}",
                second?
            ))?;
            say("child: closed the inherited descriptor")?;
            say(&format!(
                "child: locking through a new open of the file: {}",
                third?
            ))?;
        }
    }
    Ok(())
}
// ANCHOR_END: cli_inherit

/// The child of `inherit`: three tries, each outcome sent as one byte.
fn inherit_child(
    inherited: File,
    held: &Held,
    parent_closed: OwnedFd,
    to_parent: OwnedFd,
) -> anyhow::Result<()> {
    let mut to_parent = File::from(to_parent);
    let first = lock_any(&inherited, held.api)?;
    send_outcome(&mut to_parent, first)?;
    // Wait until the parent has closed its descriptor: end-of-file.
    let mut parent_closed = File::from(parent_closed);
    io::copy(&mut parent_closed, &mut io::sink()).context("wait for the parent")?;
    send_outcome(&mut to_parent, try_fresh_open(held)?)?;
    drop(inherited);
    send_outcome(&mut to_parent, try_fresh_open(held)?)
}

/// Opens the file again (a new open file description), tries the lock
/// without waiting, and lets go of whatever it got.
fn try_fresh_open(held: &Held) -> anyhow::Result<Acquired> {
    let fresh = open_to_lock(held.path, Kind::Write)?;
    let acquired = lock_any(&fresh, held.api)?;
    if acquired == Acquired::Locked {
        release(&fresh, held, WHOLE_FILE)?;
    }
    Ok(acquired)
}

/// A write lock on the whole file through `file`, without waiting.
fn lock_any(file: &File, api: Api) -> nix::Result<Acquired> {
    match api {
        Api::Flock => flock_file(file, Kind::Write, Wait::NoWait),
        api => lock_range(file, owner_of(api), Kind::Write, WHOLE_FILE, Wait::NoWait),
    }
}

fn send_outcome(pipe: &mut File, acquired: Acquired) -> anyhow::Result<()> {
    let byte = match acquired {
        Acquired::Locked => b'+',
        Acquired::Busy => b'-',
    };
    pipe.write_all(&[byte]).context("write to the parent")
}

fn read_outcome(pipe: &mut File) -> anyhow::Result<&'static str> {
    let mut byte = [0u8];
    match io::Read::read(pipe, &mut byte) {
        Ok(1) if byte[0] == b'+' => Ok("granted"),
        Ok(1) => Ok("busy"),
        Ok(_) => bail!("the child ended early (did a lock call fail?)"),
        Err(error) => Err(error).context("read from the child"),
    }
}

// ---- append and check -------------------------------------------------------------

// ANCHOR: cli_append
/// `append`: this writer's records, one [`append_record`] each, then a
/// summary line that `check` can be compared with.
fn append(
    path: &Path,
    writer: u32,
    count: u32,
    seed: u64,
    lock: Lock,
    gate: Option<&Path>,
) -> anyhow::Result<()> {
    // Read-write, created if missing, never truncated, and no O_APPEND:
    // finding the end is the program's business, and the lock's.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    expect_regular(&file, path)?;
    let mut gate_ahead = gate;
    let mut gate = || match gate_ahead.take() {
        Some(gate) => pass_gate(gate),
        None => Ok(()),
    };
    let mut hash = Fnv1a::default();
    let mut bytes = 0;
    for record in journal::records(writer, count, seed) {
        let line = record.line();
        append_record(&mut file, lock, line.as_bytes(), &mut gate)
            .with_context(|| format!("append record {} to {}", record.seq, path.display()))?;
        hash.update(line.as_bytes());
        bytes += line.len();
    }
    say(&format!(
        "writer {writer}: {count} records, {bytes} bytes, FNV-1a {:#018x}",
        hash.0
    ))
}
// ANCHOR_END: cli_append

/// `check`: the journal's whole records, writer by writer, in the same
/// words as `append` prints, then the torn lines.
fn check(path: &Path) -> anyhow::Result<()> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    expect_regular(&file, path)?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes)
        .with_context(|| format!("read {}", path.display()))?;
    let contents = journal::read(&bytes);
    for (writer, records) in contents.by_writer() {
        let mut hash = Fnv1a::default();
        let mut length = 0;
        for record in &records {
            let line = record.line();
            hash.update(line.as_bytes());
            length += line.len();
        }
        say(&format!(
            "writer {writer}: {} records, {length} bytes, FNV-1a {:#018x}",
            records.len(),
            hash.0
        ))?;
    }
    say(&format!("torn lines: {}", contents.torn))
}

// ---- daemon -----------------------------------------------------------------------

fn daemon_command(action: DaemonAction) -> anyhow::Result<ExitCode> {
    match action {
        DaemonAction::Start { pid_file } => match start_daemon(&pid_file)? {
            Started::Daemon(pid) => say(&format!("started: pid {pid}"))?,
            Started::AlreadyRunning(pid) => {
                bail!("{}: already running as pid {pid}", pid_file.display())
            }
        },
        DaemonAction::Status { pid_file } => match pid_file_holder(&pid_file)? {
            Some(pid) => say(&format!("running: pid {pid}"))?,
            None => {
                say("not running")?;
                return Ok(ExitCode::from(NOT_RUNNING));
            }
        },
        DaemonAction::Stop { pid_file } => stop(&pid_file)?,
    }
    Ok(ExitCode::SUCCESS)
}

// ANCHOR: cli_stop
/// `daemon stop`: `SIGTERM` to the holder of the pid file, then wait until
/// it has ended.
///
/// The pid comes from the lock, never from the file's text. Between
/// asking and signalling, that process could end and its pid go to
/// another: so the signal goes through a pidfd (`pidfd_open`, Linux 5.3),
/// which names one process for good, taken after the first answer and
/// checked against a second. Its end makes the pidfd readable (`poll`),
/// and by then its descriptors, and so its lock, are gone.
fn stop(pid_file: &Path) -> anyhow::Result<()> {
    let Some(pid) = pid_file_holder(pid_file)? else {
        return say("not running");
    };
    let pidfd = match pidfd_open(pid) {
        Ok(pidfd) => pidfd,
        Err(Errno::ESRCH) => return say("not running"),
        Err(errno) => return Err(errno).with_context(|| format!("pidfd_open {pid}")),
    };
    if pid_file_holder(pid_file)? != Some(pid) {
        return say("not running");
    }
    pidfd_send_signal(&pidfd, libc::SIGTERM).with_context(|| format!("SIGTERM to pid {pid}"))?;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::from(STOP_TIMEOUT_MS)).context("poll the pidfd")?;
    if ready == 0 {
        bail!("pid {pid} did not end within {STOP_TIMEOUT_MS} ms of SIGTERM");
    }
    say(&format!("stopped: pid {pid}"))
}
// ANCHOR_END: cli_stop

/// `pidfd_open(2)`: a descriptor that names process `pid` for good.
fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: the system call takes two integers and returns a new
    // descriptor, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    Errno::result(fd)?;
    // SAFETY: a descriptor the kernel just made for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)`: `kill` through a pidfd.
fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> nix::Result<()> {
    let null: *const libc::siginfo_t = std::ptr::null();
    // SAFETY: a valid descriptor, a signal number, a null siginfo (the
    // kernel fills in one as kill does) and no flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            null,
            0,
        )
    };
    Errno::result(result).map(drop)
}
