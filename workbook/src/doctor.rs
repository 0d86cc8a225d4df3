//! `cargo workbook doctor`: is this machine ready for the labs?
//!
//! Each line is `[ok]`, `[warn]` (works, but something a chapter relies on
//! is off) or `[FAIL]` (labs cannot work), with the fix beneath. Nothing is
//! changed, except that the IPC probes create an object of each kind and
//! remove it at once (POSIX names follow the grader's pattern, so that
//! `clean` recognises them should the probe be interrupted).
//!
//! Some later chapters lean on things an ordinary user may or may not be
//! allowed to do: tracing a process (`ptrace`), user and network
//! namespaces, POSIX message-queue and locked-memory limits. For each,
//! `doctor` says whether *this* user has it, probing it in a child process
//! where a setting alone cannot tell (a container's seccomp filter, an
//! AppArmor rule), and what the course does without it.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use crate::clean;
use crate::mdbook::{self, Installed, MDBOOK_VERSION};
use crate::workspace::Workspace;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report, with the fix when it is not ok.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    level: Level,
    what: String,
    fix: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>) -> Check {
        Check {
            level: Level::Ok,
            what: what.into(),
            fix: None,
        }
    }

    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    /// `[ok]   what`, and `       fix: …` beneath when there is one.
    fn render(&self) -> String {
        let tag = match self.level {
            Level::Ok => "[ok]  ",
            Level::Warn => "[warn]",
            Level::Fail => "[FAIL]",
        };
        let mut text = format!("{tag} {}\n", self.what);
        if let Some(fix) = &self.fix {
            text.push_str(&format!("       fix: {fix}\n"));
        }
        text
    }
}

