//! The annotations filters leave on matched buckets (`GlobalPermissions`), checked against
//! c7n's own resource manager running the same filters over the same buckets: top-level
//! filters in order, `or` branches all run, `and` and `not` restore `c7n*` keys.

use chrono::Utc;
use czero_policy::{Inputs, parse_str};
use serde_json::{Value, json};

const AUTH: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const ALL: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

fn grant(uri: &str, perm: &str) -> Value {
    json!({"Grantee": {"Type": "Group", "URI": uri}, "Permission": perm})
}

fn owner_grant() -> Value {
    json!({"Grantee": {"Type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"})
}

/// A bucket with the given ACL grants and website, tags and versioning.
fn bucket(name: &str, grants: Vec<Value>, website: bool, tags: &[(&str, &str)]) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    json!({
        "Name": name,
        "Location": {"LocationConstraint": null},
        "Tags": tags,
        "Policy": null,
        "Acl": {"Owner": {"ID": "abc"}, "Grants": grants},
        "Website": if website { json!({"IndexDocument": {"Suffix": "index.html"}}) } else { Value::Null },
        "Versioning": {},
    })
}

fn buckets() -> Vec<Value> {
    vec![
        bucket("private", vec![owner_grant()], false, &[("Env", "dev")]),
        bucket(
            "public-read",
            vec![owner_grant(), grant(ALL, "READ")],
            false,
            &[("Env", "prod")],
        ),
        bucket(
            "auth-write",
            vec![owner_grant(), grant(AUTH, "WRITE"), grant(ALL, "READ_ACP")],
            false,
            &[],
        ),
        bucket(
            "website",
            vec![owner_grant(), grant(ALL, "READ"), grant(ALL, "WRITE")],
            true,
            &[("Env", "prod"), ("Owner", "web")],
        ),
    ]
}

/// Filter lists exercising every way a filter can annotate.
fn cases() -> Vec<Value> {
    vec![
        json!([{"type": "global-grants"}]),
        json!([{"type": "global-grants", "allow_website": false}]),
        json!([{"type": "global-grants", "permissions": ["WRITE", "READ_ACP"]}]),
        // Two matching filters: the second extends the first's list.
        json!([
            {"type": "global-grants", "allow_website": false, "permissions": ["READ", "WRITE"]},
            {"type": "global-grants", "permissions": ["WRITE", "READ", "READ_ACP"]}
        ]),
        // Every `or` branch runs, even after one matched.
        json!([{"or": [
            {"type": "global-grants", "permissions": ["WRITE"]},
            {"tag:Env": "prod"},
            {"type": "global-grants", "allow_website": false}
        ]}]),
        // A failed `and` keeps GlobalPermissions (only `c7n*` keys are swept).
        json!([{"or": [
            {"and": [{"type": "global-grants"}, {"tag:Env": "nope"}]},
            {"type": "value", "key": "Name", "op": "ne", "value": "x"}
        ]}]),
        json!([{"not": [{"type": "global-grants", "permissions": ["READ"]}]}]),
        json!([
            {"tag:Env": "prod"},
            {"not": [{"tag:Owner": "web"}]},
            {"type": "global-grants"}
        ]),
    ]
}

/// What czero leaves on each bucket that passes every filter, sorted by name.
fn czero(filters: &Value) -> Result<Vec<Value>, String> {
    let doc =
        json!({"policies": [{"name": "t", "resource": "aws.s3", "filters": filters}]}).to_string();
    let file = parse_str("case", &doc).map_err(|e| e.to_string())?;
    let p = &file.policies[0];
    let inputs = Inputs {
        now: Utc::now(),
        event: None,
    };
    let mut out = Vec::new();
    'bucket: for mut b in buckets() {
        for f in &p.filters {
            if !f.process(&mut b, &inputs).map_err(|e| e.to_string())? {
                continue 'bucket;
            }
        }
        out.push(b);
    }
    out.sort_by_key(|b| b["Name"].as_str().unwrap_or_default().to_string());
    Ok(out)
}

fn c7n(cases: &[Value]) -> Vec<Value> {
    let python = czero_testkit::python().expect("the project's Python with c7n (fail, not skip)");
    let input: Vec<Value> = cases
        .iter()
        .map(|f| json!({"filters": f, "resources": buckets()}))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c7n_annotations.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        let body = serde_json::to_string(&input).expect("cases serialise");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(body.as_bytes())
            .expect("write cases");
    }
    let out = child.wait_with_output().expect("python runs");
    assert!(out.status.success(), "c7n script failed");
    serde_json::from_slice(&out.stdout).expect("c7n prints JSON")
}

/// The part of a matched bucket this test compares.
fn annotations(b: &Value) -> Value {
    json!({"Name": b["Name"], "GlobalPermissions": b.get("GlobalPermissions")})
}

#[test]
fn annotations_match_c7n() {
    let cases = cases();
    let want = c7n(&cases);
    assert_eq!(want.len(), cases.len());
    let mut bad = Vec::new();
    for (f, c7n) in cases.iter().zip(&want) {
        let c7n: Vec<Value> = c7n["matched"]
            .as_array()
            .unwrap_or_else(|| panic!("c7n failed on {f}"))
            .iter()
            .map(annotations)
            .collect();
        let ours: Vec<Value> = czero(f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .iter()
            .map(annotations)
            .collect();
        if ours != c7n {
            bad.push(format!("{f}\n c7n:   {c7n:?}\n czero: {ours:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The shape c7n writes, pinned without Python: the permissions of every offending grant,
/// in grant order, extended by each further matching global-grants filter.
#[test]
fn global_permissions_list_each_offending_grant() {
    let got = czero(&cases()[3]).unwrap();
    let perms: Vec<(&str, &Value)> = got
        .iter()
        .map(|b| {
            (
                b["Name"].as_str().unwrap_or_default(),
                &b["GlobalPermissions"],
            )
        })
        .collect();
    assert_eq!(
        perms,
        vec![
            ("auth-write", &json!(["WRITE", "WRITE", "READ_ACP"])),
            ("public-read", &json!(["READ", "READ"])),
            ("website", &json!(["READ", "WRITE", "WRITE"])),
        ]
    );
}
