//! `cargo workbook verify`: everything CI checks, in one command.
//!
//! Each step prints `[ok] step (1.2 s)` or `[FAIL] step (1.2 s)` with the
//! reasons beneath (and notes, such as the figures of the mistakes step). A failed step never stops the later ones, so one run
//! shows every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::drift;
use crate::mistakes::{self, leftovers};
use workbook::grade::{self, State, Target};
use workbook::process::{self, Status};
use workbook::workspace::Workspace;
use workbook::{UsageError, manifest, mdbook};

/// The steps of `verify`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Step {
    /// cargo fmt --all --check
    Fmt,
    /// cargo clippy --workspace --all-targets -- -D warnings
    Clippy,
    /// every reference solution passes its whole suite
    Solutions,
    /// every untouched lab compiles and fails every graded test
    Stubs,
    /// every lab's classic mistakes are caught by its suite, 5 runs each; the
    /// book's quotes and the grading guide's examples match the runs
    Mistakes,
    /// lab and solution share signatures, docs, CLI, dependencies, TODO numbers
    Drift,
    /// tests/MANIFEST.sha256 and labs/MANIFEST.sha256 match the checkout
    Manifest,
    /// the test runs changed nothing in tests/ and left no pending snapshot
    Snapshots,
    /// the book builds without warnings (pinned mdBook)
    Book,
    /// the runs left no System V object and nothing new in /dev/shm
    Leftovers,
}

impl Step {
    /// Every step, in order.
    const ALL: [Step; 10] = [
        Step::Fmt,
        Step::Clippy,
        Step::Solutions,
        Step::Stubs,
        Step::Mistakes,
        Step::Drift,
        Step::Manifest,
        Step::Snapshots,
        Step::Book,
        Step::Leftovers,
    ];

    /// The step's name, as `--skip` takes it.
    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Solutions => "solutions",
            Step::Stubs => "stubs",
            Step::Mistakes => "mistakes",
            Step::Drift => "drift",
            Step::Manifest => "manifest",
            Step::Snapshots => "snapshots",
            Step::Book => "book",
            Step::Leftovers => "leftovers",
        }
    }
}

/// How many reasons a failed step lists before it says how many it left out.
const MAX_REASONS: usize = 30;

/// What the machine and the tree looked like before the test runs.
struct Baseline {
    /// Live IPC objects (see [`ipc_objects`]).
    ipc: BTreeMap<String, Vec<i32>>,
    /// `git status --porcelain -- tests/` lines, or `None` if git failed.
    tests_status: Option<BTreeSet<String>>,
}

