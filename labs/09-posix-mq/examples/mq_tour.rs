//! A tour of POSIX message queues (POSIX 消息队列) in one process: a queue
//! created with a capacity, messages sorted by priority, what `mq_getattr`
//! says, `O_NONBLOCK` and `EAGAIN`, a deadline and `ETIMEDOUT`, both kinds
//! of `EMSGSIZE`, `epoll` on the queue's descriptor, and a queue that lives
//! on after `mq_unlink`.
//!
//! Usage (inside `labs/09-posix-mq`): `cargo run --example mq_tour`
//!
//! The queue's name carries the process ID, so that two tours never meet;
//! it is removed at the end whatever happens in between. The output is the
//! same on every run.

use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::Context;
use nix::errno::Errno;
use nix::mqueue::{
    MQ_OFlag, MqAttr, MqdT, mq_close, mq_getattr, mq_open, mq_receive, mq_remove_nonblock, mq_send,
    mq_set_nonblock, mq_timedreceive, mq_unlink,
};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};

fn main() -> anyhow::Result<()> {
    let name = format!("/mq-tour.{}", std::process::id());
    // ANCHOR: create
    // At most 4 messages of at most 64 bytes, mode 0600, and EEXIST if the
    // name is taken. With O_CREAT, always give nix an MqAttr (see the lab).
    let attr = MqAttr::new(0, 4, 64, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
    let mode = Mode::S_IRUSR | Mode::S_IWUSR;
    let queue = mq_open(name.as_str(), flags, mode, Some(&attr))
        .with_context(|| format!("mq_open {name}"))?;
    // ANCHOR_END: create
    let result = tour(&name, &queue);
    // ANCHOR: close
    // nix's MqdT does not close itself. The tour unlinked the name already
    // if it got that far: ENOENT is expected then.
    mq_close(queue).context("mq_close")?;
    match mq_unlink(name.as_str()) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(errno) => return Err(errno).context("mq_unlink"),
    }
    // ANCHOR_END: close
    result
}

fn tour(name: &str, queue: &MqdT) -> anyhow::Result<()> {
    // ANCHOR: priorities
    for (priority, text) in [(1, "low"), (9, "urgent"), (1, "low again"), (5, "normal")] {
        mq_send(queue, text.as_bytes(), priority).context("mq_send")?;
    }
    let attr = mq_getattr(queue).context("mq_getattr")?;
    println!(
        "mq_maxmsg {}, mq_msgsize {}, mq_curmsgs {}",
        attr.maxmsg(),
        attr.msgsize(),
        attr.curmsgs()
    );
    // The buffer must hold mq_msgsize bytes, however short the messages.
    let mut buffer = vec![0; usize::try_from(attr.msgsize())?];
    for _ in 0..attr.curmsgs() {
        let mut priority = 0;
        let length = mq_receive(queue, &mut buffer, &mut priority).context("mq_receive")?;
        println!(
            "priority {priority}: {}",
            String::from_utf8_lossy(&buffer[..length])
        );
    }
    // ANCHOR_END: priorities

    // ANCHOR: errors
    mq_set_nonblock(queue).context("mq_setattr")?;
    show(
        "mq_receive, O_NONBLOCK, empty queue",
        mq_receive(queue, &mut buffer, &mut 0),
    );
    mq_remove_nonblock(queue).context("mq_setattr")?;
    // A deadline is a time on CLOCK_REALTIME, not a duration.
    let now = clock_gettime(ClockId::CLOCK_REALTIME)?;
    let deadline = now + TimeSpec::from(Duration::from_millis(100));
    show(
        "mq_timedreceive, empty queue, deadline in 100 ms",
        mq_timedreceive(queue, &mut buffer, &mut 0, &deadline),
    );
    show("mq_send of 65 bytes", mq_send(queue, &[b'x'; 65], 0));
    mq_send(queue, b"short", 0).context("mq_send")?;
    show(
        "mq_receive of 5 bytes into a 63-byte buffer",
        mq_receive(queue, &mut buffer[..63], &mut 0),
    );
    // ANCHOR_END: errors

    // ANCHOR: epoll
    // On Linux the queue descriptor is a file descriptor: epoll watches it.
    // "short" is still in the queue (EMSGSIZE left it), and there is room.
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?;
    let interest = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT;
    epoll
        .add(queue.as_fd(), EpollEvent::new(interest, 0))
        .context("epoll_ctl")?;
    let mut events = [EpollEvent::empty()];
    let ready = epoll.wait(&mut events, 0u16).context("epoll_wait")?;
    println!("epoll_wait: {ready} ready, {:?}", events[0].events());
    // ANCHOR_END: epoll

    // ANCHOR: unlinked
    // The name goes at once; the queue lives while a descriptor is open.
    mq_unlink(name).context("mq_unlink")?;
    let again = mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None);
    show("mq_open after mq_unlink", again.and_then(mq_close));
    mq_send(queue, b"still here", 0).context("mq_send")?;
    for _ in 0..2 {
        let length = mq_receive(queue, &mut buffer, &mut 0).context("mq_receive")?;
        println!("received: {}", String::from_utf8_lossy(&buffer[..length]));
    }
    // ANCHOR_END: unlinked
    Ok(())
}

/// Prints what a call that should fail said.
fn show<T>(what: &str, result: nix::Result<T>) {
    match result {
        Ok(_) => println!("{what}: succeeded (unexpected)"),
        Err(errno) => println!("{what}: {errno}"),
    }
}
