//! Grading suite of lab 07 (System V shared memory).
//!
//! Compiled into both the lab (`labs/07-shm`) and the reference solution.
//! Several tests run a fixed shell script in which several `shm` processes
//! meet at one segment, named by the sandbox's key file: the program is
//! `"$0"` and the key file `"$1"`; nothing from outside is spliced into the
//! scripts. The grader removes any segment or semaphore set left under the
//! sandbox's key and fails the test for it; the test of the `IPC_PRIVATE`
//! segment finds that one by its creator's pid.
//!
//! Texts, sizes and file contents vary from run to run (`grader::Varied`), so
//! that no program can pass by printing what a transcript once showed: the
//! tests check them against what they gave, then mask them in snapshots.
//! A moment in another process's life (a reader blocked on a full FIFO) is
//! awaited through `/proc/PID/syscall`, never guessed with a sleep.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::thread;
use std::time::{Duration, Instant};

use grader::{Blocked, Cmd, Lab, Masks, Run, Running, Sandbox, Varied};

const CHAPTER: &str = "07-shm.md";

const TASK_1: &str = "Task 1: create, open, IPC_STAT";
const TASK_2: &str = "Task 2: attach, fork, detach, remove";
const TASK_3: &str = "Task 3: a read-only attachment";
const TASK_4: &str = "Task 4: the writer and the reader";
const TASK_5: &str = "Task 5: copy a file through one segment";

/// A script of a dozen short commands, or one copy through a small segment,
/// takes well under a second; only a transfer stuck for good exceeds this.
const TIMEOUT: Duration = Duration::from_secs(5);

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

// ---- inputs that vary, and masking what differs from run to run ------------

/// A few words, as a short sentence.
fn text(vary: &mut Varied) -> String {
    let words: Vec<String> = (0..3)
        .map(|_| {
            let len = vary.size(3, 8);
            vary.word(len)
        })
        .collect();
    words.join(" ")
}

