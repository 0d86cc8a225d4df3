//! The `msgq` command line (given: you do not need to change this file).
//!
//! Small subcommands in the style of `ipcmk`, `ipcs` and `ipcrm`, one System
//! V call each (`key`, `create`, `send`, `receive`, `stat`, `set-max-bytes`,
//! `remove`), and the notes' `server` and `client`. They call the functions
//! you write in `lib.rs` and print what those return. Errors are reported on
//! one line, `msgq: …`, with exit status 1, in the words of the chapter;
//! usage mistakes exit with status 2.
//!
//! A queue is named either by a key file (`--key-file FILE`, with `--proj`,
//! turned into a key by `ftok` and opened with `msgget`), or by its
//! identifier (`--id MSQID`, as `create`, `ipcs` and `ipcmk` print it).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use libc::{c_int, c_long};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use super::{
    Key, MAX_TEXT, Msqid, ftok, msgctl_rmid, msgctl_stat, msgget, msgrcv, msgsnd, request, serve,
    set_max_bytes,
};

/// Lab 05: System V message queues. Keys, msgget, msgsnd, msgrcv, msgctl,
/// and the notes' client and server.
#[derive(Parser, Debug)]
#[command(name = "msgq", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the key ftok makes of FILE and a project ID, and what it is made
    /// of (TODO 1).
    Key {
        /// An existing file: ftok uses its inode and device numbers.
        file: PathBuf,
        /// The project ID (1 to 255): the key's top 8 bits.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
        proj: u8,
    },
    /// Create a queue, like `ipcmk -Q`, and print its identifier (TODO 1).
    Create {
        #[command(flatten)]
        key: NewKey,
        /// The project ID (1 to 255) for --key-file.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
        proj: u8,
        /// Fail with EEXIST if the key already has a queue (IPC_EXCL).
        #[arg(long)]
        exclusive: bool,
        /// The permission bits, in octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: c_int,
    },
    /// Send messages, each given as TYPE:TEXT, e.g. `2:hello` (TODO 2).
    Send {
        #[command(flatten)]
        queue: Queue,
        /// Fail with EAGAIN instead of waiting while the queue is full.
        #[arg(long)]
        nowait: bool,
        /// Repeat each TEXT until it is BYTES long (cut to BYTES).
        #[arg(long, value_name = "BYTES")]
        size: Option<usize>,
        /// The messages: a type of at least 1, a colon, the text.
        #[arg(required = true, value_name = "TYPE:TEXT", value_parser = parse_message)]
        messages: Vec<(c_long, String)>,
    },
    /// Receive messages and print each one's type, size and text (TODO 2).
    Receive {
        #[command(flatten)]
        queue: Queue,
        /// Which message: 0 the first, T > 0 the first of type T, T < 0 the
        /// first of the lowest type up to |T|.
        #[arg(long = "type", default_value_t = 0, allow_negative_numbers = true)]
        msgtyp: c_long,
        /// Fail with ENOMSG instead of waiting for a message (IPC_NOWAIT).
        #[arg(long)]
        nowait: bool,
        /// Cut a longer text to --max-bytes instead of failing (MSG_NOERROR).
        #[arg(long)]
        noerror: bool,
        /// The most text to accept (msgsz).
        #[arg(long, default_value_t = 8192, value_name = "BYTES",
              value_parser = clap::value_parser!(u32).range(0..=MAX_TEXT as i64))]
        max_bytes: u32,
        /// How many messages to receive.
        #[arg(long, default_value_t = 1, conflicts_with = "all")]
        count: u32,
        /// Receive every message that --type selects, without waiting, until
        /// none is left.
        #[arg(long)]
        all: bool,
    },
    /// Print the queue's msqid_ds, like `ipcs -q -i MSQID` (TODO 3).
    Stat {
        #[command(flatten)]
        queue: Queue,
    },
    /// Change msg_qbytes, the most bytes the queue may hold (TODO 3).
    SetMaxBytes {
        #[command(flatten)]
        queue: Queue,
        /// The new msg_qbytes.
        bytes: libc::msglen_t,
    },
    /// Remove the queue and every message in it, like `ipcrm -q` (TODO 1).
    Remove {
        #[command(flatten)]
        queue: Queue,
    },
    /// Print the system's message queue limits (no TODO).
    Limits,
    /// Run the notes' ticket server on the key of FILE until SIGINT or
    /// SIGTERM (TODO 5).
    Server {
        /// The server's well-known key file.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// The project ID (1 to 255).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
        proj: u8,
        /// How long each request takes to serve, in milliseconds.
        #[arg(long, default_value_t = 0, value_name = "MS",
              value_parser = clap::value_parser!(u64).range(0..=60_000))]
        work_ms: u64,
    },
    /// Ask the server for a ticket, as the notes' client does (TODO 4).
    Client {
        /// The server's well-known key file.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// The project ID (1 to 255).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
        proj: u8,
        /// The request type: 1 asks for a ticket.
        #[arg(long = "type", default_value_t = 1, allow_negative_numbers = true)]
        request_type: c_long,
        /// How long to wait for the reply, in milliseconds (1 to 60000).
        #[arg(long, default_value_t = 5000, value_name = "MS",
              value_parser = clap::value_parser!(u64).range(1..=60_000))]
        timeout_ms: u64,
    },
}

