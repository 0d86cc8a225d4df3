//! Reading the output of `cargo test`: which tests ran, which failed and why,
//! or why nothing ran at all.
//!
//! The parser understands the plain (not JSON) format of the standard test
//! harness, which is stable and needs no nightly flag:
//!
//! ```text
//! running 2 tests
//! test reader_sees_eof ... ok
//! test writer_gets_epipe ... FAILED
//!
//! failures:
//!
//! ---- writer_gets_epipe stdout ----
//!
//! thread 'writer_gets_epipe' panicked at tests/02-pipes.rs:40:5:
//! the writer was killed by SIGPIPE: ignore it … (book: 02-pipes.md#sigpipe)
//! note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
//!
//! failures:
//!     writer_gets_epipe
//!
//! test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
//! ```

use std::collections::HashMap;

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `test NAME ... ok`
    Passed,
    /// `test NAME ... FAILED`
    Failed,
    /// `test NAME ... ignored`
    Ignored,
}

/// One test and, when it failed, what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The test's path inside its crate, e.g. `reader_sees_eof`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// For a failure: the panic message (or, when there is none, the captured
    /// output), trimmed. `None` for tests that passed or were ignored.
    pub message: Option<String>,
}

/// Everything read from one `cargo test` run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Run {
    /// Every test that reported a result, in the order they finished.
    pub tests: Vec<TestResult>,
    /// The sum of the `running N tests` lines: more than `tests.len()` when
    /// the test binary died before every test had reported.
    pub announced: usize,
}

impl Run {
    /// The tests that count for a grade (everything but ignored tests).
    pub fn graded(&self) -> impl Iterator<Item = &TestResult> {
        self.tests.iter().filter(|t| t.outcome != Outcome::Ignored)
    }

    /// How many graded tests passed.
    pub fn passed(&self) -> usize {
        self.graded()
            .filter(|t| t.outcome == Outcome::Passed)
            .count()
    }

    /// How many tests count for a grade: those that reported, or those
    /// announced when the run stopped early.
    pub fn total(&self) -> usize {
        let ignored = self.tests.len() - self.graded().count();
        self.graded()
            .count()
            .max(self.announced.saturating_sub(ignored))
    }
}

/// Parses the standard output of a test binary (cargo's own messages on
/// standard error may be included too: they are ignored).
pub fn parse(output: &str) -> Run {
    let mut run = Run::default();
    let mut sections: HashMap<String, Vec<&str>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        if let Some(name) = section_header(line) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        if current.is_some() && (line == "failures:" || line.starts_with("test result: ")) {
            current = None;
            continue;
        }
        if let Some(name) = &current {
            sections.entry(name.clone()).or_default().push(line);
            continue;
        }
        if let Some(count) = running_line(line) {
            run.announced += count;
        } else if let Some((name, outcome)) = test_line(line) {
            run.tests.push(TestResult {
                name: name.to_string(),
                outcome,
                message: None,
            });
        }
    }
    for test in &mut run.tests {
        if test.outcome == Outcome::Failed {
            let section = sections.get(&test.name).map(Vec::as_slice).unwrap_or(&[]);
            test.message = Some(failure_message(section));
        }
    }
    run
}

/// `test NAME ... RESULT` → the name and outcome.
fn test_line(line: &str) -> Option<(&str, Outcome)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let outcome = match result.trim_end() {
        "ok" => Outcome::Passed,
        "FAILED" => Outcome::Failed,
        r if r.starts_with("ignored") => Outcome::Ignored,
        _ => return None,
    };
    Some((name, outcome))
}

/// `running N tests` (or `running 1 test`) → N.
fn running_line(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("running ")?;
    let (count, word) = rest.split_once(' ')?;
    if word == "test" || word == "tests" {
        count.parse().ok()
    } else {
        None
    }
}

/// `---- NAME stdout ----` → NAME.
fn section_header(line: &str) -> Option<&str> {
    line.strip_prefix("---- ")?.strip_suffix(" stdout ----")
}

/// The useful part of a failure section: the panic message without the
/// backtrace note, or the whole captured output when nothing panicked.
fn failure_message(section: &[&str]) -> String {
    let panic_at = section.iter().position(|line| is_panic_line(line));
    let body: Vec<&str> = match panic_at {
        Some(index) => {
            let line = section[index];
            // Before Rust 1.73 the message sat on the same line, in quotes:
            // thread 'x' panicked at 'message', src/lib.rs:1:1
            let inline = line
                .split_once("panicked at '")
                .and_then(|(_, rest)| rest.rsplit_once("', "))
                .map(|(message, _)| message);
            let mut body: Vec<&str> = inline.into_iter().collect();
            body.extend(
                section[index + 1..]
                    .iter()
                    .take_while(|line| !is_backtrace_start(line))
                    .copied(),
            );
            body
        }
        None => section.to_vec(),
    };
    let text = body.join("\n");
    let text = text.trim();
    if text.is_empty() {
        "the test failed without a message".to_string()
    } else {
        text.to_string()
    }
}

/// Where the panic message ends: the backtrace, or the note offering one.
fn is_backtrace_start(line: &str) -> bool {
    line.starts_with("note: run with `RUST_BACKTRACE") || line == "stack backtrace:"
}

