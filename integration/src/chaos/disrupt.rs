//! The disruption loop: every quarter second it reads the workers' logs for progress and
//! carries out what the plan says is due — a kill, a freeze, the poison message — and sends
//! each late duplicate once its job's marker says `done`.

use super::evidence::{WorkerOutput, marker_state};
use super::invoke::{Invoker, Shared, lock};
use super::plan::{ChaosOptions, Disruption, Plan, Rng, Signal};
use super::procs::{ControlPlane, Frozen, signal, stderr_of, worker_pids};
use super::report::Happened;
use super::target::Target;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a due kill waits for a worker that holds jobs before taking any worker.
const KILL_PATIENCE: Duration = Duration::from_secs(5);
/// How often the markers of jobs awaiting a late duplicate are read.
const MARKER_POLL: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(250);

/// What the loop did.
#[derive(Debug, Default)]
pub(crate) struct Disrupted {
    pub output: WorkerOutput,
    pub timeline: Vec<Happened>,
    pub sigkills: usize,
    pub sigterms: usize,
    pub pauses: Vec<Duration>,
    pub poison_sent: Option<String>,
    pub late_sent: usize,
    /// Every worker pid seen, to check that none outlives the run.
    pub seen_workers: BTreeSet<u32>,
    /// What never came due (the run ended first).
    pub not_done: Vec<String>,
}

/// Everything the loop works with that the run set up.
pub(crate) struct Stage<'a> {
    pub target: &'a Target,
    pub opts: &'a ChaosOptions,
    pub say: &'a (dyn Fn(&str) + Sync),
    pub started: Instant,
    pub invoker: Invoker,
    /// Each event's file, by index.
    pub files: Vec<PathBuf>,
    pub shared: &'a Shared,
    /// `czero local --task-logs`.
    pub task_dir: PathBuf,
    pub emulator: u32,
    pub control_pid: u32,
}

pub(crate) struct Disruptor<'a> {
    stage: Stage<'a>,
    rng: Rng,
    pending: Vec<Disruption>,
    late: Vec<usize>,
    signalled: BTreeSet<u32>,
    kill_due: Option<Instant>,
    last_marker_check: Instant,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    out: Disrupted,
}

impl<'a> Disruptor<'a> {
    /// `rng` goes on from where the plan left it (it picks the workers to kill).
    pub fn new(stage: Stage<'a>, plan: &Plan, rng: Rng) -> Self {
        Disruptor {
            s3: stage.target.s3(),
            sqs: stage.target.sqs(),
            stage,
            rng,
            pending: plan.disruptions.clone(),
            late: plan.late_duplicates.clone(),
            signalled: BTreeSet::new(),
            kill_due: None,
            last_marker_check: Instant::now(),
            out: Disrupted::default(),
        }
    }

    /// Runs until everything planned happened, queueing failed or the control plane exited.
    pub async fn run(mut self, control: &mut ControlPlane) -> Result<Disrupted> {
        loop {
            if self.stage.shared.failed.load(Ordering::SeqCst)
                || !matches!(control.child.try_wait(), Ok(None))
            {
                break;
            }
            self.out.output.poll(&self.stage.task_dir);
            let live = worker_pids(self.stage.control_pid);
            self.out.seen_workers.extend(live.iter().copied());
            let done = self.out.output.done.len() as f64 / self.stage.opts.jobs.max(1) as f64;
            if let Some(next) = self.pending.first().cloned()
                && done >= next.at()
                && self.disrupt(&next, &live).await?
            {
                self.pending.remove(0);
            }
            self.late_duplicates().await?;
            if self.pending.is_empty() && self.late.is_empty() {
                break;
            }
            tokio::time::sleep(TICK).await;
        }
        self.out.not_done = self.pending.iter().map(Disruption::describe).collect();
        self.out.not_done.extend(
            self.late
                .iter()
                .map(|i| format!("deliver event {i} again after its job finished")),
        );
        Ok(self.out)
    }

    fn note(&mut self, what: String) {
        let jobs_done = self.out.output.done.len();
        (self.stage.say)(&format!(
            "[{:>6.1} s, {jobs_done}/{} done] {what}",
            self.stage.started.elapsed().as_secs_f64(),
            self.stage.opts.jobs
        ));
        self.out.timeline.push(Happened {
            at: self.stage.started.elapsed(),
            jobs_done,
            what,
        });
    }

