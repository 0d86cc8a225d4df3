//! Running cargo and other programs, always from an argument vector (never
//! through a shell), with their output captured.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result};

/// The output of a finished program.
#[derive(Debug)]
pub struct Captured {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output, decoded lossily.
    pub stdout: String,
    /// Its standard error, decoded lossily.
    pub stderr: String,
}

impl Captured {
    /// Standard output followed by standard error.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// The cargo that runs this tool (`$CARGO`), or `cargo` from `PATH`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// A cargo command that runs in `root` with plain, colourless output.
pub fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(cargo_program());
    cmd.current_dir(root).env("CARGO_TERM_COLOR", "never");
    cmd
}

/// Sets the environment every graded run gets, whatever the caller's shell
/// says: snapshots are compared, never written or accepted, and a failure
/// prints its message without a backtrace.
pub fn grading_env(cmd: &mut Command) -> &mut Command {
    cmd.env("INSTA_UPDATE", "no")
        .env("RUST_BACKTRACE", "0")
        .env("CI", "true")
        .env_remove("INSTA_FORCE_PASS")
}

/// The command line of `cmd`, for messages.
pub fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    let mut words = vec![program];
    words.extend(cmd.get_args().map(|arg| arg.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs `cmd` to completion with its output captured.
pub fn capture(cmd: &mut Command) -> Result<Captured> {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    Ok(Captured {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Runs `cmd` to completion with its output captured, handing each line of
/// its standard error to `on_line` as it arrives (cargo reports there what
/// it is compiling, which a progress line can show).
pub fn capture_streaming(cmd: &mut Command, on_line: &mut dyn FnMut(&str)) -> Result<Captured> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    let (Some(mut out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        anyhow::bail!("cannot read the output of `{}`", describe(cmd));
    };
    // Standard output is read on its own thread: a child that fills one
    // pipe while this thread waits on the other would never finish.
    let stdout_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        out.read_to_end(&mut bytes).map(|_| bytes)
    });
    let mut stderr = Vec::new();
    let mut lines = BufReader::new(err);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = lines
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read the output of `{}`", describe(cmd)))?;
        if n == 0 {
            break;
        }
        on_line(String::from_utf8_lossy(&line).trim_end());
        stderr.extend_from_slice(&line);
    }
    let stdout = stdout_reader
        .join()
        .map_err(|_| anyhow::anyhow!("the thread reading `{}` failed", describe(cmd)))?
        .with_context(|| format!("cannot read the output of `{}`", describe(cmd)))?;
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{}`", describe(cmd)))?;
    Ok(Captured {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// A one-line "what I am doing now" note on a terminal's standard error,
/// replaced by the next note and erased by [`Status::clear`]. Nothing is
/// printed when standard error is not a terminal.
pub struct Status {
    enabled: bool,
}

impl Default for Status {
    fn default() -> Status {
        Status::new()
    }
}

impl Status {
    /// A status line on standard error, if it is a terminal.
    pub fn new() -> Status {
        Status {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// True when the notes are shown (standard error is a terminal).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Shows `note` in place of the previous one, cut to the terminal's
    /// width (a note that wrapped could not be erased).
    pub fn show(&self, note: &str) {
        if self.enabled {
            let width = terminal_width().saturating_sub(1).max(20);
            let note: String = note.chars().take(width).collect();
            let mut err = std::io::stderr();
            // A failed write to the terminal only loses a progress note.
            let _ = write!(err, "\r\x1b[K{note}");
            let _ = err.flush();
        }
    }

    /// Erases the note.
    pub fn clear(&self) {
        self.show("");
    }
}

/// Progress over a known number of steps, shown as
/// `[2/5] ####------ grading 02-pipes: compiling nix` on a terminal, and as
/// one plain line per step (`[2/5] grading 02-pipes …`) otherwise, so that
/// logs still say what ran.
pub struct Progress {
    status: Status,
    total: usize,
    current: usize,
    what: String,
}

impl Progress {
    /// Progress over `total` steps, on standard error.
    pub fn new(total: usize) -> Progress {
        Progress {
            status: Status::new(),
            total,
            current: 0,
            what: String::new(),
        }
    }

    /// Starts the next step, described by `what` (e.g. `grading 02-pipes`).
    pub fn step(&mut self, what: &str) {
        self.current += 1;
        self.what = what.to_string();
        if self.status.enabled() {
            self.note("");
        } else {
            eprintln!("[{}/{}] {what} …", self.current, self.total);
        }
    }

    /// Adds a detail to the current step (e.g. `compiling nix`).
    pub fn note(&self, detail: &str) {
        let bar = bar(self.current.saturating_sub(1), self.total, 10);
        let detail = if detail.is_empty() {
            " …".to_string()
        } else {
            format!(": {detail}")
        };
        self.status.show(&format!(
            "[{}/{}] {bar} {}{detail}",
            self.current, self.total, self.what
        ));
    }

    /// Erases the progress line.
    pub fn clear(&self) {
        self.status.clear();
    }
}

/// A bar of `width` cells, `done` of `total` filled: `####------`.
fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0).min(width);
    format!("{}{}", "#".repeat(filled), "-".repeat(width - filled))
}

/// What a line of cargo's standard error says it is doing, for a progress
/// note: `Compiling nix v0.31.3` → `compiling nix`, `Running tests/…` →
/// `running the tests`.
pub fn cargo_activity(line: &str) -> Option<String> {
    let line = line.trim_start();
    let (verb, rest) = line.split_once(' ')?;
    let name = rest.split_whitespace().next().unwrap_or("");
    match verb {
        "Compiling" | "Checking" | "Building" => Some(format!("compiling {name}")),
        "Running" => Some("running the tests".to_string()),
        "Blocking" => Some("waiting for another cargo to finish".to_string()),
        "Downloading" | "Downloaded" => Some("downloading crates".to_string()),
        _ => None,
    }
}

/// The width of the terminal on standard error, or 80.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a `winsize`, which is zero-initialised and
    // valid to write; on failure it is left unread.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_in_proportion() {
        assert_eq!(bar(0, 5, 10), "----------");
        assert_eq!(bar(2, 5, 10), "####------");
        assert_eq!(bar(5, 5, 10), "##########");
        assert_eq!(bar(0, 0, 10), "----------");
    }

    #[test]
    fn cargo_lines_become_activities() {
        assert_eq!(
            cargo_activity("   Compiling nix v0.31.3").as_deref(),
            Some("compiling nix")
        );
        assert_eq!(
            cargo_activity("     Running tests/02-pipes.rs (target/debug/deps/pipes-1)").as_deref(),
            Some("running the tests")
        );
        assert_eq!(cargo_activity("warning: unused variable"), None);
        assert_eq!(cargo_activity(""), None);
    }
}
