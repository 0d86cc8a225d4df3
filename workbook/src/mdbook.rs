//! `cargo workbook serve` and `build`: the book, with a pinned mdBook.
//!
//! The course needs nothing but the Rust toolchain: on first use mdBook is
//! compiled with `cargo install` into `<target-dir>/workbook-tools`, which
//! `cargo clean` removes along with everything else. Every later run reuses
//! it. `WORKBOOK_MDBOOK=/path/to/mdbook` uses an existing binary instead.
//!
//! Before mdBook runs, every `{{#include …}}` of every page is checked: mdBook
//! silently includes nothing for a missing anchor, so a renamed anchor in a
//! lab would leave a listing out of the book without a word. Here a missing
//! file, anchor or line range fails the build, naming the chapter and the
//! anchor.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::minitoml;
use crate::process::{self, Captured};
use crate::workspace::{self, Workspace};

/// The mdBook version the book is written for.
pub const MDBOOK_VERSION: &str = "0.5.4";

/// The environment variable naming an mdBook to use instead of the pinned one.
const MDBOOK_ENV: &str = "WORKBOOK_MDBOOK";

/// Runs `cargo workbook serve`: serves the book on 127.0.0.1 until Ctrl-C.
pub fn serve(ws: &Workspace, port: u16, open: bool) -> Result<ExitCode> {
    check_book(ws)?;
    let mdbook = mdbook(ws)?;
    let mut cmd = Command::new(&mdbook);
    cmd.current_dir(&ws.root)
        .args(["serve", "book", "-n", "127.0.0.1", "-p"])
        .arg(port.to_string());
    if open {
        cmd.arg("--open");
    }
    eprintln!("serving the book at http://127.0.0.1:{port}/ (press Ctrl-C to stop)");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", mdbook.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `cargo workbook build [--dest DIR]`: writes the book as HTML.
///
/// A relative `DIR` is taken from `cwd`, where the command was typed.
pub fn build(ws: &Workspace, dest: Option<&Path>, cwd: &Path) -> Result<ExitCode> {
    check_book(ws)?;
    let mdbook = mdbook(ws)?;
    let mut cmd = Command::new(&mdbook);
    cmd.current_dir(&ws.root).args(["build", "book"]);
    let dest = match dest {
        Some(dest) => {
            let dest = workspace::lexically_normal(&cwd.join(dest));
            cmd.arg("-d").arg(&dest);
            dest
        }
        None => default_dest(ws),
    };
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", mdbook.display()))?;
    if !status.success() {
        bail!("mdbook could not build the book (see its messages above)");
    }
    eprintln!(
        "the book is in {}; open index.html in a browser",
        ws.relative(&dest).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds the book into `dest` with its output captured (for `verify`).
pub fn build_captured(ws: &Workspace, dest: &Path) -> Result<Captured> {
    check_book(ws)?;
    let mdbook = mdbook(ws)?;
    let mut cmd = Command::new(mdbook);
    cmd.current_dir(&ws.root)
        .args(["build", "book", "-d"])
        .arg(dest)
        .env("NO_COLOR", "1");
    process::capture(&mut cmd)
}

/// Fails unless `book/book.toml` exists and every include of every page
/// finds its file and anchor.
fn check_book(ws: &Workspace) -> Result<()> {
    let book_toml = ws.root.join("book/book.toml");
    if !book_toml.is_file() {
        bail!(
            "there is no book to build: {} is missing",
            ws.relative(&book_toml).display()
        );
    }
    let problems = check_includes(ws)?;
    if !problems.is_empty() {
        bail!(
            "the book would leave out {} listing(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// Every `{{#include}}` (and `{{#rustdoc_include}}`) of every page under
/// `book/src` whose file, anchor or line range is missing, described with
/// its chapter: `book/src/02-pipes.md (02 · Pipes), line 458: {{#include
/// …:pipe_fork}}: no anchor `pipe_fork` in labs/02-pipes/examples/x.rs`.
pub fn check_includes(ws: &Workspace) -> Result<Vec<String>> {
    let src = ws.root.join("book/src");
    let mut pages = Vec::new();
    markdown_files(&src, &mut pages)?;
    pages.sort();
    let mut problems = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page)
            .with_context(|| format!("cannot read {}", page.display()))?;
        let dir = page.parent().unwrap_or(&src);
        let chapter = chapter_name(&text, &ws.relative(&page).display().to_string());
        for (line, include) in includes(&text) {
            if let Some(problem) = check_include(ws, dir, &include) {
                problems.push(format!(
                    "{chapter}, line {line}: {{{{#{} {}}}}}: {problem}",
                    include.command, include.target
                ));
            }
        }
    }
    Ok(problems)
}

/// `book/src/02-pipes.md (02 · Pipes (管道))`: the page and its first heading.
fn chapter_name(text: &str, path: &str) -> String {
    match text.lines().find_map(|l| l.strip_prefix("# ")) {
        Some(title) => format!("{path} ({})", title.trim()),
        None => path.to_string(),
    }
}

/// One include of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Include {
    /// `include` or `rustdoc_include`.
    command: String,
    /// What follows it: `path`, `path:anchor`, `path:N`, `path:N:M` …
    target: String,
}

/// The includes of a page with their line numbers, skipping escaped ones
/// (`\{{#include …}}`).
fn includes(text: &str) -> Vec<(usize, Include)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("{{#") {
            let escaped = rest[..at].ends_with('\\');
            let after = &rest[at + 3..];
            let Some(end) = after.find("}}") else {
                break;
            };
            let inner = after[..end].trim();
            rest = &after[end + 2..];
            if escaped {
                continue;
            }
            let (command, target) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
            if command == "include" || command == "rustdoc_include" {
                found.push((
                    index + 1,
                    Include {
                        command: command.to_string(),
                        target: target.trim().to_string(),
                    },
                ));
            }
        }
    }
    found
}

/// What is wrong with one include, if anything.
fn check_include(ws: &Workspace, dir: &Path, include: &Include) -> Option<String> {
    let mut parts = include.target.splitn(2, ':');
    let path = parts.next().unwrap_or("");
    let selector = parts.next();
    let file = dir.join(path);
    let shown = ws
        .relative(&workspace::lexically_normal(&file))
        .display()
        .to_string();
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) => return Some(format!("cannot read {shown}: {err}")),
    };
    let selector = selector?.trim();
    if selector.is_empty() {
        return None;
    }
    let lines = text.lines().count();
    let first = selector.split(':').next().unwrap_or("");
    if let Ok(start) = first.parse::<usize>() {
        return (start > lines)
            .then(|| format!("{shown} has {lines} lines, and the range starts at line {start}"));
    }
    if selector.split(':').next().is_some_and(str::is_empty) {
        return None;
    }
    let anchor = selector;
    let names = |marker: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| {
                let at = l.find(marker)?;
                let rest = l[at + marker.len()..].trim_start();
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                (!name.is_empty()).then_some(name)
            })
            .collect()
    };
    let starts = names("ANCHOR:");
    let ends = names("ANCHOR_END:");
    if !starts.iter().any(|n| n == anchor) {
        return Some(format!(
            "no anchor `{anchor}` in {shown} (no line `ANCHOR: {anchor}`)"
        ));
    }
    if !ends.iter().any(|n| n == anchor) {
        return Some(format!(
            "anchor `{anchor}` in {shown} has no `ANCHOR_END: {anchor}`"
        ));
    }
    None
}

