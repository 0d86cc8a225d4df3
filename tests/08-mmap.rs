//! Grading suite of lab 08 (mmap).
//!
//! Compiled into both the lab (`labs/08-mmap`) and the reference solution.
//! Inputs vary from run to run: file contents, sizes, offsets, texts and
//! counts come from `grader::Varied`, whose seed a failure prints
//! (`to repeat these inputs: WORKBOOK_SEED=1234 cargo test NAME`); run with
//! `WORKBOOK_SEED=1234` to get the same inputs again. Whatever depends on
//! the page size is computed here from `sysconf(_SC_PAGESIZE)`, never
//! written into a snapshot. Snapshots cover only fixed inputs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use grader::{Lab, Run, Sandbox, Varied};

const CHAPTER: &str = "08-mmap.md";

const TASK_1: &str = "Task 1: map a file and read it";
const TASK_2: &str = "Task 2: count lines and words through windows";
const TASK_3: &str = "Task 3: shared or private: copy-on-write";
const TASK_4: &str = "Task 4: SIGSEGV and SIGBUS";
const TASK_5: &str = "Task 5: change a file in place, seen by another process";
const TASK_6: &str = "Task 6: counters shared by a parent and its children";

/// Time for one program; each finishes in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Time for a background program to reach the point a test waits for.
const PATIENCE: Duration = Duration::from_secs(5);

fn lab() -> Lab {
    grader::lab!(CHAPTER)
}

// ---- inputs that vary from run to run ----------------------------------------

/// `len` printable ASCII bytes (no white space).
fn printable(vary: &mut Varied, len: usize) -> Vec<u8> {
    (0..len).map(|_| vary.between(0x21, 0x7e) as u8).collect()
}

/// About `len` bytes of words of printable ASCII separated by runs of
/// every kind of white space `wc` knows: space, \t, \n, \v, \f, \r.
fn text(vary: &mut Varied, len: usize) -> Vec<u8> {
    const SPACE: &[u8] = b" \t\n\x0b\x0c\r";
    let mut text = Vec::with_capacity(len + 16);
    while text.len() < len {
        let word = vary.size(1, 12);
        text.extend(printable(vary, word));
        for _ in 0..vary.between(1, 3) {
            text.push(*vary.pick(SPACE));
        }
    }
    text
}

/// The page size, as the program must find it.
fn page() -> usize {
    // SAFETY: sysconf takes an integer and returns one.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

// ---- checks ---------------------------------------------------------------------

/// Fails unless the program reported one line `mmap: …` naming `what` and
/// exited with status 1.
fn expect_error(run: &Run, what: &str, why: &str) {
    run.expect_one_line_error("mmap", what, why);
}

/// Fails unless stdout is exactly `expected` (bytes); says where it differs.
fn expect_bytes(run: &Run, expected: &[u8], why: &str) {
    let got = &run.stdout_bytes;
    if got.as_slice() != expected {
        let at = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        run.fail(
            format!(
                "printed {} bytes for {} expected, first difference at byte {at}",
                got.len(),
                expected.len()
            ),
            why,
        );
    }
}

/// `wc FILE`'s three counts, with the C locale.
fn wc(path: &Path) -> Vec<String> {
    let output = Command::new("wc")
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("grader: cannot run wc: {e} (install coreutils)"));
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .take(3)
        .map(str::to_string)
        .collect()
}

/// Fails unless the program's counts are `wc`'s on the same file.
fn expect_same_as_wc(run: &Run, path: &Path, why: &str) {
    run.expect_success();
    let theirs = wc(path);
    let ours: Vec<String> = run
        .stdout
        .split_whitespace()
        .take(3)
        .map(str::to_string)
        .collect();
    if ours != theirs {
        let mut failure = run.failure("counted differently from wc on the same file");
        failure.details.push(format!(
            "wc:   lines {}, words {}, bytes {}",
            theirs.first().map_or("?", String::as_str),
            theirs.get(1).map_or("?", String::as_str),
            theirs.get(2).map_or("?", String::as_str),
        ));
        failure.details.push(format!("yours: {}", ours.join(" ")));
        failure.why = Some(why.to_string());
        failure.raise();
    }
}

