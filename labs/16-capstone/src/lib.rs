//! # Lab 16: choosing a mechanism, measured (IPC 工具比较)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/16-capstone.md` and the grading
//! suite `tests/16-capstone.rs`. Run `cargo test` in this directory to
//! grade your work; `cargo run -- --help` shows the command you are
//! building, and `cargo run --release -- bench` measures your transports.
//!
//! You write the **transports**: twelve ways for two processes to send
//! each other messages, behind one trait, [`Channel`]. A transport is a
//! [`Link`]: what the two processes need, made before `fork` (`open`),
//! taken apart after it (`end`, one end per process) and cleaned up at
//! the end (`remove`). They come in the notes' three families:
//!
//! * byte streams (字节流): [`Stream`] over pipes, FIFOs, a Unix stream
//!   socket and TCP (tasks 1 and 2);
//! * messages (消息): [`Messages`] over a [`Queue`]: Unix datagrams,
//!   System V and POSIX message queues (tasks 3 and 4);
//! * shared memory (共享内存) with a wake-up: a [`Mailbox`] in a shared
//!   region, whose doors a [`Wakeup`] rings: semaphores, futexes, a
//!   spinning counter, eventfds, signals (tasks 5 and 6).
//!
//! Given, in files of their own: `cli.rs`, the command line; `harness.rs`,
//! which runs a session (forks the two sides, times them, checks every
//! byte, reports); `memory.rs`, the shared [`Region`] and its layout;
//! `sys.rs`, thin layers over the System V calls, `futex` and real-time
//! signals; `duplex.rs`, two one-way descriptors as one stream;
//! `report.rs` and `bench.rs`, what is printed and written. You may add
//! private helper functions and types here.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::PathBuf;

use nix::mqueue::MqdT;
use nix::sys::eventfd::EventFd;
use nix::unistd::Pid;

use self::harness::{Names, Role};
use self::memory::{Door, Region};
use self::sys::{MessageQueue, Semaphores};

pub mod bench;
pub mod cli;
pub mod duplex;
pub mod harness;
pub mod memory;
pub mod report;
pub mod sys;

// ANCHOR: traits
/// One end of a two-way channel between the two processes of a
/// ping-pong. Both sides know every message's size in advance (the
/// harness tells them the plan), so `recv` is told how many bytes to
/// expect: exactly `message.len()`.
pub trait Channel {
    /// Sends all of `message` to the other side.
    fn send(&mut self, message: &[u8]) -> anyhow::Result<()>;

    /// Fills all of `message` with the next message from the other side.
    fn recv(&mut self, message: &mut [u8]) -> anyhow::Result<()>;
}

/// A transport: what the two processes need, made before `fork` so that
/// both inherit it.
///
/// The harness calls `open` once, in the supervisor; forks the two
/// sides; calls `end` in each of them on its own copy of the link; and
/// once both sides have ended, however they ended, calls `remove` on the
/// supervisor's copy.
pub trait Link: Sized {
    /// What each side gets.
    type End: Channel;

    /// Makes the link, before `fork`. Names come from `names`; everything
    /// is created with mode [`MODE`], and refuses to take over an object
    /// that exists already (`O_EXCL`, `IPC_EXCL`). On an error, remove
    /// whatever was made before it.
    fn open(names: &Names) -> anyhow::Result<Self>;

    /// In the process of `role`, after `fork`: this side's end, with
    /// everything meant for the other side dropped (closed). `peer` is
    /// the other side's pid.
    fn end(self, role: Role, peer: Pid) -> anyhow::Result<Self::End>;

    /// In the supervisor, once both sides have ended: removes what
    /// outlives processes (names in the file system, kernel objects).
    /// Nothing, for a link that has nothing of the kind.
    fn remove(self) -> anyhow::Result<()> {
        Ok(())
    }
}
// ANCHOR_END: traits

/// The permission bits of every object this lab creates: owner only.
pub const MODE: u16 = 0o600;

// ---- Task 1: byte streams through pipes and FIFOs (字节流) ---------------------

// ANCHOR: stream
/// A byte stream (字节流): what one side writes, the other reads, in
/// order, with no boundaries. `T` is a [`duplex::Duplex`] (two pipes or
/// two FIFOs), a `UnixStream` or a `TcpStream`.
#[derive(Debug)]
pub struct Stream<T>(pub T);

impl<T: Read + Write> Channel for Stream<T> {
    /// Writes all of `message` (`write_all`: a write to a pipe or a socket
    /// may take fewer bytes than it was given).
    fn send(&mut self, message: &[u8]) -> anyhow::Result<()> {
        // TODO(1): write all of it.
        todo!("TODO(1): Stream::send")
    }

