//! # Lab 04: FIFOs (命名管道) — reference solution
//!
//! The same functions as `labs/04-fifos/src/lib.rs`, done. Read it after you
//! have written your own: compare when each FIFO is made, opened and
//! removed, and what the server does when a client goes wrong.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::RangeInclusive;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::{mkfifo, write};

#[path = "../../../labs/04-fifos/src/cli.rs"]
pub mod cli;

/// Which end of a FIFO to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The read end: `O_RDONLY`.
    Read,
    /// The write end: `O_WRONLY`.
    Write,
}

/// Whether `open` may wait for a process to open the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// A plain `open`: it waits until the other end is open too.
    Blocking,
    /// `O_NONBLOCK`: it never waits. Reads and writes on the descriptor
    /// do not wait either. A read of an empty FIFO fails with `EAGAIN` while
    /// some process has it open for writing, and returns 0 (end-of-file)
    /// when none has; a write to a full FIFO fails with `EAGAIN`.
    NonBlocking,
}

/// The longest request line a client may send: `PIPE_BUF` bytes, the most
/// that one `write(2)` puts into a FIFO in one piece, never mixed with
/// another writer's bytes.
pub const REQUEST_MAX: usize = libc::PIPE_BUF;

/// Makes a FIFO (named pipe, 命名管道) at `path` that only its owner may
/// open: `mkfifo(path, 0600)` (nix: `unistd::mkfifo(path, Mode::S_IRUSR |
/// Mode::S_IWUSR)`).
///
/// The FIFO is a file of type `p`: `ls -l` shows `prw-------`. `mkfifo`
/// never replaces anything: if `path` exists, FIFO or not, it fails with
/// `EEXIST`. Return any error with the context `mkfifo PATH`, so that the
/// command prints, for example, `fifos: mkfifo /tmp/x: EEXIST: File exists`.
pub fn make_fifo(path: &Path) -> anyhow::Result<()> {
    mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)
        .with_context(|| format!("mkfifo {}", path.display()))
}

/// Opens one end of the FIFO at `path` and returns its descriptor; refuses
/// anything that is not a FIFO, and any symbolic link.
///
/// 1. `open(2)` `path` with `O_RDONLY` for [`End::Read`] or `O_WRONLY` for
///    [`End::Write`], plus `O_CLOEXEC`, plus `O_NOFOLLOW` (a symbolic link
///    fails with `ELOOP` instead of being followed), plus `O_NONBLOCK` for
///    [`OpenMode::NonBlocking`] (nix: `fcntl::open(path, flags,
///    Mode::empty())`). If it fails, return the error with the context
///    `cannot open PATH`.
/// 2. Check **the descriptor**, not the path: `fstat(2)` it (nix:
///    `sys::stat::fstat`, then `SFlag::S_IFIFO`; std:
///    `File::metadata()?.file_type().is_fifo()`). If it is not a FIFO, close
///    it and fail with `PATH is not a FIFO`: nothing is ever written through
///    it. (A `stat` of the path *before* the `open` would check one file
///    and open another, if someone swapped in a symbolic link between the
///    two calls.)
///
/// What `open` does depends on the other end:
///
/// | flags | a process has the other end open | nobody has |
/// |---|---|---|
/// | `O_RDONLY` | returns | **blocks** until a writer opens it |
/// | `O_WRONLY` | returns | **blocks** until a reader opens it |
/// | `O_RDONLY \| O_NONBLOCK` | returns | returns at once |
/// | `O_WRONLY \| O_NONBLOCK` | returns | fails with `ENXIO` |
///
/// Permissions are checked before any waiting: without them, `open` fails
/// at once with `EACCES`. A regular file opens at once (a directory too, for
/// reading): the `fstat` is what refuses it.
pub fn open_fifo(path: &Path, end: End, mode: OpenMode) -> anyhow::Result<OwnedFd> {
    let cannot_open = || format!("cannot open {}", path.display());
    let mut flags = match end {
        End::Read => OFlag::O_RDONLY,
        End::Write => OFlag::O_WRONLY,
    } | OFlag::O_CLOEXEC
        | OFlag::O_NOFOLLOW;
    if mode == OpenMode::NonBlocking {
        flags |= OFlag::O_NONBLOCK;
    }
    let fd = open(path, flags, Mode::empty()).with_context(cannot_open)?;
    // The file we opened, whatever the path names by now.
    let opened = fstat(&fd).with_context(cannot_open)?;
    if SFlag::from_bits_truncate(opened.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
        // Dropping `fd` closes it: nothing was read or written.
        bail!("{} is not a FIFO", path.display());
    }
    Ok(fd)
}

