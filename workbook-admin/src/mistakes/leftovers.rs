//! What a mistake's runs left on the machine: processes, sandboxes, POSIX
//! and System V IPC objects. The runner calls [`Machine::snapshot`] before
//! a mistake's runs and [`Machine::left_since`] after them.
//!
//! Attribution matters on a shared machine, where other people's tests
//! create and remove objects all the time:
//!
//! * processes: the runner is a child subreaper (`PR_SET_CHILD_SUBREAPER`),
//!   so whatever its test processes leave running, or unreaped, becomes its
//!   own child; and a process whose working directory is inside one of the
//!   runs' `TMPDIR` is a lab program a test started;
//! * sandboxes: every run has a `TMPDIR` of its own, which must be empty
//!   afterwards;
//! * POSIX objects (`/dev/shm`, `/dev/mqueue`): the grader names them
//!   `wb<pid>x<n>-…` after the test process, whose pid the runner knows;
//!   they are reported and removed;
//! * System V objects: new since the snapshot, and either under a key that
//!   `ftok` makes from a key file seen in one of the runs' sandboxes, or
//!   last used by a process seen in the runner's tree during the runs
//!   ([`Observed`] watches both while the runs go on). They are reported,
//!   never removed (the grader removes what it finds; the `leftovers` step
//!   of `verify` shows what it missed).
//!
//! A program that makes a POSIX object under a name the test did not give
//! it, or a private System V object no process of the runs touched last,
//! is not charged here: the `leftovers` step of `verify`, which compares
//! the whole tables before and after, reports it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// One System V object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SysvObject {
    kind: &'static str,
    flag: &'static str,
    key: i64,
    id: i64,
    /// The pids the kernel records for it (creator, last operation).
    pub pids: Vec<i32>,
    /// When it was created or last changed by `IPC_SET` (`ctime`, seconds
    /// since the epoch).
    ctime: i64,
}

/// What was seen while a mistake's runs went on: the low 24 bits of the
/// System V keys their key files make (device and inode, as `ftok` takes
/// them), and the pids of the runs' processes and their descendants.
#[derive(Debug, Default)]
pub struct Observed {
    /// Key base → the first and last second it was seen: inode numbers
    /// are reused, so only an object made while the key file existed can
    /// come from it.
    key_bases: BTreeMap<i64, (i64, i64)>,
    pids: BTreeSet<i32>,
}

impl Observed {
    /// Looks once at the sandboxes in `tmp_dirs`, and at the descendants
    /// of `roots` (the test processes) in `parents` (see [`parents`]).
    pub fn look(&mut self, tmp_dirs: &[PathBuf], roots: &[i32], parents: &[(i32, i32)]) {
        for dir in tmp_dirs {
            for sandbox in fs::read_dir(dir).into_iter().flatten().flatten() {
                for file in fs::read_dir(sandbox.path()).into_iter().flatten().flatten() {
                    if !file.file_name().to_string_lossy().starts_with("ipc-key-") {
                        continue;
                    }
                    if let Ok(meta) = file.metadata() {
                        let base = ((meta.dev() & 0xff) << 16) | (meta.ino() & 0xffff);
                        let now = now();
                        let seen = self.key_bases.entry(base as i64).or_insert((now, now));
                        seen.1 = now;
                    }
                }
            }
        }
        self.pids.extend(descendants(roots, parents));
    }
}

/// What the machine held before a mistake's runs.
#[derive(Debug, Default)]
pub struct Machine {
    sysv: BTreeSet<(&'static str, i64)>,
    posix: BTreeSet<PathBuf>,
}

impl Machine {
    /// The System V objects and POSIX entries alive now.
    pub fn snapshot() -> Machine {
        Machine {
            sysv: sysv_objects().iter().map(|o| (o.kind, o.id)).collect(),
            posix: posix_entries().into_iter().collect(),
        }
    }

    /// What the runs left: every leftover described with how to remove it,
    /// and the System V objects that may be theirs (see [`Suspect`]).
    /// `run_pids` are the test processes, `tmp_dirs` their `TMPDIR`s,
    /// `known` the runner's children that are not leftovers (a build, the
    /// runs of other mistakes). Leftover processes are killed and reaped,
    /// POSIX objects named after a test process removed.
    pub fn left_since(
        &self,
        run_pids: &[u32],
        tmp_dirs: &[PathBuf],
        known: &[u32],
        observed: &Observed,
    ) -> (Vec<String>, Vec<Suspect>) {
        let mut found = Vec::new();
        found.extend(stray_processes(tmp_dirs, known, observed));
        for dir in tmp_dirs {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                found.push(format!(
                    "sandbox left behind: {} (the grader removes its sandboxes)",
                    entry.path().display()
                ));
            }
        }
        let prefixes: Vec<String> = run_pids.iter().map(|pid| format!("wb{pid}x")).collect();
        for path in posix_entries() {
            if self.posix.contains(&path) {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bare = name.strip_prefix("sem.").unwrap_or(&name);
            if prefixes.iter().any(|p| bare.starts_with(p.as_str())) {
                found.push(format!("POSIX IPC object left behind: {}", path.display()));
                let _ = fs::remove_file(&path);
            }
        }
        (found, self.new_sysv_objects(observed))
    }

