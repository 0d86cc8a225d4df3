//! # Lab 15: multiplexing (多路复用)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/15-multiplexing.md` and the grading
//! suite `tests/15-multiplexing.rs`. Run `cargo test` in this directory to
//! grade your work; `cargo run -- --help` shows the command you are
//! building.
//!
//! One thread, many descriptors: `poll` watches a few FIFOs (task 1); an
//! eventfd and a timerfd are descriptors that hold a counter and a clock
//! (task 2); a non-blocking socket is read and written until `EAGAIN`
//! (tasks 3 and 4); and one `epoll` instance runs a relay (chat) server for
//! a thousand clients, with a signalfd, a timerfd and a POSIX message queue
//! beside its sockets (tasks 5 and 6).
//!
//! Given, in files of their own: `cli.rs`, the command line; `wire.rs`,
//! the relay's frames; `buffers.rs`, the parts of `Inbox` and `Outbox`
//! that are not tasks; `listener.rs`, the listening socket; `queue.rs`,
//! the announcement queue; `limits.rs`, the descriptor limit; `relay.rs`,
//! the parts of the relay that are not tasks (removing a client, writing
//! what waits, the idle clock); and `client.rs`, the `chat` client, which
//! uses your `Inbox` and `Outbox`. You may add private helper functions
//! and types here.
//!
//! nix has the calls: `nix::poll`, `nix::sys::epoll`, `nix::sys::eventfd`,
//! `nix::sys::timerfd`, `nix::sys::signalfd`, `nix::unistd::{read,
//! write}`.

// The stubs below do not use their parameters, nor some fields, yet.
// Delete this line once every TODO is done, so that the compiler warns you
// about anything unused.
#![allow(unused_variables, dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::timerfd::TimerFd;

use self::listener::Listener;
use self::queue::AnnounceQueue;

pub mod buffers;
pub mod cli;
pub mod client;
pub mod limits;
pub mod listener;
pub mod queue;
pub mod relay;
pub mod wire;

// ANCHOR: watch
/// What [`watch`] saw on one FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// It was readable: this many bytes were read, until `EAGAIN` or
    /// end-of-file.
    Data(usize),
    /// Its writers are gone: end-of-file. It is watched no more.
    Closed,
}

/// Opens the FIFO at `path` for reading, without waiting for a writer.
///
/// `open(2)` with `O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW`
/// (nix: `fcntl::open`). Without `O_NONBLOCK`, opening a FIFO for reading
/// sleeps until some process opens it for writing (chapter 04): a program
/// that watches three FIFOs would sit in the first `open` while data waits
/// in the other two. With it, `open` returns at once, and the descriptor
/// stays non-blocking: a `read` that would wait fails with `EAGAIN`
/// instead. `O_NOFOLLOW` refuses a symbolic link (`ELOOP`): a path a peer
/// names is opened as it is.
///
/// Then check what was opened with `fstat` on the descriptor (Rust:
/// `File::from(fd).metadata()`, or `nix::sys::stat::fstat`), never by
/// looking at the path first: something that is not a FIFO fails with
/// `PATH: not a FIFO`. Other errors name the path: `open PATH: ENOENT: No
/// such file or directory`.
pub fn open_fifo(path: &Path) -> anyhow::Result<OwnedFd> {
    // TODO(1): open with O_NONBLOCK | O_NOFOLLOW, then fstat: a FIFO?
    todo!("TODO(1): open_fifo")
}

