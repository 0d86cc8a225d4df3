//! `cargo workbook score FILE LAB [--task N | --test NAME]`: the points of
//! one lab, task or test, read from a `grade --json` document.
//!
//! The autograding workflow grades every lab once, then gives each unit
//! that earns points its own step running this command: each step is then
//! one line of GitHub Classroom's report, with its own points, while the
//! labs compile and run only once. With `--classroom` the step also writes
//! its result in the form Classroom's reporter reads (the same as its
//! command grader's: a base64 JSON `result` output), with the reason in the
//! message when the lab's grade is void, so that the reporter always has a
//! score to send, zero for the labs concerned, never nothing.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::json::Json;
use crate::plan::Points;
use crate::workspace::Lab;

/// What earns the points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// The whole lab.
    Lab,
    /// One task (TODO number).
    Task(u32),
    /// One test, by name.
    Test(String),
}

/// One `score` command.
#[derive(Debug)]
pub struct Request<'a> {
    /// The `grade --json` document.
    pub file: &'a Path,
    /// The lab, as the student commands take it (`02`, `02-pipes`, `pipes`).
    pub lab: &'a str,
    /// The unit within it.
    pub unit: Unit,
    /// The points the caller expects the unit to be worth.
    pub max: Option<u32>,
    /// Write the result for Classroom's reporter and exit 0.
    pub classroom: bool,
}

/// How a unit came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `pass`, `fail` or `error` (Classroom's words: `error` when the unit
    /// could not be graded at all, or its grade is void).
    pub status: Status,
    /// The unit's name, e.g. `02-pipes task 3`.
    pub name: String,
    /// Its points.
    pub points: Points,
    /// One line: what happened and why.
    pub line: String,
}

