//! The command line of the student commands: what each accepts, its help
//! text, and one-line usage errors (exit status 2). Written out by hand so
//! that no argument-parsing crate has to compile before the first command.

use std::collections::BTreeMap;
use std::ffi::OsString;

use workbook::UsageError;

/// One command: its name, the line `--help` lists it with, its full help,
/// its positional arguments and its options.
struct Spec {
    name: &'static str,
    about: &'static str,
    help: &'static str,
    usage: &'static str,
    /// `(NAME, required)`, in order.
    positionals: &'static [(&'static str, bool)],
    options: &'static [Opt],
}

/// One option: `--long`, maybe `-s`, maybe taking a value.
struct Opt {
    long: &'static str,
    short: Option<char>,
    value: Option<&'static str>,
}

const fn flag(long: &'static str, short: Option<char>) -> Opt {
    Opt {
        long,
        short,
        value: None,
    }
}

const fn valued(long: &'static str, short: Option<char>, value: &'static str) -> Opt {
    Opt {
        long,
        short,
        value: Some(value),
    }
}

/// The student commands, in the order `--help` lists them.
const COMMANDS: [Spec; 10] = [
    Spec {
        name: "grade",
        about: "Grade your labs and print a scoreboard",
        usage: "cargo workbook grade [--json] [--junit FILE] [--csv FILE] [--granularity G] [--points N] [LAB]",
        positionals: &[("LAB", false)],
        options: &[
            flag("json", None),
            valued("json-file", None, "FILE"),
            valued("junit", None, "FILE"),
            valued("csv", None, "FILE"),
            valued("granularity", None, "test|task|lab"),
            valued("points", None, "N"),
        ],
        help: "\
Grade your labs and print a scoreboard

Runs each lab's grading suite (`cargo test -p TOPIC --test TOPIC`) and shows,
per lab, how many tests pass, whether the lab is not started, in progress or
done, and the first failing test with the start of its message. For the full
output of one lab, run `cargo test` inside its directory.

A grade counts only if the files that decide it are as shipped (tests/,
workbook/, every Cargo.toml, Cargo.lock and build.rs, .cargo/, .config/ …;
tests/MANIFEST.sha256 lists them). They are checked before anything is
built, after each lab is built and after its suite has run. A lab whose
grading files were changed, or to which a file that can change its build
was added (a build.rs, a .cargo/config.toml), is graded as failed, with the
reason; the first line of the output says so.

Exit status: 0 when every graded lab is done, 1 otherwise.

Usage: cargo workbook grade [OPTIONS] [LAB]

Arguments:
  [LAB]  The lab to grade: number (`02`), directory (`02-pipes`) or topic
         (`pipes`); all labs when omitted

Options:
      --json                 Print a JSON document instead of the scoreboard
                             (for scripts, classroom tools and gradebooks):
                             the commit, when, how long, and per lab its
                             tests, tasks, points and the tamper check
      --json-file <FILE>     Write that JSON document to FILE instead, once
                             every lab is graded (the scoreboard still shows)
      --junit <FILE>         Also write the results as JUnit XML to FILE (for
                             CI services and learning platforms)
      --csv <FILE>           Also write one CSV row per lab to FILE (commit,
                             time, tests passed and total, points, whether
                             the grading files are as shipped)
      --granularity <UNIT>   How points are earned: `test` (each passing test
                             earns its points), `task` (a task earns its
                             tests' points when they all pass) or `lab` (a
                             lab earns them when all its tests pass)
                             [default: test]
      --points <N>           Points per graded test [default: 1]
  -h, --help                 Print help
",
    },
    Spec {
        name: "watch",
        about: "Grade a lab again each time you save one of its files",
        usage: "cargo workbook watch [--poll] [LAB]",
        positionals: &[("LAB", false)],
        options: &[flag("poll", None)],
        help: "\
Grade a lab again each time you save one of its files

Grades the lab (or every lab) once, then again whenever a file under
labs/NN-topic/ changes, showing the lab's new score. Press Enter to grade
again by hand; type q and Enter, or press Ctrl-C, to stop.

Changes are noticed at once through file change events, and in any case
within a second: the files are also compared every second, for file systems
that send no events (network shares, some container mounts).

Usage: cargo workbook watch [OPTIONS] [LAB]

Arguments:
  [LAB]  The lab to watch: number (`02`), directory (`02-pipes`) or topic
         (`pipes`); all labs when omitted

Options:
      --poll  Do not use file change events; only compare the files every
              second
  -h, --help  Print help
",
    },
    Spec {
        name: "hint",
        about: "Show a hint for a lab's TODO, one more each time you ask",
        usage: "cargo workbook hint [--all] LAB [N]",
        positionals: &[("LAB", true), ("N", false)],
        options: &[flag("all", None)],
        help: "\
Show a hint for a lab's TODO, one more each time you ask

Without N, the TODO is the first one not done yet: TODO N is done once no
todo!(\"TODO(N)…\") is left in the lab's src/lib.rs. The first call shows its
first hint; each later call shows the next one, from a nudge to nearly the
answer. What you have seen is remembered in target/workbook/hints.toml
(delete it to start over).

Usage: cargo workbook hint [OPTIONS] <LAB> [N]

Arguments:
  <LAB>  The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`)
  [N]    The TODO number, as in `// TODO(N)` and task N of the chapter

Options:
      --all   Show every hint of the TODO at once
  -h, --help  Print help
",
    },
    Spec {
        name: "reset",
        about: "Put a lab's files back as they were shipped (your changes are lost)",
        usage: "cargo workbook reset [--yes] LAB",
        positionals: &[("LAB", true)],
        options: &[flag("yes", Some('y'))],
        help: "\
Put a lab's files back as they were shipped (your changes are lost)

Lists the lab's files that differ from the shipped version (recorded in
labs/MANIFEST.sha256 and found in the git history), asks, then puts them
back. Your version is first copied to target/workbook/reset/, just in case.
Files you added are left alone.

Usage: cargo workbook reset [OPTIONS] <LAB>

Arguments:
  <LAB>  The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`)

Options:
  -y, --yes   Do not ask (needed when there is no terminal to ask on)
  -h, --help  Print help
",
    },
    Spec {
        name: "trace",
        about: "Run a test again and show the IPC system calls of each process it ran",
        usage: "cargo workbook trace [--seed N] [--with lab|strace] [--filter LIST] LAB TEST",
        positionals: &[("LAB", true), ("TEST", true)],
        options: &[
            valued("seed", None, "N"),
            valued("with", None, "TRACER"),
            valued("filter", Some('e'), "LIST"),
        ],
        help: "\
Run a test again and show the IPC system calls of each process it ran

Runs one test of a lab again (`cargo test -p TOPIC -- --exact TEST`), with
every run of the lab's program under a system call tracer, and prints, for
each run, the IPC calls (pipe2, clone, dup2, close, msgget, socket, ...) of
each process it started, children under their parents; then the pipe and
socket descriptors of the processes still running when the test ended (the
write end a reader waits for); then the test's message.

Give the seed a failure printed (`to repeat these inputs: WORKBOOK_SEED=N`)
to see the very inputs that failed. The tracer is your own lab 17 program
once its suite passes (chapter 17), else strace if it is installed. The
traces stay in target/workbook/trace/LAB/TEST/.

Usage: cargo workbook trace [OPTIONS] <LAB> <TEST>

Arguments:
  <LAB>   The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`)
  <TEST>  The test's exact name, as `cargo test` prints it

Options:
      --seed <N>         Repeat the inputs of the run whose failure printed
                         this seed
      --with <TRACER>    `lab` (your lab 17 program) or `strace`
  -e, --filter <LIST>    The calls to show, comma-separated [default: ipc]
  -h, --help             Print help
",
    },
    Spec {
        name: "doctor",
        about: "Check that this machine is ready for the labs",
        usage: "cargo workbook doctor",
        positionals: &[],
        options: &[],
        help: "\
Check that this machine is ready for the labs

Reports, each with ok, warn or FAIL and a fix: Linux and the kernel version;
whether System V and POSIX IPC work; their limits (msgmnb, msgmax, msgmni,
the semaphore limits, shmmax, shmall, shmmni); /dev/shm and /dev/mqueue;
RLIMIT_MSGQUEUE and RLIMIT_NOFILE; what this user may do that some chapters
lean on (its capabilities, ptrace and Yama's ptrace_scope, user namespaces,
network namespaces, the POSIX message-queue limits, RLIMIT_MEMLOCK), probed
where a setting alone cannot tell; a C compiler; ipcs and ipcrm; leftovers
of earlier grading runs; the book tool.

Exit status: 0 unless a check failed.

Usage: cargo workbook doctor

Options:
  -h, --help  Print help
",
    },
    Spec {
        name: "clean",
        about: "Remove what interrupted grading runs left behind (only that)",
        usage: "cargo workbook clean [--dry-run]",
        positionals: &[],
        options: &[flag("dry-run", Some('n'))],
        help: "\
Remove what interrupted grading runs left behind (only that)

A test that is killed (Ctrl-C during a grade, a crash) cannot clean up
after the program it ran. The grader names what it creates after its test
process: sandbox directories $TMPDIR/workbook-<pid>-*, POSIX IPC names
/wb<pid>x<n>-*, and System V keys made by ftok from key files in the
sandbox. clean removes, for your user only:

  - sandboxes whose test process <pid> is gone;
  - processes still running inside such a sandbox;
  - POSIX shared memory, semaphores and message queues named
    wb<pid>x<n>-… whose test process is gone;
  - System V objects whose key comes from such a sandbox's key file,
    unless a process is attached, waiting, or was the last to use
    them and still runs.

Everything else stays: IPC_PRIVATE objects (nothing says who made them),
other programs' keys, anything of a test still running. Everything found
is listed before it is removed.

Usage: cargo workbook clean [OPTIONS]

Options:
  -n, --dry-run  Only list what would be removed
  -h, --help     Print help
",
    },
    Spec {
        name: "serve",
        about: "Serve the book on this machine and rebuild it when a page changes",
        usage: "cargo workbook serve [--port PORT] [--open]",
        positionals: &[],
        options: &[valued("port", Some('p'), "PORT"), flag("open", None)],
        help: "\
Serve the book on this machine and rebuild it when a page changes

Installs the pinned mdBook into the target directory on first use (it
compiles it, which takes a few minutes), then serves the book on
http://127.0.0.1:PORT/. Set WORKBOOK_MDBOOK=/path/to/mdbook to use an
mdBook you already have instead.

Usage: cargo workbook serve [OPTIONS]

Options:
  -p, --port <PORT>  Port to listen on [default: 3000]
      --open         Open the book in your web browser
  -h, --help         Print help
",
    },
    Spec {
        name: "build",
        about: "Build the book as static HTML (to read offline or publish)",
        usage: "cargo workbook build [--dest DIR]",
        positionals: &[],
        options: &[valued("dest", Some('d'), "DIR")],
        help: "\
Build the book as static HTML (to read offline or publish)

Installs the pinned mdBook into the target directory on first use, like
`serve`. Set WORKBOOK_MDBOOK=/path/to/mdbook to use an mdBook you already
have instead.

Usage: cargo workbook build [OPTIONS]

Options:
  -d, --dest <DIR>  Where to write the HTML [default: book/book]
  -h, --help        Print help
",
    },
    Spec {
        name: "score",
        about: "Read one lab's, task's or test's points from a `grade --json` file",
        usage: "cargo workbook score [--task N | --test NAME] [--max N] [--classroom] FILE LAB",
        positionals: &[("FILE", true), ("LAB", true)],
        options: &[
            valued("task", None, "N"),
            valued("test", None, "NAME"),
            valued("max", None, "N"),
            flag("classroom", None),
        ],
        help: "\
Read one lab's, task's or test's points from a `grade --json` file

The autograding workflow of a handout grades every lab once
(`cargo workbook grade --json > grade.json`), then gives each lab, task or
test its own step that runs this command, so that each earns its own points.
It prints one line (the unit, passed or failed, its points, and why) and
exits with status 0 when the unit earned all its points, 1 when not.

A lab whose grading files were changed earns nothing, and so does each of
its tasks and tests; the line says why.

Usage: cargo workbook score [OPTIONS] <FILE> <LAB>

Arguments:
  <FILE>  The JSON document `cargo workbook grade --json` wrote
  <LAB>   The lab: number (`02`), directory (`02-pipes`) or topic (`pipes`)

Options:
      --task <N>      One task of the lab
      --test <NAME>   One test of the lab
      --max <N>       The points the workflow gives the unit: a file that
                      gives it other points fails (it was graded with
                      another suite or other settings)
      --classroom     Also write the result for GitHub Classroom's reporter
                      (`result=…` in the file $GITHUB_OUTPUT names) and exit
                      with status 0 whatever the result
  -h, --help          Print help
",
    },
];

