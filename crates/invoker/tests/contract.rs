//! Contract tests: every request [`SdkAws`] makes, pinned by method, path, headers and body
//! against a wiremock server speaking each service's protocol (S3 REST-XML, SQS AWS JSON
//! 1.0, ECS AWS JSON 1.1), and how throttling, 5xx answers and partial batch failures
//! reach the handler's result.

// Test code: a panic is a failed test (helpers outside #[test] fns included).
#![allow(clippy::unwrap_used)]

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use czero_invoker::aws::{Attr, Aws, BatchFailure, BatchOutcome, Fetched, ObjectMeta, OutMessage};
use czero_invoker::config::{Config, Wake};
use czero_invoker::event::{self, Parsed};
use czero_invoker::handler::{InvokeError, Invoker, Outcome, job_id};
use czero_invoker::queue::QueueError;
use czero_invoker::wake::WakeOutcome;
use czero_invoker::{SdkAws, queue};
use czero_job::{Envelope, PolicyRef, attributes};
use lambda_runtime::{Context, LambdaEvent};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BUCKET: &str = "czero-policies";
const MAPPING_KEY: &str = "config/policy-mappings.json";
const MAPPING_PATH: &str = "/czero-policies/config/policy-mappings.json";
const POLICY_KEY: &str = "policies/s3-createbucket.yml";
const POLICY_PATH: &str = "/czero-policies/policies/s3-createbucket.yml";
const QUEUE: &str = "http://127.0.0.1/123456789012/czero-jobs";
const CREATE: &str = include_str!("../fixtures/cloudtrail-createbucket.json");
const POLICY: &str = include_str!("../../../policies/s3-createbucket.yml");
const MAPPING: &str = r#"{"version": 1, "rules": [{"name": "s3-bucket-created",
    "match": {"eventName": ["CreateBucket"]}, "policies": ["policies/s3-createbucket.yml"]}]}"#;
const SQS_TARGET: &str = "AmazonSQS";
const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";
/// The retry configuration below allows this many attempts per call.
const ATTEMPTS: usize = 3;

// ---------------------------------------------------------------- helpers

fn sdk(server: &MockServer) -> SdkConfig {
    czero_testkit::stub_config(&server.uri())
        .into_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(ATTEMPTS as u32)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build()
}

fn aws(server: &MockServer) -> SdkAws {
    SdkAws::new(&sdk(server))
}

fn config() -> Config {
    Config {
        queue_url: QUEUE.into(),
        policy_bucket: BUCKET.into(),
        mapping_key: MAPPING_KEY.into(),
        default_policy_key: "policies/s3-createbucket.yml".into(),
        claim_check_bucket: BUCKET.into(),
        wake: None,
        exclude_principals: vec![],
    }
}

fn s3_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>stub {code}</Message><RequestId>r1</RequestId></Error>"),
        "application/xml",
    )
}

fn sqs_json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_string(body.to_string())
}

fn sqs_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_string(
            json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": "stub"}).to_string(),
        )
}

fn ecs_json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(body.to_string())
}

fn ecs_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(json!({"__type": code, "message": "stub"}).to_string())
}

/// A JSON-protocol call: `POST /` with `X-Amz-Target: <service>.<op>`.
fn json_call(service: &str, op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-amz-target", format!("{service}.{op}").as_str()))
}

fn target(r: &Request) -> Option<String> {
    r.headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn hdr<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every request the server received, as `METHOD path [target]`, in order.
async fn calls(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| match target(r) {
            Some(t) => format!("{} {} {t}", r.method, r.url.path()),
            None => format!("{} {}", r.method, r.url.path()),
        })
        .collect()
}

/// JSON bodies of the requests for `service.op`.
async fn bodies(server: &MockServer, service: &str, op: &str) -> Vec<Value> {
    let want = format!("{service}.{op}");
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| target(r).as_deref() == Some(want.as_str()))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn message(id: &str, body: &str) -> OutMessage {
    OutMessage {
        id: id.into(),
        body: body.into(),
        attributes: vec![
            Attr {
                name: attributes::VERSION,
                data_type: "Number",
                value: "1".into(),
            },
            Attr {
                name: attributes::EVENT_SOURCE,
                data_type: "String",
                value: "aws.s3".into(),
            },
        ],
    }
}

fn wire_attributes() -> Value {
    json!({
        "czero-job-version": {"DataType": "Number", "StringValue": "1"},
        "czero-event-source": {"DataType": "String", "StringValue": "aws.s3"},
    })
}

/// The mapping, and the one policy it names in a versioned bucket (GetObject when the
/// mapping is loaded, HeadObject when a warm invocation pins it).
async fn mount_mapping(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(MAPPING_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"m1\"")
                .set_body_string(MAPPING),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(POLICY_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"p1\"")
                .insert_header("x-amz-version-id", "v-7")
                .set_body_string(POLICY),
        )
        .mount(server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(POLICY_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"p1\"")
                .insert_header("x-amz-version-id", "v-7")
                .insert_header("content-length", "120"),
        )
        .mount(server)
        .await;
}

fn head_policy() -> String {
    format!("HEAD {POLICY_PATH}")
}

fn get_policy() -> String {
    format!("GET {POLICY_PATH}")
}

