//! c7n's output layout: `<dir>/<policy>/{resources.json, metadata.json,
//! custodian-run.log, action-<classname>}`; on S3 the same files, each gzipped (`.gz`),
//! under `<prefix>/<policy>/YYYY/MM/DD/HH/` (c7n's `S3Output`: compress level 7, ACL
//! `bucket-owner-full-control`). Unlike c7n, no `x-amz-server-side-encryption` header is
//! sent: the bucket's default encryption applies, so an output bucket encrypted with a KMS
//! key keeps its key instead of being overridden with SSE-S3.

use crate::EngineError;
use crate::s3::S3;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::PathBuf;

/// Where a run's files go: `-s DIR` or `-s s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Output {
    /// `s3://bucket[/prefix]`, `file://path` or a plain path.
    pub fn parse(s: &str) -> Result<Output, EngineError> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(EngineError::Config(format!("output {s}: no bucket name")));
            }
            return Ok(Output::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if s.contains("://") && !s.starts_with("file://") {
            return Err(EngineError::Config(format!(
                "output {s}: only s3:// and directories are supported"
            )));
        }
        let path = s.strip_prefix("file://").unwrap_or(s);
        if path.is_empty() {
            return Err(EngineError::Config("output: empty path".into()));
        }
        Ok(Output::Dir(PathBuf::from(path)))
    }

    /// The policy's folder: `DIR/<policy>` or `s3://bucket/prefix/<policy>/YYYY/MM/DD/HH/`.
    pub fn location(&self, policy: &str, now: DateTime<Utc>) -> String {
        match self {
            Output::Dir(d) => d.join(policy).display().to_string(),
            Output::S3 { bucket, .. } => format!("s3://{bucket}/{}/", self.key_prefix(policy, now)),
        }
    }

    fn key_prefix(&self, policy: &str, now: DateTime<Utc>) -> String {
        let hour = now.format("%Y/%m/%d/%H").to_string();
        match self {
            Output::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{policy}/{hour}"),
            _ => format!("{policy}/{hour}"),
        }
    }

    /// Writes the files of one policy run and returns [`Output::location`].
    pub async fn write(
        &self,
        s3: &S3,
        policy: &str,
        now: DateTime<Utc>,
        files: &[(String, Vec<u8>)],
    ) -> Result<String, EngineError> {
        let location = self.location(policy, now);
        match self {
            Output::Dir(dir) => {
                let folder = dir.join(policy);
                tokio::fs::create_dir_all(&folder)
                    .await
                    .map_err(|e| EngineError::Output {
                        location: folder.display().to_string(),
                        message: e.to_string(),
                        retryable: false,
                    })?;
                for (name, body) in files {
                    let path = folder.join(name);
                    tokio::fs::write(&path, body)
                        .await
                        .map_err(|e| EngineError::Output {
                            location: path.display().to_string(),
                            message: e.to_string(),
                            retryable: false,
                        })?;
                }
            }
            Output::S3 { bucket, .. } => {
                let client = s3.client(s3.default_region());
                let prefix = self.key_prefix(policy, now);
                let puts = files.iter().map(|(name, body)| {
                    let client = client.clone();
                    let key = format!("{prefix}/{name}.gz");
                    async move {
                        let gz = gzip(body).map_err(|e| EngineError::Output {
                            location: format!("s3://{bucket}/{key}"),
                            message: e.to_string(),
                            retryable: false,
                        })?;
                        s3.call(
                            "PutObject",
                            bucket,
                            client
                                .put_object()
                                .bucket(bucket)
                                .key(&key)
                                .acl(ObjectCannedAcl::BucketOwnerFullControl)
                                .body(ByteStream::from(gz))
                                .send(),
                        )
                        .await
                        .map_err(|e| EngineError::Output {
                            location: format!("s3://{bucket}/{key}"),
                            message: e.message.clone(),
                            retryable: e.retryable,
                        })
                    }
                });
                for r in futures::future::join_all(puts).await {
                    r?;
                }
            }
        }
        Ok(location)
    }
}

pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(7));
    enc.write_all(body)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_and_paths() {
        assert_eq!(
            Output::parse("s3://b/some/prefix/").ok(),
            Some(Output::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into()
            })
        );
        assert_eq!(
            Output::parse("s3://b").ok(),
            Some(Output::S3 {
                bucket: "b".into(),
                prefix: "".into()
            })
        );
        assert_eq!(Output::parse("out").ok(), Some(Output::Dir("out".into())));
        assert_eq!(
            Output::parse("file:///tmp/o").ok(),
            Some(Output::Dir("/tmp/o".into()))
        );
        assert!(Output::parse("s3://").is_err());
        assert!(Output::parse("gs://x").is_err());
    }

    #[test]
    fn s3_location_has_the_hour_folder() {
        let now = DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
            .map(|d| d.to_utc())
            .unwrap();
        let o = Output::parse("s3://b/p").unwrap();
        assert_eq!(o.location("pol", now), "s3://b/p/pol/2026/03/04/05/");
        let o = Output::parse("s3://b").unwrap();
        assert_eq!(o.location("pol", now), "s3://b/pol/2026/03/04/05/");
    }
}
