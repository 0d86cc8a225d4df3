//! The checksum manifests: a record of what the course shipped, so that
//! `grade` can tell when the files that decide a grade were changed, and
//! `reset` can find a lab's stubs again.
//!
//! Both files use the format of `sha256sum` (`<hex digest>  <path>`, paths
//! relative to the workspace root, `#` comments), so anyone can check them
//! without this tool: `sha256sum --check tests/MANIFEST.sha256`.
//!
//! * `tests/MANIFEST.sha256` lists the **grading files**: every file that
//!   can change how a lab is built or how its suite runs and judges it.
//!   That is everything under `tests/` (suites, snapshots, the grader) and
//!   `workbook/` (this tool, which grades), every `Cargo.toml`,
//!   `Cargo.lock`, `build.rs` and `rust-toolchain[.toml]` anywhere, every
//!   file under any `.cargo/` or `.config/` directory (cargo's settings,
//!   insta's), insta's other settings files, and `.github/` (the
//!   autograding workflow's neighbours). A student never needs to change
//!   one of them, and a file of one of these kinds that the manifest does
//!   not list (a `build.rs` added to a lab, a `.cargo/config.toml` in a lab
//!   directory) counts as a change too. Build output (`target/`) and
//!   version control (`.git/`) are not looked at, nor are editor backups.
//! * `labs/MANIFEST.sha256` lists every file of every lab as shipped: the
//!   TODO stubs, the given CLI, `lab.toml`, the examples.
//!
//! The grading manifest is itself pinned: the handout writes its SHA-256
//! into the autograding workflow (`WORKBOOK_MANIFEST_SHA256`), so a
//! manifest rewritten to match changed files is caught too.
//!
//! Course authors rewrite both with `cargo workbook manifest` (an
//! instructors' command, absent from a student copy) after changing any of
//! those files; `cargo workbook verify` fails while they are stale.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::sha256::{self, Sha256};
use crate::workspace::{Lab, Workspace};
use anyhow::{Context, Result, bail};

/// Which of the two manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `tests/MANIFEST.sha256`: the files that decide a grade.
    Grading,
    /// `labs/MANIFEST.sha256`: the labs as shipped.
    Labs,
}

impl Kind {
    /// Both kinds.
    pub const ALL: [Kind; 2] = [Kind::Grading, Kind::Labs];

    /// The manifest's path, relative to the workspace root.
    pub const fn file(self) -> &'static str {
        match self {
            Kind::Grading => "tests/MANIFEST.sha256",
            Kind::Labs => "labs/MANIFEST.sha256",
        }
    }

    /// The comment at the top of the file.
    fn header(self) -> &'static str {
        match self {
            Kind::Grading => {
                "\
# SHA-256 of every file that decides a grade, as shipped: everything under
# tests/ (suites, snapshots, the grader) and workbook/ (the grading tool),
# every Cargo.toml, Cargo.lock, build.rs and rust-toolchain file, and every
# file under .cargo/, .config/ and .github/. A file of those kinds that is not
# listed here counts as a change too. `cargo workbook grade` fails the labs
# concerned when the checkout differs; check by hand with
# `sha256sum --check tests/MANIFEST.sha256`.
"
            }
            Kind::Labs => {
                "\
# SHA-256 of every file of every lab as shipped (the TODO stubs among them).
# `cargo workbook reset LAB` looks these versions up in the git history to put
# a lab back as it was.
"
            }
        }
    }

    /// The files this manifest covers, relative to the root, sorted.
    fn files(self, ws: &Workspace) -> Result<Vec<String>> {
        let mut found = Vec::new();
        match self {
            Kind::Grading => {
                let skip = skipped_dirs(ws);
                walk(&ws.root, &ws.root, &skip, &mut |relative| {
                    if is_grading_path(relative) {
                        found.push(relative.to_string());
                    }
                })?;
            }
            Kind::Labs => {
                for lab in &ws.labs {
                    collect(&ws.root, &ws.lab_dir(lab), &mut found)?;
                }
            }
        }
        found.retain(|path| path != self.file());
        found.sort();
        found.dedup();
        Ok(found)
    }
}

