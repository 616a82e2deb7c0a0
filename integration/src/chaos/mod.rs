//! The chaos run: hundreds of CreateBucket events through the invoker to workers that
//! `czero local` runs and relaunches, while a seeded plan SIGKILLs and SIGTERMs workers,
//! freezes the emulator (SIGSTOP/SIGCONT), answers a fraction of the workers' S3 and SQS
//! requests with 5xx and throttling errors (a [`FaultProxy`] between the workers and moto),
//! slips a poison message onto the queue and delivers some events twice. Afterwards it
//! collects the evidence (every bucket, output folder and ledger marker, both queues, the
//! service, the workers' logs and EMF records) into a [`Report`] whose [`Report::problems`]
//! must be empty: nothing lost, every job done once, only the poison in the DLQ.
//!
//! The control plane talks to moto directly; only the workers see the faults (their
//! `AWS_ENDPOINT_URL` is the proxy, through `czero local --task-env`). The seed fixes the
//! plan (fault rates, when each kill, pause and poison happens, which events are
//! duplicated); thread and process timing still varies from run to run, so a seed
//! reproduces the same chaos, not the same interleaving.

mod evidence;
mod plan;
mod procs;
mod report;
mod target;

pub use evidence::{DeadLetter, Remediation, WorkerOutput};
pub use plan::{ChaosOptions, Disruption, Fault, Plan, Rng, Signal, fresh_seed};
pub use report::{Happened, Report};
pub use target::{BareStack, Target};

use crate::events;
use crate::stack::{REGION, bin};
use anyhow::{Context, Result, anyhow, bail};
use czero_testkit::fault_proxy::FaultProxy;
use evidence::{
    control_summary, drain_dlq, last_action, marker_state, markers, output_jobs, service_counts,
};
use procs::{ControlPlane, Frozen, alive_worker, emulator_pid, signal, stderr_of, worker_pids};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a due kill waits for a worker that holds jobs before taking any worker.
const KILL_PATIENCE: Duration = Duration::from_secs(5);

/// How often the markers of jobs awaiting a late duplicate are read.
const MARKER_POLL: Duration = Duration::from_secs(1);

/// The bucket of event `i` (named from the seed, so a rerun creates the same names).
pub fn bucket_name(seed: u64, i: usize) -> String {
    format!("chaos-{seed:016x}-{i}")
}

/// `czero invoke --event FILE`, as EventBridge invokes the Lambda; the queued job's id.
async fn invoke(czero: &Path, file: &Path, env: &[(String, String)]) -> Result<String> {
    let out = tokio::process::Command::new(czero)
        .arg("invoke")
        .arg("--event")
        .arg(file)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("starting czero invoke")?;
    if !out.status.success() {
        bail!(
            "czero invoke --event {} failed ({}): {}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "czero invoke --event {}: output is not JSON",
            file.display()
        )
    })?;
    v["queued"]["jobId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("czero invoke --event {} queued no job: {v}", file.display()))
}

