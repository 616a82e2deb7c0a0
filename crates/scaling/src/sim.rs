//! A deterministic discrete-event simulator of the deployed system.
//!
//! What it models, in the order a job meets it: arrivals from a trace (plus the invoker's
//! optional fast wake, `UpdateService` 0 → 1 on enqueue), the SQS queue (visible and in
//! flight, long polls of up to `wait_time_s` returning at most `max_messages`, visibility
//! timeout for messages held by a stopped task), CloudWatch (one datapoint per period: the
//! period's maximum of `visible + in-flight`, available to the alarms `metric_lag_s` after
//! the period ends), the [`Autoscaler`] (alarms, step policies, cooldowns), and the ECS
//! service scheduler: it launches tasks until the live count meets `desiredCount`,
//! **replaces a task that exits while the desired count is unchanged** (a relaunch), and on
//! scale-in stops pending and idle tasks first, never a task protected from scale-in while
//! it works on a batch. Fargate start-up and per-job processing times are drawn from
//! uniform ranges with a seeded generator; each task is billed from launch to stop with
//! Fargate's one-minute minimum.
//!
//! Same configuration and seed, same report, bit for bit.

use crate::aws::{
    Autoscaler, Blocked, Decision, ScalingParams, guarded_scale_in_policy, scale_in_policy,
    scale_out_policy,
};
use crate::price::FargatePrice;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Everything a run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    pub scaling: ScalingParams,
    pub price: FargatePrice,
    pub seed: u64,
    /// The worker exits after `max_empty_receives` consecutive empty receives.
    pub idle_exit: bool,
    pub max_empty_receives: u32,
    /// Long-poll wait (`WAIT_TIME_SECONDS`).
    pub wait_time_s: f64,
    /// Messages per receive (SQS allows at most 10).
    pub max_messages: u32,
    /// Per-job processing time, uniform in [lo, hi) seconds.
    pub processing_s: (f64, f64),
    /// Fargate launch to running, uniform in [lo, hi) seconds.
    pub start_latency_s: (f64, f64),
    /// Delay between the end of a metric period and the alarms seeing its datapoint.
    pub metric_lag_s: u64,
    /// The invoker raises desired 0 → 1 when it queues a job.
    pub fast_wake: bool,
    /// The scale-in alarm only counts an empty queue while a task runs: its metric math is
    /// `IF(tasks_running > 0, visible + in-flight, 1)`
    /// ([`AlarmMetric::BacklogWhileRunning`](crate::aws::AlarmMetric)). Without it the
    /// scale-in alarm stays in ALARM while the service sits at 0 and undoes a fast wake
    /// within a period.
    pub scale_in_guard: bool,
    /// Busy tasks are protected from scale-in (ECS task scale-in protection).
    pub scale_in_protection: bool,
    pub visibility_timeout_s: f64,
    /// Simulate at least this long.
    pub min_duration_s: f64,
    /// Stop at the latest this long after the last arrival, even if not back at 0.
    pub max_tail_s: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            scaling: ScalingParams::default(),
            price: FargatePrice::default(),
            seed: 1,
            idle_exit: false,
            max_empty_receives: 3,
            wait_time_s: 20.0,
            max_messages: 10,
            processing_s: (1.0, 3.0),
            start_latency_s: (30.0, 60.0),
            metric_lag_s: 60,
            fast_wake: false,
            scale_in_guard: false,
            scale_in_protection: true,
            visibility_timeout_s: 300.0,
            min_duration_s: 0.0,
            max_tail_s: 6.0 * 3600.0,
        }
    }
}

/// The state at one minute, and what happened since the previous row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub t_s: u64,
    /// `H:MM`, as the spec's tables print it.
    pub time: String,
    /// Visible + in flight (the metric the alarms see).
    pub queue: u64,
    pub visible: u64,
    pub in_flight: u64,
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    pub action: String,
}