/// Copies `input` to `out` **and** into the FIFO at `fifo`, as `tee FIFO`
/// does, and returns how many bytes it copied. One input then feeds two
/// consumers without a temporary file:
///
/// ```text
/// mkfifo fifo1
/// prog3 < fifo1 &
/// prog1 < infile | fifos tee fifo1 | prog2
/// ```
///
/// * Open `fifo` for writing with [`open_fifo`], blocking: `open` waits
///   until the other consumer (`prog3`) has opened it for reading.
/// * Then, until `input` ends (a read returns 0): read a chunk of at most
///   64 KiB, write all of it to `out`, then all of it to the FIFO. Both
///   consumers read while you write, so the input may be far larger than a
///   FIFO holds: never read all of it before writing.
/// * Flush `out`, and close the FIFO: that is the end-of-file its reader
///   waits for.
///
/// A write to the FIFO after its reader has gone fails with `EPIPE`
/// (`io::ErrorKind::BrokenPipe`: Rust ignores `SIGPIPE`). Stop and return
/// it with the context `write to FIFO` (the FIFO's path), so that the
/// command prints `fifos: write to /tmp/fifo1: EPIPE: Broken pipe`. Errors
/// on `out` get the context `write to standard output`, errors on `input`
/// `read standard input`.
pub fn tee_to_fifo<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    fifo: &Path,
) -> anyhow::Result<u64> {
    let mut to_fifo = File::from(open_fifo(fifo, End::Write, OpenMode::Blocking)?);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).context("read standard input"),
        };
        out.write_all(&chunk[..n])
            .context("write to standard output")?;
        to_fifo
            .write_all(&chunk[..n])
            .with_context(|| format!("write to {}", fifo.display()))?;
        copied += n as u64;
    }
    out.flush().context("write to standard output")?;
    // Dropping `to_fifo` closes the write end: the FIFO's reader sees
    // end-of-file.
    Ok(copied)
}

/// The client of the sequence-number server: asks the server listening on
/// the well-known FIFO `server` for `count` numbers, with a private reply
/// FIFO at `reply`, and returns the numbers it got.
///
/// The protocol, one request and one reply per client:
///
/// * **request**, on the well-known FIFO: one line `COUNT REPLY\n`, e.g.
///   `5 /tmp/fifos-client.4242\n`. `REPLY` is an absolute path (the
///   server's working directory is not the client's). The line has at most
///   [`REQUEST_MAX`] bytes and goes out with **one** `write(2)` call, so it
///   never mixes with other clients' requests;
/// * **reply**, on the reply FIFO: one line `FIRST\n`. The client's numbers
///   are `FIRST` to `FIRST + COUNT - 1`; no other client gets them.
///
/// Steps:
///
/// 1. open `server` for writing, non-blocking. `ENXIO` means that no server
///    has it open for reading: fail at once with the context `no server is
///    listening on SERVER` instead of waiting for ever;
/// 2. make the reply FIFO with [`make_fifo`]. From here on, remove it
///    (`std::fs::remove_file`) on every way out of this function, errors
///    included: a guard value whose `Drop` removes it does that;
/// 3. send the request with one `write` (nix: `unistd::write`) and check
///    that it took the whole line;
/// 4. open the reply FIFO for reading, blocking: the server opens it for
///    writing when it answers. Read to end-of-file and parse `FIRST`. For a
///    reply that is not one number and a newline, fail with `bad reply from
///    the server: "TEXT"` (the text received, as `{:?}` prints it);
/// 5. return `FIRST..=FIRST + COUNT - 1`.
pub fn request_numbers(
    server: &Path,
    reply: &Path,
    count: u32,
) -> anyhow::Result<RangeInclusive<u64>> {
    let to_server = open_fifo(server, End::Write, OpenMode::NonBlocking)
        .with_context(|| format!("no server is listening on {}", server.display()))?;
    let request = format!("{count} {}\n", reply.display());
    if request.len() > REQUEST_MAX {
        bail!("the reply path is too long: a request may have at most {REQUEST_MAX} bytes");
    }
    make_fifo(reply)?;
    let _remove_reply = RemoveOnDrop(reply);
    let written = write(&to_server, request.as_bytes())
        .with_context(|| format!("send the request to {}", server.display()))?;
    if written != request.len() {
        bail!(
            "the request went out in part ({written} of {} bytes)",
            request.len()
        );
    }
    drop(to_server);

    let mut answer = String::new();
    File::from(open_fifo(reply, End::Read, OpenMode::Blocking)?)
        .read_to_string(&mut answer)
        .with_context(|| format!("read the reply from {}", reply.display()))?;
    let first: u64 = answer
        .strip_suffix('\n')
        .and_then(|number| number.parse().ok())
        .with_context(|| format!("bad reply from the server: {answer:?}"))?;
    Ok(first..=first + u64::from(count) - 1)
}