/// Watches `fifos` (opened by [`open_fifo`]) with one `poll(2)` until the
/// writers of every one of them have gone, and calls `report(i, seen)` for
/// what happens on `fifos[i]`, in the order it happens.
///
/// 1. `poll` the FIFOs still open, each for `POLLIN`, with no timeout
///    (nix: `poll(&mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN), …],
///    PollTimeout::NONE)`). `EINTR` means poll again.
/// 2. For each FIFO whose `revents` are not empty, read until `read`
///    fails with `EAGAIN` (nothing more for now: the writer is still
///    there) or returns 0 (end-of-file: every writer has closed it). If
///    any bytes came, report `Seen::Data(total)`; at end-of-file, report
///    `Seen::Closed` **after** the data, and stop watching that FIFO.
///
/// `POLLHUP` in `revents` means the writers are gone, but it comes with
/// `POLLIN` when they wrote before they left: read what is there first,
/// or it is lost. And a descriptor that has hung up stays "ready" for
/// ever: `poll` on it returns at once, every time. Leave it in the set and
/// the loop spins, burning a CPU, instead of sleeping in `poll`.
///
/// (A FIFO that no writer has opened yet is not "hung up": `poll` waits
/// on it. `read` on it returns 0 at once, which is why this function reads
/// only what `poll` says is ready.)
pub fn watch(fifos: &[OwnedFd], report: &mut dyn FnMut(usize, Seen)) -> anyhow::Result<()> {
    // TODO(1): poll the open FIFOs; read each ready one until EAGAIN or EOF; drop the closed
    todo!("TODO(1): watch")
}
// ANCHOR_END: watch

// ANCHOR: counter
/// One operation on an eventfd's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    /// `write(2)` this number: it is added to the counter.
    Add(u64),
    /// `read(2)`: take from the counter.
    Take,
}

/// What one operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterResult {
    /// The number was added.
    Added,
    /// The read returned this number.
    Took(u64),
    /// `EAGAIN`: a read found the counter at 0, or an addition would have
    /// taken it past its largest value, `0xffff_ffff_ffff_fffe`.
    WouldBlock,
    /// `EINVAL`: `0xffff_ffff_ffff_ffff` may not be written.
    Invalid,
}

/// Makes an eventfd whose counter starts at `initial` and applies `ops` to
/// it in order; returns what each did.
///
/// An eventfd (`eventfd(2)`; nix: `EventFd::from_value_and_flags`) is a
/// descriptor around one 64-bit counter, the cheapest wake-up there is: a
/// `write` adds, and makes the descriptor readable for `poll` and `epoll`;
/// a `read` takes. Make it with `EFD_NONBLOCK | EFD_CLOEXEC`, and with
/// `EFD_SEMAPHORE` when `semaphore` is set.
///
/// * `Add(n)`: `write` exactly 8 bytes, `n` in the machine's **own** byte
///   order (`u64::to_ne_bytes`): this is a number in memory, not a message
///   on a wire.
/// * `Take`: `read` exactly 8 bytes (a smaller buffer is `EINVAL`). Without
///   `EFD_SEMAPHORE`, the read returns the whole counter and sets it to 0:
///   "how many times was I woken?". With it, it returns 1 and takes 1: a
///   counting semaphore (chapter 06) in a descriptor.
/// * `EAGAIN` and `EINVAL` are results, not errors (see
///   [`CounterResult`]); any other errno is an error.
pub fn counter(
    initial: u32,
    semaphore: bool,
    ops: &[CounterOp],
) -> anyhow::Result<Vec<CounterResult>> {
    // TODO(2): eventfd with EFD_NONBLOCK (and EFD_SEMAPHORE); 8-byte writes and reads
    todo!("TODO(2): counter")
}

/// Arms a timerfd, sleeps without reading it, then reads it `reads` times
/// in a row; returns what each read returned: the number of expirations
/// since the timer was armed or last read, or `None` for `EAGAIN`.
///
/// 1. `timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)` (nix:
///    `TimerFd::new`). `CLOCK_MONOTONIC` never jumps when someone sets the
///    date, which is what a timeout wants.
/// 2. `timerfd_settime` (nix: `TimerFd::set`): first expiry `first` from
///    now; then, if `every` is given, every `every` after that
///    (`Expiration::IntervalDelayed`), else never again
///    (`Expiration::OneShot`).
/// 3. `thread::sleep(sleep)`: the timer goes on expiring, and the kernel
///    counts. Nothing is lost by not reading, unlike a signal.
/// 4. Each read takes exactly 8 bytes, a `u64` in native byte order: how
///    many times the timer expired since the last read, which resets the
///    count. A read before the next expiry fails with `EAGAIN`
///    (`TFD_NONBLOCK`): `None`. A one-shot timer that has expired and been
///    read never becomes readable again.
pub fn timer(
    first: Duration,
    every: Option<Duration>,
    sleep: Duration,
    reads: usize,
) -> anyhow::Result<Vec<Option<u64>>> {
    // TODO(2): timerfd_create, timerfd_settime, sleep, then 8-byte reads
    todo!("TODO(2): timer")
}
// ANCHOR_END: counter

