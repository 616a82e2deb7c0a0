//! What the control plane evaluates: the scalable target's bounds, the step policies with
//! their alarms, and which queue attributes make up the alarms' metric. It comes from the
//! emulator (see [`crate::deployed`]) or from a config file (TOML or JSON, by extension).
//!
//! Config file format (every key optional; omitted ones take the design document's values,
//! `czero_scaling::aws::ScalingParams::default()`):
//!
//! ```toml
//! [params]
//! min_capacity = 0
//! max_capacity = 10
//! target_value = 5.0                # messages (visible + in flight) per task
//! scale_out_cooldown_s = 60
//! scale_in_cooldown_s = 300
//! period_s = 60                     # alarm period: the queue is read once per period
//! scale_out_evaluation_periods = 1
//! scale_in_evaluation_periods = 5   # empty periods before scaling in to 0
//!
//! # Optional: explicit step policies instead of the standard pair derived from [params].
//! # Bounds are offsets from the alarm threshold, as AWS stores them.
//! [[policies]]
//! name = "scale-out"
//! cooldown_s = 60
//! alarm = { threshold = 0.0, comparison = "GreaterThanThreshold", evaluation_periods = 1, period_s = 60 }
//! tiers = [{ lower = 0.0, upper = 6.0, capacity = 1 }, { lower = 6.0, capacity = 2 }]
//! ```
//!
//! With a config file the metric is always `visible + in-flight`. An alarm may add
//! `metric = "backlog_while_running"`, the scale-in guard: its datapoint is the backlog when
//! a task ran during the period, else 1 (`"backlog"`, the default, is the plain backlog).

use czero_scaling::aws::{self, ScalingParams, StepPolicy};
use serde::Deserialize;
use std::path::Path;

/// SQS attributes summed into the alarms' metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogMetric {
    /// `ApproximateNumberOfMessagesVisible` → attribute `ApproximateNumberOfMessages`.
    pub visible: bool,
    /// `ApproximateNumberOfMessagesNotVisible` (in flight).
    pub not_visible: bool,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: bool,
}

impl BacklogMetric {
    /// `visible + in-flight`: what the project's alarms use and KEDA counts.
    pub const VISIBLE_AND_IN_FLIGHT: BacklogMetric = BacklogMetric {
        visible: true,
        not_visible: true,
        delayed: false,
    };

    pub fn value(&self, visible: u64, not_visible: u64, delayed: u64) -> u64 {
        u64::from(self.visible) * visible
            + u64::from(self.not_visible) * not_visible
            + u64::from(self.delayed) * delayed
    }
}

/// Everything the control loop needs to play Application Auto Scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingSetup {
    pub min_capacity: u32,
    pub max_capacity: u32,
    /// Seconds between datapoints (the alarms' period).
    pub period_s: u64,
    pub policies: Vec<StepPolicy>,
    pub backlog: BacklogMetric,
    /// The queue the alarms watch, when they name one.
    pub queue_name: Option<String>,
}

impl ScalingSetup {
    /// The standard pair of policies for `params` (what Terraform deploys by default).
    pub fn from_params(params: &ScalingParams) -> Self {
        ScalingSetup {
            min_capacity: params.min_capacity,
            max_capacity: params.max_capacity,
            period_s: params.period_s,
            policies: vec![aws::scale_out_policy(params), aws::scale_in_policy(params)],
            backlog: BacklogMetric::VISIBLE_AND_IN_FLIGHT,
            queue_name: None,
        }
    }

    /// Whether an alarm carries the scale-in guard (its datapoint is the backlog only when a
    /// task ran during the period, else 1).
    pub fn has_scale_in_guard(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.alarm.metric == aws::AlarmMetric::BacklogWhileRunning)
    }

    /// The autoscaler that evaluates these policies.
    pub fn autoscaler(&self) -> aws::Autoscaler {
        let params = ScalingParams {
            min_capacity: self.min_capacity,
            max_capacity: self.max_capacity,
            period_s: self.period_s,
            ..ScalingParams::default()
        };
        aws::Autoscaler::new(&params, self.policies.clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    min_capacity: Option<u32>,
    max_capacity: Option<u32>,
    target_value: Option<f64>,
    scale_out_cooldown_s: Option<u64>,
    scale_in_cooldown_s: Option<u64>,
    period_s: Option<u64>,
    scale_out_evaluation_periods: Option<u32>,
    scale_in_evaluation_periods: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    params: ParamsFile,
    policies: Option<Vec<StepPolicy>>,
}

/// Reads a config file: `.toml`, else JSON.
pub fn load_config(path: &Path) -> Result<ScalingSetup, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: name.clone(),
        source,
    })?;
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    parse_config(&name, &text, is_toml)
}

