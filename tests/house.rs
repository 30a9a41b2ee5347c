//! The house's rules, checked (issue 24): no import circle between the files of one crate, no
//! planner or operator function longer than a screenful, no `too_many_arguments` allow in core or
//! the operator, and no README reference to a file item that does not exist. A rule is only a
//! rule if something fails when it is broken.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse(file: &Path) -> syn::File {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("parse {}: {e}", file.display()))
}

/// Every `.rs` file of the tree at `root`, build output and git data left out.
fn source_files(root: &Path) -> Vec<PathBuf> {
    let mut out = rust_files(root);
    out.retain(|f| {
        let rel = f.strip_prefix(root).unwrap_or(f);
        !rel.components().any(|c| {
            let c = c.as_os_str();
            c == "target" || c == ".git" || c == "node_modules"
        })
    });
    out
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read a directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn shown(file: &Path) -> String {
    file.strip_prefix(workspace())
        .unwrap_or(file)
        .display()
        .to_string()
}

/// Whether `attrs` compile the item only for tests (`#[cfg(test)]`, `#[cfg(all(test, …))]`).
fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        if !a.path().is_ident("cfg") {
            return false;
        }
        let tokens = a.meta.require_list().map(|l| l.tokens.to_string());
        tokens.is_ok_and(|t| {
            !t.starts_with("not")
                && t.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| w == "test")
        })
    })
}

// ---------------------------------------------------------------------------------------------
// a. Import circles
// ---------------------------------------------------------------------------------------------

/// One module of a crate: the file it lives in and the names it makes visible.
#[derive(Default)]
struct Module {
    file: PathBuf,
    /// Items defined here (not modules).
    defs: BTreeSet<String>,
    /// Child modules (test modules left out).
    children: BTreeSet<String>,
    /// `use` bindings, public or not (children see a parent's private imports): name -> path as
    /// written.
    bindings: BTreeMap<String, Vec<String>>,
    /// Glob imports: paths as written.
    globs: Vec<Vec<String>>,
}

/// A path one file names: a `use` leaf or an inline `crate::`/`super::`/`self::` path.
struct Reference {
    module: Vec<String>,
    path: Vec<String>,
    line: usize,
}

#[derive(Default)]
struct Crate {
    modules: BTreeMap<Vec<String>, Module>,
    references: Vec<Reference>,
    /// Source lines of each file, to show the lines responsible for a circle.
    lines: BTreeMap<PathBuf, Vec<String>>,
}

/// The leaves of a use tree: (path, binding) where binding is `None` for a glob.
fn use_leaves(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, usize)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let line = n.ident.span().start().line;
            if n.ident == "self" {
                let name = prefix.last().cloned();
                out.push((prefix.clone(), name, line));
            } else {
                let mut path = prefix.clone();
                path.push(n.ident.to_string());
                out.push((path, Some(n.ident.to_string()), line));
            }
        }
        syn::UseTree::Rename(r) => {
            let line = r.ident.span().start().line;
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push((path, Some(r.rename.to_string()), line));
        }
        syn::UseTree::Glob(g) => {
            out.push((prefix.clone(), None, g.star_token.span.start().line));
        }
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_leaves(t, prefix, out);
            }
        }
    }
}

/// Inline paths that start with `crate`, `super` or `self`, outside `use` items, child modules
/// and test-only items.
struct InlinePaths {
    found: Vec<(Vec<String>, usize)>,
}

