//! Every project file or directory the Rust code names lies inside the source fileset of the
//! Nix build (`nix/source.nix`): a test that `include_str!`s a fixture, opens a policy or runs
//! a script the fileset leaves out passes under cargo and fails in the Nix build sandbox.
//!
//! What the code names is found without knowing how it builds a path: every string literal
//! in a `.rs` file of the workspace (comments and raw strings aside) is resolved against the
//! project root, the file's crate directory and the file's own directory (the bases of
//! `project_root().join(..)`, `env!("CARGO_MANIFEST_DIR")` and `include_str!`), and each one
//! that names an existing file or directory of the project counts. This over-approximates
//! (a literal that happens to name a project path counts even if nothing opens it), which
//! is the safe direction for a coverage check.

use super::eval_file;
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The fileset's list, relative to the project root.
pub const SOURCE_NIX: &str = "nix/source.nix";

/// Directories that are never part of a checkout: build output, virtualenvs, tool caches.
pub const SKIP_DIRS: &[&str] = &[
    "target",
    ".git",
    ".venv",
    ".czero",
    "node_modules",
    ".terraform",
];

/// Where the workspace's Rust sources live.
const RUST_ROOTS: &[&str] = &["crates", "integration", "xtask"];

pub fn check(root: &Path) -> Result<()> {
    let entries = source_entries(root)?;
    let problems = problems(root, &entries)?;
    if !problems.is_empty() {
        bail!("{SOURCE_NIX}:\n{}", problems.join("\n"));
    }
    eprintln!(
        "nix: every project path the Rust code names is in {SOURCE_NIX} ({} entries)",
        entries.len()
    );
    Ok(())
}

/// The entries of `nix/source.nix`.
pub fn source_entries(root: &Path) -> Result<Vec<String>> {
    let json = eval_file(&root.join(SOURCE_NIX))?;
    let list = json
        .as_array()
        .with_context(|| format!("{SOURCE_NIX} is not a list"))?;
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .with_context(|| format!("{SOURCE_NIX}: {v} is not a string"))
        })
        .collect()
}

/// Entries that do not exist, and project paths the code names that no entry covers.
pub fn problems(root: &Path, entries: &[String]) -> Result<Vec<String>> {
    let tree = project_tree(root)?;
    let mut problems = Vec::new();
    for entry in entries {
        if !tree.contains(entry) {
            problems.push(format!(
                "`{entry}` does not exist (lib.fileset.unions would fail)"
            ));
        }
    }
    for (file, literal, path) in named_paths(root, &tree)? {
        let covered = entries
            .iter()
            .any(|e| path == *e || path.starts_with(&format!("{e}/")));
        if !covered {
            problems.push(format!(
                "{file}: \"{literal}\" names {path}, which the Nix build's source leaves out"
            ));
        }
    }
    Ok(problems)
}

/// Every file and directory under `root` (relative, `/`-separated), outside [`SKIP_DIRS`].
fn project_tree(root: &Path) -> Result<BTreeSet<String>> {
    let mut tree = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let listing =
            std::fs::read_dir(&dir).with_context(|| format!("could not list {}", dir.display()))?;
        for entry in listing {
            let entry = entry.with_context(|| format!("could not list {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Also when not a directory: `.git` is a file in a worktree, `.venv` may be a link.
            if SKIP_DIRS.contains(&name.as_str()) {
                continue;
            }
            let path = rel.join(&name);
            let kind = entry
                .file_type()
                .with_context(|| format!("could not stat {}", path.display()))?;
            if kind.is_dir() {
                stack.push(path.clone());
            }
            tree.insert(slash(&path));
        }
    }
    Ok(tree)
}

/// `(file, literal, project path)` for every string literal of the workspace's Rust files
/// that names a path in `tree`.
fn named_paths(root: &Path, tree: &BTreeSet<String>) -> Result<Vec<(String, String, String)>> {
    let mut found = Vec::new();
    for file in tree.iter().filter(|p| {
        p.ends_with(".rs") && RUST_ROOTS.iter().any(|r| p.starts_with(&format!("{r}/")))
    }) {
        let text = std::fs::read_to_string(root.join(file))
            .with_context(|| format!("could not read {file}"))?;
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        let krate = dir
            .ancestors()
            .find(|d| tree.contains(&slash(&d.join("Cargo.toml"))))
            .unwrap_or(Path::new(""));
        for literal in string_literals(&text) {
            if let Some(path) = resolve(&literal, krate, dir, tree) {
                found.push((file.clone(), literal, path));
            }
        }
    }
    Ok(found)
}

/// The project path `literal` names, if any: relative to the root, the crate or the file's
/// directory; with a leading `/`, relative to the crate (`concat!(env!("CARGO_MANIFEST_DIR"),
/// "/fixtures/..")`).
fn resolve(literal: &str, krate: &Path, dir: &Path, tree: &BTreeSet<String>) -> Option<String> {
    if literal.is_empty()
        || literal.len() > 200
        || literal
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | '*' | ':' | '$' | '\\'))
    {
        return None;
    }
    let bases: Vec<(&Path, &str)> = match literal.strip_prefix('/') {
        Some(rest) => vec![(krate, rest)],
        None => vec![(Path::new(""), literal), (krate, literal), (dir, literal)],
    };
    bases.into_iter().find_map(|(base, rel)| {
        let path = normalise(&base.join(rel))?;
        (!path.is_empty() && tree.contains(&path)).then_some(path)
    })
}

