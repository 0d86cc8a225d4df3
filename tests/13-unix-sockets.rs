//! Grading suite of lab 13 (Unix domain sockets).
//!
//! Compiled into both the lab (`labs/13-unix-sockets`) and the reference
//! solution; every test runs the program as a black box through the
//! grader, which also fails a test when a socket file, a process or a
//! zombie is left behind.
//!
//! The other side of a socket is never the lab's own code when it need not
//! be. It is python3 (its `socket` module speaks `AF_UNIX`, frames written
//! with `struct.pack(">I", …)` and `SCM_RIGHTS` with `send_fds` /
//! `recv_fds`): a peer written by someone else, from the wire format the
//! book documents. It is `socat` or `nc -U` where they are installed. Or it
//! is this test process itself, with `std::os::unix::net`, where a test
//! must control each byte: a frame cut into pieces, a client that leaves
//! half-way. Such a test waits until the lab has read each piece by asking
//! the kernel how much of what it sent is still unread (`SIOCOUTQ`), never
//! by sleeping. Inputs that a fixed transcript could fake (messages, file
//! contents, lengths, where a frame is cut) come from `grader::Varied`: a
//! failure prints the seed, and `WORKBOOK_SEED=N` repeats a run.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use grader::{Blocked, Cmd, Lab, LeakKind, Run, Running, Sandbox, Varied, assert_transcript};

const CHAPTER: &str = "13-unix-sockets.md";

const TASK_1: &str = "Task 1: a socket pair";
const TASK_2: &str = "Task 2: names: bind, listen, connect";
const TASK_3: &str = "Task 3: frames on a byte stream";
const TASK_4: &str = "Task 4: credentials and descriptors";
const TASK_5: &str = "Task 5: a server for many clients";

/// How long anything may take: a server to say it listens, a reply to
/// come, a client to finish. Everything here takes milliseconds.
const WAIT: Duration = Duration::from_secs(5);

/// The lab's limit on a frame's payload, written out again here.
const MAX_FRAME: usize = 64 * 1024;

/// The bytes of a frame's length prefix.
const HEADER_LEN: usize = 4;

/// A server that allocated a length a peer sent would have grown past
/// this much virtual memory (a lab server with a few threads stays well
/// under 1 GiB; the length sent is nearly 4 GiB).
const VM_LIMIT_KIB: u64 = 3 << 20;

/// Values that change from run to run, replaced in snapshots once the
/// tests have checked them.
const FILTERS: &[(&str, &str)] = &[
    (r"pid \d+", "pid [PID]"),
    (r"FNV-1a 0x[0-9a-f]{16}", "FNV-1a [CHECKSUM]"),
];

/// [`assert_transcript!`] with [`FILTERS`].
macro_rules! assert_masked {
    ($run:expr) => {{
        grader::insta::with_settings!({ filters => FILTERS.to_vec() }, {
            assert_transcript!($run);
        });
    }};
}

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

// ---- shared checks ----------------------------------------------------------------

/// Fails unless the program reported an error on exactly one line that
/// starts with `unix-sockets: ` and contains one of `phrases`, and exited
/// with status 1.
fn expect_error(run: &Run, phrases: &[&str], why: &str) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    let one_line = lines.len() == 1 && lines[0].starts_with("unix-sockets: ");
    if run.code() != Some(1) || !one_line || !phrases.iter().any(|p| run.stderr.contains(p)) {
        run.fail(
            format!(
                "expected one line `unix-sockets: …{}…` on stderr and exit status 1",
                phrases.join("…` or `…")
            ),
            why,
        );
    }
}

/// `ls -l`'s first column for `path`, without following a symbolic link:
/// `srw-------` for a socket file only its owner may connect to.
fn mode_string(path: &Path) -> Option<String> {
    let meta = fs::symlink_metadata(path).ok()?;
    let kind = if meta.file_type().is_socket() {
        's'
    } else if meta.is_file() {
        '-'
    } else {
        '?'
    };
    let mode = meta.permissions().mode();
    let bits: String = (0..9)
        .rev()
        .map(|bit| {
            if mode & (1 << bit) == 0 {
                '-'
            } else {
                ['x', 'w', 'r'][bit % 3]
            }
        })
        .collect();
    Some(format!("{kind}{bits}"))
}

/// Makes a stale socket file at `path`: bound, then closed, never removed,
/// as a server killed by SIGKILL leaves it.
fn make_stale_socket(path: &Path) {
    let listener =
        UnixListener::bind(path).unwrap_or_else(|e| panic!("grader: bind {}: {e}", path.display()));
    drop(listener);
}

/// Whether `name` (with its `@`) is bound in the abstract namespace:
/// `/proc/net/unix` lists every bound name, abstract ones with an `@`.
fn abstract_name_bound(name: &str) -> bool {
    fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split_whitespace().last() == Some(name))
}

/// The server's virtual memory peak (`VmPeak` in `/proc/PID/status`), KiB.
fn vm_peak_kib(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmPeak:"))?
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .ok()
}

/// FNV-1a, 64 bits, as the lab computes it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---- peers: python3, socat, nc --------------------------------------------------

/// Whether `program` can be run (`program --version` or `-h` starts).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("-h")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// The python3 interpreter itself, found once: `python3` on `PATH` may be
/// a wrapper script (pyenv's shims are) that takes longer to start than
/// the test takes to run.
fn python_interpreter() -> &'static Path {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let output = Command::new("python3")
            .args(["-S", "-c", "import sys; print(sys.executable)"])
            .output()
            .ok()?;
        let path = String::from_utf8(output.stdout).ok()?;
        let path = PathBuf::from(path.trim());
        (output.status.success() && path.is_absolute()).then_some(path)
    });
    found.as_deref().unwrap_or_else(|| {
        panic!(
            "this test talks to the lab through python3, which is not installed here: \
             install python3 (3.9 or newer) and run the tests again"
        )
    })
}

/// `python3 -S -c SCRIPT ARGS…` in a sandbox of its own, with paths in
/// `elsewhere` (the lab's sandbox) shown as `[SANDBOX]`. (`-S`: no site
/// packages, a faster start; the scripts need the standard library only.)
fn python(script: &str, elsewhere: &Path) -> Cmd {
    Cmd::new(python_interpreter(), Sandbox::new())
        .args(["-S", "-c", script])
        .display_name("python3")
        .alias(elsewhere, "[SANDBOX]")
        .timeout(WAIT)
        .chapter(CHAPTER)
}

/// A python3 server for `send`: it reads frames (`>I` length, then the
/// payload), prints each length prefix in hex, and answers each with the
/// payload reversed. A length over the limit means the prefix was not
/// big-endian: it says so and closes.
const PY_FRAME_SERVER: &str = r#"
import os, socket, struct, sys
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
try:
    server.listen(1)
    server.settimeout(5)
    print("ready", flush=True)
    conn, _ = server.accept()
    conn.settimeout(5)
    stream = conn.makefile("rb")
    while True:
        header = stream.read(4)
        if len(header) == 0:
            print("end of stream")
            break
        if len(header) < 4:
            print("a cut length prefix:", header.hex())
            break
        (length,) = struct.unpack(">I", header)
        print("frame: prefix", header.hex(), flush=True)
        if length > 65536:
            print("a length of", length, "is over the limit: is the prefix big-endian?")
            break
        payload = stream.read(length)
        conn.sendall(struct.pack(">I", length) + payload[::-1])
finally:
    server.close()
    os.unlink(path)
"#;

/// A python3 client for `serve`: it says its pid, sends each argument as a
/// frame and prints each reply, then leaves.
const PY_FRAME_CLIENT: &str = r#"
import os, socket, struct, sys
address = sys.argv[1]
conn = socket.socket(socket.AF_UNIX)
conn.settimeout(5)
conn.connect("\0" + address[1:] if address.startswith("@") else address)
print("python: pid", os.getpid(), flush=True)
stream = conn.makefile("rb")
for message in sys.argv[2:]:
    payload = message.encode()
    conn.sendall(struct.pack(">I", len(payload)) + payload)
    header = stream.read(4)
    if len(header) < 4:
        print("python: no reply to", repr(message))
        sys.exit(1)
    (length,) = struct.unpack(">I", header)
    print("python: reply", stream.read(length).decode())
