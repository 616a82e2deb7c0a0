//! The resource types the native engine runs, each described as data: its c7n names, the
//! id key its documents carry, the ARN service Security Hub names it by, and the modes,
//! filters and actions it runs. A policy that needs anything else goes to Cloud Custodian
//! itself (the engine's driver), and `czero validate --native` says so before deploying.
//!
//! Adding a resource type starts here: one [`ResourceSpec`] in [`NATIVE`], its filter
//! evaluation in a module beside `s3`, then the engine's provider (see
//! `docs/ARCHITECTURE.md`, "Adding a resource").

pub mod s3;

use crate::{FeatureKind, Mode, Policy, Unsupported};

/// What the native engine runs for one c7n resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSpec {
    /// c7n's names: the canonical `aws.x` first, then its short forms.
    pub names: &'static [&'static str],
    /// The key of a resource document that holds its id (c7n's `resource_type.id`).
    pub id: &'static str,
    /// The service in the resource's ARN (`arn:aws:<service>:...`): Security Hub names
    /// resources by ARN and c7n keeps the ARNs of the policy's service.
    pub arn_service: &'static str,
    /// AWS Config's name for the type (`AWS::S3::Bucket`): a Config event about another
    /// type names no resource of this one.
    pub config_type: &'static str,
    /// Modes (c7n's `type:` names) the engine runs natively for this type.
    pub modes: &'static [&'static str],
    /// Resource filters evaluated natively, besides `value`, `event` and the blocks.
    pub filters: &'static [&'static str],
    /// Actions run natively.
    pub actions: &'static [&'static str],
}

/// Every natively supported resource type. One line per type.
pub const NATIVE: &[ResourceSpec] = &[s3::SPEC];

/// The spec for a resource type (`aws.s3` or `s3`), if the engine runs it natively.
pub fn native(resource: &str) -> Option<&'static ResourceSpec> {
    NATIVE.iter().find(|s| s.names.contains(&resource))
}

impl Policy {
    /// The first thing in this policy the native engine cannot run (its resource type, its
    /// mode, or a filter, action or option listed in [`Policy::unsupported`]); `None` when
    /// it runs natively from end to end.
    pub fn native_gap(&self) -> Option<Unsupported> {
        let Some(spec) = native(&self.resource) else {
            return Some(Unsupported {
                kind: FeatureKind::Resource,
                name: self.resource.clone(),
                path: "resource".into(),
                line: self.line,
            });
        };
        if !spec.modes.contains(&self.mode.name()) {
            return Some(Unsupported {
                kind: FeatureKind::Mode,
                name: format!("{} for {}", self.mode.name(), spec.names[0]),
                path: "mode".into(),
                line: self.line,
            });
        }
        if let Some(u) = self.unsupported.first() {
            return Some(u.clone());
        }
        // The types as written: aliases parse to one variant (`untag` reads as
        // `remove-tag`) but c7n may bind them to another class.
        self.action_types()
            .into_iter()
            .enumerate()
            .find(|(_, t)| !spec.actions.contains(&t.as_str()))
            .map(|(i, t)| Unsupported {
                kind: FeatureKind::Action,
                name: t,
                path: format!("actions[{i}]"),
                line: self.line,
            })
    }

    /// The `type` of each action as written (`actions: [tag]` or `[{type: tag, ...}]`).
    pub fn action_types(&self) -> Vec<String> {
        self.raw
            .get("actions")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| match a {
                serde_json::Value::String(s) => s.clone(),
                other => other
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect()
    }

    /// Whether the native engine runs this policy from end to end.
    pub fn is_native(&self) -> bool {
        self.native_gap().is_none()
    }
}

impl Mode {
    /// Whether `spec` runs this mode natively.
    pub fn is_native_for(&self, spec: &ResourceSpec) -> bool {
        spec.modes.contains(&self.name())
    }
}
