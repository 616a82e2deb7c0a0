//! Every c7n execution mode through the driver, on a private moto server with realistic
//! EventBridge events (tests/fixtures/events): what c7n matched, which actions ran and the
//! state afterwards. Each event-mode case also checks the decoys (resources in the same
//! state that the event does not name) were left alone.

mod common;

use common::{
    FIXTURE_ASG_INSTANCE, FIXTURE_INSTANCE, FIXTURE_SG, HTTPS_INTERNAL, SSH_OPEN, Setup, event,
    ingress, policy,
};
use czero_driver::DriverError;
use serde_json::Value;

const DECOY_SGS: [&str; 3] = ["decoy-ssh-1", "decoy-ssh-2", "decoy-ssh-3"];

/// The target group lost its open SSH rule and kept the other one; the decoys are as seeded.
fn assert_only_target_sg_fixed(state: &Value) {
    assert_eq!(
        ingress(state, "web-ssh-open"),
        vec![HTTPS_INTERNAL],
        "{state}"
    );
    for d in DECOY_SGS {
        assert_eq!(
            ingress(state, d),
            vec![SSH_OPEN, HTTPS_INTERNAL],
            "{d}: {state}"
        );
    }
}

fn assert_every_sg_fixed(state: &Value) {
    for g in std::iter::once("web-ssh-open").chain(DECOY_SGS) {
        assert_eq!(ingress(state, g), vec![HTTPS_INTERNAL], "{g}: {state}");
    }
}

fn instance<'a>(state: &'a Value, name: &str) -> &'a Value {
    &state["instances"][name]
}

fn has_tag(v: &Value, key: &str, value: &str) -> bool {
    v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t[0] == key && t[1] == value)
}

#[tokio::test]
async fn pull_scans_every_security_group() {
    let s = Setup::new("sg");
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/sg-ssh-pull.yml")), None))
        .await
        .unwrap();
    assert_eq!(r.mode, "pull");
    assert_eq!(r.resource_type, "aws.security-group");
    let mut expected: Vec<String> = s.ids["decoy_sgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    expected.push(s.id("sg"));
    let mut got = r.resource_ids.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(r.actions, vec!["remove-permissions"]);
    assert_every_sg_fixed(&s.snapshot());
}

#[tokio::test]
async fn event_mode_policy_without_event_runs_as_a_pull_scan() {
    let s = Setup::new("sg");
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/sg-ssh-cloudtrail.yml")), None))
        .await
        .unwrap();
    assert_eq!(r.mode, "cloudtrail");
    assert_eq!(r.resource_ids.len(), 4, "{r:?}");
    assert_every_sg_fixed(&s.snapshot());
    // A pull scan never provisions anything: c7n would log "Provisioning policy lambda".
    assert!(!r.log_tail.contains("Provisioning"), "{}", r.log_tail);
}

#[tokio::test]
async fn periodic_runs_pull_mode_on_its_schedule_event() {
    let s = Setup::new("sg");
    let ev = event(fixture!("events/scheduled-event.json"), &[]);
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/sg-ssh-periodic.yml")), Some(ev)))
        .await
        .unwrap();
    assert_eq!(r.mode, "periodic");
    assert_eq!(r.resource_ids.len(), 4, "{r:?}");
    assert_eq!(r.actions, vec!["remove-permissions"]);
    assert_every_sg_fixed(&s.snapshot());
}

#[tokio::test]
async fn schedule_runs_pull_mode_on_an_eventbridge_scheduler_invocation() {
    let s = Setup::new("sg");
    // EventBridge Scheduler's default payload has the detail as the string "{}".
    let ev = event(fixture!("events/scheduler-invocation.json"), &[]);
    assert_eq!(ev["detail"], "{}");
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/sg-ssh-schedule.yml")), Some(ev)))
        .await
        .unwrap();
    assert_eq!(r.mode, "schedule");
    assert_eq!(r.resource_ids.len(), 4, "{r:?}");
    assert_every_sg_fixed(&s.snapshot());
}

/// The regression this crate exists for: the old fallback stripped the mode and pinned
/// `{key: Name, op: in}`, which matched nothing on a security group (exit 0, count 0) and
/// left port 22 open.
#[tokio::test]
async fn cloudtrail_security_group_ingress_removes_the_open_ssh_rule() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let ev = event(
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        &[(FIXTURE_SG, &sg)],
    );
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/sg-ssh-cloudtrail.yml")), Some(ev)))
        .await
        .unwrap();
    assert_eq!(r.mode, "cloudtrail");
    assert_eq!(r.resource_ids, vec![sg.clone()]);
    assert_eq!(r.actions, vec!["remove-permissions"]);
    assert_only_target_sg_fixed(&s.snapshot());
    assert_eq!(common::resource_ids(&r.output_folder, "GroupId"), vec![sg]);
}

