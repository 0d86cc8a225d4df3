//! Grading suite of lab 01 (processes): fork, exec, wait.
//!
//! Compiled into both the lab (`labs/01-processes`) and the reference
//! solution; every test runs the program as a black box through the grader,
//! which also fails a test when a child is left unreaped or still running.
//! Inputs (statuses, signals, words, counts, file names) vary from run to
//! run, and the expected output is worked out here from them: no program can
//! pass by printing text it learnt by heart. A failing test prints its seed.

use std::time::Duration;

use grader::{Blocked, Lab, Sandbox, Varied};
use nix::sys::signal::Signal;

const CHAPTER: &str = "01-processes.md";

const TASK_1: &str = "Task 1: describe a wait status";
const TASK_2: &str = "Task 2: fork, exec, wait";
const TASK_3: &str = "Task 3: fan out and reap";
const TASK_4: &str = "Task 4: buffers and fork";
const TASK_5: &str = "Task 5: descriptors across exec";

/// How long a test waits for a program that should be waiting itself.
const WAIT: Duration = Duration::from_secs(5);

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// A signal's name, `SIGTERM`, from its number.
fn signal_name(number: i32) -> &'static str {
    Signal::try_from(number).map_or("?", Signal::as_str)
}

/// The words the lab prints for a raw wait status, worked out here from its
/// bits (the layout of the chapter's "The wait status").
fn description(raw: i32) -> String {
    let (low, high) = (raw & 0x7f, (raw >> 8) & 0xff);
    if low == 0 {
        format!("exited with status {high}")
    } else if raw & 0xff == 0x7f {
        format!("stopped by signal {}", signal_name(high))
    } else if raw & 0x80 != 0 {
        format!("killed by signal {} (core dumped)", signal_name(low))
    } else {
        format!("killed by signal {}", signal_name(low))
    }
}

/// Signals that end a process without a core dump (`sh -c 'kill -NAME $$'`).
const FATAL: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGKILL,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
];

