//! The `multiplexing` command line (given: you do not need to change this
//! file).
//!
//! `watch` waits for several FIFOs with `poll` (TODO 1); `counter` and
//! `timer` show what an eventfd and a timerfd hold (TODO 2); `chat` is a
//! client of the relay (TODOs 3 and 4); `relay` is the server: one thread,
//! one `epoll`, every client (TODOs 3 to 6). Servers print a line once they
//! accept work, flushed. Errors are reported on one line, `multiplexing:
//! …`, with exit status 1; usage mistakes exit with status 2.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};

use super::client::chat;
use super::limits::{open_descriptors, raise_descriptor_limit};
use super::listener::listen;
use super::queue::AnnounceQueue;
use super::wire::{HEADER, MAX_RELAYED};
use super::{CounterOp, CounterResult, Relay, Seen, Settings, counter, open_fifo, timer, watch};

/// The largest value an eventfd's counter may hold.
const COUNTER_MAX: u64 = 0xffff_ffff_ffff_fffe;

/// The smallest `--max-queue`: room for one relayed frame of the longest
/// message.
const MIN_QUEUE: usize = HEADER + MAX_RELAYED;

/// Below this hard limit on descriptors, the relay says how few clients it
/// can take.
const FEW_DESCRIPTORS: u64 = 1100;

/// Lab 15: multiplexing.
#[derive(Parser, Debug)]
#[command(name = "multiplexing", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch FIFOs with poll: report the bytes each one brings, and its
    /// end, as they happen, until every writer is gone (TODO 1).
    Watch {
        /// The FIFOs (made with mkfifo), opened for reading.
        #[arg(required = true)]
        fifos: Vec<PathBuf>,
    },
    /// Apply OPERATIONS to an eventfd's counter: +N writes N, `take`
    /// reads (TODO 2).
    Counter {
        /// The counter's first value.
        #[arg(long, default_value_t = 0)]
        initial: u32,
        /// EFD_SEMAPHORE: each read takes 1.
        #[arg(long)]
        semaphore: bool,
        /// +N or take, in order.
        #[arg(required = true, allow_hyphen_values = true)]
        operations: Vec<Operation>,
    },
    /// Arm a timerfd, sleep without reading it, then read it (TODO 2).
    Timer {
        /// Milliseconds to the first expiry (default: --every-ms).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        after_ms: Option<u64>,
        /// Milliseconds between expiries (default: none, a one-shot timer).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        every_ms: Option<u64>,
        /// Milliseconds to sleep before reading.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        sleep_ms: u64,
        /// How many reads, one right after the other.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
        reads: u64,
    },
    /// Talk to the relay at SOCKET: each line of standard input is a
    /// message; every frame that comes is printed (TODOs 3 and 4).
    Chat {
        /// The relay's socket file.
        socket: PathBuf,
        /// Stop only once this many frames have come, the welcome included.
        #[arg(long)]
        expect: Option<u64>,
    },
    /// Serve as the relay at SOCKET until SIGINT or SIGTERM: every message
    /// a client sends goes to every other client (TODOs 3 to 6).
    Relay {
        /// The socket file to create (mode 0600).
        socket: PathBuf,
        /// The most bytes that may wait for one client before it is
        /// dropped as too slow.
        #[arg(long, default_value_t = 256 * 1024)]
        max_queue: usize,
        /// Close a client that sends no whole message for this long.
        #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
        idle_ms: u64,
        /// Also pass on every message that arrives on this POSIX message
        /// queue, which the relay creates (mode 0600) and removes.
        #[arg(long)]
        queue: Option<String>,
    },
}

/// One operation of `counter`, as the command line writes it.
#[derive(Debug, Clone, Copy)]
struct Operation(CounterOp);

impl FromStr for Operation {
    type Err = String;

    fn from_str(text: &str) -> Result<Operation, String> {
        if text == "take" {
            return Ok(Operation(CounterOp::Take));
        }
        text.strip_prefix('+')
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| Operation(CounterOp::Add(n)))
            .ok_or_else(|| format!("{text:?}: an operation is +N (N from 0 to 2^64 - 1) or take"))
    }
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("multiplexing: {error:#}"));
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
        Command::Watch { fifos } => run_watch(&fifos),
        Command::Counter {
            initial,
            semaphore,
            operations,
        } => run_counter(initial, semaphore, &operations),
        Command::Timer {
            after_ms,
            every_ms,
            sleep_ms,
            reads,
        } => run_timer(after_ms, every_ms, sleep_ms, reads),
        Command::Chat { socket, expect } => run_chat(&socket, expect),
        Command::Relay {
            socket,
            max_queue,
            idle_ms,
            queue,
        } => run_relay(&socket, max_queue, idle_ms, queue.as_deref()),
    }
}