/// Runs `cargo workbook doctor`; `ws` is `None` outside a checkout.
pub fn run(ws: Option<&Workspace>) -> Result<ExitCode> {
    let mut checks = vec![os()];
    checks.push(sysv_works());
    checks.push(msg_limits());
    checks.push(sem_limits());
    checks.push(shm_limits());
    checks.push(dev_shm());
    checks.extend(posix_queues());
    checks.push(rlimit_msgqueue());
    checks.push(rlimit_nofile());
    checks.extend(privileges());
    checks.push(c_compiler());
    checks.push(ipc_tools());
    checks.push(leftovers());
    checks.push(book_tool(ws));
    for check in &checks {
        print!("{}", check.render());
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warned = checks.iter().filter(|c| c.level == Level::Warn).count();
    println!();
    if failed > 0 {
        println!("{failed} problem(s) keep the labs from working; fix them first.");
        return Ok(ExitCode::FAILURE);
    }
    if warned > 0 {
        println!("Ready for the labs, with {warned} warning(s) above.");
    } else {
        println!("Ready for the labs.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Linux, which kernel, which machine.
fn os() -> Check {
    let release = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "?".into());
    Check::ok(format!("Linux {release} on {}", std::env::consts::ARCH))
}

/// Creates and removes one object of each System V kind.
fn sysv_works() -> Check {
    let fix_for = |errno: i32| match errno {
        libc::ENOSYS => {
            "this kernel has no System V IPC (CONFIG_SYSVIPC); use a standard distribution kernel"
        }
        libc::ENOSPC => {
            "a system-wide limit is reached: look with `ipcs`, remove what is yours with \
             `ipcrm` or `cargo workbook clean`"
        }
        _ => {
            "in a container, allow IPC (docker run --ipc=private, the default; not \
             --ipc=none) and check seccomp"
        }
    };
    let probes = [
        ("msgget", probe_sysv(SysvProbe::Queue)),
        ("semget", probe_sysv(SysvProbe::Semaphores)),
        ("shmget", probe_sysv(SysvProbe::Segment)),
    ];
    match probes
        .into_iter()
        .find_map(|(call, probe)| Some((call, probe.err()?)))
    {
        None => Check::ok(
            "System V IPC works: created and removed a message queue, a semaphore set \
             and a shared memory segment",
        ),
        Some((call, err)) => Check::fail(
            format!("System V IPC does not work: {call} failed: {err}"),
            fix_for(err.raw_os_error().unwrap_or(0)),
        ),
    }
}

/// Which System V object to probe.
#[derive(Debug, Clone, Copy)]
enum SysvProbe {
    Queue,
    Semaphores,
    Segment,
}

/// Creates one private System V object (mode 0600) and removes it at once.
fn probe_sysv(kind: SysvProbe) -> std::io::Result<()> {
    // SAFETY: the get calls take plain integers; IPC_RMID takes no buffer
    // (NULL for msgctl and shmctl, and semctl ignores a fourth argument).
    unsafe {
        let flags = libc::IPC_CREAT | 0o600;
        let id = match kind {
            SysvProbe::Queue => libc::msgget(libc::IPC_PRIVATE, flags),
            SysvProbe::Semaphores => libc::semget(libc::IPC_PRIVATE, 1, flags),
            SysvProbe::Segment => libc::shmget(libc::IPC_PRIVATE, 4096, flags),
        };
        if id < 0 {
            return Err(std::io::Error::last_os_error());
        }
        match kind {
            SysvProbe::Queue => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            SysvProbe::Semaphores => libc::semctl(id, 0, libc::IPC_RMID),
            SysvProbe::Segment => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
        };
    }
    Ok(())
}

/// `kernel.msgmnb`, `msgmax`, `msgmni`.
fn msg_limits() -> Check {
    let values = ["msgmnb", "msgmax", "msgmni"].map(|name| read_number(&kernel(name)));
    let [Some(mnb), Some(max), Some(mni)] = values else {
        return Check::warn(
            "cannot read the message queue limits in /proc/sys/kernel",
            "is /proc mounted? (the System V message queue chapter reads these limits)",
        );
    };
    let what = format!(
        "message queue limits: msgmnb {mnb} bytes per queue, msgmax {max} bytes per message, \
         msgmni {mni} queues"
    );
    below_default(
        what,
        &[
            ("msgmnb", mnb, 16384),
            ("msgmax", max, 8192),
            ("msgmni", mni, 32),
        ],
    )
}

/// `kernel.sem`: SEMMSL SEMMNS SEMOPM SEMMNI.
fn sem_limits() -> Check {
    let values: Vec<u64> = read_trimmed(&kernel("sem"))
        .map(|text| {
            text.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [msl, mns, opm, mni] = values[..] else {
        return Check::warn(
            "cannot read the semaphore limits in /proc/sys/kernel/sem",
            "is /proc mounted? (the semaphore chapter reads these limits)",
        );
    };
    let what = format!(
        "semaphore limits (kernel.sem): SEMMSL {msl} per set, SEMMNS {mns} in all, \
         SEMOPM {opm} per semop, SEMMNI {mni} sets"
    );
    // The kernel's defaults before Linux 3.19, far more than any lab needs.
    below_default(
        what,
        &[
            ("SEMMSL", msl, 250),
            ("SEMMNS", mns, 32000),
            ("SEMOPM", opm, 32),
            ("SEMMNI", mni, 128),
        ],
    )
}

/// `kernel.shmmax`, `shmall`, `shmmni`.
fn shm_limits() -> Check {
    let values = ["shmmax", "shmall", "shmmni"].map(|name| read_number(&kernel(name)));
    let [Some(max), Some(all), Some(mni)] = values else {
        return Check::warn(
            "cannot read the shared memory limits in /proc/sys/kernel",
            "is /proc mounted? (the shared memory chapter reads these limits)",
        );
    };
    let what = format!(
        "shared memory limits: shmmax {max} bytes per segment, shmall {all} pages in all, \
         shmmni {mni} segments"
    );
    below_default(
        what,
        &[
            ("shmmax", max, 1 << 20),
            ("shmall", all, 256),
            ("shmmni", mni, 128),
        ],
    )
}

/// An ok check, or a warning naming each limit below its minimum with the
/// `sysctl` that raises it.
fn below_default(what: String, limits: &[(&str, u64, u64)]) -> Check {
    let low: Vec<&(&str, u64, u64)> = limits.iter().filter(|(_, v, min)| v < min).collect();
    if low.is_empty() {
        return Check::ok(what);
    }
    let names: Vec<String> = low
        .iter()
        .map(|(name, value, min)| format!("{name} is {value}, below {min}"))
        .collect();
    let sysctl = if low.iter().any(|(name, _, _)| name.starts_with("SEM")) {
        "sudo sysctl -w kernel.sem=\"32000 1024000000 500 32000\"".to_string()
    } else {
        let settings: Vec<String> = low
            .iter()
            .map(|(name, _, min)| format!("kernel.{name}={min}"))
            .collect();
        format!("sudo sysctl -w {}", settings.join(" "))
    };
    Check::warn(
        format!("{what} ({}; labs may fail early)", names.join(", ")),
        sysctl,
    )
}

/// `/dev/shm` is a mounted tmpfs where `shm_open` can create objects.
fn dev_shm() -> Check {
    let mounted = mount_type("/dev/shm");
    let name = probe_name("shm");
    let Ok(c_name) = CString::new(name.clone()) else {
        return Check::fail("cannot build a probe name", "report this as a bug");
    };
    // SAFETY: shm_open(3) with a NUL-terminated name; the descriptor it
    // returns is closed and the name unlinked at once.
    let fd = unsafe {
        libc::shm_open(
            c_name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600,
        )
    };
    let opened = if fd >= 0 {
        // SAFETY: `fd` is ours; the name is ours too.
        unsafe {
            libc::close(fd);
            libc::shm_unlink(c_name.as_ptr());
        }
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    };
    match (mounted.as_deref(), opened) {
        (Some(fs_type), Ok(())) => {
            let free = free_space(Path::new("/dev/shm"))
                .map(|bytes| format!(", {} free", human(bytes)))
                .unwrap_or_default();
            Check::ok(format!(
                "/dev/shm: {fs_type}, writable (shm_open works){free}"
            ))
        }
        (None, _) => Check::fail(
            "/dev/shm is not mounted: POSIX shared memory and named semaphores cannot work",
            "sudo mount -t tmpfs -o mode=1777 tmpfs /dev/shm (in Docker it is there by default)",
        ),
        (Some(_), Err(err)) => Check::fail(
            format!("/dev/shm is mounted, but shm_open fails: {err}"),
            "it must be writable by everyone with the sticky bit: sudo chmod 1777 /dev/shm",
        ),
    }
}

/// POSIX message queues work (an `mq_open` probe), and `/dev/mqueue` is
/// mounted so that they can be listed.
fn posix_queues() -> Vec<Check> {
    let name = probe_name("mq");
    let Ok(c_name) = CString::new(name) else {
        return vec![Check::fail(
            "cannot build a probe name",
            "report this as a bug",
        )];
    };
    // SAFETY: mq_open(3) with a NUL-terminated name, mode 0600 and default
    // attributes (NULL); the queue is closed and unlinked at once.
    let mqd = unsafe {
        libc::mq_open(
            c_name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600 as libc::mode_t,
            std::ptr::null::<libc::mq_attr>(),
        )
    };
    let opened = if mqd >= 0 {
        // SAFETY: `mqd` is ours, and so is the name.
        unsafe {
            libc::mq_close(mqd);
            libc::mq_unlink(c_name.as_ptr());
        }
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    };
    let limit = |name: &str| {
        read_number(&format!("/proc/sys/fs/mqueue/{name}"))
            .map_or_else(|| "?".to_string(), |v| v.to_string())
    };
    let mut checks = vec![match opened {
        Ok(()) => Check::ok(format!(
            "POSIX message queues work (mq_open): up to {} queues, {} messages of {} bytes \
             each by default",
            limit("queues_max"),
            limit("msg_default"),
            limit("msgsize_default")
        )),
        Err(err) => {
            let fix = match err.raw_os_error() {
                Some(libc::ENOSYS) => {
                    "this kernel has no POSIX message queues (CONFIG_POSIX_MQUEUE)"
                }
                Some(libc::EMFILE) => "RLIMIT_MSGQUEUE is used up: raise it with `ulimit -q`",
                Some(libc::ENOSPC) => {
                    "fs.mqueue.queues_max is reached: remove leftovers (`cargo workbook clean`)"
                }
                _ => "check that /dev/mqueue can be mounted and that seccomp allows mq_open",
            };
            Check::fail(
                format!("POSIX message queues do not work: mq_open: {err}"),
                fix,
            )
        }
    }];
    checks.push(match mount_type("/dev/mqueue") {
        Some(_) => Check::ok("/dev/mqueue is mounted: `ls /dev/mqueue` lists the queues"),
        None => Check::warn(
            "/dev/mqueue is not mounted: queues work, but you cannot list or inspect them \
             (the POSIX message queue chapter does)",
            "sudo mkdir -p /dev/mqueue && sudo mount -t mqueue none /dev/mqueue",
        ),
    });
    checks
}

/// `RLIMIT_MSGQUEUE`: bytes of POSIX message queues per user.
fn rlimit_msgqueue() -> Check {
    let Some((soft, hard)) = rlimit(libc::RLIMIT_MSGQUEUE) else {
        return Check::warn("cannot read RLIMIT_MSGQUEUE", "run `ulimit -q` to see it");
    };
    let what = format!(
        "RLIMIT_MSGQUEUE (ulimit -q): {} bytes for your POSIX message queues (hard limit {})",
        show_limit(soft),
        show_limit(hard)
    );
    // 819200 is Linux's default: room for 10 queues of 10 messages of 8 KiB.
    if soft < 819_200 {
        Check::warn(
            format!("{what}, below Linux's default 819200"),
            "ulimit -q 819200 (or raise `msgqueue` in /etc/security/limits.conf)",
        )
    } else {
        Check::ok(what)
    }
}

/// `RLIMIT_NOFILE`: open descriptors per process.
fn rlimit_nofile() -> Check {
    let Some((soft, hard)) = rlimit(libc::RLIMIT_NOFILE) else {
        return Check::warn("cannot read RLIMIT_NOFILE", "run `ulimit -n` to see it");
    };
    let what = format!(
        "RLIMIT_NOFILE (ulimit -n): {} open descriptors per process (hard limit {})",
        show_limit(soft),
        show_limit(hard)
    );
    if soft < 256 {
        Check::warn(
            format!("{what}: too few for the multiplexing labs"),
            "ulimit -n 1024",
        )
    } else {
        Check::ok(what)
    }
}

/// What this user may do that some chapters lean on, one line each.
fn privileges() -> Vec<Check> {
    let caps = effective_capabilities();
    vec![
        who_am_i(caps),
        ptrace_check(caps),
        user_namespaces(),
        network_namespaces(),
        mqueue_limits(caps),
        memlock_check(caps),
    ]
}

/// Capabilities the labs care about, by number (capability(7)).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_IPC_LOCK: u32 = 14;
const CAP_IPC_OWNER: u32 = 15;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;

/// The effective capability set (`CapEff` of `/proc/self/status`), or 0.
fn effective_capabilities() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let hex = line.strip_prefix("CapEff:")?.trim();
                u64::from_str_radix(hex, 16).ok()
            })
        })
        .unwrap_or(0)
}

