//! Grading suite of lab 01 (processes): fork, exec, wait.
//!
//! Compiled into both the lab (`labs/01-processes`) and the reference
//! solution; every test runs the program as a black box through the grader,
//! which also fails a test when a child is left unreaped or still running.

use grader::{Lab, assert_transcript};

const CHAPTER: &str = "01-processes.md";

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

// ---- TODO 1: describe a wait status --------------------------------------

#[test]
fn decode_describes_every_kind_of_ending() {
    // Exit status 3, SIGTERM, SIGSEGV with core dump, stopped by SIGSTOP.
    let run = lab()
        .cmd(["decode", "768", "15", "139", "4991"])
        .section("Task 1: describe a wait status")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

// ---- TODO 2: run a program, report how it ended ---------------------------

#[test]
fn run_reports_a_normal_exit_status() {
    let run = lab()
        .cmd(["run", "sh", "-c", "exit 3"])
        .section("Task 2: fork, exec, wait")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn run_reports_death_by_a_signal() {
    let run = lab()
        .cmd(["run", "sh", "-c", "kill -TERM $$"])
        .section("Task 2: fork, exec, wait")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn run_passes_every_argument_unchanged() {
    let run = lab()
        .cmd(["run", "printf", "[%s]\\n", "two words", "", "--flag"])
        .section("Task 2: fork, exec, wait")
        .run();
    run.expect_success();
    if run.stdout.contains("[two]") {
        run.fail(
            "split an argument at its space",
            "pass argv to execvp as it is; no shell is involved, so nothing splits words",
        );
    }
    assert_transcript!(run);
}

#[test]
fn run_waits_for_the_child_before_reporting() {
    let run = lab()
        .cmd(["run", "sh", "-c", "sleep 0.2; echo late"])
        .section("Task 2: fork, exec, wait")
        .run();
    run.expect_success();
    if run.stdout_lines().first() != Some(&"late") {
        run.fail(
            "reported the status before the child had finished",
            "waitpid() blocks until the child ends; report after it returns",
        );
    }
    assert_transcript!(run);
}

#[test]
fn run_reports_a_missing_program_as_status_127() {
    let run = lab()
        .cmd(["run", "no-such-program-in-path"])
        .section("Task 2: fork, exec, wait")
        .run();
    run.expect_success();
    if run.stdout.matches("exited with status").count() > 1 {
        run.fail(
            "reported more than one status",
            "when execvp fails the child must _exit(127); returning from the child's \
             branch runs the parent's code a second time",
        );
    }
    assert_transcript!(run);
}

// ---- TODO 3: many children, all reaped ----------------------------------

#[test]
fn fan_out_reports_every_child_in_creation_order() {
    let run = lab()
        .cmd(["fanout", "5"])
        .section("Task 3: fan out and reap")
        .run();
    run.expect_success();
    let reports = run.stdout_lines().len();
    if reports > 6 {
        run.fail(
            format!("printed {reports} lines for 5 children"),
            "a child that does not _exit() right away goes on running the parent's loop \
             and forks children of its own",
        );
    }
    assert_transcript!(run);
}

#[test]
fn fan_out_reaps_every_one_of_many_children() {
    // The grader fails this test by itself if any child is left a zombie.
    let run = lab()
        .cmd(["fanout", "60"])
        .section("Task 3: fan out and reap")
        .run();
    run.expect_success();
    let last = run.stdout_lines().last().copied().unwrap_or("");
    if last != "reaped 60 of 60 children" {
        run.fail(
            format!("ended with {last:?}"),
            "wait for every child you forked, in the order you forked them",
        );
    }
    for k in 1..=60 {
        let expected = format!("child {k}: exited with status {k}");
        if !run.stdout_lines().contains(&expected.as_str()) {
            run.fail(
                format!("no line {expected:?}"),
                "child k must exit with status k, and statuses come back in creation order",
            );
        }
    }
}

#[test]
fn fan_out_of_no_children_reaps_nothing() {
    let run = lab()
        .cmd(["fanout", "0"])
        .section("Task 3: fan out and reap")
        .run();
    run.expect_success();
    assert_transcript!(run);
}

// ---- TODO 4: buffers duplicated by fork ----------------------------------

#[test]
fn output_buffered_before_fork_is_written_once() {
    let run = lab()
        .cmd(["greet"])
        .section("Task 4: buffers and fork")
        .run();
    run.expect_success();
    let copies = run.stdout.matches("parent: about to fork").count();
    if copies > 1 {
        run.fail(
            format!("\"parent: about to fork\" appears {copies} times"),
            "fork() copied the unflushed buffer into the child, which wrote it again: \
             flush before you fork",
        );
    }
    if !run.stdout.contains("child: hello from the child") {
        run.fail(
            "the child's line is missing",
            "_exit() does not flush buffers: the child must flush before it leaves",
        );
    }
    assert_transcript!(run);
}

// ---- TODO 5: descriptors across exec -------------------------------------

#[test]
fn only_descriptors_without_close_on_exec_survive_exec() {
    let sandbox = grader::Sandbox::new();
    sandbox.write_file("notes.txt", "kept open across exec\n");
    let run = lab()
        .cmd_in(sandbox, ["inherit", "notes.txt"])
        .section("Task 5: descriptors across exec")
        .run();
    run.expect_success();
    if run.stdout.contains("fd 3 ->") {
        run.fail(
            "descriptor 3 survived exec",
            "open the first descriptor with O_CLOEXEC: the kernel closes it during exec",
        );
    }
    if !run.stdout.contains("fd 4 ->") {
        run.fail(
            "descriptor 4 did not survive exec",
            "open the second descriptor without O_CLOEXEC (std::fs::File always sets \
             it; use nix::fcntl::open), and keep it open until after fork",
        );
    }
    assert_transcript!(run);
}

#[test]
fn inherit_reports_a_missing_file_and_fails() {
    let run = lab()
        .cmd(["inherit", "missing.txt"])
        .section("Task 5: descriptors across exec")
        .run();
    run.expect_code(1);
    if run.stderr.lines().count() != 1 || !run.stderr.contains("missing.txt") {
        run.fail(
            "did not report the error on one line naming the file",
            "return the open error with context, e.g. .with_context(|| format!(\"open {}\", …))",
        );
    }
    assert_transcript!(run);
}
