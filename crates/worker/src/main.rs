//! `custodian-worker`: the ECS task's entry point. Configuration comes from the environment
//! (see `czero_worker::config`); the command line only offers `--help` and `--version`.
//! Exit codes: 0 idle or stopped, 1 a fatal error, 2 bad configuration.

use anyhow::Context;
use clap::Parser;
use czero_driver::{Driver, DriverConfig};
use czero_engine::{Engine, EngineOptions, Output};
use czero_worker::engine_runner::EngineRunner;
use czero_worker::findings::Findings;
use czero_worker::ledger::Ledger;
use czero_worker::members::Sessions;
use czero_worker::metrics::Metrics;
use czero_worker::protection::Protection;
use czero_worker::queue::Queue;
use czero_worker::store::Store;
use czero_worker::{Config, Worker, logging, shutdown};
use std::process::ExitCode;

/// Polls the job queue, runs Cloud Custodian policies for each job, exits when idle.
///
/// Configured by environment: SQS_QUEUE_URL and POLICY_BUCKET (required); OUTPUT_BUCKET,
/// OUTPUT_PREFIX, OUTPUT_DIR, MAX_EMPTY_RECEIVES (3), WAIT_TIME_SECONDS (20), IDLE_EXIT (on),
/// WORKER_CONCURRENCY (10), JOB_TIMEOUT_SECONDS (300), VISIBILITY_TIMEOUT_SECONDS
/// (job timeout + 60), SHUTDOWN_GRACE_SECONDS (90), DLQ_URL, PROTECTION_EXPIRES_MINUTES (120),
/// DRYRUN, CUSTODIAN_PYTHON, CLAIM_CHECK_BUCKET, LEDGER_PREFIX, AWS_ACCOUNT_ID,
/// MEMBER_ROLE_NAME, MEMBER_ROLE_EXTERNAL_ID,
/// LOG_FORMAT (json|text), RUST_LOG.
#[derive(Parser)]
#[command(name = "custodian-worker", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("custodian-worker: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker stopped");
            ExitCode::from(1)
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).context("installing SIGTERM/SIGINT handlers")?;

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let output = match &config.output_bucket {
        Some(bucket) => Output::S3 {
            bucket: bucket.clone(),
            prefix: config.output_prefix.clone(),
        },
        None => Output::Dir(config.output_dir.clone()),
    };
    let account_id = match &config.account_id {
        Some(a) => Some(a.clone()),
        None => caller_account(&sdk).await,
    };
    // Started on the first policy that needs it (the slim image has no Python: that
    // policy then fails at once, naming the full image).
    let driver = Driver::new(DriverConfig {
        python: config.custodian_python.clone(),
        ..DriverConfig::default()
    });
    let engine = Engine::new(
        &sdk,
        EngineOptions {
            dryrun: config.dryrun,
            region: String::new(),
            driver: Some(driver.clone()),
            // Inside the job's own timeout, so the driver kills the c7n job first.
            driver_timeout: config
                .job_timeout
                .saturating_sub(std::time::Duration::from_secs(5))
                .max(std::time::Duration::from_secs(1)),
            account_id: account_id.clone(),
            member_role: None,
        },
    );
    let members = czero_worker::engine_runner::Members::new(
        sdk.clone(),
        Sessions::new(&sdk, config.member_role_external_id.clone()),
        account_id,
        config.member_role_name.clone(),
    );
    let ledger = match &config.output_bucket {
        Some(bucket) => Ledger::s3(czero_worker::s3_client(&sdk), bucket, &config.ledger_prefix),
        None => Ledger::dir(config.output_dir.join(".ledger")),
    };
    let protection = config
        .ecs_agent_uri
        .as_deref()
        .map(|uri| Protection::new(uri, config.protection_expires_minutes));
    let queue = Queue::new(czero_worker::sqs_client(&sdk), config.queue_url.clone());
    let store = Store::new(czero_worker::s3_client(&sdk));
    let worker = Worker::new(
        config,
        queue,
        store,
        EngineRunner::new(engine, output).with_members(members),
        protection,
        Metrics::stdout(),
    )
    .with_ledger(ledger)
    // Used only by jobs whose mapping rule sets `update_finding` (Security Hub events).
    .with_findings(Findings::new(&sdk));
    let exit = worker.run(stop).await.context("polling the job queue");
    driver.shutdown().await;
    let exit = exit?;
    tracing::debug!(?exit, "worker exiting");
    Ok(())
}

/// The account the worker's credentials belong to (STS GetCallerIdentity), for policies
/// that say `{account_id}`. A failure is logged, not fatal: only such policies need it, and
/// they then fail with the reason.
async fn caller_account(sdk: &aws_config::SdkConfig) -> Option<String> {
    let conf = aws_sdk_sts::config::Builder::from(sdk)
        .retry_config(czero_engine::retry_config())
        .timeout_config(czero_engine::timeout_config())
        .build();
    match aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(o) => o.account().map(str::to_owned),
        Err(e) => {
            tracing::warn!(
                error = %aws_sdk_sts::error::DisplayErrorContext(&e),
                "AWS_ACCOUNT_ID is not set and GetCallerIdentity failed; policies using {{account_id}} will fail"
            );
            None
        }
    }
}
