//! `czero local`: the local control plane. Plays Application Auto Scaling and the ECS
//! scheduler against an emulator (moto): reads the scaling policies Terraform deployed (or
//! `--config`), polls the queue, sets the service's desired count with `UpdateService`, and
//! runs that many workers as Docker containers or processes. Exit codes: 0 ok, 1 a failure
//! while running, 2 bad configuration.

use anyhow::{Context, Result, bail};
use czero_local::{DockerLauncher, Emulator, LocalOptions, ProcessLauncher, Timeline};
use std::path::PathBuf;
use std::process::ExitCode;

/// Worker settings passed from this environment to every task when set.
const PASSTHROUGH: &[&str] = &[
    "POLICY_BUCKET",
    "POLICY_MAPPING_KEY",
    "DEFAULT_POLICY_KEY",
    "OUTPUT_BUCKET",
    "MAX_EMPTY_RECEIVES",
    "WAIT_TIME_SECONDS",
    "IDLE_EXIT",
    "CUSTODIAN_PYTHON",
    "RUST_LOG",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
];

/// Credentials for the tasks instead of the control plane's own, read from this process's
/// environment: `CZERO_TASK_AWS_ACCESS_KEY_ID`, `CZERO_TASK_AWS_SECRET_ACCESS_KEY` and
/// `CZERO_TASK_AWS_SESSION_TOKEN` become the tasks' `AWS_*`. ECS hands a task its task
/// role's credentials while the control plane (standing in for AWS) keeps its own; with
/// these a test gives the workers a session of the task role and sees what the role denies.
/// Environment variables rather than `--task-env`, so secrets never show in `ps`.
pub const TASK_CREDENTIALS: [(&str, &str); 3] = [
    ("CZERO_TASK_AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    ("CZERO_TASK_AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    ("CZERO_TASK_AWS_SESSION_TOKEN", "AWS_SESSION_TOKEN"),
];

/// The tasks' credentials from [`TASK_CREDENTIALS`], if the key id is set. The session
/// token is always given (empty when absent, which the SDKs read as none), so a process
/// task cannot inherit the control plane's own token.
fn task_credentials(get: impl Fn(&str) -> Option<String>) -> Result<Option<Vec<(String, String)>>> {
    let Some(key) = get(TASK_CREDENTIALS[0].0).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let secret = get(TASK_CREDENTIALS[1].0)
        .filter(|v| !v.is_empty())
        .with_context(|| {
            format!(
                "{} is set but {} is not",
                TASK_CREDENTIALS[0].0, TASK_CREDENTIALS[1].0
            )
        })?;
    let token = get(TASK_CREDENTIALS[2].0).unwrap_or_default();
    Ok(Some(vec![
        (TASK_CREDENTIALS[0].1.to_owned(), key),
        (TASK_CREDENTIALS[1].1.to_owned(), secret),
        (TASK_CREDENTIALS[2].1.to_owned(), token),
    ]))
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Emulator endpoint, e.g. http://127.0.0.1:5000 (default: AWS_ENDPOINT_URL).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint: Option<String>,
    /// AWS region (default: the environment's, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long, default_value = "custodian-cluster")]
    pub cluster: String,
    #[arg(long, default_value = "custodian-worker")]
    pub service: String,
    /// The job queue's URL (default: the queue the scaling alarms watch).
    #[arg(long, value_name = "URL", conflicts_with = "queue_name")]
    pub queue_url: Option<String>,
    /// The job queue's name, looked up with GetQueueUrl.
    #[arg(long, value_name = "NAME")]
    pub queue_name: Option<String>,
    /// Scaling config (TOML or JSON) instead of the policies in the emulator.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run tasks as processes of this binary.
    #[arg(long, value_name = "PATH", conflicts_with = "worker_image")]
    pub worker_bin: Option<PathBuf>,
    /// Run tasks as Docker containers of this image (`--network host`).
    #[arg(long, value_name = "TAG")]
    pub worker_image: Option<String>,
    /// Simulated seconds per real second: 60 makes a 5-minute cooldown last 5 seconds.
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub time_scale: f64,
    /// Write the timeline as JSON lines {t, queue_visible, queue_inflight, desired, running, action}.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
    /// Exit once the queue is empty and desired = running = 0, after having been active.
    #[arg(long)]
    pub until_idle: bool,
    /// Exit after this many simulated seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Simulated seconds between the end of an alarm period and the alarms seeing its
    /// datapoint (CloudWatch's delay; 0 reads the queue directly).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub metric_lag: u64,
    /// Simulated seconds between SIGTERM and SIGKILL when a task is stopped (ECS stopTimeout).
    #[arg(long, default_value_t = czero_local::scheduler::DEFAULT_STOP_TIMEOUT_S, value_name = "SECONDS")]
    pub stop_timeout: f64,
    /// Extra environment for the tasks (repeatable).
    #[arg(long = "task-env", value_name = "KEY=VALUE")]
    pub task_env: Vec<String>,
    /// Write each task's output to DIR/<task-id>.log.
    #[arg(long, value_name = "DIR")]
    pub task_logs: Option<PathBuf>,
    /// Do not print the live table on stderr.
    #[arg(long)]
    pub no_table: bool,
    /// Also record tasks in the emulator with RunTask/StopTask (moto 5.2.5 fails RunTask for
    /// awsvpc task definitions, so this is off by default).
    #[arg(long)]
    pub record_tasks: bool,
}

enum Worker {
    Bin(PathBuf),
    Image(String),
}

const DEFAULT_IMAGE: &str = "custodian-worker:latest";

async fn pick_worker(args: &Args) -> Result<Worker> {
    if let Some(p) = &args.worker_bin {
        return Ok(Worker::Bin(p.clone()));
    }
    if let Some(i) = &args.worker_image {
        return Ok(Worker::Image(i.clone()));
    }
    if czero_local::launcher::docker_image_available(DEFAULT_IMAGE).await {
        return Ok(Worker::Image(DEFAULT_IMAGE.to_owned()));
    }
    let exe = std::env::current_exe().context("locating the czero binary")?;
    let bin = exe.with_file_name("custodian-worker");
    if !bin.exists() {
        bail!(
            "no worker: Docker image {DEFAULT_IMAGE} not found and {} does not exist; pass --worker-bin or --worker-image",
            bin.display()
        );
    }
    Ok(Worker::Bin(bin))
}

struct Prepared {
    emulator: Emulator,
    opts: LocalOptions,
    env: Vec<(String, String)>,
    worker: Worker,
}

async fn prepare(args: &Args) -> Result<Prepared> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        bail!(
            "option --time-scale: must be a positive number, got {}",
            args.time_scale
        );
    }
    // Against an emulator with no region configured, us-east-1 (instead of asking IMDS).
    let env_region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok();
    let region = args
        .region
        .clone()
        .or(env_region)
        .or_else(|| args.endpoint.as_ref().map(|_| "us-east-1".to_owned()));
    let config =
        czero_local::emulator::sdk_config(args.endpoint.as_deref(), region.as_deref()).await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let emulator = Emulator::new(&config);
    let setup = match &args.config {
        Some(path) => czero_local::load_config(path)?,
        None => emulator.read_setup(&args.cluster, &args.service).await.with_context(|| {
            format!(
                "reading the scaling policies of service {} in cluster {} (pass --config to use a file instead)",
                args.service, args.cluster
            )
        })?,
    };
    let queue_url = match (&args.queue_url, &args.queue_name, &setup.queue_name) {
        (Some(url), _, _) => url.clone(),
        (None, Some(name), _) | (None, None, Some(name)) => emulator
            .queue_url(name)
            .await
            .with_context(|| format!("looking up queue {name}"))?,
        (None, None, None) => bail!("no queue: pass --queue-url or --queue-name"),
    };
    let mut env: Vec<(String, String)> = PASSTHROUGH
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    if let Some(e) = &args.endpoint {
        env.push(("AWS_ENDPOINT_URL".into(), e.clone()));
    }
    // Tasks talk to the same region as the control plane.
    if !env.iter().any(|(k, _)| k == "AWS_REGION") {
        env.push(("AWS_REGION".into(), region.clone()));
    }
    env.push(("SQS_QUEUE_URL".into(), queue_url.clone()));
    if let Some(creds) = task_credentials(|k| std::env::var(k).ok())? {
        env.retain(|(k, _)| !creds.iter().any(|(c, _)| c == k));
        env.extend(creds);
    }
    for kv in &args.task_env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("option --task-env {kv}: expected KEY=VALUE"))?;
        env.retain(|(existing, _)| existing != k);
        env.push((k.to_owned(), v.to_owned()));
    }
    let worker = pick_worker(args).await?;
    let opts = LocalOptions {
        cluster: args.cluster.clone(),
        service: args.service.clone(),
        queue_url,
        setup,
        time_scale: args.time_scale,
        stop_timeout_s: args.stop_timeout,
        until_idle: args.until_idle,
        duration_s: args.duration,
        record_tasks: args.record_tasks,
        metric_lag_s: args.metric_lag,
        arn_base: format!("arn:aws:ecs:{region}:123456789012"),
    };
    Ok(Prepared {
        emulator,
        opts,
        env,
        worker,
    })
}

