//! What Terraform deployed, as the emulator describes it, turned into a [`ScalingSetup`].
//!
//! The shapes here mirror the AWS responses (`DescribeScalableTargets`,
//! `DescribeScalingPolicies`, `DescribeAlarms`) field for field, so fixtures are the
//! responses themselves and the SDK types map onto them one to one (see `emulator`).
//!
//! Rules, as Application Auto Scaling applies them:
//! - a step policy is invoked by the CloudWatch alarms whose `AlarmActions` name its ARN;
//!   a policy no alarm points at never runs and is left out;
//! - step bounds are offsets from the alarm's threshold and are kept as such;
//! - only `ExactCapacity` adjustments and N-of-N alarms are modelled (what the project
//!   deploys); anything else is an error rather than a silent approximation;
//! - the alarms' metric must be SQS message counts of one queue, alone or summed in metric
//!   math (`m1 + m2`); the control plane reads the same counts from `GetQueueAttributes`;
//! - or, on any alarm, the scale-in guard Terraform builds with fast wake:
//!   `IF(FILL(m3, 0) > 0, m1 + m2, 1)` where `m3` is Container Insights' `RunningTaskCount`
//!   (Maximum) of the target's service. The control plane plays it with its own tasks: the
//!   datapoint is the backlog when a task ran during the period, else 1
//!   ([`AlarmMetric::BacklogWhileRunning`]).

use crate::setup::{BacklogMetric, ScalingSetup};
use czero_scaling::aws::{AlarmMetric, AlarmSpec, Comparison, StepPolicy, StepTier};
use serde::Deserialize;

