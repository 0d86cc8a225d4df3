//! The shepherd: the one process that every graded run starts, and that
//! every process of the run descends from, whatever it does.
//!
//! # Why a shepherd
//!
//! A process group is not a container. A child that calls `setsid()` or
//! `setpgid()` leaves its group (every daemon does: `daemon(3)`, the
//! double fork), and then neither a kill of the group nor a look at its
//! members finds it. Ancestry is what a program cannot shed: every process
//! it starts is its descendant, and when a process in the middle of the
//! tree exits, its children are re-parented to the nearest ancestor that
//! declared itself a *child subreaper* (`prctl(PR_SET_CHILD_SUBREAPER)`,
//! see prctl(2)), or to init if there is none. So the grader starts a small
//! subreaper per run, the shepherd, and the shepherd starts the program:
//!
//! ```text
//! test process ── shepherd (subreaper, never execs) ── program ── its children …
//!                     └── every orphan of the run, re-parented here
//! ```
//!
//! The run's processes are then exactly the shepherd's descendants in
//! `/proc` (whatever their session or group), and parallel tests, each with
//! their own shepherds, never see each other's. A test-wide subreaper (the
//! test process itself, as the grader did before) cannot tell whose orphan
//! is whose; a cgroup could, but a writable one is rarely there for an
//! ordinary user, and a PID namespace would make the program pid 1, with
//! the signal semantics of init, which would falsify the lessons on signals.
//!
//! # What the shepherd does
//!
//! It is a `fork` of the test process that never execs, so everything it
//! does after the fork is a raw system call on memory prepared before the
//! fork: no allocation, no lock, no panic (the test process is
//! multi-threaded, and a forked child owns only a copy of the calling
//! thread). In order:
//!
//! 1. keeps only the descriptors it needs (the program's three standard
//!    streams, a socket to the test, a report pipe) and closes every other
//!    one, so that no descriptor of the test process (another run's pipe)
//!    stays open in it or in the program;
//! 2. ignores every signal it can (a program that signals its parent, as
//!    `kill(getppid(), SIGUSR1)` does, must not end it), blocks `SIGCHLD`
//!    for a `signalfd`, becomes a subreaper, names itself `wb-shepherd`
//!    and moves into the sandbox (so `cargo workbook clean` can tell whose
//!    it is);
//! 3. forks the program, which puts itself in a process group of its own,
//!    restores every signal to its default, drops core files and, when the
//!    test asks, capabilities, then execs; an exec that fails is reported
//!    on the report pipe, which is close-on-exec: the test reads it to
//!    end-of-file before `start` returns, as `std::process` does;
//! 4. replaces its own standard streams with `/dev/null`, so only the
//!    program's processes hold the output pipes;
//! 5. reaps the program when it ends and reports its raw wait status, with
//!    a flag that says whether the shepherd has any child left (one
//!    `waitid(WNOWAIT)`: when it has none, the run's tree is empty and the
//!    test need not look through `/proc`, which is most of the cost of a
//!    check). Nothing else is reaped yet: children the program never
//!    waited for, re-parented to the shepherd as zombies, stay for the
//!    test to see and report. (So does an orphan that ends while the
//!    program still runs, which init would have reaped: a zombie cannot
//!    tell whether it ended before or after it lost its parent. The grader
//!    before the shepherd reported those too.);
//! 6. on the test's word, either keeps the tree running and from then on
//!    reaps whatever dies, as init would (a daemon a test keeps, which a
//!    later step stops with `kill` and waits for with `kill(pid, 0)`), or
//!    *sweeps*: kills every descendant, again and again until none is
//!    left (a fork burst is outrun: a process with a pending `SIGKILL`
//!    cannot complete a `fork`), reaps them all and exits.
//!
//! If the test process dies (killed by `SIGKILL`, Ctrl-C), its end of the
//! socket closes and the shepherd sweeps at once: an interrupted run leaves
//! nothing running. If the program kills its shepherd (it can: same user),
//! the test notices the socket close, fails the run with that cause, and
//! finds the orphans by the `WORKBOOK_RUN` mark in their environment;
//! `cargo workbook clean` uses the same marks for what an interrupted
//! test left.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::procfs;

/// The shepherd's descriptor for its socket to the test.
const SOCK_FD: RawFd = 3;
/// The shepherd's descriptor for the report pipe (until the program runs).
const REPORT_FD: RawFd = 4;
/// The first descriptor the shepherd does not keep.
const FIRST_FREE_FD: RawFd = 5;

/// Messages, each eight bytes: a tag, a flag, two zero bytes, an `i32`.
mod tag {
    /// Report pipe: the program's pid.
    pub const STARTED: u8 = b'P';
    /// Report pipe: `execve` failed with this errno.
    pub const EXEC_FAILED: u8 = b'E';
    /// Report pipe: `chdir` into the sandbox failed with this errno.
    pub const CHDIR_FAILED: u8 = b'W';
    /// Report pipe: dropping a capability failed with this errno.
    pub const CAPS_FAILED: u8 = b'C';
    /// Report pipe: `fork` failed with this errno.
    pub const FORK_FAILED: u8 = b'F';
    /// Socket, to the test: the program ended with this raw wait status;
    /// the flag is 1 if the shepherd has no child left at all (the run's
    /// tree is empty: nothing to look for in /proc).
    pub const STATUS: u8 = b'S';
    /// Socket, to the test: the sweep is over, the shepherd exits.
    pub const SWEPT: u8 = b'X';
    /// Socket, to the shepherd: sweep and exit.
    pub const RELEASE: u8 = b'R';
    /// Socket, to the shepherd: leave the tree running, reap what dies.
    pub const KEEP: u8 = b'K';
}

