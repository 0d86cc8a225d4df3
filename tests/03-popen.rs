//! Grading suite of lab 03 (popen and coprocesses).
//!
//! Compiled into both the lab (`labs/03-popen`) and the reference solution;
//! every test runs the program as a black box through the grader, which also
//! fails a test when a child is left unreaped or still running. The shell
//! command lines below are test text: what varies in them from run to run
//! (words, numbers, the listing's process IDs) is made here from lower-case
//! letters and digits, never taken from outside. A failing test prints the
//! seed that repeats its inputs.

use std::time::{Duration, Instant};

use grader::{Lab, Run, Sandbox, Varied};

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
/// A `ps -ef` listing: the stand-in for the process table in the notes'
/// `ps -ef | grep … | awk '{print $2}' | xargs kill -9`. Each test changes
/// its process IDs, drops some of its lines and shuffles the rest.
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

/// [`PS_LISTING`] with new process IDs, some lines left out and the others
/// shuffled; the header stays first.
fn random_ps_listing(vary: &mut Varied) -> String {
    let mut lines = PS_LISTING.lines();
    let header = lines.next().unwrap_or_default();
    let kept: Vec<&str> = lines.filter(|_| !vary.one_in(4)).collect();
    let mut body: Vec<String> = kept
        .into_iter()
        .map(|line| {
            let mut fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            fields[1] = vary.between(100, 99_999).to_string();
            format!(
                "{:<8} {:>7} {:>7}  {} {} {:<8} {} {}",
                fields[0],
                fields[1],
                fields[2],
                fields[3],
                fields[4],
                fields[5],
                fields[6],
                fields[7..].join(" ")
            )
        })
        .collect();
    vary.shuffle(&mut body);
    format!("{header}\n{}\n", body.join("\n"))
}

/// A sandbox holding `files` (name, contents).
fn sandbox_with(files: &[(&str, &str)]) -> Sandbox {
    let sandbox = Sandbox::new();
    for (name, contents) in files {
        sandbox.write_file(name, contents);
    }
    sandbox
}

/// `count` random lines of lower-case words.
fn random_lines(vary: &mut Varied, count: u64) -> Vec<String> {
    (0..count)
        .map(|_| {
            let len = vary.between(1, 10) as usize;
            vary.word(len)
        })
        .collect()
}

/// How many bytes a new pipe holds on this machine.
fn pipe_capacity() -> usize {
    let (read_end, _write_end) = nix::unistd::pipe().expect("pipe");
    nix::fcntl::fcntl(&read_end, nix::fcntl::FcntlArg::F_GETPIPE_SZ).expect("F_GETPIPE_SZ") as usize
}

/// Whether signal `signal` is pending for process `pid`, for the process or
/// one of its threads (`/proc/PID/status`, `ShdPnd` and `SigPnd`).
fn signal_pending(pid: u32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let bit = 1u64 << (signal - 1);
    status
        .lines()
        .filter(|line| line.starts_with("ShdPnd:") || line.starts_with("SigPnd:"))
        .filter_map(|line| u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok())
        .any(|mask| mask & bit != 0)
}

// ---- TODO 1: popen and pclose ---------------------------------------------

#[test]
fn read_prints_every_line_the_command_writes() {
    let mut vary = Varied::new();
    // The notes' example: popen("ls", "r"), then fgets until NULL.
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("docs")).expect("create docs/");
    let mut names: Vec<String> = (0..vary.between(2, 6))
        .map(|_| format!("{}.md", vary.word(5)))
        .collect();
    for name in &names {
        sandbox.write_file(&format!("docs/{name}"), "notes\n");
    }
    names.sort();
    names.dedup();
    let run = lab()
        .cmd_in(sandbox, ["read", "ls docs"])
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run();
    run.expect_success();
    let expected: String = names.iter().map(|name| format!("{name}\n")).collect();
    run.expect_lines(
        &expected,
        "copy every line the command writes until read meets end-of-file, and exit with \
         the command's status",
    );
}

#[test]
fn read_runs_the_command_through_the_shell() {
    let mut vary = Varied::new();
    let (a, b, code) = (
        vary.between(2, 99),
        vary.between(2, 99),
        vary.between(1, 120),
    );
    let word = vary.word(6);
    let run = lab()
        .cmd([
            "read",
            &format!("echo $(({a} * {b})) {word} | tr a-z A-Z; exit {code}"),
        ])
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run();
    if run.stdout.contains("$((") || run.stdout.contains(&word) {
        run.fail(
            "the command line was not run by a shell",
            "popen runs execv(\"/bin/sh\", [\"sh\", \"-c\", command]): the shell expands \
             $((…)) and runs the | and the ;",
        );
    }
    if run.code() != Some(code as i32) && run.stderr.is_empty() {
        run.fail(
            "exited with another status than the command's",
            "pclose must return the status waitpid gives it, unchanged",
        );
    }
    run.expect_code(code as i32);
    run.expect_lines(
        &format!("{} {}\n", a * b, word.to_uppercase()),
        "copy every line the command writes",
    );
}

