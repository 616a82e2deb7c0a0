//! `cargo xtask bench-fallback`: what one event costs through each way of running real
//! Cloud Custodian, on one moto server, measured in the same run. The policy is
//! tests/fixtures/policies/sg-ssh-cloudtrail.yml (aws.security-group, cloudtrail
//! AuthorizeSecurityGroupIngress, remove-permissions); every event names a fresh group
//! with port 22 open to the world, and every way must remove that rule:
//!
//! - the driver, warm: `Driver::run` per event, timed from the caller (request to answer);
//! - c7n in-process: `policy.push(event)` repeated in one Python process
//!   (tests/py/c7n_push.py), timed inside `push` only, in c7n's favour (the driver's time
//!   includes loading the policy, the request and the output record);
//! - one `custodian run` process per event, mode stripped as the old fallback did, pinned
//!   to the group by `GroupId` (the old fallback's `Name` pin matches no security group at
//!   all, so it would not even do the work), timed per process.
//!
//! The driver and c7n in-process each see the events twice: back to back (the next event
//! as soon as the previous one is answered) and paced, one every PACE (events arriving
//! spaced, the common case, when the driver's spare child is ready for the next job). All
//! run in interleaved rounds so that other load on the machine hits them alike. It prints
//! medians and the ratios against their goals; nothing is asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use czero_driver::Request;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const DRIVER_PER_ROUND: usize = 10;
const PUSH_PER_ROUND: usize = 10;
const CLI_PER_ROUND: usize = 2;
const PACE: Duration = Duration::from_millis(250);

