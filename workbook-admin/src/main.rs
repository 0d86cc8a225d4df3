//! `cargo workbook verify | manifest | handout | mistakes | measure`: the
//! course CLI's commands for course authors and instructors.
//!
//! They live apart from the student commands (package `workbook`) because
//! they need heavier dependencies (a Rust parser for the drift check, clap,
//! serde): the student commands compile in seconds without them. The
//! `workbook` binary runs this one (`cargo run --package workbook-admin --
//! COMMAND …`) for these commands, so `cargo workbook verify` works as it
//! always did. The student copy made by `handout` leaves this package out,
//! like the solutions.

mod classroom;
mod drift;
mod gradebook;
mod guide;
mod handout;
mod measure;
mod mistakes;
mod pages;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use workbook::manifest;
use workbook::workspace::Workspace;

/// The commands of course authors and instructors of the Linux IPC
/// workbook (run as `cargo workbook <COMMAND>`).
#[derive(Debug, Parser)]
#[command(name = "cargo workbook", bin_name = "cargo workbook", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// Copies the course to DIR (which must be new or empty) without solutions/,
    /// workbook-admin/ (these commands), the instructor's guide and their workspace
    /// members, .git/, target/ and the course's CI; takes instructor-only passages
    /// out of the book; writes a README and justfile for students, fresh checksum
    /// manifests, and .github/workflows/classroom.yml: GitHub Classroom
    /// autograding that compiles once and gives each test (or task, or lab) its
    /// own grading step and points, with the grading manifest's SHA-256 pinned.
    /// The copy builds as it is, and `cargo test` in each lab grades it.
    ///
    /// With --labs, only those labs (and their suites and chapters) are handed
    /// out; with --per-lab, DIR receives one such repository per lab, each with
    /// its own README, workflow and points, so that each lab can be its own
    /// Classroom assignment with its own deadline.
    Handout {
        /// Where to write the student repository (new or empty)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Make it a git repository with one commit, ready to push as a template
        #[arg(long)]
        git: bool,
        /// Points per graded test; a task or lab is worth the sum of its tests'
        #[arg(long, value_name = "N", default_value_t = 1)]
        points: u32,
        /// How points are earned: each passing test (`test`), each task whose
        /// tests all pass (`task`), each lab whose tests all pass (`lab`)
        #[arg(long, value_name = "UNIT", default_value = "test")]
        granularity: String,
        /// Hand out only these labs (numbers, directories or topics, comma-separated)
        #[arg(long, value_name = "LAB,…", value_delimiter = ',')]
        labs: Vec<String>,
        /// Write one repository per lab, into DIR/NN-topic/
        #[arg(long)]
        per_lab: bool,
    },
    /// Collect students' `grade --json` files into one table (for instructors)
    ///
    /// Reads every JSON file under DIR that `cargo workbook grade --json` wrote
    /// (e.g. the `grade` artifacts of the autograding runs, one folder per
    /// student) and prints one row per student: the commit graded and when, the
    /// points, and per lab the tests passed of all and whether its grading files
    /// were as shipped. A student is named by the file (`alice.json`) or, for a
    /// file called grade.json, by its folder (`alice/grade.json`).
    Gradebook {
        /// The folder of JSON files
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Also write the table as CSV to FILE
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
    /// List a lab's classic mistakes, or prove that its suite catches them
    /// (for course authors)
    ///
    /// Each lab keeps its classic mistakes in solutions/NN-topic/mistakes.toml:
    /// small changes to the reference solution, each with the tests that must
    /// catch it and a phrase their failure must contain. Without --run, lists
    /// them: name, what it gets wrong, which tests catch it.
    ///
    /// --run applies each mistake to a scratch copy of the solution (under the
    /// target directory, never the checkout), runs the tests it names --repeat
    /// times at once, and fails unless every run of every one fails with the
    /// phrase, in time, leaving no process, sandbox or IPC object behind. It
    /// also checks the quote files the book's Pitfalls include
    /// (book/src/mistakes/NN-topic/NAME.txt) and the grading guide's examples
    /// (book/src/generated/) against the runs; --write rewrites them.
    /// `verify` runs the same checks for every lab (step `mistakes`).
    ///
    /// Exit status: 0 when every mistake is caught as promised, 1 otherwise.
    Mistakes {
        /// The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`);
        /// all labs when omitted
        lab: Option<String>,
        /// Run the mistakes, not only list them
        #[arg(long)]
        run: bool,
        /// Run them, and rewrite the quote files and the grading guide's
        /// examples from the runs
        #[arg(long)]
        write: bool,
        /// Runs of each mistake's tests (verify makes 5)
        #[arg(long, value_name = "N", default_value_t = mistakes::REPEAT as u32,
              value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
    },
    /// Time the student's edit → test loop in every lab (for course authors)
    ///
    /// For each lab, in copies under the target directory: the cold build
    /// (`cargo test --no-run` in the lab with an empty target directory), the
    /// median of 5 `cargo test` runs after a one-line edit of src/lib.rs on the
    /// stub and on the lab solved (the solution's src/lib.rs put in the lab),
    /// the median of 5 runs of the solved suite alone, and which targets an
    /// edit rebuilt. Prints a table; the figures depend on this machine and
    /// its load. Not a test: it fails only when something cannot be measured.
    Measure {
        /// The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`);
        /// all labs when omitted
        lab: Option<String>,
        /// Leave out the cold builds (a minute or more per lab)
        #[arg(long)]
        no_cold: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => workbook::report_error(&err),
    }
}

/// Finds the checkout and runs one command.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
    let ws = Workspace::discover(&cwd)?;
    match cli.command {
        Command::Verify { skip } => verify::run(&ws, &skip),
        Command::Manifest { check } => manifest_command(&ws, check),
        Command::Handout {
            dir,
            git,
            points,
            granularity,
            labs,
            per_lab,
        } => {
            let granularity = workbook::plan::Granularity::parse(&granularity)
                .map_err(|err| workbook::UsageError(format!("{err}")))?;
            let options = handout::Options {
                dest: &dir,
                git,
                scoring: workbook::plan::Scoring {
                    granularity,
                    per_test: points,
                },
                labs: &labs,
                per_lab,
            };
            handout::run(&ws, &options, &cwd)
        }
        Command::Gradebook { dir, csv } => gradebook::run(&cwd.join(dir), csv.as_deref(), &cwd),
        Command::Mistakes {
            lab,
            run,
            write,
            repeat,
        } => {
            let options = mistakes::Options {
                run,
                write,
                repeat: repeat as usize,
            };
            mistakes::command(&ws, lab.as_deref(), options)
        }
        Command::Measure { lab, no_cold } => measure::command(&ws, lab.as_deref(), !no_cold),
    }
}

/// Runs `cargo workbook manifest [--check]`.
fn manifest_command(ws: &Workspace, check: bool) -> anyhow::Result<ExitCode> {
    use manifest::Kind;
    if check {
        let reasons = manifest::stale(ws)?;
        if reasons.is_empty() {
            println!(
                "{} and {} match the checkout.",
                Kind::Grading.file(),
                Kind::Labs.file()
            );
            return Ok(ExitCode::SUCCESS);
        }
        for reason in reasons {
            println!("{reason}");
        }
        return Ok(ExitCode::FAILURE);
    }
    for (kind, count) in manifest::write(ws)? {
        println!("wrote {} ({count} files)", kind.file());
    }
    Ok(ExitCode::SUCCESS)
}
