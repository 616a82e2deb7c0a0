//! Contract tests: the exact SQS (JSON protocol), S3 and ECS agent requests the worker
//! sends, and how it copes with throttling, 5xx answers and expired receipt handles.

// Test code: a panic is a failed test (helpers outside #[test] fns included).
#![allow(clippy::unwrap_used)]

mod common;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use common::{FakeRunner, config, job_body};
use czero_worker::metrics::Metrics;
use czero_worker::protection::Protection;
use czero_worker::queue::{DEAD_LETTER_REASON_ATTRIBUTE, Queue, QueueError};
use czero_worker::shutdown;
use czero_worker::store::{Store, StoreError};
use czero_worker::{Exit, Worker, s3_client, sqs_client};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const QUEUE: &str = "http://127.0.0.1/123456789012/jobs";
const DLQ: &str = "http://127.0.0.1/123456789012/jobs-dlq";
const POLICY: &str = "policies:\n  - name: s3-test\n    resource: aws.s3\n";

fn sdk(server: &MockServer) -> SdkConfig {
    czero_testkit::stub_config(&server.uri())
        .into_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build()
}

fn sqs_json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_string(body.to_string())
}

fn sqs_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .insert_header("x-amzn-query-error", format!("{code};Sender"))
        .set_body_string(
            json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": "stub"}).to_string(),
        )
}

fn sqs_call(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-amz-target", format!("AmazonSQS.{op}").as_str()))
}

fn message(id: &str, body: &str) -> Value {
    json!({"MessageId": id, "ReceiptHandle": format!("rh-{id}"), "MD5OfBody": "x", "Body": body,
           "Attributes": {"ApproximateReceiveCount": "2"}})
}

async fn requests_for(server: &MockServer, op: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t == format!("AmazonSQS.{op}"))
        })
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

// ---------------------------------------------------------------- SQS

#[tokio::test]
async fn receive_sends_the_long_poll_and_reads_receive_counts() {
    let server = MockServer::start().await;
    sqs_call("ReceiveMessage")
        .and(body_partial_json(json!({
            "QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20,
            "VisibilityTimeout": 360, "MessageSystemAttributeNames": ["ApproximateReceiveCount"]
        })))
        .respond_with(sqs_json(json!({"Messages": [message("m1", "hello")]})))
        .expect(1)
        .mount(&server)
        .await;
    let q = Queue::new(sqs_client(&sdk(&server)), QUEUE);
    let got = q.receive(10, 20, 360).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, "m1");
    assert_eq!(got[0].receipt_handle, "rh-m1");
    assert_eq!(got[0].body, "hello");
    assert_eq!(got[0].receive_count, 2);
}

#[tokio::test]
async fn receive_retries_throttling_and_5xx() {
    for failure in [
        sqs_error(400, "ThrottlingException"),
        sqs_error(500, "InternalError"),
        ResponseTemplate::new(503),
    ] {
        let server = MockServer::start().await;
        sqs_call("ReceiveMessage")
            .respond_with(failure)
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        sqs_call("ReceiveMessage")
            .respond_with(sqs_json(json!({"Messages": [message("m1", "b")]})))
            .mount(&server)
            .await;
        let q = Queue::new(sqs_client(&sdk(&server)), QUEUE);
        assert_eq!(q.receive(10, 0, 30).await.unwrap().len(), 1);
        assert_eq!(requests_for(&server, "ReceiveMessage").await.len(), 3);
    }
}

#[tokio::test]
async fn persistent_5xx_is_transient_and_missing_queue_is_fatal() {
    let server = MockServer::start().await;
    sqs_call("ReceiveMessage")
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let q = Queue::new(sqs_client(&sdk(&server)), QUEUE);
    let err = q.receive(10, 0, 30).await.unwrap_err();
    assert!(matches!(err, QueueError::Transient { .. }), "{err:?}");

    let server = MockServer::start().await;
    sqs_call("ReceiveMessage")
        .respond_with(sqs_error(400, "QueueDoesNotExist"))
        .mount(&server)
        .await;
    let q = Queue::new(sqs_client(&sdk(&server)), QUEUE);
    let err = q.receive(10, 0, 30).await.unwrap_err();
    assert!(err.is_fatal(), "{err:?}");
    assert!(err.to_string().contains(QUEUE), "{err}");
}

