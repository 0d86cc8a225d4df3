//! Inputs that differ from run to run, so that no program can pass a test by
//! printing text it learnt by heart, and a seed that repeats a failing run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that fixes the seed of every [`Varied`].
pub const SEED_VARIABLE: &str = "WORKBOOK_SEED";

/// Tells the seeds of one test process apart when the clock does not.
static CREATED: AtomicU64 = AtomicU64::new(0);

/// A small random generator for a test's inputs: counts, sizes, names,
/// contents. Not for cryptography.
///
/// The seed is `$WORKBOOK_SEED` when that is set (a number), else it comes
/// from the clock. When the test fails, dropping the generator prints the
/// seed after the failure message, in the command that repeats the run:
///
/// ```text
///   to repeat these inputs: WORKBOOK_SEED=1234567 cargo test NAME
/// ```
///
/// Make one generator at the start of a test and keep it to the end,
/// handing `&mut` to the helpers that need inputs: all of a test's inputs
/// then come from the one seed that is printed, and the seed is printed
/// only by a generator still alive when the test fails (a temporary
/// `Varied::new().between(…)` is gone by then).
#[derive(Debug)]
pub struct Varied {
    seed: u64,
    state: u64,
}

impl Varied {
    /// A generator seeded from `$WORKBOOK_SEED`, or else from the clock.
    pub fn new() -> Varied {
        let seed = std::env::var(SEED_VARIABLE)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or_else(clock_seed);
        Varied::from_seed(seed)
    }

    /// A generator with a fixed seed.
    pub fn from_seed(seed: u64) -> Varied {
        Varied { seed, state: seed }
    }

    /// The seed, for messages.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A number from `low` to `high`, both included.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "grader: empty range {low}..={high}");
        let span = high - low;
        if span == u64::MAX {
            return self.next();
        }
        low + self.next() % (span + 1)
    }

    /// A size, length or count from `low` to `high`, both included:
    /// [`Varied::between`] for `usize` (the same number for the same seed).
    pub fn size(&mut self, low: usize, high: usize) -> usize {
        self.between(low as u64, high as u64) as usize
    }

    /// `true` one time in `n`, on average.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.between(1, n.max(1)) == 1
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        assert!(!items.is_empty(), "grader: nothing to pick from");
        &items[self.between(0, items.len() as u64 - 1) as usize]
    }

    /// A word of `len` lower-case ASCII letters.
    pub fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'a' + self.between(0, 25) as u8))
            .collect()
    }

    /// A word of `shortest` to `longest` letters.
    pub fn word_in(&mut self, shortest: usize, longest: usize) -> String {
        let len = self.size(shortest, longest);
        self.word(len)
    }

    /// `count` words of 0 to `longest` letters each.
    pub fn words(&mut self, count: usize, longest: usize) -> Vec<String> {
        (0..count).map(|_| self.word_in(0, longest)).collect()
    }

    /// [`Varied::bytes`], `shortest` to `longest` of them.
    pub fn bytes_in(&mut self, shortest: usize, longest: usize) -> Vec<u8> {
        let len = self.size(shortest, longest);
        self.bytes(len)
    }

    /// `len` bytes in which every value from 0 to 255 may appear: contents
    /// for files, segments and messages that must go through unchanged.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.between(0, 255) as u8).collect()
    }

    /// `items` in a random order.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for at in (1..items.len()).rev() {
            let other = self.between(0, at as u64) as usize;
            items.swap(at, other);
        }
    }

    /// The next 64 random bits (splitmix64).
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Default for Varied {
    fn default() -> Self {
        Varied::new()
    }
}

impl Drop for Varied {
    /// After a failure, prints the seed and how to repeat the run, on one
    /// line that fits a terminal (the test's name is left out of the
    /// command if it would not fit: the seed alone repeats the inputs).
    fn drop(&mut self) {
        if std::thread::panicking() {
            let seed = self.seed;
            let with_name = std::thread::current()
                .name()
                .filter(|name| *name != "main")
                .map(|name| {
                    format!("  to repeat these inputs: {SEED_VARIABLE}={seed} cargo test {name}")
                })
                .filter(|line| line.chars().count() <= crate::WIDTH);
            let line = with_name.unwrap_or_else(|| {
                format!("  to repeat these inputs: {SEED_VARIABLE}={seed} cargo test")
            });
            eprintln!("{line}");
        }
    }
}

/// A seed from the clock, the process and a counter, so that two tests that
/// start in the same nanosecond still differ.
fn clock_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0);
    let count = CREATED.fetch_add(1, Ordering::Relaxed);
    let mixed = nanos ^ (u64::from(std::process::id()) << 32) ^ count.wrapping_mul(0x9e37_79b9);
    // Keep seeds short enough to type.
    Varied::from_seed(mixed).next() % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::Varied;

    #[test]
    fn one_seed_gives_one_sequence() {
        let (mut a, mut b) = (Varied::from_seed(7), Varied::from_seed(7));
        let first: Vec<u64> = (0..5).map(|_| a.between(0, 1000)).collect();
        let second: Vec<u64> = (0..5).map(|_| b.between(0, 1000)).collect();
        assert_eq!(first, second);
    }

    #[test]
    fn between_stays_in_its_range() {
        let mut vary = Varied::from_seed(1);
        for _ in 0..1000 {
            let n = vary.between(3, 5);
            assert!((3..=5).contains(&n));
        }
        assert_eq!(vary.between(9, 9), 9);
        for _ in 0..1000 {
            let n = vary.size(0, 2);
            assert!(n <= 2);
        }
    }

    #[test]
    fn bytes_take_every_value() {
        let mut vary = Varied::from_seed(3);
        let bytes = vary.bytes(10_000);
        assert_eq!(bytes.len(), 10_000);
        let mut seen = [false; 256];
        for byte in bytes {
            seen[usize::from(byte)] = true;
        }
        assert!(seen.iter().all(|&s| s), "some byte value never came");
    }
}
