//! Programs that keep running while the test acts: a server that waits for
//! clients, a receiver blocked on an empty queue.
//!
//! [`Cmd::spawn_background`] starts the program exactly as [`Cmd::run`] does
//! (own process group, clean environment, sandbox) and returns at once. The
//! test then waits for a line of output or for the program to block in a
//! system call, acts (starts clients, removes a queue, sends a signal), and
//! finally collects a [`Run`] with [`Background::wait`] or
//! [`Background::kill`], with the same leftover checks as any other run.
//! Whatever happens in between, dropping a [`Background`] kills its whole
//! process group and its sandbox removes its System V objects, so a failing
//! test leaves nothing running and nothing in the kernel's tables.
//!
//! This is a self-contained addition: if the harness gains a general API
//! for running programs in the background, this module can be replaced by
//! it, and only the suites that name [`Background`] need to change.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{Cmd, Run, book_reference, describe, feed_stdin, install_subreaper, panic_message};
use crate::capture::OUTPUT_LIMIT;
use crate::failure::Failure;
use crate::leaks;
use crate::private::{self, Snapshot};
use crate::procfs;
use crate::running::PIPE_GRACE;
use crate::sandbox::Sandbox;

/// How often a waiting test looks at the program again.
const POLL: Duration = Duration::from_millis(2);

/// A program started with [`Cmd::spawn_background`], still running (or not
/// yet collected).
#[derive(Debug)]
pub struct Background {
    /// The command, with its sandbox. `None` once a [`Run`] took them.
    cmd: Option<Cmd>,
    /// The program. `None` once it has been waited for.
    child: Option<Child>,
    /// Its exit status, once `try_wait` has seen it.
    status: Option<ExitStatus>,
    /// The process group: the program's pid.
    pgid: i32,
    /// When the program's time is up, counted from its start.
    deadline: Instant,
    command: String,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    private_before: Snapshot,
}

impl Cmd {
    /// Starts the program in the background and returns at once, for a
    /// program that must keep running while the test acts: a server, or a
    /// receiver that should block. Its timeout ([`Cmd::timeout`]) counts
    /// from now: at the deadline any wait of the test gives up and the whole
    /// process group is killed.
    pub fn spawn_background(self) -> Background {
        install_subreaper();
        let command = self.command_line();
        let private_before = private::snapshot();
        let mut child = self.spawn();
        let pgid = child.id() as i32;
        if let (Some(pipe), Some(bytes)) = (child.stdin.take(), self.stdin.clone()) {
            feed_stdin(pipe, bytes);
        }
        let stdout = Capture::start(child.stdout.take());
        let stderr = Capture::start(child.stderr.take());
        Background {
            deadline: Instant::now() + self.timeout,
            cmd: Some(self),
            child: Some(child),
            status: None,
            pgid,
            command,
            stdout,
            stderr,
            private_before,
        }
    }
}

