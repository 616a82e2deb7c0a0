//! Event → resource ids, checked on real-shaped events and against c7n's own resolution.

use czero_policy::{Mode, matches_event, parse_str, resource_ids};
use serde_json::{Value, json};

const CREATE_BUCKET: &str = include_str!("../fixtures/events/cloudtrail-createbucket.json");
const PUT_ACL: &str = include_str!("../fixtures/events/cloudtrail-putbucketacl.json");
const HUB: &str = include_str!("../fixtures/events/securityhub-imported-s3.json");

fn ev(s: &str) -> Value {
    serde_json::from_str(s).expect("valid test data")
}

fn policy_with_mode(mode: &Value) -> czero_policy::Policy {
    let doc = json!({"policies": [{"name": "p", "resource": "aws.s3", "mode": mode}]}).to_string();
    parse_str("t", &doc)
        .unwrap_or_else(|e| panic!("{e}"))
        .policies
        .remove(0)
}

/// (mode, event) rows; each is checked against c7n.
fn cases() -> Vec<(Value, Value)> {
    let short = json!({"type": "cloudtrail", "events": ["CreateBucket"]});
    let long = json!({"type": "cloudtrail", "events": [{"source": "s3.amazonaws.com", "event": "PutBucketAcl", "ids": "requestParameters.bucketName"}]});
    let long_detail = json!({"type": "cloudtrail", "events": [{"source": "s3.amazonaws.com", "event": "PutBucketAcl", "ids": "detail.requestParameters.bucketName"}]});
    let list_ids = json!({"type": "cloudtrail", "events": [{"source": "s3.amazonaws.com", "event": "PutBucketAcl", "ids": "requestParameters.acl"}]});
    let null_ids = json!({"type": "cloudtrail", "events": [{"source": "s3.amazonaws.com", "event": "PutBucketAcl", "ids": "responseElements"}]});
    let mut other_name = ev(CREATE_BUCKET);
    other_name["detail"]["eventName"] = json!("RunInstances");
    other_name["detail"]["responseElements"] =
        json!({"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}});
    vec![
        (short.clone(), ev(CREATE_BUCKET)),
        (long.clone(), ev(PUT_ACL)),
        (long_detail, ev(PUT_ACL)),
        (long.clone(), ev(CREATE_BUCKET)),
        (list_ids, ev(PUT_ACL)),
        (null_ids, ev(PUT_ACL)),
        // c7n quirk: a short name resolves ids by the event's own name.
        (short, other_name),
        (json!({"type": "hub-finding"}), ev(HUB)),
        (json!({"type": "hub-action"}), {
            let mut e = ev(HUB);
            e["detail-type"] = json!("Security Hub Findings - Custom Action");
            e
        }),
    ]
}

fn czero_ids(mode: &Value, event: &Value) -> Value {
    let p = policy_with_mode(mode);
    match p.resource_ids(event) {
        Ok(ids) => json!(ids),
        Err(_) => json!("error"),
    }
}

#[test]
fn create_bucket_names_the_bucket() {
    let p = policy_with_mode(&json!({"type": "cloudtrail", "events": ["CreateBucket"]}));
    let e = ev(CREATE_BUCKET);
    assert!(matches_event(&p.mode, &e));
    assert_eq!(resource_ids(&p.mode, &e).unwrap(), ["example-bucket"]);
    assert!(!matches_event(&p.mode, &ev(PUT_ACL)));
    assert!(!matches_event(&p.mode, &ev(HUB)));
}

#[test]
fn hub_findings_give_arns_and_bucket_names() {
    let p = policy_with_mode(&json!({"type": "hub-finding"}));
    let e = ev(HUB);
    assert!(matches_event(&p.mode, &e));
    let arns = resource_ids(&p.mode, &e).unwrap();
    assert_eq!(
        arns,
        [
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc123def4567890",
            "arn:aws:iam::123456789012:user/dev",
            "arn:aws:s3:::logs-bucket",
            "arn:aws:s3:::public-bucket",
        ]
    );
    assert_eq!(
        p.resource_ids(&e).unwrap(),
        ["logs-bucket", "public-bucket"]
    );
    assert!(!matches_event(&Mode::HubAction, &e));
}

#[test]
fn insight_results_and_pull_mode_are_errors() {
    let mut e = ev(HUB);
    e["detail-type"] = json!("Security Hub Insight Results");
    assert!(resource_ids(&Mode::HubAction, &e).is_err());
    assert!(resource_ids(&Mode::Pull, &e).is_err());
    assert!(resource_ids(&Mode::CloudTrail { events: vec![] }, &json!({})).is_err());
}

#[test]
fn c7n_resolves_the_same_ids() {
    let python = czero_testkit::python().expect("the project's Python with c7n (fail, not skip)");
    let cases = cases();
    let input: Vec<Value> = cases
        .iter()
        .map(|(m, e)| json!({"mode": m, "event": e}))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c7n_events.py");
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
    for ((m, e), want) in cases.iter().zip(&c7n) {
        assert_eq!(
            &czero_ids(m, e),
            want,
            "mode {m} on {}",
            e["detail"]["eventName"]
        );
    }
}
