//! The `posix-mq` command line (given: you do not need to change this file).
//!
//! Small subcommands of one or two calls each (`create`, `attr`, `unlink`,
//! `send`, `receive`), a watcher of several queues at once (`watch`), a
//! listener for notifications (`notify`), the system's limits (`limits`),
//! and chapter 05's ticket `server` and `client` rebuilt on POSIX queues.
//! They call the functions you write in `lib.rs` and print what those
//! return. Errors are reported on one line, `posix-mq: …`, with exit status
//! 1, in the words of the chapter; usage mistakes exit with status 2.
//!
//! A queue is named by its POSIX name: a `/` and a word, such as `/jobs`.
//! The name is passed on exactly as given, so that `mq_open` itself says
//! what is wrong with a bad one.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use libc::c_long;
use nix::errno::Errno;
use nix::mqueue::MQ_OFlag;
use nix::sys::stat::fstat;

use super::{
    Capacity, Message, Notification, Queue, attributes, create, deadline_after, notify, open,
    protocol, receive, request, send, serve, set_nonblocking, unlink, watch,
};

/// The longest part of a name after its `/`, in bytes (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// Lab 09: POSIX message queues. mq_open, mq_send, mq_receive, priorities,
/// deadlines, mq_notify, poll, and chapter 05's ticket service on POSIX
/// queues.
#[derive(Parser, Debug)]
#[command(name = "posix-mq", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a queue with mode 0600 and print its attributes (TODO 1).
    Create {
        /// The queue's name: a `/` and up to 255 bytes without another `/`.
        name: String,
        /// Fail with EEXIST if the name is taken (O_EXCL).
        #[arg(long)]
        exclusive: bool,
        /// mq_maxmsg: how many messages the queue holds (default: the
        /// system's, msg_default).
        #[arg(
            long,
            value_name = "N",
            requires = "message_size",
            allow_negative_numbers = true
        )]
        max_messages: Option<c_long>,
        /// mq_msgsize: the longest message, in bytes (default: the
        /// system's, msgsize_default).
        #[arg(
            long,
            value_name = "BYTES",
            requires = "max_messages",
            allow_negative_numbers = true
        )]
        message_size: Option<c_long>,
    },
    /// Print a queue's attributes (mq_getattr) and what fstat says of its
    /// descriptor (TODO 1).
    Attr {
        /// The queue's name.
        name: String,
    },
    /// Remove a queue's name, like `rm /dev/mqueue/NAME`; the queue lives on
    /// while descriptors are open on it (TODO 1).
    Unlink {
        /// The queue's name.
        name: String,
    },
    /// Send messages, each given as PRIORITY:TEXT, e.g. `5:hello` (TODO 2).
    Send {
        /// The queue's name.
        name: String,
        /// Fail with EAGAIN instead of waiting for room (O_NONBLOCK, set
        /// with mq_setattr).
        #[arg(long, conflicts_with = "timeout_ms")]
        nonblock: bool,
        /// Wait for room until this many milliseconds from now, no longer
        /// (mq_timedsend).
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=60_000))]
        timeout_ms: Option<u64>,
        /// Repeat each TEXT to make it this many bytes long.
        #[arg(long, value_name = "BYTES")]
        size: Option<usize>,
        /// The messages, in order.
        #[arg(required = true, value_name = "PRIORITY:TEXT", value_parser = parse_message)]
        messages: Vec<(u32, String)>,
    },
    /// Receive messages and print each one's priority, size and text
    /// (TODO 2).
    Receive {
        /// The queue's name.
        name: String,
        /// How many messages to receive.
        #[arg(long, default_value_t = 1, conflicts_with = "all")]
        count: usize,
        /// Receive until the queue is empty (O_NONBLOCK, until EAGAIN).
        #[arg(long)]
        all: bool,
        /// Fail with EAGAIN instead of waiting for a message (O_NONBLOCK,
        /// set with mq_setattr).
        #[arg(long, conflicts_with = "timeout_ms")]
        nonblock: bool,
        /// Wait for a message until this many milliseconds from now, no
        /// longer (mq_timedreceive).
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=60_000))]
        timeout_ms: Option<u64>,
        /// The size of the receive buffer (default: mq_msgsize, the
        /// smallest that works).
        #[arg(long, value_name = "BYTES")]
        buffer: Option<usize>,
    },
    /// Wait on several queues at once with poll, and print each message
    /// with the name of its queue (TODO 3).
    Watch {
        /// The queues' names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        /// Stop when no message has come for this many milliseconds.
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=60_000))]
        silence_ms: Option<u64>,
    },
    /// Register for notification (mq_notify) and print the messages it
    /// announces (TODO 4).
    Notify {
        /// The queue's name.
        name: String,
        /// How to be told: by a signal (SIGEV_SIGNAL, SIGUSR1) or in a new
        /// thread (SIGEV_THREAD).
        #[arg(long, value_enum, default_value_t = Notification::Signal)]
        by: Notification,
        /// Stop after this many messages.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
        count: u64,
    },
    /// Print the system's limits for POSIX message queues (no TODO).
    Limits,
    /// Run chapter 05's ticket server on the queue NAME until SIGINT or
    /// SIGTERM (TODO 6).
    Server {
        /// The server's well-known queue, e.g. /tickets.
        name: String,
        /// How long each child works before it answers, in milliseconds.
        #[arg(long, default_value_t = 0, value_name = "MS",
              value_parser = clap::value_parser!(u64).range(0..=10_000))]
        work_ms: u64,
    },
    /// Ask the ticket server for a ticket (TODO 5).
    Client {
        /// The server's queue, e.g. /tickets.
        server: String,
        /// The reply queue to create (default: SERVER.client.PID).
        #[arg(long, value_name = "NAME")]
        reply: Option<String>,
        /// What to ask for: `ticket` is served, anything else refused.
        #[arg(long, default_value = protocol::REQ_TICKET)]
        request: String,
        /// How long the whole exchange may take, in milliseconds.
        #[arg(long, default_value_t = 5000, value_name = "MS",
              value_parser = clap::value_parser!(u64).range(1..=60_000))]
        timeout_ms: u64,
    },
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("posix-mq: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints `line` and a line break on standard error in one `write(2)`.
/// `eprintln!` writes a line in pieces, so the error lines of processes
/// that share a pipe for their standard error could mix; a pipe keeps each
/// write of at most `PIPE_BUF` bytes whole (chapter 02).
fn print_error(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

fn execute(command: Command) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match command {
        // ANCHOR: cli_create
        Command::Create {
            name,
            exclusive,
            max_messages,
            message_size,
        } => {
            let capacity = match (max_messages, message_size) {
                (Some(max_messages), Some(message_size)) => Some(Capacity {
                    max_messages,
                    message_size,
                }),
                _ => None,
            };
            let queue = create(&name, MQ_OFlag::O_RDONLY, exclusive, capacity)
                .map_err(|errno| explain_name("mq_open", errno, &name))?;
            write!(out, "created {name}: ")?;
            print_attributes(&mut out, &queue, ", ")?;
        }
        // ANCHOR_END: cli_create
        Command::Attr { name } => {
            let queue = open(&name, MQ_OFlag::O_RDONLY)
                .map_err(|errno| explain_name("mq_open", errno, &name))?;
            print_attributes(&mut out, &queue, "\n")?;
        }
        Command::Unlink { name } => {
            unlink(&name).map_err(|errno| explain_name("mq_unlink", errno, &name))?;
            writeln!(out, "unlinked {name}")?;
        }
        // ANCHOR: cli_send
        Command::Send {
            name,
            nonblock,
            timeout_ms,
            size,
            messages,
        } => {
            let queue = open(&name, MQ_OFlag::O_WRONLY)
                .map_err(|errno| explain_name("mq_open", errno, &name))?;
            if nonblock {
                set_nonblocking(&queue, true).map_err(|errno| explain("mq_setattr", errno))?;
            }
            // One deadline for all the messages: --timeout-ms bounds the command.
            let deadline = timeout_ms
                .map(|ms| deadline_after(Duration::from_millis(ms)))
                .transpose()
                .map_err(|errno| explain("clock_gettime", errno))?;
            let call = if deadline.is_some() {
                "mq_timedsend"
            } else {
                "mq_send"
            };
            for (priority, text) in messages {
                let text: Vec<u8> = match size {
                    Some(size) => text.bytes().cycle().take(size).collect(),
                    None => text.into_bytes(),
                };
                send(&queue, &text, priority, deadline.as_ref())
                    .map_err(|errno| explain_transfer(call, errno, &queue))?;
                writeln!(out, "sent priority {priority}, {} bytes", text.len())?;
                out.flush()?;
            }
        }
        // ANCHOR_END: cli_send
        // ANCHOR: cli_receive
        Command::Receive {
            name,
            count,
            all,
            nonblock,
            timeout_ms,
            buffer,
        } => {
            let queue = open(&name, MQ_OFlag::O_RDONLY)
                .map_err(|errno| explain_name("mq_open", errno, &name))?;
            if nonblock || all {
                set_nonblocking(&queue, true).map_err(|errno| explain("mq_setattr", errno))?;
            }
            let deadline = timeout_ms
                .map(|ms| deadline_after(Duration::from_millis(ms)))
                .transpose()
                .map_err(|errno| explain("clock_gettime", errno))?;
            let call = if deadline.is_some() {
                "mq_timedreceive"
            } else {
                "mq_receive"
            };
            let mut received = 0;
            while all || received < count {
                let message = match receive(&queue, buffer, deadline.as_ref()) {
                    Err(Errno::EAGAIN) if all => break,
                    other => other.map_err(|errno| explain_transfer(call, errno, &queue))?,
                };
                writeln!(out, "{message}")?;
                out.flush()?;
                received += 1;
            }
        }
        // ANCHOR_END: cli_receive
        // ANCHOR: cli_watch
        Command::Watch {
            names,
            count,
            silence_ms,
        } => {
            let mut queues = Vec::new();
            for name in names {
                let queue = open(&name, MQ_OFlag::O_RDONLY)
                    .map_err(|errno| explain_name("mq_open", errno, &name))?;
                queues.push((name, queue));
            }
            watch(
                &queues,
                count,
                silence_ms.map(Duration::from_millis),
                &mut out,
            )
            .context("watch")?;
        }
        // ANCHOR_END: cli_watch
        // ANCHOR: cli_notify
        Command::Notify { name, by, count } => {
            let queue = open(&name, MQ_OFlag::O_RDONLY)
                .map_err(|errno| explain_name("mq_open", errno, &name))?;
            notify(&queue, by, count as usize, &mut out).context("notify")?;
        }
        // ANCHOR_END: cli_notify
        Command::Limits => print_limits(&mut out)?,
        // ANCHOR: cli_server
        Command::Server { name, work_ms } => {
            serve(&name, Duration::from_millis(work_ms), &mut out).context("server")?;
        }
        // ANCHOR_END: cli_server
        // ANCHOR: cli_client
        Command::Client {
            server,
            reply,
            request: word,
            timeout_ms,
        } => {
            let reply =
                reply.unwrap_or_else(|| protocol::default_reply_name(&server, std::process::id()));
            let timeout = Duration::from_millis(timeout_ms);
            let answer = request(&server, &reply, &word, timeout, |reply| {
                // A failed print must not stop the client before it cleans up.
                let _ = writeln!(io::stdout(), "client: reply queue {reply}");
            })
            .context("client")?;
            writeln!(out, "{answer}")?;
        } // ANCHOR_END: cli_client
    }
    Ok(())
}

// ANCHOR: print_attributes
/// Prints `mq_getattr`'s four fields and the descriptor's mode and owner,
/// which `fstat` gives: on Linux the descriptor is a file of the `mqueue`
/// file system.
fn print_attributes(out: &mut impl Write, queue: &Queue, separator: &str) -> anyhow::Result<()> {
    let attr = attributes(queue).map_err(|errno| explain("mq_getattr", errno))?;
    let stat = fstat(queue.as_fd()).map_err(|errno| explain("fstat", errno))?;
    let flags = if attr.nonblocking { "O_NONBLOCK" } else { "0" };
    let fields = [
        format!("mq_flags {flags}"),
        format!("mq_maxmsg {}", attr.capacity.max_messages),
        format!("mq_msgsize {}", attr.capacity.message_size),
        format!("mq_curmsgs {}", attr.messages),
        format!("mode {:04o}", stat.st_mode & 0o7777),
        format!("uid {}", stat.st_uid),
    ];
    writeln!(out, "{}", fields.join(separator))?;
    Ok(())
}
// ANCHOR_END: print_attributes

// ANCHOR: explain
/// `call NAME: ERRNO: what it means here`, for the errors of calls that
/// take a queue's name.
fn explain_name(call: &str, errno: Errno, name: &str) -> anyhow::Error {
    let after_slash = name.strip_prefix('/');
    let meaning = match (call, errno) {
        (_, Errno::EINVAL) if after_slash.is_none() => {
            "a queue's name must start with / (glibc checks this)".to_string()
        }
        (_, Errno::EACCES) if after_slash.is_some_and(|rest| rest.contains('/')) => {
            "a queue's name has one /, at the start: the kernel refuses any other".to_string()
        }
        (_, Errno::ENAMETOOLONG) => {
            format!("a queue's name has at most {NAME_MAX} bytes after its /")
        }
        (_, Errno::ENOENT) => "no queue has this name".to_string(),
        (_, Errno::EACCES) => "permission denied by the queue's mode".to_string(),
        (_, Errno::EEXIST) => {
            "a queue with this name exists already (O_CREAT | O_EXCL)".to_string()
        }
        (_, Errno::EINVAL) => format!(
            "mq_maxmsg and mq_msgsize must be at least 1, and without CAP_SYS_RESOURCE at most \
             msg_max ({}) and msgsize_max ({})",
            limit_or_unknown("msg_max"),
            limit_or_unknown("msgsize_max")
        ),
        (_, Errno::EMFILE) => format!(
            "the queue would take this user's queues over RLIMIT_MSGQUEUE ({} bytes, ulimit \
             -q), or the process has no descriptor left",
            rlimit_msgqueue().map_or("?".to_string(), |bytes| bytes.to_string())
        ),
        (_, Errno::ENOSPC) => format!(
            "the system's limit on queues, queues_max ({}), is reached",
            limit_or_unknown("queues_max")
        ),
        (_, errno) => errno.desc().to_string(),
    };
    anyhow!("{call} {name}: {errno:?}: {meaning}")
}

/// `call: ERRNO: what it means here`, for sending and receiving.
fn explain_transfer(call: &str, errno: Errno, queue: &Queue) -> anyhow::Error {
    let msgsize = || {
        attributes(queue).map_or("?".to_string(), |attr| {
            attr.capacity.message_size.to_string()
        })
    };
    let sending = call.contains("send");
    let meaning = match errno {
        Errno::EAGAIN if sending => {
            "the queue is full (mq_maxmsg messages) and O_NONBLOCK is set".to_string()
        }
        Errno::EAGAIN => "the queue is empty and O_NONBLOCK is set".to_string(),
        Errno::ETIMEDOUT if sending => "the queue was still full at the deadline".to_string(),
        Errno::ETIMEDOUT => "the queue was still empty at the deadline".to_string(),
        Errno::EMSGSIZE if sending => {
            format!(
                "the message is longer than mq_msgsize ({} bytes)",
                msgsize()
            )
        }
        Errno::EMSGSIZE => format!(
            "the buffer is smaller than mq_msgsize ({} bytes), whatever the message's length",
            msgsize()
        ),
        Errno::EINVAL if sending => format!(
            "priorities go from 0 to {} (sysconf(_SC_MQ_PRIO_MAX) - 1), and a deadline's \
             tv_nsec from 0 to 999999999",
            prio_max() - 1
        ),
        Errno::EINVAL => "a deadline's tv_nsec goes from 0 to 999999999".to_string(),
        Errno::EBADF => "the descriptor was not opened for this".to_string(),
        Errno::EINTR => "interrupted by a signal handler".to_string(),
        errno => errno.desc().to_string(),
    };
    anyhow!("{call}: {errno:?}: {meaning}")
}
// ANCHOR_END: explain

/// `call: ERRNO: its description`.
fn explain(call: &str, errno: Errno) -> anyhow::Error {
    anyhow!("{call}: {errno:?}: {}", errno.desc())
}

// ANCHOR: print_limits
/// Prints the limits of `/proc/sys/fs/mqueue`, the resource limit that
/// `ulimit -q` shows, and the highest priority.
fn print_limits(out: &mut impl Write) -> anyhow::Result<()> {
    for (name, meaning) in [
        ("msg_max", "the largest mq_maxmsg, without CAP_SYS_RESOURCE"),
        (
            "msgsize_max",
            "the largest mq_msgsize, without CAP_SYS_RESOURCE",
        ),
        ("msg_default", "mq_maxmsg of a queue created with attr NULL"),
        (
            "msgsize_default",
            "mq_msgsize of a queue created with attr NULL",
        ),
        (
            "queues_max",
            "the most queues on the system (ENOSPC beyond)",
        ),
    ] {
        let value = limit_or_unknown(name);
        writeln!(
            out,
            "{name:<16}{value:>8}  {meaning} (/proc/sys/fs/mqueue/{name})"
        )?;
    }
    let bytes = rlimit_msgqueue().context("getrlimit(RLIMIT_MSGQUEUE)")?;
    writeln!(
        out,
        "{:<16}{bytes:>8}  bytes of queues per user, overhead included (ulimit -q)",
        "RLIMIT_MSGQUEUE"
    )?;
    writeln!(
        out,
        "{:<16}{:>8}  priorities go from 0 to this minus 1 (sysconf(_SC_MQ_PRIO_MAX))",
        "MQ_PRIO_MAX",
        prio_max()
    )?;
    Ok(())
}
// ANCHOR_END: print_limits

/// A number from `/proc/sys/fs/mqueue/NAME`, or `?` if it cannot be read.
fn limit_or_unknown(name: &str) -> String {
    fs::read_to_string(format!("/proc/sys/fs/mqueue/{name}"))
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map_or("?".to_string(), |value| value.to_string())
}

/// The soft limit `RLIMIT_MSGQUEUE`, in bytes.
fn rlimit_msgqueue() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}

/// `sysconf(_SC_MQ_PRIO_MAX)`: one more than the highest priority.
fn prio_max() -> c_long {
    // SAFETY: sysconf takes an integer and returns one.
    unsafe { libc::sysconf(libc::_SC_MQ_PRIO_MAX) }
}

/// Parses `PRIORITY:TEXT`.
fn parse_message(word: &str) -> Result<(u32, String), String> {
    let (priority, text) = word
        .split_once(':')
        .ok_or_else(|| format!("{word:?} is not PRIORITY:TEXT"))?;
    let priority = priority
        .parse()
        .map_err(|_| format!("{priority:?} is not a priority (a number from 0)"))?;
    Ok((priority, text.to_string()))
}

// ANCHOR: display
/// `priority P, N bytes: "TEXT"`, the text quoted with Rust's escapes (a
/// byte that is not UTF-8 shows as U+FFFD).
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "priority {}, {} bytes: {:?}",
            self.priority,
            self.text.len(),
            String::from_utf8_lossy(&self.text)
        )
    }
}
// ANCHOR_END: display
