//! # Lab 16: choosing a mechanism, measured (IPC 工具比较) — reference solution
//!
//! The same functions as `labs/16-capstone/src/lib.rs`, done. Read it
//! after you have written your own: compare what each side keeps after
//! `fork`, where each name is removed, and how the doors of the mailbox
//! are rung and waited for.

use std::fs::{self, File, OpenOptions};
use std::hint;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::thread;

use anyhow::{Context, bail};
use nix::fcntl::OFlag;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_open, mq_receive, mq_send, mq_unlink};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::socket::{self, MsgFlags};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, ftruncate, mkfifo, pipe2};

use self::duplex::Duplex;
use self::harness::{Names, Role};
use self::memory::{Door, REGION_BYTES, Region, SLOT_BYTES, SLOTS, slot_offset};
use self::sys::{MessageQueue, Semaphores, read_limit};

#[path = "../../../labs/16-capstone/src/bench.rs"]
pub mod bench;
#[path = "../../../labs/16-capstone/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/16-capstone/src/duplex.rs"]
pub mod duplex;
#[path = "../../../labs/16-capstone/src/harness.rs"]
pub mod harness;
#[path = "../../../labs/16-capstone/src/memory.rs"]
pub mod memory;
#[path = "../../../labs/16-capstone/src/report.rs"]
pub mod report;
#[path = "../../../labs/16-capstone/src/sys.rs"]
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
        self.0.write_all(message).context("write")
    }

    /// Reads until `message` is full. A stream keeps no boundaries: one
    /// `read` returns what has arrived so far, which may be part of a
    /// message (a pipe holds 64 KiB, a socket's buffer some hundreds of
    /// KiB), so read again until every byte is there, trying again after
    /// `EINTR`. A `read` of 0 bytes is end-of-file: the other side has
    /// closed its end; fail then, saying how many of the bytes arrived
    /// (`end-of-file after N of M bytes`).
    fn recv(&mut self, message: &mut [u8]) -> anyhow::Result<()> {
        let mut got = 0;
        while got < message.len() {
            match self.0.read(&mut message[got..]) {
                Ok(0) => bail!("end-of-file after {got} of {} bytes", message.len()),
                Ok(n) => got += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error).context("read"),
            }
        }
        Ok(())
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
        let ping_to_pong = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
        let pong_to_ping = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
        Ok(Pipes {
            ping_to_pong,
            pong_to_ping,
        })
    }

    /// Ping reads `pong_to_ping` and writes `ping_to_pong`; pong the other
    /// way round. Keep those two ends (as `File`s in a `Duplex`) and drop
    /// the other two: a pipe reports end-of-file only once *every* copy of
    /// its write end is closed, in every process.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Stream<duplex::Duplex>> {
        let Pipes {
            ping_to_pong,
            pong_to_ping,
        } = self;
        // The two ends this side does not use are dropped, so closed, here.
        let (input, output) = match role {
            Role::Ping => (pong_to_ping.0, ping_to_pong.1),
            Role::Pong => (ping_to_pong.0, pong_to_ping.1),
        };
        Ok(Stream(Duplex {
            input: File::from(input),
            output: File::from(output),
        }))
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
        let ping_to_pong = names.path("ping.fifo");
        let pong_to_ping = names.path("pong.fifo");
        make_fifo(&ping_to_pong)?;
        if let Err(error) = make_fifo(&pong_to_ping) {
            let _ = fs::remove_file(&ping_to_pong);
            return Err(error);
        }
        Ok(Fifos {
            ping_to_pong,
            pong_to_ping,
        })
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
        // Both sides open ping_to_pong first: each open waits for the other's.
        let (input, output) = match role {
            Role::Ping => {
                let output = open_fifo(&self.ping_to_pong, Way::Write)?;
                (open_fifo(&self.pong_to_ping, Way::Read)?, output)
            }
            Role::Pong => {
                let input = open_fifo(&self.ping_to_pong, Way::Read)?;
                (input, open_fifo(&self.pong_to_ping, Way::Write)?)
            }
        };
        Ok(Stream(Duplex { input, output }))
    }

    /// Removes both FIFOs (`unlink`: `fs::remove_file`). A FIFO is a name
    /// in the file system that outlives every process: left behind, it
    /// makes the next `mkfifo` of its path fail with `EEXIST`. Try both,
    /// even if the first fails, and report the first error.
    fn remove(self) -> anyhow::Result<()> {
        let first = remove_path(&self.ping_to_pong);
        let second = remove_path(&self.pong_to_ping);
        first.and(second)
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
        let path = names.path("pingpong.sock");
        let listener =
            UnixListener::bind(&path).with_context(|| format!("bind {}", path.display()))?;
        Ok(UnixStreams { path, listener })
    }

    /// Pong accepts one connection; ping drops its copy of the listener and
    /// connects to `path`. Either way, the listener is dropped: a side
    /// keeps only its connected socket.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Stream<std::os::unix::net::UnixStream>> {
        let UnixStreams { path, listener } = self;
        let stream = match role {
            Role::Pong => listener.accept().context("accept")?.0,
            Role::Ping => {
                drop(listener);
                UnixStream::connect(&path).with_context(|| format!("connect {}", path.display()))?
            }
        };
        Ok(Stream(stream))
    }

    /// Drops the listener and removes the socket file: closing a socket
    /// does not remove its name, and a stale socket file makes the next
    /// `bind` of the path fail with `EADDRINUSE`.
    fn remove(self) -> anyhow::Result<()> {
        drop(self.listener);
        remove_path(&self.path)
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
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind 127.0.0.1, port 0")?;
        Ok(Tcp { listener })
    }

    /// Pong accepts; ping connects to the listener's address. Both drop the
    /// listener, and both set `TCP_NODELAY` (`set_nodelay(true)`): without
    /// it, Nagle's algorithm may hold a small segment back until the
    /// previous one is acknowledged, which a ping-pong pays for in latency.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Stream<TcpStream>> {
        let Tcp { listener } = self;
        let stream = match role {
            Role::Pong => listener.accept().context("accept")?.0,
            Role::Ping => {
                let address = listener.local_addr().context("getsockname")?;
                drop(listener);
                TcpStream::connect(address).with_context(|| format!("connect {address}"))?
            }
        };
        stream.set_nodelay(true).context("setsockopt TCP_NODELAY")?;
        Ok(Stream(stream))
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
        for piece in message.chunks(self.limit) {
            self.queue.put(piece)?;
        }
        Ok(())
    }

    /// Takes the pieces back in the same order into `message`: the sender
    /// cut it the same way, so each piece's length is known. A piece of
    /// another length means the two sides disagree: fail, saying so
    /// (`a piece of N bytes where M were expected`).
    fn recv(&mut self, message: &mut [u8]) -> anyhow::Result<()> {
        for piece in message.chunks_mut(self.limit) {
            let expected = piece.len();
            let got = self.queue.take(piece)?;
            if got != expected {
                bail!("a piece of {got} bytes where {expected} were expected");
            }
        }
        Ok(())
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
        let (ping, pong) = UnixDatagram::pair().context("socketpair")?;
        Ok(Datagrams { ping, pong })
    }

    /// Keeps this side's socket, drops the other's; pieces of at most
    /// [`DATAGRAM_BYTES`].
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Messages<UnixDatagram>> {
        let Datagrams { ping, pong } = self;
        let queue = match role {
            Role::Ping => ping,
            Role::Pong => pong,
        };
        Ok(Messages {
            queue,
            limit: DATAGRAM_BYTES,
        })
    }
}

