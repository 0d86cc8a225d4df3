//! Comparing a transcript with its committed snapshot, and saying what
//! differs the way every other grader failure does.
//!
//! The snapshots are insta's `.snap` files, produced from the reference
//! solutions. [`assert_transcript!`](crate::assert_transcript) still runs
//! insta's `assert_snapshot!`, so that insta finds the file, applies the
//! filters a suite set with `insta::with_settings!`, and, when an
//! instructor regenerates snapshots (`INSTA_UPDATE=always cargo test -p
//! pipes-solution`), writes them exactly as before. When grading, though,
//! the grader installs its own insta `Comparator`, which records the
//! reference and the new transcript and tells insta they match: insta then
//! prints nothing (its summary and its advice to run `cargo insta review`
//! are for people who have cargo-insta, which students do not), and the
//! grader fails the test itself with what differs (stdout, stderr, the exit
//! status), the likely cause, a short diff and the book section. A missing
//! or unreadable snapshot is reported the same way, before insta is asked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use insta::internals::SnapshotContents;

use crate::Run;
use crate::causes;
use crate::failure::Failure;

/// How many lines of diff a failure shows; the saved full text has all.
const SHOWN_DIFF_LINES: usize = 16;

/// Per `module::name`, how many snapshots were asserted (insta names the
/// second one of a test `name-2`, and so on).
static COUNTERS: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

/// One snapshot assertion, set up by [`assert_transcript!`](crate::assert_transcript).
#[doc(hidden)]
pub struct Check {
    name: String,
    /// Where insta keeps the snapshot, if the workspace could be found.
    path: Option<PathBuf>,
    /// The path as shown in messages (relative to the workspace).
    shown: String,
    updating: bool,
    outcome: Arc<Mutex<Option<Outcome>>>,
}

/// What the comparator saw.
#[derive(Debug, Clone)]
struct Outcome {
    reference: String,
    actual: String,
}

impl Check {
    /// `manifest_dir`, `file`, `module` and `function` are the crate's
    /// `CARGO_MANIFEST_DIR`, `file!()`, `module_path!()` and the test
    /// function's type name at the assertion (as insta takes them).
    pub fn new(manifest_dir: &str, file: &str, module: &str, function: &str) -> Check {
        let name = snapshot_name(module, function);
        let file_name = format!("{}__{name}.snap", module.replace("::", "__"));
        let workspace = workspace_root(Path::new(manifest_dir), Path::new(file));
        let relative = Path::new(file)
            .parent()
            .unwrap_or(Path::new(""))
            .join("snapshots")
            .join(&file_name);
        let shown = tidy(&relative);
        Check {
            name,
            path: workspace.map(|root| root.join(&relative)),
            shown,
            updating: updating(),
            outcome: Arc::new(Mutex::new(None)),
        }
    }

    /// The snapshot's name, as insta would choose it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether snapshots are being written (`INSTA_UPDATE=always` and
    /// the like, which only the reference solutions accept): insta then
    /// does everything, as usual.
    pub fn updating(&self) -> bool {
        self.updating
    }

    /// Fails the test unless the snapshot exists and can be read.
    pub fn expect_reference(&self, run: &Run) {
        let Some(path) = &self.path else {
            return;
        };
        let problem = if !path.exists() {
            "is missing".to_string()
        } else if let Err(e) = insta::Snapshot::from_file(path) {
            format!("cannot be read: {e}")
        } else {
            return;
        };
        let mut failure = run.failure("has no recorded transcript to compare with");
        failure
            .details
            .insert(0, format!("snapshot {} {problem}", self.shown));
        failure.why = Some(
            "each transcript test compares with a snapshot that the course ships, made from \
             the reference solution, and this copy of the course lacks it: restore it with \
             `git checkout -- tests/snapshots` (instructors regenerate snapshots with \
             `INSTA_UPDATE=always cargo test -p TOPIC-solution`)"
                .to_string(),
        );
        failure.raise()
    }

    /// The comparator to give insta: it records what it compares and
    /// lets the grader decide.
    pub fn comparator(&self) -> Box<dyn insta::Comparator> {
        Box::new(Recorder {
            outcome: Arc::clone(&self.outcome),
        })
    }

    /// Fails the test if the transcript differed from the snapshot.
    pub fn finish(&self, run: &Run) {
        let outcome = self
            .outcome
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        let Some(Outcome { reference, actual }) = outcome else {
            return;
        };
        if reference == actual {
            return;
        }
        report(run, &self.shown, &reference, &actual).raise()
    }
}

