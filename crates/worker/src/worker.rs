//! The poll loop: receive a batch, run its jobs concurrently, delete what succeeded.
//!
//! Rules that keep every job either done or still on the queue:
//! - a message is deleted only after all of its job's policies ran and wrote their output,
//!   and at least one of them really ran (a job whose every policy was skipped, because no
//!   mode subscribes to its event, is a failure, never a silent no-op);
//! - before acting, a job is claimed in the ledger (one marker per job id, S3 conditional
//!   put): a copy of a job that already ran is deleted as a duplicate, one another worker is
//!   running is hidden until that worker's lease runs out;
//! - a job that failed for a reason a retry can fix (throttling, 5xx, timeouts) is left
//!   alone: it becomes visible again and SQS moves it to the DLQ after `maxReceiveCount`
//!   receives; one that cannot succeed (not a job, an invalid policy, a policy this image
//!   cannot run, a panic) goes to the DLQ at once with its reason (`DLQ_URL`), and is left
//!   for redrive only when no DLQ is configured;
//! - each job runs isolated: a panic is that job's failure, the rest of the batch goes on;
//! - once a job it started is over, a Security Hub job's findings get the workflow status
//!   its mapping rule's `update_finding` asks for (`crate::findings`); that update never
//!   changes how the job ends, and a duplicate copy updates nothing;
//! - while a job runs its message's visibility is renewed every third of the visibility
//!   timeout, and a failed renewal is retried within seconds, so a slow job is not handed to
//!   a second worker;
//! - on SIGTERM no new batch is taken; the jobs in hand get `SHUTDOWN_GRACE_SECONDS` to
//!   finish, and the messages of those that do not are released (visibility 0) at once.

use crate::config::Config;
use crate::findings::{AfterFailure, Findings, JobOutcome};
use crate::ledger::{self, Claim, Ledger, Token};
use crate::metrics::{Metrics, PolicyMetrics};
use crate::protection::Protection;
use crate::queue::{Message, Queue, QueueError};
use crate::runner::{PolicyRun, PolicyRunner};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use czero_job::{Envelope, Job, PolicyRef, decode_job};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The design document's idle-exit line, word for word (operators grep for it).
pub const IDLE_EXIT_MESSAGE: &str =
    "No messages for extended period. Exiting gracefully to allow scale-down to 0.";

/// Why the loop ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `MAX_EMPTY_RECEIVES` consecutive empty receives with `IDLE_EXIT` on.
    Idle,
    /// SIGTERM/SIGINT: the batch in hand was finished or released.
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot use the job queue: {0}")]
    Queue(#[from] QueueError),
}

/// Largest policy file a job may name (a policy is a few KiB; a huge one is an attack or a
/// mistake, and would be parsed in every job).
pub const MAX_POLICY_BYTES: usize = 512 * 1024;
/// Largest claim-checked job (EventBridge events are at most 256 KiB).
pub const MAX_CLAIM_CHECK_BYTES: usize = 2 * 1024 * 1024;
/// Where claim checks live in `CLAIM_CHECK_BUCKET` (the invoker writes `jobs/<id>.json`).
pub const CLAIM_CHECK_PREFIX: &str = "jobs/";

/// Why a message did not complete.
#[derive(Debug)]
enum Failure {
    /// A retry may succeed: left for SQS redrive.
    Retry(String),
    /// No retry can succeed: to the DLQ at once, with `kind` and the reason.
    DeadLetter { kind: &'static str, reason: String },
}

impl Failure {
    fn dead(kind: &'static str, reason: impl Into<String>) -> Self {
        Failure::DeadLetter {
            kind,
            reason: reason.into(),
        }
    }
}

/// How one message ended well.
enum Handled {
    /// The job's policies ran.
    Done(Job, Vec<PolicyRun>),
    /// Another copy of the job already ran.
    Duplicate(Job, ledger::Marker),
    /// Another worker is running the job now.
    Busy(Job, ledger::Marker),
}

struct Inner<R> {
    config: Config,
    queue: Queue,
    store: Store,
    ledger: Option<Ledger>,
    findings: Option<Findings>,
    runner: R,
    protection: Option<Protection>,
    metrics: Metrics,
}

pub struct Worker<R> {
    inner: Arc<Inner<R>>,
}

impl<R> std::fmt::Debug for Worker<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.inner.queue.url())
            .finish_non_exhaustive()
    }
}