"#;

/// A python3 client for `share`: it says its pid, receives one byte and
/// the descriptors that come with it, and reads the file through the
/// first one from offset 0.
const PY_FD_CLIENT: &str = r#"
import os, socket, sys
conn = socket.socket(socket.AF_UNIX)
conn.settimeout(5)
conn.connect(sys.argv[1])
print("python: pid", os.getpid(), flush=True)
data, fds, flags, _ = socket.recv_fds(conn, 1, 4)
print("python: byte", data, "with", len(fds), "descriptor(s)")
if fds:
    content = os.pread(fds[0], 1 << 20, 0)
    checksum = 0xcbf29ce484222325
    for byte in content:
        checksum = ((checksum ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    print("python: read", len(content), "bytes, FNV-1a", "0x%016x" % checksum)
"#;

/// A python3 server for `fetch`. `pass FILE`: one byte `+` with the
/// descriptor of FILE, opened here; `no-descriptor`: the byte alone;
/// `refuse`: a refusal line; `silent`: it closes without a word.
const PY_FD_SERVER: &str = r#"
import os, socket, sys
how, path = sys.argv[1], sys.argv[2]
shared = os.open(sys.argv[3], os.O_RDONLY) if how == "pass" else None
server = socket.socket(socket.AF_UNIX)
server.bind(path)
try:
    server.listen(1)
    server.settimeout(5)
    print("ready", flush=True)
    conn, _ = server.accept()
    print("python: pid", os.getpid(), flush=True)
    if how == "pass":
        socket.send_fds(conn, [b"+"], [shared])
    elif how == "no-descriptor":
        conn.sendall(b"+")
    elif how == "refuse":
        conn.sendall(b"-not today: the file is being rebuilt\n")
    conn.close()
finally:
    server.close()
    os.unlink(path)
"#;

// ---- the test's own peers --------------------------------------------------------

/// A stream socket connected to `address` (`@name` or a path), with
/// time-outs on both directions so that no test waits for ever.
fn connect_to(address: &str) -> io::Result<UnixStream> {
    let stream = match address.strip_prefix('@') {
        Some(name) => UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?)?,
        None => UnixStream::connect(address)?,
    };
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// `payload` as a frame: a 4-byte big-endian length, then the bytes.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// Reads one frame; an error if it does not come whole within [`WAIT`].
fn read_reply(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header)?;
    let length = u32::from_be_bytes(header) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::other(format!(
            "a reply of {length} bytes, over the limit"
        )));
    }
    let mut payload = vec![0; length];
    stream.read_exact(&mut payload)?;
    Ok(payload)
}

/// `bytes` reversed: the server's answer to them.
fn reversed(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().copied().collect()
}

/// How many of the bytes written into `stream` the other side has not
/// read yet (`ioctl(SIOCOUTQ)`; for a Unix stream socket the kernel counts
/// the memory of the unread pieces, 0 once all are read).
fn unread(stream: &UnixStream) -> io::Result<i32> {
    let mut count: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer.
    let result = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut count) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(count)
}

/// Writes `pieces` one after the other into `stream`, each only once the
/// peer has read everything before it: the peer's reads cannot help but
/// get the bytes in these pieces, or smaller ones.
fn write_in_pieces(stream: &mut UnixStream, pieces: &[&[u8]]) -> Result<(), String> {
    for (number, piece) in pieces.iter().enumerate() {
        stream
            .write_all(piece)
            .map_err(|e| format!("writing piece {} failed: {e}", number + 1))?;
        let deadline = Instant::now() + WAIT;
        loop {
            match unread(stream) {
                Ok(0) => break,
                Ok(_) if Instant::now() < deadline => thread::sleep(Duration::from_micros(200)),
                Ok(left) => {
                    return Err(format!(
                        "piece {} of {} was still unread after {} s ({left} bytes of memory \
                         queued)",
                        number + 1,
                        pieces.len(),
                        WAIT.as_secs()
                    ));
                }
                Err(e) => return Err(format!("SIOCOUTQ failed: {e}")),
            }
        }
    }
    Ok(())
}

/// A server played by this test, in a thread: it listens at a path in
/// `sandbox`, accepts one connection within [`WAIT`], and runs `script`
/// on it. Returns the path and the thread, whose result says what the
/// script saw.
fn test_server(
    sandbox: &Sandbox,
    script: impl FnOnce(UnixStream) -> Result<String, String> + Send + 'static,
) -> (PathBuf, JoinHandle<Result<String, String>>) {
    let path = sandbox.path("test-server.sock");
    let listener = UnixListener::bind(&path)
        .unwrap_or_else(|e| panic!("grader: bind {}: {e}", path.display()));
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("grader: O_NONBLOCK: {e}"));
    let server = thread::spawn(move || {
        let deadline = Instant::now() + WAIT;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let setup = stream
                        .set_nonblocking(false)
                        .and_then(|()| stream.set_read_timeout(Some(WAIT)))
                        .and_then(|()| stream.set_write_timeout(Some(WAIT)));
                    setup.map_err(|e| format!("set up the connection: {e}"))?;
                    return script(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("no client connected within 5 s ({e})")),
            }
        }
    });
    (path, server)
}

/// What the test's server thread reported; fails `run` if the thread did.
fn server_report(run: &Run, server: JoinHandle<Result<String, String>>, why: &str) -> String {
    match server.join() {
        Ok(Ok(report)) => report,
        Ok(Err(trouble)) => run.fail(format!("the test's server: {trouble}"), why),
        Err(_) => run.fail("the test's server panicked", why),
    }
}

// ---- TODO 1: a socket pair --------------------------------------------------------

/// Fails unless `run` exited with status 0; the program's last words are
/// the likely cause, `why` says what usually lies behind them.
fn expect_done(run: &Run, why: &str) {
    if run.code() != Some(0) {
        let last = run.stderr.lines().last().unwrap_or("nothing on stderr");
        run.fail(format!("ended with {}: {last}", describe_status(run)), why);
    }
}

/// `exit status 1`, `signal 9`.
fn describe_status(run: &Run) -> String {
    match (run.code(), run.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_string(),
    }
}

/// The kind of socket pair, as the command line names it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pair {
    Stream,
    Datagram,
}

/// Runs `unix-sockets pair KIND [--buffer N] -- MESSAGES…` and checks each
/// read against what the kernel does: a stream cut into pieces of the
/// buffer's size wherever the messages began and ended; one datagram per
/// read, cut to the buffer, with its real length.
fn check_pair(kind: Pair, buffer: Option<usize>, messages: &[String]) -> Run {
    let name = match kind {
        Pair::Stream => "stream",
        Pair::Datagram => "datagram",
    };
    let mut args = vec!["pair".to_string(), name.to_string()];
    if let Some(buffer) = buffer {
        args.extend(["--buffer".to_string(), buffer.to_string()]);
    }
    args.push("--".to_string());
    args.extend(messages.iter().cloned());
    let run = lab()
        .cmd(args)
        .section(TASK_1)
        .timeout(WAIT)
        .why_if_timeout(
            "a read waited for ever: read with MSG_DONTWAIT, and only after the child has \
             been reaped; the parent must drop its copy of the child's end",
        )
        .run();
    expect_done(
        &run,
        "after fork, each process drops the end it does not use: a stream reaches \
         end-of-file only when every copy of the other end is closed, the parent's \
         included. Reap the child first, then read with MSG_DONTWAIT until end-of-file \
         (a stream) or EAGAIN (datagrams)",
    );
    let buffer = buffer.unwrap_or(65536);
    let (expected, why): (Vec<(String, usize)>, &str) = match kind {
        Pair::Stream => (
            messages
                .concat()
                .as_bytes()
                .chunks(buffer)
                .map(|chunk| (String::from_utf8_lossy(chunk).into_owned(), chunk.len()))
                .collect(),
            "a stream socket keeps no boundaries: everything the child sent is waiting when \
             the parent reads (it reaps the child first), and each recv takes as much as its \
             buffer holds, wherever one message ended and the next began. A message of 0 \
             bytes sends nothing",
        ),
        Pair::Datagram => (
            messages
                .iter()
                .map(|m| (m[..m.len().min(buffer)].to_string(), m.len()))
                .collect(),
            "each send on a SOCK_DGRAM socket is one datagram, and each recv takes exactly \
             one, even one of 0 bytes (on a datagram socket, 0 is not end-of-file), cut to \
             the buffer's size: the rest is lost, and MSG_TRUNC makes recv return the real \
             length. Stop at EAGAIN, when the queue is empty",
        ),
    };
    let reads = pair_reads(&run);
    if reads != expected {
        let what = match kind {
            Pair::Stream => {
                format!("read {reads:?} (bytes, length) from a stream, expected {expected:?}")
            }
            Pair::Datagram => format!(
                "read {reads:?} (bytes, real length), expected one read per message: \
                 {expected:?}"
            ),
        };
        run.fail(what, why);
    }
    let last = match kind {
        Pair::Stream => "end of stream after",
        Pair::Datagram => "no datagram left after",
    };
    if !run.stdout.contains(last) {
        run.fail(format!("never printed `{last} …`"), why);
    }
    run
}

