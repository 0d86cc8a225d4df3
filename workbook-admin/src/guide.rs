//! The grading guide's examples (`book/src/grading.md`), taken from a real
//! run so that they cannot drift from what the grader prints.
//!
//! The mistakes step runs the whole suite of [`EXAMPLE_LAB`] once, on its
//! solution with the first mistake of its catalogue applied, and derives
//! from that run:
//!
//! * `book/src/generated/failure.txt`: the failure of the mistake's first
//!   test, as `cargo test` prints it;
//! * `book/src/generated/failure-parts.md`: a table naming each part of
//!   that failure, with the text it has in the example;
//! * `book/src/generated/scoreboard.txt`: what `cargo workbook grade`
//!   prints for a lab in that state (the scoreboard is computed by the same
//!   code from the same run).
//!
//! `verify` fails while a file differs from what the run gives;
//! `cargo workbook mistakes 02 --write` rewrites them.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use workbook::grade::{self, State};
use workbook::process::Captured;
use workbook::workspace::{LabToml, Workspace};

use crate::mistakes::catalogue::Catalogue;
use crate::mistakes::runner::{Job, Runner};

/// The lab whose first mistake makes the guide's example.
pub const EXAMPLE_LAB: &str = "02-pipes";

/// `book/src/generated/`.
fn dir(ws: &Workspace) -> PathBuf {
    ws.root.join("book/src/generated")
}

/// Runs the example and compares the generated files (or, with `write`,
/// rewrites them): the problems found.
pub fn refresh(
    ws: &Workspace,
    runner: &Runner<'_>,
    catalogues: &[Catalogue],
    write: bool,
) -> Result<Vec<String>> {
    let Some(catalogue) = catalogues.iter().find(|c| c.lab.name == EXAMPLE_LAB) else {
        return Ok(vec![format!(
            "book/src/generated/: the grading guide's example is the first mistake of \
             {EXAMPLE_LAB}'s catalogue, and there is none"
        )]);
    };
    let Some(mistake) = catalogue.mistakes.first() else {
        return Ok(vec![format!(
            "book/src/generated/: {EXAMPLE_LAB}'s catalogue is empty"
        )]);
    };
    let job = Job {
        lab: catalogue.lab.clone(),
        mistake: mistake.clone(),
    };
    let output = runner.whole_suite(&job)?;
    let test = mistake
        .tests
        .first()
        .context("the example mistake names no test")?;
    let files = examples(ws, &job, test, &output)?;
    let mut problems = Vec::new();
    for (name, text) in files {
        let path = dir(ws).join(name);
        let shown = ws.relative(&path).display().to_string();
        // The suite's inputs vary from run to run: so may the numbers.
        let current = fs::read_to_string(&path).ok();
        if current
            .as_deref()
            .is_some_and(|now| crate::mistakes::runner::same_but_numbers(now, &text))
        {
            continue;
        }
        if write {
            fs::create_dir_all(dir(ws)).context("cannot create book/src/generated")?;
            fs::write(&path, &text).with_context(|| format!("cannot write {shown}"))?;
        } else {
            problems.push(format!(
                "{shown}: out of date with a real run of {}/{} (refresh it with `cargo workbook \
                 mistakes {} --write`)",
                job.lab.name, mistake.name, job.lab.number
            ));
        }
    }
    Ok(problems)
}

/// The generated files, by name, from the suite's output.
fn examples(
    ws: &Workspace,
    job: &Job,
    test: &str,
    output: &str,
) -> Result<Vec<(&'static str, String)>> {
    let block = failure_block(output, test).with_context(|| {
        format!(
            "the example run of {}/{} has no failure of {test}",
            job.lab.name, job.mistake.name
        )
    })?;
    let parts = parts_table(test, &block)?;
    let mut graded = grade::from_output(
        &job.lab,
        job.lab.package(),
        &Captured {
            success: false,
            stdout: output.to_string(),
            stderr: String::new(),
        },
    );
    if let Ok(suite) =
        fs::read_to_string(ws.root.join("tests").join(format!("{}.rs", job.lab.name)))
    {
        grade::sort_in_suite_order(&mut graded.tests, &suite);
    }
    graded.title = LabToml::of(ws, &job.lab)
        .map(|meta| meta.lab.title)
        .unwrap_or_default();
    if graded.state == State::Done {
        anyhow::bail!(
            "the example mistake {}/{} fails no test of the whole suite",
            job.lab.name,
            job.mistake.name
        );
    }
    Ok(vec![
        ("failure.txt", format!("{block}\n")),
        ("failure-parts.md", parts),
        ("scoreboard.txt", grade::scoreboard(&[graded])),
    ])
}

