//! A thin layer over libc for what `nix::sys::signal` cannot do (given: you
//! do not need to change this file).
//!
//! nix's `Signal` enum names the 31 standard signals only, so its
//! `sigaction`, `SigSet` and `kill` cannot take a real-time signal
//! (`SIGRTMIN` to `SIGRTMAX`), and it has no `sigqueue` and no way to read
//! the value a `sigqueue` carries. This module wraps exactly those C calls,
//! one to one, for any signal number: [`sigaction`], [`SigMask`] (a
//! `sigset_t` with `pthread_sigmask`, `sigpending` and `sigsuspend`),
//! [`kill`] and [`sigqueue`]. It adds [`Info`], what a handler learns from
//! its `siginfo_t`, and [`SignalLog`], a place where a handler can record
//! it without breaking the rules of `signal-safety(7)`.
//!
//! Errors are [`nix::errno::Errno`] values, whose `Display` shows the
//! errno's name (`ESRCH: No such process`). nix's `SignalFd` takes a
//! [`SigMask`] through [`SigMask::to_sigset`].

use std::ffi::{c_int, c_void};
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigSet, Signal};
use nix::sys::wait::WaitPidFlag;
use nix::unistd::Pid;

// ANCHOR: sig
/// A signal number a program may use: a standard signal (1 to 31 on
/// Linux) or a real-time one (`SIGRTMIN` to `SIGRTMAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sig(c_int);

impl Sig {
    /// The lowest real-time signal, as the C library defines it at run
    /// time: the kernel's real-time signals start at 32, but glibc keeps
    /// the first two (or three) for its threads and says `SIGRTMIN` is 34.
    pub fn rtmin() -> c_int {
        libc::SIGRTMIN()
    }

    /// The highest real-time signal (64 on Linux).
    pub fn rtmax() -> c_int {
        libc::SIGRTMAX()
    }

    /// `number` as a signal, if a program may use it: 1 to 31, or
    /// `SIGRTMIN` to `SIGRTMAX`. 0 (the null signal of `kill`) and the
    /// numbers the C library keeps for itself are not signals here.
    pub fn new(number: c_int) -> Option<Sig> {
        let standard = (1..=31).contains(&number);
        let realtime = (Sig::rtmin()..=Sig::rtmax()).contains(&number);
        (standard || realtime).then_some(Sig(number))
    }

    /// The signal's number.
    pub fn number(self) -> c_int {
        self.0
    }

    /// Whether it is a real-time signal (`SIGRTMIN` or above).
    pub fn is_realtime(self) -> bool {
        self.0 >= Sig::rtmin()
    }

    /// The same signal as nix's `Signal`, if it is a standard one.
    pub fn standard(self) -> Option<Signal> {
        Signal::try_from(self.0).ok()
    }
}

impl From<Signal> for Sig {
    fn from(signal: Signal) -> Sig {
        Sig(signal as c_int)
    }
}
// ANCHOR_END: sig

// ANCHOR: mask
/// A set of signals, `sigset_t`, and the calls that use one as a mask.
///
/// Each thread has a **signal mask**: the signals it **blocks**. A blocked
/// signal that is sent is not lost: it stays **pending** until it is
/// unblocked, and is delivered then. `SIGKILL` and `SIGSTOP` cannot be
/// blocked (the kernel quietly leaves them out of every mask).
#[derive(Clone, Copy)]
pub struct SigMask(libc::sigset_t);

