//! The parts of a daemon's life that are not about locks (given: you do
//! not need to change this file).
//!
//! [`start_daemon`](super::start_daemon) forks; the child, the daemon to
//! be, claims the pid file and must tell the process that started it what
//! came of it, since that process is the one with a terminal to say it
//! on. It does so through a pipe: one line, then end-of-file.
//!
//! ```text
//! started 4242            the daemon (this pid) holds the pid file
//! running 4100            another daemon, pid 4100, holds it
//! failed open app.pid: …  the claim failed; the reason follows
//! ```
//!
//! Then a daemon lets go of everything that ties it to the command that
//! started it ([`detach`]) and waits for `SIGTERM` or `SIGINT`
//! ([`wait_for_termination`]), blocked beforehand so that one that comes
//! early is kept pending rather than lost ([`block_termination`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use anyhow::{Context, bail};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Pid, dup2_stderr, dup2_stdin, dup2_stdout, getpid};

use super::{Claim, Started};

/// Blocks `SIGTERM` and `SIGINT` in this thread (`sigprocmask`): from now
/// on they wait, pending, until [`wait_for_termination`] takes them.
pub fn block_termination() -> anyhow::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block().context("block SIGTERM and SIGINT")?;
    Ok(set)
}

/// Waits until `SIGTERM` or `SIGINT` comes (or has come), with
/// `sigwait(3)`: blocked, they are taken here, with no handler.
pub fn wait_for_termination(set: &SigSet) {
    while set.wait().is_err() {}
}

/// Moves standard input, output and error to `/dev/null` and the working
/// directory to `/`: the daemon then holds neither the terminal nor the
/// pipes of the command that started it (whose reader would otherwise wait
/// for an end-of-file that never comes), nor a directory someone may want
/// to unmount. Paths it uses later must be absolute, or opened before.
pub fn detach() -> anyhow::Result<()> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    dup2_stdin(&null).context("dup2 to standard input")?;
    dup2_stdout(&null).context("dup2 to standard output")?;
    dup2_stderr(&null).context("dup2 to standard error")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

// ANCHOR: report
/// Sends the parent what [`claim_pid_file`](super::claim_pid_file)
/// returned, as one line on `pipe`, the write end of the pipe from the
/// parent; then closes it. Call it in the daemon: a claim that succeeded
/// reports the caller's pid.
pub fn report(pipe: OwnedFd, claim: &anyhow::Result<Claim>) {
    let line = match claim {
        Ok(Claim::Ours(_)) => format!("started {}\n", getpid()),
        Ok(Claim::Running(pid)) => format!("running {pid}\n"),
        Err(error) => format!("failed {}\n", format!("{error:#}").replace('\n', " ")),
    };
    // If the parent has gone, nobody is left to tell: nothing to do.
    let _ = File::from(pipe).write_all(line.as_bytes());
}

/// Reads the daemon's report from `pipe`, the read end, up to end-of-file,
/// which comes once every write end is closed: the child's (closed by
/// [`report`], or by its exit) and this process's own (close it before
/// calling this).
pub fn read_report(pipe: OwnedFd) -> anyhow::Result<Started> {
    let mut text = String::new();
    File::from(pipe)
        .read_to_string(&mut text)
        .context("read the daemon's report")?;
    let line = text.lines().next().unwrap_or("");
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let pid = || -> anyhow::Result<Pid> {
        let pid = rest.trim().parse().context("a report without a pid")?;
        Ok(Pid::from_raw(pid))
    };
    match word {
        "started" => Ok(Started::Daemon(pid()?)),
        "running" => Ok(Started::AlreadyRunning(pid()?)),
        "failed" => bail!("{rest}"),
        "" => bail!("the daemon ended without a report"),
        _ => bail!("a report that makes no sense: {line:?}"),
    }
}
// ANCHOR_END: report
