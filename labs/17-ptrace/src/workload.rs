//! Small fixed programs for the tracer to trace (given: you do not need to
//! change this file): `ptrace workload NAME …`.
//!
//! Each makes a known sequence of IPC system calls and nothing else of
//! interest, so that a trace of it can be compared line by line with what
//! it must be. They call the kernel as directly as they can (`libc`
//! functions that are one system call, `libc::syscall` for System V IPC,
//! whose C library wrappers differ from one architecture to the next), so
//! that the same calls appear on x86-64 and on aarch64. They block
//! `SIGCHLD`, so that no `--- SIGCHLD ---` lands at a moment that changes
//! from run to run (a blocked signal makes no signal-delivery-stop), except
//! `signals` and `stop`, which are about signals.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use nix::errno::Errno;

/// What `ptrace workload` can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    /// `pipe2`, `dup3` onto descriptor `to`, a few `close`s, one of them
    /// of a descriptor already closed (`EBADF`).
    Pipes { to: i32 },
    /// A System V message queue, semaphore set and shared memory segment,
    /// each created private, used once, removed.
    Sysv {
        mtype: i64,
        text: String,
        size: usize,
    },
    /// A POSIX message queue `name`: open, send `text` at `priority`,
    /// receive it, close, unlink.
    Mq {
        name: String,
        text: String,
        priority: u32,
    },
    /// A socket pair, then a listening Unix socket at `path`, a client that
    /// connects to it, an accept.
    Sockets { path: String },
    /// Sends itself `caught` (it has a handler for it) and then `fatal`,
    /// which kills it.
    Signals { caught: i32, fatal: i32 },
    /// Stops itself with `SIGSTOP`, then says whether a `SIGCONT` woke it.
    Stop,
    /// A pipe, `children` children that each read it to end-of-file and
    /// exit with their number, a parent that reaps them in order.
    Family { children: u32 },
    /// `threads` threads that each make and close a pipe.
    Threads { threads: u32 },
    /// Runs `argv` with `std::process::Command` (posix_spawn: `clone3` or
    /// `vfork` with `CLONE_VFORK`) and reports its exit status.
    Spawn { argv: Vec<String> },
    /// Blocks opening the FIFO `path` until a writer comes, reads it to
    /// end-of-file, then does what `Pipes { to }` does, or what `Stop`
    /// does if `stop`.
    WaitFifo { path: String, to: i32, stop: bool },
    /// Blocks in `accept4` on a listening socket (an abstract name: no
    /// file to leave behind) until it is killed.
    Block,
}

/// Runs the workload; `Ok` means it did everything it should.
pub fn run(workload: &Workload) -> anyhow::Result<()> {
    if !matches!(workload, Workload::Signals { .. } | Workload::Stop) {
        block_sigchld()?;
    }
    match workload {
        Workload::Pipes { to } => pipes(*to),
        Workload::Sysv { mtype, text, size } => sysv(*mtype, text, *size),
        Workload::Mq {
            name,
            text,
            priority,
        } => mq(name, text, *priority),
        Workload::Sockets { path } => sockets(path),
        Workload::Signals { caught, fatal } => signals(*caught, *fatal),
        Workload::Stop => stop(),
        Workload::Family { children } => family(*children),
        Workload::Threads { threads: count } => threads(*count),
        Workload::Spawn { argv } => spawn(argv),
        Workload::WaitFifo { path, to, stop } => wait_fifo(path, *to, *stop),
        Workload::Block => block(),
    }
}

/// Blocks `SIGCHLD` in this process (and the children it will have).
fn block_sigchld() -> anyhow::Result<()> {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGCHLD);
    set.thread_block().context("block SIGCHLD")
}

/// Prints `line` on standard output at once.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Three ints at an address that is a multiple of 8.
#[repr(C, align(8))]
struct Ints([i32; 3]);

/// A new pipe, `(read end, write end)`. The kernel writes the two
/// descriptors at an address that is *not* a multiple of 8, on purpose: a
/// tracer that reads them out of this process's memory must cope.
fn pipe(flags: i32) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut ints = Ints([0; 3]);
    let fds = &mut ints.0[1..];
    // SAFETY: pipe2 writes two ints into `fds`.
    Errno::result(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) }).context("pipe2")?;
    // SAFETY: the kernel just opened both; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `close(fd)`, its result.
fn close(fd: i32) -> nix::Result<()> {
    // SAFETY: closes a descriptor this workload owns (or none: EBADF).
    Errno::result(unsafe { libc::close(fd) }).map(drop)
}