impl SigMask {
    /// The empty set (`sigemptyset`).
    pub fn empty() -> SigMask {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            SigMask(set.assume_init())
        }
    }

    /// The set holding `signals`.
    pub fn of(signals: &[Sig]) -> SigMask {
        let mut mask = SigMask::empty();
        for &signal in signals {
            mask.add(signal);
        }
        mask
    }

    /// Adds `signal` (`sigaddset`).
    pub fn add(&mut self, signal: Sig) {
        // SAFETY: an initialised set and a valid signal number.
        unsafe { libc::sigaddset(&mut self.0, signal.0) };
    }

    /// Removes `signal` (`sigdelset`).
    pub fn remove(&mut self, signal: Sig) {
        // SAFETY: an initialised set and a valid signal number.
        unsafe { libc::sigdelset(&mut self.0, signal.0) };
    }

    /// Whether `signal` is in the set (`sigismember`).
    pub fn contains(&self, signal: Sig) -> bool {
        // SAFETY: an initialised set and a valid signal number.
        unsafe { libc::sigismember(&self.0, signal.0) == 1 }
    }

    /// The signals in the set, lowest first.
    pub fn signals(&self) -> Vec<Sig> {
        (1..=Sig::rtmax())
            .filter_map(Sig::new)
            .filter(|&signal| self.contains(signal))
            .collect()
    }

    /// This thread's signal mask now (`pthread_sigmask(SIG_BLOCK, NULL, &old)`).
    pub fn current() -> nix::Result<SigMask> {
        change_mask(libc::SIG_BLOCK, None)
    }

    /// Adds the set to this thread's mask (`SIG_BLOCK`) and returns the mask
    /// as it was before.
    pub fn block(&self) -> nix::Result<SigMask> {
        change_mask(libc::SIG_BLOCK, Some(self))
    }

    /// Takes the set out of this thread's mask (`SIG_UNBLOCK`) and returns
    /// the mask as it was before. A signal of the set that was pending is
    /// delivered before this returns.
    pub fn unblock(&self) -> nix::Result<SigMask> {
        change_mask(libc::SIG_UNBLOCK, Some(self))
    }

    /// Makes the set this thread's mask (`SIG_SETMASK`) and returns the
    /// mask as it was before.
    pub fn set(&self) -> nix::Result<SigMask> {
        change_mask(libc::SIG_SETMASK, Some(self))
    }

    /// The signals pending for this thread or its process, blocked and
    /// waiting to be delivered (`sigpending`).
    pub fn pending() -> nix::Result<SigMask> {
        let mut set = SigMask::empty();
        // SAFETY: sigpending fills the set it is given.
        Errno::result(unsafe { libc::sigpending(&mut set.0) })?;
        Ok(set)
    }

    /// `sigsuspend(&set)`: makes the set this thread's mask and sleeps
    /// until a signal handler has run, then puts the mask back as it was,
    /// in one system call. It always ends with `EINTR` (that is how it
    /// reports that a handler ran), so it returns nothing.
    pub fn suspend(&self) {
        // SAFETY: an initialised set.
        unsafe { libc::sigsuspend(&self.0) };
    }

    /// The same set as nix's `SigSet` (for `nix::sys::signalfd::SignalFd`).
    pub fn to_sigset(&self) -> SigSet {
        // SAFETY: the set was initialised by sigemptyset.
        unsafe { SigSet::from_sigset_t_unchecked(self.0) }
    }
}
// ANCHOR_END: mask

/// `pthread_sigmask(how, set, &old)`, returning `old`. (In a program with
/// one thread this is `sigprocmask`.)
fn change_mask(how: c_int, set: Option<&SigMask>) -> nix::Result<SigMask> {
    let mut old = SigMask::empty();
    let set = set.map_or(std::ptr::null(), |set| &set.0 as *const libc::sigset_t);
    // SAFETY: `set` is null or a valid set; `old` is a valid out-pointer.
    let errno = unsafe { libc::pthread_sigmask(how, set, &mut old.0) };
    if errno != 0 {
        return Err(Errno::from_raw(errno));
    }
    Ok(old)
}

impl fmt::Debug for SigMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let numbers: Vec<c_int> = self.signals().iter().map(|s| s.number()).collect();
        f.debug_tuple("SigMask").field(&numbers).finish()
    }
}

// ANCHOR: sigaction
/// A handler that takes the signal number only: `void handler(int)`.
pub type PlainHandler = extern "C" fn(c_int);

/// A handler that also gets the signal's `siginfo_t` (who sent it, the
/// value of a `sigqueue`): `void handler(int, siginfo_t *, void *)`.
pub type InfoHandler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// What to do when a signal is delivered: its **disposition**.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// `SIG_DFL`: the signal's default action (terminate, dump core,
    /// ignore, stop or continue, by signal: see signal(7)).
    Default,
    /// `SIG_IGN`: discard it.
    Ignore,
    /// Run this handler.
    Handler(PlainHandler),
    /// Run this handler with the signal's `siginfo_t` (`SA_SIGINFO`).
    InfoHandler(InfoHandler),
}

