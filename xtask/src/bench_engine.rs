//! `cargo xtask bench-engine`: builds the release `czero` binary, then runs the engine
//! benchmark (crates/engine/benches/engine.rs) against a local moto server: per-event cost
//! of czero vs Cloud Custodian (in-process and `custodian run`), the emulator floor,
//! 50 vs 500 buckets, start-up time and peak RSS.

use crate::{project_root, python, run_cmd};
use anyhow::Result;
use std::process::Command;

pub fn run() -> Result<()> {
    let python = python::ensure()?;
    run_cmd(Command::new("cargo").args(["build", "--release", "-p", "czero"]))?;
    let bin = project_root().join("target/release/czero");
    run_cmd(
        Command::new("cargo")
            .args(["bench", "-p", "czero-engine", "--bench", "engine"])
            .env("CZERO_PYTHON", &python)
            .env("CZERO_BIN", &bin),
    )
}
