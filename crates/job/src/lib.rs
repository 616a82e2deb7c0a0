//! The job message: what the invoker puts on the queue and the worker takes off it.
//!
//! One definition, versioned and free of I/O, so both sides and their tests agree on the
//! wire format. A message body is a JSON [`Envelope`]: either the job itself or, when the
//! job would not fit in one SQS message, a claim check pointing at the job stored in S3.
//!
//! Compatibility rule: a worker accepts every `version` up to [`JOB_VERSION`]; fields are
//! only ever added (with serde defaults), so an older job still decodes. A newer version
//! than the worker knows is rejected with [`JobError::UnsupportedVersion`], never guessed at.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The job format this crate writes, and the newest it reads.
pub const JOB_VERSION: u32 = 1;

/// SQS's maximum message size. Bodies larger than this are stored in S3 (claim check).
/// AWS raised the limit from 256 KiB to 1 MiB in 2025; we keep the historical 256 KiB so a
/// queue created with the old `MaximumMessageSize` default still accepts every message.
pub const MAX_INLINE_BYTES: usize = 256 * 1024;

/// Message attribute names set on every job message (for routing, filtering and debugging
/// without parsing the body).
pub mod attributes {
    pub const VERSION: &str = "czero-job-version";
    pub const EVENT_SOURCE: &str = "czero-event-source";
    pub const POLICY_COUNT: &str = "czero-policy-count";
    pub const CLAIM_CHECK: &str = "czero-claim-check";
    pub const TRACE_ID: &str = "czero-trace-id";
}

/// "Run these policies for this event": one job per event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Format version, [`JOB_VERSION`] when written by this crate.
    pub version: u32,
    /// Unique per job; also the idempotency key in logs and output metadata.
    pub job_id: String,
    /// The EventBridge event's `id`.
    pub event_id: String,
    /// The EventBridge `source`, e.g. `aws.s3`, `aws.securityhub`.
    pub source: String,
    /// The EventBridge `detail-type`.
    pub detail_type: String,
    /// The account and region the job acts in: where the event's resources are. The
    /// envelope's `account`/`region` for most events; GuardDuty's `detail.accountId` and
    /// `detail.region`; for Security Hub, the findings' `AwsAccountId` and `Region` (the
    /// invoker queues one job per pair). When the account is not the worker's own, the
    /// worker acts through that account's member role.
    pub account: String,
    pub region: String,
    /// Resource ids the event names (bucket names, ARNs), as the invoker understood them.
    #[serde(default)]
    pub resource_ids: Vec<String>,
    /// Policy files to run, each pinned to the object version the invoker saw.
    pub policies: Vec<PolicyRef>,
    /// When the invoker received the event.
    pub received_at: DateTime<Utc>,
    /// X-Ray / Lambda trace id, carried into the worker's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The whole EventBridge event: event-mode policies compute their resource ids from it
    /// exactly as c7n does, so the worker needs the original, not our summary of it. A
    /// Security Hub event split per (account, region) keeps only that pair's findings.
    pub event: serde_json::Value,
    /// What the worker does with the event's Security Hub findings once the job is over
    /// (the mapping rule's `update_finding`).
    #[serde(default, skip_serializing_if = "FindingUpdate::is_off")]
    pub update_finding: FindingUpdate,
}

/// A mapping rule's `update_finding`: after a job for Security Hub findings, set their
/// workflow status with `BatchUpdateFindings` (in the region the event came from, the
/// aggregation region when findings are aggregated, with the worker's own credentials),
/// with a note naming the job, the policy and the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingUpdate {
    /// Leave the findings alone.
    #[default]
    Off,
    /// `RESOLVED` when the policy acted on the finding's resources, `NOTIFIED` when the
    /// job failed.
    Resolve,
    /// `NOTIFIED` when the job ran (acted or failed); never resolves.
    Notify,
}

impl FindingUpdate {
    pub fn is_off(&self) -> bool {
        *self == FindingUpdate::Off
    }
}