/// The `read N: …` lines of a `pair` run, as (bytes shown, real length).
fn pair_reads(run: &Run) -> Vec<(String, usize)> {
    run.stdout_lines()
        .iter()
        .filter_map(|line| line.strip_prefix("read "))
        .filter_map(|rest| {
            let (_, rest) = rest.split_once(": ")?;
            let (numbers, text) = rest.split_once(" bytes ")?;
            let length = numbers.split(" of ").last()?.parse().ok()?;
            let end = text.rfind('"')?;
            Some((text.get(1..end)?.to_string(), length))
        })
        .collect()
}

/// The notes' words, with an empty message among them.
fn fixed_words() -> Vec<String> {
    ["hello", "", "world", "!"].map(String::from).to_vec()
}

#[test]
fn a_stream_merges_the_childs_messages_into_one_byte_stream() {
    let run = check_pair(Pair::Stream, None, &fixed_words());
    assert_transcript!(run);
    let mut vary = Varied::new();
    let count = vary.size(2, 8);
    let messages = vary.words(count, 12);
    check_pair(Pair::Stream, None, &messages);
}

#[test]
fn a_small_buffer_cuts_a_stream_anywhere() {
    let run = check_pair(Pair::Stream, Some(3), &fixed_words());
    assert_transcript!(run);
    let mut vary = Varied::new();
    let buffer = vary.size(2, 7);
    let count = vary.size(2, 6);
    let messages = vary.words(count, 15);
    check_pair(Pair::Stream, Some(buffer), &messages);
}

#[test]
fn datagrams_keep_each_message_whole_even_an_empty_one() {
    let run = check_pair(Pair::Datagram, None, &fixed_words());
    assert_transcript!(run);
    let mut vary = Varied::new();
    let count = vary.size(2, 10);
    let mut messages = vary.words(count, 12);
    let empty = vary.size(0, count - 1);
    messages[empty].clear();
    check_pair(Pair::Datagram, None, &messages);
}

#[test]
fn a_datagram_longer_than_the_buffer_is_cut_and_the_rest_lost() {
    let run = check_pair(Pair::Datagram, Some(3), &fixed_words());
    assert_transcript!(run);
    let mut vary = Varied::new();
    let buffer = vary.size(2, 6);
    let count = vary.size(2, 8);
    let messages = vary.words(count, 12);
    check_pair(Pair::Datagram, Some(buffer), &messages);
}

// ---- TODO 2: names: bind, listen, connect ---------------------------------------------

/// Starts `greet` with `args` in `sandbox`; returns it once it listens.
fn start_greet(sandbox: Sandbox, args: &[&str]) -> Running {
    let mut greet = lab()
        .cmd_in(sandbox, ["greet"])
        .args(args)
        .section(TASK_2)
        .start();
    greet.wait_for_stdout("greet: listening on", WAIT);
    greet
}

/// The lines python3 reads from `address`, one connection each time.
fn python_reads(address: &Path, times: usize, elsewhere: &Path) -> Run {
    python(
        r#"
import socket, sys
for _ in range(int(sys.argv[2])):
    conn = socket.socket(socket.AF_UNIX)
    conn.settimeout(5)
    conn.connect(sys.argv[1])
    print("python read:", conn.makefile().readline().rstrip())
    conn.close()
"#,
        elsewhere,
    )
    .arg(address)
    .arg(times.to_string())
    .section(TASK_2)
    .run()
}

#[test]
fn greet_listens_on_a_socket_file_only_its_owner_may_use() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let path = sandbox.path("greet.sock");
    let greet = start_greet(
        sandbox,
        &[path.to_str().unwrap_or_default(), "--clients", "2"],
    );
    let mode = mode_string(&path).unwrap_or_else(|| "nothing".to_string());
    if mode != "srw-------" {
        greet.fail(
            format!("made `{mode}` at the path, not a socket file with mode srw-------"),
            "bind creates the socket file with mode 0777 minus the umask: chmod the path \
             (fs::set_permissions) to 0600 before listen, since connect needs write \
             permission. fchmod on the socket's descriptor does not change the file",
        );
    }
    let client = python_reads(&path, 2, &dir);
    client.expect_success().expect_stdout(
        "python read: hello, client 1\npython read: hello, client 2\n",
        "greet sends one line to each client it accepts",
    );
    let run = greet.wait(WAIT);
    run.expect_success();
    assert_transcript!(run);
}

#[test]
fn the_socket_files_mode_decides_who_may_connect() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let path = sandbox.path("read-only.sock");
    let greet = start_greet(
        sandbox,
        &[path.to_str().unwrap_or_default(), "--mode", "400"],
    );
    let mode = mode_string(&path).unwrap_or_else(|| "nothing".to_string());
    if mode != "sr--------" {
        greet.fail(
            format!(
                "made `{mode}` at the path, not a socket file with mode sr-------- (--mode 400)"
            ),
            "chmod the path (fs::set_permissions) to `mode` once bind has made the file; \
             fchmod on the socket's descriptor does not change the file",
        );
    }
    // Read permission is not enough to connect: the owner is refused too
    // (root as well, once its permission override is dropped).
    let run = lab()
        .cmd(["connect"])
        .arg(&path)
        .alias(&dir, "[SANDBOX]")
        .obey_file_permissions()
        .section(TASK_2)
        .timeout(WAIT)
        .run();
    expect_error(
        &run,
        &["EACCES", "Permission denied"],
        "connect needs write permission on the socket file: report connect's EACCES",
    );
    assert_transcript!(run);
    let mut greet = greet;
    greet.signal(libc::SIGTERM);
    let stopped = greet.wait_unchecked(WAIT);
    if stopped
        .leaks
        .iter()
        .any(|leak| leak.kind == LeakKind::SocketFile)
    {
        stopped.fail(
            "left its socket file on disk after SIGTERM",
            "create the SocketFile right after bind: stop.rs removes its path on SIGTERM",
        );
    }
    stopped.check_finished_cleanly();
}

#[test]
fn greet_on_an_abstract_name_leaves_no_file_and_no_name_behind() {
    let sandbox = Sandbox::new();
    let name = sandbox.abstract_name("greet");
    let greet = start_greet(sandbox, &[&name, "--clients", "1"]);
    let files: Vec<_> = fs::read_dir(greet.sandbox().dir())
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let sockets: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with("greet"))
        .collect();
    if !sockets.is_empty() {
        greet.fail(
            format!("made a file {sockets:?} for the abstract name {name}"),
            "an address that starts with @ is an abstract name: UnixAddr::new_abstract, \
             whose sun_path starts with a NUL byte; it makes no file",
        );
    }
    if !abstract_name_bound(&name) {
        greet.fail(
            format!("/proc/net/unix does not list {name} while greet listens"),
            "bind to UnixAddr::new_abstract(name) (without the @)",
        );
    }
    let prefix = greet.sandbox().posix_prefix().to_string();
    let run = lab()
        .cmd(["connect", &name])
        .alias(&prefix, "[PREFIX]-")
        .section(TASK_2)
        .timeout(WAIT)
        .run();
    run.expect_success()
        .expect_stdout("hello, client 1\n", "greet's line, through your connect");
    assert_transcript!(run);
    let greet = greet.wait(WAIT);
    greet.expect_success();
    if abstract_name_bound(&name) {
        greet.fail(
            format!("{name} is still bound after greet ended"),
            "an abstract name goes with the last socket bound to it",
        );
    }
    let gone = lab()
        .cmd(["connect", &name])
        .section(TASK_2)
        .timeout(WAIT)
        .run();
    expect_error(
        &gone,
        &["ECONNREFUSED", "Connection refused"],
        "nobody holds the name any more: connect fails with ECONNREFUSED",
    );
}

