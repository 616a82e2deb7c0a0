//! The handler: parse the event, skip the worker's own calls, select policies from the
//! (cached) mapping, pin and read them (cached by ETag), keep those that would act on the
//! event, queue the job, optionally wake the service. Generic over [`Aws`] so tests and
//! benches use fakes.

use crate::aws::{Aws, AwsError, Fetched};
use crate::config::{Config, DEFAULT_POLICY_KEY};
use crate::event::{self, EventError, Kind, Parsed, SecurityEvent};
use crate::mapping::{Mapping, MappingCache, MappingError, Selection};
use crate::policies::{self, CachedPolicy, PolicyCache};
use crate::queue::{self, QueueError, Queued};
use crate::screen::{self, Candidate};
use crate::wake::{self, WakeOutcome};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use czero_job::{FindingUpdate, JOB_VERSION, Job, PolicyRef};
use czero_policy::PolicyFile;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("fetching the policy mapping s3://{bucket}/{key}: {source}")]
    MappingFetch {
        bucket: String,
        key: String,
        source: AwsError,
    },
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// Reading a selected (or, when a mapping is loaded, named) policy failed;
    /// `selected_by` says which mapping rule(s), or the default, chose or named it.
    #[error("{}", describe_policy_error(.bucket, .key, .selected_by, .source))]
    Policy {
        bucket: String,
        key: String,
        selected_by: String,
        source: AwsError,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

fn describe_policy_error(bucket: &str, key: &str, selected_by: &str, e: &AwsError) -> String {
    if e.not_found {
        format!("policy s3://{bucket}/{key}, {selected_by}, does not exist ({e})")
    } else {
        format!("checking policy s3://{bucket}/{key}, {selected_by}: {e}")
    }
}

impl InvokeError {
    /// Whether Lambda's retry can help. A mapping that fails validation (its own rules, or a
    /// policy file it routes to: missing, too large, unparseable, or scanning every resource)
    /// counts as retryable: the event is fine and will route once the mapping is fixed. So does a missing policy
    /// file: the usual cause is a deployment in progress (the mapping uploaded before the
    /// policy it names), which Lambda's two asynchronous retries may outlast; after them the
    /// event is kept by the on-failure destination for a replay once the file is there.
    pub fn retryable(&self) -> bool {
        match self {
            InvokeError::Event(_) => false,
            InvokeError::MappingFetch { source, .. } | InvokeError::Policy { source, .. } => {
                source.retryable || source.not_found
            }
            InvokeError::Mapping(_) => true,
            InvokeError::Queue(q) => q.retryable(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            InvokeError::Event(_) => "InvalidEvent",
            InvokeError::MappingFetch { .. } => "MappingFetch",
            InvokeError::Mapping(_) => "InvalidMapping",
            InvokeError::Policy { source, .. } if source.not_found => "PolicyMissing",
            InvokeError::Policy { .. } => "PolicyFetch",
            InvokeError::Queue(_) => "Queue",
        }
    }
}

impl From<InvokeError> for Diagnostic {
    fn from(e: InvokeError) -> Diagnostic {
        let class = if e.retryable() {
            "Retryable"
        } else {
            "Permanent"
        };
        Diagnostic {
            error_type: format!("czero.{class}.{}", e.kind()),
            error_message: e.to_string(),
        }
    }
}

/// What one event led to (the Lambda's response, and what `czero invoke` prints).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    Queued {
        job: Box<Job>,
        queued: Queued,
        rules: Vec<String>,
        defaulted: bool,
        #[serde(flatten)]
        wake: WakeOutcome,
    },
    Skipped {
        event_id: String,
        reason: String,
    },
    /// A Security Hub event whose findings span several (account, region) pairs: one
    /// outcome per pair, each job acting in its own account and region.
    Split {
        event_id: String,
        parts: Vec<Outcome>,
    },
}

/// Counts kept for the life of the execution environment (logged with each outcome).
#[derive(Debug, Default)]
pub struct Counters {
    pub queued: AtomicU64,
    pub skipped: AtomicU64,
}

