//! The ping-pong harness (given: you do not need to change this file).
//!
//! A **session** measures or checks one mechanism:
//!
//! ```text
//!  supervisor ── Link::open ── fork ──┬── pong: Link::end(Pong) … answers each message
//!      │                              └── ping: Link::end(Ping) … sends, times, checks
//!      │   waitpid both (if one fails, SIGKILL the other)
//!      └── Link::remove
//! ```
//!
//! The supervisor makes the mechanism's objects (`open`), then forks the
//! two sides. Each side waits until both exist (a "go" pipe that the
//! supervisor closes once it knows both pids), pins itself to its CPU
//! when asked, takes its end of the link (`end`) and follows the plan.
//! The supervisor only waits: if one side fails or dies, it kills the
//! other (which would otherwise wait for ever for a message that will
//! never come), and whatever happened it calls `remove`. So your code
//! never has to ask whether the other process is still there.
//!
//! The sides report to the supervisor through a small anonymous shared
//! mapping, the **board**: each writes what it holds, what it received
//! and its timings there, and the supervisor reads it once both are gone.

use std::cell::RefCell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::fcntl::OFlag;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid, fork, pipe2, read};

use super::memory::{Direction, HEADER_BYTES, Region};
use super::report;
use super::sys;
use super::{
    Channel, Datagrams, EventFds, Fifos, Futexes, Link, Pipes, PosixQueues, Shared, Signals, Spin,
    SysvQueue, SysvSemaphores, Tcp, UnixStreams,
};

// ANCHOR: names
/// Where a session's objects get their names: the chapter's conventions.
#[derive(Debug)]
pub struct Names {
    /// The file given to `ftok(3)` for System V keys.
    pub key_file: PathBuf,
    /// The start of every POSIX IPC name, e.g. `/capstone-4242`.
    pub prefix: String,
    /// The directory for FIFOs and socket files.
    pub dir: PathBuf,
    /// Every name handed out so far, to look for after the session.
    given: RefCell<Vec<Given>>,
}

/// A name handed out by [`Names`].
#[derive(Debug, Clone)]
pub(crate) enum Given {
    Path(PathBuf),
    Posix(String),
    Key(u8),
}

impl Names {
    /// Names under `key_file`, `prefix` (which starts with `/`) and `dir`.
    pub fn new(key_file: PathBuf, prefix: String, dir: PathBuf) -> Names {
        Names {
            key_file,
            prefix,
            dir,
            given: RefCell::new(Vec::new()),
        }
    }

    /// A path in the work directory, for a FIFO or a socket file:
    /// `names.path("ping.fifo")`.
    pub fn path(&self, file: &str) -> PathBuf {
        let path = self.dir.join(file);
        self.given.borrow_mut().push(Given::Path(path.clone()));
        path
    }

    /// A POSIX IPC name, for `mq_open` or `shm_open`: `names.posix("ping")`
    /// is `/capstone-4242-ping`.
    pub fn posix(&self, suffix: &str) -> String {
        self.given
            .borrow_mut()
            .push(Given::Posix(format!("{}-{suffix}", self.prefix)));
        format!("{}-{suffix}", self.prefix)
    }

    /// The System V key `ftok(key_file, proj)`; its error says which file.
    pub fn key(&self, proj: u8) -> anyhow::Result<libc::key_t> {
        self.given.borrow_mut().push(Given::Key(proj));
        sys::ftok(&self.key_file, proj)
            .with_context(|| format!("ftok {} '{}'", self.key_file.display(), proj as char))
    }

    /// Every name handed out so far.
    pub(crate) fn given(&self) -> Vec<Given> {
        self.given.borrow().clone()
    }
}
// ANCHOR_END: names

// ANCHOR: role
/// The two sides of a ping-pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends first, and measures: each round trip starts and ends here.
    Ping,
    /// Answers each message.
    Pong,
}
// ANCHOR_END: role

impl Role {
    /// 0 for ping, 1 for pong.
    pub fn index(self) -> usize {
        match self {
            Role::Ping => 0,
            Role::Pong => 1,
        }
    }

