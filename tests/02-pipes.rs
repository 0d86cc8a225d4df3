//! Grading suite of lab 02 (pipes).
//!
//! Compiled into both the lab (`labs/02-pipes`) and the reference solution;
//! every test runs the program as a black box through the grader, which also
//! fails a test when a child is left unreaped or still running. Inputs vary
//! from run to run (a failing test prints its seed), and limits are read
//! from this machine's kernel, never written into the test.

use std::time::Duration;

use grader::{Lab, Run, Sandbox, Varied};
use nix::fcntl::{FcntlArg, fcntl};
use nix::unistd::{PathconfVar, fpathconf, pipe};

const CHAPTER: &str = "02-pipes.md";

const TASK_1: &str = "Task 1: ask the kernel";
const TASK_2: &str = "Task 2: parent to child";
const TASK_3: &str = "Task 3: when the reader leaves";
const TASK_4: &str = "Task 4: a two-stage pipeline";
const TASK_5: &str = "Task 5: atomic writes";

/// A program that hangs on a pipe hangs for good: no need to wait long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the counting child hangs, in the words the chapter uses.
const NO_EOF: &str = "the child never saw end-of-file. read() returns 0 only once every \
                      copy of the write end is closed: the child must close its own copy \
                      right after fork, and the parent its copy once everything is written, \
                      before it waits";

/// Why a pipeline's right command hangs.
const PIPELINE_NO_EOF: &str = "the right command never saw end-of-file: every copy of the \
                               write end must be closed but the left child's descriptor 1: \
                               the parent's before it waits, and in each child the originals \
                               after dup2 (pipe2(O_CLOEXEC) closes them at exec)";

/// Why the parent of the writers hangs.
const GATHER_NO_EOF: &str = "the parent never saw end-of-file: it must close its own write \
                             end before it reads (each writer closes its copy by exiting)";

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// `PIPE_BUF` and the capacity of a new pipe on this machine, asked the way
/// the lab asks, after asking for `capacity` bytes if given.
fn kernel_limits(capacity: Option<usize>) -> (usize, usize) {
    let (read_end, _write_end) = pipe().expect("pipe");
    if let Some(wanted) = capacity {
        fcntl(&read_end, FcntlArg::F_SETPIPE_SZ(wanted as i32)).expect("F_SETPIPE_SZ");
    }
    let pipe_buf = fpathconf(&read_end, PathconfVar::PIPE_BUF)
        .expect("fpathconf")
        .expect("a PIPE_BUF");
    let held = fcntl(&read_end, FcntlArg::F_GETPIPE_SZ).expect("F_GETPIPE_SZ");
    (pipe_buf as usize, held as usize)
}

/// `count` random lines of lower-case words, each ending in a newline.
fn random_lines(vary: &mut Varied, count: u64) -> String {
    (0..count)
        .map(|_| {
            let len = vary.between(0, 12) as usize;
            format!("{}\n", vary.word(len))
        })
        .collect()
}

/// What `count` prints for `input`.
fn count_report(input: &[u8]) -> String {
    let lines = input.iter().filter(|&&b| b == b'\n').count();
    format!(
        "child: read {} bytes in {lines} lines\nparent: the child exited with status 0\n",
        input.len()
    )
}

// ---- TODO 1: limits ------------------------------------------------------

