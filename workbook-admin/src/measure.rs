//! `cargo workbook measure [LAB]`: how long a student waits, in every lab.
//!
//! For each lab it measures, on this machine:
//!
//! * **cold build**: `cargo test --no-run` in the lab on a fresh checkout
//!   (an empty target directory of its own), everything the student's first
//!   `cargo test` compiles before the suite starts;
//! * **edit → result, stub**: after a one-line edit of `src/lib.rs` (a new
//!   `const` at its end, a different one each time), `cargo test` in the lab
//!   until it has printed the suite's result: the median of 5, with the part
//!   cargo spent building (its `Finished … in` line);
//! * **edit → result, solved**: the same with the solution's `src/lib.rs`
//!   in the lab (its `#[path]` to the lab's given modules dropped, so that
//!   the lab's own `cli.rs` serves): the lab as a student who finished it
//!   has it;
//! * **suite run**: the solved lab's suite alone (its test executable, run
//!   directly), the median of 5;
//! * **rebuilt by an edit**: which of the lab's targets cargo compiled again
//!   after the edit (the program alone, since labs are programs only; the
//!   suite should never be among them).
//!
//! Everything happens in copies of the labs under
//! `<target-dir>/workbook-measure/`, never in the checkout. It is a
//! measurement, not a test: the figures depend on the machine and its load
//! (shown with the table), and nothing fails when they are high.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use workbook::process;
use workbook::workspace::{Lab, Workspace};

/// How many times each incremental figure is taken (the median is shown).
const SAMPLES: usize = 5;

/// The course's goals (issue 10): stub and solved edit → result, suite run.
const GOAL_STUB: f64 = 1.0;
const GOAL_SOLVED: f64 = 1.5;
const GOAL_SUITE: f64 = 1.0;

/// One lab's figures, in seconds.
#[derive(Debug, Default)]
struct Figures {
    cold: Option<f64>,
    stub: Option<Loop>,
    solved: Option<Loop>,
    suite: Option<f64>,
    rebuilt: Vec<String>,
    problems: Vec<String>,
}

/// Edit → result, median over the samples.
#[derive(Debug, Clone, Copy)]
struct Loop {
    total: f64,
    build: f64,
}