#[test]
fn greet_replaces_a_stale_socket_file() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let path = sandbox.path("stale.sock");
    make_stale_socket(&path);
    let greet = start_greet(
        sandbox,
        &[path.to_str().unwrap_or_default(), "--clients", "1"],
    );
    if !greet.stdout().contains("removed a stale socket file") {
        greet.fail(
            "did not say it removed a stale socket file",
            "set removed_stale when you removed one",
        );
    }
    python_reads(&path, 1, &dir)
        .expect_success()
        .expect_stdout("python read: hello, client 1\n", "greet greets its client");
    let run = greet.wait(WAIT);
    run.expect_success();
    if path.exists() {
        run.fail(
            "left the socket file at the path of the stale one",
            "the file bind made after removing the stale one is yours: SocketFile removes it",
        );
    }
    assert_transcript!(run);
}

#[test]
fn greet_leaves_a_live_servers_socket_alone() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("busy.sock");
    let live = UnixListener::bind(&path).expect("grader: bind the live server's socket");
    // --clients 0: a greet that took the path over ends at once.
    let run = lab()
        .cmd_in(sandbox, ["greet"])
        .arg(&path)
        .args(["--clients", "0"])
        .section(TASK_2)
        .timeout(WAIT)
        .run_unchecked();
    let still_there = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket());
    let answers =
        still_there && connect_to(&path.to_string_lossy()).is_ok() && live.accept().is_ok();
    if !answers {
        run.fail(
            "removed the socket file of a server that was listening on it",
            "remove a socket file only when connecting to it fails with ECONNREFUSED, and \
             make the SocketFile only after your own bind succeeded: its Drop removes the \
             path",
        );
    }
    run.check_finished_cleanly();
    expect_error(
        &run,
        &["EADDRINUSE", "Address already in use"],
        "bind fails with EADDRINUSE; a connect that succeeds shows a server listens there: \
         report it and leave the file alone",
    );
    assert_transcript!(run);
}

#[test]
fn greet_leaves_a_file_that_is_not_a_socket_alone() {
    let mut vary = Varied::new();
    let contents = format!("notes {}\n", vary.word(20));
    let sandbox = Sandbox::new();
    let notes = sandbox.write_file("notes.sock", &contents);
    let run = lab()
        .cmd_in(sandbox, ["greet"])
        .arg(&notes)
        .args(["--clients", "0"])
        .section(TASK_2)
        .timeout(WAIT)
        .run_unchecked();
    if fs::read_to_string(&notes).ok().as_deref() != Some(contents.as_str()) {
        run.fail(
            "removed or changed a regular file that was at the socket's path".to_string(),
            "EADDRINUSE means something is at the path; remove it only if it is a socket \
             nobody answers on, and make the SocketFile only after your own bind succeeded",
        );
    }
    run.check_finished_cleanly();
    expect_error(
        &run,
        &["not a socket"],
        "say `bind PATH: EADDRINUSE: not a socket, left alone` and exit with status 1",
    );
}

#[test]
fn a_path_too_long_for_sun_path_is_refused_on_one_line() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    // A path of 108 to 150 bytes: sun_path holds 107 and a NUL.
    let total = vary.size(108, 150);
    let name = vary.word(total.saturating_sub(dir.as_os_str().len() + 1).max(1));
    let long = dir.join(&name);
    let greet = lab()
        .cmd_in(sandbox, ["greet"])
        .arg(&long)
        .section(TASK_2)
        .timeout(WAIT)
        .run();
    expect_error(
        &greet,
        &["too long"],
        "check the length against sun_path's 108 bytes (107 and a NUL) and say `… too \
         long …`",
    );
    let made: Vec<String> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !made.is_empty() {
        greet.fail(
            format!("made socket files {made:?} for a path too long to bind"),
            "never cut a path to fit sun_path: that binds another file",
        );
    }
    let abstract_name = format!("@{}", vary.word_in(108, 120));
    for address in [long.to_string_lossy().into_owned(), abstract_name] {
        let run = lab()
            .cmd(["connect", &address])
            .alias(&dir, "[SANDBOX]")
            .section(TASK_2)
            .timeout(WAIT)
            .run();
        expect_error(
            &run,
            &["too long"],
            "a path or an abstract name of 108 bytes or more does not fit in sun_path",
        );
    }
}

#[test]
fn connect_says_why_nobody_answers() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let stale = sandbox.path("stale.sock");
    make_stale_socket(&stale);
    let notes = sandbox.write_file("notes.txt", "not a socket\n");
    let missing = sandbox.path("missing.sock");
    let cases: [(&Path, &[&str], &str); 3] = [
        (
            &missing,
            &["ENOENT", "No such file"],
            "nothing at the path: connect fails with ENOENT",
        ),
        (
            &stale,
            &["ECONNREFUSED", "Connection refused"],
            "a socket file nobody listens on: connect fails with ECONNREFUSED",
        ),
        (
            &notes,
            &["not a socket"],
            "Linux says ECONNREFUSED for a regular file too: look at the file \
             (fs::metadata) and say `connect PATH: not a socket`",
        ),
    ];
    for (path, phrases, why) in cases {
        let run = lab()
            .cmd(["connect"])
            .arg(path)
            .alias(&dir, "[SANDBOX]")
            .section(TASK_2)
            .timeout(WAIT)
            .run();
        expect_error(&run, phrases, why);
        grader::assert_transcript!(run);
    }
}

// ---- TODO 3: frames on a byte stream ------------------------------------------------

/// `unix-sockets send ADDRESS MESSAGES…`, for a server in `elsewhere`.
fn send_cmd(address: &Path, messages: &[String], elsewhere: &Path) -> Cmd {
    lab()
        .cmd(["send"])
        .arg(address)
        .arg("--")
        .args(messages)
        .alias(elsewhere, "[SANDBOX]")
        .section(TASK_3)
        .timeout(WAIT)
        .why_if_timeout(
            "the client waited for ever: write each frame whole (length, then payload), then \
             read the reply's 4-byte length and exactly that many bytes",
        )
}

/// Fails `run` with `what` and `why`, adding `details`.
fn fail_with(run: &Run, what: String, details: Vec<String>, why: &str) -> ! {
    let mut failure = run.failure(what);
    failure.details = details;
    failure.why = Some(why.to_string());
    failure.raise()
}

/// `send` of `messages` to the python3 frame server: python3 must read
/// each length prefix in big-endian order, and `send` must print each
/// reply.
fn check_send_to_python(messages: &[String]) {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let path = sandbox.path("python.sock");
    let mut server = python(PY_FRAME_SERVER, &dir).arg(&path).start();
    server.wait_for_stdout("ready", WAIT);
    let run = send_cmd(&path, messages, &dir).run();
    let heard = server.wait(WAIT);
    let expected_prefixes: String = messages
        .iter()
        .map(|m| format!("frame: prefix {:08x}\n", m.len()))
        .collect();
    if heard.stdout != format!("ready\n{expected_prefixes}end of stream\n") {
        fail_with(
            &run,
            "python3 did not read the frames it expected".to_string(),
            vec![
                format!("python3 printed: {:?}", heard.stdout),
                format!("it expected:     {expected_prefixes:?}"),
            ],
            "each frame starts with the payload's length in 4 bytes, big-endian \
             (u32::to_be_bytes): 5 bytes is 00 00 00 05",
        );
    }
    expect_done(
        &run,
        "read each reply's 4-byte big-endian length, then that many bytes",
    );
    let expected: String = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let reply: String = m.chars().rev().collect();
            format!("reply {}: {} bytes {reply:?}\n", i + 1, m.len())
        })
        .collect();
    if run.stdout != expected {
        fail_with(
            &run,
            format!("printed {:?}, expected {expected:?}", run.stdout),
            Vec::new(),
            "read each reply's 4-byte big-endian length, then exactly that many bytes",
        );
    }
}

