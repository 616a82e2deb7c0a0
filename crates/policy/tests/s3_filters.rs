//! The aws.s3 filters over augmented bucket JSON, checked against c7n's own filter classes.

use chrono::Utc;
use czero_policy::{EvalContext, Needs, parse_str};
use serde_json::{Value, json};

const BUCKET: &str = include_str!("../fixtures/s3/bucket-augmented.json");

fn bucket(patch: Value) -> Value {
    let mut b: Value = serde_json::from_str(BUCKET).expect("valid test data");
    if let (Value::Object(m), Value::Object(p)) = (&mut b, patch) {
        for (k, v) in p {
            m.insert(k, v);
        }
    }
    b
}

fn sse(algo: &str, bucket_key: Option<bool>) -> Value {
    let mut rule = json!({"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algo}});
    if let Some(k) = bucket_key {
        rule["BucketKeyEnabled"] = json!(k);
    }
    json!({"ServerSideEncryptionConfiguration": {"Rules": [rule]}})
}

fn pab(a: bool, b: bool, c: bool, d: bool) -> Value {
    json!({"BlockPublicAcls": a, "IgnorePublicAcls": b, "BlockPublicPolicy": c, "RestrictPublicBuckets": d})
}

fn policy_doc(statements: Value) -> Value {
    json!(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

/// (filter, bucket patch, expected)
fn cases() -> Vec<(Value, Value, &'static str)> {
    let enc = |v: Value| json!({"c7n:bucket-encryption": v});
    let block = |v: Value| json!({"c7n:PublicAccessBlock": v});
    let deny_http = json!([{"Sid": "DenyHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b1/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]);
    vec![
        (
            json!({"type": "bucket-encryption"}),
            enc(sse("AES256", None)),
            "true",
        ),
        (
            json!({"type": "bucket-encryption"}),
            enc(json!({})),
            "false",
        ),
        (
            json!({"type": "bucket-encryption", "state": false}),
            enc(json!({})),
            "true",
        ),
        (
            json!({"type": "bucket-encryption", "state": false}),
            enc(sse("AES256", None)),
            "false",
        ),
        (
            json!({"type": "bucket-encryption", "crypto": "aws:kms"}),
            enc(sse("AES256", None)),
            "false",
        ),
        (
            json!({"type": "bucket-encryption", "crypto": "aws:kms"}),
            enc(sse("aws:kms", None)),
            "true",
        ),
        (
            json!({"type": "bucket-encryption", "crypto": "AES256"}),
            enc(sse("AES256", None)),
            "true",
        ),
        (
            json!({"type": "bucket-encryption", "state": false, "crypto": "aws:kms"}),
            enc(sse("AES256", None)),
            "true",
        ),
        (
            json!({"type": "bucket-encryption", "bucket_key_enabled": true}),
            enc(sse("aws:kms", Some(true))),
            "true",
        ),
        (
            json!({"type": "bucket-encryption", "bucket_key_enabled": true}),
            enc(sse("aws:kms", Some(false))),
            "false",
        ),
        (
            json!({"type": "bucket-encryption", "bucket_key_enabled": true}),
            enc(sse("aws:kms", None)),
            "false",
        ),
        (
            json!({"type": "bucket-encryption", "bucket_key_enabled": false}),
            enc(sse("AES256", None)),
            "true",
        ),
        // No rules: bucket_key_enabled falls through to the `state` check (c7n quirk).
        (
            json!({"type": "bucket-encryption", "bucket_key_enabled": true}),
            enc(json!({})),
            "false",
        ),
        (
            json!({"type": "bucket-encryption", "bucket_key_enabled": false, "state": false}),
            enc(json!({})),
            "true",
        ),
        (
            json!({"type": "check-public-block"}),
            block(pab(true, true, true, true)),
            "false",
        ),
        (
            json!({"type": "check-public-block"}),
            block(pab(true, false, true, true)),
            "true",
        ),
        (
            json!({"type": "check-public-block", "BlockPublicAcls": true}),
            block(pab(true, false, false, false)),
            "true",
        ),
        (
            json!({"type": "check-public-block", "BlockPublicAcls": false}),
            block(pab(true, false, false, false)),
            "false",
        ),
        (
            json!({"type": "check-public-block", "BlockPublicAcls": true, "BlockPublicPolicy": true}),
            block(pab(true, true, false, true)),
            "false",
        ),
        (
            json!({"type": "check-public-block", "IgnorePublicAcls": false, "RestrictPublicBuckets": false}),
            block(pab(true, false, true, false)),
            "true",
        ),
        (
            json!({"type": "missing-policy-statement", "statement_ids": ["DenyHttp"]}),
            json!({}),
            "false",
        ),
        (
            json!({"type": "missing-policy-statement", "statement_ids": ["Other"]}),
            json!({}),
            "true",
        ),
        (
            json!({"type": "missing-statement", "statement_ids": ["DenyHttp", "Other"]}),
            json!({}),
            "true",
        ),
        (
            json!({"type": "missing-policy-statement", "statement_ids": ["X"]}),
            json!({"Policy": null}),
            "true",
        ),
        (
            json!({"type": "missing-policy-statement", "statement_ids": []}),
            json!({}),
            "false",
        ),
        (
            json!({"type": "missing-policy-statement", "statement_ids": ["X"]}),
            json!({"Policy": "not json"}),
            "error",
        ),
        (
            json!({"type": "has-statement", "statement_ids": ["DenyHttp"]}),
            json!({}),
            "true",
        ),
        (
            json!({"type": "has-statement", "statement_ids": ["Nope"]}),
            json!({}),
            "false",
        ),
        (
            json!({"type": "has-statement", "statement_ids": ["DenyHttp"]}),
            json!({"Policy": null}),
            "false",
        ),
        (
            json!({"type": "has-statement", "statements": [{"Effect": "Deny", "Action": "S3:GETOBJECT", "Principal": "*"}]}),
            json!({}),
            "true",
        ),
        (
            json!({"type": "has-statement", "statements": [{"Effect": "Deny", "Action": ["s3:GetObject"], "Principal": "*"}]}),
            json!({}),
            "true",
        ),
        (
            json!({"type": "has-statement", "statements": [{"Effect": "Allow", "Action": "s3:GetObject"}]}),
            json!({}),
            "false",
        ),
        (
            json!({"type": "has-statement", "statements": [{"Effect": "Deny", "Condition": {"bool": {"AWS:SecureTransport": "false"}}}]}),
            json!({}),
            "true",
        ),
        (
            json!({"type": "has-statement", "statements": [{"Effect": "Deny", "Resource": ["arn:aws:s3:::b1/*"]}]}),
            json!({"Policy": policy_doc(deny_http.clone())}),
            "true",
        ),
        (
            json!({"type": "has-statement", "statements": [{"Effect": "Deny", "NotAction": "s3:*"}]}),
            json!({}),
            "false",
        ),
        (
            json!({"type": "global-grants"}),
            json!({"Website": null}),
            "true",
        ),
        (
            json!({"type": "global-grants", "permissions": ["READ_ACP"]}),
            json!({"Website": null}),
            "false",
        ),
        (
            json!({"type": "global-grants", "permissions": ["WRITE"]}),
            json!({"Website": {"IndexDocument": {"Suffix": "index.html"}}}),
            "true",
        ),
        (
            json!({"type": "global-grants", "permissions": ["READ"]}),
            json!({"Website": {"IndexDocument": {"Suffix": "index.html"}}}),
            "false",
        ),
        (
            json!({"type": "global-grants", "permissions": ["READ"], "allow_website": false}),
            json!({"Website": {"IndexDocument": {"Suffix": "index.html"}}}),
            "true",
        ),
        (
            json!({"type": "global-grants"}),
            json!({"Acl": {"Grants": []}, "Website": null}),
            "false",
        ),
        (
            json!({"type": "global-grants"}),
            json!({"Acl": null, "Website": null}),
            "false",
        ),
        (
            json!({"or": [{"type": "check-public-block"}, {"type": "global-grants"}]}),
            json!({"Website": null, "c7n:PublicAccessBlock": pab(true, true, true, true)}),
            "true",
        ),
        (
            json!({"not": [{"type": "bucket-encryption"}]}),
            enc(json!({})),
            "true",
        ),
    ]
}

fn czero(filter: &Value, resource: &Value) -> String {
    let doc =
        json!({"policies": [{"name": "t", "resource": "aws.s3", "filters": [filter]}]}).to_string();
    let file = parse_str("case", &doc).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let p = &file.policies[0];
    assert!(p.unsupported.is_empty(), "{filter}: {:?}", p.unsupported);
    match p.filters[0].matches(resource, &EvalContext { now: Utc::now() }) {
        Ok(b) => b.to_string(),
        Err(_) => "error".into(),
    }
}

#[test]
fn s3_filter_table() {
    for (f, patch, want) in cases() {
        assert_eq!(
            czero(&f, &bucket(patch.clone())),
            want,
            "filter {f} with {patch}"
        );
    }
}

#[test]
fn needs_and_missing_annotations() {
    let doc = r#"{"policies": [{"name": "t", "resource": "s3", "filters": [{"not": [{"type": "bucket-encryption"}]}, {"type": "check-public-block"}]}]}"#;
    let p = parse_str("x", doc).unwrap().policies.remove(0);
    assert_eq!(
        p.needs(),
        Needs {
            bucket_encryption: true,
            public_access_block: true
        }
    );
    let err = p.filters[0]
        .matches(&json!({"Name": "b"}), &EvalContext { now: Utc::now() })
        .unwrap_err();
    assert!(err.to_string().contains("c7n:bucket-encryption"), "{err}");
    let doc = r#"{"policies": [{"name": "t", "resource": "s3", "filters": [{"tag:A": "x"}]}]}"#;
    assert_eq!(
        parse_str("x", doc).unwrap().policies[0].needs(),
        Needs::default()
    );
}

#[test]
fn c7n_agrees_on_every_s3_case() {
    let python = czero_testkit::python().expect("the project's Python with c7n (fail, not skip)");
    let cases = cases();
    let input: Vec<Value> = cases
        .iter()
        .map(|(f, p, _)| json!({"filter": f, "resource": bucket(p.clone())}))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c7n_s3_filter.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(serde_json::to_string(&input).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let c7n: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut bad = Vec::new();
    for ((f, p, want), got) in cases.iter().zip(&c7n) {
        let got = match got {
            Value::Bool(b) => b.to_string(),
            _ => "error".into(),
        };
        if got != *want {
            bad.push(format!("c7n {got}, table {want}: {f} with {p}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
