//! The production [`PolicyRunner`]: parse with `czero-policy`, run with `czero-engine`.

use crate::runner::{PolicyRun, PolicyRunner, RunError};
use czero_engine::{Engine, Output};
use czero_job::Job;

#[derive(Debug, Clone)]
pub struct EngineRunner {
    engine: Engine,
    output: Output,
}

impl EngineRunner {
    pub fn new(engine: Engine, output: Output) -> Self {
        EngineRunner { engine, output }
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
            let report = self
                .engine
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
