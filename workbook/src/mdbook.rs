//! `cargo workbook serve` and `build`: the book, with a pinned mdBook.
//!
//! The course needs nothing but the Rust toolchain: on first use mdBook is
//! compiled with `cargo install` into `<target-dir>/workbook-tools`, which
//! `cargo clean` removes along with everything else. Every later run reuses
//! it. `WORKBOOK_MDBOOK=/path/to/mdbook` uses an existing binary instead.

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