/// How a command names an existing queue.
#[derive(Args, Debug)]
struct Queue {
    #[command(flatten)]
    which: Which,
    /// The project ID (1 to 255) for --key-file.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    proj: u8,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Which {
    /// The key file: ftok(FILE, --proj) gives the key, msgget the queue.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The queue's identifier, as create, ipcs or ipcmk print it.
    #[arg(long, value_name = "MSQID")]
    id: Option<c_int>,
}

/// The key a new queue gets.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct NewKey {
    /// The key file: ftok(FILE, --proj) gives the key.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Use IPC_PRIVATE: a new queue that no key leads to.
    #[arg(long)]
    private: bool,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("msgq: {error:#}"));
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
        Command::Key { file, proj } => print_key(&mut out, &file, proj)?,
        // ANCHOR: cli_create
        Command::Create {
            key,
            proj,
            exclusive,
            mode,
        } => {
            let key = match &key.key_file {
                Some(file) => key_of(file, proj)?,
                None => Key::PRIVATE,
            };
            let exclusive = if exclusive { libc::IPC_EXCL } else { 0 };
            let id = msgget(key, libc::IPC_CREAT | exclusive | mode)
                .map_err(|errno| explain("msgget", errno))
                .with_context(|| format!("create a queue with key {}", show_key(key)))?;
            writeln!(out, "message queue {} (key {})", id.0, show_key(key))?;
        }
        // ANCHOR_END: cli_create
        // ANCHOR: cli_send
        Command::Send {
            queue,
            nowait,
            size,
            messages,
        } => {
            let id = open(&queue)?;
            let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
            for (mtype, text) in messages {
                let text = match size {
                    Some(size) => text.bytes().cycle().take(size).collect(),
                    None => text.into_bytes(),
                };
                msgsnd(id, mtype, &text, flags)
                    .map_err(|errno| explain_send(errno, mtype, text.len()))?;
                writeln!(out, "sent type {mtype}, {} bytes", text.len())?;
            }
        }
        // ANCHOR_END: cli_send
        // ANCHOR: cli_receive
        Command::Receive {
            queue,
            msgtyp,
            nowait,
            noerror,
            max_bytes,
            count,
            all,
        } => {
            let id = open(&queue)?;
            let mut flags = if nowait || all { libc::IPC_NOWAIT } else { 0 };
            if noerror {
                flags |= libc::MSG_NOERROR;
            }
            let mut received = 0;
            while all || received < count {
                let message = match msgrcv(id, max_bytes as usize, msgtyp, flags) {
                    Err(Errno::ENOMSG) if all => break,
                    other => other.map_err(|errno| explain("msgrcv", errno))?,
                };
                let text = String::from_utf8_lossy(&message.text);
                writeln!(
                    out,
                    "type {}, {} bytes: {text:?}",
                    message.mtype,
                    message.text.len()
                )?;
                out.flush()?;
                received += 1;
            }
        }
        // ANCHOR_END: cli_receive
        Command::Stat { queue } => {
            let id = open(&queue)?;
            let stat = msgctl_stat(id).map_err(|errno| explain("msgctl(IPC_STAT)", errno))?;
            print_stat(&mut out, id, &stat)?;
        }
        Command::SetMaxBytes { queue, bytes } => {
            let id = open(&queue)?;
            let old = set_max_bytes(id, bytes).map_err(|errno| explain_set(errno, bytes))?;
            writeln!(out, "msg_qbytes {old} -> {bytes}")?;
        }
        Command::Remove { queue } => {
            let id = open(&queue)?;
            msgctl_rmid(id).map_err(|errno| explain("msgctl(IPC_RMID)", errno))?;
            writeln!(out, "removed queue {}", id.0)?;
        }
        Command::Limits => print_limits(&mut out)?,
        // ANCHOR: cli_server
        Command::Server {
            key_file,
            proj,
            work_ms,
        } => {
            let key = key_of(&key_file, proj)?;
            serve(key, Duration::from_millis(work_ms), &mut out).context("server")?;
        }
        // ANCHOR_END: cli_server
        // ANCHOR: cli_client
        Command::Client {
            key_file,
            proj,
            request_type,
            timeout_ms,
        } => {
            let key = key_of(&key_file, proj)?;
            arm_reply_timer(Duration::from_millis(timeout_ms))?;
            let reply = request(key, request_type, |queue| {
                // A failed print must not stop the client before it cleans up.
                let _ = writeln!(io::stdout(), "client: private queue {}", queue.0);
            });
            set_timer(Duration::ZERO, Duration::ZERO)?;
            writeln!(out, "{}", reply.context("client")?)?;
        } // ANCHOR_END: cli_client
    }
    Ok(())
}

