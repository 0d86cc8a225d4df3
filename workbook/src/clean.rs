//! `cargo workbook clean`: removes what earlier grading runs left behind,
//! and nothing else.
//!
//! The grader names everything it creates (`tests/grader/src/sandbox.rs`):
//!
//! * a sandbox directory `$TMPDIR/workbook-<pid>-XXXXXX` per test, `<pid>`
//!   being the test process; the lab's program runs inside it, and its key
//!   files `ipc-key-N` are what `ftok(3)` turns into System V keys;
//! * POSIX IPC names `/wb<pid>x<n>-…`, `<pid>` again the test process.
//!
//! A test removes all of that when it ends, leftovers of the student's
//! program included. What survives comes from a test process that was
//! killed before it could clean up (Ctrl-C during `grade`, a crash).
//!
//! **The rule.** Something is a leftover, and `clean` removes it, only when
//! it belongs to you (you own or created it) and is demonstrably from a
//! grading run that is over:
//!
//! * a sandbox directory `workbook-<pid>-*` holding a grader key file,
//!   whose test process `<pid>` is gone (sandboxes of older graders, named
//!   `workbook-XXXXXX`, only once untouched for a day);
//! * a process of a run of a killed test: its working directory is inside
//!   such a sandbox (a lab program, or the run's shepherd, which the grader
//!   moves there), or its environment names such a sandbox
//!   (`WORKBOOK_SANDBOX`, which every program the grader starts gets, and a
//!   daemon keeps after `chdir("/")`), or carries a run mark
//!   `WORKBOOK_RUN=<pid>.<n>` whose test process `<pid>` is gone; and every
//!   process such a one started. The shepherd of each run normally kills
//!   its run's processes itself when its test process dies; what it could
//!   not (it was killed too, or stopped) is found here;
//! * a POSIX shared memory object, named semaphore or message queue named
//!   `wb<pid>x<n>-…` whose test process `<pid>` is gone;
//! * a System V queue, semaphore set or segment whose key `ftok` made from a
//!   key file in such a sandbox (same low 24 bits: device and inode) and
//!   that nobody uses: no process attached to the segment, no waiter on a
//!   semaphore, and no live process (other than the leftover processes
//!   above) was the last to use it.
//!
//! Everything else stays, even if it looks like a leftover: objects under
//! `IPC_PRIVATE` (nothing tells who made them), keys of other programs,
//! anything of a test that is still running, anything of another user.
//! `ipcs` and `ipcrm` deal with those by hand.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

/// How old a sandbox of an older grader (no pid in its name) must be
/// before it counts as a leftover: no test runs for a day.
const UNNAMED_SANDBOX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// One thing an earlier run left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// A process of a run whose test is over, still running.
    Process {
        pid: i32,
        command: String,
        /// How it is known to be one: `still running in /tmp/workbook-…`.
        reason: String,
    },
    /// A System V object made from a stale sandbox's key file.
    Sysv {
        kind: SysvKind,
        key: i32,
        id: i32,
        key_file: PathBuf,
    },
    /// A POSIX object under a grader name whose test process is gone.
    Posix {
        kind: PosixKind,
        /// The name as `*_open` takes it, e.g. `/wb42x0-ring`.
        name: String,
        test_pid: i32,
    },
    /// A stale sandbox directory.
    Sandbox { dir: PathBuf, test_pid: Option<i32> },
}

/// The three kinds of System V object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SysvKind {
    MessageQueue,
    SemaphoreSet,
    SharedMemory,
}

impl SysvKind {
    const ALL: [SysvKind; 3] = [
        SysvKind::MessageQueue,
        SysvKind::SemaphoreSet,
        SysvKind::SharedMemory,
    ];

    fn proc_file(self) -> &'static str {
        match self {
            SysvKind::MessageQueue => "/proc/sysvipc/msg",
            SysvKind::SemaphoreSet => "/proc/sysvipc/sem",
            SysvKind::SharedMemory => "/proc/sysvipc/shm",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            SysvKind::MessageQueue => "System V message queue",
            SysvKind::SemaphoreSet => "System V semaphore set",
            SysvKind::SharedMemory => "System V shared memory segment",
        }
    }

    /// The `ipcrm` option for this kind.
    fn ipcrm_flag(self) -> &'static str {
        match self {
            SysvKind::MessageQueue => "-q",
            SysvKind::SemaphoreSet => "-s",
            SysvKind::SharedMemory => "-m",
        }
    }
}

