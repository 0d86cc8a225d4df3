//! # Lab 13: Unix domain sockets (Unix 域套接字) — reference solution
//!
//! The same functions as `labs/13-unix-sockets/src/lib.rs`, done. Read it
//! after you have written your own: compare when each end of a socket is
//! closed, when the socket file becomes yours, and how every read copes
//! with getting less than it asked for.

use std::fs::{self, Permissions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::thread;

use anyhow::{Context, bail};
use nix::cmsg_space;
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr, sockopt,
};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, geteuid};

use self::address::{Address, SocketFile};
use self::report::{ClientReport, End, Tally};

#[path = "../../../labs/13-unix-sockets/src/address.rs"]
pub mod address;
#[path = "../../../labs/13-unix-sockets/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/13-unix-sockets/src/report.rs"]
pub mod report;
#[path = "../../../labs/13-unix-sockets/src/stop.rs"]
pub mod stop;

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
    let socket_type = match kind {
        Kind::Stream => SockType::Stream,
        Kind::Datagram => SockType::Datagram,
    };
    let (parent_end, child_end) = socket::socketpair(
        AddressFamily::Unix,
        socket_type,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair")?;
    // SAFETY: single-threaded; the child only sends, prints and _exits.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(parent_end);
            exit_child(send_each(&child_end, messages))
        }
        ForkResult::Parent { child } => {
            drop(child_end);
            reap(child)?;
            receive_all(&parent_end, kind, buffer)
        }
    }
}

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
    let (bytes, made) = match address {
        Address::Path(path) => (path.as_os_str().len(), UnixAddr::new(path.as_path())),
        Address::Abstract(name) => (name.len(), UnixAddr::new_abstract(name)),
    };
    if bytes >= SUN_PATH_LEN {
        bail!(
            "{address}: too long for a Unix socket address ({bytes} bytes; sun_path holds {} \
             and a NUL)",
            SUN_PATH_LEN - 1
        );
    }
    made.with_context(|| format!("{address}: not a Unix socket address"))
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
    let socket_addr = socket_address(address)?;
    let fd = stream_socket(SockFlag::empty())?;
    let removed_stale = match socket::bind(fd.as_raw_fd(), &socket_addr) {
        Ok(()) => false,
        Err(Errno::EADDRINUSE) => {
            let Some(path) = address.path() else {
                bail!("bind {address}: EADDRINUSE: another socket has this abstract name");
            };
            remove_stale(path)?;
            socket::bind(fd.as_raw_fd(), &socket_addr)
                .with_context(|| format!("bind {address} after removing the stale file"))?;
            true
        }
        Err(errno) => return Err(errno).with_context(|| format!("bind {address}")),
    };
    // The file exists and is ours: from here on, every way out removes it.
    let file = address.path().map(SocketFile::new);
    if let Some(path) = address.path() {
        fs::set_permissions(path, Permissions::from_mode(mode))
            .with_context(|| format!("chmod {mode:o} {address}"))?;
    }
    let backlog = Backlog::new(BACKLOG).context("listen backlog")?;
    socket::listen(&fd, backlog).with_context(|| format!("listen on {address}"))?;
    Ok(Listener {
        socket: UnixListener::from(fd),
        file,
        removed_stale,
    })
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
    let socket_addr = socket_address(address)?;
    let fd = stream_socket(SockFlag::empty())?;
    match socket::connect(fd.as_raw_fd(), &socket_addr) {
        Ok(()) => Ok(UnixStream::from(fd)),
        Err(Errno::ECONNREFUSED)
            if address
                .path()
                .and_then(|path| fs::metadata(path).ok())
                .is_some_and(|meta| !meta.file_type().is_socket()) =>
        {
            bail!("connect {address}: not a socket")
        }
        Err(errno) => Err(errno).with_context(|| format!("connect {address}")),
    }
}

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
    if payload.len() > MAX_FRAME {
        bail!(
            "a frame of {} bytes is over the limit of {MAX_FRAME}",
            payload.len()
        );
    }
    let length = u32::try_from(payload.len()).context("frame length")?;
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    output.write_all(&frame).context("write a frame")?;
    output.flush().context("write a frame")
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
    let mut header = [0u8; HEADER];
    match read_full(input, &mut header).context("read a length prefix")? {
        0 => return Ok(None),
        HEADER => {}
        got => bail!("the peer left in the middle of a length prefix ({got} of {HEADER} bytes)"),
    }
    let length = u32::from_be_bytes(header) as usize;
    if length > max {
        bail!("a frame of {length} bytes is over the limit of {max}");
    }
    let mut payload = vec![0; length];
    let got = read_full(input, &mut payload).context("read a frame")?;
    if got < length {
        bail!("the peer left in the middle of a frame ({got} of {length} bytes)");
    }
    Ok(Some(payload))
}

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
    let credentials =
        socket::getsockopt(stream, sockopt::PeerCredentials).context("SO_PEERCRED")?;
    Ok(Peer {
        pid: credentials.pid(),
        uid: credentials.uid(),
        gid: credentials.gid(),
    })
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
    let data = [GRANTED];
    let fds = [fd.as_raw_fd()];
    let sent = socket::sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &[IoSlice::new(&data)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sendmsg SCM_RIGHTS")?;
    if sent != data.len() {
        bail!("sendmsg SCM_RIGHTS sent {sent} bytes, not 1");
    }
    Ok(())
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
    let (byte, fd) = receive_one_byte(stream)?;
    match (byte, fd) {
        (Some(GRANTED), Some(fd)) => Ok(fd),
        (Some(GRANTED), None) => bail!("the server sent no descriptor"),
        (Some(REFUSED), _) => {
            let mut reason = String::new();
            stream
                .read_to_string(&mut reason)
                .context("read the server's refusal")?;
            bail!("the server refused: {}", reason.trim_end())
        }
        (None, _) => bail!("the server closed the connection without a word"),
        (Some(other), _) => bail!("unexpected byte {other:#04x} from the server"),
    }
}

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
    let allowed_uid = geteuid().as_raw();
    let mut threads = Vec::new();
    let mut number = 0;
    while clients.is_none_or(|max| number < max) {
        let stream = match listener.socket.accept() {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("serve: accept: {error}");
                continue;
            }
        };
        number += 1;
        let client = thread::Builder::new()
            .name(format!("client-{number}"))
            .spawn(move || {
                let report = serve_client(stream, number, allowed_uid);
                report.print();
                report
            })
            .with_context(|| format!("start a thread for client {number}"))?;
        threads.push(client);
    }
    let mut tally = Tally::default();
    for client in threads {
        match client.join() {
            Ok(report) => tally.count(&report),
            Err(_) => bail!("a client's thread panicked"),
        }
    }
    Ok(tally)
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
    let mut report = ClientReport {
        number,
        peer: None,
        answered: 0,
        end: End::Left,
    };
    let peer = match peer_credentials(&stream) {
        Ok(peer) => peer,
        Err(error) => {
            report.end = End::Dropped(format!("{error:#}"));
            return report;
        }
    };
    report.peer = Some(peer);
    if peer.uid != allowed_uid {
        report.end = End::Refused;
        return report;
    }
    if let Err(error) = answer_frames(stream, &mut report.answered) {
        report.end = End::Dropped(format!("{error:#}"));
    }
    report
}

