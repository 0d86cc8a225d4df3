//! `cargo workbook reset LAB`: puts a lab's files back as shipped.
//!
//! "As shipped" means what `labs/MANIFEST.sha256` records: the SHA-256 of
//! every file of every lab when the course (or the handout) was made. The
//! contents themselves come from the git history: for each file that
//! differs, the newest commit in which it had the recorded digest. That
//! works in the course repository and in a student repository made from a
//! handout, whatever the student committed since; a copy without its git
//! history cannot be reset (the command says so and changes nothing).
//!
//! Files the student added to the lab are left alone. Before a file is
//! replaced, its current version is copied to
//! `<target-dir>/workbook/reset/<lab>-<unix time>/`, so a mistaken reset
//! loses nothing.

use std::fs;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::UsageError;
use crate::manifest::{self, Kind, Manifest};
use crate::process;
use crate::workspace::Workspace;

/// One file to put back.
struct Restore {
    /// Relative to the workspace root, e.g. `labs/02-pipes/src/lib.rs`.
    path: String,
    /// Relative to the lab, e.g. `src/lib.rs`.
    in_lab: String,
    /// Whether the checkout still has a (changed) version of it.
    exists: bool,
    /// The contents as shipped.
    shipped: Vec<u8>,
}

/// Runs `cargo workbook reset LAB [--yes]`.
pub fn run(ws: &Workspace, query: &str, yes: bool) -> Result<ExitCode> {
    let lab = ws.select_one(query)?;
    let Some(recorded) = Manifest::load(ws, Kind::Labs)? else {
        bail!(
            "{} is missing, so there is no record of what was shipped; get it back from \
             your course repository",
            Kind::Labs.file()
        );
    };
    let prefix = format!("labs/{}/", lab.name);
    let shipped: Vec<(&String, &String)> = recorded
        .entries
        .iter()
        .filter(|(path, _)| path.starts_with(&prefix))
        .collect();
    if shipped.is_empty() {
        bail!("{} lists no file of labs/{}", Kind::Labs.file(), lab.name);
    }
    let mut changed = Vec::new();
    for (path, digest) in shipped {
        let full = ws.root.join(path);
        let exists = full.is_file();
        if exists && manifest::sha256_file(&full)? == *digest {
            continue;
        }
        changed.push((path.clone(), digest.clone(), exists));
    }
    if changed.is_empty() {
        println!("labs/{} is as shipped: nothing to reset.", lab.name);
        return Ok(ExitCode::SUCCESS);
    }
    // Every shipped version is found before anything is touched.
    let mut restores = Vec::new();
    for (path, digest, exists) in changed {
        let shipped = shipped_contents(&ws.root, &path, &digest)?;
        restores.push(Restore {
            in_lab: path[prefix.len()..].to_string(),
            path,
            exists,
            shipped,
        });
    }
    println!(
        "These files of labs/{} differ from what was shipped:",
        lab.name
    );
    for restore in &restores {
        let how = if restore.exists { "changed" } else { "missing" };
        println!("  {} ({how})", restore.in_lab);
    }
    let backup = ws.state_dir()?.join("reset").join(format!(
        "{}-{}",
        lab.name,
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    ));
    if !yes
        && !confirm(&format!(
            "Put them back as shipped? Your version is copied to {} first. [y/N] ",
            ws.relative(&backup).display()
        ))?
    {
        println!("Nothing was changed.");
        return Ok(ExitCode::SUCCESS);
    }
    for restore in &restores {
        put_back(ws, restore, &backup)?;
    }
    println!(
        "Put back {} of labs/{} as shipped.",
        files(restores.len()),
        lab.name
    );
    if restores.iter().any(|r| r.exists) {
        println!(
            "Your previous version is in {}/.",
            ws.relative(&backup).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `1 file`, `2 files`.
fn files(n: usize) -> String {
    if n == 1 {
        "1 file".to_string()
    } else {
        format!("{n} files")
    }
}

/// Asks `question` on the terminal; true for `y` or `yes`. Without a
/// terminal there is nobody to ask: a usage error that points to `--yes`.
fn confirm(question: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(UsageError(
            "reset replaces your work and asks first, but there is no terminal to ask on; \
             run it in a terminal, or add --yes"
                .to_string(),
        )
        .into());
    }
    eprint!("{question}");
    std::io::stderr()
        .flush()
        .context("cannot ask on the terminal")?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(is_yes(&answer))
}

/// `y`, `Y`, `yes` (surrounding blanks ignored) mean yes; anything else no.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Copies the current version of the file into `backup` (if there is one),
/// then writes the shipped version in its place.
fn put_back(ws: &Workspace, restore: &Restore, backup: &Path) -> Result<()> {
    let target = ws.root.join(&restore.path);
    if restore.exists {
        let copy = backup.join(&restore.in_lab);
        if let Some(dir) = copy.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fs::copy(&target, &copy).with_context(|| {
            format!(
                "cannot keep a copy of {} in {}",
                restore.path,
                copy.display()
            )
        })?;
    }
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(&target, &restore.shipped).with_context(|| format!("cannot write {}", restore.path))
}

/// The contents `path` had when its SHA-256 was `digest`, from the newest
/// commit of the history that holds that version.
fn shipped_contents(root: &Path, path: &str, digest: &str) -> Result<Vec<u8>> {
    let mut log = Command::new("git");
    log.current_dir(root)
        .args(["log", "--format=%H", "--"])
        .arg(path);
    let listed = process::capture(&mut log).with_context(|| {
        format!("cannot look for the shipped version of {path} (is git installed?)")
    })?;
    if !listed.success {
        bail!(
            "cannot look for the shipped version of {path}: this checkout has no git history \
             ({}); download the lab again from your course repository",
            listed.stderr.lines().next().unwrap_or("git failed").trim()
        );
    }
    for commit in listed.stdout.split_whitespace() {
        let output = Command::new("git")
            .current_dir(root)
            .arg("show")
            .arg(format!("{commit}:./{path}"))
            .output()
            .context("cannot run git")?;
        if output.status.success() && manifest::sha256(&output.stdout) == digest {
            return Ok(output.stdout);
        }
    }
    bail!(
        "no commit of this repository holds {path} as shipped (the version {} records); \
         download it again from your course repository",
        Kind::Labs.file()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_means_yes() {
        for answer in ["y\n", "Y", " yes ", "YES\n"] {
            assert!(is_yes(answer), "{answer:?}");
        }
        for answer in ["", "\n", "n", "no", "yep", "oui"] {
            assert!(!is_yes(answer), "{answer:?}");
        }
    }
}
