//! Filters: the value filter, the boolean blocks and the `aws.s3` filters, evaluated purely
//! over a resource already fetched (and, for `aws.s3`, augmented) by the engine.

use crate::value::ValueFilter;
use crate::{Needs, s3};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// What a filter may read besides the resource.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// "Now" for `value_type: age` / `expiration`.
    pub now: DateTime<Utc>,
}

/// A filter could not be evaluated (where c7n would raise too, or data is missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A lazily fetched annotation (`c7n:bucket-encryption`, `c7n:PublicAccessBlock`) is
    /// not on the resource: the engine must fetch what [`crate::Policy::needs`] lists.
    #[error("resource lacks the `{0}` annotation this filter needs")]
    MissingAnnotation(&'static str),
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

impl Filter {
    /// Does `resource` pass this filter? (No event: `type: event` filters pass, as in c7n.)
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
        match self {
            Filter::Value(v) => v.matches(resource, ctx.now),
            Filter::And(fs) => {
                for f in fs {
                    if !f.matches_with_event(resource, ctx, event)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Filter::Or(fs) => {
                for f in fs {
                    if f.matches_with_event(resource, ctx, event)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::Not(fs) => {
                for f in fs {
                    if !f.matches_with_event(resource, ctx, event)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::Event(v) => match event {
                None => Ok(true),
                Some(e) => v.matches(e, ctx.now),
            },
            Filter::BucketEncryption {
                state,
                crypto,
                bucket_key_enabled,
            } => s3::bucket_encryption(resource, *state, crypto.as_deref(), *bucket_key_enabled),
            Filter::CheckPublicBlock {
                block_public_acls,
                ignore_public_acls,
                block_public_policy,
                restrict_public_buckets,
            } => s3::check_public_block(
                resource,
                &[
                    ("BlockPublicPolicy", *block_public_policy),
                    ("BlockPublicAcls", *block_public_acls),
                    ("IgnorePublicAcls", *ignore_public_acls),
                    ("RestrictPublicBuckets", *restrict_public_buckets),
                ],
            ),
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
            } => s3::global_grants(resource, *allow_website, permissions),
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
}