/// The file that pins the grading manifest's digest in a student copy
/// (never listed in the manifest it pins).
pub const PIN_FILE: &str = ".github/workflows/classroom.yml";

/// The name under which the pin is written, in the workflow's `env:` and
/// in the environment of a graded run.
pub const PIN_VARIABLE: &str = "WORKBOOK_MANIFEST_SHA256";

/// File names that can change a build or a test run wherever they are.
const GRADING_NAMES: [&str; 7] = [
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "rust-toolchain",
    "rust-toolchain.toml",
    "insta.yaml",
    ".insta.yaml",
];

/// Top-level directories whose every file decides a grade.
const GRADING_TREES: [&str; 3] = ["tests", "workbook", ".github"];

/// Directories, wherever they are, whose every file decides a grade:
/// cargo's configuration and insta's.
const GRADING_DIRS: [&str; 2] = [".cargo", ".config"];

/// True for a path (relative to the root, with `/`) that the grading
/// manifest covers.
pub fn is_grading_path(relative: &str) -> bool {
    let parts: Vec<&str> = relative.split('/').collect();
    let Some((name, dirs)) = parts.split_last() else {
        return false;
    };
    if relative == PIN_FILE || relative == Kind::Grading.file() || is_dropping(name) {
        return false;
    }
    GRADING_NAMES.contains(name)
        || dirs.first().is_some_and(|top| GRADING_TREES.contains(top))
        || dirs.iter().any(|dir| GRADING_DIRS.contains(dir))
}

/// Editor backups and swap files, and pending snapshots: never read by a
/// build or a test run, so left out wherever they are.
fn is_dropping(name: &str) -> bool {
    name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || name.starts_with(".#")
        || name == ".DS_Store"
        || name.ends_with(".snap.new")
        || name.ends_with(".pending-snap")
}

/// Directories the grading walk does not enter: version control, the
/// build output at the root, and `CARGO_TARGET_DIR` when it is inside.
fn skipped_dirs(ws: &Workspace) -> Vec<PathBuf> {
    let mut skip = vec![ws.root.join("target")];
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = ws.root.join(dir);
        if dir.starts_with(&ws.root) && dir != ws.root {
            skip.push(dir);
        }
    }
    skip
}

/// Calls `found` with every file and symbolic link under `dir` (relative
/// to `root`, with `/`), not following links and not entering `.git` or
/// the directories in `skip`. A symbolic link is reported like a file: the
/// manifest records where it points.
fn walk(root: &Path, dir: &Path, skip: &[PathBuf], found: &mut dyn FnMut(&str)) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        let kind = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot inspect {}", path.display()))?
            .file_type();
        if kind.is_dir() {
            let name = path.file_name().unwrap_or_default();
            if name != ".git" && !skip.contains(&path) {
                walk(root, &path, skip, found)?;
            }
        } else if kind.is_file() || kind.is_symlink() {
            found(&relative_slash(root, &path));
        }
    }
    Ok(())
}

/// Digests by path (relative to the workspace root, with `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Path → lowercase hexadecimal SHA-256.
    pub entries: BTreeMap<String, String>,
}

/// One way a checkout differs from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The file's contents changed.
    Changed(String),
    /// The manifest lists it, the checkout lacks it.
    Missing(String),
    /// The checkout has it, the manifest does not list it.
    Added(String),
    /// The manifest itself is not the one shipped: its digest differs from
    /// the one the autograding workflow pins.
    NotShipped(String),
}

impl Difference {
    /// The path concerned.
    pub fn path(&self) -> &str {
        match self {
            Difference::Changed(p)
            | Difference::Missing(p)
            | Difference::Added(p)
            | Difference::NotShipped(p) => p,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Changed(p) => write!(f, "{p}: changed"),
            Difference::Missing(p) => write!(f, "{p}: missing"),
            Difference::Added(p) => write!(f, "{p}: added"),
            Difference::NotShipped(p) => write!(
                f,
                "{p}: not the one shipped (its SHA-256 differs from the one {PIN_FILE} pins)"
            ),
        }
    }
}

