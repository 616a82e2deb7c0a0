//! Fast wake end to end: moto, `terraform/examples/local` applied with
//! `enable_fast_wake = true`, `czero local` with CloudWatch's metric lag (datapoints reach
//! the alarms a period late), `czero invoke` with the environment Terraform gave the
//! invoker, and real workers.
//!
//! The service first sits idle for 7.5 simulated minutes, long enough for a scale-in alarm
//! without the guard to be in ALARM (`czero-local`'s moto tests show that alarm undoing the
//! wake in the same setting). Then one CreateBucket event: `describe-services` must show
//! desired 1 as soon as the invocation returns, the wake must hold until the job is done,
//! and the service must return to 0 with queue and DLQ empty. The same event without the
//! wake variables measures what fast wake saves.
//!
//! Time runs 30× faster in the control plane (a 60 s period takes 2 s).

use anyhow::{Context, Result, bail, ensure};
use czero_integration::events;
use czero_integration::scenario::is_remediated;
use czero_integration::stack::{ControlPlane, REGION, Stack, StackOptions, bin, wait_for};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const SCALE: f64 = 30.0;
/// The alarms' period, simulated seconds.
const PERIOD_S: f64 = 60.0;
/// CloudWatch's delay before a period's datapoint reaches the alarms, simulated seconds.
const LAG_S: u64 = 60;
/// Idle time before the event, simulated seconds: the scale-in alarm's 5 datapoints, a
/// period late, plus half a period.
const IDLE_S: f64 = 450.0;
/// The scale-in alarm's metric math with the guard, as the module writes it.
const GUARD: &str = "IF(FILL(m3, 0) > 0, m1 + m2, 1)";

/// A `(desired, running, visible, in flight)` change seen through the ECS and SQS APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Observation {
    at: Duration,
    desired: i32,
    running: i32,
    visible: u64,
    in_flight: u64,
}

#[derive(Debug)]
struct Run {
    /// What `czero invoke` printed.
    outcome: Value,
    invoked_at: Duration,
    /// `describe-services` right after the invocation returned, and when.
    desired_after_invoke: i32,
    checked_at: Duration,
    /// When the bucket was seen remediated (the job done).
    job_done_at: Duration,
    observations: Vec<Observation>,
    /// The control plane's timeline (JSON lines).
    timeline: Vec<Value>,
    queue_left: (u64, u64),
    dlq_left: (u64, u64),
}

impl Run {
    fn desired_sequence(&self) -> Vec<i32> {
        let mut seq: Vec<i32> = Vec::new();
        for o in &self.observations {
            if seq.last() != Some(&o.desired) {
                seq.push(o.desired);
            }
        }
        seq
    }

    /// Simulated seconds from the invocation to the job done.
    fn first_job_latency_s(&self) -> f64 {
        (self.job_done_at - self.invoked_at).as_secs_f64() * SCALE
    }

    fn wake(&self) -> Option<&str> {
        self.outcome.get("wake").and_then(Value::as_str)
    }

    /// The first observation at or after `from` with this desired count.
    fn first_desired(&self, desired: i32, from: Duration) -> Option<Duration> {
        self.observations
            .iter()
            .find(|o| o.at >= from && o.desired == desired)
            .map(|o| o.at)
    }
}

fn sim(d: Duration) -> f64 {
    d.as_secs_f64() * SCALE
}