/// Signals that stop a process.
const STOPPING: [Signal; 4] = [
    Signal::SIGSTOP,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// Signals that may come with a core dump.
const DUMPING: [Signal; 6] = [
    Signal::SIGQUIT,
    Signal::SIGILL,
    Signal::SIGABRT,
    Signal::SIGFPE,
    Signal::SIGSEGV,
    Signal::SIGBUS,
];

// ---- TODO 1: describe a wait status --------------------------------------

#[test]
fn decode_describes_every_kind_of_ending() {
    let mut vary = Varied::new();
    // One of each kind, in a random order: an exit, a signal without and
    // one with a core dump, a stop.
    let mut raw = vec![
        (vary.between(0, 255) as i32) << 8,
        *vary.pick(&FATAL) as i32,
        *vary.pick(&DUMPING) as i32 | 0x80,
        (*vary.pick(&STOPPING) as i32) << 8 | 0x7f,
    ];
    vary.shuffle(&mut raw);
    let run = lab()
        .cmd(["decode"])
        .args(raw.iter().map(i32::to_string))
        .section(TASK_1)
        .run();
    run.expect_success();
    let expected: String = raw
        .iter()
        .map(|&raw| format!("{raw:#06x}: {}\n", description(raw)))
        .collect();
    run.expect_lines(
        &expected,
        "one arm per kind of ending: Exited gives `exited with status N`, Signaled \
         `killed by signal SIGNAME`, plus ` (core dumped)` when its flag is set, Stopped \
         `stopped by signal SIGNAME`; Signal::as_str() gives the name",
    );
}

// ---- TODO 2: run a program, report how it ended ---------------------------

#[test]
fn run_reports_a_normal_exit_status() {
    let mut vary = Varied::new();
    let code = vary.between(0, 255);
    let run = lab()
        .cmd(["run", "sh", "-c", &format!("exit {code}")])
        .section(TASK_2)
        .run();
    run.expect_success();
    run.expect_lines(
        &format!("exited with status {code}\n"),
        "report the status that waitpid() returned for this child, described by task 1",
    );
}

#[test]
fn run_reports_death_by_a_signal() {
    let mut vary = Varied::new();
    let signal = *vary.pick(&FATAL);
    let name = signal.as_str().trim_start_matches("SIG");
    let run = lab()
        .cmd(["run", "sh", "-c", &format!("kill -{name} $$")])
        .section(TASK_2)
        .run();
    run.expect_success();
    run.expect_lines(
        &format!("killed by signal {}\n", signal.as_str()),
        "a child killed by a signal has no exit status: waitpid() returns \
         WaitStatus::Signaled with the signal, which task 1 describes",
    );
}

#[test]
fn run_passes_every_argument_unchanged() {
    let mut vary = Varied::new();
    let mut words = vec![
        "two words".to_string(),
        String::new(),
        "--flag".to_string(),
        format!("{} {}", vary.word(3), vary.word(4)),
        vary.word(6),
        format!("*{}?", vary.word(2)),
    ];
    vary.shuffle(&mut words);
    let run = lab()
        .cmd(["run", "printf", "[%s]\\n"])
        .args(&words)
        .section(TASK_2)
        .run();
    run.expect_success();
    if run.stdout.contains("[two]") {
        run.fail(
            "split an argument at its space",
            "pass argv to execvp as it is; no shell is involved, so nothing splits words",
        );
    }
    let expected: String = words
        .iter()
        .map(|word| format!("[{word}]\n"))
        .chain(["exited with status 0\n".to_string()])
        .collect();
    run.expect_lines(
        &expected,
        "execvp(&argv[0], &argv) takes the whole vector, argv[0] included, and passes every \
         word as it is, empty ones too",
    );
}

#[test]
fn run_waits_for_the_child_before_reporting() {
    let mut vary = Varied::new();
    let word = vary.word(8);
    // The child reads a word from a FIFO that the test fills only once the
    // program is asleep: a program that reports without waiting has ended
    // by then.
    let sandbox = Sandbox::new();
    let go = sandbox.path("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo go");
    let mut program = lab()
        .cmd_in(
            sandbox,
            ["run", "sh", "-c", r#"read -r word < go; echo "$word""#],
        )
        .section(TASK_2)
        .start();
    match program.wait_until_blocked(WAIT) {
        Blocked::In(_) => {}
        Blocked::Exited(_) => program.fail(
            "reported the status before the child had finished",
            "waitpid(child, None) sleeps until the child has ended; report after it returns \
             (WNOHANG returns at once, before the child is done)",
        ),
        Blocked::Busy => program.fail(
            "never went to sleep while its child ran",
            "waitpid(child, None) sleeps until the child ends; calling it with WNOHANG in a \
             loop keeps the processor busy for nothing",
        ),
    }
    std::fs::write(&go, format!("{word}\n")).expect("write the word into the FIFO");
    let run = program.wait(WAIT);
    run.expect_success();
    run.expect_lines(
        &format!("{word}\nexited with status 0\n"),
        "report the status once waitpid() has returned it, after everything the child printed",
    );
}

#[test]
fn run_reports_a_missing_program_as_status_127() {
    let mut vary = Varied::new();
    let program = format!("no-such-program-{}", vary.word(6));
    let run = lab().cmd(["run", &program]).section(TASK_2).run();
    run.expect_success();
    if run.stdout.matches("exited with status").count() > 1 {
        run.fail(
            "reported more than one status",
            "when execvp fails the child must _exit(127); returning from the child's \
             branch runs the parent's code a second time",
        );
    }
    if run.stdout != "exited with status 127\n" {
        run.fail(
            "did not report exit status 127 for a program that cannot run",
            "when execvp fails, the child must leave with _exit(127) at once, the status \
             shells use for \"command not found\"; a child that returns instead runs the \
             rest of the parent's code and ends the way that code does",
        );
    }
    let expected = format!("processes: cannot run {program}: ENOENT: No such file or directory\n");
    if run.stderr != expected {
        let mut failure = run.failure("did not report the failed exec as expected");
        failure
            .details
            .push(format!("expected stderr: {expected:?}"));
        failure.why = Some(
            "the child writes one line, `processes: cannot run PROGRAM: ERRNO`, on stderr \
             before _exit(127)"
                .to_string(),
        );
        failure.raise();
    }
}

// ---- TODO 3: many children, all reaped ----------------------------------

/// The lines `fanout n` prints.
fn fan_out_report(n: u64) -> String {
    let mut lines: String = (1..=n)
        .map(|k| format!("child {k}: exited with status {k}\n"))
        .collect();
    lines.push_str(&format!("reaped {n} of {n} children\n"));
    lines
}

#[test]
fn fan_out_reports_every_child_in_creation_order() {
    let mut vary = Varied::new();
    // Few children: a child that goes on with the parent's loop forks
    // children of its own, 2^n processes in all.
    for n in [0, vary.between(2, 6)] {
        let run = lab()
            .cmd(["fanout", &n.to_string()])
            .section(TASK_3)
            .run_unchecked();
        // More lines than children, or more processes left over than
        // children asked for: children that forked children of their own.
        let reports = run.stdout_lines().len() as u64;
        if reports > n + 1 || run.leaks.len() as u64 > n {
            run.fail(
                "started more processes than the children it was asked for",
                "a child that does not _exit() right away goes on running the parent's \
                 loop and forks children of its own",
            );
        }
        run.check_finished_cleanly();
        run.expect_success();
        run.expect_lines(
            &fan_out_report(n),
            "child k exits with status k; wait for each pid you stored, in the order you \
             forked them, and return the statuses in that order",
        );
    }
}

#[test]
fn fan_out_reaps_every_one_of_many_children() {
    let mut vary = Varied::new();
    let n = vary.between(40, 80);
    // The grader fails this test by itself if any child is left a zombie.
    let run = lab().cmd(["fanout", &n.to_string()]).section(TASK_3).run();
    run.expect_success();
    let last = run.stdout_lines().last().copied().unwrap_or("");
    if last != format!("reaped {n} of {n} children") {
        run.fail(
            "did not report every child as reaped",
            "wait for every child you forked, in the order you forked them",
        );
    }
    run.expect_lines(
        &fan_out_report(n),
        "child k must exit with status k, and statuses come back in creation order",
    );
}

// ---- TODO 4: buffers duplicated by fork ----------------------------------

#[test]
fn output_buffered_before_fork_is_written_once() {
    let mut vary = Varied::new();
    let status = vary.between(0, 255);
    let run = lab()
        .cmd(["greet", &status.to_string()])
        .section(TASK_4)
        .run();
    run.expect_success();
    let copies = run.stdout.matches("parent: about to fork").count();
    if copies > 1 {
        run.fail(
            "\"parent: about to fork\" appears more than once",
            "fork() copied the unflushed buffer into the child, which wrote it again: \
             flush before you fork",
        );
    }
    if !run.stdout.contains("child: hello") {
        run.fail(
            "the child's line is missing",
            "_exit() does not flush buffers: the child must flush before it leaves",
        );
    }
    run.expect_lines(
        &format!(
            "parent: about to fork\nchild: hello, I exit with status {status}\n\
             parent: the child exited with status {status}\n"
        ),
        "the child writes its line with the status it was given, flushes, and leaves with \
         _exit(status); the parent returns what waitpid() says",
    );
}

// ---- TODO 5: descriptors across exec -------------------------------------

#[test]
fn only_descriptors_without_close_on_exec_survive_exec() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let name = format!("{}.txt", vary.word(6));
    sandbox.write_file(&name, vary.word(20));
    let run = lab()
        .cmd_in(sandbox, ["inherit", &name])
        .section(TASK_5)
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
    run.expect_lines(
        &format!("fd 4 -> [SANDBOX]/{name}\nshow-fds exited with status 0\n"),
        "open the file you were given, twice, and exec this program with the single \
         argument `show-fds`",
    );
}

#[test]
fn inherit_reports_a_missing_file_and_fails() {
    let mut vary = Varied::new();
    let missing = format!("{}.txt", vary.word(6));
    let run = lab().cmd(["inherit", &missing]).section(TASK_5).run();
    run.expect_code(1);
    if run.stderr.lines().count() != 1 || !run.stderr.contains(&missing) {
        run.fail(
            "did not report the error on one line naming the file",
            "return the open error with context, e.g. .with_context(|| format!(\"open {}\", …))",
        );
    }
    if !run.stdout.is_empty() {
        run.fail(
            "printed on stdout although the file could not be opened",
            "return the open error before anything is forked or executed",
        );
    }
}
