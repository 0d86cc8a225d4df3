//! Comparing what a program printed with what the test worked out it should
//! print, for tests whose inputs vary from run to run (no snapshot can hold
//! the expected text).

use crate::{Cmd, Run, Sandbox};

impl Run {
    /// Fails unless standard output is exactly `expected`. The message shows
    /// the first line that differs, and the number of lines of each when
    /// they differ, so that a long output need not be compared by eye.
    pub fn expect_lines(&self, expected: &str, why: &str) -> &Run {
        if self.stdout != expected {
            let mut failure = self.failure("printed something other than expected");
            failure.details = difference(expected, &self.stdout);
            failure.why = Some(why.to_string());
            failure.raise();
        }
        self
    }
}

impl Run {
    /// Runs `sh -c script` in `sandbox` and fails unless it printed the same
    /// standard output and exited the same way as this run, like
    /// [`Run::expect_same_as_shell`], with a message whose detail lines
    /// (what the shell did, what the program did, where they first differ)
    /// can be quoted as they are. The script is fixed test text, never
    /// input from a program.
    pub fn expect_as_in_shell(&self, script: &str, sandbox: Sandbox, why: &str) -> &Run {
        let shell = Cmd::new("sh", sandbox).args(["-c", script]).run();
        if self.stdout != shell.stdout || self.code() != shell.code() {
            let mut failure = self.failure("did not do what the shell does");
            failure.details.push(format!(
                "the shell, running {script:?}, exited with {}",
                exit_code(shell.code())
            ));
            failure.details.push(format!(
                "this program exited with {}",
                exit_code(self.code())
            ));
            if self.stdout != shell.stdout {
                failure
                    .details
                    .extend(difference(&shell.stdout, &self.stdout));
            }
            failure.why = Some(why.to_string());
            failure.raise();
        }
        self
    }
}

/// "status 3", or "no status (killed by a signal)".
fn exit_code(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("status {code}"),
        None => "no status (killed by a signal)".to_string(),
    }
}

/// Where `actual` first departs from `expected`, in a line or two.
pub(crate) fn difference(expected: &str, actual: &str) -> Vec<String> {
    let want: Vec<&str> = expected.lines().collect();
    let got: Vec<&str> = actual.lines().collect();
    let mut details = Vec::new();
    match (0..want.len().max(got.len())).find(|&at| want.get(at) != got.get(at)) {
        Some(at) => {
            let show = |line: Option<&&str>| match line {
                Some(line) => format!("{:?}", cut(line)),
                None => "nothing".to_string(),
            };
            details.push(format!(
                "line {}: expected {}, got {}",
                at + 1,
                show(want.get(at)),
                show(got.get(at))
            ));
        }
        None => details.push("the lines are the same; the newline at the end differs".to_string()),
    }
    if want.len() != got.len() {
        details.push(format!(
            "expected {} line(s), got {}",
            want.len(),
            got.len()
        ));
    }
    details
}

/// At most 120 characters of `line`, with a note of how much was cut.
fn cut(line: &str) -> String {
    const SHOWN: usize = 120;
    match line.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}… ({} bytes in all)", &line[..at], line.len()),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::difference;

    #[test]
    fn the_first_differing_line_is_named() {
        assert_eq!(
            difference("a\nb\nc\n", "a\nx\nc\n"),
            vec![r#"line 2: expected "b", got "x""#.to_string()]
        );
    }

    #[test]
    fn missing_lines_are_counted() {
        assert_eq!(
            difference("a\nb\n", "a\n"),
            vec![
                r#"line 2: expected "b", got nothing"#.to_string(),
                "expected 2 line(s), got 1".to_string()
            ]
        );
    }
}
