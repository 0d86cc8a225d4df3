//! What "ready" means: non-blocking descriptors, `poll`, `select`, and
//! `epoll` level- and edge-triggered, on pipes and socket pairs.
//!
//! `cargo run --example readiness`

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::TimeVal;
use nix::unistd::{self, pipe};

fn main() -> anyhow::Result<()> {
    nonblocking()?;
    polling()?;
    selecting()?;
    edges()?;
    hang_ups()?;
    one_shot()?;
    refusals()?;
    partial_writes()?;
    exclusive()?;
    Ok(())
}

/// One line of the example's output: a label, then what happened.
fn show(label: &str, what: impl std::fmt::Display) {
    println!("{label:<40}{what}");
}

// ANCHOR: nonblocking
/// Sets `O_NONBLOCK` on `fd`, keeping its other status flags: `F_GETFL`,
/// then `F_SETFL` with the flag added. (`F_SETFL` with `O_NONBLOCK` alone
/// would clear `O_APPEND`, say.) The flag belongs to the open file
/// description, so every descriptor that shares it (a `dup`, a child's
/// copy) becomes non-blocking too.
fn set_nonblocking(fd: &impl AsFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn nonblocking() -> anyhow::Result<()> {
    let (reader, writer) = pipe()?;
    set_nonblocking(&reader)?;
    let mut buffer = [0; 64];
    show(
        "read, empty pipe, a writer open",
        format!("{:?}", unistd::read(&reader, &mut buffer)),
    );
    unistd::write(&writer, b"hello")?;
    show(
        "read after 5 bytes came",
        format!("{:?}", unistd::read(&reader, &mut buffer)),
    );
    drop(writer);
    show(
        "read after the writer closed",
        format!("{:?}", unistd::read(&reader, &mut buffer)),
    );
    Ok(())
}
// ANCHOR_END: nonblocking

// ANCHOR: poll
/// `revents` of one `poll` of `fd` for `POLLIN`, timeout 0 (just look).
fn poll_now(fd: &impl AsFd) -> nix::Result<PollFlags> {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO)?;
    Ok(fds[0].revents().unwrap_or(PollFlags::empty()))
}

fn polling() -> anyhow::Result<()> {
    let (reader, writer) = pipe()?;
    set_nonblocking(&reader)?;
    show("poll, empty pipe", format!("{:?}", poll_now(&reader)?));
    unistd::write(&writer, b"hello")?;
    show("poll after a write", format!("{:?}", poll_now(&reader)?));
    drop(writer);
    show(
        "poll after the writer closed",
        format!("{:?}", poll_now(&reader)?),
    );
    let mut buffer = [0; 64];
    while unistd::read(&reader, &mut buffer)? > 0 {}
    show(
        "poll after reading to the end",
        format!("{:?}", poll_now(&reader)?),
    );
    show(
        "and again: hung up for ever",
        format!("{:?}", poll_now(&reader)?),
    );
    Ok(())
}
// ANCHOR_END: poll

// ANCHOR: select
fn selecting() -> anyhow::Result<()> {
    let (reader, writer) = pipe()?;
    unistd::write(&writer, b"x")?;
    let mut readable = FdSet::new();
    readable.insert(reader.as_fd());
    let mut timeout = TimeVal::new(0, 0);
    let ready = select(None, &mut readable, None, None, &mut timeout)?;
    show("select: ready descriptors", ready);
    show(
        "select: the pipe in the set",
        readable.contains(reader.as_fd()),
    );
    // An fd_set is a bitmap of FD_SETSIZE bits: a descriptor numbered
    // FD_SETSIZE or more does not fit (nix panics; C writes past the end).
    show("FD_SETSIZE", FD_SETSIZE);
    Ok(())
}
// ANCHOR_END: select

// ANCHOR: edges
/// How many events one `epoll_wait` with timeout 0 returns.
fn ready(epoll: &Epoll) -> nix::Result<usize> {
    let mut events = [EpollEvent::empty(); 4];
    epoll.wait(&mut events, EpollTimeout::ZERO)
}

fn edges() -> anyhow::Result<()> {
    let (mut near, far) = UnixStream::pair()?;
    far.set_nonblocking(true)?;
    let level = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let edge = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    level.add(&far, EpollEvent::new(EpollFlags::EPOLLIN, 1))?;
    edge.add(
        &far,
        EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, 1),
    )?;
    near.write_all(b"0123456789")?;
    show(
        "10 bytes came: level, edge",
        format!("{}, {}", ready(&level)?, ready(&edge)?),
    );
    show(
        "asked again: level, edge",
        format!("{}, {}", ready(&level)?, ready(&edge)?),
    );
    let mut buffer = [0; 4];
    unistd::read(&far, &mut buffer)?;
    show(
        "4 read, 6 left: level, edge",
        format!("{}, {}", ready(&level)?, ready(&edge)?),
    );
    near.write_all(b"!")?;
    show(
        "1 more came: level, edge",
        format!("{}, {}", ready(&level)?, ready(&edge)?),
    );
    Ok(())
}
// ANCHOR_END: edges

