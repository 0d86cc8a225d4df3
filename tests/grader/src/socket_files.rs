//! Socket files a program left in its sandbox, and names for sockets in
//! Linux's abstract namespace.
//!
//! `bind(2)` on a path creates a file of type socket (`s` in `ls -l`).
//! Closing the socket does not remove that file: only `unlink(2)` does. A
//! server that forgets it leaves a stale name behind, and the next server's
//! `bind` of the same path fails with `EADDRINUSE`. Like FIFOs, socket
//! files are looked for in the sandbox before the program starts and after
//! it ends; one at a path that held no socket before is reported and
//! removed, unless the test declared with [`Cmd::keeps`](crate::Cmd::keeps)
//! that the program is meant to leave it.
//!
//! Paths are compared, not files: a program that removes a stale socket
//! file the test put there and binds the same path again is not blamed if
//! it leaves that path bound (an inode number is reused as soon as it is
//! freed, so "a different file" cannot be told reliably). A test of stale
//! socket files checks that path itself.
//!
//! Abstract names (a `sun_path` that starts with a NUL byte) leave nothing
//! on disk: the kernel drops the name with the last socket bound to it, so
//! a process left running, which the grader already reports, is the only
//! way to leave one behind. [`Sandbox::abstract_name`] gives each test its
//! own names, with the sandbox's prefix, which transcripts show as
//! `@[PREFIX]-name`.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::leaks::{Leak, LeakKind};
use crate::sandbox::Sandbox;

/// How deep below the sandbox directory socket files are looked for.
const SEARCH_DEPTH: usize = 3;

/// Every socket file in `dir` and its subdirectories (a few levels deep),
/// sorted.
pub(crate) fn snapshot(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    collect(dir, SEARCH_DEPTH, &mut found);
    found.sort();
    found
}

fn collect(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_socket() {
            found.push(entry.path());
        } else if file_type.is_dir() && depth > 0 {
            collect(&entry.path(), depth - 1, found);
        }
    }
}

/// Socket files in the sandbox that were not there before the program
/// started (`before`) and that it was not meant to leave (`kept`), removed
/// after they are recorded.
pub(crate) fn leftovers(sandbox: &Sandbox, before: &[PathBuf], kept: &[PathBuf]) -> Vec<Leak> {
    snapshot(sandbox.dir())
        .into_iter()
        .filter(|path| !before.contains(path) && !kept.contains(path))
        .map(|path| {
            let shown = match path.strip_prefix(sandbox.dir()) {
                Ok(inside) => format!("[SANDBOX]/{}", inside.display()),
                Err(_) => path.display().to_string(),
            };
            let _ = fs::remove_file(&path);
            Leak::new(LeakKind::SocketFile, shown)
        })
        .collect()
}

impl Sandbox {
    /// A name in Linux's abstract socket namespace that no other test uses,
    /// written the way the labs take it on their command line: `@` and the
    /// name (the kernel's `sun_path` is a NUL byte, then the name). It
    /// carries the sandbox's prefix, so transcripts show `@[PREFIX]-name`.
    pub fn abstract_name(&self, name: &str) -> String {
        format!("@{}{name}", self.posix_prefix())
    }
}
