//! # Lab 14: network sockets (网络套接字)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/14-net-sockets.md` and the grading
//! suite `tests/14-net-sockets.rs`. Run `cargo test` in this directory to
//! grade your work; `cargo run -- --help` shows the command you are
//! building.
//!
//! Given, in files of their own: `cli.rs`, the command line, which calls
//! these functions and prints what they return; `protocol.rs`, the
//! protocol (协议) client and server agree on: the wire format of frames,
//! requests and responses, and the server's answers; and `report.rs`, what
//! the servers print about their clients. You may add private helper
//! functions and types here.
//!
//! Two libraries meet here, as in chapter 13. nix (`nix::sys::socket`) has
//! the system calls with their flags and errno: `socket`, `setsockopt`,
//! `bind`, `listen`, `connect`, `recv`, `recvmsg`. The standard library
//! (`std::net`) has `TcpListener`, `TcpStream` and `UdpSocket`, which
//! implement `Read`, `Write`, `accept`, timeouts and `shutdown`: make
//! sockets with nix, then turn them into those with `From<OwnedFd>`.
//! Neither wraps `getaddrinfo` the way task 1 needs it: that one is
//! `libc`.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use self::report::{ClientReport, Tally, UdpOutcome, UdpTally};

pub mod cli;
pub mod protocol;
pub mod report;

// ANCHOR: resolve
/// The transport a name is resolved for: `getaddrinfo` returns one entry
/// per address **and** socket type, so the caller says which it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `SOCK_STREAM`: TCP.
    Tcp,
    /// `SOCK_DGRAM`: UDP.
    Udp,
}

/// Turns a host (a name such as `localhost`, or a numeric address such as
/// `127.0.0.1` or `::1`) and a port into socket addresses, IPv4 and IPv6
/// alike, in the order `getaddrinfo(3)` gives them: the order in which a
/// client should try them.
///
/// 1. Hints (`libc::addrinfo`, zeroed, then): `ai_family = AF_UNSPEC`
///    (both families), `ai_socktype = SOCK_STREAM` or `SOCK_DGRAM`, and
///    `ai_flags = AI_NUMERICSERV` (the service is a port number: no
///    `/etc/services` lookup). Numeric hosts need no flag: `getaddrinfo`
///    recognises them and asks nobody.
/// 2. `libc::getaddrinfo(host, port, &hints, &mut list)`, with both
///    strings as `CString`s (a host with a NUL byte in it is an error).
///    It returns 0, or an `EAI_*` code, which is **not** an errno: its
///    text is `gai_strerror(code)` (`Name or service not known` for
///    `EAI_NONAME`), except for `EAI_SYSTEM`, which means "look at
///    errno". Report either as `resolve HOST: TEXT`.
/// 3. Walk the list (`ai_next`) and convert each `ai_addr`, by its
///    `ai_family`: a `libc::sockaddr_in` for `AF_INET`, a
///    `libc::sockaddr_in6` for `AF_INET6`. Their port (`sin_port`,
///    `sin6_port`) and IPv4 address (`sin_addr.s_addr`) are stored in
///    **network byte order**, big-endian: `u16::from_be(sin_port)` is the
///    port; `sin_addr.s_addr` holds the four bytes of `a.b.c.d` in order
///    in memory (`s_addr.to_ne_bytes()`). The IPv6 address is 16 bytes,
///    in order (`sin6_addr.s6_addr`); keep `sin6_flowinfo` and
///    `sin6_scope_id` as they are. Skip any other family.
/// 4. `libc::freeaddrinfo(list)` once, after the walk and on every path:
///    the list, and every `ai_addr` in it, belongs to the C library. No
///    address at all is an error too: `resolve HOST: no address`.
pub fn resolve(host: &str, port: u16, transport: Transport) -> anyhow::Result<Vec<SocketAddr>> {
    // TODO(1): getaddrinfo with AF_UNSPEC; convert each sockaddr_in / sockaddr_in6; freeaddrinfo.
    todo!("TODO(1): resolve")
}
// ANCHOR_END: resolve

// ANCHOR: listen_connect
/// How many connections may wait for `accept` (the `listen(2)` backlog).
pub const BACKLOG: i32 = 128;

