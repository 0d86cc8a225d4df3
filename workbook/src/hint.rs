//! `cargo workbook hint LAB [N]`: the hints of a lab's TODOs, one at a time.
//!
//! The hints live in `labs/NN-topic/lab.toml`, ordered from a nudge to
//! nearly the answer. Without N, the TODO is the first one that is not
//! done: a TODO is done once no `todo!("TODO(N)…")` is left in the lab's
//! `src/lib.rs` (whichever functions it spans). Each call shows the next
//! hint of that TODO; how many were shown is kept in
//! `<target-dir>/workbook/hints.toml`, outside the source tree (delete it,
//! or run `cargo clean`, to start over).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::UsageError;
use crate::minitoml::{self, Value};
use crate::workspace::{Lab, LabToml, Todo, Workspace};

/// How many hints of each TODO were shown: lab name → TODO number → count.
#[derive(Debug, Default)]
struct Shown {
    shown: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Shown {
    /// Reads the state file; a missing or unreadable one means nothing was
    /// shown yet.
    fn load(path: &Path) -> Shown {
        let Some(doc) = fs::read_to_string(path)
            .ok()
            .and_then(|text| minitoml::parse(&text).ok())
        else {
            return Shown::default();
        };
        let mut shown = Shown::default();
        let labs = doc.get("shown").and_then(Value::as_table);
        for (lab, todos) in labs.into_iter().flatten() {
            for (todo, count) in todos.as_table().into_iter().flatten() {
                if let Some(count) = count.as_integer().and_then(|n| usize::try_from(n).ok()) {
                    shown
                        .shown
                        .entry(lab.clone())
                        .or_default()
                        .insert(todo.clone(), count);
                }
            }
        }
        shown
    }

    fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut text = "# Hints shown by `cargo workbook hint`, per lab and TODO. Delete this file to start over.\n"
            .to_string();
        for (lab, todos) in &self.shown {
            text.push_str(&format!("\n[shown.{}]\n", minitoml::key(lab)));
            for (todo, count) in todos {
                text.push_str(&format!("{} = {count}\n", minitoml::key(todo)));
            }
        }
        fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    fn get(&self, lab: &str, todo: u32) -> usize {
        self.shown
            .get(lab)
            .and_then(|todos| todos.get(&todo.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn set(&mut self, lab: &str, todo: u32, count: usize) {
        self.shown
            .entry(lab.to_string())
            .or_default()
            .insert(todo.to_string(), count);
    }
}

/// Runs `cargo workbook hint LAB [N] [--all]`.
pub fn run(ws: &Workspace, query: &str, number: Option<u32>, all: bool) -> Result<ExitCode> {
    let lab = ws.select_one(query)?;
    let meta = LabToml::of(ws, lab)?;
    if meta.todo.is_empty() {
        anyhow::bail!("labs/{}/lab.toml lists no [[todo]]", lab.name);
    }
    let unfinished = unfinished(ws, lab);
    let todo = match number {
        Some(n) => meta
            .todo
            .iter()
            .find(|t| t.number == n)
            .ok_or_else(|| UsageError(no_such_todo(lab, &meta, n)))?,
        None => {
            let unfinished = unfinished.as_ref().map_err(|err| {
                anyhow::anyhow!(
                    "{err:#}; name the TODO you want a hint for: cargo workbook hint {} N",
                    lab.number
                )
            })?;
            match meta.todo.iter().find(|t| unfinished.contains(&t.number)) {
                Some(todo) => todo,
                None => {
                    println!(
                        "Every TODO of {} is done: no todo!(\"TODO(N)…\") is left in its src/lib.rs.\n\
                         If a test still fails, `cargo workbook grade {}` shows which; \
                         `cargo workbook hint {} N` shows the hints of TODO N.",
                        lab.name, lab.number, lab.number
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    let done = matches!(&unfinished, Ok(set) if !set.contains(&todo.number));
    let state_file = state_file(ws)?;
    let mut shown = Shown::load(&state_file);
    let before = shown.get(&lab.name, todo.number);
    let upto = if all {
        todo.hints.len()
    } else {
        (before + 1).min(todo.hints.len())
    };
    let heading = task_heading(&ws.root.join(&meta.lab.chapter), todo.number);
    print!(
        "{}",
        page(
            lab,
            &meta,
            todo,
            heading.as_deref(),
            number.is_some(),
            done,
            all,
            upto
        )
    );
    shown.set(&lab.name, todo.number, upto.max(before));
    shown.save(&state_file)?;
    Ok(ExitCode::SUCCESS)
}

/// `<target-dir>/workbook/hints.toml`.
fn state_file(ws: &Workspace) -> Result<PathBuf> {
    Ok(ws.state_dir()?.join("hints.toml"))
}

/// The usage error for a TODO number the lab does not have.
fn no_such_todo(lab: &Lab, meta: &LabToml, n: u32) -> String {
    let numbers: Vec<String> = meta.todo.iter().map(|t| t.number.to_string()).collect();
    format!(
        "lab {} has no TODO {n} (its TODOs are {})",
        lab.name,
        numbers.join(", ")
    )
}

/// What to print: which TODO, then hint `upto` (or hints 1 to `upto` with
/// `all`), then what to do next.
#[allow(clippy::too_many_arguments)]
fn page(
    lab: &Lab,
    meta: &LabToml,
    todo: &Todo,
    heading: Option<&str>,
    named: bool,
    done: bool,
    all: bool,
    upto: usize,
) -> String {
    let count = meta.todo.len();
    let position = meta
        .todo
        .iter()
        .position(|t| t.number == todo.number)
        .map_or(todo.number as usize, |i| i + 1);
    let mut out = format!(
        "{} · TODO {} ({position} of {count}): {}\n",
        lab.name,
        todo.number,
        todo.function_list()
    );
    if !todo.summary.is_empty() {
        out.push_str(&format!("  {}\n", todo.summary));
    }
    if done {
        out.push_str(&format!(
            "  (already done: no todo!(\"TODO({})…\") is left in src/lib.rs)\n",
            todo.number
        ));
    }
    out.push('\n');
    let total = todo.hints.len();
    let task = format!(
        "{}, “{}”",
        meta.lab.chapter.display(),
        heading.unwrap_or(&format!("Task {}", todo.number))
    );
    if total == 0 {
        out.push_str(&format!("This TODO has no hints. Read {task}.\n"));
        return out;
    }
    let first = if all { 1 } else { upto };
    for n in first..=upto {
        out.push_str(&format!("Hint {n} of {total}: {}\n", todo.hints[n - 1]));
    }
    out.push('\n');
    if upto < total {
        let again = if named {
            format!("cargo workbook hint {} {}", lab.number, todo.number)
        } else {
            format!("cargo workbook hint {}", lab.number)
        };
        out.push_str(&format!(
            "Still stuck? `{again}` shows hint {} of {total}.\n",
            upto + 1
        ));
    } else {
        out.push_str(&format!(
            "That was the last hint. The chapter walks through this task in {task}.\n"
        ));
    }
    out
}

/// The heading of task `n` in the chapter (`### Task 2: parent to child`
/// → `Task 2: parent to child`), if the chapter has one.
fn task_heading(chapter: &Path, n: u32) -> Option<String> {
    let text = fs::read_to_string(chapter).ok()?;
    find_task_heading(&text, n)
}

/// [`task_heading`] over the chapter's text.
fn find_task_heading(text: &str, n: u32) -> Option<String> {
    let prefix = format!("Task {n}:");
    text.lines().find_map(|line| {
        let title = line.trim_start_matches('#');
        (line.starts_with('#') && title.trim_start().starts_with(&prefix))
            .then(|| title.trim().to_string())
    })
}

/// The TODOs of the lab's `src/lib.rs` that are not done: the numbers N of
/// every `todo!("TODO(N)…")` still in it.
fn unfinished(ws: &Workspace, lab: &Lab) -> Result<BTreeSet<u32>> {
    let path = ws.lab_dir(lab).join("src/lib.rs");
    let src = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot tell which TODO is next: cannot read {}",
            ws.relative(&path).display()
        )
    })?;
    Ok(open_todos(&src))
}

/// The numbers N of every `todo!("TODO(N)…")` in `src`, outside comments.
/// A TODO spans every function whose stub holds its `todo!`, so it is
/// done only once none is left.
pub fn open_todos(src: &str) -> BTreeSet<u32> {
    let mut numbers = BTreeSet::new();
    for line in strip_comments(src).lines() {
        let mut rest = line;
        while let Some(at) = rest.find("todo!(") {
            rest = &rest[at + "todo!(".len()..];
            let Some(text) = rest.trim_start().strip_prefix("\"TODO(") else {
                continue;
            };
            let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
            if text[digits.len()..].starts_with(')')
                && let Ok(n) = digits.parse()
            {
                numbers.insert(n);
            }
        }
    }
    numbers
}

/// `src` with its `//` and `/* */` comments left out (line breaks kept).
/// String, raw string and character literals are copied as they are, so a
/// `//` inside one is not taken for a comment.
fn strip_comments(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 0;
                while i < chars.len() {
                    match (chars[i], chars.get(i + 1)) {
                        ('/', Some('*')) => {
                            depth += 1;
                            i += 2;
                        }
                        ('*', Some('/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        ('\n', _) => {
                            out.push('\n');
                            i += 1;
                        }
                        _ => i += 1,
                    }
                }
            }
            '"' => {
                let end = string_end(&chars, i + 1);
                out.extend(&chars[i..end]);
                i = end;
            }
            'r' if matches!(next, Some('"' | '#')) && !ident_before(&chars, i) => {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) != Some(&'"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                let mut end = i + 2 + hashes;
                while end < chars.len() {
                    if chars[end] == '"'
                        && chars[end + 1..].iter().take_while(|c| **c == '#').count() >= hashes
                    {
                        end += 1 + hashes;
                        break;
                    }
                    end += 1;
                }
                let end = end.min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            '\'' => {
                // A character literal ('x', '\n', '\'') or a lifetime ('a).
                let end = match (next, chars.get(i + 2)) {
                    (Some('\\'), _) => chars[i + 2..]
                        .iter()
                        .position(|c| *c == '\'')
                        .map_or(chars.len(), |p| i + 3 + p),
                    (Some(_), Some('\'')) => i + 3,
                    _ => i + 1,
                };
                let end = end.min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Where the string literal whose text starts at `from` ends (just past
/// its closing quote), skipping escapes.
fn string_end(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// True when `chars[i]` continues an identifier (`bar"`… is not a raw string).
fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB_TOML: &str = r#"
[lab]
title = "Pipes"
chapter = "book/src/02-pipes.md"

[[todo]]
number = 1
functions = ["pipe_limits"]
summary = "Ask the kernel"
hints = ["first", "second"]

[[todo]]
number = 2
functions = ["count_in_child", "finish"]
hints = []
"#;

    fn lab() -> (Lab, LabToml) {
        let lab = Lab::from_dir_name("02-pipes").expect("valid");
        let meta = LabToml::parse(LAB_TOML).expect("valid lab.toml");
        (lab, meta)
    }

    #[test]
    fn a_todo_stays_open_while_any_of_its_todo_calls_is_left() {
        let src = "pub fn popen() -> u8 { 1 }\n\
                   pub fn pclose() {\n    // TODO(1): drop, then wait.\n    todo!(\"TODO(1): pclose\")\n}\n\
                   impl X { fn ask(&self) { if true { std::todo!( \"TODO(4): ask\") } } }\n\
                   fn done() {\n    // todo!(\"TODO(2): commented out\")\n    /* todo!(\"TODO(3)\") */\n\
                   let s = \"// not a comment\"; todo!(\"TODO(5)\") }\n\
                   fn plain() { todo!() }\n\
                   fn quotes() -> char { let _ = r#\"a \" // b\"#; let _ = '\\''; '\"' }\n\
                   fn after() { todo!(\"TODO(6): after\") }\n";
        let open: Vec<u32> = open_todos(src).into_iter().collect();
        assert_eq!(open, [1, 4, 5, 6]);
        assert!(open_todos("pub fn a() -> u8 { 1 }\n// TODO(1): done\n").is_empty());
    }

    #[test]
    fn pages_show_one_hint_and_say_what_comes_next() {
        let (lab, meta) = lab();
        let text = page(&lab, &meta, &meta.todo[0], None, false, false, false, 1);
        assert_eq!(
            text,
            "02-pipes · TODO 1 (1 of 2): pipe_limits\n  Ask the kernel\n\n\
             Hint 1 of 2: first\n\n\
             Still stuck? `cargo workbook hint 02` shows hint 2 of 2.\n"
        );
        let text = page(
            &lab,
            &meta,
            &meta.todo[0],
            Some("Task 1: ask"),
            true,
            true,
            false,
            2,
        );
        assert!(text.contains("(already done: no todo!(\"TODO(1)…\") is left in src/lib.rs)"));
        assert!(text.contains("Hint 2 of 2: second\n"), "{text}");
        assert!(!text.contains("Hint 1 of 2"), "{text}");
        assert!(text.contains("That was the last hint. The chapter walks through this task in book/src/02-pipes.md, “Task 1: ask”."));
    }

    #[test]
    fn all_shows_every_hint_and_a_todo_without_hints_says_so() {
        let (lab, meta) = lab();
        let text = page(&lab, &meta, &meta.todo[0], None, false, false, true, 2);
        assert!(
            text.contains("Hint 1 of 2: first\nHint 2 of 2: second\n"),
            "{text}"
        );
        let text = page(&lab, &meta, &meta.todo[1], None, false, false, false, 0);
        assert!(text.starts_with("02-pipes · TODO 2 (2 of 2): count_in_child, finish\n"));
        assert!(text.contains("This TODO has no hints. Read book/src/02-pipes.md, “Task 2”."));
    }

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("workbook/hints.toml");
        let mut shown = Shown::load(&path);
        assert_eq!(shown.get("02-pipes", 1), 0);
        shown.set("02-pipes", 1, 2);
        shown.save(&path).expect("saved");
        let again = Shown::load(&path);
        assert_eq!(again.get("02-pipes", 1), 2);
        assert_eq!(again.get("02-pipes", 2), 0);
    }

    #[test]
    fn task_headings_are_found_in_the_chapter() {
        let chapter = "# Pipes\n## The lab\n### Task 1: ask the kernel\ntext\n### Task 12: more\n";
        assert_eq!(
            find_task_heading(chapter, 1).as_deref(),
            Some("Task 1: ask the kernel")
        );
        assert_eq!(
            find_task_heading(chapter, 12).as_deref(),
            Some("Task 12: more")
        );
        assert_eq!(find_task_heading(chapter, 2), None);
    }

    #[test]
    fn an_unknown_todo_lists_the_known_ones() {
        let (lab, meta) = lab();
        assert_eq!(
            no_such_todo(&lab, &meta, 9),
            "lab 02-pipes has no TODO 9 (its TODOs are 1, 2)"
        );
    }
}
