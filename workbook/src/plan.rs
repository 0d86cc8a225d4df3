//! What a lab's suite grades, read from its source without compiling it:
//! the graded tests in the order the suite defines them, and the task each
//! belongs to; and how many points each test, task and lab is worth.
//!
//! Knowing the tests without compiling is what lets a grade say "0 of 14"
//! for a lab that does not compile, and lets `handout` write one grading
//! step per test or per task.
//!
//! A test is a top-level `#[test] fn name()` of `tests/NN-topic.rs`
//! (`#[ignore]`d tests are not graded). Its task is the number of the
//! book section its failures point to, `Task N: …`, written in the test's
//! body either literally or through a constant
//! (`const TASK_2: &str = "Task 2: …"`), or else in the helper functions
//! the test calls (followed through the suite), or else in the methods it
//! calls by path (`Supervisor::start(…)`, then `Self::…` within them). A
//! test that names several
//! tasks belongs to the highest, the last one it needs; one that names none
//! belongs to no task.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;

use anyhow::{Context, Result, bail};

use crate::workspace::{Lab, Workspace};

/// The graded tests of one suite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuitePlan {
    /// In the order the suite defines them.
    pub tests: Vec<PlannedTest>,
    /// `#[test]` attributes in the file that did not lead to a top-level
    /// function this reader understood (e.g. tests inside a `mod`): when
    /// not zero, the list may be incomplete.
    pub unread: usize,
}

/// One graded test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTest {
    /// The test function's name.
    pub name: String,
    /// The task it belongs to, if the suite says.
    pub task: Option<u32>,
}

impl SuitePlan {
    /// Reads the suite of `lab` (`tests/NN-topic.rs`).
    pub fn of(ws: &Workspace, lab: &Lab) -> Result<SuitePlan> {
        let path = ws.root.join("tests").join(format!("{}.rs", lab.name));
        let source = fs::read_to_string(&path)
            .with_context(|| format!("cannot read the suite {}", ws.relative(&path).display()))?;
        Ok(SuitePlan::parse(&source))
    }

    /// Reads a suite's source.
    pub fn parse(source: &str) -> SuitePlan {
        let items = items(source);
        let constants: BTreeMap<&str, u32> = items
            .iter()
            .filter_map(|item| match item.kind {
                ItemKind::Const => Some((item.name, task_literals(item.text).into_iter().max()?)),
                _ => None,
            })
            .collect();
        let bodies: BTreeMap<&str, &str> = items
            .iter()
            .filter(|item| matches!(item.kind, ItemKind::Fn { .. }))
            .map(|item| (item.name, item.text))
            .collect();
        let methods = methods(&items);
        let mut tests = Vec::new();
        for item in &items {
            if let ItemKind::Fn {
                test: true,
                ignored: false,
            } = item.kind
            {
                let mut tasks = task_of(item.name, &bodies, &constants, &mut BTreeSet::new());
                if tasks.is_empty() {
                    // Only when the functions it calls say nothing: the
                    // methods it calls by path (`Supervisor::start(…)`).
                    tasks = task_through_methods(item.name, &methods, &bodies, &constants);
                }
                let task = tasks.into_iter().max();
                tests.push(PlannedTest {
                    name: item.name.to_string(),
                    task,
                });
            }
        }
        let attributes = source
            .lines()
            .filter(|line| line.trim() == "#[test]")
            .count();
        let read = items
            .iter()
            .filter(|item| matches!(item.kind, ItemKind::Fn { test: true, .. }))
            .count();
        SuitePlan {
            tests,
            unread: attributes.saturating_sub(read),
        }
    }

    /// The task of the test `name`, if the suite has it and says.
    pub fn task_of(&self, name: &str) -> Option<u32> {
        self.tests.iter().find(|t| t.name == name)?.task
    }

    /// The position of `name` in the suite, or `usize::MAX`.
    pub fn position(&self, name: &str) -> usize {
        self.tests
            .iter()
            .position(|t| t.name == name)
            .unwrap_or(usize::MAX)
    }
}

/// A top-level item of a suite: a function or a string constant.
struct Item<'a> {
    name: &'a str,
    kind: ItemKind,
    /// The item's text, from its first line to the next top-level item.
    text: &'a str,
}

enum ItemKind {
    Fn {
        test: bool,
        ignored: bool,
    },
    Const,
    /// An `impl` block, whose methods tests may call by path.
    Impl,
}

