//! # Lab 05: System V message queues (消息队列) — reference solution
//!
//! The same functions as `labs/05-msgq/src/lib.rs`, done. Read it after you
//! have written your own: compare where each `unsafe` block sits and what it
//! promises, how `msgsz` is computed, and which path removes which queue.

use std::ffi::CString;
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use libc::{c_int, c_long};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork};

#[path = "../../../labs/05-msgq/src/cli.rs"]
pub mod cli;
#[path = "../../../labs/05-msgq/src/protocol.rs"]
pub mod protocol;

/// The signal (`SIGINT` or `SIGTERM`) that asked the server to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

/// A System V IPC key (键, `key_t`): the name under which unrelated
/// processes find the same object. Made by [`ftok`] from an existing file,
/// agreed on as a number, or [`Key::PRIVATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub libc::key_t);

impl Key {
    /// `IPC_PRIVATE` (0), which is not a name at all: `msgget(IPC_PRIVATE,
    /// …)` always creates a new queue that no key leads to. Its identifier
    /// must reach the other side some other way (inherited across `fork`,
    /// or sent in a message).
    pub const PRIVATE: Key = Key(libc::IPC_PRIVATE);
}

/// A message queue identifier (标识符, `msqid`): what [`msgget`] returns and
/// every other call takes. Unlike a file descriptor it is valid in every
/// process of the system, until the queue is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msqid(pub c_int);

/// One message taken off a queue by [`msgrcv`]: its type and its text,
/// with the boundaries the sender gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The type the sender chose: at least 1.
    pub mtype: c_long,
    /// The text: exactly the bytes that were sent (fewer if `MSG_NOERROR`
    /// cut it).
    pub text: Vec<u8>,
}

/// The longest text this layer sends or receives in one message. The
/// kernel's own limit, `msgmax` (8192 bytes unless an administrator changed
/// it), is usually lower.
pub const MAX_TEXT: usize = 65536;

/// The buffer `msgsnd` reads and `msgrcv` fills, laid out as C's
/// `struct msgbuf { long mtype; char mtext[…]; }`: first the type, a
/// `long`, then the text. `#[repr(C)]` keeps that order and alignment.
///
/// The `msgsz` argument of both calls counts the **text only**: not
/// `size_of::<MsgBuf>()`, and not the `long` in front of it.
#[repr(C)]
pub struct MsgBuf {
    /// The message type: at least 1 when sending.
    pub mtype: c_long,
    /// The text, of which the first `msgsz` bytes count.
    pub mtext: [u8; MAX_TEXT],
}

/// Turns an existing file and a project ID into a key, as `ftok(3)` does.
///
/// `ftok` never reads the file: it calls `stat` and keeps the low 16 bits of
/// the file's **inode** number, the low 8 bits of its device number and the
/// low 8 bits of `proj_id`, packed by glibc as
/// `proj_id << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)`. Two names
/// of one file (a hard link, a symbolic link) give the same key; a file
/// deleted and created again usually gets a new inode, and so a new key.
///
/// Call `libc::ftok` with the path as a NUL-terminated C string
/// (`CString::new(path.as_os_str().as_bytes())`) and `proj_id` as an `int`.
///
/// Errors: `ftok` returns `(key_t) -1` and leaves `errno` from `stat`
/// (`ENOENT` for a missing file, `EACCES`, …): return `Errno::last()`. A path
/// containing a NUL byte is `EINVAL`.
pub fn ftok(path: &Path, proj_id: u8) -> Result<Key, Errno> {
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: ftok reads a NUL-terminated path that lives across the call.
    let key = unsafe { libc::ftok(path.as_ptr(), c_int::from(proj_id)) };
    Errno::result(key).map(Key)
}