/// How long a sweep may take before the shepherd gives up (a process
/// stuck in an uninterruptible sleep cannot die until it wakes).
const SWEEP_LIMIT: Duration = Duration::from_secs(5);

/// Everything the shepherd and the program need, prepared before the fork.
#[derive(Debug)]
pub(crate) struct Launch {
    /// The program to exec: a path as `execve` takes it (a relative one is
    /// taken from `cwd`, where the program starts).
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// The sandbox directory.
    pub cwd: CString,
    /// Whether the test writes to the program's standard input.
    pub piped_stdin: bool,
    /// Drop every capability before exec ([`crate::Cmd::unprivileged`]).
    pub unprivileged: bool,
    /// Drop the capabilities that bypass file permissions
    /// ([`crate::Cmd::obey_file_permissions`]).
    pub obey_permissions: bool,
    /// The value of `WORKBOOK_RUN` in `envp`, which marks the run's
    /// processes (see [`new_mark`]).
    pub mark: String,
}

/// A started run: its shepherd and the test's ends of the program's pipes.
#[derive(Debug)]
pub(crate) struct Started {
    pub shepherd: Shepherd,
    pub stdin: Option<File>,
    pub stdout: File,
    pub stderr: File,
}

/// Why a program could not be started.
#[derive(Debug)]
pub(crate) enum StartError {
    /// `execve` (or `chdir` into the sandbox) failed.
    Exec(io::Error),
    /// Dropping `CAP_DAC_OVERRIDE` failed (`EPERM` without `CAP_SETPCAP`).
    Permissions(io::Error),
    /// A pipe, a socket or a fork failed: the machine is out of something.
    System(io::Error),
}

/// The raw values the forked shepherd reads (pointers into [`Launch`]).
struct Plan {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    sock: RawFd,
    report: RawFd,
    unprivileged: bool,
    obey_permissions: bool,
}

/// Starts the shepherd, which starts the program; returns once the program
/// has exec'd (or failed to).
pub(crate) fn start(launch: &Launch) -> Result<Started, StartError> {
    reap_retired();
    let (stdin_read, stdin_write) = if launch.piped_stdin {
        let (r, w) = pipe().map_err(StartError::System)?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let (stdout_read, stdout_write) = pipe().map_err(StartError::System)?;
    let (stderr_read, stderr_write) = pipe().map_err(StartError::System)?;
    let (report_read, report_write) = pipe().map_err(StartError::System)?;
    let (ours, theirs) = socket_pair().map_err(StartError::System)?;

    let argv: Vec<*const libc::c_char> = launch
        .argv
        .iter()
        .map(|arg| arg.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = launch
        .envp
        .iter()
        .map(|var| var.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let plan = Plan {
        path: launch.path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: launch.cwd.as_ptr(),
        stdin: stdin_read.as_ref().map_or(-1, AsRawFd::as_raw_fd),
        stdout: stdout_write.as_raw_fd(),
        stderr: stderr_write.as_raw_fd(),
        sock: theirs.as_raw_fd(),
        report: report_write.as_raw_fd(),
        unprivileged: launch.unprivileged,
        obey_permissions: launch.obey_permissions,
    };

    // SAFETY: fork(2). The child runs only `shepherd_main`, which makes raw
    // system calls on `plan` (memory prepared above, not touched after the
    // fork) and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(StartError::System(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked child; see `shepherd_main`.
        unsafe { shepherd_main(&plan) }
    }
    // The shepherd's ends are its own now.
    drop((stdin_read, stdout_write, stderr_write, report_write, theirs));

    let mut shepherd = Shepherd {
        pid,
        program: 0,
        sock: ours,
        status: None,
        state: State::Watching,
        lost: None,
        mark: launch.mark.clone(),
        alone: false,
    };
    let report = read_to_end(report_read);
    let mut failure = None;
    for record in report.chunks_exact(8) {
        let (tag, _, value) = decode(record);
        match tag {
            tag::STARTED => shepherd.program = value,
            tag::EXEC_FAILED | tag::CHDIR_FAILED => {
                failure = Some(StartError::Exec(io::Error::from_raw_os_error(value)));
            }
            tag::CAPS_FAILED => {
                failure = Some(StartError::Permissions(io::Error::from_raw_os_error(value)));
            }
            tag::FORK_FAILED => {
                failure = Some(StartError::System(io::Error::from_raw_os_error(value)));
            }
            _ => {}
        }
    }
    if shepherd.program == 0 && failure.is_none() {
        failure = Some(StartError::System(io::Error::other(
            "the grader's shepherd process could not set itself up",
        )));
    }
    if let Some(failure) = failure {
        shepherd.release();
        return Err(failure);
    }
    Ok(Started {
        shepherd,
        stdin: stdin_write.map(File::from),
        stdout: File::from(stdout_read),
        stderr: File::from(stderr_read),
    })
}

/// What the test knows of a run's shepherd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The program may still be running.
    Watching,
    /// Told to keep the tree running and reap what dies.
    Kept,
    /// Swept, exited and reaped (or given up on).
    Released,
}

/// How the shepherd was lost, if it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lost {
    /// It died before it was released: the program (or a process it
    /// started) killed it, with this status.
    Died(ExitStatus),
    /// It stopped answering (stopped with `SIGSTOP`, say).
    Silent,
}

