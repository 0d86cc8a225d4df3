//! Why small writes get delayed: Nagle's algorithm meets delayed ACKs.
//! Run it with `cargo run --release --example nagle`.
//!
//! A server thread answers each frame (4-byte length, then the body) with
//! one write. The client sends 100 small requests, one at a time, waiting
//! for each answer, in three ways: the length and the body in two writes;
//! the same with `TCP_NODELAY`; and both in one write. It prints the time
//! per round trip. Timings are this machine's, not a promise: the test
//! suite never checks them.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Round trips per way of writing.
const ROUNDS: u32 = 100;

fn main() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let address = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || answer_frames(stream));
        }
    });
    for (way, nodelay, split) in [
        ("two writes (length, body)", false, true),
        ("two writes, TCP_NODELAY", true, true),
        ("one write", false, false),
    ] {
        let mut stream = TcpStream::connect(address)?;
        stream.set_nodelay(nodelay)?;
        let each = round_trips(&mut stream, split)?;
        println!(
            "{way:<28} {:>8.3} ms per round trip",
            each.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

// ANCHOR: round_trip
/// `ROUNDS` requests of 16 bytes, each answered before the next is sent;
/// the average time of one.
fn round_trips(stream: &mut TcpStream, split: bool) -> io::Result<Duration> {
    let body = [b'E'; 16];
    let length = (body.len() as u32).to_be_bytes();
    let mut reply = [0u8; 4 + 16];
    let start = Instant::now();
    for _ in 0..ROUNDS {
        if split {
            stream.write_all(&length)?; // goes at once: nothing is in flight
            stream.write_all(&body)?; // waits for the ACK of the length (Nagle)…
        } else {
            stream.write_all(&[&length[..], &body[..]].concat())?;
        }
        stream.read_exact(&mut reply)?; // …which the server delays (delayed ACK)
    }
    Ok(start.elapsed() / ROUNDS)
}
// ANCHOR_END: round_trip

/// The server side: read a frame, answer it with one write.
fn answer_frames(mut stream: TcpStream) -> io::Result<()> {
    let mut prefix = [0u8; 4];
    loop {
        if stream.read_exact(&mut prefix).is_err() {
            return Ok(());
        }
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut body)?;
        stream.write_all(&[&prefix[..], &body[..]].concat())?;
    }
}
