//! The `shm` command line (given: you do not need to change this file).
//!
//! Most subcommands work on the segment named by a key file, so several of
//! them, started one after another or side by side, meet at the same
//! segment. Errors are reported on one line, `shm: …`, with exit status 1;
//! usage mistakes exit with status 2.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use nix::errno::Errno;
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getegid, geteuid, getpid};

use super::sysv::{self, Segment, Semaphores};
use super::{
    EMPTY, FULL, Figures, HEADER, MESSAGE, PROJ_ID, SEM_PROJ_ID, Step, copy, create, figures,
    lifecycle, open, read_only, receive, send,
};

/// Lab 07: System V shared memory.
#[derive(Parser, Debug)]
#[command(name = "shm", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a segment of SIZE bytes (shmget with IPC_CREAT | IPC_EXCL)
    /// (TODO 1).
    Create {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
        /// Its size in bytes.
        size: usize,
        /// Permission bits of the new segment, in octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u16,
    },
    /// Print what shmctl(IPC_STAT) says about the segment (TODO 1).
    Info {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
        /// Ask shmget for a segment of at least this many bytes.
        #[arg(long, default_value_t = 0)]
        size: usize,
    },
    /// Write TEXT at the start of the segment, then a NUL byte. Given.
    Write {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
        /// What to write.
        text: String,
    },
    /// Print the text at the start of the segment, up to the first NUL
    /// byte, through a read-only attachment. Given.
    Read {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
    },
    /// Lock the segment's pages in memory (shmctl SHM_LOCK). Given.
    Lock {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
    },
    /// Let the segment's pages be swapped again (shmctl SHM_UNLOCK). Given.
    Unlock {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
    },
    /// Remove the segment (shmctl IPC_RMID). Given.
    Remove {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
    },
    /// Create a segment, attach, fork, detach, remove, and print its
    /// figures at every step (TODO 2).
    Lifecycle {
        /// The file that names the segment (ftok).
        key_file: PathBuf,
        /// The segment's size in bytes.
        #[arg(long, default_value_t = 4096)]
        size: usize,
    },
    /// A child writes through a read-only attachment (TODO 3).
    ReadOnly {
        /// What the parent writes and the child reads.
        #[arg(long, default_value = MESSAGE)]
        text: String,
    },
    /// Create the two semaphores of a transfer, EMPTY = 1 and FULL = 0,
    /// under ftok(FILE, 'S'), or remove them. Given.
    Semaphores {
        /// The file that names the semaphores (ftok).
        key_file: PathBuf,
        /// Remove them instead (IPC_RMID).
        #[arg(long)]
        remove: bool,
    },
    /// The writer of a transfer: send INPUT through the segment and the
    /// semaphores of FILE, which must exist (TODO 4).
    Send {
        /// The file that names the segment and the semaphores (ftok).
        key_file: PathBuf,
        /// The file to send.
        input: PathBuf,
    },
    /// The reader of a transfer: receive into OUTPUT what a `send` on the
    /// same FILE sends (TODO 4).
    Receive {
        /// The file that names the segment and the semaphores (ftok).
        key_file: PathBuf,
        /// The file to write (created or truncated).
        output: PathBuf,
    },
    /// Copy INPUT to OUTPUT through one segment: this process writes, a
    /// child reads, two semaphores set the pace (TODOs 4 and 5).
    Copy {
        /// The file that names the segment and the semaphores (ftok).
        key_file: PathBuf,
        /// The file to read.
        input: PathBuf,
        /// The file to write (created or truncated).
        output: PathBuf,
        /// The segment's size in bytes, header included (9 to 16 MiB).
        #[arg(long, default_value_t = 4096,
              value_parser = clap::value_parser!(u32).range(9..=16 << 20))]
        segment_size: u32,
    },
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("shm: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints `line` and a line break on standard error in one `write(2)`.
/// `eprintln!` writes a line in pieces, so the error lines of processes
/// that share a pipe for their standard error could mix; a pipe keeps each
/// write of at most `PIPE_BUF` bytes whole (chapter 02).
fn print_error(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Create {
            key_file,
            size,
            mode,
        } => {
            create(&key_file, size, mode)?;
            println!("created a segment of {size} bytes");
        }
        Command::Info { key_file, size } => print_figures(&figures(open(&key_file, size)?)?),
        // ANCHOR: cli_write_read
        Command::Write { key_file, text } => {
            let attachment = open_any(&key_file)?.attach(0).context("shmat")?;
            let mut bytes = text.into_bytes();
            bytes.push(0);
            attachment
                .write_at(0, &bytes)
                .context("the text does not fit in the segment")?;
            attachment.detach().context("shmdt")?;
        }
        Command::Read { key_file } => {
            let attachment = open_any(&key_file)?
                .attach(libc::SHM_RDONLY)
                .context("shmat")?;
            let mut bytes = vec![0; attachment.len()];
            attachment.read_at(0, &mut bytes).context("read")?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            println!("{}", String::from_utf8_lossy(&bytes[..end]));
        }
        // ANCHOR_END: cli_write_read
        Command::Lock { key_file } => open_any(&key_file)?.lock().context("SHM_LOCK")?,
        Command::Unlock { key_file } => open_any(&key_file)?.unlock().context("SHM_UNLOCK")?,
        Command::Remove { key_file } => open_any(&key_file)?.remove().context("IPC_RMID")?,
        // ANCHOR: cli_lifecycle
        Command::Lifecycle { key_file, size } => {
            let mut steps = Vec::new();
            lifecycle(&key_file, size, &mut |step, segment| {
                if step == Step::Forked {
                    settle_children();
                }
                steps.push((step, figures_if_any(segment)?));
                Ok(())
            })?;
            print_lifecycle(&steps);
        }
        // ANCHOR_END: cli_lifecycle
        // ANCHOR: cli_read_only
        Command::ReadOnly { text } => {
            let seen = read_only(&text)?;
            println!("parent: the child {}", describe(seen.child));
            println!("parent: the segment still holds {:?}", seen.after);
            println!(
                "parent: removed the IPC_PRIVATE segment shmid {}",
                seen.shmid
            );
        }
        // ANCHOR_END: cli_read_only
        Command::Semaphores { key_file, remove } => {
            let key = sysv::ftok(&key_file, SEM_PROJ_ID)
                .with_context(|| format!("ftok {}", key_file.display()))?;
            if remove {
                Semaphores::open(key)
                    .and_then(Semaphores::remove)
                    .context("remove the semaphores")?;
            } else {
                Semaphores::create(key, &[1, 0]).context("create the semaphores")?;
                println!("created the semaphores: EMPTY = 1, FULL = 0");
            }
        }
        // ANCHOR: cli_send_receive
        Command::Send { key_file, input } => {
            let (attachment, sems) = transfer_of(&key_file)?;
            let mut input =
                File::open(&input).with_context(|| format!("open {}", input.display()))?;
            // Unrelated processes: nothing tells the writer the reader died.
            let sent = send(&attachment, sems, &mut input, &mut || true)?;
            println!("sent {} bytes in {} chunk(s)", sent.bytes, sent.chunks);
        }
        Command::Receive { key_file, output } => {
            let (attachment, sems) = transfer_of(&key_file)?;
            let mut output =
                File::create(&output).with_context(|| format!("create {}", output.display()))?;
            let received = receive(&attachment, sems, &mut output, &mut || true)?;
            println!("received {received} bytes");
        }
        // ANCHOR_END: cli_send_receive
        // ANCHOR: cli_copy
        Command::Copy {
            key_file,
            input,
            output,
            segment_size,
        } => {
            let size = segment_size as usize;
            let sent = copy(&key_file, &input, &output, size)?;
            println!(
                "copied {} bytes in {} chunk(s) of up to {} bytes through a {size}-byte segment",
                sent.bytes,
                sent.chunks,
                size - HEADER
            );
            let (length, checksum) = fnv1a(&output)?;
            println!("output: {length} bytes, FNV-1a {checksum:#018x}");
        } // ANCHOR_END: cli_copy
    }
    Ok(())
}