/// The sequence-number server: answers the clients of the well-known FIFO
/// `fifo`, which it makes, until it has read `stop_after` requests (never,
/// if `None`) or until SIGINT or SIGTERM. Returns how many requests it read.
///
/// Set up, in this order:
///
/// 1. **Signals.** Block SIGINT and SIGTERM (nix: `SigSet::thread_block`)
///    until step 2 is done. For both, install a handler (nix: `sigaction`
///    with `SaFlags::SA_RESETHAND`) that removes the FIFO with
///    `libc::unlink`, if it knows its path, and then raises the same signal
///    again, so that the server still dies of it. A handler can reach the
///    path only through a `static` (a `OnceLock<CString>`), and may call
///    only async-signal-safe functions: `unlink` and `raise` are. Ignore
///    SIGPIPE too (`SigIgn`): a server must not die when a client vanishes.
///    Rust ignores it already, but a server says so itself.
/// 2. **The well-known FIFO**: [`make_fifo`]. Only once it has succeeded,
///    give the handler the path (set the `static`); then unblock the two
///    signals. A signal that came meanwhile was held pending, and is handled
///    now: it removes the FIFO. If the path already exists (`EEXIST`),
///    unblock and fail: the handler never learnt that path, so a signal
///    cannot make the server remove what it did not make. From here on,
///    every way out of this function removes the FIFO.
/// 3. **The dummy writer.** Open the FIFO for reading, non-blocking: it
///    returns at once, though no client is there yet. Then open it for
///    writing, blocking (it returns at once: there is a reader, the server)
///    and keep that descriptor open until the end. With a writer always
///    there, `read` never returns end-of-file when the last client leaves:
///    it waits for the next one. Then clear `O_NONBLOCK` on the read end
///    (`fcntl(F_GETFL)`, then `fcntl(F_SETFL)` without it), so that `read`
///    waits instead of failing with `EAGAIN`.
/// 4. Write `server: listening on FIFO` to `log` and flush it: clients, and
///    the tests, wait for that line.
///
/// Then, for each request line (a `BufReader` and `read_until(b'\n')`):
///
/// * parse `COUNT REPLY` (see [`request_numbers`]): `COUNT` at least 1,
///   `REPLY` an absolute path. Report a bad line on standard error
///   (`server: bad request …`) and go on with the next;
/// * open `REPLY` for writing with [`open_fifo`], blocking. It refuses a
///   path that is not a FIFO, and a symbolic link: a client must not make
///   the server write into its files, or into anything else;
/// * once it is open, the client gets the next free numbers: `FIRST` is 1
///   for the first client, and each client moves it on by its `COUNT`;
/// * write `FIRST\n` with one `write`, and close the reply FIFO.
///
/// A client that has vanished makes the open or the write fail (`ENOENT`,
/// `EPIPE` …): report it on standard error (`server: …`) and go on. Only
/// an error on the well-known FIFO itself ends the server.
pub fn serve<W: Write>(fifo: &Path, stop_after: Option<u64>, log: &mut W) -> anyhow::Result<u64> {
    make_fifo_removed_on_signal(fifo)?;
    let _remove_fifo = RemoveOnDrop(fifo);

    let requests = open_fifo(fifo, End::Read, OpenMode::NonBlocking)?;
    // The dummy writer: while it is open, read() on `requests` waits for
    // the next client instead of returning end-of-file.
    let _dummy_writer = open_fifo(fifo, End::Write, OpenMode::Blocking)?;
    clear_nonblock(&requests)?;
    writeln!(log, "server: listening on {}", fifo.display())?;
    log.flush()?;

    let mut requests = BufReader::new(File::from(requests));
    let mut next = 1u64;
    let mut read = 0u64;
    let mut line = Vec::new();
    while stop_after.is_none_or(|limit| read < limit) {
        line.clear();
        let n = requests
            .read_until(b'\n', &mut line)
            .with_context(|| format!("read a request from {}", fifo.display()))?;
        if n == 0 {
            bail!("end-of-file on {}: no writer left", fifo.display());
        }
        read += 1;
        if let Err(error) = answer(&line, &mut next) {
            eprintln!("server: {error:#}");
        }
    }
    Ok(read)
}

