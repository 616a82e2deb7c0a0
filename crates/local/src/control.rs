//! The control loop: once per (scaled) alarm period it reads the queue, lets the
//! [`Autoscaler`](czero_scaling::aws::Autoscaler) evaluate the deployed policies and writes
//! a new desired count to the emulator with `UpdateService`; between periods the
//! [`Scheduler`] keeps that many tasks running.
//!
//! Like ECS, it follows the service's `desiredCount` whoever sets it: an `UpdateService`
//! from elsewhere (the invoker's fast wake) is seen within a sampling interval. Each
//! period's datapoint records whether a task ran, for alarms with the scale-in guard, and
//! reaches the alarms `metric_lag_s` after the period ends, as CloudWatch's would.

use crate::agent::{AgentServer, ProtectionBook};
use crate::clock::Clock;
use crate::emulator::{Emulator, EmulatorError, QueueCounts, ServiceInfo};
use crate::launcher::TaskLauncher;
use crate::scheduler::{Event, Scheduler, TaskNaming};
use crate::setup::ScalingSetup;
use crate::timeline::{Row, Timeline};
use czero_scaling::aws::{Blocked, Decision};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::Duration;

/// How often (real time) tasks are reconciled between datapoints.
const TICK: Duration = Duration::from_millis(25);
/// Queue reads per alarm period, for the period's maximum.
const SAMPLES_PER_PERIOD: f64 = 12.0;
/// Never read the queue more often than this (real time), however fast the time scale.
const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub cluster: String,
    pub service: String,
    pub queue_url: String,
    pub setup: ScalingSetup,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Simulated seconds between SIGTERM and SIGKILL on scale-in.
    pub stop_timeout_s: f64,
    /// Stop once the queue is empty and desired = running = 0, after having been active.
    pub until_idle: bool,
    /// Stop after this many simulated seconds.
    pub duration_s: Option<f64>,
    /// Record tasks in the emulator with RunTask/StopTask.
    pub record_tasks: bool,
    /// `arn:aws:ecs:REGION:ACCOUNT` for the task ARNs given to the agent endpoint.
    pub arn_base: String,
    /// Simulated seconds between the end of a period and the alarms seeing its datapoint.
    /// 0 (the queue is read directly) or CloudWatch's delay: standard SQS metrics reach
    /// alarms a period or more late, which is what makes an unguarded scale-in alarm undo
    /// a fast wake.
    pub metric_lag_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error("agent endpoint: {0}")]
    Agent(std::io::Error),
    #[error("timeline: {0}")]
    Timeline(std::io::Error),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: Vec<Row>,
    /// Desired counts in order of change, starting with the service's initial count.
    pub desired_sequence: Vec<u32>,
    pub starts: u32,
    pub relaunches: u32,
    /// Simulated seconds the run lasted.
    pub duration_s: f64,
    pub max_running: usize,
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn describe(decision: &Decision) -> Option<String> {
    match decision {
        Decision::Quiet | Decision::Unchanged { .. } => None,
        Decision::Scaled { policy, from, to } if to > from => Some(format!(
            "Scale out to {} ({policy})",
            plural(*to as usize, "task")
        )),
        Decision::Scaled { policy, to, .. } => Some(format!(
            "Scale in to {} ({policy})",
            plural(*to as usize, "task")
        )),
        Decision::Blocked {
            policy,
            wanted,
            reason,
        } => Some(format!(
            "{policy} wants {wanted}: held by {}",
            match reason {
                Blocked::ScaleOutCooldown => "scale-out cooldown",
                Blocked::ScaleInCooldown => "scale-in cooldown",
                Blocked::ScaleInDuringScaleOutCooldown => "scale-out cooldown (no scale-in yet)",
            }
        )),
    }
}

/// Summarises one pass's task events for the table.
fn describe_events(events: &[Event]) -> String {
    let mut started = 0;
    let mut relaunched = 0;
    let mut failed: Vec<&str> = Vec::new();
    let mut exited_self = 0;
    let mut exited_stopped = 0;
    let mut stopping = 0;
    let mut killed = 0;
    for e in events {
        match e {
            Event::Started { relaunch, .. } => {
                started += 1;
                relaunched += usize::from(*relaunch);
            }
            Event::StartFailed { error } => failed.push(error),
            Event::Exited { stopped: true, .. } => exited_stopped += 1,
            Event::Exited { stopped: false, .. } => exited_self += 1,
            Event::Stopping { .. } => stopping += 1,
            Event::Killed { .. } => killed += 1,
        }
    }
    let mut parts = Vec::new();
    if exited_self > 0 {
        parts.push(format!("{} exited", plural(exited_self, "task")));
    }
    if exited_stopped > 0 {
        parts.push(format!("{} stopped", plural(exited_stopped, "task")));
    }
    if stopping > 0 {
        parts.push(format!("{} stopping (scale-in)", plural(stopping, "task")));
    }
    if killed > 0 {
        parts.push(format!(
            "{} killed after stop timeout",
            plural(killed, "task")
        ));
    }
    if started > 0 {
        let mut s = format!("{} starting", plural(started, "task"));
        if relaunched > 0 {
            s.push_str(&format!(" ({relaunched} relaunched)"));
        }
        parts.push(s);
    }
    if let Some(e) = failed.first() {
        parts.push(format!("start failed: {e}"));
    }
    parts.join("; ")
}

