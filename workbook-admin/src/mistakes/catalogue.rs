//! A lab's mistake catalogue (`solutions/NN-topic/mistakes.toml`) and the
//! checks that need no build: the format, the edits, the chapter's
//! Pitfalls.
//!
//! ```toml
//! [[mistake]]
//! name = "parent-keeps-write-end"      # kebab-case, unique in the lab
//! summary = "The parent never closes its write end, …"
//! pitfall = "Unused pipe ends left open" # a Pitfalls bullet of the chapter
//! tests = ["child_counts_what_the_parent_sends"]
//! expect = "never saw end-of-file"
//!
//! [[mistake.edit]]
//! file = "src/lib.rs"                   # the default, relative to the crate
//! find = "drop(write_end);"             # must occur exactly once
//! replace = "std::mem::forget(write_end);"
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use workbook::workspace::{Lab, LabToml, Workspace};

/// The fewest mistakes a complete catalogue holds.
pub const MIN_MISTAKES: usize = 8;

/// A lab's catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// The lab it belongs to.
    pub lab: Lab,
    /// Its mistakes, in the file's order.
    pub mistakes: Vec<Mistake>,
}

/// The file's contents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    mistake: Vec<Mistake>,
}

/// One classic mistake: a small change to the reference solution, the
/// tests that must catch it and what their failure must say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mistake {
    /// Kebab-case, unique in the lab; also the quote file's name.
    pub name: String,
    /// What the mistake gets wrong, in one sentence, for instructors.
    pub summary: String,
    /// The bold title of the chapter's Pitfalls bullet it illustrates.
    #[serde(default)]
    pub pitfall: Option<String>,
    /// The tests that must fail, every one of them, by exact name.
    pub tests: Vec<String>,
    /// A phrase every one of those failures must contain.
    pub expect: String,
    /// The changes to the solution.
    #[serde(rename = "edit", default)]
    pub edits: Vec<Edit>,
}

/// One change: `find` (exactly once in `file`) becomes `replace`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// Relative to the solution crate; `src/lib.rs` by default.
    #[serde(default = "default_file")]
    pub file: String,
    /// The text to find.
    pub find: String,
    /// What it becomes.
    pub replace: String,
}

fn default_file() -> String {
    "src/lib.rs".to_string()
}

/// `solutions/NN-topic/mistakes.toml`.
pub fn path(ws: &Workspace, lab: &Lab) -> PathBuf {
    ws.solution_dir(lab).join("mistakes.toml")
}

/// `book/src/mistakes/NN-topic/NAME.txt`: the quote of a mistake.
pub fn quote_path(ws: &Workspace, lab: &Lab, name: &str) -> PathBuf {
    quote_dir(ws, lab).join(format!("{name}.txt"))
}

/// `book/src/mistakes/NN-topic/`.
pub fn quote_dir(ws: &Workspace, lab: &Lab) -> PathBuf {
    ws.root.join("book/src/mistakes").join(&lab.name)
}

/// Reads a lab's catalogue; `None` when it has none.
pub fn load(ws: &Workspace, lab: &Lab) -> Result<Option<Catalogue>> {
    let path = path(ws, lab);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot read {}", ws.relative(&path).display()));
        }
    };
    let file: File = toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a mistake catalogue",
            ws.relative(&path).display()
        )
    })?;
    Ok(Some(Catalogue {
        lab: lab.clone(),
        mistakes: file.mistake,
    }))
}