#[test]
fn send_frames_each_message_with_a_big_endian_length() {
    let fixed = ["hello", "", "unix domain sockets"].map(String::from);
    check_send_to_python(&fixed);
    let mut vary = Varied::new();
    let count = vary.size(2, 6);
    let mut messages = vary.words(count, 40);
    messages.push(String::new());
    check_send_to_python(&messages);
}

/// `send MESSAGE` to the test's own server, which answers with the reply
/// frame cut at `cuts`, each piece written once the client has read the
/// one before.
fn check_reply_in_pieces(message: &str, cuts: [usize; 3]) {
    let reply: Vec<u8> = reversed(message.as_bytes());
    let reply_frame = frame(&reply);
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let expected_request = frame(message.as_bytes());
    let (path, server) = test_server(&sandbox, move |mut stream| {
        let mut request = vec![0; expected_request.len()];
        stream
            .read_exact(&mut request)
            .map_err(|e| format!("reading the request: {e}"))?;
        if request != expected_request {
            return Err(format!(
                "the request was {request:?}, not {expected_request:?}"
            ));
        }
        let pieces = [
            &reply_frame[..cuts[0]],
            &reply_frame[cuts[0]..cuts[1]],
            &reply_frame[cuts[1]..cuts[2]],
            &reply_frame[cuts[2]..],
        ];
        write_in_pieces(&mut stream, &pieces)?;
        Ok(String::new())
    });
    let run = send_cmd(&path, &[message.to_string()], &dir).run();
    let expected = format!(
        "reply 1: {} bytes {:?}\n",
        reply.len(),
        String::from_utf8_lossy(&reply)
    );
    if run.stdout != expected {
        fail_with(
            &run,
            format!(
                "printed {:?} for a reply sent in 4 pieces (cut at bytes {}, {} and {}), \
                 expected {expected:?}",
                run.stdout, cuts[0], cuts[1], cuts[2]
            ),
            Vec::new(),
            "one read returns what has arrived, which may be part of the length prefix or \
             part of the payload: read again until you have all 4 bytes, then all the \
             payload",
        );
    }
    server_report(
        &run,
        server,
        "the client must send one frame and read the whole reply",
    );
    run.expect_success();
}

#[test]
fn send_reads_a_reply_that_arrives_in_pieces() {
    // "hello, pieces" reversed, as a frame of 4 + 13 bytes: cut inside the
    // length prefix, then twice in the payload.
    check_reply_in_pieces("hello, pieces", [2, 6, 11]);
    let mut vary = Varied::new();
    let message = vary.word_in(10, 60);
    let length = HEADER_LEN + message.len();
    let first = vary.size(1, 3);
    let second = vary.size(first + 2, length - 3);
    let third = vary.size(second + 1, length - 1);
    check_reply_in_pieces(&message, [first, second, third]);
}

#[test]
fn send_refuses_a_reply_over_the_limit_without_waiting_for_it() {
    let mut vary = Varied::new();
    let length = vary.size(MAX_FRAME + 1, u32::MAX as usize) as u32;
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let (path, server) = test_server(&sandbox, move |mut stream| {
        let mut request = [0u8; 4 + 5];
        stream
            .read_exact(&mut request)
            .map_err(|e| format!("reading the request: {e}"))?;
        stream
            .write_all(&length.to_be_bytes())
            .map_err(|e| format!("writing the length: {e}"))?;
        // No payload: a client that waits for it waits until it gives up.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        Ok(String::new())
    });
    let run = send_cmd(&path, &["hello".to_string()], &dir)
        .why_if_timeout(
            "the client waited for a payload it should have refused: compare the length with \
             the limit before reading (or allocating) anything",
        )
        .run();
    server_report(&run, server, "the client sends one frame of 5 bytes");
    expect_error(
        &run,
        &["over the limit"],
        "a length over the limit is refused at once: `a frame of N bytes is over the limit \
         of 65536`",
    );
    if !run.stderr.contains(&length.to_string()) {
        run.fail(
            format!("did not name the length it refused ({length})"),
            "say `a frame of N bytes is over the limit of 65536`, with the length read",
        );
    }
}

/// `send hello` to the test's own server, which answers with `cut` bytes
/// of a reply frame of `length` bytes of payload, then closes.
fn check_reply_cut_short(length: usize, cut: usize) {
    let phrase = if cut < HEADER_LEN {
        "middle of a length prefix"
    } else {
        "middle of a frame"
    };
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let mut reply = frame(&vec![b'x'; length]);
    reply.truncate(cut);
    let (path, server) = test_server(&sandbox, move |mut stream| {
        let mut request = [0u8; 4 + 5];
        stream
            .read_exact(&mut request)
            .map_err(|e| format!("reading the request: {e}"))?;
        stream
            .write_all(&reply)
            .map_err(|e| format!("writing the reply: {e}"))?;
        Ok(String::new())
    });
    let run = send_cmd(&path, &["hello".to_string()], &dir).run();
    server_report(&run, server, "the client sends one frame of 5 bytes");
    let why = "end-of-file between two frames is the normal end; end-of-file inside one is \
               an error: `the peer left in the middle of a length prefix` or `… in the \
               middle of a frame`";
    if !run.stderr.contains(phrase) {
        fail_with(
            &run,
            format!(
                "did not report `{phrase}` when the server left after {cut} bytes of a reply \
                 of {} bytes",
                length + HEADER_LEN
            ),
            Vec::new(),
            why,
        );
    }
    expect_error(&run, &[phrase], why);
}

#[test]
fn send_reports_a_server_that_leaves_in_the_middle_of_a_reply() {
    check_reply_cut_short(10, 8);
    check_reply_cut_short(10, 2);
    let mut vary = Varied::new();
    let length = vary.size(10, 200);
    let cut = vary.size(HEADER_LEN + 1, HEADER_LEN + length - 1);
    check_reply_cut_short(length, cut);
    let cut = vary.size(1, HEADER_LEN - 1);
    check_reply_cut_short(length, cut);
}

// ---- TODO 4: credentials and descriptors --------------------------------------------

/// Starts `share ADDRESS FILE` in `sandbox`; returns it once it listens.
fn start_share(sandbox: Sandbox, address: &str, file: &Path, extra: &[&str]) -> Running {
    let mut share = lab()
        .cmd_in(sandbox, ["share", address])
        .arg(file)
        .args(extra)
        .section(TASK_4)
        .start();
    share.wait_for_stdout("share: listening on", WAIT);
    share
}

/// The `fetch:` line that starts with `prefix`, without it.
fn fetched<'a>(run: &'a Run, prefix: &str) -> Option<&'a str> {
    run.stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("fetch: {prefix}")))
}

