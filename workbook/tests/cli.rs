//! The `workbook` binary as a student meets it: help, errors and exit codes.
//!
//! These tests never grade anything (that would run `cargo test` inside
//! `cargo test`); they use a tiny fake checkout in a temporary directory.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use tempfile::TempDir;

/// The binary under test, run in `dir`.
fn workbook(dir: &Path) -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("workbook");
    cmd.current_dir(dir).env_remove("WORKBOOK_MDBOOK");
    cmd
}

/// A checkout with a workspace manifest and two empty labs, no book.
fn fake_checkout() -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").expect("write Cargo.toml");
    for lab in ["01-processes", "02-pipes"] {
        let lab_dir = root.join("labs").join(lab);
        fs::create_dir_all(&lab_dir).expect("create a lab");
        fs::write(lab_dir.join("Cargo.toml"), "[package]\n").expect("write a lab manifest");
    }
    fs::create_dir_all(root.join("labs/notes")).expect("a directory that is no lab");
    dir
}

/// Standard output and error of a finished run, as text.
fn texts(output: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_command() {
    let checkout = fake_checkout();
    let output = workbook(checkout.path()).arg("--help").assert().success();
    let (stdout, _) = texts(output.get_output());
    for command in ["grade", "verify", "serve", "build"] {
        assert!(
            stdout.contains(command),
            "`{command}` missing from:\n{stdout}"
        );
    }
}

#[test]
fn help_of_serve_mentions_the_mdbook_override() {
    let checkout = fake_checkout();
    let output = workbook(checkout.path())
        .args(["serve", "--help"])
        .assert()
        .success();
    let (stdout, _) = texts(output.get_output());
    assert!(stdout.contains("WORKBOOK_MDBOOK"), "{stdout}");
}

#[test]
fn an_unknown_lab_is_a_usage_error_naming_the_known_labs() {
    let checkout = fake_checkout();
    let output = workbook(checkout.path())
        .args(["grade", "nosuchlab"])
        .assert()
        .code(2);
    let (_, stderr) = texts(output.get_output());
    assert_eq!(
        stderr.trim(),
        "workbook: unknown lab `nosuchlab` (known labs: 01-processes, 02-pipes)"
    );
}

#[test]
fn labs_are_found_from_a_subdirectory() {
    let checkout = fake_checkout();
    let output = workbook(&checkout.path().join("labs/02-pipes"))
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
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = workbook(dir.path()).arg("grade").assert().code(2);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.starts_with("workbook: not a workbook checkout (no Cargo.toml with [workspace] and labs/ found above "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn an_unknown_verify_step_is_a_usage_error() {
    let checkout = fake_checkout();
    let output = workbook(checkout.path())
        .args(["verify", "--skip", "nosuchstep"])
        .assert()
        .code(2);
    let (_, stderr) = texts(output.get_output());
    assert!(
        stderr.contains("fmt, clippy, solutions, stubs, drift"),
        "{stderr}"
    );
}

#[test]
fn building_without_a_book_says_so() {
    let checkout = fake_checkout();
    let output = workbook(checkout.path()).arg("build").assert().code(1);
    let (_, stderr) = texts(output.get_output());
    assert_eq!(
        stderr.trim(),
        "workbook: there is no book to build: book/book.toml is missing"
    );
}
