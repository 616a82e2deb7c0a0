//! Test support shared by every crate's tests: a private moto server per test, and SDK
//! configurations for wiremock stubs. Used only from `[dev-dependencies]`.
//!
//! moto comes from the project's virtualenv (`.venv/`, created by `cargo xtask test`) or
//! from `CZERO_PYTHON`. A test that needs it and cannot find it fails with a message saying
//! how to install it: an emulator test never silently passes by skipping.

pub mod fault_proxy;

use anyhow::{Context, Result, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root: `CZERO_PROJECT_ROOT` when set (a binary built elsewhere, such as the
/// demo `nix run .#demo` ships with the files it reads), else found from this crate's
/// manifest directory at build time.
pub fn project_root() -> PathBuf {
    if let Some(root) = std::env::var_os("CZERO_PROJECT_ROOT") {
        return PathBuf::from(root);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Uploads what a deployment keeps in its policy bucket: every `policies/*.yml` (or
/// `.yaml`) of the project under `policies/`, and `config/policy-mappings.json`.
/// Returns the keys written.
pub async fn upload_project_policies(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<String>> {
    let root = project_root();
    let mut files = vec![(
        "config/policy-mappings.json".to_owned(),
        root.join("config/policy-mappings.json"),
    )];
    for entry in std::fs::read_dir(root.join("policies")).context("reading policies/")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("policy path without a name")?;
            files.push((format!("policies/{name}"), path));
        }
    }
    let mut keys = Vec::new();
    for (key, path) in files {
        let body = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .with_context(|| format!("uploading {key}"))?;
        keys.push(key);
    }
    Ok(keys)
}

/// A queue's visible and in-flight message counts.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(u64, u64)> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let resp = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .with_context(|| format!("sqs get-queue-attributes {url}"))?;
    let get = |a: &A| -> u64 {
        resp.attributes()
            .and_then(|m| m.get(a))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((
        get(&A::ApproximateNumberOfMessages),
        get(&A::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// The Python interpreter that has moto (and c7n) installed.
pub fn python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CZERO_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = project_root().join(".venv/bin/python");
    if venv.exists() {
        return Ok(venv);
    }
    bail!(
        "no Python with moto found: run `cargo xtask test` once (it creates {}), or set CZERO_PYTHON",
        project_root().join(".venv").display()
    )
}

/// A moto server on a free loopback port, stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts `integration/moto/server.py` (moto plus the gap fixes the project needs) and
    /// waits until it answers.
    pub fn start() -> Result<Self> {
        Moto::start_with_env(&[])
    }

    /// [`Moto::start`] with extra environment for the server, e.g. moto's own settings
    /// (`MOTO_AMIS_PATH`), which it reads when it starts.
    pub fn start_with_env(env: &[(&str, &str)]) -> Result<Self> {
        let python = python()?;
        let port = free_port()?;
        let script = project_root().join("integration/moto/server.py");
        let child = Command::new(&python)
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
        let mut moto = Moto { child, port };
        moto.wait_ready(Duration::from_secs(60))?;
        Ok(moto)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                bail!("moto server exited before it was ready: {status}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "moto server on port {} not ready after {:?}",
            self.port,
            timeout
        )
    }

    /// `http://127.0.0.1:PORT` (an IP, not `localhost`: see BRIEF on DNS stalls).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An SDK configuration pointing every client at this server.
    pub fn sdk_config(&self) -> SdkConfig {
        stub_config(&self.endpoint())
    }

    /// Environment variables a child process (worker, invoker, custodian) needs to talk to
    /// this server instead of AWS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixed-region, fixed-credential SDK configuration for `endpoint` (a wiremock server
/// or an emulator). One helper so every contract test builds clients the same way.
pub fn stub_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            Credentials::for_tests(),
        ))
        .endpoint_url(endpoint)
        .build()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}
