//! The grading harness of the workbook.
//!
//! Every grading suite runs the lab's program through this crate, never
//! directly. A run here:
//!
//! * starts the program under a **shepherd** of its own (see the `shepherd`
//!   module): a small process that is a child subreaper, so that every
//!   process the program starts stays its descendant, even one that calls
//!   `setsid` or `setpgid`, double-forks or daemonizes. On timeout every one
//!   of them is killed (a forked grandchild that holds stdout open cannot
//!   hang the test), and tests running in parallel never see each other's
//!   processes. The program itself runs in its own process group;
//! * gives it a **clean environment** (`LC_ALL=C`, `RUST_BACKTRACE=0`, no
//!   inherited descriptors beyond 0–2, no core files) and a per-test
//!   [`Sandbox`]: a private directory, a key file for `ftok`, and a unique
//!   prefix for POSIX IPC names;
//! * **checks for leftovers** once the program has exited: processes it
//!   started that are still running (daemons included, named as such),
//!   children it never waited for, System V objects
//!   under the sandbox's keys, POSIX objects under its prefix, FIFOs and
//!   socket files it made in the sandbox and did not remove. Each leftover fails the test with a
//!   message naming the missing call, and is cleaned up so the machine stays
//!   clean whatever the program did;
//! * **normalises** its transcript (sandbox paths, program path) for
//!   snapshots, and reports a snapshot mismatch itself (what differs, the
//!   likely cause, a short diff, the book section: see [`assert_transcript!`]).
//!
//! Every failure says what went wrong, why it probably did, and where the
//! book explains it, in lines that fit a terminal; what had to be cut is
//! saved under the target directory (see [`Failure`]).
//!
//! A program that runs until it is told to stop (a server) is started in
//! the background with [`Cmd::start`]: the test watches it
//! ([`Running::wait_for_stdout`], [`Running::wait_until_blocked_in`],
//! [`Running::wait_until_alone`], which fail with a precise message when
//! the program ends first or is late; [`Running::wait_until_blocked`], which
//! reports what it saw), sends it signals, and collects it with
//! [`Running::wait`], which makes the same checks, or [`Running::kill`]. If
//! the test fails first, dropping the [`Running`] kills the program and
//! every process it started.
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
mod causes;
mod compare;
mod failure;
mod file_locks;
mod kept_names;
mod leaks;
mod maps;
mod masks;
mod private;
mod procfs;
mod run;
mod running;
mod sandbox;
mod shepherd;
mod signals;
#[doc(hidden)]
pub mod snapshot;
mod socket_files;
mod tracing;
mod varied;

pub use failure::{Failure, WIDTH};
pub use file_locks::{FileLock, LockClass, file_locks_on, kill_and_wait, locks_held_by};
pub use kept_names::KeptName;
pub use leaks::{Leak, LeakKind};
pub use maps::{MapEntry, mappings_of, open_files_of};
pub use masks::Masks;
pub use procfs::SysvKind;
pub use run::{Cmd, Run};
pub use running::{Blocked, Running};
pub use sandbox::Sandbox;
pub use signals::{Descriptor, SignalState, children_of, descriptors_of, process_state};
pub use varied::{SEED_VARIABLE, Varied};

/// Re-exported so that suites need only one dev-dependency.
pub use insta;

use std::path::PathBuf;
use std::time::Duration;