impl<R: PolicyRunner> Worker<R> {
    pub fn new(
        config: Config,
        queue: Queue,
        store: Store,
        runner: R,
        protection: Option<Protection>,
        metrics: Metrics,
    ) -> Self {
        Worker {
            inner: Arc::new(Inner {
                config,
                queue,
                store,
                ledger: None,
                findings: None,
                runner,
                protection,
                metrics,
            }),
        }
    }

    /// Claims every job in `ledger` before acting, so each job's actions run once.
    pub fn with_ledger(self, ledger: Ledger) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(i) => i,
            // Only called while building, before the worker is shared.
            Err(shared) => return Worker { inner: shared },
        };
        Worker {
            inner: Arc::new(Inner {
                ledger: Some(ledger),
                ..inner
            }),
        }
    }

    /// Sets the workflow of a Security Hub job's findings once the job is over, as its
    /// mapping rule's `update_finding` asks (see [`crate::findings`]).
    pub fn with_findings(self, findings: Findings) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(i) => i,
            // Only called while building, before the worker is shared.
            Err(shared) => return Worker { inner: shared },
        };
        Worker {
            inner: Arc::new(Inner {
                findings: Some(findings),
                ..inner
            }),
        }
    }

    /// Polls until idle (with `IDLE_EXIT`) or until shutdown is requested.
    pub async fn run(&self, mut shutdown: Shutdown) -> Result<Exit, WorkerError> {
        let cfg = &self.inner.config;
        let mut empty = 0u32;
        let mut backoff = Duration::from_millis(100);
        tracing::info!(
            queue = %cfg.queue_url,
            wait_time_seconds = cfg.wait_time_seconds,
            max_empty_receives = cfg.max_empty_receives,
            idle_exit = cfg.idle_exit,
            concurrency = cfg.concurrency,
            "worker started"
        );
        loop {
            if shutdown.is_requested() {
                return Ok(Exit::Shutdown);
            }
            let receive = self.inner.queue.receive(
                cfg.concurrency,
                cfg.wait_time_seconds,
                cfg.visibility_timeout_seconds,
            );
            tokio::pin!(receive);
            let received = tokio::select! {
                r = &mut receive => r,
                () = shutdown.requested() => {
                    // Let the poll in flight finish rather than drop it: SQS may already have
                    // handed us messages, which must be released, not left hidden.
                    let limit = Duration::from_secs(u64::from(cfg.wait_time_seconds) + 5);
                    if let Ok(Ok(messages)) = tokio::time::timeout(limit, receive).await {
                        self.inner.release(messages.iter().map(|m| m.receipt_handle.clone())).await;
                    }
                    return Ok(Exit::Shutdown);
                }
            };
            let messages = match received {
                Ok(m) => {
                    backoff = Duration::from_millis(100);
                    m
                }
                Err(e) if e.is_fatal() => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "receive failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.requested() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            if messages.is_empty() {
                empty += 1;
                tracing::debug!(
                    consecutive_empty_receives = empty,
                    max_empty_receives = cfg.max_empty_receives,
                    "empty receive"
                );
                if cfg.idle_exit && empty >= cfg.max_empty_receives {
                    tracing::info!("{IDLE_EXIT_MESSAGE}");
                    return Ok(Exit::Idle);
                }
                if cfg.wait_time_seconds == 0 {
                    // Short polling with idle exit off would spin on the API.
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.requested() => {}
                    }
                }
                continue;
            }
            empty = 0;
            self.batch(messages, &mut shutdown).await;
        }
    }

    async fn batch(&self, messages: Vec<Message>, shutdown: &mut Shutdown) {
        let inner = &self.inner;
        inner.metrics.messages_received(messages.len());
        tracing::info!(messages = messages.len(), "batch received");
        let protected = match &inner.protection {
            Some(p) => p.protect().await,
            None => false,
        };

        // The jobs run concurrently inside this one task (the engine's futures are not
        // `Send`, and moto or SQS latency, not CPU, bounds a batch). Dropping a job's future
        // abandons it; its message is then released below.
        let mut pending: HashSet<String> =
            messages.iter().map(|m| m.receipt_handle.clone()).collect();
        // Each job's ledger claim, kept here so a released job's claim is released too.
        let claims: Vec<Arc<Mutex<Option<Token>>>> =
            messages.iter().map(|_| Arc::default()).collect();
        let mut jobs: FuturesUnordered<_> = messages
            .into_iter()
            .zip(claims.iter().cloned())
            .map(|(m, claimed)| async move {
                let handle = m.receipt_handle.clone();
                inner.handle(m, &claimed).await;
                handle
            })
            .collect();

        let grace = inner.config.shutdown_grace;
        let mut deadline = shutdown
            .is_requested()
            .then(|| tokio::time::Instant::now() + grace);
        let out_of_time = loop {
            let until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + grace);
            tokio::select! {
                done = jobs.next() => match done {
                    None => break false,
                    Some(handle) => {
                        pending.remove(&handle);
                    }
                },
                () = shutdown.requested(), if deadline.is_none() => {
                    tracing::info!(
                        jobs = jobs.len(),
                        grace_seconds = grace.as_secs(),
                        "finishing the jobs in hand before exit"
                    );
                    deadline = Some(tokio::time::Instant::now() + grace);
                }
                () = tokio::time::sleep_until(until), if deadline.is_some() => break true,
            }
        };
        drop(jobs);
        if out_of_time {
            tracing::warn!(
                released = pending.len(),
                "grace period over; releasing unfinished jobs"
            );
            inner.release(pending).await;
            // Their claims, so the next worker need not wait for the leases to run out.
            for c in &claims {
                let token = match c.lock() {
                    Ok(mut g) => g.take(),
                    Err(p) => p.into_inner().take(),
                };
                if let Some(t) = token {
                    inner.finish(&t, ledger::State::Failed).await;
                }
            }
        }

        if protected && let Some(p) = &inner.protection {
            p.unprotect().await;
        }
    }
}