#[tokio::test]
async fn cloudtrail_run_instances_tags_and_stops_the_new_instance() {
    let s = Setup::new("ec2");
    let id = s.id("instance");
    let ev = event(
        fixture!("events/cloudtrail-run-instances.json"),
        &[(FIXTURE_INSTANCE, &id)],
    );
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/ec2-runinstances.yml")), Some(ev)))
        .await
        .unwrap();
    assert_eq!(r.resource_ids, vec![id]);
    assert_eq!(r.actions, vec!["tag", "stop"]);
    let state = s.snapshot();
    let launched = instance(&state, "launched");
    assert_eq!(launched["state"], "stopped", "{state}");
    assert!(has_tag(launched, "Owner", "unassigned"), "{state}");
    for d in ["decoy-1", "decoy-2"] {
        assert_eq!(instance(&state, d)["state"], "running", "{state}");
        assert!(!has_tag(instance(&state, d), "Owner", "unassigned"));
    }
}

#[tokio::test]
async fn cloudtrail_create_access_key_disables_the_users_key() {
    let s = Setup::new("iam-user");
    let ev = event(fixture!("events/cloudtrail-create-access-key.json"), &[]);
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/iam-user-createaccesskey.yml")),
            Some(ev),
        ))
        .await
        .unwrap();
    assert_eq!(r.resource_type, "aws.iam-user");
    assert_eq!(r.resource_ids, vec!["alice"]);
    assert_eq!(r.actions, vec!["remove-keys"]);
    let state = s.snapshot();
    assert_eq!(state["users"]["alice"], serde_json::json!(["Inactive"]));
    assert_eq!(state["users"]["decoy-bob"], serde_json::json!(["Active"]));
    assert_eq!(state["users"]["decoy-carol"], serde_json::json!(["Active"]));
}

#[tokio::test]
async fn hub_finding_remediates_the_security_group_the_finding_names() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let ev = event(
        fixture!("events/securityhub-findings-imported.json"),
        &[(FIXTURE_SG, &sg)],
    );
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/sg-ssh-hub-finding.yml")),
            Some(ev),
        ))
        .await
        .unwrap();
    assert_eq!(r.mode, "hub-finding");
    assert_eq!(r.resource_ids, vec![sg]);
    assert_eq!(r.actions, vec!["remove-permissions"]);
    let state = s.snapshot();
    assert!(ingress(&state, "web-ssh-open").is_empty(), "{state}");
    for d in DECOY_SGS {
        assert_eq!(
            ingress(&state, d),
            vec![SSH_OPEN, HTTPS_INTERNAL],
            "{d}: {state}"
        );
    }
}

#[tokio::test]
async fn hub_action_stops_the_instance_of_the_custom_action() {
    let s = Setup::new("ec2");
    let id = s.id("instance");
    let ev = event(
        fixture!("events/securityhub-findings-custom-action.json"),
        &[(FIXTURE_INSTANCE, &id)],
    );
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/ec2-hub-action.yml")), Some(ev)))
        .await
        .unwrap();
    assert_eq!(r.mode, "hub-action");
    assert_eq!(r.resource_ids, vec![id]);
    assert_eq!(r.actions, vec!["stop"]);
    let state = s.snapshot();
    assert_eq!(instance(&state, "launched")["state"], "stopped");
    assert_eq!(instance(&state, "decoy-1")["state"], "running");
}

#[tokio::test]
async fn guard_duty_quarantines_the_instance_under_attack() {
    let s = Setup::new("ec2");
    let id = s.id("instance");
    let ev = event(
        fixture!("events/guardduty-finding-ec2.json"),
        &[(FIXTURE_INSTANCE, &id)],
    );
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/ec2-guard-duty.yml")), Some(ev)))
        .await
        .unwrap();
    assert_eq!(r.mode, "guard-duty");
    assert_eq!(r.resource_ids, vec![id]);
    assert_eq!(r.actions, vec!["tag", "stop"]);
    let state = s.snapshot();
    let launched = instance(&state, "launched");
    assert_eq!(launched["state"], "stopped");
    assert!(has_tag(launched, "Quarantine", "guardduty"), "{state}");
    assert_eq!(instance(&state, "decoy-1")["state"], "running");
}

#[tokio::test]
async fn config_rule_on_a_configuration_item_change_event() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let ev = event(
        fixture!("events/config-configuration-item-change.json"),
        &[(FIXTURE_SG, &sg)],
    );
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/sg-ssh-config-rule.yml")),
            Some(ev),
        ))
        .await
        .unwrap();
    assert_eq!(r.mode, "config-rule");
    assert_eq!(r.resource_ids, vec![sg]);
    assert_eq!(r.actions, vec!["remove-permissions"]);
    assert_only_target_sg_fixed(&s.snapshot());
    let log = std::fs::read_to_string(r.output_folder.join("custodian-run.log")).unwrap();
    assert!(log.contains("PutEvaluations not called"), "{log}");
}

