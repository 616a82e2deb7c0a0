//! Filters: the value filter, the boolean blocks and the `aws.s3` filters, evaluated purely
//! over a resource already fetched (and, for `aws.s3`, augmented) by the engine.
//!
//! [`Filter::process`] runs a filter on one resource the way c7n's set-based `process`
//! treats that resource, annotations included: a matching value filter appends its key to
//! `c7n:MatchedFilters`, `global-grants` writes `GlobalPermissions`, `bucket-encryption` and
//! `check-public-block` store the document they read; `or` runs every branch, `and` stops at
//! the first miss and, when it misses, restores the resource's `c7n*` keys (c7n's
//! `AnnotationSweeper`), and `not` always restores them.

use crate::value::ValueFilter;
use crate::{Needs, s3};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What a filter may read besides the resource.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// "Now" for `value_type: age` / `expiration`.
    pub now: DateTime<Utc>,
}

/// Everything [`Filter::process`] reads besides the resource itself.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// "Now" for `value_type: age` / `expiration`.
    pub now: DateTime<Utc>,
    /// The triggering event, for `type: event` filters (none: they pass, as in c7n).
    pub event: Option<&'a Value>,
    /// The documents c7n's filters fetch themselves, fetched ahead by the engine for this
    /// resource; a filter stores one on the resource when it reads it, as c7n does.
    pub prefetched: &'a Prefetched,
    /// KMS keys named by `bucket-encryption` filters, resolved per region.
    pub kms_keys: &'a KmsKeys,
}

/// A document a filter reads lazily in c7n (GetBucketEncryption, GetPublicAccessBlock).
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The document, or c7n's default when the call answered NoSuch*/NotFound.
    Found(Value),
    /// The call was denied (AccessDenied).
    Denied,
}

/// The lazily read documents of one bucket (`None`: not fetched).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prefetched {
    /// `c7n:bucket-encryption`.
    pub bucket_encryption: Option<Fetched>,
    /// `c7n:PublicAccessBlock`.
    pub public_access_block: Option<Fetched>,
}

/// A KMS key as c7n's `KMSKeyResolverMixin` resolves it: DescribeKey's `KeyId` and `Arn`,
/// and the names and ARNs of its aliases (ListAliases).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KmsKey {
    pub key_id: String,
    pub arn: String,
    pub aliases: Vec<String>,
}

/// Resolved KMS keys by (key as written in the policy, region).
#[derive(Debug, Clone, Default)]
pub struct KmsKeys(HashMap<(String, String), KmsKey>);

impl KmsKeys {
    pub fn insert(&mut self, key: &str, region: &str, resolved: KmsKey) {
        self.0
            .insert((key.to_string(), region.to_string()), resolved);
    }

    pub fn get(&self, key: &str, region: &str) -> Option<&KmsKey> {
        self.0.get(&(key.to_string(), region.to_string()))
    }
}

/// A filter could not be evaluated (where c7n would raise too, or data is missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A lazily fetched annotation (`c7n:bucket-encryption`, `c7n:PublicAccessBlock`) is
    /// not on the resource: the engine must fetch what [`crate::Policy::needs`] lists.
    #[error("resource lacks the `{0}` annotation this filter needs")]
    MissingAnnotation(&'static str),
    /// A `bucket-encryption` key was not resolved for the bucket's region: the engine must
    /// resolve what [`crate::Policy::filter_kms_keys`] lists.
    #[error("KMS key `{key}` was not resolved for region {region}")]
    UnresolvedKmsKey { key: String, region: String },
    /// The filter is valid c7n but not evaluated natively (listed in `unsupported`).
    #[error("filter `{0}` is not evaluated natively")]
    Unsupported(String),
    /// c7n raises here (e.g. an invalid JMESPath key, a malformed policy document).
    #[error("{0}")]
    Python(String),
}

