//! Running one program: its shepherd, timeout, clean environment, captured
//! output, leftover checks, transcript.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::thread;
use std::time::Duration;

use crate::causes;
use crate::failure::Failure;
use crate::leaks::{self, Leak};
use crate::private::SysvExpectations;
use crate::running::Running;
use crate::shepherd::{self, Launch, Started};
use crate::{DEFAULT_TIMEOUT, Sandbox, SysvKind};

/// A program to run under the grader: build it, then call [`Cmd::run`].
#[derive(Debug)]
pub struct Cmd {
    program: PathBuf,
    display: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    chapter: Option<String>,
    section: Option<String>,
    why_timeout: Option<String>,
    aliases: Vec<(String, String)>,
    keeps: Vec<PathBuf>,
    obey_permissions: bool,
    sandbox: Sandbox,
    sysv: SysvExpectations,
    unprivileged: bool,
    keep_daemons: bool,
}

impl Cmd {
    /// Runs `program` (a path, or a name looked up in `PATH`) in `sandbox`.
    pub fn new(program: impl AsRef<OsStr>, sandbox: Sandbox) -> Cmd {
        let program = PathBuf::from(program.as_ref());
        let display = program
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.display().to_string());
        Cmd {
            program,
            display,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            chapter: None,
            section: None,
            why_timeout: None,
            aliases: Vec::new(),
            keeps: Vec::new(),
            obey_permissions: false,
            sandbox,
            sysv: SysvExpectations::default(),
            unprivileged: false,
            keep_daemons: false,
        }
    }

    /// The name transcripts and messages show instead of the program's path.
    pub fn display_name(mut self, name: &str) -> Cmd {
        self.display = name.to_string();
        self
    }

    /// The book chapter that explains this program (e.g. `02-pipes.md`).
    pub fn chapter(mut self, chapter: &str) -> Cmd {
        self.chapter = Some(chapter.to_string());
        self
    }

    /// The section of the chapter a failure should send the student to.
    pub fn section(mut self, title: &str) -> Cmd {
        self.section = Some(title.to_string());
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable on top of the clean environment.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Feeds `bytes` to the program's standard input, then closes it. Without
    /// this, standard input is `/dev/null`.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// How long the program may run before it is killed, with every
    /// process it started.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// The likely cause to print if the program times out.
    pub fn why_if_timeout(mut self, why: &str) -> Cmd {
        self.why_timeout = Some(why.to_string());
        self
    }

    /// Shows `path` as `name` in transcripts and messages: for a program
    /// passed as an argument (`sh -c '"$0" …' /path/to/pipes`).
    pub fn alias(mut self, path: impl AsRef<Path>, name: &str) -> Cmd {
        self.aliases
            .push((path.as_ref().display().to_string(), name.to_string()));
        self
    }

    /// Declares that the program is meant to leave `path` behind (as `mkfifo`
    /// does): the check for FIFOs left in the sandbox does not count it.
    pub fn keeps(mut self, path: impl Into<PathBuf>) -> Cmd {
        self.keeps.push(path.into());
        self
    }

    /// Makes file permissions apply to the program even when the tests run
    /// as root.
    ///
    /// Root passes every permission check thanks to two capabilities,
    /// `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH`. When this process is
    /// root, the program starts without them (they are dropped from its
    /// capability bounding set between fork and exec, so exec cannot give
    /// them back): a file with mode 0000 is then as closed to it as to any
    /// user. For other users nothing changes.
    pub fn obey_file_permissions(mut self) -> Cmd {
        self.obey_permissions = true;
        self
    }

    /// Declares that the program prints the identifier of each System V
    /// object of `kind` it creates right after `marker` (`"private queue "`
    /// for `client: private queue 65538`). Such objects are then charged to
    /// this run, whatever their key (`IPC_PRIVATE`, or one the program chose),
    /// if they were created during it (see the `private` module for the rules).
    pub fn announces_sysv_ids(mut self, kind: SysvKind, marker: &str) -> Cmd {
        self.sysv.markers.push((kind, marker.to_string()));
        self
    }

    /// Marks this run as one step of a scenario (`create`, then `send`, then
    /// `remove`): the System V objects it leaves under the sandbox's keys,
    /// and the private ones it made, are neither reported nor removed. The
    /// next run in the same sandbox that is not so marked reports whatever
    /// is still there, and dropping the sandbox removes it.
    pub fn keep_sysv_objects(mut self) -> Cmd {
        self.sysv.keep = true;
        self
    }

    /// Marks this run as a step that starts a daemon a later step stops
    /// (`pidfile start`, then `pidfile stop`): the processes it leaves
    /// running when it exits are neither reported nor killed. They stay
    /// under the run's shepherd, which from then on reaps whichever of
    /// them ends, as init would (so `kill(pid, 0)` sees a stopped daemon
    /// gone). Children it never waited for are still reported.
    ///
    /// As with [`Cmd::keep_sysv_objects`], the next run in the same
    /// sandbox that is not so marked reports the daemons still running
    /// after it (`daemon still running: pid …, started by an earlier
    /// step`) and kills them, and dropping the sandbox kills whatever is
    /// left, unreported. [`Sandbox::daemons`] lists them meanwhile.
    pub fn keep_daemons(mut self) -> Cmd {
        self.keep_daemons = true;
        self
    }

    /// Runs the program without any capability, as an ordinary user's
    /// program runs, even when the tests run as root (in a container, say):
    /// permission checks such as a queue's mode or `msgmnb` then apply to it.
    /// Without this, root's `CAP_IPC_OWNER` and `CAP_SYS_RESOURCE` skip them.
    pub fn unprivileged(mut self) -> Cmd {
        self.unprivileged = true;
        self
    }

    /// The sandbox the program runs in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// What the test declared about the System V objects of this run.
    pub(crate) fn sysv_expectations(&self) -> &SysvExpectations {
        &self.sysv
    }

    /// The paths declared with [`Cmd::keeps`].
    pub(crate) fn kept_paths(&self) -> &[PathBuf] {
        &self.keeps
    }

    /// Whether the run may leave daemons ([`Cmd::keep_daemons`]).
    pub(crate) fn keeps_daemons(&self) -> bool {
        self.keep_daemons
    }

    /// The bytes given with [`Cmd::stdin`], if any.
    pub(crate) fn stdin_bytes(&self) -> Option<&[u8]> {
        self.stdin.as_deref()
    }

    /// Where a failure should send the student, and why a time-out happened.
    pub(crate) fn advice(&self) -> (Option<String>, Option<String>) {
        (
            book_reference(self.chapter.as_deref(), self.section.as_deref()),
            self.why_timeout.clone(),
        )
    }

    /// Gives the sandbox back once the command has been run.
    pub(crate) fn into_sandbox(self) -> Sandbox {
        self.sandbox
    }

    /// The command line as a student would type it, with sandbox paths
    /// shortened to `[SANDBOX]`.
    pub(crate) fn command_line(&self) -> String {
        let mut words = vec![self.display.clone()];
        words.extend(self.args.iter().map(|arg| quote(&arg.to_string_lossy())));
        self.normalize(&words.join(" "))
    }

    /// Replaces what differs from run to run (the sandbox's path and POSIX
    /// prefix, program paths) with stable placeholders.
    pub(crate) fn normalize(&self, text: &str) -> String {
        let mut text = text.replace(&self.sandbox.dir().display().to_string(), "[SANDBOX]");
        if self.program.is_absolute() {
            text = text.replace(&self.program.display().to_string(), &self.display);
        }
        for (path, name) in &self.aliases {
            text = text.replace(path.as_str(), name);
        }
        text.replace(self.sandbox.posix_prefix(), "[PREFIX]-")
    }

    /// Runs the program and fails the test if it timed out, panicked or left
    /// anything behind. Exit status and output are the test's to check.
    pub fn run(self) -> Run {
        let run = self.run_unchecked();
        run.check_finished_cleanly();
        run
    }

    /// Runs the program and reports everything, failing nothing: for tests
    /// that expect a timeout or a leftover (the grader's own tests).
    pub fn run_unchecked(self) -> Run {
        let timeout = self.timeout;
        self.start().wait_unchecked(timeout)
    }

    /// Starts the program in the background, for programs that run until
    /// they are told to stop (a server) or that must be watched while they
    /// run (a receiver that should block). The program gets the same
    /// shepherd, environment and sandbox as with [`Cmd::run`].
    ///
    /// [`Running::wait`] collects it with the same checks as `run`;
    /// [`Running::kill`] kills it and reports what it left. A `Running`
    /// dropped without either (a failing test) kills the program and every
    /// process it started, and removes what it made: nothing is left behind.
    /// The timeout set with [`Cmd::timeout`] does not apply: every wait
    /// takes its own. [`Cmd::why_if_timeout`] does.
    pub fn start(self) -> Running {
        Running::start(self)
    }

    /// Starts the program under a new shepherd (see [`crate::shepherd`]),
    /// in its own process group, with a clean environment.
    pub(crate) fn spawn(&self) -> Started {
        let launch = self.launch();
        shepherd::start(&launch).unwrap_or_else(|e| {
            panic!(
                "{}",
                shepherd::describe_start_error(&self.program.display().to_string(), &e)
            )
        })
    }

    /// What the shepherd needs: the program's path, argument vector,
    /// environment and directory as C strings.
    fn launch(&self) -> Launch {
        let c_string = |bytes: &[u8]| {
            CString::new(bytes).unwrap_or_else(|_| {
                panic!(
                    "grader: a NUL byte in the command line or environment of {}",
                    self.program.display()
                )
            })
        };
        let path = resolve(&self.program)
            .unwrap_or_else(|e| panic!("grader: cannot start {}: {e}", self.program.display()));
        let mut argv = vec![c_string(self.program.as_os_str().as_bytes())];
        argv.extend(self.args.iter().map(|arg| c_string(arg.as_bytes())));
        let mark = shepherd::new_mark();
        let sandbox = self.sandbox.dir().as_os_str();
        let mut env: Vec<(OsString, OsString)> = vec![
            (
                "PATH".into(),
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            ),
            ("HOME".into(), sandbox.into()),
            ("TMPDIR".into(), sandbox.into()),
            ("LC_ALL".into(), "C".into()),
            ("LANG".into(), "C".into()),
            ("RUST_BACKTRACE".into(), "0".into()),
            ("WORKBOOK_SANDBOX".into(), sandbox.into()),
            (
                "WORKBOOK_KEY_FILE".into(),
                self.sandbox.key_file().as_os_str().into(),
            ),
            (
                "WORKBOOK_IPC_PREFIX".into(),
                self.sandbox.posix_prefix().into(),
            ),
            ("WORKBOOK_RUN".into(), mark.clone().into()),
        ];
        for (key, value) in &self.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        let envp = env
            .iter()
            .map(|(key, value)| {
                let mut var = key.as_bytes().to_vec();
                var.push(b'=');
                var.extend_from_slice(value.as_bytes());
                c_string(&var)
            })
            .collect();
        // `cargo workbook trace`: the program under a tracer (see `tracing`).
        let (path, argv) = crate::tracing::wrap(
            c_string(path.as_os_str().as_bytes()),
            argv,
            self.chapter.is_some(),
            &self.command_line(),
        );
        Launch {
            path,
            argv,
            envp,
            cwd: c_string(sandbox.as_bytes()),
            piped_stdin: self.stdin.is_some(),
            unprivileged: self.unprivileged,
            obey_permissions: self.obey_permissions,
            mark,
        }
    }
}