/// The test's handle on one run's shepherd.
#[derive(Debug)]
pub(crate) struct Shepherd {
    pid: libc::pid_t,
    program: libc::pid_t,
    sock: OwnedFd,
    status: Option<ExitStatus>,
    state: State,
    lost: Option<Lost>,
    mark: String,
    /// The shepherd said, with the program's status, that it had no child
    /// left: the run's tree is empty.
    alone: bool,
}

impl Shepherd {
    /// The program's pid (also its process group ID).
    pub(crate) fn program(&self) -> libc::pid_t {
        self.program
    }

    /// The shepherd's own pid.
    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// How the shepherd was lost, if it was.
    pub(crate) fn lost(&self) -> Option<&Lost> {
        self.lost.as_ref()
    }

    /// The program's exit status, if it has ended (without waiting).
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.receive(Some(Instant::now()), tag::STATUS);
        self.status
    }

    /// Waits until the program ends or `deadline` passes.
    pub(crate) fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        self.receive(Some(deadline), tag::STATUS);
        self.status
    }

    /// Every process of the run but the shepherd: the program and its
    /// descendants, whatever their session or process group.
    pub(crate) fn tree(&self) -> Vec<procfs::ProcInfo> {
        // Once the program has ended with no other child left, no process
        // remains that could start one.
        if self.state == State::Released || (self.alone && self.status.is_some()) {
            return Vec::new();
        }
        procfs::descendants(self.pid)
    }

    /// Lets the run's processes go on running after the program has
    /// ended; whatever of them dies from now on is reaped at once.
    pub(crate) fn keep(&mut self) {
        if self.state == State::Watching && self.lost.is_none() {
            self.send(tag::KEEP);
            self.state = State::Kept;
        }
    }

    /// Kills every process of the run, reaps them and the shepherd. Returns
    /// the program's status (`None` if the shepherd was lost before it
    /// could tell).
    pub(crate) fn release(&mut self) -> Option<ExitStatus> {
        if self.state == State::Released {
            return self.status;
        }
        reap_retired();
        let empty = self.alone && self.status.is_some() && self.state == State::Watching;
        self.state = State::Released;
        if self.lost.is_none() {
            self.send(tag::RELEASE);
            // With an empty tree there is nothing to wait for.
            let deadline = Instant::now() + SWEEP_LIMIT + Duration::from_secs(1);
            if !empty && !self.receive(Some(deadline), tag::SWEPT) && self.lost.is_none() {
                self.lost = Some(Lost::Silent);
            }
        }
        if self.lost.is_some() {
            self.force();
        } else {
            // The sweep is over; the shepherd exits at once and is reaped
            // later, without making the test wait for it.
            retire(self.pid);
        }
        self.status
    }

    /// Sends one message to the shepherd.
    fn send(&self, tag: u8) {
        let record = encode(tag, 0, 0);
        // SAFETY: send(2) of 8 bytes from a local array on our socket.
        // MSG_NOSIGNAL: a dead shepherd gives EPIPE, not SIGPIPE.
        unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                record.as_ptr().cast(),
                record.len(),
                libc::MSG_NOSIGNAL,
            )
        };
    }

    /// Reads messages until one tagged `wanted` has come (returns true),
    /// the shepherd is lost, or `deadline` passes (`None`: wait for ever).
    fn receive(&mut self, deadline: Option<Instant>, wanted: u8) -> bool {
        loop {
            if wanted == tag::STATUS && self.status.is_some() {
                return true;
            }
            if self.lost.is_some() {
                return false;
            }
            let timeout = match deadline {
                None => -1,
                Some(deadline) => {
                    // Rounded up, so that a wait never spins at 0 ms.
                    let left = deadline.saturating_duration_since(Instant::now());
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
                }
            };
            let mut poll = libc::pollfd {
                fd: self.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one pollfd we own.
            let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
            if ready < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return false;
            }
            if ready == 0 {
                return false;
            }
            let mut record = [0u8; 8];
            // SAFETY: recv(2) into a local 8-byte array.
            let got = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    record.as_mut_ptr().cast(),
                    record.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if got == 0 {
                self.shepherd_died();
                return false;
            }
            if got < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => continue,
                    _ => {
                        self.shepherd_died();
                        return false;
                    }
                }
            }
            let (tag, flag, value) = decode(&record);
            if tag == tag::STATUS {
                self.status = Some(ExitStatus::from_raw(value));
                self.alone = flag == 1;
            }
            if tag == wanted {
                return true;
            }
        }
    }

    /// The socket closed without a goodbye: the shepherd is dead (killed
    /// by the program, most likely). Reaps it and records how it died.
    fn shepherd_died(&mut self) {
        let status = self.reap_shepherd(Instant::now() + Duration::from_secs(2));
        self.lost = Some(Lost::Died(
            status.unwrap_or_else(|| ExitStatus::from_raw(libc::SIGKILL)),
        ));
    }

    /// Waits for the shepherd to exit (it is our child); SIGKILL at the
    /// deadline. Its status, if it could be reaped.
    fn reap_shepherd(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let mut nap = Duration::from_micros(100);
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) on our own child, a valid out-pointer.
            let got = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if got == self.pid {
                return Some(ExitStatus::from_raw(status));
            }
            if got < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return None; // already reaped
            }
            if Instant::now() >= deadline {
                // SAFETY: kill(2) of our own, unreaped child.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                let mut status = 0;
                // SAFETY: as above; SIGKILL ends it promptly.
                unsafe { libc::waitpid(self.pid, &mut status, 0) };
                return Some(ExitStatus::from_raw(status));
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(5));
        }
    }

    /// Cleans up without the shepherd's help: kills what is left of its
    /// tree and every process that carries this run's mark, then the
    /// shepherd. The orphans go to init, which reaps them.
    fn force(&mut self) {
        let deadline = Instant::now() + SWEEP_LIMIT;
        let alive = procfs::is_alive(self.pid);
        loop {
            let mut victims: Vec<i32> = if alive {
                procfs::descendants(self.pid)
                    .into_iter()
                    .filter(|p| p.state != 'Z')
                    .map(|p| p.pid)
                    .collect()
            } else {
                Vec::new()
            };
            victims.extend(procfs::marked(&self.mark));
            victims.sort_unstable();
            victims.dedup();
            if victims.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in victims {
                // The program's pid may have been reused once its parent
                // is gone; `marked` and `descendants` re-read /proc.
                // SAFETY: kill(2) takes no pointers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.status.is_none() {
            self.status = Some(ExitStatus::from_raw(libc::SIGKILL));
        }
        self.reap_shepherd(Instant::now());
    }
}

