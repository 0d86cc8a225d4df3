//! The `unix-sockets` command line (given: you do not need to change this
//! file).
//!
//! Every subcommand that names a socket takes an ADDRESS: a path
//! (`srv.sock`, `/tmp/app.sock`) or `@name` for a name in Linux's abstract
//! namespace. The servers (`greet`, `share`, `serve`) print one line,
//! `NAME: listening on ADDRESS`, once clients may connect; they run until
//! `--clients N` connections have been served, or until SIGINT, SIGTERM or
//! SIGHUP, and remove their socket file either way. Errors are reported on
//! one line, `unix-sockets: …`, with exit status 1; usage mistakes exit
//! with status 2.

use std::fs::File;
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use nix::unistd::geteuid;

use super::address::Address;
use super::report::whose;
use super::stop::StopSignals;
use super::{
    Kind, Listener, MAX_FRAME, Peer, REFUSED, Received, connect, listen, pair, peer_credentials,
    read_frame, receive_fd, send_fd, serve, write_frame,
};

/// At most this many bytes in all for `pair`: the child sends everything
/// before the parent reads, so it must fit in the socket's buffer.
const PAIR_MAX_BYTES: usize = 64 * 1024;

/// At most this many messages for `pair`.
const PAIR_MAX_MESSAGES: usize = 100;

/// Lab 13: Unix domain sockets.
#[derive(Parser, Debug)]
#[command(name = "unix-sockets", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The two kinds of socket `pair` can make.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum KindArg {
    /// SOCK_STREAM: a byte stream.
    Stream,
    /// SOCK_DGRAM: datagrams.
    Datagram,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A child sends each MESSAGE with one send() over a socket pair; the
    /// parent then reads what arrived (TODO 1).
    Pair {
        /// SOCK_STREAM or SOCK_DGRAM.
        #[arg(value_enum)]
        kind: KindArg,
        /// The messages, in order (may be empty strings).
        messages: Vec<String>,
        /// The size of the parent's read buffer, in bytes.
        #[arg(long, default_value_t = 65536,
              value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
        buffer: u32,
    },
    /// Listen at ADDRESS and greet each client with one line (TODO 2).
    Greet {
        /// A socket path, or @name for an abstract name.
        address: Address,
        /// Permission bits of the socket file, in octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
        /// Stop after this many clients (default: run until a signal).
        #[arg(long)]
        clients: Option<u64>,
    },
    /// Connect to ADDRESS, send standard input, then copy what the server
    /// sends to standard output, as `nc -U` does (TODO 2).
    Connect {
        /// A socket path, or @name for an abstract name.
        address: Address,
    },
    /// Send each MESSAGE as one frame to the server at ADDRESS and print
    /// the reply frames (TODO 3).
    Send {
        /// A socket path, or @name for an abstract name.
        address: Address,
        /// The messages, one frame each.
        #[arg(required = true)]
        messages: Vec<String>,
    },
    /// Open FILE, then hand its descriptor to each client of this user
    /// that connects to ADDRESS (TODO 4).
    Share {
        /// A socket path, or @name for an abstract name.
        address: Address,
        /// The file to share (opened for reading).
        file: PathBuf,
        /// Stop after this many clients (default: run until a signal).
        #[arg(long)]
        clients: Option<u64>,
    },
    /// Receive a descriptor from the `share` server at ADDRESS and read
    /// the file through it (TODO 4).
    Fetch {
        /// A socket path, or @name for an abstract name.
        address: Address,
    },
    /// Answer each frame with its bytes in reverse order, for many clients
    /// at once, all of this user (TODOs 3 to 5).
    Serve {
        /// A socket path, or @name for an abstract name.
        address: Address,
        /// Permission bits of the socket file, in octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
        /// Stop after this many clients (default: run until a signal).
        #[arg(long)]
        clients: Option<u64>,
    },
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("unix-sockets: {error:#}"));
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

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Pair {
            kind,
            messages,
            buffer,
        } => run_pair(kind, &messages, buffer as usize),
        Command::Greet {
            address,
            mode,
            clients,
        } => greet(&address, mode, clients),
        Command::Connect { address } => talk(&address),
        Command::Send { address, messages } => send(&address, &messages),
        Command::Share {
            address,
            file,
            clients,
        } => share(&address, &file, clients),
        Command::Fetch { address } => fetch(&address),
        Command::Serve {
            address,
            mode,
            clients,
        } => {
            let listener = start_server("serve", &address, mode)?;
            let tally = serve(&listener, clients)?;
            println!("serve: {tally}");
            Ok(())
        }
    }
}

