//! # Lab 11: signals (信号) — reference solution
//!
//! The same functions as `labs/11-signals/src/lib.rs`, done. Read it after
//! you have written your own: compare the order in which each function
//! blocks, installs and unblocks, what every handler does (and what it
//! does not dare to do), and how the supervisor's loop reaps every child
//! whatever one `SIGCHLD` stands for.

use std::collections::BTreeMap;
use std::ffi::{CString, c_int, c_void};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::wait::WaitPidFlag;
use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};
use nix::unistd::{ForkResult, Pid, execvp, fork, pipe2};

use self::sig::{Action, ChildStatus, Info, Sig, SigMask, SignalLog, sigaction};

#[path = "../../../labs/11-signals/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/11-signals/src/report.rs"]
pub mod report;
#[path = "../../../labs/11-signals/src/sig.rs"]
pub mod sig;

// ANCHOR: names
/// Reads a signal the way `kill -s` and `kill -l` write one, and returns
/// it, or a message for the command line (clap prints it as a usage
/// error, exit status 2).
///
/// Accepted, in any case, with or without a `SIG` prefix:
///
/// * a standard signal's name: `TERM`, `SIGHUP`, `usr1` (nix's
///   `Signal::from_str` knows them as `"SIGTERM"` …), and the aliases
///   `IOT` (`SIGABRT`), `CLD` (`SIGCHLD`) and `POLL` (`SIGIO`);
/// * `RTMIN`, `RTMIN+n`, `RTMAX`, `RTMAX-n`: real-time signals counted
///   from [`Sig::rtmin`] and [`Sig::rtmax`], never from fixed numbers
///   (glibc's `SIGRTMIN` is 34, the kernel's 32: the C library keeps two
///   for its threads);
/// * a number (`15`, `36`).
///
/// Anything else, or a number or `RTMIN+n` that [`Sig::new`] refuses, is
/// an error that quotes the text: `unknown signal "FOO"`.
pub fn parse_signal(text: &str) -> Result<Sig, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let number = if let Ok(number) = name.parse::<c_int>() {
        Some(number)
    } else if let Some(offset) = name.strip_prefix("RTMIN") {
        realtime_offset(offset, '+').map(|n| Sig::rtmin() + n)
    } else if let Some(offset) = name.strip_prefix("RTMAX") {
        realtime_offset(offset, '-').map(|n| Sig::rtmax() - n)
    } else {
        let canonical = match name {
            "IOT" => "ABRT",
            "CLD" => "CHLD",
            "POLL" => "IO",
            other => other,
        };
        Signal::from_str(&format!("SIG{canonical}"))
            .ok()
            .map(|signal| signal as c_int)
    };
    number
        .and_then(Sig::new)
        .ok_or_else(|| format!("unknown signal {text:?}"))
}

/// The `n` of `RTMIN+n` (or `RTMAX-n`): `""` is 0, else `sign` and digits.
fn realtime_offset(offset: &str, sign: char) -> Option<c_int> {
    if offset.is_empty() {
        return Some(0);
    }
    offset.strip_prefix(sign)?.parse::<c_int>().ok()
}

/// The conventional name of a signal, as bash's `kill -l NUMBER` prints it
/// with `SIG` in front: `SIGTERM`; for real-time signals `SIGRTMIN`,
/// `SIGRTMIN+1` … `SIGRTMIN+15`, then `SIGRTMAX-14` … `SIGRTMAX-1`,
/// `SIGRTMAX` (the lower half counted up from `SIGRTMIN`, the upper half
/// down from `SIGRTMAX`).
pub fn signal_name(signal: Sig) -> String {
    if let Some(standard) = signal.standard() {
        return standard.as_str().to_string();
    }
    let (number, min, max) = (signal.number(), Sig::rtmin(), Sig::rtmax());
    let middle = min + (max - min) / 2;
    match number {
        _ if number == min => "SIGRTMIN".to_string(),
        _ if number == max => "SIGRTMAX".to_string(),
        _ if number <= middle => format!("SIGRTMIN+{}", number - min),
        _ => format!("SIGRTMAX-{}", max - number),
    }
}
// ANCHOR_END: names

// ANCHOR: send
/// Sends `signal` to each process of `pids`, in order, with `kill(2)`
/// ([`sig::kill`]); `None` is the null signal 0, which checks that the
/// process exists and that you may signal it, and sends nothing.
///
/// Stops at the first failure, with the context `kill PID SIGNAL` (the
/// signal as [`signal_name`] writes it, or `0`): `ESRCH` if no process
/// has that pid, `EPERM` if it belongs to another user (only root, or a
/// process with `CAP_KILL`, may signal anyone's).
pub fn send(signal: Option<Sig>, pids: &[Pid]) -> anyhow::Result<()> {
    let name = signal.map_or_else(|| "0".to_string(), signal_name);
    for &pid in pids {
        sig::kill(pid, signal).with_context(|| format!("kill {pid} {name}"))?;
    }
    Ok(())
}

