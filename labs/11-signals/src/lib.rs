//! # Lab 11: signals (信号)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/11-signals.md` and the grading
//! suite `tests/11-signals.rs`. Run `cargo test` in this directory to
//! grade your work; `cargo run -- --help` shows the command you are
//! building.
//!
//! Three files are given: `cli.rs`, the command line, which calls these
//! functions and prints what they return; `sig.rs`, a thin layer over
//! libc for what nix cannot do with signals (real-time signals, masks of
//! any signal, `sigqueue`, `siginfo_t`, a log a handler may write to, a
//! `waitpid` that names real-time signals); and `report.rs`, the lines the
//! supervisor of task 6 prints. nix has the rest: `Signal`, `SaFlags`,
//! `SignalFd`, `fork`, `execvp`, `pipe2`, `poll`. You may add private
//! helper functions, statics and signal handlers.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use self::sig::{Info, Sig, SigMask};

pub mod cli;
pub mod report;
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
    // TODO(1): names, aliases, RTMIN+n / RTMAX-n, numbers.
    todo!("TODO(1): parse_signal")
}

/// The conventional name of a signal, as bash's `kill -l NUMBER` prints it
/// with `SIG` in front: `SIGTERM`; for real-time signals `SIGRTMIN`,
/// `SIGRTMIN+1` … `SIGRTMIN+15`, then `SIGRTMAX-14` … `SIGRTMAX-1`,
/// `SIGRTMAX` (the lower half counted up from `SIGRTMIN`, the upper half
/// down from `SIGRTMAX`).
pub fn signal_name(signal: Sig) -> String {
    // TODO(1): nix's name, or SIGRTMIN+n / SIGRTMAX-n.
    todo!("TODO(1): signal_name")
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
    // TODO(2): kill(2) for every pid.
    todo!("TODO(2): send")
}

/// Sends `signal` to `pid` once per value of `values`, in order, each
/// carrying its value, with `sigqueue(3)` ([`sig::sigqueue`]). Errors as
/// [`send`], with the context `sigqueue PID SIGNAL VALUE`.
pub fn queue(signal: Sig, pid: Pid, values: &[i32]) -> anyhow::Result<()> {
    // TODO(2): sigqueue(3) once per value.
    todo!("TODO(2): queue")
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
    // TODO(2): SIG_DFL, unblock, raise.
    todo!("TODO(2): raise_default")
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
    // TODO(2): an SA_RESETHAND handler, then raise twice.
    todo!("TODO(2): raise_caught_once")
}
// ANCHOR_END: send

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
    // TODO(3): block, handlers, ready, sigsuspend, sigpending, unblock.
    todo!("TODO(3): count")
}
// ANCHOR_END: count

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
    // TODO(4): a handler (SA_RESTART or not), then one blocking call.
    todo!("TODO(4): interrupt")
}
// ANCHOR_END: interrupt

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
        // TODO(5): block, SA_NOCLDSTOP, signalfd(SFD_CLOEXEC).
        todo!("TODO(5): signalfd")
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
        // TODO(5): pipe2, O_NONBLOCK, the handlers.
        todo!("TODO(5): self_pipe")
    }

    /// Waits for the next signal and returns it: from a signalfd, with
    /// everything `read` returned ([`Info::from_signalfd`]); from a
    /// self-pipe, the byte's signal number alone (the rest of the
    /// [`Info`] is 0). Retries a `read` that fails with `EINTR`; a
    /// self-pipe at end-of-file is an error.
    pub fn next_signal(&mut self) -> anyhow::Result<Info> {
        // TODO(5): read the signalfd, or one byte of the pipe.
        todo!("TODO(5): next_signal")
    }
}
// ANCHOR_END: events

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
    // TODO(6): `workers = N`, comments, errors with line numbers.
    todo!("TODO(6): read_config")
}
// ANCHOR_END: config

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
    // TODO(6): events, workers, the loop, the stop.
    todo!("TODO(6): supervise")
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
