//! `cargo workbook gradebook DIR [--csv FILE]`: many students' grades in one
//! table.
//!
//! DIR holds the JSON documents `cargo workbook grade --json` wrote, one
//! per student, in any layout: `alice.json`, or `alice/grade.json` (the
//! `grade` artifact of an autograding run, downloaded into a folder named
//! after the student). Each becomes one row: who, which commit and when,
//! the points, and per lab the tests passed of all, with a mark when the
//! lab's grading files were changed (`*`, its points are zero) or it did
//! not compile (`!`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use workbook::UsageError;
use workbook::grade::csv_field;
use workbook::json::Json;

/// One student's grade, as read from a file.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    student: String,
    file: String,
    commit: String,
    started_at: String,
    duration: String,
    earned: u64,
    possible: u64,
    labs: Vec<LabCell>,
}

/// One lab of one student.
#[derive(Debug, Clone, PartialEq)]
struct LabCell {
    lab: String,
    passed: u64,
    total: u64,
    earned: u64,
    possible: u64,
    state: String,
    as_shipped: bool,
}

impl LabCell {
    /// `13/14`, `0/14!` (does not compile), `14/14*` (grading files changed).
    fn short(&self) -> String {
        let mark = if !self.as_shipped {
            "*"
        } else if self.state == "does-not-compile" {
            "!"
        } else {
            ""
        };
        format!("{}/{}{mark}", self.passed, self.total)
    }
}

/// Runs `gradebook DIR [--csv FILE]`.
pub fn run(dir: &Path, csv: Option<&Path>, cwd: &Path) -> Result<ExitCode> {
    if !dir.is_dir() {
        return Err(UsageError(format!("{} is not a directory", dir.display())).into());
    }
    let mut files = Vec::new();
    json_files(dir, &mut files)?;
    files.sort();
    let mut rows = Vec::new();
    for file in &files {
        let shown = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        let text =
            fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        match read_row(dir, file, &text) {
            Some(row) => rows.push(row),
            None => eprintln!(
                "gradebook: skipped {shown}: not a `cargo workbook grade --json` document"
            ),
        }
    }
    if rows.is_empty() {
        eprintln!(
            "gradebook: no grades found under {} (expected the JSON of `cargo workbook grade --json`)",
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    rows.sort_by(|a, b| (&a.student, &a.started_at).cmp(&(&b.student, &b.started_at)));
    let labs: Vec<String> = rows
        .iter()
        .flat_map(|row| row.labs.iter().map(|cell| cell.lab.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    print!("{}", table(&rows, &labs));
    if let Some(file) = csv {
        let path = workbook::workspace::lexically_normal(&cwd.join(file));
        fs::write(&path, csv_text(&rows, &labs))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {} rows to {}", rows.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Every `.json` file under `dir`.
fn json_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            json_files(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
    Ok(())
}

/// The row of one file, or `None` if it is not a grade.
fn read_row(dir: &Path, file: &Path, text: &str) -> Option<Row> {
    let doc = Json::parse(text).ok()?;
    let labs = doc.get("labs")?.as_array()?;
    let string = |value: Option<&Json>| value.and_then(Json::as_str).unwrap_or("").to_string();
    let number = |value: Option<&Json>| value.and_then(Json::as_u64).unwrap_or(0);
    let points = |value: &Json| {
        (
            number(value.get("points").and_then(|p| p.get("earned"))),
            number(value.get("points").and_then(|p| p.get("possible"))),
        )
    };
    let relative = file.strip_prefix(dir).unwrap_or(file);
    let stem = relative
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let student = if stem == "grade" {
        relative
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.display().to_string())
            .unwrap_or(stem)
    } else {
        match relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => format!("{}/{stem}", parent.display()),
            None => stem,
        }
    };
    let mut cells = Vec::new();
    for lab in labs {
        let (earned, possible) = points(lab);
        cells.push(LabCell {
            lab: string(lab.get("lab")),
            passed: number(lab.get("passed")),
            total: number(lab.get("total")),
            earned,
            possible,
            state: string(lab.get("state")),
            as_shipped: lab
                .get("grading_files_as_shipped")
                .and_then(Json::as_bool)
                .unwrap_or(false),
        });
    }
    let (earned, possible) = points(&doc);
    Some(Row {
        student,
        file: relative.display().to_string(),
        commit: string(doc.get("commit")),
        started_at: string(doc.get("started_at")),
        duration: doc
            .get("duration_seconds")
            .and_then(Json::as_f64)
            .map(|d| format!("{d:.1}"))
            .unwrap_or_default(),
        earned,
        possible,
        labs: cells,
    })
}

/// The table printed on the terminal.
fn table(rows: &[Row], labs: &[String]) -> String {
    let mut header = vec![
        "STUDENT".to_string(),
        "POINTS".to_string(),
        "COMMIT".to_string(),
        "GRADED AT".to_string(),
    ];
    header.extend(
        labs.iter()
            .map(|lab| lab.split('-').next().unwrap_or(lab).to_string()),
    );
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![
            row.student.clone(),
            format!("{}/{}", row.earned, row.possible),
            row.commit.chars().take(10).collect(),
            row.started_at.clone(),
        ];
        for lab in labs {
            line.push(
                row.labs
                    .iter()
                    .find(|cell| &cell.lab == lab)
                    .map_or_else(|| "-".to_string(), LabCell::short),
            );
        }
        lines.push(line);
    }
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, width))| {
                if c < 4 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} grade(s). Per lab: tests passed/total; * grading files changed (0 points), \
         ! does not compile.\n",
        rows.len()
    ));
    out
}