#[test]
fn fetch_reads_a_file_it_may_not_open_through_a_passed_descriptor() {
    let mut vary = Varied::new();
    let contents = vary.bytes(1000);
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let secret = sandbox.write_file("secret", &contents);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("grader: chmod 600");
    let path = sandbox.path("share.sock");
    let share = start_share(
        sandbox,
        path.to_str().unwrap_or_default(),
        &secret,
        &["--clients", "1"],
    );
    // The server has opened the file; from now on nobody may open it.
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("grader: chmod 000");
    let run = lab()
        .cmd(["fetch"])
        .arg(&path)
        .alias(&dir, "[SANDBOX]")
        .obey_file_permissions()
        .section(TASK_4)
        .timeout(WAIT)
        .run();
    let share = share.wait(WAIT);
    expect_done(
        &run,
        "the share server sends one byte, `+`, with a control message SCM_RIGHTS that holds \
         the descriptor; receive both with one recvmsg that has room for a descriptor \
         (cmsg_space!(RawFd))",
    );
    share.expect_success();
    let expected = [
        "fetch: this process may not open it by name: Permission denied (os error 13)".to_string(),
        format!(
            "fetch: read 1000 bytes through the descriptor, FNV-1a {:#018x}",
            fnv1a(&contents)
        ),
    ];
    for line in &expected {
        if !run.stdout.lines().any(|l| l == line) {
            run.fail(
                format!("did not print `{line}`"),
                "the descriptor the server sent refers to the file it opened before the \
                 mode was 000: permissions are checked when a file is opened, not when a \
                 descriptor is used",
            );
        }
    }
    assert_masked!(run);
    assert_masked!(share);
}

#[test]
fn fetch_names_the_server_by_its_credentials() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let file = sandbox.write_file("shared.txt", "shared\n");
    let path = sandbox.path("share.sock");
    let share = start_share(
        sandbox,
        path.to_str().unwrap_or_default(),
        &file,
        &["--clients", "1"],
    );
    let server_pid = share.pid();
    let run = lab()
        .cmd(["fetch"])
        .arg(&path)
        .alias(&dir, "[SANDBOX]")
        .section(TASK_4)
        .timeout(WAIT)
        .run();
    share.wait(WAIT).expect_success();
    run.expect_success();
    let named = fetched(&run, "the server is ");
    let expected = format!("pid {server_pid}, your uid");
    if named != Some(expected.as_str()) {
        run.fail(
            format!("said the server is {named:?}, expected {expected:?}"),
            "getsockopt(SO_PEERCRED) on a client's socket gives the pid and uid of the \
             process that called listen: the server",
        );
    }
}

#[test]
fn share_hands_python_a_descriptor_it_can_read() {
    let mut vary = Varied::new();
    let contents = vary.bytes_in(1, 5000);
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let file = sandbox.write_file("shared.bin", &contents);
    let path = sandbox.path("share.sock");
    let share = start_share(
        sandbox,
        path.to_str().unwrap_or_default(),
        &file,
        &["--clients", "1"],
    );
    let client = python(PY_FD_CLIENT, &dir).arg(&path).section(TASK_4).run();
    let share = share.wait(WAIT);
    share.expect_success();
    client.expect_success();
    let expected = format!(
        "python: byte b'+' with 1 descriptor(s)\npython: read {} bytes, FNV-1a {:#018x}\n",
        contents.len(),
        fnv1a(&contents)
    );
    if !client.stdout.ends_with(&expected) {
        let mut failure = share.failure("python3 did not receive the file's descriptor");
        failure
            .details
            .push(format!("python3 printed: {:?}", client.stdout));
        failure
            .details
            .push(format!("expected it to end with {expected:?}"));
        failure.why = Some(
            "send one byte, b'+', with one control message SCM_RIGHTS holding the \
             descriptor, in one sendmsg"
                .to_string(),
        );
        failure.raise();
    }
    let python_pid = client
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("python: pid "))
        .unwrap_or("?");
    let logged = format!("share: client 1 (pid {python_pid}, your uid): sent the descriptor");
    if !share.stdout.lines().any(|line| line == logged) {
        share.fail(
            format!("did not log `{logged}`"),
            "peer_credentials (SO_PEERCRED) on the accepted connection gives the client's pid",
        );
    }
}

#[test]
fn fetch_uses_a_descriptor_python_passes() {
    let mut vary = Varied::new();
    let contents = vary.bytes_in(1, 5000);
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let file = sandbox.write_file("python.bin", &contents);
    let path = sandbox.path("python.sock");
    let mut server = python(PY_FD_SERVER, &dir)
        .args(["pass"])
        .arg(&path)
        .arg(&file)
        .section(TASK_4)
        .start();
    server.wait_for_stdout("ready", WAIT);
    let run = lab()
        .cmd(["fetch"])
        .arg(&path)
        .alias(&dir, "[SANDBOX]")
        .section(TASK_4)
        .timeout(WAIT)
        .run();
    let server = server.wait(WAIT);
    expect_done(
        &run,
        "python3 sends one byte with one descriptor in an SCM_RIGHTS control message: \
         recvmsg with room for it (cmsg_space!(RawFd)), and take it out of \
         ControlMessageOwned::ScmRights",
    );
    let expected = format!(
        "read {} bytes through the descriptor, FNV-1a {:#018x}",
        contents.len(),
        fnv1a(&contents)
    );
    if !run
        .stdout
        .lines()
        .any(|line| line == format!("fetch: {expected}"))
    {
        run.fail(
            format!("did not print `fetch: {expected}`"),
            "recvmsg with room for one descriptor (cmsg_space!(RawFd)); the descriptor comes \
             in a ControlMessageOwned::ScmRights",
        );
    }
    let python_pid = server
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("python: pid "))
        .unwrap_or("?");
    let named = fetched(&run, "the server is ");
    let expected = format!("pid {python_pid}, your uid");
    if named != Some(expected.as_str()) {
        run.fail(
            format!("said the server is {named:?}, expected {expected:?}"),
            "SO_PEERCRED names the process that called listen: here, python3",
        );
    }
}

#[test]
fn fetch_reports_every_answer_that_is_not_a_descriptor() {
    for (how, phrase, why) in [
        (
            "no-descriptor",
            "no descriptor",
            "a `+` without an SCM_RIGHTS message: `the server sent no descriptor`",
        ),
        (
            "refuse",
            "the server refused: not today: the file is being rebuilt",
            "a `-`: read the rest, the reason, and fail with `the server refused: REASON`",
        ),
        (
            "silent",
            "without a word",
            "recvmsg returned 0 bytes: `the server closed the connection without a word`",
        ),
    ] {
        let sandbox = Sandbox::new();
        let dir = sandbox.dir().to_path_buf();
        let path = sandbox.path("python.sock");
        let mut server = python(PY_FD_SERVER, &dir)
            .arg(how)
            .arg(&path)
            .arg("-")
            .section(TASK_4)
            .start();
        server.wait_for_stdout("ready", WAIT);
        let run = lab()
            .cmd(["fetch"])
            .arg(&path)
            .alias(&dir, "[SANDBOX]")
            .section(TASK_4)
            .timeout(WAIT)
            .run();
        server.wait(WAIT);
        expect_error(&run, &[phrase], why);
    }
}

/// The command that runs the lab's program as `nobody` (uid 65534), if
/// this process is root, `setpriv` is installed and `nobody` may run the
/// program where it is; `None` otherwise, after the one line that says
/// why the other-user half of a test is skipped.
fn as_nobody() -> Option<Cmd> {
    // SAFETY: geteuid takes no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let why = if !root {
        "only root can start one"
    } else if !installed("setpriv") {
        "setpriv (util-linux) is not installed"
    } else {
        let probe = nobody().arg("--version").run_unchecked();
        if probe.code() == Some(0) {
            return Some(nobody());
        }
        "nobody may not run the program where it is built"
    };
    println!("skipped the client of another user: {why}; checked this user's client instead");
    None
}

/// `setpriv … PROGRAM`: the lab's program as uid and gid 65534, without
/// supplementary groups or capabilities.
fn nobody() -> Cmd {
    let lab = lab();
    Cmd::new("setpriv", Sandbox::new())
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&lab.bin)
        .alias(&lab.bin, "unix-sockets")
        .chapter(CHAPTER)
        .timeout(WAIT)
}

#[test]
fn share_refuses_a_client_of_another_user() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("shared.txt", "for my user only\n");
    // An abstract name has no permission bits: any user may connect.
    let name = sandbox.abstract_name("share");
    let other = as_nobody();
    let clients = if other.is_some() { "2" } else { "1" };
    let share = start_share(sandbox, &name, &file, &["--clients", clients]);
    if let Some(nobody) = other {
        let refused = nobody.args(["fetch", &name]).section(TASK_4).run();
        expect_error(
            &refused,
            &["refused"],
            "the share server refuses a client whose SO_PEERCRED uid is not its own",
        );
    }
    let mine = lab()
        .cmd(["fetch", &name])
        .section(TASK_4)
        .timeout(WAIT)
        .run();
    mine.expect_success();
    let share = share.wait(WAIT);
    share.expect_success();
    if clients == "2" && !share.stderr.contains("refused: uid 65534") {
        share.fail(
            "did not log the refusal of uid 65534",
            "compare peer_credentials(...).uid with geteuid()",
        );
    }
}

