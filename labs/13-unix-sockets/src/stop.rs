//! Stopping a server cleanly on `SIGINT`, `SIGTERM` or `SIGHUP` (given: you
//! do not need to change this file).
//!
//! A server killed by Ctrl-C must still remove its socket file, or the next
//! server's `bind` fails with `EADDRINUSE`. Chapter 04 did it with a signal
//! handler; a program with threads has a simpler way, shown here:
//!
//! 1. [`StopSignals::block`] blocks the three signals in the main thread
//!    **before** the socket file exists. Every thread started later
//!    inherits that mask, so none of them is ever interrupted by one: a
//!    signal that comes now waits, pending.
//! 2. Once `bind` has created the file, [`StopSignals::remove_on_stop`]
//!    starts one thread that waits for the signals with `sigwait(3)`. When
//!    one comes (or was already pending), that thread, which runs ordinary
//!    code and not a handler, removes the file, restores the signal's
//!    default action and raises it again: the process ends as the signal
//!    would have ended it, and its parent sees "killed by SIGTERM".

use std::fs;
use std::io;
use std::path::PathBuf;
use std::thread;

use anyhow::Context;
use nix::sys::signal::{self, SigHandler, SigSet, Signal};

/// The signals that ask a server to stop.
const STOP: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

// ANCHOR: stop_signals
/// The stop signals, blocked in this thread and in every thread it starts.
#[derive(Debug)]
pub struct StopSignals {
    set: SigSet,
}

impl StopSignals {
    /// Blocks `SIGINT`, `SIGTERM` and `SIGHUP` in the calling thread
    /// (`pthread_sigmask(SIG_BLOCK)`). Call it before the socket file is
    /// created, and before any thread is started.
    pub fn block() -> anyhow::Result<StopSignals> {
        let mut set = SigSet::empty();
        for signal in STOP {
            set.add(signal);
        }
        set.thread_block()
            .context("block SIGINT, SIGTERM and SIGHUP")?;
        Ok(StopSignals { set })
    }

    /// Starts the thread that waits for a stop signal, then removes `file`
    /// (the socket file, if the server has one) and ends the process as
    /// the signal would. Call it once the file exists.
    pub fn remove_on_stop(self, file: Option<PathBuf>) -> anyhow::Result<()> {
        thread::Builder::new()
            .name("stop-signals".to_string())
            .spawn(move || wait_then_stop(self.set, file))
            .context("start the thread that waits for SIGINT and SIGTERM")?;
        Ok(())
    }
}
// ANCHOR_END: stop_signals

/// The body of the signal thread.
fn wait_then_stop(set: SigSet, file: Option<PathBuf>) {
    let signal = match set.wait() {
        Ok(signal) => signal,
        Err(errno) => {
            eprintln!("stop: sigwait failed: {errno}");
            return;
        }
    };
    if let Some(path) = file
        && let Err(error) = fs::remove_file(&path)
        && error.kind() != io::ErrorKind::NotFound
    {
        eprintln!("stop: remove {}: {error}", path.display());
    }
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run at
    // an unsafe moment.
    let _ = unsafe { signal::signal(signal, SigHandler::SigDfl) };
    let _ = SigSet::from(signal).thread_unblock();
    // Delivered to this thread at once: the default action ends the process.
    let _ = signal::raise(signal);
    std::process::exit(128 + signal as i32);
}