/// The three kinds of POSIX object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosixKind {
    SharedMemory,
    Semaphore,
    MessageQueue,
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leftover::Process {
                pid,
                command,
                reason,
            } => write!(f, "process {pid} ({command}), {reason}"),
            Leftover::Sysv {
                kind,
                key,
                id,
                key_file,
            } => write!(
                f,
                "{} key {:#010x} id {id} (ipcrm {} {id}), from {}",
                kind.noun(),
                *key as u32,
                kind.ipcrm_flag(),
                key_file.display()
            ),
            Leftover::Posix {
                kind,
                name,
                test_pid,
            } => {
                let noun = match kind {
                    PosixKind::SharedMemory => "POSIX shared memory",
                    PosixKind::Semaphore => "POSIX named semaphore",
                    PosixKind::MessageQueue => "POSIX message queue",
                };
                write!(f, "{noun} {name} (its test process {test_pid} is gone)")
            }
            Leftover::Sandbox { dir, test_pid } => match test_pid {
                Some(pid) => write!(
                    f,
                    "sandbox {} (its test process {pid} is gone)",
                    dir.display()
                ),
                None => write!(f, "sandbox {} (untouched for over a day)", dir.display()),
            },
        }
    }
}

/// What a search found: leftovers, and what it could not look at.
#[derive(Debug, Default)]
pub struct Found {
    /// In the order they are removed: processes, IPC objects, directories.
    pub leftovers: Vec<Leftover>,
    /// Lookalikes left alone, each with why.
    pub spared: Vec<String>,
    /// Places that could not be searched, each with why.
    pub notes: Vec<String>,
}

/// Looks for leftovers without removing anything.
pub fn find() -> Found {
    find_in(&std::env::temp_dir())
}

/// [`find`], with sandboxes looked for in `tmp`.
fn find_in(tmp: &Path) -> Found {
    let me = effective_uid();
    let mut found = Found::default();
    let sandboxes = stale_sandboxes(tmp, me, &mut found.notes);
    let processes = leftover_processes(&sandboxes, me);
    let dying: BTreeSet<i32> = processes.iter().map(|(pid, _, _)| *pid).collect();
    for (pid, command, reason) in processes {
        found.leftovers.push(Leftover::Process {
            pid,
            command,
            reason,
        });
    }
    let in_use = sysv_leftovers(&sandboxes, me, &dying, &mut found);
    posix_leftovers(me, &mut found);
    for sandbox in sandboxes {
        // Its key files are the only proof that those objects are ours.
        if sandbox
            .key_bases
            .iter()
            .any(|(_, file)| in_use.contains(file))
        {
            found.spared.push(format!(
                "sandbox {}: kept while System V objects made from its key files are in use",
                sandbox.dir.display()
            ));
            continue;
        }
        found.leftovers.push(Leftover::Sandbox {
            dir: sandbox.dir,
            test_pid: sandbox.test_pid,
        });
    }
    found
}

