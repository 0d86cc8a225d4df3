//! The course CLI's library: everything `cargo workbook` does for students
//! (`grade`, `watch`, `hint`, `reset`, `trace`, `doctor`, `clean`, `serve`,
//! `build`, and `score`, which the autograding workflow runs), and what the
//! instructors' tool (`workbook-admin`) builds on: finding the course and its
//! labs, running cargo, reading test output, what each suite grades and how
//! it turns into points, grading, the checksum manifests.
//!
//! It depends on `anyhow` and `libc` only, and on no procedural macro, so
//! that a student's first `cargo workbook hint` compiles in seconds.

#[cfg(target_os = "linux")]
pub mod clean;
#[cfg(target_os = "linux")]
pub mod doctor;
pub mod grade;
pub mod hint;
#[cfg(target_os = "linux")]
mod inotify;
pub mod json;
pub mod junit;
pub mod libtest;
pub mod manifest;
pub mod mdbook;
pub mod minitoml;
pub mod plan;
pub mod process;
pub mod reset;
pub mod score;
pub mod sha256;
pub mod trace;
pub mod watch;
pub mod workspace;

/// An error in how the tool was invoked (unknown lab, not inside the course):
/// reported like any error, but with exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The exit status for an error a command returned: 2 for a
/// [`UsageError`], 1 otherwise. The error is printed first, as
/// `workbook: <error with its causes>`.
pub fn report_error(err: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("workbook: {err:#}");
    if err.downcast_ref::<UsageError>().is_some() {
        std::process::ExitCode::from(2)
    } else {
        std::process::ExitCode::FAILURE
    }
}
