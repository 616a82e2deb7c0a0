//! Every test binary runs in exactly one place: in the Nix build sandbox (`nix flake check`,
//! the nextest profile `nix-sandbox`) or on the cargo path only (`cargo-only`; Docker,
//! Terraform with a provider mirror, checkov). Both profiles are in `.config/nextest.toml`;
//! their filters are unions of `package(=NAME)` and `binary_id(=ID)`, which this module reads
//! without nextest. The binaries come from `cargo metadata`, named as nextest names them.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

pub const NEXTEST_CONFIG: &str = ".config/nextest.toml";
pub const SANDBOX_PROFILE: &str = "nix-sandbox";
pub const CARGO_ONLY_PROFILE: &str = "cargo-only";
/// The Nix check that must run the sandbox profile.
pub const CHECKS_NIX: &str = "nix/checks.nix";

/// A test binary as nextest identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// `package` (library), `package::name` (integration test), `package::bin/name`.
    pub id: String,
    pub package: String,
}

/// One term of a filter union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Package(String),
    BinaryId(String),
}

impl Term {
    fn matches(&self, b: &Binary) -> bool {
        match self {
            Term::Package(p) => *p == b.package,
            Term::BinaryId(id) => *id == b.id,
        }
    }
}

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Term::Package(p) => write!(f, "package(={p})"),
            Term::BinaryId(id) => write!(f, "binary_id(={id})"),
        }
    }
}

pub fn check(root: &Path) -> Result<()> {
    let path = root.join(NEXTEST_CONFIG);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let sandbox = profile_filter(&text, SANDBOX_PROFILE).context(NEXTEST_CONFIG)?;
    let cargo_only = profile_filter(&text, CARGO_ONLY_PROFILE).context(NEXTEST_CONFIG)?;
    let binaries = binaries(root)?;
    let mut problems = problems(&binaries, &sandbox, &cargo_only);
    let checks = std::fs::read_to_string(root.join(CHECKS_NIX))
        .with_context(|| format!("could not read {CHECKS_NIX}"))?;
    if !checks.contains(&format!("--profile {SANDBOX_PROFILE}")) {
        problems.push(format!(
            "{CHECKS_NIX} does not run nextest with --profile {SANDBOX_PROFILE}"
        ));
    }
    if !problems.is_empty() {
        bail!("{NEXTEST_CONFIG}:\n{}", problems.join("\n"));
    }
    let in_sandbox = binaries
        .iter()
        .filter(|b| sandbox.iter().any(|t| t.matches(b)))
        .count();
    eprintln!(
        "nix: {} test binaries: {in_sandbox} run in the Nix sandbox, {} on the cargo path only",
        binaries.len(),
        binaries.len() - in_sandbox
    );
    Ok(())
}

/// Binaries in neither profile or in both, and terms that match no binary (a renamed test).
pub fn problems(binaries: &[Binary], sandbox: &[Term], cargo_only: &[Term]) -> Vec<String> {
    let mut problems = Vec::new();
    for b in binaries {
        let here = sandbox.iter().any(|t| t.matches(b));
        let there = cargo_only.iter().any(|t| t.matches(b));
        match (here, there) {
            (true, true) => problems.push(format!(
                "{} is in both `{SANDBOX_PROFILE}` and `{CARGO_ONLY_PROFILE}`",
                b.id
            )),
            (false, false) => problems.push(format!(
                "{} runs nowhere under Nix: add it to `{SANDBOX_PROFILE}` or `{CARGO_ONLY_PROFILE}`",
                b.id
            )),
            _ => {}
        }
    }
    for (profile, terms) in [(SANDBOX_PROFILE, sandbox), (CARGO_ONLY_PROFILE, cargo_only)] {
        for t in terms {
            if !binaries.iter().any(|b| t.matches(b)) {
                problems.push(format!("`{profile}`: {t} matches no test binary"));
            }
        }
    }
    problems
}

/// The terms of `[profile.<profile>] default-filter`.
pub fn profile_filter(config: &str, profile: &str) -> Result<Vec<Term>> {
    let table: toml::Table = config.parse().context("not TOML")?;
    let filter = table
        .get("profile")
        .and_then(|p| p.get(profile))
        .and_then(|p| p.get("default-filter"))
        .and_then(toml::Value::as_str)
        .with_context(|| format!("no [profile.{profile}] default-filter"))?;
    parse_filter(filter).with_context(|| format!("[profile.{profile}] default-filter"))
}

/// `package(=a) | binary_id(=a::b) | ...`; anything else is an error, so that a filter this
/// check cannot follow is not silently half-read.
pub fn parse_filter(filter: &str) -> Result<Vec<Term>> {
    let mut terms = Vec::new();
    for raw in filter.split('|') {
        let term = raw.trim();
        let parsed = if let Some(arg) = term
            .strip_prefix("package(=")
            .and_then(|t| t.strip_suffix(')'))
        {
            Term::Package(arg.to_owned())
        } else if let Some(arg) = term
            .strip_prefix("binary_id(=")
            .and_then(|t| t.strip_suffix(')'))
        {
            Term::BinaryId(arg.to_owned())
        } else {
            bail!("`{term}` is not package(=NAME) or binary_id(=ID)");
        };
        let name = match &parsed {
            Term::Package(n) | Term::BinaryId(n) => n,
        };
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || "()|&!".contains(c)) {
            bail!("`{term}` names nothing this check can match");
        }
        terms.push(parsed);
    }
    Ok(terms)
}