/// `true` for a 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `true` for a region name such as `us-east-1`, `eu-central-2` or `us-gov-west-1`
/// (lowercase letters and digits in dash-separated parts ending with a number).
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && s.len() <= 32
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
}

/// A policy file in the policy bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// Object key, always under `policies/`.
    pub key: String,
    /// The object's ETag when the invoker selected it (its HeadObject). Without a version
    /// id the worker runs the current object and warns when its ETag differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The object's version id, when the bucket is versioned: the worker fetches exactly
    /// this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// The body of a queue message.
// One envelope exists per message and lives only while it is encoded or decoded, so the size
// difference between the variants costs nothing; boxing would only complicate every caller.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Envelope {
    /// The job itself.
    Inline { job: Job },
    /// The job is stored as JSON at `s3://bucket/key` because it was too large to inline.
    ClaimCheck {
        version: u32,
        job_id: String,
        bucket: String,
        key: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job message is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("job version {found} is newer than this worker understands (up to {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("job {job_id} names no policies")]
    NoPolicies { job_id: String },
    #[error("job {job_id}: policy key `{key}` is not under `policies/` or contains `..`")]
    BadPolicyKey { job_id: String, key: String },
}

impl Job {
    /// Checks what serde cannot: the version, and that every policy key is a plain key
    /// under `policies/` (a job must never make the worker read outside that prefix).
    pub fn validate(&self) -> Result<(), JobError> {
        if self.version > JOB_VERSION {
            return Err(JobError::UnsupportedVersion {
                found: self.version,
                supported: JOB_VERSION,
            });
        }
        if self.policies.is_empty() {
            return Err(JobError::NoPolicies {
                job_id: self.job_id.clone(),
            });
        }
        for p in &self.policies {
            if !is_safe_policy_key(&p.key) {
                return Err(JobError::BadPolicyKey {
                    job_id: self.job_id.clone(),
                    key: p.key.clone(),
                });
            }
        }
        Ok(())
    }

    /// The S3 key under which a claim-checked job is stored.
    pub fn claim_check_key(&self) -> String {
        format!("jobs/{}.json", self.job_id)
    }
}

/// `true` for keys like `policies/s3/x.yml`; `false` for anything outside `policies/`,
/// with `..` segments, empty segments, or a leading slash.
pub fn is_safe_policy_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("policies/") else {
        return false;
    };
    !rest.is_empty()
        && !key.contains('\\')
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && seg != ".." && seg != ".")
}

impl Envelope {
    /// Serialises to the message body.
    pub fn encode(&self) -> Result<String, JobError> {
        Ok(serde_json::to_string(self)?)
    }

    /// Parses a message body, checking the version and the policy keys of inline jobs.
    pub fn decode(body: &str) -> Result<Envelope, JobError> {
        let env: Envelope = serde_json::from_str(body)?;
        match &env {
            Envelope::Inline { job } => job.validate()?,
            Envelope::ClaimCheck { version, .. } if *version > JOB_VERSION => {
                return Err(JobError::UnsupportedVersion {
                    found: *version,
                    supported: JOB_VERSION,
                });
            }
            Envelope::ClaimCheck { .. } => {}
        }
        Ok(env)
    }

    pub fn job_id(&self) -> &str {
        match self {
            Envelope::Inline { job } => &job.job_id,
            Envelope::ClaimCheck { job_id, .. } => job_id,
        }
    }
}

