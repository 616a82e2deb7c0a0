//! The chaos run's report: its numbers, the checks that decide pass or fail
//! ([`Report::problems`]), and the summary it prints.

use super::bucket_name;
use super::evidence::{
    BUSY, DEAD_LETTER_KIND, DEAD_LETTER_REASON, DEAD_LETTERED, DUPLICATE, DeadLetter, FAILED,
    JOB_DONE, MARKER_NOT_UPDATED, NOT_A_JOB, RELEASED, Remediation, WorkerOutput,
};
use super::plan::{ChaosOptions, Plan};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// A disruption that happened.
#[derive(Debug, Clone)]
pub struct Happened {
    pub at: Duration,
    pub jobs_done: usize,
    pub what: String,
}

/// Everything the run saw, and the verdict.
#[derive(Debug)]
pub struct Report {
    pub opts: ChaosOptions,
    pub stack: String,
    pub plan: Plan,
    pub work_dir: PathBuf,
    pub elapsed: Duration,
    /// Job ids of the queued events, in event order.
    pub jobs: Vec<String>,
    pub timeline: Vec<Happened>,
    pub sigkills: usize,
    pub sigterms: usize,
    pub pauses: Vec<Duration>,
    pub poison_sent: Option<String>,
    pub early_duplicates_sent: usize,
    /// `czero invoke` runs that failed and were retried (as EventBridge retries).
    pub invocations_retried: usize,
    /// Sent after the harness read the job's marker as `done`.
    pub late_duplicates_sent: usize,
    /// `(kind, injected)` per fault rule, and the requests the proxy saw.
    pub faults: Vec<(String, u64)>,
    pub proxy_requests: u64,
    pub workers: WorkerOutput,
    /// `tasks started: N, relaunched: M` from the control plane.
    pub task_starts: Option<u64>,
    pub relaunches: Option<u64>,
    pub control_exit: String,
    pub control_idle: bool,
    pub service_end: (i32, i32),
    pub queue_left: (u64, u64),
    pub dlq: Vec<DeadLetter>,
    pub outputs: BTreeSet<String>,
    pub markers: BTreeMap<String, String>,
    pub remediation: BTreeMap<String, Remediation>,
    pub workers_left: Vec<u32>,
    /// Planned disruptions that never came due (the run stopped first).
    pub not_done: Vec<String>,
}

impl Report {
    /// Jobs whose bucket is remediated, whose output is written and whose marker says done.
    pub fn completed(&self) -> BTreeSet<&String> {
        self.jobs
            .iter()
            .filter(|j| self.complete(j))
            .collect::<BTreeSet<_>>()
    }

    fn complete(&self, job: &str) -> bool {
        self.outputs.contains(job)
            && self.markers.get(job).is_some_and(|s| s == "done")
            && self.bucket_of(job).is_some_and(|r| r.complete())
    }

    fn bucket_of(&self, job: &str) -> Option<&Remediation> {
        let i = self.jobs.iter().position(|j| j == job)?;
        self.remediation.get(&bucket_name(self.opts.seed, i))
    }

    /// Jobs neither completed nor kept in the DLQ: gone without a trace.
    pub fn lost(&self) -> Vec<&String> {
        let dead: BTreeSet<&str> = self
            .dlq
            .iter()
            .filter_map(|d| d.job_id.as_deref())
            .collect();
        self.jobs
            .iter()
            .filter(|j| !self.complete(j) && !dead.contains(j.as_str()))
            .collect()
    }

    pub fn duplicates_suppressed(&self) -> u64 {
        self.workers.emf("DuplicatesSuppressed")
    }

    fn faults_total(&self) -> u64 {
        self.faults.iter().map(|(_, n)| n).sum()
    }

