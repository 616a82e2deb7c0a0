//! The pins the cargo path and the Nix path share agree:
//!
//! - the Rust toolchain of `nix/toolchain.nix` is at least the workspace's `rust-version`
//!   and is exactly what CI's cargo job installs with rustup;
//! - the AWS provider of `nix/aws-provider.nix` satisfies the `hashicorp/aws` constraint of
//!   every `versions.tf` (the cargo path installs the newest release that does, from a
//!   mirror or the registry), so both run the same major version.

use super::eval_file;
use anyhow::{Context, Result, bail};
use std::path::Path;

pub const TOOLCHAIN_NIX: &str = "nix/toolchain.nix";
pub const PROVIDER_NIX: &str = "nix/aws-provider.nix";
pub const CI_WORKFLOW: &str = ".github/workflows/ci.yml";

pub fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();

    let toolchain = eval_file(&root.join(TOOLCHAIN_NIX))?;
    let rust = toolchain["rust"]
        .as_str()
        .with_context(|| format!("{TOOLCHAIN_NIX} has no `rust` string"))?;
    let cargo_toml =
        std::fs::read_to_string(root.join("Cargo.toml")).context("could not read Cargo.toml")?;
    let workspace: toml::Table = cargo_toml.parse().context("Cargo.toml is not TOML")?;
    let rust_version = workspace
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(toml::Value::as_str)
        .context("Cargo.toml has no [workspace.package] rust-version")?;
    let ci = std::fs::read_to_string(root.join(CI_WORKFLOW))
        .with_context(|| format!("could not read {CI_WORKFLOW}"))?;
    problems.extend(toolchain_problems(rust, rust_version, &ci));

    let provider = eval_file(&root.join(PROVIDER_NIX))?;
    let version = provider["version"]
        .as_str()
        .with_context(|| format!("{PROVIDER_NIX} has no `version` string"))?;
    let mut constraints = Vec::new();
    for file in versions_tf(&root.join("terraform"))? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("could not read {}", file.display()))?;
        if let Some(c) = aws_constraint(&text) {
            let rel = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            constraints.push((rel, c));
        }
    }
    if constraints.is_empty() {
        problems.push("no versions.tf under terraform/ requires hashicorp/aws".to_owned());
    }
    for (file, constraint) in &constraints {
        match satisfies(version, constraint) {
            Ok(true) => {}
            Ok(false) => problems.push(format!(
                "{file} asks for hashicorp/aws `{constraint}`; {PROVIDER_NIX} pins {version}"
            )),
            Err(e) => problems.push(format!("{file}: {e:#}")),
        }
    }

    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    eprintln!(
        "nix: Rust {rust} on both paths (rust-version {rust_version}); AWS provider {version} satisfies {} versions.tf",
        constraints.len()
    );
    Ok(())
}

/// The toolchain pin against the workspace's minimum and CI's `rustup` lines.
pub fn toolchain_problems(rust: &str, rust_version: &str, ci: &str) -> Vec<String> {
    let mut problems = Vec::new();
    match (parse_version(rust), parse_version(rust_version)) {
        (Some(have), Some(need)) if have >= need => {}
        (Some(_), Some(_)) => problems.push(format!(
            "{TOOLCHAIN_NIX} pins Rust {rust}, below the workspace's rust-version {rust_version}"
        )),
        _ => problems.push(format!(
            "cannot compare Rust `{rust}` ({TOOLCHAIN_NIX}) with rust-version `{rust_version}`"
        )),
    }
    let installs: Vec<&str> = ci
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("rustup toolchain install ")
                .or_else(|| l.strip_prefix("rustup default "))
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    if installs.is_empty() {
        problems.push(format!(
            "{CI_WORKFLOW} installs no Rust toolchain with rustup"
        ));
    }
    for v in installs {
        if v != rust {
            problems.push(format!(
                "{CI_WORKFLOW} installs Rust {v}, {TOOLCHAIN_NIX} pins {rust}"
            ));
        }
    }
    problems
}

/// `1.95` or `1.95.0` as numbers (a missing patch is 0).
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// Every `versions.tf` under `dir`.
fn versions_tf(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("could not list {}", d.display()))?
        {
            let path = entry
                .with_context(|| format!("could not list {}", d.display()))?
                .path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != ".terraform") {
                    stack.push(path);
                }
            } else if path.file_name().is_some_and(|n| n == "versions.tf") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The `version` of the `required_providers` entry whose source is `hashicorp/aws`.
