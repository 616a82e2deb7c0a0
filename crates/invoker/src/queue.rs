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
    #[error("batch partly sent: {} queued ({:?}), {} failed: {}", .sent.len(), .sent.iter().map(|q| &q.job_id).collect::<Vec<_>>(), .failed.len(), describe_failures(.failed))]
    Partial {
        sent: Vec<Queued>,
        failed: Vec<BatchFailure>,
    },
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
/// Stops at the first failure; the error lists what was already queued.
pub async fn send_jobs<A: Aws>(
    aws: &A,
    cfg: &Config,
    jobs: &[Job],
) -> Result<Vec<Queued>, QueueError> {
    let mut queued = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(BATCH_LIMIT) {
        let mut prepared = Vec::with_capacity(chunk.len());
        for job in chunk {
            match prepare(aws, cfg, job).await {
                Ok(p) => prepared.push(p),
                Err(e) if queued.is_empty() => return Err(e),
                Err(e) => return Err(partial(queued, &job.job_id, &e)),
            }
        }
        let claims: Vec<String> = prepared.iter().filter_map(|(_, c)| c.clone()).collect();
        if let [(msg, claim)] = prepared.as_slice()
            && jobs.len() == 1
        {
            let message_id = aws
                .send_message(&cfg.queue_url, msg)
                .await
                .map_err(|source| QueueError::Send {
                    job_ids: vec![msg.id.clone()],
                    claim_checks: claims.clone(),
                    source,
                })?;
            queued.push(Queued {
                job_id: msg.id.clone(),
                message_id,
                claim_check: claim.clone(),
            });
            continue;
        }
        let msgs: Vec<OutMessage> = prepared.iter().map(|(m, _)| m.clone()).collect();
        let out = match aws.send_message_batch(&cfg.queue_url, &msgs).await {
            Ok(o) => o,
            Err(source) if queued.is_empty() => {
                return Err(QueueError::Send {
                    job_ids: msgs.iter().map(|m| m.id.clone()).collect(),
                    claim_checks: claims,
                    source,
                });
            }
            Err(source) => {
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
            });
        }
    }
    Ok(queued)
}

fn partial(sent: Vec<Queued>, job_id: &str, e: &QueueError) -> QueueError {
    QueueError::Partial {
        sent,
        failed: vec![BatchFailure {
            id: job_id.into(),
            code: "Prepare".into(),
            message: e.to_string(),
            sender_fault: !e.retryable(),
        }],
    }
}