/// The well-known FIFO's path, for the signal handler: a handler cannot be
/// given arguments, and must not allocate. Set only once the FIFO exists.
static FIFO_TO_REMOVE: OnceLock<CString> = OnceLock::new();

/// Removes a file when dropped: on every way out of the scope that holds it.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0);
    }
}

/// Makes the FIFO at `fifo` so that SIGINT and SIGTERM remove it before
/// they end the process, and makes SIGPIPE harmless.
///
/// The two signals are blocked while the FIFO is made, and the handler
/// learns the path only once `mkfifo` has succeeded: a signal that comes
/// before finds nothing to remove (a path that existed already is someone
/// else's), and one that comes meanwhile waits, pending, until the path is
/// published.
fn make_fifo_removed_on_signal(fifo: &Path) -> anyhow::Result<()> {
    if FIFO_TO_REMOVE.get().is_some() {
        bail!("serve: one server per process");
    }
    let path = CString::new(fifo.as_os_str().as_bytes())
        .with_context(|| format!("{}: a path with a NUL byte", fifo.display()))?;
    let mut caught = SigSet::empty();
    caught.add(Signal::SIGINT);
    caught.add(Signal::SIGTERM);
    caught.thread_block().context("block SIGINT and SIGTERM")?;
    let made = install_handlers(&caught).and_then(|()| make_fifo(fifo));
    if made.is_ok() {
        // Ours now: from here on, a signal removes it.
        let _ = FIFO_TO_REMOVE.set(path);
    }
    // A signal held back meanwhile is handled now.
    let unblocked = caught
        .thread_unblock()
        .context("unblock SIGINT and SIGTERM");
    if made.is_ok() && unblocked.is_err() {
        let _ = fs::remove_file(fifo);
    }
    made.and(unblocked)
}

/// Installs the handler that removes the FIFO for each signal of
/// `caught`, and ignores SIGPIPE.
fn install_handlers(caught: &SigSet) -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(remove_fifo_and_die),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for signal in caught.iter() {
        // SAFETY: the handler calls only async-signal-safe functions.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("sigaction({signal})"))?;
    }
    // SAFETY: SIG_IGN installs no handler.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.context("signal(SIGPIPE)")?;
    Ok(())
}

/// The SIGINT/SIGTERM handler: removes the well-known FIFO, if it was made,
/// then lets the signal end the process as it would have without a
/// handler.
extern "C" fn remove_fifo_and_die(signal: libc::c_int) {
    if let Some(path) = FIFO_TO_REMOVE.get() {
        // SAFETY: unlink(2) is async-signal-safe; `path` is a valid C
        // string that lives as long as the program.
        unsafe { libc::unlink(path.as_ptr()) };
    }
    // SA_RESETHAND has put the default action back, so the signal raised
    // again ends the process as soon as this handler returns.
    // SAFETY: raise(3) is async-signal-safe.
    unsafe { libc::raise(signal) };
}

/// Clears `O_NONBLOCK` on `fd`, so that reads wait for data.
fn clear_nonblock(fd: &OwnedFd) -> anyhow::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).context("fcntl(F_GETFL)")?);
    fcntl(fd, FcntlArg::F_SETFL(flags.difference(OFlag::O_NONBLOCK))).context("fcntl(F_SETFL)")?;
    Ok(())
}

/// Answers one request line. `next` moves on once the client's FIFO is
/// open: those numbers are the client's even if the reply then fails.
fn answer(line: &[u8], next: &mut u64) -> anyhow::Result<()> {
    let (count, reply) = parse_request(line)?;
    let to_client = open_fifo(reply, End::Write, OpenMode::Blocking)?;
    let first = *next;
    *next += u64::from(count);
    let text = format!("{first}\n");
    let written = write(&to_client, text.as_bytes())
        .with_context(|| format!("answer {}", reply.display()))?;
    if written != text.len() {
        bail!("answer {}: the reply went out in part", reply.display());
    }
    Ok(())
}

/// Parses `COUNT REPLY\n` into the count (at least 1) and the reply FIFO's
/// path (absolute).
fn parse_request(line: &[u8]) -> anyhow::Result<(u32, &Path)> {
    let bad = || format!("bad request {:?}", String::from_utf8_lossy(line));
    let text = std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.strip_suffix('\n'))
        .with_context(bad)?;
    let (count, reply) = text.split_once(' ').with_context(bad)?;
    let count = count
        .parse::<u32>()
        .ok()
        .filter(|&count| count >= 1)
        .with_context(bad)?;
    let reply = Path::new(reply);
    if !reply.is_absolute() {
        bail!("{}: the reply FIFO must be an absolute path", bad());
    }
    Ok((count, reply))
}