/// The commands of course authors and instructors, run by `workbook-admin`.
const ADMIN: [(&str, &str); 6] = [
    ("verify", "Run every check CI runs on the course"),
    (
        "manifest",
        "Rewrite the checksum manifests after changing tests or labs",
    ),
    (
        "handout",
        "Make the repository students get, without the solutions",
    ),
    (
        "gradebook",
        "Collect students' `grade --json` files into one table",
    ),
    (
        "mistakes",
        "List a lab's classic mistakes, or prove its suite catches them",
    ),
    (
        "measure",
        "Time the student's edit → test loop in every lab",
    ),
];

/// Shown after the top-level help.
const EXAMPLES: &str = "\
Examples:
  cargo workbook grade          grade every lab
  cargo workbook grade 02       grade one lab (also: 02-pipes, pipes)
  cargo workbook watch 02       grade lab 02 each time you save a file of it
  cargo workbook hint 02        a hint for the next TODO of lab 02
  cargo workbook trace 02 NAME  the IPC calls of each process test NAME ran
  cargo workbook doctor         is this machine ready for the labs?
  cargo workbook serve --open   read the book in your browser
";

/// A command line, understood.
#[derive(Debug)]
pub struct Parsed {
    /// The command's name.
    pub command: &'static str,
    positionals: Vec<String>,
    /// Option → its value (empty for a flag).
    options: BTreeMap<&'static str, String>,
}

