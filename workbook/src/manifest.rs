//! The checksum manifests: a record of what the course shipped, so that
//! `grade` can tell when the files that decide a grade were changed, and
//! `reset` can find a lab's stubs again.
//!
//! Both files use the format of `sha256sum` (`<hex digest>  <path>`, paths
//! relative to the workspace root, `#` comments), so anyone can check them
//! without this tool: `sha256sum --check tests/MANIFEST.sha256`.
//!
//! * `tests/MANIFEST.sha256` lists the **grading files**: everything under
//!   `tests/` (suites, snapshots, the grader), insta's settings
//!   (`.config/insta.yaml`, which could make every snapshot pass), the
//!   workspace `Cargo.toml` and each lab's `Cargo.toml` (which say which
//!   suite and which grader a lab runs). A student never needs to change
//!   one of them.
//! * `labs/MANIFEST.sha256` lists every file of every lab as shipped: the
//!   TODO stubs, the given CLI, `lab.toml`, the examples.
//!
//! Course authors rewrite both with `cargo workbook manifest` after changing
//! any of those files; `cargo workbook verify` fails while they are stale.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::sha256::{self, Sha256};
use crate::workspace::Workspace;
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
# SHA-256 of every file that decides a grade, as shipped: the grading suites,
# snapshots and grader under tests/, insta's settings, the workspace manifest
# and each lab's Cargo.toml. `cargo workbook grade` warns when the checkout
# differs; check by hand with `sha256sum --check tests/MANIFEST.sha256`.
# Course authors rewrite it with `cargo workbook manifest`.
"
            }
            Kind::Labs => {
                "\
# SHA-256 of every file of every lab as shipped (the TODO stubs among them).
# `cargo workbook reset LAB` looks these versions up in the git history to put
# a lab back as it was. Course authors rewrite it with `cargo workbook manifest`.
"
            }
        }
    }

    /// The files this manifest covers, relative to the root, sorted.
    fn files(self, ws: &Workspace) -> Result<Vec<String>> {
        let mut found = Vec::new();
        match self {
            Kind::Grading => {
                collect(&ws.root, &ws.root.join("tests"), &mut found)?;
                for extra in [".config/insta.yaml", "Cargo.toml"] {
                    if ws.root.join(extra).is_file() {
                        found.push(extra.to_string());
                    }
                }
                for lab in &ws.labs {
                    found.push(format!("labs/{}/Cargo.toml", lab.name));
                }
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
}

impl Difference {
    /// The path concerned.
    pub fn path(&self) -> &str {
        match self {
            Difference::Changed(p) | Difference::Missing(p) | Difference::Added(p) => p,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Changed(p) => write!(f, "{p}: changed"),
            Difference::Missing(p) => write!(f, "{p}: missing"),
            Difference::Added(p) => write!(f, "{p}: added"),
        }
    }
}

impl Manifest {
    /// The manifest the checkout would have now.
    pub fn compute(ws: &Workspace, kind: Kind) -> Result<Manifest> {
        let mut entries = BTreeMap::new();
        for path in kind.files(ws)? {
            let digest = sha256_file(&ws.root.join(&path))?;
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
    /// The warning to print first, or `None` when all is as shipped.
    pub fn warning(&self) -> Option<String> {
        match self {
            Tamper::AsShipped => None,
            Tamper::NoManifest => Some(format!(
                "WARNING: {} is missing, so nobody can tell whether the grading suites are \
                 as shipped. Get it back from your course repository.",
                Kind::Grading.file()
            )),
            Tamper::Unknown(why) => Some(format!(
                "WARNING: cannot tell whether the grading suites are as shipped: {why}"
            )),
            Tamper::Differ(differences) => {
                let mut text = "WARNING: the files that decide your grade differ from what \
                                was shipped, so this grade does not count:\n"
                    .to_string();
                for difference in differences.iter().take(10) {
                    text.push_str(&format!("  {difference}\n"));
                }
                if differences.len() > 10 {
                    text.push_str(&format!("  … and {} more\n", differences.len() - 10));
                }
                text.push_str(
                    "  Put them back as shipped (e.g. `git checkout -- tests/`); only your \
                     labs' src/ is yours to change. Course authors who changed them on \
                     purpose run `cargo workbook manifest`.",
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
}

/// Compares the grading files with `tests/MANIFEST.sha256`; a comparison
/// that fails is reported as [`Tamper::Unknown`], never stops a grade.
pub fn tamper_check(ws: &Workspace) -> Tamper {
    compare_grading_files(ws).unwrap_or_else(|err| Tamper::Unknown(format!("{err:#}")))
}

/// [`tamper_check`], with its errors.
fn compare_grading_files(ws: &Workspace) -> Result<Tamper> {
    let Some(recorded) = Manifest::load(ws, Kind::Grading)? else {
        return Ok(Tamper::NoManifest);
    };
    let actual = Manifest::compute(ws, Kind::Grading)?;
    let differences = recorded.differences(&actual);
    Ok(if differences.is_empty() {
        Tamper::AsShipped
    } else {
        Tamper::Differ(differences)
    })
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
        assert!(warning.starts_with("WARNING: the files that decide your grade"));
        assert!(
            warning.contains("\n  tests/02-pipes.rs: changed\n"),
            "{warning}"
        );
        assert_eq!(Tamper::AsShipped.warning(), None);
    }
}
