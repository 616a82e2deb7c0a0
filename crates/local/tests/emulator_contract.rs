//! What the control plane reads of the queue, against wiremock speaking SQS (AWS JSON 1.0):
//! each reading is two GetQueueAttributes calls, and the one with the smaller backlog
//! counts. moto counts visible and in-flight messages in separate passes, so a receive
//! between them counts its messages twice; a backlog read that way would scale out for jobs
//! that do not exist.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use czero_local::Emulator;
use czero_local::emulator::QueueCounts;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers each GetQueueAttributes with the next (visible, in flight), the last one again
/// once they run out.
struct Reads {
    calls: AtomicUsize,
    answers: Vec<(u64, u64)>,
}

impl Respond for Reads {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self.calls.fetch_add(1, Ordering::SeqCst);
        let (visible, in_flight) = self.answers[i.min(self.answers.len() - 1)];
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.0")
            .set_body_string(
                json!({"Attributes": {
                    "ApproximateNumberOfMessages": visible.to_string(),
                    "ApproximateNumberOfMessagesNotVisible": in_flight.to_string(),
                    "ApproximateNumberOfMessagesDelayed": "0",
                }})
                .to_string(),
            )
    }
}

async fn read(answers: Vec<(u64, u64)>) -> (QueueCounts, usize) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-amz-target", "AmazonSQS.GetQueueAttributes"))
        .respond_with(Reads {
            calls: AtomicUsize::new(0),
            answers,
        })
        .mount(&server)
        .await;
    let config = aws_config::SdkConfig::builder()
        .endpoint_url(server.uri())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let counts = Emulator::new(&config)
        .queue_counts(&format!("{}/123456789012/czero-jobs", server.uri()))
        .await
        .unwrap();
    let calls = server.received_requests().await.unwrap().len();
    (counts, calls)
}

#[tokio::test]
async fn a_read_that_counted_a_receive_twice_is_not_the_backlog() {
    // 25 jobs; five workers receive one each while the first read is between its passes.
    let (counts, calls) = read(vec![(25, 5), (20, 5)]).await;
    assert_eq!(
        counts,
        QueueCounts {
            visible: 20,
            not_visible: 5,
            delayed: 0
        }
    );
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn the_smaller_backlog_counts_whichever_read_it_was() {
    let (counts, _) = read(vec![(20, 5), (25, 5)]).await;
    assert_eq!((counts.visible, counts.not_visible), (20, 5));
}

#[tokio::test]
async fn two_equal_reads_are_the_reading() {
    let (counts, calls) = read(vec![(7, 3)]).await;
    assert_eq!((counts.visible, counts.not_visible), (7, 3));
    assert_eq!(calls, 2);
}
