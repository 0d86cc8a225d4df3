//! The drift check: a lab and its reference solution must offer the student
//! the same thing.
//!
//! Whatever the solution shares with the lab is either one file (the CLI in
//! `src/cli.rs`, which the solution includes with `#[path]`) or compared here:
//!
//! * every item of the lab's `src/lib.rs` exists in the solution's with the
//!   same tokens, except that functions compare only their doc comments,
//!   visibility and signature (their bodies differ by design), modules
//!   only their name and visibility (the solution adds `#[path]`), and `use`
//!   items path by path (the solution may group its imports differently);
//! * the solution may add private items, but no public ones;
//! * every function body of the lab contains `todo!`;
//! * both `src/main.rs` include `lib.rs` as `mod lab` and call `lab::cli::main()`;
//! * both `Cargo.toml` declare the same dependencies and the same grading
//!   test target, under the conventional package names;
//! * the `// TODO(N)` markers match the `[[todo]]` tasks of `lab.toml`, and
//!   each task lists in `functions` exactly the functions whose stub body is
//!   `todo!("TODO(N)…")` (methods as `Type::method`): `hint` takes a TODO
//!   as done once none of them is left.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{
    Attribute, Expr, File, ImplItem, Item, Lit, Meta, Signature, Stmt, Type, UseTree, Visibility,
};

use workbook::workspace::{Lab, LabToml, Workspace};

/// One difference, about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The item, e.g. `fn pipe_limits` or `impl Display for Limits: fn fmt`.
    pub item: String,
    /// What is wrong; further lines give details.
    pub problem: String,
}

impl Finding {
    fn new(item: impl Into<String>, problem: impl Into<String>) -> Finding {
        Finding {
            item: item.into(),
            problem: problem.into(),
        }
    }
}

/// Every drift problem of one lab, each a message naming its file and item.
pub fn check_lab(ws: &Workspace, lab: &Lab) -> Vec<String> {
    let lab_dir = ws.lab_dir(lab);
    let sol_dir = ws.solution_dir(lab);
    let mut problems = Vec::new();

    let lab_lib = lab_dir.join("src/lib.rs");
    let sol_lib = sol_dir.join("src/lib.rs");
    let (lab_rel, sol_rel) = (ws.relative(&lab_lib), ws.relative(&sol_lib));
    let lab_src = read(ws, &lab_lib, &mut problems);
    let lab_file = lab_src
        .as_deref()
        .and_then(|src| parse(ws, &lab_lib, src, &mut problems));
    let sol_file =
        read(ws, &sol_lib, &mut problems).and_then(|src| parse(ws, &sol_lib, &src, &mut problems));

    if let Some(lab_file) = &lab_file {
        for f in stub_bodies(lab_file) {
            problems.push(format!("{}: {}: {}", lab_rel.display(), f.item, f.problem));
        }
    }
    if let (Some(lab_file), Some(sol_file)) = (&lab_file, &sol_file) {
        for f in compare_libs(lab_file, sol_file) {
            problems.push(format!(
                "{} vs {}: {}: {}",
                lab_rel.display(),
                sol_rel.display(),
                f.item,
                f.problem
            ));
        }
    }
    if let Some(sol_file) = &sol_file {
        let expected = lab_dir.join("src/cli.rs");
        let shown = ws.relative(&expected);
        if let Err(problem) = cli_path(sol_file, &sol_dir.join("src"), &expected, &shown) {
            problems.push(format!("{}: mod cli: {problem}", sol_rel.display()));
        }
    }
    for dir in [&lab_dir, &sol_dir] {
        let main = dir.join("src/main.rs");
        let file =
            read(ws, &main, &mut problems).and_then(|src| parse(ws, &main, &src, &mut problems));
        if let Some(Err(problem)) = file.map(|file| main_call(&file)) {
            problems.push(format!("{}: {problem}", ws.relative(&main).display()));
        }
    }
    problems.extend(check_manifests(ws, lab));
    if let (Some(src), Some(file)) = (&lab_src, &lab_file) {
        problems.extend(check_lab_toml(ws, lab, src, file));
    }
    problems
}

/// Reads `path`, or records why it cannot.
fn read(ws: &Workspace, path: &Path, problems: &mut Vec<String>) -> Option<String> {
    match fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) => {
            problems.push(format!(
                "{}: cannot read it: {err}",
                ws.relative(path).display()
            ));
            None
        }
    }
}

/// Parses Rust source, or records why it cannot.
fn parse(ws: &Workspace, path: &Path, src: &str, problems: &mut Vec<String>) -> Option<File> {
    match syn::parse_file(src) {
        Ok(file) => Some(file),
        Err(err) => {
            problems.push(format!(
                "{}: does not parse: {err}",
                ws.relative(path).display()
            ));
            None
        }
    }
}

