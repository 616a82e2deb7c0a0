//! The stack with moto's IAM enforcement on: Terraform applies `terraform/examples/local`
//! (invoker role included), then moto starts checking every call against the caller's
//! policies. `czero invoke` runs with a session of the invoker's role and every worker with
//! a session of the task role, both from the roles Terraform built out of
//! `permissions.json`; the control plane and the harness, standing in for AWS itself, act
//! as an administrator. A permission the roles lack fails a scenario with AccessDenied, so
//! these tests prove the generated roles are enough (and the negative test that they are
//! not more than the table).
//!
//! What moto does not enforce: resource policies (the queues' sender policies are checked
//! statically in tests/terraform.rs), conditions (treated as met) and KMS resources (always
//! `*`); `integration/moto/server.py` makes the S3, SQS and ECS calls we make ask for the
//! IAM actions AWS asks for.

use anyhow::{Context, Result, ensure};
use czero_integration::events;
use czero_integration::scenario::{Report, Scenario, is_remediated, play, play_events};
use czero_integration::stack::{ControlPlane, REGION, Stack, StackOptions};
use std::path::Path;
use std::time::Duration;

fn control_plane() -> ControlPlane {
    ControlPlane {
        time_scale: 30.0,
        timeline: "timeline.jsonl".into(),
        max_duration: Duration::from_secs(300),
        image: None,
        wait_time_seconds: 1,
        live: false,
        log: None,
        task_log_dir: None,
    }
}

async fn enforced_stack(remove_actions: &[&str], tag: &str) -> Result<Stack> {
    let opts = StackOptions {
        create_invoker: true,
        remove_actions: remove_actions.iter().map(|a| a.to_string()).collect(),
        ..StackOptions::default()
    };
    let mut stack = Stack::up(&opts, &|m| eprintln!("[{tag}] {m}")).await?;
    stack.enforce_iam()?;
    // Enforcement is on: the worker's session may not create a bucket, and moto's default
    // test credentials are no longer accepted.
    let ids = stack.identities.clone().context("identities")?;
    let as_worker = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.sdk)
            .credentials_provider(ids.worker.sdk_credentials())
            .force_path_style(true)
            .build(),
    );
    let denied = as_worker
        .create_bucket()
        .bucket("not-allowed")
        .send()
        .await
        .err()
        .map(|e| format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)));
    ensure!(
        denied
            .as_deref()
            .is_some_and(|e| e.contains("AccessDenied")),
        "IAM is not enforced: the worker's role created a bucket ({denied:?})"
    );
    Ok(stack)
}

