//! A small fake course to run the course CLI against (the `workbook` and
//! `workbook-admin` binaries: the test file that includes this module names
//! its binary as `crate::BIN`), and a stand-in for cargo, so that no test
//! compiles or grades anything for real.
//!
//! The fake course has two labs (`01-processes`, `02-pipes`) with two TODOs
//! each, their solutions, suites, a snapshot, a book and a README. The fake
//! cargo (`$CARGO`) answers `cargo metadata`, answers `cargo test -p TOPIC`
//! with libtest output in which test N passes once the lab's
//! `todo!("TODO(N)…")` is gone (only builds with `--no-run`; with
//! `FAKE_TAMPER_AT=build` or `run` it also changes a snapshot while it
//! builds or runs, as a build script or a program could), and answers
//! `cargo run` by writing its arguments, one per line, to `cargo-run-args`
//! in its working directory and exiting with status 3.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use tempfile::TempDir;

/// The stand-in for cargo: a fixed script, run directly (never through
/// `sh -c` with data in it).
const FAKE_CARGO: &str = r#"#!/bin/sh
# Stand-in for cargo in the workbook CLI's tests.
here=$(pwd -P)
case "$1" in
  metadata) printf '{"target_directory":"%s/target"}\n' "$here"; exit 0 ;;
  run) printf '%s\n' "$@" > cargo-run-args; exit 3 ;;
  test) ;;
  *) exit 0 ;;
