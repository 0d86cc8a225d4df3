//! Grading suite of lab 11 (signals).
//!
//! Compiled into both the lab (`labs/11-signals`) and the reference
//! solution. Every test runs the program as a black box through the
//! grader. Most of them send the signals themselves, from the test process
//! (`kill` and `sigqueue` through libc), to a program that said it was
//! ready, and watch it from the outside: `/proc/PID/status` shows which
//! signals it blocks, catches, ignores and has pending, `/proc/PID/syscall`
//! where it sleeps, `/proc/PID/fd` what it holds open. No test sleeps to
//! let something happen: each waits for a line the program prints, a
//! system call it sleeps in, or a state `/proc` shows, and when it needs
//! several standard signals to arrive as one it stops the receiver with
//! `SIGSTOP` first, so that they do, every time. The signals, counts,
//! values and configurations change from run to run; a failure prints the
//! seed that repeats them (`WORKBOOK_SEED=N cargo test …`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use grader::{
    Blocked, Cmd, Lab, Run, Running, Sandbox, SignalState, Varied, children_of, descriptors_of,
    process_state,
};

const CHAPTER: &str = "11-signals.md";

const TASK_1: &str = "Task 1: names and numbers";
const TASK_2: &str = "Task 2: kill, sigqueue and raise";
const TASK_3: &str = "Task 3: block, wait with sigsuspend, count";
const TASK_4: &str = "Task 4: EINTR and SA_RESTART";
const TASK_5: &str = "Task 5: signals as events";
const TASK_6: &str = "Task 6: a supervisor";

/// How long a test waits for a program to say or do something: every
/// step takes milliseconds, the margin is for a loaded machine.
const WAIT: Duration = Duration::from_secs(10);

/// What `raise --catch-once`'s handler writes (`CAUGHT_ONCE` in the lab).
const CAUGHT_ONCE: &str = "handler: caught it, and SA_RESETHAND put back the default action\n";
/// What `interrupt`'s handler writes (`HANDLER_RAN` in the lab).
const HANDLER_RAN: &str = "handler ran\n";

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

// ---- signals, as the test knows them ---------------------------------------

fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// The name bash's `kill -l` gives signal `signo`, with `SIG` in front.
fn name_of(signo: i32) -> String {
    let standard = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let (min, max) = (rtmin(), rtmax());
    match signo {
        1..=31 => format!("SIG{}", standard[signo as usize - 1]),
        _ if signo == min => "SIGRTMIN".to_string(),
        _ if signo == max => "SIGRTMAX".to_string(),
        _ if signo <= min + (max - min) / 2 => format!("SIGRTMIN+{}", signo - min),
        _ => format!("SIGRTMAX-{}", max - signo),
    }
}

/// Every signal number a program may use: 1 to 31, SIGRTMIN to SIGRTMAX.
fn all_signals() -> Vec<i32> {
    (1..=31).chain(rtmin()..=rtmax()).collect()
}

/// A real-time signal, chosen at random.
fn some_realtime(vary: &mut Varied) -> i32 {
    vary.between(rtmin() as u64, rtmax() as u64) as i32
}

/// One of the ways `kill` lets you write `signo`: a name with or without
/// `SIG`, in any case, or its number; `RTMIN+n` or `RTMAX-n` for a
/// real-time signal.
fn spelling(vary: &mut Varied, signo: i32) -> String {
    if vary.one_in(4) {
        return signo.to_string();
    }
    let mut name = name_of(signo);
    if signo >= rtmin() && vary.one_in(2) {
        // The other way round: RTMAX-n for a low one, RTMIN+n for a high one.
        name = if vary.one_in(2) {
            format!("SIGRTMIN+{}", signo - rtmin())
        } else {
            format!("SIGRTMAX-{}", rtmax() - signo)
        };
    }
    if vary.one_in(2) {
        name = name["SIG".len()..].to_string();
    }
    match vary.between(0, 2) {
        0 => name.to_ascii_lowercase(),
        _ => name,
    }
}

/// How the tests of tasks 2 to 6 write `signo`: its name as `kill -l`
/// prints it with `SIG` in front, or its number (task 1's tests try the
/// other spellings).
fn plain(vary: &mut Varied, signo: i32) -> String {
    if vary.one_in(3) {
        signo.to_string()
    } else {
        name_of(signo)
    }
}

// ---- waiting and watching --------------------------------------------------

