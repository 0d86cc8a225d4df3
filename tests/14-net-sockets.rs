//! Grading suite of lab 14 (network sockets).
//!
//! Compiled into both the lab (`labs/14-net-sockets`) and the reference
//! solution; every test runs the program as a black box through the
//! grader, which also fails a test when a process or a zombie is left
//! behind.
//!
//! Every server binds port 0 and says which port it got (`NAME: listening
//! on 127.0.0.1:PORT`); no test uses a fixed port, so that tests running
//! at once never meet. The other side of a socket is never the lab's own
//! code when it need not be: it is python3 (its `socket` and
//! `socketserver` modules, speaking the wire format the book documents),
//! `socat` or `nc` where they are installed, or this test process itself,
//! where a test must control each byte (a frame cut into pieces, a peer
//! that leaves half-way). Such a test waits until the lab has read each
//! piece by asking the kernel how many received bytes its socket holds
//! unread (`rx_queue` in `/proc/net/tcp`), never by sleeping.
//!
//! One test runs a server and a client on two "hosts": two network
//! namespaces joined by a veth pair, made inside a private mount and
//! network namespace (`unshare`) that the kernel removes, with everything
//! in it, when the test's processes end. Where the machine does not allow
//! that, the test says so in one line and runs the same conversation on
//! the loopback interface.
//!
//! Inputs that a fixed transcript could fake (messages, numbers, ports,
//! addresses, file contents, where a frame is cut, which datagrams are
//! lost) come from `grader::Varied`: a failure prints the seed, and
//! `WORKBOOK_SEED=N cargo test` repeats a run.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use grader::{Cmd, Lab, Run, Running, Sandbox, Varied, assert_transcript};

const CHAPTER: &str = "14-net-sockets.md";

const TASK_1: &str = "Task 1: names and addresses: getaddrinfo";
const TASK_2: &str = "Task 2: listen and connect";
const TASK_3: &str = "Task 3: frames on a TCP stream";
const TASK_4: &str = "Task 4: a pipelined client";
const TASK_5: &str = "Task 5: a server for many clients";
const TASK_6: &str = "Task 6: UDP: lost, duplicated, truncated";
const ACROSS: &str = "Across hosts: two network namespaces";

/// How long anything may take: a server to say it listens, a reply to
/// come, a client to finish. Everything here takes milliseconds.
const WAIT: Duration = Duration::from_secs(5);

/// The protocol's limits, written out again here.
const MAX_BODY: usize = 64 * 1024;
const MAX_DATAGRAM: usize = 1472;

/// A server that allocated a length a peer sent would have grown past
/// this much virtual memory (a lab server with a few threads stays well
/// under 1 GiB; the length sent is nearly 4 GiB).
const VM_LIMIT_KIB: u64 = 3 << 20;

/// Values that change from run to run, replaced in snapshots once the
/// tests have checked them: ports (after an address, or after a host on a
/// command line), checksums.
const FILTERS: &[(&str, &str)] = &[
    (r"(127\.0\.0\.1|\]|192\.0\.2\.\d):\d+", "$1:[PORT]"),
    (
        r"(127\.0\.0\.1|::1|localhost|192\.0\.2\.1) \d+",
        "$1 [PORT]",
    ),
    (r"port \d+", "port [PORT]"),
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

// ---- seeded inputs --------------------------------------------------------------

/// `count` words (`fewest` to `most` of them) of 0 to `longest` characters.
fn words_in(vary: &mut Varied, fewest: usize, most: usize, longest: usize) -> Vec<String> {
    let count = vary.size(fewest, most);
    vary.words(count, longest)
}

// ---- shared checks ----------------------------------------------------------------

/// Fails unless the program reported an error on exactly one line that
/// starts with `net-sockets: ` and contains one of `phrases`, and exited
/// with status `code`.
fn expect_error(run: &Run, code: i32, phrases: &[&str], why: &str) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    let one_line = lines.len() == 1 && lines[0].starts_with("net-sockets: ");
    if run.code() != Some(code) || !one_line || !phrases.iter().any(|p| run.stderr.contains(p)) {
        run.fail(
            format!(
                "expected one line `net-sockets: …{}…` on stderr and exit status {code}",
                phrases.join("…` or `…")
            ),
            why,
        );
    }
}

/// Fails unless `run` exited with status 0; its last words are the likely
/// cause, `why` says what usually lies behind them.
fn expect_done(run: &Run, why: &str) {
    if run.code() != Some(0) {
        let last = run.stderr.lines().last().unwrap_or("nothing on stderr");
        let status = match (run.code(), run.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "an unknown status".to_string(),
        };
        run.fail(format!("ended with {status}: {last}"), why);
    }
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

/// How many descriptors process `pid` has open (`/proc/PID/fd`).
fn descriptors(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// FNV-1a, 64 bits, as the lab computes it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether IPv6 works on this machine's loopback interface (`::1` can be
/// bound); some containers have IPv6 switched off.
fn ipv6_loopback() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

// ---- what the kernel says about TCP sockets ------------------------------------

/// One socket of `/proc/net/tcp` or `/proc/net/tcp6`: its ports, its state
/// (`01` established, `06` TIME_WAIT, `0A` listening) and how many bytes it
/// received that its process has not read yet.
struct TcpEntry {
    local_port: u16,
    remote_port: u16,
    state: String,
    unread: u64,
}

/// Every TCP socket of this network namespace.
fn tcp_sockets() -> Vec<TcpEntry> {
    let mut entries = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |field: Option<&&str>| {
                field
                    .and_then(|f| f.rsplit(':').next())
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok())
            };
            let queue = |index: usize| {
                fields
                    .get(4)
                    .and_then(|queues| queues.split(':').nth(index))
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            };
            if let (Some(local_port), Some(remote_port), Some(state), Some(unread)) = (
                port(fields.get(1)),
                port(fields.get(2)),
                fields.get(3),
                queue(1),
            ) {
                entries.push(TcpEntry {
                    local_port,
                    remote_port,
                    state: state.to_string(),
                    unread,
                });
            }
        }
    }
    entries
}

/// Waits until the socket on `local_port` connected to `remote_port` has
/// read every byte it received; an error after [`WAIT`].
fn wait_until_read(local_port: u16, remote_port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let unread = tcp_sockets()
            .into_iter()
            .find(|e| e.local_port == local_port && e.remote_port == remote_port)
            .map(|e| e.unread);
        match unread {
            Some(0) => return Ok(()),
            _ if Instant::now() < deadline => thread::sleep(Duration::from_micros(300)),
            Some(left) => {
                return Err(format!(
                    "{what} was still unread after {} s ({left} bytes)",
                    WAIT.as_secs()
                ));
            }
            None => return Err(format!("{what}: the connection is gone")),
        }
    }
}

// ---- peers: python3, socat, nc --------------------------------------------------

/// Whether `program` can be run.
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

/// `python3 -S -c SCRIPT ARGS…` in a sandbox of its own. (`-S`: no site
/// packages, a faster start; the scripts need the standard library only.)
fn python(script: &str) -> Cmd {
    Cmd::new(python_interpreter(), Sandbox::new())
        .args(["-S", "-c", script])
        .display_name("python3")
        .timeout(WAIT)
        .chapter(CHAPTER)
}

/// The address a server announced on its first line (`NAME: listening on
/// ADDRESS`), once it has.
fn wait_listening(server: &mut Running) -> SocketAddr {
    let out = server.wait_for_stdout("listening on ", WAIT);
    let address = out
        .lines()
        .find_map(|line| line.split("listening on ").nth(1))
        .and_then(|text| text.trim().parse::<SocketAddr>().ok());
    match address {
        Some(address) if address.port() != 0 => address,
        _ => server.fail(
            "did not say `listening on ADDRESS:PORT` with the port it got",
            "bind port 0, then ask the kernel which port it chose (TcpListener::local_addr, \
             getsockname): the given code prints it",
        ),
    }
}

/// Starts the lab's program with `args` and waits until it listens.
fn start(section: &str, args: &[&str]) -> (Running, SocketAddr) {
    let mut server = lab().cmd(args).section(section).start();
    let address = wait_listening(&mut server);
    (server, address)
}

/// The lab's program with `args`, then `host` and `port` (a client).
fn client(section: &str, command: &str, address: SocketAddr, rest: &[String]) -> Cmd {
    let mut args = vec![
        command.to_string(),
        address.ip().to_string(),
        address.port().to_string(),
    ];
    args.extend(rest.iter().cloned());
    lab().cmd(args).section(section).timeout(WAIT)
}

/// A python3 server, one connection, in the book's wire format: 4-byte
/// big-endian lengths, bodies `E…` (echo) and `S…` (sum of `>q` numbers).
/// It prints each request's length prefix in hex as it reads it. `argv[1]`
/// says how it behaves:
///
/// * `answer`: answers each request at once (`socketserver`);
/// * `after-eof`: reads requests until end-of-file, then answers them all;
/// * `small-buffers`: `answer`, with 64 KiB socket buffers, so that a
///   client that writes everything before it reads anything fills them;
/// * `reset-after-1`: reads one request, then resets the connection
///   (`SO_LINGER` 0, then close);
/// * `one-answer`: reads requests until end-of-file, answers the first
///   only, then closes.
const PY_SERVER: &str = r#"
import socket, socketserver, struct, sys
mode = sys.argv[1]

