//! The experiments behind `czero simulate --tuning` and `--compare-idle-exit`, as data and
//! as Markdown tables.

use crate::aws::ScalingParams;
use crate::scenario::Scenario;
use crate::sim::{SimConfig, Summary, simulate};
use crate::trace::Workload;
use serde::{Deserialize, Serialize};

/// One row of the spec's "Tuning Guidelines" (or ours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningRow {
    pub name: String,
    pub params: ScalingParams,
    pub fast_wake: bool,
    /// See [`SimConfig::scale_in_guard`].
    pub scale_in_guard: bool,
    pub idle_exit: bool,
}

/// The spec's `scale_in_cooldown` read as the time the backlog must stay 0 before the
/// service goes to 0 (KEDA's `cooldownPeriod`): that many 60 s datapoints on the scale-in
/// alarm, and the same value as the scale-in policy's cooldown.
fn spec_row(
    name: &str,
    target_value: f64,
    max_capacity: u32,
    scale_in_cooldown_s: u64,
) -> TuningRow {
    let base = ScalingParams::default();
    TuningRow {
        name: name.to_owned(),
        params: ScalingParams {
            target_value,
            max_capacity,
            scale_in_cooldown_s,
            scale_in_evaluation_periods: (scale_in_cooldown_s / base.period_s).max(1) as u32,
            ..base
        },
        fast_wake: true,
        scale_in_guard: true,
        idle_exit: false,
    }
}

/// The four rows of the spec's tuning table, run with our settings (fast wake with the
/// scale-in guard, no idle exit inside the service) so that only the scaling parameters
/// differ.
pub fn spec_tuning_rows() -> Vec<TuningRow> {
    vec![
        spec_row("Low volume", 5.0, 3, 180),
        spec_row("Medium volume", 5.0, 10, 300),
        spec_row("High volume", 10.0, 20, 300),
        spec_row("Latency-sensitive", 2.0, 15, 600),
    ]
}

/// Our recommended deployment (see docs/tuning.md for the evidence): the spec's medium
/// row with a 2-minute scale-in (two empty datapoints, 120 s cooldown), fast wake with the
/// scale-in guard, and no idle exit inside the service.
pub fn recommended() -> TuningRow {
    TuningRow {
        name: "Recommended".to_owned(),
        ..spec_row("", 5.0, 10, 120)
    }
}

/// The spec's medium row as the spec deploys it: alarms alone wake the service and the
/// worker exits when idle.
pub fn spec_as_designed() -> TuningRow {
    TuningRow {
        name: "Medium, as the spec runs it".to_owned(),
        fast_wake: false,
        scale_in_guard: false,
        idle_exit: true,
        ..spec_row("", 5.0, 10, 300)
    }
}

/// One row × workload result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningResult {
    pub row: TuningRow,
    pub workload: String,
    pub summary: Summary,
}

/// The config a row runs with.
pub fn row_config(row: &TuningRow, seed: u64) -> SimConfig {
    SimConfig {
        scaling: row.params,
        seed,
        fast_wake: row.fast_wake,
        scale_in_guard: row.scale_in_guard,
        idle_exit: row.idle_exit,
        ..SimConfig::default()
    }
}

/// Every tuning row (spec rows, the spec as designed, ours) on every standard workload.
pub fn tuning(seed: u64) -> Vec<TuningResult> {
    let mut rows = spec_tuning_rows();
    rows.push(spec_as_designed());
    rows.push(recommended());
    let mut out = Vec::new();
    for workload in Workload::ALL {
        let arrivals = workload.arrivals(seed);
        for row in &rows {
            let report = simulate(&row_config(row, seed), &arrivals);
            out.push(TuningResult {
                row: row.clone(),
                workload: workload.name().to_owned(),
                summary: report.summary,
            });
        }
    }
    out
}

/// One case of the idle-exit comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleExitResult {
    pub case: String,
    pub idle_exit: bool,
    pub fast_wake: bool,
    pub summary: Summary,
}

/// Idle exit on and off, with alarms alone and with fast wake (plus the scale-in guard),
/// on the spec's single and burst scenarios and the standard workloads, at the spec's
/// default scaling parameters.
pub fn compare_idle_exit(seed: u64) -> Vec<IdleExitResult> {
    let mut cases: Vec<(String, Vec<f64>)> = Vec::new();
    for s in [Scenario::Single, Scenario::Burst] {
        cases.push((s.name().to_owned(), s.arrivals()));
    }
    for w in Workload::ALL {
        cases.push((w.name().to_owned(), w.arrivals(seed)));
    }
    let mut out = Vec::new();
    for (case, arrivals) in &cases {
        for fast_wake in [false, true] {
            for idle_exit in [true, false] {
                let cfg = SimConfig {
                    seed,
                    idle_exit,
                    fast_wake,
                    scale_in_guard: fast_wake,
                    ..SimConfig::default()
                };
                let report = simulate(&cfg, arrivals);
                out.push(IdleExitResult {
                    case: case.clone(),
                    idle_exit,
                    fast_wake,
                    summary: report.summary,
                });
            }
        }
    }
    out
}

fn secs(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.0} s"))
}

fn usd(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |v| format!("${v:.6}"))
}

/// The tuning results as a Markdown table.
pub fn tuning_table(results: &[TuningResult]) -> String {
    let mut out = String::from(
        "| Workload | Row | target | max | scale-in | fast wake + guard | idle exit | events | first-job p50 | first-job p95 | job p95 | cost/finding | cost/day | task-min | relaunches |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let s = &r.summary;
        let p = &r.row.params;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} s ({} pts) | {} | {} | {} | {} | {} | {} | {} | ${:.4} | {:.1} | {} |\n",
            r.workload,
            r.row.name,
            p.target_value,
            p.max_capacity,
            p.scale_in_cooldown_s,
            p.scale_in_evaluation_periods,
            on_off(r.row.fast_wake),
            on_off(r.row.idle_exit),
            s.events,
            secs(s.first_job_latency_p50_s),
            secs(s.first_job_latency_p95_s),
            secs(s.latency_p95_s),
            usd(s.cost_per_finding_usd),
            s.cost_usd,
            s.task_minutes,
            s.relaunches
        ));
    }
    out
}

/// The idle-exit comparison as a Markdown table.
pub fn idle_exit_table(results: &[IdleExitResult]) -> String {
    let mut out = String::from(
        "| Case | fast wake + guard | idle exit | launches | relaunches | task-min | cost | cost/finding | first-msg | job p50 | job p95 |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let s = &r.summary;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} | ${:.4} | {} | {} | {} | {} |\n",
            r.case,
            on_off(r.fast_wake),
            on_off(r.idle_exit),
            s.launches,
            s.relaunches,
            s.task_minutes,
            s.cost_usd,
            usd(s.cost_per_finding_usd),
            secs(s.first_message_latency_s),
            secs(s.latency_p50_s),
            secs(s.latency_p95_s)
        ));
    }
    out
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
