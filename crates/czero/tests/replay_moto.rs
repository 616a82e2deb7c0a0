//! `czero replay --local` against moto: the on-failure destination queue holds Lambda
//! destination records; the replay runs the invoker's handler in-process (configured by the
//! Lambda's environment), so the job lands on the job queue; a replayed record is deleted,
//! a failed one and a message that is not a record stay on the destination queue, visible
//! again. A dry run queues and deletes nothing.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use czero_job::Envelope;
use czero_testkit::{Moto, project_root, queue_depth};
use serde_json::{Value, json};

const BUCKET: &str = "czero-policies";

struct Stack {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    jobs: String,
    failures: String,
    home: tempfile::TempDir,
}

async fn stack() -> Stack {
    let moto = Moto::start().expect("moto starts (run `cargo xtask test` once to install it)");
    let sdk = moto.sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let mut urls = Vec::new();
    for name in ["czero-jobs", "czero-invoker-failures"] {
        urls.push(
            sqs.create_queue()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap(),
        );
    }
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    czero_testkit::upload_project_policies(&s3, BUCKET)
        .await
        .unwrap();
    let failures = urls.pop().unwrap();
    let jobs = urls.pop().unwrap();
    Stack {
        moto,
        sqs,
        jobs,
        failures,
        home: tempfile::tempdir().unwrap(),
    }
}

fn fixture(name: &str) -> Value {
    let p = project_root().join("crates/invoker/fixtures").join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn record(request_id: &str, payload: Value) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-28T05:13:01.121Z",
        "requestContext": {"requestId": request_id,
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:czero-invoker:$LATEST",
            "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "czero.Retryable.PolicyMissing", "errorMessage": "missing"}
    })
    .to_string()
}

impl Stack {
    async fn put(&self, body: String) {
        self.sqs
            .send_message()
            .queue_url(&self.failures)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// The three messages: a CreateBucket event, an event the handler rejects, not a record.
    async fn fill(&self) {
        self.put(record("req-ok", fixture("cloudtrail-createbucket.json")))
            .await;
        let mut broken = fixture("cloudtrail-createbucket.json");
        broken["id"] = "evt-broken".into();
        broken["detail"] = "not an object".into();
        self.put(record("req-broken", broken)).await;
        self.put(r#"{"version":1,"jobId":"a job, not a record"}"#.into())
            .await;
    }

    async fn replay(&self, extra: &[&str]) -> (Option<i32>, String, String) {
        let home = self.home.path();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_czero"))
            .args(["replay", "--local", "--queue-url", &self.failures])
            .args(extra)
            .env_clear()
            .envs(self.moto.env())
            .env("HOME", home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .env("SQS_QUEUE_URL", &self.jobs)
            .env("POLICY_BUCKET", BUCKET)
            .output()
            .await
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn bodies(&self, url: &str) -> Vec<String> {
        let got = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        got.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.body.unwrap())
            .collect()
    }
}

#[tokio::test]
async fn local_replay_queues_the_job_and_deletes_only_the_replayed_record() {
    let st = stack().await;
    st.fill().await;
    let (code, stdout, stderr) = st.replay(&[]).await;
    assert_eq!(code, Some(1), "one replay failed: {stdout}\n{stderr}");
    assert!(
        stdout.ends_with("replayed 1, failed 1, skipped 1\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failed request req-broken")
            && stdout.contains("event field `detail`: expected an object"),
        "{stdout}"
    );
    // The job is on the job queue, for the fixture's event.
    let jobs = st.bodies(&st.jobs).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let Envelope::Inline { job } = Envelope::decode(&jobs[0]).unwrap() else {
        panic!("inline job expected")
    };
    assert_eq!(job.event_id, "6f87d04b-9f74-4f04-a780-7acf4b0a9b38");
    assert_eq!(job.policies[0].key, "policies/s3-createbucket.yml");
    assert!(
        stdout.contains(&format!("queued job {}", job.job_id)),
        "{stdout}"
    );
    // The failed record and the stranger stay, visible again at once.
    assert_eq!(
        queue_depth(&st.sqs, &st.failures).await.unwrap(),
        (2, 0),
        "released, not in flight"
    );
    let left = st.bodies(&st.failures).await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().any(|b| b.contains("req-broken")));
    assert!(left.iter().any(|b| b.contains("a job, not a record")));
}

#[tokio::test]
async fn a_local_dry_run_queues_and_deletes_nothing() {
    let st = stack().await;
    st.fill().await;
    let (code, stdout, stderr) = st.replay(&["--dry-run"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.ends_with("would replay 2, skipped 1 (dry run: nothing invoked or deleted)\n"),
        "{stdout}"
    );
    assert_eq!(queue_depth(&st.sqs, &st.jobs).await.unwrap(), (0, 0));
    assert_eq!(queue_depth(&st.sqs, &st.failures).await.unwrap(), (3, 0));
}

#[tokio::test]
async fn local_replay_needs_the_lambdas_configuration() {
    let st = stack().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_czero"))
        .args(["replay", "--local", "--queue-url", &st.failures])
        .env_clear()
        .envs(st.moto.env())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SQS_QUEUE_URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