/// Classroom's three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Error,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// Runs `score`: prints the verdict's line; exit status 0 when the unit
/// earned all its points (always with `--classroom`, which reports through
/// `$GITHUB_OUTPUT` instead).
pub fn run(request: &Request) -> Result<ExitCode> {
    let verdict = judge(request);
    println!("{}", verdict.line);
    if request.classroom {
        let path = std::env::var_os("GITHUB_OUTPUT")
            .filter(|p| !p.is_empty())
            .context("--classroom writes to the file $GITHUB_OUTPUT names, and it is not set")?;
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", Path::new(&path).display()))?;
        writeln!(
            file,
            "result={}",
            base64(classroom_result(&verdict, request).as_bytes())
        )
        .with_context(|| format!("cannot write {}", Path::new(&path).display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if verdict.status == Status::Pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The verdict for `request`: never an error, since a unit that cannot be
/// graded is itself a verdict (zero points, with the reason).
pub fn judge(request: &Request) -> Verdict {
    let name = unit_name(request.lab, &request.unit);
    let void = |line: String| Verdict {
        status: Status::Error,
        name: name.clone(),
        points: Points::new(0, request.max.unwrap_or(0)),
        line: format!("{name}: 0 points: {line}"),
    };
    let text = match fs::read_to_string(request.file) {
        Ok(text) => text,
        Err(err) => {
            return void(format!(
                "the grading step did not finish: cannot read {}: {err}",
                request.file.display()
            ));
        }
    };
    let document = match Json::parse(&text) {
        Ok(document) => document,
        Err(err) => {
            return void(format!(
                "the grading step did not finish: {} is not a grade: {err}",
                request.file.display()
            ));
        }
    };
    match judge_document(&document, request, &name) {
        Ok(verdict) => verdict,
        Err(why) => void(why),
    }
}

/// [`judge`] on a parsed document; `Err` says why the unit cannot be graded.
fn judge_document(
    document: &Json,
    request: &Request,
    name: &str,
) -> std::result::Result<Verdict, String> {
    let labs = document
        .get("labs")
        .and_then(Json::as_array)
        .ok_or("the grade has no `labs`")?;
    let lab = labs
        .iter()
        .find(|lab| {
            lab.get("lab")
                .and_then(Json::as_str)
                .and_then(Lab::from_dir_name)
                .is_some_and(|l| l.matches(request.lab))
        })
        .ok_or_else(|| format!("the grade has no lab `{}`", request.lab))?;
    let granularity = document
        .get("granularity")
        .and_then(Json::as_str)
        .unwrap_or("?");
    let (unit, what) = match &request.unit {
        Unit::Lab => (lab, "lab"),
        Unit::Task(number) => (
            find(lab, "tasks", |t| {
                t.get("task").and_then(Json::as_u64) == Some(u64::from(*number))
            })
            .ok_or_else(|| format!("the lab has no task {number} with tests"))?,
            "task",
        ),
        Unit::Test(test) => (
            find(lab, "tests", |t| {
                t.get("name").and_then(Json::as_str) == Some(test)
            })
            .ok_or_else(|| format!("the lab has no test `{test}`"))?,
            "test",
        ),
    };
    let points = points(unit).ok_or_else(|| {
        format!(
            "the grade gives no points per {what}: it was made with --granularity \
             {granularity}"
        )
    })?;
    if let Some(max) = request.max.filter(|max| *max != points.possible) {
        return Err(format!(
            "this step is worth {max} points and the grade says {}: the suite or the \
             points are not the ones the workflow was written for",
            points.possible
        ));
    }
    if let Some(reason) = lab.get("tamper").and_then(Json::as_str) {
        return Ok(Verdict {
            status: Status::Error,
            name: name.to_string(),
            points: Points::new(0, points.possible),
            line: format!("{name}: 0/{} points: grade void: {reason}", points.possible),
        });
    }
    let passed = points.earned == points.possible && points.possible > 0;
    let why = if passed {
        String::new()
    } else {
        format!(": {}", failure(lab, unit, &request.unit))
    };
    Ok(Verdict {
        status: if passed { Status::Pass } else { Status::Fail },
        name: name.to_string(),
        points,
        line: format!(
            "{name}: {}, {points}{why}",
            if passed { "passed" } else { "failed" }
        ),
    })
}

/// The element of `lab[key]` that `matches`.
fn find<'a>(lab: &'a Json, key: &str, matches: impl Fn(&Json) -> bool) -> Option<&'a Json> {
    lab.get(key)?.as_array()?.iter().find(|item| matches(item))
}

/// The `points` object of a lab, task or test, if it has one.
fn points(unit: &Json) -> Option<Points> {
    let points = unit.get("points")?;
    let number = |key: &str| u32::try_from(points.get(key)?.as_u64()?).ok();
    Some(Points::new(number("earned")?, number("possible")?))
}

/// Why a unit did not earn its points, in a few words.
fn failure(lab: &Json, unit: &Json, request: &Unit) -> String {
    if let Some(error) = lab.get("error").and_then(Json::as_str) {
        return format!("the lab does not compile: {error}");
    }
    let first_line = |test: &Json| {
        let name = test.get("name").and_then(Json::as_str).unwrap_or("?");
        let message = test
            .get("message")
            .and_then(Json::as_str)
            .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("failed")
            .trim()
            .to_string();
        format!("{name}: {message}")
    };
    let failed_tests: Vec<&Json> = match request {
        Unit::Test(_) => vec![unit],
        _ => {
            let names: Vec<&str> = match request {
                Unit::Task(_) => unit
                    .get("tests")
                    .and_then(Json::as_array)
                    .map(|names| names.iter().filter_map(Json::as_str).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            lab.get("tests")
                .and_then(Json::as_array)
                .map(|tests| {
                    tests
                        .iter()
                        .filter(|t| t.get("passed").and_then(Json::as_bool) == Some(false))
                        .filter(|t| {
                            names.is_empty()
                                || t.get("name")
                                    .and_then(Json::as_str)
                                    .is_some_and(|n| names.contains(&n))
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    match failed_tests.as_slice() {
        [] => "not every test passed".to_string(),
        [one] => first_line(one),
        [first, rest @ ..] => format!("{} (and {} more failing)", first_line(first), rest.len()),
    }
}

/// `02-pipes`, `02-pipes: task 3`, `02-pipes: child_counts_…`.
fn unit_name(lab: &str, unit: &Unit) -> String {
    match unit {
        Unit::Lab => lab.to_string(),
        Unit::Task(n) => format!("{lab}: task {n}"),
        Unit::Test(name) => format!("{lab}: {name}"),
    }
}

/// The result in the form of Classroom's command grader, which its
/// reporter reads (`version`, `status`, `max_score`, one test with its
/// `score`, `message` and `test_code`).
pub fn classroom_result(verdict: &Verdict, request: &Request) -> String {
    let mut command = format!(
        "cargo workbook score {} {}",
        request
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        request.lab
    );
    match &request.unit {
        Unit::Lab => {}
        Unit::Task(n) => command.push_str(&format!(" --task {n}")),
        Unit::Test(name) => command.push_str(&format!(" --test {name}")),
    }
    let status = Json::string(verdict.status.name());
    Json::object([
        ("version", Json::number(1)),
        ("status", status.clone()),
        ("max_score", Json::number(verdict.points.possible)),
        (
            "tests",
            Json::Array(vec![Json::object([
                ("name", Json::string(&verdict.name)),
                ("status", status),
                ("score", Json::number(verdict.points.earned)),
                ("message", Json::string(&verdict.line)),
                ("test_code", Json::string(command)),
                ("filename", Json::string("")),
                ("line_no", Json::number(0)),
                ("duration", Json::number(0)),
            ])]),
        ),
    ])
    .compact()
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRADE: &str = r#"{
      "granularity": "test",
      "labs": [
        {"lab": "02-pipes", "tamper": null, "points": {"earned": 1, "possible": 2},
         "tasks": [{"task": 1, "tests": ["a", "b"], "points": {"earned": 1, "possible": 2}}],
         "tests": [
           {"name": "a", "passed": true, "message": null, "points": {"earned": 1, "possible": 1}},
           {"name": "b", "passed": false, "message": "pipes count: no EOF\nwhy: …", "points": {"earned": 0, "possible": 1}}
         ]},
        {"lab": "03-popen", "tamper": "the files that decide a grade were changed: tests/03-popen.rs: changed",
         "points": {"earned": 0, "possible": 1}, "tasks": [],
         "tests": [{"name": "c", "passed": true, "message": null, "points": {"earned": 0, "possible": 1}}]}
      ]
    }"#;

    fn verdict(lab: &str, unit: Unit, max: Option<u32>) -> Verdict {
        let dir = tempfile_dir();
        let file = dir.join("grade.json");
        fs::write(&file, GRADE).expect("written");
        let request = Request {
            file: &file,
            lab,
            unit,
            max,
            classroom: false,
        };
        let verdict = judge(&request);
        let _ = fs::remove_dir_all(&dir);
        verdict
    }

    fn tempfile_dir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "workbook-score-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    #[test]
    fn tests_pass_and_fail_with_their_first_line() {
        let pass = verdict("02", Unit::Test("a".into()), Some(1));
        assert_eq!(pass.status, Status::Pass);
        assert_eq!(pass.line, "02: a: passed, 1/1 point");
        let fail = verdict("pipes", Unit::Test("b".into()), None);
        assert_eq!(fail.status, Status::Fail);
        assert_eq!(
            fail.line,
            "pipes: b: failed, 0/1 point: b: pipes count: no EOF"
        );
        let task = verdict("02-pipes", Unit::Task(1), Some(2));
        assert_eq!(
            task.line,
            "02-pipes: task 1: failed, 1/2 points: b: pipes count: no EOF"
        );
    }

    #[test]
    fn a_void_lab_earns_nothing_and_says_why() {
        let void = verdict("03", Unit::Test("c".into()), Some(1));
        assert_eq!(void.status, Status::Error);
        assert_eq!(void.points, Points::new(0, 1));
        assert!(
            void.line
                .contains("grade void: the files that decide a grade were changed"),
            "{}",
            void.line
        );
    }

    #[test]
    fn what_cannot_be_graded_is_an_error_worth_nothing() {
        let wrong_max = verdict("02", Unit::Test("a".into()), Some(5));
        assert_eq!(wrong_max.status, Status::Error);
        assert_eq!(wrong_max.points, Points::new(0, 5));
        assert!(wrong_max.line.contains("this step is worth 5 points"));
        let missing = verdict("02", Unit::Test("zzz".into()), Some(1));
        assert!(
            missing.line.ends_with("the lab has no test `zzz`"),
            "{}",
            missing.line
        );
        let request = Request {
            file: Path::new("/nonexistent/grade.json"),
            lab: "02",
            unit: Unit::Lab,
            max: Some(14),
            classroom: false,
        };
        let verdict = judge(&request);
        assert_eq!(verdict.points, Points::new(0, 14));
        assert!(verdict.line.contains("the grading step did not finish"));
    }

    #[test]
    fn classroom_results_are_what_the_reporter_reads() {
        let verdict = verdict("02", Unit::Test("b".into()), Some(1));
        let request = Request {
            file: Path::new("grade.json"),
            lab: "02",
            unit: Unit::Test("b".into()),
            max: Some(1),
            classroom: true,
        };
        let json = classroom_result(&verdict, &request);
        assert!(
            json.starts_with(r#"{"version":1,"status":"fail","max_score":1,"tests":[{"name":"02: b","status":"fail","score":0,"#),
            "{json}"
        );
        assert!(json.contains(r#""test_code":"cargo workbook score grade.json 02 --test b""#));
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b""), "");
    }
}
