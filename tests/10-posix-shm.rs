//! Grading suite of lab 10 (POSIX shared memory and semaphores, process-
//! shared mutexes and condition variables).
//!
//! Compiled into both the lab (`labs/10-posix-shm`) and the reference
//! solution. Most tests run a fixed shell script in which several
//! `posix-shm` processes, started one after another or side by side, meet
//! at one object: the program is `"$0"`, the object's name `"$1"` (a name
//! of the test's sandbox, `/[PREFIX]-obj`; scripts derive more names from
//! it, such as `"$1-b"`), numbers the test chose at random come as `"$2"`,
//! `"$3"` …; nothing from outside is spliced into a script. The grader
//! removes every object and semaphore left under the sandbox's prefix in
//! `/dev/shm` and fails the test for it.
//!
//! Three kinds of peers check that the lab's objects are what any POSIX
//! program expects: the test process itself (`shm_open` and `sem_open`
//! through libc), Python's `multiprocessing.shared_memory`, and a small C
//! program compiled with `cc` from the chapter's layout. A test whose peer
//! is missing says so on one line and checks the rest.
//!
//! Inputs that could be faked (sizes, counts, seeds, texts) change from run
//! to run (`grader::Varied`); a failure prints its seed, and
//! `WORKBOOK_SEED=N cargo test` replays it.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use grader::{Blocked, Cmd, Lab, Run, Running, Sandbox, Varied, assert_transcript};

const CHAPTER: &str = "10-posix-shm.md";

const TASK_1: &str = "Task 1: create, open, map, unlink";
const TASK_2: &str = "Task 2: named semaphores";
const TASK_3: &str = "Task 3: a robust mutex in shared memory";
const TASK_4: &str = "Task 4: add, and wait on a condition variable";
const TASK_5: &str = "Task 5: lay out a ring";
const TASK_6: &str = "Task 6: put and take";

/// A script of a dozen short commands, or a few thousand records.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test waits for a program to fall asleep or to say something.
const HANG: Duration = Duration::from_secs(5);

/// The scripts' handshake FIFOs: theirs to keep in the sandbox.
const FIFOS: [&str; 4] = ["holding", "holding2", "release", "release2"];

/// `asleep PID`: waits until process PID sleeps in futex(2), which is
/// where `sem_wait`, a contended lock and a condition wait sleep; fails
/// (status 1) if it ends, or after about 5 s. `$FUTEX` is the call's
/// number on this machine. The shell reads /proc itself (`read` is a
/// built-in), as the parent of the process it watches.
const ASLEEP: &str = r#"asleep() {
  i=0
  while [ $i -lt 2000 ]; do
    read -r _ _ state _ 2>/dev/null < "/proc/$1/stat" || return 1
    [ "$state" = Z ] && return 1
    read -r call _ 2>/dev/null < "/proc/$1/syscall" || return 1
    [ "$call" = "$FUTEX" ] && return 0
    i=$((i + 1)); sleep 0.002
  done
  return 1
}
"#;

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// `sh -c SCRIPT posix-shm /[PREFIX]-obj ARGS…` in a fresh sandbox.
fn script(section: &str, text: &str, args: &[String]) -> Cmd {
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("obj");
    script_in(sandbox, section, text).arg(name).args(args)
}

/// `sh -c SCRIPT posix-shm` in `sandbox`, with `asleep` defined when the
/// script uses it; the caller adds the arguments.
fn script_in(sandbox: Sandbox, section: &str, text: &str) -> Cmd {
    let text = if text.contains("asleep ") {
        format!("{ASLEEP}{text}")
    } else {
        text.to_string()
    };
    let fifos: Vec<PathBuf> = FIFOS.iter().map(|name| sandbox.path(name)).collect();
    let mut cmd = lab()
        .script_in(sandbox, &text)
        .env("FUTEX", libc::SYS_futex.to_string())
        .section(section)
        .timeout(TIMEOUT);
    for fifo in fifos {
        cmd = cmd.keeps(fifo);
    }
    cmd
}

/// `posix-shm ARGS…` in `sandbox`.
fn program_in(sandbox: Sandbox, section: &str, args: &[&str]) -> Cmd {
    lab()
        .cmd_in(sandbox, args)
        .section(section)
        .timeout(TIMEOUT)
}

/// Fails unless standard output has the whole line `line`.
fn expect_line(run: &Run, line: &str, why: &str) {
    run.expect_line(line, why);
}

/// Fails unless stderr has exactly `count` lines that contain `text`, and
/// every line of stderr is one of them or a usage error's.
fn expect_errors(run: &Run, text: &str, count: usize, why: &str) {
    let found = run.stderr.lines().filter(|l| l.contains(text)).count();
    if found != count {
        run.fail(
            format!("expected {count} error line(s) with `{text}` on stderr, found {found}"),
            why,
        );
    }
}

// ---- random inputs ----------------------------------------------------------

/// Words for a text that a fixed transcript could not contain.
fn text(vary: &mut Varied) -> String {
    const WORDS: [&str; 8] = [
        "amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor",
    ];
    (0..4)
        .map(|_| *vary.pick(&WORDS))
        .collect::<Vec<_>>()
        .join("-")
}

// ---- the record layout, written out again from the chapter ---------------------

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `check` word of record `sequence` of `producer`.
fn check_word(producer: u32, sequence: u32, seed: u64) -> u64 {
    let value = splitmix64(seed.wrapping_add((u64::from(producer) << 32) | u64::from(sequence)));
    let mut head = Vec::with_capacity(16);
    head.extend_from_slice(&producer.to_ne_bytes());
    head.extend_from_slice(&sequence.to_ne_bytes());
    head.extend_from_slice(&value.to_ne_bytes());
    fnv1a(&head)
}

/// The checksum of `count` records of `producer`: the wrapping sum of
/// their `check` words.
fn checksum(producer: u32, count: u32, seed: u64) -> u64 {
    (0..count).fold(0u64, |sum, sequence| {
        sum.wrapping_add(check_word(producer, sequence, seed))
    })
}

/// What a consumer said: records, checksum, torn, out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Took {
    records: u64,
    checksum: u64,
    torn: u64,
    out_of_order: u64,
}

/// Every `took N records: checksum 0x…, T torn, O out of order` line.
fn consumers(stdout: &str) -> Vec<Took> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.split("took ").nth(1)?;
            let (records, rest) = rest.split_once(" records: checksum 0x")?;
            let (sum, rest) = rest.split_once(", ")?;
            let (torn, rest) = rest.split_once(" torn, ")?;
            let out_of_order = rest.strip_suffix(" out of order")?;
            Some(Took {
                records: records.parse().ok()?,
                checksum: u64::from_str_radix(sum, 16).ok()?,
                torn: torn.parse().ok()?,
                out_of_order: out_of_order.parse().ok()?,
            })
        })
        .collect()
}

/// The checksum a producer printed (`producer P: put N records, checksum
/// 0x…`), by producer number.
fn producer_checksum(stdout: &str, producer: u32) -> Option<u64> {
    let marker = format!("producer {producer}: put ");
    stdout.lines().find_map(|line| {
        let rest = line.split(&marker).nth(1)?;
        let hex = rest.split("checksum 0x").nth(1)?;
        u64::from_str_radix(hex.trim(), 16).ok()
    })
}

// ---- the test process as a POSIX client -----------------------------------------

/// A named semaphore the test made with `sem_open`, unlinked and closed
/// when dropped (whatever the test did).
struct TestSemaphore {
    name: CString,
    sem: *mut libc::sem_t,
}

impl TestSemaphore {
    fn create(name: &str, value: u32) -> TestSemaphore {
        let name = CString::new(name).unwrap_or_else(|_| panic!("grader: a name with a NUL"));
        // SAFETY: a valid name; with O_CREAT sem_open reads a mode and a value.
        let sem = unsafe {
            libc::sem_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
                value as libc::c_uint,
            )
        };
        if sem == libc::SEM_FAILED {
            panic!(
                "grader: sem_open({name:?}) failed: {}",
                std::io::Error::last_os_error()
            );
        }
        TestSemaphore { name, sem }
    }

    fn post(&self) {
        // SAFETY: a semaphore sem_open returned, open until drop.
        unsafe { libc::sem_post(self.sem) };
    }

    fn value(&self) -> i32 {
        let mut value = -1;
        // SAFETY: as in post; `value` is a valid out-pointer.
        unsafe { libc::sem_getvalue(self.sem, &mut value) };
        value
    }

    /// Removes the name now (the semaphore stays usable through `self`).
    fn unlink(&self) {
        // SAFETY: a valid name.
        unsafe { libc::sem_unlink(self.name.as_ptr()) };
    }
}