/// Opens or creates the queue of `key`: `msgget(2)`, the `xxxget` of
/// message queues. Returns its identifier.
///
/// `flags` is C's `msgflg`, options and permission bits OR-ed together:
///
/// * `0`: open the existing queue, `ENOENT` if there is none. Permission
///   bits (`0o200`, say) ask for that access now: `EACCES` if the queue's
///   mode denies it.
/// * `IPC_CREAT | 0o600`: create the queue with mode 0600 if none exists,
///   else open the existing one. Its mode stays as it is, and the bits
///   given are checked against it as above: `EACCES` if it denies any of
///   them.
/// * `IPC_CREAT | IPC_EXCL | 0o600`: create it, or fail with `EEXIST`.
/// * With [`Key::PRIVATE`]: a new queue every time.
///
/// Errors: `msgget` returns -1 with `errno` `ENOENT`, `EEXIST`, `EACCES` or
/// `ENOSPC` (the system-wide limit `msgmni` is reached).
pub fn msgget(key: Key, flags: c_int) -> Result<Msqid, Errno> {
    // SAFETY: msgget takes two integers and touches none of our memory.
    Errno::result(unsafe { libc::msgget(key.0, flags) }).map(Msqid)
}

/// Removes the queue at once, with every message still in it:
/// `msgctl(id, IPC_RMID, NULL)`.
///
/// No reference count protects the queue: processes blocked in `msgsnd` or
/// `msgrcv` on it wake up with `EIDRM`, and every later call with its
/// identifier fails with `EINVAL`. Only the queue's creator or owner (or a
/// privileged process) may remove it.
///
/// Errors: `EINVAL` (no such queue), `EPERM` (neither owner nor creator).
pub fn msgctl_rmid(id: Msqid) -> Result<(), Errno> {
    // SAFETY: IPC_RMID reads no buffer, and NULL is allowed.
    Errno::result(unsafe { libc::msgctl(id.0, libc::IPC_RMID, ptr::null_mut()) }).map(drop)
}

/// Appends one message of type `mtype` with the text `text` to the queue:
/// `msgsnd(2)`.
///
/// Fill a [`MsgBuf`] (boxed: it is 64 KiB) with `mtype` and, at the start
/// of `mtext`, the text; pass its address and `text.len()` as `msgsz`.
/// `flags` is 0 or `IPC_NOWAIT`.
///
/// A message is exactly as long as its text, 0 to `msgmax` bytes. Without
/// `IPC_NOWAIT`, a full queue makes the call wait until there is room,
/// until the queue is removed (`EIDRM`), or until a signal handler runs
/// (`EINTR`: `msgsnd` is never restarted after a handler, `SA_RESTART` or
/// not). Linux calls a queue full when the new text would take it over
/// `msg_qbytes` bytes, or the new message would take it over `msg_qbytes`
/// *messages*: even messages of 0 bytes fill a queue. A kernel short of
/// memory for the copy is no reason to wait: `ENOMEM` at once.
///
/// Errors: `EAGAIN` (full, with `IPC_NOWAIT`), `EINVAL` (`mtype` below 1,
/// text longer than `msgmax`, no such queue), `EACCES` (no write
/// permission), `EIDRM`, `EINTR`, `ENOMEM`. A text longer than
/// [`MAX_TEXT`] is `EINVAL` too, found before any system call.
pub fn msgsnd(id: Msqid, mtype: c_long, text: &[u8], flags: c_int) -> Result<(), Errno> {
    if text.len() > MAX_TEXT {
        return Err(Errno::EINVAL);
    }
    let mut buf = empty_buffer(mtype);
    buf.mtext[..text.len()].copy_from_slice(text);
    // SAFETY: the kernel reads the long and text.len() <= MAX_TEXT bytes of
    // mtext, all inside `buf`.
    let sent = unsafe { libc::msgsnd(id.0, (&raw const *buf).cast(), text.len(), flags) };
    Errno::result(sent).map(drop)
}