def answer(body):
    if not body:
        return b"-an empty request"
    op, argument = body[:1], body[1:]
    if op == b"E":
        return b"+" + argument
    if op == b"S" and len(argument) % 8 == 0:
        total = sum(struct.unpack(">%dq" % (len(argument) // 8), argument))
        if -2**63 <= total < 2**63:
            return b"+" + struct.pack(">q", total)
        return b"-the sum overflows a 64-bit integer"
    return b"-cannot do that"

class Handler(socketserver.StreamRequestHandler):
    def read_request(self):
        prefix = self.rfile.read(4)
        if len(prefix) < 4:
            return None
        length = struct.unpack(">I", prefix)[0]
        print("python: prefix", prefix.hex(), flush=True)
        if length > 65536:
            print("python: a length of", length, "is over the limit: not big-endian?", flush=True)
            return None
        return self.rfile.read(length)

    def send(self, body):
        self.wfile.write(struct.pack(">I", len(body)) + body)

    def handle(self):
        requests = 0
        if mode in ("after-eof", "one-answer"):
            bodies = []
            while (body := self.read_request()) is not None:
                bodies.append(body)
            print("python: end-of-file after", len(bodies), "request(s)", flush=True)
            for body in bodies[:1] if mode == "one-answer" else bodies:
                self.send(answer(body))
            return
        while (body := self.read_request()) is not None:
            requests += 1
            if mode == "reset-after-1":
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                self.wfile.close()
                self.request.close()
                print("python: reset the connection", flush=True)
                return
            self.send(answer(body))
        print("python: end-of-file after", requests, "request(s)", flush=True)

class Server(socketserver.TCPServer):
    def server_bind(self):
        if mode == "small-buffers":
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                self.socket.setsockopt(socket.SOL_SOCKET, option, 65536)
        super().server_bind()

with Server(("127.0.0.1", 0), Handler) as server:
    print("python: listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.timeout = 5
    server.handle_request()
"#;

/// Starts [`PY_SERVER`] in `mode`, and waits until it listens.
fn start_python_server(mode: &str, section: &str) -> (Running, SocketAddr) {
    let mut server = python(PY_SERVER).arg(mode).section(section).start();
    let address = wait_listening(&mut server);
    (server, address)
}

/// What python3's server printed, once it has finished.
fn python_finished(server: Running) -> Run {
    let run = server.wait(WAIT);
    run.expect_success();
    run
}

/// A python3 client for the lab's server: sends each argument as an ECHO
/// request (`e:TEXT`) or a SUM request (`s:1,2,3`), one at a time, and
/// prints each reply.
const PY_CLIENT: &str = r#"
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
with socket.create_connection((host, port)) as s:
    stream = s.makefile("rwb")
    for argument in sys.argv[3:]:
        kind, text = argument.split(":", 1)
        if kind == "e":
            body = b"E" + text.encode()
        else:
            numbers = [int(n) for n in text.split(",") if n]
            body = b"S" + struct.pack(">%dq" % len(numbers), *numbers)
        stream.write(struct.pack(">I", len(body)) + body)
        stream.flush()
        prefix = stream.read(4)
        if len(prefix) < 4:
            print("python: no reply to", argument)
            sys.exit(1)
        reply = stream.read(struct.unpack(">I", prefix)[0])
        status, result = reply[:1].decode(), reply[1:]
        if kind == "s" and status == "+":
            print("python: reply", status, struct.unpack(">q", result)[0])
        else:
            print("python: reply", status, result.decode())
"#;

// ---- the test's own peers --------------------------------------------------------

/// A TCP connection to `address`, with time-outs on both directions so
/// that no test waits for ever.
fn connect_to(address: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// `body` as a frame: a 4-byte big-endian length, then the bytes.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads one frame; an error if it does not come whole within [`WAIT`].
fn read_reply(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header)?;
    let length = u32::from_be_bytes(header) as usize;
    if length > MAX_BODY {
        return Err(io::Error::other(format!(
            "a reply of {length} bytes, over the limit"
        )));
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// Reads until end-of-file, or an error; what came before it.
fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut bytes = Vec::new();
    let result = stream.read_to_end(&mut bytes).map(|_| ());
    (bytes, result)
}

/// An ECHO request's body.
fn echo(text: &[u8]) -> Vec<u8> {
    [&b"E"[..], text].concat()
}

/// The OK response to an ECHO request of `text`.
fn ok(text: &[u8]) -> Vec<u8> {
    [&b"+"[..], text].concat()
}

/// A server played by this test, in a thread: it listens on 127.0.0.1,
/// port 0, accepts one connection within [`WAIT`], and runs `script` on
/// it. Returns the address and the thread, whose result says what the
/// script saw.
fn test_server(
    script: impl FnOnce(TcpStream) -> Result<String, String> + Send + 'static,
) -> (SocketAddr, JoinHandle<Result<String, String>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("grader: bind 127.0.0.1:0: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("grader: getsockname: {e}"));
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
    (address, server)
}

/// What the test's server thread reported; fails `run` if the thread did.
fn server_report(run: &Run, server: JoinHandle<Result<String, String>>, why: &str) -> String {
    match server.join() {
        Ok(Ok(report)) => report,
        Ok(Err(trouble)) => run.fail(format!("the test's server: {trouble}"), why),
        Err(_) => run.fail("the test's server panicked", why),
    }
}

/// Reads one request frame sent to the test's server.
fn read_request(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    read_reply(stream).map_err(|e| format!("no whole request came: {e}"))
}

// ---- TODO 1: getaddrinfo ------------------------------------------------------------

/// `net-sockets resolve HOST --port PORT [--udp]`.
fn resolve(host: &str, port: u16, udp: bool) -> Run {
    let mut args = vec![
        "resolve".to_string(),
        host.to_string(),
        "--port".to_string(),
        port.to_string(),
    ];
    if udp {
        args.push("--udp".to_string());
    }
    lab().cmd(args).section(TASK_1).timeout(WAIT).run()
}

/// What `resolve` must print for `addresses`, one line each.
fn listing(addresses: &[SocketAddr]) -> String {
    addresses
        .iter()
        .map(|address| {
            let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
            format!("{address} ({family})\n")
        })
        .collect()
}

/// Runs `resolve` on a numeric address and checks that it gives exactly
/// that address and port back.
fn check_numeric(ip: IpAddr, vary: &mut Varied) {
    // A port whose two bytes differ, so that swapping them shows.
    let port = loop {
        let port = vary.size(1, 65535) as u16;
        if port.swap_bytes() != port {
            break port;
        }
    };
    let udp = vary.size(0, 1) == 1;
    let run = resolve(&ip.to_string(), port, udp);
    expect_done(
        &run,
        "resolve a numeric address with getaddrinfo: it never fails",
    );
    let expected = listing(&[SocketAddr::new(ip, port)]);
    if run.stdout != expected {
        let swapped = SocketAddr::new(ip, port.swap_bytes());
        let why = if run.stdout == listing(&[swapped]) {
            "the port came out with its two bytes swapped: sin_port is in network byte \
             order (big-endian); the port is u16::from_be(sin_port)"
        } else {
            "a numeric host resolves to itself, once per socket type: convert each \
             sockaddr_in / sockaddr_in6 field by field, in network byte order"
        };
        run.fail(
            format!(
                "resolve {ip} --port {port} printed {:?}, not {expected:?}",
                run.stdout
            ),
            why,
        );
    }
}

#[test]
fn resolve_gives_a_numeric_ipv4_address_and_its_port() {
    let mut vary = Varied::new();
    let ip = Ipv4Addr::new(
        127,
        vary.size(0, 255) as u8,
        vary.size(0, 255) as u8,
        vary.size(1, 254) as u8,
    );
    check_numeric(IpAddr::V4(ip), &mut vary);
}

#[test]
fn resolve_gives_a_numeric_ipv6_address_and_its_port() {
    let mut vary = Varied::new();
    let words: Vec<u16> = (0..7).map(|_| vary.between(0, u64::MAX) as u16).collect();
    let ip = Ipv6Addr::new(
        0xfd00, words[0], words[1], words[2], words[3], words[4], words[5], words[6],
    );
    check_numeric(IpAddr::V6(ip), &mut vary);
}

/// A python3 script that prints what `getaddrinfo` gives for `argv[1]`,
/// port `argv[2]`, TCP or UDP (`argv[3]`), the way `resolve` prints it.
const PY_RESOLVE: &str = r#"
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[3] == "udp" else socket.SOCK_STREAM
for family, _, _, _, address in socket.getaddrinfo(sys.argv[1], int(sys.argv[2]), type=kind):
    if family == socket.AF_INET:
        print("%s:%d (IPv4)" % address[:2])
    elif family == socket.AF_INET6:
        print("[%s]:%d (IPv6)" % address[:2])
"#;

#[test]
fn resolve_agrees_with_python_on_localhost() {
    let mut vary = Varied::new();
    for udp in [false, true] {
        let port = vary.size(1, 65535) as u16;
        let transport = if udp { "udp" } else { "tcp" };
        let theirs = python(PY_RESOLVE)
            .args(["localhost", &port.to_string(), transport])
            .run();
        theirs.expect_success();
        let run = resolve("localhost", port, udp);
        expect_done(&run, "localhost is in /etc/hosts: getaddrinfo finds it");
        if run.stdout != theirs.stdout {
            let mut failure = run.failure(format!(
                "resolve localhost ({transport}) disagrees with python3's getaddrinfo"
            ));
            failure
                .details
                .push(format!("python3 printed: {:?}", theirs.stdout));
            failure.why = Some(
                "ask for AF_UNSPEC and the socket type (SOCK_STREAM or SOCK_DGRAM), keep \
                 every IPv4 and IPv6 entry in the order getaddrinfo gives them"
                    .into(),
            );
            failure.raise();
        }
    }
}

#[test]
fn resolve_reports_an_unknown_host_on_one_line() {
    // A name with a character no host name may have: the C library
    // refuses it without asking a name server, so the test needs no
    // network and takes no time.
    let run = resolve("no-such-host!.invalid", 80, false);
    expect_error(
        &run,
        1,
        &["resolve no-such-host!.invalid: "],
        "getaddrinfo returns an EAI_* code, not an errno: report gai_strerror(code) \
         (`Name or service not known`) after `resolve HOST`",
    );
    assert_masked!(run);
}

#[test]
fn a_port_out_of_range_is_a_one_line_usage_error() {
    let run = lab()
        .script_in(
            Sandbox::new(),
            r#"
"$0" resolve localhost --port 65535 && echo "port 65535: fine"
for command in "resolve localhost --port 65536" "greet --port 70000" "echo 127.0.0.1 -1 hello"; do
  "$0" $command; echo "$command: exit status $?"
done
"#,
        )
        .section(TASK_1)
        .timeout(WAIT)
        .run();
    run.expect_success();
    run.expect_line(
        "port 65535: fine",
        "65535 is the last port: resolve localhost --port 65535 must work",
    );
    let usage = run
        .stdout
        .lines()
        .filter(|line| line.ends_with(": exit status 2"))
        .count();
    let errors = run.stderr.lines().count();
    if usage != 3 || errors != 3 {
        run.fail(
            format!(
                "{usage} of 3 ports out of range were usage errors (exit status 2), with \
                 {errors} line(s) on stderr"
            ),
            "a port is a u16, 0 to 65535: clap refuses anything else with exit status 2, \
             and the given code prints it on one line",
        );
    }
    assert_masked!(run);
}

// ---- TODO 2: listen and connect --------------------------------------------------

/// Starts `greet` with `args`.
fn start_greet(args: &[&str]) -> (Running, SocketAddr) {
    let mut all = vec!["greet"];
    all.extend_from_slice(args);
    start(TASK_2, &all)
}

/// The line python3 reads from `address`, one connection.
const PY_READ_LINE: &str = r#"
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as s:
    print("python read:", s.makefile().readline().rstrip())
"#;

#[test]
fn greet_listens_on_the_port_it_prints() {
    let (server, address) = start_greet(&["--clients", "2"]);
    let listening = tcp_sockets()
        .iter()
        .any(|e| e.local_port == address.port() && e.state == "0A");
    if !listening {
        server.fail(
            format!("nothing listens on port {} of 127.0.0.1", address.port()),
            "bind port 0, then listen: the given code prints the port getsockname gives",
        );
    }
    let reader = python(PY_READ_LINE)
        .args(["127.0.0.1", &address.port().to_string()])
        .section(TASK_2)
        .run();
    reader.expect_success();
    if !reader
        .stdout
        .starts_with("python read: hello, client 1, from 127.0.0.1:")
    {
        server.fail(
            format!("python3 read {:?}", reader.stdout),
            "accept, then the given code greets the client",
        );
    }
    let second = client(TASK_2, "connect", address, &[]).run();
    expect_done(&second, "connect to 127.0.0.1 and the port greet printed");
    let run = server.wait(WAIT);
    run.expect_success();
    run.expect_line(
        "greet: greeted 2 client(s)",
        "greet stops after --clients connections",
    );
    assert_masked!(second);
}

/// The state of the sockets on local port `port`, as `/proc/net/tcp` says.
fn states_on(port: u16) -> Vec<String> {
    tcp_sockets()
        .into_iter()
        .filter(|e| e.local_port == port)
        .map(|e| e.state)
        .collect()
}

#[test]
fn greet_restarts_on_its_port_while_a_connection_waits_in_time_wait() {
    let (server, address) = start_greet(&["--clients", "1"]);
    let port = address.port().to_string();
    // greet writes its line and closes first; this side reads to
    // end-of-file and closes second: greet's side of the connection waits
    // in TIME_WAIT, on greet's port.
    match connect_to(address) {
        Ok(mut stream) => drop(read_to_end(&mut stream)),
        Err(error) => server.fail(format!("could not connect: {error}"), "listen"),
    }
    let first = server.wait(WAIT);
    first.expect_success();
    let deadline = Instant::now() + WAIT;
    while !states_on(address.port()).iter().any(|s| s == "06") {
        if Instant::now() > deadline {
            first.fail(
                format!(
                    "no connection on port {port} waited in TIME_WAIT (states: {:?})",
                    states_on(address.port())
                ),
                "greet closes first, so its side of the connection must wait in TIME_WAIT",
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
    let again = lab()
        .cmd(["greet", "--port", &port, "--clients", "0"])
        .section(TASK_2)
        .timeout(WAIT)
        .run();
    if again.stderr.contains("EADDRINUSE") {
        again.fail(
            "a new server could not bind the port of a connection in TIME_WAIT",
            "set SO_REUSEADDR on the listening socket before bind (setsockopt with \
             sockopt::ReuseAddr): a server that closes first leaves each connection in \
             TIME_WAIT for a minute, and without the option its port stays taken",
        );
    }
    expect_done(&again, "bind the port given with --port");
    again.expect_line(
        &format!("greet: listening on 127.0.0.1:{port}"),
        "bind the port given with --port",
    );
    assert_masked!(again);
}

#[test]
fn a_second_server_on_a_busy_port_is_refused() {
    let (server, address) = start_greet(&["--clients", "1"]);
    let port = address.port().to_string();
    let second = lab()
        .cmd(["greet", "--port", &port])
        .section(TASK_2)
        .timeout(WAIT)
        .run();
    expect_error(
        &second,
        1,
        &["EADDRINUSE"],
        "bind fails with EADDRINUSE when a server listens on the port, SO_REUSEADDR or \
         not (SO_REUSEPORT would let it in: do not set it); report it on one line with \
         the address",
    );
    if !second.stderr.contains(&format!("127.0.0.1:{port}")) {
        second.fail(
            "the error did not name the address",
            "say which address could not be bound: `bind 127.0.0.1:PORT: EADDRINUSE: …`",
        );
    }
    let got = client(TASK_2, "connect", address, &[]).run();
    expect_done(&got, "the first server must still be there");
    server.wait(WAIT).expect_success();
    assert_masked!(second);
}

/// A TCP port nobody listens on, held by this test (bound, never
/// listening) until the returned socket is dropped, so that nobody else
/// can take it meanwhile.
fn port_nobody_listens_on() -> (TcpListenerHold, u16) {
    let hold = TcpListenerHold::bind();
    let port = hold.port;
    (hold, port)
}

/// A socket bound to 127.0.0.1 and a port, without `listen`: a `connect`
/// to that port is refused.
struct TcpListenerHold {
    _socket: std::os::fd::OwnedFd,
    port: u16,
}

impl TcpListenerHold {
    fn bind() -> TcpListenerHold {
        use std::os::fd::{FromRawFd, OwnedFd};
        // SAFETY: socket(2) with constant arguments; the descriptor is
        // owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "grader: socket: {}", io::Error::last_os_error());
        // SAFETY: fd is a new descriptor nobody else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: the address is a valid sockaddr_in of `size` bytes.
        let bound = unsafe { libc::bind(fd, (&raw const address).cast(), size) };
        assert!(bound == 0, "grader: bind: {}", io::Error::last_os_error());
        let mut name: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut length = size;
        // SAFETY: getsockname writes at most `length` bytes into `name`.
        let named = unsafe { libc::getsockname(fd, (&raw mut name).cast(), &mut length) };
        assert!(
            named == 0,
            "grader: getsockname: {}",
            io::Error::last_os_error()
        );
        TcpListenerHold {
            _socket: socket,
            port: u16::from_be(name.sin_port),
        }
    }
}

#[test]
fn connect_reports_a_refused_connection_on_one_line() {
    let (_hold, port) = port_nobody_listens_on();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let run = client(TASK_2, "connect", address, &[]).run();
    expect_error(
        &run,
        1,
        &["ECONNREFUSED"],
        "connect fails with ECONNREFUSED when nobody listens on the port: keep the errno \
         and name the address it was refused at",
    );
    if !run.stderr.contains(&format!("127.0.0.1:{port}")) {
        run.fail(
            "the error did not name the address that refused",
            "name each address tried: `connect HOST port PORT: 127.0.0.1:PORT: ECONNREFUSED: …`",
        );
    }
    assert_masked!(run);
}

/// Why the tests that need namespaces cannot run here, if they cannot:
/// `unshare` (as root, or with an unprivileged user namespace) must work.
fn namespaces_unavailable() -> Option<String> {
    if !installed("ip") {
        return Some("iproute2's `ip` is not installed".to_string());
    }
    let probe = Command::new("unshare")
        .args(unshare_flags())
        .arg("true")
        .stderr(std::process::Stdio::piped())
        .output();
    match probe {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "unshare {} failed: {}",
            unshare_flags().join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("unshare cannot be run: {error}")),
    }
}

/// `unshare`'s flags: a private mount and network namespace, inside a user
/// namespace where this user is root when the tests do not run as root.
fn unshare_flags() -> Vec<&'static str> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut flags = if root {
        vec![]
    } else {
        vec!["--user", "--map-root-user"]
    };
    flags.extend(["--mount", "--net"]);
    flags
}

/// `unshare FLAGS sh -c SCRIPT net-sockets ARGS…`: a fixed script run as
/// root of its own mount and network namespaces, with the lab's program
/// as `"$0"`.
fn in_namespaces(script: &str, args: &[String], section: &str) -> Cmd {
    let lab = lab();
    Cmd::new("unshare", Sandbox::new())
        .args(unshare_flags())
        .args(["sh", "-c", script])
        .arg(&lab.bin)
        .args(args)
        .alias(&lab.bin, &lab.name)
        .chapter(CHAPTER)
        .section(section)
        .timeout(WAIT)
}

#[test]
fn connect_tries_every_address_a_name_has() {
    if let Some(why) = namespaces_unavailable() {
        println!(
            "skipped the name with two addresses: {why}; checked a name with one address instead"
        );
        let (server, address) = start_greet(&["--host", "localhost", "--clients", "1"]);
        let got = lab()
            .cmd(["connect", "localhost", &address.port().to_string()])
            .section(TASK_2)
            .run();
        expect_done(&got, "connect to localhost, where greet listens");
        server.wait(WAIT).expect_success();
        return;
    }
    // In a mount namespace of its own, the script puts a hosts file over
    // /etc/hosts: `twofold` is ::1 and 127.0.0.1. The server listens on
    // the address getaddrinfo gives last; the client must get past the
    // first, which refuses.
    let script = r#"
set -e
ip link set lo up
printf '::1 twofold\n127.0.0.1 twofold\n' > "$TMPDIR/hosts"
mount --bind "$TMPDIR/hosts" /etc/hosts
"$0" resolve twofold
last=$("$0" resolve twofold | tail -n 1 | sed 's/:0 (IPv[46])$//; s/^\[//; s/\]$//')
"$0" greet --host "$last" --clients 1 > greet.out & greet=$!
while ! grep -q listening greet.out; do kill -0 $greet || exit 1; done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' greet.out)
if "$0" connect twofold "$port"; then wait $greet; else kill $greet; wait $greet || exit 1; fi
"#;
    let run = in_namespaces(script, &[], TASK_2).run();
    if run.stderr.contains("ECONNREFUSED") {
        run.fail(
            "connect gave up after the first address of a name that has two",
            "resolve gives every address of the name, in order: try to connect to each \
             until one works, and fail only when all have failed",
        );
    }
    expect_done(
        &run,
        "resolve twofold, then connect to each of its addresses in turn",
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    if lines.len() < 2 || !lines[0].contains("(IPv6)") && !lines[1].contains("(IPv6)") {
        run.fail(
            "resolve did not give both addresses of `twofold` (::1 and 127.0.0.1)",
            "AF_UNSPEC: both families",
        );
    }
    if !run.stdout.contains("hello, client 1, from") {
        run.fail(
            "connect did not reach the server on the name's last address",
            "try each address in turn",
        );
    }
}

#[test]
fn greet_and_connect_speak_ipv6() {
    if !ipv6_loopback() {
        println!("skipped IPv6: ::1 cannot be bound on this machine; checked 127.0.0.1 instead");
        let (server, address) = start_greet(&["--clients", "1"]);
        let got = client(TASK_2, "connect", address, &[]).run();
        expect_done(&got, "connect to 127.0.0.1");
        server.wait(WAIT).expect_success();
        return;
    }
    let (server, address) = start_greet(&["--host", "::1", "--clients", "1"]);
    if !address.is_ipv6() {
        server.fail(
            format!("greet --host ::1 listened on {address}"),
            "make the socket of the address's family: AddressFamily::Inet6 for an IPv6 address",
        );
    }
    let got = client(TASK_2, "connect", address, &[]).run();
    expect_done(&got, "connect to ::1");
    if !got.stdout.starts_with("hello, client 1, from [::1]:") {
        got.fail(
            format!("read {:?} from the IPv6 server", got.stdout),
            "the server's accept sees an IPv6 client",
        );
    }
    server.wait(WAIT).expect_success();
    assert_masked!(got);
}

// ---- TODO 3: frames -------------------------------------------------------------

/// `net-sockets ask 127.0.0.1 PORT MESSAGES…`.
fn ask(address: SocketAddr, messages: &[String]) -> Cmd {
    client(TASK_3, "ask", address, messages)
}

#[test]
fn ask_frames_each_message_with_a_big_endian_length() {
    let mut vary = Varied::new();
    let count = vary.size(1, 4);
    let mut messages = vary.words(count, 40);
    messages.push(vary.word(300));
    let (server, address) = start_python_server("answer", TASK_3);
    let run = ask(address, &messages).run();
    let heard = python_finished(server);
    let prefixes: String = messages
        .iter()
        .map(|m| format!("python: prefix {:08x}\n", m.len() + 1))
        .collect();
    if !heard.stdout.contains(&prefixes) {
        let mut failure = run.failure("python3 read other length prefixes than expected");
        failure
            .details
            .push(format!("python3 printed: {:?}", heard.stdout));
        failure.details.push(format!("expected: {prefixes:?}"));
        failure.why = Some(
            "the prefix is the body's length (op byte included) as a u32 in network byte \
             order: (body.len() as u32).to_be_bytes()"
                .into(),
        );
        failure.raise();
    }
    expect_done(&run, "read each reply frame whole");
    let replies: String = messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("reply {}: OK {m:?}\n", i + 1))
        .collect();
    if run.stdout != replies {
        run.fail(
            "printed other replies than python3 sent",
            "read the 4-byte length, then exactly that many bytes",
        );
    }
}

/// The client side of the test's server connection: its port, for
/// [`wait_until_read`].
fn client_port(stream: &TcpStream) -> Result<u16, String> {
    stream
        .peer_addr()
        .map(|a| a.port())
        .map_err(|e| format!("getpeername: {e}"))
}

/// Writes `pieces` one after the other into `stream`, each only once the
/// client has read everything before it.
fn write_in_pieces(stream: &mut TcpStream, pieces: &[Vec<u8>]) -> Result<(), String> {
    let server_port = stream
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("getsockname: {e}"))?;
    let client = client_port(stream)?;
    for (number, piece) in pieces.iter().enumerate() {
        stream
            .write_all(piece)
            .map_err(|e| format!("writing piece {} failed: {e}", number + 1))?;
        wait_until_read(
            client,
            server_port,
            &format!("piece {} of {}", number + 1, pieces.len()),
        )?;
    }
    Ok(())
}

#[test]
fn ask_reads_a_reply_that_arrives_in_pieces() {
    let mut vary = Varied::new();
    let message = vary.word_in(10, 500);
    let reply = frame(&ok(message.as_bytes()));
    // Cuts: inside the length prefix, and twice in the body.
    let first = vary.size(1, 3);
    let second = vary.size(first + 2, reply.len() - 3);
    let third = vary.size(second + 1, reply.len() - 1);
    let pieces = vec![
        reply[..first].to_vec(),
        reply[first..second].to_vec(),
        reply[second..third].to_vec(),
        reply[third..].to_vec(),
    ];
    let (address, server) = test_server(move |mut stream| {
        read_request(&mut stream)?;
        write_in_pieces(&mut stream, &pieces)?;
        Ok(format!("cut at {first}, {second} and {third}"))
    });
    let run = ask(address, std::slice::from_ref(&message)).run();
    let cuts = server_report(
        &run,
        server,
        "one read returns what has arrived, perhaps part of the length prefix or of the \
         body: read until all 4 bytes of the length are in, then until the whole body is",
    );
    expect_done(&run, "read until the frame is whole");
    if run.stdout != format!("reply 1: OK {message:?}\n") {
        run.fail(
            format!("printed another reply than the one sent in 4 pieces ({cuts})"),
            "one read returns what has arrived, perhaps part of the length prefix or of the \
             body: read again until you have all of it",
        );
    }
}

#[test]
fn ask_refuses_a_reply_over_the_limit_without_waiting_for_it() {
    let mut vary = Varied::new();
    let length = vary.size(MAX_BODY + 1, u32::MAX as usize) as u32;
    let (address, server) = test_server(move |mut stream| {
        read_request(&mut stream)?;
        stream
            .write_all(&length.to_be_bytes())
            .map_err(|e| e.to_string())?;
        // Nothing more comes: a client that waits for `length` bytes waits
        // until the test gives up.
        let (_, _) = read_to_end(&mut stream);
        Ok(String::new())
    });
    let run = ask(address, &["hello".to_string()])
        .why_if_timeout("the client waited for a reply longer than the limit")
        .run();
    server_report(&run, server, "the client must close the connection");
    expect_error(
        &run,
        1,
        &[&format!(
            "a frame of {length} bytes is over the limit of {MAX_BODY}"
        )],
        "check the length against the limit as soon as the 4 bytes are in, before \
         allocating or reading anything: refuse it, naming both numbers",
    );
}

#[test]
fn ask_reports_a_server_that_leaves_in_the_middle_of_a_reply() {
    let mut vary = Varied::new();
    let length = vary.size(20, 2000);
    let cut = vary.size(1, length - 1);
    let (address, server) = test_server(move |mut stream| {
        read_request(&mut stream)?;
        let mut partial = (length as u32).to_be_bytes().to_vec();
        partial.extend(std::iter::repeat_n(b'+', cut));
        stream.write_all(&partial).map_err(|e| e.to_string())?;
        Ok(String::new())
    });
    let run = ask(address, &["hello".to_string()]).run();
    server_report(&run, server, "");
    expect_error(
        &run,
        1,
        &[&format!(
            "the peer left in the middle of a frame ({cut} of {length} bytes)"
        )],
        "end-of-file inside a frame is not a clean end: say how much of the frame came",
    );
    // And in the middle of a length prefix.
    let (address, server) = test_server(move |mut stream| {
        read_request(&mut stream)?;
        stream.write_all(&[0, 0]).map_err(|e| e.to_string())?;
        Ok(String::new())
    });
    let run = ask(address, &["hello".to_string()]).run();
    server_report(&run, server, "");
    expect_error(
        &run,
        1,
        &["the peer left in the middle of a length prefix (2 of 4 bytes)"],
        "end-of-file after part of the length prefix is not a clean end either",
    );
    assert_masked!(run);
}

// ---- TODO 4: the pipelined client ------------------------------------------------

#[test]
fn echo_and_sum_talk_to_a_python_socketserver() {
    let mut vary = Varied::new();
    let count = vary.size(1, 5);
    let messages = vary.words(count, 30);
    let (server, address) = start_python_server("answer", TASK_4);
    let run = client(TASK_4, "echo", address, &messages).run();
    python_finished(server);
    expect_done(&run, "send every request, then read every reply");
    let expected: String = messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("reply {}: OK {m:?}\n", i + 1))
        .collect();
    if run.stdout != expected {
        run.fail(
            format!("printed {:?}, not {expected:?}", run.stdout),
            "one reply per request, in order",
        );
    }
    let numbers: Vec<i64> = (0..vary.size(0, 6))
        .map(|_| (vary.between(0, u64::MAX) >> 8) as i64 - (1 << 55))
        .collect();
    let total: i64 = numbers.iter().sum();
    let (server, address) = start_python_server("answer", TASK_4);
    let args: Vec<String> = numbers.iter().map(i64::to_string).collect();
    let run = client(TASK_4, "sum", address, &args).run();
    python_finished(server);
    expect_done(&run, "send the SUM request, read its reply");
    let line = format!("sum of {} number(s): OK {total}", numbers.len());
    if run.stdout.trim_end() != line {
        run.fail(
            format!("printed {:?}, not {line:?}", run.stdout),
            "the numbers travel as big-endian i64s (the given Request::encode): send the \
             body as it is",
        );
    }
    let (server, address) = start_python_server("answer", TASK_4);
    let run = client(
        TASK_4,
        "sum",
        address,
        &[i64::MAX.to_string(), "1".to_string()],
    )
    .run();
    python_finished(server);
    expect_done(&run, "an ERROR response is an answer too");
    run.expect_line(
        "sum of 2 number(s): ERROR the sum overflows a 64-bit integer",
        "print the server's ERROR response",
    );
}

#[test]
fn echo_half_closes_and_still_gets_every_reply() {
    let mut vary = Varied::new();
    let count = vary.size(2, 6);
    let messages = vary.words(count, 20);
    // This server answers only once it has read end-of-file.
    let (server, address) = start_python_server("after-eof", TASK_4);
    let run = client(TASK_4, "echo", address, &messages)
        .why_if_timeout(
            "half-close: shut down the writing side after the last request \
             (shutdown(Shutdown::Write)) and keep reading; the server answers once it reads \
             end-of-file",
        )
        .run();
    let heard = python_finished(server);
    let eof = format!("python: end-of-file after {count} request(s)");
    if !heard.stdout.lines().any(|line| line == eof) {
        run.fail(
            format!("python3 did not read {count} requests and then end-of-file"),
            "send every request, then shutdown(Shutdown::Write): a half-close",
        );
    }
    expect_done(
        &run,
        "a half-close (Shutdown::Write) leaves the reading side open: shutting down both \
         sides, or closing, loses the replies",
    );
    let expected: String = messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("reply {}: OK {m:?}\n", i + 1))
        .collect();
    if run.stdout != expected {
        run.fail(
            format!("printed {:?}, not {expected:?}", run.stdout),
            "read replies until end-of-file",
        );
    }
}

#[test]
fn copy_sends_more_than_the_kernel_buffers_hold_without_a_deadlock() {
    let mut vary = Varied::new();
    let size = vary.size(5 << 20, 6 << 20);
    let contents = vary.bytes(size);
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("data.bin", &contents);
    // 64 KiB buffers on the server's side: a client that writes every
    // request before it reads a reply fills them, and both sides wait.
    let (server, address) = start_python_server("small-buffers", TASK_4);
    let run = lab()
        .cmd_in(
            sandbox,
            [
                "copy".to_string(),
                "127.0.0.1".to_string(),
                address.port().to_string(),
                file.display().to_string(),
            ],
        )
        .section(TASK_4)
        .timeout(Duration::from_secs(10))
        .why_if_timeout(
            "a deadlock: the client writes every request before it reads any reply, the \
             replies fill the kernel's buffers, the server stops reading to wait until it \
             can write, and the client waits until it can write too. Send from one thread \
             and read in another",
        )
        .run();
    python_finished(server);
    expect_done(&run, "send from one thread, read in another");
    let requests = size.div_ceil(MAX_BODY - 1);
    let line = format!(
        "copy: sent {size} bytes in {requests} request(s); got back {size} bytes, FNV-1a \
         {:#018x}",
        fnv1a(&contents)
    );
    if run.stdout.trim_end() != line {
        run.fail(
            format!("printed {:?}, not {line:?}", run.stdout),
            "every reply, in order",
        );
    }
}

#[test]
fn echo_reports_a_connection_reset_on_one_line() {
    let (server, address) = start_python_server("reset-after-1", TASK_4);
    let run = client(
        TASK_4,
        "echo",
        address,
        &["one".to_string(), "two".to_string()],
    )
    .why_if_timeout("a reset connection ends every read and write on it with an error")
    .run();
    python_finished(server);
    expect_error(
        &run,
        1,
        &["ECONNRESET", "Connection reset by peer"],
        "a peer that closes with unread data (or with SO_LINGER 0) resets the connection: \
         the next read fails with ECONNRESET. Report it, with the reply it was reading \
         (the kernel tells only the first thread to ask: if the sender got it, report the \
         sender's error too)",
    );
}

#[test]
fn echo_reports_a_server_that_stops_answering_early() {
    let (server, address) = start_python_server("one-answer", TASK_4);
    let run = client(
        TASK_4,
        "echo",
        address,
        &["one".to_string(), "two".to_string(), "three".to_string()],
    )
    .run();
    python_finished(server);
    expect_error(
        &run,
        1,
        &["the server closed the connection after 1 of 3 replies"],
        "end-of-file before every request has its reply is an error: say how many came",
    );
}

// ---- TODO 5: the server -----------------------------------------------------------

/// Starts `serve` with `args`.
fn start_serve(args: &[&str]) -> (Running, SocketAddr) {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    start(TASK_5, &all)
}

/// Sends `body` as a frame on `stream` and checks that the reply is
/// `expected`.
fn expect_answer(
    server: &Running,
    stream: &mut TcpStream,
    body: &[u8],
    expected: &[u8],
    who: &str,
) {
    let answer = stream
        .write_all(&frame(body))
        .and_then(|()| read_reply(stream));
    match answer {
        Ok(reply) if reply == expected => {}
        Ok(reply) => server.fail(
            format!(
                "answered {who}'s request of {} bytes with {:?}, not {:?}",
                body.len(),
                String::from_utf8_lossy(&reply[..reply.len().min(60)]),
                String::from_utf8_lossy(&expected[..expected.len().min(60)])
            ),
            "read a whole frame, answer it with protocol::answer, write the answer as a frame",
        ),
        Err(error) => server.fail(
            format!("{who} got no answer within {} s ({error})", WAIT.as_secs()),
            "answer each whole frame at once; serve each client in a thread of its own, so \
             that no client waits for another",
        ),
    }
}

#[test]
fn serve_answers_python_nc_and_socat() {
    let mut vary = Varied::new();
    let words = words_in(&mut vary, 1, 4, 20);
    let numbers: Vec<i64> = (0..vary.size(1, 5))
        .map(|_| (vary.between(0, u64::MAX) >> 4) as i64 - (1 << 59))
        .collect();
    let total: i64 = numbers.iter().sum();
    let mut peers = vec!["python3"];
    for tool in ["socat", "nc"] {
        if installed(tool) {
            peers.push(tool);
        } else {
            println!("skipped {tool}: it is not installed here (python3 stands in for it)");
        }
    }
    let clients = peers.len().to_string();
    let (server, address) = start_serve(&["--clients", &clients]);
    let port = address.port().to_string();
    let mut args = vec!["127.0.0.1".to_string(), port.clone()];
    args.extend(words.iter().map(|w| format!("e:{w}")));
    let list: Vec<String> = numbers.iter().map(i64::to_string).collect();
    args.push(format!("s:{}", list.join(",")));
    let talk = python(PY_CLIENT).args(&args).section(TASK_5).run();
    talk.expect_success();
    let mut expected: String = words
        .iter()
        .map(|w| format!("python: reply + {w}\n"))
        .collect();
    expected.push_str(&format!("python: reply + {total}\n"));
    if talk.stdout != expected {
        server.fail(
            format!("python3 got {:?}, not {expected:?}", talk.stdout),
            "answer each request with protocol::answer, in a frame",
        );
    }
    // `printf` writes the frame with octal escapes: 6 is \000\000\000\006.
    let tools_script = r#"
frame='\000\000\000\006Ehello'
case $1 in
socat) printf "$frame" | socat -t 5 - "TCP:127.0.0.1:$0" | od -An -c ;;
nc) printf "$frame" | nc -N 127.0.0.1 "$0" 2>/dev/null | od -An -c ;;
esac"#;
    for tool in &peers[1..] {
        let run = Cmd::new("sh", Sandbox::new())
            .args(["-c", tools_script])
            .arg(&port)
            .arg(tool)
            .timeout(WAIT)
            .section(TASK_5)
            .run();
        let words: Vec<&str> = run.stdout.split_whitespace().collect();
        if words != ["\\0", "\\0", "\\0", "006", "+", "h", "e", "l", "l", "o"] {
            run.fail(
                format!("{tool} did not get the reply `\\0\\0\\0\\006+hello`"),
                "the wire format is the book's: a 4-byte big-endian length, then the body",
            );
        }
    }
    let run = server.wait(WAIT);
    run.expect_success();
    let tally = format!(
        "serve: {clients} client(s): {} request(s) answered, 0 dropped",
        words.len() + 1 + peers.len() - 1
    );
    if run.stdout.lines().last() != Some(tally.as_str()) {
        run.fail(
            format!("did not end with `{tally}`"),
            "count each client's report in the Tally",
        );
    }
}

#[test]
fn serve_answers_clients_that_are_all_connected_at_once() {
    let mut vary = Varied::new();
    let count = 5;
    let (server, address) = start_serve(&["--clients", &count.to_string()]);
    let mut clients: Vec<TcpStream> = (0..count)
        .map(|_| {
            connect_to(address).unwrap_or_else(|e| {
                server.fail(format!("could not connect: {e}"), "listen with a backlog")
            })
        })
        .collect();
    // The last one to connect speaks first, while all the others are
    // connected and silent: a server that serves one client at a time
    // never gets to it.
    let mut order: Vec<usize> = (0..count - 1).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, vary.size(0, i));
    }
    order.insert(0, count - 1);
    for round in 0..2 {
        for &i in &order {
            let text = vary.bytes_in(0, 300);
            let who = if round == 0 && i == count - 1 {
                format!(
                    "client {count} of {count}, while the {} others stayed connected and \
                     silent,",
                    count - 1
                )
            } else {
                format!("client {} of {count}", i + 1)
            };
            expect_answer(&server, &mut clients[i], &echo(&text), &ok(&text), &who);
        }
    }
    drop(clients);
    let run = server.wait(WAIT);
    run.expect_success();
    let summary = format!(
        "serve: {count} client(s): {} request(s) answered, 0 dropped",
        2 * count
    );
    if run.stdout.lines().last() != Some(summary.as_str()) {
        run.fail(
            format!("did not end with `{summary}`"),
            "wait for every client's report and count it in the Tally",
        );
    }
}

