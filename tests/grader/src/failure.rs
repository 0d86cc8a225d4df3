//! The message a failed test prints: what went wrong first, then why it
//! probably happened, where the book explains it, and what the program did.
//!
//! Every line fits a terminal ([`WIDTH`] columns): prose (the first line,
//! `why:`, `read:`, a leftover's `fix:`) is wrapped at spaces; a value (a
//! line of output, a command line, a diff line) that is too long is cut,
//! with a count of what was cut. When anything was cut, the whole message,
//! uncut and with everything the program printed, is saved to a file under
//! the target directory, and its path is printed last.
//!
//! What differs from run to run in this test process is shown the way
//! transcripts show it, wherever it appears in the message (the test's own
//! sentences included): a POSIX IPC name of the grader's, a sandbox's
//! (`/wb4242x3-jobs`) or a [`KeptName`](crate::KeptName)
//! (`/wb4242x1000000-jobs`), as `/[PREFIX]-jobs`; a sandbox directory
//! (`/tmp/workbook-4242-AbC123`) as `[SANDBOX]`. So the same mistake gives
//! the same message in every run, and the book can quote it.

use std::fmt;
use std::path::PathBuf;

/// The widest line a failure prints, in characters.
pub const WIDTH: usize = 100;

/// At most this many lines of each output stream are shown.
const SHOWN_LINES: usize = 20;
/// At most this many characters of each output stream are shown.
const SHOWN_CHARS: usize = 2000;
/// The saved full text holds at most this much of each output stream.
const SAVED_BYTES: usize = 1 << 20;

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
    /// Lines too many to print (a whole diff): only in the saved full text,
    /// right after the details.
    pub appendix: Vec<String>,
}

impl Failure {
    /// Fails the test with this message.
    ///
    /// The message is printed (the test harness captures it and shows it
    /// under the test's name), then the test unwinds without the panic hook:
    /// no `panicked at tests/grader/…` line and no backtrace pointing into
    /// the grader, whatever `RUST_BACKTRACE` says. If anything had to be cut
    /// to fit, the full text is saved first and its path printed last.
    pub fn raise(&self) -> ! {
        let (mut message, cut) = self.render(true);
        if cut && let Some(path) = save(&self.render(false).0) {
            message.push_str(&format!("\n  full text: {}", path.display()));
        }
        eprintln!("{message}");
        std::panic::resume_unwind(Box::new(message))
    }

    /// The message, cut to fit a terminal (`fit`) or whole; and whether
    /// anything was left out.
    fn render(&self, fit: bool) -> (String, bool) {
        self.steady().lay_out(fit)
    }

    /// This failure with what differs from run to run shown as transcripts
    /// show it (see the module documentation).
    fn steady(&self) -> Failure {
        let steady = |text: &String| steady_text(text);
        Failure {
            command: steady(&self.command),
            what: steady(&self.what),
            why: self.why.as_ref().map(steady),
            read: self.read.as_ref().map(steady),
            details: self.details.iter().map(steady).collect(),
            stdout: steady(&self.stdout),
            stderr: steady(&self.stderr),
            appendix: self.appendix.iter().map(steady).collect(),
        }
    }

    /// The message laid out, cut to fit a terminal (`fit`) or whole; and
    /// whether anything was left out.
    fn lay_out(&self, fit: bool) -> (String, bool) {
        let mut out = Lines {
            fit,
            text: String::new(),
            cut: false,
        };
        let program = self
            .command
            .split(' ')
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        out.prose("", "  ", &format!("{program}: {}", self.what));
        for detail in &self.details {
            for line in detail.lines() {
                out.detail(line);
            }
        }
        if !fit {
            for line in &self.appendix {
                out.value(&format!("  {line}"));
            }
        } else if !self.appendix.is_empty() {
            out.cut = true;
        }
        if let Some(why) = &self.why {
            out.prose("  why: ", "       ", why);
        }
        if let Some(read) = &self.read {
            out.prose("  read: ", "        ", read);
        }
        out.value(&format!("  $ {}", self.command));
        out.stream("stdout", &self.stdout);
        out.stream("stderr", &self.stderr);
        // No trailing newline: `raise` and Display add what they need.
        if out.text.ends_with('\n') {
            out.text.pop();
        }
        (out.text, out.cut)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true).0)
    }
}

