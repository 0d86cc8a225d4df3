//! Grading suite of lab 16 (the capstone: every mechanism, measured).
//!
//! Compiled into both the lab (`labs/16-capstone`) and the reference
//! solution; every test runs the program as a black box through the
//! grader, which also fails a test when a FIFO, a socket file, a System V
//! object, a POSIX name, a process or a zombie is left behind.
//!
//! Correctness only: each mechanism's test runs `capstone check`, one
//! round trip per message size, with sizes from 1 byte to 1 MiB that
//! change from run to run (always 1 and 1 MiB, the sizes on each side of
//! where the mechanism cuts a message into pieces, and two chosen at
//! random; 1 MiB first, the rest in a random order) and contents that
//! come from a seed chosen at random. The
//! program checks every byte on arrival; the test recomputes, from the
//! seed and the sizes, the FNV-1a checksum of everything each side must
//! have received, and compares it with what the program printed. It also
//! checks what each process holds once it has its end of the link (its
//! descriptors, shared mappings and blocked signals, which the program
//! reads from `/proc/self`) and which objects have a name before `fork`
//! and after the run.
//!
//! Speed is measured, never asserted: the one `bench` test is a tiny run
//! that checks the shape of what it prints and writes (table, CSV, SVG,
//! Markdown) against the machine it ran on. `WORKBOOK_SEED=N cargo test`
//! repeats a run's inputs.

use std::ffi::CString;
use std::fs;

use grader::{Cmd, KeptName, Lab, Run, Sandbox, Varied, assert_transcript};

const CHAPTER: &str = "16-capstone.md";

const TASK_1: &str = "Task 1: byte streams through pipes and FIFOs";
const TASK_2: &str = "Task 2: byte streams through sockets";
const TASK_3: &str = "Task 3: messages in pieces: Unix datagrams";
const TASK_4: &str = "Task 4: message queues";
const TASK_5: &str = "Task 5: a mailbox in shared memory";
const TASK_6: &str = "Task 6: other wake-ups: futex, spinning, eventfd, signals";
const BENCH: &str = "Measuring: capstone bench";

/// How long a check may take: a few megabytes, in milliseconds, even on a
/// loaded machine.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// The largest message.
const MAX_MESSAGE: usize = 1 << 20;

/// The lab's constants, written out again here: the bytes of a slot of
/// the shared region, and of a datagram. (The region itself is 1052672
/// bytes: a header of 4096, then two slots each way.)
const SLOT_BYTES: usize = 256 * 1024;
const DATAGRAM_BYTES: usize = 64 * 1024;

/// Values that change from run to run, replaced in snapshots once the
/// tests have checked them.
const FILTERS: &[(&str, &str)] = &[
    (r"--sizes \S+", "--sizes [SIZES]"),
    (r"--seed \d+", "--seed [SEED]"),
    (r"\[SANDBOX\]/ipc-key-\d+", "[KEY_FILE]"),
    (r"FNV-1a 0x[0-9a-f]{16}", "FNV-1a [CHECKSUM]"),
    (r"\d+ messages, \d+ bytes", "[N] messages, [BYTES] bytes"),
    (
        r"round trips: \d+, of \d+ to \d+ bytes",
        "round trips: [N], of [SMALLEST] to [LARGEST] bytes",
    ),
];

/// [`assert_transcript!`] with [`FILTERS`] and `more`.
macro_rules! assert_masked {
    ($run:expr) => {
        assert_masked!($run, &[])
    };
    ($run:expr, $more:expr) => {{
        let mut filters: Vec<(&str, &str)> = FILTERS.to_vec();
        filters.extend_from_slice($more);
        grader::insta::with_settings!({ filters => filters }, {
            assert_transcript!($run);
        });
    }};
}

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

// ---- what the program must have done, worked out here ---------------------------

/// Message `index` of the run seeded by `seed`, as the book defines it:
/// little-endian words of splitmix64 from `seed ^ index × 0xD1B54A32D192ED03`.
fn message(seed: u64, index: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    let mut state = seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for word in bytes.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        word.copy_from_slice(&z.to_le_bytes()[..word.len()]);
    }
    bytes
}

/// FNV-1a over `bytes`, continuing `hash`.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The line a check prints for one direction: `first` is 0 for what ping
/// sends (messages 0, 2, 4 …), 1 for what pong sends (1, 3, 5 …).
fn received_line(way: &str, seed: u64, sizes: &[usize], first: u64) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325;
    for (k, &size) in sizes.iter().enumerate() {
        hash = fnv1a(hash, &message(seed, 2 * k as u64 + first, size));
    }
    let bytes: usize = sizes.iter().sum();
    format!(
        "{way}: {} messages, {bytes} bytes, FNV-1a {hash:#018x}, every byte as sent",
        sizes.len()
    )
}