pub fn aws_constraint(versions_tf: &str) -> Option<String> {
    let lines: Vec<&str> = versions_tf.lines().map(str::trim).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("source") && l.contains("\"hashicorp/aws\""))?;
    // The entry's other attributes sit between its `{` and `}`.
    let start = lines[..at].iter().rposition(|l| l.ends_with('{'))?;
    let end = at + lines[at..].iter().position(|l| l.starts_with('}'))?;
    lines[start..end].iter().find_map(|l| {
        let value = l.strip_prefix("version")?.trim().strip_prefix('=')?.trim();
        Some(value.trim_matches('"').to_owned())
    })
}

/// Whether `version` meets a pessimistic constraint `~> X.Y` or `~> X.Y.Z` (the forms the
/// module uses); any other form is an error, so a changed constraint is looked at again.
pub fn satisfies(version: &str, constraint: &str) -> Result<bool> {
    let have = parse_version(version).with_context(|| format!("`{version}` is not a version"))?;
    let Some(floor) = constraint.trim().strip_prefix("~>") else {
        bail!("constraint `{constraint}` is not of the form ~> X.Y[.Z]");
    };
    let floor = floor.trim();
    let parts = floor.split('.').count();
    let want = parse_version(floor)
        .with_context(|| format!("constraint `{constraint}` has no version"))?;
    Ok(match parts {
        // ~> X.Y: X.Y <= v < (X+1).0
        2 => have.0 == want.0 && have >= want,
        // ~> X.Y.Z: X.Y.Z <= v < X.(Y+1).0
        3 => have.0 == want.0 && have.1 == want.1 && have >= want,
        _ => bail!("constraint `{constraint}` is not of the form ~> X.Y[.Z]"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CI: &str = "    run: |\n      rustup toolchain install 1.95.0 --profile minimal\n      rustup default 1.95.0\n";

    #[test]
    fn the_toolchain_must_meet_rust_version_and_match_ci() {
        assert_eq!(
            toolchain_problems("1.95.0", "1.95", CI),
            Vec::<String>::new()
        );
        assert_eq!(
            toolchain_problems("1.94.1", "1.95", &CI.replace("1.95.0", "1.94.1")),
            ["nix/toolchain.nix pins Rust 1.94.1, below the workspace's rust-version 1.95"]
        );
        assert_eq!(
            toolchain_problems("1.96.0", "1.95", CI),
            [
                ".github/workflows/ci.yml installs Rust 1.95.0, nix/toolchain.nix pins 1.96.0",
                ".github/workflows/ci.yml installs Rust 1.95.0, nix/toolchain.nix pins 1.96.0"
            ]
        );
        assert_eq!(
            toolchain_problems("1.95.0", "1.95", "jobs: {}\n"),
            [".github/workflows/ci.yml installs no Rust toolchain with rustup"]
        );
    }

    #[test]
    fn the_aws_constraint_is_read_from_required_providers() {
        let tf = "terraform {\n  required_version = \">= 1.6\"\n\n  required_providers {\n    aws = {\n      source  = \"hashicorp/aws\"\n      version = \"~> 5.0\"\n    }\n  }\n}\n";
        assert_eq!(aws_constraint(tf).as_deref(), Some("~> 5.0"));
        assert_eq!(
            aws_constraint("terraform {\n  required_version = \">= 1.6\"\n}\n"),
            None
        );
    }

    /// nixpkgs' hashicorp_aws 6.x against `~> 5.0` is what the pin check exists to catch.
    #[test]
    fn the_provider_must_satisfy_the_constraint() {
        assert!(satisfies("5.100.0", "~> 5.0").unwrap());
        assert!(!satisfies("6.2.0", "~> 5.0").unwrap());
        assert!(!satisfies("5.99.1", "~> 5.100").unwrap());
        assert!(satisfies("5.100.3", "~> 5.100.0").unwrap());
        assert!(!satisfies("5.101.0", "~> 5.100.0").unwrap());
        assert!(satisfies("5.100.0", ">= 5.0").is_err());
    }

    /// The project's pins agree. Needs `nix-instantiate`.
    #[test]
    fn the_project_pins_agree() {
        check(&crate::project_root()).unwrap();
    }
}
