//! `cargo workbook grade`: run the grading suites and print a scoreboard
//! (or JSON, a CSV, a JUnit XML file).
//!
//! A grade counts only if the files that decide it are as shipped. The
//! tamper check compares them with `tests/MANIFEST.sha256` (see
//! [`crate::manifest`]) before anything is built, again after each lab is
//! built (a `build.rs` runs code at build time) and again after its suite
//! has run (the lab's program runs at test time): a change seen at any of
//! these moments fails every lab it concerns, with the reason, in the
//! scoreboard, the JSON, the CSV and the JUnit report, and `grade` exits
//! with status 1. So does a test report that does not add up (a test
//! reported twice, or a passing run whose test binary did not finish).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::json::Json;
use crate::libtest::{self, Outcome};
use crate::manifest::{self, Tamper};
use crate::plan::{Granularity, Points, Scoring, SuitePlan};
use crate::process::{self, Captured, Progress};
use crate::workspace::{Lab, LabToml, Workspace};
use crate::{junit, workspace};

/// Which crate of a lab to grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The student's crate in `labs/` (package `topic`).
    Lab,
    /// The reference solution in `solutions/` (package `topic-solution`).
    Solution,
}

/// Where a lab stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Compiles, but no graded test passes yet.
    NotStarted,
    /// Some graded tests pass.
    InProgress,
    /// Every graded test passes.
    Done,
    /// The crate or its suite does not build.
    DoesNotCompile,
    /// The files that decide its grade were changed, or its test report
    /// does not add up: graded as failed, whatever its tests said.
    Tampered,
}

impl State {
    /// The words shown on the scoreboard.
    fn label(self) -> &'static str {
        match self {
            State::NotStarted => "not started",
            State::InProgress => "in progress",
            State::Done => "done",
            State::DoesNotCompile => "does not compile",
            State::Tampered => "FAILED: grading files changed",
        }
    }

    /// The name `--json` and JUnit use: `not-started`, `in-progress`,
    /// `done`, `does-not-compile`, `tampered`.
    pub fn name(self) -> &'static str {
        match self {
            State::NotStarted => "not-started",
            State::InProgress => "in-progress",
            State::Done => "done",
            State::DoesNotCompile => "does-not-compile",
            State::Tampered => "tampered",
        }
    }
}

/// The grade of one lab (one element of `--json`'s `labs` array).
#[derive(Debug, Clone)]
pub struct LabGrade {
    /// The lab's directory name, e.g. `02-pipes`.
    pub lab: String,
    /// Its title from `lab.toml`, e.g. `Pipes (管道)` (empty if unreadable).
    pub title: String,
    /// The package that was graded, e.g. `pipes`.
    pub package: String,
    /// Graded tests that pass.
    pub passed: usize,
    /// Graded tests (ignored tests do not count). Known from the suite's
    /// source even when the lab does not compile.
    pub total: usize,
    /// Where the lab stands.
    pub state: State,
    /// Why the build failed, for [`State::DoesNotCompile`] (left out of
    /// the JSON otherwise).
    pub error: Option<String>,
    /// Why the grade does not count, for [`State::Tampered`].
    pub tamper: Option<String>,
    /// Every graded test, in the suite's order.
    pub tests: Vec<TestGrade>,
    /// The lab's tasks with their tests (filled in by [`score`]).
    pub tasks: Vec<TaskGrade>,
    /// The lab's points (filled in by [`score`]).
    pub points: Points,
}

/// One graded test.
#[derive(Debug, Clone)]
pub struct TestGrade {
    /// The test's name, which says the behaviour it checks.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// For a failed test, what it said (the first line is the useful one).
    pub message: Option<String>,
    /// The task it belongs to, when the suite says.
    pub task: Option<u32>,
    /// Its points, when points are given test by test.
    pub points: Option<Points>,
}

/// One task of a lab and how its tests did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskGrade {
    /// The TODO number; `None` gathers the tests of no task.
    pub number: Option<u32>,
    /// The task in one line, from `lab.toml`.
    pub summary: String,
    /// Its tests, by name.
    pub tests: Vec<String>,
    /// How many of them pass.
    pub passed: usize,
    /// Its points, when points are given task by task or test by test.
    pub points: Option<Points>,
}

impl LabGrade {
    /// This grade as an element of `--json`'s `labs` array.
    pub fn to_json(&self) -> Json {
        let mut pairs = vec![
            ("lab", Json::string(&self.lab)),
            ("title", Json::string(&self.title)),
            ("package", Json::string(&self.package)),
            ("passed", Json::number(self.passed as u64)),
            ("total", Json::number(self.total as u64)),
            ("state", Json::string(self.state.name())),
        ];
        if let Some(error) = &self.error {
            pairs.push(("error", Json::string(error)));
        }
        pairs.push((
            "grading_files_as_shipped",
            Json::Bool(self.tamper.is_none()),
        ));
        pairs.push(("tamper", Json::optional_string(self.tamper.as_deref())));
        pairs.push(("points", points_json(Some(self.points))));
        let tasks = self.tasks.iter().map(TaskGrade::to_json).collect();
        pairs.push(("tasks", Json::Array(tasks)));
        let tests = self.tests.iter().map(TestGrade::to_json).collect();
        pairs.push(("tests", Json::Array(tests)));
        Json::object(pairs)
    }

