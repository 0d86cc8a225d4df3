//! What a running program has mapped and open, from `/proc/PID/maps` and
//! `/proc/PID/fd`: for tests that must see *how* a program holds a file
//! (through a shared mapping, with no descriptor left open) rather than
//! only what it prints.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Running;

/// One line of `/proc/PID/maps`: a range of the address space and what
/// backs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// First address of the range.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// `r`, `w`, `x` or `-` for each right, then `s` (shared) or `p`
    /// (private, copy-on-write): `r--s`, `rw-p` …
    pub perms: String,
    /// Offset in the file of the range's first byte.
    pub offset: u64,
    /// What backs it: a file's path, `/dev/zero (deleted)` for shared
    /// anonymous memory, `[heap]`, `[stack]` …; `None` for private
    /// anonymous memory.
    pub path: Option<String>,
}

impl MapEntry {
    /// The range's length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True for an empty range (the kernel never lists one).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Whether it is a shared mapping (`MAP_SHARED`), as opposed to a
    /// private, copy-on-write one.
    pub fn is_shared(&self) -> bool {
        self.perms.ends_with('s')
    }

    /// Whether its pages may be written.
    pub fn is_writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }

    /// Whether it maps the file at `path` (compared by the path the kernel
    /// shows, which is canonical).
    pub fn maps(&self, path: &Path) -> bool {
        let wanted = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.path.as_deref().map(Path::new) == Some(wanted.as_path())
    }
}

/// The mappings of process `pid`, in address order; empty if it is gone.
pub fn mappings_of(pid: u32) -> Vec<MapEntry> {
    let text = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    text.lines().filter_map(parse_line).collect()
}

/// What the open descriptors of process `pid` point to (`/proc/PID/fd/N`
/// read as links: paths, `pipe:[…]`, `socket:[…]` …), in descriptor order;
/// empty if it is gone.
pub fn open_files_of(pid: u32) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<(u32, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let fd = entry.file_name().to_str()?.parse().ok()?;
            Some((fd, fs::read_link(entry.path()).ok()?))
        })
        .collect();
    fds.sort();
    fds.into_iter().map(|(_, target)| target).collect()
}

impl Running {
    /// The program's mappings now (see [`MapEntry`]).
    pub fn mappings(&self) -> Vec<MapEntry> {
        mappings_of(self.pid())
    }

    /// What the program's descriptors point to now.
    pub fn open_files(&self) -> Vec<PathBuf> {
        open_files_of(self.pid())
    }
}

/// `START-END PERMS OFFSET DEV INODE [PATH]`, the path possibly holding spaces.
fn parse_line(line: &str) -> Option<MapEntry> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?.to_string();
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _device = fields.next()?;
    let _inode = fields.next()?;
    let path = fields
        .next()
        .map(str::trim_start)
        .filter(|path| !path.is_empty())
        .map(str::to_string);
    Some(MapEntry {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms,
        offset,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn a_file_mapping_and_an_anonymous_one_are_parsed() {
        let file = parse_line(
            "7f8676c6b000-7f8676c6d000 r--s 00001000 fe:00 10010901                   /tmp/a b",
        )
        .expect("a line");
        assert_eq!(file.len(), 0x2000);
        assert_eq!(file.offset, 0x1000);
        assert!(file.is_shared() && !file.is_writable());
        assert_eq!(file.path.as_deref(), Some("/tmp/a b"));
        let anonymous =
            parse_line("7f3459811000-7f3459812000 rw-p 00000000 00:00 0 ").expect("a line");
        assert!(!anonymous.is_shared() && anonymous.is_writable());
        assert_eq!(anonymous.path, None);
    }
}