#[tokio::test]
async fn expired_receipt_handles_are_recognised() {
    let server = MockServer::start().await;
    sqs_call("DeleteMessage")
        .and(body_partial_json(
            json!({"QueueUrl": QUEUE, "ReceiptHandle": "old"}),
        ))
        .respond_with(sqs_error(400, "ReceiptHandleIsInvalid"))
        .mount(&server)
        .await;
    sqs_call("ChangeMessageVisibility")
        .and(body_partial_json(
            json!({"ReceiptHandle": "old", "VisibilityTimeout": 0}),
        ))
        .respond_with(sqs_error(400, "ReceiptHandleIsInvalid"))
        .mount(&server)
        .await;
    sqs_call("ChangeMessageVisibility")
        .and(body_partial_json(json!({"ReceiptHandle": "gone"})))
        .respond_with(sqs_error(400, "MessageNotInflight"))
        .mount(&server)
        .await;
    let q = Queue::new(sqs_client(&sdk(&server)), QUEUE);
    assert!(matches!(
        q.delete("old").await,
        Err(QueueError::HandleExpired {
            op: "DeleteMessage",
            ..
        })
    ));
    assert!(matches!(
        q.change_visibility("old", 0).await,
        Err(QueueError::HandleExpired { .. })
    ));
    assert!(matches!(
        q.change_visibility("gone", 30).await,
        Err(QueueError::HandleExpired { .. })
    ));
}

#[tokio::test]
async fn dead_letter_carries_the_reason_attribute() {
    let server = MockServer::start().await;
    sqs_call("SendMessage")
        .and(body_partial_json(json!({
            "QueueUrl": DLQ, "MessageBody": "garbage",
            "MessageAttributes": {DEAD_LETTER_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": "not a job"}}
        })))
        .respond_with(sqs_json(json!({"MessageId": "d1", "MD5OfMessageBody": "x"})))
        .expect(1)
        .mount(&server)
        .await;
    let q = Queue::new(sqs_client(&sdk(&server)), QUEUE);
    q.send_dead_letter(DLQ, "garbage", "not a job", &[])
        .await
        .unwrap();
}

// ---------------------------------------------------------------- S3

struct EtagResponder {
    text: Arc<Mutex<(String, String)>>,
}

impl Respond for EtagResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (etag, body) = self.text.lock().unwrap().clone();
        if req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
        {
            return ResponseTemplate::new(304).insert_header("etag", etag.as_str());
        }
        ResponseTemplate::new(200)
            .insert_header("etag", etag.as_str())
            .set_body_string(body)
    }
}

#[tokio::test]
async fn policies_are_cached_by_etag_with_conditional_gets() {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(("\"v1\"".to_string(), POLICY.to_string())));
    Mock::given(method("GET"))
        .and(path("/policies/policies/s3.yml"))
        .respond_with(EtagResponder {
            text: Arc::clone(&state),
        })
        .mount(&server)
        .await;
    let store = Store::new(s3_client(&sdk(&server)));
    let first = store
        .policy(
            "policies",
            "policies/s3.yml",
            None,
            czero_worker::worker::MAX_POLICY_BYTES,
        )
        .await
        .unwrap();
    assert_eq!(&*first.text, POLICY);
    assert_eq!(first.etag.as_deref(), Some("\"v1\""));
    let second = store
        .policy(
            "policies",
            "policies/s3.yml",
            None,
            czero_worker::worker::MAX_POLICY_BYTES,
        )
        .await
        .unwrap();
    assert_eq!(second, first, "304 served from the cache");

    *state.lock().unwrap() = ("\"v2\"".into(), "policies: []\n".into());
    let third = store
        .policy(
            "policies",
            "policies/s3.yml",
            None,
            czero_worker::worker::MAX_POLICY_BYTES,
        )
        .await
        .unwrap();
    assert_eq!(&*third.text, "policies: []\n");

    let reqs = server.received_requests().await.unwrap();
    let inm: Vec<Option<&str>> = reqs
        .iter()
        .map(|r| r.headers.get("if-none-match").and_then(|v| v.to_str().ok()))
        .collect();
    assert_eq!(inm, [None, Some("\"v1\""), Some("\"v1\"")]);
}

