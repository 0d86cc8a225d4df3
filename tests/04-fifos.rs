//! Grading suite of lab 04 (FIFOs).
//!
//! Compiled into both the lab (`labs/04-fifos`) and the reference solution;
//! every test runs the program as a black box through the grader. The other
//! side of each FIFO is a real shell tool (`mkfifo`, `echo … >`, `cat <`,
//! `head`, a client or a server written in `sh`), never the lab itself, so
//! each task is graded on its own. The grader also fails a test when a FIFO
//! the program made is left on disk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use grader::{Blocked, Cmd, Lab, LeakKind, Run, Running, Sandbox, assert_transcript};

const CHAPTER: &str = "04-fifos.md";

/// A program that hangs on a FIFO hangs for good: no need to wait long.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to look at a server that may be exiting right now, to tell
/// "it ended" from "it is still there".
const EXIT_SETTLE: Duration = Duration::from_millis(500);

const TASK_1: &str = "Task 1: make a FIFO";
const TASK_2: &str = "Task 2: open a FIFO";
const TASK_3: &str = "Task 3: tee into a FIFO";
const TASK_4: &str = "Task 4: the client";
const TASK_5: &str = "Task 5: the server";

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

/// A sandbox holding a FIFO made by the shell's `mkfifo -m MODE NAME`, and
/// the FIFO's path.
fn sandbox_with_fifo(name: &str, mode: &str) -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path(name);
    let made = Cmd::new("mkfifo", sandbox)
        .args(["-m", mode])
        .arg(&fifo)
        .keeps(&fifo)
        .run();
    made.expect_success();
    (made.sandbox, fifo)
}

/// `sh -c SCRIPT ARGS…` in a sandbox of its own: the script is fixed text,
/// paths come in as `$0`, `$1` …. Paths inside `elsewhere` (the sandbox of
/// the program it talks to) show as `[SANDBOX]`.
fn shell<I, S>(script: &str, args: I, elsewhere: &Path) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    Cmd::new("sh", Sandbox::new())
        .arg("-c")
        .arg(script)
        .args(args)
        .alias(elsewhere, "[SANDBOX]")
        .timeout(HANG_TIMEOUT)
        .chapter(CHAPTER)
}

/// Waits until `program` sleeps in `open()`, waiting for the other end of a
/// FIFO; fails the test with `why` otherwise.
fn expect_blocked_in_open(program: &mut Running, side: &str, why: &str) {
    match program.wait_until_blocked(HANG_TIMEOUT) {
        Blocked::In(call) if call == "openat" || call == "open" => {}
        Blocked::In(call) => program.fail(
            format!("did not wait in open() for the {side}: it was waiting in {call}() instead"),
            why,
        ),
        Blocked::Exited(_) => {
            program.fail(format!("ended before any {side} had opened the FIFO"), why)
        }
        Blocked::Busy => program.fail(format!("never waited for a {side}"), why),
    }
}

// ---- TODO 1: make a FIFO -----------------------------------------------------

#[test]
fn make_creates_a_fifo_only_its_owner_may_use() {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("hello");
    let run = lab()
        .cmd_in(sandbox, ["make"])
        .arg(&fifo)
        .keeps(&fifo)
        .section(TASK_1)
        .run();
    run.expect_success();
    // Ask the shell's own tool what is on disk now.
    let stat = Cmd::new("stat", Sandbox::new())
        .args(["-c", "%A %F"])
        .arg(&fifo)
        .run();
    if stat.stdout != "prw------- fifo\n" {
        run.fail(
            format!(
                "left `{}` on disk (stat -c '%A %F'), not a FIFO with mode prw-------",
                stat.stdout.trim()
            ),
            "mkfifo(path, 0o600) makes a file of type p (a FIFO), readable and writable by \
             its owner only; File::create makes a regular file",
        );
    }
    assert_transcript!(run);
}

#[test]
fn make_refuses_a_path_that_exists() {
    let sandbox = Sandbox::new();
    let taken = sandbox.write_file("taken", "a regular file\n");
    let run = lab()
        .cmd_in(sandbox, ["make"])
        .arg(&taken)
        .section(TASK_1)
        .run();
    if std::fs::read_to_string(&taken).ok().as_deref() != Some("a regular file\n") {
        run.fail(
            "replaced a file that was already there",
            "mkfifo never replaces anything: it fails with EEXIST. Report that error; \
             do not remove the file to make room",
        );
    }
    run.expect_code(1);
    assert_transcript!(run);
}

