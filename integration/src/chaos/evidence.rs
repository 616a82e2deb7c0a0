//! What a chaos run reads back afterwards (buckets, outputs, ledger markers, the DLQ, the
//! service, the control plane's log) and, while it runs, from the workers' own output.

use super::target::Target;
use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The worker's message attributes on a message it dead-letters (`czero_worker::queue`'s
/// `DEAD_LETTER_REASON_ATTRIBUTE` and `DEAD_LETTER_KIND_ATTRIBUTE`; contracts).
pub const DEAD_LETTER_REASON: &str = "czero-dead-letter-reason";
pub const DEAD_LETTER_KIND: &str = "czero-dead-letter-kind";
/// The kind the worker gives a message that is not a job.
pub const NOT_A_JOB: &str = "NotAJob";

/// The worker's log lines the run counts (`message` of its JSON log records).
pub(crate) const JOB_DONE: &str = "job done";
pub(crate) const DUPLICATE: &str = "duplicate job: it already ran; message deleted";
pub(crate) const BUSY: &str = "job is running on another worker; this copy waits";
pub(crate) const FAILED: &str = "job failed; message left for SQS redrive";
pub(crate) const DEAD_LETTERED: &str = "job cannot succeed; moved to the dead-letter queue";
pub(crate) const RELEASED: &str = "message released for another worker";
pub(crate) const MARKER_NOT_UPDATED: &str = "could not update the job marker";
pub(crate) const NO_DLQ: &str =
    "job cannot succeed; no DLQ_URL, so it is left for SQS redrive to the dead-letter queue";
pub(crate) const DLQ_SEND_FAILED: &str =
    "job cannot succeed and could not be sent to the dead-letter queue; left for SQS redrive";
const BATCH: &str = "batch received";
/// The lines that end one message of a batch: every message the worker takes ends with one.
const MESSAGE_ENDS: [&str; 8] = [
    JOB_DONE,
    DUPLICATE,
    BUSY,
    FAILED,
    DEAD_LETTERED,
    RELEASED,
    NO_DLQ,
    DLQ_SEND_FAILED,
];

/// What the default policy (`policies/s3-createbucket.yml`) leaves on a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Remediation {
    /// `set-bucket-encryption` with `crypto: AES256`.
    pub encrypted: bool,
    /// `set-public-block` with all four settings true.
    pub public_access_blocked: bool,
    /// `toggle-versioning` with `enabled: true`.
    pub versioned: bool,
    /// `tag` with `custodian-zero: remediated`.
    pub tagged: bool,
}

impl Remediation {
    pub fn complete(&self) -> bool {
        self.encrypted && self.public_access_blocked && self.versioned && self.tagged
    }

    pub async fn of(s3: &aws_sdk_s3::Client, bucket: &str) -> Remediation {
        let encrypted = s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .ok()
            .and_then(|r| r.server_side_encryption_configuration)
            .is_some_and(|c| {
                c.rules().iter().any(|r| {
                    r.apply_server_side_encryption_by_default()
                        .is_some_and(|d| d.sse_algorithm().as_str() == "AES256")
                })
            });
        let public_access_blocked = s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .ok()
            .and_then(|r| r.public_access_block_configuration)
            .is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            });
        let versioned = match s3.get_bucket_versioning().bucket(bucket).send().await {
            Ok(r) => r
                .status
                .is_some_and(|s| s == aws_sdk_s3::types::BucketVersioningStatus::Enabled),
            // moto 5.2 names the answer's root <GetBucketVersioningResponse>, which the SDK
            // refuses to parse: read the status from the raw answer instead.
            Err(e) => e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .is_some_and(|b| String::from_utf8_lossy(b).contains("<Status>Enabled</Status>")),
        };
        let tagged = s3
            .get_bucket_tagging()
            .bucket(bucket)
            .send()
            .await
            .is_ok_and(|r| {
                r.tag_set()
                    .iter()
                    .any(|t| t.key() == "custodian-zero" && t.value() == "remediated")
            });
        Remediation {
            encrypted,
            public_access_blocked,
            versioned,
            tagged,
        }
    }
}