/// The file `program` names: itself if it holds a `/` (relative to the
/// sandbox, where it is exec'd, as `execvp` would take it), else the first
/// executable file of that name in `PATH`.
fn resolve(program: &Path) -> std::io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))
}

/// Writes `bytes` to the child's stdin from a thread, then closes it. A
/// program that never reads makes the write fail with EPIPE once it exits,
/// which is fine: the thread just ends (this process ignores SIGPIPE, as
/// every Rust program does).
pub(crate) fn feed_stdin(mut pipe: File, bytes: Vec<u8>) {
    thread::spawn(move || {
        let _ = pipe.write_all(&bytes);
    });
}

/// "book chapter 02-pipes.md, section "…"", from what the test declared.
fn book_reference(chapter: Option<&str>, section: Option<&str>) -> Option<String> {
    match (chapter, section) {
        (Some(chapter), Some(section)) => {
            Some(format!("book/src/{chapter}, section \"{section}\""))
        }
        (Some(chapter), None) => Some(format!("book/src/{chapter}")),
        (None, Some(section)) => Some(format!("section \"{section}\"")),
        (None, None) => None,
    }
}

/// Quotes a word for display the way a shell user would type it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What happened when a program ran.
#[derive(Debug)]
pub struct Run {
    /// The command line, as typed by a student.
    pub command: String,
    /// Normalised standard output.
    pub stdout: String,
    /// Normalised standard error.
    pub stderr: String,
    /// Standard output exactly as written.
    pub stdout_bytes: Vec<u8>,
    /// How the program ended (after a timeout: killed by SIGKILL).
    pub status: ExitStatus,
    /// Whether the grader had to kill it.
    pub timed_out: bool,
    /// Whether the output pipes were closed by the time the grader gave up
    /// waiting (a daemon a test keeps running can hold them open).
    pub output_complete: bool,
    /// What the program left behind (already cleaned up).
    pub leaks: Vec<Leak>,
    /// The sandbox it ran in (still there, for inspecting files).
    pub sandbox: Sandbox,
    pub(crate) stdin_len: Option<usize>,
    pub(crate) timeout: Duration,
    pub(crate) read: Option<String>,
    pub(crate) why_timeout: Option<String>,
    /// At a timeout: what the program and each process it started were
    /// doing at the deadline, and the cause that fits.
    pub(crate) at_deadline: Vec<String>,
    pub(crate) hang: Option<String>,
    /// Set when the run's shepherd died before the program was collected:
    /// the sentence that says so.
    pub(crate) lost: Option<String>,
}

