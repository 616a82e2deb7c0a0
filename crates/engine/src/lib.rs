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
pub mod driver;
pub mod kms;
mod output;
pub mod permissions;
mod regional;
pub use regional::{retry_config, timeout_config};
pub mod resources;
mod run;

pub use output::Output;
pub use resources::s3;

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
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Evaluate filters and record what the actions would do, without calling them.
    pub dryrun: bool,
    /// The region for clients and output (empty: the SDK configuration's, else us-east-1).
    pub region: String,
    /// Cloud Custodian, for the policies the native engine cannot run; `None` (the slim
    /// image): such policies fail at once, naming the image that can run them.
    pub driver: Option<czero_driver::Driver>,
    /// How long one policy may run in Cloud Custodian before its job process is killed.
    pub driver_timeout: Duration,
    /// The account the engine acts in (`{account_id}` in statements); else
    /// `AWS_ACCOUNT_ID` from the environment.
    pub account_id: Option<String>,
    /// The member role whose session the SDK configuration carries, when the engine acts
    /// in another account: Cloud Custodian then gets that session's credentials and does
    /// not assume `mode.member-role` again.
    pub member_role: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            dryrun: false,
            region: String::new(),
            driver: None,
            driver_timeout: Duration::from_secs(300),
            account_id: None,
            member_role: None,
        }
    }
}

/// Runs policies against AWS (or whatever endpoint the SDK configuration names).
#[derive(Debug, Clone)]
pub struct Engine {
    /// The native resource providers.
    providers: resources::Providers,
    /// The client output is written with.
    s3: s3::S3,
    options: EngineOptions,
    region: String,
    /// The SDK configuration's credentials (handed to Cloud Custodian for member roles).
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
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
        let s3 = s3::S3::new(sdk, &region);
        Engine {
            providers: resources::Providers {
                s3: s3::Provider::new(s3.clone(), kms::Kms::new(sdk)),
            },
            s3,
            options,
            region,
            credentials: sdk.credentials_provider(),
        }
    }

    /// This engine, writing its output with `other`'s client: a member-account engine
    /// acts with the member's credentials but writes output to the worker's own bucket.
    pub fn with_output_from(mut self, other: &Engine) -> Engine {
        self.s3 = other.s3.clone();
        self
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account the engine acts in, when known.
    pub fn account_id(&self) -> Option<String> {
        self.options.account_id.clone().or_else(|| {
            std::env::var("AWS_ACCOUNT_ID")
                .ok()
                .filter(|s| !s.is_empty())
        })
    }
}

/// Which executor ran the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Executor {
    /// This engine.
    Native,
    /// Cloud Custodian itself, through the c7n driver.
    Driver,
}

impl Executor {
    /// The name in logs, metrics and `metadata.json`.
    pub fn name(self) -> &'static str {
        match self {
            Executor::Native => "native",
            Executor::Driver => "c7n",
        }
    }
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
    /// Ids (c7n's `resource_type.id`: bucket names, group ids, ...) of the resources that matched.
    pub resources: Vec<String>,
    pub actions: Vec<ActionReport>,
    pub duration: Duration,
    pub executor: Executor,
    /// The policy's output folder (`DIR/<policy>` or `s3://…/<policy>/YYYY/MM/DD/HH/`).
    pub output_location: String,
    pub execution_id: String,
    /// Why the policy did not run for this event (its mode does not subscribe to it, or
    /// the event names no resource of its type); `None` when it ran.
    pub skipped: Option<String>,
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
    /// The policy needs Cloud Custodian, which this image does not carry.
    #[error(
        "policy {policy}: needs the full worker image ({image}): {feature} does not run natively and {detail}",
        image = driver::FULL_IMAGE
    )]
    NeedsFullImage {
        policy: String,
        feature: String,
        detail: String,
    },
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
    /// Cloud Custodian refused or failed the policy (`kind`: InvalidPolicy,
    /// UnsupportedMode, C7nFailed, Timeout, C7nCrashed).
    #[error("policy {policy}: {message}")]
    C7n {
        policy: String,
        kind: &'static str,
        message: String,
        retryable: bool,
    },
    /// The policy's mode cannot run from an EventBridge event.
    #[error("policy {policy}: mode {mode}: {message}")]
    UnsupportedMode {
        policy: String,
        mode: String,
        message: String,
    },
}

impl EngineError {
    /// A short name for the failure (the worker sends it to the DLQ with the message).
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::Config(_) => "Config",
            EngineError::Policy { .. } => "PolicyError",
            EngineError::NeedsFullImage { .. } => "NeedsFullImage",
            EngineError::UnsupportedMode { .. } => "UnsupportedMode",
            EngineError::Aws { .. } => "AwsError",
            EngineError::Action { .. } => "ActionFailed",
            EngineError::Kms { .. } => "KmsKey",
            EngineError::Output { .. } => "Output",
            EngineError::C7n { kind, .. } => kind,
        }
    }

    /// Throttling, 5xx and network failures are worth retrying; bad policies, missing
    /// features and access errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Config(_)
            | EngineError::Policy { .. }
            | EngineError::NeedsFullImage { .. }
            | EngineError::UnsupportedMode { .. } => false,
            EngineError::Aws { error, .. } => error.retryable,
            EngineError::Kms { error, .. } => error.retryable,
            EngineError::Action { retryable, .. }
            | EngineError::Output { retryable, .. }
            | EngineError::C7n { retryable, .. } => *retryable,
        }
    }
}
