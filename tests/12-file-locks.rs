//! Grading suite of lab 12 (file locks).
//!
//! Compiled into both the lab (`labs/12-file-locks`) and the reference
//! solution. Every test runs the program as a black box through the
//! grader, and most run several copies of it at once, each in a sandbox
//! of its own, about files in the test's own sandbox (shown as
//! `[SANDBOX]`).
//!
//! What a program holds is never taken from what it prints: the test
//! reads `/proc/locks`, where the kernel lists every lock with its owner,
//! range and file. A moment in another process's life is awaited through
//! `/proc/PID/syscall` (a process asleep in `fcntl` or `flock` waits for
//! a lock), a ready line (`holding`), or a pidfd (a killed daemon is gone,
//! and its lock with it), never with a sleep. Where several processes must
//! be at one point at once (writers that have found the end of the file),
//! they wait at a *gate*, a file on which the test holds an exclusive
//! `flock` until every one of them is asleep there.
//!
//! Ranges, counts, sizes and the records' contents vary from run to run
//! (`grader::Varied`): a failure prints its seed, and `WORKBOOK_SEED=N`
//! repeats a run.

use std::fs::{self, File, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use grader::{
    Blocked, Cmd, FileLock, Lab, LeakKind, LockClass, Run, Running, Sandbox, Varied, file_locks_on,
    kill_and_wait, locks_held_by,
};
use nix::fcntl::{Flock, FlockArg};

const CHAPTER: &str = "12-file-locks.md";

const TASK_1: &str = "Task 1: open, then flock";
const TASK_2: &str = "Task 2: record locks with fcntl";
const TASK_3: &str = "Task 3: who holds it: F_GETLK";
const TASK_4: &str = "Task 4: appending under a lock";
const TASK_5: &str = "Task 5: a pid file";
const TASK_6: &str = "Task 6: a single-instance daemon";

/// How long anything may take: a lock to be taken or released, a writer
/// to finish, a daemon to start or stop. Everything takes milliseconds.
const WAIT: Duration = Duration::from_secs(5);

/// Pids change from run to run: snapshots show them masked, once the test
/// has checked them.
const FILTERS: &[(&str, &str)] = &[(r"pid \d+", "pid [PID]")];

/// `grader::assert_transcript!` with [`FILTERS`].
macro_rules! assert_masked {
    ($run:expr) => {{
        grader::insta::with_settings!({ filters => FILTERS.to_vec() }, {
            grader::assert_transcript!($run);
        });
    }};
}

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// A sandbox path as a command-line word.
fn word(path: &Path) -> &str {
    path.to_str()
        .expect("grader: sandbox paths are valid UTF-8")
}

/// `file-locks ARGS…` in a sandbox of its own, about files in `home`,
/// whose path transcripts show as `[SANDBOX]`.
fn cmd(home: &Sandbox, section: &str, args: &[&str]) -> Cmd {
    lab()
        .cmd(args)
        .alias(home.dir(), "[SANDBOX]")
        .section(section)
        .timeout(WAIT)
}

/// A data file of a few varied words in `home`.
fn data_file(home: &Sandbox, name: &str, vary: &mut Varied) -> PathBuf {
    let words: Vec<String> = (0..vary.between(3, 12))
        .map(|_| {
            let len = vary.between(2, 9) as usize;
            vary.word(len)
        })
        .collect();
    home.write_file(name, format!("{}\n", words.join(" ")))
}

// ---- holders ------------------------------------------------------------------

/// Starts `file-locks hold ARGS…` and waits until it says `holding`.
fn start_holder(home: &Sandbox, section: &str, args: &[&str]) -> Running {
    let mut all = vec!["hold"];
    all.extend_from_slice(args);
    let mut holder = cmd(home, section, &all)
        .why_if_timeout("a lock that should have been free was not taken at once")
        .start();
    holder.wait_for_stdout("holding\n", WAIT);
    holder
}

/// Sends SIGTERM to a holder and collects it: it must let go of its locks,
/// say `released`, and exit with status 0.
fn release(mut holder: Running) -> Run {
    // `hold` handles SIGTERM only once it says `holding`: a holder that got
    // its last lock a moment ago (the winner of a deadlock) may not be there
    // yet, and SIGTERM's default action would end it.
    holder.wait_for_stdout("holding\n", WAIT);
    holder.signal(libc::SIGTERM);
    let run = holder.wait(WAIT);
    run.expect_success();
    if run.stdout_lines().last() != Some(&"released") {
        run.fail(
            "never said `released` after SIGTERM",
            "on SIGTERM, `hold` unlocks what it holds with your unflock_file or unlock_range, \
             then says `released`",
        );
    }
    run
}

/// A holder's pid, as `/proc/locks` shows it.
fn pid_of(running: &Running) -> i32 {
    running.pid() as i32
}

// ---- what /proc/locks lists ---------------------------------------------------------

/// A lock held (not a request waiting), as `/proc/locks` would list it.
fn held(class: LockClass, write: bool, pid: i32, start: u64, end: Option<u64>) -> FileLock {
    FileLock {
        class,
        write,
        pid,
        start,
        end,
        waiting: false,
    }
}

/// What a process holds on a file, for a failure.
fn holdings(locks: &[FileLock]) -> String {
    if locks.is_empty() {
        return "it holds no lock on the file".to_string();
    }
    let all: Vec<String> = locks.iter().map(FileLock::describe).collect();
    format!("it holds: {}", all.join("; "))
}

/// What `/proc/locks` lists on a file, for a failure.
fn listing(locks: &[FileLock]) -> String {
    if locks.is_empty() {
        return "/proc/locks lists no lock on the file".to_string();
    }
    let all: Vec<String> = locks.iter().map(FileLock::describe).collect();
    format!("/proc/locks lists: {}", all.join("; "))
}

/// `POSIX WRITE lock on bytes 0-9`: a lock's words without its pid.
fn lock_words(lock: &FileLock) -> String {
    let class = match lock.class {
        LockClass::Flock => "FLOCK",
        LockClass::Posix => "POSIX",
        LockClass::Ofd => "OFDLCK",
        LockClass::Other => "other",
    };
    let access = if lock.write { "WRITE" } else { "READ" };
    let end = lock.end.map_or("EOF".to_string(), |end| end.to_string());
    format!("{class} {access} lock on bytes {}-{end}", lock.start)
}

/// Fails unless the program holds `expected` on `path`, as the kernel
/// shows it in `/proc/PID/fdinfo`.
fn expect_holds(running: &Running, path: &Path, expected: &FileLock, why: &str) {
    let locks = locks_held_by(running.pid(), path);
    if !locks.contains(expected) {
        let mut failure = running.failure(format!("holds no {} on the file", lock_words(expected)));
        failure.details.push(holdings(&locks));
        failure.why = Some(why.to_string());
        failure.raise();
    }
}

/// Fails unless the program holds no lock on `path`.
fn expect_holds_none(running: &Running, path: &Path, what: &str, why: &str) {
    let locks = locks_held_by(running.pid(), path);
    if !locks.is_empty() {
        let mut failure = running.failure(what);
        failure.details.push(holdings(&locks));
        failure.why = Some(why.to_string());
        failure.raise();
    }
}

/// Waits until `/proc/locks` lists on `path` what `wanted` looks for, at
/// most [`WAIT`]; returns what it lists then. One reading is not enough:
/// `/proc/locks` can skip a line while other processes lock and unlock
/// (see `grader::file_locks_on`), and a process asleep in `fcntl` may be
/// a moment away from being listed as waiting.
fn locks_once(path: &Path, wanted: impl Fn(&[FileLock]) -> bool) -> Vec<FileLock> {
    let deadline = Instant::now() + WAIT;
    loop {
        let locks = file_locks_on(path);
        if wanted(&locks) || Instant::now() >= deadline {
            return locks;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Fails unless `/proc/locks` lists the program's request, waiting for
/// `expected`, on `path` (within [`WAIT`]).
fn expect_waits(running: &Running, path: &Path, expected: &FileLock, why: &str) {
    let waiting = FileLock {
        waiting: true,
        pid: running.pid() as i32,
        ..expected.clone()
    };
    let locks = locks_once(path, |locks| locks.contains(&waiting));
    if !locks.contains(&waiting) {
        let mut failure = running.failure(format!(
            "is not listed waiting for a {}",
            lock_words(expected)
        ));
        failure.details.push(listing(&locks));
        failure.why = Some(why.to_string());
        failure.raise();
    }
}

/// The last byte of `len` bytes from `start` (`None`: to EOF), as
/// `/proc/locks` gives it.
fn last_byte(start: u64, len: u64) -> Option<u64> {
    (len != 0).then(|| start + len - 1)
}

/// `bytes 0-99`, `bytes 100-EOF`: how the lab words a range.
fn bytes(start: u64, len: u64) -> String {
    match last_byte(start, len) {
        Some(last) => format!("bytes {start}-{last}"),
        None => format!("bytes {start}-EOF"),
    }
}

/// Fails with `what`, words that do not change from run to run, unless
/// standard output has the whole line `line`, which the failure shows.
fn expect_said(run: &Run, line: &str, what: &str, why: &str) {
    if !run.stdout.lines().any(|said| said == line) {
        let mut failure = run.failure(what);
        failure.details.push(format!("expected: {line}"));
        failure.why = Some(why.to_string());
        failure.raise();
    }
}

// ---- a gate -----------------------------------------------------------------------

/// A gate the test holds shut: an exclusive `flock` on a file of `home`.
/// A lab process given `--gate PATH` waits there, asleep in `flock`,
/// until the test opens it.
struct Gate {
    path: PathBuf,
    shut: Flock<File>,
}

impl Gate {
    fn shut(home: &Sandbox) -> Gate {
        let path = home.write_file("gate", "");
        let file = File::open(&path).unwrap_or_else(|e| panic!("grader: open the gate: {e}"));
        let shut = Flock::lock(file, FlockArg::LockExclusive)
            .unwrap_or_else(|(_, errno)| panic!("grader: shut the gate: {errno}"));
        Gate { path, shut }
    }

    fn path(&self) -> &str {
        word(&self.path)
    }

    /// Lets everyone through, now and later.
    fn open(self) {
        drop(self.shut);
    }
}

// ---- processes, as /proc shows them -----------------------------------------------------

/// `(ppid, session)` of process `pid`, from `/proc/PID/stat`.
fn parent_and_session(pid: i32) -> Option<(i32, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID PGRP SESSION …": COMM may hold anything.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let _pgrp = fields.next()?;
    let session = fields.next()?.parse().ok()?;
    Some((ppid, session))
}

// ---- TODO 1: open, then flock ---------------------------------------------------------

#[test]
fn an_exclusive_flock_keeps_out_another_that_will_not_wait() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let holder = start_holder(&home, TASK_1, &[word(&data), "--api", "flock"]);
    let pid = pid_of(&holder);
    expect_holds(
        &holder,
        &data,
        &held(LockClass::Flock, true, pid, 0, None),
        "`hold --api flock` takes flock(fd, LOCK_EX) on the file it opened, and keeps it",
    );
    let second = cmd(
        &home,
        TASK_1,
        &["hold", word(&data), "--api", "flock", "--nonblock"],
    )
    .run();
    second.expect_one_line_error(
        "file-locks",
        "busy",
        "LOCK_EX | LOCK_NB on a file another open file holds exclusively fails with \
         EWOULDBLOCK: flock_file returns Ok(Acquired::Busy), and never waits",
    );
    assert_masked!(second);
    let run = release(holder);
    run.expect_line(
        "locked: exclusive lock on the whole file (flock)",
        "hold says what it locked",
    );
}

#[test]
fn shared_flocks_stand_together_and_keep_out_an_exclusive_one() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let first = start_holder(
        &home,
        TASK_1,
        &[word(&data), "--api", "flock", "--kind", "shared"],
    );
    let second = start_holder(
        &home,
        TASK_1,
        &[
            word(&data),
            "--api",
            "flock",
            "--kind",
            "read",
            "--nonblock",
        ],
    );
    for holder in [&first, &second] {
        expect_holds(
            holder,
            &data,
            &held(LockClass::Flock, false, pid_of(holder), 0, None),
            "a shared lock is flock(fd, LOCK_SH): any number of open files may hold one at once",
        );
    }
    let exclusive = cmd(
        &home,
        TASK_1,
        &["hold", word(&data), "--api", "flock", "--nonblock"],
    )
    .run();
    exclusive.expect_one_line_error(
        "file-locks",
        "busy",
        "an exclusive flock cannot stand beside shared ones: with LOCK_NB it fails with \
         EWOULDBLOCK at once (Acquired::Busy)",
    );
    release(first);
    release(second);
}

#[test]
fn a_flock_that_may_wait_sleeps_until_the_holder_lets_go() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let holder = start_holder(&home, TASK_1, &[word(&data), "--api", "flock"]);
    let mut waiter = cmd(&home, TASK_1, &["hold", word(&data), "--api", "flock"])
        .why_if_timeout("a flock without LOCK_NB waits until the lock is free, then takes it")
        .start();
    waiter.wait_until_blocked_in(libc::SYS_flock, WAIT);
    expect_waits(
        &waiter,
        &data,
        &held(LockClass::Flock, true, pid_of(&waiter), 0, None),
        "a flock without LOCK_NB sleeps in the kernel, which lists the request with `->`",
    );
    if waiter.stdout().contains("locked") {
        waiter.fail(
            "said `locked` while another process held the lock",
            "flock(fd, LOCK_EX) returns only once the lock is yours",
        );
    }
    release(holder);
    waiter.wait_for_stdout("holding\n", WAIT);
    release(waiter);
}

#[test]
fn a_child_shares_the_flock_of_the_open_file_it_inherited() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let run = cmd(&home, TASK_1, &["inherit", word(&data), "--api", "flock"]).run();
    run.expect_success();
    run.expect_line(
        "child: locking again through the inherited descriptor: granted",
        "a flock belongs to the open file description, which parent and child share after \
         fork: locking through the child's copy converts the same lock",
    );
    run.expect_line(
        "child: locking through a new open of the file: busy",
        "a flock lasts until the last descriptor of its open file description is closed: \
         the child's copy still holds it after the parent closed its own",
    );
    assert_masked!(run);
}

