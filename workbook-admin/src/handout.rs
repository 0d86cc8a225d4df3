//! `cargo workbook handout DIR`: the repository (or repositories) students get.
//!
//! DIR receives a copy of the course without what students must not see or
//! do not need, and with what a classroom needs:
//!
//! * left out: `solutions/` and `workbook-admin/` (the instructors'
//!   commands), and their crates from the workspace members; the
//!   instructor's guide (`guide/`); `.git/`, `target/`, the built book, CI
//!   of the course (`.ci/`, `.github/`), pending snapshots; and, for a copy
//!   of some labs only (`--labs`, `--per-lab`), the other labs with their
//!   suites, snapshots and chapters;
//! * rewritten: the workspace `Cargo.toml`, the README (for students: no
//!   solution or instructor commands, the labs and their points), the
//!   justfile (student commands only), and the book's pages: passages
//!   marked instructor-only are taken out, and links to chapters the copy
//!   does not have become plain text;
//! * added: `.github/workflows/classroom.yml` (see [`crate::classroom`]:
//!   one grading step per test, task or lab, compiled once, the grading
//!   manifest's digest pinned), and fresh checksum manifests.
//!
//! The copy's workspace builds as it is, `cargo test` in each lab grades it,
//! and its README and book name nothing for instructors and link only to
//! what it has: the command checks that last, and fails if not. With
//! `--git` each copy becomes a git repository with one commit, ready to
//! push as a template repository.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::classroom::{self, PROTECTED_PATHS};
use crate::pages;
use workbook::UsageError;
use workbook::manifest::{self, Kind};
use workbook::plan::{Granularity, Scoring, SuitePlan};
use workbook::process;
use workbook::workspace::{self, Lab, LabToml, Workspace};

/// The student README, with `{{TITLE}}`, `{{LABS}}`, `{{GRADING}}` to fill in.
const README: &str = include_str!("../templates/student-README.md");

/// The student justfile.
const JUSTFILE: &str = include_str!("../templates/student.justfile");

/// Paths (relative to the root) that are never copied.
const LEFT_OUT: [&str; 13] = [
    ".git",
    "target",
    "solutions",
    "workbook-admin",
    "guide",
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

/// How many grading steps GitHub shows (it runs more, but lists only these).
const SHOWN_STEPS: usize = 1000;

/// The options of `handout`.
#[derive(Debug)]
pub struct Options<'a> {
    /// Where to write the copy (relative to `cwd`).
    pub dest: &'a Path,
    /// Make it a git repository with one commit.
    pub git: bool,
    /// How points are earned, and how many per test.
    pub scoring: Scoring,
    /// The labs to hand out (all when empty), as `grade` names them.
    pub labs: &'a [String],
    /// One repository per lab, in DIR/NN-topic/.
    pub per_lab: bool,
}

/// Runs `cargo workbook handout DIR [--git] [--labs L,…] [--per-lab]
/// [--granularity G] [--points N]`.
pub fn run(ws: &Workspace, options: &Options, cwd: &Path) -> Result<ExitCode> {
    let dest = workspace::lexically_normal(&cwd.join(options.dest));
    check_dest(&dest)?;
    let chosen = chosen_labs(ws, options.labs)?;
    if options.per_lab {
        for lab in &chosen {
            write_copy(ws, &[*lab], &dest.join(&lab.name), options)?;
        }
        println!(
            "Wrote {} student repositories, one per lab, into {}.",
            chosen.len(),
            dest.display()
        );
    } else {
        write_copy(ws, &chosen, &dest, options)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The labs `queries` name, in course order (all of them when empty).
fn chosen_labs<'a>(ws: &'a Workspace, queries: &[String]) -> Result<Vec<&'a Lab>> {
    if queries.is_empty() {
        return Ok(ws.labs.iter().collect());
    }
    let mut chosen: Vec<&Lab> = Vec::new();
    for query in queries {
        let lab = ws.select_one(query.trim())?;
        if !chosen.contains(&lab) {
            chosen.push(lab);
        }
    }
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(chosen)
}

/// What a copy leaves out besides [`LEFT_OUT`]: the labs not chosen.
struct Selection {
    /// Paths of the labs not chosen, relative to the root: their
    /// directories, suites, chapters and mistake quotes.
    others: BTreeSet<String>,
    /// Snapshot name prefixes (`topic__`) of the labs not chosen.
    other_snapshots: Vec<String>,
    /// The chapters left out, relative to the root.
    other_chapters: BTreeSet<PathBuf>,
}

