//! `czero invoke --event FILE` against moto, once per invoker fixture: the process reads its
//! configuration from the Lambda's environment variables, fetches the example mapping from
//! S3, and queues one job; the test then takes every message off the queue and checks the
//! job, its attributes, and that nothing else was queued. Skipped events queue nothing and
//! say why on stdout.

// Test helpers outside #[test] functions may panic on failure too.
#![allow(clippy::unwrap_used)]

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use czero_job::{Envelope, JOB_VERSION, Job, attributes};
use czero_testkit::{Moto, project_root};
use pretty_assertions::assert_eq;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const BUCKET: &str = "czero-policies";
const QUEUE: &str = "czero-jobs";

struct Stack {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    queue_url: String,
    /// Not a real home: keeps a developer's ~/.aws files out of the child's configuration.
    home: tempfile::TempDir,
}

/// moto with the queue, the policy bucket, the example mapping and every example policy,
/// as `terraform apply` and the deploy step leave them.
async fn stack() -> Stack {
    let moto = Moto::start().expect("moto starts (run `cargo xtask test` once to install it)");
    let sdk = moto.sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let queue_url = sqs
        .create_queue()
        .queue_name(QUEUE)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    czero_testkit::upload_project_policies(&s3, BUCKET)
        .await
        .unwrap();
    Stack {
        moto,
        sqs,
        s3,
        queue_url,
        home: tempfile::tempdir().unwrap(),
    }
}

struct Run {
    stdout: Value,
    stderr: String,
}

impl Stack {
    /// `czero invoke --event PATH` with the Lambda's configuration pointing at moto.
    async fn invoke(&self, event: &Path) -> Run {
        self.invoke_with(event, &[]).await
    }

    /// [`Self::invoke`] with more of the Lambda's environment variables.
    async fn invoke_with(&self, event: &Path, env: &[(&str, &str)]) -> Run {
        let out = self.invoke_output(event, env).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "czero invoke {} exited with {}: {stderr}",
            event.display(),
            out.status
        );
        let stdout = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON outcome ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        Run { stdout, stderr }
    }

    /// `czero invoke` as it ended, whatever its exit status.
    async fn invoke_output(&self, event: &Path, env: &[(&str, &str)]) -> std::process::Output {
        let home = self.home.path();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_czero"))
            .args(["invoke", "--event"])
            .arg(event)
            .env_clear()
            .envs(self.moto.env())
            .env("HOME", home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .env("SQS_QUEUE_URL", &self.queue_url)
            .env("POLICY_BUCKET", BUCKET)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .output()
            .await
            .unwrap()
    }

    /// Every message on the queue (received, then deleted), until a receive comes back
    /// empty; then checks that the queue holds nothing, in flight or delayed.
    async fn drain(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(30)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                break;
            }
            for m in &got {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.clone().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            all.extend(got);
        }
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        for a in [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ] {
            assert_eq!(attrs.get(&a).map(String::as_str), Some("0"), "{a:?}");
        }
        all
    }

    async fn policy_etag(&self, key: &str) -> String {
        self.s3
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap()
            .e_tag
            .unwrap()
    }
}

fn fixture(name: &str) -> PathBuf {
    project_root().join("crates/invoker/fixtures").join(name)
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap()
}

/// What one fixture must put on the queue.
struct Expect {
    fixture: &'static str,
    event_id: &'static str,
    source: &'static str,
    detail_type: &'static str,
    account: &'static str,
    region: &'static str,
    resource_ids: &'static [&'static str],
    policies: &'static [&'static str],
    rules: &'static [&'static str],
    defaulted: bool,
}

const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";