/// A parsed filter.
#[derive(Debug, Clone, Serialize)]
pub enum Filter {
    Value(ValueFilter),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// c7n's `not`: true unless every inner filter matches.
    Not(Vec<Filter>),
    BucketEncryption {
        state: bool,
        crypto: Option<String>,
        /// A key id, key ARN, alias name or alias ARN (resolved through KMS).
        key: Option<String>,
        bucket_key_enabled: Option<bool>,
    },
    CheckPublicBlock {
        block_public_acls: Option<bool>,
        ignore_public_acls: Option<bool>,
        block_public_policy: Option<bool>,
        restrict_public_buckets: Option<bool>,
    },
    HasStatement {
        statement_ids: Vec<String>,
        statements: Vec<Value>,
    },
    MissingPolicyStatement {
        statement_ids: Vec<String>,
    },
    GlobalGrants {
        allow_website: bool,
        permissions: Vec<String>,
    },
    /// `type: event`: a value filter over the event; passes when there is no event.
    Event(ValueFilter),
    /// A valid c7n filter not evaluated natively (its name).
    Unsupported(String),
}

/// c7n's `ANNOTATION_KEY`, where value filters record the keys they matched.
pub const MATCHED_FILTERS: &str = "c7n:MatchedFilters";

impl Filter {
    /// Does `resource` pass this filter? (No event: `type: event` filters pass, as in c7n.)
    /// Evaluates on a copy: the resource is not annotated.
    pub fn matches(&self, resource: &Value, ctx: &EvalContext) -> Result<bool, EvalError> {
        self.matches_with_event(resource, ctx, None)
    }

    /// As [`Filter::matches`], with the triggering event for `type: event` filters.
    pub fn matches_with_event(
        &self,
        resource: &Value,
        ctx: &EvalContext,
        event: Option<&Value>,
    ) -> Result<bool, EvalError> {
        let (prefetched, kms_keys) = (Prefetched::default(), KmsKeys::default());
        let inputs = Inputs {
            now: ctx.now,
            event,
            prefetched: &prefetched,
            kms_keys: &kms_keys,
        };
        self.process(&mut resource.clone(), &inputs)
    }

