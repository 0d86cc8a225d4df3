//! A tour of ptrace: a child that asks to be traced, its system calls
//! seen at their entry and their exit through the registers and through
//! `PTRACE_GET_SYSCALL_INFO` side by side, a string read out of its memory,
//! and a signal stopped on its way and delivered (or not).
//!
//! Usage (inside `labs/17-ptrace`): `cargo run --example ptrace_tour`
//!
//! The child does not exec: it makes a few calls of its own (`getpid`, a
//! `write` of a known text, `kill` of itself with `SIGUSR1`), so that every
//! stop it makes is known in advance.

use std::io::Write;

use anyhow::{Context, bail};
use nix::sys::ptrace;
use nix::sys::signal::{Signal, raise};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork};

#[path = "../src/sys.rs"]
pub mod sys;

/// What the child writes: the tracer reads it out of the child's memory.
const TEXT: &[u8] = b"hello from the tracee\n";

fn main() -> anyhow::Result<()> {
    // ANCHOR: traceme
    // SAFETY: single-threaded; the child makes system calls and _exits.
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => tracee(),
        ForkResult::Parent { child } => child,
    };
    // The child stopped itself (SIGSTOP) right after PTRACE_TRACEME.
    let first = waitpid(child, None).context("waitpid")?;
    show("first stop", format!("{first:?}"));
    ptrace::setoptions(child, ptrace::Options::PTRACE_O_TRACESYSGOOD)
        .context("PTRACE_SETOPTIONS")?;
    // ANCHOR_END: traceme
    let result = follow(child);
    // Whatever happened, do not leave the child stopped or unreaped.
    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    result
}

/// The child: asks its parent to trace it, stops so that the parent can set
/// its options, then makes its calls.
fn tracee() -> ! {
    let traced = ptrace::traceme().is_ok() && raise(Signal::SIGSTOP).is_ok();
    if traced {
        // SAFETY: plain system calls, then _exit.
        unsafe {
            libc::getpid();
            libc::write(1, TEXT.as_ptr().cast(), TEXT.len());
            libc::kill(libc::getpid(), libc::SIGUSR1);
        }
    }
    // SAFETY: leaves without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

fn follow(child: Pid) -> anyhow::Result<()> {
    // Restarts with the signal to deliver (0: none) until the child exits.
    let mut deliver = 0;
    let mut entering = true;
    loop {
        sys::restart(child, deliver).context("PTRACE_SYSCALL")?;
        deliver = 0;
        match sys::wait_for_stop(Some(child), nix::sys::wait::WaitPidFlag::__WALL)? {
            sys::Stop::Syscall(_) => {
                syscall_stop(child, entering)?;
                entering = !entering;
            }
            // ANCHOR: inject
            sys::Stop::Signal(_, signal) => {
                // A signal-delivery-stop: the signal is not delivered yet.
                // SIGUSR1's default action ends the process: deliver it,
                // and the child dies of it; restart with 0 and it never
                // knows it was sent one.
                show("signal-delivery-stop", sys::signal_name(signal));
                deliver = signal;
            }
            // ANCHOR_END: inject
            sys::Stop::Killed(_, signal, _) => {
                show("the child was killed by", sys::signal_name(signal));
                return Ok(());
            }
            sys::Stop::Exited(_, code) => {
                show("the child exited with", code);
                return Ok(());
            }
            other => bail!("unexpected stop: {other:?}"),
        }
    }
}

// ANCHOR: regs
/// One syscall-stop, read twice: from the registers the architecture keeps
/// (x86-64: the number in `orig_rax`, arguments in `rdi`, `rsi`, `rdx`,
/// `r10`, `r8`, `r9`, the result in `rax`; aarch64: the number in `x8`,
/// arguments and result in `x0`… `x5`), and from PTRACE_GET_SYSCALL_INFO.
fn syscall_stop(child: Pid, entering: bool) -> anyhow::Result<()> {
    let info = sys::syscall_info(child).context("PTRACE_GET_SYSCALL_INFO")?;
    #[cfg(target_arch = "x86_64")]
    let (nr, args, result) = {
        let regs = ptrace::getregs(child).context("PTRACE_GETREGS")?;
        (
            regs.orig_rax,
            [regs.rdi, regs.rsi, regs.rdx],
            regs.rax as i64,
        )
    };
    #[cfg(target_arch = "aarch64")]
    let (nr, args, result) = {
        let regs =
            ptrace::getregset::<ptrace::regset::NT_PRSTATUS>(child).context("PTRACE_GETREGSET")?;
        (
            regs.regs[8],
            [regs.regs[0], regs.regs[1], regs.regs[2]],
            regs.regs[0] as i64,
        )
    };
    if entering {
        // SAFETY: op says the kernel filled `entry`; the buffer was zeroed.
        let entry = unsafe { info.u.entry };
        show(
            "entry, registers",
            format!(
                "nr {nr}, args {:#x} {:#x} {:#x}, result register {result}",
                args[0], args[1], args[2]
            ),
        );
        show(
            "entry, GET_SYSCALL_INFO",
            format!(
                "op {} (ENTRY), nr {}, args {:#x} {:#x} {:#x}",
                info.op, entry.nr, entry.args[0], entry.args[1], entry.args[2]
            ),
        );
        if nr == libc::SYS_write as u64 {
            peek_text(child, args[1], args[2] as usize)?;
        }
    } else {
        // SAFETY: op says the kernel filled `exit`; the buffer was zeroed.
        let exit = unsafe { info.u.exit };
        show("exit, registers", format!("result {result}"));
        show(
            "exit, GET_SYSCALL_INFO",
            format!(
                "op {} (EXIT), sval {}, is_error {}",
                info.op, exit.sval, exit.is_error
            ),
        );
    }
    Ok(())
}
// ANCHOR_END: regs

// ANCHOR: peek
/// Reads `len` bytes at `address` in the child, one aligned word at a time
/// (PTRACE_PEEKDATA), and shows them.
fn peek_text(child: Pid, address: u64, len: usize) -> anyhow::Result<()> {
    let start = address - address % 8;
    let mut bytes = Vec::new();
    let mut at = start;
    while at < address + len as u64 {
        let word = ptrace::read(child, at as ptrace::AddressType).context("PTRACE_PEEKDATA")?;
        bytes.extend_from_slice(&word.to_ne_bytes());
        at += 8;
    }
    let skip = (address - start) as usize;
    let text = String::from_utf8_lossy(&bytes[skip..skip + len]);
    show("PEEKDATA at the buffer", format!("{text:?}"));
    Ok(())
}
// ANCHOR_END: peek

/// One line of the tour: a label, then what was seen.
fn show(label: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{label:<26} {value}");
    let _ = out.flush();
}
