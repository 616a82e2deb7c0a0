//! The ECS agent's task scale-in protection endpoint, served locally to every task.
//!
//! One HTTP server on 127.0.0.1 for all tasks; each task gets
//! `ECS_AGENT_URI=http://127.0.0.1:PORT/v3/<task-id>` and calls
//! `PUT $ECS_AGENT_URI/task-protection/v1/state` with `{"ProtectionEnabled":true,
//! "ExpiresInMinutes":N}` or `{"ProtectionEnabled":false}` (`GET` reads the state). Answers
//! have the real agent's shape: `{"protection":{"ExpirationDate":…,"ProtectionEnabled":…,
//! "TaskArn":…}}`, and `{"error":{"Arn","Code","Message"}}` with a 4xx status for bad
//! requests. Expiry is measured on the simulated clock, so 120 minutes at 60× last two real
//! minutes; `ExpirationDate` is the real wall-clock instant at which it ends.

use crate::clock::Clock;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The agent's default protection period when `ExpiresInMinutes` is absent.
pub const DEFAULT_EXPIRES_MINUTES: u32 = 120;
/// The longest protection ECS accepts (48 hours).
pub const MAX_EXPIRES_MINUTES: u32 = 2880;

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    arn: String,
    /// Simulated second at which protection ends; `None` when not protected.
    until_s: Option<f64>,
}

/// Protection state of every known task, shared by the agent server (which writes it) and
/// the scheduler (which reads it before picking tasks to stop).
#[derive(Debug, Default)]
pub struct ProtectionBook {
    tasks: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtectionError {
    #[error("task {0} is not known to this control plane")]
    UnknownTask(String),
    #[error("ExpiresInMinutes must be between 1 and {MAX_EXPIRES_MINUTES}, got {0}")]
    BadExpiry(i64),
}

impl ProtectionBook {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a task known (unprotected), before it starts.
    pub fn register(&self, task_id: &str, task_arn: &str) {
        self.lock().insert(
            task_id.to_owned(),
            Entry {
                arn: task_arn.to_owned(),
                until_s: None,
            },
        );
    }

    /// Forgets a task that has stopped.
    pub fn forget(&self, task_id: &str) {
        self.lock().remove(task_id);
    }

    /// Enables protection for `minutes` simulated minutes from `now_s`, or disables it.
    /// Returns the end of protection (simulated seconds) when enabled.
    pub fn set(
        &self,
        task_id: &str,
        enabled: bool,
        minutes: Option<i64>,
        now_s: f64,
    ) -> Result<Option<f64>, ProtectionError> {
        let mut tasks = self.lock();
        let entry = tasks
            .get_mut(task_id)
            .ok_or_else(|| ProtectionError::UnknownTask(task_id.to_owned()))?;
        entry.until_s = if enabled {
            let m = minutes.unwrap_or(i64::from(DEFAULT_EXPIRES_MINUTES));
            if !(1..=i64::from(MAX_EXPIRES_MINUTES)).contains(&m) {
                return Err(ProtectionError::BadExpiry(m));
            }
            Some(now_s + m as f64 * 60.0)
        } else {
            None
        };
        Ok(entry.until_s)
    }

    /// Whether the task is protected at `now_s` (protection that has expired does not count).
    pub fn is_protected(&self, task_id: &str, now_s: f64) -> bool {
        self.protected_until(task_id, now_s).is_some()
    }

    /// The end of the task's protection, if it is protected at `now_s`.
    pub fn protected_until(&self, task_id: &str, now_s: f64) -> Option<f64> {
        self.lock()
            .get(task_id)
            .and_then(|e| e.until_s)
            .filter(|until| *until > now_s)
    }

    fn arn(&self, task_id: &str) -> Option<String> {
        self.lock().get(task_id).map(|e| e.arn.clone())
    }
}

/// The running agent endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct AgentServer {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl AgentServer {
    /// Binds a free port on 127.0.0.1 and serves `book` on the simulated `clock`.
    pub async fn start(book: Arc<ProtectionBook>, clock: Clock) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "agent endpoint: accept failed");
                        continue;
                    }
                };
                let book = book.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let book = book.clone();
                        async move { Ok::<_, Infallible>(handle(&book, clock, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await
                    {
                        tracing::debug!(error = %e, "agent endpoint: connection ended");
                    }
                });
            }
        });
        Ok(AgentServer { addr, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `ECS_AGENT_URI` for one task.
    pub fn task_uri(&self, task_id: &str) -> String {
        format!("http://{}/v3/{task_id}", self.addr)
    }
}

impl Drop for AgentServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(status: StatusCode, arn: &str, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        json!({"error": {"Arn": arn, "Code": code, "Message": message}}),
    )
}

fn protection(arn: &str, until_s: Option<f64>, clock: Clock) -> Response<Full<Bytes>> {
    let expiration = until_s.map(|until| {
        let real_left = clock.real(until - clock.now_s());
        let at = chrono::Utc::now()
            + chrono::Duration::from_std(real_left).unwrap_or_else(|_| chrono::Duration::zero());
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    });
    reply(
        StatusCode::OK,
        json!({"protection": {
            "ExpirationDate": expiration,
            "ProtectionEnabled": until_s.is_some(),
            "TaskArn": arn,
        }}),
    )
}

async fn handle(
    book: &ProtectionBook,
    clock: Clock,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    // /v3/<task-id>/task-protection/v1/state
    let path = req.uri().path().to_owned();
    let task_id = match path
        .strip_prefix("/v3/")
        .and_then(|rest| rest.strip_suffix("/task-protection/v1/state"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
    {
        Some(id) => id.to_owned(),
        None => {
            return error(
                StatusCode::NOT_FOUND,
                "",
                "NotFound",
                &format!("no route for {path}"),
            );
        }
    };
    let Some(arn) = book.arn(&task_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "",
            "ResourceNotFoundException",
            &format!("task {task_id} is not known to this control plane"),
        );
    };
    match *req.method() {
        Method::GET => protection(&arn, book.protected_until(&task_id, clock.now_s()), clock),
        Method::PUT => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &arn,
                        "InvalidRequest",
                        &e.to_string(),
                    );
                }
            };
            let parsed: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &arn,
                        "InvalidRequest",
                        &format!("request body is not JSON: {e}"),
                    );
                }
            };
            let Some(enabled) = parsed.get("ProtectionEnabled").and_then(Value::as_bool) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    &arn,
                    "InvalidRequest",
                    "ProtectionEnabled is required and must be a boolean",
                );
            };
            let minutes = match parsed.get("ExpiresInMinutes") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_i64() {
                    Some(m) => Some(m),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &arn,
                            "InvalidRequest",
                            "ExpiresInMinutes must be an integer",
                        );
                    }
                },
            };
            let now = clock.now_s();
            match book.set(&task_id, enabled, minutes, now) {
                Ok(until) => {
                    tracing::debug!(task = %task_id, enabled, ?minutes, "task scale-in protection set");
                    protection(&arn, until, clock)
                }
                Err(e @ ProtectionError::BadExpiry(_)) => error(
                    StatusCode::BAD_REQUEST,
                    &arn,
                    "InvalidParameterException",
                    &e.to_string(),
                ),
                Err(e @ ProtectionError::UnknownTask(_)) => error(
                    StatusCode::NOT_FOUND,
                    &arn,
                    "ResourceNotFoundException",
                    &e.to_string(),
                ),
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            &arn,
            "InvalidRequest",
            "only GET and PUT are supported",
        ),
    }
}
