//! What a `SIGCHLD` handler that reaps every child does to `pclose`, shown
//! with the C library's `popen` and `pclose`, and one way to keep the two
//! apart. The command prints the signal mask it started with (`SigBlk` in
//! `/proc/self/status`): blocking `SIGCHLD` around `popen` blocks it in the
//! command too.
//!
//! Usage (inside `labs/03-popen`): `cargo run --example sigchld_pclose`

use std::ffi::CStr;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};

/// The command: `grep`, run by the shell in its own place, prints the
/// signals it started with blocked.
const SHOW_MASK: &CStr = c"exec grep SigBlk /proc/self/status";

/// How many children the handler has reaped so far.
static REAPED: AtomicUsize = AtomicUsize::new(0);

// ANCHOR: handler
/// Reaps every child that has ended, as servers that fork often do.
extern "C" fn reap_children(_: libc::c_int) {
    let saved = Errno::last_raw(); // a handler must not change errno
    // SAFETY: waitpid is async-signal-safe, and a null status is allowed.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {
        REAPED.fetch_add(1, Ordering::SeqCst);
    }
    Errno::set_raw(saved);
}
// ANCHOR_END: handler

fn main() -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(reap_children),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handler calls only async-signal-safe functions.
    unsafe { sigaction(Signal::SIGCHLD, &action) }.context("sigaction")?;

    // ANCHOR: stolen
    let result = popen_and_pclose(SHOW_MASK)?;
    println!("with the handler:     {result}");
    // ANCHOR_END: stolen

    // ANCHOR: blocked
    // Block SIGCHLD from popen to pclose: the signal stays pending, and by
    // the time the handler runs, pclose has already reaped the child. The
    // C library's popen does not unblock it in the child: the command
    // starts with SIGCHLD blocked.
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    let before = sigchld.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
    let result = popen_and_pclose(SHOW_MASK);
    before.thread_set_mask()?;
    println!("with SIGCHLD blocked: {}", result?);
    // ANCHOR_END: blocked
    Ok(())
}

// ANCHOR: popen_and_pclose
/// Runs `command` with popen, reads its first line, lets the command end
/// (its SIGCHLD arrives meanwhile), then pcloses it. Describes what
/// happened.
fn popen_and_pclose(command: &CStr) -> anyhow::Result<String> {
    let reaped_before = REAPED.load(Ordering::SeqCst);
    // SAFETY: both arguments are NUL-terminated strings.
    let fin = unsafe { libc::popen(command.as_ptr(), c"r".as_ptr()) };
    if fin.is_null() {
        return Err(io::Error::last_os_error()).context("popen");
    }
    let mut buf: [libc::c_char; 256] = [0; 256];
    // SAFETY: fgets stores at most buf.len() bytes, the final NUL included.
    let got = unsafe { libc::fgets(buf.as_mut_ptr(), buf.len() as libc::c_int, fin) };
    let line = if got.is_null() {
        String::new()
    } else {
        // SAFETY: fgets left a NUL-terminated line in buf.
        let line = unsafe { CStr::from_ptr(buf.as_ptr()) };
        line.to_string_lossy().trim_end().replace('\t', " ")
    };
    thread::sleep(Duration::from_millis(100)); // other work, meanwhile
    // SAFETY: fin came from popen and is closed exactly once.
    let status = unsafe { libc::pclose(fin) };
    let pclose = if status == -1 {
        format!("pclose failed: {}", Errno::last())
    } else {
        format!("pclose returned status {status}")
    };
    let reaped = REAPED.load(Ordering::SeqCst) - reaped_before;
    Ok(format!(
        "read {line:?}; {pclose}; the handler reaped {reaped} child(ren)"
    ))
}
// ANCHOR_END: popen_and_pclose
