//! The `net-sockets` command line (given: you do not need to change this
//! file).
//!
//! Clients take a HOST (a name, or a numeric IPv4 or IPv6 address) and a
//! PORT. Servers take `--host` (127.0.0.1 unless told otherwise: only this
//! machine may connect) and `--port` (0 unless told otherwise: the kernel
//! chooses a free port), and print `NAME: listening on ADDRESS:PORT`,
//! flushed, once clients may connect. They run until `--clients N`
//! connections (`--datagrams N` for UDP) have been served, or until a
//! signal ends them. Errors are reported on one line, `net-sockets: …`,
//! with exit status 1; usage mistakes, such as a port over 65535, on one
//! line too, with exit status 2.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use super::protocol::{self, MAX_BODY, MAX_DATAGRAM, Request, Response, SEQUENCE};
use super::{
    Transport, connect, exchange, listen, read_frame, resolve, serve, udp_bind, udp_exchange,
    udp_serve, write_frame,
};

/// Lab 14: network sockets.
#[derive(Parser, Debug)]
#[command(name = "net-sockets", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the addresses getaddrinfo gives for HOST, in order (TODO 1).
    Resolve {
        /// A host name, or a numeric IPv4 or IPv6 address.
        host: String,
        /// The port to put in the addresses.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Resolve for UDP (SOCK_DGRAM) instead of TCP.
        #[arg(long)]
        udp: bool,
    },
    /// Listen, and greet each client with one line, then close its
    /// connection (TODO 2).
    Greet {
        /// The address to listen on (0.0.0.0 or :: for every interface).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port to listen on (0: the kernel chooses).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Stop after this many clients (default: run until a signal).
        #[arg(long)]
        clients: Option<u64>,
    },
    /// Connect, send standard input (then a half-close), and copy what the
    /// server sends to standard output, as `nc` does (TODO 2).
    Connect {
        /// The server's host name or address.
        host: String,
        /// The server's port.
        port: u16,
    },
    /// Send each MESSAGE as an ECHO request, and wait for its reply before
    /// sending the next (TODOs 2 and 3).
    Ask {
        /// The server's host name or address.
        host: String,
        /// The server's port.
        port: u16,
        /// The messages, one request each (may be empty strings).
        messages: Vec<String>,
    },
    /// Answer requests over TCP, one thread per client (TODOs 2, 3 and 5).
    Serve {
        /// The address to listen on (0.0.0.0 or :: for every interface).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port to listen on (0: the kernel chooses).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Stop after this many clients (default: run until a signal).
        #[arg(long)]
        clients: Option<u64>,
        /// Drop a client that sends nothing (or reads nothing) for this long.
        #[arg(long, default_value_t = 10_000,
              value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
        idle_timeout_ms: u64,
    },
    /// Send each MESSAGE as an ECHO request and print each reply (TODOs 2,
    /// 3 and 4).
    Echo {
        /// The server's host name or address.
        host: String,
        /// The server's port.
        port: u16,
        /// The messages, one request each (may be empty strings).
        messages: Vec<String>,
    },
    /// Send one SUM request with the NUMBERs and print the reply (TODOs 2,
    /// 3 and 4).
    #[command(allow_negative_numbers = true)]
    Sum {
        /// The server's host name or address.
        host: String,
        /// The server's port.
        port: u16,
        /// The numbers to add (64-bit signed integers).
        numbers: Vec<i64>,
    },
    /// Send FILE to the server in ECHO requests, all at once, and check
    /// what comes back (TODOs 2, 3 and 4).
    Copy {
        /// The server's host name or address.
        host: String,
        /// The server's port.
        port: u16,
        /// The file to send (at most 256 MiB).
        file: PathBuf,
    },
    /// Answer requests over UDP, one datagram each (TODO 6).
    UdpServe {
        /// The address to bind (0.0.0.0 or :: for every interface).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port to bind (0: the kernel chooses).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Stop after this many datagrams (default: run until a signal).
        #[arg(long)]
        datagrams: Option<u64>,
    },
    /// Send each MESSAGE as an ECHO request over UDP, with retransmissions,
    /// and print each reply (TODO 6).
    UdpEcho {
        /// The server's host name or address.
        host: String,
        /// The server's port.
        port: u16,
        /// The messages, one datagram each (may be empty strings).
        messages: Vec<String>,
        /// How long to wait for a reply before sending the request again.
        #[arg(long, default_value_t = 200,
              value_parser = clap::value_parser!(u64).range(1..=60_000))]
        retry_ms: u64,
        /// How many times to send a request before giving up.
        #[arg(long, default_value_t = 5,
              value_parser = clap::value_parser!(u32).range(1..=100))]
        attempts: u32,
    },
}