impl<'ast> Visit<'ast> for InlinePaths {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(_) | syn::Item::Use(_) => return,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Trait(t) => &t.attrs,
            _ => &Vec::new(),
        };
        if !test_only(attrs) {
            visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !test_only(&f.attrs) {
            visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let first = segments.first().map(String::as_str);
        if p.leading_colon.is_none()
            && segments.len() > 1
            && matches!(first, Some("crate" | "super" | "self"))
        {
            let line = p.segments[0].ident.span().start().line;
            self.found.push((segments, line));
        }
        visit::visit_path(self, p);
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

impl Crate {
    /// The crate whose root file is `root` (`lib.rs` or `main.rs`).
    fn load(root: &Path) -> Crate {
        let mut krate = Crate::default();
        krate.load_file(Vec::new(), root);
        krate
    }

    fn load_file(&mut self, module: Vec<String>, file: &Path) {
        let text =
            fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        self.lines.insert(
            file.to_path_buf(),
            text.lines().map(str::to_string).collect(),
        );
        let ast = parse(file);
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let dir = file.parent().expect("a file has a directory");
        let children_dir = if matches!(stem, "lib" | "main" | "mod") {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        };
        self.load_items(module, file, &children_dir, &ast.items);
    }

    fn load_items(&mut self, module: Vec<String>, file: &Path, dir: &Path, items: &[syn::Item]) {
        let mut this = Module {
            file: file.to_path_buf(),
            ..Module::default()
        };
        let mut inline = InlinePaths { found: Vec::new() };
        let mut children = Vec::new();
        for item in items {
            match item {
                syn::Item::Mod(m) if test_only(&m.attrs) => {}
                syn::Item::Mod(m) => {
                    let name = m.ident.to_string();
                    let child_dir = dir.join(&name);
                    match &m.content {
                        Some((_, items)) => {
                            this.children.insert(name.clone());
                            children.push((name, None, child_dir, items.as_slice()));
                        }
                        None => {
                            let flat = dir.join(format!("{name}.rs"));
                            let nested = child_dir.join("mod.rs");
                            let child = if flat.exists() { flat } else { nested };
                            if child.file_name().is_some_and(|n| n == "tests.rs") || !child.exists()
                            {
                                continue;
                            }
                            this.children.insert(name.clone());
                            children.push((name, Some(child), child_dir, &[][..]));
                        }
                    }
                }
                syn::Item::Use(u) if test_only(&u.attrs) => {}
                syn::Item::Use(u) => {
                    let mut leaves = Vec::new();
                    use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
                    for (path, binding, line) in leaves {
                        match binding {
                            Some(name) => {
                                this.bindings.insert(name, path.clone());
                            }
                            None => this.globs.push(path.clone()),
                        }
                        self.references.push(Reference {
                            module: module.clone(),
                            path,
                            line,
                        });
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        this.defs.insert(name);
                    }
                    inline.visit_item(other);
                }
            }
        }
        for (path, line) in inline.found {
            self.references.push(Reference {
                module: module.clone(),
                path,
                line,
            });
        }
        self.modules.insert(module.clone(), this);
        for (name, child_file, child_dir, items) in children {
            let mut child = module.clone();
            child.push(name);
            match child_file {
                Some(f) => self.load_file(child, &f),
                None => self.load_items(child, file, &child_dir, items),
            }
        }
    }

    /// `path` as written in `module`, made absolute; `None` when it leaves the crate.
    fn absolute(&self, module: &[String], path: &[String]) -> Option<Vec<String>> {
        let mut base = module.to_vec();
        let mut rest = path;
        match path.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &path[1..];
            }
            Some("self") => rest = &path[1..],
            Some("super") => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                let m = self.modules.get(module)?;
                let local = m.children.contains(first)
                    || m.defs.contains(first)
                    || m.bindings.contains_key(first);
                if !local {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what the absolute `path` names, following re-exports.
    fn definer(&self, path: &[String], depth: usize) -> Option<PathBuf> {
        if depth > 16 {
            return None;
        }
        let mut here: Vec<String> = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let m = self.modules.get(&here)?;
            if m.children.contains(segment) {
                here.push(segment.clone());
                continue;
            }
            if m.defs.contains(segment) {
                return Some(m.file.clone());
            }
            if let Some(target) = m.bindings.get(segment) {
                let mut target = self.absolute(&here, target)?;
                target.extend(path[i + 1..].iter().cloned());
                return self.definer(&target, depth + 1);
            }
            return m.globs.iter().find_map(|glob| {
                let mut target = self.absolute(&here, glob)?;
                target.extend(path[i..].iter().cloned());
                self.definer(&target, depth + 1)
            });
        }
        self.modules.get(&here).map(|m| m.file.clone())
    }

    /// file -> file it depends on -> the lines responsible.
    fn edges(&self) -> BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<usize>>> {
        let mut edges: BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<usize>>> = BTreeMap::new();
        for r in &self.references {
            let from = &self.modules[&r.module].file;
            let Some(target) = self
                .absolute(&r.module, &r.path)
                .and_then(|p| self.definer(&p, 0))
            else {
                continue;
            };
            if &target != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .insert(r.line);
            }
        }
        edges
    }

    /// Every circle, one message each: the shortest cycle through the component's first file,
    /// then each edge inside the component with its lines.
    fn circles(&self) -> Vec<String> {
        let edges = self.edges();
        let mut out = Vec::new();
        for component in strongly_connected(&edges) {
            if component.len() < 2 {
                continue;
            }
            let start = component.iter().next().expect("a component has a file");
            let cycle = shortest_cycle(&edges, &component, start);
            let names: Vec<String> = cycle.iter().map(|f| shown(f)).collect();
            let mut message = format!("circle: {}\n", names.join(" -> "));
            for from in &component {
                for (to, lines) in edges.get(from).into_iter().flatten() {
                    if !component.contains(to) {
                        continue;
                    }
                    message += &format!("  {} -> {}:\n", shown(from), shown(to));
                    for line in lines {
                        let text = self.lines[from].get(line - 1).map_or("", |l| l.trim());
                        message += &format!("    {}:{line}: {text}\n", shown(from));
                    }
                }
            }
            out.push(message);
        }
        out
    }
}

type Graph = BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<usize>>>;

/// Tarjan's strongly connected components.
fn strongly_connected(edges: &Graph) -> Vec<BTreeSet<PathBuf>> {
    struct State<'a> {
        edges: &'a Graph,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        out: Vec<BTreeSet<PathBuf>>,
    }
    fn connect<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flat_map(|m| m.keys()) {
            if !s.index.contains_key(w) {
                connect(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.clone());
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            connect(&mut s, v);
        }
    }
    s.out
}

