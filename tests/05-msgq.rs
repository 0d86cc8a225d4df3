//! Grading suite of lab 05 (System V message queues).
//!
//! Compiled into both the lab (`labs/05-msgq`) and the reference solution;
//! every test runs the program as a black box through the grader, which also
//! fails a test when a queue (keyed or private), a process or a zombie is
//! left behind.
//!
//! A queue lives in the kernel, not in a program, so many tests are
//! scenarios of several runs in one sandbox: the runs before the last keep
//! their queues (`keep_sysv_objects`), and the last one, usually
//! `msgq remove`, is checked for leftovers. The test process also makes
//! System V calls of its own (the `raw` module): it prepares queues, plays
//! the server for the client of task 4 and the client for the server of task
//! 5, with the notes' wire format written out once more, independently of
//! the lab's `protocol.rs`. The shell command lines below are fixed text.
//!
//! Texts, types, sizes and names vary from run to run (`grader::Varied`), so
//! that no program can pass by printing what a transcript once showed: the
//! tests check them against what they gave, then mask them in snapshots.
//! Moments in another process's life (a receiver asleep in `msgrcv`, a
//! server with no child left) are awaited through `/proc`, never guessed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use grader::{Blocked, Cmd, Lab, Masks, Run, Running, Sandbox, SysvKind, Varied};

const CHAPTER: &str = "05-msgq.md";

/// A program blocked on a queue stays blocked: no need to wait long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the test's own client or server waits for the other side.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the lab's server gets for each step: to say it listens, to
/// reap its children, to stop once asked.
const SERVER_TIMEOUT: Duration = grader::DEFAULT_TIMEOUT;

const TASK_1: &str = "Task 1: keys and queues";
const TASK_2: &str = "Task 2: send and receive";
const TASK_3: &str = "Task 3: look at a queue and change it";
const TASK_4: &str = "Task 4: the client";
const TASK_5: &str = "Task 5: the server";

/// The name tests give the sandbox's key file: a hard link to it, so the
/// same inode and the same key, with a name that is the same in every run.
const KEY_FILE: &str = "queue.key";

/// Values that change from run to run, replaced in snapshots. Tests check
/// the real values as properties before comparing transcripts.
const FILTERS: &[(&str, &str)] = &[
    (r"queue \d+", "queue [MSQID]"),
    (r"--id \d+", "--id [MSQID]"),
    (r"(msqid\s+)\d+", "${1}[MSQID]"),
    (r"0x[0-9a-f]{8}", "[KEY]"),
    (r"pid \d+", "pid [PID]"),
    (r"(msg_perm\.c?uid\s+)\d+", "${1}[UID]"),
    (r"(msg_perm\.c?gid\s+)\d+", "${1}[GID]"),
    (r"(msg_l[sr]pid\s+)[1-9]\d*", "${1}[PID]"),
    (r"(msg_[src]time\s+)[1-9]\d*", "${1}[TIME]"),
    (r"(st_dev )0x[0-9a-f]+", "${1}[DEV]"),
    (r"(st_ino )\d+", "${1}[INO]"),
];

/// Compares the transcript of a run with its snapshot, after the test's
/// [`Masks`] (values it chose at random and has checked already) and
/// [`FILTERS`].
macro_rules! assert_msgq_transcript {
    ($run:expr) => {
        assert_msgq_transcript!($run, &Masks::new())
    };
    ($run:expr, $masks:expr) => {{
        grader::insta::with_settings!({ filters => FILTERS.to_vec() }, {
            grader::assert_transcript!($run, $masks);
        });
    }};
}

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// A sandbox with [`KEY_FILE`] linked to its key file.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::hard_link(sandbox.key_file(), sandbox.path(KEY_FILE))
        .unwrap_or_else(|e| panic!("grader: cannot link the key file: {e}"));
    sandbox
}

/// A sandbox with a queue under its key (project ID 1), made by the test
/// with `mode`, and the queue's identifier.
fn sandbox_with_queue(mode: libc::c_int) -> (Sandbox, libc::c_int) {
    let sandbox = sandbox();
    let id = raw::create(sandbox.key(1), mode);
    (sandbox, id)
}

/// The lab's program in `sandbox`, naming the sandbox's queue by key file.
fn on_queue(sandbox: Sandbox, command: &str, args: &[&str]) -> Cmd {
    lab()
        .cmd_in(sandbox, [command, "--key-file", KEY_FILE])
        .args(args.iter().copied())
        .timeout(HANG_TIMEOUT)
}

/// The last step of a scenario: `msgq remove`, checked for leftovers.
fn remove_with_lab(sandbox: Sandbox, section: &str) -> Run {
    let run = on_queue(sandbox, "remove", &[]).section(section).run();
    run.expect_success();
    run
}

/// The number that follows `marker` in `text`, if any.
fn number_after(text: &str, marker: &str) -> Option<i64> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// A queue identifier that names no queue now.
fn unused_id() -> libc::c_int {
    let mut vary = Varied::new();
    loop {
        let id = vary.between(1 << 24, i32::MAX as u64) as libc::c_int;
        if raw::proc_row(id).is_none() {
            return id;
        }
    }
}

/// A number from `/proc/sys/kernel/NAME`.
fn kernel_limit<T: std::str::FromStr>(name: &str) -> T {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| panic!("grader: cannot read /proc/sys/kernel/{name}"))
}

/// Whether `program` is found in `PATH`.
fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Says something on the terminal even though the test passes: libtest
/// captures `println!` and `eprintln!`, not a direct write to stderr.
fn note(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// A word of `low` to `high` lowercase letters.
fn word_of(vary: &mut Varied, low: usize, high: usize) -> String {
    let len = vary.size(low, high);
    vary.word(len)
}

// ---- TODO 1: keys and queues ------------------------------------------------

/// The first line of a run's standard output, with its newline.
fn first_line(run: &Run) -> String {
    format!("{}\n", run.stdout.lines().next().unwrap_or(""))
}

#[test]
fn key_is_made_of_the_files_inode_and_the_project_id() {
    let sandbox = sandbox();
    std::os::unix::fs::symlink(KEY_FILE, sandbox.path("symlink.key"))
        .unwrap_or_else(|e| panic!("grader: cannot make a symbolic link: {e}"));
    let mut vary = Varied::new();
    let proj = vary.between(2, 255) as u8;
    let expected = |proj: u8| format!("key {:#010x}\n", sandbox.key(proj) as u32);
    let (key_1, key_2) = (expected(1), expected(proj));

    let run = lab()
        .cmd_in(sandbox, ["key", KEY_FILE])
        .section(TASK_1)
        .run();
    run.expect_success();
    if first_line(&run) != key_1 {
        run.fail(
            "printed a key other than ftok(3)'s for the key file and project ID 1",
            "ftok(3) builds the key from the file's inode and device numbers and the \
             project ID: call libc::ftok with the path and proj_id, and return its key",
        );
    }
    assert_msgq_transcript!(run);

    let run = lab()
        .cmd_in(run.sandbox, ["key", KEY_FILE, "--proj", &proj.to_string()])
        .section(TASK_1)
        .run();
    run.expect_success();
    if first_line(&run) != key_2 {
        run.fail(
            "printed a key other than ftok(3)'s for another project ID",
            "the project ID is the top 8 bits of the key: pass proj_id on to ftok",
        );
    }

    let run = lab()
        .cmd_in(run.sandbox, ["key", "symlink.key"])
        .section(TASK_1)
        .run();
    run.expect_success();
    if first_line(&run) != key_1 {
        run.fail(
            "printed another key for a symbolic link to the key file",
            "a symbolic link leads to the same file, so to the same inode and key: \
             ftok uses the file, never its name",
        );
    }
}

#[test]
fn key_of_a_missing_file_is_a_clear_error() {
    let mut vary = Varied::new();
    let name = format!("missing-{}.key", vary.word(6));
    let run = lab().cmd(["key", &name]).section(TASK_1).run();
    if run.code() == Some(0) {
        run.fail(
            "made a key out of a file that does not exist",
            "ftok returns (key_t) -1 when stat fails: return Err(Errno::last()), never the -1",
        );
    }
    run.expect_code(1);
    if !run.stderr.contains(&name) || !run.stderr.contains("ENOENT") {
        run.fail(
            "did not report ENOENT for the missing key file",
            "ftok fails the way stat(2) does: return Err(Errno::last())",
        );
    }
    assert_msgq_transcript!(run, &Masks::new().value(name, "[MISSING]"));
}

/// The line of `ipcs -q` (or `/proc/sysvipc/msg` when `ipcs` is missing)
/// about queue `id`: key, identifier and permission bits.
fn listed_queue(id: libc::c_int) -> Option<(u32, String)> {
    if in_path("ipcs") {
        let listing = Cmd::new("ipcs", Sandbox::new()).arg("-q").run();
        listing.expect_success();
        listing.stdout.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1) != Some(&id.to_string().as_str()) {
                return None;
            }
            let key = u32::from_str_radix(fields[0].trim_start_matches("0x"), 16).ok()?;
            Some((key, fields.get(3)?.to_string()))
        })
    } else {
        note("ipcs is not installed: the queue was looked up in /proc/sysvipc/msg instead");
        raw::proc_row(id).map(|row| (row.key as u32, format!("{:o}", row.perms)))
    }
}