/// Compares two `lib.rs` sources (see [`compare_libs`]) and checks the lab's
/// stubs (see [`stub_bodies`]).
#[cfg(test)]
pub fn compare_sources(lab: &str, solution: &str) -> syn::Result<Vec<Finding>> {
    let lab = syn::parse_file(lab)?;
    let solution = syn::parse_file(solution)?;
    let mut findings = stub_bodies(&lab);
    findings.extend(compare_libs(&lab, &solution));
    Ok(findings)
}

/// What is compared of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// A function: its doc lines and its visibility plus signature.
    Fn {
        docs: Vec<String>,
        signature: String,
    },
    /// A module, or one path a `use` imports: its visibility.
    Visibility(String),
    /// Anything else: all of its tokens.
    Tokens(String),
}

/// An item, or one item of an `impl` block, ready for comparison.
#[derive(Debug, Clone)]
struct Unit {
    /// The shape of the item.
    shape: Shape,
    /// Whether adding it changes what a student can use.
    public: bool,
    /// For a function: whether its body calls `todo!`.
    has_todo: Option<bool>,
}

/// The comparable units of a file, by key, in a stable order.
fn units(file: &File, public_types: &BTreeSet<String>) -> BTreeMap<String, Unit> {
    let mut units = BTreeMap::new();
    for item in &file.items {
        if let Item::Use(u) = item {
            // Imports are compared path by path, so that the solution may
            // group them differently or import more.
            let mut paths = Vec::new();
            use_paths(String::new(), &u.tree, &mut paths);
            for path in paths {
                let path = match u.leading_colon {
                    Some(_) => format!("::{path}"),
                    None => path,
                };
                let unit = Unit {
                    shape: Shape::Visibility(tidy(&u.vis)),
                    public: is_public(&u.vis),
                    has_todo: None,
                };
                units.insert(format!("use {path}"), unit);
            }
        } else if let Item::Impl(imp) = item {
            let self_public = type_name(&imp.self_ty).is_some_and(|n| public_types.contains(&n));
            let header_key = impl_key(imp);
            let mut header = imp.clone();
            header.items.clear();
            units.insert(
                header_key.clone(),
                Unit {
                    shape: Shape::Tokens(tidy(&header)),
                    public: imp.trait_.is_some() && self_public,
                    has_todo: None,
                },
            );
            for inner in &imp.items {
                let (name, unit) = impl_item_unit(inner, self_public);
                units.insert(format!("{header_key}: {name}"), unit);
            }
        } else {
            units.insert(item_key(item), item_unit(item));
        }
    }
    units
}

/// The unit of an item that is not an `impl` block.
fn item_unit(item: &Item) -> Unit {
    match item {
        Item::Fn(f) => fn_unit(&f.attrs, &f.vis, &f.sig, f.block.to_token_stream()),
        Item::Mod(m) => Unit {
            shape: Shape::Visibility(tidy(&m.vis)),
            public: is_public(&m.vis),
            has_todo: None,
        },
        other => Unit {
            shape: Shape::Tokens(tidy(other)),
            public: item_visibility(other).is_some_and(is_public),
            has_todo: None,
        },
    }
}

/// The unit of one item of an `impl` block, with its name.
fn impl_item_unit(item: &ImplItem, self_public: bool) -> (String, Unit) {
    match item {
        ImplItem::Fn(f) => {
            let mut unit = fn_unit(&f.attrs, &f.vis, &f.sig, f.block.to_token_stream());
            unit.public &= self_public;
            (format!("fn {}", f.sig.ident), unit)
        }
        ImplItem::Const(c) => (
            format!("const {}", c.ident),
            token_unit(item, is_public(&c.vis) && self_public),
        ),
        ImplItem::Type(t) => (
            format!("type {}", t.ident),
            token_unit(item, is_public(&t.vis) && self_public),
        ),
        other => (tidy(other), token_unit(other, false)),
    }
}

/// A unit compared by all of its tokens.
fn token_unit(item: &impl ToTokens, public: bool) -> Unit {
    Unit {
        shape: Shape::Tokens(tidy(item)),
        public,
        has_todo: None,
    }
}

/// The unit of a function: docs and signature, and whether it has `todo!`.
fn fn_unit(attrs: &[Attribute], vis: &Visibility, sig: &Signature, body: TokenStream) -> Unit {
    Unit {
        shape: Shape::Fn {
            docs: docs(attrs),
            signature: format!("{} {}", tidy(vis), tidy(sig)).trim().to_string(),
        },
        public: is_public(vis),
        has_todo: Some(calls_todo(body)),
    }
}

