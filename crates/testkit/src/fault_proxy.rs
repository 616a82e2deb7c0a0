//! An HTTP proxy on 127.0.0.1 that forwards to an emulator (moto) and injects faults by
//! rule: AWS-shaped error answers (5xx, or a named code such as SQS's 400
//! `RequestThrottled` or S3's 503 `SlowDown`) on every Nth or the first K matching
//! requests, or added latency. Point a process's `AWS_ENDPOINT_URL` at
//! [`FaultProxy::endpoint`] to see how it copes.
//!
//! It also counts the requests it sees per AWS operation (`X-Amz-Target`'s operation for
//! JSON protocols such as SQS), and how often each rule fired, so tests can check how often
//! a call was made and which faults were injected.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which matching requests a rule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The first K matching requests.
    First(u64),
    /// Every Nth matching request (the Nth, 2Nth, …).
    EveryNth(u64),
    Always,
}

/// What a rule does to a request it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer with this status (an AWS-shaped error body) without forwarding: `InternalError`,
    /// or for 503 `ServiceUnavailable` (JSON protocols) / `SlowDown` (S3).
    Status(u16),
    /// Answer with this status and AWS error code without forwarding, in the shape of the
    /// request's protocol: `Error(400, "RequestThrottled")` or `Error(400,
    /// "ThrottlingException")` for SQS, `Error(503, "SlowDown")` for S3.
    Error(u16, &'static str),
    /// Wait this long, then forward.
    Delay(Duration),
}

/// A fault rule. All given conditions must hold for a request to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The operation in `X-Amz-Target` (`ReceiveMessage` for `AmazonSQS.ReceiveMessage`).
    pub target: Option<String>,
    /// HTTP method, e.g. `GET`.
    pub method: Option<String>,
    /// Path prefix, e.g. `/policies/` (S3 path-style: `/bucket/key`).
    pub path_prefix: Option<String>,
    pub when: When,
    pub action: Action,
}

impl Rule {
    /// A rule for an `X-Amz-Target` operation.
    pub fn target(op: &str, when: When, action: Action) -> Rule {
        Rule {
            target: Some(op.to_owned()),
            method: None,
            path_prefix: None,
            when,
            action,
        }
    }

    /// A rule for a method and path prefix (S3 and other REST protocols).
    pub fn path(method: &str, prefix: &str, when: When, action: Action) -> Rule {
        Rule {
            target: None,
            method: Some(method.to_owned()),
            path_prefix: Some(prefix.to_owned()),
            when,
            action,
        }
    }

    fn matches(&self, op: Option<&str>, method: &str, path: &str) -> bool {
        self.target.as_deref().is_none_or(|t| op == Some(t))
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

#[derive(Debug, Default)]
struct State {
    /// Each rule with its matching requests and how often it fired.
    rules: Vec<(Rule, u64, u64)>,
    /// Requests seen per operation (`X-Amz-Target` op, or `METHOD` for REST calls).
    seen: HashMap<String, u64>,
    first_seen: HashMap<String, std::time::Instant>,
    injected: u64,
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. `http://127.0.0.1:PORT`) with `rules`.
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Result<FaultProxy> {
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding the fault proxy")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            rules: rules.into_iter().map(|r| (r, 0, 0)).collect(),
            ..State::default()
        }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let st = Arc::clone(&state);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the fault proxy runtime")?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(serve(listener, upstream, st, stop_rx));
        });
        Ok(FaultProxy {
            port,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the rules (their counters start again).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        lock(&self.state).rules = rules.into_iter().map(|r| (r, 0, 0)).collect();
    }

    /// How often each rule fired, in the order the rules were given.
    pub fn fired(&self) -> Vec<u64> {
        lock(&self.state).rules.iter().map(|(_, _, f)| *f).collect()
    }

    /// Requests seen for an operation: the `X-Amz-Target` operation (`ReceiveMessage`), or
    /// the HTTP method for REST calls (`GET`, `PUT`).
    pub fn requests(&self, op: &str) -> u64 {
        lock(&self.state).seen.get(op).copied().unwrap_or(0)
    }

    /// Requests seen for every operation together.
    pub fn total_requests(&self) -> u64 {
        lock(&self.state).seen.values().sum()
    }

    /// When the first request for an operation arrived (see [`FaultProxy::requests`]).
    pub fn first_seen(&self, op: &str) -> Option<std::time::Instant> {
        lock(&self.state).first_seen.get(op).copied()
    }

    /// Faults injected so far (statuses and delays).
    pub fn injected(&self) -> u64 {
        lock(&self.state).injected
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    state: Arc<Mutex<State>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .unwrap_or_default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (client, upstream, state) = (client.clone(), upstream.clone(), Arc::clone(&state));
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (client, upstream, state) =
                    (client.clone(), upstream.clone(), Arc::clone(&state));
                async move {
                    Ok::<_, std::convert::Infallible>(handle(req, &client, &upstream, &state).await)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
    state: &Mutex<State>,
) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let target_op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned());
    let action = {
        let mut st = lock(state);
        let op = target_op.clone().unwrap_or_else(|| method.clone());
        st.first_seen
            .entry(op.clone())
            .or_insert_with(std::time::Instant::now);
        *st.seen.entry(op).or_default() += 1;
        let mut fired = None;
        for (rule, hits, times) in st.rules.iter_mut() {
            if !rule.matches(target_op.as_deref(), &method, &path) {
                continue;
            }
            *hits += 1;
            let fire = match rule.when {
                When::First(k) => *hits <= k,
                When::EveryNth(n) => n > 0 && *hits % n == 0,
                When::Always => true,
            };
            if fire && fired.is_none() {
                fired = Some(rule.action);
                *times += 1;
            }
        }
        if fired.is_some() {
            st.injected += 1;
        }
        fired
    };
    match action {
        Some(Action::Status(status)) => return injected_error(status, None, target_op.is_some()),
        Some(Action::Error(status, code)) => {
            return injected_error(status, Some(code), target_op.is_some());
        }
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    forward(req, client, upstream)
        .await
        .unwrap_or_else(|e| plain(502, format!("fault proxy: upstream failed: {e:#}")))
}

async fn forward(
    req: Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
) -> Result<Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the request body")?
        .to_bytes();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())?;
    let mut out = client.request(method, format!("{upstream}{pq}"));
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection" | "expect"
        ) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let resp = out.body(body).send().await.context("forwarding")?;
    let mut builder = Response::builder().status(resp.status().as_u16());
    for (name, value) in resp.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = resp.bytes().await.context("reading the upstream body")?;
    Ok(builder.body(Full::new(bytes))?)
}

