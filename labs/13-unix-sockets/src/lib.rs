//! # Lab 13: Unix domain sockets (Unix 域套接字)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/13-unix-sockets.md` and the grading
//! suite `tests/13-unix-sockets.rs`. Run `cargo test` in this directory to
//! grade your work; `cargo run -- --help` shows the command you are
//! building.
//!
//! Given, in files of their own: `cli.rs`, the command line, which calls
//! these functions and prints what they return; `address.rs`, the
//! [`Address`] a command line names (a path, or `@name` for an abstract
//! name) and the [`SocketFile`] a server removes when it stops; `stop.rs`,
//! which removes that file on SIGINT and SIGTERM; and `report.rs`, what the
//! server of task 5 prints about each client. You may add private helper
//! functions and types here.
//!
//! Two libraries meet here. nix (`nix::sys::socket`) has every system call
//! of the chapter, with their flags and errno: `socketpair`, `bind`,
//! `connect`, `sendmsg` and `recvmsg` with control messages, `getsockopt`.
//! The standard library (`std::os::unix::net`) has `UnixStream` and
//! `UnixListener`, which implement `Read` and `Write`: make sockets with
//! nix, then turn them into those with `From<OwnedFd>`.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::sys::socket::UnixAddr;

use self::address::{Address, SocketFile};
use self::report::{ClientReport, Tally};

pub mod address;
pub mod cli;
pub mod report;
pub mod stop;

// ANCHOR: pair
/// The two kinds of Unix domain socket this lab uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_STREAM`: a byte stream (字节流), like a pipe, but both ways.
    Stream,
    /// `SOCK_DGRAM`: datagrams (数据报), messages that keep their
    /// boundaries.
    Datagram,
}

/// What one read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The bytes that fit in the buffer.
    pub data: Vec<u8>,
    /// How long what was there was: `data.len()`, or more for a datagram
    /// longer than the buffer, whose rest is lost (`MSG_TRUNC`).
    pub length: usize,
}

/// Sends `messages` from a child to its parent over a socket pair of
/// `kind`, then reads them in the parent with a buffer of `buffer` bytes,
/// and returns what each read returned, in order.
///
/// 1. `socketpair(AF_UNIX, SOCK_STREAM or SOCK_DGRAM, 0)` with
///    `SOCK_CLOEXEC` (nix: `socket::socketpair`): two sockets connected to
///    each other, each one readable and writable (full duplex).
/// 2. `fork`. The **child** drops the parent's end, sends each message
///    with exactly one `send(2)` (a message of 0 bytes is one `send` of 0
///    bytes) and `_exit`s: 0, or 1 after printing the error.
/// 3. The **parent** drops the child's end (or a stream never ends: its
///    reader would wait for a writer that is itself), reaps the child
///    (`waitpid`; a child that did not exit with 0 is an error), and only
///    then reads. Everything the child sent is waiting in the socket, so
///    what each read returns shows where the kernel keeps boundaries, not
///    how fast the child was.
/// 4. Read with `recv(2)` into a buffer of `buffer` bytes, with
///    `MSG_DONTWAIT` (never wait: the child is gone), plus `MSG_TRUNC` for
///    datagrams (Linux then returns a datagram's real length even when it
///    was cut to fit the buffer), until:
///    * stream: `recv` returns 0, end-of-file. `EAGAIN` before that is an
///      error (`no end-of-file …`): a copy of the other end is still open;
///    * datagrams: `recv` fails with `EAGAIN`, the queue is empty. A
///      datagram socket has no end-of-file: a `recv` that returns 0 has
///      received a datagram of 0 bytes, and closing the other end sends
///      nothing.
///
///    `EINTR` means try again.
pub fn pair(kind: Kind, messages: &[String], buffer: usize) -> anyhow::Result<Vec<Received>> {
    // TODO(1): socketpair, fork, one send per message; reap, then recv until EOF or EAGAIN.
    todo!("TODO(1): pair")
}
// ANCHOR_END: pair

// ANCHOR: names
/// The size of `sun_path` in `struct sockaddr_un` on Linux: room for a
/// path of at most `SUN_PATH_LEN - 1` bytes and its terminating NUL, or
/// for a NUL and an abstract name of at most `SUN_PATH_LEN - 1` bytes.
pub const SUN_PATH_LEN: usize = 108;