impl Parsed {
    /// Positional argument `index` (from 0), if given.
    pub fn positional(&self, index: usize) -> Option<&str> {
        self.positionals.get(index).map(String::as_str)
    }

    /// True when the flag `--long` was given.
    pub fn flag(&self, long: &str) -> bool {
        self.options.contains_key(long)
    }

    /// The value of `--long VALUE`, if given.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.options.get(long).map(String::as_str)
    }
}

/// What to do with a command line.
#[derive(Debug)]
pub enum Outcome {
    /// Print `text` (on stdout for status 0, stderr otherwise) and exit.
    Print { text: String, code: u8 },
    /// Run a student command.
    Run(Parsed),
    /// Hand the command and its arguments to `workbook-admin`.
    Admin {
        command: String,
        args: Vec<OsString>,
    },
}

/// Understands `args` (without the program name). `admin` says whether
/// the instructors' commands exist here (the course repository, not a
/// student copy): only then does the help list them.
pub fn parse(args: &[OsString], admin: bool) -> Result<Outcome, UsageError> {
    let Some(first) = args.first() else {
        return Ok(Outcome::Print {
            text: top_help(admin),
            code: 2,
        });
    };
    let first = text(first)?;
    match first {
        "-h" | "--help" => {
            return Ok(Outcome::Print {
                text: top_help(admin),
                code: 0,
            });
        }
        "-V" | "--version" => {
            return Ok(Outcome::Print {
                text: format!("cargo workbook {}\n", env!("CARGO_PKG_VERSION")),
                code: 0,
            });
        }
        "help" => return help_for(&args[1..], admin),
        _ => {}
    }
    // A student copy has no instructors' commands: there, `manifest` and
    // the others are unknown, like any word that is no command.
    if admin && ADMIN.iter().any(|(name, _)| *name == first) {
        return Ok(Outcome::Admin {
            command: first.to_string(),
            args: args[1..].to_vec(),
        });
    }
    let Some(spec) = COMMANDS.iter().find(|spec| spec.name == first) else {
        return Err(UsageError(format!(
            "unknown command `{first}` (commands: {}; see `cargo workbook --help`)",
            command_names(admin)
        )));
    };
    parse_command(spec, &args[1..])
}