async fn queues_expected_job(want: Expect) {
    let st = stack().await;
    let run = st.invoke(&fixture(want.fixture)).await;
    let out = &run.stdout;
    assert_eq!(out["status"], "queued", "{out:#}");
    assert_eq!(out["wake"], "disabled");
    assert_eq!(out["defaulted"], want.defaulted);
    let rules: Vec<&str> = out["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(rules, want.rules);
    assert!(
        run.stderr
            .contains("ECS Service will auto-scale to process this message"),
        "{}",
        run.stderr
    );

    let messages = st.drain().await;
    assert_eq!(messages.len(), 1, "exactly one job queued: {messages:?}");
    let msg = &messages[0];
    assert_eq!(
        msg.message_id.as_deref(),
        out["queued"]["messageId"].as_str(),
        "stdout names the message that is on the queue"
    );
    let receive_count = msg
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .map(String::as_str);
    assert_eq!(receive_count, Some("1"));

    let Envelope::Inline { job } = Envelope::decode(msg.body.as_deref().unwrap()).unwrap() else {
        panic!("a small event is queued inline: {:?}", msg.body)
    };
    let printed: Job = serde_json::from_value(out["job"].clone()).unwrap();
    assert_eq!(job, printed, "the printed job is the queued job");
    assert_eq!(out["queued"]["jobId"].as_str(), Some(job.job_id.as_str()));
    assert_eq!(job.version, JOB_VERSION);
    assert_eq!(job.job_id.len(), 32);
    assert!(job.job_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(job.event_id, want.event_id);
    assert_eq!(job.source, want.source);
    assert_eq!(job.detail_type, want.detail_type);
    assert_eq!(job.account, want.account);
    assert_eq!(job.region, want.region);
    assert_eq!(job.resource_ids, want.resource_ids);
    let keys: Vec<&str> = job.policies.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, want.policies);
    for p in &job.policies {
        // A pinned policy must name the object the invoker saw in S3.
        if let Some(etag) = &p.etag {
            assert_eq!(etag, &st.policy_etag(&p.key).await, "{}", p.key);
        }
    }
    assert_eq!(job.trace_id, None);
    assert_eq!(
        job.event,
        fixture_json(want.fixture),
        "the event, untouched"
    );
    let age = chrono::Utc::now() - job.received_at;
    assert!(
        age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::seconds(120),
        "received_at {} is not now",
        job.received_at
    );

    let attrs: BTreeMap<String, (String, String)> = msg
        .message_attributes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, (v.data_type, v.string_value.unwrap_or_default())))
        .collect();
    let expected: BTreeMap<String, (String, String)> = [
        (attributes::VERSION, "Number", JOB_VERSION.to_string()),
        (attributes::EVENT_SOURCE, "String", want.source.to_owned()),
        (
            attributes::POLICY_COUNT,
            "Number",
            want.policies.len().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, t, v)| (k.to_owned(), (t.to_owned(), v)))
    .collect();
    assert_eq!(attrs, expected);
}

async fn skips_and_queues_nothing(fixture_name: &str, reason: &str) {
    let st = stack().await;
    let run = st.invoke(&fixture(fixture_name)).await;
    assert_eq!(run.stdout["status"], "skipped", "{:#}", run.stdout);
    let got = run.stdout["reason"].as_str().unwrap();
    assert!(got.contains(reason), "reason `{got}` lacks `{reason}`");
    assert!(run.stderr.contains("event skipped"), "{}", run.stderr);
    assert!(
        st.drain().await.is_empty(),
        "a skipped event queues nothing"
    );
}

#[tokio::test]
async fn cloudtrail_create_bucket() {
    queues_expected_job(Expect {
        fixture: "cloudtrail-createbucket.json",
        event_id: "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
        source: "aws.s3",
        detail_type: CLOUDTRAIL,
        account: "123456789012",
        region: "us-east-1",
        resource_ids: &["team-analytics-raw-2026"],
        policies: &["policies/s3-createbucket.yml"],
        rules: &["s3-bucket-created"],
        defaulted: false,
    })
    .await;
}

#[tokio::test]
async fn cloudtrail_put_bucket_acl_cross_account() {
    queues_expected_job(Expect {
        fixture: "cloudtrail-putbucketacl-cross-account.json",
        event_id: "0b1c9a55-3e2f-4a61-8c3d-2f1e0d9c8b7a",
        source: "aws.s3",
        detail_type: CLOUDTRAIL,
        account: "210987654321",
        region: "eu-west-1",
        resource_ids: &["marketing-site-assets"],
        policies: &["policies/s3-global-grants.yml"],
        rules: &["s3-acl-changed"],
        defaulted: false,
    })
    .await;
}

#[tokio::test]
async fn security_hub_multi_resource() {
    queues_expected_job(Expect {
        fixture: "securityhub-multi-resource.json",
        event_id: "3c5e9b2a-6d7f-4e81-a2b3-c4d5e6f70819",
        source: "aws.securityhub",
        detail_type: "Security Hub Findings - Imported",
        // The findings' account (where the job acts), not the aggregator's envelope.
        account: "444455556666",
        region: "us-east-1",
        resource_ids: &[
            "arn:aws:s3:::partner-uploads-prod",
            "arn:aws:s3:::partner-uploads-staging",
        ],
        policies: &[
            "policies/s3-hub-finding-public.yml",
            "policies/s3-hub-policy-statements.yml",
        ],
        rules: &["hub-s3-high-findings", "hub-s3-data-exposure"],
        defaulted: false,
    })
    .await;
}

/// c7n's guard-duty mode has no aws.s3, so no rule routes GuardDuty S3 findings (Security
/// Hub imports them); the default policy subscribes to CreateBucket only: nothing to queue.
#[tokio::test]
async fn guardduty_s3_public_is_skipped() {
    skips_and_queues_nothing(
        "guardduty-s3-public.json",
        "no selected policy would act on this event: policies/s3-createbucket.yml: \
         `s3-createbucket-remediate` (cloudtrail CreateBucket) does not subscribe to it",
    )
    .await;
}