impl Drop for Shepherd {
    fn drop(&mut self) {
        self.release();
    }
}

/// Shepherds that have finished their sweep and are about to exit (or
/// have): reaped by [`reap_retired`] when the next run starts or ends.
static RETIRED: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

fn lock_retired() -> std::sync::MutexGuard<'static, Vec<libc::pid_t>> {
    RETIRED.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Hands a shepherd that is about to exit to [`reap_retired`]. The first
/// time, also registers [`reap_retired_at_exit`], so that the last ones do
/// not outlive the test process as zombies.
fn retire(pid: libc::pid_t) {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: atexit(3) with a function that stays valid for the life
        // of the process.
        unsafe { libc::atexit(reap_retired_at_exit) };
    });
    lock_retired().push(pid);
}

/// At exit: waits a little for the retired shepherds (each has finished
/// its sweep and is exiting) and reaps them.
extern "C" fn reap_retired_at_exit() {
    let Ok(mut retired) = RETIRED.try_lock() else {
        return;
    };
    let deadline = Instant::now() + Duration::from_millis(500);
    while !retired.is_empty() && Instant::now() < deadline {
        retired.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waitpid(2) on our own child, a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == 0 }
        });
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Reaps the retired shepherds that have exited.
fn reap_retired() {
    lock_retired().retain(|&pid| {
        let mut status = 0;
        // SAFETY: waitpid(2) on our own child, a valid out-pointer.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        got == 0
    });
}

/// A new value for `WORKBOOK_RUN`, the mark in the environment of every
/// process of one run: `<test pid>.<n>`, unique on the machine while the
/// test process lives.
pub(crate) fn new_mark() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A pipe, both ends close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A connected pair of sequenced-packet sockets, close-on-exec: each
/// message arrives whole, and each end sees the other close.
fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair(2) fills the two-element array.
    let made = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if made != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Everything `fd` yields until end-of-file.
fn read_to_end(fd: OwnedFd) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let mut file = File::from(fd);
    loop {
        match file.read_to_end(&mut bytes) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            _ => return bytes,
        }
    }
}

fn encode(tag: u8, flag: u8, value: i32) -> [u8; 8] {
    let v = value.to_ne_bytes();
    [tag, flag, 0, 0, v[0], v[1], v[2], v[3]]
}

/// `(tag, flag, value)` of a message.
fn decode(record: &[u8]) -> (u8, u8, i32) {
    match record {
        [tag, flag, _, _, a, b, c, d, ..] => (*tag, *flag, i32::from_ne_bytes([*a, *b, *c, *d])),
        _ => (0, 0, 0),
    }
}

// ---- the forked side: raw system calls only ------------------------------

/// Writes one message; errors are ignored (the reader may be gone).
///
/// # Safety
/// Async-signal-safe: write(2) from a local array.
unsafe fn tell(fd: RawFd, tag: u8, value: i32) {
    // SAFETY: as documented above.
    unsafe { tell_flagged(fd, tag, 0, value) }
}

/// [`tell`] with a flag byte.
///
/// # Safety
/// Async-signal-safe: write(2) from a local array.
unsafe fn tell_flagged(fd: RawFd, tag: u8, flag: u8, value: i32) {
    let record = encode(tag, flag, value);
    // SAFETY: write(2)/send(2) of 8 bytes from a local array.
    unsafe {
        if fd == SOCK_FD {
            libc::send(fd, record.as_ptr().cast(), 8, libc::MSG_NOSIGNAL);
        } else {
            libc::write(fd, record.as_ptr().cast(), 8);
        }
    }
}