impl Background {
    /// The program's process ID (also its process group ID).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// The sandbox the program runs in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.cmd().sandbox
    }

    /// Everything the program has written to standard output so far, as
    /// written (not normalised).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.bytes()).into_owned()
    }

    /// Waits until standard output contains `needle`, and returns all of
    /// standard output so far. Fails the test if the program exits first or
    /// its time runs out.
    pub fn wait_for_stdout(&mut self, needle: &str) -> String {
        loop {
            let text = self.stdout();
            if text.contains(needle) {
                return text;
            }
            self.fail_if_gone_or_late(&format!("printed no `{}`", needle.trim_end()), None);
            self.stdout.wait_for_more(POLL);
        }
    }

    /// Waits until the program is blocked in the system call `syscall`
    /// (`libc::SYS_msgrcv`, say), as `/proc/PID/syscall` shows it. Fails the
    /// test if the program exits first or its time runs out.
    ///
    /// Where `/proc/PID/syscall` cannot be read (a kernel without it), this
    /// waits until the program sleeps, then 100 ms more.
    pub fn wait_until_blocked_in(&mut self, syscall: libc::c_long) {
        let path = format!("/proc/{}/syscall", self.pgid);
        loop {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let number = text.split_whitespace().next();
                    if number.and_then(|n| n.parse::<libc::c_long>().ok()) == Some(syscall) {
                        return;
                    }
                }
                Err(_) if self.status.is_none() && self.sleeping() => {
                    thread::sleep(Duration::from_millis(100));
                    return;
                }
                Err(_) => {}
            }
            self.fail_if_gone_or_late(&format!("never blocked in {}", syscall_name(syscall)), None);
            thread::sleep(POLL);
        }
    }

    /// Waits until the program is the only process left in its group: every
    /// child it forked has exited and been reaped. Fails the test if the
    /// program exits first or its time runs out.
    pub fn wait_until_alone(&mut self) {
        loop {
            let group = procfs::processes_in_group(self.pgid);
            if group.iter().all(|process| process.pid == self.pgid) {
                return;
            }
            self.fail_if_gone_or_late(
                "still had children",
                Some(
                    "a child it forked is still running, or has ended and was never waited \
                     for (a zombie): reap every child with waitpid",
                ),
            );
            thread::sleep(POLL);
        }
    }

    /// Sends `signal` to the program (not to its whole group), as
    /// `kill -s SIGNAL PID` would.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe { libc::kill(self.pgid, signal) };
    }

    /// Waits for the program to exit, then fails the test if it timed out,
    /// panicked or left anything behind, as [`Cmd::run`] does.
    pub fn wait(self) -> Run {
        let run = self.wait_unchecked();
        run.check_finished_cleanly();
        run
    }

    /// Waits for the program to exit (killing its group at the deadline)
    /// and reports everything, failing nothing.
    pub fn wait_unchecked(mut self) -> Run {
        let mut timed_out = false;
        while self.try_status().is_none() {
            if Instant::now() >= self.deadline {
                // SAFETY: kill(2) on our child's process group.
                unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
                timed_out = true;
                self.reap();
                break;
            }
            thread::sleep(POLL);
        }
        self.collect(timed_out, false)
    }

    /// Kills the whole process group with `SIGKILL`, as a crash or `kill -9`
    /// would, and reports what the program left behind (already removed).
    /// Nothing is failed: the test decides what it expected.
    pub fn kill(mut self) -> Run {
        // SAFETY: kill(2) on our child's process group.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        self.reap();
        self.collect(false, true)
    }

    /// The command; present until a [`Run`] takes it.
    fn cmd(&self) -> &Cmd {
        self.cmd
            .as_ref()
            .unwrap_or_else(|| panic!("grader: the background run was already collected"))
    }

    /// The exit status, if the program has exited (reaping it).
    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.status = Some(status);
        }
        self.status
    }

    /// Waits for the program itself after it was killed.
    fn reap(&mut self) {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.status = child.wait().ok();
        }
    }

    /// Whether the program is asleep (state `S`) according to /proc.
    fn sleeping(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pgid))
            .ok()
            .and_then(|stat| {
                let after = stat.rfind(')')?;
                stat[after + 1..]
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            })
            .is_some_and(|state| state == "S")
    }

    /// Fails the test, with what the program printed, if it has exited or
    /// its time is up; `what` says what it did not do, `why_late` the likely
    /// cause when time ran out (else the test's [`Cmd::why_if_timeout`]).
    fn fail_if_gone_or_late(&mut self, what: &str, why_late: Option<&str>) {
        let exited = self.try_status();
        let late = Instant::now() >= self.deadline;
        if exited.is_none() && !late {
            return;
        }
        let deadline = Instant::now() + PIPE_GRACE;
        if exited.is_some() {
            self.stdout.wait_until_closed(deadline);
            self.stderr.wait_until_closed(deadline);
        }
        let cmd = self.cmd();
        let normalize = |bytes: &[u8]| cmd.normalize(&String::from_utf8_lossy(bytes));
        let stderr = normalize(&self.stderr.bytes());
        let (what, why) = match exited {
            Some(status) => (
                format!("{what} before it ended ({})", describe(status)),
                match panic_message(&stderr) {
                    Some(message) if message.contains("not yet implemented") => {
                        "this TODO is not done yet: replace the todo!() with your code".to_string()
                    }
                    Some(message) => format!(
                        "it panicked ({message}): a lab program must never panic; report \
                         errors with a message and a non-zero exit status"
                    ),
                    None => match stderr.lines().rev().find(|line| !line.trim().is_empty()) {
                        Some(last) => format!("it ended on its own, saying `{}`", last.trim()),
                        None => "it ended on its own, before the test was done with it".to_string(),
                    },
                },
            ),
            None => (
                format!("{what} within {} s", cmd.timeout.as_secs_f32()),
                why_late
                    .map(str::to_string)
                    .or_else(|| cmd.why_timeout.clone())
                    .unwrap_or_else(|| "it is still running, stuck somewhere else".to_string()),
            ),
        };
        Failure {
            command: self.command.clone(),
            what,
            why: Some(why),
            read: book_reference(cmd.chapter.as_deref(), cmd.section.as_deref()),
            details: Vec::new(),
            stdout: normalize(&self.stdout.bytes()),
            stderr,
        }
        .raise()
    }

    /// Turns the finished program into a [`Run`], after the leftover checks.
    fn collect(&mut self, timed_out: bool, killed: bool) -> Run {
        let mut leaks = Vec::new();
        if timed_out || killed {
            leaks::kill_and_reap_group(self.pgid);
        } else {
            leaks.extend(leaks::processes(self.pgid));
        }
        let deadline = Instant::now() + PIPE_GRACE;
        let stdout_complete = self.stdout.wait_until_closed(deadline);
        let stderr_complete = self.stderr.wait_until_closed(deadline);
        let (stdout, stderr) = (self.stdout.bytes(), self.stderr.bytes());
        self.child = None;
        let cmd = self
            .cmd
            .take()
            .unwrap_or_else(|| panic!("grader: the background run was already collected"));
        leaks.extend(private::check(
            &cmd.sandbox,
            &cmd.sysv,
            &self.private_before,
            self.pgid,
            &[&stdout, &stderr],
        ));
        leaks.extend(leaks::posix(&cmd.sandbox));
        let status = self
            .status
            .unwrap_or_else(|| panic!("grader: no exit status for {}", self.command));
        let normalize = |bytes: &[u8]| cmd.normalize(&String::from_utf8_lossy(bytes));
        Run {
            command: self.command.clone(),
            stdin_len: cmd.stdin.as_ref().map(Vec::len),
            stdout: normalize(&stdout),
            stderr: normalize(&stderr),
            stdout_bytes: stdout,
            status,
            timed_out,
            timeout: cmd.timeout,
            output_complete: stdout_complete && stderr_complete,
            leaks,
            read: book_reference(cmd.chapter.as_deref(), cmd.section.as_deref()),
            why_timeout: cmd.why_timeout,
            sandbox: cmd.sandbox,
        }
    }
}