/// True when `caps` holds capability number `cap`.
fn has(caps: u64, cap: u32) -> bool {
    caps & (1u64 << cap) != 0
}

/// Which user this is, and whether its privileges make results differ
/// from a student's.
fn who_am_i(caps: u64) -> Check {
    // SAFETY: geteuid(2) cannot fail.
    let euid = unsafe { libc::geteuid() };
    let names: Vec<&str> = [
        (CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"),
        (CAP_IPC_OWNER, "CAP_IPC_OWNER"),
        (CAP_IPC_LOCK, "CAP_IPC_LOCK"),
        (CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE"),
        (CAP_SYS_PTRACE, "CAP_SYS_PTRACE"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .into_iter()
    .filter(|(cap, _)| has(caps, *cap))
    .map(|(_, name)| name)
    .collect();
    if names.is_empty() {
        return Check::ok(format!(
            "privileges: uid {euid}, no capability that bypasses a check (as a student works)"
        ));
    }
    Check::warn(
        format!(
            "privileges: uid {euid} with {}: permission checks and limits do not bind you as \
             they bind a student",
            names.join(", ")
        ),
        "the grader drops what it must for the permission tests; to see what a student sees, \
         work as an ordinary user",
    )
}

/// How a probe in a child process came out.
enum Probe {
    /// The call succeeded.
    Works,
    /// It failed with this errno.
    Refused(i32),
    /// The probe itself could not run.
    Unknown,
}

/// Runs `call` in a forked child and reports whether it returned 0. The
/// child calls nothing but `call` and `_exit`, so forking is safe here.
fn probe_in_child(call: fn() -> i32) -> Probe {
    // SAFETY: the child runs only async-signal-safe calls (`call` makes one
    // system call) and leaves with `_exit`; the parent reaps it.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Probe::Unknown;
        }
        if pid == 0 {
            let errno = if call() == 0 {
                0
            } else {
                *libc::__errno_location()
            };
            libc::_exit(errno.clamp(0, 254));
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) != pid || !libc::WIFEXITED(status) {
            return Probe::Unknown;
        }
        match libc::WEXITSTATUS(status) {
            0 => Probe::Works,
            errno => Probe::Refused(errno),
        }
    }
}

/// The text of an errno.
fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// `ptrace`: Yama's `ptrace_scope`, `CAP_SYS_PTRACE`, and a probe
/// (`PTRACE_TRACEME` in a child), which a seccomp filter may refuse.
fn ptrace_check(caps: u64) -> Check {
    let scope = read_number("/proc/sys/kernel/yama/ptrace_scope");
    let probe = probe_in_child(|| {
        // SAFETY: PTRACE_TRACEME takes no pointer; the child exits at once.
        unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) as i32 }
    });
    let cap = has(caps, CAP_SYS_PTRACE);
    let scope_text = match scope {
        None => "no Yama ptrace_scope (classic rules: any process of your own)".to_string(),
        Some(0) => "Yama ptrace_scope 0 (any process of your own)".to_string(),
        Some(1) => "Yama ptrace_scope 1 (only your descendants)".to_string(),
        Some(2) => "Yama ptrace_scope 2 (only with CAP_SYS_PTRACE)".to_string(),
        Some(n) => format!("Yama ptrace_scope {n} (no ptrace at all)"),
    };
    match probe {
        Probe::Refused(errno) => Check::warn(
            format!(
                "ptrace: refused here ({}); {scope_text}: the process-control chapter's tracer \
                 cannot run",
                errno_text(errno)
            ),
            "in a container, allow ptrace (docker run --cap-add SYS_PTRACE, or a seccomp \
             profile that permits it); on a machine, sudo sysctl kernel.yama.ptrace_scope=1",
        ),
        _ if scope.is_some_and(|s| s >= 3) || (scope == Some(2) && !cap) => Check::warn(
            format!("ptrace: {scope_text}: you cannot trace even your own children"),
            "sudo sysctl kernel.yama.ptrace_scope=1 (tracing your own children is all the \
             course needs)",
        ),
        _ => Check::ok(format!(
            "ptrace: you may trace the programs you start ({scope_text}{})",
            if cap { "; you have CAP_SYS_PTRACE" } else { "" }
        )),
    }
}

