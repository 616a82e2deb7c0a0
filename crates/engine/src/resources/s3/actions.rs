//! The S3 actions, each making the calls c7n's `process` makes, in the same order and with
//! the same merging (tags are re-read before PutBucketTagging; set-public-block keeps keys
//! it was not told to change). An action reads its policy data as c7n does (`self.data`).

use super::{ApiError, PUBLIC_BLOCK_KEY, PUBLIC_BLOCK_KEYS, S3, bucket_name, bucket_region};
use crate::EngineError;
use crate::kms::Kms;
use crate::resources::{ActionFailure, ActionRun, RunCx};
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketVersioningStatus, Delete, Grant, Grantee, ObjectIdentifier, Owner,
    Permission, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, Type, VersioningConfiguration,
};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const DEFAULT_TAG: &str = "maid_status";
pub const AUTH_ALL: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const GLOBAL_ALL: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// The action types this engine runs natively, with c7n's class names (output files are
/// `action-<classname lowercased>`).
pub const NATIVE: [(&str, &str); 10] = [
    ("set-bucket-encryption", "SetBucketEncryption"),
    ("set-public-block", "SetPublicBlock"),
    ("delete-global-grants", "DeleteGlobalGrants"),
    ("toggle-versioning", "ToggleVersioning"),
    ("tag", "BucketTag"),
    ("remove-tag", "RemoveBucketTag"),
    ("unmark", "RemoveBucketTag"),
    ("mark-for-op", "MarkBucketForOp"),
    ("set-statements", "SetPolicyStatement"),
    ("delete", "DeleteBucket"),
];

pub fn class_name(action_type: &str) -> Option<&'static str> {
    NATIVE
        .iter()
        .find(|(t, _)| *t == action_type)
        .map(|(_, c)| *c)
}

/// An action's `type` and data, from the policy's raw `actions` entry (a string or a map).
pub fn action_data(raw: &Value) -> (String, Map<String, Value>) {
    match raw {
        Value::String(s) => (s.clone(), Map::new()),
        Value::Object(m) => {
            let t = m
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (t, m.clone())
        }
        _ => (String::new(), Map::new()),
    }
}

/// What one action did to one bucket: c7n's per-bucket return value (`None` for most).
pub type Outcome = Result<Option<Value>, ApiError>;

/// What actions take from the run: the values c7n formats into strings (`{bucket_name}`,
/// `{region}`, ...) and the action's resolved KMS key.
#[derive(Debug, Clone)]
pub struct FormatArgs {
    pub account_id: Option<String>,
    pub region: String,
    pub now: chrono::DateTime<chrono::Utc>,
    /// `set-bucket-encryption`'s `key` resolved to its ARN (DescribeKey), by bucket region.
    pub kms_key_arns: std::collections::HashMap<String, String>,
}

