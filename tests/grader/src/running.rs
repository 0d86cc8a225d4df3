//! A program running in the background: started with [`Cmd::start`],
//! watched and signalled while it runs, then collected with the same checks
//! as a program run to completion (or killed, and its leftovers reported).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::causes;
use crate::failure::Failure;
use crate::leaks::{self, Leak, LeakKind};
use crate::private;
use crate::procfs;
use crate::run::{self, Cmd, Run};
use crate::sandbox::Sandbox;
use crate::shepherd::{Lost, Shepherd};
use crate::socket_files;

/// How long to wait for the output pipes to close once the run's processes
/// are gone. Only a daemon the test keeps running can hold them open.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// How long a failure waits for the output of a program that has just
/// exited to arrive, so that the message shows all of it.
const OUTPUT_SETTLE: Duration = Duration::from_millis(200);

/// A waiting test looks at the program again after this long at first, then
/// at doubling intervals of at most [`LONGEST_NAP`].
const FIRST_NAP: Duration = Duration::from_micros(500);
const LONGEST_NAP: Duration = Duration::from_millis(10);

/// What [`Running::wait_until_blocked`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// The program is asleep in this system call (`read`, `openat`, `wait4` …),
    /// waiting for something another process must do.
    In(String),
    /// The program exited before it blocked.
    Exited(ExitStatus),
    /// The program kept running without blocking until the deadline (a busy
    /// loop, or a machine so loaded it never got that far).
    Busy,
}

/// A program started with [`Cmd::start`].
///
/// The test waits for it in two ways. [`Running::wait_until_blocked`]
/// reports what it saw (asleep in some call, exited, busy) and leaves the
/// verdict to the test. The waits that expect something,
/// [`Running::wait_for_stdout`], [`Running::wait_until_blocked_in`] and
/// [`Running::wait_until_alone`], fail the test themselves when it does not
/// come:
///
/// * if the program ends first: `printed no `ready` before it ended (exit
///   status 1)`, with its panic as the cause if it panicked, else its last
///   words on stderr;
/// * if the time given passes: `printed no `ready` within 5 s`, with the
///   cause the wait knows (a zombie for `wait_until_alone`), else the one
///   given with [`Cmd::why_if_timeout`].
///
/// [`Running::wait`] collects the program with the checks of [`Cmd::run`];
/// [`Running::kill`] kills it and reports its leftovers, failing nothing.
/// Dropping it before either kills it and every process it started, reaps
/// them and removes what it made: a test that fails half-way leaves
/// nothing behind.
#[derive(Debug)]
pub struct Running {
    /// `None` only once the program has been collected.
    live: Option<Live>,
}

#[derive(Debug)]
struct Live {
    cmd: Cmd,
    command: String,
    shepherd: Shepherd,
    stdout: Capture,
    stderr: Capture,
    fifos_before: Vec<PathBuf>,
    sockets_before: Vec<PathBuf>,
    private_before: private::Snapshot,
}

impl Live {
    /// The program's pid (also its process group ID). Under `cargo
    /// workbook trace`, the traced program's, not its tracer's.
    fn program(&self) -> i32 {
        crate::tracing::program(self.shepherd.program())
    }
}

impl Running {
    pub(crate) fn start(cmd: Cmd) -> Running {
        let command = cmd.command_line();
        let fifos_before = leaks::fifos_in(cmd.sandbox().dir());
        let sockets_before = socket_files::snapshot(cmd.sandbox().dir());
        let private_before = private::snapshot();
        let started = cmd.spawn();
        if let (Some(pipe), Some(bytes)) = (started.stdin, cmd.stdin_bytes()) {
            run::feed_stdin(pipe, bytes.to_vec());
        }
        let stdout = Capture::start(Some(started.stdout));
        let stderr = Capture::start(Some(started.stderr));
        Running {
            live: Some(Live {
                cmd,
                command,
                shepherd: started.shepherd,
                stdout,
                stderr,
                fifos_before,
                sockets_before,
                private_before,
            }),
        }
    }

    fn live(&self) -> &Live {
        self.live
            .as_ref()
            .unwrap_or_else(|| unreachable!("a Running is live until it is collected"))
    }

