//! Applying mistakes to scratch copies of the solutions and running the
//! tests that must catch them.
//!
//! Everything happens under `<target-dir>/workbook-mistakes/`, never in the
//! checkout: a scratch workspace whose members are copies of the solution
//! crates (`mistake/NN-topic/`), beside links to the checkout's `tests/`,
//! `labs/` and `.config/`, so that the copies find their suite, their shared
//! `cli.rs` and insta's settings by the same relative paths. It has one
//! target directory of its own, reused by every mistake and every run: a
//! mistake rebuilds its crate's program, nothing else (the suite runs the
//! program and does not link it).
//!
//! Each mistake's named tests run `repeat` times at once, each time in a
//! test process of its own with a `TMPDIR` of its own. While they run, the
//! next mistake's program is built, when it belongs to another lab (a
//! lab's program is rebuilt in place, so two mistakes of one lab never
//! overlap).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use workbook::libtest::{self, Outcome};
use workbook::process;
use workbook::workspace::{Lab, Workspace};

use super::catalogue::{self, Mistake};
use super::leftovers::{self, Machine, Observed, Suspect};

/// How long one test process may take before it is killed: far more than
/// any suite's own timeouts (a few seconds per program run).
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The grader's seed for the inputs of a test (`tests/grader/src/varied.rs`),
/// fixed for the grading guide's example run.
const EXAMPLE_SEED: (&str, &str) = ("WORKBOOK_SEED", "2025");

/// How many mistakes' runs go on at once. Most of a run's time is spent
/// waiting for a timeout that proves a hang, so two batches share two
/// cores well; more would crowd the tests that do compute.
const BATCHES: usize = 2;

/// One repetition of a mistake's tests: a test process.
struct Run {
    /// The test process, until it has been waited for.
    child: Option<Child>,
    pid: u32,
    /// Its directory (output file, `TMPDIR`), removed once judged.
    dir: PathBuf,
    tmp: PathBuf,
    deadline: Instant,
    killed: bool,
}

impl Run {
    /// Kills the run's process group.
    fn kill(&mut self) {
        if self.child.is_some() {
            // SAFETY: kill(-pgid) with the group the child leads.
            unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
            self.killed = true;
        }
    }

    /// True once the test process has ended (and been waited for); kills
    /// it past its deadline.
    fn poll(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => {
                self.child = None;
                true
            }
            Ok(None) => {
                if Instant::now() >= self.deadline && !self.killed {
                    self.kill();
                }
                false
            }
        }
    }
}

/// The repetitions of one mistake, running at once.
struct Batch {
    /// Its job's index in the order of `run_all`.
    job: usize,
    build: Duration,
    started: Instant,
    /// The machine before the runs, and what was seen during them.
    machine: Machine,
    observed: Observed,
    runs: Vec<Run>,
}

impl Batch {
    /// True once every run has ended.
    fn poll(&mut self) -> bool {
        let mut done = true;
        for run in &mut self.runs {
            done &= run.poll();
        }
        done
    }

    /// The test processes' pids.
    fn pids(&self) -> Vec<u32> {
        self.runs.iter().map(|run| run.pid).collect()
    }
}

/// Looks at the sandboxes and process trees of every batch once.
fn observe(batches: &mut [Batch]) {
    if batches.is_empty() {
        return;
    }
    let parents = leftovers::parents();
    for batch in batches {
        let tmps: Vec<PathBuf> = batch.runs.iter().map(|run| run.tmp.clone()).collect();
        let roots: Vec<i32> = batch.runs.iter().map(|run| run.pid as i32).collect();
        batch.observed.look(&tmps, &roots, &parents);
    }
}

/// One mistake to check.
#[derive(Debug, Clone)]
pub struct Job {
    /// The lab.
    pub lab: Lab,
    /// The mistake.
    pub mistake: Mistake,
}

/// What one repetition of a mistake's tests did.
#[derive(Debug, Clone)]
pub struct Repetition {
    /// The test process's whole output.
    pub output: String,
    /// The quote (see [`quote`]) of the first named test's failure, with
    /// run-specific values masked; `None` if it did not fail.
    pub quote: Option<String>,
    /// Whether it had to be killed.
    pub killed: bool,
}

/// The verdict on one mistake.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The lab and mistake.
    pub job: Job,
    /// Why the suite does not catch it as it must (empty: it does).
    pub problems: Vec<String>,
    /// Each repetition, in order (none when it did not build).
    pub repetitions: Vec<Repetition>,
    /// Time spent building its program.
    pub build: Duration,
    /// Wall time of its repetitions.
    pub run: Duration,
    /// System V objects that may be its runs' leftovers, judged at the end.
    suspects: Vec<Suspect>,
}

impl Checked {
    /// Every repetition's quote.
    pub fn quote_texts(&self) -> Vec<String> {
        self.repetitions
            .iter()
            .filter_map(|r| r.quote.clone())
            .collect()
    }

