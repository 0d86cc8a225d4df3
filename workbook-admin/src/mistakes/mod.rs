//! `cargo workbook mistakes [LAB] [--run] [--write]`, and the `mistakes`
//! step of `verify`: every lab's catalogue of classic mistakes, proved to
//! be caught by its suite, and quoted in the book from real runs.
//!
//! For each lab with a catalogue (`solutions/NN-topic/mistakes.toml`, see
//! [`catalogue`]), the step
//!
//! * checks the catalogue: names, edits that apply (each `find` exactly
//!   once), `pitfall`s that name a bullet of the chapter's Pitfalls,
//!   includes in the chapter of mistakes that exist;
//! * checks that it is complete: at least [`catalogue::MIN_MISTAKES`]
//!   mistakes, every Pitfalls bullet illustrated by one, and the Pitfalls
//!   section quoting the grader only through the quote files;
//! * applies each mistake to a scratch copy of the solution, runs the tests
//!   it names [`REPEAT`] times at once, and fails unless every run of every
//!   one fails with the expected phrase, in time, leaving nothing behind
//!   (see [`runner`]);
//! * compares each mistake's quote file (`book/src/mistakes/NN-topic/
//!   NAME.txt`) with what the runs said; `--write` rewrites them.
//!
//! Labs listed in `workbook-admin/mistakes-pending.toml` have catalogues
//! still being written: what keeps them from being complete is reported as
//! a note, not a failure (every mistake they have is still run). A listed
//! lab whose catalogue is complete fails the step until it leaves the list.

pub mod catalogue;
pub mod leftovers;
pub mod runner;

use std::collections::BTreeSet;
use std::fs;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Deserialize;
use workbook::process::Status;
use workbook::workspace::{Lab, Workspace};

use crate::guide;
use catalogue::Catalogue;
use runner::{Checked, Job, Runner};

/// How many times each mistake's tests run in `verify`.
pub const REPEAT: usize = 5;

/// Labs whose catalogues are still being written.
const PENDING: &str = "workbook-admin/mistakes-pending.toml";

/// How `mistakes` runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Run the mistakes (not only list them).
    pub run: bool,
    /// Rewrite the quote files (and the grading guide's examples).
    pub write: bool,
    /// Runs of each mistake's tests.
    pub repeat: usize,
}

/// What a check of the catalogues found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Failures, each naming the lab or mistake.
    pub problems: Vec<String>,
    /// Remarks that do not fail the check (pending catalogues, figures).
    pub notes: Vec<String>,
}

/// The catalogues of `labs`, with what is wrong with their form.
struct Study {
    catalogues: Vec<Catalogue>,
    jobs: Vec<Job>,
    findings: Findings,
}

/// `workbook-admin/mistakes-pending.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    #[serde(default)]
    labs: Vec<String>,
}

/// Reads the pending list (empty when the file is missing).
fn pending(ws: &Workspace) -> Result<BTreeSet<String>> {
    let path = ws.root.join(PENDING);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let pending: Pending =
                toml::from_str(&text).with_context(|| format!("{PENDING} is not valid"))?;
            Ok(pending.labs.into_iter().collect())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(err) => Err(err).with_context(|| format!("cannot read {PENDING}")),
    }
}