/// Fails unless `path` holds exactly `expected`.
fn expect_file(run: &Run, path: &Path, expected: &[u8], what: &str, why: &str) {
    let now = fs::read(path).unwrap_or_default();
    if now != expected {
        let at = now
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(now.len().min(expected.len()));
        run.fail(
            format!(
                "{what}: the file has {} bytes for {} expected, first difference at byte {at}",
                now.len(),
                expected.len()
            ),
            why,
        );
    }
}

/// Text shown the way the program shows it: `{:?}` of the lossy string.
fn quoted(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

// ---- TODO 1: page size, map a file, read it ----------------------------------------

#[test]
fn page_size_is_what_sysconf_says() {
    let run = lab().cmd(["page-size"]).section(TASK_1).run();
    run.expect_success();
    run.expect_stdout(
        &format!("{}\n", page()),
        "ask the system: sysconf(_SC_PAGESIZE) (nix::unistd::sysconf with \
         SysconfVar::PAGE_SIZE); never assume 4096",
    );
}

#[test]
fn cat_prints_a_file_of_several_pages_through_a_mapping() {
    let mut vary = Varied::new();
    let size = 3 * page() + vary.between(1, page() as u64 - 1) as usize;
    let content = vary.bytes(size);
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("bytes", &content);
    let run = lab()
        .cmd_in(sandbox, ["cat"])
        .arg(&file)
        .section(TASK_1)
        .run();
    run.expect_success();
    expect_bytes(
        &run,
        &content,
        "without --offset and --length, map the whole file: from offset 0, fstat's \
         size in bytes (not a whole number of pages: a mapping may end mid-page)",
    );
}

#[test]
fn cat_prints_a_range_that_starts_on_a_page_boundary() {
    let mut vary = Varied::new();
    let page = page();
    let size = 4 * page + vary.between(1, page as u64 - 1) as usize;
    let content = vary.bytes(size);
    let offset = page * vary.between(1, 3) as usize;
    let length = vary.between(1, (size - offset) as u64) as usize;
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("bytes", &content);
    let (offset_arg, length_arg) = (offset.to_string(), length.to_string());
    let run = lab()
        .cmd(["cat"])
        .arg(&file)
        .args(["--offset", &offset_arg, "--length", &length_arg])
        .section(TASK_1)
        .run();
    run.expect_success();
    expect_bytes(
        &run,
        &content[offset..offset + length],
        "pass --offset to mmap as the mapping's offset in the file, and --length as its \
         length: the mapping's first byte is then the file's byte at that offset",
    );
    let run = lab()
        .cmd(["cat"])
        .arg(&file)
        .args(["--offset", &offset_arg])
        .section(TASK_1)
        .run();
    run.expect_success();
    expect_bytes(
        &run,
        &content[offset..],
        "with --offset and no --length, map from the offset to the end of the file: \
         fstat's size minus the offset",
    );
}

#[test]
fn cat_of_an_empty_file_prints_nothing() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("empty", "");
    let run = lab()
        .cmd_in(sandbox, ["cat"])
        .arg(&file)
        .section(TASK_1)
        .run();
    if run.stderr.contains("EINVAL") {
        run.fail(
            "an empty file was reported as an error (EINVAL)",
            "an empty file is not an error: there is nothing to map, and mmap of 0 bytes \
             fails with EINVAL, so return Ok(None) before calling it",
        );
    }
    run.expect_success();
    grader::assert_transcript!(run);
}

#[test]
fn cat_rejects_an_offset_that_is_not_a_page_multiple() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("text", "0123456789".repeat(30));
    let run = lab()
        .cmd_in(sandbox, ["cat"])
        .arg(&file)
        .args(["--offset", "100", "--length", "10"])
        .section(TASK_1)
        .run();
    if run.code() == Some(0) {
        run.fail(
            "mapped at offset 100 without an error",
            "mmap's offset must be a multiple of the page size: pass --offset on as it \
             is and let the kernel answer EINVAL; do not round it yourself",
        );
    }
    expect_error(
        &run,
        "EINVAL",
        "mmap fails with EINVAL for an offset that is not a multiple of the page size: \
         report its error with context, on one line",
    );
    grader::assert_transcript!(run);
}

#[test]
fn cat_rejects_a_length_of_zero() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("text", "0123456789".repeat(30));
    let run = lab()
        .cmd_in(sandbox, ["cat"])
        .arg(&file)
        .args(["--length", "0"])
        .section(TASK_1)
        .run();
    expect_error(
        &run,
        "EINVAL",
        "an explicit --length 0 goes to mmap, which refuses a mapping of 0 bytes with \
         EINVAL: report it (only the whole of an empty file is the empty case)",
    );
    grader::assert_transcript!(run);
}

