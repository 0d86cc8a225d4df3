//! # Lab 02: pipes (管道) — reference solution
//!
//! The same functions as `labs/02-pipes/src/lib.rs`, done. Read it after you
//! have written your own: compare where each descriptor gets closed.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use anyhow::{Context, bail};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{
    ForkResult, PathconfVar, Pid, dup2_stdin, dup2_stdout, execvp, fork, fpathconf, pipe, pipe2,
};

#[path = "../../../labs/02-pipes/src/cli.rs"]
pub mod cli;

/// What the kernel says about pipes on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeLimits {
    /// The largest write that is guaranteed to be atomic (`PIPE_BUF`).
    pub pipe_buf: usize,
    /// How many bytes a pipe holds before a writer blocks.
    pub capacity: usize,
}

/// What [`gather_records`] found in the pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// How many whole records arrived (bytes received / record size).
    pub records: usize,
    /// How many of them were intact: one writer's letter throughout.
    pub intact: usize,
    /// Intact records per writer: index 0 is writer 1 (letter `a`).
    pub intact_per_writer: Vec<usize>,
}

/// Creates a pipe and asks the kernel for its limits:
///
/// * `PIPE_BUF` with `fpathconf(fd, _PC_PIPE_BUF)` (nix:
///   `unistd::fpathconf(&fd, PathconfVar::PIPE_BUF)`): POSIX only promises
///   it is at least 512; Linux says 4096;
/// * the capacity with `fcntl(fd, F_GETPIPE_SZ)` (nix:
///   `fcntl(&fd, FcntlArg::F_GETPIPE_SZ)`): by default 16 pages, 65536
///   bytes on a machine with 4 KiB pages.
///
/// With `capacity`, first ask for a pipe that holds at least that many
/// bytes, `fcntl(fd, F_SETPIPE_SZ, capacity)` (nix:
/// `FcntlArg::F_SETPIPE_SZ(n)`), and report what `F_GETPIPE_SZ` says
/// afterwards: the kernel rounds the request up (today to a power-of-two
/// number of pages). An ordinary user may not ask for more than
/// `/proc/sys/fs/pipe-max-size` (`EPERM`).
///
/// Both ends are closed when the function returns (dropping an `OwnedFd`
/// closes it).
pub fn pipe_limits(capacity: Option<usize>) -> anyhow::Result<PipeLimits> {
    let (read_end, _write_end) = pipe().context("pipe")?;
    if let Some(wanted) = capacity {
        let wanted = i32::try_from(wanted).context("capacity out of range")?;
        fcntl(&read_end, FcntlArg::F_SETPIPE_SZ(wanted))
            .with_context(|| format!("fcntl(F_SETPIPE_SZ, {wanted})"))?;
    }
    let pipe_buf = fpathconf(&read_end, PathconfVar::PIPE_BUF)
        .context("fpathconf(_PC_PIPE_BUF)")?
        .context("fpathconf(_PC_PIPE_BUF): no limit reported")?;
    let capacity = fcntl(&read_end, FcntlArg::F_GETPIPE_SZ).context("fcntl(F_GETPIPE_SZ)")?;
    Ok(PipeLimits {
        pipe_buf: usize::try_from(pipe_buf).context("PIPE_BUF out of range")?,
        capacity: usize::try_from(capacity).context("capacity out of range")?,
    })
}

/// Sends `input` to a child process through a pipe; the child counts it.
///
/// * `pipe()` gives two descriptors: `fds[0]` (nix: the first `OwnedFd`) is
///   the read end, `fds[1]` the write end; then `fork()`;
/// * the **child** closes the write end, reads the read end until `read`
///   returns 0 (end-of-file), prints `child: read N bytes in M lines`
///   (M = number of `\n`), flushes, and leaves with `_exit(0)`;
/// * the **parent** closes the read end, writes all of `input`, closes the
///   write end, and waits for the child, returning its status.
///
/// End-of-file arrives only once *every* copy of the write end is closed,
/// the child's own copy included. The input may be far larger than the
/// pipe: the writer then blocks until the reader catches up.
pub fn count_in_child(input: &[u8]) -> anyhow::Result<WaitStatus> {
    let (read_end, write_end) = pipe().context("pipe")?;
    // SAFETY: single-threaded; the child reads, prints and calls _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            // Without this, the child itself keeps a writer alive and its
            // read() never returns 0.
            drop(write_end);
            let code = match count_until_eof(read_end) {
                Ok((bytes, lines)) => {
                    println!("child: read {bytes} bytes in {lines} lines");
                    0
                }
                Err(error) => {
                    eprintln!("pipes: child: read: {error}");
                    1
                }
            };
            exit_child(code)
        }
        ForkResult::Parent { child } => {
            drop(read_end);
            let mut writer = File::from(write_end);
            let written = writer.write_all(input).context("write to the child");
            // Close the write end *before* waiting: it is the child's EOF.
            drop(writer);
            let status = wait_for(child)?;
            written?;
            Ok(status)
        }
    }
}