#[test]
fn open_to_lock_reports_a_missing_file_and_creates_none() {
    let home = Sandbox::new();
    let missing = home.path("missing.txt");
    let run = cmd(&home, TASK_1, &["test", word(&missing)]).run();
    run.expect_one_line_error(
        "file-locks",
        "No such file or directory",
        "open_to_lock opens an existing file, without O_CREAT, and fails with its errno",
    );
    if missing.exists() {
        run.fail(
            "created the file it was asked to lock",
            "locking must not create a file: no O_CREAT in open_to_lock",
        );
    }
    assert_masked!(run);
}

#[test]
fn open_to_lock_refuses_a_directory() {
    let home = Sandbox::new();
    let dir = home.path("dir");
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("grader: mkdir: {e}"));
    // `test` opens read-only, which a directory allows: only fstat can
    // tell.
    let run = cmd(&home, TASK_1, &["test", word(&dir)]).run();
    run.expect_one_line_error(
        "file-locks",
        "is a directory",
        "a directory opens read-only, and flock and fcntl lock it: open_to_lock must fstat \
         the descriptor and refuse what is not a regular file",
    );
    assert_masked!(run);
}

#[test]
fn a_file_you_may_only_read_takes_a_read_lock_but_not_a_write_lock() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "read-only.txt", &mut vary);
    fs::set_permissions(&data, Permissions::from_mode(0o444))
        .unwrap_or_else(|e| panic!("grader: chmod: {e}"));
    let mut reader = cmd(&home, TASK_1, &["hold", word(&data), "--kind", "read"])
        .obey_file_permissions()
        .start();
    reader.wait_for_stdout("holding\n", WAIT);
    expect_holds(
        &reader,
        &data,
        &held(LockClass::Posix, false, pid_of(&reader), 0, None),
        "a read lock needs a descriptor open for reading only: open_to_lock opens \
         read-only for Kind::Read",
    );
    release(reader);
    let writer = cmd(&home, TASK_1, &["hold", word(&data), "--nonblock"])
        .obey_file_permissions()
        .run();
    writer.expect_one_line_error(
        "file-locks",
        "Permission denied",
        "a write lock needs a descriptor open for writing, and mode 444 forbids it: open \
         fails with EACCES, reported as `open PATH: …`",
    );
    assert_masked!(writer);
}

