//! `cargo workbook grade`: run the grading suites and print a scoreboard
//! (or JSON, or a JUnit XML file).
//!
//! Before grading, the tamper check compares the files that decide a grade
//! with `tests/MANIFEST.sha256` and warns, first thing, when they differ.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::json::Json;
use crate::libtest::{self, Outcome};
use crate::manifest::{self, Tamper};
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
}

impl State {
    /// The words shown on the scoreboard.
    fn label(self) -> &'static str {
        match self {
            State::NotStarted => "not started",
            State::InProgress => "in progress",
            State::Done => "done",
            State::DoesNotCompile => "does not compile",
        }
    }

    /// The name `--json` and JUnit use: `not-started`, `in-progress`,
    /// `done`, `does-not-compile`.
    pub fn name(self) -> &'static str {
        match self {
            State::NotStarted => "not-started",
            State::InProgress => "in-progress",
            State::Done => "done",
            State::DoesNotCompile => "does-not-compile",
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
    /// Graded tests (ignored tests do not count).
    pub total: usize,
    /// Where the lab stands.
    pub state: State,
    /// Why the build failed, for [`State::DoesNotCompile`] (left out of
    /// the JSON otherwise).
    pub error: Option<String>,
    /// Every graded test, by name.
    pub tests: Vec<TestGrade>,
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
        let tests = self.tests.iter().map(TestGrade::to_json).collect();
        pairs.push(("tests", Json::Array(tests)));
        Json::object(pairs)
    }

    /// The failing test to show first: the one for the earliest task (the
    /// grader's messages name it, `section "Task 2: …"`), so a student is sent
    /// to TODO 1 before TODO 3; then by name, for a stable choice.
    pub fn first_failure(&self) -> Option<&TestGrade> {
        self.tests
            .iter()
            .filter(|t| !t.passed)
            .min_by_key(|t| task_number(t.message.as_deref().unwrap_or("")))
    }
}

impl TestGrade {
    /// This test as an element of a lab's `tests` array in `--json`.
    pub fn to_json(&self) -> Json {
        Json::object([
            ("name", Json::string(&self.name)),
            ("passed", Json::Bool(self.passed)),
            (
                "message",
                self.message.as_deref().map_or(Json::Null, Json::string),
            ),
        ])
    }
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

/// The `--json` document.
#[derive(Debug)]
struct Report<'a> {
    labs: &'a [LabGrade],
    grading_files: GradingFiles,
}

impl Report<'_> {
    fn to_json(&self) -> Json {
        Json::object([
            (
                "labs",
                Json::Array(self.labs.iter().map(LabGrade::to_json).collect()),
            ),
            ("grading_files", self.grading_files.to_json()),
        ])
    }
}

/// The tamper check in `--json`.
#[derive(Debug)]
struct GradingFiles {
    /// True when the files that decide a grade are as shipped, false when
    /// they differ, null when there is no manifest to tell.
    as_shipped: Option<bool>,
    /// How they differ, e.g. `tests/02-pipes.rs: changed`.
    differences: Vec<String>,
}

impl GradingFiles {
    fn from(tamper: &Tamper) -> GradingFiles {
        GradingFiles {
            as_shipped: match tamper {
                Tamper::AsShipped => Some(true),
                Tamper::Differ(_) => Some(false),
                Tamper::NoManifest | Tamper::Unknown(_) => None,
            },
            differences: tamper.paths(),
        }
    }

    fn to_json(&self) -> Json {
        Json::object([
            ("as_shipped", self.as_shipped.map_or(Json::Null, Json::Bool)),
            (
                "differences",
                Json::Array(self.differences.iter().map(Json::string).collect()),
            ),
        ])
    }
}

/// How `grade` reports.
#[derive(Debug, Default)]
pub struct Output<'a> {
    /// Print JSON instead of the scoreboard.
    pub json: bool,
    /// Also write a JUnit XML report to this file.
    pub junit: Option<&'a Path>,
}

/// Runs `cargo workbook grade [LAB] [--json] [--junit FILE]`; a relative
/// FILE is taken from `cwd`.
pub fn run(ws: &Workspace, query: Option<&str>, output: &Output, cwd: &Path) -> Result<ExitCode> {
    let labs = ws.select(query)?;
    if labs.is_empty() {
        eprintln!("workbook: there are no labs in labs/ yet");
    }
    let tamper = manifest::tamper_check(ws);
    if let Some(warning) = tamper.warning() {
        if output.json {
            eprintln!("{warning}\n");
        } else {
            println!("{warning}\n");
            // The warning must be on screen before grading starts.
            let _ = std::io::stdout().flush();
        }
    }
    let grades = grade_all(ws, &labs)?;
    if output.json {
        let report = Report {
            labs: &grades,
            grading_files: GradingFiles::from(&tamper),
        };
        println!("{}", report.to_json().pretty());
    } else {
        print!("{}", scoreboard(&grades));
    }
    if let Some(file) = output.junit {
        let path = workspace::lexically_normal(&cwd.join(file));
        fs::write(&path, junit::report(&grades, &tamper))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote the JUnit report to {}", path.display());
    }
    Ok(exit_code(&grades))
}

