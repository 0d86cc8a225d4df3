//! A private place for one test: a directory, a System V key file and a
//! prefix for POSIX IPC names, so that tests running in parallel never meet.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::procfs::{self, SysvKind};
use crate::shepherd::Shepherd;

/// Key bases (the low 24 bits of `ftok` keys) handed out in this process.
static KEY_BASES: Mutex<Option<HashSet<u32>>> = Mutex::new(None);
/// Numbers the POSIX name prefixes of this process.
static NEXT_PREFIX: AtomicUsize = AtomicUsize::new(0);

/// One test's private directory, `ftok` key file and POSIX name prefix.
///
/// Dropping the sandbox removes its directory, any System V object still
/// alive under its keys or kept by one of its runs (see
/// [`Cmd::keep_sysv_objects`](crate::Cmd::keep_sysv_objects)), and kills
/// the daemons its runs kept (see [`Cmd::keep_daemons`](crate::Cmd::keep_daemons)).
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    key_file: PathBuf,
    key_base: u32,
    prefix: String,
    posix_names: Mutex<Vec<String>>,
    /// Objects outside the sandbox's keys made by runs that kept theirs.
    kept_ids: Mutex<Vec<(SysvKind, i32)>>,
    /// The shepherds of runs that kept their daemons running.
    kept_daemons: Mutex<Vec<Shepherd>>,
}

