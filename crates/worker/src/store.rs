//! S3 reads: policy files, cached by ETag, and claim-checked jobs.
//!
//! Policy files change rarely and are read by every job, so each is fetched once and then
//! revalidated with a conditional GET (`If-None-Match`): a 304 costs one small request and
//! no parsing of a new body, and an edited policy is still picked up by the next job.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound { bucket: String, key: String },
    #[error("s3://{bucket}/{key}: {message}")]
    Read {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("s3://{bucket}/{key} is not UTF-8 text")]
    NotText { bucket: String, key: String },
    #[error("s3://{bucket}/{key} is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        bucket: String,
        key: String,
        size: u64,
        max: usize,
    },
}

/// A policy file's text and the ETag it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyText {
    pub key: String,
    pub etag: Option<String>,
    pub text: Arc<str>,
}

/// `(bucket/key, version id)` → the text last read.
type Cache = HashMap<(String, Option<String>), PolicyText>;

#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    cache: Arc<Mutex<Cache>>,
}

impl Store {
    pub fn new(client: Client) -> Self {
        Store {
            client,
            cache: Arc::default(),
        }
    }

    /// The policy file at `bucket/key` (at `version_id` when given), from the cache when S3
    /// says it has not changed.
    pub async fn policy(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        max: usize,
    ) -> Result<PolicyText, StoreError> {
        let cache_key = (format!("{bucket}/{key}"), version_id.map(str::to_owned));
        let cached = self.lock().get(&cache_key).cloned();
        let mut req = self.client.get_object().bucket(bucket).key(key);
        if let Some(v) = version_id {
            req = req.version_id(v);
        }
        if let Some(etag) = cached.as_ref().and_then(|c| c.etag.as_deref()) {
            req = req.if_none_match(etag);
        }
        match req.send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_owned);
                let bytes = read_capped(out.content_length(), out.body, bucket, key, max).await?;
                let text = String::from_utf8(bytes).map_err(|_| StoreError::NotText {
                    bucket: bucket.into(),
                    key: key.into(),
                })?;
                let entry = PolicyText {
                    key: key.to_owned(),
                    etag,
                    text: text.into(),
                };
                self.lock().insert(cache_key, entry.clone());
                Ok(entry)
            }
            Err(e) if status(&e) == Some(304) => match cached {
                Some(c) => {
                    tracing::debug!(bucket, key, etag = ?c.etag, "policy unchanged (304)");
                    Ok(c)
                }
                None => Err(read_error(bucket, key, e)),
            },
            Err(e) => Err(read_error(bucket, key, e)),
        }
    }

    /// The raw bytes of `bucket/key` (a claim-checked job), at most `max` of them.
    pub async fn object(&self, bucket: &str, key: &str, max: usize) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| read_error(bucket, key, e))?;
        read_capped(out.content_length(), out.body, bucket, key, max).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// The body, refusing one over `max` bytes (by its Content-Length when given, else after
/// reading, which a lying server could only make cost memory once).
async fn read_capped(
    length: Option<i64>,
    body: aws_sdk_s3::primitives::ByteStream,
    bucket: &str,
    key: &str,
    max: usize,
) -> Result<Vec<u8>, StoreError> {
    let too_large = |size: u64| StoreError::TooLarge {
        bucket: bucket.into(),
        key: key.into(),
        size,
        max,
    };
    if let Some(n) = length
        && n > max as i64
    {
        return Err(too_large(n as u64));
    }
    let bytes = read_body(body, bucket, key).await?;
    if bytes.len() > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

async fn read_body(
    body: aws_sdk_s3::primitives::ByteStream,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, StoreError> {
    body.collect()
        .await
        .map(|b| b.into_bytes().to_vec())
        .map_err(|e| StoreError::Read {
            bucket: bucket.into(),
            key: key.into(),
            message: format!("reading the body: {e}"),
        })
}

fn status<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HttpStatus::status_code)
}

trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn read_error<E, R>(bucket: &str, key: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    if matches!(
        e.code(),
        Some("NoSuchKey" | "NoSuchBucket" | "NoSuchVersion")
    ) || status(&e) == Some(404)
    {
        return StoreError::NotFound {
            bucket: bucket.into(),
            key: key.into(),
        };
    }
    StoreError::Read {
        bucket: bucket.into(),
        key: key.into(),
        message: DisplayErrorContext(&e).to_string(),
    }
}