fn pinned() -> PolicyRef {
    PolicyRef {
        key: POLICY_KEY.into(),
        etag: Some("\"p1\"".into()),
        version_id: Some("v-7".into()),
    }
}

fn lambda_event(json: &str) -> LambdaEvent<EventBridgeEvent<Value>> {
    LambdaEvent {
        payload: serde_json::from_str(json).unwrap(),
        context: Context::default(),
    }
}

/// `n` CreateBucket events with distinct ids, and their job ids.
fn create_events(n: usize) -> (Vec<Parsed>, Vec<String>) {
    let mut events = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let mut v: Value = serde_json::from_str(CREATE).unwrap();
        v["id"] = Value::String(format!("evt-{i}"));
        let p = event::parse_value(v).unwrap();
        match &p {
            Parsed::Event(e) => ids.push(job_id(e)),
            Parsed::Skip(s) => panic!("skipped: {s}"),
        }
        events.push(p);
    }
    (events, ids)
}

// ---------------------------------------------------------------- S3

#[tokio::test]
async fn get_object_with_a_matching_etag_is_not_modified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MAPPING_PATH))
        .and(header("if-none-match", "\"m1\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "\"m1\""))
        .expect(1)
        .mount(&server)
        .await;
    let got = aws(&server)
        .get_object(BUCKET, MAPPING_KEY, Some("\"m1\""))
        .await
        .unwrap();
    assert_eq!(got, Fetched::NotModified);
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1, "a 304 is an answer, not retried");
    assert_eq!(reqs[0].method.as_str(), "GET");
    assert_eq!(reqs[0].url.path(), MAPPING_PATH, "path-style address");
    assert_eq!(hdr(&reqs[0], "if-none-match"), Some("\"m1\""));
}

#[tokio::test]
async fn get_object_returns_the_body_and_etag() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MAPPING_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"m2\"")
                .set_body_string(MAPPING),
        )
        .expect(1)
        .mount(&server)
        .await;
    let got = aws(&server)
        .get_object(BUCKET, MAPPING_KEY, None)
        .await
        .unwrap();
    assert_eq!(
        got,
        Fetched::Object {
            body: MAPPING.as_bytes().to_vec(),
            etag: Some("\"m2\"".into()),
            version_id: None,
        }
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        hdr(&reqs[0], "if-none-match"),
        None,
        "no ETag, no condition"
    );
}

#[tokio::test]
async fn get_object_no_such_key_is_not_found_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MAPPING_PATH))
        .respond_with(s3_error(404, "NoSuchKey"))
        .mount(&server)
        .await;
    let err = aws(&server)
        .get_object(BUCKET, MAPPING_KEY, None)
        .await
        .unwrap_err();
    assert_eq!(err.op, "s3:GetObject");
    assert!(err.not_found, "{err:?}");
    assert!(!err.retryable, "{err:?}");
    assert!(
        err.message.contains("HTTP 404 NoSuchKey"),
        "{}",
        err.message
    );
    assert_eq!(calls(&server).await, [format!("GET {MAPPING_PATH}")]);
}

#[tokio::test]
async fn put_object_writes_the_claim_check_as_json() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/czero-claims/jobs/j1.json"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"p1\""))
        .expect(1)
        .mount(&server)
        .await;
    aws(&server)
        .put_object(
            "czero-claims",
            "jobs/j1.json",
            b"{\"jobId\":\"j1\"}".to_vec(),
        )
        .await
        .unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method.as_str(), "PUT");
    assert_eq!(hdr(&reqs[0], "content-type"), Some("application/json"));
    assert_eq!(reqs[0].body, b"{\"jobId\":\"j1\"}");
}

#[tokio::test]
async fn head_object_reads_etag_and_version_id() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(POLICY_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"p1\"")
                .insert_header("x-amz-version-id", "v-7")
                .insert_header("content-length", "1234"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/unversioned/policies/a.yml"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"a1\""))
        .expect(1)
        .mount(&server)
        .await;
    let a = aws(&server);
    assert_eq!(
        a.head_object(BUCKET, POLICY_KEY).await.unwrap(),
        ObjectMeta {
            etag: Some("\"p1\"".into()),
            version_id: Some("v-7".into()),
            size: Some(1234),
        }
    );
    assert_eq!(
        a.head_object("unversioned", "policies/a.yml")
            .await
            .unwrap(),
        ObjectMeta {
            etag: Some("\"a1\"".into()),
            version_id: None,
            size: None,
        },
        "no Content-Length, no size"
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        calls(&server).await,
        [head_policy(), "HEAD /unversioned/policies/a.yml".into()]
    );
    assert!(
        reqs.iter()
            .all(|r| r.url.query().is_none_or(|q| !q.contains("versionId"))
                && hdr(r, "if-none-match").is_none())
    );
}

