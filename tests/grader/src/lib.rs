//! The grading harness of the workbook.
//!
//! Every grading suite runs the lab's program through this crate, never
//! directly. A run here:
//!
//! * starts the program in its **own process group** and, on timeout, kills
//!   the whole group (a forked grandchild that holds stdout open cannot hang
//!   the test);
//! * gives it a **clean environment** (`LC_ALL=C`, `RUST_BACKTRACE=0`, no
//!   inherited descriptors beyond 0–2, no core files) and a per-test
//!   [`Sandbox`]: a private directory, a key file for `ftok`, and a unique
//!   prefix for POSIX IPC names;
//! * **checks for leftovers** once the program has exited: processes still
//!   running in its group, children it never waited for, System V objects
//!   under the sandbox's keys, POSIX objects under its prefix, FIFOs it made
//!   in the sandbox and did not remove. Each leftover fails the test with a
//!   message naming the missing call, and is cleaned up so the machine stays
//!   clean whatever the program did;
//! * **normalises** its transcript (sandbox paths, program path) for snapshots.
//!
//! A program that runs until it is told to stop (a server) is started in
//! the background with [`Cmd::start`]: the test watches it
//! ([`Running::wait_for_stdout`], [`Running::wait_until_blocked_in`],
//! [`Running::wait_until_alone`], which fail with a precise message when
//! the program ends first or is late; [`Running::wait_until_blocked`], which
//! reports what it saw), sends it signals, and collects it with
//! [`Running::wait`], which makes the same checks, or [`Running::kill`]. If
//! the test fails first, dropping the [`Running`] kills the program's whole
//! process group.
//!
//! A suite starts with [`lab!`], which finds the binary under test:
//!
//! ```ignore
//! let lab = grader::lab!();
//! let run = lab.cmd(["count"]).stdin("a\nb\n").run();
//! run.expect_success();
//! grader::assert_transcript!(run);
//! ```

mod capture;
mod failure;
mod kept_names;
mod leaks;
mod maps;
mod masks;
mod private;
mod procfs;
mod run;
mod running;
mod sandbox;

pub use failure::Failure;
pub use kept_names::KeptName;
pub use leaks::{Leak, LeakKind};
pub use maps::{MapEntry, mappings_of, open_files_of};
pub use procfs::SysvKind;
pub use run::{Cmd, Run};
pub use running::{Blocked, Running};
pub use sandbox::Sandbox;

/// Re-exported so that suites need only one dev-dependency.
pub use insta;

use std::path::PathBuf;
use std::time::Duration;

/// How long a program may run before the grader kills its process group,
/// unless the test says otherwise with [`Cmd::timeout`]. Every lab program
/// finishes in milliseconds; the margin is for a loaded two-core machine.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The program under test and the chapter that explains it.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The executable built from the lab (or the reference solution).
    pub bin: PathBuf,
    /// The name the transcripts show for it (the lab's package name, without
    /// any `-solution` suffix, so that lab and solution share snapshots).
    pub name: String,
    /// The book chapter failure messages point to, e.g. `02-pipes.md`.
    pub chapter: String,
}

impl Lab {
    /// Describes the binary `bin` of the package `package`, explained in the
    /// book chapter `chapter`. Suites use [`lab!`] instead.
    pub fn new(bin: impl Into<PathBuf>, package: &str, chapter: &str) -> Lab {
        sandbox::refuse_snapshot_overrides(package);
        let name = package.strip_suffix("-solution").unwrap_or(package);
        Lab {
            bin: bin.into(),
            name: name.to_string(),
            chapter: chapter.to_string(),
        }
    }

    /// A command running the lab's program with `args`, in a fresh sandbox.
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        self.cmd_in(Sandbox::new(), args)
    }

    /// Like [`Lab::cmd`], in a sandbox the test has already prepared (files
    /// written into it, a FIFO made, …).
    pub fn cmd_in<I, S>(&self, sandbox: Sandbox, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Cmd::new(&self.bin, sandbox)
            .display_name(&self.name)
            .chapter(&self.chapter)
            .args(args)
    }
}

impl Lab {
    /// `sh -c SCRIPT PROGRAM` in `sandbox`: a fixed test script that runs
    /// the lab's program as `"$0"` (never spliced into the text), shown by
    /// its name in transcripts. Further arguments become `"$1"`, `"$2"` ….
    pub fn script_in(&self, sandbox: Sandbox, script: &str) -> Cmd {
        Cmd::new("sh", sandbox)
            .args(["-c", script])
            .arg(&self.bin)
            .alias(&self.bin, &self.name)
            .chapter(&self.chapter)
    }
}

/// The [`Lab`] of the package whose test is being compiled: its binary has
/// the package's name (the lab `pipes`, or the reference `pipes-solution`).
///
/// `grader::lab!("02-pipes.md")` names the book chapter that failure messages
/// point to.
#[macro_export]
macro_rules! lab {
    ($chapter:expr) => {
        $crate::Lab::new(
            env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))),
            env!("CARGO_PKG_NAME"),
            $chapter,
        )
    };
}

/// Compares the normalised transcript of a [`Run`] (command, stdout, stderr,
/// exit status) with the committed snapshot named after the test.
#[macro_export]
macro_rules! assert_transcript {
    ($run:expr) => {{
        let run: &$crate::Run = &$run;
        $crate::insta::with_settings!({
            omit_expression => true,
            description => run.description(),
        }, {
            $crate::insta::assert_snapshot!(run.transcript());
        });
    }};
}

/// Like [`assert_transcript!`], on [`Run::masked_transcript`]: for suites
/// whose scripts announce pids (`NAME: pid N`) and IPC identifiers.
/// `grader::assert_masked_transcript!(run, "semid ", "[semid]")`.
#[macro_export]
macro_rules! assert_masked_transcript {
    ($run:expr, $id_marker:expr, $id_label:expr) => {{
        let run: &$crate::Run = &$run;
        $crate::insta::with_settings!({
            omit_expression => true,
            description => run.masked_description(),
        }, {
            $crate::insta::assert_snapshot!(run.masked_transcript($id_marker, $id_label));
        });
    }};
}
