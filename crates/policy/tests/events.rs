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

fn policy_for(resource: &str, mode: &Value) -> Result<czero_policy::Policy, String> {
    let doc = json!({"policies": [{"name": "p", "resource": resource, "mode": mode}]}).to_string();
    parse_str("t", &doc)
        .map(|mut f| f.policies.remove(0))
        .map_err(|e| e.to_string())
}

fn envelope(source: &str, detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0", "id": "e-1", "source": source, "detail-type": detail_type,
        "account": "123456789012", "region": "us-east-1", "time": "2026-01-01T00:00:00Z",
        "resources": [], "detail": detail,
    })
}

/// Every one of c7n's twelve modes: which events its rule would deliver, and what ids it
/// resolves (or that it scans), as c7n/mu.py and c7n/cwe.py define them.
#[test]
fn every_mode_has_a_subscription_and_a_resolution() {
    let scheduled = envelope("aws.events", "Scheduled Event", json!({}));
    let ec2_state = envelope(
        "aws.ec2",
        "EC2 Instance State-change Notification",
        json!({"instance-id": "i-0abc", "state": "running"}),
    );
    let asg = envelope(
        "aws.autoscaling",
        "EC2 Instance Launch Successful",
        json!({"AutoScalingGroupName": "web-asg", "EC2InstanceId": "i-1"}),
    );
    let guard_duty = envelope(
        "aws.guardduty",
        "GuardDuty Finding",
        json!({"accountId": "123456789012", "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc"}}}),
    );
    let phd = envelope(
        "aws.health",
        "AWS Health Event",
        json!({"eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "eventTypeCategory": "scheduledChange", "eventArn": "arn:aws:health:us-east-1::event/x"}),
    );
    let compliance = envelope(
        "aws.config",
        "Config Rules Compliance Change",
        json!({"resourceId": "my-bucket", "resourceType": "AWS::S3::Bucket", "configRuleName": "s3-bucket-server-side-encryption-enabled", "newEvaluationResult": {"complianceType": "NON_COMPLIANT"}}),
    );
    let item = envelope(
        "aws.config",
        "Config Configuration Item Change",
        json!({"configurationItem": {"resourceId": "my-bucket", "resourceType": "AWS::S3::Bucket"}}),
    );
    let trail = ev(CREATE_BUCKET);
    // (resource, mode, event, delivered, ids: Some(list) or None for "scans / not resolved here")
    type Row<'a> = (&'a str, Value, &'a Value, bool, Option<Vec<&'a str>>);
    let rows: Vec<Row> = vec![
        ("aws.s3", json!({"type": "pull"}), &trail, false, None),
        (
            "aws.s3",
            json!({"type": "periodic", "schedule": "rate(1 day)"}),
            &scheduled,
            true,
            None,
        ),
        (
            "aws.s3",
            json!({"type": "periodic", "schedule": "rate(1 day)"}),
            &trail,
            false,
            None,
        ),
        (
            "aws.s3",
            json!({"type": "schedule", "schedule": "rate(1 day)"}),
            &scheduled,
            true,
            None,
        ),
        (
            "aws.s3",
            json!({"type": "cloudtrail", "events": ["CreateBucket"]}),
            &trail,
            true,
            Some(vec!["example-bucket"]),
        ),
        (
            "aws.s3",
            json!({"type": "hub-finding"}),
            &trail,
            false,
            None,
        ),
        (
            "aws.s3",
            json!({"type": "config-rule"}),
            &compliance,
            true,
            Some(vec!["my-bucket"]),
        ),
        (
            "aws.s3",
            json!({"type": "config-rule"}),
            &item,
            true,
            Some(vec!["my-bucket"]),
        ),
        (
            "aws.s3",
            json!({"type": "config-rule"}),
            &trail,
            false,
            None,
        ),
        (
            "aws.s3",
            json!({"type": "config-poll-rule", "schedule": "One_Hour", "ignore-support-check": true}),
            &scheduled,
            false,
            None,
        ),
        (
            "ec2",
            json!({"type": "guard-duty"}),
            &guard_duty,
            true,
            None,
        ),
        ("ec2", json!({"type": "guard-duty"}), &trail, false, None),
        (
            "aws.ec2",
            json!({"type": "ec2-instance-state", "events": ["running"]}),
            &ec2_state,
            true,
            Some(vec!["i-0abc"]),
        ),
        (
            "aws.ec2",
            json!({"type": "ec2-instance-state", "events": ["stopped"]}),
            &ec2_state,
            false,
            Some(vec!["i-0abc"]),
        ),
        (
            "aws.asg",
            json!({"type": "asg-instance-state", "events": ["launch-success"]}),
            &asg,
            true,
            Some(vec!["web-asg"]),
        ),
        (
            "aws.asg",
            json!({"type": "asg-instance-state", "events": ["terminate-success"]}),
            &asg,
            false,
            Some(vec!["web-asg"]),
        ),
        (
            "aws.ec2",
            json!({"type": "phd", "events": ["AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"]}),
            &phd,
            true,
            None,
        ),
        (
            "aws.ec2",
            json!({"type": "phd", "categories": ["issue"]}),
            &phd,
            false,
            None,
        ),
    ];
    for (resource, mode, event, delivered, ids) in rows {
        let p = policy_for(resource, &mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(
            matches_event(&p.mode, event),
            delivered,
            "{mode} on {}",
            event["detail-type"]
        );
        match (ids, resource_ids(&p.mode, event)) {
            (Some(want), Ok(got)) => assert_eq!(got, want, "{mode}"),
            (None, Err(_)) => {}
            (want, got) => panic!("{mode}: expected {want:?}, got {got:?}"),
        }
        assert_eq!(
            p.mode.is_event_mode(),
            !matches!(
                mode["type"].as_str(),
                Some("pull" | "periodic" | "schedule" | "config-poll-rule")
            ),
            "{mode}"
        );
    }
}

#[test]
fn native_modes_for_s3_and_the_rest_for_cloud_custodian() {
    let native = [
        "pull",
        "periodic",
        "schedule",
        "cloudtrail",
        "hub-finding",
        "hub-action",
        "config-rule",
    ];
    for (mode, want_native) in [
        (json!({"type": "pull"}), true),
        (json!({"type": "periodic", "schedule": "rate(1 day)"}), true),
        (json!({"type": "schedule", "schedule": "rate(1 day)"}), true),
        (
            json!({"type": "cloudtrail", "events": ["CreateBucket"]}),
            true,
        ),
        (json!({"type": "hub-finding"}), true),
        (json!({"type": "hub-action"}), true),
        (json!({"type": "config-rule"}), true),
        (
            json!({"type": "config-poll-rule", "schedule": "One_Hour", "ignore-support-check": true}),
            false,
        ),
        (json!({"type": "phd", "events": ["X"]}), false),
    ] {
        let p = policy_for("aws.s3", &mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(p.is_native(), want_native, "{mode}");
        assert_eq!(native.contains(&p.mode.name()), want_native);
    }
    let ec2 = policy_for(
        "aws.security-group",
        &json!({"type": "cloudtrail", "events": ["CreateBucket"]}),
    )
    .unwrap();
    assert!(!ec2.is_native());
}

#[test]
fn modes_are_validated_as_c7n_validates_them() {
    let bad = [
        (
            json!({"type": "guard-duty"}),
            "aws.s3",
            "guard-duty mode supports only",
        ),
        // c7n compares the name as written: the long form is refused too.
        (
            json!({"type": "guard-duty"}),
            "aws.ec2",
            "guard-duty mode supports only",
        ),
        (json!({"type": "schedule"}), "aws.s3", "requires `schedule`"),
        (
            json!({"type": "config-poll-rule"}),
            "aws.s3",
            "schedule required",
        ),
        (
            json!({"type": "config-poll-rule", "schedule": "Hourly"}),
            "aws.s3",
            "must be one of",
        ),
        (
            json!({"type": "ec2-instance-state", "events": ["rebooting"]}),
            "aws.ec2",
            "is not one of",
        ),
        (
            json!({"type": "asg-instance-state", "events": ["launch"]}),
            "aws.asg",
            "is not one of",
        ),
        (
            json!({"type": "config-rule", "pattern": {"a": 1}}),
            "aws.s3",
            "does not support event pattern",
        ),
        (
            json!({"type": "periodic", "schedul": "x"}),
            "aws.s3",
            "unknown key `schedul`",
        ),
    ];
    for (mode, resource, want) in bad {
        let err = policy_for(resource, &mode).expect_err(&mode.to_string());
        assert!(err.contains(want), "{mode}: {err}");
    }
}
