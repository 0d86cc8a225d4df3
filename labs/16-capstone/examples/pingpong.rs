//! The smallest honest measurement: a pipe ping-pong between a parent and
//! its child, with a warm-up, a fixed count, one timing per round trip,
//! and the median and 99th percentile of those timings.
//!
//! Usage (inside `labs/16-capstone`):
//! `cargo run --release --example pingpong -- [SIZE] [COUNT]`
//! (defaults: 64 bytes, 10000 round trips).

use std::fs::File;
use std::io::{Read, Write};
use std::time::Instant;

use anyhow::{Context, bail};
use nix::fcntl::OFlag;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe2};

// ANCHOR: main
fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().map_or(Ok(64), |a| a.parse()).context("SIZE")?;
    let count: usize = args
        .next()
        .map_or(Ok(10_000), |a| a.parse())
        .context("COUNT")?;
    if size == 0 || count == 0 {
        bail!("SIZE and COUNT must be above 0");
    }
    let (to_child_read, to_child_write) = pipe2(OFlag::O_CLOEXEC)?;
    let (to_parent_read, to_parent_write) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: this program has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop((to_child_write, to_parent_read));
            let echoed = echo(File::from(to_child_read), File::from(to_parent_write), size);
            // SAFETY: leave at once, without the parent's destructors.
            unsafe { libc::_exit(i32::from(echoed.is_err())) }
        }
        ForkResult::Parent { child } => {
            drop((to_child_read, to_parent_write));
            let mut output = File::from(to_child_write);
            let mut input = File::from(to_parent_read);
            let samples = measure(&mut output, &mut input, size, count)?;
            drop(output); // end-of-file for the child
            if waitpid(child, None)? != WaitStatus::Exited(child, 0) {
                bail!("the child failed");
            }
            report(size, &samples);
        }
    }
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: measure
/// `count / 10` round trips to warm up (caches, page faults, the
/// scheduler's guesses), then `count` round trips, each timed on its own
/// with the monotonic clock. Returns the timings, sorted, in nanoseconds.
fn measure(
    output: &mut File,
    input: &mut File,
    size: usize,
    count: usize,
) -> anyhow::Result<Vec<u64>> {
    let message = vec![0xA5; size];
    let mut answer = vec![0; size];
    for _ in 0..count / 10 {
        output.write_all(&message)?;
        input.read_exact(&mut answer)?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        output.write_all(&message)?;
        input.read_exact(&mut answer)?;
        samples.push(start.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    Ok(samples)
}

/// The child: send back every message, until end-of-file.
fn echo(mut input: File, mut output: File, size: usize) -> anyhow::Result<()> {
    let mut message = vec![0; size];
    loop {
        match input.read_exact(&mut message) {
            Ok(()) => output.write_all(&message)?,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error.into()),
        }
    }
}
// ANCHOR_END: measure

// ANCHOR: report
/// The nearest-rank percentile: the smallest sample that `p`% of the
/// samples do not exceed.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn report(size: usize, samples: &[u64]) {
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "pipe, {size} bytes, {} round trips: p50 {:.2} µs, p99 {:.2} µs, max {:.2} µs",
        samples.len(),
        us(percentile(samples, 50)),
        us(percentile(samples, 99)),
        us(samples[samples.len() - 1])
    );
}
// ANCHOR_END: report
