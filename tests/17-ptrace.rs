//! Grading suite of lab 17 (process control: a tiny syscall tracer).
//!
//! Compiled into both the lab (`labs/17-ptrace`) and the reference
//! solution. Every test runs the lab's program as a black box through the
//! grader. What it traces is the lab's own program too, `ptrace workload
//! …`: small fixed programs (given, not yours) that make a known sequence
//! of IPC calls, the same on x86-64 and aarch64. A few tests trace a shell
//! (`sh -c '… | …'`) instead, whose calls depend on the machine: those
//! compare the trace with strace's, where strace is installed, process by
//! process.
//!
//! A trace is compared process by process, never line by line: processes
//! run at the same time, so the order in which their lines interleave
//! changes from run to run, but the calls of each one come in a fixed
//! order. Processes are named by their ancestry (`P`, its children `P.1`,
//! `P.2` in the order its `clone` calls returned, their children `P.1.1`
//! …), addresses and IPC identifiers masked. Inputs that a fixed transcript
//! could fake (descriptor numbers, message texts, types, sizes, exit
//! statuses, signals) vary from run to run, from a seed (`Varied`).
//! Moments in another process's life (blocked in `accept4`, stopped) are
//! awaited through `/proc/PID/stat` and `/proc/PID/syscall`, never with a
//! sleep.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use grader::{Lab, LeakKind, Run, Running, Sandbox, Varied};

const CHAPTER: &str = "17-ptrace.md";

const TASK_1: &str = "Task 1: start a program, traced";
const TASK_2: &str = "Task 2: read a syscall-stop";
const TASK_3: &str = "Task 3: the tracer's loop";
const TASK_4: &str = "Task 4: signals";
const TASK_5: &str = "Task 5: children, threads, exec";
const TASK_6: &str = "Task 6: attach to a running process";

/// Every traced workload ends in milliseconds; a tracer stuck for good
/// (a tracee nobody restarts) exceeds this.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a test waits for a moment in another process's life.
const WAIT: Duration = Duration::from_secs(5);

/// Why a tracer hangs.
const STUCK: &str = "a tracee stays stopped until the tracer restarts it: every stop must \
                     end with PTRACE_SYSCALL (sys::restart), the first stop of each new \
                     tracee too";

/// Values that change from run to run and are checked before they are
/// masked.
const FILTERS: &[(&str, &str)] = &[(r"0x[0-9a-f]{5,}", "0x[ADDR]"), (r"\bpid \d+", "pid [PID]")];

fn lab() -> Lab {
    if let Some(refusal) = ptrace_refused() {
        panic!(
            "this machine does not let a process trace its own child: {refusal}\n  every test \
             of lab 17 needs that; it is not your code (read: book/src/{CHAPTER}, section \
             \"Who may trace whom: ptrace_scope\")"
        );
    }
    grader::lab!(CHAPTER)
}

/// Why `PTRACE_TRACEME` fails here, if it does: tried once, in a child
/// that asks to be traced and leaves at once (Yama's `ptrace_scope` 2
/// without `CAP_SYS_PTRACE`, or 3; or a seccomp filter that forbids ptrace).
fn ptrace_refused() -> Option<String> {
    static REFUSAL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    REFUSAL
        .get_or_init(|| {
            use std::os::unix::process::CommandExt;
            let mut probe = std::process::Command::new("true");
            // SAFETY: between fork and exec the child makes two system
            // calls, async-signal-safe, and touches no lock.
            unsafe {
                probe.pre_exec(|| {
                    let null = std::ptr::null_mut::<libc::c_void>();
                    if libc::ptrace(libc::PTRACE_TRACEME, 0, null, null) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::_exit(0)
                });
            }
            let error = match probe.status() {
                Ok(_) => return None,
                Err(error) => error,
            };
            let scope = fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
                .map_or("no Yama".to_string(), |scope| {
                    format!("ptrace_scope is {}", scope.trim())
                });
            Some(format!("PTRACE_TRACEME failed with {error} ({scope})"))
        })
        .clone()
}

/// `ptrace run [OPTIONS…] -- ptrace workload WORKLOAD…`: the lab's tracer
/// running the lab's own fixed workload.
fn run_workload(section: &str, options: &[&str], workload: &[String]) -> grader::Cmd {
    let lab = lab();
    lab.cmd(["run"])
        .args(options)
        .arg("--")
        .arg(&lab.bin)
        .arg("workload")
        .args(workload)
        .section(section)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
}

/// A `Vec<String>` of anything printable.
macro_rules! words {
    ($($word:expr),* $(,)?) => {
        [$($word.to_string()),*]
    };
}

// ---- traces ---------------------------------------------------------------

/// A trace: its lines `[pid N] TEXT`, in the order printed.
#[derive(Debug, Clone, Default)]
struct Trace {
    lines: Vec<(i32, String)>,
}

impl Trace {
    /// The `[pid N] …` lines of `text`; the others (the tracer's own
    /// messages, the program's output) are left out.
    fn parse(text: &str) -> Trace {
        let lines = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("[pid ")?;
                let (pid, text) = rest.split_once("] ")?;
                Some((pid.parse().ok()?, text.to_string()))
            })
            .collect();
        Trace { lines }
    }

    /// The texts of process `pid`, in order.
    fn of(&self, pid: i32) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(owner, _)| *owner == pid)
            .map(|(_, text)| text.as_str())
            .collect()
    }

    /// Every pid, in order of first appearance.
    fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = Vec::new();
        for (pid, _) in &self.lines {
            if !pids.contains(pid) {
                pids.push(*pid);
            }
        }
        pids
    }

    /// The processes and threads `pid` started, in the order its `clone`
    /// (or `clone3`, `fork`, `vfork`) calls returned.
    fn children(&self, pid: i32) -> Vec<i32> {
        self.of(pid)
            .into_iter()
            .filter(|text| is_clone(text))
            .filter_map(|text| result(text)?.parse().ok())
            .filter(|child| *child > 0)
            .collect()
    }

    /// Every pid with its name by ancestry: the first pid no `clone` line
    /// made is `P` (another one `Q`, `R` …), its children `P.1`, `P.2` …
    fn names(&self) -> BTreeMap<i32, String> {
        let made: Vec<i32> = self
            .pids()
            .into_iter()
            .flat_map(|pid| self.children(pid))
            .collect();
        let roots = self.pids().into_iter().filter(|pid| !made.contains(pid));
        let mut names = BTreeMap::new();
        for (root, letter) in roots.zip(['P', 'Q', 'R', 'S']) {
            self.name_tree(root, letter.to_string(), &mut names);
        }
        names
    }

    fn name_tree(&self, pid: i32, name: String, names: &mut BTreeMap<i32, String>) {
        for (child, number) in self.children(pid).into_iter().zip(1..) {
            self.name_tree(child, format!("{name}.{number}"), names);
        }
        names.insert(pid, name);
    }

    /// The first process (named `P`): the program the tracer started.
    fn root(&self) -> Option<i32> {
        self.names()
            .into_iter()
            .find(|(_, name)| name == "P")
            .map(|(pid, _)| pid)
    }

    /// The trace process by process, processes sorted by name, pids
    /// replaced by names (where a call names a process: the result of a
    /// `clone`, the first argument of `wait4` and `kill`) and System V
    /// identifiers by `[msqid]`, `[semid]`, `[shmid]`.
    fn by_process(&self) -> String {
        let names = self.names();
        let ids = self.sysv_ids();
        let mut sections: Vec<(String, i32)> = names
            .iter()
            .map(|(pid, name)| (name.clone(), *pid))
            .collect();
        sections.sort_by_key(|a| natural_key(&a.0));
        let mut out = String::new();
        for (name, pid) in sections {
            out.push_str(&format!("process {name}\n"));
            for text in self.of(pid) {
                out.push_str(&format!("  {}\n", rename(text, &names, &ids)));
            }
        }
        out
    }

    /// The identifiers `msgget`, `semget` and `shmget` returned, with their
    /// masks.
    fn sysv_ids(&self) -> HashMap<String, String> {
        let mut ids = HashMap::new();
        for (_, text) in &self.lines {
            for (call, mask) in [
                ("msgget(", "[msqid]"),
                ("semget(", "[semid]"),
                ("shmget(", "[shmid]"),
            ] {
                if let (true, Some(id)) = (text.starts_with(call), result(text)) {
                    ids.insert(id.to_string(), mask.to_string());
                }
            }
        }
        ids
    }
}

