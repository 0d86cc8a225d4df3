//! `capstone bench` (given: you do not need to change this file): a
//! session per mechanism, the C reference, `memcpy`, then the table, the
//! ratios, and the CSV, SVG and Markdown files.

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

use super::harness::{self, Family, Mechanism, Names, Plan, Setup, Timing};
use super::report;

/// What `bench` was asked to do.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The mechanisms, in order.
    pub mechanisms: Vec<Mechanism>,
    /// The message sizes, in order.
    pub sizes: Vec<usize>,
    /// Timed round trips per size, and messages sent one way.
    pub count: usize,
    /// Round trips before those, per size.
    pub warmup: usize,
    /// Whether to run the C reference where `cc` is found.
    pub c_reference: bool,
    /// Whether to pin the two sides to two CPUs.
    pub pin: bool,
    /// Where to write the CSV file.
    pub csv: Option<PathBuf>,
    /// Where to write the SVG chart.
    pub svg: Option<PathBuf>,
    /// Where to write the Markdown tables.
    pub markdown: Option<PathBuf>,
}

/// The mechanisms the C reference knows.
const IN_C: [&str; 3] = ["pipe", "posix-shm", "spin"];

/// The C reference, as source.
const C_SOURCE: &str = include_str!("../c/pingpong.c");

/// Who measured a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implementation {
    Rust,
    C,
}

/// One line of the results.
#[derive(Debug, Clone)]
struct Row {
    mechanism: &'static str,
    family: Family,
    implementation: Implementation,
    timing: Timing,
}

/// `memcpy` bandwidth at one size, in bytes per second.
#[derive(Debug, Clone, Copy)]
struct Copying {
    size: usize,
    bytes_per_s: f64,
}

/// Everything a run found.
#[derive(Debug)]
struct Results {
    /// Machine, load, pinning, method: the lines printed first.
    context: Vec<(String, String)>,
    rows: Vec<Row>,
    copying: Vec<Copying>,
}

// ANCHOR: run
/// Runs the benchmark and prints it; writes the files asked for.
pub fn run(bench: &Bench, names: &Names, inherited: &[RawFd]) -> anyhow::Result<()> {
    let load = report::load_average();
    let cpus = report::usable_cpus();
    let pin = (bench.pin && cpus.len() >= 2).then(|| [cpus[0], cpus[1]]);
    let pinning = match pin {
        Some([a, b]) => format!("ping on CPU {a}, pong on CPU {b} (sched_setaffinity)"),
        None if !bench.pin => "none (--no-pin)".to_string(),
        None => format!(
            "none: this process may run on {} CPU(s) only, so both sides share it",
            cpus.len()
        ),
    };
    let mut results = Results {
        context: vec![
            ("machine".into(), report::machine()),
            ("load average at start".into(), load),
            ("pinning".into(), pinning),
            (
                "method".into(),
                format!(
                    "per size: {} round trips to warm up, {} timed one by one \
                     (median and 99th percentile), then {} messages one way and a \
                     1-byte answer (throughput)",
                    bench.warmup, bench.count, bench.count
                ),
            ),
        ],
        rows: Vec::new(),
        copying: Vec::new(),
    };
    for (what, value) in &results.context {
        println!("{what}: {value}");
    }
    println!();
    println!("{}", header());
    for mechanism in &bench.mechanisms {
        let plan = Plan::Bench {
            sizes: bench.sizes.clone(),
            count: bench.count,
            warmup: bench.warmup,
        };
        let setup = Setup {
            names,
            plan: &plan,
            pin,
            inherited,
        };
        let report = harness::session(*mechanism, setup).context(mechanism.name)?;
        for timing in report.timings {
            let row = Row {
                mechanism: mechanism.name,
                family: mechanism.family,
                implementation: Implementation::Rust,
                timing,
            };
            println!("{}", line(&row));
            results.rows.push(row);
        }
    }
    let c_note = c_rows(bench, names, pin, &mut results)?;
    results.context.push(("C reference".into(), c_note.clone()));
    results.copying = bench
        .sizes
        .iter()
        .map(|&size| Copying {
            size,
            bytes_per_s: memcpy_rate(size, pin.map(|[a, _]| a)),
        })
        .collect();
    for copying in &results.copying {
        println!(
            "{:<12} {:<4} {:>7}  {:>10}  {:>10}  {:>13}",
            "memcpy",
            "rust",
            size_name(copying.size),
            "-",
            "-",
            megabytes(copying.bytes_per_s)
        );
    }
    println!();
    println!("C reference: {c_note}");
    print!("{}", ratios(&results));
    write_files(bench, &results)
}
// ANCHOR_END: run