/// Runs `cargo workbook verify [--skip STEP]…`.
pub fn run(ws: &Workspace, skip: &[Step]) -> Result<ExitCode> {
    if !ws.has_solutions() {
        return Err(UsageError(
            "verify checks the course itself and needs its solutions/, which this student \
             copy does not have; grade your labs with `cargo workbook grade`"
                .to_string(),
        )
        .into());
    }
    let status = Status::new();
    let mut baseline = None;
    let mut failed = Vec::new();
    for step in Step::ALL {
        if step == Step::Solutions {
            baseline = Some(Baseline {
                ipc: ipc_objects(),
                tests_status: git_status_tests(ws).ok(),
            });
        }
        if skip.contains(&step) {
            println!("[skip] {}", step.name());
            continue;
        }
        status.show(&format!("[..] {} …", step.name()));
        let started = Instant::now();
        let outcome = run_step(ws, step, baseline.as_ref(), &status);
        status.clear();
        let seconds = started.elapsed().as_secs_f64();
        let (reasons, notes) = match outcome {
            Ok(findings) => findings,
            Err(err) => (vec![format!("{err:#}")], Vec::new()),
        };
        if reasons.is_empty() {
            println!("[ok] {} ({seconds:.1} s)", step.name());
        } else {
            println!("[FAIL] {} ({seconds:.1} s)", step.name());
            print_reasons(&reasons);
            failed.push(step.name());
        }
        for note in &notes {
            println!("    note: {note}");
        }
        // A failed flush only delays the line; the next println retries.
        let _ = std::io::stdout().flush();
    }
    let ran = Step::ALL.iter().filter(|s| !skip.contains(s)).count();
    if failed.is_empty() {
        println!(
            "\nverify: every step passed ({ran} run, {} skipped)",
            Step::ALL.len() - ran
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "\nverify: {} failed: {}",
            plural(failed.len(), "step"),
            failed.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Prints the reasons of a failed step, indented, at most [`MAX_REASONS`].
fn print_reasons(reasons: &[String]) {
    for reason in reasons.iter().take(MAX_REASONS) {
        for line in reason.lines() {
            println!("    {line}");
        }
    }
    if reasons.len() > MAX_REASONS {
        println!("    … and {} more", reasons.len() - MAX_REASONS);
    }
}

/// `1 step`, `2 steps`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Runs one step: the reasons it failed (empty when it passed), and notes
/// to show either way.
fn run_step(
    ws: &Workspace,
    step: Step,
    baseline: Option<&Baseline>,
    status: &Status,
) -> Result<(Vec<String>, Vec<String>)> {
    if step == Step::Mistakes {
        let findings = mistakes::step(ws, status)?;
        return Ok((findings.problems, findings.notes));
    }
    run_plain_step(ws, step, baseline, status).map(|reasons| (reasons, Vec::new()))
}

/// Runs a step that has no notes.
fn run_plain_step(
    ws: &Workspace,
    step: Step,
    baseline: Option<&Baseline>,
    status: &Status,
) -> Result<Vec<String>> {
    match step {
        Step::Mistakes => unreachable!("run_step runs it"),
        Step::Fmt => fmt(ws),
        Step::Clippy => clippy(ws),
        Step::Solutions => solutions(ws, status),
        Step::Stubs => stubs(ws, status),
        Step::Drift => Ok(ws
            .labs
            .iter()
            .flat_map(|lab| drift::check_lab(ws, lab))
            .collect()),
        Step::Manifest => manifest::stale(ws),
        Step::Snapshots => snapshots(ws, baseline),
        Step::Book => {
            // The first use installs mdBook, and cargo shows its own progress.
            status.clear();
            book(ws)
        }
        Step::Leftovers => Ok(leftovers(ws, baseline)),
    }
}

/// `cargo fmt --all --check`: the files that are not formatted.
fn fmt(ws: &Workspace) -> Result<Vec<String>> {
    let mut cmd = process::cargo(&ws.root);
    cmd.args(["fmt", "--all", "--check"]);
    let out = process::capture(&mut cmd)?;
    if out.success {
        return Ok(Vec::new());
    }
    let root = format!("{}/", ws.root.display());
    let mut files: Vec<String> = Vec::new();
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("Diff in ") {
            let place = rest.trim_end_matches(':').replace(&root, "");
            let file = place.split([' ', ':']).next().unwrap_or(&place).to_string();
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    if files.is_empty() {
        return Ok(vec![tail(&out.combined(), 10)]);
    }
    let mut reasons = vec!["not formatted (run `cargo fmt --all`):".to_string()];
    reasons.extend(files.into_iter().map(|f| format!("  {f}")));
    Ok(reasons)
}

/// `cargo clippy --workspace --all-targets -- -D warnings`: each diagnostic
/// with its location.
fn clippy(ws: &Workspace) -> Result<Vec<String>> {
    let mut cmd = process::cargo(&ws.root);
    cmd.args(["clippy", "--workspace", "--all-targets", "--color", "never"])
        .args(["--", "-D", "warnings"]);
    let out = process::capture(&mut cmd)?;
    if out.success {
        return Ok(Vec::new());
    }
    let found = diagnostics(&out.stderr);
    if found.is_empty() {
        return Ok(vec![tail(&out.stderr, 10)]);
    }
    Ok(found)
}

/// The `error…`/`warning…` lines of compiler output that carry a location,
/// joined with it: `error: unused variable: `x` --> src/lib.rs:3:9`.
fn diagnostics(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !(line.starts_with("error") || line.starts_with("warning")) {
            continue;
        }
        let location = lines
            .get(i + 1)
            .and_then(|next| next.trim_start().strip_prefix("--> "));
        if let Some(location) = location {
            found.push(format!("{line} --> {}", location.trim()));
        }
    }
    found
}

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Every solution passes every test of its suite.
fn solutions(ws: &Workspace, status: &Status) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    for lab in &ws.labs {
        status.show(&format!("[..] solutions: {} …", lab.name));
        let graded = grade::grade(ws, lab, Target::Solution)?;
        let dir = format!("solutions/{}", lab.name);
        if let Some(error) = &graded.error {
            reasons.push(format!("{dir} does not compile: {error}"));
        } else if graded.total == 0 {
            reasons.push(format!("{dir}: the suite ran no tests"));
        } else {
            for test in graded.tests.iter().filter(|t| !t.passed) {
                reasons.push(format!(
                    "{dir}: test {} fails on the solution: {}",
                    test.name,
                    first_line(test.message.as_deref())
                ));
            }
            if graded.tests.len() < graded.total {
                reasons.push(format!(
                    "{dir}: only {} of {} tests reported a result (did the test binary crash?)",
                    graded.tests.len(),
                    graded.total
                ));
            }
        }
    }
    Ok(reasons)
}

/// Every untouched lab compiles and fails every graded test.
fn stubs(ws: &Workspace, status: &Status) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    for lab in &ws.labs {
        status.show(&format!("[..] stubs: {} …", lab.name));
        let graded = grade::grade(ws, lab, Target::Lab)?;
        let dir = format!("labs/{}", lab.name);
        if graded.state == State::DoesNotCompile {
            let error = graded.error.as_deref().unwrap_or("no message");
            reasons.push(format!("{dir} does not compile: {error}"));
        } else if graded.total == 0 {
            reasons.push(format!("{dir}: the suite ran no tests"));
        }
        for test in graded.tests.iter().filter(|t| t.passed) {
            reasons.push(format!(
                "{dir}: test {} passes on the stub: it cannot tell a solved lab from an unsolved one",
                test.name
            ));
        }
    }
    Ok(reasons)
}

/// The first line of a test's message.
fn first_line(message: Option<&str>) -> &str {
    message
        .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim()
}

/// `tests/` is as it was committed, and no pending snapshot exists.
fn snapshots(ws: &Workspace, baseline: Option<&Baseline>) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    let before = baseline.and_then(|b| b.tests_status.as_ref());
    for line in git_status_tests(ws)? {
        let when = if before.is_some_and(|b| b.contains(&line)) {
            "not committed (already so before verify ran)"
        } else {
            "changed by the test runs"
        };
        reasons.push(format!(
            "{line}: {when}; CI needs tests/ exactly as committed"
        ));
    }
    let mut pending = Vec::new();
    find_pending_snapshots(&ws.root, &mut pending)?;
    pending.sort();
    for path in pending {
        reasons.push(format!(
            "{}: pending snapshot (a run wrote it; review with `cargo insta review` or delete it)",
            ws.relative(&path).display()
        ));
    }
    Ok(reasons)
}