    /// The failing test to show first: the one for the earliest task, so a
    /// student is sent to TODO 1 before TODO 3; then in suite order.
    pub fn first_failure(&self) -> Option<&TestGrade> {
        self.tests.iter().filter(|t| !t.passed).min_by_key(|t| {
            t.task
                .unwrap_or_else(|| task_number(t.message.as_deref().unwrap_or("")))
        })
    }

    /// True when the lab counts as done: every test passes and nothing
    /// was tampered with.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

impl TestGrade {
    /// This test as an element of a lab's `tests` array in `--json`.
    pub fn to_json(&self) -> Json {
        Json::object([
            ("name", Json::string(&self.name)),
            ("task", self.task.map_or(Json::Null, Json::number)),
            ("passed", Json::Bool(self.passed)),
            ("message", Json::optional_string(self.message.as_deref())),
            ("points", points_json(self.points)),
        ])
    }
}

impl TaskGrade {
    /// This task as an element of a lab's `tasks` array in `--json`.
    pub fn to_json(&self) -> Json {
        Json::object([
            ("task", self.number.map_or(Json::Null, Json::number)),
            ("summary", Json::string(&self.summary)),
            ("passed", Json::number(self.passed as u64)),
            ("total", Json::number(self.tests.len() as u64)),
            (
                "tests",
                Json::Array(self.tests.iter().map(Json::string).collect()),
            ),
            ("points", points_json(self.points)),
        ])
    }
}

/// `{"earned": …, "possible": …}`, or `null`.
fn points_json(points: Option<Points>) -> Json {
    points.map_or(Json::Null, |p| {
        Json::object([
            ("earned", Json::number(p.earned)),
            ("possible", Json::number(p.possible)),
        ])
    })
}

/// The task number in a grader message (`section "Task 3: …"`), or
/// `u32::MAX` when it names none.
fn task_number(message: &str) -> u32 {
    message
        .split("section \"Task ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

/// Everything one `grade` run found.
#[derive(Debug)]
pub struct Graded {
    /// One grade per lab, in the order graded.
    pub labs: Vec<LabGrade>,
    /// Everything the tamper checks found, over all of them.
    pub tamper: Tamper,
    /// When each check ran, e.g. `before building`, `after building 02-pipes`.
    pub checks: Vec<String>,
}

/// When and what was graded, for the gradebook.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The commit graded (`$GITHUB_SHA`, else `git rev-parse HEAD`).
    pub commit: Option<String>,
    /// Whether the checkout had changes not committed (`None`: unknown).
    pub clean: Option<bool>,
    /// When grading started, RFC 3339 in UTC.
    pub started_at: String,
    /// How long it took, in seconds.
    pub duration: f64,
}

/// The `--json` document.
#[derive(Debug)]
struct Report<'a> {
    graded: &'a Graded,
    provenance: &'a Provenance,
    scoring: Scoring,
}

impl Report<'_> {
    fn to_json(&self) -> Json {
        let graded = self.graded;
        let total = graded
            .labs
            .iter()
            .fold(Points::default(), |sum, lab| sum + lab.points);
        Json::object([
            ("format", Json::string("workbook-grade/2")),
            ("workbook_version", Json::string(env!("CARGO_PKG_VERSION"))),
            (
                "commit",
                Json::optional_string(self.provenance.commit.as_deref()),
            ),
            (
                "worktree_clean",
                self.provenance.clean.map_or(Json::Null, Json::Bool),
            ),
            ("started_at", Json::string(&self.provenance.started_at)),
            ("duration_seconds", Json::decimal(self.provenance.duration)),
            ("granularity", Json::string(self.scoring.granularity.name())),
            ("points_per_test", Json::number(self.scoring.per_test)),
            ("points", points_json(Some(total))),
            (
                "labs",
                Json::Array(graded.labs.iter().map(LabGrade::to_json).collect()),
            ),
            (
                "grading_files",
                GradingFiles::from(&graded.tamper, &graded.checks).to_json(),
            ),
        ])
    }
}

/// The tamper check in `--json`.
#[derive(Debug)]
struct GradingFiles<'a> {
    /// True when the files that decide a grade are as shipped, false when
    /// they differ or nobody can tell.
    as_shipped: bool,
    /// How they differ, e.g. `tests/02-pipes.rs: changed`.
    differences: Vec<String>,
    /// Why nobody can tell, if so.
    unknown: Option<String>,
    /// When they were checked.
    checks: &'a [String],
}

