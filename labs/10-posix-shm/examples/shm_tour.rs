//! A tour of POSIX shared memory: an object is a file in /dev/shm, sized
//! with ftruncate and measured with fstat; two mappings see each other's
//! stores; shm_unlink removes the name but not the memory of those still
//! using it; what glibc lets through in a name; the umask.
//!
//! Usage (inside `labs/10-posix-shm`): `cargo run --example shm_tour`
//!
//! Every object it makes is named `/shm-tour-PID-…` and removed before it
//! ends.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, fchmod, fstat, umask};
use nix::unistd::{ftruncate, getpid};

#[path = "../src/posix.rs"]
pub mod posix;

use posix::Mapping;

fn main() -> anyhow::Result<()> {
    let name = format!("/shm-tour-{}", getpid());
    let result = tour(&name);
    // Harmless if the tour removed them already (ENOENT).
    for leftover in [name.clone(), format!("{name}-umask"), name[1..].to_string()] {
        let _ = shm_unlink(leftover.as_str());
    }
    result
}

fn tour(name: &str) -> anyhow::Result<()> {
    // ANCHOR: create
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
    let fd = shm_open(name, flags, Mode::from_bits_truncate(0o600)).context("shm_open")?;
    show("a new object, fstat st_size", fstat(&fd)?.st_size);
    ftruncate(&fd, 8192).context("ftruncate")?;
    let stat = fstat(&fd)?;
    show("after ftruncate(8192)", stat.st_size);
    show("its mode", format!("{:o}", stat.st_mode & 0o777));
    let file = Path::new("/dev/shm").join(&name[1..]);
    show("it is the file", file.display());
    match shm_open(name, flags, Mode::from_bits_truncate(0o600)) {
        Err(errno) => show("shm_open(O_CREAT | O_EXCL) again", errno),
        Ok(_) => bail!("O_EXCL let a second create through"),
    }
    // ANCHOR_END: create

    // ANCHOR: share
    let writer = Mapping::new(fd.as_fd(), 8192, true).context("mmap")?;
    writer.write_at(0, b"stored through one mapping\0")?;
    // Another descriptor, another mapping: what another process would do.
    let again = shm_open(name, OFlag::O_RDONLY, Mode::empty()).context("shm_open")?;
    let reader = Mapping::new(again.as_fd(), 8192, false).context("mmap")?;
    show("read through another mapping", text_at(&reader)?);
    // ANCHOR_END: share

    // ANCHOR: unlink
    shm_unlink(name).context("shm_unlink")?;
    show("after shm_unlink, the file exists", file.exists());
    match shm_open(name, OFlag::O_RDONLY, Mode::empty()) {
        Err(errno) => show("shm_open(name) after shm_unlink", errno),
        Ok(_) => bail!("the name outlived shm_unlink"),
    }
    writer.write_at(0, b"still shared after the unlink\0")?;
    show("yet the two mappings still share", text_at(&reader)?);
    let newcomer = shm_open(name, flags, Mode::from_bits_truncate(0o600)).context("shm_open")?;
    show(
        "the name is free: a new object gets it",
        fstat(&newcomer)?.st_size,
    );
    shm_unlink(name).context("shm_unlink")?;
    // ANCHOR_END: unlink

    names(name)?;
    umask_applies(name)
}

fn names(name: &str) -> anyhow::Result<()> {
    // ANCHOR: names
    let bare = &name[1..];
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
    let mode = Mode::from_bits_truncate(0o600);
    let glibc_takes = shm_open(bare, flags, mode).map(drop);
    show(
        "glibc: shm_open(\"shm-tour-…\") (no '/')",
        result(glibc_takes),
    );
    let _ = shm_unlink(bare);
    let nested = format!("{name}/inner");
    let inner = shm_open(nested.as_str(), flags, mode).map(drop);
    show("glibc: shm_open(\"/shm-tour-…/inner\")", result(inner));
    // ANCHOR_END: names
    Ok(())
}

fn umask_applies(name: &str) -> anyhow::Result<()> {
    // ANCHOR: umask
    let name = format!("{name}-umask");
    let old = umask(Mode::from_bits_truncate(0o022));
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
    let fd: OwnedFd = shm_open(name.as_str(), flags, Mode::from_bits_truncate(0o666))?;
    umask(old);
    show(
        "mode 0666 under umask 022 gives",
        format!("{:o}", fstat(&fd)?.st_mode & 0o777),
    );
    fchmod(&fd, Mode::from_bits_truncate(0o660)).context("fchmod")?;
    show(
        "fchmod(fd, 0660) sets it exactly",
        format!("{:o}", fstat(&fd)?.st_mode & 0o777),
    );
    shm_unlink(name.as_str()).context("shm_unlink")?;
    // ANCHOR_END: umask
    Ok(())
}

/// The text at the start of a mapping, up to the first NUL byte.
fn text_at(mapping: &Mapping) -> anyhow::Result<String> {
    let mut bytes = [0u8; 64];
    mapping.read_at(0, &mut bytes)?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(format!("{:?}", String::from_utf8_lossy(&bytes[..end])))
}

/// "ok" or the errno.
fn result(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(errno) => errno.to_string(),
    }
}

fn show(label: &str, value: impl std::fmt::Display) {
    println!("{label:<42} {value}");
}