/// Unprivileged user namespaces, probed with `unshare(CLONE_NEWUSER)`.
fn user_namespaces() -> Check {
    let max = read_number("/proc/sys/user/max_user_namespaces");
    let probe = probe_in_child(|| {
        // SAFETY: unshare(2) takes flags only; the child exits at once.
        unsafe { libc::unshare(libc::CLONE_NEWUSER) }
    });
    match probe {
        Probe::Works => Check::ok(format!(
            "user namespaces: you may create one (max_user_namespaces {})",
            max.map_or_else(|| "?".to_string(), |m| m.to_string())
        )),
        Probe::Refused(errno) => Check::warn(
            format!(
                "user namespaces: unshare(CLONE_NEWUSER) is refused ({}): what needs one \
                 (a network namespace of your own) checks the ordinary path instead",
                errno_text(errno)
            ),
            "allow them: sudo sysctl user.max_user_namespaces=15000 (Debian: \
             kernel.unprivileged_userns_clone=1; Ubuntu 24.04: \
             kernel.apparmor_restrict_unprivileged_userns=0)",
        ),
        Probe::Unknown => Check::warn(
            "user namespaces: could not probe (fork failed)",
            "run `unshare --user true` to see",
        ),
    }
}

/// A network namespace of one's own: `unshare(CLONE_NEWNET)` directly (as
/// root), or inside a new user namespace (as anyone else).
fn network_namespaces() -> Check {
    let direct = probe_in_child(|| {
        // SAFETY: unshare(2) takes flags only; the child exits at once.
        unsafe { libc::unshare(libc::CLONE_NEWNET) }
    });
    if let Probe::Works = direct {
        return Check::ok(
            "network namespaces: you may create one (the network chapter can run a second \
             host)",
        );
    }
    let nested = probe_in_child(|| {
        // SAFETY: as above.
        unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) }
    });
    match nested {
        Probe::Works => Check::ok(
            "network namespaces: you may create one inside a user namespace of your own \
             (the network chapter can run a second host)",
        ),
        Probe::Refused(errno) => Check::warn(
            format!(
                "network namespaces: refused ({}): the network chapter's tests check the \
                 single-host path instead, and say so",
                errno_text(errno)
            ),
            "allow unprivileged user namespaces (see above), or work where you are root",
        ),
        Probe::Unknown => Check::warn(
            "network namespaces: could not probe (fork failed)",
            "run `unshare --user --net true` to see",
        ),
    }
}

