//! The `popen` command line (given: you do not need to change this file).
//!
//! Each subcommand calls the functions you write in `lib.rs`. Those that
//! run a command exit the way a shell would: with the command's exit status,
//! or 128 + N if signal N killed it. Errors are reported on one line,
//! `popen: …`, with exit status 1; usage mistakes exit with status 2.
//!
//! `popen filter` is the filter that tasks 4 and 5 drive: it reads lines of
//! integers and writes their sums, and it buffers its output the way C's
//! stdio does when standard output is a pipe, unless told otherwise.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};
use nix::sys::wait::WaitStatus;

use super::{Coprocess, Mode, Popen, filter_all, pclose, pipeline, popen, spawn};

/// Lab 03: popen, pclose, pipelines and coprocesses, built from pipe, fork,
/// dup2 and exec.
#[derive(Parser, Debug)]
#[command(name = "popen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run COMMAND with /bin/sh -c and print what it writes, line by line,
    /// like popen(COMMAND, "r") and an fgets loop in C (TODO 1).
    Read {
        /// Install a SIGCHLD handler first, to see what it does to pclose.
        #[arg(long, value_enum)]
        sigchld: Option<Sigchld>,
        /// A shell command line, e.g. 'ls | sort -r'.
        command: String,
    },
    /// Copy standard input into COMMAND, run with /bin/sh -c, like
    /// popen(COMMAND, "w") (TODO 1).
    Write {
        /// A shell command line, e.g. 'sort -r'.
        command: String,
    },
    /// Run PROGRAM with its arguments, without a shell, and print what it
    /// writes (TODO 2).
    #[command(override_usage = "popen run [--write] PROGRAM [ARGS...]")]
    Run {
        /// Copy standard input into the program instead.
        #[arg(long)]
        write: bool,
        /// The program and its arguments, passed on unchanged.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// Count the lines of FILE with `wc -l`: safely, as an argument (TODO 2),
    /// or with --shell by pasting FILE into a command line for popen, as a
    /// careless program would (TODO 1).
    Lines {
        /// Build the command line "wc -l FILE" and give it to popen.
        #[arg(long)]
        shell: bool,
        /// The file to count, as a user typed it.
        file: String,
    },
    /// Run STAGE | STAGE | …, like a shell, with the stages separated by
    /// `--` (TODO 3).
    #[command(override_usage = "popen pipeline PROGRAM [ARGS...] [-- PROGRAM [ARGS...]]...")]
    Pipeline {
        /// The stages' words, with `--` between two stages.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Drive a filter as a coprocess: send each line of standard input as a
    /// request, print `REQUEST -> REPLY` (TODO 4).
    #[command(override_usage = "popen coproc [OPTIONS] [-- FILTER [ARGS...]]")]
    Coproc {
        /// How the lab's filter buffers its output.
        #[arg(long, value_enum, default_value_t = Buffering::Line)]
        buffering: Buffering,
        /// How long to wait for each reply, in milliseconds (1 to 60000).
        #[arg(long, default_value_t = 2000, value_name = "MS",
              value_parser = clap::value_parser!(u64).range(1..=60_000))]
        reply_timeout_ms: u64,
        /// Another filter to drive instead of the lab's, after `--`.
        #[arg(last = true)]
        filter: Vec<String>,
    },
    /// Send all of standard input through the lab's filter and print all it
    /// writes back (TODO 5).
    Batch,
    /// The filter: for each line of integers, write their sum. Output is
    /// block-buffered, as C stdio does for a pipe, unless --line-buffered.
    Filter {
        /// Flush after every line.
        #[arg(long)]
        line_buffered: bool,
    },
}

/// The SIGCHLD handlers `read --sigchld` can install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Sigchld {
    /// A handler that does nothing, installed without SA_RESTART: any
    /// child's exit interrupts a blocked waitpid (EINTR).
    Interrupt,
    /// A handler that reaps every child with waitpid(-1, WNOHANG), as many
    /// servers have. It takes the status pclose waits for.
    Reap,
}