/// The segment of `key_file`, attached read-write, and the semaphores of
/// its transfer.
fn transfer_of(key_file: &Path) -> anyhow::Result<(sysv::Attachment, Semaphores)> {
    let attachment = open_any(key_file)?.attach(0).context("shmat")?;
    let key = sysv::ftok(key_file, SEM_PROJ_ID)
        .with_context(|| format!("ftok {}", key_file.display()))?;
    let sems = Semaphores::open(key).with_context(|| {
        format!(
            "no semaphores for {} (EMPTY {EMPTY}, FULL {FULL}: make them with `shm semaphores`)",
            key_file.display()
        )
    })?;
    Ok((attachment, sems))
}

/// Opens the existing segment of `key_file`, whatever its size.
fn open_any(key_file: &Path) -> anyhow::Result<Segment> {
    let key =
        sysv::ftok(key_file, PROJ_ID).with_context(|| format!("ftok {}", key_file.display()))?;
    Segment::open(key, 0).with_context(|| format!("no segment for {}", key_file.display()))
}

// ANCHOR: print_figures
/// Prints figures the way `ipcs -m -i SHMID` lists them, with the owner
/// described rather than numbered (so that it reads the same for every user).
fn print_figures(figures: &Figures) {
    println!(
        "shmid {}: {} bytes, mode {:03o}, {}",
        figures.shmid,
        figures.size,
        figures.mode,
        owner(figures)
    );
    println!("shm_nattch: {}", figures.nattch);
    println!("shm_cpid: {}", figures.cpid);
    match figures.lpid {
        Some(pid) => println!("shm_lpid: {pid}"),
        None => println!("shm_lpid: 0 (no shmat or shmdt yet)"),
    }
    println!("shm_atime: {}", time(figures.atime));
    println!("shm_dtime: {}", time(figures.dtime));
    println!("shm_ctime: {}", time(figures.ctime));
    println!("locked (SHM_LOCK): {}", yes_no(figures.locked));
    println!(
        "marked for removal (IPC_RMID): {}",
        yes_no(figures.marked_for_removal)
    );
}
// ANCHOR_END: print_figures

