//! The grader's own tests of `Running::mappings` and `Running::open_files`,
//! which suites use to see how a program holds a file while it runs.

use std::fs;
use std::time::Duration;

use grader::{Cmd, Sandbox};

#[test]
fn a_running_program_shows_its_open_files_and_its_mappings() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("held", "kept open on descriptor 3\n");
    let mut running = Cmd::new("sh", sandbox)
        // The shell itself stays (no `exec sleep`): once it has said ready,
        // its mappings are complete, where a program in the middle of an
        // exec would show only its new stack.
        .args(["-c", r#"exec 3<"$1"; echo ready; sleep 30"#, "sh"])
        .arg(&file)
        .start();
    running.wait_for_stdout("ready", Duration::from_secs(5));
    let held = fs::canonicalize(&file).expect("the file exists");
    let open = running.open_files();
    assert!(open.contains(&held), "{held:?} not among {open:?}");
    let maps = running.mappings();
    assert!(
        maps.iter().any(|m| m.path.as_deref() == Some("[stack]")),
        "no [stack] among {maps:?}"
    );
    assert!(
        maps.iter().any(|m| m.perms == "r-xp" && m.path.is_some()),
        "no executable file mapping among {maps:?}"
    );
    assert!(
        maps.iter().all(|m| !m.maps(&file)),
        "the file is not mapped"
    );
    running.kill();
}

#[test]
fn a_process_that_is_gone_has_nothing() {
    assert!(grader::mappings_of(u32::MAX).is_empty());
    assert!(grader::open_files_of(u32::MAX).is_empty());
}