/// errno, read the async-signal-safe way.
fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// The shepherd's whole life, in the child of `fork`.
///
/// # Safety
/// Must be called only in a freshly forked child, with `plan` pointing to
/// memory prepared before the fork. Only async-signal-safe system calls
/// are made; nothing is allocated; the function never returns.
unsafe fn shepherd_main(plan: &Plan) -> ! {
    // SAFETY: everything below is a raw system call on local memory or on
    // `plan`'s strings, which the fork copied and nobody changes.
    unsafe {
        // 1. Descriptors: the five we keep go above FIRST_FREE_FD first (so
        //    the moves below cannot overwrite one another), then to 0-4.
        let stdin = if plan.stdin >= 0 {
            plan.stdin
        } else {
            libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)
        };
        let keep = [stdin, plan.stdout, plan.stderr, plan.sock, plan.report];
        let mut high = [-1; 5];
        for (slot, fd) in high.iter_mut().zip(keep) {
            *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, FIRST_FREE_FD);
            if *slot < 0 {
                libc::_exit(126);
            }
        }
        let [hi_in, hi_out, hi_err, hi_sock, hi_report] = high;
        if libc::dup2(hi_in, 0) < 0
            || libc::dup2(hi_out, 1) < 0
            || libc::dup2(hi_err, 2) < 0
            || libc::dup3(hi_sock, SOCK_FD, libc::O_CLOEXEC) < 0
            || libc::dup3(hi_report, REPORT_FD, libc::O_CLOEXEC) < 0
        {
            libc::_exit(126);
        }
        close_from(FIRST_FREE_FD);

        // 2. Signals, subreaper, name, directory.
        for signal in 1..=64 {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP || signal == libc::SIGCHLD {
                continue;
            }
            set_disposition(signal, libc::SIG_IGN);
        }
        set_disposition(libc::SIGCHLD, libc::SIG_DFL);
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_SETMASK, &chld, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"wb-shepherd".as_ptr(), 0, 0, 0);
        if libc::chdir(plan.cwd) != 0 {
            tell(REPORT_FD, tag::CHDIR_FAILED, errno());
            libc::_exit(127);
        }

        // 3. The program, with clone(CLONE_VM | CLONE_VFORK) as posix_spawn
        //    does: the program borrows the shepherd's memory until it execs
        //    (the shepherd waits meanwhile), which spares copying the test
        //    process's page tables a second time.
        let stack = libc::mmap(
            std::ptr::null_mut(),
            PROGRAM_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        let program = if stack == libc::MAP_FAILED {
            -1
        } else {
            let top = stack.cast::<u8>().add(PROGRAM_STACK).cast::<libc::c_void>();
            libc::clone(
                program_entry,
                top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (plan as *const Plan).cast_mut().cast(),
            )
        };
        if program < 0 {
            tell(REPORT_FD, tag::FORK_FAILED, errno());
            libc::_exit(127);
        }
        libc::munmap(stack, PROGRAM_STACK);
        tell(REPORT_FD, tag::STARTED, program);
        libc::close(REPORT_FD);

        // 4. Hold no end of the program's pipes.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }

        // 5. and 6.
        let signals = libc::signalfd(-1, &chld, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        watch(program, signals)
    }
}

/// The kernel's `struct sigaction` for `rt_sigaction(2)` (x86-64 and
/// AArch64 lay it out alike): glibc's `sigaction` wrapper refuses signals
/// 32 and 33, which it keeps for itself, so the grader calls the kernel.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The size of the kernel's signal set, as `rt_sigaction` and
/// `rt_sigprocmask` want it.
const KERNEL_SIGSET_SIZE: usize = 8;

/// Sets the disposition of `signal` (`SIG_IGN` or `SIG_DFL`), no flags.
///
/// # Safety
/// Async-signal-safe: rt_sigaction(2) with a local structure.
unsafe fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) {
    let action = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: the kernel reads `action` during the call; no old action is
    // asked for. SIG_IGN and SIG_DFL need no restorer.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &action,
            std::ptr::null_mut::<KernelSigaction>(),
            KERNEL_SIGSET_SIZE,
        );
    }
}

/// Sets the signal mask to exactly `mask` (bit N-1 for signal N), glibc's
/// signals included, which its `sigprocmask` would leave alone.
///
/// # Safety
/// Async-signal-safe: rt_sigprocmask(2) with a local value.
unsafe fn set_mask(mask: u64) {
    // SAFETY: the kernel reads `mask` during the call.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_SIZE,
        );
    }
}

/// Closes every descriptor from `first` on.
///
/// # Safety
/// Async-signal-safe: close_range(2), or close(2) in a loop where the
/// kernel predates close_range (Linux 5.9).
unsafe fn close_from(first: RawFd) {
    // SAFETY: closing descriptors touches no memory.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0) == 0 {
            return;
        }
        let mut limit: libc::rlimit = std::mem::zeroed();
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(65536) as RawFd
        } else {
            1024
        };
        for fd in first..top {
            libc::close(fd);
        }
    }
}

