//! Finding the course checkout and the labs in it.
//!
//! Nothing here knows which labs exist: a lab is any directory
//! `labs/NN-topic/` holding a `Cargo.toml`. Its package, binary and grading
//! test target are all named `topic`; its reference solution lives in
//! `solutions/NN-topic/` as package `topic-solution`.

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::UsageError;
use crate::json::Json;
use crate::minitoml::{self, Table, Value};
use crate::process;

/// The course checkout: the Cargo workspace that has a `labs/` directory.
#[derive(Debug)]
pub struct Workspace {
    /// The directory holding the workspace `Cargo.toml`.
    pub root: PathBuf,
    /// Every lab, ordered by directory name (so by number).
    pub labs: Vec<Lab>,
}

/// One lab, named after its directory `labs/NN-topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    /// The directory name, e.g. `02-pipes`.
    pub name: String,
    /// The number part, e.g. `02`.
    pub number: String,
    /// The topic part, e.g. `pipes`: the lab's package, binary and test target.
    pub topic: String,
}

impl Workspace {
    /// Walks up from `start` to the first directory that has a `Cargo.toml`
    /// with a `[workspace]` table and a `labs/` directory beside it.
    pub fn discover(start: &Path) -> Result<Workspace> {
        let root = start
            .ancestors()
            .find(|dir| is_course_root(dir))
            .ok_or_else(|| {
                UsageError(format!(
                    "not a workbook checkout (no Cargo.toml with [workspace] and labs/ found above {})",
                    start.display()
                ))
            })?
            .to_path_buf();
        let labs = discover_labs(&root.join("labs"))?;
        Ok(Workspace { root, labs })
    }

    /// The labs that `query` names (all of them when `None`).
    ///
    /// An unknown name is a usage error that lists the known labs.
    pub fn select(&self, query: Option<&str>) -> Result<Vec<&Lab>> {
        let Some(query) = query else {
            return Ok(self.labs.iter().collect());
        };
        let found: Vec<&Lab> = self.labs.iter().filter(|lab| lab.matches(query)).collect();
        if found.is_empty() {
            return Err(UsageError(format!(
                "unknown lab `{query}` (known labs: {})",
                self.known_labs()
            ))
            .into());
        }
        Ok(found)
    }

    /// The one lab that `query` names; an unknown or ambiguous name is a
    /// usage error.
    pub fn select_one(&self, query: &str) -> Result<&Lab> {
        let found = self.select(Some(query))?;
        match found.as_slice() {
            [lab] => Ok(lab),
            several => {
                let names: Vec<&str> = several.iter().map(|lab| lab.name.as_str()).collect();
                Err(UsageError(format!(
                    "`{query}` names several labs ({}): use the directory name",
                    names.join(", ")
                ))
                .into())
            }
        }
    }

    /// The lab names joined for a message, or `none`.
    pub fn known_labs(&self) -> String {
        if self.labs.is_empty() {
            return "none".to_string();
        }
        let names: Vec<&str> = self.labs.iter().map(|lab| lab.name.as_str()).collect();
        names.join(", ")
    }

    /// `path` relative to the workspace root when it is inside it, for messages.
    pub fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    /// `labs/NN-topic`, absolute.
    pub fn lab_dir(&self, lab: &Lab) -> PathBuf {
        self.root.join("labs").join(&lab.name)
    }

    /// `solutions/NN-topic`, absolute.
    pub fn solution_dir(&self, lab: &Lab) -> PathBuf {
        self.root.join("solutions").join(&lab.name)
    }

    /// True in the course repository, false in a student copy made by
    /// `cargo workbook handout` (which leaves the solutions out).
    pub fn has_solutions(&self) -> bool {
        self.root.join("solutions").is_dir()
    }

    /// The workspace's target directory, as cargo reports it (it honours
    /// `CARGO_TARGET_DIR` and `build.target-dir`).
    pub fn target_dir(&self) -> Result<PathBuf> {
        let mut cmd = process::cargo(&self.root);
        cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
        let captured = process::capture(&mut cmd)?;
        if !captured.success {
            bail!(
                "`cargo metadata` failed: {}",
                captured.stderr.lines().next().unwrap_or("no message")
            );
        }
        let metadata = Json::parse(&captured.stdout)
            .map_err(|err| anyhow::anyhow!("cannot read `cargo metadata` output: {err}"))?;
        let dir = metadata
            .get("target_directory")
            .and_then(Json::as_str)
            .context("`cargo metadata` did not report a target_directory")?;
        Ok(PathBuf::from(OsString::from(dir)))
    }

    /// `<target-dir>/workbook`: where the tool keeps what it remembers
    /// between runs (shown hints, copies made by `reset`), out of the
    /// source tree and removed by `cargo clean`.
    pub fn state_dir(&self) -> Result<PathBuf> {
        Ok(self.target_dir()?.join("workbook"))
    }
}

