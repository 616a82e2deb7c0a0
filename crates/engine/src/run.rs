//! One policy run: resolve the event to bucket names, fetch and augment, filter, act,
//! and write c7n's output files.

use crate::calls::Calls;
use crate::resources::s3::actions;
use crate::resources::{Provider, RunCx, with_provider};
use crate::{ActionReport, Engine, EngineError, Executor, Output, RunReport, driver};
use chrono::{DateTime, Utc};
use czero_policy::{MaxResources, Mode, Policy};
use serde_json::{Value, json};
use std::time::Instant;

/// The run's `custodian-run.log`, in c7n's format
/// (`%(asctime)s - %(name)s - %(levelname)s - %(message)s`); lines also go to tracing.
#[derive(Debug, Default)]
pub(crate) struct RunLog(Vec<String>);

impl RunLog {
    pub(crate) fn info(&mut self, name: &str, msg: String) {
        tracing::info!(target: "czero_engine", logger = name, "{msg}");
        self.push(name, "INFO", msg);
    }
    pub(crate) fn warn(&mut self, name: &str, msg: String) {
        tracing::warn!(target: "czero_engine", logger = name, "{msg}");
        self.push(name, "WARNING", msg);
    }
    pub(crate) fn error(&mut self, name: &str, msg: String) {
        tracing::error!(target: "czero_engine", logger = name, "{msg}");
        self.push(name, "ERROR", msg);
    }
    fn push(&mut self, name: &str, level: &str, msg: String) {
        let t = Utc::now().format("%Y-%m-%d %H:%M:%S,%3f");
        self.0.push(format!("{t} - {name} - {level} - {msg}"));
    }
    pub(crate) fn text(&self) -> String {
        let mut s = self.0.join("\n");
        s.push('\n');
        s
    }
}

/// c7n's metric records (namespace `CloudMaid`), kept for `metadata.json`.
#[derive(Debug, Default)]
pub(crate) struct Metrics(Vec<Value>);

impl Metrics {
    pub(crate) fn put(&mut self, policy: &Policy, name: &str, value: f64, unit: &str) {
        self.0.push(json!({
            "MetricName": name,
            "Timestamp": Utc::now().to_rfc3339(),
            "Value": value,
            "Unit": unit,
            "Dimensions": [
                {"Name": "Policy", "Value": policy.name},
                {"Name": "ResType", "Value": policy.resource},
                {"Name": "Scope", "Value": "Policy"},
            ],
        }));
    }
}

/// How the run's resources are chosen.
pub(crate) enum Scope {
    /// List every resource (pull mode, a scheduled scan, or no event given).
    Scan,
    /// Only these resources (event modes run natively).
    Ids(Vec<String>),
    /// Whatever the event names, resolved by Cloud Custodian's own mode (the driver).
    Event,
}

/// A mode for messages: `cloudtrail [CreateBucket]`, `hub-finding`.
fn describe_mode(mode: &Mode) -> String {
    match mode {
        Mode::CloudTrail { events } => {
            let names: Vec<&str> = events
                .iter()
                .map(|e| e.short_name.as_deref().unwrap_or(&e.event))
                .collect();
            format!("cloudtrail [{}]", names.join(", "))
        }
        other => other.name().to_string(),
    }
}