// ---- TODO 2: record locks with fcntl ------------------------------------------------------

/// A varied range: start 0 to 4000, length 1 to 1000.
fn some_range(vary: &mut Varied) -> (u64, u64) {
    (vary.between(0, 4000), vary.between(1, 1000))
}

#[test]
fn record_locks_on_separate_ranges_stand_together() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let (start, len) = some_range(&mut vary);
    let range = format!("{start}:{len}");
    let holder = start_holder(&home, TASK_2, &[word(&data), "--range", &range]);
    expect_holds(
        &holder,
        &data,
        &held(
            LockClass::Posix,
            true,
            pid_of(&holder),
            start,
            last_byte(start, len),
        ),
        "a record lock covers l_len bytes from l_start (l_whence SEEK_SET), taken with \
         F_SETLKW and a write lock (F_WRLCK)",
    );
    // Right after the held range: no byte in common.
    let after = format!("{}:{}", start + len, vary.between(1, 1000));
    let neighbour = start_holder(
        &home,
        TASK_2,
        &[word(&data), "--range", &after, "--nonblock"],
    );
    release(neighbour);
    // One byte in common, somewhere in the held range.
    let inside = start + vary.between(0, len - 1);
    let overlap = format!("{inside}:{}", vary.between(0, 50));
    let refused = cmd(
        &home,
        TASK_2,
        &["hold", word(&data), "--range", &overlap, "--nonblock"],
    )
    .run();
    refused.expect_one_line_error(
        "file-locks",
        "busy",
        "a write lock on bytes another process holds fails with F_SETLK (EAGAIN or EACCES): \
         lock_range returns Ok(Acquired::Busy)",
    );
    release(holder);
}

#[test]
fn read_locks_share_a_range_and_keep_out_a_write_lock() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let (start, len) = some_range(&mut vary);
    let range = format!("{start}:{len}");
    let readers: Vec<Running> = (0..2)
        .map(|_| {
            start_holder(
                &home,
                TASK_2,
                &[
                    word(&data),
                    "--kind",
                    "read",
                    "--range",
                    &range,
                    "--nonblock",
                ],
            )
        })
        .collect();
    for reader in &readers {
        expect_holds(
            reader,
            &data,
            &held(
                LockClass::Posix,
                false,
                pid_of(reader),
                start,
                last_byte(start, len),
            ),
            "a read lock is l_type F_RDLCK: any number of processes may hold one on the same \
             bytes",
        );
    }
    let writer = cmd(
        &home,
        TASK_2,
        &["hold", word(&data), "--range", &range, "--nonblock"],
    )
    .run();
    writer.expect_one_line_error(
        "file-locks",
        "busy",
        "a write lock (F_WRLCK) cannot stand beside read locks on the same bytes",
    );
    for reader in readers {
        release(reader);
    }
}

