//! The annotations filters leave on matched buckets (`c7n:MatchedFilters`,
//! `GlobalPermissions`, the lazily read `c7n:bucket-encryption` / `c7n:PublicAccessBlock`,
//! `c7n:DeniedMethods`), checked against c7n's own resource manager running the same
//! filters over the same buckets: top-level filters in order, every `or` branch, `and` and
//! `not` restoring `c7n*` keys. Whole matched documents are compared.

use chrono::Utc;
use czero_policy::{
    Fetched, Inputs, KmsKey, KmsKeys, Prefetched, parse_str, s3::default_public_block,
};
use serde_json::{Value, json};

const AUTH: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const ALL: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

fn grant(uri: &str, perm: &str) -> Value {
    json!({"Grantee": {"Type": "Group", "URI": uri}, "Permission": perm})
}

fn owner_grant() -> Value {
    json!({"Grantee": {"Type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"})
}

/// A bucket with the given ACL grants, website and tags.
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

fn sse(algo: &str, key: Option<&str>) -> Value {
    let mut default = json!({"SSEAlgorithm": algo});
    if let Some(k) = key {
        default["KMSMasterKeyID"] = json!(k);
    }
    json!({"ServerSideEncryptionConfiguration": {"Rules": [
        {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": false}
    ]}})
}

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/k-1";
const ALIAS_ARN: &str = "arn:aws:kms:us-east-1:123456789012:alias/app";

/// What DescribeKey and ListAliases answer, by the key as a policy names it (all the
/// buckets are in us-east-1).
fn kms() -> Value {
    let k1 = json!({"KeyId": "k-1", "Arn": KEY_ARN,
        "Aliases": [{"AliasArn": ALIAS_ARN, "AliasName": "alias/app"}]});
    let k2 =
        json!({"KeyId": "k-2", "Arn": "arn:aws:kms:us-east-1:123456789012:key/k-2", "Aliases": []});
    json!({"alias/app": k1.clone(), "k-1": k1.clone(), KEY_ARN: k1, "k-2": k2})
}

/// The engine's side of [`kms`]: every key resolved in us-east-1.
fn kms_keys() -> KmsKeys {
    let mut out = KmsKeys::default();
    if let Value::Object(m) = kms() {
        for (name, k) in m {
            let aliases = k["Aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| [a["AliasArn"].clone(), a["AliasName"].clone()])
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let key = KmsKey {
                key_id: k["KeyId"].as_str().unwrap_or_default().to_string(),
                arn: k["Arn"].as_str().unwrap_or_default().to_string(),
                aliases,
            };
            out.insert(&name, "us-east-1", key);
        }
    }
    out
}

/// What GetBucketEncryption / GetPublicAccessBlock answer per bucket (null: NoSuch*).
fn lazy() -> Value {
    let pab = |v: bool| json!({"BlockPublicAcls": v, "IgnorePublicAcls": v, "BlockPublicPolicy": v, "RestrictPublicBuckets": v});
    json!({
        "private": {"encryption": sse("AES256", None), "public_block": pab(true)},
        "public-read": {"encryption": null, "public_block": null},
        "auth-write": {"encryption": "denied", "public_block": "denied"},
        "website": {"encryption": sse("aws:kms", Some(ALIAS_ARN)), "public_block": pab(false)},
    })
}

/// The engine's side of [`lazy`]: what it hands the filters for one bucket.
fn prefetched(name: &str) -> Prefetched {
    let l = &lazy()[name];
    let fetched = |v: &Value, missing: Value| match v {
        Value::String(s) if s == "denied" => Fetched::Denied,
        Value::Null => Fetched::Found(missing),
        doc => Fetched::Found(doc.clone()),
    };
    Prefetched {
        bucket_encryption: Some(fetched(&l["encryption"], json!({}))),
        public_access_block: Some(fetched(&l["public_block"], default_public_block())),
    }
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
        // Value filters in order, duplicates kept.
        json!([{"tag:Env": "prod"}, {"type": "value", "key": "Name", "op": "ne", "value": "x"}, {"tag:Env": "prod"}]),
        // Every `or` branch runs, even after one matched.
        json!([{"or": [
            {"type": "global-grants", "permissions": ["WRITE"]},
            {"tag:Env": "prod"},
            {"Website": "not-null"},
            {"type": "global-grants", "allow_website": false}
        ]}]),
        // A failed `and` restores c7n* keys but keeps GlobalPermissions.
        json!([{"or": [
            {"and": [{"type": "global-grants"}, {"Name": "website"}, {"tag:Env": "nope"}]},
            {"and": [{"tag:Env": "prod"}, {"Website": "not-null"}]},
            {"type": "value", "key": "Name", "op": "ne", "value": "x"}
        ]}]),
        // `not` always restores them.
        json!([{"tag:Env": "present"}, {"not": [{"tag:Owner": "web"}, {"Name": "nope"}]}]),
        json!([{"not": [{"type": "global-grants", "permissions": ["READ"]}]}]),
        json!([
            {"tag:Env": "prod"},
            {"not": [{"tag:Owner": "web"}]},
            {"type": "global-grants"}
        ]),
        // Annotations are part of the resource: a later filter can read them.
        json!([{"tag:Env": "present"}, {"type": "value", "key": "c7n:MatchedFilters", "value": "present"}]),
        // Lazy documents: stored when read, denied encryption leaves the bucket out,
        // denied public access block is recorded in c7n:DeniedMethods.
        json!([{"type": "bucket-encryption", "state": false}]),
        json!([{"type": "check-public-block"}]),
        json!([{"or": [
            {"and": [{"Name": "private"}, {"type": "bucket-encryption", "crypto": "aws:kms"}]},
            {"and": [{"tag:Env": "prod"}, {"type": "check-public-block", "BlockPublicAcls": false}]},
            {"not": [{"type": "bucket-encryption"}]},
            {"Name": "private"}
        ]}]),
        json!([{"not": [{"type": "check-public-block"}]}]),
        // A KMS key by alias, id or ARN matches a rule naming it by any of them.
        json!([{"type": "bucket-encryption", "crypto": "aws:kms", "key": "alias/app"}]),
        json!([{"type": "bucket-encryption", "crypto": "aws:kms", "key": "k-1"}]),
        json!([{"type": "bucket-encryption", "crypto": "aws:kms", "key": KEY_ARN}]),
        json!([{"type": "bucket-encryption", "crypto": "aws:kms", "key": "k-2"}]),
        json!([{"type": "bucket-encryption", "crypto": "aws:kms", "key": "alias/app", "state": false}]),
        json!([{"type": "bucket-encryption", "crypto": "AES256", "key": "alias/app"}]),
    ]
}

/// What czero leaves on each bucket that passes every filter, sorted by name.
fn czero(filters: &Value) -> Result<Vec<Value>, String> {
    let doc =
        json!({"policies": [{"name": "t", "resource": "aws.s3", "filters": filters}]}).to_string();
    let file = parse_str("case", &doc).map_err(|e| e.to_string())?;
    let p = &file.policies[0];
    let keys = kms_keys();
    let mut out = Vec::new();
    'bucket: for mut b in buckets() {
        let pre = prefetched(b["Name"].as_str().unwrap_or_default());
        let inputs = Inputs {
            now: Utc::now(),
            event: None,
            prefetched: &pre,
            kms_keys: &keys,
        };
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
        .map(|f| json!({"filters": f, "resources": buckets(), "lazy": lazy(), "kms": kms()}))
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

#[test]
fn annotations_match_c7n() {
    let cases = cases();
    let want = c7n(&cases);
    assert_eq!(want.len(), cases.len());
    let mut bad = Vec::new();
    for (f, c7n) in cases.iter().zip(&want) {
        let c7n = c7n["matched"]
            .as_array()
            .unwrap_or_else(|| panic!("c7n failed on {f}"));
        let ours = czero(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        if &ours != c7n {
            bad.push(format!(
                "{f}\n c7n:   {}\n czero: {}",
                Value::from(c7n.clone()),
                Value::from(ours)
            ));
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

/// Pinned without Python: the rule names the key by its alias ARN; the filter names it by
/// alias, id or ARN.
#[test]
fn kms_key_matches_by_any_name() {
    for i in 15..18 {
        let got = czero(&cases()[i]).unwrap();
        let names: Vec<&str> = got.iter().filter_map(|b| b["Name"].as_str()).collect();
        assert_eq!(names, vec!["website"], "{}", cases()[i]);
    }
    assert!(czero(&cases()[18]).unwrap().is_empty());
}

/// Pinned without Python: keys in evaluation order with duplicates; a failed `and` and a
/// `not` leave nothing behind.
#[test]
fn matched_filters_follow_evaluation_order() {
    let got = czero(&cases()[6]).unwrap();
    let keys: Vec<(&str, &Value)> = got
        .iter()
        .map(|b| {
            (
                b["Name"].as_str().unwrap_or_default(),
                &b["c7n:MatchedFilters"],
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("auth-write", &json!(["Name"])),
            ("private", &json!(["Name"])),
            ("public-read", &json!(["Name"])),
            ("website", &json!(["tag:Env", "Website", "Name"])),
        ]
    );
    let got = czero(&cases()[7]).unwrap();
    assert!(
        got.iter()
            .all(|b| b["c7n:MatchedFilters"] == json!(["tag:Env"])),
        "{got:?}"
    );
}