/// The stack the program runs on between clone and exec.
const PROGRAM_STACK: usize = 64 * 1024;

/// Entry point of the clone that becomes the program.
extern "C" fn program_entry(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `plan` is the shepherd's `Plan`, alive while the shepherd
    // waits for this child to exec (CLONE_VFORK).
    unsafe { program_main(&*plan.cast::<Plan>()) }
}

/// The program's side of the clone: its own process group, default
/// signals, no core files, capabilities as asked, then exec. It shares the
/// shepherd's memory until exec: it writes nothing but its own stack.
///
/// # Safety
/// Only in the child of the shepherd's clone; see [`shepherd_main`].
unsafe fn program_main(plan: &Plan) -> ! {
    // SAFETY: raw system calls on local memory and `plan`'s strings.
    unsafe {
        libc::setpgid(0, 0);
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                set_disposition(signal, libc::SIG_DFL);
            }
        }
        set_mask(0);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        if plan.obey_permissions && libc::geteuid() == 0 {
            for capability in [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH] {
                if libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 {
                    tell(REPORT_FD, tag::CAPS_FAILED, errno());
                    libc::_exit(127);
                }
            }
        }
        if plan.unprivileged {
            drop_capabilities();
        }
        // The program reports its own pid before it execs: once it runs, it
        // may kill the shepherd before the shepherd's own report is written
        // (the shepherd repeats it, harmlessly).
        tell(REPORT_FD, tag::STARTED, libc::getpid());
        libc::execve(plan.path, plan.argv, plan.envp);
        tell(REPORT_FD, tag::EXEC_FAILED, errno());
        libc::_exit(127)
    }
}

/// Capabilities that let root ignore file permissions (`<linux/capability.h>`).
const CAP_DAC_OVERRIDE: libc::c_ulong = 1;
const CAP_DAC_READ_SEARCH: libc::c_ulong = 2;

/// For [`crate::Cmd::unprivileged`]: after exec the program has no
/// capability, even as root. `SECBIT_NOROOT` stops root from gaining every
/// capability at exec, the bounding set loses them all, and the ambient set
/// is cleared. Each call may fail for an ordinary user, who has nothing to
/// lose.
///
/// # Safety
/// Async-signal-safe: prctl(2) with integer arguments only.
unsafe fn drop_capabilities() {
    // SAFETY: prctl(2) with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_SET_SECUREBITS,
            libc::SECBIT_NOROOT as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        for capability in 0..64 {
            libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0);
        }
    }
}

/// What the shepherd is doing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The program runs: nothing is reaped.
    Running,
    /// The program has ended and its status was sent: nothing is reaped
    /// until the test has looked at the tree.
    Ended,
    /// The test keeps the tree: whatever dies is reaped at once.
    Reaping,
}

/// Steps 5 and 6: waits for the program, then for the test's word.
///
/// # Safety
/// Only in the shepherd; see [`shepherd_main`].
unsafe fn watch(program: libc::pid_t, signals: RawFd) -> ! {
    let mut phase = Phase::Running;
    let mut program_reaped = false;
    // SAFETY: raw system calls on local memory.
    unsafe {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: SOCK_FD,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: signals,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Without a signalfd (a very old kernel), look every 5 ms.
            let (count, timeout) = if signals >= 0 { (2, -1) } else { (1, 5) };
            libc::poll(fds.as_mut_ptr(), count, timeout);
            drain(signals);
            match phase {
                Phase::Running => {
                    if let Some(raw) = reap_program(program) {
                        program_reaped = true;
                        tell_flagged(SOCK_FD, tag::STATUS, u8::from(childless()), raw);
                        phase = Phase::Ended;
                    }
                }
                Phase::Ended => {}
                Phase::Reaping => reap_dead(program, &mut program_reaped),
            }
            if fds[0].revents == 0 {
                continue;
            }
            let mut record = [0u8; 8];
            let got = libc::recv(
                SOCK_FD,
                record.as_mut_ptr().cast(),
                record.len(),
                libc::MSG_DONTWAIT,
            );
            if got < 0 && matches!(errno(), libc::EAGAIN | libc::EINTR) {
                continue;
            }
            if got <= 0 {
                // The test process is gone: leave nothing behind.
                sweep(program, program_reaped, false, signals);
                libc::_exit(0);
            }
            match record[0] {
                tag::RELEASE => {
                    sweep(program, program_reaped, phase == Phase::Running, signals);
                    tell(SOCK_FD, tag::SWEPT, 0);
                    libc::_exit(0);
                }
                tag::KEEP if phase == Phase::Ended => {
                    phase = Phase::Reaping;
                    reap_dead(program, &mut program_reaped);
                }
                _ => {}
            }
        }
    }
}

/// Reads and discards every pending `SIGCHLD` from the signalfd.
///
/// # Safety
/// Async-signal-safe: read(2) into a local buffer.
unsafe fn drain(signals: RawFd) {
    if signals < 0 {
        return;
    }
    let mut buffer = [0u8; 8 * 128];
    // SAFETY: read(2) into a local buffer; the signalfd is non-blocking.
    unsafe { while libc::read(signals, buffer.as_mut_ptr().cast(), buffer.len()) > 0 {} }
}

