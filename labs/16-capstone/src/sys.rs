//! Thin, safe layers over the calls that nix does not wrap (given: you do
//! not need to change this file): System V message queues, semaphores and
//! shared memory (chapters 05–07), the `futex(2)` system call, and
//! real-time signals, which nix's `Signal` type cannot name.
//!
//! Each function makes one system call and returns its errno as
//! [`Errno`]. A call that a signal may interrupt (`msgsnd`, `msgrcv`,
//! `semop`, `sigwaitinfo`) is made again after `EINTR`, since nothing in
//! this program needs to stop waiting when a signal arrives.

use std::ffi::CString;
use std::fs;
use std::mem;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::AtomicU32;

use anyhow::Context;
use nix::errno::Errno;
use nix::unistd::Pid;

// ANCHOR: ftok
/// `ftok(3)`: the System V key of `path` and `proj`.
pub fn ftok(path: &Path, proj: u8) -> Result<libc::key_t, Errno> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: ftok reads a NUL-terminated path that outlives the call.
    let key = unsafe { libc::ftok(c_path.as_ptr(), libc::c_int::from(proj)) };
    if key == -1 {
        Err(Errno::last())
    } else {
        Ok(key)
    }
}
// ANCHOR_END: ftok

/// Runs `call` again for as long as it fails with `EINTR`.
fn again_on_eintr<T>(mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

// ANCHOR: message_queue
/// A System V message queue (chapter 05): its identifier, and a buffer
/// laid out as `struct msgbuf { long mtype; char mtext[]; }` for
/// `msgsnd` and `msgrcv`.
#[derive(Debug)]
pub struct MessageQueue {
    id: libc::c_int,
    /// `buffer[0]` is `mtype`; `mtext` follows it.
    buffer: Vec<libc::c_long>,
}

impl MessageQueue {
    /// `msgget(key, IPC_CREAT | IPC_EXCL | mode)`: a new queue. `EEXIST`
    /// if `key` already has one.
    pub fn create(key: libc::key_t, mode: u16) -> Result<MessageQueue, Errno> {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | libc::c_int::from(mode & 0o777);
        // SAFETY: msgget takes no pointers.
        let id = unsafe { libc::msgget(key, flags) };
        if id == -1 {
            return Err(Errno::last());
        }
        Ok(MessageQueue {
            id,
            buffer: Vec::new(),
        })
    }

    /// The queue's identifier (`ipcs -q` shows it).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// `msgsnd(id, {mtype, data}, data.len(), 0)`: appends one message of
    /// type `mtype` (1 or more). Blocks while the queue is full (`msgmnb`
    /// bytes in all, `/proc/sys/kernel/msgmnb`); `EINVAL` if `data` is
    /// longer than `msgmax` (`/proc/sys/kernel/msgmax`), `EIDRM` if the
    /// queue was removed.
    pub fn send(&mut self, mtype: i64, data: &[u8]) -> Result<(), Errno> {
        let text = self.text_room(data.len());
        self.buffer[0] = mtype as libc::c_long;
        // SAFETY: text_room made room for data.len() bytes after mtype.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), text, data.len()) };
        let message = self.buffer.as_ptr().cast();
        again_on_eintr(|| {
            // SAFETY: the buffer holds mtype and data.len() bytes of text.
            match unsafe { libc::msgsnd(self.id, message, data.len(), 0) } {
                -1 => Err(Errno::last()),
                _ => Ok(()),
            }
        })
    }

    /// `msgrcv(id, buffer, into.len(), mtype, 0)`: takes the oldest
    /// message of type `mtype`, waiting for one, and copies its text into
    /// `into`. Returns the text's length. `E2BIG` if the message is longer
    /// than `into` (nothing is taken then), `EIDRM` if the queue was removed.
    pub fn receive(&mut self, mtype: i64, into: &mut [u8]) -> Result<usize, Errno> {
        let room = into.len();
        self.text_room(room);
        let message = self.buffer.as_mut_ptr().cast();
        let len = again_on_eintr(|| {
            // SAFETY: the buffer has room for mtype and `room` bytes of text.
            match unsafe { libc::msgrcv(self.id, message, room, mtype as libc::c_long, 0) } {
                -1 => Err(Errno::last()),
                len => Ok(len as usize),
            }
        })?;
        // SAFETY: msgrcv wrote `len` (at most `room`) bytes after mtype.
        unsafe { ptr::copy_nonoverlapping(self.text_room(room), into.as_mut_ptr(), len) };
        Ok(len)
    }

    /// `msgctl(id, IPC_RMID, NULL)`: removes the queue at once; processes
    /// blocked on it wake up with `EIDRM`.
    pub fn remove(&self) -> Result<(), Errno> {
        // SAFETY: IPC_RMID takes no buffer.
        match unsafe { libc::msgctl(self.id, libc::IPC_RMID, ptr::null_mut()) } {
            -1 => Err(Errno::last()),
            _ => Ok(()),
        }
    }

    /// Grows the buffer to hold `mtype` and `len` bytes of text; returns
    /// where the text starts.
    fn text_room(&mut self, len: usize) -> *mut u8 {
        let words = 1 + len.div_ceil(mem::size_of::<libc::c_long>());
        if self.buffer.len() < words {
            self.buffer.resize(words, 0);
        }
        // SAFETY: the buffer has at least one c_long; the text follows it.
        unsafe { self.buffer.as_mut_ptr().add(1).cast() }
    }
}
// ANCHOR_END: message_queue

// ANCHOR: semaphores
/// A System V semaphore set (chapter 06).
#[derive(Debug, Clone, Copy)]
pub struct Semaphores {
    id: libc::c_int,
}

impl Semaphores {
    /// `semget(key, count, IPC_CREAT | IPC_EXCL | mode)`: a new set of
    /// `count` semaphores. Its values are undefined until you set them
    /// (`set_all`). `EEXIST` if `key` already has a set.
    pub fn create(key: libc::key_t, count: usize, mode: u16) -> Result<Semaphores, Errno> {
        let count = libc::c_int::try_from(count).map_err(|_| Errno::EINVAL)?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | libc::c_int::from(mode & 0o777);
        // SAFETY: semget takes no pointers.
        let id = unsafe { libc::semget(key, count, flags) };
        if id == -1 {
            return Err(Errno::last());
        }
        Ok(Semaphores { id })
    }

    /// `semctl(id, 0, SETALL, values)`: sets every semaphore of the set.
    pub fn set_all(&self, values: &[u16]) -> Result<(), Errno> {
        // The kernel reads as many values as the set has semaphores,
        // whatever the caller passed: check the count first.
        if values.len() != self.count()? {
            return Err(Errno::EINVAL);
        }
        let mut values = values.to_vec();
        // SAFETY: SETALL reads one unsigned short per semaphore of the set,
        // and `values` holds exactly that many.
        match unsafe { libc::semctl(self.id, 0, libc::SETALL, values.as_mut_ptr()) } {
            -1 => Err(Errno::last()),
            _ => Ok(()),
        }
    }

    /// `semop(id, {num, delta, 0}, 1)`: adds `delta` to semaphore `num`.
    /// A negative `delta` waits until the value is large enough (P); a
    /// positive one never waits (V). `EIDRM` if the set was removed.
    pub fn add(&self, num: u16, delta: i16) -> Result<(), Errno> {
        let mut op = libc::sembuf {
            sem_num: num,
            sem_op: delta,
            sem_flg: 0,
        };
        again_on_eintr(|| {
            // SAFETY: semop reads one sembuf.
            match unsafe { libc::semop(self.id, &mut op, 1) } {
                -1 => Err(Errno::last()),
                _ => Ok(()),
            }
        })
    }

    /// `semctl(id, 0, IPC_RMID)`: removes the set at once; processes
    /// blocked on it wake up with `EIDRM`.
    pub fn remove(&self) -> Result<(), Errno> {
        // SAFETY: IPC_RMID takes no fourth argument.
        match unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) } {
            -1 => Err(Errno::last()),
            _ => Ok(()),
        }
    }

    /// How many semaphores the set has (`IPC_STAT`'s `sem_nsems`).
    fn count(&self) -> Result<usize, Errno> {
        // SAFETY: semid_ds is plain data; IPC_STAT fills it.
        let mut ds: libc::semid_ds = unsafe { mem::zeroed() };
        // SAFETY: IPC_STAT writes one semid_ds.
        match unsafe { libc::semctl(self.id, 0, libc::IPC_STAT, &mut ds) } {
            -1 => Err(Errno::last()),
            _ => Ok(ds.sem_nsems as usize),
        }
    }
}
// ANCHOR_END: semaphores