/// Takes one message off the queue: `msgrcv(2)`. `msgtyp` chooses which:
///
/// * `0`: the first message in the queue, whatever its type;
/// * `> 0`: the first message of exactly that type;
/// * `< 0`: the first message of the lowest type that is at most
///   `|msgtyp|`.
///
/// `max_bytes` is the most text to accept (`msgsz`); never more than
/// [`MAX_TEXT`], the room in a [`MsgBuf`]. `flags` may hold `IPC_NOWAIT`
/// (fail with `ENOMSG` instead of waiting for a message) and `MSG_NOERROR`
/// (cut a longer text to `max_bytes` instead of failing with `E2BIG`; the
/// rest is lost).
///
/// `msgrcv` returns the length of the text it stored: the message is
/// `mtext[..length]`, not the whole buffer.
///
/// Errors: `ENOMSG`, `E2BIG` (the message stays in the queue), `EIDRM` (the
/// queue was removed while we waited), `EINTR`, `EINVAL` (no such queue),
/// `EACCES` (no read permission).
pub fn msgrcv(id: Msqid, max_bytes: usize, msgtyp: c_long, flags: c_int) -> Result<Message, Errno> {
    let mut buf = empty_buffer(0);
    let room = max_bytes.min(MAX_TEXT);
    // SAFETY: the kernel writes the long and at most `room` <= MAX_TEXT
    // bytes of mtext, all inside `buf`.
    let length = unsafe { libc::msgrcv(id.0, (&raw mut *buf).cast(), room, msgtyp, flags) };
    let length = Errno::result(length)? as usize;
    Ok(Message {
        mtype: buf.mtype,
        text: buf.mtext[..length].to_vec(),
    })
}

/// The queue's `struct msqid_ds`: `msgctl(id, IPC_STAT, &buf)`.
///
/// It holds `msg_perm` (a `struct ipc_perm`: `__key`, owner `uid`/`gid`,
/// creator `cuid`/`cgid`, `mode`), `msg_qnum` (messages in the queue),
/// `__msg_cbytes` (their bytes), `msg_qbytes` (the most bytes allowed),
/// `msg_lspid`/`msg_lrpid` (the last sender's and receiver's pids) and
/// `msg_stime`/`msg_rtime`/`msg_ctime` (last send, receive and change, in
/// seconds since 1970; 0 for never). Start from a zeroed buffer
/// (`MaybeUninit::zeroed()`): `libc::msqid_ds` has private padding fields.
///
/// Errors: `EINVAL` (no such queue), `EACCES` (no read permission).
pub fn msgctl_stat(id: Msqid) -> Result<libc::msqid_ds, Errno> {
    let mut buf = MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: IPC_STAT fills the msqid_ds we pass.
    Errno::result(unsafe { libc::msgctl(id.0, libc::IPC_STAT, buf.as_mut_ptr()) })?;
    // SAFETY: all zeros is a valid msqid_ds (integers only), and the kernel
    // has filled it in.
    Ok(unsafe { buf.assume_init() })
}

/// Changes the queue: `msgctl(id, IPC_SET, &buf)`. The kernel copies four
/// fields of `settings` and ignores the rest: `msg_perm.uid`,
/// `msg_perm.gid`, the low 9 bits of `msg_perm.mode`, and `msg_qbytes`.
///
/// Only a process whose effective user ID is the queue's owner (`uid`) or
/// creator (`cuid`), or a privileged one, may do this; raising `msg_qbytes`
/// above `msgmnb` also needs `CAP_SYS_RESOURCE`.
///
/// Errors: `EPERM` (not allowed), `EINVAL` (no such queue).
pub fn msgctl_set(id: Msqid, settings: &libc::msqid_ds) -> Result<(), Errno> {
    let mut buf = *settings;
    // SAFETY: IPC_SET only reads the msqid_ds we pass.
    Errno::result(unsafe { libc::msgctl(id.0, libc::IPC_SET, &mut buf) }).map(drop)
}

/// Sets `msg_qbytes`, the most bytes of text the queue may hold, and
/// returns the value it had.
///
/// Read the queue's settings with [`msgctl_stat`], change `msg_qbytes`
/// only, and write them back with [`msgctl_set`]. `IPC_SET` copies the
/// owner and the mode as well: a buffer of zeros would hand the queue to
/// root with mode 000.
///
/// Errors: those of the two calls.
pub fn set_max_bytes(id: Msqid, bytes: libc::msglen_t) -> Result<libc::msglen_t, Errno> {
    // IPC_SET copies uid, gid and mode too: start from the queue's own.
    let mut settings = msgctl_stat(id)?;
    let old = settings.msg_qbytes;
    settings.msg_qbytes = bytes;
    msgctl_set(id, &settings)?;
    Ok(old)
}