// ---- TODO 5: a server for many clients ----------------------------------------------

/// Starts `serve ADDRESS ARGS…`; returns it once it listens.
fn start_serve(sandbox: Sandbox, address: &str, extra: &[&str]) -> Running {
    let mut serve = lab()
        .cmd_in(sandbox, ["serve", address])
        .args(extra)
        .section(TASK_5)
        .start();
    serve.wait_for_stdout("serve: listening on", WAIT);
    serve
}

/// Connects a client of the test to the server; fails the test if it
/// cannot.
fn serve_client(server: &Running, address: &str) -> UnixStream {
    connect_to(address).unwrap_or_else(|e| {
        server.fail(
            format!("a client of the test could not connect: {e}"),
            "the server listens until it has served --clients connections",
        )
    })
}

/// Sends `payload` as a frame on `stream` and checks the reply.
fn expect_answer(server: &Running, stream: &mut UnixStream, payload: &[u8], who: &str) {
    let answer = stream
        .write_all(&frame(payload))
        .and_then(|()| read_reply(stream));
    match answer {
        Ok(reply) if reply == reversed(payload) => {}
        Ok(reply) => {
            let mut failure = server.failure(format!(
                "answered {who}'s frame of {} bytes with {} bytes that are not its bytes \
                 reversed",
                payload.len(),
                reply.len()
            ));
            failure.why = Some(
                "read a whole frame (4-byte big-endian length, then the payload), reverse \
                 the payload, write it back as a frame"
                    .to_string(),
            );
            failure.raise();
        }
        Err(_) => {
            let mut failure =
                server.failure(format!("{who} got no answer within {} s", WAIT.as_secs()));
            failure.why = Some(
                "answer each whole frame at once; serve each client in a thread of its own, \
                 so that no client waits for another"
                    .to_string(),
            );
            failure.raise();
        }
    }
}

#[test]
fn serve_answers_python_and_standard_tools() {
    let mut vary = Varied::new();
    let count = vary.size(1, 5);
    let messages = vary.words(count, 30);
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let path = sandbox.path("serve.sock");
    let address = path.to_string_lossy().into_owned();
    let mut peers = vec!["python3"];
    for tool in ["socat", "nc"] {
        if installed(tool) {
            peers.push(tool);
        } else {
            println!("skipped {tool}: it is not installed here (python3 stands in for it)");
        }
    }
    let clients = peers.len().to_string();
    let server = start_serve(sandbox, &address, &["--clients", &clients]);
    let client = python(PY_FRAME_CLIENT, &dir)
        .arg(&address)
        .args(&messages)
        .section(TASK_5)
        .run();
    client.expect_success();
    let expected: String = messages
        .iter()
        .map(|m| format!("python: reply {}\n", m.chars().rev().collect::<String>()))
        .collect();
    if !client.stdout.ends_with(&expected) {
        let mut failure = server.failure("python3 got other replies than expected");
        failure
            .details
            .push(format!("python3 printed: {:?}", client.stdout));
        failure.details.push(format!("expected: {expected:?}"));
        failure.why = Some("answer each frame with its payload reversed, as a frame".into());
        failure.raise();
    }
    let python_pid = client
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("python: pid "))
        .unwrap_or("?")
        .to_string();
    // `printf` writes the frame with octal escapes: 5 is \000\000\000\005.
    let tools_script = r#"
frame='\000\000\000\005hello'
case $1 in
socat) printf "$frame" | socat -t 5 - "UNIX-CONNECT:$0" | od -An -c ;;
nc) printf "$frame" | nc -U -N "$0" 2>/dev/null | od -An -c ;;
esac"#;
    for tool in &peers[1..] {
        let run = Cmd::new("sh", Sandbox::new())
            .args(["-c", tools_script])
            .arg(&address)
            .arg(tool)
            .alias(&dir, "[SANDBOX]")
            .timeout(WAIT)
            .section(TASK_5)
            .run();
        let words: Vec<&str> = run.stdout.split_whitespace().collect();
        if words != ["\\0", "\\0", "\\0", "005", "o", "l", "l", "e", "h"] {
            run.fail(
                format!("{tool} did not get the reply `\\0\\0\\0\\005olleh`"),
                "the wire format is the book's: a 4-byte big-endian length, then the bytes",
            );
        }
    }
    let run = server.wait(WAIT);
    run.expect_success();
    let logged = format!("serve: client 1 (pid {python_pid}, your uid): {count} frame(s) answered");
    if !run.stdout.lines().any(|line| line == logged) {
        run.fail(
            format!("did not log `{logged}` for the python3 client"),
            "the pid comes from SO_PEERCRED (peer_credentials) on the accepted connection",
        );
    }
}

#[test]
fn serve_answers_clients_that_are_all_connected_at_once() {
    let mut vary = Varied::new();
    let count = 5;
    let sandbox = Sandbox::new();
    let address = sandbox.abstract_name("serve");
    let server = start_serve(sandbox, &address, &["--clients", &count.to_string()]);
    let mut clients: Vec<UnixStream> = (0..count)
        .map(|_| serve_client(&server, &address))
        .collect();
    // The last one to connect speaks first, while all the others are
    // connected and silent: a server that serves one client at a time
    // never gets to it. Then the others, in a random order, twice.
    let mut order: Vec<usize> = (0..count - 1).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, vary.size(0, i));
    }
    order.insert(0, count - 1);
    for round in 0..2 {
        for &i in &order {
            let payload = vary.bytes_in(0, 300);
            let who = if round == 0 && i == count - 1 {
                format!(
                    "client {count} of {count}, while the {} others stayed connected and \
                     silent,",
                    count - 1
                )
            } else {
                format!("client {} of {count}", i + 1)
            };
            expect_answer(&server, &mut clients[i], &payload, &who);
        }
    }
    drop(clients);
    let run = server.wait(WAIT);
    run.expect_success();
    let summary = format!(
        "serve: {count} client(s): {} frame(s) answered, 0 refused, 0 dropped",
        2 * count
    );
    if run.stdout.lines().last() != Some(summary.as_str()) {
        run.fail(
            format!("did not end with `{summary}`"),
            "join every client's thread and count each report in the Tally",
        );
    }
}

#[test]
fn serve_reads_frames_cut_anywhere_and_frames_sent_together() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let address = sandbox.abstract_name("serve");
    let server = start_serve(sandbox, &address, &["--clients", "1"]);
    let mut client = serve_client(&server, &address);

    // One frame in four pieces: a cut inside the length prefix, two in the
    // payload. Each piece is read by the server before the next is sent.
    let payload = vary.bytes_in(10, 2000);
    let bytes = frame(&payload);
    let first = vary.size(1, 3);
    let second = vary.size(first + 2, bytes.len() - 3);
    let third = vary.size(second + 1, bytes.len() - 1);
    let pieces = [
        &bytes[..first],
        &bytes[first..second],
        &bytes[second..third],
        &bytes[third..],
    ];
    if let Err(trouble) = write_in_pieces(&mut client, &pieces) {
        let mut failure = server.failure(format!("did not read a frame sent in pieces: {trouble}"));
        failure.why = Some("read until the frame is whole".into());
        failure.raise();
    }
    match read_reply(&mut client) {
        Ok(reply) if reply == reversed(&payload) => {}
        other => {
            let mut failure = server.failure(format!(
                "answered a frame of {} bytes sent in 4 pieces (cut at {first}, {second} and \
                 {third}) with {:?}",
                payload.len(),
                other.map(|r| r.len())
            ));
            failure.why = Some(
                "one read returns what has arrived, perhaps part of the length prefix or of \
                 the payload: read again until you have all 4 bytes, then all the payload"
                    .into(),
            );
            failure.raise();
        }
    }

    // Three frames in one write: three answers.
    let payloads: Vec<Vec<u8>> = (0..3).map(|_| vary.bytes_in(0, 100)).collect();
    let together: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
    let _ = client.write_all(&together);
    for (i, payload) in payloads.iter().enumerate() {
        match read_reply(&mut client) {
            Ok(reply) if reply == reversed(payload) => {}
            other => {
                let mut failure = server.failure(format!(
                    "three frames sent in one write: answer {} was {:?}, expected {} bytes",
                    i + 1,
                    other.map(|r| r.len()),
                    payload.len()
                ));
                failure.why = Some(
                    "one read may return several frames: read exactly one frame's bytes at a \
                     time, and keep the rest for the next"
                        .into(),
                );
                failure.raise();
            }
        }
    }
    drop(client);
    let run = server.wait(WAIT);
    run.expect_success();
}

