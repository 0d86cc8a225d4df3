//! The `fifos` command line (given: you do not need to change this file).
//!
//! Each subcommand calls one of the functions you write in `lib.rs` and
//! prints its result. Errors are reported on one line, `fifos: …`, with exit
//! status 1; usage mistakes exit with status 2.

use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use nix::errno::Errno;

use super::{End, OpenMode, make_fifo, open_fifo, request_numbers, serve, tee_to_fifo};

/// Lab 04: FIFOs (named pipes) between unrelated processes.
#[derive(Parser, Debug)]
#[command(name = "fifos", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a FIFO at PATH that only you may use, like `mkfifo -m 600 PATH`
    /// (TODO 1).
    Make {
        /// Where to make it.
        path: PathBuf,
    },
    /// Copy what comes through the FIFO at PATH to standard output, until
    /// every writer has closed it, like `cat < PATH` (TODO 2).
    Read {
        /// The FIFO to read.
        path: PathBuf,
    },
    /// Copy standard input into the FIFO at PATH, like `cat > PATH` (TODO 2).
    Write {
        /// The FIFO to write.
        path: PathBuf,
    },
    /// Open the FIFO at PATH with O_NONBLOCK and say what happened (TODO 2).
    Probe {
        /// The FIFO to open.
        path: PathBuf,
        #[command(flatten)]
        end: ProbeEnd,
    },
    /// Copy standard input to standard output and into the FIFO at FIFO,
    /// like `tee FIFO`: one input, two consumers (TODO 3).
    Tee {
        /// The FIFO the second consumer reads.
        fifo: PathBuf,
    },
    /// Ask the server listening on the FIFO SERVER for COUNT sequence
    /// numbers, and print them (TODO 4).
    Client {
        /// The server's well-known FIFO.
        server: PathBuf,
        /// How many numbers (1 to 1000000).
        #[arg(value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: u32,
    },
    /// Serve sequence numbers on the well-known FIFO at FIFO, which it
    /// makes, until SIGINT or SIGTERM (TODO 5).
    Serve {
        /// The well-known FIFO to make and listen on.
        fifo: PathBuf,
        /// Stop by itself after reading N requests.
        #[arg(long, value_name = "N")]
        stop_after: Option<u64>,
    },
}

/// Which end `probe` opens.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct ProbeEnd {
    /// open(PATH, O_RDONLY | O_NONBLOCK), then read once.
    #[arg(long)]
    nonblock_read: bool,
    /// open(PATH, O_WRONLY | O_NONBLOCK).
    #[arg(long)]
    nonblock_write: bool,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("fifos: {}", describe(&error)));
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
        // ANCHOR: cli_make
        Command::Make { path } => {
            make_fifo(&path)?;
            let made = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?;
            println!("made FIFO {}", path.display());
            println!("{} {}", ls_mode(&made), path.display());
        }
        // ANCHOR_END: cli_make
        // ANCHOR: cli_read_write
        Command::Read { path } => {
            let mut fifo = File::from(open_fifo(&path, End::Read, OpenMode::Blocking)?);
            io::copy(&mut fifo, &mut io::stdout().lock())
                .with_context(|| format!("copy {} to standard output", path.display()))?;
        }
        Command::Write { path } => {
            let mut fifo = File::from(open_fifo(&path, End::Write, OpenMode::Blocking)?);
            io::copy(&mut io::stdin().lock(), &mut fifo)
                .with_context(|| format!("write to {}", path.display()))?;
        }
        // ANCHOR_END: cli_read_write
        Command::Probe { path, end } => {
            if end.nonblock_read {
                probe_read(&path)?;
            } else {
                probe_write(&path)?;
            }
        }
        // ANCHOR: cli_tee
        Command::Tee { fifo } => {
            tee_to_fifo(&mut io::stdin().lock(), &mut io::stdout().lock(), &fifo)?;
        }
        // ANCHOR_END: cli_tee
        // ANCHOR: cli_client
        Command::Client { server, count } => {
            // A private name for the reply FIFO: the client's process ID, in
            // $TMPDIR (/tmp unless it is set).
            let reply = std::env::temp_dir().join(format!("fifos-client.{}", std::process::id()));
            let numbers = request_numbers(&server, &reply, count)?;
            println!("numbers {} to {}", numbers.start(), numbers.end());
        }
        // ANCHOR_END: cli_client
        // ANCHOR: cli_serve
        Command::Serve { fifo, stop_after } => {
            let mut out = io::stdout().lock();
            let requests = serve(&fifo, stop_after, &mut out)?;
            let noun = if requests == 1 { "request" } else { "requests" };
            writeln!(out, "server: stopped after {requests} {noun}")?;
        } // ANCHOR_END: cli_serve
    }
    Ok(())
}