// ANCHOR: inbox
/// The bytes received on a non-blocking connection that do not make a
/// whole frame yet.
#[derive(Debug)]
pub struct Inbox {
    /// Bytes received and not yet taken out as frames: the start of at
    /// most one frame, between two calls of [`Inbox::receive`].
    pending: Vec<u8>,
    /// The largest payload accepted, in bytes.
    max: usize,
}

/// What one [`Inbox::receive`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The payloads of the frames completed, in the order they came.
    pub frames: Vec<Vec<u8>>,
    /// Whether the peer has closed its end (end-of-file) between two
    /// frames: nothing more will come.
    pub closed: bool,
}

impl Inbox {
    /// Reads everything `input` has for now, and returns the frames it
    /// completes (chapter 13's format: a 4-byte big-endian length, then
    /// the payload).
    ///
    /// `input` is a **non-blocking** socket. Read into a buffer of
    /// [`buffers::READ_CHUNK`] bytes, again and again:
    ///
    /// * `Ok(n)`: append the bytes to `pending`, then take out every frame
    ///   it now holds whole, and keep the rest (the start of the next
    ///   frame) for later. Refuse a length over `max` as soon as the 4
    ///   bytes of the prefix are there, before waiting for (or allocating)
    ///   the payload: `a frame of N bytes is over the limit of MAX`.
    /// * `Err` of kind `WouldBlock` (`EAGAIN`): the socket is empty. Return
    ///   what you have. This is the only way to know that: a read that
    ///   filled the buffer may have left more behind.
    /// * `Ok(0)`: end-of-file; `closed` is set. It is clean only between
    ///   two frames: with bytes pending, fail with `the peer left in the
    ///   middle of a length prefix (N of 4 bytes)` or `the peer left in the
    ///   middle of a frame (N of L bytes)`.
    /// * `Interrupted` (`EINTR`): read again. Any other error is returned.
    ///
    /// Why read until `EAGAIN`? The relay registers its clients with
    /// `epoll` **edge-triggered** (`EPOLLET`): `epoll_wait` reports a
    /// socket when new data arrives, not while data is waiting. Bytes left
    /// in the socket after a `receive` are never reported again, unless
    /// the client happens to send more.
    pub fn receive(&mut self, input: &mut impl Read) -> anyhow::Result<Received> {
        // TODO(3): read until EAGAIN; take out every whole frame; check the length first
        todo!("TODO(3): Inbox::receive")
    }
}
// ANCHOR_END: inbox

// ANCHOR: outbox
/// What waits to be written to a non-blocking connection, with a limit.
#[derive(Debug)]
pub struct Outbox {
    /// The bytes queued; the first `sent` of them are written already.
    queued: Vec<u8>,
    /// How many bytes at the start of `queued` have been written.
    sent: usize,
    /// The most bytes that may wait, written or not.
    limit: usize,
}

/// An [`Outbox`] has no room for a frame: its peer reads too slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// The bytes that would be waiting with the frame.
    pub waiting: usize,
    /// The outbox's limit.
    pub limit: usize,
}

/// How far [`Outbox::flush`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything is written; the outbox is empty.
    All,
    /// The socket is full (`EAGAIN`): the rest waits until the peer reads
    /// (`POLLOUT`, `EPOLLOUT`).
    Blocked,
}

impl Outbox {
    /// Queues the bytes of `frame` behind what is waiting, unless that
    /// would make more than `limit` bytes wait: then `Err(Full)`, and
    /// nothing is queued.
    ///
    /// The limit is what keeps a reader that stopped reading from costing
    /// memory without end: without it, every message for that reader
    /// stays in the relay. Once the kernel's buffer for the socket is full
    /// (a few hundred KiB), its outbox grows; when it reaches the limit,
    /// the relay drops the reader, and says why.
    pub fn push(&mut self, frame: &[u8]) -> Result<(), Full> {
        // TODO(4): refuse what would pass the limit; else append
        todo!("TODO(4): Outbox::push")
    }