/// `Cooldown` when a step policy leaves it out (Application Auto Scaling's default).
pub const DEFAULT_COOLDOWN_S: u64 = 300;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTarget {
    pub resource_id: String,
    pub min_capacity: i32,
    pub max_capacity: i32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    pub metric_interval_lower_bound: Option<f64>,
    pub metric_interval_upper_bound: Option<f64>,
    pub scaling_adjustment: i32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepConfiguration {
    pub adjustment_type: Option<String>,
    pub cooldown: Option<i32>,
    #[serde(default)]
    pub step_adjustments: Vec<StepAdjustment>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicy {
    #[serde(rename = "PolicyARN")]
    pub policy_arn: String,
    pub policy_name: String,
    pub policy_type: String,
    pub step_scaling_policy_configuration: Option<StepConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metric {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    pub metric: Metric,
    pub period: Option<i32>,
    pub stat: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricQuery {
    pub id: String,
    pub expression: Option<String>,
    pub metric_stat: Option<MetricStat>,
    pub return_data: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricAlarm {
    pub alarm_name: String,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    pub actions_enabled: Option<bool>,
    pub threshold: Option<f64>,
    pub comparison_operator: Option<String>,
    pub evaluation_periods: Option<i32>,
    pub datapoints_to_alarm: Option<i32>,
    // A single-metric alarm.
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    pub period: Option<i32>,
    // A metric-math alarm.
    #[serde(default)]
    pub metrics: Vec<MetricQuery>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeployedError {
    #[error("policy {policy}: {message}")]
    Policy { policy: String, message: String },
    #[error("alarm {alarm}: {message}")]
    Alarm { alarm: String, message: String },
    #[error("scalable target {resource}: {message}")]
    Target { resource: String, message: String },
    #[error("no step scaling policy of {resource} is invoked by an alarm: nothing to evaluate")]
    NothingToEvaluate { resource: String },
}

fn alarm_err(alarm: &MetricAlarm, message: impl Into<String>) -> DeployedError {
    DeployedError::Alarm {
        alarm: alarm.alarm_name.clone(),
        message: message.into(),
    }
}

fn comparison(alarm: &MetricAlarm) -> Result<Comparison, DeployedError> {
    Ok(match alarm.comparison_operator.as_deref() {
        Some("GreaterThanThreshold") => Comparison::GreaterThanThreshold,
        Some("GreaterThanOrEqualToThreshold") => Comparison::GreaterThanOrEqualToThreshold,
        Some("LessThanThreshold") => Comparison::LessThanThreshold,
        Some("LessThanOrEqualToThreshold") => Comparison::LessThanOrEqualToThreshold,
        other => {
            return Err(alarm_err(
                alarm,
                format!("ComparisonOperator {other:?} is not supported"),
            ));
        }
    })
}

/// The SQS attribute(s) and queue a metric stands for.
fn sqs_metric(
    alarm: &MetricAlarm,
    namespace: Option<&str>,
    name: Option<&str>,
    dims: &[Dimension],
    into: &mut BacklogMetric,
) -> Result<String, DeployedError> {
    if namespace != Some("AWS/SQS") {
        return Err(alarm_err(
            alarm,
            format!("metric namespace {namespace:?} is not AWS/SQS"),
        ));
    }
    match name {
        Some("ApproximateNumberOfMessagesVisible") => into.visible = true,
        Some("ApproximateNumberOfMessagesNotVisible") => into.not_visible = true,
        Some("ApproximateNumberOfMessagesDelayed") => into.delayed = true,
        other => {
            return Err(alarm_err(
                alarm,
                format!(
                    "metric {other:?} is not an SQS message count (ApproximateNumberOfMessages*)"
                ),
            ));
        }
    }
    dims.iter()
        .find(|d| d.name == "QueueName")
        .map(|d| d.value.clone())
        .ok_or_else(|| alarm_err(alarm, "metric has no QueueName dimension"))
}

/// A metric-math expression, as far as the project's alarms need it: metric ids, numbers,
/// `+`, `>`, parentheses and function calls.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Id(String),
    Number(f64),
    Add(Box<Expr>, Box<Expr>),
    Greater(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Number(f64),
    Plus,
    Greater,
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        let single = match c {
            '+' => Some(Token::Plus),
            '>' => Some(Token::Greater),
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            ',' => Some(Token::Comma),
            _ => None,
        };
        if let Some(t) = single {
            tokens.push(t);
            chars.next();
        } else if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            let mut end = i;
            while let Some(&(j, d)) = chars.peek() {
                if !(d.is_ascii_alphanumeric() || d == '_' || d == '.') {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            let word = &text[i..end];
            if c.is_ascii_digit() || c == '.' {
                tokens.push(Token::Number(word.parse().ok()?));
            } else if word.contains('.') {
                return None;
            } else {
                tokens.push(Token::Ident(word.to_owned()));
            }
        } else {
            return None;
        }
    }
    Some(tokens)
}

/// Recursive descent: `expr := sum ('>' sum)?`, `sum := atom ('+' atom)*`,
/// `atom := number | id | NAME '(' expr (',' expr)* ')' | '(' expr ')'`.
struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn parse(text: &str) -> Option<Expr> {
        let mut p = Parser {
            tokens: tokenize(text)?,
            at: 0,
        };
        let e = p.expr()?;
        (p.at == p.tokens.len()).then_some(e)
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, t: &Token) -> bool {
        let hit = self.peek() == Some(t);
        self.at += usize::from(hit);
        hit
    }

    fn expr(&mut self) -> Option<Expr> {
        let left = self.sum()?;
        if self.eat(&Token::Greater) {
            return Some(Expr::Greater(Box::new(left), Box::new(self.sum()?)));
        }
        Some(left)
    }

    fn sum(&mut self) -> Option<Expr> {
        let mut left = self.atom()?;
        while self.eat(&Token::Plus) {
            left = Expr::Add(Box::new(left), Box::new(self.atom()?));
        }
        Some(left)
    }

    fn atom(&mut self) -> Option<Expr> {
        let token = self.peek()?.clone();
        self.at += 1;
        match token {
            Token::Number(n) => Some(Expr::Number(n)),
            Token::Ident(name) if self.eat(&Token::Open) => {
                let mut args = vec![self.expr()?];
                while self.eat(&Token::Comma) {
                    args.push(self.expr()?);
                }
                self.eat(&Token::Close).then_some(Expr::Call(name, args))
            }
            Token::Ident(name) => Some(Expr::Id(name)),
            Token::Open => {
                let e = self.expr()?;
                self.eat(&Token::Close).then_some(e)
            }
            _ => None,
        }
    }
}

/// The ids of `a + b + …` (or of a lone id).
fn summed_ids(e: &Expr, into: &mut Vec<String>) -> bool {
    match e {
        Expr::Id(id) => {
            into.push(id.clone());
            true
        }
        Expr::Add(a, b) => summed_ids(a, into) && summed_ids(b, into),
        _ => false,
    }
}

/// The two forms of metric math the control plane plays.
#[derive(Debug, Clone, PartialEq)]
enum MathForm {
    /// `m1 + m2 + …`
    Sum(Vec<String>),
    /// `IF(FILL(running, 0) > 0, m1 + m2 + …, 1)`: the scale-in guard.
    Guard {
        running: String,
        backlog: Vec<String>,
    },
}

fn math_form(text: &str) -> Option<MathForm> {
    let expr = Parser::parse(text)?;
    let mut ids = Vec::new();
    if summed_ids(&expr, &mut ids) {
        return Some(MathForm::Sum(ids));
    }
    let Expr::Call(name, args) = &expr else {
        return None;
    };
    let [cond, then, otherwise] = args.as_slice() else {
        return None;
    };
    if !name.eq_ignore_ascii_case("IF") || *otherwise != Expr::Number(1.0) {
        return None;
    }
    let Expr::Greater(filled, zero) = cond else {
        return None;
    };
    let Expr::Call(fill, fill_args) = filled.as_ref() else {
        return None;
    };
    let [Expr::Id(running), Expr::Number(fill_value)] = fill_args.as_slice() else {
        return None;
    };
    if !fill.eq_ignore_ascii_case("FILL") || *fill_value != 0.0 || **zero != Expr::Number(0.0) {
        return None;
    }
    if !summed_ids(then, &mut ids) || ids.contains(running) {
        return None;
    }
    Some(MathForm::Guard {
        running: running.clone(),
        backlog: ids,
    })
}

/// The guard's task count must be the service's `RunningTaskCount` from Container Insights,
/// at the period of the backlog metrics.
fn check_running_metric(
    alarm: &MetricAlarm,
    id: &str,
    stat: &MetricStat,
    service: Option<(&str, &str)>,
) -> Result<u64, DeployedError> {
    let what = format!("scale-in guard metric `{id}`");
    let m = &stat.metric;
    if m.namespace.as_deref() != Some("ECS/ContainerInsights")
        || m.metric_name.as_deref() != Some("RunningTaskCount")
    {
        return Err(alarm_err(
            alarm,
            format!(
                "{what} is {:?} {:?}, not ECS/ContainerInsights RunningTaskCount",
                m.namespace, m.metric_name
            ),
        ));
    }
    let Some((cluster, service)) = service else {
        return Err(alarm_err(
            alarm,
            format!("{what}: the scalable target is not an ECS service (service/CLUSTER/SERVICE)"),
        ));
    };
    let mut dims: Vec<(&str, &str)> = m
        .dimensions
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_str()))
        .collect();
    dims.sort_unstable();
    if dims != [("ClusterName", cluster), ("ServiceName", service)] {
        return Err(alarm_err(
            alarm,
            format!(
                "{what} has dimensions {dims:?}; expected ClusterName {cluster} and ServiceName {service} (the scalable target's service)"
            ),
        ));
    }
    if stat.stat.as_deref() != Some("Maximum") {
        return Err(alarm_err(
            alarm,
            format!(
                "{what} uses the statistic {:?}; expected Maximum (did any task run in the period)",
                stat.stat
            ),
        ));
    }
    stat.period
        .and_then(|p| u64::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| alarm_err(alarm, format!("metric `{id}` has no Period")))
}

/// What an alarm watches: SQS attributes, their queue and period, and how the datapoint is
/// formed from them.
#[derive(Debug, Clone, PartialEq)]
struct WatchedMetric {
    backlog: BacklogMetric,
    queue: String,
    period_s: u64,
    metric: AlarmMetric,
}

/// `service/CLUSTER/SERVICE` → (cluster, service).
fn ecs_service(resource_id: &str) -> Option<(&str, &str)> {
    let rest = resource_id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    (!cluster.is_empty() && !service.is_empty() && !service.contains('/'))
        .then_some((cluster, service))
}

/// The alarm's metric. `service` is the scalable target's (cluster, service), which the
/// scale-in guard's task count must name.
fn alarm_metric(
    alarm: &MetricAlarm,
    service: Option<(&str, &str)>,
) -> Result<WatchedMetric, DeployedError> {
    let mut backlog = BacklogMetric {
        visible: false,
        not_visible: false,
        delayed: false,
    };
    let positive = |p: Option<i32>| p.and_then(|p| u64::try_from(p).ok()).filter(|p| *p > 0);
    if alarm.metrics.is_empty() {
        let queue = sqs_metric(
            alarm,
            alarm.namespace.as_deref(),
            alarm.metric_name.as_deref(),
            &alarm.dimensions,
            &mut backlog,
        )?;
        let period_s =
            positive(alarm.period).ok_or_else(|| alarm_err(alarm, "Period is missing"))?;
        return Ok(WatchedMetric {
            backlog,
            queue,
            period_s,
            metric: AlarmMetric::Backlog,
        });
    }
    let returned: Vec<&MetricQuery> = alarm
        .metrics
        .iter()
        .filter(|m| m.return_data != Some(false))
        .collect();
    let [result] = returned.as_slice() else {
        return Err(alarm_err(
            alarm,
            format!("{} metric queries return data; expected 1", returned.len()),
        ));
    };
    let stat_of = |id: &str| {
        alarm
            .metrics
            .iter()
            .find(|m| m.id == id)
            .and_then(|m| m.metric_stat.as_ref())
            .ok_or_else(|| {
                alarm_err(
                    alarm,
                    format!("metric math refers to `{id}`, which is not a metric"),
                )
            })
    };
    // The result is a metric itself, `a + b + …` over metric ids, or the scale-in guard.
    let (ids, running) = match &result.expression {
        None => (vec![result.id.clone()], None),
        Some(expr) => match math_form(expr) {
            Some(MathForm::Sum(ids)) => (ids, None),
            Some(MathForm::Guard { running, backlog }) => (backlog, Some(running)),
            None => {
                return Err(alarm_err(
                    alarm,
                    format!(
                        "metric math `{expr}` is not supported (expected a sum of metric ids, like `m1 + m2`, or the scale-in guard `IF(FILL(m3, 0) > 0, m1 + m2, 1)`)"
                    ),
                ));
            }
        },
    };
    let mut queue: Option<String> = None;
    let mut period: Option<u64> = None;
    for id in &ids {
        let stat = stat_of(id)?;
        let q = sqs_metric(
            alarm,
            stat.metric.namespace.as_deref(),
            stat.metric.metric_name.as_deref(),
            &stat.metric.dimensions,
            &mut backlog,
        )?;
        if queue.as_ref().is_some_and(|prev| *prev != q) {
            return Err(alarm_err(alarm, "metrics name different queues"));
        }
        queue = Some(q);
        let p = positive(stat.period)
            .ok_or_else(|| alarm_err(alarm, format!("metric `{id}` has no Period")))?;
        if period.is_some_and(|prev| prev != p) {
            return Err(alarm_err(alarm, "metrics have different periods"));
        }
        period = Some(p);
    }
    let metric = match &running {
        None => AlarmMetric::Backlog,
        Some(id) => {
            let p = check_running_metric(alarm, id, stat_of(id)?, service)?;
            if period.is_some_and(|prev| prev != p) {
                return Err(alarm_err(alarm, "metrics have different periods"));
            }
            AlarmMetric::BacklogWhileRunning
        }
    };
    match (queue, period) {
        (Some(queue), Some(period_s)) => Ok(WatchedMetric {
            backlog,
            queue,
            period_s,
            metric,
        }),
        _ => Err(alarm_err(alarm, "metric math names no metric")),
    }
}

fn tiers(
    policy: &ScalingPolicy,
    config: &StepConfiguration,
) -> Result<Vec<StepTier>, DeployedError> {
    let err = |message: String| DeployedError::Policy {
        policy: policy.policy_name.clone(),
        message,
    };
    match config.adjustment_type.as_deref() {
        Some("ExactCapacity") => {}
        other => {
            return Err(err(format!(
                "AdjustmentType {other:?} is not supported (only ExactCapacity)"
            )));
        }
    }
    if config.step_adjustments.is_empty() {
        return Err(err("StepAdjustments is empty".into()));
    }
    config
        .step_adjustments
        .iter()
        .map(|s| {
            let capacity = u32::try_from(s.scaling_adjustment).map_err(|_| {
                err(format!(
                    "ScalingAdjustment {} is negative",
                    s.scaling_adjustment
                ))
            })?;
            Ok(StepTier {
                lower: s.metric_interval_lower_bound,
                upper: s.metric_interval_upper_bound,
                capacity,
            })
        })
        .collect()
}

/// Builds the setup from the three responses. Alarms that invoke none of the target's
/// policies (a queue-age alarm, say) are ignored.
pub fn assemble(
    target: &ScalableTarget,
    policies: &[ScalingPolicy],
    alarms: &[MetricAlarm],
) -> Result<ScalingSetup, DeployedError> {
    let target_err = |message: String| DeployedError::Target {
        resource: target.resource_id.clone(),
        message,
    };
    let min_capacity = u32::try_from(target.min_capacity)
        .map_err(|_| target_err(format!("MinCapacity {} is negative", target.min_capacity)))?;
    let max_capacity = u32::try_from(target.max_capacity)
        .map_err(|_| target_err(format!("MaxCapacity {} is negative", target.max_capacity)))?;
    if min_capacity > max_capacity {
        return Err(target_err(format!(
            "MinCapacity {min_capacity} exceeds MaxCapacity {max_capacity}"
        )));
    }

    let service = ecs_service(&target.resource_id);
    let mut out: Vec<StepPolicy> = Vec::new();
    let mut metric: Option<(BacklogMetric, String, u64, String)> = None;
    for policy in policies {
        if policy.policy_type != "StepScaling" {
            tracing::warn!(policy = %policy.policy_name, kind = %policy.policy_type, "only step scaling is played locally; policy ignored");
            continue;
        }
        let config = policy
            .step_scaling_policy_configuration
            .as_ref()
            .ok_or_else(|| DeployedError::Policy {
                policy: policy.policy_name.clone(),
                message: "StepScalingPolicyConfiguration is missing".into(),
            })?;
        let steps = tiers(policy, config)?;
        let cooldown_s = config
            .cooldown
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(DEFAULT_COOLDOWN_S);
        let invoking: Vec<&MetricAlarm> = alarms
            .iter()
            .filter(|a| {
                a.actions_enabled != Some(false) && a.alarm_actions.contains(&policy.policy_arn)
            })
            .collect();
        if invoking.is_empty() {
            tracing::warn!(policy = %policy.policy_name, "no alarm invokes this policy; it never runs");
        }
        for alarm in invoking {
            let evaluation_periods = alarm
                .evaluation_periods
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| alarm_err(alarm, "EvaluationPeriods is missing"))?;
            if let Some(m) = alarm.datapoints_to_alarm
                && i64::from(m) != i64::from(evaluation_periods)
            {
                return Err(alarm_err(
                    alarm,
                    format!(
                        "DatapointsToAlarm {m} of EvaluationPeriods {evaluation_periods} is not supported (only N of N)"
                    ),
                ));
            }
            let threshold = alarm
                .threshold
                .ok_or_else(|| alarm_err(alarm, "Threshold is missing"))?;
            let WatchedMetric {
                backlog,
                queue,
                period_s,
                metric: alarm_math,
            } = alarm_metric(alarm, service)?;
            if let Some((b, q, p, first)) = &metric
                && (*b != backlog || *q != queue || *p != period_s)
            {
                return Err(alarm_err(
                    alarm,
                    format!(
                        "its metric differs from alarm {first}'s; all scaling alarms must watch the same metric and period"
                    ),
                ));
            }
            metric.get_or_insert((backlog, queue, period_s, alarm.alarm_name.clone()));
            out.push(StepPolicy {
                name: policy.policy_name.clone(),
                tiers: steps.clone(),
                cooldown_s,
                alarm: AlarmSpec {
                    threshold,
                    comparison: comparison(alarm)?,
                    evaluation_periods,
                    period_s,
                    metric: alarm_math,
                },
            });
        }
    }
    let Some((backlog, queue, period_s, _)) = metric else {
        return Err(DeployedError::NothingToEvaluate {
            resource: target.resource_id.clone(),
        });
    };
    Ok(ScalingSetup {
        min_capacity,
        max_capacity,
        period_s,
        policies: out,
        backlog,
        queue_name: Some(queue),
    })
}

/// The response shapes, for fixtures (`aws … --output json` or SDK responses as JSON).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalableTargets {
    pub scalable_targets: Vec<ScalableTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeScalingPolicies {
    pub scaling_policies: Vec<ScalingPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarms {
    #[serde(default)]
    pub metric_alarms: Vec<MetricAlarm>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use czero_scaling::aws::{
        ScalingParams, guarded_scale_in_policy, scale_in_policy, scale_out_policy,
    };
    use pretty_assertions::assert_eq;

    /// The stack with `enable_fast_wake = true`: the scale-in alarm carries the guard.
    fn fast_wake_fixtures() -> (ScalableTarget, Vec<ScalingPolicy>, Vec<MetricAlarm>) {
        let (t, p, _) = fixtures();
        let a: DescribeAlarms =
            serde_json::from_str(include_str!("../fixtures/describe-alarms-fast-wake.json"))
                .unwrap();
        (t, p, a.metric_alarms)
    }

    fn scale_in_math(alarms: &mut [MetricAlarm]) -> &mut Option<String> {
        &mut alarms[1].metrics[0].expression
    }

    fn guard_metric(alarms: &mut [MetricAlarm]) -> &mut MetricStat {
        alarms[1].metrics[3].metric_stat.as_mut().unwrap()
    }

    #[test]
    fn fast_wake_stack_gives_the_guarded_scale_in() {
        let (t, p, a) = fast_wake_fixtures();
        let setup = assemble(&t, &p, &a).unwrap();
        let params = ScalingParams::default();
        let mut expected_out = scale_out_policy(&params);
        expected_out.name = "custodian-worker-scale-out".into();
        let mut expected_in = guarded_scale_in_policy(&params);
        expected_in.name = "custodian-worker-scale-in".into();
        assert_eq!(setup.policies, vec![expected_out, expected_in]);
        assert_eq!(setup.backlog, BacklogMetric::VISIBLE_AND_IN_FLIGHT);
        assert_eq!(setup.queue_name.as_deref(), Some("custodian-jobs"));
        assert_eq!(setup.period_s, 60);
        assert!(setup.has_scale_in_guard());
        // Without fast wake there is no guard.
        let (t, p, a) = fixtures();
        assert!(!assemble(&t, &p, &a).unwrap().has_scale_in_guard());
    }

    #[test]
    fn guard_is_parsed_not_matched_as_text() {
        // Spacing, case of the function names, ids and their order are free.
        for expr in [
            "IF(FILL(m3,0)>0,m1+m2,1)",
            "if ( fill ( m3 , 0 ) > 0 , m2 + m1 , 1 )",
            "IF((FILL(m3, 0)) > 0, (m1 + m2), 1)",
        ] {
            let (t, p, mut a) = fast_wake_fixtures();
            *scale_in_math(&mut a) = Some(expr.into());
            let setup = assemble(&t, &p, &a).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(
                setup.policies[1].alarm.metric,
                AlarmMetric::BacklogWhileRunning,
                "{expr}"
            );
        }
        // Other ids work as long as they name the right metrics.
        let (t, p, mut a) = fast_wake_fixtures();
        a[1].metrics[3].id = "tasks".into();
        *scale_in_math(&mut a) = Some("IF(FILL(tasks, 0) > 0, m1 + m2, 1)".into());
        assert!(assemble(&t, &p, &a).unwrap().has_scale_in_guard());
    }

    #[test]
    fn other_conditional_forms_are_rejected() {
        let unsupported = |expr: &str| {
            format!(
                "alarm custodian-worker-scale-in: metric math `{expr}` is not supported (expected a sum of metric ids, like `m1 + m2`, or the scale-in guard `IF(FILL(m3, 0) > 0, m1 + m2, 1)`)"
            )
        };
        for expr in [
            // Missing data would not read as "no task".
            "IF(m3 > 0, m1 + m2, 1)",
            "IF(FILL(m3, 1) > 0, m1 + m2, 1)",
            "IF(FILL(m3, 0) > 1, m1 + m2, 1)",
            // 0 when no task runs would be the unguarded alarm.
            "IF(FILL(m3, 0) > 0, m1 + m2, 0)",
            "IF(FILL(m3, 0) > 0, 1, m1 + m2)",
            "IF(FILL(m3, 0) > 0, m1 + m2)",
            "IF(FILL(m3, 0) > 0, m1 + m3, 1)",
            "MAX(FILL(m3, 0) > 0, m1 + m2, 1)",
            "IF(FILL(m3, 0) > 0, m1 + m2, 1) + 1",
            "IF(FILL(m3, 0) > 0, m1 + m2, 1",
            "m1 + m2 > 0",
            "m1 +",
            "",
        ] {
            let (t, p, mut a) = fast_wake_fixtures();
            *scale_in_math(&mut a) = Some(expr.into());
            assert_eq!(
                assemble(&t, &p, &a).unwrap_err().to_string(),
                unsupported(expr),
                "{expr}"
            );
        }
    }

    #[test]
    fn guard_metric_must_be_the_services_running_task_count() {
        let check = |edit: &dyn Fn(&mut [MetricAlarm]), expected: &str| {
            let (t, p, mut a) = fast_wake_fixtures();
            edit(&mut a);
            assert_eq!(assemble(&t, &p, &a).unwrap_err().to_string(), expected);
        };
        check(
            &|a| guard_metric(a).metric.metric_name = Some("DesiredTaskCount".into()),
            "alarm custodian-worker-scale-in: scale-in guard metric `m3` is Some(\"ECS/ContainerInsights\") Some(\"DesiredTaskCount\"), not ECS/ContainerInsights RunningTaskCount",
        );
        check(
            &|a| guard_metric(a).metric.namespace = Some("AWS/ECS".into()),
            "alarm custodian-worker-scale-in: scale-in guard metric `m3` is Some(\"AWS/ECS\") Some(\"RunningTaskCount\"), not ECS/ContainerInsights RunningTaskCount",
        );
        check(
            &|a| guard_metric(a).metric.dimensions[1].value = "other-service".into(),
            "alarm custodian-worker-scale-in: scale-in guard metric `m3` has dimensions [(\"ClusterName\", \"custodian-cluster\"), (\"ServiceName\", \"other-service\")]; expected ClusterName custodian-cluster and ServiceName custodian-worker (the scalable target's service)",
        );
        check(
            &|a| {
                guard_metric(a).metric.dimensions.pop();
            },
            "alarm custodian-worker-scale-in: scale-in guard metric `m3` has dimensions [(\"ClusterName\", \"custodian-cluster\")]; expected ClusterName custodian-cluster and ServiceName custodian-worker (the scalable target's service)",
        );
        check(
            &|a| guard_metric(a).stat = Some("Minimum".into()),
            "alarm custodian-worker-scale-in: scale-in guard metric `m3` uses the statistic Some(\"Minimum\"); expected Maximum (did any task run in the period)",
        );
        check(
            &|a| guard_metric(a).period = Some(300),
            "alarm custodian-worker-scale-in: metrics have different periods",
        );
        check(
            &|a| a[1].metrics[3].metric_stat = None,
            "alarm custodian-worker-scale-in: metric math refers to `m3`, which is not a metric",
        );
        // The guard's task count cannot stand in for a queue metric.
        check(
            &|a| *scale_in_math(a) = Some("IF(FILL(m1, 0) > 0, m3 + m2, 1)".into()),
            "alarm custodian-worker-scale-in: metric namespace Some(\"ECS/ContainerInsights\") is not AWS/SQS",
        );
    }

    fn fixtures() -> (ScalableTarget, Vec<ScalingPolicy>, Vec<MetricAlarm>) {
        let t: DescribeScalableTargets =
            serde_json::from_str(include_str!("../fixtures/describe-scalable-targets.json"))
                .unwrap();
        let p: DescribeScalingPolicies =
            serde_json::from_str(include_str!("../fixtures/describe-scaling-policies.json"))
                .unwrap();
        let a: DescribeAlarms =
            serde_json::from_str(include_str!("../fixtures/describe-alarms.json")).unwrap();
        (
            t.scalable_targets[0].clone(),
            p.scaling_policies,
            a.metric_alarms,
        )
    }

    #[test]
    fn terraform_stack_gives_the_standard_policies() {
        let (t, p, a) = fixtures();
        let setup = assemble(&t, &p, &a).unwrap();
        assert_eq!(
            (setup.min_capacity, setup.max_capacity, setup.period_s),
            (0, 10, 60)
        );
        assert_eq!(setup.backlog, BacklogMetric::VISIBLE_AND_IN_FLIGHT);
        assert_eq!(setup.queue_name.as_deref(), Some("custodian-jobs"));
        // Same tiers, cooldowns and alarms as the model's standard pair; only names differ.
        let params = ScalingParams::default();
        let mut expected_out = scale_out_policy(&params);
        expected_out.name = "custodian-worker-scale-out".into();
        let mut expected_in = scale_in_policy(&params);
        expected_in.name = "custodian-worker-scale-in".into();
        assert_eq!(setup.policies, vec![expected_out, expected_in]);
    }

    #[test]
    fn bounds_stay_relative_to_the_threshold() {
        let (t, mut p, mut a) = fixtures();
        // Move the scale-out alarm's threshold to 10: the same offsets now mean 10 more.
        a[0].threshold = Some(10.0);
        p.truncate(1);
        let setup = assemble(&t, &p, &a).unwrap();
        let policy = &setup.policies[0];
        assert_eq!(
            policy.tiers[1],
            StepTier {
                lower: Some(6.0),
                upper: Some(11.0),
                capacity: 2
            }
        );
        assert_eq!(policy.capacity_for(15.0), Some(1)); // offset 5
        assert_eq!(policy.capacity_for(16.0), Some(2)); // offset 6
        assert_eq!(policy.capacity_for(10.0), Some(1)); // offset 0: first step, lower inclusive
    }

    #[test]
    fn single_metric_alarm_on_visible_messages() {
        let (t, p, mut a) = fixtures();
        for alarm in &mut a {
            alarm.metrics.clear();
            alarm.namespace = Some("AWS/SQS".into());
            alarm.metric_name = Some("ApproximateNumberOfMessagesVisible".into());
            alarm.dimensions = vec![Dimension {
                name: "QueueName".into(),
                value: "q1".into(),
            }];
            alarm.period = Some(60);
        }
        a.truncate(2);
        let setup = assemble(&t, &p, &a).unwrap();
        assert_eq!(
            setup.backlog,
            BacklogMetric {
                visible: true,
                not_visible: false,
                delayed: false
            }
        );
        assert_eq!(setup.queue_name.as_deref(), Some("q1"));
    }

    #[test]
    fn unsupported_shapes_are_errors() {
        let (t, p, a) = fixtures();
        let check = |p: &[ScalingPolicy], a: &[MetricAlarm], expected: &str| {
            assert_eq!(assemble(&t, p, a).unwrap_err().to_string(), expected);
        };
        let mut p2 = p.clone();
        if let Some(c) = p2[0].step_scaling_policy_configuration.as_mut() {
            c.adjustment_type = Some("ChangeInCapacity".into());
        }
        check(
            &p2,
            &a,
            "policy custodian-worker-scale-out: AdjustmentType Some(\"ChangeInCapacity\") is not supported (only ExactCapacity)",
        );
        let mut a2 = a.clone();
        a2[1].datapoints_to_alarm = Some(3);
        check(
            &p,
            &a2,
            "alarm custodian-worker-scale-in: DatapointsToAlarm 3 of EvaluationPeriods 5 is not supported (only N of N)",
        );
        let mut a3 = a.clone();
        a3[0].metrics[0].expression = Some("m1 * 2".into());
        check(
            &p,
            &a3,
            "alarm custodian-worker-scale-out: metric math `m1 * 2` is not supported (expected a sum of metric ids, like `m1 + m2`, or the scale-in guard `IF(FILL(m3, 0) > 0, m1 + m2, 1)`)",
        );
        check(
            &p,
            &a[2..],
            "no step scaling policy of service/custodian-cluster/custodian-worker is invoked by an alarm: nothing to evaluate",
        );
        let mut a4 = a.clone();
        a4[1].metrics[1].metric_stat.as_mut().unwrap().period = Some(300);
        a4[1].metrics[2].metric_stat.as_mut().unwrap().period = Some(300);
        check(
            &p,
            &a4,
            "alarm custodian-worker-scale-in: its metric differs from alarm custodian-worker-scale-out's; all scaling alarms must watch the same metric and period",
        );
    }

    #[test]
    fn unrelated_alarms_and_disabled_actions_are_ignored() {
        let (t, p, mut a) = fixtures();
        a[1].actions_enabled = Some(false);
        let setup = assemble(&t, &p, &a).unwrap();
        assert_eq!(setup.policies.len(), 1);
        assert_eq!(setup.policies[0].name, "custodian-worker-scale-out");
    }
}