/// Polls `ready` until it holds, at growing intervals; fails the test
/// with `what` and `why` after [`WAIT`], or at once if the program ends.
fn wait_until(
    program: &mut Running,
    what: &str,
    why: &str,
    mut ready: impl FnMut(&Running) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    let mut nap = Duration::from_micros(500);
    loop {
        if ready(program) {
            return;
        }
        if has_ended(program.pid()) {
            // Its last output may still be in the pipe: give it a moment.
            let settle = Instant::now() + Duration::from_secs(1);
            while Instant::now() < settle {
                if ready(program) {
                    return;
                }
                thread::sleep(Duration::from_millis(5));
            }
            program.fail(format!("{what}: it ended first"), why);
        }
        if Instant::now() >= deadline {
            program.fail(format!("{what} within {} s", WAIT.as_secs()), why);
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// Whether process `pid` has ended: a zombie, or already reaped.
fn has_ended(pid: u32) -> bool {
    matches!(process_state(pid), None | Some('Z' | 'X'))
}

/// Waits until process `pid` (not the program) is in one of `states`.
fn wait_for_state(program: &Running, pid: u32, states: &[char], what: &str) {
    let deadline = Instant::now() + WAIT;
    while !process_state(pid).is_some_and(|state| states.contains(&state)) {
        if Instant::now() >= deadline {
            program.fail(
                format!("{what}: process {pid} is {:?}", process_state(pid)),
                "the test could not get the process into that state: is it still running?",
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Sends `signo` to `pid` from the test, with `kill(2)`.
fn kill(pid: u32, signo: i32) {
    // SAFETY: kill(2) takes no pointers; `pid` is a process the test started.
    let sent = unsafe { libc::kill(pid as i32, signo) };
    assert_eq!(sent, 0, "the test could not send signal {signo} to {pid}");
}

/// Sends `signo` with `value` to `pid` from the test, with `sigqueue(3)`.
fn sigqueue(pid: u32, signo: i32, value: i32) {
    let mut bytes = [0u8; size_of::<usize>()];
    bytes[..4].copy_from_slice(&value.to_ne_bytes());
    let value = libc::sigval {
        sival_ptr: std::ptr::without_provenance_mut(usize::from_ne_bytes(bytes)),
    };
    // SAFETY: sigqueue(3) takes the union by value.
    let sent = unsafe { libc::sigqueue(pid as i32, signo, value) };
    assert_eq!(
        sent, 0,
        "the test could not sigqueue signal {signo} to {pid}"
    );
}

/// This test process's pid and real user ID, as a receiver sees them.
fn me() -> (u32, u32) {
    // SAFETY: getuid(2) cannot fail.
    (std::process::id(), unsafe { libc::getuid() })
}

/// The signals of `mask` (a field of [`SignalState`]) that are also in
/// `among`, by name: `SIGHUP SIGTERM`, or `none`.
fn names_in(mask: u64, among: &[i32]) -> String {
    let names: Vec<String> = among
        .iter()
        .filter(|&&signo| SignalState::has(mask, signo))
        .map(|&signo| name_of(signo))
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" ")
    }
}

/// What is wrong with `mask` (a field of [`SignalState`]): `"SIGTERM not
/// blocked"` for a signal of `wanted` that is not in it, `"the counted
/// signal blocked"` for one of `unwanted` that is. Signals are named by
/// their role (`(signo, "SIGTERM")`), so that a message reads the same
/// whichever signals a run chose.
fn mask_problems(
    mask: u64,
    wanted: &[(i32, &str)],
    unwanted: &[(i32, &str)],
    missing: &str,
    present: &str,
) -> Vec<String> {
    let mut problems: Vec<String> = wanted
        .iter()
        .filter(|&&(signo, _)| !SignalState::has(mask, signo))
        .map(|(_, role)| format!("{role} {missing}"))
        .collect();
    problems.extend(
        unwanted
            .iter()
            .filter(|&&(signo, _)| SignalState::has(mask, signo))
            .map(|(_, role)| format!("{role} {present}")),
    );
    problems.dedup();
    problems
}

/// `signals`, each in the role `role`, and SIGTERM as itself.
fn with_roles<'a>(signals: &[i32], role: &'a str) -> Vec<(i32, &'a str)> {
    let mut all: Vec<(i32, &str)> = signals.iter().map(|&signo| (signo, role)).collect();
    all.push((libc::SIGTERM, "SIGTERM"));
    all
}

/// Fails unless the program's standard output is exactly `expected`.
fn expect_stdout(run: &Run, expected: &str, why: &str) {
    run.expect_stdout(expected, why);
}

/// Stops `program` with `SIGSTOP` and waits until it is stopped.
fn stop(program: &mut Running) {
    program.signal(libc::SIGSTOP);
    let pid = program.pid();
    wait_for_state(program, pid, &['T'], "SIGSTOP did not stop it");
}

// ---- TODO 1: names and numbers -----------------------------------------------

#[test]
fn name_lists_every_signal_as_the_shells_kill_l_does() {
    let run = lab().cmd(["name"]).section(TASK_1).run();
    run.expect_success();
    let mut numbers = Vec::new();
    for line in run.stdout_lines() {
        let Some((number, name)) = line.split_once(' ') else {
            run.fail(
                format!("printed {line:?}, not `NUMBER NAME`"),
                "print `15 SIGTERM`",
            );
        };
        let Ok(number) = number.parse::<i32>() else {
            run.fail(
                format!("printed {line:?}, not `NUMBER NAME`"),
                "print `15 SIGTERM`",
            );
        };
        numbers.push(number);
        if name != name_of(number) {
            run.fail(
                format!("named signal {number} {name}, not {}", name_of(number)),
                "standard signals have nix's names (Signal::as_str); real-time ones are counted \
                 from Sig::rtmin() up to the middle (SIGRTMIN+15), from Sig::rtmax() down above it \
                 (SIGRTMAX-14): never from the kernel's 32",
            );
        }
    }
    if numbers != all_signals() {
        run.fail(
            format!(
                "listed {} signals, not the {} a program may use",
                numbers.len(),
                all_signals().len()
            ),
            "list 1 to 31, then Sig::rtmin() to Sig::rtmax(): 32 and 33 belong to the C library",
        );
    }
    // The shell agrees: `kill -l N` prints the name without `SIG` (some
    // shells write SIGIO as POLL, and dash prints 16 for SIGSTKFLT).
    let numbers: Vec<String> = all_signals().iter().map(i32::to_string).collect();
    let shell = Cmd::new("sh", Sandbox::new())
        .args(["-c", r#"for n in "$@"; do kill -l "$n"; done"#, "sh"])
        .args(&numbers)
        .run();
    shell.expect_success();
    for (signo, theirs) in all_signals().into_iter().zip(shell.stdout_lines()) {
        let ours = name_of(signo);
        let unnamed = theirs.chars().all(|c| c.is_ascii_digit());
        let same = unnamed || ours[3..] == *theirs || (signo == libc::SIGIO && theirs == "POLL");
        assert!(
            same,
            "the shell's kill -l {signo} says {theirs}, the suite {ours}"
        );
    }
}

#[test]
fn name_reads_every_spelling_that_kill_accepts() {
    let mut vary = Varied::new();
    let mut signals: Vec<i32> = (0..8).map(|_| *vary.pick(&all_signals())).collect();
    signals.push(some_realtime(&mut vary));
    let spellings: Vec<String> = signals.iter().map(|&s| spelling(&mut vary, s)).collect();
    let mut aliases = vec![
        ("IOT", libc::SIGABRT),
        ("cld", libc::SIGCHLD),
        ("SIGPOLL", libc::SIGIO),
    ];
    vary.shuffle(&mut aliases);
    let mut args = spellings.clone();
    args.push(aliases[0].0.to_string());
    signals.push(aliases[0].1);
    let run = lab().cmd(["name"]).args(&args).section(TASK_1).run();
    run.expect_success();
    let lines = run.stdout_lines();
    for (at, (&signo, text)) in signals.iter().zip(&args).enumerate() {
        let expected = format!("{signo} {}", name_of(signo));
        if lines.get(at) != Some(&expected.as_str()) {
            run.fail(
                format!(
                    "read {text:?} as {:?}, not {expected:?}",
                    lines.get(at).unwrap_or(&"nothing")
                ),
                "accept names in any case, with or without SIG, the aliases IOT, CLD and POLL, \
                 numbers, and RTMIN+n / RTMAX-n counted from Sig::rtmin() and Sig::rtmax()",
            );
        }
    }
}

#[test]
fn an_unknown_signal_is_a_usage_error() {
    let mut vary = Varied::new();
    let past_the_end = format!(
        "RTMIN+{}",
        rtmax() - rtmin() + 1 + vary.between(0, 5) as i32
    );
    let junk = [
        format!("SIG{}", vary.word(5).to_ascii_uppercase()),
        past_the_end,
        format!("RTMAX-{}", rtmax() - rtmin() + 1),
        "32".to_string(),
        (rtmax() + 1 + vary.between(0, 30) as i32).to_string(),
        "TERM2".to_string(),
        "SIG".to_string(),
    ];
    let junk = vary.pick(&junk).clone();
    for command in ["name", "raise"] {
        let run = lab().cmd([command, &junk]).section(TASK_1).run();
        if run.code() != Some(2) || !run.stderr.contains(&format!("unknown signal \"{junk}\"")) {
            run.fail(
                format!("took {junk:?} for a signal, or did not say it is unknown"),
                "parse_signal must return Err(\"unknown signal \\\"TEXT\\\"\") for what is not a \
                 signal, which clap reports as a usage error (exit status 2)",
            );
        }
    }
}

// ---- TODO 2: kill, sigqueue and raise -------------------------------------------

/// A `sleep` for a test to signal, under its own shepherd, once it is
/// asleep.
fn target() -> Running {
    let target = Cmd::new("sleep", Sandbox::new())
        .arg("3600")
        .chapter(CHAPTER)
        .start();
    let pid = target.pid();
    let deadline = Instant::now() + WAIT;
    while !SLEEPS.iter().any(|&call| asleep_in(pid, call)) {
        assert!(
            Instant::now() < deadline,
            "the test's sleep never fell asleep"
        );
        thread::sleep(Duration::from_millis(1));
    }
    target
}

/// Collects a target that should have died of `signo`.
fn expect_killed_by(target: Running, signo: i32, run: &Run, why: &str) {
    let pid = target.pid();
    let ended = target.wait_unchecked(WAIT);
    if ended.timed_out || ended.signal() != Some(signo) {
        let how = if ended.timed_out {
            "was still running".to_string()
        } else {
            format!("ended with {:?}", ended.status)
        };
        run.fail(
            format!("process {pid} {how}, not killed by {}", name_of(signo)),
            why,
        );
    }
}

#[test]
fn send_delivers_the_signal_to_every_pid_given() {
    let mut vary = Varied::new();
    let catchable = [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGKILL,
        some_realtime(&mut vary),
    ];
    let signo = *vary.pick(&catchable);
    let targets: Vec<Running> = (0..vary.between(1, 3)).map(|_| target()).collect();
    let pids: Vec<String> = targets.iter().map(|t| t.pid().to_string()).collect();
    let run = lab()
        .cmd(["send", &plain(&mut vary, signo)])
        .args(&pids)
        .section(TASK_2)
        .run();
    run.expect_success();
    for target in targets {
        expect_killed_by(
            target,
            signo,
            &run,
            "kill(pid, signal) for every pid, in order",
        );
    }
}

/// A pid no process has: pids are always below `pid_max`.
fn unused_pid(vary: &mut Varied) -> u32 {
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4_194_304);
    pid_max + vary.between(0, 1000) as u32
}

#[test]
fn send_reports_a_pid_that_no_process_has() {
    let mut vary = Varied::new();
    let pid = unused_pid(&mut vary).to_string();
    let run = lab()
        .cmd(["send", &plain(&mut vary, libc::SIGTERM), &pid])
        .section(TASK_2)
        .run();
    run.expect_one_line_error(
        "signals",
        "ESRCH",
        "kill fails with ESRCH when no process has the pid: return the error with the \
         context `kill PID SIGNAL`",
    );
    if !run.stderr.contains(&format!("kill {pid} SIGTERM")) {
        run.fail(
            "did not name the pid and the signal in its error",
            "give the error the context `kill PID SIGNAL`, e.g. `kill 4242 SIGTERM`",
        );
    }
}

#[test]
fn send_zero_checks_a_pid_and_sends_nothing() {
    let mut vary = Varied::new();
    let alive = target();
    let pid = alive.pid();
    let run = lab()
        .cmd(["send", "0", &pid.to_string()])
        .section(TASK_2)
        .run();
    run.expect_success();
    // Whatever the program sent is pending, or already acted on, by now.
    let untouched = process_state(pid) == Some('S')
        && SignalState::of(pid).is_some_and(|s| s.process_pending == 0 && s.thread_pending == 0);
    if !untouched {
        run.fail(
            "sent a signal to the process it was given",
            "signal 0 sends nothing: kill(pid, 0) only checks that the process exists and \
             may be signalled",
        );
    }
    drop(alive);
    let gone = unused_pid(&mut vary).to_string();
    let run = lab().cmd(["send", "0", &gone]).section(TASK_2).run();
    run.expect_one_line_error(
        "signals",
        "ESRCH",
        "kill(pid, 0) fails with ESRCH when no process has the pid",
    );
}

#[test]
fn send_reports_permission_denied() {
    // Root may signal anyone (CAP_KILL). The program runs without any
    // capability, and the target is a process of another user: as root,
    // one the test starts as `nobody`; as anyone else, init (pid 1).
    let (_, uid) = me();
    let mut _target = None;
    let pid = if uid == 0 {
        let nobody = Cmd::new("setpriv", Sandbox::new())
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sleep",
                "3600",
            ])
            .start();
        let pid = nobody.pid();
        wait_for_state(
            &nobody,
            pid,
            &['S'],
            "setpriv did not start sleep as nobody",
        );
        let deadline = Instant::now() + WAIT;
        while !std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.starts_with("sleep"))
        {
            assert!(Instant::now() < deadline, "setpriv never ran sleep");
            thread::sleep(Duration::from_millis(1));
        }
        _target = Some(nobody);
        pid
    } else {
        let owner = std::fs::read_to_string("/proc/1/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:").map(str::to_string))
            });
        if owner.is_some_and(|ids| ids.split_whitespace().any(|id| id == uid.to_string())) {
            eprintln!("no process of another user to signal here (pid 1 is ours): nothing checked");
            return;
        }
        1
    };
    let run = lab()
        .cmd(["send", "TERM", &pid.to_string()])
        .unprivileged()
        .section(TASK_2)
        .run();
    run.expect_one_line_error(
        "signals",
        "EPERM",
        "kill fails with EPERM for a process of another user: report it with the context \
         `kill PID SIGNAL`",
    );
}