/// `P.10` after `P.9`.
fn natural_key(name: &str) -> Vec<(String, u32)> {
    name.split('.')
        .map(|part| (part.to_string(), part.parse().unwrap_or(0)))
        .map(|(part, number)| {
            if number > 0 {
                (String::new(), number)
            } else {
                (part, 0)
            }
        })
        .collect()
}

/// Whether `text` is a call that makes a process or thread.
fn is_clone(text: &str) -> bool {
    ["clone(", "clone3(", "fork(", "vfork("]
        .iter()
        .any(|call| text.starts_with(call))
}

/// What follows the last ` = ` of a call's line.
fn result(text: &str) -> Option<&str> {
    text.rsplit_once(") = ").map(|(_, result)| result)
}

/// `text` with pids replaced by their names where a call names a process,
/// and System V identifiers by their masks where a call names one.
fn rename(text: &str, names: &BTreeMap<i32, String>, ids: &HashMap<String, String>) -> String {
    let name_of = |number: &str| -> Option<String> {
        let pid: i32 = number.parse().ok()?;
        names.get(&pid).cloned()
    };
    let mut text = text.to_string();
    // The first argument: wait4(PID, …), kill(PID, …), msgsnd(ID, …).
    if let Some((call, rest)) = text.split_once('(') {
        let (first, tail) = rest.split_once(',').unwrap_or((rest, ""));
        let replaced = match call {
            "wait4" | "kill" | "tkill" | "tgkill" => name_of(first),
            "msgsnd" | "msgrcv" | "msgctl" | "semop" | "semtimedop" | "semctl" | "shmat"
            | "shmctl" => ids.get(first).cloned(),
            _ => None,
        };
        if let Some(replaced) = replaced {
            let sep = if tail.is_empty() && !rest.contains(',') {
                ""
            } else {
                ","
            };
            text = format!("{call}({replaced}{sep}{tail}");
        }
    }
    // The result: clone(…) = PID, wait4(…) = PID, msgget(…) = ID.
    if let Some((head, value)) = text.rsplit_once(") = ") {
        let replaced = if is_clone(&text) || text.starts_with("wait4(") {
            name_of(value)
        } else {
            ids.get(value).cloned()
        };
        if let Some(replaced) = replaced {
            text = format!("{head}) = {replaced}");
        }
    }
    text
}

/// The lines of `stderr` that are not trace lines: the tracer's own
/// messages.
fn other_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.starts_with("[pid "))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// A traced run, made comparable with a snapshot: the command, standard
/// output, the trace process by process, the tracer's other lines, the exit
/// status.
fn traced_transcript(run: &Run, trace_text: &str) -> String {
    let trace = Trace::parse(trace_text);
    let status = match (run.code(), run.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".to_string(),
    };
    format!(
        "$ {}\n--- stdout\n{}--- trace, process by process\n{}--- stderr, but the trace\n{}--- {status}\n",
        run.command,
        run.stdout,
        trace.by_process(),
        other_lines(&run.stderr)
    )
}

/// Compares [`traced_transcript`] with the snapshot, with the `(value,
/// mask)` pairs the test gives shown by their masks (values it chose at
/// random and has checked already; a number is replaced only as a whole
/// number), then [`FILTERS`].
macro_rules! assert_trace {
    ($run:expr, $trace_text:expr, $masks:expr) => {{
        let run: &Run = &$run;
        let pairs: Vec<(String, String)> = $masks;
        let masks = pairs
            .iter()
            .fold(grader::Masks::new(), |masks, (value, mask)| masks.value(value, mask));
        grader::insta::with_settings!({ filters => FILTERS.to_vec() }, {
            grader::assert_transcript!(run, text = traced_transcript(run, $trace_text), &masks)
        });
    }};
}

/// `(value, mask)` pairs for [`assert_trace!`].
fn masks<const N: usize>(pairs: [(&dyn std::fmt::Display, &str); N]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(value, mask)| (value.to_string(), mask.to_string()))
        .collect()
}

/// Fails unless process `pid` of `trace` made exactly the calls `expected`,
/// in order (pids and identifiers renamed, addresses masked).
fn expect_calls(run: &Run, trace: &Trace, pid: i32, who: &str, expected: &[String], why: &str) {
    let names = trace.names();
    let ids = trace.sysv_ids();
    let actual: Vec<String> = trace
        .of(pid)
        .into_iter()
        .map(|text| mask_addresses(&rename(text, &names, &ids)))
        .collect();
    if actual != expected {
        let mut failure = run.failure(format!("traced {who} differently from what it did"));
        failure.details.push(format!("expected for {who}:"));
        failure
            .details
            .extend(expected.iter().map(|line| format!("  {line}")));
        failure.details.push("traced:".to_string());
        if actual.is_empty() {
            failure.details.push("  (nothing)".to_string());
        }
        failure
            .details
            .extend(actual.iter().map(|line| format!("  {line}")));
        failure.why = Some(why.to_string());
        failure.raise();
    }
}