/// How the lab's filter buffers what it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Buffering {
    /// Flush after every line.
    Line,
    /// Write only when 4096 bytes have gathered, or at the end.
    Block,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(code) => code,
        Err(error) => {
            print_error(&format!("popen: {error:#}"));
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

fn execute(command: Command) -> anyhow::Result<ExitCode> {
    let status = match command {
        // ANCHOR: cli_read
        Command::Read { sigchld, command } => {
            if let Some(kind) = sigchld {
                install_sigchld_handler(kind)?;
            }
            let child = popen(&command, Mode::Read)?;
            let copied = print_lines(&child);
            if sigchld == Some(Sigchld::Reap) {
                wait_until_reaped()?;
            }
            let status = pclose(child).context("pclose")?;
            copied.context("copy the command's output")?;
            status
        }
        // ANCHOR_END: cli_read
        // ANCHOR: cli_write
        Command::Write { command } => {
            let mut child = popen(&command, Mode::Write)?;
            let copied = copy_input(&mut child.pipe);
            let status = pclose(child).context("pclose")?;
            copied.context("copy standard input to the command")?;
            status
        }
        // ANCHOR_END: cli_write
        Command::Run { write, argv } => {
            let mode = if write { Mode::Write } else { Mode::Read };
            let mut child = spawn(&argv, mode)?;
            let copied = match mode {
                Mode::Read => print_lines(&child),
                Mode::Write => copy_input(&mut child.pipe),
            };
            let status = pclose(child).context("pclose")?;
            copied.context("copy")?;
            status
        }
        // ANCHOR: cli_lines
        Command::Lines { shell, file } => {
            let child = if shell {
                // The mistake: text from the user pasted into a command line.
                popen(&format!("wc -l {file}"), Mode::Read)?
            } else {
                spawn(&["wc".into(), "-l".into(), file], Mode::Read)?
            };
            let copied = print_lines(&child);
            let status = pclose(child).context("pclose")?;
            copied.context("copy the output of wc")?;
            status
        }
        // ANCHOR_END: cli_lines
        // ANCHOR: cli_pipeline
        Command::Pipeline { words } => {
            let stages: Vec<Vec<String>> = words
                .split(|word| word == "--")
                .map(<[String]>::to_vec)
                .collect();
            let statuses = pipeline(&stages).context("pipeline")?;
            *statuses.last().context("pipeline: no status returned")?
        }
        // ANCHOR_END: cli_pipeline
        // ANCHOR: cli_coproc
        Command::Coproc {
            buffering,
            reply_timeout_ms,
            filter,
        } => {
            let argv = if filter.is_empty() {
                lab_filter(buffering == Buffering::Line)?
            } else {
                filter
            };
            let timeout = Duration::from_millis(reply_timeout_ms);
            let mut coprocess = Coprocess::start(&argv)?;
            let conversation = converse(&mut coprocess, timeout);
            let status = coprocess.finish()?;
            conversation?;
            status
        }
        // ANCHOR_END: cli_coproc
        // ANCHOR: cli_batch
        Command::Batch => {
            let mut input = Vec::new();
            io::stdin().read_to_end(&mut input)?;
            let (output, status) = filter_all(&lab_filter(false)?, &input)?;
            let mut out = io::stdout().lock();
            out.write_all(&output)?;
            out.flush()?;
            status
        }
        // ANCHOR_END: cli_batch
        Command::Filter { line_buffered } => {
            run_filter(line_buffered)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    Ok(shell_exit_code(status))
}

/// The `fgets` loop: copies the command's output to ours, a line at a time.
fn print_lines(child: &Popen) -> io::Result<()> {
    let mut reader = BufReader::new(&child.pipe);
    let mut out = io::stdout().lock();
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        out.write_all(&line)?;
        line.clear();
    }
    out.flush()
}

/// Copies our standard input into the command. A command that exits before
/// reading everything (`head -n 1`) makes the copy fail with `EPIPE`: that
/// is its choice, not an error.
fn copy_input(pipe: &mut File) -> io::Result<()> {
    match io::copy(&mut io::stdin().lock(), pipe) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map(drop),
    }
}

// ANCHOR: converse
/// Sends each line of standard input to the coprocess and prints
/// `REQUEST -> REPLY` as soon as the reply arrives.
fn converse(coprocess: &mut Coprocess, timeout: Duration) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for request in io::stdin().lock().lines() {
        let request = request.context("read standard input")?;
        let reply = coprocess
            .ask(&request, timeout)
            .with_context(|| format!("coproc: request {request:?}"))?;
        writeln!(out, "{request} -> {reply}")?;
    }
    Ok(())
}
// ANCHOR_END: converse