/// An AWS error answer: `code`, or by default `InternalError` (`ServiceUnavailable` /
/// `SlowDown` for 503), as JSON with the query-compatible header (what SQS sends) when the
/// request named an `X-Amz-Target`, as S3's XML otherwise.
fn injected_error(status: u16, code: Option<&str>, json: bool) -> Response<Full<Bytes>> {
    let code = code.unwrap_or(match (status, json) {
        (503, true) => "ServiceUnavailable",
        (503, false) => "SlowDown",
        _ => "InternalError",
    });
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.0",
            format!(r#"{{"__type":"{code}","message":"injected by the fault proxy"}}"#),
        )
    } else {
        (
            "application/xml",
            format!(
                "<Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>"
            ),
        )
    };
    // AWS's query-compatible fault type: the caller's (Sender) for 4xx, the service's for 5xx.
    let fault = if status < 500 { "Sender" } else { "Receiver" };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-query-error", format!("{code};{fault}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn plain(code: u16, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    if let Ok(s) = hyper::StatusCode::from_u16(code) {
        *r.status_mut() = s;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_on_all_given_conditions() {
        let r = Rule::target("ReceiveMessage", When::Always, Action::Status(500));
        assert!(r.matches(Some("ReceiveMessage"), "POST", "/"));
        assert!(!r.matches(Some("DeleteMessage"), "POST", "/"));
        assert!(!r.matches(None, "POST", "/"));
        let p = Rule::path("GET", "/policies/", When::Always, Action::Status(503));
        assert!(p.matches(None, "get", "/policies/policies/a.yml"));
        assert!(!p.matches(None, "PUT", "/policies/a.yml"));
        assert!(!p.matches(None, "GET", "/output/a"));
    }

    /// The injected answers parse, as the SDKs parse them, into the codes asked for, and a
    /// rule that fires is counted.
    #[tokio::test(flavor = "multi_thread")]
    async fn injected_errors_reach_the_sdk_with_their_codes() {
        use aws_sdk_sqs::error::ProvideErrorMetadata;
        // Nothing listens upstream: every answer here is injected.
        let proxy = FaultProxy::start(
            "http://127.0.0.1:9",
            vec![
                Rule::target(
                    "ReceiveMessage",
                    When::Always,
                    Action::Error(400, "RequestThrottled"),
                ),
                Rule::target("DeleteMessage", When::Always, Action::Status(503)),
                Rule::path("GET", "/b/", When::Always, Action::Error(503, "SlowDown")),
                Rule::path("PUT", "/b/", When::Always, Action::Status(500)),
            ],
        )
        .unwrap();
        let sdk = crate::stub_config(&proxy.endpoint());
        let no_retry = aws_config::retry::RetryConfig::disabled();
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .retry_config(no_retry.clone())
                .build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .retry_config(no_retry)
                .build(),
        );
        let queue = format!("{}/123456789012/q", proxy.endpoint());

        let e = sqs
            .receive_message()
            .queue_url(&queue)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(e.code(), Some("RequestThrottled"));
        assert!(e.is_request_throttled(), "{e:?}");
        let e = sqs
            .delete_message()
            .queue_url(&queue)
            .receipt_handle("h")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(e.code(), Some("ServiceUnavailable"));
        let e = s3
            .get_object()
            .bucket("b")
            .key("k")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(e.code(), Some("SlowDown"));
        let e = s3
            .put_object()
            .bucket("b")
            .key("k")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(e.code(), Some("InternalError"));

        assert_eq!(proxy.fired(), vec![1, 1, 1, 1]);
        assert_eq!(proxy.injected(), 4);
    }
}
