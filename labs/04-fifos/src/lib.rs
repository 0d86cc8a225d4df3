//! # Lab 04: FIFOs (命名管道)
//!
//! Write the five functions below, in order; each has a `TODO(N)` that
//! matches task N in the book chapter `book/src/04-fifos.md` and the grading
//! suite `tests/04-fifos.rs`. Run `cargo test` in this directory to grade
//! your work; `cargo run -- --help` shows the command you are building.
//!
//! The command line in `cli.rs` is given: it calls these functions and
//! prints what they return. You may add private helper functions and types
//! here.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::{Read, Write};
use std::ops::RangeInclusive;
use std::os::fd::OwnedFd;
use std::path::Path;

pub mod cli;

// ANCHOR: open_types
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
// ANCHOR_END: open_types

// ANCHOR: request_max
/// The longest request line a client may send: `PIPE_BUF` bytes, the most
/// that one `write(2)` puts into a FIFO in one piece, never mixed with
/// another writer's bytes.
pub const REQUEST_MAX: usize = libc::PIPE_BUF;
// ANCHOR_END: request_max

// ANCHOR: make_fifo
/// Makes a FIFO (named pipe, 命名管道) at `path` that only its owner may
/// open: `mkfifo(path, 0600)` (nix: `unistd::mkfifo(path, Mode::S_IRUSR |
/// Mode::S_IWUSR)`).
///
/// The FIFO is a file of type `p`: `ls -l` shows `prw-------`. `mkfifo`
/// never replaces anything: if `path` exists, FIFO or not, it fails with
/// `EEXIST`. Return any error with the context `mkfifo PATH`, so that the
/// command prints, for example, `fifos: mkfifo /tmp/x: EEXIST: File exists`.
pub fn make_fifo(path: &Path) -> anyhow::Result<()> {
    // TODO(1): mkfifo with mode 0600, errors with context.
    todo!("TODO(1): make_fifo")
}
// ANCHOR_END: make_fifo

// ANCHOR: open_fifo
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
    // TODO(2): open with the right flags, then fstat the descriptor.
    todo!("TODO(2): open_fifo")
}
// ANCHOR_END: open_fifo

// ANCHOR: tee_to_fifo
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
    // TODO(3): open the FIFO, then copy each chunk to both outputs.
    todo!("TODO(3): tee_to_fifo")
}
// ANCHOR_END: tee_to_fifo

// ANCHOR: request_numbers
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
    // TODO(4): open the server's FIFO, make yours, request, read the reply.
    todo!("TODO(4): request_numbers")
}
// ANCHOR_END: request_numbers

// ANCHOR: serve
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
    // TODO(5): signals blocked, mkfifo, path published, the dummy writer,
    // then answer each request.
    todo!("TODO(5): serve")
}
// ANCHOR_END: serve
