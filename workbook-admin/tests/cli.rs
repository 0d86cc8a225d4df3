//! The `workbook-admin` binary (`cargo workbook verify | manifest |
//! handout`) as an instructor meets it: help, errors, exit codes and what
//! each command prints and changes.
//!
//! Every test works on its own copy of the small fake course of the
//! `workbook` package's tests, with a stand-in for cargo, so that nothing is
//! compiled or graded for real. The one test that builds a real handout is
//! `#[ignore]`d: run it with `cargo test -p workbook-admin -- --ignored`.

#[path = "../../workbook/tests/support/mod.rs"]
mod support;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_workbook-admin");

use std::fs;
use std::path::Path;
use std::process::Command as StdCommand;

use support::{Course, texts};

// ---- help and usage ---------------------------------------------------------

#[test]
fn every_command_explains_itself() {
    let course = Course::new();
    for (command, phrase) in [
        ("verify", "--skip <STEP>"),
        ("manifest", "tests/MANIFEST.sha256"),
        ("handout", "classroom.yml"),
    ] {
        let output = course
            .workbook()
            .args([command, "--help"])
            .assert()
            .success();
        let (stdout, _) = texts(output.get_output());
        assert!(
            stdout.contains(phrase),
            "`{command} --help` does not mention {phrase}:\n{stdout}"
        );
    }
}

#[test]
fn an_unknown_verify_step_is_a_usage_error() {
    let course = Course::new();
    let output = course
        .workbook()
        .args(["verify", "--skip", "nosuchstep"])
        .assert()
        .code(2);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.contains("fmt, clippy, solutions, stubs, mistakes, drift, manifest"),
        "{stderr}"
    );
}

// ---- manifest ---------------------------------------------------------------

#[test]
fn manifest_records_the_grading_files_and_the_labs() {
    let course = Course::new();
    let tests = course.read("tests/MANIFEST.sha256");
    for path in [
        "  .config/insta.yaml\n",
        "  Cargo.toml\n",
        "  labs/01-processes/Cargo.toml\n",
        "  tests/02-pipes.rs\n",
        "  tests/grader/src/lib.rs\n",
        "  tests/snapshots/pipes__task_1_works.snap\n",
    ] {
        assert!(tests.contains(path), "{path} missing from:\n{tests}");
    }
    assert!(!tests.contains("labs/02-pipes/src/lib.rs"), "{tests}");
    assert!(!tests.contains("  tests/MANIFEST.sha256\n"), "{tests}");
    let labs = course.read("labs/MANIFEST.sha256");
    assert!(labs.contains("  labs/02-pipes/src/lib.rs\n"), "{labs}");
    assert!(labs.contains("  labs/02-pipes/lab.toml\n"), "{labs}");
    assert!(!labs.contains("solutions"), "{labs}");
    // Anyone can check the grading files without this tool.
    let status = StdCommand::new("sha256sum")
        .current_dir(&course.root)
        .args(["--check", "--quiet", "tests/MANIFEST.sha256"])
        .status()
        .expect("sha256sum runs");
    assert!(status.success());
}

#[test]
fn manifest_check_names_what_changed() {
    let course = Course::new();
    course
        .workbook()
        .args(["manifest", "--check"])
        .assert()
        .success();
    course.solve("01-processes", 1);
    course.write("tests/03-new.rs", "//! A new suite.\n");
    let output = course
        .workbook()
        .args(["manifest", "--check"])
        .assert()
        .code(1);
    let (stdout, _) = texts(output.get_output());
    assert_eq!(
        stdout,
        "tests/MANIFEST.sha256 is out of date (review the changes, then run `cargo workbook manifest`):\n  \
         tests/03-new.rs: added\n\
         labs/MANIFEST.sha256 is out of date (review the changes, then run `cargo workbook manifest`):\n  \
         labs/01-processes/src/lib.rs: changed\n"
    );
    course.workbook().arg("manifest").assert().success();
    course
        .workbook()
        .args(["manifest", "--check"])
        .assert()
        .success();
}

// ---- handout ----------------------------------------------------------------

#[test]
fn handout_refuses_a_directory_that_is_not_empty() {
    let course = Course::new();
    let dest = course.outside("student");
    support::write(&dest.join("notes.txt"), "mine\n");
    let output = course
        .workbook()
        .args(["handout"])
        .arg(&dest)
        .assert()
        .code(2);
    let (_, stderr) = texts(output.get_output());
    assert_eq!(
        stderr.trim(),
        format!(
            "workbook: {} is not empty: give a new or empty directory",
            dest.display()
        )
    );
    support::write(&course.outside("file"), "x");
    let output = course
        .workbook()
        .args(["handout", "../file"])
        .assert()
        .code(2);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.contains("file exists and is not a directory"),
        "{stderr}"
    );
}