/// The program's raw wait status if it has ended (it is then reaped: its
/// children, re-parented to the shepherd, are not).
///
/// # Safety
/// Async-signal-safe: waitpid(2).
unsafe fn reap_program(program: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waitpid(2) with a local out-pointer.
    let pid = unsafe { libc::waitpid(program, &mut status, libc::WNOHANG | libc::__WALL) };
    (pid == program).then_some(status)
}

/// Whether the shepherd has no child at all, alive or zombie: then the
/// run's whole tree is gone.
///
/// # Safety
/// Async-signal-safe: waitid(2) into a local structure, reaping nothing.
unsafe fn childless() -> bool {
    // SAFETY: waitid(2) fills a zeroed local siginfo_t; WNOWAIT reaps nothing.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
        libc::waitid(libc::P_ALL, 0, &mut info, flags) != 0 && errno() == libc::ECHILD
    }
}

/// Reaps every child that has ended.
///
/// # Safety
/// Async-signal-safe: waitpid(2).
unsafe fn reap_dead(program: libc::pid_t, program_reaped: &mut bool) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) with a local out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if pid <= 0 {
            return;
        }
        if pid == program {
            *program_reaped = true;
        }
    }
}

/// Kills every descendant, again and again, and reaps them, until the
/// shepherd has no child left (or [`SWEEP_LIMIT`] has passed). If the
/// program had not ended yet and `report` is set, its status is sent when
/// it is reaped.
///
/// # Safety
/// Only in the shepherd; raw system calls only.
unsafe fn sweep(program: libc::pid_t, program_reaped: bool, report: bool, signals: RawFd) {
    // SAFETY: raw system calls on local memory.
    unsafe {
        if !program_reaped {
            // The program's pid is still ours (a zombie at worst): its
            // group cannot have been handed to anyone else.
            libc::kill(-program, libc::SIGKILL);
            libc::kill(program, libc::SIGKILL);
        }
        let me = libc::getpid();
        let deadline = now_ms() + SWEEP_LIMIT.as_millis() as i64;
        let mut table = raw::Table::new();
        loop {
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL);
                if pid > 0 {
                    if pid == program && report {
                        tell(SOCK_FD, tag::STATUS, status);
                    }
                    continue;
                }
                if pid == 0 {
                    break;
                }
                if errno() == libc::EINTR {
                    continue;
                }
                // ECHILD: no child left at all.
                table.free();
                return;
            }
            if now_ms() > deadline {
                table.free();
                return;
            }
            raw::kill_descendants(&mut table, me);
            let mut poll = libc::pollfd {
                fd: signals,
                events: libc::POLLIN,
                revents: 0,
            };
            libc::poll(&mut poll, if signals >= 0 { 1 } else { 0 }, 5);
            drain(signals);
        }
    }
}

