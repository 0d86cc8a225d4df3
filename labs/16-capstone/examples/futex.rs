//! A futex between two processes: a counter in anonymous shared memory,
//! a child that sleeps in `futex(FUTEX_WAIT)` until the counter leaves 0,
//! and a parent that raises it and wakes the child. Then the same wake
//! with `FUTEX_PRIVATE_FLAG`, which finds nobody: a private futex is
//! matched by address *inside one process*.
//!
//! Usage (inside `labs/16-capstone`): `cargo run --example futex`

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

#[path = "../src/memory.rs"]
#[allow(dead_code)]
mod memory;
#[path = "../src/sys.rs"]
#[allow(dead_code)]
mod sys;

use memory::Region;

// ANCHOR: futex_demo
fn main() -> anyhow::Result<()> {
    let region = Region::anonymous(memory::HEADER_BYTES + 4096).context("mmap")?;
    let counter = region.counter(0);
    // SAFETY: this program has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // Sleep while the counter is 0; look again after every return.
            while counter.load(Ordering::Acquire) == 0 {
                let _ = sys::futex_wait(counter, 0, false);
            }
            // SAFETY: leave at once, without the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            asleep_in_futex(child.as_raw())?;
            counter.fetch_add(1, Ordering::Release);
            let private = sys::futex_wake(counter, 1, true).context("FUTEX_WAKE private")?;
            println!("FUTEX_WAKE with FUTEX_PRIVATE_FLAG woke {private} process(es)");
            let shared = sys::futex_wake(counter, 1, false).context("FUTEX_WAKE")?;
            println!("FUTEX_WAKE without it woke {shared} process(es)");
            if waitpid(child, None)? != WaitStatus::Exited(child, 0) {
                bail!("the child failed");
            }
        }
    }
    Ok(())
}
// ANCHOR_END: futex_demo

/// Waits (at most 5 s) until process `pid` sleeps in futex(2), as
/// `/proc/PID/syscall` shows: its first number is the system call's.
fn asleep_in_futex(pid: i32) -> anyhow::Result<()> {
    for _ in 0..5000 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if text.split_whitespace().next() == Some(&libc::SYS_futex.to_string()) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(1));
    }
    bail!("the child never slept in futex(2)")
}