impl Run {
    /// The exit code, if the program exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed the program, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// The lines of standard output.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// A failure about this run, to be completed and raised by the test.
    /// What the program left behind, if anything, is named in it too.
    pub fn failure(&self, what: impl Into<String>) -> Failure {
        let mut failure = Failure {
            command: self.command.clone(),
            what: what.into(),
            read: self.read.clone(),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            ..Failure::default()
        };
        if !self.leaks.is_empty() {
            failure
                .details
                .push("it also left behind (now cleaned up):".to_string());
            failure.details.extend(
                leaks::summarize(&self.leaks)
                    .iter()
                    .map(|l| format!("  {l}")),
            );
        }
        failure
    }

    /// Fails the test with `what` and the likely cause `why`.
    pub fn fail(&self, what: impl Into<String>, why: impl Into<String>) -> ! {
        let mut failure = self.failure(what);
        failure.why = Some(why.into());
        failure.raise()
    }

    /// Fails unless the program exited with status 0.
    pub fn expect_success(&self) -> &Run {
        self.expect_code(0)
    }

    /// Fails unless the program exited with status `code`; the cause given
    /// is the one that fits what it did instead (a signal, a usage error,
    /// success where it must fail …).
    pub fn expect_code(&self, code: i32) -> &Run {
        if self.code() != Some(code) {
            let mut failure = self.failure(format!(
                "{}, expected exit status {code}",
                describe(self.status)
            ));
            failure.why = causes::wrong_status(code, self.status, &self.stderr);
            failure.raise();
        }
        self
    }