/// How many connections may wait for `accept` (the `listen(2)` backlog).
pub const BACKLOG: i32 = 128;

/// Turns `address` into a `struct sockaddr_un`: nix's `UnixAddr::new(path)`
/// for a path, `UnixAddr::new_abstract(name)` for an abstract name (nix
/// adds the leading NUL byte).
///
/// A path or name of [`SUN_PATH_LEN`] bytes or more does not fit. Say so
/// before the kernel is asked, on one line: `ADDRESS: too long for a Unix
/// socket address (N bytes; sun_path holds 107 and a NUL)`. (C code that
/// copies the path with `strncpy` cuts it short instead, and binds or
/// connects to another file.)
pub fn socket_address(address: &Address) -> anyhow::Result<UnixAddr> {
    // TODO(2): check the length, then UnixAddr::new or UnixAddr::new_abstract.
    todo!("TODO(2): socket_address")
}

/// A listening stream socket, and the socket file it owns.
#[derive(Debug)]
pub struct Listener {
    /// The listening socket: `accept` gives one connected socket per client.
    pub socket: UnixListener,
    /// The socket file, removed when the listener is dropped; `None` for
    /// an abstract name, which has no file.
    pub file: Option<SocketFile>,
    /// Whether [`listen`] removed a stale socket file at the path first.
    pub removed_stale: bool,
}

/// Makes a listening stream socket at `address`.
///
/// 1. `socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)` and
///    [`socket_address`].
/// 2. `bind(2)`. For a path, `bind` creates the socket file, and fails with
///    `EADDRINUSE` if **anything** is at that path already. Then, for a
///    path only:
///    * if what is there is not a socket (`fs::symlink_metadata`,
///      `FileTypeExt::is_socket`), fail (`bind PATH: EADDRINUSE: not a
///      socket, left alone`), and never remove it;
///    * if it is a socket, find out whether a server still listens there:
///      `connect` to it from a new socket, made with `SOCK_NONBLOCK` so
///      that it cannot wait. `ECONNREFUSED` means nobody does: the file is
///      stale, left by a server that died without removing it. Remove it,
///      set `removed_stale`, and `bind` again. A connection, or `EAGAIN`
///      (a live server whose queue is full), means it is in use: fail
///      (`bind PATH: EADDRINUSE: another server is listening on it`), and
///      leave it alone.
///
///    For an abstract name, `EADDRINUSE` means another socket has it.
/// 3. Only now that the file is yours, take charge of it with
///    [`SocketFile::new`]: it is removed when the listener is dropped.
/// 4. Set its permission bits to `mode` (`fs::set_permissions`): `connect`
///    needs **write** permission on the socket file, so 0600 lets in its
///    owner only. Do it before `listen`: until then every `connect` is
///    refused, so no client can slip in under the mode `bind` gave the
///    file (0777 minus the umask). `fchmod` on the socket's descriptor
///    would not do it: it does not change the file. An abstract name has
///    no file and no permission bits: any process may connect to it.
/// 5. `listen(2)` with a backlog of [`BACKLOG`], then wrap the descriptor
///    in a `std::os::unix::net::UnixListener` (`UnixListener::from`).
///
/// Errors keep their errno and name the address, for example `bind
/// ADDRESS: EACCES: Permission denied`.
pub fn listen(address: &Address, mode: u32) -> anyhow::Result<Listener> {
    // TODO(2): socket, bind (stale file? only if nobody answers), SocketFile, chmod, listen.
    todo!("TODO(2): listen")
}

/// Connects a stream socket to the server at `address`, and wraps it in a
/// `std::os::unix::net::UnixStream`.
///
/// `socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)`, [`socket_address`],
/// `connect(2)`. Errors keep their errno and name the address, for example
/// `connect ADDRESS: ENOENT: No such file or directory`:
///
/// * `ENOENT`: nothing at that path (a server that has not started, or has
///   removed its file);
/// * `ECONNREFUSED`: nobody listens (a stale socket file, or an abstract
///   name nobody holds). Linux says the same for a path that is **not a
///   socket** at all, a regular file or a FIFO: look (`fs::metadata`), and
///   say so in that case: `connect PATH: not a socket`;
/// * `EACCES`: no write permission on the socket file, or no search
///   permission on a directory of the path.
pub fn connect(address: &Address) -> anyhow::Result<UnixStream> {
    // TODO(2): socket, connect; ECONNREFUSED on a path that is not a socket says so.
    todo!("TODO(2): connect")
}
// ANCHOR_END: names

