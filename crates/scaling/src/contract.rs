//! The scaling contract from the design document: how many tasks a backlog deserves.
//!
//! `0 → 0, 1–5 → 1, 6–10 → 2, …, ≥ 46 → 10` at the defaults (target 5 messages per task,
//! at most 10 tasks). This is KEDA/HPA arithmetic; AWS target tracking does not reach it
//! from zero, so [`crate::aws`] derives step-scaling tiers from this function instead.

/// Tasks the contract wants for `backlog` messages (visible + in flight): 0 when the backlog
/// is 0, otherwise `min(max_capacity, ceil(backlog / target_value))`.
///
/// A `target_value` that is not a positive finite number means "no per-task target": any
/// backlog then asks for `max_capacity`.
pub fn desired(backlog: u64, target_value: f64, max_capacity: u32) -> u32 {
    if backlog == 0 {
        return 0;
    }
    if !(target_value.is_finite() && target_value > 0.0) {
        return max_capacity;
    }
    // f64 is exact for backlogs below 2^53, far beyond any queue we scale on.
    let tasks = (backlog as f64 / target_value).ceil();
    if tasks >= f64::from(max_capacity) {
        max_capacity
    } else {
        // `tasks` is in [1, max_capacity) here, so the cast is lossless.
        tasks as u32
    }
}

/// The smallest backlog for which [`desired`] asks for at least `tasks` tasks, or `None` when
/// no backlog below 2^53 does (only when `tasks > max_capacity`).
pub fn min_backlog_for(tasks: u32, target_value: f64, max_capacity: u32) -> Option<u64> {
    if tasks == 0 {
        return Some(0);
    }
    const LIMIT: u64 = 1 << 53;
    if desired(LIMIT, target_value, max_capacity) < tasks {
        return None;
    }
    // `desired` is monotone in the backlog: binary search keeps the tiers exactly consistent
    // with the contract even where `k * target_value` is not representable.
    let (mut lo, mut hi) = (1u64, LIMIT);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if desired(mid, target_value, max_capacity) >= tasks {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed table, row by row, as the design document states it.
    #[test]
    fn seed_table_rows() {
        let rows: &[(u64, u32)] = &[
            (0, 0),
            (1, 1),
            (5, 1),
            (6, 2),
            (10, 2),
            (11, 3),
            (15, 3),
            (45, 9),
            (46, 10),
            (50, 10),
            (51, 10),
            (1_000_000, 10),
        ];
        for &(backlog, tasks) in rows {
            assert_eq!(desired(backlog, 5.0, 10), tasks, "backlog {backlog}");
        }
    }

    #[test]
    fn min_backlog_matches_table() {
        assert_eq!(min_backlog_for(0, 5.0, 10), Some(0));
        assert_eq!(min_backlog_for(1, 5.0, 10), Some(1));
        assert_eq!(min_backlog_for(2, 5.0, 10), Some(6));
        assert_eq!(min_backlog_for(10, 5.0, 10), Some(46));
        assert_eq!(min_backlog_for(11, 5.0, 10), None);
        assert_eq!(min_backlog_for(2, 2.5, 10), Some(3));
    }

    #[test]
    fn non_positive_target_asks_for_max() {
        assert_eq!(desired(1, 0.0, 7), 7);
        assert_eq!(desired(1, f64::NAN, 7), 7);
        assert_eq!(desired(0, 0.0, 7), 0);
    }
}
