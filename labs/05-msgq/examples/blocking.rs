//! When `msgsnd` and `msgrcv` wait, and the three things that end a wait:
//! room (or a message), the queue's removal (`EIDRM`), and a signal handler
//! (`EINTR`). With `IPC_NOWAIT` there is no wait at all (`EAGAIN`).
//!
//! Usage (inside `labs/05-msgq`): `cargo run --example blocking`
//!
//! The parent watches `/proc/PID/syscall` to know when a child is really
//! blocked, so the output is the same on every run.

use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::ptr;
use std::thread::sleep;
use std::time::Duration;

use anyhow::{Context, bail};
use libc::{c_int, c_long};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// A message buffer with room for 16 bytes of text.
#[repr(C)]
struct Small {
    mtype: c_long,
    mtext: [u8; 16],
}

fn main() -> anyhow::Result<()> {
    // SAFETY: msgget takes two integers.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    if id == -1 {
        return Err(io::Error::last_os_error()).context("msgget");
    }
    let shown = show(id);
    // SAFETY: IPC_RMID takes no buffer; the queue may be gone already.
    unsafe { libc::msgctl(id, libc::IPC_RMID, ptr::null_mut()) };
    shown
}

fn show(id: c_int) -> anyhow::Result<()> {
    // ANCHOR: full
    // A queue that holds 8 bytes of text, then 8 bytes: it is full.
    set_max_bytes(id, 8)?;
    send(id, b"12345678", 0).context("fill the queue")?;
    match send(id, b"x", libc::IPC_NOWAIT) {
        Err(error) => println!("full queue, IPC_NOWAIT: {error}"),
        Ok(()) => bail!("a full queue took one more message"),
    }
    // ANCHOR_END: full

    // ANCHOR: eidrm
    // A child waits for room; the parent removes the queue under it.
    let child = in_child(|| {
        println!("child: msgsnd waits for room ...");
        flush();
        report("child: msgsnd", send(id, b"x", 0))
    })?;
    wait_until_blocked(child, libc::SYS_msgsnd)?;
    println!("parent: IPC_RMID while the child waits");
    // SAFETY: IPC_RMID takes no buffer.
    if unsafe { libc::msgctl(id, libc::IPC_RMID, ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error()).context("msgctl(IPC_RMID)");
    }
    reap(child)?;
    // ANCHOR_END: eidrm

    // ANCHOR: eintr
    // A child waits for a message that never comes, until SIGALRM.
    let child = in_child(|| {
        // SAFETY: msgget takes two integers.
        let empty = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        println!("child: msgrcv waits on an empty queue; SIGALRM in 1 s ...");
        flush();
        let handler = SigAction::new(
            SigHandler::Handler(nothing),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing. SA_RESTART would restart a
        // read(2); msgrcv is never restarted.
        let _ = unsafe { sigaction(Signal::SIGALRM, &handler) };
        // SAFETY: alarm takes an integer.
        unsafe { libc::alarm(1) };
        let received = receive(empty);
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::msgctl(empty, libc::IPC_RMID, ptr::null_mut()) };
        report("child: msgrcv", received)
    })?;
    reap(child)?;
    // ANCHOR_END: eintr
    Ok(())
}

/// Does nothing: what matters is that a handler ran.
extern "C" fn nothing(_: c_int) {}

/// Prints how a call ended; the child's exit status.
fn report(what: &str, result: io::Result<()>) -> i32 {
    match result {
        Ok(()) => println!("{what} succeeded"),
        Err(error) => println!("{what} failed: {error}"),
    }
    flush();
    0
}

fn flush() {
    // Nothing useful to do if stdout is gone.
    let _ = io::stdout().flush();
}

/// Runs `body` in a child process, which then leaves with `_exit`.
fn in_child(body: impl FnOnce() -> i32) -> anyhow::Result<Pid> {
    flush();
    // SAFETY: single-threaded; the child makes System V calls, prints and
    // leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let status = body();
            // SAFETY: _exit ends the child without running the parent's code.
            unsafe { libc::_exit(status) }
        }
    }
}

fn reap(child: Pid) -> anyhow::Result<()> {
    match waitpid(child, None).context("waitpid")? {
        WaitStatus::Exited(_, 0) => Ok(()),
        other => bail!("the child ended with {other:?}"),
    }
}

/// Waits until `child` is blocked in `syscall`, as `/proc/PID/syscall`
/// shows: its first number is the system call a sleeping task is in.
fn wait_until_blocked(child: Pid, syscall: c_long) -> anyhow::Result<()> {
    let path = format!("/proc/{child}/syscall");
    for _ in 0..2000 {
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        if text.split_whitespace().next() == Some(syscall.to_string().as_str()) {
            return Ok(());
        }
        sleep(Duration::from_millis(1));
    }
    bail!("the child never blocked")
}

fn send(id: c_int, text: &[u8], flags: c_int) -> io::Result<()> {
    let mut buf = Small {
        mtype: 1,
        mtext: [0; 16],
    };
    buf.mtext[..text.len()].copy_from_slice(text);
    // SAFETY: the kernel reads the long and text.len() <= 16 bytes.
    if unsafe { libc::msgsnd(id, (&raw const buf).cast(), text.len(), flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn receive(id: c_int) -> io::Result<()> {
    let mut buf = Small {
        mtype: 0,
        mtext: [0; 16],
    };
    // SAFETY: the kernel writes the long and at most 16 bytes.
    if unsafe { libc::msgrcv(id, (&raw mut buf).cast(), 16, 0, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `IPC_STAT`, a new `msg_qbytes`, `IPC_SET`.
fn set_max_bytes(id: c_int, bytes: libc::msglen_t) -> anyhow::Result<()> {
    let mut stat = MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: IPC_STAT fills the buffer, IPC_SET reads it back.
    unsafe {
        if libc::msgctl(id, libc::IPC_STAT, stat.as_mut_ptr()) == -1 {
            return Err(io::Error::last_os_error()).context("msgctl(IPC_STAT)");
        }
        (*stat.as_mut_ptr()).msg_qbytes = bytes;
        if libc::msgctl(id, libc::IPC_SET, stat.as_mut_ptr()) == -1 {
            return Err(io::Error::last_os_error()).context("msgctl(IPC_SET)");
        }
    }
    Ok(())
}