impl Drop for TestSemaphore {
    fn drop(&mut self) {
        self.unlink();
        // SAFETY: closed exactly once.
        unsafe { libc::sem_close(self.sem) };
    }
}

/// A shared memory object the test made with `shm_open` and `ftruncate`,
/// read and written through its descriptor; unlinked when dropped.
struct TestObject {
    name: CString,
    file: File,
}

impl TestObject {
    fn create(name: &str, size: u64, text: &str) -> TestObject {
        let name = CString::new(name).unwrap_or_else(|_| panic!("grader: a name with a NUL"));
        // SAFETY: a valid name; shm_open takes plain integers otherwise.
        let fd = unsafe {
            libc::shm_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                0o600,
            )
        };
        if fd < 0 {
            panic!(
                "grader: shm_open({name:?}) failed: {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: a descriptor we own from here on.
        let file = unsafe { File::from_raw_fd(fd) };
        let object = TestObject { name, file };
        object
            .file
            .set_len(size)
            .unwrap_or_else(|e| panic!("grader: ftruncate failed: {e}"));
        object
            .file
            .write_all_at(text.as_bytes(), 0)
            .unwrap_or_else(|e| panic!("grader: write failed: {e}"));
        object
    }

    /// The text at the start of the object, up to the first NUL.
    fn text(&self) -> String {
        let mut bytes = vec![0; 256];
        let n = self.file.read_at(&mut bytes, 0).unwrap_or(0);
        bytes.truncate(n);
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }
}

impl Drop for TestObject {
    fn drop(&mut self) {
        // SAFETY: a valid name; harmless if it is gone already.
        unsafe { libc::shm_unlink(self.name.as_ptr()) };
    }
}

/// Says on one line, on the terminal, that part of a test was skipped.
fn say_skipped(what: &str) {
    let _ = writeln!(std::io::stderr(), "posix-shm suite: skipped {what}");
}

/// Whether `program` is found in `PATH`.
fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

// ---- TODO 1: create, open, map, unlink ---------------------------------------------

#[test]
fn an_object_lives_in_dev_shm_from_create_to_unlink() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096
"$0" info "$1"
stat -c 'in /dev/shm: %s bytes, mode %a' "/dev/shm/${1#/}"
"$0" write "$1" "kept by the kernel"
"$0" read "$1"
"$0" write "$1" "in the middle" --offset 2000
"$0" read "$1" --offset 2000
"$0" unlink "$1"
if [ -e "/dev/shm/${1#/}" ]; then echo "still in /dev/shm"; else echo "gone from /dev/shm"; fi
"$0" info "$1"; echo "info after unlink: exit status $?"
"#,
        &[],
    )
    .run();
    run.expect_success();
    if !run.stdout.contains("in /dev/shm: 4096 bytes, mode 600\n") {
        run.fail(
            "the file in /dev/shm does not have 4096 bytes and mode 600",
            "shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600) makes the file /dev/shm/NAME \
             with 0 bytes; ftruncate(fd, size) gives it its size",
        );
    }
    expect_line(
        &run,
        "kept by the kernel",
        "the object keeps its bytes with nobody mapping it: `read` must find what `write` \
         left there (map it with MAP_SHARED, through Mapping::new)",
    );
    expect_line(
        &run,
        "gone from /dev/shm",
        "shm_unlink(name) removes the name, and with it the file in /dev/shm",
    );
    expect_errors(
        &run,
        "ENOENT",
        1,
        "after shm_unlink, shm_open of the name fails with ENOENT: report it with context",
    );
    assert_transcript!(run);
}

#[test]
fn info_reports_the_size_that_fstat_gives() {
    let mut vary = Varied::new();
    let size = vary.between(1, 3_000_000);
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" "$2" >/dev/null
"$0" info "$1"
stat -c 'stat: %s' "/dev/shm/${1#/}"
"$0" unlink "$1"
"#,
        &[size.to_string()],
    )
    .run();
    run.expect_success();
    if !run.stdout.contains(&format!("stat: {size}\n")) {
        run.fail(
            format!("the file in /dev/shm does not have {size} bytes"),
            "a new object has 0 bytes: ftruncate(fd, size) gives it its size",
        );
    }
    let said = format!(": {size} bytes, mode 600, owner = you");
    if !run.stdout.lines().any(|line| line.ends_with(&said)) {
        run.fail(
            format!("info did not report {size} bytes, mode 600, owner = you"),
            "open must fill Object from fstat on the descriptor: st_size, st_mode & 0o777, \
             st_uid; create must ftruncate to the size asked for",
        );
    }
}

#[test]
fn create_refuses_a_name_that_exists() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096
"$0" write "$1" "first"
"$0" create "$1" 100; echo "create again: exit status $?"
"$0" info "$1"
"$0" read "$1"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    if !run.stdout.contains("create again: exit status 1") || !run.stderr.contains("EEXIST") {
        run.fail(
            "a second create of the same name did not fail with EEXIST",
            "create with O_CREAT | O_EXCL: without O_EXCL, shm_open quietly opens the object \
             that is already there (and ftruncate then changes its size)",
        );
    }
    expect_line(
        &run,
        "first",
        "the existing object must be left alone: neither truncated nor rewritten",
    );
    assert_transcript!(run);
}

#[test]
fn names_that_are_not_portable_are_refused() {
    let run = script(
        TASK_1,
        r#"
for name in "${1#/}" "$1/inner" "/" ""; do
  "$0" create "$name" 4096; echo "create '$name': exit status $?"
done
"$0" create; echo "create without a name: exit status $?"
"$0" create "$1" 0; echo "create with 0 bytes: exit status $?"
"$0" create "$1" 1 >/dev/null && "$0" unlink "$1" && echo "create '$1': fine"
"#,
        &[],
    )
    .run_unchecked();
    if run.stdout.contains("create '[PREFIX]-obj': exit status 0") {
        run.fail(
            "created an object for a name without a leading '/'",
            "glibc's shm_open accepts `name` as if it were `/name`, but POSIX leaves such \
             names to each system: check_name must refuse anything that does not start with '/'",
        );
    }
    run.check_finished_cleanly();
    let refused = run.stdout.matches("': exit status 1").count();
    if refused != 4 {
        run.fail(
            format!("{refused} of the 4 bad names were refused with exit status 1"),
            "check_name must refuse a name without a leading '/', with another '/', with \
             nothing after the '/', and the empty name, before any system call",
        );
    }
    expect_errors(
        &run,
        "is not a POSIX IPC name",
        4,
        "each refusal is one line: `\"NAME\" is not a POSIX IPC name: RULE`",
    );
    expect_line(
        &run,
        "create without a name: exit status 2",
        "a missing argument is a usage error (clap exits with 2)",
    );
    expect_line(
        &run,
        "create '/[PREFIX]-obj': fine",
        "a name such as /jobs is portable and must work",
    );
    assert_transcript!(run);
}

#[test]
fn reads_and_writes_stay_within_the_object() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 100 >/dev/null
"$0" write "$1" "hello" --offset 96; echo "write past the end: exit status $?"
"$0" write "$1" "hello" --offset 95 && echo "write up to the last byte: fine"
"$0" read "$1" --offset 95
"$0" read "$1" --offset 101; echo "read past the end: exit status $?"
"$0" unlink "$1"
umask 022; : > "/dev/shm/${1#/}-empty"
"$0" info "$1-empty"
"$0" read "$1-empty"; echo "read an empty object: exit status $?"
"$0" unlink "$1-empty"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "hello",
        "the last 5 bytes of a 100-byte object are at offset 95",
    );
    expect_line(
        &run,
        "read an empty object: exit status 1",
        "an object of 0 bytes cannot be mapped: map must say so instead of calling mmap",
    );
    expect_errors(
        &run,
        "is empty (0 bytes)",
        1,
        "map's error for an empty object is `NAME is empty (0 bytes): nothing to map`",
    );
    assert_transcript!(run);
}

