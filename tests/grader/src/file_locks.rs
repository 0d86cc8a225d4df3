//! File locks as the kernel lists them, and waits that file-lock tests
//! need.
//!
//! `/proc/locks` lists every lock on the machine (filtered to the reader's
//! PID namespace), one line each, and every request waiting for one on a
//! line of its own, marked `->`:
//!
//! ```text
//! 1: POSIX  ADVISORY  WRITE 4242 fe:00:10101144 0 9
//! 1: -> POSIX  ADVISORY  WRITE 4243 fe:00:10101144 0 9
//! 2: OFDLCK ADVISORY  READ  -1 fe:00:10101144 10 EOF
//! 3: FLOCK  ADVISORY  WRITE 4250 fe:00:10133507 0 EOF
//! ```
//!
//! Fields: the class (`FLOCK`, `POSIX` for process-associated record
//! locks, `OFDLCK` for open file description locks, `LEASE` …), advisory or
//! mandatory, `READ` or `WRITE`, the owner's pid (-1 for OFD locks), the
//! file as `MAJOR:MINOR:INODE` (major and minor of the device in hex, the
//! inode in decimal), and the first and last byte (`EOF`: to the end and
//! beyond). [`file_locks_on`] reads the lines about one file, as a test
//! sees its program's locks, with no help from the program.
//!
//! `/proc/locks` is not a snapshot: the kernel hands it out a page at a
//! time, holding its lists still only within one page, and finds its place
//! again by counting lines. A lock that another process adds or removes
//! between two pages shifts the rest, and one line can be skipped (or
//! shown twice). On a machine where other processes lock files, a test
//! must not conclude from one reading that a lock is absent: wait for the
//! lock it expects, reading again. [`locks_held_by`] has no such trouble:
//! it reads one process's locks on one file from `/proc/PID/fdinfo/FD`
//! (its `lock:` lines, Linux 4.1 and later), each small enough to come
//! whole; but it shows locks held, never requests waiting.
//!
//! A test that has signalled a process often needs it gone, and its locks
//! with it, before the next step: [`kill_and_wait`] waits for that through
//! a pidfd, without guessing with a sleep. And a process that should be
//! asleep on one of several calls (waiting for a lock in `fcntl` or in
//! `flock`) is awaited with [`Running::wait_until_blocked_in_one_of`].

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::running::{Blocked, Running};

/// Who owns a lock listed in `/proc/locks`, by its first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockClass {
    /// `FLOCK`: `flock(2)`, owned by an open file description.
    Flock,
    /// `POSIX`: an `fcntl(2)` record lock owned by a process.
    Posix,
    /// `OFDLCK`: an `fcntl(2)` record lock owned by an open file
    /// description.
    Ofd,
    /// Anything else (`LEASE`, `DELEG` …).
    Other,
}

/// One line of `/proc/locks`: a lock, or a request waiting for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLock {
    /// Its class.
    pub class: LockClass,
    /// `WRITE` (exclusive) rather than `READ` (shared).
    pub write: bool,
    /// The owner's pid; -1 for an open file description lock.
    pub pid: i32,
    /// The first byte.
    pub start: u64,
    /// The last byte, or `None` for `EOF` (to the end of the file and
    /// beyond).
    pub end: Option<u64>,
    /// A request waiting for this lock (a `->` line), not a lock held.
    pub waiting: bool,
}

impl FileLock {
    /// The line's words, e.g. `POSIX WRITE pid 4242 bytes 0-9`, for
    /// messages.
    pub fn describe(&self) -> String {
        let class = match self.class {
            LockClass::Flock => "FLOCK",
            LockClass::Posix => "POSIX",
            LockClass::Ofd => "OFDLCK",
            LockClass::Other => "other",
        };
        let access = if self.write { "WRITE" } else { "READ" };
        let end = self.end.map_or("EOF".to_string(), |end| end.to_string());
        let waiting = if self.waiting { "waiting: " } else { "" };
        format!(
            "{waiting}{class} {access} pid {} bytes {}-{end}",
            self.pid, self.start
        )
    }
}

/// The locks on the file at `path`, and the requests waiting for them, as
/// `/proc/locks` lists them now. A file that cannot be found has none.
pub fn file_locks_on(path: &Path) -> Vec<FileLock> {
    let Ok(meta) = fs::metadata(path) else {
        return Vec::new();
    };
    let dev = meta.dev();
    let file = (
        u64::from(libc::major(dev)),
        u64::from(libc::minor(dev)),
        meta.ino(),
    );
    fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter_map(parse_line)
        .filter(|(on, _)| *on == file)
        .map(|(_, lock)| lock)
        .collect()
}