#[test]
fn handout_leaves_the_solutions_out_and_adds_classroom_grading() {
    let course = Course::new();
    let output = course
        .workbook()
        .args(["handout", "../student", "--points", "25"])
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert!(stdout.starts_with("Wrote the student copy to "), "{stdout}");
    let student = course.outside("student");
    for absent in [
        "solutions",
        "workbook-admin",
        ".ci",
        "target",
        "book/book",
        ".git",
    ] {
        assert!(!student.join(absent).exists(), "{absent} was copied");
    }
    for present in [
        "labs/02-pipes/src/lib.rs",
        "labs/01-processes/lab.toml",
        "tests/02-pipes.rs",
        "tests/snapshots/pipes__task_1_works.snap",
        "tests/grader/src/lib.rs",
        "book/src/SUMMARY.md",
        "workbook/Cargo.toml",
        ".cargo/config.toml",
        ".config/insta.yaml",
        ".gitignore",
    ] {
        assert!(student.join(present).is_file(), "{present} is missing");
    }
    let cargo_toml = fs::read_to_string(student.join("Cargo.toml")).expect("Cargo.toml");
    assert!(!cargo_toml.contains("solutions"), "{cargo_toml}");
    assert!(!cargo_toml.contains("workbook-admin"), "{cargo_toml}");
    assert!(
        cargo_toml.contains("    \"labs/02-pipes\",\n"),
        "{cargo_toml}"
    );
    let readme = fs::read_to_string(student.join("README.md")).expect("README.md");
    assert!(readme.starts_with("# A fake course\n"), "{readme}");
    assert!(!readme.contains("solution"), "{readme}");
    assert!(
        readme
            .contains("| 02 | Pipes (管道) | `labs/02-pipes` | `book/src/02-pipes.md` | 2 | 50 |"),
        "{readme}"
    );
    let justfile = fs::read_to_string(student.join("justfile")).expect("justfile");
    assert!(!justfile.contains("verify"), "{justfile}");
    let workflow =
        fs::read_to_string(student.join(".github/workflows/classroom.yml")).expect("workflow");
    let digest =
        workbook::manifest::sha256_file(&student.join("tests/MANIFEST.sha256")).expect("digest");
    for expected in [
        "2 lab(s), 100 points in all,\n# 25 per graded test, earned test by test",
        &format!("      WORKBOOK_MANIFEST_SHA256: {digest}\n"),
        "      - name: \"01-processes: task_1_works\"\n        id: test_01_processes_task_1_works\n",
        "score grade.json 02-pipes --test task_2_works --max 25 --classroom\n",
        "grade --json-file grade.json --csv grade.csv\n          --granularity test --points 25\n",
        "uses: education/autograding-grading-reporter@v1",
        "          TEST_02_PIPES_TASK_1_WORKS_RESULTS: \"${{steps.test_02_pipes_task_1_works.outputs.result}}\"\n",
        "          runners: test_01_processes_task_1_works,test_01_processes_task_2_works,\
         test_02_pipes_task_1_works,test_02_pipes_task_2_works\n",
        "#   .github/**  tests/**  workbook/**  .cargo/**",
    ] {
        assert!(
            workflow.contains(expected),
            "{expected} missing from:\n{workflow}"
        );
    }
    assert!(!student.join("guide").exists());
    // The copy carries its own manifests, and they match it.
    course
        .workbook_in(&student)
        .args(["manifest", "--check"])
        .assert()
        .success();
    // It has nothing for `verify` to check.
    let output = course.workbook_in(&student).arg("verify").assert().code(2);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.contains("this student copy does not have"),
        "{stderr}"
    );
}

#[test]
fn handout_pages_keep_nothing_for_instructors() {
    let course = Course::new();
    course
        .workbook()
        .args(["handout", "../student"])
        .assert()
        .success();
    let grading = fs::read_to_string(course.outside("student/book/src/grading.md"))
        .expect("the grading page");
    assert_eq!(
        grading,
        "# Grading\n\nRun `cargo test` in a lab; see [Pipes](02-pipes.md#task-1-do-the-first-thing).\n"
    );
    // The course's own page keeps the passage.
    assert!(
        course
            .read("book/src/grading.md")
            .contains("workbook verify")
    );
    // A mention outside the markers stops the handout, naming the page.
    course.write(
        "book/src/02-pipes.md",
        "# Pipes\n\nCompare with solutions/02-pipes.\n\n[Gone](07-shm.md)\n",
    );
    let output = course
        .workbook()
        .args(["handout", "../other"])
        .assert()
        .code(1);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.contains("book/src/02-pipes.md, line 3: `solutions/` is for instructors"),
        "{stderr}"
    );
    assert!(
        stderr.contains("book/src/02-pipes.md, line 5: the link to `07-shm.md` leads nowhere"),
        "{stderr}"
    );
    assert!(
        stderr.contains("book/src/grading.md, line 3: the link to `02-pipes.md#task-1-do-the-first-thing` leads nowhere"),
        "{stderr}"
    );
}