#[tokio::test]
async fn head_object_404_is_not_found_and_403_is_permanent() {
    // HEAD answers have no body: S3 sends the bare status (404 when the role may list the
    // bucket, 403 when it may not).
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path("/czero-policies/policies/gone.yml"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/czero-policies/policies/hidden.yml"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let a = aws(&server);
    let gone = a
        .head_object(BUCKET, "policies/gone.yml")
        .await
        .unwrap_err();
    assert_eq!(gone.op, "s3:HeadObject");
    assert!(gone.not_found && !gone.retryable, "{gone:?}");
    assert!(gone.message.starts_with("HTTP 404"), "{}", gone.message);
    let hidden = a
        .head_object(BUCKET, "policies/hidden.yml")
        .await
        .unwrap_err();
    assert!(!hidden.not_found && !hidden.retryable, "{hidden:?}");
    assert!(hidden.message.starts_with("HTTP 403"), "{}", hidden.message);
    assert_eq!(calls(&server).await.len(), 2, "neither is retried");
}

#[tokio::test]
async fn s3_throttling_and_5xx_are_retried_then_retryable() {
    for (name, failure) in [
        ("SlowDown", s3_error(503, "SlowDown")),
        ("InternalError", s3_error(500, "InternalError")),
        ("bare 503", ResponseTemplate::new(503)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(MAPPING_PATH))
            .respond_with(failure.clone())
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .respond_with(failure.clone())
            .mount(&server)
            .await;
        Mock::given(method("HEAD"))
            .respond_with(failure)
            .mount(&server)
            .await;
        let a = aws(&server);
        let get = a.get_object(BUCKET, MAPPING_KEY, None).await.unwrap_err();
        let put = a
            .put_object(BUCKET, "jobs/j.json", b"{}".to_vec())
            .await
            .unwrap_err();
        let head = a.head_object(BUCKET, POLICY_KEY).await.unwrap_err();
        for err in [&get, &put, &head] {
            assert!(err.retryable, "{name}: {err:?}");
            assert!(!err.not_found, "{name}: {err:?}");
        }
        assert_eq!(
            (get.op, put.op, head.op),
            ("s3:GetObject", "s3:PutObject", "s3:HeadObject"),
            "{name}"
        );
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            3 * ATTEMPTS,
            "{name}: the SDK retried each call before giving up"
        );
    }
}

// ---------------------------------------------------------------- SQS

