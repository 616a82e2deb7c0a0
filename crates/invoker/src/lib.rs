//! The invoker: turns one EventBridge security event (CloudTrail call, Security Hub,
//! GuardDuty or Config finding) into a job on the SQS queue, naming the policies that the
//! mapping file in S3 selects for it and that would act on the event: it reads and parses
//! those policy files, and skips events that no selected policy subscribes to, that name
//! ids no resource could have, or that the worker's own remediations caused. The Lambda `bootstrap` and `czero invoke` share
//! [`handler::Invoker`]; every AWS call goes through the narrow [`aws::Aws`] trait.

pub mod aws;
pub mod config;
pub mod event;
pub mod handler;
pub mod ids;
pub mod mapping;
pub mod permissions;
pub mod policies;
pub mod queue;
pub mod screen;
pub mod wake;

pub use aws::{Aws, SdkAws};
pub use config::{Config, ConfigError};
pub use handler::{InvokeError, Invoker, Outcome};

/// Logs as JSON inside Lambda (CloudWatch Logs Insights parses it), readable text elsewhere.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        builder.try_init()
    };
}