/// `grader::assert_masked_transcript!` with this suite's identifier, and
/// the values the test chose at random (and has checked already) masked.
macro_rules! assert_masked_transcript {
    ($run:expr) => {
        assert_masked_transcript!($run, &Masks::new())
    };
    ($run:expr, $masks:expr) => {
        grader::assert_masked_transcript!($run, "shmid ", "[shmid]", $masks)
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
    let mut vary = Varied::new();
    let text = text(&mut vary);
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096 & creator=$!; wait $creator; echo "creator: pid $creator"
"$0" info "$1"
"$0" write "$1" "$TEXT" & writer=$!; wait $writer; echo "writer: pid $writer"
"$0" info "$1"
"$0" read "$1" & reader=$!; wait $reader; echo "reader: pid $reader"
"$0" info "$1"
"$0" remove "$1"
"#,
    )
    .env("TEXT", &text)
    .run();
    run.expect_success();
    if !run.stdout.lines().any(|line| line == text) {
        run.fail(
            "`read` did not print the text `write` had left in the segment",
            "the segment keeps its bytes with nobody attached: `read` must find what \
             `write` left there (create makes it, IPC_RMID is the only thing that \
             destroys it)",
        );
    }
    assert_masked_transcript!(run, &Masks::new().value(text, "[TEXT]"));
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
    let mut vary = Varied::new();
    let size = vary.size(1, 100_000).to_string();
    let sandbox = Sandbox::new();
    // The key the program must make: ftok(key file, 'M'), the lab's PROJ_ID.
    let key = format!("{:#010x}", sandbox.key(b'M') as u32);
    let run = script_in(
        sandbox,
        TASK_1,
        r#"
"$0" create "$1" "$SIZE" >/dev/null && "$0" write "$1" "hello"
"$0" info "$1"
echo "--- ipcs -m -i"
shmid=$(ipcs -m | awk -v key="$SHM_KEY" '$1 == key { print $2 }')
ipcs -m -i "$shmid"
"$0" remove "$1"
"#,
    )
    .env("SHM_KEY", key)
    .env("SIZE", &size)
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
    let printed_size = ours
        .lines()
        .next()
        .and_then(|line| line.split(": ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string);
    if theirs.get("bytes") != Some(&size) {
        run.fail(
            format!(
                "ipcs shows a segment of {:?} bytes, not {size}",
                theirs.get("bytes")
            ),
            "create must pass the size on to shmget unchanged",
        );
    }
    let pairs = [
        ("bytes", printed_size),
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
    let mut vary = Varied::new();
    let name = format!("missing-{}.key", vary.word(6));
    let run = lab().cmd(["info", &name]).section(TASK_1).run();
    expect_error(
        &run,
        "ENOENT",
        "ftok needs an existing file: return its error (ENOENT) with context",
    );
    if !run.stderr.contains(&name) {
        run.fail(
            "the error did not name the missing key file",
            "give the ftok error a context that names the key file: `ftok FILE`",
        );
    }
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
    if !run.stderr.contains("[SANDBOX]/ipc-key-") {
        run.fail(
            "the error did not name the key file",
            "give the shmget error a context that names the key file: `no segment for FILE`",
        );
    }
}

#[test]
fn create_refuses_a_key_that_has_a_segment() {
    let mut vary = Varied::new();
    let text = text(&mut vary);
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096
"$0" write "$1" "$TEXT"
"$0" create "$1" 100; echo "create: exit status $?"
"$0" read "$1"
"$0" remove "$1"
"#,
    )
    .env("TEXT", &text)
    .run();
    run.expect_success();
    if !run.stderr.contains("EEXIST") {
        run.fail(
            "a second create on the same key did not fail with EEXIST",
            "create with IPC_CREAT | IPC_EXCL (Segment::create): without IPC_EXCL, shmget \
             quietly opens the segment that is already there",
        );
    }
    if !run.stdout.lines().any(|line| line == text) {
        run.fail(
            "the existing segment lost the text written into it",
            "the existing segment must be left alone",
        );
    }
    assert_masked_transcript!(run, &Masks::new().value(text, "[TEXT]"));
}

/// `shm create` of `size` bytes then `shm info`, in `sandbox`: fails the
/// test unless the segment is made, with that size (a control for the
/// tests of sizes shmget refuses).
fn expect_created(sandbox: Sandbox, size: usize) {
    let key_file = sandbox.key_file().as_os_str().to_owned();
    let created = lab()
        .cmd_in(
            sandbox,
            ["create".into(), key_file.clone(), size.to_string().into()],
        )
        .section(TASK_1)
        .keep_sysv_objects()
        .run();
    created.expect_success();
    let info = lab()
        .cmd_in(created.sandbox, ["info".into(), key_file.clone()])
        .section(TASK_1)
        .keep_sysv_objects()
        .run();
    info.expect_success();
    if !info.stdout.contains(&format!(": {size} bytes,")) {
        info.fail(
            format!("a segment of {size} bytes was not created as asked"),
            "pass the size on to shmget unchanged",
        );
    }
    lab()
        .cmd_in(info.sandbox, ["remove".into(), key_file])
        .section(TASK_1)
        .run()
        .expect_success();
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
    let mut vary = Varied::new();
    let size = vary.size(1, 10_000);
    expect_created(run.sandbox, size);
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
    let mut vary = Varied::new();
    let size = vary.size(10_000, 1_000_000);
    expect_created(run.sandbox, size);
}

#[test]
fn info_rejects_a_segment_smaller_than_asked() {
    let mut vary = Varied::new();
    let size = vary.size(1000, 20_000);
    let more = size + vary.size(1, 5000);
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" "$SIZE"
"$0" info "$1" --size "$SIZE" >/dev/null && echo "info --size SIZE: found it"
"$0" info "$1" --size "$MORE"; echo "info --size MORE: exit status $?"
"$0" remove "$1"
"#,
    )
    .env("SIZE", size.to_string())
    .env("MORE", more.to_string())
    .run();
    run.expect_success();
    expect_line(
        &run,
        "info --size SIZE: found it",
        "open must pass `size` to shmget: a segment of exactly that size qualifies",
    );
    if !run.stderr.contains("EINVAL") {
        run.fail(
            "asking for more bytes than the segment has did not fail with EINVAL",
            "shmget(key, size, 0) checks that the existing segment has at least `size` \
             bytes: pass the size on, do not replace it with 0",
        );
    }
    assert_masked_transcript!(
        run,
        &Masks::new()
            .value(more.to_string(), "[MORE]")
            .value(size.to_string(), "[SIZE]")
    );
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
"$0" create "$1" 4096 --mode 400
$as_reader "$0" info "$1" | grep '^shmid'
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
    if !run.stdout.contains("4096 bytes, mode 400") {
        run.fail(
            "info refused a segment with mode 400, which its owner may read",
            "only a mode without read permission is refused: call shmctl(IPC_STAT) and \
             report what it says",
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
    expect_line(
        &run,
        "locked (SHM_LOCK): no",
        "SHM_UNLOCK clears the SHM_LOCKED bit: read it from shm_perm.mode each time",
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

/// `shm lifecycle` on a segment of a size chosen at random, and the mask
/// of that size for snapshots.
fn lifecycle(vary: &mut Varied) -> (Run, Masks) {
    let size = vary.size(1000, 100_000).to_string();
    // `exec`: the pid stays the program's, which the table calls "this process".
    let run = script(TASK_2, r#"exec "$0" lifecycle "$1" --size "$SIZE""#)
        .env("SIZE", &size)
        .run();
    (run, Masks::new().value(size, "[SIZE]"))
}

#[test]
fn lifecycle_tracks_nattch_cpid_and_lpid() {
    let mut vary = Varied::new();
    let (run, masks) = lifecycle(&mut vary);
    run.expect_success();
    let forked = row(&run, "forked");
    if forked.first() != Some(&"2") {
        run.fail(
            format!(
                "right after fork, shm_nattch was {}, not 2",
                forked.first().unwrap_or(&"missing")
            ),
            "a forked child shares its parent's attachments, and the kernel counts them; \
             the child had detached by the time the figures were read: it must wait for \
             end-of-file on the pipe (which comes only when the parent closes its write \
             end, after record(Step::Forked, …)) before it detaches",
        );
    }
    if forked.get(2) != Some(&"this process") {
        run.fail(
            "right after fork, shm_lpid did not name this process",
            "fork counts as an attach, made by the parent: nothing else may attach or \
             detach between the fork and the record of Step::Forked",
        );
    }
    let detached = row(&run, "child 1 detached");
    if detached.get(2) != Some(&"child 1") {
        run.fail(
            "after the child's shmdt, shm_lpid did not name the child",
            "shm_lpid is the last process to shmat or shmdt: the child must detach \
             (Attachment::detach) before it exits, and the parent must reap it before \
             recording Step::ChildDetached",
        );
    }
    let exited = row(&run, "child 2 exited");
    if exited.first() != Some(&"1") || exited.get(2) != Some(&"child 2") {
        run.fail(
            "after the second child exited, the figures did not show its detach",
            "a child that exits without shmdt is detached by the kernel (nattch 1, lpid \
             the child): fork it, let it _exit, and reap it before recording \
             Step::ChildExited",
        );
    }
    assert_masked_transcript!(run, &masks);
}

#[test]
fn segment_outlives_ipc_rmid_until_the_last_detach() {
    let mut vary = Varied::new();
    let (run, _) = lifecycle(&mut vary);
    if run.code() == Some(1) && run.stderr.contains("IPC_STAT") && !run.stdout.contains("IPC_RMID")
    {
        run.fail(
            "the segment was gone when the figures after IPC_RMID were read",
            "IPC_RMID destroys a segment nobody is attached to at once: mark it while this \
             process is still attached, record the step, and only then detach",
        );
    }
    run.expect_success();
    let marked = row(&run, "IPC_RMID");
    if marked.first() != Some(&"1") || marked.last() != Some(&"yes") {
        run.fail(
            "after IPC_RMID, the segment was not still there, attached once, marked SHM_DEST",
            "IPC_RMID only marks a segment that is attached somewhere: call it while this \
             process is still attached, and record the step then",
        );
    }
    expect_line(
        &run,
        "detached (shmdt)    the segment is gone: IPC_STAT fails",
        "the last shmdt destroys a segment marked for removal: detach, then record \
         Step::Detached",
    );
}

// ---- TODO 3: SHM_RDONLY --------------------------------------------------------

/// Runs `shm read-only --text TEXT` through a shell that announces the
/// program's pid first (`exec` keeps it), so that an `IPC_PRIVATE` segment
/// it leaves can be found by its creator's pid. Removes such segments, then
/// applies the grader's usual checks; returns the run and how many segments
/// it left.
fn read_only_run(text: &str) -> (Run, usize) {
    let run = script(
        TASK_3,
        r#"echo "shm: pid $$"; exec "$0" read-only --text "$TEXT""#,
    )
    .env("TEXT", text)
    .run_unchecked();
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
    let mut vary = Varied::new();
    let text = text(&mut vary);
    let (run, _) = read_only_run(&text);
    run.expect_success();
    if run.stdout.contains("the write went through") {
        run.fail(
            "the child wrote through what should be a read-only attachment",
            "the child must attach again with SHM_RDONLY (and detach the read-write \
             attachment it inherited): then the store faults, and SIGSEGV kills it",
        );
    }
    if !run
        .stdout
        .contains(&format!("child: read {text:?} through SHM_RDONLY"))
    {
        run.fail(
            "the child did not print the text it read through SHM_RDONLY",
            "the parent writes the text before fork; the child reads text.len() bytes \
             through its read-only attachment and prints them, flushing at once: a \
             process killed by a signal never flushes its buffers",
        );
    }
    expect_line(
        &run,
        "parent: the child was killed by signal SIGSEGV",
        "the parent must waitpid for the child and return the status that says SIGSEGV",
    );
    if !run
        .stdout
        .contains(&format!("parent: the segment still holds {text:?}"))
    {
        run.fail(
            "after the child's death, the segment no longer held the text",
            "the refused store changed nothing: read text.len() bytes back after the \
             child is gone",
        );
    }
    assert_masked_transcript!(run, &Masks::new().value(text, "[TEXT]"));
}

#[test]
fn the_private_segment_is_removed() {
    let mut vary = Varied::new();
    let (run, left) = read_only_run(&text(&mut vary));
    if left > 0 {
        run.fail(
            format!("left {left} IPC_PRIVATE segment(s) behind (now removed)"),
            "nobody else knows a private segment's identifier: mark it with \
             shmctl(IPC_RMID) on every path out, errors included",
        );
    }
    run.expect_success();
}

// ---- TODO 4: the writer and the reader --------------------------------------------

/// The FNV-1a hash the program prints, computed here.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Fails unless `output` holds exactly `input`, saying where they differ.
fn expect_same_bytes(run: &Run, input: &[u8], output: &[u8]) {
    if output != input {
        let at = output
            .iter()
            .zip(input)
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
}

#[test]
fn send_and_receive_carry_a_file_between_unrelated_processes() {
    let mut vary = Varied::new();
    let segment_size = vary.size(9, 3000);
    let len = vary.size(0, 5 * segment_size);
    let input = vary.bytes(len);
    let sandbox = Sandbox::new();
    sandbox.write_file("input", &input);
    let output_path = sandbox.path("output");
    let run = script_in(
        sandbox,
        TASK_4,
        r#"
"$0" create "$1" "$SIZE" >/dev/null && "$0" semaphores "$1" >/dev/null || exit 1
"$0" receive "$1" output & receiver=$!
"$0" send "$1" input; echo "send: exit status $?"
wait $receiver; echo "receive: exit status $?"
"$0" semaphores "$1" --remove
"$0" remove "$1"
"#,
    )
    .env("SIZE", segment_size.to_string())
    .why_if_timeout(STUCK)
    .run();
    run.expect_success();
    let output = fs::read(&output_path).unwrap_or_default();
    expect_same_bytes(&run, &input, &output);
    let chunks = len.div_ceil(segment_size - 8);
    for line in [
        format!("sent {len} bytes in {chunks} chunk(s)"),
        format!("received {len} bytes"),
        "send: exit status 0".to_string(),
        "receive: exit status 0".to_string(),
    ] {
        if !run.stdout.lines().any(|l| l == line) {
            run.fail(
                format!("never printed {line:?}"),
                "send fills every chunk but the last (read until the chunk is full or the \
                 input ends), counts only chunks with data, and ends with an empty chunk; \
                 receive stops at the empty chunk and counts the bytes it wrote",
            );
        }
    }
}

// ---- TODO 5: copy a file through one segment ------------------------------------

/// Copies `len` random bytes through a segment of `segment_size` bytes and
/// checks that the output is the input, byte for byte, and the checksum.
/// Returns the run and the checksum's mask for its snapshot.
fn copy_and_compare(vary: &mut Varied, len: usize, segment_size: usize) -> (Run, Masks) {
    let sandbox = Sandbox::new();
    let input = vary.bytes(len);
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
        .section(TASK_5)
        .timeout(TIMEOUT)
        .why_if_timeout(STUCK)
        .run();
    run.expect_success();
    let output = fs::read(&output_path).unwrap_or_default();
    expect_same_bytes(&run, &input, &output);
    let checksum = format!("{:#018x}", fnv1a(&input));
    let printed = format!("output: {len} bytes, FNV-1a {checksum}");
    if !run.stdout.lines().any(|line| line == printed) {
        run.fail(
            format!("never printed {printed:?}"),
            "the output file must hold exactly the input",
        );
    }
    (run, Masks::new().value(checksum, "[FNV-1a]"))
}

#[test]
fn copy_of_an_empty_file_is_empty() {
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 0, 4096);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_of_one_byte() {
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 1, 4096);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_one_byte_short_of_a_full_chunk() {
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 4096 - 8 - 1, 4096);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_of_exactly_one_full_chunk() {
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 4096 - 8, 4096);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_one_byte_over_a_full_chunk() {
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 4096 - 8 + 1, 4096);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_of_exactly_the_segment_size() {
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 4096, 4096);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_of_five_segments() {
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 5 * 4096, 4096);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_through_one_byte_chunks() {
    // A 9-byte segment holds a header and one byte: 1000 hand-overs.
    let mut vary = Varied::new();
    let (run, masks) = copy_and_compare(&mut vary, 1000, 9);
    assert_masked_transcript!(run, &masks);
}

#[test]
fn copy_reports_a_missing_input_file() {
    let mut vary = Varied::new();
    let name = format!("missing-{}", vary.word(6));
    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file().to_path_buf();
    let output = sandbox.path("output");
    let run = lab()
        .cmd_in(
            sandbox,
            [
                "copy".into(),
                key_file.into_os_string(),
                name.clone().into(),
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
    if !run.stderr.contains(&name) {
        run.fail(
            "the error did not name the missing input file",
            "give the error of File::open a context that names the file: `open FILE`",
        );
    }
}

/// The children of `parent`, from `/proc/*/stat`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid: u32 = stat
                .get(stat.rfind(')')? + 1..)?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Whether process `pid` is asleep in the system call `call`, as
/// `/proc/PID/stat` and `/proc/PID/syscall` show it.
fn asleep_in(pid: u32, call: libc::c_long) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|at| stat[at + 1..].split_whitespace().next());
    let syscall = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    state == Some("S") && syscall.split_whitespace().next() == Some(&call.to_string())
}

/// Waits until a child of the running program sleeps in `write` (a reader
/// blocked on a full FIFO) and returns its pid; fails the test if the
/// program ends first or nothing blocks within `TIMEOUT`.
fn blocked_writer_child(program: &mut Running) -> u32 {
    let deadline = Instant::now() + TIMEOUT;
    let mut nap = Duration::from_millis(1);
    loop {
        if let Blocked::Exited(_) = program.wait_until_blocked(Duration::ZERO) {
            program.fail(
                "ended before its reader child had filled the output FIFO",
                "copy forks a reader that writes the output while the parent sends: both \
                 must run until the whole input has gone through",
            );
        }
        if let Some(child) = children_of(program.pid())
            .into_iter()
            .find(|&child| asleep_in(child, libc::SYS_write))
        {
            return child;
        }
        if Instant::now() >= deadline {
            program.fail(
                format!("no child of copy blocked in write within {TIMEOUT:?}"),
                "the reader child writes each chunk to the output as it receives it",
            );
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

#[test]
fn copy_gives_up_when_the_reader_dies() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    // The output is a FIFO the test opens but never reads: once its buffer
    // is full, the reader child blocks in write, and the writer in P(EMPTY).
    let fifo = sandbox.path("output");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes())
        .unwrap_or_else(|_| panic!("grader: a NUL in the sandbox path"));
    // SAFETY: mkfifo and open read a NUL-terminated path that outlives them.
    let held = unsafe {
        assert_eq!(
            libc::mkfifo(c_path.as_ptr(), 0o600),
            0,
            "grader: mkfifo failed"
        );
        libc::open(c_path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK)
    };
    assert!(held >= 0, "grader: cannot open the FIFO");
    // SAFETY: F_GETPIPE_SZ takes no pointer.
    let capacity = unsafe { libc::fcntl(held, libc::F_GETPIPE_SZ) };
    let len = usize::try_from(capacity).unwrap_or(65536) + vary.size(5, 20) * 4096;
    sandbox.write_file("input", vary.bytes(len));
    let key_file = sandbox.key_file().to_path_buf();
    let mut copying = lab()
        .cmd_in(
            sandbox,
            [
                "copy".into(),
                key_file.into_os_string(),
                "input".into(),
                fifo.into_os_string(),
            ],
        )
        .section(TASK_5)
        .why_if_timeout(
            "the writer waited for ever for a reader that had died: take EMPTY with \
             p_timeout(EMPTY, PATIENCE), and each time the time runs out ask whether the \
             reader still runs (waitid with WNOWAIT); once it has ended, give up",
        )
        .start();
    let reader = blocked_writer_child(&mut copying);
    // SAFETY: kill(2) takes no pointers; `reader` is the program's child,
    // which cannot be reaped (and its pid reused) before it dies.
    unsafe { libc::kill(reader as i32, libc::SIGKILL) };
    let run = copying.wait(Duration::from_secs(5));
    // SAFETY: `held` is our descriptor, closed once.
    unsafe { libc::close(held) };
    run.expect_code(1);
    if !run.stderr.contains("reader") || !run.stderr.contains("SIGKILL") {
        run.fail(
            "did not say that the reader was killed by SIGKILL",
            "once send gives up, copy reaps the reader and reports how it ended: `the \
             reader was killed by SIGKILL`",
        );
    }
    assert_masked_transcript!(run);
}