#[test]
fn a_record_lock_that_may_wait_sleeps_until_the_holder_lets_go() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let (start, len) = some_range(&mut vary);
    let range = format!("{start}:{len}");
    let holder = start_holder(&home, TASK_2, &[word(&data), "--range", &range]);
    let mut waiter = cmd(&home, TASK_2, &["hold", word(&data), "--range", &range])
        .why_if_timeout("F_SETLKW waits until the conflicting lock is released, then takes it")
        .start();
    waiter.wait_until_blocked_in(libc::SYS_fcntl, WAIT);
    expect_waits(
        &waiter,
        &data,
        &held(
            LockClass::Posix,
            true,
            pid_of(&waiter),
            start,
            last_byte(start, len),
        ),
        "F_SETLKW sleeps in the kernel, which lists the request waiting with `->`",
    );
    release(holder);
    waiter.wait_for_stdout("holding\n", WAIT);
    release(waiter);
}

#[test]
fn a_child_does_not_inherit_a_process_record_lock() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let run = cmd(&home, TASK_2, &["inherit", word(&data), "--api", "posix"]).run();
    run.expect_success();
    run.expect_line(
        "child: locking again through the inherited descriptor: busy",
        "a process-associated lock (F_SETLK) belongs to the process that took it: a child \
         does not inherit it, and its own request conflicts with the parent's lock",
    );
    run.expect_line(
        "child: locking through a new open of the file: granted",
        "the parent's close of its descriptor drops its process-associated lock at once",
    );
    assert_masked!(run);
}

#[test]
fn an_ofd_lock_is_shared_with_the_child_like_a_flock() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let run = cmd(&home, TASK_2, &["inherit", word(&data), "--api", "ofd"]).run();
    run.expect_success();
    run.expect_line(
        "child: locking again through the inherited descriptor: granted",
        "an open file description lock (F_OFD_SETLK) belongs to the open file, which \
         parent and child share after fork",
    );
    run.expect_line(
        "child: locking through a new open of the file: busy",
        "an open file description lock lasts until the last descriptor of the description \
         closes: the child's copy still holds it",
    );
    assert_masked!(run);
}

/// `hold --close-another HOW` with a process-associated lock: the lock
/// must be gone once the holder has closed the other descriptor.
fn a_process_lock_dies_with_any_close(how: &str) {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let holder = start_holder(&home, TASK_2, &[word(&data), "--close-another", how]);
    expect_holds_none(
        &holder,
        &data,
        "still held a process-associated lock after it closed another descriptor of the file",
        "closing any descriptor of a file drops every process-associated (F_SETLK) lock the \
         process holds on it: is it an open file description lock (F_OFD_SETLK)?",
    );
    let other = start_holder(&home, TASK_2, &[word(&data), "--nonblock"]);
    release(other);
    release(holder);
}

#[test]
fn closing_a_second_open_of_the_file_drops_a_process_record_lock() {
    a_process_lock_dies_with_any_close("open");
}

#[test]
fn closing_a_duplicate_descriptor_drops_a_process_record_lock() {
    a_process_lock_dies_with_any_close("dup");
}

#[test]
fn an_ofd_lock_survives_closing_another_descriptor() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let (start, len) = some_range(&mut vary);
    let range = format!("{start}:{len}");
    let holder = start_holder(
        &home,
        TASK_2,
        &[
            word(&data),
            "--api",
            "ofd",
            "--range",
            &range,
            "--close-another",
            "open",
        ],
    );
    expect_holds(
        &holder,
        &data,
        &held(LockClass::Ofd, true, -1, start, last_byte(start, len)),
        "an open file description lock (F_OFD_SETLK, l_pid 0) belongs to the open file, not \
         the process: closing another descriptor leaves it, and /proc/locks shows pid -1",
    );
    let other = cmd(
        &home,
        TASK_2,
        &[
            "hold",
            word(&data),
            "--api",
            "ofd",
            "--range",
            &range,
            "--nonblock",
        ],
    )
    .run();
    other.expect_one_line_error(
        "file-locks",
        "busy",
        "two open file descriptions conflict like two processes: F_OFD_SETLK fails with \
         EAGAIN",
    );
    release(holder);
}

/// Two holders of crossed ranges, each held at the gate before it asks
/// for the other's range: `[0, 10)` then `[10, 20)`, and the reverse.
fn crossed_holders(home: &Sandbox, data: &Path, gate: &Gate, api: &str) -> [Running; 2] {
    ["0:10", "10:10"].map(|first| {
        let then = if first == "0:10" { "10:10" } else { "0:10" };
        let mut holder = cmd(
            home,
            TASK_2,
            &[
                "hold",
                word(data),
                "--api",
                api,
                "--range",
                first,
                "--then",
                then,
                "--gate",
                gate.path(),
            ],
        )
        .start();
        holder.wait_for_stdout("locked:", WAIT);
        holder.wait_until_blocked_in(libc::SYS_flock, WAIT);
        holder
    })
}

#[test]
fn crossed_record_locks_make_one_of_two_waiting_processes_fail_with_edeadlk() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let gate = Gate::shut(&home);
    let [mut a, mut b] = crossed_holders(&home, &data, &gate, "posix");
    gate.open();
    // One of them closes the circle and is refused; which one depends on
    // which asked first. The other goes on once the loser has let go.
    let deadline = Instant::now() + WAIT;
    let (loser, winner) = loop {
        if let Blocked::Exited(_) = a.wait_until_blocked(Duration::ZERO) {
            break (a, b);
        }
        if let Blocked::Exited(_) = b.wait_until_blocked(Duration::ZERO) {
            break (b, a);
        }
        if Instant::now() >= deadline {
            a.fail(
                "neither of two processes waiting for each other's range was refused",
                "F_SETLKW detects a deadlock between process-associated locks and fails with \
                 EDEADLK; lock_range returns that errno as an error",
            );
        }
        thread::sleep(Duration::from_millis(1));
    };
    let refused = loser.wait(WAIT);
    refused.expect_one_line_error(
        "file-locks",
        "EDEADLK",
        "the request that closes a circle of waiting processes fails with EDEADLK: \
         lock_range returns the errno, and the program exits with status 1",
    );
    release(winner);
}

#[test]
fn crossed_ofd_locks_wait_for_each_other_for_ever() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let gate = Gate::shut(&home);
    let [mut a, mut b] = crossed_holders(&home, &data, &gate, "ofd");
    gate.open();
    for running in [&mut a, &mut b] {
        running.wait_until_blocked_in(libc::SYS_fcntl, WAIT);
    }
    let both_waiting = |locks: &[FileLock]| {
        locks
            .iter()
            .filter(|lock| lock.waiting && lock.class == LockClass::Ofd)
            .count()
            == 2
    };
    if !both_waiting(&locks_once(&data, both_waiting)) {
        let mut failure = a.failure("two crossed open file description locks are not both waiting");
        failure.details.push(listing(&file_locks_on(&data)));
        failure.why = Some(
            "each holds one range and asks for the other's with F_OFD_SETLKW: the kernel \
             looks for no deadlock among open file description locks, so both wait"
                .to_string(),
        );
        failure.raise();
    }
    // Neither would ever go on: end them.
    a.kill();
    b.kill();
}

