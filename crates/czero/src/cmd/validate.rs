//! `czero validate [--native] [--json] [--mapping FILE] [FILE...]`: checks policy files as
//! custodian-zero reads them, and a policy mapping as the invoker loads it.
//!
//! - Each FILE: every error as `FILE:LINE:COL: path: message`; as notes, the features that
//!   run through Cloud Custodian. With `--native`, one line per policy instead: whether the
//!   native engine runs it or it needs the full worker image (`custodian-worker:full`), and
//!   the first feature that decides it, with its line.
//! - `--mapping FILE`: the mapping's own rules, then every policy file it can send events to
//!   (its keys resolved under `--root`): each must exist, fit the invoker's size cap, parse,
//!   and hold only event-mode policies.
//!
//! `--json` prints one JSON document instead of text. Exit code 0 when everything checked is
//! valid (policies needing the full image included), 1 otherwise.

use anyhow::{Context, Result};
use czero_invoker::config::DEFAULT_DEFAULT_POLICY;
use czero_invoker::mapping::{Mapping, MappingError};
use czero_invoker::policies::{self, PolicyFileError};
use czero_policy::{PolicyFile, Unsupported};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The worker image that runs policies through Cloud Custodian.
pub const FULL_IMAGE: &str = "custodian-worker:full";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Policy files (YAML or JSON).
    #[arg(value_name = "FILE", required_unless_present = "mapping")]
    pub files: Vec<PathBuf>,
    /// For each policy, say whether the native engine runs it or it needs the full worker
    /// image (custodian-worker:full), and why.
    #[arg(long)]
    pub native: bool,
    /// Print one JSON document (for machines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// A policy mapping (config/policy-mappings.json) to check with the policy files it
    /// routes events to.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Where the mapping's policy keys are read from: key `policies/x.yml` is
    /// ROOT/policies/x.yml. Default: the folder above the mapping's `config/` folder (the
    /// repository layout), else the current directory.
    #[arg(long, value_name = "DIR", requires = "mapping")]
    pub root: Option<PathBuf>,
    /// The invoker's DEFAULT_POLICY_KEY, checked like the files rules name.
    #[arg(long, value_name = "KEY", env = "DEFAULT_POLICY_KEY", default_value = DEFAULT_DEFAULT_POLICY, requires = "mapping")]
    pub default_policy: String,
}

/// One policy and whether it runs natively.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    pub name: String,
    pub line: usize,
    pub resource: String,
    pub mode: String,
    pub native: bool,
    /// What needs the full image: the first feature the native engine does not run.
    pub gap: Option<Unsupported>,
}

/// One policy file checked.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub valid: bool,
    pub errors: Vec<String>,
    /// Features that run through Cloud Custodian, as notes (text output).
    #[serde(skip)]
    pub notes: Vec<String>,
    pub policies: Vec<PolicyReport>,
}

/// Validates one file.
pub fn check_file(path: &Path) -> Result<FileReport> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let origin = path.display().to_string();
    let text = String::from_utf8(bytes).with_context(|| format!("{origin} is not UTF-8 text"))?;
    Ok(match czero_policy::parse_str(&origin, &text) {
        Ok(file) => report(&origin, &file),
        Err(errors) => FileReport {
            file: origin,
            valid: false,
            errors: errors.errors.iter().map(ToString::to_string).collect(),
            notes: vec![],
            policies: vec![],
        },
    })
}

fn report(origin: &str, file: &PolicyFile) -> FileReport {
    let mut notes = Vec::new();
    let mut policies = Vec::new();
    for p in &file.policies {
        for u in &p.unsupported {
            notes.push(format!(
                "{origin}:{}: note: policy `{}` uses {u}, which runs through the custodian fallback",
                u.line, p.name
            ));
        }
        let gap = p.native_gap();
        policies.push(PolicyReport {
            name: p.name.clone(),
            line: p.line,
            resource: p.resource.clone(),
            mode: p.mode.name().to_owned(),
            native: gap.is_none(),
            gap,
        });
    }
    FileReport {
        file: origin.to_owned(),
        valid: true,
        errors: vec![],
        notes,
        policies,
    }
}

/// The `--native` line of one policy.
pub fn native_line(file: &str, p: &PolicyReport) -> String {
    match &p.gap {
        None => format!("{file}:{}: {}: native", p.line, p.name),
        Some(u) => format!(
            "{file}:{}: {}: needs {FULL_IMAGE}: {u} ({}:{}, {})",
            p.line, p.name, file, u.line, u.path
        ),
    }
}

