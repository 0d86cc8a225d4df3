//! # Lab 09: POSIX message queues (POSIX 消息队列) — reference solution
//!
//! The same functions as `labs/09-posix-mq/src/lib.rs`, done. Read it after
//! you have written your own: compare which calls come from nix and which
//! from libc (and why), how the receive buffer is sized, where the deadline
//! comes from, when the notification is re-armed, and which path unlinks
//! which name.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use libc::{c_int, c_long};
use nix::errno::Errno;
use nix::mqueue::{
    MQ_OFlag, MqAttr, MqdT, mq_getattr, mq_open, mq_receive, mq_send, mq_setattr, mq_timedreceive,
    mq_unlink,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll, ppoll};
use nix::sys::signal::{
    SaFlags, SigAction, SigEvent, SigHandler, SigSet, SigevNotify, SigmaskHow, Signal, sigaction,
    sigprocmask,
};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{ForkResult, Pid, fork};

#[path = "../../../labs/09-posix-mq/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/09-posix-mq/src/mq.rs"]
pub mod mq;
#[path = "../../../labs/09-posix-mq/src/protocol.rs"]
pub mod protocol;

pub use mq::Queue;

/// The signal (`SIGINT` or `SIGTERM`) that asked the server to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

/// How many notifications by thread have come, and a way to wait for more.
static NOTIFICATIONS: Mutex<u64> = Mutex::new(0);
static NOTIFICATION_CAME: Condvar = Condvar::new();

/// The two numbers a queue is given for life when it is created, the
/// `mq_maxmsg` and `mq_msgsize` of a `struct mq_attr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// `mq_maxmsg`: how many messages the queue holds. A sender waits (or
    /// gets `EAGAIN`) while it holds that many.
    pub max_messages: c_long,
    /// `mq_msgsize`: the longest message, in bytes. It is also the smallest
    /// buffer `mq_receive` accepts.
    pub message_size: c_long,
}

/// What `mq_getattr` says about an open queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// `mq_flags & O_NONBLOCK`: a flag of this open queue description (this
    /// `mq_open`, and the descriptors `fork` copies from it), not of the
    /// queue itself.
    pub nonblocking: bool,
    /// `mq_maxmsg` and `mq_msgsize`, fixed when the queue was created.
    pub capacity: Capacity,
    /// `mq_curmsgs`: how many messages the queue holds now.
    pub messages: c_long,
}

/// One message taken off a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its priority: 0 is the lowest, 32767 the highest on Linux.
    pub priority: u32,
    /// Exactly the bytes that were sent: a message keeps its boundaries.
    pub text: Vec<u8>,
}

/// How `mq_notify` tells the process that a message has arrived on the
/// empty queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Notification {
    /// `SIGEV_SIGNAL`: the kernel sends the process [`NOTIFY_SIGNAL`].
    Signal,
    /// `SIGEV_THREAD`: glibc runs a function in a new thread.
    Thread,
}

/// The signal of a notification by signal.
pub const NOTIFY_SIGNAL: Signal = Signal::SIGUSR1;

/// Creates the queue `name` and opens it for `access` (`O_RDONLY`,
/// `O_WRONLY` or `O_RDWR`): `mq_open(name, O_CREAT | access, 0600, attr)`.
///
/// * `name` is a `/` followed by up to 255 bytes and no other `/`, such as
///   `/tickets`. `mq_open` checks it (see the errors below).
/// * `exclusive` adds `O_EXCL`: fail with `EEXIST` if the name is taken,
///   instead of quietly opening the queue that is there, with whatever mode
///   and capacity its creator chose.
/// * The mode is always 0600 (`S_IRUSR | S_IWUSR`): only the owner may use
///   the queue. The umask applies, as it does to `open`.
/// * `capacity` fills `mq_maxmsg` and `mq_msgsize` of the `struct mq_attr`
///   (`MqAttr::new(0, max_messages, message_size, 0)`). `None` passes a
///   NULL `attr`: the queue gets the system's defaults, `msg_default` and
///   `msgsize_default` of `/proc/sys/fs/mqueue`. Either way they are fixed
///   for the queue's whole life.
///
/// nix's `mq_open(name, flags, mode, None)` passes neither the mode nor
/// the `attr` to C's variadic `mq_open`, which then reads both from
/// whatever the registers hold when `O_CREAT` is given. Use it only with
/// `Some(&attr)`; for `None`, call `libc::mq_open(c_name, flags, mode,
/// ptr::null_mut::<libc::mq_attr>())` and wrap the result with
/// `MqdT::from_raw_fd`.
///
/// Errors: `EEXIST` (the name is taken, with `exclusive`), `EINVAL` (no
/// leading `/`; or a capacity of 0, or one above `msg_max` or
/// `msgsize_max` without `CAP_SYS_RESOURCE`), `EACCES` (a second `/`; or
/// the queue exists and its mode denies `access`), `ENAMETOOLONG`,
/// `EMFILE` (the queue would take its owner over `RLIMIT_MSGQUEUE`, or the
/// process has no descriptor left), `ENOSPC` (`queues_max` queues exist).
pub fn create(
    name: &str,
    access: MQ_OFlag,
    exclusive: bool,
    capacity: Option<Capacity>,
) -> Result<Queue, Errno> {
    let mut flags = MQ_OFlag::O_CREAT | access;
    if exclusive {
        flags |= MQ_OFlag::O_EXCL;
    }
    let mode = Mode::S_IRUSR | Mode::S_IWUSR;
    let mqd = match capacity {
        Some(capacity) => {
            let attr = MqAttr::new(0, capacity.max_messages, capacity.message_size, 0);
            mq_open(name, flags, mode, Some(&attr))?
        }
        None => open_with_default_capacity(name, flags, mode)?,
    };
    Ok(Queue::new(mqd))
}