#[test]
fn cat_rejects_a_range_beyond_the_end_of_the_file() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("thousand", "x".repeat(1000));
    let run = lab()
        .cmd_in(sandbox, ["cat"])
        .arg(&file)
        .args(["--length", "1001"])
        .section(TASK_1)
        .run();
    if run.signal() == Some(libc::SIGBUS) {
        run.fail(
            "killed by SIGBUS instead of reporting a range beyond the end of the file",
            "mmap does not check the file's size; fstat does. Compare offset + length \
             with the size before mapping",
        );
    }
    expect_error(
        &run,
        "beyond the end",
        "a range that ends past the end of the file must be refused before mmap, with \
         a message that says `beyond the end of FILE (SIZE bytes)`",
    );
    grader::assert_transcript!(run);

    let offset = (2 * page()).to_string();
    let run = lab()
        .cmd(["cat"])
        .arg(&file)
        .args(["--offset", &offset])
        .section(TASK_1)
        .run();
    if run.signal() == Some(libc::SIGBUS) {
        run.fail(
            "killed by SIGBUS for an offset past the end of the file",
            "mmap accepts an offset past the end of the file, and the first access \
             then dies of SIGBUS: check the offset against fstat's size first",
        );
    }
    expect_error(
        &run,
        "beyond the end",
        "an offset past the end of the file leaves nothing to map: refuse it with a \
         message that says `beyond the end of FILE (SIZE bytes)`",
    );
}

#[test]
fn cat_reports_a_missing_file() {
    let run = lab().cmd(["cat", "no-such-file"]).section(TASK_1).run();
    expect_error(
        &run,
        "No such file or directory",
        "opening a missing file fails with ENOENT: return the error with context (the \
         path), on one line, exit status 1",
    );
    grader::assert_transcript!(run);
}

// ---- TODO 2: wc through windows ------------------------------------------------------

/// Runs `mmap wc FILE [--window W]` on `content`, saved as `name`.
fn word_count(name: &str, content: &[u8], window: Option<usize>) -> (Run, std::path::PathBuf) {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file(name, content);
    let mut cmd = lab()
        .cmd_in(sandbox, ["wc"])
        .arg(&file)
        .section(TASK_2)
        .timeout(TIMEOUT);
    if let Some(window) = window {
        cmd = cmd.args(["--window".to_string(), window.to_string()]);
    }
    (cmd.run(), file)
}

#[test]
fn wc_agrees_with_wc_on_a_large_file() {
    let mut vary = Varied::new();
    let size = (256 * 1024 + vary.between(0, 768 * 1024)) as usize;
    let text = text(&mut vary, size);
    let (run, file) = word_count("text", &text, None);
    expect_same_as_wc(
        &run,
        &file,
        "lines are \\n bytes; words are maximal runs of bytes that are not white space, \
         and white space is space, \\t, \\n, \\v (0x0b), \\f and \\r: \
         u8::is_ascii_whitespace leaves out \\v; bytes are the file's size",
    );
}

#[test]
fn wc_counts_a_word_cut_by_a_window_boundary_once() {
    let mut vary = Varied::new();
    let page = page();
    let size = 6 * page + vary.between(1, page as u64 - 1) as usize;
    let mut text = text(&mut vary, size);
    // Every window boundary falls inside a word.
    for k in 1..=6 {
        text[k * page - 1] = b'a';
        text[k * page] = b'b';
    }
    let (run, file) = word_count("text", &text, Some(page));
    expect_same_as_wc(
        &run,
        &file,
        "a word that a window boundary cuts in two is one word: carry `in a word or not` \
         from one window to the next instead of starting each window afresh",
    );
}

#[test]
fn wc_maps_windows_of_several_pages_up_to_the_end() {
    let mut vary = Varied::new();
    let page = page();
    let size = 7 * page + vary.between(1, page as u64 - 1) as usize;
    let text = text(&mut vary, size);
    let (run, file) = word_count("text", &text, Some(3 * page));
    if run.signal() == Some(libc::SIGBUS) {
        run.fail(
            "killed by SIGBUS",
            "the last window must stop at the end of the file: map min(window, size - \
             offset) bytes, never a whole window past the end",
        );
    }
    expect_same_as_wc(
        &run,
        &file,
        "map the windows at offsets 0, window, 2 × window … until the end of the file, \
         the last one shorter, and count every byte exactly once",
    );
}

