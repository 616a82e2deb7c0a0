//! `czero replay --function-name` against a wiremock server speaking SQS (AWS JSON 1.0) and
//! Lambda (REST-JSON): the exact Invoke request (path, invocation type, the original event
//! as the body), which records are deleted (only those replayed), which are released
//! (failed, skipped, or listed by a dry run), the summary and the exit code.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const QUEUE: &str = "http://127.0.0.1/123456789012/czero-invoker-failures";
const INVOKE_PATH: &str = "/2015-03-31/functions/czero-invoker/invocations";
const CREATE: &str = include_str!("../../invoker/fixtures/cloudtrail-createbucket.json");

fn record(request_id: &str, payload: &Value) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-28T05:13:01.121Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:czero-invoker:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "czero.Retryable.PolicyMissing", "errorMessage": "policy missing"}
    })
    .to_string()
}

fn good_event() -> Value {
    serde_json::from_str(CREATE).unwrap()
}

fn failing_event() -> Value {
    let mut v = good_event();
    v["id"] = "evt-fail".into();
    v
}

/// Three messages on the first ReceiveMessage, none after.
struct Queue {
    calls: AtomicUsize,
}

impl Respond for Queue {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let messages = if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            json!([
                {"MessageId": "m-ok", "ReceiptHandle": "rh-ok", "MD5OfBody": "x",
                 "Body": record("req-ok", &good_event())},
                {"MessageId": "m-fail", "ReceiptHandle": "rh-fail", "MD5OfBody": "x",
                 "Body": record("req-fail", &failing_event())},
                {"MessageId": "m-job", "ReceiptHandle": "rh-job", "MD5OfBody": "x",
                 "Body": "{\"version\":1,\"jobId\":\"not a record\"}"},
            ])
        } else {
            json!([])
        };
        sqs(json!({ "Messages": messages }))
    }
}

fn sqs(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_string(body.to_string())
}

