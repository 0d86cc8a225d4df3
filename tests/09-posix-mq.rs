//! Grading suite of lab 09 (POSIX message queues).
//!
//! Compiled into both the lab (`labs/09-posix-mq`) and the reference
//! solution; every test runs the program as a black box through the grader.
//!
//! Two kinds of queue names. Queues the program must remove itself (a
//! client's reply queue, the server's queue, anything a bad command might
//! create) are named by the sandbox (`sandbox.posix_name`): the grader's
//! leak check fails the test if one is left, and names `mq_unlink`. Queues
//! that belong to the test (prepared for the program, or created and
//! removed by several runs in turn) have a kept name (`grader::KeptName`),
//! which the leak check leaves alone and which removes its queue when the
//! test ends, whatever happened. Neither depends on `/dev/mqueue`.
//!
//! The test process makes POSIX calls of its own (the `raw` module): it
//! prepares queues, looks at them, plays the server for the client of task
//! 5 and the client for the server of task 6, with the wire format written
//! out once more, independently of the lab's `protocol.rs`. Random inputs
//! (capacities, priorities, texts, the order of arrivals) change from run
//! to run (`grader::Varied`): a failure prints the seed, and
//! `WORKBOOK_SEED=N` replays a run.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use grader::{
    Blocked, Cmd, KeptName, Lab, LeakKind, Run, Running, Sandbox, Varied, assert_transcript,
};

const CHAPTER: &str = "09-posix-mq.md";

/// A program blocked on a queue stays blocked: no need to wait long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a program may take to print a line the test waits for.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the lab's server gets for each step.
const SERVER_TIMEOUT: Duration = grader::DEFAULT_TIMEOUT;

const TASK_1: &str = "Task 1: names and queues";
const TASK_2: &str = "Task 2: send and receive";
const TASK_3: &str = "Task 3: many queues, one poll";
const TASK_4: &str = "Task 4: notification";
const TASK_5: &str = "Task 5: the client";
const TASK_6: &str = "Task 6: the server";

/// Values that change from run to run, replaced in snapshots. Tests check
/// the real values as properties before comparing transcripts.
const FILTERS: &[(&str, &str)] = &[
    (r"wb\d+x\d+-", "[PREFIX]-"),
    (r"uid \d+", "uid [UID]"),
    (r"pid \d+", "pid [PID]"),
    (r"\.client\.\d+", ".client.[PID]"),
    (r"msg_max \(\d+\)", "msg_max ([MSG_MAX])"),
    (r"msgsize_max \(\d+\)", "msgsize_max ([MSGSIZE_MAX])"),
];

/// Compares the transcript of a run with its snapshot, after [`FILTERS`]
/// and any further `(regex, replacement)` pairs the test gives.
macro_rules! assert_mq_transcript {
    ($run:expr) => {
        assert_mq_transcript!($run, Vec::<(String, String)>::new())
    };
    ($run:expr, $extra:expr) => {{
        let mut filters: Vec<(String, String)> = $extra;
        filters.extend(
            FILTERS
                .iter()
                .map(|(from, to)| (from.to_string(), to.to_string())),
        );
        let filters: Vec<(&str, &str)> = filters
            .iter()
            .map(|(from, to)| (from.as_str(), to.as_str()))
            .collect();
        grader::insta::with_settings!({ filters => filters }, {
            assert_transcript!($run);
        });
    }};
}

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// The lab's program with `args`, in a fresh sandbox, blocked calls cut short.
fn posix_mq(args: &[&str]) -> Cmd {
    lab().cmd(args.iter().copied()).timeout(HANG_TIMEOUT)
}

/// Like [`posix_mq`], in a sandbox the test prepared.
fn posix_mq_in(sandbox: Sandbox, args: &[&str]) -> Cmd {
    lab()
        .cmd_in(sandbox, args.iter().copied())
        .timeout(HANG_TIMEOUT)
}

/// A number from `/proc/sys/fs/mqueue/NAME`.
fn mqueue_limit(name: &str) -> i64 {
    fs::read_to_string(format!("/proc/sys/fs/mqueue/{name}"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| panic!("grader: cannot read /proc/sys/fs/mqueue/{name}"))
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

/// The number that follows `marker` in `text`, if any.
fn number_after(text: &str, marker: &str) -> Option<i64> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// A test-owned queue under a kept name, with `max_messages` ×
/// `message_size` and the `messages` already in it.
fn kept_queue(
    name: &str,
    max_messages: i64,
    message_size: i64,
    messages: &[(u32, &str)],
) -> (KeptName, raw::Queue) {
    let kept = KeptName::new(name);
    let queue = raw::create(kept.as_str(), max_messages, message_size, 0o600);
    for (priority, text) in messages {
        raw::send(&queue, text.as_bytes(), *priority).expect("grader: mq_send failed");
    }
    (kept, queue)
}

/// Fails unless the run failed with exit status 1 and one line on stderr
/// that names `errno`.
fn expect_one_line_error(run: &Run, errno: &str, why: &str) {
    if run.code() == Some(0) {
        run.fail(format!("succeeded, expected {errno}"), why);
    }
    if !run.stderr.contains(errno) {
        run.fail(format!("did not report {errno}"), why);
    }
    let lines = run.stderr.lines().count();
    if lines != 1 || !run.stderr.starts_with("posix-mq: ") {
        run.fail(
            format!("reported the error on {lines} lines, not one line `posix-mq: …`"),
            "return the Errno: the command line prints it on one line and exits with 1",
        );
    }
    run.expect_code(1);
}

/// Runs `cmd`, expecting the one-line error `errno`: a wrong program may
/// succeed and leave a queue behind, and that is reported first.
fn run_expecting_error(cmd: Cmd, errno: &str, why: &str) -> Run {
    let run = cmd.run_unchecked();
    fail_if_panicked_or_hung(&run);
    expect_one_line_error(&run, errno, why);
    run.check_finished_cleanly();
    run
}

/// The line of `stdout` that starts with `field ` (as `attr` prints it),
/// without the field's name.
fn field(stdout: &str, name: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_string)
    })
}

/// Our effective user ID.
fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

// ---- TODO 1: names and queues ------------------------------------------------

/// Fails unless the queue `name` exists with `capacity`, mode 0600 and our
/// user as its owner.
fn check_created(run: &Run, name: &str, max_messages: i64, message_size: i64, why: &str) {
    let Some(queue) = raw::open(name, libc::O_RDONLY).ok() else {
        run.fail(
            format!("no queue has the name {name}"),
            "create calls mq_open(name, O_CREAT | access, 0600, attr) and returns its descriptor",
        );
    };
    let attr = raw::attributes(&queue);
    if (attr.mq_maxmsg, attr.mq_msgsize) != (max_messages, message_size) {
        run.fail(
            format!(
                "the queue has mq_maxmsg {} and mq_msgsize {}, expected {max_messages} and \
                 {message_size}",
                attr.mq_maxmsg, attr.mq_msgsize
            ),
            why,
        );
    }
    let (mode, uid) = raw::mode_and_owner(&queue);
    if mode != 0o600 || uid != euid() {
        run.fail(
            format!(
                "the queue has mode {mode:04o} and owner {uid}, expected 0600 and {}",
                euid()
            ),
            "create the queue with mode 0600 (S_IRUSR | S_IWUSR): only its owner may use it",
        );
    }
}

#[test]
fn create_makes_a_queue_with_the_capacity_asked_for() {
    let mut vary = Varied::new();
    let max_messages = vary.between(1, mqueue_limit("msg_max").min(10) as u64) as i64;
    let message_size = vary.between(1, 1024) as i64;
    let kept = KeptName::new("created");
    let (m, s) = (max_messages.to_string(), message_size.to_string());
    let run = posix_mq(&[
        "create",
        kept.as_str(),
        "--exclusive",
        "--max-messages",
        &m,
        "--message-size",
        &s,
    ])
    .section(TASK_1)
    .run();
    if run.stderr.contains("EMFILE") {
        // A queue this small fits in RLIMIT_MSGQUEUE with room to spare; a
        // queue made with the defaults (about 82 KB each) may not.
        run.fail(
            format!(
                "mq_open failed with EMFILE for a queue of {max_messages} messages of \
                 {message_size} bytes"
            ),
            "so small a queue takes this user's queues over RLIMIT_MSGQUEUE only if it got the \
             defaults instead (or other queues of this user fill the limit): pass the capacity \
             to mq_open as a struct mq_attr",
        );
    }
    run.expect_success();
    check_created(
        &run,
        kept.as_str(),
        max_messages,
        message_size,
        "pass the capacity to mq_open as a struct mq_attr: MqAttr::new(0, max_messages, \
             message_size, 0)",
    );
    let expected = format!(
        "created {kept}: mq_flags 0, mq_maxmsg {m}, mq_msgsize {s}, mq_curmsgs 0, mode 0600, uid {}\n",
        euid()
    );
    run.expect_stdout(
        &expected,
        "print what attributes() returns: mq_getattr's mq_maxmsg and mq_msgsize",
    );

    let unlinked = posix_mq(&["unlink", kept.as_str()]).section(TASK_1).run();
    unlinked.expect_success();
    if raw::open(kept.as_str(), libc::O_RDONLY).is_ok() {
        unlinked.fail(
            "the name is still there after unlink",
            "unlink calls mq_unlink(name)",
        );
    }
}