impl<R: PolicyRunner> Inner<R> {
    /// Makes messages visible again at once so another worker takes them now.
    async fn release(&self, handles: impl IntoIterator<Item = String>) {
        let calls = handles.into_iter().map(|h| async move {
            match self.queue.change_visibility(&h, 0).await {
                Ok(()) => tracing::info!("message released for another worker"),
                Err(e) => tracing::warn!(error = %e, "could not release a message; it reappears after its visibility timeout"),
            }
        });
        futures::future::join_all(calls).await;
    }

    async fn handle(&self, m: Message, claimed: &Mutex<Option<Token>>) {
        let started = Instant::now();
        let timeout = self.config.job_timeout;
        // The claim is kept outside the job's future so a timed-out job still records its
        // failure and the next attempt need not wait for the lease to run out.
        // The job once it started (claimed), for the finding update after a failure: a
        // failed job's future is gone by then.
        let running: Mutex<Option<Job>> = Mutex::new(None);
        let work = AssertUnwindSafe(self.work(&m, claimed, &running)).catch_unwind();
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, work) => match r {
                Ok(Ok(r)) => r,
                Ok(Err(panic)) => Err(Failure::dead(
                    "Panic",
                    format!("the job panicked: {}", panic_message(&panic)),
                )),
                Err(_) => Err(Failure::Retry(format!(
                    "job timed out after {} s (JOB_TIMEOUT_SECONDS)",
                    timeout.as_secs()
                ))),
            },
            () = self.heartbeat(&m, claimed) => Err(Failure::Retry("visibility heartbeat stopped".into())),
        };
        let token = match claimed.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(Handled::Done(job, runs)) => {
                if let Some(t) = &token {
                    self.finish(t, ledger::State::Done).await;
                }
                match self.queue.delete(&m.receipt_handle).await {
                    Ok(()) => {}
                    Err(QueueError::HandleExpired { .. }) => tracing::warn!(
                        message_id = %m.message_id, job_id = %job.job_id,
                        "job done but its receipt handle expired; the ledger marks it done, so a redelivery is dropped as a duplicate"
                    ),
                    Err(e) => tracing::error!(
                        message_id = %m.message_id, job_id = %job.job_id, error = %e,
                        "job done but the message could not be deleted; a redelivery is dropped as a duplicate"
                    ),
                }
                for r in runs.iter().filter(|r| r.skipped.is_none()) {
                    self.metrics.policy(&PolicyMetrics {
                        policy: &r.policy,
                        resource_type: &r.resource_type,
                        resources: r.resources,
                        actions_taken: r.actions_taken,
                        duration: r.duration,
                        resource_time: r.resource_time,
                        action_time: r.action_time,
                    });
                }
                self.metrics.processed(true);
                let ran: Vec<&PolicyRun> = runs.iter().filter(|r| r.skipped.is_none()).collect();
                let mut executors: Vec<&str> = ran.iter().map(|r| r.executor).collect();
                executors.dedup();
                tracing::info!(
                    message_id = %m.message_id,
                    job_id = %job.job_id,
                    event_id = %job.event_id,
                    policies = ran.len(),
                    skipped = runs.len() - ran.len(),
                    executor = %executors.join(","),
                    resources = ran.iter().map(|r| r.resources).sum::<usize>(),
                    duration_ms = elapsed_ms,
                    "job done"
                );
                self.update_findings(&job, JobOutcome::done(&runs)).await;
            }
            Ok(Handled::Duplicate(job, marker)) => {
                self.metrics.duplicate();
                tracing::info!(
                    message_id = %m.message_id, job_id = %job.job_id, receive_count = m.receive_count,
                    done_by = %marker.owner, "duplicate job: it already ran; message deleted"
                );
                if let Err(e) = self.queue.delete(&m.receipt_handle).await {
                    tracing::warn!(message_id = %m.message_id, error = %e, "could not delete a duplicate; it will be dropped again");
                }
            }
            Ok(Handled::Busy(job, marker)) => {
                // Hide this copy until the other worker's lease runs out; by then the job
                // is done (this copy is a duplicate) or its claim can be taken over.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let wait = marker.lease_until.saturating_sub(now).clamp(1, 43_200) as u32;
                tracing::info!(
                    message_id = %m.message_id, job_id = %job.job_id, running_on = %marker.owner,
                    hidden_for_seconds = wait, "job is running on another worker; this copy waits"
                );
                if let Err(e) = self.queue.change_visibility(&m.receipt_handle, wait).await {
                    tracing::warn!(message_id = %m.message_id, error = %e, "could not hide the copy; it reappears after its visibility timeout");
                }
            }
            Err(Failure::Retry(reason)) => {
                if let Some(t) = &token {
                    self.finish(t, ledger::State::Failed).await;
                }
                self.metrics.processed(false);
                tracing::error!(
                    message_id = %m.message_id,
                    receive_count = m.receive_count,
                    duration_ms = elapsed_ms,
                    reason = %reason,
                    "job failed; message left for SQS redrive"
                );
                if let Some(job) = take(&running) {
                    let outcome = JobOutcome::failed("Retryable", &reason, AfterFailure::Retried);
                    self.update_findings(&job, outcome).await;
                }
            }
            Err(Failure::DeadLetter { kind, reason }) => {
                if let Some(t) = &token {
                    self.finish(t, ledger::State::Failed).await;
                }
                self.metrics.processed(false);
                let after = if self.dead_letter(&m, kind, &reason).await {
                    AfterFailure::DeadLettered
                } else {
                    AfterFailure::Retried
                };
                if let Some(job) = take(&running) {
                    self.update_findings(&job, JobOutcome::failed(kind, &reason, after))
                        .await;
                }
            }
        }
    }

    /// The finding update after a job, when the job asks for one and the worker makes them.
    /// Never fails: the job's own result stands.
    async fn update_findings(&self, job: &Job, outcome: JobOutcome) {
        if let Some(f) = &self.findings
            && !job.update_finding.is_off()
        {
            f.after_job(job, self.config.dryrun, &outcome).await;
        }
    }

    async fn finish(&self, token: &Token, state: ledger::State) {
        if let Some(l) = &self.ledger
            && let Err(e) = l.finish(token, state).await
        {
            tracing::warn!(error = %e, ?state, "could not update the job marker");
        }
    }

    /// `true` when the message was moved to the DLQ (copied there; deleting it may still
    /// have failed), `false` when it was left for SQS redrive.
    async fn dead_letter(&self, m: &Message, kind: &str, reason: &str) -> bool {
        let Some(dlq) = &self.config.dlq_url else {
            tracing::error!(
                message_id = %m.message_id,
                receive_count = m.receive_count,
                kind,
                reason,
                "job cannot succeed; no DLQ_URL, so it is left for SQS redrive to the dead-letter queue"
            );
            return false;
        };
        let attributes = [
            (crate::queue::DEAD_LETTER_KIND_ATTRIBUTE, kind.to_owned()),
            (
                crate::queue::ORIGINAL_MESSAGE_ID_ATTRIBUTE,
                m.message_id.clone(),
            ),
            (
                crate::queue::RECEIVE_COUNT_ATTRIBUTE,
                m.receive_count.to_string(),
            ),
        ];
        match self
            .queue
            .send_dead_letter(dlq, &m.body, reason, &attributes)
            .await
        {
            Ok(()) => {
                self.metrics.dead_lettered();
                tracing::error!(message_id = %m.message_id, kind, reason, dlq = %dlq, "job cannot succeed; moved to the dead-letter queue");
                if let Err(e) = self.queue.delete(&m.receipt_handle).await {
                    tracing::warn!(message_id = %m.message_id, error = %e, "copied to the dead-letter queue but not deleted; it may be copied again");
                }
                true
            }
            Err(e) => {
                tracing::error!(
                    message_id = %m.message_id, kind, reason, error = %e,
                    "job cannot succeed and could not be sent to the dead-letter queue; left for SQS redrive"
                );
                false
            }
        }
    }

    /// Decode, claim, run: everything a message needs before it can be deleted.
    async fn work(
        &self,
        m: &Message,
        claimed: &Mutex<Option<Token>>,
        running: &Mutex<Option<Job>>,
    ) -> Result<Handled, Failure> {
        let job = self.decode(m).await?;
        if let Some(ledger) = &self.ledger {
            // The lease runs with the message's visibility (the heartbeat renews both): a
            // worker that dies loses both at the same time.
            let lease = Duration::from_secs(u64::from(self.config.visibility_timeout_seconds));
            match ledger.claim(&job.job_id, lease).await {
                Ok(Claim::Acquired(t)) => {
                    if let Ok(mut g) = claimed.lock() {
                        *g = Some(t);
                    }
                }
                Ok(Claim::Done(marker)) => return Ok(Handled::Duplicate(job, marker)),
                Ok(Claim::Busy(marker)) => return Ok(Handled::Busy(job, marker)),
                Err(e) => {
                    return Err(Failure::Retry(format!(
                        "job {}: cannot claim it, so it does not run (its actions must run once): {e}",
                        job.job_id
                    )));
                }
            }
        }
        if self.findings.is_some()
            && !job.update_finding.is_off()
            && let Ok(mut g) = running.lock()
        {
            *g = Some(job.clone());
        }
        let runs = self.run_job(m, &job).await?;
        if !runs.is_empty() && runs.iter().all(|r| r.skipped.is_some()) {
            let why: Vec<String> = runs
                .iter()
                .map(|r| format!("{}: {}", r.policy, r.skipped.as_deref().unwrap_or_default()))
                .collect();
            return Err(Failure::dead(
                "NothingRan",
                format!(
                    "job {}: no policy of the job handles its event ({})",
                    job.job_id,
                    why.join("; ")
                ),
            ));
        }
        Ok(Handled::Done(job, runs))
    }

    async fn decode(&self, m: &Message) -> Result<Job, Failure> {
        let envelope = Envelope::decode(&m.body)
            .map_err(|e| Failure::dead("NotAJob", format!("not a job message: {e}")))?;
        match envelope {
            Envelope::Inline { job } => Ok(job),
            Envelope::ClaimCheck {
                job_id,
                bucket,
                key,
                ..
            } => {
                // A claim check names an object to read with the worker's role: accept only
                // the invoker's own place for them.
                let allowed = &self.config.claim_check_bucket;
                if &bucket != allowed || !key.starts_with(CLAIM_CHECK_PREFIX) || key.contains("..")
                {
                    return Err(Failure::dead(
                        "ClaimCheckRejected",
                        format!(
                            "job {job_id}: claim check s3://{bucket}/{key} is outside s3://{allowed}/{CLAIM_CHECK_PREFIX}"
                        ),
                    ));
                }
                let bytes = self
                    .store
                    .object(&bucket, &key, MAX_CLAIM_CHECK_BYTES)
                    .await
                    .map_err(|e| match e {
                        StoreError::TooLarge { .. } => {
                            Failure::dead("TooLarge", format!("job {job_id}: {e}"))
                        }
                        e => Failure::Retry(format!("job {job_id}: fetching its claim check: {e}")),
                    })?;
                decode_job(&bytes).map_err(|e| {
                    Failure::dead(
                        "NotAJob",
                        format!("job {job_id}: claim check s3://{bucket}/{key} is not a job: {e}"),
                    )
                })
            }
        }
    }

    async fn run_job(&self, m: &Message, job: &Job) -> Result<Vec<PolicyRun>, Failure> {
        tracing::debug!(message_id = %m.message_id, job_id = %job.job_id, receive_count = m.receive_count, "job started");
        let mut runs = Vec::new();
        for p in &job.policies {
            let text = self
                .store
                .policy(
                    &self.config.policy_bucket,
                    &p.key,
                    p.version_id.as_deref(),
                    MAX_POLICY_BYTES,
                )
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => {
                        Failure::Retry(format!("job {}: policy file missing: {e}", job.job_id))
                    }
                    e @ (StoreError::TooLarge { .. } | StoreError::NotText { .. }) => {
                        Failure::dead("InvalidPolicy", format!("job {}: {e}", job.job_id))
                    }
                    e => Failure::Retry(format!("job {}: {e}", job.job_id)),
                })?;
            warn_if_changed(&job.job_id, p, text.etag.as_deref());
            let done = self
                .runner
                .run(job, &p.key, &text.text)
                .await
                .map_err(|e| {
                    let reason = format!("job {}: {e}", job.job_id);
                    if e.is_retryable() {
                        Failure::Retry(reason)
                    } else {
                        Failure::dead(e.kind(), reason)
                    }
                })?;
            runs.extend(done);
        }
        Ok(runs)
    }

    /// Renews the message's visibility (and the job's ledger lease) every third of the
    /// visibility timeout; a failed renewal is retried every second until the next period,
    /// so one failure does not let the message reappear to another worker. Never returns.
    async fn heartbeat(&self, m: &Message, claimed: &Mutex<Option<Token>>) {
        let visibility = self.config.visibility_timeout_seconds;
        let period =
            Duration::from_millis(u64::from(visibility) * 1000 / 3).max(Duration::from_secs(1));
        let mut next = tokio::time::Instant::now() + period;
        loop {
            tokio::time::sleep_until(next).await;
            let deadline = next + period;
            next = deadline;
            self.renew_lease(claimed, visibility).await;
            loop {
                match self
                    .queue
                    .change_visibility(&m.receipt_handle, visibility)
                    .await
                {
                    Ok(()) => {
                        tracing::debug!(message_id = %m.message_id, visibility, "visibility extended");
                        break;
                    }
                    Err(e @ QueueError::HandleExpired { .. }) => {
                        tracing::warn!(message_id = %m.message_id, error = %e, "cannot extend visibility any more; another copy may start (the ledger keeps it from acting twice)");
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let retry = tokio::time::Instant::now() + Duration::from_secs(1);
                        tracing::warn!(message_id = %m.message_id, error = %e, "visibility extension failed; retrying in 1 s");
                        if retry >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(retry).await;
                    }
                }
            }
        }
    }
}