    /// Fails unless standard output is exactly `expected`.
    pub fn expect_stdout(&self, expected: &str, why: &str) -> &Run {
        if self.stdout != expected {
            let mut failure = self.failure("printed something other than expected");
            failure
                .details
                .push(format!("expected stdout: {expected:?}"));
            failure
                .details
                .push(format!("actual stdout:   {:?}", self.stdout));
            failure.why = Some(why.to_string());
            failure.raise();
        }
        self
    }

    /// Runs `sh -c script` in `sandbox` and fails unless it printed the same
    /// standard output and exited the same way as this run: for programs
    /// that must behave exactly like a shell (pipelines, `popen`). The script
    /// is fixed test text, never input from a program.
    pub fn expect_same_as_shell(&self, script: &str, sandbox: Sandbox, why: &str) -> &Run {
        let shell = Cmd::new("sh", sandbox).args(["-c", script]).run();
        if self.stdout != shell.stdout || self.code() != shell.code() {
            let mut failure = self.failure("did not do what the shell does");
            failure.details.push(format!("$ sh -c {script:?}"));
            failure.details.push(format!(
                "shell printed {:?} and exited with {:?}",
                shell.stdout,
                shell.code()
            ));
            failure.details.push(format!(
                "yours printed {:?} and exited with {:?}",
                self.stdout,
                self.code()
            ));
            failure.why = Some(why.to_string());
            failure.raise();
        }
        self
    }

