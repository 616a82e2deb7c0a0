//! The project's Python environment in `.venv/`: c7n exactly as the full worker image has it
//! (installed from `crates/driver/requirements.lock`, hashes checked) and moto (the AWS
//! emulator) from `integration/moto/requirements.lock`, so the differential tests, the
//! benchmarks, the image and the Nix checks run one c7n and one moto.

use crate::{lock, project_root, run_cmd};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn venv_python() -> PathBuf {
    project_root().join(".venv/bin/python")
}

/// Prints `name installed-version` for each name on stdin's lines (`-` when absent).
const VERSIONS_SCRIPT: &str = r#"
import importlib.metadata as md, sys
for name in sys.stdin.read().split():
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "-")
"#;

/// The locked projects whose installed version differs from the lock, as `name: have → want`.
fn drift(python: &Path, wheels: &[lock::Wheel]) -> Result<Vec<String>> {
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", VERSIONS_SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("could not run {}: {e}", python.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let names: Vec<&str> = wheels.iter().map(|w| w.name.as_str()).collect();
        stdin.write_all(names.join("\n").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{} could not list installed versions", python.display());
    }
    let have: std::collections::HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Ok(wheels
        .iter()
        .filter(|w| have.get(&w.name) != Some(&w.version))
        .map(|w| {
            let got = have.get(&w.name).map_or("-", String::as_str);
            format!("{}: {got} → {}", w.name, w.version)
        })
        .collect())
}

/// Creates `.venv` if needed and makes it match both locks, unless it already does.
pub fn ensure() -> Result<PathBuf> {
    let root = project_root();
    let mut wheels = lock::read_requirements(&root)?;
    wheels.extend(lock::read_moto(&root)?);
    let python = venv_python();
    let moto_ok = || {
        Command::new(&python)
            .args(["-c", "import moto"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && drift(&python, &wheels)?.is_empty() && moto_ok() {
        return Ok(python);
    }
    eprintln!(
        "installing the Python test environment into .venv (c7n from {}, moto from {})",
        lock::REQUIREMENTS_LOCK,
        lock::MOTO_LOCK
    );
    if !python.exists() {
        let host = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run_cmd(Command::new(host).args(["-m", "venv", ".venv"]))?;
    }
    // `python -m pip install` first: options after `-m pip install` belong to pip.
    run_cmd(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--require-hashes", "--no-deps", "--only-binary=:all:", "-r"])
            .arg(root.join(lock::REQUIREMENTS_LOCK))
            .arg("-r")
            .arg(root.join(lock::MOTO_LOCK)),
    )?;
    let left = drift(&python, &wheels)?;
    if !left.is_empty() {
        bail!(
            "after installing {} and {}, .venv still differs: {}",
            lock::REQUIREMENTS_LOCK,
            lock::MOTO_LOCK,
            left.join(", ")
        );
    }
    Ok(python)
}

/// checkov (the Terraform security scanner), pinned, in its own virtualenv: its dependencies
/// conflict with moto's and c7n's.
pub const CHECKOV_REQUIREMENT: &str = "checkov==3.3.30";

/// Where the checkov virtualenv lives (under `.czero/`, which git ignores).
pub fn checkov_bin() -> PathBuf {
    project_root().join(".czero/venv-checkov/bin/checkov")
}

/// Creates `.czero/venv-checkov` and installs checkov unless the pinned version is there.
pub fn ensure_checkov() -> Result<PathBuf> {
    let checkov = checkov_bin();
    let pinned = CHECKOV_REQUIREMENT.trim_start_matches("checkov==");
    let ready = Command::new(&checkov)
        .arg("--version")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == pinned)
        .unwrap_or(false);
    if !ready {
        eprintln!("installing {CHECKOV_REQUIREMENT} into .czero/venv-checkov");
        let host = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run_cmd(Command::new(host).args(["-m", "venv", ".czero/venv-checkov"]))?;
        let python = project_root().join(".czero/venv-checkov/bin/python");
        run_cmd(Command::new(python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            CHECKOV_REQUIREMENT,
        ]))?;
    }
    Ok(checkov)
}