#[test]
fn a_lock_is_advisory_and_stops_no_writer_that_does_not_ask() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let holder = start_holder(&home, TASK_2, &[word(&data)]);
    let line = vary.word(12);
    let writer = Cmd::new("sh", Sandbox::new())
        .args([
            "-c",
            r#"printf '%s\n' "$1" >> "$2""#,
            "sh",
            &line,
            word(&data),
        ])
        .timeout(WAIT)
        .run();
    writer.expect_success();
    let text = fs::read_to_string(&data).unwrap_or_default();
    if !text.ends_with(&format!("{line}\n")) {
        holder.fail(
            "a shell's append did not reach the locked file",
            "unexpected: Linux has no mandatory locks (gone since 5.15); any writer that does \
             not ask for the lock writes",
        );
    }
    expect_holds(
        &holder,
        &data,
        &held(LockClass::Posix, true, pid_of(&holder), 0, None),
        "the holder keeps its write lock on the whole file while others write: the lock \
         only stops those who ask for it",
    );
    release(holder);
}

#[test]
fn a_range_that_ends_past_the_largest_file_offset_is_refused() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let run = cmd(
        &home,
        TASK_2,
        &[
            "hold",
            word(&data),
            "--range",
            "9223372036854775807:2",
            "--nonblock",
        ],
    )
    .run();
    run.expect_one_line_error(
        "file-locks",
        "EOVERFLOW",
        "bytes may be locked past the end of the file, but not past the largest offset a \
         file can have: fcntl fails with EOVERFLOW, which lock_range returns",
    );
    assert_masked!(run);
}

#[test]
fn the_kind_is_read_or_write_and_nothing_else() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let unknown = cmd(&home, TASK_2, &["hold", word(&data), "--kind", "sideways"]).run();
    unknown.expect_code(2);
    if !unknown.stderr.contains("sideways") {
        unknown.fail(
            "did not name the kind it refused",
            "the command line (given) refuses a kind other than read, write, shared or \
             exclusive with a usage error",
        );
    }
    // The two other names of the two kinds.
    let holder = start_holder(
        &home,
        TASK_2,
        &[word(&data), "--kind", "exclusive", "--range", "0:1"],
    );
    expect_holds(
        &holder,
        &data,
        &held(LockClass::Posix, true, pid_of(&holder), 0, Some(0)),
        "`exclusive` is a write lock (F_WRLCK)",
    );
    release(holder);
    assert_masked!(unknown);
}

// ---- TODO 3: F_GETLK ---------------------------------------------------------------

#[test]
fn the_test_command_names_the_process_that_holds_a_record_lock() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let (start, len) = some_range(&mut vary);
    let kind = *vary.pick(&["read", "write"]);
    let range = format!("{start}:{len}");
    let holder = start_holder(
        &home,
        TASK_3,
        &[word(&data), "--kind", kind, "--range", &range],
    );
    // A write lock on one byte of the held range: whatever its kind, the
    // held lock is in the way.
    let inside = format!("{}:1", start + vary.between(0, len - 1));
    let asked = cmd(
        &home,
        TASK_3,
        &["test", word(&data), "--kind", "write", "--range", &inside],
    )
    .run();
    asked.expect_success();
    expect_said(
        &asked,
        &format!(
            "held: {kind} lock on {} by pid {}",
            bytes(start, len),
            holder.pid()
        ),
        "did not name the lock in the way, its range and its holder",
        "F_GETLK overwrites the struct flock with the lock in the way: its l_type, l_start, \
         l_len and l_pid, the pid of the process that holds it",
    );
    // The byte right after the held range is free.
    let after = format!("{}:1", start + len);
    let free = cmd(
        &home,
        TASK_3,
        &["test", word(&data), "--kind", "write", "--range", &after],
    )
    .run();
    free.expect_success();
    free.expect_line(
        &format!(
            "free: nothing keeps a write lock off {}",
            bytes(start + len, 1)
        ),
        "when nothing is in the way, F_GETLK sets l_type to F_UNLCK: lock_holder returns None",
    );
    release(holder);
}

#[test]
fn the_test_command_lets_a_read_lock_pass_beside_another() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let (start, len) = some_range(&mut vary);
    let range = format!("{start}:{len}");
    let holder = start_holder(
        &home,
        TASK_3,
        &[word(&data), "--kind", "read", "--range", &range],
    );
    let asked = cmd(
        &home,
        TASK_3,
        &["test", word(&data), "--kind", "read", "--range", &range],
    )
    .run();
    asked.expect_success();
    asked.expect_line(
        &format!("free: nothing keeps a read lock off {}", bytes(start, len)),
        "F_GETLK asks about the lock described by l_type: a read lock (F_RDLCK) is not kept \
         off by other read locks",
    );
    release(holder);
}

#[test]
fn the_test_command_finds_no_pid_for_an_ofd_lock() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let (start, len) = some_range(&mut vary);
    let range = format!("{start}:{len}");
    let holder = start_holder(
        &home,
        TASK_3,
        &[word(&data), "--api", "ofd", "--range", &range],
    );
    let expected = format!(
        "held: write lock on {} by an open file description (no pid)",
        bytes(start, len)
    );
    for flag in [&["--ofd"][..], &[][..]] {
        let mut args = vec!["test", word(&data), "--range", &range];
        args.extend_from_slice(flag);
        let asked = cmd(&home, TASK_3, &args).run();
        asked.expect_success();
        expect_said(
            &asked,
            &expected,
            "did not say that an open file description holds the range, with no pid",
            "an open file description lock has no owning process: F_OFD_GETLK and F_GETLK \
             report l_pid -1 for it, which lock_holder turns into None",
        );
    }
    release(holder);
}

#[test]
fn the_test_command_finds_a_file_nobody_locks_free() {
    let home = Sandbox::new();
    let mut vary = Varied::new();
    let data = data_file(&home, "data.txt", &mut vary);
    let run = cmd(&home, TASK_3, &["test", word(&data), "--ofd"]).run();
    run.expect_success();
    assert_masked!(run);
}

// ---- TODO 4: appending under a lock ----------------------------------------------------

