//! # Lab 14: network sockets (网络套接字) — reference solution
//!
//! The same functions as `labs/14-net-sockets/src/lib.rs`, done. Read it
//! after you have written your own: compare how `resolve` frees the list
//! on every path, how each error names the address it is about, where a
//! read that times out is told apart from end-of-file, and how the client
//! reads and writes at the same time.

use std::ffi::{CStr, CString};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{
    Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
    UdpSocket,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrStorage, sockopt,
};

use self::protocol::{HEADER, MAX_BODY, MAX_DATAGRAM, SEQUENCE};
use self::report::{ClientReport, End, Tally, UdpOutcome, UdpTally};

#[path = "../../../labs/14-net-sockets/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/14-net-sockets/src/protocol.rs"]
pub mod protocol;
#[path = "../../../labs/14-net-sockets/src/report.rs"]
pub mod report;

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
    let c_host =
        CString::new(host).with_context(|| format!("resolve {host:?}: a NUL byte in a name"))?;
    let c_port = CString::new(port.to_string()).context("a port number")?;
    // SAFETY: addrinfo is plain old data; all zeroes is a valid value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = match transport {
        Transport::Tcp => libc::SOCK_STREAM,
        Transport::Udp => libc::SOCK_DGRAM,
    };
    hints.ai_flags = libc::AI_NUMERICSERV;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: both strings are NUL-terminated and live across the call;
    // `hints` is a valid addrinfo; `list` is a valid out-pointer.
    let code = unsafe { libc::getaddrinfo(c_host.as_ptr(), c_port.as_ptr(), &hints, &mut list) };
    if code != 0 {
        bail!("resolve {host}: {}", gai_error(code));
    }
    // SAFETY: getaddrinfo succeeded, so `list` is a list it allocated;
    // it is read here, then freed once, and not used after.
    let addresses = unsafe {
        let addresses = addresses_in(list);
        libc::freeaddrinfo(list);
        addresses
    };
    if addresses.is_empty() {
        bail!("resolve {host}: no address");
    }
    Ok(addresses)
}

/// The text of a `getaddrinfo` error code: errno's for `EAI_SYSTEM`, else
/// `gai_strerror`'s.
fn gai_error(code: i32) -> String {
    if code == libc::EAI_SYSTEM {
        return Errno::last().to_string();
    }
    // SAFETY: gai_strerror returns a pointer to a static NUL-terminated
    // string for any code.
    let text = unsafe { CStr::from_ptr(libc::gai_strerror(code)) };
    text.to_string_lossy().into_owned()
}

/// The IPv4 and IPv6 addresses of a list `getaddrinfo` returned, in order.
///
/// # Safety
///
/// `list` is null or the head of a valid `addrinfo` list that is not freed
/// while this function runs.
unsafe fn addresses_in(list: *const libc::addrinfo) -> Vec<SocketAddr> {
    let mut addresses = Vec::new();
    let mut entry = list;
    // SAFETY (whole loop): every `entry` is a node of the valid list; its
    // `ai_addr` points to a sockaddr of the family `ai_family` says, at
    // least `ai_addrlen` bytes long, which read_unaligned copies out.
    while let Some(info) = unsafe { entry.as_ref() } {
        let size = info.ai_addrlen as usize;
        match info.ai_family {
            libc::AF_INET if size >= std::mem::size_of::<libc::sockaddr_in>() => {
                let sin = unsafe { info.ai_addr.cast::<libc::sockaddr_in>().read_unaligned() };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                let port = u16::from_be(sin.sin_port);
                addresses.push(SocketAddr::V4(SocketAddrV4::new(ip, port)));
            }
            libc::AF_INET6 if size >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let sin6 = unsafe { info.ai_addr.cast::<libc::sockaddr_in6>().read_unaligned() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let port = u16::from_be(sin6.sin6_port);
                let v6 = SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id);
                addresses.push(SocketAddr::V6(v6));
            }
            _ => {}
        }
        entry = info.ai_next;
    }
    addresses
}

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
    let address = first(resolve(host, port, Transport::Tcp)?)?;
    let fd = new_socket(address, SockType::Stream)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)
        .with_context(|| format!("SO_REUSEADDR on a socket for {address}"))?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(address))
        .with_context(|| format!("bind {address}"))?;
    let backlog = Backlog::new(BACKLOG).context("the listen backlog")?;
    socket::listen(&fd, backlog).with_context(|| format!("listen on {address}"))?;
    Ok(TcpListener::from(fd))
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
    let mut failures = Vec::new();
    for address in resolve(host, port, Transport::Tcp)? {
        match connect_to(address) {
            Ok(fd) => {
                socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)
                    .with_context(|| format!("TCP_NODELAY on the connection to {address}"))?;
                return Ok(TcpStream::from(fd));
            }
            Err(error) => failures.push(format!("{address}: {error:#}")),
        }
    }
    bail!("connect {host} port {port}: {}", failures.join("; "))
}

