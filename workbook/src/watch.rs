//! `cargo workbook watch [LAB]`: grades a lab again each time one of its
//! files is saved, like rustlings' watch mode.
//!
//! A lab counts as changed when the size or modification time of a file
//! under `labs/NN-topic/` changes. File change events (inotify(7)) make the
//! tool notice at once; it also compares every second, so that file systems
//! that send no events (network shares, some container mounts) still work,
//! only a little later. `--poll` skips the
//! events altogether. Enter grades again by hand; `q` and Enter, or Ctrl-C,
//! quits.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};

use crate::grade::{self, LabGrade, State};
use crate::manifest;
use crate::workspace::{Lab, Workspace};

/// How often the files are compared even without events.
const POLL: Duration = Duration::from_secs(1);

/// How long to wait after a change before grading: editors often save in
/// several steps (write a temporary file, rename it, touch the directory).
const SETTLE: Duration = Duration::from_millis(200);

/// What woke the loop up.
#[derive(Debug)]
enum Wake {
    /// A file change event (which file does not matter: all are compared).
    Event,
    /// The watcher reported an error: fall back to comparing every second.
    WatchFailed(String),
    /// Enter: grade the current lab now.
    GradeNow,
    /// `q` and Enter.
    Quit,
}

/// Size and modification time of every file of a lab, by path.
type Fingerprint = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

/// Runs `cargo workbook watch [LAB] [--poll]`.
pub fn run(ws: &Workspace, query: Option<&str>, poll: bool) -> Result<ExitCode> {
    let labs = ws.select(query)?;
    if labs.is_empty() {
        bail!("there are no labs in labs/ to watch");
    }
    let (tx, rx) = mpsc::channel();
    read_keys(tx.clone());
    let mut events = false;
    if !poll {
        match start_watcher(ws, &labs, tx.clone()) {
            Ok(()) => events = true,
            Err(err) => eprintln!(
                "workbook: no file change events ({err}); comparing the files every second instead"
            ),
        }
    }
    let mut seen: Vec<Fingerprint> = labs.iter().map(|lab| fingerprint(ws, lab)).collect();
    let grades = grade::grade_all(ws, &labs)?;
    let mut current = grades
        .iter()
        .position(|g| g.state != State::Done)
        .unwrap_or(0);
    show(ws, &grades, None);
    footer(&labs, current, events);
    loop {
        let first = match rx.recv_timeout(POLL) {
            Ok(wake) => Some(wake),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if matches!(first, Some(Wake::Event)) {
            std::thread::sleep(SETTLE);
        }
        // Everything that queued up meanwhile counts as one wake-up.
        let wakes: Vec<Wake> = first.into_iter().chain(rx.try_iter()).collect();
        if wakes.iter().any(|w| matches!(w, Wake::Quit)) {
            break;
        }
        for wake in &wakes {
            if let Wake::WatchFailed(err) = wake
                && std::mem::take(&mut events)
            {
                eprintln!(
                    "workbook: file change events stopped ({err}); comparing the files \
                     every second instead"
                );
            }
        }
        let mut changed: Vec<(usize, Option<PathBuf>)> = Vec::new();
        for (index, lab) in labs.iter().enumerate() {
            let now = fingerprint(ws, lab);
            if let Some(path) = first_difference(&seen[index], &now) {
                changed.push((index, Some(path)));
                seen[index] = now;
            }
        }
        let by_hand = wakes.iter().any(|w| matches!(w, Wake::GradeNow));
        if by_hand && !changed.iter().any(|(index, _)| *index == current) {
            changed.push((current, None));
        }
        let Some((last, _)) = changed.last() else {
            continue;
        };
        current = *last;
        let which: Vec<&Lab> = changed.iter().map(|(index, _)| labs[*index]).collect();
        let grades = grade::grade_all(ws, &which)?;
        let path = changed.iter().find_map(|(_, path)| path.as_deref());
        show(ws, &grades, path);
        footer(&labs, current, events);
    }
    println!("Stopped watching.");
    Ok(ExitCode::SUCCESS)
}

/// Reads the keyboard on its own thread: an empty line grades again, `q`
/// quits. At end of input (no terminal) it stops reading and the watch
/// goes on until Ctrl-C.
fn read_keys(tx: Sender<Wake>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            let wake = match line.trim() {
                "q" | "quit" | "exit" => Wake::Quit,
                _ => Wake::GradeNow,
            };
            let quit = matches!(wake, Wake::Quit);
            if tx.send(wake).is_err() || quit {
                return;
            }
        }
    });
}