    /// Writes what is waiting into `output`, a **non-blocking** socket,
    /// until everything is written or the socket is full.
    ///
    /// * `Ok(n)`: `n` more bytes are written (fewer than offered, often:
    ///   a partial write); write the rest. `Ok(0)` is an error
    ///   (`io::ErrorKind::WriteZero`).
    /// * `WouldBlock` (`EAGAIN`): the socket is full. Keep the rest and
    ///   return `Flushed::Blocked`. Never try again at once: that is a
    ///   loop that spins while the peer takes its time, and a relay
    ///   spinning for one slow client serves nobody else.
    /// * `Interrupted` (`EINTR`): write again. Other errors (`EPIPE`,
    ///   `ECONNRESET`: the peer is gone) are returned.
    /// * When everything is written, empty the buffer (`queued.clear()`,
    ///   `sent = 0`) and return `Flushed::All`. When only part is, drop the
    ///   written bytes from the front (`queued.drain(..sent)`) once they
    ///   are more than half of it, so that it does not grow.
    ///
    /// Stopping at `EAGAIN` is what edge-triggered `EPOLLOUT` requires:
    /// epoll reports the socket again when it **becomes** writable, which
    /// only happens after a write found it full.
    pub fn flush(&mut self, output: &mut impl Write) -> io::Result<Flushed> {
        // TODO(4): write until everything is written or EAGAIN
        todo!("TODO(4): Outbox::flush")
    }
}
// ANCHOR_END: outbox

// ANCHOR: relay
/// The `epoll` token (`EpollEvent::data`) of the listening socket.
/// Clients use their number as their token: numbers are never reused, so
/// an event for a client closed earlier in the same batch finds no client
/// and is ignored. (A descriptor's number is reused at once, by the next
/// `accept`: a poor token.)
pub const LISTENER: u64 = u64::MAX;
/// The token of the signalfd.
pub const SIGNALS: u64 = u64::MAX - 1;
/// The token of the timerfd.
pub const TIMER: u64 = u64::MAX - 2;
/// The token of the announcement queue.
pub const QUEUE: u64 = u64::MAX - 3;

/// How many events one `epoll_wait` may return.
pub const EVENTS_PER_WAIT: usize = 256;

/// What the relay was told on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The most bytes that may wait for one client ([`Outbox`]'s limit).
    pub max_queue: usize,
    /// How long a client may go without sending a whole message.
    pub idle: Duration,
}

/// One connected client.
#[derive(Debug)]
pub struct Client {
    /// Its number: 1 for the first client accepted, and so on.
    number: u32,
    /// Its connection, non-blocking.
    stream: UnixStream,
    /// What it sent that is not a whole frame yet.
    inbox: Inbox,
    /// What waits to be written to it.
    outbox: Outbox,
    /// When its last whole message came (or it connected).
    heard: Instant,
}

/// What the relay did, for its last words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Clients accepted.
    pub clients: u64,
    /// Messages received from clients and passed on.
    pub messages: u64,
    /// Messages received on the announcement queue and passed on.
    pub announcements: u64,
    /// Copies of messages queued for clients.
    pub copies: u64,
    /// Clients dropped for reading too slowly.
    pub too_slow: u64,
    /// Clients closed for saying nothing for too long.
    pub idle: u64,
    /// Clients dropped for breaking the protocol.
    pub broken: u64,
}

/// A relay (chat) server on one thread: every message a client sends goes
/// to every other client, and one `epoll` instance waits for everything.
#[derive(Debug)]
pub struct Relay {
    /// The epoll instance: its interest list holds every descriptor below.
    epoll: Epoll,
    /// The listening socket (token [`LISTENER`]).
    listener: Listener,
    /// SIGINT and SIGTERM, as a descriptor (token [`SIGNALS`]).
    signals: SignalFd,
    /// The tick that closes idle clients (token [`TIMER`]).
    timer: TimerFd,
    /// The announcement queue, if any (token [`QUEUE`]).
    queue: Option<AnnounceQueue>,
    /// The clients, by number (their token).
    clients: BTreeMap<u32, Client>,
    /// The number of the last client accepted.
    last_number: u32,
    /// Whether the listener is in the interest list (not after `EMFILE`).
    accepting: bool,
    /// The command line's settings.
    settings: Settings,
    /// What happened so far.
    tally: Tally,
}

