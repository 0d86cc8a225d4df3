//! The grader's own tests of the socket-file check: a socket file a program
//! leaves in its sandbox is reported with the call that would have removed
//! it, and removed; one it is meant to leave, or one that was there before,
//! is not.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;

use grader::{Cmd, LeakKind, Sandbox};

const MISBEHAVE: &str = env!("CARGO_BIN_EXE_misbehave");

fn is_socket(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
}

#[test]
fn a_socket_file_left_in_the_sandbox_is_reported_and_removed() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("srv.sock");
    let run = Cmd::new(MISBEHAVE, sandbox)
        .arg("bind-socket")
        .arg(&path)
        .run_unchecked();
    assert_eq!(run.leaks.len(), 1, "{:?}", run.leaks);
    assert_eq!(run.leaks[0].kind, LeakKind::SocketFile);
    assert_eq!(run.leaks[0].what, "[SANDBOX]/srv.sock");
    let message = run.leaks[0].to_string();
    assert!(message.contains("EADDRINUSE"), "{message}");
    assert!(message.contains("unlink()"), "{message}");
    assert!(!path.exists(), "the leftover socket file was removed");
}

#[test]
fn a_socket_file_the_program_is_meant_to_leave_is_not_a_leftover() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("kept.sock");
    let run = Cmd::new(MISBEHAVE, sandbox)
        .arg("bind-socket")
        .arg(&path)
        .keeps(&path)
        .run();
    assert!(run.leaks.is_empty(), "{:?}", run.leaks);
    assert!(is_socket(&path));
}

#[test]
fn a_socket_file_that_was_there_before_the_run_is_not_blamed_on_it() {
    let sandbox = Sandbox::new();
    let stale = sandbox.path("stale.sock");
    drop(UnixListener::bind(&stale).expect("bind the test's own socket"));
    let run = Cmd::new("true", sandbox).run();
    assert!(run.leaks.is_empty(), "{:?}", run.leaks);
    assert!(
        is_socket(&stale),
        "the test's own socket file is left alone"
    );
}

#[test]
fn abstract_names_carry_the_sandbox_prefix_and_transcripts_hide_it() {
    let sandbox = Sandbox::new();
    let name = sandbox.abstract_name("srv");
    assert_eq!(name, format!("@{}srv", sandbox.posix_prefix()));
    let run = Cmd::new("echo", sandbox).arg(&name).run();
    assert_eq!(run.stdout, "@[PREFIX]-srv\n");
}