/// `git status --porcelain -- tests/`, one entry per line.
fn git_status_tests(ws: &Workspace) -> Result<BTreeSet<String>> {
    let mut cmd = Command::new("git");
    cmd.current_dir(&ws.root)
        .args(["status", "--porcelain", "--", "tests/"]);
    let out = process::capture(&mut cmd)?;
    if !out.success {
        anyhow::bail!(
            "`git status` failed: {}",
            out.stderr.lines().next().unwrap_or("no message")
        );
    }
    Ok(out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// Collects every `*.snap.new` and `*.pending-snap` under `dir`, skipping
/// `target` and `.git` directories and not following symbolic links.
fn find_pending_snapshots(dir: &Path, found: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot inspect {}", entry.path().display()))?;
        if kind.is_dir() {
            if name != "target" && name != ".git" {
                find_pending_snapshots(&entry.path(), found)?;
            }
        } else if name.ends_with(".snap.new") || name.ends_with(".pending-snap") {
            found.push(entry.path());
        }
    }
    Ok(())
}

/// Builds the book into a scratch directory: it must build, and say
/// nothing about warnings or errors.
fn book(ws: &Workspace) -> Result<Vec<String>> {
    let dest = std::env::temp_dir().join(format!("workbook-book-{}", std::process::id()));
    let out = mdbook::build_captured(ws, &dest);
    if let Err(err) = fs::remove_dir_all(&dest)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("workbook: cannot remove {}: {err}", dest.display());
    }
    let out = out?;
    let mut reasons: Vec<String> = out
        .combined()
        .lines()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .map(|line| line.trim().to_string())
        .collect();
    if !out.success && reasons.is_empty() {
        reasons.push(format!(
            "mdbook build failed:\n{}",
            tail(&out.combined(), 10)
        ));
    }
    Ok(reasons)
}

