//! A tour of TCP on the loopback interface: byte order, names, a refused
//! connection, a half-close, a reset, `EPIPE`, and `TIME_WAIT` with and
//! without `SO_REUSEADDR`. Run it with `cargo run --example tcp_tour`.
//!
//! Everything happens on 127.0.0.1, on ports the kernel chooses.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage, sockopt};

fn main() -> io::Result<()> {
    byte_order();
    names()?;
    refused()?;
    half_close()?;
    reset_and_epipe()?;
    time_wait()?;
    Ok(())
}

/// What an errno-carrying I/O error is called: `ECONNRESET`.
fn errno_of(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => format!("{}", Errno::from_raw(code)),
        None => error.to_string(),
    }
}

// ANCHOR: byte_order
/// Port 8080 as it sits in memory on this machine, and on the wire.
fn byte_order() {
    let port: u16 = 8080; // 0x1f90
    println!(
        "{:<34} {:02x?} (this machine), {:02x?} (the wire: to_be_bytes, htons)",
        "port 8080 in memory",
        port.to_ne_bytes(),
        port.to_be_bytes()
    );
    let sin_port = port.to_be(); // what struct sockaddr_in holds
    println!(
        "{:<34} {} (u16::from_be gives {})",
        "sin_port read as a plain number",
        sin_port,
        u16::from_be(sin_port)
    );
}
// ANCHOR_END: byte_order

// ANCHOR: names
/// `ToSocketAddrs` calls getaddrinfo too: one entry per address.
fn names() -> io::Result<()> {
    for host in ["localhost", "127.0.0.1", "::1"] {
        let addresses: Vec<SocketAddr> = (host, 80).to_socket_addrs()?.collect();
        println!("{:<34} {addresses:?}", format!("getaddrinfo({host:?}, 80)"));
    }
    match ("no-such-host!.invalid", 80).to_socket_addrs() {
        Ok(addresses) => println!("unexpected: {:?}", addresses.collect::<Vec<_>>()),
        Err(error) => println!("{:<34} {error}", "an unknown host"),
    }
    Ok(())
}
// ANCHOR_END: names

// ANCHOR: refused
/// A port with a socket bound to it but not listening: the kernel answers
/// a connection attempt with a reset, ECONNREFUSED.
fn refused() -> io::Result<()> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let any_port = SockaddrStorage::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    socket::bind(fd.as_raw_fd(), &any_port)?;
    let bound: SockaddrStorage = socket::getsockname(fd.as_raw_fd())?;
    let port = bound.as_sockaddr_in().map(|a| a.port()).unwrap_or(0);
    match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => println!("unexpected: connected"),
        Err(error) => println!("{:<34} {}", "connect, nobody listening", errno_of(&error)),
    }
    Ok(())
}
// ANCHOR_END: refused

// ANCHOR: half_close
/// The client sends, then shuts down its writing side: the server reads
/// end-of-file, and can still answer.
fn half_close() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    client.write_all(b"question")?;
    client.shutdown(Shutdown::Write)?;
    let mut question = String::new();
    server.read_to_string(&mut question)?; // ends: end-of-file
    server.write_all(format!("answer to {question}").as_bytes())?;
    drop(server);
    let mut answer = String::new();
    client.read_to_string(&mut answer)?;
    println!("{:<34} {answer:?}", "after shutdown(SHUT_WR)");
    Ok(())
}
// ANCHOR_END: half_close

// ANCHOR: reset
/// A peer that closes with bytes it has not read sends a reset (RST), not
/// an end-of-file (FIN): the other side's next read fails with
/// ECONNRESET, and its writes after that with EPIPE.
fn reset_and_epipe() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    client.write_all(b"never read")?;
    // Make sure the bytes are there before the server closes.
    let mut peek = [0u8; 1];
    server.peek(&mut peek)?;
    drop(server); // unread bytes: the kernel sends RST
    let mut buffer = [0u8; 16];
    match client.read(&mut buffer) {
        Ok(n) => println!("unexpected: read {n} bytes"),
        Err(error) => println!("{:<34} {}", "read after the peer's reset", errno_of(&error)),
    }
    match client.write(b"anyone?") {
        Ok(n) => println!("unexpected: wrote {n} bytes"),
        Err(error) => println!("{:<34} {}", "write after the reset", errno_of(&error)),
    }
    Ok(())
}
// ANCHOR_END: reset

// ANCHOR: time_wait
/// The server closes first, so its side of the connection waits in
/// TIME_WAIT; then a new server tries the same port, without and with
/// SO_REUSEADDR.
fn time_wait() -> io::Result<()> {
    let first = listening(0, true)?;
    let port = first.local_addr()?.port();
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let (server_side, _) = first.accept()?;
    drop(server_side); // the server closes first
    let mut rest = Vec::new();
    client.read_to_end(&mut rest)?; // end-of-file; then this side closes too
    drop(client);
    drop(first);
    println!(
        "{:<34} {}",
        "states on the port (/proc/net/tcp)",
        states(port)
    );
    for reuse in [false, true] {
        let shown = match listening(port, reuse) {
            Ok(_) => "bound".to_string(),
            Err(error) => errno_of(&error),
        };
        println!(
            "{:<34} {shown}",
            format!("bind again, SO_REUSEADDR {reuse}")
        );
    }
    Ok(())
}

/// A listening socket on 127.0.0.1 and `port`, with or without
/// SO_REUSEADDR.
fn listening(port: u16, reuse: bool) -> io::Result<TcpListener> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &reuse)?;
    let address = SockaddrStorage::from(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    socket::bind(fd.as_raw_fd(), &address)?;
    socket::listen(&fd, socket::Backlog::new(16)?)?;
    Ok(TcpListener::from(fd))
}

/// The states of the TCP sockets on local port `port`: `06` is TIME_WAIT.
fn states(port: u16) -> String {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!(":{port:04X}");
    let states: Vec<&str> = table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1)?.ends_with(&wanted)).then(|| match fields[3] {
                "06" => "TIME_WAIT",
                "0A" => "LISTEN",
                "01" => "ESTABLISHED",
                _ => "other",
            })
        })
        .collect();
    states.join(", ")
}
// ANCHOR_END: time_wait
