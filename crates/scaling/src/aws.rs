//! How AWS reaches the contract: CloudWatch alarms on the metric math `visible + in-flight`,
//! Application Auto Scaling step policies with `ExactCapacity` tiers, and their cooldowns.
//!
//! Why step scaling: target tracking's managed alarm needs the metric *above* the target for
//! 3 of 3 datapoints, so 1–5 messages at target 5 never wake a service at 0. Step tiers
//! derived from [`crate::contract::desired`] give the seed table exactly, from zero.
//!
//! Cooldowns, as Application Auto Scaling documents them for step scaling and as modelled
//! here (the cooldown length is the `Cooldown` of the policy whose activity started it):
//! - After a scale-out, the scale-out cooldown runs. During it a further scale-out happens
//!   only if it is larger than the capacity the initiating scale-out set (that capacity
//!   "counts as part of the desired capacity"); with `ExactCapacity` tiers that means only a
//!   higher tier gets through.
//! - After a scale-in, further scale-ins are blocked until the scale-in cooldown expires.
//!   A scale-out during a scale-in cooldown goes ahead at once and ends that cooldown.
//! - A scale-in is also blocked while a scale-out cooldown runs (our reading: the scale-out
//!   has not taken effect yet, so there is nothing to judge a scale-in by).
//! - Whether an activity is a scale-out or a scale-in follows from the new capacity against
//!   the current one, not from the policy's name: an `ExactCapacity` tier below the current
//!   count scales in.
//!
//! Alarms evaluate one datapoint per period and go to ALARM when the last
//! `evaluation_periods` datapoints all breach (N of N). An alarm that stays in ALARM
//! re-invokes its policy every period, so the tiers keep tracking the backlog.

use crate::contract;
use serde::{Deserialize, Serialize};

/// Name of the scale-out policy built by [`scale_out_policy`].
pub const SCALE_OUT_POLICY: &str = "backlog-scale-out";
/// Name of the scale-in-to-zero policy built by [`scale_in_policy`].
pub const SCALE_IN_POLICY: &str = "backlog-scale-in";

/// The knobs of one scalable target (the ECS service) and its two alarms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScalingParams {
    pub min_capacity: u32,
    pub max_capacity: u32,
    /// Messages (visible + in flight) per task.
    pub target_value: f64,
    /// `Cooldown` of the scale-out policy, seconds.
    pub scale_out_cooldown_s: u64,
    /// `Cooldown` of the scale-in policy, seconds.
    pub scale_in_cooldown_s: u64,
    /// CloudWatch period of both alarms, seconds (standard metrics: 60).
    pub period_s: u64,
    /// Datapoints (N of N) the backlog must be above 0 before scaling out.
    pub scale_out_evaluation_periods: u32,
    /// Datapoints (N of N) the backlog must be 0 before scaling in to 0.
    pub scale_in_evaluation_periods: u32,
}

impl Default for ScalingParams {
    /// The design document's values: 0..10 tasks, 5 messages per task, 60 s scale-out and
    /// 300 s scale-in cooldowns, 60 s periods; scale out on the first datapoint. The
    /// scale-in alarm waits 5 datapoints of an empty queue, the spec's "5 minutes" read the
    /// way KEDA's `cooldownPeriod` works (time at zero before going to zero).
    fn default() -> Self {
        Self {
            min_capacity: 0,
            max_capacity: 10,
            target_value: 5.0,
            scale_out_cooldown_s: 60,
            scale_in_cooldown_s: 300,
            period_s: 60,
            scale_out_evaluation_periods: 1,
            scale_in_evaluation_periods: 5,
        }
    }
}

