//! The grader's tracing hook, for `cargo workbook trace` (chapter 17):
//! with `WORKBOOK_TRACE_ARGV` and `WORKBOOK_TRACE_DIR` set, a lab's run goes
//! through the tracer, its command line and trace are saved, and the test
//! still sees the program itself (its pid, its output, its status).
//!
//! The variables must be set before the test process starts, so the test
//! runs this test binary again, with them, on a test that is otherwise
//! skipped.

use std::fs;
use std::process::Command;
use std::time::Duration;

use grader::{Cmd, Sandbox};

/// Set in the process that runs the inner test.
const INNER: &str = "WORKBOOK_TRACE_SELF_TEST";

/// A stand-in tracer: it writes the command it was given into its output
/// file (`$0`), then runs that command as its child and exits as it did,
/// as a real tracer does.
const FAKE_TRACER: &str = "/bin/sh\n-c\necho \"traced: $*\" > \"$0\"; \"$@\"\n{out}";

#[test]
fn a_traced_run_goes_through_the_tracer_and_still_shows_the_program() {
    if std::env::var_os(INNER).is_some() {
        return traced_runs();
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let status = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "a_traced_run_goes_through_the_tracer_and_still_shows_the_program",
            "--test-threads=1",
        ])
        .env(INNER, "1")
        .env("WORKBOOK_TRACE_ARGV", FAKE_TRACER)
        .env("WORKBOOK_TRACE_DIR", dir.path())
        .status()
        .expect("the test binary runs");
    assert!(status.success(), "the traced runs failed: {status}");
    let command = fs::read_to_string(dir.path().join("1.cmd")).expect("1.cmd");
    assert_eq!(command, "sh -c 'echo $$; read go < go; exit 3'\n");
    let trace = fs::read_to_string(dir.path().join("1.trace")).expect("1.trace");
    assert_eq!(trace, "traced: sh -c echo $$; read go < go; exit 3\n");
    // The run that is not a lab's (no chapter) was not traced.
    assert!(!dir.path().join("2.cmd").exists());
}

/// The inner test: a lab run (one with a chapter) under the fake tracer,
/// then a run that is not a lab's.
fn traced_runs() {
    // The program waits on a FIFO until its pid has been read: a program
    // (and a tracer) that had already ended would leave no child to find.
    let sandbox = Sandbox::new();
    let go = sandbox.path("go");
    let made = Command::new("mkfifo")
        .arg(&go)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", go.display());
    let mut running = Cmd::new("sh", sandbox)
        .chapter("00-intro.md")
        .args(["-c", "echo $$; read go < go; exit 3"])
        .start();
    let pid = running.pid();
    running.wait_for_stdout("\n", Duration::from_secs(5));
    fs::write(&go, "go\n").expect("the program reads the FIFO");
    let run = running.wait(Duration::from_secs(10));
    assert_eq!(
        run.stdout.trim(),
        pid.to_string(),
        "Running::pid is the program's"
    );
    assert_eq!(run.code(), Some(3), "the status is the program's");
    let plain = Cmd::new("sh", Sandbox::new()).args(["-c", "true"]).run();
    assert_eq!(plain.code(), Some(0));
}
