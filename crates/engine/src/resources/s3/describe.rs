//! Describe and get: buckets listed (pull) or named (events), augmented the way c7n's
//! `BucketAssembly` does it, with a client per bucket region.

use super::shapes;
use crate::calls::Calls;
use crate::regional::{self, PerRegion};
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use czero_policy::{Fetched, Prefetched};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::future::Future;

/// The ten augment calls, in c7n's `S3_AUGMENT_TABLE` order: (boto3 method, resource key).
pub const AUGMENT_TABLE: [(&str, &str); 10] = [
    ("get_bucket_location", "Location"),
    ("get_bucket_tagging", "Tags"),
    ("get_bucket_policy", "Policy"),
    ("get_bucket_acl", "Acl"),
    ("get_bucket_replication", "Replication"),
    ("get_bucket_versioning", "Versioning"),
    ("get_bucket_website", "Website"),
    ("get_bucket_logging", "Logging"),
    ("get_bucket_notification_configuration", "Notification"),
    ("get_bucket_lifecycle_configuration", "Lifecycle"),
];

/// Throttling codes S3 and the SDK use; with any 5xx they make an error retryable.
const THROTTLING: [&str; 8] = [
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
];

/// One failed S3 call, classified once so every layer can tell retryable from not.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub operation: &'static str,
    pub bucket: String,
    pub code: Option<String>,
    pub status: Option<u16>,
    pub message: String,
    pub retryable: bool,
    /// The body of a 200 response the SDK could not parse.
    pub body: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s3 {} on bucket {}: {}",
            self.operation, self.bucket, self.message
        )
    }
}

impl ApiError {
    pub(crate) fn from_sdk<E>(
        operation: &'static str,
        bucket: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, retryable) = match &err {
            SdkError::ServiceError(se) => {
                let code = se.err().code().map(str::to_string);
                let throttled = code.as_deref().is_some_and(|c| THROTTLING.contains(&c));
                let retry = throttled || status.is_some_and(|s| s >= 500 || s == 429);
                (code, retry)
            }
            SdkError::ConstructionFailure(_) => (None, false),
            // Timeouts, connection failures and unparseable responses.
            _ => (None, true),
        };
        let message = match &err {
            SdkError::ServiceError(se) => format!(
                "{}: {}",
                code.as_deref().unwrap_or("error"),
                se.err().message().unwrap_or("no message")
            ),
            _ => DisplayErrorContext(&err).to_string(),
        };
        // Keep the body of a 200 the SDK could not parse (see `is_empty_document`).
        let body = match (&err, status) {
            (SdkError::ResponseError(r), Some(200)) => r
                .raw()
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            (SdkError::ServiceError(r), Some(200)) => r
                .raw()
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        ApiError {
            operation,
            bucket: bucket.to_string(),
            code,
            status,
            message,
            retryable,
            body,
        }
    }

    /// c7n: `code.startswith("NoSuch") or "NotFound" in code` gives the default value.
    pub fn is_not_found(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c.starts_with("NoSuch") || c.contains("NotFound"))
            || (self.code.is_none() && self.status == Some(404))
    }

    /// A 200 answer the SDK could not parse (no error code).
    pub fn is_empty_document(&self) -> bool {
        self.code.is_none() && self.status == Some(200)
    }

    pub fn is_access_denied(&self) -> bool {
        self.code.as_deref() == Some("AccessDenied")
    }
}

/// S3 clients, one per region, all from the same SDK configuration.
#[derive(Clone)]
pub struct S3 {
    base: aws_sdk_s3::config::Builder,
    default_region: String,
    clients: PerRegion<Client>,
    pub(crate) calls: Calls,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("default_region", &self.default_region)
            .finish()
    }
}

impl S3 {
    /// Retries and timeouts as [`regional::retry_config`] says.
    pub fn new(sdk: &SdkConfig, default_region: &str) -> Self {
        let mut base = aws_sdk_s3::config::Builder::from(sdk)
            .retry_config(regional::retry_config())
            .timeout_config(regional::timeout_config());
        if sdk.endpoint_url().is_some() {
            base = base.force_path_style(true);
        }
        S3 {
            base,
            default_region: default_region.to_string(),
            clients: PerRegion::default(),
            calls: Calls::default(),
        }
    }

    /// The same clients, counting calls into a fresh counter (one per run).
    pub(crate) fn with_calls(&self, calls: Calls) -> Self {
        S3 {
            calls,
            ..self.clone()
        }
    }

    pub fn default_region(&self) -> &str {
        &self.default_region
    }

    pub fn client(&self, region: &str) -> Client {
        self.clients.get(region, |r| {
            Client::from_conf(self.base.clone().region(r).build())
        })
    }

