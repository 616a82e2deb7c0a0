//! The `custodian-worker` library: long-polls the job queue, runs each job's policies
//! through the engine, writes c7n-style output, and deletes a message only once its job is
//! done. It renews the visibility of long jobs, holds ECS task scale-in protection while a
//! batch is in hand, finishes or releases its jobs on SIGTERM, exits after
//! `MAX_EMPTY_RECEIVES` empty polls when idle exit is on, and reports CloudWatch Embedded
//! Metric Format records on stdout. `main.rs` only reads the configuration and wires the
//! SDK clients in.

pub mod config;
pub mod engine_runner;
pub mod findings;
pub mod ledger;
pub mod logging;
pub mod members;
pub mod metrics;
pub mod permissions;
pub mod protection;
pub mod queue;
pub mod runner;
pub mod shutdown;
pub mod store;
pub mod worker;

pub use config::{Config, ConfigError};
pub use runner::{PolicyRun, PolicyRunner, RunError};
pub use worker::{Exit, IDLE_EXIT_MESSAGE, Worker, WorkerError};

use aws_config::SdkConfig;

/// An SQS client for `sdk`, with the engine's retry and timeout policy (a call that hangs
/// must not hold a batch, and its scale-in protection, for hours). Long polls last up to
/// 20 s, inside the engine's per-attempt timeout; the queue's other calls get a shorter
/// one (see [`queue::Queue::with_call_timeout`]).
pub fn sqs_client(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::from(sdk)
        .retry_config(czero_engine::retry_config())
        .timeout_config(czero_engine::timeout_config())
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// An S3 client for `sdk` with the engine's retry and timeout policy, path-style when an
/// endpoint is set (emulators have no virtual-host buckets).
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .retry_config(czero_engine::retry_config())
        .timeout_config(czero_engine::timeout_config())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
