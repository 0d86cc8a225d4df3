//! Stream and datagram socket pairs side by side, in one process: the same
//! three sends come back as one read from a stream and as three from
//! datagrams; a datagram longer than the buffer is cut (`MSG_TRUNC`); an
//! empty datagram is a message; both ends of a pair read and write; and a
//! non-blocking write takes only what fits.
//!
//! Usage (inside `labs/13-unix-sockets`): `cargo run --example boundaries`

use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};

fn main() -> anyhow::Result<()> {
    stream()?;
    datagrams()?;
    partial_write()
}

/// A connected pair of `ty`, close-on-exec.
fn pair(ty: SockType, flags: SockFlag) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        AddressFamily::Unix,
        ty,
        None,
        SockFlag::SOCK_CLOEXEC | flags,
    )
    .context("socketpair")
}

fn send(fd: &OwnedFd, bytes: &[u8]) -> anyhow::Result<usize> {
    socket::send(fd.as_raw_fd(), bytes, MsgFlags::empty()).context("send")
}

fn stream() -> anyhow::Result<()> {
    // ANCHOR: stream
    let (left, right) = pair(SockType::Stream, SockFlag::empty())?;
    for message in [&b"one"[..], b"two", b"three"] {
        send(&left, message)?;
    }
    let mut buf = [0u8; 64];
    let n = socket::recv(right.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    show("stream: 3 sends, 1 recv gets", text(&buf[..n]));
    // Full duplex: the other end writes back on the same socket.
    send(&right, b"and back")?;
    let n = socket::recv(left.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    show("stream: the other way", text(&buf[..n]));
    drop(right);
    let n = socket::recv(left.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    show(
        "stream: after the peer closed",
        format!("recv returns {n}: end-of-file"),
    );
    // ANCHOR_END: stream
    Ok(())
}

fn datagrams() -> anyhow::Result<()> {
    // ANCHOR: datagram
    let (left, right) = pair(SockType::Datagram, SockFlag::empty())?;
    for message in [&b"one"[..], b"", b"three"] {
        send(&left, message)?;
    }
    let mut buf = [0u8; 4];
    // MSG_TRUNC: return the datagram's real length, even if it was cut.
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
    loop {
        match socket::recv(right.as_raw_fd(), &mut buf, flags) {
            Ok(n) if n > buf.len() => show(
                "datagram: recv, 4-byte buffer",
                format!("{} of {n} bytes (the rest is lost)", text(&buf)),
            ),
            Ok(n) => show("datagram: recv, 4-byte buffer", text(&buf[..n])),
            Err(Errno::EAGAIN) => {
                show("datagram: then", "EAGAIN: the queue is empty");
                break;
            }
            Err(errno) => return Err(errno).context("recv"),
        }
    }
    // ANCHOR_END: datagram
    Ok(())
}

fn partial_write() -> anyhow::Result<()> {
    // ANCHOR: partial_write
    let (left, _right) = pair(SockType::Stream, SockFlag::SOCK_NONBLOCK)?;
    let mebibyte = vec![b'x'; 1 << 20];
    // Nobody reads: the kernel takes what fits in the buffers, and says so.
    let taken = send(&left, &mebibyte)?;
    show("non-blocking send of 1 MiB", format!("took {taken} bytes"));
    let again = socket::send(left.as_raw_fd(), &mebibyte[taken..], MsgFlags::empty());
    show("and the next send", format!("{again:?}"));
    // ANCHOR_END: partial_write
    Ok(())
}

/// Bytes as a quoted string.
fn text(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn show(label: &str, value: impl std::fmt::Display) {
    println!("{label:<34} {value}");
}
