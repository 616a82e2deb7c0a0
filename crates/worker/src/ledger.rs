//! The job ledger: a marker per job id, so a job's actions run once.
//!
//! EventBridge and SQS deliver at least once, and a Lambda retry after a successful send
//! queues a job twice (the invoker derives the job id from the event id, so both copies
//! carry the same id). Before acting, a worker *claims* the job: it creates
//! `<prefix>/<job id>.json` with an S3 conditional put (`If-None-Match: *`), so of two
//! workers holding copies of the job exactly one succeeds. The marker records the claim's
//! lease (the visibility timeout: the job is abandoned before it runs out); when the job is
//! done it says `done`, and every later copy is deleted as a duplicate. A claim whose lease
//! ran out (its worker died) or whose job failed is taken over with `If-Match` on the
//! marker's ETag, so again only one worker wins.
//!
//! Without an output bucket (local runs) the ledger is a directory: `create_new` plays
//! `If-None-Match`; take-over is not atomic there, which local use tolerates.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a marker says about its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// A worker holds the job until `lease_until`.
    Running,
    /// The job's policies ran and their output was written.
    Done,
    /// The last attempt failed; the next one may take over.
    Failed,
}

/// The marker's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub state: State,
    pub job_id: String,
    /// Who wrote it (`worker` in logs: host and pid).
    pub owner: String,
    /// Seconds since the epoch when a running claim lapses.
    pub lease_until: u64,
    /// Seconds since the epoch when the marker was written.
    pub written_at: u64,
}

/// The outcome of [`Ledger::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This worker holds the job; pass the token to [`Ledger::finish`].
    Acquired(Token),
    /// The job already ran: this copy is a duplicate.
    Done(Marker),
    /// Another worker holds an unexpired claim.
    Busy(Marker),
}

/// Proof of a claim: the marker version this worker wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    job_id: String,
    etag: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("job ledger s3://{bucket}/{key}: {message}")]
    S3 {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("job ledger {path}: {message}")]
    Dir { path: String, message: String },
}

#[derive(Debug, Clone)]
enum Backend {
    S3 {
        client: Client,
        bucket: String,
        prefix: String,
    },
    Dir(PathBuf),
}

