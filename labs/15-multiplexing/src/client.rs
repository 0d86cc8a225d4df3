//! `chat`: a client of the relay, for people and for tests (given: you do
//! not need to change this file; it uses your `Inbox` and `Outbox`).
//!
//! It sends each line of its standard input as one message, prints every
//! frame the relay sends, and waits for both in one `poll`: two kinds of
//! descriptor, a pipe or a terminal beside a socket. Standard input is
//! left **blocking**, and read once per `POLLIN`: `poll` said a read will
//! not wait, and making it non-blocking would change the terminal's open
//! file for the shell too, which shares it. The socket is its own, and
//! non-blocking.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd;

use super::wire::{self, FROM_RELAY, MAX_MESSAGE, MAX_RELAYED};
use super::{Inbox, Outbox};

/// The most bytes the client lets wait for the relay before it stops
/// reading its input: flow control, so that a relay that does not read
/// does not make the client hold all of its input in memory.
pub const HIGH_WATER: usize = 1024 * 1024;

/// How many bytes of standard input one `read` takes.
const STDIN_CHUNK: usize = 16 * 1024;

/// The client's outbox: room for [`HIGH_WATER`] bytes and what one read of
/// standard input may add (every byte a newline: 4 bytes of frame each),
/// and a long last line.
const OUTBOX_LIMIT: usize = HIGH_WATER + 4 * STDIN_CHUNK + wire::HEADER + MAX_MESSAGE;

// ANCHOR: chat
/// How a chat ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatEnd {
    /// Messages sent: the lines of standard input.
    pub sent: u64,
    /// Frames received, the welcome included.
    pub received: u64,
    /// Whether the relay closed the connection first.
    pub relay_closed: bool,
}

/// Connects to the relay at `path`, sends each line of standard input as
/// one message, prints each frame that comes (`client 3: hello`, `relay:
/// welcome, client 7`), and stops once standard input has ended, every
/// message is written, and `expect` frames have come (the welcome
/// counts); or when the relay closes the connection.
pub fn chat(path: &Path, expect: Option<u64>) -> anyhow::Result<ChatEnd> {
    let mut stream = connect(path)?;
    stream
        .set_nonblocking(true)
        .context("make the socket non-blocking")?;
    let mut inbox = Inbox::new(MAX_RELAYED);
    let mut outbox = Outbox::new(OUTBOX_LIMIT);
    let mut lines = Lines::default();
    let mut end = ChatEnd {
        sent: 0,
        received: 0,
        relay_closed: false,
    };
    while !(lines.ended && outbox.is_empty() && expect.is_none_or(|n| end.received >= n)) {
        let reading = !lines.ended && outbox.waiting() < HIGH_WATER;
        let (socket, input) = wait(&stream, !outbox.is_empty(), reading)?;
        if input {
            for line in lines.read_stdin()? {
                queue_line(&mut outbox, &line, end.sent + 1)?;
                end.sent += 1;
            }
        }
        if !outbox.is_empty() {
            outbox.flush(&mut stream).context("send to the relay")?;
        }
        if socket {
            let received = inbox.receive(&mut stream).context("from the relay")?;
            for frame in &received.frames {
                print_frame(frame)?;
            }
            end.received += received.frames.len() as u64;
            if received.closed {
                end.relay_closed = true;
                break;
            }
        }
    }
    Ok(end)
}
// ANCHOR_END: chat

// ANCHOR: chat_poll
/// One `poll` on the socket (`POLLIN`, and `POLLOUT` while something
/// waits to be written) and, if `reading`, standard input. Returns whether
/// each has something to say. `POLLOUT` is asked for only while there is
/// something to write: a socket with room is writable nearly always, and
/// `poll` would return at once, for ever.
fn wait(stream: &UnixStream, writing: bool, reading: bool) -> anyhow::Result<(bool, bool)> {
    let mut socket_events = PollFlags::POLLIN;
    if writing {
        socket_events |= PollFlags::POLLOUT;
    }
    let stdin = io::stdin();
    let mut fds = vec![PollFd::new(stream.as_fd(), socket_events)];
    if reading {
        fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
    }
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("poll"),
        }
    }
    let ready = |fd: Option<&PollFd>| {
        fd.and_then(PollFd::revents)
            .is_some_and(|revents| !revents.is_empty())
    };
    Ok((ready(fds.first()), ready(fds.get(1))))
}
// ANCHOR_END: chat_poll

/// Connects to `path`, saying plainly when it is not a socket (Linux
/// refuses such a `connect` with `ECONNREFUSED`, as for a stale socket).
fn connect(path: &Path) -> anyhow::Result<UnixStream> {
    match UnixStream::connect(path) {
        Ok(stream) => Ok(stream),
        Err(error) if error.raw_os_error() == Some(libc::ECONNREFUSED) => {
            match fs::metadata(path) {
                Ok(meta) if !meta.file_type().is_socket() => {
                    bail!("connect {}: not a socket", path.display())
                }
                _ => Err(error).with_context(|| format!("connect {}", path.display())),
            }
        }
        Err(error) => Err(error).with_context(|| format!("connect {}", path.display())),
    }
}

/// Queues `line` as message number `number`.
fn queue_line(outbox: &mut Outbox, line: &[u8], number: u64) -> anyhow::Result<()> {
    if line.len() > MAX_MESSAGE {
        bail!(
            "line {number} is {} bytes long, over the limit of {MAX_MESSAGE}",
            line.len()
        );
    }
    outbox
        .push(&wire::frame(line))
        .map_err(|full| anyhow::anyhow!("line {number}: the outbox is full: {full}"))
}

/// Prints one frame from the relay on one line, flushed.
fn print_frame(frame: &[u8]) -> anyhow::Result<()> {
    let Some((from, message)) = wire::sender(frame) else {
        bail!(
            "the relay sent a frame of {} bytes, too short for a sender",
            frame.len()
        );
    };
    let text: String = String::from_utf8_lossy(message)
        .chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect();
    let mut out = io::stdout().lock();
    if from == FROM_RELAY {
        writeln!(out, "relay: {text}")?;
    } else {
        writeln!(out, "client {from}: {text}")?;
    }
    out.flush()?;
    Ok(())
}

/// Standard input, cut into lines.
#[derive(Debug, Default)]
struct Lines {
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// Whether standard input has ended.
    ended: bool,
}

impl Lines {
    /// One `read` of standard input (which `poll` said is ready), and the
    /// whole lines it completes, without their newline. At end of input,
    /// an unfinished last line counts as a line.
    fn read_stdin(&mut self) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut buffer = [0; STDIN_CHUNK];
        let n = loop {
            match unistd::read(io::stdin().as_fd(), &mut buffer) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno).context("read standard input"),
            }
        };
        if n == 0 {
            self.ended = true;
            let last = std::mem::take(&mut self.partial);
            return Ok(if last.is_empty() { vec![] } else { vec![last] });
        }
        self.partial.extend_from_slice(&buffer[..n]);
        let mut lines = Vec::new();
        while let Some(at) = self.partial.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.partial.drain(..=at).collect();
            line.pop();
            lines.push(line);
        }
        if self.partial.len() > MAX_MESSAGE {
            bail!("a line of standard input is over the limit of {MAX_MESSAGE} bytes");
        }
        Ok(lines)
    }
}