/// Compares the lab's `lib.rs` with the solution's.
pub fn compare_libs(lab: &File, solution: &File) -> Vec<Finding> {
    let public_types = public_type_names(lab);
    let lab_units = units(lab, &public_types);
    let sol_units = units(solution, &public_types);
    let mut findings = Vec::new();
    for (key, unit) in &lab_units {
        match sol_units.get(key) {
            None => findings.push(Finding::new(key, "missing from the solution")),
            Some(sol) => findings
                .extend(compare_shapes(&unit.shape, &sol.shape).map(|p| Finding::new(key, p))),
        }
    }
    for (key, unit) in &sol_units {
        if unit.public && !lab_units.contains_key(key) {
            findings.push(Finding::new(
                key,
                "the solution adds this public item, which the lab lacks (add it to the lab, or make it private)",
            ));
        }
    }
    findings
}

/// Every function of the lab must leave its work to the student.
pub fn stub_bodies(lab: &File) -> Vec<Finding> {
    units(lab, &BTreeSet::new())
        .into_iter()
        .filter(|(_, unit)| unit.has_todo == Some(false))
        .map(|(key, _)| {
            Finding::new(
                key,
                "the lab's body has no todo!(): a stub must leave this function to the student",
            )
        })
        .collect()
}

/// What differs between two shapes, if anything.
fn compare_shapes(lab: &Shape, solution: &Shape) -> Option<String> {
    match (lab, solution) {
        (
            Shape::Fn {
                docs: lab_docs,
                signature: lab_sig,
            },
            Shape::Fn {
                docs: sol_docs,
                signature: sol_sig,
            },
        ) => {
            if lab_sig != sol_sig {
                Some(format!(
                    "signature differs\n  lab:      {lab_sig}\n  solution: {sol_sig}"
                ))
            } else if lab_docs != sol_docs {
                Some(doc_difference(lab_docs, sol_docs))
            } else {
                None
            }
        }
        (Shape::Visibility(lab), Shape::Visibility(sol)) => (lab != sol).then(|| {
            let show = |v: &str| {
                if v.is_empty() {
                    "private".to_string()
                } else {
                    format!("`{v}`")
                }
            };
            format!(
                "visibility differs: {} in the lab, {} in the solution",
                show(lab),
                show(sol)
            )
        }),
        (Shape::Tokens(lab), Shape::Tokens(sol)) => (lab != sol).then(|| {
            let (lab, sol) = around_first_difference(lab, sol);
            format!("differs (docs or tokens)\n  lab:      {lab}\n  solution: {sol}")
        }),
        _ => Some("is a different kind of item in the solution".to_string()),
    }
}

/// Says which doc line differs first.
fn doc_difference(lab: &[String], solution: &[String]) -> String {
    let at = lab
        .iter()
        .zip(solution)
        .position(|(a, b)| a != b)
        .unwrap_or(lab.len().min(solution.len()));
    let show = |lines: &[String]| match lines.get(at) {
        Some(line) => format!("{:?}", line.trim()),
        None => "(no more lines)".to_string(),
    };
    format!(
        "doc comment differs at line {}\n  lab:      {}\n  solution: {}",
        at + 1,
        show(lab),
        show(solution)
    )
}

/// Both strings cut to a window around the first character where they differ.
fn around_first_difference(a: &str, b: &str) -> (String, String) {
    const BEFORE: usize = 30;
    const AFTER: usize = 50;
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let window = |s: &[char]| {
        let start = at.saturating_sub(BEFORE);
        let end = (at + AFTER).min(s.len());
        let mut text: String = s[start..end].iter().collect();
        if start > 0 {
            text.insert(0, '…');
        }
        if end < s.len() {
            text.push('…');
        }
        if text.is_empty() {
            "(nothing)".to_string()
        } else {
            text
        }
    };
    (window(&a), window(&b))
}

/// The key under which an item is matched, e.g. `fn pipe_limits`.
fn item_key(item: &Item) -> String {
    match item {
        Item::Fn(f) => format!("fn {}", f.sig.ident),
        Item::Struct(s) => format!("struct {}", s.ident),
        Item::Enum(e) => format!("enum {}", e.ident),
        Item::Union(u) => format!("union {}", u.ident),
        Item::Type(t) => format!("type {}", t.ident),
        Item::Const(c) => format!("const {}", c.ident),
        Item::Static(s) => format!("static {}", s.ident),
        Item::Trait(t) => format!("trait {}", t.ident),
        Item::TraitAlias(t) => format!("trait {}", t.ident),
        Item::Mod(m) => format!("mod {}", m.ident),
        Item::ExternCrate(e) => format!("extern crate {}", e.ident),
        Item::Macro(m) => match &m.ident {
            Some(ident) => format!("macro_rules! {ident}"),
            None => tidy(&m.mac),
        },
        other => tidy(other),
    }
}