/// An insta comparator that records both texts and always agrees.
struct Recorder {
    outcome: Arc<Mutex<Option<Outcome>>>,
}

impl insta::Comparator for Recorder {
    fn matches(&self, reference: &insta::Snapshot, test: &insta::Snapshot) -> bool {
        let text = |snapshot: &insta::Snapshot| match snapshot.contents() {
            SnapshotContents::Text(text) => text.to_string(),
            _ => String::new(),
        };
        *self
            .outcome
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(Outcome {
            reference: text(reference),
            actual: text(test),
        });
        true
    }

    fn dyn_clone(&self) -> Box<dyn insta::Comparator> {
        Box::new(Recorder {
            outcome: Arc::clone(&self.outcome),
        })
    }
}

/// Whether insta should write snapshots: an `INSTA_UPDATE` value that
/// writes, or a run under `cargo insta`.
fn updating() -> bool {
    let update = std::env::var("INSTA_UPDATE").unwrap_or_default();
    matches!(update.as_str(), "always" | "new" | "unseen" | "force" | "1")
        || std::env::var("INSTA_CARGO_INSTA").is_ok_and(|v| v == "1")
        || std::env::var("INSTA_FORCE_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1")
}

/// The name insta gives the next snapshot of `function` (its type name at
/// the assertion): the function's name without `test_`, then `-2`, `-3` …
/// for further snapshots of the same test.
fn snapshot_name(module: &str, function: &str) -> String {
    let mut function = function.strip_suffix("::f").unwrap_or(function);
    while let Some(rest) = function.strip_suffix("::{{closure}}") {
        function = rest;
    }
    let name = function.rsplit("::").next().unwrap_or(function);
    let name = name.strip_prefix("test_").unwrap_or(name);
    let key = format!("{}::{name}", module.replace("::", "__"));
    let mut counters = COUNTERS.lock().unwrap_or_else(|poison| poison.into_inner());
    let count = match counters.iter_mut().find(|(k, _)| *k == key) {
        Some((_, count)) => {
            *count += 1;
            *count
        }
        None => {
            counters.push((key, 1));
            1
        }
    };
    if count == 1 {
        name.to_string()
    } else {
        format!("{name}-{count}")
    }
}

/// The workspace root insta resolves snapshot paths against: the
/// directory `file!()` is relative to. `INSTA_WORKSPACE_ROOT` wins, as in
/// insta; else the nearest ancestor of the crate where `file` exists.
fn workspace_root(manifest_dir: &Path, file: &Path) -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("INSTA_WORKSPACE_ROOT") {
        return Some(PathBuf::from(root));
    }
    if file.is_absolute() {
        return Some(PathBuf::new());
    }
    manifest_dir
        .ancestors()
        .find(|dir| dir.join(file).is_file())
        .map(Path::to_path_buf)
}

/// `solutions/02-pipes/../../tests/snapshots/x.snap` as
/// `tests/snapshots/x.snap`.
fn tidy(path: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir if !parts.is_empty() => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other => parts.push(other.as_os_str()),
        }
    }
    parts
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

// ---- what differs ---------------------------------------------------------

/// A transcript cut into its parts.
#[derive(Debug, Default, PartialEq)]
struct Parts<'a> {
    /// `$ command` and `--- stdin: N bytes`.
    command: Vec<&'a str>,
    stdout: Vec<&'a str>,
    stderr: Vec<&'a str>,
    /// `--- exit status 0`, `--- killed by signal 9 (SIGKILL)`.
    status: Option<&'a str>,
}

fn parts(transcript: &str) -> Parts<'_> {
    #[derive(PartialEq)]
    enum In {
        Command,
        Stdout,
        Stderr,
    }
    let mut parts = Parts::default();
    let mut now = In::Command;
    for line in transcript.lines() {
        match line {
            "--- stdout" => now = In::Stdout,
            "--- stderr" => now = In::Stderr,
            _ if now == In::Stderr && line.starts_with("--- ") => {
                parts.status = Some(line.trim_start_matches("--- "));
            }
            _ => match now {
                In::Command => parts.command.push(line),
                In::Stdout => parts.stdout.push(line),
                In::Stderr => parts.stderr.push(line),
            },
        }
    }
    parts
}