impl Relay {
    /// Builds the relay around `listener` (and `queue`), with one `epoll`
    /// instance that watches everything.
    ///
    /// 1. `epoll_create1(EPOLL_CLOEXEC)` (nix: `Epoll::new`).
    /// 2. A **signalfd** for the signals in `stop` (SIGINT and SIGTERM),
    ///    `SFD_NONBLOCK | SFD_CLOEXEC` (nix: `SignalFd::with_flags`). The
    ///    caller has blocked them already, before the socket file existed:
    ///    a blocked signal is not delivered, it waits, pending, and the
    ///    signalfd becomes readable. No handler runs, nothing is
    ///    interrupted, and stopping is one more event of the loop.
    /// 3. A **timerfd** on `CLOCK_MONOTONIC`, `TFD_NONBLOCK |
    ///    TFD_CLOEXEC`, armed to expire every [`relay::tick`]`(idle)`, at
    ///    which the loop closes the clients that have been silent too long.
    /// 4. Register them with `epoll_ctl(EPOLL_CTL_ADD)` (nix:
    ///    `epoll.add(fd, EpollEvent::new(flags, token))`): the listener
    ///    with `EPOLLIN | EPOLLET` and token [`LISTENER`]; the signalfd, the
    ///    timerfd and the queue with `EPOLLIN` (level-triggered) and tokens
    ///    [`SIGNALS`], [`TIMER`], [`QUEUE`].
    ///
    /// Errors name the call: `epoll_ctl(EPOLL_CTL_ADD) the timerfd: …`.
    pub fn new(
        listener: Listener,
        queue: Option<AnnounceQueue>,
        stop: &SigSet,
        settings: Settings,
    ) -> anyhow::Result<Relay> {
        // TODO(5): epoll_create1, signalfd, timerfd, then epoll_ctl ADD each
        todo!("TODO(5): Relay::new")
    }

    /// Runs the event loop until a stop signal comes; then closes every
    /// client ([`Relay::close_all`]) and returns the signal.
    ///
    /// Loop: `epoll_wait` with no timeout (nix: `self.epoll.wait(&mut
    /// events, EpollTimeout::NONE)`, `events` a buffer of
    /// [`EVENTS_PER_WAIT`] `EpollEvent::empty()`; `EINTR` means wait
    /// again). For each event, by its token (`event.data()`):
    ///
    /// * the listener, [`LISTENER`]: [`Relay::accept_clients`].
    /// * the signalfd, [`SIGNALS`]: read it (nix: `read_signal`, which reads
    ///   one `struct signalfd_siginfo`; `Ok(None)` is `EAGAIN`). A signal:
    ///   close every client and return it (`Signal::try_from(ssi_signo as
    ///   i32)`).
    /// * the timerfd, [`TIMER`]: read its 8 bytes (the expirations;
    ///   `EAGAIN` is harmless), then [`Relay::close_idle_clients`]. Do
    ///   read it: a timerfd that has expired stays readable until it is
    ///   read, and, registered level-triggered, it would make every
    ///   `epoll_wait` return at once, for ever.
    /// * the queue, [`QUEUE`]: [`Relay::pass_on_announcements`].
    /// * anything else is a client's number: [`Relay::serve_client`] with
    ///   `event.events()`.
    ///
    /// After each batch of events, [`Relay::flush_clients`]: every frame
    /// the batch queued is written now, in as few `write` calls as there
    /// are clients with something waiting.
    pub fn run(&mut self) -> anyhow::Result<Signal> {
        // TODO(5): epoll_wait; dispatch on the token; read the signalfd and the timerfd; flush
        todo!("TODO(5): Relay::run")
    }

