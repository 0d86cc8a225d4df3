//! The `ptrace` command line (given: you do not need to change this file).
//!
//! Each subcommand calls the functions you write in `lib.rs`. Everything
//! the tracer says goes to standard error (or to the file of `-o`), as
//! strace does: standard output belongs to the traced program. Errors are
//! one line, `ptrace: …`, with exit status 1; usage mistakes exit with
//! status 2.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nix::sys::wait::WaitPidFlag;
use nix::unistd::Pid;

use super::sys::{self, Stop};
use super::syscalls::{self, Filter};
use super::workload::{self, Workload};
use super::{Ending, SyscallStop, Tracer, attach, read_memory, read_syscall, spawn_traced};

/// Lab 17: process control with ptrace, a tiny strace for IPC calls.
#[derive(Parser, Debug)]
#[command(name = "ptrace", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start PROGRAM stopped after its exec, show that it is traced, then
    /// let it go and wait for it (TODO 1).
    #[command(override_usage = "ptrace start -- PROGRAM [ARGS...]")]
    Start {
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// Run PROGRAM (one process) and show every syscall-stop, raw (TODO 2).
    #[command(override_usage = "ptrace step -- PROGRAM [ARGS...]")]
    Step {
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// Run PROGRAM and print the IPC system calls of it and of every
    /// process and thread it starts, like `strace -f` (TODOs 3 to 5).
    #[command(override_usage = "ptrace run [-o FILE] [-e LIST] -- PROGRAM [ARGS...]")]
    Run {
        #[command(flatten)]
        output: Output,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// Trace the running process PID (and what it starts) until it ends
    /// (TODO 6).
    Attach {
        #[command(flatten)]
        output: Output,
        /// The process to trace.
        pid: i32,
    },
    /// List the system calls of this machine (number, name), or those a
    /// filter picks.
    Syscalls {
        /// Only those of this filter (as for `run -e`).
        #[arg(short = 'e', long = "filter", value_name = "LIST")]
        filter: Option<String>,
    },
    /// Run one of the small fixed programs the tests and the book trace.
    Workload {
        #[command(subcommand)]
        workload: WorkloadCommand,
    },
}

/// Where the trace goes and what it shows.
#[derive(clap::Args, Debug)]
struct Output {
    /// Write the trace to FILE instead of standard error.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The system calls to show: names and groups, comma-separated; `ipc`
    /// (the default) is every IPC call, `all` every call.
    #[arg(
        short = 'e',
        long = "filter",
        value_name = "LIST",
        default_value = "ipc"
    )]
    filter: String,
}

#[derive(Subcommand, Debug)]
enum WorkloadCommand {
    /// pipe2, dup3 onto descriptor TO, close (one of them fails: EBADF).
    Pipes {
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(5..=1000))]
        to: i32,
    },
    /// A System V queue, semaphore set and segment: made, used, removed.
    Sysv {
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
        mtype: i64,
        #[arg(long, default_value = "hello")]
        text: String,
        #[arg(long, default_value_t = 4096)]
        size: usize,
    },
    /// A POSIX message queue NAME: made, used, removed.
    Mq {
        name: String,
        #[arg(long, default_value = "hello")]
        text: String,
        #[arg(long, default_value_t = 0)]
        priority: u32,
    },
    /// A socket pair, then a listening socket at PATH with one client.
    Sockets { path: String },
    /// Send itself CAUGHT (handled), then FATAL (kills it): signal numbers.
    Signals {
        #[arg(long)]
        caught: i32,
        #[arg(long)]
        fatal: i32,
    },
    /// Stop itself with SIGSTOP; say whether SIGCONT woke it.
    Stop,
    /// A pipe and CHILDREN children that read it and exit with their number.
    Family {
        #[arg(value_parser = clap::value_parser!(u32).range(1..=20))]
        children: u32,
    },
    /// THREADS threads that each make a pipe.
    Threads {
        #[arg(value_parser = clap::value_parser!(u32).range(1..=20))]
        threads: u32,
    },
    /// Run PROGRAM with std::process::Command (posix_spawn).
    #[command(override_usage = "ptrace workload spawn -- PROGRAM [ARGS...]")]
    Spawn {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// Wait for a writer on the FIFO PATH, read it, then do what `pipes`
    /// does (or `stop`, with --stop).
    WaitFifo {
        path: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(5..=1000))]
        to: i32,
        #[arg(long)]
        stop: bool,
    },
    /// Block in accept4 until killed.
    Block,
}