/// Loads and checks the catalogues of `labs` without building anything.
fn study(ws: &Workspace, labs: &[&Lab]) -> Result<Study> {
    let pending = pending(ws)?;
    let mut study = Study {
        catalogues: Vec::new(),
        jobs: Vec::new(),
        findings: Findings::default(),
    };
    for name in &pending {
        if !ws.labs.iter().any(|lab| &lab.name == name) {
            study
                .findings
                .problems
                .push(format!("{PENDING}: there is no lab {name}"));
        }
    }
    for lab in labs {
        let catalogue = match catalogue::load(ws, lab) {
            Ok(catalogue) => catalogue,
            Err(err) => {
                study.findings.problems.push(format!("{err:#}"));
                continue;
            }
        };
        let mut broken = BTreeSet::new();
        if let Some(catalogue) = &catalogue {
            for problem in catalogue
                .check_form(ws)
                .into_iter()
                .chain(catalogue::references(ws, catalogue))
            {
                if let Some(name) = problem
                    .strip_prefix(&format!("{}/", lab.name))
                    .and_then(|rest| rest.split(':').next())
                {
                    broken.insert(name.to_string());
                }
                study.findings.problems.push(problem);
            }
        }
        study
            .findings
            .problems
            .extend(orphan_quotes(ws, lab, catalogue.as_ref()));
        let incomplete = catalogue::completeness(ws, lab, catalogue.as_ref());
        if pending.contains(&lab.name) {
            if incomplete.is_empty() {
                study.findings.problems.push(format!(
                    "{}: its catalogue is complete now: take it off {PENDING}",
                    lab.name
                ));
            } else {
                study.findings.notes.push(format!(
                    "{}: catalogue still being written ({PENDING}): {}",
                    lab.name,
                    incomplete.summary()
                ));
            }
        } else {
            study.findings.problems.extend(incomplete.problems);
        }
        if let Some(catalogue) = catalogue {
            for mistake in &catalogue.mistakes {
                if !broken.contains(&mistake.name) {
                    study.jobs.push(Job {
                        lab: (*lab).clone(),
                        mistake: mistake.clone(),
                    });
                }
            }
            study.catalogues.push(catalogue);
        }
    }
    Ok(study)
}

/// Quote files of mistakes the catalogue does not have.
fn orphan_quotes(ws: &Workspace, lab: &Lab, catalogue: Option<&Catalogue>) -> Vec<String> {
    let dir = catalogue::quote_dir(ws, lab);
    let names: BTreeSet<&str> = catalogue
        .map(|c| c.mistakes.iter().map(|m| m.name.as_str()).collect())
        .unwrap_or_default();
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let known = file
            .strip_suffix(".txt")
            .is_some_and(|name| names.contains(name));
        if !known {
            found.push(format!(
                "{}: no mistake of the catalogue has this quote (remove it)",
                ws.relative(&entry.path()).display()
            ));
        }
    }
    found
}

/// Hears of each verdict as it comes: the verdict, how many are done, how
/// many there are, and the problems found with it.
type OnVerdict<'f> = &'f mut dyn FnMut(&Checked, usize, usize, &[String]);

/// Runs the jobs and judges them, quotes included; `write` rewrites the
/// quote files.
fn run_jobs<'a>(
    ws: &'a Workspace,
    jobs: &[Job],
    options: Options,
    on_verdict: OnVerdict<'_>,
) -> Result<(Vec<Checked>, Findings, Runner<'a>)> {
    let runner = Runner::new(ws, jobs, options.repeat)?;
    let mut findings = Findings::default();
    let total = jobs.len();
    let mut recheck = Vec::new();
    let (checked, strays) = runner.run_all(jobs, &mut |verdict, done| {
        let mut problems: Vec<String> = verdict
            .problems
            .iter()
            .map(|p| format!("{}: {p}", verdict.who()))
            .collect();
        if verdict.problems.is_empty() {
            match quote_problem(ws, verdict, &verdict.quote_texts(), options.write) {
                // A quote the runs did not give may still be one the test
                // gives at times: looked at again with more runs, below.
                Ok(Some(QuoteProblem::Stale(_))) => recheck.push(done - 1),
                Ok(Some(problem)) => problems.push(problem.to_string()),
                Ok(None) => {}
                Err(err) => problems.push(format!("{}: {err:#}", verdict.who())),
            }
        }
        on_verdict(verdict, done, total, &problems);
        findings.problems.extend(problems);
    });
    for index in recheck {
        let verdict = &checked[index];
        let mut quotes = verdict.quote_texts();
        match runner.more_quotes(&verdict.job, RECHECK) {
            Ok(more) => quotes.extend(more),
            Err(err) => findings
                .problems
                .push(format!("{}: {err:#}", verdict.who())),
        }
        match quote_problem(ws, verdict, &quotes, false) {
            Ok(Some(problem)) => findings.problems.push(problem.to_string()),
            Ok(None) => {}
            Err(err) => findings
                .problems
                .push(format!("{}: {err:#}", verdict.who())),
        }
    }
    findings.problems.extend(strays);
    Ok((checked, findings, runner))
}

/// More runs of a mistake whose quote the first runs did not give.
const RECHECK: usize = 10;

