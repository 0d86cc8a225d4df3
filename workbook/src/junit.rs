//! `grade --junit FILE`: the grades as JUnit XML, the test report format
//! that CI services and learning platforms read.
//!
//! One `<testsuite>` per lab, one `<testcase>` per graded test, a
//! `<failure>` with the grader's message for each failing test:
//!
//! ```xml
//! <testsuites name="workbook" tests="9" failures="6" errors="0">
//!   <testsuite name="02-pipes" tests="9" failures="6" errors="0" skipped="0">
//!     <properties><property name="state" value="in-progress"/>…</properties>
//!     <testcase classname="02-pipes" name="limits_reports_pipe_buf_and_capacity"/>
//!     <testcase classname="02-pipes" name="child_counts_what_the_parent_sends">
//!       <failure message="first line of the message">the whole message</failure>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! A lab that does not compile gets one `<testcase name="build">` with an
//! `<error>`; tests announced but never reported (the test binary crashed)
//! get one `<error>` test case too, so the totals stay honest. A lab whose
//! grading files were changed is failed whole: every one of its test
//! cases is a `<failure>` whose message gives the reason (`grade void: …`),
//! passing ones included, and its properties say so (`tamper`).

use crate::grade::{LabGrade, State};
use crate::manifest::Tamper;

/// The whole report, as XML text.
pub fn report(grades: &[LabGrade], tamper: &Tamper) -> String {
    let suites: Vec<Suite> = grades.iter().map(Suite::from).collect();
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(Suite::failures).sum();
    let errors: usize = suites.iter().map(Suite::errors).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"workbook\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n"
    ));
    let as_shipped = match tamper {
        Tamper::AsShipped => "true",
        Tamper::Differ(_) => "false",
        Tamper::NoManifest | Tamper::Unknown(_) => "unknown",
    };
    let as_shipped = |grade: &LabGrade| {
        if grade.tamper.is_some() {
            "false"
        } else {
            as_shipped
        }
    };
    for (suite, grade) in suites.iter().zip(grades) {
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\">\n",
            escape(&grade.lab),
            suite.cases.len(),
            suite.failures(),
            suite.errors()
        ));
        xml.push_str("    <properties>\n");
        let earned = grade.points.earned.to_string();
        let possible = grade.points.possible.to_string();
        let mut properties = vec![
            ("title", grade.title.as_str()),
            ("package", grade.package.as_str()),
            ("state", grade.state.name()),
            ("grading-files-as-shipped", as_shipped(grade)),
            ("points-earned", earned.as_str()),
            ("points-possible", possible.as_str()),
        ];
        if let Some(reason) = &grade.tamper {
            properties.push(("tamper", reason.as_str()));
        }
        for (name, value) in properties {
            xml.push_str(&format!(
                "      <property name=\"{name}\" value=\"{}\"/>\n",
                escape(value)
            ));
        }
        xml.push_str("    </properties>\n");
        for case in &suite.cases {
            xml.push_str(&case.to_xml(&grade.lab));
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// One lab's test cases.
struct Suite {
    cases: Vec<Case>,
}

impl Suite {
    fn from(grade: &LabGrade) -> Suite {
        let mut cases = Vec::new();
        if grade.state == State::DoesNotCompile {
            cases.push(Case {
                name: "build".to_string(),
                verdict: Verdict::Error(
                    grade
                        .error
                        .clone()
                        .unwrap_or_else(|| "the lab does not compile".to_string()),
                ),
            });
            return Suite { cases };
        }
        for test in &grade.tests {
            let verdict = if let Some(reason) = &grade.tamper {
                Verdict::Failure(format!("grade void: {reason}"))
            } else if test.passed {
                Verdict::Passed
            } else {
                Verdict::Failure(
                    test.message
                        .clone()
                        .unwrap_or_else(|| "the test failed without a message".to_string()),
                )
            };
            cases.push(Case {
                name: test.name.clone(),
                verdict,
            });
        }
        let unreported = grade.total.saturating_sub(grade.tests.len());
        if unreported > 0 {
            cases.push(Case {
                name: "unreported tests".to_string(),
                verdict: Verdict::Error(format!(
                    "{unreported} tests never reported a result: the test binary crashed"
                )),
            });
        }
        Suite { cases }
    }

    fn failures(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Failure(_)))
            .count()
    }

    fn errors(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Error(_)))
            .count()
    }
}

/// One `<testcase>`.
struct Case {
    name: String,
    verdict: Verdict,
}

