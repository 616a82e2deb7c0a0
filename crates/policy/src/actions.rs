//! The `aws.s3` actions with their parameters typed and defaulted as c7n's schemas and
//! `process` methods do. Running them is the engine's job.

use crate::registry::S3_ACTIONS;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    /// `enabled` true, `crypto` AES256, `bucket-key` true.
    SetBucketEncryption {
        enabled: bool,
        crypto: String,
        key: Option<String>,
        bucket_key: bool,
    },
    /// `state` (default true) applies to every setting not given individually.
    SetPublicBlock {
        state: bool,
        block_public_acls: Option<bool>,
        ignore_public_acls: Option<bool>,
        block_public_policy: Option<bool>,
        restrict_public_buckets: Option<bool>,
    },
    /// Default grantees: AuthenticatedUsers and AllUsers.
    DeleteGlobalGrants {
        grantees: Vec<String>,
    },
    ToggleVersioning {
        enabled: bool,
    },
    /// The tags to set (`tags` map, plus `key`/`tag` = `value`/`msg`), merged with existing.
    Tag {
        tags: Vec<(String, String)>,
    },
    /// Default `[maid_status]`.
    RemoveTag {
        tags: Vec<String>,
    },
    /// c7n defaults: tag `maid_status`, op `stop` (invalid for aws.s3, so required in
    /// practice), days 0, hours 0 (its "4 days" default is unreachable), tz `utc`.
    MarkForOp {
        tag: String,
        op: String,
        days: f64,
        hours: f64,
        msg: String,
        tz: String,
    },
    SetStatements {
        statements: Vec<Value>,
        remove: Option<Value>,
    },
    /// `remove-contents` defaults to true.
    Delete {
        remove_contents: bool,
    },
    /// A valid c7n action not run natively.
    Unsupported {
        name: String,
        raw: Value,
    },
}

pub(crate) const DEFAULT_TAG: &str = "maid_status";
pub(crate) const MARK_MSG: &str = "Resource does not meet policy: {op}@{action_date}";

impl Action {
    /// The action's registry name (`set-bucket-encryption`).
    pub fn name(&self) -> &str {
        match self {
            Action::SetBucketEncryption { .. } => "set-bucket-encryption",
            Action::SetPublicBlock { .. } => "set-public-block",
            Action::DeleteGlobalGrants { .. } => "delete-global-grants",
            Action::ToggleVersioning { .. } => "toggle-versioning",
            Action::Tag { .. } => "tag",
            Action::RemoveTag { .. } => "remove-tag",
            Action::MarkForOp { .. } => "mark-for-op",
            Action::SetStatements { .. } => "set-statements",
            Action::Delete { .. } => "delete",
            Action::Unsupported { name, .. } => name,
        }
    }

    /// c7n's class name for the aws.s3 action (`SetBucketEncryption`, `BucketTag`,
    /// `MarkBucketForOp`...), which names its `action-<classname>` output files (lowercased
    /// there). `None` for a name not in the aws.s3 registry.
    pub fn c7n_class_name(&self) -> Option<&'static str> {
        class_name(self.name())
    }
}

/// c7n class name of an aws.s3 action by registry name.
pub fn class_name(action: &str) -> Option<&'static str> {
    S3_ACTIONS
        .iter()
        .find(|(n, _)| *n == action)
        .map(|(_, c)| *c)
}

fn b(m: &serde_json::Map<String, Value>, k: &str) -> Option<bool> {
    m.get(k).and_then(Value::as_bool)
}

fn s(m: &serde_json::Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

fn scalar_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Builds a natively run action from its (already schema-checked) mapping.
pub(crate) fn build(name: &str, m: &serde_json::Map<String, Value>, raw: &Value) -> Action {
    match name {
        "set-bucket-encryption" => Action::SetBucketEncryption {
            enabled: b(m, "enabled").unwrap_or(true),
            crypto: s(m, "crypto").unwrap_or_else(|| "AES256".into()),
            key: s(m, "key"),
            bucket_key: b(m, "bucket-key").unwrap_or(true),
        },
        "set-public-block" => Action::SetPublicBlock {
            state: b(m, "state").unwrap_or(true),
            block_public_acls: b(m, "BlockPublicAcls"),
            ignore_public_acls: b(m, "IgnorePublicAcls"),
            block_public_policy: b(m, "BlockPublicPolicy"),
            restrict_public_buckets: b(m, "RestrictPublicBuckets"),
        },
        "delete-global-grants" => Action::DeleteGlobalGrants {
            grantees: match m.get("grantees") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => vec![
                    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers".into(),
                    "http://acs.amazonaws.com/groups/global/AllUsers".into(),
                ],
            },
        },
        "toggle-versioning" => Action::ToggleVersioning {
            enabled: b(m, "enabled").unwrap_or(true),
        },
        "tag" => {
            let mut tags: Vec<(String, String)> = match m.get("tags") {
                Some(Value::Object(t)) => {
                    t.iter().map(|(k, v)| (k.clone(), scalar_str(v))).collect()
                }
                _ => Vec::new(),
            };
            // Legacy form: `value` (or `msg`) under `key` (or `tag`, default maid_status).
            let msg = m
                .get("value")
                .filter(truthy)
                .or_else(|| m.get("msg").filter(truthy));
            if let Some(msg) = msg {
                let key = m
                    .get("key")
                    .filter(truthy)
                    .map(scalar_str)
                    .or_else(|| s(m, "tag"))
                    .unwrap_or_else(|| DEFAULT_TAG.into());
                tags.retain(|(k, _)| *k != key);
                tags.push((key, scalar_str(msg)));
            }
            Action::Tag { tags }
        }
        "remove-tag" | "unmark" | "untag" => Action::RemoveTag {
            tags: match m.get("tags") {
                Some(Value::Array(a)) => a.iter().map(scalar_str).collect(),
                _ => vec![DEFAULT_TAG.into()],
            },
        },
        "mark-for-op" => Action::MarkForOp {
            tag: s(m, "tag").unwrap_or_else(|| DEFAULT_TAG.into()),
            op: s(m, "op").unwrap_or_else(|| "stop".into()),
            days: m.get("days").and_then(Value::as_f64).unwrap_or(0.0),
            hours: m.get("hours").and_then(Value::as_f64).unwrap_or(0.0),
            msg: s(m, "msg").unwrap_or_else(|| MARK_MSG.into()),
            tz: s(m, "tz").unwrap_or_else(|| "utc".into()),
        },
        "set-statements" => Action::SetStatements {
            statements: m
                .get("statements")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            remove: m.get("remove").cloned(),
        },
        "delete" => Action::Delete {
            remove_contents: b(m, "remove-contents").unwrap_or(true),
        },
        other => Action::Unsupported {
            name: other.to_string(),
            raw: raw.clone(),
        },
    }
}

fn truthy(v: &&Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Allowed keys (besides `type`) per natively run action, from c7n's schemas.
pub(crate) fn schema_keys(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "set-bucket-encryption" => &["enabled", "crypto", "key", "bucket-key"],
        "set-public-block" => &[
            "state",
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        ],
        "delete-global-grants" => &["grantees"],
        "toggle-versioning" => &["enabled"],
        "tag" => &["tags", "key", "value", "tag"],
        "remove-tag" | "unmark" | "untag" => &["tags"],
        "mark-for-op" => &["tag", "msg", "days", "hours", "tz", "op"],
        "set-statements" => &["remove", "statements"],
        "delete" => &["remove-contents"],
        _ => return None,
    })
}