#[test]
fn wc_of_an_empty_file_counts_zeros() {
    let (run, file) = word_count("empty", b"", None);
    if run.stderr.contains("EINVAL") {
        run.fail(
            "an empty file was reported as an error (EINVAL)",
            "an empty file counts 0 0 0 without any mapping: mmap of 0 bytes is EINVAL",
        );
    }
    expect_same_as_wc(
        &run,
        &file,
        "an empty file has 0 lines, 0 words and 0 bytes",
    );
    grader::assert_transcript!(run);
}

#[test]
fn wc_rejects_a_window_that_is_not_a_page_multiple() {
    let mut vary = Varied::new();
    let page = page();
    let text = text(&mut vary, 3 * page);
    let (run, _) = word_count("text", &text, Some(page + 1));
    if run.code() == Some(0) {
        run.fail(
            format!(
                "counted with a window of {} bytes without an error",
                page + 1
            ),
            "the second window starts at offset `window`, which must be a multiple of the \
             page size: pass it to mmap as it is and report the EINVAL",
        );
    }
    expect_error(
        &run,
        "EINVAL",
        "mmap fails with EINVAL when a window's offset is not a multiple of the page \
         size: report that error with context, on one line",
    );
}

#[test]
fn wc_reports_a_missing_file() {
    let run = lab().cmd(["wc", "no-such-file"]).section(TASK_2).run();
    expect_error(
        &run,
        "No such file or directory",
        "opening a missing file fails with ENOENT: return the error with context",
    );
    grader::assert_transcript!(run);
}

// ---- TODO 3: copy-on-write ---------------------------------------------------------

/// Runs `mmap cow FILE TEXT` on `content`; returns the run, the file, and
/// what the file must hold afterwards (child 2's write is for real).
fn cow(name: &str, content: &[u8], text: &str) -> (Run, std::path::PathBuf, Vec<u8>) {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file(name, content);
    let run = lab()
        .cmd_in(sandbox, ["cow"])
        .arg(&file)
        .arg(text)
        .section(TASK_3)
        .timeout(TIMEOUT)
        .run();
    let mut after = content.to_vec();
    if let Some(start) = after.get_mut(..text.len()) {
        start.copy_from_slice(text.as_bytes());
    }
    (run, file, after)
}

/// Random printable content, and a text of letters to write over its start.
fn cow_inputs(vary: &mut Varied) -> (Vec<u8>, String) {
    let size = vary.between(64, 3 * page() as u64) as usize;
    let content = printable(vary, size);
    let text: String = (0..vary.between(3, 40))
        .map(|_| char::from(b'A' + vary.between(0, 25) as u8))
        .collect();
    (content, text)
}

#[test]
fn a_private_write_reaches_neither_the_file_nor_the_parent() {
    let mut vary = Varied::new();
    let (content, text) = cow_inputs(&mut vary);
    let (run, _, _) = cow("text", &content, &text);
    run.expect_success();
    let before = quoted(&content[..text.len()]);
    let line = format!(
        "parent: after child 1, its MAP_SHARED mapping held {before} and read(2) returned {before}"
    );
    if !run.stdout.lines().any(|l| l == line) {
        run.fail(
            "after child 1's private write, the parent did not see the file unchanged",
            "a MAP_PRIVATE mapping gets its own copy of a page at the first write (copy-\
             on-write): child 1 must write through a private mapping of its own, not \
             through a shared one, nor the shared one it inherited",
        );
    }
    run.expect_line(
        &format!(
            "child 1: wrote {} through its own MAP_PRIVATE mapping, which now holds {}",
            quoted(text.as_bytes()),
            quoted(text.as_bytes())
        ),
        "child 1 maps the file again, MAP_PRIVATE and read-write, writes the text \
         through that mapping and reads it back: its own copy of the page has it",
    );
}