// ANCHOR: frames
/// The largest payload a frame may carry: 64 KiB.
pub const MAX_FRAME: usize = 64 * 1024;

/// The bytes of a frame's length prefix.
pub const HEADER: usize = 4;

/// Writes one frame: the payload's length in 4 bytes, big-endian (network
/// byte order: `u32::to_be_bytes`), then the payload. A payload over
/// [`MAX_FRAME`] bytes is an error (`a frame of N bytes is over the limit
/// of 65536`): no peer would take it.
///
/// Put the prefix and the payload in one buffer and write it with one
/// `write_all`: one system call per frame, not two, and a reader that
/// looks too early finds a whole frame or nothing, not a prefix alone. A
/// `write` may take fewer bytes than it was given (a signal, a
/// non-blocking socket, a full buffer), and says how many: `write_all`
/// writes again until every byte is gone, where one plain `write` would
/// lose the rest, and the peer would wait for it for ever.
pub fn write_frame(output: &mut impl Write, payload: &[u8]) -> anyhow::Result<()> {
    // TODO(3): 4-byte big-endian length, then the payload, with write_all.
    todo!("TODO(3): write_frame")
}

/// Reads one frame and returns its payload; `None` at end-of-file
/// **between** two frames, which is where a peer may leave.
///
/// 1. Read the 4-byte length prefix, big-endian. A `read` may return fewer
///    bytes than asked: a frame arrives in as many pieces as the writer's
///    writes and the kernel's buffers cut it into. Read again until you
///    have all 4. End-of-file before the first byte: `Ok(None)`.
///    End-of-file after some of them: `the peer left in the middle of a
///    length prefix (N of 4 bytes)`.
/// 2. Refuse a length over `max` **before** allocating anything for it: `a
///    frame of L bytes is over the limit of MAX`. The peer chose that
///    number, and 4 GiB is only four bytes away.
/// 3. Read exactly that many bytes, again in as many reads as it takes.
///    End-of-file first: `the peer left in the middle of a frame (N of L
///    bytes)`.
///
/// `EINTR` means try again; other errors are returned with their cause.
pub fn read_frame(input: &mut impl Read, max: usize) -> anyhow::Result<Option<Vec<u8>>> {
    // TODO(3): all 4 bytes of the length, the limit, then all the payload.
    todo!("TODO(3): read_frame")
}
// ANCHOR_END: frames

// ANCHOR: ancillary
/// Who the process at the other end of a connection is, as the kernel
/// recorded it when the connection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its process ID.
    pub pid: i32,
    /// Its effective user ID.
    pub uid: u32,
    /// Its effective group ID.
    pub gid: u32,
}

/// `getsockopt(SO_PEERCRED)` (nix: `socket::getsockopt(stream,
/// sockopt::PeerCredentials)`): the pid, effective uid and effective gid of
/// the process at the other end, as they were when it called `connect`
/// (seen by a server) or `listen` (seen by a client). The kernel filled
/// them in; the peer had no say. Errors with the context `SO_PEERCRED`.
pub fn peer_credentials(stream: &UnixStream) -> anyhow::Result<Peer> {
    // TODO(4): getsockopt(SO_PEERCRED) into a Peer.
    todo!("TODO(4): peer_credentials")
}

/// The byte of data that carries a descriptor in the `share` protocol.
pub const GRANTED: u8 = b'+';

/// The byte that starts a refusal in the `share` protocol: a line of text
/// (the reason) follows, then the server closes the connection.
pub const REFUSED: u8 = b'-';

/// Sends the open file `fd` to the process at the other end of `stream`:
/// one `sendmsg(2)` with one byte of data, [`GRANTED`], and one control
/// message, `SCM_RIGHTS`, that holds the descriptor (nix:
/// `socket::sendmsg::<UnixAddr>(raw_fd, &[IoSlice::new(&[GRANTED])],
/// &[ControlMessage::ScmRights(&[fd.as_raw_fd()])], MsgFlags::empty(),
/// None)`). Errors with the context `sendmsg SCM_RIGHTS`.
///
/// The kernel gives the receiver a new descriptor, with a number of its
/// own, for the same open file: same offset, same access mode, whatever
/// the file's permissions say now. The byte of data is needed: on a stream
/// socket, control messages travel with data, and a `sendmsg` of 0 bytes
/// sends nothing at all. Sending the descriptor's number as data would
/// not do either: numbers mean something only in their own process.
pub fn send_fd(stream: &UnixStream, fd: BorrowedFd<'_>) -> anyhow::Result<()> {
    // TODO(4): sendmsg: one byte of data and SCM_RIGHTS with the descriptor.
    todo!("TODO(4): send_fd")
}

