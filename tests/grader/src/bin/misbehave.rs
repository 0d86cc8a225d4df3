//! Deliberately misbehaving programs, one per subcommand, for the grader's
//! own tests: each proves the harness catches one mistake a student's
//! program can make.

use std::ffi::CString;
use std::io::Write;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("");
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match what {
        "ok" => println!("all good"),
        "loop" => loop {
            std::hint::spin_loop();
        },
        "spew" => loop {
            let _ = std::io::stdout().write_all(&[b'y'; 4096]);
        },
        "panic" => panic!("deliberate panic"),
        "todo" => todo!("TODO(1): not written yet"),
        "hold-stdout" => {
            // The child keeps stdout open and sleeps; the parent exits.
            if fork() == 0 {
                std::thread::sleep(Duration::from_secs(3600));
            }
            println!("parent done");
        }
        "hang-with-child" => {
            if fork() == 0 {
                std::thread::sleep(Duration::from_secs(3600));
            }
            std::thread::sleep(Duration::from_secs(3600));
        }
        "wait-for-signal" => {
            // Announces itself, then sleeps until a signal ends it.
            println!("ready");
            loop {
                // SAFETY: pause(2) only sleeps until a signal arrives.
                unsafe { libc::pause() };
            }
        }
        "mkfifo" => {
            // Makes a FIFO and leaves it behind.
            let path = CString::new(arg(1)).expect("path");
            // SAFETY: mkfifo with a valid C string and a mode.
            let made = unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
            assert!(made == 0, "mkfifo failed");
        }
        "bind-socket" => {
            // Binds a socket to a path and leaves the socket file behind.
            std::os::unix::net::UnixListener::bind(arg(1)).expect("bind");
        }
        "open-read" => match std::fs::File::open(arg(1)) {
            // Blocks on a FIFO until a writer comes; fails without permission.
            Ok(_) => println!("opened"),
            Err(e) => println!("error: {e}"),
        },
        "zombie" => {
            let child = fork();
            if child == 0 {
                // SAFETY: _exit in the child after fork.
                unsafe { libc::_exit(0) };
            }
            // Wait until the child is dead but not reaped, then leave.
            while !std::fs::read_to_string(format!("/proc/{child}/stat"))
                .is_ok_and(|stat| stat.contains(") Z "))
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("left a zombie");
        }
        "msgq" => {
            let key = ftok(&arg(1));
            // SAFETY: msgget with a key and flags only.
            let id = unsafe { libc::msgget(key, libc::IPC_CREAT | 0o600) };
            assert!(id >= 0, "msgget failed");
        }
        "sem" => {
            let key = ftok(&arg(1));
            // SAFETY: semget with a key, a count and flags only.
            let id = unsafe { libc::semget(key, 1, libc::IPC_CREAT | 0o600) };
            assert!(id >= 0, "semget failed");
        }
        "shm" => {
            let key = ftok(&arg(1));
            // SAFETY: shmget with a key, a size and flags only.
            let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | 0o600) };
            assert!(id >= 0, "shmget failed");
        }
        "posix-shm" => {
            let name = CString::new(arg(1)).expect("name");
            // SAFETY: shm_open with a valid C string.
            let fd = unsafe { libc::shm_open(name.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600) };
            assert!(fd >= 0, "shm_open failed");
        }
        "posix-sem" => {
            let name = CString::new(arg(1)).expect("name");
            // SAFETY: sem_open with a valid C string, mode and initial value.
            let sem = unsafe { libc::sem_open(name.as_ptr(), libc::O_CREAT, 0o600, 1) };
            assert!(sem != libc::SEM_FAILED, "sem_open failed");
        }
        "posix-mq" => {
            let name = CString::new(arg(1)).expect("name");
            // SAFETY: mq_open with a valid C string and default attributes.
            let mq = unsafe {
                libc::mq_open(
                    name.as_ptr(),
                    libc::O_CREAT | libc::O_RDWR,
                    0o600,
                    std::ptr::null_mut::<libc::mq_attr>(),
                )
            };
            assert!(mq >= 0, "mq_open failed");
        }
        "fds" => {
            // Lists descriptors above 2 that the program was started with.
            let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .expect("/proc/self/fd")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|fd| fd.parse::<i32>().is_ok_and(|n| n > 2))
                .collect();
            fds.sort();
            // One of them is the directory being read.
            println!("{} extra descriptor(s)", fds.len().saturating_sub(1));
        }
        "env" => {
            for key in [
                "LC_ALL",
                "RUST_BACKTRACE",
                "INSTA_UPDATE",
                "INSTA_FORCE_PASS",
            ] {
                println!("{key}={}", std::env::var(key).unwrap_or_default());
            }
        }
        "private-msgq" => {
            // An IPC_PRIVATE queue this process sends on (lspid = us), never removed.
            let id = private_queue();
            let message: [libc::c_long; 2] = [1, 0];
            // SAFETY: msgsnd reads one long (the type) and 1 byte of text
            // from a buffer of two longs.
            let sent = unsafe { libc::msgsnd(id, message.as_ptr().cast(), 1, 0) };
            assert!(sent == 0, "msgsnd failed");
        }
        "private-msgq-quiet" => {
            // An IPC_PRIVATE queue never used: only its announcement tells.
            println!("made queue {}", private_queue());
        }
        "own-key-msgq" => {
            // A queue under a key of the program's own choosing, as ipcmk does.
            let key = 0x7e00_0000 | (std::process::id() as libc::key_t & 0x00ff_ffff);
            // SAFETY: msgget with a key and flags only.
            let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
            assert!(id >= 0, "msgget failed");
            println!("Message queue id: {id}");
        }
        "say" => println!("{}", arg(1)),
        "caps" => {
            let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
            for line in status.lines().filter(|l| l.starts_with("CapEff:")) {
                println!("{line}");
            }
        }
        "reap-then-block" => {
            let child = fork();
            if child == 0 {
                std::thread::sleep(Duration::from_millis(50));
                // SAFETY: _exit in the child after fork.
                unsafe { libc::_exit(0) };
            }
            // SAFETY: waitpid on our own child with a null status.
            unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
            block_in_read();
        }
        "child-and-block" => {
            if fork() == 0 {
                std::thread::sleep(Duration::from_secs(3600));
            }
            println!("ready");
            block_in_read();
        }
        "zombie-and-block" => {
            // A child that exits at once and is never waited for.
            if fork() == 0 {
                // SAFETY: _exit in the child after fork.
                unsafe { libc::_exit(0) };
            }
            println!("ready");
            block_in_read();
        }
        "ready-and-block" => {
            println!("ready");
            block_in_read();
        }
        "msgq-and-block" => {
            let key = ftok(&arg(1));
            // SAFETY: msgget with a key and flags only.
            let id = unsafe { libc::msgget(key, libc::IPC_CREAT | 0o600) };
            assert!(id >= 0, "msgget failed");
            println!("ready");
            block_in_read();
        }
        // ---- ways out of a run (each takes the sandbox path, so that the
        // harness can find its processes by their command line) ----------
        "setsid-child" => {
            // A child in a session of its own; the program does not wait for
            // it to end, only for it to have left the session.
            let child = fork_then(|| {
                // SAFETY: setsid(2) in the child, which leads no group.
                unsafe { libc::setsid() };
            });
            println!("daemon {child}");
        }
        "setpgid-child" => {
            // A child in a process group of its own (the program waits until
            // it has moved there, not for it to end).
            let child = fork_then(|| {
                // SAFETY: setpgid(2) on ourselves.
                unsafe { libc::setpgid(0, 0) };
            });
            println!("daemon {child}");
        }
        "double-fork" => {
            // The classic daemon: fork, setsid, fork; the middle process
            // exits and is waited for; the grandchild is an orphan in a
            // session it does not lead.
            println!("daemon {}", daemonize(false));
        }
        "daemon-holding-stdout" => {
            // The same daemon, but it keeps the program's stdout open.
            println!("daemon {}", daemonize(true));
        }
        "burst" => {
            // N short-lived children, each leaving an escaped grandchild.
            let count: usize = arg(2).parse().expect("a count");
            let mut children = Vec::new();
            for _ in 0..count {
                let child = fork();
                if child == 0 {
                    // SAFETY: setsid(2), then fork in a single-threaded child.
                    unsafe { libc::setsid() };
                    if fork() == 0 {
                        sleep_for_ever();
                    }
                    // SAFETY: _exit in the child after fork.
                    unsafe { libc::_exit(0) };
                }
                children.push(child);
            }
            for child in children {
                // SAFETY: waitpid on our own child with a null status.
                unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
            }
            println!("forked {count}");
        }
        "zombies" => {
            // N children that exit at once, never waited for.
            let count: usize = arg(1).parse().expect("a count");
            let children: Vec<i32> = (0..count)
                .map(|_| {
                    let child = fork();
                    if child == 0 {
                        // SAFETY: _exit in the child after fork.
                        unsafe { libc::_exit(0) };
                    }
                    child
                })
                .collect();
            let zombie = |pid: &i32| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| stat.contains(") Z "))
            };
            while !children.iter().all(zombie) {
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("left {count} zombies");
        }
        "chain" => {
            // A chain of N processes, each in a session of its own, each
            // forking the next before it sleeps; the program spins.
            let links: usize = arg(2).parse().expect("a length");
            if fork() == 0 {
                for _ in 0..links {
                    // SAFETY: setsid(2) in a child that leads no group.
                    unsafe { libc::setsid() };
                    if fork() != 0 {
                        sleep_for_ever();
                    }
                }
                sleep_for_ever();
            }
            println!("ready");
            loop {
                std::hint::spin_loop();
            }
        }
        "escape-then-hang" => {
            // A daemon, then the program itself never ends.
            println!("daemon {}", daemonize(false));
            sleep_for_ever();
        }
        "zombie-and-daemon" => {
            let zombie = fork();
            if zombie == 0 {
                // SAFETY: _exit in the child after fork.
                unsafe { libc::_exit(0) };
            }
            println!("daemon {}", daemonize(false));
            while !std::fs::read_to_string(format!("/proc/{zombie}/stat"))
                .is_ok_and(|stat| stat.contains(") Z "))
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("zombie {zombie}");
        }
        "kill-parent" => {
            // Starts a daemon, then kills its own parent (the grader's
            // shepherd) and waits a moment before it exits.
            println!("daemon {}", daemonize(false));
            // SAFETY: kill(2) of our parent.
            unsafe { libc::kill(libc::getppid(), libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(100));
        }
        "exit" => std::process::exit(arg(1).parse().expect("a status")),
        "raise" => {
            // SAFETY: raise(3) with a signal number.
            unsafe { libc::raise(arg(1).parse().expect("a signal")) };
            std::thread::sleep(Duration::from_secs(3600));
        }
        "grade-then-wait" => {
            // A test process of its own: starts `misbehave escape-then-hang
            // DIR` under the grader, says so, and waits to be killed.
            let me = std::env::current_exe().expect("current_exe");
            let _running = grader::Cmd::new(me, grader::Sandbox::new())
                .args(["escape-then-hang", &arg(1)])
                .start();
            println!("ready");
            sleep_for_ever();
        }
        _ => {
            eprintln!("usage: misbehave WHAT [ARG]");
            std::process::exit(2);
        }
    }
}

