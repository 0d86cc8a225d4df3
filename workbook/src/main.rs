//! `cargo workbook`: the course's command-line companion.
//!
//! For students it grades the labs (`grade`, `watch`), gives hints
//! (`hint`), starts a lab over (`reset`), checks the machine (`doctor`) and
//! removes what interrupted tests left behind (`clean`). For course authors
//! and instructors it checks everything the course promises (`verify`),
//! records the files that decide a grade (`manifest`), makes the student
//! repository (`handout`), and builds or serves the book with a pinned
//! mdBook (`build`, `serve`). Run it from anywhere inside the checkout; the
//! alias in `.cargo/config.toml` turns `cargo workbook …` into
//! `cargo run --package workbook -- …`.

#[cfg(target_os = "linux")]
mod clean;
#[cfg(target_os = "linux")]
mod doctor;
mod drift;
mod grade;
mod handout;
mod hint;
mod junit;
mod libtest;
mod manifest;
mod mdbook;
mod process;
mod reset;
mod verify;
mod watch;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workspace::Workspace;

/// Companion tool of the Linux IPC workbook: grade your labs, get hints,
/// read the book.
///
/// Run it from anywhere inside the course checkout as `cargo workbook <COMMAND>`.
/// A LAB is named by its number (`02`), directory (`02-pipes`) or topic (`pipes`).
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
    /// First it checks that the files that decide a grade (tests/, the Cargo.toml
    /// files, .config/insta.yaml) are as shipped, by their checksums in
    /// tests/MANIFEST.sha256, and warns on the first line when they are not.
    ///
    /// Exit status: 0 when every graded lab is done, 1 otherwise.
    Grade {
        /// The lab to grade: number (`02`), directory (`02-pipes`) or topic
        /// (`pipes`); all labs when omitted
        lab: Option<String>,
        /// Print a JSON document instead of the scoreboard (for scripts and
        /// classroom tools)
        #[arg(long)]
        json: bool,
        /// Also write the results as JUnit XML to FILE (for CI services and
        /// learning platforms)
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Grade a lab again each time you save one of its files
    ///
    /// Grades the lab (or every lab) once, then again whenever a file under
    /// labs/NN-topic/ changes, showing the lab's new score. Press Enter to grade
    /// again by hand; type q and Enter, or press Ctrl-C, to stop.
    ///
    /// Changes are noticed at once through file change events, and in any case
    /// within a second: the files are also compared every second, for file
    /// systems that send no events (network shares, some container mounts).
    Watch {
        /// The lab to watch: number (`02`), directory (`02-pipes`) or topic
        /// (`pipes`); all labs when omitted
        lab: Option<String>,
        /// Do not use file change events; only compare the files every second
        #[arg(long)]
        poll: bool,
    },
    /// Show a hint for a lab's TODO, one more each time you ask
    ///
    /// Without N, the TODO is the first one whose function still calls todo!().
    /// The first call shows its first hint; each later call shows the next one,
    /// from a nudge to nearly the answer. What you have seen is remembered in
    /// target/workbook/hints.toml (delete it to start over).
    Hint {
        /// The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`)
        lab: String,
        /// The TODO number, as in `// TODO(N)` and task N of the chapter
        #[arg(value_name = "N")]
        todo: Option<u32>,
        /// Show every hint of the TODO at once
        #[arg(long)]
        all: bool,
    },
    /// Put a lab's files back as they were shipped (your changes are lost)
    ///
    /// Lists the lab's files that differ from the shipped version (recorded in
    /// labs/MANIFEST.sha256 and found in the git history), asks, then puts them
    /// back. Your version is first copied to target/workbook/reset/, just in
    /// case. Files you added are left alone.
    Reset {
        /// The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`)
        lab: String,
        /// Do not ask (needed when there is no terminal to ask on)
        #[arg(long, short)]
        yes: bool,
    },
    /// Check that this machine is ready for the labs
    ///
    /// Reports, each with ok, warn or FAIL and a fix: Linux and the kernel
    /// version; whether System V and POSIX IPC work; their limits (msgmnb,
    /// msgmax, msgmni, the semaphore limits, shmmax, shmall, shmmni); /dev/shm and
    /// /dev/mqueue; RLIMIT_MSGQUEUE and RLIMIT_NOFILE; a C compiler; ipcs and
    /// ipcrm; leftovers of earlier grading runs; the book tool.
    ///
    /// Exit status: 0 unless a check failed.
    Doctor,
    /// Remove what interrupted grading runs left behind (only that)
    ///
    /// A test that is killed (Ctrl-C during a grade, a crash) cannot clean up
    /// after the program it ran. The grader names what it creates after its test
    /// process: sandbox directories $TMPDIR/workbook-<pid>-*, POSIX IPC names
    /// /wb<pid>x<n>-*, and System V keys made by ftok from key files in the
    /// sandbox. clean removes, for your user only:
    ///
    ///   - sandboxes whose test process <pid> is gone;
    ///   - processes still running inside such a sandbox;
    ///   - POSIX shared memory, semaphores and message queues named
    ///     wb<pid>x<n>-… whose test process is gone;
    ///   - System V objects whose key comes from such a sandbox's key file,
    ///     unless a process is attached, waiting, or was the last to use
    ///     them and still runs.
    ///
    /// Everything else stays: IPC_PRIVATE objects (nothing says who made them),
    /// other programs' keys, anything of a test still running. Everything found
    /// is listed before it is removed.
    #[command(verbatim_doc_comment)]
    Clean {
        /// Only list what would be removed
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Run every check CI runs on the course (for course authors)
    ///
    /// Checks formatting and lints, that every solution passes and every
    /// untouched lab fails its suite, that labs and solutions have not drifted
    /// apart, that the checksum manifests are up to date, that the runs left
    /// snapshots and the machine clean, and that the book builds. Every step
    /// runs even after an earlier one failed; the steps are listed under --skip.
    ///
    /// Exit status: 0 when every step passed, 1 otherwise.
    Verify {
        /// Skip a step (repeatable), e.g. `--skip book --skip clippy` for a quick
        /// local run; CI runs them all
        #[arg(long, value_name = "STEP")]
        skip: Vec<verify::Step>,
    },
    /// Rewrite the checksum manifests after changing tests or labs (for course
    /// authors)
    ///
    /// tests/MANIFEST.sha256 records the files that decide a grade (tests/, the
    /// workspace and lab Cargo.toml files, .config/insta.yaml): `grade` warns when
    /// they differ. labs/MANIFEST.sha256 records every file of every lab as
    /// shipped: `reset` puts them back. Review your changes, then run this;
    /// `verify` fails while the manifests are out of date.
    Manifest {
        /// Only check that the manifests match the checkout (exit status 1 if not)
        #[arg(long)]
        check: bool,
    },
    /// Make the repository students get, without the solutions (for instructors)
    ///
    /// Copies the course to DIR (which must be new or empty) without solutions/
    /// and their workspace members, .git/, target/ and the course's CI; writes a
    /// README and justfile for students, fresh checksum manifests, and
    /// .github/workflows/classroom.yml: GitHub Classroom autograding with one test
    /// per lab (`cargo test -p TOPIC --test TOPIC`) worth --points each. The copy
    /// builds as it is, and `cargo test` in each lab grades it.
    Handout {
        /// Where to write the student repository (new or empty)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Make it a git repository with one commit, ready to push as a template
        #[arg(long)]
        git: bool,
        /// Points each lab is worth in the autograding workflow
        #[arg(long, value_name = "N", default_value_t = 10)]
        points: u32,
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
  cargo workbook watch 02       grade lab 02 each time you save a file of it
  cargo workbook hint 02        a hint for the next TODO of lab 02
  cargo workbook doctor         is this machine ready for the labs?
  cargo workbook serve --open   read the book in your browser";

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
    let ws = match (Workspace::discover(&cwd), &cli.command) {
        (Ok(ws), _) => ws,
        // The machine checks work outside a checkout too.
        (Err(_), Command::Doctor) => return doctor(None),
        (Err(_), Command::Clean { dry_run }) => return clean(*dry_run),
        (Err(err), _) => return Err(err),
    };
    match cli.command {
        Command::Grade { lab, json, junit } => {
            let output = grade::Output {
                json,
                junit: junit.as_deref(),
            };
            grade::run(&ws, lab.as_deref(), &output, &cwd)
        }
        Command::Watch { lab, poll } => watch::run(&ws, lab.as_deref(), poll),
        Command::Hint { lab, todo, all } => hint::run(&ws, &lab, todo, all),
        Command::Reset { lab, yes } => reset::run(&ws, &lab, yes),
        Command::Doctor => doctor(Some(&ws)),
        Command::Clean { dry_run } => clean(dry_run),
        Command::Verify { skip } => verify::run(&ws, &skip),
        Command::Manifest { check } => manifest::run(&ws, check),
        Command::Handout { dir, git, points } => {
            let options = handout::Options {
                dest: &dir,
                git,
                points,
            };
            handout::run(&ws, &options, &cwd)
        }
        Command::Serve { port, open } => mdbook::serve(&ws, port, open),
        Command::Build { dest } => mdbook::build(&ws, dest.as_deref(), &cwd),
    }
}

/// `doctor`, which needs Linux to say more than that it is not Linux.
fn doctor(ws: Option<&Workspace>) -> anyhow::Result<ExitCode> {
    #[cfg(target_os = "linux")]
    return doctor::run(ws);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ws;
        not_linux()
    }
}

/// `clean`, which only knows Linux's IPC objects.
fn clean(dry_run: bool) -> anyhow::Result<ExitCode> {
    #[cfg(target_os = "linux")]
    return clean::run(dry_run);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dry_run;
        not_linux()
    }
}

/// What `doctor` and `clean` say anywhere but on Linux.
#[cfg(not(target_os = "linux"))]
fn not_linux() -> anyhow::Result<ExitCode> {
    println!(
        "[FAIL] this is {}, not Linux: the labs call Linux system calls\n       \
         fix: work in a Linux virtual machine, WSL 2 or a container (chapter 00 explains how)",
        std::env::consts::OS
    );
    Ok(ExitCode::FAILURE)
}