impl Catalogue {
    /// Problems with the catalogue's form and edits, found without
    /// building: each names the mistake (`02-pipes/NAME: …`).
    pub fn check_form(&self, ws: &Workspace) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        let shown = ws.relative(&path(ws, &self.lab)).display().to_string();
        for (index, mistake) in self.mistakes.iter().enumerate() {
            let who = format!("{}/{}", self.lab.name, mistake.name);
            if !is_kebab(&mistake.name) {
                problems.push(format!(
                    "{shown}: mistake {}: the name `{}` is not kebab-case (a-z, 0-9 and -)",
                    index + 1,
                    mistake.name
                ));
            }
            if !seen.insert(mistake.name.as_str()) {
                problems.push(format!("{who}: the name is used twice in {shown}"));
            }
            for (field, value) in [("summary", &mistake.summary), ("expect", &mistake.expect)] {
                if value.trim().is_empty() {
                    problems.push(format!("{who}: `{field}` is empty"));
                }
            }
            if mistake.tests.is_empty() {
                problems.push(format!("{who}: `tests` names no test"));
            }
            if mistake.edits.is_empty() {
                problems.push(format!("{who}: no [[mistake.edit]]: it changes nothing"));
            }
            for problem in self.edit_problems(ws, mistake) {
                problems.push(format!("{who}: {problem}"));
            }
        }
        problems
    }

    /// Why the edits of `mistake` cannot be applied to the solution.
    fn edit_problems(&self, ws: &Workspace, mistake: &Mistake) -> Vec<String> {
        let solution = ws.solution_dir(&self.lab);
        let mut problems = Vec::new();
        for (index, edit) in mistake.edits.iter().enumerate() {
            let number = index + 1;
            let Some(relative) = safe_relative(&edit.file) else {
                problems.push(format!(
                    "edit {number}: `file = \"{}\"` must be a path inside the solution crate",
                    edit.file
                ));
                continue;
            };
            let file = solution.join(relative);
            let shown = ws.relative(&file).display().to_string();
            let Ok(text) = fs::read_to_string(&file) else {
                problems.push(format!(
                    "no longer applies: edit {number}: cannot read {shown}"
                ));
                continue;
            };
            if edit.find.is_empty() {
                problems.push(format!("edit {number}: `find` is empty"));
                continue;
            }
            let count = text.matches(edit.find.as_str()).count();
            if count != 1 {
                problems.push(format!(
                    "no longer applies: edit {number}: {} occurs {} in {shown} (it must occur \
                     exactly once)",
                    one_line(&edit.find),
                    times(count)
                ));
            }
            if edit.find == edit.replace {
                problems.push(format!("edit {number}: `replace` is the same as `find`"));
            }
        }
        problems
    }
}

/// The solution's files with `mistake` applied: (path relative to the
/// crate, new text) for each file it changes. Fails when an edit does not
/// apply (see [`Catalogue::check_form`] for the reasons).
pub fn apply(solution: &Path, mistake: &Mistake) -> Result<Vec<(PathBuf, String)>> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for (index, edit) in mistake.edits.iter().enumerate() {
        let relative = safe_relative(&edit.file)
            .with_context(|| format!("edit {}: `{}` is outside the crate", index + 1, edit.file))?;
        let at = match files.iter().position(|(path, _)| *path == relative) {
            Some(at) => at,
            None => {
                let text = fs::read_to_string(solution.join(&relative))
                    .with_context(|| format!("cannot read {}", relative.display()))?;
                files.push((relative.clone(), text));
                files.len() - 1
            }
        };
        let text = &mut files[at].1;
        let count = text.matches(edit.find.as_str()).count();
        if count != 1 || edit.find.is_empty() {
            anyhow::bail!(
                "no longer applies: edit {}: {} occurs {} in {} (it must occur exactly once)",
                index + 1,
                one_line(&edit.find),
                times(count),
                relative.display()
            );
        }
        *text = text.replacen(edit.find.as_str(), &edit.replace, 1);
    }
    Ok(files)
}

/// `file` as a relative path that stays inside the crate, or `None`.
fn safe_relative(file: &str) -> Option<PathBuf> {
    let path = Path::new(file);
    let inside = !file.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    inside.then(|| path.to_path_buf())
}

/// True for `a-b-c2`.
fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `once`, `3 times`, `0 times`.
fn times(n: usize) -> String {
    match n {
        1 => "once".to_string(),
        n => format!("{n} times"),
    }
}

/// A `find` text for a message: quoted, its first line only.
pub fn one_line(text: &str) -> String {
    let mut lines = text.trim().lines();
    let first = lines.next().unwrap_or("").trim();
    if lines.next().is_some() {
        format!("`{first} …`")
    } else {
        format!("`{first}`")
    }
}