/// `path` with `.` and `dir/..` removed, without touching the file system
/// (the directory may not exist yet).
pub fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(normal.components().next_back(), Some(Component::Normal(_))) =>
            {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

impl Lab {
    /// Parses a directory name of the form `NN-topic`.
    pub fn from_dir_name(name: &str) -> Option<Lab> {
        let (number, topic) = name.split_once('-')?;
        let valid_topic = topic
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if topic.is_empty() || !valid_topic {
            return None;
        }
        Some(Lab {
            name: name.to_string(),
            number: number.to_string(),
            topic: topic.to_string(),
        })
    }

    /// True when `query` is this lab's number (`02` or `2`), directory name
    /// (`02-pipes`) or topic (`pipes`).
    pub fn matches(&self, query: &str) -> bool {
        if query == self.name || query == self.topic || query == self.number {
            return true;
        }
        match (query.parse::<u32>(), self.number.parse::<u32>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    /// The student's package, e.g. `pipes`.
    pub fn package(&self) -> &str {
        &self.topic
    }

    /// The reference solution's package, e.g. `pipes-solution`.
    pub fn solution_package(&self) -> String {
        format!("{}-solution", self.topic)
    }

    /// The grading suite's test target, e.g. `pipes`.
    pub fn test_target(&self) -> &str {
        &self.topic
    }
}

/// True when `dir` has a workspace `Cargo.toml` and a `labs/` directory.
fn is_course_root(dir: &Path) -> bool {
    if !dir.join("labs").is_dir() {
        return false;
    }
    let Ok(text) = fs::read_to_string(dir.join("Cargo.toml")) else {
        return false;
    };
    match minitoml::parse(&text) {
        Ok(table) => table.contains_key("workspace"),
        // A broken manifest still counts when it plainly declares a workspace,
        // so that cargo, not this tool, gets to explain what is wrong with it.
        Err(_) => text.lines().any(|line| line.trim() == "[workspace]"),
    }
}

/// Every `labs/NN-topic/` directory that holds a `Cargo.toml`, sorted.
fn discover_labs(labs_dir: &Path) -> Result<Vec<Lab>> {
    let entries =
        fs::read_dir(labs_dir).with_context(|| format!("cannot list {}", labs_dir.display()))?;
    let mut labs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", labs_dir.display()))?;
        let path = entry.path();
        if !path.join("Cargo.toml").is_file() {
            continue;
        }
        if let Some(lab) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(Lab::from_dir_name)
        {
            labs.push(lab);
        }
    }
    labs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(labs)
}

/// `labs/NN-topic/lab.toml`: a lab's title, chapter and numbered tasks with
/// their hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabToml {
    /// The `[lab]` table.
    pub lab: LabInfo,
    /// The `[[todo]]` tables, one per numbered task.
    pub todo: Vec<Todo>,
}

/// The `[lab]` table of `lab.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabInfo {
    /// The lab's title, e.g. `Pipes (管道)`.
    pub title: String,
    /// The chapter that teaches it, relative to the workspace root.
    pub chapter: PathBuf,
}

/// One `[[todo]]` task of `lab.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    /// The number used in `// TODO(N)` markers, `todo!("TODO(N)…")` bodies
    /// and the book.
    pub number: u32,
    /// Every function of `src/lib.rs` that the task fills in: those whose
    /// stub body is `todo!("TODO(N)…")` (`functions = ["start", "ask"]`;
    /// `function = "start"` names a single one).
    pub functions: Vec<String>,
    /// The task in one line.
    pub summary: String,
    /// Hints, from a nudge to nearly the answer (`cargo workbook hint`).
    pub hints: Vec<String>,
}

impl Todo {
    /// The functions, joined for a heading: `start, ask, finish`.
    pub fn function_list(&self) -> String {
        self.functions.join(", ")
    }
}

impl LabToml {
    /// Reads and parses the `lab.toml` of `lab`.
    pub fn of(ws: &Workspace, lab: &Lab) -> Result<LabToml> {
        LabToml::load(&ws.lab_dir(lab).join("lab.toml"))
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<LabToml> {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        LabToml::parse(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    /// Parses the text of a `lab.toml`.
    pub fn parse(text: &str) -> Result<LabToml> {
        let doc = minitoml::parse(text)?;
        let lab = match doc.get("lab") {
            Some(Value::Table(table)) => table,
            Some(other) => bail!("`lab` is {}, not a table", other.kind()),
            None => bail!("missing table `[lab]`"),
        };
        let info = LabInfo {
            title: optional_string(lab, "title", "lab")?.unwrap_or_default(),
            chapter: PathBuf::from(
                optional_string(lab, "chapter", "lab")?.context("missing `chapter` in `[lab]`")?,
            ),
        };
        let mut todo = Vec::new();
        match doc.get("todo") {
            None => {}
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    let table = item
                        .as_table()
                        .with_context(|| format!("`todo` {} is not a table", index + 1))?;
                    todo.push(parse_todo(table, index + 1)?);
                }
            }
            Some(other) => bail!(
                "`todo` is {}, not an array of `[[todo]]` tables",
                other.kind()
            ),
        }
        Ok(LabToml { lab: info, todo })
    }
}

/// One `[[todo]]` table (the `index`-th, from 1, for messages).
fn parse_todo(table: &Table, index: usize) -> Result<Todo> {
    let place = format!("[[todo]] {index}");
    let number = match table.get("number") {
        Some(Value::Integer(n)) => {
            u32::try_from(*n).map_err(|_| anyhow::anyhow!("`number` {n} of {place} is negative"))?
        }
        Some(other) => bail!("`number` of {place} is {}, not an integer", other.kind()),
        None => bail!("{place} has no `number`"),
    };
    let place = format!("[[todo]] number = {number}");
    let functions = match (table.get("functions"), table.get("function")) {
        (Some(_), Some(_)) => {
            bail!("{place} has both `function` and `functions`: keep `functions`")
        }
        (Some(list), None) => string_list(list, "functions", &place)?,
        (None, Some(Value::String(one))) => vec![one.clone()],
        (None, Some(other)) => bail!("`function` of {place} is {}, not a string", other.kind()),
        (None, None) => bail!("{place} has no `functions`"),
    };
    if functions.is_empty() {
        bail!("`functions` of {place} is empty");
    }
    Ok(Todo {
        number,
        functions,
        summary: optional_string(table, "summary", &place)?.unwrap_or_default(),
        hints: match table.get("hints") {
            Some(list) => string_list(list, "hints", &place)?,
            None => Vec::new(),
        },
    })
}

/// The string under `key`, if any; another kind of value is an error.
fn optional_string(table: &Table, key: &str, place: &str) -> Result<Option<String>> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("`{key}` in {place} is {}, not a string", other.kind()),
    }
}