/// `mq_open(name, flags, mode, NULL)`, which nix cannot express.
fn open_with_default_capacity(name: &str, flags: MQ_OFlag, mode: Mode) -> Result<MqdT, Errno> {
    let c_name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a NUL-terminated name, and with O_CREAT the two further
    // arguments mq_open reads: a mode_t and a (null) struct mq_attr pointer.
    let fd = Errno::result(unsafe {
        libc::mq_open(
            c_name.as_ptr(),
            flags.bits(),
            mode.bits(),
            ptr::null_mut::<libc::mq_attr>(),
        )
    })?;
    // SAFETY: mq_open has just returned this descriptor; nothing else owns it.
    Ok(unsafe { MqdT::from_raw_fd(fd) })
}

/// Opens the existing queue `name` for `access`: `mq_open(name, access)`.
///
/// Without `O_CREAT` there is no mode and no `attr` to pass:
/// `mq_open(name, access, Mode::empty(), None)` is right here.
///
/// Errors: `ENOENT` (no queue has this name), `EACCES` (the queue's mode
/// denies `access`, or a second `/`), `EINVAL` (no leading `/`),
/// `ENAMETOOLONG`, `EMFILE` (no descriptor left).
pub fn open(name: &str, access: MQ_OFlag) -> Result<Queue, Errno> {
    mq_open(name, access, Mode::empty(), None).map(Queue::new)
}

/// Removes the name of the queue: `mq_unlink(name)`.
///
/// The name goes at once: a later `mq_open` of it fails with `ENOENT`, or
/// creates a new, different queue. The queue itself lives on, messages
/// and all, until the last descriptor open on it is closed: those who have
/// it open go on sending and receiving. (A System V queue has no such
/// count: `IPC_RMID` destroys it under its users.)
///
/// Errors: `ENOENT` (no queue has this name), `EACCES` (no permission to
/// remove it; or a second `/`), `EINVAL` (no leading `/`), `ENAMETOOLONG`.
pub fn unlink(name: &str) -> Result<(), Errno> {
    mq_unlink(name)
}

/// The queue's attributes: `mq_getattr`.
///
/// `mq_flags` holds `O_NONBLOCK` or nothing; compare it with
/// `libc::O_NONBLOCK` (as a `c_long`). `mq_maxmsg` and `mq_msgsize` are the
/// capacity, `mq_curmsgs` the messages in the queue now.
///
/// Errors: `EBADF`.
pub fn attributes(queue: &Queue) -> Result<Attributes, Errno> {
    let attr = mq_getattr(queue.mqd())?;
    Ok(Attributes {
        nonblocking: attr.flags() & c_long::from(libc::O_NONBLOCK) != 0,
        capacity: Capacity {
            max_messages: attr.maxmsg(),
            message_size: attr.msgsize(),
        },
        messages: attr.curmsgs(),
    })
}