/// The notes' client: asks the server listening on `server_key` for
/// something (`request_type` [`protocol::REQ_TICKET`], or any other type
/// to see the server refuse it) and returns the server's reply.
///
/// 1. Open the server's queue without creating it:
///    `msgget(server_key, 0o200)` (the notes' `S_IWUSR`: we only write to
///    it). On `ENOENT`, fail with `no server is listening on key 0xKEY`
///    (the key as `{:#010x}`); other errors with the context
///    `open the server queue`.
/// 2. Create the private reply queue:
///    `msgget(Key::PRIVATE, IPC_CREAT | 0o600)` (context
///    `create the private queue`), and call `created` with its identifier
///    at once: the command line prints `client: private queue ID`.
/// 3. Send the request: type `request_type`, text
///    [`protocol::request_text`] (context `send the request`).
/// 4. Wait for the response on the private queue: `msgrcv` of at most
///    [`protocol::RESP_MSG_SIZE`] bytes, any type. [`protocol::RESP_TICKET`]:
///    return [`protocol::reply_of`] its text. [`protocol::RESP_ERROR`]: fail
///    with `the server refused: REPLY`. Any other type: fail with
///    `unexpected response type N`.
/// 5. Remove the private queue on **every** path after step 2, errors
///    included: nobody else knows it exists. A small guard type whose
///    `Drop` calls [`msgctl_rmid`] does this well.
///
/// A System V queue cannot be polled, and `msgrcv` has no timeout. The
/// command line arms a timer instead: once it expires, `SIGALRM` comes
/// every 20 ms, and the first one that finds `msgrcv` waiting makes it
/// fail with `EINTR` (a single alarm that came just before `msgrcv`
/// started would be lost, and the client would wait for ever: see the
/// chapter). Treat `EINTR` from `msgrcv` as the end: fail with
/// `no reply from the server before the time limit`, never call again.
pub fn request(
    server_key: Key,
    request_type: c_long,
    created: impl FnOnce(Msqid),
) -> anyhow::Result<String> {
    let server = match msgget(server_key, 0o200) {
        Err(Errno::ENOENT) => bail!("no server is listening on key {:#010x}", server_key.0),
        other => other.context("open the server queue")?,
    };
    // From here on, every return removes the private queue.
    let private = OwnedQueue::create_private().context("create the private queue")?;
    created(private.0);
    msgsnd(server, request_type, &protocol::request_text(private.0), 0)
        .context("send the request")?;
    let response = match msgrcv(private.0, protocol::RESP_MSG_SIZE, 0, 0) {
        Err(Errno::EINTR) => bail!("no reply from the server before the time limit"),
        other => other.context("receive the response")?,
    };
    let reply = protocol::reply_of(&response.text);
    match response.mtype {
        protocol::RESP_TICKET => Ok(reply),
        protocol::RESP_ERROR => bail!("the server refused: {reply}"),
        other => bail!("unexpected response type {other}"),
    }
}

