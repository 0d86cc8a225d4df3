//! POSIX IPC names that belong to a test rather than to the program under
//! test: queues (or shared memory objects, or semaphores) that a test
//! prepares for the program, or that several runs of one scenario create,
//! use and remove in turn.

use std::ffi::{CString, OsStr};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Numbers the prefixes of kept names. They start far above the numbers
/// of sandbox prefixes (which count from 0 in each test process), so that a
/// kept name never starts with a sandbox's prefix.
static NEXT_KEPT: AtomicUsize = AtomicUsize::new(1_000_000);

/// A POSIX IPC name, `/wb<pid>x<n>-name`, for an object that outlives the
/// runs of one test.
///
/// The leak check after each run looks for the names of the run's sandbox
/// only ([`Sandbox::posix_name`](crate::Sandbox::posix_name)), by that
/// prefix. A kept name has a prefix of its own, so a program may leave the
/// object behind between runs, as `create` does before `send`. Dropping
/// the `KeptName` removes whatever is left under the name (a message queue,
/// a shared memory object, a named semaphore), so a test that fails half-way
/// leaves nothing behind. The prefix has the form `wb<pid>x<n>-` of every
/// grader name, which `cargo workbook clean` recognises.
///
/// Transcripts show a sandbox's prefix as `[PREFIX]-`, but not this one: a
/// suite that prints kept names filters `wb\d+x\d+-` itself. Failure
/// messages show both as `[PREFIX]-` (see [`Failure`](crate::Failure)).
#[derive(Debug)]
pub struct KeptName {
    name: String,
}

impl KeptName {
    /// A new name, `/wb<pid>x<n>-name`, that no other test uses.
    pub fn new(name: &str) -> KeptName {
        let number = NEXT_KEPT.fetch_add(1, Ordering::Relaxed);
        KeptName {
            name: format!("/wb{}x{number}-{name}", std::process::id()),
        }
    }

    /// The name, with its leading slash.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl AsRef<OsStr> for KeptName {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(&self.name)
    }
}

impl fmt::Display for KeptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for KeptName {
    /// Removes the queue, shared memory object or semaphore of this name,
    /// if there is one.
    fn drop(&mut self) {
        let Ok(name) = CString::new(self.name.as_str()) else {
            return;
        };
        // SAFETY: each call takes a valid NUL-terminated name; a name with
        // no such object makes it fail with ENOENT, which is fine.
        unsafe {
            libc::mq_unlink(name.as_ptr());
            libc::shm_unlink(name.as_ptr());
            libc::sem_unlink(name.as_ptr());
        }
    }
}
