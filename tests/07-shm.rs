//! Grading suite of lab 07 (System V shared memory).
//!
//! Compiled into both the lab (`labs/07-shm`) and the reference solution.
//! Several tests run a fixed shell script in which several `shm` processes
//! meet at one segment, named by the sandbox's key file: the program is
//! `"$0"` and the key file `"$1"`; nothing from outside is spliced into the
//! scripts. The grader removes any segment or semaphore set left under the
//! sandbox's key and fails the test for it; the test of the `IPC_PRIVATE`
//! segment finds that one by its creator's pid.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use grader::{Cmd, Lab, Run, Sandbox};

const CHAPTER: &str = "07-shm.md";

const TASK_1: &str = "Task 1: create, open, IPC_STAT";
const TASK_2: &str = "Task 2: attach, fork, detach, remove";
const TASK_3: &str = "Task 3: a read-only attachment";
const TASK_4: &str = "Task 4: the writer and the reader";
const TASK_5: &str = "Task 5: copy a file through one segment";

/// A script of a dozen short commands, or one copy through a small segment.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a transfer hangs.
const STUCK: &str = "the writer and the reader both wait: the writer must P(EMPTY) before \
                     filling the segment and V(FULL) after; the reader P(FULL) before \
                     reading and V(EMPTY) after; EMPTY starts at 1 and FULL at 0; and an \
                     empty chunk must end the transfer";

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// `sh -c SCRIPT shm KEY_FILE`: the script runs the lab's program as "$0"
/// with the sandbox's key file as "$1", in a fresh sandbox.
fn script(section: &str, text: &str) -> Cmd {
    script_in(Sandbox::new(), section, text)
}

/// Like [`script`], in a sandbox the test has prepared.
fn script_in(sandbox: Sandbox, section: &str, text: &str) -> Cmd {
    let lab = lab();
    let key_file = sandbox.key_file().to_path_buf();
    lab.script_in(sandbox, text)
        .arg(key_file)
        .section(section)
        .timeout(TIMEOUT)
}

/// `shm ARGS…` with the sandbox's key file first.
fn with_key_file(section: &str, command: &str, rest: &[&str]) -> Cmd {
    let sandbox = Sandbox::new();
    let mut args = vec![command.into(), sandbox.key_file().as_os_str().to_owned()];
    args.extend(rest.iter().map(Into::into));
    lab()
        .cmd_in(sandbox, args)
        .section(section)
        .timeout(TIMEOUT)
}

// ---- masking what differs from run to run ---------------------------------

/// `grader::assert_masked_transcript!` with this suite's identifier.
macro_rules! assert_masked_transcript {
    ($run:expr) => {
        grader::assert_masked_transcript!($run, "shmid ", "[shmid]")
    };
}

/// Fails unless the program reported an error on exactly one line that
/// starts with `shm: ` and names `errno`, and exited with status 1.
fn expect_error(run: &Run, errno: &str, why: &str) {
    run.expect_one_line_error("shm", errno, why);
}

/// Fails unless standard output has `line`.
fn expect_line(run: &Run, line: &str, why: &str) {
    run.expect_line(line, why);
}

// ---- TODO 1: create, open, IPC_STAT ------------------------------------------

#[test]
fn info_follows_a_segment_through_creation_and_use() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096 & creator=$!; wait $creator; echo "creator: pid $creator"
"$0" info "$1"
"$0" write "$1" "kept by the kernel" & writer=$!; wait $writer; echo "writer: pid $writer"
"$0" info "$1"
"$0" read "$1" & reader=$!; wait $reader; echo "reader: pid $reader"
"$0" info "$1"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "kept by the kernel",
        "the segment keeps its bytes with nobody attached: `read` must find what `write` \
         left there (create makes it, IPC_RMID is the only thing that destroys it)",
    );
    assert_masked_transcript!(run);
}