/// `0x7f3a…` (5 hex digits or more) as `0x[ADDR]`.
fn mask_addresses(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        let digits = rest[at + 2..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .count();
        if digits >= 5 {
            out.push_str("0x[ADDR]");
        } else {
            out.push_str(&rest[at..at + 2 + digits]);
        }
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out
}

/// The pid a workload announced on stdout as `pid N`.
fn announced_pid(text: &str) -> Option<i32> {
    let (_, rest) = text.split_once("pid ")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Fails if a traced process got a `SIGTRAP`: what a tracer makes of its
/// own stops when it cannot tell them from signals.
fn expect_no_sigtrap(run: &Run) {
    let trace = Trace::parse(&run.stderr);
    for pid in trace.pids() {
        let calls = trace.of(pid);
        let Some(at) = calls.iter().position(|text| *text == "--- SIGTRAP ---") else {
            continue;
        };
        let after_exec = at > 0 && calls[at - 1].starts_with("execve(");
        let why = if after_exec {
            "without PTRACE_O_TRACEEXEC, every exec of a tracee sends it a SIGTRAP, which a \
             tracer that passes signals on delivers, and the program dies of it: set the \
             option, and the exec stops in a PTRACE_EVENT_EXEC instead"
        } else {
            "without PTRACE_O_TRACESYSGOOD, a syscall-stop reports a plain SIGTRAP, which looks \
             like a signal arriving: set the option, and syscall-stops report SIGTRAP | 0x80 \
             (sys::Stop::Syscall)"
        };
        run.fail(
            format!("a traced process got a SIGTRAP (process {pid}, after {at} calls)"),
            why,
        );
    }
}

/// Fails unless the program exited with `code`.
fn expect_code(run: &Run, code: i32, why: &str) {
    if run.code() != Some(code) {
        let got = match (run.code(), run.signal()) {
            (Some(got), _) => format!("exit status {got}"),
            (None, Some(signal)) => format!("death by signal {signal}"),
            _ => "no status".to_string(),
        };
        run.fail(
            format!("ended with {got}, expected exit status {code}"),
            why,
        );
    }
}

/// The state letter of process `pid` (`S`, `t`, `Z` …) in `/proc/PID/stat`.
fn state_of(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// The system call process `pid` is in, from `/proc/PID/syscall`.
fn syscall_of(pid: i32) -> Option<i64> {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Polls `ready` at growing intervals until it holds or `WAIT` passes.
fn poll(mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut nap = Duration::from_micros(500);
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// Waits until process `pid` (a tracee) is asleep in system call
/// `syscall`, or fails the test.
fn wait_until_blocked(program: &Running, pid: i32, syscall: i64, what: &str) {
    if !poll(|| state_of(pid) == Some('S') && syscall_of(pid) == Some(syscall)) {
        program.fail(
            format!(
                "the traced program never blocked in {what} within {} s",
                WAIT.as_secs()
            ),
            STUCK,
        );
    }
}

/// Waits until standard error (where the trace goes) holds `text`, or
/// fails the test with `why` (or with the program's panic, if it ended
/// first).
fn wait_for_stderr(program: &Running, text: &str, why: &str) -> String {
    let pid = program.pid() as i32;
    let ended = || state_of(pid).is_none_or(|state| state == 'Z');
    poll(|| program.stderr().contains(text) || ended());
    if !program.stderr().contains(text) {
        let what = if ended() {
            format!("ended before it printed `{text}` on stderr")
        } else {
            format!("printed no `{text}` on stderr within {} s", WAIT.as_secs())
        };
        program.fail(what, why);
    }
    program.stderr()
}

/// The path of strace, if it is installed.
fn strace() -> Option<&'static str> {
    ["/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace"]
        .into_iter()
        .find(|path| Path::new(path).is_file())
}

// ---- TODO 1: start a program, traced ------------------------------------

#[test]
fn start_stops_the_program_right_after_its_exec() {
    let mut vary = Varied::new();
    let word = vary.word(8);
    let code = vary.between(1, 120);
    let script = format!("echo {word}; exit {code}");
    let run = lab()
        .cmd(["start", "--", "sh", "-c", &script])
        .section(TASK_1)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    let state = run.stderr.lines().next().unwrap_or("");
    if !state.contains("state t (tracing stop)") {
        run.fail(
            "the program was not in a tracing stop when spawn_traced returned",
            "the child calls ptrace(PTRACE_TRACEME) before execvp, which makes the exec stop \
             it with SIGTRAP; the parent waits for that stop (waitpid) before it returns",
        );
    }
    if !run.stderr.contains("its tracer: this process") {
        run.fail(
            "the stopped program's tracer (TracerPid in /proc/PID/status) is not the program",
            "PTRACE_TRACEME makes the parent the tracer: call it in the child, after fork",
        );
    }
    expect_code(
        &run,
        code as i32,
        "once detached, the program runs to its end; `start` exits with its status",
    );
    assert_trace!(run, "", masks([(&word, "[WORD]"), (&code, "[CODE]")]));
}

#[test]
fn a_program_that_cannot_run_is_one_line_and_exit_status_1() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let missing = format!("no-such-program-{}", vary.word(6));
    let not_executable = sandbox.write_file("data.txt", "not a program\n");
    fs::set_permissions(&not_executable, fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("grader: chmod: {e}"));
    let cases = [
        (missing.clone(), "ENOENT", "start"),
        (not_executable.display().to_string(), "EACCES", "run"),
    ];
    // execvp searches PATH: one directory that exists and is empty, so
    // that a directory the user may not search (EACCES) cannot mask ENOENT.
    let empty = sandbox.path("bin");
    fs::create_dir(&empty).unwrap_or_else(|e| panic!("grader: mkdir: {e}"));
    for (program, errno, command) in cases {
        let run = lab()
            .cmd_in(Sandbox::new(), [command, "--", program.as_str()])
            .env("PATH", &empty)
            .section(TASK_1)
            .timeout(TIMEOUT)
            .why_if_timeout(STUCK)
            .run();
        run.expect_one_line_error(
            "ptrace",
            errno,
            "when execvp fails, the child writes its errno into the CLOEXEC pipe and \
             _exit(127)s; the parent, which sees an exit instead of a SIGTRAP stop, reaps it \
             and fails with `cannot run PROGRAM: ERRNO`",
        );
        if !run.stderr.contains(&format!("cannot run {program}")) {
            run.fail(
                "the error does not say which program could not run",
                "fail with `cannot run PROGRAM: ERRNO` (bail! or a context)",
            );
        }
    }
    let run = lab().cmd(["run"]).section(TASK_1).run();
    run.expect_code(2);
}

#[test]
fn a_traced_program_dies_with_its_tracer() {
    let lab = lab();
    let mut program = lab
        .cmd(["step", "--"])
        .arg(&lab.bin)
        .args(["workload", "block"])
        .section(TASK_1)
        .start();
    let stdout = program.wait_for_stdout("waiting for a client", WAIT);
    let Some(tracee) = announced_pid(&stdout) else {
        program.fail("the workload did not say its pid", STUCK);
    };
    wait_until_blocked(&program, tracee, libc::SYS_accept4, "accept4");
    program.signal(libc::SIGKILL);
    // A tracee killed by PTRACE_O_EXITKILL dies a moment after its tracer:
    // give it that moment; one that was let go blocks on in accept4.
    poll(|| state_of(tracee).is_none_or(|state| state == 'Z'));
    let run = program.wait_unchecked(TIMEOUT);
    let survivors: Vec<&str> = run
        .leaks
        .iter()
        .filter(|leak| matches!(leak.kind, LeakKind::RunningProcess | LeakKind::Daemon))
        .map(|leak| leak.what.as_str())
        .collect();
    if !survivors.is_empty() {
        let mut failure =
            run.failure("the program it traced was still running after the tracer was killed");
        failure.why = Some(
            "without PTRACE_O_EXITKILL, a tracer that dies leaves its tracees running, no \
             longer traced: set it with the other options, so that the kernel kills them"
                .to_string(),
        );
        failure.raise();
    }
}

#[test]
fn start_gives_the_program_the_default_action_for_sigpipe() {
    let mut vary = Varied::new();
    let lines = vary.between(1, 20);
    // `yes` writes until `head` has gone; the group reports how it ended.
    let script = format!(r#"{{ yes; echo "yes ended with status $?" >&2; }} | head -n {lines}"#);
    let run = lab()
        .cmd(["start", "--", "sh", "-c", &script])
        .section(TASK_1)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    if run.stderr.contains("Broken pipe") || !run.stderr.contains("yes ended with status 141") {
        run.fail(
            "`yes` did not die of SIGPIPE (status 128 + 13) once its reader had gone",
            "Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: the \
             child must put it back to its default (signal(SIGPIPE, SigDfl)) before execvp",
        );
    }
    expect_code(
        &run,
        0,
        "the pipeline's last command, head, exits with status 0",
    );
    let expected: String = (0..lines).map(|_| "y\n").collect();
    run.expect_lines(&expected, "head prints the first lines of yes's output");
}

// ---- TODO 2: read a syscall-stop -----------------------------------------

/// `ptrace step -- ptrace workload pipes --to TO`: its stderr lines.
fn step_pipes(to: i32) -> Run {
    let lab = lab();
    lab.cmd(["step", "--"])
        .arg(&lab.bin)
        .args(["workload", "pipes", "--to", &to.to_string()])
        .section(TASK_2)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run()
}

/// The `(entry, exit)` line pairs of a `step` run, and the line it ended
/// with; fails the test unless entries and exits alternate.
fn step_pairs(run: &Run) -> Vec<(String, String)> {
    let lines: Vec<&str> = run.stderr.lines().collect();
    let mut pairs = Vec::new();
    let mut at = 0;
    while at + 1 < lines.len() && lines[at].starts_with("enter ") {
        if !lines[at + 1].starts_with("exit ") {
            break;
        }
        pairs.push((lines[at].to_string(), lines[at + 1].to_string()));
        at += 2;
    }
    let ending = &lines[at..];
    let ends_well = ending.len() == 2
        && ending[0].starts_with("enter exit_group(")
        && ending[1] == "exited with status 0";
    if !ends_well {
        let mut failure = run.failure("the syscall-stops are not entries and exits in turn");
        failure.details.push(format!(
            "after {} entry/exit pairs, it printed:",
            pairs.len()
        ));
        failure
            .details
            .extend(ending.iter().take(4).map(|line| format!("  {line}")));
        failure.why = Some(
            "read_syscall returns Entry at a syscall-entry-stop and Exit at a \
             syscall-exit-stop, as info.op says (PTRACE_SYSCALL_INFO_ENTRY or _EXIT); \
             the last call, exit_group, has no exit"
                .to_string(),
        );
        failure.raise();
    }
    pairs
}

/// The exit line of the first pair whose entry starts with `entry`.
fn exit_after<'a>(pairs: &'a [(String, String)], entry: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(enter, _)| enter.starts_with(entry))
        .map(|(_, exit)| exit.as_str())
}

#[test]
fn step_shows_each_call_entered_then_exited() {
    let mut vary = Varied::new();
    let run = step_pipes(vary.between(5, 60) as i32);
    expect_code(&run, 0, "the workload exits with status 0");
    let pairs = step_pairs(&run);
    if pairs.len() < 20 {
        run.fail(
            format!("only {} system calls were seen", pairs.len()),
            "restart the tracee with PTRACE_SYSCALL at every stop: it stops at the entry and \
             at the exit of every system call",
        );
    }
}

#[test]
fn step_reads_the_arguments_and_the_result() {
    let mut vary = Varied::new();
    let to = vary.between(5, 60) as i32;
    let run = step_pipes(to);
    let pairs = step_pairs(&run);
    let dup3 = format!("enter dup3(0x4, {to:#x}, 0x0, ");
    let expected = format!("exit  {to}");
    if exit_after(&pairs, &dup3) != Some(expected.as_str()) {
        run.fail(
            format!("no `{dup3}…` followed by `{expected}`"),
            "at an entry, nr and the six arguments are info.u.entry.nr and .args; at an \
             exit, the return value is info.u.exit.sval",
        );
    }
    let pid = announced_pid(&run.stdout).unwrap_or(-1);
    let getpid = format!("exit  {pid}");
    if exit_after(&pairs, "enter getpid(") != Some(getpid.as_str()) {
        run.fail(
            format!("getpid's exit does not show the workload's pid, {pid}"),
            "the return value of a call is info.u.exit.sval, read at its syscall-exit-stop",
        );
    }
}

#[test]
fn step_reads_what_pipe2_wrote_into_the_tracee() {
    let mut vary = Varied::new();
    let run = step_pipes(vary.between(5, 60) as i32);
    let pairs = step_pairs(&run);
    let Some((_, exit)) = pairs
        .iter()
        .find(|(enter, _)| enter.starts_with("enter pipe2("))
    else {
        run.fail("no pipe2 was seen", "the workload calls pipe2 once");
    };
    if !exit.starts_with("exit  0 (wrote [3, 4] at ") {
        run.fail(
            format!("pipe2's exit shows `{exit}`, not the descriptors 3 and 4 it wrote"),
            "read_memory reads the aligned words that cover the bytes asked for, with \
             PTRACE_PEEKDATA, and keeps only those bytes: skip address % 8 bytes of the \
             first word (the array is not at a multiple of 8)",
        );
    }
}

#[test]
fn step_shows_a_failed_call_as_a_negative_errno() {
    let mut vary = Varied::new();
    let to = vary.between(5, 60) as i32;
    let run = step_pipes(to);
    let pairs = step_pairs(&run);
    let close = format!("enter close({to:#x}, ");
    let exits: Vec<&str> = pairs
        .iter()
        .filter(|(enter, _)| enter.starts_with(&close))
        .map(|(_, exit)| exit.as_str())
        .collect();
    if exits != ["exit  0", "exit  -9 (error EBADF)"] {
        run.fail(
            format!("the two close({to}) calls show {exits:?}"),
            "the second close fails: info.u.exit.sval is then -EBADF (-9) and \
             info.u.exit.is_error is not 0",
        );
    }
}

// ---- TODO 3: the tracer's loop -------------------------------------------

/// The calls of the `pipes` workload with `to`.
fn pipes_calls(to: i32) -> Vec<String> {
    vec![
        "pipe2([3, 4], O_CLOEXEC) = 0".to_string(),
        format!("dup3(4, {to}, 0) = {to}"),
        "close(4) = 0".to_string(),
        format!("close({to}) = 0"),
        "close(3) = 0".to_string(),
        "+++ exited with 0 +++".to_string(),
    ]
}

#[test]
fn run_prints_the_calls_of_a_program_with_a_pipe() {
    let mut vary = Varied::new();
    let to = vary.between(5, 60) as i32;
    let run = run_workload(TASK_3, &[], &words!("pipes", "--to", &to)).run();
    expect_no_sigtrap(&run);
    expect_code(
        &run,
        0,
        "the workload exits with status 0, and so does the tracer",
    );
    let trace = Trace::parse(&run.stderr);
    let Some(&pid) = trace.pids().first() else {
        run.fail(
            "printed no trace line (`[pid N] call(…) = result`) on stderr",
            "at each syscall-exit-stop, say the call made at its entry (Call::finish); the \
             CLI writes the trace to stderr",
        );
    };
    expect_calls(
        &run,
        &trace,
        pid,
        "the workload",
        &pipes_calls(to),
        "make the Call at the syscall-entry-stop (Call::enter), say it at the exit with the \
         value and is_error of that stop; a close of a descriptor that is not IPC (/dev/null) \
         is not shown by default, and the second close(TO) fails, on a descriptor that is no \
         IPC one any more",
    );
    assert_trace!(run, &run.stderr, masks([(&to, "[TO]")]));
}

#[test]
fn run_prints_system_v_calls() {
    let mut vary = Varied::new();
    // Ranges apart from each other and from the trace's fixed numbers (0,
    // 1, 64): each is masked in the snapshot as a whole word.
    let mtype = vary.between(100, 999);
    let length = vary.between(5, 30) as usize;
    let text = vary.word(length);
    let size = vary.between(1000, 100_000);
    let run = run_workload(
        TASK_3,
        &[],
        &words!("sysv", "--mtype", &mtype, "--text", &text, "--size", &size),
    )
    .run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    let len = text.len();
    let expected = [
        "msgget(IPC_PRIVATE, IPC_CREAT|0600) = [msqid]".to_string(),
        format!("msgsnd([msqid], {{mtype={mtype}, mtext=\"{text}\"}}, {len}, 0) = 0"),
        format!("msgrcv([msqid], {{mtype={mtype}, mtext=\"{text}\"}}, 64, 0, IPC_NOWAIT) = {len}"),
        "msgctl([msqid], IPC_RMID, NULL) = 0".to_string(),
        "semget(IPC_PRIVATE, 1, IPC_CREAT|0600) = [semid]".to_string(),
        "semop([semid], [{sem_num=0, sem_op=1, sem_flg=0}], 1) = 0".to_string(),
        "semop([semid], [{sem_num=0, sem_op=-1, sem_flg=SEM_UNDO|IPC_NOWAIT}], 1) = 0".to_string(),
        "semctl([semid], 0, IPC_RMID, NULL) = 0".to_string(),
        format!("shmget(IPC_PRIVATE, {size}, IPC_CREAT|0600) = [shmid]"),
        "shmat([shmid], NULL, 0) = 0x[ADDR]".to_string(),
        "shmdt(0x[ADDR]) = 0".to_string(),
        "shmctl([shmid], IPC_RMID, NULL) = 0".to_string(),
        "+++ exited with 0 +++".to_string(),
    ];
    expect_calls(
        &run,
        &trace,
        pid,
        "the workload",
        &expected,
        "msgrcv's message is read at the exit, once the kernel has written it: only then \
         are outputs there to read (Call::finish at the syscall-exit-stop)",
    );
    assert_trace!(
        run,
        &run.stderr,
        masks([
            (&text, "[TEXT]"),
            (&mtype, "[MTYPE]"),
            (&size, "[SIZE]"),
            (&len, "[LEN]")
        ])
    );
}

#[test]
fn run_prints_posix_message_queue_calls() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("jobs");
    // Ranges apart from each other and from the trace's fixed numbers (3,
    // 4, 64), each masked in the snapshot as a whole word; texts of at most
    // 32 bytes, which a trace shows in full.
    let length = vary.between(5, 32) as usize;
    let text = vary.word(length);
    let priority = vary.between(100, 999);
    let lab = lab();
    let run = lab
        .cmd_in(sandbox, ["run", "--"])
        .arg(&lab.bin)
        .args(words!(
            "workload",
            "mq",
            &name,
            "--text",
            &text,
            "--priority",
            &priority
        ))
        .section(TASK_3)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    let bare = name
        .trim_start_matches('/')
        .replace(run.sandbox.posix_prefix(), "[PREFIX]-");
    let len = text.len();
    let expected = [
        format!(
            "mq_open(\"{bare}\", O_RDWR|O_CREAT|O_EXCL, 0600, {{mq_flags=0, mq_maxmsg=4, \
             mq_msgsize=64, mq_curmsgs=0}}) = 3"
        ),
        format!("mq_timedsend(3, \"{text}\", {len}, {priority}, NULL) = 0"),
        format!("mq_timedreceive(3, \"{text}\", 64, [{priority}], NULL) = {len}"),
        "close(3) = 0".to_string(),
        format!("mq_unlink(\"{bare}\") = 0"),
        "+++ exited with 0 +++".to_string(),
    ];
    expect_calls(
        &run,
        &trace,
        pid,
        "the workload",
        &expected,
        "the C library passes the queue's name without its `/`, one byte into the string: \
         read_memory must return the bytes from the address asked for, not from the start \
         of its word",
    );
    assert_trace!(
        run,
        &run.stderr,
        masks([
            (&text, "[TEXT]"),
            (&priority, "[PRIORITY]"),
            (&len, "[LEN]")
        ])
    );
}

#[test]
fn run_prints_socket_calls() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("srv.sock").display().to_string();
    let lab = lab();
    let run = lab
        .cmd_in(sandbox, ["run", "--"])
        .arg(&lab.bin)
        .args(["workload", "sockets", &path])
        .section(TASK_3)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    // The grader shows the sandbox's path as [SANDBOX].
    let address = format!(
        "{{sa_family=AF_UNIX, sun_path=\"[SANDBOX]/srv.sock\"}}, {}",
        path.len() + 3
    );
    let expected = [
        "socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, [3, 4]) = 0".to_string(),
        "shutdown(3, SHUT_WR) = 0".to_string(),
        "close(3) = 0".to_string(),
        "close(4) = 0".to_string(),
        "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3".to_string(),
        format!("bind(3, {address}) = 0"),
        "listen(3, 4) = 0".to_string(),
        "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 4".to_string(),
        format!("connect(4, {address}) = 0"),
        "accept4(3, NULL, NULL, SOCK_CLOEXEC) = 5".to_string(),
        "close(5) = 0".to_string(),
        "close(4) = 0".to_string(),
        "close(3) = 0".to_string(),
        "+++ exited with 0 +++".to_string(),
    ];
    expect_calls(
        &run,
        &trace,
        pid,
        "the workload",
        &expected,
        "socketpair writes its two descriptors at its exit: say each call at its \
         syscall-exit-stop",
    );
    let address_len = path.len() + 3;
    assert_trace!(run, &run.stderr, masks([(&address_len, "[ADDRLEN]")]));
}

