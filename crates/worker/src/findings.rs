//! Security Hub finding workflow after a job (the mapping rule's `update_finding`).
//!
//! What AWS's own remediation solution does and Cloud Custodian does not: once a job for a
//! Security Hub event is over, set its findings' workflow status with `BatchUpdateFindings`
//! (`RESOLVED` when a policy remediated the resource, `NOTIFIED` when the job failed), with a
//! note naming the job, the policy and where its output went. The decision ([`decide`]) and
//! the note ([`note`]) are pure; [`Findings`] makes the call, in the event's region, with the
//! worker's own credentials. A failed update is logged and never changes how the job ends.

use crate::runner::PolicyRun;
use aws_config::SdkConfig;
use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::config::Region;
use aws_sdk_securityhub::error::DisplayErrorContext;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate,
};
use czero_job::{FindingUpdate, Job, is_region};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The note's `UpdatedBy`.
pub const UPDATED_BY: &str = "custodian-zero";
/// Security Hub's limit on a note's text. Counted in bytes here, which also keeps it within
/// 512 characters.
pub const MAX_NOTE_BYTES: usize = 512;
/// Most finding identifiers one `BatchUpdateFindings` call takes.
pub const MAX_FINDINGS_PER_CALL: usize = 100;

/// What one policy of a finished job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOutcome {
    pub policy: String,
    /// Resources that matched its filters.
    pub matched: usize,
    /// Resources it acted on (at most `matched`).
    pub acted_on: usize,
    /// Where its output went (`s3://…` or a directory).
    pub output: Option<String>,
}

impl PolicyOutcome {
    /// A policy run as the findings see it. `actions_taken` is summed over the actions, so a
    /// resource two actions touched counts twice; the matched count bounds it.
    pub fn from_run(r: &PolicyRun) -> Self {
        PolicyOutcome {
            policy: r.policy.clone(),
            matched: r.resources,
            acted_on: r.actions_taken.min(r.resources),
            output: r.output_location.clone(),
        }
    }
}

/// What happened to a failed job's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Left on the queue: SQS delivers it again.
    Retried,
    /// Copied to the dead-letter queue and deleted.
    DeadLettered,
}

/// How a job ended, as the finding update sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every policy ran and wrote its output; `policies` holds those that ran (not the
    /// skipped ones).
    Done { policies: Vec<PolicyOutcome> },
    /// The job failed; `kind` as in the DLQ's `czero-dead-letter-kind`.
    Failed {
        kind: String,
        reason: String,
        after: AfterFailure,
    },
}

impl JobOutcome {
    /// A finished job's outcome from its runs; skipped policies did not run and are left out.
    pub fn done(runs: &[PolicyRun]) -> Self {
        JobOutcome::Done {
            policies: runs
                .iter()
                .filter(|r| r.skipped.is_none())
                .map(PolicyOutcome::from_run)
                .collect(),
        }
    }

    pub fn failed(kind: &str, reason: &str, after: AfterFailure) -> Self {
        JobOutcome::Failed {
            kind: kind.to_owned(),
            reason: reason.to_owned(),
            after,
        }
    }
}

/// The workflow status to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Resolved,
    Notified,
}

impl Update {
    /// Security Hub's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Update::Resolved => "RESOLVED",
            Update::Notified => "NOTIFIED",
        }
    }

    fn status(self) -> WorkflowStatus {
        match self {
            Update::Resolved => WorkflowStatus::Resolved,
            Update::Notified => WorkflowStatus::Notified,
        }
    }
}

/// Whether, and to what, a job's findings are set.
///
/// - `Off`, or a dry run (which changes nothing, findings included): nothing.
/// - A failed job: `NOTIFIED` (with `resolve` or `notify`).
/// - A policy acted on a resource: `RESOLVED` with `resolve`, `NOTIFIED` with `notify`.
/// - A policy matched a resource but took no action (an audit policy): `NOTIFIED`; the
///   resource is still what the policy looks for, and nothing fixed it.
/// - Nothing matched: nothing. The finding's resource did not match the policy, so the job
///   neither fixed it nor found anything to flag; the finding is left as it is.
pub fn decide(mode: FindingUpdate, dryrun: bool, outcome: &JobOutcome) -> Option<Update> {
    if mode == FindingUpdate::Off || dryrun {
        return None;
    }
    let policies = match outcome {
        JobOutcome::Failed { .. } => return Some(Update::Notified),
        JobOutcome::Done { policies } => policies,
    };
    let acted = policies.iter().any(|p| p.acted_on > 0);
    let matched = policies.iter().any(|p| p.matched > 0);
    match (mode, acted, matched) {
        (FindingUpdate::Resolve, true, _) => Some(Update::Resolved),
        (_, true, _) | (_, false, true) => Some(Update::Notified),
        _ => None,
    }
}