/// `czero invoke --event FILE` with the invoker's environment from Terraform, without the
/// wake variables unless `wake`.
async fn invoke(stack: &Stack, event: &Value, file: &Path, wake: bool) -> Result<Value> {
    std::fs::write(file, serde_json::to_vec_pretty(event)?)?;
    let mut cmd = tokio::process::Command::new(bin("czero")?);
    cmd.arg("invoke")
        .arg("--event")
        .arg(file)
        .envs(stack.aws_env())
        .envs(stack.out.invoker_env.clone())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !wake {
        cmd.env_remove("WAKE_CLUSTER").env_remove("WAKE_SERVICE");
    }
    let out = cmd.output().await.context("running czero invoke")?;
    if !out.status.success() {
        bail!(
            "czero invoke failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("czero invoke's outcome")
}

/// Starts the control plane on an idle service, waits `IDLE_S`, sends one CreateBucket
/// event, and watches until the control plane is back at 0 and exits.
async fn play(stack: &Stack, work: &Path, name: &str, wake: bool) -> Result<Run> {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir)?;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let bucket = format!("{name}-{suffix}");
    stack.create_buckets(std::slice::from_ref(&bucket)).await?;
    let cp = ControlPlane {
        time_scale: SCALE,
        timeline: dir.join("timeline.jsonl"),
        max_duration: Duration::from_secs(150),
        image: None,
        wait_time_seconds: 1,
        live: false,
        log: Some(dir.join("control-plane.log")),
        task_log_dir: Some(dir.join("tasks")),
    };
    let start = Instant::now();
    let mut control = stack.control_plane_with(&cp, &["--metric-lag", &LAG_S.to_string()])?;

    let observations = Arc::new(Mutex::new(Vec::<Observation>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let observations = observations.clone();
        let done = done.clone();
        async move {
            let mut last = None;
            while !done.load(Ordering::Relaxed) {
                let (desired, running) = stack.service_counts().await?;
                let (visible, in_flight) = stack.queue_depth(&stack.out.queue_url).await?;
                if last != Some((desired, running, visible, in_flight)) {
                    last = Some((desired, running, visible, in_flight));
                    observations.lock().await.push(Observation {
                        at: start.elapsed(),
                        desired,
                        running,
                        visible,
                        in_flight,
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(())
        }
    };

    let driver = async {
        tokio::time::sleep(Duration::from_secs_f64(IDLE_S / SCALE)).await;
        if let Some(status) = control.try_wait()? {
            let log = std::fs::read_to_string(dir.join("control-plane.log")).unwrap_or_default();
            bail!("czero local exited early ({status}): {log}");
        }
        let event = events::create_bucket(&bucket, REGION);
        let invoked_at = start.elapsed();
        let outcome = invoke(stack, &event, &dir.join("event.json"), wake).await?;
        let (desired_after_invoke, _) = stack.service_counts().await?;
        let checked_at = start.elapsed();
        let job_done_at = wait_for("the bucket to be remediated", cp.max_duration, || async {
            let state = stack.bucket_state(&bucket).await?;
            Ok(is_remediated(&state).then(|| start.elapsed()))
        })
        .await?;
        let status = wait_for("the control plane to finish", cp.max_duration, || {
            let exited = control.try_wait();
            async move { Ok(exited?) }
        })
        .await?;
        ensure!(status.success(), "czero local exited with {status}");
        anyhow::Ok((
            outcome,
            invoked_at,
            desired_after_invoke,
            checked_at,
            job_done_at,
        ))
    };
    let (watched, driven) = tokio::join!(watcher, async {
        let r = driver.await;
        // One last observation after the control plane has stopped.
        tokio::time::sleep(Duration::from_millis(300)).await;
        done.store(true, Ordering::Relaxed);
        r
    });
    let (outcome, invoked_at, desired_after_invoke, checked_at, job_done_at) = match driven {
        Ok(v) => v,
        Err(e) => {
            let _ = control.kill();
            let _ = control.wait();
            return Err(e.context(format!("fast wake run {name}")));
        }
    };
    watched?;
    let timeline = std::fs::read_to_string(&cp.timeline)
        .with_context(|| format!("reading {}", cp.timeline.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()?;
    let observations = observations.lock().await.clone();
    Ok(Run {
        outcome,
        invoked_at,
        desired_after_invoke,
        checked_at,
        job_done_at,
        observations,
        timeline,
        queue_left: stack.queue_depth(&stack.out.queue_url).await?,
        dlq_left: stack.queue_depth(&stack.out.dlq_url).await?,
    })
}

fn table(name: &str, run: &Run) -> String {
    let mut s = format!(
        "{name}: invoked at {:.0} s (simulated)\nTime    | Queue | Desired | Running\n",
        sim(run.invoked_at)
    );
    for o in &run.observations {
        s.push_str(&format!(
            "{:>6.0}s | {:>5} | {:>7} | {:>7}\n",
            sim(o.at),
            o.visible + o.in_flight,
            o.desired,
            o.running
        ));
    }
    s
}

/// Checks shared by both runs: the job done, the service back at 0, nothing left over.
fn assert_drained(name: &str, run: &Run) {
    assert_eq!(run.queue_left, (0, 0), "{name}: queue not empty");
    assert_eq!(run.dlq_left, (0, 0), "{name}: DLQ not empty");
    let last = run.observations.last().expect("observed the service");
    assert_eq!(
        (last.desired, last.running),
        (0, 0),
        "{name}: service did not return to 0"
    );
    assert!(
        run.observations
            .iter()
            .filter(|o| o.at < run.invoked_at)
            .all(|o| o.desired == 0),
        "{name}: the service left 0 before the event"
    );
    assert_eq!(run.desired_sequence(), vec![0, 1, 0], "{name}: desired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_wake_holds_until_the_job_is_done() -> Result<()> {
    let work = tempfile::tempdir()?;
    let opts = StackOptions {
        // The service's default: idle tasks wait for scale-in rather than exit.
        worker_idle_exit: false,
        enable_fast_wake: true,
        ..StackOptions::default()
    };
    let stack = Stack::up(&opts, &|m| eprintln!("[fast-wake] {m}")).await?;

    // What Terraform gave the invoker and the alarms, as the emulator holds them.
    assert_eq!(
        (
            stack.out.invoker_env.get("WAKE_CLUSTER"),
            stack.out.invoker_env.get("WAKE_SERVICE")
        ),
        (Some(&stack.out.cluster), Some(&stack.out.service)),
        "invoker environment"
    );
    let cw = aws_sdk_cloudwatch::Client::new(&stack.sdk);
    let alarms = cw.describe_alarms().send().await?;
    let guarded: Vec<&str> = alarms
        .metric_alarms()
        .iter()
        .filter(|a| {
            a.metrics()
                .iter()
                .any(|m| m.return_data() == Some(true) && m.expression() == Some(GUARD))
        })
        .filter_map(|a| a.alarm_name())
        .collect();
    assert_eq!(
        guarded.len(),
        1,
        "alarms with the scale-in guard: {guarded:?}"
    );
    assert!(guarded[0].ends_with("scale-in"), "{guarded:?}");

    // With fast wake.
    let on = play(&stack, work.path(), "fast-wake-on", true).await?;
    eprintln!("{}", table("fast wake on", &on));
    assert_eq!(on.wake(), Some("woken"), "outcome: {}", on.outcome);
    // desiredCount is 1 when the invocation returns: no alarm period has passed (the
    // earliest an alarm could act is the end of the event's period plus the metric lag).
    assert_eq!(
        on.desired_after_invoke, 1,
        "desired right after czero invoke"
    );
    let raised_in = sim(on.checked_at - on.invoked_at);
    assert!(
        raised_in < PERIOD_S,
        "the wake took {raised_in:.0} simulated seconds"
    );
    // The control plane followed the service's desiredCount, not an alarm.
    let woke_row = on
        .timeline
        .iter()
        .position(|r| {
            r["action"]
                .as_str()
                .is_some_and(|a| a.contains("desiredCount set to 1 by UpdateService"))
        })
        .context("the control plane never saw the wake")?;
    assert!(
        on.timeline[..woke_row]
            .iter()
            .all(|r| r["desired"].as_u64() == Some(0)),
        "desired rose before the wake"
    );
    // Not undone: one rise, one fall, and the fall only after the job was done and the
    // scale-in alarm saw five empty periods while the task ran.
    assert_drained("fast wake on", &on);
    let zero_at = on
        .first_desired(0, on.checked_at)
        .context("never back at 0")?;
    assert!(
        sim(zero_at - on.job_done_at) >= 5.0 * PERIOD_S,
        "scaled in {:.0} s after the job, before five empty periods\n{}",
        sim(zero_at - on.job_done_at),
        table("fast wake on", &on)
    );
    let scale_ins: Vec<&Value> = on
        .timeline
        .iter()
        .filter(|r| r["action"].as_str().is_some_and(|a| a.contains("Scale in")))
        .collect();
    assert_eq!(scale_ins.len(), 1, "scale-ins: {scale_ins:?}");

    // Without fast wake (the same event, the invoker without WAKE_*): the backlog alarm
    // raises the service once the event's period has ended and its datapoint arrived.
    let off = play(&stack, work.path(), "fast-wake-off", false).await?;
    eprintln!("{}", table("fast wake off", &off));
    assert_eq!(off.wake(), Some("disabled"), "outcome: {}", off.outcome);
    assert_eq!(off.desired_after_invoke, 0, "no wake without WAKE_*");
    assert_drained("fast wake off", &off);
    let raised_at = off
        .first_desired(1, off.invoked_at)
        .context("never raised")?;
    assert!(
        sim(raised_at - off.invoked_at) >= PERIOD_S,
        "raised {:.0} s after the event without fast wake",
        sim(raised_at - off.invoked_at)
    );

    eprintln!(
        "[fast-wake] first-job latency (simulated s, time scale {SCALE}): fast wake on {:.0} s, off {:.0} s",
        on.first_job_latency_s(),
        off.first_job_latency_s()
    );
    assert!(
        on.first_job_latency_s() < off.first_job_latency_s(),
        "fast wake did not serve the first job sooner"
    );
    stack.destroy()
}
