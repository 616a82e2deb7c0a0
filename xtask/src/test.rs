//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use crate::{python, run_cmd};
use anyhow::Result;
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Skip fmt and clippy (for a quick re-run of the tests alone).
    #[arg(long)]
    pub no_lint: bool,
}

pub fn run(args: Args) -> Result<()> {
    let python = python::ensure()?;
    let checkov = python::ensure_checkov()?;
    crate::nix::check()?;
    if !args.no_lint {
        run_cmd(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
        run_cmd(Command::new("cargo").args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // The end-to-end tests run the workspace's binaries (czero, custodian-worker); nextest
    // builds test harnesses only, so build the binaries first. With the test targets too:
    // the dev-dependencies then take part in feature resolution as they do in nextest's
    // build, which reuses every unit instead of rebuilding the AWS SDK with other features.
    run_cmd(Command::new("cargo").args(["build", "--workspace", "--bins", "--tests", "--locked"]))?;
    run_cmd(
        Command::new("cargo")
            .args([
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ])
            .env("CZERO_PYTHON", &python)
            .env("CZERO_CHECKOV", &checkov),
    )?;
    // Two cold release builds: after the main suite, so they do not slow its timed tests.
    run_cmd(Command::new("cargo").args(crate::dist::SLOW_TEST_ARGS))?;
    // That test loaded the image it built into Docker (where there is one): run it as
    // containers, with no third release build.
    crate::dist::container_tests(&python)?;
    Ok(())
}
