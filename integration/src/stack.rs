//! The local stack: moto, `terraform/examples/local` applied to it, the example policies and
//! mapping uploaded, and handles to run the invoker and the control plane against it.

use crate::iam::Identity;
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

/// `czero invoke`'s exit code for a failure the invoker calls retryable (`EX_TEMPFAIL`).
const INVOKE_RETRYABLE_EXIT: i32 = 75;
/// Attempts per event, as Lambda makes for an asynchronous invocation (one and two retries).
const INVOKE_ATTEMPTS: u32 = 3;

/// `czero local` gives its tasks `CZERO_TASK_AWS_ACCESS_KEY_ID` (and the secret and session
/// token) as their `AWS_*` credentials when set.
pub const TASK_CREDENTIALS_PREFIX: &str = "CZERO_TASK_";

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
    /// The invoker's role (only when the stack registers the invoker).
    pub invoker_role_arn: Option<String>,
    /// The worker tasks' role.
    pub task_role_arn: String,
}

/// Who calls AWS once IAM is enforced ([`Stack::enforce_iam`]): the administrator (the
/// harness and the control plane, which stand in for AWS itself), and sessions of the roles
/// Terraform created for the invoker and the workers.
#[derive(Debug, Clone)]
pub struct Identities {
    pub admin: Identity,
    pub invoker: Identity,
    pub worker: Identity,
}

/// A running local stack. Dropping it stops moto (and with it every resource).
#[derive(Debug)]
pub struct Stack {
    pub out: Outputs,
    pub sdk: SdkConfig,
    /// Set once IAM is enforced.
    pub identities: Option<Identities>,
    example: LocalExample,
    moto: Moto,
    /// Holds the stub invoker zip, which `terraform destroy` reads again.
    _scratch: tempfile::TempDir,
}

/// Knobs for one stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Whether the worker exits after `MAX_EMPTY_RECEIVES` empty receives inside the service.
    pub worker_idle_exit: bool,
    /// Terraform `enable_fast_wake`: the invoker gets WAKE_CLUSTER/WAKE_SERVICE and the
    /// scale-in alarm the scale-in guard (the local example's default is on).
    pub enable_fast_wake: bool,
    /// Register the invoker Lambda (a stub zip; `czero invoke` plays it) so that its role,
    /// rules and failure queue exist: tests that run with the roles' credentials need them.
    pub create_invoker: bool,
    /// IAM actions taken out of every entry of `permissions.json` before applying, so a
    /// negative test can show that the scenario needs them.
    pub remove_actions: Vec<String>,
    /// Terraform `member_role_name`: workers act in other accounts through this role.
    pub member_role_name: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            worker_idle_exit: true,
            enable_fast_wake: true,
            create_invoker: false,
            remove_actions: Vec::new(),
            member_role_name: None,
        }
    }
}