/// `sigaction(signal, &{action, flags, mask}, NULL)`: sets what the process
/// does when `signal` is delivered.
///
/// `flags` may hold `SA_RESTART` (restart the system calls a handler
/// interrupts, where they can be restarted), `SA_RESETHAND` (back to
/// `SIG_DFL` as the handler starts: it runs once), `SA_NOCLDSTOP` (for
/// `SIGCHLD`: no signal when a child stops or continues, only when it
/// ends), `SA_NODEFER` … `SA_SIGINFO` is set for you exactly when `action`
/// is an [`Action::InfoHandler`]: a handler called with the wrong number of
/// arguments would read garbage. While the handler runs, `signal` itself
/// and every signal in `mask` are blocked.
///
/// Fails with `EINVAL` for `SIGKILL` and `SIGSTOP`, whose action no
/// process can change.
///
/// # Safety
///
/// A handler runs between any two instructions of the program, in the
/// middle of `malloc` or of a `println!` that holds the lock on standard
/// output. It must call only async-signal-safe functions (the list is in
/// signal-safety(7): `write`, `read`, `kill`, `_exit`, `sigaction`,
/// `waitpid` … but not `malloc`, `printf`, nor anything in Rust that may
/// allocate or lock), touch shared data only through atomics, and leave
/// `errno` as it found it.
pub unsafe fn sigaction(
    signal: Sig,
    action: Action,
    flags: SaFlags,
    mask: &SigMask,
) -> nix::Result<()> {
    let plain = flags.bits() & !libc::SA_SIGINFO;
    let (handler, flags) = match action {
        Action::Default => (libc::SIG_DFL, plain),
        Action::Ignore => (libc::SIG_IGN, plain),
        Action::Handler(handler) => (handler as libc::sighandler_t, plain),
        Action::InfoHandler(handler) => (handler as libc::sighandler_t, plain | libc::SA_SIGINFO),
    };
    // SAFETY: a zeroed struct sigaction is valid; every field used is set.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_mask = mask.0;
    act.sa_flags = flags;
    // SAFETY: valid pointers; the caller vouches for the handler.
    Errno::result(unsafe { libc::sigaction(signal.0, &act, std::ptr::null_mut()) }).map(drop)
}
// ANCHOR_END: sigaction

// ANCHOR: send
/// `kill(pid, signal)`: sends `signal` to the process `pid`, or with
/// `None` the null signal 0, which sends nothing but makes every check:
/// `ESRCH` if no such process exists, `EPERM` if it is not yours to signal.
pub fn kill(pid: Pid, signal: Option<Sig>) -> nix::Result<()> {
    let number = signal.map_or(0, Sig::number);
    // SAFETY: kill(2) takes no pointers.
    Errno::result(unsafe { libc::kill(pid.as_raw(), number) }).map(drop)
}

/// `raise(signal)`: sends `signal` to the calling thread. In a program
/// with one thread, a handler for it has run (or its default action has
/// been taken) by the time this returns.
pub fn raise(signal: Sig) -> nix::Result<()> {
    // SAFETY: raise(3) takes no pointers.
    Errno::result(unsafe { libc::raise(signal.0) }).map(drop)
}

/// `sigqueue(pid, signal, (union sigval){ .sival_int = value })`: sends
/// `signal` with a value. A real-time signal is queued, value included,
/// once per call; a standard signal already pending is not (the first
/// one's value stays). Errors as [`kill`], plus `EAGAIN` when the
/// receiver's user has reached its limit of queued signals
/// (`RLIMIT_SIGPENDING`, `ulimit -i`).
pub fn sigqueue(pid: Pid, signal: Sig, value: i32) -> nix::Result<()> {
    // SAFETY: sigqueue(3) takes the union by value.
    Errno::result(unsafe { libc::sigqueue(pid.as_raw(), signal.0, int_to_sigval(value)) }).map(drop)
}
// ANCHOR_END: send

// ANCHOR: waitpid
/// How a child changed state, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// It called `exit(code)` (`WIFEXITED`, `WEXITSTATUS`).
    Exited(c_int),
    /// A signal killed it (`WIFSIGNALED`, `WTERMSIG`), perhaps with a core
    /// dump (`WCOREDUMP`).
    Killed(Sig, bool),
    /// A signal stopped it (`WIFSTOPPED`; only with `WUNTRACED`).
    Stopped(Sig),
    /// `SIGCONT` resumed it (`WIFCONTINUED`; only with `WCONTINUED`).
    Continued,
}