    /// The transcript compared with snapshots: command, stdin size, stdout,
    /// stderr and exit status, all normalised.
    pub fn transcript(&self) -> String {
        let mut text = format!("$ {}\n", self.command);
        if let Some(len) = self.stdin_len {
            text.push_str(&format!("--- stdin: {len} bytes\n"));
        }
        text.push_str("--- stdout\n");
        push_block(&mut text, &self.stdout);
        text.push_str("--- stderr\n");
        push_block(&mut text, &self.stderr);
        text.push_str(&format!("--- {}\n", describe(self.status)));
        text
    }

    /// A one-line description for the snapshot header.
    pub fn description(&self) -> String {
        format!("Transcript of `{}`", self.command)
    }

    /// Fails the test if the program timed out, panicked or left anything
    /// behind. [`Cmd::run`] calls this for every run.
    pub fn check_finished_cleanly(&self) {
        // The grader lost track of the program: nothing else it saw is
        // reliable.
        if let Some(lost) = &self.lost {
            let mut failure = self.failure(lost.clone());
            failure.why = Some(
                "a lab program must never signal its parent process (here the grader's \
                 shepherd, which watches the run): check every kill() and the pids given to it"
                    .to_string(),
            );
            failure.raise();
        }
        // A panic first: when a panicking program also made something else
        // wait (a shell script around it, a partner on a FIFO), the panic is
        // the cause.
        if let Some(failure) = panic_failure(&self.stderr, || self.failure("")) {
            failure.raise();
        }
        if self.timed_out {
            let mut failure = self.failure(format!(
                "timed out after {} s (the program, or a process it started, was still running)",
                self.timeout.as_secs_f32()
            ));
            if !self.at_deadline.is_empty() {
                failure
                    .details
                    .insert(0, "at the deadline (then killed):".to_string());
                let lines = self.at_deadline.iter().flat_map(|process| process.lines());
                for (at, line) in lines.enumerate() {
                    failure.details.insert(at + 1, format!("  {line}"));
                }
            }
            failure.why = Some(
                self.why_timeout
                    .clone()
                    .or_else(|| self.hang.clone())
                    .unwrap_or_else(|| {
                        "something never finished: a read that never sees end-of-file, a \
                         wait for a child that never exits, or a loop that never ends"
                            .to_string()
                    }),
            );
            failure.raise();
        }
        if !self.leaks.is_empty() {
            let mut failure = self.failure(format!(
                "left {} thing(s) behind after it exited (now cleaned up)",
                self.leaks.len()
            ));
            failure.details = leaks::summarize(&self.leaks);
            failure.raise();
        }
        if !self.output_complete {
            let mut failure = self.failure("a process it left running kept stdout or stderr open");
            failure.why = Some(
                "a daemon must not hold the output of the program that started it: \
                 redirect its standard streams to /dev/null (daemon(3) does) or close them"
                    .to_string(),
            );
            failure.raise();
        }
    }
}

/// "exit status 3", "killed by signal 9 (SIGKILL)".
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!(
            "killed by signal {signal} ({})",
            causes::signal_name(signal)
        ),
        (None, None) => format!("{status}"),
    }
}

/// The failure to report if `stderr` shows a Rust panic: `blank` gives a
/// failure about the right program, whose `what` and `why` are filled in.
pub(crate) fn panic_failure(stderr: &str, blank: impl FnOnce() -> Failure) -> Option<Failure> {
    let message = panic_message(stderr)?;
    let mut failure = blank();
    failure.what = format!("panicked: {message}");
    failure.why = Some(if message.contains("not yet implemented") {
        "this TODO is not done yet: replace the todo!() with your code".to_string()
    } else {
        "a lab program must never panic: report errors with a message and a \
         non-zero exit status instead of unwrap()/expect()"
            .to_string()
    });
    Some(failure)
}

/// The message of a Rust panic reported on stderr, if there is one:
/// `thread 'main' (123) panicked at src/lib.rs:4:5:` is followed by it.
fn panic_message(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    lines.find(|line| line.starts_with("thread '") && line.contains("panicked at"))?;
    Some(lines.next().unwrap_or("").trim().to_string())
}

/// Appends `body` followed by a newline if it lacks one; `(no newline at
/// end)` is made visible because it matters for line-based protocols.
fn push_block(text: &mut String, body: &str) {
    text.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        text.push_str("\n[no newline at end]\n");
    }
}
