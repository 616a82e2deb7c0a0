//! Plain-text tables in the spec's format.

use crate::sim::{Report, Row};

/// `Time | Queue | Desired | Running | Action`, one row per minute. Runs of identical
/// quiet rows collapse to their first and last row with `…` between.
pub fn timeline(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("Time    | Queue | Desired | Running | Action\n");
    out.push_str("--------|-------|---------|---------|------------------\n");
    let rows = &report.timeline;
    let same = |a: &Row, b: &Row| {
        a.queue == b.queue
            && a.desired == b.desired
            && a.running == b.running
            && a.pending == b.pending
            && a.action.is_empty()
            && b.action.is_empty()
    };
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j + 1 < rows.len() && same(&rows[i], &rows[j + 1]) {
            j += 1;
        }
        out.push_str(&line(&rows[i]));
        if j > i + 1 {
            out.push_str("  …     |       |         |         |\n");
        }
        if j > i {
            out.push_str(&line(&rows[j]));
        }
        i = j + 1;
    }
    out
}

fn line(r: &Row) -> String {
    let running = if r.pending > 0 {
        format!("{} (+{})", r.running, r.pending)
    } else {
        r.running.to_string()
    };
    format!(
        "{:<7} | {:^5} | {:^7} | {:^7} | {}\n",
        r.time, r.queue, r.desired, running, r.action
    )
    .replace(" \n", "\n")
}

/// Cost, latency and relaunch lines under a timeline.
pub fn summary(report: &Report) -> String {
    let s = &report.summary;
    let secs = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0} s"));
    let mut out = String::new();
    out.push_str(&format!(
        "Cost: ${:.6} ({:.2} billed task-minutes at ${:.6}/task-minute)\n",
        s.cost_usd,
        s.task_minutes,
        report.config.price.per_second() * 60.0
    ));
    out.push_str(&format!(
        "First-message latency: {}; job latency p50 {}, p95 {}\n",
        secs(s.first_message_latency_s),
        secs(s.latency_p50_s),
        secs(s.latency_p95_s)
    ));
    out.push_str(&format!(
        "Tasks launched: {}; relaunches (task exited, desired unchanged): {}\n",
        s.launches, s.relaunches
    ));
    if !s.back_to_zero {
        out.push_str("Not back at 0 when the run ended\n");
    }
    out
}
