//! `cargo bench -p czero-worker`: the release `custodian-worker` against a local moto,
//! beside Cloud Custodian in-process (`policy.push(event)` in a Python loop) on the same
//! jobs, in one run on this machine. Prints what it measured and the ratios.
//!
//! - start-to-first-receive: process spawn to its first `ReceiveMessage` reaching the
//!   server (seen by a pass-through proxy), median of several starts; goal ≤ 20 ms;
//! - throughput: N CreateBucket jobs with the default policy (four remediation actions),
//!   one worker, spawn to exit (start-up and the final empty poll included); c7n's is
//!   N / the summed `push` times (interpreter start-up and imports excluded, in its favour);
//!   goal ≥ 20× c7n;
//! - peak RSS (`VmHWM`) of the worker; goal ≤ 30 MB;
//! - what bounds the throughput: both sides reach moto through a counting pass-through
//!   proxy, so the requests per job are printed, with each side's own CPU time per job
//!   (the worker's user + system time, spawn to exit; c7n's process time inside `push`).
//!   Moto is a single Python process: when it is the bottleneck the wall-clock ratio says
//!   more about the emulator than about either client, and the CPU ratio shows the rest.

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::primitives::ByteStream;
use czero_job::{Envelope, JOB_VERSION, Job, PolicyRef};
use czero_testkit::Moto;
use czero_testkit::fault_proxy::FaultProxy;
use futures::StreamExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = include_str!("../fixtures/s3-createbucket.yml");
const EVENT: &str = include_str!("../fixtures/create-bucket-event.json");
const JOBS: usize = 40;
const STARTS: usize = 7;

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

struct Setup {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    queue_url: String,
}

