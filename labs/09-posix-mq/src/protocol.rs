//! The protocol (协议) of the ticket server and its clients, tasks 5 and 6
//! (given: you do not need to change this file).
//!
//! It is chapter 05's ticket service, moved onto POSIX message queues. The
//! format is written down here and in `c/client.c` so that any program that
//! knows a queue's name can take part: the queues are standard POSIX
//! queues, and the messages plain text.
//!
//! * The server owns a queue under a **well-known name** (`/tickets`, say).
//!   It creates it with `O_CREAT | O_EXCL | O_RDONLY`, mode 0600,
//!   `mq_maxmsg` [`SERVER_MAX_MESSAGES`] and `mq_msgsize` [`REQUEST_MAX`].
//! * Each client creates a **reply queue** under a name of its own choice
//!   (`O_CREAT | O_EXCL | O_RDONLY`, mode 0600, `mq_maxmsg` 1, `mq_msgsize`
//!   [`RESPONSE_MAX`]), and sends the server a request naming it. POSIX
//!   has no `IPC_PRIVATE`: the name is the address. The client unlinks the
//!   reply queue when it is done, on every path.
//! * A **request** is the text `WORD REPLY`: what is asked, one space, and
//!   the reply queue's name, e.g. `ticket /tickets.client.4242`. No NUL, no
//!   newline: a message keeps its boundaries, so its length (what
//!   `mq_receive` returns) is all the framing needed. One word is served,
//!   [`REQ_TICKET`]; the server refuses any other.
//! * A **response** is sent to the reply queue. Its **priority** says what
//!   it is, as chapter 05's `mtype` did: [`RESP_TICKET`] with the text
//!   `ticket N, served by pid P`, or [`RESP_ERROR`] with the reason for a
//!   refusal. `mq_receive` reports the priority of the message it returns.

use libc::c_long;

// ANCHOR: wire
/// `mq_maxmsg` of the server's queue: requests it can hold at once.
pub const SERVER_MAX_MESSAGES: c_long = 8;
/// `mq_msgsize` of the server's queue: the longest request, in bytes.
pub const REQUEST_MAX: usize = 512;
/// `mq_msgsize` of a reply queue: the longest response, in bytes.
pub const RESPONSE_MAX: usize = 256;

/// The one request the server serves: "give me the next ticket".
pub const REQ_TICKET: &str = "ticket";
/// Response priority: the text is `ticket N, served by pid P`.
pub const RESP_TICKET: u32 = 1;
/// Response priority: the request was refused; the text says why.
pub const RESP_ERROR: u32 = 2;
// ANCHOR_END: wire

// ANCHOR: helpers
/// The text of a request: `word`, one space, the reply queue's name.
pub fn request_text(word: &str, reply: &str) -> Vec<u8> {
    format!("{word} {reply}").into_bytes()
}

/// The word and the reply queue's name in the text of a request, or `None`
/// if the text is not `WORD /NAME` (a malformed request: nobody to answer).
pub fn parse_request(text: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(text).ok()?;
    let (word, reply) = text.split_once(' ')?;
    let well_formed = !word.is_empty()
        && !word.contains(char::is_whitespace)
        && reply.len() > 1
        && reply.starts_with('/')
        && !reply[1..].contains('/')
        && !reply.contains(char::is_whitespace);
    well_formed.then(|| (word.to_string(), reply.to_string()))
}

/// What the server answers to a ticket request: the ticket number and the
/// pid of the process that served it.
pub fn ticket_reply(ticket: u64, served_by: i32) -> String {
    format!("ticket {ticket}, served by pid {served_by}")
}

/// What the server answers to a request it does not serve.
pub fn refusal(word: &str) -> String {
    format!("unknown request {word:?}")
}

/// The reply queue a client uses when it is not given one: the server's
/// name, `.client.` and the client's pid, e.g. `/tickets.client.4242`.
pub fn default_reply_name(server: &str, pid: u32) -> String {
    format!("{server}.client.{pid}")
}
// ANCHOR_END: helpers