/// `waitpid(pid or -1, &status, options)`: reaps a child that ended (or
/// reports one that stopped or continued, if `options` ask for it).
/// `None` for `pid` means any child. Returns `Ok(None)` when `options`
/// hold `WNOHANG` and no child has anything to report yet, and fails
/// with `ECHILD` when there is no child left to wait for.
///
/// nix's own `waitpid` does the same but cannot describe a child killed
/// by a real-time signal (its `Signal` enum has none): it reaps the child
/// and then fails with `EINVAL`. This one can.
pub fn waitpid(pid: Option<Pid>, options: WaitPidFlag) -> nix::Result<Option<(Pid, ChildStatus)>> {
    let mut status: c_int = 0;
    let target = pid.map_or(-1, Pid::as_raw);
    // SAFETY: waitpid(2) with a valid out-pointer.
    let reaped = Errno::result(unsafe { libc::waitpid(target, &mut status, options.bits()) })?;
    if reaped == 0 {
        return Ok(None);
    }
    let signal = |number: c_int| Sig::new(number).ok_or(Errno::EINVAL);
    let change = if libc::WIFEXITED(status) {
        ChildStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        ChildStatus::Killed(signal(libc::WTERMSIG(status))?, libc::WCOREDUMP(status))
    } else if libc::WIFSTOPPED(status) {
        ChildStatus::Stopped(signal(libc::WSTOPSIG(status))?)
    } else {
        ChildStatus::Continued
    };
    Ok(Some((Pid::from_raw(reaped), change)))
}
// ANCHOR_END: waitpid

/// C's `union sigval` holds `int sival_int` and `void *sival_ptr` in the
/// same bytes; libc's `sigval` declares only the pointer. The int is the
/// union's first four bytes in memory, whatever the byte order.
fn int_to_sigval(value: i32) -> libc::sigval {
    let mut bytes = [0u8; size_of::<usize>()];
    bytes[..4].copy_from_slice(&value.to_ne_bytes());
    libc::sigval {
        sival_ptr: std::ptr::without_provenance_mut(usize::from_ne_bytes(bytes)),
    }
}

/// The `sival_int` of a `union sigval` (see [`int_to_sigval`]).
fn sigval_to_int(value: libc::sigval) -> i32 {
    let bytes = value.sival_ptr.addr().to_ne_bytes();
    i32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

// ANCHOR: info
/// What a handler learns about one delivery, from its `siginfo_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// The signal (`si_signo`).
    pub signo: c_int,
    /// Why it was sent (`si_code`): `SI_USER` for `kill`, `SI_QUEUE` for
    /// `sigqueue`, `SI_TKILL` for `tgkill` and `raise`, a positive code
    /// when the kernel sent it (`CLD_EXITED` for a `SIGCHLD` …).
    pub code: c_int,
    /// The sender's process ID (`si_pid`), for a signal sent by a process
    /// or a `SIGCHLD`; 0 otherwise.
    pub pid: libc::pid_t,
    /// The sender's real user ID (`si_uid`), likewise.
    pub uid: libc::uid_t,
    /// The value of a `sigqueue` (`si_value.sival_int`); 0 otherwise.
    pub value: i32,
}

impl Info {
    /// Copies what a `siginfo_t` holds. Only loads: async-signal-safe.
    ///
    /// # Safety
    ///
    /// `info` is the pointer the kernel passed to an `SA_SIGINFO` handler
    /// (or points to a `siginfo_t` filled by `waitid` or `sigwaitinfo`).
    pub unsafe fn from_siginfo(info: *const libc::siginfo_t) -> Info {
        // SAFETY: the caller's promise; the fields read are there for every
        // code, meaningful for the codes documented on each field.
        unsafe {
            let info = &*info;
            let sent = matches!(
                info.si_code,
                libc::SI_USER | libc::SI_QUEUE | libc::SI_TKILL
            );
            let child = info.si_signo == libc::SIGCHLD && info.si_code > 0;
            let (pid, uid) = if sent || child {
                (info.si_pid(), info.si_uid())
            } else {
                (0, 0)
            };
            let value = if info.si_code == libc::SI_QUEUE {
                sigval_to_int(info.si_value())
            } else {
                0
            };
            Info {
                signo: info.si_signo,
                code: info.si_code,
                pid,
                uid,
                value,
            }
        }
    }

