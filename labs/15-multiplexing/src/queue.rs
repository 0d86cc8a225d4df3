//! The relay's announcement queue: a POSIX message queue (chapter 09) that
//! any process of this user may write to, and whose messages the relay
//! passes on to every client (given: you do not need to change this file).
//!
//! On Linux a message queue descriptor is a file descriptor, so the relay
//! waits for the queue in the same `epoll_wait` as for its sockets. A
//! System V queue (chapter 05) is an identifier, not a descriptor: no
//! `poll`, `select` or `epoll` can wait for one.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::mqueue::{self, MQ_OFlag, MqAttr, MqdT};
use nix::sys::stat::Mode;

use super::wire::MAX_MESSAGE;

/// How many messages the queue holds: 10 is the most an unprivileged
/// process may ask for by default (`/proc/sys/fs/mqueue/msg_max`).
pub const QUEUE_DEPTH: i64 = 10;

// ANCHOR: queue
/// A POSIX message queue this process created, opened for reading in
/// non-blocking mode; closed (`mq_close`) and removed (`mq_unlink`) when
/// dropped.
#[derive(Debug)]
pub struct AnnounceQueue {
    mqd: MqdT,
    name: String,
}

impl AnnounceQueue {
    /// Creates the queue `name` (which starts with `/`), mode 0600, for
    /// [`QUEUE_DEPTH`] messages of at most [`MAX_MESSAGE`] bytes:
    /// `O_CREAT | O_EXCL` (a queue of that name already there is an error,
    /// `EEXIST`), `O_RDONLY | O_NONBLOCK`. (Linux sets close-on-exec on
    /// every queue descriptor by itself.)
    pub fn create(name: &str) -> anyhow::Result<AnnounceQueue> {
        if !name.starts_with('/') || name.len() < 2 || name[1..].contains('/') {
            bail!("{name:?}: a queue name is a / and then a name without /");
        }
        let flags =
            MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK;
        let attr = MqAttr::new(0, QUEUE_DEPTH, MAX_MESSAGE as i64, 0);
        let mqd = mqueue::mq_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr))
            .with_context(|| format!("mq_open {name}"))?;
        Ok(AnnounceQueue {
            mqd,
            name: name.to_string(),
        })
    }

    /// Takes the oldest message into `buffer` (at least [`MAX_MESSAGE`]
    /// bytes) and returns its length; `None` when the queue is empty
    /// (`EAGAIN`).
    pub fn receive(&self, buffer: &mut [u8]) -> anyhow::Result<Option<usize>> {
        let mut priority = 0;
        loop {
            return match mqueue::mq_receive(&self.mqd, buffer, &mut priority) {
                Ok(length) => Ok(Some(length)),
                Err(Errno::EAGAIN) => Ok(None),
                Err(Errno::EINTR) => continue,
                Err(errno) => Err(errno).with_context(|| format!("mq_receive {}", self.name)),
            };
        }
    }
}

impl AsFd for AnnounceQueue {
    /// The queue's descriptor, for `epoll_ctl`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.mqd.as_fd()
    }
}

impl Drop for AnnounceQueue {
    fn drop(&mut self) {
        // SAFETY: the descriptor came from mq_open, belongs to this value
        // alone, and is closed here once.
        unsafe { libc::mq_close(self.mqd.as_raw_fd()) };
        let _ = mqueue::mq_unlink(self.name.as_str());
    }
}
// ANCHOR_END: queue