/// A number from a file of `/proc/sys`.
fn proc_limit(path: &str) -> usize {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| panic!("grader: cannot read {path}"))
}

/// The capacity of a new pipe on this machine (`F_GETPIPE_SZ`).
fn pipe_capacity() -> usize {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors, which are closed below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "grader: pipe");
    // SAFETY: F_GETPIPE_SZ takes no argument; the descriptors are ours.
    let capacity = unsafe { libc::fcntl(fds[0], libc::F_GETPIPE_SZ) };
    // SAFETY: closing our own descriptors, once.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    usize::try_from(capacity).unwrap_or(65536)
}

/// Message sizes for a check: 1 byte and 1 MiB, one byte below, at and
/// above each of `limits` (where a mechanism cuts a message into pieces,
/// or where a stream returns part of one), and two sizes chosen at
/// random; 1 MiB first, the others in a random order.
///
/// 1 MiB comes first so that a receiver that takes one `read` for a whole
/// message fails every time, not by luck. Before its receiver has read
/// anything, no stream has 1 MiB waiting to be read: a pipe holds 64 KiB,
/// a Unix stream socket some 200 KiB (its sender's `SO_SNDBUF`, 208 KiB by
/// default), a new TCP connection about its receiver's first `SO_RCVBUF`
/// (`tcp_rmem`'s default, 128 KiB); so the first `read` returns part of
/// the message.
/// Later in a run, TCP's buffers have grown with use (over loopback, to
/// megabytes) and a 1 MiB message may well arrive in one `read`.
fn sizes_around(varied: &mut Varied, limits: &[usize]) -> Vec<usize> {
    let mut sizes = vec![1, MAX_MESSAGE];
    for &limit in limits {
        sizes.extend([limit - 1, limit, limit + 1]);
    }
    sizes.push(varied.between(2, 200) as usize);
    sizes.push(varied.between(201, MAX_MESSAGE as u64 - 1) as usize);
    sizes.retain(|&size| (1..=MAX_MESSAGE).contains(&size));
    sizes.sort_unstable();
    sizes.dedup();
    varied.shuffle(&mut sizes);
    // A stable sort: the largest to the front, the others as shuffled.
    sizes.sort_by_key(|&size| size != MAX_MESSAGE);
    sizes
}

/// `1,2,3`.
fn joined(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(|size| size.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

// ---- one mechanism's check ----------------------------------------------------------

/// What a mechanism's check must show, and what to say when it does not.
struct Expected {
    /// The mechanism's name on the command line.
    mechanism: &'static str,
    /// The book section of its task.
    section: &'static str,
    /// Where it cuts messages into pieces.
    limits: Vec<usize>,
    /// `named before fork: …`, as normalised (`[SANDBOX]`, `[PREFIX]`,
    /// `[KEY_FILE]`).
    named: &'static str,
    /// Why `named before fork` might differ.
    why_named: &'static str,
    /// What ping, then pong, must hold, in any order.
    holds: [&'static [&'static str]; 2],
    /// Why they might hold something else.
    why_holds: &'static str,
    /// Why a message might arrive wrong, or the check fail.
    why_failed: &'static str,
    /// Why the check might never end.
    why_stuck: &'static str,
}

/// `capstone check MECHANISM …` in `sandbox`, with the sandbox's key
/// file, POSIX prefix (`/[PREFIX]-cap`) and directory.
fn check_in(sandbox: Sandbox, mechanism: &str, sizes: &[usize], seed: u64) -> Cmd {
    let key_file = sandbox.key_file().display().to_string();
    let prefix = sandbox.posix_name("cap");
    // The names the program makes from the prefix, handed out here too so
    // that the leak check looks for them where /dev/mqueue is not mounted.
    for suffix in ["ping", "pong", "shm"] {
        sandbox.posix_name(&format!("cap-{suffix}"));
    }
    let dir = sandbox.dir().display().to_string();
    lab()
        .cmd_in(
            sandbox,
            [
                "check",
                mechanism,
                "--sizes",
                &joined(sizes),
                "--seed",
                &seed.to_string(),
                "--key-file",
                &key_file,
                "--name",
                &prefix,
                "--dir",
                &dir,
            ],
        )
        .timeout(TIMEOUT)
}

/// Runs the mechanism's check with varied sizes and contents, and fails
/// unless it delivered every byte both ways, held what it should, and
/// left nothing behind. Returns the run, for its snapshot, and the
/// generator, which names the seed if the snapshot differs.
fn carries_every_byte(expected: Expected) -> (Run, Varied) {
    let mut varied = Varied::new();
    let sizes = sizes_around(&mut varied, &expected.limits);
    let seed = varied.between(1, 1 << 40);
    let run = check_in(Sandbox::new(), expected.mechanism, &sizes, seed)
        .section(expected.section)
        .why_if_timeout(expected.why_stuck)
        .run();
    expect_check_succeeded(&run, &expected);
    expect_named(
        &run,
        "named before fork",
        expected.named,
        expected.why_named,
    );
    for (at, role) in ["ping", "pong"].iter().enumerate() {
        expect_holds(&run, role, expected.holds[at], expected.why_holds);
    }
    for line in [
        received_line("ping → pong", seed, &sizes, 0),
        received_line("pong → ping", seed, &sizes, 1),
    ] {
        run.expect_line(
            &line,
            "each side checks every message as it arrives and prints how many messages and \
             bytes it received, with their FNV-1a checksum: all of them, in order",
        );
    }
    expect_named(
        &run,
        "named after the run",
        "nothing",
        "remove takes away every name open made",
    );
    (run, varied)
}

/// Fails, with the kind of error the program reported and the
/// mechanism's likely cause, unless the check exited with status 0.
fn expect_check_succeeded(run: &Run, expected: &Expected) {
    if run.code() == Some(0) {
        return;
    }
    let said = run
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("capstone: "))
        .unwrap_or("(nothing on stderr)");
    let what = if said.contains("differs at byte") {
        "a message arrived with other bytes than were sent"
    } else if said.contains("end-of-file after") {
        "a side saw end-of-file in the middle of a message"
    } else if said.contains("killed by signal") {
        "a side was killed by a signal"
    } else if said.contains("Message too long") {
        "a message, or a buffer, was refused as too long (EMSGSIZE)"
    } else if said.contains("Invalid argument") {
        "a call was refused as invalid (EINVAL)"
    } else if said.contains("panicked") {
        "a side panicked"
    } else {
        "the program reported an error"
    };
    // What the program said is on stderr, below; which side says it first
    // may change from run to run.
    run.fail(
        format!("check {} failed: {what}", expected.mechanism),
        expected.why_failed,
    );
}