/// The numbers a run is judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub events: u64,
    pub jobs_done: u64,
    pub duration_s: f64,
    /// Billed task-minutes (launch to stop, one-minute minimum per task).
    pub task_minutes: f64,
    pub cost_usd: f64,
    pub cost_per_finding_usd: Option<f64>,
    pub launches: u64,
    /// Launches that replaced a task which exited while the desired count stayed the same.
    pub relaunches: u64,
    /// Arrival of the first event to its job finishing.
    pub first_message_latency_s: Option<f64>,
    /// Over all jobs: arrival to finish.
    pub latency_p50_s: Option<f64>,
    pub latency_p95_s: Option<f64>,
    /// Over jobs that found no task running (the first of each wake-up).
    pub first_job_latency_p50_s: Option<f64>,
    pub first_job_latency_p95_s: Option<f64>,
    pub wakeups: u64,
    /// Messages that went back to the queue because their task was stopped mid-batch.
    pub redelivered: u64,
    pub max_desired: u32,
    pub max_running: u32,
    /// True when the run ended back at 0 (queue empty, desired 0, no task).
    pub back_to_zero: bool,
}

/// A run: its configuration, summary and minute-by-minute timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub config: SimConfig,
    pub summary: Summary,
    pub timeline: Vec<Row>,
}

/// Format seconds as the spec's `H:MM`.
pub fn clock(t_s: u64) -> String {
    format!("{}:{:02}", t_s / 3600, (t_s / 60) % 60)
}

const MS: f64 = 1000.0;

fn to_ms(s: f64) -> u64 {
    (s.max(0.0) * MS).round() as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Arrival(u32),
    Deliver,
    TaskStarted(u32),
    PollTimeout(u32, u32),
    JobDone(u32, u32),
    Return(u32),
    PeriodClose,
    AlarmEval(u64, bool),
    Snapshot(u64),
}

