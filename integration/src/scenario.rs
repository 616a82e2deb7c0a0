//! The design document's scaling scenarios, played on a [`Stack`]: create buckets, start the
//! control plane, feed the invoker one CreateBucket event per bucket, watch the service
//! through the ECS API, and collect what happened.

use crate::events;
use crate::stack::{BucketState, ControlPlane, REGION, Stack, wait_for};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The spec's graceful-exit log line (a contract: operators grep for it).
pub const GRACEFUL_EXIT_LINE: &str =
    "No messages for extended period. Exiting gracefully to allow scale-down to 0.";

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// CreateBucket events (one new bucket each).
    pub events: usize,
    /// How many invocations run at once (1 = one after another).
    pub parallel: usize,
    /// SIGKILL every running worker once this many tasks run and jobs are in flight (the
    /// fault scenario): the killed workers hold received, undeleted messages, so the
    /// scenario passes only if those come back after the visibility timeout and complete.
    pub kill_workers_at: Option<usize>,
    /// Only for the idle scenario: how long to watch, in real time.
    pub watch_idle: Duration,
}

impl Scenario {
    pub fn idle() -> Self {
        Self::new("scenario-1-idle", 0, 1)
    }
    pub fn single() -> Self {
        Self::new("scenario-2-single", 1, 1)
    }
    pub fn burst() -> Self {
        Self::new("scenario-3-burst", 25, 25)
    }
    /// The spec's Test 2: 20 invocations sent concurrently.
    pub fn load_test() -> Self {
        Self::new("test-2-load", 20, 20)
    }
    /// A burst during which every worker is killed once.
    pub fn faults() -> Self {
        Self {
            kill_workers_at: Some(1),
            ..Self::new("faults-burst", 15, 15)
        }
    }

    fn new(name: &str, events: usize, parallel: usize) -> Self {
        Self {
            name: name.to_string(),
            events,
            parallel,
            kill_workers_at: None,
            watch_idle: Duration::from_secs(8),
        }
    }
}

/// A `(desired, running)` observation from `ecs describe-services`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub at: Duration,
    pub desired: i32,
    pub running: i32,
    pub visible: u64,
    pub in_flight: u64,
}

/// What happened in one scenario.
#[derive(Debug)]
pub struct Report {
    pub scenario: Scenario,
    /// Every change of `(desired, running, queue)` seen through the ECS and SQS APIs.
    pub observations: Vec<Observation>,
    /// The control plane's timeline (JSON lines it wrote).
    pub timeline: Vec<Value>,
    pub buckets: Vec<(String, BucketState)>,
    pub queue_left: (u64, u64),
    pub dlq_left: (u64, u64),
    /// Worker log lines equal to [`GRACEFUL_EXIT_LINE`].
    pub graceful_exits: usize,
    /// Workers killed by the fault injection.
    pub killed: usize,
    /// Messages in flight (received, not deleted) when the workers were killed.
    pub in_flight_at_kill: u64,
    /// Containers of this scenario's control plane still present after it exited (workers
    /// run as containers only; always empty for processes).
    pub containers_left: Vec<String>,
    pub elapsed: Duration,
    pub output_keys: usize,
}

impl Report {
    /// The distinct successive desired counts, e.g. `[0, 1, 0]`.
    pub fn desired_sequence(&self) -> Vec<i32> {
        let mut seq: Vec<i32> = Vec::new();
        for o in &self.observations {
            if seq.last() != Some(&o.desired) {
                seq.push(o.desired);
            }
        }
        seq
    }

    pub fn max_desired(&self) -> i32 {
        self.observations
            .iter()
            .map(|o| o.desired)
            .max()
            .unwrap_or(0)
    }

    pub fn max_running(&self) -> i32 {
        self.observations
            .iter()
            .map(|o| o.running)
            .max()
            .unwrap_or(0)
    }

    pub fn remediated(&self) -> usize {
        self.buckets
            .iter()
            .filter(|(_, s)| is_remediated(s))
            .count()
    }

    /// The scenario's table in the design document's format.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{}\nTime    | Queue | Desired | Running\n--------|-------|---------|--------\n",
            self.scenario.name
        );
        for o in &self.observations {
            s.push_str(&format!(
                "{:>5.1}s  | {:>5} | {:>7} | {:>7}\n",
                o.at.as_secs_f64(),
                o.visible + o.in_flight,
                o.desired,
                o.running
            ));
        }
        s.push_str(&format!(
            "desired {:?}; buckets remediated {}/{}; queue left {:?}; DLQ left {:?}; graceful exits {}; workers killed {} with {} jobs in flight; {:.1}s\n",
            self.desired_sequence(),
            self.remediated(),
            self.buckets.len(),
            self.queue_left,
            self.dlq_left,
            self.graceful_exits,
            self.killed,
            self.in_flight_at_kill,
            self.elapsed.as_secs_f64()
        ));
        s
    }
}

/// The default policy's effect: encryption, the full public access block, and its tag.
pub fn is_remediated(s: &BucketState) -> bool {
    s.encrypted && s.public_access_blocked && !s.tags.is_empty()
}