    /// System V objects that appeared during the runs and may be theirs.
    fn new_sysv_objects(&self, observed: &Observed) -> Vec<Suspect> {
        sysv_objects()
            .into_iter()
            .filter(|o| !self.sysv.contains(&(o.kind, o.id)))
            .filter(|o| {
                // Made from one of the runs' key files while it existed
                // (give or take a second: ctime counts whole seconds) …
                let keyed = o.key != 0
                    && observed
                        .key_bases
                        .get(&(o.key & 0xff_ffff))
                        .is_some_and(|(first, last)| (first - 1..=last + 1).contains(&o.ctime));
                // … or last used by one of their processes.
                let used = o.pids.iter().any(|pid| observed.pids.contains(pid));
                // Last used by a live process that is not theirs: someone
                // else's, whatever the key says.
                let foreign = o
                    .pids
                    .iter()
                    .any(|pid| !observed.pids.contains(pid) && is_alive(*pid));
                (keyed || used) && !foreign
            })
            .map(|o| Suspect {
                kind: o.kind,
                id: o.id,
                what: o.describe(),
            })
            .collect()
    }
}

/// A System V object that appeared during a mistake's runs and looks like
/// theirs. Objects of other tests on the machine can look the same for a
/// while (inode numbers, and so keys, are reused): only one still there
/// when every mistake has run ([`Suspect::still_there`]) is a leftover.
#[derive(Debug, Clone)]
pub struct Suspect {
    kind: &'static str,
    id: i64,
    /// The leftover, described with the command that removes it.
    pub what: String,
}

impl Suspect {
    /// True while the object exists.
    pub fn still_there(&self) -> bool {
        sysv_objects()
            .iter()
            .any(|o| o.kind == self.kind && o.id == self.id)
    }
}

/// Every entry of `/dev/shm` and `/dev/mqueue`.
fn posix_entries() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in ["/dev/shm", "/dev/mqueue"] {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            found.push(entry.path());
        }
    }
    found
}

impl SysvObject {
    /// `System V message queue key 0x… id N (ipcrm -q N)`.
    pub fn describe(&self) -> String {
        format!(
            "{} key {:#010x} id {} (ipcrm {} {})",
            self.kind, self.key as u32, self.id, self.flag, self.id
        )
    }
}

/// The test process a grader's POSIX name is named after: `wb<pid>x<n>-…`
/// (`sem.` in front for a named semaphore in `/dev/shm`).
pub fn grader_pid(name: &str) -> Option<i32> {
    let bare = name.strip_prefix("sem.").unwrap_or(name);
    let rest = bare.strip_prefix("wb")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..]
        .starts_with('x')
        .then(|| digits.parse().ok())?
}

/// Every System V object, from `/proc/sysvipc`.
pub fn sysv_objects() -> Vec<SysvObject> {
    let mut found = Vec::new();
    // The columns holding pids (msg lspid, lrpid; shm cpid, lpid; sem
    // none), and ctime.
    let tables: [(&str, &'static str, &'static str, &[usize], usize); 3] = [
        ("msg", "System V message queue", "-q", &[5, 6], 13),
        ("sem", "System V semaphore set", "-s", &[], 9),
        ("shm", "System V shared memory segment", "-m", &[4, 5], 13),
    ];
    for (file, kind, flag, pid_columns, ctime_column) in tables {
        let Ok(table) = fs::read_to_string(format!("/proc/sysvipc/{file}")) else {
            continue;
        };
        for row in table.lines().skip(1) {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let (Some(key), Some(id)) = (
                columns.first().and_then(|k| k.parse().ok()),
                columns.get(1).and_then(|i| i.parse().ok()),
            ) else {
                continue;
            };
            let mut pids: Vec<i32> = pid_columns
                .iter()
                .filter_map(|c| columns.get(*c).and_then(|p| p.parse().ok()))
                .collect();
            if file == "sem" {
                let count: i32 = columns.get(3).and_then(|n| n.parse().ok()).unwrap_or(0);
                pids.extend(semaphore_pids(id as i32, count));
            }
            let ctime = columns
                .get(ctime_column)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            found.push(SysvObject {
                kind,
                flag,
                key,
                id,
                pids,
                ctime,
            });
        }
    }
    found
}

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// True while `pid` runs (a zombie counts).
pub fn is_alive(pid: i32) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid of the last `semop` on each semaphore of set `id` (GETPID).
fn semaphore_pids(id: i32, count: i32) -> Vec<i32> {
    (0..count)
        // SAFETY: GETPID takes no argument beyond the set and the index.
        .map(|index| unsafe { libc::semctl(id, index, libc::GETPID) })
        .filter(|pid| *pid > 0)
        .collect()
}

