//! `czero run -s OUT [--dryrun] [--event EVENT.json] [--region R] FILE...`: runs policies
//! natively (or through Cloud Custodian itself, the c7n driver) and prints a short summary per policy,
//! like `custodian run`. Exit codes: 0 ok, 1 a policy failed while running, 2 bad
//! configuration (options, output location, unreadable or invalid policy or event files).

use anyhow::{Context, Result};
use czero_engine::{Engine, EngineOptions, Output};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output: a directory or s3://bucket/prefix (c7n's layout, one folder per policy).
    #[arg(short = 's', long = "output-dir", value_name = "OUT")]
    pub output: String,
    /// Evaluate filters and report what the actions would do, without calling them.
    #[arg(long)]
    pub dryrun: bool,
    /// An EventBridge event (JSON file) for event-mode policies.
    #[arg(long, value_name = "EVENT.json")]
    pub event: Option<PathBuf>,
    /// AWS region (default: the environment's, else us-east-1).
    #[arg(short = 'r', long)]
    pub region: Option<String>,
    /// The Python with Cloud Custodian (c7n), for policies the native engine cannot run.
    #[arg(
        long,
        env = "CUSTODIAN_PYTHON",
        value_name = "PATH",
        default_value = "python3"
    )]
    pub python: PathBuf,
    /// Policy files (YAML or JSON).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

struct Loaded {
    output: Output,
    event: Option<serde_json::Value>,
    policies: Vec<czero_policy::Policy>,
}

fn load(args: &Args) -> Result<Loaded> {
    let output = Output::parse(&args.output).context("option -s")?;
    let event = match &args.event {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading event {}", p.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("event {} is not JSON", p.display()))?,
            )
        }
    };
    let mut policies = Vec::new();
    for f in &args.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let file = czero_policy::parse_str(&f.display().to_string(), &text)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        policies.extend(file.policies);
    }
    Ok(Loaded {
        output,
        event,
        policies,
    })
}

pub fn run(args: Args) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let loaded = match load(&args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run_all(args, loaded))
}

async fn run_all(args: Args, loaded: Loaded) -> ExitCode {
    let sdk = czero_engine::sdk_config(args.region.clone()).await;
    let engine = Engine::new(
        &sdk,
        EngineOptions {
            dryrun: args.dryrun,
            region: args.region.clone().unwrap_or_default(),
            driver: Some(czero_driver::Driver::new(czero_driver::DriverConfig {
                python: args.python.clone(),
                ..czero_driver::DriverConfig::default()
            })),
            account_id: None,
            ..EngineOptions::default()
        },
    );
    let mut failed = false;
    for policy in &loaded.policies {
        match engine
            .run(policy, loaded.event.as_ref(), &loaded.output)
            .await
        {
            Ok(r) => {
                let actions: Vec<String> = r
                    .actions
                    .iter()
                    .map(|a| {
                        let mut s = format!("{}:{}", a.action, a.resources);
                        if a.failed > 0 {
                            s.push_str(&format!(" ({} failed)", a.failed));
                        }
                        if a.dryrun {
                            s.push_str(" (dryrun)");
                        }
                        s
                    })
                    .collect();
                let executor = r.executor.name();
                println!(
                    "policy:{} resource:{} region:{} count:{} time:{:.3}s executor:{}",
                    r.policy,
                    r.resource_type,
                    engine.region(),
                    r.resources.len(),
                    r.duration.as_secs_f64(),
                    executor
                );
                for id in &r.resources {
                    println!("  matched: {id}");
                }
                if !actions.is_empty() {
                    println!("  actions: {}", actions.join(", "));
                }
                if !r.output_location.is_empty() {
                    println!("  output: {}", r.output_location);
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
