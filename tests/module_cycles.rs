//! No import cycles between modules, in either crate.
//!
//! Each source file is a module. A module depends on another when it names a path into it
//! (`crate::a::b`, `super::b`, `mcpguard_core::a` from the binary crate, or a grouped
//! `use crate::{a, b::c}`). A module and its own ancestors or descendants are one unit
//! (`mod tests;` uses `super::*`, a parent re-exports its children), so only edges between
//! modules that are not in one line of descent count. A cycle among the rest is a layering
//! mistake: the test names it, module by module.
//!
//! Run alone: `cargo test --test module_cycles`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A crate's modules: the module path (`["policy", "load"]`) of every `.rs` file below `src`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("below src");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            found.insert(parts, path);
        }
    }
    found
}

/// Every path a file names that starts at `crate::` (or the given external crate name),
/// or `super::`, resolved to an absolute module path (which may run past a module into an
/// item: callers trim it to the longest module).
fn named_paths(text: &str, own: &[String], external: Option<&str>) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !code.is_char_boundary(i) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':'))
        {
            i += 1;
            continue;
        }
        let rest = &code[i..];
        let (base, skip): (Vec<String>, usize) = if rest.starts_with("crate::") {
            (Vec::new(), "crate::".len())
        } else if let Some(name) = external.filter(|n| rest.starts_with(&format!("{n}::"))) {
            (vec![format!("@{name}")], name.len() + 2)
        } else if rest.starts_with("super::") {
            let mut base = own.to_vec();
            let mut at = 0;
            while rest[at..].starts_with("super::") {
                base.pop();
                at += "super::".len();
            }
            (base, at)
        } else {
            i += 1;
            continue;
        };
        let tail = &rest[skip..];
        for path in expand(tail) {
            let mut full = base.clone();
            full.extend(path);
            found.push(full);
        }
        i += skip;
    }
    found
}

/// `a::b::{c, d::e}` → `[a,b,c]`, `[a,b,d,e]`; `a::b` → `[a,b]`. Stops at the first
/// character that cannot continue a path.
fn expand(tail: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = tail;
    loop {
        let ident_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if ident_len == 0 {
            if let Some(inner) = rest.strip_prefix('{') {
                let close = matching_brace(inner);
                return split_top_level(&inner[..close])
                    .into_iter()
                    .flat_map(|part| {
                        expand(part.trim())
                            .into_iter()
                            .map(|p| prefix.iter().cloned().chain(p).collect::<Vec<_>>())
                            .collect::<Vec<_>>()
                    })
                    .collect();
            }
            return vec![prefix];
        }
        prefix.push(rest[..ident_len].to_owned());
        rest = &rest[ident_len..];
        match rest.strip_prefix("::") {
            Some(next) => rest = next,
            None => return vec![prefix],
        }
    }
}

fn matching_brace(inner: &str) -> usize {
    let mut depth = 0usize;
    for (at, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return at,
            '}' => depth -= 1,
            _ => {}
        }
    }
    inner.len()
}

