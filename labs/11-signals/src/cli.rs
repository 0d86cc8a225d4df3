//! The `signals` command line (given: you do not need to change this
//! file).
//!
//! Signals are named as `kill` names them (`TERM`, `SIGUSR1`, `RTMIN+2`,
//! `15`), processes by their pid. Commands that wait for signals print a
//! `ready: …` line once they may be sent, so that a test (or you, in a
//! second terminal) knows when to send them. Errors are reported on one
//! line, `signals: …`, with exit status 1; usage mistakes, an unknown
//! signal name among them, exit with status 2.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::sig::{Info, Sig};
use super::{
    Call, Counted, Events, Interruption, Outcome, Via, count, interrupt, parse_signal, queue,
    raise_caught_once, raise_default, send, signal_name, supervise,
};

/// How long `interrupt sleep` sleeps if no signal comes.
const SLEEP: Duration = Duration::from_secs(60);

/// Lab 11: signals.
#[derive(Parser, Debug)]
#[command(name = "signals", bin_name = "signals", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print each SIGNAL's number and name, or every signal's (TODO 1).
    Name {
        /// Signals as kill writes them: TERM, SIGUSR1, rtmin+2, 15.
        #[arg(value_parser = parse_signal)]
        signals: Vec<Sig>,
    },
    /// Send SIGNAL to each PID with kill(2); 0 only checks the PIDs (TODO 2).
    Send {
        /// The signal, or 0 (the null signal).
        #[arg(value_parser = parse_signal_or_zero)]
        signal: MaybeSignal,
        /// Process IDs (positive: this lab never signals a group, nor -1,
        /// which means every process you may signal).
        #[arg(required = true, value_parser = parse_pid)]
        pids: Vec<Pid>,
    },
    /// Send SIGNAL to PID once per VALUE, with sigqueue(3) (TODO 2).
    Queue {
        /// The signal.
        #[arg(value_parser = parse_signal)]
        signal: Sig,
        /// The process ID.
        #[arg(value_parser = parse_pid)]
        pid: Pid,
        /// The values, one signal each.
        #[arg(required = true, allow_negative_numbers = true)]
        values: Vec<i32>,
    },
    /// Send SIGNAL to this process and take its default action (TODO 2).
    Raise {
        /// The signal (not SIGSTOP, SIGTSTP, SIGTTIN nor SIGTTOU, which
        /// would stop this program until someone sends it SIGCONT).
        #[arg(value_parser = parse_signal)]
        signal: Sig,
        /// Catch the first one with an SA_RESETHAND handler, then raise it
        /// again.
        #[arg(long)]
        catch_once: bool,
    },
    /// Block SIGNAL, wait for SIGTERM, then count what was delivered (TODO 3).
    Count {
        /// The signal to count (not SIGTERM, which ends the count).
        #[arg(value_parser = parse_signal)]
        signal: Sig,
    },
    /// Make one blocking call and see what a signal handler does to it (TODO 4).
    Interrupt {
        #[command(subcommand)]
        call: CallArg,
        #[command(flatten)]
        handler: HandlerArgs,
    },
    /// Print each SIGNAL read from a signalfd or a self-pipe; stop at SIGTERM
    /// (TODO 5).
    Events {
        /// How the signals become readable.
        #[arg(long, value_enum, default_value_t = ViaArg::Signalfd)]
        via: ViaArg,
        /// The signals to watch (SIGTERM is always watched: it ends the command).
        #[arg(value_parser = parse_signal)]
        signals: Vec<Sig>,
    },
    /// Keep the workers of CONFIG running COMMAND: restart any that dies,
    /// reload on SIGHUP, stop all on SIGTERM or SIGINT (TODO 6).
    Supervise {
        /// The configuration file: `workers = N`.
        config: PathBuf,
        /// How the signals become readable.
        #[arg(long, value_enum, default_value_t = ViaArg::Signalfd)]
        via: ViaArg,
        /// The command each worker runs, after `--` (run with execvp: no shell).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// The blocking call of `interrupt`.
#[derive(Subcommand, Debug)]
enum CallArg {
    /// read(2) from FIFO (restarted after a handler with SA_RESTART).
    Read {
        /// A FIFO that a writer holds open.
        fifo: PathBuf,
    },
    /// poll(2) on FIFO with no timeout (never restarted).
    Poll {
        /// A FIFO that a writer holds open.
        fifo: PathBuf,
    },
    /// clock_nanosleep(2) for 60 s (never restarted).
    Sleep,
}

/// The handler `interrupt` installs.
#[derive(Args, Debug)]
struct HandlerArgs {
    /// The signal to handle.
    #[arg(long, global = true, default_value = "USR1", value_parser = parse_signal)]
    signal: Sig,
    /// Install the handler with SA_RESTART.
    #[arg(long, global = true)]
    restart: bool,
}

/// `--via`.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum ViaArg {
    /// A signalfd (the signals are blocked).
    Signalfd,
    /// A self-pipe (a handler writes each signal's number into a pipe).
    SelfPipe,
}

impl ViaArg {
    fn via(self) -> Via {
        match self {
            ViaArg::Signalfd => Via::SignalFd,
            ViaArg::SelfPipe => Via::SelfPipe,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ViaArg::Signalfd => "a signalfd",
            ViaArg::SelfPipe => "a self-pipe",
        }
    }
}

/// A signal, or the null signal 0.
#[derive(Debug, Clone, Copy)]
struct MaybeSignal(Option<Sig>);

fn parse_signal_or_zero(text: &str) -> Result<MaybeSignal, String> {
    if text.trim() == "0" {
        return Ok(MaybeSignal(None));
    }
    parse_signal(text).map(|signal| MaybeSignal(Some(signal)))
}