/// The moment `timeout` from now, as `mq_timedsend` and `mq_timedreceive`
/// want it: an **absolute** time on the `CLOCK_REALTIME` clock, in seconds
/// and nanoseconds since 1970, not a duration.
///
/// Read the clock with `clock_gettime(CLOCK_REALTIME)` and add `timeout`.
/// `TimeSpec` addition carries whole seconds out of `tv_nsec`, which must
/// stay below 1 000 000 000 (`EINVAL` otherwise). A duration passed as a
/// deadline lies in January 1970, and so does a reading of
/// `CLOCK_MONOTONIC` (which counts from boot): the call then gives up at
/// once with `ETIMEDOUT`, without waiting at all.
///
/// Unlike a timeout, a deadline does not start again when a call is
/// repeated: one deadline bounds a send and a receive together (task 5).
///
/// Errors: those of `clock_gettime`.
pub fn deadline_after(timeout: Duration) -> Result<TimeSpec, Errno> {
    let now = clock_gettime(ClockId::CLOCK_REALTIME)?;
    Ok(now + TimeSpec::from(timeout))
}

/// Adds one message to the queue: `mq_send(queue, text, priority)`, or
/// `mq_timedsend` when a `deadline` is given.
///
/// Priorities go from 0 (the lowest) to `sysconf(_SC_MQ_PRIO_MAX) - 1`,
/// 32767 on Linux. The queue keeps its messages in order: the highest
/// priority first, and first come, first served within one priority. A
/// message may be empty.
///
/// A full queue (`mq_maxmsg` messages) makes the call wait for room, unless
/// the descriptor is non-blocking (`EAGAIN`, see [`set_nonblocking`]); with
/// a deadline it waits at most until then (`ETIMEDOUT`). nix has no
/// `mq_timedsend`: call `libc::mq_timedsend` with the raw descriptor and
/// `deadline.as_ref()`.
///
/// Errors: `EMSGSIZE` (`text` is longer than `mq_msgsize`), `EAGAIN`,
/// `ETIMEDOUT`, `EINVAL` (a priority too high, or a deadline whose
/// `tv_nsec` is out of range), `EBADF` (not opened for writing), `EINTR` (a
/// signal handler ran).
pub fn send(
    queue: &Queue,
    text: &[u8],
    priority: u32,
    deadline: Option<&TimeSpec>,
) -> Result<(), Errno> {
    let Some(deadline) = deadline else {
        return mq_send(queue.mqd(), text, priority);
    };
    // SAFETY: the kernel reads text.len() bytes at text and one timespec.
    let sent = unsafe {
        libc::mq_timedsend(
            queue.as_fd().as_raw_fd(),
            text.as_ptr().cast(),
            text.len(),
            priority,
            deadline.as_ref(),
        )
    };
    Errno::result(sent).map(drop)
}

/// Takes the oldest message of the highest priority off the queue:
/// `mq_receive`, or `mq_timedreceive` when a `deadline` is given. A
/// receiver cannot choose: there is nothing like System V's `msgtyp`.
///
/// The buffer must hold `mq_msgsize` bytes **whatever the message's
/// length**: a smaller one fails with `EMSGSIZE` and leaves the message in
/// the queue. So ask [`attributes`] for `mq_msgsize`, unless `buffer_size`
/// says otherwise (the command line's `--buffer`, to see that error). The
/// call returns the message's length: the message is that many bytes from
/// the start of the buffer, the rest is not part of it.
///
/// An empty queue makes the call wait, unless the descriptor is
/// non-blocking (`EAGAIN`); with a deadline it waits at most until then
/// (`ETIMEDOUT`).
///
/// Errors: `EMSGSIZE`, `EAGAIN`, `ETIMEDOUT`, `EINVAL` (a bad deadline),
/// `EBADF` (not opened for reading), `EINTR`.
pub fn receive(
    queue: &Queue,
    buffer_size: Option<usize>,
    deadline: Option<&TimeSpec>,
) -> Result<Message, Errno> {
    let size = match buffer_size {
        Some(size) => size,
        None => {
            usize::try_from(attributes(queue)?.capacity.message_size).map_err(|_| Errno::EINVAL)?
        }
    };
    let mut buffer = vec![0; size];
    let mut priority = 0;
    let length = match deadline {
        None => mq_receive(queue.mqd(), &mut buffer, &mut priority)?,
        Some(deadline) => mq_timedreceive(queue.mqd(), &mut buffer, &mut priority, deadline)?,
    };
    buffer.truncate(length);
    Ok(Message {
        priority,
        text: buffer,
    })
}

/// Turns `O_NONBLOCK` on or off for this descriptor: `mq_setattr`.
///
/// Only `mq_flags` changes, and `O_NONBLOCK` is the only flag it may hold
/// (`EINVAL` otherwise); the other fields of the new `mq_attr` are ignored,
/// since a queue's capacity never changes. The flag belongs to the open
/// queue description, as a file's does: descriptors `fork` copies share
/// it, another `mq_open` of the same queue has its own.
///
/// Errors: `EBADF`, `EINVAL`.
pub fn set_nonblocking(queue: &Queue, nonblocking: bool) -> Result<(), Errno> {
    let flags = if nonblocking {
        c_long::from(MQ_OFlag::O_NONBLOCK.bits())
    } else {
        0
    };
    mq_setattr(queue.mqd(), &MqAttr::new(flags, 0, 0, 0)).map(drop)
}

