//! `czero invoke --event FILE.json`: exactly what the invoker Lambda does with one
//! EventBridge event (same configuration variables, same handler), printing the outcome —
//! the job it queued, or why the event was skipped — as JSON on stdout.
//!
//! Exit codes: 0 done (queued or skipped), 2 bad configuration, 75 a failure Lambda would
//! retry (a throttled or failed AWS call, a policy not uploaded yet: the Lambda reports
//! these as `czero.Retryable.*`), 1 any other failure.

use anyhow::Context;
use aws_config::BehaviorVersion;
use czero_invoker::{Config, InvokeError, Invoker, SdkAws, event};
use std::path::PathBuf;
use std::process::ExitCode;

/// The exit code of a failure the invoker calls retryable (`EX_TEMPFAIL`): a script that
/// plays EventBridge retries these and gives up on the rest.
pub const EXIT_RETRYABLE: u8 = 75;

#[derive(clap::Args)]
pub struct Args {
    /// One EventBridge event (as EventBridge delivers it to the Lambda).
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    czero_invoker::init_tracing();
    // Configuration is checked before anything else, as the Lambda's cold start does.
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("czero invoke: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("czero invoke: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(invoke(&args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("czero invoke: {e:#}");
            // The handler's error survives the context added on the way up.
            if e.downcast_ref::<InvokeError>()
                .is_some_and(InvokeError::retryable)
            {
                ExitCode::from(EXIT_RETRYABLE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn invoke(args: &Args, config: Config) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.event).with_context(|| format!("reading {}", args.event.display()))?;
    let parsed = event::parse_bytes(&bytes).with_context(|| format!("{}", args.event.display()))?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let invoker = Invoker::new(SdkAws::new(&sdk), config);
    let outcome = invoker
        .process(parsed, None)
        .await
        .with_context(|| format!("invoking with {}", args.event.display()))?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(())
}
