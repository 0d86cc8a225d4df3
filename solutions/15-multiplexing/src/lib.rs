//! # Lab 15: multiplexing (多路复用) — reference solution
//!
//! The same functions as `labs/15-multiplexing/src/lib.rs`, done. Read it
//! after you have written your own: compare where each loop stops (at
//! `EAGAIN`, never before), what happens to a descriptor once it has hung
//! up, and which buffer has a limit.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::sys::timer::Expiration;
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::unistd;

use self::listener::Listener;
use self::queue::AnnounceQueue;
use self::relay::Dropped;
use self::wire::{FROM_RELAY, HEADER, MAX_MESSAGE};

#[path = "../../../labs/15-multiplexing/src/buffers.rs"]
pub mod buffers;
#[path = "../../../labs/15-multiplexing/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/15-multiplexing/src/client.rs"]
pub mod client;
#[path = "../../../labs/15-multiplexing/src/limits.rs"]
pub mod limits;
#[path = "../../../labs/15-multiplexing/src/listener.rs"]
pub mod listener;
#[path = "../../../labs/15-multiplexing/src/queue.rs"]
pub mod queue;
#[path = "../../../labs/15-multiplexing/src/relay.rs"]
pub mod relay;
#[path = "../../../labs/15-multiplexing/src/wire.rs"]
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
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let fd = fcntl::open(path, flags, Mode::empty())
        .with_context(|| format!("open {}", path.display()))?;
    let file = std::fs::File::from(fd);
    let metadata = file
        .metadata()
        .with_context(|| format!("fstat {}", path.display()))?;
    if !metadata.file_type().is_fifo() {
        bail!("{}: not a FIFO", path.display());
    }
    Ok(OwnedFd::from(file))
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
    let mut watched: Vec<usize> = (0..fifos.len()).collect();
    let mut buffer = vec![0; 64 * 1024];
    while !watched.is_empty() {
        for (index, revents) in ready_fifos(fifos, &watched)? {
            if revents.contains(PollFlags::POLLNVAL) {
                bail!("poll: descriptor {index} is not open (POLLNVAL)");
            }
            let (bytes, ended) = drain(&fifos[index], &mut buffer)?;
            if bytes > 0 {
                report(index, Seen::Data(bytes));
            }
            if ended {
                report(index, Seen::Closed);
                watched.retain(|&i| i != index);
            }
        }
    }
    Ok(())
}
// ANCHOR_END: watch

/// Waits in `poll` until some of the `watched` FIFOs are ready; returns
/// their indexes and `revents`.
fn ready_fifos(fifos: &[OwnedFd], watched: &[usize]) -> anyhow::Result<Vec<(usize, PollFlags)>> {
    let mut polled: Vec<PollFd> = watched
        .iter()
        .map(|&i| PollFd::new(fifos[i].as_fd(), PollFlags::POLLIN))
        .collect();
    loop {
        match poll(&mut polled, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("poll"),
        }
    }
    Ok(watched
        .iter()
        .zip(&polled)
        .filter_map(|(&i, fd)| fd.revents().map(|revents| (i, revents)))
        .filter(|(_, revents)| !revents.is_empty())
        .collect())
}

/// Reads `fd` until `EAGAIN` or end-of-file: how many bytes, and whether
/// it ended.
fn drain(fd: &OwnedFd, buffer: &mut [u8]) -> anyhow::Result<(usize, bool)> {
    let mut total = 0;
    loop {
        match unistd::read(fd, buffer) {
            Ok(0) => return Ok((total, true)),
            Ok(n) => total += n,
            Err(Errno::EAGAIN) => return Ok((total, false)),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("read a FIFO"),
        }
    }
}

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
    let mut flags = EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC;
    if semaphore {
        flags |= EfdFlags::EFD_SEMAPHORE;
    }
    let eventfd = EventFd::from_value_and_flags(initial, flags).context("eventfd")?;
    ops.iter()
        .map(|&op| match op {
            CounterOp::Add(n) => add(&eventfd, n),
            CounterOp::Take => take(&eventfd),
        })
        .collect()
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
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .context("timerfd_create")?;
    let expiration = match every {
        Some(every) => Expiration::IntervalDelayed(TimeSpec::from(first), TimeSpec::from(every)),
        None => Expiration::OneShot(TimeSpec::from(first)),
    };
    timer
        .set(expiration, TimerSetTimeFlags::empty())
        .context("timerfd_settime")?;
    thread::sleep(sleep);
    (0..reads).map(|_| expirations(&timer)).collect()
}
// ANCHOR_END: counter

