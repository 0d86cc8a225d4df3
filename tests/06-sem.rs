//! Grading suite of lab 06 (System V semaphores).
//!
//! Compiled into both the lab (`labs/06-sem`) and the reference solution.
//! Most tests run a fixed shell script in which several `sem` processes
//! meet at one semaphore set, named by the sandbox's key file: the program
//! is `"$0"` and the key file `"$1"`; nothing from outside is spliced into
//! the scripts. The grader removes any set left under the sandbox's key and
//! fails the test for it.

use std::time::Duration;

use grader::{Cmd, Lab, Run, Sandbox};

const CHAPTER: &str = "06-sem.md";

const TASK_1: &str = "Task 1: P and V";
const TASK_2: &str = "Task 2: ask semctl";
const TASK_3: &str = "Task 3: a binary semaphore as a mutex";
const TASK_4: &str = "Task 4: survive a crash";
const TASK_5: &str = "Task 5: initialise without a race";

/// A script of a dozen short commands; a sleeping P that never wakes is the
/// only way to exceed it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a script that waits on a semaphore hangs.
const STUCK: &str = "a process slept in semop and nobody woke it: check the sign of sem_op \
                     (-1 for P, +1 for V, 0 to wait for zero) and the semaphore number";

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// `sh -c SCRIPT sem KEY_FILE`: the script runs the lab's program as "$0"
/// with the sandbox's key file as "$1", in a fresh sandbox.
fn script(section: &str, text: &str) -> Cmd {
    script_in(Sandbox::new(), section, text)
}

/// Like [`script`], in a sandbox the test has prepared.
fn script_in(sandbox: Sandbox, section: &str, text: &str) -> Cmd {
    let lab = lab();
    let key_file = sandbox.key_file().to_path_buf();
    // The scripts' own FIFO, through which a holder says it holds the lock.
    let handshake = sandbox.path("holding");
    lab.script_in(sandbox, text)
        .keeps(handshake)
        .arg(key_file)
        .section(section)
        .timeout(SCRIPT_TIMEOUT)
        .why_if_timeout(STUCK)
}

// ---- masking what differs from run to run ---------------------------------

/// `grader::assert_masked_transcript!` with this suite's identifier.
macro_rules! assert_masked_transcript {
    ($run:expr) => {
        grader::assert_masked_transcript!($run, "semid ", "[semid]")
    };
}

/// Fails unless the program reported an error on exactly one line that
/// starts with `sem: ` and names `errno`, and exited with status 1.
fn expect_error(run: &Run, errno: &str, why: &str) {
    run.expect_one_line_error("sem", errno, why);
}

/// Fails unless standard output has `line`.
fn expect_line(run: &Run, line: &str, why: &str) {
    run.expect_line(line, why);
}

// ---- TODO 1: P and V -------------------------------------------------------

#[test]
fn p_and_v_move_the_values_down_and_up() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 2 0
"$0" p "$1" 0 && "$0" p "$1" 0 && "$0" values "$1"
"$0" v "$1" 1 && "$0" v "$1" 1 && "$0" values "$1"
"$0" p "$1" 0 --nowait; echo "p --nowait on 0: exit status $?"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "0 2",
        "two P on semaphore 0 (value 2) and two V on semaphore 1 must leave 0 and 2: \
         P is sem_op -1, V is sem_op +1, both on sem_num NUM",
    );
    if !run.stderr.contains("would block") {
        run.fail(
            "a P with --nowait on a semaphore whose value is 0 did not report \"would block\"",
            "with IPC_NOWAIT in sem_flg, semop fails with EAGAIN instead of sleeping: \
             that is not an error but the answer \"not now\", so try_p returns Ok(false)",
        );
    }
    assert_masked_transcript!(run);
}

#[test]
fn p_sleeps_until_another_process_does_v() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 0
"$0" p "$1" 0 & taker=$!
"$0" wait-for "$1" 0 --ncnt 1 --wait-ms 2000 && echo "the taker sleeps in semop (semncnt 1)"
"$0" v "$1" 0
wait $taker; echo "taker: exit status $?"
"$0" values "$1"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "the taker sleeps in semop (semncnt 1)",
        "a P on a semaphore whose value is 0 must sleep in semop until someone does a V \
         (sem_flg without IPC_NOWAIT)",
    );
    assert_masked_transcript!(run);
}

#[test]
fn zero_sleeps_until_the_value_is_zero() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 2
"$0" zero "$1" 0 & waiter=$!
"$0" wait-for "$1" 0 --zcnt 1 --wait-ms 2000 && echo "the waiter sleeps in semop (semzcnt 1)"
"$0" p "$1" 0 && "$0" p "$1" 0
wait $waiter; echo "waiter: exit status $?"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "the waiter sleeps in semop (semzcnt 1)",
        "sem_op 0 waits until the value is 0: it must sleep while the value is 2",
    );
    assert_masked_transcript!(run);
}

