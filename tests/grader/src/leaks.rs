//! Finding what a program left behind, and removing it.
//!
//! Each finder returns the leftovers it saw *and* removes them, so the test
//! can fail with a precise message while the machine stays clean.

use crate::Sandbox;
use crate::procfs::{self, ProcInfo, SysvKind};
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// What kind of thing was left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakKind {
    /// A process the program started, still running after it exited.
    RunningProcess,
    /// A process the program started that left its session or process
    /// group (`setsid`, `setpgid`, a double fork: a daemon), still running
    /// after it exited; or a daemon kept by an earlier step
    /// ([`Cmd::keep_daemons`](crate::Cmd::keep_daemons)) still running
    /// after a later one.
    Daemon,
    /// A child that exited but was never waited for.
    Zombie,
    /// A System V object under one of the sandbox's keys.
    Sysv(SysvKind),
    /// A POSIX shared memory object (`/dev/shm/NAME`).
    PosixShm,
    /// A POSIX named semaphore (`/dev/shm/sem.NAME`).
    PosixSemaphore,
    /// A POSIX message queue.
    PosixQueue,
    /// A FIFO the program created in the sandbox and did not remove.
    Fifo,
    /// A socket file (made by `bind` on a path) the program left in the
    /// sandbox.
    SocketFile,
}

/// One leftover, with the sentence that tells the student what to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// What was left.
    pub kind: LeakKind,
    /// Which object or process, exactly, for tests that look for it:
    /// `pid 4242 (sleep 100)`, `key 0x53008491, id 65538`, `IPC_PRIVATE,
    /// id 65538`, `/wb4242x0-jobs`, `[SANDBOX]/srv.fifo`.
    pub what: String,
    /// How failure messages name it ([`Leak::shown`]).
    shown: String,
}

impl Leak {
    /// A leftover that messages name as `what`.
    pub(crate) fn new(kind: LeakKind, what: String) -> Leak {
        Leak {
            kind,
            shown: what.clone(),
            what,
        }
    }

    /// The same leftover, named `shown` in messages.
    pub(crate) fn shown_as(self, shown: String) -> Leak {
        Leak { shown, ..self }
    }

    /// The same leftover with `change` applied to both of its names.
    pub(crate) fn map_names(self, change: impl Fn(&str) -> String) -> Leak {
        Leak {
            kind: self.kind,
            what: change(&self.what),
            shown: change(&self.shown),
        }
    }

    /// How failure messages name it: [`Leak::what`] without what differs
    /// from run to run, the way transcripts show it, so that the same
    /// mistake gives the same message in every run. A System V object is
    /// named by its key: `key ftok([KEY_FILE], 'S')` for a key of the
    /// sandbox's key file (with its project ID), `key IPC_PRIVATE`, or the
    /// key itself for one the program chose; its identifier, new in every
    /// run, is left out. A POSIX object's sandbox prefix is `[PREFIX]-`
    /// (`/[PREFIX]-jobs`), a sandbox path `[SANDBOX]`.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl Leak {
    /// The call that would have prevented this leftover.
    pub fn remedy(&self) -> &'static str {
        match self.kind {
            LeakKind::RunningProcess => {
                "every process your program starts must have finished before it exits: \
                 make children exit, and waitpid() for each of them"
            }
            LeakKind::Daemon => {
                "a daemon the program started is still running: stop it before exiting \
                 (kill() it, then wait until it is gone); leaving the session or process \
                 group hides a process from Ctrl-C and kill(-pgid), not from the grader"
            }
            LeakKind::Zombie => {
                "your program exited without waiting for this child, which stayed a zombie: \
                 call waitpid() on every child you fork()"
            }
            LeakKind::Sysv(SysvKind::MessageQueue) => {
                "remove the queue with msgctl(id, IPC_RMID, NULL) when you are done with it"
            }
            LeakKind::Sysv(SysvKind::SemaphoreSet) => {
                "remove the set with semctl(id, 0, IPC_RMID) when you are done with it"
            }
            LeakKind::Sysv(SysvKind::SharedMemory) => {
                "mark the segment with shmctl(id, IPC_RMID, NULL); it goes away after the last shmdt()"
            }
            LeakKind::PosixShm => "remove the name with shm_unlink() when you are done with it",
            LeakKind::PosixSemaphore => {
                "remove the name with sem_unlink() when you are done with it"
            }
            LeakKind::PosixQueue => "remove the name with mq_unlink() when you are done with it",
            LeakKind::Fifo => {
                "remove the FIFO with unlink() (std::fs::remove_file) before the program \
                 ends, on error paths and on SIGINT/SIGTERM too: a FIFO left on disk makes \
                 the next mkfifo() of that path fail with EEXIST, so the next server cannot start"
            }
            LeakKind::SocketFile => {
                "remove the socket file with unlink() (std::fs::remove_file) when the server \
                 stops, on error paths and on SIGINT/SIGTERM too: closing a socket does not \
                 remove its name, and the next bind() of that path fails with EADDRINUSE"
            }
        }
    }
}