/// One `socket` and one `connect` to `address`.
fn connect_to(address: SocketAddr) -> anyhow::Result<OwnedFd> {
    let fd = new_socket(address, SockType::Stream)?;
    socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(address))?;
    Ok(fd)
}

/// A new socket of `address`'s family and of type `kind`, close-on-exec.
fn new_socket(address: SocketAddr, kind: SockType) -> anyhow::Result<OwnedFd> {
    let family = match address {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    socket::socket(family, kind, SockFlag::SOCK_CLOEXEC, None)
        .with_context(|| format!("socket for {address}"))
}

/// The first address of a list `resolve` returned.
fn first(addresses: Vec<SocketAddr>) -> anyhow::Result<SocketAddr> {
    addresses.first().copied().context("no address")
}

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
    if body.len() > MAX_BODY {
        bail!(
            "a frame of {} bytes is over the limit of {MAX_BODY}",
            body.len()
        );
    }
    let mut frame = Vec::with_capacity(HEADER + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    output.write_all(&frame).map_err(os_error)?;
    Ok(())
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
    let mut prefix = [0u8; HEADER];
    match fill(input, &mut prefix) {
        Ok(0) => return Ok(None),
        Ok(HEADER) => {}
        Ok(got) => {
            bail!("the peer left in the middle of a length prefix ({got} of {HEADER} bytes)")
        }
        Err(Stopped::TimedOut(0)) => bail!("timed out waiting for a frame"),
        Err(Stopped::TimedOut(got)) => {
            bail!("timed out in the middle of a length prefix ({got} of {HEADER} bytes)")
        }
        Err(Stopped::Failed(error)) => return Err(error),
    }
    let length = u32::from_be_bytes(prefix) as usize;
    if length > max {
        bail!("a frame of {length} bytes is over the limit of {max}");
    }
    let mut body = vec![0u8; length];
    match fill(input, &mut body) {
        Ok(got) if got == length => Ok(Some(body)),
        Ok(got) => bail!("the peer left in the middle of a frame ({got} of {length} bytes)"),
        Err(Stopped::TimedOut(got)) => {
            bail!("timed out in the middle of a frame ({got} of {length} bytes)")
        }
        Err(Stopped::Failed(error)) => Err(error),
    }
}

/// Why [`fill`] stopped before its buffer was full or end-of-file came.
enum Stopped {
    /// A read timed out after this many bytes.
    TimedOut(usize),
    /// A read failed.
    Failed(anyhow::Error),
}

/// Reads until `buffer` is full or end-of-file, and returns how many bytes
/// it got.
fn fill(input: &mut impl Read, buffer: &mut [u8]) -> Result<usize, Stopped> {
    let mut got = 0;
    while got < buffer.len() {
        match input.read(&mut buffer[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Stopped::TimedOut(got));
            }
            Err(error) => return Err(Stopped::Failed(os_error(error))),
        }
    }
    Ok(got)
}

/// An I/O error as the chapter writes errors: `ECONNRESET: Connection
/// reset by peer`, with errno's name, when it has an errno.
fn os_error(error: io::Error) -> anyhow::Error {
    match error.raw_os_error() {
        Some(code) => anyhow!(Errno::from_raw(code)),
        None => anyhow!(error),
    }
}

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
    let (received, sent) = thread::scope(|scope| {
        let sender = scope.spawn(|| send_requests(&stream, requests));
        let received = receive_replies(&stream, requests.len());
        if received.is_err() {
            // Wake the sender if it waits to write: its write now fails.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the sending thread panicked")));
        (received, sent)
    });
    match (received, sent) {
        (Ok(replies), Ok(())) => Ok(replies),
        (Err(receiving), Ok(())) => Err(receiving),
        (Ok(_), Err(sending)) => Err(sending),
        (Err(receiving), Err(sending)) => Err(sending.context(format!("{receiving:#}"))),
    }
}