/// A mapping and the files it routes to.
#[derive(Debug, Serialize)]
pub struct MappingReport {
    pub mapping: String,
    pub root: String,
    pub valid: bool,
    pub errors: Vec<String>,
    /// The policy keys checked, in rule order, then the default.
    pub files: Vec<String>,
}

/// The folder the mapping's keys are relative to (see [`Args::root`]).
pub fn default_root(mapping: &Path) -> PathBuf {
    let dir = mapping.parent().filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(d) if d.file_name().is_some_and(|n| n == "config") => d
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        _ => PathBuf::from("."),
    }
}

/// Checks a mapping as the invoker loads it, with the policy files read from `root`.
pub fn check_mapping(path: &Path, root: &Path, default_key: &str) -> Result<MappingReport> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("reading {origin}"))?;
    let mut out = MappingReport {
        mapping: origin.clone(),
        root: root.display().to_string(),
        valid: true,
        errors: vec![],
        files: vec![],
    };
    let m = match Mapping::parse(&origin, &bytes) {
        Ok(m) => m,
        Err(e) => {
            out.valid = false;
            out.errors.push(e.to_string());
            return Ok(out);
        }
    };
    for key in m.keys(default_key) {
        let file = root.join(&key);
        let by = m.routes_to(&key, default_key);
        out.files.push(key.clone());
        let error = |source: PolicyFileError| MappingError::PolicyFile {
            origin: origin.clone(),
            by: by.clone(),
            key: key.clone(),
            source,
        };
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                out.errors.push(format!(
                    "{origin}: {by} sends events to {key}, which cannot be read at {}: {e}",
                    file.display()
                ));
                continue;
            }
        };
        match policies::parse_policy(&file.display().to_string(), &bytes) {
            Ok(parsed) => out.errors.extend(
                m.scan_policies(&origin, default_key, &key, &parsed)
                    .iter()
                    .map(ToString::to_string),
            ),
            Err(e) => out.errors.push(error(e).to_string()),
        }
    }
    out.valid = out.errors.is_empty();
    Ok(out)
}