    /// The client for a bucket's region (c7n's `bucket_client`).
    pub fn bucket_client(&self, bucket: &Value) -> Client {
        self.client(&bucket_region(bucket))
    }

    /// Runs one call, counting it for `api-stats` and classifying its error.
    pub async fn call<T, E, F>(
        &self,
        operation: &'static str,
        bucket: &str,
        fut: F,
    ) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.calls.count(operation);
        fut.await
            .map_err(|e| ApiError::from_sdk(operation, bucket, e))
    }

    /// ListBuckets (following continuation tokens): `{Name, CreationDate}` per bucket.
    pub async fn list_buckets(&self) -> Result<Vec<Value>, ApiError> {
        let client = self.client(&self.default_region);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let resp = self
                .call(
                    "ListBuckets",
                    "*",
                    client
                        .list_buckets()
                        .set_continuation_token(token.clone())
                        .send(),
                )
                .await?;
            for b in resp.buckets() {
                let mut m = Map::new();
                m.insert("Name".into(), json!(b.name().unwrap_or_default()));
                if let Some(d) = b.creation_date() {
                    m.insert("CreationDate".into(), shapes::iso(d));
                }
                if let Some(r) = b.bucket_region() {
                    m.insert("BucketRegion".into(), json!(r));
                }
                out.push(Value::Object(m));
            }
            match resp.continuation_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Augments buckets ten at a time (c7n uses ten threads), keeping their order. A bucket
    /// that no longer exists is dropped, as c7n drops ids ListBuckets does not return.
    /// Each bucket comes with the documents its filters read lazily (see [`S3::augment`]).
    pub async fn augment_all(
        &self,
        buckets: Vec<Value>,
        keys: &[&str],
        extras: Extras,
    ) -> Result<Vec<(Value, Prefetched)>, ApiError> {
        let results: Vec<Result<Option<(Value, Prefetched)>, ApiError>> =
            futures::stream::iter(buckets)
                .map(|b| self.augment_parts(b, keys, extras))
                .buffered(10)
                .collect()
                .await;
        let mut out = Vec::new();
        for r in results {
            if let Some(b) = r? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// One bucket as c7n's filters would leave it after reading every lazy document:
    /// `c7n:bucket-encryption` and `c7n:PublicAccessBlock` stored on it (with
    /// `GetPublicAccessBlock` in `c7n:DeniedMethods` when that call was denied).
    pub async fn augment(
        &self,
        bucket: Value,
        keys: &[&str],
        extras: Extras,
    ) -> Result<Option<Value>, ApiError> {
        Ok(self
            .augment_parts(bucket, keys, extras)
            .await?
            .map(|(mut doc, pre)| {
                czero_policy::s3::reveal_prefetched(&mut doc, &pre);
                doc
            }))
    }

    /// One bucket: GetBucketLocation first (it picks the regional client), then the other
    /// augment calls and the lazily needed documents concurrently. The lazy documents are
    /// returned apart: c7n's filters fetch and store them only on the buckets they read,
    /// which [`czero_policy::Filter::process`] reproduces.
    pub async fn augment_parts(
        &self,
        mut bucket: Value,
        keys: &[&str],
        extras: Extras,
    ) -> Result<Option<(Value, Prefetched)>, ApiError> {
        let name = bucket_name(&bucket);
        let client = self.client(&self.default_region);
        let mut denied: Vec<String> = Vec::new();

        let loc = self
            .call(
                "GetBucketLocation",
                &name,
                client.get_bucket_location().bucket(&name).send(),
            )
            .await;
        match loc {
            Ok(o) => {
                let mut v = shapes::location(&o);
                if v["LocationConstraint"] == "EU" {
                    v["LocationConstraint"] = json!("eu-west-1");
                }
                set(&mut bucket, "Location", v);
            }
            Err(e) if e.code.as_deref() == Some("NoSuchBucket") => {
                tracing::warn!(bucket = %name, "bucket does not exist: skipped");
                return Ok(None);
            }
            Err(e) if e.is_not_found() => set(&mut bucket, "Location", json!({})),
            Err(e) if e.is_access_denied() => denied.push("get_bucket_location".into()),
            Err(e) => return Err(e),
        }
        let client = self.bucket_client(&bucket);
        let want = |k: &str| keys.contains(&k);
        let c = &client;
        let n = name.as_str();

        // Each future yields (key, Ok(Some(value)) | Ok(None) = denied, Err).
        type Got = (&'static str, &'static str, Result<Value, ApiError>);
        let mut futs: Vec<std::pin::Pin<Box<dyn Future<Output = Got> + Send + '_>>> = Vec::new();
        if want("Tags") {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketTagging",
                    n,
                    c.get_bucket_tagging().bucket(n).send(),
                );
                (
                    "Tags",
                    "get_bucket_tagging",
                    r.await.map(|o| shapes::tag_set(o.tag_set())),
                )
            }));
        }
        if want("Policy") {
            futs.push(Box::pin(async move {
                let r = self.call("GetBucketPolicy", n, c.get_bucket_policy().bucket(n).send());
                (
                    "Policy",
                    "get_bucket_policy",
                    r.await.map(|o| json!(o.policy())),
                )
            }));
        }
        if want("Acl") {
            futs.push(Box::pin(async move {
                let r = self.call("GetBucketAcl", n, c.get_bucket_acl().bucket(n).send());
                ("Acl", "get_bucket_acl", r.await.map(|o| shapes::acl(&o)))
            }));
        }
        if want("Replication") {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketReplication",
                    n,
                    c.get_bucket_replication().bucket(n).send(),
                );
                (
                    "Replication",
                    "get_bucket_replication",
                    r.await.map(|o| shapes::replication(&o)),
                )
            }));
        }
        if want("Versioning") {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketVersioning",
                    n,
                    c.get_bucket_versioning().bucket(n).send(),
                );
                (
                    "Versioning",
                    "get_bucket_versioning",
                    r.await.map(|o| shapes::versioning(&o)),
                )
            }));
        }
        if want("Website") {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketWebsite",
                    n,
                    c.get_bucket_website().bucket(n).send(),
                );
                (
                    "Website",
                    "get_bucket_website",
                    r.await.map(|o| shapes::website(&o)),
                )
            }));
        }
        if want("Logging") {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketLogging",
                    n,
                    c.get_bucket_logging().bucket(n).send(),
                );
                (
                    "Logging",
                    "get_bucket_logging",
                    r.await.map(|o| shapes::logging(&o)),
                )
            }));
        }
        if want("Notification") {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketNotificationConfiguration",
                    n,
                    c.get_bucket_notification_configuration().bucket(n).send(),
                );
                (
                    "Notification",
                    "get_bucket_notification_configuration",
                    r.await.map(|o| shapes::notification(&o)),
                )
            }));
        }
        if want("Lifecycle") {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketLifecycleConfiguration",
                    n,
                    c.get_bucket_lifecycle_configuration().bucket(n).send(),
                );
                (
                    "Lifecycle",
                    "get_bucket_lifecycle_configuration",
                    r.await.map(|o| shapes::lifecycle(&o)),
                )
            }));
        }
        if extras.bucket_encryption {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetBucketEncryption",
                    n,
                    c.get_bucket_encryption().bucket(n).send(),
                );
                (
                    ENCRYPTION_KEY,
                    "GetBucketEncryption",
                    r.await.map(|o| shapes::encryption(&o)),
                )
            }));
        }
        if extras.public_access_block {
            futs.push(Box::pin(async move {
                let r = self.call(
                    "GetPublicAccessBlock",
                    n,
                    c.get_public_access_block().bucket(n).send(),
                );
                (
                    PUBLIC_BLOCK_KEY,
                    "GetPublicAccessBlock",
                    r.await.map(|o| shapes::public_access_block(&o)),
                )
            }));
        }
        let results = futures::future::join_all(futs).await;

        let mut got: HashMap<&str, Value> = HashMap::new();
        let mut pre = Prefetched::default();
        for (key, method, r) in results {
            let lazy = key == ENCRYPTION_KEY || key == PUBLIC_BLOCK_KEY;
            match r {
                Ok(v) => {
                    got.insert(key, v);
                }
                Err(e) if e.is_not_found() => {
                    got.insert(key, default_for(key));
                }
                // moto 5.2 answers GetBucketVersioning and GetBucketNotificationConfiguration
                // with a `<GetBucket…Response>` root, which boto3 accepts (it ignores the
                // root's name) and the SDK refuses; real S3 uses `<VersioningConfiguration>`
                // and `<NotificationConfiguration>`. Read versioning from the body as boto3
                // would; an unreadable notification document counts as empty.
                Err(e) if e.is_empty_document() && key == "Versioning" => {
                    got.insert(
                        key,
                        versioning_from_body(e.body.as_deref().unwrap_or_default()),
                    );
                }
                Err(e) if e.is_empty_document() && key == "Notification" => {
                    tracing::warn!(bucket = %name, "unparseable notification configuration: treated as empty");
                    got.insert(key, json!({}));
                }
                // The filters record a denied lazy document themselves, as c7n's do.
                Err(e) if e.is_access_denied() && lazy => {
                    tracing::warn!(bucket = %name, method, "access denied");
                    if key == ENCRYPTION_KEY {
                        pre.bucket_encryption = Some(Fetched::Denied);
                    } else {
                        pre.public_access_block = Some(Fetched::Denied);
                    }
                }
                Err(e) if e.is_access_denied() => {
                    tracing::warn!(bucket = %name, method, "access denied");
                    denied.push(method.to_string());
                }
                Err(e) => {
                    tracing::warn!(bucket = %name, method, error = %e, "unable to invoke method");
                    return Err(e);
                }
            }
        }
        // Insert in the table's order so resources.json reads like c7n's.
        for (_, key) in AUGMENT_TABLE.iter().skip(1) {
            if let Some(v) = got.remove(key) {
                set(&mut bucket, key, v);
            }
        }
        if let Some(v) = got.remove(ENCRYPTION_KEY) {
            pre.bucket_encryption = Some(Fetched::Found(v));
        }
        if let Some(v) = got.remove(PUBLIC_BLOCK_KEY) {
            pre.public_access_block = Some(Fetched::Found(v));
        }
        if !denied.is_empty() {
            set(&mut bucket, "c7n:DeniedMethods", json!(denied));
        }
        Ok(Some((bucket, pre)))
    }
}