/// Every `.md` file under `dir`.
fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            markdown_files(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
    Ok(())
}

/// Where `mdbook build book` writes without `-d`: `build.build-dir` of
/// `book.toml` (default `book`), inside `book/`.
fn default_dest(ws: &Workspace) -> PathBuf {
    let book = ws.root.join("book");
    let configured = std::fs::read_to_string(book.join("book.toml"))
        .ok()
        .and_then(|text| minitoml::parse(&text).ok())
        .and_then(|table| {
            let build = table.get("build")?.as_table()?;
            Some(build.get("build-dir")?.as_str()?.to_string())
        });
    book.join(configured.unwrap_or_else(|| "book".to_string()))
}

/// The mdBook to run: `$WORKBOOK_MDBOOK`, or the pinned one, installed on
/// first use.
pub fn mdbook(ws: &Workspace) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(MDBOOK_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let tools = tools_dir(ws)?;
    let binary = tools.join("bin").join("mdbook");
    if is_pinned(&binary) {
        return Ok(binary);
    }
    install(ws, &tools)?;
    if !is_pinned(&binary) {
        bail!(
            "{} is not mdbook {MDBOOK_VERSION} even after installing it",
            binary.display()
        );
    }
    Ok(binary)
}

/// The mdBook that `serve` and `build` would run, found without installing
/// anything (for `doctor`).
#[derive(Debug)]
pub enum Installed {
    /// `$WORKBOOK_MDBOOK` names one; its version, if it runs.
    Override(PathBuf, Option<String>),
    /// The pinned version is installed in the target directory.
    Pinned(PathBuf),
    /// Not installed yet: the first `serve` or `build` installs it.
    Missing(PathBuf),
}

/// Which mdBook `serve` and `build` would run.
pub fn installed(ws: &Workspace) -> Result<Installed> {
    if let Some(path) = std::env::var_os(MDBOOK_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        let version = version_of(&path);
        return Ok(Installed::Override(path, version));
    }
    let binary = tools_dir(ws)?.join("bin").join("mdbook");
    if is_pinned(&binary) {
        Ok(Installed::Pinned(binary))
    } else {
        Ok(Installed::Missing(binary))
    }
}