/// What is wrong with a quote file.
enum QuoteProblem {
    /// The runs gave no message to quote, or the file is missing.
    Other(String),
    /// The file says something the runs did not.
    Stale(String),
}

impl std::fmt::Display for QuoteProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuoteProblem::Other(text) | QuoteProblem::Stale(text) => f.write_str(text),
        }
    }
}

/// Compares (or, with `write`, rewrites) a caught mistake's quote file
/// with `quotes`, what its runs said.
fn quote_problem(
    ws: &Workspace,
    verdict: &Checked,
    quotes: &[String],
    write: bool,
) -> Result<Option<QuoteProblem>> {
    let path = catalogue::quote_path(ws, &verdict.job.lab, &verdict.job.mistake.name);
    let shown = ws.relative(&path).display().to_string();
    let Some(best) = runner::most_frequent(quotes) else {
        return Ok(Some(QuoteProblem::Other(format!(
            "{}: the runs gave no failure message to quote",
            verdict.who()
        ))));
    };
    let current = fs::read_to_string(&path).ok();
    let fresh = current
        .as_deref()
        .is_some_and(|text| runner::quote_is_fresh(text.trim_end_matches('\n'), quotes));
    if fresh {
        return Ok(None);
    }
    if write {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fs::write(&path, format!("{best}\n")).with_context(|| format!("cannot write {shown}"))?;
        return Ok(None);
    }
    let refresh = format!("cargo workbook mistakes {} --write", verdict.job.lab.number);
    Ok(Some(match current {
        None => QuoteProblem::Other(format!("{shown}: missing (write it with `{refresh}`)")),
        Some(_) => QuoteProblem::Stale(format!(
            "{shown}: stale: in {} runs the grader never said it; it says:\n{}\n  (refresh it with \
             `{refresh}`)",
            quotes.len(),
            best.lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }))
}

/// Runs `cargo workbook mistakes [LAB] [--run] [--write] [--repeat N]`.
pub fn command(ws: &Workspace, query: Option<&str>, options: Options) -> Result<ExitCode> {
    let labs = ws.select(query)?;
    let study = study(ws, &labs)?;
    if !options.run && !options.write {
        print!("{}", listing(ws, &study.catalogues, &labs));
        return Ok(finish(&study.findings));
    }
    let started = Instant::now();
    let (checked, run_findings, runner) = run_jobs(
        ws,
        &study.jobs,
        options,
        &mut |verdict, done, total, problems| {
            let mark = if problems.is_empty() {
                "[ok]  "
            } else {
                "[FAIL]"
            };
            println!(
                "{mark} {} ({done}/{total}): {}",
                verdict.who(),
                summary(verdict)
            );
            for problem in problems {
                for line in problem.lines() {
                    println!("       {line}");
                }
            }
        },
    )?;
    let wall = started.elapsed().as_secs_f64();
    let mut findings = study.findings;
    findings.problems.extend(run_findings.problems);
    let started = Instant::now();
    if query.is_none() || labs.iter().any(|lab| lab.name == guide::EXAMPLE_LAB) {
        match guide::refresh(ws, &runner, &study.catalogues, options.write) {
            Ok(problems) => findings.problems.extend(problems),
            Err(err) => findings.problems.push(format!("{err:#}")),
        }
    }
    let guide = started.elapsed().as_secs_f64();
    findings
        .notes
        .push(figures(&checked, wall, guide, options.repeat));
    Ok(finish(&findings))
}

/// Prints the problems and notes after a command; its exit status.
fn finish(findings: &Findings) -> ExitCode {
    for note in &findings.notes {
        println!("note: {note}");
    }
    if findings.problems.is_empty() {
        return ExitCode::SUCCESS;
    }
    println!("\n{} problems:", findings.problems.len());
    for problem in &findings.problems {
        let mut lines = problem.lines();
        println!("  - {}", lines.next().unwrap_or(""));
        for line in lines {
            println!("    {line}");
        }
    }
    ExitCode::FAILURE
}

/// One mistake's result in a line: `2 tests × 5 runs failed with "…" (build
/// 1.2 s, runs 5.1 s)`.
fn summary(verdict: &Checked) -> String {
    let mistake = &verdict.job.mistake;
    if verdict.repetitions.is_empty() {
        return "not run".to_string();
    }
    format!(
        "{} × {} runs, expecting {:?} (build {:.1} s, runs {:.1} s)",
        plural(mistake.tests.len(), "test"),
        verdict.repetitions.len(),
        mistake.expect,
        verdict.build.as_secs_f64(),
        verdict.run.as_secs_f64()
    )
}

/// The figures of a whole run, for the report.
fn figures(checked: &[Checked], wall: f64, guide: f64, repeat: usize) -> String {
    let labs: BTreeSet<&str> = checked.iter().map(|c| c.job.lab.name.as_str()).collect();
    let caught = checked.iter().filter(|c| c.problems.is_empty()).count();
    let processes: usize = checked.iter().map(|c| c.repetitions.len()).sum();
    let test_runs: usize = checked
        .iter()
        .map(|c| c.repetitions.len() * c.job.mistake.tests.len())
        .sum();
    let build: f64 = checked.iter().map(|c| c.build.as_secs_f64()).sum();
    let run: f64 = checked.iter().map(|c| c.run.as_secs_f64()).sum();
    format!(
        "{} in {}, {caught} caught as expected: {test_runs} test runs in {processes} test \
         processes ({repeat} per mistake) in {wall:.1} s (builds {build:.1} s and runs \
         {run:.1} s, partly at the same time); then the grading guide's example run, {guide:.1} s",
        plural(checked.len(), "mistake"),
        plural(labs.len(), "lab")
    )
}

/// `1 test`, `2 tests`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The catalogues for instructors: per mistake, what it gets wrong and
/// which tests catch it.
fn listing(ws: &Workspace, catalogues: &[Catalogue], labs: &[&Lab]) -> String {
    let mut out = String::new();
    for lab in labs {
        let Some(catalogue) = catalogues.iter().find(|c| c.lab.name == lab.name) else {
            out.push_str(&format!(
                "{}: no catalogue ({} is missing)\n\n",
                lab.name,
                ws.relative(&catalogue::path(ws, lab)).display()
            ));
            continue;
        };
        out.push_str(&format!(
            "{}: {} ({})\n",
            lab.name,
            plural(catalogue.mistakes.len(), "mistake"),
            ws.relative(&catalogue::path(ws, lab)).display()
        ));
        for mistake in &catalogue.mistakes {
            out.push_str(&format!("\n  {}\n", mistake.name));
            out.push_str(&format!("      {}\n", mistake.summary.trim()));
            out.push_str(&format!("      caught by: {}\n", mistake.tests.join(", ")));
            out.push_str(&format!("      saying:    {:?}\n", mistake.expect));
            if let Some(pitfall) = &mistake.pitfall {
                out.push_str(&format!("      pitfall:   {pitfall}\n"));
            }
        }
        out.push('\n');
    }
    out.push_str(
        "Run them with `cargo workbook mistakes [LAB] --run`; `--write` also rewrites the \
         quote files in book/src/mistakes/.\n",
    );
    out
}

/// The `mistakes` step of `verify`: every lab, [`REPEAT`] runs each.
pub fn step(ws: &Workspace, status: &Status) -> Result<Findings> {
    let labs: Vec<&Lab> = ws.labs.iter().collect();
    let study = study(ws, &labs)?;
    let started = Instant::now();
    let options = Options {
        run: true,
        write: false,
        repeat: REPEAT,
    };
    let (checked, run_findings, runner) =
        run_jobs(ws, &study.jobs, options, &mut |verdict, done, total, _| {
            status.show(&format!(
                "[..] mistakes: {} ({done}/{total}) …",
                verdict.who()
            ));
        })?;
    let wall = started.elapsed().as_secs_f64();
    let mut findings = study.findings;
    findings.problems.extend(run_findings.problems);
    status.show("[..] mistakes: the grading guide's examples …");
    let started = Instant::now();
    match guide::refresh(ws, &runner, &study.catalogues, false) {
        Ok(problems) => findings.problems.extend(problems),
        Err(err) => findings.problems.push(format!("{err:#}")),
    }
    let guide = started.elapsed().as_secs_f64();
    findings.notes.push(figures(&checked, wall, guide, REPEAT));
    Ok(findings)
}
