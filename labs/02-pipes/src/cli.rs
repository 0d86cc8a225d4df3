//! The `pipes` command line (given: you do not need to change this file).
//!
//! Each subcommand calls one of the functions you write in `lib.rs` and
//! prints its result. Errors are reported on one line, `pipes: …`, with exit
//! status 1; usage mistakes exit with status 2.

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nix::sys::wait::WaitStatus;

use super::{count_in_child, gather_records, pipe_limits, pipeline, write_numbers};

/// Lab 02: pipes between related processes.
#[derive(Parser, Debug)]
#[command(name = "pipes", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print PIPE_BUF and the capacity of a new pipe (TODO 1).
    Limits {
        /// Ask for a pipe that holds at least BYTES first (F_SETPIPE_SZ).
        #[arg(long, value_name = "BYTES")]
        capacity: Option<usize>,
    },
    /// Send standard input through a pipe to a child that counts it (TODO 2).
    Count,
    /// Print the numbers 1 to COUNT, one per line, and stop quietly if the
    /// reader goes away (TODO 3).
    Numbers {
        /// How many numbers to print.
        count: u64,
    },
    /// Run LEFT | RIGHT, joined by a pipe, like a shell (TODO 4).
    #[command(override_usage = "pipes pipeline LEFT [ARGS...] -- RIGHT [ARGS...]")]
    Pipeline {
        /// The left command, `--`, then the right command.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// WRITERS children each write RECORDS records of SIZE bytes into one
    /// pipe; the parent checks that no record was torn (TODO 5).
    Gather {
        /// How many writer processes (1 to 26).
        #[arg(value_parser = clap::value_parser!(u8).range(1..=26))]
        writers: u8,
        /// Bytes per record, newline included (2 to 1048576).
        #[arg(value_parser = clap::value_parser!(u32).range(2..=1_048_576))]
        size: u32,
        /// Records per writer (1 to 100000).
        #[arg(value_parser = clap::value_parser!(u32).range(1..=100_000))]
        records: u32,
    },
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(code) => code,
        Err(error) => {
            print_error(&format!("pipes: {error:#}"));
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

fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        // ANCHOR: cli_limits
        Command::Limits { capacity } => {
            let limits = pipe_limits(capacity)?;
            println!("PIPE_BUF: {} bytes", limits.pipe_buf);
            println!("capacity: {} bytes", limits.capacity);
        }
        // ANCHOR_END: cli_limits
        // ANCHOR: cli_count
        Command::Count => {
            let mut input = Vec::new();
            io::stdin().read_to_end(&mut input)?;
            let status = count_in_child(&input)?;
            println!("parent: the child {}", describe(status));
        }
        // ANCHOR_END: cli_count
        // ANCHOR: cli_numbers
        Command::Numbers { count } => {
            let mut out = BufWriter::new(io::stdout().lock());
            write_numbers(count, &mut out)?;
        }
        // ANCHOR_END: cli_numbers
        // ANCHOR: cli_pipeline
        Command::Pipeline { words } => {
            let (left, right) = split_pipeline(&words)?;
            let (_, right_status) = pipeline(left, right)?;
            return Ok(shell_exit_code(right_status));
        }
        // ANCHOR_END: cli_pipeline
        Command::Gather {
            writers,
            size,
            records,
        } => {
            let tally = gather_records(writers, size as usize, records)?;
            let mut out = io::stdout().lock();
            writeln!(out, "records: {}", tally.records)?;
            writeln!(out, "intact: {}", tally.intact)?;
            for (writer, count) in tally.intact_per_writer.iter().enumerate() {
                writeln!(out, "writer {}: {count} intact", writer + 1)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits `LEFT… -- RIGHT…` at the `--`.
fn split_pipeline(words: &[String]) -> anyhow::Result<(&[String], &[String])> {
    match words.iter().position(|word| word == "--") {
        Some(at) if at > 0 && at + 1 < words.len() => Ok((&words[..at], &words[at + 1..])),
        _ => anyhow::bail!("pipeline: expected LEFT [ARGS...] -- RIGHT [ARGS...]"),
    }
}

/// "exited with status 0", "killed by signal SIGPIPE".
fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("was killed by signal {}", signal.as_str()),
        other => format!("{other:?}"),
    }
}

// ANCHOR: shell_exit_code
/// The exit status a shell gives a pipeline: that of its last command, or
/// 128 + the signal number if a signal killed it.
fn shell_exit_code(status: WaitStatus) -> ExitCode {
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => 1,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
// ANCHOR_END: shell_exit_code