impl GradingFiles<'_> {
    fn from<'a>(tamper: &Tamper, checks: &'a [String]) -> GradingFiles<'a> {
        GradingFiles {
            as_shipped: tamper.is_as_shipped(),
            differences: tamper.paths(),
            unknown: match tamper {
                Tamper::NoManifest => {
                    Some(format!("{} is missing", manifest::Kind::Grading.file()))
                }
                Tamper::Unknown(why) => Some(why.clone()),
                _ => None,
            },
            checks,
        }
    }

    fn to_json(&self) -> Json {
        Json::object([
            ("as_shipped", Json::Bool(self.as_shipped)),
            (
                "differences",
                Json::Array(self.differences.iter().map(Json::string).collect()),
            ),
            ("unknown", Json::optional_string(self.unknown.as_deref())),
            (
                "checked",
                Json::Array(self.checks.iter().map(Json::string).collect()),
            ),
        ])
    }
}

/// How `grade` reports.
#[derive(Debug, Default)]
pub struct Output<'a> {
    /// Print JSON instead of the scoreboard.
    pub json: bool,
    /// Write the JSON to this file, at the end (the scoreboard still shows).
    /// A file opened before the labs run could be replaced while they run;
    /// this one is written after.
    pub json_file: Option<&'a Path>,
    /// Also write a JUnit XML report to this file.
    pub junit: Option<&'a Path>,
    /// Also write a CSV (one row per lab) to this file.
    pub csv: Option<&'a Path>,
    /// How tests turn into points.
    pub scoring: Scoring,
}