    fn live_mut(&mut self) -> &mut Live {
        self.live
            .as_mut()
            .unwrap_or_else(|| unreachable!("a Running is live until it is collected"))
    }

    fn take_live(&mut self) -> Live {
        self.live
            .take()
            .unwrap_or_else(|| unreachable!("a Running is collected only once"))
    }

    /// The program's process ID (also its process group ID).
    pub fn pid(&self) -> u32 {
        self.live().program() as u32
    }

    /// The sandbox the program runs in.
    pub fn sandbox(&self) -> &Sandbox {
        self.live().cmd.sandbox()
    }

    /// The command line, as in transcripts.
    pub fn command(&self) -> &str {
        &self.live().command
    }

    /// Sends `signal` to the program (not to its group), as `kill -SIG PID`
    /// does. A program that has already exited is not affected.
    pub fn signal(&mut self, signal: i32) {
        if self.exit_status().is_some() || self.live().shepherd.lost().is_some() {
            return;
        }
        // SAFETY: kill(2) takes no pointers. The program was running a
        // moment ago (no status came); pids are handed out in increasing
        // order, so the one it frees cannot come back that soon.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// Normalised standard output printed so far.
    pub fn stdout(&self) -> String {
        let live = self.live();
        live.cmd
            .normalize(&String::from_utf8_lossy(&live.stdout.bytes()))
    }

    /// Normalised standard error printed so far.
    pub fn stderr(&self) -> String {
        let live = self.live();
        live.cmd
            .normalize(&String::from_utf8_lossy(&live.stderr.bytes()))
    }

    /// Waits until the program's standard output contains `text` (before
    /// normalisation), for a program that announces it is ready, and returns
    /// the normalised standard output so far. Fails the test if the program
    /// ends first or `timeout` passes (see [`Running`]).
    pub fn wait_for_stdout(&mut self, text: &str, timeout: Duration) -> String {
        let needle = text.as_bytes();
        let found = |bytes: &[u8]| bytes.windows(needle.len().max(1)).any(|w| w == needle);
        let what = format!("printed no `{}`", text.trim_end());
        self.expect(timeout, &what, None, |running, until| {
            running.live().stdout.wait_for(until, found)
        });
        self.stdout()
    }

    /// Waits until the program is asleep in the system call `syscall`
    /// (`libc::SYS_msgrcv`, say), as `/proc/PID/syscall` shows it. Fails the
    /// test if the program ends first or `timeout` passes (see [`Running`]).
    pub fn wait_until_blocked_in(&mut self, syscall: libc::c_long, timeout: Duration) {
        let what = format!("never blocked in {}", procfs::manual_name(syscall));
        self.expect(timeout, &what, None, |running, _| {
            blocked_in(running.live().program()) == Some(syscall)
        });
    }

    /// Waits until the program is the only process left of its run: every
    /// process it started (in its process group or not) has exited, and
    /// every child it forked has been reaped. Fails the test if the program
    /// ends first or `timeout` passes (see [`Running`]), with the cause that
    /// fits what is left: a zombie, or a process still running and what it
    /// is waiting for.
    pub fn wait_until_alone(&mut self, timeout: Duration) {
        self.expect(timeout, "still had children", None, |running, _| {
            running.exit_status().is_none() && running.others().is_empty()
        });
    }

    /// The processes of the run besides the program that matter for
    /// [`Running::wait_until_alone`]: every live one, and the program's
    /// zombie children (an orphan that ended was reaped by nobody's fault).
    fn others(&self) -> Vec<procfs::ProcInfo> {
        let program = self.live().program();
        self.live()
            .shepherd
            .tree()
            .into_iter()
            .filter(|p| p.pid != program && (p.state != 'Z' || p.ppid == program))
            .collect()
    }

    /// Waits until the program is asleep in a system call, waiting for
    /// another process (`openat` on a FIFO without a partner, `read` on an
    /// empty one …), and says which call; or until it exits, or `timeout`
    /// passes. The call is read from `/proc/PID/syscall`. Unlike the other
    /// waits, this one fails nothing: it reports what it saw.
    pub fn wait_until_blocked(&mut self, timeout: Duration) -> Blocked {
        let deadline = Instant::now() + timeout;
        let mut nap = FIRST_NAP;
        loop {
            if let Some(status) = self.exit_status() {
                return Blocked::Exited(status);
            }
            if let Some(call) = blocked_in(self.live().program()) {
                return Blocked::In(procfs::syscall_name(call));
            }
            if Instant::now() >= deadline {
                return Blocked::Busy;
            }
            thread::sleep(nap);
            nap = (nap * 2).min(LONGEST_NAP);
        }
    }

    /// The exit status, if the program has exited (its shepherd keeps it
    /// a zombie until the run is collected).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.live_mut().shepherd.exit_status()
    }