/// Makes a listening TCP socket on `host` and `port`. Port 0 asks the
/// kernel to choose a free port; `TcpListener::local_addr` (`getsockname`)
/// then says which one it chose, and the command line prints it.
///
/// 1. [`resolve`] `host` and `port` for TCP, and take the first address.
/// 2. `socket(2)` of that address's family (`AddressFamily::Inet` or
///    `Inet6`), `SOCK_STREAM`, with `SOCK_CLOEXEC`.
/// 3. `SO_REUSEADDR` on (`setsockopt(fd, sockopt::ReuseAddr, &true)`),
///    **before** `bind`. A server that closes a connection first leaves it
///    in `TIME_WAIT` for a minute, bound to the server's port; without
///    the option, a new server's `bind` of that port fails with
///    `EADDRINUSE` until then. It does not let two servers listen on one
///    port: the second still gets `EADDRINUSE`.
/// 4. `bind(2)` (`SockaddrStorage::from(address)`), `listen(2)` with a
///    backlog of [`BACKLOG`], then `TcpListener::from(fd)`.
///
/// Errors keep their errno and name the address, for example `bind
/// 127.0.0.1:8080: EADDRINUSE: Address already in use`.
pub fn listen(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    // TODO(2): resolve, socket, SO_REUSEADDR, bind, listen.
    todo!("TODO(2): listen")
}

/// Connects to `host` and `port` over TCP.
///
/// 1. [`resolve`] them for TCP. A name may have several addresses
///    (`localhost` may be `::1` and `127.0.0.1`), and a server may listen
///    on only one of them: try each in order, and keep the first
///    connection that works.
/// 2. For each: `socket(2)` of its family, `SOCK_STREAM | SOCK_CLOEXEC`,
///    then `connect(2)`. `ECONNREFUSED` means nobody listens on that port
///    at that address (the peer's kernel answered with a reset);
///    `ENETUNREACH`, `EHOSTUNREACH` and `ETIMEDOUT` that it could not be
///    reached. Remember each failure and go on to the next address.
/// 3. On the socket that connected, turn Nagle's algorithm off
///    (`TCP_NODELAY`, `sockopt::TcpNoDelay`): the client writes small
///    requests and waits for each answer, which Nagle would delay.
///    Return `TcpStream::from(fd)`.
///
/// If every address failed, the error names them all, on one line:
/// `connect localhost port 8080: [::1]:8080: ECONNREFUSED: Connection
/// refused; 127.0.0.1:8080: ECONNREFUSED: Connection refused`.
pub fn connect(host: &str, port: u16) -> anyhow::Result<TcpStream> {
    // TODO(2): resolve; for each address: socket, connect; TCP_NODELAY on the one that works.
    todo!("TODO(2): connect")
}
// ANCHOR_END: listen_connect

// ANCHOR: frames
/// Writes one frame: the body's length in 4 bytes, big-endian (network
/// byte order: `u32::to_be_bytes`), then the body. A body over
/// [`protocol::MAX_BODY`] bytes is an error (`a frame of N bytes is over
/// the limit of 65536`): no peer would take it.
///
/// Put the prefix and the body in one buffer and write it with one
/// `write_all`. It is one system call per frame instead of two, and on TCP
/// it matters more than that: a small write followed by another small
/// write, before the first is acknowledged, waits in the kernel (Nagle's
/// algorithm) while the peer waits to acknowledge (delayed ACK), up to 40
/// ms for nothing. And `write_all`, not `write`: a `write` may take fewer
/// bytes than it was given (a timeout, a signal, a non-blocking socket)
/// and says how many; `write_all` writes the rest.
pub fn write_frame(output: &mut impl Write, body: &[u8]) -> anyhow::Result<()> {
    // TODO(3): 4-byte big-endian length and the body, in one buffer, with write_all.
    todo!("TODO(3): write_frame")
}

/// Reads one frame and returns its body; `None` at end-of-file
/// **between** two frames, where a peer may leave. Chapter 13's rules,
/// on TCP, with one more way for a read to end:
///
/// 1. Read the 4-byte length prefix, big-endian, in as many reads as it
///    takes: one `read` returns what has arrived, which may be 1 byte of
///    it. End-of-file before the first byte: `Ok(None)`. After some of
///    them: `the peer left in the middle of a length prefix (N of 4
///    bytes)`.
/// 2. Refuse a length over `max` **before** allocating anything for it:
///    `a frame of L bytes is over the limit of MAX`.
/// 3. Read exactly that many bytes of body. End-of-file first: `the peer
///    left in the middle of a frame (N of L bytes)`.
///
/// A read that fails with `EINTR` (`ErrorKind::Interrupted`) is tried
/// again. A socket with a read timeout (`SO_RCVTIMEO`, set with
/// `TcpStream::set_read_timeout`) fails a read that waited that long with
/// `EAGAIN` (`ErrorKind::WouldBlock`): before the first byte of a frame,
/// that is `timed out waiting for a frame`; after it, `timed out in the
/// middle of a frame (N of L bytes)` (or `of a length prefix (N of 4
/// bytes)`). Other errors (`ECONNRESET`: the peer's kernel reset the
/// connection) are returned with their cause.
pub fn read_frame(input: &mut impl Read, max: usize) -> anyhow::Result<Option<Vec<u8>>> {
    // TODO(3): all 4 bytes of the length, the limit, then all the body; EOF and timeouts say where.
    todo!("TODO(3): read_frame")
}
// ANCHOR_END: frames