esac
pkg=$3
lib=$(ls -d labs/*-"$pkg" | head -n 1)/src/lib.rs
echo "   Compiling $pkg v0.1.0 ($here)" >&2
if grep -q 'does not compile' "$lib"; then
  echo "error[E0425]: cannot find value \`fds\` in this scope" >&2
  echo "  --> $lib:3:9" >&2
  exit 101
fi
norun=no
for arg in "$@"; do
  if [ "$arg" = --no-run ]; then norun=yes; fi
done
# What a build script or a lab's program could do behind the grader's back.
if [ "${FAKE_TAMPER_AT:-}" = build ] && [ $norun = yes ]; then
  echo changed >> tests/snapshots/pipes__task_1_works.snap
fi
if [ "${FAKE_TAMPER_AT:-}" = run ] && [ $norun = no ]; then
  echo changed >> tests/snapshots/pipes__task_1_works.snap
fi
if [ $norun = yes ]; then
  echo "  Executable tests/$pkg.rs (target/debug/deps/$pkg-0)" >&2
  exit 0
fi
echo "     Running tests/$pkg.rs (target/debug/deps/$pkg-0)" >&2
echo "running 2 tests"
failed=0
for n in 1 2; do
  if grep -q "todo!(\"TODO($n)" "$lib"; then
    echo "test task_${n}_works ... FAILED"; failed=1
  else
    echo "test task_${n}_works ... ok"
  fi
done
if [ $failed = 1 ]; then
  echo
  echo "failures:"
  for n in 1 2; do
    if grep -q "todo!(\"TODO($n)" "$lib"; then
      echo
      echo "---- task_${n}_works stdout ----"
      echo "thread 'task_${n}_works' panicked at tests/$pkg.rs:1:1:"
      echo "$pkg: TODO $n is not done <yet> & \"still\" panics"
      echo "  read: section \"Task $n: do it\""
      echo "note: run with \`RUST_BACKTRACE=1\` environment variable to display a backtrace"
    fi
  done
  echo
  echo "test result: FAILED."
  exit 101
fi
echo "test result: ok. 2 passed; 0 failed"
"#;

/// A temporary course checkout and the fake cargo beside it.
pub struct Course {
    dir: TempDir,
    pub root: PathBuf,
    pub cargo: PathBuf,
}

impl Course {
    /// A fresh fake course with its manifests written, not yet under git.
    pub fn new() -> Course {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().join("course");
        let cargo = dir.path().join("bin/cargo");
        write(&cargo, FAKE_CARGO);
        fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).expect("chmod");
        let course = Course { dir, root, cargo };
        course.write_files();
        let ws = workbook::workspace::Workspace::discover(&course.root).expect("the fake course");
        workbook::manifest::write(&ws).expect("manifests written");
        course
    }

    /// A fake course committed to a fresh git repository.
    pub fn committed() -> Course {
        let course = Course::new();
        course.git(&["init", "--quiet"]);
        course.git(&["add", "--all"]);
        course.git(&["commit", "--quiet", "--message", "Course"]);
        course
    }

    /// The binary under test, run at the root with the fake cargo.
    pub fn workbook(&self) -> Command {
        self.workbook_in(&self.root)
    }

    /// The binary under test, run in `dir` with the fake cargo.
    pub fn workbook_in(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(crate::BIN);
        cmd.current_dir(dir)
            .env("CARGO", &self.cargo)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("WORKBOOK_MDBOOK");
        cmd
    }

    /// A path in the temporary directory, outside the course.
    pub fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A path inside the course.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// A file of the course, as text.
    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).expect("a readable file")
    }

    /// Overwrites a file of the course.
    pub fn write(&self, relative: &str, text: &str) {
        write(&self.path(relative), text);
    }

    /// Does TODO `n` of a lab: its `todo!()` gives way to real code.
    pub fn solve(&self, lab: &str, n: u32) {
        let path = format!("labs/{lab}/src/lib.rs");
        let text = self
            .read(&path)
            .replace(&format!("todo!(\"TODO({n}): task_{n}\")"), &format!("{n}"));
        self.write(&path, &text);
    }

    /// Runs git in the course with a fixed identity.
    pub fn git(&self, args: &[&str]) {
        let status = StdCommand::new("git")
            .current_dir(&self.root)
            .args([
                "-c",
                "user.name=Course",
                "-c",
                "user.email=course@example.com",
            ])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} failed");
    }

    fn write_files(&self) {
        self.write(
            "Cargo.toml",
            r#"[workspace]
resolver = "3"
members = [
    "labs/01-processes",
    "labs/02-pipes",
    "solutions/01-processes",
    "solutions/02-pipes",
    "tests/grader",
    "workbook",
    "workbook-admin",
]
# `cargo test` at the root grades the reference solutions.
default-members = [
    "solutions/01-processes",
    "solutions/02-pipes",
    "tests/grader",
    "workbook",
    "workbook-admin",
]
"#,
        );
        self.write(
            "README.md",
            "# A fake course\n\nRun `cargo test -p pipes-solution` to check the solutions.\n",
        );
        self.write("justfile", "verify:\n    cargo workbook verify\n");
        self.write(
            ".cargo/config.toml",
            "[alias]\nworkbook = \"run -p workbook --\"\n",
        );
        self.write(".config/insta.yaml", "behavior:\n  update: no\n");
        self.write(".gitignore", "/target\n");
        self.write(".ci/run", "#!/bin/sh\ncargo test\n");
        self.write("book/book.toml", "[book]\ntitle = \"Fake\"\n");
        self.write(
            "book/src/SUMMARY.md",
            "# Summary\n\n- [Processes](01-processes.md)\n- [Pipes](02-pipes.md)\n\
             - [Grading](grading.md)\n",
        );
        self.write(
            "book/src/grading.md",
            "# Grading\n\nRun `cargo test` in a lab; see [Pipes](02-pipes.md#task-1-do-the-first-thing).\n\n\
             <!-- instructor-only -->\n## For instructors\n\nRun `cargo workbook verify`; the \
             solutions are in `solutions/`.\n<!-- /instructor-only -->\n",
        );
        self.write("guide/README.md", "# Instructor's guide\n");
        self.write("book/book/index.html", "built\n");
        self.write("workbook/Cargo.toml", "[package]\nname = \"workbook\"\n");
        self.write(
            "workbook-admin/Cargo.toml",
            "[package]\nname = \"workbook-admin\"\n",
        );
        self.write("tests/grader/Cargo.toml", "[package]\nname = \"grader\"\n");
        self.write("tests/grader/src/lib.rs", "//! The grader.\n");
        self.write(
            "tests/snapshots/pipes__task_1_works.snap",
            "---\nsource: tests/02-pipes.rs\n---\n1\n",
        );
        self.write("target/debug/junk", "build output\n");
        for (lab, title) in [("01-processes", "Processes"), ("02-pipes", "Pipes (管道)")] {
            let topic = lab.split_once('-').map(|(_, t)| t).unwrap_or(lab);
            self.write(
                &format!("tests/{lab}.rs"),
                &format!(
                    "//! Suite of {lab}.\n\n#[test]\nfn task_1_works() {{\n    check(\"Task 1: do it\");\n}}\n\n\
                     #[test]\nfn task_2_works() {{\n    check(\"Task 2: do it\");\n}}\n"
                ),
            );
            self.write(
                &format!("book/src/{lab}.md"),
                &format!(
                    "# {title}\n\n### Task 1: do the first thing\n\n### Task 2: do the second\n"
                ),
            );
            for (dir, package) in [
                ("labs", topic.to_string()),
                ("solutions", format!("{topic}-solution")),
            ] {
                self.write(
                    &format!("{dir}/{lab}/Cargo.toml"),
                    &format!(
                        "[package]\nname = \"{package}\"\n\n[[test]]\nname = \"{topic}\"\npath = \"../../tests/{lab}.rs\"\n"
                    ),
                );
                self.write(&format!("{dir}/{lab}/src/main.rs"), "fn main() {}\n");
            }
            self.write(
                &format!("labs/{lab}/src/lib.rs"),
                "//! The lab.\n\n/// Does the first thing.\npub fn task_1() -> u32 {\n    // TODO(1): the first thing.\n    todo!(\"TODO(1): task_1\")\n}\n\n\
                 /// Does the second thing.\npub fn task_2() -> u32 {\n    // TODO(2): the second thing.\n    todo!(\"TODO(2): task_2\")\n}\n",
            );
            self.write(
                &format!("solutions/{lab}/src/lib.rs"),
                "pub fn task_1() -> u32 { 1 }\npub fn task_2() -> u32 { 2 }\n",
            );
            self.write(
                &format!("labs/{lab}/lab.toml"),
                &format!(
                    "[lab]\ntitle = \"{title}\"\nchapter = \"book/src/{lab}.md\"\n\n\
                     [[todo]]\nnumber = 1\nfunctions = [\"task_1\"]\nsummary = \"The first thing\"\n\
                     hints = [\"Look at the first call.\", \"Call it twice.\"]\n\n\
                     [[todo]]\nnumber = 2\nfunctions = [\"task_2\"]\nsummary = \"The second thing\"\n\
                     hints = [\"Think about the second call.\"]\n"
                ),
            );
        }
        fs::create_dir_all(self.path("labs/notes")).expect("a directory that is no lab");
    }
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create a directory");
    }
    fs::write(path, text).expect("write a file");
}

/// Standard output and error of a finished run, as text.
pub fn texts(output: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