/// 0 when every graded lab is done, 1 otherwise.
pub fn exit_code(grades: &[LabGrade]) -> ExitCode {
    if grades.iter().all(|g| g.state == State::Done) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Grades `labs` one after the other, with a progress line.
pub fn grade_all(ws: &Workspace, labs: &[&Lab]) -> Result<Vec<LabGrade>> {
    let mut progress = Progress::new(labs.len());
    let mut grades = Vec::new();
    for lab in labs {
        progress.step(&format!("grading {}", lab.name));
        let graded = grade_observed(ws, lab, Target::Lab, &mut |line| {
            if let Some(activity) = process::cargo_activity(line) {
                progress.note(&activity);
            }
        });
        progress.clear();
        grades.push(graded?);
    }
    Ok(grades)
}

/// Runs one lab's (or solution's) grading suite and grades its output.
pub fn grade(ws: &Workspace, lab: &Lab, target: Target) -> Result<LabGrade> {
    grade_observed(ws, lab, target, &mut |_| {})
}

/// [`grade`], handing each line cargo writes on standard error to
/// `on_line` as it comes.
fn grade_observed(
    ws: &Workspace,
    lab: &Lab,
    target: Target,
    on_line: &mut dyn FnMut(&str),
) -> Result<LabGrade> {
    let package = match target {
        Target::Lab => lab.package().to_string(),
        Target::Solution => lab.solution_package(),
    };
    let mut cmd = process::cargo(&ws.root);
    cmd.args(["test", "-p", &package, "--test", lab.test_target()])
        .args(["--no-fail-fast", "--color", "never"]);
    process::grading_env(&mut cmd);
    let captured = process::capture_streaming(&mut cmd, on_line)?;
    let mut graded = from_output(lab, &package, &captured);
    if let Ok(suite) = fs::read_to_string(ws.root.join("tests").join(format!("{}.rs", lab.name))) {
        sort_in_suite_order(&mut graded.tests, &suite);
    }
    graded.title = LabToml::of(ws, lab)
        .map(|toml| toml.lab.title)
        .unwrap_or_default();
    Ok(graded)
}

/// Puts `tests` in the order the suite defines them (libtest reports them
/// sorted by name). Suites are written task by task, so this order follows
/// the TODOs, and the first failure shown is the first thing to fix.
fn sort_in_suite_order(tests: &mut [TestGrade], suite: &str) {
    let position = |name: &str| suite.find(&format!("fn {name}(")).unwrap_or(usize::MAX);
    tests.sort_by_key(|test| position(&test.name));
}

/// Grades the captured output of `cargo test`.
pub fn from_output(lab: &Lab, package: &str, captured: &Captured) -> LabGrade {
    let run = libtest::parse(&captured.stdout);
    let built = !run.tests.is_empty() || run.announced > 0 || captured.success;
    let error = if built {
        None
    } else {
        Some(build_error(&captured.stderr))
    };
    let passed = run.passed();
    let total = run.total();
    let state = if !built {
        State::DoesNotCompile
    } else if passed == 0 {
        State::NotStarted
    } else if passed == total {
        State::Done
    } else {
        State::InProgress
    };
    // Tests finish in whatever order the threads allow; sorting by name makes
    // "the first failing test" the same on every run.
    let mut tests: Vec<TestGrade> = run
        .graded()
        .map(|t| TestGrade {
            name: t.name.clone(),
            passed: t.outcome == Outcome::Passed,
            message: t.message.clone(),
        })
        .collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    LabGrade {
        lab: lab.name.clone(),
        title: String::new(),
        package: package.to_string(),
        passed,
        total,
        state,
        error,
        tests,
    }
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
    if let Some(open) = grades.iter().find(|g| g.state != State::Done) {
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
        return vec!["some tests did not report a result (did the test binary crash?)".to_string()];
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

    #[test]
    fn json_uses_kebab_case_states() {
        let grade = from_output(&pipes(), "pipes", &captured(false, "", "error: boom\n"));
        let report = Report {
            labs: &[grade],
            grading_files: GradingFiles::from(&Tamper::AsShipped),
        };
        let text = report.to_json().compact();
        assert!(text.contains(r#""state":"does-not-compile""#), "{text}");
        assert!(
            text.contains(r#""lab":"02-pipes","title":"","package":"pipes""#),
            "{text}"
        );
        assert!(
            text.contains(r#""grading_files":{"as_shipped":true,"differences":[]}"#),
            "{text}"
        );
    }
}
