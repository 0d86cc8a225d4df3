//! The lines the supervisor prints (given: you do not need to change this
//! file). Task 6 calls these, so that the grader reads the same words
//! whoever wrote the supervisor.
//!
//! Each line goes to standard output with `println!`, which Rust flushes
//! at the end of every line: a test waiting for `worker 2: pid …` sees it
//! the moment it is printed, and a child forked after it inherits no
//! half-written buffer.

use std::fmt::Display;

use nix::unistd::Pid;

use super::sig::ChildStatus;
use super::signal_name;

// ANCHOR: report
/// `worker 2: pid 4242`: slot 2 now runs process 4242 (started, or
/// restarted).
pub fn started(slot: usize, pid: Pid) {
    println!("worker {slot}: pid {pid}");
}

/// `supervising 3 worker(s)`: the ready line, once the first workers run.
pub fn supervising(workers: usize) {
    println!("supervising {workers} worker(s)");
}

/// `worker 2: pid 4242 killed by signal SIGKILL; restarting`: a worker
/// died that nobody asked to stop.
pub fn died(slot: usize, pid: Pid, status: ChildStatus) {
    println!("worker {slot}: pid {pid} {}; restarting", how(status));
}

/// `worker 3: pid 4250 stopped (killed by signal SIGTERM)`: a worker the
/// supervisor stopped (after a reload that wants fewer, or at the end)
/// has been reaped.
pub fn stopped(slot: usize, pid: Pid, status: ChildStatus) {
    println!("worker {slot}: pid {pid} stopped ({})", how(status));
}

/// `reload: 4 worker(s), was 2`: after `SIGHUP`, the configuration was
/// read again.
pub fn reloaded(workers: usize, was: usize) {
    println!("reload: {workers} worker(s), was {was}");
}

/// After `SIGHUP`, the configuration could not be read: the error on
/// stderr (`signals: reload failed: …`), and on stdout
/// `reload failed: keeping 2 worker(s)`.
pub fn reload_failed(error: impl Display, kept: usize) {
    eprintln!("signals: reload failed: {error}");
    println!("reload failed: keeping {kept} worker(s)");
}

/// `stopping 3 worker(s)`: `SIGTERM` or `SIGINT` came; each worker gets
/// `SIGTERM` and is reaped.
pub fn stopping(workers: usize) {
    println!("stopping {workers} worker(s)");
}

/// `stopped`: every worker has been reaped; the supervisor exits.
pub fn all_stopped() {
    println!("stopped");
}

/// How a child ended, from its wait status: `exited with status 3`,
/// `killed by signal SIGKILL` (a shell would show 128 + 9 = 137).
pub fn how(status: ChildStatus) -> String {
    match status {
        ChildStatus::Exited(code) => format!("exited with status {code}"),
        ChildStatus::Killed(signal, _) => format!("killed by signal {}", signal_name(signal)),
        ChildStatus::Stopped(signal) => format!("stopped by signal {}", signal_name(signal)),
        ChildStatus::Continued => "continued".to_string(),
    }
}
// ANCHOR_END: report