/// Sleeps until killed.
fn sleep_for_ever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Starts a daemon by the double fork and returns its pid: fork, setsid,
/// fork; the middle process exits and is waited for. The daemon closes its
/// standard streams (unless `hold`: then it prints `daemon ready` on
/// stdout and keeps it), then reports its pid through a pipe.
fn daemonize(hold: bool) -> i32 {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two-element array.
    assert!(unsafe { libc::pipe(fds.as_mut_ptr()) } == 0, "pipe failed");
    let middle = fork();
    if middle == 0 {
        // SAFETY: setsid(2) in a child that leads no group.
        unsafe { libc::setsid() };
        if fork() == 0 {
            if hold {
                println!("daemon ready");
            } else {
                // SAFETY: closing our standard streams.
                unsafe {
                    libc::close(0);
                    libc::close(1);
                    libc::close(2);
                }
            }
            // SAFETY: getpid(2); write(2) of four bytes from a local.
            let bytes = unsafe { libc::getpid() }.to_ne_bytes();
            unsafe { libc::write(fds[1], bytes.as_ptr().cast(), bytes.len()) };
            sleep_for_ever();
        }
        // SAFETY: _exit in the child after fork.
        unsafe { libc::_exit(0) };
    }
    let mut bytes = [0u8; 4];
    // SAFETY: read(2) into a local array; waitpid on our own child.
    unsafe {
        libc::close(fds[1]);
        libc::read(fds[0], bytes.as_mut_ptr().cast(), bytes.len());
        libc::waitpid(middle, std::ptr::null_mut(), 0);
    }
    i32::from_ne_bytes(bytes)
}