/// One writer's summary line: `writer W: N records, B bytes, FNV-1a 0x…`.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    writer: u32,
    records: usize,
    bytes: usize,
    fnv: u64,
}

/// The summary a writer printed, if it printed one.
fn summary_of(run: &Run) -> Option<Summary> {
    let line = run.stdout_lines().into_iter().last()?;
    let rest = line.strip_prefix("writer ")?;
    let (writer, rest) = rest.split_once(": ")?;
    let (records, rest) = rest.split_once(" records, ")?;
    let (bytes, rest) = rest.split_once(" bytes, FNV-1a 0x")?;
    Some(Summary {
        writer: writer.parse().ok()?,
        records: records.parse().ok()?,
        bytes: bytes.parse().ok()?,
        fnv: u64::from_str_radix(rest, 16).ok()?,
    })
}

/// FNV-1a, 64 bits, as the journal's checksums use it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A journal line that is a whole record: `W SEQ PAYLOAD CHECKSUM`, the
/// checksum matching. Returns the writer and the sequence number.
fn whole_record(line: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(line).ok()?;
    let (body, checksum) = text.rsplit_once(' ')?;
    let fields: Vec<&str> = body.split(' ').collect();
    let [writer, seq, payload] = fields[..] else {
        return None;
    };
    let good = !payload.is_empty()
        && payload.bytes().all(|b| b.is_ascii_lowercase())
        && checksum.len() == 16
        && u64::from_str_radix(checksum, 16).ok()? == fnv1a(body.as_bytes());
    good.then_some((writer.parse().ok()?, seq.parse().ok()?))
}

/// What the journal holds: per writer, its whole records (sequence
/// number, line with its newline) in file order; and the torn lines.
#[derive(Debug, Default)]
struct Journal {
    writers: std::collections::BTreeMap<u32, Vec<(u32, Vec<u8>)>>,
    whole: usize,
    torn: usize,
}

fn read_journal(bytes: &[u8]) -> Journal {
    let mut journal = Journal::default();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        match line.strip_suffix(b"\n").and_then(whole_record) {
            Some((writer, seq)) => {
                journal
                    .writers
                    .entry(writer)
                    .or_default()
                    .push((seq, line.to_vec()));
                journal.whole += 1;
            }
            None => journal.torn += 1,
        }
    }
    journal
}

/// What a race of writers did.
struct Race {
    writers: u32,
    records: u32,
    runs: Vec<Run>,
    journal: Journal,
}

/// Starts 3 to 5 writers of 4 to 30 records each, with `lock`; holds them
/// at the gate (each has found the end of the file for its first record)
/// until every one is asleep, in `flock` at the gate or in `fcntl` or
/// `flock` waiting for the lock; then lets them go and reads the journal.
fn race(lock: &str, vary: &mut Varied) -> Race {
    let home = Sandbox::new();
    let journal = home.path("journal");
    let writers = vary.between(3, 5) as u32;
    let records = vary.between(4, 30) as u32;
    let seed = vary.between(1, u64::from(u32::MAX)).to_string();
    let gate = Gate::shut(&home);
    let count = records.to_string();
    let mut running: Vec<Running> = (0..writers)
        .map(|writer| {
            let writer = writer.to_string();
            cmd(
                &home,
                TASK_4,
                &[
                    "append",
                    word(&journal),
                    "--writer",
                    &writer,
                    "--records",
                    &count,
                    "--seed",
                    &seed,
                    "--lock",
                    lock,
                    "--gate",
                    gate.path(),
                ],
            )
            .why_if_timeout(
                "the writers waited for each other for ever: is the lock released after each \
                 record?",
            )
            .start()
        })
        .collect();
    for writer in &mut running {
        writer.wait_until_blocked_in_one_of(&[libc::SYS_flock, libc::SYS_fcntl], WAIT);
    }
    gate.open();
    let runs: Vec<Run> = running.into_iter().map(|w| w.wait(WAIT)).collect();
    for run in &runs {
        run.expect_success();
    }
    let bytes = fs::read(&journal).unwrap_or_default();
    Race {
        writers,
        records,
        runs,
        journal: read_journal(&bytes),
    }
}

/// Fails unless every record of every writer of `race` is whole in the
/// journal, once, in order, and matches what the writer said it wrote.
fn expect_every_record_whole(race: &Race) {
    let expected = (race.writers * race.records) as usize;
    let first = &race.runs[0];
    if race.journal.whole != expected || race.journal.torn != 0 {
        let mut failure = first.failure(format!(
            "only {} of the {expected} records are whole in the journal ({} torn line(s))",
            race.journal.whole, race.journal.torn
        ));
        failure.details.push(format!(
            "{} writers of {} records each",
            race.writers, race.records
        ));
        failure.why = Some(
            "two writers found the same end of file and wrote there, one over the other: take \
             the lock before lseek(SEEK_END) and release it only after the write (the gate \
             holds each writer between the two)"
                .to_string(),
        );
        failure.raise();
    }
    for run in &race.runs {
        let Some(summary) = summary_of(run) else {
            run.fail(
                "printed no summary line",
                "append ends with `writer W: N records, …` (given)",
            );
        };
        let mine = race
            .journal
            .writers
            .get(&summary.writer)
            .cloned()
            .unwrap_or_default();
        let in_order = mine
            .iter()
            .enumerate()
            .all(|(at, (seq, _))| *seq as usize == at);
        let lines: Vec<u8> = mine.iter().flat_map(|(_, line)| line.clone()).collect();
        let agrees = summary.records == mine.len()
            && summary.bytes == lines.len()
            && summary.fnv == fnv1a(&lines);
        if !in_order || !agrees {
            run.fail(
                format!(
                    "the journal's records of writer {} differ from what it wrote",
                    summary.writer
                ),
                "each record must be written whole, once, at the end found under the lock",
            );
        }
    }
}

#[test]
fn writers_under_a_flock_lose_no_record() {
    let mut vary = Varied::new();
    expect_every_record_whole(&race("flock", &mut vary));
}

#[test]
fn writers_under_a_process_record_lock_lose_no_record() {
    let mut vary = Varied::new();
    expect_every_record_whole(&race("posix", &mut vary));
}

#[test]
fn writers_under_an_ofd_lock_lose_no_record() {
    let mut vary = Varied::new();
    expect_every_record_whole(&race("ofd", &mut vary));
}