/// `help [COMMAND]`.
fn help_for(args: &[OsString], admin: bool) -> Result<Outcome, UsageError> {
    let Some(name) = args.first() else {
        return Ok(Outcome::Print {
            text: top_help(admin),
            code: 0,
        });
    };
    let name = text(name)?;
    if let Some(spec) = COMMANDS.iter().find(|spec| spec.name == name) {
        return Ok(Outcome::Print {
            text: spec.help.to_string(),
            code: 0,
        });
    }
    if admin && ADMIN.iter().any(|(admin_name, _)| *admin_name == name) {
        return Ok(Outcome::Admin {
            command: name.to_string(),
            args: vec![OsString::from("--help")],
        });
    }
    Err(UsageError(format!(
        "unknown command `{name}` (commands: {})",
        command_names(admin)
    )))
}

/// The arguments of one student command.
fn parse_command(spec: &'static Spec, args: &[OsString]) -> Result<Outcome, UsageError> {
    let mut parsed = Parsed {
        command: spec.name,
        positionals: Vec::new(),
        options: BTreeMap::new(),
    };
    let usage = |problem: String| {
        UsageError(format!(
            "{problem} (usage: {}; see `cargo workbook {} --help`)",
            spec.usage, spec.name
        ))
    };
    let mut words = args.iter();
    let mut only_positionals = false;
    while let Some(word) = words.next() {
        let word = text(word)?;
        if only_positionals || word == "-" || !word.starts_with('-') {
            parsed.positionals.push(word.to_string());
            continue;
        }
        if word == "--" {
            only_positionals = true;
            continue;
        }
        if word == "-h" || word == "--help" {
            return Ok(Outcome::Print {
                text: spec.help.to_string(),
                code: 0,
            });
        }
        // `--long`, `--long=VALUE`, `-s`, `-sVALUE`.
        let (opt, inline) = if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let opt = spec.options.iter().find(|o| o.long == name);
            (opt, inline)
        } else {
            let mut chars = word[1..].chars();
            let short = chars.next();
            let rest: String = chars.collect();
            let opt = spec.options.iter().find(|o| o.short == short);
            (opt, (!rest.is_empty()).then_some(rest))
        };
        let Some(opt) = opt else {
            return Err(usage(format!("unexpected argument `{word}`")));
        };
        let value = match (opt.value, inline) {
            (None, None) => String::new(),
            (None, Some(_)) => {
                return Err(usage(format!("`--{}` takes no value", opt.long)));
            }
            (Some(_), Some(value)) => value,
            (Some(name), None) => match words.next() {
                Some(value) => text(value)?.to_string(),
                None => return Err(usage(format!("`--{}` needs a value: {name}", opt.long))),
            },
        };
        if parsed.options.insert(opt.long, value).is_some() {
            return Err(usage(format!("`--{}` is given twice", opt.long)));
        }
    }
    if parsed.positionals.len() > spec.positionals.len() {
        let extra = &parsed.positionals[spec.positionals.len()];
        return Err(usage(format!("unexpected argument `{extra}`")));
    }
    if let Some((name, _)) = spec
        .positionals
        .iter()
        .skip(parsed.positionals.len())
        .find(|(_, required)| *required)
    {
        return Err(usage(format!("missing the argument {name}")));
    }
    Ok(Outcome::Run(parsed))
}