/// The table as CSV: one row per student, five columns per lab.
fn csv_text(rows: &[Row], labs: &[String]) -> String {
    let mut header = vec![
        "student",
        "file",
        "commit",
        "started_at",
        "duration_seconds",
        "points_earned",
        "points_possible",
    ]
    .into_iter()
    .map(str::to_string)
    .collect::<Vec<_>>();
    for lab in labs {
        for column in [
            "tests_passed",
            "tests_total",
            "points_earned",
            "points_possible",
            "state",
            "grading_files",
        ] {
            header.push(format!("{lab} {column}"));
        }
    }
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in rows {
        let mut fields = vec![
            row.student.clone(),
            row.file.clone(),
            row.commit.clone(),
            row.started_at.clone(),
            row.duration.clone(),
            row.earned.to_string(),
            row.possible.to_string(),
        ];
        for lab in labs {
            match row.labs.iter().find(|cell| &cell.lab == lab) {
                Some(cell) => fields.extend([
                    cell.passed.to_string(),
                    cell.total.to_string(),
                    cell.earned.to_string(),
                    cell.possible.to_string(),
                    cell.state.clone(),
                    if cell.as_shipped {
                        "as-shipped".to_string()
                    } else {
                        "changed".to_string()
                    },
                ]),
                None => fields.extend(std::iter::repeat_n(String::new(), 6)),
            }
        }
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grade(commit: &str, labs: &str) -> String {
        format!(
            r#"{{"format":"workbook-grade/2","commit":"{commit}","started_at":"2026-03-01T10:00:00Z",
            "duration_seconds":61.5,"points":{{"earned":13,"possible":20}},"labs":[{labs}]}}"#
        )
    }

    const PIPES: &str = r#"{"lab":"02-pipes","passed":13,"total":14,"state":"in-progress",
        "grading_files_as_shipped":true,"points":{"earned":13,"possible":14}}"#;
    const POPEN: &str = r#"{"lab":"03-popen","passed":6,"total":6,"state":"tampered",
        "grading_files_as_shipped":false,"points":{"earned":0,"possible":6}}"#;

    #[test]
    fn one_row_per_student_one_column_per_lab() {
        let dir = Path::new("/grades");
        let alice = read_row(
            dir,
            Path::new("/grades/alice/grade.json"),
            &grade("0123456789abcdef", &format!("{PIPES},{POPEN}")),
        )
        .expect("a grade");
        let bob =
            read_row(dir, Path::new("/grades/bob.json"), &grade("fedcba", PIPES)).expect("a grade");
        assert_eq!(alice.student, "alice");
        assert_eq!(bob.student, "bob");
        assert!(read_row(dir, Path::new("/grades/x.json"), "{\"other\": 1}").is_none());
        let labs = vec!["02-pipes".to_string(), "03-popen".to_string()];
        let rows = [alice, bob];
        let shown = table(&rows, &labs);
        assert_eq!(
            shown.lines().take(3).collect::<Vec<_>>(),
            [
                "STUDENT  POINTS  COMMIT      GRADED AT                02    03",
                "alice    13/20   0123456789  2026-03-01T10:00:00Z  13/14  6/6*",
                "bob      13/20   fedcba      2026-03-01T10:00:00Z  13/14     -",
            ]
        );
        let csv = csv_text(&rows, &labs);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with(
            "student,file,commit,started_at,duration_seconds,points_earned,points_possible,\
             02-pipes tests_passed,02-pipes tests_total,"
        ));
        assert_eq!(
            lines[1],
            "alice,alice/grade.json,0123456789abcdef,2026-03-01T10:00:00Z,61.5,13,20,\
             13,14,13,14,in-progress,as-shipped,6,6,0,6,tampered,changed"
        );
        assert!(
            lines[2].ends_with("in-progress,as-shipped,,,,,,"),
            "{}",
            lines[2]
        );
    }
}
