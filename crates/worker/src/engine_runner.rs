//! The production [`PolicyRunner`]: parse with `czero-policy`, run with `czero-engine`, in
//! the account and region of the job's event (see [`crate::members`]).

use crate::members::{self, MemberError, Sessions, Target};
use crate::runner::{PolicyRun, PolicyRunner, RunError};
use czero_engine::{Engine, EngineOptions, Output};
use czero_job::Job;
use czero_policy::Policy;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug, Clone)]
pub struct EngineRunner {
    /// The engine for the worker's own account and region.
    engine: Engine,
    output: Output,
    members: Option<Members>,
}

/// What acting in other accounts and regions takes.
#[derive(Debug, Clone)]
pub struct Members {
    /// The worker's own configuration (other regions of its own account).
    pub sdk: aws_config::SdkConfig,
    pub sessions: Sessions,
    /// The worker's account (GetCallerIdentity or AWS_ACCOUNT_ID), when known.
    pub own_account: Option<String>,
    /// `MEMBER_ROLE_NAME`.
    pub default_role: Option<String>,
    /// Engines by (role, region), with the expiry of the session they carry.
    engines: Arc<Mutex<HashMap<EngineKey, Cached>>>,
}

/// A member role (or none: the worker's own credentials) and a region.
type EngineKey = (Option<String>, String);
/// An engine and the expiry of the session it carries.
type Cached = (Engine, Option<SystemTime>);

impl Members {
    pub fn new(
        sdk: aws_config::SdkConfig,
        sessions: Sessions,
        own_account: Option<String>,
        default_role: Option<String>,
    ) -> Members {
        Members {
            sdk,
            sessions,
            own_account,
            default_role,
            engines: Arc::default(),
        }
    }
}

impl EngineRunner {
    pub fn new(engine: Engine, output: Output) -> Self {
        EngineRunner {
            engine,
            output,
            members: None,
        }
    }

    /// Runs event-mode policies in the job's account and region.
    pub fn with_members(mut self, members: Members) -> Self {
        self.members = Some(members);
        self
    }

    /// The engine `policy` runs with for `job`.
    async fn engine_for(&self, job: &Job, policy: &Policy) -> Result<Engine, MemberError> {
        let Some(m) = &self.members else {
            return Ok(self.engine.clone());
        };
        let own_region = self.engine.region().to_owned();
        let t: Target = members::target(
            job,
            policy,
            m.own_account.as_deref(),
            m.default_role.as_deref(),
            &own_region,
        )?;
        if t.role_arn.is_none() && t.region == own_region {
            return Ok(self.engine.clone());
        }
        let session = match &t.role_arn {
            Some(role) => Some(m.sessions.get(role, &t.region, &job.job_id).await?),
            None => None,
        };
        if let Some(s) = &session {
            tracing::info!(
                job_id = %job.job_id, policy = %policy.name, account = %t.account,
                region = %t.region, role_arn = %s.role_arn, session_name = %s.session_name,
                "acting through member role"
            );
        }
        let key = (t.role_arn.clone(), t.region.clone());
        let expires = session.as_ref().map(|s| s.expires);
        let mut engines = match m.engines.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((e, exp)) = engines.get(&key)
            && *exp == expires
        {
            return Ok(e.clone());
        }
        let sdk = session.as_ref().map_or(&m.sdk, |s| &s.sdk);
        let engine = Engine::new(
            sdk,
            EngineOptions {
                region: t.region.clone(),
                account_id: Some(t.account.clone()).filter(|a| !a.is_empty()),
                member_role: t.role_arn.clone(),
                ..self.engine.options().clone()
            },
        )
        .with_output_from(&self.engine);
        engines.insert(key, (engine.clone(), expires));
        Ok(engine)
    }
}

impl PolicyRunner for EngineRunner {
    async fn run(
        &self,
        job: &Job,
        key: &str,
        policy_text: &str,
    ) -> Result<Vec<PolicyRun>, RunError> {
        let file =
            czero_policy::parse_str(key, policy_text).map_err(|e| RunError::InvalidPolicy {
                key: key.to_owned(),
                message: e.to_string(),
            })?;
        let mut runs = Vec::with_capacity(file.policies.len());
        let output = per_job(&self.output, &job.job_id);
        for policy in &file.policies {
            let engine = self
                .engine_for(job, policy)
                .await
                .map_err(|e| RunError::Failed {
                    key: key.to_owned(),
                    policy: policy.name.clone(),
                    retryable: e.is_retryable(),
                    kind: e.kind(),
                    message: e.to_string(),
                })?;
            let report = engine
                .run_job(policy, Some(&job.event), &output, Some(&job.job_id))
                .await
                .map_err(|e| RunError::Failed {
                    key: key.to_owned(),
                    policy: policy.name.clone(),
                    retryable: e.is_retryable(),
                    kind: e.kind(),
                    message: e.to_string(),
                })?;
            let actions_taken = report
                .actions
                .iter()
                .map(|a| a.resources - a.failed.min(a.resources))
                .sum();
            runs.push(PolicyRun {
                policy: report.policy,
                resource_type: report.resource_type,
                resources: report.resources.len(),
                actions_taken,
                duration: report.duration,
                // The engine's report has the run's total only; c7n's split is left out.
                resource_time: None,
                action_time: None,
                output_location: (!report.output_location.is_empty())
                    .then_some(report.output_location),
                executor: report.executor.name(),
                skipped: report.skipped,
            });
        }
        Ok(runs)
    }
}

/// Each job writes under its own folder (`<prefix>/<job id>/<policy>/YYYY/MM/DD/HH/`):
/// c7n's layout alone keys output by policy and hour, so two events in the same hour
/// would overwrite each other's `resources.json`.
pub fn per_job(base: &Output, job_id: &str) -> Output {
    let id: String = job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match base {
        Output::Dir(d) => Output::Dir(d.join(&id)),
        Output::S3 { bucket, prefix } if prefix.is_empty() => Output::S3 {
            bucket: bucket.clone(),
            prefix: id,
        },
        Output::S3 { bucket, prefix } => Output::S3 {
            bucket: bucket.clone(),
            prefix: format!("{prefix}/{id}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn output_is_per_job_and_job_ids_cannot_escape() {
        let s3 = Output::S3 {
            bucket: "out".into(),
            prefix: "output".into(),
        };
        assert_eq!(
            per_job(&s3, "j-1"),
            Output::S3 {
                bucket: "out".into(),
                prefix: "output/j-1".into()
            }
        );
        assert_eq!(
            per_job(
                &Output::S3 {
                    bucket: "out".into(),
                    prefix: String::new()
                },
                "../x"
            ),
            Output::S3 {
                bucket: "out".into(),
                prefix: "___x".into()
            }
        );
        assert_eq!(
            per_job(&Output::Dir(PathBuf::from("/tmp/o")), "a/b"),
            Output::Dir(PathBuf::from("/tmp/o/a_b"))
        );
    }
}