#[test]
fn serve_reads_frames_cut_anywhere_and_frames_sent_together() {
    let mut vary = Varied::new();
    let (server, address) = start_serve(&["--clients", "1"]);
    let mut stream = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
    let text = vary.bytes_in(10, 2000);
    let bytes = frame(&echo(&text));
    let first = vary.size(1, 3);
    let second = vary.size(first + 2, bytes.len() - 3);
    let third = vary.size(second + 1, bytes.len() - 1);
    let local = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    for (number, piece) in [
        &bytes[..first],
        &bytes[first..second],
        &bytes[second..third],
        &bytes[third..],
    ]
    .iter()
    .enumerate()
    {
        let sent = stream
            .write_all(piece)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                wait_until_read(address.port(), local, &format!("piece {} of 4", number + 1))
            });
        if let Err(trouble) = sent {
            server.fail(
                format!("did not read a frame sent in pieces: {trouble}"),
                "one read returns what has arrived, perhaps part of the length prefix or of \
                 the body: read until the frame is whole",
            );
        }
    }
    match read_reply(&mut stream) {
        Ok(reply) if reply == ok(&text) => {}
        other => server.fail(
            format!(
                "answered a frame of {} bytes sent in 4 pieces (cut at {first}, {second} and \
                 {third}) with {:?}",
                bytes.len(),
                other.map(|r| r.len())
            ),
            "one read returns what has arrived, perhaps part of the length prefix or of \
             the body: read again until you have all 4 bytes, then all the body",
        ),
    }
    // Three frames in one write: three answers.
    let texts: Vec<Vec<u8>> = (0..3).map(|_| vary.bytes_in(0, 100)).collect();
    let together: Vec<u8> = texts.iter().flat_map(|t| frame(&echo(t))).collect();
    let _ = stream.write_all(&together);
    for (i, text) in texts.iter().enumerate() {
        match read_reply(&mut stream) {
            Ok(reply) if reply == ok(text) => {}
            other => server.fail(
                format!(
                    "answer {} of 3 frames sent in one write was {:?}",
                    i + 1,
                    other.map(|r| r.len())
                ),
                "a read may return several frames at once: keep what is left over for the \
                 next frame (read exactly the length, never more)",
            ),
        }
    }
    drop(stream);
    let run = server.wait(WAIT);
    run.expect_success();
    run.expect_line(
        "serve: 1 client(s): 4 request(s) answered, 0 dropped",
        "four requests, four answers",
    );
}

