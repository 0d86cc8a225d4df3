//! The `capstone` command line (given: you do not need to change this
//! file).
//!
//! * `capstone list`: the mechanisms, by family;
//! * `capstone check MECHANISM`: one round trip per message size, every
//!   byte of every message checked on arrival; what each side holds;
//!   what has a name before and after;
//! * `capstone bench`: round-trip latency (median and 99th percentile)
//!   and one-way throughput per mechanism and message size, beside a C
//!   reference and `memcpy`; a table, and optionally CSV, SVG and
//!   Markdown files.
//!
//! Objects get their names from three options: `--key-file FILE` for
//! System V keys (`ftok`), `--name /PREFIX` for POSIX names, `--dir DIR`
//! for FIFOs and socket files. Without them the program makes a private
//! directory in `$TMPDIR` (and a key file in it) and removes both at the
//! end. Errors are reported on one line, `capstone: …`, with exit status
//! 1; usage mistakes exit with status 2.

use std::fs::{self, DirBuilder, File};
use std::os::fd::RawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::unistd::getpid;

use super::bench::{self, Bench};
use super::harness::{self, Family, MECHANISMS, Mechanism, Names, Plan, Report, Setup};

/// The largest message: 1 MiB.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Lab 16: every mechanism, measured.
#[derive(Parser, Debug)]
#[command(name = "capstone", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the mechanisms, by family (byte streams, messages, shared memory).
    List,
    /// Check one mechanism: one round trip per size, every byte checked
    /// (TODOs 1 to 6, by mechanism: see `list`).
    Check {
        /// The mechanism (see `list`).
        #[arg(value_parser = parse_mechanism)]
        mechanism: Mechanism,
        /// Message sizes in bytes, in order (1 to 1 MiB; K and M suffixes: 4K, 1M).
        #[arg(long, value_delimiter = ',', value_parser = parse_size,
              default_value = "1,64,4K,64K,1M")]
        sizes: Vec<usize>,
        /// Where the messages' contents come from.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        places: Places,
    },
    /// Measure round-trip latency and one-way throughput of each
    /// mechanism at each size, with a C reference and memcpy in the same run.
    Bench {
        /// The mechanisms, or `all`.
        #[arg(long, value_delimiter = ',', default_value = "all")]
        mechanisms: Vec<String>,
        /// Message sizes in bytes (1 to 1 MiB; K and M suffixes).
        #[arg(long, value_delimiter = ',', value_parser = parse_size,
              default_value = "64,4K,64K,1M")]
        sizes: Vec<usize>,
        /// Timed round trips per size, and messages sent one way.
        #[arg(long, default_value_t = 1000,
              value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        count: u32,
        /// Round trips before the timed ones, per size.
        #[arg(long, default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
        warmup: u32,
        /// Run the C reference (pipe, posix-shm, spin), compiled with `cc`.
        #[arg(long, value_enum, default_value = "auto")]
        c_reference: CReference,
        /// Do not pin the two sides to CPUs.
        #[arg(long)]
        no_pin: bool,
        /// Write the figures as CSV to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write a chart of them as SVG to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Write them as Markdown tables to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        #[command(flatten)]
        places: Places,
    },
}