    /// Reads until `message` is full. A stream keeps no boundaries: one
    /// `read` returns what has arrived so far, which may be part of a
    /// message (a pipe holds 64 KiB, a socket's buffer some hundreds of
    /// KiB), so read again until every byte is there, trying again after
    /// `EINTR`. A `read` of 0 bytes is end-of-file: the other side has
    /// closed its end; fail then, saying how many of the bytes arrived
    /// (`end-of-file after N of M bytes`).
    fn recv(&mut self, message: &mut [u8]) -> anyhow::Result<()> {
        // TODO(1): read until full; 0 is end-of-file, an error here.
        todo!("TODO(1): Stream::recv")
    }
}
// ANCHOR_END: stream

// ANCHOR: pipes
/// Two pipes, one each way (chapter 02): `(read end, write end)` each.
#[derive(Debug)]
pub struct Pipes {
    /// What ping writes and pong reads.
    pub ping_to_pong: (OwnedFd, OwnedFd),
    /// What pong writes and ping reads.
    pub pong_to_ping: (OwnedFd, OwnedFd),
}

impl Link for Pipes {
    type End = Stream<duplex::Duplex>;

    /// Two pipes: `pipe2(O_CLOEXEC)` (nix: `unistd::pipe2`), so that no
    /// program a side might `exec` inherits them. If the second fails,
    /// the first is closed as it is dropped.
    fn open(_names: &Names) -> anyhow::Result<Pipes> {
        // TODO(1): pipe2 twice.
        todo!("TODO(1): Pipes::open")
    }

    /// Ping reads `pong_to_ping` and writes `ping_to_pong`; pong the other
    /// way round. Keep those two ends (as `File`s in a `Duplex`) and drop
    /// the other two: a pipe reports end-of-file only once *every* copy of
    /// its write end is closed, in every process.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Stream<duplex::Duplex>> {
        // TODO(1): keep this side's two ends, drop the others.
        todo!("TODO(1): Pipes::end")
    }
}
// ANCHOR_END: pipes

// ANCHOR: fifos
/// Two FIFOs (命名管道) in the work directory, one each way (chapter 04).
#[derive(Debug)]
pub struct Fifos {
    /// `names.path("ping.fifo")`: what ping writes and pong reads.
    pub ping_to_pong: PathBuf,
    /// `names.path("pong.fifo")`: what pong writes and ping reads.
    pub pong_to_ping: PathBuf,
}

impl Link for Fifos {
    type End = Stream<duplex::Duplex>;

    /// `mkfifo` both paths with mode [`MODE`] (nix: `unistd::mkfifo`;
    /// `EEXIST` if something is already there: report it, and do not
    /// remove what you did not make). If the second fails, remove the
    /// first before returning the error. Contexts name the path:
    /// `mkfifo PATH`.
    fn open(names: &Names) -> anyhow::Result<Fifos> {
        // TODO(1): mkfifo both, 0600; on an error, remove the first.
        todo!("TODO(1): Fifos::open")
    }

    /// Opens this side's two FIFOs: ping opens `ping_to_pong` for writing
    /// and `pong_to_ping` for reading; pong the other way round. Each
    /// `open` of a FIFO **blocks until the other end is opened too**, so
    /// the order matters: if each side opened first the FIFO that the
    /// other opens second, both would wait for ever. Both sides open
    /// `ping_to_pong` first.
    ///
    /// The work directory may be one that others can write to (`--dir
    /// /tmp`): open with `O_NOFOLLOW` (`OpenOptions::custom_flags`; the
    /// standard library adds `O_CLOEXEC` itself), and check that what you
    /// opened is a FIFO (`File::metadata`, an `fstat` of the descriptor,
    /// never a second look at the path). Contexts name the path.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Stream<duplex::Duplex>> {
        // TODO(1): open ping_to_pong first on both sides, then pong_to_ping.
        todo!("TODO(1): Fifos::end")
    }

    /// Removes both FIFOs (`unlink`: `fs::remove_file`). A FIFO is a name
    /// in the file system that outlives every process: left behind, it
    /// makes the next `mkfifo` of its path fail with `EEXIST`. Try both,
    /// even if the first fails, and report the first error.
    fn remove(self) -> anyhow::Result<()> {
        // TODO(1): unlink both.
        todo!("TODO(1): Fifos::remove")
    }
}
// ANCHOR_END: fifos

// ---- Task 2: byte streams through sockets ---------------------------------------

// ANCHOR: unix_streams
/// A Unix stream socket (Unix 域流 socket) bound to a path in the work
/// directory (chapter 13): ping connects, pong accepts.
#[derive(Debug)]
pub struct UnixStreams {
    /// `names.path("pingpong.sock")`.
    pub path: PathBuf,
    /// The listening socket, bound to `path`.
    pub listener: UnixListener,
}