/// Every path a `use` tree imports, e.g. `std::io` and `std::io::Write`
/// for `std::io::{self, Write}`.
fn use_paths(prefix: String, tree: &UseTree, out: &mut Vec<String>) {
    let join = |name: String| {
        if name == "self" {
            prefix.trim_end_matches("::").to_string()
        } else {
            format!("{prefix}{name}")
        }
    };
    match tree {
        UseTree::Path(p) => use_paths(format!("{prefix}{}::", p.ident), &p.tree, out),
        UseTree::Name(n) => out.push(join(n.ident.to_string())),
        UseTree::Rename(r) => out.push(format!("{} as {}", join(r.ident.to_string()), r.rename)),
        UseTree::Glob(_) => out.push(format!("{prefix}*")),
        UseTree::Group(g) => {
            for item in &g.items {
                use_paths(prefix.clone(), item, out);
            }
        }
    }
}

/// The key of an `impl` block, e.g. `impl fmt::Display for Limits`.
fn impl_key(imp: &syn::ItemImpl) -> String {
    let generics = tidy(&imp.generics);
    let self_ty = tidy(&imp.self_ty);
    match &imp.trait_ {
        Some((bang, path, _)) => {
            let bang = if bang.is_some() { "!" } else { "" };
            format!("impl{generics} {bang}{} for {self_ty}", tidy(path))
        }
        None => format!("impl{generics} {self_ty}"),
    }
}

/// The visibility of an item that has one.
fn item_visibility(item: &Item) -> Option<&Visibility> {
    match item {
        Item::Const(i) => Some(&i.vis),
        Item::Enum(i) => Some(&i.vis),
        Item::ExternCrate(i) => Some(&i.vis),
        Item::Fn(i) => Some(&i.vis),
        Item::Mod(i) => Some(&i.vis),
        Item::Static(i) => Some(&i.vis),
        Item::Struct(i) => Some(&i.vis),
        Item::Trait(i) => Some(&i.vis),
        Item::TraitAlias(i) => Some(&i.vis),
        Item::Type(i) => Some(&i.vis),
        Item::Union(i) => Some(&i.vis),
        Item::Use(i) => Some(&i.vis),
        _ => None,
    }
}

/// `pub` (not `pub(crate)` or private): part of what a student can use.
fn is_public(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

/// The public types the lab defines, by name.
fn public_type_names(file: &File) -> BTreeSet<String> {
    file.items
        .iter()
        .filter(|item| item_visibility(item).is_some_and(is_public))
        .filter_map(|item| match item {
            Item::Struct(s) => Some(s.ident.to_string()),
            Item::Enum(e) => Some(e.ident.to_string()),
            Item::Union(u) => Some(u.ident.to_string()),
            Item::Type(t) => Some(t.ident.to_string()),
            _ => None,
        })
        .collect()
}

/// The last path segment of a type such as `Limits` or `crate::Limits<T>`.
fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// The text of every `///` or `#[doc = "…"]` attribute, in order.
fn docs(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .map(|attr| match &attr.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(lit) => match &lit.lit {
                    Lit::Str(s) => s.value(),
                    _ => tidy(&nv.value),
                },
                other => tidy(other),
            },
            other => tidy(other),
        })
        .collect()
}

/// True when the tokens contain a `todo!` macro call.
pub fn calls_todo(tokens: TokenStream) -> bool {
    let mut previous_was_todo = false;
    for tree in tokens {
        match &tree {
            TokenTree::Punct(p) if p.as_char() == '!' && previous_was_todo => return true,
            TokenTree::Group(g) if calls_todo(g.stream()) => return true,
            _ => {}
        }
        previous_was_todo = matches!(&tree, TokenTree::Ident(i) if i == "todo");
    }
    false
}

/// Tokens printed for a person: `io :: Result < T >` becomes `io::Result<T>`.
fn tidy(node: &impl ToTokens) -> String {
    let mut text = node.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" : ", ": "),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" ,", ","),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        ("& ", "&"),
        (" ;", ";"),
        ("# [", "#["),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// Checks that `main.rs` is exactly the shipped entry point: the lab's code