#[test]
fn the_objects_mode_is_enforced() {
    // Permissions are the point here, so the objects are not 0600; and
    // the script runs without root's override of file permissions.
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 4096 --mode 400
"$0" info "$1"
"$0" write "$1" "x"; echo "write to a 400 object: exit status $?"
"$0" read "$1" >/dev/null && echo "read a 400 object: fine"
"$0" create "$1-none" 4096 --mode 000
"$0" read "$1-none"; echo "read a 000 object: exit status $?"
"$0" unlink "$1-none"
"$0" unlink "$1"
"#,
        &[],
    )
    .obey_file_permissions()
    .run();
    run.expect_success();
    expect_line(
        &run,
        "write to a 400 object: exit status 1",
        "writing needs shm_open with O_RDWR, which the mode 400 refuses (EACCES): open \
         must ask for O_RDWR only when `writable`",
    );
    expect_line(
        &run,
        "read a 400 object: fine",
        "reading needs only O_RDONLY and a PROT_READ mapping: open must not ask for more",
    );
    expect_errors(
        &run,
        "EACCES",
        2,
        "shm_open fails with EACCES when the mode denies the access: keep the errno",
    );
    assert_transcript!(run);
}

#[test]
fn python_opens_the_labs_object_by_name_and_back() {
    let mut vary = Varied::new();
    let (ours, theirs) = (text(&mut vary), text(&mut vary));
    let python = in_path("python3");
    let text = if python {
        r#"
set -e
"$0" create "$1" 4096 >/dev/null
"$0" write "$1" "$2"
python3 -c "$PEER_PY" "$1" "$3" "$1-py"
"$0" read "$1"
"$0" unlink "$1"
"$0" info "$1-py"
"$0" read "$1-py"
"$0" unlink "$1-py"
"#
    } else {
        r#"
"$0" create "$1" 4096 >/dev/null
"$0" write "$1" "$2"
"$0" read "$1"
"$0" unlink "$1"
"#
    };
    let run = script(TASK_1, text, &[ours.clone(), theirs.clone()])
        .env("PEER_PY", PEER_PY)
        .run();
    run.expect_success();
    if !python {
        say_skipped("the Python peer: python3 is not on PATH");
        expect_line(&run, &ours, "read must print what write stored");
        return;
    }
    let python_saw = format!("python: 4096 bytes, text '{ours}'");
    if !run.stdout.lines().any(|line| line == python_saw) {
        run.fail(
            format!("Python did not find {ours:?} in the lab's object"),
            "any POSIX program opens the object by its name: shm_open(\"/NAME\") with the \
             bytes that write stored at offset 0, and the size from ftruncate",
        );
    }
    for (line, why) in [
        (
            theirs.clone(),
            "read must see what another program stored in the object",
        ),
        (
            "/[PREFIX]-obj-py: 1000 bytes, mode 600, owner = you".to_string(),
            "an object Python created is opened by name like any other",
        ),
    ] {
        if !run.stdout.lines().any(|l| l == line) {
            run.fail(format!("never printed {line:?}"), why);
        }
    }
}

#[test]
fn the_lab_uses_an_object_another_program_made() {
    let mut vary = Varied::new();
    let (before, after) = (text(&mut vary), text(&mut vary));
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("obj");
    let object = TestObject::create(&name, 512, &before);
    let run = script_in(
        sandbox,
        TASK_1,
        r#"
"$0" info "$1"
"$0" read "$1"
"$0" write "$1" "$2"
"$0" unlink "$1"
"#,
    )
    .arg(&name)
    .arg(&after)
    .run();
    run.expect_success();
    if !run.stdout.lines().any(|line| line == before) {
        run.fail(
            format!("read did not print {before:?}, which the test stored"),
            "open the object by name (shm_open with O_RDONLY) and map it: the bytes are \
             those another process stored",
        );
    }
    if !object.text().starts_with(&after) {
        run.fail(
            format!("the test's descriptor does not see {after:?}"),
            "a MAP_SHARED mapping writes into the object itself, which every process sees",
        );
    }
}

// ---- TODO 2: named semaphores -------------------------------------------------------

#[test]
fn a_named_semaphore_lives_in_dev_shm() {
    let run = script(
        TASK_2,
        r#"
"$0" sem create "$1" 2
stat -c 'in /dev/shm as sem.NAME: %s bytes, mode %a' "/dev/shm/sem.${1#/}"
"$0" sem value "$1"
"$0" sem try "$1"
"$0" sem try "$1"
"$0" sem try "$1"; echo "try at 0: exit status $?"
"$0" sem post "$1"
"$0" sem value "$1"
"$0" sem wait "$1"
"$0" sem value "$1"
"$0" sem unlink "$1"
if [ -e "/dev/shm/sem.${1#/}" ]; then echo "still in /dev/shm"; else echo "gone from /dev/shm"; fi
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "try at 0: exit status 1",
        "sem_trywait fails with EAGAIN at 0: try_wait returns Ok(false), never waits",
    );
    expect_errors(
        &run,
        "EAGAIN",
        1,
        "the refusal names EAGAIN (the command line says so when try_wait returns false)",
    );
    assert_transcript!(run);
}

#[test]
fn a_semaphore_starts_at_the_value_it_was_given() {
    let mut vary = Varied::new();
    let value = vary.between(1, 5000);
    let run = script(
        TASK_2,
        r#"
"$0" sem create "$1" "$2" >/dev/null
"$0" sem value "$1"
"$0" sem try "$1" >/dev/null
"$0" sem value "$1"
"$0" sem unlink "$1"
"#,
        &[value.to_string()],
    )
    .run();
    run.expect_success();
    let values: Vec<&str> = run.stdout.lines().collect();
    let expected = [value.to_string(), (value - 1).to_string()];
    if values != expected {
        run.fail(
            format!("the values were {values:?}, expected {expected:?}"),
            "sem_open(name, O_CREAT | O_EXCL, mode, value): pass the value asked for",
        );
    }
}

