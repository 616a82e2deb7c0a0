//! The handler end to end over the in-memory fake: every fixture, selection and precedence,
//! skips (the worker's own calls, events no selected policy acts on, ids no resource could
//! have), the mapping and policy caches, the checks of the policy files a mapping names,
//! size caps, claim checks, fast wake and error classification.

#![allow(clippy::unwrap_used)] // helpers of tests: a failure here is a failed test

mod common;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use common::fake::{Fake, policy_text};
use czero_invoker::aws::AwsError;
use czero_invoker::config::{Config, RoleArn, Wake};
use czero_invoker::event::{self, Kind, Parsed, Severity};
use czero_invoker::handler::{Invoker, Outcome};
use czero_invoker::wake::WakeOutcome;
use czero_job::{Envelope, FindingUpdate, attributes};
use lambda_runtime::{Context, LambdaEvent};
use pretty_assertions::assert_eq;
use serde_json::Value;

const CREATE: &str = include_str!("../fixtures/cloudtrail-createbucket.json");
const ACL_XACCT: &str = include_str!("../fixtures/cloudtrail-putbucketacl-cross-account.json");
const FAILED: &str = include_str!("../fixtures/cloudtrail-createbucket-failed.json");
const HUB: &str = include_str!("../fixtures/securityhub-multi-resource.json");
const GD_S3: &str = include_str!("../fixtures/guardduty-s3-public.json");
const GD_EC2: &str = include_str!("../fixtures/guardduty-ec2-cross-account.json");
const CONFIG: &str = include_str!("../fixtures/config-compliance.json");
const EC2: &str = include_str!("../fixtures/ec2-state-change.json");
const PRECEDENCE: &str = include_str!("../fixtures/mapping-precedence.json");
const EXAMPLE_MAPPING: &str = include_str!("../../../config/policy-mappings.json");
const SCAN_MAPPING: &str = include_str!("../fixtures/mapping-scan-policies.json");

const BUCKET: &str = "czero-policies";
const MAPPING_KEY: &str = "config/policy-mappings.json";
const DEFAULT_POLICY: &str = "policies/s3-createbucket.yml";

fn config() -> Config {
    Config {
        queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/czero-jobs".into(),
        policy_bucket: BUCKET.into(),
        mapping_key: MAPPING_KEY.into(),
        default_policy_key: DEFAULT_POLICY.into(),
        claim_check_bucket: BUCKET.into(),
        wake: None,
        exclude_principals: vec![],
    }
}

fn invoker(mapping: &str) -> Invoker<Fake> {
    let fake = Fake::default()
        .with_object(BUCKET, MAPPING_KEY, mapping.as_bytes(), "\"etag-1\"")
        .with_policies_of(BUCKET, mapping, &[DEFAULT_POLICY]);
    Invoker::new(fake, config())
}

fn lambda_event(json: &str) -> LambdaEvent<EventBridgeEvent<Value>> {
    LambdaEvent {
        payload: serde_json::from_str(json).unwrap(),
        context: Context::default(),
    }
}

async fn run(inv: &Invoker<Fake>, json: &str) -> Outcome {
    inv.handle(lambda_event(json)).await.unwrap()
}

fn skipped(o: &Outcome) -> &str {
    match o {
        Outcome::Skipped { reason, .. } => reason,
        Outcome::Queued { job, .. } => panic!("queued {:?}", keys(job)),
        Outcome::Split { parts, .. } => panic!("split into {} parts", parts.len()),
    }
}

fn count(n: &std::sync::atomic::AtomicUsize) -> usize {
    n.load(std::sync::atomic::Ordering::Relaxed)
}

/// `json` with `detail` edited by `f`.
fn edited(json: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(json).unwrap();
    f(&mut v);
    v.to_string()
}

fn queued(o: &Outcome) -> (&czero_job::Job, &[String], bool) {
    match o {
        Outcome::Queued {
            job,
            rules,
            defaulted,
            ..
        } => (job, rules, *defaulted),
        Outcome::Skipped { reason, .. } => panic!("skipped: {reason}"),
        Outcome::Split { parts, .. } => panic!("split into {} parts", parts.len()),
    }
}

fn keys(job: &czero_job::Job) -> Vec<&str> {
    job.policies.iter().map(|p| p.key.as_str()).collect()
}

fn parsed(json: &str) -> czero_invoker::event::SecurityEvent {
    match event::parse_bytes(json.as_bytes()).unwrap() {
        Parsed::Event(e) => *e,
        Parsed::Skip(s) => panic!("skipped: {s}"),
    }
}