    /// The other side.
    pub fn other(self) -> Role {
        match self {
            Role::Ping => Role::Pong,
            Role::Pong => Role::Ping,
        }
    }
}

impl Role {
    /// The direction this side writes to.
    pub fn outgoing(self) -> Direction {
        match self {
            Role::Ping => Direction::PingToPong,
            Role::Pong => Direction::PongToPing,
        }
    }

    /// The direction this side reads from.
    pub fn incoming(self) -> Direction {
        match self {
            Role::Ping => Direction::PongToPing,
            Role::Pong => Direction::PingToPong,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Ping => "ping",
            Role::Pong => "pong",
        })
    }
}

// ANCHOR: mechanisms
/// How a mechanism carries data (the notes' three models).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 字节流: bytes without boundaries.
    ByteStream,
    /// 消息: messages that keep their boundaries, up to a size limit.
    Messages,
    /// 共享内存: no copy through the kernel, plus something to wake the
    /// other side.
    SharedMemory,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::ByteStream => "byte stream (字节流)",
            Family::Messages => "messages (消息)",
            Family::SharedMemory => "shared memory (共享内存) and a wake-up",
        })
    }
}

/// One mechanism the benchmark knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mechanism {
    /// Its name on the command line.
    pub name: &'static str,
    /// Its data model.
    pub family: Family,
    /// What the link is made of, and the chapters that explain it.
    pub summary: &'static str,
    /// The task of the lab that writes it.
    pub task: u8,
}

/// Every mechanism, by family.
pub const MECHANISMS: [Mechanism; 12] = [
    Mechanism {
        name: "pipe",
        family: Family::ByteStream,
        summary: "two pipes, one each way (chapter 02)",
        task: 1,
    },
    Mechanism {
        name: "fifo",
        family: Family::ByteStream,
        summary: "two FIFOs in the work directory (chapter 04)",
        task: 1,
    },
    Mechanism {
        name: "unix-stream",
        family: Family::ByteStream,
        summary: "a Unix stream socket bound to a path (chapter 13)",
        task: 2,
    },
    Mechanism {
        name: "tcp",
        family: Family::ByteStream,
        summary: "a TCP connection over the loopback interface, 127.0.0.1 (chapter 14)",
        task: 2,
    },
    Mechanism {
        name: "unix-dgram",
        family: Family::Messages,
        summary: "a pair of Unix datagram sockets (chapter 13)",
        task: 3,
    },
    Mechanism {
        name: "sysv-mq",
        family: Family::Messages,
        summary: "one System V message queue, one message type each way (chapter 05)",
        task: 4,
    },
    Mechanism {
        name: "posix-mq",
        family: Family::Messages,
        summary: "two POSIX message queues (chapter 09)",
        task: 4,
    },
    Mechanism {
        name: "sysv-shm",
        family: Family::SharedMemory,
        summary: "a System V segment, System V semaphores as doors (chapters 07, 06)",
        task: 5,
    },
    Mechanism {
        name: "posix-shm",
        family: Family::SharedMemory,
        summary: "a POSIX shared memory object, futexes as doors (chapter 10)",
        task: 6,
    },
    Mechanism {
        name: "spin",
        family: Family::SharedMemory,
        summary: "anonymous shared memory, counters spun on as doors (chapter 08)",
        task: 6,
    },
    Mechanism {
        name: "eventfd",
        family: Family::SharedMemory,
        summary: "anonymous shared memory, eventfds as doors (chapters 08, 15)",
        task: 6,
    },
    Mechanism {
        name: "signal",
        family: Family::SharedMemory,
        summary: "anonymous shared memory, real-time signals as doors (chapters 08, 11)",
        task: 6,
    },
];
// ANCHOR_END: mechanisms

impl Mechanism {
    /// The mechanism called `name`, if there is one.
    pub fn named(name: &str) -> Option<Mechanism> {
        MECHANISMS.iter().copied().find(|m| m.name == name)
    }
}