#[test]
fn run_shows_only_the_calls_the_filter_names() {
    let mut vary = Varied::new();
    let to = vary.between(5, 60) as i32;
    let run = run_workload(TASK_3, &["-e", "dup3,close"], &words!("pipes", "--to", &to)).run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    let mine: Vec<String> = vec![
        format!("dup3(4, {to}, 0) = {to}"),
        "close(4) = 0".to_string(),
        "close(4) = 0".to_string(),
        format!("close({to}) = 0"),
        format!("close({to}) = -1 EBADF (Bad file descriptor)"),
        "close(3) = 0".to_string(),
        "+++ exited with 0 +++".to_string(),
    ];
    // Before main, the dynamic loader opens and closes libraries: skip
    // those closes, the test looks from the dup3 on.
    let all = trace.of(pid);
    let from = all
        .iter()
        .position(|text| text.starts_with("dup3("))
        .unwrap_or(all.len());
    let shown: Vec<String> = all[from..].iter().map(|text| text.to_string()).collect();
    if shown != mine {
        let mut failure = run.failure("`-e dup3,close` did not show exactly those calls");
        failure
            .details
            .push("expected, from the dup3 on:".to_string());
        failure
            .details
            .extend(mine.iter().map(|line| format!("  {line}")));
        failure
            .details
            .push("traced, from the dup3 on:".to_string());
        if shown.is_empty() {
            failure.details.push("  (nothing)".to_string());
        }
        failure
            .details
            .extend(shown.iter().map(|line| format!("  {line}")));
        failure.why = Some(
            "a failed call shows its errno (is_error: Call::finish takes it); with `close` in \
             the filter every close is shown, the /dev/null one and the failed one too"
                .to_string(),
        );
        failure.raise();
    }
    let word = vary.word(5);
    let bad = lab()
        .cmd(["run", "-e", &format!("pipe2,{word}"), "--", "true"])
        .section(TASK_3)
        .run();
    bad.expect_code(2);
    if bad.stderr.lines().count() != 1 || !bad.stderr.contains(&format!("`{word}`")) {
        bad.fail(
            "an unknown system call name in the filter is not one line naming it",
            "the filter is parsed before anything starts: one line, exit status 2",
        );
    }
}