/// Runs the C reference for the chosen mechanisms it knows, if asked and
/// if `cc` is there; returns what to say about it.
fn c_rows(
    bench: &Bench,
    names: &Names,
    pin: Option<[usize; 2]>,
    results: &mut Results,
) -> anyhow::Result<String> {
    let wanted: Vec<&Mechanism> = bench
        .mechanisms
        .iter()
        .filter(|m| IN_C.contains(&m.name))
        .collect();
    if !bench.c_reference {
        return Ok("off (--c-reference off)".to_string());
    }
    if wanted.is_empty() {
        return Ok("not run: it has pipe, posix-shm and spin, none of them chosen".to_string());
    }
    let Some(compiler) = compiler_version() else {
        return Ok("not run: no `cc` on PATH".to_string());
    };
    let source = names.path("capstone-pingpong.c");
    let binary = names.path("capstone-pingpong");
    let ran = compile(&source, &binary).and_then(|()| {
        for mechanism in &wanted {
            for timing in run_c(&binary, mechanism.name, bench, names, pin)? {
                let row = Row {
                    mechanism: mechanism.name,
                    family: mechanism.family,
                    implementation: Implementation::C,
                    timing,
                };
                println!("{}", line(&row));
                results.rows.push(row);
            }
        }
        Ok(())
    });
    let _ = fs::remove_file(&source);
    let _ = fs::remove_file(&binary);
    ran?;
    Ok(format!("{compiler}, -O2"))
}

/// `cc --version`'s first line, if `cc` runs.
fn compiler_version() -> Option<String> {
    let output = Command::new("cc").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    output
        .status
        .success()
        .then(|| text.lines().next().unwrap_or("cc").trim().to_string())
}

/// Writes the C source and compiles it (with `-lrt` where `shm_open`
/// still lives there, glibc before 2.34).
fn compile(source: &Path, binary: &Path) -> anyhow::Result<()> {
    fs::write(source, C_SOURCE).with_context(|| format!("write {}", source.display()))?;
    let mut last = String::new();
    for extra in [&["-lrt"][..], &[]] {
        let output = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(binary)
            .arg(source)
            .args(extra)
            .output()
            .context("run cc")?;
        if output.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&output.stderr).into_owned();
    }
    bail!(
        "cc could not compile the C reference: {}",
        last.lines().next().unwrap_or("no message")
    )
}

/// Runs the compiled C reference for `mechanism`.
fn run_c(
    binary: &Path,
    mechanism: &str,
    bench: &Bench,
    names: &Names,
    pin: Option<[usize; 2]>,
) -> anyhow::Result<Vec<Timing>> {
    let cpu = |at: usize| pin.map_or(-1, |cpus| cpus[at] as i64).to_string();
    let output = Command::new(binary)
        .arg(mechanism)
        .arg(bench.count.to_string())
        .arg(bench.warmup.to_string())
        .arg(cpu(0))
        .arg(cpu(1))
        .arg(names.posix("c-shm"))
        .args(bench.sizes.iter().map(|size| size.to_string()))
        .output()
        .context("run the C reference")?;
    if !output.status.success() {
        bail!(
            "the C reference failed for {mechanism}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("timing "))
        .map(harness::parse_timing)
        .collect()
}

// ANCHOR: memcpy
/// How fast this machine copies `size` bytes from one buffer to another
/// (`copy_from_slice`, which is `memcpy`), in bytes per second: as many
/// copies as make 64 MiB (at least 16), on CPU `cpu` if given.
fn memcpy_rate(size: usize, cpu: Option<usize>) -> f64 {
    let here = Pid::from_raw(0);
    let before = sched_getaffinity(here).ok();
    if let Some(cpu) = cpu {
        let mut set = CpuSet::new();
        if set.set(cpu).is_ok() {
            let _ = sched_setaffinity(here, &set);
        }
    }
    let source = vec![0x5A_u8; size];
    let mut target = vec![0_u8; size];
    target.copy_from_slice(&source);
    let copies = ((64 << 20) / size).max(16);
    let start = Instant::now();
    for _ in 0..copies {
        black_box(&mut target).copy_from_slice(black_box(&source));
    }
    let rate = (copies * size) as f64 / start.elapsed().as_secs_f64();
    if let Some(before) = before {
        let _ = sched_setaffinity(here, &before);
    }
    rate
}
// ANCHOR_END: memcpy

/// The table's header.
fn header() -> String {
    format!(
        "{:<12} {:<4} {:>7}  {:>10}  {:>10}  {:>13}",
        "mechanism", "impl", "size", "p50 µs", "p99 µs", "one-way MB/s"
    )
}

/// One row of the table.
fn line(row: &Row) -> String {
    format!(
        "{:<12} {:<4} {:>7}  {:>10}  {:>10}  {:>13}",
        row.mechanism,
        implementation_name(row.implementation),
        size_name(row.timing.size),
        micros(row.timing.p50_ns),
        micros(row.timing.p99_ns),
        megabytes(row.timing.bytes_per_s)
    )
}

fn implementation_name(implementation: Implementation) -> &'static str {
    match implementation {
        Implementation::Rust => "rust",
        Implementation::C => "c",
    }
}

/// `64 B`, `4 KiB`, `1 MiB`, or `1000 B`.
fn size_name(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// Nanoseconds as microseconds, to 2 decimals below 10 µs.
fn micros(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 10.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.1}")
    }
}

