//! The relay's listening socket and its socket file (given: you do not need
//! to change this file). Chapter 13 explains each step; this is its
//! `listen`, for a path only, made non-blocking for the event loop.

use std::fs::{self, Permissions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};

/// How many connections may wait for `accept`. The kernel caps it at
/// `/proc/sys/net/core/somaxconn` (4096 on current kernels). When the queue
/// is full, a client's blocking `connect` waits, and a non-blocking one
/// fails with `EAGAIN`, until the relay accepts.
pub const BACKLOG: i32 = 1024;

// ANCHOR: listener
/// A listening Unix stream socket in non-blocking mode, and its socket
/// file, removed when this value is dropped.
#[derive(Debug)]
pub struct Listener {
    socket: UnixListener,
    file: SocketFile,
}

impl Listener {
    /// The listening socket: `accept` fails with `EAGAIN`
    /// (`io::ErrorKind::WouldBlock`) when no connection is waiting.
    pub fn socket(&self) -> &UnixListener {
        &self.socket
    }

    /// Where its socket file is.
    pub fn path(&self) -> &Path {
        &self.file.0
    }
}
// ANCHOR_END: listener

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// A socket file this process made with `bind`, removed when dropped.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    /// `unlink(2)`: closing a socket does not remove its file.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Listens at `path` with `SOCK_NONBLOCK | SOCK_CLOEXEC`, mode 0600 (set
/// before `listen`, so that nobody connects under another mode), and a
/// backlog of [`BACKLOG`].
///
/// If something is at `path` already, `bind` fails with `EADDRINUSE`: a
/// socket file whose server is gone (stale, `connect` is refused) is
/// removed and `bind` tried again; anything else is left alone and is an
/// error.
pub fn listen(path: &Path) -> anyhow::Result<Listener> {
    let address =
        UnixAddr::new(path).with_context(|| format!("socket address {}", path.display()))?;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")?;
    match socket::bind(fd.as_raw_fd(), &address) {
        Ok(()) => {}
        Err(Errno::EADDRINUSE) => {
            remove_if_stale(path, &address)?;
            socket::bind(fd.as_raw_fd(), &address)
                .with_context(|| format!("bind {}", path.display()))?;
        }
        Err(errno) => return Err(errno).with_context(|| format!("bind {}", path.display())),
    }
    // The file is ours from here on: removed on every way out.
    let file = SocketFile(path.to_path_buf());
    fs::set_permissions(path, Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))?;
    socket::listen(&fd, Backlog::new(BACKLOG).context("backlog")?)
        .with_context(|| format!("listen {}", path.display()))?;
    Ok(Listener {
        socket: UnixListener::from(fd),
        file,
    })
}

/// Removes the socket file at `path` if nobody listens on it; an error
/// otherwise, and then the file stays.
fn remove_if_stale(path: &Path, address: &UnixAddr) -> anyhow::Result<()> {
    let metadata =
        fs::symlink_metadata(path).with_context(|| format!("bind {}", path.display()))?;
    if !metadata.file_type().is_socket() {
        bail!(
            "bind {}: EADDRINUSE: not a socket, left alone",
            path.display()
        );
    }
    let probe = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")?;
    match socket::connect(probe.as_raw_fd(), address) {
        Err(Errno::ECONNREFUSED) => fs::remove_file(path)
            .with_context(|| format!("remove the stale socket file {}", path.display())),
        _ => bail!(
            "bind {}: EADDRINUSE: another server is listening on it",
            path.display()
        ),
    }
}