/// The shortest path `start -> … -> start` inside `component`.
fn shortest_cycle(edges: &Graph, component: &BTreeSet<PathBuf>, start: &PathBuf) -> Vec<PathBuf> {
    let mut came_from: BTreeMap<&PathBuf, &PathBuf> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
            if !component.contains(w) {
                continue;
            }
            if w == start {
                let mut cycle = vec![v.clone()];
                let mut at = v;
                while let Some(prev) = came_from.get(at) {
                    cycle.push((*prev).clone());
                    at = prev;
                }
                cycle.reverse();
                cycle.push(start.clone());
                return cycle;
            }
            if !came_from.contains_key(w) && w != start {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start.clone()]
}

/// The root file of every crate under crates/ and of the root package.
fn crate_roots() -> Vec<PathBuf> {
    let root = workspace();
    let mut roots = vec![root.join("src/main.rs")];
    let mut crates: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .expect("read crates/")
        .map(|e| e.expect("read crates/ entry").path())
        .collect();
    crates.sort();
    for c in crates {
        for name in ["src/lib.rs", "src/main.rs"] {
            if c.join(name).exists() {
                roots.push(c.join(name));
            }
        }
    }
    roots
}

#[test]
fn no_import_circle_between_files_of_one_crate() {
    let circles: Vec<String> = crate_roots()
        .iter()
        .flat_map(|root| Crate::load(root).circles())
        .collect();
    assert!(
        circles.is_empty(),
        "{} import circle(s) between files of one crate:\n{}",
        circles.len(),
        circles.join("\n")
    );
}

/// The circle checker on a small crate: a real circle is found, a parent that only re-exports
/// its children is not part of one, and test modules are left out.
#[test]
fn the_circle_checker_finds_real_circles_only() {
    let dir = std::env::temp_dir().join(format!("house-circles-{}", std::process::id()));
    let files = [
        ("lib.rs", "mod a;\nmod b;\npub mod parent;\n"),
        ("a.rs", "use crate::b::B;\npub struct A(pub B);\n"),
        (
            "b.rs",
            "pub struct B;\npub fn make() -> crate::a::A { crate::a::A(B) }\n",
        ),
        (
            "parent/mod.rs",
            "mod x;\nmod y;\npub use x::X;\npub use self::y::*;\n",
        ),
        ("parent/x.rs", "use super::Y;\npub struct X(pub Y);\n"),
        (
            "parent/y.rs",
            "pub struct Y;\n#[cfg(test)]\nmod tests {\n    use crate::parent::X;\n}\n",
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().expect("a file has a directory")).expect("create dir");
        fs::write(&path, text).expect("write a file");
    }
    let krate = Crate::load(&dir.join("lib.rs"));
    let circles = krate.circles();
    let edges = krate.edges();
    fs::remove_dir_all(&dir).expect("remove the temporary crate");

    assert_eq!(circles.len(), 1, "{circles:#?}");
    let a = dir.join("a.rs").display().to_string();
    let b = dir.join("b.rs").display().to_string();
    assert!(
        circles[0].contains(&format!("circle: {a} -> {b} -> {a}")),
        "{}",
        circles[0]
    );
    assert!(
        circles[0].contains("a.rs:1: use crate::b::B;"),
        "{}",
        circles[0]
    );
    assert!(circles[0].contains("b.rs:2: pub fn make"), "{}", circles[0]);

    // x.rs imports Y through the parent's glob re-export: it depends on y.rs, not on mod.rs.
    let x = &edges[&dir.join("parent/x.rs")];
    assert_eq!(
        x.keys().collect::<Vec<_>>(),
        [&dir.join("parent/y.rs")],
        "{edges:#?}"
    );
    let parent = &edges[&dir.join("parent/mod.rs")];
    assert_eq!(parent.len(), 2, "{edges:#?}");
    assert!(!edges.contains_key(&dir.join("parent/y.rs")), "{edges:#?}");
}

