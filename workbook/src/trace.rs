//! `cargo workbook trace LAB TEST`: runs one test of a lab again with the
//! lab's program under a system call tracer, and prints the IPC calls each
//! process made, so that a student sees what their program really did (the
//! child that never closed the write end of its pipe).
//!
//! # What is traced
//!
//! The test itself runs again, not a replay of its program: a test feeds
//! the program input as it goes, prepares a sandbox that is gone once it
//! ends, signals it, talks to it, starts other programs against it, and
//! draws all its inputs from a seed. With the same seed (`--seed N`, the
//! number the failure printed; it becomes `WORKBOOK_SEED`) it does all of
//! that again. The grader (`tests/grader/src/tracing.rs`) starts each run
//! of the lab's program under the tracer named in `WORKBOOK_TRACE_ARGV` and
//! keeps each trace in `target/workbook/trace/LAB/TEST/`, while the test
//! still sees the program itself.
//!
//! # Which tracer
//!
//! The course's own, once it exists: the student's lab 17 program (`ptrace
//! run`), if its suite passes (checked once per change of the lab); else
//! `strace -f`, if it is installed; else a message that says how to get
//! either. `--with lab` or `--with strace` chooses; `WORKBOOK_TRACER=PATH`
//! names any program that speaks lab 17's command line (an instructor may
//! point it at the reference solution). The reference solution is never
//! used on its own: a student's copy of the course does not have it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::UsageError;
use crate::libtest::{self, Outcome};
use crate::process;
use crate::sha256;
use crate::workspace::{Lab, Workspace};

/// The calls shown by default: lab 17's `ipc` group (`labs/17-ptrace/src/
/// syscalls.rs`), for strace, which has no such group. `?name`: skipped
/// where the architecture has no such call.
const IPC_CALLS: &str = "?fork,?vfork,clone,clone3,execve,execveat,wait4,waitid,kill,tkill,\
                         tgkill,?pipe,pipe2,dup,?dup2,dup3,close,?mknod,mknodat,msgget,msgsnd,\
                         msgrcv,msgctl,semget,?semop,semtimedop,semctl,shmget,shmat,shmdt,\
                         shmctl,mq_open,mq_unlink,mq_timedsend,mq_timedreceive,mq_notify,\
                         mq_getsetattr,socket,socketpair,bind,listen,?accept,accept4,connect,\
                         shutdown,eventfd2";

/// The lab whose program is the course's tracer.
const TRACER_LAB: &str = "ptrace";

/// What `cargo workbook trace` was asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// The lab: number, directory or topic.
    pub lab: &'a str,
    /// The test's exact name.
    pub test: &'a str,
    /// `--seed N`: the inputs of the run to repeat.
    pub seed: Option<&'a str>,
    /// `--with lab|strace`.
    pub with: Option<&'a str>,
    /// `--filter LIST`: the calls to show.
    pub filter: Option<&'a str>,
}

/// A tracer and how to start a program under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracer {
    /// A program with lab 17's command line, and where it comes from.
    Course { program: PathBuf, origin: String },
    /// strace.
    Strace { program: PathBuf },
}

impl Tracer {
    /// Its command line, one word per line, `{out}` for the trace file,
    /// as the grader takes it (`WORKBOOK_TRACE_ARGV`).
    pub fn argv(&self, filter: Option<&str>) -> String {
        let words: Vec<String> = match self {
            Tracer::Course { program, .. } => vec![
                program.display().to_string(),
                "run".into(),
                "-o".into(),
                "{out}".into(),
                "-e".into(),
                filter.unwrap_or("ipc").into(),
                "--".into(),
            ],
            Tracer::Strace { program } => {
                let calls = match filter {
                    None | Some("ipc") => IPC_CALLS.to_string(),
                    Some(list) => list.to_string(),
                };
                vec![
                    program.display().to_string(),
                    "-f".into(),
                    "-q".into(),
                    "-y".into(),
                    "-o".into(),
                    "{out}".into(),
                    "-e".into(),
                    format!("trace={calls}"),
                    "--".into(),
                ]
            }
        };
        words.join("\n")
    }