/// Waits on all the `queues` at once and prints each message as it comes,
/// as `NAME: priority P, N bytes: "TEXT"`, flushing `out` after each line
/// (the tests wait for them). This is what a System V queue cannot do: it
/// is not a descriptor.
///
/// 1. Make every descriptor non-blocking ([`set_nonblocking`]): `poll` says
///    a message is there, but another reader may take it first, and then
///    `mq_receive` must fail with `EAGAIN` instead of waiting.
/// 2. `poll` all the descriptors for `POLLIN`, with `silence` as the
///    timeout (`None`: no limit; `PollTimeout::try_from` converts a
///    `Duration`). `EINTR`: poll again. 0 ready descriptors means nothing
///    came for that long: print `no message for MS ms` and return.
/// 3. Receive one message from each queue whose `revents` holds `POLLIN`
///    (skip one that says `EAGAIN`), print it with its queue's name, and
///    go back to 2. Return once `count` messages are printed, if a count
///    is given.
///
/// Never try the queues in turn with non-blocking receives in a loop: that
/// burns the processor while nothing happens. `poll` sleeps until
/// something does.
pub fn watch(
    queues: &[(String, Queue)],
    count: Option<usize>,
    silence: Option<Duration>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for (name, queue) in queues {
        set_nonblocking(queue, true).with_context(|| format!("mq_setattr {name}"))?;
    }
    let timeout = match silence {
        Some(silence) => PollTimeout::try_from(silence).context("the silence is too long")?,
        None => PollTimeout::NONE,
    };
    let mut received = 0;
    while count.is_none_or(|count| received < count) {
        let ready = readable_queues(queues, timeout)?;
        if ready.is_empty() {
            let silence = silence.unwrap_or_default();
            writeln!(out, "no message for {} ms", silence.as_millis())?;
            return Ok(());
        }
        for (name, queue) in ready {
            let message = match receive(queue, None, None) {
                // Another reader took it between poll and mq_receive.
                Err(Errno::EAGAIN) => continue,
                other => other.with_context(|| format!("mq_receive {name}"))?,
            };
            writeln!(out, "{name}: {message}")?;
            out.flush()?;
            received += 1;
        }
    }
    Ok(())
}

/// The queues `poll` finds readable, in the order given; none if the
/// timeout passed first.
fn readable_queues(
    queues: &[(String, Queue)],
    timeout: PollTimeout,
) -> anyhow::Result<Vec<&(String, Queue)>> {
    loop {
        let mut fds: Vec<PollFd> = queues
            .iter()
            .map(|(_, queue)| PollFd::new(queue.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            other => other.context("poll")?,
        };
        let readable = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)));
        return Ok(queues
            .iter()
            .zip(readable)
            .filter_map(|(queue, readable)| readable.then_some(queue))
            .collect());
    }
}