impl Queue for UnixDatagram {
    /// One `send`: one datagram. It sends all of `piece` or fails.
    fn put(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        let sent = self.send(piece).context("send")?;
        if sent != piece.len() {
            bail!("sent {sent} of {} bytes", piece.len());
        }
        Ok(())
    }

    /// One `recv`: one datagram, whatever its size. A datagram longer than
    /// `piece` is cut to fit and the rest is lost, without a word, unless
    /// you ask for `MSG_TRUNC` (nix: `socket::recv(fd, piece,
    /// MsgFlags::MSG_TRUNC)`): Linux then returns the datagram's real
    /// length. Return that, so that `Messages::recv` sees the difference.
    fn take(&mut self, piece: &mut [u8]) -> anyhow::Result<usize> {
        socket::recv(self.as_raw_fd(), piece, MsgFlags::MSG_TRUNC).context("recv")
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
        let key = names.key(QUEUE_PROJ)?;
        let queue = MessageQueue::create(key, MODE).context("msgget")?;
        Ok(SysvQueue { queue })
    }

    /// Ping puts [`TO_PONG`] and takes [`TO_PING`]; pong the other way
    /// round. Pieces of at most `msgmax` bytes, the kernel's limit on one
    /// message (`sys::read_limit("/proc/sys/kernel/msgmax")`, 8192 by
    /// default), and no more than `msgmnb` either
    /// (`/proc/sys/kernel/msgmnb`, 16384 by default: the bytes a queue
    /// holds in all).
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Messages<SysvEnd>> {
        let (put_type, take_type) = match role {
            Role::Ping => (TO_PONG, TO_PING),
            Role::Pong => (TO_PING, TO_PONG),
        };
        let limit =
            read_limit("/proc/sys/kernel/msgmax")?.min(read_limit("/proc/sys/kernel/msgmnb")?);
        let queue = SysvEnd {
            queue: self.queue,
            put_type,
            take_type,
        };
        Ok(Messages { queue, limit })
    }

