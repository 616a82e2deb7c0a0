//! `cargo xtask chaos`: the full chaos run (integration/src/chaos.rs) on the local stack —
//! 200 jobs on 4 workers under `czero local`, with SIGKILLed and SIGTERMed workers, a 30 s
//! emulator freeze, injected S3/SQS 5xx and throttling, a poison message and duplicated
//! events — then its summary. Fails unless nothing was lost.

use crate::{project_root, python, run_cmd};
use anyhow::Result;
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Replay a plan: the seed a previous run printed (decimal or 0x-hex).
    #[arg(long)]
    pub seed: Option<String>,
    /// CreateBucket events (one job each).
    #[arg(long, default_value_t = 200)]
    pub jobs: u64,
    /// Most workers at once (the service's max capacity).
    #[arg(long, default_value_t = 4)]
    pub workers: u64,
    /// Workers to SIGKILL or SIGTERM.
    #[arg(long, default_value_t = 8)]
    pub kills: u64,
    /// How long the emulator stays frozen.
    #[arg(long, default_value_t = 30)]
    pub pause_seconds: u64,
    /// Events delivered twice at once, and as many again after their job finished.
    #[arg(long, default_value_t = 10)]
    pub duplicates: u64,
    /// Build the stack with API calls instead of Terraform (faster, same resources).
    #[arg(long)]
    pub no_terraform: bool,
    /// Keep the workers' logs, events and timeline even when the run passes.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(args: Args) -> Result<()> {
    let python = python::ensure()?;
    // The run starts the real binaries.
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
    let mut cmd = Command::new(project_root().join("target/debug/czero-chaos"));
    if let Some(seed) = &args.seed {
        cmd.args(["--seed", seed]);
    }
    for (flag, n) in [
        ("--jobs", args.jobs),
        ("--workers", args.workers),
        ("--kills", args.kills),
        ("--pause-seconds", args.pause_seconds),
        ("--duplicates", args.duplicates),
    ] {
        cmd.args([flag, &n.to_string()]);
    }
    if args.no_terraform {
        cmd.arg("--no-terraform");
    }
    if args.keep {
        cmd.arg("--keep");
    }
    run_cmd(cmd.env("CZERO_PYTHON", &python))
}