#[test]
fn a_shared_write_reaches_the_file_and_the_parent() {
    let mut vary = Varied::new();
    let (content, text) = cow_inputs(&mut vary);
    let (run, file, after) = cow("text", &content, &text);
    run.expect_success();
    let now = quoted(text.as_bytes());
    let line = format!(
        "parent: after child 2, its MAP_SHARED mapping held {now} and read(2) returned {now}"
    );
    if !run.stdout.lines().any(|l| l == line) {
        run.fail(
            "after child 2's write, the parent's mapping or read(2) did not show it",
            "child 2 writes through the MAP_SHARED mapping it inherited from the parent \
             across fork: same pages, so the parent's mapping and the file see the text",
        );
    }
    expect_file(
        &run,
        &file,
        &after,
        "after cow",
        "only child 2's shared write reaches the file: its first bytes are the text, \
         the rest unchanged",
    );
}

#[test]
fn cow_shows_the_three_moments() {
    let (run, _, _) = cow("greeting", b"hello, world\n", "HOWDY");
    run.expect_success();
    grader::assert_transcript!(run);
}

#[test]
fn cow_refuses_a_text_longer_than_the_file() {
    let content = b"short\n";
    let (run, file, _) = cow("short", content, "longer than the file");
    expect_error(
        &run,
        "beyond the end",
        "the text must fit in the file: compare its length with fstat's size and refuse \
         with `beyond the end of FILE (SIZE bytes)` before mapping or forking",
    );
    expect_file(
        &run,
        &file,
        content,
        "after a refused cow",
        "nothing may be written",
    );
    grader::assert_transcript!(run);
}

// ---- TODO 4: SIGSEGV and SIGBUS ------------------------------------------------------

/// Runs `mmap faults FILE` on a file of `size` printable bytes.
fn faults(name: &str, content: &[u8]) -> Run {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file(name, content);
    lab()
        .cmd_in(sandbox, ["faults"])
        .arg(&file)
        .section(TASK_4)
        .timeout(TIMEOUT)
        .run()
}

/// The line about child 2, for a file of `size` bytes.
fn sigbus_line(size: usize) -> String {
    let first_past = size.div_ceil(page()) * page();
    format!(
        "child 2 read byte {first_past}, the first of a page wholly past the end of the \
         file: killed by signal SIGBUS"
    )
}

#[test]
fn a_store_after_mprotect_prot_read_is_killed_by_sigsegv() {
    let mut vary = Varied::new();
    let size = vary.between(1, 4 * page() as u64) as usize;
    let content = printable(&mut vary, size);
    let run = faults("text", &content);
    run.expect_success();
    run.expect_line(
        "child 1 wrote to a page made read-only by mprotect: killed by signal SIGSEGV",
        "child 1 writes to its anonymous page, calls protect(Access::Read) (mprotect), \
         then stores again with write_unchecked: the processor refuses, and the kernel \
         sends SIGSEGV; the parent reaps it and keeps the status",
    );
}

#[test]
fn a_read_past_the_files_last_page_is_killed_by_sigbus() {
    let mut vary = Varied::new();
    let page = page();
    let size = page * vary.between(1, 3) as usize + vary.between(1, page as u64 - 1) as usize;
    let content = printable(&mut vary, size);
    let run = faults("text", &content);
    run.expect_success();
    let pages = size.div_ceil(page);
    run.expect_line(
        &format!(
            "file: {size} bytes in {pages} page(s); mapped {} bytes ({} page(s)), \
             MAP_PRIVATE, PROT_READ",
            (pages + 1) * page,
            pages + 1
        ),
        "map one page more than the file's bytes occupy: the size divided by the page \
         size, rounded up, plus one, times the page size (mmap does not check the file)",
    );
    let line = sigbus_line(size);
    if !run.stdout.lines().any(|l| l == line) {
        run.fail(
            "child 2 was not killed by SIGBUS reading the first byte past the file's last page",
            "that byte is in the mapping but has no file behind it: a read there faults \
             with SIGBUS. A byte inside the file's last page reads as 0 instead, and a \
             byte outside the mapping is SIGSEGV",
        );
    }
}

#[test]
fn the_rest_of_the_last_page_reads_as_zeros() {
    let mut vary = Varied::new();
    let page = page();
    let size = page + vary.between(1, page as u64 - 1) as usize;
    let content = printable(&mut vary, size);
    let run = faults("text", &content);
    run.expect_success();
    run.expect_line(
        &format!(
            "byte {}, the file's last: {:#04x}",
            size - 1,
            content[size - 1]
        ),
        "read the file's last byte (at size - 1) through the mapping",
    );
    run.expect_line(
        &format!("byte {size}, past the end of the file in its last page: 0x00"),
        "the byte after the last one, still in the file's last page, reads as 0: the \
         kernel fills the rest of that page with zeros",
    );
}