#[test]
fn fixtures_parse_into_kinds_and_resource_ids() {
    let cases: &[(&str, Kind, &[&str])] = &[
        (CREATE, Kind::CloudTrail, &["team-analytics-raw-2026"]),
        (ACL_XACCT, Kind::CloudTrail, &["marketing-site-assets"]),
        (
            HUB,
            Kind::SecurityHub,
            &[
                "arn:aws:s3:::partner-uploads-prod",
                "arn:aws:s3:::partner-uploads-staging",
            ],
        ),
        (
            GD_S3,
            Kind::GuardDuty,
            &["customer-exports", "ASIAEXAMPLE3"],
        ),
        (GD_EC2, Kind::GuardDuty, &["i-0f1e2d3c4b5a69788"]),
        (CONFIG, Kind::Config, &["finance-reports-archive"]),
    ];
    for (json, kind, ids) in cases {
        let e = parsed(json);
        assert_eq!(e.kind, *kind);
        assert_eq!(
            e.resource_ids,
            ids.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        // The raw event is kept whole for the worker.
        assert_eq!(e.raw, serde_json::from_str::<Value>(json).unwrap());
    }
}

#[test]
fn cross_account_findings_match_on_the_resource_account() {
    let hub = parsed(HUB);
    assert_eq!(hub.account, "111122223333");
    assert_eq!(hub.accounts, vec!["444455556666", "111122223333"]);
    assert_eq!(hub.severity, Some(Severity::Critical));
    assert_eq!(hub.resource_types, vec!["AwsS3Bucket"]);
    assert_eq!(hub.finding_types.len(), 2);
    let gd = parsed(GD_EC2);
    assert_eq!(gd.accounts, vec!["777788889999", "111122223333"]);
    assert_eq!(gd.severity, Some(Severity::High));
    assert_eq!(parsed(GD_S3).severity, Some(Severity::Low));
}

#[test]
fn skips_are_reported_not_errors() {
    for (json, reason) in [
        (EC2, "unsupported event kind: source `aws.ec2`"),
        (FAILED, "CreateBucket failed with BucketAlreadyExists"),
    ] {
        match event::parse_bytes(json.as_bytes()).unwrap() {
            Parsed::Skip(s) => {
                assert!(s.to_string().contains(reason), "{s}");
                let id: serde_json::Value = serde_json::from_str(json).unwrap();
                assert_eq!(Some(s.event_id()), id["id"].as_str(), "{s}");
                assert!(!s.event_id().is_empty());
            }
            Parsed::Event(e) => panic!("not skipped: {e:?}"),
        }
    }
}

#[tokio::test]
async fn example_mapping_routes_each_fixture() {
    let inv = invoker(EXAMPLE_MAPPING);
    let cases: &[(&str, &[&str])] = &[
        (CREATE, &["policies/s3-createbucket.yml"]),
        (ACL_XACCT, &["policies/s3-global-grants.yml"]),
        (
            HUB,
            &[
                "policies/s3-hub-finding-public.yml",
                "policies/s3-hub-policy-statements.yml",
            ],
        ),
        (CONFIG, &["policies/s3-config-unencrypted-mark.yml"]),
    ];
    for (json, want) in cases {
        let out = run(&inv, json).await;
        let (job, _, defaulted) = queued(&out);
        assert_eq!(keys(job), *want);
        assert!(!defaulted);
    }
    assert_eq!(inv.aws.sent().len(), cases.len());
}

/// The example mapping with `update_finding` set on every rule.
fn mapping_updating_findings(value: &str) -> String {
    let mut m: Value = serde_json::from_str(EXAMPLE_MAPPING).unwrap();
    for r in m["rules"].as_array_mut().unwrap() {
        r["update_finding"] = value.into();
    }
    m.to_string()
}

/// `update_finding` reaches the job of a Security Hub event only: a rule that also matches
/// CloudTrail or Config events leaves their jobs off. Both the Lambda path and
/// `process_many` carry it, and the message body has it.
#[tokio::test]
async fn update_finding_reaches_security_hub_jobs_only() {
    for (value, want) in [
        ("resolve", FindingUpdate::Resolve),
        ("notify", FindingUpdate::Notify),
        ("off", FindingUpdate::Off),
    ] {
        let inv = invoker(&mapping_updating_findings(value));
        let out = run(&inv, HUB).await;
        assert_eq!(queued(&out).0.update_finding, want, "{value}");
        let Envelope::Inline { job } = Envelope::decode(&inv.aws.sent()[0].body).unwrap() else {
            panic!("expected inline")
        };
        assert_eq!(job.update_finding, want, "{value}: on the queue");
        for json in [CREATE, ACL_XACCT, CONFIG] {
            let out = run(&inv, json).await;
            assert_eq!(queued(&out).0.update_finding, FindingUpdate::Off, "{value}");
        }
        let events = [HUB, CREATE]
            .iter()
            .map(|j| event::parse_bytes(j.as_bytes()).unwrap())
            .collect();
        let outs = inv.process_many(events).await.unwrap();
        let got: Vec<FindingUpdate> = outs.iter().map(|o| queued(o).0.update_finding).collect();
        assert_eq!(got, [want, FindingUpdate::Off], "{value}: process_many");
    }
}

/// Regression: GuardDuty findings fell through to the CreateBucket default policy and each
/// queued a job (waking Fargate) that could do nothing: c7n's guard-duty mode has no
/// aws.s3, and the default policy subscribes to CreateBucket only.
#[tokio::test]
async fn events_no_selected_policy_subscribes_to_are_skipped() {
    let inv = invoker(EXAMPLE_MAPPING);
    for json in [GD_S3, GD_EC2] {
        let out = run(&inv, json).await;
        assert_eq!(
            skipped(&out),
            "no selected policy would act on this event: policies/s3-createbucket.yml: \
             `s3-createbucket-remediate` (cloudtrail CreateBucket) does not subscribe to it"
        );
    }
    // A CloudTrail call no rule names falls to the default, which does not subscribe to it.
    let logging = edited(CREATE, |v| {
        v["detail"]["eventName"] = "PutBucketLogging".into()
    });
    assert!(skipped(&run(&inv, &logging).await).contains("does not subscribe to it"));
    assert!(inv.aws.sent().is_empty());
    assert_eq!(
        inv.counters
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

/// Regression: a Security Hub finding about EC2 sent to an S3 hub-finding policy queued a
/// job for a policy that finds no bucket in it.
#[tokio::test]
async fn findings_naming_no_resource_of_the_policys_type_are_skipped() {
    let mapping = r#"{"version": 1, "rules": [{"name": "all-hub",
        "match": {"source": ["aws.securityhub"]},
        "policies": ["policies/s3-hub-finding-public.yml"]}]}"#;
    let inv = invoker(mapping);
    let ec2_only = edited(HUB, |v| {
        for f in v["detail"]["findings"].as_array_mut().unwrap() {
            f["Resources"] = serde_json::json!([{"Type": "AwsEc2Instance",
                "Id": "arn:aws:ec2:us-east-1:444455556666:instance/i-0abc", "Region": "us-east-1"}]);
        }
    });
    let out = run(&inv, &ec2_only).await;
    assert_eq!(
        skipped(&out),
        "no selected policy would act on this event: policies/s3-hub-finding-public.yml: \
         `s3-hub-finding-public-bucket` (hub-finding) finds no aws.s3 resource in it"
    );
    // One bucket among the resources is enough.
    let mixed = edited(HUB, |v| {
        v["detail"]["findings"][0]["Resources"][0] = serde_json::json!({"Type": "AwsEc2Instance",
            "Id": "arn:aws:ec2:us-east-1:444455556666:instance/i-0abc", "Region": "us-east-1"});
    });
    let out = run(&inv, &mixed).await;
    assert_eq!(keys(queued(&out).0), ["policies/s3-hub-finding-public.yml"]);
}