    /// One line about it, for the report.
    pub fn describe(&self) -> String {
        match self {
            Tracer::Course { program, origin } => format!("{} ({origin})", program.display()),
            Tracer::Strace { program } => format!("{} (strace -f)", program.display()),
        }
    }
}

/// Runs `cargo workbook trace`.
pub fn run(ws: &Workspace, request: &Request) -> Result<ExitCode> {
    let lab = ws.select_one(request.lab)?;
    if let Some(seed) = request.seed
        && (seed.is_empty() || !seed.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(UsageError(format!(
            "`{seed}` is not a seed: a number, as in `WORKBOOK_SEED=1234 cargo test`"
        ))
        .into());
    }
    let tracer = choose_tracer(ws, request.with)?;
    let dir = ws
        .state_dir()?
        .join("trace")
        .join(&lab.name)
        .join(request.test);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    eprintln!(
        "workbook: running {} of lab {} again, its program traced by {}",
        request.test,
        lab.number,
        tracer.describe()
    );
    let outcome = run_test(ws, lab, request, &tracer, &dir)?;
    let filter_closes =
        matches!(tracer, Tracer::Strace { .. }) && matches!(request.filter, None | Some("ipc"));
    print!("{}", report(&dir, &outcome, filter_closes)?);
    Ok(ExitCode::SUCCESS)
}

/// How the traced test ended: passed or not, and its failure message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// Whether it passed this time.
    pub passed: bool,
    /// Its failure message, if it failed.
    pub message: Option<String>,
}

/// Runs the test with the grader's tracing variables set.
fn run_test(
    ws: &Workspace,
    lab: &Lab,
    request: &Request,
    tracer: &Tracer,
    dir: &Path,
) -> Result<TestOutcome> {
    let mut cmd = process::cargo(&ws.root);
    cmd.args(["test", "-p", lab.package(), "--test", lab.test_target()])
        .args(["--", "--exact", request.test, "--test-threads=1"]);
    process::grading_env(&mut cmd)
        .env("WORKBOOK_TRACE_ARGV", tracer.argv(request.filter))
        .env("WORKBOOK_TRACE_DIR", dir);
    if let Some(seed) = request.seed {
        cmd.env("WORKBOOK_SEED", seed);
    }
    let captured = process::capture(&mut cmd)?;
    let results = libtest::parse(&captured.stdout);
    let Some(test) = results.tests.iter().find(|t| t.name == request.test) else {
        if results.announced == 0
            && let Some(error) = libtest::first_compile_error(&captured.stderr)
        {
            bail!("lab {} does not compile: {error}", lab.number);
        }
        return Err(UsageError(format!(
            "lab {} has no test named `{}` (`cargo test -p {} -- --list` lists them)",
            lab.number,
            request.test,
            lab.package()
        ))
        .into());
    };
    Ok(TestOutcome {
        passed: test.outcome == Outcome::Passed,
        message: test.message.clone(),
    })
}

/// The tracer to use: `--with`'s, or the first that works of lab 17's
/// program and strace.
fn choose_tracer(ws: &Workspace, with: Option<&str>) -> Result<Tracer> {
    if let Some(program) = std::env::var_os("WORKBOOK_TRACER") {
        return Ok(Tracer::Course {
            program: PathBuf::from(program),
            origin: "WORKBOOK_TRACER".to_string(),
        });
    }
    match with {
        Some("lab") => course_tracer(ws)?.context(
            "lab 17 does not pass its suite yet: finish it (`cargo workbook grade 17`), or \
             use `--with strace`",
        ),
        Some("strace") => strace()
            .context("strace is not installed (on Debian or Ubuntu: `sudo apt install strace`)"),
        Some(other) => Err(UsageError(format!(
            "`--with {other}`: the tracer is `lab` (your lab 17 program) or `strace`"
        ))
        .into()),
        None => {
            if let Some(tracer) = course_tracer(ws)? {
                return Ok(tracer);
            }
            strace().context(
                "no tracer to use: your lab 17 program does not pass its suite yet, and strace \
                 is not installed. Finish lab 17 (`cargo workbook grade 17`), or install strace \
                 (on Debian or Ubuntu: `sudo apt install strace`)",
            )
        }
    }
}