    /// Removes the queue (`msgctl(IPC_RMID)`). A System V queue has
    /// *kernel* persistence: without this, it stays until reboot, with
    /// whatever is in it. Context: `msgctl IPC_RMID`.
    fn remove(self) -> anyhow::Result<()> {
        self.queue.remove().context("msgctl IPC_RMID")
    }
}

impl Queue for SysvEnd {
    /// `msgsnd` of type `put_type`.
    fn put(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        self.queue.send(self.put_type, piece).context("msgsnd")
    }

    /// `msgrcv` of type `take_type` (never type 0, "any type": this side
    /// would take its own messages back).
    fn take(&mut self, piece: &mut [u8]) -> anyhow::Result<usize> {
        self.queue.receive(self.take_type, piece).context("msgrcv")
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
        let max_messages = read_limit("/proc/sys/fs/mqueue/msg_max")?.min(QUEUE_MESSAGES);
        let message_size = read_limit("/proc/sys/fs/mqueue/msgsize_max")?.min(64 * 1024);
        let attributes = MqAttr::new(0, max_messages as _, message_size as _, 0);
        let (ping_name, pong_name) = (names.posix("ping"), names.posix("pong"));
        let ping_to_pong = create_queue(&ping_name, &attributes)?;
        let pong_to_ping = create_queue(&pong_name, &attributes);
        // The descriptors are open, and fork copies them: the names can go.
        let unlinked = unlink_queue(&ping_name);
        let pong_to_ping = match pong_to_ping {
            Ok(queue) => queue,
            Err(error) => {
                let _ = mq_close(ping_to_pong);
                return Err(error);
            }
        };
        let queues = PosixQueues {
            ping_to_pong,
            pong_to_ping,
            message_size,
        };
        match unlinked.and(unlink_queue(&pong_name)) {
            Ok(()) => Ok(queues),
            Err(error) => {
                let _ = queues.remove();
                Err(error)
            }
        }
    }

    /// Ping sends to `ping_to_pong` and receives from `pong_to_ping`; pong
    /// the other way round. Pieces of at most `message_size` bytes, and a
    /// scratch buffer of that size.
    fn end(self, role: Role, _peer: Pid) -> anyhow::Result<Messages<PosixEnd>> {
        let PosixQueues {
            ping_to_pong,
            pong_to_ping,
            message_size,
        } = self;
        let (output, input) = match role {
            Role::Ping => (ping_to_pong, pong_to_ping),
            Role::Pong => (pong_to_ping, ping_to_pong),
        };
        let queue = PosixEnd {
            output,
            input,
            scratch: vec![0; message_size],
        };
        Ok(Messages {
            queue,
            limit: message_size,
        })
    }

