//! A real `custodian-worker` with Cloud Custodian (the c7n driver, the project's Python) on
//! jobs for a resource the native engine does not run (`aws.security-group`), against moto:
//! the job is done end to end, a driver killed mid-job costs one retry and nothing else, and
//! a job over its timeout is stopped inside the driver, so nothing acts after it.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use aws_sdk_s3::primitives::ByteStream;
use czero_job::{Envelope, JOB_VERSION, Job, PolicyRef};
use czero_testkit::Moto;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EVENT: &str = include_str!(
    "../../driver/tests/fixtures/events/cloudtrail-authorize-security-group-ingress.json"
);
const SSH_OPEN: &str = "tcp:22-22:0.0.0.0/0";

fn python() -> PathBuf {
    czero_testkit::python().expect("the project's Python (moto, c7n) must be installed")
}

fn moto_state(moto: &Moto, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../driver/tests/py/moto_state.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The ingress rules of the security group named `web-ssh-open` (the one the event names).
fn target_ingress(moto: &Moto) -> Vec<String> {
    let state = moto_state(moto, &["snapshot", "us-east-1"]);
    state["security_groups"]["web-ssh-open"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// An open-SSH policy; `delay` makes c7n's CloudTrail mode sleep before resolving.
fn policy(delay: u32) -> String {
    format!(
        "policies:\n  - name: sg-ssh-open\n    resource: aws.security-group\n    mode:\n      type: cloudtrail\n      delay: {delay}\n      events:\n        - source: ec2.amazonaws.com\n          event: AuthorizeSecurityGroupIngress\n          ids: requestParameters.groupId\n    filters:\n      - type: ingress\n        Ports: [22]\n        Cidr:\n          value: 0.0.0.0/0\n    actions:\n      - type: remove-permissions\n        ingress: matched\n"
    )
}

struct Stack {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    queue_url: String,
    dlq_url: String,
    group_id: String,
    logs: tempfile::TempDir,
}

async fn stack(policy_text: &str, max_receive_count: u32) -> Stack {
    let moto = Moto::start().expect("moto starts");
    let sdk = moto.sdk_config();
    let sqs = czero_worker::sqs_client(&sdk);
    let s3 = czero_worker::s3_client(&sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name("dlq")
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
        .key("policies/sg.yml")
        .body(ByteStream::from(policy_text.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
    let ids = moto_state(&moto, &["seed", "sg", "us-east-1"]);
    let group_id = ids["sg"].as_str().unwrap().to_owned();
    let st = Stack {
        moto,
        sqs,
        s3,
        queue_url,
        dlq_url,
        group_id,
        logs: tempfile::tempdir().unwrap(),
    };
    st.queue_job().await;
    st
}

impl Stack {
    async fn queue_job(&self) {
        let event: Value =
            serde_json::from_str(&EVENT.replace("sg-0c2f1e6a9b8d74d10", &self.group_id)).unwrap();
        let job = Job {
            version: JOB_VERSION,
            job_id: "sg-job".into(),
            event_id: "sg-event".into(),
            source: "aws.ec2".into(),
            detail_type: "AWS API Call via CloudTrail".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            resource_ids: vec![self.group_id.clone()],
            policies: vec![PolicyRef {
                key: "policies/sg.yml".into(),
                etag: None,
                version_id: None,
            }],
            received_at: chrono::Utc::now(),
            trace_id: None,
            update_finding: Default::default(),
            event,
        };
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(Envelope::Inline { job }.encode().unwrap())
            .send()
            .await
            .unwrap();
    }

    fn worker(&self, extra: &[(&str, &str)]) -> (Child, PathBuf) {
        let log = self.logs.path().join("worker.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodian-worker"));
        cmd.envs(self.moto.env())
            .env("SQS_QUEUE_URL", &self.queue_url)
            .env("DLQ_URL", &self.dlq_url)
            .env("POLICY_BUCKET", "policies")
            .env("OUTPUT_BUCKET", "output")
            .env("WAIT_TIME_SECONDS", "1")
            .env("CUSTODIAN_PYTHON", python())
            .env("LOG_FORMAT", "json")
            .env_remove("ECS_AGENT_URI")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        (cmd.spawn().unwrap(), log)
    }

    async fn depth(&self, url: &str) -> u64 {
        let (v, f) = czero_testkit::queue_depth(&self.sqs, url).await.unwrap();
        v + f
    }

    async fn output_written(&self) -> bool {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket("output")
            .prefix("output/sg-job/")
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .any(|o| o.key().unwrap_or_default().ends_with("metadata.json.gz"))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn wait_for(log: &Path, needle: &str, limit: Duration) {
    let start = Instant::now();
    while !read(log).contains(needle) {
        assert!(start.elapsed() < limit, "no {needle:?} in:\n{}", read(log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_exit(child: &mut Child, limit: Duration, log: &Path) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("worker still running after {limit:?}:\n{}", read(log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Python processes started by `pid` (the driver is its child).
fn python_children(pid: u32) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|p: &u32| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("python"))
        })
        .collect()
}

#[tokio::test]
async fn a_security_group_job_runs_through_cloud_custodian() {
    let st = stack(&policy(0), 5).await;
    assert!(target_ingress(&st.moto).contains(&SSH_OPEN.to_string()));
    let (mut w, log) = st.worker(&[("MAX_EMPTY_RECEIVES", "2")]);
    wait_exit(&mut w, Duration::from_secs(120), &log).await;
    let text = read(&log);
    assert!(
        text.contains("\"job done\"") && text.contains("\"executor\":\"c7n\""),
        "{text}"
    );
    assert!(
        !target_ingress(&st.moto).contains(&SSH_OPEN.to_string()),
        "rule removed"
    );
    assert!(st.output_written().await);
    assert_eq!(st.depth(&st.queue_url).await, 0);
    assert_eq!(st.depth(&st.dlq_url).await, 0);
}

/// The driver killed in the middle of a job: that attempt fails (retryable), the message
/// comes back after its visibility timeout, a new driver starts, and the job completes.
#[tokio::test]
async fn a_driver_killed_mid_job_costs_one_retry() {
    let st = stack(&policy(4), 5).await;
    let (mut w, log) = st.worker(&[
        ("MAX_EMPTY_RECEIVES", "8"),
        ("VISIBILITY_TIMEOUT_SECONDS", "6"),
    ]);
    wait_for(
        &log,
        "running through Cloud Custodian",
        Duration::from_secs(60),
    )
    .await;
    // The driver is up (it imported c7n) once it runs the job; the job sleeps 4 s in c7n.
    let mut drivers = Vec::new();
    let start = Instant::now();
    while drivers.is_empty() && start.elapsed() < Duration::from_secs(30) {
        drivers = python_children(w.id());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(drivers.len(), 1, "one driver process: {drivers:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = Command::new("kill")
        .args(["-9", &drivers[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_exit(&mut w, Duration::from_secs(120), &log).await;
    let text = read(&log);
    assert!(
        text.contains("job failed; message left for SQS redrive"),
        "{text}"
    );
    assert!(
        text.contains("C7nCrashed") || text.contains("died"),
        "{text}"
    );
    assert_eq!(text.matches("\"job done\"").count(), 1, "{text}");
    assert!(
        !target_ingress(&st.moto).contains(&SSH_OPEN.to_string()),
        "rule removed on the retry"
    );
    assert!(st.output_written().await);
    assert_eq!(st.depth(&st.queue_url).await, 0);
    assert_eq!(st.depth(&st.dlq_url).await, 0);
}

/// A job over its timeout is killed inside the driver: long after the moment its action
/// would have run, the rule is still there, and the job went to the DLQ after its receives.
#[tokio::test]
async fn a_job_over_its_timeout_leaves_nothing_running() {
    // c7n sleeps 12 s before resolving; the job may run 6 s (the driver gets 1 s of it).
    let st = stack(&policy(12), 1).await;
    let (mut w, log) = st.worker(&[
        ("JOB_TIMEOUT_SECONDS", "6"),
        ("VISIBILITY_TIMEOUT_SECONDS", "8"),
        ("MAX_EMPTY_RECEIVES", "4"),
    ]);
    wait_for(
        &log,
        "job failed; message left for SQS redrive",
        Duration::from_secs(60),
    )
    .await;
    let text = read(&log);
    assert!(text.contains("killed after its timeout"), "{text}");
    // Past the point where the abandoned job would have acted.
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert!(
        target_ingress(&st.moto).contains(&SSH_OPEN.to_string()),
        "nothing acted after the job was abandoned"
    );
    wait_exit(&mut w, Duration::from_secs(120), &log).await;
    // Not deleted: still on the queue (hidden) or redriven to the DLQ, never lost.
    assert_eq!(
        st.depth(&st.queue_url).await + st.depth(&st.dlq_url).await,
        1,
        "the abandoned job is kept for redrive"
    );
}