    /// Waits until `ready(self, until)` holds, looking again at growing
    /// intervals; `ready` may itself wait until `until`. Fails the test,
    /// saying `what` the program did not do, if it ends first or `timeout`
    /// passes; `why_late` is the likely cause then, before the test's
    /// [`Cmd::why_if_timeout`].
    fn expect(
        &mut self,
        timeout: Duration,
        what: &str,
        why_late: Option<&str>,
        mut ready: impl FnMut(&mut Running, Instant) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        let mut nap = FIRST_NAP;
        loop {
            let until = (Instant::now() + nap).min(deadline);
            if ready(self, until) {
                return;
            }
            if let Some(status) = self.exit_status() {
                // What it did just before it exited may not show yet (its
                // last output still in the pipe): look once more.
                if ready(self, Instant::now() + OUTPUT_SETTLE) {
                    return;
                }
                self.fail_ended(what, status);
            }
            if let Some(lost) = self.live().shepherd.lost() {
                let lost = lost_sentence(lost, self.live().shepherd.pid());
                self.fail(
                    format!("{what}: {lost}"),
                    "a lab program must never signal its parent process (here the grader's \
                     shepherd, which watches the run): check every kill() and the pids given \
                     to it",
                );
            }
            if Instant::now() >= deadline {
                let why_late = why_late.map(str::to_string).or_else(|| {
                    (what == "still had children")
                        .then(|| causes::not_alone(self.live().program(), &self.others()))
                });
                self.fail_late(what, timeout, why_late);
            }
            thread::sleep(until.saturating_duration_since(Instant::now()));
            nap = (nap * 2).min(LONGEST_NAP);
        }
    }

    /// Fails the test: the program ended with `status` before it did `what`.
    /// Its panic, or else its last words on stderr, is the likely cause.
    fn fail_ended(&self, what: &str, status: ExitStatus) -> ! {
        let failure = self.failure(format!(
            "{what} before it ended ({})",
            run::describe(status)
        ));
        let why = match failure
            .stderr
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
        {
            Some(last) => format!("it ended on its own, saying `{}`", last.trim()),
            None => "it ended on its own, before the test was done with it".to_string(),
        };
        raise(failure, why)
    }

    /// Fails the test: the program did not do `what` within `timeout`.
    /// The cause is the wait's own (`why_late`), else the test's, else
    /// what the program is doing now.
    fn fail_late(&self, what: &str, timeout: Duration, why_late: Option<String>) -> ! {
        let (_, why_timeout) = self.live().cmd.advice();
        let why = why_late.or(why_timeout).unwrap_or_else(|| {
            let program = self.live().program();
            format!(
                "it is still running, stuck somewhere else: {}",
                causes::hang(program, &self.live().shepherd.tree())
            )
        });
        let why = self.live().cmd.normalize(&why);
        self.fail(format!("{what} within {} s", timeout.as_secs_f32()), why)
    }

    /// A failure about this program while it runs, to be completed and
    /// raised by the test (which then kills the program). The processes
    /// it started that are still running are named in it.
    pub fn failure(&self, what: impl Into<String>) -> Failure {
        let live = self.live();
        // A program that has just exited may still have output in its
        // pipes: give the reader threads a moment to catch up.
        let settle = Instant::now() + OUTPUT_SETTLE;
        let (stdout, _) = live.stdout.finish(settle);
        let (stderr, _) = live.stderr.finish(settle);
        let normalize = |bytes: &[u8]| live.cmd.normalize(&String::from_utf8_lossy(bytes));
        let (read, _) = live.cmd.advice();
        let mut failure = Failure {
            command: self.command().to_string(),
            what: what.into(),
            read,
            stdout: normalize(&stdout),
            stderr: normalize(&stderr),
            ..Failure::default()
        };
        let others = leaks::describe_running(&live.shepherd.tree(), live.program());
        if !others.is_empty() {
            failure
                .details
                .push("processes it started, still running (to be killed):".to_string());
            for process in &others {
                for line in live.cmd.normalize(process).lines() {
                    failure.details.push(format!("  {line}"));
                }
            }
        }
        failure
    }

