//! A program running in the background: started with [`Cmd::start`],
//! watched and signalled while it runs, then collected with the same checks
//! as a program run to completion.

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::failure::Failure;
use crate::leaks;
use crate::private;
use crate::procfs;
use crate::run::{self, Cmd, Run};
use crate::sandbox::Sandbox;

/// How long to wait for the output pipes to close once every process of the
/// group is gone. Only a process that left the group can keep them open.
pub(crate) const PIPE_GRACE: Duration = Duration::from_secs(2);

/// How long a failure waits for the output of a program that has just
/// exited to arrive, so that the message shows all of it.
const OUTPUT_SETTLE: Duration = Duration::from_millis(200);

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
/// Dropping it before [`Running::wait`] kills its whole process group and
/// reaps it: a test that fails half-way leaves nothing running.
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
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) takes no pointers. The pid is our unreaped child,
        // or a zombie once it has exited, so it cannot have been reused.
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
    /// normalisation), for a program that announces it is ready. Returns
    /// `false` if it closed its output (it exited) or `timeout` passed first.
    pub fn wait_for_stdout(&self, text: &str, timeout: Duration) -> bool {
        let needle = text.as_bytes();
        self.live()
            .stdout
            .wait_for(Instant::now() + timeout, |bytes| {
                bytes.windows(needle.len().max(1)).any(|w| w == needle)
            })
    }

    /// Waits until the program is asleep in a system call, waiting for
    /// another process (`openat` on a FIFO without a partner, `read` on an
    /// empty one …), and says which call; or until it exits, or `timeout`
    /// passes. The call is read from `/proc/PID/syscall`.
    pub fn wait_until_blocked(&mut self, timeout: Duration) -> Blocked {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_micros(500);
        loop {
            let live = self.live_mut();
            let pid = live.child.id() as i32;
            match live.child.try_wait() {
                Ok(Some(status)) => return Blocked::Exited(status),
                Ok(None) => {}
                Err(e) => panic!("grader: waitpid failed: {e}"),
            }
            if let Some(call) = blocked_in(pid) {
                return Blocked::In(call);
            }
            if Instant::now() >= deadline {
                return Blocked::Busy;
            }
            thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(10));
        }
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
        let mut failure = self.failure(what);
        if let Some(panicked) = run::panic_failure(&failure.stderr, || failure.clone()) {
            panicked.raise();
        }
        failure.why = Some(why.into());
        failure.raise()
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
        let Some(mut live) = self.live.take() else {
            unreachable!("a Running is collected only once");
        };
        let pgid = live.pgid();
        let (status, timed_out) = run::wait_with_timeout(&mut live.child, timeout);
        let mut leaks = Vec::new();
        if timed_out {
            leaks::kill_and_reap_group(pgid);
        } else {
            leaks.extend(leaks::processes(pgid));
        }
        let deadline = Instant::now() + PIPE_GRACE;
        let (stdout, stdout_complete) = live.stdout.finish(deadline);
        let (stderr, stderr_complete) = live.stderr.finish(deadline);
        let cmd = live.cmd;
        leaks.extend(private::check(
            cmd.sandbox(),
            cmd.sysv_expectations(),
            &live.private_before,
            pgid,
            &[&stdout, &stderr],
        ));
        leaks.extend(leaks::posix(cmd.sandbox()));
        leaks.extend(leaks::fifos(
            cmd.sandbox(),
            &live.fifos_before,
            cmd.kept_paths(),
        ));

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
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut live) = self.live.take() {
            let pgid = live.pgid();
            // SAFETY: kill(2) on our child's process group; no pointers.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = live.child.wait();
            leaks::kill_and_reap_group(pgid);
        }
    }
}

/// The system call process `pid` is asleep in, if it is: its state is `S`
/// and `/proc/PID/syscall` names the same call before and after the state
/// was read (so it did not just wake up).
fn blocked_in(pid: i32) -> Option<String> {
    let before = procfs::syscall(pid)?;
    if procfs::state(pid)? != 'S' {
        return None;
    }
    let after = procfs::syscall(pid)?;
    (before == after).then(|| procfs::syscall_name(after))
}