// ---- TODO 2: open a FIFO -----------------------------------------------------

#[test]
fn read_waits_for_a_writer_then_prints_what_the_shell_wrote() {
    let (sandbox, fifo) = sandbox_with_fifo("hello", "600");
    let dir = sandbox.dir().to_path_buf();
    let mut reader = lab()
        .cmd_in(sandbox, ["read"])
        .arg(&fifo)
        .section(TASK_2)
        .why_if_timeout("the reader never saw end-of-file after the shell's echo closed the FIFO")
        .start();
    expect_blocked_in_open(
        &mut reader,
        "writer",
        "without O_NONBLOCK, open(O_RDONLY) on a FIFO blocks until a process opens it for \
         writing. With O_NONBLOCK it returns at once, and the read that follows finds no \
         writer and returns end-of-file: nothing is read",
    );
    // The chapter's other terminal: `echo hello world > hello`.
    shell(r#"echo hello world > "$0""#, [&fifo], &dir)
        .run()
        .expect_success();
    let run = reader.wait(HANG_TIMEOUT);
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn write_waits_for_a_reader_then_feeds_the_shell() {
    let (sandbox, fifo) = sandbox_with_fifo("hello", "600");
    let dir = sandbox.dir().to_path_buf();
    let mut writer = lab()
        .cmd_in(sandbox, ["write"])
        .arg(&fifo)
        .stdin("hello world\n")
        .section(TASK_2)
        .start();
    expect_blocked_in_open(
        &mut writer,
        "reader",
        "without O_NONBLOCK, open(O_WRONLY) on a FIFO blocks until a process opens it for \
         reading. With O_NONBLOCK it fails at once with ENXIO",
    );
    // The chapter's other terminal: `cat < hello`.
    let reader = shell(r#"cat < "$0""#, [&fifo], &dir).run();
    reader.expect_success().expect_stdout(
        "hello world\n",
        "everything written into the FIFO comes out of it, in order",
    );
    let run = writer.wait(HANG_TIMEOUT);
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn a_nonblocking_open_for_reading_returns_at_once() {
    let (sandbox, fifo) = sandbox_with_fifo("lonely", "600");
    let run = lab()
        .cmd_in(sandbox, ["probe", "--nonblock-read"])
        .arg(&fifo)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "open() waited for a writer although OpenMode::NonBlocking asked it not to: \
             add O_NONBLOCK to the flags",
        )
        .section(TASK_2)
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn a_nonblocking_open_for_writing_fails_with_enxio_without_a_reader() {
    let (sandbox, fifo) = sandbox_with_fifo("lonely", "600");
    let run = lab()
        .cmd_in(sandbox, ["probe", "--nonblock-write"])
        .arg(&fifo)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "open() waited for a reader although OpenMode::NonBlocking asked it not to: \
             with O_NONBLOCK, open(O_WRONLY) fails at once with ENXIO",
        )
        .section(TASK_2)
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn a_nonblocking_open_for_writing_succeeds_while_a_reader_waits() {
    let (sandbox, fifo) = sandbox_with_fifo("hello", "600");
    let dir = sandbox.dir().to_path_buf();
    // `cat` waits in open() for a writer; meanwhile it counts as a reader.
    let mut reader = Cmd::new("cat", Sandbox::new())
        .arg(&fifo)
        .alias(&dir, "[SANDBOX]")
        .start();
    assert_eq!(
        reader.wait_until_blocked(HANG_TIMEOUT),
        Blocked::In("openat".into()),
        "the fixture `cat` should wait in open()"
    );
    let run = lab()
        .cmd_in(sandbox, ["probe", "--nonblock-write"])
        .arg(&fifo)
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    run.expect_success();
    // The probe's open completed cat's; its close was cat's end-of-file.
    reader.wait(HANG_TIMEOUT).expect_success();
    assert_transcript!(run);
}

#[test]
fn read_reports_a_missing_fifo() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("missing");
    let run = lab()
        .cmd_in(sandbox, ["read"])
        .arg(&missing)
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    run.expect_code(1);
    assert_transcript!(run);
}

#[test]
fn write_refuses_a_regular_file_and_leaves_it_alone() {
    let sandbox = Sandbox::new();
    let notes = sandbox.write_file("notes.txt", "my notes\n");
    let run = lab()
        .cmd_in(sandbox, ["write"])
        .arg(&notes)
        .stdin("overwritten!\n")
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    if std::fs::read_to_string(&notes).ok().as_deref() != Some("my notes\n") {
        run.fail(
            "wrote into a regular file it was given instead of a FIFO",
            "stat the path first and refuse anything that is not a FIFO \
             (FileTypeExt::is_fifo, or S_IFIFO): `PATH is not a FIFO`",
        );
    }
    run.expect_code(1);
    assert_transcript!(run);
}

#[test]
fn read_reports_permission_denied_at_once() {
    // Mode 0000: nobody may open it. `obey_file_permissions` makes that hold
    // for root too (root otherwise bypasses permission checks).
    let (sandbox, fifo) = sandbox_with_fifo("locked", "000");
    let run = lab()
        .cmd_in(sandbox, ["read"])
        .arg(&fifo)
        .obey_file_permissions()
        .timeout(HANG_TIMEOUT)
        .why_if_timeout("open() fails with EACCES before it waits for a writer: report that error")
        .section(TASK_2)
        .run();
    run.expect_code(1);
    assert_transcript!(run);
}

// ---- TODO 3: tee into a FIFO ---------------------------------------------------

#[test]
fn tee_feeds_two_consumers_without_a_temporary_file() {
    // The chapter's pipeline: mkfifo fifo1; prog3 < fifo1 &; prog1 | tee fifo1 | prog2.
    // 100000 lines are about 576 KiB: far more than a FIFO or a pipe holds,
    // so both consumers must read while tee writes.
    let lab = lab();
    let sandbox = Sandbox::new();
    let (fifo, count) = (sandbox.path("fifo1"), sandbox.path("count"));
    let run = lab
        .script_in(
            sandbox,
            r#"mkfifo "$1"
wc -l < "$1" > "$2" &
seq 1 100000 | "$0" tee "$1" | tail -n 1
echo "tee: exit status $?"
# If tee never opened the FIFO, open it here, or wc waits for ever.
exec 3<> "$1"; exec 3<&-
wait
echo "the FIFO's reader counted $(cat "$2") lines"
rm "$1""#,
        )
        .arg(&fifo)
        .arg(&count)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "a consumer never saw end-of-file, or tee blocked: open the FIFO in blocking mode, \
             write each chunk to both outputs as it comes, and close the FIFO at the end",
        )
        .chapter(CHAPTER)
        .section(TASK_3)
        .run();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn tee_reports_epipe_when_the_fifo_reader_leaves() {
    // `head` reads 10 bytes and leaves. tee's next write into the FIFO gets
    // EPIPE (Rust ignores SIGPIPE); then `seq`, a C program that keeps the
    // default action, is killed by SIGPIPE when it writes into the pipe to
    // the tee that has gone: status 141 = 128 + 13.
    let lab = lab();
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("fifo1");
    let run = lab
        .script_in(
            sandbox,
            r#"mkfifo "$1"
head -c 10 < "$1" > /dev/null &
{ seq 1 1000000; echo "seq: exit status $?" >&2; } | "$0" tee "$1" > /dev/null
echo "tee: exit status $?" >&2
# If tee never opened the FIFO, open it here, or head waits for ever.
exec 3<> "$1"; exec 3<&-
wait
rm "$1""#,
        )
        .arg(&fifo)
        .timeout(HANG_TIMEOUT)
        .section(TASK_3)
        .run();
    run.expect_success();
    if !run.stderr.contains("tee: exit status 1\n") {
        run.fail(
            "tee did not fail with status 1 when the FIFO's reader left",
            "a write to a FIFO nobody reads fails with EPIPE (io::ErrorKind::BrokenPipe): \
             stop and return the error, with the context `write to PATH`",
        );
    }
    assert_transcript!(run);
}

// ---- TODO 4: the client --------------------------------------------------------

/// A one-request server written in shell. It holds both ends of its FIFO
/// (`<>`, which never blocks on Linux), says `ready`, reads one request,
/// describes it, answers `$2` and removes its FIFO.
const SHELL_SERVER: &str = r#"mkfifo -m 600 "$1"
exec 3<> "$1"
echo ready
read -r count reply <&3
echo "request: count $count"
case $reply in /*) echo "the reply path is absolute" ;; esac
[ -p "$reply" ] && echo "the reply path is a FIFO"
echo "$2" > "$reply"
exec 3<&-
rm "$1""#;

/// Starts [`SHELL_SERVER`] answering `answer`; returns it once it is ready,
/// with its FIFO's path.
fn start_shell_server(answer: &str) -> (Running, PathBuf) {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("seq.fifo");
    let mut server = Cmd::new("sh", sandbox)
        .args(["-c", SHELL_SERVER, "shell-server"])
        .arg(&fifo)
        .arg(answer)
        .chapter(CHAPTER)
        .section(TASK_4)
        .start();
    server.wait_for_stdout("ready", HANG_TIMEOUT);
    (server, fifo)
}

/// The lab's client asking the server on `fifo` (in `server`'s sandbox).
fn lab_client(fifo: &Path, server: &Running, count: &str) -> Cmd {
    lab()
        .cmd(["client"])
        .arg(fifo)
        .arg(count)
        .alias(server.sandbox().dir(), "[SANDBOX]")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "the client waited for ever: open the server's FIFO with O_NONBLOCK, send the \
             whole request with one write, then open your reply FIFO for reading",
        )
        .section(TASK_4)
}

#[test]
fn client_sends_one_request_line_and_prints_its_numbers() {
    let (server, fifo) = start_shell_server("41");
    let run = lab_client(&fifo, &server, "5").run();
    let server = server.wait(HANG_TIMEOUT);
    server.expect_success().expect_stdout(
        "ready\nrequest: count 5\nthe reply path is absolute\nthe reply path is a FIFO\n",
        "the request is one line, `COUNT REPLY`, naming the reply FIFO by its absolute \
         path; make the reply FIFO before you send the request",
    );
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn client_reports_when_no_server_is_listening() {
    // The well-known FIFO exists, but no server has it open.
    let (sandbox, fifo) = sandbox_with_fifo("seq.fifo", "600");
    let run = lab()
        .cmd_in(sandbox, ["client"])
        .arg(&fifo)
        .arg("5")
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "with no server, a blocking open(O_WRONLY) of its FIFO waits for ever: open it \
             with O_NONBLOCK, and report ENXIO as `no server is listening on PATH`",
        )
        .section(TASK_4)
        .run();
    run.expect_code(1);
    assert_transcript!(run);
}

#[test]
fn client_removes_its_fifo_even_after_a_bad_reply() {
    let (server, fifo) = start_shell_server("hello");
    // The grader fails this run if the reply FIFO is left in the client's
    // sandbox ($TMPDIR).
    let run = lab_client(&fifo, &server, "5").run();
    server.wait(HANG_TIMEOUT).expect_success();
    run.expect_code(1);
    assert_transcript!(run);
}

// ---- TODO 5: the server --------------------------------------------------------

/// How a server that exits early probably went wrong.
const SERVER_GONE: &str = "a bad request or a client that vanished must be reported on stderr \
                           and skipped (ENOENT, not a FIFO, EPIPE …); only an error on the \
                           well-known FIFO itself may end the server";

/// Fails the test if `server` has ended: a server runs until it is stopped.
fn expect_server_running(server: &mut Running, when: &str) {
    if let Blocked::Exited(status) = server.wait_until_blocked(EXIT_SETTLE) {
        server.fail(
            format!("ended ({status}) {when}"),
            format!(
                "if it ended when a client left, read() returned 0 (end-of-file) because no \
                 writer was left: keep a dummy writer open. Otherwise, {SERVER_GONE}"
            ),
        );
    }
}

/// A client written in shell: makes `$TMPDIR/shell-client`, sends
/// `COUNT REPLY` to the server's FIFO `$0`, reads the first number back.
const SHELL_CLIENT: &str = r#"reply="$TMPDIR/shell-client"
mkfifo -m 600 "$reply"
echo "$1 $reply" > "$0"
read -r first < "$reply"
rm "$reply"
echo "numbers $first to $((first + $1 - 1))""#;

/// Starts the lab's server on a FIFO in a fresh sandbox; returns it once it
/// says it is listening, with the FIFO's path.
fn start_server(extra: &[&str]) -> (Running, PathBuf) {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path("seq.fifo");
    let mut server = lab()
        .cmd_in(sandbox, ["serve"])
        .arg(&fifo)
        .args(extra)
        .section(TASK_5)
        .start();
    // Once listening, the server sleeps waiting for requests; asleep in
    // open() before it said so, it waits for a client that never comes.
    if let Blocked::In(call) = server.wait_until_blocked(HANG_TIMEOUT)
        && (call == "openat" || call == "open")
        && !server.stdout().contains("server: listening on")
    {
        server.fail(
            "never printed `server: listening on FIFO`",
            "print it (and flush) once the FIFO is made and both ends are open. Open the \
             read end with O_NONBLOCK: a blocking open() would wait for the first client",
        );
    }
    server.wait_for_stdout("server: listening on", HANG_TIMEOUT);
    (server, fifo)
}

/// Runs [`SHELL_CLIENT`] for `count` numbers and returns what it printed.
fn shell_client(server: &mut Running, fifo: &Path, count: u32) -> String {
    let run = shell(
        SHELL_CLIENT,
        [fifo.as_os_str(), count.to_string().as_ref()],
        server.sandbox().dir(),
    )
    .section(TASK_5)
    .why_if_timeout(
        "the server never answered: for each request line, open the client's FIFO for \
             writing, write `FIRST\\n`, close it",
    )
    .run_unchecked();
    if run.timed_out || run.code() != Some(0) {
        expect_server_running(server, "before it answered a client");
        let mut failure = run.failure("a shell client got no answer from the server");
        failure
            .details
            .push(format!("server stdout: {:?}", server.stdout()));
        failure
            .details
            .push(format!("server stderr: {:?}", server.stderr()));
        failure.why = Some(format!(
            "the server must answer each request line `COUNT REPLY` by writing `FIRST\\n` \
             into the FIFO REPLY; {SERVER_GONE}"
        ));
        failure.raise();
    }
    run.stdout
}

/// Stops the server with `signal` and checks that it removed its FIFO and
/// died of the signal.
fn stop_server(mut server: Running, signal: i32, name: &str) -> Run {
    expect_server_running(&mut server, &format!("before it was sent {name}"));
    server.signal(signal);
    let run = server.wait_unchecked(HANG_TIMEOUT);
    if run.leaks.iter().any(|leak| leak.kind == LeakKind::Fifo) {
        run.fail(
            format!("left its FIFO on disk after {name}"),
            "install a handler for SIGINT and SIGTERM, before mkfifo, that unlinks the FIFO \
             and raises the signal again: a FIFO left behind makes the next server's mkfifo \
             fail with EEXIST",
        );
    }
    run.check_finished_cleanly();
    if run.signal() != Some(signal) {
        run.fail(
            format!("did not die of {name}"),
            "after removing the FIFO, the handler raises the signal again; with \
             SA_RESETHAND the default action is back, and it ends the server",
        );
    }
    run
}

#[test]
fn server_answers_clients_written_in_shell() {
    let (mut server, fifo) = start_server(&[]);
    let first = shell_client(&mut server, &fifo, 3);
    let second = shell_client(&mut server, &fifo, 4);
    if (first.as_str(), second.as_str()) != ("numbers 1 to 3\n", "numbers 4 to 7\n") {
        server.fail(
            format!("gave out the wrong numbers: {first:?}, then {second:?}"),
            "the first client's FIRST is 1; each client moves it on by its COUNT",
        );
    }
    let run = stop_server(server, libc::SIGTERM, "SIGTERM");
    assert_transcript!(run);
}

#[test]
fn server_gives_clients_running_at_once_disjoint_ranges() {
    let (mut server, fifo) = start_server(&[]);
    let counts = [3u64, 1, 4, 1, 5, 9, 2, 6];
    let clients: Vec<Running> = counts
        .iter()
        .map(|count| {
            shell(
                SHELL_CLIENT,
                [fifo.as_os_str(), count.to_string().as_ref()],
                server.sandbox().dir(),
            )
            .section(TASK_5)
            .start()
        })
        .collect();
    let mut ranges = Vec::new();
    for (client, count) in clients.into_iter().zip(counts) {
        let run = client.wait_unchecked(HANG_TIMEOUT);
        let range = run.stdout.split_whitespace().collect::<Vec<_>>();
        match range.as_slice() {
            ["numbers", first, "to", last] if run.code() == Some(0) => {
                let (first, last): (u64, u64) =
                    (first.parse().unwrap_or(0), last.parse().unwrap_or(0));
                ranges.push((first, last, count));
            }
            _ => {
                expect_server_running(&mut server, "while clients were running at once");
                let mut failure = server.failure(format!(
                    "did not answer one of {} clients running at once",
                    counts.len()
                ));
                failure.details.push(format!(
                    "that client printed {:?} on stdout and {:?} on stderr, and {}",
                    run.stdout,
                    run.stderr,
                    if run.timed_out { "timed out" } else { "ended" }
                ));
                failure.why = Some(format!(
                    "requests arrive on the FIFO in any order, each line whole; {SERVER_GONE}"
                ));
                failure.raise();
            }
        }
    }
    ranges.sort();
    let mut expected_first = 1;
    for &(first, last, count) in &ranges {
        if first != expected_first || last.checked_sub(first).map(|gap| gap + 1) != Some(count) {
            server.fail(
                format!("gave out overlapping or missing numbers: {ranges:?} (first, last, count)"),
                "each client's numbers start where the previous client's ended: they must \
                 cover 1, 2, 3 … with no gap and no number given twice",
            );
        }
        expected_first = last + 1;
    }
    let run = stop_server(server, libc::SIGTERM, "SIGTERM");
    assert_transcript!(run);
}

#[test]
fn server_keeps_serving_after_every_client_has_left() {
    let (mut server, fifo) = start_server(&[]);
    let first = shell_client(&mut server, &fifo, 2);
    // The client has closed its end: no writer is left but the server's own.
    match server.wait_until_blocked(HANG_TIMEOUT) {
        Blocked::In(_) => {}
        Blocked::Exited(_) => server.fail(
            "ended when its only client left",
            "with no writer left, read() returns 0 (end-of-file). Keep a dummy writer: \
             open the FIFO for writing yourself, and keep that descriptor open",
        ),
        Blocked::Busy => server.fail(
            "never went back to sleep after its client left: it spins",
            "with no writer left, read() returns 0 (end-of-file) at once, again and again. \
             Keep a dummy writer: open the FIFO for writing yourself, and keep it open",
        ),
    }
    let second = shell_client(&mut server, &fifo, 3);
    if (first.as_str(), second.as_str()) != ("numbers 1 to 2\n", "numbers 3 to 5\n") {
        server.fail(
            format!("gave out the wrong numbers: {first:?}, then {second:?}"),
            "the next free number carries on from one client to the next",
        );
    }
    let run = stop_server(server, libc::SIGTERM, "SIGTERM");
    assert_transcript!(run);
}

#[test]
fn server_removes_its_fifo_on_sigint() {
    let (mut server, fifo) = start_server(&[]);
    shell_client(&mut server, &fifo, 1);
    let run = stop_server(server, libc::SIGINT, "SIGINT (Ctrl-C)");
    assert_transcript!(run);
}

#[test]
fn server_removes_its_fifo_when_it_stops_by_itself() {
    let (mut server, fifo) = start_server(&["--stop-after", "2"]);
    shell_client(&mut server, &fifo, 1);
    shell_client(&mut server, &fifo, 1);
    let run = server.wait_unchecked(HANG_TIMEOUT);
    if run.leaks.iter().any(|leak| leak.kind == LeakKind::Fifo) {
        run.fail(
            "left its FIFO on disk when it stopped",
            "remove the FIFO on every way out of serve(): a guard whose Drop calls \
             fs::remove_file does it",
        );
    }
    run.check_finished_cleanly();
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn server_survives_bad_requests() {
    let (mut server, fifo) = start_server(&[]);
    let notes = server.sandbox().write_file("notes.txt", "my notes\n");
    // Four requests the server cannot answer, then a good one.
    let run = shell(
        r#"dir=$(dirname "$0")
echo "hello" > "$0"
echo "2 relative/path" > "$0"
echo "2 $dir/missing" > "$0"
echo "2 $1" > "$0"
reply="$TMPDIR/shell-client"
mkfifo -m 600 "$reply"
echo "1 $reply" > "$0"
read -r first < "$reply"
rm "$reply"
echo "the next client got $first""#,
        [fifo.as_os_str(), notes.as_os_str()],
        server.sandbox().dir(),
    )
    .section(TASK_5)
    .run_unchecked();
    if run.timed_out || run.code() != Some(0) {
        if let Blocked::Exited(status) = server.wait_until_blocked(EXIT_SETTLE) {
            server.fail(format!("ended ({status}) after bad requests"), SERVER_GONE);
        }
        server.fail("stopped answering after bad requests", SERVER_GONE);
    }
    if std::fs::read_to_string(&notes).ok().as_deref() != Some("my notes\n") {
        server.fail(
            "wrote its answer into a regular file named in a request",
            "open the reply path with open_fifo, which refuses anything that is not a FIFO",
        );
    }
    let stopped = stop_server(server, libc::SIGTERM, "SIGTERM");
    let complaints = stopped
        .stderr
        .lines()
        .filter(|line| line.starts_with("server: "))
        .count();
    if complaints != 4 {
        stopped.fail(
            format!("reported {complaints} problems on stderr; 4 requests could not be answered"),
            "report each request it cannot answer on standard error, one line `server: …` each",
        );
    }
    assert_transcript!(run);
}

#[test]
fn server_survives_a_client_that_leaves_before_its_answer() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let (mut server, fifo) = start_server(&[]);
    // The test plays the client that vanishes. Its reply FIFO is full, so
    // the server's write waits; then the client closes it, and the waiting
    // write fails with EPIPE (SIGPIPE, unless it is ignored).
    let (_client_side, reply) = sandbox_with_fifo("vanishing", "600");
    let mut held = std::fs::OpenOptions::new()
        .read(true)
        .write(true) // O_RDWR: on Linux, never waits for a partner
        .custom_flags(libc::O_NONBLOCK)
        .open(&reply)
        .expect("open the reply FIFO");
    let junk = [b'x'; 4096];
    while held.write(&junk).is_ok() {}
    let request = format!("3 {}\n", reply.display());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut requests| requests.write_all(request.as_bytes()))
        .expect("send a request");
    let deadline = std::time::Instant::now() + HANG_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match server.wait_until_blocked(left) {
            Blocked::In(call) if call == "write" => break,
            Blocked::In(_) if !left.is_zero() => std::thread::sleep(Duration::from_millis(1)),
            // Not waiting in write(): a design that never writes to a full
            // FIFO. Go on; the server must survive the client leaving anyway.
            Blocked::In(_) | Blocked::Busy => break,
            Blocked::Exited(status) => server.fail(
                format!("ended ({status}) while answering a client"),
                SERVER_GONE,
            ),
        }
    }
    drop(held);
    match server.wait_until_blocked(HANG_TIMEOUT) {
        Blocked::Exited(status) if status.to_string().contains("SIGPIPE") => server.fail(
            "was killed by SIGPIPE when a client left before its answer",
            "a write to a FIFO with no reader raises SIGPIPE, whose default action ends the \
             process: ignore it (signal(SIGPIPE, SigIgn)), then the write fails with EPIPE",
        ),
        Blocked::Exited(status) => server.fail(
            format!("ended ({status}) when a client left before its answer"),
            format!("the write fails with EPIPE: {SERVER_GONE}"),
        ),
        Blocked::In(_) | Blocked::Busy => {}
    }
    let next = shell_client(&mut server, &fifo, 1);
    if next != "numbers 4 to 4\n" {
        server.fail(
            format!("gave the next client {next:?}, expected numbers 4 to 4"),
            "the vanished client's numbers (1 to 3) were handed out when its FIFO opened: \
             they are not handed out again",
        );
    }
    // What the server says about it depends on its wording, so only its
    // presence is checked.
    let stopped = stop_server(server, libc::SIGTERM, "SIGTERM");
    let reported = stopped.stderr.starts_with("server: ")
        && (stopped.stderr.contains("EPIPE") || stopped.stderr.contains("Broken pipe"));
    if !reported {
        stopped.fail(
            "did not report the client that left (EPIPE) on stderr",
            "report a failed answer on standard error, `server: …`, and go on",
        );
    }
}

#[test]
fn server_refuses_a_path_that_exists_and_leaves_it_alone() {
    let sandbox = Sandbox::new();
    let taken = sandbox.write_file("seq.fifo", "not yours\n");
    let run = lab()
        .cmd_in(sandbox, ["serve"])
        .arg(&taken)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout("mkfifo fails with EEXIST: report it and exit")
        .section(TASK_5)
        .run();
    if std::fs::read_to_string(&taken).ok().as_deref() != Some("not yours\n") {
        run.fail(
            "removed or changed a file it had not made",
            "remove the FIFO only once mkfifo has made it: arm the guard after mkfifo succeeds",
        );
    }
    run.expect_code(1);
    assert_transcript!(run);
}
