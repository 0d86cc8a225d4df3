//! Measures a running relay: connects many clients to it (1,000 by
//! default), makes them talk, and prints how many messages per second the
//! relay passed on and how much memory it used at its peak.
//!
//! ```console
//! $ cargo build --release                          # in labs/15-multiplexing
//! $ ../../target/release/multiplexing relay /tmp/relay.sock &
//! $ cargo run --release --example relay_load -- /tmp/relay.sock
//! $ kill %1
//! ```
//!
//! The clients are this one process, on one thread, with one `epoll`
//! instance: the relay's own design, from the other side. Messages go out
//! in rounds of `--window` (each from another client); a round ends when
//! every client has received every message of the round from the others,
//! so that no client falls behind far enough for the relay to drop it as
//! too slow. The relay's pid comes from `SO_PEERCRED` on a connection
//! (chapter 13), its memory from `/proc/PID/status`.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{self, sockopt};

/// Load a running relay and measure it.
#[derive(Parser, Debug)]
struct Args {
    /// The relay's socket file.
    socket: PathBuf,
    /// How many clients connect.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How many messages they send in all.
    #[arg(long, default_value_t = 5_000)]
    messages: usize,
    /// The bytes of each message.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// How many messages each round sends before waiting for delivery.
    #[arg(long, default_value_t = 50)]
    window: usize,
}

/// One client: its socket, its number, what it has received.
struct Client {
    stream: UnixStream,
    number: u32,
    incoming: Vec<u8>,
    frames: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients < 2 || args.window == 0 || args.size > 4096 {
        bail!("at least 2 clients, a window of 1 or more, messages of at most 4096 bytes");
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let connecting = Instant::now();
    let mut clients = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let stream = UnixStream::connect(&args.socket)
            .with_context(|| format!("client {}: connect {}", index + 1, args.socket.display()))?;
        stream.set_nonblocking(true)?;
        epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, index as u64))?;
        clients.push(Client {
            stream,
            number: 0,
            incoming: Vec::new(),
            frames: 0,
        });
    }
    let relay_pid = socket::getsockopt(&clients[0].stream, sockopt::PeerCredentials)?.pid();
    // Everyone's welcome: one frame each.
    pump(&epoll, &mut clients, |c| c.iter().all(|c| c.frames >= 1))?;
    let connected = connecting.elapsed();
    let before = memory(relay_pid)?;

    let payload = vec![b'x'; args.size];
    let frame = {
        let mut bytes = (args.size as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        bytes
    };
    let started = Instant::now();
    let mut sent = 0;
    let mut next = 0;
    while sent < args.messages {
        let round = args.window.min(args.messages - sent);
        for _ in 0..round {
            clients[next].stream.write_all(&frame)?;
            next = (next + 1) % clients.len();
        }
        sent += round;
        // Message m came from client m % clients: each client receives all
        // but its own, and its welcome.
        let clients_count = clients.len();
        let due = move |index: usize| -> u64 {
            let own = sent / clients_count + usize::from(index < sent % clients_count);
            1 + (sent - own) as u64
        };
        pump(&epoll, &mut clients, |c| {
            c.iter()
                .enumerate()
                .all(|(i, client)| client.frames >= due(i))
        })
        .with_context(|| format!("the round that ends with message {sent}"))?;
    }
    let elapsed = started.elapsed();
    let after = memory(relay_pid)?;
    let deliveries = (args.messages * (args.clients - 1)) as f64;
    println!(
        "relay pid {relay_pid}: {} clients connected and welcomed in {:.2} s",
        args.clients,
        connected.as_secs_f64()
    );
    println!(
        "{} messages of {} bytes in {:.2} s: {:.0} messages/s in, {:.0} copies/s out",
        args.messages,
        args.size,
        elapsed.as_secs_f64(),
        args.messages as f64 / elapsed.as_secs_f64(),
        deliveries / elapsed.as_secs_f64()
    );
    println!(
        "relay memory: VmRSS {} KiB before the messages, {} KiB after; peak (VmHWM) {} KiB; {} \
         thread(s), {} descriptors",
        before.rss, after.rss, after.peak, after.threads, after.descriptors
    );
    Ok(())
}

/// Reads from the clients that are ready, frame by frame, until `done`.
fn pump(
    epoll: &Epoll,
    clients: &mut [Client],
    done: impl Fn(&[Client]) -> bool,
) -> anyhow::Result<()> {
    let mut events = vec![EpollEvent::empty(); 256];
    let mut buffer = vec![0; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(clients) {
        if Instant::now() > deadline {
            bail!("the relay sent too little within 60 s");
        }
        let ready = epoll.wait(&mut events, EpollTimeout::from(100u16))?;
        for event in &events[..ready] {
            let client = &mut clients[event.data() as usize];
            loop {
                match client.stream.read(&mut buffer) {
                    Ok(0) => bail!(
                        "the relay closed client {} (fd {})",
                        client.number,
                        client.stream.as_raw_fd()
                    ),
                    Ok(n) => client.incoming.extend_from_slice(&buffer[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).context("read"),
                }
            }
            count_frames(client);
        }
    }
    Ok(())
}

/// Takes the whole frames out of `client.incoming`, counting them.
fn count_frames(client: &mut Client) {
    let mut start = 0;
    while let Some(header) = client.incoming[start..].first_chunk::<4>() {
        let length = u32::from_be_bytes(*header) as usize;
        let Some(payload) = client.incoming.get(start + 4..start + 4 + length) else {
            break;
        };
        if client.number == 0 {
            let text = String::from_utf8_lossy(payload.get(4..).unwrap_or_default());
            client.number = text
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
        client.frames += 1;
        start += 4 + length;
    }
    client.incoming.drain(..start);
}

/// What `/proc/PID` says about the relay.
struct Memory {
    rss: u64,
    peak: u64,
    threads: u64,
    descriptors: usize,
}

fn memory(pid: i32) -> anyhow::Result<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status (is the relay this user's?)"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    let descriptors = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    Ok(Memory {
        rss: field("VmRSS:"),
        peak: field("VmHWM:"),
        threads: field("Threads:"),
        descriptors,
    })
}