fn pipes(to: i32) -> anyhow::Result<()> {
    say(&format!("pid {}", std::process::id()))?;
    let (read_end, write_end) = pipe(libc::O_CLOEXEC)?;
    let (reading, writing) = (read_end.as_raw_fd(), write_end.as_raw_fd());
    // SAFETY: dup3 takes and returns descriptors only.
    let copy = Errno::result(unsafe { libc::dup3(writing, to, 0) }).context("dup3")?;
    drop(write_end);
    // A descriptor that is not IPC: only `--filter close` shows its close.
    drop(std::fs::File::open("/dev/null").context("open /dev/null")?);
    close(copy).context("close the copy")?;
    let again = close(copy);
    drop(read_end);
    say(&format!(
        "pipe: read end {reading}, write end {writing}, copy {copy}; closing {copy} again: {}",
        again
            .err()
            .map_or("no error".to_string(), |e| format!("{e:?}"))
    ))
}

fn sysv(mtype: i64, text: &str, size: usize) -> anyhow::Result<()> {
    // SAFETY (every libc::syscall below): the arguments are numbers, or
    // pointers to buffers of the sizes given, alive during the call.
    let private = libc::IPC_PRIVATE as libc::c_long;
    let queue = unsafe { libc::syscall(libc::SYS_msgget, private, libc::IPC_CREAT | 0o600) };
    let queue = Errno::result(queue).context("msgget")?;
    let mut message = mtype.to_ne_bytes().to_vec();
    message.extend_from_slice(text.as_bytes());
    let sent = unsafe { libc::syscall(libc::SYS_msgsnd, queue, message.as_ptr(), text.len(), 0) };
    Errno::result(sent).context("msgsnd")?;
    let mut buffer = vec![0u8; 8 + 64];
    let got = unsafe {
        libc::syscall(
            libc::SYS_msgrcv,
            queue,
            buffer.as_mut_ptr(),
            64,
            0,
            libc::IPC_NOWAIT,
        )
    };
    let got = Errno::result(got).context("msgrcv")?;
    Errno::result(unsafe { libc::syscall(libc::SYS_msgctl, queue, libc::IPC_RMID, 0) })
        .context("msgctl")?;

    let set = unsafe { libc::syscall(libc::SYS_semget, private, 1, libc::IPC_CREAT | 0o600) };
    let set = Errno::result(set).context("semget")?;
    let up = [libc::sembuf {
        sem_num: 0,
        sem_op: 1,
        sem_flg: 0,
    }];
    let down = [libc::sembuf {
        sem_num: 0,
        sem_op: -1,
        sem_flg: (libc::SEM_UNDO | libc::IPC_NOWAIT) as i16,
    }];
    for ops in [&up, &down] {
        Errno::result(unsafe { libc::syscall(libc::SYS_semop, set, ops.as_ptr(), 1) })
            .context("semop")?;
    }
    Errno::result(unsafe { libc::syscall(libc::SYS_semctl, set, 0, libc::IPC_RMID, 0) })
        .context("semctl")?;

    let segment =
        unsafe { libc::syscall(libc::SYS_shmget, private, size, libc::IPC_CREAT | 0o600) };
    let segment = Errno::result(segment).context("shmget")?;
    let address = unsafe { libc::syscall(libc::SYS_shmat, segment, 0, 0) };
    let address = Errno::result(address).context("shmat")?;
    Errno::result(unsafe { libc::syscall(libc::SYS_shmdt, address) }).context("shmdt")?;
    Errno::result(unsafe { libc::syscall(libc::SYS_shmctl, segment, libc::IPC_RMID, 0) })
        .context("shmctl")?;
    say(&format!(
        "message of {got} bytes received; semaphore and segment used"
    ))
}

fn mq(name: &str, text: &str, priority: u32) -> anyhow::Result<()> {
    let c_name = CString::new(name).context("queue name")?;
    // SAFETY: mq_attr is plain data.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 4;
    attr.mq_msgsize = 64;
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    // SAFETY: the name and the attributes outlive the call.
    let queue = unsafe { libc::mq_open(c_name.as_ptr(), flags, 0o600, &attr) };
    let queue = Errno::result(queue).with_context(|| format!("mq_open {name}"))?;
    let result = mq_use(queue, text, priority);
    // SAFETY: closes the queue descriptor just opened, and removes the name.
    unsafe {
        libc::mq_close(queue);
        libc::mq_unlink(c_name.as_ptr());
    }
    result
}

