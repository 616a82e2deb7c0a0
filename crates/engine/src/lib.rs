//! Runs policies: fetches resources (`aws.s3`), evaluates filters from `czero-policy`,
//! performs actions, writes c7n-style output, and falls back to the `custodian` CLI for
//! what it cannot run natively.
//!
//! One [`Engine`] per process holds the S3 clients (one per region); [`Engine::run`] runs
//! one policy, for one event or as a pull-mode scan. In event modes only the buckets the
//! event names are read (no ListBuckets); the ten augment calls of a bucket after
//! GetBucketLocation run concurrently, and `c7n:bucket-encryption` /
//! `c7n:PublicAccessBlock` are fetched only when a filter needs them.

mod calls;
mod fallback;
pub mod kms;
mod output;
pub mod permissions;
mod regional;
mod run;
pub mod s3;

pub use output::Output;

use std::path::PathBuf;
use std::time::Duration;

/// The SDK configuration for real use: `aws_config::defaults` (so `AWS_ENDPOINT_URL` and
/// the usual credential chain apply), with `region` when given.
pub async fn sdk_config(region: Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region.filter(|r| !r.is_empty()) {
        loader = loader.region(aws_config::Region::new(r));
    }
    loader.load().await
}

/// How the engine behaves for every run.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Evaluate filters and record what the actions would do, without calling them.
    pub dryrun: bool,
    /// The region for clients and output (empty: the SDK configuration's, else us-east-1).
    pub region: String,
    /// The `custodian` executable for the fallback (else `CUSTODIAN_CLI`, else PATH).
    pub custodian_cli: Option<PathBuf>,
}

/// Runs policies against AWS (or whatever endpoint the SDK configuration names).
#[derive(Debug, Clone)]
pub struct Engine {
    s3: s3::S3,
    kms: kms::Kms,
    options: EngineOptions,
    region: String,
}

impl Engine {
    pub fn new(sdk: &aws_config::SdkConfig, options: EngineOptions) -> Engine {
        let region = if options.region.is_empty() {
            sdk.region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".to_string())
        } else {
            options.region.clone()
        };
        Engine {
            s3: s3::S3::new(sdk, &region),
            kms: kms::Kms::new(sdk),
            options,
            region,
        }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}

/// Which executor ran the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Executor {
    Native,
    Fallback,
}

/// What one action did (or, in a dry run, would have done).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActionReport {
    /// The action's `type` as written in the policy.
    pub action: String,
    /// Resources the action ran on (or would run on).
    pub resources: usize,
    /// Resources on which it failed.
    pub failed: usize,
    pub dryrun: bool,
}

/// The outcome of one policy run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub policy: String,
    pub resource_type: String,
    /// Ids (bucket names) of the resources that matched the filters.
    pub resources: Vec<String>,
    pub actions: Vec<ActionReport>,
    pub duration: Duration,
    pub executor: Executor,
    /// The policy's output folder (`DIR/<policy>` or `s3://…/<policy>/YYYY/MM/DD/HH/`).
    pub output_location: String,
    pub execution_id: String,
}

/// Why a run failed. [`EngineError::is_retryable`] tells a worker whether to try again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A bad option or output location.
    #[error("{0}")]
    Config(String),
    /// The policy cannot run as written (bad event, unsupported mode, filter error).
    #[error("policy {policy}: {message}")]
    Policy { policy: String, message: String },
    /// The policy needs the real Cloud Custodian, which is not installed.
    #[error(
        "policy {policy}: {feature} is not supported natively and needs the custodian CLI, which was not found (install c7n, put `custodian` on PATH or set CUSTODIAN_CLI)"
    )]
    CustodianMissing { policy: String, feature: String },
    /// An AWS call failed after the SDK's retries.
    #[error("policy {policy}: {error}")]
    Aws {
        policy: String,
        error: Box<s3::ApiError>,
    },
    /// Some action calls failed (the run went on, as c7n does per bucket).
    #[error("policy {policy}: action {action} failed on {failed} resource(s), first: {first}")]
    Action {
        policy: String,
        action: String,
        failed: usize,
        first: String,
        retryable: bool,
    },
    /// A KMS key the policy names could not be resolved (`context`: the filter or action).
    #[error("policy {policy}: {context}: {error}")]
    Kms {
        policy: String,
        context: String,
        error: Box<kms::KmsError>,
    },
    /// Writing the output failed.
    #[error("output {location}: {message}")]
    Output {
        location: String,
        message: String,
        retryable: bool,
    },
    /// The custodian CLI ran and failed.
    #[error("policy {policy}: custodian fallback: {message}")]
    Fallback {
        policy: String,
        message: String,
        retryable: bool,
    },
}

impl EngineError {
    /// Throttling, 5xx and network failures are worth retrying; bad policies, missing
    /// features and access errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Config(_)
            | EngineError::Policy { .. }
            | EngineError::CustodianMissing { .. } => false,
            EngineError::Aws { error, .. } => error.retryable,
            EngineError::Kms { error, .. } => error.retryable,
            EngineError::Action { retryable, .. }
            | EngineError::Output { retryable, .. }
            | EngineError::Fallback { retryable, .. } => *retryable,
        }
    }
}
