//! Optional fast wake (BRIEF §2.4): after queueing, raise a service at 0 to 1 so the first
//! task starts now instead of after the backlog alarm's one-minute datapoints.
//!
//! Trade-offs, documented in docs/policy-mapping.md: without the scale-in guard (Terraform
//! adds it with fast wake) the scale-in alarm may set the service back to 0 before the new
//! task takes the message (the message then waits for the backlog alarm, never lost);
//! Terraform must `ignore_changes = [desired_count]`; the Lambda role needs
//! `ecs:DescribeServices` and `ecs:UpdateService` on that one service.

use crate::aws::Aws;
use crate::config::Wake;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "wake", rename_all = "kebab-case")]
pub enum WakeOutcome {
    Disabled,
    /// The service already wants tasks: scaling is the alarms' job.
    AlreadyRunning {
        desired: i32,
    },
    Woken,
    /// The job is queued either way; the backlog alarm will start a task.
    Failed {
        error: String,
    },
}

/// Never fails the invocation: the job is already queued, and a retry would queue it twice.
pub async fn wake<A: Aws>(aws: &A, wake: Option<&Wake>) -> WakeOutcome {
    let Some(w) = wake else {
        return WakeOutcome::Disabled;
    };
    let outcome = match aws.desired_count(&w.cluster, &w.service).await {
        Ok(0) => match aws.set_desired_count(&w.cluster, &w.service, 1).await {
            Ok(()) => WakeOutcome::Woken,
            Err(e) => WakeOutcome::Failed {
                error: e.to_string(),
            },
        },
        Ok(desired) => WakeOutcome::AlreadyRunning { desired },
        Err(e) => WakeOutcome::Failed {
            error: e.to_string(),
        },
    };
    match &outcome {
        WakeOutcome::Woken => {
            tracing::info!(cluster = %w.cluster, service = %w.service, "service was at 0 tasks: desired count set to 1")
        }
        WakeOutcome::Failed { error } => {
            tracing::warn!(cluster = %w.cluster, service = %w.service, %error, "fast wake failed; the backlog alarm will scale the service")
        }
        _ => {}
    }
    outcome
}
