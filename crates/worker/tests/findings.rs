//! Contract tests for the Security Hub finding update after a job: the exact
//! `BatchUpdateFindings` requests (`PATCH /findings/batchupdate`, JSON body, the finding's
//! region in the SigV4 scope), chunks of 100, `UnprocessedFindings`, service errors that
//! never fail the job; and the poll loop ending jobs with `update_finding` set.

// Test code: a panic is a failed test (helpers outside #[test] fns included).
#![allow(clippy::unwrap_used)]

mod common;

use aws_config::SdkConfig;
use common::{FakeRunner, config};
use czero_job::{Envelope, FindingUpdate, Job};
use czero_worker::findings::{
    AfterFailure, FindingId, Findings, JobOutcome, PolicyOutcome, Update,
};
use czero_worker::ledger::Ledger;
use czero_worker::metrics::Metrics;
use czero_worker::queue::Queue;
use czero_worker::shutdown;
use czero_worker::store::Store;
use czero_worker::{Exit, Worker, s3_client, sqs_client};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const QUEUE: &str = "http://127.0.0.1/123456789012/jobs";
const DLQ: &str = "http://127.0.0.1/123456789012/jobs-dlq";
const POLICY: &str = "policies:\n  - name: s3-test\n    resource: aws.s3\n";
const PRODUCT: &str = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";

fn sdk(server: &MockServer) -> SdkConfig {
    czero_testkit::stub_config(&server.uri())
}

fn ids(n: usize) -> Vec<FindingId> {
    (0..n)
        .map(|i| FindingId {
            id: format!("arn:aws:securityhub:eu-west-1:444455556666:finding/f-{i}"),
            product_arn: PRODUCT.into(),
        })
        .collect()
}

fn hub_json(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json")
        .set_body_string(body.to_string())
}

/// Security Hub's answer: every identifier of the request processed.
struct AllProcessed;

impl wiremock::Respond for AllProcessed {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        hub_json(
            200,
            json!({"ProcessedFindings": body["FindingIdentifiers"], "UnprocessedFindings": []}),
        )
    }
}

fn batch_update() -> wiremock::MockBuilder {
    Mock::given(method("PATCH")).and(path("/findings/batchupdate"))
}

async fn hub() -> MockServer {
    let server = MockServer::start().await;
    batch_update()
        .respond_with(AllProcessed)
        .mount(&server)
        .await;
    server
}

/// Every request the stub received (Security Hub's only, on its own server).
async fn calls(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn signed_region(r: &Request) -> String {
    let auth = r
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Credential=AKID/20260101/<region>/securityhub/aws4_request
    let scope = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .unwrap_or_default();
    let parts: Vec<&str> = scope.split('/').collect();
    assert_eq!(parts.get(3), Some(&"securityhub"), "{auth}");
    assert_eq!(parts.get(4), Some(&"aws4_request"), "{auth}");
    parts.get(2).copied().unwrap_or_default().to_owned()
}

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
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let l = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || l.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn lines(&self, containing: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(containing))
            .map(str::to_owned)
            .collect()
    }
}

// ---------------------------------------------------------------- the request

#[tokio::test]
async fn batch_update_findings_sends_the_identifiers_workflow_and_note_in_the_region() {
    let server = hub().await;
    let f = Findings::new(&sdk(&server));
    let summary = f
        .update(
            "j1",
            "eu-west-1",
            &ids(2),
            Update::Resolved,
            "custodian-zero job j1: done",
        )
        .await;
    assert_eq!(summary.processed, 2);
    assert!(summary.unprocessed.is_empty() && summary.errors.is_empty());
    let got = calls(&server).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method.as_str(), "PATCH");
    assert_eq!(r.url.path(), "/findings/batchupdate");
    assert_eq!(
        r.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    assert_eq!(
        body(r),
        json!({
            "FindingIdentifiers": [
                {"Id": "arn:aws:securityhub:eu-west-1:444455556666:finding/f-0", "ProductArn": PRODUCT},
                {"Id": "arn:aws:securityhub:eu-west-1:444455556666:finding/f-1", "ProductArn": PRODUCT},
            ],
            "Note": {"Text": "custodian-zero job j1: done", "UpdatedBy": "custodian-zero"},
            "Workflow": {"Status": "RESOLVED"},
        })
    );
    assert_eq!(signed_region(r), "eu-west-1");

    // Another region gets its own client, signed for that region; NOTIFIED is spelled so.
    f.update("j1", "ap-southeast-2", &ids(1), Update::Notified, "n")
        .await;
    let got = calls(&server).await;
    assert_eq!(signed_region(&got[1]), "ap-southeast-2");
    assert_eq!(body(&got[1])["Workflow"], json!({"Status": "NOTIFIED"}));
}

