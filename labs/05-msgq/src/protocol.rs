//! The protocol (协议) of the ticket server and its clients, tasks 4 and 5
//! (given: you do not need to change this file).
//!
//! The wire format is exactly the one of the course notes, so that a client
//! written in C from the notes (`c/client.c` in this lab) talks to your Rust
//! server, and the other way round:
//!
//! ```c
//! #define RESP_MSG_SIZE 1024
//! #define REQ_MSG_SIZE  sizeof(int)
//!
//! struct Request  { long mtype; int  client_mq_id; };        /* client -> server */
//! struct Response { long mtype; char data[RESP_MSG_SIZE]; }; /* server -> client */
//! ```
//!
//! * The server owns a queue under a **well-known key** (here: `ftok` of a
//!   key file both sides are given). Every client sends its requests there.
//! * Each client creates a **private reply queue** (`IPC_PRIVATE`) and puts
//!   its identifier into the request. The server answers on that queue, so
//!   replies never mix, and the client removes it when it is done.
//! * The request type says what is asked. There is one service: type
//!   [`REQ_TICKET`], "give me the next ticket number". The response type says
//!   how it went: [`RESP_TICKET`] carries the ticket, [`RESP_ERROR`] the reason
//!   the request was refused.
//! * `msgsz`, the size `msgsnd` and `msgrcv` take, counts the bytes after
//!   `mtype` only: [`REQ_MSG_SIZE`] (4) for a request, not `sizeof(struct
//!   Request)` (16 on a 64-bit machine, padding included). A response's text
//!   is NUL-terminated, so that C can print it with `%s`, and its `msgsz` is
//!   the text's length plus one.

use std::mem::{offset_of, size_of};

use libc::{c_int, c_long};

use super::Msqid;

// ANCHOR: wire
/// A request, as C lays it out in memory. `msgsnd` is given its address and
/// [`REQ_MSG_SIZE`]: the bytes of `client_mq_id`, after the `long`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// What is asked: [`REQ_TICKET`]. Must be at least 1, like every mtype.
    pub mtype: c_long,
    /// The client's private queue, where the answer goes.
    pub client_mq_id: c_int,
}

/// A response, as C lays it out in memory: `msgrcv` is given its address
/// and [`RESP_MSG_SIZE`], the most it may store after the `long`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Response {
    /// [`RESP_TICKET`] or [`RESP_ERROR`].
    pub mtype: c_long,
    /// NUL-terminated text.
    pub data: [u8; RESP_MSG_SIZE],
}

/// The text size of a request: one `int`, the client's queue identifier.
pub const REQ_MSG_SIZE: usize = size_of::<c_int>();
/// The largest text of a response.
pub const RESP_MSG_SIZE: usize = 1024;

/// Request type: "give me the next ticket". The notes' client sends type 1.
pub const REQ_TICKET: c_long = 1;
/// Response type: the text is `ticket N, served by pid P`.
pub const RESP_TICKET: c_long = 1;
/// Response type: the request was refused; the text says why.
pub const RESP_ERROR: c_long = 2;
// ANCHOR_END: wire

// The text of a request starts right after the `long`, with nothing between.
const _: () = assert!(offset_of!(Request, client_mq_id) == size_of::<c_long>());
const _: () = assert!(offset_of!(Response, data) == size_of::<c_long>());

// ANCHOR: helpers
/// The text of a request from the client whose private queue is `client`:
/// the bytes of `client_mq_id` in the machine's byte order.
pub fn request_text(client: Msqid) -> [u8; REQ_MSG_SIZE] {
    client.0.to_ne_bytes()
}

/// The private queue named by the text of a request, or `None` if the text
/// is not exactly [`REQ_MSG_SIZE`] bytes long (a malformed request).
pub fn client_of(text: &[u8]) -> Option<Msqid> {
    let bytes: [u8; REQ_MSG_SIZE] = text.try_into().ok()?;
    Some(Msqid(c_int::from_ne_bytes(bytes)))
}

/// The text of a response: `reply` and a terminating NUL, cut to
/// [`RESP_MSG_SIZE`] bytes in all.
pub fn response_text(reply: &str) -> Vec<u8> {
    let mut text: Vec<u8> = reply.bytes().take(RESP_MSG_SIZE - 1).collect();
    text.push(0);
    text
}

/// The reply carried by the text of a response: everything before the
/// first NUL (or all of it, if a sender forgot the NUL).
pub fn reply_of(text: &[u8]) -> String {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    String::from_utf8_lossy(&text[..end]).into_owned()
}

/// What the server answers to a ticket request: the ticket number and the
/// pid of the process that served it.
pub fn ticket_reply(ticket: u64, served_by: i32) -> String {
    format!("ticket {ticket}, served by pid {served_by}")
}

/// What the server answers to a request of a type it does not serve.
pub fn unknown_type_reply(mtype: c_long) -> String {
    format!("unknown request type {mtype}")
}
// ANCHOR_END: helpers