#[test]
fn create_makes_a_queue_that_ipcs_lists() {
    let sandbox = sandbox();
    let key = sandbox.key(1) as u32;
    let run = on_queue(sandbox, "create", &[])
        .section(TASK_1)
        .keep_sysv_objects()
        .run();
    run.expect_success();
    let Some(id) = number_after(&run.stdout, "message queue ") else {
        run.fail(
            "did not print `message queue ID (key 0xKEY)`",
            "msgget returns the new queue's identifier: return it as Msqid",
        );
    };
    match listed_queue(id as libc::c_int) {
        None => run.fail(
            format!("ipcs does not list a queue {id}"),
            "create calls msgget(key, IPC_CREAT | mode): return the identifier it gives",
        ),
        Some((listed, _)) if listed != key => run.fail(
            format!("ipcs lists queue {id} with key {listed:#010x}, not {key:#010x}"),
            "the queue must be created under the key ftok gives for the key file",
        ),
        Some((_, perms)) if perms != "600" => run.fail(
            format!("ipcs lists queue {id} with permissions {perms}, not 600"),
            "pass the flags to msgget unchanged: IPC_CREAT | 0o600",
        ),
        Some(_) => {}
    }
    assert_msgq_transcript!(run);
    let removed = remove_with_lab(run.sandbox, TASK_1);
    if number_after(&removed.stdout, "removed queue ") != Some(id) {
        removed.fail(
            format!("did not print `removed queue {id}`"),
            "msgget(key, 0) opens the existing queue: remove that one",
        );
    }
}