// ANCHOR: cli_watch
/// `watch`: open every FIFO first (a bad path fails before anything is
/// watched), say so, then one line per event, flushed.
fn run_watch(paths: &[PathBuf]) -> anyhow::Result<()> {
    let fifos = paths
        .iter()
        .map(|path| open_fifo(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    say(&format!("watch: watching {} FIFO(s)", fifos.len()))?;
    let mut total = 0;
    let mut failed = None;
    watch(&fifos, &mut |index, seen| {
        let name = paths[index].display();
        let line = match seen {
            Seen::Data(bytes) => {
                total += bytes;
                format!("{name}: {bytes} bytes")
            }
            Seen::Closed => format!("{name}: closed"),
        };
        if let Err(error) = say(&line) {
            failed.get_or_insert(error);
        }
    })?;
    if let Some(error) = failed {
        return Err(error);
    }
    say(&format!(
        "watch: {total} bytes in all; every writer of the {} FIFO(s) is gone",
        fifos.len()
    ))
}
// ANCHOR_END: cli_watch

// ANCHOR: cli_counter
/// `counter`: each operation and what it did.
fn run_counter(initial: u32, semaphore: bool, operations: &[Operation]) -> anyhow::Result<()> {
    let mode = if semaphore {
        "semaphore mode"
    } else {
        "counter mode"
    };
    println!("eventfd: starts at {initial}, {mode}");
    let ops: Vec<CounterOp> = operations.iter().map(|op| op.0).collect();
    let results = counter(initial, semaphore, &ops)?;
    if results.len() != ops.len() {
        bail!("{} operations, but {} results", ops.len(), results.len());
    }
    for (op, result) in ops.iter().zip(&results) {
        let what = match op {
            CounterOp::Add(n) => format!("+{n}"),
            CounterOp::Take => "take".to_string(),
        };
        let outcome = match (op, result) {
            (_, CounterResult::Added) => "added".to_string(),
            (_, CounterResult::Took(n)) => format!("took {n}"),
            (CounterOp::Take, CounterResult::WouldBlock) => "EAGAIN (the counter is 0)".to_string(),
            (CounterOp::Add(_), CounterResult::WouldBlock) => {
                format!("EAGAIN (the counter would pass {COUNTER_MAX:#x})")
            }
            (_, CounterResult::Invalid) => "EINVAL (2^64 - 1 may not be written)".to_string(),
        };
        println!("{what}: {outcome}");
    }
    Ok(())
}

/// `timer`: how it was armed, then each read.
fn run_timer(
    after_ms: Option<u64>,
    every_ms: Option<u64>,
    sleep_ms: u64,
    reads: u64,
) -> anyhow::Result<()> {
    let Some(first_ms) = after_ms.or(every_ms) else {
        bail!("give --after-ms, --every-ms, or both");
    };
    match every_ms {
        Some(every) => println!("timerfd: first expiry in {first_ms} ms, then every {every} ms"),
        None => println!("timerfd: one expiry, in {first_ms} ms"),
    }
    println!("timerfd: sleeping {sleep_ms} ms without reading it");
    let results = timer(
        Duration::from_millis(first_ms),
        every_ms.map(Duration::from_millis),
        Duration::from_millis(sleep_ms),
        reads as usize,
    )?;
    for (number, result) in results.iter().enumerate() {
        match result {
            Some(count) => println!("read {}: {count} expiration(s)", number + 1),
            None => println!(
                "read {}: EAGAIN (no expiration since the last read)",
                number + 1
            ),
        }
    }
    Ok(())
}
// ANCHOR_END: cli_counter

/// `chat`: the frames as they come, then a summary.
fn run_chat(socket: &std::path::Path, expect: Option<u64>) -> anyhow::Result<()> {
    let end = chat(socket, expect)?;
    if end.relay_closed {
        match expect {
            Some(wanted) if end.received < wanted => bail!(
                "the relay closed the connection after {} of {wanted} frame(s)",
                end.received
            ),
            _ => println!("chat: the relay closed the connection"),
        }
    }
    println!(
        "chat: sent {} message(s), received {} frame(s)",
        end.sent, end.received
    );
    Ok(())
}

// ANCHOR: cli_relay
/// `relay`: blocks SIGINT and SIGTERM before anything exists that they
/// should not leave behind, raises the descriptor limit, listens, makes
/// the queue, builds the relay, says it listens, and runs it; then its
/// last words, with the descriptors it had open before the first client
/// and after the last.
fn run_relay(
    socket: &std::path::Path,
    max_queue: usize,
    idle_ms: u64,
    queue: Option<&str>,
) -> anyhow::Result<()> {
    if max_queue < MIN_QUEUE {
        bail!(
            "--max-queue {max_queue}: at least {MIN_QUEUE} bytes, one frame of the longest message"
        );
    }
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGINT);
    stop.add(Signal::SIGTERM);
    stop.thread_block().context("block SIGINT and SIGTERM")?;
    let limit = raise_descriptor_limit()?;
    if limit.now < FEW_DESCRIPTORS {
        eprintln!(
            "relay: warning: at most {} descriptors (RLIMIT_NOFILE's hard limit): fewer than {} \
             clients at once",
            limit.now,
            limit.now.saturating_sub(16)
        );
    }
    let listener = listen(socket)?;
    let queue = queue.map(AnnounceQueue::create).transpose()?;
    let settings = Settings {
        max_queue,
        idle: Duration::from_millis(idle_ms),
    };
    let mut relay = Relay::new(listener, queue, &stop, settings)?;
    let before = open_descriptors()?;
    say(&format!("relay: listening on {}", socket.display()))?;
    let signal = relay.run()?;
    let after = open_descriptors()?;
    println!("relay: stopped by {}", signal.as_str());
    println!("{}", relay.tally());
    println!("relay: {before} descriptors open before the first client, {after} after the last");
    Ok(())
}
// ANCHOR_END: cli_relay

/// Prints `line` and flushes, so that a test waiting for it sees it now.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush())?;
    Ok(())
}