#[test]
fn create_exclusive_refuses_a_taken_name_and_leaves_the_queue_alone() {
    let (kept, queue) = kept_queue("taken", 2, 32, &[(1, "already here")]);
    let run = posix_mq(&[
        "create",
        kept.as_str(),
        "--exclusive",
        "--max-messages",
        "3",
        "--message-size",
        "16",
    ])
    .section(TASK_1)
    .run();
    expect_one_line_error(
        &run,
        "EEXIST",
        "O_CREAT | O_EXCL makes mq_open fail with EEXIST when the name is taken: add \
         O_EXCL when exclusive is true",
    );
    let attr = raw::attributes(&queue);
    if (attr.mq_maxmsg, attr.mq_msgsize, attr.mq_curmsgs) != (2, 32, 1) {
        run.fail(
            "the queue that had the name changed",
            "a refused mq_open changes nothing",
        );
    }
    assert_mq_transcript!(run);

    // Without O_EXCL, O_CREAT quietly opens the queue that is there.
    let run = posix_mq(&[
        "create",
        kept.as_str(),
        "--max-messages",
        "3",
        "--message-size",
        "16",
    ])
    .section(TASK_1)
    .run();
    run.expect_success();
    if !run
        .stdout
        .contains("mq_maxmsg 2, mq_msgsize 32, mq_curmsgs 1")
    {
        run.fail(
            "did not print the attributes of the queue that was there",
            "without O_EXCL, mq_open(O_CREAT) opens the existing queue and ignores the mode \
             and the capacity it is given",
        );
    }
}

#[test]
fn create_without_a_capacity_gets_the_system_defaults() {
    let kept = KeptName::new("defaults");
    let run = posix_mq(&["create", kept.as_str()]).section(TASK_1).run();
    if run.stderr.contains("EINVAL") {
        run.fail(
            "mq_open failed with EINVAL, although no capacity was asked for",
            "without a capacity, pass a NULL attr: libc::mq_open(name, flags, mode, \
             ptr::null_mut::<libc::mq_attr>()). nix's mq_open(…, None) passes no mode and no \
             attr at all, and with O_CREAT the C function reads both from whatever the \
             registers hold",
        );
    }
    let max_messages = mqueue_limit("msg_default").min(mqueue_limit("msg_max"));
    let message_size = mqueue_limit("msgsize_default").min(mqueue_limit("msgsize_max"));
    if run.stderr.contains("EMFILE") {
        // RLIMIT_MSGQUEUE counts the queues of every process of the user.
        run.fail(
            "mq_open failed with EMFILE for a queue with the system's default capacity",
            format!(
                "its {max_messages} messages of {message_size} bytes do not fit in what is left \
                 of RLIMIT_MSGQUEUE (ulimit -q), which every queue of this user counts against: \
                 other queues of this user take the rest (mount -t mqueue none /dev/mqueue \
                 shows them)"
            ),
        );
    }
    run.expect_success();
    check_created(
        &run,
        kept.as_str(),
        max_messages,
        message_size,
        "without a capacity, pass a NULL attr: libc::mq_open(name, flags, mode, \
         ptr::null_mut::<libc::mq_attr>()). nix's mq_open(…, None) passes no mode and no \
         attr at all",
    );
    assert_mq_transcript!(
        run,
        vec![
            (
                format!(r"mq_maxmsg {max_messages}\b"),
                "mq_maxmsg [MSG_DEFAULT]".to_string()
            ),
            (
                format!(r"mq_msgsize {message_size}\b"),
                "mq_msgsize [MSGSIZE_DEFAULT]".to_string()
            ),
        ]
    );
}

#[test]
fn bad_names_are_refused_with_one_line_errors() {
    let sandbox = Sandbox::new();
    let no_slash = sandbox.posix_name("no-slash")[1..].to_string();
    let two_slashes = format!("{}/b", sandbox.posix_name("a"));
    let long = sandbox.posix_name("long");
    let too_long = format!("{long}{}", "x".repeat(256 - (long.len() - 1)));
    let cases = [
        (
            no_slash.as_str(),
            "EINVAL",
            "a name must start with /: mq_open fails with EINVAL; return the Errno",
        ),
        (
            two_slashes.as_str(),
            "EACCES",
            "a second / makes mq_open fail with EACCES; return the Errno",
        ),
        (
            too_long.as_str(),
            "ENAMETOOLONG",
            "256 bytes after the / are one too many: ENAMETOOLONG; return the Errno",
        ),
    ];
    let mut sandbox = Some(sandbox);
    for (name, errno, why) in cases {
        let here = sandbox.take().unwrap_or_default();
        let cmd = posix_mq_in(
            here,
            &[
                "create",
                name,
                "--max-messages",
                "1",
                "--message-size",
                "16",
            ],
        )
        .section(TASK_1);
        let run = run_expecting_error(cmd, errno, why);
        if errno != "ENAMETOOLONG" {
            assert_mq_transcript!(run);
        }
        let unlinked = posix_mq_in(run.sandbox, &["unlink", name])
            .section(TASK_1)
            .run();
        expect_one_line_error(
            &unlinked,
            errno,
            "mq_unlink checks the name as mq_open does",
        );
        sandbox = Some(unlinked.sandbox);
    }
}

#[test]
fn a_capacity_beyond_the_limits_is_refused_to_an_ordinary_user() {
    // Without CAP_SYS_RESOURCE, msg_max and msgsize_max bound a new queue.
    // The program runs without capabilities, even when the tests run as root.
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("too-big");
    let too_many = (mqueue_limit("msg_max") + 1).to_string();
    let too_long = (mqueue_limit("msgsize_max") + 1).to_string();
    let mut sandbox = Some(sandbox);
    for (max_messages, message_size) in [
        (too_many.as_str(), "16"),
        ("1", too_long.as_str()),
        ("0", "16"),
    ] {
        let here = sandbox.take().unwrap_or_default();
        let cmd = posix_mq_in(
            here,
            &[
                "create",
                &name,
                "--max-messages",
                max_messages,
                "--message-size",
                message_size,
            ],
        )
        .section(TASK_1)
        .unprivileged();
        let run = run_expecting_error(
            cmd,
            "EINVAL",
            "pass the capacity to mq_open, which checks it: mq_maxmsg must be from 1 to \
             msg_max, and mq_msgsize from 1 to msgsize_max",
        );
        if max_messages == "0" {
            assert_mq_transcript!(run);
        }
        sandbox = Some(run.sandbox);
    }
}

#[test]
fn a_queue_over_rlimit_msgqueue_is_refused_with_emfile() {
    // RLIMIT_MSGQUEUE counts every queue of a user, overhead included: a
    // limit that holds the queue's data alone (4 × 256 bytes) is too small.
    if !in_path("prlimit") {
        note(
            "prlimit is not installed: the EMFILE of RLIMIT_MSGQUEUE was not tried; install \
             util-linux to run this test",
        );
        return;
    }
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("over-limit");
    let lab = lab();
    let cmd = Cmd::new("prlimit", sandbox)
        .arg("--msgqueue=1024")
        .arg(&lab.bin)
        .args([
            "create",
            &name,
            "--max-messages",
            "4",
            "--message-size",
            "256",
        ])
        .alias(&lab.bin, &lab.name)
        .chapter(CHAPTER)
        .section(TASK_1);
    let run = run_expecting_error(
        cmd,
        "EMFILE",
        "a queue that would take its user over RLIMIT_MSGQUEUE makes mq_open fail with \
         EMFILE: return the Errno",
    );
    assert_mq_transcript!(run);
}

#[test]
fn attr_shows_what_mq_getattr_and_fstat_say() {
    let mut vary = Varied::new();
    let max_messages = vary.between(2, mqueue_limit("msg_max").min(10) as u64) as i64;
    let message_size = vary.between(16, 4096) as i64;
    let queued = vary.between(0, max_messages as u64) as i64;
    let texts: Vec<String> = (0..queued).map(|_| vary.word(5)).collect();
    let messages: Vec<(u32, &str)> = texts.iter().map(|t| (0, t.as_str())).collect();
    let (kept, _queue) = kept_queue("attr", max_messages, message_size, &messages);
    let run = posix_mq(&["attr", kept.as_str()]).section(TASK_1).run();
    run.expect_success();
    for (name, expected, why) in [
        ("mq_flags", "0".to_string(), "a new descriptor is blocking"),
        (
            "mq_maxmsg",
            max_messages.to_string(),
            "mq_maxmsg is attr.maxmsg()",
        ),
        (
            "mq_msgsize",
            message_size.to_string(),
            "mq_msgsize is attr.msgsize()",
        ),
        (
            "mq_curmsgs",
            queued.to_string(),
            "mq_curmsgs is attr.curmsgs()",
        ),
        ("mode", "0600".to_string(), "the queue's mode, from fstat"),
        ("uid", euid().to_string(), "the queue's owner, from fstat"),
    ] {
        let printed = field(&run.stdout, name);
        if printed.as_deref() != Some(expected.as_str()) {
            run.fail(
                format!("printed {name} {printed:?}, expected {expected}"),
                format!("{why}: attributes() returns what mq_getattr says, field by field"),
            );
        }
    }
}

#[test]
fn unlink_removes_the_name_and_a_second_unlink_says_enoent() {
    let (kept, _queue) = kept_queue("unlinked", 1, 16, &[]);
    let run = posix_mq(&["unlink", kept.as_str()]).section(TASK_1).run();
    run.expect_success();
    if raw::open(kept.as_str(), libc::O_RDONLY).is_ok() {
        run.fail("the name is still there", "unlink calls mq_unlink(name)");
    }
    let again = posix_mq(&["unlink", kept.as_str()]).section(TASK_1).run();
    expect_one_line_error(
        &again,
        "ENOENT",
        "mq_unlink of a name that no queue has fails with ENOENT: return the Errno",
    );
    assert_mq_transcript!(again);
    let attr = posix_mq(&["attr", kept.as_str()]).section(TASK_1).run();
    expect_one_line_error(
        &attr,
        "ENOENT",
        "mq_open without O_CREAT fails with ENOENT when no queue has the name",
    );
}