// ANCHOR: exchange
/// The client's side of a conversation: sends every request body in
/// `requests` as a frame, and returns the body of each response, in order.
///
/// The requests are **pipelined**: all are sent without waiting for
/// answers, and the answers are read as they come. So two things happen
/// at once, and each needs its own thread (`thread::scope`; both may use
/// `&stream`, which implements `Read` and `Write`):
///
/// * the sender writes every request with [`write_frame`], then **half
///   closes** the connection: `stream.shutdown(Shutdown::Write)`. The
///   server reads end-of-file after the last request, and knows the
///   client is done; the client's reading side stays open for the
///   answers still coming;
/// * the receiver (this thread) reads frames with [`read_frame`] and
///   [`protocol::MAX_BODY`] until end-of-file.
///
/// A client that writes everything before it reads anything deadlocks
/// once the answers fill the kernel's buffers: the server stops reading
/// to wait until it can write, and the client waits until it can write
/// too.
///
/// Errors: the receiver's (a reply that cannot be read, `reply N: …`,
/// with `ECONNRESET` for a connection the server reset; fewer replies than
/// requests, `the server closed the connection after N of M replies`; or
/// more), the sender's (`send request N: …`), or, when both failed, both
/// on one line, the receiver's first. Both are needed: a reset is
/// reported once, to whichever thread asks first, and the other then
/// sees only end-of-file or `EPIPE`.
pub fn exchange(stream: TcpStream, requests: &[Vec<u8>]) -> anyhow::Result<Vec<Vec<u8>>> {
    // TODO(4): a sender thread (frames, then shutdown(Write)); read frames here until end-of-file.
    todo!("TODO(4): exchange")
}
// ANCHOR_END: exchange

// ANCHOR: serve
/// Serves clients on `listener`, each in a thread of its own, until
/// `clients` connections have been accepted and served (for ever if
/// `None`), and returns the tally.
///
/// * `accept` each connection and number it, from 1. Start a thread for
///   it (`thread::Builder::spawn`, which reports a failure where
///   `thread::spawn` would panic) that runs [`serve_client`], prints the
///   report (`ClientReport::print`) and hands it back to this thread
///   (through an `mpsc` channel, say). Never serve a client in the accept
///   loop itself: a client that takes its time would hold up all the
///   others.
/// * An `accept` that fails, or a thread that cannot be started, is
///   reported on standard error (`serve: accept: …`) and the loop goes
///   on: one failed connection must not stop the server.
/// * Count each report in a [`Tally`] (`Tally::count`) as it comes. Once
///   `clients` connections have been accepted, wait for the report of
///   each; one that never comes (its thread panicked) is an error.
pub fn serve(
    listener: &TcpListener,
    clients: Option<u64>,
    idle: Duration,
) -> anyhow::Result<Tally> {
    // TODO(5): accept, a thread per client running serve_client, collect the reports.
    todo!("TODO(5): serve")
}

/// Serves one client until it leaves, and says how that ended.
///
/// 1. Note its address (`peer_addr`). Set a read and a write timeout of
///    `idle` (`SO_RCVTIMEO`, `SO_SNDTIMEO`): a client that connects and
///    sends nothing, or stops reading its answers, must not hold a thread
///    and a descriptor for ever. Turn Nagle off (`set_nodelay`).
/// 2. Until the client leaves: [`read_frame`] with
///    [`protocol::MAX_BODY`], answer with [`write_frame`] of
///    [`protocol::answer`] of the body, and count the answers (ERROR
///    responses included). `Ok(None)`: the client closed its side between
///    two frames, `End::Left`.
/// 3. If reading fails (a frame over the limit, a client that left or
///    timed out in the middle of a frame, or before any), try to tell the
///    client why with one ERROR response (`[protocol::ERROR]` and the
///    reason; if that write fails too, never mind), then `End::Dropped`
///    with the reason, written with `{error:#}`. If writing an answer
///    fails (`EPIPE`, `ECONNRESET`: the client left without reading it),
///    `End::Dropped` with that error.
///
/// The connection is closed when `stream` is dropped: make sure that
/// happens before this function returns its report, on every path, so
/// that a server that has reported every client holds no descriptor for
/// any of them.
pub fn serve_client(stream: TcpStream, number: u64, idle: Duration) -> ClientReport {
    // TODO(5): timeouts and TCP_NODELAY, then read_frame / answer / write_frame until it leaves.
    todo!("TODO(5): serve_client")
}
// ANCHOR_END: serve

