//! Grading suite of lab 03 (popen and coprocesses).
//!
//! Compiled into both the lab (`labs/03-popen`) and the reference solution;
//! every test runs the program as a black box through the grader, which also
//! fails a test when a child is left unreaped or still running. The shell
//! command lines below are fixed text: nothing from outside is spliced in.

use std::time::Duration;

use grader::{Lab, Run, Sandbox, assert_transcript};

const CHAPTER: &str = "03-popen.md";

/// A program that hangs on a pipe hangs for good: no need to wait long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

const TASK_1: &str = "Task 1: popen and pclose";
const TASK_2: &str = "Task 2: a command without a shell";
const TASK_3: &str = "Task 3: a pipeline of N commands";
const TASK_4: &str = "Task 4: a coprocess";
const TASK_5: &str = "Task 5: feed and drain a filter at once";

/// Why a command that reads its input to the end hangs.
const NO_EOF: &str = "the command never saw end-of-file. It gets it only once every copy \
                      of the pipe's write end is closed: pclose must drop the pipe before \
                      waitpid, and the child must not keep the originals after dup2 \
                      (pipe2(O_CLOEXEC) closes them at exec)";

// ANCHOR: ps_listing
/// A fixed `ps -ef` listing: the stand-in for the process table in the
/// notes' `ps -ef | grep … | awk '{print $2}' | xargs kill -9`.
const PS_LISTING: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 09:12 ?        00:00:02 /sbin/init
root         412       1  0 09:12 ?        00:00:00 /usr/sbin/sshd -D
alice       1201       1  0 09:15 ?        00:00:07 ./myserver --port 8080
alice       1202    1201  0 09:15 ?        00:00:01 ./myserver --worker 1
alice       1305     987  0 09:20 pts/0    00:00:00 vim myserver.conf
bob         2210       1  0 09:31 ?        00:00:00 /usr/bin/python3 report.py
alice       4242     990  0 10:02 pts/1    00:00:00 grep myserver
";
// ANCHOR_END: ps_listing

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// A sandbox holding `notes.txt`, three lines long.
fn sandbox_with_notes() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_file("notes.txt", "one\ntwo\nthree\n");
    sandbox
}

/// A sandbox holding the fixed process listing as `ps.txt`.
fn sandbox_with_ps_listing() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_file("ps.txt", PS_LISTING);
    sandbox
}

// ---- TODO 1: popen and pclose ---------------------------------------------

#[test]
fn read_prints_every_line_the_command_writes() {
    // The notes' example: popen("ls", "r"), then fgets until NULL.
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("docs")).expect("create docs/");
    for name in ["docs/fifo.md", "docs/pipe.md", "docs/popen.md"] {
        sandbox.write_file(name, "notes\n");
    }
    let run = lab()
        .cmd_in(sandbox, ["read", "ls docs"])
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn read_runs_the_command_through_the_shell() {
    let run = lab()
        .cmd(["read", "echo $((6 * 7)) words | tr a-z A-Z; exit 3"])
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run();
    if run.stdout.contains("$((") || run.stdout.contains("words") {
        run.fail(
            "the command line was not run by a shell",
            "popen runs execv(\"/bin/sh\", [\"sh\", \"-c\", command]): the shell expands \
             $((…)) and runs the | and the ;",
        );
    }
    if run.code() != Some(3) && run.stderr.is_empty() {
        run.fail(
            format!(
                "exited with {:?}, but the command exited with status 3",
                run.code()
            ),
            "pclose must return the status waitpid gives it, unchanged",
        );
    }
    run.expect_code(3);
    assert_transcript!(run);
}