    /// Carries out a due disruption; whether it happened (a kill may have to wait).
    async fn disrupt(&mut self, d: &Disruption, live: &[u32]) -> Result<bool> {
        match d {
            Disruption::Kill { signal, .. } => Ok(self.kill(*signal, live)),
            Disruption::Pause { length, .. } => {
                self.freeze(*length).await?;
                Ok(true)
            }
            Disruption::Poison { .. } => {
                self.poison().await?;
                Ok(true)
            }
        }
    }

    /// Signals a worker holding jobs, so that the kill interrupts work; when none has held
    /// any for a few seconds (the queue may be drained for a moment), any worker.
    fn kill(&mut self, sig: Signal, live: &[u32]) -> bool {
        let due = *self.kill_due.get_or_insert_with(Instant::now);
        let candidates: Vec<(u32, u64)> = live
            .iter()
            .copied()
            .filter(|p| !self.signalled.contains(p))
            .map(|p| {
                let held = stderr_of(p).map_or(0, |log| self.out.output.in_hand(&log));
                (p, held)
            })
            .collect();
        let busy: Vec<(u32, u64)> = candidates.iter().copied().filter(|(_, n)| *n > 0).collect();
        let pool = if !busy.is_empty() || due.elapsed() < KILL_PATIENCE {
            busy
        } else {
            candidates
        };
        if pool.is_empty() {
            return false; // wait for a busy worker, or for one to be (re)launched
        }
        let (pid, held) = pool[(self.rng.next_u64() % pool.len() as u64) as usize];
        self.kill_due = None;
        if signal(pid, sig.arg()) {
            self.signalled.insert(pid);
            match sig {
                Signal::Kill => self.out.sigkills += 1,
                Signal::Term => self.out.sigterms += 1,
            }
            self.note(format!(
                "{} worker pid {pid} holding {held} job(s) (of {} running)",
                sig.name(),
                live.len()
            ));
        }
        true
    }

    /// SIGSTOP the emulator, SIGCONT after `length` (also if anything fails meanwhile).
    async fn freeze(&mut self, length: Duration) -> Result<()> {
        let pid = self.stage.emulator;
        self.note(format!(
            "SIGSTOP the emulator (pid {pid}) for {} s",
            length.as_secs()
        ));
        let t = Instant::now();
        self.stage.shared.frozen.store(true, Ordering::SeqCst);
        let frozen = match Frozen::new(pid) {
            Ok(guard) => {
                tokio::time::sleep(length).await;
                drop(guard); // SIGCONT
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.stage.shared.frozen.store(false, Ordering::SeqCst);
        frozen?;
        self.out.pauses.push(t.elapsed());
        self.note("SIGCONT the emulator".into());
        Ok(())
    }

    /// A body that is not a job, straight onto the job queue.
    async fn poison(&mut self) -> Result<()> {
        let body = format!(
            "chaos run {:#x}: this message is not a job",
            self.stage.opts.seed
        );
        self.sqs
            .send_message()
            .queue_url(&self.stage.target.queue_url)
            .message_body(&body)
            .send()
            .await
            .context("queueing the poison message")?;
        self.note(format!("poison message queued: {body:?}"));
        self.out.poison_sent = Some(body);
        Ok(())
    }

    /// A late duplicate goes out once its job's marker says done, so it surely reaches a
    /// worker after the original finished. The marker decides, not the "job done" line: a
    /// worker killed between the two leaves the job done without the line.
    async fn late_duplicates(&mut self) -> Result<()> {
        let poll = self.last_marker_check.elapsed() >= MARKER_POLL;
        if poll {
            self.last_marker_check = Instant::now();
        }
        let ready: Vec<(usize, String)> = {
            let jobs = lock(&self.stage.shared.jobs);
            self.late
                .iter()
                .filter_map(|&i| {
                    let job = jobs.get(i)?.clone()?;
                    (poll || self.out.output.done.contains_key(&job)).then_some((i, job))
                })
                .collect()
        };
        for (i, job) in ready {
            let state = marker_state(&self.s3, &self.stage.target.output_bucket, &job).await?;
            if state.as_deref() != Some("done") {
                continue;
            }
            self.stage
                .invoker
                .again(i, &self.stage.files[i], self.stage.shared)
                .await?;
            self.late.retain(|&x| x != i);
            self.out.late_sent += 1;
            self.note(format!(
                "event {i} delivered again after job {job} finished"
            ));
        }
        Ok(())
    }
}