impl Leak {
    /// What this kind of leftover is called in a report.
    fn noun(&self) -> &'static str {
        match self.kind {
            LeakKind::RunningProcess => "process still running",
            LeakKind::Daemon => "daemon still running",
            LeakKind::Zombie => "child never waited for",
            LeakKind::Sysv(SysvKind::MessageQueue) => "System V message queue",
            LeakKind::Sysv(SysvKind::SemaphoreSet) => "System V semaphore set",
            LeakKind::Sysv(SysvKind::SharedMemory) => "System V shared memory segment",
            LeakKind::PosixShm => "POSIX shared memory object",
            LeakKind::PosixSemaphore => "POSIX named semaphore",
            LeakKind::PosixQueue => "POSIX message queue",
            LeakKind::Fifo => "FIFO left on disk",
            LeakKind::SocketFile => "socket file left on disk",
        }
    }
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}\n    fix: {}",
            self.noun(),
            self.shown,
            self.remedy()
        )
    }
}

/// Report lines for `leaks`, one group per kind (in order of first
/// appearance), naming at most five leftovers of each kind.
pub(crate) fn summarize(leaks: &[Leak]) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut kinds: Vec<LeakKind> = Vec::new();
    for leak in leaks {
        if !kinds.contains(&leak.kind) {
            kinds.push(leak.kind);
        }
    }
    kinds
        .into_iter()
        .map(|kind| {
            let group: Vec<&Leak> = leaks.iter().filter(|leak| leak.kind == kind).collect();
            let mut names: Vec<&str> = group
                .iter()
                .take(SHOWN)
                .map(|leak| leak.shown.as_str())
                .collect();
            let more = group.len().saturating_sub(SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            names.dedup();
            format!(
                "{} ({}): {}{more}\n    fix: {}",
                group[0].noun(),
                group.len(),
                names.join(", "),
                group[0].remedy()
            )
        })
        .collect()
}

/// The processes of a finished run that are still there, from `tree`
/// (every descendant of the run's shepherd, see [`crate::shepherd`]):
/// zombies the shepherd adopted were never waited for; anything alive is
/// still running, and a process in another session or process group than
/// the program's is a daemon. The program itself (`program`, a zombie
/// until the shepherd is released) is not a leftover. Nothing is killed
/// here: releasing the shepherd does that.
pub(crate) fn processes(tree: &[ProcInfo], program: i32, shepherd: i32) -> Vec<Leak> {
    let (session, group) = match tree.iter().find(|p| p.pid == program) {
        Some(p) => (p.sid, p.pgid),
        None => (procfs::process(shepherd).map_or(0, |p| p.sid), program),
    };
    tree.iter()
        .filter(|p| p.pid != program)
        .filter_map(|p| {
            let (kind, how) = if p.state == 'Z' {
                if p.ppid != shepherd {
                    // Its parent is still there, and reported itself.
                    return None;
                }
                (LeakKind::Zombie, "")
            } else if p.sid != session {
                (LeakKind::Daemon, ", in a session of its own (setsid)")
            } else if p.pgid != group {
                (
                    LeakKind::Daemon,
                    ", in a process group of its own (setpgid)",
                )
            } else if p.ppid == shepherd {
                (LeakKind::RunningProcess, ", whose parent exited first")
            } else {
                (LeakKind::RunningProcess, "")
            };
            Some(Leak::new(
                kind,
                format!("pid {} ({}){how}", p.pid, p.command),
            ))
        })
        .collect()
}

/// The live processes of `tree` other than `program`, for messages about a
/// program that is still running or was stopped at its deadline, two lines
/// each: `pid 12 (sleep 314)` and, indented, `asleep in
/// clock_nanosleep(2), in a session of its own (setsid)`.
pub(crate) fn describe_running(tree: &[ProcInfo], program: i32) -> Vec<String> {
    // A session id of 0 is a real value: /proc shows it for a session whose
    // leader lives outside this PID namespace (a container's usual case).
    let (session, group) = tree
        .iter()
        .find(|p| p.pid == program)
        .map_or((None, program), |p| (Some(p.sid), p.pgid));
    tree.iter()
        .filter(|p| p.pid != program && p.state != 'Z')
        .map(|p| {
            let mut text = format!(
                "pid {} ({})\n  {}",
                p.pid,
                p.command,
                procfs::activity(p.pid)
            );
            if session.is_some_and(|session| p.sid != session) {
                text.push_str(", in a session of its own (setsid)");
            } else if p.pgid != group {
                text.push_str(", in a process group of its own (setpgid)");
            }
            text
        })
        .collect()
}

/// System V objects created under the sandbox's keys, removed with
/// `IPC_RMID` after they are recorded.
pub(crate) fn sysv(sandbox: &Sandbox) -> Vec<Leak> {
    let base = sandbox.key_base();
    procfs::sysv_objects()
        .into_iter()
        .filter(|object| object.key != 0 && (object.key as u32 & 0x00ff_ffff) == base)
        .map(|object| {
            remove_sysv(object.kind, object.id);
            sysv_leak(sandbox, object.kind, object.key, object.id)
        })
        .collect()
}