#[test]
fn limits_reports_pipe_buf_and_capacity() {
    let mut vary = Varied::new();
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let most = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20)
        .min(1 << 20);
    // The kernel rounds a request up to a power-of-two number of pages: ask
    // for a size that does not round to the default capacity, or a program
    // that never asks would pass.
    let default = kernel_limits(None).1 as u64;
    let ranges: Vec<(u64, u64)> = [(page, default / 2), (default + 1, most)]
        .into_iter()
        .filter(|(low, high)| low <= high)
        .collect();
    let (low, high) = *vary.pick(&ranges);
    let wanted = vary.between(low, high) as usize;
    for capacity in [None, Some(wanted)] {
        let (pipe_buf, held) = kernel_limits(capacity);
        let mut cmd = lab().cmd(["limits"]).section(TASK_1);
        if let Some(wanted) = capacity {
            cmd = cmd.arg("--capacity").arg(wanted.to_string());
        }
        let run = cmd.run();
        run.expect_success();
        run.expect_lines(
            &format!("PIPE_BUF: {pipe_buf} bytes\ncapacity: {held} bytes\n"),
            "ask the kernel about a real pipe: fpathconf(fd, PIPE_BUF) for PIPE_BUF, and \
             fcntl(fd, F_GETPIPE_SZ) for the capacity, after F_SETPIPE_SZ when a capacity \
             is asked for (the kernel rounds the request up)",
        );
    }
}

// ---- TODO 2: parent to child ---------------------------------------------

/// Runs `count` with `input` and checks what the child counted.
fn expect_counted(input: &[u8], why_if_timeout: &str) {
    let run = lab()
        .cmd(["count"])
        .stdin(input)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(why_if_timeout)
        .section(TASK_2)
        .run();
    run.expect_success();
    if !run.stdout.starts_with("child: read ") {
        run.fail(
            "the child's line is missing",
            "the child prints through a buffer, and _exit() flushes nothing: flush \
             before _exit",
        );
    }
    run.expect_lines(
        &count_report(input),
        "count every byte and every b'\\n' of every chunk read() returns, until it returns \
         0: one read is not one line, nor one write",
    );
}

#[test]
fn child_counts_what_the_parent_sends() {
    let mut vary = Varied::new();
    let count = vary.between(3, 20);
    expect_counted(random_lines(&mut vary, count).as_bytes(), NO_EOF);
}

#[test]
fn child_sees_end_of_file_on_empty_input() {
    let mut vary = Varied::new();
    // Nothing at all, then a last line without its newline.
    let len = vary.between(1, 30) as usize;
    for input in [String::new(), vary.word(len)] {
        expect_counted(input.as_bytes(), NO_EOF);
    }
}

#[test]
fn input_larger_than_the_pipe_flows_through() {
    let mut vary = Varied::new();
    // Four to eight times what a pipe holds on this machine: the parent's
    // write blocks until the child has read, many times over.
    let (_, capacity) = kernel_limits(None);
    let size = vary.between(4 * capacity as u64, 8 * capacity as u64) as usize;
    let width = vary.between(2, 200) as usize;
    let input: Vec<u8> = (0..size)
        .map(|i| if i % width == width - 1 { b'\n' } else { b'x' })
        .collect();
    expect_counted(
        &input,
        "a full pipe blocks the writer until the reader catches up. Fork first, then \
         write while the child reads; and close every unused write end, or the child \
         never sees end-of-file",
    );
}

// ---- TODO 3: writing to a pipe whose reader left --------------------------

#[test]
fn numbers_prints_every_line_and_flushes() {
    let mut vary = Varied::new();
    let count = vary.between(1, 200);
    let run = lab()
        .cmd(["numbers", &count.to_string()])
        .section(TASK_3)
        .run();
    run.expect_success();
    let expected: String = (1..=count).map(|n| format!("{n}\n")).collect();
    run.expect_lines(
        &expected,
        "write 1 to COUNT, one per line, then flush: lines still in the BufWriter when \
         the program ends may never be written",
    );
}

