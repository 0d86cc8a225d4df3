//! Masking what a script-driven transcript announces and what differs from
//! run to run: the key file's name, process IDs and IPC identifiers.
//!
//! The labs print deterministic output by design. Suites that run several
//! lab processes from one fixed shell script cannot avoid pids and ids, so
//! the script *announces* them (`holder: pid 4242`, `semid 98304: …`) and
//! the transcript shows the announced name instead of the number.

use std::collections::BTreeMap;

use crate::Run;

/// Values a test chose at random, and has checked already, shown in a
/// snapshot by a label: the `masks` of
/// [`assert_transcript!`](crate::assert_transcript) and
/// [`assert_masked_transcript!`](crate::assert_masked_transcript).
///
/// ```ignore
/// let masks = Masks::new().value(&text, "[TEXT]").value(size, "[SIZE]");
/// grader::assert_transcript!(run, &masks);
/// ```
///
/// Each value is replaced by its label in the transcript and in the
/// snapshot's description, in the order given. A value made only of
/// digits is replaced only where it stands as a whole number (not inside
/// a longer number, a word or a name: `12` is masked in `size 12` but not
/// in `4123` or `x12`); any other value wherever it occurs. Check a value
/// before masking it: a mask hides it from the comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masks {
    pairs: Vec<(String, String)>,
}

impl Masks {
    /// No masks yet.
    pub fn new() -> Masks {
        Masks::default()
    }

    /// Shows `value` as `label` (`"[SIZE]"`).
    pub fn value(mut self, value: impl ToString, label: &str) -> Masks {
        self.pairs.push((value.to_string(), label.to_string()));
        self
    }

    /// `text` with every value replaced by its label.
    pub fn apply(&self, text: &str) -> String {
        self.pairs
            .iter()
            .filter(|(value, _)| !value.is_empty())
            .fold(text.to_string(), |text, (value, label)| {
                if value.chars().all(|c| c.is_ascii_digit()) {
                    replace_whole_number(&text, value, label)
                } else {
                    text.replace(value.as_str(), label)
                }
            })
    }
}

impl Run {
    /// The [`Run::transcript`] with `[SANDBOX]/ipc-key-N` shown as
    /// `[KEY_FILE]`, every pid a line announced as `NAME: pid N` shown as
    /// `[NAME]`, and every number that follows `id_marker` (`"semid "`)
    /// shown as `id_label` (`"[semid]"`).
    pub fn masked_transcript(&self, id_marker: &str, id_label: &str) -> String {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for line in self.stdout.lines() {
            if let Some((name, pid)) = line.split_once(": pid ") {
                names.insert(pid.trim().to_string(), format!("[{name}]"));
            }
            if let Some((_, rest)) = line.split_once(id_marker) {
                let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if !id.is_empty() {
                    names.insert(id, id_label.to_string());
                }
            }
        }
        let mut text = mask_key_file(&self.transcript());
        for (number, label) in &names {
            text = replace_number(&text, number, label);
        }
        text
    }

    /// [`Run::description`] with the key file's name masked.
    pub fn masked_description(&self) -> String {
        mask_key_file(&self.description())
    }

    /// Fails unless the program reported an error on exactly one line that
    /// starts with `PROGRAM: ` and names `errno`, and exited with status 1.
    pub fn expect_one_line_error(&self, program: &str, errno: &str, why: &str) -> &Run {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let prefix = format!("{program}: ");
        let one_line = lines.len() == 1 && lines[0].starts_with(&prefix);
        if self.code() != Some(1) || !one_line || !self.stderr.contains(errno) {
            let mut failure = self.failure(format!(
                "expected one line `{program}: …{errno}…` on stderr and exit status 1"
            ));
            failure.why = Some(why.to_string());
            failure.raise();
        }
        self
    }

    /// Fails unless standard output has the whole line `line`.
    pub fn expect_line(&self, line: &str, why: &str) -> &Run {
        if !self.stdout.lines().any(|l| l == line) {
            self.fail(format!("never printed {line:?}"), why);
        }
        self
    }
}

/// `[SANDBOX]/ipc-key-N` (N is usually 0) becomes `[KEY_FILE]`.
fn mask_key_file(text: &str) -> String {
    const NAME: &str = "[SANDBOX]/ipc-key-";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(NAME) {
        out.push_str(&rest[..at]);
        out.push_str("[KEY_FILE]");
        rest = rest[at + NAME.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Replaces every whole number equal to `number` (not part of a longer
/// number) with `label`.
fn replace_number(text: &str, number: &str, label: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if digits == number { label } else { &digits });
        digits.clear();
        out.push(c);
    }
    out.push_str(if digits == number { label } else { &digits });
    out
}

/// Replaces `number` with `label` where it stands alone: neither the
/// character before nor the one after is a letter, a digit or `_` (a
/// regular expression's `\bNUMBER\b`).
fn replace_whole_number(text: &str, number: &str, label: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(number) {
        let before = match at {
            0 => out.chars().last(),
            _ => rest[..at].chars().last(),
        };
        let after = rest[at + number.len()..].chars().next();
        out.push_str(&rest[..at]);
        if word(before) || word(after) {
            out.push_str(number);
        } else {
            out.push_str(label);
        }
        rest = &rest[at + number.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Masks, mask_key_file, replace_number};

    #[test]
    fn masks_replace_numbers_only_where_they_stand_alone() {
        let masks = Masks::new().value(12, "[N]").value("ab c", "[TEXT]");
        assert_eq!(
            masks.apply("12 x12 4123 12_ (12) ab cd 12"),
            "[N] x12 4123 12_ ([N]) [TEXT]d [N]"
        );
        assert_eq!(masks.apply("1212"), "1212");
        assert_eq!(Masks::new().value("", "[E]").apply("abc"), "abc");
    }

    #[test]
    fn only_whole_numbers_are_replaced() {
        assert_eq!(replace_number("12 123 12", "12", "[x]"), "[x] 123 [x]");
    }

    #[test]
    fn key_files_are_masked_whatever_their_number() {
        assert_eq!(
            mask_key_file("[SANDBOX]/ipc-key-2 and [SANDBOX]/ipc-key-0"),
            "[KEY_FILE] and [KEY_FILE]"
        );
    }
}