/// Watches every lab directory for changes; each batch of events wakes
/// the loop.
#[cfg(target_os = "linux")]
fn start_watcher(ws: &Workspace, labs: &[&Lab], tx: Sender<Wake>) -> std::io::Result<()> {
    let dirs: Vec<PathBuf> = labs.iter().map(|lab| ws.lab_dir(lab)).collect();
    crate::inotify::watch(&dirs, move |event| {
        let wake = match event {
            Ok(()) => Wake::Event,
            Err(err) => Wake::WatchFailed(err),
        };
        // The loop may have ended: nobody to wake then.
        tx.send(wake).is_ok()
    })
}

/// Without inotify, the files are compared every second.
#[cfg(not(target_os = "linux"))]
fn start_watcher(_: &Workspace, _: &[&Lab], _: Sender<Wake>) -> std::io::Result<()> {
    Err(std::io::Error::other("inotify is Linux's"))
}

/// The size and modification time of every file of `lab` (build output,
/// hidden files and editor backups left out).
fn fingerprint(ws: &Workspace, lab: &Lab) -> Fingerprint {
    let mut files = Fingerprint::new();
    walk(&ws.lab_dir(lab), &mut files);
    files
}

fn walk(dir: &Path, files: &mut Fingerprint) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if manifest::is_ignored(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            walk(&entry.path(), files);
        } else {
            files.insert(entry.path(), (meta.len(), meta.modified().ok()));
        }
    }
}

/// The first file that differs between two fingerprints (changed, added
/// or removed), if any.
fn first_difference(before: &Fingerprint, now: &Fingerprint) -> Option<PathBuf> {
    for (path, stamp) in now {
        if before.get(path) != Some(stamp) {
            return Some(path.clone());
        }
    }
    before.keys().find(|path| !now.contains_key(*path)).cloned()
}

/// Prints a round of grades: on a terminal the screen is cleared first, so
/// the latest scoreboard is all there is to read.
fn show(ws: &Workspace, grades: &[LabGrade], changed: Option<&Path>) {
    let mut out = String::new();
    if std::io::stdout().is_terminal() {
        out.push_str("\x1b[2J\x1b[H");
    }
    if let Some(path) = changed {
        out.push_str(&format!("{} changed.\n\n", ws.relative(path).display()));
    }
    if let Some(warning) = manifest::tamper_check(ws).warning() {
        out.push_str(&format!("{warning}\n\n"));
    }
    out.push_str(&grade::scoreboard(grades));
    print!("{out}");
}

/// What the watch is doing and which keys do what.
fn footer(labs: &[&Lab], current: usize, events: bool) {
    let watching = match labs {
        [lab] => format!("labs/{}", lab.name),
        _ => format!("{} labs", labs.len()),
    };
    let how = if events {
        "file change events"
    } else {
        "comparing every second"
    };
    println!(
        "\nWatching {watching} ({how}). Save a file to grade again; Enter grades {} now; \
         q and Enter (or Ctrl-C) quits.",
        labs[current].name
    );
    // A failed flush only delays the footer.
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64) -> (u64, Option<SystemTime>) {
        (len, Some(SystemTime::UNIX_EPOCH))
    }

    #[test]
    fn changed_added_and_removed_files_are_differences() {
        let before: Fingerprint = [
            (PathBuf::from("a"), stamp(1)),
            (PathBuf::from("b"), stamp(1)),
        ]
        .into();
        assert_eq!(first_difference(&before, &before.clone()), None);
        let mut changed = before.clone();
        changed.insert(PathBuf::from("b"), stamp(2));
        assert_eq!(
            first_difference(&before, &changed),
            Some(PathBuf::from("b"))
        );
        let mut added = before.clone();
        added.insert(PathBuf::from("c"), stamp(1));
        assert_eq!(first_difference(&before, &added), Some(PathBuf::from("c")));
        let mut removed = before.clone();
        removed.remove(Path::new("a"));
        assert_eq!(
            first_difference(&before, &removed),
            Some(PathBuf::from("a"))
        );
    }
}
