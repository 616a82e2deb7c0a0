//! Putting jobs on the queue: message attributes, the claim check for large jobs, and batch
//! sends whose partial failures are reported, never swallowed.

use crate::aws::{Attr, Aws, AwsError, BatchFailure, OutMessage};
use crate::config::Config;
use czero_job::{Envelope, Job, JobError, MAX_INLINE_BYTES, attributes};

/// Room left for message attributes, which count towards SQS's size limit.
const ATTRIBUTE_ALLOWANCE: usize = 2 * 1024;

/// SendMessageBatch takes at most 10 entries.
pub const BATCH_LIMIT: usize = 10;

/// One job on the queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    pub job_id: String,
    pub message_id: String,
    /// `s3://bucket/key` when the job went through the claim check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_check: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job {job_id}: encoding: {source}")]
    Encode { job_id: String, source: JobError },
    #[error("job {job_id}: storing the claim check s3://{bucket}/{key}: {source}")]
    ClaimCheck {
        job_id: String,
        bucket: String,
        key: String,
        source: AwsError,
    },
    #[error("sending jobs {job_ids:?}: {source}{}", stored_note(.claim_checks))]
    Send {
        job_ids: Vec<String>,
        /// Claim-check objects written before the send failed (orphans until retried).
        claim_checks: Vec<String>,
        source: AwsError,
    },
    /// Several jobs, not all queued. Names every job: queued (with its message id), refused
    /// (with SQS's code), and never attempted because an earlier failure stopped the send.
    #[error("{}", describe_partial(.sent, .failed, .unsent))]
    Partial {
        sent: Vec<Queued>,
        failed: Vec<BatchFailure>,
        /// Job ids not sent because the send stopped at the first failure.
        unsent: Vec<String>,
    },
}

fn describe_partial(sent: &[Queued], failed: &[BatchFailure], unsent: &[String]) -> String {
    let total = sent.len() + failed.len() + unsent.len();
    let sent_list = sent
        .iter()
        .map(|q| format!("{} (message {})", q.job_id, q.message_id))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!(
        "jobs partly queued: {} of {total} sent [{sent_list}]; {} failed [{}]",
        sent.len(),
        failed.len(),
        describe_failures(failed)
    );
    if !unsent.is_empty() {
        s.push_str(&format!(
            "; {} not attempted [{}]",
            unsent.len(),
            unsent.join(", ")
        ));
    }
    s
}

fn stored_note(c: &[String]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!(" (claim checks already stored: {})", c.join(", "))
    }
}

