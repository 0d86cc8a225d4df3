//! Grading suite of lab 02 (pipes).
//!
//! Compiled into both the lab (`labs/02-pipes`) and the reference solution;
//! every test runs the program as a black box through the grader, which also
//! fails a test when a child is left unreaped or still running.

use std::time::Duration;

use grader::{Lab, Sandbox, assert_transcript};

const CHAPTER: &str = "02-pipes.md";

/// A program that hangs on a pipe hangs for good: no need to wait long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a reader hangs, in the words the chapter uses.
const NO_EOF: &str = "the reader never saw end-of-file. read() returns 0 only once every \
                      copy of the write end is closed: in the parent after writing, in \
                      each child that does not write (children inherit both ends)";

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

// ---- TODO 1: limits ------------------------------------------------------

#[test]
fn limits_reports_pipe_buf_and_capacity() {
    let run = lab()
        .cmd(["limits"])
        .section("Task 1: ask the kernel")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

// ---- TODO 2: parent to child ---------------------------------------------

#[test]
fn child_counts_what_the_parent_sends() {
    let run = lab()
        .cmd(["count"])
        .stdin("one\ntwo\nthree\n")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section("Task 2: parent to child")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn child_sees_end_of_file_on_empty_input() {
    let run = lab()
        .cmd(["count"])
        .stdin("")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section("Task 2: parent to child")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn input_larger_than_the_pipe_flows_through() {
    // 1 MiB is sixteen times the default capacity: the parent's write
    // blocks until the child has read, many times over.
    let input: Vec<u8> = (0..1u32 << 20)
        .map(|i| if i % 64 == 63 { b'\n' } else { b'x' })
        .collect();
    let run = lab()
        .cmd(["count"])
        .stdin(input)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "a full pipe blocks the writer until the reader catches up. Fork first, \
             then write while the child reads; and close every unused write end, \
             or the child never sees end-of-file",
        )
        .section("Task 2: parent to child")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

// ---- TODO 3: writing to a pipe whose reader left --------------------------

#[test]
fn numbers_prints_every_line_and_flushes() {
    let run = lab()
        .cmd(["numbers", "5"])
        .section("Task 3: when the reader leaves")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn numbers_stops_quietly_when_the_reader_leaves() {
    let lab = lab();
    // `head` exits after three lines; every later write gets EPIPE. The
    // script is fixed text; the program's path is passed as $0, not spliced.
    let run = lab
        .script_in(
            Sandbox::new(),
            r#"{ "$0" numbers 1000000; echo "numbers: exit status $?" >&2; } | head -n 3"#,
        )
        .section("Task 3: when the reader leaves")
        .run();
    run.expect_success();
    if run.stderr.contains("Broken pipe") || run.stderr.contains("panicked") {
        run.fail(
            "complained when its reader went away",
            "EPIPE (io::ErrorKind::BrokenPipe) means nobody reads any more: stop and \
             return Ok(()); println! would panic here, so write to `out` instead",
        );
    }
    assert_transcript!(run);
}

// ---- TODO 4: left | right -------------------------------------------------

/// Runs `words` through the lab's `pipeline` and `script` through the shell,
/// and fails unless both print the same and exit the same way.
fn assert_same_as_shell(words: &[&str], script: &str) -> grader::Run {
    let run = lab()
        .cmd(["pipeline"].iter().chain(words))
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section("Task 4: a two-stage pipeline")
        .run();
    run.expect_same_as_shell(
        script,
        Sandbox::new(),
        "dup2 the write end onto 1 in the left child and the read end onto 0 in \
         the right child; exit with the right command's status",
    );
    run
}

#[test]
fn pipeline_feeds_left_output_to_right_input() {
    let run = assert_same_as_shell(
        &["printf", "c\\nb\\na\\n", "--", "sort"],
        r"printf 'c\nb\na\n' | sort",
    );
    assert_transcript!(run);
}

#[test]
fn pipeline_right_side_sees_end_of_file() {
    // wc prints only after end-of-file: it hangs if anyone keeps a write end.
    let run = assert_same_as_shell(&["echo", "hello", "--", "wc", "-c"], "echo hello | wc -c");
    assert_transcript!(run);
}

#[test]
fn pipeline_carries_more_than_the_pipe_holds() {
    let run = assert_same_as_shell(
        &["seq", "1", "200000", "--", "wc", "-l"],
        "seq 1 200000 | wc -l",
    );
    assert_transcript!(run);
}

#[test]
fn pipeline_left_side_dies_quietly_when_the_right_side_leaves() {
    // `head` exits after one line; `seq` must then die of SIGPIPE without a
    // word, as in a shell, which needs SIGPIPE's default action back.
    let run = lab()
        .cmd(["pipeline", "seq", "1", "1000000", "--", "head", "-n", "1"])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section("Task 4: a two-stage pipeline")
        .run();
    run.expect_success();
    if run.stderr.contains("Broken pipe") {
        run.fail(
            "the left command complained about a broken pipe",
            "Rust ignores SIGPIPE and children inherit that across exec: reset it with \
             signal(Signal::SIGPIPE, SigHandler::SigDfl) in each child before execvp",
        );
    }
    assert_transcript!(run);
}

#[test]
fn pipeline_exits_with_the_right_commands_status() {
    let run = assert_same_as_shell(
        &["true", "--", "sh", "-c", "exit 4"],
        "true | sh -c 'exit 4'",
    );
    assert_transcript!(run);
}

#[test]
fn pipeline_reports_a_program_that_cannot_run() {
    let run = lab()
        .cmd(["pipeline", "no-such-program-in-path", "--", "cat"])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section("Task 4: a two-stage pipeline")
        .run();
    run.expect_success();
    if run.stderr.lines().count() != 1 {
        run.fail(
            "did not report the failed exec on exactly one line",
            "when execvp fails, print one line on stderr and _exit(127) in the child",
        );
    }
    assert_transcript!(run);
}

// ---- TODO 5: many writers, one pipe ---------------------------------------

#[test]
fn writes_up_to_pipe_buf_never_interleave() {
    // 4 writers x 64 records x 4096 bytes = 1 MiB through a 64 KiB pipe.
    let run = lab()
        .cmd(["gather", "4", "4096", "64"])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the writers send far more than the pipe holds, so they block until \
             someone reads. Read to end-of-file first, reap the writers after; and \
             close the parent's write end before reading",
        )
        .section("Task 5: atomic writes")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn every_writer_is_counted() {
    let run = lab()
        .cmd(["gather", "26", "100", "10"])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section("Task 5: atomic writes")
        .run();
    run.expect_success();
    assert_transcript!(run);
}
