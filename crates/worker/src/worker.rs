//! The poll loop: receive a batch, run its jobs concurrently, delete what succeeded.
//!
//! Rules that keep every job either done or still on the queue:
//! - a message is deleted only after all of its job's policies ran and wrote their output;
//! - a failed job is left alone: it becomes visible again after the visibility timeout and
//!   SQS moves it to the DLQ after `maxReceiveCount` receives (the reason is logged each time);
//! - a message that is not a job is never deleted silently: with `DLQ_URL` it is copied to
//!   the DLQ with its reason as a message attribute and then deleted, otherwise it is left
//!   for redrive like a failed job, its reason logged at error level;
//! - while a job runs its message's visibility is renewed every half visibility timeout, so
//!   a slow job is not handed to a second worker;
//! - on SIGTERM no new batch is taken; the jobs in hand get `SHUTDOWN_GRACE_SECONDS` to
//!   finish, and the messages of those that do not are released (visibility 0) at once.

use crate::config::Config;
use crate::metrics::{Metrics, PolicyMetrics};
use crate::protection::Protection;
use crate::queue::{Message, Queue, QueueError};
use crate::runner::{PolicyRun, PolicyRunner};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use czero_job::{Envelope, Job, PolicyRef, decode_job};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::HashSet;
use std::sync::Arc;
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

/// How one message ended.
#[derive(Debug)]
enum Failure {
    /// The job could not be completed now; SQS will deliver it again.
    Job(String),
    /// The message is not a job at all.
    Poison(String),
}

struct Inner<R> {
    config: Config,
    queue: Queue,
    store: Store,
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
                runner,
                protection,
                metrics,
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
        let mut jobs: FuturesUnordered<_> = messages
            .into_iter()
            .map(|m| async move {
                let handle = m.receipt_handle.clone();
                inner.handle(m).await;
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

    async fn handle(&self, m: Message) {
        let started = Instant::now();
        let timeout = self.config.job_timeout;
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, self.process(&m)) => r.unwrap_or_else(|_| {
                Err(Failure::Job(format!("job timed out after {} s (JOB_TIMEOUT_SECONDS)", timeout.as_secs())))
            }),
            () = self.heartbeat(&m) => unreachable_heartbeat(),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok((job, runs)) => {
                match self.queue.delete(&m.receipt_handle).await {
                    Ok(()) => {}
                    Err(QueueError::HandleExpired { .. }) => tracing::warn!(
                        message_id = %m.message_id, job_id = %job.job_id,
                        "job done but its receipt handle expired; another receive may run it again"
                    ),
                    Err(e) => tracing::error!(
                        message_id = %m.message_id, job_id = %job.job_id, error = %e,
                        "job done but the message could not be deleted; it will run again"
                    ),
                }
                for r in &runs {
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
                tracing::info!(
                    message_id = %m.message_id,
                    job_id = %job.job_id,
                    event_id = %job.event_id,
                    policies = runs.len(),
                    resources = runs.iter().map(|r| r.resources).sum::<usize>(),
                    duration_ms = elapsed_ms,
                    "job done"
                );
            }
            Err(Failure::Job(reason)) => {
                self.metrics.processed(false);
                tracing::error!(
                    message_id = %m.message_id,
                    receive_count = m.receive_count,
                    duration_ms = elapsed_ms,
                    reason = %reason,
                    "job failed; message left for SQS redrive"
                );
            }
            Err(Failure::Poison(reason)) => {
                self.metrics.processed(false);
                self.dead_letter(&m, &reason).await;
            }
        }
    }

    async fn dead_letter(&self, m: &Message, reason: &str) {
        let Some(dlq) = &self.config.dlq_url else {
            tracing::error!(
                message_id = %m.message_id,
                receive_count = m.receive_count,
                reason,
                "message is not a job; left for SQS redrive to the dead-letter queue"
            );
            return;
        };
        match self.queue.send_dead_letter(dlq, &m.body, reason).await {
            Ok(()) => {
                tracing::error!(message_id = %m.message_id, reason, dlq = %dlq, "message is not a job; moved to the dead-letter queue");
                if let Err(e) = self.queue.delete(&m.receipt_handle).await {
                    tracing::warn!(message_id = %m.message_id, error = %e, "copied to the dead-letter queue but not deleted; it may be copied again");
                }
            }
            Err(e) => tracing::error!(
                message_id = %m.message_id, reason, error = %e,
                "message is not a job and could not be sent to the dead-letter queue; left for SQS redrive"
            ),
        }
    }

    async fn process(&self, m: &Message) -> Result<(Job, Vec<PolicyRun>), Failure> {
        let envelope = Envelope::decode(&m.body)
            .map_err(|e| Failure::Poison(format!("not a job message: {e}")))?;
        let job = match envelope {
            Envelope::Inline { job } => job,
            Envelope::ClaimCheck {
                job_id,
                bucket,
                key,
                ..
            } => {
                let bytes = self.store.object(&bucket, &key).await.map_err(|e| {
                    Failure::Job(format!("job {job_id}: fetching its claim check: {e}"))
                })?;
                decode_job(&bytes).map_err(|e| {
                    Failure::Poison(format!(
                        "job {job_id}: claim check s3://{bucket}/{key} is not a job: {e}"
                    ))
                })?
            }
        };
        tracing::debug!(message_id = %m.message_id, job_id = %job.job_id, receive_count = m.receive_count, "job started");
        let mut runs = Vec::new();
        for p in &job.policies {
            let text = self
                .store
                .policy(&self.config.policy_bucket, &p.key, p.version_id.as_deref())
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => {
                        Failure::Job(format!("job {}: policy file missing: {e}", job.job_id))
                    }
                    e => Failure::Job(format!("job {}: {e}", job.job_id)),
                })?;
            warn_if_changed(&job.job_id, p, text.etag.as_deref());
            let done = self
                .runner
                .run(&job, &p.key, &text.text)
                .await
                .map_err(|e| Failure::Job(format!("job {}: {e}", job.job_id)))?;
            runs.extend(done);
        }
        Ok((job, runs))
    }

    /// Renews the message's visibility every half visibility timeout; never returns.
    async fn heartbeat(&self, m: &Message) {
        let visibility = self.config.visibility_timeout_seconds;
        let period = Duration::from_secs(u64::from(visibility / 2).max(1));
        loop {
            tokio::time::sleep(period).await;
            match self
                .queue
                .change_visibility(&m.receipt_handle, visibility)
                .await
            {
                Ok(()) => {
                    tracing::debug!(message_id = %m.message_id, visibility, "visibility extended")
                }
                Err(e @ QueueError::HandleExpired { .. }) => {
                    tracing::warn!(message_id = %m.message_id, error = %e, "cannot extend visibility any more; the job may run twice");
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::warn!(message_id = %m.message_id, error = %e, "visibility extension failed; retrying next period")
                }
            }
        }
    }
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

fn unreachable_heartbeat() -> Result<(Job, Vec<PolicyRun>), Failure> {
    Err(Failure::Job("visibility heartbeat stopped".into()))
}
