//! Resource providers: one per c7n resource type the engine runs natively.
//!
//! A provider is everything about its type that is not the policy language: how an
//! event's ids become resources (c7n's `get_resources(ids)`), how a pull scan lists them,
//! augmentation, the filters that need API calls, and the actions. Which modes, filters and
//! actions it runs is data, in `czero_policy::resources::NATIVE`; a policy that needs
//! anything else goes to Cloud Custodian through the driver. The run itself (modes,
//! events, `max-resources`, output files, logs, metrics) is generic, in `run.rs`.
//!
//! Adding a type: a folder beside `s3/` with the same files (`mod.rs` implementing
//! [`Provider`], `describe.rs`, `filters.rs`, `actions.rs`), its `ResourceSpec` in
//! czero-policy, and one arm in [`with_provider!`]. See docs/ARCHITECTURE.md.

pub mod s3;

use crate::EngineError;
use crate::calls::Calls;
use crate::run::RunLog;
use chrono::{DateTime, Utc};
use czero_policy::{Policy, ResourceSpec};
use serde_json::{Map, Value};

/// What a provider may read and write during one policy run.
#[derive(Debug)]
pub(crate) struct RunCx<'a> {
    pub policy: &'a Policy,
    /// The triggering event in event modes (`type: event` filters read it); `None` in scans.
    pub event: Option<&'a Value>,
    /// The region the run's clients default to (and the output's region).
    pub region: &'a str,
    /// The account the run acts in (`{account_id}` in statements), when known.
    pub account_id: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// Every API call of the run, for `metadata.json`'s `api-stats`.
    pub calls: Calls,
    /// The run's `custodian-run.log`.
    pub log: RunLog,
}

/// One action's results on the matched resources.
#[derive(Debug, Default)]
pub(crate) struct ActionRun {
    /// Whether c7n's `process` returns a list (written to `action-<class>` when truthy in
    /// pull mode, always in event modes) rather than `None`.
    pub returns_list: bool,
    /// The per-resource values `process` returned, for `returns_list` actions.
    pub results: Vec<Value>,
    /// Resources the action failed on: (resource id, error). The run goes on, as c7n's
    /// per-resource error handling does.
    pub failures: Vec<(String, ActionFailure)>,
    /// A failure of the whole action before it touched a resource (an unresolvable KMS
    /// key); its resources are counted in `failures` too.
    pub error: Option<EngineError>,
}

/// Why an action failed on one resource.
#[derive(Debug, Clone)]
pub(crate) struct ActionFailure {
    pub message: String,
    pub retryable: bool,
}

/// A resource type the engine runs natively. Futures need not be `Send`: a worker runs a
/// batch's jobs concurrently inside one task.
pub(crate) trait Provider {
    /// A fetched resource with whatever the provider fetched for its filters alongside it
    /// (kept apart from the document: c7n stores such documents only on the resources its
    /// filters read).
    type Resource;

    /// The pure description: names, id key, modes, filters and actions it runs.
    fn spec(&self) -> &'static ResourceSpec;

    /// c7n's `get_resources(ids)`: the resources an event names, augmented. Ids that name
    /// nothing (deleted since) are dropped, as c7n drops them.
    async fn get_resources(
        &self,
        cx: &RunCx<'_>,
        ids: Vec<String>,
    ) -> Result<Vec<Self::Resource>, EngineError>;

    /// A pull scan: every resource of the type, augmented (c7n's `resources()` before
    /// filtering).
    async fn list(&self, cx: &RunCx<'_>) -> Result<Vec<Self::Resource>, EngineError>;

    /// The policy's filters, in order, on every resource, annotating each document as
    /// c7n's filters do; returns the documents that matched, as `resources.json` lists them.
    async fn filter(
        &self,
        cx: &mut RunCx<'_>,
        resources: Vec<Self::Resource>,
    ) -> Result<Vec<Value>, EngineError>;

    /// Runs one action (`type` and its data as written) on the matched resources.
    async fn act(
        &self,
        cx: &mut RunCx<'_>,
        action: &str,
        data: &Map<String, Value>,
        resources: &mut [Value],
    ) -> ActionRun;

    /// c7n's class for an action type (`tag` is `BucketTag` on aws.s3): it names the
    /// `action-<class>` output file and the log lines.
    fn class_name(&self, action: &str) -> &'static str;

    /// A resource document's id (c7n's `resource_type.id`).
    fn id(&self, resource: &Value) -> String {
        resource
            .get(self.spec().id)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

/// The native providers, built once per engine from one SDK configuration.
#[derive(Debug, Clone)]
pub(crate) struct Providers {
    pub s3: s3::Provider,
}

/// Calls `$body` with `$p` bound to the provider for `$resource`, or evaluates `$none`.
/// One arm per native type: the registration line of "Adding a type".
macro_rules! with_provider {
    ($providers:expr, $resource:expr, |$p:ident| $body:expr, $none:expr) => {
        match czero_policy::native($resource).map(|s| s.names[0]) {
            Some("aws.s3") => {
                let $p = &$providers.s3;
                $body
            }
            _ => $none,
        }
    };
}
pub(crate) use with_provider;