/// The failure of `test` as libtest prints it: from `---- TEST stdout ----`
/// to the blank lines before the next failure or the list of failures.
fn failure_block(output: &str, test: &str) -> Option<String> {
    let header = format!("---- {test} stdout ----");
    let start = output.find(&header)?;
    let rest = &output[start..];
    let mut lines = Vec::new();
    for (index, line) in rest.lines().enumerate() {
        if index > 0 && (line.starts_with("---- ") || line == "failures:") {
            break;
        }
        lines.push(line);
    }
    Some(lines.join("\n").trim_end().to_string())
}

/// The text of the paragraph that starts with `label` (`  why: `), its
/// wrapped lines joined.
fn paragraph(lines: &[&str], label: &str) -> Option<String> {
    let start = lines.iter().position(|line| line.starts_with(label))?;
    let indent = " ".repeat(label.len());
    let mut text = lines[start][label.len()..].to_string();
    for line in &lines[start + 1..] {
        match line.strip_prefix(&indent) {
            Some(more) if !more.starts_with(' ') => {
                text.push(' ');
                text.push_str(more);
            }
            _ => break,
        }
    }
    Some(text)
}

/// What the failure shows of an output stream: `(empty)`, or its first
/// line (with `…` when there is more).
fn stream(lines: &[&str], label: &str) -> String {
    let same_line = format!("  {label}: ");
    if let Some(rest) = lines.iter().find_map(|l| l.strip_prefix(&same_line)) {
        return rest.to_string();
    }
    let header = format!("  {label}:");
    let Some(start) = lines.iter().position(|l| *l == header) else {
        return String::new();
    };
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.trim())
        .collect();
    match body.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [first, ..] => format!("{first} …"),
    }
}

/// The table that names each part of the example failure.
fn parts_table(test: &str, block: &str) -> Result<String> {
    let lines: Vec<&str> = block.lines().skip(1).collect();
    let first = lines
        .first()
        .copied()
        .context("the example failure is empty")?;
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::to_string)
    };
    let command = find("  $ ").context("the example failure shows no command (`  $ …`)")?;
    let why = paragraph(&lines, "  why: ").context("the example failure has no `why:` line")?;
    let read = paragraph(&lines, "  read: ").context("the example failure has no `read:` line")?;
    let stdout = stream(&lines, "stdout");
    let stderr = stream(&lines, "stderr");
    let repeat = find("  to repeat these inputs: ");
    let saved = find("  full text: ");
    let details: Vec<&str> = lines
        .iter()
        .skip(1)
        .take_while(|line| {
            !line.starts_with("  why: ")
                && !line.starts_with("  read: ")
                && !line.starts_with("  $ ")
        })
        .map(|line| line.trim())
        .collect();
    let mut rows = vec![
        (
            "test name".to_string(),
            cell(test),
            "the behaviour the test expects, written as a sentence: read the underscores as \
             spaces"
                .to_string(),
        ),
        (
            "first line".to_string(),
            cell(first),
            "**what went wrong**: the command (the program and its subcommand) and the \
             symptom: a wrong exit status, output that differs, a timeout, a leftover"
                .to_string(),
        ),
    ];
    if !details.is_empty() {
        rows.push((
            "indented lines".to_string(),
            cell(&details.join(" ")),
            "details of the symptom: what differs, what was left behind, which processes still \
             ran"
            .to_string(),
        ));
    }
    rows.extend([
        (
            "`why:`".to_string(),
            cell(&why),
            "**the likely cause** of this symptom: where to look first".to_string(),
        ),
        (
            "`read:`".to_string(),
            cell(&read),
            "**where the book explains it**: the chapter's file and the section to read"
                .to_string(),
        ),
        (
            "`$ …`".to_string(),
            cell(&command),
            "**the command** the test ran, as you would type it (inside the lab, `cargo run \
             --` stands for the program's name)"
                .to_string(),
        ),
        (
            "`stdout:`, `stderr:`".to_string(),
            format!("{} / {}", cell(&stdout), cell(&stderr)),
            "**what your program printed** before it exited or was stopped (at most 20 lines \
             and 2000 characters each; a count says what was cut)"
                .to_string(),
        ),
    ]);
    if let Some(repeat) = repeat {
        rows.push((
            "`to repeat these inputs:`".to_string(),
            cell(&repeat),
            "the test chose its inputs at random (they change from run to run): this command \
             runs it again with the same ones"
                .to_string(),
        ));
    }
    if let Some(saved) = saved {
        rows.push((
            "`full text:`".to_string(),
            cell(&saved),
            "something was cut to fit the terminal: the whole message is in this file".to_string(),
        ));
    }
    let mut table = String::from(
        "<!-- Written by `cargo workbook mistakes 02 --write` from a real run: do not edit. -->\n\n\
         | part | in this example | what it tells you |\n|---|---|---|\n",
    );
    for (part, example, meaning) in rows {
        table.push_str(&format!("| {part} | {example} | {meaning} |\n"));
    }
    Ok(table)
}