impl Selection {
    fn new(ws: &Workspace, chosen: &[&Lab]) -> Result<Selection> {
        let mut others = BTreeSet::new();
        let mut other_snapshots = Vec::new();
        let mut other_chapters = BTreeSet::new();
        for lab in ws.labs.iter().filter(|lab| !chosen.contains(lab)) {
            others.insert(format!("labs/{}", lab.name));
            others.insert(format!("tests/{}.rs", lab.name));
            others.insert(format!("book/src/mistakes/{}", lab.name));
            other_snapshots.push(format!("{}__", lab.test_target()));
            let chapter = LabToml::of(ws, lab)?.lab.chapter;
            others.insert(chapter.to_string_lossy().replace('\\', "/"));
            other_chapters.insert(chapter);
        }
        Ok(Selection {
            others,
            other_snapshots,
            other_chapters,
        })
    }

    /// True for a path (relative, with `/`) of a lab not chosen.
    fn excludes(&self, relative: &str) -> bool {
        if self.others.contains(relative) {
            return true;
        }
        match relative.strip_prefix("tests/snapshots/") {
            Some(name) => self.other_snapshots.iter().any(|p| name.starts_with(p)),
            None => false,
        }
    }
}

/// Writes one student copy with the labs `chosen` to `dest`.
fn write_copy(ws: &Workspace, chosen: &[&Lab], dest: &Path, options: &Options) -> Result<()> {
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let selection = Selection::new(ws, chosen)?;
    let mut copied = 0;
    copy_tree(&ws.root, &ws.root, dest, &selection, &mut copied)?;
    let manifest_text = fs::read_to_string(ws.root.join("Cargo.toml"))
        .context("cannot read the workspace Cargo.toml")?;
    write(
        &dest.join("Cargo.toml"),
        &student_manifest(&manifest_text, &selection.others)?,
    )?;
    rewrite_book(dest, &selection)?;
    write(&dest.join("justfile"), JUSTFILE)?;
    let units = classroom::units(ws, chosen, options.scoring)?;
    write(
        &dest.join("README.md"),
        &readme(ws, chosen, options.scoring, &units)?,
    )?;
    let pruned = prune_lockfile(dest);
    let student = Workspace::discover(dest)?;
    manifest::write(&student)?;
    let digest = manifest::sha256_file(&dest.join(Kind::Grading.file()))?;
    let title = course_title(ws);
    write(
        &dest.join(manifest::PIN_FILE),
        &classroom::workflow(&classroom::Settings {
            title: &title,
            units: &units,
            scoring: options.scoring,
            manifest_digest: &digest,
        }),
    )?;
    let problems = pages::check_student_pages(dest)?;
    if !problems.is_empty() {
        bail!(
            "the student pages of {} would show instructors' text or lead nowhere:\n  {}",
            dest.display(),
            problems.join("\n  ")
        );
    }
    if options.git {
        commit(dest)?;
    }
    let partial = !selection.others.is_empty();
    report(dest, chosen, partial, options, &units, copied, pruned.err());
    for lab in chosen {
        let plan = SuitePlan::of(ws, lab)?;
        if plan.unread > 0 {
            println!(
                "  note: {} of tests/{}.rs's tests are not top-level `#[test] fn`s: they run, \
                 but have no grading step of their own",
                plan.unread, lab.name
            );
        }
        let untasked: Vec<&str> = plan
            .tests
            .iter()
            .filter(|t| t.task.is_none())
            .map(|t| t.name.as_str())
            .collect();
        if options.scoring.granularity == Granularity::Task && !untasked.is_empty() {
            println!(
                "  note: in {}, these tests name no task and earn their points one by one: {}",
                lab.name,
                untasked.join(", ")
            );
        }
    }
    Ok(())
}