impl Manifest {
    /// The manifest the checkout would have now.
    pub fn compute(ws: &Workspace, kind: Kind) -> Result<Manifest> {
        let mut entries = BTreeMap::new();
        for path in kind.files(ws)? {
            let digest = digest_of(&ws.root.join(&path))?;
            entries.insert(path, digest);
        }
        Ok(Manifest { entries })
    }

    /// The manifest as written in the checkout, or `None` when there is none.
    pub fn load(ws: &Workspace, kind: Kind) -> Result<Option<Manifest>> {
        let path = ws.root.join(kind.file());
        match fs::read_to_string(&path) {
            Ok(text) => Manifest::parse(&text)
                .map(Some)
                .with_context(|| format!("{} is not a checksum list", kind.file())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", kind.file())),
        }
    }

    /// Parses `sha256sum` output: `<64 hex digits>  <path>` (or ` *<path>`)
    /// per line; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Manifest> {
        let mut entries = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line.split_once(' ').and_then(|(digest, rest)| {
                let path = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
                let valid = digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit());
                (valid && !path.is_empty()).then(|| (path, digest.to_ascii_lowercase()))
            });
            let Some((path, digest)) = parsed else {
                bail!("line {}: expected `<sha256>  <path>`", index + 1);
            };
            entries.insert(path.to_string(), digest);
        }
        Ok(Manifest { entries })
    }

    /// The file's text: the header, then one line per file.
    pub fn render(&self, kind: Kind) -> String {
        let mut text = kind.header().to_string();
        for (path, digest) in &self.entries {
            text.push_str(&format!("{digest}  {path}\n"));
        }
        text
    }

    /// How `actual` differs from this manifest, by path.
    pub fn differences(&self, actual: &Manifest) -> Vec<Difference> {
        let mut found = Vec::new();
        for (path, digest) in &self.entries {
            match actual.entries.get(path) {
                None => found.push(Difference::Missing(path.clone())),
                Some(now) if now != digest => found.push(Difference::Changed(path.clone())),
                Some(_) => {}
            }
        }
        for path in actual.entries.keys() {
            if !self.entries.contains_key(path) {
                found.push(Difference::Added(path.clone()));
            }
        }
        found.sort_by(|a, b| a.path().cmp(b.path()));
        found
    }
}

/// Writes both manifests for the checkout as it is now; returns how many
/// files each lists.
pub fn write(ws: &Workspace) -> Result<Vec<(Kind, usize)>> {
    let mut written = Vec::new();
    for kind in Kind::ALL {
        let manifest = Manifest::compute(ws, kind)?;
        let path = ws.root.join(kind.file());
        fs::write(&path, manifest.render(kind))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push((kind, manifest.entries.len()));
    }
    Ok(written)
}

/// Why the manifests do not describe the checkout (empty when they do),
/// for `verify` and `manifest --check`.
pub fn stale(ws: &Workspace) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    for kind in Kind::ALL {
        let actual = Manifest::compute(ws, kind)?;
        let Some(recorded) = Manifest::load(ws, kind)? else {
            reasons.push(format!(
                "{} is missing (write it with `cargo workbook manifest`)",
                kind.file()
            ));
            continue;
        };
        let differences = recorded.differences(&actual);
        if !differences.is_empty() {
            reasons.push(format!(
                "{} is out of date (review the changes, then run `cargo workbook manifest`):",
                kind.file()
            ));
            reasons.extend(differences.iter().map(|d| format!("  {d}")));
        }
    }
    Ok(reasons)
}

/// The result of the tamper check: how the grading files differ from
/// `tests/MANIFEST.sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// They are exactly as shipped.
    AsShipped,
    /// Some differ.
    Differ(Vec<Difference>),
    /// There is no manifest to compare with.
    NoManifest,
    /// The comparison failed (an unreadable file, a broken manifest): why.
    Unknown(String),
}

