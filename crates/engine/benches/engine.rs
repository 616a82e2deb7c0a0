//! `cargo xtask bench-engine`: per-event cost of the CreateBucket policy (four actions)
//! on one moto server, czero against Cloud Custodian, measured in the same run:
//!
//! - czero `Engine::run` per event (a fresh untagged bucket each time), 50 and 500 buckets;
//! - c7n in-process `policy.push(event)` (tests/py/c7n_push.py), same policy and workload;
//! - one `custodian run` for the same bucket (mode stripped, pinned by a Name filter);
//! - the floor: the same HTTP calls czero makes, replayed with a raw client in the same
//!   order and concurrency;
//! - czero's start-up (`czero --version`) and peak RSS of a one-event `czero run`
//!   (`/usr/bin/time -f %M`), when `CZERO_BIN` names the release binary.
//!
//! It prints numbers and ratios against the goals; nothing is asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use anyhow::{Context, Result};
use czero_engine::{Engine, EngineOptions, Output};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const EVENTS: usize = 25;

fn policy_text() -> Result<String> {
    let shared = czero_testkit::project_root().join("policies/s3-createbucket.yml");
    if shared.exists() {
        return std::fs::read_to_string(&shared).with_context(|| shared.display().to_string());
    }
    Ok(include_str!("../fixtures/policies/createbucket.yml").to_string())
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let median = v.get(v.len() / 2).copied().unwrap_or_default();
    let mean = if v.is_empty() {
        Duration::ZERO
    } else {
        v.iter().sum::<Duration>() / v.len() as u32
    };
    (median, mean)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn czero_events(
    engine: &Engine,
    s3: &aws_sdk_s3::Client,
    policy: &czero_policy::Policy,
    tag: &str,
    out: &Path,
) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for i in 0..EVENTS {
        let name = format!("evt-{tag}-{i:03}");
        s3.create_bucket().bucket(&name).send().await?;
        let ev = common::createbucket_event(&name);
        let start = Instant::now();
        let r = engine
            .run(policy, Some(&ev), &Output::Dir(out.to_path_buf()))
            .await?;
        times.push(start.elapsed());
        anyhow::ensure!(
            r.resources == vec![name.clone()],
            "czero matched {:?} for {name}",
            r.resources
        );
        s3.delete_bucket_tagging().bucket(&name).send().await.ok();
    }
    // The first event pays for connection set-up; report the steady state.
    Ok(times.split_off(1))
}

/// The same requests czero makes for one CreateBucket event, raw: location, then the nine
/// augment calls and the two lazy documents concurrently, then the actions in order.
async fn floor_event(http: &reqwest::Client, base: &str, bucket: &str) -> Result<()> {
    let url = |q: &str| format!("{base}/{bucket}/?{q}");
    http.get(url("location")).send().await?.bytes().await?;
    let subs = [
        "tagging",
        "policy",
        "acl",
        "replication",
        "versioning",
        "website",
        "logging",
        "notification",
        "lifecycle",
        "encryption",
        "publicAccessBlock",
    ];
    let gets = subs.iter().map(|s| {
        let u = url(s);
        async move { http.get(u).send().await?.bytes().await }
    });
    for r in futures::future::join_all(gets).await {
        r?;
    }
    let ns = r#"xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;
    let puts = [
        (
            "encryption",
            format!(
                "<ServerSideEncryptionConfiguration {ns}><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"
            ),
        ),
        (
            "publicAccessBlock",
            format!(
                "<PublicAccessBlockConfiguration {ns}><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>"
            ),
        ),
        (
            "versioning",
            format!(
                "<VersioningConfiguration {ns}><Status>Enabled</Status></VersioningConfiguration>"
            ),
        ),
    ];
    for (sub, body) in puts {
        http.put(url(sub)).body(body).send().await?.bytes().await?;
    }
    http.get(url("tagging")).send().await?.bytes().await?;
    let tagging = format!(
        "<Tagging {ns}><TagSet><Tag><Key>Owner</Key><Value>unknown</Value></Tag></TagSet></Tagging>"
    );
    http.put(url("tagging"))
        .body(tagging)
        .send()
        .await?
        .bytes()
        .await?;
    Ok(())
}