/// Writes the numbers 1 to `count` to `out`, one per line, then flushes.
///
/// `out` is usually a pipe to another program (`pipes numbers 1000000 |
/// head -n 3`). When the reader exits, the next write fails with `EPIPE`
/// (`io::ErrorKind::BrokenPipe`): Rust programs ignore `SIGPIPE`, so instead
/// of being killed by it they get this error. That is not a failure here:
/// return `Ok(())` and stop quietly, as `yes` or `seq` would. Return any
/// other error.
pub fn write_numbers<W: Write>(count: u64, out: &mut W) -> io::Result<()> {
    let written = (1..=count)
        .try_for_each(|n| writeln!(out, "{n}"))
        .and_then(|()| out.flush());
    match written {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs `left | right`: `left`'s standard output feeds `right`'s standard
/// input, as the shell does for `ls | wc -l`.
///
/// 1. `pipe()`;
/// 2. fork the left child: `dup2` the write end onto descriptor 1, close
///    both pipe descriptors, `execvp(left)`;
/// 3. fork the right child: `dup2` the read end onto descriptor 0, close
///    both, `execvp(right)`;
/// 4. the parent closes both ends and waits for both children.
///
/// Before `execvp`, each child puts `SIGPIPE` back to its default action
/// (`signal(SIGPIPE, SIG_DFL)`): Rust ignored it at start-up, and an ignored
/// signal stays ignored across exec. Then `seq 1 1000000 | head -n 1` ends
/// the way it does in a shell — `seq` is killed quietly when `head` leaves —
/// instead of `seq` complaining about a write error.
///
/// If `execvp` fails, the child prints `pipes: cannot run PROGRAM: ERRNO`
/// on stderr and leaves with `_exit(127)`. Returns the statuses of (left,
/// right).
pub fn pipeline(left: &[String], right: &[String]) -> anyhow::Result<(WaitStatus, WaitStatus)> {
    let left_argv = to_c_strings(left)?;
    let right_argv = to_c_strings(right)?;
    // O_CLOEXEC: each child keeps only the copy it dup2()s onto 0 or 1 (dup2
    // clears the flag on the new descriptor); exec closes the originals.
    // With a plain pipe(), each child would have to close both ends itself,
    // or `right` would hold a write end and never see end-of-file.
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;

    let left_child = spawn_with(&left_argv, |_| dup2_stdout(&write_end))?;
    let right_child = match spawn_with(&right_argv, |_| dup2_stdin(&read_end)) {
        Ok(child) => child,
        Err(error) => {
            drop(write_end);
            let _ = wait_for(left_child);
            return Err(error);
        }
    };
    // The parent must not keep either end: while it holds the write end,
    // `right` never sees end-of-file.
    drop(read_end);
    drop(write_end);
    Ok((wait_for(left_child)?, wait_for(right_child)?))
}

/// `writers` children write into one pipe at the same time; the parent
/// reads everything and checks whether any record was torn apart.
///
/// Writer `w` (1-based) writes `records` records, each with **one**
/// `write(2)` call of `size` bytes: its letter (`a` for writer 1, `b` for
/// writer 2, …) `size - 1` times, then `\n`. Then it leaves with `_exit(0)`.
///
/// The parent closes its write end, reads until end-of-file, cuts the bytes
/// into `size`-byte records, counts those made of one letter and `\n`, and
/// only then reaps the writers. Writes of up to `PIPE_BUF` bytes are atomic:
/// they never interleave with other writers' data. Larger ones may.
///
/// Together the writers may send far more than the pipe holds: a writer
/// blocks until the parent reads, so reading comes before waiting.
pub fn gather_records(writers: u8, size: usize, records: u32) -> anyhow::Result<Tally> {
    if size < 2 {
        bail!("gather: a record needs at least 2 bytes");
    }
    let (read_end, write_end) = pipe().context("pipe")?;
    let mut children = Vec::with_capacity(usize::from(writers));
    for writer in 0..writers {
        let record = make_record(writer, size);
        // SAFETY: single-threaded; the child writes and calls _exit.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(read_end);
                exit_child(write_records(&write_end, &record, records))
            }
            Ok(ForkResult::Parent { child }) => children.push(child),
            Err(errno) => {
                drop(write_end);
                drain_and_reap(read_end, children);
                return Err(errno).context("fork a writer");
            }
        }
    }
    drop(write_end);
    let mut received = Vec::new();
    let read = File::from(read_end)
        .read_to_end(&mut received)
        .context("read the records");
    for child in children {
        wait_for(child)?;
    }
    read?;
    Ok(tally(&received, size, writers))
}

