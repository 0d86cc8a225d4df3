//! Reading what the kernel publishes under `/proc`: processes and System V
//! IPC objects.

use std::collections::HashSet;
use std::fs;

/// One process as `/proc/PID/stat` and `/proc/PID/cmdline` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// The session ID: a process that called `setsid()` leads its own.
    pub sid: i32,
    /// `R`, `S`, `D`, `Z` (zombie), `T` …
    pub state: char,
    /// The command line, or `[comm]` when it is empty (zombies have none).
    pub command: String,
}

/// Every process the kernel lists, without command lines (cheap).
fn all() -> Vec<ProcInfo> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// Every descendant of `root` (not `root` itself), with command lines:
/// children, their children, and so on, whatever their session or group.
pub(crate) fn descendants(root: i32) -> Vec<ProcInfo> {
    let all = all();
    let mut mine: HashSet<i32> = HashSet::from([root]);
    let mut found = Vec::new();
    // Parents usually come before their children (lower pids), so few
    // passes are needed; each pass adds at least one process or ends.
    loop {
        let before = found.len();
        for info in &all {
            if !mine.contains(&info.pid) && mine.contains(&info.ppid) {
                mine.insert(info.pid);
                found.push(info.clone());
            }
        }
        if found.len() == before {
            break;
        }
    }
    for info in &mut found {
        info.command = command_line(info.pid, &info.command);
    }
    found.sort_by_key(|info| info.pid);
    found
}

/// One process, with its command line.
pub(crate) fn process(pid: i32) -> Option<ProcInfo> {
    let mut info = read_stat(pid)?;
    info.command = command_line(pid, &info.command);
    Some(info)
}

/// Whether process `pid` exists and has not ended (a zombie has).
pub(crate) fn is_alive(pid: i32) -> bool {
    state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// The processes whose environment holds `WORKBOOK_RUN=<mark>` (only
/// this user's processes can be read), zombies excluded.
pub(crate) fn marked(mark: &str) -> Vec<i32> {
    let needle = format!("WORKBOOK_RUN={mark}");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|&b| b == 0)
                    .any(|var| var == needle.as_bytes())
            })
        })
        .filter(|pid| is_alive(*pid))
        .collect()
}

/// What process `pid` is doing, for messages: `asleep in read(2)`,
/// `running`, `stopped`, `a zombie` ….
pub(crate) fn activity(pid: i32) -> String {
    match state(pid) {
        None => "gone".to_string(),
        Some('Z') => "a zombie (ended, never waited for)".to_string(),
        Some('T') | Some('t') => "stopped".to_string(),
        Some('R') => "running (busy, not waiting for anything)".to_string(),
        Some(_) => match syscall(pid) {
            Some(call) => format!("asleep in {}", manual_name(call)),
            None => "running".to_string(),
        },
    }
}

/// The state letter of process `pid` (`R`, `S`, `D`, `Z` …), if it exists.
pub(crate) fn state(pid: i32) -> Option<char> {
    read_stat(pid).map(|info| info.state)
}

/// The number of the system call process `pid` is in, from the first field
/// of `/proc/PID/syscall`: `None` while it runs in user space (`running`),
/// or if the file cannot be read.
pub(crate) fn syscall(pid: i32) -> Option<libc::c_long> {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The name of system call number `number` for the calls a blocked lab
/// program is likely to sit in; `syscall N` for any other.
pub(crate) fn syscall_name(number: libc::c_long) -> String {
    known_syscall(number)
        .map(str::to_string)
        .unwrap_or_else(|| format!("syscall {number}"))
}

/// How messages name system call `number`: its manual page (`msgrcv(2)`),
/// or `system call N` for a call not in the list.
pub(crate) fn manual_name(number: libc::c_long) -> String {
    match known_syscall(number) {
        Some(name) => format!("{name}(2)"),
        None => format!("system call {number}"),
    }
}

/// The name of system call `number`, if it is one a blocked lab program is
/// likely to sit in.
fn known_syscall(number: libc::c_long) -> Option<&'static str> {
    let known: &[(libc::c_long, &'static str)] = &[
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_readv, "readv"),
        (libc::SYS_writev, "writev"),
        (libc::SYS_openat, "openat"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep"),
        (libc::SYS_nanosleep, "nanosleep"),
        // A sleep interrupted by a stop and continued (SIGSTOP, SIGCONT)
        // goes on in restart_syscall(2).
        (libc::SYS_restart_syscall, "restart_syscall"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
        (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_msgsnd, "msgsnd"),
        (libc::SYS_semop, "semop"),
        (libc::SYS_semtimedop, "semtimedop"),
        (libc::SYS_accept4, "accept4"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_fcntl, "fcntl"),
        (libc::SYS_flock, "flock"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_accept, "accept"),
        (libc::SYS_mq_timedsend, "mq_timedsend"),
        (libc::SYS_mq_timedreceive, "mq_timedreceive"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_open, "open"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_pause, "pause"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_poll, "poll"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_select, "select"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_epoll_wait, "epoll_wait"),
    ];
    known
        .iter()
        .find(|(nr, _)| *nr == number)
        .map(|(_, name)| *name)
}

/// Parses `/proc/PID/stat`. The command name is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the last `)`.
/// The command is left as `[comm]`; [`command_line`] reads the real one.
fn read_stat(pid: i32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    let sid = rest.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        sid,
        state,
        command: format!("[{comm}]"),
    })
}

/// The command line of `pid`, or `fallback` when it has none (a zombie).
fn command_line(pid: i32, fallback: &str) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if cmdline.is_empty() {
        fallback.to_string()
    } else {
        String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ")
    }
}

/// The three kinds of System V IPC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysvKind {
    /// A message queue (`msgget`).
    MessageQueue,
    /// A semaphore set (`semget`).
    SemaphoreSet,
    /// A shared memory segment (`shmget`).
    SharedMemory,
}

impl SysvKind {
    /// All three kinds.
    pub const ALL: [SysvKind; 3] = [
        SysvKind::MessageQueue,
        SysvKind::SemaphoreSet,
        SysvKind::SharedMemory,
    ];

    /// The file under `/proc/sysvipc` that lists objects of this kind.
    fn proc_file(self) -> &'static str {
        match self {
            SysvKind::MessageQueue => "/proc/sysvipc/msg",
            SysvKind::SemaphoreSet => "/proc/sysvipc/sem",
            SysvKind::SharedMemory => "/proc/sysvipc/shm",
        }
    }
}

/// A System V object: its kind, key and identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SysvObject {
    pub kind: SysvKind,
    pub key: i32,
    pub id: i32,
}

/// Every System V object the kernel lists (columns `key` and `id` of
/// `/proc/sysvipc/{msg,sem,shm}`).
pub(crate) fn sysv_objects() -> Vec<SysvObject> {
    let mut objects = Vec::new();
    for kind in SysvKind::ALL {
        let Ok(table) = fs::read_to_string(kind.proc_file()) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let mut columns = line.split_whitespace();
            let key = columns.next().and_then(|k| k.parse().ok());
            let id = columns.next().and_then(|i| i.parse().ok());
            if let (Some(key), Some(id)) = (key, id) {
                objects.push(SysvObject { kind, key, id });
            }
        }
    }
    objects
}

/// The low 24 bits of the keys of all live System V objects.
pub(crate) fn sysv_key_bases() -> HashSet<u32> {
    sysv_objects()
        .iter()
        .filter(|object| object.key != 0)
        .map(|object| object.key as u32 & 0x00ff_ffff)
        .collect()
}
