//! The `sem` command line (given: you do not need to change this file).
//!
//! Each subcommand is one process using a semaphore set named by a key file,
//! so several of them, started from a shell, meet at the same set: run one
//! in the background and another in the foreground, as the tests do.
//! Errors are reported on one line, `sem: …`, with exit status 1; usage
//! mistakes exit with status 2.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use nix::unistd::{Uid, getegid, geteuid};

use super::sysv::{self, SemSet};
use super::{
    PROJ_ID, SetReport, count, create_ready, open_ready, p, p_timeout, report, try_p, v, wait_zero,
};

/// Lab 06: System V semaphores, one command per operation.
#[derive(Parser, Debug)]
#[command(name = "sem", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a set with one semaphore per VALUE, and set the values
    /// (semget with IPC_EXCL, then SETVAL for each). Given.
    Create {
        /// The file that names the set (ftok).
        key_file: PathBuf,
        /// The initial values, one per semaphore.
        #[arg(required = true, value_parser = clap::value_parser!(u16).range(0..=32767))]
        values: Vec<u16>,
        /// Permission bits of the new set, in octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u16,
    },
    /// Print every value of the set (GETALL). Given.
    Values {
        /// The file that names the set (ftok).
        key_file: PathBuf,
    },
    /// Remove the set (IPC_RMID). Given.
    Remove {
        /// The file that names the set (ftok).
        key_file: PathBuf,
    },
    /// P: take one from semaphore NUM, sleeping while it is 0 (TODO 1).
    P {
        #[command(flatten)]
        target: Target,
        /// Use SEM_UNDO: the kernel gives it back if this process dies.
        #[arg(long)]
        undo: bool,
        /// Use IPC_NOWAIT: fail instead of sleeping.
        #[arg(long, conflicts_with = "undo")]
        nowait: bool,
    },
    /// V: give one back to semaphore NUM (TODO 1).
    V {
        #[command(flatten)]
        target: Target,
        /// Use SEM_UNDO.
        #[arg(long)]
        undo: bool,
    },
    /// Sleep until semaphore NUM is 0 (TODO 1).
    Zero {
        #[command(flatten)]
        target: Target,
    },
    /// Print what semctl says about the set (TODO 2).
    Show {
        /// The file that names the set (ftok).
        key_file: PathBuf,
    },
    /// Wait until NCNT processes wait for semaphore NUM to grow, or ZCNT for
    /// it to be 0 (polls GETNCNT / GETZCNT). Given, for scripts.
    WaitFor {
        #[command(flatten)]
        target: Target,
        /// The semncnt to wait for.
        #[arg(long, required_unless_present = "zcnt")]
        ncnt: Option<u16>,
        /// The semzcnt to wait for.
        #[arg(long, conflicts_with = "ncnt")]
        zcnt: Option<u16>,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        wait_ms: u64,
        /// Give up at once if process PID ends first (the process expected
        /// to wait): then the count will never be reached.
        #[arg(long, value_name = "PID")]
        watch: Option<i32>,
    },
    /// PROCS processes add 1 to a counter in the file COUNTER, TIMES times
    /// each, under a binary semaphore or without one (TODO 3).
    Count {
        /// The file that names the lock's set (ftok).
        key_file: PathBuf,
        /// The file that holds the counter (created or truncated).
        counter: PathBuf,
        /// How many processes (1 to 64).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        procs: u16,
        /// Increments per process.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        times: u32,
        /// Leave the counter unprotected, to watch updates get lost.
        #[arg(long)]
        no_lock: bool,
    },
    /// Take semaphore 0, say "holding semaphore 0", keep it for FOR_MS
    /// milliseconds, give it back. Kill it meanwhile to see what SEM_UNDO
    /// does. Given (it calls your p and v).
    Hold {
        /// The file that names the set (ftok).
        key_file: PathBuf,
        /// Take it with SEM_UNDO.
        #[arg(long)]
        undo: bool,
        /// How long to hold it.
        #[arg(long, default_value_t = 30_000)]
        for_ms: u64,
    },
    /// Try to take semaphore 0 for at most WAIT_MS milliseconds; if it got
    /// it, give it back (TODO 4).
    Enter {
        /// The file that names the set (ftok).
        key_file: PathBuf,
        /// How long to wait.
        #[arg(long, default_value_t = 500)]
        wait_ms: u64,
    },
    /// Create and initialise a set so that nobody can use it half-made:
    /// IPC_EXCL, SETALL, then a no-op semop that sets sem_otime (TODO 5).
    Init {
        /// The file that names the set (ftok).
        key_file: PathBuf,
        /// The initial values, one per semaphore.
        #[arg(required = true, value_parser = clap::value_parser!(u16).range(0..=32767))]
        values: Vec<u16>,
        /// Sleep this long between semget and SETALL (to show the race).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Open a set, wait until it is initialised (sem_otime != 0), print its
    /// values (TODO 5).
    Ready {
        /// The file that names the set (ftok).
        key_file: PathBuf,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        wait_ms: u64,
    },
}