// ANCHOR: segment
/// `shmget(key, size, IPC_CREAT | IPC_EXCL | mode)`: a new System V
/// shared memory segment (chapter 07) of `size` bytes, filled with zeros;
/// returns its identifier. Attach it with `Region::attach`. `EEXIST` if
/// `key` already has a segment, `EINVAL` if `size` is above `SHMMAX`.
pub fn segment_create(key: libc::key_t, size: usize, mode: u16) -> Result<i32, Errno> {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | libc::c_int::from(mode & 0o777);
    // SAFETY: shmget takes no pointers.
    match unsafe { libc::shmget(key, size, flags) } {
        -1 => Err(Errno::last()),
        id => Ok(id),
    }
}

/// `shmctl(shmid, IPC_RMID, NULL)`: marks the segment for removal. It
/// goes away once the last process has detached it (`shmdt`, `exec` or
/// exit); attachments made before, inherited ones included, keep working.
pub fn segment_remove(shmid: i32) -> Result<(), Errno> {
    // SAFETY: IPC_RMID takes no buffer.
    match unsafe { libc::shmctl(shmid, libc::IPC_RMID, ptr::null_mut()) } {
        -1 => Err(Errno::last()),
        _ => Ok(()),
    }
}
// ANCHOR_END: segment

// ANCHOR: futex
/// `futex(word, FUTEX_WAIT, expected)`: sleeps while `*word == expected`,
/// until a `futex_wake` on the same word. The kernel compares and goes to
/// sleep in one step, so a wake-up that comes between your own check and
/// this call is not lost: the call then finds the word changed and
/// returns at once (`EAGAIN`, reported here as `Ok`). It also returns
/// after a signal (`EINTR`, `Ok` too). Either way, look at the word again.
///
/// `private` adds `FUTEX_PRIVATE_FLAG`: the kernel then matches waiter and
/// waker by address *within one process*, which is right for the threads
/// of a process and wrong for processes sharing memory: a process would
/// never wake another.
pub fn futex_wait(word: &AtomicU32, expected: u32, private: bool) -> Result<(), Errno> {
    let op = libc::FUTEX_WAIT | if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    // SAFETY: FUTEX_WAIT reads the aligned u32 at `word` (valid for the
    // call) and takes a null timeout: wait for ever.
    let result = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            expected,
            ptr::null::<libc::timespec>(),
        )
    };
    match result {
        -1 => match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => Ok(()),
            errno => Err(errno),
        },
        _ => Ok(()),
    }
}

