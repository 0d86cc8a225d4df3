//! Socket addresses as the command line writes them, and the socket file a
//! server owns (given: you do not need to change this file).
//!
//! A Unix domain socket is named either by a **path** (`/run/app.sock`,
//! `srv.sock`), which `bind` creates as a file of type socket, or by a name
//! in Linux's **abstract namespace**, which exists only in the kernel. The
//! kernel marks an abstract name by a NUL byte at the start of `sun_path`;
//! the command line, like `ss` and `socat`, writes it with an `@` instead:
//! `@app` is the abstract name `app`.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

// ANCHOR: address
/// Where a Unix domain socket lives: a path, or an abstract name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A file of type socket at this path (`srw-------` in `ls -l`).
    Path(PathBuf),
    /// A name in the abstract namespace, without the leading NUL byte.
    Abstract(Vec<u8>),
}

impl Address {
    /// The path, for an address that has one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Address::Path(path) => Some(path),
            Address::Abstract(_) => None,
        }
    }
}
// ANCHOR_END: address

impl FromStr for Address {
    type Err = String;

    /// `@name` is the abstract name `name`; anything else is a path.
    fn from_str(text: &str) -> Result<Address, String> {
        match text.strip_prefix('@') {
            Some("") => Err("an abstract name needs at least one byte after the @".to_string()),
            Some(name) => Ok(Address::Abstract(name.as_bytes().to_vec())),
            None if text.is_empty() => Err("a socket path cannot be empty".to_string()),
            None => Ok(Address::Path(PathBuf::from(text))),
        }
    }
}

impl fmt::Display for Address {
    /// A path as it is; an abstract name as `@name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Path(path) => write!(f, "{}", path.display()),
            Address::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

// ANCHOR: socket_file
/// The socket file a server has bound, removed when this value is dropped.
///
/// Closing a socket does not remove its file: only `unlink(2)` does. Make
/// one of these right **after** `bind` has created the file, never before:
/// if `bind` fails, the file at that path belongs to someone else.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
}

impl SocketFile {
    /// Takes charge of the socket file `bind` has just created at `path`.
    pub fn new(path: &Path) -> SocketFile {
        SocketFile {
            path: path.to_path_buf(),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    /// `unlink(2)`: the name goes; clients already connected are not
    /// affected, but no new client can find the server any more.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
// ANCHOR_END: socket_file