/// The sender: every request as a frame, then the half-close.
fn send_requests(mut stream: &TcpStream, requests: &[Vec<u8>]) -> anyhow::Result<()> {
    for (number, request) in requests.iter().enumerate() {
        write_frame(&mut stream, request)
            .with_context(|| format!("send request {}", number + 1))?;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(os_error)
        .context("shutdown(SHUT_WR) after the last request")
}

/// The receiver: frames until end-of-file, which must come after exactly
/// `expected` of them.
fn receive_replies(mut stream: &TcpStream, expected: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut replies = Vec::with_capacity(expected);
    while let Some(reply) =
        read_frame(&mut stream, MAX_BODY).with_context(|| format!("reply {}", replies.len() + 1))?
    {
        if replies.len() == expected {
            bail!("the server sent more replies than the {expected} request(s)");
        }
        replies.push(reply);
    }
    if replies.len() < expected {
        bail!(
            "the server closed the connection after {} of {expected} replies",
            replies.len()
        );
    }
    Ok(replies)
}

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
    let (reports, reported) = mpsc::channel();
    let mut tally = Tally::default();
    let mut started = 0u64;
    while clients.is_none_or(|max| started < max) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("serve: accept: {:#}", os_error(error));
                continue;
            }
        };
        let number = started + 1;
        let sender = reports.clone();
        let spawned = thread::Builder::new()
            .name(format!("client-{number}"))
            .spawn(move || {
                let report = serve_client(stream, number, idle);
                report.print();
                let _ = sender.send(report);
            });
        match spawned {
            Ok(_) => started += 1,
            Err(error) => eprintln!("serve: accept: a thread for client {number}: {error}"),
        }
        for report in reported.try_iter() {
            tally.count(&report);
        }
    }
    drop(reports);
    for report in reported.iter() {
        tally.count(&report);
    }
    if tally.clients < started {
        bail!(
            "{} of {started} client thread(s) ended without a report",
            started - tally.clients
        );
    }
    Ok(tally)
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
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut answered = 0;
    let end = match converse_with(stream, idle, &mut answered) {
        Ok(()) => End::Left,
        Err(error) => End::Dropped(format!("{error:#}")),
    };
    ClientReport {
        number,
        peer,
        answered,
        end,
    }
}

/// The conversation with one client; `stream` is closed when it returns.
fn converse_with(mut stream: TcpStream, idle: Duration, answered: &mut u64) -> anyhow::Result<()> {
    stream
        .set_read_timeout(Some(idle))
        .and_then(|()| stream.set_write_timeout(Some(idle)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(os_error)
        .context("set the socket's options")?;
    loop {
        let request = match read_frame(&mut stream, MAX_BODY) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(error) => {
                let reason = format!("{error:#}");
                let _ = write_frame(
                    &mut stream,
                    &[&[protocol::ERROR], reason.as_bytes()].concat(),
                );
                return Err(error);
            }
        };
        write_frame(&mut stream, &protocol::answer(&request))
            .with_context(|| format!("answer request {}", *answered + 1))?;
        *answered += 1;
    }
}

/// Makes a UDP socket bound to `host` and `port` (port 0: the kernel
/// chooses): [`resolve`] for UDP, the first address, `socket(2)` with
/// `SOCK_DGRAM | SOCK_CLOEXEC`, `bind(2)`, then `UdpSocket::from(fd)`.
/// No `listen`, no `accept`: every client's datagrams arrive on this one
/// socket. Errors name the address, as [`listen`]'s do.
pub fn udp_bind(host: &str, port: u16) -> anyhow::Result<UdpSocket> {
    let address = first(resolve(host, port, Transport::Udp)?)?;
    let fd = new_socket(address, SockType::Datagram)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(address))
        .with_context(|| format!("bind {address}"))?;
    Ok(UdpSocket::from(fd))
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
    let mut tally = UdpTally::default();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    while datagrams.is_none_or(|max| tally.datagrams < max) {
        let (length, sender) = match receive_datagram(socket, &mut buffer) {
            Ok(received) => received,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("recvmsg"),
        };
        tally.datagrams += 1;
        if length < SEQUENCE {
            tally.ignored += 1;
            continue;
        }
        let body = if length > MAX_DATAGRAM {
            tally.refused += 1;
            let reason =
                format!("a datagram of {length} bytes is over the limit of {MAX_DATAGRAM}");
            [&[protocol::ERROR], reason.as_bytes()].concat()
        } else {
            tally.answered += 1;
            protocol::answer(&buffer[SEQUENCE..length])
        };
        let reply = [&buffer[..SEQUENCE], &body[..]].concat();
        if let Err(error) = socket.send_to(&reply, sender) {
            eprintln!("udp-serve: answer {sender}: {:#}", os_error(error));
        }
    }
    Ok(tally)
}

