//! Our validation agrees with `custodian validate` (c7n's StructureParser, JSON schema and
//! `Policy.validate`) on every fixture and example policy, except where we are
//! deliberately stricter (listed below with the reason).

use czero_policy::parse_str;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Rejected by us, accepted by c7n.
const STRICTER: &[(&str, &str)] = &[
    (
        "empty-policies.yml",
        "a file that runs nothing is a mistake worth reporting",
    ),
    (
        "lookaround-regex.yml",
        "Python accepts lookarounds; the `regex` crate cannot evaluate them",
    ),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    v.sort();
    v
}

#[test]
fn custodian_validate_agrees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bad = files(&root.join("fixtures/bad"));
    let mut good = files(&root.join("fixtures/good"));
    good.extend(files(&root.join("../../policies")));
    assert!(bad.len() >= 25, "at least 25 bad fixtures");
    let python = czero_testkit::python().expect("the project's Python with c7n (fail, not skip)");
    let out = std::process::Command::new(python)
        .arg(root.join("tests/c7n_validate.py"))
        .args(bad.iter().chain(&good))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c7n: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).expect("json");
    let verdict = |p: &Path| {
        c7n[&p.display().to_string()]
            .as_str()
            .expect("verdict")
            .to_string()
    };
    for p in &bad {
        let name = p.file_name().expect("name").to_string_lossy().to_string();
        let text = std::fs::read_to_string(p).expect("read");
        assert!(parse_str(&name, &text).is_err(), "{name}: we accept it");
        let v = verdict(p);
        if STRICTER.iter().any(|(n, _)| *n == name) {
            assert_eq!(
                v, "ok",
                "{name}: c7n now rejects it too; drop it from STRICTER"
            );
        } else {
            assert!(
                v.starts_with("error"),
                "{name}: c7n accepts it ({v}) but we reject it"
            );
        }
    }
    for p in &good {
        let text = std::fs::read_to_string(p).expect("read");
        assert!(
            parse_str("g", &text).is_ok(),
            "{}: we reject it",
            p.display()
        );
        assert_eq!(verdict(p), "ok", "{}: c7n rejects it", p.display());
    }
}