#[tokio::test]
async fn missing_policy_is_not_found_and_5xx_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/policies/policies/missing.yml"))
        .respond_with(ResponseTemplate::new(404).set_body_string(
            "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/policies/policies/flaky.yml"))
        .respond_with(ResponseTemplate::new(503).set_body_string(
            "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>",
        ))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/policies/policies/flaky.yml"))
        .respond_with(ResponseTemplate::new(200).set_body_string(POLICY))
        .mount(&server)
        .await;
    let store = Store::new(s3_client(&sdk(&server)));
    let err = store
        .policy(
            "policies",
            "policies/missing.yml",
            None,
            czero_worker::worker::MAX_POLICY_BYTES,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "s3://policies/policies/missing.yml does not exist"
    );
    let ok = store
        .policy(
            "policies",
            "policies/flaky.yml",
            None,
            czero_worker::worker::MAX_POLICY_BYTES,
        )
        .await
        .unwrap();
    assert_eq!(&*ok.text, POLICY);
}

#[tokio::test]
async fn pinned_policy_versions_are_requested() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/policies/policies/s3.yml"))
        .and(wiremock::matchers::query_param("versionId", "v7"))
        .respond_with(ResponseTemplate::new(200).set_body_string(POLICY))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::new(s3_client(&sdk(&server)));
    store
        .policy(
            "policies",
            "policies/s3.yml",
            Some("v7"),
            czero_worker::worker::MAX_POLICY_BYTES,
        )
        .await
        .unwrap();
}

// ---------------------------------------------------------------- ECS agent

#[tokio::test]
async fn protection_puts_the_agent_state_and_retries() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/api/task/task-protection/v1/state"))
        .and(body_partial_json(
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 30}),
        ))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/task/task-protection/v1/state"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "protection": {"ExpirationDate": "2026-11-28T06:00:00Z", "ProtectionEnabled": true,
                           "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/t"}
        })))
        .mount(&server)
        .await;
    let p = Protection::new(&format!("{}/api/task", server.uri()), 30)
        .with_retries(3, Duration::from_millis(1));
    assert!(p.protect().await);
    assert!(p.unprotect().await);
    let bodies: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 30}),
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 30}),
            json!({"ProtectionEnabled": false}),
        ]
    );
}

#[tokio::test]
async fn protection_failure_reported_by_the_agent_is_not_fatal() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "failure": {"Arn": "arn:aws:ecs:us-east-1:123456789012:task/c/t",
                        "Reason": "TASK_NOT_VALID", "Detail": "not in a service"}
        })))
        .expect(3)
        .mount(&server)
        .await;
    let p = Protection::new(&server.uri(), 5).with_retries(2, Duration::from_millis(1));
    assert!(!p.protect().await);
    let err = p.put(&json!({"ProtectionEnabled": false})).await;
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("TASK_NOT_VALID: not in a service")
    );
}

// ---------------------------------------------------------------- the loop

struct Stack {
    sqs: MockServer,
    s3: MockServer,
}

async fn stack() -> Stack {
    let sqs = MockServer::start().await;
    let s3 = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/policies/policies/s3-createbucket.yml"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"e1\"")
                .set_body_string(POLICY),
        )
        .mount(&s3)
        .await;
    Stack { sqs, s3 }
}

fn worker(
    st: &Stack,
    runner: FakeRunner,
    extra: &[(&str, &str)],
    protection: Option<Protection>,
) -> Worker<FakeRunner> {
    Worker::new(
        config(QUEUE, extra),
        Queue::new(sqs_client(&sdk(&st.sqs)), QUEUE),
        Store::new(s3_client(&sdk(&st.s3))),
        runner,
        protection,
        Metrics::to_writer(Box::new(std::io::sink())),
    )
}

