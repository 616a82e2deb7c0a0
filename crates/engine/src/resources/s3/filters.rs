//! The filter stage for buckets: KMS keys named by `bucket-encryption` filters resolved per
//! bucket region (c7n's `KMSKeyResolverMixin`), then each bucket through the policy's
//! filters in order (czero-policy evaluates them), stopping at the first miss.

use super::{bucket_name, bucket_region};
use crate::EngineError;
use crate::kms::Kms;
use crate::resources::RunCx;
use czero_policy::{Fetched, Inputs, KmsKeys, Prefetched};
use serde_json::Value;

pub(super) async fn run(
    kms: &Kms,
    cx: &mut RunCx<'_>,
    buckets: Vec<(Value, Prefetched)>,
) -> Result<Vec<Value>, EngineError> {
    let kms_keys = resolve_filter_keys(kms, cx, &buckets).await?;
    let policy = cx.policy;
    let mut matched = Vec::new();
    for (mut b, prefetched) in buckets {
        if prefetched.bucket_encryption == Some(Fetched::Denied) {
            // c7n's bucket-encryption filter logs the error and leaves the bucket out.
            cx.log.warn(
                "custodian.filters",
                format!(
                    "bucket {}: GetBucketEncryption access denied: bucket-encryption does not match it",
                    bucket_name(&b)
                ),
            );
        }
        let inputs = Inputs {
            now: cx.now,
            // `type: event` filters see the triggering event in event modes; in a scan
            // there is none and they pass, as c7n's EventFilter does.
            event: cx.event,
            prefetched: &prefetched,
            kms_keys: &kms_keys,
        };
        let mut ok = true;
        // In order, stopping at the first miss, annotating as c7n's filters do.
        for f in &policy.filters {
            let hit = f
                .process(&mut b, &inputs)
                .map_err(|e| EngineError::Policy {
                    policy: policy.name.clone(),
                    message: format!("filter on bucket {}: {e}", bucket_name(&b)),
                })?;
            if !hit {
                ok = false;
                break;
            }
        }
        if ok {
            matched.push(b);
        }
    }
    Ok(matched)
}

/// The KMS keys the policy's `bucket-encryption` filters compare against, resolved in every
/// region the buckets are in (DescribeKey and ListAliases, as c7n's `resolve_keys`). c7n
/// logs a key it cannot resolve and matches as if no bucket used it; a policy naming a key
/// that does not exist is an error here, naming the key and the policy.
async fn resolve_filter_keys(
    kms: &Kms,
    cx: &RunCx<'_>,
    buckets: &[(Value, Prefetched)],
) -> Result<KmsKeys, EngineError> {
    let mut out = KmsKeys::default();
    let keys = cx.policy.filter_kms_keys();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut regions: Vec<String> = buckets.iter().map(|(b, _)| bucket_region(b)).collect();
    regions.sort();
    regions.dedup();
    for key in &keys {
        for region in &regions {
            let k = kms
                .resolve(key, region)
                .await
                .map_err(|e| EngineError::Kms {
                    policy: cx.policy.name.clone(),
                    context: "filter bucket-encryption".into(),
                    error: Box::new(e),
                })?;
            out.insert(key, region, k);
        }
    }
    Ok(out)
}
