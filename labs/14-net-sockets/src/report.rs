//! What the servers say about their clients, and what the UDP client says
//! about its datagrams (given: you do not need to change this file).
//! Task 5's `serve` makes a [`ClientReport`] for each client, prints it,
//! and adds it to a [`Tally`]; task 6 fills a [`UdpTally`] and a
//! [`UdpOutcome`].

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;

// ANCHOR: report
/// How a client's connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// It closed its side of the connection between two frames: the
    /// normal end of a conversation.
    Left,
    /// It broke the framing, fell silent for too long, or the connection
    /// failed; the reason.
    Dropped(String),
}

/// What became of one client of the TCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientReport {
    /// The client's number: 1 for the first connection accepted, and so on.
    pub number: u64,
    /// The client's address and port, as `accept` returned them.
    pub peer: SocketAddr,
    /// How many of its requests were answered (ERROR responses included).
    pub answered: u64,
    /// How it ended.
    pub end: End,
}

impl ClientReport {
    /// Prints the report as one line: on standard output for a client that
    /// left normally, on standard error for one that was dropped.
    ///
    /// ```text
    /// serve: client 1 (127.0.0.1:50312): 3 request(s) answered
    /// serve: client 2 (127.0.0.1:50318): dropped after 0 request(s): timed out waiting for a frame
    /// ```
    pub fn print(&self) {
        let client = format!("serve: client {} ({})", self.number, self.peer);
        // One write per line, so that lines of clients served at the same
        // time never mix; flushed, so that a test sees each at once.
        let _ = match &self.end {
            End::Left => writeln!(
                io::stdout().lock(),
                "{client}: {} request(s) answered",
                self.answered
            )
            .and_then(|()| io::stdout().flush()),
            End::Dropped(why) => writeln!(
                io::stderr().lock(),
                "{client}: dropped after {} request(s): {why}",
                self.answered
            ),
        };
    }
}

/// The clients of a server, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Connections accepted and served.
    pub clients: u64,
    /// Requests answered, over all clients.
    pub answered: u64,
    /// Clients dropped.
    pub dropped: u64,
}

impl Tally {
    /// Adds one client's report.
    pub fn count(&mut self, report: &ClientReport) {
        self.clients += 1;
        self.answered += report.answered;
        if let End::Dropped(_) = report.end {
            self.dropped += 1;
        }
    }
}

impl fmt::Display for Tally {
    /// `3 client(s): 7 request(s) answered, 1 dropped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} client(s): {} request(s) answered, {} dropped",
            self.clients, self.answered, self.dropped
        )
    }
}
// ANCHOR_END: report

// ANCHOR: udp_report
/// What the UDP server did with the datagrams it received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpTally {
    /// Datagrams received.
    pub datagrams: u64,
    /// Answered with the response to their request.
    pub answered: u64,
    /// Longer than [`MAX_DATAGRAM`](super::protocol::MAX_DATAGRAM):
    /// answered with an ERROR response.
    pub refused: u64,
    /// Too short to hold a sequence number: nobody to answer.
    pub ignored: u64,
}

impl fmt::Display for UdpTally {
    /// `5 datagram(s): 3 answered, 1 refused, 1 ignored`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} datagram(s): {} answered, {} refused, {} ignored",
            self.datagrams, self.answered, self.refused, self.ignored
        )
    }
}

/// What the UDP client got, and what it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpOutcome {
    /// The body of each request's reply, in the order of the requests.
    pub replies: Vec<Vec<u8>>,
    /// Datagrams sent: one per request, plus one per retransmission.
    pub sent: u64,
    /// Datagrams received and thrown away: duplicates and late replies to
    /// requests already answered, and datagrams too short to be replies.
    pub ignored: u64,
}
// ANCHOR_END: udp_report