/// Fails unless the line `what: …` says `expected`.
fn expect_named(run: &Run, what: &str, expected: &str, why: &str) {
    let prefix = format!("{what}: ");
    let found = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(mask_key_file);
    match found {
        Some(text) if text == expected => {}
        Some(text) => run.fail(format!("{what}: {text}; expected {expected}"), why),
        None => run.fail(format!("never printed `{what}: …`"), why),
    }
}

/// `text` with the sandbox's key file, `[SANDBOX]/ipc-key-N`, shown as
/// `[KEY_FILE]`.
fn mask_key_file(text: &str) -> String {
    const NAME: &str = "[SANDBOX]/ipc-key-";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(NAME) {
        out.push_str(&rest[..at]);
        out.push_str("[KEY_FILE]");
        rest = rest[at + NAME.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Fails unless `role holds: …` lists `expected`, in any order.
fn expect_holds(run: &Run, role: &str, expected: &[&str], why: &str) {
    let prefix = format!("{role} holds: ");
    let Some(text) = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
    else {
        run.fail(format!("never printed `{role} holds: …`"), why);
    };
    let mut held: Vec<&str> = if text == "nothing" {
        Vec::new()
    } else {
        text.split("; ").collect()
    };
    let mut wanted = expected.to_vec();
    held.sort_unstable();
    wanted.sort_unstable();
    if held != wanted {
        let shown = |items: &[&str]| match items {
            [] => "nothing".to_string(),
            items => items.join("; "),
        };
        run.fail(
            format!("{role} held {}; expected {}", shown(&held), shown(&wanted)),
            why,
        );
    }
}

// ---- Task 1: pipes and FIFOs ---------------------------------------------------------

#[test]
fn pipe_carries_every_byte_both_ways() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "pipe",
        section: TASK_1,
        limits: vec![pipe_capacity()],
        named: "nothing",
        why_named: "pipes have no name",
        holds: [
            &["pipe (write end)", "pipe (read end)"],
            &["pipe (read end)", "pipe (write end)"],
        ],
        why_holds: "after fork, each side keeps two ends (ping: the write end of ping_to_pong and \
                    the read end of pong_to_ping) and drops the other two: a pipe reports \
                    end-of-file only once every copy of its write end is closed",
        why_failed: "a pipe returns what has arrived, at most its capacity at a time: read until \
                     the message is full (0 is end-of-file), and write all of it (write_all)",
        why_stuck: "a side waited for bytes that never came: recv must read exactly \
                    message.len() bytes, and send must write them all",
    });
    assert_masked!(run);
}

