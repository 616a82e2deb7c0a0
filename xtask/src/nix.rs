//! The Nix checks that run without a working Nix: every `.nix` file parses
//! (`nix-instantiate --parse`, Debian's `nix-bin`), and `flake.lock` pins every input of
//! `flake.nix` with a revision, `lastModified` and `narHash`. Evaluation and builds
//! (`nix flake check`) happen in hosted CI, where a current Nix runs.

use crate::project_root;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Parsing and evaluating plain expressions needs no Nix store: this keeps the checks
/// working where none exists or none is writable (inside a Nix build sandbox).
const STORE: [&str; 2] = ["--store", "dummy://"];

/// Runs both checks on the project; called by `cargo xtask test`.
pub fn check() -> Result<()> {
    let root = project_root();
    let files = nix_files(&root)?;
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

    let lock_path = root.join("flake.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("could not read {}", lock_path.display()))?;
    let inputs = flake_inputs(&root.join("flake.nix"))?;
    let problems = lock_problems(&lock, &inputs);
    if !problems.is_empty() {
        bail!("{}:\n{}", lock_path.display(), problems.join("\n"));
    }
    eprintln!("nix: flake.lock pins {}", inputs.join(", "));
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
                if !matches!(
                    name.as_ref(),
                    "target" | ".git" | ".venv" | "node_modules" | ".terraform"
                ) {
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

/// The input names declared in `flake.nix`, read with `nix-instantiate --eval` (a flake is a
/// plain attribute set, so this needs no nixpkgs).
pub fn flake_inputs(flake: &Path) -> Result<Vec<String>> {
    let output = Command::new("nix-instantiate")
        .args(STORE)
        .args(["--eval", "--json", "--expr"])
        .arg(format!(
            "builtins.attrNames (import {}).inputs",
            flake.display()
        ))
        .output()
        .context("could not start nix-instantiate (apt-get install nix-bin)")?;
    if !output.status.success() {
        bail!(
            "{}: could not read the inputs: {}",
            flake.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{}: inputs are not a list of names", flake.display()))
}

/// What is wrong with a lock file for a flake with `inputs`; empty when every input is
/// pinned. A locked node needs its fetch type, `narHash` (SRI sha256), `lastModified` and,
/// for GitHub inputs, the full revision.
pub fn lock_problems(lock: &str, inputs: &[String]) -> Vec<String> {
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
        match &root_inputs[input] {
            Value::String(node) => problems.extend(
                node_problems(&nodes[node])
                    .into_iter()
                    .map(|p| format!("input `{input}` (node `{node}`): {p}")),
            ),
            // `follows` another input: pinned through that one.
            Value::Array(_) => {}
            _ => problems.push(format!("input `{input}` is not in the lock's root node")),
        }
    }
    problems
}

fn node_problems(node: &Value) -> Vec<String> {
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
    problems
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

    fn lock_with(node: &str) -> String {
        format!(
            r#"{{"nodes": {{"crane": {node}, "root": {{"inputs": {{"crane": "crane"}}}}}},
                "root": "root", "version": 7}}"#
        )
    }

    fn check(node: &str, expected: &[&str]) {
        let problems = lock_problems(&lock_with(node), &["crane".to_owned()]);
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
        let problems = lock_problems(
            &lock_with(GOOD_NODE),
            &["crane".to_owned(), "nixpkgs".to_owned()],
        );
        assert_eq!(problems, ["input `nixpkgs` is not in the lock's root node"]);
    }

    /// Needs `nix-instantiate` (Debian's `nix-bin`), as `cargo xtask test` does.
    #[test]
    fn project_nix_files_parse_and_lock_pins_every_input() {
        super::check().unwrap();
    }

    /// The Nix build of the full image reads the same wheels from the lock as `cargo xtask
    /// dist` does (nix/wheels.nix uses builtins only, so it evaluates without nixpkgs).
    #[test]
    fn nix_reads_the_same_wheels_as_xtask() {
        let root = project_root();
        let output = Command::new("nix-instantiate")
            .args(STORE)
            .args(["--eval", "--strict", "--json", "--expr"])
            .arg(format!(
                "import {} {}",
                root.join("nix/wheels.nix").display(),
                root.join(crate::lock::REQUIREMENTS_LOCK).display()
            ))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let from_nix: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        let from_xtask = crate::lock::read_requirements(&root).unwrap();
        assert_eq!(from_nix.len(), from_xtask.len());
        for (n, x) in from_nix.iter().zip(&from_xtask) {
            assert_eq!(crate::lock::normalise(n["name"].as_str().unwrap()), x.name);
            assert_eq!(n["version"], x.version.as_str());
            assert_eq!(n["sha256"], x.sha256.as_str());
            assert_eq!(n["url"], x.url.as_str());
        }
    }
}
