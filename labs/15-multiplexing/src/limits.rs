//! How many descriptors the relay may open, and how many it has open
//! (given: you do not need to change this file).

use std::fs;

use anyhow::Context;
use nix::sys::resource::{self, Resource};

// ANCHOR: limits
/// The limits on open descriptors (`RLIMIT_NOFILE`), before and after
/// [`raise_descriptor_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorLimit {
    /// The soft limit the process started with (often 1024).
    pub was: u64,
    /// The soft limit now: the hard limit.
    pub now: u64,
}

/// Raises this process's soft limit on open descriptors to its hard limit.
///
/// Every client of the relay is a descriptor, and `accept` fails with
/// `EMFILE` once the **soft** limit is reached: 1024 on most systems,
/// which is too few for 1,000 clients and the relay's own descriptors. Any
/// process may raise its soft limit up to its **hard** limit
/// (`setrlimit(RLIMIT_NOFILE)`; in a shell, `ulimit -Sn` and `ulimit
/// -Hn`); only a privileged one (`CAP_SYS_RESOURCE`) may raise the hard
/// limit. If the hard limit is low, the relay serves that many clients
/// minus its own descriptors, and pauses accepting until one leaves.
pub fn raise_descriptor_limit() -> anyhow::Result<DescriptorLimit> {
    let (soft, hard) =
        resource::getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit(RLIMIT_NOFILE)")?;
    if soft < hard {
        resource::setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .context("setrlimit(RLIMIT_NOFILE)")?;
    }
    Ok(DescriptorLimit {
        was: soft,
        now: hard,
    })
}

/// How many descriptors this process has open: the entries of
/// `/proc/self/fd`, less the one that reading the directory opens.
pub fn open_descriptors() -> anyhow::Result<usize> {
    let entries = fs::read_dir("/proc/self/fd").context("read /proc/self/fd")?;
    Ok(entries.count().saturating_sub(1))
}
// ANCHOR_END: limits