/// `ftok(file, proj)`, with an error that says which file.
fn key_of(file: &Path, proj: u8) -> anyhow::Result<Key> {
    ftok(file, proj)
        .map_err(|errno| explain("ftok", errno))
        .with_context(|| format!("key file {}", file.display()))
}

/// The queue a command names: by identifier, or by key with `msgget(key, 0)`.
fn open(queue: &Queue) -> anyhow::Result<Msqid> {
    match (&queue.which.key_file, queue.which.id) {
        (_, Some(id)) => Ok(Msqid(id)),
        (Some(file), None) => {
            let key = key_of(file, queue.proj)?;
            msgget(key, 0).map_err(|errno| match errno {
                Errno::ENOENT => anyhow!("no queue has key {} (msgget: ENOENT)", show_key(key)),
                errno => explain("msgget", errno),
            })
        }
        (None, None) => bail!("name a queue with --key-file or --id"),
    }
}

/// A key as `ipcs` shows it: `0x` and eight hex digits, or `IPC_PRIVATE`.
fn show_key(key: Key) -> String {
    if key == Key::PRIVATE {
        "IPC_PRIVATE".to_string()
    } else {
        format!("{:#010x}", key.0)
    }
}

// ANCHOR: explain
/// `call: ERRNO: what it means here`, for the errors this chapter teaches.
fn explain(call: &str, errno: Errno) -> anyhow::Error {
    let meaning = match (call, errno) {
        ("ftok", Errno::ENOENT) => "no such file (ftok needs an existing file: it uses its inode)",
        ("msgget", Errno::EEXIST) => "a queue with this key exists already (IPC_CREAT | IPC_EXCL)",
        ("msgget", Errno::ENOSPC) => "the system's limit on queues (msgmni) is reached",
        ("msgrcv", Errno::ENOMSG) => "no message of the requested type, and IPC_NOWAIT was given",
        ("msgrcv", Errno::E2BIG) => "the message is longer than --max-bytes (--noerror cuts it)",
        (_, Errno::EACCES) => "permission denied by the queue's mode",
        (_, Errno::EIDRM) => "the queue was removed while we waited",
        (_, Errno::EINTR) => "interrupted by a signal",
        (_, Errno::EINVAL) if call != "ftok" => "no queue has this identifier",
        (_, Errno::EPERM) => "only the queue's owner or creator may do this",
        (_, errno) => errno.desc(),
    };
    anyhow!("{call}: {errno:?}: {meaning}")
}
// ANCHOR_END: explain