// ANCHOR: hang_ups
/// The events one `epoll_wait` reports for its only descriptor.
fn events(epoll: &Epoll) -> nix::Result<EpollFlags> {
    let mut events = [EpollEvent::empty(); 1];
    let n = epoll.wait(&mut events, EpollTimeout::ZERO)?;
    Ok(if n == 1 {
        events[0].events()
    } else {
        EpollFlags::empty()
    })
}

fn hang_ups() -> anyhow::Result<()> {
    let (near, far) = UnixStream::pair()?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(
        &far,
        EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, 2),
    )?;
    near.shutdown(std::net::Shutdown::Write)?;
    show(
        "peer shut down its writing",
        format!("{:?}", events(&epoll)?),
    );
    drop(near);
    show("peer closed", format!("{:?}", events(&epoll)?));
    Ok(())
}
// ANCHOR_END: hang_ups

// ANCHOR: one_shot
fn one_shot() -> anyhow::Result<()> {
    let (mut near, far) = UnixStream::pair()?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let once = EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT;
    epoll.add(&far, EpollEvent::new(once, 3))?;
    near.write_all(b"a")?;
    show("EPOLLONESHOT: first wait", ready(&epoll)?);
    near.write_all(b"b")?;
    show("after more data", ready(&epoll)?);
    epoll.modify(&far, &mut EpollEvent::new(once, 3))?;
    show("after EPOLL_CTL_MOD re-arms it", ready(&epoll)?);
    Ok(())
}
// ANCHOR_END: one_shot

// ANCHOR: refusals
fn refusals() -> anyhow::Result<()> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let file = File::open("/etc/hostname").or_else(|_| File::open("/dev/null"))?;
    let added = epoll.add(&file, EpollEvent::new(EpollFlags::EPOLLIN, 4));
    show("epoll_ctl ADD of a regular file", format!("{added:?}"));
    // Closing a descriptor removes it from the interest list only when no
    // other descriptor refers to the same open file.
    let (mut near, far) = UnixStream::pair()?;
    epoll.add(&far, EpollEvent::new(EpollFlags::EPOLLIN, 5))?;
    let copy: OwnedFd = far.as_fd().try_clone_to_owned()?;
    let number = far.as_raw_fd();
    drop(far);
    near.write_all(b"z")?;
    let mut events = [EpollEvent::empty(); 1];
    let n = epoll.wait(&mut events, EpollTimeout::ZERO)?;
    show("closed, but a dup lives: events", n);
    show("  with the closed one's token", events[0].data());
    // SAFETY: epoll_ctl takes no pointer for EPOLL_CTL_DEL; the number is
    // closed, which is the point.
    let deleted = Errno::result(unsafe {
        libc::epoll_ctl(
            epoll.0.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            number,
            std::ptr::null_mut(),
        )
    });
    show("EPOLL_CTL_DEL of the closed number", format!("{deleted:?}"));
    drop(copy);
    show("after the dup is closed too: events", ready(&epoll)?);
    Ok(())
}
// ANCHOR_END: refusals

// ANCHOR: partial
fn partial_writes() -> anyhow::Result<()> {
    let (near, _far) = UnixStream::pair()?;
    near.set_nonblocking(true)?;
    let big = vec![b'x'; 4 << 20];
    let first = unistd::write(&near, &big);
    show("write 4 MiB, nobody reading", format!("{first:?}"));
    let second = unistd::write(&near, &big);
    show("write again", format!("{second:?}"));
    show("EAGAIN == EWOULDBLOCK", Errno::EAGAIN == Errno::EWOULDBLOCK);
    Ok(())
}
// ANCHOR_END: partial

// ANCHOR: exclusive
fn exclusive() -> anyhow::Result<()> {
    let (_near, far) = UnixStream::pair()?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
    show(
        "ADD with EPOLLEXCLUSIVE",
        format!("{:?}", epoll.add(&far, EpollEvent::new(flags, 6))),
    );
    let modified = epoll.modify(&far, &mut EpollEvent::new(flags, 6));
    show("then EPOLL_CTL_MOD", format!("{modified:?}"));
    Ok(())
}
// ANCHOR_END: exclusive