/// A message being laid out.
struct Lines {
    /// Cut to fit, or keep everything.
    fit: bool,
    text: String,
    /// Something was left out.
    cut: bool,
}

impl Lines {
    /// A line of prose: wrapped at spaces, `first` before its first line
    /// and `rest` before the others.
    fn prose(&mut self, first: &str, rest: &str, text: &str) {
        let mut line = first.to_string();
        let mut empty = true;
        for (at, paragraph) in text.split('\n').enumerate() {
            if at > 0 {
                self.value(line.trim_end());
                line = rest.to_string();
                empty = true;
            }
            for word in paragraph.split(' ') {
                self.word(&mut line, &mut empty, rest, word);
            }
        }
        self.value(line.trim_end());
    }

    /// Adds `word` to the `line` being wrapped, starting a new one (with
    /// `rest`) when it would be too wide.
    fn word(&mut self, line: &mut String, empty: &mut bool, rest: &str, word: &str) {
        {
            let wide = line.chars().count() + 1 + word.chars().count() > WIDTH;
            if !*empty && wide {
                self.text.push_str(line.trim_end());
                self.text.push('\n');
                *line = rest.to_string();
                *empty = true;
            }
            if !*empty {
                line.push(' ');
            }
            line.push_str(word);
            *empty = false;
        }
    }

    /// A value: cut if it is too wide (when fitting).
    fn value(&mut self, line: &str) {
        if self.fit {
            let (shown, cut) = cut_line(line, WIDTH);
            self.cut |= cut;
            self.text.push_str(&shown);
        } else {
            self.text.push_str(line);
        }
        self.text.push('\n');
    }

    /// A detail line: prose if it is a `fix:` or `why:` line, else a value.
    fn detail(&mut self, line: &str) {
        let indent = 2 + line.len() - line.trim_start().len();
        let body = line.trim_start();
        for label in ["fix: ", "why: "] {
            if let Some(text) = body.strip_prefix(label) {
                let first = format!("{}{label}", " ".repeat(indent));
                let rest = " ".repeat(indent + label.len());
                self.prose(&first, &rest, text);
                return;
            }
        }
        self.value(&format!("  {line}"));
    }

    /// `stdout: …`, at most [`SHOWN_LINES`] lines (when fitting).
    fn stream(&mut self, label: &str, text: &str) {
        if text.is_empty() {
            self.text.push_str(&format!("  {label}: (empty)\n"));
            return;
        }
        self.text.push_str(&format!("  {label}:\n"));
        let limit = if self.fit { SHOWN_CHARS } else { SAVED_BYTES };
        let mut shown = 0;
        let mut lines = 0;
        for line in text.lines() {
            if (self.fit && lines == SHOWN_LINES) || shown >= limit {
                break;
            }
            self.value(&format!("    {line}"));
            shown += line.len() + 1;
            lines += 1;
        }
        let total_lines = text.lines().count();
        if lines < total_lines {
            self.cut = true;
            self.text.push_str(&format!(
                "    … ({} bytes, {total_lines} lines in all)\n",
                text.len()
            ));
        }
    }
}

/// `text` with the grader's POSIX name prefixes of this process
/// (`wb<pid>x<n>-`) shown as `[PREFIX]-`, and its sandbox directories
/// (`$TMPDIR/workbook-<pid>-XXXXXX`) as `[SANDBOX]`.
fn steady_text(text: &str) -> String {
    let pid = std::process::id();
    let sandboxes = std::env::temp_dir()
        .join(format!("workbook-{pid}-"))
        .display()
        .to_string();
    let text = replace_marked(text, &sandboxes, "[SANDBOX]", |rest| {
        rest.find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len())
    });
    replace_marked(&text, &format!("wb{pid}x"), "[PREFIX]-", |rest| {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        match rest[digits..].starts_with('-') {
            true if digits > 0 => digits + 1,
            _ => 0,
        }
    })
}

