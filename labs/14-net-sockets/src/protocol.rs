//! The lab's protocol (协议): the agreed format of the conversation between
//! a client and a server (given: you do not need to change this file).
//!
//! Over TCP, a byte stream, every message travels in a **frame**: a 4-byte
//! length, then that many bytes of **body**. Over UDP, a datagram keeps its
//! boundaries, so the body travels in a datagram of its own, after a
//! sequence number. The bodies are the same either way:
//!
//! ```text
//! TCP frame:     length: u32, big-endian (0 to 65536) | body: length bytes
//! UDP datagram:  sequence: u32, big-endian            | body  (at most 1472 bytes in all)
//!
//! request body:  op: u8 | argument
//!   'E' ECHO     argument: any bytes            → '+' and the same bytes
//!   'S' SUM      argument: 0 or more i64,       → '+' and their sum, one i64,
//!                each 8 bytes, big-endian          big-endian ('-' if it overflows)
//! response body: status: u8 | result
//!   '+' OK       the result
//!   '-' ERROR    a reason, in UTF-8 text
//! ```
//!
//! Every integer on the wire is in network byte order (big-endian): the most
//! significant byte first, whatever the machine that wrote it. A request
//! the server cannot answer (an empty body, an unknown op, a SUM argument
//! that is not a whole number of 8-byte integers) gets an ERROR response
//! and the connection goes on: the frame boundaries are still known. A
//! frame longer than [`MAX_BODY`], a peer that stops in the middle of a
//! frame, or one that sends nothing for too long, ends the connection:
//! after that nobody knows where the next frame would begin.

// ANCHOR: constants
/// The bytes of a frame's length prefix.
pub const HEADER: usize = 4;

/// The longest body a frame may carry (op or status byte included): 64 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// The bytes of a UDP datagram's sequence number.
pub const SEQUENCE: usize = 4;

/// The longest datagram either side sends or accepts, sequence number
/// included: 1500 bytes of Ethernet payload, less 20 of IPv4 header and 8
/// of UDP header, so that a datagram crosses an ordinary network in one
/// piece, unfragmented.
pub const MAX_DATAGRAM: usize = 1472;

/// Op of a request whose answer is its argument, unchanged.
pub const ECHO: u8 = b'E';

/// Op of a request whose answer is the sum of its 8-byte integers.
pub const SUM: u8 = b'S';

/// Status of a response that carries a result.
pub const OK: u8 = b'+';

/// Status of a response that carries a reason for refusing the request.
pub const ERROR: u8 = b'-';
// ANCHOR_END: constants

// ANCHOR: types
/// A request, as a client means it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `E`: send these bytes back.
    Echo(Vec<u8>),
    /// `S`: add these numbers.
    Sum(Vec<i64>),
}

/// A response, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `+`: the result.
    Ok(Vec<u8>),
    /// `-`: why the request was refused.
    Error(String),
}

impl Request {
    /// The request's body: its op, then its argument, numbers big-endian.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Echo(bytes) => [&[ECHO][..], bytes].concat(),
            Request::Sum(numbers) => {
                let mut body = Vec::with_capacity(1 + 8 * numbers.len());
                body.push(SUM);
                for number in numbers {
                    body.extend_from_slice(&number.to_be_bytes());
                }
                body
            }
        }
    }
}

impl Response {
    /// Reads a response body: its status byte, then its result or reason.
    pub fn decode(body: &[u8]) -> Result<Response, String> {
        match body.split_first() {
            Some((&OK, result)) => Ok(Response::Ok(result.to_vec())),
            Some((&ERROR, reason)) => Ok(Response::Error(
                String::from_utf8_lossy(reason).into_owned(),
            )),
            Some((status, _)) => Err(format!("unknown status byte {status:#04x}")),
            None => Err("an empty response".to_string()),
        }
    }
}
// ANCHOR_END: types

// ANCHOR: answer
/// The server's side of the conversation: the response body for a request
/// body. Never fails: a request it cannot answer gets an ERROR response
/// that says why.
pub fn answer(request: &[u8]) -> Vec<u8> {
    let result = match request.split_first() {
        None => Err("an empty request: a body starts with an op byte".to_string()),
        Some((&ECHO, argument)) => Ok(argument.to_vec()),
        Some((&SUM, argument)) => sum(argument).map(|total| total.to_be_bytes().to_vec()),
        Some((&op, _)) => Err(format!("unknown op {}", describe_byte(op))),
    };
    match result {
        Ok(bytes) => [&[OK][..], &bytes].concat(),
        Err(reason) => [&[ERROR][..], reason.as_bytes()].concat(),
    }
}

/// The sum of the big-endian `i64`s in `argument`.
fn sum(argument: &[u8]) -> Result<i64, String> {
    if !argument.len().is_multiple_of(8) {
        return Err(format!(
            "SUM takes 8-byte integers: {} bytes is not a whole number of them",
            argument.len()
        ));
    }
    argument
        .chunks_exact(8)
        .map(|chunk| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            i64::from_be_bytes(bytes)
        })
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| "the sum overflows a 64-bit integer".to_string())
}
// ANCHOR_END: answer

/// `0x51 ('Q')` for a printable byte, `0x07` for another.
pub fn describe_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("{byte:#04x} ('{}')", byte as char)
    } else {
        format!("{byte:#04x}")
    }
}

/// A response as one line of text: `OK "text"` (or `OK 42` for a sum),
/// `ERROR reason`.
pub fn describe_response(request: &Request, response: &Response) -> String {
    match (request, response) {
        (Request::Sum(_), Response::Ok(bytes)) if bytes.len() == 8 => {
            let mut number = [0u8; 8];
            number.copy_from_slice(bytes);
            format!("OK {}", i64::from_be_bytes(number))
        }
        (_, Response::Ok(bytes)) => format!("OK {:?}", String::from_utf8_lossy(bytes)),
        (_, Response::Error(reason)) => format!("ERROR {reason}"),
    }
}
