//! KMS key lookups, as c7n's `KMSKeyResolverMixin` makes them: a policy's `key` (key id,
//! key ARN, alias name or alias ARN) goes to DescribeKey in the bucket's region; the
//! `bucket-encryption` filter also lists the key's aliases (ListAliases), since a bucket's
//! default encryption rule may name the key by any of them.

use crate::calls::Calls;
use crate::regional::{self, PerRegion};
use crate::s3::ApiError;
use aws_config::SdkConfig;
use aws_sdk_kms::Client;
use czero_policy::KmsKey;

/// One failed KMS lookup.
#[derive(Debug, Clone, thiserror::Error)]
#[error("KMS key `{key}` {} in {region} (kms {operation}: {message})", if self.is_not_found() { "does not exist" } else { "could not be resolved" })]
pub struct KmsError {
    pub operation: &'static str,
    /// The key as the policy names it.
    pub key: String,
    pub region: String,
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

impl KmsError {
    fn from_api(key: &str, region: &str, e: ApiError) -> Self {
        KmsError {
            operation: e.operation,
            key: key.to_string(),
            region: region.to_string(),
            code: e.code,
            message: e.message,
            retryable: e.retryable,
        }
    }

    /// KMS answers an unknown key id, ARN or alias with NotFoundException.
    pub fn is_not_found(&self) -> bool {
        self.code.as_deref() == Some("NotFoundException")
    }
}

/// KMS clients, one per region, all from the same SDK configuration (so
/// `AWS_ENDPOINT_URL` applies, as for S3).
#[derive(Clone)]
pub struct Kms {
    base: aws_sdk_kms::config::Builder,
    clients: PerRegion<Client>,
    calls: Calls,
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kms").finish_non_exhaustive()
    }
}

impl Kms {
    /// The same retry and timeout settings as the S3 clients (see [`crate::regional`]).
    pub fn new(sdk: &SdkConfig) -> Self {
        let base = aws_sdk_kms::config::Builder::from(sdk)
            .retry_config(regional::retry_config())
            .timeout_config(regional::timeout_config());
        Kms {
            base,
            clients: PerRegion::default(),
            calls: Calls::default(),
        }
    }

    /// The same clients, counting calls into the run's counter.
    pub(crate) fn with_calls(&self, calls: Calls) -> Self {
        Kms {
            calls,
            ..self.clone()
        }
    }

    fn client(&self, region: &str) -> Client {
        self.clients.get(region, |r| {
            Client::from_conf(self.base.clone().region(r).build())
        })
    }

    /// DescribeKey: the key's id and ARN (`set-bucket-encryption` puts the ARN).
    pub async fn describe_key(&self, key: &str, region: &str) -> Result<KmsKey, KmsError> {
        self.calls.count_in("kms", "DescribeKey");
        let resp = self
            .client(region)
            .describe_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| {
                KmsError::from_api(key, region, ApiError::from_sdk("DescribeKey", key, e))
            })?;
        let meta = resp.key_metadata().ok_or_else(|| KmsError {
            operation: "DescribeKey",
            key: key.to_string(),
            region: region.to_string(),
            code: None,
            message: "the answer has no KeyMetadata".into(),
            retryable: false,
        })?;
        Ok(KmsKey {
            key_id: meta.key_id().to_string(),
            arn: meta.arn().unwrap_or_default().to_string(),
            aliases: Vec::new(),
        })
    }

    /// DescribeKey, then ListAliases for the key id: what the `bucket-encryption` filter
    /// compares a rule's `KMSMasterKeyID` with. Like c7n, reads the first page of aliases.
    pub async fn resolve(&self, key: &str, region: &str) -> Result<KmsKey, KmsError> {
        let mut k = self.describe_key(key, region).await?;
        self.calls.count_in("kms", "ListAliases");
        let resp = self
            .client(region)
            .list_aliases()
            .key_id(&k.key_id)
            .send()
            .await
            .map_err(|e| {
                KmsError::from_api(key, region, ApiError::from_sdk("ListAliases", key, e))
            })?;
        for a in resp.aliases() {
            k.aliases.extend(
                [a.alias_arn(), a.alias_name()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string),
            );
        }
        Ok(k)
    }
}