/// The handler's state, built once per cold start.
#[derive(Debug)]
pub struct Invoker<A> {
    pub aws: A,
    pub config: Config,
    pub cache: MappingCache,
    pub policies: PolicyCache,
    pub counters: Counters,
}

/// A selected policy file: the version the job pins, and its policies as parsed.
#[derive(Debug, Clone)]
pub struct Selected {
    pub pin: PolicyRef,
    pub file: Arc<PolicyFile>,
}

/// Policy files already pinned in this invocation, by key.
pub type Seen = HashMap<String, Selected>;

impl<A: Aws> Invoker<A> {
    pub fn new(aws: A, config: Config) -> Invoker<A> {
        Invoker {
            aws,
            config,
            cache: MappingCache::default(),
            policies: PolicyCache::default(),
            counters: Counters::default(),
        }
    }

    /// The Lambda entry point.
    pub async fn handle(
        &self,
        ev: LambdaEvent<EventBridgeEvent<Value>>,
    ) -> Result<Outcome, Diagnostic> {
        let raw = serde_json::to_value(&ev.payload).map_err(|e| Diagnostic {
            error_type: "czero.Permanent.InvalidEvent".into(),
            error_message: format!("re-encoding the event: {e}"),
        })?;
        let trace = ev.context.xray_trace_id.clone();
        let parsed = event::parse_event(ev.payload, raw).map_err(InvokeError::from)?;
        self.process(parsed, trace).await.map_err(|e| {
            tracing::error!(error = %e, retryable = e.retryable(), "invocation failed");
            Diagnostic::from(e)
        })
    }

    fn mapping_origin(&self) -> String {
        format!(
            "s3://{}/{}",
            self.config.policy_bucket, self.config.mapping_key
        )
    }

    /// The mapping, from the cache unless its ETag changed. A new mapping is loaded with
    /// every policy file it can send events to (read unless cached at the same ETag), and
    /// rejected when one does not parse, is too large, or holds a policy that scans every
    /// resource of its type. Files read here are pinned in `seen`.
    pub async fn mapping(&self, seen: &mut Seen) -> Result<Arc<Mapping>, InvokeError> {
        let (bucket, key) = (&self.config.policy_bucket, &self.config.mapping_key);
        let cached = self.cache.get();
        let etag = cached.as_ref().and(self.cache.etag());
        let fetched = self
            .aws
            .get_object(bucket, key, etag.as_deref())
            .await
            .map_err(|source| InvokeError::MappingFetch {
                bucket: bucket.clone(),
                key: key.clone(),
                source,
            })?;
        match (fetched, cached) {
            (Fetched::NotModified, Some(m)) => Ok(m),
            (Fetched::NotModified, None) => Err(InvokeError::MappingFetch {
                bucket: bucket.clone(),
                key: key.clone(),
                source: AwsError {
                    op: "s3:GetObject",
                    message: "304 Not Modified without a cached copy".into(),
                    retryable: true,
                    not_found: false,
                },
            }),
            (Fetched::Object { body, etag, .. }, _) => {
                let m = Mapping::parse(&self.mapping_origin(), &body)?;
                self.load_policies(&m, seen).await?;
                tracing::info!(
                    rules = m.rules.len(),
                    policy_files = seen.len(),
                    etag = etag.as_deref().unwrap_or(""),
                    "policy mapping loaded"
                );
                Ok(self.cache.store(etag, m))
            }
        }
    }

