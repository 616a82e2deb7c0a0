//! The Cloud Custodian policy language, as custodian-zero understands it.
//!
//! Parses policy files (`policies:` and `vars:`), validates them against the c7n 0.9.53
//! schema (reporting every error with file, line, column and key path), evaluates `value`
//! filters and the `aws.s3` filters over resources already fetched as JSON, and turns an
//! event into the resource ids it names. It does no I/O: fetching and acting on resources is
//! `czero-engine`'s job. Features that are valid c7n but not run natively are listed in
//! [`Policy::unsupported`] so the engine can hand such a policy to the `custodian` CLI.
//!
//! Semantics follow c7n 0.9.53 and are checked against it (the tests run c7n's own classes
//! through the project's Python). Known, deliberate differences:
//! - YAML: PyYAML reads YAML 1.1; we read YAML 1.2 with serde_yaml and then turn plain
//!   `yes/no/on/off` values into booleans as PyYAML does. Duplicate keys are an error here
//!   (PyYAML keeps the last); YAML timestamps stay strings.
//! - `vars:` is, as in c7n, a place for YAML anchors (`&name` / `*name`, merge keys `<<`);
//!   nothing is substituted from it.
//! - An empty `policies:` list and regexes with lookaround or backreferences are rejected.
//! - Naive dates are read as UTC; dateutil's fuzzier guesses are not parsed.

mod actions;
mod dates;
mod event;
mod filters;
pub mod member_role;
mod parse;
mod pyre;
mod pyval;
mod registry;
pub mod resources;
mod value;
mod yaml;

pub use actions::Action;
pub use event::{EventError, matches_event, resource_ids};
pub use filters::{
    EvalContext, EvalError, Fetched, Filter, Inputs, KmsKey, KmsKeys, MATCHED_FILTERS, Prefetched,
};
pub use parse::parse_str;
pub use resources::{ResourceSpec, native, s3};
pub use value::{Op, ValueFilter, ValueType};

use serde::Serialize;
use std::fmt;

/// A parsed, validated policy file.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyFile {
    pub policies: Vec<Policy>,
}

/// One policy, validated. `raw` keeps the mapping as written (after YAML anchors and merge
/// keys are resolved) for the `custodian` fallback and `metadata.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub name: String,
    /// Normalised resource type: `s3` becomes `aws.s3`.
    pub resource: String,
    pub mode: Mode,
    /// `mode.member-role`, as written (see [`member_role`]).
    pub member_role: Option<String>,
    pub filters: Vec<Filter>,
    pub actions: Vec<Action>,
    pub conditions: Vec<Filter>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub metadata: serde_json::Value,
    pub max_resources: Option<MaxResources>,
    /// From `query: [{augment-keys: [...]}]`.
    pub augment_keys: Option<Vec<String>>,
    /// Valid c7n features this crate does not run natively (empty = fully native).
    pub unsupported: Vec<Unsupported>,
    pub raw: serde_json::Value,
    /// Where the policy starts (`origin` given to [`parse_str`], and its line).
    pub origin: String,
    pub line: usize,
}

/// `max-resources`: a count, or c7n's `{amount, percent, op}` form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum MaxResources {
    Amount(u64),
    Spec {
        amount: Option<u64>,
        percent: Option<f64>,
        op: String,
    },
}

/// What kind of feature a [`Unsupported`] entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FeatureKind {
    Resource,
    Filter,
    Action,
    Mode,
    ValueType,
    Other,
}

/// A feature that is valid in c7n but that this crate does not evaluate or run natively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsupported {
    pub kind: FeatureKind,
    pub name: String,
    /// Key path, e.g. `policies[0].actions[1]`.
    pub path: String,
    pub line: usize,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FeatureKind::Resource => "resource",
            FeatureKind::Filter => "filter",
            FeatureKind::Action => "action",
            FeatureKind::Mode => "mode",
            FeatureKind::ValueType => "value_type",
            FeatureKind::Other => "feature",
        };
        write!(f, "{kind} `{}`", self.name)
    }
}

