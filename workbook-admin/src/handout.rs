//! `cargo workbook handout DIR`: the repository students get.
//!
//! DIR receives a copy of the course without what students must not see or
//! do not need, and with what a classroom needs:
//!
//! * left out: `solutions/` and `workbook-admin/` (the instructors'
//!   commands), and their crates from the workspace members; `.git/`,
//!   `target/`, the built book, CI scripts of the course (`.ci/`,
//!   `.github/`), pending snapshots;
//! * rewritten: the workspace `Cargo.toml` (no solution members), the
//!   README (for students: no solution or instructor commands) and the
//!   justfile (student commands only);
//! * added: `.github/workflows/classroom.yml`, GitHub Classroom autograding
//!   with one test per lab worth its own points, and fresh checksum
//!   manifests (`tests/MANIFEST.sha256`, `labs/MANIFEST.sha256`) for the
//!   tamper check and `reset`.
//!
//! The copy's workspace builds as it is (`cargo build`), and `cargo test`
//! in each lab grades it. With `--git` the copy becomes a git repository
//! with one commit, ready to push as a template repository.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use workbook::UsageError;
use workbook::manifest::{self, Kind};
use workbook::process;
use workbook::workspace::{self, LabToml, Workspace};

/// The student README, with `{{TITLE}}` and `{{LABS}}` to fill in.
const README: &str = include_str!("../templates/student-README.md");

/// The student justfile.
const JUSTFILE: &str = include_str!("../templates/student.justfile");

/// Paths (relative to the root) that are never copied.
const LEFT_OUT: [&str; 12] = [
    ".git",
    "target",
    "solutions",
    "workbook-admin",
    ".ci",
    ".github",
    "book/book",
    // Written anew for students.
    "README.md",
    "justfile",
    "Cargo.toml",
    Kind::Grading.file(),
    Kind::Labs.file(),
];

/// The options of `handout`.
#[derive(Debug)]
pub struct Options<'a> {
    /// Where to write the copy (relative to `cwd`).
    pub dest: &'a Path,
    /// Make it a git repository with one commit.
    pub git: bool,
    /// Points each lab is worth in the autograding workflow.
    pub points: u32,
}

/// Runs `cargo workbook handout DIR [--git] [--points N]`.
pub fn run(ws: &Workspace, options: &Options, cwd: &Path) -> Result<ExitCode> {
    let dest = workspace::lexically_normal(&cwd.join(options.dest));
    check_dest(&dest)?;
    fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut copied = 0;
    copy_tree(&ws.root, &ws.root, &dest, &mut copied)?;
    let manifest_text = fs::read_to_string(ws.root.join("Cargo.toml"))
        .context("cannot read the workspace Cargo.toml")?;
    write(&dest.join("Cargo.toml"), &student_manifest(&manifest_text)?)?;
    write(&dest.join("README.md"), &readme(ws)?)?;
    write(&dest.join("justfile"), JUSTFILE)?;
    write(
        &dest.join(".github/workflows/classroom.yml"),
        &classroom_workflow(ws, options.points)?,
    )?;
    let student = Workspace::discover(&dest)?;
    manifest::write(&student)?;
    let pruned = prune_lockfile(&dest);
    if options.git {
        commit(&dest)?;
    }
    let shown = dest.display();
    println!(
        "Wrote the student copy to {shown} ({} files copied).",
        copied
    );
    println!(
        "  left out: solutions/ and workbook-admin/ (and their workspace members), .git/, target/, .ci/, .github/"
    );
    println!(
        "  .github/workflows/classroom.yml: one autograding test per lab, {} points each ({} labs)",
        options.points,
        ws.labs.len()
    );
    println!("  README.md and justfile: written for students");
    println!(
        "  {} and {}: the grading files and labs as shipped",
        Kind::Grading.file(),
        Kind::Labs.file()
    );
    if let Err(err) = pruned {
        println!(
            "  note: Cargo.lock still lists the solutions ({err:#}); cargo updates it on the first build"
        );
    }
    if options.git {
        println!("  a git repository with one commit: push it as your template repository");
    }
    println!("Check it: cd {shown} && cargo build && cargo workbook grade");
    Ok(ExitCode::SUCCESS)
}

/// DIR must be new or an empty directory.
fn check_dest(dest: &Path) -> Result<()> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(UsageError(format!(
                    "{} is not empty: give a new or empty directory",
                    dest.display()
                ))
                .into());
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dest.exists() => {
            Err(UsageError(format!("{} exists and is not a directory", dest.display())).into())
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", dest.display())),
    }
}