/// The argv that runs this very program as `popen filter`.
fn lab_filter(line_buffered: bool) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("find this program")?;
    let exe = exe
        .into_os_string()
        .into_string()
        .map_err(|path| anyhow::anyhow!("this program's path is not UTF-8: {path:?}"))?;
    let mut argv = vec![exe, "filter".to_string()];
    if line_buffered {
        argv.push("--line-buffered".to_string());
    }
    Ok(argv)
}

// ANCHOR: filter
/// The lab's filter. For each line it reads, it writes one line: the sum of
/// the integers on it, or `error: …`.
///
/// Like a C program using stdio, it gathers its output in a 4096-byte buffer
/// and writes it only when the buffer is full or at the end, unless
/// `line_buffered` (C: `setvbuf(stdout, NULL, _IOLBF, 0)`, or `fflush`
/// after each line).
fn run_filter(line_buffered: bool) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(4096, io::stdout().lock());
    match sum_lines(io::stdin().lock(), &mut out, line_buffered) {
        // Nobody reads our output any more: stop quietly, as a C filter
        // killed by SIGPIPE would.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes the sum of each line of `input` to `out`.
fn sum_lines(mut input: impl BufRead, out: &mut impl Write, line_buffered: bool) -> io::Result<()> {
    let mut line = Vec::new();
    while input.read_until(b'\n', &mut line)? > 0 {
        writeln!(out, "{}", sum_of(&String::from_utf8_lossy(&line)))?;
        if line_buffered {
            out.flush()?;
        }
        line.clear();
    }
    out.flush()
}
// ANCHOR_END: filter

/// `"1 2 3"` gives `"6"`; a word that is not an integer gives an error line.
fn sum_of(line: &str) -> String {
    let mut sum: i64 = 0;
    for word in line.split_whitespace() {
        let Ok(n) = word.parse::<i64>() else {
            return format!("error: not a number: {word:?}");
        };
        let Some(total) = sum.checked_add(n) else {
            return "error: the sum overflows".to_string();
        };
        sum = total;
    }
    sum.to_string()
}

/// How many children the `reap` handler has reaped.
static REAPED: AtomicUsize = AtomicUsize::new(0);

// ANCHOR: sigchld_handlers
/// `--sigchld interrupt`: a handler that does nothing. Because it is
/// installed without `SA_RESTART`, a blocked `waitpid` still fails with
/// `EINTR` when it runs.
extern "C" fn note_sigchld(_: libc::c_int) {}

/// `--sigchld reap`: reaps every child that has ended. Servers that fork a
/// child per request often have such a handler, so that no zombie is left.
extern "C" fn reap_children(_: libc::c_int) {
    let saved = Errno::last_raw();
    // SAFETY: waitpid is async-signal-safe, and a null status is allowed.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {
        REAPED.fetch_add(1, Ordering::SeqCst);
    }
    Errno::set_raw(saved);
}

fn install_sigchld_handler(kind: Sigchld) -> anyhow::Result<()> {
    let handler = match kind {
        Sigchld::Interrupt => note_sigchld,
        Sigchld::Reap => reap_children,
    };
    // No SA_RESTART: a system call that the handler interrupts fails with
    // EINTR instead of being restarted.
    let action = SigAction::new(
        SigHandler::Handler(handler),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: both handlers call only async-signal-safe functions.
    unsafe { sigaction(Signal::SIGCHLD, &action) }.context("sigaction(SIGCHLD)")?;
    Ok(())
}
// ANCHOR_END: sigchld_handlers

/// Waits until the `reap` handler has reaped a child, so that `pclose`
/// always comes too late. SIGCHLD is blocked between the checks and let in
/// only inside `sigsuspend`, so the signal cannot slip by unnoticed.
fn wait_until_reaped() -> anyhow::Result<()> {
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    let before = sigchld
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .context("block SIGCHLD")?;
    let mut waiting = before;
    waiting.remove(Signal::SIGCHLD);
    while REAPED.load(Ordering::SeqCst) == 0 {
        waiting.suspend().context("sigsuspend")?;
    }
    before
        .thread_set_mask()
        .context("restore the signal mask")?;
    Ok(())
}

// ANCHOR: shell_exit_code
/// The exit status a shell gives a command: its own, or 128 + the signal
/// number if a signal killed it.
fn shell_exit_code(status: WaitStatus) -> ExitCode {
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => 1,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
// ANCHOR_END: shell_exit_code