/// included as a module (`#[path = "lib.rs"] pub mod lab;`) and
/// `fn main() { lab::cli::main() }`.
pub fn main_call(file: &File) -> Result<(), String> {
    let complaint = || {
        "must be `#[path = \"lib.rs\"] pub mod lab;` and a single call to `lab::cli::main()` \
         inside `fn main`"
            .to_string()
    };
    let [Item::Mod(module), Item::Fn(main)] = file.items.as_slice() else {
        return Err(complaint());
    };
    if module.ident != "lab"
        || module.content.is_some()
        || path_attr(&module.attrs).as_deref() != Some("lib.rs")
    {
        return Err(complaint());
    }
    if main.sig.ident != "main" || !main.sig.inputs.is_empty() {
        return Err(complaint());
    }
    let [stmt] = main.block.stmts.as_slice() else {
        return Err(complaint());
    };
    let Stmt::Expr(Expr::Call(call), _) = stmt else {
        return Err(complaint());
    };
    let Expr::Path(path) = call.func.as_ref() else {
        return Err(complaint());
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if segments.join("::") != "lab::cli::main" || !call.args.is_empty() {
        return Err(complaint());
    }
    Ok(())
}

/// The value of a `#[path = "…"]` attribute among `attrs`, if there is one.
fn path_attr(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Str(s) => Some(s.value()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    })
}

/// Checks that the solution's `mod cli` has a `#[path]` leading to
/// `expected` (the lab's `src/cli.rs`, shown in messages as `shown`),
/// relative to `src_dir`.
pub fn cli_path(
    solution: &File,
    src_dir: &Path,
    expected: &Path,
    shown: &Path,
) -> Result<(), String> {
    let cli = solution.items.iter().find_map(|item| match item {
        Item::Mod(m) if m.ident == "cli" => Some(m),
        _ => None,
    });
    let Some(cli) = cli else {
        return Err("missing: the solution must include the lab's CLI with #[path]".to_string());
    };
    let path = cli.attrs.iter().find_map(|attr| match &attr.meta {
        Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Str(s) => Some(s.value()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    });
    let Some(path) = path else {
        return Err(format!(
            "has no #[path = \"…\"]: it must include {} so that lab and solution share one CLI",
            shown.display()
        ));
    };
    let target = src_dir.join(&path);
    let same = match (fs::canonicalize(&target), fs::canonicalize(expected)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "#[path = \"{path}\"] does not lead to the lab's CLI {}",
            shown.display()
        ))
    }
}

/// Compares the two `Cargo.toml`: conventional names, one shared test
/// target, the same dependencies.
fn check_manifests(ws: &Workspace, lab: &Lab) -> Vec<String> {
    let lab_path = ws.lab_dir(lab).join("Cargo.toml");
    let sol_path = ws.solution_dir(lab).join("Cargo.toml");
    let mut problems = Vec::new();
    let (Some(lab_toml), Some(sol_toml)) = (
        load_table(ws, &lab_path, &mut problems),
        load_table(ws, &sol_path, &mut problems),
    ) else {
        return problems;
    };
    let (lab_rel, sol_rel) = (ws.relative(&lab_path), ws.relative(&sol_path));
    for (rel, table, package) in [
        (&lab_rel, &lab_toml, lab.package().to_string()),
        (&sol_rel, &sol_toml, lab.solution_package()),
    ] {
        let name = table
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str());
        if name != Some(package.as_str()) {
            problems.push(format!(
                "{}: the package must be named `{package}` (the grader runs `cargo test -p {package}`)",
                rel.display()
            ));
        }
    }
    let lab_test = test_target_path(&lab_toml, lab.test_target());
    let sol_test = test_target_path(&sol_toml, lab.test_target());
    for (rel, test) in [(&lab_rel, &lab_test), (&sol_rel, &sol_test)] {
        if test.is_none() {
            problems.push(format!(
                "{}: no [[test]] named `{}` (the grading suite, shared by lab and solution)",
                rel.display(),
                lab.test_target()
            ));
        }
    }
    if let (Some(a), Some(b)) = (&lab_test, &sol_test)
        && a != b
    {
        problems.push(format!(
            "{}: [[test]] `{}` has path {a:?}, but {} has {b:?}: both must run the same suite",
            lab_rel.display(),
            lab.test_target(),
            sol_rel.display()
        ));
    }
    for section in ["dependencies", "dev-dependencies"] {
        for difference in compare_dependencies(&lab_toml, &sol_toml, section) {
            problems.push(format!(
                "{} vs {}: [{section}] {difference}",
                lab_rel.display(),
                sol_rel.display()
            ));
        }
    }
    problems
}