// ---- TODO 2: send and receive ------------------------------------------------

/// The priority and text of each line `receive` printed.
fn received(run: &Run) -> Vec<(u32, String)> {
    run.stdout_lines()
        .iter()
        .filter_map(|line| {
            let priority = number_after(line, "priority ")? as u32;
            let text = line.split_once(": ")?.1.trim_matches('"').to_string();
            Some((priority, text))
        })
        .collect()
}

#[test]
fn messages_come_out_highest_priority_first_and_in_order_within_a_priority() {
    let mut vary = Varied::new();
    let count = mqueue_limit("msg_max").min(8);
    let (kept, queue) = kept_queue("priorities", count, 64, &[]);
    // Random priorities, but the first lowest and the last highest, so that
    // the order they were sent in is never the order they come out in.
    let sent: Vec<(u32, String)> = (0..count)
        .map(|i| {
            let priority = match i {
                0 => 0,
                i if i == count - 1 => 32767,
                _ => [0, 1, 2, 31, 32767][vary.between(0, 4) as usize],
            };
            (priority, format!("m{i}-{}", vary.word(4)))
        })
        .collect();
    let words: Vec<String> = sent.iter().map(|(p, t)| format!("{p}:{t}")).collect();
    let mut args = vec!["send", kept.as_str()];
    args.extend(words.iter().map(String::as_str));
    let run = posix_mq(&args).section(TASK_2).run();
    run.expect_success();
    let mut expected = sent.clone();
    expected.sort_by_key(|(priority, _)| std::cmp::Reverse(*priority));
    let in_queue = raw::drain(&queue);
    if in_queue != expected {
        run.fail(
            format!("the queue gave back {in_queue:?}, expected {expected:?}"),
            "send each message with its own priority: mq_send(queue, text, priority); the \
             queue orders them",
        );
    }
    for (priority, text) in &sent {
        raw::send(&queue, text.as_bytes(), *priority).expect("grader: mq_send failed");
    }
    let run = posix_mq(&["receive", kept.as_str(), "--all"])
        .section(TASK_2)
        .why_if_timeout(
            "receive --all turns O_NONBLOCK on and stops at EAGAIN: set_nonblocking must \
             call mq_setattr",
        )
        .run();
    run.expect_success();
    if received(&run) != expected {
        run.fail(
            format!("received {:?}, expected {expected:?}", received(&run)),
            "mq_receive takes the oldest message of the highest priority and reports its \
             priority: return both",
        );
    }
}

#[test]
fn messages_keep_their_boundaries_and_may_be_empty() {
    let (kept, _queue) = kept_queue("boundaries", 4, 64, &[]);
    let sent = posix_mq(&["send", kept.as_str(), "0:a", "0:bc", "0:def ghi", "0:"])
        .section(TASK_2)
        .run();
    sent.expect_success();
    let run = posix_mq(&["receive", kept.as_str(), "--count", "4"])
        .section(TASK_2)
        .why_if_timeout(
            "receive waited for a message that was never sent: each mq_send adds one \
             message, each mq_receive takes one",
        )
        .run();
    run.expect_success();
    for (line, want) in run.stdout_lines().iter().zip([1, 2, 7, 0]) {
        if number_after(line, ", ") != Some(want) {
            run.fail(
                format!("a message of {want} bytes came back as {line:?}"),
                "mq_receive returns the message's length: keep that many bytes of the \
                 buffer, not all of it",
            );
        }
    }
    run.expect_stdout(
        "priority 0, 1 bytes: \"a\"\npriority 0, 2 bytes: \"bc\"\npriority 0, 7 bytes: \
         \"def ghi\"\npriority 0, 0 bytes: \"\"\n",
        "each message comes back whole, in order, with exactly its bytes",
    );
    assert_mq_transcript!(run);
}

#[test]
fn receive_sizes_its_buffer_from_mq_msgsize() {
    let mut vary = Varied::new();
    let message_size =
        vary.between(1025, mqueue_limit("msgsize_max").clamp(1025, 8192) as u64) as i64;
    let text = vary.word(message_size as usize);
    let (kept, _queue) = kept_queue("big", 1, message_size, &[(3, &text)]);
    let run = posix_mq(&["receive", kept.as_str()]).section(TASK_2).run();
    if run.stderr.contains("EMSGSIZE") {
        run.fail(
            format!("EMSGSIZE on a queue whose mq_msgsize is {message_size}"),
            "the buffer must hold mq_msgsize bytes: ask mq_getattr (attributes) for it \
             instead of choosing a size",
        );
    }
    run.expect_success();
    let expected = format!("priority 3, {message_size} bytes: \"{text}\"\n");
    if run.stdout != expected {
        run.fail(
            format!("did not print the {message_size}-byte message whole"),
            "receive into a buffer of mq_msgsize bytes and keep the length mq_receive returns",
        );
    }
}

#[test]
fn a_receive_buffer_smaller_than_mq_msgsize_fails_with_emsgsize() {
    let (kept, queue) = kept_queue("small-buffer", 2, 64, &[(0, "abc")]);
    let run = posix_mq(&["receive", kept.as_str(), "--buffer", "63"])
        .section(TASK_2)
        .run();
    expect_one_line_error(
        &run,
        "EMSGSIZE",
        "mq_receive refuses a buffer smaller than mq_msgsize, however short the message: \
         use buffer_size when it is given",
    );
    if raw::attributes(&queue).mq_curmsgs != 1 {
        run.fail(
            "the message is gone after EMSGSIZE",
            "a refused mq_receive leaves the message in the queue",
        );
    }
    assert_mq_transcript!(run);
    let run = posix_mq(&["receive", kept.as_str(), "--buffer", "64"])
        .section(TASK_2)
        .run();
    run.expect_success();
    run.expect_stdout(
        "priority 0, 3 bytes: \"abc\"\n",
        "a buffer of exactly mq_msgsize bytes is enough",
    );
}

#[test]
fn a_message_longer_than_mq_msgsize_is_refused_with_emsgsize() {
    let (kept, queue) = kept_queue("long-message", 2, 64, &[]);
    let run = posix_mq(&["send", kept.as_str(), "--size", "65", "0:x"])
        .section(TASK_2)
        .run();
    expect_one_line_error(
        &run,
        "EMSGSIZE",
        "mq_send fails with EMSGSIZE for a message longer than mq_msgsize: return the Errno",
    );
    if raw::attributes(&queue).mq_curmsgs != 0 {
        run.fail(
            "something reached the queue",
            "the message is refused whole",
        );
    }
    assert_mq_transcript!(run);
    let run = posix_mq(&["send", kept.as_str(), "--size", "64", "0:x"])
        .section(TASK_2)
        .run();
    run.expect_success();
}

#[test]
fn a_priority_above_the_highest_is_refused() {
    let (kept, queue) = kept_queue("priority-max", 2, 16, &[]);
    let run = posix_mq(&["send", kept.as_str(), "32768:x"])
        .section(TASK_2)
        .run();
    expect_one_line_error(
        &run,
        "EINVAL",
        "priorities go from 0 to sysconf(_SC_MQ_PRIO_MAX) - 1 (32767): mq_send fails with \
         EINVAL above; pass the priority unchanged and return the Errno",
    );
    assert_mq_transcript!(run);
    let run = posix_mq(&["send", kept.as_str(), "32767:top"])
        .section(TASK_2)
        .run();
    run.expect_success();
    if raw::drain(&queue) != [(32767, "top".to_string())] {
        run.fail(
            "the message did not arrive with priority 32767",
            "pass the priority to mq_send unchanged",
        );
    }
}

/// Fails at once if `running` blocks in `call`: `--nonblock` must not wait.
fn fail_if_blocked_in(running: &mut Running, name: &str, why: &str) {
    if let Blocked::In(blocked) = running.wait_until_blocked(Duration::from_millis(500))
        && blocked == name
    {
        running.fail(
            format!("blocked in {blocked} although --nonblock was given"),
            why,
        );
    }
}

#[test]
fn a_nonblocking_receive_on_an_empty_queue_fails_with_eagain_at_once() {
    let (kept, _queue) = kept_queue("empty", 2, 16, &[]);
    let mut running = posix_mq(&["receive", kept.as_str(), "--nonblock"])
        .section(TASK_2)
        .start();
    fail_if_blocked_in(
        &mut running,
        "mq_timedreceive",
        "--nonblock turns O_NONBLOCK on with mq_setattr (set_nonblocking); then mq_receive \
         fails with EAGAIN instead of waiting",
    );
    let run = running.wait(HANG_TIMEOUT);
    expect_one_line_error(
        &run,
        "EAGAIN",
        "with O_NONBLOCK, mq_receive on an empty queue fails with EAGAIN: return the Errno",
    );
    assert_mq_transcript!(run);
}