#[test]
fn fifo_carries_every_byte_both_ways() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "fifo",
        section: TASK_1,
        limits: vec![pipe_capacity()],
        named: "FIFO [SANDBOX]/ping.fifo; FIFO [SANDBOX]/pong.fifo",
        why_named: "open makes both FIFOs in the work directory, names.path(\"ping.fifo\") and \
                    names.path(\"pong.fifo\"), with mkfifo, before fork",
        holds: [
            &[
                "FIFO [SANDBOX]/ping.fifo (write end)",
                "FIFO [SANDBOX]/pong.fifo (read end)",
            ],
            &[
                "FIFO [SANDBOX]/ping.fifo (read end)",
                "FIFO [SANDBOX]/pong.fifo (write end)",
            ],
        ],
        why_holds: "ping opens ping.fifo for writing and pong.fifo for reading; pong the other way \
                    round",
        why_failed: "a FIFO is a pipe with a name: read until the message is full, write all of \
                     it; open both FIFOs in end, after fork",
        why_stuck: "each open of a FIFO waits until the other end is opened too: both sides must \
                    open ping.fifo first (ping for writing, pong for reading), then pong.fifo; \
                    if each opens first the FIFO the other opens second, both wait for ever",
    });
    assert_masked!(run);
}

#[test]
fn fifo_reports_a_missing_directory() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("missing");
    let key_file = sandbox.key_file().display().to_string();
    let prefix = sandbox.posix_name("cap");
    let run = lab()
        .cmd_in(
            sandbox,
            [
                "check",
                "fifo",
                "--key-file",
                &key_file,
                "--name",
                &prefix,
                "--dir",
                &missing.display().to_string(),
            ],
        )
        .section(TASK_1)
        .timeout(TIMEOUT)
        .run();
    run.expect_one_line_error(
        "capstone",
        "No such file or directory",
        "mkfifo fails with ENOENT in a directory that does not exist: report it on one line, \
         naming the path (context `mkfifo PATH`), before anything is forked",
    );
    if !run.stderr.contains("mkfifo [SANDBOX]/missing/ping.fifo") {
        run.fail(
            "the error did not name the FIFO it could not make",
            "give mkfifo's error the context `mkfifo PATH`",
        );
    }
    assert_masked!(run);
}

#[test]
fn fifo_leaves_alone_a_path_that_is_taken() {
    let mut varied = Varied::new();
    let sandbox = Sandbox::new();
    let contents = varied.word(12);
    let taken = sandbox.write_file("pong.fifo", &contents);
    let run = check_in(sandbox, "fifo", &[1], 1).section(TASK_1).run();
    run.expect_one_line_error(
        "capstone",
        "File exists",
        "mkfifo fails with EEXIST where something has the name already: report it, naming the \
         path, after removing the FIFO you made first (ping.fifo)",
    );
    if fs::read_to_string(&taken).ok().as_deref() != Some(contents.as_str()) {
        run.fail(
            "the file that was at pong.fifo before the run was changed or removed",
            "remove only what open made: a name that was taken is someone else's",
        );
    }
    assert_masked!(run);
}

// ---- Task 2: sockets ------------------------------------------------------------------

#[test]
fn unix_stream_carries_every_byte_both_ways() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "unix-stream",
        section: TASK_2,
        limits: vec![pipe_capacity()],
        named: "socket file [SANDBOX]/pingpong.sock",
        why_named: "open binds a listening socket to names.path(\"pingpong.sock\") before fork",
        holds: [
            &["Unix stream socket (connected)"],
            &["Unix stream socket (connected)"],
        ],
        why_holds: "ping connects and pong accepts; both drop the listener, so that each side \
                    keeps only its connected socket",
        why_failed: "a stream socket keeps no boundaries: read until the message is full, write \
                     all of it",
        why_stuck: "pong accepts one connection and ping connects to the path: if neither \
                    connects, or both accept, both wait for ever",
    });
    assert_masked!(run);
}

#[test]
fn tcp_carries_every_byte_both_ways() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "tcp",
        section: TASK_2,
        limits: vec![pipe_capacity()],
        named: "nothing",
        why_named: "a TCP socket has an address, not a name in the file system",
        holds: [&["TCP socket (connected)"], &["TCP socket (connected)"]],
        why_holds: "ping connects to the listener's address and pong accepts; both drop the \
                    listener, so that each side keeps only its connected socket",
        why_failed: "a TCP connection is a byte stream: read until the message is full, write \
                     all of it; listen on 127.0.0.1 port 0 and connect to local_addr()",
        why_stuck: "pong accepts one connection and ping connects to the listener's address: if \
                    neither connects, or both accept, both wait for ever",
    });
    assert_masked!(run);
}