/// The first receive returns `messages`, every later one is empty.
async fn mount_receives(sqs: &MockServer, messages: Vec<Value>) {
    sqs_call("ReceiveMessage")
        .respond_with(sqs_json(json!({"Messages": messages})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(sqs)
        .await;
    sqs_call("ReceiveMessage")
        .respond_with(sqs_json(json!({})))
        .mount(sqs)
        .await;
}

#[tokio::test]
async fn deletes_done_jobs_keeps_failures_and_exits_after_exactly_n_empty_receives() {
    let st = stack().await;
    mount_receives(
        &st.sqs,
        vec![
            message("ok1", &job_body("j1", "b1")),
            message("ok2", &job_body("j2", "b2")),
            message("bad", "this is not a job"),
        ],
    )
    .await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let runner = FakeRunner::default();
    let w = worker(&st, runner.clone(), &[("MAX_EMPTY_RECEIVES", "4")], None);
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
    assert_eq!(runner.calls(), 2);
    let deleted: Vec<String> = requests_for(&st.sqs, "DeleteMessage")
        .await
        .iter()
        .map(|b| b["ReceiptHandle"].as_str().unwrap().to_owned())
        .collect();
    let mut deleted_sorted = deleted.clone();
    deleted_sorted.sort();
    assert_eq!(
        deleted_sorted,
        ["rh-ok1", "rh-ok2"],
        "garbage is never deleted silently"
    );
    assert_eq!(requests_for(&st.sqs, "ReceiveMessage").await.len(), 1 + 4);
}

#[tokio::test]
async fn failed_jobs_are_left_for_redrive() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    let runner = FakeRunner {
        fail: Some("AccessDenied on PutBucketEncryption"),
        ..FakeRunner::default()
    };
    let w = worker(&st, runner.clone(), &[], None);
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
    assert_eq!(runner.calls(), 1);
    assert!(requests_for(&st.sqs, "DeleteMessage").await.is_empty());
    assert!(
        requests_for(&st.sqs, "ChangeMessageVisibility")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn missing_policy_file_fails_the_job_without_running_it() {
    let st = stack().await;
    let mut j = common::job("j", "b");
    j.policies[0].key = "policies/missing.yml".into();
    let body = czero_job::Envelope::Inline { job: j }.encode().unwrap();
    mount_receives(&st.sqs, vec![message("m", &body)]).await;
    let runner = FakeRunner::default();
    let w = worker(&st, runner.clone(), &[], None);
    let (_t, stop) = shutdown::channel();
    w.run(stop).await.unwrap();
    assert_eq!(runner.calls(), 0);
    assert!(requests_for(&st.sqs, "DeleteMessage").await.is_empty());
}

#[tokio::test]
async fn poison_goes_to_the_dlq_with_its_reason_when_configured() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("bad", "{\"kind\":\"inline\"}")]).await;
    sqs_call("SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "d1", "MD5OfMessageBody": "x"}),
        ))
        .mount(&st.sqs)
        .await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let w = worker(&st, FakeRunner::default(), &[("DLQ_URL", DLQ)], None);
    let (_t, stop) = shutdown::channel();
    w.run(stop).await.unwrap();
    let sent = requests_for(&st.sqs, "SendMessage").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["QueueUrl"], DLQ);
    assert_eq!(sent[0]["MessageBody"], "{\"kind\":\"inline\"}");
    let reason = sent[0]["MessageAttributes"][DEAD_LETTER_REASON_ATTRIBUTE]["StringValue"]
        .as_str()
        .unwrap();
    assert!(
        reason.starts_with("not a job message: job message is not valid JSON"),
        "{reason}"
    );
    assert_eq!(
        requests_for(&st.sqs, "DeleteMessage").await[0]["ReceiptHandle"],
        "rh-bad"
    );
}

#[tokio::test]
async fn expired_handle_on_delete_is_logged_not_fatal() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_error(400, "ReceiptHandleIsInvalid"))
        .mount(&st.sqs)
        .await;
    let runner = FakeRunner::default();
    let w = worker(&st, runner.clone(), &[], None);
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
    assert_eq!(runner.finished(), 1);
    assert_eq!(
        requests_for(&st.sqs, "DeleteMessage").await.len(),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn long_jobs_have_their_visibility_extended() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    sqs_call("ChangeMessageVisibility")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let runner = FakeRunner {
        delay: Duration::from_millis(2500),
        ..FakeRunner::default()
    };
    // Visibility 2 s: renewed every second while the 2.5 s job runs.
    let w = worker(
        &st,
        runner.clone(),
        &[("VISIBILITY_TIMEOUT_SECONDS", "2")],
        None,
    );
    let (_t, stop) = shutdown::channel();
    w.run(stop).await.unwrap();
    let changes = requests_for(&st.sqs, "ChangeMessageVisibility").await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    for c in &changes {
        assert_eq!(c["ReceiptHandle"], "rh-m");
        assert_eq!(c["VisibilityTimeout"], 2);
    }
    assert_eq!(requests_for(&st.sqs, "DeleteMessage").await.len(), 1);
}

#[tokio::test]
async fn jobs_over_their_timeout_are_abandoned_for_redrive() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    let runner = FakeRunner {
        delay: Duration::from_secs(30),
        ..FakeRunner::default()
    };
    let w = worker(&st, runner.clone(), &[("JOB_TIMEOUT_SECONDS", "1")], None);
    let (_t, stop) = shutdown::channel();
    let started = std::time::Instant::now();
    w.run(stop).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(runner.finished(), 0);
    assert!(requests_for(&st.sqs, "DeleteMessage").await.is_empty());
}