#[test]
fn run_exits_with_the_programs_status() {
    let mut vary = Varied::new();
    let code = vary.between(1, 120);
    let script = format!("exit {code}");
    let run = lab()
        .cmd(["run", "--", "sh", "-c", &script])
        .section(TASK_3)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    expect_code(
        &run,
        code as i32,
        "run returns the Ending of the first tracee (the program), kept by on_exit; the CLI \
         exits with its status",
    );
    let trace = Trace::parse(&run.stderr);
    let last = trace.lines.last().map(|(_, text)| text.as_str());
    let expected = format!("+++ exited with {code} +++");
    if last != Some(expected.as_str()) {
        run.fail(
            format!("the trace does not end with `{expected}`"),
            "on_exit says how a tracee ended: `+++ exited with N +++` (Ending's Display)",
        );
    }
}

#[test]
fn run_writes_the_trace_to_the_file_of_dash_o() {
    let mut vary = Varied::new();
    let to = vary.between(5, 60) as i32;
    let sandbox = Sandbox::new();
    let file = sandbox.path("trace.txt");
    let lab = lab();
    let run = lab
        .cmd_in(sandbox, ["run", "-o"])
        .arg(&file)
        .arg("--")
        .arg(&lab.bin)
        .args(words!("workload", "pipes", "--to", &to))
        .section(TASK_3)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    expect_code(&run, 0, "the workload exits with status 0");
    let written = fs::read_to_string(run.sandbox.path("trace.txt")).unwrap_or_default();
    let trace = Trace::parse(&written);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    if !run.stderr.is_empty() || trace.of(pid) != pipes_calls(to) {
        run.fail(
            "with -o FILE, the trace is not all in FILE",
            "write every line with Tracer::say, which writes to the tracer's output (the file \
             of -o), never with eprintln!",
        );
    }
}

#[test]
fn run_shows_the_call_a_process_died_in() {
    let mut program = run_workload(TASK_3, &[], &words!("block")).start();
    let stdout = program.wait_for_stdout("waiting for a client", WAIT);
    let Some(tracee) = announced_pid(&stdout) else {
        program.fail("the workload did not say its pid", STUCK);
    };
    wait_until_blocked(&program, tracee, libc::SYS_accept4, "accept4");
    // SAFETY: kill takes numbers; the workload is blocked, not reaped.
    unsafe { libc::kill(tracee, libc::SIGKILL) };
    let run = program.wait(TIMEOUT);
    expect_code(&run, 128 + 9, "the program was killed by SIGKILL: 128 + 9");
    let trace = Trace::parse(&run.stderr);
    let calls = trace.of(tracee);
    let ending = &calls[calls.len().saturating_sub(2)..];
    let expected = [
        "accept4(3, NULL, NULL, SOCK_CLOEXEC) = ?",
        "+++ killed by SIGKILL +++",
    ];
    if ending != expected {
        let mut failure = run.failure("the call the workload died in is not shown as unfinished");
        failure
            .details
            .push(format!("expected the trace to end with {expected:?}"));
        failure.details.push(format!("it ends with {ending:?}"));
        failure.why = Some(
            "a process can die inside a call (killed while it waits): on_exit says the call \
             it entered with Call::unfinished (` = ?`), then how it ended"
                .to_string(),
        );
        failure.raise();
    }
}

/// strace's trace of `argv`, with `filter`, run by the grader as the lab's
/// program is (same environment, a sandbox), as `[pid N] text` lines: its
/// `<unfinished ...>` and `<... resumed>` halves joined, its alignment
/// spaces dropped, its first `execve` (which this tracer does not see: it
/// starts at the SIGTRAP that follows) left out.
fn strace_trace(strace: &str, filter: &str, argv: &[String]) -> String {
    let run = grader::Cmd::new(strace, Sandbox::new())
        .args(["-f", "-q", "-o", "strace.txt", "-e"])
        .arg(format!("trace={filter}"))
        .arg("--")
        .args(argv)
        .timeout(TIMEOUT)
        .run();
    let text = fs::read_to_string(run.sandbox.path("strace.txt"))
        .unwrap_or_else(|e| panic!("grader: strace wrote no trace: {e}"))
        .replace(&run.sandbox.dir().display().to_string(), "[SANDBOX]");
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::new();
    let mut first_exec = true;
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
            continue;
        }
        let rest = match rest.strip_prefix("<... ") {
            Some(resumed) => {
                let tail = resumed.split_once(" resumed>").map_or("", |(_, tail)| tail);
                format!("{}{tail}", pending.remove(pid).unwrap_or_default())
            }
            None => rest.to_string(),
        };
        let rest = match rest.rsplit_once(") ") {
            Some((call, result)) if result.trim_start().starts_with("= ") => {
                format!("{call}) {}", result.trim_start())
            }
            _ => rest,
        };
        if first_exec && rest.starts_with("execve(") {
            first_exec = false;
            continue;
        }
        lines.push(format!("[pid {pid}] {rest}"));
    }
    lines.join("\n")
}