/// A message found in the DLQ.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    /// The worker's reason and kind attributes (absent when SQS redrive moved it).
    pub reason: Option<String>,
    pub kind: Option<String>,
    pub job_id: Option<String>,
    /// Why it is there, in words.
    pub explanation: String,
}

/// What the workers printed: JSON log records on stderr, EMF records on stdout, both in
/// `czero local`'s per-task log files. Read incrementally, as the files grow.
#[derive(Debug, Default)]
pub struct WorkerOutput {
    offsets: HashMap<PathBuf, u64>,
    /// `job done` lines per job id.
    pub done: BTreeMap<String, usize>,
    /// Count of each counted log message.
    pub lines: BTreeMap<&'static str, usize>,
    /// Sums of the `CloudCustodian/FargateWorker` EMF metrics.
    pub emf: BTreeMap<String, f64>,
    /// Counted messages per job id and per message id, for explaining a DLQ entry.
    pub history: HashMap<String, Vec<&'static str>>,
    /// Lines that were neither JSON log records nor EMF (e.g. cut short by SIGKILL).
    pub unparsed: usize,
    /// Messages of the current batch not yet ended, per log file (one file per task).
    in_hand: HashMap<PathBuf, u64>,
}

impl WorkerOutput {
    /// Reads what was appended to the files in `dir` since the last call.
    pub fn poll(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let offset = self.offsets.get(&path).copied().unwrap_or(0);
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(offset)).is_err() {
                continue;
            }
            let mut text = String::new();
            if file.read_to_string(&mut text).is_err() {
                continue;
            }
            // Only whole lines: a line still being written is read next time.
            let Some(end) = text.rfind('\n') else {
                continue;
            };
            for line in text[..end].lines() {
                self.line(&path, line);
            }
            self.offsets.insert(path, offset + end as u64 + 1);
        }
    }

    /// Counts lines left without a newline (a worker killed mid-write), once all is over.
    pub fn finish(&mut self, dir: &Path) {
        self.poll(dir);
        for (path, offset) in &self.offsets {
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if len > *offset {
                self.unparsed += 1;
            }
        }
    }

    /// Messages the task writing `log` holds now, as far as its log tells.
    pub fn in_hand(&self, log: &Path) -> u64 {
        self.in_hand.get(log).copied().unwrap_or(0)
    }

    fn line(&mut self, path: &Path, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.unparsed += 1;
            return;
        };
        if let Some(ns) = v["_aws"]["CloudWatchMetrics"][0]["Namespace"].as_str() {
            if ns == "CloudCustodian/FargateWorker"
                && let Some(obj) = v.as_object()
            {
                for (k, val) in obj {
                    if let Some(n) = val.as_f64() {
                        *self.emf.entry(k.clone()).or_default() += n;
                    }
                }
            }
            return;
        }
        let Some(message) = v["message"].as_str() else {
            self.unparsed += 1;
            return;
        };
        if message == BATCH {
            // A worker takes its next batch only when the last one is over.
            let n = v["messages"].as_u64().unwrap_or(0);
            self.in_hand.insert(path.to_path_buf(), n);
            return;
        }
        let Some(counted) = MESSAGE_ENDS
            .into_iter()
            .chain([MARKER_NOT_UPDATED])
            .find(|m| *m == message)
        else {
            return;
        };
        if MESSAGE_ENDS.contains(&counted)
            && let Some(n) = self.in_hand.get_mut(path)
        {
            *n = n.saturating_sub(1);
        }
        *self.lines.entry(counted).or_default() += 1;
        let job = v["job_id"].as_str();
        if counted == JOB_DONE
            && let Some(job) = job
        {
            *self.done.entry(job.to_owned()).or_default() += 1;
        }
        for id in [job, v["message_id"].as_str()].into_iter().flatten() {
            self.history.entry(id.to_owned()).or_default().push(counted);
        }
    }

    pub(crate) fn count(&self, message: &str) -> usize {
        self.lines.get(message).copied().unwrap_or(0)
    }

    pub(crate) fn emf(&self, metric: &str) -> u64 {
        self.emf.get(metric).copied().unwrap_or(0.0) as u64
    }
}