/// How a policy is triggered: c7n's execution modes (`c7n.policy.execution`), all twelve.
///
/// Two families: *scans* (`pull`, `periodic`, `schedule`, `config-poll-rule`) list every
/// resource of the type, whatever event started them; *event modes* resolve the resources
/// an event names (c7n's `resolve_resources`) and touch only those.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Mode {
    /// No `mode`, or `type: pull`.
    Pull,
    /// `periodic`: a pull scan on an EventBridge schedule.
    Periodic,
    /// `schedule`: a pull scan on an EventBridge Scheduler schedule.
    Schedule,
    CloudTrail {
        events: Vec<TrailEvent>,
    },
    HubFinding,
    HubAction,
    /// `guard-duty`: GuardDuty findings (c7n supports account, ec2 and iam-user).
    GuardDuty,
    /// `config-rule`: an AWS Config rule evaluation of one resource.
    ConfigRule,
    /// `config-poll-rule`: a periodic scan that reports evaluations to AWS Config.
    ConfigPollRule,
    /// `ec2-instance-state` with the instance states it subscribes to.
    Ec2InstanceState {
        states: Vec<String>,
    },
    /// `asg-instance-state` with its events, as EventBridge detail-types.
    AsgInstanceState {
        detail_types: Vec<String>,
    },
    /// `phd`: AWS Health events, optionally restricted by event type code and category.
    Phd {
        events: Vec<String>,
        categories: Vec<String>,
    },
}

impl Mode {
    /// c7n's name for the mode (`type:` as written).
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Pull => "pull",
            Mode::Periodic => "periodic",
            Mode::Schedule => "schedule",
            Mode::CloudTrail { .. } => "cloudtrail",
            Mode::HubFinding => "hub-finding",
            Mode::HubAction => "hub-action",
            Mode::GuardDuty => "guard-duty",
            Mode::ConfigRule => "config-rule",
            Mode::ConfigPollRule => "config-poll-rule",
            Mode::Ec2InstanceState { .. } => "ec2-instance-state",
            Mode::AsgInstanceState { .. } => "asg-instance-state",
            Mode::Phd { .. } => "phd",
        }
    }

    /// Whether the mode resolves its resources from the triggering event. The other modes
    /// scan every resource of the type, so sending them single-resource events would act
    /// on the whole account.
    pub fn is_event_mode(&self) -> bool {
        !matches!(
            self,
            Mode::Pull | Mode::Periodic | Mode::Schedule | Mode::ConfigPollRule
        )
    }
}

/// One `mode.events` entry of a cloudtrail policy, with short names expanded from c7n's
/// `CloudWatchEvents.trail_events` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailEvent {
    pub source: String,
    pub event: String,
    pub ids: String,
    /// The short name as written (`CreateBucket`), or `None` for a `{source, event, ids}`
    /// mapping. c7n resolves ids differently for the two forms (see [`resource_ids`]).
    pub short_name: Option<String>,
}

/// The lazily fetched `aws.s3` annotations a policy's filters need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// `c7n:bucket-encryption` (GetBucketEncryption).
    pub bucket_encryption: bool,
    /// `c7n:PublicAccessBlock` (GetPublicAccessBlock).
    pub public_access_block: bool,
}

impl Policy {
    /// Which lazy annotations the filters (and conditions) of this policy read.
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        for f in self.filters.iter().chain(&self.conditions) {
            f.collect_needs(&mut n);
        }
        n
    }

    /// The KMS keys the `bucket-encryption` filters compare against (`crypto: aws:kms`
    /// with `key`), in filter order: the engine resolves each for every bucket region
    /// (c7n's `KMSKeyResolverMixin`) and hands them to [`Filter::process`].
    pub fn filter_kms_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for f in &self.filters {
            f.collect_kms_keys(&mut keys);
        }
        keys
    }

    /// Resource ids for this policy from `event`, as c7n's push modes resolve them: for
    /// hub modes only the finding ARNs of the policy's service are kept, reduced to their
    /// resource part (`arn:aws:s3:::name` becomes `name`, as `Arn.parse(..).resource`).
    pub fn resource_ids(&self, event: &serde_json::Value) -> Result<Vec<String>, EventError> {
        event::policy_resource_ids(&self.mode, &self.resource, event)
    }
}

/// One validation error: `FILE:LINE:COL: path: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// Key path, e.g. `policies[0].filters[2].op` (empty for the whole file).
    pub path: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.col, self.path, self.message
            )
        }
    }
}

/// Every error found in a policy file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct PolicyErrors {
    pub errors: Vec<PolicyError>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
