//! The `mmap` command line (given: you do not need to change this file).
//!
//! Every subcommand calls the functions of `lib.rs` and prints what they
//! return. Errors are reported on one line, `mmap: …`, with exit status 1;
//! usage mistakes exit with status 2.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::builder::NonEmptyStringValueParser;
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::WaitStatus;

use super::mapping::{Mapping, Share};
use super::{
    CopyOnWrite, Increment, Seen, copy_on_write, count, faults, map_file, page_size, poke, view,
    word_count,
};

/// Lab 08: memory mappings (mmap).
#[derive(Parser, Debug)]
#[command(name = "mmap", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the page size, sysconf(_SC_PAGESIZE) (TODO 1).
    PageSize,
    /// Print bytes of FILE read through a private, read-only mapping
    /// (TODO 1).
    Cat {
        /// The file to map.
        file: PathBuf,
        /// Where to start, in bytes: a multiple of the page size.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// How many bytes to map (default: up to the end of the file).
        #[arg(long)]
        length: Option<usize>,
    },
    /// Count lines, words and bytes like wc, through mappings of WINDOW
    /// bytes at a time (TODO 2).
    Wc {
        /// The file to count.
        file: PathBuf,
        /// The size of each mapping, in bytes: a multiple of the page size.
        #[arg(long, default_value_t = 1 << 20,
              value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
        window: u64,
    },
    /// Two children write TEXT at the start of FILE, one through a private
    /// mapping, one through a shared one; the parent looks after each
    /// (TODO 3). The second write really changes FILE.
    Cow {
        /// The file to map (at least as long as TEXT).
        file: PathBuf,
        /// What the children write (it may start with `-`).
        #[arg(allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
        text: String,
    },
    /// Show SIGSEGV (a store to a page made read-only with mprotect) and
    /// SIGBUS (a page of a mapping past the end of FILE) (TODO 4).
    Faults {
        /// The file to map, one page longer than it is.
        file: PathBuf,
    },
    /// Write TEXT into FILE at OFFSET through a shared mapping, then msync
    /// (TODO 5).
    Poke {
        /// The file to change in place.
        file: PathBuf,
        /// Where to write, in bytes from the start (any offset).
        offset: u64,
        /// What to write (it may start with `-`).
        #[arg(allow_hyphen_values = true, value_parser = NonEmptyStringValueParser::new())]
        text: String,
    },
    /// Map FILE shared and report, at each SIGUSR1, what changed in it,
    /// without reading it; stop at SIGTERM or SIGINT (TODO 5).
    Watch {
        /// The file to watch.
        file: PathBuf,
    },
    /// Children add to counters in anonymous shared memory; the parent
    /// adds them up (TODO 6).
    Count {
        /// How many children to fork.
        #[arg(long, default_value_t = 4,
              value_parser = clap::value_parser!(u8).range(1..=64))]
        children: u8,
        /// How many times each child adds 1.
        #[arg(long, default_value_t = 100_000,
              value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        rounds: u64,
        /// Add with a load then a store instead of one fetch_add.
        #[arg(long)]
        racy: bool,
    },
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("mmap: {error:#}"));
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
        Command::PageSize => println!("{}", page_size()?),
        Command::Cat {
            file,
            offset,
            length,
        } => {
            if let Some(mapping) = map_file(&file, offset, length, Share::Private)? {
                print_bytes(&mapping)?;
            }
        }
        // ANCHOR: cli_wc
        Command::Wc { file, window } => {
            let window = usize::try_from(window).context("the window is too large")?;
            let counts = word_count(&file, window)?;
            println!(
                "{} {} {} {}",
                counts.lines,
                counts.words,
                counts.bytes,
                file.display()
            );
        }
        // ANCHOR_END: cli_wc
        // ANCHOR: cli_cow
        Command::Cow { file, text } => {
            let seen = copy_on_write(&file, text.as_bytes())?;
            print_copy_on_write(&seen);
        }
        // ANCHOR_END: cli_cow
        Command::Faults { file } => print_faults(&file)?,
        // ANCHOR: cli_poke
        Command::Poke { file, offset, text } => {
            let poked = poke(&file, offset, text.as_bytes())?;
            println!(
                "mapped {} bytes of {} from offset {}, MAP_SHARED, PROT_READ | PROT_WRITE",
                poked.map_len,
                file.display(),
                poked.map_offset
            );
            println!(
                "wrote {} byte(s) at offset {offset}, then msync(MS_SYNC) and munmap",
                text.len()
            );
        }
        // ANCHOR_END: cli_poke
        Command::Watch { file } => watch(&file)?,
        // ANCHOR: cli_count
        Command::Count {
            children,
            rounds,
            racy,
        } => {
            let (increment, how) = if racy {
                (
                    Increment::LoadThenStore,
                    "a load, then a store of the value plus 1 (round 1 waits at the gate in between)",
                )
            } else {
                (Increment::FetchAdd, "fetch_add(1)")
            };
            let who = if children == 1 { "child" } else { "children" };
            println!("{children} {who}, {rounds} rounds each; the total grows by {how}");
            let tally = count(usize::from(children), rounds, increment)?;
            for (n, mine) in tally.children.iter().enumerate() {
                println!("child {}: {mine}", n + 1);
            }
            let expected = u64::from(children) * rounds;
            println!(
                "total: {} of {expected} ({} lost)",
                tally.total,
                expected.saturating_sub(tally.total)
            );
        } // ANCHOR_END: cli_count
    }
    Ok(())
}