/// The lines of a trace that two runs of the same program share: no
/// signals (when one arrives changes from run to run), no call that a
/// signal interrupted (`? ERESTART…`, made again right after), and not
/// which child a `wait4(-1, …)` reaped.
fn comparable(trace: &Trace) -> String {
    let kept: Vec<String> = trace
        .lines
        .iter()
        .filter(|(_, text)| !text.starts_with("--- ") && !text.contains(") = ? ERESTART"))
        .map(
            |(pid, text)| match (text.starts_with("wait4(-1, "), text.rsplit_once(") = ")) {
                // Which child wait4(-1) reaps first changes from run to run.
                (true, Some((call, _))) => format!("[pid {pid}] {call}) = [any child]"),
                _ => format!("[pid {pid}] {text}"),
            },
        )
        .collect();
    Trace::parse(&kept.join("\n")).by_process()
}

/// Fails unless `run`'s trace and strace's trace of the same command agree
/// process by process (addresses masked); says in one line when strace is
/// not installed.
fn expect_same_as_strace(run: &Run, filter: &str, argv: &[String], why: &str) {
    let Some(strace) = strace() else {
        eprintln!("skipped: the comparison with strace (strace is not installed)");
        return;
    };
    let theirs = strace_trace(strace, filter, argv);
    let ours = mask_addresses(&comparable(&Trace::parse(&run.stderr)));
    let theirs = mask_addresses(&comparable(&Trace::parse(&theirs)));
    if ours != theirs {
        let mut failure = run.failure("traced otherwise than strace traced the same program");
        let ours_lines: Vec<&str> = ours.lines().collect();
        let theirs_lines: Vec<&str> = theirs.lines().collect();
        let first = ours_lines
            .iter()
            .zip(&theirs_lines)
            .position(|(a, b)| a != b)
            .unwrap_or(ours_lines.len().min(theirs_lines.len()));
        failure
            .details
            .push("first difference, process by process (strace, then yours):".to_string());
        failure.details.push(format!(
            "  strace: {}",
            theirs_lines.get(first).unwrap_or(&"(nothing)")
        ));
        failure.details.push(format!(
            "  yours:  {}",
            ours_lines.get(first).unwrap_or(&"(nothing)")
        ));
        failure
            .appendix
            .push("strace, process by process:".to_string());
        failure
            .appendix
            .extend(theirs_lines.iter().map(|line| line.to_string()));
        failure
            .appendix
            .push("yours, process by process:".to_string());
        failure
            .appendix
            .extend(ours_lines.iter().map(|line| line.to_string()));
        failure.why = Some(why.to_string());
        failure.raise();
    }
}

#[test]
fn run_agrees_with_strace_on_the_ipc_workloads() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let bin = lab().bin.display().to_string();
    let name = sandbox.posix_name("q");
    let socket = sandbox.path("s.sock").display().to_string();
    let to = vary.between(5, 60).to_string();
    let workloads: [&[String]; 4] = [
        &words!("pipes", "--to", &to),
        &words!(
            "sysv",
            "--mtype",
            &vary.between(1, 99),
            "--text",
            &vary.word(9)
        ),
        &words!(
            "mq",
            &name,
            "--text",
            &vary.word(7),
            "--priority",
            &vary.between(0, 9)
        ),
        &words!("sockets", &socket),
    ];
    let filter = "pipe2,dup3,msgget,msgsnd,semget,semop,semctl,shmget,shmctl,msgctl,\
                  mq_open,mq_timedsend,mq_unlink,socketpair,socket,bind,listen,connect,\
                  accept4,shutdown";
    for workload in workloads {
        let argv: Vec<String> = [bin.clone(), "workload".to_string()]
            .into_iter()
            .chain(workload.iter().cloned())
            .collect();
        let run = lab()
            .cmd_in(Sandbox::new(), ["run", "-e", filter, "--"])
            .args(&argv)
            .section(TASK_3)
            .timeout(TIMEOUT)
            .why_if_timeout(STUCK)
            .run();
        expect_code(&run, 0, "the workload exits with status 0");
        expect_same_as_strace(
            &run,
            filter,
            &argv,
            "both tracers watched the same program: every call of the filter, with the \
             same arguments and results, in the same order",
        );
    }
}

// ---- TODO 4: signals -------------------------------------------------------

/// A signal the workload handles and one that kills it, both varied.
fn two_signals(vary: &mut Varied) -> (i32, i32) {
    let caught = *vary.pick(&[libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP, libc::SIGWINCH]);
    let fatal = *vary.pick(&[libc::SIGTERM, libc::SIGINT, libc::SIGALRM, libc::SIGPROF]);
    (caught, fatal)
}

/// The name of signal `number`, as the trace writes it.
fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number)
        .map(|signal| signal.as_str().to_string())
        .unwrap_or_else(|_| number.to_string())
}

#[test]
fn run_delivers_the_signals_the_program_gets() {
    let mut vary = Varied::new();
    let (caught, fatal) = two_signals(&mut vary);
    let run = run_workload(
        TASK_4,
        &[],
        &words!("signals", "--caught", &caught, "--fatal", &fatal),
    )
    .run();
    let name = signal_name(caught);
    if !run.stdout.contains(&format!("caught {name}")) {
        run.fail(
            "the signal the program sent itself never reached its handler",
            "at a signal-delivery-stop the signal is not delivered yet: restart the tracee \
             with that signal (sys::restart(pid, signal)), or the tracer swallows it",
        );
    }
    let trace = Trace::parse(&run.stderr);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    let expected = format!("--- {name} ---");
    if !trace.of(pid).contains(&expected.as_str()) {
        run.fail(
            format!("the trace has no `{expected}` line"),
            "say `--- SIGNAL ---` at a signal-delivery-stop",
        );
    }
}

#[test]
fn run_reports_death_by_a_signal() {
    let mut vary = Varied::new();
    let (caught, fatal) = two_signals(&mut vary);
    let run = run_workload(
        TASK_4,
        &[],
        &words!("signals", "--caught", &caught, "--fatal", &fatal),
    )
    .run();
    expect_code(
        &run,
        128 + fatal,
        "the program dies of the signal it sends itself, if the tracer delivers it; the \
         tracer then exits with 128 + its number, as a shell reports it",
    );
    let trace = Trace::parse(&run.stderr);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    let (caught_name, fatal_name) = (signal_name(caught), signal_name(fatal));
    let expected = [
        format!("kill(P, {caught_name}) = 0"),
        format!("--- {caught_name} ---"),
        format!("kill(P, {fatal_name}) = 0"),
        format!("--- {fatal_name} ---"),
        format!("+++ killed by {fatal_name} +++"),
    ];
    expect_calls(
        &run,
        &trace,
        pid,
        "the workload",
        &expected,
        "a signal sent to oneself is delivered as kill returns: its signal-delivery-stop \
         follows kill's exit. Restart with the signal, and on_exit says `+++ killed by \
         SIGNAL +++`",
    );
}

#[test]
fn run_tells_a_group_stop_from_a_signal() {
    let run = run_workload(TASK_4, &[], &words!("stop")).run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let pid = trace.pids().first().copied().unwrap_or(-1);
    expect_calls(
        &run,
        &trace,
        pid,
        "the workload",
        &[
            "kill(P, SIGSTOP) = 0".to_string(),
            "--- SIGSTOP ---".to_string(),
            "--- stopped by SIGSTOP ---".to_string(),
            "+++ exited with 0 +++".to_string(),
        ],
        "SIGSTOP first makes a signal-delivery-stop (PTRACE_GETSIGINFO works): deliver it; \
         the process then enters a group-stop, which the tracer sees as another stop with \
         SIGSTOP, where PTRACE_GETSIGINFO fails with EINVAL: say `--- stopped by SIGSTOP ---` \
         and restart it without a signal",
    );
    assert_trace!(run, &run.stderr, Vec::new());
}