/// Copies `dir` (inside `root`) to the same place under `dest`, leaving out
/// [`LEFT_OUT`], build output, editor backups, pending snapshots and `dest`
/// itself; counts the files copied.
fn copy_tree(root: &Path, dir: &Path, dest: &Path, copied: &mut usize) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        paths.push(
            entry
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path(),
        );
    }
    paths.sort();
    for path in paths {
        if path == dest || left_out(root, &path) {
            continue;
        }
        let target = dest.join(path.strip_prefix(root).unwrap_or(&path));
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot inspect {}", path.display()))?;
        if meta.is_dir() {
            fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            copy_tree(root, &path, dest, copied)?;
        } else if meta.is_file() {
            fs::copy(&path, &target).with_context(|| {
                format!("cannot copy {} to {}", path.display(), target.display())
            })?;
            *copied += 1;
        }
    }
    Ok(())
}

/// True for what the handout leaves out.
fn left_out(root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let slash = relative.to_string_lossy().replace('\\', "/");
    if LEFT_OUT.contains(&slash.as_str()) {
        return true;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Hidden files are copied at the top (.cargo/, .config/, .gitignore),
    // not deeper down, where they are editor or system droppings.
    let nested_hidden = name.starts_with('.') && relative.components().count() > 1;
    nested_hidden || (manifest::is_ignored(&name) && !name.starts_with('.'))
}

/// Workspace members the student copy does not have.
fn instructor_only(member: &str) -> bool {
    member.starts_with("solutions/") || member == "solutions" || member == "workbook-admin"
}

/// The workspace `Cargo.toml` without the solutions and the instructors'
/// commands: their lines leave `members` and `default-members`, and the
/// comment above `default-members` is written for students.
fn student_manifest(text: &str) -> Result<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| {
            let member = line.trim().trim_end_matches(',').trim_matches('"');
            !(line.trim_start().starts_with('"') && instructor_only(member))
        })
        .map(str::to_string)
        .collect();
    if let Some(at) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("default-members"))
    {
        let mut start = at;
        while start > 0 && lines[start - 1].trim_start().starts_with('#') {
            start -= 1;
        }
        lines.splice(
            start..at,
            [
                "# `cargo test` at the root tests the grader and the course CLI. Grade a lab",
                "# with `cargo test` inside its directory, or all of them with",
                "# `cargo workbook grade`.",
            ]
            .map(str::to_string),
        );
    }
    let mut rewritten = lines.join("\n");
    rewritten.push('\n');
    let table: toml::Table = rewritten
        .parse()
        .context("the workspace Cargo.toml is not valid TOML once the solutions are removed")?;
    let workspace = table.get("workspace").and_then(|w| w.as_table());
    for key in ["members", "default-members"] {
        let names = workspace
            .and_then(|w| w.get(key))
            .and_then(|m| m.as_array())
            .map(|m| m.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>())
            .unwrap_or_default();
        if names.iter().any(|name| instructor_only(name)) {
            bail!(
                "cannot take the solutions and workbook-admin out of the workspace `{key}` in \
                 Cargo.toml: write each member on a line of its own"
            );
        }
    }
    Ok(rewritten)
}

/// The student README, with the course's title and a table of the labs.
fn readme(ws: &Workspace) -> Result<String> {
    let title = fs::read_to_string(ws.root.join("README.md"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("# ").map(str::to_string))
        })
        .unwrap_or_else(|| "Linux IPC in Rust: a workbook".to_string());
    let mut rows = Vec::new();
    for lab in &ws.labs {
        let meta = LabToml::of(ws, lab)?;
        rows.push(format!(
            "| {} | {} | `labs/{}` | `{}` |",
            lab.number,
            meta.lab.title,
            lab.name,
            meta.lab.chapter.display()
        ));
    }
    Ok(README
        .replace("{{TITLE}}", &title)
        .replace("{{LABS}}", &rows.join("\n")))
}

/// `.github/workflows/classroom.yml`: GitHub Classroom autograding, one
/// `education/autograding-command-grader` step per lab worth `points`, and
/// the reporter that sends the total to the classroom. A first step checks
/// the grading files against `tests/MANIFEST.sha256` and stops the run if
/// they were changed.
fn classroom_workflow(ws: &Workspace, points: u32) -> Result<String> {
    let mut steps = String::new();
    let mut ids = Vec::new();
    for lab in &ws.labs {
        let meta = LabToml::of(ws, lab)?;
        let id = format!("lab_{}", lab.name.replace('-', "_"));
        let name = if meta.lab.title.is_empty() {
            lab.name.clone()
        } else {
            format!("{} {}", lab.name, meta.lab.title)
        };
        steps.push_str(&format!(
            "      - name: {name}
        id: {id}
        uses: education/autograding-command-grader@v1
        with:
          test-name: {name}
          setup-command: \"\"
          command: cargo test -p {package} --test {test}
          timeout: 10
          max-score: {points}
",
            name = yaml_string(&name),
            package = lab.package(),
            test = lab.test_target(),
        ));
        ids.push(id);
    }
    let env: String = ids
        .iter()
        .map(|id| {
            format!(
                "          {}_RESULTS: \"${{{{steps.{id}.outputs.result}}}}\"\n",
                id.to_uppercase()
            )
        })
        .collect();
    Ok(format!(
        "# GitHub Classroom autograding: one test per lab, each worth {points} points.
# A lab's test passes when its whole grading suite passes
# (`cargo test -p TOPIC --test TOPIC`). Written by `cargo workbook handout`.
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
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Check that the grading files are as shipped
        run: sha256sum --check --quiet {manifest}
      - name: Use the latest stable Rust
        run: rustup update stable --no-self-update && rustup default stable
{steps}      - name: Autograding Reporter
        uses: education/autograding-grading-reporter@v1
        env:
{env}        with:
          runners: {runners}
",
        manifest = Kind::Grading.file(),
        runners = ids.join(","),
    ))
}