#[tokio::test]
async fn send_message_is_the_json_protocol_call_with_attributes() {
    let server = MockServer::start().await;
    json_call(SQS_TARGET, "SendMessage")
        .and(header("content-type", "application/x-amz-json-1.0"))
        .respond_with(sqs_json(
            json!({"MessageId": "m-1", "MD5OfMessageBody": "d41d8cd98f00b204e9800998ecf8427e"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let id = aws(&server)
        .send_message(QUEUE, &message("j1", "{\"kind\":\"inline\"}"))
        .await
        .unwrap();
    assert_eq!(id, "m-1");
    assert_eq!(
        bodies(&server, SQS_TARGET, "SendMessage").await,
        [json!({
            "QueueUrl": QUEUE,
            "MessageBody": "{\"kind\":\"inline\"}",
            "MessageAttributes": wire_attributes(),
        })]
    );
}

#[tokio::test]
async fn send_message_batch_sends_every_entry_and_reads_both_lists() {
    let server = MockServer::start().await;
    json_call(SQS_TARGET, "SendMessageBatch")
        .and(header("content-type", "application/x-amz-json-1.0"))
        .respond_with(sqs_json(json!({
            "Successful": [
                {"Id": "j1", "MessageId": "m-1", "MD5OfMessageBody": "x"},
                {"Id": "j3", "MessageId": "m-3", "MD5OfMessageBody": "x"}
            ],
            "Failed": [
                {"Id": "j2", "Code": "InternalError", "Message": "try again", "SenderFault": false},
                {"Id": "j4", "Code": "InvalidParameterValue", "SenderFault": true}
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let msgs: Vec<OutMessage> = ["j1", "j2", "j3", "j4"]
        .iter()
        .map(|id| message(id, &format!("body-{id}")))
        .collect();
    let out = aws(&server).send_message_batch(QUEUE, &msgs).await.unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            sent: vec![("j1".into(), "m-1".into()), ("j3".into(), "m-3".into())],
            failed: vec![
                BatchFailure {
                    id: "j2".into(),
                    code: "InternalError".into(),
                    message: "try again".into(),
                    sender_fault: false
                },
                BatchFailure {
                    id: "j4".into(),
                    code: "InvalidParameterValue".into(),
                    message: String::new(),
                    sender_fault: true
                },
            ],
        }
    );
    let entries: Vec<Value> = ["j1", "j2", "j3", "j4"]
        .iter()
        .map(|id| {
            json!({"Id": id, "MessageBody": format!("body-{id}"),
                   "MessageAttributes": wire_attributes()})
        })
        .collect();
    assert_eq!(
        bodies(&server, SQS_TARGET, "SendMessageBatch").await,
        [json!({"QueueUrl": QUEUE, "Entries": entries})]
    );
}

#[tokio::test]
async fn sqs_throttling_and_5xx_are_retried_then_retryable() {
    for (name, failure) in [
        ("ThrottlingException", sqs_error(400, "ThrottlingException")),
        (
            // SQS's model gives RequestThrottled no custom query code, so the
            // query-compatible header carries the shape name.
            "RequestThrottled (query-compatible header)",
            sqs_error(400, "RequestThrottled")
                .insert_header("x-amzn-query-error", "RequestThrottled;Sender"),
        ),
        ("InternalError", sqs_error(500, "InternalError")),
        ("bare 503", ResponseTemplate::new(503)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(failure)
            .mount(&server)
            .await;
        let a = aws(&server);
        let one = a
            .send_message(QUEUE, &message("j1", "b"))
            .await
            .unwrap_err();
        let batch = a
            .send_message_batch(QUEUE, &[message("j1", "b"), message("j2", "b")])
            .await
            .unwrap_err();
        assert_eq!(
            (one.op, batch.op),
            ("sqs:SendMessage", "sqs:SendMessageBatch"),
            "{name}"
        );
        for err in [&one, &batch] {
            assert!(err.retryable, "{name}: {err:?}");
        }
        assert_eq!(
            bodies(&server, SQS_TARGET, "SendMessage").await.len(),
            ATTEMPTS,
            "{name}"
        );
        assert_eq!(
            bodies(&server, SQS_TARGET, "SendMessageBatch").await.len(),
            ATTEMPTS,
            "{name}"
        );
    }
}

#[tokio::test]
async fn sqs_client_errors_are_permanent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(sqs_error(400, "InvalidParameterValue"))
        .mount(&server)
        .await;
    let err = aws(&server)
        .send_message(QUEUE, &message("j1", "b"))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(
        err.message.contains("HTTP 400 InvalidParameterValue"),
        "{}",
        err.message
    );
    assert_eq!(calls(&server).await.len(), 1, "not retried");
}

// ---------------------------------------------------------------- ECS

#[tokio::test]
async fn describe_services_reads_the_desired_count() {
    let server = MockServer::start().await;
    json_call(ECS_TARGET, "DescribeServices")
        .and(header("content-type", "application/x-amz-json-1.1"))
        .respond_with(ecs_json(json!({
            "services": [{"serviceName": "worker", "desiredCount": 3, "runningCount": 2,
                          "status": "ACTIVE"}],
            "failures": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        aws(&server).desired_count("czero", "worker").await.unwrap(),
        3
    );
    assert_eq!(
        bodies(&server, ECS_TARGET, "DescribeServices").await,
        [json!({"cluster": "czero", "services": ["worker"]})]
    );
}

#[tokio::test]
async fn describe_services_failure_entry_is_not_found() {
    let server = MockServer::start().await;
    json_call(ECS_TARGET, "DescribeServices")
        .respond_with(ecs_json(json!({
            "services": [],
            "failures": [{"arn": "arn:aws:ecs:us-east-1:123456789012:service/czero/worker",
                          "reason": "MISSING"}]
        })))
        .mount(&server)
        .await;
    let err = aws(&server)
        .desired_count("czero", "worker")
        .await
        .unwrap_err();
    assert!(err.not_found && !err.retryable, "{err:?}");
    assert_eq!(
        err.to_string(),
        "ecs:DescribeServices: service worker not found in cluster czero: MISSING"
    );
}

#[tokio::test]
async fn update_service_sets_the_desired_count() {
    let server = MockServer::start().await;
    json_call(ECS_TARGET, "UpdateService")
        .and(header("content-type", "application/x-amz-json-1.1"))
        .respond_with(ecs_json(
            json!({"service": {"serviceName": "worker", "desiredCount": 1}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    aws(&server)
        .set_desired_count("czero", "worker", 1)
        .await
        .unwrap();
    assert_eq!(
        bodies(&server, ECS_TARGET, "UpdateService").await,
        [json!({"cluster": "czero", "service": "worker", "desiredCount": 1})]
    );
}

#[tokio::test]
async fn ecs_throttling_and_5xx_are_retried_then_retryable() {
    for (name, failure) in [
        ("ThrottlingException", ecs_error(400, "ThrottlingException")),
        ("ServerException", ecs_error(500, "ServerException")),
        ("bare 503", ResponseTemplate::new(503)),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(failure)
            .mount(&server)
            .await;
        let a = aws(&server);
        let describe = a.desired_count("czero", "worker").await.unwrap_err();
        let update = a.set_desired_count("czero", "worker", 1).await.unwrap_err();
        assert_eq!(
            (describe.op, update.op),
            ("ecs:DescribeServices", "ecs:UpdateService"),
            "{name}"
        );
        for err in [&describe, &update] {
            assert!(err.retryable && !err.not_found, "{name}: {err:?}");
        }
        assert_eq!(
            bodies(&server, ECS_TARGET, "DescribeServices").await.len(),
            ATTEMPTS,
            "{name}"
        );
        assert_eq!(
            bodies(&server, ECS_TARGET, "UpdateService").await.len(),
            ATTEMPTS,
            "{name}"
        );
    }
}

// ---------------------------------------------------------------- the handler over SdkAws

#[tokio::test]
async fn an_invocation_reads_the_mapping_then_sends_one_message() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MAPPING_PATH))
        .and(header("if-none-match", "\"m1\""))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "m-1", "MD5OfMessageBody": "x"}),
        ))
        .mount(&server)
        .await;
    let inv = Invoker::new(aws(&server), config());
    for _ in 0..2 {
        let out = inv.handle(lambda_event(CREATE)).await.unwrap();
        let Outcome::Queued { job, queued, .. } = out else {
            panic!("skipped")
        };
        assert_eq!(queued.message_id, "m-1");
        assert_eq!(queued.job_id, job.job_id);
    }
    assert_eq!(
        calls(&server).await,
        [
            format!("GET {MAPPING_PATH}"),
            get_policy(),
            "POST / AmazonSQS.SendMessage".into(),
            format!("GET {MAPPING_PATH}"),
            head_policy(),
            "POST / AmazonSQS.SendMessage".into(),
        ],
        "loading the mapping reads its policy; a warm invocation pins it afresh with HEAD"
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(hdr(&reqs[0], "if-none-match"), None);
    assert_eq!(hdr(&reqs[1], "if-none-match"), None);
    assert_eq!(hdr(&reqs[4], "if-none-match"), None);
    assert_eq!(
        hdr(&reqs[3], "if-none-match"),
        Some("\"m1\""),
        "the warm invocation revalidates the cached mapping"
    );
    let sent = bodies(&server, SQS_TARGET, "SendMessage").await;
    let body = &sent[0];
    assert_eq!(body["QueueUrl"], QUEUE);
    assert_eq!(
        body["MessageAttributes"],
        json!({
            "czero-job-version": {"DataType": "Number", "StringValue": "1"},
            "czero-event-source": {"DataType": "String", "StringValue": "aws.s3"},
            "czero-policy-count": {"DataType": "Number", "StringValue": "1"},
        })
    );
    let Envelope::Inline { job } = Envelope::decode(body["MessageBody"].as_str().unwrap()).unwrap()
    else {
        panic!("claim check for a small job")
    };
    assert_eq!(job.event_id, "6f87d04b-9f74-4f04-a780-7acf4b0a9b38");
    assert_eq!(job.resource_ids, ["team-analytics-raw-2026"]);
    assert_eq!(
        job.policies,
        [pinned()],
        "the job names the version it selected"
    );
    assert!(
        body["MessageBody"].as_str().unwrap().contains(
            r#"{"key":"policies/s3-createbucket.yml","etag":"\"p1\"","versionId":"v-7"}"#
        ),
        "wire format of the pin"
    );
}

#[tokio::test]
async fn throttled_or_failing_s3_and_sqs_fail_the_invocation_as_retryable() {
    for (case, s3_fails, failure, kind) in [
        (
            "S3 SlowDown",
            true,
            s3_error(503, "SlowDown"),
            "czero.Retryable.MappingFetch",
        ),
        (
            "S3 500",
            true,
            s3_error(500, "InternalError"),
            "czero.Retryable.MappingFetch",
        ),
        (
            "SQS throttling",
            false,
            sqs_error(400, "ThrottlingException"),
            "czero.Retryable.Queue",
        ),
        (
            "SQS 500",
            false,
            sqs_error(500, "InternalError"),
            "czero.Retryable.Queue",
        ),
    ] {
        let server = MockServer::start().await;
        if s3_fails {
            Mock::given(method("GET"))
                .respond_with(failure)
                .mount(&server)
                .await;
        } else {
            mount_mapping(&server).await;
            json_call(SQS_TARGET, "SendMessage")
                .respond_with(failure)
                .mount(&server)
                .await;
        }
        let inv = Invoker::new(aws(&server), config());
        let err = inv.handle(lambda_event(CREATE)).await.unwrap_err();
        assert_eq!(err.error_type, kind, "{case}: {}", err.error_message);
        let expected_attempts = if s3_fails {
            vec![format!("GET {MAPPING_PATH}"); ATTEMPTS]
        } else {
            let mut v = vec![format!("GET {MAPPING_PATH}"), get_policy()];
            v.extend(vec!["POST / AmazonSQS.SendMessage".to_string(); ATTEMPTS]);
            v
        };
        assert_eq!(calls(&server).await, expected_attempts, "{case}");
        let job = job_id(&match event::parse_bytes(CREATE.as_bytes()).unwrap() {
            Parsed::Event(e) => *e,
            Parsed::Skip(s) => panic!("{s}"),
        });
        if !s3_fails {
            assert!(
                err.error_message.contains(&job),
                "{case}: the error names the job it did not send: {}",
                err.error_message
            );
        }
    }
}

#[tokio::test]
async fn a_policy_that_is_missing_or_unreadable_fails_before_anything_is_queued() {
    // GET: the mapping is being loaded (cold), every file it names is read. HEAD: a warm
    // invocation pins the selected file.
    for (case, op, answer, kind, text) in [
        (
            "404",
            "GET",
            ResponseTemplate::new(404),
            "czero.Retryable.PolicyMissing",
            "policy s3://czero-policies/policies/s3-createbucket.yml, named by mapping rule \
             `s3-bucket-created` in s3://czero-policies/config/policy-mappings.json and by the \
             default policy (DEFAULT_POLICY_KEY), does not exist (s3:GetObject: HTTP 404",
        ),
        (
            "SlowDown",
            "GET",
            s3_error(503, "SlowDown"),
            "czero.Retryable.PolicyFetch",
            "checking policy s3://czero-policies/policies/s3-createbucket.yml, named by \
             mapping rule `s3-bucket-created` in s3://czero-policies/config/policy-mappings.json \
             and by the default policy (DEFAULT_POLICY_KEY): s3:GetObject: HTTP 503",
        ),
        (
            "403",
            "GET",
            s3_error(403, "AccessDenied"),
            "czero.Permanent.PolicyFetch",
            "checking policy s3://czero-policies/policies/s3-createbucket.yml, named by \
             mapping rule `s3-bucket-created`",
        ),
        (
            "404",
            "HEAD",
            ResponseTemplate::new(404),
            "czero.Retryable.PolicyMissing",
            "policy s3://czero-policies/policies/s3-createbucket.yml, selected by mapping rule \
             `s3-bucket-created` in s3://czero-policies/config/policy-mappings.json, does not \
             exist (s3:HeadObject: HTTP 404",
        ),
        (
            "SlowDown",
            "HEAD",
            s3_error(503, "SlowDown"),
            "czero.Retryable.PolicyFetch",
            "checking policy s3://czero-policies/policies/s3-createbucket.yml, selected by \
             mapping rule `s3-bucket-created` in s3://czero-policies/config/policy-mappings.json: \
             s3:HeadObject: HTTP 503",
        ),
        (
            "403",
            "HEAD",
            ResponseTemplate::new(403),
            "czero.Permanent.PolicyFetch",
            "checking policy s3://czero-policies/policies/s3-createbucket.yml, selected by \
             mapping rule `s3-bucket-created`",
        ),
    ] {
        let case = format!("{op} {case}");
        let server = MockServer::start().await;
        mount_mapping(&server).await;
        let warm = op == "HEAD";
        json_call(SQS_TARGET, "SendMessage")
            .respond_with(sqs_json(
                json!({"MessageId": "m-1", "MD5OfMessageBody": "x"}),
            ))
            .expect(u64::from(warm))
            .mount(&server)
            .await;
        let inv = Invoker::new(aws(&server), config());
        if warm {
            Mock::given(method("GET"))
                .and(path(MAPPING_PATH))
                .and(header("if-none-match", "\"m1\""))
                .respond_with(ResponseTemplate::new(304))
                .with_priority(1)
                .mount(&server)
                .await;
            inv.handle(lambda_event(CREATE)).await.unwrap();
        }
        let failing = Mock::given(method(op))
            .and(path(POLICY_PATH))
            .respond_with(answer)
            .with_priority(1)
            .mount_as_scoped(&server)
            .await;
        let Err(err) = inv.handle(lambda_event(CREATE)).await else {
            panic!("{case}: queued")
        };
        assert_eq!(err.error_type, kind, "{case}: {}", err.error_message);
        assert!(
            err.error_message.starts_with(text),
            "{case}: {}",
            err.error_message
        );
        drop(failing);
        // Cold, the GET is the first read of the policy; warm, the HEAD is the first HEAD.
        let attempts = calls(&server)
            .await
            .iter()
            .filter(|c| **c == format!("{op} {POLICY_PATH}"))
            .count();
        assert_eq!(
            attempts,
            if case.ends_with("SlowDown") {
                ATTEMPTS
            } else {
                1
            },
            "{case}"
        );
    }
}

#[tokio::test]
async fn a_missing_default_policy_names_the_default() {
    let server = MockServer::start().await;
    mount_mapping(&server).await;
    let mut cfg = config();
    cfg.default_policy_key = "policies/fallback.yml".into();
    // The default is read with the mapping, whether or not an event selects it.
    let gd = include_str!("../fixtures/guardduty-s3-public.json");
    let err = Invoker::new(aws(&server), cfg)
        .handle(lambda_event(gd))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "czero.Retryable.PolicyMissing");
    assert!(
        err.error_message.starts_with(
            "policy s3://czero-policies/policies/fallback.yml, named by the default policy \
             (DEFAULT_POLICY_KEY), does not exist"
        ),
        "{}",
        err.error_message
    );
}

#[tokio::test]
async fn a_new_mapping_revalidates_each_policy_by_its_cached_etag() {
    let server = MockServer::start().await;
    // The mapping changes between the two invocations (m1, then m2).
    Mock::given(method("GET"))
        .and(path(MAPPING_PATH))
        .and(header("if-none-match", "\"m1\""))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"m2\"")
                .set_body_string(MAPPING),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(POLICY_PATH))
        .and(header("if-none-match", "\"p1\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "\"p1\""))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "m-1", "MD5OfMessageBody": "x"}),
        ))
        .mount(&server)
        .await;
    let inv = Invoker::new(aws(&server), config());
    for _ in 0..2 {
        let out = inv.handle(lambda_event(CREATE)).await.unwrap();
        let Outcome::Queued { job, .. } = out else {
            panic!("skipped")
        };
        assert_eq!(job.policies, [pinned()], "the version read and parsed");
    }
    let reqs: Vec<Request> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == POLICY_PATH)
        .collect();
    assert_eq!(reqs.len(), 2, "{:?}", calls(&server).await);
    assert_eq!(reqs[0].method.as_str(), "GET");
    assert_eq!(hdr(&reqs[0], "if-none-match"), None);
    assert_eq!(
        hdr(&reqs[1], "if-none-match"),
        Some("\"p1\""),
        "a new mapping revalidates the cached file: 304, not its body again"
    );
    assert!(
        reqs.iter()
            .all(|r| r.url.query().is_none_or(|q| !q.contains("versionId"))),
        "the current object: the invoker's role has s3:GetObject, not s3:GetObjectVersion"
    );
}

