//! How the tracer writes a system call: `pipe2([3, 4], O_CLOEXEC) = 0`,
//! strace's way (given: you do not need to change this file).
//!
//! A call is seen twice. At its syscall-entry-stop the tracer has its
//! number and six raw arguments, and makes a [`Call`] of them
//! ([`Call::enter`]); at its syscall-exit-stop it has the return value,
//! and [`Call::finish`] writes the line. Arguments that are pointers are
//! read from the tracee's memory with your [`read_memory`] (task 2):
//! inputs (a path, a message) could be read at either stop, outputs (the
//! two descriptors `pipe2` stores, a wait status) only at the exit, once
//! the kernel has written them, and only if the call succeeded. An
//! `execve` is read at its entry: once it succeeds, the memory that held
//! its arguments belongs to a program that no longer exists.
//!
//! The calls of the `ipc` group are decoded; any other call named in a
//! filter is shown as `name(...)`, with its result.

use std::fmt::Write as _;

use nix::errno::Errno;
use nix::sys::statfs::FsType;
use nix::unistd::Pid;

use super::read_memory;
use super::sys::signal_name;
use super::syscalls::{self, Filter};

/// The most bytes of a data buffer shown (strace's default, `-s 32`);
/// a longer one ends in `...`.
const SHOWN_BYTES: usize = 32;
/// The longest path or name read.
const PATH_MAX: usize = 4096;
/// The most arguments of an `execve` shown.
const SHOWN_ARGS: usize = 32;
/// `statfs` type of the POSIX message queue file system (`/dev/mqueue`).
const MQUEUE_MAGIC: FsType = FsType(0x1980_0202);

// ANCHOR: call
/// A system call between its entry and its exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    nr: u64,
    name: String,
    args: [u64; 6],
    /// The arguments as read at the entry, for calls whose memory is gone
    /// by the exit (`execve`).
    read_at_entry: Option<String>,
}

impl Call {
    /// The call `nr` with `args`, at the syscall-entry-stop of `pid`, if
    /// `filter` shows it (`None` otherwise). A `close` counts only if its
    /// descriptor is an IPC one (a pipe, FIFO, socket, message queue,
    /// eventfd …), as `/proc/PID/fd` shows it now, unless the filter names
    /// `close` itself.
    pub fn enter(pid: Pid, nr: u64, args: [u64; 6], filter: &Filter) -> Option<Call> {
        if !filter.contains(nr) {
            return None;
        }
        let name = syscalls::display_name(nr);
        if name == "close" && !filter.every_close() && !is_ipc_descriptor(pid, args[0]) {
            return None;
        }
        let read_at_entry = match name.as_str() {
            "execve" => Some(exec_arguments(pid, args[0], args[1], args[2])),
            "execveat" => Some(format!(
                "{}, {}, {}",
                dirfd(args[0]),
                exec_arguments(pid, args[1], args[2], args[3]),
                at_flags(args[4])
            )),
            _ => None,
        };
        Some(Call {
            nr,
            name,
            args,
            read_at_entry,
        })
    }

    /// The system call's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The system call's number.
    pub fn number(&self) -> u64 {
        self.nr
    }

    /// The line for this call once it returned `value` at the
    /// syscall-exit-stop of `pid` (`is_error`: `value` is `-errno`):
    /// `pipe2([3, 4], O_CLOEXEC) = 0`, `close(9) = -1 EBADF (Bad file
    /// descriptor)`.
    pub fn finish(&self, pid: Pid, value: i64, is_error: bool) -> String {
        let returned = (!is_error).then_some(value);
        format!(
            "{}({}) = {}",
            self.name,
            self.arguments(pid, returned),
            self.result(value, is_error)
        )
    }

    /// The line for this call when its process died inside it (no exit
    /// came): `wait4(-1, 0x7ffd5e3c, 0, NULL) = ?`.
    pub fn unfinished(&self, pid: Pid) -> String {
        format!("{}({}) = ?", self.name, self.arguments(pid, None))
    }
}
// ANCHOR_END: call

impl Call {
    /// The result after ` = `.
    fn result(&self, value: i64, is_error: bool) -> String {
        if is_error {
            return error(value);
        }
        match self.name.as_str() {
            "shmat" => hex(value as u64),
            _ => value.to_string(),
        }
    }