/// Sends `signal` to `pid` once per value of `values`, in order, each
/// carrying its value, with `sigqueue(3)` ([`sig::sigqueue`]). Errors as
/// [`send`], with the context `sigqueue PID SIGNAL VALUE`.
pub fn queue(signal: Sig, pid: Pid, values: &[i32]) -> anyhow::Result<()> {
    for &value in values {
        sig::sigqueue(pid, signal, value)
            .with_context(|| format!("sigqueue {pid} {} {value}", signal_name(signal)))?;
    }
    Ok(())
}

/// Sends `signal` to this process and lets its **default action** happen:
/// the process dies of it (its parent's `waitpid` sees "killed by signal",
/// a shell shows `$?` = 128 + its number), or, for the signals whose
/// default is to ignore (`SIGCHLD`, `SIGURG`, `SIGWINCH`), this returns.
///
/// The disposition this process started with may not be the default: Rust
/// ignores `SIGPIPE` before `main`, and an ignored signal stays ignored
/// across `exec` (`trap '' USR1` in a shell, then run this). So first set
/// `SIG_DFL` with [`sig::sigaction`], and unblock the signal (a blocked mask
/// is inherited too); then [`sig::raise`]. `SIGKILL`'s action cannot be
/// changed (`sigaction` fails with `EINVAL`) and is always the default:
/// skip the first step for it.
pub fn raise_default(signal: Sig) -> anyhow::Result<()> {
    let name = signal_name(signal);
    if signal != Sig::from(Signal::SIGKILL) {
        // SAFETY: SIG_DFL runs no code of ours.
        unsafe { sigaction(signal, Action::Default, SaFlags::empty(), &SigMask::empty()) }
            .with_context(|| format!("sigaction {name} SIG_DFL"))?;
    }
    SigMask::of(&[signal])
        .unblock()
        .with_context(|| format!("unblock {name}"))?;
    sig::raise(signal).with_context(|| format!("raise {name}"))
}

/// What [`raise_caught_once`]'s handler writes: one line, with `write(2)`.
pub const CAUGHT_ONCE: &str = "handler: caught it, and SA_RESETHAND put back the default action\n";

/// Catches `signal` once, then lets the second one do what it does by
/// default: the pattern of a program that cleans up on the first Ctrl-C
/// and dies of the second.
///
/// Install a handler with `SA_RESETHAND`: the kernel puts the disposition
/// back to `SIG_DFL` as it starts the handler. The handler writes
/// [`CAUGHT_ONCE`] to standard output with `write(2)` (not `println!`,
/// which locks and may allocate). Unblock the signal, then raise it twice:
/// the first runs the handler, the second the default action, and the
/// process dies of it; or, for a signal ignored by default, this returns.
pub fn raise_caught_once(signal: Sig) -> anyhow::Result<()> {
    let name = signal_name(signal);
    // SAFETY: the handler calls write(2) only, and restores errno.
    unsafe {
        sigaction(
            signal,
            Action::Handler(write_caught_once),
            SaFlags::SA_RESETHAND,
            &SigMask::empty(),
        )
    }
    .with_context(|| format!("sigaction {name}"))?;
    SigMask::of(&[signal])
        .unblock()
        .with_context(|| format!("unblock {name}"))?;
    sig::raise(signal).with_context(|| format!("raise {name}"))?;
    sig::raise(signal).with_context(|| format!("raise {name} again"))
}
// ANCHOR_END: send

/// The `SA_RESETHAND` handler of [`raise_caught_once`].
extern "C" fn write_caught_once(_signal: c_int) {
    write_from_handler(libc::STDOUT_FILENO, CAUGHT_ONCE.as_bytes());
}

/// `write(2)` from a signal handler: the one output call that is
/// async-signal-safe. `errno` is saved and restored, so that the code the
/// handler interrupted finds its own. A short or failed write is dropped:
/// a handler has nobody to report it to.
fn write_from_handler(fd: c_int, bytes: &[u8]) {
    let saved = Errno::last_raw();
    // SAFETY: write(2) with a valid buffer and its length.
    unsafe { libc::write(fd, bytes.as_ptr().cast::<c_void>(), bytes.len()) };
    Errno::set_raw(saved);
}