/// Where objects get their names.
#[derive(Args, Debug)]
struct Places {
    /// The file that names System V objects (ftok) [default: one made in
    /// the work directory].
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The start of POSIX IPC names, e.g. /bench [default: /capstone-PID].
    #[arg(long, value_parser = parse_prefix)]
    name: Option<String>,
    /// The directory for FIFOs and socket files [default: a new private
    /// directory in $TMPDIR, removed at the end].
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Whether to run the C reference.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum CReference {
    /// If `cc` is found.
    Auto,
    /// Never.
    Off,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    // Rust ignores SIGPIPE at start-up: a write to a closed pipe or socket
    // fails with EPIPE instead of killing the program, which is what a
    // transport should see. Nothing to change.
    let inherited = open_descriptors();
    let cli = Cli::parse();
    match execute(cli.command, &inherited) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("capstone: {error:#}"));
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

fn execute(command: Command, inherited: &[RawFd]) -> anyhow::Result<()> {
    match command {
        Command::List => {
            list();
            Ok(())
        }
        Command::Check {
            mechanism,
            sizes,
            seed,
            places,
        } => {
            let place = Place::new(&places)?;
            let result = check(mechanism, sizes, seed, &place.names, inherited);
            place.close(result)
        }
        Command::Bench {
            mechanisms,
            sizes,
            count,
            warmup,
            c_reference,
            no_pin,
            csv,
            svg,
            markdown,
            places,
        } => {
            let mechanisms = chosen(&mechanisms)?;
            let place = Place::new(&places)?;
            let bench = Bench {
                mechanisms,
                sizes,
                count: count as usize,
                warmup: warmup as usize,
                c_reference: c_reference == CReference::Auto,
                pin: !no_pin,
                csv,
                svg,
                markdown,
            };
            let result = bench::run(&bench, &place.names, inherited);
            place.close(result)
        }
    }
}

/// `capstone list`.
fn list() {
    for family in [Family::ByteStream, Family::Messages, Family::SharedMemory] {
        println!("{family}:");
        for mechanism in MECHANISMS.iter().filter(|m| m.family == family) {
            println!(
                "  {:<12} {} (task {})",
                mechanism.name, mechanism.summary, mechanism.task
            );
        }
    }
}

// ANCHOR: check
/// `capstone check`: one session, one round trip per size.
fn check(
    mechanism: Mechanism,
    sizes: Vec<usize>,
    seed: u64,
    names: &Names,
    inherited: &[RawFd],
) -> anyhow::Result<()> {
    println!("check {}: {}", mechanism.name, mechanism.summary);
    let plan = Plan::Check {
        seed,
        sizes: sizes.clone(),
    };
    let setup = Setup {
        names,
        plan: &plan,
        pin: None,
        inherited,
    };
    let report = harness::session(mechanism, setup).context(mechanism.name)?;
    print_check(&report, &sizes);
    Ok(())
}

fn print_check(report: &Report, sizes: &[usize]) {
    println!("named before fork: {}", listed(&report.named));
    for (role, holds) in ["ping", "pong"].iter().zip(&report.holds) {
        println!("{role} holds: {}", listed(holds));
    }
    let (smallest, largest) = (
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
    );
    println!(
        "round trips: {}, of {smallest} to {largest} bytes",
        sizes.len()
    );
    // What pong received went from ping to pong, and the other way round.
    for (way, received) in [
        ("ping → pong", &report.received[1]),
        ("pong → ping", &report.received[0]),
    ] {
        match received {
            Some(r) => println!(
                "{way}: {} messages, {} bytes, FNV-1a {:#018x}, every byte as sent",
                r.messages, r.bytes, r.fnv1a
            ),
            None => println!("{way}: nothing received"),
        }
    }
    println!("named after the run: {}", listed(&report.left));
}
// ANCHOR_END: check

/// `a; b; c`, or `nothing`.
fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join("; ")
    }
}

/// The mechanisms `--mechanisms` names, in the order of `list`.
fn chosen(names: &[String]) -> anyhow::Result<Vec<Mechanism>> {
    if names.iter().any(|name| name == "all") {
        return Ok(MECHANISMS.to_vec());
    }
    for name in names {
        if Mechanism::named(name).is_none() {
            bail!("no mechanism is called {name:?} (see `capstone list`)");
        }
    }
    Ok(MECHANISMS
        .iter()
        .copied()
        .filter(|m| names.iter().any(|name| name == m.name))
        .collect())
}

/// Where a run's objects get their names, and what to remove at the end.
struct Place {
    names: Names,
    /// A key file this run made.
    made_key_file: Option<PathBuf>,
    /// A directory this run made.
    made_dir: Option<PathBuf>,
}