/// Where markers live.
#[derive(Debug, Clone)]
pub struct Ledger {
    backend: Backend,
    owner: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A job id as a file or key name (job ids are hex, but a message may carry anything).
fn safe(job_id: &str) -> String {
    job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Ledger {
    /// Markers at `s3://bucket/prefix/<job id>.json`.
    pub fn s3(client: Client, bucket: &str, prefix: &str) -> Self {
        Ledger {
            backend: Backend::S3 {
                client,
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            },
            owner: owner(),
        }
    }

    /// Markers as files in `dir`.
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        Ledger {
            backend: Backend::Dir(dir.into()),
            owner: owner(),
        }
    }

    /// Where a job's marker is, for logs.
    pub fn location(&self, job_id: &str) -> String {
        match &self.backend {
            Backend::S3 { bucket, prefix, .. } => {
                format!("s3://{bucket}/{}", key(prefix, job_id))
            }
            Backend::Dir(d) => d
                .join(format!("{}.json", safe(job_id)))
                .display()
                .to_string(),
        }
    }

    fn marker(&self, job_id: &str, state: State, lease: Duration) -> Marker {
        let t = now();
        Marker {
            state,
            job_id: job_id.to_owned(),
            owner: self.owner.clone(),
            lease_until: t + lease.as_secs(),
            written_at: t,
        }
    }

    /// Claims `job_id` for `lease` (at least as long as the job may run).
    pub async fn claim(&self, job_id: &str, lease: Duration) -> Result<Claim, LedgerError> {
        let mine = self.marker(job_id, State::Running, lease);
        // Two rounds: create, or take over a lapsed/failed claim once.
        match self.put(job_id, &mine, Condition::Absent).await? {
            Put::Written(etag) => {
                return Ok(Claim::Acquired(Token {
                    job_id: job_id.to_owned(),
                    etag,
                }));
            }
            Put::Conflict => {}
        }
        let Some((current, etag)) = self.get(job_id).await? else {
            // Deleted between the two calls (lifecycle expiry): try once more to create.
            return match self.put(job_id, &mine, Condition::Absent).await? {
                Put::Written(etag) => Ok(Claim::Acquired(Token {
                    job_id: job_id.to_owned(),
                    etag,
                })),
                Put::Conflict => Ok(Claim::Busy(mine)),
            };
        };
        match current.state {
            State::Done => Ok(Claim::Done(current)),
            State::Running if current.lease_until > now() => Ok(Claim::Busy(current)),
            State::Running | State::Failed => {
                match self.put(job_id, &mine, Condition::Matches(etag)).await? {
                    Put::Written(etag) => Ok(Claim::Acquired(Token {
                        job_id: job_id.to_owned(),
                        etag,
                    })),
                    Put::Conflict => Ok(Claim::Busy(current)),
                }
            }
        }
    }

    /// Extends a claim's lease (the worker's heartbeat does this with the message's
    /// visibility, so a copy of the job cannot take over a job that is still running).
    /// Returns false when another worker took the claim over meanwhile.
    pub async fn renew(&self, token: &mut Token, lease: Duration) -> Result<bool, LedgerError> {
        let m = self.marker(&token.job_id, State::Running, lease);
        match self
            .put(&token.job_id, &m, Condition::Matches(token.etag.clone()))
            .await?
        {
            Put::Written(etag) => {
                token.etag = etag;
                Ok(true)
            }
            Put::Conflict => Ok(false),
        }
    }

    /// Records how the claimed job ended: `Done` makes every later copy a duplicate,
    /// `Failed` lets the next attempt take over at once.
    pub async fn finish(&self, token: &Token, state: State) -> Result<(), LedgerError> {
        let m = self.marker(&token.job_id, state, Duration::ZERO);
        // Unconditional: a `done` must stick even if a slow lease was taken over meanwhile
        // (the actions did run), and a failure marker only ever makes a retry possible.
        let _ = self.put(&token.job_id, &m, Condition::None).await?;
        Ok(())
    }

    async fn put(&self, job_id: &str, m: &Marker, cond: Condition) -> Result<Put, LedgerError> {
        let body = serde_json::to_vec(m).unwrap_or_default();
        match &self.backend {
            Backend::S3 {
                client,
                bucket,
                prefix,
            } => {
                let k = key(prefix, job_id);
                let mut req = client
                    .put_object()
                    .bucket(bucket)
                    .key(&k)
                    .content_type("application/json")
                    .body(ByteStream::from(body));
                req = match cond {
                    Condition::Absent => req.if_none_match("*"),
                    Condition::Matches(Some(etag)) => req.if_match(etag),
                    Condition::Matches(None) | Condition::None => req,
                };
                match req.send().await {
                    Ok(out) => Ok(Put::Written(out.e_tag().map(str::to_owned))),
                    // 412: the condition failed; 409: a concurrent conditional write won.
                    Err(e) if matches!(http_status(&e), Some(412 | 409)) => Ok(Put::Conflict),
                    Err(e) => Err(s3_error(bucket, &k, e)),
                }
            }
            Backend::Dir(dir) => {
                let path = dir.join(format!("{}.json", safe(job_id)));
                let err = |e: std::io::Error| LedgerError::Dir {
                    path: path.display().to_string(),
                    message: e.to_string(),
                };
                tokio::fs::create_dir_all(dir).await.map_err(err)?;
                match cond {
                    Condition::Absent => {
                        let opened = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&path);
                        match opened {
                            Ok(mut f) => {
                                use std::io::Write;
                                f.write_all(&body).map_err(err)?;
                                Ok(Put::Written(None))
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                                Ok(Put::Conflict)
                            }
                            Err(e) => Err(err(e)),
                        }
                    }
                    Condition::Matches(_) | Condition::None => {
                        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                        tokio::fs::write(&tmp, &body).await.map_err(err)?;
                        tokio::fs::rename(&tmp, &path).await.map_err(err)?;
                        Ok(Put::Written(None))
                    }
                }
            }
        }
    }