#[test]
fn serve_answers_bad_requests_with_an_error_and_goes_on() {
    let mut vary = Varied::new();
    let (server, address) = start_serve(&["--clients", "1"]);
    let mut stream = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
    let op = [b'A', b'Q', b'x', b'e', b's'][vary.size(0, 4)];
    let odd = vary.size(1, 7);
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (
            Vec::new(),
            b"-an empty request: a body starts with an op byte".to_vec(),
        ),
        (
            vec![op, 1, 2],
            format!("-unknown op {:#04x} ('{}')", op, op as char).into_bytes(),
        ),
        (
            [&b"S"[..], &vec![0; 8 + odd]].concat(),
            format!(
                "-SUM takes 8-byte integers: {} bytes is not a whole number of them",
                8 + odd
            )
            .into_bytes(),
        ),
        (
            [&b"S"[..], &i64::MAX.to_be_bytes(), &1i64.to_be_bytes()].concat(),
            b"-the sum overflows a 64-bit integer".to_vec(),
        ),
        (echo(b"still here"), ok(b"still here")),
    ];
    for (body, expected) in &cases {
        expect_answer(&server, &mut stream, body, expected, "the client");
    }
    drop(stream);
    let run = server.wait(WAIT);
    run.expect_success();
    run.expect_line(
        "serve: 1 client(s): 5 request(s) answered, 0 dropped",
        "a request the server cannot do gets an ERROR response, and the connection goes on",
    );
}