/// strace, if it is in `PATH`.
fn strace() -> Option<Tracer> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("strace"))
        .find(|candidate| candidate.is_file())
        .map(|program| Tracer::Strace { program })
}

/// The student's lab 17 program, if its suite passes. Checking costs a run
/// of the suite: its result is kept, keyed by the lab's sources, in
/// `target/workbook/trace/tracer-ok`.
fn course_tracer(ws: &Workspace) -> Result<Option<Tracer>> {
    let Some(lab) = ws.labs.iter().find(|lab| lab.topic == TRACER_LAB) else {
        return Ok(None);
    };
    let program = ws.target_dir()?.join("debug").join(lab.package());
    let stamp_file = ws.state_dir()?.join("trace").join("tracer-ok");
    let stamp = fingerprint(ws, lab)?;
    let known = fs::read_to_string(&stamp_file).is_ok_and(|text| text.trim() == stamp);
    if !(known && program.is_file()) {
        eprintln!(
            "workbook: checking that your lab {} passes its suite (once per change of it) …",
            lab.number
        );
        let mut cmd = process::cargo(&ws.root);
        cmd.args(["test", "-p", lab.package(), "--test", lab.test_target()]);
        let captured = process::capture(process::grading_env(&mut cmd))?;
        let results = libtest::parse(&captured.stdout);
        let passes = captured.success && results.total() > 0 && results.passed() == results.total();
        if !passes || !program.is_file() {
            return Ok(None);
        }
        if let Some(parent) = stamp_file.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&stamp_file, format!("{stamp}\n"))
            .with_context(|| format!("cannot write {}", stamp_file.display()))?;
    }
    Ok(Some(Tracer::Course {
        program,
        origin: format!("your lab {}, which passes its suite", lab.number),
    }))
}