    /// Reads (concurrently) and checks every policy file `m` can send events to.
    async fn load_policies(&self, m: &Mapping, seen: &mut Seen) -> Result<(), InvokeError> {
        let default = &self.config.default_policy_key;
        let origin = self.mapping_origin();
        let keys = m.keys(default);
        let reads = keys.iter().map(|k| {
            let rules: Vec<String> = m
                .rules
                .iter()
                .filter(|r| r.policies.contains(k))
                .map(|r| format!("`{}`", r.name))
                .collect();
            let mut named_by = Vec::new();
            if !rules.is_empty() {
                named_by.push(format!("mapping rule {} in {origin}", rules.join(", ")));
            }
            if k == default {
                named_by.push(format!("the default policy ({DEFAULT_POLICY_KEY})"));
            }
            self.fetch_policy(m, k, format!("named by {}", named_by.join(" and by ")))
        });
        let files = futures::future::join_all(reads).await;
        for (key, file) in keys.into_iter().zip(files) {
            let file = file?;
            if let Some(e) = m
                .scan_policies(&origin, default, &key, &file.file)
                .into_iter()
                .next()
            {
                return Err(e.into());
            }
            seen.insert(key, file);
        }
        Ok(())
    }

    /// GetObject of a policy file (conditional on the cached ETag), parsed and cached; the
    /// pin is the version read. `by` says who selected or named the key, for errors.
    async fn fetch_policy(
        &self,
        mapping: &Mapping,
        key: &str,
        by: String,
    ) -> Result<Selected, InvokeError> {
        let bucket = &self.config.policy_bucket;
        let fail = |source: AwsError| InvokeError::Policy {
            bucket: bucket.clone(),
            key: key.to_owned(),
            selected_by: by.clone(),
            source,
        };
        let cached = self.policies.get(key);
        let fetched = self
            .aws
            .get_object(bucket, key, cached.as_ref().map(|c| c.etag.as_str()))
            .await
            .map_err(fail)?;
        let (etag, version_id, file) = match (fetched, cached) {
            (Fetched::NotModified, Some(c)) => (Some(c.etag), c.version_id, c.file),
            (Fetched::NotModified, None) => {
                return Err(fail(AwsError {
                    op: "s3:GetObject",
                    message: "304 Not Modified without a cached copy".into(),
                    retryable: true,
                    not_found: false,
                }));
            }
            (
                Fetched::Object {
                    body,
                    etag,
                    version_id,
                },
                _,
            ) => {
                let file = policies::parse_policy(&format!("s3://{bucket}/{key}"), &body).map_err(
                    |source| MappingError::PolicyFile {
                        origin: self.mapping_origin(),
                        by: mapping.routes_to(key, &self.config.default_policy_key),
                        key: key.to_owned(),
                        source,
                    },
                )?;
                let file = Arc::new(file);
                if let Some(e) = &etag {
                    self.policies.store(
                        key,
                        CachedPolicy {
                            etag: e.clone(),
                            version_id: version_id.clone(),
                            file: file.clone(),
                        },
                    );
                }
                (etag, version_id, file)
            }
        };
        Ok(Selected {
            pin: PolicyRef {
                key: key.to_owned(),
                etag,
                version_id,
            },
            file,
        })
    }

    /// Builds the job for a parsed event, naming `policies`; `update_finding` (the
    /// selection's) is kept for Security Hub events only.
    pub fn job(
        &self,
        e: &SecurityEvent,
        policies: Vec<PolicyRef>,
        trace_id: Option<String>,
        update_finding: FindingUpdate,
    ) -> Job {
        Job {
            version: JOB_VERSION,
            job_id: job_id(e),
            event_id: e.id.clone(),
            source: e.source.clone(),
            detail_type: e.detail_type.clone(),
            account: e.target_account.clone(),
            region: e.target_region.clone(),
            resource_ids: e.resource_ids.clone(),
            policies,
            received_at: chrono::Utc::now(),
            trace_id: trace_id.filter(|t| !t.is_empty()),
            event: e.raw.clone(),
            update_finding: if e.kind == Kind::SecurityHub {
                update_finding
            } else {
                FindingUpdate::Off
            },
        }
    }