/// CloudWatch `ComparisonOperator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    GreaterThanThreshold,
    GreaterThanOrEqualToThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanThreshold => value > threshold,
            Self::GreaterThanOrEqualToThreshold => value >= threshold,
            Self::LessThanThreshold => value < threshold,
            Self::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// True for the "metric above the threshold" operators, which decide how step bounds
    /// are read (see [`StepTier::contains`]).
    pub fn is_upper(self) -> bool {
        matches!(
            self,
            Self::GreaterThanThreshold | Self::GreaterThanOrEqualToThreshold
        )
    }

    /// The name CloudWatch and Terraform use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GreaterThanThreshold => "GreaterThanThreshold",
            Self::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Self::LessThanThreshold => "LessThanThreshold",
            Self::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }
}

/// One step adjustment with `AdjustmentType = ExactCapacity`.
///
/// Bounds are `MetricIntervalLowerBound`/`UpperBound`: offsets from the alarm threshold, as
/// AWS stores them (`None` = unbounded). The standard scale-out alarm has threshold 0, so
/// there they are plain backlog values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepTier {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub capacity: u32,
}

impl StepTier {
    /// Whether the metric, at `offset` from the threshold, falls in this step. AWS: above
    /// the threshold the lower bound is inclusive and the upper exclusive; below it the
    /// lower bound is exclusive and the upper inclusive.
    pub fn contains(&self, offset: f64, upper_alarm: bool) -> bool {
        let lower_ok = self
            .lower
            .is_none_or(|l| if upper_alarm { offset >= l } else { offset > l });
        let upper_ok = self
            .upper
            .is_none_or(|u| if upper_alarm { offset < u } else { offset <= u });
        lower_ok && upper_ok
    }
}

/// The scale-out tiers Terraform generates too: one `ExactCapacity` step per task count,
/// bounds on `visible + in-flight` against an alarm `> 0`. At the defaults:
/// `[0,6) → 1, [6,11) → 2, …, [46,∞) → 10`, i.e. backlog 1–5 → 1, 6–10 → 2, ≥ 46 → 10.
/// The first step starts at 0 (AWS wants the steps to start at the threshold, without
/// gaps). Task counts no integer backlog maps to (a target below 1) get no step.
pub fn scale_out_tiers(target_value: f64, max_capacity: u32) -> Vec<StepTier> {
    // (capacity, smallest backlog asking for it)
    let starts: Vec<(u32, u64)> = (1..=max_capacity)
        .filter_map(|k| contract::min_backlog_for(k, target_value, max_capacity).map(|b| (k, b)))
        .collect();
    let mut tiers: Vec<StepTier> = Vec::with_capacity(starts.len());
    for (i, &(capacity, start)) in starts.iter().enumerate() {
        let next = starts.get(i + 1).map(|&(_, b)| b);
        if next == Some(start) {
            continue; // an empty step: the next task count starts at the same backlog
        }
        let lower = if tiers.is_empty() { 0.0 } else { start as f64 };
        tiers.push(StepTier {
            lower: Some(lower),
            upper: next.map(|b| b as f64),
            capacity,
        });
    }
    tiers
}

/// What an alarm's metric math returns for a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmMetric {
    /// `visible + in-flight` (`m1 + m2`).
    #[default]
    Backlog,
    /// The scale-in guard, `IF(FILL(tasks_running, 0) > 0, visible + in-flight, 1)`: the
    /// backlog if a task ran during the period, else 1. A scale-in alarm on it counts an
    /// empty queue only while a task runs, so it is not in ALARM while the service sits at
    /// 0 and cannot undo a fast wake before the lagging queue metric shows the new job.
    BacklogWhileRunning,
}

impl AlarmMetric {
    /// The datapoint for a period whose maximum backlog was `backlog`; `task_ran` says
    /// whether any task was running at some point of it.
    pub fn value(self, backlog: f64, task_ran: bool) -> f64 {
        match self {
            Self::Backlog => backlog,
            Self::BacklogWhileRunning if task_ran => backlog,
            Self::BacklogWhileRunning => 1.0,
        }
    }
}