/// A config-rule policy resolves `detail.resourceId` whatever the type; one about a bucket
/// does not run for a Config finding about an instance.
#[tokio::test]
async fn config_findings_about_another_type_are_skipped() {
    let mapping = r#"{"version": 1, "rules": [{"name": "any-config",
        "match": {"source": ["aws.config"]},
        "policies": ["policies/s3-config-unencrypted-mark.yml"]}]}"#;
    let inv = invoker(mapping);
    let instance = edited(CONFIG, |v| {
        v["detail"]["resourceType"] = "AWS::EC2::Instance".into();
        v["detail"]["resourceId"] = "i-0f1e2d3c4b5a69788".into();
    });
    let reason = skipped(&run(&inv, &instance).await).to_owned();
    assert!(
        reason.ends_with(
            "`s3-config-unencrypted-mark-for-delete` (config-rule) is about aws.s3, not the \
             event's AWS::EC2::Instance"
        ),
        "{reason}"
    );
    assert_eq!(
        keys(queued(&run(&inv, CONFIG).await).0),
        ["policies/s3-config-unencrypted-mark.yml"]
    );
}

/// Only the files that would act on the event are named in the job; the rules that
/// selected them are still reported.
#[tokio::test]
async fn files_that_would_not_act_are_dropped_from_the_job() {
    let inv = invoker(PRECEDENCE);
    let o = run(&inv, ACL_XACCT).await;
    let (job, rules, _) = queued(&o);
    assert_eq!(rules, ["any-s3-call", "acl-call"]);
    assert_eq!(
        keys(job),
        ["policies/s3-global-grants.yml"],
        "s3-createbucket.yml subscribes to CreateBucket only"
    );
    let Envelope::Inline { job: sent } = Envelope::decode(&inv.aws.sent()[0].body).unwrap() else {
        panic!("inline expected")
    };
    assert_eq!(&sent, job);
}

/// Modes only c7n resolves (guard-duty here) cannot be screened natively: queued as before.
#[tokio::test]
async fn modes_only_c7n_resolves_are_queued() {
    let inv = invoker(PRECEDENCE);
    let o = run(&inv, GD_EC2).await;
    assert_eq!(keys(queued(&o).0), ["policies/ec2/isolate.yml"]);
}

/// Regression: a CloudTrail event naming the bucket `../../etc/passwd` queued a job.
#[tokio::test]
async fn ids_no_resource_could_have_are_skipped() {
    let inv = invoker(EXAMPLE_MAPPING);
    let traversal = edited(CREATE, |v| {
        v["detail"]["requestParameters"]["bucketName"] = "../../etc/passwd".into()
    });
    assert_eq!(
        skipped(&run(&inv, &traversal).await),
        "event names `../../etc/passwd`, which is not a valid aws.s3 id (a bucket name has only \
         lowercase letters, digits, `.` and `-`, not '/'; policy `s3-createbucket-remediate` in \
         policies/s3-createbucket.yml)"
    );
    let control = edited(CREATE, |v| {
        v["detail"]["requestParameters"]["bucketName"] = "bucket\u{1b}[2J".into()
    });
    assert!(skipped(&run(&inv, &control).await).contains("`bucket\\u{1b}[2J`"));
    let ip = edited(CONFIG, |v| v["detail"]["resourceId"] = "10.0.0.1".into());
    assert!(skipped(&run(&inv, &ip).await).contains("not an IP address"));
    let hub = edited(HUB, |v| {
        v["detail"]["findings"][1]["Resources"][0]["Id"] = "arn:aws:s3:::Partner_Uploads".into()
    });
    assert!(skipped(&run(&inv, &hub).await).contains("`Partner_Uploads`"));
    assert!(inv.aws.sent().is_empty());
}