    /// Does `resource` pass this filter? Annotates `resource` as c7n's filters do (see the
    /// module documentation); top-level filters are applied in order, stopping at the
    /// first miss, as c7n's `filter_resources` does.
    pub fn process(&self, resource: &mut Value, inputs: &Inputs<'_>) -> Result<bool, EvalError> {
        match self {
            Filter::Value(v) => {
                let hit = v.matches(resource, inputs.now)?;
                if hit {
                    set_annotation(
                        resource,
                        MATCHED_FILTERS,
                        vec![Value::String(v.key.clone())],
                    );
                }
                Ok(hit)
            }
            Filter::And(fs) => {
                let saved = c7n_annotations(resource);
                for f in fs {
                    if !f.process(resource, inputs)? {
                        sweep(resource, saved);
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            // Every branch sees every resource (c7n's `Or.process_set`): no short circuit.
            Filter::Or(fs) => {
                let mut any = false;
                for f in fs {
                    any |= f.process(resource, inputs)?;
                }
                Ok(any)
            }
            Filter::Not(fs) => {
                let saved = c7n_annotations(resource);
                let mut all = true;
                for f in fs {
                    if !f.process(resource, inputs)? {
                        all = false;
                        break;
                    }
                }
                sweep(resource, saved);
                Ok(!all)
            }
            // c7n annotates the event, not the resource.
            Filter::Event(v) => match inputs.event {
                None => Ok(true),
                Some(e) => v.matches(e, inputs.now),
            },
            Filter::BucketEncryption {
                state,
                crypto,
                key,
                bucket_key_enabled,
            } => {
                if !s3::reveal_encryption(resource, inputs.prefetched)? {
                    // c7n's process_bucket raises on AccessDenied; the filter logs it and
                    // leaves the bucket out.
                    return Ok(false);
                }
                let resolved = match (crypto.as_deref(), key) {
                    (Some("aws:kms"), Some(k)) => {
                        let region = s3::bucket_region(resource);
                        match inputs.kms_keys.get(k, &region) {
                            Some(r) => Some(r),
                            None => {
                                return Err(EvalError::UnresolvedKmsKey {
                                    key: k.clone(),
                                    region,
                                });
                            }
                        }
                    }
                    _ => None,
                };
                s3::bucket_encryption(
                    resource,
                    *state,
                    crypto.as_deref(),
                    resolved,
                    *bucket_key_enabled,
                )
            }
            Filter::CheckPublicBlock {
                block_public_acls,
                ignore_public_acls,
                block_public_policy,
                restrict_public_buckets,
            } => {
                s3::reveal_public_block(resource, inputs.prefetched)?;
                s3::check_public_block(
                    resource,
                    &[
                        ("BlockPublicPolicy", *block_public_policy),
                        ("BlockPublicAcls", *block_public_acls),
                        ("IgnorePublicAcls", *ignore_public_acls),
                        ("RestrictPublicBuckets", *restrict_public_buckets),
                    ],
                )
            }
            Filter::HasStatement {
                statement_ids,
                statements,
            } => s3::has_statement(resource, statement_ids, statements),
            Filter::MissingPolicyStatement { statement_ids } => {
                s3::missing_statement(resource, statement_ids)
            }
            Filter::GlobalGrants {
                allow_website,
                permissions,
            } => {
                let found = s3::global_grants(resource, *allow_website, permissions)?;
                if found.is_empty() {
                    return Ok(false);
                }
                set_annotation(
                    resource,
                    "GlobalPermissions",
                    found.into_iter().map(Value::String).collect(),
                );
                Ok(true)
            }
            Filter::Unsupported(n) => Err(EvalError::Unsupported(n.clone())),
        }
    }

    pub(crate) fn collect_needs(&self, n: &mut Needs) {
        match self {
            Filter::And(fs) | Filter::Or(fs) | Filter::Not(fs) => {
                fs.iter().for_each(|f| f.collect_needs(n))
            }
            Filter::BucketEncryption { .. } => n.bucket_encryption = true,
            Filter::CheckPublicBlock { .. } => n.public_access_block = true,
            _ => {}
        }
    }

    pub(crate) fn collect_kms_keys(&self, keys: &mut Vec<String>) {
        match self {
            Filter::And(fs) | Filter::Or(fs) | Filter::Not(fs) => {
                fs.iter().for_each(|f| f.collect_kms_keys(keys))
            }
            // c7n resolves `key` whatever `crypto` says but reads it only for aws:kms: only
            // those are resolved here, so a key that is never read cannot fail a run.
            Filter::BucketEncryption {
                crypto: Some(c),
                key: Some(k),
                ..
            } if c == "aws:kms" && !keys.contains(k) => keys.push(k.clone()),
            _ => {}
        }
    }
}

/// c7n's `set_annotation`: a new key gets the list; an existing list is extended; an
/// existing non-list value is left alone.
pub(crate) fn set_annotation(resource: &mut Value, key: &str, values: Vec<Value>) {
    let Value::Object(m) = resource else { return };
    match m.get_mut(key) {
        Some(Value::Array(a)) => a.extend(values),
        Some(_) => {}
        None => {
            m.insert(key.to_string(), Value::Array(values));
        }
    }
}

/// The resource's keys starting with `c7n`, as `AnnotationSweeper` saves them.
fn c7n_annotations(resource: &Value) -> Map<String, Value> {
    match resource {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| k.starts_with("c7n"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    }
}

/// `AnnotationSweeper.sweep` for one resource that left the block: every `c7n*` key is
/// dropped and the saved ones are put back (at the end, as Python's `dict.update` does).
fn sweep(resource: &mut Value, saved: Map<String, Value>) {
    let Value::Object(m) = resource else { return };
    let keys: Vec<String> = m.keys().filter(|k| k.starts_with("c7n")).cloned().collect();
    for k in keys {
        m.shift_remove(&k);
    }
    m.extend(saved);
}