/// The CloudWatch alarm behind a step policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlarmSpec {
    pub threshold: f64,
    pub comparison: Comparison,
    /// N of N: datapoints to alarm equals evaluation periods.
    pub evaluation_periods: u32,
    pub period_s: u64,
    #[serde(default)]
    pub metric: AlarmMetric,
}

/// A step scaling policy and the alarm that invokes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPolicy {
    pub name: String,
    pub tiers: Vec<StepTier>,
    pub cooldown_s: u64,
    pub alarm: AlarmSpec,
}

impl StepPolicy {
    /// The capacity this policy asks for at `metric`, if a step covers it.
    pub fn capacity_for(&self, metric: f64) -> Option<u32> {
        let offset = metric - self.alarm.threshold;
        let upper_alarm = self.alarm.comparison.is_upper();
        self.tiers
            .iter()
            .find(|t| t.contains(offset, upper_alarm))
            .map(|t| t.capacity)
    }
}

/// Scale out (and track the backlog down) while `visible + in-flight > 0`.
pub fn scale_out_policy(params: &ScalingParams) -> StepPolicy {
    StepPolicy {
        name: SCALE_OUT_POLICY.to_owned(),
        tiers: scale_out_tiers(params.target_value, params.max_capacity),
        cooldown_s: params.scale_out_cooldown_s,
        alarm: AlarmSpec {
            threshold: 0.0,
            comparison: Comparison::GreaterThanThreshold,
            evaluation_periods: params.scale_out_evaluation_periods.max(1),
            period_s: params.period_s,
            metric: AlarmMetric::Backlog,
        },
    }
}

/// Scale in to 0 once `visible + in-flight` has been 0 for the scale-in evaluation periods.
pub fn scale_in_policy(params: &ScalingParams) -> StepPolicy {
    StepPolicy {
        name: SCALE_IN_POLICY.to_owned(),
        tiers: vec![StepTier {
            lower: None,
            upper: Some(0.0),
            capacity: 0,
        }],
        cooldown_s: params.scale_in_cooldown_s,
        alarm: AlarmSpec {
            threshold: 0.0,
            comparison: Comparison::LessThanOrEqualToThreshold,
            evaluation_periods: params.scale_in_evaluation_periods.max(1),
            period_s: params.period_s,
            metric: AlarmMetric::Backlog,
        },
    }
}

/// [`scale_in_policy`] with the scale-in guard ([`AlarmMetric::BacklogWhileRunning`]): what
/// Terraform deploys when fast wake is on.
pub fn guarded_scale_in_policy(params: &ScalingParams) -> StepPolicy {
    let mut policy = scale_in_policy(params);
    policy.alarm.metric = AlarmMetric::BacklogWhileRunning;
    policy
}

/// Why a policy that fired did not change the desired count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Blocked {
    /// A scale-out inside the scale-out cooldown that is not larger than the one that
    /// started it.
    ScaleOutCooldown,
    /// A scale-in inside a scale-in cooldown.
    ScaleInCooldown,
    /// A scale-in inside a scale-out cooldown.
    ScaleInDuringScaleOutCooldown,
}

/// What one evaluation did, for timelines and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    /// No alarm in ALARM.
    Quiet,
    /// A policy fired and asked for the current count.
    Unchanged { policy: String },
    /// A policy fired and changed the desired count.
    Scaled { policy: String, from: u32, to: u32 },
    /// A policy fired and a cooldown held it back.
    Blocked {
        policy: String,
        wanted: u32,
        reason: Blocked,
    },
}

#[derive(Debug, Clone)]
struct Armed {
    policy: StepPolicy,
    /// Consecutive breaching datapoints, up to the evaluation periods.
    breaching: u32,
}

/// Application Auto Scaling + CloudWatch alarms for one scalable target, evaluated one
/// period at a time.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    min_capacity: u32,
    max_capacity: u32,
    policies: Vec<Armed>,
    /// End of the running scale-out cooldown and the capacity its scale-out set.
    scale_out_until: Option<(u64, u32)>,
    /// End of the running scale-in cooldown.
    scale_in_until: Option<u64>,
}