    /// Closes the supervisor's two descriptors (`mq_close`; an `MqdT` is
    /// not closed when dropped). The names are gone already.
    fn remove(self) -> anyhow::Result<()> {
        let first = mq_close(self.ping_to_pong).context("mq_close");
        let second = mq_close(self.pong_to_ping).context("mq_close");
        first.and(second)
    }
}

impl Queue for PosixEnd {
    /// `mq_send` to `output`, priority 0.
    fn put(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        mq_send(&self.output, piece, 0).context("mq_send")
    }

    /// `mq_receive` from `input` into `scratch` (a smaller buffer is
    /// refused with `EMSGSIZE`, even for a short message), then the
    /// message's bytes into `piece`.
    fn take(&mut self, piece: &mut [u8]) -> anyhow::Result<usize> {
        let mut priority = 0;
        let len =
            mq_receive(&self.input, &mut self.scratch, &mut priority).context("mq_receive")?;
        if len > piece.len() {
            bail!(
                "a message of {len} bytes, where {} were expected",
                piece.len()
            );
        }
        piece[..len].copy_from_slice(&self.scratch[..len]);
        Ok(len)
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
    match memory {
        Memory::SystemV => map_segment(names),
        Memory::Posix => map_posix_object(names),
        Memory::Anonymous => {
            Region::anonymous(REGION_BYTES).context("mmap MAP_SHARED | MAP_ANONYMOUS")
        }
    }
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
        let region = map(W::MEMORY, names)?;
        let wakeup = W::open(names, &region)?;
        Ok(Shared { region, wakeup })
    }

    /// A [`Mailbox::new`] for this side.
    fn end(self, role: Role, peer: Pid) -> anyhow::Result<Mailbox<W>> {
        Mailbox::new(self.region, self.wakeup, role, peer)
    }

    /// Removes the wake-up's objects (`W::remove`); the region is unmapped
    /// as it is dropped.
    fn remove(self) -> anyhow::Result<()> {
        self.wakeup.remove()
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
        let mut mailbox = Mailbox {
            region,
            wakeup,
            role,
            peer,
            sent: 0,
            received: 0,
        };
        // This side reads the incoming direction: its slots start out free.
        for _ in 0..SLOTS {
            mailbox
                .wakeup
                .ring(Door::Empty(role.incoming()), &mailbox.region, peer)?;
        }
        Ok(mailbox)
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
        let direction = self.role.outgoing();
        for piece in message.chunks(SLOT_BYTES) {
            self.wakeup.wait(Door::Empty(direction), &self.region)?;
            let at = slot_offset(direction, self.sent % SLOTS);
            // SAFETY: Empty let this side through, so the reader has copied this
            // slot out and will not look at it again before our ring of Full.
            unsafe { self.region.copy_in(at, piece) };
            self.wakeup
                .ring(Door::Full(direction), &self.region, self.peer)?;
            self.sent += 1;
        }
        Ok(())
    }

    /// The mirror image: for each piece of `message`, wait for
    /// `Door::Full(role.incoming())`, copy slot `received % SLOTS` out
    /// (`Region::copy_out`), ring `Door::Empty(role.incoming())`, count it.
    fn recv(&mut self, message: &mut [u8]) -> anyhow::Result<()> {
        let direction = self.role.incoming();
        for piece in message.chunks_mut(SLOT_BYTES) {
            self.wakeup.wait(Door::Full(direction), &self.region)?;
            let at = slot_offset(direction, self.received % SLOTS);
            // SAFETY: Full let this side through, so the writer has filled this
            // slot and will not touch it again before our ring of Empty.
            unsafe { self.region.copy_out(at, piece) };
            self.wakeup
                .ring(Door::Empty(direction), &self.region, self.peer)?;
            self.received += 1;
        }
        Ok(())
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
        let key = names.key(SEMAPHORES_PROJ)?;
        let semaphores = Semaphores::create(key, Door::ALL.len(), MODE).context("semget")?;
        if let Err(error) = semaphores.set_all(&[0; Door::ALL.len()]) {
            let _ = semaphores.remove();
            return Err(error).context("semctl SETALL");
        }
        Ok(SysvSemaphores { semaphores })
    }

