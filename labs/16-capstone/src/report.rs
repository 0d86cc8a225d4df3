//! What the program says about the system (given: you do not need to
//! change this file): the objects a session made that have a **name**
//! (FIFOs, socket files, POSIX names, System V keys), what each side
//! **holds** once it has its end of the link (descriptors, shared
//! mappings, blocked signals: `/proc/self`), and the machine a benchmark
//! ran on.

use std::ffi::CString;
use std::fs;
use std::os::fd::RawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::harness::{Given, Names};
use super::sys;

// ANCHOR: names_in_system
/// The objects named by `names` that exist now: what outlives the
/// processes that made them until someone removes it.
pub fn names_in_system(names: &Names) -> Vec<String> {
    let mut found = Vec::new();
    for given in names.given() {
        match given {
            Given::Path(path) => found.extend(file_at(&path)),
            Given::Posix(name) => found.extend(posix_object(&name)),
            Given::Key(proj) => {
                if let Ok(key) = sys::ftok(&names.key_file, proj) {
                    found.extend(sysv_objects(key).into_iter().map(|kind| {
                        format!(
                            "System V {kind}, key ftok({}, '{}')",
                            names.key_file.display(),
                            proj as char
                        )
                    }));
                }
            }
        }
    }
    found.dedup();
    found
}

/// "FIFO PATH" or "socket file PATH" if something is at `path`.
fn file_at(path: &Path) -> Option<String> {
    let kind = fs::symlink_metadata(path).ok()?.file_type();
    let what = if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket file"
    } else {
        "file"
    };
    Some(format!("{what} {}", path.display()))
}

/// The POSIX objects called `name`: shared memory, semaphore, queue.
fn posix_object(name: &str) -> Vec<String> {
    let bare = name.trim_start_matches('/');
    let mut found = Vec::new();
    if Path::new("/dev/shm").join(bare).exists() {
        found.push(format!("POSIX shared memory object {name}"));
    }
    if Path::new("/dev/shm").join(format!("sem.{bare}")).exists() {
        found.push(format!("POSIX named semaphore {name}"));
    }
    if queue_exists(name) {
        found.push(format!("POSIX message queue {name}"));
    }
    found
}

/// Whether a POSIX message queue called `name` exists (`mq_open` without
/// `O_CREAT`, which works where `/dev/mqueue` is not mounted).
fn queue_exists(name: &str) -> bool {
    let Ok(c_name) = CString::new(name) else {
        return false;
    };
    // SAFETY: mq_open reads a NUL-terminated name; no O_CREAT, so no
    // further arguments.
    let queue = unsafe { libc::mq_open(c_name.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    if queue == -1 {
        // EACCES: it exists, but is not ours to open.
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES);
    }
    // SAFETY: the descriptor was just opened.
    unsafe { libc::mq_close(queue) };
    true
}

/// The kinds of System V object under `key`, from `/proc/sysvipc`.
fn sysv_objects(key: libc::key_t) -> Vec<&'static str> {
    [
        ("msg", "message queue"),
        ("sem", "semaphore set"),
        ("shm", "shared memory segment"),
    ]
    .into_iter()
    .filter(|(table, _)| {
        let text = fs::read_to_string(format!("/proc/sysvipc/{table}")).unwrap_or_default();
        text.lines()
            .skip(1)
            .any(|line| line.split_whitespace().next().and_then(|k| k.parse().ok()) == Some(key))
    })
    .map(|(_, kind)| kind)
    .collect()
}
// ANCHOR_END: names_in_system

// ANCHOR: holdings
/// What this process holds beyond what it started with (`inherited`):
/// each descriptor of its own, each shared mapping but the board (at
/// address `board`), and the real-time signals it blocks.
pub fn holdings(inherited: &[RawFd], board: usize) -> Vec<String> {
    let mut held = Vec::new();
    let mut fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    for fd in fds.into_iter().filter(|fd| !inherited.contains(fd)) {
        held.extend(descriptor(fd));
    }
    held.extend(shared_mappings(board));
    held.extend(blocked_realtime_signals());
    held
}

/// What descriptor `fd` is, or `None` for the directory listing itself.
fn descriptor(fd: RawFd) -> Option<String> {
    let link = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let link = link.to_string_lossy().into_owned();
    if link.starts_with("/proc/") && link.ends_with("/fd") {
        return None;
    }
    // SAFETY: stat is plain data that fstat fills.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one stat for a descriptor this process has.
    if unsafe { libc::fstat(fd, &mut stat) } == -1 {
        return Some(link);
    }
    let kind = stat.st_mode & libc::S_IFMT;
    Some(if kind == libc::S_IFIFO {
        let end = access_end(fd);
        match link.strip_prefix("pipe:") {
            Some(_) => format!("pipe ({end})"),
            None => format!("FIFO {} ({end})", unlinked(&link)),
        }
    } else if kind == libc::S_IFSOCK {
        socket(fd)
    } else if link == "anon_inode:[eventfd]" {
        "eventfd".to_string()
    } else if is_message_queue(fd) {
        format!("POSIX message queue {}", unlinked(&link))
    } else {
        link
    })
}

/// "read end" or "write end", from the descriptor's access mode.
fn access_end(fd: RawFd) -> &'static str {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "read end",
        libc::O_WRONLY => "write end",
        _ => "read and write",
    }
}