/// Signals whose default action ends the process, and that a test may
/// raise (no core file: the grader forbids them).
fn deadly(vary: &mut Varied) -> Vec<i32> {
    vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGABRT,
        some_realtime(vary),
    ]
}

#[test]
fn raise_dies_of_the_signal_and_the_shell_sees_128_plus_its_number() {
    let mut vary = Varied::new();
    let choices = deadly(&mut vary);
    let signo = *vary.pick(&choices);
    // SIGPIPE every time: Rust ignores it before main.
    for signo in [signo, libc::SIGPIPE] {
        let text = plain(&mut vary, signo);
        let run = lab().cmd(["raise", &text]).section(TASK_2).run();
        if run.signal() != Some(signo) {
            run.fail(
                format!("did not die of {}", name_of(signo)),
                "set SIG_DFL with sigaction first (Rust ignores SIGPIPE, and an ignored signal \
                 stays ignored across exec), unblock it, then raise it",
            );
        }
        let shell = lab()
            .script_in(Sandbox::new(), r#""$0" raise "$1"; echo "status $?""#)
            .arg(&text)
            .section(TASK_2)
            .run();
        expect_stdout(
            &shell,
            &format!("status {}\n", 128 + signo),
            "a shell shows a process killed by signal N as $? = 128 + N",
        );
    }
}

#[test]
fn raise_returns_for_a_signal_ignored_by_default() {
    let mut vary = Varied::new();
    let signo = *vary.pick(&[libc::SIGCHLD, libc::SIGURG, libc::SIGWINCH]);
    let run = lab()
        .cmd(["raise", &plain(&mut vary, signo)])
        .section(TASK_2)
        .run();
    run.expect_success();
    expect_stdout(
        &run,
        &format!(
            "still alive: the default action of {} is to ignore it\n",
            name_of(signo)
        ),
        "the default action of SIGCHLD, SIGURG and SIGWINCH is to ignore them: raise returns",
    );
}

#[test]
fn raise_undoes_an_ignored_disposition_it_inherited() {
    let mut vary = Varied::new();
    let signo = *vary.pick(&[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGTERM,
    ]);
    let name = &name_of(signo)[3..];
    // The shell ignores it, and exec keeps it ignored in the program.
    let run = lab()
        .script_in(Sandbox::new(), r#"trap '' "$1"; exec "$0" raise "$1""#)
        .arg(name)
        .section(TASK_2)
        .run();
    if run.signal() != Some(signo) {
        run.fail(
            format!(
                "started with {} ignored, and did not die of it",
                name_of(signo)
            ),
            "an ignored disposition survives exec: set SIG_DFL with sigaction before raising",
        );
    }
}

#[test]
fn raise_catch_once_runs_the_handler_then_the_default_action() {
    let mut vary = Varied::new();
    let choices = deadly(&mut vary);
    let signo = *vary.pick(&choices);
    let run = lab()
        .cmd(["raise", "--catch-once", &plain(&mut vary, signo)])
        .section(TASK_2)
        .run();
    if run.stdout != CAUGHT_ONCE || run.signal() != Some(signo) {
        run.fail(
            "did not run the handler once, then die of the signal",
            "install the handler with SA_RESETHAND: the kernel puts SIG_DFL back as the handler \
             starts, so the second raise takes the default action; the handler writes its line \
             with write(2)",
        );
    }
}

// ---- TODO 3: block, wait with sigsuspend, count ---------------------------------

/// Starts `signals count SIGNAL`, waits for its ready line, checks its
/// handlers, and waits until it sleeps in sigsuspend: the signals the test
/// sends from then on find it waiting.
fn start_count(vary: &mut Varied, signo: i32) -> Running {
    let mut counter = lab()
        .cmd(["count", &plain(vary, signo)])
        .section(TASK_3)
        .why_if_timeout(
            "it never came out of its wait: sigsuspend on the mask from before plus the \
             counted signal lets SIGTERM in (with a handler that sets a flag)",
        )
        .start();
    counter.wait_for_stdout("ready", WAIT);
    let state = SignalState::of(counter.pid()).expect("its /proc/PID/status");
    let counted = (signo, "the counted signal");
    let problems = mask_problems(
        state.caught,
        &[counted, (libc::SIGTERM, "SIGTERM")],
        &[],
        "without a handler",
        "",
    );
    if !problems.is_empty() {
        counter.fail(
            format!("said it was ready with {}", problems.join(", ")),
            "before the ready line: block the counted signal and SIGTERM, and install handlers \
             for both",
        );
    }
    wait_in_sigsuspend(&mut counter);
    counter
}

/// Waits until the counter sleeps in rt_sigsuspend(2), and in nothing
/// else.
fn wait_in_sigsuspend(counter: &mut Running) {
    let why = "wait with sigsuspend, which unblocks SIGTERM and sleeps in one step: checking a \
               flag, unblocking, then pause() loses a SIGTERM that comes in between";
    match counter.wait_until_blocked(WAIT) {
        Blocked::In(call) if call == "rt_sigsuspend" => {}
        Blocked::In(call) => counter.fail(
            format!("waited for SIGTERM in {call}(2), not in sigsuspend(2)"),
            why,
        ),
        Blocked::Exited(_) => counter.fail("ended instead of waiting for SIGTERM", why),
        Blocked::Busy => counter.fail("never waited for SIGTERM: it kept running", why),
    }
}

/// Once the test has sent its signals: checks that they are pending and
/// blocked while the counter waits, then sends SIGTERM and collects it.
fn finish_count(mut counter: Running, signo: i32) -> Run {
    wait_in_sigsuspend(&mut counter);
    let state = SignalState::of(counter.pid()).expect("its /proc/PID/status");
    let pending = state.process_pending | state.thread_pending;
    let counted = (signo, "the counted signal");
    let mut problems = mask_problems(pending, &[counted], &[], "not pending", "");
    problems.extend(mask_problems(
        state.blocked,
        &[counted],
        &[(libc::SIGTERM, "SIGTERM")],
        "not blocked",
        "blocked",
    ));
    if !problems.is_empty() {
        counter.fail(
            format!("waits in sigsuspend with {}", problems.join(", ")),
            "sigsuspend on the mask you had plus the counted signal: it stays blocked (and \
             pending) while SIGTERM gets through",
        );
    }
    counter.signal(libc::SIGTERM);
    counter.wait(WAIT)
}

/// The line `count` prints for one delivery.
fn delivery(signo: i32, pid: u32, uid: u32, value: Option<i32>) -> String {
    match value {
        Some(value) => format!(
            "{} from pid {pid} (uid {uid}) by sigqueue, value {value}",
            name_of(signo)
        ),
        None => format!("{} from pid {pid} (uid {uid}) by kill", name_of(signo)),
    }
}

/// Checks what `count` printed: the ready line, `pending: NAME`,
/// `delivered: N` and the deliveries, each with a message of its own.
fn expect_counted(run: &Run, signo: i32, deliveries: &[String], why_count: &str) {
    run.expect_success();
    let lines = run.stdout_lines();
    let name = name_of(signo);
    let ready = format!("ready: {name} is blocked; send it, then SIGTERM");
    if lines.first() != Some(&ready.as_str()) {
        run.fail(
            "did not start with its ready line",
            "print only what cli.rs prints",
        );
    }
    if lines.get(1) != Some(&format!("pending: {name}").as_str()) {
        run.fail(
            "had nothing pending when SIGTERM came",
            "the counted signal must stay blocked from before the ready line until after \
             sigpending: sigsuspend on the old mask plus the counted signal, then sigpending, \
             then unblock it",
        );
    }
    let delivered: Vec<&str> = lines.iter().skip(3).copied().collect();
    if lines.get(2) != Some(&format!("delivered: {}", deliveries.len()).as_str())
        || delivered.len() != deliveries.len()
    {
        run.fail(
            format!(
                "counted {} deliveries, not {}",
                delivered.len(),
                deliveries.len()
            ),
            why_count,
        );
    }
    if let Some(at) = (0..deliveries.len()).find(|&at| delivered[at] != deliveries[at]) {
        run.fail(
            format!(
                "delivery {} of {} was not the one sent",
                at + 1,
                deliveries.len()
            ),
            "record si_pid, si_uid, si_code and si_value from the siginfo_t of an SA_SIGINFO \
             handler (Info::from_siginfo), in the order the handler runs",
        );
    }
}

#[test]
fn count_sees_one_standard_signal_however_many_were_sent() {
    let mut vary = Varied::new();
    let signo = *vary.pick(&[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGCHLD,
        libc::SIGURG,
        libc::SIGWINCH,
    ]);
    let counter = start_count(&mut vary, signo);
    let (test, uid) = me();
    let sent = vary.between(2, 40);
    // The first one carries a value: the one the receiver will see.
    let first = vary.between(0, 1_000_000) as i32 - 500_000;
    sigqueue(counter.pid(), signo, first);
    for _ in 1..sent {
        if vary.one_in(2) {
            kill(counter.pid(), signo);
        } else {
            sigqueue(counter.pid(), signo, vary.between(0, 1000) as i32);
        }
    }
    let run = finish_count(counter, signo);
    expect_counted(
        &run,
        signo,
        &[delivery(signo, test, uid, Some(first))],
        "a standard signal sent many times while blocked is pending once, and delivered once \
         when unblocked, with the siginfo of the first",
    );
}

#[test]
fn count_receives_every_real_time_signal_in_order_with_its_value() {
    let mut vary = Varied::new();
    let signo = some_realtime(&mut vary);
    let counter = start_count(&mut vary, signo);
    let (test, uid) = me();
    let mut deliveries = Vec::new();
    for _ in 0..vary.between(2, 60) {
        if vary.one_in(5) {
            kill(counter.pid(), signo);
            deliveries.push(delivery(signo, test, uid, None));
        } else {
            let value = vary.between(0, 2_000_000) as i32 - 1_000_000;
            sigqueue(counter.pid(), signo, value);
            deliveries.push(delivery(signo, test, uid, Some(value)));
        }
    }
    let run = finish_count(counter, signo);
    expect_counted(
        &run,
        signo,
        &deliveries,
        "real-time signals queue: every kill and sigqueue is delivered once when unblocked, \
         in the order sent",
    );
}

#[test]
fn queue_sends_values_that_count_receives() {
    let mut vary = Varied::new();
    let signo = some_realtime(&mut vary);
    let counter = start_count(&mut vary, signo);
    let values: Vec<String> = (0..vary.between(1, 12))
        .map(|_| (vary.between(0, 200) as i32 - 100).to_string())
        .collect();
    let sender = lab()
        .script_in(
            Sandbox::new(),
            r#"echo "sender: pid $$"; exec "$0" queue "$@""#,
        )
        .arg(plain(&mut vary, signo))
        .arg(counter.pid().to_string())
        .args(&values)
        .section(TASK_2)
        .run();
    sender.expect_success();
    let pid: u32 = sender
        .stdout
        .trim()
        .strip_prefix("sender: pid ")
        .and_then(|pid| pid.parse().ok())
        .expect("the sender's pid");
    let run = finish_count(counter, signo);
    let (_, uid) = me();
    let deliveries: Vec<String> = values
        .iter()
        .map(|v| delivery(signo, pid, uid, v.parse().ok()))
        .collect();
    expect_counted(
        &run,
        signo,
        &deliveries,
        "queue: one sigqueue(pid, signal, value) per value, in order (count passed its own tests)",
    );
}

#[test]
fn count_refuses_a_signal_that_no_handler_can_catch() {
    let mut vary = Varied::new();
    let signo = *vary.pick(&[libc::SIGKILL, libc::SIGSTOP]);
    let run = lab()
        .cmd(["count", &plain(&mut vary, signo)])
        .timeout(WAIT)
        .section(TASK_3)
        .run();
    run.expect_one_line_error(
        "signals",
        "EINVAL",
        "sigaction fails with EINVAL for SIGKILL and SIGSTOP: return that error (with the \
         context `sigaction SIGNAL`) before saying you are ready",
    );
}

// ---- TODO 4: EINTR and SA_RESTART ------------------------------------------------

/// A FIFO in a sandbox, held open by the test for reading and writing: a
/// writer that never writes unless told to.
fn held_fifo(vary: &mut Varied) -> (Sandbox, PathBuf, File) {
    let sandbox = Sandbox::new();
    let path = sandbox.path(&vary.word(6));
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).expect("a path");
    // SAFETY: mkfifo(3) with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let held = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .expect("open the FIFO");
    (sandbox, path, held)
}

/// A signal with a default action that kills: handled, it interrupts.
fn interrupting(vary: &mut Varied) -> i32 {
    let realtime = some_realtime(vary);
    *vary.pick(&[
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGHUP,
        libc::SIGALRM,
        libc::SIGINT,
        realtime,
    ])
}

/// Starts `signals interrupt ARGS… --signal S [--restart]`.
fn start_interrupt(
    sandbox: Sandbox,
    args: &[&str],
    spelled: &str,
    restart: bool,
    fifo: Option<&Path>,
) -> Running {
    let mut cmd = lab().cmd_in(sandbox, ["interrupt"]).args(args);
    if let Some(fifo) = fifo {
        cmd = cmd.arg(fifo).keeps(fifo);
    }
    cmd = cmd.args(["--signal", spelled]);
    if restart {
        cmd = cmd.arg("--restart");
    }
    let mut program = cmd.section(TASK_4).start();
    program.wait_for_stdout("ready", WAIT);
    program
}

/// The ready line `interrupt` prints.
fn interrupt_ready(signo: i32, restart: bool, call: &str) -> String {
    let flags = if restart { "SA_RESTART" } else { "no flags" };
    format!(
        "ready: a handler for {} ({flags}); now calling {call}\n",
        name_of(signo)
    )
}

/// Whether process `pid` sleeps in system call `call`.
fn asleep_in(pid: u32, call: libc::c_long) -> bool {
    let syscall = || {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<libc::c_long>().ok())
    };
    syscall() == Some(call) && process_state(pid) == Some('S') && syscall() == Some(call)
}