    /// V: `add(door.index(), 1)`.
    fn ring(&mut self, door: Door, _region: &Region, _peer: Pid) -> anyhow::Result<()> {
        self.semaphores
            .add(semaphore(door), 1)
            .context("semop +1 (V)")
    }

    /// P: `add(door.index(), -1)`, which sleeps while the value is 0.
    fn wait(&mut self, door: Door, _region: &Region) -> anyhow::Result<()> {
        self.semaphores
            .add(semaphore(door), -1)
            .context("semop -1 (P)")
    }

    /// `semctl(IPC_RMID)`: a semaphore set has kernel persistence too.
    fn remove(self) -> anyhow::Result<()> {
        self.semaphores.remove().context("semctl IPC_RMID")
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
        Ok(Futexes)
    }

    /// Adds 1 to the door's counter (`fetch_add`, `Ordering::Release`:
    /// the piece copied before is visible to whoever sees the new value),
    /// then wakes one waiter (`sys::futex_wake(counter, 1, false)`). Not
    /// private: the waiter is another process.
    fn ring(&mut self, door: Door, region: &Region, _peer: Pid) -> anyhow::Result<()> {
        let counter = region.counter(door.index());
        counter.fetch_add(1, Ordering::Release);
        sys::futex_wake(counter, 1, false).context("futex FUTEX_WAKE")?;
        Ok(())
    }

    /// Loop: if the counter is above 0 (`load`, `Ordering::Acquire`), take
    /// one (`fetch_sub(1)`: only this process waits on this door) and
    /// return; else `sys::futex_wait(counter, 0, false)`, which sleeps only
    /// if the counter is still 0, and look again when it returns.
    fn wait(&mut self, door: Door, region: &Region) -> anyhow::Result<()> {
        let counter = region.counter(door.index());
        loop {
            if counter.load(Ordering::Acquire) > 0 {
                counter.fetch_sub(1, Ordering::Relaxed);
                return Ok(());
            }
            sys::futex_wait(counter, 0, false).context("futex FUTEX_WAIT")?;
        }
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
        Ok(Spin)
    }

    /// Adds 1 to the door's counter, `Ordering::Release`.
    fn ring(&mut self, door: Door, region: &Region, _peer: Pid) -> anyhow::Result<()> {
        region.counter(door.index()).fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Until the counter is above 0 (`Ordering::Acquire`): spin
    /// (`std::hint::spin_loop`), and after every [`SPINS`] looks, yield the
    /// CPU: the other process may be waiting for this one's. Then take one
    /// (`fetch_sub(1)`).
    fn wait(&mut self, door: Door, region: &Region) -> anyhow::Result<()> {
        let counter = region.counter(door.index());
        let mut looks: u32 = 0;
        while counter.load(Ordering::Acquire) == 0 {
            looks = looks.wrapping_add(1);
            if looks.is_multiple_of(SPINS) {
                thread::yield_now();
            } else {
                hint::spin_loop();
            }
        }
        counter.fetch_sub(1, Ordering::Relaxed);
        Ok(())
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
        let flags = EfdFlags::EFD_SEMAPHORE | EfdFlags::EFD_CLOEXEC;
        let doors = Door::ALL
            .iter()
            .map(|_| EventFd::from_value_and_flags(0, flags).context("eventfd"))
            .collect::<anyhow::Result<Vec<EventFd>>>()?;
        Ok(EventFds { doors })
    }

    /// Writes 1 to the door's eventfd.
    fn ring(&mut self, door: Door, _region: &Region, _peer: Pid) -> anyhow::Result<()> {
        self.doors[door.index()]
            .write(1)
            .context("write to an eventfd")?;
        Ok(())
    }

    /// Reads the door's eventfd: sleeps while the counter is 0, then takes 1.
    fn wait(&mut self, door: Door, _region: &Region) -> anyhow::Result<()> {
        self.doors[door.index()].read().context("read an eventfd")?;
        Ok(())
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
        sys::block_signals(&door_signals()).context("sigprocmask SIG_BLOCK")?;
        Ok(Signals)
    }

    /// `sys::queue_signal(peer, the door's signal)`.
    fn ring(&mut self, door: Door, _region: &Region, peer: Pid) -> anyhow::Result<()> {
        sys::queue_signal(peer, door_signal(door)).context("sigqueue")
    }

    /// `sys::wait_for_signal(the door's signal)`: `sigwaitinfo`.
    fn wait(&mut self, door: Door, _region: &Region) -> anyhow::Result<()> {
        sys::wait_for_signal(door_signal(door)).context("sigwaitinfo")?;
        Ok(())
    }

    /// Unblocks the four signals in the supervisor.
    fn remove(self) -> anyhow::Result<()> {
        sys::unblock_signals(&door_signals()).context("sigprocmask SIG_UNBLOCK")
    }
}
// ANCHOR_END: signals

// ---- private helpers --------------------------------------------------------------

/// `mkfifo(path, MODE)`.
fn make_fifo(path: &Path) -> anyhow::Result<()> {
    mkfifo(path, Mode::from_bits_truncate(MODE.into()))
        .with_context(|| format!("mkfifo {}", path.display()))
}

/// Which way a FIFO is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Read,
    Write,
}

