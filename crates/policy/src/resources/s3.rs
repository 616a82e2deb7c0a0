//! The `aws.s3` filters of c7n/resources/s3.py over the augmented bucket JSON.

use crate::filters::{EvalError, Fetched, KmsKey, Prefetched};
use serde_json::{Map, Value};

const GLOBAL_ALL: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTH_ALL: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// c7n's `get_region`: LocationConstraint `EU` → eu-west-1, null/absent → us-east-1.
pub fn bucket_region(bucket: &Value) -> String {
    match bucket
        .get("Location")
        .and_then(|l| l.get("LocationConstraint"))
        .and_then(Value::as_str)
    {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(r) => r.to_string(),
    }
}

pub const ENCRYPTION_KEY: &str = "c7n:bucket-encryption";
pub const PUBLIC_BLOCK_KEY: &str = "c7n:PublicAccessBlock";
const PUBLIC_BLOCK_KEYS: [&str; 4] = [
    "BlockPublicPolicy",
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "RestrictPublicBuckets",
];

/// check-public-block's starting point: every key false.
pub fn default_public_block() -> Value {
    Value::Object(
        PUBLIC_BLOCK_KEYS
            .iter()
            .map(|k| (k.to_string(), Value::Bool(false)))
            .collect(),
    )
}

/// The fetch step of c7n's `BucketEncryption.process_bucket`: the annotation when present,
/// else the prefetched document, stored on the bucket. `false` when the call was denied
/// (c7n raises, logs the error and leaves the bucket out of the filter's matches).
pub(crate) fn reveal_encryption(b: &mut Value, pre: &Prefetched) -> Result<bool, EvalError> {
    if b.get(ENCRYPTION_KEY).is_some() {
        return Ok(true);
    }
    match &pre.bucket_encryption {
        Some(Fetched::Found(doc)) => {
            insert(b, ENCRYPTION_KEY, doc.clone());
            Ok(true)
        }
        Some(Fetched::Denied) => Ok(false),
        None => Err(EvalError::MissingAnnotation(ENCRYPTION_KEY)),
    }
}

/// The fetch step of c7n's `FilterPublicBlock.process_bucket`: on AccessDenied it records
/// `GetPublicAccessBlock` in `c7n:DeniedMethods` and keeps every setting false.
pub(crate) fn reveal_public_block(b: &mut Value, pre: &Prefetched) -> Result<(), EvalError> {
    if b.get(PUBLIC_BLOCK_KEY).is_some() {
        return Ok(());
    }
    match &pre.public_access_block {
        Some(Fetched::Found(doc)) => insert(b, PUBLIC_BLOCK_KEY, doc.clone()),
        Some(Fetched::Denied) => {
            if let Value::Object(m) = b {
                match m
                    .entry("c7n:DeniedMethods")
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(a) => a.push(Value::String("GetPublicAccessBlock".into())),
                    _ => {
                        return Err(EvalError::Python(
                            "'c7n:DeniedMethods' is not a list".into(),
                        ));
                    }
                }
            }
            insert(b, PUBLIC_BLOCK_KEY, default_public_block());
        }
        None => return Err(EvalError::MissingAnnotation(PUBLIC_BLOCK_KEY)),
    }
    Ok(())
}

/// Stores every prefetched document on `b` as c7n's filters would after reading them.
pub fn reveal_prefetched(b: &mut Value, pre: &Prefetched) {
    // A document that was not fetched is skipped; the only other failure (a non-list
    // `c7n:DeniedMethods`) leaves the bucket as it was.
    if pre.bucket_encryption.is_some() {
        let _ = reveal_encryption(b, pre);
    }
    if pre.public_access_block.is_some() {
        let _ = reveal_public_block(b, pre);
    }
}

fn insert(b: &mut Value, key: &str, v: Value) {
    if let Value::Object(m) = b {
        m.insert(key.to_string(), v);
    }
}

