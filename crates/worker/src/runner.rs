//! Running one policy file for one job: the seam between the poll loop and the engine.
//!
//! The loop only needs "run this policy file for this job and tell me what happened", so it
//! is generic over [`PolicyRunner`]; the binary plugs in the engine, tests plug in runners
//! that fail, hang or count on demand.

use czero_job::Job;
use std::future::Future;
use std::time::Duration;

/// What one policy of a file did.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRun {
    pub policy: String,
    pub resource_type: String,
    /// Resources that matched the filters.
    pub resources: usize,
    /// Resources acted on, summed over the actions.
    pub actions_taken: usize,
    pub duration: Duration,
    /// c7n's `ResourceTime` and `ActionTime`, when the runner measured them.
    pub resource_time: Option<Duration>,
    pub action_time: Option<Duration>,
    /// Where the c7n-style output went (`s3://…` or a directory).
    pub output_location: Option<String>,
    /// Which executor ran it (`native`, or `c7n` through the driver).
    pub executor: &'static str,
    /// Why the policy did not run for this job's event (its mode does not subscribe to
    /// it); `None` when it ran. A job in which no policy ran is not done.
    pub skipped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The policy file does not parse or validate: retrying the same file cannot help.
    #[error("{key}: invalid policy file: {message}")]
    InvalidPolicy { key: String, message: String },
    /// The policy ran but failed (an API error, a failed action, output not written), or
    /// cannot run here (`kind` says why, e.g. `NeedsFullImage`).
    #[error("{key}: policy {policy} failed: {message}")]
    Failed {
        key: String,
        policy: String,
        message: String,
        retryable: bool,
        kind: &'static str,
    },
}

impl RunError {
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::InvalidPolicy { .. } => false,
            RunError::Failed { retryable, .. } => *retryable,
        }
    }

    /// A short name for the failure, carried to the DLQ with the reason.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::InvalidPolicy { .. } => "InvalidPolicy",
            RunError::Failed { kind, .. } => kind,
        }
    }
}

/// Runs every policy in one policy file for one job, writing their output.
///
/// The future need not be `Send`: the worker runs a batch's jobs concurrently inside one
/// task.
pub trait PolicyRunner {
    fn run(
        &self,
        job: &Job,
        key: &str,
        policy_text: &str,
    ) -> impl Future<Output = Result<Vec<PolicyRun>, RunError>>;
}