// ANCHOR: cli_pair
/// `pair`: the child's sends, then each of the parent's reads.
fn run_pair(kind: KindArg, messages: &[String], buffer: usize) -> anyhow::Result<()> {
    let total: usize = messages.iter().map(String::len).sum();
    if total > PAIR_MAX_BYTES || messages.len() > PAIR_MAX_MESSAGES {
        bail!("at most {PAIR_MAX_MESSAGES} messages and {PAIR_MAX_BYTES} bytes in all");
    }
    let kind = match kind {
        KindArg::Stream => Kind::Stream,
        KindArg::Datagram => Kind::Datagram,
    };
    let sizes: Vec<String> = messages.iter().map(|m| m.len().to_string()).collect();
    println!(
        "the child sends {} message(s), one send() each: {} bytes",
        messages.len(),
        list(&sizes)
    );
    let reads = pair(kind, messages, buffer)?;
    for (number, read) in reads.iter().enumerate() {
        println!("read {}: {}", number + 1, describe(read));
    }
    match kind {
        Kind::Stream => println!("end of stream after {} read(s)", reads.len()),
        Kind::Datagram => println!("no datagram left after {} read(s)", reads.len()),
    }
    Ok(())
}

/// `11 bytes "helloworld!"`, or `4 of 5 bytes "hell" (MSG_TRUNC: …)`.
fn describe(read: &Received) -> String {
    let text = format!("{:?}", String::from_utf8_lossy(&read.data));
    if read.length > read.data.len() {
        format!(
            "{} of {} bytes {text} (MSG_TRUNC: the rest of the datagram is lost)",
            read.data.len(),
            read.length
        )
    } else {
        format!("{} bytes {text}", read.length)
    }
}