/// Bytes per second as MB/s (10⁶ bytes), to 1 decimal.
fn megabytes(bytes_per_s: f64) -> String {
    format!("{:.1}", bytes_per_s / 1e6)
}

// ANCHOR: ratios
/// The Rust/C ratios and the shared-memory/memcpy fractions, as text.
fn ratios(results: &Results) -> String {
    let mut text = String::new();
    let pairs: Vec<(&Row, &Row)> = results
        .rows
        .iter()
        .filter(|row| row.implementation == Implementation::C)
        .filter_map(|c| {
            let rust = results.rows.iter().find(|r| {
                r.implementation == Implementation::Rust
                    && r.mechanism == c.mechanism
                    && r.timing.size == c.timing.size
            })?;
            Some((rust, c))
        })
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(
            text,
            "Rust / C (goal ≥ 0.95): round trip = C p50 ÷ Rust p50, throughput = Rust ÷ C"
        );
        for (rust, c) in pairs {
            let latency = c.timing.p50_ns as f64 / rust.timing.p50_ns.max(1) as f64;
            let throughput = rust.timing.bytes_per_s / c.timing.bytes_per_s;
            let _ = writeln!(
                text,
                "  {:<10} {:>7}: round trip {:.2}{}, throughput {:.2}{}",
                rust.mechanism,
                size_name(rust.timing.size),
                latency,
                below(latency, 0.95),
                throughput,
                below(throughput, 0.95)
            );
        }
    }
    let shared: Vec<(&Row, &Copying)> = results
        .rows
        .iter()
        .filter(|row| row.family == Family::SharedMemory)
        .filter_map(|row| {
            let copying = results.copying.iter().find(|c| c.size == row.timing.size)?;
            Some((row, copying))
        })
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(
            text,
            "shared memory one-way throughput ÷ memcpy at the same size (goal ≥ 0.5):"
        );
        for (row, copying) in shared {
            let fraction = row.timing.bytes_per_s / copying.bytes_per_s;
            let _ = writeln!(
                text,
                "  {:<10} {:<4} {:>7}: {:.2}{}",
                row.mechanism,
                implementation_name(row.implementation),
                size_name(row.timing.size),
                fraction,
                below(fraction, 0.5)
            );
        }
    }
    text
}

/// ` (below the goal)` when `value < goal`.
fn below(value: f64, goal: f64) -> &'static str {
    if value < goal {
        " (below the goal)"
    } else {
        ""
    }
}
// ANCHOR_END: ratios

/// Writes the CSV, SVG and Markdown files that were asked for.
fn write_files(bench: &Bench, results: &Results) -> anyhow::Result<()> {
    let files = [
        (&bench.csv, csv(results)),
        (&bench.svg, svg(results)),
        (&bench.markdown, markdown(results)),
    ];
    let mut written = Vec::new();
    for (path, text) in files {
        if let Some(path) = path {
            fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
            written.push(path.display().to_string());
        }
    }
    if !written.is_empty() {
        println!("wrote {}", written.join(", "));
    }
    Ok(())
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::ByteStream => "byte stream",
        Family::Messages => "messages",
        Family::SharedMemory => "shared memory",
    }
}

