//! The local stack: moto, `terraform/examples/local` applied to it, the example policies and
//! mapping uploaded, and handles to run the invoker and the control plane against it.

use crate::terraform::LocalExample;
use anyhow::{Context, Result, anyhow, bail};
use aws_config::SdkConfig;
use czero_testkit::Moto;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The region the local stack lives in (moto's default).
pub const REGION: &str = "us-east-1";

/// What Terraform created, read from its outputs.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub queue_url: String,
    pub dlq_url: String,
    pub policy_bucket: String,
    pub output_bucket: String,
    pub cluster: String,
    pub service: String,
    /// The worker's environment as Terraform put it in the task definition.
    pub worker_env: BTreeMap<String, String>,
    /// The invoker's environment as Terraform put it on the Lambda.
    pub invoker_env: BTreeMap<String, String>,
}

/// A running local stack. Dropping it stops moto (and with it every resource).
#[derive(Debug)]
pub struct Stack {
    pub out: Outputs,
    pub sdk: SdkConfig,
    example: LocalExample,
    moto: Moto,
}

/// Knobs for one stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Whether the worker exits after `MAX_EMPTY_RECEIVES` empty receives inside the service.
    pub worker_idle_exit: bool,
    /// Terraform `enable_fast_wake`: the invoker gets WAKE_CLUSTER/WAKE_SERVICE and the
    /// scale-in alarm the scale-in guard (the local example's default is on).
    pub enable_fast_wake: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            worker_idle_exit: true,
            enable_fast_wake: true,
        }
    }
}

impl Stack {
    /// Starts moto, applies the local example, and uploads policies and the mapping.
    pub async fn up(opts: &StackOptions, progress: &dyn Fn(&str)) -> Result<Stack> {
        progress("starting the AWS emulator (moto)");
        let moto = Moto::start().context("starting moto")?;
        progress("applying terraform/examples/local to the emulator (about a minute)");
        let endpoint = moto.endpoint();
        let vars = vec![
            ("worker_idle_exit", opts.worker_idle_exit.to_string()),
            ("enable_fast_wake", opts.enable_fast_wake.to_string()),
        ];
        let example = tokio::task::spawn_blocking(move || LocalExample::apply(&endpoint, &vars))
            .await
            .context("terraform task panicked")??;
        let out = read_outputs(example.outputs())?;
        let stack = Stack {
            sdk: moto.sdk_config(),
            out,
            example,
            moto,
        };
        progress("uploading policies/ and config/policy-mappings.json");
        stack.upload_policies().await?;
        Ok(stack)
    }