/// Plays `scenario` on `stack`. `work` holds events, the timeline and task logs.
pub async fn play(
    stack: &Stack,
    scenario: &Scenario,
    cp: &ControlPlane,
    work: &Path,
    on_change: &(dyn Fn(&Observation) + Sync),
) -> Result<Report> {
    let start = Instant::now();
    let dir = work.join(&scenario.name);
    std::fs::create_dir_all(&dir)?;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let buckets: Vec<String> = (0..scenario.events)
        .map(|i| format!("{}-{i}-{suffix}", scenario.name))
        .collect();
    stack.create_buckets(&buckets).await?;

    let mut cp = cp.clone();
    cp.timeline = dir.join("timeline.jsonl");
    cp.task_log_dir = Some(dir.join("tasks"));
    let mut control = stack.control_plane(&cp)?;

    let observations = Arc::new(Mutex::new(Vec::<Observation>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let observations = observations.clone();
        let done = done.clone();
        async move {
            let mut last: Option<(i32, i32, u64, u64)> = None;
            while !done.load(Ordering::Relaxed) {
                let (desired, running) = stack.service_counts().await?;
                let (visible, in_flight) = stack.queue_depth(&stack.out.queue_url).await?;
                let now = (desired, running, visible, in_flight);
                if last != Some(now) {
                    last = Some(now);
                    let o = Observation {
                        at: start.elapsed(),
                        desired,
                        running,
                        visible,
                        in_flight,
                    };
                    on_change(&o);
                    observations.lock().await.push(o);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        }
    };

    let driver = async {
        let events: Vec<Value> = buckets
            .iter()
            .map(|b| events::create_bucket(b, REGION))
            .collect();
        if !events.is_empty() {
            stack.invoke_all(&events, scenario.parallel, &dir).await?;
        }
        let mut killed = 0;
        let mut in_flight_at_kill = 0;
        if let Some(at) = scenario.kill_workers_at {
            let workers = Workers::of(&cp, control.id());
            // Kill only while jobs are in hand: a kill after the queue drained proves nothing.
            in_flight_at_kill = wait_for(
                "workers to start and take jobs",
                Duration::from_secs(120),
                || async {
                    if workers.list().len() < at {
                        return Ok(None);
                    }
                    let (_, in_flight) = stack.queue_depth(&stack.out.queue_url).await?;
                    Ok((in_flight > 0).then_some(in_flight))
                },
            )
            .await?;
            for worker in workers.list() {
                if workers.kill9(&worker) {
                    killed += 1;
                }
            }
        }
        if scenario.events == 0 {
            tokio::time::sleep(scenario.watch_idle).await;
            let _ = control.kill();
        }
        let status = wait_for("the control plane to finish", cp.max_duration, || {
            let exited = control.try_wait();
            async move { Ok(exited?) }
        })
        .await?;
        if scenario.events > 0 && !status.success() {
            bail!("czero local exited with {status}");
        }
        anyhow::Ok((killed, in_flight_at_kill))
    };

    let (watched, driven) = tokio::join!(watcher, async {
        let r = driver.await;
        // One last observation after the control plane has stopped.
        tokio::time::sleep(Duration::from_millis(300)).await;
        done.store(true, Ordering::Relaxed);
        r
    });
    let workers = Workers::of(&cp, control.id());
    let (killed, in_flight_at_kill) = match driven {
        Ok(k) => k,
        Err(e) => {
            let _ = control.kill();
            // A control plane killed outright cannot stop its containers: do it here.
            for c in workers.containers(true) {
                workers.kill9(&c);
            }
            return Err(e.context(format!("scenario {}", scenario.name)));
        }
    };
    watched?;
    let containers_left = workers.containers(true);

    let mut states = Vec::new();
    for b in &buckets {
        states.push((b.clone(), stack.bucket_state(b).await?));
    }
    let observations = observations.lock().await.clone();
    Ok(Report {
        scenario: scenario.clone(),
        observations,
        timeline: read_jsonl(&cp.timeline)?,
        buckets: states,
        queue_left: stack.queue_depth(&stack.out.queue_url).await?,
        dlq_left: stack.queue_depth(&stack.out.dlq_url).await?,
        graceful_exits: count_lines(&dir.join("tasks"), GRACEFUL_EXIT_LINE)?,
        killed,
        in_flight_at_kill,
        containers_left,
        elapsed: start.elapsed(),
        output_keys: stack.output_keys("").await?.len(),
    })
}

/// At most this many `czero invoke` at once: moto's server queues 128 connections waiting to
/// be accepted, and 200 invocations at once (each with its S3 and SQS connections) overflow
/// it on a busy machine, so connects time out.
const MAX_PARALLEL_INVOCATIONS: usize = 50;

/// What happened when a list of events ran ([`play_events`]).
#[derive(Debug)]
pub struct EventsRun {
    pub queue_left: (u64, u64),
    pub dlq_left: (u64, u64),
    /// Every task's output, concatenated (JSON log lines).
    pub task_logs: String,
    pub elapsed: Duration,
}

/// Invokes `events` (any kind: CloudTrail, Security Hub, Config) with `czero invoke`, then
/// runs the control plane until the service is idle again. The jobs are all queued before
/// the control plane starts, so they arrive as one burst however long the invocations take
/// (on a busy machine 200 of them can take minutes, which a time-scaled control plane would
/// see as separate bursts with idle moments between them, and `--until-idle` would end at
/// the first). When no event queued a job there is nothing to run and no control plane
/// starts. The caller checks the resources; nothing is asserted here.
pub async fn play_events(
    stack: &Stack,
    name: &str,
    events: &[Value],
    cp: &ControlPlane,
    work: &Path,
) -> Result<EventsRun> {
    let start = Instant::now();
    let dir = work.join(name);
    std::fs::create_dir_all(&dir)?;
    let mut cp = cp.clone();
    cp.timeline = dir.join("timeline.jsonl");
    cp.task_log_dir = Some(dir.join("tasks"));
    stack
        .invoke_all(
            events,
            events.len().clamp(1, MAX_PARALLEL_INVOCATIONS),
            &dir,
        )
        .await
        .with_context(|| format!("events {name}"))?;
    let (visible, in_flight) = stack.queue_depth(&stack.out.queue_url).await?;
    if visible + in_flight > 0 {
        let mut control = stack.control_plane(&cp)?;
        let status = wait_for("the control plane to finish", cp.max_duration, || {
            let exited = control.try_wait();
            async move { Ok(exited?) }
        })
        .await;
        let failed = match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(anyhow!("czero local exited with {status}")),
            Err(e) => Some(e),
        };
        if let Some(e) = failed {
            let _ = control.kill();
            let workers = Workers::of(&cp, control.id());
            for c in workers.containers(true) {
                workers.kill9(&c);
            }
            return Err(e.context(format!("events {name}")));
        }
    }
    let mut task_logs = String::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("tasks")) {
        for entry in entries.flatten() {
            task_logs.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    Ok(EventsRun {
        queue_left: stack.queue_depth(&stack.out.queue_url).await?,
        dlq_left: stack.queue_depth(&stack.out.dlq_url).await?,
        task_logs,
        elapsed: start.elapsed(),
    })
}

fn read_jsonl(path: &Path) -> Result<Vec<Value>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .with_context(|| format!("{}: bad timeline line", path.display()))
        })
        .collect()
}