#[test]
fn serve_drops_a_client_that_leaves_mid_frame_and_serves_the_next() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let path = sandbox.path("serve.sock");
    let address = path.to_string_lossy().into_owned();
    let server = start_serve(sandbox, &address, &["--clients", "2"]);
    let length = vary.size(2, 1000);
    let sent = vary.size(1, length - 1);
    let mut leaver = serve_client(&server, &address);
    let mut half = frame(&vary.bytes(length));
    half.truncate(4 + sent);
    let _ = leaver.write_all(&half);
    drop(leaver);
    let mut next = serve_client(&server, &address);
    let payload = vary.bytes_in(1, 100);
    expect_answer(&server, &mut next, &payload, "the next client");
    drop(next);
    let run = server.wait(WAIT);
    run.expect_success();
    let logged = format!("the peer left in the middle of a frame ({sent} of {length} bytes)");
    if !run.stderr.contains("middle of a frame") {
        run.fail(
            format!("did not report `{logged}` on stderr"),
            "end-of-file inside a frame is an error: the client is dropped with \
             End::Dropped, and reported on stderr",
        );
    }
    if !run
        .stdout
        .contains("serve: 2 client(s): 1 frame(s) answered, 0 refused, 1 dropped")
    {
        run.fail(
            "did not end with `serve: 2 client(s): 1 frame(s) answered, 0 refused, 1 dropped`"
                .to_string(),
            "one client dropped, one answered",
        );
    }
}

#[test]
fn serve_refuses_a_length_over_the_limit_without_allocating_it() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let address = sandbox.abstract_name("serve");
    let server = start_serve(sandbox, &address, &["--clients", "2"]);
    let length = (u32::MAX - vary.size(0, 1000) as u32).to_be_bytes();
    let mut greedy = serve_client(&server, &address);
    let _ = greedy.write_all(&length);
    // The server must close this connection without waiting for 4 GiB.
    let mut rest = [0u8; 16];
    let closed = match greedy.read(&mut rest) {
        Ok(0) => true,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        _ => false,
    };
    let peak = vm_peak_kib(server.pid());
    if peak.is_some_and(|kib| kib > VM_LIMIT_KIB) {
        server.fail(
            format!(
                "grew past {} MiB of virtual memory when a client sent a length of almost \
                 4 GiB",
                VM_LIMIT_KIB >> 10
            ),
            "compare the length with MAX_FRAME before allocating anything: the peer chose it",
        );
    }
    if !closed {
        server.fail(
            format!(
                "did not close a connection whose frame length was {} bytes",
                u32::from_be_bytes(length)
            ),
            "a length over MAX_FRAME is refused at once: drop the client (End::Dropped), \
             which closes its connection",
        );
    }
    // A frame of exactly the limit is fine, and the server still serves.
    let mut next = serve_client(&server, &address);
    let payload = vary.bytes(MAX_FRAME);
    expect_answer(&server, &mut next, &payload, "the next client");
    drop(next);
    let run = server.wait(WAIT);
    run.expect_success();
    if !run.stderr.contains("over the limit") {
        run.fail(
            "did not report the length over the limit on stderr",
            "say `a frame of N bytes is over the limit of 65536`",
        );
    }
}

#[test]
fn serve_survives_a_client_that_leaves_before_its_answer() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let address = sandbox.abstract_name("serve");
    let server = start_serve(sandbox, &address, &["--clients", "2"]);
    // A client that will never read its answer: shutdown(SHUT_RD) first
    // makes the server's write fail with EPIPE, every time (closing
    // instead would race with the server's answer).
    let mut leaver = serve_client(&server, &address);
    let _ = leaver.shutdown(std::net::Shutdown::Read);
    let _ = leaver.write_all(&frame(&vary.bytes_in(1, MAX_FRAME)));
    let mut next = serve_client(&server, &address);
    let payload = vary.bytes_in(1, 100);
    expect_answer(&server, &mut next, &payload, "the next client");
    drop(next);
    drop(leaver);
    let run = server.wait(WAIT);
    run.expect_success();
    let summary = "serve: 2 client(s): 1 frame(s) answered, 0 refused, 1 dropped";
    if run.stdout.lines().last() != Some(summary) {
        run.fail(
            format!("did not end with `{summary}`"),
            "a write to a client that is gone fails with EPIPE (Rust ignores SIGPIPE): \
             drop that client (End::Dropped) and go on",
        );
    }
}

#[test]
fn serve_serves_only_its_own_user() {
    let mut vary = Varied::new();
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let address = sandbox.abstract_name("serve");
    let other = as_nobody();
    let clients = if other.is_some() { "2" } else { "1" };
    let server = start_serve(sandbox, &address, &["--clients", clients]);
    if let Some(nobody) = other {
        let refused = nobody
            .args(["send", &address, "let me in"])
            .section(TASK_5)
            .run_unchecked();
        if refused.stdout.contains("reply 1") {
            server.fail(
                "answered a client of uid 65534",
                "compare the client's SO_PEERCRED uid with geteuid() before reading anything",
            );
        }
    }
    let message = vary.word_in(1, 20);
    let mine = python(PY_FRAME_CLIENT, &dir)
        .arg(&address)
        .arg(&message)
        .section(TASK_5)
        .run();
    mine.expect_success();
    let run = server.wait(WAIT);
    run.expect_success();
    if clients == "2" && !run.stderr.contains("uid 65534): refused") {
        run.fail(
            "did not report the client of uid 65534 as refused",
            "End::Refused for a uid other than allowed_uid",
        );
    }
}

#[test]
fn serve_stops_after_its_clients_and_removes_its_socket_file() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir().to_path_buf();
    let path = sandbox.path("serve.sock");
    let address = path.to_string_lossy().into_owned();
    let server = start_serve(sandbox, &address, &["--clients", "2"]);
    for words in [&["hello", "world"][..], &["unix", "", "sockets"][..]] {
        python(PY_FRAME_CLIENT, &dir)
            .arg(&address)
            .args(words)
            .section(TASK_5)
            .run()
            .expect_success();
    }
    let run = server.wait(WAIT);
    run.expect_success();
    assert_masked!(run);
}

#[test]
fn serve_removes_its_socket_file_on_sigint() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("serve.sock");
    let address = path.to_string_lossy().into_owned();
    let mut server = start_serve(sandbox, &address, &[]);
    if let Blocked::Exited(status) = server.wait_until_blocked(WAIT) {
        server.fail(
            format!("ended ({status}) before it was sent SIGINT"),
            "serve runs until a signal when --clients is not given",
        );
    }
    server.signal(libc::SIGINT);
    let run = server.wait_unchecked(WAIT);
    if run
        .leaks
        .iter()
        .any(|leak| leak.kind == LeakKind::SocketFile)
    {
        run.fail(
            "left its socket file on disk after SIGINT",
            "make the SocketFile right after bind; stop.rs removes its path on SIGINT",
        );
    }
    run.check_finished_cleanly();
    if run.signal() != Some(libc::SIGINT) {
        run.fail(
            "did not die of SIGINT",
            "stop.rs raises the signal again once the file is gone",
        );
    }
    assert_transcript!(run);
}