/// `BucketEncryption.process_bucket` after the fetch. `key` is the filter's KMS key as
/// resolved for the bucket's region; it is read only for `crypto: aws:kms`.
pub(crate) fn bucket_encryption(
    b: &Value,
    state: bool,
    crypto: Option<&str>,
    key: Option<&KmsKey>,
    bke: Option<bool>,
) -> Result<bool, EvalError> {
    let be = b
        .get(ENCRYPTION_KEY)
        .ok_or(EvalError::MissingAnnotation(ENCRYPTION_KEY))?;
    let empty = Vec::new();
    let rules = be
        .get("ServerSideEncryptionConfiguration")
        .and_then(|c| c.get("Rules"))
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let key_enabled = |rule: &Value| truthy(Some(rule)) && truthy(rule.get("BucketKeyEnabled"));
    // c7n returns from inside `for rule in rules`: only the first rule counts.
    match bke {
        Some(true) => {
            if let Some(rule) = rules.first() {
                return Ok(key_enabled(rule));
            }
        }
        Some(false) => {
            if let Some(rule) = rules.first() {
                return Ok(!key_enabled(rule));
            }
        }
        None => {}
    }
    let filter_bucket = |sse: &Value| -> bool {
        let rule = sse.get("ApplyServerSideEncryptionByDefault");
        if !truthy(rule) {
            return false;
        }
        let algo = rule
            .and_then(|r| r.get("SSEAlgorithm"))
            .and_then(Value::as_str);
        match crypto {
            None => matches!(algo, Some("AES256" | "aws:kms")),
            Some("AES256") => algo == Some("AES256"),
            Some("aws:kms") if algo == Some("aws:kms") => match key {
                // No `key` in the filter: any KMS default encryption matches.
                None => true,
                // The rule may name the key by id, ARN, alias name or alias ARN; no key
                // means the AWS managed key.
                Some(k) => {
                    let id = rule
                        .and_then(|r| r.get("KMSMasterKeyID"))
                        .and_then(Value::as_str)
                        .unwrap_or("alias/aws/s3");
                    id == k.arn || id == k.key_id || k.aliases.iter().any(|a| a == id)
                }
            },
            _ => false,
        }
    };
    Ok(match rules.first() {
        Some(sse) => filter_bucket(sse) == state,
        None => !state,
    })
}

/// `FilterPublicBlock.matches_filter`. An annotation of `{}` (no configuration) reads as
/// c7n's default of all four settings false.
pub(crate) fn check_public_block(
    b: &Value,
    wanted: &[(&str, Option<bool>)],
) -> Result<bool, EvalError> {
    let cfg = b
        .get(PUBLIC_BLOCK_KEY)
        .ok_or(EvalError::MissingAnnotation(PUBLIC_BLOCK_KEY))?;
    let empty = Map::new();
    let cfg = cfg.as_object().unwrap_or(&empty);
    let get = |k: &str| -> Result<Value, EvalError> {
        if cfg.is_empty() {
            return Ok(Value::Bool(false));
        }
        cfg.get(k)
            .cloned()
            .ok_or_else(|| EvalError::Python(format!("KeyError: '{k}' in c7n:PublicAccessBlock")))
    };
    let given: Vec<(&str, bool)> = wanted
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect();
    if !given.is_empty() {
        for (k, want) in given {
            if get(k)? != Value::Bool(want) {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if cfg.is_empty() {
        return Ok(true);
    }
    Ok(!cfg.values().all(|v| truthy(Some(v))))
}

/// The bucket's policy document, parsed; `None` when it has none.
fn policy_doc(b: &Value) -> Result<Option<Map<String, Value>>, EvalError> {
    match b.get("Policy") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Err(EvalError::Python(
                "bucket Policy is not a JSON object".into(),
            )),
            Err(e) => Err(EvalError::Python(format!("bucket Policy is not JSON: {e}"))),
        },
        Some(_) => Err(EvalError::Python(
            "bucket Policy must be a JSON string".into(),
        )),
    }
}

fn statements(p: &Map<String, Value>) -> Result<Vec<Map<String, Value>>, EvalError> {
    match p.get("Statement") {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_object().cloned().ok_or_else(|| {
                    EvalError::Python("policy Statement entry is not an object".into())
                })
            })
            .collect(),
        // c7n iterates a single-statement dict by its keys and fails on `.get`.
        Some(_) => Err(EvalError::Python(
            "'str' object has no attribute 'get' (policy Statement is not a list)".into(),
        )),
    }
}

fn remaining_ids(stmts: &[Map<String, Value>], ids: &[String]) -> Vec<String> {
    let mut required: Vec<String> = ids.to_vec();
    for s in stmts {
        if let Some(Value::String(sid)) = s.get("Sid")
            && let Some(pos) = required.iter().position(|r| r == sid)
        {
            required.remove(pos);
        }
    }
    required
}

/// `MissingPolicyStatementFilter.__call__`.
pub(crate) fn missing_statement(b: &Value, ids: &[String]) -> Result<bool, EvalError> {
    let Some(p) = policy_doc(b)? else {
        return Ok(true);
    };
    Ok(!remaining_ids(&statements(&p)?, ids).is_empty())
}

