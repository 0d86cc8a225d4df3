//! Grading suite of lab 04 (FIFOs).
//!
//! Compiled into both the lab (`labs/04-fifos`) and the reference solution;
//! every test runs the program as a black box through the grader. The other
//! side of each FIFO is a real shell tool (`mkfifo`, `echo … >`, `cat <`,
//! `head`, a client or a server written in `sh`) or the test itself, never
//! the lab, so each task is graded on its own. The grader also fails a test
//! when a FIFO the program made is left on disk. Names, words and counts
//! vary from run to run, and a failing test prints the seed that repeats
//! them.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use grader::{Blocked, Cmd, Lab, LeakKind, Run, Running, Sandbox, Varied};

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

/// A name for a file in a sandbox: `WORD.EXTENSION`.
fn file_name(vary: &mut Varied, extension: &str) -> String {
    format!("{}.{extension}", vary.word(6))
}

/// A few random words on one line, with its newline.
fn random_text(vary: &mut Varied) -> String {
    let words: Vec<String> = (0..vary.between(1, 5))
        .map(|_| {
            let len = vary.between(1, 8) as usize;
            vary.word(len)
        })
        .collect();
    format!("{}\n", words.join(" "))
}

/// Opens the FIFO at `path` for reading without waiting (the test's own
/// reader, which lets non-blocking opens for writing succeed).
fn test_reader(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("open the FIFO for reading")
}

/// Everything waiting in the FIFO the test holds open for reading.
fn drain(reader: &mut File) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = reader.read(&mut chunk) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    bytes
}

/// `sh -c SCRIPT ARGS…` in a sandbox of its own: the script is fixed text,
/// paths and words come in as `$0`, `$1` …. Paths inside `elsewhere` (the
/// sandbox of the program it talks to) show as `[SANDBOX]`.
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
    let mut vary = Varied::new();
    let name = vary.word(7);
    let sandbox = Sandbox::new();
    let fifo = sandbox.path(&name);
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
    run.expect_lines(
        &format!("made FIFO [SANDBOX]/{name}\nprw------- [SANDBOX]/{name}\n"),
        "make the FIFO at the path you were given",
    );
}

#[test]
fn make_refuses_a_path_that_exists() {
    let mut vary = Varied::new();
    let contents = random_text(&mut vary);
    let sandbox = Sandbox::new();
    let taken = sandbox.write_file(&file_name(&mut vary, "txt"), &contents);
    let run = lab()
        .cmd_in(sandbox, ["make"])
        .arg(&taken)
        .section(TASK_1)
        .run();
    if std::fs::read_to_string(&taken).ok().as_deref() != Some(contents.as_str()) {
        run.fail(
            "replaced a file that was already there",
            "mkfifo never replaces anything: it fails with EEXIST. Report that error; \
             do not remove the file to make room",
        );
    }
    run.expect_one_line_error(
        "fifos",
        "EEXIST",
        "mkfifo fails with EEXIST when the path exists: return that error with the \
         context `mkfifo PATH`",
    );
}

// ---- TODO 2: open a FIFO -----------------------------------------------------

#[test]
fn read_waits_for_a_writer_then_prints_what_the_shell_wrote() {
    let mut vary = Varied::new();
    let text = random_text(&mut vary);
    let (sandbox, fifo) = sandbox_with_fifo(&vary.word(5), "600");
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
    shell(
        r#"printf %s "$1" > "$0""#,
        [fifo.as_os_str(), text.as_ref()],
        &dir,
    )
    .run()
    .expect_success();
    let run = reader.wait(HANG_TIMEOUT);
    run.expect_success();
    run.expect_lines(&text, "copy everything that comes through the FIFO");
}

#[test]
fn write_waits_for_a_reader_then_feeds_the_shell() {
    let mut vary = Varied::new();
    let text = random_text(&mut vary);
    let (sandbox, fifo) = sandbox_with_fifo(&vary.word(5), "600");
    let dir = sandbox.dir().to_path_buf();
    let mut writer = lab()
        .cmd_in(sandbox, ["write"])
        .arg(&fifo)
        .stdin(text.clone())
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
        &text,
        "everything written into the FIFO comes out of it, in order",
    );
    writer.wait(HANG_TIMEOUT).expect_success();
}