#[tokio::test]
async fn a_policy_whose_etag_changed_is_read_again_and_pinned_as_read() {
    let server = MockServer::start().await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "m-1", "MD5OfMessageBody": "x"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MAPPING_PATH))
        .and(header("if-none-match", "\"m1\""))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .mount(&server)
        .await;
    let inv = Invoker::new(aws(&server), config());
    inv.handle(lambda_event(CREATE)).await.unwrap();
    // Edited: HEAD sees p2; the GET that follows returns p3 (edited again in between). The
    // job names what was parsed.
    let edited = format!("{POLICY}# edited\n");
    let _head = Mock::given(method("HEAD"))
        .and(path(POLICY_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"p2\"")
                .insert_header("x-amz-version-id", "v-8")
                .insert_header("content-length", edited.len().to_string().as_str()),
        )
        .with_priority(1)
        .mount_as_scoped(&server)
        .await;
    let _get = Mock::given(method("GET"))
        .and(path(POLICY_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"p3\"")
                .insert_header("x-amz-version-id", "v-9")
                .set_body_string(&edited),
        )
        .with_priority(1)
        .mount_as_scoped(&server)
        .await;
    let out = inv.handle(lambda_event(CREATE)).await.unwrap();
    let Outcome::Queued { job, .. } = out else {
        panic!("skipped")
    };
    assert_eq!(
        job.policies,
        [PolicyRef {
            key: POLICY_KEY.into(),
            etag: Some("\"p3\"".into()),
            version_id: Some("v-9".into()),
        }]
    );
    let all = calls(&server).await;
    assert_eq!(
        all[3..],
        [
            format!("GET {MAPPING_PATH}"),
            head_policy(),
            get_policy(),
            "POST / AmazonSQS.SendMessage".into(),
        ]
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        hdr(&reqs[5], "if-none-match"),
        Some("\"p1\""),
        "conditional on the cached ETag"
    );
}