/// What the two sides do in a session.
#[derive(Debug, Clone)]
pub enum Plan {
    /// One round trip per size, in order: ping sends message 2k, pong
    /// checks it and answers with message 2k + 1, which ping checks. The
    /// contents come from `seed` ([`fill`]).
    Check { seed: u64, sizes: Vec<usize> },
    /// For each size: `warmup` round trips, `count` timed round trips,
    /// then `count` messages one way and a 1-byte answer.
    Bench {
        sizes: Vec<usize>,
        count: usize,
        warmup: usize,
    },
}

/// How a session runs.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// Where the objects get their names.
    pub names: &'a Names,
    /// What to do.
    pub plan: &'a Plan,
    /// Pin ping to the first CPU and pong to the second.
    pub pin: Option<[usize; 2]>,
    /// Descriptors this program had when it started (not the link's).
    pub inherited: &'a [RawFd],
}

/// What a session saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The objects with a name once the link was open (before fork).
    pub named: Vec<String>,
    /// What each side held once it had its end, by [`Role::index`].
    pub holds: [Vec<String>; 2],
    /// What each side received (check plans), by [`Role::index`].
    pub received: [Option<Received>; 2],
    /// Ping's timings (bench plans), one per size.
    pub timings: Vec<Timing>,
    /// The objects with a name still there after `remove`.
    pub left: Vec<String>,
}

/// Everything one side received in a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Messages.
    pub messages: u64,
    /// Bytes.
    pub bytes: u64,
    /// FNV-1a of all the bytes, in order.
    pub fnv1a: u64,
}

/// Ping's figures for one message size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// The message size in bytes.
    pub size: usize,
    /// Round trips timed.
    pub count: usize,
    /// Median round trip, in nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile round trip, in nanoseconds.
    pub p99_ns: u64,
    /// One-way throughput, in bytes per second.
    pub bytes_per_s: f64,
}

/// How long the supervisor waits for the second side once the first has
/// finished well: it should follow within microseconds.
const STRAGGLER: Duration = Duration::from_secs(3);

/// Bytes of the board each side may write.
const AREA_BYTES: usize = 64 * 1024;

// ANCHOR: session
/// Runs one session of `mechanism`, from `open` to `remove`.
pub fn session(mechanism: Mechanism, setup: Setup<'_>) -> anyhow::Result<Report> {
    match mechanism.name {
        "pipe" => run::<Pipes>(setup),
        "fifo" => run::<Fifos>(setup),
        "unix-stream" => run::<UnixStreams>(setup),
        "tcp" => run::<Tcp>(setup),
        "unix-dgram" => run::<Datagrams>(setup),
        "sysv-mq" => run::<SysvQueue>(setup),
        "posix-mq" => run::<PosixQueues>(setup),
        "sysv-shm" => run::<Shared<SysvSemaphores>>(setup),
        "posix-shm" => run::<Shared<Futexes>>(setup),
        "spin" => run::<Shared<Spin>>(setup),
        "eventfd" => run::<Shared<EventFds>>(setup),
        "signal" => run::<Shared<Signals>>(setup),
        other => bail!("no mechanism is called {other}"),
    }
}

/// The session of one kind of link.
fn run<L: Link>(setup: Setup<'_>) -> anyhow::Result<Report> {
    let board = Board::new()?;
    let (go_read, go_write) = pipe2(OFlag::O_CLOEXEC).context("pipe2 for the start signal")?;
    // Ctrl-C goes to the whole process group: the two sides die of it, and
    // the supervisor, with these blocked, lives on to remove the objects.
    let stop = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    sys::block_signals(&stop).context("block SIGINT, SIGTERM and SIGHUP")?;
    let result = open_and_run::<L>(setup, &board, go_read, go_write);
    // A pending Ctrl-C is delivered here, once everything is removed.
    sys::unblock_signals(&stop).context("unblock SIGINT, SIGTERM and SIGHUP")?;
    result
}

