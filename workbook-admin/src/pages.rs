//! The student-facing pages of a handout (its README and book): instructor-
//! only passages taken out, links to chapters it does not have made plain
//! text, and a last check that nothing meant for instructors is left and
//! every link leads somewhere.
//!
//! A passage for instructors only is marked in the course's pages as
//!
//! ```markdown
//! <!-- instructor-only -->
//! … text about `cargo workbook verify`, solutions/ …
//! <!-- /instructor-only -->
//! ```
//!
//! and the handout leaves it out, markers included. The course's own book
//! shows it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The marker that opens an instructor-only passage.
pub const OPEN: &str = "<!-- instructor-only -->";
/// The marker that closes it.
pub const CLOSE: &str = "<!-- /instructor-only -->";

/// Words that must not reach a student page: what names the solutions,
/// the instructors' commands and the instructor's guide.
pub const FORBIDDEN: [&str; 10] = [
    "solutions/",
    "workbook verify",
    "workbook mistakes",
    "workbook manifest",
    "workbook handout",
    "workbook gradebook",
    "workbook-admin",
    "](../guide",
    "`guide/",
    "instructor-only",
];

/// `text` without its instructor-only passages; an unclosed marker is an
/// error naming its line.
pub fn strip_instructor_only(text: &str, name: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut inside: Option<usize> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim();
        if trimmed == OPEN {
            if let Some(open) = inside {
                bail!(
                    "{name}, line {}: `{OPEN}` inside the passage opened on line {open}",
                    index + 1
                );
            }
            inside = Some(index + 1);
            continue;
        }
        if trimmed == CLOSE {
            if inside.take().is_none() {
                bail!("{name}, line {}: `{CLOSE}` without `{OPEN}`", index + 1);
            }
            continue;
        }
        // A note for the course's authors on how a generated page is made
        // (`<!-- Written by `cargo workbook mistakes 02 --write` … -->`) names
        // their tools and never renders: the copy goes without it.
        let authors_note = trimmed.starts_with("<!-- Written by ") && trimmed.ends_with("-->");
        if inside.is_none() && !authors_note {
            out.push_str(line);
        }
    }
    if let Some(open) = inside {
        bail!("{name}, line {open}: `{OPEN}` is never closed with `{CLOSE}`");
    }
    // A passage taken out between two blank lines leaves one blank line.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

/// One inline link `[text](target)` of a page: where it is and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Byte range of the whole `[text](target)`.
    pub start: usize,
    pub end: usize,
    /// The text between the brackets.
    pub text: String,
    /// The target, without a title.
    pub target: String,
    /// Line of the `](`.
    pub line: usize,
}

/// The inline links of a markdown page (images included, which start with
/// `![`), outside fenced code blocks.
pub fn links(text: &str) -> Vec<Link> {
    let fenced = fenced_ranges(text);
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut search = 0;
    while let Some(at) = text[search..].find("](") {
        let middle = search + at;
        search = middle + 2;
        if fenced.iter().any(|(a, b)| (*a..*b).contains(&middle)) {
            continue;
        }
        // The matching `[`, counting brackets backwards.
        let mut depth = 0usize;
        let mut open = None;
        for i in (0..middle).rev() {
            match bytes[i] {
                b']' => depth += 1,
                b'[' if depth == 0 => {
                    open = Some(i);
                    break;
                }
                b'[' => depth -= 1,
                b'\n' if i > 0 && bytes[i - 1] == b'\n' => break,
                _ => {}
            }
        }
        let Some(open) = open else {
            continue;
        };
        let Some(close) = text[middle + 2..].find(')') else {
            continue;
        };
        let inner = &text[middle + 2..middle + 2 + close];
        if inner.contains('\n') {
            continue;
        }
        let target = inner.split_whitespace().next().unwrap_or("").to_string();
        let start = if open > 0 && bytes[open - 1] == b'!' {
            open - 1
        } else {
            open
        };
        found.push(Link {
            start,
            end: middle + 2 + close + 1,
            text: text[open + 1..middle].to_string(),
            target,
            line: text[..middle].matches('\n').count() + 1,
        });
    }
    found
}

/// Byte ranges of fenced code blocks (```` ``` ```` or `~~~`).
fn fenced_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut open: Option<(usize, &str)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let fence = if trimmed.starts_with("```") {
            Some("```")
        } else if trimmed.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (open, fence) {
            (None, Some(f)) => open = Some((offset, f)),
            (Some((start, f)), Some(g)) if f == g => {
                ranges.push((start, offset + line.len()));
                open = None;
            }
            _ => {}
        }
        offset += line.len();
    }
    if let Some((start, _)) = open {
        ranges.push((start, text.len()));
    }
    ranges
}

/// True for a link into the repository or book (not a web address, a mail
/// address or an anchor of the same page).
fn is_local(target: &str) -> bool {
    !(target.is_empty()
        || target.starts_with('#')
        || target.contains("://")
        || target.starts_with("mailto:"))
}