    /// Every reason the run fails; empty when it passes.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let lost = self.lost();
        if !lost.is_empty() {
            p.push(format!("{} job(s) lost: {}", lost.len(), sample(&lost)));
        }
        let no_output: Vec<_> = self
            .jobs
            .iter()
            .filter(|j| !self.outputs.contains(*j))
            .collect();
        if !no_output.is_empty() {
            p.push(format!(
                "{} job(s) without metadata.json under output/<job id>/: {}",
                no_output.len(),
                sample(&no_output)
            ));
        }
        let not_done: Vec<String> = self
            .jobs
            .iter()
            .filter(|j| self.markers.get(*j).is_none_or(|s| s != "done"))
            .map(|j| {
                format!(
                    "{j} ({})",
                    self.markers.get(j).map_or("no marker", String::as_str)
                )
            })
            .collect();
        if !not_done.is_empty() {
            p.push(format!(
                "{} job(s) whose ledger marker is not `done`: {}",
                not_done.len(),
                sample(&not_done)
            ));
        }
        let unremediated: Vec<String> = (0..self.jobs.len())
            .map(|i| bucket_name(self.opts.seed, i))
            .filter(|b| self.remediation.get(b).is_none_or(|r| !r.complete()))
            .map(|b| {
                format!(
                    "{b} {:?}",
                    self.remediation.get(&b).copied().unwrap_or_default()
                )
            })
            .collect();
        if !unremediated.is_empty() {
            p.push(format!(
                "{} bucket(s) not fully remediated: {}",
                unremediated.len(),
                sample(&unremediated)
            ));
        }
        // Each job's actions ran to completion once: no job id has two `job done` lines
        // (two workers that both claimed it and both finished).
        let twice: Vec<String> = self
            .workers
            .done
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(j, n)| format!("{j} ×{n}"))
            .collect();
        if !twice.is_empty() {
            p.push(format!(
                "{} job(s) completed more than once: {}",
                twice.len(),
                sample(&twice)
            ));
        }
        // The exact duplicate checks. A late duplicate is queued only after the harness has
        // read its job's marker as `done`, so it necessarily reaches a worker after the
        // original finished: its claim finds `done` and the worker must count it in
        // `DuplicatesSuppressed`. Hence suppressed >= late duplicates sent.
        //
        // Stronger, and also exact once the queue is empty and the DLQ holds only the
        // poison: of a job's 1 + n copies, one message is deleted by the worker that completes
        // the job (a job completes once: the ledger lets a single claim end `done`), and every
        // other copy can leave the queue only as a suppressed duplicate (counted before its
        // delete, so a copy whose delete fails is counted again, never less). So every extra
        // copy, early or late, is counted at least once: suppressed >= early + late sent.
        let suppressed = self.duplicates_suppressed();
        let late = self.late_duplicates_sent as u64;
        let all = late + self.early_duplicates_sent as u64;
        if suppressed < late {
            p.push(format!(
                "duplicates suppressed ({suppressed}) < duplicates that arrived after their job finished ({late})"
            ));
        } else if suppressed < all {
            p.push(format!(
                "duplicates suppressed ({suppressed}) < duplicates injected ({all}): a copy left the queue without being suppressed"
            ));
        }
        if self.late_duplicates_sent < self.plan.late_duplicates.len() {
            p.push(format!(
                "only {} of {} late duplicates were sent",
                self.late_duplicates_sent,
                self.plan.late_duplicates.len()
            ));
        }
        match &self.poison_sent {
            None => p.push("the poison message was never sent".into()),
            Some(body) => {
                let found = self.dlq.iter().find(|d| &d.body == body);
                match found {
                    None => p.push("the poison message is not in the DLQ".into()),
                    Some(d) if d.reason.as_deref().is_none_or(str::is_empty) => p.push(
                        format!("the poison message is in the DLQ without its {DEAD_LETTER_REASON} attribute"),
                    ),
                    Some(d) if d.kind.as_deref() != Some(NOT_A_JOB) => p.push(format!(
                        "the poison message's {DEAD_LETTER_KIND} is {:?}, expected {NOT_A_JOB}",
                        d.kind
                    )),
                    Some(_) => {}
                }
            }
        }
        for d in self
            .dlq
            .iter()
            .filter(|d| Some(&d.body) != self.poison_sent.as_ref())
        {
            p.push(format!(
                "unexpected DLQ message {} (job {}): {}",
                d.message_id,
                d.job_id.as_deref().unwrap_or("?"),
                d.explanation
            ));
        }
        if self.queue_left != (0, 0) {
            p.push(format!(
                "the job queue is not empty: {} visible, {} in flight",
                self.queue_left.0, self.queue_left.1
            ));
        }
        if self.service_end != (0, 0) {
            p.push(format!(
                "the service ended at desired {} / running {}, not 0 / 0",
                self.service_end.0, self.service_end.1
            ));
        }
        if !self.control_idle {
            p.push(format!(
                "the control plane did not stop idle (service at 0, queue empty): {}",
                self.control_exit
            ));
        }
        if !self.workers_left.is_empty() {
            p.push(format!(
                "worker processes still running: {:?}",
                self.workers_left
            ));
        }
        if !self.not_done.is_empty() {
            p.push(format!(
                "planned disruptions that never happened: {}",
                self.not_done.join("; ")
            ));
        }
        if self.sigkills + self.sigterms < self.opts.kills {
            p.push(format!(
                "only {} of {} planned kills happened",
                self.sigkills + self.sigterms,
                self.opts.kills
            ));
        }
        p
    }
}