#[test]
fn serve_refuses_a_length_over_the_limit_without_allocating_it() {
    let (server, address) = start_serve(&["--clients", "2"]);
    let mut stream = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
    let length = u32::MAX - 8;
    let _ = stream.write_all(&length.to_be_bytes());
    let (reply, result) = read_to_end(&mut stream);
    let peak = vm_peak_kib(server.pid());
    if let Some(peak) = peak.filter(|&kib| kib > VM_LIMIT_KIB) {
        server.fail(
            format!(
                "grew to {} MiB of virtual memory after a length of {length}",
                peak >> 10
            ),
            "check the length against the limit before allocating a buffer for it",
        );
    }
    let reason = format!("a frame of {length} bytes is over the limit of {MAX_BODY}");
    let expected = frame(&[&b"-"[..], reason.as_bytes()].concat());
    if result.is_err() || reply != expected {
        server.fail(
            format!(
                "did not answer a length of {length} with one ERROR response, then close \
                 (got {} bytes{})",
                reply.len(),
                result
                    .err()
                    .map(|e| format!(", then {e}"))
                    .unwrap_or_default()
            ),
            "refuse the length before reading anything more: send one ERROR response that \
             says why, then close the connection",
        );
    }
    let mut next = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "go on serving"));
    expect_answer(
        &server,
        &mut next,
        &echo(b"next"),
        &ok(b"next"),
        "the next client",
    );
    drop(next);
    let run = server.wait(WAIT);
    run.expect_success();
    if !run.stderr.contains(&reason) {
        run.fail(
            "did not report the client it dropped, with the reason",
            "End::Dropped with the error, printed by ClientReport::print",
        );
    }
    assert_masked!(run);
}

