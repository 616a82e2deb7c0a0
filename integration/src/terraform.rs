//! Terraform driven from tests: a private copy of `terraform/` per test (state never lands in
//! the repository), providers from a local filesystem mirror only (no registry), every run
//! under a timeout with its output kept for the failure message.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous bounds: an apply on moto takes about a minute (SQS creation is slow there).
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(420);
pub const DESTROY_TIMEOUT: Duration = Duration::from_secs(240);
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(120);

pub use czero_testkit::project_root;

/// The Terraform executable: `CZERO_TERRAFORM`, else `terraform` from `PATH`, else OpenTofu's
/// `tofu` from `PATH` (the Nix path ships OpenTofu; both read the same configuration).
pub fn terraform_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CZERO_TERRAFORM") {
        return PathBuf::from(bin);
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    if !on_path("terraform") && on_path("tofu") {
        return PathBuf::from("tofu");
    }
    PathBuf::from("terraform")
}

/// The filesystem mirror holding the AWS provider: `CZERO_TF_PLUGIN_DIR`, else the first of
/// the usual mirror locations that contains `registry.terraform.io/hashicorp/aws` (or
/// OpenTofu's `registry.opentofu.org/hashicorp/aws`).
pub fn plugin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CZERO_TF_PLUGIN_DIR") {
        let dir = PathBuf::from(dir);
        if !has_aws_provider(&dir) {
            bail!(
                "CZERO_TF_PLUGIN_DIR={} holds no hashicorp/aws provider (registry.terraform.io or registry.opentofu.org)",
                dir.display()
            );
        }
        return Ok(dir);
    }
    let mut candidates = vec![
        PathBuf::from("/opt/tf-plugins"),
        PathBuf::from("/usr/local/share/terraform/plugins"),
        PathBuf::from("/usr/share/terraform/plugins"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".terraform.d/plugins"));
        candidates.push(Path::new(&home).join(".local/share/terraform/plugins"));
    }
    candidates
        .into_iter()
        .find(|d| has_aws_provider(d))
        .ok_or_else(|| {
            anyhow!(
                "no Terraform provider mirror with hashicorp/aws found (looked in /opt/tf-plugins, \
             the standard plugin directories and ~/.terraform.d/plugins): set CZERO_TF_PLUGIN_DIR"
            )
        })
}

fn has_aws_provider(dir: &Path) -> bool {
    ["registry.terraform.io", "registry.opentofu.org"]
        .iter()
        .any(|registry| dir.join(registry).join("hashicorp/aws").is_dir())
}

/// A private copy of the repository's `terraform/` tree with its own CLI configuration.
/// Dropping it deletes the copy, state files included.
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    bin: PathBuf,
    plugin_dir: PathBuf,
}

impl Workspace {
    /// Copies `terraform/` (without `.terraform/` directories, lock or state files).
    pub fn new() -> Result<Self> {
        let plugin_dir = plugin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("czero-tf-")
            .tempdir()
            .context("creating a temporary directory for Terraform")?;
        copy_tree(
            &project_root().join("terraform"),
            &dir.path().join("terraform"),
        )?;
        // An empty CLI configuration: no credentials helpers, no registry mirrors, no warning
        // about a missing ~/.terraformrc.
        std::fs::write(dir.path().join("terraformrc"), "")
            .context("writing the Terraform CLI configuration")?;
        Ok(Self {
            dir,
            bin: terraform_bin(),
            plugin_dir,
        })
    }

    /// A path inside the copied `terraform/` tree, such as `examples/local`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("terraform").join(rel)
    }

    /// A `terraform` command running in `rel` with the workspace's environment.
    pub fn command(&self, rel: &str) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(self.path(rel))
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("terraformrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("TF_DATA_DIR");
        cmd
    }

    /// Runs `terraform ARGS` in `rel`; returns stdout, or an error carrying both streams.
    pub fn run(&self, rel: &str, args: &[String], timeout: Duration) -> Result<String> {
        let mut cmd = self.command(rel);
        cmd.args(args);
        let what = format!("terraform {} (in terraform/{rel})", args.join(" "));
        let out = run_with_timeout(&mut cmd, timeout).with_context(|| what.clone())?;
        if !out.success {
            bail!(
                "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
                tail(&out.stdout),
                tail(&out.stderr)
            );
        }
        Ok(out.stdout)
    }

    /// `terraform init` against the provider mirror only.
    pub fn init(&self, rel: &str) -> Result<()> {
        let plugin_dir = format!("-plugin-dir={}", self.plugin_dir.display());
        self.run(
            rel,
            &args(&["init", "-backend=false", "-no-color", &plugin_dir]),
            QUICK_TIMEOUT,
        )
        .map(drop)
    }

    pub fn validate(&self, rel: &str) -> Result<()> {
        self.run(rel, &args(&["validate", "-no-color"]), QUICK_TIMEOUT)
            .map(drop)
    }

    pub fn apply(&self, rel: &str, vars: &[(&str, String)]) -> Result<()> {
        let mut a = args(&["apply", "-auto-approve", "-no-color"]);
        a.extend(var_args(vars));
        self.run(rel, &a, APPLY_TIMEOUT).map(drop)
    }

    pub fn destroy(&self, rel: &str, vars: &[(&str, String)]) -> Result<()> {
        let mut a = args(&["destroy", "-auto-approve", "-no-color"]);
        a.extend(var_args(vars));
        self.run(rel, &a, DESTROY_TIMEOUT).map(drop)
    }

    /// `terraform output -json`, flattened to `{name: value}`.
    pub fn outputs(&self, rel: &str) -> Result<Value> {
        let raw = self.run(rel, &args(&["output", "-json", "-no-color"]), QUICK_TIMEOUT)?;
        let parsed: Value =
            serde_json::from_str(&raw).context("parsing `terraform output -json`")?;
        let map = parsed
            .as_object()
            .ok_or_else(|| anyhow!("`terraform output -json` is not an object"))?;
        Ok(Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), v.get("value").cloned().unwrap_or(Value::Null)))
                .collect(),
        ))
    }

    /// Evaluates `expr` with `terraform console` in `rel` (after `init`), returning the
    /// printed value without surrounding whitespace.
    pub fn console(&self, rel: &str, vars: &[(&str, String)], expr: &str) -> Result<String> {
        let mut cmd = self.command(rel);
        cmd.arg("console").args(var_args(vars));
        let what = format!("terraform console (in terraform/{rel}) <<< {expr}");
        let out = run_with_input(&mut cmd, expr, QUICK_TIMEOUT).with_context(|| what.clone())?;
        if !out.success {
            bail!(
                "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
                tail(&out.stdout),
                tail(&out.stderr)
            );
        }
        Ok(out.stdout.trim().to_string())
    }
}