/// Lines containing `needle` across every file in `dir`.
fn count_lines(dir: &Path, needle: &str) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries {
        let path: PathBuf = entry?.path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            n += text.lines().filter(|l| l.contains(needle)).count();
        }
    }
    Ok(n)
}

/// The label `czero local` puts on its task containers, valued with its process id
/// (`czero_local::launcher::CONTAINER_LABEL`).
const CONTAINER_LABEL: &str = "czero.local";

/// The workers one control plane started: its child processes, or its containers.
enum Workers {
    Processes { parent: u32 },
    Containers { label: String },
}

impl Workers {
    fn of(cp: &ControlPlane, control_pid: u32) -> Self {
        match cp.image {
            Some(_) => Workers::Containers {
                label: format!("label={CONTAINER_LABEL}={control_pid}"),
            },
            None => Workers::Processes {
                parent: control_pid,
            },
        }
    }

    /// Running workers: process ids or container ids.
    fn list(&self) -> Vec<String> {
        match self {
            Workers::Processes { parent } => worker_pids(*parent)
                .into_iter()
                .map(|p| p.to_string())
                .collect(),
            Workers::Containers { .. } => self.containers(false),
        }
    }

    /// This control plane's containers (`all`: stopped ones too). Always empty for processes.
    fn containers(&self, all: bool) -> Vec<String> {
        let Workers::Containers { label } = self else {
            return Vec::new();
        };
        let mut cmd = std::process::Command::new("docker");
        cmd.args(["ps", "--quiet", "--no-trunc", "--filter", label]);
        if all {
            cmd.arg("--all");
        }
        match cmd.stderr(std::process::Stdio::null()).output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// SIGKILL, as the OOM killer or a failing host would: `kill -KILL` for a process,
    /// `docker kill --signal KILL` for a container.
    fn kill9(&self, worker: &str) -> bool {
        let mut cmd = match self {
            Workers::Processes { .. } => {
                let mut c = std::process::Command::new("kill");
                c.args(["-KILL", worker]);
                c
            }
            Workers::Containers { .. } => {
                let mut c = std::process::Command::new("docker");
                c.args(["kill", "--signal", "KILL", worker]);
                c
            }
        };
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

/// Worker processes started by the control plane `parent` (its direct children named
/// `custodian-worker`). Only our own children, so parallel tests never hit each other.
fn worker_pids(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ..."; comm is truncated to 15 bytes by the kernel.
            let Some(close) = stat.rfind(')') else {
                return false;
            };
            let comm = stat.split_once('(').map(|(_, r)| r).unwrap_or("");
            let ppid = stat[close + 1..]
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok());
            comm.starts_with("custodian-worke") && ppid == Some(parent)
        })
        .collect()
}