#[tokio::test]
async fn ecs_throttling_leaves_the_job_queued_and_reports_the_wake_failure() {
    // The job is on the queue before the wake: failing the invocation would make Lambda
    // queue it a second time, so a failed wake is reported, and the backlog alarm scales.
    let server = MockServer::start().await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "m-1", "MD5OfMessageBody": "x"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    json_call(ECS_TARGET, "DescribeServices")
        .respond_with(ecs_error(400, "ThrottlingException"))
        .expect(ATTEMPTS as u64)
        .mount(&server)
        .await;
    let mut cfg = config();
    cfg.wake = Some(Wake {
        cluster: "czero".into(),
        service: "worker".into(),
    });
    let inv = Invoker::new(aws(&server), cfg);
    let out = inv.handle(lambda_event(CREATE)).await.unwrap();
    let Outcome::Queued { wake, queued, .. } = out else {
        panic!("skipped")
    };
    assert_eq!(queued.message_id, "m-1");
    match wake {
        WakeOutcome::Failed { error } => assert!(
            error.starts_with("ecs:DescribeServices: HTTP 400 ThrottlingException"),
            "{error}"
        ),
        other => panic!("expected a failed wake, got {other:?}"),
    }
    assert!(
        bodies(&server, ECS_TARGET, "UpdateService")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn fast_wake_describes_then_updates_a_service_at_zero() {
    let server = MockServer::start().await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "m-1", "MD5OfMessageBody": "x"}),
        ))
        .mount(&server)
        .await;
    json_call(ECS_TARGET, "DescribeServices")
        .respond_with(ecs_json(json!({"services": [{"desiredCount": 0}]})))
        .mount(&server)
        .await;
    json_call(ECS_TARGET, "UpdateService")
        .respond_with(ecs_json(json!({"service": {"desiredCount": 1}})))
        .mount(&server)
        .await;
    let mut cfg = config();
    cfg.wake = Some(Wake {
        cluster: "czero".into(),
        service: "worker".into(),
    });
    let out = Invoker::new(aws(&server), cfg)
        .handle(lambda_event(CREATE))
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            Outcome::Queued {
                wake: WakeOutcome::Woken,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(
        calls(&server).await,
        [
            format!("GET {MAPPING_PATH}"),
            get_policy(),
            "POST / AmazonSQS.SendMessage".into(),
            format!("POST / {ECS_TARGET}.DescribeServices"),
            format!("POST / {ECS_TARGET}.UpdateService"),
        ],
        "the wake comes after the job is queued"
    );
    assert_eq!(
        bodies(&server, ECS_TARGET, "UpdateService").await,
        [json!({"cluster": "czero", "service": "worker", "desiredCount": 1})]
    );
}