/// What a chapter's Pitfalls section holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pitfalls {
    /// Whether the chapter has a `## Pitfalls` section at all.
    pub found: bool,
    /// The bold title of each bullet, as written (`Unused pipe ends left
    /// open: the reader hangs.`).
    pub bullets: Vec<String>,
    /// The mistake names of the `{{#include mistakes/LAB/NAME.txt}}` lines.
    pub includes: Vec<String>,
    /// Lines that quote something by hand: in a code block that is not
    /// one include, or a `why:`/`read:` line outside any block.
    pub pasted: Vec<String>,
}

/// Reads the `## Pitfalls` section of a chapter of `lab`.
pub fn pitfalls(chapter: &str, lab: &Lab) -> Pitfalls {
    let mut found = Pitfalls::default();
    let mut inside = false;
    let mut in_block = false;
    let include_prefix = format!("{{{{#include mistakes/{}/", lab.name);
    for line in chapter.lines() {
        if !in_block && line.starts_with("## ") {
            inside = line.trim_end() == "## Pitfalls" || line.starts_with("## Pitfalls ");
            found.found |= inside;
            continue;
        }
        if !inside {
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            if trimmed.is_empty() {
                continue;
            }
            let name = trimmed
                .strip_prefix(&include_prefix)
                .and_then(|rest| rest.strip_suffix(".txt}}"));
            match name {
                Some(name) if !name.contains('/') => found.includes.push(name.to_string()),
                _ => found.pasted.push(trimmed.to_string()),
            }
            continue;
        }
        if trimmed.starts_with("why: ") || trimmed.starts_with("read: ") {
            found.pasted.push(trimmed.to_string());
        }
        if let Some(rest) = trimmed
            .strip_prefix("- **")
            .or_else(|| trimmed.strip_prefix("* **"))
            && let Some(end) = rest.find("**")
        {
            found.bullets.push(rest[..end].to_string());
        }
    }
    found
}

/// `text` for comparing a `pitfall` with a bullet title: lower case,
/// without backticks, spaces collapsed, final punctuation dropped.
fn normal(text: &str) -> String {
    let text: String = text.replace('`', "").to_lowercase();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.trim_end_matches(['.', ':', '!', '?', ' ']).to_string()
}

/// True when `pitfall` names the bullet titled `title`: the same words
/// (ignoring case, backticks and the final full stop) as the whole title or
/// as its part before the first colon (`Unused pipe ends left open` names
/// `Unused pipe ends left open: the reader hangs.`).
pub fn names_bullet(pitfall: &str, title: &str) -> bool {
    let wanted = normal(pitfall);
    if wanted.is_empty() {
        return false;
    }
    let head = title.split(':').next().unwrap_or(title);
    wanted == normal(title) || wanted == normal(head)
}

/// What keeps a catalogue from being complete.
#[derive(Debug, Default)]
pub struct Incomplete {
    /// Each reason, in full, naming the file.
    pub problems: Vec<String>,
    /// Mistakes in the catalogue (`None`: there is no catalogue).
    pub mistakes: Option<usize>,
    /// Pitfalls bullets no mistake illustrates.
    pub uncovered: usize,
    /// Lines of Pitfalls that quote the grader by hand.
    pub pasted: usize,
}

impl Incomplete {
    /// True when nothing keeps the catalogue from being complete.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// In a few words: `3 of at least 8 mistakes; 5 Pitfalls without a
    /// mistake; 8 lines quoted by hand in Pitfalls`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        match self.mistakes {
            None => parts.push("no catalogue".to_string()),
            Some(n) if n < MIN_MISTAKES => {
                parts.push(format!("{n} of at least {MIN_MISTAKES} mistakes"))
            }
            Some(_) => {}
        }
        if self.uncovered > 0 {
            parts.push(format!("{} Pitfalls without a mistake", self.uncovered));
        }
        if self.pasted > 0 {
            parts.push(format!("{} lines quoted by hand in Pitfalls", self.pasted));
        }
        if parts.is_empty() {
            parts.push(format!("{} problems", self.problems.len()));
        }
        parts.join("; ")
    }
}