    /// What a `read` from a signalfd returned.
    pub fn from_signalfd(info: &libc::signalfd_siginfo) -> Info {
        let queued = info.ssi_code == libc::SI_QUEUE;
        Info {
            signo: info.ssi_signo as c_int,
            code: info.ssi_code,
            pid: info.ssi_pid as libc::pid_t,
            uid: info.ssi_uid,
            value: if queued { info.ssi_int } else { 0 },
        }
    }

    /// The signal, if it is one a program may use.
    pub fn signal(&self) -> Option<Sig> {
        Sig::new(self.signo)
    }

    /// Which call sent it, from `code`: `kill`, `sigqueue`, `tgkill` (what
    /// `raise` calls), or `the kernel`.
    pub fn sender(&self) -> &'static str {
        match self.code {
            libc::SI_USER => "kill",
            libc::SI_QUEUE => "sigqueue",
            libc::SI_TKILL => "tgkill",
            _ => "the kernel",
        }
    }
}
// ANCHOR_END: info

// ANCHOR: log
/// How many deliveries a [`SignalLog`] holds.
pub const LOG_CAPACITY: usize = 1024;

/// A record of signal deliveries that a handler may write to.
///
/// A handler may not allocate (no `Vec::push`) nor lock (no `Mutex`): the
/// code it interrupted may hold the allocator's lock, or that very mutex,
/// and would never get to release it. This log is a fixed array of atomic
/// fields and an atomic count, so [`SignalLog::record`] is
/// async-signal-safe. Declare one as a `static` and record from the
/// handler; read it with [`SignalLog::entries`] from the program.
pub struct SignalLog {
    next: AtomicUsize,
    slots: [Slot; LOG_CAPACITY],
}

/// One delivery, in atomic fields.
struct Slot {
    filled: AtomicBool,
    signo: AtomicI32,
    code: AtomicI32,
    pid: AtomicI32,
    uid: AtomicU32,
    value: AtomicI32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            filled: AtomicBool::new(false),
            signo: AtomicI32::new(0),
            code: AtomicI32::new(0),
            pid: AtomicI32::new(0),
            uid: AtomicU32::new(0),
            value: AtomicI32::new(0),
        }
    }
}

impl SignalLog {
    /// An empty log (a `const fn`, for a `static`).
    pub const fn new() -> SignalLog {
        SignalLog {
            next: AtomicUsize::new(0),
            slots: [const { Slot::new() }; LOG_CAPACITY],
        }
    }

    /// Records one delivery. Async-signal-safe: atomic operations only.
    /// Returns `false` when the log is full (the delivery is still
    /// counted by [`SignalLog::len`]).
    pub fn record(&self, info: Info) -> bool {
        let at = self.next.fetch_add(1, Ordering::AcqRel);
        let Some(slot) = self.slots.get(at) else {
            return false;
        };
        slot.signo.store(info.signo, Ordering::Relaxed);
        slot.code.store(info.code, Ordering::Relaxed);
        slot.pid.store(info.pid, Ordering::Relaxed);
        slot.uid.store(info.uid, Ordering::Relaxed);
        slot.value.store(info.value, Ordering::Relaxed);
        slot.filled.store(true, Ordering::Release);
        true
    }

    /// How many deliveries were recorded (or would have been, past the
    /// capacity).
    pub fn len(&self) -> usize {
        self.next.load(Ordering::Acquire)
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The deliveries recorded so far, in the order the handler ran.
    pub fn entries(&self) -> Vec<Info> {
        let count = self.len().min(LOG_CAPACITY);
        self.slots[..count]
            .iter()
            .filter(|slot| slot.filled.load(Ordering::Acquire))
            .map(|slot| Info {
                signo: slot.signo.load(Ordering::Relaxed),
                code: slot.code.load(Ordering::Relaxed),
                pid: slot.pid.load(Ordering::Relaxed),
                uid: slot.uid.load(Ordering::Relaxed),
                value: slot.value.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl Default for SignalLog {
    fn default() -> Self {
        SignalLog::new()
    }
}
// ANCHOR_END: log