/// Regression: the worker's own PutBucketEncryption came back as a CloudTrail event and
/// queued a job. Such events are skipped before anything is read.
#[tokio::test]
async fn the_workers_own_calls_are_skipped_without_aws_calls() {
    let fake = Fake::default()
        .with_object(
            BUCKET,
            MAPPING_KEY,
            EXAMPLE_MAPPING.as_bytes(),
            "\"etag-1\"",
        )
        .with_policies_of(BUCKET, EXAMPLE_MAPPING, &[DEFAULT_POLICY]);
    let mut cfg = config();
    cfg.exclude_principals =
        vec![RoleArn::parse("arn:aws:iam::123456789012:role/custodian/czero-worker").unwrap()];
    let inv = Invoker::new(fake, cfg);
    let by_worker = |name: &str| {
        edited(CREATE, |v| {
            v["detail"]["eventName"] = name.into();
            v["detail"]["userIdentity"] = serde_json::json!({
                "type": "AssumedRole",
                "arn": "arn:aws:sts::123456789012:assumed-role/czero-worker/3f2a",
                "sessionContext": {"sessionIssuer": {"type": "Role",
                    "arn": "arn:aws:iam::123456789012:role/custodian/czero-worker"}}});
        })
    };
    for name in [
        "PutBucketEncryption",
        "PutBucketPublicAccessBlock",
        "CreateBucket",
    ] {
        assert_eq!(
            skipped(&run(&inv, &by_worker(name)).await),
            "caused by custodian-zero's own worker \
             (arn:aws:iam::123456789012:role/custodian/czero-worker)"
        );
    }
    assert_eq!(count(&inv.aws.gets) + count(&inv.aws.heads), 0);
    // The same call by a person is routed as usual.
    let by_user = edited(CREATE, |v| {
        v["detail"]["eventName"] = "PutBucketEncryption".into()
    });
    let o = run(&inv, &by_user).await;
    assert_eq!(keys(queued(&o).0), ["policies/s3-bucket-drift.yml"]);
}

#[test]
fn example_mapping_names_only_policies_that_exist() {
    let m = czero_invoker::mapping::Mapping::parse(
        "config/policy-mappings.json",
        EXAMPLE_MAPPING.as_bytes(),
    )
    .unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for r in &m.rules {
        for p in &r.policies {
            assert!(root.join(p).exists(), "rule {} names missing {p}", r.name);
        }
    }
}

/// Regression: the mapping sent single-resource events to policies without a mode, so one
/// Config finding on one bucket made the worker mark every unencrypted bucket for deletion.
/// Loading such a mapping fails, naming the rule, the file and the policy; nothing is queued.
#[tokio::test]
async fn a_mapping_that_sends_events_to_a_scan_policy_is_rejected() {
    let inv = invoker(SCAN_MAPPING);
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.InvalidMapping");
    assert_eq!(
        err.error_message,
        "s3://czero-policies/config/policy-mappings.json: rule `sandbox-accounts-audit-only`, \
         rule `guardduty-s3-policy-findings` sends events to \
         s3://czero-policies/policies/s3-audit-tags.yml, whose policy `s3-audit-missing-owner` \
         (line 3) has mode `pull`: it would scan and act on every resource of its type, not \
         the ones the event names; give it an event mode (cloudtrail, hub-finding, \
         config-rule, ...) or route no events to it"
    );
    assert!(inv.aws.sent().is_empty());

    // The default policy is checked too.
    let fake = Fake::default()
        .with_object(
            BUCKET,
            MAPPING_KEY,
            br#"{"version": 1, "rules": []}"#,
            "\"m\"",
        )
        .with_object(
            BUCKET,
            "policies/s3-audit-tags.yml",
            policy_text("policies/s3-audit-tags.yml").as_bytes(),
            "\"a\"",
        );
    let mut cfg = config();
    cfg.default_policy_key = "policies/s3-audit-tags.yml".into();
    let err = Invoker::new(fake, cfg)
        .handle(lambda_event(CREATE))
        .await
        .unwrap_err();
    assert!(
        err.error_message.contains(
            "the default policy (DEFAULT_POLICY_KEY) sends events to \
             s3://czero-policies/policies/s3-audit-tags.yml, whose policy `s3-audit-missing-owner`"
        ),
        "{}",
        err.error_message
    );
}