/// An argument as UTF-8 text.
fn text(arg: &OsString) -> Result<&str, UsageError> {
    arg.to_str().ok_or_else(|| {
        UsageError(format!(
            "the argument {} is not valid UTF-8",
            arg.to_string_lossy()
        ))
    })
}

/// The TODO number of `hint LAB N`.
pub fn todo_number(word: &str) -> Result<u32, UsageError> {
    word.parse().map_err(|_| {
        UsageError(format!(
            "`{word}` is not a TODO number (usage: cargo workbook hint [--all] LAB [N])"
        ))
    })
}

/// The port of `serve --port PORT`.
pub fn port(word: &str) -> Result<u16, UsageError> {
    word.parse().map_err(|_| {
        UsageError(format!(
            "`{word}` is not a port number from 0 to 65535 (usage: cargo workbook serve [--port PORT] [--open])"
        ))
    })
}

/// A whole number for an option (`--points N`, `--task N`, `--max N`).
pub fn number(option: &str, word: &str) -> Result<u32, UsageError> {
    word.parse().map_err(|_| {
        UsageError(format!(
            "`{word}` is not a whole number (usage: --{option} N; see `--help`)"
        ))
    })
}

/// The names of every command, for an error message.
fn command_names(admin: bool) -> String {
    let mut names: Vec<&str> = COMMANDS.iter().map(|spec| spec.name).collect();
    if admin {
        names.extend(ADMIN.iter().map(|(name, _)| *name));
    }
    names.join(", ")
}