impl Link for UnixStreams {
    type End = Stream<std::os::unix::net::UnixStream>;

    /// Binds a listening socket to `names.path("pingpong.sock")`
    /// (`UnixListener::bind`: `socket`, `bind`, `listen`; `EADDRINUSE` if
    /// the path exists). Bind it before `fork`, so that ping's `connect`
    /// cannot come before the socket exists. Context: `bind PATH`.
    fn open(names: &Names) -> anyhow::Result<UnixStreams> {
        // TODO(2): bind and listen.
        todo!("TODO(2): UnixStreams::open")
    }

    /// Pong accepts one connection; ping drops its copy of the listener and
    /// connects to `path`. Either way, the listener is dropped: a side
    /// keeps only its connected socket.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Stream<std::os::unix::net::UnixStream>> {
        // TODO(2): pong accepts, ping connects; drop the listener.
        todo!("TODO(2): UnixStreams::end")
    }

    /// Drops the listener and removes the socket file: closing a socket
    /// does not remove its name, and a stale socket file makes the next
    /// `bind` of the path fail with `EADDRINUSE`.
    fn remove(self) -> anyhow::Result<()> {
        // TODO(2): unlink the socket file.
        todo!("TODO(2): UnixStreams::remove")
    }
}
// ANCHOR_END: unix_streams

// ANCHOR: tcp
/// A TCP connection over the loopback interface (chapter 14): ping
/// connects, pong accepts.
#[derive(Debug)]
pub struct Tcp {
    /// Listening on `127.0.0.1`, at a port the kernel chose.
    pub listener: TcpListener,
}

impl Link for Tcp {
    type End = Stream<TcpStream>;

    /// Listens on `127.0.0.1`, port 0: the kernel picks a free port, which
    /// `local_addr` tells. Never a fixed port: another program may hold it.
    fn open(_names: &Names) -> anyhow::Result<Tcp> {
        // TODO(2): bind 127.0.0.1:0.
        todo!("TODO(2): Tcp::open")
    }

    /// Pong accepts; ping connects to the listener's address. Both drop the
    /// listener, and both set `TCP_NODELAY` (`set_nodelay(true)`): without
    /// it, Nagle's algorithm may hold a small segment back until the
    /// previous one is acknowledged, which a ping-pong pays for in latency.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Stream<TcpStream>> {
        // TODO(2): accept or connect; TCP_NODELAY; drop the listener.
        todo!("TODO(2): Tcp::end")
    }
}
// ANCHOR_END: tcp

// ---- Task 3: messages (消息) ----------------------------------------------------

// ANCHOR: messages
/// Something that carries whole messages, each up to a size limit:
/// what one `put` sends, one `take` receives, boundaries kept.
pub trait Queue {
    /// Sends `piece` as one message.
    fn put(&mut self, piece: &[u8]) -> anyhow::Result<()>;

    /// Receives the next message into `piece`; returns its length. A
    /// message longer than `piece` is an error.
    fn take(&mut self, piece: &mut [u8]) -> anyhow::Result<usize>;
}

/// Messages of any size over a [`Queue`] whose messages are at most
/// `limit` bytes long: each message goes as `ceil(len / limit)` pieces.
#[derive(Debug)]
pub struct Messages<Q> {
    /// Where the pieces go.
    pub queue: Q,
    /// The longest piece the queue takes.
    pub limit: usize,
}

impl<Q: Queue> Channel for Messages<Q> {
    /// Cuts `message` into pieces of `limit` bytes (the last one shorter)
    /// and `put`s each, in order: a queue refuses anything longer
    /// (`EINVAL` from `msgsnd`, `EMSGSIZE` from `mq_send` and `send`).
    fn send(&mut self, message: &[u8]) -> anyhow::Result<()> {
        // TODO(3): one put per piece of at most `limit` bytes.
        todo!("TODO(3): Messages::send")
    }

    /// Takes the pieces back in the same order into `message`: the sender
    /// cut it the same way, so each piece's length is known. A piece of
    /// another length means the two sides disagree: fail, saying so
    /// (`a piece of N bytes where M were expected`).
    fn recv(&mut self, message: &mut [u8]) -> anyhow::Result<()> {
        // TODO(3): one take per piece; check each piece's length.
        todo!("TODO(3): Messages::recv")
    }
}
// ANCHOR_END: messages

// ANCHOR: datagrams
/// The largest datagram this lab sends. A Unix datagram must fit in the
/// sender's buffer (`SO_SNDBUF`, 212992 bytes by default): one that does
/// not is refused with `EMSGSIZE`, never cut.
pub const DATAGRAM_BYTES: usize = 64 * 1024;