#[test]
fn write_feeds_the_command_until_end_of_file() {
    let mut vary = Varied::new();
    // sort prints nothing before end-of-file on its standard input.
    let count = vary.between(3, 12);
    let mut lines = random_lines(&mut vary, count);
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let run = lab()
        .cmd(["write", "sort -r"])
        .stdin(input)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section(TASK_1)
        .run();
    run.expect_success();
    lines.sort_by(|a, b| b.cmp(a));
    let expected: String = lines.iter().map(|line| format!("{line}\n")).collect();
    run.expect_lines(
        &expected,
        "in Mode::Write the command's standard input is the read end of the pipe: copy \
         everything into our end, then close it (pclose drops it) so that sort sees \
         end-of-file",
    );
}

#[test]
fn read_commands_die_quietly_when_their_reader_leaves() {
    // The shell and everything it starts inherit popen's child's SIGPIPE
    // disposition, and a shell cannot undo an ignored SIGPIPE.
    let mut vary = Varied::new();
    let kept = vary.between(1, 20);
    let run = lab()
        .cmd(["read", &format!("seq 1 1000000 | head -n {kept}")])
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
    let expected: String = (1..=kept).map(|n| format!("{n}\n")).collect();
    run.expect_lines(&expected, "copy every line the command writes");
}

#[test]
fn popen_lets_a_file_name_run_a_command() {
    // The unsafe way: `wc -l FILE` built as text. The "file name" ends the
    // wc command with `;` and starts another one.
    let mut vary = Varied::new();
    let (notes, pwned) = (format!("{}.txt", vary.word(5)), vary.word(7));
    let count = vary.between(1, 9);
    let lines: String = random_lines(&mut vary, count)
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    let run = lab()
        .cmd_in(
            sandbox_with(&[(&notes, &lines)]),
            ["lines", "--shell", &format!("{notes}; touch {pwned}")],
        )
        .timeout(HANG_TIMEOUT)
        .section(TASK_1)
        .run();
    if !run.sandbox.path(&pwned).exists() {
        run.fail(
            "the `; touch NAME` in the file name did not run",
            "popen must hand its command line to /bin/sh -c, exactly as POSIX popen does: \
             this test shows what a shell makes of a `;` in text pasted into a command",
        );
    }
    run.expect_success();
    run.expect_lines(
        &format!("{count} {notes}\n"),
        "the shell ran `wc -l FILE`, then the injected command",
    );
}

#[test]
fn pclose_retries_a_wait_interrupted_by_sigchld() {
    let mut vary = Varied::new();
    let code = vary.between(1, 120);
    // The command closes its output and waits on a FIFO. Once pclose is
    // asleep in waitpid, the test sends the program a SIGCHLD (as the end of
    // another child would); once the handler has run, it lets the command
    // finish.
    let sandbox = Sandbox::new();
    let go = sandbox.path("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo go");
    let mut program = lab()
        .cmd_in(
            sandbox,
            [
                "read",
                "--sigchld",
                "interrupt",
                &format!("echo started; exec >&-; read -r line < go; exit {code}"),
            ],
        )
        .why_if_timeout(
            "pclose never got as far as waitpid: read the command's output to end-of-file \
             (the command has closed it), then drop the pipe and wait",
        )
        .section(TASK_1)
        .start();
    program.wait_until_blocked_in(libc::SYS_wait4, HANG_TIMEOUT);
    program.signal(libc::SIGCHLD);
    let deadline = Instant::now() + HANG_TIMEOUT;
    while signal_pending(program.pid(), libc::SIGCHLD) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(&go, "\n").expect("let the command finish");
    let run = program.wait_unchecked(HANG_TIMEOUT);
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
    run.expect_code(code as i32);
    run.expect_lines("started\n", "copy every line the command writes");
}

#[test]
fn pclose_reports_a_child_that_a_sigchld_handler_reaped() {
    // The handler calls waitpid(-1, WNOHANG) and takes the command's status
    // before pclose asks for it.
    let mut vary = Varied::new();
    let word = vary.word(8);
    let run = lab()
        .cmd(["read", "--sigchld", "reap", &format!("echo {word}")])
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
    run.expect_one_line_error(
        "popen",
        "ECHILD",
        "the SIGCHLD handler reaped the child, so waitpid fails with ECHILD: return that \
         error with the context `waitpid`",
    );
    run.expect_lines(&format!("{word}\n"), "copy every line the command writes");
}

