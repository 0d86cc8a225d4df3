//! A program running in the background: started with [`Cmd::start`],
//! watched and signalled while it runs, then collected with the same checks
//! as a program run to completion (or killed, and its leftovers reported).

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::failure::Failure;
use crate::leaks::{self, Leak};
use crate::private;
use crate::procfs;
use crate::run::{self, Cmd, Run};
use crate::sandbox::Sandbox;
use crate::socket_files;

/// How long to wait for the output pipes to close once every process of the
/// group is gone. Only a process that left the group can keep them open.
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
/// Dropping it before either kills its whole process group, reaps it and
/// removes what it made: a test that fails half-way leaves nothing behind.
#[derive(Debug)]
pub struct Running {
    /// `None` only once the program has been collected.
    live: Option<Live>,
}

#[derive(Debug)]
struct Live {
    cmd: Cmd,
    command: String,
    child: Child,
    stdout: Capture,
    stderr: Capture,
    fifos_before: Vec<PathBuf>,
    sockets_before: Vec<PathBuf>,
    private_before: private::Snapshot,
}

impl Live {
    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Running {
    pub(crate) fn start(cmd: Cmd) -> Running {
        run::install_subreaper();
        let command = cmd.command_line();
        let fifos_before = leaks::fifos_in(cmd.sandbox().dir());
        let sockets_before = socket_files::snapshot(cmd.sandbox().dir());
        let private_before = private::snapshot();
        let mut child = cmd.spawn();
        if let (Some(pipe), Some(bytes)) = (child.stdin.take(), cmd.stdin_bytes()) {
            run::feed_stdin(pipe, bytes.to_vec());
        }
        let stdout = Capture::start(child.stdout.take());
        let stderr = Capture::start(child.stderr.take());
        Running {
            live: Some(Live {
                cmd,
                command,
                child,
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
        self.live().child.id()
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
        if self.exit_status().is_some() {
            return;
        }
        // SAFETY: kill(2) takes no pointers. The pid is our child, which
        // try_wait has just seen running: until we reap it, even once it has
        // exited, its pid cannot be reused.
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
            blocked_in(running.live().pgid()) == Some(syscall)
        });
    }

    /// Waits until the program is the only process left in its group: every
    /// child it forked has exited and been reaped. Fails the test if the
    /// program ends first or `timeout` passes (see [`Running`]).
    pub fn wait_until_alone(&mut self, timeout: Duration) {
        self.expect(
            timeout,
            "still had children",
            Some(
                "a child it forked is still running, or has ended and was never waited \
                 for (a zombie): reap every child with waitpid",
            ),
            |running, _| {
                let pgid = running.live().pgid();
                let group = procfs::processes_in_group(pgid);
                matches!(group.as_slice(), [only] if only.pid == pgid && only.state != 'Z')
            },
        );
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
            if let Some(call) = blocked_in(self.live().pgid()) {
                return Blocked::In(procfs::syscall_name(call));
            }
            if Instant::now() >= deadline {
                return Blocked::Busy;
            }
            thread::sleep(nap);
            nap = (nap * 2).min(LONGEST_NAP);
        }
    }

    /// The exit status, if the program has exited (it is then reaped).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        match self.live_mut().child.try_wait() {
            Ok(status) => status,
            Err(e) => panic!("grader: waitpid failed: {e}"),
        }
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
            if Instant::now() >= deadline {
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
    fn fail_late(&self, what: &str, timeout: Duration, why_late: Option<&str>) -> ! {
        let (_, why_timeout) = self.live().cmd.advice();
        let why = why_late
            .map(str::to_string)
            .or(why_timeout)
            .unwrap_or_else(|| "it is still running, stuck somewhere else".to_string());
        self.fail(format!("{what} within {} s", timeout.as_secs_f32()), why)
    }

    /// A failure about this program while it runs, to be completed and
    /// raised by the test (which then kills the program).
    pub fn failure(&self, what: impl Into<String>) -> Failure {
        let live = self.live();
        // A program that has just exited may still have output in its
        // pipes: give the reader threads a moment to catch up.
        let settle = Instant::now() + OUTPUT_SETTLE;
        let (stdout, _) = live.stdout.finish(settle);
        let (stderr, _) = live.stderr.finish(settle);
        let normalize = |bytes: &[u8]| live.cmd.normalize(&String::from_utf8_lossy(bytes));
        let (read, _) = live.cmd.advice();
        Failure {
            command: self.command().to_string(),
            what: what.into(),
            why: None,
            read,
            details: Vec::new(),
            stdout: normalize(&stdout),
            stderr: normalize(&stderr),
        }
    }

    /// Fails the test with `what` and the likely cause `why`; or, if the
    /// program panicked, with its panic, which is the likelier cause.
    pub fn fail(&self, what: impl Into<String>, why: impl Into<String>) -> ! {
        raise(self.failure(what), why.into())
    }

    /// Waits for the program to exit (killing its group after `timeout`),
    /// then fails the test if it timed out, panicked or left anything behind,
    /// as [`Cmd::run`] does.
    pub fn wait(self, timeout: Duration) -> Run {
        let run = self.wait_unchecked(timeout);
        run.check_finished_cleanly();
        run
    }

    /// Like [`Running::wait`], failing nothing.
    pub fn wait_unchecked(mut self, timeout: Duration) -> Run {
        let mut live = self.take_live();
        let pgid = live.pgid();
        let (status, timed_out) = run::wait_with_timeout(&mut live.child, timeout);
        let left_running = if timed_out {
            leaks::kill_and_reap_group(pgid);
            Vec::new()
        } else {
            leaks::processes(pgid)
        };
        collect(live, status, timed_out, timeout, left_running)
    }

    /// Kills the whole process group with `SIGKILL`, as a crash or `kill -9`
    /// would, and reports what the program left behind (already removed).
    /// Nothing is failed: the test decides what it expected.
    pub fn kill(mut self) -> Run {
        let mut live = self.take_live();
        let status =
            kill_group(&mut live).unwrap_or_else(|e| panic!("grader: waitpid failed: {e}"));
        collect(live, status, false, Duration::ZERO, Vec::new())
    }
}

impl Drop for Running {
    /// A program the test did not collect (the test failed half-way) is
    /// killed with its whole group, and what it made is removed, unreported.
    fn drop(&mut self) {
        if let Some(mut live) = self.live.take() {
            let _ = kill_group(&mut live);
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

/// Sends `SIGKILL` to the program's whole group and reaps it all; the
/// program's exit status.
fn kill_group(live: &mut Live) -> std::io::Result<ExitStatus> {
    let pgid = live.pgid();
    // SAFETY: kill(2) on our child's process group; no pointers.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let status = live.child.wait();
    leaks::kill_and_reap_group(pgid);
    status
}

/// Turns the finished program into a [`Run`], after the leftover checks.
/// `left_running` holds what [`leaks::processes`] found in its group.
fn collect(
    live: Live,
    status: ExitStatus,
    timed_out: bool,
    timeout: Duration,
    left_running: Vec<Leak>,
) -> Run {
    let deadline = Instant::now() + PIPE_GRACE;
    let (stdout, stdout_complete) = live.stdout.finish(deadline);
    let (stderr, stderr_complete) = live.stderr.finish(deadline);
    let mut leaks = left_running;
    leaks.extend(leftovers(&live, &[&stdout, &stderr]));
    let cmd = live.cmd;
    let normalize = |bytes: &[u8]| cmd.normalize(&String::from_utf8_lossy(bytes));
    let (read, why_timeout) = cmd.advice();
    Run {
        command: live.command,
        stdin_len: cmd.stdin_bytes().map(<[u8]>::len),
        stdout: normalize(&stdout),
        stderr: normalize(&stderr),
        stdout_bytes: stdout,
        status,
        timed_out,
        timeout,
        output_complete: stdout_complete && stderr_complete,
        leaks,
        read,
        why_timeout,
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
        live.pgid(),
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
