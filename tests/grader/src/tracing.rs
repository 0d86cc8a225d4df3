//! Running a test's programs under a system call tracer, for `cargo
//! workbook trace LAB TEST` (chapter 17).
//!
//! # What it does
//!
//! When the test process's environment has
//!
//! * `WORKBOOK_TRACE_ARGV`: a tracer's command line, one word per line, in
//!   which `{out}` stands for the file the tracer must write its trace to
//!   (`/path/to/ptrace\nrun\n-o\n{out}\n--`, or strace's `-f -o {out}`),
//! * `WORKBOOK_TRACE_DIR`: a directory,
//!
//! every run of a lab's program (a [`Cmd`](crate::Cmd) with a chapter:
//! made by `Lab::cmd`, `Lab::cmd_in` or `Lab::script_in`, not the shell a
//! test compares with) is started as `TRACER… PROGRAM ARGS…` instead of
//! `PROGRAM ARGS…`. Run number N of the test (from 1) leaves
//! `DIR/N.cmd`, its command line as transcripts show it, and `DIR/N.trace`,
//! what the tracer wrote. Without those variables nothing changes.
//!
//! # Why the test is run again, rather than its program replayed
//!
//! A test does more than start a program with arguments: it writes to its
//! standard input as it goes, prepares files and FIFOs in a sandbox that is
//! gone once it ends, talks to it over sockets, signals it, starts a second
//! program against the first, and draws its inputs from a seed. Recording
//! the argument vector and replaying it would run something else. Running
//! the same test again, with the same seed (`WORKBOOK_SEED`, which
//! `Varied` reads), reproduces all of that, and only the program is
//! wrapped.
//!
//! # The program is still the program
//!
//! The tracer is now the shepherd's child and the program its child; a
//! test that watches the program (`Running::pid`, `wait_until_blocked_in`,
//! `signal`) must still see the program. [`program`] maps the pid the
//! shepherd reports (the tracer's) to the tracer's first child, found in
//! `/proc`, and remembers it. The run's exit status is the tracer's, which
//! both the course's tracer and strace make the program's.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The tracer's command line, one word per line, `{out}` for its output.
pub const ARGV_VARIABLE: &str = "WORKBOOK_TRACE_ARGV";
/// Where the traces and command lines go.
pub const DIR_VARIABLE: &str = "WORKBOOK_TRACE_DIR";

/// Numbers the traced runs of this test process.
static RUNS: AtomicUsize = AtomicUsize::new(0);
/// Tracer pid → program pid, once found.
static PROGRAMS: Mutex<Option<HashMap<i32, i32>>> = Mutex::new(None);

/// How long a tracer may take to start its program.
const START_LIMIT: Duration = Duration::from_secs(5);

/// The tracer's words and the directory, if this test process traces.
fn settings() -> Option<(Vec<String>, PathBuf)> {
    let words = std::env::var(ARGV_VARIABLE).ok()?;
    let dir = std::env::var_os(DIR_VARIABLE)?;
    let words: Vec<String> = words
        .lines()
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect();
    (!words.is_empty()).then(|| (words, PathBuf::from(dir)))
}

/// Whether runs are traced in this test process.
pub(crate) fn enabled() -> bool {
    settings().is_some()
}

/// The path and argument vector to exec for a run: `path` and `argv`
/// unchanged, or, when tracing, the tracer's (its first word an absolute
/// path), with the program's whole argument vector after them. `lab_run`
/// says whether the program is a lab's; `command` is its command line as
/// transcripts show it, saved beside the trace.
pub(crate) fn wrap(
    path: CString,
    argv: Vec<CString>,
    lab_run: bool,
    command: &str,
) -> (CString, Vec<CString>) {
    let Some((words, dir)) = settings().filter(|_| lab_run) else {
        return (path, argv);
    };
    let number = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    let out = dir.join(format!("{number}.trace"));
    if fs::create_dir_all(&dir).is_err()
        || fs::write(dir.join(format!("{number}.cmd")), format!("{command}\n")).is_err()
    {
        return (path, argv);
    }
    let out = out.as_os_str().as_bytes();
    let word = |text: &str| {
        let bytes = text.as_bytes();
        let mut replaced = Vec::new();
        let mut rest = bytes;
        while let Some(at) = rest.windows(5).position(|w| w == b"{out}") {
            replaced.extend_from_slice(&rest[..at]);
            replaced.extend_from_slice(out);
            rest = &rest[at + 5..];
        }
        replaced.extend_from_slice(rest);
        CString::new(replaced).ok()
    };
    let Some(mut traced) = words.iter().map(|w| word(w)).collect::<Option<Vec<_>>>() else {
        return (path, argv);
    };
    // The program as the test named it: the tracer finds it in PATH (the
    // same) or from the sandbox (its working directory too), as exec would.
    let tracer = traced[0].clone();
    traced.extend(argv);
    (tracer, traced)
}

/// The program's pid, given the pid of the process the shepherd started:
/// the same when not tracing; the tracer's first child when tracing (it
/// waits, a few seconds at most, for the tracer to start it).
pub(crate) fn program(started: i32) -> i32 {
    if !enabled() {
        return started;
    }
    let mut known = PROGRAMS.lock().unwrap_or_else(|poison| poison.into_inner());
    let known = known.get_or_insert_with(HashMap::new);
    if let Some(&program) = known.get(&started) {
        return program;
    }
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(child) = first_child(started) {
            known.insert(started, child);
            return child;
        }
        let ended = fs::read_to_string(format!("/proc/{started}/stat"))
            .map(|stat| stat.contains(") Z "))
            .unwrap_or(true);
        if ended || Instant::now() >= deadline {
            return started;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The first child of `pid`, from `/proc/PID/task/PID/children`.
fn first_child(pid: i32) -> Option<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_tracing_changes_nothing() {
        // The unit tests of the grader never set the variables.
        let argv = vec![CString::new("prog").unwrap(), CString::new("a").unwrap()];
        let (path, same) = wrap(
            CString::new("/bin/prog").unwrap(),
            argv.clone(),
            true,
            "prog a",
        );
        assert_eq!(path.as_bytes(), b"/bin/prog");
        assert_eq!(same, argv);
        assert_eq!(program(12345), 12345);
    }
}