fn mq_use(queue: libc::mqd_t, text: &str, priority: u32) -> anyhow::Result<()> {
    // SAFETY: the message and the buffer outlive the calls.
    let sent = unsafe { libc::mq_send(queue, text.as_ptr().cast(), text.len(), priority) };
    Errno::result(sent).context("mq_send")?;
    let mut buffer = [0u8; 64];
    let mut got_priority = 0;
    let got = unsafe {
        libc::mq_receive(
            queue,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut got_priority,
        )
    };
    let got = Errno::result(got).context("mq_receive")?;
    say(&format!("received {got} bytes at priority {got_priority}"))
}

/// A `sockaddr_un` for `path`, and the length to pass with it.
fn unix_address(path: &str) -> anyhow::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() >= address.sun_path.len() {
        bail!("socket path too long: {path}");
    }
    for (slot, byte) in address.sun_path.iter_mut().zip(path.bytes()) {
        *slot = byte as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    Ok((address, len as libc::socklen_t))
}

/// `socket(AF_UNIX, kind | SOCK_CLOEXEC, 0)`.
fn unix_socket(kind: i32) -> anyhow::Result<OwnedFd> {
    // SAFETY: socket takes numbers.
    let fd = unsafe { libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0) };
    let fd = Errno::result(fd).context("socket")?;
    // SAFETY: the kernel just opened it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockets(path: &str) -> anyhow::Result<()> {
    let mut pair = [0; 2];
    // SAFETY: socketpair writes two ints into `pair`.
    let made = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    Errno::result(made).context("socketpair")?;
    // SAFETY: the kernel just opened both.
    let (one, other) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: shutdown takes numbers.
    Errno::result(unsafe { libc::shutdown(one.as_raw_fd(), libc::SHUT_WR) }).context("shutdown")?;
    drop(one);
    drop(other);

    let (address, len) = unix_address(path)?;
    let server = unix_socket(libc::SOCK_STREAM)?;
    let address_pointer = (&address as *const libc::sockaddr_un).cast::<libc::sockaddr>();
    // SAFETY: the address outlives the calls.
    Errno::result(unsafe { libc::bind(server.as_raw_fd(), address_pointer, len) })
        .with_context(|| format!("bind {path}"))?;
    let result = serve_one(&server, address_pointer, len);
    let _ = std::fs::remove_file(path);
    result
}