/// Parses the command line, runs the subcommand, reports errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(code) => code,
        Err(error) => {
            print_error(&format!("ptrace: {error:#}"));
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

/// A usage mistake found after parsing: one line, exit status 2.
fn usage(message: &str) -> ExitCode {
    eprintln!("ptrace: {message}");
    ExitCode::from(2)
}

fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Start { argv } => start(&argv),
        Command::Step { argv } => step(&argv),
        Command::Run { output, argv } => {
            let Ok(filter) = Filter::parse(&output.filter) else {
                return Ok(usage(&filter_error(&output.filter)));
            };
            let out = open_output(&output)?;
            // ANCHOR: cli_run
            let pid = spawn_traced(&argv)?;
            sys::restart(pid, 0).context("PTRACE_SYSCALL")?;
            let ending = Tracer::new(pid, filter, out).run()?;
            Ok(match ending {
                Ending::Exited(code) => ExitCode::from(code as u8),
                Ending::Killed(signal) => ExitCode::from(128 + signal as u8),
            })
            // ANCHOR_END: cli_run
        }
        Command::Attach { output, pid } => {
            let Ok(filter) = Filter::parse(&output.filter) else {
                return Ok(usage(&filter_error(&output.filter)));
            };
            let out = open_output(&output)?;
            // ANCHOR: cli_attach
            let pid = Pid::from_raw(pid);
            attach(pid)?;
            let mut tracer = Tracer::new(pid, filter, out);
            sys::restart(pid, 0).context("PTRACE_SYSCALL")?;
            eprintln!("ptrace: attached to pid {pid}");
            tracer.run()?;
            Ok(ExitCode::SUCCESS)
            // ANCHOR_END: cli_attach
        }
        Command::Syscalls { filter } => list_syscalls(filter.as_deref()),
        Command::Workload { workload } => {
            workload::run(&workload_of(workload))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The one-line message for a filter that does not parse.
fn filter_error(list: &str) -> String {
    match Filter::parse(list) {
        Err(message) => message,
        Ok(_) => format!("bad filter `{list}`"),
    }
}

/// The trace's destination: the file of `-o`, or standard error.
fn open_output(output: &Output) -> anyhow::Result<Box<dyn Write>> {
    Ok(match &output.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("create {}", path.display()))?,
        )),
        None => Box::new(io::stderr()),
    })
}