fn split_top_level(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&list[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The longest module that `path` names, or None for `self`/`Self`-style leftovers.
fn owning_module(path: &[String], known: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|candidate| known.contains_key(candidate))
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

type Graph = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

/// One module graph over both crates; the core's modules are prefixed with `@mcpguard_core`.
fn graph() -> Graph {
    let root = Path::new(ROOT);
    let core_prefix = "@mcpguard_core".to_owned();
    let core: BTreeMap<Vec<String>, PathBuf> = modules(&root.join("crates/mcpguard-core/src"))
        .into_iter()
        .map(|(path, file)| {
            let mut full = vec![core_prefix.clone()];
            full.extend(path);
            (full, file)
        })
        .collect();
    let binary = modules(&root.join("src"));
    assert!(core.len() > 50, "the core's modules were not found");
    assert!(
        binary.len() > 20,
        "the binary crate's modules were not found"
    );
    let mut known = core.clone();
    known.extend(binary.clone());

    let mut edges = Graph::new();
    for (module, file, external) in core
        .iter()
        .map(|(m, f)| (m, f, None))
        .chain(binary.iter().map(|(m, f)| (m, f, Some("mcpguard_core"))))
    {
        let text = std::fs::read_to_string(file).expect("read a module");
        let in_core = module.first() == Some(&core_prefix);
        let own: Vec<String> = if in_core {
            module[1..].to_vec()
        } else {
            module.clone()
        };
        let targets = edges.entry(module.clone()).or_default();
        for named in named_paths(&text, &own, external) {
            let absolute = if in_core || named.first().is_some_and(|p| p.starts_with('@')) {
                if named.first() == Some(&core_prefix) {
                    named
                } else {
                    std::iter::once(core_prefix.clone()).chain(named).collect()
                }
            } else {
                named
            };
            if let Some(target) = owning_module(&absolute, &known)
                && !related(&target, module)
            {
                targets.insert(target);
            }
        }
    }
    edges
}

/// The cycles of a graph, one per strongly connected component of two or more modules,
/// each as a walk that starts and ends at the same module.
fn cycles(edges: &Graph) -> Vec<Vec<Vec<String>>> {
    let nodes: Vec<&Vec<String>> = edges.keys().collect();
    let reaches = |from: &Vec<String>, to: &Vec<String>| -> Option<Vec<Vec<String>>> {
        // Breadth-first, so the reported walk is a shortest one.
        let mut previous: BTreeMap<&Vec<String>, &Vec<String>> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            for next in edges.get(at).into_iter().flatten() {
                if next == to {
                    let mut walk = vec![to.clone(), at.clone()];
                    let mut back = at;
                    while let Some(p) = previous.get(back) {
                        walk.push((*p).clone());
                        back = p;
                    }
                    walk.reverse();
                    return Some(walk);
                }
                if !previous.contains_key(next) && next != from {
                    previous.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        None
    };
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut found = Vec::new();
    for node in nodes {
        if reported.contains(node) {
            continue;
        }
        if let Some(walk) = reaches(node, node) {
            reported.extend(walk.iter().cloned());
            found.push(walk);
        }
    }
    found
}

fn show(module: &[String]) -> String {
    match module.first().map(String::as_str) {
        Some("@mcpguard_core") => format!("mcpguard_core::{}", module[1..].join("::")),
        _ if module.is_empty() => "mcpguard".to_owned(),
        _ => format!("mcpguard::{}", module.join("::")),
    }
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let edges = graph();
    let found = cycles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|walk| walk.iter().map(|m| show(m)).collect::<Vec<_>>().join(" → "))
        .collect();
    assert!(
        described.is_empty(),
        "import cycles:\n{}",
        described.join("\n")
    );
}

#[test]
fn the_core_never_names_the_binary_crate() {
    let edges = graph();
    let leaks: Vec<String> = edges
        .iter()
        .filter(|(from, _)| from.first().is_some_and(|p| p == "@mcpguard_core"))
        .flat_map(|(from, to)| {
            to.iter()
                .filter(|t| t.first().is_none_or(|p| p != "@mcpguard_core"))
                .map(move |t| format!("{} → {}", show(from), show(t)))
        })
        .collect();
    assert!(leaks.is_empty(), "the core reaches up: {leaks:?}");
}

/// The checker itself: a planted cycle is found, with its walk, and a chain is not.
#[test]
fn the_checker_finds_a_planted_cycle_and_passes_a_chain() {
    let m = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    let mut edges = Graph::new();
    edges.entry(m("a")).or_default().insert(m("b"));
    edges.entry(m("b")).or_default().insert(m("c"));
    edges.entry(m("c")).or_default();
    assert!(cycles(&edges).is_empty());
    edges.entry(m("c")).or_default().insert(m("a"));
    let found = cycles(&edges);
    assert_eq!(found, vec![vec![m("a"), m("b"), m("c"), m("a")]]);
}

#[test]
fn paths_are_read_from_plain_grouped_and_relative_uses() {
    let own = vec!["engine".to_owned(), "tests".to_owned()];
    let text = "use crate::{policy::{self, Policy}, pss::Level};\n\
                use super::super::harden;\n\
                // crate::commented::out\n\
                let x = mcpguard_core::rules::check(y);\n";
    let found = named_paths(text, &own, Some("mcpguard_core"));
    let as_text: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        as_text,
        vec![
            "policy::self",
            "policy::Policy",
            "pss::Level",
            "harden",
            "@mcpguard_core::rules::check"
        ]
    );
}
