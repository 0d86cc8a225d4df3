//! # Lab 09: POSIX message queues (POSIX 消息队列)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/09-posix-mq.md` and the grading
//! suite `tests/09-posix-mq.rs`. Run `cargo test` in this directory to grade
//! your work; `cargo run -- --help` shows the command you are building.
//!
//! nix wraps most of the POSIX message queue calls (`nix::mqueue`); two it
//! lacks, `mq_timedsend` and `mq_notify`, come from `libc`, and so does
//! `mq_open` with a NULL `attr` (see [`create`]). Tasks 1 and 2 are the
//! calls themselves; task 3 waits on several queues with `poll`, task 4
//! with `mq_notify`; tasks 5 and 6 rebuild chapter 05's ticket client and
//! server on POSIX queues.
//!
//! The command line in `cli.rs`, the wire format in `protocol.rs` and the
//! owned descriptor [`Queue`] in `mq.rs` are given. You may add private
//! helper functions (and types, and statics) here.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::Write;
use std::time::Duration;

use libc::c_long;
use nix::errno::Errno;
use nix::mqueue::MQ_OFlag;
use nix::sys::signal::Signal;
use nix::sys::time::TimeSpec;

pub mod cli;
pub mod mq;
pub mod protocol;

pub use mq::Queue;

// ANCHOR: types
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
// ANCHOR_END: types

// ANCHOR: create
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
    // TODO(1): mq_open(name, O_CREAT | access [| O_EXCL], 0600, attr or NULL).
    todo!("TODO(1): create")
}
// ANCHOR_END: create

// ANCHOR: open
/// Opens the existing queue `name` for `access`: `mq_open(name, access)`.
///
/// Without `O_CREAT` there is no mode and no `attr` to pass:
/// `mq_open(name, access, Mode::empty(), None)` is right here.
///
/// Errors: `ENOENT` (no queue has this name), `EACCES` (the queue's mode
/// denies `access`, or a second `/`), `EINVAL` (no leading `/`),
/// `ENAMETOOLONG`, `EMFILE` (no descriptor left).
pub fn open(name: &str, access: MQ_OFlag) -> Result<Queue, Errno> {
    // TODO(1): mq_open(name, access), no mode, no attr.
    todo!("TODO(1): open")
}
// ANCHOR_END: open

// ANCHOR: unlink
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
    // TODO(1): mq_unlink(name).
    todo!("TODO(1): unlink")
}
// ANCHOR_END: unlink

// ANCHOR: attributes
/// The queue's attributes: `mq_getattr`.
///
/// `mq_flags` holds `O_NONBLOCK` or nothing; compare it with
/// `libc::O_NONBLOCK` (as a `c_long`). `mq_maxmsg` and `mq_msgsize` are the
/// capacity, `mq_curmsgs` the messages in the queue now.
///
/// Errors: `EBADF`.
pub fn attributes(queue: &Queue) -> Result<Attributes, Errno> {
    // TODO(1): mq_getattr, then its four fields.
    todo!("TODO(1): attributes")
}
// ANCHOR_END: attributes

// ANCHOR: deadline_after
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
    // TODO(2): clock_gettime(CLOCK_REALTIME) + timeout.
    todo!("TODO(2): deadline_after")
}
// ANCHOR_END: deadline_after

// ANCHOR: send
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
    // TODO(2): mq_send, or libc::mq_timedsend with the deadline.
    todo!("TODO(2): send")
}
// ANCHOR_END: send

// ANCHOR: receive
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
    // TODO(2): a buffer of mq_msgsize bytes; mq_receive or mq_timedreceive; keep the length it returns.
    todo!("TODO(2): receive")
}
// ANCHOR_END: receive

// ANCHOR: set_nonblocking
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
    // TODO(2): mq_setattr with mq_flags O_NONBLOCK or 0.
    todo!("TODO(2): set_nonblocking")
}
// ANCHOR_END: set_nonblocking

// ANCHOR: watch
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
    // TODO(3): non-blocking descriptors, poll, one message per readable queue, silence.
    todo!("TODO(3): watch")
}
// ANCHOR_END: watch

// ANCHOR: notify
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
    // TODO(4): block SIGUSR1 (or use a static for the thread), register, drain, wait, register again.
    todo!("TODO(4): notify")
}
// ANCHOR_END: notify

// ANCHOR: request
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
    // TODO(5): open the server queue, create the reply queue, send, receive, unlink on every path.
    todo!("TODO(5): request")
}
// ANCHOR_END: request

// ANCHOR: serve
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
    // TODO(6): block the signals, O_EXCL, ppoll with the old mask, fork per request, reap, unlink.
    todo!("TODO(6): serve")
}
// ANCHOR_END: serve