impl Sandbox {
    /// Creates a sandbox. Panics if the temporary directory cannot be made:
    /// nothing can be graded on such a machine.
    ///
    /// The directory is `$TMPDIR/workbook-<pid>-XXXXXX`, with this test
    /// process's pid: if the process is killed before it can clean up,
    /// `cargo workbook clean` can tell that the directory, and every IPC
    /// object made from its key file, belongs to a run that is over.
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix(&format!("workbook-{}-", std::process::id()))
            .tempdir()
            .unwrap_or_else(|e| panic!("grader: cannot create a temporary directory: {e}"));
        let (key_file, key_base) = unique_key_file(dir.path());
        let prefix = format!(
            "wb{}x{}-",
            std::process::id(),
            NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
        );
        Sandbox {
            dir,
            key_file,
            key_base,
            prefix,
            posix_names: Mutex::new(Vec::new()),
            kept_ids: Mutex::new(Vec::new()),
            kept_daemons: Mutex::new(Vec::new()),
        }
    }

    /// The sandbox directory; programs run with it as working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the sandbox (for FIFOs, sockets, data files).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to the file `name` in the sandbox and returns its path.
    pub fn write_file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("grader: cannot write {}: {e}", path.display()));
        path
    }

    /// The file to pass to `ftok(3)`. Every key made from it belongs to this
    /// sandbox, and the leak check looks for exactly those keys.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The `ftok` key for `proj_id`, computed the way glibc does:
    /// `(proj_id & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)`.
    pub fn key(&self, proj_id: u8) -> i32 {
        ((u32::from(proj_id) << 24) | self.key_base) as i32
    }

    /// The low 24 bits shared by every key of this sandbox.
    pub(crate) fn key_base(&self) -> u32 {
        self.key_base
    }

    /// A POSIX IPC name (`/wb…-name`) that no other test uses. The leak check
    /// looks for every name with this sandbox's prefix.
    pub fn posix_name(&self, name: &str) -> String {
        let full = format!("/{}{name}", self.prefix);
        self.posix_names
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(full.clone());
        full
    }

    /// The prefix (without the leading slash) of this sandbox's POSIX names.
    pub fn posix_prefix(&self) -> &str {
        &self.prefix
    }

    /// The POSIX names handed out so far.
    pub(crate) fn posix_names(&self) -> Vec<String> {
        self.posix_names
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

impl Sandbox {
    /// Remembers an object outside the sandbox's keys that a run kept.
    pub(crate) fn remember_kept(&self, kind: SysvKind, id: i32) {
        self.kept_ids
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push((kind, id));
    }

    /// The objects kept so far, forgotten by the sandbox.
    pub(crate) fn take_kept(&self) -> Vec<(SysvKind, i32)> {
        std::mem::take(
            &mut *self
                .kept_ids
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }
}

impl Sandbox {
    /// The process IDs of the daemons that runs in this sandbox kept
    /// running ([`Cmd::keep_daemons`](crate::Cmd::keep_daemons)) and that
    /// are still running now. A daemon that has ended is reaped at once by
    /// the run's shepherd, so it is not listed.
    pub fn daemons(&self) -> Vec<u32> {
        lock(&self.kept_daemons)
            .iter()
            .flat_map(|shepherd| shepherd.tree())
            .filter(|p| p.state != 'Z')
            .map(|p| p.pid as u32)
            .collect()
    }

    /// Takes over the shepherd of a run that keeps its daemons.
    pub(crate) fn keep_daemons(&self, shepherd: Shepherd) {
        lock(&self.kept_daemons).push(shepherd);
    }

    /// Kills the daemons kept by earlier runs; returns those that were
    /// still running, as leftovers (`pid 12 (sleep 314), started by an
    /// earlier step`).
    pub(crate) fn stop_kept_daemons(&self) -> Vec<String> {
        let shepherds = std::mem::take(&mut *lock(&self.kept_daemons));
        let mut running = Vec::new();
        for mut shepherd in shepherds {
            running.extend(
                shepherd
                    .tree()
                    .into_iter()
                    .filter(|p| p.state != 'Z')
                    .map(|p| format!("pid {} ({}), started by an earlier step", p.pid, p.command)),
            );
            shepherd.release();
        }
        running
    }
}

/// Locks `mutex`, whatever a panicking test left in it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Drop for Sandbox {
    /// Kills the daemons its runs kept, removes the System V objects still
    /// alive under the sandbox's keys, and those its runs kept: a test that
    /// fails half-way through a scenario leaves nothing behind.
    fn drop(&mut self) {
        for mut shepherd in std::mem::take(&mut *lock(&self.kept_daemons)) {
            shepherd.release();
        }
        crate::private::remove_all(self);
        let mut bases = KEY_BASES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bases) = bases.as_mut() {
            bases.remove(&self.key_base);
        }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// Creates a key file whose `ftok` key base no other sandbox of this process
/// holds and no live System V object uses, so that leak checks of parallel
/// tests cannot mistake each other's objects.
fn unique_key_file(dir: &Path) -> (PathBuf, u32) {
    let mut bases = KEY_BASES.lock().unwrap_or_else(|p| p.into_inner());
    let bases = bases.get_or_insert_with(HashSet::new);
    let live = procfs::sysv_key_bases();
    for attempt in 0..64 {
        let path = dir.join(format!("ipc-key-{attempt}"));
        fs::write(&path, b"ftok(3) key file of one graded test\n")
            .unwrap_or_else(|e| panic!("grader: cannot write {}: {e}", path.display()));
        let meta = fs::metadata(&path)
            .unwrap_or_else(|e| panic!("grader: cannot stat {}: {e}", path.display()));
        let base = (((meta.dev() & 0xff) as u32) << 16) | ((meta.ino() & 0xffff) as u32);
        if !bases.contains(&base) && !live.contains(&base) {
            bases.insert(base);
            return (path, base);
        }
    }
    panic!(
        "grader: could not find an unused System V key in {}",
        dir.display()
    );
}

/// Refuses to grade with snapshot settings that would accept any output.
///
/// `INSTA_FORCE_PASS` makes every snapshot pass, and `INSTA_UPDATE` other than
/// `no`/`auto` rewrites snapshots from whatever the program printed: only the
/// reference solutions may do that, when an instructor regenerates snapshots.
pub(crate) fn refuse_snapshot_overrides(package: &str) {
    if let Ok(value) = std::env::var("INSTA_FORCE_PASS")
        && !value.is_empty()
        && value != "0"
    {
        panic!("grader: INSTA_FORCE_PASS={value} would pass every snapshot; unset it to grade");
    }
    let is_solution = package.ends_with("-solution");
    if let Ok(value) = std::env::var("INSTA_UPDATE")
        && !matches!(value.as_str(), "" | "no" | "auto")
        && !is_solution
    {
        panic!(
            "grader: INSTA_UPDATE={value} would rewrite the course's snapshots from your \
             output; snapshots come from the reference solutions. Unset it to grade."
        );
    }
}