/// A digest of the lab's sources and suite: the stamp of a passing check.
fn fingerprint(ws: &Workspace, lab: &Lab) -> Result<String> {
    let mut files: Vec<PathBuf> = Vec::new();
    let src = ws.lab_dir(lab).join("src");
    for entry in fs::read_dir(&src).with_context(|| format!("cannot list {}", src.display()))? {
        files.push(
            entry
                .with_context(|| format!("cannot list {}", src.display()))?
                .path(),
        );
    }
    files.push(ws.lab_dir(lab).join("Cargo.toml"));
    let suites = ws.root.join("tests");
    if let Ok(entries) = fs::read_dir(&suites) {
        files.extend(
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| {
                    path.to_string_lossy()
                        .ends_with(&format!("-{TRACER_LAB}.rs"))
                }),
        );
    }
    files.sort();
    let mut digest = sha256::Sha256::new();
    for file in files {
        digest.update(file.to_string_lossy().as_bytes());
        digest.update(&fs::read(&file).unwrap_or_default());
    }
    Ok(digest
        .finish()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

// ---- the report ----------------------------------------------------------

/// The report: for each traced run, its command, each process's calls,
/// what the processes still running at the end held; then how the test
/// ended.
///
/// `filter_closes`: strace shows every `close`; keep, as lab 17 does, only
/// those of IPC descriptors (its `-y` shows what each one was).
pub fn report(dir: &Path, outcome: &TestOutcome, filter_closes: bool) -> Result<String> {
    let mut runs: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter_map(|path| {
            let number = path
                .file_name()?
                .to_str()?
                .strip_suffix(".cmd")?
                .parse()
                .ok()?;
            Some((number, path))
        })
        .collect();
    runs.sort();
    let mut out = String::new();
    if runs.is_empty() {
        out.push_str("the test ran no program of the lab: nothing was traced\n");
    }
    for (number, command_file) in runs {
        let command = fs::read_to_string(&command_file).unwrap_or_default();
        let _ = writeln!(out, "\nrun {number}: $ {}", command.trim_end());
        let text = fs::read_to_string(dir.join(format!("{number}.trace"))).unwrap_or_default();
        let mut trace = Trace::parse(&text);
        if filter_closes {
            trace.keep_ipc_closes();
        }
        if trace.order.is_empty() {
            out.push_str("  (no trace: the tracer wrote nothing)\n");
            continue;
        }
        out.push_str(&trace.by_process());
        out.push_str(&trace.still_held());
    }
    out.push('\n');
    match (&outcome.passed, &outcome.message) {
        (true, _) => out.push_str(
            "the test passed this time: if it failed for you, run this again with the seed \
             its failure printed (--seed N)\n",
        ),
        (false, Some(message)) => {
            out.push_str("the test failed again; its message:\n");
            for line in message.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        (false, None) => out.push_str("the test failed again\n"),
    }
    Ok(out)
}

/// A trace, by process: the course's tracer's `[pid N] text` lines or
/// strace's `N text` lines, strace's `<unfinished ...>` and `<... resumed>`
/// halves joined.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Pids in order of first appearance.
    order: Vec<i32>,
    /// The lines of each pid, in order.
    lines: HashMap<i32, Vec<String>>,
}

impl Trace {
    /// Reads a trace file of either tracer.
    pub fn parse(text: &str) -> Trace {
        let mut trace = Trace::default();
        let mut pending: HashMap<i32, String> = HashMap::new();
        for line in text.lines() {
            let (pid, rest) = match line.strip_prefix("[pid ") {
                Some(rest) => match rest.split_once("] ") {
                    Some((pid, rest)) => (pid, rest),
                    None => continue,
                },
                None => match line.split_once(char::is_whitespace) {
                    Some((pid, rest)) => (pid, rest.trim_start()),
                    None => continue,
                },
            };
            let Ok(pid) = pid.parse::<i32>() else {
                continue;
            };
            if let Some(head) = rest.strip_suffix("<unfinished ...>") {
                pending.insert(pid, head.trim_end().to_string());
                continue;
            }
            let text = match rest.strip_prefix("<... ") {
                Some(resumed) => {
                    let tail = resumed.split_once(" resumed>").map_or("", |(_, tail)| tail);
                    format!("{}{tail}", pending.remove(&pid).unwrap_or_default())
                }
                None => rest.to_string(),
            };
            trace.push(pid, squeeze(&text));
        }
        for (pid, head) in pending {
            trace.push(pid, format!("{head} …"));
        }
        trace
    }

    fn push(&mut self, pid: i32, text: String) {
        if !self.order.contains(&pid) {
            self.order.push(pid);
        }
        self.lines.entry(pid).or_default().push(text);
    }

    /// Drops strace's `close` lines of descriptors that were no IPC ones:
    /// `close(3</usr/lib/libc.so.6>)`. Pipes, sockets and anonymous inodes
    /// (`<pipe:[1234]>`) stay, and so do paths that are FIFOs or sockets
    /// now, and POSIX message queues.
    pub fn keep_ipc_closes(&mut self) {
        for lines in self.lines.values_mut() {
            lines.retain(|text| {
                let Some(rest) = text.strip_prefix("close(") else {
                    return true;
                };
                let Some((_, what)) = rest.split_once('<') else {
                    return true;
                };
                let what = what.split_once(">)").map_or(what, |(what, _)| what);
                is_ipc_target(what)
            });
        }
    }

    /// The pids `pid` started, in order: the results of its clone-like
    /// calls.
    fn children(&self, pid: i32) -> Vec<i32> {
        self.lines
            .get(&pid)
            .into_iter()
            .flatten()
            .filter(|text| is_clone(text))
            .filter_map(|text| result(text)?.parse().ok())
            .filter(|child: &i32| *child > 0)
            .collect()
    }

    /// Each process's parent, as far as the trace shows.
    fn parents(&self) -> BTreeMap<i32, i32> {
        let mut parents = BTreeMap::new();
        for &pid in &self.order {
            for child in self.children(pid) {
                parents.insert(child, pid);
            }
        }
        parents
    }

    /// The processes by ancestry: each root (a pid no other started),
    /// then its descendants, depth first, each with its depth.
    fn family_order(&self) -> Vec<(i32, usize)> {
        let parents = self.parents();
        let mut order = Vec::new();
        for &root in self.order.iter().filter(|pid| !parents.contains_key(pid)) {
            self.visit(root, 0, &mut order);
        }
        // Any left out (a cycle cannot happen, but pids can be reused).
        for &pid in &self.order {
            if !order.iter().any(|(seen, _)| *seen == pid) {
                order.push((pid, 0));
            }
        }
        order
    }

    fn visit(&self, pid: i32, depth: usize, order: &mut Vec<(i32, usize)>) {
        if order.iter().any(|(seen, _)| *seen == pid) {
            return;
        }
        order.push((pid, depth));
        for child in self.children(pid) {
            self.visit(child, depth + 1, order);
        }
    }

    /// Each process's calls under a heading, children after parents.
    pub fn by_process(&self) -> String {
        let parents = self.parents();
        let mut out = String::new();
        for (pid, depth) in self.family_order() {
            let indent = "  ".repeat(depth + 1);
            let role = match parents.get(&pid) {
                Some(parent) => format!("child of {parent}"),
                None => "the program".to_string(),
            };
            let _ = writeln!(out, "{indent}process {pid} ({role})");
            for text in self.lines.get(&pid).into_iter().flatten() {
                let _ = writeln!(out, "{indent}    {text}");
            }
        }
        out
    }

    /// Which pipe and socket descriptors each process still held when the
    /// trace ended, for the processes that had not ended by then (killed
    /// with the run, as when a test times out): the pipe end a reader's
    /// end-of-file waits for. Empty when there are none.
    pub fn still_held(&self) -> String {
        let mut tables: HashMap<i32, Fds> = HashMap::new();
        let mut next = Numbering::default();
        let mut held = Vec::new();
        for (pid, _) in self.family_order() {
            let mut fds = tables.remove(&pid).unwrap_or_default();
            let lines = self.lines.get(&pid).cloned().unwrap_or_default();
            for text in &lines {
                let text = strip_fd_paths(text);
                if let Some(child) = fds.apply(&text, &mut next) {
                    tables.insert(child, fds.clone());
                }
            }
            // A SIGKILL is how a run's leftovers are ended: not an end of
            // the process's own.
            let ended = lines.iter().any(|text| {
                text.starts_with("+++ exited")
                    || (text.starts_with("+++ killed by") && !text.contains("SIGKILL"))
            });
            if !ended && !fds.0.is_empty() {
                held.push((pid, fds));
            }
        }
        if held.is_empty() {
            return String::new();
        }
        let mut out =
            String::from("  still running when the test ended (or killed with it), and holding:\n");
        for (pid, fds) in held {
            for (fd, what) in &fds.0 {
                let _ = writeln!(out, "    process {pid}: descriptor {fd}, {}", what.name);
            }
        }
        out.push_str(
            "  (a read on a pipe sees end-of-file only once every write end is closed, in \
             every process)\n",
        );
        out
    }
}

/// What one descriptor is, as far as the trace shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Open {
    name: String,
    cloexec: bool,
}

