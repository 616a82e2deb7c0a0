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

mod disrupt;
mod evidence;
mod invoke;
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
use anyhow::{Context, Result, bail};
use czero_testkit::fault_proxy::FaultProxy;
use disrupt::{Disrupted, Disruptor, Stage};
use evidence::{control_summary, drain_dlq, last_action, markers, output_jobs, service_counts};
use invoke::{Invoker, Shared, lock, queue_events};
use procs::{ControlPlane, alive_worker, emulator_pid, worker_pids};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bucket of event `i` (named from the seed, so a rerun creates the same names).
pub fn bucket_name(seed: u64, i: usize) -> String {
    format!("chaos-{seed:016x}-{i}")
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

    let task_dir = work.join("tasks");
    let timeline_file = work.join("timeline.jsonl");
    let log_file = work.join("control-plane.log");
    let mut control = start_control_plane(target, opts, work, &czero, &proxy.endpoint())?;
    let control_pid = control.pid();
    say(&format!(
        "control plane pid {control_pid}, emulator pid {moto}, fault proxy {}",
        proxy.endpoint()
    ));

    let mut invoke_env = target.aws_env.clone();
    invoke_env.extend(target.invoker_env.clone());
    let invoker = Invoker {
        czero,
        env: Arc::new(invoke_env),
    };
    let shared = Arc::new(Shared {
        jobs: Mutex::new(vec![None; opts.jobs]),
        ..Shared::default()
    });
    let queueing = queue_events(
        invoker.clone(),
        files.clone(),
        plan.early_duplicates.iter().copied().collect(),
        opts.invoke_parallel,
        shared.clone(),
    );
    let stage = Stage {
        target,
        opts,
        say,
        started,
        invoker,
        files,
        shared: &shared,
        task_dir: task_dir.clone(),
        emulator: moto,
        control_pid,
    };
    let disrupt = Disruptor::new(stage, &plan, rng).run(&mut control);
    let (queued, disrupted) = tokio::join!(queueing, disrupt);
    queued?;
    let Disrupted {
        mut output,
        timeline,
        sigkills,
        sigterms,
        pauses,
        poison_sent,
        late_sent,
        seen_workers: mut seen,
        not_done,
    } = disrupted?;

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
        invocations_retried: *lock(&shared.invoke_retries),
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

/// `czero local` on moto directly, with the plan's capacity (a scaling config: the module's
/// defaults but `max_capacity`), every task's AWS calls sent to `proxy` (`--task-env
/// AWS_ENDPOINT_URL=...` overrides the endpoint the tasks would inherit), task logs in
/// `work/tasks`, its timeline in `work/timeline.jsonl` and its own output in
/// `work/control-plane.log`.
fn start_control_plane(
    target: &Target,
    opts: &ChaosOptions,
    work: &Path,
    czero: &Path,
    proxy: &str,
) -> Result<ControlPlane> {
    let config = work.join("scaling.toml");
    std::fs::write(
        &config,
        format!(
            "# The chaos run's service: the module's scaling defaults, at most {} tasks.\n[params]\nmax_capacity = {}\n",
            opts.workers, opts.workers
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let log_file = work.join("control-plane.log");
    let log = std::fs::File::create(&log_file)
        .with_context(|| format!("creating {}", log_file.display()))?;
    let mut cmd = Command::new(czero);
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
        .arg(work.join("timeline.jsonl"))
        .arg("--until-idle")
        .args([
            "--duration",
            &(opts.max_duration.as_secs_f64() * opts.time_scale).to_string(),
        ])
        .arg("--worker-bin")
        .arg(bin("custodian-worker")?)
        .arg("--no-table")
        .arg("--task-logs")
        .arg(work.join("tasks"));
    for (k, v) in target.task_env(opts.time_scale, proxy) {
        cmd.arg("--task-env").arg(format!("{k}={v}"));
    }
    cmd.envs(target.aws_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    Ok(ControlPlane {
        child: cmd.spawn().context("starting czero local")?,
    })
}