/// Runs `cargo workbook measure [LAB] [--no-cold]`.
pub fn command(ws: &Workspace, query: Option<&str>, cold: bool) -> Result<ExitCode> {
    if !ws.has_solutions() {
        bail!("measure needs the solutions/ of the course repository");
    }
    let labs = ws.select(query)?;
    let scratch = ws.target_dir()?.join("workbook-measure");
    set_up(ws, &scratch, &labs)?;
    let load = load_average();
    eprintln!(
        "measuring {} on this machine (load average {load}) …",
        plural(labs.len(), "lab")
    );
    let mut rows = Vec::new();
    for lab in &labs {
        eprintln!("  {} …", lab.name);
        let figures = measure_lab(ws, &scratch, lab, cold);
        rows.push((lab.name.clone(), figures));
    }
    let _ = fs::remove_dir_all(scratch.join("cold-target"));
    print!("{}", table(&rows, cold));
    println!(
        "\nMedians of {SAMPLES}; goals: edit → result ≤ {GOAL_STUB} s on a stub and ≤ {GOAL_SOLVED} s \
         solved, suite run ≤ {GOAL_SUITE} s (! marks a figure over its goal). Load average \
         before: {load}, after: {}.",
        load_average()
    );
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|(lab, f)| f.problems.iter().map(move |p| format!("{lab}: {p}")))
        .collect();
    for problem in &problems {
        println!("problem: {problem}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The scratch workspace: copies of the labs in `labs/` (where the suites
/// look for a lab's files, e.g. lab 05's C client), beside links to the
/// checkout's `tests/` and `.config/`.
fn set_up(ws: &Workspace, scratch: &Path, labs: &[&Lab]) -> Result<()> {
    fs::create_dir_all(scratch.join("labs"))
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    for name in ["tests", ".config"] {
        let link = scratch.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(ws.root.join(name), &link)
            .with_context(|| format!("cannot link {}", link.display()))?;
    }
    let members: Vec<String> = labs
        .iter()
        .map(|lab| format!("labs/{}", lab.name))
        .collect();
    let manifest = crate::mistakes::runner::scratch_manifest(
        &fs::read_to_string(ws.root.join("Cargo.toml")).context("cannot read Cargo.toml")?,
        &members,
    )?;
    fs::write(scratch.join("Cargo.toml"), manifest)
        .context("cannot write the scratch Cargo.toml")?;
    if let Ok(lock) = fs::read_to_string(ws.root.join("Cargo.lock")) {
        fs::write(scratch.join("Cargo.lock"), lock).context("cannot write Cargo.lock")?;
    }
    for lab in labs {
        let copy = scratch.join("labs").join(&lab.name);
        let _ = fs::remove_dir_all(&copy);
        crate::mistakes::runner::copy_crate(&ws.lab_dir(lab), &copy)?;
    }
    Ok(())
}

/// Every figure of one lab; what went wrong is kept in `problems`.
fn measure_lab(ws: &Workspace, scratch: &Path, lab: &Lab, cold: bool) -> Figures {
    let mut figures = Figures::default();
    let dir = scratch.join("labs").join(&lab.name);
    let lib = dir.join("src/lib.rs");
    let stub = match fs::read_to_string(&lib) {
        Ok(text) => text,
        Err(err) => {
            figures
                .problems
                .push(format!("cannot read the lab's src/lib.rs: {err}"));
            return figures;
        }
    };
    if cold {
        let target = scratch.join("cold-target");
        let _ = fs::remove_dir_all(&target);
        match cargo_test(&dir, &target, true) {
            Ok(run) => figures.cold = Some(run.wall),
            Err(err) => figures.problems.push(format!("cold build: {err:#}")),
        }
        let _ = fs::remove_dir_all(&target);
    }
    let target = scratch.join("target");
    match edit_loop(&dir, &target, &lib, &stub) {
        Ok((figure, rebuilt)) => {
            figures.stub = Some(figure);
            figures.rebuilt = rebuilt;
        }
        Err(err) => figures.problems.push(format!("stub: {err:#}")),
    }
    let solved = fs::read_to_string(ws.solution_dir(lab).join("src/lib.rs"))
        .map(|text| as_lab_source(&text, lab));
    match solved {
        Ok(solved) => {
            match edit_loop(&dir, &target, &lib, &solved) {
                Ok((figure, _)) => figures.solved = Some(figure),
                Err(err) => figures.problems.push(format!("solved: {err:#}")),
            }
            match suite_run(&dir, &target, lab) {
                Ok(seconds) => figures.suite = Some(seconds),
                Err(err) => figures.problems.push(format!("suite run: {err:#}")),
            }
        }
        Err(err) => figures
            .problems
            .push(format!("cannot read the solution: {err}")),
    }
    if let Err(err) = fs::write(&lib, &stub) {
        figures
            .problems
            .push(format!("cannot put the stub back: {err}"));
    }
    figures
}

/// The solution's `src/lib.rs` as the lab's: the `#[path]` attributes that
/// include the lab's given modules from the solution crate are dropped.
fn as_lab_source(solution: &str, lab: &Lab) -> String {
    let prefix = format!("#[path = \"../../../labs/{}/src/", lab.name);
    let mut out = String::with_capacity(solution.len());
    for line in solution.lines() {
        if line.trim_start().starts_with(&prefix) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Puts `source` in the lab, builds and runs once, then times `SAMPLES`
/// one-line edits, each followed by `cargo test`. Returns the medians and
/// the targets the first edit rebuilt.
fn edit_loop(dir: &Path, target: &Path, lib: &Path, source: &str) -> Result<(Loop, Vec<String>)> {
    fs::write(lib, source).with_context(|| format!("cannot write {}", lib.display()))?;
    cargo_test(dir, target, false)?;
    let mut totals = Vec::new();
    let mut builds = Vec::new();
    let mut rebuilt = Vec::new();
    for sample in 0..SAMPLES {
        let edited = format!("{source}\nconst _EDIT: u32 = {};\n", sample + 1);
        fs::write(lib, edited).with_context(|| format!("cannot write {}", lib.display()))?;
        let run = cargo_test(dir, target, false)?;
        totals.push(run.wall);
        builds.push(run.build.unwrap_or(run.wall));
        if sample == 0 {
            rebuilt = run.rebuilt;
        }
    }
    Ok((
        Loop {
            total: median(&mut totals),
            build: median(&mut builds),
        },
        rebuilt,
    ))
}

/// What one `cargo test` did.
struct CargoRun {
    wall: f64,
    /// Seconds cargo reports in its `Finished … in X` line.
    build: Option<f64>,
    /// The targets it compiled (`bin pipes`, `test pipes` …).
    rebuilt: Vec<String>,
}

/// `cargo test` (or `--no-run`) in the lab `dir`, as a student runs it,
/// with `target` as the target directory. A failing suite is expected (a
/// stub fails); a build that fails is an error.
fn cargo_test(dir: &Path, target: &Path, no_run: bool) -> Result<CargoRun> {
    let mut cmd = process::cargo(dir);
    cmd.arg("test")
        .args(["--message-format", "json-diagnostic-short"])
        .env("CARGO_TARGET_DIR", target)
        .env("INSTA_UPDATE", "no")
        .env_remove("INSTA_FORCE_PASS")
        .stdin(Stdio::null());
    if no_run {
        cmd.arg("--no-run");
    }
    let started = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", process::describe(&cmd)))?;
    let wall = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut rebuilt = Vec::new();
    let mut built = false;
    for line in stdout.lines().filter(|l| l.starts_with("{\"reason\"")) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["fresh"] == false
            && message["manifest_path"]
                .as_str()
                .is_some_and(|p| Path::new(p).starts_with(dir))
        {
            let kind = message["target"]["kind"][0].as_str().unwrap_or("?");
            let name = message["target"]["name"].as_str().unwrap_or("?");
            rebuilt.push(format!("{kind} {name}"));
        }
        if message["reason"] == "build-finished" {
            built = message["success"] == true;
        }
    }
    if !built {
        let error = workbook::libtest::first_compile_error(&stdout)
            .or_else(|| workbook::libtest::first_compile_error(&stderr))
            .unwrap_or_else(|| "cargo test failed to build".to_string());
        bail!("{error}");
    }
    let build = stderr.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("Finished ")?;
        let seconds = rest.rsplit_once(" in ")?.1.trim_end_matches('s');
        seconds.parse().ok()
    });
    Ok(CargoRun {
        wall,
        build,
        rebuilt,
    })
}

/// The solved suite's own run: its test executable, run directly, the
/// median of `SAMPLES` runs.
fn suite_run(dir: &Path, target: &Path, lab: &Lab) -> Result<f64> {
    let executable = suite_executable(dir, target, lab)?;
    let mut times = Vec::new();
    for _ in 0..SAMPLES {
        let mut cmd = Command::new(&executable);
        cmd.current_dir(dir).stdin(Stdio::null());
        process::grading_env(&mut cmd);
        let started = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {}", executable.display()))?;
        times.push(started.elapsed().as_secs_f64());
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let failed: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
                .collect();
            bail!("the solved lab fails its suite: {}", failed.join(", "));
        }
    }
    Ok(median(&mut times))
}

