//! The invoker's AWS calls behind one narrow trait, so the handler is tested with in-memory
//! fakes and the SDK adapter with wiremock contract tests.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::future::Future;

/// An AWS call that failed, classified for Lambda's retry decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct AwsError {
    pub op: &'static str,
    pub message: String,
    /// Throttling, 5xx, timeouts and connection errors: a retry may succeed.
    pub retryable: bool,
    /// `NoSuchKey` and friends.
    pub not_found: bool,
}

/// Result of a conditional GetObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the object still has the ETag we sent.
    NotModified,
    Object {
        body: Vec<u8>,
        etag: Option<String>,
        /// The version read, in a versioned bucket.
        version_id: Option<String>,
    },
}

/// What HeadObject reports about an object: enough to pin a job to the version seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub etag: Option<String>,
    /// Set when the bucket is versioned (or was: `null` for objects from before).
    pub version_id: Option<String>,
    /// Content-Length, checked against the size cap before the object is read.
    pub size: Option<u64>,
}

/// A message attribute (`String` or `Number` data type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub name: &'static str,
    pub data_type: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// Batch entry id (the job id: letters, digits, `-`, `_`).
    pub id: String,
    pub body: String,
    pub attributes: Vec<Attr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub id: String,
    pub code: String,
    pub message: String,
    pub sender_fault: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// (entry id, message id)
    pub sent: Vec<(String, String)>,
    pub failed: Vec<BatchFailure>,
}

/// Everything the handler asks of AWS.
pub trait Aws: Send + Sync {
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        if_none_match: Option<&str>,
    ) -> impl Future<Output = Result<Fetched, AwsError>> + Send;
    /// The object's ETag and version id; `not_found` when it does not exist. No default:
    /// an implementation that knew nothing would leave every job silently unpinned.
    fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<ObjectMeta, AwsError>> + Send;
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Returns the message id.
    fn send_message(
        &self,
        queue_url: &str,
        msg: &OutMessage,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// At most 10 messages.
    fn send_message_batch(
        &self,
        queue_url: &str,
        msgs: &[OutMessage],
    ) -> impl Future<Output = Result<BatchOutcome, AwsError>> + Send;
    /// The service's desired count.
    fn desired_count(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<i32, AwsError>> + Send;
    fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// The SDK adapter; clients are built once per cold start.
#[derive(Debug, Clone)]
pub struct SdkAws {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    ecs: aws_sdk_ecs::Client,
}

impl SdkAws {
    pub fn new(sdk: &SdkConfig) -> SdkAws {
        // Path-style when an endpoint is set: emulators do not serve virtual-host buckets.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        SdkAws {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
        }
    }
}

fn classify<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let display = || format!("{}", DisplayErrorContext(&e));
    let (retryable, message, code) = match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("Unknown").to_owned();
            let msg = err.message().unwrap_or("").to_owned();
            let throttled = matches!(
                code.as_str(),
                "Throttling"
                    | "ThrottlingException"
                    | "ThrottledException"
                    | "RequestThrottled"
                    | "RequestThrottledException"
                    | "TooManyRequestsException"
                    | "SlowDown"
                    | "RequestLimitExceeded"
                    | "ServiceUnavailable"
                    | "InternalError"
                    | "InternalFailure"
                    | "ServerException"
                    | "KmsThrottled"
                    | "AWS.SimpleQueueService.RequestThrottled"
            );
            let message = if msg.is_empty() {
                code.clone()
            } else {
                format!("{code}: {msg}")
            };
            (throttled, message, code)
        }
        SdkError::ResponseError(_) | SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            (true, display(), String::new())
        }
        _ => (false, display(), String::new()),
    };
    let status = e.raw_response().map(|r| r.status().as_u16());
    let retryable = retryable || status.is_some_and(|s| s >= 500 || s == 429);
    AwsError {
        op,
        message: match status {
            Some(s) => format!("HTTP {s} {message}"),
            None => message,
        },
        retryable,
        // HEAD answers carry no body, hence no code: a bare 404 is "not found" too.
        not_found: matches!(code.as_str(), "NoSuchKey" | "NoSuchBucket" | "NotFound")
            || status == Some(404),
    }
}