/// Runs `cargo workbook clean [--dry-run]`.
pub fn run(dry_run: bool) -> Result<ExitCode> {
    let found = find();
    for note in &found.notes {
        println!("note: {note}");
    }
    for spared in &found.spared {
        println!("left alone: {spared}");
    }
    if found.leftovers.is_empty() {
        println!("Nothing to clean: no leftovers of earlier grading runs.");
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "would remove" } else { "removing" };
    for leftover in &found.leftovers {
        println!("{verb}: {leftover}");
    }
    if dry_run {
        println!(
            "{} found; run `cargo workbook clean` without --dry-run to remove them.",
            count(found.leftovers.len())
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Processes first: stopping them may release objects they held, and
    // the sandboxes must stay until then, as the proof of what is ours.
    let mut failures = Vec::new();
    let mut killed = Vec::new();
    for leftover in &found.leftovers {
        if let Leftover::Process { pid, .. } = leftover {
            killed.push(*pid);
            if let Err(err) = remove(leftover) {
                failures.push(format!("{leftover}: {err}"));
            }
        }
    }
    wait_gone(&killed, Duration::from_secs(2));
    let after = if killed.is_empty() {
        found
    } else {
        find_again(&found)
    };
    let mut removed = killed.len() - failures.len();
    for leftover in &after.leftovers {
        if let Leftover::Process { .. } = leftover {
            failures.push(format!("{leftover}: still running after SIGKILL"));
        } else if let Err(err) = remove(leftover) {
            failures.push(format!("{leftover}: {err}"));
        } else {
            removed += 1;
        }
    }
    for failure in &failures {
        println!("could not remove: {failure}");
    }
    println!("Removed {}.", count(removed));
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Searches again once the leftover processes are stopped, and lists what
/// that changed: objects they held that are now free to go, or that are
/// still in use.
fn find_again(before: &Found) -> Found {
    let after = find();
    for leftover in &after.leftovers {
        if !before.leftovers.contains(leftover) {
            println!("removing: {leftover} (released by stopping the processes)");
        }
    }
    for spared in &after.spared {
        if !before.spared.contains(spared) {
            println!("left alone: {spared}");
        }
    }
    after
}

/// `1 leftover`, `2 leftovers`.
fn count(n: usize) -> String {
    if n == 1 {
        "1 leftover".to_string()
    } else {
        format!("{n} leftovers")
    }
}

/// Removes one leftover.
fn remove(leftover: &Leftover) -> std::io::Result<()> {
    match leftover {
        Leftover::Process { pid, .. } => {
            // SAFETY: kill(2) has no memory-safety preconditions.
            check(unsafe { libc::kill(*pid, libc::SIGKILL) })
        }
        Leftover::Sysv { kind, id, .. } => {
            // SAFETY: IPC_RMID takes no buffer (NULL is allowed for msgctl
            // and shmctl, semctl ignores its fourth argument).
            check(unsafe {
                match kind {
                    SysvKind::MessageQueue => {
                        libc::msgctl(*id, libc::IPC_RMID, std::ptr::null_mut())
                    }
                    SysvKind::SemaphoreSet => libc::semctl(*id, 0, libc::IPC_RMID),
                    SysvKind::SharedMemory => {
                        libc::shmctl(*id, libc::IPC_RMID, std::ptr::null_mut())
                    }
                }
            })
        }
        Leftover::Posix { kind, name, .. } => {
            let bare = name.trim_start_matches('/');
            match kind {
                PosixKind::SharedMemory => fs::remove_file(Path::new("/dev/shm").join(bare)),
                PosixKind::Semaphore => {
                    fs::remove_file(Path::new("/dev/shm").join(format!("sem.{bare}")))
                }
                PosixKind::MessageQueue => {
                    let c_name = CString::new(name.as_str())
                        .map_err(|_| std::io::Error::other("the name holds a NUL byte"))?;
                    // SAFETY: mq_unlink(3) with a NUL-terminated name.
                    check(unsafe { libc::mq_unlink(c_name.as_ptr()) })
                }
            }
        }
        Leftover::Sandbox { dir, .. } => fs::remove_dir_all(dir),
    }
}

/// A C return value as an `io::Result`.
fn check(ret: libc::c_int) -> std::io::Result<()> {
    if ret == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits until none of `pids` exists any more, at most `limit`.
fn wait_gone(pids: &[i32], limit: Duration) {
    let deadline = Instant::now() + limit;
    while pids.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sandbox directory whose test is over.
#[derive(Debug, Clone)]
struct Sandbox {
    dir: PathBuf,
    /// `dir` with symbolic links resolved, as `/proc/PID/cwd` shows it.
    real_dir: PathBuf,
    test_pid: Option<i32>,
    /// The `ftok` key bases (low 24 bits) of its key files, with the files.
    key_bases: Vec<(u32, PathBuf)>,
}

/// The sandboxes in the temporary directory whose test is over (see the
/// module documentation for the rule).
fn stale_sandboxes(tmp: &Path, me: u32, notes: &mut Vec<String>) -> Vec<Sandbox> {
    let Ok(entries) = fs::read_dir(tmp) else {
        notes.push(format!(
            "cannot list {}: sandboxes not searched",
            tmp.display()
        ));
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("workbook-") else {
            continue;
        };
        let dir = entry.path();
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let key_bases = key_files(&dir);
        if key_bases.is_empty() {
            continue; // no grader key file: not a sandbox
        }
        let test_pid = sandbox_pid(rest);
        let stale = match test_pid {
            Some(pid) => !alive(pid),
            None => untouched_for(&meta, UNNAMED_SANDBOX_AGE),
        };
        if stale {
            found.push(Sandbox {
                real_dir: fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone()),
                dir,
                test_pid,
                key_bases,
            });
        }
    }
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    found
}

/// The test pid in the rest of a sandbox name, `<pid>-XXXXXX`.
fn sandbox_pid(rest: &str) -> Option<i32> {
    let (pid, suffix) = rest.split_once('-')?;
    if suffix.is_empty() || pid.is_empty() || !pid.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// True when `meta`'s modification time is more than `age` ago.
fn untouched_for(meta: &fs::Metadata, age: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// The grader key files `ipc-key-N` in `dir`, with the low 24 bits of the
/// keys `ftok` makes from them: `(st_dev & 0xff) << 16 | (st_ino & 0xffff)`.
fn key_files(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_key_file = name
            .strip_prefix("ipc-key-")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if !is_key_file {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            let base = (((meta.dev() & 0xff) as u32) << 16) | ((meta.ino() & 0xffff) as u32);
            found.push((base, entry.path()));
        }
    }
    found
}

/// Our processes of runs whose test is over (see the module documentation
/// for the rule), with the reason each is one: (pid, command line, reason).
fn leftover_processes(sandboxes: &[Sandbox], me: u32) -> Vec<(i32, String, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let myself = std::process::id() as i32;
    let mut parents: Vec<(i32, i32)> = Vec::new();
    let mut found: Vec<(i32, String, String)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let owned = fs::metadata(entry.path()).is_ok_and(|m| m.uid() == me);
        if !owned || pid == myself || !alive(pid) {
            continue;
        }
        if let Some(parent) = parent_of(pid) {
            parents.push((pid, parent));
        }
        if let Some(reason) = leftover_reason(pid, sandboxes) {
            found.push((pid, command_line(pid), reason));
        }
    }
    // What those processes started, wherever it went.
    loop {
        let before = found.len();
        for (pid, parent) in &parents {
            if found.iter().any(|(p, _, _)| p == pid) {
                continue;
            }
            if found.iter().any(|(p, _, _)| p == parent) {
                let reason = format!("started by leftover process {parent}");
                found.push((*pid, command_line(*pid), reason));
            }
        }
        if found.len() == before {
            break;
        }
    }
    found.sort();
    found
}

/// Why process `pid` belongs to a run whose test is over, if it does.
fn leftover_reason(pid: i32, sandboxes: &[Sandbox]) -> Option<String> {
    if let Ok(cwd) = fs::read_link(format!("/proc/{pid}/cwd"))
        && let Some(sandbox) = sandboxes
            .iter()
            .find(|s| cwd.starts_with(&s.dir) || cwd.starts_with(&s.real_dir))
    {
        return Some(format!("still running in {}", sandbox.dir.display()));
    }
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    for var in environ.split(|&b| b == 0) {
        let var = String::from_utf8_lossy(var);
        if let Some(dir) = var.strip_prefix("WORKBOOK_SANDBOX=")
            && let Some(sandbox) = sandboxes
                .iter()
                .find(|s| Path::new(dir) == s.dir || Path::new(dir) == s.real_dir)
        {
            return Some(format!(
                "started in {} and still running elsewhere (a daemon)",
                sandbox.dir.display()
            ));
        }
        if let Some(mark) = var.strip_prefix("WORKBOOK_RUN=")
            && let Some(test_pid) = mark.split('.').next().and_then(|p| p.parse::<i32>().ok())
            && !alive(test_pid)
        {
            return Some(format!(
                "started by a graded run whose test process {test_pid} is gone"
            ));
        }
    }
    None
}

/// The parent pid of `pid`, from `/proc/PID/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// The command line of `pid`, or `?`.
fn command_line(pid: i32) -> String {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes)
        .trim_end_matches('\0')
        .replace('\0', " ");
    if text.is_empty() {
        "?".to_string()
    } else {
        text
    }
}

/// One row of a `/proc/sysvipc` table, by column name.
#[derive(Debug, Clone)]
pub struct SysvRow {
    pub kind: SysvKind,
    columns: HashMap<String, i64>,
}

impl SysvRow {
    fn get(&self, column: &str) -> Option<i64> {
        self.columns.get(column).copied()
    }

    pub fn key(&self) -> i32 {
        self.get("key").unwrap_or(0) as i32
    }

    pub fn id(&self) -> i32 {
        let column = match self.kind {
            SysvKind::MessageQueue => "msqid",
            SysvKind::SemaphoreSet => "semid",
            SysvKind::SharedMemory => "shmid",
        };
        self.get(column).unwrap_or(-1) as i32
    }
}

/// Parses a `/proc/sysvipc/{msg,sem,shm}` table: a header naming the
/// columns, then one row per object.
fn parse_sysv_table(kind: SysvKind, text: &str) -> Vec<SysvRow> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header.split_whitespace().collect();
    lines
        .filter_map(|line| {
            let values: Vec<&str> = line.split_whitespace().collect();
            if values.len() < names.len().min(2) {
                return None;
            }
            let columns = names
                .iter()
                .zip(values)
                .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
                .collect();
            Some(SysvRow { kind, columns })
        })
        .collect()
}

/// Every System V object the kernel lists; kinds whose table cannot be
/// read are named in `notes`.
pub fn sysv_rows(notes: &mut Vec<String>) -> Vec<SysvRow> {
    let mut rows = Vec::new();
    for kind in SysvKind::ALL {
        match fs::read_to_string(kind.proc_file()) {
            Ok(text) => rows.extend(parse_sysv_table(kind, &text)),
            Err(err) => notes.push(format!(
                "cannot read {}: {err}; {}s not searched",
                kind.proc_file(),
                kind.noun()
            )),
        }
    }
    rows
}

/// System V objects made from the key files of stale sandboxes; returns
/// the key files of those left alone because they are in use.
fn sysv_leftovers(
    sandboxes: &[Sandbox],
    me: u32,
    dying: &BTreeSet<i32>,
    found: &mut Found,
) -> BTreeSet<PathBuf> {
    let mut in_use_files = BTreeSet::new();
    let bases: HashMap<u32, &PathBuf> = sandboxes
        .iter()
        .flat_map(|s| s.key_bases.iter().map(|(base, file)| (*base, file)))
        .collect();
    if bases.is_empty() {
        return in_use_files;
    }
    for row in sysv_rows(&mut found.notes) {
        let key = row.key();
        if key == 0 || row.get("cuid") != Some(i64::from(me)) {
            continue;
        }
        let Some(key_file) = bases.get(&(key as u32 & 0x00ff_ffff)) else {
            continue;
        };
        let leftover = Leftover::Sysv {
            kind: row.kind,
            key,
            id: row.id(),
            key_file: (*key_file).clone(),
        };
        match in_use(&row, dying) {
            Some(why) => {
                found.spared.push(format!("{leftover}: {why}"));
                in_use_files.insert((*key_file).clone());
            }
            None => found.leftovers.push(leftover),
        }
    }
    in_use_files
}

/// Why an object counts as in use, or `None` when nobody uses it.
fn in_use(row: &SysvRow, dying: &BTreeSet<i32>) -> Option<String> {
    let live = |pid: i64| pid > 0 && !dying.contains(&(pid as i32)) && alive(pid as i32);
    match row.kind {
        SysvKind::SharedMemory => {
            let attached = row.get("nattch").unwrap_or(0);
            if attached == 1 {
                return Some("a process is attached to it".to_string());
            }
            if attached > 1 {
                return Some(format!("{attached} processes are attached to it"));
            }
            for column in ["cpid", "lpid"] {
                if let Some(pid) = row.get(column).filter(|pid| live(*pid)) {
                    return Some(format!("process {pid} ({column}) is still running"));
                }
            }
        }
        SysvKind::MessageQueue => {
            for column in ["lspid", "lrpid"] {
                if let Some(pid) = row.get(column).filter(|pid| live(*pid)) {
                    return Some(format!("process {pid} ({column}) is still running"));
                }
            }
        }
        SysvKind::SemaphoreSet => {
            let count = row.get("nsems").unwrap_or(0) as i32;
            for semnum in 0..count {
                // SAFETY: GETPID, GETNCNT and GETZCNT read one semaphore's
                // fields and take no fourth argument.
                let (last, waiting, zero) = unsafe {
                    (
                        libc::semctl(row.id(), semnum, libc::GETPID),
                        libc::semctl(row.id(), semnum, libc::GETNCNT),
                        libc::semctl(row.id(), semnum, libc::GETZCNT),
                    )
                };
                if waiting > 0 || zero > 0 {
                    return Some(format!("processes wait on semaphore {semnum}"));
                }
                if live(i64::from(last)) {
                    return Some(format!("process {last} is still running"));
                }
            }
        }
    }
    None
}

/// POSIX objects named `wb<pid>x<n>-…` whose test process is gone.
fn posix_leftovers(me: u32, found: &mut Found) {
    let shm = Path::new("/dev/shm");
    match fs::read_dir(shm) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                let (kind, bare) = match file.strip_prefix("sem.") {
                    Some(bare) => (PosixKind::Semaphore, bare.to_string()),
                    None => (PosixKind::SharedMemory, file.clone()),
                };
                let owned = entry.metadata().is_ok_and(|m| m.uid() == me);
                push_posix(found, kind, &bare, owned);
            }
        }
        Err(err) => found.notes.push(format!(
            "cannot list /dev/shm ({err}): POSIX shared memory and semaphores not searched"
        )),
    }
    match fs::read_dir("/dev/mqueue") {
        Ok(entries) => {
            for entry in entries.flatten() {
                let bare = entry.file_name().to_string_lossy().into_owned();
                let owned = entry.metadata().is_ok_and(|m| m.uid() == me);
                push_posix(found, PosixKind::MessageQueue, &bare, owned);
            }
        }
        Err(_) => found.notes.push(
            "/dev/mqueue is not mounted, so POSIX message queues cannot be listed \
             (`cargo workbook doctor` says how to mount it); the grader still removes \
             the queues of the tests that finish"
                .to_string(),
        ),
    }
}