impl Tamper {
    /// True when the grading files are exactly as shipped.
    pub fn is_as_shipped(&self) -> bool {
        *self == Tamper::AsShipped
    }

    /// The message to print first, or `None` when all is as shipped. It
    /// gives no advice but to put the files back: a student copy has no
    /// command that rewrites the manifest, and needs none.
    pub fn warning(&self) -> Option<String> {
        match self {
            Tamper::AsShipped => None,
            Tamper::NoManifest => Some(format!(
                "GRADING FILES: {} is missing, so nobody can tell whether the files that \
                 decide a grade are as shipped: every lab is graded as failed. Get it back \
                 from your course repository (e.g. `git checkout -- {}`).",
                Kind::Grading.file(),
                Kind::Grading.file()
            )),
            Tamper::Unknown(why) => Some(format!(
                "GRADING FILES: cannot tell whether the files that decide a grade are as \
                 shipped, so every lab is graded as failed: {why}"
            )),
            Tamper::Differ(differences) => {
                let mut text = "GRADING FILES: the files that decide a grade differ from what \
                                was shipped, so the labs they concern are graded as failed:\n"
                    .to_string();
                for difference in differences.iter().take(10) {
                    text.push_str(&format!("  {difference}\n"));
                }
                if differences.len() > 10 {
                    text.push_str(&format!("  … and {} more\n", differences.len() - 10));
                }
                text.push_str(
                    "  Put them back as shipped (e.g. `git checkout -- tests/`, and remove what \
                     you added); only your labs' src/ is yours to change.",
                );
                Some(text)
            }
        }
    }