#[tokio::test]
async fn config_rule_on_a_compliance_change_event() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let ev = event(
        fixture!("events/config-rules-compliance-change.json"),
        &[(FIXTURE_SG, &sg)],
    );
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/sg-ssh-config-rule.yml")),
            Some(ev),
        ))
        .await
        .unwrap();
    assert_eq!(r.resource_ids, vec![sg]);
    assert_only_target_sg_fixed(&s.snapshot());
    let log = std::fs::read_to_string(r.output_folder.join("custodian-run.log")).unwrap();
    assert!(log.contains("Config Rules Compliance Change"), "{log}");
    assert!(log.contains("PutEvaluations not called"), "{log}");
}

#[tokio::test]
async fn config_rule_ignores_a_deleted_configuration_item() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let mut ev = event(
        fixture!("events/config-configuration-item-change.json"),
        &[(FIXTURE_SG, &sg)],
    );
    ev["detail"]["configurationItem"]["configurationItemStatus"] = "ResourceDeleted".into();
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/sg-ssh-config-rule.yml")),
            Some(ev),
        ))
        .await
        .unwrap();
    assert!(r.resource_ids.is_empty());
    assert!(r.actions.is_empty());
    let state = s.snapshot();
    assert_eq!(
        ingress(&state, "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );
}

#[tokio::test]
async fn config_poll_rule_is_an_unsupported_mode() {
    let s = Setup::new("sg");
    let ev = event(fixture!("events/scheduled-event.json"), &[]);
    let e = s
        .driver
        .run(s.request(
            policy(fixture!("policies/sg-ssh-config-poll-rule.yml")),
            Some(ev),
        ))
        .await
        .unwrap_err();
    match &e {
        DriverError::UnsupportedMode { mode, message } => {
            assert_eq!(mode, "config-poll-rule");
            assert!(message.contains("periodic"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(!e.is_retryable());
    let state = s.snapshot();
    assert_eq!(
        ingress(&state, "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );
}

#[tokio::test]
async fn ec2_instance_state_tags_the_instance_that_started() {
    let s = Setup::new("ec2");
    let id = s.id("instance");
    let ev = event(
        fixture!("events/ec2-instance-state-change-running.json"),
        &[(FIXTURE_INSTANCE, &id)],
    );
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/ec2-instance-state.yml")),
            Some(ev),
        ))
        .await
        .unwrap();
    assert_eq!(r.mode, "ec2-instance-state");
    assert_eq!(r.resource_ids, vec![id]);
    let state = s.snapshot();
    assert!(has_tag(instance(&state, "launched"), "Owner", "unassigned"));
    assert!(!has_tag(instance(&state, "decoy-1"), "Owner", "unassigned"));
}

#[tokio::test]
async fn asg_instance_state_tags_the_group_that_launched() {
    let s = Setup::new("asg");
    let instance_id = s.id("asg_instance");
    let ev = event(
        fixture!("events/autoscaling-instance-launch-successful.json"),
        &[(FIXTURE_ASG_INSTANCE, &instance_id)],
    );
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/asg-instance-state.yml")),
            Some(ev),
        ))
        .await
        .unwrap();
    assert_eq!(r.mode, "asg-instance-state");
    assert_eq!(r.resource_type, "aws.asg");
    assert_eq!(r.resource_ids, vec!["web-asg"]);
    let state = s.snapshot();
    assert_eq!(
        state["asgs"]["web-asg"],
        serde_json::json!([["Owner", "unassigned"]])
    );
    assert_eq!(state["asgs"]["decoy-asg"], serde_json::json!([]));
}

/// moto 5.2.5 has no AWS Health API: c7n's PHDMode.resolve_resources calls
/// DescribeAffectedEntities, which the emulator answers with a 500. The outcome must be a
/// clear Failed naming the call (a 5xx, so retryable), and nothing may change.
#[tokio::test]
async fn phd_fails_clearly_where_the_health_api_is_missing() {
    let moto = common::moto();
    let ids = common::seed(&moto, "ec2", "us-east-1");
    let mut env = common::aws_env(&moto, &moto.endpoint());
    // One attempt: botocore would otherwise retry the 500 four times with backoff.
    env.push(("AWS_MAX_ATTEMPTS".into(), "1".into()));
    let driver = czero_driver::Driver::new(common::config_for(env));
    let out = tempfile::tempdir().unwrap();
    let id = ids["instance"].as_str().unwrap();
    let ev = event(
        fixture!("events/health-event-ec2-scheduled-retirement.json"),
        &[(FIXTURE_INSTANCE, id)],
    );
    let e = driver
        .run(common::request(
            policy(fixture!("policies/ec2-phd.yml")),
            Some(ev),
            out.path(),
        ))
        .await
        .unwrap_err();
    match &e {
        DriverError::Failed {
            message,
            error_type,
            retryable,
        } => {
            assert_eq!(error_type, "botocore.exceptions.ClientError");
            assert!(message.contains("DescribeAffectedEntities"), "{message}");
            assert!(message.contains("(500)"), "{message}");
            assert!(*retryable);
        }
        other => panic!("{other}"),
    }
    let state = common::snapshot(&moto, "us-east-1");
    assert!(!has_tag(
        instance(&state, "launched"),
        "Retirement",
        "scheduled"
    ));
}
