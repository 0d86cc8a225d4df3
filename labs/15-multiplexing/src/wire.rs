//! The relay's wire format (given: you do not need to change this file).
//!
//! Chapter 13's frames, unchanged: each message on a connection is a
//! **length prefix**, 4 bytes, big-endian (network byte order), then that
//! many bytes of payload.
//!
//! * A client sends frames whose payload is its message: at most
//!   [`MAX_MESSAGE`] bytes of anything (the lab's tools send lines of text).
//! * The relay sends frames whose payload is the number of the client who
//!   said it (4 bytes, big-endian), then the message. Client numbers start
//!   at 1, in the order the relay accepted the connections; number 0
//!   ([`FROM_RELAY`]) is the relay itself: the welcome that tells a client
//!   its number (`welcome, client 7`), and the announcements that arrive on
//!   its POSIX message queue.
//!
//! ```text
//! client → relay    ┌──────────┬──────────────────┐
//!                   │ length   │ message          │   length ≤ 4096
//!                   └──────────┴──────────────────┘
//! relay → client    ┌──────────┬──────────┬──────────────────┐
//!                   │ length   │ from     │ message          │   length = 4 + message
//!                   └──────────┴──────────┴──────────────────┘
//! "hi" from client 3:  00 00 00 06  00 00 00 03  68 69
//! ```

// ANCHOR: wire
/// The bytes of a frame's length prefix.
pub const HEADER: usize = 4;

/// The longest message a client may send, in bytes.
pub const MAX_MESSAGE: usize = 4096;

/// The bytes of the sender's number at the start of a relayed payload.
pub const FROM: usize = 4;

/// The longest payload the relay sends: a sender's number and a message.
pub const MAX_RELAYED: usize = FROM + MAX_MESSAGE;

/// The sender number of what the relay itself says.
pub const FROM_RELAY: u32 = 0;

/// A frame of `payload`: its length as 4 big-endian bytes, then the bytes.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The frame the relay sends to pass on `message` from client `from`.
pub fn relayed(from: u32, message: &[u8]) -> Vec<u8> {
    let length = FROM + message.len();
    let mut bytes = Vec::with_capacity(HEADER + length);
    bytes.extend_from_slice(&(length as u32).to_be_bytes());
    bytes.extend_from_slice(&from.to_be_bytes());
    bytes.extend_from_slice(message);
    bytes
}

/// Splits a payload the relay sent into the sender's number and the
/// message; `None` if it is too short to hold a number.
pub fn sender(payload: &[u8]) -> Option<(u32, &[u8])> {
    let (from, message) = payload.split_first_chunk::<FROM>()?;
    Some((u32::from_be_bytes(*from), message))
}
// ANCHOR_END: wire