    /// The arguments between the parentheses; outputs are read only when
    /// the call succeeded (`returned`).
    fn arguments(&self, pid: Pid, returned: Option<i64>) -> String {
        if let Some(text) = &self.read_at_entry {
            return text.clone();
        }
        let a = &self.args;
        let ok = returned.is_some();
        match self.name.as_str() {
            "close" | "dup" => fd(a[0]),
            "dup2" => format!("{}, {}", fd(a[0]), fd(a[1])),
            "dup3" => format!("{}, {}, {}", fd(a[0]), fd(a[1]), o_flags(a[2])),
            "pipe" => fd_pair(pid, a[0], ok),
            "pipe2" => format!("{}, {}", fd_pair(pid, a[0], ok), o_flags(a[1])),
            "fork" | "vfork" => String::new(),
            "clone" => clone_arguments(a),
            "clone3" => format!("{}, {}", clone3_arguments(pid, a[0], a[1]), a[1]),
            "wait4" => format!(
                "{}, {}, {}, {}",
                int(a[0]),
                wait_status(pid, a[1], returned.is_some_and(|pid| pid > 0)),
                flags(a[2], WAIT_FLAGS),
                pointer(a[3])
            ),
            "waitid" => format!(
                "{}, {}, {}, {}, {}",
                id_type(a[0]),
                int(a[1]),
                pointer(a[2]),
                flags(a[3], WAIT_FLAGS),
                pointer(a[4])
            ),
            "kill" | "tkill" => format!("{}, {}", int(a[0]), signal(a[1])),
            "tgkill" => format!("{}, {}, {}", int(a[0]), int(a[1]), signal(a[2])),
            "mknod" => format!("{}, {}", path(pid, a[0]), file_mode(a[1], a[2])),
            "mknodat" => format!(
                "{}, {}, {}",
                dirfd(a[0]),
                path(pid, a[1]),
                file_mode(a[2], a[3])
            ),
            "msgget" | "semget" | "shmget" => self.get_arguments(),
            "msgsnd" => format!(
                "{}, {}, {}, {}",
                int(a[0]),
                message(pid, a[1], a[2] as usize),
                a[2],
                flags(a[3], MSG_FLAGS)
            ),
            "msgrcv" => format!(
                "{}, {}, {}, {}, {}",
                int(a[0]),
                match returned {
                    Some(len) => message(pid, a[1], len as usize),
                    None => pointer(a[1]),
                },
                a[2],
                a[3] as i64,
                flags(a[4], MSG_FLAGS)
            ),
            "msgctl" | "shmctl" => format!(
                "{}, {}, {}",
                int(a[0]),
                ctl_command(&self.name, a[1]),
                pointer(a[2])
            ),
            "semctl" => format!(
                "{}, {}, {}, {}",
                int(a[0]),
                int(a[1]),
                ctl_command(&self.name, a[2]),
                pointer(a[3])
            ),
            "semop" => format!("{}, {}, {}", int(a[0]), sembufs(pid, a[1], a[2]), a[2]),
            "semtimedop" => format!(
                "{}, {}, {}, {}",
                int(a[0]),
                sembufs(pid, a[1], a[2]),
                a[2],
                timespec(pid, a[3])
            ),
            "shmat" => format!(
                "{}, {}, {}",
                int(a[0]),
                pointer(a[1]),
                flags(a[2], SHM_FLAGS)
            ),
            "shmdt" => pointer(a[0]),
            "mq_open" => mq_open_arguments(pid, a),
            "mq_unlink" => path(pid, a[0]),
            "mq_timedsend" => format!(
                "{}, {}, {}, {}, {}",
                fd(a[0]),
                data(pid, a[1], a[2] as usize),
                a[2],
                a[3] as u32,
                timespec(pid, a[4])
            ),
            "mq_timedreceive" => format!(
                "{}, {}, {}, {}, {}",
                fd(a[0]),
                match returned {
                    Some(len) => data(pid, a[1], len as usize),
                    None => pointer(a[1]),
                },
                a[2],
                match returned {
                    Some(_) if a[3] != 0 => u32_in_brackets(pid, a[3]),
                    _ => pointer(a[3]),
                },
                timespec(pid, a[4])
            ),
            "mq_notify" => format!("{}, {}", fd(a[0]), pointer(a[1])),
            "mq_getsetattr" => format!("{}, {}, {}", fd(a[0]), pointer(a[1]), pointer(a[2])),
            "socket" => format!(
                "{}, {}, {}",
                family(a[0]),
                socket_type(a[1]),
                protocol(a[0], a[2])
            ),
            "socketpair" => format!(
                "{}, {}, {}, {}",
                family(a[0]),
                socket_type(a[1]),
                protocol(a[0], a[2]),
                fd_pair(pid, a[3], ok)
            ),
            "bind" | "connect" => format!(
                "{}, {}, {}",
                fd(a[0]),
                sockaddr(pid, a[1], a[2] as usize),
                a[2] as u32
            ),
            "listen" => format!("{}, {}", fd(a[0]), int(a[1])),
            "accept" => format!("{}, {}, {}", fd(a[0]), pointer(a[1]), pointer(a[2])),
            "accept4" => format!(
                "{}, {}, {}, {}",
                fd(a[0]),
                pointer(a[1]),
                pointer(a[2]),
                flags(a[3], SOCK_FLAGS)
            ),
            "shutdown" => format!("{}, {}", fd(a[0]), shutdown_how(a[1])),
            "eventfd2" => format!("{}, {}", a[0] as u32, flags(a[1], EVENTFD_FLAGS)),
            "read" => format!(
                "{}, {}, {}",
                fd(a[0]),
                match returned {
                    Some(len) => data(pid, a[1], len as usize),
                    None => pointer(a[1]),
                },
                a[2]
            ),
            "write" => format!("{}, {}, {}", fd(a[0]), data(pid, a[1], a[2] as usize), a[2]),
            _ => "...".to_string(),
        }
    }