impl Place {
    fn new(places: &Places) -> anyhow::Result<Place> {
        let pid = getpid();
        let made_dir = match &places.dir {
            Some(_) => None,
            None => Some(private_dir()?),
        };
        let dir = places
            .dir
            .clone()
            .or_else(|| made_dir.clone())
            .unwrap_or_default();
        let made_key_file = match &places.key_file {
            Some(_) => None,
            None => {
                let path = dir.join(format!("capstone-{pid}.key"));
                let made = File::create_new(&path)
                    .with_context(|| format!("create the key file {}", path.display()));
                if let Err(error) = made {
                    if let Some(made_dir) = &made_dir {
                        let _ = fs::remove_dir(made_dir);
                    }
                    return Err(error);
                }
                Some(path)
            }
        };
        let key_file = places
            .key_file
            .clone()
            .or_else(|| made_key_file.clone())
            .unwrap_or_default();
        let prefix = places
            .name
            .clone()
            .unwrap_or_else(|| format!("/capstone-{pid}"));
        Ok(Place {
            names: Names::new(key_file, prefix, dir),
            made_key_file,
            made_dir,
        })
    }

    /// Removes what this run made for its names, then returns `result`
    /// (or, if it was fine, the first removal that failed).
    fn close(mut self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        let mut removed = Ok(());
        if let Some(path) = self.made_key_file.take() {
            removed = removed
                .and(fs::remove_file(&path).with_context(|| format!("remove {}", path.display())));
        }
        if let Some(dir) = self.made_dir.take() {
            removed = removed.and(remove_dir(&dir));
        }
        result.and(removed)
    }
}

impl Drop for Place {
    /// After a panic: removes the key file and the directory this run
    /// made, if it can (`close` does it, and reports, otherwise).
    fn drop(&mut self) {
        if let Some(path) = &self.made_key_file {
            let _ = fs::remove_file(path);
        }
        if let Some(dir) = &self.made_dir {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// A new directory in `$TMPDIR` that only this user may enter (mode
/// 0700): `capstone-PID-N`.
fn private_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    let pid = getpid();
    let mut attempt = 0;
    loop {
        let dir = base.join(format!("capstone-{pid}-{attempt}"));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("mkdir {}", dir.display()));
            }
        }
    }
}

/// Removes the work directory, which must be empty by now.
fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    if let Err(error) = fs::remove_dir(dir) {
        let left: Vec<String> = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        bail!(
            "remove the work directory {}: {error} (left in it: {})",
            dir.display(),
            left.join(", ")
        );
    }
    Ok(())
}

/// The descriptors this program starts with (not the link's), but the
/// one that lists them.
fn open_descriptors() -> Vec<RawFd> {
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let link = fs::read_link(entry.path()).ok()?;
            let listing = link.starts_with("/proc") && link.ends_with("fd");
            (!listing).then_some(entry.file_name().to_str()?.parse().ok()?)
        })
        .collect()
}

fn parse_mechanism(text: &str) -> Result<Mechanism, String> {
    Mechanism::named(text).ok_or_else(|| {
        let known: Vec<&str> = MECHANISMS.iter().map(|m| m.name).collect();
        format!("no such mechanism (known: {})", known.join(", "))
    })
}

/// `64`, `4K` (4096), `1M` (1048576): 1 to [`MAX_MESSAGE`].
fn parse_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.strip_suffix(['K', 'k']) {
        Some(digits) => (digits, 1 << 10),
        None => match text.strip_suffix(['M', 'm']) {
            Some(digits) => (digits, 1 << 20),
            None => (text, 1),
        },
    };
    let size = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{text:?} is not a size (64, 4K, 1M)"))?;
    if !(1..=MAX_MESSAGE).contains(&size) {
        return Err(format!("{size} bytes: sizes go from 1 to {MAX_MESSAGE}"));
    }
    Ok(size)
}

/// A POSIX name prefix: `/` then up to 200 characters, no other `/`.
fn parse_prefix(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix('/')
        .ok_or("a POSIX name starts with `/`")?;
    if rest.is_empty() || rest.len() > 200 || rest.contains('/') {
        return Err("one `/`, then 1 to 200 characters without `/`".to_string());
    }
    Ok(text.to_string())
}