/// Sends each message of `messages` with one `send`; the child's work.
fn send_each(socket: &OwnedFd, messages: &[String]) -> anyhow::Result<()> {
    for (number, message) in messages.iter().enumerate() {
        let sent = loop {
            match socket::send(socket.as_raw_fd(), message.as_bytes(), MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                result => break result.with_context(|| format!("send message {}", number + 1))?,
            }
        };
        if sent != message.len() {
            bail!(
                "send message {}: {sent} of {} bytes",
                number + 1,
                message.len()
            );
        }
    }
    Ok(())
}

/// The parent's reads of [`pair`], until end-of-file or an empty queue.
fn receive_all(socket: &OwnedFd, kind: Kind, buffer: usize) -> anyhow::Result<Vec<Received>> {
    let flags = match kind {
        Kind::Stream => MsgFlags::MSG_DONTWAIT,
        Kind::Datagram => MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
    };
    let mut buf = vec![0; buffer];
    let mut reads = Vec::new();
    loop {
        match socket::recv(socket.as_raw_fd(), &mut buf, flags) {
            Ok(0) if kind == Kind::Stream => return Ok(reads),
            Ok(length) => reads.push(Received {
                data: buf[..length.min(buffer)].to_vec(),
                length,
            }),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if kind == Kind::Datagram => return Ok(reads),
            Err(Errno::EAGAIN) => bail!(
                "no end-of-file on the stream after {} read(s): is a copy of the other end \
                 still open?",
                reads.len()
            ),
            Err(errno) => return Err(errno).context("recv"),
        }
    }
}