    pub fn endpoint(&self) -> String {
        self.moto.endpoint()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    /// Uploads every `policies/*.yml` under `policies/` and the mapping under `config/`.
    pub async fn upload_policies(&self) -> Result<()> {
        czero_testkit::upload_project_policies(&self.s3(), &self.out.policy_bucket).await?;
        Ok(())
    }

    /// Environment for any of our binaries so that they talk to this stack's emulator.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        self.moto
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    /// Creates buckets as a careless developer would: no encryption, no public access block.
    pub async fn create_buckets(&self, names: &[String]) -> Result<()> {
        let s3 = self.s3();
        for name in names {
            s3.create_bucket()
                .bucket(name)
                .send()
                .await
                .with_context(|| format!("creating bucket {name}"))?;
        }
        Ok(())
    }

    /// Runs `czero invoke --event FILE` for each event, `parallel` at a time, as EventBridge
    /// would invoke the Lambda. Returns each invocation's stdout (the queued jobs).
    pub async fn invoke_all(
        &self,
        events: &[Value],
        parallel: usize,
        dir: &Path,
    ) -> Result<Vec<String>> {
        let czero = bin("czero")?;
        let mut outputs = Vec::new();
        for chunk in events.chunks(parallel.max(1)) {
            let mut children = Vec::new();
            for event in chunk {
                let id = event["id"].as_str().unwrap_or("event");
                let file = dir.join(format!("{id}.json"));
                std::fs::write(&file, serde_json::to_vec_pretty(event)?)?;
                let mut cmd = tokio::process::Command::new(&czero);
                cmd.arg("invoke")
                    .arg("--event")
                    .arg(&file)
                    .envs(self.aws_env())
                    .envs(self.out.invoker_env.clone())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                children.push(cmd.spawn().context("starting czero invoke")?);
            }
            for child in children {
                let out = child.wait_with_output().await?;
                if !out.status.success() {
                    bail!(
                        "czero invoke failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
            }
        }
        Ok(outputs)
    }

    /// Starts `czero local` against this stack: it plays Application Auto Scaling and the
    /// ECS scheduler, starting workers as containers (`image`) or processes.
    pub fn control_plane(&self, opts: &ControlPlane) -> Result<Child> {
        self.control_plane_with(opts, &[])
    }

    /// [`Stack::control_plane`] with further `czero local` arguments (e.g. `--metric-lag`).
    pub fn control_plane_with(&self, opts: &ControlPlane, extra_args: &[&str]) -> Result<Child> {
        let mut cmd = Command::new(bin("czero")?);
        cmd.arg("local")
            .args(["--endpoint", &self.endpoint()])
            .args(["--cluster", &self.out.cluster])
            .args(["--service", &self.out.service])
            .args(["--queue-url", &self.out.queue_url])
            .args(["--time-scale", &opts.time_scale.to_string()])
            .arg("--timeline")
            .arg(&opts.timeline)
            .arg("--until-idle")
            // --duration counts simulated seconds; max_duration is wall-clock time.
            .args([
                "--duration",
                &(opts.max_duration.as_secs_f64() * opts.time_scale).to_string(),
            ]);
        match &opts.image {
            Some(image) => cmd.args(["--worker-image", image]),
            None => cmd.arg("--worker-bin").arg(bin("custodian-worker")?),
        };
        if !opts.live {
            cmd.arg("--no-table");
        }
        if let Some(dir) = &opts.task_log_dir {
            cmd.arg("--task-logs").arg(dir);
        }
        for (k, v) in self.worker_task_env(opts) {
            cmd.arg("--task-env").arg(format!("{k}={v}"));
        }
        cmd.args(extra_args);
        cmd.envs(self.aws_env())
            .stdout(opts.stdout())
            .stderr(opts.stderr())
            .spawn()
            .context("starting czero local")
    }

    /// The worker's environment: what Terraform put in the task definition, with the long
    /// poll shortened and the job and visibility timeouts time-scaled like the control plane,
    /// so that a killed worker's jobs reappear in seconds, as minutes would pass on AWS.
    fn worker_task_env(&self, opts: &ControlPlane) -> BTreeMap<String, String> {
        let mut env = self.out.worker_env.clone();
        env.insert(
            "WAIT_TIME_SECONDS".into(),
            opts.wait_time_seconds.to_string(),
        );
        for (key, default, floor) in [
            ("JOB_TIMEOUT_SECONDS", 300.0, 2.0),
            ("VISIBILITY_TIMEOUT_SECONDS", 360.0, 4.0),
        ] {
            let aws: f64 = env.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
            let scaled = (aws / opts.time_scale).ceil().max(floor);
            env.insert(key.into(), (scaled as u64).to_string());
        }
        env.insert("LOG_FORMAT".into(), "json".into());
        env
    }

    /// `(desired, running)` of the worker service, as `aws ecs describe-services` shows them.
    pub async fn service_counts(&self) -> Result<(i32, i32)> {
        let resp = self
            .ecs()
            .describe_services()
            .cluster(&self.out.cluster)
            .services(&self.out.service)
            .send()
            .await
            .context("ecs describe-services")?;
        let svc = resp
            .services()
            .first()
            .ok_or_else(|| anyhow!("service {} not found", self.out.service))?;
        Ok((svc.desired_count(), svc.running_count()))
    }

    /// Visible and in-flight messages of a queue.
    pub async fn queue_depth(&self, url: &str) -> Result<(u64, u64)> {
        czero_testkit::queue_depth(&self.sqs(), url).await
    }

    /// What the default policy should have done to a bucket.
    pub async fn bucket_state(&self, bucket: &str) -> Result<BucketState> {
        let s3 = self.s3();
        let encrypted = s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .ok()
            .and_then(|r| {
                r.server_side_encryption_configuration()
                    .map(|c| !c.rules().is_empty())
            })
            .unwrap_or(false);
        let public_access_blocked = s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .ok()
            .and_then(|r| {
                r.public_access_block_configuration().map(|c| {
                    c.block_public_acls() == Some(true)
                        && c.ignore_public_acls() == Some(true)
                        && c.block_public_policy() == Some(true)
                        && c.restrict_public_buckets() == Some(true)
                })
            })
            .unwrap_or(false);
        let tags = s3
            .get_bucket_tagging()
            .bucket(bucket)
            .send()
            .await
            .map(|r| {
                r.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(BucketState {
            encrypted,
            public_access_blocked,
            tags,
        })
    }

    /// Keys under `prefix` in the output bucket.
    pub async fn output_keys(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3()
            .list_objects_v2()
            .bucket(&self.out.output_bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.context("listing the output bucket")?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    /// Destroys the Terraform stack (the emulator stops when the stack is dropped).
    pub fn destroy(self) -> Result<()> {
        self.example.destroy()
    }
}

/// A bucket's state after remediation.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    pub encrypted: bool,
    pub public_access_blocked: bool,
    pub tags: BTreeMap<String, String>,
}

/// How to run `czero local`.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub time_scale: f64,
    pub timeline: PathBuf,
    pub max_duration: Duration,
    /// A Docker image to run workers from; `None` runs them as processes.
    pub image: Option<String>,
    pub wait_time_seconds: u32,
    /// Show the live table (demo) instead of capturing it (tests).
    pub live: bool,
    /// Where the control plane's own output goes when not live.
    pub log: Option<PathBuf>,
    /// Each task's output goes to a file here.
    pub task_log_dir: Option<PathBuf>,
}

impl ControlPlane {
    fn stdout(&self) -> Stdio {
        self.sink()
    }

    fn stderr(&self) -> Stdio {
        self.sink()
    }

    fn sink(&self) -> Stdio {
        if self.live {
            return Stdio::inherit();
        }
        match &self.log {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
            None => Stdio::null(),
        }
    }
}

fn read_outputs(v: &Value) -> Result<Outputs> {
    let s = |name: &str| -> Result<String> {
        v.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("terraform output `{name}` is missing or not a string"))
    };
    let env = |name: &str| -> BTreeMap<String, String> {
        v.get(name)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Outputs {
        queue_url: s("queue_url")?,
        dlq_url: s("dlq_url")?,
        policy_bucket: s("policy_bucket")?,
        output_bucket: s("output_bucket")?,
        cluster: s("cluster_name")?,
        service: s("service_name")?,
        worker_env: env("worker_environment"),
        invoker_env: env("invoker_environment"),
    })
}

/// One of the workspace's binaries, next to the running test or demo executable (cargo
/// puts test binaries in `target/<profile>/deps` and binaries in `target/<profile>`), or in
/// `CZERO_BIN_DIR`.
pub fn bin(name: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CZERO_BIN_DIR") {
        return existing(PathBuf::from(dir).join(name));
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "`{name}` not found next to {}: build it first (`cargo build -p czero -p czero-worker`) or set CZERO_BIN_DIR",
        exe.display()
    )
}

fn existing(path: PathBuf) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        bail!("{} does not exist", path.display())
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