/// The version `binary --version` reports (`mdbook v0.5.4` → `0.5.4`), or
/// `None` when it does not run.
fn version_of(binary: &Path) -> Option<String> {
    let output = Command::new(binary).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let word = text.split_whitespace().last()?;
    Some(word.trim_start_matches('v').to_string())
}

/// True when `binary --version` reports the pinned version.
fn is_pinned(binary: &Path) -> bool {
    version_of(binary).as_deref() == Some(MDBOOK_VERSION)
}

/// `cargo install mdbook --version =X --locked --root TOOLS`, with cargo's
/// progress shown.
fn install(ws: &Workspace, tools: &Path) -> Result<()> {
    eprintln!(
        "installing mdbook {MDBOOK_VERSION} into {} (first use only; this compiles it, \
         a few minutes on two cores)…",
        ws.relative(tools).display()
    );
    let mut cmd = Command::new(process::cargo_program());
    cmd.current_dir(&ws.root)
        .env("PATH", path_with(&tools.join("bin")))
        .args(["install", "mdbook", "--version"])
        .arg(format!("={MDBOOK_VERSION}"))
        .args(["--locked", "--root"])
        .arg(tools);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run `{}`", process::describe(&cmd)))?;
    if !status.success() {
        bail!(
            "`{}` failed (see cargo's messages above); set {MDBOOK_ENV}=/path/to/mdbook to use \
             an mdbook you already have",
            process::describe(&cmd)
        );
    }
    Ok(())
}

/// `PATH` with `dir` in front, so that `cargo install` does not advise the
/// student to change their `PATH` for a tool only this command runs.
fn path_with(dir: &Path) -> OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| std::env::var_os("PATH").unwrap_or_default())
}

/// `<target-dir>/workbook-tools`, where the pinned mdBook is installed.
pub fn tools_dir(ws: &Workspace) -> Result<PathBuf> {
    Ok(ws.target_dir()?.join("workbook-tools"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> (tempdir::Dir, Workspace) {
        let dir = tempdir::Dir::new();
        let root = dir.path.clone();
        for (path, text) in [
            ("Cargo.toml", "[workspace]\n"),
            ("labs/.keep", ""),
            ("book/book.toml", "[book]\n"),
            (
                "labs/02-pipes/src/lib.rs",
                "// ANCHOR: pipe\nfn pipe() {}\n// ANCHOR_END: pipe\n// ANCHOR: open\n",
            ),
            (
                "book/src/02-pipes.md",
                "# 02 · Pipes\n\n{{#include ../../labs/02-pipes/src/lib.rs:pipe}}\n\
                 {{#include ../../labs/02-pipes/src/lib.rs:gone}}\n\
                 {{#include ../../labs/02-pipes/src/lib.rs:open}}\n\
                 {{#rustdoc_include ../../labs/02-pipes/src/missing.rs}}\n\
                 {{#include ../../labs/02-pipes/src/lib.rs:2:3}} {{#include ../../labs/02-pipes/src/lib.rs:90}}\n\
                 \\{{#include not/a/real/include.rs}}\n",
            ),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
        }
        let ws = Workspace {
            root,
            labs: Vec::new(),
        };
        (dir, ws)
    }

    /// A scratch directory removed on drop.
    mod tempdir {
        pub struct Dir {
            pub path: std::path::PathBuf,
        }

        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let path = std::env::temp_dir().join(format!(
                    "workbook-mdbook-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&path).expect("a scratch directory");
                Dir { path }
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    #[test]
    fn a_missing_anchor_file_or_range_names_the_chapter() {
        let (_dir, ws) = course();
        let problems = check_includes(&ws).expect("checked");
        assert_eq!(
            problems,
            [
                "book/src/02-pipes.md (02 · Pipes), line 4: {{#include ../../labs/02-pipes/src/lib.rs:gone}}: \
                 no anchor `gone` in labs/02-pipes/src/lib.rs (no line `ANCHOR: gone`)",
                "book/src/02-pipes.md (02 · Pipes), line 5: {{#include ../../labs/02-pipes/src/lib.rs:open}}: \
                 anchor `open` in labs/02-pipes/src/lib.rs has no `ANCHOR_END: open`",
                "book/src/02-pipes.md (02 · Pipes), line 6: {{#rustdoc_include ../../labs/02-pipes/src/missing.rs}}: \
                 cannot read labs/02-pipes/src/missing.rs: No such file or directory (os error 2)",
                "book/src/02-pipes.md (02 · Pipes), line 7: {{#include ../../labs/02-pipes/src/lib.rs:90}}: \
                 labs/02-pipes/src/lib.rs has 4 lines, and the range starts at line 90",
            ]
        );
        let err = check_book(&ws).expect_err("the book cannot build");
        assert!(
            err.to_string()
                .starts_with("the book would leave out 4 listing(s):\n  book/src/02-pipes.md (02 · Pipes), line 4"),
            "{err}"
        );
    }
}