/// Asks to be told when a message arrives (`mq_notify`), and prints the
/// messages that come, `count` of them, then `received N messages`.
///
/// The log, flushed line by line (the tests wait for each line):
/// `registered for notification by signal` (or `by thread`) once, then
/// each message as `priority P, N bytes: "TEXT"`, `waiting for
/// notification N` before each wait, and `notification N: SIGUSR1 from
/// pid P` (the sender, from the signal's `siginfo_t`) or `notification N:
/// in a new thread` after it.
///
/// 1. By signal: block [`NOTIFY_SIGNAL`] first (`SigSet::thread_block`).
///    Its default action kills the process, and the notification may come
///    as soon as `mq_notify` returns; blocked, it stays pending until
///    `libc::sigwaitinfo` takes it, with a `siginfo_t` whose `si_code` is
///    `SI_MESGQ` and whose `si_pid()` is the sender's pid. The `sigevent`:
///    `SigEvent::new(SigevNotify::SigevSignal { signal: NOTIFY_SIGNAL,
///    si_value: 0 }).sigevent()`. By thread: [`mq::thread_notification`]
///    with an `extern "C" fn` that counts notifications in a `static
///    Mutex<u64>` and wakes the main thread through a `static Condvar`.
/// 2. Make the descriptor non-blocking ([`set_nonblocking`]), to drain it.
/// 3. Loop:
///    * Register: `libc::mq_notify(fd, &event)`. `EBUSY`: another process
///      is registered (only one may be, per queue).
///    * Drain: receive until `EAGAIN`, printing each message.
///    * Stop once `count` messages are printed. Else log `waiting …`, wait
///      for the notification, log it, and go round: register again.
/// 4. Log `received N messages` and return (closing the descriptor cancels
///    the registration).
///
/// Notification is **one-shot**: after each one, register again, and do it
/// **before** draining. It comes only when a message arrives on an
/// **empty** queue: a message that was there at registration (or that
/// arrived after a drain and before a late registration) is never
/// announced. And while another process is blocked in `mq_receive` on the
/// queue, a new message goes to it: no notification, and the registration
/// stays.
pub fn notify(
    queue: &Queue,
    by: Notification,
    count: usize,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let event = match by {
        Notification::Signal => {
            let mut blocked = SigSet::empty();
            blocked.add(NOTIFY_SIGNAL);
            blocked.thread_block().context("block SIGUSR1")?;
            SigEvent::new(SigevNotify::SigevSignal {
                signal: NOTIFY_SIGNAL,
                si_value: 0,
            })
            .sigevent()
        }
        Notification::Thread => mq::thread_notification(count_notification),
    };
    set_nonblocking(queue, true).context("mq_setattr")?;
    let mut received = 0;
    let mut seen = 0;
    for number in 1.. {
        register(queue, &event)?;
        if number == 1 {
            writeln!(out, "registered for notification by {}", by.as_str())?;
        }
        received += drain(queue, out)?;
        if received >= count {
            break;
        }
        writeln!(out, "waiting for notification {number}")?;
        out.flush()?;
        match by {
            Notification::Signal => {
                let sender = wait_for_notification_signal()?;
                writeln!(out, "notification {number}: SIGUSR1 from pid {sender}")?;
            }
            Notification::Thread => {
                seen = wait_for_notification_thread(seen);
                writeln!(out, "notification {number}: in a new thread")?;
            }
        }
    }
    writeln!(out, "received {received} messages")?;
    Ok(())
}

impl Notification {
    /// `signal` or `thread`.
    fn as_str(self) -> &'static str {
        match self {
            Notification::Signal => "signal",
            Notification::Thread => "thread",
        }
    }
}

/// `mq_notify(queue, event)`: one registration, for one notification.
fn register(queue: &Queue, event: &libc::sigevent) -> anyhow::Result<()> {
    // SAFETY: the kernel (or glibc, for SIGEV_THREAD) reads the sigevent.
    let done = unsafe { libc::mq_notify(queue.as_fd().as_raw_fd(), event) };
    match Errno::result(done) {
        Ok(_) => Ok(()),
        Err(Errno::EBUSY) => {
            bail!("mq_notify: EBUSY: another process is registered for notification on this queue")
        }
        Err(errno) => Err(errno).context("mq_notify"),
    }
}

/// Receives and prints every message in the (non-blocking) queue; how many.
fn drain(queue: &Queue, out: &mut impl Write) -> anyhow::Result<usize> {
    let mut drained = 0;
    loop {
        match receive(queue, None, None) {
            Err(Errno::EAGAIN) => return Ok(drained),
            other => writeln!(out, "{}", other.context("mq_receive")?)?,
        }
        out.flush()?;
        drained += 1;
    }
}

/// Waits for the (blocked) notification signal; the sender's pid.
fn wait_for_notification_signal() -> anyhow::Result<libc::pid_t> {
    let mut set = SigSet::empty();
    set.add(NOTIFY_SIGNAL);
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    loop {
        // SAFETY: sigwaitinfo reads the set and fills the siginfo_t.
        let signal = unsafe { libc::sigwaitinfo(set.as_ref(), info.as_mut_ptr()) };
        match Errno::result(signal) {
            Err(Errno::EINTR) => continue,
            other => other.context("sigwaitinfo")?,
        };
        // SAFETY: zeroed, then filled in by the kernel.
        let info = unsafe { info.assume_init() };
        if info.si_code != libc::SI_MESGQ {
            bail!("SIGUSR1 came from elsewhere (si_code {})", info.si_code);
        }
        // SAFETY: for SI_MESGQ the kernel sets si_pid.
        return Ok(unsafe { info.si_pid() });
    }
}

/// Runs in a new thread at each notification by thread: counts it.
extern "C" fn count_notification(_: libc::sigval) {
    let mut count = NOTIFICATIONS.lock().unwrap_or_else(PoisonError::into_inner);
    *count += 1;
    NOTIFICATION_CAME.notify_all();
}

