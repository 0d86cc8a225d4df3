//! Removing a FIFO when SIGINT (Ctrl-C) or SIGTERM (`kill`) ends the
//! program, so that no stale FIFO is left on disk.
//!
//! Run it with `cargo run -q --example remove_on_signal`, then press Ctrl-C
//! (or `kill` it from another terminal) and look for the FIFO: it is gone.

use std::error::Error;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, pause};

// ANCHOR: handler
/// The path the handler removes. A handler receives nothing but the signal
/// number and must not allocate, so the path is prepared beforehand, and
/// published only once the FIFO exists: until then there is nothing of ours
/// to remove.
static FIFO_PATH: OnceLock<CString> = OnceLock::new();

/// Removes the FIFO, if it was made, then lets the signal end the process.
extern "C" fn remove_fifo(signal: libc::c_int) {
    if let Some(path) = FIFO_PATH.get() {
        // SAFETY: unlink(2) is async-signal-safe; the C string lives as
        // long as the program.
        unsafe { libc::unlink(path.as_ptr()) };
    }
    // SA_RESETHAND restored the default action when the handler started:
    // the signal raised again ends the process once the handler returns.
    // SAFETY: raise(3) is async-signal-safe.
    unsafe { libc::raise(signal) };
}
// ANCHOR_END: handler

fn main() -> Result<(), Box<dyn Error>> {
    let fifo = std::env::temp_dir().join(format!("remove-on-signal.{}.fifo", std::process::id()));
    let path = CString::new(fifo.as_os_str().as_bytes())?;
    // ANCHOR: install
    // Hold SIGINT and SIGTERM back while the FIFO is made: one that comes
    // meanwhile waits, pending, until the handler knows what to remove.
    let mut caught = SigSet::empty();
    caught.add(Signal::SIGINT);
    caught.add(Signal::SIGTERM);
    caught.thread_block()?;
    let action = SigAction::new(
        SigHandler::Handler(remove_fifo),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for signal in caught.iter() {
        // SAFETY: the handler calls only async-signal-safe functions.
        unsafe { sigaction(signal, &action) }?;
    }
    let made = mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR);
    if made.is_ok() {
        // Ours now: publish the path. Had mkfifo failed (EEXIST: someone
        // else's file), the handler would never learn the path.
        FIFO_PATH.set(path).map_err(|_| "the path is already set")?;
    }
    // A signal that came while they were blocked is handled here.
    caught.thread_unblock()?;
    made?;
    // ANCHOR_END: install
    println!(
        "made {}; press Ctrl-C, or run: kill {}",
        fifo.display(),
        std::process::id()
    );
    loop {
        pause();
    }
}