/// The state in a job's ledger marker, if it has one.
pub(crate) async fn marker_state(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    job: &str,
) -> Result<Option<String>> {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(format!("ledger/{job}.json"))
        .send()
        .await;
    let obj = match got {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
        Err(e) => {
            return Err(anyhow!(
                "reading s3://{bucket}/ledger/{job}.json: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ));
        }
    };
    let bytes = obj
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{bucket}/ledger/{job}.json"))?
        .into_bytes();
    let v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("s3://{bucket}/ledger/{job}.json is not JSON"))?;
    Ok(v["state"].as_str().map(str::to_owned))
}

pub(crate) async fn list_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    Ok(keys)
}

/// Job ids with a `metadata.json` (gzipped on S3) under `output/<job id>/`.
pub(crate) async fn output_jobs(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<BTreeSet<String>> {
    Ok(list_keys(s3, bucket, "output/")
        .await?
        .iter()
        .filter(|k| k.ends_with("/metadata.json.gz") || k.ends_with("/metadata.json"))
        .filter_map(|k| k.split('/').nth(1).map(str::to_owned))
        .collect())
}

/// Each job's ledger marker state.
pub(crate) async fn markers(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<BTreeMap<String, String>> {
    let mut states = BTreeMap::new();
    for key in list_keys(s3, bucket, "ledger/").await? {
        let Some(job) = key
            .strip_prefix("ledger/")
            .and_then(|k| k.strip_suffix(".json"))
        else {
            continue;
        };
        let state = marker_state(s3, bucket, job)
            .await?
            .unwrap_or_else(|| "unreadable".into());
        states.insert(job.to_owned(), state);
    }
    Ok(states)
}

/// Every message in the DLQ (received, not deleted), each with why it is there.
pub(crate) async fn drain_dlq(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    workers: &WorkerOutput,
) -> Result<Vec<DeadLetter>> {
    let mut found = Vec::new();
    loop {
        let resp = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .context("receiving from the DLQ")?;
        let messages = resp.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let attr = |name: &str| {
                m.message_attributes()
                    .and_then(|a| a.get(name))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned)
            };
            let body = m.body().unwrap_or_default().to_owned();
            let message_id = m.message_id().unwrap_or_default().to_owned();
            let job_id = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
                // An inline job (czero-job's camelCase), or a claim check.
                v["job"]["jobId"]
                    .as_str()
                    .or(v["job_id"].as_str())
                    .map(str::to_owned)
            });
            let (reason, kind) = (attr(DEAD_LETTER_REASON), attr(DEAD_LETTER_KIND));
            let mut history: Vec<&str> = Vec::new();
            for id in [Some(&message_id), job_id.as_ref()].into_iter().flatten() {
                history.extend(workers.history.get(id).into_iter().flatten().copied());
            }
            let explanation = match (&kind, &reason) {
                (Some(k), Some(r)) => format!("a worker dead-lettered it as {k}: {r}"),
                _ => format!(
                    "SQS redrive moved it after maxReceiveCount receives (no reason attribute); the workers logged for it: {}",
                    if history.is_empty() {
                        "nothing (each receive ended in a kill, a pause or a timeout)".to_owned()
                    } else {
                        history.join(" / ")
                    }
                ),
            };
            found.push(DeadLetter {
                message_id,
                body,
                reason,
                kind,
                job_id,
                explanation,
            });
        }
    }
    Ok(found)
}