/// Runs `probe ARGS PATH` and checks its output.
fn expect_probe(sandbox: Sandbox, fifo: &Path, side: &str, expected: &str, why: &str) -> Run {
    let run = lab()
        .cmd_in(sandbox, ["probe", side])
        .arg(fifo)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "open() waited for the other end although OpenMode::NonBlocking asked it not \
             to: add O_NONBLOCK to the flags",
        )
        .section(TASK_2)
        .run();
    run.expect_success();
    run.expect_lines(expected, why);
    run
}

#[test]
fn a_nonblocking_open_for_reading_returns_at_once() {
    let mut vary = Varied::new();
    let (mut sandbox, fifo) = sandbox_with_fifo(&vary.word(5), "600");
    const OPENED: &str = "open(O_RDONLY | O_NONBLOCK): returned at once\n";
    // No writer: end-of-file.
    sandbox = expect_probe(
        sandbox,
        &fifo,
        "--nonblock-read",
        &format!("{OPENED}read: 0 bytes, end-of-file: no process has the FIFO open for writing\n"),
        "with O_NONBLOCK, open(O_RDONLY) returns at once, and a read with no writer \
         returns 0",
    )
    .sandbox;
    // A writer (the test) that has written nothing yet: EAGAIN.
    let mut held = OpenOptions::new()
        .read(true)
        .write(true) // O_RDWR: on Linux, never waits for a partner
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO");
    sandbox = expect_probe(
        sandbox,
        &fifo,
        "--nonblock-read",
        &format!("{OPENED}read: EAGAIN: a writer has the FIFO open, but it is empty\n"),
        "a read on an O_NONBLOCK descriptor fails with EAGAIN while a writer holds the \
         FIFO open and nothing is in it",
    )
    .sandbox;
    // The same writer, with some bytes in the FIFO.
    let bytes = vary.between(1, 4096) as usize;
    held.write_all(&vec![b'x'; bytes]).expect("fill the FIFO");
    expect_probe(
        sandbox,
        &fifo,
        "--nonblock-read",
        &format!("{OPENED}read: {bytes} bytes\n"),
        "open the FIFO the probe was given: the test wrote into it",
    );
}

#[test]
fn a_nonblocking_open_for_writing_fails_with_enxio_without_a_reader() {
    let mut vary = Varied::new();
    let (sandbox, fifo) = sandbox_with_fifo(&vary.word(5), "600");
    let sandbox = expect_probe(
        sandbox,
        &fifo,
        "--nonblock-write",
        "open(O_WRONLY | O_NONBLOCK): ENXIO: no process has the FIFO open for reading\n",
        "with O_NONBLOCK, open(O_WRONLY) fails at once with ENXIO when no process has \
         the FIFO open for reading",
    )
    .sandbox;
    // With a reader (the test), the same open succeeds.
    let _reader = test_reader(&fifo);
    expect_probe(
        sandbox,
        &fifo,
        "--nonblock-write",
        "open(O_WRONLY | O_NONBLOCK): returned at once: a reader has the FIFO open\n",
        "with a reader there, open(O_WRONLY | O_NONBLOCK) succeeds: really open the FIFO",
    );
}

#[test]
fn a_nonblocking_open_for_writing_succeeds_while_a_reader_waits() {
    let mut vary = Varied::new();
    let (sandbox, fifo) = sandbox_with_fifo(&vary.word(5), "600");
    let dir = sandbox.dir().to_path_buf();
    // `cat` waits in open() for a writer; meanwhile it counts as a reader.
    let mut reader = Cmd::new("cat", Sandbox::new())
        .arg(&fifo)
        .alias(&dir, "[SANDBOX]")
        .chapter(CHAPTER)
        .section(TASK_2)
        .why_if_timeout(
            "cat, waiting in open() for a writer, never got one: the probe must really \
             open the FIFO for writing (O_WRONLY | O_NONBLOCK); that open completes cat's",
        )
        .start();
    assert_eq!(
        reader.wait_until_blocked(HANG_TIMEOUT),
        Blocked::In("openat".into()),
        "the fixture `cat` should wait in open()"
    );
    expect_probe(
        sandbox,
        &fifo,
        "--nonblock-write",
        "open(O_WRONLY | O_NONBLOCK): returned at once: a reader has the FIFO open\n",
        "a process blocked in open(O_RDONLY) counts as a reader already",
    );
    // The probe's open completed cat's; its close was cat's end-of-file.
    reader.wait(HANG_TIMEOUT).expect_success();
}