/// How a test case ended.
enum Verdict {
    Passed,
    /// A test that ran and failed: its message.
    Failure(String),
    /// Something that kept tests from running: why.
    Error(String),
}

impl Case {
    fn to_xml(&self, classname: &str) -> String {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(classname),
            escape(&self.name)
        );
        let (tag, message) = match &self.verdict {
            Verdict::Passed => return format!("{open}/>\n"),
            Verdict::Failure(message) => ("failure", message),
            Verdict::Error(message) => ("error", message),
        };
        let first = message.lines().next().unwrap_or("").trim();
        format!(
            "{open}>\n      <{tag} message=\"{}\">{}</{tag}>\n    </testcase>\n",
            escape(first),
            escape_text(message)
        )
    }
}

/// `text` made safe for an XML element's content: line breaks stay as
/// they are, for people reading the report.
fn escape_text(text: &str) -> String {
    escape(text).replace("&#10;", "\n").replace("&#9;", "\t")
}

/// `text` made safe for XML attribute values (and text). Control characters
/// that XML 1.0 forbids (a test may print anything) become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::TestGrade;

    fn grade(state: State, tests: Vec<TestGrade>, total: usize) -> LabGrade {
        LabGrade {
            lab: "02-pipes".to_string(),
            title: "Pipes (管道)".to_string(),
            package: "pipes".to_string(),
            passed: tests.iter().filter(|t| t.passed).count(),
            total,
            state,
            error: None,
            tamper: None,
            tests,
            tasks: Vec::new(),
            points: Default::default(),
        }
    }

    fn test(name: &str, message: Option<&str>) -> TestGrade {
        TestGrade {
            name: name.to_string(),
            passed: message.is_none(),
            message: message.map(str::to_string),
            task: None,
            points: None,
        }
    }

    #[test]
    fn failures_carry_the_graders_message() {
        let tests = vec![
            test("a", None),
            test("b", Some("no EOF: close <the> \"write\" end\nwhy: & more")),
        ];
        let xml = report(&[grade(State::InProgress, tests, 2)], &Tamper::AsShipped);
        assert!(
            xml.contains(r#"<testsuites name="workbook" tests="2" failures="1" errors="0">"#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<testsuite name="02-pipes" tests="2" failures="1" errors="0" skipped="0">"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"<testcase classname="02-pipes" name="a"/>"#));
        assert!(xml.contains(
            "<failure message=\"no EOF: close &lt;the&gt; &quot;write&quot; end\">no EOF: close &lt;the&gt; &quot;write&quot; end\nwhy: &amp; more</failure>"
        ), "{xml}");
        assert!(xml.contains(r#"<property name="title" value="Pipes (管道)"/>"#));
        assert!(xml.contains(r#"<property name="grading-files-as-shipped" value="true"/>"#));
    }

    #[test]
    fn a_build_failure_and_a_crash_are_errors() {
        let mut broken = grade(State::DoesNotCompile, Vec::new(), 0);
        broken.error = Some("error[E0425]: cannot find value `fds`".to_string());
        let crashed = grade(State::InProgress, vec![test("a", None)], 3);
        let xml = report(&[broken, crashed], &Tamper::NoManifest);
        assert!(
            xml.contains(r#"tests="3" failures="0" errors="2""#),
            "{xml}"
        );
        assert!(xml.contains(
            r#"<testcase classname="02-pipes" name="build">
      <error message="error[E0425]: cannot find value `fds`">"#
        ));
        assert!(xml.contains("2 tests never reported a result"), "{xml}");
        assert!(xml.contains(r#"value="unknown""#));
    }

    #[test]
    fn a_lab_whose_grading_files_changed_fails_whole_with_the_reason() {
        let mut void = grade(State::Tampered, vec![test("a", None)], 1);
        void.tamper = Some("tests/snapshots/pipes__a.snap: changed".to_string());
        let xml = report(&[void], &Tamper::AsShipped);
        assert!(
            xml.contains(r#"tests="1" failures="1" errors="0""#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<failure message="grade void: tests/snapshots/pipes__a.snap: changed">"#
            )
        );
        assert!(xml.contains(r#"<property name="grading-files-as-shipped" value="false"/>"#));
        assert!(xml.contains(r#"<property name="state" value="tampered"/>"#));
    }

    #[test]
    fn control_characters_cannot_break_the_xml() {
        assert_eq!(escape("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
        assert_eq!(escape("it's"), "it&apos;s");
    }
}