/// `{Status, MFADelete}` from a versioning document whatever its root element is called.
fn versioning_from_body(body: &str) -> Value {
    let text = |tag: &str| {
        let open = format!("<{tag}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find('<')? + start;
        Some(body[start..end].to_string())
    };
    let mut m = Map::new();
    if let Some(s) = text("Status") {
        m.insert("Status".into(), json!(s));
    }
    if let Some(s) = text("MfaDelete") {
        m.insert("MFADelete".into(), json!(s));
    }
    Value::Object(m)
}

/// Documents fetched only when a filter needs them (c7n caches them on the bucket).
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    pub bucket_encryption: bool,
    pub public_access_block: bool,
}

pub use czero_policy::s3::{ENCRYPTION_KEY, PUBLIC_BLOCK_KEY, bucket_region, default_public_block};
pub const PUBLIC_BLOCK_KEYS: [&str; 4] = [
    "BlockPublicPolicy",
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "RestrictPublicBuckets",
];

/// The values c7n stores when a call answers NoSuch*/NotFound.
fn default_for(key: &str) -> Value {
    match key {
        "Location" | ENCRYPTION_KEY => json!({}),
        // c7n's check-public-block seeds its annotation with every key false and keeps it
        // when the bucket has no block configured.
        PUBLIC_BLOCK_KEY => default_public_block(),
        "Tags" => json!([]),
        _ => Value::Null,
    }
}