/// Runs `cargo workbook grade [LAB] [--json] [--junit FILE] [--csv FILE]
/// [--granularity G] [--points N]`; a relative FILE is taken from `cwd`.
pub fn run(ws: &Workspace, query: Option<&str>, output: &Output, cwd: &Path) -> Result<ExitCode> {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let labs = ws.select(query)?;
    if labs.is_empty() {
        eprintln!("workbook: there are no labs in labs/ yet");
    }
    let mut shown = None;
    let graded = grade_checked(ws, &labs, output.scoring, &mut |tamper| {
        // What the first check finds must be on screen before grading starts.
        if let Some(warning) = tamper.warning() {
            say(output.json, &format!("{warning}\n"));
        }
        shown = Some(tamper.clone());
    })?;
    if shown.as_ref() != Some(&graded.tamper)
        && let Some(warning) = graded.tamper.warning()
    {
        say(
            output.json,
            &format!("\nWhile grading, more changed:\n{warning}\n"),
        );
    }
    let provenance = Provenance {
        commit: commit(ws),
        clean: worktree_clean(ws),
        started_at: rfc3339(started_at),
        duration: clock.elapsed().as_secs_f64(),
    };
    let report = Report {
        graded: &graded,
        provenance: &provenance,
        scoring: output.scoring,
    };
    if output.json {
        println!("{}", report.to_json().pretty());
    } else {
        print!("{}", scoreboard(&graded.labs));
    }
    if let Some(file) = output.json_file {
        let path = workspace::lexically_normal(&cwd.join(file));
        fs::write(&path, format!("{}\n", report.to_json().pretty()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote the grade to {}", path.display());
    }
    if let Some(file) = output.csv {
        let path = workspace::lexically_normal(&cwd.join(file));
        fs::write(&path, csv(&graded, &provenance))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote the CSV to {}", path.display());
    }
    if let Some(file) = output.junit {
        let path = workspace::lexically_normal(&cwd.join(file));
        fs::write(&path, junit::report(&graded.labs, &graded.tamper))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote the JUnit report to {}", path.display());
    }
    Ok(exit_code(&graded.labs))
}

/// Prints a message: on standard error when standard output carries JSON,
/// on standard output (flushed) otherwise.
fn say(json: bool, text: &str) {
    if json {
        eprintln!("{text}");
    } else {
        println!("{text}");
        // A failed flush only delays the text.
        let _ = std::io::stdout().flush();
    }
}

/// 0 when every graded lab is done (and none was tampered with), 1 otherwise.
pub fn exit_code(grades: &[LabGrade]) -> ExitCode {
    if grades.iter().all(LabGrade::is_done) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Grades `labs` one after the other with a progress line, checking the
/// grading files around each build and each run (see [`grade_checked`]).
pub fn grade_all(ws: &Workspace, labs: &[&Lab]) -> Result<Vec<LabGrade>> {
    Ok(grade_checked(ws, labs, Scoring::default(), &mut |_| {})?.labs)
}

/// Grades `labs` one after the other, with a progress line: checks the
/// grading files, then for each lab builds its suite, checks again, runs
/// it, checks again. `first_check` sees the first check's result at once.
/// Every lab the checks' findings concern is graded as failed.
pub fn grade_checked(
    ws: &Workspace,
    labs: &[&Lab],
    scoring: Scoring,
    first_check: &mut dyn FnMut(&Tamper),
) -> Result<Graded> {
    let mut tamper = manifest::tamper_check(ws);
    first_check(&tamper);
    let mut checks = vec!["before building".to_string()];
    let mut progress = Progress::new(labs.len());
    let mut grades = Vec::new();
    for lab in labs {
        progress.step(&format!("grading {}", lab.name));
        let mut on_line = |line: &str| {
            if let Some(activity) = process::cargo_activity(line) {
                progress.note(&activity);
            }
        };
        let built = build(ws, lab, Target::Lab, &mut on_line)?;
        tamper = tamper.combine(manifest::tamper_check(ws));
        checks.push(format!("after building {}", lab.name));
        let graded = match built {
            Err(error) => does_not_compile(ws, lab, Target::Lab, error),
            Ok(()) => {
                let graded = grade_observed(ws, lab, Target::Lab, &mut on_line);
                tamper = tamper.combine(manifest::tamper_check(ws));
                checks.push(format!("after running {}", lab.name));
                graded?
            }
        };
        progress.clear();
        grades.push(graded);
    }
    for (grade, lab) in grades.iter_mut().zip(labs) {
        let reason = grade.tamper.take().or_else(|| tamper.reason_for(lab));
        if let Some(reason) = reason {
            grade.state = State::Tampered;
            grade.tamper = Some(reason);
        }
        let todos = LabToml::of(ws, lab).map(|t| t.todo).unwrap_or_default();
        score(grade, scoring, &todos);
    }
    Ok(Graded {
        labs: grades,
        tamper,
        checks,
    })
}

/// Runs one lab's (or solution's) grading suite and grades its output,
/// without the tamper check (for `verify`, which checks the course itself).
pub fn grade(ws: &Workspace, lab: &Lab, target: Target) -> Result<LabGrade> {
    let mut graded = grade_observed(ws, lab, target, &mut |_| {})?;
    let todos = LabToml::of(ws, lab).map(|t| t.todo).unwrap_or_default();
    score(&mut graded, Scoring::default(), &todos);
    Ok(graded)
}

/// The package graded for `target`.
fn package(lab: &Lab, target: Target) -> String {
    match target {
        Target::Lab => lab.package().to_string(),
        Target::Solution => lab.solution_package(),
    }
}

/// `cargo test -p PKG --test TOPIC …` with the grading environment.
fn cargo_test(ws: &Workspace, lab: &Lab, target: Target) -> std::process::Command {
    let mut cmd = process::cargo(&ws.root);
    cmd.args([
        "test",
        "-p",
        &package(lab, target),
        "--test",
        lab.test_target(),
    ])
    .args(["--no-fail-fast", "--color", "never"]);
    process::grading_env(&mut cmd);
    // insta finds the snapshots from here, whatever cargo's settings say.
    cmd.env("INSTA_WORKSPACE_ROOT", &ws.root);
    cmd
}

/// Builds the suite and the program without running anything: `Ok` when
/// it built, else the first compiler error.
fn build(
    ws: &Workspace,
    lab: &Lab,
    target: Target,
    on_line: &mut dyn FnMut(&str),
) -> Result<std::result::Result<(), String>> {
    let mut cmd = cargo_test(ws, lab, target);
    cmd.arg("--no-run");
    let captured = process::capture_streaming(&mut cmd, on_line)?;
    Ok(if captured.success {
        Ok(())
    } else {
        Err(build_error(&captured.stderr))
    })
}

/// The grade of a lab that did not build: every test of its suite fails.
fn does_not_compile(ws: &Workspace, lab: &Lab, target: Target, error: String) -> LabGrade {
    let mut graded = LabGrade {
        lab: lab.name.clone(),
        title: title(ws, lab),
        package: package(lab, target),
        passed: 0,
        total: 0,
        state: State::DoesNotCompile,
        error: Some(error),
        tamper: None,
        tests: Vec::new(),
        tasks: Vec::new(),
        points: Points::default(),
    };
    if let Ok(plan) = SuitePlan::of(ws, lab) {
        apply_plan(&mut graded, &plan);
    }
    graded
}

/// [`grade`], handing each line cargo writes on standard error to
/// `on_line` as it comes.
fn grade_observed(
    ws: &Workspace,
    lab: &Lab,
    target: Target,
    on_line: &mut dyn FnMut(&str),
) -> Result<LabGrade> {
    let mut cmd = cargo_test(ws, lab, target);
    let captured = process::capture_streaming(&mut cmd, on_line)?;
    let mut graded = from_output(lab, &package(lab, target), &captured);
    if let Ok(plan) = SuitePlan::of(ws, lab) {
        apply_plan(&mut graded, &plan);
    }
    graded.title = title(ws, lab);
    Ok(graded)
}

/// The lab's title from `lab.toml`, or nothing.
fn title(ws: &Workspace, lab: &Lab) -> String {
    LabToml::of(ws, lab)
        .map(|toml| toml.lab.title)
        .unwrap_or_default()
}

/// Completes a grade with what the suite's source says: the task of each
/// test, the suite's order, and the tests that never reported a result
/// (every test, when the lab did not compile), which count as failed.
fn apply_plan(graded: &mut LabGrade, plan: &SuitePlan) {
    for test in &mut graded.tests {
        test.task = plan.task_of(&test.name);
    }
    let why = match &graded.error {
        Some(error) => format!("the lab does not compile: {error}"),
        None => "this test never reported a result: the test binary stopped before it \
                 (a crash, or a test that killed it)"
            .to_string(),
    };
    for planned in &plan.tests {
        if !graded.tests.iter().any(|t| t.name == planned.name) {
            graded.tests.push(TestGrade {
                name: planned.name.clone(),
                passed: false,
                message: Some(why.clone()),
                task: planned.task,
                points: None,
            });
        }
    }
    graded.tests.sort_by_key(|t| plan.position(&t.name));
    graded.total = graded.total.max(graded.tests.len());
}

/// Puts `tests` in the order the suite defines them (libtest reports them
/// sorted by name). Suites are written task by task, so this order follows
/// the TODOs, and the first failure shown is the first thing to fix.
pub fn sort_in_suite_order(tests: &mut [TestGrade], suite: &str) {
    let position = |name: &str| suite.find(&format!("fn {name}(")).unwrap_or(usize::MAX);
    tests.sort_by_key(|test| position(&test.name));
}

/// Grades the captured output of `cargo test`.
///
/// A test reported more than once counts with its worst result (a
/// program under test can write to the harness's output, not erase it),
/// and a lab is done only when the whole `cargo test` succeeded.
pub fn from_output(lab: &Lab, package: &str, captured: &Captured) -> LabGrade {
    let run = libtest::parse(&captured.stdout);
    let built = !run.tests.is_empty() || run.announced > 0 || captured.success;
    let error = if built {
        None
    } else {
        Some(build_error(&captured.stderr))
    };
    let mut tests: Vec<TestGrade> = Vec::new();
    let mut reported: BTreeMap<&str, usize> = BTreeMap::new();
    for result in run.graded() {
        let passed = result.outcome == Outcome::Passed;
        *reported.entry(result.name.as_str()).or_default() += 1;
        match tests.iter_mut().find(|t| t.name == result.name) {
            Some(seen) => {
                if seen.passed && !passed {
                    seen.passed = false;
                    seen.message = result.message.clone();
                }
            }
            None => tests.push(TestGrade {
                name: result.name.clone(),
                passed,
                message: result.message.clone(),
                task: None,
                points: None,
            }),
        }
    }
    // Tests finish in whatever order the threads allow; sorting by name makes
    // the order the same on every run (the suite's order replaces it later).
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    let passed = tests.iter().filter(|t| t.passed).count();
    let total = tests.len().max(run.total());
    let twice: Vec<&str> = reported
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(name, _)| *name)
        .collect();
    let tamper = if !twice.is_empty() {
        Some(format!(
            "the test report does not add up: {} reported more than once (something other \
             than the test harness wrote to its output)",
            twice.join(", ")
        ))
    } else {
        None
    };
    let state = if !built {
        State::DoesNotCompile
    } else if tamper.is_some() {
        State::Tampered
    } else if passed == 0 {
        State::NotStarted
    } else if passed == total && captured.success {
        State::Done
    } else {
        State::InProgress
    };
    LabGrade {
        lab: lab.name.clone(),
        title: String::new(),
        package: package.to_string(),
        passed,
        total,
        state,
        error,
        tamper,
        tests,
        tasks: Vec::new(),
        points: Points::default(),
    }
}

/// Gives `graded` its tasks and points under `scoring`. A lab that was
/// tampered with earns nothing, whatever its tests did.
pub fn score(graded: &mut LabGrade, scoring: Scoring, todos: &[crate::workspace::Todo]) {
    let per_test = scoring.per_test;
    let void = graded.state == State::Tampered;
    let mut tasks: Vec<TaskGrade> = todos
        .iter()
        .map(|todo| TaskGrade {
            number: Some(todo.number),
            summary: todo.summary.clone(),
            tests: Vec::new(),
            passed: 0,
            points: None,
        })
        .collect();
    for test in &graded.tests {
        let index = match tasks.iter().position(|t| t.number == test.task) {
            Some(index) => index,
            None => {
                tasks.push(TaskGrade {
                    number: test.task,
                    summary: String::new(),
                    tests: Vec::new(),
                    passed: 0,
                    points: None,
                });
                tasks.len() - 1
            }
        };
        tasks[index].tests.push(test.name.clone());
        tasks[index].passed += usize::from(test.passed);
    }
    tasks.retain(|task| !task.tests.is_empty());
    tasks.sort_by_key(|task| task.number.unwrap_or(u32::MAX));
    let earned = |passed: bool| if passed && !void { per_test } else { 0 };
    let mut lab = Points::default();
    for test in &mut graded.tests {
        let points = Points::new(earned(test.passed), per_test);
        // A test of no task earns its points by itself with task granularity
        // too (it has a grading step of its own).
        let own = match scoring.granularity {
            Granularity::Test => true,
            Granularity::Task => test.task.is_none(),
            Granularity::Lab => false,
        };
        test.points = own.then_some(points);
        lab = lab + points;
    }
    for task in &mut tasks {
        let possible = per_test * task.tests.len() as u32;
        let by_test = Points::new(
            if void {
                0
            } else {
                per_test * task.passed as u32
            },
            possible,
        );
        task.points = match scoring.granularity {
            Granularity::Test => Some(by_test),
            // The tests of no task are not a task: each earns its own.
            Granularity::Task if task.number.is_none() => Some(by_test),
            Granularity::Task => Some(by_test.all_or_nothing()),
            Granularity::Lab => None,
        };
    }
    graded.points = match scoring.granularity {
        Granularity::Test => lab,
        Granularity::Task => tasks
            .iter()
            .filter_map(|t| t.points)
            .fold(Points::default(), |sum, points| sum + points),
        Granularity::Lab => {
            if graded.state == State::Done {
                lab
            } else {
                Points::new(0, lab.possible)
            }
        }
    };
    graded.tasks = tasks;
}

/// The first compiler error, or else cargo's last words.
fn build_error(stderr: &str) -> String {
    libtest::first_compile_error(stderr).unwrap_or_else(|| {
        let last = stderr.lines().rev().find(|line| !line.trim().is_empty());
        match last {
            Some(line) => line.trim().to_string(),
            None => "cargo test failed without saying why".to_string(),
        }
    })
}

/// The scoreboard: one row per lab, and for a lab that is not done the
/// first failing test with the start of its message.
pub fn scoreboard(grades: &[LabGrade]) -> String {
    let width = grades.iter().map(|g| g.lab.len()).max().unwrap_or(0).max(3);
    let mut out = format!("{:<width$}  {:>7}  STATE\n", "LAB", "PASSED");
    for grade in grades {
        let score = match grade.state {
            State::DoesNotCompile => "-".to_string(),
            _ => format!("{}/{}", grade.passed, grade.total),
        };
        out.push_str(&format!(
            "{:<width$}  {score:>7}  {}\n",
            grade.lab,
            grade.state.label()
        ));
        for line in explanation(grade) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    let done = grades.iter().filter(|g| g.state == State::Done).count();
    out.push_str(&format!("\n{done} of {} labs done.", grades.len()));
    if let Some(open) = grades
        .iter()
        .find(|g| g.state != State::Done && g.state != State::Tampered)
    {
        out.push_str(&format!(
            " For a lab's full test output: cd labs/{} && cargo test",
            open.lab
        ));
        if open.state != State::DoesNotCompile {
            let number = open.lab.split('-').next().unwrap_or(&open.lab);
            out.push_str(&format!(
                "\nStuck? `cargo workbook hint {number}` gives a hint for its next TODO."
            ));
        }
    }
    out.push('\n');
    out
}

/// The lines under a lab that is not done: why it fails, briefly.
fn explanation(grade: &LabGrade) -> Vec<String> {
    if let Some(reason) = &grade.tamper {
        return vec![shorten(reason)];
    }
    if let Some(error) = &grade.error {
        return vec![shorten(error)];
    }
    if grade.state == State::Done {
        return Vec::new();
    }
    if grade.total == 0 {
        return vec!["the suite ran no tests".to_string()];
    }
    let Some(failure) = grade.first_failure() else {
        return vec![
            "every test passed, but the test run did not finish cleanly (did the test binary \
             crash?)"
                .to_string(),
        ];
    };
    let mut lines = vec![format!("first failing test: {}", failure.name)];
    if let Some(message) = &failure.message {
        lines.extend(
            message
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .take(2)
                .map(shorten),
        );
    }
    lines
}

/// `line` cut to a screen's width, with an ellipsis when cut.
fn shorten(line: &str) -> String {
    const MAX: usize = 110;
    let line = line.trim();
    if line.chars().count() <= MAX {
        return line.to_string();
    }
    let cut: String = line.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

/// The CSV beside the JSON: one row per lab.
pub fn csv(graded: &Graded, provenance: &Provenance) -> String {
    let mut out = String::from(
        "commit,started_at,duration_seconds,lab,title,state,tests_passed,tests_total,\
         points_earned,points_possible,grading_files,reason\n",
    );
    for lab in &graded.labs {
        let files = if lab.tamper.is_some() {
            "changed"
        } else {
            "as-shipped"
        };
        let reason = lab.tamper.as_deref().or(lab.error.as_deref()).unwrap_or("");
        let fields = [
            provenance.commit.clone().unwrap_or_default(),
            provenance.started_at.clone(),
            format!("{:.1}", provenance.duration),
            lab.lab.clone(),
            lab.title.clone(),
            lab.state.name().to_string(),
            lab.passed.to_string(),
            lab.total.to_string(),
            lab.points.earned.to_string(),
            lab.points.possible.to_string(),
            files.to_string(),
            reason.to_string(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(out, "{}", row.join(","));
    }
    out
}

/// One CSV field, quoted when it must be (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The commit being graded: `$GITHUB_SHA` in GitHub Actions, else what
/// git says, else nothing.
fn commit(ws: &Workspace) -> Option<String> {
    if let Some(sha) = std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()) {
        return Some(sha);
    }
    let mut cmd = std::process::Command::new("git");
    cmd.current_dir(&ws.root).args(["rev-parse", "HEAD"]);
    let out = process::capture(&mut cmd).ok()?;
    let sha = out.stdout.trim();
    (out.success && !sha.is_empty()).then(|| sha.to_string())
}

/// Whether the checkout has no uncommitted change, as git says.
fn worktree_clean(ws: &Workspace) -> Option<bool> {
    let mut cmd = std::process::Command::new("git");
    cmd.current_dir(&ws.root)
        .args(["status", "--porcelain", "--untracked-files=no"]);
    let out = process::capture(&mut cmd).ok()?;
    out.success.then(|| out.stdout.trim().is_empty())
}

/// `time` as RFC 3339 in UTC, to the second: `2026-05-04T09:30:00Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(success: bool, stdout: &str, stderr: &str) -> Captured {
        Captured {
            success,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        }
    }

    fn pipes() -> Lab {
        Lab::from_dir_name("02-pipes").expect("valid lab name")
    }

    #[test]
    fn states_follow_the_counts() {
        let half = "running 2 tests\ntest a ... ok\ntest b ... FAILED\n\nfailures:\n\n\
                    ---- b stdout ----\nthread 'b' panicked at t.rs:1:1:\nclose the write end\n";
        let grade = from_output(&pipes(), "pipes", &captured(false, half, ""));
        assert_eq!(
            (grade.passed, grade.total, grade.state),
            (1, 2, State::InProgress)
        );
        let board = scoreboard(&[grade]);
        assert!(board.contains("02-pipes      1/2  in progress"), "{board}");
        assert!(
            board.contains("first failing test: b\n    close the write end"),
            "{board}"
        );

        let none = "running 1 test\ntest b ... FAILED\n";
        let grade = from_output(&pipes(), "pipes", &captured(false, none, ""));
        assert_eq!(grade.state, State::NotStarted);

        let all = "running 1 test\ntest a ... ok\n";
        let grade = from_output(&pipes(), "pipes", &captured(true, all, ""));
        assert_eq!(grade.state, State::Done);
    }

    #[test]
    fn a_build_failure_is_reported_with_the_first_error() {
        let stderr = "error[E0425]: cannot find value `fds`\n --> labs/02-pipes/src/lib.rs:3:9\n";
        let grade = from_output(&pipes(), "pipes", &captured(false, "", stderr));
        assert_eq!(grade.state, State::DoesNotCompile);
        let board = scoreboard(&[grade]);
        assert!(board.contains("does not compile"), "{board}");
        assert!(board.contains("cannot find value `fds` --> labs/02-pipes/src/lib.rs:3:9"));
    }

    fn todo(number: u32) -> crate::workspace::Todo {
        crate::workspace::Todo {
            number,
            functions: vec![format!("f{number}")],
            summary: format!("task {number}"),
            hints: Vec::new(),
        }
    }

    /// Lab 02 with three tests, two of task 1 and one of task 2, one failing.
    fn three_tests() -> LabGrade {
        let out = "running 3 tests\ntest a ... ok\ntest b ... ok\ntest c ... FAILED\n";
        let mut grade = from_output(&pipes(), "pipes", &captured(false, out, ""));
        let plan = SuitePlan::parse(
            "#[test]\nfn c() {\n    x.section(\"Task 2: two\");\n}\n\
             #[test]\nfn a() {\n    x.section(\"Task 1: one\");\n}\n\
             #[test]\nfn b() {\n    x.section(\"Task 1: one\");\n}\n",
        );
        apply_plan(&mut grade, &plan);
        grade
    }

    #[test]
    fn points_follow_the_granularity() {
        let todos = [todo(1), todo(2)];
        let mut by_test = three_tests();
        let order: Vec<&str> = by_test.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(order, ["c", "a", "b"], "the suite's order");
        score(
            &mut by_test,
            Scoring {
                granularity: Granularity::Test,
                per_test: 2,
            },
            &todos,
        );
        assert_eq!(by_test.points, Points::new(4, 6));
        assert_eq!(by_test.tests[1].points, Some(Points::new(2, 2)));
        assert_eq!(by_test.tasks[0].points, Some(Points::new(4, 4)));
        assert_eq!(by_test.tasks[1].tests, ["c"]);

        let mut by_task = three_tests();
        score(
            &mut by_task,
            Scoring {
                granularity: Granularity::Task,
                per_test: 1,
            },
            &todos,
        );
        assert_eq!(by_task.points, Points::new(2, 3));
        assert_eq!(by_task.tests[0].points, None);
        assert_eq!(by_task.tasks[1].points, Some(Points::new(0, 1)));

        let mut by_lab = three_tests();
        score(
            &mut by_lab,
            Scoring {
                granularity: Granularity::Lab,
                per_test: 1,
            },
            &todos,
        );
        assert_eq!(by_lab.points, Points::new(0, 3));
        assert_eq!(by_lab.tasks[0].points, None);

        let mut void = three_tests();
        void.state = State::Tampered;
        void.tamper = Some("tests/02-pipes.rs: changed".to_string());
        score(&mut void, Scoring::default(), &todos);
        assert_eq!(void.points, Points::new(0, 3));
        let board = scoreboard(&[void]);
        assert!(
            board.contains(
                "02-pipes      2/3  FAILED: grading files changed\n    tests/02-pipes.rs: changed"
            ),
            "{board}"
        );
    }

    #[test]
    fn a_lab_that_does_not_compile_still_has_its_total() {
        let stderr = "error[E0425]: cannot find value `fds`\n";
        let mut grade = from_output(&pipes(), "pipes", &captured(false, "", stderr));
        apply_plan(
            &mut grade,
            &SuitePlan::parse("#[test]\nfn a() {}\n#[test]\nfn b() {}\n"),
        );
        assert_eq!((grade.passed, grade.total), (0, 2));
        assert_eq!(
            grade.tests[0].message.as_deref(),
            Some("the lab does not compile: error[E0425]: cannot find value `fds`")
        );
    }

    #[test]
    fn a_test_reported_twice_voids_the_lab_and_counts_as_failed() {
        let out = "running 1 test\ntest a ... ok\ntest a ... FAILED\n";
        let grade = from_output(&pipes(), "pipes", &captured(false, out, ""));
        assert_eq!(grade.state, State::Tampered);
        assert_eq!(grade.passed, 0);
        assert!(
            grade
                .tamper
                .as_deref()
                .is_some_and(|t| t.contains("a reported more than once")),
            "{grade:?}"
        );
    }

    #[test]
    fn every_test_passing_in_a_failed_run_is_not_done() {
        let out = "running 1 test\ntest a ... ok\n";
        let grade = from_output(&pipes(), "pipes", &captured(false, out, ""));
        assert_eq!(grade.state, State::InProgress);
    }

    #[test]
    fn json_uses_kebab_case_states_and_carries_the_gradebook() {
        let mut grade = from_output(&pipes(), "pipes", &captured(false, "", "error: boom\n"));
        score(&mut grade, Scoring::default(), &[]);
        let graded = Graded {
            labs: vec![grade],
            tamper: Tamper::AsShipped,
            checks: vec!["before building".to_string()],
        };
        let provenance = Provenance {
            commit: Some("abc".to_string()),
            clean: Some(true),
            started_at: "2026-01-02T03:04:05Z".to_string(),
            duration: 12.34,
        };
        let report = Report {
            graded: &graded,
            provenance: &provenance,
            scoring: Scoring::default(),
        };
        let text = report.to_json().compact();
        for expected in [
            r#""commit":"abc","worktree_clean":true,"started_at":"2026-01-02T03:04:05Z","duration_seconds":12.3,"granularity":"test","points_per_test":1,"points":{"earned":0,"possible":0}"#,
            r#""state":"does-not-compile""#,
            r#""lab":"02-pipes","title":"","package":"pipes""#,
            r#""grading_files_as_shipped":true,"tamper":null"#,
            r#""grading_files":{"as_shipped":true,"differences":[],"unknown":null,"checked":["before building"]}"#,
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        let table = csv(&graded, &provenance);
        assert_eq!(
            table,
            "commit,started_at,duration_seconds,lab,title,state,tests_passed,tests_total,\
             points_earned,points_possible,grading_files,reason\n\
             abc,2026-01-02T03:04:05Z,12.3,02-pipes,,does-not-compile,0,0,0,0,as-shipped,error: boom\n"
        );
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn times_are_written_in_utc() {
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_199);
        assert_eq!(rfc3339(at), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