/// A new `AF_UNIX` stream socket, close-on-exec, with `extra` flags.
fn stream_socket(extra: SockFlag) -> anyhow::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | extra,
        None,
    )
    .context("socket(AF_UNIX, SOCK_STREAM)")
}

/// Removes the socket file at `path` if it is stale: a socket nobody
/// listens on. Anything else at `path` is an error, and stays.
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let meta = fs::symlink_metadata(path).with_context(|| format!("bind {shown}"))?;
    if !meta.file_type().is_socket() {
        bail!("bind {shown}: EADDRINUSE: not a socket, left alone");
    }
    let probe = stream_socket(SockFlag::SOCK_NONBLOCK)?;
    let socket_addr = UnixAddr::new(path).with_context(|| format!("{shown}: address"))?;
    match socket::connect(probe.as_raw_fd(), &socket_addr) {
        Err(Errno::ECONNREFUSED) => {
            fs::remove_file(path).with_context(|| format!("remove the stale socket {shown}"))
        }
        Ok(()) | Err(Errno::EAGAIN) => {
            bail!("bind {shown}: EADDRINUSE: another server is listening on it")
        }
        Err(errno) => Err(errno).with_context(|| format!("bind {shown}: is it in use? connect")),
    }
}

/// `recvmsg` of one byte and at most one descriptor: the byte, if any, and
/// the descriptor, if one came, already owned.
fn receive_one_byte(stream: &UnixStream) -> anyhow::Result<(Option<u8>, Option<OwnedFd>)> {
    let mut byte = [0u8; 1];
    let mut space = cmsg_space!(RawFd);
    let (length, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut byte)];
        match socket::recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("recvmsg"),
            Ok(message) => {
                if message.flags.contains(MsgFlags::MSG_CTRUNC) {
                    bail!("the control data was cut short (MSG_CTRUNC): descriptors were lost");
                }
                let mut fds = Vec::new();
                for control in message.cmsgs().context("read the control data")? {
                    if let ControlMessageOwned::ScmRights(received) = control {
                        // SAFETY: the kernel has just installed these
                        // descriptors in our table; nobody else owns them.
                        fds.extend(
                            received
                                .into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (message.bytes, fds);
            }
        }
    };
    let fd = fds.into_iter().next();
    Ok(((length == 1).then_some(byte[0]), fd))
}

/// Answers the client's frames until it leaves; counts them in `answered`.
fn answer_frames(mut stream: UnixStream, answered: &mut u64) -> anyhow::Result<()> {
    while let Some(mut request) = read_frame(&mut stream, MAX_FRAME)? {
        request.reverse();
        write_frame(&mut stream, &request).context("answer")?;
        *answered += 1;
    }
    Ok(())
}

/// Reads until `buf` is full or end-of-file; returns how many bytes it got.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Waits for `child` and fails unless it exited with status 0.
fn reap(child: Pid) -> anyhow::Result<()> {
    let status = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            result => break result.with_context(|| format!("waitpid {child}"))?,
        }
    };
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        status => bail!("the child failed: {status:?}"),
    }
}

/// A child's exit code: 0, or 1 after printing the error.
fn exit_child(result: anyhow::Result<()>) -> ! {
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("unix-sockets: child: {error:#}");
            1
        }
    };
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