/// A semaphore: the key file of its set and its number in the set.
#[derive(Args, Debug)]
struct Target {
    /// The file that names the set (ftok).
    key_file: PathBuf,
    /// The semaphore's number in the set, from 0.
    num: u16,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("sem: {error:#}"));
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
        // ANCHOR: cli_create
        Command::Create {
            key_file,
            values,
            mode,
        } => {
            let key = sysv::ftok(&key_file, PROJ_ID)
                .with_context(|| format!("ftok {}", key_file.display()))?;
            let nsems = u16::try_from(values.len()).context("too many values")?;
            let set = SemSet::create(key, nsems, mode)
                .with_context(|| format!("create a set for {}", key_file.display()))?;
            // SETVAL, one by one: it needs only alter permission, so that
            // even a set whose mode denies reading (--mode 200) can be
            // given its values. (SETALL here first reads sem_nsems.)
            for (num, &value) in (0..).zip(&values) {
                if let Err(errno) = set.set_val(num, value) {
                    let _ = set.remove();
                    return Err(errno).context("SETVAL");
                }
            }
            println!("created {} semaphore(s): {}", values.len(), join(&values));
        }
        // ANCHOR_END: cli_create
        Command::Values { key_file } => {
            let values = open(&key_file)?.get_all().context("GETALL")?;
            println!("{}", join(&values));
        }
        Command::Remove { key_file } => {
            open(&key_file)?.remove().context("IPC_RMID")?;
        }
        // ANCHOR: cli_p_v
        Command::P {
            target,
            undo,
            nowait,
        } => {
            let set = open(&target.key_file)?;
            if nowait {
                if !try_p(set, target.num)? {
                    bail!(
                        "P on semaphore {} would block: its value is 0 (EAGAIN)",
                        target.num
                    );
                }
            } else {
                p(set, target.num, undo)?;
            }
        }
        Command::V { target, undo } => v(open(&target.key_file)?, target.num, undo)?,
        Command::Zero { target } => wait_zero(open(&target.key_file)?, target.num)?,
        // ANCHOR_END: cli_p_v
        Command::Show { key_file } => print_report(&report(&key_file)?),
        Command::WaitFor {
            target,
            ncnt,
            zcnt,
            wait_ms,
            watch,
        } => wait_for(&target, ncnt, zcnt, Duration::from_millis(wait_ms), watch)?,
        // ANCHOR: cli_count
        Command::Count {
            key_file,
            counter,
            procs,
            times,
            no_lock,
        } => {
            let total = count(&key_file, &counter, procs, times, !no_lock)?;
            let expected = u64::from(procs) * u64::from(times);
            let how = if no_lock {
                "without a lock"
            } else {
                "with the lock"
            };
            print!(
                "{procs} processes x {times} increments {how}: counter = {total} (expected {expected}"
            );
            match expected.checked_sub(total) {
                Some(0) => println!(")"),
                Some(lost) => println!(", {lost} increments lost)"),
                None => println!(", {} too many)", total - expected),
            }
        }
        // ANCHOR_END: cli_count
        // ANCHOR: cli_hold
        Command::Hold {
            key_file,
            undo,
            for_ms,
        } => {
            let set = open(&key_file)?;
            p(set, 0, undo)?;
            println!("holding semaphore 0");
            io::stdout().flush()?;
            thread::sleep(Duration::from_millis(for_ms));
            v(set, 0, undo)?;
        }
        // ANCHOR_END: cli_hold
        // ANCHOR: cli_enter
        Command::Enter { key_file, wait_ms } => {
            let set = open(&key_file)?;
            if p_timeout(set, 0, true, Duration::from_millis(wait_ms))? {
                v(set, 0, true)?;
                println!("entered: took semaphore 0 and gave it back");
            } else {
                println!("still blocked after {wait_ms} ms");
            }
        }
        // ANCHOR_END: cli_enter
        Command::Init {
            key_file,
            values,
            delay_ms,
        } => {
            create_ready(&key_file, &values, Duration::from_millis(delay_ms))?;
            println!(
                "initialised {} semaphore(s): {}",
                values.len(),
                join(&values)
            );
        }
        Command::Ready { key_file, wait_ms } => {
            let set = open_ready(&key_file, Duration::from_millis(wait_ms))?;
            println!("ready: {}", join(&set.get_all().context("GETALL")?));
        }
    }
    Ok(())
}