impl Ev {
    /// Order of simultaneous events: arrivals first, then deliveries and task work, then
    /// the metric period closes, the alarms evaluate, and last the minute's row is taken.
    fn priority(self) -> u8 {
        match self {
            Ev::Arrival(_) => 0,
            Ev::Deliver | Ev::TaskStarted(_) | Ev::PollTimeout(..) | Ev::JobDone(..) => 1,
            Ev::Return(_) => 1,
            Ev::PeriodClose => 2,
            Ev::AlarmEval(..) => 3,
            Ev::Snapshot(_) => 4,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    at_ms: u64,
    prio: u8,
    seq: u64,
    ev: Ev,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at_ms, other.prio, other.seq).cmp(&(self.at_ms, self.prio, self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    Pending,
    Polling,
    Busy,
    Stopped,
}

#[derive(Debug)]
struct Task {
    launched_ms: u64,
    stopped_ms: Option<u64>,
    state: TaskState,
    empty_receives: u32,
    batch: VecDeque<u32>,
    /// Bumped whenever a scheduled poll timeout or job end becomes stale.
    generation: u32,
}

#[derive(Debug, Default)]
struct MinuteLog {
    arrivals: u32,
    fast_wake: bool,
    scaling: Vec<String>,
    started: u32,
    exited: u32,
    relaunched: u32,
    stopped: u32,
    processed: u32,
}

impl MinuteLog {
    fn render(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let plural = |n: u32, one: &str, many: &str| {
            if n == 1 {
                one.to_owned()
            } else {
                format!("{n} {many}")
            }
        };
        if self.arrivals > 0 {
            parts.push(plural(self.arrivals, "Event arrives", "events arrive"));
        }
        if self.fast_wake {
            parts.push("Fast wake 0→1".to_owned());
        }
        parts.extend(self.scaling.iter().cloned());
        if self.started > 0 {
            parts.push(plural(self.started, "Task running", "tasks running"));
        }
        if self.processed > 0 {
            parts.push(format!("{} processed", self.processed));
        }
        if self.exited > 0 {
            parts.push(plural(self.exited, "Task exits idle", "tasks exit idle"));
        }
        if self.relaunched > 0 {
            parts.push(plural(
                self.relaunched,
                "ECS relaunches it",
                "relaunched by ECS",
            ));
        }
        if self.stopped > 0 {
            parts.push(plural(self.stopped, "Task stopped", "tasks stopped"));
        }
        parts.join("; ")
    }
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    arrivals_ms: Vec<u64>,
    rng: Rng,
    heap: BinaryHeap<Scheduled>,
    seq: u64,
    now_ms: u64,
    visible: VecDeque<u32>,
    in_flight: u64,
    returning: Vec<Vec<u32>>,
    tasks: Vec<Task>,
    waiters: VecDeque<(u32, u32)>,
    deliver_scheduled: bool,
    live: u32,
    running: u32,
    desired: u32,
    autoscaler: Autoscaler,
    period_max: u64,
    period_had_running: bool,
    cold_open: bool,
    episode_first: Vec<bool>,
    latencies: Vec<f64>,
    first_job_latencies: Vec<f64>,
    first_message_latency: Option<f64>,
    launches: u64,
    relaunches: u64,
    wakeups: u64,
    redelivered: u64,
    max_desired: u32,
    max_running: u32,
    log: MinuteLog,
    rows: Vec<Row>,
    done: bool,
}

/// The standard pair of policies; the scale-in alarm carries the scale-in guard when
/// `cfg.scale_in_guard` is on (what Terraform deploys with fast wake).
pub fn autoscaler(cfg: &SimConfig) -> Autoscaler {
    let scale_in = if cfg.scale_in_guard {
        guarded_scale_in_policy(&cfg.scaling)
    } else {
        scale_in_policy(&cfg.scaling)
    };
    Autoscaler::new(&cfg.scaling, vec![scale_out_policy(&cfg.scaling), scale_in])
}

/// Simulate `arrivals_s` (seconds from the start, any order) under `cfg`.
pub fn simulate(cfg: &SimConfig, arrivals_s: &[f64]) -> Report {
    let mut arrivals_ms: Vec<u64> = arrivals_s.iter().map(|&t| to_ms(t)).collect();
    arrivals_ms.sort_unstable();
    let n = arrivals_ms.len();
    let mut sim = Sim {
        cfg,
        arrivals_ms,
        rng: Rng::new(cfg.seed),
        heap: BinaryHeap::new(),
        seq: 0,
        now_ms: 0,
        visible: VecDeque::new(),
        in_flight: 0,
        returning: Vec::new(),
        tasks: Vec::new(),
        waiters: VecDeque::new(),
        deliver_scheduled: false,
        live: 0,
        running: 0,
        desired: cfg.scaling.min_capacity,
        autoscaler: autoscaler(cfg),
        period_max: 0,
        period_had_running: false,
        cold_open: false,
        episode_first: vec![false; n],
        latencies: Vec::with_capacity(n),
        first_job_latencies: Vec::new(),
        first_message_latency: None,
        launches: 0,
        relaunches: 0,
        wakeups: 0,
        redelivered: 0,
        max_desired: 0,
        max_running: 0,
        log: MinuteLog::default(),
        rows: Vec::new(),
        done: false,
    };
    sim.run();
    sim.report()
}

impl Sim<'_> {
    fn at(&mut self, at_ms: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at_ms,
            prio: ev.priority(),
            seq: self.seq,
            ev,
        });
    }

    fn backlog(&self) -> u64 {
        self.visible.len() as u64 + self.in_flight
    }