#[tokio::test]
async fn findings_go_out_in_calls_of_at_most_100() {
    let server = hub().await;
    let f = Findings::new(&sdk(&server));
    let all = ids(250);
    let summary = f
        .update("j1", "eu-west-1", &all, Update::Notified, "n")
        .await;
    assert_eq!(summary.processed, 250);
    let sent: Vec<Vec<String>> = calls(&server)
        .await
        .iter()
        .map(|r| {
            body(r)["FindingIdentifiers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["Id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        sent.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let flat: Vec<String> = sent.into_iter().flatten().collect();
    let want: Vec<String> = all.into_iter().map(|f| f.id).collect();
    assert_eq!(flat, want, "each finding once, in order");

    // Exactly 100 is one call.
    let server = hub().await;
    Findings::new(&sdk(&server))
        .update("j1", "eu-west-1", &ids(100), Update::Notified, "n")
        .await;
    assert_eq!(calls(&server).await.len(), 1);
}

#[tokio::test]
async fn unprocessed_findings_are_reported_and_logged_with_their_reason() {
    let (logs, _guard) = Logs::capture();
    let server = MockServer::start().await;
    let two = ids(2);
    batch_update()
        .respond_with(hub_json(
            200,
            json!({
                "ProcessedFindings": [{"Id": two[0].id, "ProductArn": PRODUCT}],
                "UnprocessedFindings": [{
                    "FindingIdentifier": {"Id": two[1].id, "ProductArn": PRODUCT},
                    "ErrorCode": "FindingNotFound",
                    "ErrorMessage": "Finding not found"
                }]
            }),
        ))
        .mount(&server)
        .await;
    let summary = Findings::new(&sdk(&server))
        .update("j1", "eu-west-1", &two, Update::Resolved, "n")
        .await;
    assert_eq!(summary.processed, 1);
    assert_eq!(summary.unprocessed.len(), 1);
    assert_eq!(summary.unprocessed[0].finding, two[1]);
    assert_eq!(summary.unprocessed[0].error_code, "FindingNotFound");
    assert_eq!(summary.unprocessed[0].error_message, "Finding not found");
    let warned = logs.lines("UnprocessedFindings");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("WARN")
            && warned[0].contains("job_id=\"j1\"")
            && warned[0].contains("error_code=FindingNotFound")
            && warned[0].contains("error_message=Finding not found")
            && warned[0].contains(&two[1].id),
        "{}",
        warned[0]
    );
    let done = logs.lines("finding workflow updated");
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(
        done[0].contains("status=\"RESOLVED\"")
            && done[0].contains("count=1")
            && done[0].contains("unprocessed=1"),
        "{}",
        done[0]
    );
}

#[tokio::test]
async fn service_errors_are_logged_and_the_other_chunks_still_go_out() {
    let (logs, _guard) = Logs::capture();
    let server = MockServer::start().await;
    let denied = hub_json(
        403,
        json!({"Code": "AccessDeniedException", "Message": "not authorized to perform securityhub:BatchUpdateFindings"}),
    )
    .insert_header("x-amzn-errortype", "AccessDeniedException");
    // The first chunk is refused; the second goes through.
    batch_update()
        .respond_with(denied)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    batch_update()
        .respond_with(AllProcessed)
        .mount(&server)
        .await;
    let summary = Findings::new(&sdk(&server))
        .update("j1", "eu-west-1", &ids(150), Update::Resolved, "n")
        .await;
    assert_eq!(calls(&server).await.len(), 2, "AccessDenied is not retried");
    assert_eq!(summary.processed, 50);
    assert_eq!(summary.errors.len(), 1);
    let e = summary.errors[0].to_string();
    assert!(
        e.contains("eu-west-1") && e.contains("AccessDeniedException"),
        "{e}"
    );
    let warned = logs.lines("could not update the findings' workflow");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("WARN") && warned[0].contains("job_id=\"j1\""),
        "{}",
        warned[0]
    );
}

#[tokio::test]
async fn throttling_is_retried() {
    let server = MockServer::start().await;
    batch_update()
        .respond_with(
            hub_json(
                429,
                json!({"Code": "TooManyRequestsException", "Message": "slow down"}),
            )
            .insert_header("x-amzn-errortype", "TooManyRequestsException"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    batch_update()
        .respond_with(AllProcessed)
        .mount(&server)
        .await;
    let summary = Findings::new(&sdk(&server))
        .update("j1", "eu-west-1", &ids(3), Update::Resolved, "n")
        .await;
    assert_eq!(calls(&server).await.len(), 2);
    assert_eq!(summary.processed, 3);
    assert!(summary.errors.is_empty());
}

// ---------------------------------------------------------------- after a job

/// A Security Hub job: findings in 444455556666/us-east-1 (the job's account and region),
/// delivered through the aggregation region eu-west-1 (the envelope's).
fn hub_job(job_id: &str, update: FindingUpdate) -> Job {
    let mut job = common::job(job_id, "partner-uploads-prod");
    job.source = "aws.securityhub".into();
    job.detail_type = "Security Hub Findings - Imported".into();
    job.account = "444455556666".into();
    job.region = "us-east-1".into();
    job.resource_ids = vec!["arn:aws:s3:::partner-uploads-prod".into()];
    job.update_finding = update;
    let finding = |id: &str| {
        json!({
            "Id": id, "ProductArn": PRODUCT, "AwsAccountId": "444455556666", "Region": "us-east-1",
            "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::partner-uploads-prod"}]
        })
    };
    job.event = json!({
        "version": "0", "id": format!("event-{job_id}"), "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub", "account": "111122223333", "region": "eu-west-1",
        "time": "2026-01-01T00:00:00Z", "resources": [],
        "detail": {"findings": [
            finding("f-1"),
            {"Id": "f-no-product"},
            finding("f-2"),
        ]}
    });
    job
}

fn remediated() -> JobOutcome {
    JobOutcome::Done {
        policies: vec![PolicyOutcome {
            policy: "s3-hub-public".into(),
            matched: 1,
            acted_on: 1,
            output: Some("s3://out/output/j1/s3-hub-public".into()),
        }],
    }
}

#[tokio::test]
async fn after_a_job_the_event_s_findings_are_updated_in_the_event_s_region() {
    let (logs, _guard) = Logs::capture();
    let server = hub().await;
    let f = Findings::new(&sdk(&server));
    let job = hub_job("j1", FindingUpdate::Resolve);
    let summary = f.after_job(&job, false, &remediated()).await.unwrap();
    assert_eq!(summary.processed, 2);
    let got = calls(&server).await;
    assert_eq!(got.len(), 1);
    assert_eq!(signed_region(&got[0]), "eu-west-1", "the envelope's region");
    assert_eq!(
        body(&got[0]),
        json!({
            "FindingIdentifiers": [
                {"Id": "f-1", "ProductArn": PRODUCT},
                {"Id": "f-2", "ProductArn": PRODUCT},
            ],
            "Note": {
                "Text": "custodian-zero job j1: policy s3-hub-public remediated 1 resource(s); output s3://out/output/j1/s3-hub-public",
                "UpdatedBy": "custodian-zero"
            },
            "Workflow": {"Status": "RESOLVED"},
        })
    );
    assert_eq!(
        logs.lines("finding without Id or ProductArn").len(),
        1,
        "the incomplete finding is skipped with a warning"
    );

    // Without an envelope region, the job's.
    let mut job = hub_job("j2", FindingUpdate::Notify);
    job.event.as_object_mut().unwrap().remove("region");
    f.after_job(&job, false, &remediated()).await.unwrap();
    let got = calls(&server).await;
    assert_eq!(signed_region(&got[1]), "us-east-1");
    assert_eq!(body(&got[1])["Workflow"]["Status"], "NOTIFIED");
}

#[tokio::test]
async fn off_dry_runs_and_jobs_that_matched_nothing_update_nothing() {
    let (logs, _guard) = Logs::capture();
    let server = hub().await;
    let f = Findings::new(&sdk(&server));
    let nothing = JobOutcome::Done {
        policies: vec![PolicyOutcome {
            policy: "p".into(),
            matched: 0,
            acted_on: 0,
            output: None,
        }],
    };
    let failed = JobOutcome::failed("PolicyError", "bad", AfterFailure::DeadLettered);
    for (update, dryrun, outcome) in [
        (FindingUpdate::Off, false, remediated()),
        (FindingUpdate::Off, false, failed.clone()),
        (FindingUpdate::Resolve, true, remediated()),
        (FindingUpdate::Notify, true, failed),
        (FindingUpdate::Resolve, false, nothing.clone()),
        (FindingUpdate::Notify, false, nothing),
    ] {
        let job = hub_job("j", update);
        assert!(f.after_job(&job, dryrun, &outcome).await.is_none());
    }
    assert!(calls(&server).await.is_empty());
    assert_eq!(logs.lines("a dry run changes nothing").len(), 2);
    assert_eq!(
        logs.lines("no policy matched the finding's resource").len(),
        2
    );
}

// ---------------------------------------------------------------- the poll loop

struct Stack {
    sqs: MockServer,
    s3: MockServer,
    hub: MockServer,
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
    for op in ["SendMessage", "DeleteMessage", "ChangeMessageVisibility"] {
        sqs_call(op)
            .respond_with(sqs_json(
                json!({"MessageId": "d1", "MD5OfMessageBody": "x"}),
            ))
            .mount(&sqs)
            .await;
    }
    Stack {
        sqs,
        s3,
        hub: hub().await,
    }
}

fn sqs_json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_string(body.to_string())
}

