//! A tour of `mmap`: the errors the chapter lists, what a private mapping
//! sees of a file that others change, the zeros after the end of a file,
//! and anonymous memory shared with a child, or not.
//!
//! Usage (inside `labs/08-mmap`): `cargo run --example mmap_tour`
//!
//! It works in a temporary directory of its own, removed at the end.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, bail};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, SysconfVar, fork, sysconf};
#[path = "../src/mapping.rs"]
pub mod mapping;

use mapping::{Access, Mapping, Share};

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mmap-tour-{}", std::process::id()));
    fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let result = tour(&dir);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn tour(dir: &Path) -> anyhow::Result<()> {
    // ANCHOR: errors
    let page = sysconf(SysconfVar::PAGE_SIZE)?.context("no page size")? as usize;
    show("sysconf(_SC_PAGESIZE)", page);
    let path = dir.join("data");
    fs::write(&path, "0123456789".repeat(500))?; // 5000 bytes: one page and a bit
    let read_only = File::open(&path)?;
    let fd = read_only.as_fd();
    show(
        "mmap, length 0",
        outcome(Mapping::file(fd, 0, 0, Access::Read, Share::Private)),
    );
    show(
        "mmap, offset 100",
        outcome(Mapping::file(fd, 100, 10, Access::Read, Share::Private)),
    );
    show(
        "mmap, offset 1 MiB",
        outcome(Mapping::file(fd, 1 << 20, 10, Access::Read, Share::Private)),
    );
    show(
        "mmap O_RDONLY fd, shared + write",
        outcome(Mapping::file(fd, 0, 10, Access::ReadWrite, Share::Shared)),
    );
    show(
        "mmap O_RDONLY fd, private + write",
        outcome(Mapping::file(fd, 0, 10, Access::ReadWrite, Share::Private)),
    );
    let mut shared_read = Mapping::file(fd, 0, 10, Access::Read, Share::Shared)?;
    show(
        "mprotect it PROT_WRITE later",
        outcome(shared_read.protect(Access::ReadWrite)),
    );
    let directory = File::open(dir)?;
    show(
        "mmap a directory",
        outcome(Mapping::file(
            directory.as_fd(),
            0,
            10,
            Access::Read,
            Share::Private,
        )),
    );
    // ANCHOR_END: errors

    // ANCHOR: private_view
    let writer = OpenOptions::new().read(true).write(true).open(&path)?;
    let shared = Mapping::file(writer.as_fd(), 0, 10, Access::ReadWrite, Share::Shared)?;
    let private = Mapping::file(fd, 0, 10, Access::ReadWrite, Share::Private)?;
    shared.write_at(0, b"A")?;
    show("private sees a shared store", text(&private)?);
    private.write_at(1, b"p")?; // the first store: the page is copied
    shared.write_at(2, b"C")?;
    show("after its own store, private", text(&private)?);
    show("shared", text(&shared)?);
    show(
        "the file",
        String::from_utf8_lossy(&fs::read(&path)?[..10]).into_owned(),
    );
    // ANCHOR_END: private_view

    // ANCHOR: tail
    let tail = Mapping::file(
        writer.as_fd(),
        0,
        2 * page,
        Access::ReadWrite,
        Share::Shared,
    )?;
    let mut byte = [0u8];
    tail.read_at(5000, &mut byte)?;
    show("byte 5000, after the end", format!("{:#04x}", byte[0]));
    tail.write_at(5000, b"!")?;
    tail.sync()?;
    show("wrote byte 5000: file size", fs::metadata(&path)?.len());
    // ANCHOR_END: tail

    // ANCHOR: anonymous
    for share in [Share::Shared, Share::Private] {
        let memory = Mapping::anonymous(page, share)?;
        memory.write_at(0, b"parent")?;
        // SAFETY: single-threaded; the child writes and _exits.
        match unsafe { fork() }? {
            ForkResult::Child => {
                let code = i32::from(memory.write_at(0, b"CHILD!").is_err());
                // SAFETY: _exit never returns.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                if waitpid(child, None)? != WaitStatus::Exited(child, 0) {
                    bail!("the child failed");
                }
            }
        }
        show(
            &format!("anonymous {share:?}: parent reads"),
            text(&memory)?,
        );
    }
    // ANCHOR_END: anonymous
    Ok(())
}

/// The first 6 bytes of a mapping, as text.
fn text(mapping: &Mapping) -> anyhow::Result<String> {
    let mut bytes = [0u8; 6];
    mapping.read_at(0, &mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// "ok", or the errno and its text.
fn outcome<T>(result: nix::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(errno) => format!("{errno}"),
    }
}

fn show(what: &str, value: impl std::fmt::Display) {
    println!("{what:<36} {value}");
}