// ---- TODO 2: a command without a shell ------------------------------------

#[test]
fn run_passes_every_argument_unchanged() {
    let mut vary = Varied::new();
    let mut words = vec![
        "two words".to_string(),
        "$HOME".to_string(),
        "*".to_string(),
        String::new(),
        format!("{} {}", vary.word(3), vary.word(3)),
        format!("${}", vary.word(4).to_uppercase()),
    ];
    vary.shuffle(&mut words);
    let run = lab()
        .cmd(["run", "printf", "[%s]\\n"])
        .args(&words)
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
    let expected: String = words.iter().map(|word| format!("[{word}]\n")).collect();
    run.expect_lines(
        &expected,
        "execvp(&argv[0], &argv) passes every word as it is, empty ones too",
    );
}

#[test]
fn run_writes_into_a_program() {
    let mut vary = Varied::new();
    let count = vary.between(3, 12);
    let mut lines = random_lines(&mut vary, count);
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let run = lab()
        .cmd(["run", "--write", "sort", "-r"])
        .stdin(input)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(NO_EOF)
        .section(TASK_2)
        .run();
    run.expect_success();
    lines.sort_by(|a, b| b.cmp(a));
    let expected: String = lines.iter().map(|line| format!("{line}\n")).collect();
    run.expect_lines(
        &expected,
        "the program's standard input is the pipe's read end",
    );
}

#[test]
fn run_reports_a_program_that_cannot_run() {
    let mut vary = Varied::new();
    let missing = format!("no-such-program-{}", vary.word(6));
    let run = lab()
        .cmd(["run", &missing])
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
             leaves with _exit(127); a child that returns instead runs the rest of the \
             parent's code",
        );
    }
    if run.code() != Some(127) {
        run.fail(
            "did not exit with status 127 for a program that cannot run",
            "when execvp fails, the child must leave with _exit(127) at once; a child that \
             returns instead runs the rest of the parent's code and ends the way that code \
             does",
        );
    }
    let expected = format!("popen: cannot run {missing}: ENOENT: No such file or directory\n");
    if run.stderr != expected {
        let mut failure = run.failure("did not report the failed exec as expected");
        failure
            .details
            .push(format!("expected stderr: {expected:?}"));
        failure.why =
            Some("print `popen: cannot run PROGRAM: ERRNO` in the child, then _exit(127)".into());
        failure.raise();
    }
}

#[test]
fn spawn_treats_a_hostile_file_name_as_a_name() {
    let mut vary = Varied::new();
    let (notes, pwned) = (format!("{}.txt", vary.word(5)), vary.word(7));
    let hostile = format!("{notes}; touch {pwned}");
    let run = lab()
        .cmd_in(sandbox_with(&[(&notes, "one\n")]), ["lines", &hostile])
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    if run.sandbox.path(&pwned).exists() {
        run.fail(
            "a file name with `; touch NAME` in it ran `touch NAME`",
            "spawn must not involve a shell: execvp the words as they are, and `wc` gets \
             one argument that happens to contain a `;`",
        );
    }
    // wc cannot open a file of that name, says so, and exits with status 1.
    run.expect_code(1);
    if !run.stderr.contains(&hostile) {
        run.fail(
            "wc did not complain about a file named after the whole argument",
            "pass the file name to wc as one argument, exactly as it was given",
        );
    }
}

// ---- TODO 3: a pipeline of N commands --------------------------------------