#[test]
fn numbers_stops_quietly_when_the_reader_leaves() {
    let mut vary = Varied::new();
    let kept = vary.between(1, 20);
    // `head` exits after `kept` lines; every later write gets EPIPE. The
    // script is fixed text; the program's path comes in as $0, the count as
    // $1, nothing is spliced in.
    let run = lab()
        .script_in(
            Sandbox::new(),
            r#"{ "$0" numbers 1000000; echo "numbers: exit status $?" >&2; } | head -n "$1""#,
        )
        .arg(kept.to_string())
        .section(TASK_3)
        .run();
    run.expect_success();
    if run.stderr.contains("Broken pipe") || run.stderr.contains("panicked") {
        run.fail(
            "complained when its reader went away",
            "EPIPE (io::ErrorKind::BrokenPipe) means nobody reads any more: stop and \
             return Ok(()); println! would panic here, so write to `out` instead",
        );
    }
    if run.stderr != "numbers: exit status 0\n" {
        run.fail(
            "did not exit with status 0 when its reader went away",
            "a reader that leaves early is not a failure for a program like seq or yes: \
             return Ok(()) on BrokenPipe, and an error only for anything else",
        );
    }
    let expected: String = (1..=kept).map(|n| format!("{n}\n")).collect();
    run.expect_lines(&expected, "the numbers start at 1, one per line");
}

// ---- TODO 4: left | right -------------------------------------------------

/// Runs `words` through the lab's `pipeline` and `script` through the shell,
/// and fails unless both print the same and exit the same way.
fn assert_same_as_shell(words: &[&str], script: &str, why_if_timeout: &str) -> Run {
    let run = lab()
        .cmd(["pipeline"].iter().chain(words))
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(why_if_timeout)
        .section(TASK_4)
        .run();
    run.expect_as_in_shell(
        script,
        Sandbox::new(),
        "dup2 the write end onto 1 in the left child and the read end onto 0 in the \
         right child; exit with the right command's status",
    );
    run
}

#[test]
fn pipeline_feeds_left_output_to_right_input() {
    let mut vary = Varied::new();
    let words: Vec<String> = (0..vary.between(3, 8))
        .map(|_| {
            let len = vary.between(1, 8) as usize;
            vary.word(len)
        })
        .collect();
    let lines = format!("{}\\n", words.join("\\n"));
    assert_same_as_shell(
        &["printf", &lines, "--", "sort"],
        &format!("printf '{lines}' | sort"),
        PIPELINE_NO_EOF,
    );
}

#[test]
fn pipeline_right_side_sees_end_of_file() {
    // wc prints only after end-of-file: it hangs if anyone keeps a write end.
    let mut vary = Varied::new();
    let len = vary.between(1, 40) as usize;
    let word = vary.word(len);
    assert_same_as_shell(
        &["echo", &word, "--", "wc", "-c"],
        &format!("echo {word} | wc -c"),
        PIPELINE_NO_EOF,
    );
}

#[test]
fn pipeline_carries_more_than_the_pipe_holds() {
    let mut vary = Varied::new();
    let last = vary.between(100_000, 200_000).to_string();
    assert_same_as_shell(
        &["seq", "1", &last, "--", "wc", "-l"],
        &format!("seq 1 {last} | wc -l"),
        "the right command never saw end-of-file, or the left one blocked on a full \
         pipe: close every copy of the write end but the left child's descriptor 1, and \
         fork both children before waiting for either (the left one cannot finish while \
         nobody reads)",
    );
}

#[test]
fn pipeline_left_side_dies_quietly_when_the_right_side_leaves() {
    // `head` exits after a few lines; `seq` must then die of SIGPIPE without
    // a word, as in a shell, which needs SIGPIPE's default action back.
    let mut vary = Varied::new();
    let kept = vary.between(1, 20);
    let run = lab()
        .cmd(["pipeline", "seq", "1", "1000000", "--", "head", "-n"])
        .arg(kept.to_string())
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(PIPELINE_NO_EOF)
        .section(TASK_4)
        .run();
    run.expect_success();
    if run.stderr.contains("Broken pipe") {
        run.fail(
            "the left command complained about a broken pipe",
            "Rust ignores SIGPIPE and children inherit that across exec: reset it with \
             signal(Signal::SIGPIPE, SigHandler::SigDfl) in each child before execvp",
        );
    }
    let expected: String = (1..=kept).map(|n| format!("{n}\n")).collect();
    run.expect_lines(&expected, "the right command's output is the pipeline's");
}

