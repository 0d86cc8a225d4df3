//! A small TOML reader: enough for `lab.toml`, `book.toml` and the tool's
//! own state file, without a parser crate to compile before a student's
//! first `cargo workbook hint`.
//!
//! It reads tables (`[a.b]`), arrays of tables (`[[todo]]`), bare, quoted
//! and dotted keys, basic and literal strings (single- and multi-line, with
//! every TOML escape), integers, booleans, arrays and inline tables.
//! Floats and dates are refused with a clear message: none of the files it
//! reads has one. `cargo workbook verify` reads every `lab.toml` through
//! this module, so a lab.toml it cannot read never reaches a student.

use std::collections::BTreeMap;
use std::fmt;

/// A table: key → value.
pub type Table = BTreeMap<String, Value>;

/// A TOML value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// `true` or `false`.
    Boolean(bool),
    /// An array (also of tables, from `[[name]]`).
    Array(Vec<Value>),
    /// A table (also inline, `{ a = 1 }`).
    Table(Table),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The table, if this is one.
    pub fn as_table(&self) -> Option<&Table> {
        match self {
            Value::Table(table) => Some(table),
            _ => None,
        }
    }

    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Boolean(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// Why a text is not TOML this module reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The line (from 1) where reading stopped.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for Error {}

/// Parses a whole document.
pub fn parse(text: &str) -> Result<Table, Error> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
    };
    parser.document()
}

/// `key` as TOML writes it: bare when it can be, quoted otherwise.
pub fn key(key: &str) -> String {
    if !key.is_empty() && key.chars().all(is_bare_key_char) {
        key.to_string()
    } else {
        quote(key)
    }
}

/// `text` as a TOML basic string.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_bare_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    line: usize,
}