const POLICY: &str = fixture!("policies/sg-ssh-cloudtrail.yml");
const EVENT: &str = fixture!("events/cloudtrail-authorize-security-group-ingress.json");

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(s: f64) -> String {
    format!("{:.1} ms", s * 1000.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

fn sg_event(group: &str) -> Value {
    common::event(EVENT, &[(common::FIXTURE_SG, group)])
}

/// c7n in-process: one Python process, one warm-up push, then `events.len() - 1` timed.
fn push_round(
    moto: &czero_testkit::Moto,
    groups: &[String],
    dir: &Path,
    pause: Duration,
) -> anyhow::Result<Vec<f64>> {
    let policy_file = dir.join("policy.yml");
    let events_file = dir.join("events.json");
    std::fs::write(&policy_file, POLICY)?;
    let events: Vec<Value> = groups.iter().map(|g| sg_event(g)).collect();
    std::fs::write(&events_file, serde_json::to_vec(&events)?)?;
    let out = Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/c7n_push.py"))
        .arg(&policy_file)
        .arg(&events_file)
        .arg(dir.join("out"))
        .args(["1", "us-east-1", &pause.as_secs_f64().to_string()])
        .envs(common::aws_env(moto, &moto.endpoint()))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "c7n_push.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut times = Vec::new();
    for (line, group) in String::from_utf8_lossy(&out.stdout).lines().zip(groups) {
        let v: Value = serde_json::from_str(line)?;
        anyhow::ensure!(
            v["resources"] == json!([group]),
            "c7n push matched {} for {group}",
            v["resources"]
        );
        times.push(v["seconds"].as_f64().unwrap_or(f64::NAN));
    }
    anyhow::ensure!(times.len() == groups.len(), "c7n_push.py printed {times:?}");
    Ok(times.split_off(1))
}

/// One `custodian run` per group, mode stripped and pinned by GroupId.
fn cli_round(
    moto: &czero_testkit::Moto,
    groups: &[String],
    dir: &Path,
) -> anyhow::Result<Vec<f64>> {
    let custodian = czero_testkit::project_root().join(".venv/bin/custodian");
    let mut times = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let mut p = common::policy(POLICY);
        if let Value::Object(m) = &mut p {
            m.remove("mode");
        }
        let mut filters =
            vec![json!({"type": "value", "key": "GroupId", "op": "in", "value": [g]})];
        filters.extend(p["filters"].as_array().cloned().unwrap_or_default());
        p["filters"] = json!(filters);
        let file = dir.join(format!("cli-{i}.json"));
        std::fs::write(&file, serde_json::to_vec(&json!({"policies": [p]}))?)?;
        let out_dir = dir.join(format!("cli-out-{i}"));
        let start = Instant::now();
        let out = Command::new(&custodian)
            .arg("run")
            .arg("-s")
            .arg(&out_dir)
            .args(["--cache-period", "0", "--region", "us-east-1"])
            .arg(&file)
            .envs(common::aws_env(moto, &moto.endpoint()))
            .output()?;
        times.push(start.elapsed().as_secs_f64());
        anyhow::ensure!(
            out.status.success(),
            "custodian run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let matched = common::resource_ids(&out_dir.join("sg-ssh-open-cloudtrail"), "GroupId");
        anyhow::ensure!(
            matched == vec![g.clone()],
            "custodian run matched {matched:?}"
        );
    }
    Ok(times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let moto = czero_testkit::Moto::start()?;
    let per_round = 2 * DRIVER_PER_ROUND + 2 * (PUSH_PER_ROUND + 1) + CLI_PER_ROUND;
    let seeded = Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/moto_state.py"))
        .args(["seed-groups", &(ROUNDS * per_round + 1).to_string()])
        .envs(common::aws_env(&moto, &moto.endpoint()))
        .output()?;
    anyhow::ensure!(
        seeded.status.success(),
        "seeding: {}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let ids: Value = serde_json::from_slice(&seeded.stdout)?;
    let mut groups: Vec<String> = ids["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let total_groups = groups.len() + 1; // and the VPC's default group
    let tmp = tempfile::tempdir()?;

    // The driver, started and warmed by one event before anything is timed.
    let driver = common::driver(&moto);
    let cold = Instant::now();
    let info = driver.probe().await?;
    let start_seconds = cold.elapsed().as_secs_f64();
    let request = |group: &str, i: usize| Request {
        job_id: format!("bench-{i}"),
        policy: common::policy(POLICY),
        event: Some(sg_event(group)),
        region: "us-east-1".into(),
        account_id: Some("123456789012".into()),
        output_dir: tmp.path().join("driver"),
        dryrun: false,
        timeout: Duration::from_secs(60),
        credentials: None,
    };
    let warm_group = groups.pop().unwrap_or_default();
    let first = Instant::now();
    let r = driver.run(request(&warm_group, 0)).await?;
    let first_seconds = first.elapsed().as_secs_f64();
    anyhow::ensure!(r.resource_ids == vec![warm_group.clone()], "{r:?}");

    let mut driver_times = Vec::new();
    let mut driver_inside = Vec::new();
    let mut paced_times = Vec::new();
    let mut push_times = Vec::new();
    let mut paced_push_times = Vec::new();
    let mut cli_times = Vec::new();
    let mut n = 0;
    for round in 0..ROUNDS {
        let mut take = |n: usize| -> Vec<String> { groups.drain(..n.min(groups.len())).collect() };
        let for_driver = take(DRIVER_PER_ROUND);
        let for_paced = take(DRIVER_PER_ROUND);
        let for_push = take(PUSH_PER_ROUND + 1);
        let for_paced_push = take(PUSH_PER_ROUND + 1);
        let for_cli = take(CLI_PER_ROUND);
        for (paced, batch) in [(false, &for_driver), (true, &for_paced)] {
            for g in batch {
                if paced {
                    tokio::time::sleep(PACE).await;
                }
                n += 1;
                let start = Instant::now();
                let r = driver.run(request(g, n)).await?;
                let took = start.elapsed().as_secs_f64();
                anyhow::ensure!(r.resource_ids == vec![g.clone()], "driver matched {r:?}");
                anyhow::ensure!(r.actions == vec!["remove-permissions"], "{r:?}");
                if paced {
                    paced_times.push(took);
                } else {
                    driver_times.push(took);
                    driver_inside.push(r.seconds);
                }
            }
        }
        let dir = tmp.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&dir)?;
        push_times.extend(push_round(&moto, &for_push, &dir, Duration::ZERO)?);
        let dir = tmp.path().join(format!("round-{round}-paced"));
        std::fs::create_dir_all(&dir)?;
        paced_push_times.extend(push_round(&moto, &for_paced_push, &dir, PACE)?);
        cli_times.extend(cli_round(&moto, &for_cli, &dir)?);
        eprintln!("round {} of {ROUNDS} done", round + 1);
    }
    driver.shutdown().await;

    let d = median(driver_times.clone());
    let inside = median(driver_inside);
    let dp = median(paced_times.clone());
    let p = median(push_times.clone());
    let pp = median(paced_push_times.clone());
    let c = median(cli_times.clone());
    println!();
    println!(
        "c7n fallback benchmark (aws.security-group cloudtrail AuthorizeSecurityGroupIngress, remove-permissions)"
    );
    println!(
        "machine: {} cores; c7n {} on Python {}; moto holding {total_groups} security groups",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        info.c7n_version,
        info.python_version
    );
    println!(
        "driver start (import c7n, cold): {} (import {:.2} s); first event (resource type, session, models): {}",
        ms(start_seconds),
        info.import_seconds,
        ms(first_seconds)
    );
    println!();
    println!(
        "| way | events | back to back | paced, one per {} ms |",
        PACE.as_millis()
    );
    println!("|---|---|---|---|");
    println!(
        "| driver, warm (request to answer) | {} + {} | {} (job inside the driver: {}) | {} |",
        driver_times.len(),
        paced_times.len(),
        ms(d),
        ms(inside),
        ms(dp)
    );
    println!(
        "| c7n in-process `policy.push` (inside push only) | {} + {} | {} | {} |",
        push_times.len(),
        paced_push_times.len(),
        ms(p),
        ms(pp)
    );
    println!(
        "| `custodian run`, one process per event | {} | {} | |",
        cli_times.len(),
        ms(c)
    );
    println!();
    for (label, ratio) in [("back to back", d / p), ("paced", dp / pp)] {
        println!(
            "driver / in-process push, {label}: {ratio:.2}x (goal <= 1.5x: {})",
            verdict(ratio <= 1.5)
        );
    }
    let cli_ratio = c / d;
    println!(
        "custodian run / driver: {cli_ratio:.1}x (goal >= 5x: {})",
        verdict(cli_ratio >= 5.0)
    );
    Ok(())
}
