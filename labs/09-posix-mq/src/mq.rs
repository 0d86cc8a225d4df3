//! Given: the owned queue descriptor that every task passes around, and the
//! one `struct sigevent` that the `libc` crate cannot spell (you do not need
//! to change this file).

use std::mem::{MaybeUninit, align_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;

use nix::mqueue::MqdT;

// ANCHOR: queue
/// An open message queue: the message queue descriptor (`mqd_t`) that
/// `mq_open` returned, closed with `mq_close` when the value is dropped.
///
/// On Linux a message queue descriptor **is a file descriptor**, of a file
/// in the kernel's `mqueue` file system: `fstat` works on it, `poll` and
/// `epoll` can wait on it, and `mq_open` sets its close-on-exec flag. POSIX
/// only promises an opaque `mqd_t`, so portable programs use the `mq_*`
/// calls alone.
///
/// nix's `MqdT` does not close itself: dropping one leaks the descriptor
/// (and, with it, any notification registered through it). `Queue` closes
/// it exactly once. Closing never removes the queue: only `mq_unlink` does.
#[derive(Debug)]
pub struct Queue {
    mqd: MqdT,
}

impl Queue {
    /// Takes charge of a descriptor `mq_open` returned.
    pub fn new(mqd: MqdT) -> Queue {
        Queue { mqd }
    }

    /// The descriptor, for nix's `mq_*` functions.
    pub fn mqd(&self) -> &MqdT {
        &self.mqd
    }
}

impl AsFd for Queue {
    /// The descriptor as a file descriptor, for `poll` and `fstat`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.mqd.as_fd()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: the descriptor came from mq_open, belongs to this value
        // alone, and is closed here once. Nothing to do if it fails.
        unsafe { libc::mq_close(self.mqd.as_raw_fd()) };
    }
}
// ANCHOR_END: queue

// ANCHOR: thread_notification
/// The `struct sigevent` that asks `mq_notify` for notification **by
/// thread** (`SIGEV_THREAD`): when a message arrives on the empty queue,
/// glibc calls `function` in a new thread of this process.
///
/// C fills in two fields that the `libc` crate does not declare (its
/// `sigevent` only names the thread ID of Linux's `SIGEV_THREAD_ID`):
///
/// ```c
/// struct sigevent ev = {
///     .sigev_notify = SIGEV_THREAD,
///     .sigev_notify_function = function,  /* void function(union sigval) */
///     .sigev_notify_attributes = NULL,    /* default thread attributes */
/// };
/// ```
///
/// This builds the same bytes, in glibc's layout: `sigev_value`,
/// `sigev_signo`, `sigev_notify`, then the function and the attributes.
/// `sigev_value` is NULL: `function` finds what it needs in a `static`,
/// which outlives any notification.
pub fn thread_notification(function: extern "C" fn(libc::sigval)) -> libc::sigevent {
    let mut event = MaybeUninit::<libc::sigevent>::zeroed();
    let thread = ThreadSigevent {
        sigev_value: libc::sigval {
            sival_ptr: ptr::null_mut(),
        },
        sigev_signo: 0,
        sigev_notify: libc::SIGEV_THREAD,
        sigev_notify_function: function,
        sigev_notify_attributes: ptr::null_mut(),
    };
    // SAFETY: ThreadSigevent is no larger and no more aligned than
    // libc::sigevent (checked below at compile time), and it is the prefix
    // of glibc's struct sigevent for SIGEV_THREAD; the rest stays zeroed.
    unsafe {
        event.as_mut_ptr().cast::<ThreadSigevent>().write(thread);
        event.assume_init()
    }
}
// ANCHOR_END: thread_notification

/// glibc's `struct sigevent` as `SIGEV_THREAD` fills it in.
#[repr(C)]
struct ThreadSigevent {
    sigev_value: libc::sigval,
    sigev_signo: libc::c_int,
    sigev_notify: libc::c_int,
    sigev_notify_function: extern "C" fn(libc::sigval),
    sigev_notify_attributes: *mut libc::pthread_attr_t,
}

const _: () = assert!(size_of::<ThreadSigevent>() <= size_of::<libc::sigevent>());
const _: () = assert!(align_of::<ThreadSigevent>() <= align_of::<libc::sigevent>());
