//! The plumbing of [`Tracer`] (given: you do not need to change this
//! file): making one, and writing its lines.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};

use nix::unistd::Pid;

use super::sys::signal_name;
use super::syscalls::Filter;
use super::{Ending, Tracee, Tracer};

impl Tracer {
    /// A tracer of `first`, a tracee already stopped (by [`super::spawn_traced`]
    /// or [`super::attach`]) and restarted, or about to be, showing the calls
    /// `filter` picks, writing to `out`.
    pub fn new(first: Pid, filter: Filter, out: Box<dyn Write>) -> Tracer {
        let mut tracees = HashMap::new();
        tracees.insert(first, Tracee::default());
        Tracer {
            out,
            filter,
            tracees,
            first,
            ending: None,
        }
    }

    /// Writes `[pid PID] TEXT` and flushes it at once: a tracer may be
    /// killed at any moment, and whoever reads the trace (a test) must see
    /// each line as soon as it is true.
    pub fn say(&mut self, pid: Pid, text: &str) -> io::Result<()> {
        writeln!(self.out, "[pid {pid}] {text}")?;
        self.out.flush()
    }
}

impl fmt::Debug for Tracer {
    /// Everything but the output (a `dyn Write` has no `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("filter", &self.filter)
            .field("tracees", &self.tracees)
            .field("first", &self.first)
            .field("ending", &self.ending)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Ending {
    /// `exited with 3`, `killed by SIGTERM`, as strace ends a process.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ending::Exited(code) => write!(f, "exited with {code}"),
            Ending::Killed(signal) => write!(f, "killed by {}", signal_name(signal)),
        }
    }
}