/// `key=value` pairs from `ipcs -m -i`, and `shm_name: value` lines from
/// `shm info`, as one map each.
fn ipcs_fields(text: &str) -> BTreeMap<String, String> {
    text.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn info_agrees_with_ipcs() {
    let sandbox = Sandbox::new();
    // The key the program must make: ftok(key file, 'M'), the lab's PROJ_ID.
    let key = format!("{:#010x}", sandbox.key(b'M') as u32);
    let run = script_in(
        sandbox,
        TASK_1,
        r#"
"$0" create "$1" 5000 >/dev/null && "$0" write "$1" "hello"
"$0" info "$1"
echo "--- ipcs -m -i"
shmid=$(ipcs -m | awk -v key="$SHM_KEY" '$1 == key { print $2 }')
ipcs -m -i "$shmid"
"$0" remove "$1"
"#,
    )
    .env("SHM_KEY", key)
    .run();
    run.expect_success();
    let (ours, theirs) = run
        .stdout
        .split_once("--- ipcs -m -i")
        .unwrap_or((&run.stdout, ""));
    let theirs = ipcs_fields(theirs);
    let field = |name: &str| {
        ours.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.split_whitespace().next().unwrap_or("").to_string())
    };
    let size = ours
        .lines()
        .next()
        .and_then(|line| line.split(": ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string);
    let pairs = [
        ("bytes", size),
        ("nattch", field("shm_nattch: ")),
        ("cpid", field("shm_cpid: ")),
        ("lpid", field("shm_lpid: ")),
    ];
    for (name, ours) in pairs {
        if ours.as_deref() != theirs.get(name).map(String::as_str) {
            let mut failure =
                run.failure(format!("`shm info` and `ipcs -m -i` disagree on {name}"));
            failure.details.push(format!("shm info: {ours:?}"));
            failure
                .details
                .push(format!("ipcs:     {:?}", theirs.get(name)));
            failure.why = Some(
                "copy shm_segsz, shm_nattch, shm_cpid and shm_lpid from IPC_STAT's \
                 shmid_ds, each into its own field"
                    .into(),
            );
            failure.raise();
        }
    }
}

#[test]
fn info_reports_a_missing_key_file() {
    let run = lab()
        .cmd(["info", "no-such-key-file"])
        .section(TASK_1)
        .run();
    expect_error(
        &run,
        "ENOENT",
        "ftok needs an existing file: return its error (ENOENT) with context",
    );
}

#[test]
fn info_reports_a_key_without_a_segment() {
    let run = with_key_file(TASK_1, "info", &[]).run();
    expect_error(
        &run,
        "ENOENT",
        "shmget(key, size, 0) fails with ENOENT when no segment has this key: report \
         it, and never create a segment just to look at it",
    );
}

#[test]
fn create_refuses_a_key_that_has_a_segment() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096
"$0" write "$1" "first"
"$0" create "$1" 100; echo "create: exit status $?"
"$0" read "$1"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    if !run.stderr.contains("EEXIST") {
        run.fail(
            "a second create on the same key did not fail with EEXIST",
            "create with IPC_CREAT | IPC_EXCL (Segment::create): without IPC_EXCL, shmget \
             quietly opens the segment that is already there",
        );
    }
    expect_line(&run, "first", "the existing segment must be left alone");
    assert_masked_transcript!(run);
}

#[test]
fn create_rejects_a_size_of_zero() {
    let run = with_key_file(TASK_1, "create", &["0"]).run();
    expect_error(
        &run,
        "EINVAL",
        "shmget fails with EINVAL for a size below SHMMIN (1 byte): return the error \
         with context",
    );
}

#[test]
fn create_rejects_a_size_above_shmmax() {
    let run = with_key_file(TASK_1, "create", &[&usize::MAX.to_string()]).run();
    expect_error(
        &run,
        "EINVAL",
        "shmget fails with EINVAL for a size above SHMMAX (/proc/sys/kernel/shmmax): \
         return the error with context",
    );
}

#[test]
fn info_rejects_a_segment_smaller_than_asked() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096
"$0" info "$1" --size 4096 >/dev/null && echo "info --size 4096: found it"
"$0" info "$1" --size 8192; echo "info --size 8192: exit status $?"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "info --size 4096: found it",
        "open must pass `size` to shmget: a segment of exactly that size qualifies",
    );
    if !run.stderr.contains("EINVAL") {
        run.fail(
            "asking for 8192 bytes of a 4096-byte segment did not fail with EINVAL",
            "shmget(key, size, 0) checks that the existing segment has at least `size` \
             bytes: pass the size on, do not replace it with 0",
        );
    }
    assert_masked_transcript!(run);
}

/// Root passes every System V permission check (CAP_IPC_OWNER); the
/// script takes that capability away from the reader when it runs as root,
/// so that the mode is enforced for everyone.
const WITHOUT_IPC_OWNER: &str = r#"
if [ "$(id -u)" = 0 ]; then as_reader="setpriv --bounding-set=-ipc_owner"; else as_reader=; fi
"#;