pub fn run(args: Args) -> ExitCode {
    let mut ok = true;
    let mut files = Vec::new();
    let mut failures = Vec::new();
    for f in &args.files {
        match check_file(f) {
            Ok(r) => {
                ok &= r.valid;
                files.push(r);
            }
            Err(e) => {
                ok = false;
                failures.push(format!("{}: error: {e:#}", f.display()));
            }
        }
    }
    let mapping = match &args.mapping {
        None => None,
        Some(path) => {
            let root = args.root.clone().unwrap_or_else(|| default_root(path));
            match check_mapping(path, &root, &args.default_policy) {
                Ok(r) => {
                    ok &= r.valid;
                    Some(r)
                }
                Err(e) => {
                    ok = false;
                    failures.push(format!("{}: error: {e:#}", path.display()));
                    None
                }
            }
        }
    };
    if args.json {
        let policies: Vec<&PolicyReport> = files.iter().flat_map(|f| &f.policies).collect();
        let doc = json!({
            "valid": ok,
            "files": files,
            "mapping": mapping,
            "errors": failures,
            "summary": {
                "policies": policies.len(),
                "native": policies.iter().filter(|p| p.native).count(),
                "full_image": policies.iter().filter(|p| !p.native).count(),
            },
        });
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: encoding the report: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print_text(&args, &files, mapping.as_ref(), &failures);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_text(
    args: &Args,
    files: &[FileReport],
    mapping: Option<&MappingReport>,
    failures: &[String],
) {
    for f in files {
        for e in &f.errors {
            eprintln!("{e}");
        }
        if args.native {
            for p in &f.policies {
                println!("{}", native_line(&f.file, p));
            }
        } else {
            for n in &f.notes {
                println!("{n}");
            }
        }
    }
    if args.native {
        let all: Vec<&PolicyReport> = files.iter().flat_map(|f| &f.policies).collect();
        let full = all.iter().filter(|p| !p.native).count();
        println!(
            "{} policies: {} native, {full} need {FULL_IMAGE}",
            all.len(),
            all.len() - full
        );
    }
    if let Some(m) = mapping {
        for e in &m.errors {
            eprintln!("{e}");
        }
        if m.valid {
            println!(
                "{}: valid; {} policy files under {} hold only event-mode policies",
                m.mapping,
                m.files.len(),
                m.root
            );
        }
    }
    for f in failures {
        eprintln!("{f}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn shipped_policies_are_valid() {
        let dir = root().join("policies");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml") {
                let r = check_file(&p).unwrap();
                assert!(r.valid, "{}: {:?}", p.display(), r.errors);
                n += 1;
            }
        }
        assert!(n >= 5, "expected the example policies in {}", dir.display());
    }

    #[test]
    fn errors_and_notes_are_printed_with_positions() {
        let bad = root().join("crates/policy/fixtures/bad/many-errors.yml");
        let r = check_file(&bad).unwrap();
        assert!(!r.valid);
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
        assert!(
            r.errors[0]
                .ends_with("many-errors.yml:7:9: policies[0].filters[0].op: invalid op `bogus`"),
            "{:?}",
            r.errors
        );
        let good = root().join("crates/policy/fixtures/good/notify-fallback.yml");
        let r = check_file(&good).unwrap();
        assert!(r.valid);
        assert!(
            r.notes.iter().any(|l| l.ends_with(
                "notify-fallback.yml:8: note: policy `notify-owner` uses action `notify`, which runs through the custodian fallback"
            )),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn native_lines_name_the_gap_and_its_line() {
        let good = root().join("crates/policy/fixtures/good/notify-fallback.yml");
        let r = check_file(&good).unwrap();
        let lines: Vec<String> = r.policies.iter().map(|p| native_line("f.yml", p)).collect();
        assert!(
            lines.iter().any(|l| l.starts_with("f.yml:")
                && l.contains(
                    "notify-owner: needs custodian-worker:full: action `notify` (f.yml:8,"
                )),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("needs custodian-worker:full: resource `aws.ec2`")),
            "{lines:?}"
        );
        let create = check_file(&root().join("policies/s3-createbucket.yml")).unwrap();
        assert_eq!(
            native_line("c.yml", &create.policies[0]),
            "c.yml:3: s3-createbucket-remediate: native"
        );
    }

    #[test]
    fn the_root_defaults_to_the_repository_layout() {
        assert_eq!(
            default_root(Path::new("/repo/config/policy-mappings.json")),
            Path::new("/repo")
        );
        assert_eq!(
            default_root(Path::new("config/policy-mappings.json")),
            Path::new(".")
        );
        assert_eq!(default_root(Path::new("m.json")), Path::new("."));
        assert_eq!(
            default_root(Path::new("/tmp/x/m.json")),
            Path::new("."),
            "not in a config/ folder: the current directory"
        );
    }

    #[test]
    fn the_shipped_mapping_routes_only_to_event_mode_policies() {
        let r = check_mapping(
            &root().join("config/policy-mappings.json"),
            &root(),
            DEFAULT_DEFAULT_POLICY,
        )
        .unwrap();
        assert_eq!(r.errors, Vec::<String>::new());
        assert_eq!(r.files.len(), 7);
        assert!(r.valid);
    }

    /// Regression: the mapping once sent events to pull-mode policies.
    #[test]
    fn a_mapping_routing_to_scan_policies_is_rejected_naming_rule_file_and_policy() {
        let r = check_mapping(
            &root().join("crates/invoker/fixtures/mapping-scan-policies.json"),
            &root(),
            DEFAULT_DEFAULT_POLICY,
        )
        .unwrap();
        assert!(!r.valid);
        let policies: Vec<&str> = [
            "s3-audit-missing-owner",
            "s3-audit-bad-environment",
            "s3-require-secure-transport",
            "s3-public-read-statement",
            "s3-unencrypted-mark-for-delete",
        ]
        .to_vec();
        assert_eq!(r.errors.len(), policies.len(), "{:#?}", r.errors);
        for (e, p) in r.errors.iter().zip(&policies) {
            assert!(e.contains(&format!("whose policy `{p}`")), "{e}");
            assert!(e.contains("has mode `pull`"), "{e}");
        }
        assert!(
            r.errors[0].contains(
                "rule `sandbox-accounts-audit-only`, rule `guardduty-s3-policy-findings` sends \
                 events to "
            ) && r.errors[0].contains("policies/s3-audit-tags.yml, whose policy"),
            "{}",
            r.errors[0]
        );
    }
}
