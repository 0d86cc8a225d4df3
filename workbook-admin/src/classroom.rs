//! `.github/workflows/classroom.yml` of a handout: GitHub Classroom
//! autograding that compiles once, gives each test (or task, or lab) its
//! own step and points, and always reports a score.
//!
//! The order of the steps is the point:
//!
//! 1. Before anything is built, the shell (not the tool, which could have
//!    been changed) checks that `tests/MANIFEST.sha256` is the one shipped,
//!    by the SHA-256 this file pins, and that the grading tool's files
//!    (`workbook/`, the workspace `Cargo.toml` and `Cargo.lock`,
//!    `.cargo/`) are as it lists them, with nothing added.
//! 2. The tool is built into the runner's temporary directory, before any
//!    lab is built, and its digest recorded: nothing a lab's build or
//!    program does later can swap it unnoticed.
//! 3. `grade` grades every lab once; it checks every grading file before,
//!    after each lab's build and after each lab's run, and voids the labs a
//!    change concerns.
//! 4. Each unit has a step that reads its points with `score`, which
//!    writes the result GitHub Classroom's reporter reads. A step that
//!    cannot run the tool (missing, changed, or the shipped check failed)
//!    still writes a result: zero points and the reason.
//! 5. `grade.json` and `grade.csv` are kept as the run's artifact, and the
//!    reporter sends the points to Classroom.
//!
//! Classroom's protected paths cannot be set from a repository: the
//! header says which to set in the assignment.

use std::fmt::Write as _;

use anyhow::Result;

use workbook::manifest::PIN_VARIABLE;
use workbook::plan::{Granularity, Scoring, SuitePlan};
use workbook::workspace::{Lab, LabToml, Workspace};

/// The paths to protect in the Classroom assignment, as its settings take
/// them.
pub const PROTECTED_PATHS: [&str; 9] = [
    ".github/**",
    "tests/**",
    "workbook/**",
    ".cargo/**",
    ".config/**",
    "**/Cargo.toml",
    "Cargo.lock",
    "**/build.rs",
    "**/rust-toolchain*",
];

/// One grading step: a lab, a task or a test, and its points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The step's id (letters, digits, `_`).
    pub id: String,
    /// The step's name, shown in the log and the report.
    pub name: String,
    /// The lab's directory name.
    pub lab: String,
    /// `--task N` or `--test NAME`, or nothing for the whole lab.
    pub selector: Option<(String, String)>,
    /// Its points.
    pub points: u32,
}

/// The grading steps for `labs` under `scoring`, from their suites.
pub fn units(ws: &Workspace, labs: &[&Lab], scoring: Scoring) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    for lab in labs {
        let plan = SuitePlan::of(ws, lab)?;
        let meta = LabToml::of(ws, lab)?;
        let key = lab.name.replace('-', "_");
        let per = scoring.per_test;
        match scoring.granularity {
            Granularity::Lab => units.push(Unit {
                id: format!("lab_{key}"),
                name: if meta.lab.title.is_empty() {
                    lab.name.clone()
                } else {
                    format!("{} {}", lab.name, meta.lab.title)
                },
                lab: lab.name.clone(),
                selector: None,
                points: per * plan.tests.len() as u32,
            }),
            Granularity::Task => {
                let mut numbers: Vec<u32> = plan.tests.iter().filter_map(|t| t.task).collect();
                numbers.sort_unstable();
                numbers.dedup();
                for number in numbers {
                    let count = plan.tests.iter().filter(|t| t.task == Some(number)).count();
                    let summary = meta
                        .todo
                        .iter()
                        .find(|t| t.number == number)
                        .map(|t| t.summary.clone())
                        .unwrap_or_default();
                    let name = if summary.is_empty() {
                        format!("{} task {number}", lab.name)
                    } else {
                        format!("{} task {number}: {summary}", lab.name)
                    };
                    units.push(Unit {
                        id: format!("task_{key}_{number}"),
                        name,
                        lab: lab.name.clone(),
                        selector: Some(("--task".to_string(), number.to_string())),
                        points: per * count as u32,
                    });
                }
                // Tests of no task earn their points one by one.
                for test in plan.tests.iter().filter(|t| t.task.is_none()) {
                    units.push(test_unit(lab, &key, &test.name, per));
                }
            }
            Granularity::Test => {
                for test in &plan.tests {
                    units.push(test_unit(lab, &key, &test.name, per));
                }
            }
        }
    }
    Ok(units)
}

/// The step of one test.
fn test_unit(lab: &Lab, key: &str, test: &str, points: u32) -> Unit {
    Unit {
        id: format!("test_{key}_{test}"),
        name: format!("{}: {test}", lab.name),
        lab: lab.name.clone(),
        selector: Some(("--test".to_string(), test.to_string())),
        points,
    }
}