#[test]
fn every_file_the_example_mapping_names_holds_event_mode_policies_only() {
    let m =
        czero_invoker::mapping::Mapping::parse(MAPPING_KEY, EXAMPLE_MAPPING.as_bytes()).unwrap();
    let mut files = 0;
    for key in m.keys(DEFAULT_POLICY) {
        let file = czero_invoker::policies::parse_policy(&key, policy_text(&key).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.scan_policies(MAPPING_KEY, DEFAULT_POLICY, &key, &file),
            vec![],
            "{key}"
        );
        files += 1;
    }
    assert_eq!(files, 7);
}

/// A policy edited after the mapping was loaded is checked again when its ETag changes.
#[tokio::test]
async fn a_policy_edited_into_a_scan_or_broken_file_fails_the_warm_invocation() {
    let inv = invoker(EXAMPLE_MAPPING);
    run(&inv, CREATE).await;
    inv.aws.set_object(
        BUCKET,
        DEFAULT_POLICY,
        policy_text("policies/s3-unencrypted-mark.yml").as_bytes(),
        "\"pull\"",
    );
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.InvalidMapping");
    assert!(
        err.error_message.contains(
            "rule `s3-bucket-created`, the default policy (DEFAULT_POLICY_KEY) sends events to \
             s3://czero-policies/policies/s3-createbucket.yml, whose policy \
             `s3-unencrypted-mark-for-delete` (line 3) has mode `pull`"
        ),
        "{}",
        err.error_message
    );
    inv.aws.set_object(
        BUCKET,
        DEFAULT_POLICY,
        b"policies:\n  - name: x\n    resource: aws.s3\n    actions: [bogus]\n",
        "\"broken\"",
    );
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.InvalidMapping");
    assert!(
        err.error_message.starts_with(
            "s3://czero-policies/config/policy-mappings.json: rule `s3-bucket-created`, the \
             default policy (DEFAULT_POLICY_KEY) sends events to policies/s3-createbucket.yml, \
             which cannot be used: s3://czero-policies/policies/s3-createbucket.yml:4:"
        ),
        "{}",
        err.error_message
    );
    assert!(
        inv.aws.sent().len() == 1,
        "only the first, valid, invocation queued"
    );
}

#[tokio::test]
async fn size_caps_are_checked_before_parsing() {
    // The mapping, 1 MiB.
    let big = format!(
        r#"{{"version": 1, "description": "{}", "rules": []}}"#,
        "x".repeat(czero_invoker::mapping::MAX_MAPPING_BYTES)
    );
    let inv = invoker(&big);
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.InvalidMapping");
    assert_eq!(
        err.error_message,
        format!(
            "s3://czero-policies/config/policy-mappings.json is {} bytes, over the \
             1048576-byte cap for a policy mapping",
            big.len()
        )
    );
    // A policy file, 512 KiB: read when the mapping is loaded ...
    let padded = format!(
        "{}# {}\n",
        policy_text(DEFAULT_POLICY),
        "x".repeat(czero_invoker::policies::MAX_POLICY_BYTES)
    );
    let inv = invoker(EXAMPLE_MAPPING);
    inv.aws
        .set_object(BUCKET, DEFAULT_POLICY, padded.as_bytes(), "\"big\"");
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert!(
        err.error_message.ends_with(&format!(
            "which cannot be used: s3://czero-policies/policies/s3-createbucket.yml is {} bytes, \
             over the 524288-byte cap for a policy file",
            padded.len()
        )),
        "{}",
        err.error_message
    );
    // ... and, once loaded, refused on HeadObject's size without a GetObject.
    let inv = invoker(EXAMPLE_MAPPING);
    run(&inv, CREATE).await;
    let gets = count(&inv.aws.gets);
    inv.aws
        .set_object(BUCKET, DEFAULT_POLICY, padded.as_bytes(), "\"big\"");
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert!(
        err.error_message.contains("524288-byte cap"),
        "{}",
        err.error_message
    );
    assert_eq!(count(&inv.aws.gets), gets + 1, "the mapping's GET only");
}

#[tokio::test]
async fn precedence_collects_in_order_and_stops() {
    let inv = invoker(PRECEDENCE);
    // Security Hub, account 444455556666 in us-east-1, CRITICAL: the account rule first, then
    // hub-critical (duplicate baseline dropped), whose stop hides hub-any.
    let o = run(&inv, HUB).await;
    let (job, rules, _) = queued(&o);
    assert_eq!(rules, ["prod-account-first", "hub-critical"]);
    assert_eq!(
        keys(job),
        [
            "policies/prod/baseline.yml",
            "policies/s3-hub-finding-public.yml"
        ]
    );
    // CreateBucket: no resource type on CloudTrail events, so create-bucket does not match.
    let o = run(&inv, CREATE).await;
    let (job, rules, _) = queued(&o);
    assert_eq!(rules, ["any-s3-call"]);
    assert_eq!(keys(job), ["policies/s3-createbucket.yml"]);
    // PutBucketAcl: glob and regex rules both match; duplicates keep the first position
    // (the handler then drops s3-createbucket.yml, see files_that_would_not_act_...).
    let m = czero_invoker::mapping::Mapping::parse("m", PRECEDENCE.as_bytes()).unwrap();
    let sel = m.select(&parsed(ACL_XACCT), DEFAULT_POLICY);
    assert_eq!(sel.rules, ["any-s3-call", "acl-call"]);
    assert_eq!(
        sel.policies,
        [
            "policies/s3-createbucket.yml",
            "policies/s3-global-grants.yml"
        ]
    );
    // GuardDuty cross-account HIGH in the member account 777788889999.
    let o = run(&inv, GD_EC2).await;
    assert_eq!(keys(queued(&o).0), ["policies/ec2/isolate.yml"]);
    // GuardDuty LOW: nothing matches, the default is selected (and skipped: it does not
    // subscribe to GuardDuty findings).
    let sel = m.select(&parsed(GD_S3), DEFAULT_POLICY);
    assert!(sel.rules.is_empty() && sel.defaulted);
    assert_eq!(sel.policies, ["policies/s3-createbucket.yml"]);
    assert!(matches!(run(&inv, GD_S3).await, Outcome::Skipped { .. }));
    let o = run(&inv, CONFIG).await;
    assert_eq!(
        keys(queued(&o).0),
        ["policies/s3-config-unencrypted-mark.yml"]
    );
}