/// The leftover System V object `id` of `kind` under `key`: exactly, and
/// as messages show it (see [`Leak::shown`]).
pub(crate) fn sysv_leak(sandbox: &Sandbox, kind: SysvKind, key: i32, id: i32) -> Leak {
    let key = key as u32;
    let (exact, shown) = if key == 0 {
        ("IPC_PRIVATE".to_string(), "key IPC_PRIVATE".to_string())
    } else if key & 0x00ff_ffff == sandbox.key_base() {
        let proj = (key >> 24) as u8;
        let proj = if proj.is_ascii_graphic() {
            format!("'{}'", char::from(proj))
        } else {
            proj.to_string()
        };
        (
            format!("key {key:#010x}"),
            format!("key ftok([KEY_FILE], {proj})"),
        )
    } else {
        (format!("key {key:#010x}"), format!("key {key:#010x}"))
    };
    Leak::new(LeakKind::Sysv(kind), format!("{exact}, id {id}")).shown_as(shown)
}

/// Removes one System V object by identifier.
pub(crate) fn remove_sysv(kind: SysvKind, id: i32) {
    // SAFETY: IPC_RMID takes no buffer (NULL is allowed for msgctl and
    // shmctl, and semctl ignores its fourth argument for IPC_RMID).
    unsafe {
        match kind {
            SysvKind::MessageQueue => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            SysvKind::SemaphoreSet => libc::semctl(id, 0, libc::IPC_RMID),
            SysvKind::SharedMemory => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
        };
    }
}

/// POSIX shared memory, semaphores and message queues whose names carry the
/// sandbox's prefix, removed after they are recorded.
pub(crate) fn posix(sandbox: &Sandbox) -> Vec<Leak> {
    let prefix = sandbox.posix_prefix();
    let mut leaks = Vec::new();
    for name in entries_with_prefix(Path::new("/dev/shm"), "") {
        let (kind, bare) = match name.strip_prefix("sem.") {
            Some(bare) => (LeakKind::PosixSemaphore, bare),
            None => (LeakKind::PosixShm, name.as_str()),
        };
        if bare.starts_with(prefix) && fs::remove_file(Path::new("/dev/shm").join(&name)).is_ok() {
            leaks.push(posix_leak(sandbox, kind, bare));
        }
    }
    // Message queues are listed only where the mqueue file system is mounted;
    // the names the test handed out are checked directly in any case.
    let mut queues = entries_with_prefix(Path::new("/dev/mqueue"), prefix);
    queues.extend(
        sandbox
            .posix_names()
            .iter()
            .filter_map(|name| name.strip_prefix('/').map(str::to_string)),
    );
    queues.sort();
    queues.dedup();
    for name in queues {
        let Ok(c_name) = CString::new(format!("/{name}")) else {
            continue;
        };
        // SAFETY: mq_unlink(3) with a valid NUL-terminated name.
        if unsafe { libc::mq_unlink(c_name.as_ptr()) } == 0 {
            leaks.push(posix_leak(sandbox, LeakKind::PosixQueue, &name));
        }
    }
    leaks
}

/// The leftover POSIX object `/bare`, shown with the sandbox's prefix as
/// `[PREFIX]-`, as transcripts show it.
fn posix_leak(sandbox: &Sandbox, kind: LeakKind, bare: &str) -> Leak {
    let shown = match bare.strip_prefix(sandbox.posix_prefix()) {
        Some(rest) => format!("/[PREFIX]-{rest}"),
        None => format!("/{bare}"),
    };
    Leak::new(kind, format!("/{bare}")).shown_as(shown)
}

/// How deep below the sandbox directory FIFOs are looked for.
const FIFO_SEARCH_DEPTH: usize = 3;

/// Every FIFO in `dir` and its subdirectories (a few levels deep), sorted.
pub(crate) fn fifos_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    collect_fifos(dir, FIFO_SEARCH_DEPTH, &mut found);
    found.sort();
    found
}

fn collect_fifos(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_fifo() {
            found.push(entry.path());
        } else if file_type.is_dir() && depth > 0 {
            collect_fifos(&entry.path(), depth - 1, found);
        }
    }
}

/// FIFOs in the sandbox that were not there before the program started and
/// that it was not meant to leave (`kept`), removed after they are recorded.
pub(crate) fn fifos(sandbox: &Sandbox, before: &[PathBuf], kept: &[PathBuf]) -> Vec<Leak> {
    fifos_in(sandbox.dir())
        .into_iter()
        .filter(|path| !before.contains(path) && !kept.contains(path))
        .map(|path| {
            let shown = match path.strip_prefix(sandbox.dir()) {
                Ok(inside) => format!("[SANDBOX]/{}", inside.display()),
                Err(_) => path.display().to_string(),
            };
            let _ = fs::remove_file(&path);
            Leak::new(LeakKind::Fifo, shown)
        })
        .collect()
}

/// Names of the entries of `dir` that start with `prefix` (none if `dir`
/// does not exist).
fn entries_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix))
        .collect()
}