/// One datagram into `buffer`: its real length (`MSG_TRUNC`), which may be
/// more than the buffer holds, and who sent it.
fn receive_datagram(socket: &UdpSocket, buffer: &mut [u8]) -> Result<(usize, SocketAddr), Errno> {
    let mut parts = [io::IoSliceMut::new(buffer)];
    let message = socket::recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut parts,
        None,
        MsgFlags::MSG_TRUNC,
    )?;
    let sender = message
        .address
        .and_then(|address| storage_to_std(&address))
        .ok_or(Errno::EAFNOSUPPORT)?;
    Ok((message.bytes, sender))
}

/// A `SockaddrStorage` that holds an IPv4 or IPv6 address, as a std one.
fn storage_to_std(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
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
    let address = first(resolve(host, port, Transport::Udp)?)?;
    let fd = new_socket(address, SockType::Datagram)?;
    socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(address))
        .with_context(|| format!("connect {address}"))?;
    let socket = UdpSocket::from(fd);
    let mut outcome = UdpOutcome {
        replies: Vec::with_capacity(requests.len()),
        sent: 0,
        ignored: 0,
    };
    for (index, body) in requests.iter().enumerate() {
        let number = index as u32 + 1;
        let datagram = [&number.to_be_bytes()[..], body].concat();
        let reply = ask(&socket, number, &datagram, retry, attempts, &mut outcome)?;
        outcome.replies.push(reply);
    }
    Ok(outcome)
}

/// Sends `datagram` (request `number`) until its reply comes, at most
/// `attempts` times, and returns the reply's body.
fn ask(
    socket: &UdpSocket,
    number: u32,
    datagram: &[u8],
    retry: Duration,
    attempts: u32,
    outcome: &mut UdpOutcome,
) -> anyhow::Result<Vec<u8>> {
    for _ in 0..attempts {
        socket
            .send(datagram)
            .map_err(os_error)
            .with_context(|| format!("send request {number}"))?;
        outcome.sent += 1;
        let deadline = Instant::now() + retry;
        let reply = await_reply(socket, number, deadline, outcome)
            .with_context(|| format!("reply to request {number}"))?;
        if let Some(reply) = reply {
            return Ok(reply);
        }
    }
    bail!("no reply to request {number} after {attempts} attempts")
}

/// Receives until the reply numbered `number` comes (its body), or the
/// deadline passes (`None`); anything else is counted as ignored.
fn await_reply(
    socket: &UdpSocket,
    number: u32,
    deadline: Instant,
    outcome: &mut UdpOutcome,
) -> anyhow::Result<Option<Vec<u8>>> {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(os_error)
            .context("SO_RCVTIMEO")?;
        let length = match socket::recv(socket.as_raw_fd(), &mut buffer, MsgFlags::MSG_TRUNC) {
            Ok(length) => length,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(Errno::ECONNREFUSED) => bail!(
                "ECONNREFUSED: nobody listens on that port (an ICMP port unreachable came back)"
            ),
            Err(errno) => return Err(errno).context("recv"),
        };
        if length > MAX_DATAGRAM {
            bail!(
                "a datagram of {length} bytes, cut to the {MAX_DATAGRAM} the buffer holds \
                 (MSG_TRUNC)"
            );
        }
        match buffer[..length].split_first_chunk::<SEQUENCE>() {
            Some((sequence, body)) if u32::from_be_bytes(*sequence) == number => {
                return Ok(Some(body.to_vec()));
            }
            _ => outcome.ignored += 1,
        }
    }
}