/// A pair of connected Unix datagram sockets (Unix 域数据报 socket,
/// chapter 13).
#[derive(Debug)]
pub struct Datagrams {
    /// Ping's socket.
    pub ping: UnixDatagram,
    /// Pong's socket.
    pub pong: UnixDatagram,
}

impl Link for Datagrams {
    type End = Messages<UnixDatagram>;

    /// `socketpair(AF_UNIX, SOCK_DGRAM)`: `UnixDatagram::pair()`. Two
    /// sockets connected to each other, with no name.
    fn open(_names: &Names) -> anyhow::Result<Datagrams> {
        // TODO(3): a datagram socket pair.
        todo!("TODO(3): Datagrams::open")
    }

    /// Keeps this side's socket, drops the other's; pieces of at most
    /// [`DATAGRAM_BYTES`].
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Messages<UnixDatagram>> {
        // TODO(3): this side's socket, DATAGRAM_BYTES.
        todo!("TODO(3): Datagrams::end")
    }
}

impl Queue for UnixDatagram {
    /// One `send`: one datagram. It sends all of `piece` or fails.
    fn put(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        // TODO(3): send one datagram.
        todo!("TODO(3): UnixDatagram::put")
    }

    /// One `recv`: one datagram, whatever its size. A datagram longer than
    /// `piece` is cut to fit and the rest is lost, without a word, unless
    /// you ask for `MSG_TRUNC` (nix: `socket::recv(fd, piece,
    /// MsgFlags::MSG_TRUNC)`): Linux then returns the datagram's real
    /// length. Return that, so that `Messages::recv` sees the difference.
    fn take(&mut self, piece: &mut [u8]) -> anyhow::Result<usize> {
        // TODO(3): receive one datagram.
        todo!("TODO(3): UnixDatagram::take")
    }
}
// ANCHOR_END: datagrams

// ---- Task 4: message queues (消息队列) --------------------------------------------

// ANCHOR: sysv_queue
/// The `proj_id` of the System V message queue: `ftok(key_file, 'Q')`.
pub const QUEUE_PROJ: u8 = b'Q';

/// The message type (`mtype`) of what ping sends. A System V queue is one
/// list of messages that both sides share; each takes only the type meant
/// for it.
pub const TO_PONG: i64 = 1;

/// The message type of what pong sends.
pub const TO_PING: i64 = 2;

/// One System V message queue (chapter 05) carrying both directions.
#[derive(Debug)]
pub struct SysvQueue {
    /// The queue.
    pub queue: MessageQueue,
}

/// One side's end of the System V queue.
#[derive(Debug)]
pub struct SysvEnd {
    /// The queue, shared with the other side.
    pub queue: MessageQueue,
    /// The type this side sends.
    pub put_type: i64,
    /// The type this side receives.
    pub take_type: i64,
}

impl Link for SysvQueue {
    type End = Messages<SysvEnd>;

    /// A new queue under `names.key(QUEUE_PROJ)`:
    /// `MessageQueue::create(key, MODE)` (`IPC_CREAT | IPC_EXCL`: `EEXIST`
    /// if one exists; leave it alone then). Context: `msgget`.
    fn open(names: &Names) -> anyhow::Result<SysvQueue> {
        // TODO(4): msgget with IPC_CREAT | IPC_EXCL.
        todo!("TODO(4): SysvQueue::open")
    }

    /// Ping puts [`TO_PONG`] and takes [`TO_PING`]; pong the other way
    /// round. Pieces of at most `msgmax` bytes, the kernel's limit on one
    /// message (`sys::read_limit("/proc/sys/kernel/msgmax")`, 8192 by
    /// default), and no more than `msgmnb` either
    /// (`/proc/sys/kernel/msgmnb`, 16384 by default: the bytes a queue
    /// holds in all).
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Messages<SysvEnd>> {
        // TODO(4): the types of this side, and the limit.
        todo!("TODO(4): SysvQueue::end")
    }

    /// Removes the queue (`msgctl(IPC_RMID)`). A System V queue has
    /// *kernel* persistence: without this, it stays until reboot, with
    /// whatever is in it. Context: `msgctl IPC_RMID`.
    fn remove(self) -> anyhow::Result<()> {
        // TODO(4): IPC_RMID.
        todo!("TODO(4): SysvQueue::remove")
    }
}

impl Queue for SysvEnd {
    /// `msgsnd` of type `put_type`.
    fn put(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        // TODO(4): msgsnd.
        todo!("TODO(4): SysvEnd::put")
    }

    /// `msgrcv` of type `take_type` (never type 0, "any type": this side
    /// would take its own messages back).
    fn take(&mut self, piece: &mut [u8]) -> anyhow::Result<usize> {
        // TODO(4): msgrcv.
        todo!("TODO(4): SysvEnd::take")
    }
}
// ANCHOR_END: sysv_queue