/// How long a program may run before the grader kills it and every process
/// it started, unless the test says otherwise with [`Cmd::timeout`]. Every lab program
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
///
/// On a mismatch the test fails like any other grader failure: which parts
/// differ (stdout, stderr, the exit status), the likely cause, a short diff
/// (`-` the reference solution, `+` the program) and the book section.
/// Filters set around it with `insta::with_settings!` apply. With
/// `INSTA_UPDATE=always` (reference solutions only) insta writes the
/// snapshots, as usual.
///
/// With a second argument, a [`&Masks`](Masks): the values the test chose
/// at random (and has checked already) are shown by their labels, in the
/// transcript and in the snapshot's description, before anything is
/// compared; filters set with `insta::with_settings!` apply after them.
///
/// ```ignore
/// let masks = grader::Masks::new().value(&text, "[TEXT]");
/// grader::assert_transcript!(run, &masks);
/// ```
///
/// With `text = …`, a transcript the suite built from the run itself (the
/// run's transcript with more in it, such as the system calls it made) is
/// compared instead of [`Run::transcript`], optionally with masks:
///
/// ```ignore
/// grader::assert_transcript!(run, text = traced(&run), &masks);
/// ```
#[macro_export]
macro_rules! assert_transcript {
    ($run:expr, text = $text:expr) => {{
        let run: &$crate::Run = &$run;
        $crate::__compare_snapshot!(run, $text, run.description())
    }};
    ($run:expr, text = $text:expr, $masks:expr) => {{
        let run: &$crate::Run = &$run;
        let masks: &$crate::Masks = $masks;
        let text: ::std::string::String = $text;
        $crate::__compare_snapshot!(run, masks.apply(&text), masks.apply(&run.description()))
    }};
    ($run:expr) => {{
        let run: &$crate::Run = &$run;
        $crate::__compare_snapshot!(run, run.transcript(), run.description())
    }};
    ($run:expr, $masks:expr) => {{
        let run: &$crate::Run = &$run;
        let masks: &$crate::Masks = $masks;
        $crate::__compare_snapshot!(
            run,
            masks.apply(&run.transcript()),
            masks.apply(&run.description())
        )
    }};
}

/// Like [`assert_transcript!`], on [`Run::masked_transcript`]: for suites
/// whose scripts announce pids (`NAME: pid N`) and IPC identifiers.
/// `grader::assert_masked_transcript!(run, "semid ", "[semid]")`.
///
/// A fourth argument, a [`&Masks`](Masks), masks the values the test chose
/// at random, as [`assert_transcript!`] does:
/// `grader::assert_masked_transcript!(run, "semid ", "[semid]", &masks)`.
#[macro_export]
macro_rules! assert_masked_transcript {
    ($run:expr, $id_marker:expr, $id_label:expr) => {{
        let run: &$crate::Run = &$run;
        $crate::__compare_snapshot!(
            run,
            run.masked_transcript($id_marker, $id_label),
            run.masked_description()
        )
    }};
    ($run:expr, $id_marker:expr, $id_label:expr, $masks:expr) => {{
        let run: &$crate::Run = &$run;
        let masks: &$crate::Masks = $masks;
        $crate::__compare_snapshot!(
            run,
            masks.apply(&run.masked_transcript($id_marker, $id_label)),
            masks.apply(&run.masked_description())
        )
    }};
}

/// The body of [`assert_transcript!`]: it must expand in the suite, where
/// `file!()`, `module_path!()` and the test function name insta's snapshot.
/// Suites call [`assert_transcript!`] (with `text = …` for a transcript of
/// their own making) or [`assert_masked_transcript!`] (with [`Masks`] for
/// values of their own), not this.
#[doc(hidden)]
#[macro_export]
macro_rules! __compare_snapshot {
    ($run:expr, $text:expr, $description:expr) => {{
        let run: &$crate::Run = $run;
        let text: ::std::string::String = $text;
        let check =
            $crate::snapshot::Check::new(env!("CARGO_MANIFEST_DIR"), file!(), module_path!(), {
                fn f() {}
                fn type_name_of_val<T>(_: T) -> &'static str {
                    ::std::any::type_name::<T>()
                }
                type_name_of_val(f)
            });
        let mut settings = $crate::insta::Settings::clone_current();
        settings.set_omit_expression(true);
        settings.set_description($description);
        if !check.updating() {
            check.expect_reference(run);
            settings.set_comparator(check.comparator());
        }
        settings.bind(|| {
            $crate::insta::assert_snapshot!(check.name(), text.as_str());
        });
        check.finish(run);
    }};
}