/// The IPC objects that appeared since the baseline and are still there
/// a second later, unless a live process owns them, and any program built
/// in this workspace's `target/` that is still running (a lab or solution
/// program the grader failed to stop).
///
/// Every run of `verify` has ended when this step runs, so an object still
/// used by a live process (the last to use a System V object, or the test
/// process a POSIX name `wb<pid>x…` is named after) belongs to someone
/// else's run on this machine, as does one that goes away at once.
fn leftovers(ws: &Workspace, baseline: Option<&Baseline>) -> Vec<String> {
    let before = baseline.map(|b| b.ipc.clone()).unwrap_or_default();
    let new: Vec<String> = ipc_objects()
        .into_keys()
        .filter(|object| !before.contains_key(object))
        .collect();
    let mut reasons = Vec::new();
    if !new.is_empty() {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let now = ipc_objects();
        reasons.extend(
            new.into_iter()
                .filter(|object| {
                    now.get(object)
                        .is_some_and(|pids| !pids.iter().any(|pid| leftovers::is_alive(*pid)))
                })
                .map(|object| format!("left behind: {object}")),
        );
    }
    reasons.extend(
        running_programs(&ws.root.join("target"))
            .into_iter()
            .map(|program| format!("still running: {program}")),
    );
    reasons
}

/// Processes whose executable lies under `target` (read from
/// `/proc/PID/exe`), other than the course's own commands, described as
/// `pid 123 (target/debug/pipes) (kill 123)`.
fn running_programs(target: &std::path::Path) -> Vec<String> {
    const OWN_COMMANDS: [&str; 3] = ["workbook", "cargo-workbook", "workbook-admin"];
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(exe) = fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        let name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
        if !exe.starts_with(target) || name.is_some_and(|n| OWN_COMMANDS.contains(&n.as_str())) {
            continue;
        }
        found.push(format!("pid {pid} ({}) (kill {pid})", exe.display()));
    }
    found
}

/// Every live System V object (from `/proc/sysvipc`) and every entry of
/// `/dev/shm` and `/dev/mqueue`, described with the command that removes
/// it, with the pids that tell whose it is.
fn ipc_objects() -> BTreeMap<String, Vec<i32>> {
    let mut objects = BTreeMap::new();
    for object in leftovers::sysv_objects() {
        objects.insert(object.describe(), object.pids.clone());
    }
    // POSIX message queues are visible only where the mqueue file system is
    // mounted (conventionally on /dev/mqueue).
    for dir in ["/dev/shm", "/dev/mqueue"] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let pids = leftovers::grader_pid(&name).into_iter().collect();
            objects.insert(format!("{} (rm {})", path.display(), path.display()), pids);
        }
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_carry_their_location() {
        let out = "    Checking pipes v0.1.0\n\
                   error: unused variable: `fd`\n  --> labs/02-pipes/src/lib.rs:9:8\n   |\n\
                   error: could not compile `pipes` (lib) due to 1 previous error\n";
        assert_eq!(
            diagnostics(out),
            ["error: unused variable: `fd` --> labs/02-pipes/src/lib.rs:9:8"]
        );
    }

    #[test]
    fn step_names_match_the_command_line() {
        for step in Step::ALL {
            let parsed = Step::from_str(step.name(), false).expect("a known step");
            assert_eq!(parsed, step);
        }
    }

    #[test]
    fn a_program_built_in_target_that_still_runs_is_found() {
        let target = std::env::temp_dir().join(format!("verify-target-{}", std::process::id()));
        fs::create_dir_all(&target).expect("a scratch directory");
        let program = target.join("lab-program");
        fs::copy("/bin/sleep", &program).expect("a copy of sleep");
        let mut child = std::process::Command::new(&program)
            .arg("30")
            .spawn()
            .expect("the copy runs");
        let found = running_programs(&target);
        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_dir_all(&target);
        let pid = child.id();
        assert_eq!(
            found,
            [format!("pid {pid} ({}) (kill {pid})", program.display())]
        );
    }
}