#[test]
fn v_with_sem_undo_is_undone_when_the_process_exits() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 0
"$0" v "$1" 0 --undo && "$0" values "$1"
"$0" v "$1" 0 && "$0" values "$1"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    if run.stdout_lines().get(1) == Some(&"1") {
        run.fail(
            "a V with --undo was still there after its process exited",
            "with SEM_UNDO in sem_flg, the kernel records the opposite adjustment and \
             applies it when the process exits: pass SEM_UNDO when `undo` is true",
        );
    }
    assert_masked_transcript!(run);
}

#[test]
fn p_reports_a_semaphore_the_set_does_not_have() {
    let run = script(
        TASK_1,
        r#"
"$0" create "$1" 1
"$0" p "$1" 3; echo "p on 3: exit status $?"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    if !run.stderr.contains("EFBIG") || !run.stderr.starts_with("sem: ") {
        run.fail(
            "a P on semaphore 3 of a set of 1 was not reported as EFBIG",
            "semop fails with EFBIG when sem_num is not below nsems: return the error \
             with context, do not retry or ignore it",
        );
    }
    assert_masked_transcript!(run);
}

// ---- TODO 2: semctl's view --------------------------------------------------

#[test]
fn show_reports_values_waiters_and_the_last_process() {
    let run = script(
        TASK_2,
        r#"
"$0" create "$1" 1 0 2 & creator=$!; wait $creator; echo "creator: pid $creator"
"$0" show "$1"
"$0" p "$1" 1 & taker=$!; echo "taker: pid $taker"
"$0" zero "$1" 2 & zero_waiter=$!; echo "zero waiter: pid $zero_waiter"
"$0" wait-for "$1" 1 --ncnt 1 && "$0" wait-for "$1" 2 --zcnt 1
"$0" show "$1"
"$0" v "$1" 1 && "$0" p "$1" 2 && "$0" p "$1" 2
wait
"$0" show "$1"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    assert_masked_transcript!(run);
}

/// The rows of `show`'s table and of `ipcs -s -i`'s, as
/// `[semnum, semval, semncnt, semzcnt, sempid]`.
fn table_rows<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<Vec<String>> {
    lines
        .map(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|words| words.len() == 5 && words.iter().all(|w| w.parse::<u64>().is_ok()))
        .collect()
}

#[test]
fn show_agrees_with_ipcs() {
    let sandbox = Sandbox::new();
    // The key the program must make: ftok(key file, 'S'), the lab's PROJ_ID.
    let key = format!("{:#010x}", sandbox.key(b'S') as u32);
    let run = script_in(
        sandbox,
        TASK_2,
        r#"
"$0" create "$1" 3 1 4 1 5 >/dev/null
"$0" p "$1" 0 && "$0" v "$1" 1 && "$0" p "$1" 4
"$0" p "$1" 1 & "$0" p "$1" 1 & "$0" p "$1" 1 &
"$0" wait-for "$1" 1 --ncnt 1
echo "--- sem show"
"$0" show "$1"
echo "--- ipcs -s -i"
semid=$(ipcs -s | awk -v key="$SEM_KEY" '$1 == key { print $2 }')
ipcs -s -i "$semid"
"$0" v "$1" 1
wait
"$0" remove "$1"
"#,
    )
    .env("SEM_KEY", key)
    .run();
    run.expect_success();
    let (ours, theirs) = run
        .stdout
        .split_once("--- ipcs -s -i")
        .unwrap_or((&run.stdout, ""));
    let (ours, theirs) = (table_rows(ours.lines()), table_rows(theirs.lines()));
    if ours.len() != 5 || ours != theirs {
        let mut failure = run.failure("`sem show` and `ipcs -s -i` disagree");
        failure.details.push(format!("sem show: {ours:?}"));
        failure.details.push(format!("ipcs:     {theirs:?}"));
        failure.why = Some(
            "each row is semnum, GETVAL (or GETALL), GETNCNT, GETZCNT, GETPID for that \
             semaphore: ask semctl with the right command and the right semnum"
                .into(),
        );
        failure.raise();
    }
}

#[test]
fn show_reports_a_missing_key_file() {
    let run = lab()
        .cmd(["show", "no-such-key-file"])
        .section(TASK_2)
        .run();
    expect_error(
        &run,
        "ENOENT",
        "ftok needs an existing file: return its error (ENOENT) with context, e.g. \
         `ftok FILE: ENOENT: No such file or directory`",
    );
}

#[test]
fn show_reports_a_key_without_a_set() {
    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file().to_path_buf();
    let run = lab()
        .cmd_in(sandbox, ["show".into(), key_file.into_os_string()])
        .section(TASK_2)
        .run();
    expect_error(
        &run,
        "ENOENT",
        "semget(key, 0, 0) fails with ENOENT when no set has this key: report it, and \
         never create a set just to look at it",
    );
}

/// Root passes every System V permission check (CAP_IPC_OWNER); the
/// script takes that capability away from the reader when it runs as root,
/// so that the mode is enforced for everyone.
const WITHOUT_IPC_OWNER: &str = r#"
if [ "$(id -u)" = 0 ]; then as_reader="setpriv --bounding-set=-ipc_owner"; else as_reader=; fi
"#;

#[test]
fn show_reports_permission_denied() {
    let text = format!(
        "{WITHOUT_IPC_OWNER}{}",
        r#""$0" create "$1" 1 --mode 200
$as_reader "$0" show "$1"; echo "show: exit status $?"
"$0" remove "$1"
"#
    );
    let run = script(TASK_2, &text).run();
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
        "show: exit status 1",
        "IPC_STAT needs read permission: a set with mode 200 (alter, but not read) must be \
         reported as EACCES",
    );
    if !run.stderr.contains("EACCES") {
        run.fail(
            "the error did not name EACCES",
            "return semctl's error with context instead of replacing it",
        );
    }
    assert_masked_transcript!(run);
}

// ---- TODO 3: a binary semaphore as a mutex --------------------------------

/// The counter `count` printed, and the one it expected.
fn counts(run: &Run) -> Option<(u64, u64)> {
    let line = run.stdout.lines().find(|l| l.contains("counter = "))?;
    let (_, rest) = line.split_once("counter = ")?;
    let (total, rest) = rest.split_once(" (expected ")?;
    let expected: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((total.parse().ok()?, expected.parse().ok()?))
}

/// `sem count KEY_FILE COUNTER --procs 4 --times 1000 EXTRA…` in a fresh
/// sandbox: four workers adding 1 a thousand times each.
fn count(extra: &[&str]) -> Cmd {
    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file().to_path_buf();
    let counter = sandbox.path("counter");
    let mut args = vec![
        "count".into(),
        key_file.into_os_string(),
        counter.into_os_string(),
    ];
    args.extend(
        ["--procs", "4", "--times", "1000"]
            .iter()
            .chain(extra)
            .map(Into::into),
    );
    lab().cmd_in(sandbox, args)
}

#[test]
fn mutex_keeps_every_increment() {
    let run = count(&[])
        .section(TASK_3)
        .why_if_timeout(
            "the workers deadlocked: every P needs its V, on the same semaphore, even \
             when an error ends the loop early",
        )
        .run();
    run.expect_success();
    if let Some((total, expected)) = counts(&run)
        && total != expected
    {
        run.fail(
            format!(
                "{} increments were lost with the lock",
                expected - total.min(expected)
            ),
            "read, yield and write must all happen between P and V, and the lock's \
             value must start at 1 (one process at a time)",
        );
    }
    assert_masked_transcript!(run);
}

#[test]
fn counter_without_the_lock_runs_every_worker() {
    // Without the lock the total depends on the scheduler: a lower total
    // is the expected outcome, but never certain. Grade what is certain.
    let run = count(&["--no-lock"]).section(TASK_3).run();
    run.expect_success();
    match counts(&run) {
        Some((total, 4000)) if (1..=4000).contains(&total) => {
            println!("without the lock: counter = {total} of 4000");
        }
        _ => run.fail(
            "did not report a counter between 1 and 4000, expected 4000",
            "fork every worker, wait for all of them, then read the counter",
        ),
    }
}

#[test]
fn count_refuses_a_key_that_already_has_a_set() {
    let run = script(
        TASK_3,
        r#"
"$0" create "$1" 7
"$0" count "$1" counter --procs 2 --times 10; echo "count: exit status $?"
"$0" values "$1"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    if !run.stderr.contains("EEXIST") {
        run.fail(
            "count did not fail with EEXIST on a key that already names a set",
            "create the lock with IPC_EXCL (SemSet::create): using someone else's set as \
             a lock would change its values",
        );
    }
    expect_line(
        &run,
        "7",
        "the existing set must be left alone: do not SETVAL or remove a set you did not create",
    );
    assert_masked_transcript!(run);
}

// ---- TODO 4: SEM_UNDO and a bounded wait ------------------------------------

/// A holder takes semaphore 0 and announces it through the FIFO `holding`;
/// the script kills it with SIGKILL, then another process tries to enter.
/// `HOLD_FLAGS` is `--undo` or nothing.
const CRASH: &str = r#"
"$0" create "$1" 1
mkfifo holding
"$0" hold "$1" HOLD_FLAGS > holding & holder=$!
read line < holding && echo "holder says: $line"
kill -KILL $holder; wait $holder 2>/dev/null; echo "holder: wait status $? (SIGKILL)"
"$0" values "$1"
"$0" enter "$1" --wait-ms 300
"$0" remove "$1"
"#;

#[test]
fn sem_undo_gives_a_killed_holders_unit_back() {
    let run = script(TASK_4, &CRASH.replace("HOLD_FLAGS", "--undo")).run();
    run.expect_success();
    expect_line(
        &run,
        "holder says: holding semaphore 0",
        "hold calls your p(set, 0, undo): it must return once it has taken semaphore 0",
    );
    if run.stdout.contains("still blocked") {
        run.fail(
            "the holder was killed, and nobody could enter after it",
            "with SEM_UNDO in sem_flg, the kernel gives back what a process took when it \
             dies: pass SEM_UNDO when `undo` is true",
        );
    }
    expect_line(
        &run,
        "entered: took semaphore 0 and gave it back",
        "p_timeout must take the unit that the kernel gave back",
    );
    assert_masked_transcript!(run);
}

#[test]
fn without_sem_undo_a_killed_holder_blocks_everyone() {
    let run = script(TASK_4, &CRASH.replace(" HOLD_FLAGS", "")).run();
    run.expect_success();
    expect_line(
        &run,
        "still blocked after 300 ms",
        "the holder took the unit without SEM_UNDO and died: nothing gives it back, \
         so p_timeout must give up with EAGAIN after its limit and return Ok(false)",
    );
    assert_masked_transcript!(run);
}

#[test]
fn enter_waits_for_a_holder_that_gives_back() {
    let run = script(
        TASK_4,
        r#"
"$0" create "$1" 1
mkfifo holding
"$0" hold "$1" --undo --for-ms 200 > holding & holder=$!
read line < holding && echo "holder says: $line"
"$0" enter "$1" --wait-ms 3000
wait $holder; echo "holder: exit status $?"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    expect_line(
        &run,
        "entered: took semaphore 0 and gave it back",
        "semtimedop sleeps up to its timeout: a holder that gives back after 200 ms \
         must let a P with a 3000 ms limit in (EAGAIN only when the time is up)",
    );
    assert_masked_transcript!(run);
}

// ---- TODO 5: the initialisation race ----------------------------------------

#[test]
fn ready_waits_until_the_creator_has_initialised() {
    let run = script(
        TASK_5,
        r#"
"$0" init "$1" 1 --delay-ms 300 > creator.out & creator=$!
i=0; until "$0" values "$1" >/dev/null 2>&1 || [ $i -ge 200 ]; do i=$((i + 1)); sleep 0.01; done
"$0" ready "$1" --wait-ms 5000
wait $creator; echo "creator: exit status $?"; cat creator.out
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    if run.stdout.contains("ready: 0") {
        run.fail(
            "ready used the set while its creator was still initialising it",
            "semget succeeds as soon as the set exists, with every value 0: wait until \
             IPC_STAT shows sem_otime != 0 before using it",
        );
    }
    if run.stderr.contains("not initialised") {
        run.fail(
            "ready gave up although the creator finished initialising",
            "sem_otime changes only with a semop: after SETALL, the creator must do a \
             semop that changes nothing ([+1, -1] on semaphore 0)",
        );
    }
    expect_line(
        &run,
        "ready: 1",
        "ready must print the values the creator set",
    );
    assert_masked_transcript!(run);
}

#[test]
fn ready_gives_up_on_a_set_nobody_initialised() {
    let run = script(
        TASK_5,
        r#"
"$0" create "$1" 1
"$0" ready "$1" --wait-ms 150; echo "ready: exit status $?"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    if !run.stderr.contains("not initialised after 150 ms") {
        run.fail(
            "ready did not give up on a set whose sem_otime stays 0",
            "poll IPC_STAT until sem_otime != 0, but only until the limit; then fail \
             with `not initialised after N ms`",
        );
    }
    assert_masked_transcript!(run);
}

#[test]
fn init_leaves_an_existing_set_alone() {
    let run = script(
        TASK_5,
        r#"
"$0" create "$1" 5 5
"$0" init "$1" 1 1; echo "init: exit status $?"
"$0" values "$1"
"$0" remove "$1"
"#,
    )
    .run();
    run.expect_success();
    if !run.stderr.contains("EEXIST") {
        run.fail(
            "init did not fail with EEXIST on a key that already names a set",
            "create with IPC_EXCL: only the process whose semget created the set may \
             initialise it",
        );
    }
    expect_line(
        &run,
        "5 5",
        "a failed init must not change (or remove) the set someone else made",
    );
    assert_masked_transcript!(run);
}