    fn run(&mut self) {
        if let Some(&first) = self.arrivals_ms.first() {
            self.at(first, Ev::Arrival(0));
        }
        let period_ms = self.cfg.scaling.period_s.max(1) * 1000;
        self.at(period_ms, Ev::PeriodClose);
        self.at(0, Ev::Snapshot(0));
        self.reconcile();
        while let Some(s) = self.heap.pop() {
            self.now_ms = s.at_ms;
            match s.ev {
                Ev::Arrival(i) => self.arrival(i),
                Ev::Deliver => self.deliver(),
                Ev::TaskStarted(t) => self.task_started(t),
                Ev::PollTimeout(t, g) => self.poll_timeout(t, g),
                Ev::JobDone(t, g) => self.job_done(t, g),
                Ev::Return(r) => self.messages_return(r),
                Ev::PeriodClose => {
                    let value = self.period_max;
                    let had_running = self.period_had_running || self.running > 0;
                    self.period_max = self.backlog();
                    self.period_had_running = self.running > 0;
                    let lag = self.cfg.metric_lag_s * 1000;
                    self.at(self.now_ms + lag, Ev::AlarmEval(value, had_running));
                    self.at(self.now_ms + period_ms, Ev::PeriodClose);
                }
                Ev::AlarmEval(value, had_running) => self.alarm_eval(value, had_running),
                Ev::Snapshot(k) => {
                    self.snapshot(k);
                    if self.done {
                        break;
                    }
                    self.at((k + 1) * 60_000, Ev::Snapshot(k + 1));
                }
            }
        }
    }

    fn arrival(&mut self, i: u32) {
        let idx = i as usize;
        self.visible.push_back(i);
        self.period_max = self.period_max.max(self.backlog());
        self.log.arrivals += 1;
        if self.running == 0 && !self.cold_open {
            self.cold_open = true;
            self.episode_first[idx] = true;
            self.wakeups += 1;
        }
        if self.cfg.fast_wake && self.desired == 0 && self.cfg.scaling.max_capacity > 0 {
            self.desired = 1;
            self.log.fast_wake = true;
            self.reconcile();
        }
        self.schedule_deliver();
        if let Some(&next) = self.arrivals_ms.get(idx + 1) {
            self.at(next, Ev::Arrival(i + 1));
        }
    }

    fn schedule_deliver(&mut self) {
        if !self.deliver_scheduled && !self.waiters.is_empty() {
            self.deliver_scheduled = true;
            self.at(self.now_ms, Ev::Deliver);
        }
    }

    /// Long polls waiting on an empty queue return as soon as messages are there.
    fn deliver(&mut self) {
        self.deliver_scheduled = false;
        while !self.visible.is_empty() {
            let Some((t, generation)) = self.waiters.pop_front() else {
                break;
            };
            let task = &self.tasks[t as usize];
            if task.state == TaskState::Polling && task.generation == generation {
                self.take_batch(t);
            }
        }
    }

    fn task_started(&mut self, t: u32) {
        if self.tasks[t as usize].state != TaskState::Pending {
            return;
        }
        self.running += 1;
        self.period_had_running = true;
        self.max_running = self.max_running.max(self.running);
        self.cold_open = false;
        self.log.started += 1;
        self.receive(t);
    }

    fn receive(&mut self, t: u32) {
        if !self.visible.is_empty() {
            self.take_batch(t);
            return;
        }
        let wait = to_ms(self.cfg.wait_time_s);
        let task = &mut self.tasks[t as usize];
        task.state = TaskState::Polling;
        task.generation += 1;
        let generation = task.generation;
        self.waiters.push_back((t, generation));
        self.at(self.now_ms + wait, Ev::PollTimeout(t, generation));
    }

    /// A receive that got messages: the worker protects itself, then works the batch.
    fn take_batch(&mut self, t: u32) {
        let n = (self.cfg.max_messages.max(1) as usize).min(self.visible.len());
        let task = &mut self.tasks[t as usize];
        task.state = TaskState::Busy;
        task.generation += 1;
        task.empty_receives = 0;
        task.batch.extend(self.visible.drain(..n));
        self.in_flight += n as u64;
        self.start_job(t);
    }

    fn start_job(&mut self, t: u32) {
        let (lo, hi) = self.cfg.processing_s;
        let d = to_ms(self.rng.uniform(lo, hi));
        let generation = self.tasks[t as usize].generation;
        self.at(self.now_ms + d, Ev::JobDone(t, generation));
    }

