//! The records of task 4 (given: you do not need to change this file).
//!
//! Several writers append records to one file, the journal. A record is
//! one line of text that carries its own checksum, so that a reader can
//! tell a whole record from a torn one (part of a record, overwritten by
//! another) without trusting anything else:
//!
//! ```text
//! WRITER SEQ PAYLOAD CHECKSUM
//! 2 0 qhvzkd 1666f5a4f6fdc1f9
//! ```
//!
//! `WRITER` and `SEQ` are decimal numbers, `PAYLOAD` is 1 to
//! [`MAX_PAYLOAD`] lowercase letters, and `CHECKSUM` is the 64-bit FNV-1a
//! hash of `WRITER SEQ PAYLOAD` (the line up to the last space), in 16 hex
//! digits. Each writer's payloads come from a seed, so a run can be
//! repeated; their lengths differ from record to record.

use std::collections::BTreeMap;

/// The longest payload, in letters.
pub const MAX_PAYLOAD: u64 = 160;

/// One record of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Which writer appended it.
    pub writer: u32,
    /// Its number among that writer's records, from 0.
    pub seq: u32,
    /// Its letters.
    pub payload: String,
}

impl Record {
    /// The record as one line of the journal, newline included.
    pub fn line(&self) -> String {
        let body = format!("{} {} {}", self.writer, self.seq, self.payload);
        format!("{body} {:016x}\n", fnv1a(body.as_bytes()))
    }

    /// The record a line holds, if the line is whole: four fields, and a
    /// checksum that matches the first three. `line` has no newline.
    pub fn parse(line: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(line).ok()?;
        let (body, checksum) = text.rsplit_once(' ')?;
        let mut fields = body.split(' ');
        let writer = fields.next()?.parse().ok()?;
        let seq = fields.next()?.parse().ok()?;
        let payload = fields.next()?;
        let whole = fields.next().is_none()
            && !payload.is_empty()
            && payload.bytes().all(|b| b.is_ascii_lowercase())
            && checksum.len() == 16
            && u64::from_str_radix(checksum, 16).ok()? == fnv1a(body.as_bytes());
        whole.then(|| Record {
            writer,
            seq,
            payload: payload.to_string(),
        })
    }
}

/// The `count` records of writer `writer`, made from `seed`: the same
/// three numbers always give the same records.
pub fn records(writer: u32, count: u32, seed: u64) -> Vec<Record> {
    let mut state = seed ^ u64::from(writer).wrapping_mul(0xa076_1d64_78bd_642f);
    (0..count)
        .map(|seq| {
            let len = 1 + next(&mut state) % MAX_PAYLOAD;
            let payload = (0..len)
                .map(|_| char::from(b'a' + (next(&mut state) % 26) as u8))
                .collect();
            Record {
                writer,
                seq,
                payload,
            }
        })
        .collect()
}

/// What a journal holds: its whole records, in file order, and how many
/// lines were not whole records (torn, overwritten, or cut short).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// The whole records, in the order they appear.
    pub records: Vec<Record>,
    /// Lines that are not whole records.
    pub torn: usize,
}

impl Contents {
    /// Each writer's whole records, in file order, by writer.
    pub fn by_writer(&self) -> BTreeMap<u32, Vec<&Record>> {
        let mut writers: BTreeMap<u32, Vec<&Record>> = BTreeMap::new();
        for record in &self.records {
            writers.entry(record.writer).or_default().push(record);
        }
        writers
    }
}

/// Reads a journal's bytes. A last line without its newline counts as torn.
pub fn read(bytes: &[u8]) -> Contents {
    let mut contents = Contents::default();
    let mut lines = bytes.split_inclusive(|&b| b == b'\n');
    for line in &mut lines {
        match line.strip_suffix(b"\n").and_then(Record::parse) {
            Some(record) => contents.records.push(record),
            None => contents.torn += 1,
        }
    }
    contents
}

// ANCHOR: fnv1a
/// A running 64-bit FNV-1a hash: start from 0xcbf29ce484222325; for each
/// byte, xor it in, then multiply by 0x100000001b3, wrapping. Anyone can
/// recompute it.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Adds `bytes` to the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
// ANCHOR_END: fnv1a

/// The FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = Fnv1a::default();
    hash.update(bytes);
    hash.0
}

/// The next 64 pseudo-random bits (splitmix64).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