struct Recorder<'a> {
    emulator: &'a Emulator,
    opts: &'a LocalOptions,
    info: ServiceInfo,
    arns: HashMap<String, String>,
    enabled: bool,
}

impl Recorder<'_> {
    async fn record(&mut self, events: &[Event]) {
        if !self.enabled {
            return;
        }
        for e in events {
            let result = match e {
                Event::Started { id, .. } => self
                    .emulator
                    .record_start(&self.opts.cluster, &self.opts.service, &self.info, id)
                    .await
                    .map(|arn| {
                        self.arns.insert(id.clone(), arn);
                    }),
                Event::Exited { id, stopped, exit } => match self.arns.remove(id) {
                    Some(arn) => {
                        let reason = if *stopped {
                            "Scaling activity initiated by czero local".to_owned()
                        } else {
                            format!("Essential container in task exited ({exit})")
                        };
                        self.emulator
                            .record_stop(&self.opts.cluster, &arn, &reason)
                            .await
                    }
                    None => Ok(()),
                },
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "recording tasks in the emulator failed; not recording any more");
                self.enabled = false;
                return;
            }
        }
    }
}

/// Runs the control plane until `shutdown` resolves, the duration passes, or (with
/// `until_idle`) the service is back at 0 with an empty queue. Tasks still running at the
/// end are stopped (SIGTERM, SIGKILL after the stop timeout).
pub async fn run<L: TaskLauncher>(
    emulator: &Emulator,
    launcher: L,
    opts: &LocalOptions,
    timeline: &mut Timeline,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, LocalError> {
    let clock = Clock::start(opts.time_scale);
    let book = ProtectionBook::new();
    let agent = AgentServer::start(book.clone(), clock)
        .await
        .map_err(LocalError::Agent)?;
    let naming = TaskNaming {
        arn_prefix: format!("{}:task/{}", opts.arn_base, opts.cluster),
        agent_base: Some(format!("http://{}/v3", agent.addr())),
    };
    let mut scheduler = Scheduler::new(launcher, book, naming, opts.stop_timeout_s);
    let mut autoscaler = opts.setup.autoscaler();
    let info = emulator.service(&opts.cluster, &opts.service).await?;
    let mut desired = info.desired;
    let mut recorder = Recorder {
        emulator,
        opts,
        info,
        arns: HashMap::new(),
        enabled: opts.record_tasks,
    };
    tracing::info!(
        launcher = %scheduler.launcher().describe(),
        agent = %agent.addr(),
        period_s = opts.setup.period_s,
        time_scale = clock.scale(),
        policies = opts.setup.policies.len(),
        "local control plane started"
    );

    let period = opts.setup.period_s.max(1) as f64;
    let mut counts = emulator.queue_counts(&opts.queue_url).await?;
    let mut desired_sequence = vec![desired];
    let mut max_running = 0;
    let mut active_seen = false;
    let row = |t: f64, c: QueueCounts, desired: u32, running: usize, action: String| Row {
        t,
        queue_visible: c.visible,
        queue_inflight: c.not_visible,
        desired,
        running: u32::try_from(running).unwrap_or(u32::MAX),
        action,
    };
    let backlog_text = |c: QueueCounts| match c.visible + c.not_visible {
        0 => "Queue empty".to_owned(),
        n => format!("{} queued", plural(n as usize, "message")),
    };
    timeline
        .record(row(
            0.0,
            counts,
            desired,
            0,
            format!("Start: {}", backlog_text(counts)),
        ))
        .map_err(LocalError::Timeline)?;

    let backlog_of = |c: QueueCounts| {
        opts.setup
            .backlog
            .value(c.visible, c.not_visible, c.delayed)
    };
    // The alarms use the period's Maximum: sample the queue several times per period and
    // keep the largest backlog seen, as CloudWatch would.
    let sample_every =
        (period / SAMPLES_PER_PERIOD).max(clock.scale() * MIN_SAMPLE_INTERVAL.as_secs_f64());
    let mut next_sample = sample_every;
    let mut period_max = backlog_of(counts);
    // Whether a task ran at some point of the current period (the scale-in guard's
    // `RunningTaskCount` Maximum > 0).
    let mut period_task_ran = false;
    // Closed periods' datapoints not yet seen by the alarms: (due, value, task ran).
    let mut datapoints: VecDeque<(u64, u64, bool)> = VecDeque::new();
    let mut next_datapoint = 1u64;
    if opts.setup.has_scale_in_guard() {
        tracing::info!(
            "the scale-in alarm carries the scale-in guard: an empty queue counts only while a task runs"
        );
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = &mut shutdown => {
                tracing::info!("shutdown requested");
                break;
            }
        }
        let now = clock.now_s();
        let mut action = Vec::new();
        let mut datapoint = false;
        if now >= next_sample {
            next_sample = now + sample_every;
            // A failed read is a missing sample, as CloudWatch would have it: the control
            // plane keeps going on its last values instead of stopping every task.
            match emulator.queue_counts(&opts.queue_url).await {
                Ok(c) => counts = c,
                Err(e) => tracing::warn!(error = %e, "queue attributes not read; sample skipped"),
            }
            period_max = period_max.max(backlog_of(counts));
            // ECS runs what the service says, whoever set it (the invoker's fast wake).
            let set = match emulator.service(&opts.cluster, &opts.service).await {
                Ok(s) => s.desired,
                Err(e) => {
                    tracing::warn!(error = %e, "service not read; keeping its desired count");
                    desired
                }
            };
            if set != desired {
                action.push(format!(
                    "desiredCount set to {set} by UpdateService (not by scaling)"
                ));
                desired = set;
                desired_sequence.push(set);
            }
        }
        if now >= next_datapoint as f64 * period {
            // One datapoint per period, at its end: the period's maximum backlog and whether
            // a task ran, seen by the alarms `metric_lag_s` later.
            let end = next_datapoint * opts.setup.period_s.max(1);
            next_datapoint += 1;
            datapoint = true;
            match emulator.queue_counts(&opts.queue_url).await {
                Ok(c) => counts = c,
                Err(e) => {
                    tracing::warn!(error = %e, "queue attributes not read; datapoint from the last sample")
                }
            }
            let value = period_max.max(backlog_of(counts));
            period_max = backlog_of(counts);
            let ran = period_task_ran || scheduler.running() > 0;
            period_task_ran = scheduler.running() > 0;
            datapoints.push_back((end.saturating_add(opts.metric_lag_s), value, ran));
        }
        while let Some(&(due, value, ran)) = datapoints.front() {
            if now < due as f64 {
                break;
            }
            datapoints.pop_front();
            datapoint = true;
            let decision = autoscaler.evaluate_period(due, value as f64, ran, desired);
            if let Decision::Scaled { to, .. } = decision {
                match emulator.set_desired(&opts.cluster, &opts.service, to).await {
                    Ok(()) => {
                        desired = to;
                        desired_sequence.push(to);
                    }
                    // The alarm stays in ALARM and re-invokes the policy next period.
                    Err(e) => {
                        tracing::warn!(error = %e, to, "UpdateService failed; scaling retried next period")
                    }
                }
            }
            action.extend(describe(&decision));
        }
        let events = scheduler.reconcile(now, desired);
        period_task_ran |= scheduler.running() > 0;
        recorder.record(&events).await;
        if !events.is_empty() {
            action.push(describe_events(&events));
            if !datapoint {
                if let Ok(c) = emulator.queue_counts(&opts.queue_url).await {
                    counts = c;
                }
                period_max = period_max.max(backlog_of(counts));
            }
        }
        max_running = max_running.max(scheduler.running());
        if !action.is_empty()
            || datapoint
                && timeline.rows().last().is_some_and(|r| {
                    r.queue_visible != counts.visible
                        || r.queue_inflight != counts.not_visible
                        || r.running as usize != scheduler.running()
                })
        {
            let text = if action.is_empty() {
                backlog_text(counts)
            } else {
                action.join("; ")
            };
            timeline
                .record(row(now, counts, desired, scheduler.running(), text))
                .map_err(LocalError::Timeline)?;
        }
        active_seen |= desired > 0 || scheduler.running() > 0;
        // With a metric lag, a datapoint still on its way may show a backlog and scale out.
        if opts.until_idle
            && active_seen
            && desired == 0
            && scheduler.running() == 0
            && counts.visible + counts.not_visible + counts.delayed == 0
            && datapoints.iter().all(|&(_, value, _)| value == 0)
        {
            timeline
                .record(row(
                    now,
                    counts,
                    desired,
                    0,
                    "Idle: service at 0, queue empty".into(),
                ))
                .map_err(LocalError::Timeline)?;
            break;
        }
        if opts.duration_s.is_some_and(|d| now >= d) {
            break;
        }
    }

    // Stop what is left: SIGTERM now, SIGKILL after the stop timeout.
    let now = clock.now_s();
    let mut events = scheduler.stop_all(now);
    while scheduler.running() > 0 {
        tokio::time::sleep(TICK).await;
        events.extend(scheduler.reconcile(clock.now_s(), 0));
    }
    recorder.record(&events).await;
    if !events.is_empty() {
        timeline
            .record(row(
                clock.now_s(),
                counts,
                desired,
                0,
                format!("Shutdown: {}", describe_events(&events)),
            ))
            .map_err(LocalError::Timeline)?;
    }
    drop(agent);
    Ok(Summary {
        rows: timeline.rows().to_vec(),
        desired_sequence,
        starts: scheduler.starts(),
        relaunches: scheduler.relaunches(),
        duration_s: clock.now_s(),
        max_running,
    })
}