impl Aws for SdkAws {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        if_none_match: Option<&str>,
    ) -> Result<Fetched, AwsError> {
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_if_none_match(if_none_match.map(str::to_owned))
            .send()
            .await;
        match out {
            Ok(o) => {
                let etag = o.e_tag().map(str::to_owned);
                let version_id = o.version_id().map(str::to_owned);
                let body = o.body.collect().await.map_err(|e| AwsError {
                    op: "s3:GetObject",
                    message: format!("reading s3://{bucket}/{key}: {e}"),
                    retryable: true,
                    not_found: false,
                })?;
                Ok(Fetched::Object {
                    body: body.into_bytes().to_vec(),
                    etag,
                    version_id,
                })
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
                Ok(Fetched::NotModified)
            }
            Err(e) => Err(classify("s3:GetObject", e)),
        }
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, AwsError> {
        let out = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("s3:HeadObject", e))?;
        Ok(ObjectMeta {
            etag: out.e_tag().map(str::to_owned),
            version_id: out.version_id().map(str::to_owned),
            size: out.content_length().and_then(|n| u64::try_from(n).ok()),
        })
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), AwsError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("s3:PutObject", e))
    }

    async fn send_message(&self, queue_url: &str, msg: &OutMessage) -> Result<String, AwsError> {
        let mut req = self
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(&msg.body);
        for a in &msg.attributes {
            req = req.message_attributes(a.name, attr_value(a)?);
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify("sqs:SendMessage", e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    async fn send_message_batch(
        &self,
        queue_url: &str,
        msgs: &[OutMessage],
    ) -> Result<BatchOutcome, AwsError> {
        let mut req = self.sqs.send_message_batch().queue_url(queue_url);
        for m in msgs {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(&m.id)
                .message_body(&m.body);
            for a in &m.attributes {
                entry = entry.message_attributes(a.name, attr_value(a)?);
            }
            req = req.entries(
                entry
                    .build()
                    .map_err(|e| build_error("sqs:SendMessageBatch", e))?,
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify("sqs:SendMessageBatch", e))?;
        Ok(BatchOutcome {
            sent: out
                .successful()
                .iter()
                .map(|s| (s.id().to_owned(), s.message_id().to_owned()))
                .collect(),
            failed: out
                .failed()
                .iter()
                .map(|f| BatchFailure {
                    id: f.id().to_owned(),
                    code: f.code().to_owned(),
                    message: f.message().unwrap_or_default().to_owned(),
                    sender_fault: f.sender_fault(),
                })
                .collect(),
        })
    }

    async fn desired_count(&self, cluster: &str, service: &str) -> Result<i32, AwsError> {
        let out = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| classify("ecs:DescribeServices", e))?;
        match out.services().first() {
            Some(s) => Ok(s.desired_count()),
            None => Err(AwsError {
                op: "ecs:DescribeServices",
                message: format!(
                    "service {service} not found in cluster {cluster}: {}",
                    out.failures()
                        .first()
                        .and_then(|f| f.reason())
                        .unwrap_or("no service returned")
                ),
                retryable: false,
                not_found: true,
            }),
        }
    }

    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> Result<(), AwsError> {
        self.ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ecs:UpdateService", e))
    }
}

fn attr_value(a: &Attr) -> Result<MessageAttributeValue, AwsError> {
    MessageAttributeValue::builder()
        .data_type(a.data_type)
        .string_value(&a.value)
        .build()
        .map_err(|e| build_error("sqs:SendMessage", e))
}

fn build_error(op: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError {
        op,
        message: format!("building the request: {e}"),
        retryable: false,
        not_found: false,
    }
}