/// What `handout` says about one copy it wrote.
fn report(
    dest: &Path,
    chosen: &[&Lab],
    partial: bool,
    options: &Options,
    units: &[classroom::Unit],
    copied: usize,
    pruned: Option<anyhow::Error>,
) {
    let shown = dest.display();
    let total: u32 = units.iter().map(|u| u.points).sum();
    let names: Vec<&str> = chosen.iter().map(|l| l.name.as_str()).collect();
    println!("Wrote the student copy to {shown} ({copied} files copied).");
    println!("  labs: {}", names.join(", "));
    println!(
        "  left out: solutions/, workbook-admin/, guide/ (and their workspace members), .git/, \
         target/, .ci/, .github/{}",
        if partial {
            ", the other labs with their suites and chapters"
        } else {
            ""
        }
    );
    println!(
        "  .github/workflows/classroom.yml: {} grading steps ({} by {}), {total} points, \
         {} per test; the grading manifest's SHA-256 is pinned in it",
        units.len(),
        options.scoring.granularity,
        options.scoring.granularity,
        options.scoring.per_test
    );
    if units.len() > SHOWN_STEPS {
        println!(
            "  note: GitHub lists only the first {SHOWN_STEPS} steps of a run: prefer \
             --granularity task, or one repository per lab (--per-lab)"
        );
    }
    println!("  README.md, justfile and the book: written for students");
    println!(
        "  {} and {}: the grading files and labs as shipped",
        Kind::Grading.file(),
        Kind::Labs.file()
    );
    if let Some(err) = pruned {
        println!(
            "  note: Cargo.lock still lists the solutions ({err:#}); cargo updates it on the first build"
        );
    }
    if options.git {
        println!("  a git repository with one commit: push it as your template repository");
    }
    println!(
        "  in the Classroom assignment, protect: {}",
        PROTECTED_PATHS.join(" ")
    );
    println!("Check it: cd {shown} && cargo build && cargo workbook grade");
}

/// The course's title: the first heading of its README.
fn course_title(ws: &Workspace) -> String {
    fs::read_to_string(ws.root.join("README.md"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("# ").map(str::to_string))
        })
        .unwrap_or_else(|| "Linux IPC in Rust: a workbook".to_string())
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
/// [`LEFT_OUT`], the labs not chosen, build output, editor backups, pending
/// snapshots and `dest` itself; counts the files copied.
fn copy_tree(
    root: &Path,
    dir: &Path,
    dest: &Path,
    selection: &Selection,
    copied: &mut usize,
) -> Result<()> {
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
        if path == dest || left_out(root, &path) || selection.excludes(&relative(root, &path)) {
            continue;
        }
        let target = dest.join(path.strip_prefix(root).unwrap_or(&path));
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot inspect {}", path.display()))?;
        if meta.is_dir() {
            fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            copy_tree(root, &path, dest, selection, copied)?;
        } else if meta.is_file() {
            fs::copy(&path, &target).with_context(|| {
                format!("cannot copy {} to {}", path.display(), target.display())
            })?;
            *copied += 1;
        }
    }
    Ok(())
}

/// `path` relative to `root`, with `/`.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// True for what the handout leaves out.
fn left_out(root: &Path, path: &Path) -> bool {
    let slash = relative(root, path);
    if LEFT_OUT.contains(&slash.as_str()) {
        return true;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Hidden files are copied at the top (.cargo/, .config/, .gitignore),
    // not deeper down, where they are editor or system droppings.
    let nested_hidden = name.starts_with('.') && Path::new(&slash).components().count() > 1;
    nested_hidden || (manifest::is_ignored(&name) && !name.starts_with('.'))
}

/// Workspace members the student copy does not have.
fn instructor_only(member: &str, others: &BTreeSet<String>) -> bool {
    member.starts_with("solutions/")
        || member == "solutions"
        || member == "workbook-admin"
        || others.contains(member)
}

/// The workspace `Cargo.toml` without the solutions, the instructors'
/// commands and the labs not handed out: their lines leave `members` and
/// `default-members`, and the comment above `default-members` is written
/// for students.
fn student_manifest(text: &str, others: &BTreeSet<String>) -> Result<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| {
            let member = line.trim().trim_end_matches(',').trim_matches('"');
            !(line.trim_start().starts_with('"') && instructor_only(member, others))
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
        if names.iter().any(|name| instructor_only(name, others)) {
            bail!(
                "cannot take the solutions and workbook-admin out of the workspace `{key}` in \
                 Cargo.toml: write each member on a line of its own"
            );
        }
    }
    Ok(rewritten)
}