#[test]
fn pipeline_exits_with_the_right_commands_status() {
    let mut vary = Varied::new();
    let (left, right) = (vary.between(0, 120), vary.between(121, 125));
    let (left, right) = if vary.one_in(2) {
        (left, right)
    } else {
        (right, left)
    };
    let (left, right) = (format!("exit {left}"), format!("exit {right}"));
    let run = lab()
        .cmd(["pipeline", "sh", "-c", &left, "--", "sh", "-c", &right])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(PIPELINE_NO_EOF)
        .section(TASK_4)
        .run();
    run.expect_as_in_shell(
        &format!("sh -c '{left}' | sh -c '{right}'"),
        Sandbox::new(),
        "a pipeline exits with the status of its right (last) command: wait for both \
         children and return (left, right), each status with its own child",
    );
}

#[test]
fn pipeline_reports_a_program_that_cannot_run() {
    let mut vary = Varied::new();
    let missing = format!("no-such-program-{}", vary.word(6));
    let run = lab()
        .cmd(["pipeline", &missing, "--", "cat"])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "a child whose execvp failed must print one line and _exit(127) at once; a \
             child that returns instead runs the rest of the parent's code, forks a right \
             command of its own and keeps copies of the pipe open, so nobody sees \
             end-of-file",
        )
        .section(TASK_4)
        .run();
    run.expect_success();
    if run.stderr.lines().count() != 1 {
        run.fail(
            "did not report the failed exec on exactly one line",
            "when execvp fails, print one line on stderr and _exit(127) in the child; a \
             child that returns instead runs the rest of the parent's code",
        );
    }
    let expected = format!("pipes: cannot run {missing}: ENOENT: No such file or directory\n");
    if run.stderr != expected {
        let mut failure = run.failure("did not report the failed exec as expected");
        failure
            .details
            .push(format!("expected stderr: {expected:?}"));
        failure.why =
            Some("print `pipes: cannot run PROGRAM: ERRNO` in the child, then _exit(127)".into());
        failure.raise();
    }
}

// ---- TODO 5: many writers, one pipe ---------------------------------------

/// What `gather WRITERS SIZE RECORDS` prints when no record was torn.
fn gather_report(writers: u64, records: u64) -> String {
    let mut report = format!(
        "records: {}\nintact: {}\n",
        writers * records,
        writers * records
    );
    for writer in 1..=writers {
        report.push_str(&format!("writer {writer}: {records} intact\n"));
    }
    report
}

/// Runs `gather` and checks that every record arrived whole.
fn expect_gathered(writers: u64, size: usize, records: u64, why_if_timeout: &str) {
    let run = lab()
        .cmd([
            "gather".to_string(),
            writers.to_string(),
            size.to_string(),
            records.to_string(),
        ])
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(why_if_timeout)
        .section(TASK_5)
        .run();
    run.expect_success();
    run.expect_lines(
        &gather_report(writers, records),
        "writer w (1-based) writes `records` records, each one write(2) of `size` bytes: \
         its letter size - 1 times, then b'\\n'. Records of at most PIPE_BUF bytes never \
         tear; cut the bytes read into records of `size` and count those of one letter",
    );
}

#[test]
fn writes_up_to_pipe_buf_never_interleave() {
    let mut vary = Varied::new();
    // Records of exactly PIPE_BUF bytes, several times what the pipe holds.
    let (pipe_buf, capacity) = kernel_limits(None);
    let writers = vary.between(3, 8);
    let records = (4 * capacity / pipe_buf) as u64 / writers + vary.between(1, 32);
    expect_gathered(
        writers,
        pipe_buf,
        records,
        "the writers send far more than the pipe holds, so they block until someone \
         reads. Read to end-of-file first, reap the writers after; and close the \
         parent's write end before reading",
    );
}

#[test]
fn every_writer_is_counted() {
    let mut vary = Varied::new();
    let (pipe_buf, _) = kernel_limits(None);
    let size = vary.between(2, pipe_buf as u64 / 4) as usize;
    let records = vary.between(5, 20);
    expect_gathered(26, size, records, GATHER_NO_EOF);
}