// ANCHOR: count
/// What [`count`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The pending signals (`sigpending`) once the stop signal came,
    /// before the counted one was unblocked.
    pub pending: Vec<Sig>,
    /// Every delivery of the counted signal, in the order the handler ran.
    pub delivered: Vec<Info>,
}

/// The signal that ends a [`count`]: `kill -TERM PID` when you are done.
pub const STOP: Signal = Signal::SIGTERM;

/// Counts the deliveries of `signal`, and shows that blocked standard
/// signals do not queue while real-time ones do.
///
/// 1. Block `signal` and [`STOP`] (`SigMask::block`), keeping the mask as
///    it was before.
/// 2. Install an `SA_SIGINFO` handler for `signal` that records its
///    [`Info`] (who sent it, with which call, which value) in a static
///    [`sig::SignalLog`], and a handler for `STOP` that sets a static
///    `AtomicBool`. Both only touch atomics: they are async-signal-safe.
/// 3. Call `ready()` (the command line prints that it is ready). Every
///    `signal` sent from now on stays pending.
/// 4. Wait for `STOP` without a race: while the flag is not set,
///    `sigsuspend` on the mask you had before plus `signal`. That lets
///    `STOP` in and keeps `signal` out, and it unblocks and sleeps in one
///    step, so a `STOP` that comes between your check of the flag and the
///    sleep is not lost (it is blocked until the sleep begins). Checking
///    the flag, unblocking, then `pause()` would lose it.
/// 5. Record `SigMask::pending()`: `signal` is there if any was sent.
/// 6. Unblock `signal`. Every pending instance is delivered before the
///    call returns: one for a standard signal however many were sent,
///    one per `kill` or `sigqueue` for a real-time signal, in order.
///
/// Errors: `sigaction` fails with `EINVAL` for `SIGKILL` and `SIGSTOP`,
/// which no handler may catch; give it the context `sigaction SIGNAL`.
pub fn count(signal: Sig, ready: impl FnOnce()) -> anyhow::Result<Counted> {
    let name = signal_name(signal);
    let stop = Sig::from(STOP);
    let before = SigMask::of(&[signal, stop])
        .block()
        .context("block the signals")?;
    // SAFETY: both handlers store into atomics only.
    unsafe {
        sigaction(
            signal,
            Action::InfoHandler(record),
            SaFlags::empty(),
            &SigMask::empty(),
        )
        .with_context(|| format!("sigaction {name}"))?;
        sigaction(
            stop,
            Action::Handler(ask_to_stop),
            SaFlags::empty(),
            &SigMask::empty(),
        )
        .context("sigaction SIGTERM")?;
    }
    ready();
    let mut waiting = before;
    waiting.add(signal);
    waiting.remove(stop);
    while !STOP_ASKED.load(Ordering::SeqCst) {
        waiting.suspend();
    }
    let pending = SigMask::pending().context("sigpending")?.signals();
    SigMask::of(&[signal])
        .unblock()
        .with_context(|| format!("unblock {name}"))?;
    Ok(Counted {
        pending,
        delivered: COUNTED.entries(),
    })
}
// ANCHOR_END: count

/// Every delivery [`count`] saw.
static COUNTED: SignalLog = SignalLog::new();

/// Set by the [`STOP`] handler of [`count`].
static STOP_ASKED: AtomicBool = AtomicBool::new(false);

/// The `SA_SIGINFO` handler of [`count`]: records who sent what.
extern "C" fn record(_signal: c_int, info: *mut libc::siginfo_t, _context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    COUNTED.record(unsafe { Info::from_siginfo(info) });
}

/// The [`STOP`] handler of [`count`].
extern "C" fn ask_to_stop(_signal: c_int) {
    STOP_ASKED.store(true, Ordering::SeqCst);
}

// ANCHOR: interrupt
/// The blocking call [`interrupt`] makes, and what it waits on.
#[derive(Debug)]
pub enum Call {
    /// `read(2)` from a FIFO that a writer holds open but never writes to:
    /// a slow device, restarted after a handler with `SA_RESTART`.
    Read(File),
    /// `poll(2)` on the same kind of FIFO, with no timeout: never
    /// restarted.
    Poll(File),
    /// `clock_nanosleep(2)` for this long: never restarted.
    Sleep(Duration),
}

/// How the blocking call of [`interrupt`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It failed with `EINTR`: a handler ran and the call was not
    /// restarted.
    Interrupted,
    /// `read` returned this many bytes (0: end-of-file).
    Read(usize),
    /// `poll` reported the FIFO readable, or the sleep ran its full time.
    Completed,
}