#[tokio::test]
async fn sigterm_mid_batch_releases_unfinished_jobs_after_the_grace_period() {
    let st = stack().await;
    mount_receives(
        &st.sqs,
        vec![
            message("slow1", &job_body("j1", "b1")),
            message("slow2", &job_body("j2", "b2")),
        ],
    )
    .await;
    sqs_call("ChangeMessageVisibility")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let runner = FakeRunner {
        delay: Duration::from_secs(60),
        ..FakeRunner::default()
    };
    let w = worker(
        &st,
        runner.clone(),
        &[("SHUTDOWN_GRACE_SECONDS", "1"), ("IDLE_EXIT", "off")],
        None,
    );
    let (trigger, stop) = shutdown::channel();
    let (exit, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(w.run(stop), async {
            while runner.calls() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            trigger.request();
        })
    })
    .await
    .expect("exits within the grace period");
    assert_eq!(exit.unwrap(), Exit::Shutdown);
    let mut released: Vec<(String, i64)> = requests_for(&st.sqs, "ChangeMessageVisibility")
        .await
        .iter()
        .map(|b| {
            (
                b["ReceiptHandle"].as_str().unwrap().to_owned(),
                b["VisibilityTimeout"].as_i64().unwrap(),
            )
        })
        .collect();
    released.sort();
    assert_eq!(released, [("rh-slow1".into(), 0), ("rh-slow2".into(), 0)]);
    assert!(requests_for(&st.sqs, "DeleteMessage").await.is_empty());
    assert_eq!(
        requests_for(&st.sqs, "ReceiveMessage").await.len(),
        1,
        "no receive after SIGTERM"
    );
}

#[tokio::test]
async fn sigterm_mid_batch_lets_short_jobs_finish() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let runner = FakeRunner {
        delay: Duration::from_millis(500),
        ..FakeRunner::default()
    };
    let w = worker(&st, runner.clone(), &[("IDLE_EXIT", "off")], None);
    let (trigger, stop) = shutdown::channel();
    let (exit, ()) = tokio::join!(w.run(stop), async {
        while runner.calls() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        trigger.request();
    });
    assert_eq!(exit.unwrap(), Exit::Shutdown);
    assert_eq!(runner.finished(), 1);
    assert_eq!(requests_for(&st.sqs, "DeleteMessage").await.len(), 1);
    assert!(
        requests_for(&st.sqs, "ChangeMessageVisibility")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_batch_is_protected_from_scale_in_while_it_runs() {
    let st = stack().await;
    let agent = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/task-protection/v1/state"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"protection": {}})))
        .mount(&agent)
        .await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let p = Protection::new(&agent.uri(), 45);
    let w = worker(&st, FakeRunner::default(), &[], Some(p));
    let (_t, stop) = shutdown::channel();
    w.run(stop).await.unwrap();
    let calls: Vec<Value> = agent
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 45}),
            json!({"ProtectionEnabled": false})
        ],
        "protected once for the batch, not on empty receives"
    );
}

#[tokio::test]
async fn unreachable_agent_does_not_stop_the_job() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let port = czero_testkit::free_port().unwrap();
    let p = Protection::new(&format!("http://127.0.0.1:{port}"), 5)
        .with_retries(2, Duration::from_millis(1));
    let runner = FakeRunner::default();
    let w = worker(&st, runner.clone(), &[], Some(p));
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
    assert_eq!(runner.finished(), 1);
    assert_eq!(requests_for(&st.sqs, "DeleteMessage").await.len(), 1);
}

#[tokio::test]
async fn transient_receive_errors_are_retried_and_do_not_count_as_empty() {
    let st = stack().await;
    sqs_call("ReceiveMessage")
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(4)
        .with_priority(1)
        .mount(&st.sqs)
        .await;
    sqs_call("ReceiveMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let w = worker(
        &st,
        FakeRunner::default(),
        &[("MAX_EMPTY_RECEIVES", "2")],
        None,
    );
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
    // 4 failures = 1 receive (3 SDK attempts) failed + 1 more failed attempt, then successes.
    assert_eq!(requests_for(&st.sqs, "ReceiveMessage").await.len(), 4 + 2);
}

