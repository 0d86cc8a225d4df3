//! `cargo workbook hint LAB [N]`: the hints of a lab's TODOs, one at a time.
//!
//! The hints live in `labs/NN-topic/lab.toml`, ordered from a nudge to
//! nearly the answer. Without N, the TODO is the first one whose function
//! still calls `todo!()`. Each call shows the next hint of that TODO; how
//! many were shown is kept in `<target-dir>/workbook/hints.toml`, outside
//! the source tree (delete it, or run `cargo clean`, to start over).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use syn::{ImplItem, Item};

use crate::UsageError;
use crate::drift;
use crate::workspace::{Lab, LabToml, Todo, Workspace};

/// How many hints of each TODO were shown: lab name → TODO number → count.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Shown {
    #[serde(default)]
    shown: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Shown {
    /// Reads the state file; a missing or unreadable one means nothing was
    /// shown yet.
    fn load(path: &Path) -> Shown {
        fs::read_to_string(path)
            .ok()
            .and_then(|text| toml::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = toml::to_string(self).context("cannot encode the hint state")?;
        let text = format!(
            "# Hints shown by `cargo workbook hint`, per lab and TODO. Delete this file to start over.\n{text}"
        );
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
            match meta.todo.iter().find(|t| unfinished.contains(&t.function)) {
                Some(todo) => todo,
                None => {
                    println!(
                        "Every TODO of {} is done: no function calls todo!() any more.\n\
                         If a test still fails, `cargo workbook grade {}` shows which; \
                         `cargo workbook hint {} N` shows the hints of TODO N.",
                        lab.name, lab.number, lab.number
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    let done = matches!(&unfinished, Ok(set) if !set.contains(&todo.function));
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
        lab.name, todo.number, todo.function
    );
    if !todo.summary.is_empty() {
        out.push_str(&format!("  {}\n", todo.summary));
    }
    if done {
        out.push_str(&format!(
            "  (already done: {} no longer calls todo!())\n",
            todo.function
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

/// The functions of the lab's `src/lib.rs` whose bodies still call `todo!`.
fn unfinished(ws: &Workspace, lab: &Lab) -> Result<BTreeSet<String>> {
    let path = ws.lab_dir(lab).join("src/lib.rs");
    let shown = ws.relative(&path);
    let src =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", shown.display()))?;
    let file = syn::parse_file(&src).map_err(|err| {
        anyhow::anyhow!(
            "cannot tell which TODO is next: {} does not parse ({err})",
            shown.display()
        )
    })?;
    let mut names = BTreeSet::new();
    unfinished_in(&file.items, &mut names);
    Ok(names)
}

/// Adds to `names` the functions among `items` (in `impl` blocks and
/// inline modules too) whose bodies call `todo!`.
fn unfinished_in(items: &[Item], names: &mut BTreeSet<String>) {
    use quote::ToTokens;
    for item in items {
        match item {
            Item::Fn(f) if drift::calls_todo(f.block.to_token_stream()) => {
                names.insert(f.sig.ident.to_string());
            }
            Item::Impl(imp) => {
                for inner in &imp.items {
                    if let ImplItem::Fn(f) = inner
                        && drift::calls_todo(f.block.to_token_stream())
                    {
                        names.insert(f.sig.ident.to_string());
                    }
                }
            }
            Item::Mod(module) => {
                if let Some((_, inner)) = &module.content {
                    unfinished_in(inner, names);
                }
            }
            _ => {}
        }
    }
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
function = "pipe_limits"
summary = "Ask the kernel"
hints = ["first", "second"]

[[todo]]
number = 2
function = "count_in_child"
hints = []
"#;

    fn lab() -> (Lab, LabToml) {
        let lab = Lab::from_dir_name("02-pipes").expect("valid");
        let meta: LabToml = toml::from_str(LAB_TOML).expect("valid lab.toml");
        (lab, meta)
    }

    #[test]
    fn functions_that_still_call_todo_are_unfinished() {
        let file = syn::parse_file(
            "pub fn a() { todo!(\"TODO(1)\") }\n\
             pub fn b() -> u8 { 4 }\n\
             impl X { fn c(&self) { if true { todo!() } } }\n\
             mod m { fn d() { std::todo!() } }\n",
        )
        .expect("valid Rust");
        let mut names = BTreeSet::new();
        unfinished_in(&file.items, &mut names);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(names, ["a", "c", "d"]);
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
        assert!(text.contains("(already done: pipe_limits no longer calls todo!())"));
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
