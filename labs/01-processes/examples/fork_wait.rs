//! One parent, one child: the child says something and exits with a status
//! of its choosing; the parent waits for it and reports that status.
//!
//! Usage (inside `labs/01-processes`): `cargo run --example fork_wait`
//!
//! The output does not depend on process IDs or timing: the parent prints
//! its last line only after `waitpid` has told it that the child is gone.

use std::io::Write;

use anyhow::Context;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, write};

/// The status the child exits with: any number from 0 to 255.
const CHILD_STATUS: i32 = 7;

fn main() -> anyhow::Result<()> {
    // ANCHOR: before_fork
    println!("parent: about to create a child");
    // Nothing may sit in a buffer when we fork, or the child gets a copy of it.
    std::io::stdout().flush().context("flush stdout")?;
    // ANCHOR_END: before_fork

    // ANCHOR: fork
    // SAFETY: this program has one thread, and the child calls nothing but
    // write(2) and _exit(2), which are async-signal-safe.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => child(),
        ForkResult::Parent { child } => {
            // ANCHOR: wait
            let status = waitpid(child, None).context("waitpid")?;
            match status {
                WaitStatus::Exited(_, code) => {
                    println!("parent: my child exited with status {code}");
                }
                other => println!("parent: my child ended in another way: {other:?}"),
            }
            // ANCHOR_END: wait
        }
    }
    Ok(())
    // ANCHOR_END: fork
}

// ANCHOR: child
/// Runs in the child only, and never returns: the child must not fall back
/// into `main` and run the parent's code a second time.
fn child() -> ! {
    let message = b"child: hello, I exit with status 7\n";
    // A failed write changes the status, so the parent can still tell.
    let status = match write(std::io::stdout(), message) {
        Ok(_) => CHILD_STATUS,
        Err(_) => 1,
    };
    // SAFETY: _exit ends the process at once: no destructors, no flushing,
    // no atexit handlers inherited from the parent.
    unsafe { libc::_exit(status) }
}
// ANCHOR_END: child