/// fork(2), panicking on failure: good enough for a test fixture.
/// Forks a child that runs `then` and sleeps for ever; returns its pid once
/// `then` has run (a byte through a pipe says so), so that the grader sees
/// the child as `then` left it, whatever the scheduler does.
fn fork_then(then: impl FnOnce()) -> i32 {
    let mut ends = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors of `ends`.
    if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
        eprintln!("misbehave: pipe failed");
        std::process::exit(1);
    }
    let child = fork();
    if child == 0 {
        then();
        // SAFETY: write(2) of one byte from a live buffer; close(2) of our fd.
        unsafe {
            libc::write(ends[1], b"1".as_ptr().cast(), 1);
            libc::close(ends[1]);
        }
        sleep_for_ever();
    }
    let mut byte = [0u8; 1];
    // SAFETY: close(2) of our write end; read(2) into a live one-byte buffer.
    unsafe {
        libc::close(ends[1]);
        libc::read(ends[0], byte.as_mut_ptr().cast(), 1);
        libc::close(ends[0]);
    }
    child
}

fn fork() -> i32 {
    // SAFETY: this program is single-threaded when it forks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    pid
}

/// ftok(3) on `path` with project id 1.
fn ftok(path: &str) -> libc::key_t {
    let path = CString::new(path).expect("path");
    // SAFETY: ftok with a valid C string.
    let key = unsafe { libc::ftok(path.as_ptr(), 1) };
    assert!(key != -1, "ftok failed");
    key
}

/// A new IPC_PRIVATE message queue.
fn private_queue() -> i32 {
    // SAFETY: msgget with a key and flags only.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "msgget failed");
    id
}

/// Blocks for ever in read(2) on a pipe whose write end this process holds.
fn block_in_read() -> ! {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two-element array.
    assert!(unsafe { libc::pipe(fds.as_mut_ptr()) } == 0, "pipe failed");
    let mut byte = 0u8;
    loop {
        // SAFETY: read(2) into one byte we own.
        unsafe { libc::read(fds[0], (&raw mut byte).cast(), 1) };
    }
}