// ANCHOR: posix_queues
/// At most this many messages wait in a POSIX queue (`mq_maxmsg`): Linux
/// lets an ordinary user ask for up to `/proc/sys/fs/mqueue/msg_max`,
/// 10 by default, but each queue takes about `mq_maxmsg × mq_msgsize`
/// bytes of `RLIMIT_MSGQUEUE`, a budget shared by every queue of the user
/// (800 KiB by default): 10 messages of 8 KiB would be some 80 KB a queue.
pub const QUEUE_MESSAGES: usize = 4;

/// Two POSIX message queues (chapter 09), one each way.
#[derive(Debug)]
pub struct PosixQueues {
    /// `names.posix("ping")`: what ping sends.
    pub ping_to_pong: MqdT,
    /// `names.posix("pong")`: what pong sends.
    pub pong_to_ping: MqdT,
    /// Their `mq_msgsize`.
    pub message_size: usize,
}

/// One side's end of the POSIX queues.
#[derive(Debug)]
pub struct PosixEnd {
    /// The queue this side sends to.
    pub output: MqdT,
    /// The queue this side receives from.
    pub input: MqdT,
    /// `message_size` bytes: `mq_receive` wants a buffer of at least
    /// `mq_msgsize` bytes, whatever the length of the message.
    pub scratch: Vec<u8>,
}

impl Link for PosixQueues {
    type End = Messages<PosixEnd>;

    /// Creates `names.posix("ping")` and `names.posix("pong")` with
    /// `mq_open(O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, MODE, attributes)`:
    /// `mq_maxmsg` is [`QUEUE_MESSAGES`] or `msg_max` if smaller
    /// (`/proc/sys/fs/mqueue/msg_max`), `mq_msgsize` is 64 KiB or
    /// `msgsize_max` if smaller (`/proc/sys/fs/mqueue/msgsize_max`, 8192 by
    /// default: an ordinary user may not ask for more, and `EINVAL` says so).
    ///
    /// Then unlink both names at once (`mq_unlink`): the descriptors are
    /// open, and `fork` gives both sides copies, so nobody needs the names
    /// any more, and nothing is left behind whatever happens next. If the
    /// second `mq_open` fails, unlink the first. Contexts: `mq_open NAME`.
    fn open(names: &Names) -> anyhow::Result<PosixQueues> {
        // TODO(4): mq_open both, then mq_unlink both.
        todo!("TODO(4): PosixQueues::open")
    }

    /// Ping sends to `ping_to_pong` and receives from `pong_to_ping`; pong
    /// the other way round. Pieces of at most `message_size` bytes, and a
    /// scratch buffer of that size.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Messages<PosixEnd>> {
        // TODO(4): output, input and scratch of this side.
        todo!("TODO(4): PosixQueues::end")
    }

    /// Closes the supervisor's two descriptors (`mq_close`; an `MqdT` is
    /// not closed when dropped). The names are gone already.
    fn remove(self) -> anyhow::Result<()> {
        // TODO(4): mq_close both.
        todo!("TODO(4): PosixQueues::remove")
    }
}

impl Queue for PosixEnd {
    /// `mq_send` to `output`, priority 0.
    fn put(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        // TODO(4): mq_send.
        todo!("TODO(4): PosixEnd::put")
    }

    /// `mq_receive` from `input` into `scratch` (a smaller buffer is
    /// refused with `EMSGSIZE`, even for a short message), then the
    /// message's bytes into `piece`.
    fn take(&mut self, piece: &mut [u8]) -> anyhow::Result<usize> {
        // TODO(4): mq_receive into scratch, copy out.
        todo!("TODO(4): PosixEnd::take")
    }
}
// ANCHOR_END: posix_queues

// ---- Task 5: shared memory (共享内存) and its doors ---------------------------------

// ANCHOR: wakeup
/// Where a region's memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// A System V segment (chapter 07): `shmget`, `shmat`.
    SystemV,
    /// A POSIX shared memory object (chapter 10): `shm_open`, `mmap`.
    Posix,
    /// An anonymous shared mapping (chapter 08): `mmap(MAP_SHARED |
    /// MAP_ANONYMOUS)`, shared with the children forked after it.
    Anonymous,
}

/// A way to ring the four [`Door`]s of a mailbox and to wait for them.
/// Each door counts: every `ring` lets exactly one `wait` through, and a
/// `wait` with no ring to take sleeps (or spins) until one comes.
pub trait Wakeup: Sized {
    /// The memory this wake-up goes with.
    const MEMORY: Memory;

