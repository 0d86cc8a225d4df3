//! One `epoll` loop, one thread, every kind of descriptor the course has
//! met: a pipe (chapter 02), a FIFO (04), a Unix domain socket (13), a POSIX
//! message queue (09), an eventfd, a signalfd and a timerfd. A helper thread
//! plays the outside world, one step at a time; the loop reports each event
//! as it comes. (A System V queue, chapter 05, cannot be here: it is an
//! identifier, not a descriptor.)
//!
//! `cargo run --example one_loop`

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use nix::mqueue::{self, MQ_OFlag, MqAttr};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{self, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::sys::timer::Expiration;
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::unistd::{self, Pid};

// ANCHOR: tokens
const PIPE: u64 = 1;
const FIFO: u64 = 2;
const SOCKET: u64 = 3;
const QUEUE: u64 = 4;
const EVENTFD: u64 = 5;
const SIGNALS: u64 = 6;
const TIMER: u64 = 7;
// ANCHOR_END: tokens

fn main() -> anyhow::Result<()> {
    // ANCHOR: setup
    // Signals first: blocked in this thread before any other starts, so
    // that every thread has them blocked and they wait for the signalfd.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGUSR1);
    mask.add(Signal::SIGTERM);
    mask.thread_block()?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;

    let (pipe_reader, pipe_writer) = unistd::pipe()?;
    let fifo_path = std::env::temp_dir().join(format!("one-loop-{}.fifo", std::process::id()));
    unistd::mkfifo(&fifo_path, Mode::S_IRUSR | Mode::S_IWUSR)?;
    let fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)?;
    // A writer of our own that never writes (chapter 04's dummy writer):
    // without it, the FIFO hangs up when the helper's writer closes, and a
    // FIFO that has hung up is readable for ever.
    let _dummy_writer = OpenOptions::new().write(true).open(&fifo_path)?;
    let (socket, peer) = UnixStream::pair()?;
    let queue_name = format!("/one-loop-{}", std::process::id());
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK;
    let attr = MqAttr::new(0, 4, 64, 0);
    let queue = mqueue::mq_open(
        queue_name.as_str(),
        flags,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )?;
    let eventfd = EventFd::from_value_and_flags(
        0,
        EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_SEMAPHORE,
    )?;
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;

    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let watched: [(&dyn AsFd, u64); 7] = [
        (&pipe_reader, PIPE),
        (&fifo, FIFO),
        (&socket, SOCKET),
        (&queue, QUEUE),
        (&eventfd, EVENTFD),
        (&signals, SIGNALS),
        (&timer, TIMER),
    ];
    for (fd, token) in watched {
        epoll.add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))?;
    }
    // ANCHOR_END: setup

    // The helper rings the eventfd through a descriptor of its own for it.
    let bell = eventfd.as_fd().try_clone_to_owned()?;
    let (ack, acks) = mpsc::channel::<()>();
    let world = thread::spawn({
        let fifo_path = fifo_path.clone();
        let queue_name = queue_name.clone();
        move || outside_world(pipe_writer, &fifo_path, peer, &queue_name, bell, acks)
    });

    // ANCHOR: loop
    let mut events = [EpollEvent::empty(); 8];
    let mut buffer = [0; 256];
    'serve: loop {
        let ready = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(ready) => ready,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("epoll_wait"),
        };
        for event in &events[..ready] {
            let said = match event.data() {
                PIPE => text("pipe", unistd::read(&pipe_reader, &mut buffer)?, &buffer),
                FIFO => text("FIFO", unistd::read(&fifo, &mut buffer)?, &buffer),
                SOCKET => text("socket", unistd::read(&socket, &mut buffer)?, &buffer),
                QUEUE => {
                    let mut priority = 0;
                    let n = mqueue::mq_receive(&queue, &mut buffer, &mut priority)?;
                    text("POSIX queue", n, &buffer)
                }
                EVENTFD => format!("eventfd: took {}", eventfd.read()?),
                TIMER => {
                    let mut count = [0; 8];
                    unistd::read(&timer, &mut count)?;
                    format!("timerfd: {} expiration(s)", u64::from_ne_bytes(count))
                }
                SIGNALS => match signals.read_signal()? {
                    Some(info) if info.ssi_signo == Signal::SIGTERM as u32 => {
                        println!("signalfd: SIGTERM: the loop ends");
                        break 'serve;
                    }
                    Some(info) => {
                        // Arm the timer: one expiry, 20 ms from now.
                        let once = Expiration::OneShot(TimeSpec::from(Duration::from_millis(20)));
                        timer.set(once, TimerSetTimeFlags::empty())?;
                        let name = Signal::try_from(info.ssi_signo as i32)?;
                        let own = info.ssi_pid == std::process::id();
                        let from = if own { "this process" } else { "another" };
                        format!("signalfd: {name} from {from}; timer armed")
                    }
                    None => continue,
                },
                _ => continue,
            };
            println!("{said}");
            let _ = ack.send(());
        }
    }
    // ANCHOR_END: loop

    world
        .join()
        .map_err(|_| anyhow::anyhow!("the helper thread panicked"))??;
    fs::remove_file(&fifo_path)?;
    mqueue::mq_unlink(queue_name.as_str())?;
    // SAFETY: the descriptor came from mq_open and is closed once.
    unsafe { libc::mq_close(std::os::fd::AsRawFd::as_raw_fd(&queue)) };
    Ok(())
}

/// `KIND: "TEXT"`.
fn text(kind: &str, n: usize, buffer: &[u8]) -> String {
    format!("{kind}: {:?}", String::from_utf8_lossy(&buffer[..n]))
}

// ANCHOR: world
/// The helper thread: one thing on each descriptor, each once the loop has
/// reported the one before (`acks`).
fn outside_world(
    pipe_writer: OwnedFd,
    fifo_path: &std::path::Path,
    mut peer: UnixStream,
    queue_name: &str,
    bell: OwnedFd,
    acks: mpsc::Receiver<()>,
) -> anyhow::Result<(OwnedFd, UnixStream)> {
    let wait = |n| -> anyhow::Result<()> {
        for _ in 0..n {
            acks.recv().context("the loop stopped")?;
        }
        Ok(())
    };
    unistd::write(&pipe_writer, b"through a pipe")?;
    wait(1)?;
    OpenOptions::new()
        .write(true)
        .open(fifo_path)?
        .write_all(b"through a FIFO")?;
    wait(1)?;
    peer.write_all(b"through a socket")?;
    wait(1)?;
    let queue = mqueue::mq_open(queue_name, MQ_OFlag::O_WRONLY, Mode::empty(), None)?;
    mqueue::mq_send(&queue, b"through a queue", 0)?;
    // SAFETY: the descriptor came from mq_open and is closed once.
    unsafe { libc::mq_close(std::os::fd::AsRawFd::as_raw_fd(&queue)) };
    wait(1)?;
    // 3 on the semaphore: the loop takes 1 at a time, three times.
    unistd::write(&bell, &3u64.to_ne_bytes())?;
    wait(3)?;
    signal::kill(Pid::this(), Signal::SIGUSR1)?;
    wait(2)?;
    signal::kill(Pid::this(), Signal::SIGTERM)?;
    Ok((pipe_writer, peer))
}
// ANCHOR_END: world