/// What [`interrupt`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interruption {
    /// How the call ended.
    pub outcome: Outcome,
    /// How many times the handler had run by then.
    pub handler_runs: usize,
}

/// What [`interrupt`]'s handler writes, each time it runs, with `write(2)`.
pub const HANDLER_RAN: &str = "handler ran\n";

/// Makes one blocking call and reports how a signal handler changed it:
/// `EINTR`, or a call the kernel restarted by itself.
///
/// Install a handler for `signal` that counts its runs in a static atomic
/// and writes [`HANDLER_RAN`] to standard output with `write(2)`, saving
/// and restoring `errno`; with `SA_RESTART` in its flags if `restart`.
/// Call `ready()`, then make the call once, never retrying it:
///
/// * `Read`: `read(2)` into a buffer (nix's `unistd::read`: `Read::read`
///   of std would do, but say which errno you got);
/// * `Poll`: `poll(2)` for `POLLIN` with no timeout (`PollTimeout::NONE`);
/// * `Sleep`: `clock_nanosleep(CLOCK_MONOTONIC)` (`std::thread::sleep`
///   will not do: it restarts itself after `EINTR`).
///
/// `Err(EINTR)` is the [`Outcome::Interrupted`] answer, not an error; any
/// other errno is, with the call's name as its context. Per signal(7),
/// `read` on a pipe or FIFO is restarted when the handler has
/// `SA_RESTART`; `poll` and the sleeps never are.
pub fn interrupt(
    call: Call,
    signal: Sig,
    restart: bool,
    ready: impl FnOnce(),
) -> anyhow::Result<Interruption> {
    let flags = if restart {
        SaFlags::SA_RESTART
    } else {
        SaFlags::empty()
    };
    // SAFETY: the handler uses an atomic and write(2) only.
    unsafe {
        sigaction(
            signal,
            Action::Handler(count_and_say),
            flags,
            &SigMask::empty(),
        )
    }
    .with_context(|| format!("sigaction {}", signal_name(signal)))?;
    ready();
    let outcome = match call {
        Call::Read(fifo) => read_once(&fifo)?,
        Call::Poll(fifo) => poll_once(&fifo)?,
        Call::Sleep(duration) => sleep_once(duration)?,
    };
    Ok(Interruption {
        outcome,
        handler_runs: HANDLER_RUNS.load(Ordering::SeqCst),
    })
}
// ANCHOR_END: interrupt

/// How many times [`count_and_say`] ran.
static HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);

/// The handler of [`interrupt`].
extern "C" fn count_and_say(_signal: c_int) {
    HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
    write_from_handler(libc::STDOUT_FILENO, HANDLER_RAN.as_bytes());
}

/// One `read`, never retried.
fn read_once(fifo: &File) -> anyhow::Result<Outcome> {
    let mut buffer = [0u8; 4096];
    match nix::unistd::read(fifo, &mut buffer) {
        Ok(bytes) => Ok(Outcome::Read(bytes)),
        Err(Errno::EINTR) => Ok(Outcome::Interrupted),
        Err(errno) => Err(errno).context("read"),
    }
}

/// One `poll` with no timeout, never retried.
fn poll_once(fifo: &File) -> anyhow::Result<Outcome> {
    let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) => Ok(Outcome::Completed),
        Err(Errno::EINTR) => Ok(Outcome::Interrupted),
        Err(errno) => Err(errno).context("poll"),
    }
}

/// One `clock_nanosleep`, never retried.
fn sleep_once(duration: Duration) -> anyhow::Result<Outcome> {
    let request = TimeSpec::from_duration(duration);
    match clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::empty(),
        &request,
    ) {
        Ok(_) => Ok(Outcome::Completed),
        Err(Errno::EINTR) => Ok(Outcome::Interrupted),
        Err(errno) => Err(errno).context("clock_nanosleep"),
    }
}

// ANCHOR: events
/// Where [`Events`] reads its signals from.
#[derive(Debug)]
pub enum Source {
    /// A signalfd: the signals are blocked, and the kernel hands each
    /// pending one to a `read` of this descriptor, `siginfo` included.
    SignalFd(SignalFd),
    /// A self-pipe: a handler writes each signal's number, one byte, into
    /// `write_end`; the program reads them from `read_end`.
    SelfPipe {
        /// The end the program reads, blocking.
        read_end: File,
        /// The end the handlers write to, non-blocking.
        write_end: OwnedFd,
    },
}

