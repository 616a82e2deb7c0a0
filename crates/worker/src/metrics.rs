//! Metrics as CloudWatch Embedded Metric Format (EMF) records, one JSON line each on stdout.
//!
//! CloudWatch Logs turns each record into metric datapoints, so the worker needs no
//! `PutMetricData` permission and makes no API call per job. The formatting is pure
//! ([`record`]); [`Metrics`] only writes the lines.
//!
//! Namespaces: the design document's `CloudCustodian/FargateWorker` (service-wide, no
//! dimensions) and `CloudCustodian/PolicyExecution`, and c7n's own `CloudMaid`, both with
//! the `Policy` and `ResType` dimensions.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const WORKER_NAMESPACE: &str = "CloudCustodian/FargateWorker";
pub const POLICY_NAMESPACE: &str = "CloudCustodian/PolicyExecution";
pub const CLOUDMAID_NAMESPACE: &str = "CloudMaid";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One metric value in a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    pub unit: Unit,
}

/// An EMF record: one namespace, one dimension set, its metrics and the timestamp.
pub fn record(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Metric<'_>],
    timestamp_ms: u64,
) -> Value {
    let mut root = Map::new();
    let dimension_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_names],
                "Metrics": definitions,
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::String((*v).into()));
    }
    for m in metrics {
        root.insert(m.name.into(), json!(m.value));
    }
    Value::Object(root)
}

/// What one policy run produced, as the metrics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyMetrics<'a> {
    pub policy: &'a str,
    pub resource_type: &'a str,
    pub resources: usize,
    pub actions_taken: usize,
    /// The whole run.
    pub duration: Duration,
    /// Time spent fetching and filtering resources (c7n's `ResourceTime`), when known.
    pub resource_time: Option<Duration>,
    /// Time spent in actions (c7n's `ActionTime`), when known.
    pub action_time: Option<Duration>,
}

/// The two records a policy run produces: the design document's `PolicyExecution` and
/// c7n's `CloudMaid`.
pub fn policy_records(p: &PolicyMetrics<'_>, timestamp_ms: u64) -> [Value; 2] {
    let dims = [("Policy", p.policy), ("ResType", p.resource_type)];
    // c7n's timings are reported only when the runner measured them: a made-up split of
    // the run's duration would be worse than no datapoint.
    let mut cloudmaid = vec![Metric {
        name: "ResourceCount",
        value: p.resources as f64,
        unit: Unit::Count,
    }];
    for (name, t) in [
        ("ResourceTime", p.resource_time),
        ("ActionTime", p.action_time),
    ] {
        if let Some(t) = t {
            cloudmaid.push(Metric {
                name,
                value: t.as_secs_f64(),
                unit: Unit::Seconds,
            });
        }
    }
    [
        record(
            POLICY_NAMESPACE,
            &dims,
            &[
                Metric {
                    name: "ExecutionTime",
                    value: p.duration.as_secs_f64() * 1000.0,
                    unit: Unit::Milliseconds,
                },
                Metric {
                    name: "ResourcesProcessed",
                    value: p.resources as f64,
                    unit: Unit::Count,
                },
                Metric {
                    name: "ActionsTaken",
                    value: p.actions_taken as f64,
                    unit: Unit::Count,
                },
            ],
            timestamp_ms,
        ),
        record(CLOUDMAID_NAMESPACE, &dims, &cloudmaid, timestamp_ms),
    ]
}

/// A service-wide worker counter (`MessagesReceived`, `ProcessingSuccesses`,
/// `ProcessingFailures`).
pub fn worker_record(name: &str, value: u64, timestamp_ms: u64) -> Value {
    record(
        WORKER_NAMESPACE,
        &[],
        &[Metric {
            name,
            value: value as f64,
            unit: Unit::Count,
        }],
        timestamp_ms,
    )
}

