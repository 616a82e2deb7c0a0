//! The spec's scenarios, and the behaviours the simulator exists to show, through the
//! simulator. Each scenario goes 0 → N → 0 with the shape docs/tuning.md documents.

use czero_scaling::experiments::{recommended, row_config, spec_as_designed};
use czero_scaling::scenario::Scenario;
use czero_scaling::sim::{Report, SimConfig, simulate};

fn spec(seed: u64) -> SimConfig {
    row_config(&spec_as_designed(), seed)
}

fn ours(seed: u64) -> SimConfig {
    row_config(&recommended(), seed)
}

fn run(s: Scenario, cfg: &SimConfig) -> Report {
    simulate(&s.config(cfg), &s.arrivals())
}

/// Desired over time rises to its peak, then only falls: 0 → N → 0.
fn assert_up_then_down(r: &Report, peak: u32) {
    let desired: Vec<u32> = r.timeline.iter().map(|row| row.desired).collect();
    let top = desired.iter().position(|&d| d == peak);
    let Some(top) = top else {
        panic!("desired never reached {peak}: {desired:?}");
    };
    assert!(
        desired[..=top].windows(2).all(|w| w[0] <= w[1]),
        "{desired:?}"
    );
    assert!(
        desired[top..].windows(2).all(|w| w[0] >= w[1]),
        "{desired:?}"
    );
    // The run starts at 0; a fast wake raises desired already in the 0:00 row.
    let first = if r.config.fast_wake { 1 } else { 0 };
    assert!(desired.first().is_some_and(|&d| d <= first), "{desired:?}");
    assert_eq!(desired.last(), Some(&0));
    assert_eq!(desired.iter().max(), Some(&peak));
    assert!(r.summary.back_to_zero);
}

#[test]
fn idle_never_leaves_zero() {
    for cfg in [spec(1), ours(1)] {
        let r = run(Scenario::Idle, &cfg);
        assert_eq!(r.timeline.len(), 61, "0:00 to 1:00");
        assert_eq!(r.timeline.last().map(|row| row.time.as_str()), Some("1:00"));
        assert!(
            r.timeline.iter().all(|row| row.queue == 0
                && row.desired == 0
                && row.running == 0
                && row.pending == 0)
        );
        assert_eq!(r.summary.cost_usd, 0.0);
        assert_eq!(r.summary.launches, 0);
    }
}

#[test]
fn single_goes_to_one_then_zero() {
    for seed in 1..=20 {
        for cfg in [spec(seed), ours(seed)] {
            let r = run(Scenario::Single, &cfg);
            assert_up_then_down(&r, 1);
            assert_eq!(r.summary.jobs_done, 1);
            assert_eq!(r.summary.max_running, 1);
        }
    }
}

#[test]
fn single_as_the_spec_runs_it() {
    let r = run(Scenario::Single, &spec(1));
    let at = |t: &str| {
        r.timeline
            .iter()
            .find(|row| row.time == t)
            .map(|row| (row.queue, row.desired, row.running))
    };
    // Alarms alone: the first datapoint (0:00–0:01) reaches the alarm at 0:02.
    assert_eq!(at("0:01"), Some((1, 0, 0)));
    assert_eq!(at("0:02").map(|(_, d, _)| d), Some(1));
    // Idle exit inside a service: the task exits, desired stays 1, ECS relaunches it.
    assert!(r.summary.relaunches >= 2, "{:?}", r.summary);
    // 0 again at 0:09: five empty datapoints after the queue drained, one period of lag.
    assert_eq!(r.timeline.last().map(|row| row.time.as_str()), Some("0:09"));
}

#[test]
fn single_with_fast_wake_is_served_within_a_minute_or_so() {
    for seed in 1..=20 {
        let r = run(Scenario::Single, &ours(seed));
        let latency = r.summary.first_message_latency_s.unwrap_or(f64::MAX);
        // Fargate start (30–60 s) plus one job (1–3 s).
        assert!((31.0..=63.0).contains(&latency), "seed {seed}: {latency}");
        assert_eq!(r.summary.relaunches, 0);
    }
}