/// `NAME (deleted)` as `NAME, name removed`.
fn unlinked(link: &str) -> String {
    match link.strip_suffix(" (deleted)") {
        Some(name) => format!("{name}, name removed"),
        None => link.to_string(),
    }
}

/// Whether `fd` is a POSIX message queue (its file system is mqueue).
fn is_message_queue(fd: RawFd) -> bool {
    const MQUEUE_MAGIC: i64 = 0x1980_0202;
    // SAFETY: statfs is plain data that fstatfs fills.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes one statfs for a descriptor this process has.
    unsafe { libc::fstatfs(fd, &mut fs) == 0 && fs.f_type as i64 == MQUEUE_MAGIC }
}

/// "Unix stream socket (connected)", "TCP socket (listening)" ….
fn socket(fd: RawFd) -> String {
    let option = |name| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes one c_int and its length.
        let ok = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        (ok == 0).then_some(value)
    };
    let domain = match option(libc::SO_DOMAIN) {
        Some(libc::AF_UNIX) => "Unix",
        Some(libc::AF_INET) | Some(libc::AF_INET6) => "TCP/IP",
        _ => "other",
    };
    let kind = match (domain, option(libc::SO_TYPE)) {
        ("TCP/IP", Some(libc::SOCK_STREAM)) => "TCP socket".to_string(),
        ("TCP/IP", Some(libc::SOCK_DGRAM)) => "UDP socket".to_string(),
        (_, Some(libc::SOCK_STREAM)) => format!("{domain} stream socket"),
        (_, Some(libc::SOCK_DGRAM)) => format!("{domain} datagram socket"),
        (_, Some(libc::SOCK_SEQPACKET)) => format!("{domain} seqpacket socket"),
        _ => format!("{domain} socket"),
    };
    let state = if option(libc::SO_ACCEPTCONN) == Some(1) {
        "listening"
    } else if has_peer(fd) {
        "connected"
    } else {
        "not connected"
    };
    format!("{kind} ({state})")
}

/// Whether `getpeername` finds a peer for socket `fd`.
fn has_peer(fd: RawFd) -> bool {
    // SAFETY: sockaddr_storage is plain data that getpeername fills.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getpeername writes at most `len` bytes and the length.
    unsafe { libc::getpeername(fd, (&raw mut address).cast(), &mut len) == 0 }
}

/// The shared mappings of this process but the one at `board`, from
/// `/proc/self/maps`: `7f…-7f… rw-s 00000000 00:01 3375146  /SYSV… (deleted)`.
fn shared_mappings(board: usize) -> Vec<String> {
    let maps = fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (range, perms) = (words.next()?, words.next()?);
            if !perms.ends_with('s') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let len = usize::from_str_radix(end, 16).ok()? - start;
            if start == board {
                return None;
            }
            let path = words.skip(3).collect::<Vec<_>>().join(" ");
            let what = if path.starts_with("/SYSV") {
                "System V shared memory".to_string()
            } else if path == "/dev/zero (deleted)" {
                "anonymous shared memory".to_string()
            } else if let Some(name) = path.strip_prefix("/dev/shm/") {
                format!("POSIX shared memory /{}", unlinked(name))
            } else {
                format!("shared mapping of {path}")
            };
            Some(format!("{what}, {len} bytes mapped"))
        })
        .collect()
}

/// The real-time signals this process blocks, from `SigBlk` in
/// `/proc/self/status` (bit n − 1 is signal n).
fn blocked_realtime_signals() -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigBlk:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    let first = libc::SIGRTMIN();
    let blocked: Vec<i32> = (first..=libc::SIGRTMAX())
        .filter(|&signal| mask & (1 << (signal - 1)) != 0)
        .map(|signal| signal - first)
        .collect();
    let name = |n: &i32| match n {
        0 => "SIGRTMIN".to_string(),
        n => format!("SIGRTMIN+{n}"),
    };
    let (low, high) = (blocked.first()?, blocked.last()?);
    Some(format!(
        "{} real-time signal(s) blocked, {} to {}",
        blocked.len(),
        name(low),
        name(high)
    ))
}
// ANCHOR_END: holdings

// ANCHOR: machine
/// The machine, on one line: kernel, processor, CPUs, and whether it is a
/// virtual machine.
pub fn machine() -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown processor".to_string());
    let virtual_machine = cpuinfo.lines().any(|line| {
        line.starts_with("flags") && line.split_whitespace().any(|f| f == "hypervisor")
    });
    format!(
        "Linux {kernel} {}; {model}; {} CPU(s) online, {} usable here{}",
        std::env::consts::ARCH,
        online_cpus(),
        usable_cpus().len(),
        if virtual_machine {
            "; a virtual machine (hypervisor flag)"
        } else {
            ""
        }
    )
}

/// `/proc/loadavg`'s three load averages (1, 5 and 15 minutes).
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

/// How many CPUs are online (`/sys/devices/system/cpu/online`: `0-1`).
pub fn online_cpus() -> usize {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    text.trim()
        .split(',')
        .filter_map(|range| {
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            Some(high.parse::<usize>().ok()? - low.parse::<usize>().ok()? + 1)
        })
        .sum()
}

/// The CPUs this process may run on (`sched_getaffinity`), in order.
pub fn usable_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}
// ANCHOR_END: machine
