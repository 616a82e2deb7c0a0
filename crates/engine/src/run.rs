//! One policy run: resolve the event to bucket names, fetch and augment, filter, act,
//! and write c7n's output files.

use crate::calls::Calls;
use crate::kms::Kms;
use crate::s3::{self, Extras, actions};
use crate::{ActionReport, Engine, EngineError, Executor, Output, RunReport, fallback};
use chrono::{DateTime, Utc};
use czero_policy::{Fetched, Inputs, KmsKeys, MaxResources, Mode, Policy, Prefetched};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
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
    /// List every bucket (pull mode, or no event given).
    Scan,
    /// Only these buckets (event modes).
    Ids(Vec<String>),
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
    pub executor: Executor,
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
            "executor": match m.executor { Executor::Native => "native", Executor::Fallback => "custodian" },
        },
        "api-stats": m.api_stats,
        "metrics": m.metrics,
    });
    serde_json::to_vec_pretty(&md).unwrap_or_default()
}

/// A bucket ARN (`arn:aws:s3:::name`, as Security Hub names buckets) to its name.
fn bucket_id(id: &str) -> String {
    id.strip_prefix("arn:aws:s3:::").unwrap_or(id).to_string()
}

/// The first feature of `policy` the native engine cannot run, if any.
pub(crate) fn native_gap(policy: &Policy) -> Option<String> {
    policy.native_gap().map(|u| u.to_string())
}