/// The failure for a transcript that differs from its snapshot.
fn report(run: &Run, shown: &str, reference: &str, actual: &str) -> Failure {
    let expected = parts(reference);
    let got = parts(actual);
    let mut differ = Vec::new();
    let mut why = Vec::new();
    if expected.command != got.command {
        differ.push("command");
        why.push(
            "the command differs from the one recorded: the suite or its snapshot was \
             changed (`git status tests/` shows what)"
                .to_string(),
        );
    }
    if expected.status != got.status {
        differ.push("exit status");
        why.push(format!(
            "it ended with {}, the reference solution with {}: {}",
            got.status.unwrap_or("?"),
            expected.status.unwrap_or("?"),
            status_cause(expected.status, run)
        ));
    }
    if expected.stdout != got.stdout {
        differ.push("stdout");
        why.push(format!(
            "stdout differs: {}",
            lines_cause(&expected.stdout, &got.stdout)
        ));
    }
    if expected.stderr != got.stderr {
        differ.push("stderr");
        why.push(format!(
            "stderr differs: {}",
            stderr_cause(&expected.stderr, &got.stderr)
        ));
    }
    if differ.is_empty() {
        differ.push("spacing");
        why.push("the lines match but their spacing differs (trailing spaces, blank lines)".into());
    }
    let mut failure = run.failure(format!(
        "its transcript differs from the reference solution's ({})",
        differ.join(", ")
    ));
    let ops = diff(reference, actual);
    let (shown_diff, whole) = render_diff(&ops);
    let mut details = vec![
        format!("reference: {shown}"),
        "diff (- the reference solution's, + yours):".to_string(),
    ];
    details.extend(shown_diff.iter().map(|line| format!("  {line}")));
    if shown_diff.len() < whole.len() {
        details.push(format!(
            "  … (the whole diff is in the full text: {} lines)",
            whole.len()
        ));
        failure.appendix = std::iter::once("whole diff:".to_string())
            .chain(whole.iter().map(|line| format!("  {line}")))
            .collect();
    }
    details.append(&mut failure.details);
    failure.details = details;
    failure.why = Some(why.join("; "));
    failure
}

/// Why the exit status differs, from the reference's status and the run's.
fn status_cause(expected: Option<&str>, run: &Run) -> String {
    let code = expected
        .and_then(|s| s.strip_prefix("exit status "))
        .and_then(|s| s.parse().ok());
    match code {
        Some(code) => causes::wrong_status(code, run.status, &run.stderr)
            .unwrap_or_else(|| "see stderr below".to_string()),
        None => "the reference solution is ended by that signal here: keep its default \
                 action, or re-raise it once cleaned up"
            .to_string(),
    }
}

/// Why stdout differs, from its lines.
fn lines_cause(expected: &[&str], got: &[&str]) -> String {
    if got.is_empty() {
        return format!(
            "it printed nothing, where the reference solution prints {} line(s): the work \
             was not done, or its output not written (or not flushed before exit)",
            expected.len()
        );
    }
    if got.len() < expected.len() && expected.starts_with(got) {
        return format!(
            "its output stops early, {} line(s) short: a loop that stops too soon, a short \
             read or write that was not repeated, or output not flushed before exit",
            expected.len() - got.len()
        );
    }
    if got.len() > expected.len() && got.starts_with(expected) {
        return format!(
            "it printed {} line(s) more than the reference solution, at the end",
            got.len() - expected.len()
        );
    }
    let mut sorted_expected = expected.to_vec();
    let mut sorted_got = got.to_vec();
    sorted_expected.sort_unstable();
    sorted_got.sort_unstable();
    if sorted_expected == sorted_got {
        return "the same lines, in another order: the task fixes the order (sorted, or \
                in the order of the input), whatever order processes run in"
            .to_string();
    }
    let first = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    format!(
        "from its line {} on, the values are not those the reference solution computes \
         from the same input: compare them in the diff",
        first + 1
    )
}

/// Why stderr differs.
fn stderr_cause(expected: &[&str], got: &[&str]) -> String {
    match (expected.is_empty(), got.is_empty()) {
        (true, false) => "it printed on stderr, where the reference solution prints nothing: \
                          an error where there should be none, or a debugging print left in"
            .to_string(),
        (false, true) => "it printed no error message, where the reference solution prints \
                          one: say on stderr what failed, `topic: <what failed>: <errno text>`"
            .to_string(),
        _ => "its error message differs: one line, `topic: <what failed>: <errno text>`, \
              naming the call that failed and the errno it gave"
            .to_string(),
    }
}

