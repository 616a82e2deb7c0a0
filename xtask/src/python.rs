//! The project's Python environment: moto (the AWS emulator) and c7n (the reference
//! implementation for differential tests and benchmarks), pinned, in `.venv/`.

use crate::{project_root, run_cmd};
use anyhow::Result;
use std::path::PathBuf;
use std::process::Command;

/// Pinned so that emulator behaviour and the reference results do not drift under us.
pub const REQUIREMENTS: &[&str] = &["moto[server]==5.2.5", "c7n==0.9.53"];

pub fn venv_python() -> PathBuf {
    project_root().join(".venv/bin/python")
}

/// Creates `.venv` and installs the requirements unless they are already there.
pub fn ensure() -> Result<PathBuf> {
    let python = venv_python();
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import moto, c7n"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ready {
        eprintln!("installing the Python test environment into .venv (moto, c7n)");
        let host = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run_cmd(Command::new(host).args(["-m", "venv", ".venv"]))?;
        run_cmd(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(REQUIREMENTS),
        )?;
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