    /// Pins each selected policy to the object HeadObject finds now (ETag, and version id
    /// when the bucket is versioned), so the worker runs what was selected even if the file
    /// changes while the job waits, and returns its policies: the cached parse when the ETag
    /// is the one cached, else the file read again (GetObject), checked like a new mapping,
    /// and pinned at the version read. `seen` holds files already pinned in this call.
    ///
    /// HeadObject runs on every invocation, like the mapping's revalidation: a pin cached
    /// across invocations would send workers to a superseded version after an edit, and one
    /// HEAD per selected policy is cheap next to the event's own latency.
    pub async fn pin(
        &self,
        mapping: &Mapping,
        sel: &Selection,
        seen: &mut Seen,
    ) -> Result<Vec<Selected>, InvokeError> {
        let bucket = &self.config.policy_bucket;
        let default = &self.config.default_policy_key;
        let mut pinned = Vec::with_capacity(sel.policies.len());
        for key in &sel.policies {
            if let Some(p) = seen.get(key) {
                pinned.push(p.clone());
                continue;
            }
            let by = format!("selected by {}", self.selected_by(mapping, sel, key));
            let meta =
                self.aws
                    .head_object(bucket, key)
                    .await
                    .map_err(|source| InvokeError::Policy {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        selected_by: by.clone(),
                        source,
                    })?;
            if let Some(size) = meta.size {
                policies::check_size(&format!("s3://{bucket}/{key}"), size).map_err(|source| {
                    MappingError::PolicyFile {
                        origin: self.mapping_origin(),
                        by: mapping.routes_to(key, default),
                        key: key.clone(),
                        source,
                    }
                })?;
            }
            let selected = match self.policies.get(key) {
                Some(c) if meta.etag.as_deref() == Some(c.etag.as_str()) => Selected {
                    pin: PolicyRef {
                        key: key.clone(),
                        etag: meta.etag,
                        version_id: meta.version_id,
                    },
                    file: c.file,
                },
                _ => {
                    let s = self.fetch_policy(mapping, key, by).await?;
                    let origin = self.mapping_origin();
                    if let Some(e) = mapping
                        .scan_policies(&origin, default, key, &s.file)
                        .into_iter()
                        .next()
                    {
                        return Err(e.into());
                    }
                    s
                }
            };
            seen.insert(key.clone(), selected.clone());
            pinned.push(selected);
        }
        Ok(pinned)
    }

    /// Which rule (or the default) put `key` in the selection, for error messages.
    fn selected_by(&self, mapping: &Mapping, sel: &Selection, key: &str) -> String {
        if sel.defaulted {
            return format!(
                "the default policy ({DEFAULT_POLICY_KEY}; no rule in {} matched)",
                self.mapping_origin()
            );
        }
        let rules: Vec<String> = mapping
            .rules
            .iter()
            .filter(|r| sel.rules.contains(&r.name) && r.policies.iter().any(|p| p == key))
            .map(|r| format!("`{}`", r.name))
            .collect();
        let origin = self.mapping_origin();
        if rules.is_empty() {
            format!("the mapping {origin}")
        } else {
            format!("mapping rule {} in {origin}", rules.join(", "))
        }
    }

    /// The excluded principal that caused a CloudTrail event, as a skip reason.
    fn own_call(&self, e: &SecurityEvent) -> Option<String> {
        if e.kind != Kind::CloudTrail {
            return None;
        }
        screen::caused_by(&e.raw, &self.config.exclude_principals)
            .map(|r| format!("caused by custodian-zero's own worker ({})", r.arn))
    }

    /// Selects and pins the policies for `e` and keeps those that would act on it
    /// (`Err` is the reason to skip the event).
    async fn route(
        &self,
        e: &SecurityEvent,
        mapping: &Mapping,
        seen: &mut Seen,
    ) -> Result<Result<(Selection, Vec<PolicyRef>), String>, InvokeError> {
        let sel = mapping.select(e, &self.config.default_policy_key);
        let selected = self.pin(mapping, &sel, seen).await?;
        let candidates: Vec<Candidate<'_>> = selected
            .iter()
            .map(|s| Candidate {
                key: &s.pin.key,
                file: &s.file,
            })
            .collect();
        Ok(screen::keep(&e.raw, &candidates).map(|kept| {
            let pins = kept.into_iter().map(|i| selected[i].pin.clone()).collect();
            (sel, pins)
        }))
    }