// ---- Task 3: datagrams ------------------------------------------------------------------

#[test]
fn unix_datagrams_carry_every_byte_both_ways() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "unix-dgram",
        section: TASK_3,
        limits: vec![DATAGRAM_BYTES, 2 * DATAGRAM_BYTES],
        named: "nothing",
        why_named: "a socket pair has no name",
        holds: [
            &["Unix datagram socket (connected)"],
            &["Unix datagram socket (connected)"],
        ],
        why_holds: "each side keeps its own socket of the pair and drops the other",
        why_failed: "a datagram is sent whole or refused (EMSGSIZE), never cut: send each \
                     message as pieces of DATAGRAM_BYTES, one send each, and take them back one \
                     recv each, checking each piece's length",
        why_stuck: "a side waited for a piece that never came: both sides must cut a message \
                    into the same pieces, of DATAGRAM_BYTES each but the last",
    });
    assert_masked!(run);
}

// ---- Task 4: message queues ---------------------------------------------------------------

#[test]
fn sysv_queue_carries_every_byte_both_ways() {
    let msgmax = proc_limit("/proc/sys/kernel/msgmax").min(proc_limit("/proc/sys/kernel/msgmnb"));
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "sysv-mq",
        section: TASK_4,
        limits: vec![msgmax, 3 * msgmax],
        named: "System V message queue, key ftok([KEY_FILE], 'Q')",
        why_named: "open creates one queue under ftok(key file, 'Q') with IPC_CREAT | IPC_EXCL",
        holds: [&[], &[]],
        why_holds: "a System V queue is reached by its identifier: a side holds no descriptor",
        why_failed: "msgsnd refuses a message longer than msgmax (EINVAL): send pieces of at \
                     most msgmax bytes, each with the sender's type (ping TO_PONG, pong \
                     TO_PING); each side takes only the type meant for it",
        why_stuck: "a side waited for a message that never came: msgrcv takes the type meant \
                    for this side (ping TO_PING, pong TO_PONG), never the type it sends",
    });
    assert_masked!(run);
}

#[test]
fn posix_queues_carry_every_byte_both_ways() {
    let message_size = proc_limit("/proc/sys/fs/mqueue/msgsize_max").min(64 * 1024);
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "posix-mq",
        section: TASK_4,
        limits: vec![message_size, 7 * message_size],
        named: "nothing",
        why_named: "unlink both queues in open, right after mq_open: fork gives each side the \
                     descriptors, and nobody needs the names any more",
        holds: [
            &[
                "POSIX message queue /[PREFIX]-cap-ping, name removed",
                "POSIX message queue /[PREFIX]-cap-pong, name removed",
            ],
            &[
                "POSIX message queue /[PREFIX]-cap-ping, name removed",
                "POSIX message queue /[PREFIX]-cap-pong, name removed",
            ],
        ],
        why_holds: "each side keeps both queues, names.posix(\"ping\") and names.posix(\"pong\"): \
                    it sends to one and receives from the other",
        why_failed: "mq_send refuses a message longer than mq_msgsize and mq_receive a buffer \
                     shorter than it (EMSGSIZE): send pieces of at most message_size bytes, \
                     receive each into the scratch buffer of message_size bytes",
        why_stuck: "a side waited for a message that never came: ping sends to the ping queue \
                    and receives from the pong queue, pong the other way round",
    });
    assert_masked!(run);
}

/// `msgget(key, IPC_CREAT | IPC_EXCL | 0600)` by the test.
fn make_sysv_queue(key: i32) -> i32 {
    // SAFETY: msgget takes no pointers.
    let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "grader: msgget failed");
    id
}

/// Whether the System V queue `id` still exists.
fn sysv_queue_exists(id: i32) -> bool {
    // SAFETY: msqid_ds is plain data that IPC_STAT fills.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one msqid_ds.
    unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) == 0 }
}

#[test]
fn a_taken_system_v_key_is_refused_and_left_alone() {
    let sandbox = Sandbox::new();
    let taken = make_sysv_queue(sandbox.key(b'Q'));
    let run = check_in(sandbox, "sysv-mq", &[1], 1)
        .section(TASK_4)
        .keep_sysv_objects()
        .run();
    let still_there = sysv_queue_exists(taken);
    // SAFETY: IPC_RMID takes no buffer; the queue is the test's.
    unsafe { libc::msgctl(taken, libc::IPC_RMID, std::ptr::null_mut()) };
    run.expect_one_line_error(
        "capstone",
        "File exists",
        "msgget with IPC_CREAT | IPC_EXCL fails with EEXIST when the key has a queue: report \
         it (context `msgget`)",
    );
    if !still_there {
        run.fail(
            "the queue that had the key before the run was removed",
            "a queue open did not make is someone else's: never remove it",
        );
    }
    assert_masked!(run);
}