impl Autoscaler {
    /// An autoscaler for `policies`; capacities are clamped to the params' min and max.
    pub fn new(params: &ScalingParams, policies: Vec<StepPolicy>) -> Self {
        Self {
            min_capacity: params.min_capacity,
            max_capacity: params.max_capacity.max(params.min_capacity),
            policies: policies
                .into_iter()
                .map(|policy| Armed {
                    policy,
                    breaching: 0,
                })
                .collect(),
            scale_out_until: None,
            scale_in_until: None,
        }
    }

    /// The standard pair: [`scale_out_policy`] and [`scale_in_policy`].
    pub fn from_params(params: &ScalingParams) -> Self {
        Self::new(
            params,
            vec![scale_out_policy(params), scale_in_policy(params)],
        )
    }

    /// The policies, as deployed.
    pub fn policies(&self) -> impl Iterator<Item = &StepPolicy> {
        self.policies.iter().map(|a| &a.policy)
    }

    /// Feed one metric datapoint (end of a period) at time `now_s`; returns the new desired
    /// count if a policy fires and is not blocked by cooldown.
    pub fn observe(&mut self, now_s: u64, backlog: f64, current_desired: u32) -> Option<u32> {
        match self.evaluate(now_s, backlog, current_desired) {
            Decision::Scaled { to, .. } => Some(to),
            _ => None,
        }
    }

    /// Like [`Autoscaler::observe`], saying what happened and why.
    pub fn evaluate(&mut self, now_s: u64, backlog: f64, current_desired: u32) -> Decision {
        self.evaluate_each(now_s, |_| backlog, current_desired)
    }

    /// Like [`Autoscaler::evaluate`], each alarm computing its own datapoint from the
    /// period's maximum backlog and whether a task ran during the period (see
    /// [`AlarmMetric`]).
    pub fn evaluate_period(
        &mut self,
        now_s: u64,
        backlog: f64,
        task_ran: bool,
        current_desired: u32,
    ) -> Decision {
        self.evaluate_each(
            now_s,
            |p| p.alarm.metric.value(backlog, task_ran),
            current_desired,
        )
    }

    /// Like [`Autoscaler::evaluate`] when the alarms watch different metrics: `metric`
    /// gives each policy's alarm its datapoint for this period.
    pub fn evaluate_each(
        &mut self,
        now_s: u64,
        metric: impl Fn(&StepPolicy) -> f64,
        current_desired: u32,
    ) -> Decision {
        let mut decision = Decision::Quiet;
        let mut desired = current_desired;
        let mut firing: Vec<(String, u32, u64)> = Vec::new();
        for armed in &mut self.policies {
            let alarm = &armed.policy.alarm;
            let backlog = metric(&armed.policy);
            if alarm.comparison.breaches(backlog, alarm.threshold) {
                armed.breaching = armed
                    .breaching
                    .saturating_add(1)
                    .min(alarm.evaluation_periods);
            } else {
                armed.breaching = 0;
            }
            if armed.breaching >= alarm.evaluation_periods.max(1)
                && let Some(capacity) = armed.policy.capacity_for(backlog)
            {
                firing.push((armed.policy.name.clone(), capacity, armed.policy.cooldown_s));
            }
        }
        for (policy, capacity, cooldown_s) in firing {
            let wanted = capacity.clamp(self.min_capacity, self.max_capacity);
            let step = self.apply(now_s, &policy, wanted, cooldown_s, desired);
            if let Decision::Scaled { to, .. } = step {
                desired = to;
            }
            // A change outranks a block, a block outranks "unchanged".
            decision = match (&decision, &step) {
                (Decision::Scaled { from, .. }, Decision::Scaled { to, policy, .. }) => {
                    Decision::Scaled {
                        policy: policy.clone(),
                        from: *from,
                        to: *to,
                    }
                }
                (Decision::Scaled { .. }, _) => decision,
                (_, Decision::Scaled { .. } | Decision::Blocked { .. }) => step,
                (Decision::Blocked { .. }, _) => decision,
                _ => step,
            };
        }
        decision
    }