/// The suite's top-level functions and constants, each with its text and,
/// for a function, the attributes just above it.
fn items(source: &str) -> Vec<Item<'_>> {
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        starts.push((offset, line));
        offset += line.len();
    }
    let mut items = Vec::new();
    let mut attributes: Vec<&str> = Vec::new();
    for (index, (at, line)) in starts.iter().enumerate() {
        let trimmed = line.trim_end();
        if trimmed.starts_with("#[") {
            attributes.push(trimmed);
            continue;
        }
        let header = trimmed
            .strip_prefix("pub ")
            .or_else(|| trimmed.strip_prefix("pub(crate) "))
            .unwrap_or(trimmed);
        let kind_and_name = if let Some(rest) = header.strip_prefix("fn ") {
            let test = attributes.contains(&"#[test]");
            let ignored = attributes.iter().any(|a| a.starts_with("#[ignore"));
            Some((ItemKind::Fn { test, ignored }, rest))
        } else if header.starts_with("impl ") || header.starts_with("impl<") {
            Some((ItemKind::Impl, "impl"))
        } else {
            header
                .strip_prefix("const ")
                .map(|rest| (ItemKind::Const, rest))
        };
        if !trimmed.is_empty() && !trimmed.starts_with("//") {
            attributes.clear();
        }
        let Some((kind, rest)) = kind_and_name else {
            continue;
        };
        let name_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() {
            continue;
        }
        // The item runs to the next item: a line that starts at the margin
        // with an attribute or an item keyword (not any text at the margin:
        // a raw string's lines may start there too).
        let end = starts[index + 1..]
            .iter()
            .find(|(_, next)| starts_item(next))
            .map_or(source.len(), |(next_at, _)| *next_at);
        items.push(Item {
            name,
            kind,
            text: &source[*at..end],
        });
    }
    items
}

/// True for a line that starts a top-level item.
fn starts_item(line: &str) -> bool {
    const STARTS: [&str; 15] = [
        "#[",
        "#![",
        "fn ",
        "pub ",
        "pub(",
        "const ",
        "static ",
        "struct ",
        "enum ",
        "impl",
        "mod ",
        "use ",
        "type ",
        "trait ",
        "macro_rules!",
    ];
    STARTS.iter().any(|start| line.starts_with(start))
}

/// The tasks `name`'s body names, directly or through the functions it calls.
fn task_of(
    name: &str,
    bodies: &BTreeMap<&str, &str>,
    constants: &BTreeMap<&str, u32>,
    seen: &mut BTreeSet<String>,
) -> BTreeSet<u32> {
    if !seen.insert(name.to_string()) {
        return BTreeSet::new();
    }
    let Some(body) = bodies.get(name) else {
        return BTreeSet::new();
    };
    let body = without_comments(body);
    let mut tasks: BTreeSet<u32> = task_literals(&body).into_iter().collect();
    for (constant, task) in constants {
        if identifiers(&body).any(|word| word == *constant) {
            tasks.insert(*task);
        }
    }
    if !tasks.is_empty() {
        return tasks;
    }
    let callees: BTreeSet<&str> = identifiers(&body)
        .filter(|word| *word != name && bodies.contains_key(word))
        .collect();
    for callee in callees {
        tasks.extend(task_of(callee, bodies, constants, seen));
    }
    tasks
}

/// The methods of the suite's `impl` blocks, by `Type::method`, each with
/// its text (from its `fn` line to the next method or the block's end).
fn methods<'a>(items: &[Item<'a>]) -> BTreeMap<String, &'a str> {
    let mut methods = BTreeMap::new();
    for item in items
        .iter()
        .filter(|item| matches!(item.kind, ItemKind::Impl))
    {
        let first = item.text.lines().next().unwrap_or("");
        let Some(rest) = first.strip_prefix("impl") else {
            continue;
        };
        // `impl<T> Trait for Type<T> {` names Type; `impl Type {` too.
        let rest = rest.split(" for ").last().unwrap_or(rest);
        let rest = match rest.trim_start().strip_prefix('<') {
            Some(generic) => generic.split_once('>').map_or("", |(_, after)| after),
            None => rest,
        };
        let Some(ty) = identifiers(rest).next() else {
            continue;
        };
        let mut starts: Vec<(usize, &str)> = Vec::new();
        let mut offset = 0;
        for line in item.text.split_inclusive('\n') {
            let header = line
                .strip_prefix("    ")
                .filter(|l| !l.starts_with(' '))
                .map(|l| {
                    l.strip_prefix("pub ")
                        .or_else(|| l.strip_prefix("pub(crate) "))
                        .unwrap_or(l)
                });
            if let Some(name) = header.and_then(|h| h.strip_prefix("fn ")) {
                starts.push((offset, name));
            }
            offset += line.len();
        }
        for (index, (at, rest)) in starts.iter().enumerate() {
            let Some(name) = identifiers(rest).next() else {
                continue;
            };
            let end = starts
                .get(index + 1)
                .map_or(item.text.len(), |(next, _)| *next);
            methods.insert(format!("{ty}::{name}"), &item.text[*at..end]);
        }
    }
    methods
}