#[test]
fn faults_of_an_empty_file() {
    let run = faults("empty", b"");
    run.expect_success();
    if run.stdout.contains("byte ") && !run.stdout.contains("child 2 read byte 0,") {
        run.fail(
            "reported bytes of an empty file",
            "an empty file has no last byte and no last page: its first page is already \
             past the end",
        );
    }
    run.expect_line(
        &sigbus_line(0),
        "for an empty file, map one page; its first byte is already past the end: SIGBUS",
    );
}

#[test]
fn faults_of_a_file_that_ends_on_a_page_boundary() {
    let mut vary = Varied::new();
    let size = 2 * page();
    let content = printable(&mut vary, size);
    let run = faults("text", &content);
    run.expect_success();
    if run
        .stdout
        .contains("past the end of the file in its last page")
    {
        run.fail(
            "reported a byte past the end inside the last page of a file that fills it",
            "when the size is a multiple of the page size, the byte after the last one \
             is already in the next page: there is no zero tail to show",
        );
    }
    run.expect_line(
        &sigbus_line(size),
        "the page after a file that ends on a page boundary starts right at its size",
    );
}

// ---- TODO 5: poke and watch ------------------------------------------------------------

#[test]
fn poke_changes_the_file_in_place() {
    let mut vary = Varied::new();
    let page = page();
    let size = 3 * page + vary.between(1, page as u64) as usize;
    let mut content = printable(&mut vary, size);
    let length = vary.between(1, 30) as usize;
    let mut text = printable(&mut vary, length);
    // Not an option to the command line: no leading `-`.
    if text[0] == b'-' {
        text[0] = b'+';
    }
    let text = String::from_utf8(text).unwrap_or_else(|_| "poke".into());
    // An offset inside a page (never on a boundary), past the first page.
    let offset = page * vary.between(1, 2) as usize + vary.between(1, page as u64 - 40) as usize;
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("text", &content);
    let offset_arg = offset.to_string();
    let run = lab()
        .cmd_in(sandbox, ["poke"])
        .arg(&file)
        .args([&offset_arg, &text])
        .section(TASK_5)
        .run();
    if run.stderr.contains("EINVAL") {
        run.fail(
            format!("mapping at offset {offset} failed with EINVAL"),
            "the mapping's offset must be a multiple of the page size: map from the \
             offset rounded down to a page, and write at offset - map_offset within it",
        );
    }
    run.expect_success();
    content[offset..offset + text.len()].copy_from_slice(text.as_bytes());
    expect_file(
        &run,
        &file,
        &content,
        "after poke",
        "write the text at the right place of a MAP_SHARED mapping (offset - map_offset \
         from its start): stores through a shared file mapping are the file's bytes",
    );
    let map_offset = offset / page * page;
    run.expect_line(
        &format!(
            "mapped {} bytes of [SANDBOX]/text from offset {map_offset}, \
             MAP_SHARED, PROT_READ | PROT_WRITE",
            offset + text.len() - map_offset,
        ),
        "map only the pages the text touches: from the offset rounded down to a \
         multiple of the page size, up to the end of the text",
    );
}

