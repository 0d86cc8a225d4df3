//! The message a failed test prints: what went wrong first, then why it
//! probably happened, where the book explains it, and what the program did.

use std::fmt;

/// A failed expectation about a run, ready to be printed by `panic!`.
///
/// ```text
/// pipes count: timed out after 10 s (the program, or a process it started, was still running)
///   why: the reader never saw end-of-file …
///   read: book chapter 02-pipes.md, section "Close the ends you do not use"
///   $ pipes count
///   stdout: (empty)
///   stderr: (empty)
/// ```
#[derive(Debug, Clone, Default)]
pub struct Failure {
    /// The command as the student would type it.
    pub command: String,
    /// What went wrong, in one sentence.
    pub what: String,
    /// The likely cause, when the test knows it.
    pub why: Option<String>,
    /// Where the book explains it: chapter file and section title.
    pub read: Option<String>,
    /// Further lines (leftovers, differences), printed indented.
    pub details: Vec<String>,
    /// What the program printed.
    pub stdout: String,
    /// What the program printed on stderr.
    pub stderr: String,
}

impl Failure {
    /// Fails the test with this message.
    ///
    /// The message is printed (the test harness captures it and shows it
    /// under the test's name), then the test unwinds without the panic hook:
    /// no `panicked at tests/grader/…` line and no backtrace pointing into
    /// the grader, whatever `RUST_BACKTRACE` says.
    pub fn raise(&self) -> ! {
        let message = self.to_string();
        eprintln!("{message}");
        std::panic::resume_unwind(Box::new(message))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = self
            .command
            .split(' ')
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(f, "{program}: {}", self.what)?;
        for detail in &self.details {
            writeln!(f, "  {detail}")?;
        }
        if let Some(why) = &self.why {
            writeln!(f, "  why: {why}")?;
        }
        if let Some(read) = &self.read {
            writeln!(f, "  read: {read}")?;
        }
        writeln!(f, "  $ {}", self.command)?;
        writeln!(f, "  stdout: {}", excerpt(&self.stdout))?;
        write!(f, "  stderr: {}", excerpt(&self.stderr))
    }
}

/// At most 20 lines / 2000 characters of `text`, indented under its label.
fn excerpt(text: &str) -> String {
    if text.is_empty() {
        return "(empty)".to_string();
    }
    const MAX_LINES: usize = 20;
    const MAX_CHARS: usize = 2000;
    let mut shown: String = text
        .lines()
        .take(MAX_LINES)
        .collect::<Vec<_>>()
        .join("\n    ");
    if shown.len() > MAX_CHARS {
        let mut cut = MAX_CHARS;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
    }
    let total_lines = text.lines().count();
    if total_lines > MAX_LINES || text.len() > MAX_CHARS {
        shown.push_str(&format!(
            "\n    … ({} bytes, {total_lines} lines in all)",
            text.len()
        ));
    }
    format!("\n    {shown}")
}
