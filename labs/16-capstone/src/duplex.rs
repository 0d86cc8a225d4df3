//! Two one-way descriptors as one two-way stream (given: you do not need
//! to change this file).

use std::fs::File;
use std::io::{self, Read, Write};

// ANCHOR: duplex
/// A pipe or a FIFO carries bytes one way only, so a two-way byte stream
/// takes two of them: reads come from `input`, writes go to `output`. A
/// socket is two-way by itself and needs no `Duplex`.
#[derive(Debug)]
pub struct Duplex {
    /// The read end of what the other side writes to.
    pub input: File,
    /// The write end of what the other side reads from.
    pub output: File,
}

impl Read for Duplex {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.input.read(buffer)
    }
}

impl Write for Duplex {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.output.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}
// ANCHOR_END: duplex
