//! `cargo workbook`: the course's command-line companion.
//!
//! It grades the labs (`grade`), checks everything the course promises before
//! a release or in CI (`verify`), and builds or serves the book with a pinned
//! mdBook (`build`, `serve`). Run it from anywhere inside the checkout; the
//! alias in `.cargo/config.toml` turns `cargo workbook …` into
//! `cargo run --package workbook -- …`.

mod drift;
mod grade;
mod libtest;
mod mdbook;
mod process;
mod verify;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workspace::Workspace;

/// Companion tool of the Linux IPC workbook: grade your labs, read the book.
///
/// Run it from anywhere inside the course checkout as `cargo workbook <COMMAND>`.
#[derive(Debug, Parser)]
#[command(name = "cargo workbook", bin_name = "cargo workbook", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Grade your labs and print a scoreboard
    ///
    /// Runs each lab's grading suite (`cargo test -p TOPIC --test TOPIC`) and shows,
    /// per lab, how many tests pass, whether the lab is not started, in progress or
    /// done, and the first failing test with the start of its message. For the full
    /// output of one lab, run `cargo test` inside its directory.
    ///
    /// Exit status: 0 when every graded lab is done, 1 otherwise.
    Grade {
        /// The lab to grade, as a number (`02`), a directory name (`02-pipes`) or
        /// a topic (`pipes`); all labs when omitted
        lab: Option<String>,
        /// Print a JSON document instead of the scoreboard (for scripts and
        /// classroom tools)
        #[arg(long)]
        json: bool,
    },
    /// Run every check CI runs on the course (for course authors)
    ///
    /// Checks formatting and lints, that every solution passes and every
    /// untouched lab fails its suite, that labs and solutions have not drifted
    /// apart, that the runs left snapshots and the machine clean, and that the
    /// book builds. Every step runs even after an earlier one failed; the steps
    /// are listed under --skip.
    ///
    /// Exit status: 0 when every step passed, 1 otherwise.
    Verify {
        /// Skip a step (repeatable), e.g. `--skip book --skip clippy` for a quick
        /// local run; CI runs them all
        #[arg(long, value_name = "STEP")]
        skip: Vec<verify::Step>,
    },
    /// Serve the book on this machine and rebuild it when a page changes
    ///
    /// Installs the pinned mdBook into the target directory on first use (it
    /// compiles it, which takes a few minutes), then serves the book on
    /// http://127.0.0.1:PORT/. Set WORKBOOK_MDBOOK=/path/to/mdbook to use an
    /// mdBook you already have instead.
    Serve {
        /// Port to listen on
        #[arg(long, short, default_value_t = 3000)]
        port: u16,
        /// Open the book in your web browser
        #[arg(long)]
        open: bool,
    },
    /// Build the book as static HTML (to read offline or publish)
    ///
    /// Installs the pinned mdBook into the target directory on first use, like
    /// `serve`. Set WORKBOOK_MDBOOK=/path/to/mdbook to use an mdBook you already
    /// have instead.
    Build {
        /// Where to write the HTML [default: book/book]
        #[arg(long, short, value_name = "DIR")]
        dest: Option<PathBuf>,
    },
}

/// Shown after the top-level help.
const EXAMPLES: &str = "\
Examples:
  cargo workbook grade          grade every lab
  cargo workbook grade 02       grade one lab (also: 02-pipes, pipes)
  cargo workbook serve --open   read the book in your browser
  cargo workbook build          write the book as HTML into book/book";

/// An error in how the tool was invoked (unknown lab, not inside the course):
/// reported like any error, but with exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("workbook: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Finds the checkout and runs one command.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
    let ws = Workspace::discover(&cwd)?;
    match cli.command {
        Command::Grade { lab, json } => grade::run(&ws, lab.as_deref(), json),
        Command::Verify { skip } => verify::run(&ws, &skip),
        Command::Serve { port, open } => mdbook::serve(&ws, port, open),
        Command::Build { dest } => mdbook::build(&ws, dest.as_deref(), &cwd),
    }
}