#[test]
fn info_reports_permission_denied() {
    let text = format!(
        "{WITHOUT_IPC_OWNER}{}",
        r#""$0" create "$1" 4096 --mode 000
$as_reader "$0" info "$1"; echo "info: exit status $?"
"$0" remove "$1"
"#
    );
    let run = script(TASK_1, &text).run();
    run.expect_success();
    if run.stderr.contains("setpriv:") {
        run.fail(
            "could not run the reader without CAP_IPC_OWNER",
            "this test runs as root and needs util-linux's setpriv to drop that \
             capability; install util-linux (it also provides ipcs)",
        );
    }
    expect_line(
        &run,
        "info: exit status 1",
        "IPC_STAT needs read permission: a segment with mode 000 must be reported as EACCES",
    );
    if !run.stderr.contains("EACCES") {
        run.fail(
            "the error did not name EACCES",
            "return shmctl's error with context instead of replacing it",
        );
    }
    assert_masked_transcript!(run);
}

#[test]
fn info_shows_a_locked_segment() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096 >/dev/null
"$0" lock "$1" && "$0" info "$1" | grep SHM_LOCK
"$0" unlock "$1" && "$0" info "$1" | grep SHM_LOCK
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "locked (SHM_LOCK): yes",
        "SHM_LOCK sets the SHM_LOCKED bit (0o2000) in shm_perm.mode: test that bit, \
         apart from the permission bits",
    );
    assert_masked_transcript!(run);
}

// ---- TODO 2: the life of a segment --------------------------------------------

/// The row of `lifecycle`'s table that starts with `name`, in words.
fn row<'a>(run: &'a Run, name: &str) -> Vec<&'a str> {
    run.stdout
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(|rest| {
            rest.split("  ")
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lifecycle_tracks_nattch_cpid_and_lpid() {
    let run = with_key_file(TASK_2, "lifecycle", &[]).run();
    run.expect_success();
    let forked = row(&run, "forked");
    if forked.first() != Some(&"2") {
        run.fail(
            format!(
                "right after fork, shm_nattch was {:?}, not 2",
                forked.first()
            ),
            "a forked child shares its parent's attachments, and the kernel counts them: \
             look before the child detaches (it waits for end-of-file on the pipe, which \
             comes only when the parent closes its write end)",
        );
    }
    let detached = row(&run, "child 1 detached");
    if detached.get(2) != Some(&"child 1") {
        run.fail(
            "after the child's shmdt, shm_lpid did not name the child",
            "shm_lpid is the last process to shmat or shmdt: the child must detach \
             (Attachment::detach) before it exits, and the parent must reap it before \
             looking",
        );
    }
    assert_masked_transcript!(run);
}

#[test]
fn segment_outlives_ipc_rmid_until_the_last_detach() {
    let run = with_key_file(TASK_2, "lifecycle", &[]).run();
    if run.code() == Some(1) && run.stderr.contains("IPC_STAT") && !run.stdout.contains("IPC_RMID")
    {
        run.fail(
            "the segment was gone when the figures after IPC_RMID were read",
            "IPC_RMID destroys a segment nobody is attached to at once: mark it while this \
             process is still attached, read the figures, and only then detach",
        );
    }
    run.expect_success();
    let marked = row(&run, "IPC_RMID");
    if marked.first() != Some(&"1") || marked.last() != Some(&"yes") {
        run.fail(
            "after IPC_RMID, the segment was not still there, attached once, marked SHM_DEST",
            "IPC_RMID only marks a segment that is attached somewhere: call it while this \
             process is still attached, and read the figures then",
        );
    }
    expect_line(
        &run,
        "detached (shmdt)    the segment is gone: IPC_STAT fails",
        "the last shmdt destroys a segment marked for removal: after it, IPC_STAT fails \
         and lifecycle records None",
    );
}

// ---- TODO 3: SHM_RDONLY --------------------------------------------------------

/// Runs `shm read-only` through a shell that announces the program's pid
/// first (`exec` keeps it), so that an `IPC_PRIVATE` segment it leaves can
/// be found by its creator's pid. Removes such segments, then applies the
/// grader's usual checks; returns the run and how many segments it left.
fn read_only_run() -> (Run, usize) {
    let run = script(TASK_3, r#"echo "shm: pid $$"; exec "$0" read-only"#).run_unchecked();
    let pid = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("shm: pid "))
        .unwrap_or("")
        .to_string();
    let left = private_segments_of(&pid);
    for &shmid in &left {
        // SAFETY: IPC_RMID takes no buffer; the segment is ours to clean up.
        unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
    }
    run.check_finished_cleanly();
    (run, left.len())
}

/// The `IPC_PRIVATE` segments (key 0) whose creator is `pid`, from
/// `/proc/sysvipc/shm`: `key shmid perms size cpid …`.
fn private_segments_of(pid: &str) -> Vec<i32> {
    let table = fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["0", shmid, _, _, cpid, ..] if *cpid == pid => shmid.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn a_write_through_shm_rdonly_is_killed_by_sigsegv() {
    let (run, _) = read_only_run();
    run.expect_success();
    if run.stdout.contains("the write went through") {
        run.fail(
            "the child wrote through what should be a read-only attachment",
            "the child must attach again with SHM_RDONLY (and detach the read-write \
             attachment it inherited): then the store faults, and SIGSEGV kills it",
        );
    }
    expect_line(
        &run,
        "parent: the child was killed by signal SIGSEGV",
        "the parent must waitpid for the child and return the status that says SIGSEGV",
    );
    expect_line(
        &run,
        "parent: the segment still holds \"written by the parent\"",
        "the refused store changed nothing: read the text back after the child is gone",
    );
    assert_masked_transcript!(run);
}

#[test]
fn the_private_segment_is_removed() {
    let (run, left) = read_only_run();
    if left > 0 {
        run.fail(
            format!("left {left} IPC_PRIVATE segment(s) behind (now removed)"),
            "nobody else knows a private segment's identifier: mark it with \
             shmctl(IPC_RMID) on every path out, errors included",
        );
    }
    run.expect_success();
}

// ---- TODOs 4 and 5: a file through one segment ----------------------------------

/// `len` bytes that every byte value appears in, the same on every run.
fn content(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 11) as u8
        })
        .collect()
}