/// Waits until more than `seen` notifications by thread have come; the
/// count then.
fn wait_for_notification_thread(seen: u64) -> u64 {
    let mut count = NOTIFICATIONS.lock().unwrap_or_else(PoisonError::into_inner);
    while *count == seen {
        count = NOTIFICATION_CAME
            .wait(count)
            .unwrap_or_else(PoisonError::into_inner);
    }
    *count
}

/// The client of chapter 05, on POSIX queues: asks the server whose queue
/// is `server` for `word` ([`protocol::REQ_TICKET`], or anything else to
/// see a refusal) and returns the server's reply.
///
/// One deadline, `timeout` from now ([`deadline_after`]), bounds the whole
/// exchange.
///
/// 1. Open the server's queue for writing ([`open`], `O_WRONLY`). On
///    `ENOENT`, fail with `no server is listening on NAME`; other errors
///    with the context `open the server queue NAME`.
/// 2. Create the reply queue `reply`: [`create`] with `O_RDONLY`,
///    `exclusive` (a name someone else holds is not ours to read or to
///    unlink), 1 message of [`protocol::RESPONSE_MAX`] bytes (context
///    `create the reply queue NAME`). Call `created(reply)` at once: the
///    command line prints `client: reply queue NAME`.
/// 3. Send [`protocol::request_text`]`(word, reply)`, priority 0, with the
///    deadline: a full server queue makes `mq_timedsend` wait. `ETIMEDOUT`:
///    fail with `the server's queue stayed full until the time limit`;
///    other errors with the context `send the request`.
/// 4. Receive the response on the reply queue with the deadline.
///    `ETIMEDOUT`: fail with `no reply from the server before the time
///    limit`. Priority [`protocol::RESP_TICKET`]: return its text.
///    [`protocol::RESP_ERROR`]: fail with `the server refused: TEXT`. Any
///    other: fail with `unexpected response of priority P`.
/// 5. Unlink the reply queue on **every** path after step 2, errors
///    included, or its name outlives the client. A small guard type whose
///    `Drop` calls [`unlink`] does this well.
///
/// Compare chapter 05: no timer, no `SIGALRM`, no `EINTR`. The time limit
/// is an argument of the call.
pub fn request(
    server: &str,
    reply: &str,
    word: &str,
    timeout: Duration,
    created: impl FnOnce(&str),
) -> anyhow::Result<String> {
    let deadline = deadline_after(timeout).context("clock_gettime")?;
    let server_queue = match open(server, MQ_OFlag::O_WRONLY) {
        Err(Errno::ENOENT) => bail!("no server is listening on {server}"),
        other => other.with_context(|| format!("open the server queue {server}"))?,
    };
    let capacity = Capacity {
        max_messages: 1,
        message_size: protocol::RESPONSE_MAX as c_long,
    };
    let reply_queue = ReplyQueue {
        queue: create(reply, MQ_OFlag::O_RDONLY, true, Some(capacity))
            .with_context(|| format!("create the reply queue {reply}"))?,
        name: reply,
    };
    created(reply);
    match send(
        &server_queue,
        &protocol::request_text(word, reply),
        0,
        Some(&deadline),
    ) {
        Err(Errno::ETIMEDOUT) => bail!("the server's queue stayed full until the time limit"),
        other => other.context("send the request")?,
    }
    let response = match receive(&reply_queue.queue, None, Some(&deadline)) {
        Err(Errno::ETIMEDOUT) => bail!("no reply from the server before the time limit"),
        other => other.context("receive the response")?,
    };
    let text = String::from_utf8_lossy(&response.text).into_owned();
    match response.priority {
        protocol::RESP_TICKET => Ok(text),
        protocol::RESP_ERROR => bail!("the server refused: {text}"),
        other => bail!("unexpected response of priority {other}"),
    }
}

/// A reply queue this client created: dropping it unlinks the name (and
/// closes the descriptor), on every path.
struct ReplyQueue<'a> {
    queue: Queue,
    name: &'a str,
}

impl Drop for ReplyQueue<'_> {
    fn drop(&mut self) {
        // Nothing better to do if it fails: the name is gone already.
        let _ = unlink(self.name);
    }
}