// ---- TODO 5: children, threads, exec ------------------------------------

#[test]
fn run_follows_forked_children() {
    let mut vary = Varied::new();
    let children = vary.between(1, 5) as i32;
    let run = run_workload(TASK_5, &[], &words!("family", &children)).run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let Some(parent) = trace.root() else {
        run.fail("printed no trace", STUCK);
    };
    let kids = trace.children(parent);
    let announced: Vec<i32> = run.stdout.lines().filter_map(announced_pid).collect();
    if kids != announced {
        run.fail(
            format!("the clone calls traced returned {kids:?}, the children were {announced:?}"),
            "follow the children: PTRACE_O_TRACEFORK (task 1) makes each fork stop in a \
             PTRACE_EVENT_FORK; a clone's exit shows the child's pid",
        );
    }
    let why = "each child is a tracee from its first instruction: its first stop is a \
               SIGSTOP that only the tracer must see, so on_first_stop restarts it without \
               the signal";
    for (number, &kid) in (1..).zip(&kids) {
        let expected = [
            "close(4) = 0".to_string(),
            "close(3) = 0".to_string(),
            format!("+++ exited with {number} +++"),
        ];
        expect_calls(
            &run,
            &trace,
            kid,
            &format!("child P.{number}"),
            &expected,
            why,
        );
    }
    let mut expected = vec!["pipe2([3, 4], 0) = 0".to_string()];
    expected.extend((1..=children).map(|number| {
        format!(
            "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, \
             child_tidptr=0x[ADDR]) = P.{number}"
        )
    }));
    expected.extend(["close(3) = 0".to_string(), "close(4) = 0".to_string()]);
    expected.extend((1..=children).map(|number| {
        format!("wait4(P.{number}, [{{WIFEXITED(s) && WEXITSTATUS(s) == {number}}}], 0, NULL) = P.{number}")
    }));
    expected.push("+++ exited with 0 +++".to_string());
    expect_calls(
        &run,
        &trace,
        parent,
        "the parent",
        &expected,
        "the parent forks, closes both ends, and reaps its children in order: wait4 stores \
         each status, read at the exit of the call",
    );
}

#[test]
fn run_follows_threads() {
    let mut vary = Varied::new();
    let threads = vary.between(1, 4) as usize;
    let run = run_workload(TASK_5, &[], &words!("threads", &threads)).run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let Some(main) = trace.root() else {
        run.fail("printed no trace", STUCK);
    };
    let made = trace.children(main);
    if made.len() != threads {
        run.fail(
            format!(
                "{} threads were traced, the workload made {threads}",
                made.len()
            ),
            "PTRACE_O_TRACECLONE makes each new thread a tracee, from its first instruction",
        );
    }
    for tid in made {
        let calls = trace.of(tid);
        let made_a_pipe = calls
            .first()
            .is_some_and(|text| text.starts_with("pipe2(["))
            && calls.last() == Some(&"+++ exited with 0 +++")
            && calls.len() == 4;
        if !made_a_pipe {
            run.fail(
                format!("thread {tid} is traced as {calls:?}"),
                "each thread makes a pipe, closes both ends and ends: a thread is a tracee \
                 like any other",
            );
        }
    }
}

#[test]
fn run_follows_a_spawned_program() {
    let mut vary = Varied::new();
    let code = vary.between(1, 120);
    let script = format!("exit {code}");
    let run = run_workload(
        TASK_5,
        &[],
        &words!("spawn", "--", "/bin/sh", "-c", &script),
    )
    .run();
    expect_code(&run, 0, "the workload exits with status 0");
    let trace = Trace::parse(&run.stderr);
    let main = trace.root().unwrap_or(-1);
    let Some(&child) = trace.children(main).first() else {
        run.fail(
            "the process std::process::Command started was not traced",
            "Command uses posix_spawn: clone3 or vfork with CLONE_VFORK, which only \
             PTRACE_O_TRACEVFORK follows (PTRACE_EVENT_VFORK)",
        );
    };
    let calls = trace.of(child);
    if calls.is_empty() {
        run.fail(
            "the process std::process::Command started made no traced call",
            "Command uses posix_spawn: clone3 or vfork with CLONE_VFORK, which only \
             PTRACE_O_TRACEVFORK follows (PTRACE_EVENT_VFORK)",
        );
    }
    let exec = format!("execve(\"/bin/sh\", [\"/bin/sh\", \"-c\", \"{script}\"], ");
    let ran = calls
        .iter()
        .any(|text| text.starts_with(&exec) && text.ends_with(") = 0"))
        && calls.last() == Some(&format!("+++ exited with {code} +++").as_str());
    if !ran {
        run.fail(
            format!("the spawned program is traced as {calls:?}"),
            "the child execs /bin/sh, which exits with the status given: a vfork child is \
             followed from its first instruction",
        );
    }
}

#[test]
fn run_follows_a_shell_pipeline_as_strace_does() {
    let mut vary = Varied::new();
    let word = vary.word(8);
    let script = format!("echo {word} | tr a-z A-Z | cat");
    let argv = words!("sh", "-c", &script);
    // `?name`: if this machine has it (aarch64 has no pipe, dup2, fork, vfork).
    let filter = "?pipe,pipe2,dup,?dup2,dup3,clone,clone3,?fork,?vfork,execve,wait4";
    let run = lab()
        .cmd(["run", "-e", filter, "--"])
        .args(&argv)
        .section(TASK_5)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    expect_no_sigtrap(&run);
    expect_code(&run, 0, "the pipeline exits with status 0");
    run.expect_lines(
        &format!("{}\n", word.to_uppercase()),
        "the pipeline's output is its last command's",
    );
    let trace = Trace::parse(&run.stderr);
    let execs = trace
        .lines
        .iter()
        .filter(|(_, text)| text.starts_with("execve(") && text.ends_with(") = 0"))
        .count();
    if execs < 2 {
        run.fail(
            format!("{execs} successful execve seen in the pipeline's children"),
            "the shell's children exec tr and cat: follow them (PTRACE_O_TRACEFORK), and \
             their execs (PTRACE_O_TRACEEXEC: without it an exec sends a SIGTRAP, which a \
             tracer that passes signals on kills the program with)",
        );
    }
    expect_same_as_strace(
        &run,
        filter,
        &argv,
        "both tracers watched the same shell: the same processes, each with the same \
         calls. Follow every child and thread from its first stop, and each exec",
    );
}

// ---- TODO 6: attach to a running process --------------------------------

/// Why attaching is not allowed on this machine, if it is not: Yama's
/// `ptrace_scope` (absent without the Yama security module).
fn attach_forbidden() -> Option<String> {
    let scope = fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok()?;
    // SAFETY: geteuid takes nothing and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match scope.trim() {
        "3" => Some("ptrace_scope is 3: no process may attach to another".to_string()),
        "2" if !root => Some("ptrace_scope is 2: only root may attach".to_string()),
        _ => None,
    }
}