    /// Makes what the doors need, in the supervisor, before `fork`, once
    /// the region exists.
    fn open(names: &Names, region: &Region) -> anyhow::Result<Self>;

    /// Rings `door` once, for process `peer`.
    fn ring(&mut self, door: Door, region: &Region, peer: Pid) -> anyhow::Result<()>;

    /// Waits until `door` has a ring, and takes it.
    fn wait(&mut self, door: Door, region: &Region) -> anyhow::Result<()>;

    /// In the supervisor, once both sides have ended: removes what the
    /// doors left in the kernel. Nothing, by default.
    fn remove(self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Makes a region of `memory::REGION_BYTES` bytes, shared by the
/// processes forked after it, and leaves no name behind:
///
/// * `Memory::SystemV`: `sys::segment_create(names.key(SEGMENT_PROJ),
///   REGION_BYTES, MODE)`, `Region::attach`, then `sys::segment_remove`
///   at once: a segment marked for removal lives on until its last
///   process detaches it, and the attachment is inherited by `fork`. If
///   the attach fails, remove the segment all the same;
/// * `Memory::Posix`: `shm_open(names.posix("shm"), O_CREAT | O_EXCL
///   | O_RDWR | O_CLOEXEC, MODE)`, `ftruncate` to `REGION_BYTES`,
///   `Region::map`, then `shm_unlink` at once (whatever happened after
///   `shm_open`). The descriptor may be closed: the mapping stays;
/// * `Memory::Anonymous`: `Region::anonymous`.
///
/// Contexts name the call: `shmget`, `shmat`, `shm_open NAME`,
/// `ftruncate`, `mmap`.
pub fn map(memory: Memory, names: &Names) -> anyhow::Result<Region> {
    // TODO(5): the three ways to a shared region.
    todo!("TODO(5): map")
}

/// The `proj_id` of the System V segment: `ftok(key_file, 'M')`.
pub const SEGMENT_PROJ: u8 = b'M';
// ANCHOR_END: wakeup

// ANCHOR: shared
/// A shared region and the doors of its mailbox.
#[derive(Debug)]
pub struct Shared<W> {
    /// The memory, made by [`map`].
    pub region: Region,
    /// Its doors.
    pub wakeup: W,
}

impl<W: Wakeup> Link for Shared<W> {
    type End = Mailbox<W>;

    /// `map(W::MEMORY, names)`, then `W::open(names, &region)`.
    fn open(names: &Names) -> anyhow::Result<Shared<W>> {
        // TODO(5): the region, then the wake-up.
        todo!("TODO(5): Shared::open")
    }

    /// A [`Mailbox::new`] for this side.
    fn end(self, role: Role, peer: Pid) -> anyhow::Result<Mailbox<W>> {
        // TODO(5): Mailbox::new.
        todo!("TODO(5): Shared::end")
    }

    /// Removes the wake-up's objects (`W::remove`); the region is unmapped
    /// as it is dropped.
    fn remove(self) -> anyhow::Result<()> {
        // TODO(5): W::remove.
        todo!("TODO(5): Shared::remove")
    }
}

/// One side of the mailbox protocol over a shared region: each direction
/// has `memory::SLOTS` slots of `memory::SLOT_BYTES` bytes, and two doors.
///
/// ```text
///  writer of a direction                     reader of that direction
///  wait Empty ─ copy a piece into slot i ─ ring Full ──▶ wait Full ─ copy slot i out ─ ring Empty
///  (i = pieces sent so far % SLOTS)                       (i = pieces received so far % SLOTS)
/// ```
#[derive(Debug)]
pub struct Mailbox<W> {
    /// The shared region.
    pub region: Region,
    /// Its doors.
    pub wakeup: W,
    /// This side.
    pub role: Role,
    /// The other side's pid.
    pub peer: Pid,
    /// Pieces this side has sent: the next goes to slot `sent % SLOTS`.
    pub sent: usize,
    /// Pieces this side has received: the next comes from slot
    /// `received % SLOTS`.
    pub received: usize,
}

impl<W: Wakeup> Mailbox<W> {
    /// This side's mailbox. Every door starts at 0, so the slots of the
    /// direction this side *reads* start out owned by nobody: give them to
    /// the writer by ringing `Door::Empty(role.incoming())` once per slot
    /// (`SLOTS` times).
    pub fn new(region: Region, wakeup: W, role: Role, peer: Pid) -> anyhow::Result<Mailbox<W>> {
        // TODO(5): ring Empty of the incoming direction SLOTS times.
        todo!("TODO(5): Mailbox::new")
    }
}

impl<W: Wakeup> Channel for Mailbox<W> {
    /// For each piece of at most `SLOT_BYTES` of `message`, in order:
    /// wait for `Door::Empty(role.outgoing())`, copy the piece into slot
    /// `sent % SLOTS` of that direction (`memory::slot_offset`,
    /// `Region::copy_in`), ring `Door::Full(role.outgoing())`, count it.
    ///
    /// `copy_in` is `unsafe`: write down why this process owns the slot
    /// (the `// SAFETY:` comment); the protocol is the proof.
    fn send(&mut self, message: &[u8]) -> anyhow::Result<()> {
        // TODO(5): wait Empty, copy in, ring Full; per piece.
        todo!("TODO(5): Mailbox::send")
    }

    /// The mirror image: for each piece of `message`, wait for
    /// `Door::Full(role.incoming())`, copy slot `received % SLOTS` out
    /// (`Region::copy_out`), ring `Door::Empty(role.incoming())`, count it.
    fn recv(&mut self, message: &mut [u8]) -> anyhow::Result<()> {
        // TODO(5): wait Full, copy out, ring Empty; per piece.
        todo!("TODO(5): Mailbox::recv")
    }
}
// ANCHOR_END: shared

// ANCHOR: sysv_semaphores
/// The `proj_id` of the semaphore set: `ftok(key_file, 'S')`.
pub const SEMAPHORES_PROJ: u8 = b'S';

/// System V semaphores as doors (chapter 06): one semaphore per door.
#[derive(Debug)]
pub struct SysvSemaphores {
    /// A set of four, one per [`Door::index`].
    pub semaphores: Semaphores,
}

impl Wakeup for SysvSemaphores {
    const MEMORY: Memory = Memory::SystemV;

    /// A set of 4 under `names.key(SEMAPHORES_PROJ)`
    /// (`Semaphores::create`, `IPC_CREAT | IPC_EXCL`), every value set to 0
    /// (`set_all`: a new set's values are not defined by POSIX). If
    /// `set_all` fails, remove the set. Context: `semget`.
    fn open(names: &Names, _region: &Region) -> anyhow::Result<SysvSemaphores> {
        // TODO(5): semget, SETALL to 0.
        todo!("TODO(5): SysvSemaphores::open")
    }

    /// V: `add(door.index(), 1)`.
    fn ring(&mut self, door: Door, _region: &Region, _peer: Pid) -> anyhow::Result<()> {
        // TODO(5): semop +1.
        todo!("TODO(5): SysvSemaphores::ring")
    }

    /// P: `add(door.index(), -1)`, which sleeps while the value is 0.
    fn wait(&mut self, door: Door, _region: &Region) -> anyhow::Result<()> {
        // TODO(5): semop -1.
        todo!("TODO(5): SysvSemaphores::wait")
    }

    /// `semctl(IPC_RMID)`: a semaphore set has kernel persistence too.
    fn remove(self) -> anyhow::Result<()> {
        // TODO(5): IPC_RMID.
        todo!("TODO(5): SysvSemaphores::remove")
    }
}
// ANCHOR_END: sysv_semaphores

// ---- Task 6: other wake-ups: futex, spinning, eventfd, signals ------------------

// ANCHOR: futexes
/// Futexes as doors: door `i`'s counter is `region.counter(i)`, an
/// `AtomicU32` in the shared region, and `futex(2)` puts a waiter to sleep
/// on it. This is what a POSIX semaphore (`sem_wait`, `sem_post`) does
/// inside, without the library.
#[derive(Debug)]
pub struct Futexes;

impl Wakeup for Futexes {
    const MEMORY: Memory = Memory::Posix;

    /// Nothing to make: the counters live in the region, zero at first.
    fn open(_names: &Names, _region: &Region) -> anyhow::Result<Futexes> {
        // TODO(6): nothing to make.
        todo!("TODO(6): Futexes::open")
    }

    /// Adds 1 to the door's counter (`fetch_add`, `Ordering::Release`:
    /// the piece copied before is visible to whoever sees the new value),
    /// then wakes one waiter (`sys::futex_wake(counter, 1, false)`). Not
    /// private: the waiter is another process.
    fn ring(&mut self, door: Door, region: &Region, _peer: Pid) -> anyhow::Result<()> {
        // TODO(6): count, then FUTEX_WAKE.
        todo!("TODO(6): Futexes::ring")
    }

    /// Loop: if the counter is above 0 (`load`, `Ordering::Acquire`), take
    /// one (`fetch_sub(1)`: only this process waits on this door) and
    /// return; else `sys::futex_wait(counter, 0, false)`, which sleeps only
    /// if the counter is still 0, and look again when it returns.
    fn wait(&mut self, door: Door, region: &Region) -> anyhow::Result<()> {
        // TODO(6): take one, or FUTEX_WAIT while 0.
        todo!("TODO(6): Futexes::wait")
    }
}
// ANCHOR_END: futexes

// ANCHOR: spin
/// How many times a waiting [`Spin`] looks at its counter before it lets
/// another process run (`std::thread::yield_now`, `sched_yield`).
pub const SPINS: u32 = 1000;

/// Spinning as doors: the same counters as [`Futexes`], but a waiter never
/// sleeps in the kernel: it keeps looking. No system call at all on
/// either side, while each waiting process burns its CPU.
#[derive(Debug)]
pub struct Spin;

impl Wakeup for Spin {
    const MEMORY: Memory = Memory::Anonymous;

    /// Nothing to make.
    fn open(_names: &Names, _region: &Region) -> anyhow::Result<Spin> {
        // TODO(6): nothing to make.
        todo!("TODO(6): Spin::open")
    }

    /// Adds 1 to the door's counter, `Ordering::Release`.
    fn ring(&mut self, door: Door, region: &Region, _peer: Pid) -> anyhow::Result<()> {
        // TODO(6): count.
        todo!("TODO(6): Spin::ring")
    }

    /// Until the counter is above 0 (`Ordering::Acquire`): spin
    /// (`std::hint::spin_loop`), and after every [`SPINS`] looks, yield the
    /// CPU: the other process may be waiting for this one's. Then take one
    /// (`fetch_sub(1)`).
    fn wait(&mut self, door: Door, region: &Region) -> anyhow::Result<()> {
        // TODO(6): spin (and yield now and then) until above 0; take one.
        todo!("TODO(6): Spin::wait")
    }
}
// ANCHOR_END: spin

// ANCHOR: eventfds
/// Eventfds as doors (chapter 15): a counter in the kernel behind a file
/// descriptor, one per door.
#[derive(Debug)]
pub struct EventFds {
    /// Four, in [`Door::index`] order.
    pub doors: Vec<EventFd>,
}

impl Wakeup for EventFds {
    const MEMORY: Memory = Memory::Anonymous;

    /// Four eventfds, value 0, flags `EFD_SEMAPHORE | EFD_CLOEXEC`
    /// (`EventFd::from_value_and_flags`). Made before `fork`, so both
    /// sides have them. `EFD_SEMAPHORE` makes each `read` take 1 from the
    /// counter; without it a `read` takes the whole count at once, and a
    /// door rung twice would let only one wait through.
    fn open(_names: &Names, _region: &Region) -> anyhow::Result<EventFds> {
        // TODO(6): four eventfds, EFD_SEMAPHORE.
        todo!("TODO(6): EventFds::open")
    }

    /// Writes 1 to the door's eventfd.
    fn ring(&mut self, door: Door, _region: &Region, _peer: Pid) -> anyhow::Result<()> {
        // TODO(6): write 1.
        todo!("TODO(6): EventFds::ring")
    }

    /// Reads the door's eventfd: sleeps while the counter is 0, then takes 1.
    fn wait(&mut self, door: Door, _region: &Region) -> anyhow::Result<()> {
        // TODO(6): read.
        todo!("TODO(6): EventFds::wait")
    }
}
// ANCHOR_END: eventfds

// ANCHOR: signals
/// Real-time signals as doors (chapter 11): door `i` is signal
/// `sys::realtime_signal(i)`, `SIGRTMIN + i`, sent to the peer.
#[derive(Debug)]
pub struct Signals;

impl Wakeup for Signals {
    const MEMORY: Memory = Memory::Anonymous;

    /// Blocks the four signals (`sys::block_signals`) **here, before
    /// `fork`**, so that both sides are born with them blocked: a side
    /// that blocked them itself, after `fork`, could be sent one before it
    /// had, and a real-time signal's default action ends the process.
    /// Real-time, not `SIGUSR1`: real-time signals queue, so a door rung
    /// twice is taken twice.
    fn open(_names: &Names, _region: &Region) -> anyhow::Result<Signals> {
        // TODO(6): block the four signals.
        todo!("TODO(6): Signals::open")
    }

    /// `sys::queue_signal(peer, the door's signal)`.
    fn ring(&mut self, door: Door, _region: &Region, peer: Pid) -> anyhow::Result<()> {
        // TODO(6): sigqueue to the peer.
        todo!("TODO(6): Signals::ring")
    }

    /// `sys::wait_for_signal(the door's signal)`: `sigwaitinfo`.
    fn wait(&mut self, door: Door, _region: &Region) -> anyhow::Result<()> {
        // TODO(6): sigwaitinfo.
        todo!("TODO(6): Signals::wait")
    }

    /// Unblocks the four signals in the supervisor.
    fn remove(self) -> anyhow::Result<()> {
        // TODO(6): unblock.
        todo!("TODO(6): Signals::remove")
    }
}
// ANCHOR_END: signals