#[test]
fn read_reports_a_missing_fifo() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let missing = sandbox.path(&vary.word(7));
    let run = lab()
        .cmd_in(sandbox, ["read"])
        .arg(&missing)
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    run.expect_one_line_error(
        "fifos",
        "ENOENT",
        "report the failed open on one line, with the context `cannot open PATH`",
    );
}

#[test]
fn write_refuses_a_regular_file_and_leaves_it_alone() {
    let mut vary = Varied::new();
    let contents = random_text(&mut vary);
    let sandbox = Sandbox::new();
    let notes = sandbox.write_file(&file_name(&mut vary, "txt"), &contents);
    let run = lab()
        .cmd_in(sandbox, ["write"])
        .arg(&notes)
        .stdin(random_text(&mut vary))
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    if std::fs::read_to_string(&notes).ok().as_deref() != Some(contents.as_str()) {
        run.fail(
            "wrote into a regular file it was given instead of a FIFO",
            "check the descriptor you opened: fstat it and refuse anything that is not a \
             FIFO (S_IFIFO), before a single byte is written: `PATH is not a FIFO`",
        );
    }
    run.expect_one_line_error(
        "fifos",
        "is not a FIFO",
        "refuse anything that is not a FIFO, with one line `PATH is not a FIFO`",
    );
}

#[test]
fn write_refuses_a_symbolic_link_even_to_a_fifo() {
    let mut vary = Varied::new();
    let (sandbox, fifo) = sandbox_with_fifo(&vary.word(5), "600");
    let link = sandbox.path(&vary.word(6));
    std::os::unix::fs::symlink(&fifo, &link).expect("make the symbolic link");
    // The test reads the FIFO: a program that follows the link opens it at
    // once and writes.
    let mut reader = test_reader(&fifo);
    let run = lab()
        .cmd_in(sandbox, ["write"])
        .arg(&link)
        .stdin(random_text(&mut vary))
        .timeout(HANG_TIMEOUT)
        .section(TASK_2)
        .run();
    if !drain(&mut reader).is_empty() {
        run.fail(
            "wrote through a symbolic link",
            "open with O_NOFOLLOW, which fails with ELOOP on a symbolic link: a stat of the \
             path before the open checks one file and opens another if the link is swapped \
             in between",
        );
    }
    run.expect_one_line_error(
        "fifos",
        "ELOOP",
        "open with O_NOFOLLOW, and return its ELOOP with the context `cannot open PATH`: \
         checking the path with lstat before the open leaves a moment in which the file \
         can be swapped",
    );
}

#[test]
fn read_reports_permission_denied_at_once() {
    // Mode 0000: nobody may open it. `obey_file_permissions` makes that hold
    // for root too (root otherwise bypasses permission checks).
    let mut vary = Varied::new();
    let (sandbox, fifo) = sandbox_with_fifo(&vary.word(6), "000");
    let run = lab()
        .cmd_in(sandbox, ["read"])
        .arg(&fifo)
        .obey_file_permissions()
        .timeout(HANG_TIMEOUT)
        .why_if_timeout("open() fails with EACCES before it waits for a writer: report that error")
        .section(TASK_2)
        .run();
    run.expect_one_line_error(
        "fifos",
        "EACCES",
        "open fails with EACCES before it waits for anybody: report it on one line",
    );
}

// ---- TODO 3: tee into a FIFO ---------------------------------------------------