pub async fn run(
    s3: &S3,
    action_type: &str,
    data: &Map<String, Value>,
    bucket: &mut Value,
    args: &FormatArgs,
) -> Outcome {
    match action_type {
        "set-bucket-encryption" => set_bucket_encryption(s3, data, bucket, args).await,
        "set-public-block" => set_public_block(s3, data, bucket).await,
        "delete-global-grants" => delete_global_grants(s3, data, bucket).await,
        "toggle-versioning" => toggle_versioning(s3, data, bucket).await,
        "tag" => {
            let tags = tag_spec(data);
            modify_bucket_tags(s3, bucket, &tags, &[]).await
        }
        "remove-tag" | "unmark" => {
            let remove: Vec<String> = match data.get("tags").and_then(Value::as_array) {
                Some(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                None => vec![DEFAULT_TAG.to_string()],
            };
            modify_bucket_tags(s3, bucket, &[], &remove).await
        }
        "mark-for-op" => {
            let tags = vec![mark_for_op_tag(data, args.now)];
            modify_bucket_tags(s3, bucket, &tags, &[]).await
        }
        "set-statements" => set_statements(s3, data, bucket, args).await,
        "delete" => delete_bucket(s3, data, bucket).await,
        other => Err(ApiError {
            operation: "action",
            bucket: bucket_name(bucket),
            code: None,
            status: None,
            message: format!("action {other} is not implemented natively"),
            retryable: false,
            body: None,
        }),
    }
}

/// One action on every matched bucket, three at a time (c7n's action thread pool), as the
/// generic run expects: c7n's class name, its return values, the buckets it failed on.
pub(crate) async fn process(
    s3: &S3,
    kms: &Kms,
    cx: &mut RunCx<'_>,
    action: &str,
    data: &Map<String, Value>,
    buckets: &mut [Value],
) -> ActionRun {
    let mut run = ActionRun {
        // c7n's return value: a list for these three, None for the others.
        returns_list: matches!(action, "delete-global-grants" | "set-statements" | "delete"),
        ..ActionRun::default()
    };
    let mut args = FormatArgs {
        account_id: cx.account_id.map(str::to_string),
        region: cx.region.to_string(),
        now: cx.now,
        kms_key_arns: HashMap::new(),
    };
    let name = cx.policy.name.clone();
    let mut unresolved: Vec<String> = Vec::new();
    if let Some(key) = action_kms_key(action, data) {
        // c7n resolves the key once per bucket region before acting; a key it cannot
        // resolve fails every bucket of that region: one error, here.
        let mut regions: Vec<String> = buckets.iter().map(bucket_region).collect();
        regions.sort();
        regions.dedup();
        for region in regions {
            match kms.describe_key(key, &region).await {
                Ok(k) => {
                    args.kms_key_arns.insert(region, k.arn);
                }
                Err(e) => {
                    cx.log.error(
                        "custodian.actions",
                        format!("policy:{name} action:{action} {e}: no bucket in {region} changed"),
                    );
                    if run.error.is_none() {
                        run.error = Some(EngineError::Kms {
                            policy: name.clone(),
                            context: action.to_string(),
                            error: Box::new(e),
                        });
                    }
                    unresolved.push(region);
                }
            }
        }
    }
    let ids: Vec<String> = buckets.iter().map(bucket_name).collect();
    let outcomes: Vec<Option<Outcome>> = futures::stream::iter(buckets.iter_mut())
        .map(|b| {
            let (args, skip) = (&args, unresolved.contains(&bucket_region(b)));
            async move {
                if skip {
                    None
                } else {
                    Some(self::run(s3, action, data, b, args).await)
                }
            }
        })
        .buffered(3)
        .collect()
        .await;
    for (o, id) in outcomes.into_iter().zip(ids) {
        match o {
            // Already reported with the KMS error.
            None => run.failures.push((
                id,
                ActionFailure {
                    message: "KMS key not resolved in the bucket's region".into(),
                    retryable: run.error.as_ref().is_some_and(EngineError::is_retryable),
                },
            )),
            Some(Ok(Some(v))) => run.results.push(v),
            Some(Ok(None)) => {}
            Some(Err(e)) => run.failures.push((
                id,
                ActionFailure {
                    message: e.to_string(),
                    retryable: e.retryable,
                },
            )),
        }
    }
    run
}

/// The key `set-bucket-encryption` must resolve before it acts: c7n resolves it only when
/// the action enables encryption, and reads it for `crypto: aws:kms`.
fn action_kms_key<'a>(action: &str, data: &'a Map<String, Value>) -> Option<&'a str> {
    let enabled = data.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let kms = data.get("crypto").and_then(Value::as_str) == Some("aws:kms");
    if action != "set-bucket-encryption" || !enabled || !kms {
        return None;
    }
    data.get("key").and_then(Value::as_str)
}

fn local_error(op: &'static str, bucket: &str, message: String) -> ApiError {
    ApiError {
        operation: op,
        bucket: bucket.to_string(),
        code: None,
        status: None,
        message,
        retryable: false,
        body: None,
    }
}