/// `write` of `n` on the eventfd.
fn add(eventfd: &EventFd, n: u64) -> anyhow::Result<CounterResult> {
    match unistd::write(eventfd, &n.to_ne_bytes()) {
        Ok(_) => Ok(CounterResult::Added),
        Err(Errno::EAGAIN) => Ok(CounterResult::WouldBlock),
        Err(Errno::EINVAL) => Ok(CounterResult::Invalid),
        Err(errno) => Err(errno).context("write to the eventfd"),
    }
}

/// `read` of the eventfd.
fn take(eventfd: &EventFd) -> anyhow::Result<CounterResult> {
    let mut bytes = [0; 8];
    match unistd::read(eventfd, &mut bytes) {
        Ok(_) => Ok(CounterResult::Took(u64::from_ne_bytes(bytes))),
        Err(Errno::EAGAIN) => Ok(CounterResult::WouldBlock),
        Err(errno) => Err(errno).context("read from the eventfd"),
    }
}

/// One read of a timerfd: its expirations, or `None` for `EAGAIN`.
fn expirations(timer: &impl AsFd) -> anyhow::Result<Option<u64>> {
    let mut bytes = [0; 8];
    loop {
        return match unistd::read(timer, &mut bytes) {
            Ok(_) => Ok(Some(u64::from_ne_bytes(bytes))),
            Err(Errno::EAGAIN) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(errno) => Err(errno).context("read from the timerfd"),
        };
    }
}

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
        let mut received = Received::default();
        let mut chunk = [0; buffers::READ_CHUNK];
        loop {
            match input.read(&mut chunk) {
                Ok(0) => {
                    self.check_clean_end()?;
                    received.closed = true;
                    return Ok(received);
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    self.take_frames(&mut received.frames)?;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(received),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error).context("read"),
            }
        }
    }
}
// ANCHOR_END: inbox