fn open_and_run<L: Link>(
    setup: Setup<'_>,
    board: &Board,
    go_read: OwnedFd,
    go_write: OwnedFd,
) -> anyhow::Result<Report> {
    let link = L::open(setup.names).context("set up")?;
    let mut report = Report {
        named: report::names_in_system(setup.names),
        ..Report::default()
    };
    // Each side takes its copy of the link as its own (`ManuallyDrop::take`
    // in the child); the supervisor keeps the original for `remove`.
    let mut link = ManuallyDrop::new(link);
    let started =
        start_side(Role::Pong, &mut link, board, &go_read, &go_write, setup).and_then(|pong| {
            start_side(Role::Ping, &mut link, board, &go_read, &go_write, setup)
                .map(|ping| [ping, pong])
                .inspect_err(|_| stop_side(pong))
        });
    let ended = started.map(|pids| {
        board.set_pids(pids);
        drop(go_write);
        drop(go_read);
        supervise(pids)
    });
    let removed = ManuallyDrop::into_inner(link).remove().context("remove");
    report.left = report::names_in_system(setup.names);
    let ended = ended?;
    for role in [Role::Ping, Role::Pong] {
        let said = board.read(role);
        if let Err(error) = report.take(role, &said) {
            bail!("{role} reported something unreadable: {error}");
        }
    }
    // A side that failed wrote why on the board, even if the supervisor
    // saw its partner end first. When both failed, one usually only
    // reports that the other went away in the middle of a message (a
    // reset, a broken pipe, an early end-of-file): blame the other.
    let mut failures = Vec::new();
    for role in [Role::Ping, Role::Pong] {
        let said = board.read(role);
        match said.lines().find_map(|line| line.strip_prefix("error: ")) {
            Some(error) => failures.push(format!("{role}: {error}")),
            None => {
                if let Some(how) = &ended[role.index()] {
                    failures.push(format!("{role} {how}"));
                }
            }
        }
    }
    if let Some(cause) = failures
        .iter()
        .find(|failure| !after_partner_left(failure))
        .or(failures.first())
    {
        bail!("{cause}");
    }
    removed?;
    if !report.left.is_empty() {
        bail!("left behind after the run: {}", report.left.join(", "));
    }
    Ok(report)
}
// ANCHOR_END: session

/// Forks the process of `role`, which never returns here.
fn start_side<L: Link>(
    role: Role,
    link: &mut ManuallyDrop<L>,
    board: &Board,
    go_read: &OwnedFd,
    go_write: &OwnedFd,
    setup: Setup<'_>,
) -> anyhow::Result<Pid> {
    // SAFETY: this program has a single thread; the child runs Rust code
    // of its own and leaves with _exit.
    match unsafe { fork() }.with_context(|| format!("fork {role}"))? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // SAFETY: the child's copy of the link is taken once, here, and
            // the child never returns to code that could use it again.
            let link = unsafe { ManuallyDrop::take(link) };
            side(role, link, board, go_read, go_write, setup)
        }
    }
}

/// Whether a side's failure only says that its partner went away: a
/// connection reset (`ECONNRESET`: the partner closed a socket it had not
/// read to the end), a broken pipe (`EPIPE`), or an end-of-file in the
/// middle of a message.
fn after_partner_left(failure: &str) -> bool {
    [
        "Connection reset by peer",
        "Broken pipe",
        "end-of-file after",
    ]
    .iter()
    .any(|symptom| failure.contains(symptom))
}

/// Kills and reaps a side that was started before something failed.
fn stop_side(pid: Pid) {
    let _ = kill(pid, Signal::SIGKILL);
    reap(pid);
}

/// The life of one side, in its own process.
fn side<L: Link>(
    role: Role,
    link: L,
    board: &Board,
    go_read: &OwnedFd,
    go_write: &OwnedFd,
    setup: Setup<'_>,
) -> ! {
    let mut said = String::new();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        play(role, link, board, go_read, go_write, setup, &mut said)
    }));
    let code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(error)) => {
            // `play` has written a failure of the plan already.
            if !said.lines().any(|line| line.starts_with("error: ")) {
                said.push_str(&format!("error: {}\n", one_line(&format!("{error:#}"))));
            }
            1
        }
        // The panic hook has printed the message on stderr already.
        Err(_) => 101,
    };
    board.write(role, &said);
    // SAFETY: _exit ends this process at once, without running the
    // supervisor's destructors (its copy of the link, the board).
    unsafe { libc::_exit(code) }
}