fn sqs_call(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-amz-target", format!("AmazonSQS.{op}").as_str()))
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    sqs_call("ReceiveMessage")
        .respond_with(Queue {
            calls: AtomicUsize::new(0),
        })
        .mount(&server)
        .await;
    sqs_call("DeleteMessage")
        .respond_with(sqs(json!({})))
        .mount(&server)
        .await;
    sqs_call("ChangeMessageVisibility")
        .respond_with(sqs(json!({})))
        .mount(&server)
        .await;
    // The failing event: Lambda answers 200 with X-Amz-Function-Error, as it does when the
    // handler returns an error.
    Mock::given(method("POST"))
        .and(path(INVOKE_PATH))
        .and(body_partial_json(json!({"id": "evt-fail"})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-amz-function-error", "Unhandled")
                .insert_header("x-amz-executed-version", "$LATEST")
                .set_body_string(
                    json!({"errorType": "czero.Retryable.PolicyMissing",
                           "errorMessage": "policy s3://p/policies/x.yml does not exist"})
                    .to_string(),
                ),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVOKE_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-amz-executed-version", "$LATEST")
                .set_body_string(
                    json!({"status": "queued", "job": {"jobId": "84ed27b3"},
                           "queued": {"jobId": "84ed27b3", "messageId": "m-1"}})
                    .to_string(),
                ),
        )
        .mount(&server)
        .await;
    server
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn replay(server: &MockServer, extra: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_czero"))
        .args([
            "replay",
            "--queue-url",
            QUEUE,
            "--function-name",
            "czero-invoker",
        ])
        .args(extra)
        .env_clear()
        .env("AWS_ENDPOINT_URL", server.uri())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

fn target(r: &Request) -> String {
    r.headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn sqs_bodies(reqs: &[Request], op: &str) -> Vec<Value> {
    reqs.iter()
        .filter(|r| target(r) == format!("AmazonSQS.{op}"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn each_record_is_invoked_with_its_original_event_and_deleted_only_when_it_succeeded() {
    let server = server().await;
    let run = replay(&server, &[]).await;
    assert_eq!(
        run.code,
        Some(1),
        "a failed replay fails the run: {}",
        run.stderr
    );
    assert!(
        run.stdout.ends_with("replayed 1, failed 1, skipped 1\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "replayed request req-ok to arn:aws:lambda:us-east-1:123456789012:function:\
             czero-invoker:$LATEST: event 6f87d04b-9f74-4f04-a780-7acf4b0a9b38 (aws.s3, AWS API \
             Call via CloudTrail), RetriesExhausted after 3 attempts at 2026-11-28T05:13:01.121Z: \
             queued job 84ed27b3"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "failed request req-fail to arn:aws:lambda:us-east-1:123456789012:function:\
             czero-invoker:$LATEST: event evt-fail"
        ) && run.stdout.contains(
            "czero-invoker failed (Unhandled): {\"errorType\":\"czero.Retryable.PolicyMissing\""
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("skipped message m-job: not a Lambda destination record"),
        "{}",
        run.stdout
    );

    let reqs = requests(&server).await;
    // The Invoke requests: synchronous, to the function, with the original event as the body.
    let invokes: Vec<&Request> = reqs
        .iter()
        .filter(|r| r.url.path() == INVOKE_PATH)
        .collect();
    assert_eq!(invokes.len(), 2);
    for (r, want) in invokes.iter().zip([good_event(), failing_event()]) {
        assert_eq!(r.method.as_str(), "POST");
        let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok());
        assert_eq!(h("x-amz-invocation-type"), Some("RequestResponse"));
        assert_eq!(h("x-amz-log-type"), None);
        assert!(
            h("authorization").is_some_and(|a| a.contains("/us-east-1/lambda/aws4_request")),
            "signed for Lambda: {:?}",
            h("authorization")
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, want, "the requestPayload, untouched");
    }
    // Receive: the queue, ten at a time, held while the run works on them.
    let receives = sqs_bodies(&reqs, "ReceiveMessage");
    assert_eq!(receives.len(), 2, "until a receive comes back empty");
    assert_eq!(
        receives[0],
        json!({"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1,
               "VisibilityTimeout": 300})
    );
    // Only the replayed record is deleted; the others are released for another try.
    assert_eq!(
        sqs_bodies(&reqs, "DeleteMessage"),
        [json!({"QueueUrl": QUEUE, "ReceiptHandle": "rh-ok"})]
    );
    assert_eq!(
        sqs_bodies(&reqs, "ChangeMessageVisibility"),
        [
            json!({"QueueUrl": QUEUE, "ReceiptHandle": "rh-fail", "VisibilityTimeout": 0}),
            json!({"QueueUrl": QUEUE, "ReceiptHandle": "rh-job", "VisibilityTimeout": 0}),
        ]
    );
}

#[tokio::test]
async fn a_dry_run_lists_and_changes_nothing() {
    let server = server().await;
    let run = replay(&server, &["--dry-run"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("would replay request req-ok")
            && run.stdout.contains("would replay request req-fail")
            && run
                .stdout
                .ends_with("would replay 2, skipped 1 (dry run: nothing invoked or deleted)\n"),
        "{}",
        run.stdout
    );
    let reqs = requests(&server).await;
    assert!(reqs.iter().all(|r| r.url.path() != INVOKE_PATH));
    assert!(sqs_bodies(&reqs, "DeleteMessage").is_empty());
    assert_eq!(sqs_bodies(&reqs, "ChangeMessageVisibility").len(), 3);
}

#[tokio::test]
async fn max_stops_after_that_many_records() {
    let server = server().await;
    let run = replay(&server, &["--max", "1"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.ends_with("replayed 1, failed 0, skipped 0\n"),
        "{}",
        run.stdout
    );
    let reqs = requests(&server).await;
    assert_eq!(
        reqs.iter().filter(|r| r.url.path() == INVOKE_PATH).count(),
        1
    );
    assert_eq!(
        sqs_bodies(&reqs, "ChangeMessageVisibility"),
        [
            json!({"QueueUrl": QUEUE, "ReceiptHandle": "rh-fail", "VisibilityTimeout": 0}),
            json!({"QueueUrl": QUEUE, "ReceiptHandle": "rh-job", "VisibilityTimeout": 0}),
        ],
        "the records not replayed are released"
    );
}

#[tokio::test]
async fn function_name_or_local_is_required() {
    let server = server().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_czero"))
        .args(["replay", "--queue-url", QUEUE])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--function-name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(requests(&server).await.is_empty());
}