/// An array of strings.
fn string_list(value: &Value, key: &str, place: &str) -> Result<Vec<String>> {
    let items = value
        .as_array()
        .with_context(|| format!("`{key}` of {place} is {}, not an array", value.kind()))?;
    items
        .iter()
        .map(|item| {
            item.as_str().map(str::to_string).with_context(|| {
                format!("`{key}` of {place} holds {}, not only strings", item.kind())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_are_parsed_from_directories() {
        let lab = Lab::from_dir_name("05-sysv-msg").expect("valid name");
        assert_eq!(lab.number, "05");
        assert_eq!(lab.topic, "sysv-msg");
        assert_eq!(lab.solution_package(), "sysv-msg-solution");
        assert!(Lab::from_dir_name("pipes").is_none());
        assert!(Lab::from_dir_name("xx-pipes").is_none());
        assert!(Lab::from_dir_name("02-").is_none());
    }

    #[test]
    fn paths_are_normalised_without_the_file_system() {
        assert_eq!(
            lexically_normal(Path::new("/course/labs/../book/./book")),
            Path::new("/course/book/book")
        );
        assert_eq!(
            lexically_normal(Path::new("../student")),
            Path::new("../student")
        );
    }

    #[test]
    fn one_lab_is_selected_by_any_of_its_names() {
        let ws = Workspace {
            root: PathBuf::from("/course"),
            labs: ["01-processes", "02-pipes"]
                .iter()
                .filter_map(|name| Lab::from_dir_name(name))
                .collect(),
        };
        assert_eq!(ws.select_one("2").expect("a lab").name, "02-pipes");
        assert_eq!(
            ws.select_one("processes").expect("a lab").name,
            "01-processes"
        );
        let err = ws.select_one("03").expect_err("no such lab");
        assert_eq!(
            err.to_string(),
            "unknown lab `03` (known labs: 01-processes, 02-pipes)"
        );
    }

    #[test]
    fn lab_toml_names_every_function_of_a_todo() {
        let meta = LabToml::parse(
            "[lab]\ntitle = \"Popen\"\nchapter = \"book/src/03-popen.md\"\n\n\
             [[todo]]\nnumber = 1\nfunctions = [\"popen\", \"pclose\"]\nhints = [\"a\"]\n\n\
             [[todo]]\nnumber = 2\nfunction = \"spawn\"\n",
        )
        .expect("valid");
        assert_eq!(meta.lab.title, "Popen");
        assert_eq!(meta.todo[0].functions, ["popen", "pclose"]);
        assert_eq!(meta.todo[0].function_list(), "popen, pclose");
        assert_eq!(meta.todo[1].functions, ["spawn"]);
        assert!(meta.todo[1].hints.is_empty());
        for (text, message) in [
            (
                "[lab]\nchapter = \"c\"\n[[todo]]\nnumber = 1\n",
                "[[todo]] number = 1 has no `functions`",
            ),
            ("[lab]\ntitle = \"t\"\n", "missing `chapter` in `[lab]`"),
            (
                "[lab]\nchapter = \"c\"\n[[todo]]\nnumber = 1\nfunctions = [1]\n",
                "`functions` of [[todo]] number = 1 holds an integer, not only strings",
            ),
        ] {
            let err = LabToml::parse(text).expect_err(text);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn labs_match_by_number_name_or_topic() {
        let lab = Lab::from_dir_name("02-pipes").expect("valid name");
        for query in ["02", "2", "02-pipes", "pipes"] {
            assert!(lab.matches(query), "{query}");
        }
        for query in ["03", "pipe", "02-pipe", ""] {
            assert!(!lab.matches(query), "{query}");
        }
    }
}