/// Signals turned into something a program reads, one at a time, in its
/// main loop: the handler does nothing that could go wrong, the program
/// does the work at a point of its choosing.
#[derive(Debug)]
pub struct Events {
    /// Where the signals come from.
    pub source: Source,
    /// The signal mask this thread had before [`Events::signalfd`] or
    /// [`Events::self_pipe`]: what a child must get back before it execs.
    pub mask_before: SigMask,
}

impl Events {
    /// Turns `signals` into events read from a signalfd.
    ///
    /// 1. Block `signals` ([`SigMask::block`]): a signalfd only reports
    ///    signals that are pending, and a signal that is not blocked is
    ///    delivered (or kills the process) instead of waiting there.
    ///    Keep the mask from before in `mask_before`.
    /// 2. If `signals` holds `SIGCHLD`, set `SA_NOCLDSTOP` on its default
    ///    action ([`sig::sigaction`] with [`sig::Action::Default`]): children that
    ///    stop or continue then send no `SIGCHLD`, only children that end.
    /// 3. `SignalFd::with_flags(&mask.to_sigset(), SfdFlags::SFD_CLOEXEC)`:
    ///    close-on-exec, so that no program a child execs inherits it.
    pub fn signalfd(signals: &[Sig]) -> anyhow::Result<Events> {
        let set = SigMask::of(signals);
        let mask_before = set.block().context("block the signals")?;
        let child = Sig::from(Signal::SIGCHLD);
        if set.contains(child) {
            // SAFETY: SIG_DFL runs no code of ours.
            unsafe {
                sigaction(
                    child,
                    Action::Default,
                    SaFlags::SA_NOCLDSTOP,
                    &SigMask::empty(),
                )
            }
            .context("sigaction SIGCHLD SA_NOCLDSTOP")?;
        }
        let fd =
            SignalFd::with_flags(&set.to_sigset(), SfdFlags::SFD_CLOEXEC).context("signalfd")?;
        Ok(Events {
            source: Source::SignalFd(fd),
            mask_before,
        })
    }

    /// Turns `signals` into events read from a self-pipe.
    ///
    /// 1. `pipe2(O_CLOEXEC)`; make the write end non-blocking
    ///    (`fcntl(F_SETFL, O_NONBLOCK)`): a handler that found the pipe
    ///    full would otherwise block for ever, in the one process that
    ///    could empty it. The read end stays blocking.
    /// 2. Store the write end's descriptor in a static `AtomicI32`, where
    ///    the handler finds it, before any handler can run.
    /// 3. Install one handler for every signal of `signals`, with
    ///    `SA_RESTART` (the main loop's `read` of the pipe is restarted
    ///    instead of failing with `EINTR`) and `SA_NOCLDSTOP` (see
    ///    [`Events::signalfd`]; it only matters for `SIGCHLD`), and with
    ///    all of `signals` in its mask, so that handlers run one at a time
    ///    and write in the order the signals are delivered. The handler
    ///    saves `errno`, writes the signal's number as one byte, ignores a
    ///    full pipe (`EAGAIN`: wake-ups are waiting already), and restores
    ///    `errno`. Nothing else: it runs at any moment.
    ///
    /// `mask_before` is the mask as it is (nothing is blocked here).
    pub fn self_pipe(signals: &[Sig]) -> anyhow::Result<Events> {
        let mask_before = SigMask::current().context("pthread_sigmask")?;
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
        fcntl(&write_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .context("fcntl(F_SETFL, O_NONBLOCK)")?;
        SELF_PIPE.store(write_end.as_raw_fd(), Ordering::SeqCst);
        let one_at_a_time = SigMask::of(signals);
        let flags = SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP;
        for &signal in signals {
            // SAFETY: the handler calls write(2) only, and restores errno.
            unsafe {
                sigaction(
                    signal,
                    Action::Handler(write_signal_number),
                    flags,
                    &one_at_a_time,
                )
            }
            .with_context(|| format!("sigaction {}", signal_name(signal)))?;
        }
        Ok(Events {
            source: Source::SelfPipe {
                read_end: File::from(read_end),
                write_end,
            },
            mask_before,
        })
    }

    /// Waits for the next signal and returns it: from a signalfd, with
    /// everything `read` returned ([`Info::from_signalfd`]); from a
    /// self-pipe, the byte's signal number alone (the rest of the
    /// [`Info`] is 0). Retries a `read` that fails with `EINTR`; a
    /// self-pipe at end-of-file is an error.
    pub fn next_signal(&mut self) -> anyhow::Result<Info> {
        match &mut self.source {
            Source::SignalFd(fd) => loop {
                match fd.read_signal() {
                    Ok(Some(info)) => return Ok(Info::from_signalfd(&info)),
                    Ok(None) | Err(Errno::EINTR) => continue,
                    Err(errno) => return Err(errno).context("read the signalfd"),
                }
            },
            Source::SelfPipe { read_end, .. } => {
                let mut byte = [0u8; 1];
                read_end
                    .read_exact(&mut byte)
                    .context("read the self-pipe")?;
                Ok(Info {
                    signo: c_int::from(byte[0]),
                    code: 0,
                    pid: 0,
                    uid: 0,
                    value: 0,
                })
            }
        }
    }
}
// ANCHOR_END: events

/// The self-pipe's write end, for [`write_signal_number`].
static SELF_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The self-pipe's handler: one byte, the signal's number.
extern "C" fn write_signal_number(signal: c_int) {
    let byte = [signal as u8];
    write_from_handler(SELF_PIPE.load(Ordering::SeqCst), &byte);
}

// ANCHOR: config
/// The most workers a configuration may ask for.
pub const MAX_WORKERS: usize = 32;

/// What the supervisor reads from its configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How many workers to keep running.
    pub workers: usize,
}