#[test]
fn a_nonblocking_send_on_a_full_queue_fails_with_eagain() {
    let (kept, queue) = kept_queue("full", 2, 16, &[(0, "one"), (0, "two")]);
    let mut running = posix_mq(&["send", kept.as_str(), "--nonblock", "0:three"])
        .section(TASK_2)
        .start();
    fail_if_blocked_in(
        &mut running,
        "mq_timedsend",
        "--nonblock turns O_NONBLOCK on with mq_setattr (set_nonblocking); then mq_send \
         fails with EAGAIN on a full queue instead of waiting",
    );
    let run = running.wait(HANG_TIMEOUT);
    expect_one_line_error(
        &run,
        "EAGAIN",
        "with O_NONBLOCK, mq_send on a full queue fails with EAGAIN: return the Errno",
    );
    if raw::attributes(&queue).mq_curmsgs != 2 {
        run.fail("the queue changed", "a refused mq_send adds nothing");
    }
    assert_mq_transcript!(run);
}

/// Starts `cmd`, which must wait for `timeout` in `call` and then give up,
/// and returns its run. A deadline in the past (a duration taken for a
/// time, or a `CLOCK_MONOTONIC` reading) makes the call give up without
/// waiting at all: it is never seen asleep, and it ends before `timeout`
/// has passed. `why_early` explains that.
fn run_until_deadline(cmd: Cmd, timeout: Duration, why_early: &str) -> Run {
    let started = Instant::now();
    let mut running = cmd.start();
    let blocked = running.wait_until_blocked(timeout + LINE_TIMEOUT);
    let ended_early = started.elapsed() < timeout;
    let run = running.wait(HANG_TIMEOUT);
    let elapsed = started.elapsed();
    if let Blocked::Exited(_) = blocked
        && ended_early
        && run.code() == Some(1)
    {
        run.fail(
            format!(
                "gave up after {:.1} ms without waiting, before the {} ms it was given",
                elapsed.as_secs_f64() * 1000.0,
                timeout.as_millis()
            ),
            why_early,
        );
    }
    if elapsed > timeout + Duration::from_secs(3) {
        run.fail(
            format!("took {elapsed:?} to give up after {timeout:?}"),
            "the deadline is the timeout from now",
        );
    }
    run
}

/// Like [`run_until_deadline`], for `call` itself, which must then fail
/// with `ETIMEDOUT`.
fn expect_timeout(cmd: Cmd, timeout: Duration, call: &str) -> Run {
    let run = run_until_deadline(
        cmd,
        timeout,
        &format!(
            "{call} takes an absolute time on CLOCK_REALTIME, not a duration: \
             deadline_after reads clock_gettime(CLOCK_REALTIME) and adds the timeout (a \
             duration, or CLOCK_MONOTONIC, lies in 1970)"
        ),
    );
    expect_one_line_error(
        &run,
        "ETIMEDOUT",
        &format!("{call} fails with ETIMEDOUT at its deadline: return the Errno"),
    );
    run
}

#[test]
fn a_timed_receive_gives_up_at_its_deadline_with_etimedout() {
    let (kept, _queue) = kept_queue("no-message", 2, 16, &[]);
    let cmd = posix_mq(&["receive", kept.as_str(), "--timeout-ms", "250"])
        .section(TASK_2)
        .why_if_timeout(
            "--timeout-ms gives a deadline: call mq_timedreceive with it, not mq_receive",
        );
    let run = expect_timeout(cmd, Duration::from_millis(250), "mq_timedreceive");
    assert_mq_transcript!(run);
}

#[test]
fn a_timed_send_on_a_full_queue_gives_up_with_etimedout() {
    let (kept, _queue) = kept_queue("still-full", 1, 16, &[(0, "only")]);
    let cmd = posix_mq(&["send", kept.as_str(), "--timeout-ms", "250", "0:more"])
        .section(TASK_2)
        .why_if_timeout(
            "--timeout-ms gives a deadline: call libc::mq_timedsend with it, not mq_send",
        );
    let run = expect_timeout(cmd, Duration::from_millis(250), "mq_timedsend");
    assert_mq_transcript!(run);
}

#[test]
fn a_timed_receive_takes_a_message_that_comes_before_the_deadline() {
    let mut vary = Varied::new();
    let (kept, queue) = kept_queue("in-time", 2, 32, &[]);
    let mut receiver = posix_mq(&["receive", kept.as_str(), "--timeout-ms", "30000"])
        .section(TASK_2)
        .why_if_timeout("mq_timedreceive returns as soon as a message arrives")
        .start();
    receiver.wait_until_blocked_in(libc::SYS_mq_timedreceive, HANG_TIMEOUT);
    let text = vary.word(12);
    raw::send(&queue, text.as_bytes(), 7).expect("grader: mq_send failed");
    let run = receiver.wait(HANG_TIMEOUT);
    run.expect_success();
    run.expect_stdout(
        &format!("priority 7, 12 bytes: \"{text}\"\n"),
        "a message that arrives before the deadline is received",
    );
}

#[test]
fn a_blocked_sender_waits_until_there_is_room() {
    let (kept, queue) = kept_queue("room", 1, 16, &[(0, "first")]);
    let mut sender = posix_mq(&["send", kept.as_str(), "0:second"])
        .section(TASK_2)
        .why_if_timeout("a blocked mq_send goes on as soon as a message is taken off the queue")
        .start();
    sender.wait_until_blocked_in(libc::SYS_mq_timedsend, HANG_TIMEOUT);
    let first = raw::receive(&queue, HANG_TIMEOUT);
    let run = sender.wait(HANG_TIMEOUT);
    run.expect_success();
    let second = raw::receive(&queue, HANG_TIMEOUT);
    let texts = [first, second].map(|m| m.map(|(_, text)| text));
    if texts != [Some("first".to_string()), Some("second".to_string())] {
        run.fail(
            format!("the queue gave {texts:?}, expected first, then second"),
            "a blocked mq_send waits for room, then sends the message whole",
        );
    }
    assert_mq_transcript!(run);
}

#[test]
fn an_unlinked_queue_lives_on_while_a_descriptor_is_open() {
    let (kept, queue) = kept_queue("lives-on", 2, 32, &[]);
    let mut receiver = posix_mq(&["receive", kept.as_str()])
        .section(TASK_2)
        .why_if_timeout(
            "the receiver holds the queue open: unlinking the name must not take the queue \
             from it",
        )
        .start();
    receiver.wait_until_blocked_in(libc::SYS_mq_timedreceive, HANG_TIMEOUT);
    let unlinked = posix_mq(&["unlink", kept.as_str()]).section(TASK_1).run();
    unlinked.expect_success();
    if raw::open(kept.as_str(), libc::O_RDONLY).is_ok() {
        unlinked.fail("the name is still there", "unlink calls mq_unlink(name)");
    }
    // The name is gone; the test's own descriptor still reaches the queue.
    raw::send(&queue, b"still here", 1).expect("grader: mq_send on the unlinked queue failed");
    let run = receiver.wait(HANG_TIMEOUT);
    run.expect_success();
    run.expect_stdout(
        "priority 1, 10 bytes: \"still here\"\n",
        "mq_unlink removes the name; the queue lives on until its last descriptor closes",
    );
    // The name is free again: a new, empty queue can take it.
    let created = posix_mq(&[
        "create",
        kept.as_str(),
        "--exclusive",
        "--max-messages",
        "1",
        "--message-size",
        "8",
    ])
    .section(TASK_1)
    .run();
    created.expect_success();
    assert_mq_transcript!(run);
}

#[test]
fn a_queue_the_mode_forbids_refuses_the_program() {
    // This test is about permissions, so its queue is not 0600: 0200 lets
    // the owner send only. The program runs without root's capabilities,
    // which would skip the check.
    let kept = KeptName::new("write-only");
    let queue = raw::create(kept.as_str(), 2, 16, 0o200);
    let run = posix_mq(&["send", kept.as_str(), "0:hello"])
        .section(TASK_2)
        .unprivileged()
        .run();
    if run.stderr.contains("EACCES") {
        run.fail(
            "could not send to a queue whose mode allows its owner to write",
            "open the queue for what you do: O_WRONLY to send, O_RDONLY to receive",
        );
    }
    run.expect_success();
    let run = posix_mq(&["receive", kept.as_str(), "--nonblock"])
        .section(TASK_2)
        .unprivileged()
        .run();
    expect_one_line_error(
        &run,
        "EACCES",
        "mq_open checks the queue's mode like open checks a file's: EACCES; return the Errno",
    );
    assert_mq_transcript!(run);
    drop(queue);
}

// ---- TODO 3: many queues, one poll ------------------------------------------

/// The system calls that wait on several descriptors at once.
const POLLING_CALLS: &[&str] = &[
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_wait",
    "epoll_pwait",
];

/// Waits until `running` is asleep in a call that waits on descriptors,
/// and fails with the likely cause if it sleeps elsewhere or never sleeps.
fn expect_waiting_in_poll(running: &mut Running) {
    match running.wait_until_blocked(LINE_TIMEOUT) {
        Blocked::In(call) if POLLING_CALLS.contains(&call.as_str()) => {}
        Blocked::In(call) => running.fail(
            format!("waited in {call}, not in poll"),
            "a receive blocks on one queue while messages arrive on the others: poll all \
             the descriptors for POLLIN, and receive only from those that are readable",
        ),
        Blocked::Busy => running.fail(
            "never went to sleep while no message came",
            "trying the queues in turn in a loop keeps the processor busy: poll sleeps until \
             a descriptor is readable",
        ),
        Blocked::Exited(status) => running.fail(
            format!("ended ({status}) while messages were still expected"),
            "watch returns after --count messages, or after --silence-ms without one",
        ),
    }
}