async fn set_bucket_encryption(
    s3: &S3,
    data: &Map<String, Value>,
    bucket: &Value,
    args: &FormatArgs,
) -> Outcome {
    let name = bucket_name(bucket);
    let client = s3.bucket_client(bucket);
    if !data.get("enabled").and_then(Value::as_bool).unwrap_or(true) {
        s3.call(
            "DeleteBucketEncryption",
            &name,
            client.delete_bucket_encryption().bucket(&name).send(),
        )
        .await?;
        return Ok(None);
    }
    let algo = data
        .get("crypto")
        .and_then(Value::as_str)
        .unwrap_or("AES256");
    let bucket_key = data
        .get("bucket-key")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut default =
        ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::from(algo));
    if algo == "aws:kms" {
        // c7n puts the ARN DescribeKey gives for `key` (an id, ARN, alias name or alias
        // ARN), resolved in the bucket's region before the first bucket (see run.rs).
        let Some(key) = data.get("key").and_then(Value::as_str) else {
            return Err(local_error(
                "PutBucketEncryption",
                &name,
                "set-bucket-encryption with crypto aws:kms needs `key` (c7n: Valid KMS Key required but does not exist)".into(),
            ));
        };
        let region = bucket_region(bucket);
        let Some(arn) = args.kms_key_arns.get(&region) else {
            return Err(local_error(
                "PutBucketEncryption",
                &name,
                format!("KMS key `{key}` was not resolved in {region}"),
            ));
        };
        default = default.kms_master_key_id(arn);
    }
    let default = default
        .build()
        .map_err(|e| local_error("PutBucketEncryption", &name, e.to_string()))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(bucket_key)
        .build();
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| local_error("PutBucketEncryption", &name, e.to_string()))?;
    s3.call(
        "PutBucketEncryption",
        &name,
        client
            .put_bucket_encryption()
            .bucket(&name)
            .server_side_encryption_configuration(config)
            .send(),
    )
    .await?;
    Ok(None)
}