#[test]
fn writers_without_a_lock_write_over_each_other() {
    let mut vary = Varied::new();
    let race = race("none", &mut vary);
    let total = (race.writers * race.records) as usize;
    // Every writer found the same end for its first record, then all wrote
    // there: at most one of those first records can be whole.
    let at_most = total - (race.writers as usize - 1);
    if race.journal.whole > at_most {
        race.runs[0].fail(
            format!(
                "{} of {total} records are whole, though the writers wrote unlocked",
                race.journal.whole
            ),
            "with --lock none, append_record takes no lock: every writer finds the same end \
             of file at the gate and writes there, and all but one of those records are lost",
        );
    }
    for run in &race.runs {
        if summary_of(run).map(|s| s.records) != Some(race.records as usize) {
            run.fail(
                "did not append all its records",
                "an unlocked writer does not know it lost records: it appends all of them",
            );
        }
    }
}

// ---- TODOs 5 and 6: a pid file, a single-instance daemon -------------------------------------

/// `file-locks daemon ACTION PIDFILE` in `sandbox`.
fn daemon(sandbox: Sandbox, section: &str, action: &str, pid_file: &Path) -> Cmd {
    lab()
        .cmd_in(sandbox, ["daemon", action, word(pid_file)])
        .section(section)
        .timeout(WAIT)
}

/// The pid in `started: pid N`.
fn started_pid(run: &Run) -> i32 {
    let pid = run
        .stdout
        .trim()
        .strip_prefix("started: pid ")
        .and_then(|pid| pid.parse().ok());
    pid.unwrap_or_else(|| {
        run.fail(
            "did not say `started: pid N`",
            "daemon start prints the pid the daemon reported (given)",
        )
    })
}

/// Starts a daemon on `sandbox`'s `app.pid` and checks what a running
/// daemon must be: the one process left, holding a write lock on the
/// whole pid file, its pid in it, in a session of its own. Returns the
/// run (with the sandbox) and the daemon's pid.
fn start_daemon_checked(sandbox: Sandbox) -> (Run, i32) {
    let pid_file = sandbox.path("app.pid");
    let start = daemon(sandbox, TASK_6, "start", &pid_file)
        .keep_daemons()
        .why_if_timeout(
            "daemon start never learnt the outcome: the parent must close its copy of the \
             pipe's write end before read_report, or it never sees end-of-file",
        )
        .run();
    start.expect_success();
    let pid = started_pid(&start);
    let daemons = start.sandbox.daemons();
    if daemons != [pid as u32] {
        start.fail(
            format!(
                "left {} process(es) running, not just the daemon it named",
                daemons.len()
            ),
            "the daemon is the one process left running, and it is the process that \
             reported `started`",
        );
    }
    let locks = locks_held_by(pid as u32, &pid_file);
    if !locks.contains(&held(LockClass::Posix, true, pid, 0, None)) {
        let mut failure = start.failure("the daemon it named holds no write lock on the pid file");
        failure.details.push(holdings(&locks));
        failure.why = Some(
            "the daemon itself must take the lock (a process lock is not inherited across \
             fork), with F_SETLK on the whole file, and keep the file open all its life"
                .to_string(),
        );
        failure.raise();
    }
    let text = fs::read_to_string(&pid_file).unwrap_or_default();
    if text != format!("{pid}\n") {
        let mut failure =
            start.failure("the pid file holds other text than the daemon's pid and a newline");
        failure.details.push(format!("it holds {text:?}"));
        failure.why = Some(
            "once the lock is its own, the daemon truncates the file and writes its pid, the \
             pid of the process that holds the lock"
                .to_string(),
        );
        failure.raise();
    }
    let sessions = parent_and_session(pid)
        .and_then(|(parent, session)| Some((session, parent_and_session(parent)?.1)));
    if let Some((mine, parents)) = sessions
        && mine == parents
    {
        start.fail(
            "the daemon is still in the session of the command that started it",
            "the child calls setsid() first: a session of its own, no terminal, out of reach \
             of signals to the shell's process group",
        );
    }
    (start, pid)
}

/// Stops the daemon on `sandbox`'s `app.pid` with `daemon stop`: nothing
/// may be left running after it.
fn stop_daemon(sandbox: Sandbox, pid: i32) -> Run {
    let pid_file = sandbox.path("app.pid");
    let stop = daemon(sandbox, TASK_5, "stop", &pid_file).run();
    stop.expect_success();
    stop.expect_line(
        &format!("stopped: pid {pid}"),
        "daemon stop signals the process that holds the pid file's lock, which \
         pid_file_holder finds with F_GETLK",
    );
    stop
}

#[test]
fn start_runs_one_daemon_that_holds_its_pid_file_until_stop() {
    let (start, pid) = start_daemon_checked(Sandbox::new());
    let pid_file = start.sandbox.path("app.pid");
    assert_masked!(start);
    let status = daemon(start.sandbox, TASK_5, "status", &pid_file)
        .keep_daemons()
        .run();
    status.expect_success();
    status.expect_line(
        &format!("running: pid {pid}"),
        "pid_file_holder asks F_GETLK for a write lock on the whole pid file: the answer's \
         l_pid is the daemon",
    );
    let stop = stop_daemon(status.sandbox, pid);
    let after = daemon(stop.sandbox, TASK_5, "status", &pid_file).run();
    after.expect_code(3);
    after.expect_line(
        "not running",
        "once the daemon has ended, nobody holds the lock: F_GETLK says F_UNLCK, whatever \
         the file still says",
    );
}

#[test]
fn a_second_start_names_the_running_daemon_and_leaves_its_pid_file_alone() {
    let (start, pid) = start_daemon_checked(Sandbox::new());
    let pid_file = start.sandbox.path("app.pid");
    let second = daemon(start.sandbox, TASK_5, "start", &pid_file)
        .keep_daemons()
        .run();
    second.expect_one_line_error(
        "file-locks",
        &format!("already running as pid {pid}"),
        "the new daemon's F_SETLK is refused; F_GETLK then names the holder, whose pid \
         claim_pid_file returns (Claim::Running), and the second daemon ends",
    );
    let text = fs::read_to_string(&pid_file).unwrap_or_default();
    if text != format!("{pid}\n") {
        second.fail(
            format!("the running daemon's pid file now holds {text:?}"),
            "a second start must leave the file alone: open without O_TRUNC, and truncate \
             only once the lock is yours",
        );
    }
    if second.sandbox.daemons() != [pid as u32] {
        second.fail(
            "a second daemon is still running",
            "a daemon that finds another holding the pid file reports it and exits",
        );
    }
    stop_daemon(second.sandbox, pid);
}