#[test]
fn serve_drops_a_client_that_leaves_mid_frame_and_serves_the_next() {
    let mut vary = Varied::new();
    let length = vary.size(20, 3000);
    let cut = vary.size(1, length - 1);
    let (server, address) = start_serve(&["--clients", "2"]);
    let mut stream = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
    let mut partial = (length as u32).to_be_bytes().to_vec();
    partial.extend(std::iter::repeat_n(b'E', cut));
    let _ = stream.write_all(&partial);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = read_to_end(&mut stream);
    let mut next = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "go on serving"));
    expect_answer(
        &server,
        &mut next,
        &echo(b"next"),
        &ok(b"next"),
        "the next client",
    );
    drop(next);
    let run = server.wait(WAIT);
    run.expect_success();
    let reason = format!("the peer left in the middle of a frame ({cut} of {length} bytes)");
    if !run.stderr.contains(&reason) {
        run.fail(
            format!("did not report `{reason}`"),
            "end-of-file inside a frame is not a clean end: drop the client with that reason",
        );
    }
    run.expect_line(
        "serve: 2 client(s): 1 request(s) answered, 1 dropped",
        "one client dropped, one served",
    );
}

#[test]
fn serve_closes_a_client_that_sends_nothing_and_goes_on() {
    let (server, address) = start_serve(&["--clients", "2", "--idle-timeout-ms", "200"]);
    let mut silent = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
    // Meanwhile, another client is served.
    let mut other = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
    expect_answer(
        &server,
        &mut other,
        &echo(b"meanwhile"),
        &ok(b"meanwhile"),
        "a client that came after a silent one",
    );
    drop(other);
    let (reply, result) = read_to_end(&mut silent);
    if result.is_err() {
        server.fail(
            format!(
                "kept a client that sent nothing for more than {} s (its idle timeout is 0.2 s)",
                WAIT.as_secs()
            ),
            "set a read timeout (TcpStream::set_read_timeout, SO_RCVTIMEO) on each \
             connection: a read that waits that long fails with EAGAIN (WouldBlock), and \
             the server closes the connection",
        );
    }
    let expected = frame(b"-timed out waiting for a frame");
    if reply != expected {
        server.fail(
            format!(
                "told the silent client {:?} before closing",
                String::from_utf8_lossy(&reply)
            ),
            "send one ERROR response that says why (`timed out waiting for a frame`), then \
             close",
        );
    }
    let run = server.wait(WAIT);
    run.expect_success();
    run.expect_line(
        "serve: 2 client(s): 1 request(s) answered, 1 dropped",
        "the silent client is dropped, the other one served",
    );
}