// ANCHOR: csv
/// The results as CSV: `#` lines for the context, a header, a row per
/// mechanism, implementation and size, and the `memcpy` rows.
fn csv(results: &Results) -> String {
    let mut text = String::new();
    for (what, value) in &results.context {
        let _ = writeln!(text, "# {what}: {value}");
    }
    text.push_str(
        "mechanism,family,implementation,size_bytes,round_trips,p50_ns,p99_ns,one_way_bytes_per_s\n",
    );
    for row in &results.rows {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{},{:.0}",
            row.mechanism,
            family_name(row.family),
            implementation_name(row.implementation),
            row.timing.size,
            row.timing.count,
            row.timing.p50_ns,
            row.timing.p99_ns,
            row.timing.bytes_per_s
        );
    }
    for copying in &results.copying {
        let _ = writeln!(
            text,
            "memcpy,,rust,{},,,,{:.0}",
            copying.size, copying.bytes_per_s
        );
    }
    text
}
// ANCHOR_END: csv

/// The label of a row in tables and charts: `pipe`, or `pipe (C)`.
fn label(row: &Row) -> String {
    match row.implementation {
        Implementation::Rust => row.mechanism.to_string(),
        Implementation::C => format!("{} (C)", row.mechanism),
    }
}

/// The sizes measured, in order of first appearance.
fn sizes(results: &Results) -> Vec<usize> {
    let mut sizes: Vec<usize> = Vec::new();
    for row in &results.rows {
        if !sizes.contains(&row.timing.size) {
            sizes.push(row.timing.size);
        }
    }
    sizes
}