fn set(bucket: &mut Value, key: &str, v: Value) {
    if let Value::Object(m) = bucket {
        m.insert(key.to_string(), v);
    }
}

pub fn bucket_name(bucket: &Value) -> String {
    bucket
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The keys to augment: `augment-keys` when the policy sets it (Location and Tags always,
/// as in c7n), else all ten.
pub fn augment_keys(selected: Option<&[String]>) -> Vec<&'static str> {
    match selected {
        None => AUGMENT_TABLE.iter().map(|(_, k)| *k).collect(),
        Some(sel) => AUGMENT_TABLE
            .iter()
            .map(|(_, k)| *k)
            .filter(|k| *k == "Location" || *k == "Tags" || sel.iter().any(|s| s == k))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_follows_c7n_get_region() {
        for (loc, want) in [
            (json!({}), "us-east-1"),
            (json!({"LocationConstraint": null}), "us-east-1"),
            (json!({"LocationConstraint": "EU"}), "eu-west-1"),
            (
                json!({"LocationConstraint": "eu-central-1"}),
                "eu-central-1",
            ),
        ] {
            assert_eq!(bucket_region(&json!({"Name": "b", "Location": loc})), want);
        }
        assert_eq!(bucket_region(&json!({"Name": "b"})), "us-east-1");
    }

    #[test]
    fn versioning_is_read_from_any_root() {
        let moto = r#"<?xml version="1.0"?><GetBucketVersioningResponse xmlns="x"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert_eq!(versioning_from_body(moto), json!({"Status": "Enabled"}));
        assert_eq!(
            versioning_from_body(r#"<GetBucketVersioningResponse xmlns="x"/>"#),
            json!({})
        );
    }

    #[test]
    fn augment_keys_always_include_location_and_tags() {
        assert_eq!(augment_keys(None).len(), 10);
        let sel = vec!["Website".to_string()];
        assert_eq!(
            augment_keys(Some(&sel)),
            vec!["Location", "Tags", "Website"]
        );
        assert_eq!(augment_keys(Some(&[])), vec!["Location", "Tags"]);
    }
}