impl Engine {
    /// Runs `policy`. With an event, an event-mode policy touches only the buckets the
    /// event names; an event that does not match the policy's mode is a no-op (logged).
    /// A pull-mode policy scans every bucket whether or not an event is given, as
    /// `custodian run` does; so does an event-mode policy run without an event.
    pub async fn run(
        &self,
        policy: &Policy,
        event: Option<&Value>,
        output: &Output,
    ) -> Result<RunReport, EngineError> {
        let started = Instant::now();
        let started_at = Utc::now();
        let execution_id = uuid::Uuid::new_v4().to_string();
        let mut log = RunLog::default();
        let noop = |reason: String| {
            tracing::info!(policy = %policy.name, "{reason}");
            RunReport {
                policy: policy.name.clone(),
                resource_type: policy.resource.clone(),
                resources: Vec::new(),
                actions: Vec::new(),
                duration: started.elapsed(),
                executor: Executor::Native,
                output_location: String::new(),
                execution_id: execution_id.clone(),
            }
        };

        let scope = match (&policy.mode, event) {
            (Mode::Pull, _) | (_, None) => {
                if event.is_none() && !matches!(policy.mode, Mode::Pull) {
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
            (mode, Some(ev)) => {
                if !czero_policy::matches_event(mode, ev) {
                    return Ok(noop(format!(
                        "policy:{} event does not match the policy's mode: nothing to do",
                        policy.name
                    )));
                }
                let ids = policy.resource_ids(ev).map_err(|e| EngineError::Policy {
                    policy: policy.name.clone(),
                    message: format!("event: {e}"),
                })?;
                let mut names: Vec<String> = Vec::new();
                for id in ids.iter().map(|i| bucket_id(i)) {
                    if !id.is_empty() && !names.contains(&id) {
                        names.push(id);
                    }
                }
                log.info("custodian.policy", format!("Found resource ids:{names:?}"));
                if names.is_empty() {
                    return Ok(noop(format!(
                        "policy:{} could not find resource ids in the event",
                        policy.name
                    )));
                }
                Scope::Ids(names)
            }
        };

        if let Some(feature) = native_gap(policy) {
            return fallback::run(
                self,
                policy,
                scope,
                output,
                &feature,
                started,
                started_at,
                execution_id,
            )
            .await;
        }
        self.run_native(
            policy,
            scope,
            event,
            output,
            started,
            started_at,
            execution_id,
            log,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_native(
        &self,
        policy: &Policy,
        scope: Scope,
        event: Option<&Value>,
        output: &Output,
        started: Instant,
        started_at: DateTime<Utc>,
        execution_id: String,
        mut log: RunLog,
    ) -> Result<RunReport, EngineError> {
        let calls = Calls::default();
        let s3 = self.s3.with_calls(calls.clone());
        let kms = self.kms.with_calls(calls);
        let name = policy.name.clone();
        let aws_err = |error: s3::ApiError| EngineError::Aws {
            policy: name.clone(),
            error: Box::new(error),
        };
        let mut metrics = Metrics::default();
        let event_mode = matches!(scope, Scope::Ids(_));

        let t0 = Instant::now();
        let keys = s3::augment_keys(policy.augment_keys.as_deref());
        let needs = policy.needs();
        let extras = Extras {
            bucket_encryption: needs.bucket_encryption,
            public_access_block: needs.public_access_block,
        };
        let buckets = match scope {
            Scope::Ids(ids) => ids.into_iter().map(|n| json!({ "Name": n })).collect(),
            Scope::Scan => s3.list_buckets().await.map_err(aws_err)?,
        };
        let fetched = buckets.len();
        let buckets = s3
            .augment_all(buckets, &keys, extras)
            .await
            .map_err(aws_err)?;
        let kms_keys = resolve_filter_keys(&kms, policy, &buckets).await?;
        let now = Utc::now();
        let mut matched = Vec::new();
        for (mut b, prefetched) in buckets {
            if prefetched.bucket_encryption == Some(Fetched::Denied) {
                // c7n's bucket-encryption filter logs the error and leaves the bucket out.
                log.warn(
                    "custodian.filters",
                    format!(
                        "bucket {}: GetBucketEncryption access denied: bucket-encryption does not match it",
                        s3::bucket_name(&b)
                    ),
                );
            }
            let inputs = Inputs {
                now,
                // `type: event` filters see the triggering event in event modes; in a scan
                // there is none and they pass, as c7n's EventFilter does.
                event: if event_mode { event } else { None },
                prefetched: &prefetched,
                kms_keys: &kms_keys,
            };
            let mut ok = true;
            // In order, stopping at the first miss, annotating as c7n's filters do.
            for f in &policy.filters {
                let hit = f
                    .process(&mut b, &inputs)
                    .map_err(|e| EngineError::Policy {
                        policy: name.clone(),
                        message: format!("filter on bucket {}: {e}", s3::bucket_name(&b)),
                    })?;
                if !hit {
                    ok = false;
                    break;
                }
            }
            if ok {
                matched.push(b);
            }
        }
        let rt = t0.elapsed().as_secs_f64();
        log.info(
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
            log.error("custodian.policy", message.clone());
            return Err(EngineError::Policy {
                policy: name.clone(),
                message,
            });
        }
        let ids: Vec<String> = matched.iter().map(s3::bucket_name).collect();

        // c7n's push modes write nothing when no resource matched.
        if event_mode && matched.is_empty() {
            log.info(
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
        if dryrun || matched.is_empty() {
            if dryrun && !matched.is_empty() {
                log.info("custodian.policy", "dryrun: skipping actions".into());
                for a in &raw_actions {
                    let (t, _) = actions::action_data(a);
                    log.info(
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
            }
        } else {
            let args = actions::FormatArgs {
                account_id: std::env::var("AWS_ACCOUNT_ID")
                    .ok()
                    .filter(|s| !s.is_empty()),
                region: self.region.clone(),
                now: Utc::now(),
                kms_key_arns: HashMap::new(),
            };
            let at = Instant::now();
            for a in &raw_actions {
                let (t, data) = actions::action_data(a);
                let class = actions::class_name(&t).unwrap_or("action").to_lowercase();
                let s = Instant::now();
                log.info(
                    "custodian.policy",
                    format!(
                        "policy:{name} invoking action:{class} resources:{}",
                        matched.len()
                    ),
                );
                let mut args = args.clone();
                let mut unresolved: Vec<String> = Vec::new();
                if let Some(key) = action_kms_key(&t, &data) {
                    // c7n resolves the key once per bucket region before acting; a key it
                    // cannot resolve fails every bucket of that region: one error, here.
                    let mut regions: Vec<String> = matched.iter().map(s3::bucket_region).collect();
                    regions.sort();
                    regions.dedup();
                    for region in regions {
                        match kms.describe_key(key, &region).await {
                            Ok(k) => {
                                args.kms_key_arns.insert(region, k.arn);
                            }
                            Err(e) => {
                                log.error(
                                    "custodian.actions",
                                    format!("policy:{name} action:{t} {e}: no bucket in {region} changed"),
                                );
                                if failure.is_none() {
                                    failure = Some(EngineError::Kms {
                                        policy: name.clone(),
                                        context: t.clone(),
                                        error: Box::new(e),
                                    });
                                }
                                unresolved.push(region);
                            }
                        }
                    }
                }
                let outcomes: Vec<Option<actions::Outcome>> =
                    futures::stream::iter(matched.iter_mut())
                        .map(|b| {
                            let (s3, t, data, args) = (&s3, &t, &data, &args);
                            let skip = unresolved.contains(&s3::bucket_region(b));
                            async move {
                                if skip {
                                    None
                                } else {
                                    Some(actions::run(s3, t, data, b, args).await)
                                }
                            }
                        })
                        .buffered(3)
                        .collect()
                        .await;
                let mut results = Vec::new();
                let mut failed = 0;
                for (o, b) in outcomes.into_iter().zip(&ids) {
                    let Some(o) = o else {
                        // Already reported with the KMS error.
                        failed += 1;
                        continue;
                    };
                    match o {
                        Ok(Some(v)) => results.push(v),
                        Ok(None) => {}
                        Err(e) => {
                            failed += 1;
                            log.error(
                                "custodian.actions",
                                format!("error modifying bucket: policy:{name} action:{t} bucket:{b} error:{e}"),
                            );
                            if failure.is_none() {
                                failure = Some(EngineError::Action {
                                    policy: name.clone(),
                                    action: t.clone(),
                                    failed: 0,
                                    first: e.to_string(),
                                    retryable: e.retryable,
                                });
                            }
                            if let Some(EngineError::Action {
                                action,
                                failed: f,
                                retryable,
                                ..
                            }) = &mut failure
                            {
                                if *action == t {
                                    *f += 1;
                                }
                                *retryable |= e.retryable;
                            }
                        }
                    }
                }
                log.info(
                    "custodian.policy",
                    format!(
                        "policy:{name} action:{class} resources:{} execution_time:{:.2}",
                        matched.len(),
                        s.elapsed().as_secs_f64()
                    ),
                );
                // c7n's return value: a list for these three, None for the others. Pull mode
                // writes the file only when it is truthy; push modes always write it.
                let returns_list = matches!(
                    t.as_str(),
                    "delete-global-grants" | "set-statements" | "delete"
                );
                let body = if returns_list {
                    Value::Array(results)
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
                    resources: matched.len(),
                    failed,
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
            api_stats: s3.calls.snapshot(),
            metrics: metrics.0,
            executor: Executor::Native,
        });
        files.push(("metadata.json".into(), md));
        files.push(("custodian-run.log".into(), log.text().into_bytes()));
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
        })
    }
}

/// The KMS keys the policy's `bucket-encryption` filters compare against, resolved in every
/// region the buckets are in (DescribeKey and ListAliases, as c7n's `resolve_keys`). c7n
/// logs a key it cannot resolve and matches as if no bucket used it; a policy naming a key
/// that does not exist is an error here, naming the key and the policy.
async fn resolve_filter_keys(
    kms: &Kms,
    policy: &Policy,
    buckets: &[(Value, Prefetched)],
) -> Result<KmsKeys, EngineError> {
    let mut out = KmsKeys::default();
    let keys = policy.filter_kms_keys();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut regions: Vec<String> = buckets.iter().map(|(b, _)| s3::bucket_region(b)).collect();
    regions.sort();
    regions.dedup();
    for key in &keys {
        for region in &regions {
            let k = kms
                .resolve(key, region)
                .await
                .map_err(|e| EngineError::Kms {
                    policy: policy.name.clone(),
                    context: "filter bucket-encryption".into(),
                    error: Box::new(e),
                })?;
            out.insert(key, region, k);
        }
    }
    Ok(out)
}

/// The key `set-bucket-encryption` must resolve before it acts: c7n resolves it only when
/// the action enables encryption, and reads it for `crypto: aws:kms`.
fn action_kms_key<'a>(action: &str, data: &'a serde_json::Map<String, Value>) -> Option<&'a str> {
    let enabled = data.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let kms = data.get("crypto").and_then(Value::as_str) == Some("aws:kms");
    if action != "set-bucket-encryption" || !enabled || !kms {
        return None;
    }
    data.get("key").and_then(Value::as_str)
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
    fn bucket_arns_become_names() {
        assert_eq!(bucket_id("arn:aws:s3:::my-bucket"), "my-bucket");
        assert_eq!(bucket_id("my-bucket"), "my-bucket");
    }

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