/// Reads and parses a TOML file, or records why it cannot.
fn load_table(ws: &Workspace, path: &Path, problems: &mut Vec<String>) -> Option<toml::Table> {
    let text = read(ws, path, problems)?;
    match text.parse::<toml::Table>() {
        Ok(table) => Some(table),
        Err(err) => {
            problems.push(format!(
                "{}: not valid TOML: {err}",
                ws.relative(path).display()
            ));
            None
        }
    }
}

/// The `path` of the `[[test]]` target called `name` (`""` when it has no
/// explicit path), or `None` when there is no such target.
fn test_target_path(manifest: &toml::Table, name: &str) -> Option<String> {
    let tests = manifest.get("test")?.as_array()?;
    let test = tests
        .iter()
        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))?;
    Some(
        test.get("path")
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string(),
    )
}

/// How one dependency table differs between the two manifests.
fn compare_dependencies(lab: &toml::Table, solution: &toml::Table, section: &str) -> Vec<String> {
    let empty = toml::Table::new();
    let table = |manifest: &toml::Table| {
        manifest
            .get(section)
            .and_then(|t| t.as_table())
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (lab, solution) = (table(lab), table(solution));
    let names: BTreeSet<&String> = lab.keys().chain(solution.keys()).collect();
    let show = |v: &toml::Value| serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"));
    names
        .into_iter()
        .filter_map(|name| match (lab.get(name), solution.get(name)) {
            (Some(_), None) => Some(format!("`{name}` only in the lab")),
            (None, Some(_)) => Some(format!("`{name}` only in the solution")),
            (Some(a), Some(b)) if a != b => Some(format!(
                "`{name}` differs: lab {}, solution {}",
                show(a),
                show(b)
            )),
            _ => None,
        })
        .collect()
}

/// Checks `lab.toml` against the lab's `lib.rs`: the same TODO numbers, the
/// named functions exist, the chapter exists.
fn check_lab_toml(ws: &Workspace, lab: &Lab, lib_src: &str, lib: &File) -> Vec<String> {
    let toml_path = ws.lab_dir(lab).join("lab.toml");
    let lib_rel = ws.relative(&ws.lab_dir(lab).join("src/lib.rs"));
    let toml_rel = ws.relative(&toml_path);
    if !toml_path.is_file() {
        return vec![format!(
            "{}: missing (it names the lab's chapter and has one [[todo]] per // TODO(N))",
            toml_rel.display()
        )];
    }
    let meta = match LabToml::load(&toml_path) {
        Ok(meta) => meta,
        Err(err) => return vec![format!("{}: {}", toml_rel.display(), err.root_cause())],
    };
    let mut problems = Vec::new();
    let markers = todo_markers(lib_src);
    let tasks: BTreeSet<u32> = meta.todo.iter().map(|t| t.number).collect();
    for n in markers.difference(&tasks) {
        problems.push(format!(
            "{}: // TODO({n}) has no [[todo]] number = {n} in {}",
            lib_rel.display(),
            toml_rel.display()
        ));
    }
    for n in tasks.difference(&markers) {
        problems.push(format!(
            "{}: [[todo]] number = {n} has no // TODO({n}) in {}",
            toml_rel.display(),
            lib_rel.display()
        ));
    }
    let todos = function_todos(lib);
    for n in todos.values().flatten().collect::<BTreeSet<_>>() {
        if !tasks.contains(n) {
            problems.push(format!(
                "{}: todo!(\"TODO({n})…\") has no [[todo]] number = {n} in {}",
                lib_rel.display(),
                toml_rel.display()
            ));
        }
    }
    for task in &meta.todo {
        let listed: BTreeSet<&str> = task.functions.iter().map(String::as_str).collect();
        let holding: BTreeSet<&str> = todos
            .iter()
            .filter(|(_, numbers)| numbers.contains(&task.number))
            .map(|(name, _)| name.as_str())
            .collect();
        if listed != holding {
            problems.push(format!(
                "{}: [[todo]] number = {} lists functions = [{}], but the functions whose stub is \
                 todo!(\"TODO({})…\") in {} are [{}] (`hint` moves on once none is left)",
                toml_rel.display(),
                task.number,
                quoted_list(&listed),
                task.number,
                lib_rel.display(),
                quoted_list(&holding)
            ));
        }
    }
    let chapter: PathBuf = ws.root.join(&meta.lab.chapter);
    if !chapter.is_file() {
        problems.push(format!(
            "{}: chapter {} does not exist",
            toml_rel.display(),
            meta.lab.chapter.display()
        ));
    }
    problems
}

/// Every function a file defines (methods as `Type::method`), with the
/// numbers N of the `todo!("TODO(N)…")` calls in its body.
fn function_todos(file: &File) -> BTreeMap<String, BTreeSet<u32>> {
    let mut found = BTreeMap::new();
    for item in &file.items {
        match item {
            Item::Fn(f) => {
                found.insert(
                    f.sig.ident.to_string(),
                    todo_numbers(f.block.to_token_stream()),
                );
            }
            Item::Impl(imp) => {
                let owner = type_name(&imp.self_ty).unwrap_or_default();
                for inner in &imp.items {
                    if let ImplItem::Fn(f) = inner {
                        found.insert(
                            format!("{owner}::{}", f.sig.ident),
                            todo_numbers(f.block.to_token_stream()),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// The numbers N of the `todo!("TODO(N)…")` calls among `tokens`.
pub fn todo_numbers(tokens: TokenStream) -> BTreeSet<u32> {
    let mut numbers = BTreeSet::new();
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        if let TokenTree::Group(group) = tree {
            numbers.extend(todo_numbers(group.stream()));
        }
        let is_call = matches!(tree, TokenTree::Ident(ident) if ident == "todo")
            && matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
        let Some(TokenTree::Group(args)) = trees.get(i + 2).filter(|_| is_call) else {
            continue;
        };
        let Some(TokenTree::Literal(text)) = args.stream().into_iter().next() else {
            continue;
        };
        let text = text.to_string();
        let Some(rest) = text.strip_prefix("\"TODO(") else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if rest[digits.len()..].starts_with(')')
            && let Ok(n) = digits.parse()
        {
            numbers.insert(n);
        }
    }
    numbers
}

/// `"a", "b"`, for a message.
fn quoted_list(names: &BTreeSet<&str>) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    quoted.join(", ")
}

/// The numbers N of every `// TODO(N)` comment in `src`.
pub fn todo_markers(src: &str) -> BTreeSet<u32> {
    let mut numbers = BTreeSet::new();
    for line in src.lines() {
        let Some((_, comment)) = line.split_once("//") else {
            continue;
        };
        let mut rest = comment;
        while let Some(at) = rest.find("TODO(") {
            rest = &rest[at + "TODO(".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if rest[digits.len()..].starts_with(')')
                && let Ok(n) = digits.parse()
            {
                numbers.insert(n);
            }
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = r#"
//! Lab 02: pipes.
use std::io;

pub mod cli;

/// What the kernel says about a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeLimits {
    /// Bytes written atomically.
    pub pipe_buf: usize,
}

/// Asks the kernel for PIPE_BUF.
///
/// Uses fpathconf(2).
pub fn pipe_limits() -> io::Result<PipeLimits> {
    // TODO(1): create a pipe and ask fpathconf.
    todo!("TODO(1): pipe_limits")
}

impl PipeLimits {
    /// Twice the atomic size.
    pub fn twice(&self) -> usize {
        // TODO(2): multiply.
        todo!()
    }
}
"#;

    fn solution(lab: &str) -> String {
        lab.replace(
            "pub mod cli;",
            "#[path = \"../../../labs/02-pipes/src/cli.rs\"]\npub mod cli;",
        )
        .replace(
            "todo!(\"TODO(1): pipe_limits\")",
            "Ok(PipeLimits { pipe_buf: helper() })",
        )
        .replace("todo!()", "self.pipe_buf * 2")
    }

    fn problems(lab: &str, solution: &str) -> Vec<Finding> {
        compare_sources(lab, solution).expect("both parse")
    }

    #[test]
    fn identical_apart_from_bodies_is_fine() {
        let sol = solution(LAB) + "\nfn helper() -> usize { 4096 }\n";
        assert_eq!(problems(LAB, &sol), []);
    }

    #[test]
    fn a_changed_signature_is_reported() {
        let sol = solution(LAB).replace(
            "pub fn pipe_limits() -> io::Result<PipeLimits>",
            "pub fn pipe_limits(fd: i32) -> io::Result<PipeLimits>",
        );
        let found = problems(LAB, &sol);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].item, "fn pipe_limits");
        assert!(
            found[0].problem.starts_with("signature differs"),
            "{found:?}"
        );
        assert!(
            found[0].problem.contains("pub fn pipe_limits(fd: i32)"),
            "{found:?}"
        );
    }

    #[test]
    fn a_changed_doc_comment_is_reported() {
        let sol = solution(LAB).replace("/// Uses fpathconf(2).", "/// Uses sysconf(3).");
        let found = problems(LAB, &sol);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].item, "fn pipe_limits");
        assert!(
            found[0].problem.contains("doc comment differs at line 3"),
            "{found:?}"
        );

        let sol = solution(LAB).replace("/// Bytes written atomically.", "/// Bytes.");
        let found = problems(LAB, &sol);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].item, "struct PipeLimits");
    }

    #[test]
    fn private_helpers_are_allowed_public_additions_are_not() {
        let sol = solution(LAB)
            + "fn helper() -> usize { 4096 }\n\
               struct Guard;\nimpl Drop for Guard { fn drop(&mut self) {} }\n\
               impl PipeLimits { fn private_helper(&self) {} }\n";
        assert_eq!(problems(LAB, &sol), []);

        let sol = solution(LAB) + "fn helper() -> usize { 1 }\npub fn extra() {}\n";
        let found = problems(LAB, &sol);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].item, "fn extra");

        let sol = solution(LAB)
            + "fn helper() -> usize { 1 }\n\
               impl std::fmt::Display for PipeLimits {\n\
               fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { Ok(()) } }\n";
        let found = problems(LAB, &sol);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].item, "impl std::fmt::Display for PipeLimits");
    }

    #[test]
    fn each_function_is_known_with_its_todo_numbers() {
        let file = syn::parse_file(
            "pub fn popen() { todo!(\"TODO(1): popen\") }\n\
             pub fn pclose() { if true { std::todo!(\"TODO(1): pclose\") } }\n\
             impl Coprocess { pub fn ask(&self) { todo!(\"TODO(4): ask\"); todo!(\"TODO(5)\") } }\n\
             fn helper() -> u8 { todo!() }\n",
        )
        .expect("valid Rust");
        let found = function_todos(&file);
        let numbers = |name: &str| found[name].iter().copied().collect::<Vec<u32>>();
        assert_eq!(numbers("popen"), [1]);
        assert_eq!(numbers("pclose"), [1]);
        assert_eq!(numbers("Coprocess::ask"), [4, 5]);
        assert!(numbers("helper").is_empty());
    }

    #[test]
    fn a_missing_todo_is_reported() {
        let lab = LAB.replace("todo!()", "self.pipe_buf * 2");
        let found = problems(&lab, &solution(LAB).replace("helper()", "4096"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].item, "impl PipeLimits: fn twice");
        assert!(found[0].problem.contains("no todo!()"), "{found:?}");
    }

    #[test]
    fn imports_may_be_grouped_differently() {
        let lab = LAB.replace("use std::io;", "use std::io;\nuse std::io::Write as _;");
        let sol = solution(LAB).replace("use std::io;", "use std::io::{Read, Write as _, self};");
        let sol = sol + "fn helper() -> usize { 1 }\n";
        assert_eq!(problems(&lab, &sol), []);
    }

    #[test]
    fn items_missing_from_the_solution_and_module_visibility_are_reported() {
        let sol = solution(LAB)
            .replace("use std::io;", "use std::io::Read;\npub use std::fs;")
            .replace("pub mod cli;", "mod cli;");
        let found = problems(LAB, &(sol + "fn helper() -> usize { 1 }\n"));
        let items: Vec<&str> = found.iter().map(|f| f.item.as_str()).collect();
        assert_eq!(
            items,
            ["mod cli", "use std::io", "use std::fs"],
            "{found:?}"
        );
        assert!(
            found[0]
                .problem
                .contains("`pub` in the lab, private in the solution")
        );
    }

    #[test]
    fn main_must_be_one_call_to_the_cli() {
        let shipped = "//! Doc.\n#[path = \"lib.rs\"]\npub mod lab;\n\nfn main() -> ExitCode {\n    lab::cli::main()\n}\n";
        let ok = syn::parse_file(shipped).expect("parses");
        assert_eq!(main_call(&ok), Ok(()));
        for bad in [
            "fn main() { lab::cli::main() }",
            "#[path = \"lib.rs\"] pub mod lab; fn main() { lab::cli::main(); println!() }",
            "#[path = \"other.rs\"] pub mod lab; fn main() { lab::cli::main() }",
            "#[path = \"lib.rs\"] pub mod lab; fn main() { lab::cli::main(1) }",
            "#[path = \"lib.rs\"] pub mod lab; use lab::cli; fn main() { cli::main() }",
        ] {
            let file = syn::parse_file(bad).expect("parses");
            assert!(main_call(&file).is_err(), "{bad}");
        }
    }

    #[test]
    fn todo_markers_are_collected() {
        let src = "// TODO(1): a\n  // TODO(12) b\nlet x = 1; // see TODO(3)\n\
                   // TODO: no number\n\"TODO(9) in a string\"\n";
        assert_eq!(todo_markers(src), BTreeSet::from([1, 3, 12]));
    }
}