/// The note: the job, and what each policy did with where its output went, or why the job
/// failed and what happens to it next. At most [`MAX_NOTE_BYTES`].
pub fn note(job_id: &str, outcome: &JobOutcome) -> String {
    match outcome {
        JobOutcome::Done { policies } => {
            let parts: Vec<String> = policies
                .iter()
                .filter(|p| p.matched > 0 || p.acted_on > 0)
                .map(|p| {
                    let what = if p.acted_on > 0 {
                        format!("remediated {} resource(s)", p.acted_on)
                    } else {
                        format!("matched {} resource(s) and took no action", p.matched)
                    };
                    match &p.output {
                        Some(o) => format!("policy {} {what}; output {o}", p.policy),
                        None => format!("policy {} {what}", p.policy),
                    }
                })
                .collect();
            let body = if parts.is_empty() {
                "no policy matched a resource".to_owned()
            } else {
                parts.join("; ")
            };
            truncate(
                &format!("custodian-zero job {job_id}: {body}"),
                MAX_NOTE_BYTES,
            )
        }
        JobOutcome::Failed {
            kind,
            reason,
            after,
        } => {
            let head = format!("custodian-zero job {job_id} failed ({kind}): ");
            let tail = match after {
                AfterFailure::Retried => "; will be retried",
                AfterFailure::DeadLettered => "; sent to the dead-letter queue",
            };
            // The worker's reasons start with "job <id>: ", which the head already says.
            let reason = reason
                .strip_prefix(&format!("job {job_id}: "))
                .unwrap_or(reason);
            // Cut the reason, not the tail: what happens next is the part to keep.
            let room = MAX_NOTE_BYTES.saturating_sub(head.len() + tail.len());
            truncate(
                &format!("{head}{}{tail}", truncate(reason, room)),
                MAX_NOTE_BYTES,
            )
        }
    }
}

/// `s` cut to at most `max` bytes on a char boundary, ending with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_owned();
    if max >= ellipsis.len_utf8() {
        out.push(ellipsis);
    }
    out
}

/// A finding, as `BatchUpdateFindings` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingId {
    pub id: String,
    pub product_arn: String,
}

/// Every `detail.findings[]` of the job's event with its `Id` and `ProductArn`, in order,
/// without repeats. A finding missing either is skipped with a warning.
pub fn finding_ids(job: &Job) -> Vec<FindingId> {
    let findings = job
        .event
        .pointer("/detail/findings")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut ids: Vec<FindingId> = Vec::with_capacity(findings.len());
    for (i, f) in findings.iter().enumerate() {
        let field = |k: &str| f.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        match (field("Id"), field("ProductArn")) {
            (Some(id), Some(product_arn)) => {
                let fid = FindingId {
                    id: id.to_owned(),
                    product_arn: product_arn.to_owned(),
                };
                if !ids.contains(&fid) {
                    ids.push(fid);
                }
            }
            _ => tracing::warn!(
                job_id = %job.job_id,
                index = i,
                "finding without Id or ProductArn in the job's event; its workflow is not updated"
            ),
        }
    }
    ids
}

/// Where the findings live: the event's `region` (with cross-region aggregation, the
/// aggregation region), else the job's region; `None` when neither is a region name.
pub fn finding_region(job: &Job) -> Option<String> {
    job.event
        .get("region")
        .and_then(Value::as_str)
        .filter(|r| is_region(r))
        .or_else(|| Some(job.region.as_str()).filter(|r| is_region(r)))
        .map(str::to_owned)
}

#[derive(Debug, thiserror::Error)]
pub enum FindingsError {
    #[error("securityhub:BatchUpdateFindings in {region}: {message}")]
    Call { region: String, message: String },
}

/// A finding Security Hub did not update, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprocessed {
    pub finding: FindingId,
    pub error_code: String,
    pub error_message: String,
}