/// `text` with every link to a page in `removed` (paths relative to the
/// page's directory) turned into its plain text.
pub fn unlink_removed(text: &str, dir: &Path, removed: &BTreeSet<PathBuf>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for link in links(text) {
        if !is_local(&link.target) {
            continue;
        }
        let path = link.target.split('#').next().unwrap_or("");
        let resolved = workbook::workspace::lexically_normal(&dir.join(path));
        if removed.contains(&resolved) {
            out.push_str(&text[last..link.start]);
            out.push_str(&link.text);
            last = link.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The ids mdBook gives the headings of a page: the heading's text,
/// lowercased, spaces made `-`, everything but letters, digits, `_` and
/// `-` dropped, a repeat suffixed `-1`, `-2` …; `{#id}` sets its own.
pub fn heading_ids(text: &str) -> BTreeSet<String> {
    let fenced = fenced_ranges(text);
    let mut ids = BTreeSet::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if fenced.iter().any(|(a, b)| (*a..*b).contains(&at)) {
            continue;
        }
        let trimmed = line.trim_end();
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || hashes > 6 || !trimmed[hashes..].starts_with(' ') {
            continue;
        }
        let mut content = trimmed[hashes..].trim().to_string();
        let id = if let Some(open) = content.rfind("{#") {
            let explicit = content[open + 2..].trim_end_matches('}').to_string();
            content.truncate(open);
            explicit
        } else {
            id_of(&plain(&content))
        };
        let mut unique = id.clone();
        let mut counter = 1;
        while !ids.insert(unique.clone()) {
            unique = format!("{id}-{counter}");
            counter += 1;
        }
    }
    ids
}

/// Markdown inline text as it reads: code marks and emphasis gone, links
/// reduced to their text.
fn plain(markdown: &str) -> String {
    let mut text = markdown.to_string();
    for link in links(markdown).into_iter().rev() {
        text.replace_range(link.start..link.end, &link.text);
    }
    text.replace(['`', '*'], "")
}

/// mdBook's id for a heading's text.
fn id_of(content: &str) -> String {
    content
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// Everything wrong with the student pages of the copy at `root`: its
/// README and every page of its book. Each problem names the page and line.
pub fn check_student_pages(root: &Path) -> Result<Vec<String>> {
    let mut pages = vec![root.join("README.md")];
    collect_markdown(&root.join("book/src"), &mut pages)?;
    pages.sort();
    let mut problems = Vec::new();
    for page in &pages {
        let text =
            fs::read_to_string(page).with_context(|| format!("cannot read {}", page.display()))?;
        let shown = page
            .strip_prefix(root)
            .unwrap_or(page)
            .display()
            .to_string();
        for (index, line) in text.lines().enumerate() {
            for word in FORBIDDEN {
                if line.contains(word) {
                    problems.push(format!(
                        "{shown}, line {}: `{word}` is for instructors (mark the passage \
                         {OPEN} … {CLOSE} in the course)",
                        index + 1
                    ));
                }
            }
        }
        let dir = page.parent().unwrap_or(root);
        for link in links(&text) {
            if !is_local(&link.target) {
                continue;
            }
            let (path, fragment) = match link.target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (link.target.as_str(), None),
            };
            let file = dir.join(path);
            if !file.exists() {
                problems.push(format!(
                    "{shown}, line {}: the link to `{}` leads nowhere: the copy has no {}",
                    link.line,
                    link.target,
                    file.strip_prefix(root).unwrap_or(&file).display()
                ));
                continue;
            }
            let Some(fragment) = fragment else {
                continue;
            };
            if file.extension().is_some_and(|e| e == "md") {
                let target = fs::read_to_string(&file).unwrap_or_default();
                if !heading_ids(&target).contains(fragment) {
                    problems.push(format!(
                        "{shown}, line {}: the link to `{}` leads nowhere: {} has no heading \
                         `#{fragment}`",
                        link.line,
                        link.target,
                        file.strip_prefix(root).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// Every `.md` under `dir`.
pub fn collect_markdown(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_markdown(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructor_only_passages_are_taken_out() {
        let text = "Students.\n\n<!-- instructor-only -->\nRun `cargo workbook verify`.\n\
                    <!-- /instructor-only -->\n\nMore for students.\n";
        assert_eq!(
            strip_instructor_only(text, "p.md").expect("balanced"),
            "Students.\n\nMore for students.\n"
        );
        let err =
            strip_instructor_only("<!-- instructor-only -->\nx\n", "p.md").expect_err("unclosed");
        assert_eq!(
            err.to_string(),
            "p.md, line 1: `<!-- instructor-only -->` is never closed with `<!-- /instructor-only -->`"
        );
    }

    #[test]
    fn links_are_found_across_lines_but_not_in_code() {
        let text = "See [the\nplan](00-intro.md#the-plan) and ![a](img.png).\n\n\
                    ```text\n[not](a-link.md)\n```\n[web](https://example.com \"title\")\n";
        let found: Vec<(String, String, usize)> = links(text)
            .into_iter()
            .map(|l| (l.text, l.target, l.line))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "the\nplan".to_string(),
                    "00-intro.md#the-plan".to_string(),
                    2
                ),
                ("a".to_string(), "img.png".to_string(), 2),
                ("web".to_string(), "https://example.com".to_string(), 7),
            ]
        );
    }

    #[test]
    fn links_to_removed_pages_become_text() {
        let removed: BTreeSet<PathBuf> = [PathBuf::from("/b/src/07-shm.md")].into();
        let text = "Read [chapter 07](07-shm.md#pitfalls) and [02](02-pipes.md).";
        assert_eq!(
            unlink_removed(text, Path::new("/b/src"), &removed),
            "Read chapter 07 and [02](02-pipes.md)."
        );
    }

    #[test]
    fn heading_ids_follow_mdbook() {
        let ids = heading_ids(
            "# 02 · Pipes (管道)\n## `SIGPIPE` and `EPIPE`\n## Pitfalls\n## Pitfalls\n\
             ## Custom {#mine}\n```\n# not a heading\n```\n",
        );
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(
            ids,
            [
                "02--pipes-管道",
                "mine",
                "pitfalls",
                "pitfalls-1",
                "sigpipe-and-epipe"
            ]
        );
    }
}