#[test]
fn burst_goes_to_five_then_zero() {
    for seed in 1..=20 {
        for cfg in [spec(seed), ours(seed)] {
            let r = run(Scenario::Burst, &cfg);
            assert_up_then_down(&r, 5);
            assert_eq!(r.summary.jobs_done, 25);
        }
    }
}

#[test]
fn burst_shape_without_fast_wake() {
    let r = run(
        Scenario::Burst,
        &SimConfig {
            idle_exit: false,
            ..spec(1)
        },
    );
    let desired: Vec<u32> = r.timeline.iter().map(|row| row.desired).collect();
    // 0:00–0:01 waiting on the first datapoint, 5 at 0:02, the scale-out tier follows the
    // backlog down to 1 once the queue has drained, 0 after five empty datapoints.
    assert_eq!(&desired[..3], &[0, 0, 5]);
    assert!(desired.contains(&1));
    assert_eq!(r.summary.relaunches, 0);
}

#[test]
fn idle_exit_inside_a_service_causes_relaunches() {
    for s in [Scenario::Single, Scenario::Burst] {
        let on = run(
            s,
            &SimConfig {
                idle_exit: true,
                ..spec(1)
            },
        );
        let off = run(
            s,
            &SimConfig {
                idle_exit: false,
                ..spec(1)
            },
        );
        assert!(on.summary.relaunches > 0, "{}", s.name());
        assert_eq!(off.summary.relaunches, 0, "{}", s.name());
        assert!(on.summary.cost_usd >= off.summary.cost_usd, "{}", s.name());
    }
}

/// Regression: without the guard, the scale-in alarm (in ALARM while the service sits at 0)
/// undoes a fast wake at its next evaluation, and the second event waits for the alarms.
#[test]
fn fast_wake_needs_the_scale_in_guard() {
    let arrivals = [0.0, 1800.0];
    let second = |guard: bool| {
        let cfg = SimConfig {
            fast_wake: true,
            scale_in_guard: guard,
            idle_exit: false,
            ..spec(3)
        };
        let r = simulate(&cfg, &arrivals);
        assert!(r.summary.back_to_zero);
        // p95 of two jobs is the slower one, the second.
        r.summary.latency_p95_s.unwrap_or(f64::MAX)
    };
    assert!(second(false) > 90.0, "unguarded: {}", second(false));
    assert!(second(true) < 64.0, "guarded: {}", second(true));
}

#[test]
fn busy_tasks_are_not_stopped_on_scale_in() {
    // Long jobs: the tiers scale in while three tasks still hold batches.
    let base = SimConfig {
        processing_s: (40.0, 40.0),
        idle_exit: false,
        ..spec(1)
    };
    let protected = run(Scenario::Burst, &base);
    let unprotected = run(
        Scenario::Burst,
        &SimConfig {
            scale_in_protection: false,
            ..base
        },
    );
    assert_eq!(protected.summary.redelivered, 0);
    assert!(unprotected.summary.redelivered > 0);
    assert_eq!(protected.summary.jobs_done, 25);
}

#[test]
fn same_seed_same_json_other_seed_differs() {
    let json = |seed| serde_json::to_string(&run(Scenario::Burst, &spec(seed))).unwrap_or_default();
    assert!(!json(7).is_empty());
    assert_eq!(json(7), json(7));
    assert_ne!(json(7), json(8));
}

#[test]
fn costs_come_from_the_price_table() {
    let r = run(Scenario::Single, &ours(1));
    let per_minute = r.config.price.per_second() * 60.0;
    let expected = r.summary.task_minutes * per_minute;
    assert!((r.summary.cost_usd - expected).abs() < 1e-12);
}