    fn job_done(&mut self, t: u32, generation: u32) {
        let task = &mut self.tasks[t as usize];
        if task.state != TaskState::Busy || task.generation != generation {
            return;
        }
        let Some(msg) = task.batch.pop_front() else {
            return;
        };
        let more = !task.batch.is_empty();
        self.in_flight -= 1;
        self.log.processed += 1;
        let latency = (self.now_ms - self.arrivals_ms[msg as usize]) as f64 / MS;
        self.latencies.push(latency);
        if msg == 0 {
            self.first_message_latency = Some(latency);
        }
        if self.episode_first[msg as usize] {
            self.first_job_latencies.push(latency);
        }
        if more {
            self.start_job(t);
            return;
        }
        // Batch done: the worker drops its protection; ECS may now stop it on scale-in.
        self.tasks[t as usize].state = TaskState::Polling;
        if self.live > self.desired {
            self.stop(t);
            self.log.stopped += 1;
            return;
        }
        self.receive(t);
    }

    fn poll_timeout(&mut self, t: u32, generation: u32) {
        let task = &mut self.tasks[t as usize];
        if task.state != TaskState::Polling || task.generation != generation {
            return;
        }
        task.empty_receives += 1;
        if self.cfg.idle_exit && task.empty_receives >= self.cfg.max_empty_receives {
            // The worker exits; the service's desired count is unchanged, so the ECS
            // scheduler starts a replacement.
            self.stop(t);
            self.log.exited += 1;
            let before = self.launches;
            self.reconcile();
            let replaced = self.launches - before;
            self.relaunches += replaced;
            self.log.relaunched += replaced as u32;
            return;
        }
        self.receive(t);
    }

    fn messages_return(&mut self, r: u32) {
        let msgs = std::mem::take(&mut self.returning[r as usize]);
        self.in_flight -= msgs.len() as u64;
        self.visible.extend(msgs);
        self.schedule_deliver();
    }

    fn stop(&mut self, t: u32) {
        let now = self.now_ms;
        let task = &mut self.tasks[t as usize];
        let was = task.state;
        task.state = TaskState::Stopped;
        task.stopped_ms = Some(now);
        task.generation += 1;
        let held: Vec<u32> = task.batch.drain(..).collect();
        self.live -= 1;
        if was != TaskState::Pending {
            self.running -= 1;
        }
        if !held.is_empty() {
            self.redelivered += held.len() as u64;
            // Messages a stopped task held come back when their visibility timeout ends.
            let r = self.returning.len() as u32;
            self.returning.push(held);
            let vt = to_ms(self.cfg.visibility_timeout_s);
            self.at(now + vt, Ev::Return(r));
        }
    }

    /// The ECS service scheduler: meet `desiredCount`.
    fn reconcile(&mut self) {
        while self.live < self.desired {
            let (lo, hi) = self.cfg.start_latency_s;
            let start = to_ms(self.rng.uniform(lo, hi));
            let id = self.tasks.len() as u32;
            self.tasks.push(Task {
                launched_ms: self.now_ms,
                stopped_ms: None,
                state: TaskState::Pending,
                empty_receives: 0,
                batch: VecDeque::new(),
                generation: 0,
            });
            self.live += 1;
            self.launches += 1;
            self.at(self.now_ms + start, Ev::TaskStarted(id));
        }
        if self.live > self.desired {
            // Pending tasks first, then running ones, newest first. ECS cannot tell an idle
            // task from a busy one: only scale-in protection keeps a busy task alive.
            let mut order: Vec<(u8, u32)> = Vec::new();
            for (i, task) in self.tasks.iter().enumerate().rev() {
                let rank = match task.state {
                    TaskState::Pending => 0,
                    TaskState::Polling => 1,
                    TaskState::Busy if !self.cfg.scale_in_protection => 1,
                    _ => continue,
                };
                order.push((rank, i as u32));
            }
            order.sort_by_key(|&(rank, _)| rank);
            for (_, t) in order {
                if self.live <= self.desired {
                    break;
                }
                self.stop(t);
                self.log.stopped += 1;
            }
        }
    }

