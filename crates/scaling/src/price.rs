//! Fargate prices: costs are always computed from this table, never copied from prose.

use serde::{Deserialize, Serialize};

/// Fargate on-demand price (us-east-1, Linux/x86) and one task's size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FargatePrice {
    /// Dollars per vCPU-hour.
    pub vcpu_hour: f64,
    /// Dollars per GB-hour.
    pub gb_hour: f64,
    /// vCPUs per task.
    pub vcpu: f64,
    /// Memory per task, GB.
    pub memory_gb: f64,
    /// Fargate bills per second with this minimum per task, seconds.
    pub minimum_s: f64,
}

impl Default for FargatePrice {
    /// $0.04048 per vCPU-hour, $0.004445 per GB-hour; the smallest task, 0.25 vCPU / 0.5 GB;
    /// per-second billing with a one-minute minimum.
    fn default() -> Self {
        Self {
            vcpu_hour: 0.04048,
            gb_hour: 0.004445,
            vcpu: 0.25,
            memory_gb: 0.5,
            minimum_s: 60.0,
        }
    }
}

impl FargatePrice {
    /// Dollars per task-second.
    pub fn per_second(&self) -> f64 {
        (self.vcpu * self.vcpu_hour + self.memory_gb * self.gb_hour) / 3600.0
    }

    /// Seconds billed for a task that lived `seconds` (launch to stop).
    pub fn billed_seconds(&self, seconds: f64) -> f64 {
        seconds.max(self.minimum_s)
    }

    /// Dollars for a task that lived `seconds`.
    pub fn task_cost(&self, seconds: f64) -> f64 {
        self.billed_seconds(seconds) * self.per_second()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_task_minute_costs_about_0_000206() {
        let p = FargatePrice::default();
        let minute = p.task_cost(60.0);
        assert!((minute - 0.000_205_708).abs() < 1e-9, "{minute}");
        // The one-minute minimum.
        assert_eq!(p.task_cost(5.0), minute);
    }
}