    /// The differing paths (for `--json`).
    pub fn paths(&self) -> Vec<String> {
        match self {
            Tamper::Differ(differences) => differences.iter().map(|d| d.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    /// Everything either check found: differences are merged, and a check
    /// that could not tell wins over one that could.
    pub fn combine(self, other: Tamper) -> Tamper {
        match (self, other) {
            (Tamper::AsShipped, other) => other,
            (this @ (Tamper::NoManifest | Tamper::Unknown(_)), _) => this,
            (Tamper::Differ(_), other @ (Tamper::NoManifest | Tamper::Unknown(_))) => other,
            (this @ Tamper::Differ(_), Tamper::AsShipped) => this,
            (Tamper::Differ(mut mine), Tamper::Differ(theirs)) => {
                for difference in theirs {
                    if !mine.contains(&difference) {
                        mine.push(difference);
                    }
                }
                mine.sort_by(|a, b| a.path().cmp(b.path()));
                Tamper::Differ(mine)
            }
        }
    }

    /// Why `lab`'s grade does not count, or `None` when nothing that
    /// concerns it changed. A difference concerns one lab when it is the
    /// lab's suite, one of its snapshots or a file in its directory, and
    /// every lab otherwise (the grader, the grading tool, cargo's settings,
    /// the manifest itself …).
    pub fn reason_for(&self, lab: &Lab) -> Option<String> {
        match self {
            Tamper::AsShipped => None,
            Tamper::NoManifest => Some(format!("{} is missing", Kind::Grading.file())),
            Tamper::Unknown(why) => Some(format!(
                "cannot tell whether the grading files are as shipped: {why}"
            )),
            Tamper::Differ(differences) => {
                let concern: Vec<String> = differences
                    .iter()
                    .filter(|d| concerns(d.path(), lab))
                    .map(ToString::to_string)
                    .collect();
                if concern.is_empty() {
                    return None;
                }
                let shown: Vec<&str> = concern.iter().take(3).map(String::as_str).collect();
                let more = concern.len().saturating_sub(shown.len());
                let tail = if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                };
                Some(format!(
                    "the files that decide a grade were changed: {}{tail}",
                    shown.join("; ")
                ))
            }
        }
    }
}

/// True when a change to `path` (relative to the root) can change `lab`'s
/// grade. Only a lab's own suite, snapshots and directory are its alone.
pub fn concerns(path: &str, lab: &Lab) -> bool {
    match owner(path) {
        Some(owner) => owner.matches_lab(lab),
        None => true,
    }
}

/// Whose a grading file is, when it is one lab's alone.
enum Owner<'a> {
    /// `labs/NN-topic/…` or `tests/NN-topic.rs`.
    Dir(&'a str),
    /// `tests/snapshots/topic__….snap`.
    Topic(&'a str),
}

impl Owner<'_> {
    fn matches_lab(&self, lab: &Lab) -> bool {
        match self {
            Owner::Dir(name) => *name == lab.name,
            Owner::Topic(topic) => *topic == lab.test_target(),
        }
    }
}

/// The one lab a path belongs to, or `None` for a file every lab depends on.
fn owner(path: &str) -> Option<Owner<'_>> {
    if let Some(rest) = path.strip_prefix("labs/") {
        let dir = rest.split('/').next()?;
        return (rest.len() > dir.len() && Lab::from_dir_name(dir).is_some())
            .then_some(Owner::Dir(dir));
    }
    if let Some(name) = path.strip_prefix("tests/snapshots/") {
        if name.contains('/') {
            return None;
        }
        let (topic, _) = name.split_once("__")?;
        return Some(Owner::Topic(topic));
    }
    let file = path.strip_prefix("tests/")?.strip_suffix(".rs")?;
    (!file.contains('/') && Lab::from_dir_name(file).is_some()).then_some(Owner::Dir(file))
}

/// Compares the grading files with `tests/MANIFEST.sha256` (and that
/// manifest with the digest the workflow pins); a comparison that fails is
/// reported as [`Tamper::Unknown`], never stops a grade.
pub fn tamper_check(ws: &Workspace) -> Tamper {
    compare_grading_files(ws).unwrap_or_else(|err| Tamper::Unknown(format!("{err:#}")))
}

/// [`tamper_check`], with its errors.
fn compare_grading_files(ws: &Workspace) -> Result<Tamper> {
    let Some(recorded) = Manifest::load(ws, Kind::Grading)? else {
        return Ok(Tamper::NoManifest);
    };
    let actual = Manifest::compute(ws, Kind::Grading)?;
    let mut differences = recorded.differences(&actual);
    if let Some(pin) = pinned_digest(ws)? {
        let digest = sha256_file(&ws.root.join(Kind::Grading.file()))?;
        if pin.as_deref() != Some(digest.as_str()) {
            differences.insert(0, Difference::NotShipped(Kind::Grading.file().to_string()));
        }
    }
    Ok(if differences.is_empty() {
        Tamper::AsShipped
    } else {
        Tamper::Differ(differences)
    })
}

/// The digest of `tests/MANIFEST.sha256` fixed when the copy was handed
/// out: `$WORKBOOK_MANIFEST_SHA256` when set (the autograding workflow sets
/// it), else the line `WORKBOOK_MANIFEST_SHA256: <digest>` of
/// [`PIN_FILE`]. `None` when there is no pin to check (the course
/// repository); `Some(None)` when the workflow exists but its pin is gone.
pub fn pinned_digest(ws: &Workspace) -> Result<Option<Option<String>>> {
    if let Some(value) = std::env::var_os(PIN_VARIABLE).filter(|v| !v.is_empty()) {
        return Ok(Some(value.to_str().and_then(parse_digest)));
    }
    let path = ws.root.join(PIN_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {PIN_FILE}")),
    };
    Ok(Some(pin_in(&text)))
}

/// The digest on the line `WORKBOOK_MANIFEST_SHA256: <digest>` of a workflow.
pub fn pin_in(workflow: &str) -> Option<String> {
    workflow.lines().find_map(|line| {
        let value = line.trim().strip_prefix(PIN_VARIABLE)?.strip_prefix(':')?;
        parse_digest(value.trim().trim_matches('"'))
    })
}

/// A SHA-256 in hexadecimal, lowercased; `None` if it is not one.
fn parse_digest(text: &str) -> Option<String> {
    let text = text.trim();
    (text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// The digest the manifest records for a path: a file's contents, or for a
/// symbolic link where it points (a link is never what was shipped).
fn digest_of(path: &Path) -> Result<String> {
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("cannot inspect {}", path.display()))?;
    if meta.file_type().is_symlink() {
        let target =
            fs::read_link(path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(sha256(
            format!("symbolic link to {}", target.display()).as_bytes(),
        ));
    }
    sha256_file(path)
}

/// The SHA-256 of a file's contents, in lowercase hexadecimal.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finish()))
}

/// The SHA-256 of `bytes`, in lowercase hexadecimal.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&sha256::digest(bytes))
}

/// Bytes as lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True for names a manifest leaves out wherever they are: build output,
/// version control, editor droppings, and snapshots a run left pending.
pub fn is_ignored(name: &str) -> bool {
    name == "target"
        || name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".snap.new")
        || name.ends_with(".pending-snap")
}