/// `futex(word, FUTEX_WAKE, count)`: wakes up to `count` processes asleep
/// in `futex_wait` on `word`; returns how many it woke. `private` as for
/// [`futex_wait`]: both sides must agree.
pub fn futex_wake(word: &AtomicU32, count: u32, private: bool) -> Result<u32, Errno> {
    let op = libc::FUTEX_WAKE | if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a key.
    match unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, count) } {
        -1 => Err(Errno::last()),
        woken => Ok(woken as u32),
    }
}
// ANCHOR_END: futex

// ANCHOR: signals
unsafe extern "C" {
    /// sigqueue(3), in the C library (the `libc` crate lacks it).
    fn sigqueue(pid: libc::pid_t, sig: libc::c_int, value: libc::sigval) -> libc::c_int;
}

/// `SIGRTMIN + n`: real-time signal number `n` (counting from 0). Unlike
/// the standard signals, real-time signals **queue**: two sent before the
/// first is taken are taken twice. Panics past `SIGRTMAX`.
pub fn realtime_signal(n: usize) -> libc::c_int {
    let signal = libc::SIGRTMIN() + libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
    assert!(signal <= libc::SIGRTMAX(), "no real-time signal number {n}");
    signal
}

/// `sigprocmask(SIG_BLOCK, signals)`: blocks `signals` in this process. A
/// blocked signal stays pending until the process takes it with
/// [`wait_for_signal`], or unblocks it. The mask is inherited across
/// `fork` (and `exec`).
pub fn block_signals(signals: &[libc::c_int]) -> Result<(), Errno> {
    change_mask(libc::SIG_BLOCK, signals)
}

