//! What `/proc` shows about a process's signals, children and descriptors,
//! for suites that grade signal handling from the outside: a blocked
//! signal that is pending, a handler that is installed, a child that is a
//! zombie, a descriptor a child should not have inherited.

use std::fs;

/// The signal fields of `/proc/PID/status`, as 64-bit masks: bit `n - 1`
/// stands for signal `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalState {
    /// `SigPnd`: signals pending for the thread itself (`tgkill`, `raise`).
    pub thread_pending: u64,
    /// `ShdPnd`: signals pending for the whole process (`kill`, `sigqueue`,
    /// `SIGCHLD` …).
    pub process_pending: u64,
    /// `SigBlk`: the signal mask of the process's (main) thread.
    pub blocked: u64,
    /// `SigIgn`: signals whose disposition is `SIG_IGN`.
    pub ignored: u64,
    /// `SigCgt`: signals with a handler installed.
    pub caught: u64,
}

impl SignalState {
    /// Reads `/proc/PID/status`; `None` if the process is gone (a zombie
    /// has no signal state worth reading: its fields are empty).
    pub fn of(pid: u32) -> Option<SignalState> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        };
        Some(SignalState {
            thread_pending: field("SigPnd")?,
            process_pending: field("ShdPnd")?,
            blocked: field("SigBlk")?,
            ignored: field("SigIgn")?,
            caught: field("SigCgt")?,
        })
    }

    /// Whether `mask` (one of the fields) holds signal `signo`.
    pub fn has(mask: u64, signo: i32) -> bool {
        (1..=64).contains(&signo) && mask & (1u64 << (signo - 1)) != 0
    }

    /// Whether `signo` is pending, for the thread or the process.
    pub fn is_pending(&self, signo: i32) -> bool {
        SignalState::has(self.thread_pending | self.process_pending, signo)
    }
}

/// The state letter of process `pid` (`R`, `S`, `T` for stopped, `Z` for
/// a zombie …), from `/proc/PID/stat`; `None` once it has been reaped.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count from the
    // last `)`.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// The children of process `pid` that have not been reaped, zombies
/// included, with their state letters, lowest pid first.
pub fn children_of(pid: u32) -> Vec<(u32, char)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<(u32, char)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| {
            let stat = fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
            let state = rest.next()?.chars().next()?;
            let parent: u32 = rest.next()?.parse().ok()?;
            (parent == pid).then_some((child, state))
        })
        .collect();
    children.sort_unstable();
    children
}

/// One open descriptor of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Its number.
    pub fd: i32,
    /// What it refers to, as `/proc/PID/fd/N` reads: a path, `pipe:[…]`,
    /// `anon_inode:[signalfd]` ….
    pub target: String,
    /// Its file status flags and close-on-exec flag, from the `flags:`
    /// line of `/proc/PID/fdinfo/N` (`O_NONBLOCK` is `0o4000`,
    /// `O_CLOEXEC` is `0o2000000`).
    pub flags: i32,
}

impl Descriptor {
    /// Whether it is closed by `exec` (`O_CLOEXEC`, `FD_CLOEXEC`).
    pub fn is_cloexec(&self) -> bool {
        self.flags & libc::O_CLOEXEC != 0
    }

    /// Whether it is non-blocking (`O_NONBLOCK`).
    pub fn is_nonblocking(&self) -> bool {
        self.flags & libc::O_NONBLOCK != 0
    }
}

/// The open descriptors of process `pid`, lowest first; empty if it is
/// gone or not ours to look at.
pub fn descriptors_of(pid: u32) -> Vec<Descriptor> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut descriptors: Vec<Descriptor> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|fd| {
            let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
            let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
            let flags = info
                .lines()
                .find_map(|line| line.strip_prefix("flags:"))
                .and_then(|octal| i32::from_str_radix(octal.trim(), 8).ok())?;
            Some(Descriptor {
                fd,
                target: target.to_string_lossy().into_owned(),
                flags,
            })
        })
        .collect();
    descriptors.sort_by_key(|descriptor| descriptor.fd);
    descriptors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_as_the_kernel_shows_it() {
        let me = std::process::id();
        let state = SignalState::of(me).expect("our own status");
        // Rust ignores SIGPIPE before main.
        assert!(SignalState::has(state.ignored, libc::SIGPIPE), "{state:?}");
        assert!(!SignalState::has(state.ignored, libc::SIGTERM), "{state:?}");
        // The main thread waits for the test threads: asleep.
        assert!(matches!(process_state(me), Some('R' | 'S')));
        let mut ends = [0; 2];
        // SAFETY: pipe2(2) fills the array it is given.
        let made = unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        assert_eq!(made, 0, "pipe2");
        let fds = descriptors_of(me);
        let found = |fd: i32| fds.iter().find(|d| d.fd == fd).cloned();
        let (read, write) = (found(ends[0]), found(ends[1]));
        // SAFETY: closing the two descriptors pipe2 returned, once.
        unsafe {
            libc::close(ends[0]);
            libc::close(ends[1]);
        }
        let (read, write) = (read.expect("the read end"), write.expect("the write end"));
        assert!(read.target.starts_with("pipe:["), "{read:?}");
        assert_eq!(read.target, write.target);
        assert!(read.is_cloexec() && read.is_nonblocking(), "{read:?}");
    }

    #[test]
    fn a_child_is_listed_until_it_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let me = std::process::id();
        assert!(children_of(me).iter().any(|&(p, _)| p == pid));
        child.kill().expect("kill the child");
        child.wait().expect("reap the child");
        assert!(!children_of(me).iter().any(|&(p, _)| p == pid));
        assert_eq!(process_state(pid), None);
    }
}