#[tokio::test]
async fn the_message_is_the_job_with_its_attributes() {
    let inv = invoker(EXAMPLE_MAPPING);
    let mut ev = lambda_event(HUB);
    ev.context.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793".into());
    let out = inv.handle(ev).await.unwrap();
    let (job, _, _) = queued(&out);
    let sent = inv.aws.sent();
    assert_eq!(sent.len(), 1);
    let Envelope::Inline { job: on_queue } = Envelope::decode(&sent[0].body).unwrap() else {
        panic!("expected inline")
    };
    assert_eq!(&on_queue, job);
    assert_eq!(on_queue.event_id, "3c5e9b2a-6d7f-4e81-a2b3-c4d5e6f70819");
    assert_eq!(on_queue.account, "444455556666", "the findings' account");
    assert_eq!(
        on_queue.trace_id.as_deref(),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793")
    );
    let attrs: Vec<(&str, &str)> = sent[0]
        .attributes
        .iter()
        .map(|a| (a.name, a.value.as_str()))
        .collect();
    assert_eq!(
        attrs,
        [
            (attributes::VERSION, "1"),
            (attributes::EVENT_SOURCE, "aws.securityhub"),
            (attributes::POLICY_COUNT, "2"),
            (
                attributes::TRACE_ID,
                "Root=1-5759e988-bd862e3fe1be46a994272793"
            ),
        ]
    );
    // Same event, same job id: a retried invocation is recognisable downstream.
    let again = run(&inv, HUB).await;
    assert_eq!(queued(&again).0.job_id, job.job_id);
    assert_eq!(job.job_id.len(), 32);
}