/// The copy's book for students: instructor-only passages out of every
/// page, the chapters of labs not handed out out of `SUMMARY.md`, and links
/// to them made plain text.
fn rewrite_book(dest: &Path, selection: &Selection) -> Result<()> {
    let src = dest.join("book/src");
    let mut pages_found = Vec::new();
    pages::collect_markdown(&src, &mut pages_found)?;
    let removed: BTreeSet<PathBuf> = selection
        .other_chapters
        .iter()
        .map(|chapter| workspace::lexically_normal(&dest.join(chapter)))
        .collect();
    for page in pages_found {
        let text =
            fs::read_to_string(&page).with_context(|| format!("cannot read {}", page.display()))?;
        let name = relative(dest, &page);
        let mut rewritten = pages::strip_instructor_only(&text, &name)?;
        let dir = page.parent().unwrap_or(&src).to_path_buf();
        if page.file_name().is_some_and(|n| n == "SUMMARY.md") {
            rewritten = rewritten
                .lines()
                .filter(|line| {
                    !pages::links(line).iter().any(|link| {
                        removed.contains(&workspace::lexically_normal(&dir.join(&link.target)))
                    })
                })
                .map(|line| format!("{line}\n"))
                .collect();
        } else {
            rewritten = pages::unlink_removed(&rewritten, &dir, &removed);
        }
        if rewritten != text {
            write(&page, &rewritten)?;
        }
    }
    Ok(())
}

/// The student README: the course's title, the labs with their chapters and
/// points, and how they are graded.
fn readme(
    ws: &Workspace,
    chosen: &[&Lab],
    scoring: Scoring,
    units: &[classroom::Unit],
) -> Result<String> {
    let mut rows = Vec::new();
    for lab in chosen {
        let meta = LabToml::of(ws, lab)?;
        let points: u32 = units
            .iter()
            .filter(|u| u.lab == lab.name)
            .map(|u| u.points)
            .sum();
        let tests = SuitePlan::of(ws, lab)?.tests.len();
        rows.push(format!(
            "| {} | {} | `labs/{}` | `{}` | {tests} | {points} |",
            lab.number,
            meta.lab.title,
            lab.name,
            meta.lab.chapter.display()
        ));
    }
    let how = match scoring.granularity {
        Granularity::Test => format!(
            "Every test that passes earns its points ({} per test), so a lab that passes 13 of \
             its 14 tests earns 13/14 of its points.",
            scoring.per_test
        ),
        Granularity::Task => format!(
            "A task earns the points of its tests ({} per test) once all of them pass; the \
             chapter's tasks are numbered like the TODOs.",
            scoring.per_test
        ),
        Granularity::Lab => format!(
            "A lab earns its points ({} per test) once every one of its tests passes.",
            scoring.per_test
        ),
    };
    Ok(README
        .replace("{{TITLE}}", &course_title(ws))
        .replace("{{RUST_VERSION}}", &rust_version(ws))
        .replace("{{LABS}}", &rows.join("\n"))
        .replace("{{GRADING}}", &how))
}

/// The oldest Rust the course builds with: `rust-version` in the workspace
/// `Cargo.toml`, where it is stated once.
pub fn rust_version(ws: &Workspace) -> String {
    fs::read_to_string(ws.root.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| {
            let version = table
                .get("workspace")?
                .get("package")?
                .get("rust-version")?
                .as_str()?
                .to_string();
            Some(version)
        })
        .unwrap_or_else(|| "stable".to_string())
}

/// Writes `text` to `path`, creating its directory.
fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Lets cargo drop the solution packages (and the labs not handed out)
/// from the copied `Cargo.lock`: `cargo update --workspace` only re-resolves
/// the workspace's own packages, so every dependency keeps its version, and
/// `--offline` needs nothing but what the course already fetched.
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
    "labs/02-pipes",
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
        let student = student_manifest(COURSE, &BTreeSet::new()).expect("rewritten");
        assert!(!student.contains("solutions"), "{student}");
        assert!(!student.contains("workbook-admin"), "{student}");
        assert!(student.contains("    \"workbook\",\n"), "{student}");
        assert!(student.contains("    \"labs/01-processes\",\n"));
        assert!(student.contains(
            "# `cargo workbook grade`.\ndefault-members = [\n    \"tests/grader\",\n]\n"
        ));
        let one =
            student_manifest(COURSE, &["labs/01-processes".to_string()].into()).expect("rewritten");
        assert!(!one.contains("labs/01-processes"), "{one}");
        assert!(one.contains("    \"labs/02-pipes\",\n"), "{one}");
    }

    #[test]
    fn solutions_on_one_line_are_refused() {
        let text = "[workspace]\nmembers = [\"labs/01-processes\", \"solutions/01-processes\"]\n";
        let err = student_manifest(text, &BTreeSet::new()).expect_err("cannot rewrite");
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
            "guide",
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
}