// ---- a line diff ----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Same(&'a str),
    Gone(&'a str),
    Added(&'a str),
}

/// The line diff of `a` and `b` (longest common subsequence).
fn diff<'a>(a: &'a str, b: &'a str) -> Vec<Op<'a>> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op> = a[..prefix].iter().map(|l| Op::Same(l)).collect();
    if ma.len().saturating_mul(mb.len()) > 4_000_000 {
        // Too big to align: all of one, then all of the other.
        ops.extend(ma.iter().map(|l| Op::Gone(l)));
        ops.extend(mb.iter().map(|l| Op::Added(l)));
    } else {
        // lcs[i][j]: length of the LCS of ma[i..] and mb[j..].
        let width = mb.len() + 1;
        let mut lcs = vec![0u32; (ma.len() + 1) * width];
        for i in (0..ma.len()).rev() {
            for j in (0..mb.len()).rev() {
                lcs[i * width + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < ma.len() && j < mb.len() {
            if ma[i] == mb[j] {
                ops.push(Op::Same(ma[i]));
                i += 1;
                j += 1;
            } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
                ops.push(Op::Gone(ma[i]));
                i += 1;
            } else {
                ops.push(Op::Added(mb[j]));
                j += 1;
            }
        }
        ops.extend(ma[i..].iter().map(|l| Op::Gone(l)));
        ops.extend(mb[j..].iter().map(|l| Op::Added(l)));
    }
    ops.extend(a[a.len() - suffix..].iter().map(|l| Op::Same(l)));
    ops
}

/// The diff as lines: changes with one line of context, each hunk headed
/// by the transcript part it is in; the first [`SHOWN_DIFF_LINES`] of them,
/// and all of them.
fn render_diff(ops: &[Op]) -> (Vec<String>, Vec<String>) {
    let changed: Vec<bool> = ops.iter().map(|op| !matches!(op, Op::Same(_))).collect();
    let near = |at: usize| {
        changed[at.saturating_sub(1)..(at + 2).min(ops.len())]
            .iter()
            .any(|c| *c)
    };
    let mut lines = Vec::new();
    let mut last_shown: Option<usize> = None;
    for (at, op) in ops.iter().enumerate() {
        if !near(at) {
            continue;
        }
        if last_shown.is_none_or(|last| last + 1 < at) {
            // A new hunk: say which part of the transcript it is in.
            let header = ops[..at].iter().rev().find_map(|op| match op {
                Op::Same(line) | Op::Gone(line) if line.starts_with("--- ") => Some(*line),
                _ => None,
            });
            if let Some(header) = header
                && at > 0
                && ops[at - 1] != Op::Same(header)
            {
                lines.push(format!("  {header}"));
                lines.push("  …".to_string());
            } else if last_shown.is_some() {
                lines.push("  …".to_string());
            }
        }
        lines.push(match op {
            Op::Same(line) => format!("  {line}"),
            Op::Gone(line) => format!("- {line}"),
            Op::Added(line) => format!("+ {line}"),
        });
        last_shown = Some(at);
    }
    let shown = lines.iter().take(SHOWN_DIFF_LINES).cloned().collect();
    (shown, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_follow_insta() {
        assert_eq!(snapshot_name("pipes", "pipes::test_counts::f"), "counts");
        assert_eq!(
            snapshot_name("pipes", "pipes::counts::{{closure}}::f"),
            "counts-2"
        );
        assert_eq!(snapshot_name("other", "other::counts::f"), "counts");
    }

    #[test]
    fn paths_are_shown_from_the_workspace() {
        assert_eq!(
            tidy(Path::new("solutions/02-pipes/../../tests/snapshots/x.snap")),
            "tests/snapshots/x.snap"
        );
    }

    #[test]
    fn the_diff_shows_changes_with_their_part() {
        let reference = "$ pipes count\n--- stdout\na\nb\nc\nd\ne\n--- stderr\n--- exit status 0";
        let actual = "$ pipes count\n--- stdout\na\nb\nc\nd\nE\n--- stderr\n--- exit status 0";
        let (shown, _) = render_diff(&diff(reference, actual));
        assert_eq!(
            shown,
            ["  --- stdout", "  …", "  d", "- e", "+ E", "  --- stderr"]
        );
    }

    #[test]
    fn causes_fit_the_difference() {
        assert!(lines_cause(&["a", "b"], &["a"]).starts_with("its output stops early, 1 line"));
        assert!(
            lines_cause(&["a", "b"], &["b", "a"]).starts_with("the same lines, in another order")
        );
        assert!(lines_cause(&["a"], &["a", "b"]).starts_with("it printed 1 line(s) more"));
        assert!(lines_cause(&["a", "b"], &["a", "c"]).contains("from its line 2 on"));
        assert!(lines_cause(&["a"], &[]).starts_with("it printed nothing"));
    }
}