fn describe_failures(f: &[BatchFailure]) -> String {
    f.iter()
        .map(|b| format!("{} {}: {}", b.id, b.code, b.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl QueueError {
    pub fn retryable(&self) -> bool {
        match self {
            QueueError::Encode { .. } => false,
            QueueError::ClaimCheck { source, .. } | QueueError::Send { source, .. } => {
                source.retryable
            }
            QueueError::Partial { failed, .. } => failed.iter().any(|f| !f.sender_fault),
        }
    }
}

/// The message for `job`: inline, or (when too large) a claim check after storing the job
/// in S3. Returns the message and the claim-check location, if any.
pub async fn prepare<A: Aws>(
    aws: &A,
    cfg: &Config,
    job: &Job,
) -> Result<(OutMessage, Option<String>), QueueError> {
    let enc = |e| QueueError::Encode {
        job_id: job.job_id.clone(),
        source: e,
    };
    let inline = Envelope::Inline { job: job.clone() }
        .encode()
        .map_err(enc)?;
    let (body, claim) = if inline.len() + ATTRIBUTE_ALLOWANCE <= MAX_INLINE_BYTES {
        (inline, None)
    } else {
        // Why a claim check: SQS refuses bodies over the queue's MaximumMessageSize, and a
        // CloudTrail or Security Hub event can approach EventBridge's own 256 KB limit.
        let bucket = cfg.claim_check_bucket.clone();
        let key = job.claim_check_key();
        let bytes = serde_json::to_vec(job).map_err(|e| enc(JobError::Json(e)))?;
        aws.put_object(&bucket, &key, bytes)
            .await
            .map_err(|source| QueueError::ClaimCheck {
                job_id: job.job_id.clone(),
                bucket: bucket.clone(),
                key: key.clone(),
                source,
            })?;
        let env = Envelope::ClaimCheck {
            version: job.version,
            job_id: job.job_id.clone(),
            bucket: bucket.clone(),
            key: key.clone(),
        };
        (
            env.encode().map_err(enc)?,
            Some(format!("s3://{bucket}/{key}")),
        )
    };
    let mut attrs = vec![
        Attr {
            name: attributes::VERSION,
            data_type: "Number",
            value: job.version.to_string(),
        },
        Attr {
            name: attributes::EVENT_SOURCE,
            data_type: "String",
            value: if job.source.is_empty() {
                "unknown".into()
            } else {
                job.source.clone()
            },
        },
        Attr {
            name: attributes::POLICY_COUNT,
            data_type: "Number",
            value: job.policies.len().to_string(),
        },
    ];
    if claim.is_some() {
        attrs.push(Attr {
            name: attributes::CLAIM_CHECK,
            data_type: "String",
            value: "true".into(),
        });
    }
    if let Some(t) = job.trace_id.as_ref().filter(|t| !t.is_empty()) {
        attrs.push(Attr {
            name: attributes::TRACE_ID,
            data_type: "String",
            value: t.clone(),
        });
    }
    Ok((
        OutMessage {
            id: job.job_id.clone(),
            body,
            attributes: attrs,
        },
        claim,
    ))
}

/// Sends `jobs`: one SendMessage for a single job, SendMessageBatch in tens otherwise.
/// Stops at the first failure. A single job fails with its own error; several fail with
/// [`QueueError::Partial`], which names what was queued, what failed and what was never
/// attempted, so a half-sent batch is never mistaken for success.
pub async fn send_jobs<A: Aws>(
    aws: &A,
    cfg: &Config,
    jobs: &[Job],
) -> Result<Vec<Queued>, QueueError> {
    if let [job] = jobs {
        let (msg, claim) = prepare(aws, cfg, job).await?;
        let message_id = aws
            .send_message(&cfg.queue_url, &msg)
            .await
            .map_err(|source| QueueError::Send {
                job_ids: vec![msg.id.clone()],
                claim_checks: claim.iter().cloned().collect(),
                source,
            })?;
        return Ok(vec![Queued {
            job_id: msg.id,
            message_id,
            claim_check: claim,
        }]);
    }
    let mut queued = Vec::with_capacity(jobs.len());
    for (n, chunk) in jobs.chunks(BATCH_LIMIT).enumerate() {
        let after_chunk = || {
            jobs[(n * BATCH_LIMIT + chunk.len()).min(jobs.len())..]
                .iter()
                .map(|j| j.job_id.clone())
        };
        let mut prepared = Vec::with_capacity(chunk.len());
        for (i, job) in chunk.iter().enumerate() {
            match prepare(aws, cfg, job).await {
                Ok(p) => prepared.push(p),
                Err(e) => {
                    let unsent = prepared
                        .iter()
                        .map(|(m, _): &(OutMessage, _)| m.id.clone())
                        .chain(chunk[i + 1..].iter().map(|j| j.job_id.clone()))
                        .chain(after_chunk())
                        .collect();
                    return Err(QueueError::Partial {
                        sent: queued,
                        failed: vec![BatchFailure {
                            id: job.job_id.clone(),
                            code: "Prepare".into(),
                            message: e.to_string(),
                            sender_fault: !e.retryable(),
                        }],
                        unsent,
                    });
                }
            }
        }
        let msgs: Vec<OutMessage> = prepared.iter().map(|(m, _)| m.clone()).collect();
        let out = match aws.send_message_batch(&cfg.queue_url, &msgs).await {
            Ok(o) => o,
            Err(source) => {
                // The whole request failed: every entry of this chunk failed with it.
                let failed = msgs
                    .iter()
                    .map(|m| BatchFailure {
                        id: m.id.clone(),
                        code: source.op.into(),
                        message: source.message.clone(),
                        sender_fault: !source.retryable,
                    })
                    .collect();
                return Err(QueueError::Partial {
                    sent: queued,
                    failed,
                    unsent: after_chunk().collect(),
                });
            }
        };
        for (id, message_id) in &out.sent {
            let claim_check = prepared
                .iter()
                .find(|(m, _)| &m.id == id)
                .and_then(|(_, c)| c.clone());
            queued.push(Queued {
                job_id: id.clone(),
                message_id: message_id.clone(),
                claim_check,
            });
        }
        // An entry SQS neither accepted nor refused is a failure too.
        let mut failed = out.failed.clone();
        for m in &msgs {
            if !out.sent.iter().any(|(id, _)| id == &m.id) && !failed.iter().any(|f| f.id == m.id) {
                failed.push(BatchFailure {
                    id: m.id.clone(),
                    code: "Missing".into(),
                    message: "not in the SendMessageBatch response".into(),
                    sender_fault: false,
                });
            }
        }
        if !failed.is_empty() {
            return Err(QueueError::Partial {
                sent: queued,
                failed,
                unsent: after_chunk().collect(),
            });
        }
    }
    Ok(queued)
}