/// The ticket server of chapter 05, on a POSIX queue: hands out tickets on
/// the queue `name` until `SIGINT` or `SIGTERM`, writing its log to `out`.
///
/// 1. Block `SIGINT`, `SIGTERM` and `SIGCHLD` (`sigprocmask`, keeping the
///    old mask), and install handlers for them: one that stores the stop
///    signal's number in a static `AtomicI32`, and one for `SIGCHLD` that
///    does nothing (`SIGCHLD` is ignored by default, and an ignored signal
///    interrupts nothing). Blocked, a signal waits as pending: it is
///    delivered only inside `ppoll` (step 3).
/// 2. Create the queue: [`create`] with `O_RDONLY`, `exclusive`, and
///    [`protocol::SERVER_MAX_MESSAGES`] messages of
///    [`protocol::REQUEST_MAX`] bytes (context `create the server queue
///    NAME`). `EEXIST` means another server runs, or a killed one left its
///    queue: never serve a queue you did not create. Make it non-blocking,
///    and log `server: listening on NAME (mq_maxmsg 8, mq_msgsize 512)`.
/// 3. Loop: reap every child that has ended (`waitpid(-1, WNOHANG)` until
///    none is left to reap); stop if a stop signal was recorded; then wait
///    with `ppoll` for `POLLIN` on the queue, giving it the old mask.
///    `ppoll` installs that mask and waits in one atomic step: a signal
///    that came earlier is delivered at once, one that comes later ends
///    the wait, and either way `ppoll` fails with `EINTR`: go round again.
///    Then receive one request (`EAGAIN`: someone else took it; go round).
///    * A text that [`protocol::parse_request`] rejects: log `server:
///      ignored a malformed request of N bytes` and go on.
///    * [`protocol::REQ_TICKET`]: count it (the first is ticket 1) and log
///      `server: ticket N for REPLY`. Any other word: log `server: refused
///      "WORD" from REPLY`.
///    * Flush `out`, then `fork`. The child waits `work` (a slow service),
///      opens `REPLY` with `O_WRONLY | O_NONBLOCK` (a client's full queue
///      must not stall it), sends the response ([`protocol::RESP_TICKET`]
///      with [`protocol::ticket_reply`]`(N, its own pid)`, or
///      [`protocol::RESP_ERROR`] with [`protocol::refusal`]) and leaves
///      with `_exit`. If that fails (the client is gone), it first prints
///      `posix-mq: server: answer REPLY: ERRNO` on stderr. The parent
///      counts the tickets: a child's memory is a copy.
/// 4. On a stop signal: unlink the name, wait for every child, log
///    `server: SIGTERM: unlinked NAME, tickets handed out: N` (or `SIGINT`)
///    and return. `ENOENT` from `mq_unlink` is no error: someone unlinked
///    the name already, and the server went on serving the clients that had
///    the queue open; log `NAME was unlinked already` in place of
///    `unlinked NAME`. After any other error, still unlink the name and
///    wait for the children before returning the error.
///
/// Chapter 05's server had a gap: a stop signal that came after the check
/// of the flag and before `msgrcv` waited for the next request. With a
/// descriptor, `ppoll` closes it.
pub fn serve(name: &str, work: Duration, out: &mut impl Write) -> anyhow::Result<()> {
    let unblocked = block_and_handle_signals()?;
    let capacity = Capacity {
        max_messages: protocol::SERVER_MAX_MESSAGES,
        message_size: protocol::REQUEST_MAX as c_long,
    };
    let queue = create(name, MQ_OFlag::O_RDONLY, true, Some(capacity))
        .with_context(|| format!("create the server queue {name}"))?;
    let served = serve_requests(&queue, name, work, &unblocked, out);
    // Whatever ended the loop, the name goes and no child is left behind.
    let unlinked = unlink(name);
    let waited = wait_for_children();
    let tickets = served?;
    let what = match unlinked {
        Ok(()) => format!("unlinked {name}"),
        // Someone unlinked the name while we served: the queue was ours all
        // the same, and it goes when we close it.
        Err(Errno::ENOENT) => format!("{name} was unlinked already"),
        Err(errno) => return Err(errno).with_context(|| format!("mq_unlink {name}")),
    };
    waited?;
    let signal = Signal::try_from(STOP.load(Ordering::SeqCst)).map_or("stop", Signal::as_str);
    writeln!(
        out,
        "server: {signal}: {what}, tickets handed out: {tickets}"
    )?;
    Ok(())
}

/// What the child forked for one request sends back.
#[derive(Debug, Clone)]
enum Answer {
    /// The ticket number the parent counted.
    Ticket(u64),
    /// A request for something this server does not serve.
    Refusal(String),
}

/// Notes which stop signal arrived: the loop looks after `ppoll`.
extern "C" fn note_stop(signal: c_int) {
    STOP.store(signal, Ordering::SeqCst);
}

/// Does nothing: its only effect is that `ppoll` returns when a child ends.
extern "C" fn child_ended(_: c_int) {}

