//! A recording HTTP proxy in front of moto: every request the driver's jobs make, with its
//! body and the emulator's answer, so a test can show which calls were made with which ids
//! and that no answer ever named a resource the event did not.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path_and_query: String,
    pub target: Option<String>,
    pub request: String,
    pub response: String,
    pub status: u16,
}

impl Exchange {
    /// The AWS operation: `Action=` of query-protocol services (EC2, IAM, Auto Scaling),
    /// the `X-Amz-Target` operation of JSON ones, else the method and path.
    pub fn operation(&self) -> String {
        let params = self.request.split('&').chain(
            self.path_and_query
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .split('&'),
        );
        for kv in params {
            if let Some(action) = kv.strip_prefix("Action=") {
                return action.to_owned();
            }
        }
        if let Some(t) = &self.target {
            return t.rsplit('.').next().unwrap_or(t).to_owned();
        }
        format!("{} {}", self.method, self.path_and_query)
    }
}

#[derive(Debug)]
pub struct RecordingProxy {
    port: u16,
    log: Arc<Mutex<Vec<Exchange>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingProxy {
    pub fn start(upstream: &str) -> RecordingProxy {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("binding the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("proxy address").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let l = Arc::clone(&log);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let thread = std::thread::spawn(move || {
            runtime.block_on(serve(listener, upstream, l, stop_rx));
        });
        RecordingProxy {
            port,
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        match self.log.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn clear(&self) {
        match self.log.lock() {
            Ok(mut g) => g.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    log: Arc<Mutex<Vec<Exchange>>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let client = reqwest::Client::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (client, upstream, log) = (client.clone(), upstream.clone(), Arc::clone(&log));
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (client, upstream, log) = (client.clone(), upstream.clone(), Arc::clone(&log));
                async move {
                    Ok::<_, std::convert::Infallible>(forward(req, &client, &upstream, &log).await)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn forward(
    req: Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
    log: &Mutex<Vec<Exchange>>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut out = client.request(method, format!("{upstream}{pq}"));
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection" | "expect"
        ) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let (status, headers, answer) = match out.body(body.clone()).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let headers: Vec<(String, Vec<u8>)> = resp
                .headers()
                .iter()
                .filter(|(n, _)| {
                    !matches!(
                        n.as_str(),
                        "content-length" | "transfer-encoding" | "connection"
                    )
                })
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
            (status, headers, resp.bytes().await.unwrap_or_default())
        }
        Err(e) => (502, Vec::new(), Bytes::from(format!("proxy: {e}"))),
    };
    if let Ok(mut l) = log.lock() {
        l.push(Exchange {
            method: parts.method.as_str().to_owned(),
            path_and_query: pq,
            target,
            request: String::from_utf8_lossy(&body).into_owned(),
            response: String::from_utf8_lossy(&answer).into_owned(),
            status,
        });
    }
    let mut builder = Response::builder().status(status);
    for (n, v) in headers {
        builder = builder.header(n, v);
    }
    builder
        .body(Full::new(answer))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