/// An event for messages: its eventName for CloudTrail, else its detail-type.
fn event_label(ev: &Value) -> String {
    ev.get("detail")
        .and_then(|d| d.get("eventName"))
        .or_else(|| ev.get("detail-type"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

/// Everything a finished run needs to write `metadata.json`.
pub(crate) struct RunMeta<'a> {
    pub policy: &'a Policy,
    pub execution_id: &'a str,
    pub started_at: DateTime<Utc>,
    pub region: &'a str,
    pub dryrun: bool,
    pub location: &'a str,
    pub api_stats: Value,
    pub metrics: Vec<Value>,
}

pub(crate) fn metadata(m: &RunMeta<'_>) -> Vec<u8> {
    let start = m.started_at.timestamp_micros() as f64 / 1e6;
    let end = Utc::now().timestamp_micros() as f64 / 1e6;
    let md = json!({
        "policy": m.policy.raw,
        "version": concat!("czero-", env!("CARGO_PKG_VERSION")),
        "execution": {
            "id": m.execution_id,
            "start": start,
            "end_time": end,
            "duration": end - start,
        },
        "config": {
            "region": m.region,
            "regions": [m.region],
            "dryrun": m.dryrun,
            "output_dir": m.location,
            "cache_period": 0,
        },
        // Which executor ran the policy; Cloud Custodian's runs (the driver) write
        // `{"name": "c7n-driver", "c7n": <version>, "mode": <mode>}` here.
        "executor": {"name": "czero-native", "version": env!("CARGO_PKG_VERSION")},
        "api-stats": m.api_stats,
        "metrics": m.metrics,
    });
    serde_json::to_vec_pretty(&md).unwrap_or_default()
}

/// The first feature of `policy` the native engine cannot run, if any.
pub(crate) fn native_gap(policy: &Policy) -> Option<String> {
    policy.native_gap().map(|u| u.to_string())
}

impl Engine {
    /// Runs `policy`. With an event, an event-mode policy touches only the resources the
    /// event names; a policy whose mode does not subscribe to the event is skipped (the
    /// report says why); a policy without an event mode refuses an event. Without an event
    /// every policy scans, as `custodian run` does. What the native engine cannot run goes
    /// to Cloud Custodian through the driver.
    pub async fn run(
        &self,
        policy: &Policy,
        event: Option<&Value>,
        output: &Output,
    ) -> Result<RunReport, EngineError> {
        self.run_job(policy, event, output, None).await
    }

    /// [`Engine::run`] for a job: its id reaches the driver's logs.
    pub async fn run_job(
        &self,
        policy: &Policy,
        event: Option<&Value>,
        output: &Output,
        job_id: Option<&str>,
    ) -> Result<RunReport, EngineError> {
        let started = Instant::now();
        let started_at = Utc::now();
        let execution_id = uuid::Uuid::new_v4().to_string();
        let mut log = RunLog::default();
        let skip = |reason: String| {
            tracing::warn!(policy = %policy.name, reason = %reason, "policy skipped");
            RunReport {
                policy: policy.name.clone(),
                resource_type: policy.resource.clone(),
                resources: Vec::new(),
                actions: Vec::new(),
                duration: started.elapsed(),
                executor: Executor::Native,
                output_location: String::new(),
                execution_id: execution_id.clone(),
                skipped: Some(reason),
            }
        };

        let scope = match event {
            None => {
                if policy.mode.is_event_mode() {
                    log.warn(
                        "custodian.policy",
                        format!(
                            "policy:{} no event given: scanning as pull mode",
                            policy.name
                        ),
                    );
                }
                Scope::Scan
            }
            // A policy without an event mode would scan and act on every resource of its
            // type for one event (one finding on one bucket marking every bucket): refuse.
            Some(_) if matches!(policy.mode, Mode::Pull) => {
                return Err(EngineError::Policy {
                    policy: policy.name.clone(),
                    message: "has no event mode (pull): refusing to scan every resource for one event; give it an event mode or run it without an event".into(),
                });
            }
            Some(_) if matches!(policy.mode, Mode::ConfigPollRule) => {
                return Err(EngineError::UnsupportedMode {
                    policy: policy.name.clone(),
                    mode: "config-poll-rule".into(),
                    message: "it reports evaluations to AWS Config on AWS Config's own schedule, with a result token only AWS Config's invocation carries; no event can drive it (use mode periodic for a scheduled scan)".into(),
                });
            }
            Some(ev) => {
                if !czero_policy::matches_event(&policy.mode, ev) {
                    return Ok(skip(format!(
                        "mode {} does not subscribe to this event ({} {})",
                        describe_mode(&policy.mode),
                        ev.get("source").and_then(Value::as_str).unwrap_or("?"),
                        event_label(ev),
                    )));
                }
                if !policy.mode.is_event_mode() {
                    // periodic and schedule: the scheduled event starts a scan.
                    Scope::Scan
                } else if policy.native_gap().is_some() {
                    // Cloud Custodian resolves the event itself (the driver runs its push).
                    Scope::Event
                } else {
                    let ids = policy.resource_ids(ev).map_err(|e| EngineError::Policy {
                        policy: policy.name.clone(),
                        message: format!("event: {e}"),
                    })?;
                    let mut names: Vec<String> = Vec::new();
                    for id in ids {
                        if !id.is_empty() && !names.contains(&id) {
                            names.push(id);
                        }
                    }
                    log.info("custodian.policy", format!("Found resource ids:{names:?}"));
                    if names.is_empty() {
                        return Ok(skip(format!(
                            "the event names no {} resource",
                            policy.resource
                        )));
                    }
                    Scope::Ids(names)
                }
            }
        };

        let start = Start {
            scope,
            event,
            output,
            started,
            started_at,
            execution_id,
            log,
        };
        if let Some(feature) = native_gap(policy) {
            let job_id = job_id.unwrap_or(&start.execution_id).to_string();
            return driver::run(self, policy, start, &job_id, &feature).await;
        }
        with_provider!(
            self.providers,
            &policy.resource,
            |p| self.run_native(p, policy, start).await,
            Err(EngineError::Policy {
                policy: policy.name.clone(),
                message: format!("resource {} has no native provider", policy.resource),
            })
        )
    }

    async fn run_native<P: Provider>(
        &self,
        provider: &P,
        policy: &Policy,
        start: Start<'_>,
    ) -> Result<RunReport, EngineError> {
        let Start {
            scope,
            event,
            output,
            started,
            started_at,
            execution_id,
            log,
        } = start;
        let name = policy.name.clone();
        let event_mode = !matches!(scope, Scope::Scan);
        let account_id = self.account_id();
        let mut cx = RunCx {
            policy,
            // `type: event` filters see the triggering event in event modes only.
            event: if event_mode { event } else { None },
            region: &self.region,
            account_id: account_id.as_deref(),
            now: Utc::now(),
            calls: Calls::default(),
            log,
        };
        let mut metrics = Metrics::default();

        let t0 = Instant::now();
        let resources = match scope {
            Scope::Ids(ids) => provider.get_resources(&cx, ids).await?,
            Scope::Scan => provider.list(&cx).await?,
            // A native policy's event is always resolved to ids above.
            Scope::Event => Vec::new(),
        };
        let fetched = resources.len();
        let mut matched = provider.filter(&mut cx, resources).await?;
        let rt = t0.elapsed().as_secs_f64();
        cx.log.info(
            "custodian.policy",
            format!(
                "policy:{} resource:{} region:{} count:{} time:{:.2}",
                name,
                policy.resource,
                self.region,
                matched.len(),
                rt
            ),
        );
        tracing::debug!(policy = %name, fetched, matched = matched.len(), "filtered");
        if let Some(message) = resource_limit(policy, fetched, matched.len()) {
            cx.log.error("custodian.policy", message.clone());
            return Err(EngineError::Policy {
                policy: name.clone(),
                message,
            });
        }
        let ids: Vec<String> = matched.iter().map(|r| provider.id(r)).collect();

        // c7n's push modes write nothing when no resource matched.
        if event_mode && matched.is_empty() {
            cx.log.info(
                "custodian.policy",
                format!(
                    "policy:{} resources:{} no resources matched",
                    name, policy.resource
                ),
            );
            return Ok(RunReport {
                policy: name.clone(),
                resource_type: policy.resource.clone(),
                resources: ids,
                actions: Vec::new(),
                duration: started.elapsed(),
                executor: Executor::Native,
                output_location: String::new(),
                execution_id,
                skipped: None,
            });
        }

        metrics.put(policy, "ResourceCount", matched.len() as f64, "Count");
        if !event_mode {
            metrics.put(policy, "ResourceTime", rt, "Seconds");
        }
        let mut files: Vec<(String, Vec<u8>)> = vec![(
            "resources.json".into(),
            serde_json::to_vec_pretty(&matched).unwrap_or_default(),
        )];

        let raw_actions: Vec<Value> = policy
            .raw
            .get("actions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut reports = Vec::new();
        let mut failure: Option<EngineError> = None;
        let dryrun = self.options.dryrun;
        if dryrun && !matched.is_empty() {
            cx.log
                .info("custodian.policy", "dryrun: skipping actions".into());
            for a in &raw_actions {
                let (t, _) = actions::action_data(a);
                cx.log.info(
                    "custodian.policy",
                    format!(
                        "dryrun: policy:{name} action:{t} would run on resources:{}",
                        matched.len()
                    ),
                );
                reports.push(ActionReport {
                    action: t,
                    resources: matched.len(),
                    failed: 0,
                    dryrun: true,
                });
            }
        } else if !matched.is_empty() {
            let at = Instant::now();
            for a in &raw_actions {
                let (t, data) = actions::action_data(a);
                let s = Instant::now();
                let count = matched.len();
                let class = provider.class_name(&t).to_lowercase();
                cx.log.info(
                    "custodian.policy",
                    format!("policy:{name} invoking action:{class} resources:{count}"),
                );
                let run = provider.act(&mut cx, &t, &data, &mut matched).await;
                for (id, f) in &run.failures {
                    if run.error.is_none() || !f.message.starts_with("KMS key not resolved") {
                        cx.log.error(
                            "custodian.actions",
                            format!(
                                "error modifying resource: policy:{name} action:{t} resource:{id} error:{}",
                                f.message
                            ),
                        );
                    }
                }
                if failure.is_none() {
                    failure = run.error.or_else(|| {
                        run.failures.first().map(|(_, f)| EngineError::Action {
                            policy: name.clone(),
                            action: t.clone(),
                            failed: run.failures.len(),
                            first: f.message.clone(),
                            retryable: run.failures.iter().any(|(_, f)| f.retryable),
                        })
                    });
                }
                cx.log.info(
                    "custodian.policy",
                    format!(
                        "policy:{name} action:{class} resources:{count} execution_time:{:.2}",
                        s.elapsed().as_secs_f64()
                    ),
                );
                // Pull mode writes the file only when the return value is truthy; push
                // modes always write it.
                let body = if run.returns_list {
                    Value::Array(run.results)
                } else {
                    Value::Null
                };
                let truthy = body.as_array().is_some_and(|a| !a.is_empty());
                if event_mode || truthy {
                    files.push((
                        format!("action-{class}"),
                        serde_json::to_vec(&body).unwrap_or_default(),
                    ));
                }
                reports.push(ActionReport {
                    action: t,
                    resources: count,
                    failed: run.failures.len(),
                    dryrun: false,
                });
            }
            if !event_mode {
                metrics.put(policy, "ActionTime", at.elapsed().as_secs_f64(), "Seconds");
            }
        }

        let location = output.location(&name, started_at);
        let md = metadata(&RunMeta {
            policy,
            execution_id: &execution_id,
            started_at,
            region: &self.region,
            dryrun,
            location: &location,
            api_stats: cx.calls.snapshot(),
            metrics: metrics.0,
        });
        files.push(("metadata.json".into(), md));
        files.push(("custodian-run.log".into(), cx.log.text().into_bytes()));
        let output_location = output.write(&self.s3, &name, started_at, &files).await?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(RunReport {
            policy: name,
            resource_type: policy.resource.clone(),
            resources: ids,
            actions: reports,
            duration: started.elapsed(),
            executor: Executor::Native,
            output_location,
            execution_id,
            skipped: None,
        })
    }
}

/// What `run` decided before handing over to an executor.
pub(crate) struct Start<'a> {
    pub scope: Scope,
    pub event: Option<&'a Value>,
    pub output: &'a Output,
    pub started: Instant,
    pub started_at: DateTime<Utc>,
    pub execution_id: String,
    pub log: RunLog,
}

/// c7n's `max-resources`: an amount, or `{amount, percent, op}` where `op: or` (default)
/// fails when either limit is exceeded and `op: and` only when both are.
fn resource_limit(policy: &Policy, population: usize, selected: usize) -> Option<String> {
    let spec = policy.max_resources.as_ref()?;
    let (amount, percent, op) = match spec {
        MaxResources::Amount(n) => (Some(*n), None, "or"),
        MaxResources::Spec {
            amount,
            percent,
            op,
        } => (*amount, *percent, op.as_str()),
    };
    let over_amount = amount.map(|a| selected as u64 > a);
    let over_percent =
        percent.map(|p| population > 0 && (selected as f64) > population as f64 * p / 100.0);
    let exceeded = match (over_amount, over_percent) {
        (Some(a), Some(p)) if op == "and" => a && p,
        (a, p) => a.unwrap_or(false) || p.unwrap_or(false),
    };
    exceeded.then(|| {
        format!("max-resources exceeded: {selected} of {population} resources matched ({spec:?})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_log_uses_c7n_format() {
        let mut l = RunLog::default();
        l.info("custodian.policy", "policy:p resource:s3 count:1".into());
        let text = l.text();
        let re = regex_lite(&text);
        assert!(re, "{text}");
    }

    fn regex_lite(line: &str) -> bool {
        // YYYY-MM-DD HH:MM:SS,mmm - name - LEVEL - message
        let parts: Vec<&str> = line.trim_end().splitn(4, " - ").collect();
        parts.len() == 4
            && parts[0].len() == 23
            && &parts[0][19..20] == ","
            && parts[1] == "custodian.policy"
            && parts[2] == "INFO"
    }
}