/// `thread 'NAME' panicked at …` (recent versions add ` (TID)` after the name).
fn is_panic_line(line: &str) -> bool {
    line.starts_with("thread '") && line.contains(" panicked at ")
}

/// The first compiler error of a failed build, with its ` --> file:line`
/// location when there is one, e.g.
/// `error[E0308]: mismatched types --> labs/02-pipes/src/lib.rs:12:5`.
pub fn first_compile_error(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().collect();
    let index = lines
        .iter()
        .position(|line| line.starts_with("error[") || line.starts_with("error:"))?;
    let mut message = lines[index].trim().to_string();
    if let Some(location) = lines
        .get(index + 1)
        .and_then(|next| next.trim_start().strip_prefix("--> "))
    {
        message.push_str(" --> ");
        message.push_str(location.trim());
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = "\
   Compiling pipes v0.1.0 (/course/labs/02-pipes)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 1.02s
     Running tests/02-pipes.rs (target/debug/deps/pipes-0123)

running 4 tests
test limits::reports_pipe_buf ... ok
test reader_sees_eof_after_writer_closes ... FAILED
test writer_gets_epipe ... FAILED
test slow_one ... ignored, needs a second core

failures:

---- reader_sees_eof_after_writer_closes stdout ----
spawned: target/debug/pipes eof

thread 'reader_sees_eof_after_writer_closes' (4242) panicked at tests/02-pipes.rs:88:9:
the reader never saw EOF: close the write end you do not use (book: 02-pipes.md#eof)
expected exit status 0, got: killed after 5 s
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- writer_gets_epipe stdout ----
thread 'writer_gets_epipe' panicked at 'old style message', tests/02-pipes.rs:9:5
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    reader_sees_eof_after_writer_closes
    writer_gets_epipe

test result: FAILED. 1 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 5.01s

error: test failed, to rerun pass `-p pipes --test pipes`
";

    #[test]
    fn results_and_messages_are_read() {
        let run = parse(MIXED);
        let names: Vec<(&str, Outcome)> = run
            .tests
            .iter()
            .map(|t| (t.name.as_str(), t.outcome))
            .collect();
        assert_eq!(
            names,
            [
                ("limits::reports_pipe_buf", Outcome::Passed),
                ("reader_sees_eof_after_writer_closes", Outcome::Failed),
                ("writer_gets_epipe", Outcome::Failed),
                ("slow_one", Outcome::Ignored),
            ]
        );
        assert_eq!(run.passed(), 1);
        assert_eq!(run.total(), 3);
        assert_eq!(run.tests[0].message, None);
        assert_eq!(
            run.tests[1].message.as_deref(),
            Some(
                "the reader never saw EOF: close the write end you do not use (book: 02-pipes.md#eof)\n\
                 expected exit status 0, got: killed after 5 s"
            )
        );
        assert_eq!(run.tests[2].message.as_deref(), Some("old style message"));
    }

    #[test]
    fn all_passing() {
        let out = "running 2 tests\ntest a ... ok\ntest b::c ... ok\n\n\
                   test result: ok. 2 passed; 0 failed; 0 ignored\n";
        let run = parse(out);
        assert_eq!((run.passed(), run.total()), (2, 2));
        assert!(run.tests.iter().all(|t| t.message.is_none()));
    }

    #[test]
    fn a_failure_without_panic_keeps_its_output() {
        let out = "running 1 test\ntest returns_err ... FAILED\n\nfailures:\n\n\
                   ---- returns_err stdout ----\nError: no such file\n\n\nfailures:\n    returns_err\n";
        let run = parse(out);
        assert_eq!(run.tests[0].message.as_deref(), Some("Error: no such file"));
    }

    #[test]
    fn a_backtrace_is_left_out_of_the_message() {
        let out = "running 1 test\ntest t ... FAILED\n\nfailures:\n\n---- t stdout ----\n\n\
                   thread 't' (7) panicked at tests/t.rs:3:5:\nno EOF\nstack backtrace:\n   0: x\n";
        let run = parse(out);
        assert_eq!(run.tests[0].message.as_deref(), Some("no EOF"));
    }

    #[test]
    fn a_crashed_test_binary_still_counts_every_announced_test() {
        let out = "running 3 tests\ntest a ... ok\n";
        let run = parse(out);
        assert_eq!((run.passed(), run.total()), (1, 3));
    }

    #[test]
    fn compile_errors_are_found_with_their_location() {
        let err = "   Compiling pipes v0.1.0 (/course/labs/02-pipes)\n\
                   warning: unused variable: `x`\n\
                   error[E0308]: mismatched types\n  --> labs/02-pipes/src/lib.rs:12:5\n   |\n\
                   error: could not compile `pipes` (lib) due to 1 previous error\n";
        let run = parse(err);
        assert!(run.tests.is_empty());
        assert_eq!(
            first_compile_error(err).as_deref(),
            Some("error[E0308]: mismatched types --> labs/02-pipes/src/lib.rs:12:5")
        );
        let missing = "error: no test target named `pipes` in `pipes` package\n";
        assert_eq!(
            first_compile_error(missing).as_deref(),
            Some("error: no test target named `pipes` in `pipes` package")
        );
        assert_eq!(first_compile_error("all good\n"), None);
    }
}