/// The top-level help: the student commands, and the instructors' where
/// they exist.
fn top_help(admin: bool) -> String {
    let mut out = String::from(
        "Companion tool of the Linux IPC workbook: grade your labs, get hints, read the book.

Run it from anywhere inside the course checkout as `cargo workbook <COMMAND>`.
A LAB is named by its number (`02`), directory (`02-pipes`) or topic (`pipes`).

Usage: cargo workbook <COMMAND>

Commands:
",
    );
    let width = COMMANDS
        .iter()
        .map(|spec| spec.name.len())
        .chain(ADMIN.iter().map(|(name, _)| name.len()))
        .max()
        .unwrap_or(0);
    for spec in &COMMANDS {
        out.push_str(&format!("  {:<width$}  {}\n", spec.name, spec.about));
    }
    out.push_str(&format!(
        "  {:<width$}  Print this message or the help of the given command\n",
        "help"
    ));
    if admin {
        out.push_str(
            "\nFor course authors and instructors (package workbook-admin, compiled on first use):\n",
        );
        for (name, about) in ADMIN {
            out.push_str(&format!("  {name:<width$}  {about}\n"));
        }
    }
    out.push_str(
        "\nOptions:
  -h, --help     Print help (`cargo workbook COMMAND --help` for a command's)
  -V, --version  Print version

",
    );
    out.push_str(EXAMPLES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Outcome, UsageError> {
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        parse(&args, true)
    }

    fn run(words: &[&str]) -> Parsed {
        match parse_words(words) {
            Ok(Outcome::Run(parsed)) => parsed,
            other => panic!("{words:?}: {other:?}"),
        }
    }

    fn error(words: &[&str]) -> String {
        match parse_words(words) {
            Err(err) => err.0,
            other => panic!("{words:?}: {other:?}"),
        }
    }

    #[test]
    fn options_and_arguments_in_any_order() {
        let parsed = run(&["grade", "--junit", "out.xml", "02", "--json"]);
        assert_eq!(parsed.command, "grade");
        assert_eq!(parsed.positional(0), Some("02"));
        assert_eq!(parsed.value("junit"), Some("out.xml"));
        assert!(parsed.flag("json"));
        let parsed = run(&["serve", "-p4000", "--open"]);
        assert_eq!(parsed.value("port"), Some("4000"));
        let parsed = run(&["build", "--dest=../html"]);
        assert_eq!(parsed.value("dest"), Some("../html"));
        let parsed = run(&["reset", "-y", "--", "-odd-name"]);
        assert!(parsed.flag("yes"));
        assert_eq!(parsed.positional(0), Some("-odd-name"));
        let parsed = run(&["hint", "02", "3", "--all"]);
        assert_eq!(
            (parsed.positional(0), parsed.positional(1)),
            (Some("02"), Some("3"))
        );
    }

    #[test]
    fn mistakes_are_one_line_usage_errors() {
        assert_eq!(
            error(&["grade", "--jsn"]),
            "unexpected argument `--jsn` (usage: cargo workbook grade [--json] [--junit FILE] \
             [--csv FILE] [--granularity G] [--points N] [LAB]; see `cargo workbook grade --help`)"
        );
        assert!(error(&["hint"]).starts_with("missing the argument LAB (usage: "));
        assert!(error(&["grade", "01", "02"]).starts_with("unexpected argument `02`"));
        assert!(error(&["grade", "--junit"]).starts_with("`--junit` needs a value: FILE"));
        assert!(error(&["watch", "--poll=yes"]).starts_with("`--poll` takes no value"));
        assert!(error(&["grade", "--json", "--json"]).starts_with("`--json` is given twice"));
        assert!(
            error(&["frobnicate"]).starts_with("unknown command `frobnicate` (commands: grade,")
        );
        assert_eq!(
            port("70000").expect_err("too big").0,
            "`70000` is not a port number from 0 to 65535 (usage: cargo workbook serve [--port PORT] [--open])"
        );
        assert!(todo_number("x").is_err());
    }

    #[test]
    fn help_comes_from_anywhere_and_instructor_commands_are_handed_on() {
        for words in [
            &["grade", "--help"][..],
            &["help", "grade"],
            &["grade", "-h"],
        ] {
            match parse_words(words) {
                Ok(Outcome::Print { text, code: 0 }) => {
                    assert!(text.contains("--junit <FILE>"), "{words:?}: {text}")
                }
                other => panic!("{words:?}: {other:?}"),
            }
        }
        match parse_words(&["verify", "--skip", "book"]) {
            Ok(Outcome::Admin { command, args }) => {
                assert_eq!(command, "verify");
                assert_eq!(args, ["--skip", "book"]);
            }
            other => panic!("{other:?}"),
        }
        match parse_words(&["help", "handout"]) {
            Ok(Outcome::Admin { command, args }) => {
                assert_eq!(
                    (command.as_str(), args.as_slice()),
                    ("handout", &["--help".into()][..])
                )
            }
            other => panic!("{other:?}"),
        }
        match parse(&[], false) {
            Ok(Outcome::Print { text, code: 2 }) => {
                assert!(text.contains("\n  grade "), "{text}");
                assert!(
                    !text.contains("verify"),
                    "a student copy lists no instructor command"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