/// The descriptors of one process the trace made: pipe ends, sockets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fds(BTreeMap<i32, Open>);

/// Numbers pipes and sockets in the order the trace made them.
#[derive(Debug, Default)]
struct Numbering {
    pipes: u32,
    sockets: u32,
}

impl Fds {
    /// Follows one call; returns the pid of a child it made, whose
    /// descriptors are then these.
    fn apply(&mut self, text: &str, next: &mut Numbering) -> Option<i32> {
        let (call, args) = text.split_once('(')?;
        let value = result(text)?;
        let ok = !value.starts_with('-') && !value.starts_with('?');
        if !ok {
            return None;
        }
        let first_number = |text: &str| -> Option<i32> {
            text.split(|c: char| !(c.is_ascii_digit() || c == '-'))
                .find(|part| !part.is_empty())?
                .parse()
                .ok()
        };
        let cloexec = args.contains("O_CLOEXEC") || args.contains("SOCK_CLOEXEC");
        match call {
            "pipe" | "pipe2" | "socketpair" => {
                let inside = args.split_once('[')?.1.split_once(']')?.0;
                let (a, b) = inside.split_once(',')?;
                let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if call == "socketpair" {
                    next.sockets += 1;
                    let name = format!("an end of socket pair {}", next.sockets);
                    self.insert(a, &name, cloexec);
                    self.insert(b, &name, cloexec);
                } else {
                    next.pipes += 1;
                    let number = next.pipes;
                    self.insert(a, &format!("the read end of pipe {number}"), cloexec);
                    self.insert(b, &format!("the write end of pipe {number}"), cloexec);
                }
            }
            "socket" | "accept" | "accept4" | "eventfd2" => {
                next.sockets += 1;
                let kind = if call == "eventfd2" {
                    "eventfd"
                } else {
                    "socket"
                };
                let name = format!("{kind} {}", next.sockets);
                self.insert(value.parse().ok()?, &name, cloexec);
            }
            "dup" | "dup2" | "dup3" => {
                let old = first_number(args)?;
                let new: i32 = value.parse().ok()?;
                match self.0.get(&old).cloned() {
                    Some(open) => {
                        let cloexec = call == "dup3" && args.contains("O_CLOEXEC");
                        self.0.insert(new, Open { cloexec, ..open });
                    }
                    None => {
                        self.0.remove(&new);
                    }
                }
            }
            "close" => {
                self.0.remove(&first_number(args)?);
            }
            "execve" | "execveat" => self.0.retain(|_, open| !open.cloexec),
            _ if is_clone(text) => return value.parse().ok().filter(|pid: &i32| *pid > 0),
            _ => {}
        }
        None
    }

