//! The `posix-shm` command line (given: you do not need to change this
//! file).
//!
//! Every command names its object with a POSIX IPC name, `/something`, so
//! that processes started one after another, side by side, or written in
//! other languages meet at the same object. Errors are reported on one
//! line, `posix-shm: …`, with exit status 1; usage mistakes exit with
//! status 2.

use std::collections::HashMap;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::geteuid;

use super::layout::{self, RECORD_SIZE, Record, ring_size};
use super::posix::{Deadline, Mapping, NamedSemaphore};
use super::{
    Locked, Object, add, check_name, counter_create, counter_open, create, lock_counter, map, open,
    put, ring_create, ring_open, sem_create, take, try_wait, unlink, wait, wait_for,
};

/// Lab 10: POSIX shared memory and semaphores.
#[derive(Parser, Debug)]
#[command(name = "posix-shm", bin_name = "posix-shm", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the shared memory object NAME with SIZE bytes (shm_open with
    /// O_CREAT | O_EXCL, ftruncate) (TODO 1).
    Create {
        /// Its name: a '/' and up to 255 more bytes, no other '/'.
        name: String,
        /// Its size in bytes.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        size: u64,
        /// Permission bits, in octal (the umask applies).
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
    },
    /// Print the object's size, mode and owner, from fstat (TODO 1).
    Info {
        /// The object's name.
        name: String,
    },
    /// Write TEXT into the object at OFFSET, through a shared mapping
    /// (TODO 1).
    Write {
        /// The object's name.
        name: String,
        /// What to write (its bytes, without a terminating NUL).
        text: String,
        /// Where to start, in bytes from the beginning.
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Print the text at OFFSET, up to the first NUL byte or LENGTH bytes,
    /// through a read-only mapping (TODO 1).
    Read {
        /// The object's name.
        name: String,
        /// Where to start, in bytes from the beginning.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// How many bytes at most (default: to the end of the object).
        #[arg(long)]
        length: Option<u64>,
    },
    /// Remove the object's name (shm_unlink) (TODO 1).
    Unlink {
        /// The object's name.
        name: String,
    },
    /// Named semaphores (TODO 2).
    #[command(subcommand)]
    Sem(SemCommand),
    /// A counter guarded by a robust, process-shared mutex, with a
    /// condition variable to wait on (TODOs 3 and 4).
    #[command(subcommand)]
    Counter(CounterCommand),
    /// A bounded ring buffer of fixed-size records, between producers and
    /// consumers that are separate programs (TODOs 5 and 6).
    #[command(subcommand)]
    Ring(RingCommand),
}

