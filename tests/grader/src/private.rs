//! System V objects that the sandbox's key cannot find, and objects a run
//! is meant to leave for the next one.
//!
//! An object made with the key `IPC_PRIVATE` is listed with key 0 in
//! `/proc/sysvipc/*`, so the sandbox's `ftok` key cannot find it: a client
//! that forgets to remove its private reply queue would go unnoticed. Nor
//! can it find an object under a key the program chose itself (`ipcmk`
//! picks a random one). This module charges a run with such an object when
//! **all** of these hold:
//!
//! 1. the object did not exist when the run started (its identifier is not
//!    in the [`Snapshot`] taken just before the program was started);
//! 2. its creator's user ID (`cuid`) is the grader's effective user ID;
//! 3. either the object has key 0 and the kernel names the program as a user
//!    of it (a message queue's `lspid` or `lrpid`, a segment's `cpid` or
//!    `lpid`, is the pid of the program: the leader of the run's process
//!    group), or the program **announced** its identifier, whatever the key,
//!    after a marker the test declared with
//!    [`Cmd::announces_sysv_ids`](crate::Cmd::announces_sysv_ids) (the
//!    client's `client: private queue 65538`, `ipcmk`'s
//!    `Message queue id: 65538`).
//!
//! What cannot be attributed, and is therefore left alone. Tests run in
//! parallel threads of one process, and other test binaries and other users
//! share the kernel's tables, so guessing could destroy another test's object
//! and fail that test for nothing:
//!
//! * a semaphore set that was not announced: `/proc/sysvipc/sem` has no pid
//!   columns at all;
//! * an object that only a *child* of the program touched, not announced: the
//!   harness knows the leader's pid, not the pids of short-lived children;
//! * a message queue created and never used (`lspid` and `lrpid` are 0), or
//!   a segment created by a child, not announced.
//!
//! Such leftovers still show up in `cargo workbook verify`, whose leftover
//! step compares the whole table before and after every suite has run. A
//! pid of 32768 possible values can be reused, but only once the process
//! holding it has ended, and rule 1 limits the window to the run itself, so
//! rule 3 cannot pick up an object of a process that ran before.
//!
//! The second half of this module serves scenarios of several runs in one
//! sandbox (`create`, then `send`, then `remove`): a run marked with
//! [`Cmd::keep_sysv_objects`](crate::Cmd::keep_sysv_objects) leaves its
//! objects in place and the sandbox remembers the private ones; the next run
//! that is not so marked reports and removes whatever is still there, and the
//! sandbox removes the rest when it is dropped.

use std::collections::HashSet;
use std::fs;

use crate::leaks::{self, Leak};
use crate::procfs::SysvKind;
use crate::sandbox::Sandbox;

/// What a test declared about the System V objects of one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct SysvExpectations {
    /// The run is one step of a scenario: its objects stay for the next run.
    pub keep: bool,
    /// Markers after which the program prints identifiers of objects it
    /// made: `(kind, "private queue ")`.
    pub markers: Vec<(SysvKind, String)>,
}

/// The System V objects that existed just before a run started.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    before: HashSet<(SysvKindKey, i32)>,
}

/// `SysvKind` as a hashable key.
type SysvKindKey = u8;

fn kind_key(kind: SysvKind) -> SysvKindKey {
    match kind {
        SysvKind::MessageQueue => 0,
        SysvKind::SemaphoreSet => 1,
        SysvKind::SharedMemory => 2,
    }
}

/// One System V object, with the columns attribution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    kind: SysvKind,
    key: i32,
    id: i32,
    cuid: u32,
    /// The pids the kernel records for it (0 when unset).
    pids: Vec<i32>,
}

/// Records the objects alive now.
pub(crate) fn snapshot() -> Snapshot {
    Snapshot {
        before: objects()
            .into_iter()
            .map(|object| (kind_key(object.kind), object.id))
            .collect(),
    }
}