    /// `02-pipes/parent-keeps-write-end`.
    pub fn who(&self) -> String {
        format!("{}/{}", self.job.lab.name, self.job.mistake.name)
    }
}

/// A built mistake, ready to run.
struct Built {
    /// The suite's test executable.
    executable: PathBuf,
    /// How long the build took.
    took: Duration,
}

/// The scratch workspace and how to run in it.
pub struct Runner<'a> {
    ws: &'a Workspace,
    /// `<target-dir>/workbook-mistakes`.
    scratch: PathBuf,
    repeat: usize,
    /// Per lab: the files of its scratch crate that differ from the
    /// solution, with the solution's text.
    changed: Mutex<HashMap<String, BTreeMap<PathBuf, String>>>,
    /// Per lab: the tests its suite has.
    tests: Mutex<HashMap<String, BTreeSet<String>>>,
    /// The cargo building the next mistake, while it runs.
    building: Arc<Mutex<Option<u32>>>,
    /// Numbers the run directories.
    next_run: Mutex<usize>,
}

impl<'a> Runner<'a> {
    /// Sets up the scratch workspace for the labs of `jobs`.
    pub fn new(ws: &'a Workspace, jobs: &[Job], repeat: usize) -> Result<Runner<'a>> {
        let scratch = ws.target_dir()?.join("workbook-mistakes");
        let runner = Runner {
            ws,
            scratch,
            repeat,
            changed: Mutex::new(HashMap::new()),
            tests: Mutex::new(HashMap::new()),
            building: Arc::new(Mutex::new(None)),
            next_run: Mutex::new(0),
        };
        let labs: Vec<&Lab> = {
            let mut seen = BTreeSet::new();
            jobs.iter()
                .map(|job| &job.lab)
                .filter(|lab| seen.insert(lab.name.clone()))
                .collect()
        };
        runner.set_up(&labs)?;
        leftovers::become_subreaper();
        Ok(runner)
    }

    /// The scratch workspace: manifest, lock file, links, crate copies.
    fn set_up(&self, labs: &[&Lab]) -> Result<()> {
        let root = &self.ws.root;
        fs::create_dir_all(self.scratch.join("mistake"))
            .with_context(|| format!("cannot create {}", self.scratch.display()))?;
        for name in ["tests", "labs", ".config"] {
            let link = self.scratch.join(name);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(root.join(name), &link)
                .with_context(|| format!("cannot link {}", link.display()))?;
        }
        let members: Vec<String> = labs
            .iter()
            .map(|lab| format!("mistake/{}", lab.name))
            .collect();
        let manifest = scratch_manifest(
            &fs::read_to_string(root.join("Cargo.toml")).context("cannot read Cargo.toml")?,
            &members,
        )?;
        write_if_changed(&self.scratch.join("Cargo.toml"), &manifest)?;
        if let Ok(lock) = fs::read_to_string(root.join("Cargo.lock")) {
            write_if_changed(&self.scratch.join("Cargo.lock"), &lock)?;
        }
        for lab in labs {
            let copy = self.crate_dir(lab);
            copy_crate(&self.ws.solution_dir(lab), &copy)?;
        }
        let _ = fs::remove_dir_all(self.scratch.join("runs"));
        Ok(())
    }

    /// `mistake/NN-topic` in the scratch workspace.
    fn crate_dir(&self, lab: &Lab) -> PathBuf {
        self.scratch.join("mistake").join(&lab.name)
    }

    /// Checks every job; `report` hears of each verdict as it comes.
    ///
    /// The jobs are taken one lab after the other in turn. One cargo builds
    /// at a time, the runs of up to [`BATCHES`] mistakes go on at once, and
    /// a lab's crate is never rebuilt while its program runs: so the next
    /// mistakes build while the tests of earlier ones wait for their
    /// timeouts.
    ///
    /// Besides the verdicts, it returns the leftovers found at the end: the
    /// System V objects a mistake's runs may have left that are still
    /// there, and processes no mistake's runs could be charged with.
    pub fn run_all(
        &self,
        jobs: &[Job],
        report: &mut dyn FnMut(&Checked, usize),
    ) -> (Vec<Checked>, Vec<String>) {
        let order = interleave(jobs);
        let mut checked = Vec::with_capacity(order.len());
        let mut started = vec![false; order.len()];
        let mut busy: BTreeSet<&str> = BTreeSet::new();
        let mut ready: Vec<(usize, Result<Built, String>)> = Vec::new();
        let mut batches: Vec<Batch> = Vec::new();
        std::thread::scope(|scope| {
            let mut building = None;
            loop {
                if building.is_none()
                    && let Some(index) = (0..order.len())
                        .find(|i| !started[*i] && !busy.contains(order[*i].lab.name.as_str()))
                {
                    started[index] = true;
                    let job = &order[index];
                    busy.insert(job.lab.name.as_str());
                    building = Some((index, scope.spawn(move || self.prepare(job))));
                }
                if building
                    .as_ref()
                    .is_some_and(|(_, handle)| handle.is_finished())
                    && let Some((index, handle)) = building.take()
                {
                    let built = handle
                        .join()
                        .unwrap_or_else(|_| Err("the build thread panicked".to_string()));
                    ready.push((index, built));
                }
                while batches.len() < BATCHES && !ready.is_empty() {
                    let (index, built) = ready.remove(0);
                    match self.start_batch(index, &order[index], built) {
                        Ok(batch) => batches.push(batch),
                        Err(verdict) => {
                            busy.remove(order[index].lab.name.as_str());
                            report(&verdict, checked.len() + 1);
                            checked.push(*verdict);
                        }
                    }
                }
                observe(&mut batches);
                let mut at = 0;
                while at < batches.len() {
                    if !batches[at].poll() {
                        at += 1;
                        continue;
                    }
                    let batch = batches.remove(at);
                    let others: Vec<u32> = batches.iter().flat_map(Batch::pids).collect();
                    let job = &order[batch.job];
                    let verdict = self.finish_batch(job, batch, &others);
                    busy.remove(job.lab.name.as_str());
                    report(&verdict, checked.len() + 1);
                    checked.push(verdict);
                }
                if checked.len() == order.len() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let _ = fs::remove_dir_all(self.scratch.join("runs"));
        let mut strays = leftovers::unclaimed_orphans(&[]);
        for verdict in &checked {
            for suspect in verdict.suspects.iter().filter(|s| s.still_there()) {
                strays.push(format!(
                    "{}: left behind by its runs (still there after every mistake ran): {}",
                    verdict.who(),
                    suspect.what
                ));
            }
        }
        (checked, strays)
    }

    /// Applies the mistake to the lab's scratch crate and builds it.
    fn prepare(&self, job: &Job) -> Result<Built, String> {
        let started = Instant::now();
        self.apply(job).map_err(|err| format!("{err:#}"))?;
        let executable = self.build(&job.lab)?;
        Ok(Built {
            executable,
            took: started.elapsed(),
        })
    }

    /// Puts the mistake's files in the scratch crate, and the solution's
    /// back where the previous mistake of the lab changed others.
    fn apply(&self, job: &Job) -> Result<()> {
        let solution = self.ws.solution_dir(&job.lab);
        let files = catalogue::apply(&solution, &job.mistake)?;
        let dir = self.crate_dir(&job.lab);
        let mut changed = self.changed.lock().expect("not poisoned");
        let lab_changed = changed.entry(job.lab.name.clone()).or_default();
        let now: BTreeSet<&PathBuf> = files.iter().map(|(path, _)| path).collect();
        for (path, original) in lab_changed.iter() {
            if !now.contains(path) {
                write_if_changed(&dir.join(path), original)?;
            }
        }
        lab_changed.retain(|path, _| now.contains(path));
        for (path, text) in &files {
            if !lab_changed.contains_key(path) {
                let original = fs::read_to_string(solution.join(path))
                    .with_context(|| format!("cannot read {}", path.display()))?;
                lab_changed.insert(path.clone(), original);
            }
            write_if_changed(&dir.join(path), text)?;
        }
        Ok(())
    }

    /// `cargo test --no-run` of the lab's scratch crate: the suite's
    /// executable, or the first compiler error.
    fn build(&self, lab: &Lab) -> Result<PathBuf, String> {
        let package = lab.solution_package();
        let mut cmd = process::cargo(&self.scratch);
        cmd.args(["test", "--no-run", "--package", &package, "--test"])
            .arg(lab.test_target())
            .args(["--message-format", "json-render-diagnostics"])
            .env("CARGO_TARGET_DIR", self.scratch.join("target"))
            // A mistake may well leave an unused variable behind: that is
            // a warning, and must not stop the build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = {
            // Spawned and recorded at once, so that the search for stray
            // processes never takes this cargo for one.
            let mut building = self.building.lock().expect("not poisoned");
            let child = cmd
                .spawn()
                .map_err(|err| format!("cannot run cargo: {err}"))?;
            *building = Some(child.id());
            child
        };
        let output = child.wait_with_output();
        *self.building.lock().expect("not poisoned") = None;
        let output = output.map_err(|err| format!("cannot run cargo: {err}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let executable = stdout.lines().find_map(|line| {
            let message: serde_json::Value = serde_json::from_str(line).ok()?;
            let is_test = message["reason"] == "compiler-artifact"
                && message["target"]["name"] == lab.test_target()
                && message["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "test"));
            is_test
                .then(|| message["executable"].as_str().map(PathBuf::from))
                .flatten()
        });
        match executable {
            Some(path) if output.status.success() => Ok(path),
            _ => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let error = libtest::first_compile_error(&stderr).unwrap_or_else(|| {
                    stderr
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("cargo failed without saying why")
                        .to_string()
                });
                // Name the solution's file, not the scratch copy's.
                let error = error.replace(
                    &format!("mistake/{}/", lab.name),
                    &format!("solutions/{}/", lab.name),
                );
                Err(format!(
                    "does not compile: {error} (with the mistake applied)"
                ))
            }
        }
    }

    /// The tests of a lab's suite, from its executable (`--list`).
    fn suite_tests(&self, lab: &Lab, executable: &Path) -> Result<BTreeSet<String>, String> {
        if let Some(tests) = self.tests.lock().expect("not poisoned").get(&lab.name) {
            return Ok(tests.clone());
        }
        let output = Command::new(executable)
            .args(["--list", "--format", "terse"])
            .current_dir(self.crate_dir(lab))
            .output()
            .map_err(|err| format!("cannot list the tests of the suite: {err}"))?;
        let tests: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.strip_suffix(": test"))
            .map(str::to_string)
            .collect();
        self.tests
            .lock()
            .expect("not poisoned")
            .insert(lab.name.clone(), tests.clone());
        Ok(tests)
    }

    /// Starts the mistake's repetitions, or gives the verdict at once when
    /// it did not build or names a test the suite lacks.
    fn start_batch(
        &self,
        index: usize,
        job: &Job,
        built: Result<Built, String>,
    ) -> Result<Batch, Box<Checked>> {
        let mut verdict = Checked {
            job: job.clone(),
            problems: Vec::new(),
            repetitions: Vec::new(),
            build: Duration::ZERO,
            run: Duration::ZERO,
            suspects: Vec::new(),
        };
        let built = match built {
            Ok(built) => built,
            Err(problem) => {
                verdict.problems.push(problem);
                return Err(Box::new(verdict));
            }
        };
        verdict.build = built.took;
        match self.suite_tests(&job.lab, &built.executable) {
            Ok(tests) => {
                for name in job.mistake.tests.iter().filter(|t| !tests.contains(*t)) {
                    verdict.problems.push(format!(
                        "names test {name}, which tests/{}.rs does not have",
                        job.lab.name
                    ));
                }
            }
            Err(problem) => verdict.problems.push(problem),
        }
        if !verdict.problems.is_empty() {
            return Err(Box::new(verdict));
        }
        let mut batch = Batch {
            job: index,
            build: built.took,
            started: Instant::now(),
            machine: Machine::snapshot(),
            observed: Observed::default(),
            runs: Vec::new(),
        };
        for _ in 0..self.repeat {
            match self.start_run(job, &built.executable) {
                Ok(run) => batch.runs.push(run),
                Err(err) => {
                    // What started is stopped and collected like any run.
                    for run in &mut batch.runs {
                        run.kill();
                    }
                    while !batch.poll() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let mut verdict = self.finish_batch(job, batch, &[]);
                    verdict.problems.push(format!("{err:#}"));
                    return Err(Box::new(verdict));
                }
            }
        }
        Ok(batch)
    }

    /// Starts one repetition: the test process, in a process group and a
    /// `TMPDIR` of its own, its output going to a file.
    fn start_run(&self, job: &Job, executable: &Path) -> Result<Run> {
        let dir = {
            let mut next = self.next_run.lock().expect("not poisoned");
            *next += 1;
            self.scratch.join("runs").join(next.to_string())
        };
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let out_path = dir.join("output.txt");
        let out = fs::File::create(&out_path)
            .with_context(|| format!("cannot create {}", out_path.display()))?;
        let err = out.try_clone().context("cannot share the output file")?;
        let mut cmd = Command::new(executable);
        cmd.args(&job.mistake.tests)
            .arg("--exact")
            .current_dir(self.crate_dir(&job.lab))
            .env("TMPDIR", &tmp)
            .env("INSTA_WORKSPACE_ROOT", &self.scratch)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        process::grading_env(&mut cmd);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", executable.display()))?;
        Ok(Run {
            pid: child.id(),
            child: Some(child),
            dir,
            tmp,
            deadline: Instant::now() + RUN_TIMEOUT,
            killed: false,
        })
    }

    /// Judges a batch whose runs are over, after looking for what they
    /// left; `others` are the test processes of batches still running.
    fn finish_batch(&self, job: &Job, batch: Batch, others: &[u32]) -> Checked {
        let pids = batch.pids();
        let tmps: Vec<PathBuf> = batch.runs.iter().map(|run| run.tmp.clone()).collect();
        let (left, suspects) = {
            // No build may start while strays are looked for: it would be one.
            let building = self.building.lock().expect("not poisoned");
            let mut known: Vec<u32> = building.iter().copied().collect();
            known.extend(others);
            batch
                .machine
                .left_since(&pids, &tmps, &known, &batch.observed)
        };
        let first = job.mistake.tests.first().map(String::as_str).unwrap_or("");
        let mut repetitions = Vec::new();
        for run in &batch.runs {
            let output = fs::read_to_string(run.dir.join("output.txt")).unwrap_or_default();
            let quote = libtest::parse(&output)
                .tests
                .into_iter()
                .find(|t| t.name == first && t.outcome == Outcome::Failed)
                .and_then(|t| t.message)
                .map(|message| mask(&quote(&message), &run.tmp));
            repetitions.push(Repetition {
                output,
                quote,
                killed: run.killed,
            });
            let _ = fs::remove_dir_all(&run.dir);
        }
        let mut problems = judge(job, &repetitions);
        problems.extend(
            left.into_iter()
                .map(|what| format!("left behind by its runs: {what}")),
        );
        Checked {
            job: job.clone(),
            problems,
            repetitions,
            build: batch.build,
            run: batch.started.elapsed(),
            suspects,
        }
    }

    /// `count` more runs of a mistake's tests, after the others: their
    /// quotes. Whatever they leave behind is found as for any run.
    pub fn more_quotes(&self, job: &Job, count: usize) -> Result<Vec<String>> {
        let built = self.prepare(job).map_err(|problem| {
            anyhow::anyhow!("{}/{}: {problem}", job.lab.name, job.mistake.name)
        })?;
        let mut batch = Batch {
            job: 0,
            build: built.took,
            started: Instant::now(),
            machine: Machine::snapshot(),
            observed: Observed::default(),
            runs: Vec::new(),
        };
        for _ in 0..count {
            batch.runs.push(self.start_run(job, &built.executable)?);
        }
        loop {
            observe(std::slice::from_mut(&mut batch));
            if batch.poll() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let verdict = self.finish_batch(job, batch, &[]);
        let _ = fs::remove_dir_all(self.scratch.join("runs"));
        if let Some(problem) = verdict.problems.first() {
            anyhow::bail!(
                "{}/{}: in {count} more runs: {problem}",
                job.lab.name,
                job.mistake.name
            );
        }
        Ok(verdict.quote_texts())
    }

    /// Runs the whole suite once on the mistake (for the grading guide's
    /// example) with fixed inputs (`WORKBOOK_SEED`, so that a later run
    /// can be compared with it): the test process's standard output, the
    /// sandbox masked.
    pub fn whole_suite(&self, job: &Job) -> Result<String> {
        let built = self.prepare(job).map_err(|problem| {
            anyhow::anyhow!("{}/{}: {problem}", job.lab.name, job.mistake.name)
        })?;
        let tmp = self.scratch.join("runs").join("whole-suite");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut cmd = Command::new(&built.executable);
        cmd.current_dir(self.crate_dir(&job.lab))
            .env("TMPDIR", &tmp)
            .env("INSTA_WORKSPACE_ROOT", &self.scratch)
            .env(EXAMPLE_SEED.0, EXAMPLE_SEED.1)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        process::grading_env(&mut cmd);
        let output = cmd
            .output()
            .with_context(|| format!("cannot run {}", built.executable.display()))?;
        let text = mask(&String::from_utf8_lossy(&output.stdout), &tmp);
        let _ = fs::remove_dir_all(self.scratch.join("runs"));
        Ok(text)
    }
}

/// Orders jobs so that consecutive ones belong to different labs where
/// possible: one mistake of each lab in turn.
fn interleave(jobs: &[Job]) -> Vec<Job> {
    let mut by_lab: Vec<(String, Vec<Job>)> = Vec::new();
    for job in jobs {
        match by_lab.iter_mut().find(|(lab, _)| *lab == job.lab.name) {
            Some((_, list)) => list.push(job.clone()),
            None => by_lab.push((job.lab.name.clone(), vec![job.clone()])),
        }
    }
    let mut order = Vec::with_capacity(jobs.len());
    let mut round = 0;
    while order.len() < jobs.len() {
        for (_, list) in &by_lab {
            if let Some(job) = list.get(round) {
                order.push(job.clone());
            }
        }
        round += 1;
    }
    order
}

/// Why the repetitions do not show the mistake caught: every named test
/// must fail in every repetition, its message containing `expect`.
fn judge(job: &Job, repetitions: &[Repetition]) -> Vec<String> {
    let mut problems = Vec::new();
    let total = repetitions.len();
    for test in &job.mistake.tests {
        let mut passed = Vec::new();
        let mut missing = Vec::new();
        let mut unreported = Vec::new();
        let mut said: Option<(usize, String)> = None;
        for (index, repetition) in repetitions.iter().enumerate() {
            let run = index + 1;
            let result = libtest::parse(&repetition.output)
                .tests
                .into_iter()
                .find(|t| &t.name == test);
            match result {
                None => unreported.push((run, repetition.killed)),
                Some(t) if t.outcome == Outcome::Passed => passed.push(run),
                Some(t) if t.outcome == Outcome::Ignored => unreported.push((run, false)),
                Some(t) => {
                    let message = t.message.unwrap_or_default();
                    if !contains_phrase(&message, &job.mistake.expect) {
                        missing.push(run);
                        said.get_or_insert((run, message));
                    }
                }
            }
        }
        if !passed.is_empty() {
            problems.push(format!(
                "slipped through: {test} passed in {} of {total} runs (run {})",
                passed.len(),
                join(&passed)
            ));
        }
        if let Some((run, message)) = said {
            problems.push(format!(
                "{test} failed without {:?} in {} of {total} runs (run {}); run {run} said instead:\n{}",
                job.mistake.expect,
                missing.len(),
                join(&missing),
                indent(&head(&message, 12))
            ));
        }
        for (run, killed) in unreported {
            let how = if killed {
                format!(
                    "was still running after {} s and was killed",
                    RUN_TIMEOUT.as_secs()
                )
            } else {
                "never reported a result (the test process crashed?)".to_string()
            };
            let output = &repetitions[run - 1].output;
            problems.push(format!(
                "{test} {how} in run {run} of {total}; its output ended with:\n{}",
                indent(&tail(output, 6))
            ));
        }
    }
    problems
}

/// `1, 3, 4`.
fn join(runs: &[usize]) -> String {
    runs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first `n` lines of `text`.
fn head(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut shown = lines[..lines.len().min(n)].join("\n");
    if lines.len() > n {
        shown.push_str(&format!("\n… ({} more lines)", lines.len() - n));
    }
    shown
}

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Each line of `text` indented by four spaces.
fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The quote of a failure message: from its first line down to, not
/// including, the line that shows the command (`  $ …`).
pub fn quote(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .take_while(|line| !line.starts_with("  $ "))
        .collect();
    lines.join("\n").trim_end().to_string()
}

/// `text` with the sandbox (a directory `workbook-<pid>-XXXXXX` in `tmp`,
/// the test's `TMPDIR`) shown as `[SANDBOX]`, as the grader shows it in
/// transcripts: its name is random and its place is the runner's.
pub fn mask(text: &str, tmp: &Path) -> String {
    let sandbox = format!("{}/workbook-", tmp.display());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&sandbox) {
        out.push_str(&rest[..at]);
        out.push_str("[SANDBOX]");
        rest = rest[at + sandbox.len()..]
            .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    }
    out.push_str(rest);
    out
}

/// True when `a` and `b` are the same text but for their numbers (runs of
/// decimal digits, and hexadecimal `0x…`): pids, sizes, times.
pub fn same_but_numbers(a: &str, b: &str) -> bool {
    without_numbers(a) == without_numbers(b)
}

/// The quote most of `quotes` say (see [`same_quote`]); ties go to the
/// earliest. `None` when there is none.
pub fn most_frequent(quotes: &[String]) -> Option<&String> {
    let mut counts: Vec<(&String, usize)> = Vec::new();
    for quote in quotes {
        match counts.iter_mut().find(|(q, _)| same_quote(q, quote)) {
            Some((_, n)) => *n += 1,
            None => counts.push((quote, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(q, _)| q)
}

/// True when `message` contains `phrase`, however the grader broke its
/// lines: runs of white space (line breaks and the indentation of wrapped
/// lines included) count as one space on both sides.
pub fn contains_phrase(message: &str, phrase: &str) -> bool {
    let collapse = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapse(message).contains(&collapse(phrase))
}

/// True when the quote `file` says what the runs' quotes say: its first
/// line, `why:` and `read:` (see [`same_quote`]), each compared only where
/// every run agrees. A part that differs between the runs themselves
/// depends on the inputs, and no file could match it.
pub fn quote_is_fresh(file: &str, runs: &[String]) -> bool {
    let signatures: Vec<[String; 3]> = runs.iter().map(|q| quote_signature(q)).collect();
    let Some(first) = signatures.first() else {
        return false;
    };
    let wanted = quote_signature(file);
    (0..3).all(|part| {
        let stable = signatures.iter().all(|s| s[part] == first[part]);
        // The first line is prose the grader wraps: a quote written before
        // it wrapped, or wrapped where a longer number fell, holds more or
        // less of it on its first line.
        let same = if part == 0 {
            wanted[0].starts_with(&first[0]) || first[0].starts_with(&wanted[0])
        } else {
            wanted[part] == first[part]
        };
        !stable || same
    })
}

/// True when two quotes say the same: the same first line, `why:` and
/// `read:`, but for their numbers and line breaks. The lines in between
/// (what differed, what was left, which processes still ran) show the
/// run's own inputs, which the suites vary from run to run (sizes, counts,
/// random names): they may differ.
pub fn same_quote(a: &str, b: &str) -> bool {
    quote_signature(a) == quote_signature(b)
}

/// The parts of a quote that do not depend on the run: its first line,
/// and its `why:` and `read:` paragraphs (wrapped lines joined), numbers
/// masked and white space collapsed.
fn quote_signature(quote: &str) -> [String; 3] {
    let lines: Vec<&str> = quote.lines().collect();
    let paragraph = |label: &str| {
        let Some(start) = lines.iter().position(|l| l.starts_with(label)) else {
            return String::new();
        };
        let indent = " ".repeat(label.len());
        let mut text = lines[start][label.len()..].to_string();
        for line in &lines[start + 1..] {
            match line.strip_prefix(&indent) {
                Some(more) if !more.starts_with(' ') => {
                    text.push(' ');
                    text.push_str(more);
                }
                _ => break,
            }
        }
        text
    };
    let normal =
        |text: &str| without_numbers(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    [
        normal(lines.first().copied().unwrap_or("")),
        normal(&paragraph("  why: ")),
        normal(&paragraph("  read: ")),
    ]
}

/// `text` with every number replaced by `#`.
fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_digit() {
            out.push(c);
            continue;
        }
        if c == '0' && chars.peek() == Some(&'x') {
            chars.next();
            while chars.peek().is_some_and(char::is_ascii_hexdigit) {
                chars.next();
            }
        }
        while chars.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
        }
        out.push('#');
    }
    out
}

/// The scratch workspace's manifest: the course's, with `members` the
/// mistake crates and no `default-members`.
pub(crate) fn scratch_manifest(course: &str, members: &[String]) -> Result<String> {
    let mut table: toml::Table = course
        .parse()
        .context("the workspace Cargo.toml is not TOML")?;
    let Some(toml::Value::Table(workspace)) = table.get_mut("workspace") else {
        bail!("the workspace Cargo.toml has no [workspace]");
    };
    workspace.insert(
        "members".to_string(),
        toml::Value::Array(members.iter().cloned().map(toml::Value::String).collect()),
    );
    workspace.remove("default-members");
    let text = toml::to_string(&table).context("cannot write the scratch Cargo.toml")?;
    Ok(format!(
        "# Written by `cargo workbook mistakes`: copies of the solutions, with mistakes.\n{text}"
    ))
}

/// Copies the solution crate `from` to `to` (sources and manifest; not
/// `target/` or hidden files), leaving files that are the same untouched.
pub(crate) fn copy_crate(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if name_text == "target" || name_text.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot inspect {}", path.display()))?;
        if kind.is_dir() {
            copy_crate(&path, &to.join(&name))?;
        } else if kind.is_file() {
            let bytes =
                fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let target = to.join(&name);
            if fs::read(&target).ok().as_deref() != Some(&bytes[..]) {
                fs::write(&target, &bytes)
                    .with_context(|| format!("cannot write {}", target.display()))?;
            }
        }
    }
    Ok(())
}

/// Writes `text` to `path` unless it already holds exactly that (an
/// unchanged file keeps its time, so cargo does not rebuild for it).
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(lab: &str, name: &str) -> Job {
        Job {
            lab: Lab::from_dir_name(lab).expect("a lab"),
            mistake: Mistake {
                name: name.into(),
                summary: "s".into(),
                pitfall: None,
                tests: vec!["a".into(), "b".into()],
                expect: "never saw end-of-file".into(),
                edits: Vec::new(),
            },
        }
    }

    #[test]
    fn labs_take_turns() {
        let jobs = [
            job("01-x", "1"),
            job("01-x", "2"),
            job("01-x", "3"),
            job("02-y", "1"),
            job("03-z", "1"),
            job("03-z", "2"),
        ];
        let order: Vec<String> = interleave(&jobs)
            .iter()
            .map(|j| format!("{}/{}", j.lab.name, j.mistake.name))
            .collect();
        assert_eq!(
            order,
            ["01-x/1", "02-y/1", "03-z/1", "01-x/2", "03-z/2", "01-x/3"]
        );
    }

    #[test]
    fn quotes_stop_before_the_command_and_mask_the_sandbox() {
        let message = "pipes count: timed out after 5 s\n  left: /tmp/r/1/tmp/workbook-42-AbC/fifo, \
                       /dev/shm/wb42x3-jobs, pid 977 (pipes)\n  why: the reader hangs\n  \
                       read: book/src/02-pipes.md, section \"Task 2\"\n  $ pipes count\n  stdout: (empty)";
        let quoted = mask(&quote(message), Path::new("/tmp/r/1/tmp"));
        assert_eq!(
            quoted,
            "pipes count: timed out after 5 s\n  left: [SANDBOX]/fifo, /dev/shm/wb42x3-jobs, \
             pid 977 (pipes)\n  why: the reader hangs\n  read: book/src/02-pipes.md, section \"Task 2\""
        );
    }

    #[test]
    fn phrases_survive_line_wrapping_and_unstable_parts_are_not_compared() {
        assert!(contains_phrase(
            "never printed \"child 1: killed by signal\n          SIGSEGV\"",
            "killed by signal SIGSEGV"
        ));
        assert!(!contains_phrase(
            "killed by SIGBUS",
            "killed by signal SIGSEGV"
        ));
        let run = |name: &str| {
            format!("inherit: panicked: open {name}.txt\n  why: never panic\n  read: ch01")
        };
        let runs = [run("fhuojw"), run("abcdef")];
        assert!(quote_is_fresh(&run("zzzzzz"), &runs));
        assert!(!quote_is_fresh(
            "inherit: panicked: open x.txt\n  why: panic away\n  read: ch01",
            &runs
        ));
        assert!(!quote_is_fresh(&run("x"), &[]));
        let wrapped = [
            "faults: never printed \"child 1: killed by signal\n  SIGSEGV\"\n  why: w\n  read: r"
                .to_string(),
        ];
        assert!(quote_is_fresh(
            "faults: never printed \"child 1: killed by signal SIGSEGV\"\n  why: w\n  read: r",
            &wrapped
        ));
    }

    #[test]
    fn quotes_say_the_same_whatever_the_runs_inputs() {
        let a = "pipes gather: timed out after 5 s (still running)\n  at the deadline (then killed):\n    \
                 pid 6861 (pipes gather 8 4096 16)\n      asleep in wait4(2)\n  why: the writers send far \
                 more than the pipe\n       holds: read first\n  read: book/src/02-pipes.md, section \"Task 5\"";
        let b = "pipes gather: timed out after 5 s (still running)\n  at the deadline (then killed):\n    \
                 pid 5696 (pipes gather 5 4096 30)\n      asleep in wait4(2)\n    pid 5702 (x)\n  why: the \
                 writers send far more than the pipe holds:\n       read first\n  read: book/src/02-pipes.md, \
                 section \"Task 5\"";
        assert!(same_quote(a, b));
        assert!(!same_quote(a, &b.replace("read first", "reap first")));
        assert!(!same_quote(a, &b.replace("timed out", "hung")));
        assert!(!same_quote(a, &b.replace("Task 5", "Task 4: x")));
    }

    #[test]
    fn quotes_may_differ_in_their_numbers_only() {
        assert!(same_but_numbers(
            "mmap poke: mapping at offset 8966 failed; key 0x5300a0b2, /wb13088x0-obj",
            "mmap poke: mapping at offset 6372 failed; key 0x0100813f, /wb977x12-obj"
        ));
        assert!(!same_but_numbers(
            "offset 8966 failed",
            "offset 8966 went wrong"
        ));
        assert!(!same_but_numbers("a 1 b", "a 1 2 b"));
    }

    #[test]
    fn every_repetition_of_every_test_must_fail_with_the_phrase() {
        let failing = |name: &str, says: &str| {
            format!(
                "running 1 test\ntest {name} ... FAILED\n\nfailures:\n\n---- {name} stdout ----\n{says}\n\nfailures:\n    {name}\n"
            )
        };
        let rep = |output: String| Repetition {
            output,
            quote: None,
            killed: false,
        };
        let job = job("02-pipes", "m");
        let good =
            rep(failing("a", "x never saw end-of-file") + &failing("b", "never saw end-of-file"));
        assert!(judge(&job, &[good.clone(), good.clone()]).is_empty());
        let passed = rep(failing("a", "never saw end-of-file") + "test b ... ok\n");
        let other = rep(failing("a", "timed out") + &failing("b", "never saw end-of-file"));
        let problems = judge(&job, &[good.clone(), passed, other]);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(
            problems[1],
            "slipped through: b passed in 1 of 3 runs (run 2)"
        );
        assert!(
            problems[0].starts_with(
                "a failed without \"never saw end-of-file\" in 1 of 3 runs (run 3); run 3 said instead:\n    timed out"
            ),
            "{}",
            problems[0]
        );
        let crashed = rep("running 2 tests\n".to_string());
        let problems = judge(&job, &[crashed]);
        assert!(
            problems[0].starts_with("a never reported a result"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_scratch_manifest_has_only_the_mistake_crates() {
        let course = "[workspace]\nresolver = \"3\"\nmembers = [\"labs/02-pipes\", \"solutions/02-pipes\"]\n\
                      default-members = [\"solutions/02-pipes\"]\n\n[workspace.dependencies]\n\
                      grader = { path = \"tests/grader\" }\n\n[profile.dev]\ndebug = \"line-tables-only\"\n";
        let text = scratch_manifest(course, &["mistake/02-pipes".to_string()]).expect("rewritten");
        let table: toml::Table = text.parse().expect("TOML");
        assert_eq!(
            table["workspace"]["members"]
                .as_array()
                .expect("members")
                .len(),
            1
        );
        assert!(table["workspace"].get("default-members").is_none());
        assert_eq!(
            table["profile"]["dev"]["debug"].as_str(),
            Some("line-tables-only")
        );
        assert!(text.contains("tests/grader"));
    }
}