/// Reads a configuration file. It has one setting per line, `workers = N`
/// with N from 1 to [`MAX_WORKERS`]; blank lines and `#` comments (to the
/// end of a line) are allowed:
///
/// ```text
/// # how many copies of the command to keep running
/// workers = 3
/// ```
///
/// Errors say where and what: `read CONFIG: No such file …` (the
/// `io::Error` with the context `read PATH`); `CONFIG: line 2: workers
/// must be a number from 1 to 32, not "0"`; `CONFIG: line 1: unknown
/// setting "threads"`; `CONFIG: line 1: expected "workers = N"`;
/// `CONFIG: no "workers = N" line`.
pub fn read_config(path: &Path) -> anyhow::Result<Config> {
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut workers = None;
    for (index, line) in text.lines().enumerate() {
        let setting = line.split('#').next().unwrap_or_default().trim();
        if setting.is_empty() {
            continue;
        }
        let at = format!("{}: line {}", path.display(), index + 1);
        let Some((key, value)) = setting.split_once('=') else {
            bail!("{at}: expected \"workers = N\"");
        };
        match key.trim() {
            "workers" => workers = Some(worker_count(value.trim()).context(at)?),
            other => bail!("{at}: unknown setting {other:?}"),
        }
    }
    let workers =
        workers.with_context(|| format!("{}: no \"workers = N\" line", path.display()))?;
    Ok(Config { workers })
}
// ANCHOR_END: config

/// The `N` of `workers = N`.
fn worker_count(value: &str) -> anyhow::Result<usize> {
    match value.parse::<usize>() {
        Ok(count) if (1..=MAX_WORKERS).contains(&count) => Ok(count),
        _ => bail!("workers must be a number from 1 to {MAX_WORKERS}, not {value:?}"),
    }
}

// ANCHOR: supervise
/// Keeps `config.workers` copies of `command` running, restarts any that
/// dies, reloads the configuration on `SIGHUP`, and stops them all on
/// `SIGTERM` or `SIGINT`. Prints what happens with the [`report`]
/// functions, and never leaves a child unreaped.
///
/// 1. **Events first**, before any child exists: [`Events::signalfd`] or
///    [`Events::self_pipe`] (by `via`) for `SIGCHLD`, `SIGHUP`,
///    `SIGINT` and `SIGTERM`. A `SIGCHLD` that came before would be lost.
/// 2. [`read_config`] (an error ends the command: nothing was started),
///    then start workers 1 to N and [`report::supervising`].
/// 3. **Start a worker** (slot `k`): block the four signals around the
///    `fork` (with a self-pipe, the child would run the inherited handlers
///    until it execs, and a `SIGTERM` meant for the worker would only
///    write a byte into the supervisor's pipe). The child sets the four
///    signals and `SIGPIPE` (ignored in every Rust program, and an ignored
///    signal stays ignored across exec) to `SIG_DFL`, puts back
///    `events.mask_before` (a signal mask is inherited across fork *and*
///    exec: a `sleep` started with `SIGTERM` blocked would never die of
///    it), then calls `execvp`; if that fails, `_exit(127)`. The parent
///    puts its own mask back, records slot → pid and calls
///    [`report::started`].
/// 4. **Loop** on [`Events::next_signal`]:
///    * `SIGCHLD`: reap with `waitpid(-1, WNOHANG)` ([`sig::waitpid`]) in
///      a loop until it reports nothing (`Ok(None)`) or `ECHILD`: one
///      `SIGCHLD` may stand for many children (standard signals do not
///      queue), and one `waitpid` reaps one. For each pid: a worker the
///      supervisor stopped is [`report::stopped`]; a worker that died is
///      [`report::died`] and started again in the same slot, except that
///      one that exited with status 127 (its command could not run) ends
///      the supervisor with an error, `worker K could not run COMMAND`,
///      after stopping the others (a command that cannot run would be
///      restarted for ever).
///    * `SIGHUP`: [`read_config`] again. On an error, [`report::reload_failed`]
///      and keep everything as it is. Else [`report::reloaded`], start the
///      slots that are new, and send `SIGTERM` to the workers of the slots
///      above the new count, highest first: they are stopping, not dead,
///      and must not be restarted when their `SIGCHLD` comes.
///    * `SIGINT`, `SIGTERM`: leave the loop.
/// 5. **Stop**: [`report::stopping`] with the number of workers still
///    running (stopping ones included), `SIGTERM` to each that has not had
///    it, then a blocking `waitpid(pid, 0)` for each, in slot order (so the
///    report reads the same every time), [`report::stopped`] for each;
///    finally [`report::all_stopped`] and `Ok(())`.
///
/// Errors carry the call and what it was for (`fork worker 2`, `kill 4242
/// SIGTERM`); whatever ends the loop, stop and reap every worker first.
pub fn supervise(config_path: &Path, command: &[String], via: Via) -> anyhow::Result<()> {
    let signals = [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
    ]
    .map(Sig::from);
    let mut events = match via {
        Via::SignalFd => Events::signalfd(&signals)?,
        Via::SelfPipe => Events::self_pipe(&signals)?,
    };
    let config = read_config(config_path)?;
    let mut pool = Pool::new(command, &signals, events.mask_before)?;
    let outcome = pool.run(&mut events, config_path, config.workers);
    let stopped = pool.stop();
    outcome.and(stopped)
}
// ANCHOR_END: supervise