    /// Selects, queues and wakes for one parsed event.
    pub async fn process(
        &self,
        parsed: Parsed,
        trace_id: Option<String>,
    ) -> Result<Outcome, InvokeError> {
        let e = match parsed {
            Parsed::Skip(reason) => {
                return Ok(self.skipped(reason.event_id().to_owned(), reason.to_string()));
            }
            Parsed::Event(e) => e,
        };
        if let Some(reason) = self.own_call(&e) {
            return Ok(self.skipped(e.id.clone(), reason));
        }
        let parts = e.parts()?;
        if parts.len() > 1 {
            return self.process_parts(&e, parts, trace_id).await;
        }
        let mut seen = Seen::new();
        let mapping = self.mapping(&mut seen).await?;
        let (sel, pins) = match self.route(&e, &mapping, &mut seen).await? {
            Ok(r) => r,
            Err(reason) => return Ok(self.skipped(e.id.clone(), reason)),
        };
        let job = self.job(&e, pins, trace_id, sel.update_finding);
        let queued = queue::send_jobs(&self.aws, &self.config, std::slice::from_ref(&job))
            .await?
            .pop()
            .ok_or_else(|| {
                InvokeError::Queue(QueueError::Partial {
                    sent: vec![],
                    failed: vec![],
                    unsent: vec![job.job_id.clone()],
                })
            })?;
        let n = self.counters.queued.fetch_add(1, Ordering::Relaxed) + 1;
        let policies: Vec<&str> = job.policies.iter().map(|p| p.key.as_str()).collect();
        tracing::info!(
            job_id = %queued.job_id,
            message_id = %queued.message_id,
            event_id = %e.id,
            kind = e.kind.as_str(),
            resources = ?e.resource_ids,
            policies = ?policies,
            selected = ?sel.policies,
            rules = ?sel.rules,
            defaulted = sel.defaulted,
            claim_check = queued.claim_check.as_deref().unwrap_or(""),
            queued_total = n,
            "ECS Service will auto-scale to process this message"
        );
        let wake = wake::wake(&self.aws, self.config.wake.as_ref()).await;
        Ok(Outcome::Queued {
            job: Box::new(job),
            queued,
            rules: sel.rules,
            defaulted: sel.defaulted,
            wake,
        })
    }

    /// The parts of a split Security Hub event: each routed on its own (rules may match
    /// accounts and regions), queued together, one wake.
    async fn process_parts(
        &self,
        e: &SecurityEvent,
        parts: Vec<SecurityEvent>,
        trace_id: Option<String>,
    ) -> Result<Outcome, InvokeError> {
        let mut seen = Seen::new();
        let mapping = self.mapping(&mut seen).await?;
        let mut outcomes = Vec::with_capacity(parts.len());
        let mut jobs = Vec::new();
        let mut sels = Vec::new();
        for part in &parts {
            match self.route(part, &mapping, &mut seen).await? {
                Ok((sel, pins)) => {
                    let mut job = self.job(part, pins, trace_id.clone(), sel.update_finding);
                    job.job_id = part_job_id(part);
                    jobs.push(job);
                    sels.push(sel);
                }
                Err(reason) => outcomes.push(self.skipped(
                    e.id.clone(),
                    format!(
                        "findings in account {} region {}: {reason}",
                        part.target_account, part.target_region
                    ),
                )),
            }
        }
        if !jobs.is_empty() {
            let queued = queue::send_jobs(&self.aws, &self.config, &jobs).await?;
            let wake = wake::wake(&self.aws, self.config.wake.as_ref()).await;
            for ((job, sel), q) in jobs.into_iter().zip(sels).zip(queued) {
                let n = self.counters.queued.fetch_add(1, Ordering::Relaxed) + 1;
                let policies: Vec<&str> = job.policies.iter().map(|p| p.key.as_str()).collect();
                tracing::info!(
                    job_id = %q.job_id,
                    message_id = %q.message_id,
                    event_id = %e.id,
                    kind = e.kind.as_str(),
                    account = %job.account,
                    region = %job.region,
                    policies = ?policies,
                    rules = ?sel.rules,
                    queued_total = n,
                    "ECS Service will auto-scale to process this message"
                );
                outcomes.push(Outcome::Queued {
                    job: Box::new(job),
                    queued: q,
                    rules: sel.rules,
                    defaulted: sel.defaulted,
                    wake: wake.clone(),
                });
            }
        }
        Ok(Outcome::Split {
            event_id: e.id.clone(),
            parts: outcomes,
        })
    }

