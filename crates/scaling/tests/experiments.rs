//! The experiments behind docs/tuning.md: the claims the document makes must keep holding.

use czero_scaling::experiments::{compare_idle_exit, idle_exit_table, tuning, tuning_table};

#[test]
fn idle_exit_off_never_relaunches_and_never_costs_more() {
    let results = compare_idle_exit(1);
    assert_eq!(results.len(), 5 * 4);
    for pair in results.chunks(2) {
        let (on, off) = (&pair[0], &pair[1]);
        assert!(on.idle_exit && !off.idle_exit);
        assert_eq!(
            (on.case.as_str(), on.fast_wake),
            (off.case.as_str(), off.fast_wake)
        );
        assert_eq!(off.summary.relaunches, 0, "{}", off.case);
        assert!(on.summary.relaunches > 0, "{}", on.case);
        assert!(
            off.summary.cost_usd <= on.summary.cost_usd + 1e-9,
            "{} fast wake {}: off {} > on {}",
            on.case,
            on.fast_wake,
            off.summary.cost_usd,
            on.summary.cost_usd
        );
    }
    assert!(idle_exit_table(&results).lines().count() == 22);
}

#[test]
fn recommended_row_wakes_faster_and_costs_less_than_the_spec_medium_row() {
    let results = tuning(1);
    let find = |workload: &str, row: &str| {
        results
            .iter()
            .find(|r| r.workload == workload && r.row.name == row)
            .map(|r| r.summary.clone())
    };
    for workload in ["sporadic", "bursty-day"] {
        let (Some(ours), Some(spec)) = (
            find(workload, "Recommended"),
            find(workload, "Medium, as the spec runs it"),
        ) else {
            panic!("rows missing for {workload}");
        };
        let p95 = |s: &czero_scaling::sim::Summary| s.first_job_latency_p95_s.unwrap_or(f64::MAX);
        assert!(p95(&ours) < p95(&spec), "{workload}");
        assert!(ours.cost_usd < spec.cost_usd, "{workload}");
        assert_eq!(ours.relaunches, 0);
    }
    assert_eq!(tuning_table(&results).lines().count(), 2 + results.len());
}