/// Waits until `program` sleeps in one of the calls `names`.
fn expect_asleep_in(program: &mut Running, names: &[&str]) {
    match program.wait_until_blocked(WAIT) {
        Blocked::In(call) if names.contains(&call.as_str()) => {}
        other => program.fail(
            format!("was not asleep in {} ({other:?})", names.join(" or ")),
            "make the blocking call once, right after the ready line",
        ),
    }
}

/// Waits until the handler has said it ran `times` times in all, then
/// until the program has either ended or gone back to sleep in one of
/// `calls`: `true` if it ended.
fn ended_after_handler(program: &mut Running, times: usize, calls: &[libc::c_long]) -> bool {
    wait_until(
        program,
        &format!("the handler did not say it ran {times} time(s)"),
        "the handler writes `handler ran` with write(2), every time it runs",
        |p| p.stdout().matches(HANDLER_RAN).count() >= times,
    );
    let pid = program.pid();
    let deadline = Instant::now() + WAIT;
    loop {
        if has_ended(pid) {
            return true;
        }
        if calls.iter().any(|&call| asleep_in(pid, call)) {
            return false;
        }
        if Instant::now() >= deadline {
            program.fail(
                "neither ended nor went back to its call after the handler ran",
                "make the call once: it fails with EINTR, or the kernel restarts it",
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The system calls `poll` and the sleeps may sleep in.
const POLLS: [libc::c_long; 2] = [libc::SYS_poll, libc::SYS_ppoll];
const SLEEPS: [libc::c_long; 2] = [libc::SYS_clock_nanosleep, libc::SYS_nanosleep];

/// Sends `signo` once to a program asleep in one of `calls`, made with
/// `--restart` or not, and checks that the call failed with EINTR.
fn expect_eintr(
    mut program: Running,
    signo: i32,
    calls: &[libc::c_long],
    restart: bool,
    call: &str,
) {
    program.signal(signo);
    if !ended_after_handler(&mut program, 1, calls) {
        program.fail(
            format!("went back to its {call} after the handler ran"),
            if call == "read" {
                "without SA_RESTART a read the handler interrupts fails with EINTR: make the call \
                 once and report that errno (nix::unistd::read, not a loop that retries)"
            } else {
                "signal(7): poll and the sleeps are never restarted, SA_RESTART or not: they fail \
                 with EINTR. Make the call once (std::thread::sleep retries by itself: use \
                 clock_nanosleep)"
            },
        );
    }
    let run = program.wait(WAIT);
    run.expect_success();
    expect_stdout(
        &run,
        &format!(
            "{}{HANDLER_RAN}{call}: EINTR after the handler ran 1 time(s): not restarted\n",
            interrupt_ready(signo, restart, call)
        ),
        "report the EINTR: the Outcome::Interrupted answer",
    );
}

#[test]
fn a_handler_without_sa_restart_makes_read_fail_with_eintr() {
    let mut vary = Varied::new();
    let (sandbox, fifo, _held) = held_fifo(&mut vary);
    let signo = interrupting(&mut vary);
    let spelled = plain(&mut vary, signo);
    let mut program = start_interrupt(sandbox, &["read"], &spelled, false, Some(&fifo));
    program.wait_until_blocked_in(libc::SYS_read, WAIT);
    expect_eintr(program, signo, &[libc::SYS_read], false, "read");
}

#[test]
fn sa_restart_restarts_an_interrupted_read() {
    let mut vary = Varied::new();
    let (sandbox, fifo, mut held) = held_fifo(&mut vary);
    let signo = interrupting(&mut vary);
    let spelled = plain(&mut vary, signo);
    let mut program = start_interrupt(sandbox, &["read"], &spelled, true, Some(&fifo));
    let times = vary.between(1, 3) as usize;
    program.wait_until_blocked_in(libc::SYS_read, WAIT);
    for time in 1..=times {
        program.signal(signo);
        if ended_after_handler(&mut program, time, &[libc::SYS_read]) {
            program.fail(
                format!("ended after the handler ran {time} time(s), instead of reading on"),
                "with SA_RESTART in the handler's flags, the kernel restarts the read after the \
                 handler returns: no EINTR",
            );
        }
    }
    let length = vary.between(1, 60) as usize;
    let data = vary.word(length);
    held.write_all(data.as_bytes())
        .expect("write into the FIFO");
    let run = program.wait(WAIT);
    run.expect_success();
    expect_stdout(
        &run,
        &format!(
            "{}{}read: {} byte(s), after the handler ran {times} time(s)\n",
            interrupt_ready(signo, true, "read"),
            HANDLER_RAN.repeat(times),
            data.len()
        ),
        "with SA_RESTART in the handler's flags, the read goes on after the handler and \
         returns the data that comes later",
    );
}

#[test]
fn poll_is_never_restarted_even_with_sa_restart() {
    let mut vary = Varied::new();
    let (sandbox, fifo, _held) = held_fifo(&mut vary);
    let signo = interrupting(&mut vary);
    let spelled = plain(&mut vary, signo);
    let mut program = start_interrupt(sandbox, &["poll"], &spelled, true, Some(&fifo));
    expect_asleep_in(&mut program, &["poll", "ppoll"]);
    expect_eintr(program, signo, &POLLS, true, "poll");
}

#[test]
fn a_sleep_is_never_restarted_even_with_sa_restart() {
    let mut vary = Varied::new();
    let signo = interrupting(&mut vary);
    let spelled = plain(&mut vary, signo);
    let mut program = start_interrupt(Sandbox::new(), &["sleep"], &spelled, true, None);
    expect_asleep_in(&mut program, &["clock_nanosleep", "nanosleep"]);
    expect_eintr(program, signo, &SLEEPS, true, "sleep");
}

// ---- TODO 5: signals as events ---------------------------------------------------

/// A few signals for `events` to watch, without SIGTERM, which ends it.
fn watched(vary: &mut Varied) -> Vec<i32> {
    let mut pool = vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGWINCH,
        some_realtime(vary),
    ];
    vary.shuffle(&mut pool);
    pool.truncate(vary.between(2, 4) as usize);
    pool
}

/// Starts `signals events --via VIA SIGNAL…` and waits for its ready line.
fn start_events(vary: &mut Varied, via: &str, signals: &[i32]) -> Running {
    let spelled: Vec<String> = signals.iter().map(|&s| plain(vary, s)).collect();
    let mut program = lab()
        .cmd(["events", "--via", via])
        .args(&spelled)
        .section(TASK_5)
        .start();
    program.wait_for_stdout("ready", WAIT);
    program
}

/// The `event: …` lines so far.
fn events_seen(program: &Running) -> Vec<String> {
    program
        .stdout()
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .map(str::to_string)
        .collect()
}

/// Sends each signal of `sequence`, one at a time, waiting for its event.
fn one_at_a_time(program: &mut Running, sequence: &[i32], why: &str) {
    for (at, &signo) in sequence.iter().enumerate() {
        program.signal(signo);
        wait_until(
            program,
            &format!(
                "printed no event for {} (signal {} of {})",
                name_of(signo),
                at + 1,
                sequence.len()
            ),
            why,
            |p| events_seen(p).len() > at,
        );
        let seen = events_seen(program);
        if seen[at] != name_of(signo) {
            program.fail(
                format!("read {} when {} was sent", seen[at], name_of(signo)),
                why,
            );
        }
    }
}

/// Sends SIGTERM and checks the end of `events`.
fn stop_events(mut program: Running, expected: usize) -> Run {
    program.signal(libc::SIGTERM);
    let run = program.wait(WAIT);
    run.expect_success();
    let seen: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("event: "))
        .collect();
    if seen.len() != expected + 1 || seen.last() != Some(&"event: SIGTERM: stopping") {
        run.fail(
            "did not end with `event: SIGTERM: stopping` after the events it was sent",
            "SIGTERM is an event like the others: read it, then stop",
        );
    }
    run
}

#[test]
fn events_from_a_signalfd_come_one_read_at_a_time() {
    let mut vary = Varied::new();
    let signals = watched(&mut vary);
    let mut program = start_events(&mut vary, "signalfd", &signals);
    let pid = program.pid();
    let state = SignalState::of(pid).expect("its /proc/PID/status");
    let all = with_roles(&signals, "a watched signal");
    let mut problems = mask_problems(state.blocked, &all, &[], "not blocked", "");
    problems.extend(mask_problems(
        state.caught,
        &[],
        &all,
        "",
        "caught by a handler",
    ));
    if !problems.is_empty() {
        program.fail(
            format!("is ready with {}", problems.join(", ")),
            "a signalfd reads signals that are pending: block them (and install no handler), \
             or they are delivered instead of waiting to be read",
        );
    }
    let signalfds: Vec<_> = descriptors_of(pid)
        .into_iter()
        .filter(|d| d.target == "anon_inode:[signalfd]")
        .collect();
    if signalfds.len() != 1 || !signalfds[0].is_cloexec() {
        let held = match signalfds.len() {
            0 => "no signalfd".to_string(),
            1 => "a signalfd without FD_CLOEXEC".to_string(),
            n => format!("{n} signalfds"),
        };
        program.fail(
            format!("holds {held}, not one close-on-exec signalfd"),
            "SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC): a program a child execs must \
             not inherit it",
        );
    }
    let sequence: Vec<i32> = (0..vary.between(4, 10))
        .map(|_| *vary.pick(&signals))
        .collect();
    one_at_a_time(
        &mut program,
        &sequence,
        "each read of the signalfd returns one pending signal: print it, then read again",
    );
    stop_events(program, sequence.len());
}

#[test]
fn events_from_a_self_pipe_come_one_byte_at_a_time() {
    let mut vary = Varied::new();
    let signals = watched(&mut vary);
    let mut program = start_events(&mut vary, "self-pipe", &signals);
    let pid = program.pid();
    let state = SignalState::of(pid).expect("its /proc/PID/status");
    let all = with_roles(&signals, "a watched signal");
    let mut problems = mask_problems(state.caught, &all, &[], "without a handler", "");
    problems.extend(mask_problems(state.blocked, &[], &all, "", "blocked"));
    if !problems.is_empty() {
        program.fail(
            format!("is ready with {}", problems.join(", ")),
            "a self-pipe needs a handler for every signal (and nothing blocked)",
        );
    }
    let pipes: Vec<_> = descriptors_of(pid)
        .into_iter()
        .filter(|d| d.fd > 2 && d.target.starts_with("pipe:"))
        .collect();
    let write_end = pipes
        .iter()
        .find(|d| d.flags & libc::O_ACCMODE == libc::O_WRONLY);
    let read_end = pipes
        .iter()
        .find(|d| d.flags & libc::O_ACCMODE == libc::O_RDONLY);
    let (Some(write_end), Some(read_end)) = (write_end, read_end) else {
        program.fail(
            format!(
                "holds {} pipe descriptor(s) beyond 0-2, not a pipe's two ends",
                pipes.len()
            ),
            "pipe2 makes the self-pipe",
        );
    };
    let mut problems = Vec::new();
    if !write_end.is_nonblocking() {
        problems.push("its write end blocks");
    }
    if !write_end.is_cloexec() || !read_end.is_cloexec() {
        problems.push("an end lacks FD_CLOEXEC");
    }
    if !problems.is_empty() {
        program.fail(
            format!("has a self-pipe, but {}", problems.join(" and ")),
            "pipe2(O_CLOEXEC), then O_NONBLOCK on the write end: a handler must never block \
             on a full pipe, and no program a child execs may inherit either end",
        );
    }
    let sequence: Vec<i32> = (0..vary.between(4, 10))
        .map(|_| *vary.pick(&signals))
        .collect();
    one_at_a_time(
        &mut program,
        &sequence,
        "the handler writes the signal's number, one byte; the loop reads one byte per event",
    );
    stop_events(program, sequence.len());
}

/// The collapse test, for `via`.
fn events_collapse(via: &str) {
    let mut vary = Varied::new();
    let standard = *vary.pick(&[
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGWINCH,
    ]);
    let realtime = some_realtime(&mut vary);
    let mut program = start_events(&mut vary, via, &[standard, realtime]);
    stop(&mut program);
    let (copies, queued) = (vary.between(2, 6), vary.between(2, 8) as usize);
    let mut sends: Vec<i32> = std::iter::repeat_n(standard, copies as usize)
        .chain(std::iter::repeat_n(realtime, queued))
        .collect();
    vary.shuffle(&mut sends);
    for signo in sends {
        kill(program.pid(), signo);
    }
    program.signal(libc::SIGCONT);
    let why = "while it was stopped, the standard signal was pending once however many were \
               sent, and each real-time one was queued: one event for the first, one per send \
               for the second";
    wait_until(
        &mut program,
        &format!("printed fewer than {} events after SIGCONT", 1 + queued),
        why,
        |p| events_seen(p).len() > queued,
    );
    let run = stop_events(program, 1 + queued);
    let seen: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    let count = |signo: i32| seen.iter().filter(|&&e| e == name_of(signo)).count();
    if count(standard) != 1 || count(realtime) != queued {
        run.fail(
            format!(
                "read {} {} and {} {}, not 1 and {queued}",
                count(standard),
                name_of(standard),
                count(realtime),
                name_of(realtime)
            ),
            why,
        );
    }
}

#[test]
fn events_from_a_signalfd_collapse_while_the_program_is_stopped() {
    events_collapse("signalfd");
}

#[test]
fn events_from_a_self_pipe_collapse_while_the_program_is_stopped() {
    events_collapse("self-pipe");
}

// ---- TODO 6: a supervisor -------------------------------------------------------

/// One line of the supervisor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Started { slot: usize, pid: u32 },
    Died { slot: usize, pid: u32, how: String },
    Stopped { slot: usize, pid: u32, how: String },
    Supervising(usize),
    Reloaded { workers: usize, was: usize },
    ReloadFailed(usize),
    Stopping(usize),
    AllStopped,
}

/// Parses the report lines; `None` for a line the supervisor never prints.
fn parse_line(line: &str) -> Option<Line> {
    let number = |text: &str| text.parse::<usize>().ok();
    if let Some(rest) = line.strip_prefix("worker ") {
        let (slot, rest) = rest.split_once(": pid ")?;
        let slot = number(slot)?;
        let (pid, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let pid = pid.parse().ok()?;
        return match rest {
            "" => Some(Line::Started { slot, pid }),
            _ => {
                if let Some(how) = rest.strip_suffix("; restarting") {
                    Some(Line::Died {
                        slot,
                        pid,
                        how: how.to_string(),
                    })
                } else {
                    let how = rest.strip_prefix("stopped (")?.strip_suffix(')')?;
                    Some(Line::Stopped {
                        slot,
                        pid,
                        how: how.to_string(),
                    })
                }
            }
        };
    }
    if let Some(rest) = line.strip_prefix("supervising ") {
        return number(rest.strip_suffix(" worker(s)")?).map(Line::Supervising);
    }
    if let Some(rest) = line.strip_prefix("reload: ") {
        let (workers, was) = rest.split_once(" worker(s), was ")?;
        return Some(Line::Reloaded {
            workers: number(workers)?,
            was: number(was)?,
        });
    }
    if let Some(rest) = line.strip_prefix("reload failed: keeping ") {
        return number(rest.strip_suffix(" worker(s)")?).map(Line::ReloadFailed);
    }
    if let Some(rest) = line.strip_prefix("stopping ") {
        return number(rest.strip_suffix(" worker(s)")?).map(Line::Stopping);
    }
    (line == "stopped").then_some(Line::AllStopped)
}

/// A supervisor the test is running, and what it said so far.
struct Supervisor {
    program: Running,
    config: PathBuf,
    command: String,
}

impl Supervisor {
    /// Starts `signals supervise CONFIG --via VIA -- sleep N` with
    /// `workers = WORKERS`, and waits for its ready line.
    fn start(vary: &mut Varied, via: &str, workers: usize) -> Supervisor {
        let name = format!("{}.conf", vary.word(5));
        let seconds = 3600 + vary.between(0, 999);
        Supervisor::start_with(&name, seconds, via, workers)
    }

    /// [`Supervisor::start`] with the file name and the sleep fixed.
    fn start_with(name: &str, seconds: u64, via: &str, workers: usize) -> Supervisor {
        let sandbox = Sandbox::new();
        let config = sandbox.path(name);
        write_config(&config, &format!("workers = {workers}\n"));
        let seconds = seconds.to_string();
        let mut program = lab()
            .cmd_in(sandbox, ["supervise"])
            .arg(&config)
            .args(["--via", via, "--", "sleep", &seconds])
            .section(TASK_6)
            .why_if_timeout(
                "it did not stop after SIGTERM: every worker gets SIGTERM, then each is reaped; \
                 a worker that exec'd with SIGTERM blocked (the supervisor's mask) never dies of it",
            )
            .start();
        program.wait_for_stdout(&format!("supervising {workers} worker(s)"), WAIT);
        let supervisor = Supervisor {
            program,
            config,
            command: format!("sleep {seconds}"),
        };
        supervisor.expect_workers("after it said it was supervising them");
        supervisor
    }

    fn pid(&self) -> u32 {
        self.program.pid()
    }

    /// The report so far; fails the test on a line it never prints.
    fn lines(&self) -> Vec<Line> {
        let stdout = self.program.stdout();
        let complete = stdout.rfind('\n').map_or("", |end| &stdout[..end]);
        complete
            .lines()
            .map(|line| {
                parse_line(line).unwrap_or_else(|| {
                    self.program.fail(
                        format!("printed {line:?}, which is none of the report's lines"),
                        "print with the functions of report.rs only",
                    )
                })
            })
            .collect()
    }

    /// The workers the report says are running: slot → pid.
    fn workers(&self) -> BTreeMap<usize, u32> {
        let mut running = BTreeMap::new();
        for line in self.lines() {
            match line {
                Line::Started { slot, pid } => {
                    running.insert(slot, pid);
                }
                Line::Died { slot, pid, .. } | Line::Stopped { slot, pid, .. }
                    if running.get(&slot) == Some(&pid) =>
                {
                    running.remove(&slot);
                }
                _ => {}
            }
        }
        running
    }

    /// Fails unless the supervisor's children are exactly the workers it
    /// reported, each alive (asleep), none a zombie.
    fn expect_workers(&self, when: &str) {
        let reported: Vec<u32> = self.workers().values().copied().collect();
        let mut reported_sorted = reported.clone();
        reported_sorted.sort_unstable();
        let children = children_of(self.pid());
        let zombies: Vec<u32> = children
            .iter()
            .filter(|c| c.1 == 'Z')
            .map(|c| c.0)
            .collect();
        let pids: Vec<u32> = children.iter().map(|c| c.0).collect();
        if !zombies.is_empty() {
            self.program.fail(
                format!("{when}, children {zombies:?} were zombies"),
                "reap with waitpid(-1, WNOHANG) in a loop until it reports nothing: one SIGCHLD \
                 can stand for many children that ended",
            );
        }
        if pids != reported_sorted {
            self.program.fail(
                format!("{when}, its children were {pids:?}, but it reported workers {reported:?}"),
                "start one worker per slot, report it with report::started, and restart exactly \
                 the ones that died",
            );
        }
    }

    /// Waits until the report satisfies `ready`.
    fn wait_for(&mut self, what: &str, why: &str, ready: impl Fn(&[Line]) -> bool) {
        let lines_of = |program: &Running| -> Vec<Line> {
            let stdout = program.stdout();
            let complete = stdout.rfind('\n').map_or("", |end| &stdout[..end]);
            complete.lines().filter_map(parse_line).collect()
        };
        wait_until(&mut self.program, what, why, |p| ready(&lines_of(p)));
    }

    /// Waits until the report shows `victim` (a pid) died and its slot
    /// has a new worker.
    fn wait_for_restart(&mut self, victim: u32, why: &str) {
        self.wait_for(
            &format!("never restarted worker pid {victim}"),
            why,
            |lines| {
                let Some(at) = lines
                    .iter()
                    .position(|l| matches!(l, Line::Died { pid, .. } if *pid == victim))
                else {
                    return false;
                };
                let Line::Died { slot, .. } = lines[at] else {
                    return false;
                };
                lines[at..]
                    .iter()
                    .any(|l| matches!(l, Line::Started { slot: s, .. } if *s == slot))
            },
        );
    }

    /// How the report says `victim` died.
    fn how_died(&self, victim: u32) -> Option<String> {
        self.lines().into_iter().find_map(|line| match line {
            Line::Died { pid, how, .. } if pid == victim => Some(how),
            _ => None,
        })
    }

    /// Writes a new configuration.
    fn configure(&self, text: &str) {
        write_config(&self.config, text);
    }

    /// Sends SIGTERM, collects the supervisor, and checks its last words.
    fn stop(mut self) -> Run {
        let workers = self.workers();
        self.program.signal(libc::SIGTERM);
        let run = self.program.wait(WAIT);
        run.expect_success();
        let lines: Vec<Line> = run.stdout.lines().filter_map(parse_line).collect();
        let at = lines
            .iter()
            .rposition(|l| matches!(l, Line::Stopping(_)))
            .unwrap_or_else(|| run.fail("never said `stopping N worker(s)`", "report::stopping"));
        let mut expected: Vec<Line> = vec![Line::Stopping(workers.len())];
        expected.extend(workers.iter().map(|(&slot, &pid)| Line::Stopped {
            slot,
            pid,
            how: "killed by signal SIGTERM".into(),
        }));
        expected.push(Line::AllStopped);
        if lines[at..] != expected[..] {
            run.fail(
                format!("ended with {:?}, not {expected:?}", &lines[at..]),
                "on SIGTERM: report::stopping, SIGTERM to every worker, waitpid for each in slot \
                 order with report::stopped, then report::all_stopped",
            );
        }
        run
    }
}

/// Writes a configuration file whole: a new file renamed over the old
/// one, so that a reload never reads half of it.
fn write_config(path: &Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).expect("write the configuration");
    std::fs::rename(&fresh, path).expect("rename the configuration");
}

/// Waits until `pid` runs `command` and sleeps in it (its exec is done,
/// and so is the loading of its libraries).
fn wait_for_exec(supervisor: &Supervisor, pid: u32) {
    let deadline = Instant::now() + WAIT;
    let want = supervisor.command.replace(' ', "\0") + "\0";
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .ok()
            .as_deref()
            == Some(want.as_str())
            && (asleep_in(pid, libc::SYS_clock_nanosleep) || asleep_in(pid, libc::SYS_nanosleep))
    };
    while !running() {
        if Instant::now() >= deadline {
            supervisor.program.fail(
                format!("worker {pid} never ran `{}`", supervisor.command),
                "the child calls execvp(command[0], command) after fork",
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn supervisor_starts_its_workers_and_stops_them_on_sigterm() {
    // Fixed inputs, for the transcript: the properties are checked all the
    // same (the children are the workers it names, SIGTERM stops each).
    let supervisor = Supervisor::start_with("workers.conf", 3600, "signalfd", 3);
    let run = supervisor.stop();
    grader::assert_masked_transcript!(run, "no identifier", "");
}

#[test]
fn workers_start_with_a_clean_signal_state() {
    let mut vary = Varied::new();
    for via in ["signalfd", "self-pipe"] {
        // Two workers: a failure lists them, and reads the same every run.
        let supervisor = Supervisor::start(&mut vary, via, 2);
        for &pid in supervisor.workers().values() {
            wait_for_exec(&supervisor, pid);
        }
        for (slot, pid) in supervisor.workers() {
            let state = SignalState::of(pid).expect("a worker's /proc/PID/status");
            // Signals 32 and 33 are the C library's: no program can set
            // them through it, and the test process hands them down.
            let usable = all_signals();
            let blocked = names_in(state.blocked, &usable);
            let ignored = names_in(state.ignored, &usable);
            if blocked != "none" || ignored != "none" {
                supervisor.program.fail(
                    format!("worker {slot} ({via}) runs with {blocked} blocked, {ignored} ignored"),
                    "a signal mask and ignored signals survive fork and exec: in the child, \
                     before execvp, set the mask back to events.mask_before and SIGPIPE (ignored \
                     by Rust) back to SIG_DFL",
                );
            }
            let inherited: Vec<_> = descriptors_of(pid)
                .into_iter()
                .filter(|d| d.fd > 2)
                .collect();
            if !inherited.is_empty() {
                let what: Vec<&str> = inherited.iter().map(|d| d.target.as_str()).collect();
                supervisor.program.fail(
                    format!("worker {slot} ({via}) inherited {}", what.join(", ")),
                    "make the signalfd and the self-pipe close-on-exec (SFD_CLOEXEC, O_CLOEXEC)",
                );
            }
        }
        supervisor.stop();
    }
}

#[test]
fn supervisor_restarts_a_worker_that_dies() {
    let mut vary = Varied::new();
    let workers = vary.between(1, 4) as usize;
    let mut supervisor = Supervisor::start(&mut vary, "self-pipe", workers);
    for _ in 0..vary.between(1, 3) {
        let workers: Vec<(usize, u32)> = supervisor.workers().into_iter().collect();
        let (slot, victim) = *vary.pick(&workers);
        let signo = *vary.pick(&[
            libc::SIGKILL,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGALRM,
            libc::SIGPIPE,
        ]);
        // Until it execs, a worker may still ignore SIGPIPE (as every Rust
        // program does), and a SIGPIPE sent then is discarded: wait for the
        // exec, so that the signal meets the state the worker runs with.
        wait_for_exec(&supervisor, victim);
        kill(victim, signo);
        supervisor.wait_for_restart(
            victim,
            "on SIGCHLD, waitpid(-1, WNOHANG) in a loop; a worker that died is reported with \
             report::died and started again in its slot",
        );
        let how = supervisor.how_died(victim);
        let expected = format!("killed by signal {}", name_of(signo));
        if how.as_deref() != Some(expected.as_str()) {
            supervisor.program.fail(
                format!("said worker {slot} (pid {victim}) {how:?}, not {expected:?}"),
                "describe the status waitpid returned for that pid",
            );
        }
        supervisor.expect_workers("after a restart");
    }
    supervisor.stop();
}

#[test]
fn supervisor_reaps_every_worker_that_died_while_it_was_stopped() {
    let mut vary = Varied::new();
    // Four workers, the first three die (a storm test varies the counts):
    // a failure then lists the same processes in every run.
    let mut supervisor = Supervisor::start(&mut vary, "signalfd", 4);
    let victims: Vec<u32> = supervisor.workers().into_values().take(3).collect();
    stop(&mut supervisor.program);
    for &victim in &victims {
        kill(victim, *vary.pick(&[libc::SIGKILL, libc::SIGTERM]));
    }
    for &victim in &victims {
        wait_for_state(
            &supervisor.program,
            victim,
            &['Z'],
            "a killed worker did not end",
        );
    }
    // Every SIGCHLD is pending now: they are one.
    supervisor.program.signal(libc::SIGCONT);
    for &victim in &victims {
        supervisor.wait_for_restart(
            victim,
            &format!(
                "{} workers ended while the supervisor was stopped, and it got one SIGCHLD for \
                 them all: waitpid(-1, WNOHANG) in a loop until it reports nothing",
                victims.len()
            ),
        );
    }
    supervisor.expect_workers("after the restarts");
    supervisor.stop();
}

#[test]
fn a_stopped_worker_is_neither_dead_nor_restarted() {
    let mut vary = Varied::new();
    for via in ["signalfd", "self-pipe"] {
        let mut supervisor = Supervisor::start(&mut vary, via, 2);
        let workers: Vec<u32> = supervisor.workers().into_values().collect();
        let (paused, other) = (workers[0], workers[1]);
        for &pid in &workers {
            wait_for_exec(&supervisor, pid);
        }
        stop(&mut supervisor.program);
        kill(paused, libc::SIGSTOP);
        wait_for_state(
            &supervisor.program,
            paused,
            &['T'],
            "SIGSTOP did not stop the worker",
        );
        kill(paused, libc::SIGCONT);
        wait_for_state(
            &supervisor.program,
            paused,
            &['S'],
            "SIGCONT did not wake the worker",
        );
        let state = SignalState::of(supervisor.pid());
        if state.is_none_or(|s| s.is_pending(libc::SIGCHLD)) {
            supervisor.program.fail(
                format!("({via}) got SIGCHLD when a worker stopped and continued"),
                "set SA_NOCLDSTOP on SIGCHLD (on its handler for a self-pipe, on its default \
                 action for a signalfd): only a child that ends matters to a supervisor",
            );
        }
        supervisor.program.signal(libc::SIGCONT);
        // Another worker dies; once it is restarted, the first must still be there.
        kill(other, libc::SIGKILL);
        supervisor.wait_for_restart(other, "restart a worker that died");
        if supervisor.workers().values().all(|&pid| pid != paused) {
            supervisor.program.fail(
                format!("({via}) replaced worker pid {paused}, which had only been stopped"),
                "a stopped child is not an ended one: reap with waitpid, and restart only the \
                 children it reports (without WUNTRACED it reports none that stopped)",
            );
        }
        supervisor.expect_workers("after a worker was stopped and continued");
        supervisor.stop();
    }
}

#[test]
fn supervisor_reloads_its_configuration_on_sighup() {
    let mut vary = Varied::new();
    // From 2 to 4 workers, then to 1 (the storm tests vary the counts).
    let (first, more, fewer) = (2, 4, 1);
    let mut supervisor = Supervisor::start(&mut vary, "signalfd", first);
    supervisor.configure(&format!("# {}\nworkers={more}\n", vary.word(8)));
    supervisor.program.signal(libc::SIGHUP);
    let grown = Line::Reloaded {
        workers: more,
        was: first,
    };
    supervisor.wait_for(
        &format!("did not reload to {more} workers"),
        "on SIGHUP: read_config again, report::reloaded, start the new slots",
        |lines| {
            lines.contains(&grown)
                && lines
                    .iter()
                    .filter(|l| matches!(l, Line::Started { .. }))
                    .count()
                    == more
        },
    );
    supervisor.expect_workers("after growing");
    let retired: BTreeMap<usize, u32> = supervisor.workers().split_off(&(fewer + 1));
    supervisor.configure(&format!("workers = {fewer}   # fewer\n"));
    supervisor.program.signal(libc::SIGHUP);
    let why = "on a reload that wants fewer: SIGTERM to the workers above the new count; when \
               each is reaped, report::stopped, never report::died, and no restart";
    let what = format!(
        "did not stop the {} workers above slot {fewer}",
        retired.len()
    );
    supervisor.wait_for(&what, why, |lines| {
        retired.iter().all(|(&slot, &pid)| {
            lines.contains(&Line::Stopped {
                slot,
                pid,
                how: "killed by signal SIGTERM".into(),
            })
        })
    });
    let lines = supervisor.lines();
    if lines.iter().any(|l| matches!(l, Line::Died { .. })) || supervisor.workers().len() != fewer {
        supervisor
            .program
            .fail("restarted a worker it had stopped", why);
    }
    supervisor.expect_workers("after shrinking");
    supervisor.stop();
}

/// A configuration that is wrong in one of several ways, and a word its
/// error must contain.
fn bad_config(vary: &mut Varied) -> (String, &'static str) {
    let kinds = [
        ("workers = 0\n".to_string(), "from 1 to 32"),
        (
            format!("workers = {}\n", vary.between(33, 999)),
            "from 1 to 32",
        ),
        (format!("workers = {}\n", vary.word(3)), "from 1 to 32"),
        (format!("{} = 2\n", vary.word(6)), "unknown setting"),
        ("# nothing\n\n".to_string(), "no \"workers = N\" line"),
        (
            format!("workers {}\n", vary.between(1, 9)),
            "expected \"workers = N\"",
        ),
    ];
    vary.pick(&kinds).clone()
}

#[test]
fn supervisor_keeps_its_workers_when_a_reload_fails() {
    let mut vary = Varied::new();
    let workers = vary.between(1, 4) as usize;
    let mut supervisor = Supervisor::start(&mut vary, "self-pipe", workers);
    let before = supervisor.workers();
    let (text, complaint) = bad_config(&mut vary);
    supervisor.configure(&text);
    supervisor.program.signal(libc::SIGHUP);
    supervisor.wait_for(
        "did not say that the reload failed",
        "read_config returns an error: report::reload_failed, and keep every worker",
        |lines| lines.contains(&Line::ReloadFailed(workers)),
    );
    // Its stderr comes through a pipe of its own: wait for that line too.
    wait_until(
        &mut supervisor.program,
        "did not say why the reload failed on stderr",
        "report::reload_failed prints the error on stderr",
        |p| p.stderr().ends_with('\n'),
    );
    let stderr = supervisor.program.stderr();
    let says = stderr.lines().count() == 1
        && stderr.starts_with("signals: reload failed: ")
        && stderr.contains(complaint);
    if !says || supervisor.workers() != before {
        supervisor.program.fail(
            format!(
                "after a bad configuration ({text:?}) said {stderr:?} and kept {:?}",
                supervisor.workers()
            ),
            format!(
                "read_config's error must say what is wrong ({complaint}), and the workers stay"
            ),
        );
    }
    supervisor.expect_workers("after a failed reload");
    supervisor.stop();
}

#[test]
fn supervisor_refuses_a_bad_configuration() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let (text, complaint) = bad_config(&mut vary);
    let config = sandbox.write_file(&format!("{}.conf", vary.word(5)), &text);
    let run = lab()
        .cmd_in(sandbox, ["supervise"])
        .arg(&config)
        .args(["--", "sleep", "3600"])
        .section(TASK_6)
        .run();
    run.expect_one_line_error(
        "signals",
        complaint,
        "read_config's error names the file, the line and what is wrong; nothing is started",
    );
    let sandbox = Sandbox::new();
    let missing = sandbox.path(&format!("{}.conf", vary.word(5)));
    let run = lab()
        .cmd_in(sandbox, ["supervise"])
        .arg(&missing)
        .args(["--", "sleep", "3600"])
        .section(TASK_6)
        .run();
    run.expect_one_line_error(
        "signals",
        "No such file",
        "a configuration that cannot be read: the error, with the context `read PATH`",
    );
}

#[test]
fn supervisor_reports_a_command_that_cannot_run() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let config = sandbox.write_file(
        "workers.conf",
        format!("workers = {}\n", vary.between(1, 3)),
    );
    let command = format!("no-such-command-{}", vary.word(6));
    let run = lab()
        .cmd_in(sandbox, ["supervise"])
        .arg(&config)
        .args(["--", &command])
        .timeout(WAIT)
        .why_if_timeout(
            "a worker whose command cannot run exits with status 127 at once: the supervisor \
             must give up (stop the others, exit 1), not restart it for ever",
        )
        .section(TASK_6)
        .run();
    run.expect_one_line_error(
        "signals",
        "could not run",
        "a worker that exits with status 127 could not run its command: stop the others and \
         return an error, `worker K could not run COMMAND`",
    );
}

/// A burst of worker deaths, SIGHUPs and spurious SIGCHLDs, several
/// rounds, then a resize and a stop: for `via`.
fn storm(via: &str) {
    let mut vary = Varied::new();
    let workers = vary.between(3, 5) as usize;
    let mut supervisor = Supervisor::start(&mut vary, via, workers);
    let fatal = [
        libc::SIGKILL,
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
    ];
    for round in 0..vary.between(3, 5) {
        let together = round % 2 == 0;
        let mut victims: Vec<(usize, u32)> = supervisor.workers().into_iter().collect();
        vary.shuffle(&mut victims);
        victims.truncate(vary.between(if together { 2 } else { 1 }, workers as u64) as usize);
        if together {
            stop(&mut supervisor.program);
        }
        let mut used = BTreeMap::new();
        for &(_, pid) in &victims {
            for _ in 0..vary.between(0, 2) {
                let noise = *vary.pick(&[libc::SIGHUP, libc::SIGCHLD]);
                kill(supervisor.pid(), noise);
            }
            let signo = *vary.pick(&fatal);
            kill(pid, signo);
            used.insert(pid, signo);
        }
        if together {
            for &(_, pid) in &victims {
                wait_for_state(
                    &supervisor.program,
                    pid,
                    &['Z'],
                    "a killed worker did not end",
                );
            }
            supervisor.program.signal(libc::SIGCONT);
        }
        for &(_, pid) in &victims {
            supervisor.wait_for_restart(
                pid,
                "every worker that died must be restarted, however the SIGCHLDs, SIGHUPs and \
                 spurious SIGCHLDs (with nothing to reap) arrived: on every SIGCHLD, \
                 waitpid(-1, WNOHANG) in a loop until it reports nothing",
            );
            let expected = format!("killed by signal {}", name_of(used[&pid]));
            if supervisor.how_died(pid).as_deref() != Some(expected.as_str()) {
                supervisor.program.fail(
                    format!(
                        "said pid {pid} {:?}, not {expected:?}",
                        supervisor.how_died(pid)
                    ),
                    "describe the status waitpid returned for that pid",
                );
            }
        }
        supervisor.expect_workers(&format!("after round {} of the storm", round + 1));
    }
    let resized = loop {
        let n = vary.between(1, 6) as usize;
        if n != workers {
            break n;
        }
    };
    supervisor.configure(&format!("workers = {resized}\n"));
    for _ in 0..vary.between(1, 4) {
        supervisor.program.signal(libc::SIGHUP);
    }
    let changed = Line::Reloaded {
        workers: resized,
        was: workers,
    };
    let settled = move |lines: &[Line]| {
        let Some(at) = lines.iter().position(|l| *l == changed) else {
            return false;
        };
        let after = &lines[at..];
        let starts = after
            .iter()
            .filter(|l| matches!(l, Line::Started { .. }))
            .count();
        let stops = after
            .iter()
            .filter(|l| matches!(l, Line::Stopped { .. }))
            .count();
        starts == resized.saturating_sub(workers) && stops == workers.saturating_sub(resized)
    };
    supervisor.wait_for(
        &format!("did not go from {workers} to {resized} workers after SIGHUP"),
        "the last SIGHUP came after the new configuration was written: reload, start or stop \
         the difference",
        settled,
    );
    supervisor.expect_workers("after the resize");
    supervisor.stop();
}

#[test]
fn supervisor_with_a_signalfd_survives_a_storm_of_signals() {
    storm("signalfd");
}

#[test]
fn supervisor_with_a_self_pipe_survives_a_storm_of_signals() {
    storm("self-pipe");
}
