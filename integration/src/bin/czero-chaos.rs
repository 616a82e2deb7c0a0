//! `czero-chaos` (run by `cargo xtask chaos`): the full chaos run on the Terraform-applied
//! local stack, then its summary. Exit code 0 when nothing was lost and every check held,
//! 1 when a check failed, 2 for bad arguments.
//!
//! Options: `--seed N|0xHEX` (default: fresh, printed), `--jobs N` (200), `--workers N`
//! (4), `--kills N` (8), `--pause-seconds N` (30), `--duplicates N` (10 early and 10 late),
//! `--no-terraform` (the stack without Terraform), `--keep` (keep the logs when it passes).

use anyhow::{Context, Result, bail};
use czero_integration::chaos::{self, BareStack, ChaosOptions, Target};
use czero_integration::stack::{Stack, StackOptions};
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    opts: ChaosOptions,
    terraform: bool,
    keep: bool,
}

fn number(flag: &str, value: Option<String>) -> Result<u64> {
    let v = value.with_context(|| format!("{flag} needs a value"))?;
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.with_context(|| format!("{flag} {v}: not a number"))
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args> {
    let mut seed = None;
    let mut sets: Vec<(String, u64)> = Vec::new();
    let (mut terraform, mut keep) = (true, false);
    while let Some(a) = argv.next() {
        match a.as_str() {
            "--seed" => seed = Some(number(&a, argv.next())?),
            "--jobs" | "--workers" | "--kills" | "--pause-seconds" | "--duplicates" => {
                let n = number(&a, argv.next())?;
                sets.push((a, n));
            }
            "--no-terraform" => terraform = false,
            "--keep" => keep = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let mut opts = ChaosOptions::full(seed.unwrap_or_else(chaos::fresh_seed));
    for (flag, n) in sets {
        let size = usize::try_from(n).with_context(|| format!("{flag} {n}: too large"))?;
        match flag.as_str() {
            "--jobs" => opts.jobs = size,
            "--workers" => {
                opts.workers = u32::try_from(n).with_context(|| format!("{flag} {n}: too large"))?
            }
            "--kills" => opts.kills = size,
            "--pause-seconds" => opts.pause = Duration::from_secs(n),
            _ => {
                opts.early_duplicates = size;
                opts.late_duplicates = size;
            }
        }
    }
    if opts.jobs == 0 || opts.workers == 0 {
        bail!("--jobs and --workers must be at least 1");
    }
    Ok(Args {
        opts,
        terraform,
        keep,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("czero-chaos: {e:#}");
            return ExitCode::from(2);
        }
    };
    tokio::select! {
        r = play(&args) => match r {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("czero-chaos: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the control plane, workers and the emulator");
            ExitCode::FAILURE
        }
    }
}

/// Whether the run passed.
async fn play(args: &Args) -> Result<bool> {
    let say = |m: &str| eprintln!("[chaos] {m}");
    let work = tempfile::Builder::new().prefix("czero-chaos-").tempdir()?;
    let report = if args.terraform {
        let stack = Stack::up(&StackOptions::default(), &say).await?;
        let report = chaos::run(&Target::of(&stack), &args.opts, work.path(), &say).await?;
        say("destroying the Terraform stack");
        stack.destroy()?;
        report
    } else {
        let stack = BareStack::up().await?;
        chaos::run(&stack.target, &args.opts, work.path(), &say).await?
    };
    println!("{report}");
    let o = &args.opts;
    println!(
        "again: cargo xtask chaos --seed {:#x} --jobs {} --workers {} --kills {} --pause-seconds {} --duplicates {}{}",
        o.seed,
        o.jobs,
        o.workers,
        o.kills,
        o.pause.as_secs(),
        o.late_duplicates,
        if args.terraform {
            ""
        } else {
            " --no-terraform"
        }
    );
    let passed = report.problems().is_empty();
    if !passed || args.keep {
        let kept = work.keep();
        eprintln!("logs, events and the timeline kept in {}", kept.display());
    }
    Ok(passed)
}