#[test]
fn a_taken_posix_name_is_refused_and_left_alone() {
    let taken = KeptName::new("cap-pong");
    let prefix = taken
        .as_str()
        .strip_suffix("-pong")
        .unwrap_or_else(|| panic!("grader: a kept name without its suffix"))
        .to_string();
    let c_name = CString::new(taken.as_str()).unwrap_or_else(|_| panic!("grader: a NUL"));
    // SAFETY: mq_open with O_CREAT reads the name, a mode and no attributes.
    let queue = unsafe {
        libc::mq_open(
            c_name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600 as libc::mode_t,
            std::ptr::null::<libc::mq_attr>(),
        )
    };
    assert!(queue >= 0, "grader: mq_open failed");
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::mq_close(queue) };
    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file().display().to_string();
    let dir = sandbox.dir().display().to_string();
    let run = lab()
        .cmd_in(
            sandbox,
            [
                "check",
                "posix-mq",
                "--key-file",
                &key_file,
                "--name",
                &prefix,
                "--dir",
                &dir,
            ],
        )
        .section(TASK_4)
        .timeout(TIMEOUT)
        .run();
    let exists = |name: &str| {
        let c_name = CString::new(name).unwrap_or_else(|_| panic!("grader: a NUL"));
        // SAFETY: mq_open without O_CREAT takes the name and flags only.
        let queue = unsafe { libc::mq_open(c_name.as_ptr(), libc::O_RDONLY) };
        if queue >= 0 {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::mq_close(queue) };
        }
        queue >= 0
    };
    let pong_left = exists(taken.as_str());
    let ping_name = format!("{prefix}-ping");
    let ping_left = exists(&ping_name);
    if ping_left {
        let c_ping = CString::new(ping_name).unwrap_or_else(|_| panic!("grader: a NUL"));
        // SAFETY: a valid NUL-terminated name.
        unsafe { libc::mq_unlink(c_ping.as_ptr()) };
    }
    run.expect_one_line_error(
        "capstone",
        "File exists",
        "mq_open with O_CREAT | O_EXCL fails with EEXIST when the name is taken: report it, \
         naming the queue (context `mq_open NAME`)",
    );
    if ping_left {
        run.fail(
            "left the ping queue behind after the pong queue could not be made",
            "if the second mq_open fails, close and unlink the first queue before returning",
        );
    }
    if !pong_left {
        run.fail(
            "the queue that had the name before the run was removed",
            "a name open did not make is someone else's: never unlink it",
        );
    }
    assert_masked!(run, &[(r"wb\d+x\d+-", "[KEPT]-")]);
}

// ---- Task 5: shared memory and semaphores ---------------------------------------------------

/// Where a mailbox cuts messages into pieces. (A message of 1 MiB, in
/// every check, goes as four pieces through two slots: each slot is used
/// twice.)
fn slot_limits() -> Vec<usize> {
    vec![SLOT_BYTES]
}

#[test]
fn sysv_shared_memory_carries_every_byte_both_ways() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "sysv-shm",
        section: TASK_5,
        limits: slot_limits(),
        named: "System V semaphore set, key ftok([KEY_FILE], 'S')",
        why_named: "map marks the segment for removal (IPC_RMID) right after shmat, before fork: \
                    the attachment is inherited, and the segment lives until the last process \
                    detaches it. The semaphores keep their key until remove",
        holds: [
            &["System V shared memory, 1052672 bytes mapped"],
            &["System V shared memory, 1052672 bytes mapped"],
        ],
        why_holds: "each side keeps the attachment it inherited across fork: no second shmat",
        why_failed: "each piece of at most SLOT_BYTES goes to slot sent % SLOTS of the outgoing \
                     direction and comes from slot received % SLOTS of the incoming one \
                     (slot_offset); copy in between Empty and Full, copy out between Full and \
                     Empty",
        why_stuck: "a side waited at a door nobody rang: Mailbox::new rings Empty of the \
                    incoming direction SLOTS times; send waits Empty and rings Full of the \
                    outgoing direction; recv waits Full and rings Empty of the incoming one",
    });
    assert_masked!(run);
}

// ---- Task 6: other wake-ups ----------------------------------------------------------------------

const ANONYMOUS: &str = "anonymous shared memory, 1052672 bytes mapped";