#[test]
fn a_watcher_sees_a_poke_without_reading() {
    let mut vary = Varied::new();
    let page = page();
    let size = 2 * page + vary.between(1, page as u64) as usize;
    let content = printable(&mut vary, size);
    let text: String = (0..vary.between(4, 24))
        .map(|_| char::from(b'a' + vary.between(0, 25) as u8))
        .collect();
    let offset = vary.between(1, (content.len() - text.len()) as u64) as usize;
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("text", &content);
    let mut watcher = lab()
        .cmd_in(sandbox, ["watch"])
        .arg(&file)
        .section(TASK_5)
        .start();
    watcher.wait_for_stdout("SIGUSR1: look again", PATIENCE);

    let mapped: Vec<_> = watcher
        .mappings()
        .into_iter()
        .filter(|m| m.maps(&file))
        .collect();
    if !mapped.iter().any(|m| m.is_shared()) {
        let perms: Vec<&str> = mapped.iter().map(|m| m.perms.as_str()).collect();
        watcher.fail(
            format!(
                "the watcher has no shared mapping of the file (its mappings of it: {perms:?})"
            ),
            "view must map the file MAP_SHARED (Share::Shared): with MAP_PRIVATE, what \
             it sees of other processes' changes is unspecified",
        );
    }
    let canonical = fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
    if watcher.open_files().contains(&canonical) {
        watcher.fail(
            "the watcher still holds a descriptor of the file",
            "close the file once it is mapped (let the File drop at the end of view): \
             the mapping keeps the file, and the watcher needs no read",
        );
    }

    let poke = lab()
        .cmd(["poke"])
        .arg(&file)
        .args([offset.to_string(), text.clone()])
        .section(TASK_5)
        .run();
    poke.expect_success();
    watcher.signal(libc::SIGUSR1);
    let mut after = content.clone();
    after[offset..offset + text.len()].copy_from_slice(text.as_bytes());
    let expected = changes(&content, &after);
    let last = expected
        .last()
        .cloned()
        .unwrap_or_else(|| "no change".into());
    let shown = watcher.wait_for_stdout(&last, PATIENCE);
    for line in &expected {
        if !shown.lines().any(|l| l == line) {
            watcher.fail(
                format!("the watcher did not report {line:?}"),
                "the poke's stores went into the page cache, which the watcher's \
                 MAP_SHARED mapping shows: it must see them without any read",
            );
        }
    }
    watcher.signal(libc::SIGTERM);
    let run = watcher.wait(TIMEOUT);
    run.expect_success();
}

/// The lines `watch` prints for the change from `before` to `after`.
fn changes(before: &[u8], after: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < after.len() {
        if after[at] == before[at] {
            at += 1;
            continue;
        }
        let end = (at..after.len())
            .find(|&i| after[i] == before[i])
            .unwrap_or(after.len());
        lines.push(format!(
            "changed: bytes {at}..{end} now hold {}",
            quoted(&after[at..end])
        ));
        at = end;
    }
    lines
}

#[test]
fn poke_rejects_a_range_beyond_the_end_of_the_file() {
    let sandbox = Sandbox::new();
    let content = "y".repeat(1000);
    let file = sandbox.write_file("thousand", &content);
    let run = lab()
        .cmd_in(sandbox, ["poke"])
        .arg(&file)
        .args(["998", "xyz"])
        .section(TASK_5)
        .run();
    if run.signal() == Some(libc::SIGBUS) {
        run.fail(
            "killed by SIGBUS writing past the end of the file",
            "a mapping never makes a file longer: check offset + length against fstat's \
             size before mapping",
        );
    }
    expect_error(
        &run,
        "beyond the end",
        "refuse a range that ends past the end of the file, with `beyond the end of \
         FILE (SIZE bytes)`, before mapping",
    );
    expect_file(
        &run,
        &file,
        content.as_bytes(),
        "after a refused poke",
        "nothing may be written when the range does not fit",
    );
    grader::assert_transcript!(run);
}

#[test]
fn poke_reports_permission_denied_on_a_read_only_file() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("read-only", "z".repeat(100));
    fs::set_permissions(&file, fs::Permissions::from_mode(0o400))
        .unwrap_or_else(|e| panic!("grader: chmod: {e}"));
    // Root would be allowed to write anyway: the program runs without the
    // capabilities that bypass file permissions.
    let run = lab()
        .cmd_in(sandbox, ["poke"])
        .arg(&file)
        .args(["1", "x"])
        .obey_file_permissions()
        .section(TASK_5)
        .run();
    expect_error(
        &run,
        "Permission denied",
        "a shared, writable mapping needs a descriptor open for writing: open the file \
         read-write, and report EACCES with context when that is refused",
    );
    grader::assert_transcript!(run);
}

#[test]
fn watch_reports_an_empty_file() {
    let sandbox = Sandbox::new();
    let file = sandbox.write_file("empty", "");
    let run = lab()
        .cmd_in(sandbox, ["watch"])
        .arg(&file)
        .section(TASK_5)
        .run();
    expect_error(
        &run,
        "nothing to watch",
        "view returns Ok(None) for an empty file (mmap of 0 bytes is EINVAL), and the \
         watcher says there is nothing to watch",
    );
    grader::assert_transcript!(run);
}

// ---- TODO 6: counters in anonymous shared memory ------------------------------------

