//! Real `custodian-worker` processes against moto: jobs in, outputs out, nothing lost when
//! workers are killed, stopped or see faults. Every test counts the jobs it queued and the
//! outputs, queue and DLQ afterwards.

// Test code: a panic is a failed test (helpers outside #[test] fns included).
#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_s3::primitives::ByteStream;
use czero_testkit::Moto;
use czero_testkit::fault_proxy::{Action, FaultProxy, Rule, When};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = include_str!("../fixtures/s3-createbucket.yml");
const POLICY_KEY: &str = "policies/s3-createbucket.yml";
const IDLE_LINE: &str =
    "No messages for extended period. Exiting gracefully to allow scale-down to 0.";

struct Stack {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    queue_url: String,
    dlq_url: String,
    logs: tempfile::TempDir,
}

async fn stack(max_receive_count: u32, visibility_seconds: u32) -> Stack {
    let moto = Moto::start().expect("moto starts (run `cargo xtask test` once to install it)");
    let sdk = moto.sdk_config();
    let sqs = czero_worker::sqs_client(&sdk);
    let s3 = czero_worker::s3_client(&sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name("jobs-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue_url = sqs
        .create_queue()
        .queue_name("jobs")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for b in ["policies", "output"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    s3.put_object()
        .bucket("policies")
        .key(POLICY_KEY)
        .body(ByteStream::from_static(POLICY.as_bytes()))
        .send()
        .await
        .unwrap();
    Stack {
        moto,
        sqs,
        s3,
        queue_url,
        dlq_url,
        logs: tempfile::tempdir().unwrap(),
    }
}

impl Stack {
    /// Creates `n` buckets and queues one job per bucket; returns the job ids.
    async fn queue_jobs(&self, n: usize, tag: &str) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for i in 0..n {
            let bucket = format!("{tag}-bucket-{i}");
            self.s3
                .create_bucket()
                .bucket(&bucket)
                .send()
                .await
                .unwrap();
            let id = format!("{tag}-job-{i}");
            self.send(&common::job_body(&id, &bucket)).await;
            ids.insert(id);
        }
        ids
    }

    async fn send(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Starts a worker whose AWS endpoint is `endpoint` (moto or a fault proxy).
    fn worker(&self, name: &str, endpoint: &str, extra: &[(&str, &str)]) -> Worker {
        let stderr = self.logs.path().join(format!("{name}.log"));
        let stdout = self.logs.path().join(format!("{name}.metrics"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodian-worker"));
        cmd.envs(self.moto.env())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("SQS_QUEUE_URL", &self.queue_url)
            .env("POLICY_BUCKET", "policies")
            .env("OUTPUT_BUCKET", "output")
            .env("WAIT_TIME_SECONDS", "1")
            .env("MAX_EMPTY_RECEIVES", "3")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,czero_worker=debug")
            .env_remove("ECS_AGENT_URI")
            .env_remove("ECS_CONTAINER_METADATA_URI_V4")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Worker {
            child: cmd.spawn().expect("worker starts"),
            log: stderr,
            metrics: stdout,
        }
    }

    /// Job ids with a complete output (`metadata.json.gz`) in the output bucket.
    async fn outputs(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket("output")
            .prefix("output/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for o in page.unwrap().contents.unwrap_or_default() {
                let key = o.key.unwrap_or_default();
                if key.ends_with("/metadata.json.gz") {
                    ids.insert(key.split('/').nth(1).unwrap_or_default().to_owned());
                }
            }
        }
        ids
    }

    /// Visible + in-flight messages of a queue.
    async fn depth(&self, url: &str) -> u64 {
        let (visible, in_flight) = czero_testkit::queue_depth(&self.sqs, url).await.unwrap();
        visible + in_flight
    }

    async fn dlq_bodies(&self) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }

    async fn assert_nothing_lost(&self, jobs: &BTreeSet<String>) {
        assert_eq!(&self.outputs().await, jobs, "every job has its output");
        assert_eq!(self.depth(&self.queue_url).await, 0, "queue empty");
        assert_eq!(self.depth(&self.dlq_url).await, 0, "DLQ empty");
    }
}

struct Worker {
    child: Child,
    log: PathBuf,
    metrics: PathBuf,
}

impl Worker {
    async fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("worker still running after {limit:?}; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The EMF records the worker printed on stdout.
    fn metrics(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.metrics)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each stdout line is one JSON record"))
            .collect()
    }

    /// The sum of a metric over the records of a namespace.
    fn metric_sum(&self, namespace: &str, name: &str) -> f64 {
        self.metrics()
            .iter()
            .filter(|r| r["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace)
            .filter_map(|r| r[name].as_f64())
            .sum()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_for_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "no {needle:?} in the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn n_jobs_in_n_outputs_out() {
    let st = stack(3, 30).await;
    let jobs = st.queue_jobs(12, "plain").await;
    let mut w = st.worker("w", &st.moto.endpoint(), &[]);
    let status = w.wait(Duration::from_secs(90)).await;
    assert!(status.success(), "{status}; log:\n{}", w.log());
    st.assert_nothing_lost(&jobs).await;
    // The policy really ran: the remediation is visible on a bucket.
    let enc = st
        .s3
        .get_bucket_encryption()
        .bucket("plain-bucket-0")
        .send()
        .await
        .expect("bucket encrypted by the policy");
    assert!(enc.server_side_encryption_configuration.is_some());
    let log = w.log();
    assert_eq!(log.matches("\"job done\"").count(), 12, "{log}");

    let worker_ns = "CloudCustodian/FargateWorker";
    assert_eq!(w.metric_sum(worker_ns, "MessagesReceived"), 12.0);
    assert_eq!(w.metric_sum(worker_ns, "ProcessingSuccesses"), 12.0);
    assert_eq!(w.metric_sum(worker_ns, "ProcessingFailures"), 0.0);
    let policy_ns = "CloudCustodian/PolicyExecution";
    assert_eq!(
        w.metric_sum(policy_ns, "ResourcesProcessed"),
        12.0,
        "one bucket per event"
    );
    assert_eq!(
        w.metric_sum(policy_ns, "ActionsTaken"),
        48.0,
        "four actions per bucket"
    );
    assert_eq!(w.metric_sum("CloudMaid", "ResourceCount"), 12.0);
    let exec = w
        .metrics()
        .into_iter()
        .find(|r| r["_aws"]["CloudWatchMetrics"][0]["Namespace"] == policy_ns)
        .unwrap();
    assert_eq!(exec["Policy"], "s3-createbucket-remediate");
    assert_eq!(exec["ResType"], "aws.s3");
    assert!(exec["ExecutionTime"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn idle_exit_after_exactly_max_empty_receives() {
    let st = stack(3, 30).await;
    let proxy = FaultProxy::start(&st.moto.endpoint(), vec![]).unwrap();
    let started = Instant::now();
    let mut w = st.worker("w", &proxy.endpoint(), &[("MAX_EMPTY_RECEIVES", "3")]);
    let status = w.wait(Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Some(0), "{}", w.log());
    let log = w.log();
    assert_eq!(log.matches(IDLE_LINE).count(), 1, "{log}");
    assert_eq!(log.matches("\"empty receive\"").count(), 3, "{log}");
    assert_eq!(proxy.requests("ReceiveMessage"), 3);
    assert!(
        elapsed >= Duration::from_secs(3),
        "three 1 s long polls: {elapsed:?}"
    );
}

#[tokio::test]
async fn sigkill_mid_batch_loses_nothing() {
    // Visibility 3 s: a killed worker's messages come back quickly.
    let st = stack(5, 3).await;
    let jobs = st.queue_jobs(6, "kill").await;
    // Policy reads take 2 s through this proxy, so the first worker is surely mid-batch.
    let slow = FaultProxy::start(
        &st.moto.endpoint(),
        vec![Rule::path(
            "GET",
            "/policies/",
            When::Always,
            Action::Delay(Duration::from_secs(2)),
        )],
    )
    .unwrap();
    let mut first = st.worker(
        "first",
        &slow.endpoint(),
        &[("VISIBILITY_TIMEOUT_SECONDS", "3"), ("IDLE_EXIT", "off")],
    );
    first
        .wait_for_log("batch received", Duration::from_secs(30))
        .await;
    first.signal("-KILL");
    let status = first.wait(Duration::from_secs(5)).await;
    assert!(!status.success());
    assert!(
        !first.log().contains("\"job done\""),
        "killed before any job finished"
    );
    assert!(
        st.depth(&st.queue_url).await > 0,
        "jobs in flight, not lost"
    );

    // Enough empty polls to outlast the 3 s in which the killed worker's jobs stay hidden.
    let mut second = st.worker(
        "second",
        &st.moto.endpoint(),
        &[
            ("VISIBILITY_TIMEOUT_SECONDS", "3"),
            ("MAX_EMPTY_RECEIVES", "8"),
        ],
    );
    let status = second.wait(Duration::from_secs(90)).await;
    assert!(status.success(), "{}", second.log());
    st.assert_nothing_lost(&jobs).await;
}

#[tokio::test]
async fn sigterm_mid_batch_releases_jobs_at_once() {
    // A long visibility timeout: only an explicit release makes the jobs visible quickly.
    let st = stack(5, 300).await;
    let jobs = st.queue_jobs(5, "term").await;
    let slow = FaultProxy::start(
        &st.moto.endpoint(),
        vec![Rule::path(
            "GET",
            "/policies/",
            When::Always,
            Action::Delay(Duration::from_secs(10)),
        )],
    )
    .unwrap();
    let mut first = st.worker(
        "first",
        &slow.endpoint(),
        &[("SHUTDOWN_GRACE_SECONDS", "1"), ("IDLE_EXIT", "off")],
    );
    first
        .wait_for_log("batch received", Duration::from_secs(30))
        .await;
    let stopped = Instant::now();
    first.signal("-TERM");
    let status = first.wait(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", first.log());
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "grace 1 s, then release"
    );
    let log = first.log();
    assert!(log.contains("releasing unfinished jobs"), "{log}");

    let mut second = st.worker("second", &st.moto.endpoint(), &[]);
    let status = second.wait(Duration::from_secs(60)).await;
    assert!(status.success(), "{}", second.log());
    st.assert_nothing_lost(&jobs).await;
}

#[tokio::test]
async fn sigterm_lets_jobs_in_hand_finish_within_the_grace_period() {
    let st = stack(5, 300).await;
    let jobs = st.queue_jobs(3, "grace").await;
    let slow = FaultProxy::start(
        &st.moto.endpoint(),
        vec![Rule::path(
            "GET",
            "/policies/",
            When::Always,
            Action::Delay(Duration::from_secs(1)),
        )],
    )
    .unwrap();
    let mut w = st.worker(
        "w",
        &slow.endpoint(),
        &[("SHUTDOWN_GRACE_SECONDS", "30"), ("IDLE_EXIT", "off")],
    );
    w.wait_for_log("batch received", Duration::from_secs(30))
        .await;
    w.signal("-TERM");
    let status = w.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", w.log());
    assert_eq!(w.log().matches("\"job done\"").count(), 3, "{}", w.log());
    st.assert_nothing_lost(&jobs).await;
}

#[tokio::test]
async fn poison_message_reaches_the_dlq_after_max_receive_count() {
    let st = stack(2, 1).await;
    let jobs = st.queue_jobs(3, "poison").await;
    st.send("this is not a job").await;
    let mut w = st.worker(
        "w",
        &st.moto.endpoint(),
        &[
            ("VISIBILITY_TIMEOUT_SECONDS", "2"),
            ("MAX_EMPTY_RECEIVES", "4"),
        ],
    );
    let status = w.wait(Duration::from_secs(60)).await;
    assert!(status.success(), "{}", w.log());
    let log = w.log();
    let reasons = log
        .lines()
        .filter(|l| l.contains("job cannot succeed; no DLQ_URL, so it is left for SQS redrive"))
        .collect::<Vec<_>>();
    assert_eq!(reasons.len(), 2, "logged on each of the 2 receives:\n{log}");
    assert!(
        reasons
            .iter()
            .all(|l| l.contains("\"level\":\"ERROR\"") && l.contains("not valid JSON"))
    );
    assert_eq!(st.outputs().await, jobs);
    assert_eq!(st.depth(&st.queue_url).await, 0);
    let dead = st.dlq_bodies().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body.as_deref(), Some("this is not a job"));
}

#[tokio::test]
async fn poison_message_goes_straight_to_the_dlq_with_dlq_url() {
    let st = stack(5, 30).await;
    let jobs = st.queue_jobs(2, "direct").await;
    st.send("{\"kind\":\"inline\"}").await;
    let mut w = st.worker("w", &st.moto.endpoint(), &[("DLQ_URL", &st.dlq_url)]);
    let status = w.wait(Duration::from_secs(60)).await;
    assert!(status.success(), "{}", w.log());
    assert_eq!(st.outputs().await, jobs);
    assert_eq!(st.depth(&st.queue_url).await, 0);
    let dead = st.dlq_bodies().await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].message_attributes.as_ref().unwrap()
        [czero_worker::queue::DEAD_LETTER_REASON_ATTRIBUTE]
        .string_value
        .clone()
        .unwrap();
    assert!(reason.contains("not valid JSON"), "{reason}");
}

#[tokio::test]
async fn injected_sqs_and_s3_errors_are_retried_without_loss() {
    let st = stack(10, 2).await;
    let jobs = st.queue_jobs(10, "fault").await;
    let proxy = FaultProxy::start(
        &st.moto.endpoint(),
        vec![
            Rule::target("ReceiveMessage", When::EveryNth(2), Action::Status(500)),
            Rule::target("DeleteMessage", When::EveryNth(3), Action::Status(503)),
            Rule::path("GET", "/policies/", When::First(4), Action::Status(503)),
            Rule::path("PUT", "/output/", When::EveryNth(4), Action::Status(500)),
        ],
    )
    .unwrap();
    let mut w = st.worker(
        "w",
        &proxy.endpoint(),
        &[
            ("VISIBILITY_TIMEOUT_SECONDS", "2"),
            ("MAX_EMPTY_RECEIVES", "3"),
        ],
    );
    let status = w.wait(Duration::from_secs(120)).await;
    assert!(status.success(), "{}", w.log());
    assert!(
        proxy.injected() >= 4,
        "faults were injected: {}",
        proxy.injected()
    );
    st.assert_nothing_lost(&jobs).await;
}

#[tokio::test]
async fn bad_configuration_exits_2_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_custodian-worker"))
        .env_clear()
        .env("POLICY_BUCKET", "p")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("SQS_QUEUE_URL"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_custodian-worker"))
        .env_clear()
        .env("SQS_QUEUE_URL", "http://127.0.0.1:9/1/q")
        .env("POLICY_BUCKET", "p")
        .env("WAIT_TIME_SECONDS", "30")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WAIT_TIME_SECONDS=\"30\" is invalid"));

    let out = Command::new(env!("CARGO_BIN_EXE_custodian-worker"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("custodian-worker "));
}

/// The S3 state a job's actions leave behind: the bucket's tags (the default policy tags
/// every bucket it remediates).
async fn tag_writes(st: &Stack, bucket: &str) -> usize {
    st.s3
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .map(|t| t.tag_set().len())
        .unwrap_or(0)
}

/// Duplicates run once: the same job delivered twice (a Lambda retry after a successful
/// send queues two messages with one job id) is acted on by one worker; the other copy is
/// counted, logged and deleted. Sequential and concurrent copies alike.
#[tokio::test]
async fn duplicate_jobs_run_once() {
    let st = stack(5, 30).await;
    st.s3
        .create_bucket()
        .bucket("dup-bucket")
        .send()
        .await
        .unwrap();
    let body = common::job_body("dup-job", "dup-bucket");
    for _ in 0..3 {
        st.send(&body).await;
    }
    // Two workers at once, so two copies can be in flight together. A copy that finds the
    // job running is hidden for the claim's lease (the visibility timeout), then dropped.
    let opts = [
        ("WORKER_CONCURRENCY", "1"),
        ("VISIBILITY_TIMEOUT_SECONDS", "4"),
        ("MAX_EMPTY_RECEIVES", "8"),
    ];
    let mut a = st.worker("a", &st.moto.endpoint(), &opts);
    let mut b = st.worker("b", &st.moto.endpoint(), &opts);
    assert!(
        a.wait(Duration::from_secs(90)).await.success(),
        "{}",
        a.log()
    );
    assert!(
        b.wait(Duration::from_secs(90)).await.success(),
        "{}",
        b.log()
    );
    let logs = format!("{}{}", a.log(), b.log());
    assert_eq!(logs.matches("\"job done\"").count(), 1, "{logs}");
    let dropped = logs.matches("duplicate job: it already ran").count();
    assert_eq!(dropped, 2, "{logs}");
    let suppressed = a.metric_sum("CloudCustodian/FargateWorker", "DuplicatesSuppressed")
        + b.metric_sum("CloudCustodian/FargateWorker", "DuplicatesSuppressed");
    assert_eq!(suppressed, 2.0);
    assert_eq!(tag_writes(&st, "dup-bucket").await, 1, "remediated");
    assert_eq!(st.outputs().await, BTreeSet::from(["dup-job".to_string()]));
    assert_eq!(st.depth(&st.queue_url).await, 0);
    assert_eq!(st.depth(&st.dlq_url).await, 0);
    let marker = st
        .s3
        .get_object()
        .bucket("output")
        .key("ledger/dup-job.json")
        .send()
        .await
        .expect("the job's marker is in the ledger");
    let marker: serde_json::Value =
        serde_json::from_slice(&marker.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(marker["state"], "done");
}

/// Regression: visibility was renewed at half the timeout and a failed renewal retried only
/// a period later, so one failure let the message reappear and a second worker start the
/// same job. Here the first renewal fails on every attempt; the second worker never
/// receives the message while the first still runs it.
#[tokio::test]
async fn a_failed_renewal_does_not_hand_the_job_to_a_second_worker() {
    let st = stack(5, 6).await;
    let jobs = st.queue_jobs(1, "renew").await;
    let faulty = FaultProxy::start(
        &st.moto.endpoint(),
        vec![
            // The job takes ~9 s (its policy read is slow)...
            Rule::path(
                "GET",
                "/policies/",
                When::Always,
                Action::Delay(Duration::from_secs(9)),
            ),
            // ...and its first renewal fails on all three SDK attempts.
            Rule::target(
                "ChangeMessageVisibility",
                When::First(3),
                Action::Status(500),
            ),
        ],
    )
    .unwrap();
    let mut first = st.worker(
        "first",
        &faulty.endpoint(),
        &[
            ("VISIBILITY_TIMEOUT_SECONDS", "6"),
            ("MAX_EMPTY_RECEIVES", "2"),
        ],
    );
    first
        .wait_for_log("batch received", Duration::from_secs(30))
        .await;
    let mut second = st.worker(
        "second",
        &st.moto.endpoint(),
        &[
            ("VISIBILITY_TIMEOUT_SECONDS", "6"),
            ("MAX_EMPTY_RECEIVES", "12"),
        ],
    );
    assert!(
        first.wait(Duration::from_secs(60)).await.success(),
        "{}",
        first.log()
    );
    assert!(
        second.wait(Duration::from_secs(60)).await.success(),
        "{}",
        second.log()
    );
    assert!(
        faulty.requests("ChangeMessageVisibility") >= 4,
        "the renewal failed (3 attempts) and was retried"
    );
    assert!(
        first
            .log()
            .contains("visibility extension failed; retrying in 1 s"),
        "{}",
        first.log()
    );
    assert!(
        !second.log().contains("batch received"),
        "the second worker received the job:\n{}",
        second.log()
    );
    assert_eq!(first.log().matches("\"job done\"").count(), 1);
    st.assert_nothing_lost(&jobs).await;
}

/// `{account_id}` in a policy resolves although AWS_ACCOUNT_ID is unset: the worker asks
/// STS once at start (regression: it stayed literal in set-statements).
#[tokio::test]
async fn account_id_is_resolved_when_not_configured() {
    let st = stack(5, 30).await;
    let policy = "policies:\n  - name: deny-other-accounts\n    resource: aws.s3\n    mode:\n      type: cloudtrail\n      events: [CreateBucket]\n    actions:\n      - type: set-statements\n        statements:\n          - Sid: OnlyThisAccount\n            Effect: Deny\n            NotPrincipal: {AWS: \"arn:aws:iam::{account_id}:root\"}\n            Action: \"s3:*\"\n            Resource: \"arn:aws:s3:::{bucket_name}/*\"\n";
    st.s3
        .put_object()
        .bucket("policies")
        .key(POLICY_KEY)
        .body(ByteStream::from(policy.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
    let jobs = st.queue_jobs(1, "acct").await;
    let mut w = st.worker("w", &st.moto.endpoint(), &[]);
    assert!(
        w.wait(Duration::from_secs(60)).await.success(),
        "{}",
        w.log()
    );
    let doc = st
        .s3
        .get_bucket_policy()
        .bucket("acct-bucket-0")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    assert!(doc.contains("arn:aws:iam::123456789012:root"), "{doc}");
    assert!(!doc.contains("{account_id}"), "{doc}");
    st.assert_nothing_lost(&jobs).await;
}
