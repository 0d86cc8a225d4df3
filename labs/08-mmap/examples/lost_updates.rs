//! How often does a load-then-store lose updates when nothing forces the
//! race? Two children add 1 to a shared counter `ROUNDS` times each, with a
//! load and a store, released together by a gate, ten times over. Compare
//! with `mmap count --racy`, which holds round 1 between its load and its
//! store and so loses updates every time.
//!
//! Usage (inside `labs/08-mmap`): `cargo run --release --example lost_updates`

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
#[path = "../src/gate.rs"]
pub mod gate;
#[path = "../src/mapping.rs"]
pub mod mapping;

use gate::Gate;
use mapping::{Mapping, Share};

const CHILDREN: u64 = 2;

fn main() -> anyhow::Result<()> {
    for rounds in [1_000, 100_000] {
        let lost: Vec<u64> = (0..10)
            .map(|_| run(rounds))
            .collect::<anyhow::Result<_>>()?;
        let none = lost.iter().filter(|&&n| n == 0).count();
        println!(
            "{CHILDREN} children × {rounds:>6} rounds: lost {lost:?} ({none} of 10 runs lost nothing)"
        );
    }
    Ok(())
}

// ANCHOR: race
/// One run: returns how many of the `CHILDREN * rounds` additions were lost.
fn run(rounds: u64) -> anyhow::Result<u64> {
    let mut shared = Mapping::anonymous(8, Share::Shared)?;
    let total = &shared.counters()?[0];
    let gate = Gate::new()?;
    let mut children = Vec::new();
    for _ in 0..CHILDREN {
        // SAFETY: single-threaded; the child adds and _exits.
        match unsafe { fork() }? {
            ForkResult::Child => {
                let code = i32::from(add(total, gate, rounds).is_err());
                // SAFETY: _exit never returns.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => children.push(child),
        }
    }
    gate.open(children.len()).context("gate")?;
    for child in children {
        if waitpid(child, None)? != WaitStatus::Exited(child, 0) {
            bail!("a child failed");
        }
    }
    Ok(CHILDREN * rounds - total.load(Ordering::Relaxed))
}

fn add(total: &AtomicU64, gate: Gate, rounds: u64) -> std::io::Result<()> {
    gate.pass()?;
    for _ in 0..rounds {
        let seen = total.load(Ordering::Relaxed);
        total.store(seen + 1, Ordering::Relaxed);
    }
    Ok(())
}
// ANCHOR_END: race