#[derive(Subcommand, Debug)]
enum SemCommand {
    /// Create the named semaphore NAME with VALUE (sem_open with O_CREAT |
    /// O_EXCL).
    Create {
        /// Its name, as for shared memory objects.
        name: String,
        /// Its initial value.
        value: u32,
        /// Permission bits, in octal (the umask applies).
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
    },
    /// Take one (P): sem_wait, or sem_timedwait with --timeout-ms. A
    /// SIGUSR1 interrupts the wait (its handler has no SA_RESTART).
    Wait {
        /// The semaphore's name.
        name: String,
        /// Give up after this many milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Take one if the value is above 0, else fail at once (sem_trywait).
    Try {
        /// The semaphore's name.
        name: String,
    },
    /// Give one back (V): sem_post. Given.
    Post {
        /// The semaphore's name.
        name: String,
    },
    /// Print the value (sem_getvalue). Given.
    Value {
        /// The semaphore's name.
        name: String,
    },
    /// Remove the name (sem_unlink). Given.
    Unlink {
        /// The semaphore's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum CounterCommand {
    /// Create the counter object NAME, at 0 (TODO 3).
    Create {
        /// The counter's name.
        name: String,
    },
    /// Add AMOUNT, TIMES times, each under the lock (TODO 4).
    Add {
        /// The counter's name.
        name: String,
        /// How much to add each time.
        amount: u64,
        /// How many times.
        #[arg(long, default_value_t = 1)]
        times: u32,
        /// Give up on a lock held longer than this.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Take the lock, store value + AMOUNT into value but not yet into
    /// mirror, and hold the lock until standard input ends; then finish
    /// the update and unlock. Killed before that, it leaves the update
    /// half-done. Given, on top of TODO 4.
    Hold {
        /// The counter's name.
        name: String,
        /// How much to add.
        amount: u64,
        /// Give up on a lock held longer than this.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Wait until the counter is at least TARGET (TODO 4).
    Wait {
        /// The counter's name.
        name: String,
        /// The value to wait for.
        target: u64,
        /// Give up after this many milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Print the counter and its mirror, without the lock. Given.
    Show {
        /// The counter's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum RingCommand {
    /// Create the ring object NAME (TODO 5).
    Create {
        /// The ring's name.
        name: String,
        /// How many records it holds at most.
        #[arg(long, default_value_t = 8,
              value_parser = clap::value_parser!(u32).range(1..=65536))]
        slots: u32,
    },
    /// Take the ring's lock and hold it until standard input ends, then
    /// unlock: meanwhile every put and take sleeps on the lock, after its P
    /// and before its copy. Given, on top of TODO 5.
    Hold {
        /// The ring's name.
        name: String,
    },
    /// Print the ring's header: slots, records put and taken, and the two
    /// semaphores, without the lock (TODO 5).
    Show {
        /// The ring's name.
        name: String,
    },
    /// Put COUNT records, numbered 0 to COUNT - 1, made from SEED (TODO 6).
    Produce {
        /// The ring's name.
        name: String,
        /// This producer's number, written into each record.
        #[arg(long)]
        producer: u32,
        /// How many records to put.
        #[arg(long)]
        count: u32,
        /// What the records' values are made from.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Give up on a ring that stays full this long.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Take COUNT records and check each one (TODO 6).
    Consume {
        /// The ring's name.
        name: String,
        /// How many records to take.
        #[arg(long)]
        count: u32,
        /// Give up on a ring that stays empty this long.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Print the offsets of the counter's and the ring's fields, as this
    /// program lays them out. Given.
    Layout,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("posix-shm: {error:#}"));
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
        Command::Create { name, size, mode } => {
            let object = create(&name, size, mode)?;
            println!(
                "created {name}: {} bytes, mode {:03o}",
                object.size, object.mode
            );
        }
        Command::Info { name } => print_info(&open(&name, false)?),
        // ANCHOR: cli_write_read
        Command::Write { name, text, offset } => {
            let object = open(&name, true)?;
            let at = within(&object, offset, text.len() as u64, "write")?;
            map(&object, true)?
                .write_at(at, text.as_bytes())
                .with_context(|| format!("write {name}"))?;
        }
        Command::Read {
            name,
            offset,
            length,
        } => {
            let object = open(&name, false)?;
            let length = length.unwrap_or(object.size.saturating_sub(offset));
            let at = within(&object, offset, length, "read")?;
            let text = text_at(&map(&object, false)?, at, length as usize)
                .with_context(|| format!("read {name}"))?;
            println!("{}", String::from_utf8_lossy(&text));
        }
        // ANCHOR_END: cli_write_read
        Command::Unlink { name } => unlink(&name)?,
        Command::Sem(command) => semaphore(command)?,
        Command::Counter(command) => counter(command)?,
        Command::Ring(command) => ring(command)?,
    }
    Ok(())
}

/// "/jobs: 4096 bytes, mode 600, owner = you".
fn print_info(object: &Object) {
    let owner = if object.owner == geteuid().as_raw() {
        "you"
    } else {
        "another user"
    };
    println!(
        "{}: {} bytes, mode {:03o}, owner = {owner}",
        object.name, object.size, object.mode
    );
}

/// The offset of `count` bytes at `offset`, if they lie within the object.
fn within(object: &Object, offset: u64, count: u64, what: &str) -> anyhow::Result<usize> {
    let (name, size) = (&object.name, object.size);
    match offset.checked_add(count) {
        Some(end) if end <= size => Ok(offset as usize),
        _ if offset > size => bail!("offset {offset} is beyond the end of {name} ({size} bytes)"),
        _ => bail!(
            "{what} {count} bytes at offset {offset} of {name}: beyond its end ({size} bytes)"
        ),
    }
}

/// The bytes at `at`, up to the first NUL or `length` bytes, read a page
/// at a time (an object may be far larger than the text in it).
fn text_at(mapping: &Mapping, at: usize, length: usize) -> nix::Result<Vec<u8>> {
    let mut text = Vec::new();
    let mut page = [0; 4096];
    while text.len() < length {
        let piece = &mut page[..(length - text.len()).min(4096)];
        mapping.read_at(at + text.len(), piece)?;
        match piece.iter().position(|&b| b == 0) {
            Some(end) => {
                text.extend_from_slice(&piece[..end]);
                break;
            }
            None => text.extend_from_slice(piece),
        }
    }
    Ok(text)
}

// ANCHOR: cli_sem
fn semaphore(command: SemCommand) -> anyhow::Result<()> {
    match command {
        SemCommand::Create { name, value, mode } => {
            sem_create(&name, value, mode)?;
            println!("created semaphore {name} with value {value}");
        }
        SemCommand::Wait { name, timeout_ms } => {
            let sem = open_semaphore(&name)?;
            interrupt_with_sigusr1()?;
            let mut interrupted = || {
                println!("interrupted by a signal (EINTR): waiting again");
                let _ = io::stdout().flush();
            };
            wait(
                &sem,
                timeout_ms.map(Duration::from_millis),
                &mut interrupted,
            )
            .with_context(|| format!("wait on {name}"))?;
            println!("took one from {name}");
        }
        SemCommand::Try { name } => {
            let sem = open_semaphore(&name)?;
            if !try_wait(&sem).with_context(|| format!("try {name}"))? {
                bail!("sem_trywait {name}: its value is 0 (EAGAIN): nothing taken");
            }
            println!("took one from {name}");
        }
        SemCommand::Post { name } => open_semaphore(&name)?
            .post()
            .with_context(|| format!("sem_post {name}"))?,
        SemCommand::Value { name } => {
            let value = open_semaphore(&name)?
                .value()
                .with_context(|| format!("sem_getvalue {name}"))?;
            println!("{value}");
        }
        SemCommand::Unlink { name } => {
            NamedSemaphore::unlink(&check_name(&name)?)
                .with_context(|| format!("sem_unlink {name}"))?;
        }
    }
    Ok(())
}

/// `sem_open(name, 0)`, after the name is checked.
fn open_semaphore(name: &str) -> anyhow::Result<NamedSemaphore> {
    NamedSemaphore::open(&check_name(name)?).with_context(|| format!("open semaphore {name}"))
}

/// Installs a handler for SIGUSR1 that does nothing, without SA_RESTART
/// (as handlers installed from Rust usually are): a SIGUSR1 that arrives
/// while the process sleeps in sem_wait or sem_timedwait makes the call
/// fail with EINTR.
fn interrupt_with_sigusr1() -> anyhow::Result<()> {
    extern "C" fn ignore(_: libc::c_int) {}
    let action = SigAction::new(
        SigHandler::Handler(ignore),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing at all, so it is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.context("sigaction(SIGUSR1)")?;
    Ok(())
}
// ANCHOR_END: cli_sem

// ANCHOR: cli_counter
fn counter(command: CounterCommand) -> anyhow::Result<()> {
    match command {
        CounterCommand::Create { name } => {
            counter_create(&name)?;
            println!("created counter {name}: 0");
        }
        CounterCommand::Add {
            name,
            amount,
            times,
            timeout_ms,
        } => {
            let counter = counter_open(&name)?;
            let mut value = counter.value.load(Ordering::Relaxed);
            for _ in 0..times {
                let added = add(&counter, amount, &deadline(timeout_ms))?;
                report(added.locked);
                value = added.value;
            }
            println!("counter {name}: {value}");
        }
        CounterCommand::Hold {
            name,
            amount,
            timeout_ms,
        } => {
            let counter = counter_open(&name)?;
            report(lock_counter(&counter, &deadline(timeout_ms))?);
            let value = counter.value.load(Ordering::Relaxed).wrapping_add(amount);
            counter.value.store(value, Ordering::Relaxed);
            println!(
                "holding the lock of {name} half-way through adding {amount}: value {value}, mirror {}",
                counter.mirror.load(Ordering::Relaxed)
            );
            io::stdout().flush().context("flush")?;
            // Until standard input ends: a kill -9 now leaves the update half-done.
            let waited = io::copy(&mut io::stdin().lock(), &mut io::sink());
            counter.mirror.store(value, Ordering::Relaxed);
            let woken = counter.changed.broadcast().context("broadcast");
            counter.mutex.unlock().context("unlock")?;
            waited.context("read standard input")?;
            woken?;
            println!("added {amount}: counter {name}: {value}");
        }
        CounterCommand::Wait {
            name,
            target,
            timeout_ms,
        } => {
            let counter = counter_open(&name)?;
            let value = wait_for(&counter, target, &deadline(timeout_ms))?;
            println!("counter {name}: {value} (waited for {target})");
        }
        CounterCommand::Show { name } => {
            let counter = counter_open(&name)?;
            println!(
                "counter {name}: {} (mirror {})",
                counter.value.load(Ordering::Relaxed),
                counter.mirror.load(Ordering::Relaxed)
            );
        }
    }
    Ok(())
}

/// The deadline of `--timeout-ms`, or one that never comes.
fn deadline(timeout_ms: Option<u64>) -> Deadline {
    Deadline::after(timeout_ms.map_or(Duration::MAX, Duration::from_millis))
}

/// Says so when the lock came from a holder that died.
fn report(locked: Locked) {
    if let Locked::Repaired { found, restored } = locked {
        println!(
            "the last holder died holding the lock (EOWNERDEAD): value {found} set back to {restored}, mutex made consistent"
        );
    }
}
// ANCHOR_END: cli_counter

// ANCHOR: cli_ring
fn ring(command: RingCommand) -> anyhow::Result<()> {
    match command {
        RingCommand::Create { name, slots } => {
            ring_create(&name, slots)?;
            println!(
                "created ring {name}: {slots} slots of {RECORD_SIZE} bytes ({} bytes in all)",
                ring_size(slots).unwrap_or(0)
            );
        }
        RingCommand::Hold { name } => {
            let ring = ring_open(&name)?;
            match ring.mutex.lock_until(&deadline(None)) {
                Ok(()) => {}
                // A holder died; `head` and `tail` are whole, as in put and take.
                Err(Errno::EOWNERDEAD) => ring.mutex.consistent().context("consistent")?,
                Err(errno) => return Err(errno).with_context(|| format!("lock the ring {name}")),
            }
            println!("holding the lock of {name}");
            io::stdout().flush().context("flush")?;
            let waited = io::copy(&mut io::stdin().lock(), &mut io::sink());
            ring.mutex.unlock().context("unlock")?;
            waited.context("read standard input")?;
            println!("released the lock of {name}");
        }
        RingCommand::Show { name } => {
            let ring = ring_open(&name)?;
            println!(
                "ring {name}: {} slots; put {}, taken {}; free {}, used {}",
                ring.slots.load(Ordering::Relaxed),
                ring.tail.load(Ordering::Relaxed),
                ring.head.load(Ordering::Relaxed),
                ring.free.value().context("sem_getvalue(free)")?,
                ring.used.value().context("sem_getvalue(used)")?,
            );
        }
        RingCommand::Produce {
            name,
            producer,
            count,
            seed,
            timeout_ms,
        } => {
            let ring = ring_open(&name)?;
            let timeout = timeout_ms.map(Duration::from_millis);
            let mut checksum = 0u64;
            for sequence in 0..count {
                let record = Record::new(producer, sequence, seed);
                put(&ring, &record, timeout)
                    .with_context(|| format!("put record {sequence} into {name}"))?;
                checksum = checksum.wrapping_add(record.check);
            }
            println!("producer {producer}: put {count} records, checksum {checksum:#018x}");
        }
        RingCommand::Consume {
            name,
            count,
            timeout_ms,
        } => {
            let ring = ring_open(&name)?;
            let timeout = timeout_ms.map(Duration::from_millis);
            let mut tally = Tally::default();
            for taken in 0..count {
                let record = take(&ring, timeout)
                    .with_context(|| format!("take record {} of {count} from {name}", taken + 1))?;
                tally.add(&record);
            }
            println!(
                "took {count} records: checksum {:#018x}, {} torn, {} out of order",
                tally.checksum, tally.torn, tally.out_of_order
            );
        }
        RingCommand::Layout => {
            for (field, offset, size) in layout::fields() {
                println!("{field:<20} offset {offset:>3}  size {size:>3}");
            }
        }
    }
    Ok(())
}

/// What a consumer checks in the records it takes.
#[derive(Debug, Default)]
struct Tally {
    /// Wrapping sum of the `check` words of the intact records.
    checksum: u64,
    /// Records whose `check` does not match: torn, or never written.
    torn: u64,
    /// Intact records whose sequence number is not above the last one
    /// taken from the same producer: a ring is first in, first out.
    out_of_order: u64,
    /// The last sequence number taken from each producer.
    last: HashMap<u32, u32>,
}

impl Tally {
    fn add(&mut self, record: &Record) {
        if !record.is_intact() {
            self.torn += 1;
            return;
        }
        self.checksum = self.checksum.wrapping_add(record.check);
        if let Some(last) = self.last.insert(record.producer, record.sequence)
            && record.sequence <= last
        {
            self.out_of_order += 1;
        }
    }
}
// ANCHOR_END: cli_ring

/// Parses permission bits written in octal, such as `600` or `0640`.
fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mode between 000 and 777"))
}