/// Removes `actions` from every entry of the module's `permissions.json` under `root`.
fn remove_actions(root: &Path, actions: &[String]) -> Result<()> {
    if actions.is_empty() {
        return Ok(());
    }
    let path = root.join("modules/custodian-zero/permissions.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut doc: Value = serde_json::from_str(&text)?;
    let mut removed = 0;
    for role in ["invoker", "worker", "engine"] {
        for entry in doc[role].as_array_mut().into_iter().flatten() {
            if let Some(list) = entry["actions"].as_array_mut() {
                let before = list.len();
                list.retain(|a| !a.as_str().is_some_and(|a| actions.iter().any(|x| x == a)));
                removed += before - list.len();
            }
        }
    }
    if removed == 0 {
        bail!("none of {actions:?} is in {}", path.display());
    }
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

impl Stack {
    /// Starts moto, applies the local example, and uploads policies and the mapping.
    pub async fn up(opts: &StackOptions, progress: &dyn Fn(&str)) -> Result<Stack> {
        progress("starting the AWS emulator (moto)");
        let moto = Moto::start().context("starting moto")?;
        progress("applying terraform/examples/local to the emulator (about a minute)");
        let endpoint = moto.endpoint();
        let scratch = tempfile::tempdir()?;
        let mut vars = vec![
            ("worker_idle_exit", opts.worker_idle_exit.to_string()),
            ("enable_fast_wake", opts.enable_fast_wake.to_string()),
        ];
        if opts.create_invoker {
            let zip = crate::terraform::stub_invoker_zip(scratch.path())?;
            vars.push(("create_invoker", "true".into()));
            vars.push(("invoker_zip_path", zip.display().to_string()));
        }
        if let Some(name) = &opts.member_role_name {
            vars.push(("member_role_name", name.clone()));
        }
        let remove = opts.remove_actions.clone();
        let example = tokio::task::spawn_blocking(move || {
            LocalExample::apply_edited(&endpoint, &vars, |root| remove_actions(root, &remove))
        })
        .await
        .context("terraform task panicked")??;
        let out = read_outputs(example.outputs())?;
        let stack = Stack {
            sdk: moto.sdk_config(),
            identities: None,
            out,
            example,
            moto,
            _scratch: scratch,
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

    /// Environment for any of our binaries so that they talk to this stack's emulator (as
    /// the administrator once IAM is enforced).
    pub fn aws_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .moto
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        if let Some(ids) = &self.identities {
            let creds = ids.admin.env();
            env.retain(|(k, _)| !creds.iter().any(|(c, _)| c == k));
            env.extend(creds);
        }
        env
    }

    /// Switches moto's IAM enforcement on, after creating an administrator and sessions of
    /// the invoker's and the workers' roles. From then on the harness and the control plane
    /// act as the administrator, `czero invoke` as the invoker's role and every worker as
    /// the task role: a permission the roles lack fails the scenario with AccessDenied.
    pub fn enforce_iam(&mut self) -> Result<()> {
        let invoker = self.out.invoker_role_arn.clone().ok_or_else(|| {
            anyhow!("the stack has no invoker role: apply it with StackOptions::create_invoker")
        })?;
        let task = self.out.task_role_arn.clone();
        let ids = crate::iam::identities(&self.endpoint(), true, &[&invoker, &task])?;
        let admin = ids.admin.clone();
        self.sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    admin.sdk_credentials(),
                ),
            )
            .endpoint_url(self.endpoint())
            .build();
        self.identities = Some(Identities {
            admin,
            invoker: ids.role(&invoker)?.clone(),
            worker: ids.role(&task)?.clone(),
        });
        Ok(())
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
        let invoke = |file: &Path| {
            let mut cmd = tokio::process::Command::new(&czero);
            cmd.arg("invoke")
                .arg("--event")
                .arg(file)
                .envs(self.aws_env())
                .envs(self.out.invoker_env.clone())
                .envs(self.identities.iter().flat_map(|i| i.invoker.env()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd
        };
        let mut outputs = Vec::new();
        for chunk in events.chunks(parallel.max(1)) {
            let mut children = Vec::new();
            for event in chunk {
                let id = event["id"].as_str().unwrap_or("event");
                let file = dir.join(format!("{id}.json"));
                std::fs::write(&file, serde_json::to_vec_pretty(event)?)?;
                let child = invoke(&file).spawn().context("starting czero invoke")?;
                children.push((file, child));
            }
            for (file, child) in children {
                let mut out = child.wait_with_output().await?;
                // Lambda retries an asynchronous invocation that failed twice; the invoker
                // says which failures are worth it (an emulator too busy to accept a
                // connection in time, say) by exiting 75.
                let mut attempt = 1;
                while out.status.code() == Some(INVOKE_RETRYABLE_EXIT) && attempt < INVOKE_ATTEMPTS
                {
                    eprintln!(
                        "[invoke] {}: retryable failure, retried as Lambda would: {}",
                        file.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                    tokio::time::sleep(Duration::from_secs(attempt.into())).await;
                    out = invoke(&file).output().await?;
                    attempt += 1;
                }
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
        // The control plane stands in for AWS and keeps the administrator's credentials; its
        // tasks get the task role's, as ECS gives them.
        cmd.envs(self.aws_env())
            .envs(
                self.identities
                    .iter()
                    .flat_map(|i| i.worker.env_with_prefix(TASK_CREDENTIALS_PREFIX)),
            )
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
        invoker_role_arn: v
            .get("invoker_role_arn")
            .and_then(Value::as_str)
            .map(str::to_string),
        task_role_arn: s("task_role_arn")?,
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