// ---------------------------------------------------------------------------------------------
// b. Long functions
// ---------------------------------------------------------------------------------------------

const LONGEST_FN: usize = 120;

/// Functions and methods with their line counts, from the `fn` to the closing brace.
struct FnLengths {
    found: Vec<(String, usize, usize)>,
}

impl FnLengths {
    fn measure(&mut self, sig: &syn::Signature, block: &syn::Block) {
        let start = sig.fn_token.span.start().line;
        let end = block.brace_token.span.close().end().line;
        self.found
            .push((sig.ident.to_string(), start, end - start + 1));
    }
}

impl<'ast> Visit<'ast> for FnLengths {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.measure(&f.sig, &f.block);
        visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.measure(&f.sig, &f.block);
        visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.measure(&f.sig, block);
        }
        visit::visit_trait_item_fn(self, f);
    }
}

#[test]
fn no_planner_or_operator_function_is_longer_than_120_lines() {
    let root = workspace();
    let mut long = Vec::new();
    for dir in ["crates/core/src/planner", "crates/operator/src"] {
        for file in rust_files(&root.join(dir)) {
            let mut lengths = FnLengths { found: Vec::new() };
            lengths.visit_file(&parse(&file));
            for (name, line, count) in lengths.found {
                if count > LONGEST_FN {
                    long.push(format!("{}:{line}: fn {name}: {count} lines", shown(&file)));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {LONGEST_FN} lines:\n{}",
        long.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// c. too_many_arguments
// ---------------------------------------------------------------------------------------------

#[test]
fn no_too_many_arguments_allow_in_core_or_the_operator() {
    let root = workspace();
    let mut allows = Vec::new();
    for dir in ["crates/core", "crates/operator"] {
        let mut files = rust_files(&root.join(dir));
        files.push(root.join(dir).join("Cargo.toml"));
        for file in files {
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            for (i, line) in text.lines().enumerate() {
                if line.contains("too_many_arguments") {
                    allows.push(format!("{}:{}: {}", shown(&file), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        allows.is_empty(),
        "too_many_arguments allowed (pass a struct instead):\n{}",
        allows.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// d. README references
// ---------------------------------------------------------------------------------------------

/// Every name a file defines, at any depth: functions (test functions and methods too), types,
/// traits, constants, statics, modules, macros and enum variants.
#[derive(Default)]
struct Names {
    found: BTreeSet<String>,
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if let Some(name) = item_name(item) {
            self.found.insert(name);
        }
        if let syn::Item::Mod(m) = item {
            self.found.insert(m.ident.to_string());
        }
        visit::visit_item(self, item);
    }

    fn visit_variant(&mut self, v: &'ast syn::Variant) {
        self.found.insert(v.ident.to_string());
        visit::visit_variant(self, v);
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let name = match item {
            syn::ImplItem::Fn(f) => Some(&f.sig.ident),
            syn::ImplItem::Const(c) => Some(&c.ident),
            syn::ImplItem::Type(t) => Some(&t.ident),
            _ => None,
        };
        self.found.extend(name.map(ToString::to_string));
        visit::visit_impl_item(self, item);
    }

    fn visit_trait_item(&mut self, item: &'ast syn::TraitItem) {
        let name = match item {
            syn::TraitItem::Fn(f) => Some(&f.sig.ident),
            syn::TraitItem::Const(c) => Some(&c.ident),
            syn::TraitItem::Type(t) => Some(&t.ident),
            _ => None,
        };
        self.found.extend(name.map(ToString::to_string));
        visit::visit_trait_item(self, item);
    }
}

/// The `path.rs::a::b` and bare `path.rs` references inside inline code spans of a Markdown text
/// (fenced blocks left out), with their line numbers.
fn file_references(markdown: &str) -> Vec<(usize, String)> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            prose.push('\n');
            continue;
        }
        if !fenced {
            prose += line;
        }
        prose.push('\n');
    }
    let is_path = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, part) in prose.split('`').enumerate() {
        if i % 2 == 1 {
            let line = prose[..offset].matches('\n').count() + 1;
            let mut from = 0;
            while let Some(at) = part[from..].find(".rs") {
                let dot = from + at;
                if part[dot + 3..].starts_with(|c: char| is_ident(c)) {
                    from = dot + 3;
                    continue;
                }
                let start = part[..dot]
                    .rfind(|c: char| !is_path(c))
                    .map_or(0, |p| p + 1);
                let mut end = dot + 3;
                while part[end..].starts_with("::")
                    && part[end + 2..].starts_with(|c: char| is_ident(c))
                {
                    end += 2;
                    end += part[end..]
                        .find(|c: char| !is_ident(c))
                        .unwrap_or(part.len() - end);
                }
                out.push((line, part[start..end].to_string()));
                from = end;
            }
        }
        offset += part.len() + 1;
    }
    out
}

/// The references of `readmes` that name no file, or an item the file does not define, one
/// message each (README, line, reference, what is missing); and how many references were read.
/// A path with an item is looked up beside its README first, then from `root`; a bare path must
/// be the tail of some `.rs` file under `root`.
fn broken_references(root: &Path, readmes: &[PathBuf]) -> (usize, Vec<String>) {
    let mut names: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut broken = Vec::new();
    let mut checked = 0;
    let sources: Vec<String> = source_files(root)
        .iter()
        .map(|f| format!("/{}", f.strip_prefix(root).unwrap_or(f).display()))
        .collect();
    for readme in readmes {
        let text = fs::read_to_string(readme).expect("read a README");
        let dir = readme.parent().expect("a README has a directory");
        for (line, reference) in file_references(&text) {
            checked += 1;
            let at = format!("{}:{line}: `{reference}`", shown(readme));
            let Some((path, item)) = reference.split_once(".rs::") else {
                // A bare path names a file of the tree, written from any directory down.
                let suffix = format!("/{reference}");
                if !sources.iter().any(|f| f.ends_with(&suffix)) {
                    broken.push(format!("{at}: no file ends with {reference}"));
                }
                continue;
            };
            let path = format!("{path}.rs");
            let name = item.rsplit("::").next().unwrap_or(item);
            let file = [dir.join(&path), root.join(&path)]
                .into_iter()
                .find(|f| f.is_file());
            let Some(file) = file else {
                broken.push(format!("{at}: no file {path}"));
                continue;
            };
            let defined = names.entry(file.clone()).or_insert_with(|| {
                let mut n = Names::default();
                n.visit_file(&parse(&file));
                n.found
            });
            if !defined.contains(name) {
                broken.push(format!("{at}: {path} defines no `{name}`"));
            }
        }
    }
    (checked, broken)
}

#[test]
fn readme_references_resolve() {
    let root = workspace();
    let mut readmes = vec![root.join("README.md")];
    let mut crates: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .expect("read crates/")
        .map(|e| e.expect("read crates/ entry").path().join("README.md"))
        .filter(|p| p.exists())
        .collect();
    crates.sort();
    readmes.extend(crates);

    let (checked, broken) = broken_references(&root, &readmes);
    assert!(
        checked > 0,
        "no `file.rs::name` reference found in the READMEs"
    );
    assert!(
        broken.is_empty(),
        "{} broken README reference(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// The reference checker on a small tree: an item the file defines (a method too) resolves, a
/// missing item and a missing file are both reported with their line.
#[test]
fn the_reference_checker_reports_missing_items_and_files() {
    let dir = std::env::temp_dir().join(format!("house-references-{}", std::process::id()));
    fs::create_dir_all(dir.join("src")).expect("create dir");
    fs::write(
        dir.join("src/a.rs"),
        "pub fn present() {}\npub struct S;\nimpl S {\n    pub fn method(&self) {}\n}\n",
    )
    .expect("write a.rs");
    let readme = dir.join("README.md");
    fs::write(
        &readme,
        "`src/a.rs::present` and `src/a.rs::S::method`\n`src/a.rs::gone`\n`src/b.rs::f`\n\
         `a.rs`, `src/a.rs` and `b.rs`\n",
    )
    .expect("write README.md");
    let (checked, broken) = broken_references(&dir, std::slice::from_ref(&readme));
    fs::remove_dir_all(&dir).expect("remove the temporary tree");

    assert_eq!(checked, 7);
    let readme = readme.display();
    assert_eq!(
        broken,
        [
            format!("{readme}:2: `src/a.rs::gone`: src/a.rs defines no `gone`"),
            format!("{readme}:3: `src/b.rs::f`: no file src/b.rs"),
            format!("{readme}:4: `b.rs`: no file ends with b.rs"),
        ]
    );
}

#[test]
fn readme_references_are_found_in_code_spans_only() {
    let text = "See `a/b.rs::f` and `c.rs::T::m`, not d.rs::g.\n```\n`e.rs::h`\n```\nand `x.rs`, \
                not `y.rsx`.\n";
    assert_eq!(
        file_references(text),
        [
            (1, "a/b.rs::f".to_string()),
            (1, "c.rs::T::m".to_string()),
            (5, "x.rs".to_string())
        ]
    );
}
