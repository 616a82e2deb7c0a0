//! The worker's configuration, read from environment variables.
//!
//! The design document's variables keep their names and defaults (`SQS_QUEUE_URL`,
//! `POLICY_BUCKET`, `OUTPUT_BUCKET`, `MAX_EMPTY_RECEIVES`, `WAIT_TIME_SECONDS`); the rest are
//! ours and documented in [`Config`]. Every value is checked here, once, so a bad setting
//! stops the task at start-up with a message naming the variable (exit code 2), not in the
//! middle of a job.

use std::path::PathBuf;
use std::time::Duration;

/// Most messages one `ReceiveMessage` may return (an SQS limit).
pub const MAX_BATCH: u32 = 10;
/// Longest long poll SQS allows.
pub const MAX_WAIT_TIME_SECONDS: u32 = 20;
/// Fargate's longest `stopTimeout`: SIGKILL follows SIGTERM after at most this long.
pub const FARGATE_STOP_TIMEOUT_SECONDS: u64 = 120;
/// Longest visibility timeout SQS allows (12 hours).
pub const MAX_VISIBILITY_TIMEOUT_SECONDS: u32 = 43_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `SQS_QUEUE_URL` (required): the job queue.
    pub queue_url: String,
    /// `POLICY_BUCKET` (required): where the jobs' policy files are.
    pub policy_bucket: String,
    /// `OUTPUT_BUCKET` (optional): c7n-style output goes to
    /// `s3://OUTPUT_BUCKET/OUTPUT_PREFIX/<job id>/<policy>/YYYY/MM/DD/HH/`; unset, it goes
    /// under `OUTPUT_DIR/<job id>/<policy>/` on local disk. The job id keeps two events of
    /// the same hour from overwriting each other's output.
    pub output_bucket: Option<String>,
    /// `OUTPUT_PREFIX` (default `output`): key prefix in `OUTPUT_BUCKET`.
    pub output_prefix: String,
    /// `OUTPUT_DIR` (default `/tmp/custodian-output`): local output when no bucket is set.
    pub output_dir: PathBuf,
    /// `MAX_EMPTY_RECEIVES` (default 3, at least 1): consecutive empty long polls before an
    /// idle worker exits.
    pub max_empty_receives: u32,
    /// `WAIT_TIME_SECONDS` (default 20, 0..=20): the long-poll duration.
    pub wait_time_seconds: u32,
    /// `IDLE_EXIT` (default on): exit after `MAX_EMPTY_RECEIVES` empty polls. Terraform turns
    /// it off inside the ECS service, where an exited task is only replaced.
    pub idle_exit: bool,
    /// `WORKER_CONCURRENCY` (default 10, 1..=10): messages taken per receive, all run at once.
    pub concurrency: u32,
    /// `JOB_TIMEOUT_SECONDS` (default 300): a job still running after this long is abandoned
    /// and its message left for redrive.
    pub job_timeout: Duration,
    /// `VISIBILITY_TIMEOUT_SECONDS` (default `JOB_TIMEOUT_SECONDS + 60`, as Terraform sets
    /// the queue): asked for on every receive and renewed every half of it while a job runs.
    pub visibility_timeout_seconds: u32,
    /// `SHUTDOWN_GRACE_SECONDS` (default 90, at most 110): after SIGTERM, how long jobs in
    /// hand may still run before their messages are released, inside Fargate's 120 s.
    pub shutdown_grace: Duration,
    /// `DLQ_URL` (optional): where a message that is not a job goes at once, with its reason
    /// as a message attribute; unset, such a message is left for redrive.
    pub dlq_url: Option<String>,
    /// `PROTECTION_EXPIRES_MINUTES` (default 120, 1..=2880): scale-in protection lifetime,
    /// so a stuck task cannot hold it forever.
    pub protection_expires_minutes: u32,
    /// `ECS_AGENT_URI` (set by ECS): enables task scale-in protection.
    pub ecs_agent_uri: Option<String>,
    /// `CLAIM_CHECK_BUCKET` (default `POLICY_BUCKET`): the only bucket claim-checked jobs
    /// are read from, and only under `jobs/`: a message pointing anywhere else is refused.
    pub claim_check_bucket: String,
    /// `LEDGER_PREFIX` (default `ledger`): where job markers go in `OUTPUT_BUCKET` (or under
    /// `OUTPUT_DIR/.ledger` without one), so a job's actions run once.
    pub ledger_prefix: String,
    /// `AWS_ACCOUNT_ID` (optional; resolved with STS at start when unset): the account
    /// `{account_id}` in policies stands for.
    pub account_id: Option<String>,
    /// `MEMBER_ROLE_NAME` (optional): the role (name, or `path/name`) the worker assumes in
    /// another account to act on that account's events (`arn:<partition>:iam::<account>:
    /// role/<name>`). Unset, an event from another account runs only if its policy names
    /// `mode.member-role`; otherwise the job fails, naming the account.
    pub member_role_name: Option<String>,
    /// `MEMBER_ROLE_EXTERNAL_ID` (optional): the external id the member roles require.
    pub member_role_external_id: Option<String>,
    /// `DRYRUN` (default off): run filters only, no actions.
    pub dryrun: bool,
    /// `CUSTODIAN_PYTHON` (default `python3` on PATH): the interpreter with Cloud Custodian
    /// (c7n) for policies the native engine cannot run; the full image sets it, the slim
    /// image has none, so such policies fail at once naming the full image.
    pub custodian_python: PathBuf,
    /// `LOG_FORMAT` (`json` or `text`; default json inside ECS, text elsewhere).
    pub log_format: LogFormat,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} is required but not set")]
    Missing { var: &'static str },
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// The variable at fault.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigError::Missing { var } | ConfigError::Invalid { var, .. } => var,
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a table in tests). Empty
    /// values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |var: &'static str| get(var).ok_or(ConfigError::Missing { var });

        let queue_url = required("SQS_QUEUE_URL")?;
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(invalid(
                "SQS_QUEUE_URL",
                &queue_url,
                "expected an http(s) queue URL",
            ));
        }
        let policy_bucket = required("POLICY_BUCKET")?;
        let job_timeout_seconds = number(&get, "JOB_TIMEOUT_SECONDS", 300, 1, 43_140)?;
        let wait_time_seconds = number(
            &get,
            "WAIT_TIME_SECONDS",
            20,
            0,
            MAX_WAIT_TIME_SECONDS as u64,
        )? as u32;
        let visibility_timeout_seconds = number(
            &get,
            "VISIBILITY_TIMEOUT_SECONDS",
            job_timeout_seconds + 60,
            2,
            MAX_VISIBILITY_TIMEOUT_SECONDS as u64,
        )? as u32;
        let dlq_url = get("DLQ_URL");
        if let Some(d) = &dlq_url
            && !(d.starts_with("https://") || d.starts_with("http://"))
        {
            return Err(invalid("DLQ_URL", d, "expected an http(s) queue URL"));
        }
        let in_ecs = get("ECS_CONTAINER_METADATA_URI_V4").is_some();
        let log_format = match get("LOG_FORMAT").as_deref() {
            None if in_ecs => LogFormat::Json,
            None => LogFormat::Text,
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(v) if v.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(v) => return Err(invalid("LOG_FORMAT", v, "expected `json` or `text`")),
        };
        let claim_check_bucket = get("CLAIM_CHECK_BUCKET").unwrap_or_else(|| policy_bucket.clone());
        let ledger_prefix = get("LEDGER_PREFIX")
            .map(|p| p.trim_matches('/').to_owned())
            .unwrap_or_else(|| "ledger".to_owned());
        if ledger_prefix.is_empty() || ledger_prefix.split('/').any(|p| p == ".." || p == ".") {
            return Err(invalid(
                "LEDGER_PREFIX",
                &ledger_prefix,
                "expected a key prefix such as `ledger`",
            ));
        }
        let account_id = get("AWS_ACCOUNT_ID");
        if let Some(a) = &account_id
            && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "AWS_ACCOUNT_ID",
                a,
                "expected a 12-digit account id",
            ));
        }
        let member_role_name = get("MEMBER_ROLE_NAME").map(|n| n.trim_matches('/').to_owned());
        if let Some(n) = &member_role_name {
            let arn = czero_policy::member_role::role_arn("us-east-1", "000000000000", n);
            if !czero_policy::member_role::is_role_arn(&arn) {
                return Err(invalid(
                    "MEMBER_ROLE_NAME",
                    n,
                    "expected an IAM role name (letters, digits, _+=,.@- and `/` between path parts)",
                ));
            }
        }
        let member_role_external_id = get("MEMBER_ROLE_EXTERNAL_ID");
        if let Some(x) = &member_role_external_id
            && (x.len() < 2
                || x.len() > 1224
                || !x
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)))
        {
            return Err(invalid(
                "MEMBER_ROLE_EXTERNAL_ID",
                "(hidden)",
                "expected 2-1224 characters of [A-Za-z0-9_+=,.@:/-] (STS's rule for external ids)",
            ));
        }
        Ok(Config {
            member_role_name,
            member_role_external_id,
            claim_check_bucket,
            ledger_prefix,
            account_id,
            queue_url,
            policy_bucket,
            output_bucket: get("OUTPUT_BUCKET"),
            output_prefix: get("OUTPUT_PREFIX")
                .map(|p| p.trim_matches('/').to_owned())
                .unwrap_or_else(|| "output".to_owned()),
            output_dir: get("OUTPUT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp/custodian-output")),
            max_empty_receives: number(&get, "MAX_EMPTY_RECEIVES", 3, 1, 1_000_000)? as u32,
            wait_time_seconds,
            idle_exit: boolean(&get, "IDLE_EXIT", true)?,
            concurrency: number(
                &get,
                "WORKER_CONCURRENCY",
                MAX_BATCH as u64,
                1,
                MAX_BATCH as u64,
            )? as u32,
            job_timeout: Duration::from_secs(job_timeout_seconds),
            visibility_timeout_seconds,
            shutdown_grace: Duration::from_secs(number(
                &get,
                "SHUTDOWN_GRACE_SECONDS",
                90,
                0,
                FARGATE_STOP_TIMEOUT_SECONDS - 10,
            )?),
            dlq_url,
            protection_expires_minutes: number(&get, "PROTECTION_EXPIRES_MINUTES", 120, 1, 2880)?
                as u32,
            ecs_agent_uri: get("ECS_AGENT_URI"),
            dryrun: boolean(&get, "DRYRUN", false)?,
            custodian_python: get("CUSTODIAN_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("python3")),
            log_format,
        })
    }
}