/// The tasks named by the methods that the test `name`, or a suite function
/// it calls (however indirectly), calls by path (`Type::method`): directly,
/// through the suite's functions they call, or through further methods
/// called by path (`Self::…` included).
fn task_through_methods(
    name: &str,
    methods: &BTreeMap<String, &str>,
    bodies: &BTreeMap<&str, &str>,
    constants: &BTreeMap<&str, u32>,
) -> BTreeSet<u32> {
    let mut reached = BTreeSet::from([name]);
    let mut pending = Vec::new();
    let mut next = vec![name];
    while let Some(function) = next.pop() {
        let Some(body) = bodies.get(function) else {
            continue;
        };
        let body = without_comments(body);
        for callee in identifiers(&body) {
            if let Some((callee, _)) = bodies.get_key_value(callee)
                && reached.insert(callee)
            {
                next.push(callee);
            }
        }
        pending.push((String::new(), body));
    }
    let mut tasks = BTreeSet::new();
    let mut seen = BTreeSet::new();
    while let Some((ty, body)) = pending.pop() {
        let words: Vec<&str> = identifiers(&body).collect();
        for (index, word) in words.iter().enumerate() {
            let Some(next) = words.get(index + 1) else {
                break;
            };
            let ty = if *word == "Self" { ty.as_str() } else { word };
            let path = format!("{ty}::{next}");
            if !body.contains(&format!("{word}::{next}")) || !seen.insert(path.clone()) {
                continue;
            }
            let Some(method) = methods.get(&path) else {
                continue;
            };
            let method = without_comments(method);
            let mut found: BTreeSet<u32> = task_literals(&method).into_iter().collect();
            for (constant, task) in constants {
                if identifiers(&method).any(|w| w == *constant) {
                    found.insert(*task);
                }
            }
            for callee in identifiers(&method).filter(|w| bodies.contains_key(w)) {
                found.extend(task_of(callee, bodies, constants, &mut BTreeSet::new()));
            }
            if found.is_empty() {
                pending.push((ty.to_string(), method));
            }
            tasks.extend(found);
        }
    }
    tasks
}

/// A function's text without its `//` comment lines.
fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `Task N:` in `text`.
fn task_literals(text: &str) -> Vec<u32> {
    text.match_indices("Task ")
        .filter_map(|(at, _)| {
            let rest = &text[at + 5..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = rest[digits.len()..].chars().next();
            (after == Some(':')).then(|| digits.parse().ok()).flatten()
        })
        .collect()
}

/// The identifiers of `text`, in order, with repeats.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with(|c: char| c.is_alphabetic() || c == '_'))
}

/// How finely points are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// Each passing test earns its points.
    #[default]
    Test,
    /// A task earns the points of its tests when all of them pass.
    Task,
    /// A lab earns its points when all of its tests pass.
    Lab,
}

impl Granularity {
    /// Every granularity, for messages.
    pub const ALL: [Granularity; 3] = [Granularity::Test, Granularity::Task, Granularity::Lab];

    /// `test`, `task` or `lab`.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Test => "test",
            Granularity::Task => "task",
            Granularity::Lab => "lab",
        }
    }

    /// Parses `test`, `task` or `lab`.
    pub fn parse(word: &str) -> Result<Granularity> {
        match Granularity::ALL.into_iter().find(|g| g.name() == word) {
            Some(granularity) => Ok(granularity),
            None => bail!("`{word}` is not a granularity (test, task or lab)"),
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a grade turns into points: every graded test is worth `per_test`
/// points, and they are earned test by test, task by task or lab by lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scoring {
    /// The unit that earns points.
    pub granularity: Granularity,
    /// Points per graded test; a task or a lab is worth the sum of its
    /// tests'.
    pub per_test: u32,
}

impl Default for Scoring {
    fn default() -> Scoring {
        Scoring {
            granularity: Granularity::Test,
            per_test: 1,
        }
    }
}

/// Points earned out of points possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Points {
    /// Earned.
    pub earned: u32,
    /// Possible.
    pub possible: u32,
}

impl Points {
    /// `earned` of `possible`.
    pub fn new(earned: u32, possible: u32) -> Points {
        Points { earned, possible }
    }

    /// All of the points, or none.
    pub fn all_or_nothing(self) -> Points {
        if self.earned == self.possible {
            self
        } else {
            Points::new(0, self.possible)
        }
    }
}

impl std::ops::Add for Points {
    type Output = Points;