    /// Several events at once (`czero invoke` with an array): one SendMessageBatch per ten.
    pub async fn process_many(&self, events: Vec<Parsed>) -> Result<Vec<Outcome>, InvokeError> {
        let mut outcomes = Vec::new();
        let mut pending = Vec::new();
        for p in events {
            match p {
                Parsed::Skip(reason) => {
                    outcomes.push(self.skipped(reason.event_id().to_owned(), reason.to_string()))
                }
                Parsed::Event(e) => match self.own_call(&e) {
                    Some(reason) => outcomes.push(self.skipped(e.id.clone(), reason)),
                    None => pending.push(e),
                },
            }
        }
        if pending.is_empty() {
            return Ok(outcomes);
        }
        let mut seen = Seen::new();
        let mapping = self.mapping(&mut seen).await?;
        let mut jobs = Vec::new();
        let mut sels = Vec::new();
        for whole in &pending {
            let parts = whole.parts()?;
            let split = parts.len() > 1;
            for e in &parts {
                match self.route(e, &mapping, &mut seen).await? {
                    Ok((sel, pins)) => {
                        let mut job = self.job(e, pins, None, sel.update_finding);
                        if split {
                            job.job_id = part_job_id(e);
                        }
                        jobs.push(job);
                        sels.push(sel);
                    }
                    Err(reason) => outcomes.push(self.skipped(e.id.clone(), reason)),
                }
            }
        }
        if jobs.is_empty() {
            return Ok(outcomes);
        }
        let queued = queue::send_jobs(&self.aws, &self.config, &jobs).await?;
        for ((job, sel), q) in jobs.into_iter().zip(sels).zip(queued) {
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
            let policies: Vec<&str> = job.policies.iter().map(|p| p.key.as_str()).collect();
            tracing::info!(job_id = %q.job_id, message_id = %q.message_id, policies = ?policies, "ECS Service will auto-scale to process this message");
            outcomes.push(Outcome::Queued {
                job: Box::new(job),
                queued: q,
                rules: sel.rules,
                defaulted: sel.defaulted,
                wake: WakeOutcome::Disabled,
            });
        }
        let wake = wake::wake(&self.aws, self.config.wake.as_ref()).await;
        if let Some(Outcome::Queued { wake: w, .. }) = outcomes
            .iter_mut()
            .rev()
            .find(|o| matches!(o, Outcome::Queued { .. }))
        {
            *w = wake;
        }
        Ok(outcomes)
    }

    fn skipped(&self, event_id: String, reason: String) -> Outcome {
        let n = self.counters.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(%event_id, %reason, skipped_total = n, "event skipped");
        Outcome::Skipped { event_id, reason }
    }
}

/// A split event's part: deterministic per (event, account, region), so a retried
/// invocation queues the same parts with the same ids.
pub fn part_job_id(e: &SecurityEvent) -> String {
    let mut h = Sha256::new();
    h.update(b"czero-job-part/1\0");
    h.update(job_id(e).as_bytes());
    h.update(b"\0");
    h.update(e.target_account.as_bytes());
    h.update(b"\0");
    h.update(e.target_region.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Deterministic per event: a retried invocation queues a job with the same id, so the
/// worker's idempotency key catches the duplicate.
pub fn job_id(e: &SecurityEvent) -> String {
    let mut h = Sha256::new();
    h.update(b"czero-job/1\0");
    if e.id.is_empty() {
        h.update(e.raw.to_string().as_bytes());
    } else {
        h.update(e.id.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}