/// Sets `SO_LINGER` to 0 on `stream`: closing it then resets the
/// connection (an RST) instead of ending it (a FIN).
fn linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct of the size given.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// Sends requests on `stream` without reading a reply, until the kernel
/// takes no more, then waits until a thread of the server is asleep in a
/// write (`/proc/PID/task/TID/syscall`): stuck writing an answer to a
/// client that does not read it.
fn fill_until_the_server_is_stuck(
    server: &Running,
    stream: &mut TcpStream,
    address: SocketAddr,
) -> Result<(), String> {
    stream.set_nonblocking(true).map_err(|e| e.to_string())?;
    let request = frame(&echo(&[b'x'; 60_000]));
    let mut sent = 0usize;
    let deadline = Instant::now() + WAIT;
    // The server's send buffer grows to megabytes before a write blocks:
    // keep sending as long as the kernel takes more.
    while !a_thread_is_writing(server.pid()) {
        if Instant::now() > deadline || sent > 256 << 20 {
            return Err(format!(
                "after {sent} bytes of requests to {address}, no thread of the server was \
                 writing an answer"
            ));
        }
        let at = sent % request.len();
        match stream.write(&request[at..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(format!("sending requests failed: {e}")),
        }
    }
    Ok(())
}

/// Whether a thread of process `pid` is asleep in a system call that
/// writes (`write`, `writev`, `sendto`, `sendmsg`).
fn a_thread_is_writing(pid: u32) -> bool {
    let writes = [
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_sendto,
        libc::SYS_sendmsg,
    ];
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let path = task.path();
        let call = fs::read_to_string(path.join("syscall")).unwrap_or_default();
        let number = call
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<libc::c_long>().ok());
        let stat = fs::read_to_string(path.join("stat")).unwrap_or_default();
        let asleep = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('S'));
        asleep && number.is_some_and(|n| writes.contains(&n))
    })
}

#[test]
fn serve_survives_clients_that_reset_their_connection() {
    let (server, address) = start_serve(&["--clients", "3"]);
    for _ in 0..2 {
        let mut stream = connect_to(address)
            .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
        // Requests, and no reading, until the server is stuck writing an
        // answer; then a reset: its writes fail with ECONNRESET, then EPIPE.
        if let Err(trouble) = fill_until_the_server_is_stuck(&server, &mut stream, address) {
            server.fail(
                trouble,
                "read each request whole and write its answer; the test reads none of them",
            );
        }
        linger_zero(&stream);
        drop(stream);
    }
    let mut next = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "go on serving"));
    expect_answer(
        &server,
        &mut next,
        &echo(b"next"),
        &ok(b"next"),
        "the next client",
    );
    drop(next);
    let run = server.wait(WAIT);
    if run.code() != Some(0) || !run.stdout.contains("serve: 3 client(s):") {
        run.fail(
            "did not serve 3 clients, 2 of which reset their connection",
            "a client that resets the connection ends its own conversation (the answer's \
             write fails with ECONNRESET or EPIPE), not the server: drop that client and go \
             on, and never unwrap or expect a write",
        );
    }
    let dropped = run
        .stderr
        .lines()
        .filter(|line| line.contains("ECONNRESET") || line.contains("EPIPE"))
        .count();
    if dropped != 2 {
        run.fail(
            format!("reported {dropped} client(s) dropped with ECONNRESET or EPIPE, not 2"),
            "End::Dropped with the error of the write that failed",
        );
    }
}

#[test]
fn serve_holds_no_descriptor_for_a_client_once_it_is_gone() {
    let count = 12;
    let (server, address) = start_serve(&["--clients", &(count + 1).to_string()]);
    let pid = server.pid();
    let before = descriptors(pid);
    for number in 1..=count {
        let mut stream = connect_to(address)
            .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
        expect_answer(&server, &mut stream, &echo(b"hi"), &ok(b"hi"), "a client");
        if number % 2 == 0 {
            // Half of them leave in the middle of a frame.
            let _ = stream.write_all(&[0, 0, 1]);
        }
        drop(stream);
    }
    // Every client has gone: soon the server holds no descriptor for any.
    let deadline = Instant::now() + WAIT;
    let mut after = descriptors(pid);
    while after > before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
        after = descriptors(pid);
    }
    if after > before {
        server.fail(
            format!(
                "held {after} descriptors after {count} clients had left, {before} before \
                 them: {} leaked",
                after - before
            ),
            "each connection's socket must be closed when its client is done: drop the \
             TcpStream (never mem::forget it, never keep it in a list) on every path",
        );
    }
    let mut last = connect_to(address)
        .unwrap_or_else(|e| server.fail(format!("could not connect: {e}"), "listen"));
    expect_answer(
        &server,
        &mut last,
        &echo(b"bye"),
        &ok(b"bye"),
        "the last client",
    );
    drop(last);
    server.wait(WAIT).expect_success();
}

// ---- TODO 6: UDP -------------------------------------------------------------------

/// A python3 UDP client for `udp-serve`: sends each argument (`e:TEXT`
/// as an ECHO request with sequence number 1, 2, …; `long:N` as a
/// datagram of N bytes; `short` as a datagram of 2 bytes, which gets no
/// answer) and prints each reply (its first 20 characters and its length,
/// if it is longer than 60).
const PY_UDP_CLIENT: &str = r#"
import socket, struct, sys
address = (sys.argv[1], int(sys.argv[2]))
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(5)
    for number, argument in enumerate(sys.argv[3:], 1):
        if argument == "short":
            s.sendto(b"ab", address)
            print("python: sent 2 bytes, expecting no reply")
            continue
        if argument.startswith("long:"):
            datagram = struct.pack(">I", number) + b"E" * (int(argument[5:]) - 4)
        else:
            datagram = struct.pack(">I", number) + b"E" + argument[2:].encode()
        s.sendto(datagram, address)
        reply = s.recv(65536)
        text = reply[4:].decode()
        shown = text if len(text) <= 60 else "%s… (%d bytes)" % (text[:20], len(text))
        print("python: reply", struct.unpack(">I", reply[:4])[0], shown)
"#;

/// Starts `udp-serve` with `args`.
fn start_udp_serve(args: &[&str]) -> (Running, SocketAddr) {
    let mut all = vec!["udp-serve"];
    all.extend_from_slice(args);
    start(TASK_6, &all)
}

#[test]
fn udp_serve_answers_datagrams_and_refuses_long_ones() {
    let mut vary = Varied::new();
    let words = words_in(&mut vary, 1, 3, 30);
    let long = vary.size(MAX_DATAGRAM + 1, 9000);
    let mut args: Vec<String> = words.iter().map(|w| format!("e:{w}")).collect();
    args.push("short".to_string());
    args.push(format!("long:{long}"));
    args.push("e:after".to_string());
    let total = (words.len() + 3).to_string();
    let (server, address) = start_udp_serve(&["--datagrams", &total]);
    let mut all = vec!["127.0.0.1".to_string(), address.port().to_string()];
    all.extend(args);
    let talk = python(PY_UDP_CLIENT).args(&all).section(TASK_6).run();
    let run = server.wait(WAIT);
    run.expect_success();
    talk.expect_success();
    let mut expected: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("python: reply {} +{w}\n", i + 1))
        .collect();
    let n = words.len();
    expected.push_str("python: sent 2 bytes, expecting no reply\n");
    expected.push_str(&format!(
        "python: reply {} -a datagram of {long} bytes is over the limit of {MAX_DATAGRAM}\n",
        n + 2
    ));
    expected.push_str(&format!("python: reply {} +after\n", n + 3));
    if talk.stdout != expected {
        let mut failure = run.failure("python3 got other replies than expected");
        failure
            .details
            .push(format!("python3 printed: {:?}", talk.stdout));
        failure.details.push(format!("expected: {expected:?}"));
        failure.why = Some(
            "recvmsg with MSG_TRUNC returns a datagram's real length: answer one over the \
             limit with its sequence number and an ERROR response; ignore one too short to \
             have a sequence number; answer the others with protocol::answer"
                .into(),
        );
        failure.raise();
    }
    let tally = format!(
        "udp-serve: {total} datagram(s): {} answered, 1 refused, 1 ignored",
        n + 1
    );
    run.expect_line(&tally, "count each datagram once");
}