/// Opens the existing set named by `key_file` (`ftok`, then `semget` with
/// `nsems` 0).
fn open(key_file: &Path) -> anyhow::Result<SemSet> {
    let key =
        sysv::ftok(key_file, PROJ_ID).with_context(|| format!("ftok {}", key_file.display()))?;
    SemSet::open(key).with_context(|| format!("no semaphore set for {}", key_file.display()))
}

// ANCHOR: print_report
/// Prints a report the way `ipcs -s -i SEMID` lays it out, with the owner
/// described rather than numbered (so that it reads the same for every user).
fn print_report(report: &SetReport) {
    let me = geteuid();
    let owner = if report.uid == report.cuid && report.gid == report.cgid {
        "owner = creator"
    } else {
        "owner != creator"
    };
    let who = if Uid::from_raw(report.uid) == me && report.gid == getegid().as_raw() {
        "you"
    } else {
        "another user"
    };
    println!(
        "semid {}: {} semaphore(s), mode {:03o}, {owner} = {who}",
        report.semid, report.nsems, report.mode
    );
    if report.otime == 0 {
        println!("sem_otime: 0 (no semop yet)");
    } else {
        println!("sem_otime: set (a semop has run)");
    }
    println!("semnum  semval  semncnt  semzcnt  sempid");
    for (num, sem) in report.semaphores.iter().enumerate() {
        let pid = sem.last_pid.map_or(0, |pid| pid.as_raw());
        println!(
            "{num:<6}  {:<6}  {:<7}  {:<7}  {pid}",
            sem.value, sem.ncnt, sem.zcnt
        );
    }
}
// ANCHOR_END: print_report

/// Polls GETNCNT or GETZCNT every 5 ms until it reaches the wanted count;
/// gives up at the time limit, or as soon as process `watch` has ended.
fn wait_for(
    target: &Target,
    ncnt: Option<u16>,
    zcnt: Option<u16>,
    limit: Duration,
    watch: Option<i32>,
) -> anyhow::Result<()> {
    let set = open(&target.key_file)?;
    let num = target.num;
    let deadline = Instant::now() + limit;
    loop {
        let (name, now, wanted) = match (ncnt, zcnt) {
            (Some(wanted), _) => ("semncnt", set.get_ncnt(num).context("GETNCNT")?, wanted),
            (None, Some(wanted)) => ("semzcnt", set.get_zcnt(num).context("GETZCNT")?, wanted),
            (None, None) => bail!("wait-for: give --ncnt or --zcnt"),
        };
        if now == wanted {
            return Ok(());
        }
        if let Some(pid) = watch
            && has_ended(pid)
        {
            bail!("{name} of semaphore {num} is {now}, not {wanted}, and process {pid} has ended");
        }
        if Instant::now() >= deadline {
            bail!(
                "{name} of semaphore {num} is {now}, not {wanted}, after {} ms",
                limit.as_millis()
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` has ended: gone, or a zombie (state `Z` in
/// `/proc/PID/stat`) that its parent has not reaped yet.
fn has_ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().next())
            .is_none_or(|state| state == "Z"),
        Err(_) => true,
    }
}

/// Values separated by spaces: `1 0 2`.
fn join(values: &[u16]) -> String {
    let words: Vec<String> = values.iter().map(u16::to_string).collect();
    words.join(" ")
}

/// Parses permission bits written in octal, such as `600` or `0640`.
fn parse_mode(text: &str) -> Result<u16, String> {
    u16::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mode between 000 and 777"))
}