/// Writer `writer`'s record: its letter `size - 1` times, then a newline.
fn make_record(writer: u8, size: usize) -> Vec<u8> {
    let mut record = vec![b'a' + writer; size];
    record[size - 1] = b'\n';
    record
}

/// Writes `record` `count` times, one write(2) each; the exit code for the
/// writer child (0, or 1 after a failed or short write).
fn write_records(fd: &OwnedFd, record: &[u8], count: u32) -> i32 {
    for _ in 0..count {
        match nix::unistd::write(fd, record) {
            Ok(n) if n == record.len() => {}
            _ => return 1,
        }
    }
    0
}

/// Counts the intact records in `bytes`.
fn tally(bytes: &[u8], size: usize, writers: u8) -> Tally {
    let mut intact_per_writer = vec![0; usize::from(writers)];
    let mut records = 0;
    for record in bytes.chunks_exact(size) {
        records += 1;
        let letter = record[0];
        let (body, end) = record.split_at(size - 1);
        let writer = usize::from(letter.wrapping_sub(b'a'));
        if end == b"\n" && writer < intact_per_writer.len() && body.iter().all(|&b| b == letter) {
            intact_per_writer[writer] += 1;
        }
    }
    Tally {
        records,
        intact: intact_per_writer.iter().sum(),
        intact_per_writer,
    }
}

/// After a failed fork: lets the writers already started finish, then
/// reaps them, so none is left blocked on a full pipe or as a zombie.
fn drain_and_reap(read_end: OwnedFd, children: Vec<Pid>) {
    let _ = io::copy(&mut File::from(read_end), &mut io::sink());
    for child in children {
        let _ = wait_for(child);
    }
}

/// Forks a child that runs `prepare` (to rewire its descriptors) and then
/// `execvp(argv)`. Returns the child's pid.
fn spawn_with(
    argv: &[CString],
    prepare: impl FnOnce(()) -> nix::Result<()>,
) -> anyhow::Result<Pid> {
    // SAFETY: this program is single-threaded, so no other thread can hold
    // a lock or be inside the allocator when it forks. The child only calls
    // dup2, signal, execvp and _exit, and on failure eprintln!, which is
    // tolerated here for that reason (chapter 01 shows the allocation-free
    // report a multi-threaded program needs).
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            if let Err(errno) = prepare(()) {
                eprintln!("pipes: dup2: {errno}");
                exit_child(126);
            }
            // SAFETY: SIG_DFL installs no handler; nothing can run unsafely.
            if let Err(errno) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) } {
                eprintln!("pipes: signal(SIGPIPE): {errno}");
                exit_child(126);
            }
            let Err(errno) = execvp(&argv[0], argv);
            eprintln!("pipes: cannot run {}: {errno}", argv[0].to_string_lossy());
            exit_child(127)
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Counts bytes and newlines read from `fd` until end-of-file.
fn count_until_eof(fd: OwnedFd) -> io::Result<(u64, u64)> {
    let mut reader = File::from(fd);
    let mut chunk = [0u8; 64 * 1024];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok((bytes, lines)),
            Ok(n) => {
                bytes += n as u64;
                lines += chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
}

/// Waits for `child` to end (retrying if a signal interrupts the wait).
fn wait_for(child: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            result => return result.with_context(|| format!("waitpid {child}")),
        }
    }
}

/// Converts a command's words to the NUL-terminated strings `exec` takes.
fn to_c_strings(words: &[String]) -> anyhow::Result<Vec<CString>> {
    if words.is_empty() {
        bail!("empty command");
    }
    words
        .iter()
        .map(|word| CString::new(word.as_bytes()).with_context(|| format!("argument {word:?}")))
        .collect()
}

/// Ends a child process at once with `_exit(2)`.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}