/// What keeps a catalogue from being complete: fewer than
/// [`MIN_MISTAKES`] mistakes, a Pitfalls bullet no mistake illustrates,
/// a grader message pasted into Pitfalls by hand. (`pitfall` values that
/// name no bullet, and includes of unknown mistakes, are form problems:
/// see [`references`].)
pub fn completeness(ws: &Workspace, lab: &Lab, catalogue: Option<&Catalogue>) -> Incomplete {
    let mut found = Incomplete::default();
    let Some(catalogue) = catalogue else {
        found.problems.push(format!(
            "{}: no mistake catalogue ({} is missing)",
            lab.name,
            ws.relative(&path(ws, lab)).display()
        ));
        return found;
    };
    found.mistakes = Some(catalogue.mistakes.len());
    if catalogue.mistakes.len() < MIN_MISTAKES {
        found.problems.push(format!(
            "{}: {} holds {} mistakes; a lab needs at least {MIN_MISTAKES}",
            lab.name,
            ws.relative(&path(ws, lab)).display(),
            catalogue.mistakes.len()
        ));
    }
    let Ok((chapter_path, text)) = chapter(ws, lab) else {
        return found;
    };
    let shown = ws.relative(&chapter_path).display().to_string();
    let pitfalls = pitfalls(&text, lab);
    if !pitfalls.found {
        found
            .problems
            .push(format!("{shown}: no `## Pitfalls` section"));
    }
    for bullet in &pitfalls.bullets {
        let covered = catalogue
            .mistakes
            .iter()
            .filter_map(|m| m.pitfall.as_deref())
            .any(|pitfall| names_bullet(pitfall, bullet));
        if !covered {
            found.uncovered += 1;
            found.problems.push(format!(
                "{shown}: the Pitfall **{bullet}** is illustrated by no mistake (give one \
                 `pitfall = \"{}\"`)",
                bullet
                    .split(':')
                    .next()
                    .unwrap_or(bullet)
                    .trim_end_matches('.')
            ));
        }
    }
    if let Some(first) = pitfalls.pasted.first() {
        found.pasted = pitfalls.pasted.len();
        found.problems.push(format!(
            "{shown}: Pitfalls quotes the grader by hand ({} lines, the first: {}); include each \
             quote file instead: {{{{#include mistakes/{}/NAME.txt}}}} in a ```text block",
            pitfalls.pasted.len(),
            one_line(first),
            lab.name
        ));
    }
    found
}

/// Problems with what the catalogue and the chapter say of each other,
/// complete or not: a `pitfall` that names no bullet, an include of a
/// mistake the catalogue lacks.
pub fn references(ws: &Workspace, catalogue: &Catalogue) -> Vec<String> {
    let lab = &catalogue.lab;
    let Ok((chapter_path, text)) = chapter(ws, lab) else {
        return vec![format!(
            "{}: cannot read its chapter (see lab.toml)",
            lab.name
        )];
    };
    let shown = ws.relative(&chapter_path).display().to_string();
    let found = pitfalls(&text, lab);
    let mut problems = Vec::new();
    for mistake in &catalogue.mistakes {
        if let Some(pitfall) = &mistake.pitfall
            && !found.bullets.iter().any(|b| names_bullet(pitfall, b))
        {
            problems.push(format!(
                "{}/{}: pitfall = \"{pitfall}\" names no Pitfalls bullet of {shown} (their bold \
                 titles: {})",
                lab.name,
                mistake.name,
                found.bullets.join(" | ")
            ));
        }
    }
    for name in &found.includes {
        if !catalogue.mistakes.iter().any(|m| &m.name == name) {
            problems.push(format!(
                "{shown}: includes mistakes/{}/{name}.txt, but the catalogue has no mistake `{name}`",
                lab.name
            ));
        }
    }
    problems
}

