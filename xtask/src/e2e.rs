//! `cargo xtask e2e`: the design document's scenarios on the local stack (moto, Terraform,
//! `czero local`, the invoker and real workers), printing each scenario's timeline.

use crate::{python, run_cmd};
use anyhow::Result;
use std::process::Command;

pub fn run() -> Result<()> {
    let python = python::ensure()?;
    // The scenarios run the real binaries, which nextest does not build.
    run_cmd(Command::new("cargo").args([
        "build",
        "--locked",
        "-p",
        "czero",
        "-p",
        "czero-worker",
    ]))?;
    run_cmd(
        Command::new("cargo")
            .args([
                "nextest",
                "run",
                "--locked",
                "-p",
                "czero-integration",
                "--test",
                "e2e",
                "--no-capture",
            ])
            .env("CZERO_PYTHON", &python),
    )
}