/// Why `msgsnd` failed: `EAGAIN` and `EINVAL` have several meanings.
fn explain_send(errno: Errno, mtype: c_long, len: usize) -> anyhow::Error {
    let msgmax = read_limit::<usize>("msgmax").unwrap_or(usize::MAX);
    match errno {
        Errno::EAGAIN => anyhow!(
            "msgsnd: EAGAIN: the queue is full (msg_qbytes reached) and IPC_NOWAIT was given"
        ),
        Errno::EINVAL if len > msgmax || len > MAX_TEXT => anyhow!(
            "msgsnd: EINVAL: a message of {len} bytes is larger than msgmax ({msgmax} bytes)"
        ),
        Errno::EINVAL if mtype < 1 => {
            anyhow!("msgsnd: EINVAL: message type {mtype}: a type must be at least 1")
        }
        errno => explain("msgsnd", errno),
    }
}

/// Why `IPC_SET` of `msg_qbytes` failed.
fn explain_set(errno: Errno, bytes: libc::msglen_t) -> anyhow::Error {
    match (errno, read_limit::<libc::msglen_t>("msgmnb")) {
        (Errno::EPERM, Some(msgmnb)) if bytes > msgmnb => anyhow!(
            "msgctl(IPC_SET): EPERM: raising msg_qbytes above msgmnb ({msgmnb}) needs \
             CAP_SYS_RESOURCE"
        ),
        (errno, _) => explain("msgctl(IPC_SET)", errno),
    }
}

// ANCHOR: print_key
/// Prints the key and the three numbers glibc's `ftok` packs into it.
fn print_key(out: &mut impl Write, file: &Path, proj: u8) -> anyhow::Result<()> {
    let key = key_of(file, proj)?;
    let meta = fs::metadata(file).with_context(|| format!("stat {}", file.display()))?;
    writeln!(out, "key {}", show_key(key))?;
    writeln!(
        out,
        "  = proj_id {proj:#04x} << 24 | (st_dev {:#x} & 0xff) << 16 | (st_ino {} & 0xffff)",
        meta.dev(),
        meta.ino()
    )?;
    Ok(())
}
// ANCHOR_END: print_key

// ANCHOR: print_stat
/// Prints every field of `struct msqid_ds`, under its C name.
fn print_stat(out: &mut impl Write, id: Msqid, stat: &libc::msqid_ds) -> io::Result<()> {
    let perm = &stat.msg_perm;
    let time = |t: libc::time_t| {
        if t == 0 {
            "0 (never)".to_string()
        } else {
            t.to_string()
        }
    };
    writeln!(out, "msqid           {}", id.0)?;
    writeln!(out, "msg_perm.__key  {}", show_key(Key(perm.__key)))?;
    writeln!(out, "msg_perm.uid    {}", perm.uid)?;
    writeln!(out, "msg_perm.gid    {}", perm.gid)?;
    writeln!(out, "msg_perm.cuid   {}", perm.cuid)?;
    writeln!(out, "msg_perm.cgid   {}", perm.cgid)?;
    writeln!(out, "msg_perm.mode   {:04o}", perm.mode & 0o777)?;
    writeln!(out, "msg_qnum        {}", stat.msg_qnum)?;
    writeln!(out, "msg_cbytes      {}", stat.__msg_cbytes)?;
    writeln!(out, "msg_qbytes      {}", stat.msg_qbytes)?;
    writeln!(out, "msg_lspid       {}", stat.msg_lspid)?;
    writeln!(out, "msg_lrpid       {}", stat.msg_lrpid)?;
    writeln!(out, "msg_stime       {}", time(stat.msg_stime))?;
    writeln!(out, "msg_rtime       {}", time(stat.msg_rtime))?;
    writeln!(out, "msg_ctime       {}", time(stat.msg_ctime))?;
    Ok(())
}
// ANCHOR_END: print_stat