    /// `msgget(IPC_PRIVATE, IPC_CREAT|0600)`, `semget(key, 2, 0600)`,
    /// `shmget(key, 4096, IPC_CREAT|IPC_EXCL|0600)`.
    fn get_arguments(&self) -> String {
        let a = &self.args;
        let key = match a[0] as i32 {
            libc::IPC_PRIVATE => "IPC_PRIVATE".to_string(),
            key => format!("{:#x}", key as u32),
        };
        let (size, flag_word) = match self.name.as_str() {
            "msgget" => (None, a[1]),
            "semget" => (Some((a[1] as i32).to_string()), a[2]),
            _ => (Some(a[1].to_string()), a[2]),
        };
        let mut flag_names = flag_list(flag_word & !0o777, IPC_FLAGS);
        flag_names.push(octal(flag_word & 0o777));
        match size {
            Some(size) => format!("{key}, {size}, {}", flag_names.join("|")),
            None => format!("{key}, {}", flag_names.join("|")),
        }
    }
}

/// `-1 EBADF (Bad file descriptor)`, or `? ERESTARTSYS (…)` for the
/// kernel's own codes, which a tracer sees when a signal interrupts a call
/// that will be restarted.
fn error(value: i64) -> String {
    let code = -value;
    let restart = match code {
        512 => Some(("ERESTARTSYS", "To be restarted if SA_RESTART is set")),
        513 => Some(("ERESTARTNOINTR", "To be restarted")),
        514 => Some(("ERESTARTNOHAND", "To be restarted if no handler")),
        516 => Some(("ERESTART_RESTARTBLOCK", "Interrupted by signal")),
        _ => None,
    };
    if let Some((name, text)) = restart {
        return format!("? {name} ({text})");
    }
    let errno = Errno::from_raw(code as i32);
    // The C library's text (strerror), as strace shows it.
    let text = std::io::Error::from_raw_os_error(code as i32).to_string();
    let text = text
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string();
    if errno == Errno::UnknownErrno {
        return format!("-1 E{code} ({text})");
    }
    format!("-1 {errno:?} ({text})")
}

// ---- numbers -------------------------------------------------------------

fn int(value: u64) -> String {
    (value as i32).to_string()
}

fn fd(value: u64) -> String {
    int(value)
}

fn hex(value: u64) -> String {
    format!("{value:#x}")
}

/// A mode in octal, as C writes it: `0600`, `000`.
fn octal(value: u64) -> String {
    format!("0{value:02o}")
}

fn pointer(value: u64) -> String {
    if value == 0 {
        "NULL".to_string()
    } else {
        hex(value)
    }
}

fn dirfd(value: u64) -> String {
    match value as i32 {
        libc::AT_FDCWD => "AT_FDCWD".to_string(),
        fd => fd.to_string(),
    }
}

fn signal(value: u64) -> String {
    match value as i32 {
        0 => "0".to_string(),
        signal => signal_name(signal),
    }
}

/// The names of the bits of `value` that `names` knows, then what is left
/// in hexadecimal.
fn flag_list(value: u64, names: &[(u64, &str)]) -> Vec<String> {
    let mut left = value;
    let mut list = Vec::new();
    for &(bit, name) in names {
        if bit != 0 && left & bit == bit {
            list.push(name.to_string());
            left &= !bit;
        }
    }
    if left != 0 {
        list.push(hex(left));
    }
    list
}

/// `A|B|0x40`, or `0`.
fn flags(value: u64, names: &[(u64, &str)]) -> String {
    let list = flag_list(value, names);
    if list.is_empty() {
        "0".to_string()
    } else {
        list.join("|")
    }
}

const O_FLAGS: &[(u64, &str)] = &[
    (libc::O_APPEND as u64, "O_APPEND"),
    (libc::O_NONBLOCK as u64, "O_NONBLOCK"),
    (libc::O_DIRECT as u64, "O_DIRECT"),
    (libc::O_CLOEXEC as u64, "O_CLOEXEC"),
];

fn o_flags(value: u64) -> String {
    flags(value, O_FLAGS)
}

const OPEN_FLAGS: &[(u64, &str)] = &[
    (libc::O_CREAT as u64, "O_CREAT"),
    (libc::O_EXCL as u64, "O_EXCL"),
    (libc::O_NOCTTY as u64, "O_NOCTTY"),
    (libc::O_TRUNC as u64, "O_TRUNC"),
    (libc::O_APPEND as u64, "O_APPEND"),
    (libc::O_NONBLOCK as u64, "O_NONBLOCK"),
    (libc::O_CLOEXEC as u64, "O_CLOEXEC"),
];

