//! The life of a socket's name: a path that `bind` creates and nobody
//! removes but `unlink`, the errors on the way (`ECONNREFUSED`,
//! `EADDRINUSE`, `ENOENT`), and an abstract name, which lives exactly as
//! long as its socket.
//!
//! Usage (inside `labs/13-unix-sockets`): `cargo run --example names`
//!
//! The socket file is made in a directory of its own under the temporary
//! directory, removed at the end whatever happens.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("names-example-{}", std::process::id()));
    fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let result = path_names(&dir.join("demo.sock"));
    let _ = fs::remove_dir_all(&dir);
    result?;
    abstract_names()
}

fn stream_socket() -> anyhow::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")
}

/// What `connect` to `addr` says, from a new socket.
fn try_connect(addr: &UnixAddr) -> anyhow::Result<String> {
    let client = stream_socket()?;
    Ok(match socket::connect(client.as_raw_fd(), addr) {
        Ok(()) => "connected".to_string(),
        Err(errno) => format!("{errno}"),
    })
}

fn path_names(path: &Path) -> anyhow::Result<()> {
    // ANCHOR: path
    let addr = UnixAddr::new(path)?;
    show("connect, nothing there yet", try_connect(&addr)?);
    let server = stream_socket()?;
    socket::bind(server.as_raw_fd(), &addr)?;
    let meta = fs::symlink_metadata(path)?;
    show(
        "after bind: a socket file?",
        format!(
            "{}, mode {:o} (0777 minus the umask)",
            meta.file_type().is_socket(),
            meta.permissions().mode() & 0o777
        ),
    );
    show("connect before listen", try_connect(&addr)?);
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    socket::listen(&server, Backlog::new(16)?)?;
    show("connect after listen", try_connect(&addr)?);
    drop(server);
    show("after close: file still there?", path.exists());
    show("connect to the stale file", try_connect(&addr)?);
    let next = stream_socket()?;
    let again = socket::bind(next.as_raw_fd(), &addr);
    show("bind of the stale path", format!("{again:?}"));
    fs::remove_file(path)?;
    show(
        "bind after unlink",
        format!("{:?}", socket::bind(next.as_raw_fd(), &addr)),
    );
    fs::remove_file(path)?;
    // ANCHOR_END: path
    let long = "x".repeat(108);
    show(
        "UnixAddr::new of 108 bytes",
        format!("{:?}", UnixAddr::new(long.as_str()).err()),
    );
    Ok(())
}

fn abstract_names() -> anyhow::Result<()> {
    // ANCHOR: abstract
    let name = format!("names-example-{}", std::process::id());
    let addr = UnixAddr::new_abstract(name.as_bytes())?;
    let server = stream_socket()?;
    socket::bind(server.as_raw_fd(), &addr)?;
    socket::listen(&server, Backlog::new(16)?)?;
    let listed = |name: &str| {
        fs::read_to_string("/proc/net/unix")
            .unwrap_or_default()
            .lines()
            .any(|line| line.ends_with(&format!("@{name}")))
    };
    show("abstract: in /proc/net/unix", listed(&name));
    show("abstract: connect", try_connect(&addr)?);
    let twin = stream_socket()?;
    show(
        "abstract: a second bind",
        format!("{:?}", socket::bind(twin.as_raw_fd(), &addr)),
    );
    drop(server);
    show("abstract: after close, listed", listed(&name));
    show("abstract: connect after close", try_connect(&addr)?);
    // ANCHOR_END: abstract
    Ok(())
}

fn show(label: &str, value: impl std::fmt::Display) {
    println!("{label:<34} {value}");
}