/// `text` with each `marker`, and the part after it that `tail` measures
/// (in bytes), replaced by `label`. A marker whose tail measures 0 is not
/// followed by what it should be, and is left as it is.
fn replace_marked(text: &str, marker: &str, label: &str, tail: impl Fn(&str) -> usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        let after = &rest[at + marker.len()..];
        let len = tail(after);
        out.push_str(if len == 0 { marker } else { label });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// `line` cut to `width` characters, with a count of what was cut; and
/// whether it was cut.
pub(crate) fn cut_line(line: &str, width: usize) -> (String, bool) {
    let total = line.chars().count();
    if total <= width {
        return (line.to_string(), false);
    }
    // "… [+123 chars]" takes at most 18 characters for any real line.
    let keep = width.saturating_sub(18);
    let kept: String = line.chars().take(keep).collect();
    (format!("{kept}… [+{} chars]", total - keep), true)
}

/// Saves `text` as `<target>/workbook/failures/<suite>/<test>.txt` and
/// returns the path, or `None` if there is no such place.
fn save(text: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // target/debug/deps/pipes-0123abcd, or target/debug/misbehave.
    let profile = if dir.file_name()? == "deps" {
        dir.parent()?
    } else {
        dir
    };
    let target = profile.parent()?;
    // `pipes-0123abcd` → `pipes`: the suite's name is enough, and keeps
    // the path short.
    let file = exe.file_name()?.to_string_lossy().into_owned();
    let binary = match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => file,
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "__")
        .replace(['/', '\\'], "_");
    let folder = target.join("workbook").join("failures").join(binary);
    std::fs::create_dir_all(&folder).ok()?;
    let path = folder.join(format!("{test}.txt"));
    std::fs::write(&path, format!("{text}\n")).ok()?;
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_a_count_and_prose_is_wrapped() {
        let failure = Failure {
            command: format!("pipes count {}", "x".repeat(300)),
            what: "printed something other than expected ".repeat(5),
            why: Some("a reason ".repeat(30)),
            details: vec![
                "kind (1): pid 1 (a)\n    fix: do this ".to_string() + &"and that ".repeat(20),
            ],
            stdout: (0..30).map(|i| format!("line {i}\n")).collect(),
            ..Failure::default()
        };
        let (text, cut) = failure.render(true);
        assert!(cut);
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(text.contains("… [+"), "{text}");
        assert!(text.contains("    fix: do this and that"), "{text}");
        assert!(text.contains("(230 bytes, 30 lines in all)"), "{text}");
        let (whole, _) = failure.render(false);
        assert!(whole.contains(&"x".repeat(300)));
        assert!(whole.contains("line 29"));
    }

    #[test]
    fn names_and_paths_of_this_process_are_shown_as_transcripts_show_them() {
        let pid = std::process::id();
        let sandbox = std::env::temp_dir().join(format!("workbook-{pid}-Ab3xY9"));
        let failure = Failure {
            command: format!("mq notify /wb{pid}x1000000-busy"),
            what: format!(
                "no queue /wb{pid}x3-jobs in {}/fifo; wb{pid}x-odd wb{pid}x12 wb1x2-other",
                sandbox.display()
            ),
            details: vec![format!("pid 7 (mq notify /wb{pid}x1000001-busy)")],
            ..Failure::default()
        };
        let (text, _) = failure.render(true);
        let expected = format!(
            "mq notify: no queue /[PREFIX]-jobs in [SANDBOX]/fifo; wb{pid}x-odd wb{pid}x12 \
             wb1x2-other\n  pid 7 (mq notify /[PREFIX]-busy)\n  $ mq notify /[PREFIX]-busy\n"
        );
        assert!(text.starts_with(&expected), "{text}");
    }

    #[test]
    fn a_short_failure_is_left_as_it_is() {
        let failure = Failure {
            command: "pipes count".into(),
            what: "exit status 1, expected exit status 0".into(),
            ..Failure::default()
        };
        let (text, cut) = failure.render(true);
        assert!(!cut);
        assert_eq!(
            text,
            "pipes count: exit status 1, expected exit status 0\n  $ pipes count\n  \
             stdout: (empty)\n  stderr: (empty)"
        );
    }
}