    fn apply(
        &mut self,
        now_s: u64,
        policy: &str,
        wanted: u32,
        cooldown_s: u64,
        current: u32,
    ) -> Decision {
        let out_cooldown = self.scale_out_until.filter(|&(until, _)| now_s < until);
        let in_cooldown = self.scale_in_until.filter(|&until| now_s < until);
        if wanted > current {
            if let Some((_, set_to)) = out_cooldown
                && wanted <= set_to
            {
                return Decision::Blocked {
                    policy: policy.to_owned(),
                    wanted,
                    reason: Blocked::ScaleOutCooldown,
                };
            }
            self.scale_out_until = Some((now_s.saturating_add(cooldown_s), wanted));
            self.scale_in_until = None;
            return Decision::Scaled {
                policy: policy.to_owned(),
                from: current,
                to: wanted,
            };
        }
        if wanted < current {
            let reason = if in_cooldown.is_some() {
                Some(Blocked::ScaleInCooldown)
            } else if out_cooldown.is_some() {
                Some(Blocked::ScaleInDuringScaleOutCooldown)
            } else {
                None
            };
            if let Some(reason) = reason {
                return Decision::Blocked {
                    policy: policy.to_owned(),
                    wanted,
                    reason,
                };
            }
            self.scale_in_until = Some(now_s.saturating_add(cooldown_s));
            return Decision::Scaled {
                policy: policy.to_owned(),
                from: current,
                to: wanted,
            };
        }
        Decision::Unchanged {
            policy: policy.to_owned(),
        }
    }

    /// Whether a scale-in would be blocked at `now_s` (either cooldown running).
    pub fn scale_in_blocked(&self, now_s: u64) -> bool {
        self.scale_in_until.is_some_and(|u| now_s < u)
            || self.scale_out_until.is_some_and(|(u, _)| now_s < u)
    }