async fn set_public_block(s3: &S3, data: &Map<String, Value>, bucket: &Value) -> Outcome {
    let name = bucket_name(bucket);
    let client = s3.bucket_client(bucket);
    let mut config: Map<String, Value> = match bucket.get(PUBLIC_BLOCK_KEY) {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            match s3
                .call(
                    "GetPublicAccessBlock",
                    &name,
                    client.get_public_access_block().bucket(&name).send(),
                )
                .await
            {
                Ok(o) => match super::shapes::public_access_block(&o) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                Err(e) if e.code.as_deref() == Some("NoSuchPublicAccessBlockConfiguration") => {
                    match super::default_public_block() {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    let key_set: Vec<&str> = PUBLIC_BLOCK_KEYS
        .iter()
        .copied()
        .filter(|k| data.contains_key(*k))
        .collect();
    if key_set.is_empty() {
        let state = data.get("state").and_then(Value::as_bool).unwrap_or(true);
        for k in PUBLIC_BLOCK_KEYS {
            config.insert(k.into(), Value::Bool(state));
        }
    } else {
        for k in key_set {
            config.insert(k.into(), data.get(k).cloned().unwrap_or(Value::Null));
        }
    }
    let b = |k: &str| config.get(k).and_then(Value::as_bool);
    let pab = PublicAccessBlockConfiguration::builder()
        .set_block_public_acls(b("BlockPublicAcls"))
        .set_ignore_public_acls(b("IgnorePublicAcls"))
        .set_block_public_policy(b("BlockPublicPolicy"))
        .set_restrict_public_buckets(b("RestrictPublicBuckets"))
        .build();
    s3.call(
        "PutPublicAccessBlock",
        &name,
        client
            .put_public_access_block()
            .bucket(&name)
            .public_access_block_configuration(pab)
            .send(),
    )
    .await?;
    Ok(None)
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Bool(true)) => true,
    }
}

async fn delete_global_grants(s3: &S3, data: &Map<String, Value>, bucket: &Value) -> Outcome {
    let name = bucket_name(bucket);
    let grantees: Vec<String> = match data.get("grantees").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        None => vec![AUTH_ALL.to_string(), GLOBAL_ALL.to_string()],
    };
    let Some(acl) = bucket.get("Acl").filter(|a| truthy(Some(a))) else {
        return Ok(None);
    };
    let grants = acl
        .get("Grants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if grants.is_empty() {
        return Ok(None);
    }
    let website = truthy(bucket.get("Website"));
    let mut new_grants = Vec::new();
    for g in &grants {
        let Some(grantee) = g.get("Grantee").filter(|v| truthy(Some(v))) else {
            continue;
        };
        let uri = grantee.get("URI").and_then(Value::as_str);
        let perm = g
            .get("Permission")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let remove =
            uri.is_some_and(|u| grantees.iter().any(|x| x == u)) && !(perm == "READ" && website);
        if remove {
            continue;
        }
        let s = |k: &str| grantee.get(k).and_then(Value::as_str).map(str::to_string);
        // get_bucket_acl does not say the grantee type in every SDK; c7n derives it.
        let ty = if uri.is_some() {
            Type::Group
        } else {
            Type::CanonicalUser
        };
        let gr = Grantee::builder()
            .set_display_name(s("DisplayName"))
            .set_email_address(s("EmailAddress"))
            .set_id(s("ID"))
            .set_uri(s("URI"))
            .r#type(ty)
            .build()
            .map_err(|e| local_error("PutBucketAcl", &name, e.to_string()))?;
        new_grants.push(
            Grant::builder()
                .grantee(gr)
                .permission(Permission::from(perm))
                .build(),
        );
    }
    let owner = acl.get("Owner").cloned().unwrap_or(json!({}));
    let os = |k: &str| owner.get(k).and_then(Value::as_str).map(str::to_string);
    let policy = AccessControlPolicy::builder()
        .owner(
            Owner::builder()
                .set_display_name(os("DisplayName"))
                .set_id(os("ID"))
                .build(),
        )
        .set_grants(Some(new_grants))
        .build();
    let client = s3.bucket_client(bucket);
    match s3
        .call(
            "PutBucketAcl",
            &name,
            client
                .put_bucket_acl()
                .bucket(&name)
                .access_control_policy(policy)
                .send(),
        )
        .await
    {
        Ok(_) => Ok(Some(bucket.clone())),
        Err(e) if e.code.as_deref() == Some("NoSuchBucket") => Ok(None),
        Err(e) => Err(e),
    }
}

async fn toggle_versioning(s3: &S3, data: &Map<String, Value>, bucket: &mut Value) -> Outcome {
    let name = bucket_name(bucket);
    let enabled = data.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    // c7n rewrites a missing or empty Versioning to Suspended before deciding.
    if !truthy(bucket.get("Versioning"))
        && let Value::Object(m) = bucket
    {
        m.insert("Versioning".into(), json!({"Status": "Suspended"}));
    }
    let status = bucket["Versioning"]
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let target = match (enabled, status.as_str()) {
        (true, "Suspended") => BucketVersioningStatus::Enabled,
        (false, "Enabled") => BucketVersioningStatus::Suspended,
        _ => return Ok(None),
    };
    let client = s3.bucket_client(bucket);
    let cfg = VersioningConfiguration::builder().status(target).build();
    match s3
        .call(
            "PutBucketVersioning",
            &name,
            client
                .put_bucket_versioning()
                .bucket(&name)
                .versioning_configuration(cfg)
                .send(),
        )
        .await
    {
        Ok(_) => Ok(None),
        Err(e) if e.is_access_denied() => {
            tracing::warn!(bucket = %name, "access denied while putting bucket versioning");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The tag action's tags: `tags` map, then `key`/`tag` = `value`/`msg` (c7n's `Tag.process`).
pub fn tag_spec(data: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(m)) = data.get("tags") {
        for (k, v) in m {
            out.push((k.clone(), value_string(v)));
        }
    }
    let msg = data
        .get("value")
        .filter(|v| truthy(Some(v)))
        .or_else(|| data.get("msg"))
        .filter(|v| truthy(Some(v)));
    if let Some(msg) = msg {
        let tag = data
            .get("key")
            .filter(|v| truthy(Some(v)))
            .or_else(|| data.get("tag"))
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_TAG)
            .to_string();
        let msg = value_string(msg);
        match out.iter_mut().find(|(k, _)| *k == tag) {
            Some(e) => e.1 = msg,
            None => out.push((tag, msg)),
        }
    }
    out
}

fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// mark-for-op's tag: `{op}@{action_date}` with c7n's defaults (tag `maid_status`, op
/// `stop`, days 0, hours 0, UTC).
pub fn mark_for_op_tag(
    data: &Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> (String, String) {
    let tag = data
        .get("tag")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_TAG)
        .to_string();
    let msg = data
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or("Resource does not meet policy: {op}@{action_date}");
    let op = data.get("op").and_then(Value::as_str).unwrap_or("stop");
    let days = data.get("days").and_then(Value::as_f64).unwrap_or(0.0);
    let hours = data.get("hours").and_then(Value::as_f64).unwrap_or(0.0);
    let secs = (days * 86400.0 + hours * 3600.0) as i64;
    let when = now + chrono::Duration::seconds(secs);
    let date = if hours > 0.0 {
        when.format("%Y/%m/%d %H%M UTC").to_string()
    } else {
        when.format("%Y/%m/%d").to_string()
    };
    (tag, msg.replace("{op}", op).replace("{action_date}", &date))
}

/// c7n's `modify_bucket_tags`: re-read the tags, put the new ones first, keep the others
/// unless removed, and write the whole set.
async fn modify_bucket_tags(
    s3: &S3,
    bucket: &mut Value,
    add: &[(String, String)],
    remove: &[String],
) -> Outcome {
    let name = bucket_name(bucket);
    let denied = bucket
        .get("c7n:DeniedMethods")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|m| m == "get_bucket_tagging"));
    if denied {
        tracing::warn!(bucket = %name, "unable to get the bucket's tags needed to modify them: skipped");
        return Ok(None);
    }
    let client = s3.bucket_client(bucket);
    let current: Vec<(String, String)> = match s3
        .call(
            "GetBucketTagging",
            &name,
            client.get_bucket_tagging().bucket(&name).send(),
        )
        .await
    {
        Ok(o) => o
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e) if e.code.as_deref() == Some("NoSuchTagSet") => Vec::new(),
        Err(e) => return Err(e),
    };
    if let Value::Object(m) = bucket {
        m.insert(
            "Tags".into(),
            Value::Array(
                current
                    .iter()
                    .map(|(k, v)| json!({"Key": k, "Value": v}))
                    .collect(),
            ),
        );
    }
    let mut merged: Vec<(String, String)> = add.to_vec();
    for (k, v) in current {
        if !merged.iter().any(|(mk, _)| *mk == k) && !remove.contains(&k) {
            merged.push((k, v));
        }
    }
    let mut tag_set = Vec::new();
    for (k, v) in &merged {
        tag_set.push(
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| local_error("PutBucketTagging", &name, e.to_string()))?,
        );
    }
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(|e| local_error("PutBucketTagging", &name, e.to_string()))?;
    if let Err(e) = s3
        .call(
            "PutBucketTagging",
            &name,
            client
                .put_bucket_tagging()
                .bucket(&name)
                .tagging(tagging)
                .send(),
        )
        .await
    {
        // c7n logs a failed PutBucketTagging and carries on.
        tracing::error!(bucket = %name, error = %e, "exception tagging bucket");
    }
    Ok(None)
}