    async fn get(&self, job_id: &str) -> Result<Option<(Marker, Option<String>)>, LedgerError> {
        let (bytes, etag, location) = match &self.backend {
            Backend::S3 {
                client,
                bucket,
                prefix,
            } => {
                let k = key(prefix, job_id);
                match client.get_object().bucket(bucket).key(&k).send().await {
                    Ok(out) => {
                        let etag = out.e_tag().map(str::to_owned);
                        let body = out.body.collect().await.map_err(|e| LedgerError::S3 {
                            bucket: bucket.clone(),
                            key: k.clone(),
                            message: format!("reading the marker: {e}"),
                        })?;
                        (
                            body.into_bytes().to_vec(),
                            etag,
                            format!("s3://{bucket}/{k}"),
                        )
                    }
                    Err(e) if e.code() == Some("NoSuchKey") || http_status(&e) == Some(404) => {
                        return Ok(None);
                    }
                    Err(e) => return Err(s3_error(bucket, &k, e)),
                }
            }
            Backend::Dir(dir) => {
                let path = dir.join(format!("{}.json", safe(job_id)));
                match tokio::fs::read(&path).await {
                    Ok(b) => (b, None, path.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(LedgerError::Dir {
                            path: path.display().to_string(),
                            message: e.to_string(),
                        });
                    }
                }
            }
        };
        match serde_json::from_slice::<Marker>(&bytes) {
            Ok(m) => Ok(Some((m, etag))),
            // An unreadable marker must not block the job forever: treat it as a failed
            // attempt, which the caller takes over (conditionally, so still only once).
            Err(e) => {
                tracing::warn!(marker = %location, error = %e, "unreadable job marker; taking it over");
                Ok(Some((
                    Marker {
                        state: State::Failed,
                        job_id: job_id.to_owned(),
                        owner: String::new(),
                        lease_until: 0,
                        written_at: 0,
                    },
                    etag,
                )))
            }
        }
    }
}

enum Condition {
    /// Only if no marker exists (`If-None-Match: *`).
    Absent,
    /// Only if the marker is still this version (`If-Match`).
    Matches(Option<String>),
    None,
}

enum Put {
    Written(Option<String>),
    Conflict,
}

fn key(prefix: &str, job_id: &str) -> String {
    if prefix.is_empty() {
        format!("{}.json", safe(job_id))
    } else {
        format!("{prefix}/{}.json", safe(job_id))
    }
}

fn owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    format!("{host}/{}", std::process::id())
}

fn http_status<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    e.raw_response().map(HasStatus::status_code)
}

trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn s3_error<E>(
    bucket: &str,
    key: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> LedgerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    LedgerError::S3 {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: DisplayErrorContext(&e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_claim_wins_and_done_makes_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ledger::dir(dir.path());
        let b = Ledger::dir(dir.path());
        let lease = Duration::from_secs(60);
        let Claim::Acquired(token) = a.claim("j-1", lease).await.unwrap() else {
            panic!("first claim must win")
        };
        assert!(matches!(
            b.claim("j-1", lease).await.unwrap(),
            Claim::Busy(_)
        ));
        a.finish(&token, State::Done).await.unwrap();
        assert!(matches!(
            b.claim("j-1", lease).await.unwrap(),
            Claim::Done(_)
        ));
    }

    #[tokio::test]
    async fn a_failed_or_lapsed_claim_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ledger::dir(dir.path());
        let b = Ledger::dir(dir.path());
        let Claim::Acquired(token) = a.claim("j-2", Duration::from_secs(60)).await.unwrap() else {
            panic!()
        };
        a.finish(&token, State::Failed).await.unwrap();
        assert!(matches!(
            b.claim("j-2", Duration::from_secs(60)).await.unwrap(),
            Claim::Acquired(_)
        ));
        // A lease of zero lapses at once: a dead worker's claim is taken over.
        let Claim::Acquired(_) = a.claim("j-3", Duration::ZERO).await.unwrap() else {
            panic!()
        };
        assert!(matches!(
            b.claim("j-3", Duration::from_secs(60)).await.unwrap(),
            Claim::Acquired(_)
        ));
    }

    #[test]
    fn job_ids_cannot_escape_the_prefix() {
        assert_eq!(key("ledger", "../../x"), "ledger/______x.json");
        let l = Ledger::dir("/tmp/l");
        assert_eq!(l.location("a/b"), "/tmp/l/a_b.json");
    }
}