#[test]
fn tee_feeds_two_consumers_without_a_temporary_file() {
    // The chapter's pipeline: mkfifo fifo1; prog3 < fifo1 &; prog1 | tee fifo1 | prog2.
    // 60000 lines or more are far more than a FIFO or a pipe holds, so both
    // consumers must read while tee writes.
    let mut vary = Varied::new();
    let lines = vary.between(60_000, 120_000);
    let lab = lab();
    let sandbox = Sandbox::new();
    let (fifo, count) = (sandbox.path(&vary.word(5)), sandbox.path("count"));
    let run = lab
        .script_in(
            sandbox,
            r#"mkfifo "$1"
wc -l < "$1" > "$2" &
seq 1 "$3" | "$0" tee "$1" | tail -n 1
echo "tee: exit status $?"
# If tee never opened the FIFO, open it here, or wc waits for ever.
exec 3<> "$1"; exec 3<&-
wait
echo "the FIFO's reader counted $(cat "$2") lines"
rm "$1""#,
        )
        .arg(&fifo)
        .arg(&count)
        .arg(lines.to_string())
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "a consumer never saw end-of-file, or tee blocked: open the FIFO in blocking mode, \
             write each chunk to both outputs as it comes, and close the FIFO at the end",
        )
        .chapter(CHAPTER)
        .section(TASK_3)
        .run();
    run.expect_success();
    run.expect_lines(
        &format!("{lines}\ntee: exit status 0\nthe FIFO's reader counted {lines} lines\n"),
        "every byte read goes both to standard output and into the FIFO",
    );
}