#[test]
fn posix_shared_memory_with_futexes_carries_every_byte() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "posix-shm",
        section: TASK_6,
        limits: slot_limits(),
        named: "nothing",
        why_named: "map unlinks the POSIX object (shm_unlink) right after mmap: the mapping \
                    stays, the name goes",
        holds: [
            &["POSIX shared memory /[PREFIX]-cap-shm, name removed, 1052672 bytes mapped"],
            &["POSIX shared memory /[PREFIX]-cap-shm, name removed, 1052672 bytes mapped"],
        ],
        why_holds: "each side keeps the mapping it inherited across fork; the descriptor of \
                    shm_open may be closed once the object is mapped",
        why_failed: "ring adds 1 to the door's counter (Release) then wakes one waiter; wait \
                     takes 1 once the counter is above 0 (Acquire), and sleeps in futex_wait \
                     only while it is 0",
        why_stuck: "a side slept in futex_wait and nobody woke it: FUTEX_PRIVATE_FLAG (private: \
                    true) matches waiter and waker only within one process, and these are two; \
                    wake after every increment",
    });
    assert_masked!(run);
}

#[test]
fn spinning_shared_memory_carries_every_byte() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "spin",
        section: TASK_6,
        limits: slot_limits(),
        named: "nothing",
        why_named: "an anonymous shared mapping has no name",
        holds: [&[ANONYMOUS], &[ANONYMOUS]],
        why_holds: "each side keeps the anonymous mapping it inherited across fork",
        why_failed: "ring adds 1 to the door's counter with Ordering::Release; wait looks with \
                     Ordering::Acquire until it is above 0, then takes 1",
        why_stuck: "a side spun on a counter that never rose: ring adds 1 to the counter of \
                    door.index(), and wait takes 1 from it",
    });
    assert_masked!(run);
}

#[test]
fn eventfd_doors_carry_every_byte() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "eventfd",
        section: TASK_6,
        limits: slot_limits(),
        named: "nothing",
        why_named: "eventfds and an anonymous mapping have no name",
        holds: [
            &["eventfd", "eventfd", "eventfd", "eventfd", ANONYMOUS],
            &["eventfd", "eventfd", "eventfd", "eventfd", ANONYMOUS],
        ],
        why_holds: "both sides keep the four eventfds made before fork, and the mapping",
        why_failed: "ring writes 1 to the door's eventfd; wait reads it, which takes 1 with \
                     EFD_SEMAPHORE",
        why_stuck: "a side waited at a door whose rings were lost: without EFD_SEMAPHORE one \
                    read takes every ring at once, and a door rung twice lets one wait through",
    });
    assert_masked!(run);
}

#[test]
fn signal_doors_carry_every_byte() {
    let (run, _varied) = carries_every_byte(Expected {
        mechanism: "signal",
        section: TASK_6,
        limits: slot_limits(),
        named: "nothing",
        why_named: "signals and an anonymous mapping have no name",
        holds: [
            &[
                ANONYMOUS,
                "4 real-time signal(s) blocked, SIGRTMIN to SIGRTMIN+3",
            ],
            &[
                ANONYMOUS,
                "4 real-time signal(s) blocked, SIGRTMIN to SIGRTMIN+3",
            ],
        ],
        why_holds: "Signals::open blocks the four door signals, SIGRTMIN to SIGRTMIN+3, before \
                    fork, so that both sides are born with them blocked",
        why_failed: "block the four signals in Signals::open, before fork: a real-time signal \
                     that arrives while it is not blocked is delivered, and its default action \
                     ends the process",
        why_stuck: "a side waited for a signal that never came: ring sends door.index()'s \
                    real-time signal to the peer (sigqueue), wait takes that signal \
                    (sigwaitinfo)",
    });
    assert_masked!(run);
}

// ---- bench ------------------------------------------------------------------------------------------

/// The CPUs this test may run on, as the program will see them.
fn usable_cpus() -> usize {
    // SAFETY: cpu_set_t is plain data that sched_getaffinity fills.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes one cpu_set_t for this process.
    let ok = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } == 0;
    if !ok {
        return 0;
    }
    // SAFETY: CPU_COUNT reads the set.
    unsafe { libc::CPU_COUNT(&set) as usize }
}

/// `0-1` → 2, from `/sys/devices/system/cpu/online`.
fn online_cpus() -> usize {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    text.trim()
        .split(',')
        .filter_map(|range| {
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            Some(high.parse::<usize>().ok()? - low.parse::<usize>().ok()? + 1)
        })
        .sum()
}

