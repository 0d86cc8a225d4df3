//! File change events from Linux's inotify(7), for `watch`: every
//! directory under the watched ones (build output, hidden and editor files
//! left out), new directories included as they appear.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::manifest;

/// What every watch listens for: any change to a file's contents, name or
/// existence.
const MASK: u32 = libc::IN_MODIFY
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// An inotify instance and the directory behind each watch descriptor.
struct Instance {
    fd: OwnedFd,
    dirs: HashMap<i32, PathBuf>,
}

impl Instance {
    /// Watches `dir` and every directory below it.
    fn add_tree(&mut self, dir: &Path) -> io::Result<()> {
        let name = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
        // SAFETY: a valid descriptor and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), name.as_ptr(), MASK) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        self.dirs.insert(wd, dir.to_path_buf());
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let hidden = manifest::is_ignored(&entry.file_name().to_string_lossy());
            if !hidden && entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.add_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

/// Starts watching `dirs`; `notify` is called once per batch of events
/// with `Ok(())`, or once with `Err(why)` when the events stop. It returns
/// false when nobody listens any more, which ends the watching thread.
pub fn watch(
    dirs: &[PathBuf],
    mut notify: impl FnMut(Result<(), String>) -> bool + Send + 'static,
) -> io::Result<()> {
    // SAFETY: inotify_init1 takes flags only.
    let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut instance = Instance {
        fd,
        dirs: HashMap::new(),
    };
    for dir in dirs {
        instance.add_tree(dir)?;
    }
    std::thread::spawn(move || {
        // Aligned for `inotify_event`, and large enough for many events.
        let mut buffer = vec![0u64; 4096 / 8];
        loop {
            // SAFETY: the buffer is valid for writes of its whole length.
            let n = unsafe {
                libc::read(
                    instance.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len() * 8,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                notify(Err(err.to_string()));
                return;
            }
            // SAFETY: the kernel wrote `n` bytes into the buffer.
            let bytes =
                unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), n as usize) };
            if let Err(err) = new_directories(&mut instance, bytes) {
                notify(Err(err.to_string()));
                return;
            }
            if !notify(Ok(())) {
                return;
            }
        }
    });
    Ok(())
}

/// Adds watches for the directories a batch of events says were created
/// or moved in.
fn new_directories(instance: &mut Instance, mut bytes: &[u8]) -> io::Result<()> {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    while bytes.len() >= HEADER {
        let field = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let (wd, mask, len) = (field(0) as i32, field(4), field(12) as usize);
        let end = (HEADER + len).min(bytes.len());
        let name = &bytes[HEADER..end];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        let appeared = mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0;
        if appeared
            && mask & libc::IN_ISDIR != 0
            && let Some(parent) = instance.dirs.get(&wd)
        {
            let name = std::ffi::OsStr::from_bytes(name);
            if !manifest::is_ignored(&name.to_string_lossy()) {
                let dir = parent.join(name);
                instance.add_tree(&dir)?;
            }
        }
        bytes = &bytes[end..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn saves_in_new_directories_are_seen() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (tx, rx) = mpsc::channel();
        watch(&[dir.path().to_path_buf()], move |event| {
            tx.send(event).is_ok()
        })
        .expect("inotify works here");
        fs::create_dir(dir.path().join("src")).expect("mkdir");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("an event")
            .expect("no error");
        // The watch on the new directory is in place before its event is
        // reported: a file saved in it now is seen too.
        while rx.try_recv().is_ok() {}
        fs::write(dir.path().join("src/lib.rs"), "fn main() {}\n").expect("write");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("an event for the new file")
            .expect("no error");
    }
}