#[tokio::test]
async fn missing_queue_stops_the_worker_with_an_error() {
    let st = stack().await;
    sqs_call("ReceiveMessage")
        .respond_with(sqs_error(400, "QueueDoesNotExist"))
        .mount(&st.sqs)
        .await;
    let w = worker(&st, FakeRunner::default(), &[], None);
    let (_t, stop) = shutdown::channel();
    let err = w.run(stop).await.unwrap_err();
    assert!(err.to_string().contains("QueueDoesNotExist"), "{err}");
}

// ---------------------------------------------------------------- pinned policies

/// Log lines written while it is the thread's subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self, containing: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(containing))
            .map(str::to_owned)
            .collect()
    }
}

fn pinned_body(job_id: &str, etag: &str, version_id: Option<&str>) -> String {
    let mut job = common::job(job_id, "b");
    job.policies = vec![czero_job::PolicyRef {
        key: "policies/s3-createbucket.yml".into(),
        etag: Some(etag.into()),
        version_id: version_id.map(str::to_owned),
    }];
    czero_job::Envelope::Inline { job }.encode().unwrap()
}

#[tokio::test]
async fn pinned_versions_are_fetched_and_etag_drift_is_logged() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let l = logs.clone();
            move || l.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // The current object has ETag "e1" (see stack()); version v-7 is an older one.
    let st = stack().await;
    Mock::given(method("GET"))
        .and(path("/policies/policies/s3-createbucket.yml"))
        .and(wiremock::matchers::query_param("versionId", "v-7"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"e0\"")
                .insert_header("x-amz-version-id", "v-7")
                .set_body_string(POLICY),
        )
        .with_priority(1)
        .expect(1)
        .mount(&st.s3)
        .await;
    mount_receives(
        &st.sqs,
        vec![
            message("versioned", &pinned_body("j1", "\"e0\"", Some("v-7"))),
            message("drifted", &pinned_body("j2", "\"e0\"", None)),
            message("current", &pinned_body("j3", "\"e1\"", None)),
        ],
    )
    .await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let runner = FakeRunner::default();
    // One job at a time, so the log and request order follow the messages.
    let w = worker(
        &st,
        runner.clone(),
        &[("MAX_EMPTY_RECEIVES", "1"), ("WORKER_CONCURRENCY", "1")],
        None,
    );
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
    assert_eq!(runner.calls(), 3, "a drifted policy still runs");
    assert_eq!(requests_for(&st.sqs, "DeleteMessage").await.len(), 3);

    let s3: Vec<Option<String>> = st
        .s3
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.query().map(str::to_owned))
        .collect();
    assert_eq!(
        s3.iter()
            .filter(|q| q.as_deref().is_some_and(|q| q.contains("versionId=v-7")))
            .count(),
        1,
        "only the version-pinned job asks for a version: {s3:?}"
    );

    let warnings = logs.lines("policy changed since the invoker selected it");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("ETag \"e0\" then, \"e1\" now")
            && warnings[0].contains("job_id=\"j2\"")
            && warnings[0].contains("policy=policies/s3-createbucket.yml"),
        "{}",
        warnings[0]
    );
}

// ---------------------------------------------------------------- failures that cannot heal

async fn mount_dlq_and_delete(sqs: &MockServer) {
    sqs_call("SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "d1", "MD5OfMessageBody": "x"}),
        ))
        .mount(sqs)
        .await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(sqs)
        .await;
}

/// The DLQ sends as (body's job id or body, kind attribute, reason attribute).
async fn dead_letters(sqs: &MockServer) -> Vec<(String, String, String)> {
    requests_for(sqs, "SendMessage")
        .await
        .iter()
        .map(|m| {
            assert_eq!(m["QueueUrl"], DLQ);
            let attr = |k: &str| {
                m["MessageAttributes"][k]["StringValue"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            let body = m["MessageBody"].as_str().unwrap_or_default();
            let id = czero_job::Envelope::decode(body)
                .ok()
                .and_then(|e| match e {
                    czero_job::Envelope::Inline { job } => Some(job.job_id),
                    _ => None,
                })
                .unwrap_or_else(|| body.to_owned());
            (
                id,
                attr(czero_worker::queue::DEAD_LETTER_KIND_ATTRIBUTE),
                attr(DEAD_LETTER_REASON_ATTRIBUTE),
            )
        })
        .collect()
}

/// Regression: with `panic = "abort"` one panicking job killed the worker, and the rest of
/// its batch was neither finished nor released. Now the panic is that job's failure.
#[tokio::test]
async fn a_panic_fails_its_own_job_and_the_batch_completes() {
    let st = stack().await;
    mount_receives(
        &st.sqs,
        vec![
            message("a", &job_body("ja", "ba")),
            message("boom", &job_body("jboom", "bb")),
            message("c", &job_body("jc", "bc")),
        ],
    )
    .await;
    mount_dlq_and_delete(&st.sqs).await;
    let runner = FakeRunner {
        panic_on: Some("jboom"),
        delay: Duration::from_millis(50),
        ..FakeRunner::default()
    };
    let w = worker(&st, runner.clone(), &[("DLQ_URL", DLQ)], None);
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
    assert_eq!(runner.finished(), 2, "the other two jobs ran to the end");
    let dead = dead_letters(&st.sqs).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, "jboom");
    assert_eq!(dead[0].1, "Panic");
    assert!(
        dead[0].2.contains("injected panic in job jboom"),
        "{dead:?}"
    );
    let mut deleted: Vec<String> = requests_for(&st.sqs, "DeleteMessage")
        .await
        .iter()
        .map(|b| b["ReceiptHandle"].as_str().unwrap().to_owned())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["rh-a", "rh-boom", "rh-c"]);
}

