//! The benchmarks that need the Python environment (moto, Cloud Custodian):
//!
//! - `cargo xtask bench-engine` builds the release `czero` binary, then runs the engine
//!   benchmark (crates/engine/benches/engine.rs) against a local moto server: per-event cost
//!   of czero vs Cloud Custodian (in-process and `custodian run`), the emulator floor,
//!   50 vs 500 buckets, start-up time and peak RSS.
//! - `cargo xtask bench-worker` runs crates/worker/benches/worker.rs: the release worker
//!   against moto beside c7n in-process on the same jobs (start-up, throughput, RSS,
//!   requests and CPU per job, the emulator's own ceiling).
//! - `cargo xtask bench-fallback` runs crates/driver/benches/fallback.rs (release build):
//!   one event through the c7n driver beside c7n in-process `policy.push` and one
//!   `custodian run` process per event, on a security-group cloudtrail policy.

use crate::{project_root, python, run_cmd};
use anyhow::Result;
use std::process::Command;

pub fn engine() -> Result<()> {
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

pub fn worker() -> Result<()> {
    let python = python::ensure()?;
    run_cmd(
        Command::new("cargo")
            .args(["bench", "-p", "czero-worker", "--bench", "worker"])
            .env("CZERO_PYTHON", &python),
    )
}

pub fn fallback() -> Result<()> {
    let python = python::ensure()?;
    run_cmd(
        Command::new("cargo")
            .args(["bench", "-p", "czero-driver", "--bench", "fallback"])
            .env("CZERO_PYTHON", &python),
    )
}