/// Python's `str.format` over the names c7n passes; an unknown name leaves the string as
/// it was (c7n's `format_string_values` falls back on KeyError).
fn format_value(v: &Value, vars: &[(&str, String)]) -> Value {
    match v {
        Value::String(s) => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find('{') {
                out.push_str(&rest[..i]);
                let Some(j) = rest[i..].find('}') else {
                    return v.clone();
                };
                let name = &rest[i + 1..i + j];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, val)) => out.push_str(val),
                    None => return v.clone(),
                }
                rest = &rest[i + j + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| format_value(x, vars)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), format_value(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn set_statements(
    s3: &S3,
    data: &Map<String, Value>,
    bucket: &Value,
    args: &FormatArgs,
) -> Outcome {
    let name = bucket_name(bucket);
    let text = bucket
        .get("Policy")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("{}");
    let mut policy: Value = serde_json::from_str(text).map_err(|e| {
        local_error(
            "PutBucketPolicy",
            &name,
            format!("bucket policy is not JSON: {e}"),
        )
    })?;
    if !policy.is_object() {
        policy = json!({});
    }
    // remove_statements(remove, statements, matched)
    let remove = data.get("remove").cloned().unwrap_or(json!([]));
    let matched: Vec<Value> = bucket
        .get("c7n:CrossAccountViolations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut statements: Vec<Value> = policy
        .get("Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut found = Vec::new();
    statements.retain(|s| {
        let hit = match &remove {
            Value::String(r) if r == "*" => true,
            Value::String(r) if r == "matched" => matched.contains(s),
            Value::Array(ids) => s.get("Sid").is_some_and(|sid| ids.contains(sid)),
            _ => false,
        };
        if hit {
            found.push(s.clone());
        }
        !hit
    });
    if !found.is_empty() {
        policy["Statement"] = Value::Array(statements.clone());
    }
    // process_bucket_add
    let vars = [
        (
            "account_id",
            args.account_id
                .clone()
                .unwrap_or_else(|| "{account_id}".into()),
        ),
        ("region", args.region.clone()),
        ("bucket_name", name.clone()),
        ("bucket_region", bucket_region(bucket)),
    ];
    let vars: Vec<(&str, String)> = vars
        .into_iter()
        .filter(|(k, _)| *k != "account_id" || args.account_id.is_some())
        .collect();
    let mut targets: Vec<(String, Value)> = Vec::new();
    for s in data
        .get("statements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let sid = s
            .get("Sid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let s = format_value(&s, &vars);
        match targets.iter_mut().find(|(k, _)| *k == sid) {
            Some(t) => t.1 = s,
            None => targets.push((sid, s)),
        }
    }
    if policy.get("Statement").is_none() {
        policy["Statement"] = json!([]);
    }
    let existing: Vec<Value> = policy["Statement"].as_array().cloned().unwrap_or_default();
    for s in &existing {
        let Some(sid) = s.get("Sid").and_then(Value::as_str) else {
            continue;
        };
        if let Some(pos) = targets.iter().position(|(k, v)| k == sid && v == s) {
            targets.remove(pos);
        }
    }
    let modified = !targets.is_empty();
    if modified && let Some(a) = policy["Statement"].as_array_mut() {
        a.extend(targets.into_iter().map(|(_, v)| v));
    }
    if !modified && found.is_empty() {
        return Ok(None);
    }
    let client = s3.bucket_client(bucket);
    let text = serde_json::to_string(&policy).unwrap_or_default();
    if statements.is_empty() && !found.is_empty() && !modified {
        s3.call(
            "DeleteBucketPolicy",
            &name,
            client.delete_bucket_policy().bucket(&name).send(),
        )
        .await?;
        return Ok(Some(json!({"Name": name, "Policy": text})));
    }
    s3.call(
        "PutBucketPolicy",
        &name,
        client
            .put_bucket_policy()
            .bucket(&name)
            .policy(&text)
            .send(),
    )
    .await?;
    Ok(Some(json!({"Name": name, "Policy": text})))
}

/// c7n's DeleteBucket: (with remove-contents, the default) stop replication, suspend
/// versioning, abort multipart uploads, delete every object (every version on a versioned
/// bucket), then DeleteBucket.
async fn delete_bucket(s3: &S3, data: &Map<String, Value>, bucket: &Value) -> Outcome {
    let name = bucket_name(bucket);
    let client = s3.bucket_client(bucket);
    let status = bucket
        .get("Versioning")
        .and_then(|v| v.get("Status"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let versioned = status == "Enabled" || status == "Suspended";
    if data
        .get("remove-contents")
        .and_then(Value::as_bool)
        .unwrap_or(true)
    {
        if !bucket.get("Replication").unwrap_or(&Value::Null).is_null() {
            s3.call(
                "DeleteBucketReplication",
                &name,
                client.delete_bucket_replication().bucket(&name).send(),
            )
            .await?;
        }
        if versioned && status == "Enabled" {
            let cfg = VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build();
            s3.call(
                "PutBucketVersioning",
                &name,
                client
                    .put_bucket_versioning()
                    .bucket(&name)
                    .versioning_configuration(cfg)
                    .send(),
            )
            .await?;
        }
        let (mut key_marker, mut upload_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = s3
                .call(
                    "ListMultipartUploads",
                    &name,
                    client
                        .list_multipart_uploads()
                        .bucket(&name)
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(upload_marker.clone())
                        .send(),
                )
                .await?;
            for u in page.uploads() {
                s3.call(
                    "AbortMultipartUpload",
                    &name,
                    client
                        .abort_multipart_upload()
                        .bucket(&name)
                        .key(u.key().unwrap_or_default())
                        .upload_id(u.upload_id().unwrap_or_default())
                        .send(),
                )
                .await?;
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            upload_marker = page.next_upload_id_marker().map(str::to_string);
        }
        empty_bucket(s3, &client, &name, versioned).await?;
    }
    match s3
        .call(
            "DeleteBucket",
            &name,
            client.delete_bucket().bucket(&name).send(),
        )
        .await
    {
        Ok(_) => Ok(None),
        Err(e) if e.code.as_deref() == Some("BucketNotEmpty") => {
            tracing::error!(bucket = %name, "error while deleting bucket, bucket not empty");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn empty_bucket(
    s3: &S3,
    client: &aws_sdk_s3::Client,
    name: &str,
    versioned: bool,
) -> Result<(), ApiError> {
    let mut marker: (Option<String>, Option<String>) = (None, None);
    loop {
        let mut ids = Vec::new();
        let truncated;
        if versioned {
            let page = s3
                .call(
                    "ListObjectVersions",
                    name,
                    client
                        .list_object_versions()
                        .bucket(name)
                        .set_key_marker(marker.0.clone())
                        .set_version_id_marker(marker.1.clone())
                        .send(),
                )
                .await?;
            for v in page.versions() {
                ids.push((
                    v.key().unwrap_or_default().to_string(),
                    v.version_id().map(str::to_string),
                ));
            }
            for d in page.delete_markers() {
                ids.push((
                    d.key().unwrap_or_default().to_string(),
                    d.version_id().map(str::to_string),
                ));
            }
            truncated = page.is_truncated() == Some(true);
            marker = (
                page.next_key_marker().map(str::to_string),
                page.next_version_id_marker().map(str::to_string),
            );
        } else {
            let page = s3
                .call(
                    "ListObjects",
                    name,
                    client
                        .list_objects()
                        .bucket(name)
                        .set_marker(marker.0.clone())
                        .send(),
                )
                .await?;
            for o in page.contents() {
                ids.push((o.key().unwrap_or_default().to_string(), None));
            }
            truncated = page.is_truncated() == Some(true);
            marker.0 = page.next_marker().map(str::to_string).or_else(|| {
                page.contents()
                    .last()
                    .and_then(|o| o.key())
                    .map(str::to_string)
            });
        }
        for chunk in ids.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .filter_map(|(k, v)| {
                    ObjectIdentifier::builder()
                        .key(k)
                        .set_version_id(v.clone())
                        .build()
                        .ok()
                })
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .build()
                .map_err(|e| local_error("DeleteObjects", name, e.to_string()))?;
            s3.call(
                "DeleteObjects",
                name,
                client.delete_objects().bucket(name).delete(delete).send(),
            )
            .await?;
        }
        if !truncated {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn tag_spec_follows_c7n_precedence() {
        assert_eq!(
            tag_spec(&data(json!({"key": "Owner", "value": "sec"}))),
            vec![("Owner".into(), "sec".into())]
        );
        assert_eq!(
            tag_spec(&data(json!({"tag": "Owner", "msg": "x"}))),
            vec![("Owner".into(), "x".into())]
        );
        assert_eq!(
            tag_spec(&data(json!({"value": "x"}))),
            vec![(DEFAULT_TAG.into(), "x".into())]
        );
        assert_eq!(
            tag_spec(&data(json!({"tags": {"A": "1", "B": 2}}))),
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
    }

    #[test]
    fn mark_for_op_formats_like_c7n() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-30T10:00:00Z")
            .map(|d| d.to_utc())
            .unwrap();
        assert_eq!(
            mark_for_op_tag(&data(json!({"op": "delete", "days": 4})), now),
            (
                DEFAULT_TAG.into(),
                "Resource does not meet policy: delete@2026/02/03".into()
            )
        );
        assert_eq!(
            mark_for_op_tag(&data(json!({"op": "notify", "hours": 2, "tag": "t"})), now),
            (
                "t".into(),
                "Resource does not meet policy: notify@2026/01/30 1200 UTC".into()
            )
        );
    }

    #[test]
    fn format_leaves_unknown_names_alone() {
        let vars = [("bucket_name", "b".to_string())];
        assert_eq!(
            format_value(&json!("arn:aws:s3:::{bucket_name}/*"), &vars),
            json!("arn:aws:s3:::b/*")
        );
        assert_eq!(
            format_value(&json!("{account_id}:{bucket_name}"), &vars),
            json!("{account_id}:{bucket_name}")
        );
    }
}