/// `text` as a table cell: in backticks, cut after 70 characters, with
/// `|` escaped.
fn cell(text: &str) -> String {
    const MAX: usize = 70;
    let text = text.trim();
    if text.is_empty() {
        return "(nothing)".to_string();
    }
    let mut shown: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        shown.push('…');
    }
    let fence = if shown.contains('`') { "`` " } else { "`" };
    let close = if shown.contains('`') { " ``" } else { "`" };
    format!("{fence}{}{close}", shown.replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\nrunning 2 tests\ntest a ... FAILED\ntest b ... ok\n\nfailures:\n\n\
        ---- a stdout ----\npipes count: timed out after 5 s (still running)\n  why: the reader \
        never saw end-of-file\n  read: book/src/02-pipes.md, section \"Task 2: parent to child\"\n  \
        $ pipes count\n  stdout: (empty)\n  stderr: (empty)\n\n\nfailures:\n    a\n\n\
        test result: FAILED. 1 passed; 1 failed\n";

    #[test]
    fn the_failure_block_and_its_parts_come_from_the_run() {
        let block = failure_block(OUTPUT, "a").expect("a failure");
        assert!(block.starts_with("---- a stdout ----\npipes count: timed out"));
        assert!(block.ends_with("  stderr: (empty)"));
        let table = parts_table("a", &block).expect("a table");
        assert!(
            table.contains("| first line | `pipes count: timed out after 5 s (still running)` |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| `read:` | `book/src/02-pipes.md, section \"Task 2: parent to child\"` |"
            ),
            "{table}"
        );
        assert!(table.contains("| `$ …` | `pipes count` |"), "{table}");
        assert!(!table.contains("indented lines"), "{table}");
        let wrapped = "---- a stdout ----\npipes limits: printed something else\n  line 2: x\n  \
                       why: ask the kernel\n       about a real pipe\n  read: book/src/02-pipes.md\n  \
                       $ pipes limits\n  stdout:\n    PIPE_BUF: 4096 bytes\n    capacity: 1\n  \
                       stderr: (empty)\n  to repeat these inputs: WORKBOOK_SEED=7 cargo test a";
        let table = parts_table("a", wrapped).expect("a table");
        assert!(
            table.contains("| `why:` | `ask the kernel about a real pipe` |"),
            "{table}"
        );
        assert!(
            table.contains("| `PIPE_BUF: 4096 bytes …` / `(empty)` |"),
            "{table}"
        );
        assert!(
            table.contains("| `to repeat these inputs:` | `WORKBOOK_SEED=7 cargo test a` |"),
            "{table}"
        );
        assert!(
            table.contains("| indented lines | `line 2: x` |"),
            "{table}"
        );
        assert_eq!(failure_block(OUTPUT, "b"), None);
    }

    #[test]
    fn cells_are_cut_and_escaped() {
        assert_eq!(cell("a | b"), "`a \\| b`");
        assert_eq!(cell("use `x`"), "`` use `x` ``");
        assert_eq!(cell(""), "(nothing)");
        assert!(cell(&"x".repeat(100)).ends_with("x…`"));
    }
}