#[test]
fn handout_per_lab_writes_one_repository_for_each() {
    let course = Course::new();
    let output = course
        .workbook()
        .args(["handout", "../labs", "--per-lab", "--granularity", "task"])
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.contains("Wrote 2 student repositories, one per lab"),
        "{stdout}"
    );
    let pipes = course.outside("labs/02-pipes");
    assert!(pipes.join("labs/02-pipes/src/lib.rs").is_file());
    for absent in [
        "labs/01-processes",
        "tests/01-processes.rs",
        "book/src/01-processes.md",
    ] {
        assert!(!pipes.join(absent).exists(), "{absent} was copied");
    }
    let summary = fs::read_to_string(pipes.join("book/src/SUMMARY.md")).expect("SUMMARY.md");
    assert!(!summary.contains("01-processes"), "{summary}");
    let cargo_toml = fs::read_to_string(pipes.join("Cargo.toml")).expect("Cargo.toml");
    assert!(!cargo_toml.contains("01-processes"), "{cargo_toml}");
    let workflow =
        fs::read_to_string(pipes.join(".github/workflows/classroom.yml")).expect("workflow");
    assert!(
        workflow.contains("score grade.json 02-pipes --task 2 --max 1 --classroom"),
        "{workflow}"
    );
    assert!(!workflow.contains("01-processes"), "{workflow}");
    let readme = fs::read_to_string(pipes.join("README.md")).expect("README");
    assert!(readme.contains("| 02 | Pipes (管道) |"), "{readme}");
    assert!(!readme.contains("| 01 |"), "{readme}");
    // Each repository's manifest matches it.
    course
        .workbook_in(&pipes)
        .args(["manifest", "--check"])
        .assert()
        .success();
    // --labs picks some labs for one repository.
    course
        .workbook()
        .args(["handout", "../some", "--labs", "pipes"])
        .assert()
        .success();
    assert!(!course.outside("some/labs/01-processes").exists());
    assert!(course.outside("some/labs/02-pipes").is_dir());
}

#[test]
fn handout_with_git_is_a_repository_with_one_commit() {
    let course = Course::new();
    course
        .workbook()
        .args(["handout", "../student", "--git"])
        .env("GIT_AUTHOR_NAME", "Instructor")
        .env("GIT_AUTHOR_EMAIL", "instructor@example.com")
        .env("GIT_COMMITTER_NAME", "Instructor")
        .env("GIT_COMMITTER_EMAIL", "instructor@example.com")
        .assert()
        .success();
    let student = course.outside("student");
    let log = StdCommand::new("git")
        .current_dir(&student)
        .args(["log", "--format=%s"])
        .output()
        .expect("git log");
    assert_eq!(String::from_utf8_lossy(&log.stdout), "Course handout\n");
    // `reset` works in the student repository: the handout's commit holds
    // the stubs as labs/MANIFEST.sha256 records them.
    let shipped = StdCommand::new("git")
        .current_dir(&student)
        .args(["show", "HEAD:labs/02-pipes/src/lib.rs"])
        .output()
        .expect("git show");
    let digest = workbook::manifest::sha256(&shipped.stdout);
    let manifest = fs::read_to_string(student.join("labs/MANIFEST.sha256")).expect("manifest");
    assert!(
        manifest.contains(&format!("{digest}  labs/02-pipes/src/lib.rs\n")),
        "{manifest}"
    );
}

/// Builds a handout of the real course and compiles it: slow (a full
/// workspace build), so only on demand.
#[test]
#[ignore = "builds a whole workspace; run with --ignored"]
fn a_handout_of_the_real_course_builds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dest = dir.path().join("student");
    assert_cmd::cargo::cargo_bin_cmd!("workbook-admin")
        .current_dir(root)
        .arg("handout")
        .arg(&dest)
        .assert()
        .success();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = StdCommand::new(&cargo)
        .current_dir(&dest)
        .args(["build", "--workspace", "--all-targets"])
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the handout does not build");
}