/// Fails the batch entries at the given positions, accepts the others.
struct PartlyFailing {
    fail: Vec<(usize, &'static str, bool)>,
}

impl Respond for PartlyFailing {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for (i, e) in body["Entries"].as_array().unwrap().iter().enumerate() {
            let id = e["Id"].as_str().unwrap();
            match self.fail.iter().find(|(at, _, _)| *at == i) {
                Some((_, code, sender)) => failed.push(
                    json!({"Id": id, "Code": code, "Message": format!("{code} stub"), "SenderFault": sender}),
                ),
                None => ok.push(
                    json!({"Id": id, "MessageId": format!("m-{i}"), "MD5OfMessageBody": "x"}),
                ),
            }
        }
        sqs_json(json!({"Successful": ok, "Failed": failed}))
    }
}

#[tokio::test]
async fn a_partly_failed_batch_is_an_error_naming_sent_failed_and_unsent_jobs() {
    let server = MockServer::start().await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessageBatch")
        .respond_with(PartlyFailing {
            fail: vec![
                (3, "InternalError", false),
                (7, "InvalidParameterValue", true),
            ],
        })
        .mount(&server)
        .await;
    let (events, ids) = create_events(12);
    let inv = Invoker::new(aws(&server), config());
    let err = inv.process_many(events).await.unwrap_err();
    assert!(
        err.retryable(),
        "one failure is not the sender's: retrying can help"
    );
    let InvokeError::Queue(QueueError::Partial {
        sent,
        failed,
        unsent,
    }) = &err
    else {
        panic!("expected a partial send, got {err:?}")
    };
    let sent_ids: Vec<&str> = sent.iter().map(|q| q.job_id.as_str()).collect();
    let expected_sent: Vec<&str> = (0..10)
        .filter(|i| *i != 3 && *i != 7)
        .map(|i| ids[i].as_str())
        .collect();
    assert_eq!(sent_ids, expected_sent);
    assert_eq!(sent[0].message_id, "m-0");
    let failed_ids: Vec<(&str, &str, bool)> = failed
        .iter()
        .map(|f| (f.id.as_str(), f.code.as_str(), f.sender_fault))
        .collect();
    assert_eq!(
        failed_ids,
        [
            (ids[3].as_str(), "InternalError", false),
            (ids[7].as_str(), "InvalidParameterValue", true)
        ]
    );
    assert_eq!(unsent, &ids[10..], "the second batch was never attempted");
    let text = err.to_string();
    for id in &ids {
        assert!(text.contains(id.as_str()), "{id} not named in: {text}");
    }
    assert!(
        text.contains("8 of 12 sent")
            && text.contains("2 failed")
            && text.contains("2 not attempted"),
        "{text}"
    );
    assert_eq!(
        inv.counters
            .queued
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing is reported as queued by a failed call"
    );

    // Exactly one batch request went out, with the first ten jobs in order.
    let batches = bodies(&server, SQS_TARGET, "SendMessageBatch").await;
    assert_eq!(batches.len(), 1);
    let entries = batches[0]["Entries"].as_array().unwrap();
    let entry_ids: Vec<&str> = entries.iter().map(|e| e["Id"].as_str().unwrap()).collect();
    assert_eq!(
        entry_ids,
        ids[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    for (e, id) in entries.iter().zip(&ids) {
        let Envelope::Inline { job } =
            Envelope::decode(e["MessageBody"].as_str().unwrap()).unwrap()
        else {
            panic!("inline expected")
        };
        assert_eq!(&job.job_id, id);
        assert_eq!(
            e["MessageAttributes"]["czero-policy-count"],
            json!({"DataType": "Number", "StringValue": "1"})
        );
    }
    assert!(bodies(&server, SQS_TARGET, "SendMessage").await.is_empty());
    assert_eq!(
        calls(&server).await[..2],
        [format!("GET {MAPPING_PATH}"), get_policy()],
        "twelve jobs naming one policy cost one read"
    );
    for e in entries {
        let Envelope::Inline { job } =
            Envelope::decode(e["MessageBody"].as_str().unwrap()).unwrap()
        else {
            panic!("inline expected")
        };
        assert_eq!(job.policies, [pinned()]);
    }
}

#[tokio::test]
async fn a_batch_whose_request_fails_names_every_job_as_not_queued() {
    let server = MockServer::start().await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessageBatch")
        .respond_with(sqs_error(400, "ThrottlingException"))
        .mount(&server)
        .await;
    let (events, ids) = create_events(13);
    let err = Invoker::new(aws(&server), config())
        .process_many(events)
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    let InvokeError::Queue(QueueError::Partial {
        sent,
        failed,
        unsent,
    }) = &err
    else {
        panic!("expected a partial send, got {err:?}")
    };
    assert!(sent.is_empty());
    assert_eq!(
        failed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ids[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(failed.iter().all(|f| f.code == "sqs:SendMessageBatch"
        && f.message.contains("ThrottlingException")
        && !f.sender_fault));
    assert_eq!(unsent, &ids[10..]);
    assert!(
        err.to_string()
            .starts_with("jobs partly queued: 0 of 13 sent []")
    );
    assert_eq!(
        bodies(&server, SQS_TARGET, "SendMessageBatch").await.len(),
        ATTEMPTS
    );
}

#[tokio::test]
async fn send_jobs_with_one_job_uses_send_message() {
    // The Lambda path: one event, one SendMessage (no batch entry ids involved).
    let server = MockServer::start().await;
    mount_mapping(&server).await;
    json_call(SQS_TARGET, "SendMessage")
        .respond_with(sqs_json(
            json!({"MessageId": "m-9", "MD5OfMessageBody": "x"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let inv = Invoker::new(aws(&server), config());
    let (events, ids) = create_events(1);
    let Parsed::Event(e) = &events[0] else {
        panic!()
    };
    let mut seen = Default::default();
    let mapping = inv.mapping(&mut seen).await.unwrap();
    let sel = mapping.select(e, POLICY_KEY);
    let pins = inv.pin(&mapping, &sel, &mut seen).await.unwrap();
    let job = inv.job(
        e,
        pins.into_iter().map(|s| s.pin).collect(),
        None,
        sel.update_finding,
    );
    let q = queue::send_jobs(&inv.aws, &inv.config, &[job])
        .await
        .unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].job_id.as_str(), q[0].message_id.as_str()),
        (ids[0].as_str(), "m-9")
    );
}
