//! The job queue: the few SQS calls the worker makes, with errors sorted by what the
//! worker should do about them.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use std::time::Duration;

/// Message attribute carrying the reason a message was sent to the DLQ by the worker.
pub const DEAD_LETTER_REASON_ATTRIBUTE: &str = "czero-dead-letter-reason";
/// The failure's kind (`NotAJob`, `InvalidPolicy`, `NeedsFullImage`, `Panic`, ...).
pub const DEAD_LETTER_KIND_ATTRIBUTE: &str = "czero-dead-letter-kind";
/// The message id on the job queue, to find the worker's log lines.
pub const ORIGINAL_MESSAGE_ID_ATTRIBUTE: &str = "czero-original-message-id";
/// How many times the job queue had delivered the message.
pub const RECEIVE_COUNT_ATTRIBUTE: &str = "czero-receive-count";

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The receipt handle no longer names an in-flight receive: the visibility timeout
    /// passed and the message was received again (or deleted) elsewhere.
    #[error("{op}: receipt handle no longer valid ({code})")]
    HandleExpired { op: &'static str, code: String },
    /// The queue does not exist or we may not use it: retrying cannot help.
    #[error("{op} on {queue}: {message}")]
    Fatal {
        op: &'static str,
        queue: String,
        message: String,
    },
    /// Anything else (throttling, 5xx, network) after the SDK's own retries.
    #[error("{op} on {queue}: {message}")]
    Transient {
        op: &'static str,
        queue: String,
        message: String,
    },
}

impl QueueError {
    pub fn is_fatal(&self) -> bool {
        matches!(self, QueueError::Fatal { .. })
    }
}

const HANDLE_CODES: &[&str] = &[
    "ReceiptHandleIsInvalid",
    "InvalidIdFormat",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
];
const FATAL_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAddress",
    "InvalidSecurity",
    "KmsAccessDenied",
];

fn classify<E, R>(op: &'static str, queue: &str, err: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or_default().to_owned();
    if HANDLE_CODES.contains(&code.as_str()) {
        return QueueError::HandleExpired { op, code };
    }
    let message = DisplayErrorContext(&err).to_string();
    let queue = queue.to_owned();
    if FATAL_CODES.contains(&code.as_str()) {
        QueueError::Fatal { op, queue, message }
    } else {
        QueueError::Transient { op, queue, message }
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
    call_timeout: Duration,
}

/// Per-attempt limit for every call but the long poll: a delete or a visibility change
/// answers in milliseconds, so one that hangs is retried, not waited on for a minute.
pub const CALL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Queue {
            client,
            url: url.into(),
            call_timeout: CALL_ATTEMPT_TIMEOUT,
        }
    }

    /// Overrides [`CALL_ATTEMPT_TIMEOUT`] (tests use a short one).
    pub fn with_call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// Short calls: a tight per-attempt limit and three attempts (the heartbeat also retries
    /// every second; a delete that still fails only costs a redelivery, which the ledger
    /// drops as a duplicate).
    fn short_calls(&self) -> aws_sdk_sqs::config::Builder {
        aws_sdk_sqs::config::Builder::default()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(self.call_timeout)
                    .operation_timeout(self.call_timeout * 3)
                    .build(),
            )
            .retry_config(
                aws_sdk_sqs::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(100)),
            )
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One long poll: up to `max` messages, waiting up to `wait_seconds`, hidden from other
    /// consumers for `visibility_seconds`.
    pub async fn receive(
        &self,
        max: u32,
        wait_seconds: u32,
        visibility_seconds: u32,
    ) -> Result<Vec<Message>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(wait_seconds as i32)
            .visibility_timeout(visibility_seconds as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| classify("ReceiveMessage", &self.url, e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Some(Message {
                    message_id: m.message_id.unwrap_or_default(),
                    // A message without a handle could never be deleted or released: SQS
                    // always sends one, so this only guards against a malformed response.
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    pub async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .customize()
            .config_override(self.short_calls())
            .send()
            .await
            .map_err(|e| classify("DeleteMessage", &self.url, e))?;
        Ok(())
    }

    /// Sets the message's visibility timeout, counted from now (0 releases it at once).
    pub async fn change_visibility(
        &self,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds as i32)
            .customize()
            .config_override(self.short_calls())
            .send()
            .await
            .map_err(|e| classify("ChangeMessageVisibility", &self.url, e))?;
        Ok(())
    }

    /// Copies a body to the dead-letter queue with the reason (and `extra` attributes) as
    /// message attributes.
    pub async fn send_dead_letter(
        &self,
        dlq_url: &str,
        body: &str,
        reason: &str,
        extra: &[(&str, String)],
    ) -> Result<(), QueueError> {
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(truncate(if v.is_empty() { "-" } else { v }, 1024))
                .build()
                .map_err(|e| QueueError::Fatal {
                    op: "SendMessage",
                    queue: dlq_url.to_owned(),
                    message: e.to_string(),
                })
        };
        let mut req = self
            .client
            .send_message()
            .queue_url(dlq_url)
            .message_body(if body.is_empty() { "(empty)" } else { body })
            .message_attributes(DEAD_LETTER_REASON_ATTRIBUTE, attr(reason)?);
        for (k, v) in extra {
            req = req.message_attributes(*k, attr(v)?);
        }
        req.customize()
            .config_override(self.short_calls())
            .send()
            .await
            .map_err(|e| classify("SendMessage", dlq_url, e))?;
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