fn sqs_call(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-amz-target", format!("AmazonSQS.{op}").as_str()))
}

async fn sqs_requests(server: &MockServer, op: &str) -> Vec<Value> {
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

/// Each receive returns the next batch, then every later one is empty.
async fn mount_receives(sqs: &MockServer, batches: Vec<Vec<(&str, &Job)>>) {
    for (i, batch) in batches.into_iter().enumerate() {
        let messages: Vec<Value> = batch
            .into_iter()
            .map(|(id, job)| {
                let body = Envelope::Inline { job: job.clone() }.encode().unwrap();
                json!({"MessageId": id, "ReceiptHandle": format!("rh-{id}"), "MD5OfBody": "x",
                       "Body": body, "Attributes": {"ApproximateReceiveCount": "1"}})
            })
            .collect();
        sqs_call("ReceiveMessage")
            .respond_with(sqs_json(json!({"Messages": messages})))
            .up_to_n_times(1)
            .with_priority(1 + i as u8)
            .mount(sqs)
            .await;
    }
    sqs_call("ReceiveMessage")
        .respond_with(sqs_json(json!({})))
        .mount(sqs)
        .await;
}

fn worker(st: &Stack, runner: FakeRunner, extra: &[(&str, &str)]) -> Worker<FakeRunner> {
    let mut env = vec![("DLQ_URL", DLQ), ("WORKER_CONCURRENCY", "1")];
    env.extend_from_slice(extra);
    Worker::new(
        config(QUEUE, &env),
        Queue::new(sqs_client(&sdk(&st.sqs)), QUEUE),
        Store::new(s3_client(&sdk(&st.s3))),
        runner,
        None,
        Metrics::to_writer(Box::new(std::io::sink())),
    )
    .with_findings(Findings::new(&sdk(&st.hub)))
}

async fn run(w: Worker<FakeRunner>) {
    let (_t, stop) = shutdown::channel();
    assert_eq!(w.run(stop).await.unwrap(), Exit::Idle);
}

/// (workflow status, note) of each BatchUpdateFindings the worker made.
async fn updates(st: &Stack) -> Vec<(String, String)> {
    calls(&st.hub)
        .await
        .iter()
        .map(|r| {
            let b = body(r);
            (
                b["Workflow"]["Status"].as_str().unwrap().to_owned(),
                b["Note"]["Text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_job_that_remediates_resolves_its_findings_once() {
    let st = stack().await;
    let job = hub_job("j-ok", FindingUpdate::Resolve);
    mount_receives(&st.sqs, vec![vec![("m", &job)]]).await;
    let runner = FakeRunner::default();
    run(worker(&st, runner.clone(), &[])).await;
    assert_eq!(runner.calls(), 1);
    assert_eq!(
        updates(&st).await,
        [(
            "RESOLVED".to_owned(),
            "custodian-zero job j-ok: policy fake remediated 1 resource(s)".to_owned()
        )]
    );
    assert_eq!(sqs_requests(&st.sqs, "DeleteMessage").await.len(), 1);
    assert!(sqs_requests(&st.sqs, "SendMessage").await.is_empty());
}

#[tokio::test]
async fn a_job_that_cannot_succeed_goes_to_the_dlq_and_notifies() {
    let st = stack().await;
    let job = hub_job("j-bad", FindingUpdate::Resolve);
    mount_receives(&st.sqs, vec![vec![("m", &job)]]).await;
    let runner = FakeRunner {
        fail: Some("max-resources exceeded"),
        permanent: Some("PolicyError"),
        ..FakeRunner::default()
    };
    run(worker(&st, runner, &[])).await;
    let dlq = sqs_requests(&st.sqs, "SendMessage").await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["QueueUrl"], DLQ);
    let got = updates(&st).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "NOTIFIED");
    assert!(
        got[0]
            .1
            .starts_with("custodian-zero job j-bad failed (PolicyError): ")
            && got[0].1.contains("max-resources exceeded")
            && got[0].1.ends_with("; sent to the dead-letter queue"),
        "{}",
        got[0].1
    );
}

#[tokio::test]
async fn a_retryable_failure_notifies_and_leaves_the_message() {
    let st = stack().await;
    let job = hub_job("j-slow", FindingUpdate::Notify);
    mount_receives(&st.sqs, vec![vec![("m", &job)]]).await;
    let runner = FakeRunner {
        fail: Some("SlowDown"),
        ..FakeRunner::default()
    };
    run(worker(&st, runner, &[])).await;
    assert!(sqs_requests(&st.sqs, "DeleteMessage").await.is_empty());
    assert!(sqs_requests(&st.sqs, "SendMessage").await.is_empty());
    let got = updates(&st).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "NOTIFIED");
    assert!(
        got[0]
            .1
            .starts_with("custodian-zero job j-slow failed (Retryable): ")
            && got[0].1.ends_with("; will be retried"),
        "{}",
        got[0].1
    );
}

#[tokio::test]
async fn off_and_dry_runs_make_no_security_hub_call() {
    for (update, extra) in [
        (FindingUpdate::Off, vec![]),
        (FindingUpdate::Resolve, vec![("DRYRUN", "true")]),
    ] {
        let st = stack().await;
        let job = hub_job("j", update);
        mount_receives(&st.sqs, vec![vec![("m", &job)]]).await;
        let runner = FakeRunner::default();
        run(worker(&st, runner.clone(), &extra)).await;
        assert_eq!(runner.calls(), 1);
        assert_eq!(sqs_requests(&st.sqs, "DeleteMessage").await.len(), 1);
        assert!(calls(&st.hub).await.is_empty(), "{update:?} {extra:?}");
    }
}

#[tokio::test]
async fn a_duplicate_of_a_done_job_updates_nothing_again() {
    let st = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let job = hub_job("j-dup", FindingUpdate::Resolve);
    // The same job delivered twice, one receive after the other.
    mount_receives(&st.sqs, vec![vec![("m1", &job)], vec![("m2", &job)]]).await;
    let runner = FakeRunner::default();
    run(worker(&st, runner.clone(), &[]).with_ledger(Ledger::dir(dir.path()))).await;
    assert_eq!(runner.calls(), 1, "the copy is dropped by the ledger");
    assert_eq!(sqs_requests(&st.sqs, "DeleteMessage").await.len(), 2);
    let got = updates(&st).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "RESOLVED");
}

#[tokio::test]
async fn a_refused_update_does_not_fail_the_job() {
    let (logs, _guard) = Logs::capture();
    let st = stack().await;
    st.hub.reset().await;
    batch_update()
        .respond_with(
            hub_json(
                403,
                json!({"Code": "AccessDeniedException", "Message": "no"}),
            )
            .insert_header("x-amzn-errortype", "AccessDeniedException"),
        )
        .mount(&st.hub)
        .await;
    let job = hub_job("j-denied", FindingUpdate::Resolve);
    mount_receives(&st.sqs, vec![vec![("m", &job)]]).await;
    run(worker(&st, FakeRunner::default(), &[])).await;
    assert_eq!(calls(&st.hub).await.len(), 1);
    assert_eq!(sqs_requests(&st.sqs, "DeleteMessage").await.len(), 1);
    assert!(sqs_requests(&st.sqs, "SendMessage").await.is_empty());
    assert_eq!(logs.lines("job done").len(), 1);
    let warned = logs.lines("could not update the findings' workflow");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("job_id=\"j-denied\""), "{}", warned[0]);
}