#[test]
fn sem_create_refuses_what_it_cannot_do() {
    let run = script(
        TASK_2,
        r#"
"$0" sem create "$1" 1 >/dev/null
"$0" sem create "$1" 5; echo "create again: exit status $?"
"$0" sem value "$1"
"$0" sem create "$1-big" 3000000000; echo "create above SEM_VALUE_MAX: exit status $?"
"$0" sem value "$1-none"; echo "value of a missing semaphore: exit status $?"
"$0" sem create "${1#/}" 1; echo "create without a leading slash: exit status $?"
"$0" sem create "$1-x"; echo "create without a value: exit status $?"
"$0" sem unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    if !run.stdout.contains("create again: exit status 1") || !run.stderr.contains("EEXIST") {
        run.fail(
            "a second create of the same semaphore did not fail with EEXIST",
            "sem_open with O_CREAT | O_EXCL refuses a name that exists; with O_CREAT alone it \
             opens it and ignores the value",
        );
    }
    expect_line(&run, "1", "the existing semaphore keeps its value");
    expect_line(
        &run,
        "create above SEM_VALUE_MAX: exit status 1",
        "sem_open fails with EINVAL for a value above SEM_VALUE_MAX: keep the errno",
    );
    assert_transcript!(run);
}

/// The test makes a semaphore at 0; the lab's `sem wait` must sleep on it
/// until the test posts. Returns the running waiter once it sleeps.
fn start_waiter(extra: &[&str]) -> (Running, TestSemaphore) {
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("sem");
    let sem = TestSemaphore::create(&name, 0);
    let mut args = vec!["sem", "wait", name.as_str()];
    args.extend_from_slice(extra);
    let mut waiter = program_in(sandbox, TASK_2, &args)
        .why_if_timeout("sem_wait sleeps until another process posts: call it, do not poll")
        .start();
    waiter.wait_until_blocked_in(libc::SYS_futex, HANG);
    (waiter, sem)
}

/// Posts, removes the name, collects the waiter: it must have taken the unit.
fn post_and_collect(waiter: Running, sem: &TestSemaphore) -> Run {
    sem.post();
    sem.unlink();
    let run = waiter.wait(HANG);
    run.expect_success();
    if sem.value() != 0 {
        run.fail(
            format!("after the wait the value is {}, not 0", sem.value()),
            "sem_wait takes one unit: the one the test posted",
        );
    }
    run
}

#[test]
fn sem_wait_sleeps_until_another_process_posts() {
    let (waiter, sem) = start_waiter(&[]);
    let run = post_and_collect(waiter, &sem);
    expect_line(
        &run,
        "took one from /[PREFIX]-sem",
        "wait returns Ok once sem_wait has taken a unit",
    );
    assert_transcript!(run);
}

/// Interrupts a sleeping `sem wait` with SIGUSR1 and checks that it goes
/// back to sleep instead of giving up.
fn wait_through_a_signal(extra: &[&str]) -> Run {
    let (mut waiter, sem) = start_waiter(extra);
    waiter.signal(libc::SIGUSR1);
    let deadline = Instant::now() + HANG;
    while !waiter.stdout().contains("interrupted by a signal") {
        if let Blocked::Exited(_) = waiter.wait_until_blocked(Duration::from_millis(2)) {
            waiter.fail(
                "sem wait ended when a signal interrupted its wait",
                "sem_wait and sem_timedwait fail with EINTR when a signal handler runs while \
                 they sleep, having taken nothing: that is not an error. Call interrupted() \
                 and wait again (until the same deadline)",
            );
        }
        if Instant::now() > deadline {
            waiter.fail(
                "never said it was interrupted by the signal",
                "when sem_wait fails with EINTR, call interrupted() (it prints the line), \
                 then wait again",
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    waiter.wait_until_blocked_in(libc::SYS_futex, HANG);
    post_and_collect(waiter, &sem)
}

#[test]
fn sem_wait_sleeps_again_after_a_signal() {
    let run = wait_through_a_signal(&[]);
    assert_transcript!(run);
}

#[test]
fn sem_timedwait_sleeps_again_after_a_signal() {
    let run = wait_through_a_signal(&["--timeout-ms", "20000"]);
    assert_transcript!(run);
}

#[test]
fn sem_wait_gives_up_at_its_deadline() {
    let started = Instant::now();
    let run = script(
        TASK_2,
        r#"
"$0" sem create "$1" 0 >/dev/null
"$0" sem wait "$1" --timeout-ms 100; echo "wait: exit status $?"
"$0" sem unlink "$1"
"#,
        &[],
    )
    .run();
    let elapsed = started.elapsed();
    run.expect_success();
    expect_line(
        &run,
        "wait: exit status 1",
        "sem_timedwait fails with ETIMEDOUT at its deadline: report `timed out after N ms`",
    );
    expect_errors(
        &run,
        "timed out after 100 ms",
        1,
        "wait's error for ETIMEDOUT is `timed out after N ms`",
    );
    if elapsed < Duration::from_millis(100) {
        run.fail(
            format!(
                "gave up after {} ms, before its 100 ms",
                elapsed.as_millis()
            ),
            "a deadline is an absolute time: Deadline::after(timeout), then sem_timedwait \
             sleeps until then",
        );
    }
    assert_transcript!(run);
}

#[test]
fn the_semaphores_mode_is_enforced() {
    let run = script(
        TASK_2,
        r#"
"$0" sem create "$1" 1 --mode 400
"$0" sem post "$1"; echo "post to a 400 semaphore: exit status $?"
"$0" sem unlink "$1"
"#,
        &[],
    )
    .obey_file_permissions()
    .run();
    run.expect_success();
    expect_line(
        &run,
        "post to a 400 semaphore: exit status 1",
        "sem_open needs read and write permission: a semaphore created with mode 400 \
         refuses it (EACCES)",
    );
    expect_errors(&run, "EACCES", 1, "keep sem_open's errno in the error");
    assert_transcript!(run);
}

#[test]
fn the_lab_and_the_test_share_a_semaphore() {
    let mut vary = Varied::new();
    let value = vary.between(2, 50) as u32;
    let sandbox = Sandbox::new();
    let name = sandbox.posix_name("sem");
    let sem = TestSemaphore::create(&name, value);
    let run = script_in(
        sandbox,
        TASK_2,
        r#"
"$0" sem value "$1"
"$0" sem try "$1"
"$0" sem wait "$1" --timeout-ms 1000
"$0" sem post "$1"
"$0" sem unlink "$1"
"#,
    )
    .arg(&name)
    .run();
    run.expect_success();
    if run.stdout.lines().next() != Some(value.to_string().as_str()) {
        run.fail(
            format!("the lab did not read the value {value} the test gave the semaphore"),
            "sem_open(name, 0) opens a semaphore that another process created",
        );
    }
    if sem.value() != value as i32 - 1 {
        run.fail(
            format!(
                "after a try, a wait and a post, the test sees {}, not {}",
                sem.value(),
                value - 1
            ),
            "every process that opens the name shares one semaphore",
        );
    }
}

// ---- TODO 3: a robust mutex in shared memory --------------------------------------

#[test]
fn a_counter_is_initialised_then_published() {
    let run = script(
        TASK_3,
        r#"
"$0" counter create "$1"
stat -c 'in /dev/shm: %s bytes, mode %a' "/dev/shm/${1#/}"
od -An -tx4 -N4 "/dev/shm/${1#/}" | tr -d ' ' | sed 's/^/magic word: 0x/'
"$0" counter show "$1"
"$0" counter create "$1"; echo "create again: exit status $?"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "magic word: 0x52544e43",
        "store COUNTER_MAGIC in `magic` (Ordering::Release) once the mutex and the \
         condition variable are initialised",
    );
    assert_transcript!(run);
}

#[test]
fn only_counters_are_opened_as_counters() {
    let run = script(
        TASK_3,
        r#"
"$0" create "$1" 4096 >/dev/null
"$0" counter show "$1"; echo "a plain object: exit status $?"
"$0" unlink "$1"
"$0" create "$1" 8 >/dev/null
"$0" counter show "$1"; echo "an 8-byte object: exit status $?"
"$0" unlink "$1"
"$0" counter show "$1"; echo "no object: exit status $?"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_errors(
        &run,
        "is not a counter",
        2,
        "counter_open must check the size, then the magic word (Mapping::load_u32(0)), \
         before it views the object as a CounterBlock",
    );
    assert_transcript!(run);
}

/// A counter at 5, a holder killed with SIGKILL half-way through adding
/// 1000, then two more holders that each add 1.
const CRASH: &str = r#"
"$0" counter create "$1" >/dev/null
"$0" counter hold "$1" 5 < /dev/null >/dev/null
mkfifo holding release
"$0" counter hold "$1" 1000 < release > holding & holder=$!
exec 3> release 5< holding
read -r line <&5 && echo "holder says: $line"
kill -KILL $holder; wait $holder 2>/dev/null; echo "holder: wait status $? (SIGKILL)"
exec 3>&- 5<&-
"$0" counter show "$1"
"$0" counter hold "$1" 1 --timeout-ms 2000 < /dev/null; echo "next: exit status $?"
"$0" counter hold "$1" 1 --timeout-ms 2000 < /dev/null; echo "next: exit status $?"
"$0" counter show "$1"
"$0" unlink "$1"
"#;

#[test]
fn a_holder_killed_by_sigkill_leaves_eownerdead_for_the_next() {
    let run = script(TASK_3, CRASH, &[]).run();
    run.expect_success();
    if run.stderr.contains("still held") {
        run.fail(
            "nobody could take the lock after its holder was killed",
            "a mutex whose holder dies stays locked for ever, unless it is robust: \
             initialise it with MutexAttributes { robust: true, .. }; the next locker then \
             gets EOWNERDEAD",
        );
    }
    if run.stderr.contains("ENOTRECOVERABLE") {
        run.fail(
            "the lock was lost for good after the first process that got EOWNERDEAD",
            "after EOWNERDEAD, call mutex.consistent() before unlocking: unlocked without it, \
             a robust mutex becomes unusable (ENOTRECOVERABLE)",
        );
    }
    expect_line(
        &run,
        "the last holder died holding the lock (EOWNERDEAD): value 1005 set back to 5, mutex made consistent",
        "on EOWNERDEAD, lock_counter holds the lock: put `mirror` back into `value`, call \
         consistent(), and return Locked::Repaired { found, restored }",
    );
    if !run.stdout.contains("counter /[PREFIX]-obj: 7 (mirror 7)") {
        run.fail(
            "after the repair and two more updates, the counter is not 7",
            "the killed holder's half-done update (value 1005, mirror 5) must be undone: \
             the next locker stores mirror into value before anything else",
        );
    }
    expect_line(
        &run,
        "next: exit status 0",
        "after the repair, the mutex works as before",
    );
    assert_transcript!(run);
}

#[test]
fn a_process_asleep_on_the_lock_is_woken_by_the_unlock() {
    let run = script(
        TASK_3,
        r#"
"$0" counter create "$1" >/dev/null
mkfifo holding release holding2
"$0" counter hold "$1" 1 < release > holding & first=$!
exec 3> release 5< holding
read -r line <&5 && echo "first says: $line"
"$0" counter hold "$1" 10 --timeout-ms 3000 < /dev/null > holding2 2>&1 3>&- 5<&- & second=$!
exec 6< holding2
asleep $second && echo "second: asleep on the lock"
exec 3>&-
wait $first; echo "first: exit status $?"
wait $second; echo "second: exit status $?"
exec 5<&-
cat <&6
"$0" counter show "$1"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "second: asleep on the lock",
        "the second holder must sleep in pthread_mutex_timedlock while the first holds the lock",
    );
    if run.stdout.contains("still held after") {
        run.fail(
            "the process asleep on the lock was not woken when the holder unlocked",
            "a mutex used by several processes must be initialised process-shared \
             (PTHREAD_PROCESS_SHARED, and robust): a private one wakes only threads of \
             the process that unlocks",
        );
    }
    expect_line(
        &run,
        "second: exit status 0",
        "the second holder takes the lock as soon as the first unlocks",
    );
    expect_line(
        &run,
        "counter /[PREFIX]-obj: 11 (mirror 11)",
        "both updates count: 1, then 10",
    );
    assert_transcript!(run);
}

#[test]
fn lock_gives_up_at_its_deadline() {
    let run = script(
        TASK_3,
        r#"
"$0" counter create "$1" >/dev/null
mkfifo holding release
"$0" counter hold "$1" 1 < release > holding & holder=$!
exec 3> release 5< holding
read -r line <&5
"$0" counter hold "$1" 1 --timeout-ms 100 < /dev/null; echo "second: exit status $?"
exec 3>&-
wait $holder; echo "holder: exit status $?"
exec 5<&-
"$0" counter show "$1"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_errors(
        &run,
        "the lock of the counter is still held after 100 ms",
        1,
        "pthread_mutex_timedlock fails with ETIMEDOUT at the deadline: lock_counter \
         reports `the lock of the counter is still held after N ms`",
    );
    assert_transcript!(run);
}

// ---- TODO 4: add, and wait on a condition variable ------------------------------

#[test]
fn adds_from_many_processes_all_count() {
    let mut vary = Varied::new();
    let amounts: Vec<u64> = (0..4).map(|_| vary.between(1, 9)).collect();
    let times = vary.between(100, 300);
    let expected: u64 = amounts.iter().sum::<u64>() * times;
    let mut args: Vec<String> = vec![times.to_string()];
    args.extend(amounts.iter().map(u64::to_string));
    let run = script(
        TASK_4,
        r#"
"$0" counter create "$1" >/dev/null
"$0" counter add "$1" "$3" --times "$2" > a.out & a=$!
"$0" counter add "$1" "$4" --times "$2" > b.out & b=$!
"$0" counter add "$1" "$5" --times "$2" > c.out & c=$!
"$0" counter add "$1" "$6" --times "$2" > d.out & d=$!
wait $a; echo "adder a: exit status $?"
wait $b; echo "adder b: exit status $?"
wait $c; echo "adder c: exit status $?"
wait $d; echo "adder d: exit status $?"
"$0" counter show "$1"
"$0" unlink "$1"
"#,
        &args,
    )
    .run();
    run.expect_success();
    if run.stdout.matches(": exit status 0").count() != 4 {
        run.fail(
            "not every adder succeeded".to_string(),
            "add takes the lock, updates value then mirror, broadcasts and unlocks",
        );
    }
    let line = format!("counter /[PREFIX]-obj: {expected} (mirror {expected})");
    if !run.stdout.lines().any(|l| l == line) {
        run.fail(
            format!("the counter is not {expected} after 4 x {times} additions"),
            "every addition reads, adds and stores under the lock: add must lock_counter \
             first and unlock only after storing value and mirror",
        );
    }
}

#[test]
fn a_waiter_is_woken_by_another_processs_add() {
    let run = script(
        TASK_4,
        r#"
"$0" counter create "$1" >/dev/null
"$0" counter wait "$1" 3 --timeout-ms 3000 > waiter.out 2>&1 & waiter=$!
asleep $waiter && echo "waiter: asleep"
"$0" counter add "$1" 1
asleep $waiter && echo "waiter: asleep again, 1 is not 3"
"$0" counter add "$1" 2
wait $waiter; echo "waiter: exit status $?"; cat waiter.out
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "waiter: asleep",
        "wait_for must sleep on the condition variable (wait_changed) while the counter \
         is below the target",
    );
    if run.stdout.contains("waited for 3") && !run.stdout.contains("asleep again") {
        run.fail(
            "the waiter returned after the first add, before the counter reached 3",
            "a wake-up only says that the counter may have changed: test `value < target` \
             again in a loop around wait_changed",
        );
    }
    if run.stdout.contains("waiter: exit status 1") {
        run.fail(
            "the waiter was never woken by the adds",
            "a condition variable shared by processes must be initialised process-shared \
             (counter_create: changed.init(true)), and add must broadcast after its update",
        );
    }
    expect_line(
        &run,
        "counter /[PREFIX]-obj: 3 (waited for 3)",
        "wait_for returns the value once it is at least the target",
    );
    assert_transcript!(run);
}

#[test]
fn wait_gives_up_at_its_deadline() {
    let run = script(
        TASK_4,
        r#"
"$0" counter create "$1" >/dev/null
"$0" counter add "$1" 5
"$0" counter wait "$1" 5 --timeout-ms 2000
"$0" counter wait "$1" 6 --timeout-ms 100; echo "wait for 6: exit status $?"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "counter /[PREFIX]-obj: 5 (waited for 5)",
        "a counter that has reached the target already is returned at once, without waiting",
    );
    expect_errors(
        &run,
        "not 6, after 100 ms",
        1,
        "pthread_cond_timedwait fails with ETIMEDOUT at the deadline: report `the counter \
         is still N, not TARGET, after MS ms` (the lock is taken again before it returns: \
         unlock)",
    );
    assert_transcript!(run);
}

// ---- TODO 5: lay out a ring ------------------------------------------------------

#[test]
fn a_ring_is_laid_out_as_documented() {
    let run = script(
        TASK_5,
        r#"
"$0" ring create "$1" --slots 4
stat -c 'in /dev/shm: %s bytes, mode %a' "/dev/shm/${1#/}"
od -An -tu4 -N16 "/dev/shm/${1#/}" | sed 's/^ */magic, slots, record_size, reserved: /'
"$0" ring show "$1"
"$0" ring create "$1" --slots 4; echo "create again: exit status $?"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "in /dev/shm: 232 bytes, mode 600",
        "a ring of 4 slots is ring_size(4) = 136 + 4 x 24 bytes, mode 0600",
    );
    if !run.stdout.contains("1196312914") {
        run.fail(
            "the ring's first word is not RING_MAGIC (0x474e4952)",
            "store RING_MAGIC into `magic` with Ordering::Release once everything else is \
             initialised",
        );
    }
    expect_line(
        &run,
        "ring /[PREFIX]-obj: 4 slots; put 0, taken 0; free 4, used 0",
        "a new ring has `free` at `slots` and `used` at 0 (sem_init), head and tail 0",
    );
    assert_transcript!(run);
}

#[test]
fn a_ring_has_room_for_every_slot() {
    let mut vary = Varied::new();
    let slots = vary.between(1, 5000);
    let run = script(
        TASK_5,
        r#"
"$0" ring create "$1" --slots "$2" >/dev/null
stat -c 'stat: %s' "/dev/shm/${1#/}"
"$0" ring show "$1"
"$0" unlink "$1"
"#,
        &[slots.to_string()],
    )
    .run();
    run.expect_success();
    let size = 136 + 24 * slots;
    let show = format!("ring /[PREFIX]-obj: {slots} slots; put 0, taken 0; free {slots}, used 0");
    if !run.stdout.contains(&format!("stat: {size}\n")) || !run.stdout.contains(&show) {
        run.fail(
            format!("a ring of {slots} slots is not {size} bytes with `free` at {slots}"),
            "create the object with ring_size(slots) bytes; sem_init(&free, 1, slots)",
        );
    }
}

#[test]
fn only_rings_are_opened_as_rings() {
    let run = script(
        TASK_5,
        r#"
"$0" create "$1" 4096 >/dev/null
"$0" ring show "$1"; echo "a plain object: exit status $?"
"$0" unlink "$1"
"$0" create "$1" 100 >/dev/null
"$0" ring show "$1"; echo "a 100-byte object: exit status $?"
"$0" unlink "$1"
printf 'RING\350\003\000\000\030\000\000\000' > "/dev/shm/${1#/}"
truncate -s 136 "/dev/shm/${1#/}"
"$0" ring show "$1"; echo "1000 slots in 136 bytes: exit status $?"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_errors(
        &run,
        "is not a ring",
        3,
        "ring_open must check the size, the magic word (Mapping::load_u32(0)), then \
         record_size, slots and ring_size(slots) against the object's size",
    );
    assert_transcript!(run);
}

// ---- TODO 6: put and take ----------------------------------------------------------

/// The producers (number, count) and consumers (count) of one transfer.
struct Transfer {
    slots: u64,
    seed: u64,
    producers: Vec<(u32, u32)>,
    consumers: Vec<u32>,
}

impl Transfer {
    /// Splits `total` records into `parts` random counts.
    fn split(vary: &mut Varied, total: u32, parts: usize) -> Vec<u32> {
        let mut cuts: Vec<u32> = (1..parts)
            .map(|_| vary.between(0, u64::from(total)) as u32)
            .collect();
        cuts.push(0);
        cuts.push(total);
        cuts.sort_unstable();
        cuts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn total(&self) -> u64 {
        self.producers.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    fn expected(&self) -> u64 {
        self.producers.iter().fold(0u64, |sum, &(p, n)| {
            sum.wrapping_add(checksum(p, n, self.seed))
        })
    }

    /// Runs it: the ring is created, the consumers start first, then the
    /// producers, all in the background; the script waits for each.
    fn run(&self, section: &str) -> Run {
        let text = r#"
"$0" ring create "$1" --slots "$2" >/dev/null
pids=
for count in $CONSUMERS; do
  "$0" ring consume "$1" --count $count --timeout-ms 5000 & pids="$pids $!"
done
for job in $PRODUCERS; do
  "$0" ring produce "$1" --producer ${job%:*} --count ${job#*:} --seed "$3" --timeout-ms 5000 &
  pids="$pids $!"
done
failed=0
for pid in $pids; do wait $pid || failed=$((failed + 1)); done
echo "failed processes: $failed"
"$0" ring show "$1"
"$0" unlink "$1"
"#;
        let consumers: Vec<String> = self.consumers.iter().map(u32::to_string).collect();
        let producers: Vec<String> = self
            .producers
            .iter()
            .map(|(p, n)| format!("{p}:{n}"))
            .collect();
        script(
            section,
            text,
            &[self.slots.to_string(), self.seed.to_string()],
        )
        .env("CONSUMERS", consumers.join(" "))
        .env("PRODUCERS", producers.join(" "))
        .why_if_timeout(STUCK)
        .run()
    }

    /// Checks that every record arrived exactly once.
    fn check(&self, run: &Run) {
        if !run.stdout.contains("failed processes: 0") {
            fail_with_first_error(run);
        }
        for &(producer, count) in &self.producers {
            let expected = checksum(producer, count, self.seed);
            if producer_checksum(&run.stdout, producer) != Some(expected) {
                run.fail(
                    format!(
                        "producer {producer} did not report the checksum of its {count} records"
                    ),
                    "the producer puts Record::new(producer, 0..count, seed), each once",
                );
            }
        }
        let took = consumers(&run.stdout);
        let records: u64 = took.iter().map(|t| t.records).sum();
        let torn: u64 = took.iter().map(|t| t.torn).sum();
        let out_of_order: u64 = took.iter().map(|t| t.out_of_order).sum();
        let sum = took.iter().fold(0u64, |s, t| s.wrapping_add(t.checksum));
        if took.len() != self.consumers.len() || records != self.total() {
            run.fail(
                format!(
                    "{} consumer(s) reported {records} records, expected {} reporting {}",
                    took.len(),
                    self.consumers.len(),
                    self.total()
                ),
                STUCK,
            );
        }
        if torn > 0 {
            run.fail(
                format!("consumers took {torn} torn or empty record(s)"),
                "a consumer may read a slot only after the producer has copied the whole \
                 record into it: V(used) after the copy, never before; and `used` starts at 0",
            );
        }
        if sum != self.expected() {
            run.fail(
                format!(
                    "the consumers' checksums add up to {sum:#018x}, not {:#018x}: records \
                     were lost or taken twice",
                    self.expected()
                ),
                "head and tail may change only under the mutex, each record goes into slot \
                 tail % slots and comes out of slot head % slots, once",
            );
        }
        if out_of_order > 0 {
            run.fail(
                format!("{out_of_order} record(s) came out of order"),
                "a ring is first in, first out: take from slot head % slots, then head += 1",
            );
        }
        let show = format!("free {}, used 0", self.slots);
        if !run.stdout.contains(&show) {
            run.fail(
                format!("after the transfer the ring does not show `{show}`"),
                "every put ends with V(used), every take with V(free)",
            );
        }
    }
}

/// Fails the test: a producer or a consumer reported an error (the errors
/// are shown, those printed into files and shown by the script too).
fn fail_with_first_error(run: &Run) -> ! {
    let mut failure = run.failure("a producer or a consumer failed");
    let errors = run.stdout.lines().chain(run.stderr.lines());
    for error in errors
        .filter(|line| line.starts_with("posix-shm: "))
        .take(4)
    {
        failure.details.push(format!("error: {error}"));
    }
    failure.why = Some(STUCK.to_string());
    failure.raise()
}

/// Why a transfer hangs or fails.
const STUCK: &str = "a producer does P(free), lock, copy into slot tail % slots, tail += 1, \
                     unlock, V(used); a consumer P(used), lock, copy out of slot head % \
                     slots, head += 1, unlock, V(free); `free` starts at slots, `used` at 0, \
                     both process-shared (sem_init with pshared = 1)";

#[test]
fn one_producer_and_one_consumer_keep_the_order() {
    let mut vary = Varied::new();
    let count = vary.between(1, 300) as u32;
    let transfer = Transfer {
        slots: vary.between(1, 8),
        seed: vary.between(0, u64::MAX - 1),
        producers: vec![(vary.between(1, 99) as u32, count)],
        consumers: vec![count],
    };
    let run = transfer.run(TASK_6);
    transfer.check(&run);
}

#[test]
fn producers_and_consumers_deliver_each_record_exactly_once() {
    let mut vary = Varied::new();
    let total = vary.between(200, 600) as u32;
    let counts = Transfer::split(&mut vary, total, 3);
    let transfer = Transfer {
        slots: vary.between(2, 16),
        seed: vary.between(0, u64::MAX - 1),
        producers: (1..).zip(counts).collect(),
        consumers: Transfer::split(&mut vary, total, 2),
    };
    let run = transfer.run(TASK_6);
    transfer.check(&run);
}

#[test]
fn a_thousand_times_the_ring_goes_through_it() {
    let mut vary = Varied::new();
    let transfer = Transfer {
        slots: 2,
        seed: vary.between(0, u64::MAX - 1),
        producers: vec![(1, 1000), (2, 1000)],
        consumers: vec![1000, 1000],
    };
    let run = transfer.run(TASK_6);
    transfer.check(&run);
}

#[test]
fn zero_records_are_a_transfer_too() {
    let run = script(
        TASK_6,
        r#"
"$0" ring create "$1" --slots 3 >/dev/null
"$0" ring consume "$1" --count 0
"$0" ring produce "$1" --producer 1 --count 0
"$0" ring show "$1"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "took 0 records: checksum 0x0000000000000000, 0 torn, 0 out of order",
        "a consumer of 0 records takes nothing and waits for nothing",
    );
    assert_transcript!(run);
}

#[test]
fn a_consumer_asleep_on_an_empty_ring_is_woken() {
    let mut vary = Varied::new();
    let seed = vary.between(0, u64::MAX - 1);
    let run = script(
        TASK_6,
        r#"
"$0" ring create "$1" --slots 4 >/dev/null
"$0" ring consume "$1" --count 3 --timeout-ms 3000 > consumer.out 2>&1 & consumer=$!
asleep $consumer && echo "consumer: asleep on an empty ring"
"$0" ring produce "$1" --producer 5 --count 3 --seed "$2"
wait $consumer; echo "consumer: exit status $?"; cat consumer.out
"$0" unlink "$1"
"#,
        &[seed.to_string()],
    )
    .why_if_timeout(STUCK)
    .run();
    run.expect_success();
    if !run.stdout.contains("consumer: asleep on an empty ring") {
        run.fail(
            "the consumer did not sleep on the empty ring",
            "take waits on `used` (P) before anything else: sem_wait sleeps at 0",
        );
    }
    if run.stdout.contains("consumer: exit status 1") {
        run.fail(
            "the consumer asleep on the ring was never woken by the producer",
            "semaphores in shared memory must be initialised process-shared: sem_init(sem, \
             1, value). With pshared = 0, sem_post wakes only threads of its own process",
        );
    }
    let expected = format!(
        "took 3 records: checksum {:#018x}, 0 torn, 0 out of order",
        checksum(5, 3, seed)
    );
    if !run.stdout.lines().any(|line| line == expected) {
        run.fail(
            "the consumer did not take the producer's 3 records".to_string(),
            STUCK,
        );
    }
}

#[test]
fn a_producer_waits_while_the_ring_is_full() {
    let run = script(
        TASK_6,
        r#"
"$0" ring create "$1" --slots 3 >/dev/null
"$0" ring produce "$1" --producer 1 --count 5 --timeout-ms 3000 > producer.out 2>&1 & producer=$!
asleep $producer && echo "producer: asleep on a full ring"
"$0" ring show "$1"
"$0" ring consume "$1" --count 5 --timeout-ms 3000
wait $producer; echo "producer: exit status $?"; cat producer.out
"$0" ring show "$1"
"$0" unlink "$1"
"#,
        &[],
    )
    .why_if_timeout(STUCK)
    .run();
    run.expect_success();
    if !run.stderr.is_empty() {
        fail_with_first_error(&run);
    }
    let checksum = format!("checksum {:#018x}", checksum(1, 5, 0));
    if run.stdout.matches(&checksum).count() != 2 {
        run.fail(
            format!("the producer and the consumer did not both report {checksum}"),
            STUCK,
        );
    }
    expect_line(
        &run,
        "producer: asleep on a full ring",
        "put waits on `free` (P) before it copies: with every slot full, sem_wait sleeps",
    );
    expect_line(
        &run,
        "ring /[PREFIX]-obj: 3 slots; put 3, taken 0; free 0, used 3",
        "a full ring: tail 3, `free` 0, `used` 3 (the fourth put waits for a free slot)",
    );
    assert_transcript!(run);
}

#[test]
fn take_gives_up_on_an_empty_ring() {
    let run = script(
        TASK_6,
        r#"
"$0" ring create "$1" --slots 2 >/dev/null
"$0" ring consume "$1" --count 1 --timeout-ms 100; echo "consume: exit status $?"
"$0" ring show "$1"
"$0" unlink "$1"
"#,
        &[],
    )
    .run();
    run.expect_success();
    expect_errors(
        &run,
        "no record: timed out after 100 ms",
        1,
        "take waits on `used` with wait(…, timeout): its ETIMEDOUT comes back as `no \
         record: timed out after N ms`",
    );
    expect_line(
        &run,
        "ring /[PREFIX]-obj: 2 slots; put 0, taken 0; free 2, used 0",
        "a take that timed out changes nothing",
    );
    assert_transcript!(run);
}

/// The C peer, built once per test process from [`PEER_C`] with `cc`:
/// its path, or why it could not be built.
fn c_peer() -> &'static Result<PathBuf, String> {
    static PEER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PEER.get_or_init(|| {
        if !in_path("cc") {
            return Err("cc is not on PATH".to_string());
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let digest = fnv1a(PEER_C.as_bytes());
        let binary = dir.join(format!("posix-shm-peer-{digest:016x}"));
        if binary.is_file() {
            return Ok(binary);
        }
        let unique = format!("{}-{}", std::process::id(), digest);
        let source = dir.join(format!("posix-shm-peer-{unique}.c"));
        let built = dir.join(format!("posix-shm-peer-{unique}"));
        std::fs::write(&source, PEER_C).map_err(|e| format!("cannot write {source:?}: {e}"))?;
        let output = Command::new("cc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&built)
            .arg(&source)
            .output()
            .map_err(|e| format!("cannot run cc: {e}"));
        let _ = std::fs::remove_file(&source);
        let output = output?;
        if !output.status.success() {
            return Err(format!(
                "cc failed: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            ));
        }
        // Renamed into place: another test process may be building it too.
        std::fs::rename(&built, &binary).map_err(|e| format!("cannot rename: {e}"))?;
        Ok(binary)
    })
}

#[test]
fn a_c_program_shares_the_ring() {
    let mut vary = Varied::new();
    let seed = vary.between(0, u64::MAX - 1);
    let count = vary.between(50, 300) as u32;
    let peer = match c_peer() {
        Ok(path) => Some(path.clone()),
        Err(why) => {
            say_skipped(&format!("the C peer: {why}"));
            None
        }
    };
    let text = if peer.is_some() {
        r#"
"$0" ring create "$1" --slots 3 >/dev/null
"$PEER" layout > c-layout
"$0" ring layout | grep -E '^(ring|record)' > lab-layout
cmp -s c-layout lab-layout && echo "the C compiler and the lab agree on the layout"
"$PEER" produce "$1" 7 "$2" "$3" 5000 & c=$!
"$0" ring consume "$1" --count "$2" --timeout-ms 5000
wait $c; echo "C producer: exit status $?"
"$0" ring produce "$1" --producer 8 --count "$2" --seed "$3" --timeout-ms 5000 & p=$!
"$PEER" consume "$1" "$2" 5000
wait $p; echo "lab producer: exit status $?"
"$0" unlink "$1"
"$PEER" create "$1-c" 5 >/dev/null
"$0" ring show "$1-c"
"$0" ring produce "$1-c" --producer 9 --count "$2" --seed "$3" --timeout-ms 5000 & p=$!
"$0" ring consume "$1-c" --count "$2" --timeout-ms 5000
wait $p; echo "lab producer: exit status $?"
"$0" unlink "$1-c"
"#
    } else {
        r#"
"$0" ring create "$1" --slots 3 >/dev/null
"$0" ring produce "$1" --producer 8 --count "$2" --seed "$3" --timeout-ms 5000 & p=$!
"$0" ring consume "$1" --count "$2" --timeout-ms 5000
wait $p; echo "lab producer: exit status $?"
"$0" unlink "$1"
"#
    };
    let mut cmd =
        script(TASK_6, text, &[count.to_string(), seed.to_string()]).why_if_timeout(STUCK);
    if let Some(peer) = &peer {
        cmd = cmd.env("PEER", peer);
    }
    let run = cmd.run();
    run.expect_success();
    let took = |prefix: &str, producer: u32| {
        format!(
            "{prefix}took {count} records: checksum {:#018x}, 0 torn, 0 out of order",
            checksum(producer, count, seed)
        )
    };
    let mut expected = vec![(
        took(if peer.is_some() { "peer: " } else { "" }, 8),
        "the C consumer reads the lab's records by the documented layout",
    )];
    if peer.is_some() {
        expected.extend([
            (
                "the C compiler and the lab agree on the layout".to_string(),
                "the layout is the chapter's",
            ),
            (
                took("", 7),
                "the lab takes the records a C producer put, by the documented layout",
            ),
            (
                "ring /[PREFIX]-obj-c: 5 slots; put 0, taken 0; free 5, used 0".to_string(),
                "ring_open accepts a ring that a C program created by the documented layout",
            ),
            (
                took("", 9),
                "the lab's producer and consumer work on a ring a C program created",
            ),
        ]);
    }
    for (line, why) in expected {
        if !run.stdout.lines().any(|l| l == line) {
            run.fail(format!("never printed {line:?}"), why);
        }
    }
}

/// The Python peer (see the module documentation): `python3 -c PEER_PY
/// NAME TEXT NEW`.
const PEER_PY: &str = r#"
# A Python client of the posix-shm lab's objects, through the standard
# library's multiprocessing.shared_memory (shm_open by name, then mmap):
# it reads the object NAME, writes TEXT over it, then creates the object
# NEW of 1000 bytes with TEXT in it, and leaves both for the lab.
import sys
from multiprocessing import resource_tracker, shared_memory

# By default, every SharedMemory is registered with a resource tracker
# that shm_unlink()s it when Python exits, even one that another program
# made (cpython issue 82300; Python 3.13 added track=False). These objects
# are the lab's to remove: keep the tracker out of it, on every version.
resource_tracker.register = lambda name, rtype: None

name, text, new = (arg.lstrip("/") for arg in sys.argv[1:4])
data = text.encode() + b"\0"

shm = shared_memory.SharedMemory(name=name)
found = bytes(shm.buf).split(b"\0", 1)[0].decode()
print(f"python: {shm.size} bytes, text {found!r}")
shm.buf[: len(data)] = data
shm.close()

shm = shared_memory.SharedMemory(name=new, create=True, size=1000)
shm.buf[: len(data)] = data
shm.close()
"#;

/// The C peer (see the module documentation), written from the chapter's
/// layout alone.
const PEER_C: &str = r#"/* A C client of the posix-shm lab's ring, written from the chapter's
 * layout alone: it creates rings, puts and takes records, and prints the
 * layout as its compiler sees it. Usage:
 *   peer layout | create NAME SLOTS | produce NAME PRODUCER COUNT SEED MS
 *   | consume NAME COUNT MS */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RING_MAGIC 0x474e4952u /* the bytes "RING", little-endian */

struct ring {
    uint32_t magic, slots, record_size, reserved;
    uint64_t head, tail;
    pthread_mutex_t mutex;
    sem_t free, used;
};

struct record {
    uint32_t producer, sequence;
    uint64_t value, check;
};

static void die(const char *what, int err) {
    fprintf(stderr, "peer: %s: %s\n", what, strerror(err));
    exit(1);
}

static uint64_t fnv1a(const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    uint64_t hash = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) hash = (hash ^ p[i]) * 0x100000001b3u;
    return hash;
}

static uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static struct timespec deadline(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) { t.tv_sec++; t.tv_nsec -= 1000000000; }
    return t;
}

static struct ring *open_ring(const char *name, size_t *size) {
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) die("shm_open", errno);
    struct stat st;
    if (fstat(fd, &st) < 0) die("fstat", errno);
    if ((size_t)st.st_size < sizeof(struct ring)) die("not a ring", EINVAL);
    struct ring *ring = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ring == MAP_FAILED) die("mmap", errno);
    close(fd);
    if (__atomic_load_n(&ring->magic, __ATOMIC_ACQUIRE) != RING_MAGIC
        || ring->record_size != sizeof(struct record) || ring->slots == 0
        || sizeof(struct ring) + (size_t)ring->slots * sizeof(struct record) > (size_t)st.st_size)
        die("not a ring", EINVAL);
    *size = st.st_size;
    return ring;
}

static struct record *slot(struct ring *ring, uint64_t count) {
    return (struct record *)(ring + 1) + count % ring->slots;
}

static void sem_wait_until(sem_t *sem, const struct timespec *at, const char *what) {
    while (sem_timedwait(sem, at) < 0)
        if (errno != EINTR) die(what, errno);
}

static void lock(struct ring *ring, const struct timespec *at) {
    int err = pthread_mutex_timedlock(&ring->mutex, at);
    if (err == EOWNERDEAD) err = pthread_mutex_consistent(&ring->mutex);
    if (err) die("lock", err);
}

int main(int argc, char **argv) {
    const char *command = argc > 1 ? argv[1] : "";
    if (strcmp(command, "layout") == 0 && argc == 2) {
        const struct { const char *name; size_t offset, size; } fields[] = {
            {"ring.magic", offsetof(struct ring, magic), 4},
            {"ring.slots", offsetof(struct ring, slots), 4},
            {"ring.record_size", offsetof(struct ring, record_size), 4},
            {"ring.head", offsetof(struct ring, head), 8},
            {"ring.tail", offsetof(struct ring, tail), 8},
            {"ring.mutex", offsetof(struct ring, mutex), sizeof(pthread_mutex_t)},
            {"ring.free", offsetof(struct ring, free), sizeof(sem_t)},
            {"ring.used", offsetof(struct ring, used), sizeof(sem_t)},
            {"ring header (size)", 0, sizeof(struct ring)},
            {"record", 0, sizeof(struct record)},
        };
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            printf("%-20s offset %3zu  size %3zu\n", fields[i].name, fields[i].offset, fields[i].size);
    } else if (strcmp(command, "create") == 0 && argc == 4) {
        uint32_t slots = strtoul(argv[3], NULL, 10);
        size_t size = sizeof(struct ring) + slots * sizeof(struct record);
        int fd = shm_open(argv[2], O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0) die("shm_open", errno);
        if (ftruncate(fd, size) < 0) die("ftruncate", errno);
        struct ring *ring = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (ring == MAP_FAILED) die("mmap", errno);
        ring->slots = slots;
        ring->record_size = sizeof(struct record);
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        int err = pthread_mutex_init(&ring->mutex, &attr);
        if (err) die("pthread_mutex_init", err);
        if (sem_init(&ring->free, 1, slots) < 0 || sem_init(&ring->used, 1, 0) < 0) die("sem_init", errno);
        __atomic_store_n(&ring->magic, RING_MAGIC, __ATOMIC_RELEASE);
        printf("peer: created ring %s: %u slots\n", argv[2], slots);
    } else if (strcmp(command, "produce") == 0 && argc == 7) {
        size_t size;
        struct ring *ring = open_ring(argv[2], &size);
        uint32_t producer = strtoul(argv[3], NULL, 10), count = strtoul(argv[4], NULL, 10);
        uint64_t seed = strtoull(argv[5], NULL, 10), sum = 0;
        long ms = strtol(argv[6], NULL, 10);
        for (uint32_t sequence = 0; sequence < count; sequence++) {
            struct record r = {producer, sequence, 0, 0};
            r.value = splitmix64(seed + ((uint64_t)producer << 32 | sequence));
            r.check = fnv1a(&r, 16);
            struct timespec at = deadline(ms);
            sem_wait_until(&ring->free, &at, "no free slot");
            lock(ring, &at);
            *slot(ring, ring->tail) = r;
            ring->tail++;
            pthread_mutex_unlock(&ring->mutex);
            sem_post(&ring->used);
            sum += r.check;
        }
        printf("peer: producer %u: put %u records, checksum 0x%016llx\n", producer, count, (unsigned long long)sum);
    } else if (strcmp(command, "consume") == 0 && argc == 5) {
        size_t size;
        struct ring *ring = open_ring(argv[2], &size);
        uint32_t count = strtoul(argv[3], NULL, 10);
        long ms = strtol(argv[4], NULL, 10);
        uint64_t sum = 0, torn = 0, out_of_order = 0;
        static int64_t last[4096];
        for (size_t i = 0; i < 4096; i++) last[i] = -1;
        for (uint32_t taken = 0; taken < count; taken++) {
            struct timespec at = deadline(ms);
            sem_wait_until(&ring->used, &at, "no record");
            lock(ring, &at);
            struct record r = *slot(ring, ring->head);
            ring->head++;
            pthread_mutex_unlock(&ring->mutex);
            sem_post(&ring->free);
            if (r.check != fnv1a(&r, 16)) { torn++; continue; }
            sum += r.check;
            if (r.producer < 4096) {
                if ((int64_t)r.sequence <= last[r.producer]) out_of_order++;
                last[r.producer] = r.sequence;
            }
        }
        printf("peer: took %u records: checksum 0x%016llx, %llu torn, %llu out of order\n", count,
               (unsigned long long)sum, (unsigned long long)torn, (unsigned long long)out_of_order);
    } else {
        fprintf(stderr, "peer: usage: peer layout | create NAME SLOTS | produce NAME PRODUCER COUNT SEED MS | consume NAME COUNT MS\n");
        return 2;
    }
    return 0;
}
"#;