impl Inbox {
    /// Moves every whole frame at the start of `pending` into `frames`.
    fn take_frames(&mut self, frames: &mut Vec<Vec<u8>>) -> anyhow::Result<()> {
        let mut start = 0;
        while let Some(header) = self.pending[start..].first_chunk::<HEADER>() {
            let length = u32::from_be_bytes(*header) as usize;
            if length > self.max {
                bail!(
                    "a frame of {length} bytes is over the limit of {}",
                    self.max
                );
            }
            let body = start + HEADER;
            let Some(payload) = self.pending.get(body..body + length) else {
                break;
            };
            frames.push(payload.to_vec());
            start = body + length;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Fails if end-of-file came in the middle of a frame.
    fn check_clean_end(&self) -> anyhow::Result<()> {
        let got = self.pending.len();
        match self.pending.first_chunk::<HEADER>() {
            None if got == 0 => Ok(()),
            None => bail!("the peer left in the middle of a length prefix ({got} of 4 bytes)"),
            Some(header) => bail!(
                "the peer left in the middle of a frame ({} of {} bytes)",
                got - HEADER,
                u32::from_be_bytes(*header)
            ),
        }
    }
}

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
        let waiting = self.waiting() + frame.len();
        if waiting > self.limit {
            return Err(Full {
                waiting,
                limit: self.limit,
            });
        }
        self.queued.extend_from_slice(frame);
        Ok(())
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
        while self.sent < self.queued.len() {
            match output.write(&self.queued[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.compact();
                    return Ok(Flushed::Blocked);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        self.queued.clear();
        self.sent = 0;
        Ok(Flushed::All)
    }
}
// ANCHOR_END: outbox

impl Outbox {
    /// Drops the written bytes once they are more than half the buffer.
    fn compact(&mut self) {
        if self.sent * 2 > self.queued.len() {
            self.queued.drain(..self.sent);
            self.sent = 0;
        }
    }
}

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
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?;
        let signals = SignalFd::with_flags(stop, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .context("signalfd")?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .context("timerfd_create")?;
        let tick = TimeSpec::from(relay::tick(settings.idle));
        timer
            .set(Expiration::Interval(tick), TimerSetTimeFlags::empty())
            .context("timerfd_settime")?;
        let level = EpollFlags::EPOLLIN;
        watch_fd(
            &epoll,
            &listener,
            level | EpollFlags::EPOLLET,
            LISTENER,
            "the listener",
        )?;
        watch_fd(&epoll, &signals, level, SIGNALS, "the signalfd")?;
        watch_fd(&epoll, &timer, level, TIMER, "the timerfd")?;
        if let Some(queue) = &queue {
            watch_fd(&epoll, queue, level, QUEUE, "the queue")?;
        }
        Ok(Relay {
            epoll,
            listener,
            signals,
            timer,
            queue,
            clients: BTreeMap::new(),
            last_number: 0,
            accepting: true,
            settings,
            tally: Tally::default(),
        })
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
        let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
        loop {
            let ready = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno).context("epoll_wait"),
            };
            for event in &events[..ready] {
                match event.data() {
                    LISTENER => self.accept_clients()?,
                    SIGNALS => {
                        if let Some(signal) = self.stop_signal()? {
                            self.close_all();
                            return Ok(signal);
                        }
                    }
                    TIMER => {
                        expirations(&self.timer)?;
                        self.close_idle_clients();
                    }
                    QUEUE => self.pass_on_announcements()?,
                    token => {
                        if let Ok(number) = u32::try_from(token) {
                            self.serve_client(number, event.events());
                        }
                    }
                }
            }
            self.flush_clients();
        }
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
        loop {
            match self.listener.socket().accept() {
                Ok((stream, _)) => {
                    if let Err(error) = self.add_client(stream) {
                        eprintln!("relay: a new client: {error:#}");
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if is_out_of_descriptors(&error) => {
                    self.pause_accepting(&error);
                    return Ok(());
                }
                Err(error)
                    if error.kind() == io::ErrorKind::Interrupted
                        || error.raw_os_error() == Some(libc::ECONNABORTED) =>
                {
                    continue;
                }
                Err(error) => return Err(error).context("accept"),
            }
        }
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
        let readable = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLHUP
            | EpollFlags::EPOLLERR;
        if !events.intersects(readable) {
            return;
        }
        let Some(client) = self.clients.get_mut(&number) else {
            return;
        };
        let received = client.inbox.receive(&mut client.stream);
        match received {
            Ok(received) => {
                if !received.frames.is_empty() {
                    client.heard = Instant::now();
                }
                for message in &received.frames {
                    self.broadcast(number, message);
                }
                if received.closed {
                    self.remove_client(number, None);
                }
            }
            Err(error) => self.remove_client(number, Some(Dropped::Broken(format!("{error:#}")))),
        }
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
        let frame = wire::relayed(from, message);
        let mut too_slow = Vec::new();
        for (&number, client) in &mut self.clients {
            if number == from {
                continue;
            }
            match deliver(client, &frame) {
                Ok(()) => self.tally.copies += 1,
                Err(full) => too_slow.push((number, full)),
            }
        }
        for (number, full) in too_slow {
            self.remove_client(number, Some(Dropped::TooSlow(full)));
        }
        if from == FROM_RELAY {
            self.tally.announcements += 1;
        } else {
            self.tally.messages += 1;
        }
    }
}
// ANCHOR_END: relay

impl Relay {
    /// Makes `stream` a client: non-blocking, registered, welcomed.
    fn add_client(&mut self, stream: UnixStream) -> anyhow::Result<()> {
        stream
            .set_nonblocking(true)
            .context("make the connection non-blocking")?;
        let number = self.last_number + 1;
        let flags = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        self.epoll
            .add(&stream, EpollEvent::new(flags, u64::from(number)))
            .context("epoll_ctl(EPOLL_CTL_ADD) a client")?;
        self.last_number = number;
        let mut outbox = Outbox::new(self.settings.max_queue);
        let welcome = wire::relayed(FROM_RELAY, format!("welcome, client {number}").as_bytes());
        if let Err(full) = outbox.push(&welcome) {
            bail!("no room for the welcome: {full}");
        }
        let client = Client {
            number,
            stream,
            inbox: Inbox::new(MAX_MESSAGE),
            outbox,
            heard: Instant::now(),
        };
        self.clients.insert(number, client);
        self.tally.clients += 1;
        Ok(())
    }

    /// Reads the signalfd: the stop signal that came, if one did.
    fn stop_signal(&self) -> anyhow::Result<Option<Signal>> {
        let Some(info) = self.signals.read_signal().context("read the signalfd")? else {
            return Ok(None);
        };
        let signal = Signal::try_from(info.ssi_signo as i32).context("the signal's number")?;
        Ok(Some(signal))
    }
}

/// Queues `frame` for `client`; if its outbox is full, writes what its
/// socket takes now and tries again.
fn deliver(client: &mut Client, frame: &[u8]) -> Result<(), Full> {
    if client.outbox.push(frame).is_ok() {
        return Ok(());
    }
    // An error here (the client has gone) shows again in flush_clients.
    let _ = client.outbox.flush(&mut client.stream);
    client.outbox.push(frame)
}

/// `epoll_ctl(EPOLL_CTL_ADD)` of `fd` with `flags` and `token`.
fn watch_fd(
    epoll: &Epoll,
    fd: &impl AsFd,
    flags: EpollFlags,
    token: u64,
    what: &str,
) -> anyhow::Result<()> {
    epoll
        .add(fd, EpollEvent::new(flags, token))
        .with_context(|| format!("epoll_ctl(EPOLL_CTL_ADD) {what}"))
}

/// Whether `error` says that no descriptor is left (`EMFILE`, `ENFILE`).
fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
