//! `czero-demo` (run by `cargo xtask demo`): the burst scenario on the local stack, with a
//! live table, then which buckets were fixed. Ctrl-C shuts everything down.

use anyhow::Result;
use czero_integration::scenario::{Observation, Scenario, is_remediated, play};
use czero_integration::stack::{ControlPlane, Stack, StackOptions};
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    tokio::select! {
        r = demo() => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the control plane, workers and the emulator");
            Ok(())
        }
    }
}

async fn demo() -> Result<()> {
    let step = |m: &str| eprintln!("==> {m}");
    let stack = Stack::up(&StackOptions::default(), &step).await?;
    let work = tempfile::tempdir()?;
    let cp = ControlPlane {
        time_scale: 30.0,
        timeline: work.path().join("timeline.jsonl"),
        max_duration: Duration::from_secs(300),
        image: None,
        wait_time_seconds: 1,
        live: false,
        log: Some(work.path().join("control-plane.log")),
        task_log_dir: None,
    };
    let scenario = Scenario::burst();
    step(&format!(
        "{} CreateBucket events arrive at once; the control plane runs 30x faster than AWS time",
        scenario.events
    ));
    println!("Time (AWS) | Queue | Desired | Running");
    println!("-----------|-------|---------|--------");
    let scale = cp.time_scale;
    let row = |o: &Observation| {
        let sim = (o.at.as_secs_f64() * scale) as u64;
        println!(
            "{:>4}:{:02}     | {:>5} | {:>7} | {:>7}",
            sim / 60,
            sim % 60,
            o.visible + o.in_flight,
            o.desired,
            o.running
        )
    };
    let report = play(&stack, &scenario, &cp, work.path(), &row).await?;
    println!();
    println!(
        "desired went {:?}; {} of {} buckets remediated; queue {:?}, DLQ {:?}; {:.0}s",
        report.desired_sequence(),
        report.remediated(),
        report.buckets.len(),
        report.queue_left,
        report.dlq_left,
        report.elapsed.as_secs_f64()
    );
    for (name, state) in &report.buckets {
        println!(
            "  {} {name}: encryption {}, public access block {}, tags {:?}",
            if is_remediated(state) {
                "fixed"
            } else {
                "NOT FIXED"
            },
            state.encrypted,
            state.public_access_blocked,
            state.tags
        );
    }
    step("destroying the stack");
    stack.destroy()
}