    /// Fails the test with `what` and the likely cause `why`; or, if the
    /// program panicked, with its panic, which is the likelier cause.
    pub fn fail(&self, what: impl Into<String>, why: impl Into<String>) -> ! {
        raise(self.failure(what), why.into())
    }

    /// Waits for the program to exit (killing it, and every process it
    /// started, after `timeout`), then fails the test if it timed out,
    /// panicked or left anything behind, as [`Cmd::run`] does.
    pub fn wait(self, timeout: Duration) -> Run {
        let run = self.wait_unchecked(timeout);
        run.check_finished_cleanly();
        run
    }

    /// Like [`Running::wait`], failing nothing.
    pub fn wait_unchecked(mut self, timeout: Duration) -> Run {
        let mut live = self.take_live();
        let program = live.program();
        let status = live.shepherd.wait_exit(Instant::now() + timeout);
        let mut ending = Ending::default();
        match status {
            Some(_) => {
                let tree = live.shepherd.tree();
                ending.processes = leaks::processes(&tree, program, live.shepherd.pid());
                if live.cmd.keeps_daemons() {
                    // Keep the daemons: report only the children never
                    // waited for, and hand the shepherd to the sandbox.
                    ending
                        .processes
                        .retain(|leak| leak.kind == LeakKind::Zombie);
                    ending.keep = true;
                }
            }
            None if live.shepherd.lost().is_none() => {
                let tree = live.shepherd.tree();
                ending.timed_out = true;
                ending.hang = Some(causes::hang(program, &tree));
                ending.at_deadline = deadline_report(&tree, program);
            }
            None => {}
        }
        collect(live, ending, timeout)
    }

    /// Kills the program and every process it started with `SIGKILL`, as a
    /// crash or `kill -9` would, and reports what the program left behind
    /// (already removed). Nothing is failed: the test decides what it
    /// expected.
    pub fn kill(mut self) -> Run {
        let live = self.take_live();
        collect(live, Ending::default(), Duration::ZERO)
    }
}

impl Drop for Running {
    /// A program the test did not collect (the test failed half-way) is
    /// killed with every process it started, and what it made is removed,
    /// unreported.
    fn drop(&mut self) {
        if let Some(mut live) = self.live.take() {
            live.shepherd.release();
            let deadline = Instant::now() + PIPE_GRACE;
            let (stdout, _) = live.stdout.finish(deadline);
            let (stderr, _) = live.stderr.finish(deadline);
            drop(leftovers(&live, &[&stdout, &stderr]));
        }
    }
}

/// Fails the test with `failure` and the likely cause `why`; or, if the
/// program panicked, with its panic, which is the likelier cause.
fn raise(mut failure: Failure, why: String) -> ! {
    if let Some(panicked) = run::panic_failure(&failure.stderr, || failure.clone()) {
        panicked.raise();
    }
    failure.why = Some(why);
    failure.raise()
}

/// How a run ended, as far as its processes go.
#[derive(Debug, Default)]
struct Ending {
    /// The processes it left (leaks).
    processes: Vec<Leak>,
    /// The test keeps the daemons it left ([`Cmd::keep_daemons`]).
    keep: bool,
    timed_out: bool,
    hang: Option<String>,
    at_deadline: Vec<String>,
}

/// What the program and each process of its tree were doing at the
/// deadline, the program first.
fn deadline_report(tree: &[procfs::ProcInfo], program: i32) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(me) = tree.iter().find(|p| p.pid == program) {
        lines.push(format!(
            "pid {} ({})\n  {}",
            me.pid,
            me.command,
            procfs::activity(me.pid)
        ));
    }
    lines.extend(leaks::describe_running(tree, program));
    lines
}