/// Which kind of [`Events`] [`supervise`] reads its signals from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// [`Events::signalfd`].
    SignalFd,
    /// [`Events::self_pipe`].
    SelfPipe,
}

/// The supervisor's workers.
struct Pool {
    /// `execvp`'s arguments, made before any fork.
    argv: Vec<CString>,
    /// The command, for messages.
    command: String,
    /// The signals the supervisor handles: blocked around each fork.
    handled: SigMask,
    /// What a child sets to `SIG_DFL` before it execs.
    reset_in_child: Vec<Sig>,
    /// The signal mask a child must have when it execs.
    child_mask: SigMask,
    /// The running workers: slot → pid.
    running: BTreeMap<usize, Pid>,
    /// Workers sent `SIGTERM` and not yet reaped: pid → slot.
    stopping: BTreeMap<Pid, usize>,
}

impl Pool {
    fn new(command: &[String], handled: &[Sig], child_mask: SigMask) -> anyhow::Result<Pool> {
        let argv = command
            .iter()
            .map(|word| CString::new(word.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .context("a NUL byte in the command")?;
        if argv.is_empty() {
            bail!("no command to run");
        }
        let mut reset_in_child = handled.to_vec();
        reset_in_child.push(Sig::from(Signal::SIGPIPE));
        Ok(Pool {
            argv,
            command: command.join(" "),
            handled: SigMask::of(handled),
            reset_in_child,
            child_mask,
            running: BTreeMap::new(),
            stopping: BTreeMap::new(),
        })
    }

    /// Starts `workers` workers, then handles signals until asked to stop.
    fn run(
        &mut self,
        events: &mut Events,
        config_path: &Path,
        workers: usize,
    ) -> anyhow::Result<()> {
        self.resize(workers)?;
        report::supervising(workers);
        loop {
            let event = events.next_signal()?;
            match Signal::try_from(event.signo) {
                Ok(Signal::SIGCHLD) => self.reap()?,
                Ok(Signal::SIGHUP) => self.reload(config_path)?,
                Ok(Signal::SIGINT | Signal::SIGTERM) => return Ok(()),
                _ => {}
            }
        }
    }

    /// Starts a worker in `slot`, with the handled signals blocked around
    /// the fork.
    fn start(&mut self, slot: usize) -> anyhow::Result<()> {
        let mask = self.handled.block().context("block signals around fork")?;
        // SAFETY: this program has one thread, so the child may call
        // anything; it keeps to a few system calls until execvp or _exit.
        let forked = match unsafe { fork() } {
            Ok(ForkResult::Child) => self.exec_in_child(),
            Ok(ForkResult::Parent { child }) => Ok(child),
            Err(errno) => Err(errno),
        };
        mask.set().context("unblock signals after fork")?;
        let child = forked.with_context(|| format!("fork worker {slot}"))?;
        self.running.insert(slot, child);
        report::started(slot, child);
        Ok(())
    }

    /// In a new child: the signal state a fresh program expects, then the
    /// command. Never returns.
    fn exec_in_child(&self) -> ! {
        for &signal in &self.reset_in_child {
            // SAFETY: SIG_DFL runs no code of ours.
            let _ =
                unsafe { sigaction(signal, Action::Default, SaFlags::empty(), &SigMask::empty()) };
        }
        let _ = self.child_mask.set();
        let _ = execvp(&self.argv[0], &self.argv);
        // SAFETY: _exit(2) is async-signal-safe and ends only this child.
        unsafe { libc::_exit(127) }
    }

    /// Starts the slots up to `workers` that have no worker, and stops the
    /// workers of the slots above it, highest first.
    fn resize(&mut self, workers: usize) -> anyhow::Result<()> {
        for slot in 1..=workers {
            if !self.running.contains_key(&slot) {
                self.start(slot)?;
            }
        }
        let extra: Vec<usize> = self
            .running
            .range(workers + 1..)
            .map(|(&slot, _)| slot)
            .collect();
        for slot in extra.into_iter().rev() {
            self.ask_to_stop(slot)?;
        }
        Ok(())
    }

    /// Sends `SIGTERM` to the worker of `slot` and moves it to `stopping`.
    fn ask_to_stop(&mut self, slot: usize) -> anyhow::Result<()> {
        if let Some(pid) = self.running.remove(&slot) {
            self.stopping.insert(pid, slot);
            sig::kill(pid, Some(Signal::SIGTERM.into()))
                .with_context(|| format!("kill {pid} SIGTERM"))?;
        }
        Ok(())
    }

    /// Reaps every child that has ended, restarting the workers that died.
    fn reap(&mut self) -> anyhow::Result<()> {
        loop {
            match sig::waitpid(None, WaitPidFlag::WNOHANG) {
                Ok(Some((pid, status))) => self.ended(pid, status)?,
                Ok(None) | Err(Errno::ECHILD) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno).context("waitpid"),
            }
        }
    }

    /// A child has been reaped: report it, and restart it if it died.
    fn ended(&mut self, pid: Pid, status: ChildStatus) -> anyhow::Result<()> {
        if let Some(slot) = self.stopping.remove(&pid) {
            report::stopped(slot, pid, status);
            return Ok(());
        }
        let Some(slot) = self.slot_of(pid) else {
            return Ok(());
        };
        self.running.remove(&slot);
        if status == ChildStatus::Exited(127) {
            bail!(
                "worker {slot} could not run {:?} (exit status 127)",
                self.command
            );
        }
        report::died(slot, pid, status);
        self.start(slot)
    }

    /// The slot whose running worker is `pid`.
    fn slot_of(&self, pid: Pid) -> Option<usize> {
        self.running
            .iter()
            .find(|&(_, &running)| running == pid)
            .map(|(&slot, _)| slot)
    }

    /// Reads the configuration again and resizes the pool to it.
    fn reload(&mut self, config_path: &Path) -> anyhow::Result<()> {
        match read_config(config_path) {
            Ok(config) => {
                report::reloaded(config.workers, self.running.len());
                self.resize(config.workers)
            }
            Err(error) => {
                report::reload_failed(format!("{error:#}"), self.running.len());
                Ok(())
            }
        }
    }

    /// Stops every worker and reaps them in slot order, even if a `kill`
    /// fails.
    fn stop(&mut self) -> anyhow::Result<()> {
        report::stopping(self.running.len() + self.stopping.len());
        let slots: Vec<usize> = self.running.keys().rev().copied().collect();
        let mut first_error = None;
        for slot in slots {
            if let Err(error) = self.ask_to_stop(slot) {
                first_error.get_or_insert(error);
            }
        }
        let mut stopping: Vec<(usize, Pid)> = self
            .stopping
            .iter()
            .map(|(&pid, &slot)| (slot, pid))
            .collect();
        stopping.sort_unstable();
        for (slot, pid) in stopping {
            let status = wait_for(pid)?;
            self.stopping.remove(&pid);
            report::stopped(slot, pid, status);
        }
        report::all_stopped();
        first_error.map_or(Ok(()), Err)
    }
}

/// Waits for the child `pid` to end, and reaps it.
fn wait_for(pid: Pid) -> anyhow::Result<ChildStatus> {
    loop {
        match sig::waitpid(Some(pid), WaitPidFlag::empty()) {
            Ok(Some((_, status))) => return Ok(status),
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).with_context(|| format!("waitpid {pid}")),
        }
    }
}