async fn run() -> Result<()> {
    let moto = Moto::start()?;
    let sdk = moto.sdk_config();
    let sqs = czero_worker::sqs_client(&sdk);
    let s3 = czero_worker::s3_client(&sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name("jobs")
        .send()
        .await?
        .queue_url
        .context("no queue url")?;
    for b in ["policies", "output"] {
        s3.create_bucket().bucket(b).send().await?;
    }
    s3.put_object()
        .bucket("policies")
        .key("policies/s3-createbucket.yml")
        .body(ByteStream::from_static(POLICY.as_bytes()))
        .send()
        .await?;
    let st = Setup {
        moto,
        sqs,
        s3,
        queue_url,
    };

    // 1. Start-up: spawn to first ReceiveMessage, on an empty queue.
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let proxy = FaultProxy::start(&st.moto.endpoint(), vec![])?;
        let spawned = Instant::now();
        let mut child = worker(&st, &proxy.endpoint()).spawn()?;
        let status = child.wait()?;
        ensure!(status.success(), "idle worker exited with {status}");
        let first = proxy
            .first_seen("ReceiveMessage")
            .context("the worker never polled")?;
        starts.push(first.duration_since(spawned));
    }
    starts.sort();
    let first_receive = starts[starts.len() / 2];

    // 2. Throughput and memory: JOBS jobs, one worker.
    let mut bodies = Vec::new();
    for i in 0..JOBS {
        let bucket = format!("worker-bucket-{i}");
        st.s3.create_bucket().bucket(&bucket).send().await?;
        bodies.push(
            Envelope::Inline {
                job: job(&format!("job-{i}"), &bucket)?,
            }
            .encode()?,
        );
    }
    for chunk in bodies.chunks(10) {
        let mut batch = st.sqs.send_message_batch().queue_url(&st.queue_url);
        for (i, b) in chunk.iter().enumerate() {
            batch = batch.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(b)
                    .build()?,
            );
        }
        batch.send().await?;
    }
    let worker_proxy = FaultProxy::start(&st.moto.endpoint(), vec![])?;
    let cpu_before = children_cpu()?;
    let started = Instant::now();
    let mut child = worker(&st, &worker_proxy.endpoint()).spawn()?;
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(child.id()) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let worker_elapsed = started.elapsed();
    // The child has been reaped, so its CPU time is in RUSAGE_CHILDREN now.
    let worker_cpu = children_cpu()? - cpu_before;
    let worker_requests = worker_proxy.total_requests();
    ensure!(status.success(), "worker exited with {status}");
    let outputs = count_outputs(&st.s3).await?;
    ensure!(
        outputs == JOBS,
        "expected {JOBS} job outputs, found {outputs}"
    );
    let worker_rate = JOBS as f64 / worker_elapsed.as_secs_f64();

    // 3. c7n in-process on the same jobs (fresh buckets, same policy and event shape).
    let dir = tempfile::tempdir()?;
    let mut events = Vec::new();
    for i in 0..JOBS {
        let bucket = format!("c7n-bucket-{i}");
        st.s3.create_bucket().bucket(&bucket).send().await?;
        events.push(event(&bucket)?);
    }
    std::fs::write(dir.path().join("policy.yml"), POLICY)?;
    std::fs::write(
        dir.path().join("events.json"),
        serde_json::to_string(&events)?,
    )?;
    let script = czero_testkit::project_root().join("crates/engine/tests/py/c7n_push.py");
    let c7n_proxy = FaultProxy::start(&st.moto.endpoint(), vec![])?;
    let c7n_started = Instant::now();
    let mut c7n = Command::new(czero_testkit::python()?)
        .arg(&script)
        .arg(dir.path().join("policy.yml"))
        .arg(dir.path().join("events.json"))
        .arg(dir.path().join("out"))
        .envs(st.moto.env())
        .env("AWS_ENDPOINT_URL", c7n_proxy.endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", script.display()))?;
    let mut c7n_peak_kb = 0u64;
    while c7n.try_wait()?.is_none() {
        if let Some(kb) = vm_hwm_kb(c7n.id()) {
            c7n_peak_kb = c7n_peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let c7n_wall = c7n_started.elapsed();
    let out = c7n.wait_with_output()?;
    if !out.status.success() {
        bail!("c7n failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut pushes = 0usize;
    let mut push_seconds = 0.0;
    let mut push_cpu = 0.0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        push_seconds += v["seconds"].as_f64().unwrap_or(0.0);
        push_cpu += v["cpu_seconds"].as_f64().unwrap_or(0.0);
        let matched = v["resources"].as_array().map_or(0, Vec::len);
        ensure!(
            matched == 1,
            "c7n matched {matched} buckets for one event: {line}"
        );
        pushes += 1;
    }
    ensure!(
        pushes == JOBS,
        "c7n pushed {pushes} events, expected {JOBS}"
    );
    let c7n_rate = JOBS as f64 / push_seconds;
    let c7n_requests = c7n_proxy.total_requests();

    // 4. The emulator's own ceiling, measured now: as many cheap S3 requests as the worker
    //    made, 10 in flight (the worker's batch), through the same kind of proxy.
    let floor_proxy = FaultProxy::start(&st.moto.endpoint(), vec![])?;
    let floor_sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(floor_proxy.endpoint())
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::for_tests(),
        ))
        .build();
    let floor_s3 = czero_worker::s3_client(&floor_sdk);
    let floor_started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..worker_requests)
        .map(|i| {
            let s3 = floor_s3.clone();
            async move {
                s3.get_bucket_location()
                    .bucket(format!("worker-bucket-{}", i as usize % JOBS))
                    .send()
                    .await
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let floor_elapsed = floor_started.elapsed();
    for r in results {
        r?;
    }
    let capacity = worker_requests as f64 / floor_elapsed.as_secs_f64();
    let worker_per_job = worker_requests as f64 / JOBS as f64;
    let ceiling = capacity / worker_per_job;
    let per_job = |x: f64| x * 1000.0 / JOBS as f64;
    let (worker_cpu_ms, c7n_cpu_ms) = (per_job(worker_cpu), per_job(push_cpu));

    let ratio = worker_rate / c7n_rate;
    println!(
        "custodian-worker vs c7n 0.9.53 in-process, {JOBS} CreateBucket jobs on moto, this machine"
    );
    println!(
        "  start to first receive   {:>8.1} ms   (median of {STARTS}; goal <= 20 ms: {})",
        first_receive.as_secs_f64() * 1000.0,
        verdict(first_receive <= Duration::from_millis(20))
    );
    println!(
        "  worker throughput        {worker_rate:>8.1} jobs/s ({JOBS} jobs in {:.2} s, spawn to exit)",
        worker_elapsed.as_secs_f64()
    );
    println!(
        "  c7n throughput           {c7n_rate:>8.2} jobs/s ({:.2} s in push, {:.2} s wall with start-up)",
        push_seconds,
        c7n_wall.as_secs_f64()
    );
    println!(
        "  throughput ratio         {ratio:>8.1} x    (goal >= 20x: {})",
        verdict(ratio >= 20.0)
    );
    println!(
        "  worker peak RSS          {:>8.1} MB   (goal <= 30 MB: {})",
        peak_kb as f64 / 1024.0,
        verdict(peak_kb <= 30 * 1024)
    );
    println!(
        "  c7n peak RSS             {:>8.1} MB   (ratio {:.1}x)",
        c7n_peak_kb as f64 / 1024.0,
        c7n_peak_kb as f64 / (peak_kb.max(1)) as f64
    );
    println!(
        "  requests per job         {:>8.1} worker (S3 + SQS, output to S3), {:.1} c7n (S3 only, output to local disk)",
        worker_requests as f64 / JOBS as f64,
        c7n_requests as f64 / JOBS as f64
    );
    println!(
        "  emulator capacity        {capacity:>8.0} requests/s (GetBucketLocation, 10 in flight): at {worker_per_job:.1} requests/job a ceiling of {ceiling:.1} jobs/s; the worker reached {:.0}% of it",
        100.0 * worker_rate / ceiling
    );
    println!(
        "  client CPU per job       {worker_cpu_ms:>8.2} ms worker (start-up included), {c7n_cpu_ms:.2} ms c7n in push: ratio {:.1}x",
        c7n_cpu_ms / worker_cpu_ms.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn worker(st: &Setup, endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodian-worker"));
    cmd.envs(st.moto.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("SQS_QUEUE_URL", &st.queue_url)
        .env("POLICY_BUCKET", "policies")
        .env("OUTPUT_BUCKET", "output")
        .env("WAIT_TIME_SECONDS", "0")
        .env("MAX_EMPTY_RECEIVES", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn event(bucket: &str) -> Result<serde_json::Value> {
    let mut e: serde_json::Value = serde_json::from_str(EVENT)?;
    e["detail"]["requestParameters"]["bucketName"] = bucket.into();
    Ok(e)
}

fn job(id: &str, bucket: &str) -> Result<Job> {
    Ok(Job {
        version: JOB_VERSION,
        job_id: id.into(),
        event_id: format!("event-{id}"),
        source: "aws.s3".into(),
        detail_type: "AWS API Call via CloudTrail".into(),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        resource_ids: vec![bucket.into()],
        policies: vec![PolicyRef {
            key: "policies/s3-createbucket.yml".into(),
            etag: None,
            version_id: None,
        }],
        received_at: chrono::Utc::now(),
        trace_id: None,
        update_finding: Default::default(),
        event: event(bucket)?,
    })
}

async fn count_outputs(s3: &aws_sdk_s3::Client) -> Result<usize> {
    let mut n = 0;
    let mut pages = s3
        .list_objects_v2()
        .bucket("output")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        n += page?
            .contents
            .unwrap_or_default()
            .iter()
            .filter(|o| o.key().is_some_and(|k| k.ends_with("/metadata.json.gz")))
            .count();
    }
    Ok(n)
}

/// User + system CPU seconds of this process's reaped children.
fn children_cpu() -> Result<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(secs(usage.user_time()) + secs(usage.system_time()))
}

/// Peak resident set size so far, from `/proc/<pid>/status`.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
