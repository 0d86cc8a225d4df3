//! System call names and numbers on this machine's architecture, and the
//! `--filter` option that picks the calls a trace shows (given: you do not
//! need to change this file).
//!
//! A tracer sees only a number in a register (`orig_rax` on x86-64, `x8`
//! on aarch64); the numbers differ from one architecture to the next
//! (`pipe2` is 293 on x86-64 and 59 on aarch64, and aarch64 has no `pipe`,
//! `fork` or `dup2` at all). The names come from the generated table in
//! `syscall_table.rs` (see `gen-syscalls.sh`).

use std::collections::BTreeSet;

#[path = "syscall_table.rs"]
mod table;

// ANCHOR: ipc_set
/// The calls of the `ipc` group, the default filter: how processes are
/// made and replaced, and every call of the IPC mechanisms of chapters
/// 01–15. Those this architecture lacks (`pipe`, `fork`, `vfork`, `dup2`,
/// `mknod` on aarch64) are left out when the filter is built. `close`
/// counts only when it closes a pipe, a FIFO, a socket or another IPC
/// descriptor: name `close` in the filter to see every one.
pub const IPC: &[&str] = &[
    // processes (chapter 01) and signals sent (chapter 11)
    "fork",
    "vfork",
    "clone",
    "clone3",
    "execve",
    "execveat",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "tgkill",
    // descriptors, pipes and FIFOs (chapters 02–04)
    "pipe",
    "pipe2",
    "dup",
    "dup2",
    "dup3",
    "close",
    "mknod",
    "mknodat",
    // System V IPC (chapters 05–07)
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    // POSIX message queues (chapter 09)
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    // sockets (chapters 13–14) and eventfd (chapter 15)
    "socket",
    "socketpair",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "shutdown",
    "eventfd2",
];
// ANCHOR_END: ipc_set

/// The name of system call `nr` on this architecture, if the table has it.
pub fn name(nr: u64) -> Option<&'static str> {
    table::TABLE
        .binary_search_by_key(&nr, |&(number, _)| number)
        .ok()
        .map(|at| table::TABLE[at].1)
}

/// The name of system call `nr`, or `syscall_NNN` for a number the table
/// does not know (a call newer than the headers it was generated from).
pub fn display_name(nr: u64) -> String {
    match name(nr) {
        Some(name) => name.to_string(),
        None => format!("syscall_{nr}"),
    }
}

/// The number of the system call `name` on this architecture.
pub fn number(name: &str) -> Option<u64> {
    table::TABLE
        .iter()
        .find(|&&(_, known)| known == name)
        .map(|&(number, _)| number)
}

/// Every `(number, name)` of this architecture, by number.
pub fn all() -> &'static [(u64, &'static str)] {
    table::TABLE
}

/// Which system calls a trace shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    numbers: BTreeSet<u64>,
    every_close: bool,
}

impl Filter {
    /// The `ipc` group alone: the default.
    pub fn ipc() -> Filter {
        let mut filter = Filter {
            numbers: BTreeSet::new(),
            every_close: false,
        };
        filter.add_ipc();
        filter
    }

    /// Parses a comma-separated list of system call names and groups:
    /// `ipc` (the calls of [`IPC`]) and `all` (every call). Names are those
    /// of this architecture (`ptrace syscalls` lists them); as with strace,
    /// a name written `?name` is skipped where this architecture has no
    /// such call (`?pipe,pipe2` works on x86-64 and aarch64 alike). Naming
    /// `close` shows every `close`, not only those of IPC descriptors.
    pub fn parse(list: &str) -> Result<Filter, String> {
        let mut filter = Filter {
            numbers: BTreeSet::new(),
            every_close: false,
        };
        for word in list.split(',').map(str::trim) {
            match word {
                "" => return Err(format!("empty name in the filter `{list}`")),
                "ipc" => filter.add_ipc(),
                "all" => {
                    filter.numbers.extend(all().iter().map(|&(nr, _)| nr));
                    filter.every_close = true;
                }
                optional if optional.starts_with('?') => {
                    let name = &optional[1..];
                    if let Some(nr) = number(name) {
                        filter.numbers.insert(nr);
                        filter.every_close |= name == "close";
                    }
                }
                name => {
                    let nr = number(name).ok_or_else(|| {
                        format!(
                            "unknown system call `{name}` in the filter (`ptrace syscalls` \
                             lists those of this machine)"
                        )
                    })?;
                    filter.numbers.insert(nr);
                    if name == "close" {
                        filter.every_close = true;
                    }
                }
            }
        }
        Ok(filter)
    }

    fn add_ipc(&mut self) {
        self.numbers
            .extend(IPC.iter().filter_map(|name| number(name)));
    }

    /// Whether calls numbered `nr` are shown.
    pub fn contains(&self, nr: u64) -> bool {
        self.numbers.contains(&nr)
    }

    /// Whether every `close` is shown, or only those of IPC descriptors.
    pub fn every_close(&self) -> bool {
        self.every_close
    }
}
