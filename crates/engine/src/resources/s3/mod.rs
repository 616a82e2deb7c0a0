//! The `aws.s3` provider: c7n's `s3` resource (c7n/resources/s3.py).
//!
//! `describe` lists (ListBuckets, pull mode only) or names (events) buckets and augments
//! them with c7n's ten calls; `filters` fetches the documents filters read lazily and
//! resolves their KMS keys; `actions` makes each action's calls as c7n's `process` does;
//! `shapes` turns SDK responses into boto3's JSON.

pub mod actions;
mod describe;
mod filters;
pub mod shapes;

pub use describe::*;

use super::{ActionRun, RunCx};
use crate::EngineError;
use crate::calls::Calls;
use crate::kms::Kms;
use czero_policy::{Prefetched, ResourceSpec};
use serde_json::{Map, Value, json};

/// The `aws.s3` provider: S3 clients per bucket region and KMS for keys policies name.
#[derive(Debug, Clone)]
pub struct Provider {
    s3: S3,
    kms: Kms,
}

impl Provider {
    pub(crate) fn new(s3: S3, kms: Kms) -> Self {
        Provider { s3, kms }
    }

    /// The clients, counting into this run's `api-stats`.
    fn counted(&self, calls: &Calls) -> (S3, Kms) {
        (
            self.s3.with_calls(calls.clone()),
            self.kms.with_calls(calls.clone()),
        )
    }

    async fn augment(
        &self,
        cx: &RunCx<'_>,
        buckets: Vec<Value>,
    ) -> Result<Vec<(Value, Prefetched)>, EngineError> {
        let (s3, _) = self.counted(&cx.calls);
        let needs = cx.policy.needs();
        let extras = Extras {
            bucket_encryption: needs.bucket_encryption,
            public_access_block: needs.public_access_block,
        };
        let keys = augment_keys(cx.policy.augment_keys.as_deref());
        s3.augment_all(buckets, &keys, extras)
            .await
            .map_err(|e| aws_error(cx, e))
    }
}

pub(crate) fn aws_error(cx: &RunCx<'_>, error: ApiError) -> EngineError {
    EngineError::Aws {
        policy: cx.policy.name.clone(),
        error: Box::new(error),
    }
}

/// A bucket ARN (`arn:aws:s3:::name`, as Security Hub names buckets) to its name.
fn bucket_id(id: &str) -> &str {
    id.strip_prefix("arn:aws:s3:::").unwrap_or(id)
}

impl super::Provider for Provider {
    type Resource = (Value, Prefetched);

    fn spec(&self) -> &'static ResourceSpec {
        &czero_policy::s3::SPEC
    }

    /// The S3 describe source has no server-side id filter, so a named bucket is taken as
    /// `{Name}` and augmented directly: no ListBuckets in an event mode.
    fn class_name(&self, action: &str) -> &'static str {
        actions::class_name(action).unwrap_or("Action")
    }

    async fn get_resources(
        &self,
        cx: &RunCx<'_>,
        ids: Vec<String>,
    ) -> Result<Vec<Self::Resource>, EngineError> {
        let mut names: Vec<&str> = Vec::new();
        for id in ids.iter().map(|i| bucket_id(i)) {
            if !id.is_empty() && !names.contains(&id) {
                names.push(id);
            }
        }
        let buckets = names.into_iter().map(|n| json!({ "Name": n })).collect();
        self.augment(cx, buckets).await
    }

    async fn list(&self, cx: &RunCx<'_>) -> Result<Vec<Self::Resource>, EngineError> {
        let (s3, _) = self.counted(&cx.calls);
        let buckets = s3.list_buckets().await.map_err(|e| aws_error(cx, e))?;
        self.augment(cx, buckets).await
    }

    async fn filter(
        &self,
        cx: &mut RunCx<'_>,
        resources: Vec<Self::Resource>,
    ) -> Result<Vec<Value>, EngineError> {
        let (_, kms) = self.counted(&cx.calls);
        filters::run(&kms, cx, resources).await
    }

    async fn act(
        &self,
        cx: &mut RunCx<'_>,
        action: &str,
        data: &Map<String, Value>,
        resources: &mut [Value],
    ) -> ActionRun {
        let (s3, kms) = self.counted(&cx.calls);
        actions::process(&s3, &kms, cx, action, data, resources).await
    }
}
