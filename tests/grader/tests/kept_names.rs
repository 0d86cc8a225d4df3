//! The grader's own tests of kept POSIX names: what a program leaves under
//! one is not a leak, and dropping the name removes it.

use std::ffi::CString;

use grader::{Cmd, KeptName, Sandbox};

const MISBEHAVE: &str = env!("CARGO_BIN_EXE_misbehave");

/// Whether a message queue has this name.
fn queue_exists(name: &str) -> bool {
    let name = CString::new(name).expect("a name without NUL");
    // SAFETY: mq_open with a valid name and no O_CREAT; closed at once.
    let mq = unsafe { libc::mq_open(name.as_ptr(), libc::O_RDONLY) };
    if mq < 0 {
        return false;
    }
    // SAFETY: a descriptor mq_open has just returned.
    unsafe { libc::mq_close(mq) };
    true
}

#[test]
fn a_queue_under_a_kept_name_is_no_leak_and_goes_with_the_name() {
    let kept = KeptName::new("kept");
    let run = Cmd::new(MISBEHAVE, Sandbox::new())
        .arg("posix-mq")
        .arg(&kept)
        .run_unchecked();
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert!(run.leaks.is_empty(), "{:?}", run.leaks);
    assert!(queue_exists(kept.as_str()), "the program's queue is gone");
    let name = kept.to_string();
    drop(kept);
    assert!(!queue_exists(&name), "dropping the kept name left {name}");
}

#[test]
fn kept_names_never_share_a_sandbox_prefix() {
    let sandboxes: Vec<Sandbox> = (0..20).map(|_| Sandbox::new()).collect();
    let kept: Vec<KeptName> = (0..20).map(|_| KeptName::new("q")).collect();
    for name in &kept {
        let bare = &name.as_str()[1..];
        assert!(bare.starts_with("wb"), "{name}");
        for sandbox in &sandboxes {
            assert!(
                !bare.starts_with(sandbox.posix_prefix()),
                "{name} starts with {}",
                sandbox.posix_prefix()
            );
        }
    }
}
