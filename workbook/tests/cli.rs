//! The `workbook` binary as a student meets it: help, errors, exit codes
//! and what each command prints and changes; and how it hands the
//! instructors' commands to `workbook-admin` (tested in that package).
//!
//! Every test works on its own copy of a small fake course (see
//! `support/`), with a stand-in for cargo, so that nothing is compiled or
//! graded for real and the whole file runs in a second or two.

mod support;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_workbook");

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{Course, texts};

// ---- help and usage ----------------------------------------------------------

/// Every command, as `--help` lists it in the course repository.
const COMMANDS: [&str; 11] = [
    "grade", "watch", "hint", "reset", "doctor", "clean", "verify", "manifest", "handout", "serve",
    "build",
];

#[test]
fn help_lists_every_command() {
    let course = Course::new();
    let output = course.workbook().arg("--help").assert().success();
    let (stdout, _) = texts(output.get_output());
    for command in COMMANDS {
        assert!(
            stdout.contains(&format!("\n  {command} ")),
            "`{command}` missing from:\n{stdout}"
        );
    }
}

#[test]
fn every_command_explains_itself() {
    let course = Course::new();
    let expected: [(&str, &str); 8] = [
        ("grade", "--junit <FILE>"),
        ("watch", "Ctrl-C"),
        ("hint", "target/workbook/hints.toml"),
        ("reset", "--yes"),
        ("doctor", "RLIMIT_MSGQUEUE"),
        ("clean", "IPC_PRIVATE"),
        ("serve", "WORKBOOK_MDBOOK"),
        ("build", "book/book"),
    ];
    for (command, phrase) in expected {
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
fn an_unknown_lab_is_a_usage_error_naming_the_known_labs() {
    let course = Course::new();
    for args in [
        &["grade", "nosuchlab"][..],
        &["watch", "nosuchlab"][..],
        &["hint", "nosuchlab"][..],
        &["reset", "nosuchlab", "--yes"][..],
    ] {
        let output = course.workbook().args(args).assert().code(2);
        let (_, stderr) = texts(output.get_output());
        assert_eq!(
            stderr.trim(),
            "workbook: unknown lab `nosuchlab` (known labs: 01-processes, 02-pipes)",
            "{args:?}"
        );
    }
}

#[test]
fn labs_are_found_from_a_subdirectory() {
    let course = Course::new();
    let output = course
        .workbook_in(&course.path("labs/02-pipes"))
        .args(["grade", "03"])
        .assert()
        .code(2);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.contains("known labs: 01-processes, 02-pipes"),
        "{stderr}"
    );
}

#[test]
fn outside_a_checkout_is_a_usage_error() {
    let course = Course::new();
    for command in ["grade", "watch", "verify", "manifest"] {
        let output = course
            .workbook_in(&course.outside(""))
            .arg(command)
            .assert()
            .code(2);
        let (_, stderr) = texts(output.get_output());
        assert!(
            stderr.starts_with(
                "workbook: not a workbook checkout (no Cargo.toml with [workspace] and labs/ found above "
            ),
            "{command}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn building_without_a_book_says_so() {
    let course = Course::new();
    fs::remove_file(course.path("book/book.toml")).expect("remove book.toml");
    let output = course.workbook().arg("build").assert().code(1);
    let (_, stderr) = texts(output.get_output());
    assert_eq!(
        stderr.trim(),
        "workbook: there is no book to build: book/book.toml is missing"
    );
}

// ---- the instructors' commands ----------------------------------------------

#[test]
fn instructor_commands_are_run_by_workbook_admin_with_their_status() {
    let course = Course::new();
    let output = course
        .workbook_in(&course.path("labs"))
        .args(["verify", "--skip", "book"])
        .assert()
        .code(3);
    let (_, stderr) = texts(output.get_output());
    assert!(!stderr.contains("workbook:"), "{stderr}");
    // The fake cargo ran in the directory the command was typed in.
    let args = course.read("labs/cargo-run-args");
    let manifest = course.path("Cargo.toml");
    let expected = format!(
        "--manifest-path\n{}\n--package\nworkbook-admin\n--\nverify\n--skip\nbook\n",
        manifest.display()
    );
    assert!(args.starts_with("run\n"), "{args}");
    assert!(args.ends_with(&expected), "{args}");
    course.workbook().args(["help", "handout"]).assert().code(3);
    assert!(
        course
            .read("cargo-run-args")
            .ends_with("--\nhandout\n--help\n")
    );
}

#[test]
fn a_student_copy_has_no_instructor_commands() {
    let course = Course::new();
    fs::remove_dir_all(course.path("workbook-admin")).expect("remove workbook-admin");
    let output = course.workbook().arg("--help").assert().success();
    let (stdout, _) = texts(output.get_output());
    for command in ["verify", "manifest", "handout", "gradebook"] {
        assert!(!stdout.contains(command), "{command} in:\n{stdout}");
    }
    // Nothing in a student copy rewrites what decides a grade: `manifest`
    // is no command there, like any other word.
    for command in ["verify", "manifest"] {
        let output = course.workbook().arg(command).assert().code(2);
        let (_, stderr) = texts(output.get_output());
        assert!(
            stderr.starts_with(&format!(
                "workbook: unknown command `{command}` (commands: grade, watch,"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("workbook-admin"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert!(!course.path("cargo-run-args").exists());
}

#[test]
fn a_mistyped_option_is_a_one_line_usage_error() {
    let course = Course::new();
    let output = course
        .workbook()
        .args(["grade", "--jason"])
        .assert()
        .code(2);
    let (_, stderr) = texts(output.get_output());
    assert_eq!(
        stderr,
        "workbook: unexpected argument `--jason` (usage: cargo workbook grade [--json] \
         [--junit FILE] [--csv FILE] [--granularity G] [--points N] [LAB]; see `cargo \
         workbook grade --help`)\n"
    );
}

// ---- grade ------------------------------------------------------------------

#[test]
fn grade_shows_a_scoreboard_with_the_first_failure() {
    let course = Course::new();
    course.solve("02-pipes", 1);
    let output = course.workbook().arg("grade").assert().code(1);
    let (stdout, stderr) = texts(output.get_output());
    assert!(
        stdout.starts_with("LAB            PASSED  STATE\n01-processes      0/2  not started\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "02-pipes          1/2  in progress\n    first failing test: task_2_works\n    \
             pipes: TODO 2 is not done <yet> & \"still\" panics\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Stuck? `cargo workbook hint 01` gives a hint for its next TODO."),
        "{stdout}"
    );
    assert!(
        stderr.contains("[1/2] grading 01-processes …\n[2/2] grading 02-pipes …"),
        "{stderr}"
    );
}

#[test]
fn grade_exits_zero_once_every_lab_is_done() {
    let course = Course::new();
    for n in [1, 2] {
        course.solve("01-processes", n);
    }
    let output = course.workbook().args(["grade", "01"]).assert().success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.contains("01-processes      2/2  done\n\n1 of 1 labs done.\n"),
        "{stdout}"
    );
}

#[test]
fn a_lab_that_does_not_compile_shows_the_first_error() {
    let course = Course::new();
    let lib = course.read("labs/02-pipes/src/lib.rs");
    course.write(
        "labs/02-pipes/src/lib.rs",
        &format!("{lib}\n// does not compile\n"),
    );
    let output = course.workbook().args(["grade", "pipes"]).assert().code(1);
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.contains(
            "02-pipes        -  does not compile\n    error[E0425]: cannot find value `fds` in this \
             scope --> labs/02-pipes/src/lib.rs:3:9"
        ),
        "{stdout}"
    );
}

#[test]
fn grade_json_is_one_document_with_the_tamper_check() {
    let course = Course::new();
    let output = course.workbook().args(["grade", "--json"]).assert().code(1);
    let (stdout, _) = texts(output.get_output());
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let labs = report["labs"].as_array().expect("a labs array");
    assert_eq!(labs.len(), 2);
    assert_eq!(labs[1]["lab"], "02-pipes");
    assert_eq!(labs[1]["title"], "Pipes (管道)");
    assert_eq!(labs[1]["package"], "pipes");
    assert_eq!(
        (labs[1]["passed"].as_u64(), labs[1]["total"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(labs[1]["state"], "not-started");
    assert_eq!(labs[1]["tests"][0]["name"], "task_1_works");
    assert_eq!(labs[1]["tests"][0]["passed"], false);
    assert_eq!(report["grading_files"]["as_shipped"], true);
    assert_eq!(
        report["grading_files"]["differences"],
        serde_json::json!([])
    );
}

#[test]
fn grade_junit_writes_one_suite_per_lab() {
    let course = Course::new();
    course.solve("01-processes", 2);
    let output = course
        .workbook_in(&course.path("labs"))
        .args(["grade", "--junit", "../report.xml"])
        .assert()
        .code(1);
    let (_, stderr) = texts(output.get_output());
    assert!(stderr.contains("wrote the JUnit report to "), "{stderr}");
    let xml = course.read("report.xml");
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuites name="workbook" tests="4" failures="3" errors="0">"#),
        "{xml}"
    );
    assert!(xml.contains(
        r#"<testsuite name="01-processes" tests="2" failures="1" errors="0" skipped="0">"#
    ));
    assert!(xml.contains(r#"<testcase classname="01-processes" name="task_2_works"/>"#));
    assert!(
        xml.contains(r#"<failure message="processes: TODO 1 is not done &lt;yet&gt; &amp; &quot;still&quot; panics">"#),
        "{xml}"
    );
    assert_eq!(xml.matches("<testsuite ").count(), 2);
    assert_eq!(xml.matches("</testsuite>").count(), 2);
}

#[test]
fn grade_warns_first_when_the_grading_files_were_changed() {
    let course = Course::new();
    let suite = course.read("tests/02-pipes.rs");
    course.write("tests/02-pipes.rs", &format!("{suite}// passes anyway\n"));
    course.write("tests/snapshots/pipes__extra.snap", "sneaked in\n");
    fs::remove_file(course.path(".config/insta.yaml")).expect("remove insta.yaml");
    let output = course.workbook().args(["grade", "02"]).assert().code(1);
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with(
            "GRADING FILES: the files that decide a grade differ from what was shipped, so the \
             labs they concern are graded as failed:\n  .config/insta.yaml: missing\n  \
             tests/02-pipes.rs: changed\n  tests/snapshots/pipes__extra.snap: added\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("cargo workbook manifest"), "{stdout}");
    let output = course
        .workbook()
        .args(["grade", "02", "--json"])
        .assert()
        .code(1);
    let (stdout, stderr) = texts(output.get_output());
    assert!(stderr.starts_with("GRADING FILES: "), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert_eq!(report["grading_files"]["as_shipped"], false);
    assert_eq!(
        report["grading_files"]["differences"][1],
        "tests/02-pipes.rs: changed"
    );
    assert_eq!(report["labs"][0]["state"], "tampered");
    assert_eq!(report["labs"][0]["points"]["earned"], 0);
}

#[test]
fn a_changed_lab_manifest_counts_as_tampering_but_lab_sources_do_not() {
    let course = Course::new();
    course.solve("02-pipes", 1);
    let manifest = course.read("labs/02-pipes/Cargo.toml");
    course.write(
        "labs/02-pipes/Cargo.toml",
        &manifest.replace("../../tests/02-pipes.rs", "my-own-tests.rs"),
    );
    let output = course.workbook().args(["grade", "02"]).assert().code(1);
    let (stdout, _) = texts(output.get_output());
    let first = stdout.lines().nth(1).unwrap_or("");
    assert_eq!(first, "  labs/02-pipes/Cargo.toml: changed", "{stdout}");
    assert!(!stdout.contains("lib.rs"), "{stdout}");
}

/// Grades every lab of `course` as JSON: the document and the exit status.
fn grade_json(course: &Course, env: &[(&str, &str)]) -> (serde_json::Value, Option<i32>) {
    let mut cmd = course.workbook();
    cmd.args(["grade", "--json"]);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = cmd.output().expect("workbook runs");
    let (stdout, stderr) = texts(&output);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stderr}"));
    (report, output.status.code())
}

#[test]
fn files_that_can_change_a_build_fail_the_lab_they_are_in() {
    for (added, lab) in [
        ("labs/02-pipes/build.rs", "02-pipes"),
        ("labs/02-pipes/.cargo/config.toml", "02-pipes"),
        ("labs/01-processes/rust-toolchain.toml", "01-processes"),
    ] {
        let course = Course::new();
        for n in [1, 2] {
            course.solve("01-processes", n);
            course.solve("02-pipes", n);
        }
        course.write(added, "// whatever it does\n");
        let (report, code) = grade_json(&course, &[]);
        assert_eq!(code, Some(1), "{added}");
        for entry in report["labs"].as_array().expect("labs") {
            let this = entry["lab"] == lab;
            let state = if this { "tampered" } else { "done" };
            assert_eq!(entry["state"], state, "{added}: {entry}");
            if this {
                assert_eq!(entry["points"]["earned"], 0, "{added}");
                let reason = entry["tamper"].as_str().expect("a reason");
                assert!(reason.contains(&format!("{added}: added")), "{reason}");
            }
        }
    }
}

#[test]
fn a_change_made_while_building_or_running_is_caught_after() {
    for moment in ["build", "run"] {
        let course = Course::new();
        for n in [1, 2] {
            course.solve("02-pipes", n);
        }
        let (report, code) = grade_json(&course, &[("FAKE_TAMPER_AT", moment)]);
        assert_eq!(code, Some(1), "{moment}");
        let pipes = &report["labs"][1];
        assert_eq!(pipes["state"], "tampered", "{moment}: {pipes}");
        assert_eq!(pipes["passed"], 2, "the tests themselves passed");
        assert!(
            pipes["tamper"]
                .as_str()
                .is_some_and(|r| r.contains("tests/snapshots/pipes__task_1_works.snap: changed")),
            "{moment}: {pipes}"
        );
        let checked = report["grading_files"]["checked"]
            .as_array()
            .expect("checks");
        assert_eq!(
            checked.len(),
            5,
            "before, and after each build and run: {checked:?}"
        );
        // Lab 01 depends on no snapshot of lab 02.
        assert_ne!(report["labs"][0]["state"], "tampered", "{moment}");
    }
}

#[test]
fn a_rewritten_manifest_is_caught_by_the_pinned_digest() {
    let course = Course::new();
    for n in [1, 2] {
        course.solve("02-pipes", n);
    }
    let shipped =
        workbook::manifest::sha256_file(&course.path("tests/MANIFEST.sha256")).expect("a digest");
    course.write(
        ".github/workflows/classroom.yml",
        &format!("env:\n  WORKBOOK_MANIFEST_SHA256: {shipped}\n"),
    );
    let (report, _) = grade_json(&course, &[]);
    assert_eq!(report["labs"][1]["state"], "done", "{report}");
    // Edit a snapshot, then make the manifest agree with it.
    course.write("tests/snapshots/pipes__task_1_works.snap", "mine\n");
    let ws = workbook::workspace::Workspace::discover(&course.root).expect("the course");
    workbook::manifest::write(&ws).expect("rewritten");
    let (report, code) = grade_json(&course, &[]);
    assert_eq!(code, Some(1));
    for entry in report["labs"].as_array().expect("labs") {
        assert_eq!(entry["state"], "tampered", "{entry}");
        assert!(
            entry["tamper"]
                .as_str()
                .is_some_and(|r| r.contains("tests/MANIFEST.sha256: not the one shipped")),
            "{entry}"
        );
    }
    // The workflow's environment pins it too, and wins.
    let (report, _) = grade_json(&course, &[("WORKBOOK_MANIFEST_SHA256", &"0".repeat(64))]);
    assert_eq!(report["labs"][0]["state"], "tampered");
}

#[test]
fn grade_writes_a_csv_beside_the_json() {
    let course = Course::new();
    course.solve("02-pipes", 1);
    course
        .workbook()
        .args(["grade", "--json", "--csv", "grade.csv", "--points", "3"])
        .assert()
        .code(1);
    let table = course.read("grade.csv");
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[0],
        "commit,started_at,duration_seconds,lab,title,state,tests_passed,tests_total,\
         points_earned,points_possible,grading_files,reason"
    );
    assert!(
        rows[2].contains(",02-pipes,Pipes (管道),in-progress,1,2,3,6,as-shipped,"),
        "{table}"
    );
}

#[test]
fn grade_says_when_there_is_no_manifest() {
    let course = Course::new();
    fs::remove_file(course.path("tests/MANIFEST.sha256")).expect("remove the manifest");
    let output = course.workbook().args(["grade", "01"]).assert().code(1);
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with("GRADING FILES: tests/MANIFEST.sha256 is missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("01-processes      0/2  FAILED: grading files changed\n"),
        "{stdout}"
    );
}

#[test]
fn score_reads_one_unit_from_the_json() {
    let course = Course::new();
    course.solve("02-pipes", 1);
    let output = course
        .workbook()
        .args(["grade", "--json"])
        .output()
        .expect("grade runs");
    course.write("grade.json", &String::from_utf8_lossy(&output.stdout));
    let output = course
        .workbook()
        .args([
            "score",
            "grade.json",
            "02",
            "--test",
            "task_1_works",
            "--max",
            "1",
        ])
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert_eq!(stdout, "02: task_1_works: passed, 1/1 point\n");
    let output = course
        .workbook()
        .args(["score", "grade.json", "pipes"])
        .assert()
        .code(1);
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with("pipes: failed, 1/2 points: task_2_works: pipes: TODO 2 is not done"),
        "{stdout}"
    );
    // For the reporter: the result goes to $GITHUB_OUTPUT, the status is 0.
    let output_file = course.outside("github-output");
    course
        .workbook()
        .args(["score", "grade.json", "02", "--task", "2", "--classroom"])
        .env("GITHUB_OUTPUT", &output_file)
        .assert()
        .success();
    let written = fs::read_to_string(&output_file).expect("the output file");
    assert!(written.starts_with("result="), "{written}");
}

// ---- hint -------------------------------------------------------------------

#[test]
fn hints_come_one_at_a_time_for_the_next_todo() {
    let course = Course::new();
    let output = course.workbook().args(["hint", "02"]).assert().success();
    let (stdout, _) = texts(output.get_output());
    assert_eq!(
        stdout,
        "02-pipes · TODO 1 (1 of 2): task_1\n  The first thing\n\n\
         Hint 1 of 2: Look at the first call.\n\n\
         Still stuck? `cargo workbook hint 02` shows hint 2 of 2.\n"
    );
    let output = course.workbook().args(["hint", "pipes"]).assert().success();
    let (stdout, _) = texts(output.get_output());
    assert!(stdout.contains("Hint 2 of 2: Call it twice.\n"), "{stdout}");
    assert!(!stdout.contains("Hint 1 of 2"), "{stdout}");
    assert!(
        stdout.contains(
            "That was the last hint. The chapter walks through this task in \
             book/src/02-pipes.md, “Task 1: do the first thing”."
        ),
        "{stdout}"
    );
    // What was shown is kept in the target directory, not in the sources.
    let state = course.read("target/workbook/hints.toml");
    assert!(state.contains("[shown.02-pipes]\n1 = 2\n"), "{state}");
    let ws = workbook::workspace::Workspace::discover(&course.root).expect("the course");
    assert_eq!(
        workbook::manifest::stale(&ws).expect("compared"),
        Vec::<String>::new()
    );
}

#[test]
fn hints_move_on_when_a_todo_is_done() {
    let course = Course::new();
    course.solve("01-processes", 1);
    let output = course.workbook().args(["hint", "1"]).assert().success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with("01-processes · TODO 2 (2 of 2): task_2\n"),
        "{stdout}"
    );
    course.solve("01-processes", 2);
    let output = course.workbook().args(["hint", "01"]).assert().success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with("Every TODO of 01-processes is done"),
        "{stdout}"
    );
    // A TODO named by number still has its hints, marked as done.
    let output = course
        .workbook()
        .args(["hint", "01", "1", "--all"])
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.contains("(already done: no todo!(\"TODO(1)…\") is left in src/lib.rs)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Hint 1 of 2: Look at the first call.\nHint 2 of 2: Call it twice.\n"),
        "{stdout}"
    );
}

#[test]
fn a_todo_that_does_not_exist_is_a_usage_error() {
    let course = Course::new();
    let output = course.workbook().args(["hint", "02", "7"]).assert().code(2);
    let (_, stderr) = texts(output.get_output());
    assert_eq!(
        stderr.trim(),
        "workbook: lab 02-pipes has no TODO 7 (its TODOs are 1, 2)"
    );
}

#[test]
fn a_todo_is_done_only_when_every_function_of_it_is() {
    let course = Course::new();
    // TODO 1 spans two functions: one done is not enough, whatever else is
    // wrong with the file (it need not even compile).
    course.write(
        "labs/02-pipes/src/lib.rs",
        "pub fn task_1() -> u32 { 1 }\n\
         pub fn task_1b() -> u32 {\n    // TODO(1): the rest of task 1.\n    todo!(\"TODO(1): task_1b\")\n}\n\
         pub fn task_2( {\n    // todo!(\"TODO(2): commented out\")\n",
    );
    let output = course.workbook().args(["hint", "02"]).assert().success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with("02-pipes · TODO 1 (1 of 2): task_1\n"),
        "{stdout}"
    );
    course.write("labs/02-pipes/src/lib.rs", "pub fn task_1() -> u32 { 1 }\n");
    let output = course.workbook().args(["hint", "02"]).assert().success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with("Every TODO of 02-pipes is done"),
        "{stdout}"
    );
}

#[test]
fn a_lab_without_its_source_asks_for_the_todo_number() {
    let course = Course::new();
    fs::remove_file(course.path("labs/02-pipes/src/lib.rs")).expect("remove lib.rs");
    let output = course.workbook().args(["hint", "02"]).assert().code(1);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.starts_with(
            "workbook: cannot tell which TODO is next: cannot read labs/02-pipes/src/lib.rs"
        ),
        "{stderr}"
    );
    assert!(
        stderr.trim_end().ends_with("cargo workbook hint 02 N"),
        "{stderr}"
    );
    course
        .workbook()
        .args(["hint", "02", "2"])
        .assert()
        .success();
}

// ---- reset ------------------------------------------------------------------

#[test]
fn reset_puts_the_shipped_stub_back_and_keeps_a_copy() {
    let course = Course::committed();
    let shipped = course.read("labs/02-pipes/src/lib.rs");
    course.solve("02-pipes", 1);
    let mine = course.read("labs/02-pipes/src/lib.rs");
    // Even after the student commits their work, the shipped version is found.
    course.git(&["commit", "--quiet", "--all", "--message", "My work"]);
    fs::remove_file(course.path("labs/02-pipes/lab.toml")).expect("remove lab.toml");
    course.write("labs/02-pipes/src/helper.rs", "// mine\n");
    let output = course
        .workbook()
        .args(["reset", "02", "--yes"])
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.starts_with(
            "These files of labs/02-pipes differ from what was shipped:\n  lab.toml (missing)\n  \
             src/lib.rs (changed)\nPut back 2 files of labs/02-pipes as shipped.\n\
             Your previous version is in target/workbook/reset/02-pipes-"
        ),
        "{stdout}"
    );
    assert_eq!(course.read("labs/02-pipes/src/lib.rs"), shipped);
    assert!(course.path("labs/02-pipes/lab.toml").is_file());
    assert_eq!(course.read("labs/02-pipes/src/helper.rs"), "// mine\n");
    let backups = fs::read_dir(course.path("target/workbook/reset"))
        .expect("a backup directory")
        .map(|e| e.expect("an entry").path())
        .collect::<Vec<_>>();
    assert_eq!(backups.len(), 1);
    let kept = fs::read_to_string(backups[0].join("src/lib.rs")).expect("the backup");
    assert_eq!(kept, mine);
    let output = course
        .workbook()
        .args(["reset", "02", "--yes"])
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert_eq!(stdout, "labs/02-pipes is as shipped: nothing to reset.\n");
}

#[test]
fn reset_without_a_terminal_asks_for_yes_and_changes_nothing() {
    let course = Course::committed();
    course.solve("02-pipes", 1);
    let mine = course.read("labs/02-pipes/src/lib.rs");
    let output = course.workbook().args(["reset", "02"]).assert().code(2);
    let (_, stderr) = texts(output.get_output());
    assert_eq!(
        stderr.trim(),
        "workbook: reset replaces your work and asks first, but there is no terminal to ask \
         on; run it in a terminal, or add --yes"
    );
    assert_eq!(course.read("labs/02-pipes/src/lib.rs"), mine);
}

#[test]
fn reset_without_git_history_says_so_and_changes_nothing() {
    let course = Course::new();
    course.solve("02-pipes", 1);
    let mine = course.read("labs/02-pipes/src/lib.rs");
    let output = course
        .workbook()
        .args(["reset", "02", "--yes"])
        .assert()
        .code(1);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.starts_with(
            "workbook: cannot look for the shipped version of labs/02-pipes/src/lib.rs: this \
             checkout has no git history"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(course.read("labs/02-pipes/src/lib.rs"), mine);
}

// ---- watch -------------------------------------------------------------------

/// A running `watch`, with its output read line by line.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watching {
    fn start(course: &Course, args: &[&str]) -> Watching {
        let bin = assert_cmd::cargo::cargo_bin!("workbook");
        let mut child = StdCommand::new(bin)
            .current_dir(&course.root)
            .env("CARGO", &course.cargo)
            .arg("watch")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watching { child, lines }
    }

    /// Every line up to and including the next one that starts with `start`.
    fn until(&self, start: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => {
                    let done = line.starts_with(start);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "no line starting with {start:?} came; got:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}").expect("write to watch");
    }

    fn finish(mut self) -> std::process::ExitStatus {
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("watch did not stop");
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn watch_regrades_on_save(args: &[&str]) {
    let course = Course::new();
    let mut watching = Watching::start(&course, args);
    let first = watching.until("Watching");
    assert!(
        first.iter().any(|l| l == "02-pipes      0/2  not started"),
        "{first:?}"
    );
    assert!(
        first
            .last()
            .is_some_and(|l| l.starts_with("Watching labs/02-pipes (")
                && l.ends_with("Enter grades 02-pipes now; q and Enter (or Ctrl-C) quits.")),
        "{first:?}"
    );
    course.solve("02-pipes", 1);
    let second = watching.until("Watching");
    assert_eq!(second[0], "labs/02-pipes/src/lib.rs changed.", "{second:?}");
    assert!(
        second.iter().any(|l| l == "02-pipes      1/2  in progress"),
        "{second:?}"
    );
    // Enter grades again without a change.
    watching.type_line("");
    let third = watching.until("Watching");
    assert!(
        third.iter().any(|l| l == "02-pipes      1/2  in progress"),
        "{third:?}"
    );
    watching.type_line("q");
    let last = watching.until("Stopped watching.");
    assert_eq!(last, ["Stopped watching."]);
    assert!(watching.finish().success());
}

#[test]
fn watch_regrades_a_lab_when_a_file_is_saved() {
    watch_regrades_on_save(&["02"]);
}

#[test]
fn watch_by_polling_regrades_too() {
    watch_regrades_on_save(&["02", "--poll"]);
}

// ---- doctor and clean -------------------------------------------------------

#[test]
fn doctor_reports_each_check_with_a_fix() {
    let course = Course::new();
    let output = course.workbook().arg("doctor").assert();
    let (stdout, _) = texts(output.get_output());
    let first = stdout.lines().next().unwrap_or("");
    assert!(first.starts_with("[ok]   Linux "), "{stdout}");
    for topic in [
        "System V IPC",
        "msgmnb",
        "SEMMSL",
        "shmmax",
        "/dev/shm",
        "POSIX message queues",
        "/dev/mqueue",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NOFILE",
        "C compiler",
        "ipcs",
        "leftover",
        "mdBook",
    ] {
        assert!(stdout.contains(topic), "{topic} missing from:\n{stdout}");
    }
    for line in stdout.lines().filter(|l| l.starts_with('[')) {
        assert!(
            line.starts_with("[ok]   ")
                || line.starts_with("[warn] ")
                || line.starts_with("[FAIL] "),
            "{line}"
        );
    }
    let warned = stdout
        .lines()
        .filter(|l| !l.starts_with("[ok]"))
        .any(|l| l.starts_with('['));
    if warned {
        assert!(stdout.contains("\n       fix: "), "{stdout}");
    }
    // Outside a checkout the machine is still checked.
    let output = course
        .workbook_in(&course.outside(""))
        .arg("doctor")
        .assert();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.contains("not inside a workbook checkout"),
        "{stdout}"
    );
}

/// The pid of a process that has just exited.
fn dead_pid() -> u32 {
    let mut child = StdCommand::new("true").spawn().expect("true runs");
    let pid = child.id();
    child.wait().expect("wait for true");
    pid
}

#[test]
fn clean_removes_only_what_a_finished_run_left() {
    let tmp = tempfile::tempdir().expect("a private TMPDIR");
    let dead = dead_pid();
    let stale = tmp.path().join(format!("workbook-{dead}-AbC123"));
    let live = tmp
        .path()
        .join(format!("workbook-{}-XyZ789", std::process::id()));
    let foreign = tmp.path().join(format!("workbook-{dead}-nokeys"));
    for dir in [&stale, &live] {
        support::write(
            &dir.join("ipc-key-0"),
            "ftok(3) key file of one graded test\n",
        );
    }
    support::write(&foreign.join("notes.txt"), "not a sandbox\n");
    let key_file = std::ffi::CString::new(stale.join("ipc-key-0").to_string_lossy().as_bytes())
        .expect("a path without NUL");
    // SAFETY: ftok(3) reads a NUL-terminated path; msgget creates a queue
    // that this test removes at the end whatever happens.
    let queue = unsafe {
        let key = libc::ftok(key_file.as_ptr(), 0x57);
        libc::msgget(key, libc::IPC_CREAT | 0o600)
    };
    assert!(queue >= 0, "msgget failed");
    struct Remove(i32);
    impl Drop for Remove {
        fn drop(&mut self) {
            // SAFETY: IPC_RMID takes no buffer.
            unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
    let _guard = Remove(queue);
    // A lab program its killed test left running, reparented away from us.
    let started = StdCommand::new("sh")
        .current_dir(&stale)
        .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
        .output()
        .expect("sh runs");
    let orphan: u32 = String::from_utf8_lossy(&started.stdout)
        .trim()
        .parse()
        .expect("the pid of sleep");
    let course = Course::new();
    let output = course
        .workbook()
        .args(["clean", "--dry-run"])
        .env("TMPDIR", tmp.path())
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    let sandbox_line = format!(
        "would remove: sandbox {} (its test process {dead} is gone)",
        stale.display()
    );
    assert!(stdout.contains(&sandbox_line), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "(ipcrm -q {queue}), from {}/ipc-key-0",
            stale.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "would remove: process {orphan} (sleep 30), still running in {}",
            stale.display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains(&live.display().to_string()), "{stdout}");
    assert!(!stdout.contains("nokeys"), "{stdout}");
    assert!(stale.exists(), "--dry-run removed something");
    let output = course
        .workbook()
        .arg("clean")
        .env("TMPDIR", tmp.path())
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert!(
        stdout.contains(&format!("removing: sandbox {}", stale.display())),
        "{stdout}"
    );
    assert!(!stale.exists());
    assert!(live.exists() && foreign.exists());
    // Killed: gone, or a zombie until whoever adopted it collects it.
    let state = fs::read_to_string(format!("/proc/{orphan}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z "),
        "sleep still runs: {state}"
    );
    // SAFETY: IPC_STAT into a zeroed msqid_ds owned by this frame.
    let gone = unsafe {
        let mut info: libc::msqid_ds = std::mem::zeroed();
        libc::msgctl(queue, libc::IPC_STAT, &mut info) == -1
    };
    assert!(gone, "the queue of the finished run is still there");
}