/// What the test's UDP server does with each request: how many copies of
/// it it ignores before it answers, and whether it answers twice.
#[derive(Clone, Copy)]
struct Plan {
    drop_first: usize,
    duplicate: bool,
}

/// A UDP server played by this test: answers ECHO requests by `plans`
/// (one per request), and before each real answer sends a stale one (the
/// previous request's number). Stops once the last request is answered,
/// or after [`WAIT`]. Returns its address and what it saw.
fn udp_test_server(plans: Vec<Plan>) -> (SocketAddr, JoinHandle<Result<String, String>>) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("grader: bind UDP: {e}"));
    let address = socket
        .local_addr()
        .unwrap_or_else(|e| panic!("grader: getsockname: {e}"));
    let handle = thread::spawn(move || {
        socket
            .set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut seen = vec![0usize; plans.len()];
        let mut buffer = [0u8; 2048];
        loop {
            let (length, from) = socket
                .recv_from(&mut buffer)
                .map_err(|e| format!("no datagram for 5 s ({e}); saw {seen:?}"))?;
            if length < 5 {
                return Err(format!("a datagram of {length} bytes"));
            }
            let number = u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
            if number == 0 || number > plans.len() {
                return Err(format!("a request numbered {number}"));
            }
            let plan = plans[number - 1];
            seen[number - 1] += 1;
            if seen[number - 1] <= plan.drop_first {
                continue;
            }
            let mut reply = buffer[..4].to_vec();
            reply.push(b'+');
            reply.extend_from_slice(&buffer[5..length]);
            let stale = [&((number - 1) as u32).to_be_bytes()[..], b"+stale"].concat();
            let _ = socket.send_to(&stale, from);
            let _ = socket.send_to(&reply, from);
            if plan.duplicate {
                let _ = socket.send_to(&reply, from);
            }
            if number == plans.len() {
                return Ok(format!("copies of each request received: {seen:?}"));
            }
        }
    });
    (address, handle)
}

#[test]
fn udp_echo_makes_up_for_lost_duplicated_and_late_datagrams() {
    let mut vary = Varied::new();
    let count = vary.size(3, 5);
    let messages = vary.words(count, 20);
    let mut plans: Vec<Plan> = (0..count)
        .map(|_| Plan {
            drop_first: 0,
            duplicate: vary.size(0, 1) == 1,
        })
        .collect();
    // Two requests lose their first copy, one of them its second too.
    let lost = vary.size(0, count - 1);
    let lost_twice = (lost + 1 + vary.size(0, count - 2)) % count;
    plans[lost].drop_first = 1;
    plans[lost_twice].drop_first = 2;
    let (address, server) = udp_test_server(plans.clone());
    let mut args = messages.clone();
    args.extend(["--retry-ms".to_string(), "50".to_string()]);
    let run = client(TASK_6, "udp-echo", address, &args)
        .timeout(Duration::from_secs(10))
        .run();
    expect_done(
        &run,
        "a request whose reply does not come in time must be sent again, up to --attempts \
         times",
    );
    let expected: String = messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("reply {}: OK {m:?}\n", i + 1))
        .collect();
    if !run.stdout.starts_with(&expected) {
        run.fail(
            format!(
                "printed other replies than expected (request {} was lost once, request {} \
                 twice; each reply came after a late one and some twice)",
                lost + 1,
                lost_twice + 1
            ),
            "number each request, and take as its reply only the datagram with its number: \
             ignore duplicates and late replies to earlier requests",
        );
    }
    server_report(
        &run,
        server,
        "a request whose reply does not come within --retry-ms must be sent again",
    );
    let sent = run
        .stdout
        .lines()
        .last()
        .and_then(|line| line.split(", ").nth(1))
        .and_then(|part| part.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    if sent.is_none_or(|sent| sent < count + 3) {
        run.fail(
            format!("said it sent {sent:?} datagrams for {count} requests, 3 of which were lost"),
            "count every datagram sent, retransmissions included",
        );
    }
}

#[test]
fn udp_echo_gives_up_after_its_attempts() {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("grader: bind UDP: {e}"));
    let address = socket
        .local_addr()
        .unwrap_or_else(|e| panic!("grader: getsockname: {e}"));
    // This socket never answers.
    let args = [
        "hello".to_string(),
        "--retry-ms".to_string(),
        "20".to_string(),
        "--attempts".to_string(),
        "3".to_string(),
    ];
    let run = client(TASK_6, "udp-echo", address, &args).run();
    let mut received = 0;
    let mut buffer = [0u8; 64];
    let _ = socket.set_nonblocking(true);
    while socket.recv(&mut buffer).is_ok() {
        received += 1;
    }
    expect_error(
        &run,
        1,
        &["no reply to request 1 after 3 attempts"],
        "after --attempts sends without a reply, give up with an error",
    );
    if received != 3 {
        run.fail(
            format!("sent {received} datagram(s), not 3, before giving up"),
            "send the request, wait --retry-ms for its reply; without one it must be sent again: --attempts sends \
             in all",
        );
    }
}

#[test]
fn udp_echo_reports_a_truncated_reply() {
    let mut vary = Varied::new();
    let long = vary.size(MAX_DATAGRAM + 1, 8000);
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("grader: bind UDP: {e}"));
    let address = socket
        .local_addr()
        .unwrap_or_else(|e| panic!("grader: getsockname: {e}"));
    let server = thread::spawn(move || -> Result<String, String> {
        socket
            .set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut buffer = [0u8; 2048];
        let (_, from) = socket.recv_from(&mut buffer).map_err(|e| e.to_string())?;
        let mut reply = buffer[..4].to_vec();
        reply.push(b'+');
        reply.resize(long, b'z');
        socket.send_to(&reply, from).map_err(|e| e.to_string())?;
        Ok(String::new())
    });
    let run = client(TASK_6, "udp-echo", address, &["hello".to_string()]).run();
    server_report(&run, server, "");
    expect_error(
        &run,
        1,
        &[&format!(
            "a datagram of {long} bytes, cut to the {MAX_DATAGRAM} the buffer holds"
        )],
        "recv with MSG_TRUNC returns a datagram's real length even when it was cut to fit \
         the buffer: a length over the buffer's means the rest is lost. Say so",
    );
}

#[test]
fn udp_echo_reports_that_nobody_listens() {
    // A port that was free a moment ago: nobody listens on it.
    let port = {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("grader: bind UDP: {e}"));
        socket
            .local_addr()
            .unwrap_or_else(|e| panic!("grader: getsockname: {e}"))
            .port()
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let run = client(TASK_6, "udp-echo", address, &["hello".to_string()])
        .why_if_timeout(
            "connect the UDP socket, so that an ICMP port unreachable becomes ECONNREFUSED",
        )
        .run();
    expect_error(
        &run,
        1,
        &["ECONNREFUSED"],
        "connect the UDP socket to the server's address: the kernel then reports the ICMP \
         port unreachable that comes back as ECONNREFUSED on the next recv. Stop there, \
         instead of trying again",
    );
    assert_masked!(run);
}

// ---- across hosts ---------------------------------------------------------------------

/// The script that makes two "hosts": network namespaces `left`
/// (192.0.2.1) and `right` (192.0.2.2) joined by a veth pair, in the
/// script's own mount namespace (its `/run` is a tmpfs of its own, so the
/// names never show outside). Then the lab's server runs on `left` and its
/// client on `right`. Everything is gone when the script's processes end:
/// the kernel removes a namespace with its last process and mount.
const TWO_HOSTS: &str = r#"
set -e
mount -t tmpfs -o mode=0755 workbook-run /run
mkdir /run/netns
ip netns add left
ip netns add right
ip link add wb-left netns left type veth peer name wb-right netns right
ip -n left addr add 192.0.2.1/24 dev wb-left
ip -n right addr add 192.0.2.2/24 dev wb-right
for ns in left right; do ip -n $ns link set lo up; done
ip -n left link set wb-left up
ip -n right link set wb-right up
mkfifo /run/server.out
ip netns exec left "$0" serve --host 192.0.2.1 --clients 1 > /run/server.out &
exec 3< /run/server.out
read -r line <&3
echo "$line"
port=${line##*:}
ip netns exec right "$0" echo 192.0.2.1 "$port" "$1" "$2"
cat <&3
wait
"#;

#[test]
fn client_and_server_on_two_hosts_joined_by_a_veth_pair() {
    let mut vary = Varied::new();
    let messages = vec![vary.word(12), vary.word(5)];
    if let Some(why) = namespaces_unavailable() {
        println!(
            "skipped the two network namespaces: {why}; ran the same conversation on the \
             loopback interface instead"
        );
        let (server, address) = start(ACROSS, &["serve", "--clients", "1"]);
        let run = client(ACROSS, "echo", address, &messages).run();
        expect_done(&run, "echo to the server");
        server.wait(WAIT).expect_success();
        return;
    }
    let run = in_namespaces(TWO_HOSTS, &messages, ACROSS)
        .timeout(Duration::from_secs(10))
        .run();
    expect_done(
        &run,
        "the server on 192.0.2.1 (namespace left) answers the client on 192.0.2.2 \
         (namespace right): bind the address given with --host, connect to the one given",
    );
    let expected = format!(
        "reply 1: OK {:?}\nreply 2: OK {:?}\n",
        messages[0], messages[1]
    );
    if !run.stdout.contains(&expected) || !run.stdout.contains("(192.0.2.2:") {
        run.fail(
            "the client on the other host did not get its replies",
            "the same code works across hosts: only the addresses change",
        );
    }
}