// ANCHOR: udp
/// Makes a UDP socket bound to `host` and `port` (port 0: the kernel
/// chooses): [`resolve`] for UDP, the first address, `socket(2)` with
/// `SOCK_DGRAM | SOCK_CLOEXEC`, `bind(2)`, then `UdpSocket::from(fd)`.
/// No `listen`, no `accept`: every client's datagrams arrive on this one
/// socket. Errors name the address, as [`listen`]'s do.
pub fn udp_bind(host: &str, port: u16) -> anyhow::Result<UdpSocket> {
    // TODO(6): resolve for UDP, socket, bind.
    todo!("TODO(6): udp_bind")
}

/// Answers the datagrams that arrive on `socket`, until `datagrams` have
/// been received (for ever if `None`), and returns the tally.
///
/// For each datagram: `recvmsg(2)` into a buffer of
/// [`protocol::MAX_DATAGRAM`] bytes, with the flag `MSG_TRUNC` (nix:
/// `socket::recvmsg::<SockaddrStorage>`): Linux then returns the
/// datagram's **real** length, even when it did not fit, and the sender's
/// address. A datagram is one message, read whole or cut, never two
/// glued together and never one in two reads.
///
/// * Shorter than [`protocol::SEQUENCE`] bytes: there is no sequence
///   number to answer with: `ignored`.
/// * Longer than the buffer (the length returned is over it): answer with
///   its sequence number and an ERROR response, `a datagram of N bytes is
///   over the limit of 1472` (`refused`).
/// * Otherwise: answer with the same sequence number, then
///   [`protocol::answer`] of the rest (`answered`).
///
/// Answer with one `send_to` to the address it came from. Errors while
/// answering are reported on standard error (`udp-serve: …`) and the loop
/// goes on; `EINTR` means try again.
pub fn udp_serve(socket: &UdpSocket, datagrams: Option<u64>) -> anyhow::Result<UdpTally> {
    // TODO(6): recvmsg with MSG_TRUNC, sequence number, answer with send_to.
    todo!("TODO(6): udp_serve")
}

/// Sends each request body in `requests` to the UDP server at `host` and
/// `port`, one at a time, and returns the reply to each: UDP may lose a
/// datagram, deliver it twice, or deliver it late, and this function makes
/// up for all three.
///
/// 1. [`resolve`] for UDP, take the first address, make a socket of its
///    family and `connect(2)` it there. A connected UDP socket sends to
///    that address by default, accepts datagrams only from it, and
///    reports an ICMP "port unreachable" from it as `ECONNREFUSED` on a
///    later `recv`: nobody listens there (say so, and stop).
/// 2. Request number `n` (from 1) goes as one datagram: `n` as a `u32`,
///    big-endian, then the body. Send it, then wait for its reply, at most
///    `retry` (a deadline, not a timeout per `recv`: set the read timeout
///    to what is left of it before each `recv`).
/// 3. Receive with `recv(2)` and `MSG_TRUNC` into a buffer of
///    [`protocol::MAX_DATAGRAM`] bytes: a reply longer than that was cut,
///    and is an error (`reply to request N: a datagram of L bytes, cut to
///    the 1472 the buffer holds (MSG_TRUNC)`).
/// 4. A reply whose sequence number is not `n` (a duplicate, or a late
///    reply to an earlier request), or that is too short to have one, is
///    `ignored`: wait on. The reply numbered `n` is the answer: keep its
///    body (after the number) and go on to the next request.
/// 5. If the deadline passes (`EAGAIN`), send the same datagram again, up
///    to `attempts` sends in all; then fail: `no reply to request N after
///    K attempts`. Count every datagram sent.
pub fn udp_exchange(
    host: &str,
    port: u16,
    requests: &[Vec<u8>],
    retry: Duration,
    attempts: u32,
) -> anyhow::Result<UdpOutcome> {
    // TODO(6): connect a UDP socket; per request: send, recv with a deadline, retransmit, ignore stale replies.
    todo!("TODO(6): udp_exchange")
}
// ANCHOR_END: udp