/// `terraform/examples/local` applied to an emulator at `endpoint`, in its own workspace.
#[derive(Debug)]
pub struct LocalExample {
    ws: Workspace,
    vars: Vec<(&'static str, String)>,
    outputs: Value,
}

impl LocalExample {
    pub const DIR: &'static str = "examples/local";

    /// Applies the example with `endpoint` and any further `-var`s.
    pub fn apply(endpoint: &str, extra_vars: &[(&'static str, String)]) -> Result<Self> {
        Self::apply_edited(endpoint, extra_vars, |_| Ok(()))
    }

    /// [`LocalExample::apply`] after `edit` has changed the workspace's copy of
    /// `terraform/` (its path is passed): negative tests take a permission out of
    /// `permissions.json` this way, leaving the repository untouched.
    pub fn apply_edited(
        endpoint: &str,
        extra_vars: &[(&'static str, String)],
        edit: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Self> {
        let ws = Workspace::new()?;
        edit(&ws.path(""))?;
        let mut vars = vec![("endpoint", endpoint.to_string())];
        vars.extend(extra_vars.iter().cloned());
        ws.init(Self::DIR)?;
        ws.apply(Self::DIR, &vars)?;
        let outputs = ws.outputs(Self::DIR)?;
        Ok(Self { ws, vars, outputs })
    }

    /// Every output of the example, `{name: value}`.
    pub fn outputs(&self) -> &Value {
        &self.outputs
    }

    /// A string output, or an error naming it.
    pub fn output_str(&self, name: &str) -> Result<&str> {
        self.outputs
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("terraform output `{name}` is missing or not a string"))
    }

    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// `terraform destroy` with the variables the stack was applied with.
    pub fn destroy(self) -> Result<()> {
        self.ws.destroy(Self::DIR, &self.vars)
    }
}

/// A minimal Lambda zip (a `bootstrap` script) in `dir`, so the emulator registers the
/// invoker, its role and its EventBridge rules (`create_invoker = true`); nothing runs it:
/// tests run the invoker as `czero invoke`.
pub fn stub_invoker_zip(dir: &Path) -> Result<PathBuf> {
    let bootstrap = dir.join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\nexit 0\n").context("writing bootstrap")?;
    let python = czero_testkit::python()?;
    let out = run_with_timeout(
        Command::new(python).current_dir(dir).args([
            "-m",
            "zipfile",
            "-c",
            "invoker.zip",
            "bootstrap",
        ]),
        QUICK_TIMEOUT,
    )?;
    if !out.success {
        bail!("zipping bootstrap failed: {}", out.stderr);
    }
    Ok(dir.join("invoker.zip"))
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn var_args(vars: &[(&str, String)]) -> Vec<String> {
    vars.iter()
        .flat_map(|(k, v)| ["-var".to_string(), format!("{k}={v}")])
        .collect()
}

/// The last lines of a long Terraform log: the error is at the end.
fn tail(s: &str) -> String {
    const LINES: usize = 80;
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| !l.contains("Still creating...") && !l.contains("Still destroying..."))
        .collect();
    let start = lines.len().saturating_sub(LINES);
    lines[start..].join("\n")
}

/// What a finished process printed.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion or kills it after `timeout`, capturing both streams.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Finished> {
    run_with_input(cmd, "", timeout)
}

fn run_with_input(cmd: &mut Command, input: &str, timeout: Duration) -> Result<Finished> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", cmd.get_program().to_string_lossy()))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(input.as_bytes())
            .context("writing to the child's stdin")?;
        // Dropping stdin closes it, so an interactive command sees end of input.
    }
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the child")? {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Finished {
            success: status.success(),
            stdout,
            stderr,
        }),
        None => bail!(
            "killed after {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
            tail(&stdout),
            tail(&stderr)
        ),
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Copies a directory tree, leaving out Terraform's working data and state.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str == ".terraform"
            || name_str == ".terraform.lock.hcl"
            || name_str.ends_with(".tfstate")
            || name_str.contains(".tfstate.")
        {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", src.display()))?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
            // The source may be a read-only store path (`nix run .#demo`); the copy is ours
            // to edit.
            let mut mode = std::fs::metadata(&dst)
                .with_context(|| format!("reading {}", dst.display()))?
                .permissions();
            mode.set_mode(mode.mode() | 0o200);
            std::fs::set_permissions(&dst, mode)
                .with_context(|| format!("making {} writable", dst.display()))?;
        }
    }
    Ok(())
}