async fn floor_events(
    http: &reqwest::Client,
    s3: &aws_sdk_s3::Client,
    base: &str,
) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for i in 0..EVENTS {
        let name = format!("evt-floor-{i:03}");
        s3.create_bucket().bucket(&name).send().await?;
        let start = Instant::now();
        floor_event(http, base, &name).await?;
        times.push(start.elapsed());
    }
    Ok(times.split_off(1))
}

fn c7n_events(
    moto: &czero_testkit::Moto,
    s3: &aws_sdk_s3::Client,
    rt: &tokio::runtime::Runtime,
    policy_file: &Path,
    dir: &Path,
) -> Result<Vec<Duration>> {
    let mut events = Vec::new();
    for i in 0..EVENTS {
        let name = format!("evt-c7n-{i:03}");
        rt.block_on(s3.create_bucket().bucket(&name).send())?;
        events.push(common::createbucket_event(&name));
    }
    let ev_file = dir.join("c7n-events.json");
    std::fs::write(&ev_file, serde_json::to_vec(&events)?)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/c7n_push.py");
    let out = Command::new(czero_testkit::python()?)
        .arg(script)
        .arg(policy_file)
        .arg(&ev_file)
        .arg(dir.join("c7n-out"))
        .envs(moto.env())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "c7n_push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut times = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line)?;
        anyhow::ensure!(
            v["resources"].as_array().map(Vec::len) == Some(1),
            "c7n matched {}",
            v["resources"]
        );
        times.push(Duration::from_secs_f64(
            v["seconds"].as_f64().unwrap_or_default(),
        ));
    }
    // The first push imports boto3 models and builds clients; report the steady state.
    Ok(times.split_off(1))
}

