//! A tour of UDP on the loopback interface: datagrams keep their
//! boundaries, a datagram longer than the buffer is cut (`MSG_TRUNC` says
//! by how much), and datagrams that find the receiver's buffer full are
//! dropped, without a word to the sender. Run it with
//! `cargo run --example udp_tour`.

use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, SockaddrStorage, sockopt};

fn main() -> anyhow::Result<()> {
    boundaries()?;
    truncated()?;
    dropped()?;
    Ok(())
}

// ANCHOR: boundaries
/// Three `send_to`s, three `recv`s: one datagram each, never merged.
fn boundaries() -> io::Result<()> {
    let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    for text in ["one", "", "three"] {
        sender.send_to(text.as_bytes(), receiver.local_addr()?)?;
    }
    let mut buffer = [0u8; 100];
    for _ in 0..3 {
        let (n, from) = receiver.recv_from(&mut buffer)?;
        let text = String::from_utf8_lossy(&buffer[..n]);
        println!(
            "{:<36} {text:?} from port {}",
            "recv_from, 100-byte buffer",
            from.port()
        );
    }
    Ok(())
}
// ANCHOR_END: boundaries

// ANCHOR: truncated
/// A datagram of 3000 bytes into a buffer of 100: the rest is lost.
/// Without MSG_TRUNC `recv` says 100; with it, Linux says 3000.
fn truncated() -> anyhow::Result<()> {
    let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let mut buffer = [0u8; 100];
    for (name, flags) in [
        ("no flag", MsgFlags::empty()),
        ("MSG_TRUNC", MsgFlags::MSG_TRUNC),
    ] {
        sender.send_to(&[b'x'; 3000], receiver.local_addr()?)?;
        let n = socket::recv(receiver.as_raw_fd(), &mut buffer, flags)?;
        println!("{:<36} returns {n}", format!("recv of 3000 bytes, {name}"));
    }
    Ok(())
}
// ANCHOR_END: truncated

// ANCHOR: dropped
/// 200 datagrams of 1000 bytes to a receiver that reads none of them
/// until the end, with a small receive buffer: most are dropped, and the
/// sender is never told. The kernel counts the drops, and stamps the count
/// so far on each datagram it queues, for a receiver that asks
/// (SO_RXQ_OVFL): the first datagram queued after the flood carries it.
fn dropped() -> anyhow::Result<()> {
    let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket::setsockopt(&receiver, sockopt::RcvBuf, &4096)?;
    socket::setsockopt(&receiver, sockopt::RxqOvfl, &1)?;
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    for number in 0..200u32 {
        let mut datagram = [0u8; 1000];
        datagram[..4].copy_from_slice(&number.to_be_bytes());
        sender.send_to(&datagram, receiver.local_addr()?)?; // never fails
    }
    receiver.set_nonblocking(true)?;
    let mut received = 0;
    while receive_counting_drops(&receiver)?.is_some() {
        received += 1;
    }
    sender.send_to(b"one more", receiver.local_addr()?)?;
    let drops = receive_counting_drops(&receiver)?.unwrap_or(0);
    println!(
        "{:<36} {received} received, {drops} dropped (SO_RXQ_OVFL)",
        "200 sent"
    );
    Ok(())
}

/// One datagram, if one is waiting: the drop count stamped on it.
fn receive_counting_drops(receiver: &UdpSocket) -> anyhow::Result<Option<u32>> {
    let mut buffer = [0u8; 1000];
    let mut space = nix::cmsg_space!(u32);
    let mut parts = [IoSliceMut::new(&mut buffer)];
    let message = match socket::recvmsg::<SockaddrStorage>(
        receiver.as_raw_fd(),
        &mut parts,
        Some(&mut space),
        MsgFlags::empty(),
    ) {
        Ok(message) => message,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(errno) => return Err(errno.into()),
    };
    let mut drops = 0;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::RxqOvfl(count) = control {
            drops = count;
        }
    }
    Ok(Some(drops))
}
// ANCHOR_END: dropped