// ANCHOR: print_limits
/// Prints the System V message queue limits, and the resource limit that
/// `ulimit -q` shows, which is about POSIX message queues only.
fn print_limits(out: &mut impl Write) -> anyhow::Result<()> {
    for (name, meaning) in [
        ("msgmax", "the largest message text, in bytes"),
        ("msgmnb", "msg_qbytes of a new queue: the bytes it may hold"),
        ("msgmni", "the most message queues on the system"),
    ] {
        let value =
            read_limit::<u64>(name).with_context(|| format!("read /proc/sys/kernel/{name}"))?;
        writeln!(
            out,
            "{name:<8}{value:>10}  {meaning} (/proc/sys/kernel/{name})"
        )?;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_MSGQUEUE)");
    }
    writeln!(
        out,
        "{:<8}{:>10}  bytes of POSIX message queues per user: not System V (ulimit -q)",
        "mqueue", limit.rlim_cur
    )?;
    Ok(())
}
// ANCHOR_END: print_limits

/// A number from `/proc/sys/kernel/NAME`.
fn read_limit<T: std::str::FromStr>(name: &str) -> Option<T> {
    fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

// ANCHOR: timer
/// Does nothing: its only effect is that a blocked `msgrcv` fails with
/// `EINTR` when a `SIGALRM` comes.
extern "C" fn timer_expired(_: c_int) {}

/// How often `SIGALRM` comes once the time limit has passed.
const TICK: Duration = Duration::from_millis(20);

/// Makes `SIGALRM` come after `timeout`, then every [`TICK`]: the client's
/// only way to stop waiting, since a System V queue cannot be polled and
/// `msgrcv` takes no timeout. The handler is installed without
/// `SA_RESTART` (it would make no difference: `msgrcv` is never restarted).
///
/// Why it repeats: the timer is armed before the request is sent, and a
/// signal that comes after that but before `msgrcv` has started waiting
/// interrupts nothing. Its handler runs, and `msgrcv` then waits as if
/// nothing had happened. With a single alarm the client would wait for
/// ever; with a repeating one, the next tick interrupts `msgrcv`.
fn arm_reply_timer(timeout: Duration) -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(timer_expired),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing at all.
    unsafe { sigaction(Signal::SIGALRM, &action) }.context("sigaction(SIGALRM)")?;
    set_timer(timeout, TICK)
}

/// `setitimer(ITIMER_REAL)`: `SIGALRM` after `first`, then every `then`
/// (0: never again); both 0 disarm the timer.
fn set_timer(first: Duration, then: Duration) -> anyhow::Result<()> {
    let timeval = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: timeval(then),
        it_value: timeval(first),
    };
    // SAFETY: setitimer reads the itimerval we pass; the old value is not wanted.
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error()).context("setitimer");
    }
    Ok(())
}
// ANCHOR_END: timer

/// Parses `TYPE:TEXT`.
fn parse_message(word: &str) -> Result<(c_long, String), String> {
    let (mtype, text) = word
        .split_once(':')
        .ok_or_else(|| format!("{word:?} is not TYPE:TEXT"))?;
    let mtype = mtype
        .parse()
        .map_err(|_| format!("{mtype:?} is not a message type"))?;
    Ok((mtype, text.to_string()))
}

/// Parses permission bits in octal: `600`, `0644`.
fn parse_mode(word: &str) -> Result<c_int, String> {
    match c_int::from_str_radix(word, 8) {
        Ok(mode) if (0..=0o777).contains(&mode) => Ok(mode),
        _ => Err(format!("{word:?} is not a mode from 000 to 777 in octal")),
    }
}
