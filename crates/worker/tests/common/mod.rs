//! Helpers shared by the worker's test binaries.
#![allow(dead_code)]

use czero_job::{Envelope, JOB_VERSION, Job, PolicyRef};
use czero_worker::{Config, PolicyRun, PolicyRunner, RunError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The CloudTrail CreateBucket event the default policy reacts to.
pub const CREATE_BUCKET_EVENT: &str = include_str!("../../fixtures/create-bucket-event.json");

pub fn job(job_id: &str, bucket: &str) -> Job {
    let mut event: serde_json::Value =
        serde_json::from_str(CREATE_BUCKET_EVENT).expect("fixture event parses");
    event["detail"]["requestParameters"]["bucketName"] = bucket.into();
    Job {
        version: JOB_VERSION,
        job_id: job_id.into(),
        event_id: format!("event-{job_id}"),
        source: "aws.s3".into(),
        detail_type: "AWS API Call via CloudTrail".into(),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        resource_ids: vec![bucket.into()],
        policies: vec![PolicyRef {
            key: "policies/s3-createbucket.yml".into(),
            etag: None,
            version_id: None,
        }],
        received_at: chrono::Utc::now(),
        trace_id: None,
        update_finding: Default::default(),
        event,
    }
}

pub fn job_body(job_id: &str, bucket: &str) -> String {
    Envelope::Inline {
        job: job(job_id, bucket),
    }
    .encode()
    .expect("job encodes")
}

/// A configuration for `queue_url` with test-friendly timings, overridden by `extra`.
pub fn config(queue_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("SQS_QUEUE_URL", queue_url),
        ("POLICY_BUCKET", "policies"),
        ("WAIT_TIME_SECONDS", "0"),
        ("MAX_EMPTY_RECEIVES", "3"),
        ("SHUTDOWN_GRACE_SECONDS", "5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration is valid")
}

/// A runner that counts its calls, waits `delay`, then succeeds or fails.
#[derive(Clone, Default)]
pub struct FakeRunner {
    pub calls: Arc<AtomicUsize>,
    pub finished: Arc<AtomicUsize>,
    pub delay: Duration,
    pub fail: Option<&'static str>,
    /// The failure in `fail` cannot be fixed by a retry (`kind`).
    pub permanent: Option<&'static str>,
    /// Panic in the job with this id.
    pub panic_on: Option<&'static str>,
    /// Report the policy as skipped with this reason (its mode does not handle the event).
    pub skip: Option<&'static str>,
}

impl FakeRunner {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

impl PolicyRunner for FakeRunner {
    async fn run(&self, job: &Job, key: &str, text: &str) -> Result<Vec<PolicyRun>, RunError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.panic_on == Some(job.job_id.as_str()) {
            panic!("injected panic in job {}", job.job_id);
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
        assert!(!text.is_empty(), "policy text handed to the runner");
        if let Some(reason) = self.fail {
            return Err(RunError::Failed {
                key: key.into(),
                policy: "fake".into(),
                message: reason.into(),
                retryable: self.permanent.is_none(),
                kind: self.permanent.unwrap_or("PolicyFailed"),
            });
        }
        Ok(vec![PolicyRun {
            policy: "fake".into(),
            resource_type: "aws.s3".into(),
            resources: job.resource_ids.len(),
            actions_taken: 1,
            duration: self.delay,
            resource_time: Some(self.delay),
            action_time: None,
            output_location: None,
            executor: "native",
            skipped: self.skip.map(str::to_owned),
        }])
    }
}