    fn insert(&mut self, fd: i32, name: &str, cloexec: bool) {
        self.0.insert(
            fd,
            Open {
                name: name.to_string(),
                cloexec,
            },
        );
    }
}

/// Whether a descriptor open on `what` (strace's `-y` text) is an IPC
/// one.
fn is_ipc_target(what: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    if ["pipe:", "socket:", "anon_inode:", "/dev/mqueue/"]
        .iter()
        .any(|kind| what.starts_with(kind))
    {
        return true;
    }
    fs::metadata(what).is_ok_and(|meta| meta.file_type().is_fifo() || meta.file_type().is_socket())
}

/// Whether `text` is a call that makes a process or thread.
fn is_clone(text: &str) -> bool {
    ["clone(", "clone3(", "fork(", "vfork("]
        .iter()
        .any(|call| text.starts_with(call))
}

/// What follows the last `) = ` of a call's line.
fn result(text: &str) -> Option<&str> {
    text.rsplit_once(") = ")
        .map(|(_, value)| value.split_whitespace().next().unwrap_or(value))
}

/// strace's alignment spaces before ` = ` squeezed to one.
fn squeeze(text: &str) -> String {
    match text.rsplit_once(")  ") {
        Some((call, rest)) if rest.trim_start().starts_with("= ") => {
            format!("{call}) {}", rest.trim_start())
        }
        _ => text.to_string(),
    }
}