#[test]
fn write_feeds_the_command_until_end_of_file() {
    // sort prints nothing before end-of-file on its standard input.
    let run = lab()
        .cmd(["write", "sort -r"])
        .stdin("banana\ncherry\napple\n")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section(TASK_1)
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn read_commands_die_quietly_when_their_reader_leaves() {
    // The shell and everything it starts inherit popen's child's SIGPIPE
    // disposition, and a shell cannot undo an ignored SIGPIPE.
    let run = lab()
        .cmd(["read", "seq 1 1000000 | head -n 1"])
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run();
    if run.stderr.contains("Broken pipe") {
        run.fail(
            "a command run by the shell complained about a broken pipe",
            "Rust ignores SIGPIPE and an ignored signal stays ignored across exec, into \
             the shell and every command it runs: reset it with signal(Signal::SIGPIPE, \
             SigHandler::SigDfl) in the child before execv",
        );
    }
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn popen_lets_a_file_name_run_a_command() {
    // The unsafe way: `wc -l FILE` built as text. The "file name" ends the
    // wc command with `;` and starts another one.
    let run = lab()
        .cmd_in(
            sandbox_with_notes(),
            ["lines", "--shell", "notes.txt; touch PWNED"],
        )
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run();
    if !run.sandbox.path("PWNED").exists() {
        run.fail(
            "the `; touch PWNED` in the file name did not run",
            "popen must hand its command line to /bin/sh -c, exactly as POSIX popen does: \
             this test shows what a shell makes of a `;` in text pasted into a command",
        );
    }
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn pclose_retries_a_wait_interrupted_by_sigchld() {
    // The command closes its output, so pclose is soon blocked in waitpid;
    // then a SIGCHLD arrives (as when another child ends) and interrupts it.
    let run = lab()
        .cmd([
            "read",
            "--sigchld",
            "interrupt",
            "echo started; exec >&-; sleep 0.2; kill -s CHLD $PPID; sleep 0.2; exit 5",
        ])
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run_unchecked();
    // Giving up leaves the command running: say why before the grader
    // reports the leftover.
    if run.stderr.contains("EINTR") {
        run.fail(
            "pclose gave up when a signal interrupted waitpid (EINTR)",
            "a SIGCHLD handler installed without SA_RESTART makes a blocked waitpid fail \
             with EINTR: nothing is wrong, call waitpid again",
        );
    }
    run.check_finished_cleanly();
    run.expect_code(5);
    assert_transcript!(run);
}

#[test]
fn pclose_reports_a_child_that_a_sigchld_handler_reaped() {
    // The handler calls waitpid(-1, WNOHANG) and takes the command's status
    // before pclose asks for it.
    let run = lab()
        .cmd(["read", "--sigchld", "reap", "echo hi"])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "pclose kept calling waitpid after it failed with ECHILD. Only EINTR is worth \
             retrying: ECHILD means the child's status is gone for good",
        )
        .section(TASK_1)
        .run();
    if run.code() == Some(0) {
        run.fail(
            "reported success for a status it never received",
            "the SIGCHLD handler reaped the child, so waitpid fails with ECHILD: return \
             that error (`waitpid: ECHILD: …`) instead of inventing a status",
        );
    }
    run.expect_code(1);
    assert_transcript!(run);
}

// ---- TODO 2: a command without a shell ------------------------------------

#[test]
fn run_passes_every_argument_unchanged() {
    let run = lab()
        .cmd(["run", "printf", "[%s]\\n", "two words", "$HOME", "*", ""])
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    if run.stdout.contains("[two]") || run.stdout.contains("[SANDBOX]") {
        run.fail(
            "an argument was split or expanded",
            "spawn passes argv to execvp as it is: no shell, so nothing splits words or \
             expands $HOME and *",
        );
    }
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn run_writes_into_a_program() {
    let run = lab()
        .cmd(["run", "--write", "sort", "-r"])
        .stdin("banana\ncherry\napple\n")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section(TASK_2)
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn run_reports_a_program_that_cannot_run() {
    let run = lab()
        .cmd(["run", "no-such-program-in-path"])
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    if run.stderr.starts_with("sh:") {
        run.fail(
            "a shell reported the missing program",
            "spawn runs the program itself with execvp, without a shell in between",
        );
    }
    if run.stderr.lines().count() != 1 {
        run.fail(
            "did not report the failed exec on exactly one line",
            "when execvp fails, the child prints `popen: cannot run PROGRAM: ERRNO` and \
             leaves with _exit(127); it must never return into the parent's code",
        );
    }
    run.expect_code(127);
    assert_transcript!(run);
}

#[test]
fn spawn_treats_a_hostile_file_name_as_a_name() {
    let run = lab()
        .cmd_in(sandbox_with_notes(), ["lines", "notes.txt; touch PWNED"])
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    if run.sandbox.path("PWNED").exists() {
        run.fail(
            "the file name `notes.txt; touch PWNED` ran `touch PWNED`",
            "spawn must not involve a shell: execvp the words as they are, and `wc` gets \
             one argument that happens to contain a `;`",
        );
    }
    // wc cannot open a file of that name, says so, and exits with status 1.
    run.expect_code(1);
    assert_transcript!(run);
}

// ---- TODO 3: a pipeline of N commands --------------------------------------

/// Runs `words` through the lab's `pipeline` and `script` through the shell,
/// each in a sandbox made by `sandbox`, and fails unless both print the same
/// and exit the same way.
fn assert_same_as_shell(sandbox: fn() -> Sandbox, words: &[&str], script: &str) -> Run {
    let run = lab()
        .cmd_in(sandbox(), ["pipeline"].iter().chain(words))
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "a stage never saw end-of-file, or waited on a full pipe. Every copy of \
             every pipe end must be closed except the one dup2 put on 0 or 1: in the \
             parent as soon as the stage that uses it is forked, in every child before \
             exec. And start all stages before waiting for any",
        )
        .section(TASK_3)
        .run();
    run.expect_same_as_shell(
        script,
        sandbox(),
        "stage i reads pipe i-1 on descriptor 0 and writes pipe i on descriptor 1 \
         (the first reads our stdin, the last writes our stdout); the pipeline's \
         status is the last stage's",
    );
    run
}

/// Fails if a stage complained about a write to a pipe with no reader.
fn fail_if_a_stage_ignored_sigpipe(run: &Run) {
    if run.stderr.contains("Broken pipe") {
        run.fail(
            "a stage complained about a broken pipe",
            "Rust ignores SIGPIPE and children inherit that across exec: reset it with \
             signal(Signal::SIGPIPE, SigHandler::SigDfl) in each child before execvp",
        );
    }
}

#[test]
fn pipeline_finds_pids_as_the_notes_command_line_does() {
    // ps -ef | grep myserver | awk '{print $2}' | xargs kill -9, with a fixed
    // listing for ps and `echo kill -9` for kill.
    let run = assert_same_as_shell(
        sandbox_with_ps_listing,
        &[
            "cat",
            "ps.txt",
            "--",
            "grep",
            "myserver",
            "--",
            "awk",
            "{print $2}",
            "--",
            "xargs",
            "echo",
            "kill",
            "-9",
        ],
        "cat ps.txt | grep myserver | awk '{print $2}' | xargs echo kill -9",
    );
    assert_transcript!(run);
}

#[test]
fn pipeline_of_one_command_needs_no_pipe() {
    let run = assert_same_as_shell(Sandbox::new, &["echo", "alone"], "echo alone");
    assert_transcript!(run);
}

#[test]
fn pipeline_exits_with_the_last_commands_status() {
    // grep -c prints 0 and exits with status 1 when nothing matches.
    let run = assert_same_as_shell(
        sandbox_with_ps_listing,
        &[
            "cat",
            "ps.txt",
            "--",
            "sort",
            "--",
            "grep",
            "-c",
            "nosuchserver",
        ],
        "cat ps.txt | sort | grep -c nosuchserver",
    );
    assert_transcript!(run);
}

#[test]
fn pipeline_carries_more_than_a_pipe_holds_through_every_stage() {
    // 1.2 MB through three pipes: wc prints only after end-of-file, which
    // reaches it only if every stage closed every end it does not use.
    let run = assert_same_as_shell(
        Sandbox::new,
        &[
            "seq", "1", "200000", "--", "cat", "--", "cat", "--", "wc", "-l",
        ],
        "seq 1 200000 | cat | cat | wc -l",
    );
    assert_transcript!(run);
}

#[test]
fn pipeline_stages_die_quietly_when_the_last_one_leaves() {
    // head exits after two lines: cat, then seq, must die of SIGPIPE without
    // a word, as in a shell.
    let run = assert_same_as_shell(
        Sandbox::new,
        &["seq", "1", "1000000", "--", "cat", "--", "head", "-n", "2"],
        "seq 1 1000000 | cat | head -n 2",
    );
    fail_if_a_stage_ignored_sigpipe(&run);
    assert_transcript!(run);
}

#[test]
fn pipeline_reports_a_stage_that_cannot_run() {
    let run = assert_same_as_shell(
        sandbox_with_ps_listing,
        &[
            "cat",
            "ps.txt",
            "--",
            "no-such-program-in-path",
            "--",
            "wc",
            "-l",
        ],
        "cat ps.txt | no-such-program-in-path | wc -l",
    );
    // cat writes into a pipe whose reader failed to start.
    fail_if_a_stage_ignored_sigpipe(&run);
    if run.stderr.lines().count() != 1 {
        run.fail(
            "did not report the failed exec on exactly one line",
            "when execvp fails, the child prints `popen: cannot run PROGRAM: ERRNO` and \
             leaves with _exit(127); the other stages go on",
        );
    }
    assert_transcript!(run);
}

#[test]
fn pipeline_rejects_an_empty_stage_before_starting_anything() {
    // If the first stage ever runs, it leaves a file behind.
    let run = lab()
        .cmd(["pipeline", "touch", "started", "--", "--", "cat"])
        .timeout(HANG_TIMEOUT)
        .section(TASK_3)
        .run_unchecked();
    if run.sandbox.path("started").exists() {
        run.fail(
            "started the first stage although the second one is empty",
            "check every stage (and convert it to CStrings) before the first fork: an \
             invalid pipeline must not run at all",
        );
    }
    run.check_finished_cleanly();
    run.expect_code(1);
    assert_transcript!(run);
}

// ---- TODO 4: a coprocess ----------------------------------------------------

#[test]
fn coprocess_gets_one_reply_per_request() {
    let run = lab()
        .cmd(["coproc"])
        .stdin("1 2\n3 4 5\n-7 7\nten\n")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the conversation stalled. ask() must send the request at once (one write \
             of the whole line, nothing left in a buffer) and read exactly one line back; \
             finish() must close both pipes before waitpid, or the filter never sees \
             end-of-file",
        )
        .section(TASK_4)
        .run();
    if run.stderr.contains("no reply within") {
        run.fail(
            "waited in vain for a reply from a filter that flushes every line",
            "the request probably never left this process: write the line and a newline \
             with one write_all on to_filter (flush it if you wrapped it in a BufWriter)",
        );
    }
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn coprocess_gives_up_on_a_filter_that_holds_back_its_replies() {
    // The filter keeps its replies in a 4096-byte buffer, as C stdio does
    // when standard output is a pipe: the reply never comes.
    let run = lab()
        .cmd([
            "coproc",
            "--buffering",
            "block",
            "--reply-timeout-ms",
            "300",
        ])
        .stdin("1 2\n3 4\n")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the driver waited for ever for a reply that the filter keeps in its stdio \
             buffer, while the filter waited for the next request: a deadlock. poll() the \
             read end with the timeout before reading, and report `no reply within N ms`. \
             (Or finish() waited for the filter before closing the pipes: the filter \
             exits only once it sees end-of-file)",
        )
        .section(TASK_4)
        .run();
    run.expect_code(1);
    assert_transcript!(run);
}

#[test]
fn coprocess_reports_a_filter_that_cannot_run() {
    let run = lab()
        .cmd(["coproc", "--", "no-such-filter-in-path"])
        .stdin("1 2\n")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the filter has exited: poll() then says the read end is readable and read \
             returns 0 (end-of-file). That is the end of the conversation, not a reason \
             to wait",
        )
        .section(TASK_4)
        .run();
    if run.stderr.contains("Broken pipe") || run.stderr.contains("EPIPE") {
        run.fail(
            "reported EPIPE as a plain write error",
            "a write fails with EPIPE when the filter has exited: report it as `the \
             filter ended without replying`, the same as end-of-file on the reply",
        );
    }
    if run.stderr.lines().count() != 2 {
        run.fail(
            "expected two lines on stderr: the failed exec, then the failed request",
            "when execvp fails, the child prints `popen: cannot run PROGRAM: ERRNO` and \
             leaves with _exit(127); it must never return into the parent's code",
        );
    }
    run.expect_code(1);
    assert_transcript!(run);
}

// ---- TODO 5: feed and drain a filter at once --------------------------------

#[test]
fn batch_returns_every_reply() {
    let run = lab()
        .cmd(["batch"])
        .stdin("1 2\n3 4 5\nten\n")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the filter never saw end-of-file: the writer must close to_filter (drop it) \
             once everything is written",
        )
        .section(TASK_5)
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn batch_survives_input_larger_than_both_pipes() {
    // About 1.3 MB in and 0.6 MB out, twenty times what the two pipes hold.
    let lines = 100_000u64;
    let input: String = (1..=lines).map(|n| format!("{n} {n}\n")).collect();
    let expected: String = (1..=lines).map(|n| format!("{}\n", 2 * n)).collect();
    let run = lab()
        .cmd(["batch"])
        .stdin(input)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "writing everything before reading deadlocks: the filter fills its output \
             pipe and stops reading while it waits for you, and your write blocks on its \
             full input pipe. Write on a thread while this one reads",
        )
        .section(TASK_5)
        .run();
    run.expect_success();
    if run.stdout != expected {
        let mut failure = run.failure("did not return exactly the filter's output");
        failure.details.push(format!(
            "expected {} bytes in {lines} lines, got {} bytes in {} lines",
            expected.len(),
            run.stdout.len(),
            run.stdout.lines().count()
        ));
        if let Some((at, (want, got))) = expected
            .lines()
            .zip(run.stdout.lines())
            .enumerate()
            .find(|(_, (want, got))| want != got)
        {
            failure.details.push(format!(
                "first difference at line {}: expected {want:?}, got {got:?}",
                at + 1
            ));
        }
        failure.why = Some("read from_filter to end-of-file and return every byte".into());
        failure.raise();
    }
}