#[test]
fn watch_reports_each_message_from_the_queue_it_came_to() {
    let mut vary = Varied::new();
    let queues: Vec<(KeptName, raw::Queue)> = ["red", "green", "blue"]
        .iter()
        .map(|name| kept_queue(name, 2, 32, &[]))
        .collect();
    let count = 4;
    let mut args = vec!["watch".to_string()];
    args.extend(queues.iter().map(|(kept, _)| kept.to_string()));
    args.extend(["--count".to_string(), count.to_string()]);
    let mut watcher = lab()
        .cmd(args)
        .section(TASK_3)
        .why_if_timeout(
            "print each message as it comes, as `NAME: priority P, N bytes: \"TEXT\"` with the \
             name of its queue, flush after each line, and return after --count messages",
        )
        .start();
    let mut expected = String::new();
    for arrival in 0..count {
        expect_waiting_in_poll(&mut watcher);
        let (kept, queue) = &queues[vary.between(0, 2) as usize];
        let priority = vary.between(0, 9) as u32;
        let text = format!("{arrival}-{}", vary.word(6));
        raw::send(queue, text.as_bytes(), priority).expect("grader: mq_send failed");
        let line = format!(
            "{kept}: priority {priority}, {} bytes: \"{text}\"\n",
            text.len()
        );
        expected.push_str(&line);
        watcher.wait_for_stdout(&line, LINE_TIMEOUT);
    }
    let run = watcher.wait(HANG_TIMEOUT);
    run.expect_success();
    if run.stdout_bytes != expected.as_bytes() {
        run.fail(
            format!("printed {:?}, expected {expected:?}", run.stdout),
            "one line per message, `NAME: priority P, N bytes: \"TEXT\"`, in the order they came",
        );
    }
}

#[test]
fn watch_stops_after_its_silence_limit() {
    let (first, _a) = kept_queue("quiet", 2, 32, &[(4, "before")]);
    let (second, _b) = kept_queue("silent", 2, 32, &[]);
    let started = Instant::now();
    let run = posix_mq(&[
        "watch",
        first.as_str(),
        second.as_str(),
        "--silence-ms",
        "150",
    ])
    .section(TASK_3)
    .why_if_timeout(
        "--silence-ms is poll's timeout: poll returns 0 when it passes with nothing readable",
    )
    .run();
    run.expect_success();
    if started.elapsed() < Duration::from_millis(150) {
        run.fail(
            format!(
                "stopped after {:?}, before the 150 ms of silence",
                started.elapsed()
            ),
            "poll returns 0 only when its timeout has passed with nothing readable",
        );
    }
    run.expect_stdout(
        &format!("{first}: priority 4, 6 bytes: \"before\"\nno message for 150 ms\n"),
        "print the message that was waiting, then `no message for MS ms` when poll times out",
    );
    assert_mq_transcript!(run);
}

// ---- TODO 4: notification ----------------------------------------------------

