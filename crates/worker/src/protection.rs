//! ECS task scale-in protection through the ECS agent's endpoint.
//!
//! A task holding a batch must not be picked for scale-in: the worker sets protection
//! (`PUT $ECS_AGENT_URI/task-protection/v1/state`) when a receive returns messages and clears
//! it when the batch is done. There is a window between the receive and the protection
//! taking effect; a task stopped in it gets SIGTERM and releases its messages (see
//! `worker`), and one killed outright leaves them to reappear after the visibility timeout,
//! so the window can delay a job but never lose it. Protecting *before* every receive would
//! close the window but keep idle tasks protected, so scale-in would never happen.
//!
//! Failing to protect is logged and retried a few times, never fatal: the job matters more.

use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    #[error("PUT {url}: {message}")]
    Request { url: String, message: String },
    #[error("PUT {url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("PUT {url}: the agent refused: {reason}")]
    Refused { url: String, reason: String },
}

#[derive(Debug, Clone)]
pub struct Protection {
    http: reqwest::Client,
    url: String,
    expires_minutes: u32,
    attempts: u32,
    backoff: Duration,
}

impl Protection {
    /// `agent_uri` is `$ECS_AGENT_URI`.
    pub fn new(agent_uri: &str, expires_minutes: u32) -> Self {
        let http = reqwest::Client::builder()
            // The agent is local: a slow answer means it is unwell, and the batch waits on it.
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Protection {
            http,
            url: format!(
                "{}/task-protection/v1/state",
                agent_uri.trim_end_matches('/')
            ),
            expires_minutes,
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }

    /// Changes the retry policy (tests use a short backoff).
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Protects the task for the configured number of minutes. Logs and gives up after the
    /// retries; returns whether protection is in place.
    pub async fn protect(&self) -> bool {
        let body = json!({"ProtectionEnabled": true, "ExpiresInMinutes": self.expires_minutes});
        self.put_with_retries(&body, "enable").await
    }

    /// Clears protection so the task can be scaled in.
    pub async fn unprotect(&self) -> bool {
        self.put_with_retries(&json!({"ProtectionEnabled": false}), "disable")
            .await
    }

    async fn put_with_retries(&self, body: &Value, what: &str) -> bool {
        let mut delay = self.backoff;
        for attempt in 1..=self.attempts {
            match self.put(body).await {
                Ok(()) => {
                    tracing::debug!(what, attempt, "task scale-in protection updated");
                    return true;
                }
                Err(e) if attempt < self.attempts => {
                    tracing::warn!(what, attempt, error = %e, "task scale-in protection failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    tracing::error!(what, attempt, error = %e, "task scale-in protection failed; continuing without it");
                }
            }
        }
        false
    }

    /// One request. The agent answers 200 with either `protection` or `failure`.
    pub async fn put(&self, body: &Value) -> Result<(), ProtectionError> {
        let resp = self
            .http
            .put(&self.url)
            .json(body)
            .send()
            .await
            .map_err(|e| ProtectionError::Request {
                url: self.url.clone(),
                message: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ProtectionError::Status {
                url: self.url.clone(),
                status,
                body: text,
            });
        }
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(f) = parsed.get("failure").filter(|f| !f.is_null()) {
            let reason = f
                .get("Reason")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            let detail = f.get("Detail").and_then(Value::as_str).unwrap_or_default();
            return Err(ProtectionError::Refused {
                url: self.url.clone(),
                reason: if detail.is_empty() {
                    reason
                } else {
                    format!("{reason}: {detail}")
                },
            });
        }
        Ok(())
    }
}
