//! Running cargo and other programs, always from an argument vector (never
//! through a shell), with their output captured.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::{Command, Output};

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

/// A one-line "what I am doing now" note on a terminal's standard error,
/// replaced by the next note and erased by [`Status::clear`]. Nothing is
/// printed when standard error is not a terminal.
pub struct Status {
    enabled: bool,
}

impl Status {
    /// A status line on standard error, if it is a terminal.
    pub fn new() -> Status {
        Status {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Shows `note` in place of the previous one.
    pub fn show(&self, note: &str) {
        if self.enabled {
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