/// What the calls for one job did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Findings Security Hub reported as updated.
    pub processed: usize,
    pub unprocessed: Vec<Unprocessed>,
    /// Calls that failed (each for up to [`MAX_FINDINGS_PER_CALL`] findings).
    pub errors: Vec<FindingsError>,
}

/// `BatchUpdateFindings` with one client per region, built on first use from the worker's
/// `SdkConfig` (so `AWS_ENDPOINT_URL` applies) with the region overridden.
#[derive(Debug, Clone)]
pub struct Findings {
    sdk: SdkConfig,
    clients: Arc<Mutex<HashMap<String, Client>>>,
}

impl Findings {
    pub fn new(sdk: &SdkConfig) -> Self {
        Findings {
            sdk: sdk.clone(),
            clients: Arc::default(),
        }
    }

    fn client(&self, region: &str) -> Client {
        let mut clients = match self.clients.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_securityhub::config::Builder::from(&self.sdk)
                    .region(Region::new(region.to_owned()))
                    .retry_config(czero_engine::retry_config())
                    .timeout_config(czero_engine::timeout_config())
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    /// After a job: decides from its rule's `update_finding`, and updates every finding of
    /// its event in the event's region, [`MAX_FINDINGS_PER_CALL`] per call. Logs what it did
    /// and never fails: the job's own result stands. `None` when nothing was to be updated.
    pub async fn after_job(
        &self,
        job: &Job,
        dryrun: bool,
        outcome: &JobOutcome,
    ) -> Option<Summary> {
        let mode = job.update_finding;
        let Some(update) = decide(mode, dryrun, outcome) else {
            if mode != FindingUpdate::Off {
                let why = if dryrun {
                    "a dry run changes nothing, findings included"
                } else {
                    "no policy matched the finding's resource"
                };
                tracing::info!(job_id = %job.job_id, update_finding = ?mode, reason = why, "finding workflow left as it is");
            }
            return None;
        };
        let Some(region) = finding_region(job) else {
            let event_region = job.event.get("region").and_then(Value::as_str);
            tracing::warn!(
                job_id = %job.job_id,
                event_region = event_region.unwrap_or_default(),
                job_region = %job.region,
                "no region to update the findings in; their workflow is not updated"
            );
            return None;
        };
        let ids = finding_ids(job);
        if ids.is_empty() {
            tracing::warn!(job_id = %job.job_id, "the job's event names no finding; no workflow to update");
            return None;
        }
        let text = note(&job.job_id, outcome);
        Some(self.update(&job.job_id, &region, &ids, update, &text).await)
    }

    /// Sets `update` with the note `text` on `ids` in `region`, in calls of at most
    /// [`MAX_FINDINGS_PER_CALL`]; a failed call is logged and the next one still made.
    pub async fn update(
        &self,
        job_id: &str,
        region: &str,
        ids: &[FindingId],
        update: Update,
        text: &str,
    ) -> Summary {
        let client = self.client(region);
        let mut summary = Summary::default();
        for chunk in ids.chunks(MAX_FINDINGS_PER_CALL) {
            match call(&client, region, chunk, update, text).await {
                Ok((processed, unprocessed)) => {
                    summary.processed += processed;
                    summary.unprocessed.extend(unprocessed);
                }
                Err(e) => {
                    tracing::warn!(job_id, region, findings = chunk.len(), status = update.as_str(), error = %e, "could not update the findings' workflow; the job's result stands");
                    summary.errors.push(e);
                }
            }
        }
        for u in &summary.unprocessed {
            tracing::warn!(
                job_id,
                region,
                finding_id = %u.finding.id,
                product_arn = %u.finding.product_arn,
                error_code = %u.error_code,
                error_message = %u.error_message,
                "Security Hub did not update a finding (UnprocessedFindings)"
            );
        }
        if summary.processed > 0 {
            tracing::info!(
                job_id,
                region,
                status = update.as_str(),
                count = summary.processed,
                unprocessed = summary.unprocessed.len(),
                "finding workflow updated"
            );
        }
        summary
    }
}

/// One `BatchUpdateFindings`: (findings processed, those not processed with the reason).
async fn call(
    client: &Client,
    region: &str,
    ids: &[FindingId],
    update: Update,
    text: &str,
) -> Result<(usize, Vec<Unprocessed>), FindingsError> {
    let identifiers: Vec<AwsSecurityFindingIdentifier> = ids
        .iter()
        .map(|f| {
            AwsSecurityFindingIdentifier::builder()
                .id(&f.id)
                .product_arn(&f.product_arn)
                .build()
        })
        .collect();
    let out = client
        .batch_update_findings()
        .set_finding_identifiers(Some(identifiers))
        .workflow(WorkflowUpdate::builder().status(update.status()).build())
        .note(
            NoteUpdate::builder()
                .text(text)
                .updated_by(UPDATED_BY)
                .build(),
        )
        .send()
        .await
        .map_err(|e| FindingsError::Call {
            region: region.to_owned(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
    let unprocessed = out
        .unprocessed_findings()
        .iter()
        .map(|u| {
            let f = u.finding_identifier();
            Unprocessed {
                finding: FindingId {
                    id: f.and_then(|f| f.id()).unwrap_or_default().to_owned(),
                    product_arn: f
                        .and_then(|f| f.product_arn())
                        .unwrap_or_default()
                        .to_owned(),
                },
                error_code: u.error_code().unwrap_or_default().to_owned(),
                error_message: u.error_message().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    Ok((out.processed_findings().len(), unprocessed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(matched: usize, acted_on: usize) -> PolicyOutcome {
        PolicyOutcome {
            policy: "s3-hub-public".into(),
            matched,
            acted_on,
            output: Some("s3://out/output/j1/s3-hub-public".into()),
        }
    }

    fn done(policies: Vec<PolicyOutcome>) -> JobOutcome {
        JobOutcome::Done { policies }
    }

    /// Every mode, dry run or not, and every kind of outcome.
    #[test]
    fn decide_covers_every_combination() {
        use FindingUpdate::{Notify, Off, Resolve};
        use Update::{Notified, Resolved};
        let outcomes: Vec<(&str, JobOutcome)> = vec![
            ("no policy ran", done(vec![])),
            ("matched nothing", done(vec![policy(0, 0)])),
            ("matched, no action", done(vec![policy(2, 0)])),
            ("acted", done(vec![policy(1, 1)])),
            (
                "one matched nothing, another acted",
                done(vec![policy(0, 0), policy(3, 2)]),
            ),
            (
                "failed, retried",
                JobOutcome::failed("Retryable", "SlowDown", AfterFailure::Retried),
            ),
            (
                "failed, dead-lettered",
                JobOutcome::failed("InvalidPolicy", "bad", AfterFailure::DeadLettered),
            ),
        ];
        // (mode, outcome) -> expected when not a dry run, in the order of `outcomes`.
        let table: [(FindingUpdate, [Option<Update>; 7]); 3] = [
            (Off, [None; 7]),
            (
                Resolve,
                [
                    None,
                    None,
                    Some(Notified),
                    Some(Resolved),
                    Some(Resolved),
                    Some(Notified),
                    Some(Notified),
                ],
            ),
            (
                Notify,
                [
                    None,
                    None,
                    Some(Notified),
                    Some(Notified),
                    Some(Notified),
                    Some(Notified),
                    Some(Notified),
                ],
            ),
        ];
        for (mode, wants) in table {
            for ((name, outcome), want) in outcomes.iter().zip(wants) {
                assert_eq!(decide(mode, false, outcome), want, "{mode:?}, {name}");
                assert_eq!(
                    decide(mode, true, outcome),
                    None,
                    "{mode:?}, {name}, dry run"
                );
            }
        }
    }

    #[test]
    fn done_leaves_skipped_policies_out_and_bounds_acted_on_by_matched() {
        let run = |skipped: Option<&str>, resources, actions_taken| PolicyRun {
            policy: "p".into(),
            resource_type: "aws.s3".into(),
            resources,
            actions_taken,
            duration: Default::default(),
            resource_time: None,
            action_time: None,
            output_location: Some("s3://o/p".into()),
            executor: "native",
            skipped: skipped.map(str::to_owned),
        };
        let o = JobOutcome::done(&[run(Some("not subscribed"), 5, 5), run(None, 1, 3)]);
        assert_eq!(
            o,
            done(vec![PolicyOutcome {
                policy: "p".into(),
                matched: 1,
                acted_on: 1,
                output: Some("s3://o/p".into())
            }])
        );
    }

    #[test]
    fn notes_name_the_job_the_policy_and_the_output_or_the_failure() {
        assert_eq!(
            note("j1", &done(vec![policy(0, 0), policy(2, 2)])),
            "custodian-zero job j1: policy s3-hub-public remediated 2 resource(s); output s3://out/output/j1/s3-hub-public"
        );
        let mut two = vec![policy(1, 0), policy(1, 1)];
        two[1].policy = "other".into();
        two[1].output = None;
        assert_eq!(
            note("j1", &done(two)),
            "custodian-zero job j1: policy s3-hub-public matched 1 resource(s) and took no action; \
             output s3://out/output/j1/s3-hub-public; policy other remediated 1 resource(s)"
        );
        assert_eq!(
            note(
                "j1",
                &JobOutcome::failed(
                    "NeedsFullImage",
                    "job j1: needs the full worker image",
                    AfterFailure::DeadLettered
                )
            ),
            "custodian-zero job j1 failed (NeedsFullImage): needs the full worker image; sent to the dead-letter queue"
        );
        assert_eq!(
            note(
                "j1",
                &JobOutcome::failed("Retryable", "SlowDown", AfterFailure::Retried)
            ),
            "custodian-zero job j1 failed (Retryable): SlowDown; will be retried"
        );
    }

    #[test]
    fn long_notes_are_cut_on_a_char_boundary_within_the_limit() {
        // Multi-byte characters at every offset around the cut.
        for pad in 0..4 {
            let reason = format!("{}{}", "x".repeat(pad), "é€😀".repeat(200));
            for after in [AfterFailure::Retried, AfterFailure::DeadLettered] {
                let n = note("j1", &JobOutcome::failed("PolicyError", &reason, after));
                assert!(n.len() <= MAX_NOTE_BYTES, "{} bytes", n.len());
                assert!(n.chars().count() <= 512);
                assert!(n.contains('…'), "{n}");
                let tail = match after {
                    AfterFailure::Retried => "; will be retried",
                    AfterFailure::DeadLettered => "; sent to the dead-letter queue",
                };
                assert!(n.ends_with(tail), "the tail survives: {n}");
            }
            let mut many: Vec<PolicyOutcome> = (0..40).map(|_| policy(1, 1)).collect();
            many[0].policy = format!("{}ü", "p".repeat(pad));
            let n = note("j1", &done(many));
            assert!(n.len() <= MAX_NOTE_BYTES && n.ends_with('…'), "{n}");
        }
        let short = note("j1", &done(vec![policy(1, 1)]));
        assert!(!short.contains('…'));
    }

    fn job(event: Value, region: &str) -> Job {
        Job {
            version: czero_job::JOB_VERSION,
            job_id: "j1".into(),
            event_id: "e1".into(),
            source: "aws.securityhub".into(),
            detail_type: "Security Hub Findings - Imported".into(),
            account: "444455556666".into(),
            region: region.into(),
            resource_ids: vec![],
            policies: vec![],
            received_at: chrono::DateTime::default(),
            trace_id: None,
            event,
            update_finding: FindingUpdate::Resolve,
        }
    }

    #[test]
    fn finding_ids_keep_complete_findings_once_in_order() {
        let p = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";
        let ev = json!({"region": "eu-west-1", "detail": {"findings": [
            {"Id": "f-1", "ProductArn": p},
            {"Id": "f-2"},
            {"ProductArn": p},
            {"Id": "", "ProductArn": p},
            {"Id": 7, "ProductArn": p},
            "not an object",
            {"Id": "f-3", "ProductArn": p},
            {"Id": "f-1", "ProductArn": p},
        ]}});
        let got: Vec<String> = finding_ids(&job(ev, "us-east-1"))
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(got, ["f-1", "f-3"]);
        assert!(finding_ids(&job(json!({"detail": {}}), "us-east-1")).is_empty());
        assert!(finding_ids(&job(json!({"detail": {"findings": {}}}), "us-east-1")).is_empty());
    }

    #[test]
    fn the_region_is_the_envelope_s_then_the_job_s() {
        let r = |ev: Value, job_region: &str| finding_region(&job(ev, job_region));
        assert_eq!(
            r(json!({"region": "eu-west-1"}), "us-east-1").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(r(json!({}), "us-east-1").as_deref(), Some("us-east-1"));
        assert_eq!(
            r(json!({"region": "../evil"}), "us-east-1").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(r(json!({"region": 3}), "").as_deref(), None);
    }
}
