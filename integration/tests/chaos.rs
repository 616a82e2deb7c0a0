//! The short chaos run (`cargo xtask test`): 30 jobs on 3 workers under `czero local`, with
//! SIGKILLed and SIGTERMed workers, a 4 s emulator freeze, injected S3/SQS 5xx and
//! throttling, a poison message and duplicated events; nothing may be lost. The stack is
//! made without Terraform to stay well under three minutes; `cargo xtask chaos` runs the
//! full version (200 jobs, a 30 s freeze) on the Terraform-applied stack.
//!
//! The seed is fresh each run and printed; `CZERO_CHAOS_SEED=0x…` replays a plan.

use anyhow::{Context, Result};
use czero_integration::chaos::{self, BareStack, ChaosOptions};

fn seed() -> Result<u64> {
    match std::env::var("CZERO_CHAOS_SEED") {
        Ok(s) => parse_seed(&s).with_context(|| format!("CZERO_CHAOS_SEED={s:?} is not a number")),
        Err(_) => Ok(chaos::fresh_seed()),
    }
}

fn parse_seed(s: &str) -> Result<u64> {
    Ok(match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16)?,
        None => s.parse()?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_loses_nothing() -> Result<()> {
    let seed = seed()?;
    eprintln!("[chaos] seed {seed:#x} (replay: CZERO_CHAOS_SEED={seed:#x})");
    let work = tempfile::tempdir()?;
    let stack = BareStack::up().await?;
    let report = chaos::run(
        &stack.target,
        &ChaosOptions::short(seed),
        work.path(),
        &|m| eprintln!("[chaos] {m}"),
    )
    .await?;
    eprintln!("{report}");
    let problems = report.problems();
    if !problems.is_empty() {
        // Keep the workers' logs for the investigation.
        let kept = work.keep();
        panic!(
            "the chaos run (seed {seed:#x}) failed; logs kept in {}:\n- {}",
            kept.display(),
            problems.join("\n- ")
        );
    }
    // The run really was chaotic: every kind of disruption happened.
    assert!(report.sigkills >= 1 && report.sigterms >= 1, "{report}");
    assert_eq!(report.pauses.len(), 1, "{report}");
    assert!(
        report.faults.iter().map(|(_, n)| n).sum::<u64>() > 0,
        "{report}"
    );
    assert!(report.early_duplicates_sent > 0 && report.late_duplicates_sent > 0);
    Ok(())
}