fn invalid(var: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    let n: u64 = raw
        .parse()
        .map_err(|_| invalid(var, &raw, "expected a whole number"))?;
    if n < min || n > max {
        return Err(invalid(var, &raw, &format!("expected {min}..={max}")));
    }
    Ok(n)
}

fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(invalid(
            var,
            &raw,
            "expected on/off (true/false, 1/0, yes/no)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("SQS_QUEUE_URL", "http://127.0.0.1:1/123456789012/jobs"),
            ("POLICY_BUCKET", "policies"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert(k.to_string(), v.to_string());
            }
        }
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_design_document() {
        let c = load(&[]).unwrap();
        assert_eq!(c.max_empty_receives, 3);
        assert_eq!(c.wait_time_seconds, 20);
        assert!(c.idle_exit);
        assert_eq!(c.output_bucket, None);
        assert_eq!(c.concurrency, 10);
        assert_eq!(c.job_timeout, Duration::from_secs(300));
        assert_eq!(c.visibility_timeout_seconds, 360);
        assert_eq!(c.shutdown_grace, Duration::from_secs(90));
        assert_eq!(c.protection_expires_minutes, 120);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.output_dir, PathBuf::from("/tmp/custodian-output"));
        assert_eq!(c.output_prefix, "output");
    }

    #[test]
    fn terraform_settings_are_read() {
        let c = load(&[
            ("OUTPUT_BUCKET", "out"),
            ("MAX_EMPTY_RECEIVES", "5"),
            ("WAIT_TIME_SECONDS", "0"),
            ("IDLE_EXIT", "false"),
            ("JOB_TIMEOUT_SECONDS", "30"),
            ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/x"),
            ("ECS_AGENT_URI", "http://169.254.170.2/api/x"),
        ])
        .unwrap();
        assert_eq!(c.output_bucket.as_deref(), Some("out"));
        assert_eq!(c.max_empty_receives, 5);
        assert_eq!(c.wait_time_seconds, 0);
        assert!(!c.idle_exit);
        assert_eq!(c.visibility_timeout_seconds, 90);
        assert_eq!(c.log_format, LogFormat::Json, "JSON logs inside ECS");
        assert_eq!(
            c.ecs_agent_uri.as_deref(),
            Some("http://169.254.170.2/api/x")
        );
    }

    #[test]
    fn each_bad_setting_names_its_variable() {
        let cases: &[(&str, &str, &str)] = &[
            ("SQS_QUEUE_URL", "", "SQS_QUEUE_URL is required but not set"),
            ("POLICY_BUCKET", "", "POLICY_BUCKET is required but not set"),
            ("SQS_QUEUE_URL", "jobs", "SQS_QUEUE_URL"),
            (
                "WAIT_TIME_SECONDS",
                "21",
                "WAIT_TIME_SECONDS=\"21\" is invalid: expected 0..=20",
            ),
            ("WAIT_TIME_SECONDS", "-1", "WAIT_TIME_SECONDS"),
            ("MAX_EMPTY_RECEIVES", "0", "MAX_EMPTY_RECEIVES"),
            ("MAX_EMPTY_RECEIVES", "three", "expected a whole number"),
            ("WORKER_CONCURRENCY", "11", "WORKER_CONCURRENCY"),
            ("IDLE_EXIT", "maybe", "IDLE_EXIT"),
            ("LOG_FORMAT", "xml", "LOG_FORMAT"),
            ("SHUTDOWN_GRACE_SECONDS", "120", "SHUTDOWN_GRACE_SECONDS"),
            (
                "VISIBILITY_TIMEOUT_SECONDS",
                "43201",
                "VISIBILITY_TIMEOUT_SECONDS",
            ),
            (
                "PROTECTION_EXPIRES_MINUTES",
                "2881",
                "PROTECTION_EXPIRES_MINUTES",
            ),
            ("DLQ_URL", "dlq", "DLQ_URL"),
        ];
        for (var, value, expected) in cases {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.var(), *var);
            let msg = err.to_string();
            assert!(msg.contains(expected), "{var}={value}: {msg}");
            assert!(!msg.contains('\n') && !msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn on_off_spellings() {
        for (v, want) in [("on", true), ("OFF", false), ("1", true), ("no", false)] {
            assert_eq!(load(&[("IDLE_EXIT", v)]).unwrap().idle_exit, want, "{v}");
        }
    }
}
