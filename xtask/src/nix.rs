//! The Nix checks that run without a working Nix (Debian's `nix-bin` parses `.nix` files and
//! evaluates builtins-only expressions, not nixpkgs): evaluation and builds (`nix flake
//! check`) happen in hosted CI. What code can see is checked here, by `cargo xtask test`:
//!
//! - every `.nix` file parses (`nix-instantiate --parse`);
//! - `flake.lock` pins every input of `flake.nix` (revision, `lastModified`, `narHash`) as
//!   flake.nix declares it (same repository and branch, `flake = false` kept);
//! - every project file or directory the Rust code names lies in the Nix build's source
//!   fileset (`fileset`);
//! - every test binary runs in exactly one place, the Nix build sandbox or the cargo path
//!   (`placement`);
//! - the pins both paths share agree: the Rust toolchain with the workspace's rust-version
//!   and CI's cargo job, the AWS provider with every versions.tf (`pins`).

mod fileset;
mod pins;
mod placement;

use crate::project_root;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Parsing and evaluating plain expressions needs no Nix store: this keeps the checks
/// working where none exists or none is writable (inside a Nix build sandbox).
const STORE: [&str; 2] = ["--store", "dummy://"];

/// Runs every check on the project; called by `cargo xtask test`.
pub fn check() -> Result<()> {
    let root = project_root();
    parse_all(&root)?;

    let lock_path = root.join("flake.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("could not read {}", lock_path.display()))?;
    let inputs = flake_inputs(&root.join("flake.nix"))?;
    let problems = lock_problems(&lock, &inputs);
    if !problems.is_empty() {
        bail!("{}:\n{}", lock_path.display(), problems.join("\n"));
    }
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    eprintln!("nix: flake.lock pins {}", names.join(", "));

    fileset::check(&root)?;
    placement::check(&root)?;
    pins::check(&root)?;
    Ok(())
}

fn parse_all(root: &Path) -> Result<()> {
    let files = nix_files(root)?;
    if files.is_empty() {
        bail!("no .nix files found under {}", root.display());
    }
    let mut failures = Vec::new();
    for file in &files {
        let output = Command::new("nix-instantiate")
            .args(STORE)
            .arg("--parse")
            .arg(file)
            .stdout(Stdio::null())
            .output()
            .context("could not start nix-instantiate (apt-get install nix-bin)")?;
        if !output.status.success() {
            failures.push(format!(
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    if !failures.is_empty() {
        bail!("Nix files that do not parse:\n{}", failures.join("\n"));
    }
    eprintln!("nix: {} files parse", files.len());
    Ok(())
}

/// Every `.nix` file of the project, outside build output and tool caches.
pub fn nix_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("could not list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("could not list {}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let file_type = entry
                .file_type()
                .with_context(|| format!("could not stat {}", path.display()))?;
            if file_type.is_dir() {
                if !fileset::SKIP_DIRS.contains(&name.as_ref()) {
                    stack.push(path);
                }
            } else if name.ends_with(".nix") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Evaluates a builtins-only Nix expression to JSON, with no store.
pub fn eval_json(expr: &str) -> Result<Value> {
    let output = Command::new("nix-instantiate")
        .args(STORE)
        .args(["--eval", "--strict", "--json", "--expr", expr])
        .output()
        .context("could not start nix-instantiate (apt-get install nix-bin)")?;
    if !output.status.success() {
        bail!(
            "nix-instantiate --eval `{expr}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("nix-instantiate --eval `{expr}` printed no JSON"))
}

/// Evaluates a builtins-only `.nix` file to JSON.
pub fn eval_file(file: &Path) -> Result<Value> {
    eval_json(&format!("import {}", file.display()))
        .with_context(|| format!("evaluating {}", file.display()))
}

/// One input of `flake.nix` as declared there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    /// `github:owner/repo` or `github:owner/repo/ref`.
    pub url: String,
    /// False for `flake = false` (a source tree, no flake.nix evaluated).
    pub flake: bool,
}

/// The inputs declared in `flake.nix`, read with `nix-instantiate --eval` (a flake is a
/// plain attribute set, so this needs no nixpkgs).
pub fn flake_inputs(flake: &Path) -> Result<Vec<InputSpec>> {
    let json = eval_json(&format!(
        "builtins.mapAttrs (name: i: {{ url = i.url or null; flake = i.flake or true; }}) (import {}).inputs",
        flake.display()
    ))
    .with_context(|| format!("{}: could not read the inputs", flake.display()))?;
    let inputs = json
        .as_object()
        .with_context(|| format!("{}: inputs are not an attribute set", flake.display()))?;
    inputs
        .iter()
        .map(|(name, spec)| {
            let url = spec["url"]
                .as_str()
                .with_context(|| format!("{}: input `{name}` has no url", flake.display()))?;
            Ok(InputSpec {
                name: name.clone(),
                url: url.to_owned(),
                flake: spec["flake"].as_bool().unwrap_or(true),
            })
        })
        .collect()
}

/// What is wrong with a lock file for a flake with `inputs`; empty when every input is
/// pinned as declared. A locked node needs its fetch type, `narHash` (SRI sha256),
/// `lastModified` and, for GitHub inputs, the full revision; its `original` must be the
/// declared URL (else Nix would re-lock, which CI forbids with --no-update-lock-file) and
/// `flake = false` must be recorded as such.
pub fn lock_problems(lock: &str, inputs: &[InputSpec]) -> Vec<String> {
    let json: Value = match serde_json::from_str(lock) {
        Ok(v) => v,
        Err(e) => return vec![format!("not JSON: {e}")],
    };
    let mut problems = Vec::new();
    if json["version"].as_u64() != Some(7) {
        problems.push(format!("version is {}, expected 7", json["version"]));
    }
    let root_name = json["root"].as_str().unwrap_or("root");
    let nodes = &json["nodes"];
    let root_inputs = &nodes[root_name]["inputs"];
    for input in inputs {
        let name = &input.name;
        match &root_inputs[name] {
            Value::String(node) => problems.extend(
                node_problems(&nodes[node], input)
                    .into_iter()
                    .map(|p| format!("input `{name}` (node `{node}`): {p}")),
            ),
            // `follows` another input: pinned through that one.
            Value::Array(_) => {}
            _ => problems.push(format!("input `{name}` is not in the lock's root node")),
        }
    }
    if let Some(locked) = root_inputs.as_object() {
        for name in locked.keys() {
            if !inputs.iter().any(|i| &i.name == name) {
                problems.push(format!(
                    "the lock pins `{name}`, which flake.nix does not declare"
                ));
            }
        }
    }
    problems
}

fn node_problems(node: &Value, spec: &InputSpec) -> Vec<String> {
    let locked = &node["locked"];
    if !locked.is_object() {
        return vec!["no `locked` entry".to_owned()];
    }
    let mut problems = Vec::new();
    match locked["narHash"].as_str() {
        Some(h) if is_sri_sha256(h) => {}
        Some(h) => problems.push(format!("narHash `{h}` is not an SRI sha256")),
        None => problems.push("no narHash".to_owned()),
    }
    if locked["lastModified"].as_u64().is_none() {
        problems.push("no lastModified".to_owned());
    }
    match locked["type"].as_str() {
        Some("github") => {
            let rev = locked["rev"].as_str().unwrap_or("");
            if rev.len() != 40 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(format!("rev `{rev}` is not a full commit hash"));
            }
            for field in ["owner", "repo"] {
                if locked[field].as_str().is_none() {
                    problems.push(format!("no {field}"));
                }
            }
        }
        Some(_) => {}
        None => problems.push("no type".to_owned()),
    }
    match original_of(&spec.url) {
        Some(expected) if node["original"] == expected => {}
        Some(expected) => problems.push(format!(
            "original is {}, but flake.nix says `{}` ({expected})",
            node["original"], spec.url
        )),
        None => problems.push(format!(
            "url `{}` is not of the form github:owner/repo[/ref]",
            spec.url
        )),
    }
    let locked_as_flake = node["flake"].as_bool().unwrap_or(true);
    if locked_as_flake != spec.flake {
        problems.push(format!(
            "flake.nix says flake = {}, the lock records flake = {locked_as_flake}",
            spec.flake
        ));
    }
    problems
}

/// The lock's `original` entry Nix writes for a `github:` URL.
fn original_of(url: &str) -> Option<Value> {
    let path = url.strip_prefix("github:")?;
    let parts: Vec<&str> = path.split('/').collect();
    let (owner, repo, git_ref) = match parts.as_slice() {
        [owner, repo] => (*owner, *repo, None),
        [owner, repo, git_ref] => (*owner, *repo, Some(*git_ref)),
        _ => return None,
    };
    if owner.is_empty() || repo.is_empty() || git_ref.is_some_and(str::is_empty) {
        return None;
    }
    let mut original = serde_json::json!({"owner": owner, "repo": repo, "type": "github"});
    if let Some(r) = git_ref {
        original["ref"] = r.into();
    }
    Some(original)
}

fn is_sri_sha256(hash: &str) -> bool {
    hash.strip_prefix("sha256-").is_some_and(|b64| {
        b64.len() == 44
            && b64.ends_with('=')
            && b64[..43]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_NODE: &str = r#"{"locked": {"lastModified": 1785631643,
        "narHash": "sha256-H++/2dMt+5+tErKU+t5z6c4Xedvj9w+UPQYrpygwIPw=",
        "owner": "ipetkov", "repo": "crane",
        "rev": "b8d87f76ea4e4b6f30f2e6eaf3fbb60ff7d87167", "type": "github"},
        "original": {"owner": "ipetkov", "repo": "crane", "type": "github"}}"#;

    fn crane(url: &str, flake: bool) -> InputSpec {
        InputSpec {
            name: "crane".into(),
            url: url.into(),
            flake,
        }
    }

    fn lock_with(node: &str) -> String {
        format!(
            r#"{{"nodes": {{"crane": {node}, "root": {{"inputs": {{"crane": "crane"}}}}}},
                "root": "root", "version": 7}}"#
        )
    }

    fn check(node: &str, expected: &[&str]) {
        let problems = lock_problems(&lock_with(node), &[crane("github:ipetkov/crane", true)]);
        assert_eq!(problems, expected, "node: {node}");
    }

    #[test]
    fn lock_node_checks() {
        check(GOOD_NODE, &[]);
        check(
            &GOOD_NODE.replace(
                "sha256-H++/2dMt+5+tErKU+t5z6c4Xedvj9w+UPQYrpygwIPw=",
                "sha256-AAAA",
            ),
            &["input `crane` (node `crane`): narHash `sha256-AAAA` is not an SRI sha256"],
        );
        check(
            &GOOD_NODE.replace("\"narHash\"", "\"narhash\""),
            &["input `crane` (node `crane`): no narHash"],
        );
        check(
            &GOOD_NODE.replace("\"lastModified\"", "\"lastmodified\""),
            &["input `crane` (node `crane`): no lastModified"],
        );
        check(
            &GOOD_NODE.replace("b8d87f76ea4e4b6f30f2e6eaf3fbb60ff7d87167", "b8d87f7"),
            &["input `crane` (node `crane`): rev `b8d87f7` is not a full commit hash"],
        );
        check(
            r#"{"original": {"owner": "ipetkov", "repo": "crane", "type": "github"}}"#,
            &["input `crane` (node `crane`): no `locked` entry"],
        );
    }

    #[test]
    fn an_input_missing_from_the_lock_is_reported() {
        let nixpkgs = InputSpec {
            name: "nixpkgs".into(),
            url: "github:NixOS/nixpkgs/nixos-26.05".into(),
            flake: true,
        };
        let problems = lock_problems(
            &lock_with(GOOD_NODE),
            &[crane("github:ipetkov/crane", true), nixpkgs],
        );
        assert_eq!(problems, ["input `nixpkgs` is not in the lock's root node"]);
        let problems = lock_problems(&lock_with(GOOD_NODE), &[]);
        assert_eq!(
            problems,
            ["the lock pins `crane`, which flake.nix does not declare"]
        );
    }

    /// A lock written for another URL or without `flake = false` is one Nix would rewrite.
    #[test]
    fn the_lock_must_match_what_flake_nix_declares() {
        let problems = lock_problems(
            &lock_with(GOOD_NODE),
            &[crane("github:ipetkov/crane/v0.20", true)],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("flake.nix says `github:ipetkov/crane/v0.20`"));
        let problems = lock_problems(
            &lock_with(GOOD_NODE),
            &[crane("github:ipetkov/crane", false)],
        );
        assert_eq!(
            problems,
            [
                "input `crane` (node `crane`): flake.nix says flake = false, the lock records flake = true"
            ]
        );
        let non_flake = GOOD_NODE.replacen('{', r#"{"flake": false, "#, 1);
        assert_eq!(
            lock_problems(
                &lock_with(&non_flake),
                &[crane("github:ipetkov/crane", false)]
            ),
            Vec::<String>::new()
        );
        let problems = lock_problems(&lock_with(GOOD_NODE), &[crane("path:./crane", true)]);
        assert!(
            problems[0].contains("is not of the form github:"),
            "{problems:?}"
        );
    }

    /// Needs `nix-instantiate` (Debian's `nix-bin`), as `cargo xtask test` does.
    #[test]
    fn project_nix_files_parse_and_lock_pins_every_input() {
        parse_all(&project_root()).unwrap();
        let root = project_root();
        let inputs = flake_inputs(&root.join("flake.nix")).unwrap();
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["crane", "nixpkgs", "rust-overlay"]);
        let lock = std::fs::read_to_string(root.join("flake.lock")).unwrap();
        assert_eq!(lock_problems(&lock, &inputs), Vec::<String>::new());
    }

    /// The Nix builds read the same wheels from both locks as `cargo xtask dist` and the test
    /// virtualenv do (nix/wheels.nix uses builtins only, so it evaluates without nixpkgs).
    #[test]
    fn nix_reads_the_same_wheels_as_xtask() {
        let root = project_root();
        for (lock, from_xtask) in [
            (
                crate::lock::REQUIREMENTS_LOCK,
                crate::lock::read_requirements(&root).unwrap(),
            ),
            (
                crate::lock::MOTO_LOCK,
                crate::lock::read_moto(&root).unwrap(),
            ),
        ] {
            let from_nix = eval_json(&format!(
                "import {} {}",
                root.join("nix/wheels.nix").display(),
                root.join(lock).display()
            ))
            .unwrap();
            let from_nix = from_nix.as_array().unwrap();
            assert_eq!(from_nix.len(), from_xtask.len(), "{lock}");
            for (n, x) in from_nix.iter().zip(&from_xtask) {
                assert_eq!(crate::lock::normalise(n["name"].as_str().unwrap()), x.name);
                assert_eq!(n["version"], x.version.as_str());
                assert_eq!(n["sha256"], x.sha256.as_str());
                assert_eq!(n["url"], x.url.as_str());
            }
        }
    }
}
