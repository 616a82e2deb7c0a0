//! `cargo xtask demo`: the README's first command. Installs the emulator if needed, builds
//! the binaries, and plays the burst scenario on the local stack with a live table.

use crate::{project_root, python, run_cmd};
use anyhow::Result;
use std::process::Command;

pub fn run() -> Result<()> {
    let python = python::ensure()?;
    eprintln!("building czero and custodian-worker (the first build takes a few minutes)");
    run_cmd(Command::new("cargo").args([
        "build",
        "--locked",
        "-p",
        "czero",
        "-p",
        "czero-worker",
        "-p",
        "czero-integration",
    ]))?;
    let demo = project_root().join("target/debug/czero-demo");
    run_cmd(Command::new(demo).env("CZERO_PYTHON", &python))
}