    /// Accepts every connection that waits, and makes each a client.
    ///
    /// The listener is edge-triggered: one event may stand for many
    /// connections, and no other comes for them. So `accept` (nix or std:
    /// `self.listener.socket().accept()`) in a loop, until it fails with
    /// `WouldBlock` (`EAGAIN`): the queue is empty. For each connection:
    ///
    /// 1. Make it non-blocking (`set_nonblocking(true)`): on Linux, a
    ///    socket that `accept` returns does **not** inherit `O_NONBLOCK`
    ///    from the listener, and one blocking read or write would stop the
    ///    whole relay.
    /// 2. Number it (`last_number + 1`) and register it with
    ///    `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`, its number as the
    ///    token. Edge-triggered `EPOLLOUT` reports the socket when it
    ///    becomes writable again after a write found it full, and stays
    ///    quiet otherwise: no need to switch it on and off.
    /// 3. Queue its welcome, `relay: welcome, client N` (`wire::relayed`
    ///    from [`wire::FROM_RELAY`]), in a new [`Outbox`] of
    ///    `settings.max_queue` bytes; a new [`Inbox`] of
    ///    [`wire::MAX_MESSAGE`]; `heard` now. Count it (`tally.clients`).
    ///
    /// `EMFILE` or `ENFILE` (no descriptor left for the connection):
    /// [`Relay::pause_accepting`] and return; the connection waits in the
    /// queue until a client leaves. `EINTR` and `ECONNABORTED`: accept
    /// again. Any other error is returned. A connection that cannot be
    /// set up (`epoll_ctl` fails) is reported on standard error and closed;
    /// the relay goes on.
    pub fn accept_clients(&mut self) -> anyhow::Result<()> {
        // TODO(6): accept until EAGAIN; non-blocking; register edge-triggered; welcome
        todo!("TODO(6): Relay::accept_clients")
    }

    /// Handles an event of client `number` (`events`: what `epoll_wait`
    /// reported). The client may be gone already, closed by an earlier
    /// event of the same batch: then do nothing.
    ///
    /// If the events hold any of `EPOLLIN`, `EPOLLRDHUP`, `EPOLLHUP` or
    /// `EPOLLERR`, [`Inbox::receive`] from its stream:
    ///
    /// * each frame is a message: if any came, set `heard` to now; pass
    ///   each on with [`Relay::broadcast`], in order;
    /// * `closed`: the client left; [`Relay::remove_client`] with no
    ///   reason (a normal departure);
    /// * an error (a frame over the limit, a client that left mid-frame):
    ///   [`Relay::remove_client`] with `Dropped::Broken(format!("{error:#}"))`.
    ///
    /// `EPOLLOUT` alone needs nothing here: [`Relay::flush_clients`] writes
    /// to every client with something waiting after each batch.
    pub fn serve_client(&mut self, number: u32, events: EpollFlags) {
        // TODO(6): receive until EAGAIN; broadcast each message; remove on EOF or error
        todo!("TODO(6): Relay::serve_client")
    }

    /// Passes `message` from `from` (a client's number, or
    /// [`wire::FROM_RELAY`]) on to every **other** client: the frame
    /// `wire::relayed(from, message)`, built once, pushed into each
    /// client's [`Outbox`] (counted in `tally.copies`).
    ///
    /// Nothing is written here as a rule: one `write` per client after the
    /// batch ([`Relay::flush_clients`]) carries all the frames queued for
    /// it. But an outbox that is [`Full`] may only hold what this batch
    /// queued: [`Outbox::flush`] it first, then push again. Still full,
    /// its client reads too slowly: after the loop over the clients (not
    /// during it: the map is being walked), [`Relay::remove_client`] each
    /// of them with `Dropped::TooSlow(full)`.
    ///
    /// Count the message: `tally.announcements` if it came from the relay,
    /// `tally.messages` otherwise.
    pub fn broadcast(&mut self, from: u32, message: &[u8]) {
        // TODO(6): push the relayed frame into every other outbox; drop the full ones after
        todo!("TODO(6): Relay::broadcast")
    }
}
// ANCHOR_END: relay