/// The workspace's test binaries, from `cargo metadata` (no dependencies resolved, offline).
pub fn binaries(root: &Path) -> Result<Vec<Binary>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let metadata: Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")?;
    binaries_from_metadata(&metadata)
}

/// Nextest's binary ids for the targets `cargo test` would run: libraries as the package
/// name, binaries as `package::bin/name`, integration tests as `package::name`; examples
/// and benches only when they opt in (`test = true`).
pub fn binaries_from_metadata(metadata: &Value) -> Result<Vec<Binary>> {
    let mut found = Vec::new();
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?;
    for package in packages {
        let name = package["name"]
            .as_str()
            .context("a package without a name")?;
        for target in package["targets"].as_array().into_iter().flatten() {
            if target["test"].as_bool() != Some(true) {
                continue;
            }
            let target_name = target["name"]
                .as_str()
                .with_context(|| format!("{name}: a target without a name"))?;
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let id = if kinds.iter().any(|k| {
                matches!(
                    *k,
                    "lib" | "rlib" | "dylib" | "cdylib" | "staticlib" | "proc-macro"
                )
            }) {
                name.to_owned()
            } else if kinds.contains(&"bin") {
                format!("{name}::bin/{target_name}")
            } else if kinds.contains(&"test") {
                format!("{name}::{target_name}")
            } else if kinds.contains(&"example") {
                format!("{name}::example/{target_name}")
            } else if kinds.contains(&"bench") {
                format!("{name}::bench/{target_name}")
            } else {
                continue;
            };
            found.push(Binary {
                id,
                package: name.to_owned(),
            });
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Value {
        serde_json::json!({"packages": [
            {"name": "czero", "targets": [
                {"name": "czero", "kind": ["bin"], "test": true},
                {"name": "replay_moto", "kind": ["test"], "test": true},
            ]},
            {"name": "czero-engine", "targets": [
                {"name": "czero_engine", "kind": ["lib"], "test": true},
                {"name": "engine", "kind": ["bench"], "test": false},
            ]},
            {"name": "czero-integration", "targets": [
                {"name": "czero_integration", "kind": ["lib"], "test": true},
                {"name": "e2e", "kind": ["test"], "test": true},
            ]},
        ]})
    }

    #[test]
    fn binaries_are_named_as_nextest_names_them() {
        let ids: Vec<String> = binaries_from_metadata(&metadata())
            .unwrap()
            .into_iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(
            ids,
            [
                "czero-engine",
                "czero-integration",
                "czero-integration::e2e",
                "czero::bin/czero",
                "czero::replay_moto",
            ]
        );
    }

    #[test]
    fn filters_are_read_and_anything_else_refused() {
        assert_eq!(
            parse_filter("package(=czero)\n  | binary_id(=czero-integration::e2e)").unwrap(),
            [
                Term::Package("czero".into()),
                Term::BinaryId("czero-integration::e2e".into())
            ]
        );
        assert!(parse_filter("package(czero)").is_err());
        assert!(parse_filter("package(=czero) & test(foo)").is_err());
        assert!(parse_filter("binary_id(=)").is_err());
        let config = "[profile.nix-sandbox]\ndefault-filter = \"package(=a)\"\n";
        assert_eq!(
            profile_filter(config, "nix-sandbox").unwrap(),
            [Term::Package("a".into())]
        );
        assert!(profile_filter(config, "cargo-only").is_err());
    }

    /// A new test binary in neither profile, one in both, and a stale name are all reported.
    #[test]
    fn every_binary_runs_in_exactly_one_place() {
        let binaries = binaries_from_metadata(&metadata()).unwrap();
        let sandbox = parse_filter(
            "package(=czero) | package(=czero-engine) | binary_id(=czero-integration)",
        )
        .unwrap();
        let cargo_only = parse_filter("binary_id(=czero-integration::e2e)").unwrap();
        assert_eq!(
            problems(&binaries, &sandbox, &cargo_only),
            Vec::<String>::new()
        );

        let forgot =
            parse_filter("package(=czero-engine) | binary_id(=czero-integration)").unwrap();
        assert_eq!(
            problems(&binaries, &forgot, &cargo_only),
            [
                "czero::bin/czero runs nowhere under Nix: add it to `nix-sandbox` or `cargo-only`",
                "czero::replay_moto runs nowhere under Nix: add it to `nix-sandbox` or `cargo-only`"
            ]
        );
        let both = parse_filter("package(=czero-integration)").unwrap();
        let found = problems(&binaries, &sandbox, &both);
        assert_eq!(
            found,
            ["czero-integration is in both `nix-sandbox` and `cargo-only`"]
        );
        let stale =
            parse_filter("binary_id(=czero-integration::e2e) | binary_id(=czero::gone)").unwrap();
        assert_eq!(
            problems(&binaries, &sandbox, &stale),
            ["`cargo-only`: binary_id(=czero::gone) matches no test binary"]
        );
    }

    /// The project's test binaries each run in one place, and checks.nextest runs the
    /// sandbox profile. Needs cargo (as every test does).
    #[test]
    fn the_project_places_every_test_binary() {
        check(&crate::project_root()).unwrap();
    }
}