#[test]
fn tee_reports_epipe_when_the_fifo_reader_leaves() {
    // `head` reads a few bytes and leaves. tee's next write into the FIFO
    // gets EPIPE (Rust ignores SIGPIPE); then `seq`, a C program that keeps
    // the default action, is killed by SIGPIPE when it writes into the pipe
    // to the tee that has gone: status 141 = 128 + 13.
    let mut vary = Varied::new();
    let name = vary.word(5);
    let lab = lab();
    let sandbox = Sandbox::new();
    let fifo = sandbox.path(&name);
    let run = lab
        .script_in(
            sandbox,
            r#"mkfifo "$1"
head -c "$2" < "$1" > /dev/null &
{ seq 1 1000000; echo "seq: exit status $?" >&2; } | "$0" tee "$1" > /dev/null
echo "tee: exit status $?" >&2
# If tee never opened the FIFO, open it here, or head waits for ever.
exec 3<> "$1"; exec 3<&-
wait
rm "$1""#,
        )
        .arg(&fifo)
        .arg(vary.between(1, 100).to_string())
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
    let expected = format!("fifos: write to [SANDBOX]/{name}: EPIPE: Broken pipe");
    if !run.stderr.lines().any(|line| line == expected) {
        let mut failure = run.failure("did not report EPIPE as expected");
        failure
            .details
            .push(format!("expected the line {expected:?}"));
        failure.why =
            Some("return the write error with the context `write to PATH` (the FIFO's)".into());
        failure.raise();
    }
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
fn lab_client(fifo: &Path, server: &Running, count: u64) -> Cmd {
    lab()
        .cmd(["client"])
        .arg(fifo)
        .arg(count.to_string())
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
    let mut vary = Varied::new();
    let (first, count) = (vary.between(1, 100_000), vary.between(1, 1000));
    let (server, fifo) = start_shell_server(&first.to_string());
    let run = lab_client(&fifo, &server, count).run();
    let server = server.wait(HANG_TIMEOUT);
    server.expect_success().expect_stdout(
        &format!(
            "ready\nrequest: count {count}\nthe reply path is absolute\nthe reply path is a FIFO\n"
        ),
        "the request is one line, `COUNT REPLY`, naming the reply FIFO by its absolute \
         path; make the reply FIFO before you send the request",
    );
    run.expect_success();
    run.expect_lines(
        &format!("numbers {first} to {}\n", first + count - 1),
        "the reply is FIRST: your numbers are FIRST to FIRST + COUNT - 1",
    );
}

#[test]
fn client_reports_when_no_server_is_listening() {
    // The well-known FIFO exists, but no server has it open.
    let mut vary = Varied::new();
    let (sandbox, fifo) = sandbox_with_fifo(&vary.word(5), "600");
    let run = lab()
        .cmd_in(sandbox, ["client"])
        .arg(&fifo)
        .arg(vary.between(1, 1000).to_string())
        .timeout(HANG_TIMEOUT)
        .why_if_timeout(
            "with no server, a blocking open(O_WRONLY) of its FIFO waits for ever: open it \
             with O_NONBLOCK, and report ENXIO as `no server is listening on PATH`",
        )
        .section(TASK_4)
        .run();
    run.expect_one_line_error(
        "fifos",
        "no server is listening on",
        "report ENXIO from the non-blocking open with the context `no server is listening \
         on PATH`",
    );
}

#[test]
fn client_removes_its_fifo_even_after_a_bad_reply() {
    let mut vary = Varied::new();
    let (server, fifo) = start_shell_server(&vary.word(6));
    // The grader fails this run if the reply FIFO is left in the client's
    // sandbox ($TMPDIR).
    let run = lab_client(&fifo, &server, vary.between(1, 1000)).run();
    server.wait(HANG_TIMEOUT).expect_success();
    run.expect_one_line_error(
        "fifos",
        "bad reply from the server",
        "a reply that is not a number and a newline is `bad reply from the server: \
         \"TEXT\"`",
    );
}

// ---- TODO 5: the server --------------------------------------------------------

/// How a server that exits early probably went wrong.
const SERVER_GONE: &str = "a bad request or a client that vanished must be reported on stderr \
                           and skipped (ENOENT, not a FIFO, EPIPE …); only an error on the \
                           well-known FIFO itself may end the server";

/// Why a server ends before it has answered a well-formed request.
const ENDED_BEFORE_ANSWERING: &str = "most likely read() returned 0 (end-of-file) because no \
                                      process had the FIFO open for writing: a server keeps \
                                      a dummy writer, a write end of its own, open for that. \
                                      Otherwise answering failed: a client that goes wrong is \
                                      reported on stderr and skipped";

/// Why a server ends after its clients have gone.
const ENDED_AFTER_CLIENTS: &str = "read() returned 0 (end-of-file) once the last client had \
                                   closed the FIFO: keep a dummy writer, a write end of your \
                                   own, open until the end";

/// Fails the test with the likely cause `why` if `server` has ended: a
/// server runs until it is stopped.
fn expect_server_running(server: &mut Running, when: &str, why: &str) {
    if let Blocked::Exited(status) = server.wait_until_blocked(EXIT_SETTLE) {
        server.fail(format!("ended ({status}) {when}"), why);
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

/// Starts the lab's server on a FIFO with a random name in a fresh
/// sandbox; returns it once it says it is listening, with the FIFO's path.
fn start_server(vary: &mut Varied, extra: &[&str]) -> (Running, PathBuf) {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path(&file_name(vary, "fifo"));
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
fn shell_client(server: &mut Running, fifo: &Path, count: u64) -> String {
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
        expect_server_running(
            server,
            "before it answered a client",
            ENDED_BEFORE_ANSWERING,
        );
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

/// Fails unless `answer`, what a shell client printed, is `first` to
/// `first + count - 1`.
fn expect_numbers(server: &Running, answer: &str, first: u64, count: u64) {
    let expected = format!("numbers {first} to {}\n", first + count - 1);
    if answer != expected {
        server.fail(
            "gave out the wrong numbers",
            format!(
                "a client asking for {count} got {:?} instead of {:?}: the first client's \
                 FIRST is 1, and each client moves it on by its COUNT",
                answer.trim_end(),
                expected.trim_end()
            ),
        );
    }
}

/// Stops the server with `signal` and checks that it removed its FIFO and
/// died of the signal.
fn stop_server(mut server: Running, signal: i32, name: &str) -> Run {
    expect_server_running(
        &mut server,
        &format!("before it was sent {name}"),
        ENDED_AFTER_CLIENTS,
    );
    server.signal(signal);
    let run = server.wait_unchecked(HANG_TIMEOUT);
    if run.leaks.iter().any(|leak| leak.kind == LeakKind::Fifo) {
        run.fail(
            format!("left its FIFO on disk after {name}"),
            "install a handler for SIGINT and SIGTERM that unlinks the FIFO and raises the \
             signal again, and give it the FIFO's path as soon as mkfifo has made it: a FIFO \
             left behind makes the next server's mkfifo fail with EEXIST",
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

/// The line the server prints once it listens on `fifo`.
fn listening(fifo: &Path) -> String {
    let name = fifo.file_name().unwrap_or_default().to_string_lossy();
    format!("server: listening on [SANDBOX]/{name}\n")
}

#[test]
fn server_answers_clients_written_in_shell() {
    let mut vary = Varied::new();
    let (mut server, fifo) = start_server(&mut vary, &[]);
    let (first, second) = (vary.between(1, 50), vary.between(1, 50));
    let answer = shell_client(&mut server, &fifo, first);
    expect_numbers(&server, &answer, 1, first);
    let answer = shell_client(&mut server, &fifo, second);
    expect_numbers(&server, &answer, first + 1, second);
    let run = stop_server(server, libc::SIGTERM, "SIGTERM");
    run.expect_lines(
        &listening(&fifo),
        "say `server: listening on FIFO` once, and nothing else on stdout",
    );
}

#[test]
fn server_gives_clients_running_at_once_disjoint_ranges() {
    let mut vary = Varied::new();
    let (mut server, fifo) = start_server(&mut vary, &[]);
    let counts: Vec<u64> = (0..8).map(|_| vary.between(1, 9)).collect();
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
    for (client, count) in clients.into_iter().zip(counts.iter().copied()) {
        let run = client.wait_unchecked(HANG_TIMEOUT);
        let range = run.stdout.split_whitespace().collect::<Vec<_>>();
        match range.as_slice() {
            ["numbers", first, "to", last] if run.code() == Some(0) => {
                let (first, last): (u64, u64) =
                    (first.parse().unwrap_or(0), last.parse().unwrap_or(0));
                ranges.push((first, last, count));
            }
            _ => {
                expect_server_running(
                    &mut server,
                    "while clients were running at once",
                    ENDED_BEFORE_ANSWERING,
                );
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
            let mut failure = server.failure("gave out overlapping or missing numbers");
            failure
                .details
                .push(format!("(first, last, count) per client: {ranges:?}"));
            failure.why = Some(
                "each client's numbers start where the previous client's ended: they must \
                 cover 1, 2, 3 … with no gap and no number given twice"
                    .into(),
            );
            failure.raise();
        }
        expected_first = last + 1;
    }
    stop_server(server, libc::SIGTERM, "SIGTERM");
}

#[test]
fn server_keeps_serving_after_every_client_has_left() {
    let mut vary = Varied::new();
    let (mut server, fifo) = start_server(&mut vary, &[]);
    let (first, second) = (vary.between(1, 50), vary.between(1, 50));
    let answer = shell_client(&mut server, &fifo, first);
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
    expect_numbers(&server, &answer, 1, first);
    let answer = shell_client(&mut server, &fifo, second);
    expect_numbers(&server, &answer, first + 1, second);
    stop_server(server, libc::SIGTERM, "SIGTERM");
}

#[test]
fn server_removes_its_fifo_on_sigint() {
    let mut vary = Varied::new();
    let (mut server, fifo) = start_server(&mut vary, &[]);
    let count = vary.between(1, 50);
    let answer = shell_client(&mut server, &fifo, count);
    expect_numbers(&server, &answer, 1, count);
    stop_server(server, libc::SIGINT, "SIGINT (Ctrl-C)");
}

#[test]
fn server_removes_its_fifo_when_it_stops_by_itself() {
    let mut vary = Varied::new();
    let requests = vary.between(1, 3);
    let (mut server, fifo) = start_server(&mut vary, &["--stop-after", &requests.to_string()]);
    let mut next = 1;
    for _ in 0..requests {
        let count = vary.between(1, 20);
        let answer = shell_client(&mut server, &fifo, count);
        expect_numbers(&server, &answer, next, count);
        next += count;
    }
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
    let noun = if requests == 1 { "request" } else { "requests" };
    run.expect_lines(
        &format!(
            "{}server: stopped after {requests} {noun}\n",
            listening(&fifo)
        ),
        "stop after reading as many requests as --stop-after says, and return how many",
    );
}

#[test]
fn server_survives_bad_requests() {
    let mut vary = Varied::new();
    let (mut server, fifo) = start_server(&mut vary, &[]);
    let contents = random_text(&mut vary);
    let notes = server
        .sandbox()
        .write_file(&file_name(&mut vary, "txt"), &contents);
    // Four requests the server cannot answer, then a good one.
    let count = vary.between(1, 50);
    let run = shell(
        r#"dir=$(dirname "$0")
echo "$3" > "$0"
echo "2 relative/$3" > "$0"
echo "2 $dir/missing-$3" > "$0"
echo "2 $1" > "$0"
reply="$TMPDIR/shell-client"
mkfifo -m 600 "$reply"
echo "$2 $reply" > "$0"
read -r first < "$reply"
rm "$reply"
echo "the next client got $first""#,
        [
            fifo.as_os_str(),
            notes.as_os_str(),
            count.to_string().as_ref(),
            vary.word(5).as_ref(),
        ],
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
    if std::fs::read_to_string(&notes).ok().as_deref() != Some(contents.as_str()) {
        server.fail(
            "wrote its answer into a regular file named in a request",
            "open the reply path with open_fifo, which refuses anything that is not a FIFO",
        );
    }
    if run.stdout != "the next client got 1\n" {
        server.fail(
            "gave numbers to a request it could not answer",
            "a client gets numbers only once its reply FIFO is open: a bad request moves \
             nothing on",
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
}

#[test]
fn server_never_writes_through_a_symbolic_link() {
    let mut vary = Varied::new();
    let (mut server, fifo) = start_server(&mut vary, &[]);
    let dir = server.sandbox().dir().to_path_buf();
    // A link to a regular file, and a link to a FIFO that the test reads:
    // a server that follows either one writes where the client chose.
    let contents = random_text(&mut vary);
    let notes = server
        .sandbox()
        .write_file(&file_name(&mut vary, "txt"), &contents);
    // (The FIFO lives in a sandbox of its own: the server did not make it.)
    let (_elsewhere, target) = sandbox_with_fifo(&vary.word(8), "600");
    let (to_notes, to_fifo) = (dir.join(vary.word(6)), dir.join(vary.word(7)));
    std::os::unix::fs::symlink(&notes, &to_notes).expect("link to the file");
    std::os::unix::fs::symlink(&target, &to_fifo).expect("link to the FIFO");
    let mut reader = test_reader(&target);
    let stolen = vary.between(1, 50);
    for link in [&to_notes, &to_fifo] {
        OpenOptions::new()
            .write(true)
            .open(&fifo)
            .and_then(|mut requests| {
                requests.write_all(format!("{stolen} {}\n", link.display()).as_bytes())
            })
            .expect("send a request");
    }
    // The server answers in order: once the next client has its numbers,
    // both requests have been dealt with.
    let count = vary.between(1, 50);
    let answer = shell_client(&mut server, &fifo, count);
    if std::fs::read_to_string(&notes).ok().as_deref() != Some(contents.as_str())
        || !drain(&mut reader).is_empty()
    {
        server.fail(
            "wrote an answer through a symbolic link named in a request",
            "open the reply path with O_NOFOLLOW (open_fifo): a symbolic link fails with \
             ELOOP, whatever it points to. A stat before the open would not do: the client \
             can swap the link in between",
        );
    }
    expect_numbers(&server, &answer, 1, count);
    let stopped = stop_server(server, libc::SIGTERM, "SIGTERM");
    let refused = stopped
        .stderr
        .lines()
        .filter(|line| line.starts_with("server: ") && line.contains("ELOOP"))
        .count();
    if refused != 2 {
        stopped.fail(
            "did not report both symbolic links (ELOOP) on stderr",
            "report each request it cannot answer on standard error, one line `server: …` each",
        );
    }
}

#[test]
fn server_survives_a_client_that_leaves_before_its_answer() {
    let mut vary = Varied::new();
    let (mut server, fifo) = start_server(&mut vary, &[]);
    // The test plays the client that vanishes. Its reply FIFO is full, so
    // the server's write waits; then the client closes it, and the waiting
    // write fails with EPIPE (SIGPIPE, unless it is ignored).
    let (_client_side, reply) = sandbox_with_fifo(&vary.word(6), "600");
    let mut held = OpenOptions::new()
        .read(true)
        .write(true) // O_RDWR: on Linux, never waits for a partner
        .custom_flags(libc::O_NONBLOCK)
        .open(&reply)
        .expect("open the reply FIFO");
    let junk = [b'x'; 4096];
    while held.write(&junk).is_ok() {}
    let vanished = vary.between(1, 50);
    let request = format!("{vanished} {}\n", reply.display());
    OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut requests| requests.write_all(request.as_bytes()))
        .expect("send a request");
    let deadline = Instant::now() + HANG_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
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
    let count = vary.between(1, 50);
    let next = shell_client(&mut server, &fifo, count);
    if next != format!("numbers {} to {}\n", vanished + 1, vanished + count) {
        server.fail(
            "gave the vanished client's numbers to the next one",
            "the vanished client's numbers were handed out when its FIFO opened: they are \
             not handed out again",
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
    let mut vary = Varied::new();
    let contents = random_text(&mut vary);
    let sandbox = Sandbox::new();
    let taken = sandbox.write_file(&file_name(&mut vary, "fifo"), &contents);
    let run = lab()
        .cmd_in(sandbox, ["serve"])
        .arg(&taken)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout("mkfifo fails with EEXIST: report it and exit")
        .section(TASK_5)
        .run();
    if std::fs::read_to_string(&taken).ok().as_deref() != Some(contents.as_str()) {
        run.fail(
            "removed or changed a file it had not made",
            "remove the FIFO only once mkfifo has made it: arm the guard after mkfifo succeeds",
        );
    }
    run.expect_one_line_error(
        "fifos",
        "EEXIST",
        "mkfifo fails with EEXIST: report it on one line and exit with status 1",
    );
}

#[test]
fn server_signalled_while_refusing_a_path_leaves_it_alone() {
    let mut vary = Varied::new();
    let contents = random_text(&mut vary);
    let sandbox = Sandbox::new();
    let taken = sandbox.write_file(&file_name(&mut vary, "fifo"), &contents);
    // First the plain refusal: EEXIST, and nothing touched.
    let refused = lab()
        .cmd_in(sandbox, ["serve"])
        .arg(&taken)
        .timeout(HANG_TIMEOUT)
        .why_if_timeout("mkfifo fails with EEXIST: report it and exit")
        .section(TASK_5)
        .run();
    refused.expect_one_line_error(
        "fifos",
        "EEXIST",
        "mkfifo fails with EEXIST: report it on one line and exit with status 1",
    );
    // Then the same, with the server's standard error a full FIFO: it
    // stops, writing its report, and the test sends it SIGTERM right then.
    let sandbox = refused.sandbox;
    let stderr = sandbox.path("stderr");
    nix::unistd::mkfifo(&stderr, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo stderr");
    let _reader = test_reader(&stderr);
    let mut filler = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&stderr)
        .expect("open the stderr FIFO for writing");
    let junk = [b'x'; 4096];
    while filler.write(&junk).is_ok() {}
    let mut server = lab()
        .script_in(sandbox, r#"exec 2> "$2"; exec "$0" serve "$1""#)
        .arg(&taken)
        .arg(&stderr)
        .section(TASK_5)
        .start();
    server.wait_until_blocked_in(libc::SYS_write, HANG_TIMEOUT);
    server.signal(libc::SIGTERM);
    let run = server.wait_unchecked(HANG_TIMEOUT);
    if std::fs::read_to_string(&taken).ok().as_deref() != Some(contents.as_str()) {
        run.fail(
            "removed a file it had not made when SIGTERM came",
            "the handler must learn the FIFO's path only once mkfifo has made it: block \
             SIGINT and SIGTERM around mkfifo, publish the path after it succeeds, then \
             unblock. A path that already existed is someone else's",
        );
    }
}