fn serve_one(
    server: &OwnedFd,
    address: *const libc::sockaddr,
    len: libc::socklen_t,
) -> anyhow::Result<()> {
    // SAFETY: listen takes numbers; connect reads `len` bytes at `address`,
    // which the caller keeps alive; accept4 is given no address buffer.
    Errno::result(unsafe { libc::listen(server.as_raw_fd(), 4) }).context("listen")?;
    let client = unix_socket(libc::SOCK_STREAM)?;
    Errno::result(unsafe { libc::connect(client.as_raw_fd(), address, len) }).context("connect")?;
    let accepted = unsafe {
        libc::accept4(
            server.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    let accepted = Errno::result(accepted).context("accept4")?;
    close(accepted).context("close")?;
    say("one client accepted")
}

/// Set by the handler of the signal `signals` catches, or by `SIGCONT`.
static CAUGHT: AtomicBool = AtomicBool::new(false);

extern "C" fn note_signal(_: libc::c_int) {
    CAUGHT.store(true, Ordering::SeqCst);
}

/// Installs [`note_signal`] for `signal`.
fn catch(signal: i32) -> anyhow::Result<()> {
    let signal = nix::sys::signal::Signal::try_from(signal).context("signal number")?;
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(note_signal),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only stores into an atomic.
    unsafe { nix::sys::signal::sigaction(signal, &action) }.context("sigaction")?;
    Ok(())
}

/// `kill(getpid(), signal)`.
fn kill_self(signal: i32) -> anyhow::Result<()> {
    // SAFETY: kill takes numbers.
    Errno::result(unsafe { libc::kill(libc::getpid(), signal) })
        .map(drop)
        .context("kill")
}

fn signals(caught: i32, fatal: i32) -> anyhow::Result<()> {
    catch(caught)?;
    kill_self(caught)?;
    let name = super::sys::signal_name(caught);
    if CAUGHT.load(Ordering::SeqCst) {
        say(&format!("caught {name}"))?;
    } else {
        say(&format!("{name} never arrived"))?;
    }
    kill_self(fatal)?;
    bail!("still alive after {}", super::sys::signal_name(fatal))
}

fn stop() -> anyhow::Result<()> {
    catch(libc::SIGCONT)?;
    say("stopping")?;
    kill_self(libc::SIGSTOP)?;
    let woken = if CAUGHT.load(Ordering::SeqCst) {
        "yes"
    } else {
        "no"
    };
    say(&format!("running again; woken by SIGCONT: {woken}"))
}

fn family(children: u32) -> anyhow::Result<()> {
    let (read_end, write_end) = pipe(0)?;
    let mut pids = Vec::new();
    for number in 1..=children {
        // SAFETY: this process has one thread; the child only makes system
        // calls and leaves with _exit.
        match unsafe { libc::fork() } {
            -1 => bail!("fork: {}", Errno::last()),
            0 => child(&read_end, write_end.as_raw_fd(), number),
            pid => pids.push(pid),
        }
    }
    drop(read_end);
    let sent = vec![b'x'; children as usize];
    std::fs::File::from(write_end)
        .write_all(&sent)
        .context("write to the children")?;
    for (pid, number) in pids.iter().zip(1..) {
        let mut status = 0;
        // SAFETY: wait4 writes one int into `status`.
        let reaped = unsafe { libc::wait4(*pid, &mut status, 0, std::ptr::null_mut()) };
        Errno::result(reaped).context("wait4")?;
        say(&format!(
            "child {number}: pid {pid}, exit status {}",
            libc::WEXITSTATUS(status)
        ))?;
    }
    Ok(())
}

/// A child of `family`: closes the write end, reads to end-of-file,
/// closes the read end, exits with `number`.
fn child(read_end: &OwnedFd, write_end: i32, number: u32) -> ! {
    // SAFETY: async-signal-safe calls only, then _exit.
    unsafe {
        libc::close(write_end);
        let mut byte = [0u8; 64];
        while libc::read(read_end.as_raw_fd(), byte.as_mut_ptr().cast(), byte.len()) > 0 {}
        libc::close(read_end.as_raw_fd());
        libc::_exit(number as i32)
    }
}

fn threads(count: u32) -> anyhow::Result<()> {
    let workers: Vec<_> = (0..count)
        .map(|_| std::thread::spawn(|| pipe(libc::O_CLOEXEC).map(drop)))
        .collect();
    for worker in workers {
        match worker.join() {
            Ok(result) => result?,
            Err(_) => bail!("a thread panicked"),
        }
    }
    say(&format!("{count} threads made a pipe each"))
}

fn spawn(argv: &[String]) -> anyhow::Result<()> {
    let (program, arguments) = argv.split_first().context("spawn needs a program")?;
    let status = std::process::Command::new(program)
        .args(arguments)
        .status()
        .with_context(|| format!("spawn {program}"))?;
    say(&format!("spawned program: {status}"))
}

fn wait_fifo(path: &str, to: i32, then_stop: bool) -> anyhow::Result<()> {
    say(&format!(
        "pid {}: waiting for a writer on {path}",
        std::process::id()
    ))?;
    let mut fifo = std::fs::File::open(path).with_context(|| format!("open {path}"))?;
    let mut got = Vec::new();
    fifo.read_to_end(&mut got).context("read the FIFO")?;
    drop(fifo);
    if then_stop { stop() } else { pipes(to) }
}

fn block() -> anyhow::Result<()> {
    let pid = std::process::id();
    let server = unix_socket(libc::SOCK_STREAM)?;
    // An abstract name: a NUL byte first, nothing in the file system.
    let (mut address, len) = unix_address(&format!("?wb-block-{pid}"))?;
    address.sun_path[0] = 0;
    let len = len - 1;
    let address_pointer = (&address as *const libc::sockaddr_un).cast::<libc::sockaddr>();
    // SAFETY: the address outlives the call; listen takes numbers.
    Errno::result(unsafe { libc::bind(server.as_raw_fd(), address_pointer, len) })
        .context("bind")?;
    Errno::result(unsafe { libc::listen(server.as_raw_fd(), 1) }).context("listen")?;
    say(&format!("pid {pid}: waiting for a client that never comes"))?;
    // SAFETY: no address buffer is given.
    let accepted = unsafe {
        libc::accept4(
            server.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    Errno::result(accepted).context("accept4")?;
    bail!("a client came")
}