/// The System V checks of a finished run: objects under the sandbox's keys,
/// objects remembered from earlier runs of the sandbox, and objects this
/// run made that its key cannot find (see the module documentation). Each
/// is reported and removed, unless the run keeps its objects for the next
/// one.
pub(crate) fn check(
    sandbox: &Sandbox,
    expectations: &SysvExpectations,
    before: &Snapshot,
    leader: i32,
    output: &[&[u8]],
) -> Vec<Leak> {
    let mut made = attribute(before, leader, &announced(expectations, output));
    if expectations.keep {
        for (kind, id) in made {
            sandbox.remember_kept(kind, id);
        }
        return Vec::new();
    }
    made.extend(sandbox.take_kept());
    made.sort_by_key(|(kind, id)| (kind_key(*kind), *id));
    made.dedup();
    // Objects under the sandbox's keys first: they are reported as such.
    let mut found = leaks::sysv(sandbox);
    let alive = objects();
    for (kind, id) in made {
        let Some(object) = alive.iter().find(|o| o.kind == kind && o.id == id) else {
            continue;
        };
        leaks::remove_sysv(kind, id);
        found.push(leaks::sysv_leak(sandbox, kind, object.key, id));
    }
    found
}

/// Removes what the sandbox still holds: objects under its keys and the
/// objects its runs kept. Called when the sandbox is dropped.
pub(crate) fn remove_all(sandbox: &Sandbox) {
    drop(leaks::sysv(sandbox));
    let alive = objects();
    for (kind, id) in sandbox.take_kept() {
        if alive.iter().any(|o| o.kind == kind && o.id == id) {
            leaks::remove_sysv(kind, id);
        }
    }
}

/// The identifiers the program printed after one of the declared markers.
fn announced(expectations: &SysvExpectations, output: &[&[u8]]) -> Vec<(SysvKind, i32)> {
    let mut ids = Vec::new();
    for bytes in output {
        let text = String::from_utf8_lossy(bytes);
        for (kind, marker) in &expectations.markers {
            for (at, _) in text.match_indices(marker.as_str()) {
                let digits: String = text[at + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(id) = digits.parse() {
                    ids.push((*kind, id));
                }
            }
        }
    }
    ids
}

/// The objects that the rules of the module documentation charge to the run
/// led by `leader`.
fn attribute(
    before: &Snapshot,
    leader: i32,
    announced: &[(SysvKind, i32)],
) -> Vec<(SysvKind, i32)> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    objects()
        .into_iter()
        .filter(|object| !before.before.contains(&(kind_key(object.kind), object.id)))
        .filter(|object| object.cuid == me)
        .filter(|object| {
            (object.key == 0 && object.pids.contains(&leader))
                || announced.contains(&(object.kind, object.id))
        })
        .map(|object| (object.kind, object.id))
        .collect()
}

/// Every System V object the kernel lists, read by column name from
/// `/proc/sysvipc/{msg,sem,shm}`.
fn objects() -> Vec<Object> {
    let mut objects = Vec::new();
    for (kind, file, pid_columns) in [
        (
            SysvKind::MessageQueue,
            "/proc/sysvipc/msg",
            &["lspid", "lrpid"][..],
        ),
        (SysvKind::SemaphoreSet, "/proc/sysvipc/sem", &[][..]),
        (
            SysvKind::SharedMemory,
            "/proc/sysvipc/shm",
            &["cpid", "lpid"][..],
        ),
    ] {
        let Ok(table) = fs::read_to_string(file) else {
            continue;
        };
        let mut lines = table.lines();
        let Some(header) = lines.next() else {
            continue;
        };
        let names: Vec<&str> = header.split_whitespace().collect();
        let column = |name: &str| names.iter().position(|n| *n == name);
        let (Some(key_at), Some(cuid_at)) = (column("key"), column("cuid")) else {
            continue;
        };
        // The identifier is the second column: msqid, semid or shmid.
        let id_at = 1;
        let pid_at: Vec<usize> = pid_columns.iter().filter_map(|n| column(n)).collect();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |at: usize| fields.get(at).and_then(|f| f.parse::<i64>().ok());
            let (Some(key), Some(id), Some(cuid)) =
                (number(key_at), number(id_at), number(cuid_at))
            else {
                continue;
            };
            objects.push(Object {
                kind,
                key: key as i32,
                id: id as i32,
                cuid: cuid as u32,
                pids: pid_at
                    .iter()
                    .filter_map(|at| number(*at))
                    .map(|pid| pid as i32)
                    .collect(),
            });
        }
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_ids_follow_their_marker() {
        let expectations = SysvExpectations {
            keep: false,
            markers: vec![(SysvKind::MessageQueue, "private queue ".to_string())],
        };
        let stdout = b"client: private queue 65538\nticket 1\n";
        let stderr = b"error on private queue 12: gone; private queue x\n";
        assert_eq!(
            announced(&expectations, &[stdout, stderr]),
            [
                (SysvKind::MessageQueue, 65538),
                (SysvKind::MessageQueue, 12)
            ]
        );
    }
}