/// POSIX message-queue limits: the system's (`/proc/sys/fs/mqueue`) and
/// whether this user may go past them.
fn mqueue_limits(caps: u64) -> Check {
    let limit = |name: &str| read_number(&format!("/proc/sys/fs/mqueue/{name}"));
    let (Some(queues), Some(msg_max), Some(size_max)) =
        (limit("queues_max"), limit("msg_max"), limit("msgsize_max"))
    else {
        return Check::warn(
            "POSIX message-queue limits: /proc/sys/fs/mqueue cannot be read",
            "is /proc mounted? (the POSIX message queue chapter reads these limits)",
        );
    };
    let beyond = if has(caps, CAP_SYS_RESOURCE) {
        "; you have CAP_SYS_RESOURCE, so you may go past msg_max and msgsize_max, which a \
         student may not"
    } else {
        "; mq_open beyond them fails with EINVAL (EMFILE past RLIMIT_MSGQUEUE)"
    };
    Check::ok(format!(
        "POSIX message-queue limits: queues_max {queues}, msg_max {msg_max} messages, \
         msgsize_max {size_max} bytes{beyond}"
    ))
}

/// `RLIMIT_MEMLOCK`: how much this user may lock (`mlock`, `SHM_LOCK`).
fn memlock_check(caps: u64) -> Check {
    let Some((soft, hard)) = rlimit(libc::RLIMIT_MEMLOCK) else {
        return Check::warn("cannot read RLIMIT_MEMLOCK", "run `ulimit -l` to see it");
    };
    let what = format!(
        "RLIMIT_MEMLOCK (ulimit -l): {} bytes you may lock with mlock or SHM_LOCK (hard limit {})",
        show_limit(soft),
        show_limit(hard)
    );
    if has(caps, CAP_IPC_LOCK) {
        return Check::ok(format!(
            "{what}; you have CAP_IPC_LOCK, so the limit does not bind you (it binds a student)"
        ));
    }
    // 64 KiB was the kernel's default before Linux 5.16: a page or two.
    if soft < 64 * 1024 {
        Check::warn(
            format!("{what}: less than a few pages"),
            "ulimit -l 65536 (or raise `memlock` in /etc/security/limits.conf)",
        )
    } else {
        Check::ok(what)
    }
}