fn task_logs(work: &Path, scenario: &str) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(work.join(scenario).join("tasks")) {
        for e in entries.flatten() {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    text
}

fn assert_drained(r: &Report) {
    let name = &r.scenario.name;
    assert_eq!(r.queue_left, (0, 0), "{name}: queue not empty");
    assert_eq!(r.dlq_left, (0, 0), "{name}: DLQ not empty");
    let not_fixed: Vec<_> = r
        .buckets
        .iter()
        .filter(|(_, s)| !is_remediated(s))
        .collect();
    assert!(
        not_fixed.is_empty(),
        "{name}: not remediated with the roles' permissions: {not_fixed:?}"
    );
    assert!(r.output_keys > 0, "{name}: no output written");
}

/// The grants on `bucket` to everyone or to every AWS account.
async fn global_grants(stack: &Stack, bucket: &str) -> Result<Vec<String>> {
    let acl = stack.s3().get_bucket_acl().bucket(bucket).send().await?;
    Ok(acl
        .grants()
        .iter()
        .filter_map(|g| g.grantee().and_then(|x| x.uri()))
        .filter(|u| u.contains("/global/"))
        .map(str::to_string)
        .collect())
}

async fn bucket_policy(stack: &Stack, bucket: &str) -> Result<Option<String>> {
    match stack.s3().get_bucket_policy().bucket(bucket).send().await {
        Ok(p) => Ok(p.policy().map(str::to_string)),
        Err(e) => {
            let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e));
            ensure!(
                text.contains("NoSuchBucketPolicy"),
                "GetBucketPolicy {bucket}: {text}"
            );
            Ok(None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_terraform_created_run_the_scenarios_with_iam_enforced() -> Result<()> {
    let work = tempfile::tempdir()?;
    let stack = enforced_stack(&[], "iam").await?;
    let cp = control_plane();

    // The default policy on CreateBucket: one event, then a burst of 25.
    let single = play(&stack, &Scenario::single(), &cp, work.path(), &|_| {}).await?;
    eprintln!("{}", single.table());
    assert_drained(&single);
    assert_eq!(single.desired_sequence(), vec![0, 1, 0], "single: desired");
    let burst = play(&stack, &Scenario::burst(), &cp, work.path(), &|_| {}).await?;
    eprintln!("{}", burst.table());
    assert_drained(&burst);
    assert_eq!(burst.max_desired(), 5, "burst: 25 jobs must give 5 tasks");

    // A job for each other shipped policy with actions, through the mapping.
    let sfx = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (acl, hub, cfg) = (
        format!("acl-{sfx}"),
        format!("hub-{sfx}"),
        format!("cfg-{sfx}"),
    );
    stack
        .create_buckets(&[acl.clone(), hub.clone(), cfg.clone()])
        .await?;
    stack
        .s3()
        .put_bucket_acl()
        .bucket(&acl)
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await?;
    ensure!(
        !global_grants(&stack, &acl).await?.is_empty(),
        "{acl} is not public"
    );
    let fixes = [
        // s3-acl-changed -> s3-global-grants: delete-global-grants.
        events::put_bucket_acl(&acl, REGION),
        // hub-s3-high-findings -> s3-hub-finding-public: set-public-block,
        // delete-global-grants, tag.
        events::security_hub_finding(
            &hub,
            REGION,
            "HIGH",
            &["Software and Configuration Checks/AWS Security Best Practices"],
        ),
    ];
    let run = play_events(&stack, "shipped-policies", &fixes, &cp, work.path()).await?;
    assert_eq!(
        (run.queue_left, run.dlq_left),
        ((0, 0), (0, 0)),
        "shipped policies: jobs left over; worker logs:\n{}",
        run.task_logs
    );
    assert_eq!(
        global_grants(&stack, &acl).await?,
        Vec::<String>::new(),
        "s3-global-grants did not remove the public grant"
    );
    let hub_state = stack.bucket_state(&hub).await?;
    assert!(
        hub_state.public_access_blocked
            && hub_state.tags.get("custodian-zero").map(String::as_str) == Some("hub-remediated"),
        "s3-hub-finding-public did not remediate {hub}: {hub_state:?}"
    );
    // config-s3-encryption -> s3-unencrypted-mark (a pull scan: ListBuckets): mark-for-op.
    // Alone, so its tagging does not race the hub policy's on the same buckets.
    let marks = [events::config_compliance(
        &cfg,
        REGION,
        "s3-bucket-server-side-encryption-enabled",
    )];
    let run = play_events(&stack, "mark-unencrypted", &marks, &cp, work.path()).await?;
    assert_eq!(
        (run.queue_left, run.dlq_left),
        ((0, 0), (0, 0)),
        "s3-unencrypted-mark: jobs left over; worker logs:\n{}",
        run.task_logs
    );
    let cfg_state = stack.bucket_state(&cfg).await?;
    assert!(
        cfg_state
            .tags
            .get("maid_status")
            .is_some_and(|m| m.starts_with("Resource does not meet policy: delete@")),
        "s3-unencrypted-mark did not mark {cfg}: {cfg_state:?}"
    );

    // A finding names an exposed bucket and the module's own two: s3-hub-require-secure-
    // transport adds its statement to each (the local stack has no TLS-only policy on them).
    // The role's explicit deny keeps the module's buckets unchanged: the job fails with
    // AccessDenied on them, every time, and ends in the DLQ, while the exposed bucket gets
    // the statement.
    let exposed = format!("exposed-{sfx}");
    stack.create_buckets(std::slice::from_ref(&exposed)).await?;
    let mut finding =
        events::security_hub_finding(&exposed, REGION, "HIGH", &["Effects/Data Exposure"]);
    if let Some(resources) = finding
        .pointer_mut("/detail/findings/0/Resources")
        .and_then(serde_json::Value::as_array_mut)
    {
        for own in [&stack.out.policy_bucket, &stack.out.output_bucket] {
            resources.push(serde_json::json!({
                "Type": "AwsS3Bucket",
                "Id": format!("arn:aws:s3:::{own}"),
                "Partition": "aws",
                "Region": REGION
            }));
        }
    }
    let finding = [finding];
    let run = play_events(&stack, "protected-buckets", &finding, &cp, work.path()).await?;
    assert!(
        bucket_policy(&stack, &exposed)
            .await?
            .is_some_and(|p| p.contains("DenyInsecureTransport")),
        "s3-require-secure-transport did not reach {exposed}"
    );
    for own in [&stack.out.policy_bucket, &stack.out.output_bucket] {
        assert_eq!(
            bucket_policy(&stack, own).await?,
            None,
            "the worker changed the module's bucket {own}"
        );
        assert!(
            run.task_logs.lines().any(|l| l.contains("AccessDenied")
                && l.contains("PutBucketPolicy")
                && l.contains(own.as_str())),
            "no AccessDenied for PutBucketPolicy on {own} in the worker logs:\n{}",
            run.task_logs
        );
    }
    assert_eq!(run.queue_left, (0, 0), "protected buckets: queue not empty");
    assert_eq!(
        run.dlq_left,
        (1, 0),
        "protected buckets: the failing job should be in the DLQ"
    );
    // Dropping the stack stops the emulator with everything in it; `terraform destroy`
    // signs with moto's test credentials, which enforcement now rejects.
    drop(stack);
    Ok(())
}

/// The table is not more than enough either way round: without s3:PutEncryptionConfiguration
/// (taken out of permissions.json before the apply) the default policy cannot encrypt a new
/// bucket, the worker's log names the denied call, and the job ends in the DLQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_missing_from_the_table_fails_the_scenario_with_access_denied() -> Result<()> {
    let work = tempfile::tempdir()?;
    let stack = enforced_stack(&["s3:PutEncryptionConfiguration"], "iam-negative").await?;
    let r = play(
        &stack,
        &Scenario::single(),
        &control_plane(),
        work.path(),
        &|_| {},
    )
    .await?;
    eprintln!("{}", r.table());
    let (bucket, state) = r
        .buckets
        .first()
        .context("the scenario created no bucket")?;
    assert!(
        !state.encrypted,
        "{bucket} was encrypted without s3:PutEncryptionConfiguration"
    );
    // The other actions of the policy still ran.
    assert!(state.public_access_blocked, "{bucket}: {state:?}");
    let logs = task_logs(work.path(), &r.scenario.name);
    assert!(
        logs.lines().any(|l| l.contains("AccessDenied")
            && l.contains("PutBucketEncryption")
            && l.contains(bucket.as_str())),
        "the worker logs do not surface the AccessDenied:\n{logs}"
    );
    assert_eq!(r.queue_left, (0, 0), "queue not empty");
    assert_eq!(r.dlq_left, (1, 0), "the failing job should be in the DLQ");
    drop(stack);
    Ok(())
}