/// `text` as a double-quoted YAML string.
fn yaml_string(text: &str) -> String {
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

/// Writes `text` to `path`, creating its directory.
fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Lets cargo drop the solution packages from the copied `Cargo.lock`:
/// `cargo update --workspace` only re-resolves the workspace's own
/// packages, so every dependency keeps its version, and `--offline` needs
/// nothing but what the course already fetched.
fn prune_lockfile(dest: &Path) -> Result<()> {
    let mut cmd = process::cargo(dest);
    cmd.args(["update", "--workspace", "--offline"]);
    let out = process::capture(&mut cmd)?;
    if !out.success {
        bail!(
            "{}",
            out.stderr.lines().next().unwrap_or("cargo update failed")
        );
    }
    Ok(())
}

/// `git init`, `git add -A`, `git commit` in `dest`.
fn commit(dest: &Path) -> Result<()> {
    for args in [
        &["init", "--quiet"][..],
        &["add", "--all"][..],
        &["commit", "--quiet", "--message", "Course handout"][..],
    ] {
        let mut cmd = Command::new("git");
        cmd.current_dir(dest).args(args);
        let out = process::capture(&mut cmd)?;
        if !out.success {
            bail!(
                "`{}` failed in {}: {} (the files are written; finish by hand)",
                process::describe(&cmd),
                dest.display(),
                out.stderr.lines().next().unwrap_or("no message").trim()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COURSE: &str = r#"[workspace]
resolver = "3"
members = [
    "labs/01-processes",
    "solutions/01-processes",
    "tests/grader",
    "workbook",
    "workbook-admin",
]
# `cargo test` at the root grades the reference solutions.
# More about it.
default-members = [
    "solutions/01-processes",
    "tests/grader",
    "workbook-admin",
]
"#;

    #[test]
    fn the_solutions_leave_the_workspace() {
        let student = student_manifest(COURSE).expect("rewritten");
        assert!(!student.contains("solutions"), "{student}");
        assert!(!student.contains("workbook-admin"), "{student}");
        assert!(student.contains("    \"workbook\",\n"), "{student}");
        assert!(student.contains("    \"labs/01-processes\",\n"));
        assert!(student.contains(
            "# `cargo workbook grade`.\ndefault-members = [\n    \"tests/grader\",\n]\n"
        ));
    }

    #[test]
    fn solutions_on_one_line_are_refused() {
        let text = "[workspace]\nmembers = [\"labs/01-processes\", \"solutions/01-processes\"]\n";
        let err = student_manifest(text).expect_err("cannot rewrite");
        assert!(
            err.to_string()
                .contains("write each member on a line of its own")
        );
    }

    #[test]
    fn what_is_left_out() {
        let root = Path::new("/course");
        for path in [
            "solutions",
            "workbook-admin",
            ".git",
            "target",
            "book/book",
            "tests/MANIFEST.sha256",
            "labs/02-pipes/target",
            "labs/02-pipes/src/.lib.rs.swp",
            "tests/snapshots/a.snap.new",
            "labs/02-pipes/src/lib.rs~",
        ] {
            assert!(left_out(root, &root.join(path)), "{path}");
        }
        for path in [
            ".cargo",
            ".config",
            ".gitignore",
            "book/src",
            "labs/02-pipes/src/lib.rs",
            "tests/snapshots/a.snap",
        ] {
            assert!(!left_out(root, &root.join(path)), "{path}");
        }
    }

    #[test]
    fn yaml_strings_are_quoted() {
        assert_eq!(
            yaml_string("02-pipes Pipes (管道)"),
            "\"02-pipes Pipes (管道)\""
        );
        assert_eq!(yaml_string("a \"b\": c\\"), "\"a \\\"b\\\": c\\\\\"");
    }
}