/// `a/./b/../c` as `a/c`; None when it climbs out of the project.
fn normalise(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn slash(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The contents of the ordinary string literals (`"..."`, `b"..."`) of Rust source, escapes
/// resolved; comments, raw strings and character literals skipped.
fn string_literals(src: &str) -> Vec<String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        match c {
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                let mut depth = 0;
                while let Some(c) = at(i) {
                    if c == '/' && at(i + 1) == Some('*') {
                        depth += 1;
                        i += 2;
                    } else if c == '*' && at(i + 1) == Some('/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            'r' | 'b'
                if !at(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || p == '_')
                    && raw_start(&chars, i).is_some() =>
            {
                let (hashes, body) = raw_start(&chars, i).unwrap_or((0, i));
                i = body;
                // Up to the closing quote followed by as many `#`.
                while let Some(c) = at(i) {
                    i += 1;
                    if c == '"' && (0..hashes).all(|k| at(i + k) == Some('#')) {
                        i += hashes;
                        break;
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while let Some(c) = at(i) {
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            match at(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('\\') => s.push('\\'),
                                Some('"') => s.push('"'),
                                // Line continuation, unicode and other escapes: mark the
                                // literal as not a path.
                                _ => s.push('\\'),
                            }
                            i += 1;
                        }
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            '\'' => {
                // A character literal ('x', '\n', '\u{..}', '"'), not a lifetime ('a).
                if at(i + 1) == Some('\\') {
                    // Past the quote, the backslash and the escaped character, to the close.
                    i += 3;
                    while at(i).is_some_and(|c| c != '\'') {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == Some('\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// If a raw string starts at `i` (`r"`, `r#"`, `br##"`...): its number of `#` and the index
/// of its first character.
fn raw_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn literals_come_from_code_not_comments_or_raw_strings() {
        let src = r##"
            // include_str!("commented/out.yml")
            /* "block/comment.yml" /* nested "x" */ still "comment" */
            const A: &str = "a/b.yml";
            let c = '"'; let d = '\''; fn f<'a>(x: &'a str) {}
            let py = r#"open("raw/script.py")"#;
            let e = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/e.json");
            let bytes = b"bytes/path";
            let esc = "q\"uote";
        "##;
        assert_eq!(
            string_literals(src),
            [
                "a/b.yml",
                "CARGO_MANIFEST_DIR",
                "/fixtures/e.json",
                "bytes/path",
                "q\"uote"
            ]
        );
    }

    /// A fixture, a policy directory and a script outside the fileset are each reported, with
    /// the file and literal naming them; covering them clears the report.
    #[test]
    fn paths_outside_the_fileset_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Cargo.toml", "[workspace]\n");
        write(root, "crates/a/Cargo.toml", "[package]\n");
        write(
            root,
            "crates/a/src/lib.rs",
            r#"
            const FIXTURE: &str = include_str!("../data/event.json");
            fn policies() -> PathBuf { project_root().join("rules") }
            fn script() -> String { concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/run.py").into() }
            fn temp() -> &'static str { "scratch/out" }
            "#,
        );
        write(root, "crates/a/data/event.json", "{}");
        write(root, "rules/one.yml", "policies: []");
        write(root, "tools/run.py", "");
        write(root, "target/debug/ignored.rs", "\"rules\"");

        let found = problems(root, &["Cargo.toml".into(), "crates".into()]).unwrap();
        assert_eq!(
            found,
            [
                "crates/a/src/lib.rs: \"rules\" names rules, which the Nix build's source leaves out",
                "crates/a/src/lib.rs: \"/../../tools/run.py\" names tools/run.py, which the Nix build's source leaves out",
            ]
        );
        let entries: Vec<String> = ["Cargo.toml", "crates", "rules", "tools"]
            .map(String::from)
            .to_vec();
        assert_eq!(problems(root, &entries).unwrap(), Vec::<String>::new());
        let missing: Vec<String> = ["Cargo.toml", "crates", "rules", "tools", "gone"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            problems(root, &missing).unwrap(),
            ["`gone` does not exist (lib.fileset.unions would fail)"]
        );
    }

    /// The project's own fileset covers everything its code names (policies/, config/,
    /// fixtures, test scripts, the Terraform module, the locks). Needs `nix-instantiate`.
    #[test]
    fn the_project_fileset_covers_what_the_code_names() {
        let root = crate::project_root();
        let entries = source_entries(&root).unwrap();
        for needed in ["policies", "config", "terraform", ".config"] {
            assert!(entries.iter().any(|e| e == needed), "{needed} missing");
        }
        assert_eq!(problems(&root, &entries).unwrap(), Vec::<String>::new());
    }
}