/// The rows' labels, in order: each Rust mechanism, followed by its C
/// reference when there is one.
fn labels(results: &Results) -> Vec<(String, Family, Implementation, &'static str)> {
    let mut found: Vec<(String, Family, Implementation, &'static str)> = Vec::new();
    for implementation in [Implementation::Rust, Implementation::C] {
        for row in results
            .rows
            .iter()
            .filter(|r| r.implementation == implementation)
        {
            let entry = (label(row), row.family, implementation, row.mechanism);
            if found.iter().any(|f| f.0 == entry.0) {
                continue;
            }
            match found.iter().rposition(|f| f.3 == row.mechanism) {
                Some(at) => found.insert(at + 1, entry),
                None => found.push(entry),
            }
        }
    }
    found
}

// ANCHOR: markdown
/// The results as two Markdown tables: round trips, then throughput.
fn markdown(results: &Results) -> String {
    let sizes = sizes(results);
    let mut text = String::new();
    let heads: Vec<String> = sizes.iter().map(|&s| size_name(s)).collect();
    let _ = writeln!(
        text,
        "Round trip, median / 99th percentile, in µs:\n\n| mechanism | family | {} |",
        heads.join(" | ")
    );
    let _ = writeln!(text, "|---|---|{}", "---:|".repeat(sizes.len()));
    for (name, family, implementation, mechanism) in labels(results) {
        let cells: Vec<String> = sizes
            .iter()
            .map(|&size| {
                find(results, mechanism, implementation, size).map_or("–".to_string(), |t| {
                    format!("{} / {}", micros(t.p50_ns), micros(t.p99_ns))
                })
            })
            .collect();
        let _ = writeln!(
            text,
            "| {name} | {} | {} |",
            family_name(family),
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        text,
        "\nOne-way throughput, in MB/s (10⁶ bytes per second):\n\n| mechanism | {} |",
        heads.join(" | ")
    );
    let _ = writeln!(text, "|---|{}", "---:|".repeat(sizes.len()));
    for (name, _, implementation, mechanism) in labels(results) {
        let cells: Vec<String> = sizes
            .iter()
            .map(|&size| {
                find(results, mechanism, implementation, size)
                    .map_or("–".to_string(), |t| megabytes(t.bytes_per_s))
            })
            .collect();
        let _ = writeln!(text, "| {name} | {} |", cells.join(" | "));
    }
    let cells: Vec<String> = sizes
        .iter()
        .map(|&size| {
            results
                .copying
                .iter()
                .find(|c| c.size == size)
                .map_or("–".to_string(), |c| megabytes(c.bytes_per_s))
        })
        .collect();
    let _ = writeln!(text, "| memcpy (one process) | {} |", cells.join(" | "));
    text
}
// ANCHOR_END: markdown

fn find(
    results: &Results,
    mechanism: &str,
    implementation: Implementation,
    size: usize,
) -> Option<Timing> {
    results
        .rows
        .iter()
        .find(|r| {
            r.mechanism == mechanism && r.implementation == implementation && r.timing.size == size
        })
        .map(|r| r.timing)
}

/// A colour per family.
fn colour(family: Family) -> &'static str {
    match family {
        Family::ByteStream => "#4e79a7",
        Family::Messages => "#f28e2b",
        Family::SharedMemory => "#59a14f",
    }
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ANCHOR: svg
/// A chart, hand-written SVG: one panel of horizontal bars for the round
/// trip at the smallest size (median, with a tick at the 99th percentile),
/// one for the one-way throughput at the largest size (with `memcpy`'s
/// rate as a dashed line). Both axes are logarithmic: the mechanisms span
/// three orders of magnitude.
fn svg(results: &Results) -> String {
    let sizes = sizes(results);
    let (Some(&smallest), Some(&largest)) = (sizes.first(), sizes.last()) else {
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>\n"
            .to_string();
    };
    let labels = labels(results);
    const WIDTH: f64 = 860.0;
    const LEFT: f64 = 150.0;
    const RIGHT: f64 = 90.0;
    const ROW: f64 = 18.0;
    let plot = WIDTH - LEFT - RIGHT;
    let panel = 66.0 + ROW * labels.len() as f64;
    let height = 44.0 + 2.0 * panel + 30.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"{WIDTH}\" height=\"{height}\" fill=\"white\"/>"
    );
    let context = results
        .context
        .iter()
        .filter(|(what, _)| what == "machine" || what == "load average at start");
    for (at, (what, value)) in context.enumerate() {
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>",
            16 + 14 * at,
            escape(&format!("{what}: {value}"))
        );
    }
    // Panel 1: round trips at the smallest size, in µs.
    let top = 44.0;
    let latencies: Vec<Option<Timing>> = labels
        .iter()
        .map(|(_, _, implementation, mechanism)| {
            find(results, mechanism, *implementation, smallest)
        })
        .collect();
    let highest = latencies
        .iter()
        .flatten()
        .map(|t| t.p99_ns.max(t.p50_ns) as f64 / 1000.0)
        .fold(1.0, f64::max);
    let lowest = latencies
        .iter()
        .flatten()
        .map(|t| t.p50_ns as f64 / 1000.0)
        .fold(highest, f64::min);
    let axis = LogAxis::new(lowest, highest, LEFT, plot);
    title(
        &mut out,
        top,
        &format!(
            "Round trip, {} messages: median (bar) and 99th percentile (tick), µs",
            size_name(smallest)
        ),
    );
    axis.draw(
        &mut out,
        top + 30.0 + ROW * labels.len() as f64,
        top + 24.0,
        "µs",
    );
    for (at, ((name, family, implementation, _), timing)) in
        labels.iter().zip(&latencies).enumerate()
    {
        let y = top + 30.0 + ROW * at as f64;
        bar_label(&mut out, y, name);
        let Some(t) = timing else { continue };
        let p50 = t.p50_ns as f64 / 1000.0;
        let p99 = t.p99_ns as f64 / 1000.0;
        bar(&mut out, &axis, y, p50, *family, *implementation);
        let x = axis.x(p99);
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#222\"/>",
            axis.x(p50),
            y + ROW / 2.0,
            y + ROW / 2.0
        );
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#222\" stroke-width=\"2\"/>",
            y + 2.0,
            y + ROW - 2.0
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#222\">{} / {}</text>",
            axis.x(p99.max(p50)) + 6.0,
            y + ROW - 6.0,
            micros(t.p50_ns),
            micros(t.p99_ns)
        );
    }
    // Panel 2: throughput at the largest size, in MB/s.
    let top = top + panel;
    let rates: Vec<Option<f64>> = labels
        .iter()
        .map(|(_, _, implementation, mechanism)| {
            find(results, mechanism, *implementation, largest).map(|t| t.bytes_per_s / 1e6)
        })
        .collect();
    let copying = results
        .copying
        .iter()
        .find(|c| c.size == largest)
        .map(|c| c.bytes_per_s / 1e6);
    let highest = rates
        .iter()
        .flatten()
        .copied()
        .chain(copying)
        .fold(1.0, f64::max);
    let lowest = rates.iter().flatten().copied().fold(highest, f64::min);
    let axis = LogAxis::new(lowest, highest, LEFT, plot);
    title(
        &mut out,
        top,
        &format!(
            "One-way throughput, {} messages, MB/s (dashed: memcpy in one process)",
            size_name(largest)
        ),
    );
    axis.draw(
        &mut out,
        top + 30.0 + ROW * labels.len() as f64,
        top + 24.0,
        "MB/s",
    );
    for (at, ((name, family, implementation, _), rate)) in labels.iter().zip(&rates).enumerate() {
        let y = top + 30.0 + ROW * at as f64;
        bar_label(&mut out, y, name);
        let Some(rate) = rate else { continue };
        bar(&mut out, &axis, y, *rate, *family, *implementation);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#222\">{}</text>",
            axis.x(*rate) + 6.0,
            y + ROW - 6.0,
            megabytes(rate * 1e6)
        );
    }
    if let Some(copying) = copying {
        let x = axis.x(copying);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>",
            top + 26.0,
            top + 32.0 + ROW * labels.len() as f64
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c00\" text-anchor=\"middle\">memcpy {}</text>",
            x,
            top + 44.0 + ROW * labels.len() as f64,
            megabytes(copying * 1e6)
        );
    }
    legend(&mut out, height - 16.0);
    out.push_str("</svg>\n");
    out
}
// ANCHOR_END: svg