/// The most `copy` sends: its replies are kept in memory.
const COPY_MAX: u64 = 256 << 20;

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => return usage_error(&error),
        Err(help_or_version) => help_or_version.exit(),
    };
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("net-sockets: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints `line` and a line break on standard error in one `write(2)`.
/// `eprintln!` writes a line in pieces, so the error lines of processes
/// that share a pipe for their standard error could mix; a pipe keeps each
/// write of at most `PIPE_BUF` bytes whole (chapter 02).
fn print_error(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

/// A usage mistake on one line, `net-sockets: invalid value '70000' for
/// '<PORT>': …`, with exit status 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    let text = error.render().to_string();
    let first = text.lines().next().unwrap_or("invalid command line");
    eprintln!(
        "net-sockets: {} (try --help)",
        first.trim_start_matches("error: ")
    );
    ExitCode::from(2)
}

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Resolve { host, port, udp } => {
            let transport = if udp { Transport::Udp } else { Transport::Tcp };
            for address in resolve(&host, port, transport)? {
                let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
                println!("{address} ({family})");
            }
            Ok(())
        }
        Command::Greet {
            host,
            port,
            clients,
        } => greet(&host, port, clients),
        Command::Connect { host, port } => talk(&host, port),
        Command::Ask {
            host,
            port,
            messages,
        } => ask(&host, port, &messages),
        Command::Serve {
            host,
            port,
            clients,
            idle_timeout_ms,
        } => {
            let listener = listen(&host, port)?;
            let address = listener.local_addr().context("getsockname")?;
            announce("serve", address)?;
            let tally = serve(&listener, clients, Duration::from_millis(idle_timeout_ms))?;
            println!("serve: {tally}");
            Ok(())
        }
        Command::Echo {
            host,
            port,
            messages,
        } => {
            let requests: Vec<Request> = messages
                .into_iter()
                .map(|message| Request::Echo(message.into_bytes()))
                .collect();
            let replies = converse(&host, port, &requests)?;
            for (number, (request, reply)) in requests.iter().zip(&replies).enumerate() {
                println!(
                    "reply {}: {}",
                    number + 1,
                    protocol::describe_response(request, reply)
                );
            }
            Ok(())
        }
        Command::Sum {
            host,
            port,
            numbers,
        } => {
            let count = numbers.len();
            let request = Request::Sum(numbers);
            let replies = converse(&host, port, std::slice::from_ref(&request))?;
            if let Some(reply) = replies.first() {
                let text = protocol::describe_response(&request, reply);
                println!("sum of {count} number(s): {text}");
            }
            Ok(())
        }
        Command::Copy { host, port, file } => copy(&host, port, &file),
        Command::UdpServe {
            host,
            port,
            datagrams,
        } => {
            let socket = udp_bind(&host, port)?;
            let address = socket.local_addr().context("getsockname")?;
            announce("udp-serve", address)?;
            let tally = udp_serve(&socket, datagrams)?;
            println!("udp-serve: {tally}");
            Ok(())
        }
        Command::UdpEcho {
            host,
            port,
            messages,
            retry_ms,
            attempts,
        } => udp_echo(&host, port, &messages, retry_ms, attempts),
    }
}

// ANCHOR: cli_announce
/// Says `NAME: listening on ADDRESS:PORT` and flushes it: a program that
/// waits for this line (a test, a script) learns the port the kernel
/// chose, and that clients may connect now.
fn announce(name: &str, address: std::net::SocketAddr) -> anyhow::Result<()> {
    println!("{name}: listening on {address}");
    io::stdout().flush().context("write to standard output")
}
// ANCHOR_END: cli_announce

// ANCHOR: cli_greet
/// `greet`: one line to each client, then close its connection: the
/// server closes first, so its side of each connection waits in
/// `TIME_WAIT` afterwards.
fn greet(host: &str, port: u16, clients: Option<u64>) -> anyhow::Result<()> {
    let listener = listen(host, port)?;
    announce("greet", listener.local_addr().context("getsockname")?)?;
    let mut greeted = 0;
    while clients.is_none_or(|max| greeted < max) {
        let (mut client, peer) = listener.accept().context("accept")?;
        greeted += 1;
        if let Err(error) = writeln!(client, "hello, client {greeted}, from {peer}") {
            eprintln!("greet: client {greeted}: {error}");
        }
    }
    println!("greet: greeted {greeted} client(s)");
    Ok(())
}

/// `connect`: standard input to the server, then a half-close (so that it
/// sees end-of-file), and the server's bytes to standard output, at once.
fn talk(host: &str, port: u16) -> anyhow::Result<()> {
    let stream = connect(host, port)?;
    let received = std::thread::scope(|scope| {
        let sender = scope.spawn(|| -> io::Result<()> {
            io::copy(&mut io::stdin().lock(), &mut &stream)?;
            stream.shutdown(Shutdown::Write)
        });
        let received = io::copy(&mut &stream, &mut io::stdout().lock());
        (received, sender.join())
    });
    match received {
        (Err(error), _) => Err(error).context("receive"),
        (Ok(_), Ok(Ok(()))) => Ok(()),
        // The server closed first: what it did not read does not matter.
        (Ok(_), Ok(Err(error))) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        (Ok(_), Ok(Err(error))) => Err(error).context("send standard input"),
        (Ok(_), Err(_)) => bail!("the thread sending standard input panicked"),
    }
}
// ANCHOR_END: cli_greet