/// The suite's test executable in `target`.
fn suite_executable(dir: &Path, target: &Path, lab: &Lab) -> Result<PathBuf> {
    let mut cmd = process::cargo(dir);
    cmd.args(["test", "--no-run", "--test", lab.test_target()])
        .args(["--message-format", "json"])
        .env("CARGO_TARGET_DIR", target);
    let out = process::capture(&mut cmd)?;
    out.stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|m| {
            let test = m["reason"] == "compiler-artifact" && m["target"]["kind"][0] == "test";
            test.then(|| m["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
        .context("cargo did not name the suite's executable")
}

/// The median of `values` (sorted in place); 0 when empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// `/proc/loadavg`'s first three figures.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// `1 lab`, `7 labs`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The table, one row per lab.
fn table(rows: &[(String, Figures)], cold: bool) -> String {
    let mut out = String::from(
        "| lab | cold build | edit → result, stub (build) | edit → result, solved (build) | suite run, solved | rebuilt by an edit |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
    let seconds = |value: Option<f64>, goal: Option<f64>| match value {
        None => "–".to_string(),
        Some(v) => {
            let over = goal.is_some_and(|g| v > g);
            format!("{v:.2} s{}", if over { " !" } else { "" })
        }
    };
    let edit = |figure: Option<Loop>, goal: f64| match figure {
        None => "–".to_string(),
        Some(l) => format!("{} ({:.2} s)", seconds(Some(l.total), Some(goal)), l.build),
    };
    for (lab, f) in rows {
        let cold_cell = if cold {
            f.cold.map_or("–".to_string(), |v| format!("{v:.1} s"))
        } else {
            "not measured".to_string()
        };
        let rebuilt = if f.rebuilt.is_empty() {
            "–".to_string()
        } else {
            f.rebuilt.join(", ")
        };
        out.push_str(&format!(
            "| {lab} | {cold_cell} | {} | {} | {} | {rebuilt} |\n",
            edit(f.stub, GOAL_STUB),
            edit(f.solved, GOAL_SOLVED),
            seconds(f.suite, Some(GOAL_SUITE)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solution_serves_as_the_lab_without_its_paths() {
        let lab = Lab::from_dir_name("02-pipes").expect("a lab");
        let solution = "use std::io;\n\n#[path = \"../../../labs/02-pipes/src/cli.rs\"]\npub mod cli;\n\
                        #[path = \"../../../labs/02-pipes/src/sysv.rs\"]\npub mod sysv;\nfn f() {}\n";
        assert_eq!(
            as_lab_source(solution, &lab),
            "use std::io;\n\npub mod cli;\npub mod sysv;\nfn f() {}\n"
        );
    }

    #[test]
    fn medians_and_the_table() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 5.0, 4.0]), 3.0);
        let figures = Figures {
            cold: Some(61.23),
            stub: Some(Loop {
                total: 0.8,
                build: 0.5,
            }),
            solved: Some(Loop {
                total: 1.6,
                build: 0.6,
            }),
            suite: Some(0.9),
            rebuilt: vec!["bin pipes".to_string()],
            problems: Vec::new(),
        };
        let text = table(&[("02-pipes".to_string(), figures)], true);
        assert!(
            text.contains(
                "| 02-pipes | 61.2 s | 0.80 s (0.50 s) | 1.60 s ! (0.60 s) | 0.90 s | bin pipes |"
            ),
            "{text}"
        );
    }
}