/// Opens the FIFO at `path` one way, refusing a symbolic link
/// (`O_NOFOLLOW`) and anything that turns out not to be a FIFO.
fn open_fifo(path: &Path, way: Way) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(way == Way::Read)
        .write(way == Way::Write)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("fstat {}", path.display()))?
        .file_type();
    if !kind.is_fifo() {
        bail!("{} is not a FIFO", path.display());
    }
    Ok(file)
}

/// `unlink(path)`, with the path in the error.
fn remove_path(path: &Path) -> anyhow::Result<()> {
    fs::remove_file(path).with_context(|| format!("remove {}", path.display()))
}

/// `mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, MODE, attributes)`.
fn create_queue(name: &str, attributes: &MqAttr) -> anyhow::Result<MqdT> {
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
    mq_open(
        name,
        flags,
        Mode::from_bits_truncate(MODE.into()),
        Some(attributes),
    )
    .with_context(|| format!("mq_open {name}"))
}

/// `mq_unlink(name)`.
fn unlink_queue(name: &str) -> anyhow::Result<()> {
    mq_unlink(name).with_context(|| format!("mq_unlink {name}"))
}

/// A System V segment, attached, and marked for removal at once.
fn map_segment(names: &Names) -> anyhow::Result<Region> {
    let key = names.key(SEGMENT_PROJ)?;
    let shmid = sys::segment_create(key, REGION_BYTES, MODE).context("shmget")?;
    let region = Region::attach(shmid).context("shmat");
    // Marked now, it lives on until its last process has detached it.
    let removed = sys::segment_remove(shmid).context("shmctl IPC_RMID");
    let region = region?;
    removed?;
    Ok(region)
}

/// A POSIX shared memory object, sized, mapped, and unlinked at once.
fn map_posix_object(names: &Names) -> anyhow::Result<Region> {
    let name = names.posix("shm");
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let fd: OwnedFd = shm_open(name.as_str(), flags, Mode::from_bits_truncate(MODE.into()))
        .with_context(|| format!("shm_open {name}"))?;
    let region = ftruncate(&fd, REGION_BYTES as libc::off_t)
        .context("ftruncate")
        .and_then(|()| Region::map(fd.as_fd(), REGION_BYTES).context("mmap"));
    // Whatever happened: the mapping, if any, outlives the name.
    let unlinked = shm_unlink(name.as_str()).with_context(|| format!("shm_unlink {name}"));
    let region = region?;
    unlinked?;
    Ok(region)
}

/// The semaphore of `door`.
fn semaphore(door: Door) -> u16 {
    door.index() as u16
}

/// The real-time signal of `door`.
fn door_signal(door: Door) -> libc::c_int {
    sys::realtime_signal(door.index())
}

/// The four doors' signals.
fn door_signals() -> Vec<libc::c_int> {
    Door::ALL.iter().map(|&door| door_signal(door)).collect()
}
