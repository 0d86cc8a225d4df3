//! # Lab 05: System V message queues (消息队列)
//!
//! Write the functions below, in order; each has a `TODO(N)` that matches
//! task N in the book chapter `book/src/05-msgq.md` and the grading suite
//! `tests/05-msgq.rs`. Run `cargo test` in this directory to grade your
//! work; `cargo run -- --help` shows the command you are building.
//!
//! nix has no wrappers for System V IPC, so tasks 1 to 3 build a thin safe
//! layer over the `libc` calls: one function per call, Rust types in,
//! `Result<_, Errno>` out, and every `unsafe` block in this one place. Tasks
//! 4 and 5 write the notes' client and server with that layer alone.
//!
//! The command line in `cli.rs` and the wire format in `protocol.rs` are
//! given. You may add private helper functions (and types) here.

// The stubs below do not use their parameters yet. Delete this line once
// every TODO is done, so the compiler warns you about anything unused.
#![allow(unused_variables)]

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use libc::{c_int, c_long};
use nix::errno::Errno;

pub mod cli;
pub mod protocol;

// ANCHOR: types
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
// ANCHOR_END: types

// ANCHOR: msgbuf
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
// ANCHOR_END: msgbuf

// ANCHOR: ftok
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
    // TODO(1): libc::ftok(path, proj_id); -1 means "look at errno".
    todo!("TODO(1): ftok")
}
// ANCHOR_END: ftok

// ANCHOR: msgget
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
    // TODO(1): libc::msgget(key, flags).
    todo!("TODO(1): msgget")
}
// ANCHOR_END: msgget

// ANCHOR: msgctl_rmid
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
    // TODO(1): libc::msgctl(id, IPC_RMID, null_mut()).
    todo!("TODO(1): msgctl_rmid")
}
// ANCHOR_END: msgctl_rmid

// ANCHOR: msgsnd
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
    // TODO(2): copy into a boxed MsgBuf; libc::msgsnd(id, buf, text.len(), flags).
    todo!("TODO(2): msgsnd")
}
// ANCHOR_END: msgsnd

// ANCHOR: msgrcv
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
    // TODO(2): libc::msgrcv into a boxed MsgBuf; keep mtext[..returned length].
    todo!("TODO(2): msgrcv")
}
// ANCHOR_END: msgrcv

// ANCHOR: msgctl_stat
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
    // TODO(3): libc::msgctl(id, IPC_STAT, &mut buf).
    todo!("TODO(3): msgctl_stat")
}
// ANCHOR_END: msgctl_stat

// ANCHOR: msgctl_set
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
    // TODO(3): libc::msgctl(id, IPC_SET, a mutable copy of settings).
    todo!("TODO(3): msgctl_set")
}
// ANCHOR_END: msgctl_set

// ANCHOR: set_max_bytes
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
    // TODO(3): IPC_STAT, change msg_qbytes, IPC_SET.
    todo!("TODO(3): set_max_bytes")
}
// ANCHOR_END: set_max_bytes

// ANCHOR: request
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
    // TODO(4): open the server queue, make a private one, send, receive, remove.
    todo!("TODO(4): request")
}
// ANCHOR_END: request

// ANCHOR: serve
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
    // TODO(5): handlers, IPC_CREAT | IPC_EXCL, receive, fork per request, reap, clean up.
    todo!("TODO(5): serve")
}
// ANCHOR_END: serve