/// `O_RDWR|O_CREAT|O_EXCL`.
fn open_flags(value: u64) -> String {
    let access = match value as i32 & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    };
    let mut list = vec![access.to_string()];
    list.extend(flag_list(value & !(libc::O_ACCMODE as u64), OPEN_FLAGS));
    list.join("|")
}

const AT_FLAGS: &[(u64, &str)] = &[
    (libc::AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
    (libc::AT_EMPTY_PATH as u64, "AT_EMPTY_PATH"),
];

fn at_flags(value: u64) -> String {
    flags(value, AT_FLAGS)
}

const WAIT_FLAGS: &[(u64, &str)] = &[
    (libc::WNOHANG as u64, "WNOHANG"),
    (libc::WUNTRACED as u64, "WUNTRACED"),
    (libc::WEXITED as u64, "WEXITED"),
    (libc::WCONTINUED as u64, "WCONTINUED"),
    (libc::WNOWAIT as u64, "WNOWAIT"),
    (libc::__WNOTHREAD as u32 as u64, "__WNOTHREAD"),
    (libc::__WALL as u32 as u64, "__WALL"),
    (libc::__WCLONE as u32 as u64, "__WCLONE"),
];

fn id_type(value: u64) -> String {
    match value as u32 {
        libc::P_ALL => "P_ALL".to_string(),
        libc::P_PID => "P_PID".to_string(),
        libc::P_PGID => "P_PGID".to_string(),
        libc::P_PIDFD => "P_PIDFD".to_string(),
        other => other.to_string(),
    }
}

const IPC_FLAGS: &[(u64, &str)] = &[
    (libc::IPC_CREAT as u64, "IPC_CREAT"),
    (libc::IPC_EXCL as u64, "IPC_EXCL"),
    (libc::IPC_NOWAIT as u64, "IPC_NOWAIT"),
];

const MSG_FLAGS: &[(u64, &str)] = &[
    (libc::IPC_NOWAIT as u64, "IPC_NOWAIT"),
    (libc::MSG_NOERROR as u64, "MSG_NOERROR"),
    (libc::MSG_EXCEPT as u64, "MSG_EXCEPT"),
    (libc::MSG_COPY as u64, "MSG_COPY"),
];

const SEM_FLAGS: &[(u64, &str)] = &[
    (libc::SEM_UNDO as u64, "SEM_UNDO"),
    (libc::IPC_NOWAIT as u64, "IPC_NOWAIT"),
];

const SHM_FLAGS: &[(u64, &str)] = &[
    (libc::SHM_RDONLY as u64, "SHM_RDONLY"),
    (libc::SHM_RND as u64, "SHM_RND"),
    (libc::SHM_REMAP as u64, "SHM_REMAP"),
    (libc::SHM_EXEC as u64, "SHM_EXEC"),
];

/// The flag some C libraries add to a `*ctl` command to ask for the
/// 64-bit structures.
const IPC_64: u64 = 0x100;

/// `IPC_RMID`, `SETVAL`, `IPC_STAT|IPC_64`.
fn ctl_command(call: &str, value: u64) -> String {
    let command = value & !IPC_64;
    let name = match (command as i32, call) {
        (libc::IPC_RMID, _) => "IPC_RMID",
        (libc::IPC_SET, _) => "IPC_SET",
        (libc::IPC_STAT, _) => "IPC_STAT",
        (libc::IPC_INFO, _) => "IPC_INFO",
        (11, "msgctl") => "MSG_STAT",
        (12, "msgctl") => "MSG_INFO",
        (13, "msgctl") => "MSG_STAT_ANY",
        (11, "semctl") => "GETPID",
        (12, "semctl") => "GETVAL",
        (13, "semctl") => "GETALL",
        (14, "semctl") => "GETNCNT",
        (15, "semctl") => "GETZCNT",
        (16, "semctl") => "SETVAL",
        (17, "semctl") => "SETALL",
        (18, "semctl") => "SEM_STAT",
        (19, "semctl") => "SEM_INFO",
        (20, "semctl") => "SEM_STAT_ANY",
        (11, "shmctl") => "SHM_LOCK",
        (12, "shmctl") => "SHM_UNLOCK",
        (13, "shmctl") => "SHM_STAT",
        (14, "shmctl") => "SHM_INFO",
        (15, "shmctl") => "SHM_STAT_ANY",
        _ => return hex(value),
    };
    if value & IPC_64 != 0 {
        format!("{name}|IPC_64")
    } else {
        name.to_string()
    }
}

const SOCK_FLAGS: &[(u64, &str)] = &[
    (libc::SOCK_NONBLOCK as u64, "SOCK_NONBLOCK"),
    (libc::SOCK_CLOEXEC as u64, "SOCK_CLOEXEC"),
];

fn family(value: u64) -> String {
    match value as i32 {
        libc::AF_UNIX => "AF_UNIX".to_string(),
        libc::AF_INET => "AF_INET".to_string(),
        libc::AF_INET6 => "AF_INET6".to_string(),
        libc::AF_NETLINK => "AF_NETLINK".to_string(),
        libc::AF_PACKET => "AF_PACKET".to_string(),
        other => other.to_string(),
    }
}

/// `SOCK_STREAM|SOCK_CLOEXEC`.
fn socket_type(value: u64) -> String {
    let kind = match value as i32 & 0xf {
        libc::SOCK_STREAM => "SOCK_STREAM".to_string(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".to_string(),
        libc::SOCK_RAW => "SOCK_RAW".to_string(),
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET".to_string(),
        other => other.to_string(),
    };
    let mut list = vec![kind];
    list.extend(flag_list(value & !0xf, SOCK_FLAGS));
    list.join("|")
}

/// `IPPROTO_TCP` and friends for internet sockets, a number otherwise.
fn protocol(family: u64, value: u64) -> String {
    let internet = matches!(family as i32, libc::AF_INET | libc::AF_INET6);
    match (internet, value as i32) {
        (true, libc::IPPROTO_IP) => "IPPROTO_IP".to_string(),
        (true, libc::IPPROTO_TCP) => "IPPROTO_TCP".to_string(),
        (true, libc::IPPROTO_UDP) => "IPPROTO_UDP".to_string(),
        (_, other) => other.to_string(),
    }
}

fn shutdown_how(value: u64) -> String {
    match value as i32 {
        libc::SHUT_RD => "SHUT_RD".to_string(),
        libc::SHUT_WR => "SHUT_WR".to_string(),
        libc::SHUT_RDWR => "SHUT_RDWR".to_string(),
        other => other.to_string(),
    }
}

const EVENTFD_FLAGS: &[(u64, &str)] = &[
    (libc::EFD_SEMAPHORE as u64, "EFD_SEMAPHORE"),
    (libc::EFD_NONBLOCK as u64, "EFD_NONBLOCK"),
    (libc::EFD_CLOEXEC as u64, "EFD_CLOEXEC"),
];

/// `S_IFIFO|0600` (the device number only for device files).
fn file_mode(mode: u64, dev: u64) -> String {
    let kind = match mode as u32 & libc::S_IFMT {
        libc::S_IFIFO => "S_IFIFO",
        libc::S_IFCHR => "S_IFCHR",
        libc::S_IFBLK => "S_IFBLK",
        libc::S_IFSOCK => "S_IFSOCK",
        libc::S_IFREG => "S_IFREG",
        _ => "",
    };
    let permissions = octal(mode & 0o7777);
    let mode_text = if kind.is_empty() {
        permissions
    } else {
        format!("{kind}|{permissions}")
    };
    match mode as u32 & libc::S_IFMT {
        libc::S_IFCHR | libc::S_IFBLK => format!(
            "{mode_text}, makedev({:#x}, {:#x})",
            libc::major(dev),
            libc::minor(dev)
        ),
        _ => mode_text,
    }
}

// ---- clone ---------------------------------------------------------------

const CLONE_FLAGS: &[(u64, &str)] = &[
    (0x100, "CLONE_VM"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"),
    (0x2000, "CLONE_PTRACE"),
    (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"),
    (0x10000, "CLONE_THREAD"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x80000, "CLONE_SETTLS"),
    (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"),
    (0x400000, "CLONE_DETACHED"),
    (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"),
    (0x2000000, "CLONE_NEWCGROUP"),
    (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
    (0x100000000, "CLONE_CLEAR_SIGHAND"),
    (0x200000000, "CLONE_INTO_CGROUP"),
];
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PIDFD: u64 = 0x1000;

/// The flags of `clone`, and its exit signal (the low byte) at the end:
/// `CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD`.
fn clone_flags(value: u64, exit_signal: u64) -> String {
    let mut list = flag_list(value, CLONE_FLAGS);
    if exit_signal != 0 {
        list.push(signal(exit_signal));
    }
    if list.is_empty() {
        "0".to_string()
    } else {
        list.join("|")
    }
}

/// `child_stack=NULL, flags=…, child_tidptr=0x7f…`: the arguments strace
/// shows, which depend on the flags. The order of the registers differs:
/// x86-64 passes (flags, stack, parent_tid, child_tid, tls), aarch64
/// (flags, stack, parent_tid, tls, child_tid).
fn clone_arguments(a: &[u64; 6]) -> String {
    let (child_tid, tls) = if cfg!(target_arch = "x86_64") {
        (a[3], a[4])
    } else {
        (a[4], a[3])
    };
    let mut out = format!(
        "child_stack={}, flags={}",
        pointer(a[1]),
        clone_flags(a[0] & !0xff, a[0] & 0xff)
    );
    if a[0] & CLONE_PARENT_SETTID != 0 {
        let _ = write!(out, ", parent_tid={}", pointer(a[2]));
    }
    if a[0] & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) != 0 {
        let _ = write!(out, ", child_tidptr={}", pointer(child_tid));
    }
    if a[0] & CLONE_SETTLS != 0 {
        let _ = write!(out, ", tls={}", pointer(tls));
    }
    out
}

/// `{flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x…,
/// stack_size=0x9000}`, read from `struct clone_args`.
fn clone3_arguments(pid: Pid, address: u64, size: u64) -> String {
    let len = (size as usize).min(64);
    let Some(bytes) = bytes(pid, address, len).filter(|bytes| bytes.len() >= 64) else {
        return pointer(address);
    };
    let field =
        |at: usize| u64::from_ne_bytes(bytes[at * 8..at * 8 + 8].try_into().unwrap_or([0; 8]));
    let (flags, pidfd, child_tid, parent_tid) = (field(0), field(1), field(2), field(3));
    let (exit_signal, stack, stack_size, tls) = (field(4), field(5), field(6), field(7));
    let mut out = format!("{{flags={}", flags_or_zero(flags));
    if flags & CLONE_PIDFD != 0 {
        let _ = write!(out, ", pidfd={}", pointer(pidfd));
    }
    if flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) != 0 {
        let _ = write!(out, ", child_tid={}", pointer(child_tid));
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = write!(out, ", parent_tid={}", pointer(parent_tid));
    }
    let _ = write!(
        out,
        ", exit_signal={}, stack={}, stack_size={:#x}",
        signal(exit_signal),
        pointer(stack),
        stack_size
    );
    if flags & CLONE_SETTLS != 0 {
        let _ = write!(out, ", tls={}", pointer(tls));
    }
    out.push('}');
    out
}

fn flags_or_zero(value: u64) -> String {
    flags(value, CLONE_FLAGS)
}

// ---- memory --------------------------------------------------------------

/// `len` bytes of `pid`'s memory at `address`, if they can be read.
fn bytes(pid: Pid, address: u64, len: usize) -> Option<Vec<u8>> {
    if address == 0 {
        return None;
    }
    read_memory(pid, address, len)
        .ok()
        .filter(|read| read.len() == len)
}

/// The NUL-terminated string at `address`, up to `max` bytes: read a word
/// at a time, so that a string that ends just before an unmapped page is
/// still read. `None` if nothing could be read; the flag says whether the
/// string was longer than `max`.
fn c_string(pid: Pid, address: u64, max: usize) -> Option<(Vec<u8>, bool)> {
    if address == 0 {
        return None;
    }
    let mut text = Vec::new();
    let mut at = address;
    while text.len() < max {
        // Up to the next multiple of 8: never across a page boundary.
        let chunk = 8 - (at % 8) as usize;
        let read = read_memory(pid, at, chunk).ok()?;
        if let Some(end) = read.iter().position(|&byte| byte == 0) {
            text.extend_from_slice(&read[..end]);
            return Some((text, false));
        }
        text.extend_from_slice(&read);
        at += chunk as u64;
    }
    text.truncate(max);
    Some((text, true))
}

/// A quoted path or name, in full; the address if it cannot be read.
fn path(pid: Pid, address: u64) -> String {
    match c_string(pid, address, PATH_MAX) {
        Some((text, _)) => quote(&text),
        None => pointer(address),
    }
}

/// `len` bytes of data, quoted, at most [`SHOWN_BYTES`] of them (then
/// `...`); the address if they cannot be read.
fn data(pid: Pid, address: u64, len: usize) -> String {
    let shown = len.min(SHOWN_BYTES);
    match bytes(pid, address, shown) {
        Some(read) if len > shown => format!("{}...", quote(&read)),
        Some(read) => quote(&read),
        None => pointer(address),
    }
}

/// `"text"` as strace writes it: printable ASCII as itself, `\n`, `\t`,
/// `\r`, `\"`, `\\`, anything else in octal (`\0`, `\377`; three digits
/// when a digit follows).
fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for (at, &byte) in bytes.iter().enumerate() {
        match byte {
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let digit_follows = bytes.get(at + 1).is_some_and(u8::is_ascii_digit);
                if digit_follows {
                    let _ = write!(out, "\\{byte:03o}");
                } else {
                    let _ = write!(out, "\\{byte:o}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// The two descriptors an array of two ints holds: `[3, 4]`; the address
/// if the call failed (the kernel wrote nothing) or it cannot be read.
fn fd_pair(pid: Pid, address: u64, succeeded: bool) -> String {
    let pair = succeeded.then(|| bytes(pid, address, 8)).flatten();
    match pair {
        Some(read) => {
            let first = i32::from_ne_bytes([read[0], read[1], read[2], read[3]]);
            let second = i32::from_ne_bytes([read[4], read[5], read[6], read[7]]);
            format!("[{first}, {second}]")
        }
        None => pointer(address),
    }
}

/// `[2]`: an unsigned int the kernel wrote.
fn u32_in_brackets(pid: Pid, address: u64) -> String {
    match bytes(pid, address, 4) {
        Some(read) => format!(
            "[{}]",
            u32::from_ne_bytes([read[0], read[1], read[2], read[3]])
        ),
        None => pointer(address),
    }
}

/// What `wait4` stored, `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`, once
/// it returned a pid; the address otherwise.
fn wait_status(pid: Pid, address: u64, reaped: bool) -> String {
    if address == 0 {
        return "NULL".to_string();
    }
    let stored = reaped.then(|| bytes(pid, address, 4)).flatten();
    let Some(read) = stored else {
        return pointer(address);
    };
    let status = i32::from_ne_bytes([read[0], read[1], read[2], read[3]]);
    let text = if libc::WIFEXITED(status) {
        format!(
            "WIFEXITED(s) && WEXITSTATUS(s) == {}",
            libc::WEXITSTATUS(status)
        )
    } else if libc::WIFSIGNALED(status) {
        let core = if libc::WCOREDUMP(status) {
            " && WCOREDUMP(s)"
        } else {
            ""
        };
        format!(
            "WIFSIGNALED(s) && WTERMSIG(s) == {}{core}",
            signal_name(libc::WTERMSIG(status))
        )
    } else if libc::WIFSTOPPED(status) {
        format!(
            "WIFSTOPPED(s) && WSTOPSIG(s) == {}",
            signal_name(libc::WSTOPSIG(status))
        )
    } else if libc::WIFCONTINUED(status) {
        "WIFCONTINUED(s)".to_string()
    } else {
        format!("{status:#x}")
    };
    format!("[{{{text}}}]")
}

/// `{mtype=7, mtext="hello"}`: a System V message of `len` bytes of text.
fn message(pid: Pid, address: u64, len: usize) -> String {
    let long = std::mem::size_of::<libc::c_long>();
    let Some(kind) = bytes(pid, address, long) else {
        return pointer(address);
    };
    let mtype = libc::c_long::from_ne_bytes(kind.try_into().unwrap_or([0; 8]));
    format!(
        "{{mtype={mtype}, mtext={}}}",
        data(pid, address + long as u64, len)
    )
}

/// `[{sem_num=0, sem_op=-1, sem_flg=SEM_UNDO}]`: `count` `struct sembuf`s.
fn sembufs(pid: Pid, address: u64, count: u64) -> String {
    const SEMBUF: usize = 6;
    let shown = (count as usize).min(SHOWN_ARGS);
    let Some(read) = bytes(pid, address, shown * SEMBUF) else {
        return pointer(address);
    };
    let items: Vec<String> = read
        .chunks_exact(SEMBUF)
        .map(|op| {
            let number = u16::from_ne_bytes([op[0], op[1]]);
            let change = i16::from_ne_bytes([op[2], op[3]]);
            let flag_word = i16::from_ne_bytes([op[4], op[5]]) as u16 as u64;
            format!(
                "{{sem_num={number}, sem_op={change}, sem_flg={}}}",
                flags(flag_word, SEM_FLAGS)
            )
        })
        .collect();
    let more = if count as usize > shown { ", ..." } else { "" };
    format!("[{}{more}]", items.join(", "))
}

/// `NULL` or `{tv_sec=1, tv_nsec=0}`.
fn timespec(pid: Pid, address: u64) -> String {
    if address == 0 {
        return "NULL".to_string();
    }
    match bytes(pid, address, 16) {
        Some(read) => {
            let seconds = i64::from_ne_bytes(read[..8].try_into().unwrap_or([0; 8]));
            let nanos = i64::from_ne_bytes(read[8..].try_into().unwrap_or([0; 8]));
            format!("{{tv_sec={seconds}, tv_nsec={nanos}}}")
        }
        None => pointer(address),
    }
}

/// `"name", O_RDWR|O_CREAT, 0600, {mq_flags=0, …}`: the mode and the
/// attributes count only with `O_CREAT`.
fn mq_open_arguments(pid: Pid, a: &[u64; 6]) -> String {
    let mut out = format!("{}, {}", path(pid, a[0]), open_flags(a[1]));
    if a[1] as i32 & libc::O_CREAT != 0 {
        let _ = write!(out, ", {}, {}", octal(a[2] & 0o7777), mq_attr(pid, a[3]));
    }
    out
}

fn mq_attr(pid: Pid, address: u64) -> String {
    if address == 0 {
        return "NULL".to_string();
    }
    match bytes(pid, address, 32) {
        Some(read) => {
            let field = |at: usize| {
                i64::from_ne_bytes(read[at * 8..at * 8 + 8].try_into().unwrap_or([0; 8]))
            };
            format!(
                "{{mq_flags={}, mq_maxmsg={}, mq_msgsize={}, mq_curmsgs={}}}",
                field(0),
                field(1),
                field(2),
                field(3)
            )
        }
        None => pointer(address),
    }
}

/// `{sa_family=AF_UNIX, sun_path="/tmp/srv.sock"}`, `sun_path=@"name"`
/// for an abstract name, `{sa_family=AF_INET, sin_port=htons(80),
/// sin_addr=inet_addr("127.0.0.1")}`.
fn sockaddr(pid: Pid, address: u64, len: usize) -> String {
    let len = len.min(128);
    let Some(read) = bytes(pid, address, len).filter(|read| read.len() >= 2) else {
        return pointer(address);
    };
    let family_number = u16::from_ne_bytes([read[0], read[1]]);
    let family_name = family(u64::from(family_number));
    match i32::from(family_number) {
        libc::AF_UNIX if read.len() == 2 => format!("{{sa_family={family_name}}}"),
        libc::AF_UNIX => {
            let name = &read[2..];
            if name.first() == Some(&0) {
                format!(
                    "{{sa_family={family_name}, sun_path=@{}}}",
                    quote(&name[1..])
                )
            } else {
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                format!(
                    "{{sa_family={family_name}, sun_path={}}}",
                    quote(&name[..end])
                )
            }
        }
        libc::AF_INET if read.len() >= 8 => format!(
            "{{sa_family={family_name}, sin_port=htons({}), sin_addr=inet_addr(\"{}\")}}",
            u16::from_be_bytes([read[2], read[3]]),
            std::net::Ipv4Addr::new(read[4], read[5], read[6], read[7])
        ),
        libc::AF_INET6 if read.len() >= 24 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&read[8..24]);
            format!(
                "{{sa_family={family_name}, sin6_port=htons({}), sin6_addr=\"{}\"}}",
                u16::from_be_bytes([read[2], read[3]]),
                std::net::Ipv6Addr::from(octets)
            )
        }
        _ => format!("{{sa_family={family_name}}}"),
    }
}

/// `"/usr/bin/cat", ["cat", "-n"], 0x7ffd… /* 12 vars */`: the arguments
/// of an `execve`, read at its entry.
fn exec_arguments(pid: Pid, path_address: u64, argv: u64, envp: u64) -> String {
    let arguments = pointer_array(pid, argv);
    let shown: Vec<String> = arguments
        .iter()
        .take(SHOWN_ARGS)
        .map(|&address| match c_string(pid, address, SHOWN_BYTES) {
            Some((text, true)) => format!("{}...", quote(&text)),
            Some((text, false)) => quote(&text),
            None => pointer(address),
        })
        .collect();
    let more = if arguments.len() > SHOWN_ARGS {
        ", ..."
    } else {
        ""
    };
    let variables = pointer_array(pid, envp).len();
    format!(
        "{}, [{}{more}], {} /* {variables} vars */",
        path(pid, path_address),
        shown.join(", "),
        pointer(envp)
    )
}

/// The pointers of a NULL-terminated array (`argv`, `envp`), at most 4096.
fn pointer_array(pid: Pid, address: u64) -> Vec<u64> {
    let mut pointers = Vec::new();
    let mut at = address;
    while address != 0 && pointers.len() < 4096 {
        match bytes(pid, at, 8) {
            Some(read) => {
                let value = u64::from_ne_bytes(read.try_into().unwrap_or([0; 8]));
                if value == 0 {
                    break;
                }
                pointers.push(value);
            }
            None => break,
        }
        at += 8;
    }
    pointers
}

// ---- descriptors ---------------------------------------------------------

/// Whether descriptor `fd` of `pid` is an IPC one: a pipe or FIFO, a
/// socket, a POSIX message queue, or an anonymous inode (eventfd,
/// signalfd …). `/proc/PID/fd/FD` is a link to what the descriptor is
/// open on: `pipe:[1234]`, `socket:[5678]`, `anon_inode:[eventfd]`, or a
/// path (a FIFO, a queue in the mqueue file system, a plain file).
pub fn is_ipc_descriptor(pid: Pid, fd: u64) -> bool {
    let link = format!("/proc/{pid}/fd/{}", fd as i32);
    let Ok(target) = std::fs::read_link(&link) else {
        return false;
    };
    let target = target.to_string_lossy();
    if ["pipe:", "socket:", "anon_inode:"]
        .iter()
        .any(|kind| target.starts_with(kind))
    {
        return true;
    }
    let is_fifo_or_socket = std::fs::metadata(&link).is_ok_and(|meta| {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_fifo() || meta.file_type().is_socket()
    });
    is_fifo_or_socket || on_mqueue_fs(&link)
}

/// Whether `path` is on the POSIX message queue file system.
fn on_mqueue_fs(path: &str) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|fs| fs.filesystem_type() == MQUEUE_MAGIC)
}