/// The sentence for a lost shepherd.
fn lost_sentence(lost: &Lost, shepherd: i32) -> String {
    match lost {
        Lost::Died(status) => format!(
            "its parent process, the grader's shepherd (pid {shepherd}), was {}",
            match run::describe(*status) {
                text if text.starts_with("killed") => text,
                text => format!("ended ({text})"),
            }
        ),
        Lost::Silent => format!(
            "its parent process, the grader's shepherd (pid {shepherd}), stopped answering \
             (was it sent SIGSTOP?)"
        ),
    }
}

/// Turns the finished program into a [`Run`]: kills what is left of its
/// run (unless the test keeps its daemons), waits for its output, and
/// makes the leftover checks.
fn collect(mut live: Live, ending: Ending, timeout: Duration) -> Run {
    let status = if ending.keep {
        live.shepherd.keep();
        live.shepherd.exit_status()
    } else {
        live.shepherd.release()
    };
    let lost = live
        .shepherd
        .lost()
        .map(|lost| lost_sentence(lost, live.shepherd.pid()));
    let status = status.unwrap_or_else(|| ExitStatus::from_raw(libc::SIGKILL));
    let deadline = Instant::now() + PIPE_GRACE;
    let (stdout, stdout_complete) = live.stdout.finish(deadline);
    let (stderr, stderr_complete) = live.stderr.finish(deadline);
    let mut leaks: Vec<Leak> = ending
        .processes
        .into_iter()
        .map(|leak| leak.map_names(|name| live.cmd.normalize(name)))
        .collect();
    if !live.cmd.keeps_daemons() {
        leaks.extend(
            live.cmd
                .sandbox()
                .stop_kept_daemons()
                .into_iter()
                .map(|what| Leak::new(LeakKind::Daemon, live.cmd.normalize(&what))),
        );
    }
    leaks.extend(leftovers(&live, &[&stdout, &stderr]));
    let Live {
        cmd,
        command,
        shepherd,
        ..
    } = live;
    if ending.keep {
        cmd.sandbox().keep_daemons(shepherd);
    } else {
        drop(shepherd);
    }
    let normalize = |bytes: &[u8]| cmd.normalize(&String::from_utf8_lossy(bytes));
    let (read, why_timeout) = cmd.advice();
    Run {
        command,
        stdin_len: cmd.stdin_bytes().map(<[u8]>::len),
        stdout: normalize(&stdout),
        stderr: normalize(&stderr),
        stdout_bytes: stdout,
        status,
        timed_out: ending.timed_out,
        timeout,
        output_complete: stdout_complete && stderr_complete,
        leaks,
        read,
        why_timeout,
        at_deadline: ending
            .at_deadline
            .iter()
            .map(|line| cmd.normalize(line))
            .collect(),
        hang: ending.hang,
        lost,
        sandbox: cmd.into_sandbox(),
    }
}

/// The IPC objects and FIFOs the finished program left behind, removed as
/// they are found; `output` is what it printed (for announced identifiers).
fn leftovers(live: &Live, output: &[&[u8]]) -> Vec<Leak> {
    let cmd = &live.cmd;
    let mut leaks = private::check(
        cmd.sandbox(),
        cmd.sysv_expectations(),
        &live.private_before,
        live.program(),
        output,
    );
    leaks.extend(leaks::posix(cmd.sandbox()));
    leaks.extend(leaks::fifos(
        cmd.sandbox(),
        &live.fifos_before,
        cmd.kept_paths(),
    ));
    leaks.extend(socket_files::leftovers(
        cmd.sandbox(),
        &live.sockets_before,
        cmd.kept_paths(),
    ));
    leaks
}

/// The system call process `pid` is asleep in, if it is: its state is `S`
/// and `/proc/PID/syscall` names the same call before and after the state
/// was read (so it did not just wake up).
fn blocked_in(pid: i32) -> Option<libc::c_long> {
    let before = procfs::syscall(pid)?;
    if procfs::state(pid)? != 'S' {
        return None;
    }
    let after = procfs::syscall(pid)?;
    (before == after).then_some(after)
}
