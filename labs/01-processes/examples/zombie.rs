//! Watch a child turn into a zombie (僵尸进程), then vanish when its parent
//! reaps it with `waitpid`.
//!
//! Usage (inside `labs/01-processes`): `cargo run --example zombie`
//!
//! The state of a process is the third field of `/proc/PID/stat`: `R`
//! running, `S` sleeping, `Z` zombie. The program prints states, never PIDs,
//! so its output is the same on every run.

use std::io::ErrorKind;
use std::thread::sleep;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

// ANCHOR: state
/// The one-letter state of process `pid`, or `None` if the kernel has no
/// entry for it any more.
fn state_of(pid: Pid) -> anyhow::Result<Option<char>> {
    let path = format!("/proc/{pid}/stat");
    let stat = match std::fs::read_to_string(&path) {
        Ok(stat) => stat,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("read {path}")),
    };
    // "PID (COMMAND) STATE …": the command may contain spaces and
    // parentheses, so look for the last ')'.
    let after_command = stat.rfind(')').context("no ')' in /proc/PID/stat")?;
    Ok(stat[after_command + 1..].trim_start().chars().next())
}
// ANCHOR_END: state

fn main() -> anyhow::Result<()> {
    // ANCHOR: main
    // SAFETY: one thread only; the child calls nothing but _exit.
    let child = match unsafe { fork() }.context("fork")? {
        // The child ends at once with status 0.
        // SAFETY: _exit is async-signal-safe and never returns.
        ForkResult::Child => unsafe { libc::_exit(0) },
        ForkResult::Parent { child } => child,
    };

    // The parent does not wait yet: it polls the child's state instead,
    // for at most two seconds, until the child has exited.
    let mut state = state_of(child)?;
    for _ in 0..200 {
        if state == Some('Z') {
            break;
        }
        sleep(Duration::from_millis(10));
        state = state_of(child)?;
    }
    if state != Some('Z') {
        bail!("the child never became a zombie (state {state:?})");
    }
    println!("before waitpid: the child's state is Z (zombie)");

    let status = waitpid(child, None).context("waitpid")?;
    if let WaitStatus::Exited(_, code) = status {
        println!("waitpid: the child exited with status {code}");
    }

    match state_of(child)? {
        None => println!("after waitpid: /proc has no entry for the child"),
        Some(state) => println!("after waitpid: the child is still there, state {state}"),
    }
    // ANCHOR_END: main
    Ok(())
}