// ANCHOR: cli_start
/// `ptrace start`: the program stopped after its exec, as `/proc` shows it,
/// then detached, waited for, and its exit status passed on.
fn start(argv: &[String]) -> anyhow::Result<ExitCode> {
    let pid = spawn_traced(argv)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("?")
            .to_string()
    };
    let tracer = if field("TracerPid:") == std::process::id().to_string() {
        "this process".to_string()
    } else {
        format!("pid {}", field("TracerPid:"))
    };
    eprintln!(
        "ptrace: pid {pid} stopped after exec, state {}",
        field("State:")
    );
    eprintln!("ptrace: its tracer: {tracer}");
    nix::sys::ptrace::detach(pid, None).context("PTRACE_DETACH")?;
    eprintln!("ptrace: detached, it runs on its own");
    match nix::sys::wait::waitpid(pid, None).context("waitpid")? {
        nix::sys::wait::WaitStatus::Exited(_, code) => {
            eprintln!("ptrace: it exited with status {code}");
            Ok(ExitCode::from(code as u8))
        }
        other => {
            eprintln!("ptrace: it ended: {other:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}
// ANCHOR_END: cli_start

// ANCHOR: cli_step
/// `ptrace step`: every syscall-stop of one process, raw. Any other stop
/// (a signal, a fork) ends the walk: this is an inspector, not a tracer.
fn step(argv: &[String]) -> anyhow::Result<ExitCode> {
    let pid = spawn_traced(argv)?;
    let mut out = io::stderr().lock();
    let mut pending: Option<(u64, u64)> = None;
    loop {
        sys::restart(pid, 0).context("PTRACE_SYSCALL")?;
        match sys::wait_for_stop(Some(pid), WaitPidFlag::__WALL).context("waitpid")? {
            Stop::Syscall(_) => match read_syscall(pid).context("PTRACE_GET_SYSCALL_INFO")? {
                SyscallStop::Entry { nr, args } => {
                    let raw: Vec<String> = args.iter().map(|arg| format!("{arg:#x}")).collect();
                    let name = syscalls::display_name(nr);
                    writeln!(out, "enter {name}({})", raw.join(", "))?;
                    pending = Some((nr, args[0]));
                }
                SyscallStop::Exit { value, is_error } => {
                    let result = if is_error {
                        format!(
                            "{value} (error {:?})",
                            nix::errno::Errno::from_raw(-value as i32)
                        )
                    } else {
                        value.to_string()
                    };
                    writeln!(
                        out,
                        "exit  {result}{}",
                        written_fds(pid, pending.take(), is_error)
                    )?;
                }
                SyscallStop::Other => writeln!(out, "neither an entry nor an exit")?,
            },
            Stop::Exited(_, code) => {
                writeln!(out, "exited with status {code}")?;
                return Ok(ExitCode::from(code as u8));
            }
            Stop::Killed(_, signal, _) => {
                writeln!(out, "killed by {}", sys::signal_name(signal))?;
                return Ok(ExitCode::from(128 + signal as u8));
            }
            Stop::Event {
                event: libc::PTRACE_EVENT_EXEC,
                ..
            } => writeln!(out, "exec")?,
            other => {
                writeln!(
                    out,
                    "{other:?}: `step` follows the system calls of one process only"
                )?;
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

/// For the exit of a `pipe` or `pipe2` that succeeded: the two
/// descriptors the kernel wrote into the array its first argument points to.
fn written_fds(pid: Pid, call: Option<(u64, u64)>, is_error: bool) -> String {
    let Some((nr, first)) = call else {
        return String::new();
    };
    let name = syscalls::display_name(nr);
    let array = match name.as_str() {
        "pipe" | "pipe2" => first,
        _ => return String::new(),
    };
    if is_error {
        return String::new();
    }
    match read_memory(pid, array, 8) {
        Ok(bytes) if bytes.len() == 8 => {
            let read_end = i32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let write_end = i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            format!(" (wrote [{read_end}, {write_end}] at {array:#x})")
        }
        Ok(bytes) => format!(" (read {} bytes at {array:#x}, not 8)", bytes.len()),
        Err(errno) => format!(" (cannot read {array:#x}: {errno})"),
    }
}
// ANCHOR_END: cli_step

/// `ptrace syscalls`: number and name, one per line.
fn list_syscalls(filter: Option<&str>) -> anyhow::Result<ExitCode> {
    let filter = match filter.map(Filter::parse) {
        Some(Ok(filter)) => Some(filter),
        Some(Err(message)) => return Ok(usage(&message)),
        None => None,
    };
    let mut out = io::stdout().lock();
    for &(nr, name) in syscalls::all() {
        if filter.as_ref().is_none_or(|filter| filter.contains(nr)) {
            writeln!(out, "{nr:>4} {name}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn workload_of(command: WorkloadCommand) -> Workload {
    match command {
        WorkloadCommand::Pipes { to } => Workload::Pipes { to },
        WorkloadCommand::Sysv { mtype, text, size } => Workload::Sysv { mtype, text, size },
        WorkloadCommand::Mq {
            name,
            text,
            priority,
        } => Workload::Mq {
            name,
            text,
            priority,
        },
        WorkloadCommand::Sockets { path } => Workload::Sockets { path },
        WorkloadCommand::Signals { caught, fatal } => Workload::Signals { caught, fatal },
        WorkloadCommand::Stop => Workload::Stop,
        WorkloadCommand::Family { children } => Workload::Family { children },
        WorkloadCommand::Threads { threads } => Workload::Threads { threads },
        WorkloadCommand::Spawn { argv } => Workload::Spawn { argv },
        WorkloadCommand::WaitFifo { path, to, stop } => Workload::WaitFifo { path, to, stop },
        WorkloadCommand::Block => Workload::Block,
    }
}
