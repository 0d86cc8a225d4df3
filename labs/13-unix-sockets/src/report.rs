//! What the servers say about their clients (given: you do not need to
//! change this file). Task 5's `serve` makes a [`ClientReport`] for each
//! client, prints it, and adds it to a [`Tally`].

use std::fmt;
use std::io::{self, Write};

use nix::unistd::geteuid;

use super::Peer;

// ANCHOR: report
/// How a client's connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// It closed the connection between two frames: the normal end.
    Left,
    /// Its user may not use this server: the connection was closed at once.
    Refused,
    /// It broke the protocol, or the connection failed; the reason.
    Dropped(String),
}

/// What became of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientReport {
    /// The client's number: 1 for the first connection accepted, and so on.
    pub number: u64,
    /// Who the kernel says it is (`SO_PEERCRED`), if that could be read.
    pub peer: Option<Peer>,
    /// How many of its frames were answered.
    pub answered: u64,
    /// How it ended.
    pub end: End,
}

impl ClientReport {
    /// Prints the report as one line: on standard output for a client that
    /// left normally, on standard error for one refused or dropped.
    ///
    /// ```text
    /// serve: client 1 (pid 4242, your uid): 3 frame(s) answered
    /// serve: client 2 (pid 4250, uid 65534): refused: this server serves uid 1000 only
    /// serve: client 3 (pid 4251, your uid): dropped after 1 frame(s): the peer left in the middle of a frame (10 of 100 bytes)
    /// ```
    pub fn print(&self) {
        let who = match &self.peer {
            Some(peer) => format!("pid {}, {}", peer.pid, whose(peer.uid)),
            None => "credentials unknown".to_string(),
        };
        let client = format!("serve: client {} ({who})", self.number);
        // One write per line, so that lines of clients served at the same
        // time never mix; flushed, so that a test sees each at once.
        let _ = match &self.end {
            End::Left => writeln!(
                io::stdout().lock(),
                "{client}: {} frame(s) answered",
                self.answered
            )
            .and_then(|()| io::stdout().flush()),
            End::Refused => writeln!(
                io::stderr().lock(),
                "{client}: refused: this server serves uid {} only",
                geteuid()
            ),
            End::Dropped(why) => writeln!(
                io::stderr().lock(),
                "{client}: dropped after {} frame(s): {why}",
                self.answered
            ),
        };
    }
}

/// The clients of a server, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Connections accepted.
    pub clients: u64,
    /// Frames answered, over all clients.
    pub answered: u64,
    /// Clients refused for their user.
    pub refused: u64,
    /// Clients dropped for breaking the protocol or losing the connection.
    pub dropped: u64,
}

impl Tally {
    /// Adds one client's report.
    pub fn count(&mut self, report: &ClientReport) {
        self.clients += 1;
        self.answered += report.answered;
        match report.end {
            End::Left => {}
            End::Refused => self.refused += 1,
            End::Dropped(_) => self.dropped += 1,
        }
    }
}

impl fmt::Display for Tally {
    /// `3 client(s): 7 frame(s) answered, 1 refused, 1 dropped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} client(s): {} frame(s) answered, {} refused, {} dropped",
            self.clients, self.answered, self.refused, self.dropped
        )
    }
}
// ANCHOR_END: report

/// `your uid` when `uid` is this process's effective user ID, else `uid N`:
/// the same words whoever runs the program.
pub fn whose(uid: u32) -> String {
    if uid == geteuid().as_raw() {
        "your uid".to_string()
    } else {
        format!("uid {uid}")
    }
}