/// Runs `mmap count` with `children`, `rounds` and maybe `--racy`.
fn count(children: u64, rounds: u64, racy: bool) -> Run {
    let mut args = vec![
        "count".to_string(),
        "--children".into(),
        children.to_string(),
        "--rounds".into(),
        rounds.to_string(),
    ];
    if racy {
        args.push("--racy".into());
    }
    lab()
        .cmd(args)
        .section(TASK_6)
        .timeout(TIMEOUT)
        .why_if_timeout(
            "a child never got through the gate, or the parent never reaped one: every \
             child must call gate.pass() exactly once, the parent gate.open(n) once \
             after forking all n, then waitpid for each",
        )
        .run()
}

/// The total the program printed, from `total: T of E (L lost)`.
fn total_of(run: &Run) -> Option<(u64, u64, u64)> {
    let line = run.stdout.lines().find(|l| l.starts_with("total: "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| -> Option<u64> { words.get(i)?.trim_start_matches('(').parse().ok() };
    Some((number(1)?, number(3)?, number(4)?))
}

/// Fails unless exactly one report was printed, with one exact line per child.
fn expect_children(run: &Run, children: u64, rounds: u64) {
    let reports = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("total: "))
        .count();
    if reports != 1 {
        run.fail(
            format!("printed {reports} reports instead of 1"),
            "a child must never return from count: it ends with _exit, or it goes on \
             running the parent's code and prints a report of its own",
        );
    }
    for child in 1..=children {
        let prefix = format!("child {child}: ");
        let counted = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string);
        if counted.as_deref() != Some(rounds.to_string().as_str()) {
            run.fail(
                format!(
                    "child {child}'s counter reads {}, not {rounds}",
                    counted.as_deref().unwrap_or("nothing")
                ),
                "each child's own counter is touched by that child only: it ends at \
                 exactly `rounds`. Less means the child's adds did not reach the parent: \
                 the counters must be in MAP_SHARED | MAP_ANONYMOUS memory mapped before \
                 fork (MAP_PRIVATE gives each child a copy), and read after every child \
                 was reaped",
            );
        }
    }
}

#[test]
fn children_count_exactly_with_fetch_add() {
    let mut vary = Varied::new();
    let (children, rounds) = (vary.between(2, 6), vary.between(10_000, 40_000));
    let run = count(children, rounds, false);
    run.expect_success();
    expect_children(&run, children, rounds);
    let expected = children * rounds;
    if total_of(&run) != Some((expected, expected, 0)) {
        run.fail(
            format!("the total was not exactly {children} × {rounds} = {expected}"),
            "fetch_add is one atomic read-modify-write: with the total in shared memory, \
             every child's adds count. A total of 0 means the mapping was private \
             (MAP_PRIVATE gives each child its own copy after fork)",
        );
    }
}

#[test]
fn a_load_then_store_loses_updates() {
    let mut vary = Varied::new();
    let (children, rounds) = (vary.between(3, 6), vary.between(10_000, 40_000));
    let run = count(children, rounds, true);
    run.expect_success();
    expect_children(&run, children, rounds);
    let expected = children * rounds;
    // In round 1 every child loads the total before any of them stores it
    // (the gate holds them in between): all load 0 and store 1, so at least
    // children - 1 of those updates are lost, whatever happens after.
    let bound = expected - (children - 1);
    match total_of(&run) {
        Some((total, of, lost)) if of == expected && lost == expected - total.min(expected) => {
            if total > bound {
                run.fail(
                    format!(
                        "the total was {total}, more than {bound}: the round-1 updates \
                         were not lost"
                    ),
                    "with --racy, round 1 must load the total, pass the gate, then \
                     store the value plus 1: every child loaded 0 before any stored, so \
                     all but one of those stores are lost",
                );
            }
        }
        _ => run.fail(
            "no line `total: T of E (L lost)` with E = children × rounds and L = E - T",
            "the parent reads the shared total after reaping every child",
        ),
    }
}

#[test]
fn one_child_alone_loses_nothing_even_with_load_then_store() {
    let run = count(1, 1000, true);
    run.expect_success();
    if total_of(&run) != Some((1000, 1000, 0)) {
        run.fail(
            "a single child's load-then-store lost updates",
            "with nobody else storing between its load and its store, a child's \
             increments all count: lost updates need two writers",
        );
    }
    grader::assert_transcript!(run);
}

#[test]
fn count_reports_every_child() {
    let run = count(3, 1000, false);
    run.expect_success();
    expect_children(&run, 3, 1000);
    grader::assert_transcript!(run);
}
