//! A child whose `exec` fails reports it without allocating and without
//! taking a lock: the message is prepared before `fork`, and the child adds
//! the errno on its stack and writes the line with one `write(2)`.
//!
//! Usage (inside `labs/01-processes`): `cargo run --example exec_report`

use std::ffi::CString;
use std::io::Write;

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, execvp, fork, write};

/// A program that is in no directory of `PATH`.
const MISSING: &str = "no-such-program-anywhere";

fn main() -> anyhow::Result<()> {
    // ANCHOR: before_fork
    // Everything the child will need exists before the fork: the argument
    // vector and the start of the message.
    let argv = [CString::new(MISSING).context("program name")?];
    let prefix = format!("exec_report: cannot run {MISSING}: ").into_bytes();
    // ANCHOR_END: before_fork

    // SAFETY: the child calls only execvp, write and _exit, which are
    // async-signal-safe, on memory prepared before the fork.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let Err(errno) = execvp(&argv[0], &argv);
            report_and_exit(&prefix, errno)
        }
        ForkResult::Parent { child } => match waitpid(child, None).context("waitpid")? {
            WaitStatus::Exited(_, code) => println!("parent: the child exited with status {code}"),
            other => println!("parent: the child ended in another way: {other:?}"),
        },
    }
    Ok(())
}

// ANCHOR: report
/// In the child, after `exec` failed: writes `prefix`, the errno's name and
/// its description, and a newline to descriptor 2 with one `write(2)`, then
/// leaves with `_exit(127)`. A line longer than the buffer is cut.
fn report_and_exit(prefix: &[u8], errno: Errno) -> ! {
    const LINE: usize = 1024;
    let mut line = [0u8; LINE];
    let mut free = &mut line[..];
    // Writing into a `&mut [u8]` fills it and moves it on. Formatting an
    // `Errno` ("ENOENT: No such file or directory") allocates nothing.
    let _ = free.write_all(prefix);
    let _ = writeln!(free, "{errno}");
    let used = LINE - free.len();
    let _ = write(std::io::stderr(), &line[..used]);
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(127) }
}
// ANCHOR_END: report