/// A positive process ID.
fn parse_pid(text: &str) -> Result<Pid, String> {
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(Pid::from_raw(pid)),
        _ => Err(format!("{text:?} is not a process ID (a positive number)")),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&format!("signals: {error:#}"));
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
        // ANCHOR: cli_name
        Command::Name { signals } => {
            let all = || (1..=Sig::rtmax()).filter_map(Sig::new).collect();
            let signals = if signals.is_empty() { all() } else { signals };
            for signal in signals {
                println!("{} {}", signal.number(), signal_name(signal));
            }
        }
        // ANCHOR_END: cli_name
        Command::Send { signal, pids } => send(signal.0, &pids)?,
        Command::Queue {
            signal,
            pid,
            values,
        } => queue(signal, pid, &values)?,
        // ANCHOR: cli_raise
        Command::Raise { signal, catch_once } => {
            let stops = [
                Signal::SIGSTOP,
                Signal::SIGTSTP,
                Signal::SIGTTIN,
                Signal::SIGTTOU,
            ];
            if stops.iter().any(|&stop| Sig::from(stop) == signal) {
                bail!(
                    "{} would stop this program: send it with kill instead",
                    signal_name(signal)
                );
            }
            if catch_once {
                raise_caught_once(signal)?;
            } else {
                raise_default(signal)?;
            }
            println!(
                "still alive: the default action of {} is to ignore it",
                signal_name(signal)
            );
        }
        // ANCHOR_END: cli_raise
        Command::Count { signal } => {
            if signal == Sig::from(super::STOP) {
                bail!("SIGTERM ends the count: count another signal");
            }
            let name = signal_name(signal);
            let counted = count(signal, || {
                println!("ready: {name} is blocked; send it, then SIGTERM");
            })?;
            print_counted(&counted);
        }
        Command::Interrupt { call, handler } => {
            let (call, what) = match call {
                CallArg::Read { fifo } => (Call::Read(open_fifo(&fifo)?), "read"),
                CallArg::Poll { fifo } => (Call::Poll(open_fifo(&fifo)?), "poll"),
                CallArg::Sleep => (Call::Sleep(SLEEP), "sleep"),
            };
            let name = signal_name(handler.signal);
            let flags = if handler.restart {
                "SA_RESTART"
            } else {
                "no flags"
            };
            let interruption = interrupt(call, handler.signal, handler.restart, || {
                println!("ready: a handler for {name} ({flags}); now calling {what}");
            })?;
            print_interruption(what, &interruption);
        }
        Command::Events { via, signals } => watch(via, signals)?,
        Command::Supervise {
            config,
            via,
            command,
        } => supervise(&config, &command, via.via())?,
    }
    Ok(())
}

// ANCHOR: print_counted
/// `pending: …`, `delivered: N`, then one line per delivery.
fn print_counted(counted: &Counted) {
    let pending: Vec<String> = counted.pending.iter().map(|&s| signal_name(s)).collect();
    let pending = if pending.is_empty() {
        "none".to_string()
    } else {
        pending.join(" ")
    };
    println!("pending: {pending}");
    println!("delivered: {}", counted.delivered.len());
    for info in &counted.delivered {
        println!("{}", describe(info));
    }
}

/// `SIGRTMIN+2 from pid 4242 (uid 1000) by sigqueue, value 17`.
fn describe(info: &Info) -> String {
    let name = info
        .signal()
        .map_or_else(|| info.signo.to_string(), signal_name);
    let value = if info.sender() == "sigqueue" {
        format!(", value {}", info.value)
    } else {
        String::new()
    };
    format!(
        "{name} from pid {} (uid {}) by {}{value}",
        info.pid,
        info.uid,
        info.sender()
    )
}
// ANCHOR_END: print_counted

/// Opens FIFO for reading, refusing to follow a symbolic link or to read
/// anything but a FIFO.
fn open_fifo(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("fstat {}", path.display()))?
        .file_type();
    if !kind.is_fifo() {
        bail!("{} is not a FIFO", path.display());
    }
    Ok(file)
}

/// `read: EINTR …`, `read: 6 bytes …`, `sleep: EINTR …`.
fn print_interruption(what: &str, interruption: &Interruption) {
    let runs = interruption.handler_runs;
    match interruption.outcome {
        Outcome::Interrupted => {
            println!("{what}: EINTR after the handler ran {runs} time(s): not restarted")
        }
        Outcome::Read(bytes) => {
            println!("{what}: {bytes} byte(s), after the handler ran {runs} time(s)")
        }
        Outcome::Completed => println!("{what}: completed, the handler ran {runs} time(s)"),
    }
}

// ANCHOR: cli_events
/// `events`: prints every signal as it is read, until SIGTERM.
fn watch(via: ViaArg, mut signals: Vec<Sig>) -> anyhow::Result<()> {
    let stop = Sig::from(Signal::SIGTERM);
    if !signals.contains(&stop) {
        signals.push(stop);
    }
    let mut events = match via.via() {
        Via::SignalFd => Events::signalfd(&signals)?,
        Via::SelfPipe => Events::self_pipe(&signals)?,
    };
    let names: Vec<String> = signals.iter().map(|&s| signal_name(s)).collect();
    println!("ready: {} from {}", names.join(" "), via.describe());
    loop {
        let event = events.next_signal()?;
        let name = event
            .signal()
            .map_or_else(|| event.signo.to_string(), signal_name);
        if event.signal() == Some(stop) {
            println!("event: {name}: stopping");
            return Ok(());
        }
        println!("event: {name}");
    }
}
// ANCHOR_END: cli_events