pub(crate) async fn service_counts(target: &Target) -> Result<(i32, i32)> {
    let resp = target
        .ecs()
        .describe_services()
        .cluster(&target.cluster)
        .services(&target.service)
        .send()
        .await
        .context("ecs describe-services")?;
    let svc = resp
        .services()
        .first()
        .ok_or_else(|| anyhow!("service {} not found", target.service))?;
    Ok((svc.desired_count(), svc.running_count()))
}

/// `tasks started: N, relaunched: M` from `czero local`'s last line.
pub(crate) fn control_summary(log: &Path) -> (Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let number_after = |needle: &str| {
        text.rfind(needle).and_then(|i| {
            text[i + needle.len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
    };
    (
        number_after("tasks started: "),
        number_after("relaunched: "),
    )
}

/// The action of the control plane's last timeline row.
pub(crate) fn last_action(timeline: &Path) -> Option<String> {
    let text = std::fs::read_to_string(timeline).ok()?;
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let v: Value = serde_json::from_str(last).ok()?;
    v["action"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remediation check mirrors the default policy: if the policy changes, this fails
    /// instead of the chaos run checking for the wrong effects.
    #[test]
    fn the_remediation_check_matches_the_default_policy() {
        let policy = std::fs::read_to_string(
            czero_testkit::project_root().join("policies/s3-createbucket.yml"),
        )
        .unwrap();
        for expected in [
            "type: set-bucket-encryption",
            "crypto: AES256",
            "type: set-public-block",
            "BlockPublicAcls: true",
            "IgnorePublicAcls: true",
            "BlockPublicPolicy: true",
            "RestrictPublicBuckets: true",
            "type: toggle-versioning",
            "enabled: true",
            "key: custodian-zero",
            "value: remediated",
        ] {
            assert!(
                policy.contains(expected),
                "the policy no longer says {expected:?}"
            );
        }
        assert_eq!(policy.matches("- type:").count(), 4, "four actions");
    }

    #[test]
    fn worker_output_counts_logs_and_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.log");
        let lines = [
            r#"{"timestamp":"t","level":"INFO","message":"job done","job_id":"a","message_id":"m1"}"#,
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"CloudCustodian/FargateWorker","Dimensions":[[]],"Metrics":[{"Name":"DuplicatesSuppressed","Unit":"Count"}]}]},"DuplicatesSuppressed":1.0}"#,
            r#"{"timestamp":"t","level":"INFO","message":"duplicate job: it already ran; message deleted","job_id":"a","message_id":"m2"}"#,
            r#"{"timestamp":"t","level":"INFO","message":"batch received","messages":2}"#,
        ];
        std::fs::write(&path, format!("{}\n{{\"cut short", lines.join("\n"))).unwrap();
        let mut out = WorkerOutput::default();
        out.poll(dir.path());
        assert_eq!(out.done.get("a"), Some(&1));
        assert_eq!(out.emf("DuplicatesSuppressed"), 1);
        assert_eq!(out.count(DUPLICATE), 1);
        assert_eq!(out.unparsed, 0, "the unfinished line is not read yet");
        assert_eq!(out.history["a"], vec![JOB_DONE, DUPLICATE]);
        assert_eq!(out.in_hand(&path), 2, "a batch of 2 just received");
        // Appended lines are read once, from where the last poll stopped.
        std::fs::write(
            &path,
            format!(
                "{}\n{{\"cut short\n{}\n",
                lines.join("\n"),
                lines[0].replace("\"a\"", "\"b\"")
            ),
        )
        .unwrap();
        out.poll(dir.path());
        assert_eq!(out.done.len(), 2);
        assert_eq!(out.count(JOB_DONE), 2);
        assert_eq!(out.unparsed, 1);
        assert_eq!(out.in_hand(&path), 1, "one of the batch is done");
        out.finish(dir.path());
        assert_eq!(out.unparsed, 1);
    }
}
