//! The design document's scaling scenarios as traces.

use crate::sim::SimConfig;

/// A scenario from the spec's "Scaling Scenarios".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Scenario 1: an hour with no events.
    Idle,
    /// Scenario 2: one event at 0:00.
    Single,
    /// Scenario 3: 25 events at 0:00.
    Burst,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Idle, Scenario::Single, Scenario::Burst];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Single => "single",
            Scenario::Burst => "burst",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Arrival times, seconds.
    pub fn arrivals(self) -> Vec<f64> {
        match self {
            Scenario::Idle => Vec::new(),
            Scenario::Single => vec![0.0],
            Scenario::Burst => vec![0.0; 25],
        }
    }

    /// `base` with the scenario's minimum duration (the idle scenario runs an hour).
    pub fn config(self, base: &SimConfig) -> SimConfig {
        let mut cfg = base.clone();
        if self == Scenario::Idle {
            cfg.min_duration_s = cfg.min_duration_s.max(3600.0);
        }
        cfg
    }
}