#[tokio::test]
async fn guardduty_ec2_cross_account_is_skipped() {
    skips_and_queues_nothing(
        "guardduty-ec2-cross-account.json",
        "`s3-createbucket-remediate` (cloudtrail CreateBucket) does not subscribe to it",
    )
    .await;
}

#[tokio::test]
async fn config_compliance_change() {
    queues_expected_job(Expect {
        fixture: "config-compliance.json",
        event_id: "d6a1f7e2-3c4b-5a69-8b7c-0e1f2a3b4c5d",
        source: "aws.config",
        detail_type: "Config Rules Compliance Change",
        account: "123456789012",
        region: "us-east-1",
        resource_ids: &["finance-reports-archive"],
        policies: &["policies/s3-config-unencrypted-mark.yml"],
        rules: &["config-s3-encryption"],
        defaulted: false,
    })
    .await;
}

#[tokio::test]
async fn failed_cloudtrail_call_is_skipped() {
    skips_and_queues_nothing(
        "cloudtrail-createbucket-failed.json",
        "CloudTrail call CreateBucket failed with BucketAlreadyExists",
    )
    .await;
}

#[tokio::test]
async fn unsupported_kind_is_skipped() {
    skips_and_queues_nothing(
        "ec2-state-change.json",
        "unsupported event kind: source `aws.ec2`, detail-type `EC2 Instance State-change Notification`",
    )
    .await;
}

/// An event too large for one message: the job goes to S3 and the message is a claim check.
#[tokio::test]
async fn large_event_goes_through_the_claim_check() {
    let st = stack().await;
    let mut ev = fixture_json("cloudtrail-createbucket.json");
    ev["detail"]["requestParameters"]["padding"] = Value::String("x".repeat(300 * 1024));
    let path = st.home.path().join("large-event.json");
    std::fs::write(&path, ev.to_string()).unwrap();
    let run = st.invoke(&path).await;
    assert_eq!(run.stdout["status"], "queued", "{:#}", run.stdout);
    let messages = st.drain().await;
    assert_eq!(messages.len(), 1);
    let body = messages[0].body.as_deref().unwrap();
    assert!(
        body.len() < 1024,
        "claim check body is small: {}",
        body.len()
    );
    let Envelope::ClaimCheck {
        job_id,
        bucket,
        key,
        ..
    } = Envelope::decode(body).unwrap()
    else {
        panic!("expected a claim check: {body:.200}")
    };
    assert_eq!(bucket, BUCKET);
    assert_eq!(key, format!("jobs/{job_id}.json"));
    assert_eq!(
        run.stdout["queued"]["claimCheck"].as_str(),
        Some(format!("s3://{BUCKET}/{key}").as_str())
    );
    let stored = st
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let job = czero_job::decode_job(&stored).unwrap();
    assert_eq!(job.job_id, job_id);
    assert_eq!(job.resource_ids, ["team-analytics-raw-2026"]);
    assert_eq!(job.event, ev);
    let claim = messages[0]
        .message_attributes
        .as_ref()
        .and_then(|a| a.get(attributes::CLAIM_CHECK))
        .and_then(|v| v.string_value.as_deref());
    assert_eq!(claim, Some("true"));
}

/// The role Terraform gives the worker tasks, as it passes it in EXCLUDE_PRINCIPAL_ARNS.
const WORKER_ROLE: &str = "arn:aws:iam::123456789012:role/custodian/czero-worker";

/// The CloudTrail event name of the call each of the default policy's actions makes (c7n's
/// SetBucketEncryption, SetPublicBlock, ToggleVersioning, BucketTag; CloudTrail names the
/// bucket-level public access block calls `*BucketPublicAccessBlock`).
const ACTION_CALLS: &[(&str, &str)] = &[
    ("set-bucket-encryption", "PutBucketEncryption"),
    ("set-public-block", "PutBucketPublicAccessBlock"),
    ("toggle-versioning", "PutBucketVersioning"),
    ("tag", "PutBucketTagging"),
];

/// The CloudTrail event of one remediation call on the fixture's bucket, made by `who`.
fn remediation_event(event_name: &str, who: Value, n: usize) -> Value {
    let mut ev = fixture_json("cloudtrail-createbucket.json");
    ev["id"] = format!("loop-{n}-{event_name}").into();
    ev["detail"]["eventName"] = event_name.into();
    ev["detail"]["userIdentity"] = who;
    ev["detail"]["requestParameters"] = serde_json::json!({
        "bucketName": "team-analytics-raw-2026",
        "Host": "team-analytics-raw-2026.s3.amazonaws.com",
    });
    ev
}