#[tokio::test]
async fn skipped_events_send_nothing_and_are_counted() {
    let inv = invoker(EXAMPLE_MAPPING);
    for json in [EC2, FAILED] {
        assert!(matches!(run(&inv, json).await, Outcome::Skipped { .. }));
    }
    assert!(inv.aws.sent().is_empty());
    assert_eq!(
        inv.counters
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // Skips do not even read the mapping.
    assert_eq!(inv.aws.gets.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn the_mapping_is_cached_and_refreshed_by_etag() {
    let inv = invoker(EXAMPLE_MAPPING);
    run(&inv, CREATE).await;
    run(&inv, CREATE).await;
    assert_eq!(
        inv.aws
            .not_modified
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // A new mapping (new ETag) is picked up on the next invocation.
    inv.aws
        .set_object(BUCKET, MAPPING_KEY, PRECEDENCE.as_bytes(), "\"etag-2\"");
    inv.aws.add_policies_of(BUCKET, PRECEDENCE, &[]);
    let o = run(&inv, CREATE).await;
    assert_eq!(queued(&o).1, ["any-s3-call"]);
    // An invalid new mapping fails the invocation (retryable) naming the rule.
    inv.aws.set_object(
        BUCKET,
        MAPPING_KEY,
        br#"{"version":1,"rules":[{"name":"bad","policies":["config/x.yml"]}]}"#,
        "\"etag-3\"",
    );
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.InvalidMapping");
    assert!(
        err.error_message.contains("rule 0 (`bad`)"),
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn a_missing_mapping_is_a_retryable_error() {
    let inv = Invoker::new(Fake::default(), config());
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.MappingFetch");
    assert!(
        err.error_message
            .contains("s3://czero-policies/config/policy-mappings.json")
    );
}

#[tokio::test]
async fn large_jobs_go_through_the_claim_check() {
    let inv = invoker(EXAMPLE_MAPPING);
    let mut ev: Value = serde_json::from_str(CREATE).unwrap();
    ev["detail"]["requestParameters"]["padding"] = Value::String("x".repeat(300 * 1024));
    let out = run(&inv, &ev.to_string()).await;
    let Outcome::Queued { job, queued, .. } = &out else {
        panic!("skipped")
    };
    let key = format!("jobs/{}.json", job.job_id);
    assert_eq!(
        queued.claim_check.as_deref(),
        Some(format!("s3://{BUCKET}/{key}").as_str())
    );
    let puts = inv.aws.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        (puts[0].0.as_str(), puts[0].1.as_str()),
        (BUCKET, key.as_str())
    );
    assert_eq!(&czero_job::decode_job(&puts[0].2).unwrap(), job.as_ref());
    let sent = inv.aws.sent();
    assert!(sent[0].body.len() < 1024);
    assert!(matches!(
        Envelope::decode(&sent[0].body).unwrap(),
        Envelope::ClaimCheck { .. }
    ));
    assert!(
        sent[0]
            .attributes
            .iter()
            .any(|a| a.name == attributes::CLAIM_CHECK)
    );
}

#[tokio::test]
async fn send_failures_fail_the_invocation_with_their_class() {
    let inv = invoker(EXAMPLE_MAPPING);
    for (retryable, ty) in [
        (true, "czero.Retryable.Queue"),
        (false, "czero.Permanent.Queue"),
    ] {
        *inv.aws.fail_send.lock().unwrap() = Some(AwsError {
            op: "sqs:SendMessage",
            message: "boom".into(),
            retryable,
            not_found: false,
        });
        let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
        assert_eq!(err.error_type, ty);
        assert!(
            err.error_message.contains("sqs:SendMessage: boom"),
            "{}",
            err.error_message
        );
    }
    assert_eq!(
        inv.counters
            .queued
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn fast_wake_raises_a_service_at_zero_only() {
    let fake = Fake::default()
        .with_object(BUCKET, MAPPING_KEY, EXAMPLE_MAPPING.as_bytes(), "\"e\"")
        .with_policies_of(BUCKET, EXAMPLE_MAPPING, &[]);
    let mut cfg = config();
    cfg.wake = Some(Wake {
        cluster: "czero".into(),
        service: "worker".into(),
    });
    let inv = Invoker::new(fake, cfg);
    let wake_of = |o: Outcome| match o {
        Outcome::Queued { wake, .. } => wake,
        Outcome::Skipped { .. } | Outcome::Split { .. } => panic!("not one job"),
    };
    assert_eq!(wake_of(run(&inv, CREATE).await), WakeOutcome::Woken);
    assert_eq!(
        wake_of(run(&inv, CREATE).await),
        WakeOutcome::AlreadyRunning { desired: 1 }
    );
    assert_eq!(*inv.aws.updates.lock().unwrap(), [1]);
    // A failing wake is reported but does not fail the invocation: the job is queued.
    *inv.aws.fail_describe.lock().unwrap() = Some(AwsError {
        op: "ecs:DescribeServices",
        message: "ThrottlingException: Rate exceeded".into(),
        retryable: true,
        not_found: false,
    });
    let w = wake_of(run(&inv, CREATE).await);
    assert!(
        matches!(w, WakeOutcome::Failed { ref error } if error.contains("Rate exceeded")),
        "{w:?}"
    );
    assert_eq!(inv.aws.sent().len(), 3);
}

#[tokio::test]
async fn many_events_go_out_in_batches_of_ten() {
    let inv = invoker(EXAMPLE_MAPPING);
    let mut events = Vec::new();
    for i in 0..23 {
        let mut v: Value = serde_json::from_str(CREATE).unwrap();
        v["id"] = Value::String(format!("evt-{i}"));
        events.push(event::parse_value(v).unwrap());
    }
    events.push(event::parse_bytes(EC2.as_bytes()).unwrap());
    let outs = inv.process_many(events).await.unwrap();
    assert_eq!(outs.len(), 24);
    assert_eq!(inv.aws.sent().len(), 23);
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Outcome::Skipped { .. }))
            .count(),
        1
    );
}

#[tokio::test]
async fn jobs_pin_each_policy_to_the_etag_and_version_seen() {
    let inv = invoker(EXAMPLE_MAPPING);
    inv.aws.versions.lock().unwrap().insert(
        format!("{BUCKET}/policies/s3-hub-policy-statements.yml"),
        "3HL4kqtJlcpXroDTDmJ".into(),
    );
    let o = run(&inv, HUB).await;
    let (job, _, _) = queued(&o);
    let pins: Vec<(&str, Option<&str>, Option<&str>)> = job
        .policies
        .iter()
        .map(|p| (p.key.as_str(), p.etag.as_deref(), p.version_id.as_deref()))
        .collect();
    assert_eq!(
        pins,
        [
            (
                "policies/s3-hub-finding-public.yml",
                Some("\"etag-policies/s3-hub-finding-public.yml\""),
                None
            ),
            (
                "policies/s3-hub-policy-statements.yml",
                Some("\"etag-policies/s3-hub-policy-statements.yml\""),
                Some("3HL4kqtJlcpXroDTDmJ")
            ),
        ]
    );
    // The message carries the pins the outcome shows.
    let Envelope::Inline { job: sent } = Envelope::decode(&inv.aws.sent()[0].body).unwrap() else {
        panic!("inline expected")
    };
    assert_eq!(sent.policies, job.policies);

    // Warm and unchanged: HeadObject pins, the parsed files are reused (no GetObject).
    let gets = count(&inv.aws.gets);
    let o = run(&inv, HUB).await;
    assert_eq!(queued(&o).0.policies, job.policies);
    assert_eq!(count(&inv.aws.gets), gets + 1, "the mapping's GET only");

    // An edited policy is pinned at its new ETag by the next invocation, and read again.
    let text = format!(
        "{}# edited\n",
        policy_text("policies/s3-hub-finding-public.yml")
    );
    inv.aws.set_object(
        BUCKET,
        "policies/s3-hub-finding-public.yml",
        text.as_bytes(),
        "\"edited\"",
    );
    let o = run(&inv, HUB).await;
    assert_eq!(queued(&o).0.policies[0].etag.as_deref(), Some("\"edited\""));
    assert_eq!(
        count(&inv.aws.gets),
        gets + 3,
        "the mapping, then the edited file"
    );
}

#[tokio::test]
async fn a_missing_policy_fails_the_invocation_naming_key_and_rule() {
    // Missing when the mapping is loaded: every file it names is read.
    let inv = invoker(EXAMPLE_MAPPING);
    inv.aws
        .remove_object(BUCKET, "policies/s3-hub-policy-statements.yml");
    let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.PolicyMissing");
    assert_eq!(
        err.error_message,
        "policy s3://czero-policies/policies/s3-hub-policy-statements.yml, named by mapping \
         rule `hub-s3-data-exposure` in s3://czero-policies/config/policy-mappings.json, does \
         not exist (s3:GetObject: NoSuchKey: The specified key does not exist.)"
    );
    // Missing when selected, after the mapping was loaded.
    let inv = invoker(EXAMPLE_MAPPING);
    run(&inv, CREATE).await;
    inv.aws
        .remove_object(BUCKET, "policies/s3-hub-policy-statements.yml");
    let err = inv.handle(lambda_event(HUB)).await.unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.PolicyMissing");
    assert_eq!(
        err.error_message,
        "policy s3://czero-policies/policies/s3-hub-policy-statements.yml, selected by mapping \
         rule `hub-s3-data-exposure` in s3://czero-policies/config/policy-mappings.json, does \
         not exist (s3:HeadObject: HTTP 404 NotFound)"
    );
    assert_eq!(
        inv.aws.sent().len(),
        1,
        "no job names a policy that is not there"
    );
}

#[tokio::test]
async fn a_batch_heads_each_distinct_policy_once() {
    let inv = invoker(EXAMPLE_MAPPING);
    // Cold: loading the mapping reads (and pins) every file it names; no HeadObject.
    run(&inv, CONFIG).await;
    assert_eq!(count(&inv.aws.heads), 0);
    let mut events = Vec::new();
    for i in 0..12 {
        let mut v: Value = serde_json::from_str(CREATE).unwrap();
        v["id"] = Value::String(format!("evt-{i}"));
        events.push(event::parse_value(v).unwrap());
    }
    events.push(event::parse_bytes(HUB.as_bytes()).unwrap());
    let outs = inv.process_many(events).await.unwrap();
    assert_eq!(outs.len(), 13);
    assert_eq!(
        count(&inv.aws.heads),
        3,
        "s3-createbucket once, the two hub policies once each"
    );
    for o in &outs {
        assert!(queued(o).0.policies.iter().all(|p| p.etag.is_some()));
    }
}

/// Findings about two (account, region) pairs: one job per pair, each acting in its own
/// account and region with only its findings; ids stable across a retried invocation.
#[tokio::test]
async fn security_hub_findings_are_split_per_account_and_region() {
    let inv = invoker(PRECEDENCE);
    let two = edited(HUB, |v| {
        let f = &mut v["detail"]["findings"][1];
        f["AwsAccountId"] = "777788889999".into();
        f["Region"] = "eu-west-1".into();
    });
    let parts = |o: Outcome| match o {
        Outcome::Split { parts, .. } => parts,
        other => panic!("not split: {other:?}"),
    };
    let first = parts(run(&inv, &two).await);
    assert_eq!(first.len(), 2);
    let mut seen = Vec::new();
    for (o, (account, region)) in first
        .iter()
        .zip([("444455556666", "us-east-1"), ("777788889999", "eu-west-1")])
    {
        let (job, _, _) = queued(o);
        assert_eq!(
            (job.account.as_str(), job.region.as_str()),
            (account, region)
        );
        let findings = job.event["detail"]["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0]["AwsAccountId"], account);
        seen.push(job.job_id.clone());
    }
    assert_ne!(seen[0], seen[1]);
    let again: Vec<String> = parts(run(&inv, &two).await)
        .iter()
        .map(|o| queued(o).0.job_id.clone())
        .collect();
    assert_eq!(again, seen, "a retried invocation queues the same job ids");
    // One pair: not split, and the job acts in the findings' account, not the envelope's.
    let o = run(&inv, HUB).await;
    let (job, _, _) = queued(&o);
    assert_eq!(job.account, "444455556666");
    assert_eq!(job.event, serde_json::from_str::<Value>(HUB).unwrap());
}

#[test]
fn guardduty_jobs_act_in_the_finding_account() {
    let gd = parsed(GD_EC2);
    assert_eq!(gd.target_account, "777788889999");
    let ct = parsed(CREATE);
    assert_eq!(
        (ct.target_account.as_str(), ct.target_region.as_str()),
        (ct.account.as_str(), ct.region.as_str())
    );
}