/// `5`, `5 and 1`, `5, 0, 5 and 1`.
fn list(items: &[String]) -> String {
    match items {
        [] => "no".to_string(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
// ANCHOR_END: cli_pair

// ANCHOR: cli_start_server
/// Blocks the stop signals, listens at `address`, arranges for the socket
/// file to be removed on SIGINT, SIGTERM and SIGHUP, and says `NAME:
/// listening on ADDRESS` (flushed), in that order.
fn start_server(name: &str, address: &Address, mode: u32) -> anyhow::Result<Listener> {
    let stop = StopSignals::block()?;
    let listener = listen(address, mode)?;
    let file = listener.file.as_ref().map(|file| file.path().to_path_buf());
    stop.remove_on_stop(file)?;
    if listener.removed_stale {
        println!("{name}: removed a stale socket file: nobody was listening on it");
    }
    println!("{name}: listening on {address}");
    io::stdout().flush().context("write to standard output")?;
    Ok(listener)
}
// ANCHOR_END: cli_start_server

// ANCHOR: cli_greet
/// `greet`: one line to each client, then close its connection.
fn greet(address: &Address, mode: u32, clients: Option<u64>) -> anyhow::Result<()> {
    let listener = start_server("greet", address, mode)?;
    let mut greeted = 0;
    while clients.is_none_or(|max| greeted < max) {
        let (mut client, _) = listener.socket.accept().context("accept")?;
        greeted += 1;
        if let Err(error) = writeln!(client, "hello, client {greeted}") {
            eprintln!("greet: client {greeted}: {error}");
        }
    }
    println!("greet: greeted {greeted} client(s)");
    Ok(())
}

/// `connect`: standard input to the server (then a half-close, so that it
/// sees end-of-file), and the server's bytes to standard output, at once.
fn talk(address: &Address) -> anyhow::Result<()> {
    let stream = connect(address)?;
    let mut to_server = stream.try_clone().context("dup the socket")?;
    let sender = thread::spawn(move || -> io::Result<()> {
        io::copy(&mut io::stdin().lock(), &mut to_server)?;
        to_server.shutdown(Shutdown::Write)
    });
    io::copy(&mut &stream, &mut io::stdout().lock()).context("receive")?;
    match sender.join() {
        Ok(Ok(())) => Ok(()),
        // The server closed first: what it did not read does not matter.
        Ok(Err(error)) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Ok(Err(error)) => Err(error).context("send standard input"),
        Err(_) => bail!("the thread sending standard input panicked"),
    }
}
// ANCHOR_END: cli_greet

// ANCHOR: cli_send
/// `send`: one frame per message, each answered before the next is sent.
fn send(address: &Address, messages: &[String]) -> anyhow::Result<()> {
    let mut stream = connect(address)?;
    for (number, message) in messages.iter().enumerate() {
        let number = number + 1;
        write_frame(&mut stream, message.as_bytes())
            .with_context(|| format!("send message {number}"))?;
        let reply = read_frame(&mut stream, MAX_FRAME)
            .with_context(|| format!("reply {number}"))?
            .with_context(|| format!("reply {number}: the server closed the connection"))?;
        println!(
            "reply {number}: {} bytes {:?}",
            reply.len(),
            String::from_utf8_lossy(&reply)
        );
    }
    Ok(())
}
// ANCHOR_END: cli_send

// ANCHOR: cli_share
/// `share`: the file is opened first (a missing file binds nothing), then
/// each client of this user gets its descriptor, and others a refusal.
fn share(address: &Address, path: &Path, clients: Option<u64>) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let listener = start_server("share", address, 0o600)?;
    let me = geteuid().as_raw();
    let mut served = 0;
    while clients.is_none_or(|max| served < max) {
        let (client, _) = listener.socket.accept().context("accept")?;
        served += 1;
        match share_with(&client, file.as_fd(), me) {
            Ok(peer) => println!(
                "share: client {served} (pid {}, {}): sent the descriptor",
                peer.pid,
                whose(peer.uid)
            ),
            Err(error) => eprintln!("share: client {served}: {error:#}"),
        }
    }
    println!("share: done after {served} client(s)");
    Ok(())
}

/// Sends `file` to `client` if it runs as `me`; refuses it otherwise.
fn share_with(
    mut client: &UnixStream,
    file: std::os::fd::BorrowedFd<'_>,
    me: u32,
) -> anyhow::Result<Peer> {
    let peer = peer_credentials(client)?;
    if peer.uid != me {
        let reason = format!(
            "uid {} may not use this server: it serves uid {me} only",
            peer.uid
        );
        let _ = writeln!(client, "{}{reason}", REFUSED as char);
        bail!("(pid {}) refused: {reason}", peer.pid);
    }
    send_fd(client, file)?;
    Ok(peer)
}

/// `fetch`: who the server is, the descriptor it sends, what it refers to,
/// whether this process could have opened that itself, and the file's
/// contents read through the descriptor.
fn fetch(address: &Address) -> anyhow::Result<()> {
    let mut stream = connect(address)?;
    let server = peer_credentials(&stream)?;
    println!(
        "fetch: the server is pid {}, {}",
        server.pid,
        whose(server.uid)
    );
    let fd = receive_fd(&mut stream)?;
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .context("readlink /proc/self/fd")?;
    println!("fetch: received a descriptor for {}", target.display());
    match File::open(&target) {
        Ok(_) => println!("fetch: this process may open it by name, too"),
        Err(error) => println!("fetch: this process may not open it by name: {error}"),
    }
    let (length, checksum) = fnv1a(fd)?;
    println!("fetch: read {length} bytes through the descriptor, FNV-1a {checksum:#018x}");
    Ok(())
}
// ANCHOR_END: cli_share

// ANCHOR: fnv1a
/// The length and the 64-bit FNV-1a hash of a file's bytes, read with
/// `pread` from offset 0: the descriptor shares its offset with every copy
/// of it, the server's and other clients' included, so this reader leaves
/// the offset alone. (FNV-1a: start from 0xcbf29ce484222325; for each
/// byte, xor it in, then multiply by 0x100000001b3, wrapping.)
fn fnv1a(fd: OwnedFd) -> anyhow::Result<(u64, u64)> {
    let file = File::from(fd);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut offset = 0u64;
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match file.read_at(&mut chunk, offset) {
            Ok(0) => return Ok((offset, hash)),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).context("read through the descriptor"),
        };
        for &byte in &chunk[..n] {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        offset += n as u64;
    }
}
// ANCHOR_END: fnv1a

/// Parses permission bits written in octal, such as `600` or `0666`.
fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mode between 000 and 777"))
}