/// Regression: the worker's own remediations came back as CloudTrail events and each
/// queued another job. The calls the default policy makes, by the worker role, queue
/// nothing; the same calls by a person still do.
#[tokio::test]
async fn the_workers_own_remediation_calls_do_not_trigger_jobs() {
    let st = stack().await;
    let default = czero_policy::parse_str(
        "s3-createbucket.yml",
        &std::fs::read_to_string(project_root().join("policies/s3-createbucket.yml")).unwrap(),
    )
    .unwrap();
    let actions = default.policies[0].action_types();
    let calls: Vec<&str> = actions
        .iter()
        .map(|a| {
            ACTION_CALLS
                .iter()
                .find(|(t, _)| t == a)
                .unwrap_or_else(|| panic!("no CloudTrail event known for action {a}"))
                .1
        })
        .collect();
    assert_eq!(
        calls.len(),
        4,
        "the default policy's four remediation calls"
    );
    let worker = serde_json::json!({
        "type": "AssumedRole",
        "principalId": "AROAWORKER:ecs-task-3f2a",
        "arn": "arn:aws:sts::123456789012:assumed-role/czero-worker/ecs-task-3f2a",
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAWORKER",
            "arn": WORKER_ROLE, "accountId": "123456789012", "userName": "czero-worker"}}
    });
    let person = fixture_json("cloudtrail-createbucket.json")["detail"]["userIdentity"].clone();
    let env = [("EXCLUDE_PRINCIPAL_ARNS", WORKER_ROLE)];
    for (n, call) in calls.iter().enumerate() {
        let path = st.home.path().join(format!("worker-{call}.json"));
        std::fs::write(
            &path,
            remediation_event(call, worker.clone(), n).to_string(),
        )
        .unwrap();
        let run = st.invoke_with(&path, &env).await;
        assert_eq!(run.stdout["status"], "skipped", "{call}: {:#}", run.stdout);
        assert_eq!(
            run.stdout["reason"],
            format!("caused by custodian-zero's own worker ({WORKER_ROLE})"),
            "{call}"
        );
    }
    assert!(
        st.drain().await.is_empty(),
        "the worker's calls queue nothing"
    );

    for (n, call) in calls.iter().enumerate() {
        let path = st.home.path().join(format!("person-{call}.json"));
        std::fs::write(
            &path,
            remediation_event(call, person.clone(), n).to_string(),
        )
        .unwrap();
        let run = st.invoke_with(&path, &env).await;
        assert_eq!(run.stdout["status"], "queued", "{call}: {:#}", run.stdout);
        assert_eq!(
            run.stdout["rules"],
            serde_json::json!(["s3-settings-changed"])
        );
    }
    let jobs = st.drain().await;
    assert_eq!(
        jobs.len(),
        calls.len(),
        "each call by a person queues its job"
    );
    for m in &jobs {
        let Envelope::Inline { job } = Envelope::decode(m.body.as_deref().unwrap()).unwrap() else {
            panic!("inline expected")
        };
        let keys: Vec<&str> = job.policies.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["policies/s3-bucket-drift.yml"]);
    }
}

/// A CloudTrail event naming a path instead of a bucket wakes nothing.
#[tokio::test]
async fn a_bucket_name_that_is_a_path_queues_nothing() {
    let st = stack().await;
    let mut ev = fixture_json("cloudtrail-createbucket.json");
    ev["detail"]["requestParameters"]["bucketName"] = "../../etc/passwd".into();
    let path = st.home.path().join("traversal.json");
    std::fs::write(&path, ev.to_string()).unwrap();
    let run = st.invoke(&path).await;
    assert_eq!(run.stdout["status"], "skipped", "{:#}", run.stdout);
    assert!(
        run.stdout["reason"]
            .as_str()
            .unwrap()
            .starts_with("event names `../../etc/passwd`, which is not a valid aws.s3 id"),
        "{:#}",
        run.stdout
    );
    assert!(st.drain().await.is_empty());
}

/// A failure Lambda would retry (here: the default policy not uploaded yet, as during a
/// deployment) exits 75, so a script playing EventBridge can retry it; anything else that
/// fails exits 1, and nothing is queued either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_exit_75_and_the_rest_exit_1() {
    let stack = stack().await;
    let missing = stack
        .invoke_output(
            &fixture("cloudtrail-createbucket.json"),
            &[("DEFAULT_POLICY_KEY", "policies/not-uploaded-yet.yml")],
        )
        .await;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("policies/not-uploaded-yet.yml"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"{ not an event").unwrap();
    let bad = stack.invoke_output(&junk, &[]).await;
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(stack.drain().await.is_empty(), "nothing is queued");
}