/// `sh -c '"$0" workload wait-fifo GO … & read go < ATTACH; exec "$0"
/// attach $!'`: the shell starts the workload in the background, waits
/// until the test says the workload is ready, and becomes the tracer, so
/// that the tracer is the workload's parent (as Yama's `ptrace_scope` 1
/// wants). The workload then waits on the FIFO `go` until [`release`].
fn attach_to_waiting_workload(to: i32, stop: bool) -> (Running, i32) {
    let sandbox = Sandbox::new();
    for name in ["go", "attach"] {
        nix::unistd::mkfifo(
            &sandbox.path(name),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap_or_else(|e| panic!("grader: mkfifo: {e}"));
    }
    let script = r#""$0" workload wait-fifo "$1/go" --to "$2" $3 &
read go < "$1/attach"
exec "$0" attach $!"#;
    let dir = sandbox.dir().to_path_buf();
    let mut program = lab()
        .script_in(sandbox, script)
        .arg(&dir)
        .arg(to.to_string())
        .arg(if stop { "--stop" } else { "" })
        .section(TASK_6)
        .start();
    let stdout = program.wait_for_stdout("waiting for a writer", WAIT);
    let Some(workload) = announced_pid(&stdout) else {
        program.fail("the workload did not say its pid", STUCK);
    };
    // The workload has started and blocks opening its FIFO: let the shell
    // exec the tracer.
    if !poll(|| write_fifo(&program.sandbox().path("attach"))) {
        program.fail("the shell never read its FIFO", STUCK);
    }
    (program, workload)
}

/// Opens the FIFO `path` for writing without blocking, writes a line and
/// closes it: `false` if nobody is there to read it.
fn write_fifo(path: &Path) -> bool {
    let opened = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    opened.is_ok_and(|mut fifo| fifo.write_all(b"go\n").is_ok())
}

/// Lets the workload of [`attach_to_waiting_workload`] go on: `false` if
/// it is not waiting any more.
fn release(program: &Running) -> bool {
    write_fifo(&program.sandbox().path("go"))
}

#[test]
fn attach_follows_a_running_process() {
    let mut vary = Varied::new();
    let to = vary.between(5, 60) as i32;
    let (program, workload) = attach_to_waiting_workload(to, false);
    if let Some(reason) = attach_forbidden() {
        eprintln!("attaching is not allowed here ({reason}): checking the refusal instead");
        release(&program);
        let run = program.wait_unchecked(TIMEOUT);
        run.expect_one_line_error("ptrace", "EPERM", "PTRACE_SEIZE fails with EPERM");
        return;
    }
    wait_for_stderr(
        &program,
        "ptrace: attached to pid",
        "attach returns once the tracee is in the stop PTRACE_INTERRUPT asked for: \
         PTRACE_SEIZE, PTRACE_INTERRUPT, then waitpid(pid, __WALL) until a PTRACE_EVENT_STOP",
    );
    // Between PTRACE_INTERRUPT and the restart, the workload's open of
    // its FIFO is interrupted, then made again: no reader for a moment.
    if !poll(|| release(&program)) {
        program.fail("the workload stopped waiting for its FIFO", STUCK);
    }
    let run = program.wait(TIMEOUT);
    expect_code(
        &run,
        0,
        "attach exits with status 0 once the process it traces has ended",
    );
    let trace = Trace::parse(&run.stderr);
    let mut expected = vec!["close(3) = 0".to_string()];
    expected.extend(pipes_calls(to));
    expect_calls(
        &run,
        &trace,
        workload,
        "the attached process",
        &expected,
        "after attach, the tracer's loop is the same as for a program it started: the \
         workload closes its FIFO (descriptor 3), then does what `pipes` does",
    );
}

#[test]
fn attach_keeps_a_stopped_process_stopped() {
    let (program, workload) = attach_to_waiting_workload(7, true);
    if let Some(reason) = attach_forbidden() {
        eprintln!("skipped: attaching is not allowed here ({reason})");
        return;
    }
    wait_for_stderr(
        &program,
        "ptrace: attached to pid",
        "attach returns once the tracee is in the stop PTRACE_INTERRUPT asked for",
    );
    // Between PTRACE_INTERRUPT and the restart, the workload's open of
    // its FIFO is interrupted, then made again: no reader for a moment.
    if !poll(|| release(&program)) {
        program.fail("the workload stopped waiting for its FIFO", STUCK);
    }
    wait_for_stderr(
        &program,
        "--- stopped by SIGSTOP ---",
        "a seized tracee's group-stop is a PTRACE_EVENT_STOP with the stopping signal: \
         on_seized_stop says `--- stopped by SIGSTOP ---`",
    );
    let state = state_of(workload);
    if program.stdout().contains("running again") || !matches!(state, Some('t' | 'T')) {
        program.fail(
            format!("the workload ran on after its SIGSTOP (state {state:?})"),
            "restarting a tracee in a group-stop lets it run: keep it stopped with \
             PTRACE_LISTEN (sys::listen) until a SIGCONT comes",
        );
    }
    // SAFETY: kill takes numbers; the workload is stopped, not reaped.
    unsafe { libc::kill(workload, libc::SIGCONT) };
    let run = program.wait(TIMEOUT);
    if !run.stdout.contains("woken by SIGCONT: yes") {
        run.fail(
            "the workload did not see the SIGCONT that woke it",
            "after PTRACE_LISTEN, a SIGCONT ends the stop with a PTRACE_EVENT_STOP (SIGTRAP): \
             restart the tracee; then SIGCONT comes as a signal-delivery-stop: deliver it",
        );
    }
}

#[test]
fn attach_leaves_the_process_running_when_the_tracer_dies() {
    let mut vary = Varied::new();
    let to = vary.between(5, 60) as i32;
    let (mut program, workload) = attach_to_waiting_workload(to, false);
    if let Some(reason) = attach_forbidden() {
        eprintln!("skipped: attaching is not allowed here ({reason})");
        return;
    }
    wait_for_stderr(
        &program,
        "ptrace: attached to pid",
        "attach returns once the tracee is in the stop PTRACE_INTERRUPT asked for",
    );
    program.signal(libc::SIGKILL);
    // Killed with its tracer (PTRACE_O_EXITKILL), the workload never reads
    // its FIFO; let go, it reads it once its interrupted open is made again.
    poll(|| release(&program) || state_of(workload).is_none_or(|state| state == 'Z'));
    if !poll(|| program.stdout().contains("pipe: read end")) {
        program.fail(
            "the attached process died with its tracer",
            "PTRACE_O_EXITKILL is for programs the tracer started: a process it attached to \
             must run on when the tracer goes away (the kernel then detaches it)",
        );
    }
    drop(program.kill());
}

#[test]
fn attach_reports_a_process_that_does_not_exist() {
    let mut vary = Varied::new();
    let pid_max: i64 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4_194_304);
    let pid = pid_max + vary.between(1, 1000) as i64;
    let run = lab()
        .cmd(["attach".to_string(), pid.to_string()])
        .section(TASK_6)
        .timeout(TIMEOUT)
        .run();
    run.expect_one_line_error(
        "ptrace",
        "ESRCH",
        "PTRACE_SEIZE fails with ESRCH when no process has that pid: fail with `cannot \
         attach to pid PID: ESRCH`",
    );
    if !run.stderr.contains(&format!("pid {pid}")) {
        run.fail(
            "the error does not name the pid",
            "say `cannot attach to pid PID: …`",
        );
    }
}

/// Why process 1 may be traced by a tracer without capabilities, if it
/// may: in a container, process 1 can be an ordinary process of this very
/// user, with no capability, and without Yama nothing forbids it then.
fn init_is_traceable() -> Option<String> {
    let status = fs::read_to_string("/proc/1/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    };
    // SAFETY: geteuid takes nothing and cannot fail.
    let euid = unsafe { libc::geteuid() }.to_string();
    let same_user = field("Uid:").is_some_and(|uid| uid == euid);
    let no_capability = field("CapPrm:")
        .is_some_and(|caps| u64::from_str_radix(&caps, 16).is_ok_and(|caps| caps == 0));
    let yama = fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .is_ok_and(|scope| scope.trim() != "0");
    (same_user && no_capability && !yama)
        .then(|| "process 1 is this user's own, without capabilities (a container?)".to_string())
}

#[test]
fn attach_refuses_a_process_it_may_not_trace() {
    // Process 1 belongs to root and holds every capability: a tracer
    // without any (an ordinary user's, or root's without CAP_SYS_PTRACE)
    // may not trace it.
    let lab = lab();
    let cmd = match init_is_traceable() {
        None => lab.cmd(["attach", "1"]),
        Some(reason) => {
            // No process may trace itself: the shell's pid becomes the
            // tracer's through exec.
            eprintln!("{reason}: the tracer attaches to itself instead");
            lab.script_in(Sandbox::new(), r#"exec "$0" attach $$"#)
        }
    };
    let run = cmd.unprivileged().section(TASK_6).timeout(TIMEOUT).run();
    run.expect_one_line_error(
        "ptrace",
        "EPERM",
        "PTRACE_SEIZE fails with EPERM for a process that is not yours, or more privileged \
         than the tracer (or the tracer itself): fail with `cannot attach to pid PID: EPERM`",
    );
}