/// Waits until `running` prints `line`, failing with the likely cause if it
/// ends first (a signal it did not block) or takes too long.
fn await_line(running: &mut Running, line: &str, why_late: &str) {
    use std::os::unix::process::ExitStatusExt;
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        if running.stdout().contains(line) {
            return;
        }
        if let Blocked::Exited(status) = running.wait_until_blocked(Duration::from_millis(2)) {
            // Its last words may still be on their way through the pipe.
            if running.failure("").stdout.contains(line) {
                return;
            }
            let why = if status.signal() == Some(libc::SIGUSR1) {
                "SIGUSR1 killed it: block SIGUSR1 before mq_notify, since its default action \
                 ends the process and the notification may come at any moment; sigwaitinfo \
                 takes it"
            } else {
                "it ended on its own, before the test was done with it"
            };
            // A panic, if there was one, is reported instead: the likelier cause.
            running.fail(format!("ended ({status}) before printing {line:?}"), why);
        }
        if Instant::now() >= deadline {
            running.fail(
                format!("printed no {line:?} within {} s", LINE_TIMEOUT.as_secs()),
                why_late,
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Fails unless some process is registered for notification on `queue`.
fn expect_registered(running: &Running, queue: &raw::Queue, why: &str) {
    if !raw::someone_is_registered(queue) {
        running.fail("is not registered for notification", why);
    }
}

/// `notify --count 3 --by BY` on a fresh queue: three messages from the
/// test, one at a time, each announced. Returns the checked run.
fn three_notifications(by: &str, announced: impl Fn(usize) -> String) -> Run {
    let mut vary = Varied::new();
    let (kept, queue) = kept_queue(&format!("notify-{by}"), 4, 32, &[]);
    let mut listener = posix_mq(&["notify", kept.as_str(), "--by", by, "--count", "3"])
        .section(TASK_4)
        .start();
    for number in 1..=3 {
        await_line(
            &mut listener,
            &format!("waiting for notification {number}\n"),
            "after each notification, register again (mq_notify) before draining, drain the \
             queue until EAGAIN, then wait",
        );
        expect_registered(
            &listener,
            &queue,
            if number == 1 {
                "call mq_notify with the sigevent before waiting"
            } else {
                "a registration serves one notification: call mq_notify again after each one, \
                 before draining the queue"
            },
        );
        let text = format!("n{number}-{}", vary.word(5));
        let priority = vary.between(0, 9) as u32;
        raw::send(&queue, text.as_bytes(), priority).expect("grader: mq_send failed");
        let line = format!(
            "{}\npriority {priority}, {} bytes: \"{text}\"\n",
            announced(number),
            text.len()
        );
        await_line(
            &mut listener,
            &line,
            "the message arrived on an empty queue while you were registered: wait for the \
             notification, print it, then receive what is in the queue",
        );
    }
    let run = listener.wait(HANG_TIMEOUT);
    run.expect_success();
    if !run.stdout.ends_with("received 3 messages\n") {
        run.fail(
            "did not end with `received 3 messages`",
            "return once count messages are printed",
        );
    }
    run
}

#[test]
fn notify_by_signal_names_the_sender_and_registers_again() {
    let me = std::process::id();
    let run = three_notifications("signal", |number| {
        format!("notification {number}: SIGUSR1 from pid {me}")
    });
    assert_mq_transcript!(
        run,
        vec![
            (r"n(\d)-[a-z]+".to_string(), "n$1-[TEXT]".to_string()),
            (r"priority \d,".to_string(), "priority [P],".to_string())
        ]
    );
}

#[test]
fn notify_by_thread_delivers_every_message() {
    let run = three_notifications("thread", |number| {
        format!("notification {number}: in a new thread")
    });
    assert_mq_transcript!(
        run,
        vec![
            (r"n(\d)-[a-z]+".to_string(), "n$1-[TEXT]".to_string()),
            (r"priority \d,".to_string(), "priority [P],".to_string())
        ]
    );
}

#[test]
fn notify_drains_what_was_there_before_it_registered() {
    let (kept, queue) = kept_queue("early", 4, 32, &[(1, "early-1"), (5, "early-5")]);
    let mut listener = posix_mq(&["notify", kept.as_str(), "--count", "3"])
        .section(TASK_4)
        .start();
    await_line(
        &mut listener,
        "priority 5, 7 bytes: \"early-5\"\npriority 1, 7 bytes: \"early-1\"\nwaiting for \
         notification 1\n",
        "a message already in the queue when you register is never announced (notification \
         comes only when a message arrives on an empty queue): after mq_notify, receive what \
         is there until EAGAIN, then wait",
    );
    expect_registered(
        &listener,
        &queue,
        "register (mq_notify), then drain, then wait",
    );
    raw::send(&queue, b"late", 0).expect("grader: mq_send failed");
    let run = listener.wait(HANG_TIMEOUT);
    run.expect_success();
    assert_mq_transcript!(run);
}

#[test]
fn a_second_registration_fails_with_ebusy() {
    let (kept, queue) = kept_queue("busy", 2, 32, &[]);
    let mut first = posix_mq(&["notify", kept.as_str()]).section(TASK_4).start();
    await_line(
        &mut first,
        "waiting for notification 1\n",
        "register with mq_notify, drain, then print `waiting for notification 1`",
    );
    let second = posix_mq(&["notify", kept.as_str()])
        .section(TASK_4)
        .timeout(Duration::from_secs(3))
        .why_if_timeout(
            "only one process may be registered per queue: mq_notify fails with EBUSY for the \
             second; return that error instead of waiting",
        )
        .run();
    expect_one_line_error(
        &second,
        "EBUSY",
        "only one process may be registered per queue: mq_notify fails with EBUSY; report it",
    );
    assert_mq_transcript!(second);
    expect_registered(
        &first,
        &queue,
        "the first registration stays when a second process is refused",
    );
    raw::send(&queue, b"for the first", 0).expect("grader: mq_send failed");
    let run = first.wait(HANG_TIMEOUT);
    run.expect_success();
}

// ---- TODO 5: the client ------------------------------------------------------

/// The lab's client asking the server queue `server`, with a reply queue
/// from its sandbox (checked for by the leak check).
fn client_of(server: &str, args: &[&str]) -> Cmd {
    let sandbox = Sandbox::new();
    let reply = sandbox.posix_name("reply");
    lab()
        .cmd_in(sandbox, ["client", server, "--reply", &reply])
        .args(args.iter().copied())
        .timeout(HANG_TIMEOUT)
        .section(TASK_5)
        .why_if_timeout(
            "the client never got its answer and never gave up: receive on the reply queue \
             with mq_timedreceive and the deadline",
        )
}

/// Fails the run unless the test's server saw the documented request.
fn check_request(run: &Run, seen: Option<raw::Seen>, word: &str) {
    let Some(seen) = seen else {
        run.fail(
            "the server queue received no request",
            "open the server's queue (O_WRONLY) and send the request to it",
        );
    };
    let reply = run
        .command
        .split_whitespace()
        .nth(4)
        .unwrap_or("")
        .to_string();
    let expected = format!("{word} {}", seen.reply_as_run_shows_it);
    if seen.text_as_run_shows_it != expected {
        run.fail(
            format!(
                "the request was {:?}, expected {expected:?}",
                seen.text_as_run_shows_it
            ),
            "the request is the text `WORD REPLY`: protocol::request_text(word, reply)",
        );
    }
    if !run.stdout.contains(&format!("client: reply queue {reply}")) {
        run.fail(
            "did not announce its reply queue",
            "call created(reply) right after creating the reply queue",
        );
    }
    if seen.reply_capacity != Some((1, 256, 0o600)) {
        run.fail(
            format!(
                "the reply queue's (mq_maxmsg, mq_msgsize, mode) was {:?}, not (1, 256, 0600)",
                seen.reply_capacity
            ),
            "the reply queue holds 1 message of protocol::RESPONSE_MAX bytes, mode 0600",
        );
    }
}

#[test]
fn client_sends_the_documented_request_and_prints_the_ticket() {
    let (server, queue) = kept_queue("tickets", 8, 512, &[]);
    let answering = raw::serve_once(queue, 1, "ticket 7, served by pid 4242");
    let run = client_of(server.as_str(), &[]).run_unchecked();
    fail_if_panicked_or_hung(&run);
    check_request(&run, raw::seen_by(answering, &run), "ticket");
    run.check_finished_cleanly();
    run.expect_success();
    if !run.stdout.ends_with("\nticket 7, served by pid 4242\n") {
        run.fail(
            "did not print the server's reply",
            "a response of priority RESP_TICKET (1) carries the reply: return its text",
        );
    }
    assert_mq_transcript!(run);
}

#[test]
fn client_reports_a_refusal_and_still_removes_its_queue() {
    let (server, queue) = kept_queue("tickets", 8, 512, &[]);
    let answering = raw::serve_once(queue, 2, "unknown request \"refund\"");
    let run = client_of(server.as_str(), &["--request", "refund"]).run_unchecked();
    fail_if_panicked_or_hung(&run);
    check_request(&run, raw::seen_by(answering, &run), "refund");
    run.check_finished_cleanly();
    if run.code() == Some(0) {
        run.fail(
            "reported success for a refused request",
            "a response of priority RESP_ERROR (2) is a refusal: fail with `the server \
             refused: TEXT`",
        );
    }
    expect_one_line_error(&run, "refused", "fail with `the server refused: TEXT`");
    assert_mq_transcript!(run);
}

#[test]
fn client_without_a_server_says_so() {
    let nobody = Sandbox::new().posix_name("nobody");
    let run = client_of(&nobody, &[]).run();
    if !run.stderr.contains("no server is listening") {
        run.fail(
            "did not say that no server is listening",
            "mq_open of the server's name fails with ENOENT when no server runs: report \
             `no server is listening on NAME`",
        );
    }
    expect_one_line_error(&run, "listening", "one line, exit status 1");
    assert_mq_transcript!(
        run,
        vec![(
            r"/wb\d+x\d+-nobody".to_string(),
            "/[OTHER]-nobody".to_string()
        )]
    );
}

#[test]
fn client_gives_up_at_its_deadline_and_removes_its_queue() {
    // A queue under the server's name, and nobody serving it.
    let (server, queue) = kept_queue("nobody-serves", 8, 512, &[]);
    let run = run_until_deadline(
        client_of(server.as_str(), &["--timeout-ms", "250"]),
        Duration::from_millis(250),
        "deadline_after gives an absolute time, 250 ms from the start: one deadline bounds \
         the send and the receive together",
    );
    if !run.stderr.contains("before the time limit") {
        run.fail(
            "did not report that no reply came before the time limit",
            "mq_timedreceive fails with ETIMEDOUT at the deadline: report `no reply from the \
             server before the time limit` (and the guard unlinks the reply queue)",
        );
    }
    if raw::attributes(&queue).mq_curmsgs != 1 {
        run.fail(
            "the request did not reach the server's queue",
            "send the request before waiting for the response",
        );
    }
    expect_one_line_error(&run, "time limit", "one line, exit status 1");
    assert_mq_transcript!(run);
}

/// Fails the test at once if the program panicked or timed out: any other
/// message would be beside the point.
fn fail_if_panicked_or_hung(run: &Run) {
    if run.timed_out || run.stderr.contains("panicked at") {
        run.check_finished_cleanly();
    }
}

// ---- TODO 6: the server ------------------------------------------------------

/// The lab's server, started on a sandbox name and listening: it, and the
/// name of its queue.
fn start_server(args: &[&str]) -> (Running, String) {
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("tickets");
    let mut server = lab()
        .cmd_in(sandbox, ["server", &name])
        .args(args.iter().copied())
        .section(TASK_6)
        .why_if_timeout(
            "the server did not stop when asked: block SIGINT and SIGTERM, record them in a \
             handler, and wait with ppoll and the old mask; the loop checks the flag",
        )
        .start();
    server.wait_for_stdout("server: listening on ", SERVER_TIMEOUT);
    (server, name)
}

/// Kills the server and fails the test with what it printed.
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
        run.fail(
            ended,
            "ppoll fails with EINTR whenever a signal handler runs (a child's SIGCHLD): go \
             round the loop again",
        );
    }
    if run.stderr.contains("EAGAIN") {
        run.fail(
            ended,
            "the queue is non-blocking: EAGAIN means another reader took the request; go \
             round the loop again",
        );
    }
    run.fail(ended, "a server serves until it is asked to stop")
}

/// Asks the server with the test's own client, failing the test with the
/// server's output if it goes wrong.
fn ask(server: Running, name: &str, word: &str) -> (Running, raw::Reply) {
    match raw::ask(name, word) {
        Ok(reply) => (server, reply),
        Err(problem) => fail_with_server(
            server,
            format!("the test's client got no answer: {problem}"),
            "receive requests, fork, and answer from the child on the reply queue named in \
             the request (opened O_WRONLY | O_NONBLOCK), with the priority saying what the \
             answer is",
        ),
    }
}

/// Stops the server with `signal` once it is idle (every child reaped,
/// asleep), and returns its checked run.
fn stop_server(mut server: Running, signal: libc::c_int) -> Run {
    server.wait_until_alone(SERVER_TIMEOUT);
    if let Blocked::Exited(_) = server.wait_until_blocked(SERVER_TIMEOUT) {
        let run = server.wait_unchecked(SERVER_TIMEOUT);
        run.check_finished_cleanly();
        run.fail(
            "ended before it was asked to stop",
            "a server serves until SIGINT or SIGTERM",
        );
    }
    server.signal(signal);
    let run = server.wait_unchecked(SERVER_TIMEOUT);
    if run.signal() == Some(signal) {
        run.fail(
            format!("the server was killed by signal {signal} and could not unlink its queue"),
            "install handlers for SIGINT and SIGTERM that record the signal; the loop sees it \
             after ppoll fails with EINTR, unlinks the queue and returns",
        );
    }
    run.check_finished_cleanly();
    if run.code() == Some(1) && run.stderr.contains("ENOENT") {
        run.fail(
            "failed when it stopped, with ENOENT",
            "ENOENT from mq_unlink means that the name is gone already (someone unlinked it): \
             that is no error, the queue was yours all the same",
        );
    }
    run.expect_success();
    run
}

/// The pid in `ticket N, served by pid P`.
fn served_by(reply: &raw::Reply) -> Option<i64> {
    number_after(&reply.text, "served by pid ")
}

#[test]
fn server_answers_each_request_from_a_child_of_its_own() {
    let (server, name) = start_server(&[]);
    let server_pid = i64::from(server.pid());
    let (server, first) = ask(server, &name, "ticket");
    let (server, second) = ask(server, &name, "ticket");
    for (reply, ticket) in [(&first, 1), (&second, 2)] {
        if reply.priority != 1 || !reply.text.starts_with(&format!("ticket {ticket},")) {
            fail_with_server(
                server,
                format!("answered {reply:?}, expected ticket {ticket} with priority 1"),
                "count the tickets in the parent, before fork: a child's memory is a copy",
            );
        }
    }
    if served_by(&first) == Some(server_pid) || served_by(&second) == Some(server_pid) {
        fail_with_server(
            server,
            "the server answered from its own process".to_string(),
            "fork a child for each request and answer from the child, which puts its own pid \
             into the reply: the server goes back to ppoll at once",
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
    assert_mq_transcript!(run);
}

#[test]
fn server_unlinks_its_queue_when_interrupted() {
    let (server, name) = start_server(&[]);
    let (server, _) = ask(server, &name, "ticket");
    let run = stop_server(server, libc::SIGINT);
    if raw::open(&name, libc::O_RDONLY).is_ok() {
        run.fail("the queue's name is still there", "unlink it when you stop");
    }
    assert_mq_transcript!(run);
}

#[test]
fn server_refuses_an_unknown_request_and_ignores_a_malformed_one() {
    let (server, name) = start_server(&[]);
    let writer = raw::open(&name, libc::O_WRONLY).expect("grader: cannot open the server queue");
    raw::send(&writer, b"garbage", 0).expect("grader: mq_send failed");
    let (server, refused) = ask(server, &name, "refund");
    let (server, ticket) = ask(server, &name, "ticket");
    if refused.priority != 2 || refused.text != "unknown request \"refund\"" {
        fail_with_server(
            server,
            format!("answered {refused:?} to a request for a refund"),
            "refuse any word but `ticket` with priority RESP_ERROR (2) and the text of \
             protocol::refusal(word)",
        );
    }
    if !ticket.text.starts_with("ticket 1,") {
        fail_with_server(
            server,
            format!("answered {ticket:?} after a refusal, expected ticket 1"),
            "a refused request gets no ticket number",
        );
    }
    let run = stop_server(server, libc::SIGTERM);
    if !run
        .stdout
        .contains("ignored a malformed request of 7 bytes")
    {
        run.fail(
            "did not log the malformed request",
            "a request that protocol::parse_request rejects is logged and ignored",
        );
    }
    assert_mq_transcript!(run);
}

#[test]
fn server_serves_slow_requests_at_the_same_time() {
    const WORK: Duration = Duration::from_millis(200);
    const CLIENTS: usize = 4;
    let (server, name) = start_server(&["--work-ms", "200"]);
    let started = Instant::now();
    let replies: Vec<Result<raw::Reply, String>> = std::thread::scope(|scope| {
        let asking: Vec<_> = (0..CLIENTS)
            .map(|_| scope.spawn(|| raw::ask(&name, "ticket")))
            .collect();
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
    if elapsed >= WORK * 3 {
        fail_with_server(
            server,
            format!("{CLIENTS} requests of {WORK:?} each took {elapsed:?}"),
            "the server waited for each child before taking the next request: fork, and go \
             straight back to ppoll; reap children only with WNOHANG",
        );
    }
    stop_server(server, libc::SIGTERM);
}

#[test]
fn server_refuses_a_name_that_already_has_a_queue() {
    // A stale queue, as a server killed with SIGKILL leaves behind.
    let (kept, queue) = kept_queue("stale", 8, 512, &[(0, "ticket /stale.reply")]);
    let run = posix_mq(&["server", kept.as_str()])
        .section(TASK_6)
        .why_if_timeout(
            "the server went on with a queue it did not create: create it with O_CREAT | \
             O_EXCL, so that mq_open fails with EEXIST when the name is taken",
        )
        .run();
    if raw::attributes(&queue).mq_curmsgs != 1 {
        run.fail(
            "the stale queue was changed",
            "a server must never serve a queue it did not create: it may be another server's",
        );
    }
    if raw::open(kept.as_str(), libc::O_RDONLY).is_err() {
        run.fail(
            "the stale queue's name was unlinked",
            "a server that could not create its queue must leave the name alone: it is not \
             its own",
        );
    }
    expect_one_line_error(
        &run,
        "EEXIST",
        "mq_open(O_CREAT | O_EXCL) fails with EEXIST: return the error with the context \
         `create the server queue NAME`",
    );
    assert_mq_transcript!(run);
}

/// The arguments of the system call `pid` is in, from `/proc/PID/syscall`.
fn syscall_args(pid: u32) -> Vec<u64> {
    fs::read_to_string(format!("/proc/{pid}/syscall"))
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|word| u64::from_str_radix(word.trim_start_matches("0x"), 16).ok())
        .collect()
}

/// Whether the signals blocked by `pid` (`SigBlk` in `/proc/PID/status`)
/// include SIGINT and SIGTERM.
fn blocks_stop_signals(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let Some(mask) = status
        .lines()
        .find_map(|line| line.strip_prefix("SigBlk:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    else {
        return false;
    };
    let bit = |signal: libc::c_int| 1u64 << (signal - 1);
    mask & bit(libc::SIGINT) != 0 && mask & bit(libc::SIGTERM) != 0
}

#[test]
fn server_waits_for_requests_and_stop_signals_in_one_call() {
    let (mut server, _) = start_server(&[]);
    let pid = server.pid();
    let call = match server.wait_until_blocked(SERVER_TIMEOUT) {
        Blocked::In(call) => call,
        other => server.fail(
            format!("never went to sleep waiting for requests: {other:?}"),
            "wait for requests with ppoll on the queue's descriptor",
        ),
    };
    // Either ppoll (or pselect6, epoll_pwait) with a signal mask that lets
    // the stop signals in while it waits, or a wait with them blocked all
    // the time (a signalfd among the descriptors).
    let with_mask = ["ppoll", "pselect6", "epoll_pwait"].contains(&call.as_str())
        && syscall_args(pid).get(3).is_some_and(|&mask| mask != 0);
    if !with_mask && !blocks_stop_signals(pid) {
        let why = if call == "mq_timedreceive" {
            "a server asleep in mq_receive learns of SIGTERM only if the signal comes while \
             it sleeps: one that comes after the flag is checked and before mq_receive starts \
             waits for the next request. Block SIGINT and SIGTERM, and wait with ppoll and \
             the old mask: ppoll unblocks and waits in one step"
        } else {
            "a stop signal that comes after the flag is checked and before the wait starts \
             waits for the next request: block SIGINT and SIGTERM, and wait with ppoll and \
             the old mask, which unblocks them and waits in one step"
        };
        server.fail(
            format!("waits in {call} with SIGINT and SIGTERM unblocked outside the wait"),
            why,
        );
    }
    stop_server(server, libc::SIGTERM);
}

#[test]
fn server_keeps_serving_its_open_queue_after_the_name_is_unlinked() {
    let (server, name) = start_server(&[]);
    // A client that opened the queue before its name went.
    let writer = raw::open(&name, libc::O_WRONLY).expect("grader: cannot open the server queue");
    let unlinked = posix_mq(&["unlink", &name]).section(TASK_1).run();
    unlinked.expect_success();
    if raw::ask(&name, "ticket").is_ok() {
        fail_with_server(
            server,
            "a client found the server by a name that was unlinked".to_string(),
            "unlink calls mq_unlink(name)",
        );
    }
    let reply = match raw::ask_through(&writer, "ticket") {
        Ok(reply) => reply,
        Err(problem) => fail_with_server(
            server,
            format!("a client that had the queue open got no answer: {problem}"),
            "mq_unlink removes the name, not the queue: the server goes on serving those who \
             have it open",
        ),
    };
    if !reply.text.starts_with("ticket 1,") {
        fail_with_server(
            server,
            format!("answered {reply:?}"),
            "ticket 1 for the first request",
        );
    }
    let run = stop_server(server, libc::SIGTERM);
    assert_mq_transcript!(run);
}

#[test]
fn a_killed_server_leaves_its_queue_behind() {
    // SIGKILL cannot be caught: the name outlives the server, and the
    // grader has to remove it.
    let (server, name) = start_server(&[]);
    let run = server.kill();
    if !run
        .leaks
        .iter()
        .any(|leak| leak.kind == LeakKind::PosixQueue && name.ends_with(&leak.what[1..]))
    {
        run.fail(
            format!("no queue {name} was left: {:?}", run.leaks),
            "the server's queue has the name it was given",
        );
    }
    if raw::open(&name, libc::O_RDONLY).is_ok() {
        panic!("grader: the queue {name} of the killed server is still there");
    }
}

/// The C client (`labs/09-posix-mq/c/client.c`), compiled once per test run
/// with the system's C compiler, or `None` without one.
fn c_client() -> Option<&'static Path> {
    static CLIENT: OnceLock<Option<PathBuf>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            if !in_path("cc") {
                return None;
            }
            let source =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../labs/09-posix-mq/c/client.c");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("posix-mq-c-client");
            fs::create_dir_all(&dir).expect("grader: cannot create the C client's directory");
            let name = format!("client-{}", env!("CARGO_PKG_NAME"));
            let client = dir.join(&name);
            // Built by an earlier run from the same source: no need to build again.
            let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
            if let (Some(built), Some(written)) = (modified(&client), modified(&source))
                && built > written
            {
                return Some(client);
            }
            let building = dir.join(format!("{name}.{}", std::process::id()));
            let built = Cmd::new("cc", Sandbox::new())
                .args(["-Wall", "-Wextra", "-Werror", "-o"])
                .arg(&building)
                .arg(&source)
                .arg("-lrt")
                .run();
            built.expect_success();
            fs::rename(&building, &client).expect("grader: cannot move the C client");
            Some(client)
        })
        .as_deref()
}

#[test]
fn server_serves_a_client_written_in_c() {
    let (server, name) = start_server(&[]);
    let Some(c_client) = c_client() else {
        note(
            "no C compiler (cc) in PATH: the C client of labs/09-posix-mq/c/client.c was not \
             run; the server was checked with the suite's own client instead",
        );
        let (server, reply) = ask(server, &name, "ticket");
        if !reply.text.starts_with("ticket 1,") {
            fail_with_server(server, format!("answered {reply:?}"), "see the chapter");
        }
        stop_server(server, libc::SIGTERM);
        return;
    };
    let run_c_client = |word: &str| {
        let sandbox = Sandbox::new();
        let reply = sandbox.posix_name("c-reply");
        Cmd::new(c_client, sandbox)
            .display_name("client")
            .args([name.as_str(), &reply, word])
            .timeout(HANG_TIMEOUT)
            .chapter(CHAPTER)
            .section(TASK_6)
            .run()
    };
    let ticket = run_c_client("ticket");
    let refused = run_c_client("refund");
    if ticket.code() != Some(0) || !ticket.stdout.contains("ticket 1, served by pid") {
        fail_with_server(
            server,
            format!("the C client got {:?} {:?}", ticket.stdout, ticket.stderr),
            "keep the documented format: a request is `WORD REPLY`, a response's priority \
             says what it is (1: a ticket, 2: a refusal) and its text is the reply",
        );
    }
    if refused.code() != Some(1) || !refused.stderr.contains("unknown request \"refund\"") {
        fail_with_server(
            server,
            format!("the C client got {:?} {:?}", refused.stdout, refused.stderr),
            "refuse a request for a refund with priority RESP_ERROR (2)",
        );
    }
    stop_server(server, libc::SIGTERM);
    assert_mq_transcript!(ticket);
}

// ---- The test's own POSIX calls ----------------------------------------------

mod raw {
    //! POSIX message queue calls made by the test itself, straight to libc:
    //! preparing queues, looking at them, and playing the other side of the
    //! protocol. A failed call while preparing means the machine cannot
    //! grade this lab.

    use std::ffi::CString;
    use std::mem::MaybeUninit;
    use std::thread;
    use std::time::Duration;

    use grader::{KeptName, Run};

    // The documented wire format, written out independently of the lab.
    const RESPONSE_MAX: i64 = 256;

    /// An open queue descriptor, closed when dropped.
    #[derive(Debug)]
    pub struct Queue(libc::mqd_t);

    impl Drop for Queue {
        fn drop(&mut self) {
            // SAFETY: a descriptor mq_open returned, closed once.
            unsafe { libc::mq_close(self.0) };
        }
    }

    /// The errno of the last failed call.
    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// An errno in words.
    pub fn describe(errno: i32) -> String {
        std::io::Error::from_raw_os_error(errno).to_string()
    }

    fn c_name(name: &str) -> CString {
        CString::new(name).expect("grader: a name without NUL")
    }

    /// A new queue (`O_CREAT | O_EXCL | O_RDWR`) with `mode` and a capacity.
    pub fn create(name: &str, max_messages: i64, message_size: i64, mode: u32) -> Queue {
        // SAFETY: an all-integer struct; zero is a valid value for each field.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = max_messages;
        attr.mq_msgsize = message_size;
        let name = c_name(name);
        // SAFETY: a NUL-terminated name, a mode and a valid mq_attr.
        let mq = unsafe {
            libc::mq_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                mode,
                &attr as *const libc::mq_attr,
            )
        };
        assert!(mq >= 0, "grader: mq_open failed: {}", describe(errno()));
        Queue(mq)
    }

    /// Opens the queue `name` with `flags`; the errno if it fails.
    pub fn open(name: &str, flags: libc::c_int) -> Result<Queue, i32> {
        let name = c_name(name);
        // SAFETY: a NUL-terminated name, no O_CREAT.
        let mq = unsafe { libc::mq_open(name.as_ptr(), flags) };
        if mq >= 0 { Ok(Queue(mq)) } else { Err(errno()) }
    }

    /// The queue's `mq_attr`.
    pub fn attributes(queue: &Queue) -> libc::mq_attr {
        let mut attr = MaybeUninit::<libc::mq_attr>::zeroed();
        // SAFETY: mq_getattr fills the struct we pass.
        let done = unsafe { libc::mq_getattr(queue.0, attr.as_mut_ptr()) };
        assert!(
            done == 0,
            "grader: mq_getattr failed: {}",
            describe(errno())
        );
        // SAFETY: zeroed, then filled in by the kernel.
        unsafe { attr.assume_init() }
    }

    /// The permission bits and owner of the queue, from `fstat`.
    pub fn mode_and_owner(queue: &Queue) -> (u32, u32) {
        let mut stat = MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: fstat fills the struct we pass; the descriptor is open.
        let done = unsafe { libc::fstat(queue.0, stat.as_mut_ptr()) };
        assert!(done == 0, "grader: fstat failed: {}", describe(errno()));
        // SAFETY: filled in by the kernel.
        let stat = unsafe { stat.assume_init() };
        (stat.st_mode & 0o7777, stat.st_uid)
    }

    /// An absolute CLOCK_REALTIME time `after` from now.
    fn deadline(after: Duration) -> libc::timespec {
        let mut now = MaybeUninit::<libc::timespec>::zeroed();
        // SAFETY: clock_gettime fills the timespec we pass.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, now.as_mut_ptr()) };
        // SAFETY: zeroed, then filled in.
        let now = unsafe { now.assume_init() };
        let nanos = now.tv_nsec + after.subsec_nanos() as libc::c_long;
        libc::timespec {
            tv_sec: now.tv_sec + after.as_secs() as libc::time_t + nanos / 1_000_000_000,
            tv_nsec: nanos % 1_000_000_000,
        }
    }

    /// Sends one message, waiting at most 5 s for room; the errno if it fails.
    pub fn send(queue: &Queue, text: &[u8], priority: u32) -> Result<(), i32> {
        let until = deadline(super::HANG_TIMEOUT);
        // SAFETY: the kernel reads text.len() bytes and the timespec.
        let sent = unsafe {
            libc::mq_timedsend(queue.0, text.as_ptr().cast(), text.len(), priority, &until)
        };
        if sent == 0 { Ok(()) } else { Err(errno()) }
    }

    /// Receives one message, waiting at most `timeout`; `None` if none came.
    pub fn receive(queue: &Queue, timeout: Duration) -> Option<(u32, String)> {
        let size = attributes(queue).mq_msgsize as usize;
        let mut buffer = vec![0u8; size];
        let mut priority = 0;
        let until = deadline(timeout);
        // SAFETY: the kernel writes at most `size` bytes into the buffer.
        let length = unsafe {
            libc::mq_timedreceive(
                queue.0,
                buffer.as_mut_ptr().cast(),
                size,
                &mut priority,
                &until,
            )
        };
        let length = usize::try_from(length).ok()?;
        Some((
            priority,
            String::from_utf8_lossy(&buffer[..length]).into_owned(),
        ))
    }

    /// Every message in the queue, in the order it gives them.
    pub fn drain(queue: &Queue) -> Vec<(u32, String)> {
        let mut messages = Vec::new();
        while attributes(queue).mq_curmsgs > 0 {
            match receive(queue, Duration::ZERO) {
                Some(message) => messages.push(message),
                None => break,
            }
        }
        messages
    }

    /// Whether some process is registered for notification on the queue:
    /// our own registration then fails with EBUSY. If ours succeeds, nobody
    /// was: it is removed at once.
    pub fn someone_is_registered(queue: &Queue) -> bool {
        // SAFETY: an all-integer (and pointer) struct; zero is valid.
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_NONE;
        // SAFETY: mq_notify reads the sigevent.
        if unsafe { libc::mq_notify(queue.0, &event) } == 0 {
            // SAFETY: NULL removes our registration.
            unsafe { libc::mq_notify(queue.0, std::ptr::null()) };
            return false;
        }
        errno() == libc::EBUSY
    }

    /// A response as a client gets it: its priority and its text.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Reply {
        pub priority: u32,
        pub text: String,
    }

    /// The documented client: a reply queue of its own, one request to the
    /// queue `server`, one response.
    pub fn ask(server: &str, word: &str) -> Result<Reply, String> {
        let queue = open(server, libc::O_WRONLY)
            .map_err(|errno| format!("cannot open the server's queue: {}", describe(errno)))?;
        ask_through(&queue, word)
    }

    /// The documented client, through a descriptor of the server's queue
    /// that it already has.
    pub fn ask_through(server: &Queue, word: &str) -> Result<Reply, String> {
        let reply = KeptName::new("test-reply");
        let queue = create(reply.as_str(), 1, RESPONSE_MAX, 0o600);
        send(server, format!("{word} {reply}").as_bytes(), 0)
            .map_err(|errno| format!("the request could not be sent: {}", describe(errno)))?;
        let (priority, text) = receive(&queue, super::HANG_TIMEOUT)
            .ok_or_else(|| format!("no response within {:?}", super::HANG_TIMEOUT))?;
        Ok(Reply { priority, text })
    }

    /// What the test's server saw of the one request it answered, with the
    /// names as the client's transcript shows them.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub text: String,
        pub reply: String,
        pub reply_capacity: Option<(i64, i64, u32)>,
        pub text_as_run_shows_it: String,
        pub reply_as_run_shows_it: String,
    }

    /// The documented server for one request: waits for it on `queue`,
    /// answers `priority` and `text` on the reply queue it names, and
    /// reports what it saw.
    pub fn serve_once(
        queue: Queue,
        priority: u32,
        text: &'static str,
    ) -> thread::JoinHandle<Option<Seen>> {
        thread::spawn(move || {
            let (_, request) = receive(&queue, super::HANG_TIMEOUT)?;
            let reply = request.split_once(' ').map(|(_, r)| r.to_string())?;
            let answer = open(&reply, libc::O_WRONLY | libc::O_NONBLOCK).ok();
            let reply_capacity = answer.as_ref().map(|answer| {
                let attr = attributes(answer);
                (attr.mq_maxmsg, attr.mq_msgsize, mode_and_owner(answer).0)
            });
            if let Some(answer) = &answer {
                let _ = send(answer, text.as_bytes(), priority);
            }
            Some(Seen {
                text: request.clone(),
                reply: reply.clone(),
                reply_capacity,
                text_as_run_shows_it: String::new(),
                reply_as_run_shows_it: String::new(),
            })
        })
    }

    /// The test server's report, with its names normalised as `run` shows
    /// them, or a failure of the test's own.
    pub fn seen_by(server: thread::JoinHandle<Option<Seen>>, run: &Run) -> Option<Seen> {
        let seen = server
            .join()
            .unwrap_or_else(|_| panic!("grader: the test's server thread failed"))?;
        let prefix = run.sandbox.posix_prefix();
        Some(Seen {
            text_as_run_shows_it: seen.text.replace(prefix, "[PREFIX]-"),
            reply_as_run_shows_it: seen.reply.replace(prefix, "[PREFIX]-"),
            ..seen
        })
    }
}