/// `HasStatementFilter.process_resource` (full matches; `PartialMatch` is unsupported).
pub(crate) fn has_statement(
    b: &Value,
    ids: &[String],
    required: &[Value],
) -> Result<bool, EvalError> {
    let Some(p) = policy_doc(b)? else {
        return Ok(false);
    };
    let stmts = statements(&p)?;
    if !remaining_ids(&stmts, ids).is_empty() {
        return Ok(false);
    }
    for req in required {
        let Value::Object(req) = req else {
            return Ok(false);
        };
        let matched = stmts.iter().any(|rs| {
            let found = req
                .iter()
                .filter(|(k, v)| statement_value_eq(k, v, rs))
                .count();
            found > 0 && found == req.len()
        });
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

fn statement_value_eq(key: &str, req: &Value, rs: &Map<String, Value>) -> bool {
    let Some(res) = rs.get(key) else {
        return req.is_null();
    };
    let (mut req, mut res) = (req.clone(), res.clone());
    if key == "Condition" {
        req = lower_keys(&req);
        res = lower_keys(&res);
    }
    if key == "Action" || key == "NotAction" {
        return lower_set(&req) == lower_set(&res);
    }
    canonical_sets(&req) == canonical_sets(&res)
}

fn lower_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_lowercase(), lower_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_keys).collect()),
        other => other.clone(),
    }
}

fn lower_set(v: &Value) -> Option<Vec<String>> {
    let mut out: Vec<String> = match v {
        Value::String(s) => vec![s.to_lowercase()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_lowercase))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    out.sort();
    out.dedup();
    Some(out)
}

/// c7n's `format_to_set` / `format_dict_with_sets`: strings and lists become sets.
fn canonical_sets(v: &Value) -> Value {
    match v {
        Value::String(_) | Value::Array(_) => {
            let items: Vec<Value> = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let mut keys: Vec<String> = items.iter().map(|i| i.to_string()).collect();
            keys.sort();
            keys.dedup();
            serde_json::json!({ "$set": keys })
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), canonical_sets(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `GlobalGrantsFilter.process_bucket`: the offending grants' permissions, in grant order
/// (empty: no match).
pub(crate) fn global_grants(
    b: &Value,
    allow_website: bool,
    perms: &[String],
) -> Result<Vec<String>, EvalError> {
    let mut results = Vec::new();
    let acl = match b.get("Acl") {
        None => return Ok(results),
        Some(a) if !truthy(Some(a)) => return Ok(results),
        Some(a) => a,
    };
    let grants = match acl.get("Grants") {
        Some(Value::Array(g)) if !g.is_empty() => g,
        Some(Value::Array(_)) | Some(Value::Null) => return Ok(results),
        None => return Err(EvalError::Python("KeyError: 'Grants'".into())),
        Some(_) => return Ok(results),
    };
    for g in grants {
        let Some(uri) = g.get("Grantee").and_then(|x| x.get("URI")) else {
            continue;
        };
        if uri != GLOBAL_ALL && uri != AUTH_ALL {
            continue;
        }
        let perm = g
            .get("Permission")
            .and_then(Value::as_str)
            .ok_or_else(|| EvalError::Python("KeyError: 'Permission'".into()))?;
        if allow_website && perm == "READ" {
            let website = b
                .get("Website")
                .ok_or_else(|| EvalError::Python("KeyError: 'Website'".into()))?;
            if truthy(Some(website)) {
                continue;
            }
        }
        if perms.is_empty() || perms.iter().any(|p| p == perm) {
            results.push(perm.to_string());
        }
    }
    Ok(results)
}

/// `aws.s3` as the native engine runs it.
pub const SPEC: crate::ResourceSpec = crate::ResourceSpec {
    names: &["aws.s3", "s3"],
    id: "Name",
    arn_service: "s3",
    config_type: "AWS::S3::Bucket",
    // config-rule: the bucket AWS Config names is read live (see the engine's provider).
    modes: &[
        "pull",
        "periodic",
        "schedule",
        "cloudtrail",
        "hub-finding",
        "hub-action",
        "config-rule",
    ],
    filters: &[
        "bucket-encryption",
        "check-public-block",
        "has-statement",
        "missing-policy-statement",
        "missing-statement",
        "global-grants",
    ],
    actions: &[
        "set-bucket-encryption",
        "set-public-block",
        "delete-global-grants",
        "toggle-versioning",
        "tag",
        "remove-tag",
        "unmark",
        "mark-for-op",
        "set-statements",
        "delete",
    ],
};