/// Copies a mapping to standard output, 64 KiB at a time.
fn print_bytes(mapping: &Mapping) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut offset = 0;
    while offset < mapping.len() {
        let n = chunk.len().min(mapping.len() - offset);
        mapping
            .read_at(offset, &mut chunk[..n])
            .context("read through the mapping")?;
        out.write_all(&chunk[..n]).context("write to stdout")?;
        offset += n;
    }
    out.flush().context("write to stdout")
}

fn print_copy_on_write(seen: &CopyOnWrite) {
    let moments = [
        ("before the children", &seen.before),
        ("after child 1", &seen.after_private),
        ("after child 2", &seen.after_shared),
    ];
    for (when, Seen { mapped, read }) in moments {
        println!(
            "parent: {when}, its MAP_SHARED mapping held {:?} and read(2) returned {:?}",
            String::from_utf8_lossy(mapped),
            String::from_utf8_lossy(read)
        );
    }
}

// ANCHOR: cli_faults
fn print_faults(file: &Path) -> anyhow::Result<()> {
    let seen = faults(file)?;
    let page = seen.page_size;
    println!("page size: {page} bytes");
    println!(
        "file: {} bytes in {} page(s); mapped {} bytes ({} page(s)), MAP_PRIVATE, PROT_READ",
        seen.file_size,
        seen.file_pages,
        seen.mapped,
        seen.mapped / page
    );
    if let Some(byte) = seen.last_byte {
        println!("byte {}, the file's last: {byte:#04x}", seen.file_size - 1);
    }
    if let Some(byte) = seen.past_the_end {
        println!(
            "byte {}, past the end of the file in its last page: {byte:#04x}",
            seen.file_size
        );
    }
    println!(
        "child 1 wrote to a page made read-only by mprotect: {}",
        describe(seen.read_only_store)
    );
    println!(
        "child 2 read byte {}, the first of a page wholly past the end of the file: {}",
        seen.probed,
        describe(seen.past_the_last_page)
    );
    Ok(())
}
// ANCHOR_END: cli_faults

/// "killed by signal SIGBUS", "exited with status 0 (the access went through)".
fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, signal, _) => format!("killed by signal {}", signal.as_str()),
        WaitStatus::Exited(_, 0) => "exited with status 0 (the access went through)".to_string(),
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        other => format!("{other:?}"),
    }
}

// ANCHOR: cli_watch
/// Maps `file` with [`view`] and, at each SIGUSR1, prints what changed
/// since the last look. The signals are blocked first and taken with
/// `sigwait`: one sent as soon as the ready line shows waits for the loop,
/// and no handler runs in the middle of anything.
fn watch(file: &Path) -> anyhow::Result<()> {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGUSR1, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(signal);
    }
    signals.thread_block().context("sigprocmask")?;
    let Some(shared) = view(file)? else {
        bail!("{} is empty: there is nothing to watch", file.display());
    };
    let mut last = vec![0u8; shared.len()];
    shared
        .read_at(0, &mut last)
        .context("read through the mapping")?;
    println!(
        "watching {}: {} bytes through a MAP_SHARED mapping",
        file.display(),
        shared.len()
    );
    println!("SIGUSR1: look again; SIGTERM or SIGINT: stop");
    io::stdout().flush().context("write to stdout")?;
    loop {
        match signals.wait().context("sigwait")? {
            Signal::SIGUSR1 => print_changes(&shared, &mut last)?,
            other => {
                println!("stopped by {}", other.as_str());
                break;
            }
        }
        io::stdout().flush().context("write to stdout")?;
    }
    shared.unmap().context("munmap")
}

/// Prints each run of bytes that differs from `last`, then remembers them.
fn print_changes(shared: &Mapping, last: &mut [u8]) -> anyhow::Result<()> {
    let mut now = vec![0u8; shared.len()];
    shared
        .read_at(0, &mut now)
        .context("read through the mapping")?;
    let mut changed = false;
    let mut at = 0;
    while at < now.len() {
        if now[at] == last[at] {
            at += 1;
            continue;
        }
        let end = (at..now.len())
            .find(|&i| now[i] == last[i])
            .unwrap_or(now.len());
        println!(
            "changed: bytes {at}..{end} now hold {:?}",
            String::from_utf8_lossy(&now[at..end])
        );
        changed = true;
        at = end;
    }
    if !changed {
        println!("no change");
    }
    last.copy_from_slice(&now);
    Ok(())
}
// ANCHOR_END: cli_watch