async fn execute(args: Args) -> Result<ExitCode> {
    let p = match prepare(&args).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("czero local: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let json: Option<Box<dyn std::io::Write + Send>> = match &args.timeline {
        Some(path) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))),
        None => None,
    };
    let table: Option<Box<dyn std::io::Write + Send>> = if args.no_table {
        None
    } else {
        Some(Box::new(std::io::stderr()))
    };
    let mut timeline = Timeline::new(json, table);
    if let Some(dir) = &args.task_logs {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Ctrl-C or SIGTERM: stop the tasks before exiting, never leave workers behind.
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let summary = match p.worker {
        Worker::Bin(bin) => {
            let launcher =
                ProcessLauncher::new(bin, Vec::new(), p.env).with_log_dir(args.task_logs.clone());
            czero_local::run(&p.emulator, launcher, &p.opts, &mut timeline, shutdown).await?
        }
        Worker::Image(image) => {
            let launcher = DockerLauncher::new(image, p.env).with_log_dir(args.task_logs.clone());
            czero_local::run(&p.emulator, launcher, &p.opts, &mut timeline, shutdown).await?
        }
    };
    let seq: Vec<String> = summary
        .desired_sequence
        .iter()
        .map(u32::to_string)
        .collect();
    eprintln!(
        "desired counts: {}; tasks started: {}, relaunched: {}; simulated time {:.0} s",
        seq.join(" → "),
        summary.starts,
        summary.relaunches,
        summary.duration_s
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: Args) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("czero local: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("czero local: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn task_credentials_replace_the_control_planes_only_when_given() -> Result<()> {
        assert_eq!(task_credentials(from(&[]))?, None);
        let got = task_credentials(from(&[
            ("CZERO_TASK_AWS_ACCESS_KEY_ID", "ASIA1"),
            ("CZERO_TASK_AWS_SECRET_ACCESS_KEY", "s"),
            ("CZERO_TASK_AWS_SESSION_TOKEN", "t"),
        ]))?;
        assert_eq!(
            got,
            Some(vec![
                ("AWS_ACCESS_KEY_ID".into(), "ASIA1".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "s".into()),
                ("AWS_SESSION_TOKEN".into(), "t".into()),
            ])
        );
        // A long-term key has no token: the tasks get an empty one, not the control plane's.
        let got = task_credentials(from(&[
            ("CZERO_TASK_AWS_ACCESS_KEY_ID", "AKIA1"),
            ("CZERO_TASK_AWS_SECRET_ACCESS_KEY", "s"),
        ]))?;
        assert_eq!(
            got.and_then(|c| c.into_iter().find(|(k, _)| k == "AWS_SESSION_TOKEN")),
            Some(("AWS_SESSION_TOKEN".into(), String::new()))
        );
        let err = task_credentials(from(&[("CZERO_TASK_AWS_ACCESS_KEY_ID", "AKIA1")]));
        assert!(
            err.is_err_and(|e| e.to_string().contains("CZERO_TASK_AWS_SECRET_ACCESS_KEY")),
            "a key without its secret is a configuration error"
        );
        Ok(())
    }
}