/// The notes' server: hands out tickets on the queue of `key` until
/// `SIGINT` or `SIGTERM`, writing its log to `out`.
///
/// 1. Install handlers, without `SA_RESTART`: for `SIGINT` and `SIGTERM`,
///    one that stores the signal's number in a static `AtomicI32`; for
///    `SIGCHLD`, one that reaps every child that has ended
///    (`waitpid(-1, WNOHANG)` in a loop, `errno` saved and restored). Reap
///    in the handler, not in the loop: a child that ends just before
///    `msgrcv` starts would stay a zombie until the next request. Each
///    handler also makes a blocked `msgrcv` fail with `EINTR`.
/// 2. Create the queue: `msgget(key, IPC_CREAT | IPC_EXCL | 0o600)`, with
///    the context `create the server queue with key 0xKEY`. `EEXIST` means
///    another server runs, or a killed one left its queue: never serve on
///    a queue you did not create. Log
///    `server: listening on queue ID (key 0xKEY)`.
/// 3. Loop: stop if a stop signal was caught; take the next request with
///    `msgrcv` of up to [`MAX_TEXT`] bytes, any type. `EINTR`: go round
///    again. Any other error ends the server (context `receive a request`).
///    * A text that [`protocol::client_of`] rejects: log
///      `server: ignored a malformed request of N bytes` and go on.
///    * [`protocol::REQ_TICKET`]: count it (the first is ticket 1) and log
///      `server: ticket N for queue CLIENT`. Any other type: log
///      `server: refused request type T from queue CLIENT`.
///    * Then flush `out` and `fork`. The child waits `work` (a slow
///      service), sends the answer to the client's queue, type
///      [`protocol::RESP_TICKET`] with the text of
///      [`protocol::ticket_reply`]`(N, its own pid)`, or
///      [`protocol::RESP_ERROR`] with [`protocol::unknown_type_reply`], as
///      [`protocol::response_text`], and leaves with `_exit`. If the send
///      fails (the client is gone) it prints
///      `msgq: server: answer queue CLIENT: ERRNO` on stderr first. The
///      parent counts the ticket, not the child: a child's memory is a copy.
/// 4. On a stop signal: remove the queue, wait for every child, log
///    `server: SIGTERM: removed queue ID, tickets handed out: N` (or
///    `SIGINT`), and return. After any other error, still remove the queue (unless it is
///    gone: `EIDRM`, `EINVAL`) and wait for the children before returning
///    the error.
///
/// A signal that arrives between the check of the flag and the start of
/// `msgrcv` is noticed only when the next request comes: a System V queue
/// offers nothing like `pselect` to close that gap (see the chapter).
pub fn serve(key: Key, work: Duration, out: &mut impl Write) -> anyhow::Result<()> {
    install_handlers()?;
    let queue = msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600)
        .with_context(|| format!("create the server queue with key {:#010x}", key.0))?;
    let served = serve_requests(queue, key, work, out);
    // Whatever ended the loop, the queue goes (unless someone removed it
    // already), and no child is left behind.
    let removed = match &served {
        Err(error) if queue_is_gone(error) => Ok(()),
        _ => msgctl_rmid(queue).context("remove the server queue"),
    };
    let waited = wait_for_children();
    let tickets = served?;
    removed?;
    waited?;
    let signal = Signal::try_from(STOP.load(Ordering::SeqCst)).map_or("stop", Signal::as_str);
    writeln!(
        out,
        "server: {signal}: removed queue {}, tickets handed out: {tickets}",
        queue.0
    )?;
    Ok(())
}

/// A message buffer of type `mtype` and an empty text, on the heap.
fn empty_buffer(mtype: c_long) -> Box<MsgBuf> {
    Box::new(MsgBuf {
        mtype,
        mtext: [0; MAX_TEXT],
    })
}

/// A queue this process created and must remove: dropping it does, on
/// every path, and quietly (it may be gone already).
struct OwnedQueue(Msqid);

impl OwnedQueue {
    /// A new `IPC_PRIVATE` queue with mode 0600.
    fn create_private() -> Result<OwnedQueue, Errno> {
        msgget(Key::PRIVATE, libc::IPC_CREAT | 0o600).map(OwnedQueue)
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // Nothing better to do if it fails: the queue is gone, or was never ours.
        let _ = msgctl_rmid(self.0);
    }
}

/// What the child forked for one request sends back.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// The ticket number the parent counted.
    Ticket(u64),
    /// A request of a type this server does not serve.
    Refusal(c_long),
}

/// Notes which stop signal arrived: the loop checks it between requests.
extern "C" fn note_stop(signal: c_int) {
    STOP.store(signal, Ordering::SeqCst);
}

/// Reaps every child that has ended, the moment it ends: no zombie waits
/// for the next request. A handler must leave `errno` as it found it.
extern "C" fn reap_children(_: c_int) {
    let saved = Errno::last_raw();
    // SAFETY: waitpid is async-signal-safe, and a null status is allowed.
    while unsafe { libc::waitpid(-1, ptr::null_mut(), libc::WNOHANG) } > 0 {}
    Errno::set_raw(saved);
}