#[tokio::test]
async fn failures_no_retry_can_fix_go_to_the_dlq_at_once() {
    for (runner, kind, reason) in [
        (
            FakeRunner {
                fail: Some("needs the full worker image (custodian-worker:full)"),
                permanent: Some("NeedsFullImage"),
                ..FakeRunner::default()
            },
            "NeedsFullImage",
            "needs the full worker image (custodian-worker:full)",
        ),
        (
            FakeRunner {
                skip: Some("mode cloudtrail [CreateBucket] does not subscribe to this event"),
                ..FakeRunner::default()
            },
            "NothingRan",
            "no policy of the job handles its event",
        ),
    ] {
        let st = stack().await;
        mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
        mount_dlq_and_delete(&st.sqs).await;
        let w = worker(&st, runner.clone(), &[("DLQ_URL", DLQ)], None);
        let (_t, stop) = shutdown::channel();
        w.run(stop).await.unwrap();
        assert_eq!(runner.calls(), 1, "{kind}: run once, not five times");
        let dead = dead_letters(&st.sqs).await;
        assert_eq!(dead.len(), 1, "{kind}: {dead:?}");
        assert_eq!(dead[0].1, kind);
        assert!(dead[0].2.contains(reason), "{kind}: {}", dead[0].2);
        assert_eq!(requests_for(&st.sqs, "DeleteMessage").await.len(), 1);
    }
}

#[tokio::test]
async fn retryable_failures_keep_the_redrive_path() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    mount_dlq_and_delete(&st.sqs).await;
    let runner = FakeRunner {
        fail: Some("SlowDown: please reduce your request rate"),
        ..FakeRunner::default()
    };
    let w = worker(&st, runner.clone(), &[("DLQ_URL", DLQ)], None);
    let (_t, stop) = shutdown::channel();
    w.run(stop).await.unwrap();
    assert!(dead_letters(&st.sqs).await.is_empty());
    assert!(requests_for(&st.sqs, "DeleteMessage").await.is_empty());
}

/// A claim check makes the worker read an object with its own role: only the invoker's
/// bucket and `jobs/` prefix are accepted.
#[tokio::test]
async fn claim_checks_outside_the_configured_place_are_refused() {
    for (bucket, key) in [
        ("someone-elses-bucket", "jobs/j.json"),
        ("policies", "policies/s3-createbucket.yml"),
        ("policies", "jobs/../policies/x"),
    ] {
        let st = stack().await;
        let body = czero_job::Envelope::ClaimCheck {
            job_id: "j".into(),
            bucket: bucket.into(),
            key: key.into(),
            version: czero_job::JOB_VERSION,
        }
        .encode()
        .unwrap();
        mount_receives(&st.sqs, vec![message("m", &body)]).await;
        mount_dlq_and_delete(&st.sqs).await;
        let runner = FakeRunner::default();
        let w = worker(&st, runner.clone(), &[("DLQ_URL", DLQ)], None);
        let (_t, stop) = shutdown::channel();
        w.run(stop).await.unwrap();
        assert_eq!(runner.calls(), 0);
        let dead = dead_letters(&st.sqs).await;
        assert_eq!(dead[0].1, "ClaimCheckRejected", "{bucket}/{key}");
        assert!(
            st.s3
                .received_requests()
                .await
                .unwrap()
                .iter()
                .all(|r| !r.url.path().contains("jobs")),
            "nothing read from s3://{bucket}/{key}"
        );
    }
}