/// A logarithmic axis over whole powers of ten around `low..high`.
struct LogAxis {
    low: f64,
    high: f64,
    left: f64,
    width: f64,
}

impl LogAxis {
    fn new(low: f64, high: f64, left: f64, width: f64) -> LogAxis {
        let low = 10f64.powf(low.max(1e-3).log10().floor());
        let high = 10f64.powf(high.max(low * 10.0).log10().ceil());
        LogAxis {
            low,
            high,
            left,
            width,
        }
    }

    fn x(&self, value: f64) -> f64 {
        let value = value.clamp(self.low, self.high);
        self.left + self.width * (value / self.low).log10() / (self.high / self.low).log10()
    }

    /// Grid lines and labels at each power of ten; the labels at `label_y`.
    fn draw(&self, out: &mut String, bottom: f64, label_y: f64, unit: &str) {
        let mut value = self.low;
        while value <= self.high * 1.0001 {
            let x = self.x(value);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#ddd\"/>",
                label_y + 4.0
            );
            let _ = writeln!(
                out,
                "<text x=\"{x:.1}\" y=\"{label_y:.1}\" fill=\"#777\" font-size=\"10\" text-anchor=\"middle\">{} {unit}</text>",
                number(value)
            );
            value *= 10.0;
        }
    }
}

/// `0.1`, `1`, `10`, `1000`.
fn number(value: f64) -> String {
    if value >= 1.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn title(out: &mut String, top: f64, text: &str) {
    let _ = writeln!(
        out,
        "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
        top + 8.0,
        escape(text)
    );
}

fn bar_label(out: &mut String, y: f64, name: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        140.0,
        y + 13.0,
        escape(name)
    );
}

fn bar(
    out: &mut String,
    axis: &LogAxis,
    y: f64,
    value: f64,
    family: Family,
    implementation: Implementation,
) {
    let opacity = match implementation {
        Implementation::Rust => 1.0,
        Implementation::C => 0.45,
    };
    let _ = writeln!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"{opacity}\"/>",
        axis.left,
        y + 3.0,
        (axis.x(value) - axis.left).max(1.0),
        18.0 - 6.0,
        colour(family)
    );
}

fn legend(out: &mut String, y: f64) {
    let mut x = 10.0;
    for family in [Family::ByteStream, Family::Messages, Family::SharedMemory] {
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>",
            y - 10.0,
            colour(family)
        );
        let name = family_name(family);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{y:.1}\">{name}</text>",
            x + 16.0
        );
        x += 30.0 + 7.0 * name.len() as f64;
    }
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" fill=\"#555\">pale bar: the C reference</text>"
    );
}