/// The locks process `pid` holds on the file at `path`, from the `lock:`
/// lines of `/proc/PID/fdinfo/FD` for each of its descriptors of that file
/// (a process-associated lock shows under each; it is listed once). A
/// process with no descriptor of the file holds no lock on it.
pub fn locks_held_by(pid: u32, path: &Path) -> Vec<FileLock> {
    let Ok(meta) = fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut held = Vec::new();
    for fd in fds.flatten() {
        // The magic link leads to the open file itself.
        let same_file = fs::metadata(fd.path())
            .is_ok_and(|open| open.dev() == meta.dev() && open.ino() == meta.ino());
        if !same_file {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        let locks = info
            .lines()
            .filter_map(|line| line.strip_prefix("lock:"))
            .filter_map(|line| parse_line(line.trim_start()))
            .map(|(_, lock)| lock);
        for lock in locks {
            if !held.contains(&lock) {
                held.push(lock);
            }
        }
    }
    held
}

/// One line of `/proc/locks`: the file it is about (major, minor, inode)
/// and the lock.
fn parse_line(line: &str) -> Option<((u64, u64, u64), FileLock)> {
    let mut words = line.split_whitespace().skip(1).peekable();
    let waiting = words.next_if_eq(&"->").is_some();
    let class = match words.next()? {
        "FLOCK" => LockClass::Flock,
        "POSIX" => LockClass::Posix,
        "OFDLCK" => LockClass::Ofd,
        _ => LockClass::Other,
    };
    let _advisory = words.next()?;
    let write = match words.next()? {
        "WRITE" => true,
        "READ" => false,
        _ => return None,
    };
    let pid = words.next()?.parse().ok()?;
    let mut device = words.next()?.split(':');
    let major = u64::from_str_radix(device.next()?, 16).ok()?;
    let minor = u64::from_str_radix(device.next()?, 16).ok()?;
    let inode = device.next()?.parse().ok()?;
    let start = words.next()?.parse().ok()?;
    let end = match words.next()? {
        "EOF" => None,
        last => Some(last.parse().ok()?),
    };
    let lock = FileLock {
        class,
        write,
        pid,
        start,
        end,
        waiting,
    };
    Some(((major, minor, inode), lock))
}

/// Sends `signal` to process `pid` and waits, at most `timeout`, until it
/// has ended: its descriptors closed, its locks released. `Err` says why
/// not.
///
/// The wait goes through a pidfd (`pidfd_open`, Linux 5.3), opened before
/// the signal is sent, so that it names that process even if its pid is
/// reused; the pidfd becomes readable once the process has exited, after
/// the kernel has closed its files. A process already gone (reaped) is
/// fine.
pub fn kill_and_wait(pid: u32, signal: i32, timeout: Duration) -> Result<(), String> {
    let pid = i32::try_from(pid).map_err(|_| format!("no such pid {pid}"))?;
    // SAFETY: the system call takes two integers and returns a new
    // descriptor, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            _ => Err(format!("pidfd_open({pid}): {error}")),
        };
    }
    // SAFETY: a descriptor the kernel has just made for this call alone.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let null: *const libc::siginfo_t = std::ptr::null();
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            null,
            0,
        )
    };
    if sent < 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ESRCH) {
            return Err(format!("pidfd_send_signal({pid}, {signal}): {error}"));
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, and its count.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready > 0 {
            return Ok(());
        }
        if ready == 0 {
            return Err(format!(
                "pid {pid} was still running {} s after signal {signal}",
                timeout.as_secs_f32()
            ));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("poll on the pidfd of {pid}: {error}"));
        }
    }
}

/// How long a wait naps between two looks at the program.
const NAP: Duration = Duration::from_millis(1);

impl Running {
    /// Waits until the program is asleep in one of the system calls
    /// `calls` (`libc::SYS_fcntl`, `libc::SYS_flock` …), as
    /// `/proc/PID/syscall` shows it: for a program that waits for a lock
    /// in whichever call its code uses. Fails the test, as
    /// [`Running::wait_until_blocked_in`] does, if the program ends first
    /// or `timeout` passes.
    pub fn wait_until_blocked_in_one_of(&mut self, calls: &[libc::c_long], timeout: Duration) {
        let names: Vec<String> = calls
            .iter()
            .map(|&call| crate::procfs::manual_name(call))
            .collect();
        let wanted: Vec<String> = calls
            .iter()
            .map(|&call| crate::procfs::syscall_name(call))
            .collect();
        let deadline = Instant::now() + timeout;
        loop {
            match self.wait_until_blocked(Duration::ZERO) {
                Blocked::In(call) if wanted.contains(&call) => return,
                Blocked::Exited(status) => {
                    let stderr = self.stderr();
                    let why = match stderr.lines().rev().find(|line| !line.trim().is_empty()) {
                        Some(last) => format!("it ended on its own, saying `{}`", last.trim()),
                        None => "it ended on its own, before it waited for the lock".to_string(),
                    };
                    self.fail(
                        format!(
                            "never blocked in {} before it ended ({})",
                            names.join(" or "),
                            crate::run::describe(status)
                        ),
                        why,
                    );
                }
                Blocked::In(_) | Blocked::Busy => {}
            }
            if Instant::now() >= deadline {
                self.fail(
                    format!(
                        "never blocked in {} within {} s",
                        names.join(" or "),
                        timeout.as_secs_f32()
                    ),
                    "it never waited for the lock: was it taken at all, or taken in another \
                     call?",
                );
            }
            thread::sleep(NAP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LockClass, parse_line};

    #[test]
    fn a_held_lock_and_a_waiting_request_are_read() {
        let (file, held) = parse_line("1: POSIX  ADVISORY  WRITE 4242 fe:00:10101144 0 9").unwrap();
        assert_eq!(file, (0xfe, 0, 10_101_144));
        assert_eq!(held.class, LockClass::Posix);
        assert!(held.write && !held.waiting);
        assert_eq!((held.pid, held.start, held.end), (4242, 0, Some(9)));
        let (_, waiting) =
            parse_line("1: -> OFDLCK ADVISORY  READ -1 08:01:7864448 128 EOF").unwrap();
        assert_eq!(waiting.class, LockClass::Ofd);
        assert!(!waiting.write && waiting.waiting);
        assert_eq!((waiting.pid, waiting.start, waiting.end), (-1, 128, None));
    }

    #[test]
    fn a_line_of_another_form_is_skipped() {
        assert!(parse_line("").is_none());
        assert!(parse_line("1: POSIX ADVISORY").is_none());
    }
}