/// Writes EMF records, one line each, to stdout (or any writer in tests).
pub struct Metrics {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn stdout() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }

    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Metrics {
            out: Mutex::new(out),
        }
    }

    pub fn messages_received(&self, n: usize) {
        self.emit(&worker_record("MessagesReceived", n as u64, now_ms()));
    }

    pub fn processed(&self, success: bool) {
        let name = if success {
            "ProcessingSuccesses"
        } else {
            "ProcessingFailures"
        };
        self.emit(&worker_record(name, 1, now_ms()));
    }

    /// A copy of a job that already ran, dropped (the ledger said `done`).
    pub fn duplicate(&self) {
        self.emit(&worker_record("DuplicatesSuppressed", 1, now_ms()));
    }

    /// A message sent to the DLQ at once because no retry could succeed.
    pub fn dead_lettered(&self) {
        self.emit(&worker_record("MessagesDeadLettered", 1, now_ms()));
    }

    pub fn policy(&self, p: &PolicyMetrics<'_>) {
        for r in policy_records(p, now_ms()) {
            self.emit(&r);
        }
    }

    fn emit(&self, record: &Value) {
        // One write per line under the lock, so concurrent jobs never interleave records.
        let line = format!("{record}\n");
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write a metrics record");
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn worker_counter_has_no_dimensions() {
        let r = worker_record("MessagesReceived", 7, 1_700_000_000_000);
        assert_eq!(
            r.to_string(),
            r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"CloudCustodian/FargateWorker","Dimensions":[[]],"Metrics":[{"Name":"MessagesReceived","Unit":"Count"}]}]},"MessagesReceived":7.0}"#
        );
    }

    #[test]
    fn policy_run_gives_the_design_and_c7n_records() {
        let p = PolicyMetrics {
            policy: "s3-encrypt",
            resource_type: "aws.s3",
            resources: 2,
            actions_taken: 3,
            duration: Duration::from_millis(1500),
            resource_time: Some(Duration::from_millis(250)),
            action_time: Some(Duration::from_millis(1000)),
        };
        let [exec, maid] = policy_records(&p, 5);
        assert_eq!(
            exec,
            json!({
                "_aws": {"Timestamp": 5, "CloudWatchMetrics": [{
                    "Namespace": "CloudCustodian/PolicyExecution",
                    "Dimensions": [["Policy", "ResType"]],
                    "Metrics": [
                        {"Name": "ExecutionTime", "Unit": "Milliseconds"},
                        {"Name": "ResourcesProcessed", "Unit": "Count"},
                        {"Name": "ActionsTaken", "Unit": "Count"}]}]},
                "Policy": "s3-encrypt", "ResType": "aws.s3",
                "ExecutionTime": 1500.0, "ResourcesProcessed": 2.0, "ActionsTaken": 3.0
            })
        );
        assert_eq!(
            maid["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "CloudMaid"
        );
        assert_eq!(maid["ResourceCount"], 2.0);
        assert_eq!(maid["ResourceTime"], 0.25);
        assert_eq!(maid["ActionTime"], 1.0);
        assert_eq!(maid["Policy"], "s3-encrypt");
    }

    /// Every metric a directive names must be a root member, and every dimension too: EMF
    /// drops the record otherwise.
    #[test]
    fn directives_reference_root_members() {
        let p = PolicyMetrics {
            policy: "p",
            resource_type: "aws.s3",
            resources: 0,
            actions_taken: 0,
            duration: Duration::ZERO,
            resource_time: None,
            action_time: Some(Duration::ZERO),
        };
        let [a, b] = policy_records(&p, 0);
        assert_eq!(b.get("ResourceTime"), None, "unknown timings are left out");
        assert_eq!(
            b["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        for r in [a, b, worker_record("ProcessingFailures", 1, 0)] {
            let d = &r["_aws"]["CloudWatchMetrics"][0];
            for m in d["Metrics"].as_array().unwrap() {
                assert!(r[m["Name"].as_str().unwrap()].is_number(), "{r}");
            }
            for dim in d["Dimensions"][0].as_array().unwrap() {
                assert!(r[dim.as_str().unwrap()].is_string(), "{r}");
            }
        }
    }

    #[test]
    fn writer_gets_one_line_per_record() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let m = Metrics::to_writer(Box::new(buf.clone()));
        m.messages_received(3);
        m.processed(true);
        m.processed(false);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["MessagesReceived"], 3.0);
        assert_eq!(lines[1]["ProcessingSuccesses"], 1.0);
        assert_eq!(lines[2]["ProcessingFailures"], 1.0);
    }
}