/// The FNV-1a hash the program prints, computed here.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Copies `len` bytes through a segment of `segment_size` bytes and checks
/// that the output is the input, byte for byte.
fn copy_and_compare(len: usize, segment_size: usize) -> Run {
    let sandbox = Sandbox::new();
    let input = content(len);
    let input_path = sandbox.write_file("input", &input);
    let output_path = sandbox.path("output");
    let key_file = sandbox.key_file().to_path_buf();
    let run = lab()
        .cmd_in(
            sandbox,
            [
                "copy".into(),
                key_file.into_os_string(),
                input_path.into_os_string(),
                output_path.clone().into_os_string(),
                "--segment-size".into(),
                segment_size.to_string().into(),
            ],
        )
        .section(TASK_4)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    run.expect_success();
    let output = fs::read(&output_path).unwrap_or_default();
    if output != input {
        let at = output
            .iter()
            .zip(&input)
            .position(|(a, b)| a != b)
            .unwrap_or(output.len().min(input.len()));
        run.fail(
            format!(
                "the output differs from the input: {} bytes for {}, first difference at byte {at}",
                output.len(),
                input.len()
            ),
            "each chunk is its length (8 bytes, little-endian) then that many bytes; the \
             writer fills a chunk before V(FULL), the reader copies it out before V(EMPTY), \
             and nothing but the last chunk is short",
        );
    }
    let printed = format!("output: {len} bytes, FNV-1a {:#018x}", fnv1a(&input));
    expect_line(
        &run,
        &printed,
        "the output file must hold exactly the input",
    );
    run
}

#[test]
fn copy_of_an_empty_file_is_empty() {
    let run = copy_and_compare(0, 4096);
    assert_masked_transcript!(run);
}

#[test]
fn copy_of_one_byte() {
    let run = copy_and_compare(1, 4096);
    assert_masked_transcript!(run);
}

#[test]
fn copy_one_byte_short_of_a_full_chunk() {
    let run = copy_and_compare(4096 - 8 - 1, 4096);
    assert_masked_transcript!(run);
}

#[test]
fn copy_of_exactly_one_full_chunk() {
    let run = copy_and_compare(4096 - 8, 4096);
    assert_masked_transcript!(run);
}

#[test]
fn copy_one_byte_over_a_full_chunk() {
    let run = copy_and_compare(4096 - 8 + 1, 4096);
    assert_masked_transcript!(run);
}

#[test]
fn copy_of_exactly_the_segment_size() {
    let run = copy_and_compare(4096, 4096);
    assert_masked_transcript!(run);
}

#[test]
fn copy_of_five_segments() {
    let run = copy_and_compare(5 * 4096, 4096);
    assert_masked_transcript!(run);
}

#[test]
fn copy_through_one_byte_chunks() {
    // A 9-byte segment holds a header and one byte: 1000 hand-overs.
    let run = copy_and_compare(1000, 9);
    assert_masked_transcript!(run);
}

#[test]
fn copy_reports_a_missing_input_file() {
    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file().to_path_buf();
    let output = sandbox.path("output");
    let run = lab()
        .cmd_in(
            sandbox,
            [
                "copy".into(),
                key_file.into_os_string(),
                "no-such-input".into(),
                output.into_os_string(),
            ],
        )
        .section(TASK_5)
        .timeout(TIMEOUT)
        .run();
    expect_error(
        &run,
        "No such file or directory",
        "open the input before creating anything: report the error, and leave no \
         segment or semaphore behind",
    );
}