/// "owner = creator = you", from the four ids.
fn owner(figures: &Figures) -> String {
    let same = figures.uid == figures.cuid && figures.gid == figures.cgid;
    let mine = figures.uid == geteuid().as_raw() && figures.gid == getegid().as_raw();
    format!(
        "owner {} creator = {}",
        if same { "=" } else { "!=" },
        if mine { "you" } else { "another user" }
    )
}

// ANCHOR: settle
/// The segment's figures, or `None` once `IPC_STAT` says it is gone.
fn figures_if_any(segment: Segment) -> anyhow::Result<Option<Figures>> {
    match figures(segment) {
        Ok(figures) => Ok(Some(figures)),
        Err(error) => match error.root_cause().downcast_ref::<Errno>() {
            Some(Errno::EINVAL | Errno::EIDRM) => Ok(None),
            _ => Err(error),
        },
    }
}

/// Waits (at most 2 s) until every child of this process has settled:
/// asleep (`S` in `/proc/PID/stat`, blocked in a system call such as a
/// `read`) or ended (`Z`). Then what the children did right after `fork`
/// shows in the figures, whichever process the scheduler ran first.
fn settle_children() {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut nap = Duration::from_millis(1);
    while !children_states(getpid())
        .iter()
        .all(|&s| s == 'S' || s == 'Z')
    {
        if Instant::now() >= deadline {
            return;
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// The states of the processes whose parent is `parent`, from `/proc`.
fn children_states(parent: Pid) -> Vec<char> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            // "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses.
            let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid: i32 = fields.next()?.parse().ok()?;
            (ppid == parent.as_raw()).then_some(state)
        })
        .collect()
}
// ANCHOR_END: settle

// ANCHOR: print_lifecycle
/// Prints one row per step. Pids appear as who they are: this process, or
/// the children in the order their pids first appear.
fn print_lifecycle(steps: &[(Step, Option<Figures>)]) {
    let mut children = Vec::new();
    println!(
        "step                nattch  cpid          lpid          atime  dtime  key   SHM_DEST"
    );
    for (step, figures) in steps {
        let name = step_name(*step);
        let Some(f) = figures else {
            println!("{name:<18}  the segment is gone: IPC_STAT fails");
            continue;
        };
        let cpid = who(Some(f.cpid), &mut children);
        let lpid = who(f.lpid, &mut children);
        let key = if f.key == 0 { "0" } else { "ftok" };
        println!(
            "{name:<18}  {:<6}  {cpid:<12}  {lpid:<12}  {:<5}  {:<5}  {key:<4}  {}",
            f.nattch,
            set_or_zero(f.atime),
            set_or_zero(f.dtime),
            yes_no(f.marked_for_removal)
        );
    }
}
// ANCHOR_END: print_lifecycle

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Created => "created (shmget)",
        Step::Attached => "attached (shmat)",
        Step::Forked => "forked",
        Step::ChildDetached => "child 1 detached",
        Step::ChildExited => "child 2 exited",
        Step::MarkedForRemoval => "IPC_RMID",
        Step::Detached => "detached (shmdt)",
    }
}

/// "this process", "child N" (numbered in order of appearance) or "none".
fn who(pid: Option<Pid>, children: &mut Vec<Pid>) -> String {
    let Some(pid) = pid else {
        return "none".to_string();
    };
    if pid == getpid() {
        return "this process".to_string();
    }
    let n = match children.iter().position(|&c| c == pid) {
        Some(at) => at + 1,
        None => {
            children.push(pid);
            children.len()
        }
    };
    format!("child {n}")
}

fn time(seconds: i64) -> &'static str {
    if seconds == 0 { "0 (never)" } else { "set" }
}

fn set_or_zero(seconds: i64) -> &'static str {
    if seconds == 0 { "0" } else { "set" }
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

/// "was killed by signal SIGSEGV", "exited with status 0".
fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("was killed by signal {}", signal.as_str()),
        other => format!("{other:?}"),
    }
}

// ANCHOR: fnv1a
/// The length and the 64-bit FNV-1a hash of a file's bytes: a checksum
/// anyone can recompute (start from 0xcbf29ce484222325; for each byte, xor
/// it in, then multiply by 0x100000001b3, wrapping).
fn fnv1a(path: &Path) -> anyhow::Result<(u64, u64)> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut length = 0u64;
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => return Ok((length, hash)),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).with_context(|| format!("read {}", path.display())),
        };
        for &byte in &chunk[..n] {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        length += n as u64;
    }
}
// ANCHOR_END: fnv1a

/// Parses permission bits written in octal, such as `600` or `0640`.
fn parse_mode(text: &str) -> Result<u16, String> {
    u16::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mode between 000 and 777"))
}