/// Milliseconds on the monotonic clock.
///
/// # Safety
/// Async-signal-safe: clock_gettime(2).
unsafe fn now_ms() -> i64 {
    // SAFETY: clock_gettime fills a local timespec.
    unsafe {
        let mut now: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
        now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
}

/// Reading `/proc` and killing a tree with raw system calls and no heap,
/// for the shepherd (a forked copy of a multi-threaded process).
mod raw {

    /// At most this many processes are looked at per scan; a machine
    /// running more than that gets the rest in the next round.
    const CAPACITY: usize = 1 << 16;

    /// pids and parent pids of every process, in increasing pid order (the
    /// order in which `/proc` lists them), in memory from mmap(2).
    pub(super) struct Table {
        base: *mut libc::c_void,
    }

    /// One entry: pid, parent pid, whether it is a descendant.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Entry {
        pid: i32,
        ppid: i32,
        mine: bool,
    }

    impl Table {
        pub(super) fn new() -> Table {
            Table {
                base: std::ptr::null_mut(),
            }
        }

        fn bytes() -> usize {
            CAPACITY * std::mem::size_of::<Entry>()
        }

        /// The entries, mapped on first use (`None` if mmap failed).
        fn entries(&mut self) -> Option<&mut [Entry]> {
            if self.base.is_null() {
                // SAFETY: an anonymous private mapping; no memory of ours.
                let base = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        Self::bytes(),
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                if base == libc::MAP_FAILED {
                    return None;
                }
                self.base = base;
            }
            // SAFETY: the mapping holds CAPACITY entries, zero-filled (a
            // valid Entry), and lives until `free`.
            Some(unsafe { std::slice::from_raw_parts_mut(self.base.cast(), CAPACITY) })
        }

        pub(super) fn free(&mut self) {
            if !self.base.is_null() {
                // SAFETY: unmaps what `entries` mapped.
                unsafe { libc::munmap(self.base, Self::bytes()) };
                self.base = std::ptr::null_mut();
            }
        }
    }

    /// Kills every descendant of `root` (found through parent pids in
    /// `/proc`) with SIGKILL, through a pidfd where the kernel has them, so
    /// that a pid reused since the scan is never hit.
    pub(super) fn kill_descendants(table: &mut Table, root: libc::pid_t) {
        let Some(all) = table.entries() else {
            return;
        };
        let len = scan(all);
        let entries = &mut all[..len];
        // Mark descendants; parents usually precede children, so few
        // passes are needed.
        loop {
            let mut changed = false;
            for i in 0..entries.len() {
                if entries[i].mine {
                    continue;
                }
                let parent = entries[i].ppid;
                if parent == root || find(entries, parent).is_some_and(|j| entries[j].mine) {
                    entries[i].mine = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for i in 0..entries.len() {
            if entries[i].mine {
                kill_checked(entries, entries[i].pid, root);
            }
        }
    }

    /// Index of `pid` in the sorted entries.
    fn find(entries: &[Entry], pid: i32) -> Option<usize> {
        entries.binary_search_by_key(&pid, |e| e.pid).ok()
    }

    /// SIGKILL to `pid`, if it is still a descendant: through a pidfd, the
    /// process is checked after it is pinned.
    fn kill_checked(entries: &[Entry], pid: i32, root: libc::pid_t) {
        // SAFETY: raw system calls with integer arguments.
        unsafe {
            let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
            if pidfd < 0 {
                // No pidfds (Linux < 5.3): a plain kill, the scan is recent.
                libc::kill(pid, libc::SIGKILL);
                return;
            }
            let still_ours = match parent_of(pid) {
                Some(parent) => {
                    parent == root || find(entries, parent).is_some_and(|j| entries[j].mine)
                }
                None => false,
            };
            if still_ours {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd,
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
            libc::close(pidfd);
        }
    }

    /// Fills `entries` with every process in /proc; returns how many.
    fn scan(entries: &mut [Entry]) -> usize {
        let mut len = 0;
        // SAFETY: open/getdents64/close on local buffers.
        unsafe {
            let dir = libc::open(
                c"/proc".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if dir < 0 {
                return 0;
            }
            let mut buffer = [0u8; 4096];
            loop {
                let got =
                    libc::syscall(libc::SYS_getdents64, dir, buffer.as_mut_ptr(), buffer.len());
                if got <= 0 {
                    break;
                }
                let got = got as usize;
                let mut at = 0;
                while at + 19 < got {
                    // struct linux_dirent64: u64 ino, i64 off, u16 reclen,
                    // u8 type, then the NUL-terminated name.
                    let reclen = u16::from_ne_bytes([buffer[at + 16], buffer[at + 17]]) as usize;
                    if reclen == 0 {
                        break;
                    }
                    let name = &buffer[at + 19..(at + reclen).min(got)];
                    if let Some(pid) = parse_pid(name)
                        && len < entries.len()
                        && let Some(ppid) = parent_of(pid)
                    {
                        entries[len] = Entry {
                            pid,
                            ppid,
                            mine: false,
                        };
                        len += 1;
                    }
                    at += reclen;
                }
            }
            libc::close(dir);
        }
        len
    }

    /// The decimal number at the start of a NUL-terminated name.
    fn parse_pid(name: &[u8]) -> Option<i32> {
        let mut value: i32 = 0;
        let mut digits = 0;
        for &byte in name {
            match byte {
                b'0'..=b'9' => {
                    value = value.checked_mul(10)?.checked_add(i32::from(byte - b'0'))?;
                    digits += 1;
                }
                0 => break,
                _ => return None,
            }
        }
        (digits > 0).then_some(value)
    }

    /// The parent pid of `pid`, from `/proc/PID/stat` (the fourth field,
    /// counted after the `)` that ends the command name).
    pub(super) fn parent_of(pid: i32) -> Option<i32> {
        let mut path = [0u8; 32];
        let prefix = b"/proc/";
        path[..prefix.len()].copy_from_slice(prefix);
        let mut at = prefix.len();
        let mut digits = [0u8; 12];
        let mut n = 0;
        let mut rest = pid;
        loop {
            digits[n] = b'0' + (rest % 10) as u8;
            n += 1;
            rest /= 10;
            if rest == 0 || n == digits.len() {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            path[at] = digits[n];
            at += 1;
        }
        let suffix = b"/stat\0";
        path[at..at + suffix.len()].copy_from_slice(suffix);
        let mut stat = [0u8; 512];
        // SAFETY: open/read/close with local buffers; `path` ends in NUL.
        let got = unsafe {
            let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return None;
            }
            let got = libc::read(fd, stat.as_mut_ptr().cast(), stat.len());
            libc::close(fd);
            got
        };
        if got <= 0 {
            return None;
        }
        let stat = &stat[..got as usize];
        let close = stat.iter().rposition(|&b| b == b')')?;
        // ") S 1234 ..." : skip ") ", the state and a space.
        let mut fields = stat[close + 1..]
            .split(|&b| b == b' ')
            .filter(|f| !f.is_empty());
        fields.next()?; // state
        parse_pid(fields.next()?)
    }
}

/// The panic message for a program that could not be started.
pub(crate) fn describe_start_error(program: &str, error: &StartError) -> String {
    match error {
        StartError::Exec(e) => format!("grader: cannot start {program}: {e}"),
        StartError::Permissions(e) => format!(
            "grader: cannot start {program} without root's permission override (dropping \
             CAP_DAC_OVERRIDE needs CAP_SETPCAP, which this container lacks): {e}. \
             Run the tests as an ordinary user."
        ),
        StartError::System(e) => format!("grader: cannot start {program}: {e}"),
    }
}