    /// The running scale-out cooldown at `now_s`: (end, capacity its scale-out set).
    pub fn scale_out_cooldown(&self, now_s: u64) -> Option<(u64, u32)> {
        self.scale_out_until.filter(|&(u, _)| now_s < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tiers_are_the_seed_table() {
        let tiers = scale_out_tiers(5.0, 10);
        assert_eq!(tiers.len(), 10);
        assert_eq!(
            tiers[0],
            StepTier {
                lower: Some(0.0),
                upper: Some(6.0),
                capacity: 1
            }
        );
        assert_eq!(
            tiers[1],
            StepTier {
                lower: Some(6.0),
                upper: Some(11.0),
                capacity: 2
            }
        );
        assert_eq!(
            tiers[9],
            StepTier {
                lower: Some(46.0),
                upper: None,
                capacity: 10
            }
        );
    }

    #[test]
    fn tiers_skip_unreachable_counts() {
        // Target 0.5: one message already wants 2 tasks, so there is no step for 1.
        let tiers = scale_out_tiers(0.5, 4);
        assert_eq!(tiers[0].capacity, 2);
        assert_eq!(tiers[0].lower, Some(0.0));
        assert_eq!(tiers.last().map(|t| t.capacity), Some(4));
    }

    #[test]
    fn scale_in_step_covers_zero() {
        let p = scale_in_policy(&ScalingParams::default());
        assert_eq!(p.capacity_for(0.0), Some(0));
        assert_eq!(p.capacity_for(1.0), None);
    }

    #[test]
    fn wakes_from_zero_on_one_message() {
        let mut a = Autoscaler::from_params(&ScalingParams::default());
        assert_eq!(a.observe(60, 1.0, 0), Some(1));
    }

    #[test]
    fn scale_in_waits_for_evaluation_periods_and_cooldowns() {
        let params = ScalingParams::default();
        let mut a = Autoscaler::from_params(&params);
        assert_eq!(a.observe(60, 25.0, 0), Some(5));
        // Backlog drops to 8; the 60 s scale-out cooldown ended at 120, so the scale-out
        // policy's tier for 8 (2 tasks) scales in.
        assert_eq!(a.observe(120, 8.0, 5), Some(2));
        let mut desired = 2;
        let mut reached_zero_at = None;
        for minute in 3..20u64 {
            if let Some(d) = a.observe(minute * 60, 0.0, desired) {
                desired = d;
                if d == 0 {
                    reached_zero_at = Some(minute);
                    break;
                }
            }
        }
        // Five empty datapoints: minutes 3..=7.
        assert_eq!(reached_zero_at, Some(7));
    }

    #[test]
    fn scale_in_guard_keeps_a_woken_service_until_a_task_has_run() {
        let params = ScalingParams::default();
        let guarded = || {
            Autoscaler::new(
                &params,
                vec![scale_out_policy(&params), guarded_scale_in_policy(&params)],
            )
        };
        let undo = Decision::Scaled {
            policy: SCALE_IN_POLICY.to_owned(),
            from: 1,
            to: 0,
        };
        // Ten idle minutes at 0, then a fast wake sets 1 while the datapoint still reads 0
        // (the queue metric lags) and no task has run yet.
        let mut plain = Autoscaler::from_params(&params);
        let mut guard = guarded();
        for minute in 1..=10u64 {
            plain.evaluate_period(minute * 60, 0.0, false, 0);
            assert_eq!(
                guard.evaluate_period(minute * 60, 0.0, false, 0),
                Decision::Quiet
            );
        }
        // Unguarded, the scale-in alarm has been in ALARM for minutes and undoes the wake.
        assert_eq!(plain.evaluate_period(660, 0.0, false, 1), undo);
        assert_eq!(guard.evaluate_period(660, 0.0, false, 1), Decision::Quiet);
        // The job shows, then five empty minutes with the task running: scale-in as usual.
        assert_eq!(
            guard.evaluate_period(720, 1.0, true, 1),
            Decision::Unchanged {
                policy: SCALE_OUT_POLICY.to_owned()
            }
        );
        for minute in 13..=16u64 {
            assert_eq!(
                guard.evaluate_period(minute * 60, 0.0, true, 1),
                Decision::Quiet
            );
        }
        assert_eq!(guard.evaluate_period(1020, 0.0, true, 1), undo);
    }

    #[test]
    fn guard_metric_reads_one_when_no_task_ran() {
        assert_eq!(AlarmMetric::BacklogWhileRunning.value(0.0, false), 1.0);
        assert_eq!(AlarmMetric::BacklogWhileRunning.value(3.0, false), 1.0);
        assert_eq!(AlarmMetric::BacklogWhileRunning.value(0.0, true), 0.0);
        assert_eq!(AlarmMetric::BacklogWhileRunning.value(3.0, true), 3.0);
        assert_eq!(AlarmMetric::Backlog.value(0.0, false), 0.0);
    }

    #[test]
    fn higher_tier_passes_scale_out_cooldown_lower_does_not_scale_in() {
        let params = ScalingParams {
            scale_out_cooldown_s: 300,
            ..ScalingParams::default()
        };
        let mut a = Autoscaler::from_params(&params);
        assert_eq!(a.observe(60, 7.0, 0), Some(2));
        assert_eq!(a.observe(120, 30.0, 2), Some(6));
        assert_eq!(
            a.evaluate(180, 3.0, 6),
            Decision::Blocked {
                policy: SCALE_OUT_POLICY.to_owned(),
                wanted: 1,
                reason: Blocked::ScaleInDuringScaleOutCooldown
            }
        );
    }
}