#[tokio::test]
async fn an_oversized_policy_file_is_refused_before_it_is_parsed() {
    let st = stack().await;
    let mut j = common::job("j", "b");
    j.policies[0].key = "policies/huge.yml".into();
    let body = czero_job::Envelope::Inline { job: j }.encode().unwrap();
    Mock::given(method("GET"))
        .and(path("/policies/policies/huge.yml"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("x".repeat(czero_worker::worker::MAX_POLICY_BYTES + 1)),
        )
        .mount(&st.s3)
        .await;
    mount_receives(&st.sqs, vec![message("m", &body)]).await;
    mount_dlq_and_delete(&st.sqs).await;
    let runner = FakeRunner::default();
    let w = worker(&st, runner.clone(), &[("DLQ_URL", DLQ)], None);
    let (_t, stop) = shutdown::channel();
    w.run(stop).await.unwrap();
    assert_eq!(runner.calls(), 0);
    let dead = dead_letters(&st.sqs).await;
    assert_eq!(dead[0].1, "InvalidPolicy");
    assert!(dead[0].2.contains("over the 524288-byte limit"), "{dead:?}");
}

/// Regression: the worker's SQS client had no timeouts, so a DeleteMessage that never
/// answered held the batch (and its scale-in protection) indefinitely.
#[tokio::test]
async fn a_hung_call_fails_in_bounded_time() {
    let sqs = MockServer::start().await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})).set_delay(Duration::from_secs(120)))
        .mount(&sqs)
        .await;
    let q = Queue::new(sqs_client(&sdk(&sqs)), QUEUE).with_call_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let r = q.delete("rh").await;
    assert!(r.is_err(), "a hung delete is an error");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
}

/// A failed renewal is retried within seconds, not at the next period: the message never
/// reaches its visibility timeout while the job runs.
#[tokio::test]
async fn a_failed_visibility_renewal_is_retried_within_seconds() {
    let st = stack().await;
    mount_receives(&st.sqs, vec![message("m", &job_body("j", "b"))]).await;
    let t0 = std::time::Instant::now();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(Duration, bool)>>> = Default::default();
    let log = seen.clone();
    sqs_call("ChangeMessageVisibility")
        .respond_with(move |_: &wiremock::Request| {
            let mut l = log.lock().unwrap();
            // The first renewal fails on every SDK attempt (three).
            let ok = l.len() >= 3;
            l.push((t0.elapsed(), ok));
            if ok {
                sqs_json(json!({}))
            } else {
                sqs_error(500, "InternalError")
            }
        })
        .mount(&st.sqs)
        .await;
    sqs_call("DeleteMessage")
        .respond_with(sqs_json(json!({})))
        .mount(&st.sqs)
        .await;
    let runner = FakeRunner {
        delay: Duration::from_millis(4500),
        ..FakeRunner::default()
    };
    let w = worker(
        &st,
        runner.clone(),
        &[("VISIBILITY_TIMEOUT_SECONDS", "6")],
        None,
    );
    let (_t, stop) = shutdown::channel();
    w.run(stop).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let first_ok = seen.iter().find(|(_, ok)| *ok).map(|(t, _)| *t);
    // Received at ~0 s with 6 s visibility; renewal due at 2 s fails; the retry one second
    // later must land well before 6 s (waiting for the next period would land at 4 s, and
    // renewing at half the timeout, as before, at 6 s: too late).
    let first_ok = first_ok.unwrap_or_else(|| panic!("no renewal succeeded: {seen:?}"));
    assert!(first_ok < Duration::from_millis(3800), "{seen:?}");
    assert_eq!(requests_for(&st.sqs, "DeleteMessage").await.len(), 1);
}

/// The queue's short calls make three attempts, then give up (the worker retries where it
/// matters): a hung or failing call cannot hold a batch.
#[tokio::test]
async fn short_calls_make_three_attempts() {
    let sqs = MockServer::start().await;
    sqs_call("ChangeMessageVisibility")
        .respond_with(sqs_error(500, "InternalError"))
        .mount(&sqs)
        .await;
    let q = Queue::new(sqs_client(&sdk(&sqs)), QUEUE);
    assert!(q.change_visibility("rh", 30).await.is_err());
    assert_eq!(requests_for(&sqs, "ChangeMessageVisibility").await.len(), 3);
}