impl Drop for Background {
    /// A background program the test did not collect (the test failed
    /// half-way) is killed with its whole group; its sandbox then removes
    /// its System V objects.
    fn drop(&mut self) {
        if self.child.is_some() {
            leaks::kill_and_reap_group(self.pgid);
            self.reap();
        }
    }
}

/// `msgrcv(2)` for the system calls tests wait in, else `system call N`.
fn syscall_name(syscall: libc::c_long) -> String {
    let known = [
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_msgsnd, "msgsnd"),
        (libc::SYS_semop, "semop"),
        (libc::SYS_semtimedop, "semtimedop"),
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_wait4, "wait4"),
    ];
    match known.iter().find(|(number, _)| *number == syscall) {
        Some((_, name)) => format!("{name}(2)"),
        None => format!("system call {syscall}"),
    }
}

/// One output stream of a background program, read as it is written.
#[derive(Debug, Default)]
struct Capture {
    state: Mutex<(Vec<u8>, bool)>,
    changed: Condvar,
}

impl Capture {
    /// Reads `pipe` on a thread until end-of-file.
    fn start(pipe: Option<impl Read + Send + 'static>) -> Arc<Capture> {
        let capture = Arc::new(Capture::default());
        let Some(mut pipe) = pipe else {
            capture.close();
            return capture;
        };
        let writer = Arc::clone(&capture);
        thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => writer.append(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            writer.close();
        });
        capture
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<u8>, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, bytes: &[u8]) {
        let mut state = self.lock();
        let room = OUTPUT_LIMIT.saturating_sub(state.0.len());
        state.0.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }

    fn bytes(&self) -> Vec<u8> {
        self.lock().0.clone()
    }

    /// Sleeps until more output arrives, the stream closes, or `at_most`.
    fn wait_for_more(&self, at_most: Duration) {
        let state = self.lock();
        if state.1 {
            drop(state);
            thread::sleep(at_most);
        } else {
            drop(self.changed.wait_timeout(state, at_most));
        }
    }

    /// Waits until end-of-file or `deadline`; whether the stream closed.
    fn wait_until_closed(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        while !state.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.changed.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poison) => poison.into_inner().0,
            };
        }
        true
    }
}