/// Decodes a claim-checked job fetched from S3.
pub fn decode_job(body: &[u8]) -> Result<Job, JobError> {
    let job: Job = serde_json::from_slice(body)?;
    job.validate()?;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            version: JOB_VERSION,
            job_id: "0f8e5a0c-1".into(),
            event_id: "e-1".into(),
            source: "aws.s3".into(),
            detail_type: "AWS API Call via CloudTrail".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            resource_ids: vec!["my-bucket".into()],
            policies: vec![PolicyRef {
                key: "policies/s3-createbucket.yml".into(),
                etag: Some("\"abc\"".into()),
                version_id: None,
            }],
            received_at: DateTime::parse_from_rfc3339("2026-11-28T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            trace_id: None,
            event: serde_json::json!({"id": "e-1", "detail": {}}),
            update_finding: FindingUpdate::Off,
        }
    }

    #[test]
    fn finding_update_is_left_out_when_off_and_kebab_case_otherwise() {
        let body = Envelope::Inline { job: job() }.encode().unwrap();
        assert!(!body.contains("updateFinding"), "{body}");
        let mut j = job();
        j.update_finding = FindingUpdate::Resolve;
        let body = Envelope::Inline { job: j.clone() }.encode().unwrap();
        assert!(body.contains("\"updateFinding\":\"resolve\""), "{body}");
        assert_eq!(
            Envelope::decode(&body).unwrap(),
            Envelope::Inline { job: j }
        );
    }

    #[test]
    fn account_ids_and_regions() {
        for ok in ["123456789012", "000000000000"] {
            assert!(is_account_id(ok), "{ok}");
        }
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "../etc/pass",
        ] {
            assert!(!is_account_id(bad), "{bad}");
        }
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
            "cn-north-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-1a",
            "us--1",
            "../x-y-1",
            "us_east_1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn inline_round_trips() {
        let env = Envelope::Inline { job: job() };
        let body = env.encode().unwrap();
        assert!(body.contains("\"kind\":\"inline\""));
        assert!(body.contains("\"jobId\""));
        assert_eq!(Envelope::decode(&body).unwrap(), env);
    }

    #[test]
    fn claim_check_round_trips() {
        let env = Envelope::ClaimCheck {
            version: 1,
            job_id: "j".into(),
            bucket: "b".into(),
            key: "jobs/j.json".into(),
        };
        let body = env.encode().unwrap();
        assert!(body.contains("\"kind\":\"claim-check\""));
        assert_eq!(Envelope::decode(&body).unwrap(), env);
    }

    #[test]
    fn newer_version_is_rejected_not_guessed() {
        let mut j = job();
        j.version = JOB_VERSION + 1;
        let body = Envelope::Inline { job: j }.encode().unwrap();
        assert!(matches!(
            Envelope::decode(&body),
            Err(JobError::UnsupportedVersion { found: 2, .. })
        ));
    }

    #[test]
    fn older_job_without_optional_fields_decodes() {
        let body = r#"{"kind":"inline","job":{"version":1,"jobId":"j","eventId":"e","source":"aws.s3",
            "detailType":"d","account":"1","region":"r","policies":[{"key":"policies/a.yml"}],
            "receivedAt":"2026-01-01T00:00:00Z","event":{}}}"#;
        let Envelope::Inline { job } = Envelope::decode(body).unwrap() else {
            panic!("expected inline")
        };
        assert!(job.resource_ids.is_empty());
        assert_eq!(job.trace_id, None);
        assert_eq!(job.update_finding, FindingUpdate::Off);
    }

    #[test]
    fn policy_keys_outside_the_prefix_are_rejected() {
        for bad in [
            "config/x.yml",
            "policies/",
            "policies/../config/x.yml",
            "policies//x.yml",
            "/policies/x.yml",
            "policies/./x.yml",
            "policies\\..\\x",
        ] {
            assert!(!is_safe_policy_key(bad), "{bad} accepted");
            let mut j = job();
            j.policies[0].key = bad.into();
            assert!(
                matches!(j.validate(), Err(JobError::BadPolicyKey { .. })),
                "{bad}"
            );
        }
        assert!(is_safe_policy_key("policies/s3/encrypt.yml"));
    }

    #[test]
    fn garbage_is_a_json_error() {
        for body in [
            "",
            "{",
            "[]",
            "{\"kind\":\"other\"}",
            "{\"kind\":\"inline\"}",
        ] {
            assert!(
                matches!(Envelope::decode(body), Err(JobError::Json(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn a_job_with_no_policies_is_rejected() {
        let mut j = job();
        j.policies.clear();
        assert!(matches!(j.validate(), Err(JobError::NoPolicies { .. })));
    }
}
