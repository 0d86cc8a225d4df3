//! A tour of System V shared memory: a segment shared with a child without
//! a single copy, what the kernel rounds to pages, `SHM_RND`, `SHM_LOCK`,
//! removal while attached, and the errors the chapter lists.
//!
//! Usage (inside `labs/07-shm`): `cargo run --example shm_tour`
//!
//! The main segment is made with `IPC_PRIVATE`; the error cases that need
//! a key use a key file of their own in the temporary directory. Both are
//! removed at the end, whatever happens in between.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, bail};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, getpid};
#[path = "../src/sysv.rs"]
pub mod sysv;

use sysv::Segment;

fn main() -> anyhow::Result<()> {
    let segment = Segment::create_private(10_000, 0o600).context("shmget(IPC_PRIVATE)")?;
    let result = tour(segment);
    // Harmless if the tour already removed it (EINVAL).
    let _ = segment.remove();
    result?;
    errors()
}

fn tour(segment: Segment) -> anyhow::Result<()> {
    // ANCHOR: share
    let page = page_size()?;
    let ds = segment.stat().context("IPC_STAT")?;
    show("shm_segsz", ds.shm_segsz);
    show("memory used, in pages", ds.shm_segsz.div_ceil(page));
    let attachment = segment.attach(0).context("shmat")?;
    attachment.write_at(0, b"hello\0")?;
    show("attached at", format!("{:#x}", attachment.addr()));
    let parent_addr = attachment.addr();

    // The child must stay attached until the parent has looked: it waits
    // for end-of-file on a pipe, which comes when the parent closes its end.
    let (go_read, go_write) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: single-threaded; the child reads, writes, waits and _exits.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(go_write);
            // The child inherited the attachment: same segment, same address.
            let mut text = [0u8; 5];
            let code = match attachment.read_at(0, &mut text) {
                Ok(()) if &text == b"hello" && attachment.addr() == parent_addr => {
                    match attachment.write_at(0, b"HELLO from the child\0") {
                        Ok(()) => 0,
                        Err(_) => 2,
                    }
                }
                _ => 1,
            };
            let _ = std::io::copy(&mut fs::File::from(go_read), &mut std::io::sink());
            // SAFETY: _exit never returns; it also detaches the segment.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(go_read);
            // fork attached the child: the count is 2 until the child leaves.
            show(
                "after fork: shm_nattch",
                segment.stat().context("IPC_STAT")?.shm_nattch,
            );
            drop(go_write);
            waitpid(child, None).context("waitpid")?;
        }
    }
    show("after the child's write, we read", text_at(&attachment)?);
    // ANCHOR_END: share

    // ANCHOR: rnd
    let probe = segment.attach(0).context("shmat")?;
    let free = probe.addr();
    probe.detach().context("shmdt")?;
    match segment.attach_at(free + 100, 0) {
        Err(errno) => show("shmat(addr + 100, 0)", errno),
        Ok(_) => bail!("an unaligned address was accepted"),
    }
    let rounded = segment
        .attach_at(free + 100, libc::SHM_RND)
        .context("shmat(SHM_RND)")?;
    show(
        "shmat(addr + 100, SHM_RND) maps at",
        format!("addr + {}", rounded.addr() as isize - free as isize),
    );
    rounded.detach().context("shmdt")?;
    // SHM_REMAP would map the segment over whatever is there: the layer
    // refuses it before any system call.
    match segment.attach_at(free, libc::SHM_REMAP) {
        Err(errno) => show("shmat(addr, SHM_REMAP)", errno),
        Ok(_) => bail!("SHM_REMAP was accepted"),
    }
    // ANCHOR_END: rnd

    // ANCHOR: lock
    match segment.lock() {
        Ok(()) => {
            let mode = segment.stat()?.shm_perm.mode;
            show("after SHM_LOCK: mode", format!("{mode:o} (SHM_LOCKED)"));
            segment.unlock().context("SHM_UNLOCK")?;
        }
        // Without CAP_IPC_LOCK, `ulimit -l` must cover the segment.
        Err(errno) => show("SHM_LOCK", errno),
    }
    // ANCHOR_END: lock

    // ANCHOR: rmid
    segment.remove().context("IPC_RMID")?;
    let ds = segment.stat().context("IPC_STAT")?;
    show("after IPC_RMID: shm_nattch", ds.shm_nattch);
    show(
        "after IPC_RMID: mode",
        format!("{:o} (SHM_DEST)", ds.shm_perm.mode),
    );
    show("after IPC_RMID: our data", text_at(&attachment)?);
    attachment.detach().context("shmdt")?;
    match segment.stat() {
        Err(errno) => show("after the last shmdt: IPC_STAT", errno),
        Ok(_) => bail!("the segment outlived its last detach"),
    }
    // ANCHOR_END: rmid
    Ok(())
}

fn errors() -> anyhow::Result<()> {
    // ANCHOR: errors
    match Segment::create_private(0, 0o600) {
        Err(errno) => show("shmget(size 0)", errno),
        Ok(segment) => {
            let _ = segment.remove();
            bail!("a segment of 0 bytes was created");
        }
    }
    let key_file = KeyFile::new()?;
    let key = sysv::ftok(&key_file.0, b'M').context("ftok")?;
    match Segment::open(key, 0) {
        Err(errno) => show("shmget(key, 0, 0), no segment", errno),
        Ok(_) => bail!("found a segment that nobody made"),
    }
    let segment = Segment::create(key, 4096, 0o600).context("shmget")?;
    let results = [
        (
            "shmget(IPC_CREAT | IPC_EXCL), again",
            Segment::create(key, 4096, 0o600),
        ),
        ("shmget(key, 8192, 0), 4096 there", Segment::open(key, 8192)),
    ];
    segment.remove().context("IPC_RMID")?;
    for (label, result) in results {
        match result {
            Err(errno) => show(label, errno),
            Ok(_) => bail!("{label} succeeded"),
        }
    }
    // ANCHOR_END: errors
    Ok(())
}

/// The text at the start of the segment, up to the first NUL byte.
fn text_at(attachment: &sysv::Attachment) -> anyhow::Result<String> {
    let mut bytes = [0u8; 64];
    attachment.read_at(0, &mut bytes)?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(format!("{:?}", String::from_utf8_lossy(&bytes[..end])))
}

/// `SHMLBA` is the page size on most Linux machines.
fn page_size() -> anyhow::Result<usize> {
    // SAFETY: sysconf only reads a system setting.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).context("sysconf(_SC_PAGESIZE)")
}

/// A file of our own to make a key from, deleted when dropped.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new() -> anyhow::Result<KeyFile> {
        let path = std::env::temp_dir().join(format!("shm-tour-{}.key", getpid()));
        fs::write(&path, b"ftok key file\n").with_context(|| format!("{}", path.display()))?;
        Ok(KeyFile(path))
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn show(label: &str, value: impl std::fmt::Display) {
    println!("{label:<40} {value}");
}