/// Blocks `SIGINT`, `SIGTERM` and `SIGCHLD` and installs their handlers;
/// returns the mask to wait with, in which they are unblocked.
fn block_and_handle_signals() -> anyhow::Result<SigSet> {
    let mut handled = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
        handled.add(signal);
    }
    let mut unblocked = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), Some(&mut unblocked))
        .context("sigprocmask")?;
    let stop = SigAction::new(
        SigHandler::Handler(note_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let child = SigAction::new(
        SigHandler::Handler(child_ended),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handlers only store into an atomic, or do nothing.
    unsafe {
        sigaction(Signal::SIGINT, &stop).context("sigaction(SIGINT)")?;
        sigaction(Signal::SIGTERM, &stop).context("sigaction(SIGTERM)")?;
        sigaction(Signal::SIGCHLD, &child).context("sigaction(SIGCHLD)")?;
    }
    Ok(unblocked)
}

/// The server's loop: returns the number of tickets handed out when a stop
/// signal comes.
fn serve_requests(
    queue: &Queue,
    name: &str,
    work: Duration,
    unblocked: &SigSet,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    set_nonblocking(queue, true).context("mq_setattr")?;
    let capacity = attributes(queue).context("mq_getattr")?.capacity;
    writeln!(
        out,
        "server: listening on {name} (mq_maxmsg {}, mq_msgsize {})",
        capacity.max_messages, capacity.message_size
    )?;
    out.flush()?;
    let mut tickets = 0;
    loop {
        reap_children()?;
        if STOP.load(Ordering::SeqCst) != 0 {
            return Ok(tickets);
        }
        let mut fds = [PollFd::new(queue.as_fd(), PollFlags::POLLIN)];
        match ppoll(&mut fds, None, Some(*unblocked)) {
            // A signal: a child ended, or we were asked to stop.
            Err(Errno::EINTR) => continue,
            other => other.context("ppoll")?,
        };
        let request = match receive(queue, None, None) {
            Err(Errno::EAGAIN) => continue,
            other => other.context("receive a request")?,
        };
        let Some((word, reply)) = protocol::parse_request(&request.text) else {
            writeln!(
                out,
                "server: ignored a malformed request of {} bytes",
                request.text.len()
            )?;
            continue;
        };
        let answer = if word == protocol::REQ_TICKET {
            tickets += 1;
            writeln!(out, "server: ticket {tickets} for {reply}")?;
            Answer::Ticket(tickets)
        } else {
            writeln!(out, "server: refused {word:?} from {reply}")?;
            Answer::Refusal(word)
        };
        // Nothing may wait in a buffer when we fork, or the child has a copy.
        out.flush()?;
        answer_in_child(&reply, answer, work)?;
    }
}

/// Forks a child that answers one request on the client's reply queue.
fn answer_in_child(reply: &str, answer: Answer, work: Duration) -> anyhow::Result<()> {
    // SAFETY: the server is single-threaded; the child sleeps, opens a
    // queue, sends one message, maybe writes a line, and leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { .. } => Ok(()),
        ForkResult::Child => {
            std::thread::sleep(work);
            let status = match answer_to(reply, &answer) {
                Ok(()) => 0,
                Err(errno) => {
                    eprintln!("posix-mq: server: answer {reply}: {errno}");
                    1
                }
            };
            // SAFETY: _exit ends the child at once, without running the
            // parent's destructors (which would close and unlink its queue).
            unsafe { libc::_exit(status) }
        }
    }
}

/// Opens the reply queue without blocking and sends the answer.
fn answer_to(reply: &str, answer: &Answer) -> Result<(), Errno> {
    let (priority, text) = match answer {
        Answer::Ticket(ticket) => (
            protocol::RESP_TICKET,
            protocol::ticket_reply(*ticket, std::process::id() as i32),
        ),
        Answer::Refusal(word) => (protocol::RESP_ERROR, protocol::refusal(word)),
    };
    let client = open(reply, MQ_OFlag::O_WRONLY | MQ_OFlag::O_NONBLOCK)?;
    send(&client, text.as_bytes(), priority, None)
}

/// Reaps every child that has ended, without waiting for the others.
fn reap_children() -> anyhow::Result<()> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(()),
            Ok(_) => continue,
            Err(errno) => return Err(errno).context("waitpid"),
        }
    }
}

/// Waits until no child is left.
fn wait_for_children() -> anyhow::Result<()> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Err(Errno::ECHILD) => return Ok(()),
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(errno) => return Err(errno).context("waitpid"),
        }
    }
}