    fn alarm_eval(&mut self, value: u64, had_running: bool) {
        let now_s = self.now_ms / 1000;
        match self
            .autoscaler
            .evaluate_period(now_s, value as f64, had_running, self.desired)
        {
            Decision::Scaled { from, to, .. } => {
                let verb = if to > from { "Scale out" } else { "Scale in" };
                self.log.scaling.push(format!("{verb} {from}→{to}"));
                self.desired = to;
                self.max_desired = self.max_desired.max(to);
                self.reconcile();
            }
            Decision::Blocked { wanted, reason, .. } => {
                let why = match reason {
                    Blocked::ScaleOutCooldown => "scale-out cooldown",
                    Blocked::ScaleInCooldown => "scale-in cooldown",
                    Blocked::ScaleInDuringScaleOutCooldown => "scale-out cooldown",
                };
                self.log.scaling.push(format!("→{wanted} held ({why})"));
            }
            Decision::Quiet | Decision::Unchanged { .. } => {}
        }
    }

    fn snapshot(&mut self, k: u64) {
        let t_s = k * 60;
        let log = std::mem::take(&mut self.log);
        self.max_desired = self.max_desired.max(self.desired);
        self.rows.push(Row {
            t_s,
            time: clock(t_s),
            queue: self.backlog(),
            visible: self.visible.len() as u64,
            in_flight: self.in_flight,
            desired: self.desired,
            running: self.running,
            pending: self.live - self.running,
            action: log.render(),
        });
        let arrivals_done = self.latencies.len() == self.arrivals_ms.len();
        let quiet = self.backlog() == 0 && self.desired == 0 && self.live == 0;
        let last_arrival = self.arrivals_ms.last().copied().unwrap_or(0);
        let now = self.now_ms;
        if (arrivals_done && quiet && now as f64 >= self.cfg.min_duration_s * MS)
            || now as f64 >= last_arrival as f64 + self.cfg.max_tail_s * MS
                && now as f64 >= self.cfg.min_duration_s * MS
        {
            self.done = true;
        }
    }

    fn report(&self) -> Report {
        let end = self.now_ms;
        let mut task_seconds_billed = 0.0;
        let mut cost = 0.0;
        for task in &self.tasks {
            let lived = (task.stopped_ms.unwrap_or(end) - task.launched_ms) as f64 / MS;
            task_seconds_billed += self.cfg.price.billed_seconds(lived);
            cost += self.cfg.price.task_cost(lived);
        }
        let jobs = self.latencies.len() as u64;
        let pct = |v: &[f64], p: f64| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            // Nearest rank.
            let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
            Some(s[rank - 1])
        };
        let summary = Summary {
            events: self.arrivals_ms.len() as u64,
            jobs_done: jobs,
            duration_s: end as f64 / MS,
            task_minutes: task_seconds_billed / 60.0,
            cost_usd: cost,
            cost_per_finding_usd: (jobs > 0).then(|| cost / jobs as f64),
            launches: self.launches,
            relaunches: self.relaunches,
            first_message_latency_s: self.first_message_latency,
            latency_p50_s: pct(&self.latencies, 0.50),
            latency_p95_s: pct(&self.latencies, 0.95),
            first_job_latency_p50_s: pct(&self.first_job_latencies, 0.50),
            first_job_latency_p95_s: pct(&self.first_job_latencies, 0.95),
            wakeups: self.wakeups,
            redelivered: self.redelivered,
            max_desired: self.max_desired,
            max_running: self.max_running,
            back_to_zero: self.backlog() == 0 && self.desired == 0 && self.live == 0,
        };
        Report {
            config: self.cfg.clone(),
            summary,
            timeline: self.rows.clone(),
        }
    }
}
