//! The event fixtures are EventBridge events as AWS delivers them: each has exactly the
//! envelope's fields and survives a round trip through a typed envelope unchanged.

mod common;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    version: String,
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    account: String,
    time: String,
    region: String,
    resources: Vec<String>,
    detail: Value,
}

const EVENTS: [(&str, &str, &str); 13] = [
    (
        "autoscaling-instance-launch-successful",
        fixture!("events/autoscaling-instance-launch-successful.json"),
        "aws.autoscaling",
    ),
    (
        "cloudtrail-authorize-security-group-ingress",
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        "aws.ec2",
    ),
    (
        "cloudtrail-create-access-key",
        fixture!("events/cloudtrail-create-access-key.json"),
        "aws.iam",
    ),
    (
        "cloudtrail-run-instances",
        fixture!("events/cloudtrail-run-instances.json"),
        "aws.ec2",
    ),
    (
        "config-configuration-item-change",
        fixture!("events/config-configuration-item-change.json"),
        "aws.config",
    ),
    (
        "config-rules-compliance-change",
        fixture!("events/config-rules-compliance-change.json"),
        "aws.config",
    ),
    (
        "ec2-instance-state-change-running",
        fixture!("events/ec2-instance-state-change-running.json"),
        "aws.ec2",
    ),
    (
        "guardduty-finding-ec2",
        fixture!("events/guardduty-finding-ec2.json"),
        "aws.guardduty",
    ),
    (
        "health-event-ec2-scheduled-retirement",
        fixture!("events/health-event-ec2-scheduled-retirement.json"),
        "aws.health",
    ),
    (
        "scheduled-event",
        fixture!("events/scheduled-event.json"),
        "aws.events",
    ),
    (
        "scheduler-invocation",
        fixture!("events/scheduler-invocation.json"),
        "aws.scheduler",
    ),
    (
        "securityhub-findings-custom-action",
        fixture!("events/securityhub-findings-custom-action.json"),
        "aws.securityhub",
    ),
    (
        "securityhub-findings-imported",
        fixture!("events/securityhub-findings-imported.json"),
        "aws.securityhub",
    ),
];

#[test]
fn event_fixtures_are_eventbridge_envelopes_and_round_trip() {
    for (name, text, source) in EVENTS {
        let raw: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let env: Envelope =
            serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(env.version, "0", "{name}");
        assert_eq!(env.source, source, "{name}");
        assert_eq!(env.account.len(), 12, "{name}");
        assert!(env.account.chars().all(|c| c.is_ascii_digit()), "{name}");
        assert!(env.time.ends_with('Z'), "{name}");
        assert_eq!(serde_json::to_value(&env).unwrap(), raw, "{name}");
    }
    let listed = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/events"
    ))
    .unwrap()
    .count();
    assert_eq!(listed, EVENTS.len(), "every event fixture is listed here");
}
