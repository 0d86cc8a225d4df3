//! The `processes` command line (given: you do not need to change this file).
//!
//! Each subcommand calls one of the functions you write in `lib.rs` and
//! prints its result. Errors are reported on one line, `processes: …`, with
//! exit status 1; usage mistakes exit with status 2.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nix::sys::signal::{Signal, raise};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use super::{describe_status, exec_with_fds, fan_out, greet, run_program};

/// Lab 01: create processes with fork, replace them with exec, reap them
/// with waitpid.
#[derive(Parser, Debug)]
#[command(name = "processes", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe raw wait statuses, as waitpid stores them in its int (TODO 1).
    ///
    /// Examples: 768 (exit status 3 in bits 8-15), 15 (SIGTERM in the low 7
    /// bits), 139 (SIGSEGV plus the core-dump bit 0x80), 4991 (0x137f:
    /// stopped by SIGSTOP).
    Decode {
        /// Raw status values.
        #[arg(required = true)]
        raw: Vec<i32>,
    },
    /// Run PROGRAM with its arguments in a child and report how it ended
    /// (TODO 1 and 2).
    Run {
        /// The program and its arguments, as a shell would split them.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// Start N children at once (child k exits with status k), then reap
    /// them all and report each in creation order (TODO 3).
    Fanout {
        /// How many children to start (0 to 100).
        #[arg(value_parser = clap::value_parser!(u8).range(0..=100))]
        n: u8,
    },
    /// Parent and child both write through one buffered stdout; the child
    /// exits with STATUS (TODO 4).
    Greet {
        /// The status the child exits with (0 to 255).
        #[arg(default_value_t = 0)]
        status: u8,
    },
    /// Open FILE with and without O_CLOEXEC, then exec `processes show-fds`
    /// to see which descriptor survives exec (TODO 5).
    Inherit {
        /// Any readable file.
        file: PathBuf,
    },
    /// List the open descriptors above 2 of this process (used by inherit).
    ShowFds,
    /// Send this process the signal SIGNAL, e.g. SIGTERM (for experiments).
    Raise {
        /// A signal name such as SIGTERM or SIGSEGV.
        signal: Signal,
    },
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("processes: {error:#}"));
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
        // ANCHOR: cli_decode
        Command::Decode { raw } => {
            for status in raw {
                let decoded = WaitStatus::from_raw(Pid::from_raw(1), status)?;
                println!("{status:#06x}: {}", describe_status(decoded));
            }
        }
        // ANCHOR_END: cli_decode
        // ANCHOR: cli_run
        Command::Run { argv } => {
            let status = run_program(&argv)?;
            println!("{}", describe_status(status));
        }
        // ANCHOR_END: cli_run
        // ANCHOR: cli_fanout
        Command::Fanout { n } => {
            let statuses = fan_out(n)?;
            for (k, status) in statuses.iter().enumerate() {
                println!("child {}: {}", k + 1, describe_status(*status));
            }
            println!("reaped {} of {n} children", statuses.len());
        }
        // ANCHOR_END: cli_fanout
        // ANCHOR: cli_greet
        Command::Greet { status } => {
            let mut out = BufWriter::new(io::stdout());
            let status = greet(&mut out, status)?;
            writeln!(out, "parent: the child {}", describe_status(status))?;
            out.flush()?;
        }
        // ANCHOR_END: cli_greet
        // ANCHOR: cli_inherit
        Command::Inherit { file } => {
            let status = exec_with_fds(&file)?;
            println!("show-fds {}", describe_status(status));
        }
        // ANCHOR_END: cli_inherit
        Command::ShowFds => show_fds()?,
        Command::Raise { signal } => raise(signal)?,
    }
    Ok(())
}

// ANCHOR: show_fds
/// Prints `fd N -> TARGET` for every open descriptor above 2, read from
/// `/proc/self/fd` (each entry is a symbolic link to what the fd refers to).
fn show_fds() -> anyhow::Result<()> {
    let listing = std::fs::read_dir("/proc/self/fd")?;
    let mut fds = Vec::new();
    for entry in listing {
        let entry = entry?;
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // The directory being listed is itself an open descriptor: skip it.
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        if fd > 2 && !target.starts_with("/proc/") {
            fds.push((fd, target));
        }
    }
    fds.sort();
    for (fd, target) in fds {
        println!("fd {fd} -> {}", target.display());
    }
    Ok(())
}
// ANCHOR_END: show_fds