/// Adds every regular file under `dir` to `found`, as a path relative to
/// `root` with `/` separators (symbolic links are not followed).
fn collect(root: &Path, dir: &Path, found: &mut Vec<String>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if !is_ignored(&entry.file_name().to_string_lossy()) {
            paths.push(entry.path());
        }
    }
    for path in paths {
        let kind = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot inspect {}", path.display()))?
            .file_type();
        if kind.is_dir() {
            collect(root, &path, found)?;
        } else if kind.is_file() {
            found.push(relative_slash(root, &path));
        }
    }
    Ok(())
}

/// `path` relative to `root`, with `/` separators.
fn relative_slash(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
    const B: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";

    #[test]
    fn digests_match_sha256sum() {
        assert_eq!(sha256(b"a"), A);
        assert_eq!(sha256(b"b"), B);
    }

    #[test]
    fn manifests_round_trip_through_the_sha256sum_format() {
        let text = format!("# comment\n\n{A}  tests/a.rs\n{B} *tests/snapshots/b.snap\n");
        let manifest = Manifest::parse(&text).expect("valid");
        assert_eq!(manifest.entries.len(), 2);
        assert_eq!(manifest.entries["tests/snapshots/b.snap"], B);
        let rendered = manifest.render(Kind::Grading);
        assert!(rendered.starts_with("# SHA-256"), "{rendered}");
        assert!(rendered.ends_with(&format!("{B}  tests/snapshots/b.snap\n")));
        assert_eq!(Manifest::parse(&rendered).expect("valid"), manifest);
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for bad in [
            "nothex  tests/a.rs",
            &format!("{A}tests/a.rs"),
            &format!("{A}  "),
        ] {
            let err = Manifest::parse(bad).expect_err(bad);
            assert_eq!(err.to_string(), "line 1: expected `<sha256>  <path>`");
        }
    }

    #[test]
    fn differences_name_changed_missing_and_added_files() {
        let shipped = Manifest::parse(&format!("{A}  a\n{A}  b\n{A}  c\n")).expect("valid");
        let now = Manifest::parse(&format!("{A}  a\n{B}  b\n{A}  d\n")).expect("valid");
        let found: Vec<String> = shipped
            .differences(&now)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, ["b: changed", "c: missing", "d: added"]);
        assert!(shipped.differences(&shipped).is_empty());
    }

    #[test]
    fn editor_and_build_files_are_left_out() {
        for name in [
            "target",
            ".git",
            "lib.rs~",
            ".lib.rs.swp",
            "x.snap.new",
            "y.pending-snap",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        for name in ["lib.rs", "pipes__x.snap", "Cargo.toml"] {
            assert!(!is_ignored(name), "{name}");
        }
    }

    #[test]
    fn a_tamper_warning_names_the_files() {
        let tamper = Tamper::Differ(vec![Difference::Changed("tests/02-pipes.rs".into())]);
        let warning = tamper.warning().expect("a warning");
        assert!(warning.starts_with("GRADING FILES: the files that decide a grade differ"));
        assert!(!warning.contains("cargo workbook manifest"), "{warning}");
        assert!(
            warning.contains("\n  tests/02-pipes.rs: changed\n"),
            "{warning}"
        );
        assert_eq!(Tamper::AsShipped.warning(), None);
    }
}