/// strace's `-y` decorations (`3</usr/lib/libc.so.6>`, `4<pipe:[1234]>`)
/// removed, leaving the numbers.
fn strip_fd_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut last = ' ';
    while let Some(c) = chars.next() {
        if c == '<' && last.is_ascii_digit() {
            for inner in chars.by_ref() {
                if inner == '>' {
                    break;
                }
            }
            continue;
        }
        out.push(c);
        last = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that keeps the write end of its pipe and blocks reading it,
    /// as the course's tracer writes it (the test killed it at its deadline).
    const OURS: &str = "\
[pid 100] pipe2([3, 4], O_CLOEXEC) = 0
[pid 101] close(3) = 0
[pid 100] clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f00) = 101
[pid 100] close(3) = 0
[pid 100] close(4) = 0
";

    /// The same, as `strace -f -y -o FILE` writes it.
    const STRACE: &str = "\
100   pipe2([3<pipe:[77]>, 4<pipe:[77]>], O_CLOEXEC) = 0
100   clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f00) = 101
101   close(3<pipe:[77]>)               = 0
100   close(3<pipe:[77]>)               = 0
101   read(0<pipe:[77]>,  <unfinished ...>
100   close(4<pipe:[77]>)               = 0
";

    #[test]
    fn both_tracers_read_alike_and_children_follow_parents() {
        for text in [OURS, STRACE] {
            let trace = Trace::parse(text);
            assert_eq!(trace.order, vec![100, 101]);
            assert_eq!(trace.children(100), vec![101]);
            let shown = trace.by_process();
            assert!(
                shown.starts_with("  process 100 (the program)\n"),
                "{shown}"
            );
            assert!(
                shown.contains("\n    process 101 (child of 100)\n"),
                "{shown}"
            );
        }
        let strace = Trace::parse(STRACE);
        assert_eq!(strace.lines[&100][2], "close(3<pipe:[77]>) = 0");
        assert_eq!(strace.lines[&101][1], "read(0<pipe:[77]>, …");
    }

    #[test]
    fn a_child_that_kept_the_write_end_is_named() {
        for text in [OURS, STRACE] {
            let held = Trace::parse(text).still_held();
            assert!(
                held.contains("process 101: descriptor 4, the write end of pipe 1"),
                "{held}"
            );
            assert!(!held.contains("process 100:"), "{held}");
        }
    }

    #[test]
    fn processes_that_ended_hold_nothing_and_exec_closes_cloexec_ends() {
        let ended =
            format!("{OURS}[pid 101] +++ exited with 0 +++\n[pid 100] +++ exited with 0 +++\n");
        assert_eq!(Trace::parse(&ended).still_held(), "");
        let execed =
            format!("{OURS}[pid 101] execve(\"/bin/cat\", [\"cat\"], 0x1 /* 2 vars */) = 0\n");
        assert_eq!(Trace::parse(&execed).still_held(), "");
        let copied = format!("{OURS}[pid 101] dup2(4, 1) = 1\n[pid 101] close(4) = 0\n");
        let held = Trace::parse(&copied).still_held();
        assert!(
            held.contains("process 101: descriptor 1, the write end of pipe 1"),
            "{held}"
        );
    }

    #[test]
    fn only_the_closes_of_ipc_descriptors_stay() {
        let mut trace = Trace::parse(
            "7 close(3</usr/lib/libc.so.6>) = 0\n7 close(4<pipe:[9]>) = 0\n7 close(5) = 0\n",
        );
        trace.keep_ipc_closes();
        assert_eq!(trace.lines[&7], ["close(4<pipe:[9]>) = 0", "close(5) = 0"]);
    }

    #[test]
    fn tracer_command_lines() {
        let ours = Tracer::Course {
            program: PathBuf::from("/t/ptrace"),
            origin: "x".into(),
        };
        assert_eq!(ours.argv(None), "/t/ptrace\nrun\n-o\n{out}\n-e\nipc\n--");
        let strace = Tracer::Strace {
            program: PathBuf::from("/usr/bin/strace"),
        };
        let argv = strace.argv(Some("pipe2,close"));
        assert!(argv.ends_with("\n-e\ntrace=pipe2,close\n--"), "{argv}");
    }
}
