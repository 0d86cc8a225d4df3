//! The parts of the [`Relay`] that are not tasks (given: you do not need to
//! change this file): removing a client, writing what waits, the idle
//! clock, the announcement queue, pausing at the descriptor limit, and the
//! last words. Tasks 5 and 6 write the rest in `lib.rs`.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::epoll::{EpollEvent, EpollFlags};

use super::wire::{FROM_RELAY, MAX_MESSAGE};
use super::{Full, LISTENER, Relay, Tally};

// ANCHOR: dropped
/// Why the relay dropped a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Its outbox was full: it does not read what the others say.
    TooSlow(Full),
    /// It sent no whole message for this long.
    Idle(Duration),
    /// It broke the protocol; the reason.
    Broken(String),
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::TooSlow(full) => write!(f, "too slow: {full}"),
            Dropped::Idle(idle) => write!(f, "idle: no message for {} ms", idle.as_millis()),
            Dropped::Broken(why) => write!(f, "broke the protocol: {why}"),
        }
    }
}
// ANCHOR_END: dropped

/// How often the timerfd expires for an idle timeout of `idle`: a quarter
/// of it, between 10 ms and 1 s. A silent client is closed between `idle`
/// and `idle` plus one tick after its last message.
pub fn tick(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

impl Relay {
    /// What the relay has done so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// How many clients are connected.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    // ANCHOR: remove_client
    /// Removes client `number`, if it is still there: deletes its socket
    /// from the interest list (`EPOLL_CTL_DEL`), closes it (dropping the
    /// `UnixStream`), and, if `why` is given, says why on standard error
    /// (`relay: client 7: dropped: too slow: …`) and counts it. A client
    /// that left on its own (`why` is `None`) goes without a word.
    ///
    /// Closing a descriptor removes it from every epoll interest list only
    /// once **no** descriptor refers to its open file any more (a `dup`, a
    /// child's copy after `fork`): the explicit `EPOLL_CTL_DEL` leaves
    /// nothing to chance.
    pub fn remove_client(&mut self, number: u32, why: Option<Dropped>) {
        let Some(client) = self.clients.remove(&number) else {
            return;
        };
        let _ = self.epoll.delete(&client.stream);
        drop(client);
        if let Some(why) = why {
            eprintln!("relay: client {number}: dropped: {why}");
            match why {
                Dropped::TooSlow(_) => self.tally.too_slow += 1,
                Dropped::Idle(_) => self.tally.idle += 1,
                Dropped::Broken(_) => self.tally.broken += 1,
            }
        }
        if !self.accepting {
            self.resume_accepting();
        }
    }
    // ANCHOR_END: remove_client

    // ANCHOR: flush_clients
    /// Writes what waits for each client ([`super::Outbox::flush`]), up to
    /// what its socket takes. A client whose write fails (`EPIPE`,
    /// `ECONNRESET`: it has gone) is removed without a word; what it did
    /// not read is lost, as it chose.
    pub fn flush_clients(&mut self) {
        let mut gone = Vec::new();
        for (&number, client) in &mut self.clients {
            if !client.outbox.is_empty() && client.outbox.flush(&mut client.stream).is_err() {
                gone.push(number);
            }
        }
        for number in gone {
            self.remove_client(number, None);
        }
    }
    // ANCHOR_END: flush_clients

    /// Closes every client that has sent no whole message for
    /// `settings.idle` (a client that sends half a frame and stops is
    /// idle too), with the reason `Dropped::Idle`.
    pub fn close_idle_clients(&mut self) {
        let now = Instant::now();
        let idle = self.settings.idle;
        let silent: Vec<u32> = self
            .clients
            .values()
            .filter(|client| now.duration_since(client.heard) >= idle)
            .map(|client| client.number)
            .collect();
        for number in silent {
            self.remove_client(number, Some(Dropped::Idle(idle)));
        }
    }

    /// Takes every message waiting on the announcement queue (until
    /// `EAGAIN`) and passes each on to every client, from the relay
    /// ([`FROM_RELAY`]).
    pub fn pass_on_announcements(&mut self) -> anyhow::Result<()> {
        let mut buffer = vec![0; MAX_MESSAGE];
        loop {
            let Some(queue) = &self.queue else {
                return Ok(());
            };
            match queue.receive(&mut buffer)? {
                Some(length) => self.broadcast(FROM_RELAY, &buffer[..length]),
                None => return Ok(()),
            }
        }
    }

    /// Stops watching the listener after `accept` failed for want of a
    /// descriptor (`EMFILE`, `ENFILE`). Left in the interest list, the
    /// listener would stay ready, and `epoll_wait` return at once, for
    /// ever, while `accept` keeps failing: a loop that spins until a
    /// client leaves. The connections wait in the listen queue meanwhile.
    pub fn pause_accepting(&mut self, error: &io::Error) {
        let paused = self
            .epoll
            .modify(
                self.listener.socket(),
                &mut EpollEvent::new(EpollFlags::empty(), LISTENER),
            )
            .context("epoll_ctl(EPOLL_CTL_MOD) the listener");
        match paused {
            Ok(()) => {
                self.accepting = false;
                eprintln!(
                    "relay: accept: {error}: no new client until one leaves ({} connected)",
                    self.clients.len()
                );
            }
            Err(why) => eprintln!("relay: accept: {error}; and {why:#}"),
        }
    }

    /// Watches the listener again (`EPOLLIN | EPOLLET`). `EPOLL_CTL_MOD`
    /// looks at the socket at once: connections that waited meanwhile make
    /// it ready, and the next `epoll_wait` reports it.
    fn resume_accepting(&mut self) {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLET;
        match self.epoll.modify(
            self.listener.socket(),
            &mut EpollEvent::new(flags, LISTENER),
        ) {
            Ok(()) => self.accepting = true,
            Err(errno) => eprintln!("relay: epoll_ctl(EPOLL_CTL_MOD) the listener: {errno}"),
        }
    }

    /// Writes to each client once more what waits for it (as much as its
    /// socket takes now: the relay does not wait for anyone), then closes
    /// every client.
    pub fn close_all(&mut self) {
        self.flush_clients();
        let numbers: Vec<u32> = self.clients.keys().copied().collect();
        for number in numbers {
            self.remove_client(number, None);
        }
    }
}

impl fmt::Display for Tally {
    /// Two lines: who came and what was said, then who was dropped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "relay: {} client(s); {} message(s) and {} announcement(s) passed on, in {} \
             copies",
            self.clients, self.messages, self.announcements, self.copies
        )?;
        write!(
            f,
            "relay: dropped {} too slow, {} idle, {} for breaking the protocol",
            self.too_slow, self.idle, self.broken
        )
    }
}
