//! Capturing a program's output on a thread, so that a test can look at it
//! while the program runs (a server's "ready" line) and collect all of it
//! once the program has exited.

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Instant;

/// Output beyond this many bytes per stream is read and thrown away, so a
/// program printing in an endless loop cannot exhaust memory.
const OUTPUT_LIMIT: usize = 8 << 20;

/// What a reader thread has read so far from one pipe.
#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    /// The pipe reached end-of-file (or failed): nothing more will come.
    closed: bool,
}

/// One output pipe of a program, read to end-of-file by a thread.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    shared: Arc<(Mutex<Captured>, Condvar)>,
}

impl Capture {
    /// Starts reading `pipe` on a thread. `None` (no pipe) is an empty,
    /// closed capture.
    pub(crate) fn start(pipe: Option<impl Read + Send + 'static>) -> Capture {
        let capture = Capture {
            shared: Arc::new((Mutex::new(Captured::default()), Condvar::new())),
        };
        match pipe {
            Some(pipe) => {
                let writer = capture.clone();
                thread::spawn(move || writer.read_to_end(pipe));
            }
            None => capture.update(|captured| captured.closed = true),
        }
        capture
    }

    /// The reader thread: appends every chunk and wakes the waiters.
    fn read_to_end(&self, mut pipe: impl Read) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.update(|captured| {
                    let room = OUTPUT_LIMIT.saturating_sub(captured.bytes.len());
                    captured.bytes.extend_from_slice(&chunk[..n.min(room)]);
                }),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.update(|captured| captured.closed = true);
    }

    /// Changes the captured state and wakes everyone waiting on it.
    fn update(&self, change: impl FnOnce(&mut Captured)) {
        let (lock, changed) = &*self.shared;
        change(&mut lock_ignoring_poison(lock));
        changed.notify_all();
    }

    /// The bytes read so far.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        lock_ignoring_poison(&self.shared.0).bytes.clone()
    }

    /// Waits until `found` holds for the bytes read so far, the pipe closes or
    /// `deadline` passes. Returns whether `found` held.
    pub(crate) fn wait_for(&self, deadline: Instant, found: impl Fn(&[u8]) -> bool) -> bool {
        let (lock, changed) = &*self.shared;
        let mut captured = lock_ignoring_poison(lock);
        loop {
            if found(&captured.bytes) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if captured.closed || left.is_zero() {
                return false;
            }
            captured = changed
                .wait_timeout(captured, left)
                .unwrap_or_else(|poison| poison.into_inner())
                .0;
        }
    }

    /// Everything read once the pipe has closed, or what was read by
    /// `deadline`; the flag says whether the pipe had closed.
    pub(crate) fn finish(&self, deadline: Instant) -> (Vec<u8>, bool) {
        self.wait_for(deadline, |_| false);
        let captured = lock_ignoring_poison(&self.shared.0);
        (captured.bytes.clone(), captured.closed)
    }
}

/// A reader thread never panics while holding the lock, but a poisoned lock
/// must not hide a program's output either.
fn lock_ignoring_poison(lock: &Mutex<Captured>) -> MutexGuard<'_, Captured> {
    lock.lock().unwrap_or_else(|poison| poison.into_inner())
}