/// `cc` on `PATH`: Rust links with it, and later chapters compile C.
fn c_compiler() -> Check {
    if let Some(cc) = on_path("cc") {
        return Check::ok(format!(
            "C compiler: cc ({}), which Rust also uses to link programs",
            cc.display()
        ));
    }
    let other = ["gcc", "clang"].into_iter().find_map(on_path);
    match other {
        Some(path) => Check::warn(
            format!(
                "no `cc` on PATH, only {}: Rust links with `cc` by default",
                path.display()
            ),
            "install your distribution's build tools (Debian/Ubuntu: sudo apt install build-essential)",
        ),
        None => Check::fail(
            "no C compiler (cc, gcc, clang) on PATH: Rust cannot link programs without one",
            "install your distribution's build tools (Debian/Ubuntu: sudo apt install build-essential; \
             Fedora: sudo dnf install gcc)",
        ),
    }
}

/// `ipcs` and `ipcrm`, which the System V chapters use.
fn ipc_tools() -> Check {
    let missing: Vec<&str> = ["ipcs", "ipcrm"]
        .into_iter()
        .filter(|tool| on_path(tool).is_none())
        .collect();
    if missing.is_empty() {
        Check::ok("ipcs and ipcrm are installed (to list and remove System V objects)")
    } else {
        Check::warn(
            format!(
                "{} not installed: the System V chapters use them",
                missing.join(" and ")
            ),
            "install util-linux (Debian/Ubuntu: sudo apt install util-linux)",
        )
    }
}