fn sample<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(5).map(ToString::to_string).collect();
    let more = items.len().saturating_sub(5);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.opts;
        let w = &self.workers;
        writeln!(f, "chaos run summary")?;
        writeln!(
            f,
            "  seed                  {:#x}, {} jobs, {} kills, {} s freeze, {} + {} duplicates",
            o.seed,
            o.jobs,
            o.kills,
            o.pause.as_secs(),
            o.early_duplicates,
            o.late_duplicates
        )?;
        writeln!(
            f,
            "  stack                 {}; at most {} workers; time {}x",
            self.stack, o.workers, o.time_scale
        )?;
        writeln!(
            f,
            "  jobs                  {} queued, {} completed (remediated, output written, marker done)",
            self.jobs.len(),
            self.completed().len()
        )?;
        writeln!(
            f,
            "  kills                 {} SIGKILL, {} SIGTERM; control plane started {} tasks ({} relaunches)",
            self.sigkills,
            self.sigterms,
            self.task_starts.map_or("?".into(), |n| n.to_string()),
            self.relaunches.map_or("?".into(), |n| n.to_string())
        )?;
        let paused: Vec<String> = self
            .pauses
            .iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect();
        writeln!(
            f,
            "  emulator pauses       {} ({})",
            self.pauses.len(),
            paused.join(", ")
        )?;
        writeln!(
            f,
            "  faults injected       {} of {} worker requests",
            self.faults_total(),
            self.proxy_requests
        )?;
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for (k, n) in &self.faults {
            *kinds.entry(k).or_default() += n;
        }
        for (k, n) in kinds {
            writeln!(f, "    {k:<46} {n:>5}")?;
        }
        writeln!(
            f,
            "  duplicates injected   {} at once, {} after the job finished ({} invocations retried)",
            self.early_duplicates_sent, self.late_duplicates_sent, self.invocations_retried
        )?;
        writeln!(
            f,
            "  duplicates suppressed {} (EMF DuplicatesSuppressed; {} log lines)",
            self.duplicates_suppressed(),
            w.count(DUPLICATE)
        )?;
        writeln!(
            f,
            "  worker outcomes       {} job done, {} failed (left for redrive), {} copies hidden while running elsewhere, {} released at SIGTERM, {} dead-lettered, {} marker updates failed, {} unparsed lines",
            w.count(JOB_DONE),
            w.count(FAILED),
            w.count(BUSY),
            w.count(RELEASED),
            w.count(DEAD_LETTERED),
            w.count(MARKER_NOT_UPDATED),
            w.unparsed
        )?;
        let poison = self
            .poison_sent
            .as_ref()
            .and_then(|b| self.dlq.iter().find(|d| &d.body == b));
        writeln!(
            f,
            "  poison message        {}",
            match poison {
                Some(d) => format!(
                    "in the DLQ, kind {}, reason {:?}",
                    d.kind.as_deref().unwrap_or("?"),
                    d.reason.as_deref().unwrap_or("")
                ),
                None => "NOT in the DLQ".into(),
            }
        )?;
        writeln!(f, "  DLQ                   {} message(s)", self.dlq.len())?;
        for d in self
            .dlq
            .iter()
            .filter(|d| Some(&d.body) != self.poison_sent.as_ref())
        {
            writeln!(f, "    {}: {}", d.message_id, d.explanation)?;
        }
        writeln!(
            f,
            "  queue left            {} visible, {} in flight",
            self.queue_left.0, self.queue_left.1
        )?;
        writeln!(
            f,
            "  service at end        desired {}, running {} ({})",
            self.service_end.0, self.service_end.1, self.control_exit
        )?;
        writeln!(f, "  lost                  {}", self.lost().len())?;
        writeln!(
            f,
            "  elapsed               {:.0} s",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "  disruptions:")?;
        for h in &self.timeline {
            writeln!(
                f,
                "    {:>6.1} s  {:>4}/{} done  {}",
                h.at.as_secs_f64(),
                h.jobs_done,
                self.jobs.len().max(o.jobs),
                h.what
            )?;
        }
        let problems = self.problems();
        if problems.is_empty() {
            writeln!(f, "  RESULT                PASS")
        } else {
            writeln!(f, "  RESULT                FAIL")?;
            for p in problems {
                writeln!(f, "    - {p}")?;
            }
            Ok(())
        }
    }
}