    /// The sum of both counts.
    fn add(self, other: Points) -> Points {
        Points::new(self.earned + other.earned, self.possible + other.possible)
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.possible == 1 {
            "point"
        } else {
            "points"
        };
        write!(f, "{}/{} {unit}", self.earned, self.possible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r##"//! A suite.

use grader::Lab;

const TASK_2: &str = "Task 2: the second";

fn lab() -> Lab {
    Lab::new()
}

/// Runs it for task 3.
fn helper(words: &[&str]) {
    lab().cmd(words).section("Task 3: the third").run();
}

#[test]
fn first_task_works() {
    lab().cmd(["a"]).section("Task 1: the first").run();
}

#[test]
fn second_task_through_a_constant() {
    let run = lab()
        .cmd(["b"])
        .section(TASK_2)
        .run();
}

#[test]
#[ignore = "not graded"]
fn an_ignored_test() {}

#[test]
fn third_task_through_a_helper() {
    helper(&["c"]);
}

#[test]
fn no_task_at_all() {
    // Task 9: only a comment
    assert!(true);
}

#[test]
fn two_tasks_count_as_the_later() {
    lab().section(TASK_2);
    lab().section("Task 3: the third");
}

#[test]
fn a_direct_task_wins_over_a_helpers() {
    helper(&["d"]);
    lab().section(TASK_2);
}

#[test]
fn a_raw_string_at_the_margin_stays_in_the_test() {
    let text = r#"first line
"$0" at the margin
"#;
    lab().section(TASK_2);
}

struct Server;

impl Server {
    /// Starts it.
    fn start() -> Server {
        Self::spawn("x")
    }

    fn spawn(name: &str) -> Server {
        lab().cmd([name]).section("Task 4: the fourth");
        Server
    }
}

#[test]
fn fourth_task_through_a_method() {
    let server = Server::start();
}

mod inner {
    #[test]
    fn hidden() {}
}
"##;

    #[test]
    fn tests_and_their_tasks_are_read_from_the_source() {
        let plan = SuitePlan::parse(SUITE);
        let found: Vec<(&str, Option<u32>)> = plan
            .tests
            .iter()
            .map(|t| (t.name.as_str(), t.task))
            .collect();
        assert_eq!(
            found,
            [
                ("first_task_works", Some(1)),
                ("second_task_through_a_constant", Some(2)),
                ("third_task_through_a_helper", Some(3)),
                ("no_task_at_all", None),
                ("two_tasks_count_as_the_later", Some(3)),
                ("a_direct_task_wins_over_a_helpers", Some(2)),
                ("a_raw_string_at_the_margin_stays_in_the_test", Some(2)),
                ("fourth_task_through_a_method", Some(4)),
            ]
        );
        assert_eq!(plan.unread, 1, "the test inside `mod inner` is not read");
        assert_eq!(plan.position("third_task_through_a_helper"), 2);
        assert_eq!(plan.task_of("first_task_works"), Some(1));
    }

    /// Tests that grade a lab as a whole and point to a section that is no
    /// task (chapter 16's benchmark needs every task): with `--granularity
    /// task` each earns its points by itself. Any other test of no task is
    /// a suite this reader misreads.
    const WHOLE_LAB_TESTS: [(&str, &str); 1] = [(
        "16-capstone.rs",
        "bench_reports_latency_and_throughput_per_size",
    )];

    #[test]
    fn every_suite_of_the_course_is_read_whole() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        let Ok(entries) = fs::read_dir(root.join("tests")) else {
            return;
        };
        let mut read = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(lab) = name.strip_suffix(".rs") else {
                continue;
            };
            if Lab::from_dir_name(lab).is_none() {
                continue;
            }
            let source = fs::read_to_string(entry.path()).expect("a readable suite");
            let plan = SuitePlan::parse(&source);
            assert_eq!(plan.unread, 0, "{name}: some tests were not read");
            assert!(!plan.tests.is_empty(), "{name}: no tests read");
            for test in &plan.tests {
                assert!(
                    test.task.is_some()
                        || WHOLE_LAB_TESTS.contains(&(name.as_str(), test.name.as_str())),
                    "{name}: cannot tell the task of {}",
                    test.name
                );
            }
            read += 1;
        }
        assert!(read > 0 || !root.join("labs").is_dir());
    }

    #[test]
    fn granularities_and_points() {
        assert_eq!(
            Granularity::parse("task").expect("valid"),
            Granularity::Task
        );
        assert_eq!(
            Granularity::parse("suite")
                .expect_err("invalid")
                .to_string(),
            "`suite` is not a granularity (test, task or lab)"
        );
        assert_eq!(Points::new(13, 14).to_string(), "13/14 points");
        assert_eq!(Points::new(1, 1).to_string(), "1/1 point");
        assert_eq!(Points::new(3, 4).all_or_nothing(), Points::new(0, 4));
        assert_eq!(Points::new(4, 4).all_or_nothing(), Points::new(4, 4));
    }
}