#[test]
fn create_exclusive_fails_with_eexist_on_a_taken_key() {
    let (sandbox, id) = sandbox_with_queue(0o600);
    let run = on_queue(sandbox, "create", &["--exclusive"])
        .section(TASK_1)
        .keep_sysv_objects()
        .run();
    if run.code() == Some(0) {
        run.fail(
            "created a queue under a key that already had one",
            "IPC_CREAT | IPC_EXCL makes msgget fail with EEXIST when the key is taken: \
             pass the flags to msgget unchanged",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(run);

    // Without IPC_EXCL, IPC_CREAT quietly opens the queue that is there.
    let run = on_queue(run.sandbox, "create", &[])
        .section(TASK_1)
        .keep_sysv_objects()
        .run();
    run.expect_success();
    if number_after(&run.stdout, "message queue ") != Some(i64::from(id)) {
        run.fail(
            format!("did not print the existing queue's identifier {id}"),
            "msgget(key, IPC_CREAT | 0o600) returns the queue that already has the key",
        );
    }
    remove_with_lab(run.sandbox, TASK_1);
}

#[test]
fn create_private_makes_a_new_queue_every_time() {
    let create = |sandbox: Sandbox| {
        let run = lab()
            .cmd_in(sandbox, ["create", "--private"])
            .section(TASK_1)
            .announces_sysv_ids(SysvKind::MessageQueue, "message queue ")
            .keep_sysv_objects()
            .run();
        run.expect_success();
        let id = number_after(&run.stdout, "message queue ").unwrap_or_else(|| {
            run.fail(
                "did not print `message queue ID (key IPC_PRIVATE)`",
                "return the identifier msgget gives",
            )
        });
        (run, id)
    };
    let (first, first_id) = create(Sandbox::new());
    let row = raw::proc_row(first_id as libc::c_int);
    if row.as_ref().map(|row| (row.key, row.perms)) != Some((0, 0o600)) {
        first.fail(
            format!("queue {first_id} is not an IPC_PRIVATE queue with mode 600: {row:?}"),
            "Key::PRIVATE is IPC_PRIVATE, key 0: msgget(IPC_PRIVATE, IPC_CREAT | 0o600)",
        );
    }
    assert_msgq_transcript!(first);
    let (second, second_id) = create(first.sandbox);
    if second_id == first_id {
        second.fail(
            format!("the second IPC_PRIVATE queue has the same identifier {first_id}"),
            "IPC_PRIVATE always creates a new queue",
        );
    }
    let removed = lab()
        .cmd_in(second.sandbox, ["remove", "--id", &first_id.to_string()])
        .section(TASK_1)
        .keep_sysv_objects()
        .run();
    removed.expect_success();
    let last = lab()
        .cmd_in(removed.sandbox, ["remove", "--id", &second_id.to_string()])
        .section(TASK_1)
        .run();
    last.expect_success();
}

#[test]
fn remove_of_a_missing_queue_is_a_clear_error() {
    let sandbox = sandbox();
    let key = format!("{:#010x}", sandbox.key(1) as u32);
    let run = on_queue(sandbox, "remove", &[]).section(TASK_1).run();
    run.expect_code(1);
    if !run.stderr.contains(&key) {
        run.fail(
            "the error did not name the key made from the key file",
            "msgget(key, 0) fails with ENOENT when no queue has the key ftok made",
        );
    }
    assert_msgq_transcript!(run);
    let run = lab()
        .cmd(["remove", "--id", &unused_id().to_string()])
        .section(TASK_1)
        .run();
    if !run.stderr.contains("EINVAL") {
        run.fail(
            "did not report EINVAL for an identifier that names no queue",
            "msgctl returns -1 and sets errno: return Err(Errno::last())",
        );
    }
    run.expect_code(1);
}

// ---- TODO 2: send and receive ----------------------------------------------

/// Why a received text can differ from the one sent, from its length.
fn check_text_lengths(run: &Run, expected: &[usize]) {
    for (line, &want) in run.stdout_lines().iter().zip(expected) {
        let Some(got) = number_after(line, ", ") else {
            continue;
        };
        let got = got as usize;
        if got == want + std::mem::size_of::<libc::c_long>() {
            run.fail(
                format!("a message of {want} bytes came back with {got}"),
                "msgsz counts the text only: msgsnd(id, buf, text.len(), flags), not the \
                 size of the long in front of it or of the whole MsgBuf",
            );
        }
        if got > want {
            run.fail(
                format!("a message of {want} bytes came back with {got}"),
                "msgrcv returns the length of the text it stored: keep mtext[..length], \
                 not the whole buffer",
            );
        }
        if got < want {
            run.fail(
                format!("a message of {want} bytes came back with {got}"),
                "msgsnd sends msgsz bytes of text: pass text.len() (all of it, copied \
                 into the buffer first), and keep all that msgrcv says it stored",
            );
        }
    }
}

#[test]
fn messages_keep_their_boundaries() {
    // Four messages, one of them empty: a queue never glues or splits them.
    let mut vary = Varied::new();
    let texts = [vary.word(1), vary.word(2), vary.word(7), String::new()];
    let (sandbox, _) = sandbox_with_queue(0o600);
    let args: Vec<String> = texts.iter().map(|text| format!("1:{text}")).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sent = on_queue(sandbox, "send", &args)
        .section(TASK_2)
        .keep_sysv_objects()
        .run();
    sent.expect_success();
    let run = on_queue(sent.sandbox, "receive", &["--count", "4"])
        .section(TASK_2)
        .why_if_timeout(
            "receive waited for a message that was never there: each msgsnd must add \
             exactly one message, and each msgrcv take exactly one",
        )
        .keep_sysv_objects()
        .run();
    run.expect_success();
    check_text_lengths(&run, &[1, 2, 7, 0]);
    let expected: String = texts
        .iter()
        .map(|text| format!("type 1, {} bytes: {text:?}\n", text.len()))
        .collect();
    if run.stdout != expected {
        run.fail(
            "did not print the four messages sent, in order, each with its text",
            "each msgsnd adds one message and each msgrcv takes one, in order, with its \
             type and exactly its text",
        );
    }
    let masks = texts[..3]
        .iter()
        .zip(["[TEXT1]", "[TEXT2]", "[TEXT7]"])
        .fold(Masks::new(), |masks, (text, label)| {
            masks.value(format!("{text:?}"), label)
        });
    assert_msgq_transcript!(run, &masks);
    remove_with_lab(run.sandbox, TASK_2);
}

/// The types of the messages in the mixed queue, in the order they are sent.
const MIXED_TYPES: [libc::c_long; 5] = [1, 3, 2, 3, 1];

/// A queue holding messages of types 1, 3, 2, 3, 1, sent by the test, with
/// texts of 3, 5, 3, 7 and 3 random letters; and those texts.
fn mixed_queue(vary: &mut Varied) -> (Sandbox, libc::c_int, Vec<String>) {
    let (sandbox, id) = sandbox_with_queue(0o600);
    let texts: Vec<String> = [3, 5, 3, 7, 3].map(|len| vary.word(len)).to_vec();
    for (mtype, text) in MIXED_TYPES.iter().zip(&texts) {
        raw::send(id, *mtype, text.as_bytes(), 0).expect("grader: msgsnd failed");
    }
    (sandbox, id, texts)
}

/// Receives everything `msgtyp` selects from the mixed queue, and checks
/// the order against `expected` (the messages' numbers, from 1, in the
/// order they were sent) and how many messages are left.
/// Returns the run and the masks of the texts for its snapshot.
fn select_from_mixed_queue(
    vary: &mut Varied,
    msgtyp: &str,
    expected: &[usize],
    left: u64,
    why: &str,
) -> (Run, Masks) {
    let (sandbox, id, texts) = mixed_queue(vary);
    let run = on_queue(sandbox, "receive", &["--type", msgtyp, "--all"])
        .section(TASK_2)
        .why_if_timeout(
            "receive --all uses IPC_NOWAIT: msgrcv must get the flags unchanged, and then \
             fails with ENOMSG instead of waiting once nothing matches",
        )
        .keep_sysv_objects()
        .run();
    run.expect_success();
    // Each message received, by its number in the order of sending (0: unknown).
    let got: Vec<usize> = run
        .stdout_lines()
        .iter()
        .map(|line| {
            let text = line.rsplit(": ").next().unwrap_or("").trim_matches('"');
            texts.iter().position(|t| t == text).map_or(0, |at| at + 1)
        })
        .collect();
    let describe = |numbers: &[usize]| {
        let words: Vec<String> = numbers
            .iter()
            .map(|&n| match n {
                0 => "a message never sent".to_string(),
                n => format!("#{n} (type {})", MIXED_TYPES[n - 1]),
            })
            .collect();
        format!("[{}]", words.join(", "))
    };
    if got != expected {
        run.fail(
            format!(
                "--type {msgtyp} received {}, expected {} (numbered in the order sent)",
                describe(&got),
                describe(expected)
            ),
            why.to_string(),
        );
    }
    let remaining = raw::stat(id).map(|stat| stat.msg_qnum);
    if remaining != Some(left) {
        run.fail(
            format!("{remaining:?} messages are left in the queue, expected {left}"),
            why.to_string(),
        );
    }
    let masks = texts
        .iter()
        .zip(["[ONE]", "[THREE]", "[TWO]", "[THREE-B]", "[UNO]"])
        .fold(Masks::new(), |masks, (text, label)| {
            masks.value(format!("{text:?}"), label)
        });
    (run, masks)
}

#[test]
fn receive_type_zero_takes_the_first_message_whatever_its_type() {
    let mut vary = Varied::new();
    let (run, masks) = select_from_mixed_queue(
        &mut vary,
        "0",
        &[1, 2, 3, 4, 5],
        0,
        "msgtyp 0 takes the first message in the queue: messages of every type come \
         out in the order they were sent",
    );
    assert_msgq_transcript!(run, &masks);
    remove_with_lab(run.sandbox, TASK_2);
}

#[test]
fn receive_positive_type_takes_the_first_message_of_that_type() {
    let mut vary = Varied::new();
    let (run, masks) = select_from_mixed_queue(
        &mut vary,
        "3",
        &[2, 4],
        3,
        "msgtyp 3 takes the first message of type 3 and nothing else: pass msgtyp on \
         to msgrcv unchanged",
    );
    assert_msgq_transcript!(run, &masks);
    remove_with_lab(run.sandbox, TASK_2);
}

#[test]
fn receive_negative_type_takes_the_lowest_type_first() {
    let mut vary = Varied::new();
    let (run, masks) = select_from_mixed_queue(
        &mut vary,
        "-2",
        &[1, 5, 3],
        2,
        "msgtyp -2 takes the message of the lowest type that is at most 2, the oldest \
         first: type 1 before type 2, and never type 3. Pass msgtyp on unchanged, sign \
         included",
    );
    assert_msgq_transcript!(run, &masks);
    remove_with_lab(run.sandbox, TASK_2);
}

#[test]
fn receive_nowait_on_an_empty_queue_fails_with_enomsg() {
    let (sandbox, id) = sandbox_with_queue(0o600);
    let run = on_queue(sandbox, "receive", &["--nowait"])
        .section(TASK_2)
        .why_if_timeout(
            "without IPC_NOWAIT, msgrcv waits for a message that never comes: pass the \
             flags on to msgrcv",
        )
        .keep_sysv_objects()
        .run();
    if !run.stderr.contains("ENOMSG") {
        run.fail(
            "did not report ENOMSG for an empty queue",
            "msgrcv with IPC_NOWAIT fails with ENOMSG when no message matches: return \
             Err(Errno::last())",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(run);

    // A message of another type does not count.
    let mut vary = Varied::new();
    let text = word_of(&mut vary, 3, 12);
    raw::send(id, 1, text.as_bytes(), 0).expect("grader: msgsnd failed");
    let run = on_queue(run.sandbox, "receive", &["--type", "2", "--nowait"])
        .section(TASK_2)
        .keep_sysv_objects()
        .run();
    if !run.stderr.contains("ENOMSG") || raw::stat(id).map(|s| s.msg_qnum) != Some(1) {
        run.fail(
            "did not fail with ENOMSG, leaving the message of type 1 in place",
            "msgtyp 2 selects messages of type 2 only",
        );
    }
    run.expect_code(1);
    // And one that matches is taken at once.
    let run = on_queue(run.sandbox, "receive", &["--type", "1", "--nowait"])
        .section(TASK_2)
        .keep_sysv_objects()
        .run();
    run.expect_success();
    if run.stdout != format!("type 1, {} bytes: {text:?}\n", text.len()) {
        run.fail(
            "with IPC_NOWAIT, did not take the message that was there",
            "IPC_NOWAIT only stops msgrcv from waiting: a message that matches is \
             taken at once",
        );
    }
    remove_with_lab(run.sandbox, TASK_2);
}

#[test]
fn a_message_larger_than_msgmax_is_refused() {
    let msgmax: u64 = kernel_limit("msgmax");
    let size = (msgmax + 1).to_string();
    let (sandbox, id) = sandbox_with_queue(0o600);
    let run = on_queue(sandbox, "send", &["--size", &size, "1:x"])
        .section(TASK_2)
        .keep_sysv_objects()
        .run();
    if run.code() == Some(0) {
        run.fail(
            format!("sent a message of {size} bytes, more than msgmax ({msgmax})"),
            "msgsnd fails with EINVAL for a text longer than msgmax: return the error",
        );
    }
    if raw::stat(id).map(|s| s.msg_qnum) != Some(0) {
        run.fail(
            "something reached the queue",
            "the message is refused whole",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(
        run,
        &Masks::new()
            .value(size.clone(), "[MSGMAX+1]")
            .value(format!("({msgmax} bytes)"), "([MSGMAX] bytes)")
    );
    // msgmax bytes exactly is allowed: one message of that size arrives.
    let run = on_queue(run.sandbox, "send", &["--size", &msgmax.to_string(), "1:x"])
        .section(TASK_2)
        .keep_sysv_objects()
        .run();
    run.expect_success();
    let arrived = raw::stat(id).map(|s| (s.msg_qnum, s.__msg_cbytes));
    if arrived != Some((1, msgmax)) {
        run.fail(
            format!(
                "a message of msgmax bytes did not arrive whole: (messages, bytes) {arrived:?}"
            ),
            "msgsz is the text's length, up to msgmax: send text.len() bytes",
        );
    }
    remove_with_lab(run.sandbox, TASK_2);
}

#[test]
fn receive_refuses_a_longer_message_unless_told_to_cut_it() {
    let mut vary = Varied::new();
    let text = word_of(&mut vary, 5, 12);
    let max = vary.size(2, 4);
    let max_arg = format!("--max-bytes {max}");
    let (sandbox, id) = sandbox_with_queue(0o600);
    raw::send(id, 1, text.as_bytes(), 0).expect("grader: msgsnd failed");
    let run = on_queue(sandbox, "receive", &["--max-bytes", &max.to_string()])
        .section(TASK_2)
        .keep_sysv_objects()
        .run();
    if run.code() == Some(0) {
        run.fail(
            "received a message into fewer bytes than its text has",
            "msgrcv fails with E2BIG when the text is longer than msgsz (unless \
             MSG_NOERROR): pass max_bytes as msgsz, and never more than MAX_TEXT",
        );
    }
    if raw::stat(id).map(|s| s.msg_qnum) != Some(1) {
        run.fail(
            "the message is gone after E2BIG",
            "after E2BIG the message stays in the queue",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(
        run,
        &Masks::new().value(max_arg.clone(), "--max-bytes [MAX]")
    );

    let run = on_queue(
        run.sandbox,
        "receive",
        &["--max-bytes", &max.to_string(), "--noerror"],
    )
    .section(TASK_2)
    .keep_sysv_objects()
    .run();
    run.expect_success();
    if run.stdout != format!("type 1, {max} bytes: {:?}\n", &text[..max]) {
        run.fail(
            "with --noerror, did not print the text cut to --max-bytes",
            "with MSG_NOERROR, msgrcv cuts the text to msgsz and returns that length",
        );
    }
    remove_with_lab(run.sandbox, TASK_2);
}

#[test]
fn a_queue_the_mode_forbids_refuses_the_program() {
    // This test is about permissions, so its queues are not 0600: 0400 lets
    // the owner read only, 0200 write only. The program runs without root's
    // capabilities, which would skip the check.
    let mut vary = Varied::new();
    let text = word_of(&mut vary, 3, 12);
    // The test puts a message in while the mode still lets its owner write.
    let (sandbox, id) = sandbox_with_queue(0o600);
    raw::send(id, 1, text.as_bytes(), 0).expect("grader: msgsnd failed");
    raw::set_mode(id, 0o400);
    let run = on_queue(sandbox, "send", &["1:hello"])
        .section(TASK_2)
        .unprivileged()
        .keep_sysv_objects()
        .run();
    if !run.stderr.contains("EACCES") {
        run.fail(
            "did not report EACCES when writing to a queue with mode 0400",
            "msgsnd checks the queue's mode and fails with EACCES: return Err(Errno::last())",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(run);
    // Reading is what 0400 allows.
    let run = on_queue(run.sandbox, "receive", &["--nowait"])
        .section(TASK_2)
        .unprivileged()
        .keep_sysv_objects()
        .run();
    run.expect_success();
    if run.stdout != format!("type 1, {} bytes: {text:?}\n", text.len()) {
        run.fail(
            "could not receive from a queue with mode 0400, which its owner may read",
            "only what the mode forbids fails: pass the call's result on as it is",
        );
    }
    remove_with_lab(run.sandbox, TASK_2);

    let (sandbox, id) = sandbox_with_queue(0o200);
    let message = format!("1:{text}");
    let run = on_queue(sandbox, "send", &[&message])
        .section(TASK_2)
        .unprivileged()
        .keep_sysv_objects()
        .run();
    run.expect_success();
    let run = on_queue(run.sandbox, "receive", &["--nowait"])
        .section(TASK_2)
        .unprivileged()
        .keep_sysv_objects()
        .run();
    if !run.stderr.contains("EACCES") {
        run.fail(
            "did not report EACCES when reading a queue with mode 0200",
            "msgrcv checks the queue's mode and fails with EACCES",
        );
    }
    run.expect_code(1);
    // /proc/sysvipc/msg, which needs no read permission on the queue.
    let left = raw::proc_row(id).map(|row| (row.qnum, row.cbytes));
    if left != Some((1, text.len() as u64)) {
        run.fail(format!("the queue with mode 0200 holds (messages, bytes) {left:?} after a send and a refused receive"),
            "writing is what 0200 allows: the send must arrive whole, and the refused \
             receive must leave it there",
        );
    }
    remove_with_lab(run.sandbox, TASK_2);
}

#[test]
fn a_blocked_receiver_wakes_with_eidrm_when_the_queue_is_removed() {
    let (sandbox, id) = sandbox_with_queue(0o600);
    let mut receiver = on_queue(sandbox, "receive", &[])
        .section(TASK_2)
        .why_if_timeout(
            "the receiver never returned from msgrcv after the queue was removed: \
             msgrcv fails with EIDRM then; return that error",
        )
        .start();
    receiver.wait_until_blocked_in(libc::SYS_msgrcv, HANG_TIMEOUT);
    raw::remove(id);
    let run = receiver.wait(HANG_TIMEOUT);
    if !run.stderr.contains("EIDRM") {
        run.fail(
            "did not report EIDRM when the queue was removed under the receiver",
            "a msgrcv blocked on a queue that IPC_RMID removes fails with EIDRM: return \
             Err(Errno::last())",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(run);
}

#[test]
fn a_blocked_sender_waits_until_there_is_room() {
    let mut vary = Varied::new();
    let first_text = word_of(&mut vary, 5, 20);
    let second_text = word_of(&mut vary, 1, first_text.len());
    let (sandbox, id) = sandbox_with_queue(0o600);
    raw::set_qbytes(id, first_text.len() as libc::msglen_t);
    raw::send(id, 1, first_text.as_bytes(), 0).expect("grader: msgsnd failed");
    let message = format!("1:{second_text}");
    let mut sender = on_queue(sandbox, "send", &[&message])
        .section(TASK_2)
        .why_if_timeout(
            "the sender never finished although a message was taken off the full queue: \
             a blocked msgsnd goes on as soon as there is room",
        )
        .keep_sysv_objects()
        .start();
    sender.wait_until_blocked_in(libc::SYS_msgsnd, HANG_TIMEOUT);
    let first = raw::receive(id, 0, REPLY_TIMEOUT);
    let run = sender.wait(HANG_TIMEOUT);
    run.expect_success();
    let second = raw::receive(id, 0, REPLY_TIMEOUT);
    let texts =
        [first, second].map(|m| m.map(|(_, text)| String::from_utf8_lossy(&text).into_owned()));
    if texts != [Some(first_text), Some(second_text.clone())] {
        run.fail(
            "the queue did not give the first message, then the sender's",
            "msgsnd without IPC_NOWAIT waits for room, then sends the message whole",
        );
    }
    assert_msgq_transcript!(
        run,
        &Masks::new()
            .value(message, "1:[TEXT]")
            .value(format!(", {} bytes", second_text.len()), ", [LENGTH] bytes")
    );
}

#[test]
fn queues_made_by_ipcmk_are_used_by_identifier() {
    // ipcmk picks a random key: the identifier is all a user is told.
    let (sandbox, id) = if in_path("ipcmk") {
        let made = Cmd::new("ipcmk", Sandbox::new())
            .args(["-Q", "-p", "0600"])
            .announces_sysv_ids(SysvKind::MessageQueue, "Message queue id: ")
            .keep_sysv_objects()
            .run();
        made.expect_success();
        let id = number_after(&made.stdout, "Message queue id: ")
            .unwrap_or_else(|| panic!("grader: ipcmk printed no identifier: {}", made.stdout));
        (made.sandbox, id as libc::c_int)
    } else {
        note("ipcmk is not installed: the test made the queue with msgget itself");
        sandbox_with_queue(0o600)
    };
    let id = id.to_string();
    let by_id = |sandbox: Sandbox, args: &[&str]| {
        lab()
            .cmd_in(sandbox, args.iter().copied())
            .args(["--id", &id])
            .timeout(HANG_TIMEOUT)
            .section(TASK_2)
    };
    let mut vary = Varied::new();
    let text = word_of(&mut vary, 3, 12);
    let sent = by_id(sandbox, &["send", &format!("2:{text}")])
        .keep_sysv_objects()
        .run();
    sent.expect_success();
    let queued = raw::stat(id.parse().unwrap_or(-1)).map(|s| (s.msg_qnum, s.__msg_cbytes));
    if queued != Some((1, text.len() as u64)) {
        sent.fail(
            format!("the queue holds (messages, bytes) {queued:?} after one send"),
            "a queue is a queue, whoever made it: --id names it directly",
        );
    }
    let run = by_id(sent.sandbox, &["receive"]).keep_sysv_objects().run();
    run.expect_success();
    if run.stdout != format!("type 2, {} bytes: {text:?}\n", text.len()) {
        run.fail(
            "did not receive the message sent to the queue ipcmk made",
            "a queue is a queue, whoever made it: --id names it directly",
        );
    }
    assert_msgq_transcript!(
        run,
        &Masks::new()
            .value(format!("{text:?}"), "[TEXT]")
            .value(format!("{} bytes", text.len()), "[LENGTH] bytes")
            .value(format!("--id {id}"), "--id [MSQID]")
    );
    let removed = by_id(run.sandbox, &["remove"]).run();
    removed.expect_success();
}

// ---- TODO 3: look at a queue and change it -------------------------------------

/// The value `stat` printed for `field`, if it printed the field.
fn stat_field(run: &Run, field: &str) -> Option<String> {
    run.stdout.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(field)).then(|| words.next().unwrap_or("").to_string())
    })
}

#[test]
fn stat_shows_the_queues_msqid_ds() {
    let mut vary = Varied::new();
    let (first, second) = (word_of(&mut vary, 1, 20), word_of(&mut vary, 1, 20));
    let cbytes = first.len() + second.len();
    let (sandbox, id) = sandbox_with_queue(0o600);
    let sent = on_queue(
        sandbox,
        "send",
        &[&format!("1:{first}"), &format!("2:{second}")],
    )
    .section(TASK_3)
    .keep_sysv_objects()
    .run();
    sent.expect_success();
    let run = on_queue(sent.sandbox, "stat", &[])
        .section(TASK_3)
        .keep_sysv_objects()
        .run();
    run.expect_success();
    // SAFETY: geteuid and getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let row = raw::proc_row(id).unwrap_or_else(|| panic!("grader: queue {id} is gone"));
    let msgmnb: u64 = kernel_limit("msgmnb");
    for (field, expected, why) in [
        (
            "msqid",
            id.to_string(),
            "the identifier of the queue the key leads to",
        ),
        (
            "msg_perm.uid",
            uid.to_string(),
            "the owner: our effective user ID",
        ),
        (
            "msg_perm.cuid",
            uid.to_string(),
            "the creator: our effective user ID",
        ),
        (
            "msg_perm.gid",
            gid.to_string(),
            "the owner's group: our effective group ID",
        ),
        (
            "msg_perm.mode",
            "0600".to_string(),
            "the mode the queue was created with",
        ),
        ("msg_qnum", "2".to_string(), "two messages are in the queue"),
        ("msg_cbytes", cbytes.to_string(), "the bytes of their texts"),
        (
            "msg_qbytes",
            msgmnb.to_string(),
            "a new queue may hold msgmnb bytes",
        ),
        (
            "msg_lspid",
            row.lspid.to_string(),
            "the pid of the last msgsnd, as the kernel lists it",
        ),
        ("msg_lrpid", "0".to_string(), "nobody has received yet"),
        (
            "msg_rtime",
            "0".to_string(),
            "nobody has received yet: 0, never",
        ),
    ] {
        if stat_field(&run, field).as_deref() != Some(expected.as_str()) {
            run.fail(
                format!(
                    "printed {field} {:?}, expected {expected}",
                    stat_field(&run, field).unwrap_or_default()
                ),
                format!(
                    "{why}. msgctl(id, IPC_STAT, &mut buf) fills the whole msqid_ds: return \
                     it as the kernel filled it"
                ),
            );
        }
    }
    if in_path("ipcs") {
        let ipcs = Cmd::new("ipcs", Sandbox::new())
            .args(["-q", "-i", &id.to_string()])
            .run();
        ipcs.expect_success();
        for word in [
            "mode=0600",
            &format!("cbytes={cbytes}"),
            "qnum=2",
            &format!("lspid={}", row.lspid),
        ] {
            if !ipcs.stdout.contains(word) {
                run.fail(
                    format!("ipcs -q -i {id} does not show {word}:\n{}", ipcs.stdout),
                    "stat and ipcs must describe the same queue",
                );
            }
        }
    } else {
        note("ipcs is not installed: stat was compared with /proc/sysvipc/msg only");
    }
    assert_msgq_transcript!(
        run,
        &Masks::new()
            .value(
                format!("msg_qbytes      {msgmnb}"),
                "msg_qbytes      [MSGMNB]"
            )
            .value(
                format!("msg_cbytes      {cbytes}"),
                "msg_cbytes      [CBYTES]"
            )
    );
    remove_with_lab(run.sandbox, TASK_3);
}

#[test]
fn set_max_bytes_changes_msg_qbytes_and_nothing_else() {
    let mut vary = Varied::new();
    let qbytes = vary.size(10, 100);
    let (sandbox, id) = sandbox_with_queue(0o600);
    let before = raw::stat(id).expect("grader: IPC_STAT failed");
    let run = on_queue(sandbox, "set-max-bytes", &[&qbytes.to_string()])
        .section(TASK_3)
        .keep_sysv_objects()
        .run();
    run.expect_success();
    let why_set = "IPC_SET copies uid, gid and mode along with msg_qbytes: fill the buffer \
                   with IPC_STAT first and change msg_qbytes only";
    let Some(after) = raw::stat(id) else {
        run.fail(
            "IPC_SET changed the queue's mode from 0600 to one that denies reading it",
            why_set,
        );
    };
    if after.msg_qbytes != qbytes as libc::msglen_t {
        run.fail(
            "msg_qbytes is not the value given to set-max-bytes",
            "set msg_qbytes in the msqid_ds and hand it to msgctl(id, IPC_SET, …)",
        );
    }
    if after.msg_perm.mode & 0o777 != before.msg_perm.mode & 0o777 {
        run.fail(
            format!(
                "IPC_SET changed the queue's mode from 0600 to {:04o}",
                after.msg_perm.mode & 0o777
            ),
            why_set,
        );
    }
    if (after.msg_perm.uid, after.msg_perm.gid) != (before.msg_perm.uid, before.msg_perm.gid) {
        run.fail("IPC_SET changed the queue's owner", why_set);
    }
    if number_after(&run.stdout, "msg_qbytes ") != Some(before.msg_qbytes as i64) {
        run.fail(
            "did not print the old value of msg_qbytes",
            "set_max_bytes returns the msg_qbytes the queue had before",
        );
    }

    // Two messages of half of msg_qbytes fill the queue: a third does not fit.
    let text = vary.word(qbytes / 2);
    let message = format!("1:{text}");
    let run = on_queue(
        run.sandbox,
        "send",
        &["--nowait", &message, &message, &message],
    )
    .section(TASK_3)
    .why_if_timeout(
        "the third message waited for room: with IPC_NOWAIT, msgsnd fails with \
         EAGAIN on a full queue instead",
    )
    .keep_sysv_objects()
    .run();
    if !run.stderr.contains("EAGAIN") {
        run.fail(
            "did not report EAGAIN when the queue was full",
            "two messages of half of msg_qbytes each fill the queue, and msgsnd with \
             IPC_NOWAIT fails with EAGAIN",
        );
    }
    run.expect_code(1);
    if raw::stat(id).map(|s| s.msg_qnum) != Some(2) {
        run.fail(
            "the queue does not hold the two messages that fit",
            "msgsnd sends msgsz bytes of text, no more: two texts of half of msg_qbytes fit",
        );
    }
    assert_msgq_transcript!(
        run,
        &Masks::new()
            .value(message.clone(), "1:[HALF]")
            .value(format!("{} bytes", text.len()), "[HALF] bytes")
    );
    remove_with_lab(run.sandbox, TASK_3);
}

#[test]
fn raising_msg_qbytes_above_msgmnb_needs_privilege() {
    let msgmnb: libc::msglen_t = kernel_limit("msgmnb");
    let more = (msgmnb + 1).to_string();
    let mut vary = Varied::new();
    let lower = vary.size(1, msgmnb as usize - 1);
    let (sandbox, id) = sandbox_with_queue(0o600);
    // Lowering msg_qbytes needs no privilege: the owner may do it.
    let run = on_queue(sandbox, "set-max-bytes", &[&lower.to_string()])
        .section(TASK_3)
        .unprivileged()
        .keep_sysv_objects()
        .run();
    run.expect_success();
    if raw::stat(id).map(|s| s.msg_qbytes) != Some(lower as libc::msglen_t) {
        run.fail(
            "the owner could not lower msg_qbytes",
            "the queue's owner may lower msg_qbytes without privilege: msgctl(IPC_SET) \
             with the buffer IPC_STAT filled",
        );
    }
    raw::set_qbytes(id, msgmnb);
    let run = on_queue(run.sandbox, "set-max-bytes", &[&more])
        .section(TASK_3)
        .unprivileged()
        .keep_sysv_objects()
        .run();
    if !run.stderr.contains("EPERM") {
        run.fail(
            "did not report EPERM",
            "raising msg_qbytes above msgmnb needs CAP_SYS_RESOURCE: msgctl(IPC_SET) fails \
             with EPERM; return Err(Errno::last())",
        );
    }
    if raw::stat(id).map(|s| s.msg_qbytes) != Some(msgmnb) {
        run.fail("msg_qbytes changed", "a refused IPC_SET changes nothing");
    }
    run.expect_code(1);
    assert_msgq_transcript!(
        run,
        &Masks::new()
            .value(more.clone(), "[MSGMNB+1]")
            .value(format!("({msgmnb})"), "([MSGMNB])")
    );
    remove_with_lab(run.sandbox, TASK_3);
}

#[test]
fn stat_of_a_queue_that_does_not_exist_is_a_clear_error() {
    let unused = unused_id();
    let run = lab()
        .cmd(["stat", "--id", &unused.to_string()])
        .section(TASK_3)
        .run();
    if !run.stderr.contains("EINVAL") {
        run.fail(
            "did not report EINVAL for an identifier that names no queue",
            "msgctl(IPC_STAT) returns -1 with errno EINVAL: return Err(Errno::last())",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(
        run,
        &Masks::new().value(format!("--id {unused}"), "--id [MSQID]")
    );
    // The same command on a queue that exists describes it.
    let (sandbox, id) = sandbox_with_queue(0o600);
    let run = lab()
        .cmd_in(sandbox, ["stat", "--id", &id.to_string()])
        .section(TASK_3)
        .keep_sysv_objects()
        .run();
    run.expect_success();
    if stat_field(&run, "msqid") != Some(id.to_string()) {
        run.fail(
            "stat --id of an existing queue did not describe it",
            "msgctl(id, IPC_STAT, &mut buf) fills the msqid_ds: return it",
        );
    }
    remove_with_lab(run.sandbox, TASK_3);
}

// ---- TODO 4: the client --------------------------------------------------------

/// The lab's client, in a sandbox of its own, asking the server whose key
/// file is in `server` (shown as `queue.key`). Its private queue is checked
/// for by the identifier it announces.
fn client_of(server: &Sandbox, args: &[&str]) -> Cmd {
    let key_file = server.path(KEY_FILE);
    lab()
        .cmd(["client", "--key-file"])
        .arg(&key_file)
        .args(args.iter().copied())
        .alias(&key_file, KEY_FILE)
        .timeout(HANG_TIMEOUT)
        .section(TASK_4)
        .announces_sysv_ids(SysvKind::MessageQueue, "private queue ")
        .why_if_timeout(
            "the client never got its answer and never gave up: it must wait on its own \
             private queue (the one named in the request), and treat EINTR from msgrcv \
             (the time limit's SIGALRM) as the end",
        )
}

/// Fails the run unless the test's server saw the notes' request from it.
fn check_request(run: &Run, seen: Option<raw::Seen>, request_type: libc::c_long) {
    let Some(seen) = seen else {
        run.fail(
            "the server queue received no request",
            "send the request to the server's queue (msgget(key, 0o200)) with msgsnd",
        );
    };
    if seen.length != raw::REQ_MSG_SIZE {
        run.fail(
            format!(
                "the request's text was {} bytes long, not {}",
                seen.length,
                raw::REQ_MSG_SIZE
            ),
            "the notes' request is { long mtype; int client_mq_id; }, sent with msgsz = \
             sizeof(int): its text is protocol::request_text(private queue), 4 bytes",
        );
    }
    if seen.mtype != request_type {
        run.fail(
            format!(
                "the request had type {}, expected {request_type}",
                seen.mtype
            ),
            "the request's mtype says what is asked: send it with request_type",
        );
    }
    let announced = number_after(&run.stdout, "private queue ").map(|id| id as libc::c_int);
    if seen.client != announced {
        run.fail(
            format!(
                "the request named queue {:?}, but the client announced {announced:?}",
                seen.client
            ),
            "the request carries the identifier of the client's own private queue",
        );
    }
    let private = seen.client_row.map(|row| (row.key, row.perms));
    if private != Some((0, 0o600)) {
        run.fail(
            format!("the reply queue's (key, mode) was {private:?}, not (0, 0o600)"),
            "the client's reply queue is msgget(IPC_PRIVATE, IPC_CREAT | 0o600)",
        );
    }
}

/// Fails the test at once if the program panicked: any other message would
/// be beside the point. (A client that hangs is judged by its request
/// first: a malformed one is why no answer came.)
fn fail_if_panicked(run: &Run) {
    if run.stderr.contains("panicked at") {
        run.check_finished_cleanly();
    }
}

/// The test's server's report, or a failure of the test's own.
fn seen_by(server: std::thread::JoinHandle<Option<raw::Seen>>) -> Option<raw::Seen> {
    server
        .join()
        .unwrap_or_else(|_| panic!("grader: the test's server thread failed"))
}

#[test]
fn client_sends_the_notes_request_and_prints_the_ticket() {
    let mut vary = Varied::new();
    let ticket = vary.size(2, 9999);
    let reply = format!("ticket {ticket}, served by pid {}", vary.size(2, 4_000_000));
    let (server, id) = sandbox_with_queue(0o600);
    let answering = raw::serve_once(id, raw::RESP_TICKET, reply.clone());
    let run = client_of(&server, &[]).run_unchecked();
    fail_if_panicked(&run);
    check_request(&run, seen_by(answering), 1);
    run.check_finished_cleanly();
    run.expect_success();
    let expected = format!(
        "client: private queue {}\n{reply}\n",
        number_after(&run.stdout, "private queue ").unwrap_or(-1)
    );
    if run.stdout != expected {
        run.fail(
            "did not print the server's reply as it came",
            "print the reply's text, up to its NUL: protocol::reply_of(&response.text)",
        );
    }
    assert_msgq_transcript!(
        run,
        &Masks::new().value(format!("ticket {ticket},"), "ticket [N],")
    );
}

#[test]
fn client_reports_a_refusal_and_still_removes_its_queue() {
    let mut vary = Varied::new();
    let request_type = vary.size(3, 99);
    let refusal = format!("unknown request type {request_type}");
    let (server, id) = sandbox_with_queue(0o600);
    let answering = raw::serve_once(id, raw::RESP_ERROR, refusal.clone());
    let run = client_of(&server, &["--type", &request_type.to_string()]).run_unchecked();
    fail_if_panicked(&run);
    check_request(&run, seen_by(answering), request_type as libc::c_long);
    run.check_finished_cleanly();
    if run.code() == Some(0) {
        run.fail(
            "reported success for a refused request",
            "a response of type RESP_ERROR (2) is a refusal: fail with `the server \
             refused: TEXT`",
        );
    }
    run.expect_code(1);
    if !run
        .stderr
        .contains(&format!("the server refused: {refusal}"))
    {
        run.fail(
            "did not report the server's refusal in its words",
            "fail with `the server refused: REPLY`, REPLY being the response's text up to \
             its NUL",
        );
    }
    assert_msgq_transcript!(
        run,
        &Masks::new()
            .value(format!("--type {request_type}"), "--type [T]")
            .value(refusal, "unknown request type [T]")
    );
}

#[test]
fn client_without_a_server_says_so() {
    let server = sandbox();
    let key = format!("{:#010x}", server.key(1) as u32);
    let run = client_of(&server, &[]).run();
    if !run.stderr.contains("no server is listening") {
        run.fail(
            "did not say that no server is listening",
            "msgget(server_key, 0o200) fails with ENOENT when no queue has the key: \
             report `no server is listening on key 0xKEY`",
        );
    }
    if !run.stderr.contains(&key) {
        run.fail(
            "did not name the key the server would listen on",
            "report `no server is listening on key 0xKEY`, the key as {:#010x}",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(run);
}

#[test]
fn client_gives_up_at_its_time_limit_and_removes_its_queue() {
    // A queue under the server's key, and nobody serving it.
    let (server, id) = sandbox_with_queue(0o600);
    // From 1 ms, when the time is up before msgrcv even starts, to 100 ms.
    let mut vary = Varied::new();
    let timeout = vary.between(1, 100).to_string();
    let started = Instant::now();
    let run = client_of(&server, &["--timeout-ms", &timeout]).run();
    if !run.stderr.contains("before the time limit") {
        run.fail(
            "did not report that no reply came before the time limit",
            "when the timer's SIGALRM interrupts msgrcv, it fails with EINTR: report `no \
             reply from the server before the time limit` (and the guard removes the \
             private queue)",
        );
    }
    if raw::stat(id).map(|s| s.msg_qnum) != Some(1) {
        run.fail(
            "the request did not reach the server's queue",
            "send the request before waiting for the response",
        );
    }
    if started.elapsed() > Duration::from_secs(3) {
        run.fail(
            "took more than 3 s to give up after a limit of at most 100 ms",
            "EINTR ends the wait: do not call msgrcv again",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(
        run,
        &Masks::new().value(format!("--timeout-ms {timeout}"), "--timeout-ms [MS]")
    );
}

// ---- TODO 5: the server ----------------------------------------------------------

/// The lab's server, started on the key of a fresh sandbox and listening.
/// Returns it, its queue's identifier, and the key.
fn start_server(args: &[&str]) -> (Running, libc::c_int, libc::c_int) {
    start_server_in(sandbox(), args)
}

/// Like [`start_server`], in a sandbox the test has prepared.
fn start_server_in(sandbox: Sandbox, args: &[&str]) -> (Running, libc::c_int, libc::c_int) {
    let key = sandbox.key(1);
    let mut server = lab()
        .cmd_in(sandbox, ["server", "--key-file", KEY_FILE])
        .args(args.iter().copied())
        .section(TASK_5)
        .why_if_timeout(
            "the server did not stop when asked: its handlers for SIGINT and SIGTERM must \
             be installed without SA_RESTART and only set a flag; msgrcv then fails with \
             EINTR, and the loop checks the flag",
        )
        .start();
    let log = server.wait_for_stdout("server: listening on queue ", SERVER_TIMEOUT);
    let id = number_after(&log, "server: listening on queue ").unwrap_or(-1) as libc::c_int;
    (server, id, key)
}

/// Why a server stops with `EINTR`.
const EINTR_WHY: &str = "msgrcv fails with EINTR whenever a signal handler runs (a child's \
                         SIGCHLD), and it is never restarted: go round the loop again, and \
                         stop only once the stop flag is set";

/// Kills the server and fails the test with what it printed. If it had
/// ended already, says so, and why when its last words tell.
fn fail_with_server(server: Running, what: String, why: &str) -> ! {
    let run = server.kill();
    if run.signal() == Some(libc::SIGKILL) {
        run.fail(what, why);
    }
    run.check_finished_cleanly();
    let ended = match (run.code(), run.signal()) {
        (Some(code), _) => format!("{what}; the server had ended with exit status {code}"),
        (None, signal) => format!("{what}; the server had been killed by signal {signal:?}"),
    };
    if run.stderr.contains("EINTR") {
        run.fail(ended, EINTR_WHY);
    }
    if run.stderr.contains("E2BIG") {
        run.fail(
            ended,
            "a request longer than msgsz makes msgrcv fail with E2BIG and stay at the head \
             of the queue: receive up to MAX_TEXT bytes and check the length with \
             protocol::client_of",
        );
    }
    run.fail(ended, "a server serves until it is asked to stop")
}

/// Asks the server for something with the test's own client (the notes'
/// client), failing the test with the server's output if it goes wrong.
fn ask(server: Running, key: libc::c_int, request_type: libc::c_long) -> (Running, raw::Reply) {
    match raw::ask(key, request_type) {
        Ok(reply) => (server, reply),
        Err(problem) => fail_with_server(
            server,
            format!("the notes' client got no answer: {problem}"),
            "receive requests on the server queue, fork, and answer from the child on the \
             client's queue (the int in the request) with a response of at most 1024 \
             bytes, NUL included",
        ),
    }
}

/// The children of process `parent`, with their states (`S`, `Z` …),
/// from `/proc/*/stat`.
fn children_of(parent: u32) -> Vec<(u32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == parent).then_some((pid, state))
        })
        .collect()
}

/// Waits until the server has no child left, and fails the test with the
/// cause that fits what is left: a zombie (never reaped), or a child still
/// running (it never left after answering).
fn wait_until_no_children(server: Running) -> Running {
    // Children end and are reaped in milliseconds: 3 s is a wide margin.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut nap = Duration::from_millis(1);
    loop {
        let children = children_of(server.pid());
        if children.is_empty() {
            return server;
        }
        if Instant::now() >= deadline {
            let zombies = children.iter().filter(|(_, state)| *state == 'Z').count();
            if zombies == children.len() {
                fail_with_server(
                    server,
                    format!("{zombies} child(ren) that had answered were never reaped"),
                    "a child that has ended stays a zombie until its parent waits for it: \
                     reap in the SIGCHLD handler, waitpid(-1, WNOHANG) until it returns 0 \
                     or -1 (reaping only at the top of the loop misses the children that \
                     end while msgrcv waits)",
                );
            }
            fail_with_server(
                server,
                format!(
                    "{} child(ren) still running long after answering",
                    children.len() - zombies
                ),
                "a child forked for one request must end once it has answered: call \
                 _exit right after msgsnd (a child that returns from its function goes \
                 on running the server's loop, as a second server)",
            );
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Stops the server with `signal` once it is idle (every child reaped,
/// blocked in msgrcv), and returns its checked run.
fn stop_server(server: Running, signal: libc::c_int) -> Run {
    let mut server = wait_until_idle(wait_until_no_children(server));
    server.signal(signal);
    let run = server.wait_unchecked(SERVER_TIMEOUT);
    if run.signal() == Some(signal) {
        run.fail(
            format!("the server was killed by signal {signal} and could not remove its queue"),
            "install handlers for SIGINT and SIGTERM that store the signal number; the \
             loop sees it after msgrcv fails with EINTR, removes the queue and returns",
        );
    }
    run.check_finished_cleanly();
    if run.code() != Some(0) && run.stderr.contains("EINTR") {
        run.fail(
            format!("the server stopped with {}", describe_status(&run)),
            EINTR_WHY,
        );
    }
    run.expect_success();
    run
}

/// Waits until the server is asleep in `msgrcv`, waiting for requests, and
/// fails the test with the cause that fits if it is elsewhere or gone.
fn wait_until_idle(mut server: Running) -> Running {
    match server.wait_until_blocked(SERVER_TIMEOUT) {
        Blocked::In(call) if call == "msgrcv" => {}
        Blocked::In(call) => fail_with_server(
            server,
            format!("the server was asleep in {call}, not in msgrcv, when it should be idle"),
            "between requests the server waits in msgrcv on its queue, and nowhere else",
        ),
        Blocked::Exited(_) => fail_with_server(
            server,
            "the server no longer waited for requests".to_string(),
            "a server serves until it is asked to stop",
        ),
        Blocked::Busy => fail_with_server(
            server,
            "the server never went back to msgrcv".to_string(),
            "after each request the server goes straight back to msgrcv",
        ),
    }
    server
}

/// "exit status N" or "signal N".
fn describe_status(run: &Run) -> String {
    match (run.code(), run.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, signal) => format!("signal {signal:?}"),
    }
}

/// A reply as failures show it: its type and its text, pid left out (it
/// differs from run to run).
fn shown(reply: &raw::Reply) -> String {
    let text = match reply.text.split_once(", served by pid ") {
        Some((ticket, _)) => format!("{ticket}, served by pid …"),
        None => reply.text.clone(),
    };
    format!("type {} {text:?}", reply.mtype)
}

/// The pid in `ticket N, served by pid P`.
fn served_by(reply: &raw::Reply) -> Option<i64> {
    number_after(&reply.text, "served by pid ")
}

#[test]
fn server_answers_each_request_from_a_child_of_its_own() {
    let (server, _, key) = start_server(&[]);
    let server_pid = i64::from(server.pid());
    let (server, first) = ask(server, key, 1);
    let (server, second) = ask(server, key, 1);
    for (reply, ticket) in [(&first, 1), (&second, 2)] {
        if reply.mtype != raw::RESP_TICKET || !reply.text.starts_with(&format!("ticket {ticket},"))
        {
            fail_with_server(
                server,
                format!(
                    "answered {}, expected ticket {ticket} (type 1)",
                    shown(reply)
                ),
                "count the tickets in the parent, before fork: a child's memory is a copy, \
                 so a count kept in a child is lost with it",
            );
        }
    }
    if served_by(&first) == Some(server_pid) || served_by(&second) == Some(server_pid) {
        fail_with_server(
            server,
            "the server answered from its own process".to_string(),
            "fork a child for each request and answer from the child, which puts its \
             own pid into the reply: the server goes back to msgrcv at once",
        );
    }
    if served_by(&first) == served_by(&second) {
        fail_with_server(
            server,
            "both requests were served by the same process".to_string(),
            "one child per request, and each child leaves with _exit after answering",
        );
    }
    let run = stop_server(server, libc::SIGTERM);
    assert_msgq_transcript!(run);
}

#[test]
fn server_removes_its_queue_when_interrupted() {
    let (server, _, key) = start_server(&[]);
    let (server, _) = ask(server, key, 1);
    let run = stop_server(server, libc::SIGINT);
    assert_msgq_transcript!(run);
}

#[test]
fn server_refuses_a_request_of_an_unknown_type() {
    let (server, _, key) = start_server(&[]);
    let (server, refused) = ask(server, key, 7);
    let (server, ticket) = ask(server, key, 1);
    if refused.mtype != raw::RESP_ERROR || refused.text != "unknown request type 7" {
        fail_with_server(
            server,
            format!("answered {} to a request of type 7", shown(&refused)),
            "refuse types other than REQ_TICKET with a RESP_ERROR response whose text is \
             protocol::unknown_type_reply(mtype)",
        );
    }
    if !ticket.text.starts_with("ticket 1,") {
        fail_with_server(
            server,
            format!(
                "answered {} after a refusal, expected ticket 1",
                shown(&ticket)
            ),
            "a refused request gets no ticket number",
        );
    }
    stop_server(server, libc::SIGTERM);
}

#[test]
fn server_ignores_a_malformed_request_and_goes_on() {
    let (server, id, key) = start_server(&[]);
    // Five bytes where the notes' request has four.
    if raw::send(id, 1, b"hello", 0).is_err() {
        fail_with_server(server, "could not send to the server".to_string(), "");
    }
    let (server, reply) = ask(server, key, 1);
    if !reply.text.starts_with("ticket 1,") {
        fail_with_server(
            server,
            format!("answered {}, expected ticket 1", shown(&reply)),
            "a malformed request is logged and ignored",
        );
    }
    let run = stop_server(server, libc::SIGTERM);
    if !run
        .stdout
        .contains("ignored a malformed request of 5 bytes")
    {
        run.fail(
            "did not log the malformed request",
            "receive up to MAX_TEXT bytes (msgsz 4 would fail with E2BIG and leave the \
             message at the head of the queue for ever), then check the length with \
             protocol::client_of",
        );
    }
    assert_msgq_transcript!(run);
}

#[test]
fn server_serves_slow_requests_at_the_same_time() {
    const WORK: Duration = Duration::from_millis(200);
    const CLIENTS: usize = 4;
    let (server, _, key) = start_server(&["--work-ms", "200"]);
    let started = Instant::now();
    let server_pid = server.pid();
    // While the clients wait, the most children of the server seen asleep
    // (in their work) at the same moment: proof of concurrency that does
    // not depend on timing.
    let mut most_asleep = 0;
    let replies: Vec<Result<raw::Reply, String>> = std::thread::scope(|scope| {
        let asking: Vec<_> = (0..CLIENTS)
            .map(|_| scope.spawn(move || raw::ask(key, 1)))
            .collect();
        while !asking.iter().all(|thread| thread.is_finished()) {
            let asleep = children_of(server_pid)
                .iter()
                .filter(|(_, state)| *state == 'S')
                .count();
            most_asleep = most_asleep.max(asleep);
            std::thread::sleep(Duration::from_millis(2));
        }
        asking
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err("panicked".to_string()))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut tickets: Vec<String> = Vec::new();
    for reply in replies {
        match reply {
            Ok(reply) => tickets.push(reply.text.split(',').next().unwrap_or("").to_string()),
            Err(problem) => fail_with_server(
                server,
                format!("a client got no answer: {problem}"),
                "every request gets its own child",
            ),
        }
    }
    tickets.sort();
    if tickets != ["ticket 1", "ticket 2", "ticket 3", "ticket 4"] {
        fail_with_server(
            server,
            format!("handed out {tickets:?}"),
            "each request gets the next number, counted in the parent",
        );
    }
    if elapsed >= WORK * 3 && most_asleep < 2 {
        fail_with_server(
            server,
            format!(
                "{CLIENTS} requests of {WORK:?} each took more than {:?}",
                WORK * 3
            ),
            "the server handled the requests one after another: fork a child for each \
             request and go straight back to msgrcv, never waiting for that child (reap \
             only with WNOHANG, in the SIGCHLD handler)",
        );
    }
    stop_server(server, libc::SIGTERM);
}

#[test]
fn server_refuses_a_key_that_already_has_a_queue() {
    // A stale queue, as a server killed with SIGKILL leaves behind.
    let (sandbox, id) = sandbox_with_queue(0o600);
    raw::send(id, 1, b"stale", 0).expect("grader: msgsnd failed");
    // A server that refuses the key stops at once: 2 s is plenty.
    let run = lab()
        .cmd_in(sandbox, ["server", "--key-file", KEY_FILE])
        .section(TASK_5)
        .timeout(Duration::from_secs(2))
        .why_if_timeout(
            "the server went on with a queue it did not create: create it with IPC_CREAT | \
             IPC_EXCL, so that msgget fails with EEXIST when the key has a queue already",
        )
        .keep_sysv_objects()
        .run();
    if raw::stat(id).map(|s| s.msg_qnum) != Some(1) {
        run.fail(
            "the stale queue was changed or removed",
            "a server must never touch a queue it did not create: it may belong to \
             another server",
        );
    }
    if !run.stderr.contains("EEXIST") {
        run.fail(
            "did not report EEXIST",
            "msgget(key, IPC_CREAT | IPC_EXCL | 0o600) fails with EEXIST: return the error \
             with the context `create the server queue with key 0xKEY`",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(run);
    // Once the stale queue is gone, a server starts on the same key.
    raw::remove(id);
    let (server, _, _) = start_server_in(run.sandbox, &[]);
    stop_server(server, libc::SIGTERM);
}

#[test]
fn server_stops_when_its_queue_is_removed_under_it() {
    let (server, id, _) = start_server(&[]);
    let server = wait_until_idle(server);
    if in_path("ipcrm") {
        Cmd::new("ipcrm", Sandbox::new())
            .args(["-q", &id.to_string()])
            .run()
            .expect_success();
    } else {
        note("ipcrm is not installed: the test removed the queue with msgctl itself");
        raw::remove(id);
    }
    let run = server.wait(SERVER_TIMEOUT);
    if !run.stderr.contains("EIDRM") {
        run.fail(
            "did not report EIDRM when its queue was removed",
            "msgrcv fails with EIDRM when the queue goes: end the loop with that error \
             (context `receive a request`), and wait for the children",
        );
    }
    run.expect_code(1);
    assert_msgq_transcript!(run);
}

#[test]
fn a_killed_server_leaves_its_queue_behind() {
    // SIGKILL cannot be caught: the queue outlives the server, and the
    // grader has to remove it.
    let (server, id, key) = start_server(&[]);
    let run = server.kill();
    let leftover = format!("key {:#010x}, id {id}", key as u32);
    if !run.leaks.iter().any(|leak| leak.what == leftover) {
        run.fail(
            format!("no queue {leftover} was left: {:?}", run.leaks),
            "the server's queue is created under the key of its key file",
        );
    }
    if raw::stat(id).is_some() {
        panic!("grader: queue {id} of the killed server is still there");
    }
}

/// The C client from the notes (`labs/05-msgq/c/client.c`), compiled once
/// per test run with the system's C compiler, or `None` without one.
fn c_client() -> Option<&'static Path> {
    static CLIENT: OnceLock<Option<PathBuf>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            if !in_path("cc") {
                return None;
            }
            let source =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../labs/05-msgq/c/client.c");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("msgq-c-client");
            std::fs::create_dir_all(&dir).expect("grader: cannot create the C client's directory");
            let name = format!("client-{}", env!("CARGO_PKG_NAME"));
            let building = dir.join(format!("{name}.{}", std::process::id()));
            let built = Cmd::new("cc", Sandbox::new())
                .args(["-Wall", "-Wextra", "-Werror", "-o"])
                .arg(&building)
                .arg(&source)
                .run();
            built.expect_success();
            let client = dir.join(name);
            std::fs::rename(&building, &client).expect("grader: cannot move the C client");
            Some(client)
        })
        .as_deref()
}

#[test]
fn server_serves_the_c_client_from_the_notes() {
    let (server, _, key) = start_server(&[]);
    let Some(c_client) = c_client() else {
        note(
            "no C compiler (cc) in PATH: the C client of labs/05-msgq/c/client.c was not \
             run; the server was checked with the suite's own client of the same wire \
             format instead",
        );
        let (server, reply) = ask(server, key, 1);
        if !reply.text.starts_with("ticket 1,") {
            fail_with_server(
                server,
                format!("answered {}", shown(&reply)),
                "answer a ticket request with RESP_TICKET and `ticket N, served by pid P`",
            );
        }
        stop_server(server, libc::SIGTERM);
        return;
    };
    let key_file = server.sandbox().path(KEY_FILE);
    let run_c_client = |args: &[&str]| {
        Cmd::new(c_client, Sandbox::new())
            .display_name("client")
            .arg(&key_file)
            .args(args.iter().copied())
            .alias(&key_file, KEY_FILE)
            .timeout(HANG_TIMEOUT)
            .section(TASK_5)
            .announces_sysv_ids(SysvKind::MessageQueue, "private queue ")
            .run()
    };
    let ticket = run_c_client(&[]);
    let refused = run_c_client(&["1", "7"]);
    if ticket.code() != Some(0) || !ticket.stdout.contains("ticket 1, served by pid") {
        fail_with_server(
            server,
            format!("the C client got {:?} {:?}", ticket.stdout, ticket.stderr),
            "keep the notes' wire format exactly: a request's text is one int, 4 bytes; a \
             response is a type and NUL-terminated text of at most 1024 bytes",
        );
    }
    if refused.code() != Some(1) || !refused.stderr.contains("unknown request type 7") {
        fail_with_server(
            server,
            format!("the C client got {:?} {:?}", refused.stdout, refused.stderr),
            "refuse a request of type 7 with RESP_ERROR (2)",
        );
    }
    stop_server(server, libc::SIGTERM);
    assert_msgq_transcript!(ticket);
}

// ---- The test's own System V calls -------------------------------------------

mod raw {
    //! System V calls made by the test itself, straight to libc: preparing
    //! queues, looking at them, and playing the other side of the protocol.
    //! A failed call while preparing means the machine cannot grade this lab.

    use std::mem::{MaybeUninit, size_of};
    use std::ptr;
    use std::thread;
    use std::time::{Duration, Instant};

    use libc::{c_int, c_long};

    // The notes' wire format, written out independently of the lab.
    pub const REQ_MSG_SIZE: usize = size_of::<c_int>();
    pub const RESP_MSG_SIZE: usize = 1024;
    pub const RESP_TICKET: c_long = 1;
    pub const RESP_ERROR: c_long = 2;

    #[repr(C)]
    struct Request {
        mtype: c_long,
        client_mq_id: c_int,
    }

    /// A message buffer: a long type, then room for any text the tests use.
    #[repr(C)]
    struct Buffer {
        mtype: c_long,
        text: [u8; 65536],
    }

    /// The errno of the last failed call.
    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// An errno in words.
    fn describe(errno: i32) -> String {
        std::io::Error::from_raw_os_error(errno).to_string()
    }

    /// A new queue under `key` with `mode` (`IPC_CREAT | IPC_EXCL`).
    pub fn create(key: c_int, mode: c_int) -> c_int {
        // SAFETY: msgget takes two integers.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | mode) };
        assert!(id >= 0, "grader: msgget failed: errno {}", errno());
        id
    }

    /// Removes queue `id`, if it still exists.
    pub fn remove(id: c_int) {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::msgctl(id, libc::IPC_RMID, ptr::null_mut()) };
    }

    /// The queue's `msqid_ds`, or `None` if it does not exist.
    pub fn stat(id: c_int) -> Option<libc::msqid_ds> {
        let mut buf = MaybeUninit::<libc::msqid_ds>::zeroed();
        // SAFETY: IPC_STAT fills the buffer we pass.
        let done = unsafe { libc::msgctl(id, libc::IPC_STAT, buf.as_mut_ptr()) };
        // SAFETY: zeroed integers, filled by the kernel on success.
        (done == 0).then(|| unsafe { buf.assume_init() })
    }

    /// Sets the queue's `msg_qbytes`.
    pub fn set_qbytes(id: c_int, bytes: libc::msglen_t) {
        let mut buf = stat(id).expect("grader: IPC_STAT failed");
        buf.msg_qbytes = bytes;
        // SAFETY: IPC_SET reads the buffer we pass.
        let done = unsafe { libc::msgctl(id, libc::IPC_SET, &mut buf) };
        assert!(done == 0, "grader: IPC_SET failed: errno {}", errno());
    }

    /// Sets the queue's permission bits (`IPC_SET`, from its own `msqid_ds`).
    pub fn set_mode(id: c_int, mode: u16) {
        let mut buf = stat(id).expect("grader: IPC_STAT failed");
        buf.msg_perm.mode = mode;
        // SAFETY: IPC_SET reads the buffer we pass.
        let done = unsafe { libc::msgctl(id, libc::IPC_SET, &mut buf) };
        assert!(done == 0, "grader: IPC_SET failed: errno {}", errno());
    }

    /// Sends one message; the errno if it fails.
    pub fn send(id: c_int, mtype: c_long, text: &[u8], flags: c_int) -> Result<(), i32> {
        let mut buf = Box::new(Buffer {
            mtype,
            text: [0; 65536],
        });
        buf.text[..text.len()].copy_from_slice(text);
        // SAFETY: the kernel reads the long and text.len() bytes of `buf`.
        let sent = unsafe { libc::msgsnd(id, (&raw const *buf).cast(), text.len(), flags) };
        if sent == 0 { Ok(()) } else { Err(errno()) }
    }

    /// Receives the first message of type `msgtyp` from queue `id`, waiting
    /// at most `timeout` for one; `None` if none came or the call failed.
    pub fn receive(id: c_int, msgtyp: c_long, timeout: Duration) -> Option<(c_long, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        let mut buf = Box::new(Buffer {
            mtype: 0,
            text: [0; 65536],
        });
        loop {
            // SAFETY: the kernel writes the long and at most 65536 bytes.
            let length = unsafe {
                libc::msgrcv(id, (&raw mut *buf).cast(), 65536, msgtyp, libc::IPC_NOWAIT)
            };
            if let Ok(length) = usize::try_from(length) {
                return Some((buf.mtype, buf.text[..length].to_vec()));
            }
            if errno() != libc::ENOMSG || Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// A queue's row in `/proc/sysvipc/msg`, which `ipcs` reads too.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Row {
        pub key: i64,
        pub perms: u32,
        pub cbytes: u64,
        pub qnum: u64,
        pub lspid: i64,
        pub lrpid: i64,
        pub uid: u32,
    }

    /// The row of queue `id`, if the kernel lists it.
    pub fn proc_row(id: c_int) -> Option<Row> {
        let table = std::fs::read_to_string("/proc/sysvipc/msg").ok()?;
        table.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(1)? != &id.to_string() {
                return None;
            }
            Some(Row {
                key: f[0].parse().ok()?,
                perms: u32::from_str_radix(f[2], 8).ok()?,
                cbytes: f[3].parse().ok()?,
                qnum: f[4].parse().ok()?,
                lspid: f[5].parse().ok()?,
                lrpid: f[6].parse().ok()?,
                uid: f[7].parse().ok()?,
            })
        })
    }

    /// A queue the test created and removes when it is dropped.
    struct Owned(c_int);

    impl Drop for Owned {
        fn drop(&mut self) {
            remove(self.0);
        }
    }

    /// What the notes' client gets back: the response type and its text (up
    /// to the NUL).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Reply {
        pub mtype: c_long,
        pub text: String,
    }

    /// The notes' client: a private queue, one request of `request_type` to
    /// the queue of `server_key`, one response, the private queue removed.
    pub fn ask(server_key: c_int, request_type: c_long) -> Result<Reply, String> {
        // SAFETY: msgget takes two integers.
        let server = unsafe { libc::msgget(server_key, 0o200) };
        if server < 0 {
            return Err(format!(
                "no queue has the server's key: {}",
                describe(errno())
            ));
        }
        // SAFETY: msgget takes two integers.
        let private = Owned(unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) });
        assert!(private.0 >= 0, "grader: msgget(IPC_PRIVATE) failed");
        let request = Request {
            mtype: request_type,
            client_mq_id: private.0,
        };
        // SAFETY: the kernel reads the long and REQ_MSG_SIZE bytes of `request`.
        let sent = unsafe { libc::msgsnd(server, (&raw const request).cast(), REQ_MSG_SIZE, 0) };
        if sent != 0 {
            return Err(format!(
                "the request could not be sent: {}",
                describe(errno())
            ));
        }
        let (mtype, data) = receive(private.0, 0, super::REPLY_TIMEOUT)
            .ok_or_else(|| format!("no response within {:?}", super::REPLY_TIMEOUT))?;
        if data.len() > RESP_MSG_SIZE {
            return Err(format!("a response of {} bytes", data.len()));
        }
        let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
        Ok(Reply {
            mtype,
            text: String::from_utf8_lossy(&data[..end]).into_owned(),
        })
    }

    /// What the test's server saw of the one request it answered.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub mtype: c_long,
        pub length: usize,
        pub client: Option<c_int>,
        pub client_row: Option<Row>,
    }

    /// The notes' server for one request: waits for it on queue `id`,
    /// answers `reply_type` and `reply` (with its NUL) on the client's queue
    /// named in it, and reports what it saw.
    pub fn serve_once(
        id: c_int,
        reply_type: c_long,
        reply: String,
    ) -> thread::JoinHandle<Option<Seen>> {
        thread::spawn(move || {
            let (mtype, text) = receive(id, 0, super::REPLY_TIMEOUT)?;
            let client = <[u8; REQ_MSG_SIZE]>::try_from(text.as_slice())
                .ok()
                .map(c_int::from_ne_bytes);
            let client_row = client.and_then(proc_row);
            if let Some(client) = client {
                let mut data = reply.as_bytes().to_vec();
                data.push(0);
                let _ = send(client, reply_type, &data, libc::IPC_NOWAIT);
            }
            Some(Seen {
                mtype,
                length: text.len(),
                client,
                client_row,
            })
        })
    }
}