/// Everything the workflow needs to know.
#[derive(Debug)]
pub struct Settings<'a> {
    /// The course's title, for the header.
    pub title: &'a str,
    /// The grading steps.
    pub units: &'a [Unit],
    /// How points are earned.
    pub scoring: Scoring,
    /// The SHA-256 of the copy's `tests/MANIFEST.sha256`.
    pub manifest_digest: &'a str,
}

/// The workflow's text.
pub fn workflow(settings: &Settings) -> String {
    let Settings {
        title,
        units,
        scoring,
        manifest_digest,
    } = settings;
    let total: u32 = units.iter().map(|u| u.points).sum();
    let labs: std::collections::BTreeSet<&str> = units.iter().map(|u| u.lab.as_str()).collect();
    let unit_word = match scoring.granularity {
        Granularity::Test => "test",
        Granularity::Task => "task",
        Granularity::Lab => "lab",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "# GitHub Classroom autograding for {title}: {labs} lab(s), {total} points in all,
# {per} per graded test, earned {unit_word} by {unit_word} (--granularity {granularity}).
# Written by `cargo workbook handout`.
#
# How it grades: the labs are compiled and their suites run once; then each
# {unit_word} has its own step, which reads its points from that grade.
#   1. Before anything is built, the shell checks that tests/MANIFEST.sha256 is
#      the one shipped ({PIN_VARIABLE} below is its SHA-256) and that the
#      grading tool's files (workbook/, Cargo.toml, Cargo.lock, .cargo/) are as
#      it lists them.
#   2. The grading tool is built outside the checkout, before any lab, and its
#      SHA-256 recorded, so that nothing a lab runs can replace it unseen.
#   3. `grade` grades every lab, checking every file that decides a grade
#      before, after each lab's build and after each lab's run. A lab whose
#      grading files were changed, or to which a build.rs or a .cargo/ file was
#      added, earns 0 points, and its steps say why.
#   4. Each step writes its result for the reporter, which sends the total to
#      GitHub Classroom: a score is always reported, zero with the reason for
#      what could not be graded.
#   5. grade.json and grade.csv are kept as the run's artifact `grade`.
#
# In the assignment on GitHub Classroom, set these protected file paths (they
# cannot be set from the repository; Classroom then flags every submission
# that changes one):
#   {protected}
# Do not add or edit autograding tests in the Classroom UI: saving them
# rewrites this file, and the steps above are lost.
name: Autograding Tests
\"on\":
  - push
  - repository_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    timeout-minutes: 60
    env:
      {PIN_VARIABLE}: {manifest_digest}
      # A rust-toolchain file in the repository does not choose the compiler.
      RUSTUP_TOOLCHAIN: stable
      CARGO_TERM_COLOR: never
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Install Rust
        run: rustup toolchain install stable --profile minimal --no-self-update
      - name: Check the grading manifest and the grading tool as shipped
        id: shipped
        run: |
{check}      - name: Build the grading tool (outside the checkout, before any lab)
        id: tool
        if: steps.shipped.outputs.void == ''
        continue-on-error: true
        run: |
          dir=\"$RUNNER_TEMP/workbook\"
          cargo build --locked --quiet --package workbook --bin workbook --target-dir \"$dir/target\"
          cp \"$dir/target/debug/workbook\" \"$dir/workbook\"
          echo \"sha256=$(sha256sum \"$dir/workbook\" | cut -d' ' -f1)\" >> \"$GITHUB_OUTPUT\"
      - name: Grade every lab (compiled and run once)
        if: steps.tool.outputs.sha256 != ''
        continue-on-error: true
        run: >-
          env -u GITHUB_ENV -u GITHUB_OUTPUT -u GITHUB_PATH -u GITHUB_STATE -u GITHUB_STEP_SUMMARY
          \"$RUNNER_TEMP/workbook/workbook\" grade --json-file grade.json --csv grade.csv
          --granularity {granularity} --points {per}
",
        labs = labs.len(),
        per = scoring.per_test,
        granularity = scoring.granularity,
        protected = PROTECTED_PATHS.join("  "),
        check = indent(CHECK, 10),
    );
    for unit in units.iter() {
        out.push_str(&step(unit));
    }
    let env: String = units
        .iter()
        .map(|unit| {
            format!(
                "          {}_RESULTS: \"${{{{steps.{}.outputs.result}}}}\"\n",
                unit.id.to_uppercase(),
                unit.id
            )
        })
        .collect();
    let runners: Vec<&str> = units.iter().map(|u| u.id.as_str()).collect();
    let _ = write!(
        out,
        "      - name: Keep the grade for the instructor
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: grade
          path: |
            grade.json
            grade.csv
          if-no-files-found: warn
      - name: Autograding Reporter
        if: always()
        uses: education/autograding-grading-reporter@v1
        env:
{env}        with:
          runners: {runners}
",
        runners = runners.join(",")
    );
    out
}

/// The check of step 1, in the shell: it never trusts the tool.
const CHECK: &str = r#"set -u
manifest=tests/MANIFEST.sha256
void=""
if ! printf '%s  %s\n' "$WORKBOOK_MANIFEST_SHA256" "$manifest" | sha256sum --check --status 2>/dev/null; then
  void="$manifest is not the one shipped (its SHA-256 differs from the one this workflow pins)"