// ANCHOR: probe
/// `probe --nonblock-read`: a non-blocking open for reading returns at once,
/// writer or not; a read then tells whether a writer is there.
fn probe_read(path: &Path) -> anyhow::Result<()> {
    let fifo = open_fifo(path, End::Read, OpenMode::NonBlocking)?;
    println!("open(O_RDONLY | O_NONBLOCK): returned at once");
    let mut buffer = [0u8; 4096];
    match nix::unistd::read(&fifo, &mut buffer) {
        Ok(0) => println!("read: 0 bytes, end-of-file: no process has the FIFO open for writing"),
        Ok(n) => println!("read: {n} bytes"),
        Err(Errno::EAGAIN) => println!("read: EAGAIN: a writer has the FIFO open, but it is empty"),
        Err(errno) => return Err(errno).with_context(|| format!("read {}", path.display())),
    }
    Ok(())
}

/// `probe --nonblock-write`: a non-blocking open for writing succeeds only
/// if a reader is there, and fails with ENXIO otherwise.
fn probe_write(path: &Path) -> anyhow::Result<()> {
    match open_fifo(path, End::Write, OpenMode::NonBlocking) {
        Ok(_) => {
            println!("open(O_WRONLY | O_NONBLOCK): returned at once: a reader has the FIFO open")
        }
        Err(error) if errno_of(&error) == Some(Errno::ENXIO) => {
            println!("open(O_WRONLY | O_NONBLOCK): ENXIO: no process has the FIFO open for reading")
        }
        Err(error) => return Err(error),
    }
    Ok(())
}
// ANCHOR_END: probe

/// The file type and permissions as `ls -l` shows them: `prw-------`.
fn ls_mode(metadata: &Metadata) -> String {
    let file_type = metadata.file_type();
    let kind = if file_type.is_fifo() {
        'p'
    } else if file_type.is_dir() {
        'd'
    } else if file_type.is_symlink() {
        'l'
    } else if file_type.is_socket() {
        's'
    } else if file_type.is_char_device() {
        'c'
    } else if file_type.is_block_device() {
        'b'
    } else {
        '-'
    };
    let mode = metadata.permissions().mode();
    let mut text = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 0o4 != 0 { 'r' } else { '-' });
        text.push(if bits & 0o2 != 0 { 'w' } else { '-' });
        text.push(if bits & 0o1 != 0 { 'x' } else { '-' });
    }
    text
}

/// The error and its causes on one line, `context: cause: …`. A system error
/// reads the same whichever API reported it (`std::io` or nix):
/// `ENOENT: No such file or directory`.
fn describe(error: &anyhow::Error) -> String {
    let parts: Vec<String> = error
        .chain()
        .map(|cause| match errno_in(cause) {
            Some(errno) => errno.to_string(),
            None => cause.to_string(),
        })
        .collect();
    parts.join(": ")
}

/// The first system error (errno) among an error's causes.
fn errno_of(error: &anyhow::Error) -> Option<Errno> {
    error.chain().find_map(errno_in)
}

/// The errno of one cause, if it is a system error.
fn errno_in(cause: &(dyn std::error::Error + 'static)) -> Option<Errno> {
    if let Some(errno) = cause.downcast_ref::<Errno>() {
        return Some(*errno);
    }
    let code = cause.downcast_ref::<io::Error>()?.raw_os_error()?;
    Some(Errno::from_raw(code))
}