/// Runs `words` through the lab's `pipeline` and `script` through the shell,
/// each in a sandbox holding `files`, and fails unless both print the same
/// and exit the same way.
fn assert_same_as_shell(files: &[(&str, &str)], words: &[&str], script: &str) -> Run {
    let run = lab()
        .cmd_in(sandbox_with(files), ["pipeline"].iter().chain(words))
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "a stage never saw end-of-file, or waited on a full pipe. Every copy of \
             every pipe end must be closed except the one dup2 put on 0 or 1: in the \
             parent as soon as the stage that uses it is forked, in every child before \
             exec. And start all stages before waiting for any",
        )
        .section(TASK_3)
        .run();
    run.expect_as_in_shell(
        script,
        sandbox_with(files),
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
    // ps -ef | grep myserver | awk '{print $2}' | xargs kill -9, with a
    // listing for ps and `echo kill -9` for kill.
    let mut vary = Varied::new();
    let listing = random_ps_listing(&mut vary);
    assert_same_as_shell(
        &[("ps.txt", &listing)],
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
}

#[test]
fn pipeline_of_one_command_needs_no_pipe() {
    let mut vary = Varied::new();
    let word = vary.word(9);
    assert_same_as_shell(&[], &["echo", &word], &format!("echo {word}"));
}

#[test]
fn pipeline_exits_with_the_last_commands_status() {
    // grep -c prints the count and exits with status 1 when nothing matches.
    let mut vary = Varied::new();
    let listing = random_ps_listing(&mut vary);
    let key = *vary.pick(&["myserver", "sshd", "python3", "vim", "nosuchserver"]);
    assert_same_as_shell(
        &[("ps.txt", &listing)],
        &["cat", "ps.txt", "--", "sort", "--", "grep", "-c", key],
        &format!("cat ps.txt | sort | grep -c {key}"),
    );
}

#[test]
fn pipeline_carries_more_than_a_pipe_holds_through_every_stage() {
    // Far more than a pipe holds through three pipes: wc prints only after
    // end-of-file, which reaches it only if every stage closed every end it
    // does not use.
    let mut vary = Varied::new();
    let last = vary.between(100_000, 200_000).to_string();
    assert_same_as_shell(
        &[],
        &[
            "seq", "1", &last, "--", "cat", "--", "cat", "--", "wc", "-l",
        ],
        &format!("seq 1 {last} | cat | cat | wc -l"),
    );
}

#[test]
fn pipeline_stages_die_quietly_when_the_last_one_leaves() {
    // head exits after a few lines: cat, then seq, must die of SIGPIPE
    // without a word, as in a shell.
    let mut vary = Varied::new();
    let kept = vary.between(1, 20).to_string();
    let run = assert_same_as_shell(
        &[],
        &[
            "seq", "1", "1000000", "--", "cat", "--", "head", "-n", &kept,
        ],
        &format!("seq 1 1000000 | cat | head -n {kept}"),
    );
    fail_if_a_stage_ignored_sigpipe(&run);
}

#[test]
fn pipeline_reports_a_stage_that_cannot_run() {
    let mut vary = Varied::new();
    let listing = random_ps_listing(&mut vary);
    let missing = format!("no-such-program-{}", vary.word(6));
    let run = assert_same_as_shell(
        &[("ps.txt", &listing)],
        &["cat", "ps.txt", "--", &missing, "--", "wc", "-l"],
        &format!("cat ps.txt | {missing} | wc -l"),
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
}

#[test]
fn pipeline_rejects_an_empty_stage_before_starting_anything() {
    // If the first stage ever runs, it leaves a file behind.
    let mut vary = Varied::new();
    let started = vary.word(7);
    let empty = vary.between(2, 4);
    let mut words = vec!["touch".to_string(), started.clone()];
    for stage in 2..=4 {
        words.push("--".to_string());
        if stage != empty {
            words.push("cat".to_string());
        }
    }
    let run = lab()
        .cmd(["pipeline"].iter().map(|w| w.to_string()).chain(words))
        .timeout(HANG_TIMEOUT)
        .section(TASK_3)
        .run_unchecked();
    if run.sandbox.path(&started).exists() {
        run.fail(
            "started the first stage although a later one is empty",
            "check every stage (and convert it to CStrings) before the first fork: an \
             invalid pipeline must not run at all",
        );
    }
    run.check_finished_cleanly();
    run.expect_one_line_error(
        "popen",
        &format!("stage {empty} is empty"),
        "name the empty stage, counting from 1: `stage N is empty`",
    );
}

// ---- TODO 4: a coprocess ----------------------------------------------------

/// Random lines of integers for the lab's filter, and the filter's replies.
fn requests(vary: &mut Varied, count: u64) -> (String, Vec<(String, String)>) {
    let mut input = String::new();
    let mut exchanges = Vec::new();
    for _ in 0..count {
        let numbers: Vec<i64> = (0..vary.between(1, 5))
            .map(|_| vary.between(0, 2000) as i64 - 1000)
            .collect();
        let request = numbers
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        input.push_str(&format!("{request}\n"));
        exchanges.push((request, numbers.iter().sum::<i64>().to_string()));
    }
    (input, exchanges)
}

#[test]
fn coprocess_gets_one_reply_per_request() {
    let mut vary = Varied::new();
    let count = vary.between(3, 10);
    let (input, exchanges) = requests(&mut vary, count);
    let expected: String = exchanges
        .iter()
        .map(|(request, reply)| format!("{request} -> {reply}\n"))
        .collect();
    let run = lab()
        .cmd(["coproc"])
        .stdin(input)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the conversation stalled before the last reply. ask() must send the request \
             at once (one write of the whole line, nothing left in a buffer) and read \
             exactly one line back",
        )
        .section(TASK_4)
        .run_unchecked();
    if run.timed_out && run.stdout == expected {
        run.fail(
            "printed every reply, then never ended",
            "finish() must close both pipes before waitpid: the filter exits only once it \
             sees end-of-file on its input",
        );
    }
    run.check_finished_cleanly();
    if run.stderr.contains("no reply within") {
        run.fail(
            "waited in vain for a reply from a filter that flushes every line",
            "the request probably never left this process: write the line and a newline \
             with one write_all on to_filter (flush it if you wrapped it in a BufWriter)",
        );
    }
    run.expect_success();
    run.expect_lines(
        &expected,
        "each request gets the filter's reply to it, one line, without its newline",
    );
}

#[test]
fn coprocess_gives_up_on_a_filter_that_holds_back_its_replies() {
    // The filter keeps its replies in a 4096-byte buffer, as C stdio does
    // when standard output is a pipe: the reply never comes.
    let mut vary = Varied::new();
    let timeout = vary.between(20, 150);
    let (input, exchanges) = requests(&mut vary, 2);
    let run = lab()
        .cmd([
            "coproc",
            "--buffering",
            "block",
            "--reply-timeout-ms",
            &timeout.to_string(),
        ])
        .stdin(input)
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
    run.expect_one_line_error(
        "popen",
        &format!("request {:?}: no reply within {timeout} ms", exchanges[0].0),
        "poll() the read end with the timeout you were given, and when it expires fail \
         with `no reply within N ms`",
    );
}

#[test]
fn coprocess_reports_a_filter_that_cannot_run() {
    let mut vary = Varied::new();
    let missing = format!("no-such-filter-{}", vary.word(6));
    // One request line longer than a pipe holds: the write blocks until the
    // child whose exec failed has exited, then fails with EPIPE, whatever
    // the timing.
    let ones = (pipe_capacity() + vary.between(1, 4096) as usize) / 2;
    let request = vec!["1"; ones].join(" ");
    let run = lab()
        .cmd(["coproc", "--", &missing])
        .stdin(format!("{request}\n"))
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the filter has exited: a write to it fails with EPIPE, poll() says the read end \
             is readable and read returns 0 (end-of-file). That is the end of the \
             conversation, not a reason to wait",
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
    let lines: Vec<&str> = run.stderr.lines().collect();
    if lines.len() != 2 {
        run.fail(
            "expected two lines on stderr: the failed exec, then the failed request",
            "when execvp fails, the child prints `popen: cannot run PROGRAM: ERRNO` and \
             leaves with _exit(127); it must never return into the parent's code",
        );
    }
    run.expect_code(1);
    let cannot_run = format!("popen: cannot run {missing}: ENOENT: No such file or directory");
    if lines[0] != cannot_run
        || !lines[1].starts_with("popen: coproc: request \"1 1 ")
        || !lines[1].ends_with(": the filter ended without replying")
    {
        let mut failure = run.failure("did not report the missing filter as expected");
        failure
            .details
            .push(format!("expected first {cannot_run:?}"));
        failure
            .details
            .push("then `popen: coproc: request \"…\": the filter ended without replying`".into());
        failure.why = Some(
            "the child reports the failed exec; ask() then sees EPIPE or end-of-file and \
             fails with `the filter ended without replying`"
                .into(),
        );
        failure.raise();
    }
}

// ---- TODO 5: feed and drain a filter at once --------------------------------

#[test]
fn batch_returns_every_reply() {
    let mut vary = Varied::new();
    let count = vary.between(2, 10);
    let (input, exchanges) = requests(&mut vary, count);
    let run = lab()
        .cmd(["batch"])
        .stdin(input)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the filter never saw end-of-file: the writer must close to_filter (drop it) \
             once everything is written",
        )
        .section(TASK_5)
        .run();
    run.expect_success();
    let expected: String = exchanges
        .iter()
        .map(|(_, reply)| format!("{reply}\n"))
        .collect();
    run.expect_lines(
        &expected,
        "read from_filter to end-of-file and return every byte",
    );
}

#[test]
fn batch_survives_input_larger_than_both_pipes() {
    // Twenty times or more what the two pipes hold, in and out.
    let mut vary = Varied::new();
    let lines = vary.between(100_000, 150_000);
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
    run.expect_lines(
        &expected,
        "read from_filter to end-of-file and return every byte",
    );
}