fn play<L: Link>(
    role: Role,
    link: L,
    board: &Board,
    go_read: &OwnedFd,
    go_write: &OwnedFd,
    setup: Setup<'_>,
    said: &mut String,
) -> anyhow::Result<()> {
    sys::unblock_signals(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
        .context("unblock SIGINT, SIGTERM and SIGHUP")?;
    wait_for_go(go_read, go_write)?;
    let peer = board.pid(role.other());
    if let Some(cpus) = setup.pin {
        let mut set = CpuSet::new();
        set.set(cpus[role.index()]).context("CPU set")?;
        sched_setaffinity(Pid::from_raw(0), &set)
            .with_context(|| format!("sched_setaffinity to CPU {}", cpus[role.index()]))?;
    }
    let mut end = link.end(role, peer)?;
    for held in report::holdings(setup.inherited, board.region.address()) {
        said.push_str(&format!("holds: {held}\n"));
    }
    let followed = follow(role, &mut end, setup.plan, said);
    if let Err(error) = &followed {
        // Say why on the board while this side's end is still open: once
        // it closes, the partner may fail at once (a reset, a broken pipe)
        // and be seen ending first, and the supervisor must find the cause
        // here.
        said.push_str(&format!("error: {}\n", one_line(&format!("{error:#}"))));
        board.write(role, said);
    }
    drop(end);
    followed
}

/// Follows `plan` on this side's end (one copy of the plans' code for
/// every kind of link), noting on `said` what was received or timed.
fn follow(role: Role, end: &mut dyn Channel, plan: &Plan, said: &mut String) -> anyhow::Result<()> {
    match plan {
        Plan::Check { seed, sizes } => {
            let received = match role {
                Role::Ping => check_ping(end, *seed, sizes)?,
                Role::Pong => check_pong(end, *seed, sizes)?,
            };
            said.push_str(&format!(
                "received: {} {} {:016x}\n",
                received.messages, received.bytes, received.fnv1a
            ));
        }
        Plan::Bench {
            sizes,
            count,
            warmup,
        } => match role {
            Role::Ping => {
                for &size in sizes {
                    let t = time_ping(end, size, *count, *warmup)?;
                    said.push_str(&format!(
                        "timing: {} {} {} {} {}\n",
                        t.size, t.count, t.p50_ns, t.p99_ns, t.bytes_per_s
                    ));
                }
            }
            Role::Pong => {
                for &size in sizes {
                    time_pong(end, size, *count, *warmup)?;
                }
            }
        },
    }
    Ok(())
}

/// Closes this side's copy of the start pipe's write end, then waits for
/// end-of-file on the read end: it comes once the supervisor, knowing both
/// pids, has closed its own copy. Then closes the read end too, so that
/// the side holds nothing but its end of the link.
fn wait_for_go(go_read: &OwnedFd, go_write: &OwnedFd) -> anyhow::Result<()> {
    // SAFETY: this process's copy of the write end, closed once here and
    // never used again (the side leaves with _exit, so it is never dropped).
    unsafe { libc::close(go_write.as_raw_fd()) };
    let mut buffer = [0; 8];
    loop {
        match read(go_read, &mut buffer) {
            Ok(0) => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => return Err(error).context("wait for the start signal"),
        }
    }
    // SAFETY: as for the write end.
    unsafe { libc::close(go_read.as_raw_fd()) };
    Ok(())
}

/// Waits for both sides. Returns, by role, how each one ended if it did
/// not end well (`None` if it did). If one fails, the other is killed.
///
/// A side that has ended is only *looked at* (`WNOWAIT`) until both have:
/// it stays a zombie, so its pid cannot be given to a new process while
/// the other side may still signal it (a last ring of a door, after the
/// last message, for a peer that has left already).
fn supervise(pids: [Pid; 2]) -> [Option<String>; 2] {
    let mut ended: [Option<String>; 2] = [None, None];
    let first = loop {
        match look(libc::P_ALL, 0, 0) {
            Ok(Some((pid, how))) => match pids.iter().position(|&p| p == pid) {
                Some(at) => break Some((at, how)),
                // Not a side: reap it, it is nobody's.
                None => reap(pid),
            },
            Ok(None) | Err(nix::errno::Errno::EINTR) => {}
            Err(error) => {
                let lost = format!("was lost: waitid: {error}");
                ended = [Some(lost.clone()), Some(lost)];
                break None;
            }
        }
    };
    match first {
        Some((first, how)) => {
            let second = 1 - first;
            let failed = how.is_some();
            ended[first] = how;
            if failed {
                // It waits for a partner that is gone: stop it, and blame
                // the first.
                let _ = kill(pids[second], Signal::SIGKILL);
            } else {
                ended[second] = finish_within(pids[second], STRAGGLER);
            }
        }
        None => {
            for pid in pids {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }
    for pid in pids {
        reap(pid);
    }
    ended
}

/// Waits up to `limit` for `pid` to end, without reaping it; kills it
/// after that.
fn finish_within(pid: Pid, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    let mut nap = Duration::from_micros(50);
    loop {
        match look(libc::P_PID, pid.as_raw() as libc::id_t, libc::WNOHANG) {
            Ok(Some((_, how))) => return how,
            Ok(None) | Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Some(format!("was lost: waitid: {error}")),
        }
        if Instant::now() >= deadline {
            let _ = kill(pid, Signal::SIGKILL);
            return Some(format!(
                "did not finish within {} s of the other side",
                limit.as_secs()
            ));
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// `waitid(idtype, id, WEXITED | WNOWAIT | flags)`: the child that has
/// ended, if any (`None` with `WNOHANG` when none has), and how it ended
/// (`None` if it exited with 0), without reaping it. (nix's `waitid` cannot
/// say that a child was killed by a real-time signal: its `Signal` type
/// has none.)
fn look(
    idtype: libc::idtype_t,
    id: libc::id_t,
    flags: libc::c_int,
) -> Result<Option<(Pid, Option<String>)>, nix::errno::Errno> {
    // SAFETY: siginfo_t is plain data that waitid fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let options = libc::WEXITED | libc::WNOWAIT | flags;
    // SAFETY: waitid writes one siginfo_t.
    if unsafe { libc::waitid(idtype, id, &mut info, options) } == -1 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: for a child's state change, si_pid and si_status are set.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let how = match info.si_code {
        libc::CLD_EXITED if status == 0 => None,
        libc::CLD_EXITED if status == 101 => Some("panicked (exit status 101)".to_string()),
        libc::CLD_EXITED => Some(format!("ended with exit status {status}")),
        _ => Some(format!(
            "was killed by signal {status} ({})",
            signal_name(status)
        )),
    };
    Ok(Some((Pid::from_raw(pid), how)))
}

/// Reaps `pid` (`waitpid`), whatever its status.
fn reap(pid: Pid) {
    let mut status = 0;
    // SAFETY: waitpid writes one int.
    while unsafe { libc::waitpid(pid.as_raw(), &mut status, 0) } == -1
        && nix::errno::Errno::last() == nix::errno::Errno::EINTR
    {}
}

/// `SIGKILL`, or `SIGRTMIN+2` for a real-time signal.
pub fn signal_name(signal: i32) -> String {
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal) {
        return match signal - libc::SIGRTMIN() {
            0 => "SIGRTMIN".to_string(),
            n => format!("SIGRTMIN+{n}"),
        };
    }
    Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// `text` on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Report {
    /// Takes what `role` wrote on the board.
    fn take(&mut self, role: Role, said: &str) -> anyhow::Result<()> {
        for line in said.lines() {
            let (what, rest) = line.split_once(": ").unwrap_or((line, ""));
            match what {
                "holds" => self.holds[role.index()].push(rest.to_string()),
                "received" => self.received[role.index()] = Some(parse_received(rest)?),
                "timing" => self.timings.push(parse_timing(rest)?),
                "error" => {}
                _ => bail!("{line:?}"),
            }
        }
        Ok(())
    }
}

fn parse_received(text: &str) -> anyhow::Result<Received> {
    let words: Vec<&str> = text.split(' ').collect();
    let [messages, bytes, fnv1a] = words.as_slice() else {
        bail!("{text:?}");
    };
    Ok(Received {
        messages: messages.parse()?,
        bytes: bytes.parse()?,
        fnv1a: u64::from_str_radix(fnv1a, 16)?,
    })
}

pub(crate) fn parse_timing(text: &str) -> anyhow::Result<Timing> {
    let words: Vec<&str> = text.split(' ').collect();
    let [size, count, p50, p99, rate] = words.as_slice() else {
        bail!("{text:?}");
    };
    Ok(Timing {
        size: size.parse()?,
        count: count.parse()?,
        p50_ns: p50.parse()?,
        p99_ns: p99.parse()?,
        bytes_per_s: rate.parse()?,
    })
}

// ANCHOR: board
/// A small anonymous shared mapping, made before the fork: the
/// supervisor writes the two pids in its counters, and each side writes
/// its report in an area of its own, which the supervisor reads after the
/// side has ended.
struct Board {
    region: Region,
}

impl Board {
    fn new() -> anyhow::Result<Board> {
        let region = Region::anonymous(HEADER_BYTES + 2 * AREA_BYTES)
            .context("mmap the board (MAP_SHARED | MAP_ANONYMOUS)")?;
        Ok(Board { region })
    }

    fn set_pids(&self, pids: [Pid; 2]) {
        for (at, pid) in pids.iter().enumerate() {
            self.region
                .counter(at)
                .store(pid.as_raw() as u32, Ordering::Release);
        }
    }

    fn pid(&self, role: Role) -> Pid {
        Pid::from_raw(self.region.counter(role.index()).load(Ordering::Acquire) as i32)
    }

    /// Writes `text` (cut to fit) in `role`'s area: its length, then it.
    fn write(&self, role: Role, text: &str) {
        let text = &text.as_bytes()[..text.len().min(AREA_BYTES - 8)];
        let at = HEADER_BYTES + role.index() * AREA_BYTES;
        // SAFETY: only `role`'s process writes its area, and the
        // supervisor reads it only after that process has ended.
        unsafe {
            self.region.copy_in(at, &(text.len() as u64).to_le_bytes());
            self.region.copy_in(at + 8, text);
        }
    }

    /// What `role` wrote, once it has ended.
    fn read(&self, role: Role) -> String {
        let at = HEADER_BYTES + role.index() * AREA_BYTES;
        let mut len = [0; 8];
        // SAFETY: `role`'s process has ended (see `write`).
        unsafe { self.region.copy_out(at, &mut len) };
        let len = (u64::from_le_bytes(len) as usize).min(AREA_BYTES - 8);
        let mut text = vec![0; len];
        // SAFETY: as above.
        unsafe { self.region.copy_out(at + 8, &mut text) };
        String::from_utf8_lossy(&text).into_owned()
    }
}
// ANCHOR_END: board

// ANCHOR: contents
/// Fills `buffer` with message `index` of the run seeded by `seed`:
/// little-endian 64-bit words of the splitmix64 sequence that starts at
/// `seed ^ (index × 0xD1B54A32D192ED03)`, the last one cut to fit.
pub fn fill(seed: u64, index: u64, buffer: &mut [u8]) {
    let mut state = seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for word in buffer.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        word.copy_from_slice(&z.to_le_bytes()[..word.len()]);
    }
}

/// Continues the 64-bit FNV-1a hash `hash` over `bytes` (start from
/// [`FNV_START`]).
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The FNV-1a hash of no bytes.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;
// ANCHOR_END: contents

/// Fails unless `got` is message `index` of `seed`: which byte differs.
fn expect_message(seed: u64, index: u64, got: &[u8], from: Role) -> anyhow::Result<()> {
    let mut expected = vec![0; got.len()];
    fill(seed, index, &mut expected);
    if let Some(at) = got.iter().zip(&expected).position(|(a, b)| a != b) {
        bail!(
            "message {} from {from} ({} bytes) differs at byte {at}: {:#04x}, not {:#04x}",
            index / 2 + 1,
            got.len(),
            got[at],
            expected[at]
        );
    }
    Ok(())
}

// ANCHOR: check
/// Ping's side of a check: send message 2k, receive 2k + 1, check it.
fn check_ping(end: &mut dyn Channel, seed: u64, sizes: &[usize]) -> anyhow::Result<Received> {
    let mut received = Received {
        messages: 0,
        bytes: 0,
        fnv1a: FNV_START,
    };
    for (k, &size) in sizes.iter().enumerate() {
        let mut message = vec![0; size];
        fill(seed, 2 * k as u64, &mut message);
        end.send(&message)
            .with_context(|| format!("send message {} ({size} bytes)", k + 1))?;
        end.recv(&mut message)
            .with_context(|| format!("receive answer {} ({size} bytes)", k + 1))?;
        expect_message(seed, 2 * k as u64 + 1, &message, Role::Pong)?;
        received.add(&message);
    }
    Ok(received)
}

/// Pong's side of a check: receive message 2k, check it, answer 2k + 1.
fn check_pong(end: &mut dyn Channel, seed: u64, sizes: &[usize]) -> anyhow::Result<Received> {
    let mut received = Received {
        messages: 0,
        bytes: 0,
        fnv1a: FNV_START,
    };
    for (k, &size) in sizes.iter().enumerate() {
        let mut message = vec![0; size];
        end.recv(&mut message)
            .with_context(|| format!("receive message {} ({size} bytes)", k + 1))?;
        expect_message(seed, 2 * k as u64, &message, Role::Ping)?;
        received.add(&message);
        fill(seed, 2 * k as u64 + 1, &mut message);
        end.send(&message)
            .with_context(|| format!("send answer {} ({size} bytes)", k + 1))?;
    }
    Ok(received)
}
// ANCHOR_END: check

impl Received {
    fn add(&mut self, message: &[u8]) {
        self.messages += 1;
        self.bytes += message.len() as u64;
        self.fnv1a = fnv1a(self.fnv1a, message);
    }
}

// ANCHOR: timing
/// Ping's side of a bench, for one size: warm up, time `count` round trips
/// one by one, then time `count` messages sent one way (and pong's 1-byte
/// answer, which says they have all arrived).
fn time_ping(
    end: &mut dyn Channel,
    size: usize,
    count: usize,
    warmup: usize,
) -> anyhow::Result<Timing> {
    let mut message = vec![0xA5; size];
    let mut answer = vec![0; size];
    for _ in 0..warmup {
        end.send(&message)?;
        end.recv(&mut answer)?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        end.send(&message)?;
        end.recv(&mut answer)?;
        samples.push(start.elapsed().as_nanos() as u64);
    }
    let mut ack = [0; 1];
    let start = Instant::now();
    for at in 0..count {
        message[0] = at as u8;
        end.send(&message)?;
    }
    end.recv(&mut ack)?;
    let seconds = start.elapsed().as_secs_f64();
    samples.sort_unstable();
    Ok(Timing {
        size,
        count,
        p50_ns: percentile(&samples, 50),
        p99_ns: percentile(&samples, 99),
        bytes_per_s: (count * size) as f64 / seconds,
    })
}

/// Pong's side of a bench, for one size: answer every round trip, take
/// every one-way message, then answer with one byte.
fn time_pong(
    end: &mut dyn Channel,
    size: usize,
    count: usize,
    warmup: usize,
) -> anyhow::Result<()> {
    let mut message = vec![0; size];
    for _ in 0..warmup + count {
        end.recv(&mut message)?;
        end.send(&message)?;
    }
    for _ in 0..count {
        end.recv(&mut message)?;
    }
    end.send(&[1])
}

/// The `p`-th percentile of `sorted` by the nearest-rank method: the
/// smallest sample that at least `p`% of the samples do not exceed.
pub fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}
// ANCHOR_END: timing