fn custodian_run(
    moto: &czero_testkit::Moto,
    s3: &aws_sdk_s3::Client,
    rt: &tokio::runtime::Runtime,
    policy: &czero_policy::Policy,
    dir: &Path,
) -> Result<Vec<Duration>> {
    let custodian = czero_testkit::project_root().join(".venv/bin/custodian");
    let mut times = Vec::new();
    for i in 0..3 {
        let name = format!("evt-run-{i:03}");
        rt.block_on(s3.create_bucket().bucket(&name).send())?;
        let mut raw = policy.raw.clone();
        if let Value::Object(m) = &mut raw {
            m.remove("mode");
            let mut filters =
                vec![json!({"type": "value", "key": "Name", "op": "in", "value": [name]})];
            filters.extend(
                m.get("filters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            m.insert("filters".into(), Value::Array(filters));
        }
        let file = dir.join(format!("run-{i}.json"));
        std::fs::write(&file, serde_json::to_vec(&json!({"policies": [raw]}))?)?;
        let start = Instant::now();
        let out = Command::new(&custodian)
            .args(["run", "--cache-period", "0", "--region", "us-east-1", "-s"])
            .arg(dir.join("run-out"))
            .arg(&file)
            .envs(moto.env())
            .output()?;
        times.push(start.elapsed());
        anyhow::ensure!(
            out.status.success(),
            "custodian run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(times)
}

fn startup_and_rss(
    moto: &czero_testkit::Moto,
    bin: &Path,
    policy_file: &Path,
    dir: &Path,
    bucket: &str,
) -> Result<(Duration, u64)> {
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let s = Command::new(bin).arg("--version").output()?;
        times.push(start.elapsed());
        anyhow::ensure!(s.status.success(), "czero --version failed");
    }
    let ev_file = dir.join("rss-event.json");
    std::fs::write(
        &ev_file,
        serde_json::to_vec(&common::createbucket_event(bucket))?,
    )?;
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(bin)
        .args(["run", "-s"])
        .arg(dir.join("rss-out"))
        .arg("--event")
        .arg(&ev_file)
        .args(["--region", "us-east-1"])
        .arg(policy_file)
        .envs(moto.env())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "czero run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb: u64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .context("no RSS from /usr/bin/time")?;
    Ok((stats(times).0, kb))
}

fn goal(label: &str, measured: f64, goal: f64, higher_is_better: bool) {
    let met = if higher_is_better {
        measured >= goal
    } else {
        measured <= goal
    };
    let cmp = if higher_is_better { "≥" } else { "≤" };
    println!(
        "  {label:<44} {measured:>9.2}   goal {cmp} {goal:<6} {}",
        if met { "met" } else { "NOT met" }
    );
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let moto = czero_testkit::Moto::start()?;
    let s3 = common::client(&moto);
    let dir = tempfile::tempdir()?;
    let text = policy_text()?;
    let policy_file = dir.path().join("s3-createbucket.yml");
    std::fs::write(&policy_file, &text)?;
    let policy = common::parse_policy(&text)?;
    let engine = Engine::new(
        &moto.sdk_config(),
        EngineOptions {
            region: "us-east-1".into(),
            ..Default::default()
        },
    );
    let http = reqwest::Client::new();

    rt.block_on(common::seed_fillers(&s3, 0, 50))?;
    println!(
        "moto {} with 50 buckets; {} events per measurement (first dropped)",
        moto.endpoint(),
        EVENTS
    );
    let czero50 = stats(rt.block_on(czero_events(
        &engine,
        &s3,
        &policy,
        "a",
        &dir.path().join("czero-out"),
    ))?);
    let floor = stats(rt.block_on(floor_events(&http, &s3, &moto.endpoint()))?);
    let c7n = stats(c7n_events(&moto, &s3, &rt, &policy_file, dir.path())?);
    let run = stats(custodian_run(&moto, &s3, &rt, &policy, dir.path())?);
    rt.block_on(common::seed_fillers(&s3, 50, 500))?;
    let czero500 = stats(rt.block_on(czero_events(
        &engine,
        &s3,
        &policy,
        "b",
        &dir.path().join("czero-out"),
    ))?);

    println!("\nper CreateBucket event (median / mean, ms)");
    println!(
        "  czero Engine::run, 50 buckets          {:>8.2} / {:>8.2}",
        ms(czero50.0),
        ms(czero50.1)
    );
    println!(
        "  czero Engine::run, ~550 buckets        {:>8.2} / {:>8.2}",
        ms(czero500.0),
        ms(czero500.1)
    );
    println!(
        "  floor: same calls, raw HTTP            {:>8.2} / {:>8.2}",
        ms(floor.0),
        ms(floor.1)
    );
    println!(
        "  c7n in-process policy.push             {:>8.2} / {:>8.2}",
        ms(c7n.0),
        ms(c7n.1)
    );
    println!(
        "  c7n `custodian run`, one bucket        {:>8.2} / {:>8.2}",
        ms(run.0),
        ms(run.1)
    );
    println!("\nratios (medians)");
    goal(
        "c7n in-process / czero (x)",
        ms(c7n.0) / ms(czero50.0),
        10.0,
        true,
    );
    goal(
        "custodian run / czero (x)",
        ms(run.0) / ms(czero50.0),
        40.0,
        true,
    );
    goal("czero / floor (x)", ms(czero50.0) / ms(floor.0), 1.3, false);
    goal(
        "czero 500 / czero 50 buckets (x)",
        ms(czero500.0) / ms(czero50.0),
        1.1,
        false,
    );

    match std::env::var_os("CZERO_BIN")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        Some(bin) => {
            rt.block_on(s3.create_bucket().bucket("evt-rss").send())?;
            let (startup, kb) = startup_and_rss(&moto, &bin, &policy_file, dir.path(), "evt-rss")?;
            println!("\nczero binary {}", bin.display());
            goal("start-up, `czero --version` (ms)", ms(startup), 20.0, false);
            goal(
                "peak RSS, one-event `czero run` (MB)",
                kb as f64 / 1024.0,
                30.0,
                false,
            );
        }
        None => println!(
            "\nCZERO_BIN not set: start-up and RSS not measured (cargo xtask bench-engine sets it)"
        ),
    }
    Ok(())
}
