//! `cargo workbook`: the course's command-line companion.
//!
//! For students it grades the labs (`grade`, `watch`), gives hints
//! (`hint`), starts a lab over (`reset`), traces what a test ran (`trace`),
//! checks the machine (`doctor`),
//! removes what interrupted tests left behind (`clean`), and builds or
//! serves the book with a pinned mdBook (`build`, `serve`). Run it from
//! anywhere inside the checkout; the alias in `.cargo/config.toml` turns
//! `cargo workbook …` into `cargo run --package workbook -- …`.
//!
//! The commands of course authors and instructors (`verify`, `manifest`,
//! `handout`, `mistakes`, `measure`) live in the `workbook-admin` package,
//! which needs heavier dependencies (a Rust parser for the drift check):
//! this program runs it with `cargo run --package workbook-admin`, with the
//! same arguments, and exits with its status. A student copy made by
//! `handout` has no `workbook-admin/`, so a student's first command
//! compiles only this light package.

mod cli;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context;
use workbook::plan::{Granularity, Scoring};
use workbook::workspace::Workspace;
use workbook::{UsageError, grade, hint, mdbook, process, reset, score, trace, watch};

use crate::cli::Parsed;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => workbook::report_error(&err),
    }
}

/// Parses the command line and runs one command.
fn run(args: &[OsString]) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
    let admin = has_admin(&cwd);
    let parsed = match cli::parse(args, admin)? {
        cli::Outcome::Print { text, code } => {
            if code == 0 {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            return Ok(ExitCode::from(code));
        }
        cli::Outcome::Admin { command, args } => return run_admin(&cwd, &command, &args),
        cli::Outcome::Run(parsed) => parsed,
    };
    let ws = match (Workspace::discover(&cwd), parsed.command) {
        (Ok(ws), _) => ws,
        // The machine checks work outside a checkout too.
        (Err(_), "doctor") => return doctor(None),
        (Err(_), "clean") => return clean(parsed.flag("dry-run")),
        (Err(_), "score") => return run_score(&parsed, &cwd),
        (Err(err), _) => return Err(err),
    };
    run_command(&ws, &parsed, &cwd)
}

/// Runs a student command inside the checkout `ws`.
fn run_command(ws: &Workspace, parsed: &Parsed, cwd: &Path) -> anyhow::Result<ExitCode> {
    match parsed.command {
        "grade" => {
            let scoring = scoring(parsed)?;
            let output = grade::Output {
                json: parsed.flag("json"),
                json_file: parsed.value("json-file").map(Path::new),
                junit: parsed.value("junit").map(Path::new),
                csv: parsed.value("csv").map(Path::new),
                scoring,
            };
            grade::run(ws, parsed.positional(0), &output, cwd)
        }
        "score" => run_score(parsed, cwd),
        "watch" => watch::run(ws, parsed.positional(0), parsed.flag("poll")),
        "hint" => {
            let lab = parsed.positional(0).context("hint needs a LAB")?;
            let todo = parsed.positional(1).map(cli::todo_number).transpose()?;
            hint::run(ws, lab, todo, parsed.flag("all"))
        }
        "reset" => {
            let lab = parsed.positional(0).context("reset needs a LAB")?;
            reset::run(ws, lab, parsed.flag("yes"))
        }
        "trace" => {
            let request = trace::Request {
                lab: parsed.positional(0).context("trace needs a LAB")?,
                test: parsed.positional(1).context("trace needs a TEST")?,
                seed: parsed.value("seed"),
                with: parsed.value("with"),
                filter: parsed.value("filter"),
            };
            trace::run(ws, &request)
        }
        "doctor" => doctor(Some(ws)),
        "clean" => clean(parsed.flag("dry-run")),
        "serve" => {
            let port = parsed.value("port").map(cli::port).transpose()?;
            mdbook::serve(ws, port.unwrap_or(3000), parsed.flag("open"))
        }
        "build" => mdbook::build(ws, parsed.value("dest").map(Path::new), cwd),
        other => unreachable!("the parser knows no command {other}"),
    }
}