/// What `clean` would remove.
fn leftovers() -> Check {
    let found = clean::find();
    if found.leftovers.is_empty() {
        return Check::ok("no leftovers of earlier grading runs");
    }
    let mut what = format!(
        "{} leftover(s) of earlier grading runs:",
        found.leftovers.len()
    );
    for leftover in found.leftovers.iter().take(5) {
        what.push_str(&format!("\n         {leftover}"));
    }
    if found.leftovers.len() > 5 {
        what.push_str(&format!(
            "\n         … and {} more",
            found.leftovers.len() - 5
        ));
    }
    Check::warn(
        what,
        "cargo workbook clean (only removes these; --dry-run lists them)",
    )
}

/// The mdBook that `serve` and `build` run.
fn book_tool(ws: Option<&Workspace>) -> Check {
    let Some(ws) = ws else {
        return Check::warn(
            "not inside a workbook checkout: the book tool was not checked",
            "run `cargo workbook doctor` inside the course checkout",
        );
    };
    match mdbook::installed(ws) {
        Ok(Installed::Pinned(path)) => Check::ok(format!(
            "mdBook {MDBOOK_VERSION} is installed ({})",
            ws.relative(&path).display()
        )),
        Ok(Installed::Override(path, Some(version))) => {
            let what = format!("mdBook {version} from WORKBOOK_MDBOOK ({})", path.display());
            if version
                .split('.')
                .take(2)
                .eq(MDBOOK_VERSION.split('.').take(2))
            {
                Check::ok(what)
            } else {
                Check::warn(
                    format!("{what}: the book is written for {MDBOOK_VERSION}"),
                    "unset WORKBOOK_MDBOOK to use the pinned version",
                )
            }
        }
        Ok(Installed::Override(path, None)) => Check::fail(
            format!("WORKBOOK_MDBOOK={} does not run", path.display()),
            "point it to an mdbook binary, or unset it to use the pinned version",
        ),
        Ok(Installed::Missing(path)) => Check::warn(
            format!(
                "mdBook is not installed yet (it goes to {})",
                ws.relative(&path).display()
            ),
            "the first `cargo workbook serve` installs it (a few minutes, once)",
        ),
        Err(err) => Check::warn(
            format!("cannot tell whether mdBook is installed: {err:#}"),
            "run `cargo metadata` to see what cargo says",
        ),
    }
}

/// A POSIX name for a probe: `/wb<pid>x0-doctor-<what>`, in the grader's
/// pattern, so that `clean` removes it should the probe be interrupted.
fn probe_name(what: &str) -> String {
    format!("/wb{}x0-doctor-{what}", std::process::id())
}

/// `/proc/sys/kernel/<name>`.
fn kernel(name: &str) -> String {
    format!("/proc/sys/kernel/{name}")
}

/// A file's contents, trimmed.
fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// A file holding one number.
fn read_number(path: &str) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