else
  tool=$(grep -E '^[0-9a-f]{64}  (workbook/.*|Cargo\.toml|Cargo\.lock|\.cargo/.*)$' "$manifest" || true)
  listed=$(printf '%s\n' "$tool" | cut -c67- | sort)
  present=$({ find workbook .cargo \( -type f -o -type l \) 2>/dev/null || true; ls -d Cargo.toml Cargo.lock 2>/dev/null || true; } | sort)
  added=$(comm -13 <(printf '%s\n' "$listed") <(printf '%s\n' "$present") | tr '\n' ' ')
  changed=$(printf '%s\n' "$tool" | sha256sum --check --quiet 2>/dev/null | cut -d: -f1 | tr '\n' ' ' || true)
  if [ -n "${added// /}${changed// /}" ]; then
    void="files of the grading tool were changed or added: ${changed}${added}"
  fi
fi
void=$(printf '%s' "$void" | tr -c 'A-Za-z0-9 ._/:()-' '_')
echo "void=$void" >> "$GITHUB_OUTPUT"
if [ -n "$void" ]; then echo "GRADE VOID: $void"; else echo "the grading manifest and the grading tool are as shipped"; fi
"#;

/// One grading step: runs `score` with the tool built in step 2 if its
/// digest still matches, and otherwise writes a result worth nothing that
/// says why.
fn step(unit: &Unit) -> String {
    let selector = match &unit.selector {
        Some((flag, value)) => format!(" {flag} {value}"),
        None => String::new(),
    };
    let name = json_text(&unit.name);
    format!(
        "      - name: {yaml_name}
        id: {id}
        if: always()
        env:
          TOOL_SHA256: ${{{{ steps.tool.outputs.sha256 }}}}
          VOID: ${{{{ steps.shipped.outputs.void }}}}
        run: >-
          echo \"$TOOL_SHA256  $RUNNER_TEMP/workbook/workbook\" | sha256sum --check --status 2>/dev/null
          && \"$RUNNER_TEMP/workbook/workbook\" score grade.json {lab}{selector} --max {points} --classroom
          || printf 'result=%s\\n' \"$(printf '{{\"version\":1,\"status\":\"error\",\"max_score\":{points},\"tests\":[{{\"name\":\"{name}\",\"status\":\"error\",\"score\":0,\"message\":\"0/{points} points: grade void: %s\",\"test_code\":\"\",\"filename\":\"\",\"line_no\":0,\"duration\":0}}]}}' \"${{VOID:-the grading tool is missing, or was changed while the labs ran (see the steps above)}}\" | base64 -w0)\" >> \"$GITHUB_OUTPUT\"
",
        yaml_name = yaml_string(&unit.name),
        id = unit.id,
        lab = unit.lab,
        points = unit.points,
    )
}

/// `text` safe inside a JSON string in a single-quoted shell word.
fn json_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\'' | '%' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// `text` with every line indented by `by` spaces.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_string()
            } else {
                format!("{pad}{line}\n")
            }
        })
        .collect()
}

/// `text` as a double-quoted YAML string.
pub fn yaml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, points: u32) -> Unit {
        Unit {
            id: id.to_string(),
            name: format!("02-pipes: {id}"),
            lab: "02-pipes".to_string(),
            selector: Some(("--test".to_string(), id.to_string())),
            points,
        }
    }

    #[test]
    fn every_step_reports_through_the_reporter() {
        let units = [unit("test_02_pipes_a", 1), unit("test_02_pipes_b", 1)];
        let text = workflow(&Settings {
            title: "A course",
            units: &units,
            scoring: Scoring::default(),
            manifest_digest: &"a".repeat(64),
        });
        for expected in [
            "# GitHub Classroom autograding for A course: 1 lab(s), 2 points in all,\n",
            &format!("      WORKBOOK_MANIFEST_SHA256: {}\n", "a".repeat(64)),
            "        id: test_02_pipes_b\n        if: always()\n",
            "score grade.json 02-pipes --test test_02_pipes_a --max 1 --classroom\n",
            "\"max_score\":1,",
            "          TEST_02_PIPES_A_RESULTS: \"${{steps.test_02_pipes_a.outputs.result}}\"\n",
            "          runners: test_02_pipes_a,test_02_pipes_b\n",
            "        run: |\n          set -u\n          manifest=tests/MANIFEST.sha256\n",
            "   .github/**  tests/**  workbook/**",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }

    #[test]
    fn yaml_strings_are_quoted() {
        assert_eq!(
            yaml_string("02-pipes Pipes (管道)"),
            "\"02-pipes Pipes (管道)\""
        );
        assert_eq!(yaml_string("a \"b\": c\\"), "\"a \\\"b\\\": c\\\\\"");
        assert_eq!(json_text("it's \"x\" 100%"), "it_s _x_ 100_");
    }
}
