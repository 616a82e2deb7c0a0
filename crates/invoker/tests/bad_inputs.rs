//! Bad events and bad mapping files: each gives one clear error or a documented skip.

#![allow(clippy::unwrap_used)]

use czero_invoker::event::{Parsed, parse_bytes};
use czero_invoker::mapping::Mapping;

const ENV: &str = r#""version":"0","id":"e","account":"1","region":"us-east-1""#;

fn ev(detail_type: &str, source: &str, detail: &str) -> String {
    format!(r#"{{{ENV},"detail-type":"{detail_type}","source":"{source}","detail":{detail}}}"#)
}

#[test]
fn bad_events() {
    let ct = "AWS API Call via CloudTrail";
    let hub = "Security Hub Findings - Imported";
    let gd = "GuardDuty Finding";
    let cfg = "Config Rules Compliance Change";
    let huge = format!(r#"{{"x":"{}"}}"#, "a".repeat(2 * 1024 * 1024));
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "not valid JSON"),
        ("{".into(), "not valid JSON"),
        ("[]".into(), "expected a JSON object"),
        ("42".into(), "expected a JSON object"),
        ("null".into(), "expected a JSON object"),
        (huge, "larger than"),
        (r#"{"source":"aws.s3","detail":{}}"#.into(), "detail-type"),
        (r#"{"detail-type":"x","detail":{}}"#.into(), "source"),
        (
            format!(r#"{{"detail-type":"{ct}","source":"aws.s3"}}"#),
            "detail",
        ),
        (
            r#"{"detail-type":1,"source":"aws.s3","detail":{}}"#.to_string(),
            "event field `detail-type`: expected a string",
        ),
        // Envelope type errors name their field (serde's own messages do not).
        (
            r#"{"detail-type":"x","source":null,"detail":{}}"#.to_string(),
            "event field `source`: expected a string",
        ),
        (
            r#"{"id":7,"detail-type":"x","source":"aws.s3","detail":{}}"#.to_string(),
            "event field `id`: expected a string",
        ),
        (
            r#"{"region":["us-east-1"],"detail-type":"x","source":"aws.s3","detail":{}}"#
                .to_string(),
            "event field `region`: expected a string",
        ),
        (
            r#"{"time":"yesterday","detail-type":"x","source":"aws.s3","detail":{}}"#.to_string(),
            "event field `time`: expected an RFC 3339 timestamp",
        ),
        (
            r#"{"resources":["a",1],"detail-type":"x","source":"aws.s3","detail":{}}"#.to_string(),
            "event field `resources`: expected an array of strings",
        ),
        (ev(ct, "aws.s3", "[]"), "`detail`"),
        (ev(ct, "aws.s3", "{}"), "detail.eventName"),
        (ev(ct, "aws.s3", r#"{"eventName":5}"#), "detail.eventName"),
        (
            ev(
                ct,
                "aws.s3",
                r#"{"eventName":"CreateBucket","requestParameters":"x"}"#,
            ),
            "detail.requestParameters",
        ),
        (
            ev(
                ct,
                "aws.s3",
                r#"{"eventName":"CreateBucket","requestParameters":{"bucketName":[1]}}"#,
            ),
            "bucketName",
        ),
        (
            ev(
                ct,
                "aws.s3",
                r#"{"eventName":"CreateBucket","errorCode":7}"#,
            ),
            "detail.errorCode",
        ),
        (
            ev(
                ct,
                "aws.s3",
                r#"{"eventName":"CreateBucket","errorCode":"AccessDenied"}"#,
            ),
            "SKIP CloudTrail call CreateBucket failed with AccessDenied",
        ),
        (ev(hub, "aws.securityhub", "{}"), "detail.findings"),
        (
            ev(hub, "aws.securityhub", r#"{"findings":[]}"#),
            "at least one finding",
        ),
        (
            ev(hub, "aws.securityhub", r#"{"findings":[1]}"#),
            "detail.findings[0]",
        ),
        (
            ev(hub, "aws.securityhub", r#"{"findings":[{}]}"#),
            "detail.findings[0].Resources",
        ),
        (
            ev(
                hub,
                "aws.securityhub",
                r#"{"findings":[{"Resources":[{}]}]}"#,
            ),
            "Resources[0].Id",
        ),
        (
            ev(
                hub,
                "aws.securityhub",
                r#"{"findings":[{"Types":"x","Resources":[]}]}"#,
            ),
            "Types",
        ),
        (
            ev(
                hub,
                "aws.securityhub",
                r#"{"findings":[{"Severity":{"Label":"BAD"},"Resources":[]}]}"#,
            ),
            "Severity.Label",
        ),
        (ev(gd, "aws.guardduty", "{}"), "detail.type"),
        (
            ev(
                gd,
                "aws.guardduty",
                r#"{"type":"T","severity":"high","resource":{}}"#,
            ),
            "detail.severity",
        ),
        (
            ev(gd, "aws.guardduty", r#"{"type":"T"}"#),
            "detail.resource",
        ),
        (
            ev(
                gd,
                "aws.guardduty",
                r#"{"type":"T","resource":{"s3BucketDetails":{}}}"#,
            ),
            "s3BucketDetails",
        ),
        (ev(cfg, "aws.config", "{}"), "detail.resourceId"),
        (
            ev(cfg, "aws.config", r#"{"resourceId":"b","resourceType":3}"#),
            "detail.resourceType",
        ),
        (
            ev("Scheduled Event", "aws.events", "{}"),
            "SKIP unsupported event kind",
        ),
        (
            ev(hub, "aws.guardduty", "{}"),
            "SKIP unsupported event kind",
        ),
    ];
    assert!(cases.len() >= 30);
    for (input, want) in &cases {
        let got = match parse_bytes(input.as_bytes()) {
            Ok(Parsed::Skip(s)) => format!("SKIP {s}"),
            Ok(Parsed::Event(e)) => format!("EVENT {e:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            got.contains(want),
            "input {:.80}: want `{want}`, got `{got:.200}`",
            input
        );
    }
}

/// Found by the `event_parse` fuzz target: invalid UTF-8 inside a field the parser never
/// reads. serde_json's typed decode (the Lambda runtime's) skips unknown fields without
/// checking their strings and accepts it; `parse_bytes` decodes the whole document and must
/// refuse it as not JSON, with the position, rather than guess.
#[test]
fn invalid_utf8_in_an_unknown_field_is_not_json() {
    let input: &[u8] = b"{\"version\":\"0\",\"im\":\"7bf73129-1\xd028-4cd3\",\
        \"detail-type\":\"EC2 Instance State-change Notification\",\"source\":\"aws.ec2\",\
        \"detail\":{}}";
    let err = parse_bytes(input).unwrap_err().to_string();
    assert!(
        err.starts_with("event is not valid JSON: invalid unicode code point at line 1 column"),
        "{err}"
    );
    // The typed decode is lenient here; both paths agree once the field is valid.
    let typed: Result<aws_lambda_events::eventbridge::EventBridgeEvent, _> =
        serde_json::from_slice(input);
    assert!(typed.is_ok());
    let valid = String::from_utf8_lossy(input).into_owned();
    assert!(matches!(parse_bytes(valid.as_bytes()), Ok(Parsed::Skip(_))));
}

#[test]
fn bad_mappings() {
    let rule = |body: &str| format!(r#"{{"version":1,"rules":[{{"name":"r1",{body}}}]}}"#);
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "not valid JSON"),
        (r#"{"version":1}"#.into(), "rules"),
        (
            r#"{"version":2,"rules":[]}"#.into(),
            "version 2 is not supported",
        ),
        (
            r#"{"version":1,"rules":[],"extra":1}"#.into(),
            "unknown field `extra`",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"colour":1"#),
            "rule 0 (`r1`): unknown field `colour`",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"match":{"sauce":["x"]}"#),
            "rule 0 (`r1`): unknown field `sauce`",
        ),
        (rule(r#""policies":[]"#), "`policies` is empty"),
        (
            rule(r#""policies":["config/a.yml"]"#),
            "`config/a.yml` is not under `policies/`",
        ),
        (
            rule(r#""policies":["policies/../config/a.yml"]"#),
            "contains `..`",
        ),
        (
            rule(r#""policies":["/policies/a.yml"]"#),
            "not under `policies/`",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"match":{"source":["re:("]}"#),
            "match.source: bad pattern",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"match":{"region":[""]}"#),
            "match.region: empty pattern",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"match":{"account":[]}"#),
            "match.account: empty list",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"match":{"minSeverity":"SEVERE"}"#),
            "unknown variant",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"match":{"source":"aws.s3"}"#),
            "invalid type",
        ),
        (
            rule(r#""policies":["policies/a.yml"],"stop":"yes""#),
            "invalid type",
        ),
    ];
    for (input, want) in &cases {
        let got = Mapping::parse("s3://b/m.json", input.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(got.starts_with("s3://b/m.json"), "{got}");
        assert!(
            got.contains(want),
            "input {input}: want `{want}`, got `{got}`"
        );
    }
}