/// The lab's chapter: its path and text.
fn chapter(ws: &Workspace, lab: &Lab) -> Result<(PathBuf, String)> {
    let meta = LabToml::of(ws, lab)?;
    let path = ws.root.join(&meta.lab.chapter);
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAPTER: &str = "# Pipes\n\n## Pitfalls\n\nSome words.\n\n\
        - **Unused pipe ends left open: the reader hangs.** Text\n  more text:\n\n  ```text\n  \
        {{#include mistakes/02-pipes/parent-keeps-write-end.txt}}\n  ```\n\
        - **`SIGPIPE` and `EPIPE`.** In Rust:\n\n  ```text\n  sh -c: panicked\n    why: never\n  ```\n\
        - **A server that serves a queue it did not create** (no `IPC_EXCL`): it\n\
        why: pasted by hand\n\n## The lab\n\n- **Not a pitfall.**\n";

    fn pipes() -> Lab {
        Lab::from_dir_name("02-pipes").expect("a lab name")
    }

    #[test]
    fn pitfalls_bullets_includes_and_pasted_quotes_are_found() {
        let found = pitfalls(CHAPTER, &pipes());
        assert!(found.found);
        assert_eq!(
            found.bullets,
            [
                "Unused pipe ends left open: the reader hangs.",
                "`SIGPIPE` and `EPIPE`.",
                "A server that serves a queue it did not create"
            ]
        );
        assert_eq!(found.includes, ["parent-keeps-write-end"]);
        assert_eq!(
            found.pasted,
            ["sh -c: panicked", "why: never", "why: pasted by hand"]
        );
    }

    #[test]
    fn a_pitfall_names_a_bullet_by_its_title_or_the_part_before_the_colon() {
        let title = "Unused pipe ends left open: the reader hangs.";
        assert!(names_bullet("Unused pipe ends left open", title));
        assert!(names_bullet(
            "unused pipe ends left open: the reader hangs",
            title
        ));
        assert!(names_bullet("SIGPIPE and EPIPE", "`SIGPIPE` and `EPIPE`."));
        assert!(!names_bullet("Unused pipe ends", title));
        assert!(!names_bullet("", title));
    }

    #[test]
    fn catalogues_are_read_with_their_defaults_and_unknown_keys_refused() {
        let file: File = toml::from_str(
            "[[mistake]]\nname = \"a\"\nsummary = \"s\"\ntests = [\"t\"]\nexpect = \"e\"\n\
             [[mistake.edit]]\nfind = \"x\"\nreplace = \"y\"\n",
        )
        .expect("valid");
        assert_eq!(file.mistake[0].edits[0].file, "src/lib.rs");
        assert_eq!(file.mistake[0].pitfall, None);
        let err = toml::from_str::<File>("[[mistake]]\nname = \"a\"\ntest = [\"t\"]\n")
            .expect_err("a typo");
        assert!(err.to_string().contains("unknown field `test`"), "{err}");
    }

    #[test]
    fn edits_apply_once_inside_the_crate() {
        let dir = tempfile::tempdir().expect("a directory");
        fs::create_dir_all(dir.path().join("src")).expect("mkdir");
        fs::write(dir.path().join("src/lib.rs"), "a();\nb();\nb();\n").expect("write");
        let mistake = |find: &str, file: &str| Mistake {
            name: "m".into(),
            summary: "s".into(),
            pitfall: None,
            tests: vec!["t".into()],
            expect: "e".into(),
            edits: vec![Edit {
                file: file.into(),
                find: find.into(),
                replace: "c();".into(),
            }],
        };
        let files = apply(dir.path(), &mistake("a();", "src/lib.rs")).expect("applies");
        assert_eq!(
            files,
            [(PathBuf::from("src/lib.rs"), "c();\nb();\nb();\n".into())]
        );
        let err = apply(dir.path(), &mistake("b();", "src/lib.rs")).expect_err("twice");
        assert_eq!(
            err.to_string(),
            "no longer applies: edit 1: `b();` occurs 2 times in src/lib.rs (it must occur exactly once)"
        );
        assert!(apply(dir.path(), &mistake("a();", "../lib.rs")).is_err());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(is_kebab("parent-keeps-write-end") && !is_kebab("Parent") && !is_kebab("a--b"));
    }
}