/// `SIGINT`, `SIGTERM` and `SIGCHLD`, all without `SA_RESTART`.
fn install_handlers() -> anyhow::Result<()> {
    let stop = SigAction::new(
        SigHandler::Handler(note_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let child = SigAction::new(
        SigHandler::Handler(reap_children),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handlers store to an atomic or call waitpid, both
    // async-signal-safe.
    unsafe {
        sigaction(Signal::SIGINT, &stop).context("sigaction(SIGINT)")?;
        sigaction(Signal::SIGTERM, &stop).context("sigaction(SIGTERM)")?;
        sigaction(Signal::SIGCHLD, &child).context("sigaction(SIGCHLD)")?;
    }
    Ok(())
}

/// Logs the server's start, then receives and dispatches requests until a
/// stop signal. Returns how many tickets were handed out.
fn serve_requests(
    queue: Msqid,
    key: Key,
    work: Duration,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    writeln!(
        out,
        "server: listening on queue {} (key {:#010x})",
        queue.0, key.0
    )?;
    out.flush()?;
    let mut tickets = 0;
    loop {
        if STOP.load(Ordering::SeqCst) != 0 {
            return Ok(tickets);
        }
        let request = match msgrcv(queue, MAX_TEXT, 0, 0) {
            // A signal: a child ended (and was reaped), or we were asked to stop.
            Err(Errno::EINTR) => continue,
            other => other.context("receive a request")?,
        };
        let Some(client) = protocol::client_of(&request.text) else {
            writeln!(
                out,
                "server: ignored a malformed request of {} bytes",
                request.text.len()
            )?;
            continue;
        };
        let answer = if request.mtype == protocol::REQ_TICKET {
            tickets += 1;
            writeln!(out, "server: ticket {tickets} for queue {}", client.0)?;
            Answer::Ticket(tickets)
        } else {
            writeln!(
                out,
                "server: refused request type {} from queue {}",
                request.mtype, client.0
            )?;
            Answer::Refusal(request.mtype)
        };
        // Nothing may wait in a buffer when we fork, or the child has a copy.
        out.flush()?;
        answer_in_child(client, answer, work)?;
    }
}

/// Forks a child that answers one request on the client's queue and exits.
fn answer_in_child(client: Msqid, answer: Answer, work: Duration) -> anyhow::Result<()> {
    // SAFETY: the server is single-threaded; the child sleeps, sends one
    // message, maybe writes one line to stderr, and leaves with _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { .. } => Ok(()),
        ForkResult::Child => {
            std::thread::sleep(work);
            let (mtype, reply) = match answer {
                Answer::Ticket(ticket) => (
                    protocol::RESP_TICKET,
                    protocol::ticket_reply(ticket, std::process::id() as i32),
                ),
                Answer::Refusal(mtype) => {
                    (protocol::RESP_ERROR, protocol::unknown_type_reply(mtype))
                }
            };
            let status = match msgsnd(client, mtype, &protocol::response_text(&reply), 0) {
                Ok(()) => 0,
                Err(errno) => {
                    eprintln!("msgq: server: answer queue {}: {errno}", client.0);
                    1
                }
            };
            // SAFETY: _exit ends the child at once, without running the
            // parent's destructors or flushing its buffers a second time.
            unsafe { libc::_exit(status) }
        }
    }
}

/// Waits until no child is left (the handler may reap some first).
fn wait_for_children() -> anyhow::Result<()> {
    loop {
        match waitpid(None, None) {
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(()),
            Err(errno) => return Err(errno).context("waitpid"),
        }
    }
}

/// Whether the error says that the queue no longer exists: someone removed
/// it while we waited (`EIDRM`), or before we asked (`EINVAL`).
fn queue_is_gone(error: &anyhow::Error) -> bool {
    matches!(
        error.root_cause().downcast_ref::<Errno>(),
        Some(Errno::EIDRM | Errno::EINVAL)
    )
}