/// `(pid, parent pid)` of every process.
pub fn parents() -> Vec<(i32, i32)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces and parentheses.
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        found.push((pid, ppid));
    }
    found
}

/// `(pid, parent pid, working directory)` of every process.
fn processes() -> Vec<(i32, i32, Option<PathBuf>)> {
    parents()
        .into_iter()
        .map(|(pid, ppid)| (pid, ppid, fs::read_link(format!("/proc/{pid}/cwd")).ok()))
        .collect()
}

/// The pids of the descendants of `roots` (the roots included).
fn descendants(roots: &[i32], parents: &[(i32, i32)]) -> BTreeSet<i32> {
    let mut found: BTreeSet<i32> = roots.iter().copied().collect();
    loop {
        let before = found.len();
        for (pid, ppid) in parents {
            if found.contains(ppid) {
                found.insert(*pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// The command line of `pid`, for a message.
fn command_of(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if words.is_empty() {
        "exited, not reaped".to_string()
    } else {
        words.join(" ")
    }
}

/// Processes the runs left: children of this process (orphans it adopted
/// as subreaper) that are not `known` and were seen among the runs'
/// processes, and any process working inside a run's `TMPDIR`, or told by
/// its environment to use one. Each is killed and, if it is a child,
/// reaped.
fn stray_processes(tmp_dirs: &[PathBuf], known: &[u32], observed: &Observed) -> Vec<String> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for (pid, ppid, cwd) in processes() {
        if known.contains(&(pid as u32)) || pid == me {
            continue;
        }
        let inside = |path: &PathBuf| tmp_dirs.iter().any(|dir| path.starts_with(dir));
        let ours = observed.pids.contains(&pid)
            || cwd.as_ref().is_some_and(inside)
            || tmp_of(pid).as_ref().is_some_and(inside);
        if ours {
            found.push(format!("process left behind: {pid} ({})", command_of(pid)));
            kill(pid, ppid == me);
        }
    }
    found
}

/// Children of this process nobody knows: adopted orphans that no run
/// claimed. Each is killed and reaped.
pub fn unclaimed_orphans(known: &[u32]) -> Vec<String> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for (pid, ppid) in parents() {
        if ppid == me && !known.contains(&(pid as u32)) {
            found.push(format!(
                "process left behind by the runs of some mistake: {pid} ({})",
                command_of(pid)
            ));
            kill(pid, true);
        }
    }
    found
}

/// Kills `pid`, and reaps it if it is a child of this process.
fn kill(pid: i32, child: bool) {
    // SAFETY: kill and waitpid take plain integers; the pid is a process
    // the runs left, found just before.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        if child {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The `TMPDIR` in the environment of `pid`, if readable.
fn tmp_of(pid: i32) -> Option<PathBuf> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"TMPDIR="))
        .map(|value| PathBuf::from(String::from_utf8_lossy(value).into_owned()))
}

/// Makes this process the reaper of its orphaned descendants, so that what
/// a test process leaves behind comes back here to be found.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a process flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grader_names_tell_their_test_process() {
        assert_eq!(grader_pid("wb4242x3-jobs"), Some(4242));
        assert_eq!(grader_pid("sem.wb7x0-obj"), Some(7));
        assert_eq!(grader_pid("wbx1-a"), None);
        assert_eq!(grader_pid("jobs"), None);
    }

    #[test]
    fn an_orphan_left_running_is_found_killed_and_reaped() {
        become_subreaper();
        let tmp = tempfile::tempdir().expect("a directory");
        let before = Machine::snapshot();
        // A lab program works in its sandbox, inside the run's TMPDIR.
        let status = std::process::Command::new("sh")
            .current_dir(tmp.path())
            .args(["-c", "sleep 30 >/dev/null 2>&1 &"])
            .status()
            .expect("sh runs");
        assert!(status.success());
        fs::create_dir(tmp.path().join("workbook-1-x")).expect("mkdir");
        let (found, _) =
            before.left_since(&[], &[tmp.path().to_path_buf()], &[], &Observed::default());
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("process left behind: ") && f.contains("sleep 30")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|f| f.starts_with("sandbox left behind: ")),
            "{found:?}"
        );
        let (again, _) = Machine::snapshot().left_since(&[], &[], &[], &Observed::default());
        assert!(!again.iter().any(|f| f.contains("sleep 30")), "{again:?}");
    }
}