/// A table row: `pipe rust 64 B p50 p99 MB/s`, its numbers.
fn table_row(run: &Run, size: &str) -> (f64, f64, f64) {
    let prefix_words = ["pipe", "rust"];
    for line in run.stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() == 7
            && words[..2] == prefix_words
            && format!("{} {}", words[2], words[3]) == size
        {
            let number = |at: usize| words[at].parse::<f64>().ok();
            if let (Some(p50), Some(p99), Some(rate)) = (number(4), number(5), number(6)) {
                return (p50, p99, rate);
            }
        }
    }
    run.fail(
        format!("no row `pipe rust {size} P50 P99 MB/s` in the table"),
        "bench prints one row per mechanism and size, once the session has measured it",
    );
}

#[test]
fn bench_reports_latency_and_throughput_per_size() {
    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file().display().to_string();
    let prefix = sandbox.posix_name("bench");
    let dir = sandbox.dir().display().to_string();
    let csv = sandbox.path("bench.csv");
    let svg = sandbox.path("bench.svg");
    let markdown = sandbox.path("bench.md");
    let run = lab()
        .cmd_in(
            sandbox,
            [
                "bench",
                "--mechanisms",
                "pipe",
                "--sizes",
                "64,4K",
                "--count",
                "30",
                "--warmup",
                "3",
                "--c-reference",
                "off",
                "--csv",
                &csv.display().to_string(),
                "--svg",
                &svg.display().to_string(),
                "--markdown",
                &markdown.display().to_string(),
                "--key-file",
                &key_file,
                "--name",
                &prefix,
                "--dir",
                &dir,
            ],
        )
        .section(BENCH)
        .timeout(TIMEOUT)
        .why_if_timeout("a pipe ping-pong of 66 round trips never finished: see task 1")
        .run();
    if run.code() != Some(0) {
        let said = run
            .stderr
            .lines()
            .find_map(|line| line.strip_prefix("capstone: "))
            .unwrap_or("(nothing on stderr)");
        run.fail(
            format!("bench failed: {said}"),
            "bench measures your pipe transport: make `capstone check pipe` pass first (task 1)",
        );
    }
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let machine = format!(
        "machine: Linux {} {}; ",
        kernel.trim(),
        std::env::consts::ARCH
    );
    let cpus = format!(
        "{} CPU(s) online, {} usable here",
        online_cpus(),
        usable_cpus()
    );
    if !run
        .stdout
        .lines()
        .any(|line| line.starts_with(&machine) && line.contains(&cpus))
    {
        run.fail(
            format!("never described this machine as `{machine}…; {cpus}`"),
            "bench starts with the machine it measures: kernel, architecture, processor, CPUs",
        );
    }
    for (size, bytes) in [("64 B", 64), ("4 KiB", 4096)] {
        let (p50, p99, rate) = table_row(&run, size);
        if !(p50 > 0.0 && p50 <= p99 && rate > 0.0) {
            run.fail(
                format!("the {size} row reads p50 {p50} µs, p99 {p99} µs, {rate} MB/s"),
                "a median is at most the 99th percentile, and both are above zero",
            );
        }
        let csv_text = fs::read_to_string(&csv).unwrap_or_default();
        let row = csv_text
            .lines()
            .find(|line| line.starts_with(&format!("pipe,byte stream,rust,{bytes},30,")));
        let Some(row) = row else {
            run.fail(
                format!("the CSV file has no row for pipe at {bytes} bytes"),
                "bench --csv FILE writes one row per mechanism, implementation and size",
            );
        };
        let fields: Vec<&str> = row.split(',').collect();
        let csv_p50 = fields
            .get(5)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(-1.0);
        if (csv_p50 / 1000.0 - p50).abs() > 0.051 + p50 * 0.001 {
            run.fail(
                format!("the CSV's p50 ({csv_p50} ns) is not the table's ({p50} µs)"),
                "the CSV file and the table come from the same measurements",
            );
        }
    }
    let svg_text = fs::read_to_string(&svg).unwrap_or_default();
    if !svg_text.starts_with("<svg") || !svg_text.trim_end().ends_with("</svg>") {
        run.fail(
            "bench --svg did not write an SVG document",
            "bench --svg FILE writes the chart there",
        );
    }
    let markdown_text = fs::read_to_string(&markdown).unwrap_or_default();
    if !markdown_text.contains("| pipe | byte stream |") {
        run.fail(
            "bench --markdown did not write a table row for pipe",
            "bench --markdown FILE writes the tables there",
        );
    }
    assert_masked!(
        run,
        &[
            (r"machine: .*", "machine: [MACHINE]"),
            (
                r"load average at start: .*",
                "load average at start: [LOAD]"
            ),
            (r"pinning: .*", "pinning: [PINNING]"),
            (r"\d+\.\d+", "[N]"),
            (r" +", " "),
        ]
    );
}