#[test]
fn a_pid_file_left_by_a_killed_daemon_does_not_stop_a_new_start() {
    let (start, killed) = start_daemon_checked(Sandbox::new());
    let pid_file = start.sandbox.path("app.pid");
    kill_and_wait(killed as u32, libc::SIGKILL, WAIT)
        .unwrap_or_else(|e| panic!("grader: kill the daemon: {e}"));
    // The pid file now names a live process that is not a daemon (this
    // test), and is longer than any pid.
    let stale = format!(
        "{}\n(a pid file left behind: it names a process that holds no lock)\n",
        std::process::id()
    );
    fs::write(&pid_file, &stale).unwrap_or_else(|e| panic!("grader: write: {e}"));
    let status = daemon(start.sandbox, TASK_5, "status", &pid_file).run();
    status.expect_line(
        "not running",
        "a stale pid file names a process that holds no lock: ask the lock (F_GETLK), never \
         the file's text",
    );
    status.expect_code(3);
    let (again, pid) = start_daemon_checked(status.sandbox);
    if pid == killed {
        again.fail(
            "named the killed daemon's pid",
            "a new daemon has a new pid",
        );
    }
    stop_daemon(again.sandbox, pid);
}

#[test]
fn a_new_pid_file_may_be_read_by_all_and_written_by_its_owner_only() {
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("app.pid");
    // With no umask, the file gets exactly the mode open() is given.
    let start = lab()
        .script_in(sandbox, r#"umask 0; exec "$0" daemon start "$1""#)
        .arg(&pid_file)
        .section(TASK_5)
        .timeout(WAIT)
        .keep_daemons()
        .run();
    start.expect_success();
    let pid = started_pid(&start);
    let mode = fs::metadata(&pid_file)
        .map(|meta| meta.permissions().mode() & 0o7777)
        .unwrap_or(0);
    if mode != 0o644 {
        start.fail(
            format!("made the pid file with mode {mode:03o}, with a umask of 0"),
            "a pid file is created with mode 0644 (PID_FILE_MODE): everyone may read it and ask \
             who holds it; only its owner may write it",
        );
    }
    stop_daemon(start.sandbox, pid);
}

/// Runs a `daemon start` that must fail: exit status 1, nothing left
/// behind. A child left behind is named the same way whether it is still
/// ending or already a zombie; `why_started` explains a start that
/// succeeded.
fn failed_start(cmd: Cmd, why_started: &str) -> Run {
    let start = cmd.run_unchecked();
    let processes = start.leaks.iter().any(|leak| {
        matches!(
            leak.kind,
            LeakKind::Zombie | LeakKind::Daemon | LeakKind::RunningProcess
        )
    });
    let complaint = match start.code() {
        Some(0) => Some(("started a daemon, where it had to refuse", why_started)),
        Some(1) if processes => Some((
            "left behind the child that could not claim the pid file",
            "a child that reports a failure (or another daemon) then ends: the parent waits \
             for it with waitpid(), as for any child that is not the daemon",
        )),
        _ => None,
    };
    if let Some((what, why)) = complaint {
        // The leftover's own lines differ from run to run (a zombie, or a
        // process still ending): the sentence above says it all.
        let mut failure = start.failure(what);
        failure.details.clear();
        failure.why = Some(why.to_string());
        failure.raise();
    }
    start.check_finished_cleanly();
    start
}

#[test]
fn start_refuses_a_pid_file_that_is_a_symbolic_link() {
    let sandbox = Sandbox::new();
    let mut vary = Varied::new();
    let text = format!("{}\n", vary.word(20));
    let victim = sandbox.write_file("precious.txt", &text);
    let pid_file = sandbox.path("app.pid");
    std::os::unix::fs::symlink(&victim, &pid_file)
        .unwrap_or_else(|e| panic!("grader: symlink: {e}"));
    let start = failed_start(
        daemon(sandbox, TASK_5, "start", &pid_file),
        "claim_pid_file opens with O_NOFOLLOW: a symbolic link at the pid file's path must \
         fail with ELOOP, never lead the daemon to a file someone else chose",
    );
    start.expect_one_line_error(
        "file-locks",
        "Too many levels of symbolic links",
        "claim_pid_file opens with O_NOFOLLOW: a symbolic link at the pid file's path fails \
         with ELOOP instead of leading the daemon to truncate another file",
    );
    if fs::read_to_string(&victim).unwrap_or_default() != text {
        start.fail(
            "changed the file the symbolic link points to",
            "open the pid file with O_NOFOLLOW",
        );
    }
    assert_masked!(start);
}

#[test]
fn start_refuses_a_pid_file_locked_by_an_open_file_description() {
    let home = Sandbox::new();
    let pid_file = home.write_file("app.pid", "");
    let holder = start_holder(&home, TASK_5, &[word(&pid_file), "--api", "ofd"]);
    let start = failed_start(
        daemon(home, TASK_5, "start", &pid_file).why_if_timeout(
            "F_SETLK is refused and F_GETLK names a holder with no pid (l_pid -1): retrying \
             will never succeed while it holds the lock; report it instead",
        ),
        "the pid file is write-locked by an open file description: F_SETLK must be refused",
    );
    start.expect_one_line_error(
        "file-locks",
        "locked by an open file description",
        "a holder without a pid is no daemon of ours and will not let go: claim_pid_file \
         returns an error, `locked by an open file description`, instead of a pid or a retry",
    );
    if fs::read_to_string(&pid_file).map_or(true, |text| !text.is_empty()) {
        start.fail(
            "changed the pid file of a lock it does not hold",
            "truncate and write only once the lock is yours",
        );
    }
    release(holder);
}

#[test]
fn start_reports_a_pid_file_it_cannot_create() {
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("no-such-dir/app.pid");
    let start = failed_start(
        daemon(sandbox, TASK_5, "start", &pid_file),
        "a pid file in a directory that does not exist cannot be created: open fails with \
         ENOENT",
    );
    start.expect_one_line_error(
        "file-locks",
        "No such file or directory",
        "the daemon reports its failed claim through the pipe, `open PATH: …`, and exits; \
         daemon start prints it and exits with status 1",
    );
    assert_masked!(start);
}

#[test]
fn status_and_stop_without_a_pid_file_say_not_running() {
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("app.pid");
    let status = daemon(sandbox, TASK_5, "status", &pid_file).run();
    status.expect_code(3);
    status.expect_line(
        "not running",
        "a missing pid file means nobody holds it: pid_file_holder returns Ok(None)",
    );
    let stop = daemon(status.sandbox, TASK_5, "stop", &pid_file).run();
    stop.expect_success();
    if pid_file.exists() {
        stop.fail(
            "created the pid file",
            "status and stop only look: open without O_CREAT",
        );
    }
    assert_masked!(stop);
}