/// Records `bare` (a name without its `/`) if it is a grader name of a
/// finished test and `owned` by us.
fn push_posix(found: &mut Found, kind: PosixKind, bare: &str, owned: bool) {
    let Some(test_pid) = grader_name_pid(bare) else {
        return;
    };
    if owned && !alive(test_pid) {
        found.leftovers.push(Leftover::Posix {
            kind,
            name: format!("/{bare}"),
            test_pid,
        });
    }
}

/// The test pid of a grader POSIX name `wb<pid>x<n>-…`, or `None` for any
/// other name.
pub fn grader_name_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("wb")?;
    let (pid, rest) = rest.split_once('x')?;
    let (n, _) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// True when a process `pid` exists and has not exited: a zombie, which
/// only waits for its parent to collect its status, counts as gone.
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and
        // may itself hold spaces and parentheses.
        Ok(stat) => stat
            .rfind(')')
            .and_then(|close| stat[close + 1..].split_whitespace().next())
            .is_none_or(|state| state != "Z"),
        Err(_) => Path::new("/proc").join(pid.to_string()).exists(),
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id() as i32));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        let pid = child.id() as i32;
        child.wait().expect("reaped");
        assert!(!alive(pid));
        assert!(!alive(0));
    }

    #[test]
    fn processes_of_runs_whose_test_is_gone_are_found_and_only_those() {
        use std::process::{Child, Command};
        let tmp = tempfile::tempdir().expect("a temporary directory");
        // A test process that is gone: a child, reaped.
        let mut gone = Command::new("true").spawn().expect("true runs");
        let dead = gone.id();
        gone.wait().expect("reaped");
        let me = std::process::id();
        let stale = tmp.path().join(format!("workbook-{dead}-aaaaaa"));
        let live = tmp.path().join(format!("workbook-{me}-bbbbbb"));
        for dir in [&stale, &live] {
            fs::create_dir(dir).expect("a sandbox");
            fs::write(dir.join("ipc-key-0"), "key").expect("a key file");
        }
        let sleeper = |dir: &Path, env: &[(&str, String)]| -> Child {
            Command::new("sleep")
                .arg("60")
                .current_dir(dir)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .spawn()
                .expect("sleep runs")
        };
        let stale_dir = stale.display().to_string();
        let mut children = vec![
            // A program still in its sandbox.
            sleeper(&stale, &[]),
            // A daemon that moved to /: its environment names the sandbox.
            sleeper(Path::new("/"), &[("WORKBOOK_SANDBOX", stale_dir)]),
            // A process whose sandbox is gone, marked with a dead test's run.
            sleeper(Path::new("/"), &[("WORKBOOK_RUN", format!("{dead}.3"))]),
            // Processes of a test still running (this one): never leftovers.
            sleeper(&live, &[("WORKBOOK_RUN", format!("{me}.1"))]),
            sleeper(
                Path::new("/"),
                &[("WORKBOOK_SANDBOX", live.display().to_string())],
            ),
        ];
        let found = find_in(tmp.path());
        let leftovers: Vec<&Leftover> = found
            .leftovers
            .iter()
            .filter(|l| matches!(l, Leftover::Process { .. }))
            .collect();
        let pid_of = |child: &Child| child.id() as i32;
        let listed = |child: &Child| {
            leftovers
                .iter()
                .any(|l| matches!(l, Leftover::Process { pid, .. } if *pid == pid_of(child)))
        };
        let verdicts: Vec<bool> = children.iter().map(listed).collect();
        for leftover in &leftovers {
            remove(leftover).expect("killed");
        }
        for child in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(verdicts, [true, true, true, false, false], "{leftovers:#?}");
        assert!(
            found.leftovers.iter().any(|l| matches!(
                l,
                Leftover::Sandbox { dir, .. } if *dir == stale
            )),
            "{:#?}",
            found.leftovers
        );
    }

    #[test]
    fn grader_names_carry_the_test_pid() {
        assert_eq!(grader_name_pid("wb4242x7-ring"), Some(4242));
        assert_eq!(grader_name_pid("wb1x0-"), Some(1));
        for other in [
            "wb4242x7",
            "wbx7-a",
            "wb42xa-b",
            "pulse-shm-1",
            "sem.wb1x0-a",
            "wb-1x0-a",
        ] {
            assert_eq!(grader_name_pid(other), None, "{other}");
        }
    }

    #[test]
    fn sandbox_names_carry_the_test_pid() {
        assert_eq!(sandbox_pid("4242-aB3xYz"), Some(4242));
        assert_eq!(sandbox_pid("aB3xYz"), None);
        assert_eq!(sandbox_pid("book-4242"), None);
        assert_eq!(sandbox_pid("4242-"), None);
    }

    #[test]
    fn sysv_tables_are_read_by_column_name() {
        let text = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                    1258291200          3   600                  4096   100   101      0     0     0     0     0          0          0 1700000000                     0                     0\n";
        let rows = parse_sysv_table(SysvKind::SharedMemory, text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key(), 1_258_291_200);
        assert_eq!(rows[0].id(), 3);
        assert_eq!(rows[0].get("nattch"), Some(0));
        assert_eq!(rows[0].get("cpid"), Some(100));
        assert!(parse_sysv_table(SysvKind::MessageQueue, "").is_empty());
    }

    #[test]
    fn an_attached_segment_is_in_use() {
        let text = "key shmid nattch cpid lpid\n5 1 2 0 0\n5 2 0 0 0\n";
        let rows = parse_sysv_table(SysvKind::SharedMemory, text);
        let none = BTreeSet::new();
        assert_eq!(
            in_use(&rows[0], &none).as_deref(),
            Some("2 processes are attached to it")
        );
        assert_eq!(in_use(&rows[1], &none), None);
    }

    #[test]
    fn a_queue_last_used_by_a_live_process_is_in_use_unless_it_is_a_leftover() {
        let me = std::process::id();
        let text = format!("key msqid lspid lrpid\n5 1 {me} 0\n");
        let rows = parse_sysv_table(SysvKind::MessageQueue, &text);
        assert!(in_use(&rows[0], &BTreeSet::new()).is_some());
        let dying: BTreeSet<i32> = [me as i32].into();
        assert_eq!(in_use(&rows[0], &dying), None);
    }
}