// ANCHOR: cli_ask
/// `ask`: one request, then its reply, then the next: a round trip each.
fn ask(host: &str, port: u16, messages: &[String]) -> anyhow::Result<()> {
    let mut stream = connect(host, port)?;
    for (number, message) in messages.iter().enumerate() {
        let number = number + 1;
        let request = Request::Echo(message.as_bytes().to_vec());
        write_frame(&mut stream, &request.encode())
            .with_context(|| format!("send request {number}"))?;
        let body = read_frame(&mut stream, MAX_BODY)
            .with_context(|| format!("reply {number}"))?
            .with_context(|| format!("reply {number}: the server closed the connection"))?;
        let reply =
            Response::decode(&body).map_err(|why| anyhow::anyhow!("reply {number}: {why}"))?;
        println!(
            "reply {number}: {}",
            protocol::describe_response(&request, &reply)
        );
    }
    Ok(())
}
// ANCHOR_END: cli_ask

// ANCHOR: cli_converse
/// Connects, sends `requests`, and decodes each reply.
fn converse(host: &str, port: u16, requests: &[Request]) -> anyhow::Result<Vec<Response>> {
    let stream = connect(host, port)?;
    let bodies: Vec<Vec<u8>> = requests.iter().map(Request::encode).collect();
    let replies = exchange(stream, &bodies)?;
    replies
        .iter()
        .enumerate()
        .map(|(number, body)| {
            Response::decode(body).map_err(|why| anyhow::anyhow!("reply {}: {why}", number + 1))
        })
        .collect()
}
// ANCHOR_END: cli_converse

// ANCHOR: cli_copy
/// `copy`: the file in ECHO requests of up to 65535 bytes, all sent at
/// once; every reply must be OK and carry its request's bytes.
fn copy(host: &str, port: u16, path: &Path) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut contents = Vec::new();
    file.take(COPY_MAX + 1)
        .read_to_end(&mut contents)
        .with_context(|| format!("read {}", path.display()))?;
    if contents.len() as u64 > COPY_MAX {
        bail!("{}: over the limit of {COPY_MAX} bytes", path.display());
    }
    let requests: Vec<Vec<u8>> = contents
        .chunks(MAX_BODY - 1)
        .map(|chunk| Request::Echo(chunk.to_vec()).encode())
        .collect();
    let stream = connect(host, port)?;
    let replies = exchange(stream, &requests)?;
    let mut back = Vec::with_capacity(contents.len());
    for (number, reply) in replies.iter().enumerate() {
        match Response::decode(reply) {
            Ok(Response::Ok(bytes)) => back.extend_from_slice(&bytes),
            Ok(Response::Error(reason)) => bail!("reply {}: ERROR {reason}", number + 1),
            Err(why) => bail!("reply {}: {why}", number + 1),
        }
    }
    println!(
        "copy: sent {} bytes in {} request(s); got back {} bytes, FNV-1a {:#018x}",
        contents.len(),
        requests.len(),
        back.len(),
        fnv1a(&back)
    );
    if back != contents {
        bail!("what came back differs from the file");
    }
    Ok(())
}

/// The 64-bit FNV-1a hash of `bytes`: start from 0xcbf29ce484222325; for
/// each byte, xor it in, then multiply by 0x100000001b3, wrapping.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
// ANCHOR_END: cli_copy

// ANCHOR: cli_udp_echo
/// `udp-echo`: one datagram per message, each reply printed, then what it
/// took.
fn udp_echo(
    host: &str,
    port: u16,
    messages: &[String],
    retry_ms: u64,
    attempts: u32,
) -> anyhow::Result<()> {
    let limit = MAX_DATAGRAM - SEQUENCE - 1;
    let requests: Vec<Request> = messages
        .iter()
        .map(|message| Request::Echo(message.as_bytes().to_vec()))
        .collect();
    if let Some(long) = messages.iter().find(|message| message.len() > limit) {
        bail!(
            "a message of {} bytes does not fit in a datagram (at most {limit})",
            long.len()
        );
    }
    let bodies: Vec<Vec<u8>> = requests.iter().map(Request::encode).collect();
    let retry = Duration::from_millis(retry_ms);
    let outcome = udp_exchange(host, port, &bodies, retry, attempts)?;
    for (number, (request, body)) in requests.iter().zip(&outcome.replies).enumerate() {
        let reply =
            Response::decode(body).map_err(|why| anyhow::anyhow!("reply {}: {why}", number + 1))?;
        println!(
            "reply {}: {}",
            number + 1,
            protocol::describe_response(request, &reply)
        );
    }
    println!(
        "udp-echo: {} request(s), {} datagram(s) sent, {} ignored",
        requests.len(),
        outcome.sent,
        outcome.ignored
    );
    Ok(())
}
// ANCHOR_END: cli_udp_echo