/// `score FILE LAB [--task N | --test NAME] [--max N] [--classroom]`,
/// which needs no checkout: it only reads FILE.
fn run_score(parsed: &Parsed, cwd: &Path) -> anyhow::Result<ExitCode> {
    let file = parsed.positional(0).context("score needs a FILE")?;
    let lab = parsed.positional(1).context("score needs a LAB")?;
    let unit = match (parsed.value("task"), parsed.value("test")) {
        (Some(_), Some(_)) => {
            return Err(UsageError(
                "give --task or --test, not both (usage: cargo workbook score \
                     [--task N | --test NAME] FILE LAB)"
                    .to_string(),
            )
            .into());
        }
        (Some(task), None) => score::Unit::Task(cli::number("task", task)?),
        (None, Some(test)) => score::Unit::Test(test.to_string()),
        (None, None) => score::Unit::Lab,
    };
    let request = score::Request {
        file: &cwd.join(file),
        lab,
        unit,
        max: parsed
            .value("max")
            .map(|m| cli::number("max", m))
            .transpose()?,
        classroom: parsed.flag("classroom"),
    };
    score::run(&request)
}

/// `--granularity` and `--points` of `grade`.
fn scoring(parsed: &Parsed) -> anyhow::Result<Scoring> {
    let mut scoring = Scoring::default();
    if let Some(word) = parsed.value("granularity") {
        scoring.granularity =
            Granularity::parse(word).map_err(|err| UsageError(format!("{err}")))?;
    }
    if let Some(word) = parsed.value("points") {
        scoring.per_test = cli::number("points", word)?;
    }
    Ok(scoring)
}

/// False inside a student copy, which has no `workbook-admin/`: there the
/// instructors' commands do not exist. Outside any checkout they are known
/// (and fail, like every command, for want of a checkout).
fn has_admin(cwd: &Path) -> bool {
    Workspace::discover(cwd).map_or(true, |ws| admin_manifest(&ws).is_file())
}

/// `workbook-admin/Cargo.toml` of the checkout.
fn admin_manifest(ws: &Workspace) -> std::path::PathBuf {
    ws.root.join("workbook-admin").join("Cargo.toml")
}

/// Runs an instructors' command: `cargo run --package workbook-admin --
/// COMMAND ARGS…` from the current directory, with its exit status.
fn run_admin(cwd: &Path, command: &str, args: &[OsString]) -> anyhow::Result<ExitCode> {
    let ws = Workspace::discover(cwd)?;
    if !admin_manifest(&ws).is_file() {
        return Err(UsageError(format!(
            "`{command}` is for course authors and instructors, and this student copy does not \
             have workbook-admin/, which runs it; grade your labs with `cargo workbook grade`"
        ))
        .into());
    }
    let mut cmd = Command::new(process::cargo_program());
    cmd.arg("run");
    // The first use compiles the package (a minute or so): let cargo say so.
    let built = std::env::current_exe()
        .map(|exe| exe.with_file_name("workbook-admin").is_file())
        .unwrap_or(false);
    if built {
        cmd.arg("--quiet");
    } else {
        eprintln!(
            "workbook: building the instructors' commands (workbook-admin; first use only) …"
        );
    }
    cmd.arg("--manifest-path")
        .arg(ws.root.join("Cargo.toml"))
        .args(["--package", "workbook-admin", "--"])
        .arg(command)
        .args(args);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run `{}`", process::describe(&cmd)))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// `doctor`, which needs Linux to say more than that it is not Linux.
fn doctor(ws: Option<&Workspace>) -> anyhow::Result<ExitCode> {
    #[cfg(target_os = "linux")]
    return workbook::doctor::run(ws);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ws;
        not_linux()
    }
}

/// `clean`, which only knows Linux's IPC objects.
fn clean(dry_run: bool) -> anyhow::Result<ExitCode> {
    #[cfg(target_os = "linux")]
    return workbook::clean::run(dry_run);
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