/// Receives the descriptor that [`send_fd`] sends.
///
/// 1. One `recvmsg(2)` of 1 byte, with a control buffer with room for one
///    descriptor (nix: `cmsg_space!(RawFd)`) and the flag
///    `MSG_CMSG_CLOEXEC`, so that the new descriptor is not inherited by
///    programs this one runs. `EINTR` means try again.
/// 2. If the kernel had to cut the control data (`MSG_CTRUNC` in the flags
///    returned), fail (`the control data was cut short (MSG_CTRUNC)`): the
///    descriptors that did not fit were closed.
/// 3. Take the descriptor out of the `ControlMessageOwned::ScmRights`
///    message and own it at once (`OwnedFd::from_raw_fd`), so that it is
///    closed on every path.
/// 4. Then look at the byte. [`GRANTED`] with a descriptor: return it.
///    [`GRANTED`] without one: `the server sent no descriptor`. [`REFUSED`]:
///    read the rest of the stream, the reason, and fail with `the server
///    refused: REASON`. End-of-file (0 bytes): `the server closed the
///    connection without a word`. Anything else: `unexpected byte B from
///    the server`.
pub fn receive_fd(stream: &mut UnixStream) -> anyhow::Result<OwnedFd> {
    // TODO(4): recvmsg with room for one descriptor; MSG_CTRUNC; then the byte.
    todo!("TODO(4): receive_fd")
}
// ANCHOR_END: ancillary

// ANCHOR: serve
/// Serves clients on `listener`, each in a thread of its own, until
/// `clients` connections have been accepted and served (for ever if
/// `None`), and returns the tally.
///
/// * `accept` each connection and number it, from 1. Start a thread for
///   it (`thread::spawn`) that runs [`serve_client`], with this process's
///   effective uid (`geteuid`) as the only uid allowed, prints the report
///   (`ClientReport::print`) and returns it. Never serve a client in the
///   accept loop itself: a client that takes its time would hold up all
///   the others.
/// * An `accept` that fails is reported on standard error (`serve: accept:
///   …`) and the loop goes on: one failed connection must not stop the
///   server.
/// * Once `clients` connections have been accepted, join every thread and
///   count each report in a [`Tally`] (`Tally::count`). A thread that
///   panicked is an error.
pub fn serve(listener: &Listener, clients: Option<u64>) -> anyhow::Result<Tally> {
    // TODO(5): accept, a thread per client running serve_client, join, tally.
    todo!("TODO(5): serve")
}

/// Serves one client, and says how that ended.
///
/// 1. Ask who it is, with [`peer_credentials`]. If that fails, drop it
///    (`End::Dropped` with the error). If its uid is not `allowed_uid`,
///    refuse it (`End::Refused`): return at once, which closes the
///    connection without reading a byte. An abstract name has no
///    permission bits, and a socket file may be made open to all
///    (`--mode 666`): this check is what keeps other users out.
/// 2. Then, until it leaves: [`read_frame`] with [`MAX_FRAME`], and answer
///    each request with [`write_frame`] of the same bytes in reverse order
///    (`reverse()`), counting the answers. `Ok(None)` means the client
///    left between two frames: `End::Left`. Any error, reading or writing
///    (a frame over the limit, a client that left in the middle of a
///    frame, `EPIPE` or `ECONNRESET` from a client that left before its
///    answer): `End::Dropped` with the error, written with `{error:#}`.
///
/// The answer reverses the bytes so that it depends on where each frame
/// begins and ends: a server that copied bytes through without reading
/// the frames would not pass.
pub fn serve_client(stream: UnixStream, number: u64, allowed_uid: u32) -> ClientReport {
    // TODO(5): SO_PEERCRED and the uid, then read_frame / reverse / write_frame until it leaves.
    todo!("TODO(5): serve_client")
}
// ANCHOR_END: serve