/// The type of the file system mounted exactly at `dir`, from
/// `/proc/self/mounts` (the last mount there wins).
fn mount_type(dir: &str) -> Option<String> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mount_type_in(&mounts, dir)
}

/// [`mount_type`] over the text of a mounts table.
fn mount_type_in(mounts: &str, dir: &str) -> Option<String> {
    mounts.lines().rev().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
        (point == dir).then(|| fs_type.to_string())
    })
}

/// Bytes available to this user on the file system holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) fills the zero-initialised struct it is given.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    Some(stats.f_bavail * stats.f_frsize)
}

/// `getrlimit(resource)` as (soft, hard).
fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills the struct it is given.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return None;
    }
    Some((limit.rlim_cur, limit.rlim_max))
}

/// A limit as `ulimit` shows it.
fn show_limit(value: u64) -> String {
    if value == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        value.to_string()
    }
}

/// Bytes in the largest unit that keeps a number of at least 1.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The first executable file called `program` in a `PATH` directory.
fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_render_with_their_fix() {
        assert_eq!(Check::ok("fine").render(), "[ok]   fine\n");
        assert_eq!(
            Check::warn("low", "raise it").render(),
            "[warn] low\n       fix: raise it\n"
        );
        assert!(
            Check::fail("broken", "mend it")
                .render()
                .starts_with("[FAIL] broken\n")
        );
    }

    #[test]
    fn limits_below_their_minimum_are_named_with_a_sysctl() {
        let check = below_default(
            "limits".into(),
            &[("msgmnb", 2048, 16384), ("msgmax", 8192, 8192)],
        );
        assert_eq!(check.level, Level::Warn);
        assert!(
            check.what.contains("msgmnb is 2048, below 16384"),
            "{}",
            check.what
        );
        assert!(!check.what.contains("msgmax is"), "{}", check.what);
        assert_eq!(
            check.fix.as_deref(),
            Some("sudo sysctl -w kernel.msgmnb=16384")
        );
        let fine = below_default("limits".into(), &[("msgmnb", 16384, 16384)]);
        assert_eq!(fine, Check::ok("limits"));
    }

    #[test]
    fn mount_points_are_read_from_the_mounts_table() {
        let mounts = "proc /proc proc rw 0 0\ntmpfs /dev/shm tmpfs rw,nosuid 0 0\n\
                      mqueue /dev/mqueue mqueue rw 0 0\n";
        assert_eq!(mount_type_in(mounts, "/dev/shm").as_deref(), Some("tmpfs"));
        assert_eq!(
            mount_type_in(mounts, "/dev/mqueue").as_deref(),
            Some("mqueue")
        );
        assert_eq!(mount_type_in(mounts, "/dev"), None);
    }

    #[test]
    fn sizes_are_shown_in_readable_units() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(25 * 1024 * 1024 * 1024), "25.0 GiB");
    }

    #[test]
    fn capabilities_are_read_by_number() {
        let caps = (1u64 << CAP_IPC_LOCK) | (1u64 << CAP_SYS_PTRACE);
        assert!(has(caps, CAP_IPC_LOCK));
        assert!(has(caps, CAP_SYS_PTRACE));
        assert!(!has(caps, CAP_SYS_ADMIN));
        assert!(who_am_i(0).what.contains("no capability"));
    }

    #[test]
    fn every_privilege_is_named() {
        let lines: Vec<String> = privileges().into_iter().map(|c| c.what).collect();
        for (feature, line) in [
            "privileges:",
            "ptrace:",
            "user namespaces:",
            "network namespaces:",
            "POSIX message-queue limits:",
            "RLIMIT_MEMLOCK",
        ]
        .into_iter()
        .zip(&lines)
        {
            assert!(line.starts_with(feature), "{feature}: {line}");
        }
    }

    #[test]
    fn probe_names_follow_the_grader_pattern() {
        let name = probe_name("mq");
        let bare = name.trim_start_matches('/');
        assert_eq!(
            clean::grader_name_pid(bare),
            Some(std::process::id() as i32)
        );
    }
}