impl Parser {
    fn error<T>(&self, message: impl Into<String>) -> Result<T, Error> {
        Err(Error {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.at + offset).copied()
    }

    fn starts_with(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Spaces and tabs.
    fn blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// A comment up to (not including) the end of the line.
    fn comment(&mut self) {
        if self.peek() == Some('#') {
            while !matches!(self.peek(), None | Some('\n')) {
                self.bump();
            }
        }
    }

    /// Blanks, comments and line breaks (inside arrays, between lines).
    fn space(&mut self) {
        loop {
            self.blanks();
            self.comment();
            match self.peek() {
                Some('\n') => {
                    self.bump();
                }
                Some('\r') if self.peek_at(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }

    /// The rest of a line after a header or a key/value pair: blanks, a
    /// comment, then the line break (or the end).
    fn end_of_line(&mut self) -> Result<(), Error> {
        self.blanks();
        self.comment();
        match self.peek() {
            None => Ok(()),
            Some('\n') => {
                self.bump();
                Ok(())
            }
            Some('\r') if self.peek_at(1) == Some('\n') => {
                self.bump();
                self.bump();
                Ok(())
            }
            Some(c) => self.error(format!("expected the end of the line, found `{c}`")),
        }
    }

    fn document(&mut self) -> Result<Table, Error> {
        let mut root = Table::new();
        let mut current: Vec<String> = Vec::new();
        loop {
            self.space();
            match self.peek() {
                None => return Ok(root),
                Some('[') => {
                    let array = self.peek_at(1) == Some('[');
                    self.bump();
                    if array {
                        self.bump();
                    }
                    self.blanks();
                    let path = self.key_path()?;
                    self.blanks();
                    let close = if array { "]]" } else { "]" };
                    if !self.starts_with(close) {
                        return self.error(format!("expected `{close}` after the table name"));
                    }
                    for _ in 0..close.len() {
                        self.bump();
                    }
                    if array {
                        self.push_table(&mut root, &path)?;
                    } else {
                        self.open_table(&mut root, &path)?;
                    }
                    self.end_of_line()?;
                    current = path;
                }
                Some(_) => {
                    let (path, value) = self.key_value()?;
                    let table = self.table_at(&mut root, &current)?;
                    self.insert(table, &path, value)?;
                    self.end_of_line()?;
                }
            }
        }
    }

    /// `a.b."c d"`: a dotted key.
    fn key_path(&mut self) -> Result<Vec<String>, Error> {
        let mut path = vec![self.simple_key()?];
        loop {
            self.blanks();
            if self.peek() != Some('.') {
                return Ok(path);
            }
            self.bump();
            self.blanks();
            path.push(self.simple_key()?);
        }
    }

    fn simple_key(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some('"') => {
                self.bump();
                self.basic_string()
            }
            Some('\'') => {
                self.bump();
                self.literal_string()
            }
            Some(c) if is_bare_key_char(c) => {
                let mut key = String::new();
                while let Some(c) = self.peek().filter(|c| is_bare_key_char(*c)) {
                    key.push(c);
                    self.bump();
                }
                Ok(key)
            }
            Some(c) => self.error(format!("expected a key, found `{c}`")),
            None => self.error("expected a key, found the end of the file"),
        }
    }

    fn key_value(&mut self) -> Result<(Vec<String>, Value), Error> {
        let path = self.key_path()?;
        self.blanks();
        if self.peek() != Some('=') {
            return self.error(format!("expected `=` after the key `{}`", path.join(".")));
        }
        self.bump();
        self.blanks();
        let value = self.value()?;
        Ok((path, value))
    }

    fn value(&mut self) -> Result<Value, Error> {
        if self.starts_with("\"\"\"") {
            self.at += 3;
            return self.multi_line_basic().map(Value::String);
        }
        if self.starts_with("'''") {
            self.at += 3;
            return self.multi_line_literal().map(Value::String);
        }
        match self.peek() {
            Some('"') => {
                self.bump();
                self.basic_string().map(Value::String)
            }
            Some('\'') => {
                self.bump();
                self.literal_string().map(Value::String)
            }
            Some('[') => {
                self.bump();
                self.array()
            }
            Some('{') => {
                self.bump();
                self.inline_table()
            }
            Some(_) => self.scalar(),
            None => self.error("expected a value, found the end of the file"),
        }
    }

    /// After the opening `"`.
    fn basic_string(&mut self) -> Result<String, Error> {
        let mut out = String::new();
        loop {
            let c = match self.peek() {
                None | Some('\n') => return self.error("a string is not closed on its line"),
                Some(c) => c,
            };
            self.bump();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    /// After the opening `'`.
    fn literal_string(&mut self) -> Result<String, Error> {
        let mut out = String::new();
        loop {
            let c = match self.peek() {
                None | Some('\n') => return self.error("a string is not closed on its line"),
                Some(c) => c,
            };
            self.bump();
            if c == '\'' {
                return Ok(out);
            }
            out.push(c);
        }
    }

    /// After the opening `"""`.
    fn multi_line_basic(&mut self) -> Result<String, Error> {
        self.skip_first_newline();
        let mut out = String::new();
        loop {
            if self.starts_with("\"\"\"") {
                // Up to two more quotes belong to the string.
                let mut quotes = 3;
                while quotes < 5 && self.peek_at(quotes) == Some('"') {
                    quotes += 1;
                }
                for _ in 0..quotes - 3 {
                    out.push('"');
                }
                self.at += quotes;
                return Ok(out);
            }
            match self.bump() {
                None => return self.error("a multi-line string is never closed"),
                Some('\\') => {
                    // A backslash at the end of a line joins the lines.
                    let mut ahead = 0;
                    while matches!(self.peek_at(ahead), Some(' ' | '\t' | '\r')) {
                        ahead += 1;
                    }
                    if self.peek_at(ahead) == Some('\n') {
                        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n')) {
                            self.bump();
                        }
                    } else {
                        out.push(self.escape()?);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// After the opening `'''`.
    fn multi_line_literal(&mut self) -> Result<String, Error> {
        self.skip_first_newline();
        let mut out = String::new();
        loop {
            if self.starts_with("'''") {
                let mut quotes = 3;
                while quotes < 5 && self.peek_at(quotes) == Some('\'') {
                    quotes += 1;
                }
                for _ in 0..quotes - 3 {
                    out.push('\'');
                }
                self.at += quotes;
                return Ok(out);
            }
            match self.bump() {
                None => return self.error("a multi-line string is never closed"),
                Some(c) => out.push(c),
            }
        }
    }

    fn skip_first_newline(&mut self) {
        if self.starts_with("\r\n") {
            self.bump();
            self.bump();
        } else if self.peek() == Some('\n') {
            self.bump();
        }
    }

    /// After a backslash in a basic string.
    fn escape(&mut self) -> Result<char, Error> {
        let c = match self.bump() {
            Some('b') => '\u{8}',
            Some('t') => '\t',
            Some('n') => '\n',
            Some('f') => '\u{c}',
            Some('r') => '\r',
            Some('e') => '\u{1b}',
            Some('"') => '"',
            Some('\\') => '\\',
            Some('x') => self.hex_escape(2)?,
            Some('u') => self.hex_escape(4)?,
            Some('U') => self.hex_escape(8)?,
            Some(c) => return self.error(format!("unknown escape `\\{c}` in a string")),
            None => return self.error("a string ends in a backslash"),
        };
        Ok(c)
    }

    fn hex_escape(&mut self, digits: usize) -> Result<char, Error> {
        let mut code = 0u32;
        for _ in 0..digits {
            let Some(digit) = self.bump().and_then(|c| c.to_digit(16)) else {
                return self.error(format!("expected {digits} hexadecimal digits in an escape"));
            };
            code = code * 16 + digit;
        }
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => self.error(format!("\\u{code:X} is not a character")),
        }
    }

    /// After the opening `[`.
    fn array(&mut self) -> Result<Value, Error> {
        let mut items = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(']') {
                self.bump();
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.space();
            match self.bump() {
                Some(',') => {}
                Some(']') => return Ok(Value::Array(items)),
                Some(c) => {
                    return self.error(format!("expected `,` or `]` in an array, found `{c}`"));
                }
                None => return self.error("an array is never closed"),
            }
        }
    }

    /// After the opening `{`.
    fn inline_table(&mut self) -> Result<Value, Error> {
        let mut table = Table::new();
        loop {
            self.space();
            if self.peek() == Some('}') {
                self.bump();
                return Ok(Value::Table(table));
            }
            let (path, value) = self.key_value()?;
            self.insert(&mut table, &path, value)?;
            self.space();
            match self.bump() {
                Some(',') => {}
                Some('}') => return Ok(Value::Table(table)),
                Some(c) => {
                    return self.error(format!("expected `,` or `}}` in a table, found `{c}`"));
                }
                None => return self.error("an inline table is never closed"),
            }
        }
    }

    /// `true`, `false`, or an integer.
    fn scalar(&mut self) -> Result<Value, Error> {
        let mut word = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.' | ':'))
        {
            word.push(c);
            self.bump();
        }
        match word.as_str() {
            "" => {
                let found = self
                    .peek()
                    .map_or("the end".to_string(), |c| format!("`{c}`"));
                return self.error(format!("expected a value, found {found}"));
            }
            "true" => return Ok(Value::Boolean(true)),
            "false" => return Ok(Value::Boolean(false)),
            _ => {}
        }
        let (negative, digits) = match word.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, word.strip_prefix('+').unwrap_or(&word)),
        };
        let (radix, digits) = match digits.get(..2) {
            Some("0x") => (16, &digits[2..]),
            Some("0o") => (8, &digits[2..]),
            Some("0b") => (2, &digits[2..]),
            _ => (10, digits),
        };
        let clean: String = digits.chars().filter(|c| *c != '_').collect();
        match i64::from_str_radix(&clean, radix) {
            Ok(n) if !clean.is_empty() && !clean.starts_with(['+', '-']) => {
                Ok(Value::Integer(if negative { -n } else { n }))
            }
            _ => self.error(format!(
                "`{word}` is not a string, an integer or a boolean (floats and dates are not read here)"
            )),
        }
    }

    /// The table at `path` from `root`, made if missing; the last element of
    /// an array of tables stands for the array.
    fn table_at<'a>(&self, root: &'a mut Table, path: &[String]) -> Result<&'a mut Table, Error> {
        let mut table = root;
        for (depth, name) in path.iter().enumerate() {
            let entry = table
                .entry(name.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            table = match entry {
                Value::Table(inner) => inner,
                Value::Array(items) => match items.last_mut() {
                    Some(Value::Table(inner)) => inner,
                    _ => {
                        return self.error(format!(
                            "`{}` is an array of values, not of tables",
                            path[..=depth].join(".")
                        ));
                    }
                },
                other => {
                    return self.error(format!(
                        "`{}` is {}, not a table",
                        path[..=depth].join("."),
                        other.kind()
                    ));
                }
            };
        }
        Ok(table)
    }

    /// `[path]`: the table exists afterwards.
    fn open_table(&self, root: &mut Table, path: &[String]) -> Result<(), Error> {
        self.table_at(root, path).map(|_| ())
    }

    /// `[[path]]`: a new table at the end of the array `path`.
    fn push_table(&self, root: &mut Table, path: &[String]) -> Result<(), Error> {
        let (last, parent) = path.split_last().expect("a key path is never empty");
        let parent = self.table_at(root, parent)?;
        let entry = parent
            .entry(last.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        match entry {
            Value::Array(items) if items.iter().all(|v| matches!(v, Value::Table(_))) => {
                items.push(Value::Table(Table::new()));
                Ok(())
            }
            other => self.error(format!(
                "`[[{}]]`: `{}` is already {}",
                path.join("."),
                path.join("."),
                other.kind()
            )),
        }
    }

    /// `a.b = value` into `table`; a key given twice is an error.
    fn insert(&self, table: &mut Table, path: &[String], value: Value) -> Result<(), Error> {
        let (last, parents) = path.split_last().expect("a key path is never empty");
        let table = self.table_at(table, parents)?;
        if table.contains_key(last) {
            return self.error(format!("the key `{}` is given twice", path.join(".")));
        }
        table.insert(last.clone(), value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Value {
        Value::String(s.to_string())
    }

    #[test]
    fn a_lab_toml_is_read() {
        let text = r#"# Lab 02 metadata.

[lab]
title = "Pipes (管道)"   # a comment
chapter = 'book/src/02-pipes.md'

[[todo]]
number = 1
functions = ["pipe_limits"]
summary = "Ask the kernel for \"PIPE_BUF\"\tand more"
hints = [
    "First.",  # why
    'Second: C:\path',
]

[[todo]]
number = 2
functions = ["a", "b",]
hints = []
"#;
        let doc = parse(text).expect("valid");
        let lab = doc["lab"].as_table().expect("a table");
        assert_eq!(lab["title"], string("Pipes (管道)"));
        assert_eq!(lab["chapter"], string("book/src/02-pipes.md"));
        let todos = doc["todo"].as_array().expect("an array");
        assert_eq!(todos.len(), 2);
        let first = todos[0].as_table().expect("a table");
        assert_eq!(first["number"], Value::Integer(1));
        assert_eq!(
            first["summary"],
            string("Ask the kernel for \"PIPE_BUF\"\tand more")
        );
        assert_eq!(
            first["hints"],
            Value::Array(vec![string("First."), string("Second: C:\\path")])
        );
        let second = todos[1].as_table().expect("a table");
        assert_eq!(
            second["functions"],
            Value::Array(vec![string("a"), string("b")])
        );
    }

    #[test]
    fn multi_line_strings_dotted_keys_and_inline_tables() {
        let text = "a.b = \"\"\"\nline one \\\n    joined\nline \"two\"\"\"\"\n\
                    c = '''\nraw \\n'''\n[d.\"e f\"]\ng = { h = true, i.j = -0x1F }\nk = 1_000\n";
        let doc = parse(text).expect("valid");
        assert_eq!(
            doc["a"].as_table().expect("table")["b"],
            string("line one joined\nline \"two\"")
        );
        assert_eq!(doc["c"], string("raw \\n"));
        let d = doc["d"].as_table().expect("table")["e f"]
            .as_table()
            .expect("table");
        let g = d["g"].as_table().expect("table");
        assert_eq!(g["h"], Value::Boolean(true));
        assert_eq!(g["i"].as_table().expect("table")["j"], Value::Integer(-31));
        assert_eq!(d["k"], Value::Integer(1000));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, message) in [
            (
                "a = \"open\nb = 1\n",
                1,
                "a string is not closed on its line",
            ),
            (
                "\n\na = 1.5\n",
                3,
                "`1.5` is not a string, an integer or a boolean",
            ),
            ("a = 1\na = 2\n", 2, "the key `a` is given twice"),
            (
                "[a]\nb = 1 c = 2\n",
                2,
                "expected the end of the line, found `c`",
            ),
            ("x = [1, 2\n", 2, "an array is never closed"),
            ("a = 1\n[a]\n", 2, "`a` is an integer, not a table"),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.starts_with(message), "{text:?}: {err}");
        }
    }

    #[test]
    fn keys_and_strings_are_written_back_readably() {
        assert_eq!(key("02-pipes"), "02-pipes");
        assert_eq!(key("a b"), "\"a b\"");
        assert_eq!(quote("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        let doc = parse(&format!("{} = {}\n", key("k y"), quote("v\"\\\u{1}"))).expect("valid");
        assert_eq!(doc["k y"], string("v\"\\\u{1}"));
    }
}
