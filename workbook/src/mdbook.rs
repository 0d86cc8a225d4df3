//! `cargo workbook serve` and `build`: the book, with a pinned mdBook.
//!
//! The course needs nothing but the Rust toolchain: on first use mdBook is
//! compiled with `cargo install` into `<target-dir>/workbook-tools`, which
//! `cargo clean` removes along with everything else. Every later run reuses
//! it. `WORKBOOK_MDBOOK=/path/to/mdbook` uses an existing binary instead.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::process::{self, Captured};
use crate::workspace::Workspace;

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
            let dest = lexically_normal(&cwd.join(dest));
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

/// Fails unless `book/book.toml` exists.
fn check_book(ws: &Workspace) -> Result<()> {
    let book_toml = ws.root.join("book/book.toml");
    if !book_toml.is_file() {
        bail!(
            "there is no book to build: {} is missing",
            ws.relative(&book_toml).display()
        );
    }
    Ok(())
}

/// `path` with `.` and `dir/..` removed, without touching the file system
/// (the directory may not exist yet).
fn lexically_normal(path: &Path) -> PathBuf {
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

/// Where `mdbook build book` writes without `-d`: `build.build-dir` of
/// `book.toml` (default `book`), inside `book/`.
fn default_dest(ws: &Workspace) -> PathBuf {
    let book = ws.root.join("book");
    let configured = std::fs::read_to_string(book.join("book.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| {
            let dir = table.get("build")?.get("build-dir")?.as_str()?.to_string();
            Some(dir)
        });
    book.join(configured.unwrap_or_else(|| "book".to_string()))
}

/// The mdBook to run: `$WORKBOOK_MDBOOK`, or the pinned one, installed on
/// first use.
pub fn mdbook(ws: &Workspace) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(MDBOOK_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let tools = target_dir(ws)?.join("workbook-tools");
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

/// True when `binary --version` reports the pinned version.
fn is_pinned(binary: &Path) -> bool {
    let Ok(output) = Command::new(binary).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    output.status.success()
        && text
            .split_whitespace()
            .any(|word| word.trim_start_matches('v') == MDBOOK_VERSION)
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

/// The workspace's target directory, as cargo reports it (it honours
/// `CARGO_TARGET_DIR` and `build.target-dir`).
fn target_dir(ws: &Workspace) -> Result<PathBuf> {
    let mut cmd = process::cargo(&ws.root);
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    let captured = process::capture(&mut cmd)?;
    if !captured.success {
        bail!(
            "`cargo metadata` failed: {}",
            captured.stderr.lines().next().unwrap_or("no message")
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_str(&captured.stdout).context("cannot read `cargo metadata` output")?;
    let dir = metadata
        .get("target_directory")
        .and_then(|d| d.as_str())
        .context("`cargo metadata` did not report a target_directory")?;
    Ok(PathBuf::from(OsString::from(dir)))
}