impl<R: PolicyRunner> Inner<R> {
    async fn renew_lease(&self, claimed: &Mutex<Option<Token>>, visibility: u32) {
        let Some(ledger) = &self.ledger else { return };
        let token = match claimed.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(mut token) = token else { return };
        match ledger
            .renew(&mut token, Duration::from_secs(u64::from(visibility)))
            .await
        {
            Ok(true) => {
                if let Ok(mut g) = claimed.lock() {
                    *g = Some(token);
                }
            }
            Ok(false) => tracing::warn!("the job's claim was taken over by another worker"),
            Err(e) => tracing::warn!(error = %e, "could not renew the job's claim"),
        }
    }
}

/// The value in `slot`, taken (a poisoned lock still holds it).
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    match slot.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    }
}

/// The text of a panic payload (`panic!("...")` carries a `&str` or a `String`).
fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// A job pinned by ETag only (the bucket is not versioned, so no version can be fetched)
/// runs the current object; if that is no longer what the invoker selected, say so.
fn warn_if_changed(job_id: &str, p: &PolicyRef, current: Option<&str>) {
    if p.version_id.is_some() {
        return;
    }
    if let (Some(pinned), Some(current)) = (p.etag.as_deref(), current)
        && pinned != current
    {
        tracing::warn!(
            job_id,
            policy = %p.key,
            pinned_etag = pinned,
            current_etag = current,
            "policy changed since the invoker selected it (ETag {pinned} then, {current} now); running the current object"
        );
    }
}