/// What the queueing task and the disruption loop share.
#[derive(Debug, Default)]
struct Shared {
    /// Job id of each event once queued.
    jobs: Mutex<Vec<Option<String>>>,
    queued_all: AtomicBool,
    failed: AtomicBool,
    early_sent: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Plays the chaos run on `target`, keeping events, logs and the timeline in `work`.
pub async fn run(
    target: &Target,
    opts: &ChaosOptions,
    work: &Path,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    let started = Instant::now();
    let mut rng = Rng::new(opts.seed);
    let plan = Plan::new(&mut rng, opts);
    say(&format!(
        "seed {:#x}: {} jobs, at most {} workers, on {}",
        opts.seed, opts.jobs, opts.workers, target.stack
    ));
    say(plan.describe().trim_end());
    let moto = emulator_pid(&target.endpoint)?;
    let proxy = FaultProxy::start(
        &target.endpoint,
        plan.faults.iter().map(|f| f.rule.clone()).collect(),
    )
    .context("starting the fault proxy")?;
    let s3 = target.s3();
    let sqs = target.sqs();
    let czero = bin("czero")?;

    say(&format!("creating {} buckets", opts.jobs));
    let events_dir = work.join("events");
    std::fs::create_dir_all(&events_dir)
        .with_context(|| format!("creating {}", events_dir.display()))?;
    let mut files = Vec::new();
    for i in 0..opts.jobs {
        let bucket = bucket_name(opts.seed, i);
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .with_context(|| format!("creating bucket {bucket}"))?;
        let file = events_dir.join(format!("{i}.json"));
        std::fs::write(
            &file,
            serde_json::to_vec_pretty(&events::create_bucket(&bucket, REGION))?,
        )
        .with_context(|| format!("writing {}", file.display()))?;
        files.push(file);
    }

    // The control plane: moto directly, the plan's capacity, workers through the proxy.
    let config = work.join("scaling.toml");
    std::fs::write(
        &config,
        format!(
            "# The chaos run's service: the module's scaling defaults, at most {} tasks.\n[params]\nmax_capacity = {}\n",
            opts.workers, opts.workers
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let task_dir = work.join("tasks");
    let timeline_file = work.join("timeline.jsonl");
    let log_file = work.join("control-plane.log");
    let log = std::fs::File::create(&log_file)
        .with_context(|| format!("creating {}", log_file.display()))?;
    let mut cmd = Command::new(&czero);
    cmd.arg("local")
        .args(["--endpoint", &target.endpoint])
        .args(["--cluster", &target.cluster])
        .args(["--service", &target.service])
        .args(["--queue-url", &target.queue_url])
        .arg("--config")
        .arg(&config)
        .args(["--time-scale", &opts.time_scale.to_string()])
        // Fargate's longest stop timeout; the worker's grace (90 s, scaled) fits inside it.
        .args(["--stop-timeout", "120"])
        .arg("--timeline")
        .arg(&timeline_file)
        .arg("--until-idle")
        .args([
            "--duration",
            &(opts.max_duration.as_secs_f64() * opts.time_scale).to_string(),
        ])
        .arg("--worker-bin")
        .arg(bin("custodian-worker")?)
        .arg("--no-table")
        .arg("--task-logs")
        .arg(&task_dir);
    for (k, v) in target.task_env(opts.time_scale, &proxy.endpoint()) {
        cmd.arg("--task-env").arg(format!("{k}={v}"));
    }
    cmd.envs(target.aws_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    let mut control = ControlPlane {
        child: cmd.spawn().context("starting czero local")?,
    };
    let control_pid = control.pid();
    say(&format!(
        "control plane pid {control_pid}, emulator pid {moto}, fault proxy {}",
        proxy.endpoint()
    ));

    let mut invoke_env = target.aws_env.clone();
    invoke_env.extend(target.invoker_env.clone());
    let invoke_env = Arc::new(invoke_env);
    let shared = Arc::new(Shared {
        jobs: Mutex::new(vec![None; opts.jobs]),
        ..Shared::default()
    });

    // Queueing: every event once, the early duplicates a second time right after.
    let queueing = {
        let (shared, files, czero, env) = (
            shared.clone(),
            files.clone(),
            czero.clone(),
            invoke_env.clone(),
        );
        let early: BTreeSet<usize> = plan.early_duplicates.iter().copied().collect();
        let parallel = opts.invoke_parallel.max(1);
        async move {
            let result: Result<()> = async {
                for chunk in (0..files.len()).collect::<Vec<_>>().chunks(parallel) {
                    let mut set = tokio::task::JoinSet::new();
                    for &i in chunk {
                        let (czero, file, env) = (czero.clone(), files[i].clone(), env.clone());
                        set.spawn(async move { (i, invoke(&czero, &file, &env).await) });
                    }
                    while let Some(joined) = set.join_next().await {
                        let (i, job) = joined.context("an invocation task panicked")?;
                        lock(&shared.jobs)[i] = Some(job?);
                    }
                    for &i in chunk.iter().filter(|i| early.contains(i)) {
                        let again = invoke(&czero, &files[i], &env).await?;
                        let first = lock(&shared.jobs)[i].clone();
                        if first.as_deref() != Some(again.as_str()) {
                            bail!("event {i} invoked twice gave jobs {first:?} and {again}: the invoker's job id is not deterministic");
                        }
                        *lock(&shared.early_sent) += 1;
                    }
                }
                Ok(())
            }
            .await;
            match &result {
                Ok(()) => shared.queued_all.store(true, Ordering::SeqCst),
                Err(_) => shared.failed.store(true, Ordering::SeqCst),
            }
            result
        }
    };

    // Disruptions, as the jobs progress.
    let disrupt = async {
        let mut output = WorkerOutput::default();
        let mut timeline = Vec::new();
        let mut pending: Vec<Disruption> = plan.disruptions.clone();
        let mut late: Vec<usize> = plan.late_duplicates.clone();
        let mut late_sent = 0;
        let mut signalled: BTreeSet<u32> = BTreeSet::new();
        let mut kill_due: Option<Instant> = None;
        let mut last_marker_check = Instant::now();
        let mut seen_workers: BTreeSet<u32> = BTreeSet::new();
        let (mut sigkills, mut sigterms) = (0, 0);
        let mut pauses = Vec::new();
        let mut poison_sent = None;
        loop {
            if shared.failed.load(Ordering::SeqCst) || !matches!(control.child.try_wait(), Ok(None))
            {
                break;
            }
            output.poll(&task_dir);
            let done = output.done.len();
            let fraction = done as f64 / opts.jobs.max(1) as f64;
            let live = worker_pids(control_pid);
            seen_workers.extend(live.iter().copied());
            let note = |what: String, timeline: &mut Vec<Happened>| {
                say(&format!(
                    "[{:>6.1} s, {done}/{} done] {what}",
                    started.elapsed().as_secs_f64(),
                    opts.jobs
                ));
                timeline.push(Happened {
                    at: started.elapsed(),
                    jobs_done: done,
                    what,
                });
            };

            if let Some(next) = pending.first().cloned()
                && fraction >= next.at()
            {
                let fired = match next {
                    Disruption::Kill { signal: sig, .. } => {
                        let due = *kill_due.get_or_insert_with(Instant::now);
                        let candidates: Vec<(u32, u64)> = live
                            .iter()
                            .copied()
                            .filter(|p| !signalled.contains(p))
                            .map(|p| {
                                let held = stderr_of(p).map_or(0, |log| output.in_hand(&log));
                                (p, held)
                            })
                            .collect();
                        // A worker holding jobs, so that the kill interrupts work; failing
                        // that for a few seconds (the queue may be momentarily drained), any.
                        let busy: Vec<(u32, u64)> =
                            candidates.iter().copied().filter(|(_, n)| *n > 0).collect();
                        let pool = if !busy.is_empty() || due.elapsed() < KILL_PATIENCE {
                            busy
                        } else {
                            candidates
                        };
                        if pool.is_empty() {
                            false // wait for a busy worker, or for one to be (re)launched
                        } else {
                            let (pid, held) = pool[(rng.next_u64() % pool.len() as u64) as usize];
                            if signal(pid, sig.arg()) {
                                signalled.insert(pid);
                                match sig {
                                    Signal::Kill => sigkills += 1,
                                    Signal::Term => sigterms += 1,
                                }
                                note(
                                    format!(
                                        "{} worker pid {pid} holding {held} job(s) (of {} running)",
                                        sig.name(),
                                        live.len()
                                    ),
                                    &mut timeline,
                                );
                            }
                            kill_due = None;
                            true
                        }
                    }
                    Disruption::Pause { length, .. } => {
                        // Not while `czero invoke` runs: it would stall with the emulator.
                        if shared.queued_all.load(Ordering::SeqCst) {
                            note(
                                format!(
                                    "SIGSTOP the emulator (pid {moto}) for {} s",
                                    length.as_secs()
                                ),
                                &mut timeline,
                            );
                            let t = Instant::now();
                            {
                                let _frozen = Frozen::new(moto)?;
                                tokio::time::sleep(length).await;
                            }
                            pauses.push(t.elapsed());
                            note("SIGCONT the emulator".into(), &mut timeline);
                            true
                        } else {
                            false
                        }
                    }
                    Disruption::Poison { .. } => {
                        let body = format!("chaos run {:#x}: this message is not a job", opts.seed);
                        sqs.send_message()
                            .queue_url(&target.queue_url)
                            .message_body(&body)
                            .send()
                            .await
                            .context("queueing the poison message")?;
                        note(format!("poison message queued: {body:?}"), &mut timeline);
                        poison_sent = Some(body);
                        true
                    }
                };
                if fired {
                    pending.remove(0);
                }
            }

            // A late duplicate goes out once its job's marker says done, so it surely reaches
            // a worker after the original finished. The marker, not the "job done" line: a
            // worker killed between the two leaves the job done without the line.
            let check_markers = last_marker_check.elapsed() >= MARKER_POLL;
            let ready: Vec<(usize, String)> = {
                let jobs = lock(&shared.jobs);
                late.iter()
                    .filter_map(|&i| {
                        let job = jobs.get(i)?.clone()?;
                        (check_markers || output.done.contains_key(&job)).then_some((i, job))
                    })
                    .collect()
            };
            if check_markers {
                last_marker_check = Instant::now();
            }
            for (i, job) in ready {
                if marker_state(&s3, &target.output_bucket, &job)
                    .await?
                    .as_deref()
                    != Some("done")
                {
                    continue;
                }
                let again = invoke(&czero, &files[i], &invoke_env).await?;
                if again != job {
                    bail!(
                        "event {i} invoked again gave job {again}, first {job}: the invoker's job id is not deterministic"
                    );
                }
                late.retain(|&x| x != i);
                late_sent += 1;
                note(
                    format!("event {i} delivered again after job {job} finished"),
                    &mut timeline,
                );
            }

            if pending.is_empty() && late.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut not_done: Vec<String> = pending.iter().map(Disruption::describe).collect();
        not_done.extend(
            late.iter()
                .map(|i| format!("deliver event {i} again after its job finished")),
        );
        anyhow::Ok((
            output,
            timeline,
            sigkills,
            sigterms,
            pauses,
            poison_sent,
            late_sent,
            seen_workers,
            not_done,
        ))
    };

    let (queued, disrupted) = tokio::join!(queueing, disrupt);
    queued?;
    let (
        mut output,
        timeline,
        sigkills,
        sigterms,
        pauses,
        poison_sent,
        late_sent,
        mut seen,
        not_done,
    ) = disrupted?;

    say("disruptions over; waiting for the control plane to bring the service back to 0");
    let limit = opts.max_duration.saturating_sub(started.elapsed()) + Duration::from_secs(30);
    let waited = Instant::now();
    let status = loop {
        seen.extend(worker_pids(control_pid));
        if let Some(s) = control.child.try_wait()? {
            break s;
        }
        if waited.elapsed() > limit {
            bail!(
                "czero local still running after {:?}; its log: {}",
                opts.max_duration,
                log_file.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    output.finish(&task_dir);

    say("collecting the evidence: buckets, outputs, ledger, queues, service");
    let jobs: Vec<String> = lock(&shared.jobs).iter().flatten().cloned().collect();
    let mut remediation = BTreeMap::new();
    for i in 0..opts.jobs {
        let b = bucket_name(opts.seed, i);
        let r = Remediation::of(&s3, &b).await;
        remediation.insert(b, r);
    }
    let outputs = output_jobs(&s3, &target.output_bucket).await?;
    let markers = markers(&s3, &target.output_bucket).await?;
    let queue_left = czero_testkit::queue_depth(&sqs, &target.queue_url).await?;
    let dlq = drain_dlq(&sqs, &target.dlq_url, &output).await?;
    let service_end = service_counts(target).await?;
    let (task_starts, relaunches) = control_summary(&log_file);
    let control_idle =
        last_action(&timeline_file).as_deref() == Some("Idle: service at 0, queue empty");
    let workers_left: Vec<u32> = seen.into_iter().filter(|p| alive_worker(*p)).collect();
    let faults = plan
        .faults
        .iter()
        .zip(proxy.fired())
        .map(|(f, n)| (f.kind.clone(), n))
        .collect();
    let early_sent = *lock(&shared.early_sent);
    Ok(Report {
        opts: opts.clone(),
        stack: target.stack.clone(),
        plan,
        work_dir: work.to_path_buf(),
        elapsed: started.elapsed(),
        jobs,
        timeline,
        sigkills,
        sigterms,
        pauses,
        poison_sent,
        early_duplicates_sent: early_sent,
        late_duplicates_sent: late_sent,
        faults,
        proxy_requests: proxy.total_requests(),
        workers: output,
        task_starts,
        relaunches,
        control_exit: format!("czero local exited with {status}"),
        control_idle,
        service_end,
        queue_left,
        dlq,
        outputs,
        markers,
        remediation,
        workers_left,
        not_done,
    })
}
