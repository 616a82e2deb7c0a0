//! One simulated day of a bursty workload (≥ 100,000 events) must take under a second.
//! Prints what it measured on this machine and the ratio to the 1 s goal.

use czero_scaling::sim::{SimConfig, simulate};
use czero_scaling::trace;
use std::time::Instant;

fn main() {
    // Bursts of 400–1,000 events every 10 minutes on average, for a day.
    let arrivals = trace::bursts(42, 86_400.0, 600.0, 400, 1000, 60.0);
    let cfg = SimConfig::default();
    // Warm-up run, then the best of three timed runs.
    let _ = simulate(&cfg, &arrivals);
    let mut best = f64::INFINITY;
    let mut report = None;
    for _ in 0..3 {
        let start = Instant::now();
        let r = simulate(&cfg, &arrivals);
        best = best.min(start.elapsed().as_secs_f64());
        report = Some(r);
    }
    let Some(report) = report else { return };
    let s = &report.summary;
    let goal_s = 1.0;
    println!("simulate_day: bursty workload, seed 42");
    println!("  events              {}", s.events);
    println!("  jobs done           {}", s.jobs_done);
    println!("  simulated duration  {:.1} h", s.duration_s / 3600.0);
    println!("  wall time (best/3)  {:.3} s", best);
    println!("  events/s            {:.0}", s.events as f64 / best);
    println!(
        "  ratio to 1 s goal   {:.3} ({})",
        best / goal_s,
        if best < goal_s {
            "within goal"
        } else {
            "OVER GOAL"
        }
    );
    if s.events < 100_000 {
        println!("  WARNING: fewer than 100,000 events");
    }
}