/// `sigprocmask(SIG_UNBLOCK, signals)`: unblocks `signals`; one that is
/// pending is delivered at once.
pub fn unblock_signals(signals: &[libc::c_int]) -> Result<(), Errno> {
    change_mask(libc::SIG_UNBLOCK, signals)
}

fn change_mask(how: libc::c_int, signals: &[libc::c_int]) -> Result<(), Errno> {
    let set = signal_set(signals)?;
    // SAFETY: sigprocmask reads one sigset_t; no old set is asked for.
    match unsafe { libc::sigprocmask(how, &set, ptr::null_mut()) } {
        -1 => Err(Errno::last()),
        _ => Ok(()),
    }
}

/// A `sigset_t` holding `signals`.
fn signal_set(signals: &[libc::c_int]) -> Result<libc::sigset_t, Errno> {
    // SAFETY: sigemptyset initialises the set; sigaddset adds to it.
    unsafe {
        let mut set: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            if libc::sigaddset(&mut set, signal) == -1 {
                return Err(Errno::last());
            }
        }
        Ok(set)
    }
}

/// `sigqueue(pid, signal, 0)`: sends `signal` to process `pid`. A
/// real-time signal is queued, one per call. `ESRCH` if there is no such
/// process, `EAGAIN` if the receiver's queue of pending signals is full
/// (`RLIMIT_SIGPENDING`).
pub fn queue_signal(pid: Pid, signal: libc::c_int) -> Result<(), Errno> {
    let value = libc::sigval {
        sival_ptr: ptr::null_mut(),
    };
    // SAFETY: sigqueue takes its arguments by value.
    match unsafe { sigqueue(pid.as_raw(), signal, value) } {
        -1 => Err(Errno::last()),
        _ => Ok(()),
    }
}

/// `sigwaitinfo({signal})`: waits until `signal` is pending, and takes it
/// (no handler runs). Returns the sender's pid (`si_pid`). The signal must
/// be **blocked**: one that arrives while it is not is delivered the
/// ordinary way, and the default action of a real-time signal ends the
/// process.
pub fn wait_for_signal(signal: libc::c_int) -> Result<Pid, Errno> {
    let set = signal_set(&[signal])?;
    again_on_eintr(|| {
        // SAFETY: siginfo_t is plain data that sigwaitinfo fills.
        let mut info: libc::siginfo_t = unsafe { mem::zeroed() };
        // SAFETY: sigwaitinfo reads the set and writes one siginfo_t.
        match unsafe { libc::sigwaitinfo(&set, &mut info) } {
            -1 => Err(Errno::last()),
            // SAFETY: for a signal sent by sigqueue, si_pid is set.
            _ => Ok(Pid::from_raw(unsafe { info.si_pid() })),
        }
    })
}
// ANCHOR_END: signals

// ANCHOR: read_limit
/// A number from a file of `/proc/sys`, such as `/proc/sys/kernel/msgmax`
/// (the largest System V message) or `/proc/sys/fs/mqueue/msgsize_max`
/// (the largest `mq_msgsize` an unprivileged process may ask for).
pub fn read_limit(path: &str) -> anyhow::Result<usize> {
    let text = fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path} holds {:?}, not a number", text.trim()))
}
// ANCHOR_END: read_limit