/// Parses config text (`name` is used in messages).
pub fn parse_config(name: &str, text: &str, is_toml: bool) -> Result<ScalingSetup, ConfigError> {
    let file: ConfigFile = if is_toml {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: name.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?
    } else {
        serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            path: name.to_owned(),
            message: e.to_string(),
        })?
    };
    let d = ScalingParams::default();
    let p = file.params;
    let params = ScalingParams {
        min_capacity: p.min_capacity.unwrap_or(d.min_capacity),
        max_capacity: p.max_capacity.unwrap_or(d.max_capacity),
        target_value: p.target_value.unwrap_or(d.target_value),
        scale_out_cooldown_s: p.scale_out_cooldown_s.unwrap_or(d.scale_out_cooldown_s),
        scale_in_cooldown_s: p.scale_in_cooldown_s.unwrap_or(d.scale_in_cooldown_s),
        period_s: p.period_s.unwrap_or(d.period_s),
        scale_out_evaluation_periods: p
            .scale_out_evaluation_periods
            .unwrap_or(d.scale_out_evaluation_periods),
        scale_in_evaluation_periods: p
            .scale_in_evaluation_periods
            .unwrap_or(d.scale_in_evaluation_periods),
    };
    let invalid = |message: String| ConfigError::Invalid {
        path: name.to_owned(),
        message,
    };
    if params.min_capacity > params.max_capacity {
        return Err(invalid(format!(
            "params.min_capacity ({}) exceeds params.max_capacity ({})",
            params.min_capacity, params.max_capacity
        )));
    }
    if params.period_s == 0 {
        return Err(invalid("params.period_s must be at least 1".into()));
    }
    let mut setup = ScalingSetup::from_params(&params);
    if let Some(policies) = file.policies {
        if policies.is_empty() {
            return Err(invalid(
                "policies is empty: omit it for the standard pair".into(),
            ));
        }
        let period = policies[0].alarm.period_s;
        if let Some(p) = policies.iter().find(|p| p.alarm.period_s != period) {
            return Err(invalid(format!(
                "policies.{}: alarm period {} s differs from {} s; all alarms must share one period",
                p.name, p.alarm.period_s, period
            )));
        }
        if period == 0 {
            return Err(invalid(
                "policies: alarm period_s must be at least 1".into(),
            ));
        }
        setup.period_s = period;
        setup.policies = policies;
    }
    Ok(setup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use czero_scaling::aws::{Comparison, StepTier};

    #[test]
    fn empty_file_is_the_design_defaults() {
        let s = parse_config("c.toml", "", true).unwrap();
        assert_eq!(s, ScalingSetup::from_params(&ScalingParams::default()));
        assert_eq!(s.period_s, 60);
        assert_eq!(s.policies.len(), 2);
    }

    #[test]
    fn toml_params_and_policies() {
        let text = include_str!("../fixtures/scaling.toml");
        let s = parse_config("scaling.toml", text, true).unwrap();
        assert_eq!((s.min_capacity, s.max_capacity, s.period_s), (0, 3, 30));
        assert_eq!(s.policies.len(), 2);
        assert_eq!(
            s.policies[0].alarm.comparison,
            Comparison::GreaterThanThreshold
        );
        assert_eq!(
            s.policies[0].tiers[1],
            StepTier {
                lower: Some(3.0),
                upper: None,
                capacity: 3
            }
        );
        assert_eq!(s.policies[0].capacity_for(2.0), Some(1));
        assert_eq!(s.policies[1].capacity_for(0.0), Some(0));
    }

    #[test]
    fn toml_policy_with_the_scale_in_guard() {
        let text = include_str!("../fixtures/scaling.toml").replace(
            "evaluation_periods = 2, period_s = 30 }",
            "evaluation_periods = 2, period_s = 30, metric = \"backlog_while_running\" }",
        );
        let s = parse_config("scaling.toml", &text, true).unwrap();
        assert!(s.has_scale_in_guard());
        assert_eq!(
            s.policies[1].alarm.metric,
            aws::AlarmMetric::BacklogWhileRunning
        );
        assert_eq!(s.policies[0].alarm.metric, aws::AlarmMetric::Backlog);
        let plain = parse_config(
            "scaling.toml",
            include_str!("../fixtures/scaling.toml"),
            true,
        );
        assert!(!plain.unwrap().has_scale_in_guard());
    }

    #[test]
    fn json_params_only() {
        let s = parse_config(
            "c.json",
            r#"{"params": {"max_capacity": 4, "scale_in_evaluation_periods": 2}}"#,
            false,
        )
        .unwrap();
        assert_eq!(s.max_capacity, 4);
        assert_eq!(s.policies[1].alarm.evaluation_periods, 2);
        assert_eq!(s.policies[0].tiers.last().map(|t| t.capacity), Some(4));
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let e = parse_config("c.toml", "[params]\nmax_capcity = 3\n", true).unwrap_err();
        assert!(e.to_string().starts_with("c.toml: "), "{e}");
        assert!(e.to_string().contains("max_capcity"), "{e}");
        let e = parse_config(
            "c.json",
            r#"{"params": {"min_capacity": 5, "max_capacity": 2}}"#,
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.json: params.min_capacity (5) exceeds params.max_capacity (2)"
        );
    }

    #[test]
    fn backlog_metric_sums_selected_attributes() {
        assert_eq!(BacklogMetric::VISIBLE_AND_IN_FLIGHT.value(3, 4, 5), 7);
        let visible_only = BacklogMetric {
            visible: true,
            not_visible: false,
            delayed: false,
        };
        assert_eq!(visible_only.value(3, 4, 5), 3);
    }
}
