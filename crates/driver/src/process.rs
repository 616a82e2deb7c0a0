//! The driver process: started lazily, restarted after it dies, multiplexed by request id.
//!
//! One writer task owns the child's stdin (lines come through a channel, so no lock is held
//! across a write); one supervisor task owns the `Child` and its stdout, hands each answer to
//! the request waiting for it, and when stdout closes reaps the process and fails every
//! request still waiting with [`DriverError::Crashed`].

use crate::protocol::{self, Hello, Incoming, Reply};
use crate::{C7nInfo, DriverConfig, DriverError, Request, Response, RunningJob};
use serde_json::Value;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// Kept from the driver's own stderr (Python tracebacks) for crash messages.
const STDERR_TAIL_BYTES: usize = 8 * 1024;
/// How long `probe` waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `shutdown` waits for the driver to exit after closing its stdin.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

type Waiter = oneshot::Sender<Result<Reply, String>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[derive(Debug, Default)]
struct Pending {
    waiters: HashMap<u64, Waiter>,
    /// Set once the process is gone: why. Nothing is registered after that.
    dead: Option<String>,
}

enum WriterMsg {
    Line(String),
    Close,
}

/// One running driver process.
#[derive(Debug)]
struct Process {
    hello: Hello,
    started_at: SystemTime,
    /// From spawning the interpreter to its ready line.
    start_seconds: f64,
    starts: u64,
    tx: mpsc::UnboundedSender<WriterMsg>,
    pending: Arc<Mutex<Pending>>,
    kill: Arc<Notify>,
    exited: watch::Receiver<bool>,
}

impl std::fmt::Debug for WriterMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterMsg::Line(_) => f.write_str("Line"),
            WriterMsg::Close => f.write_str("Close"),
        }
    }
}

impl Process {
    fn alive(&self) -> bool {
        lock(&self.pending).dead.is_none()
    }

    /// Registers a request id; fails if the process is already gone.
    fn register(&self, id: u64) -> Result<oneshot::Receiver<Result<Reply, String>>, DriverError> {
        let (tx, rx) = oneshot::channel();
        let mut p = lock(&self.pending);
        if let Some(why) = &p.dead {
            return Err(DriverError::Crashed {
                message: why.clone(),
            });
        }
        p.waiters.insert(id, tx);
        Ok(rx)
    }

    fn unregister(&self, id: u64) {
        lock(&self.pending).waiters.remove(&id);
    }

    fn send(&self, line: String) -> Result<(), DriverError> {
        self.tx
            .send(WriterMsg::Line(line))
            .map_err(|_| DriverError::Crashed {
                message: format!("c7n driver (pid {}) is gone", self.hello.pid),
            })
    }
}

/// Unregisters and cancels a request whose future was dropped before its answer came:
/// the driver kills the job, so nothing keeps running for a caller that gave up.
struct InFlight<'a> {
    process: &'a Process,
    id: u64,
    job_id: &'a str,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.process.unregister(self.id);
        if let Ok(line) = protocol::op_line(self.id, "cancel") {
            let _ = self.process.tx.send(WriterMsg::Line(line));
        }
        tracing::warn!(job_id = %self.job_id, request = self.id, "c7n job abandoned by its caller: cancelling it");
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    config: DriverConfig,
    state: tokio::sync::Mutex<Option<Arc<Process>>>,
    next_id: AtomicU64,
    starts: AtomicU64,
}

impl Inner {
    pub(crate) fn new(config: DriverConfig) -> Inner {
        Inner {
            config,
            state: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            starts: AtomicU64::new(0),
        }
    }

    fn python(&self) -> String {
        self.config.python.display().to_string()
    }

    /// The running process, starting (or restarting) it if needed.
    async fn process(&self) -> Result<Arc<Process>, DriverError> {
        let mut state = self.state.lock().await;
        if let Some(p) = state.as_ref() {
            if p.alive() {
                return Ok(Arc::clone(p));
            }
            tracing::warn!(
                previous_pid = p.hello.pid,
                "c7n driver exited: restarting it"
            );
        }
        let starts = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let p = Arc::new(self.spawn(starts).await?);
        tracing::info!(
            pid = p.hello.pid,
            c7n = %p.hello.c7n,
            python = %p.hello.python,
            executable = %p.hello.executable,
            import_seconds = p.hello.import_seconds,
            start_seconds = p.start_seconds,
            starts,
            "c7n driver started"
        );
        *state = Some(Arc::clone(&p));
        Ok(p)
    }

    async fn spawn(&self, starts: u64) -> Result<Process, DriverError> {
        let python = self.python();
        let mut cmd = Command::new(&self.config.python);
        cmd.arg("-B")
            .arg("-c")
            .arg(protocol::DRIVER_SOURCE)
            .env("CZERO_DRIVER_PARENT_PID", std::process::id().to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(
                self.config
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started_at = SystemTime::now();
        let clock = std::time::Instant::now();
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                DriverError::NotInstalled {
                    python: python.clone(),
                    message: format!("cannot start {python}: {e}"),
                }
            }
            _ => DriverError::Io(format!("starting {python}: {e}")),
        })?;
        let pid = child.id().unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(DriverError::Io(format!("{python}: pipes missing")));
        };

        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let stderr_done = tokio::spawn(read_stderr(stderr, pid, Arc::clone(&stderr_tail)));
        let mut lines = BufReader::new(stdout).lines();

        let first = tokio::time::timeout(self.config.start_timeout, lines.next_line()).await;
        let hello = match first {
            Ok(Ok(Some(line))) => match protocol::parse_line(&line) {
                Ok(Incoming::Ready(h)) => h,
                Ok(Incoming::Fatal { message, .. }) => {
                    let _ = child.wait().await;
                    return Err(DriverError::NotInstalled { python, message });
                }
                other => {
                    let _ = child.kill().await;
                    return Err(DriverError::Crashed {
                        message: format!("{python} did not start the c7n driver: {other:?}"),
                    });
                }
            },
            Ok(Ok(None)) | Ok(Err(_)) => {
                let status = child.wait().await.map(|s| s.to_string()).ok();
                let _ = stderr_done.await;
                let tail = lock(&stderr_tail).trim().to_owned();
                return Err(DriverError::NotInstalled {
                    python: python.clone(),
                    message: format!(
                        "{python} exited ({}) before c7n was ready: {tail}",
                        status.unwrap_or_else(|| "status unknown".into())
                    ),
                });
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(DriverError::Crashed {
                    message: format!(
                        "the c7n driver did not become ready within {:?}",
                        self.config.start_timeout
                    ),
                });
            }
        };
        if hello.protocol != protocol::PROTOCOL {
            let _ = child.kill().await;
            return Err(DriverError::Io(format!(
                "the c7n driver speaks protocol {}, this crate {}",
                hello.protocol,
                protocol::PROTOCOL
            )));
        }

        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_lines(stdin, rx));
        let pending = Arc::new(Mutex::new(Pending::default()));
        let kill = Arc::new(Notify::new());
        let (exited_tx, exited) = watch::channel(false);
        tokio::spawn(supervise(Supervised {
            child,
            lines,
            pid: hello.pid,
            pending: Arc::clone(&pending),
            kill: Arc::clone(&kill),
            stderr_tail,
            stderr_done,
            exited: exited_tx,
        }));
        Ok(Process {
            hello,
            started_at,
            start_seconds: clock.elapsed().as_secs_f64(),
            starts,
            tx,
            pending,
            kill,
            exited,
        })
    }

    pub(crate) async fn probe(&self) -> Result<C7nInfo, DriverError> {
        let p = self.process().await?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let rx = p.register(id)?;
        p.send(protocol::op_line(id, "probe")?)?;
        let reply = match tokio::time::timeout(PROBE_TIMEOUT, rx).await {
            Ok(Ok(Ok(reply))) => reply,
            Ok(Ok(Err(why))) => return Err(DriverError::Crashed { message: why }),
            Ok(Err(_)) => {
                return Err(DriverError::Crashed {
                    message: "the c7n driver went away".into(),
                });
            }
            Err(_) => {
                p.unregister(id);
                return Err(DriverError::Io(format!(
                    "the c7n driver did not answer a probe within {PROBE_TIMEOUT:?}"
                )));
            }
        };
        let hello: Hello = reply
            .result
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| DriverError::Io(format!("unreadable probe answer: {e}")))?
            .unwrap_or_else(|| p.hello.clone());
        Ok(C7nInfo {
            c7n_version: hello.c7n,
            python_version: hello.python,
            python: self.config.python.clone(),
            executable: hello.executable,
            pid: hello.pid,
            import_seconds: p.hello.import_seconds,
            started_at: p.started_at,
            starts: p.starts,
            spare: hello.spare,
            running: hello
                .jobs
                .into_iter()
                .map(|j| RunningJob {
                    job_id: j.job_id,
                    pid: j.pid,
                })
                .collect(),
        })
    }

    pub(crate) async fn run(&self, request: Request) -> Result<Response, DriverError> {
        let p = self.process().await?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let line = protocol::run_line(id, &request, self.config.max_captured_bytes)?;
        let rx = p.register(id)?;
        if let Err(e) = p.send(line) {
            p.unregister(id);
            return Err(e);
        }
        let mut flight = InFlight {
            process: &p,
            id,
            job_id: &request.job_id,
            done: false,
        };
        let wait = request.timeout + self.config.grace;
        let answer = tokio::time::timeout(wait, rx).await;
        flight.done = true;
        match answer {
            Ok(Ok(Ok(reply))) => {
                if reply.error.as_ref().is_some_and(|e| e.kind == "Timeout") {
                    tracing::warn!(job_id = %request.job_id, pid = reply.pid, after = ?request.timeout, "c7n job killed after its timeout");
                }
                protocol::into_result(reply, &request)
            }
            Ok(Ok(Err(why))) => Err(DriverError::Crashed { message: why }),
            Ok(Err(_)) => Err(DriverError::Crashed {
                message: format!("c7n driver (pid {}) went away", p.hello.pid),
            }),
            Err(_) => {
                // The driver enforces the job's timeout itself; no answer long after it
                // means the driver is stuck. Kill it: the next request starts a new one.
                p.unregister(id);
                tracing::error!(job_id = %request.job_id, pid = p.hello.pid, waited = ?wait, "c7n driver did not answer: killing it");
                p.kill.notify_one();
                Err(DriverError::Timeout {
                    after: request.timeout,
                })
            }
        }
    }

    pub(crate) async fn shutdown(&self) {
        let Some(p) = self.state.lock().await.take() else {
            return;
        };
        let _ = p.tx.send(WriterMsg::Close);
        let mut exited = p.exited.clone();
        let waited = tokio::time::timeout(SHUTDOWN_WAIT, exited.wait_for(|e| *e))
            .await
            .is_ok();
        if !waited {
            tracing::warn!(
                pid = p.hello.pid,
                "c7n driver did not exit after its stdin closed: killing it"
            );
            p.kill.notify_one();
            let _ = exited.wait_for(|e| *e).await;
        }
        tracing::info!(pid = p.hello.pid, "c7n driver stopped");
    }
}

async fn write_lines(mut stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<WriterMsg>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            WriterMsg::Line(line) => {
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
            WriterMsg::Close => break,
        }
    }
    // Dropping stdin closes it: the driver kills its jobs and exits.
}

async fn read_stderr(stderr: tokio::process::ChildStderr, pid: u32, tail: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "czero_driver::python", pid, "{line}");
        let mut t = lock(&tail);
        t.push_str(&line);
        t.push('\n');
        if t.len() > STDERR_TAIL_BYTES {
            let keep = protocol::tail(&t, STDERR_TAIL_BYTES).to_owned();
            *t = keep;
        }
    }
}

struct Supervised {
    child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    pid: u32,
    pending: Arc<Mutex<Pending>>,
    kill: Arc<Notify>,
    stderr_tail: Arc<Mutex<String>>,
    stderr_done: tokio::task::JoinHandle<()>,
    exited: watch::Sender<bool>,
}

async fn supervise(mut s: Supervised) {
    loop {
        tokio::select! {
            line = s.lines.next_line() => match line {
                Ok(Some(line)) => dispatch(&line, s.pid, &s.pending),
                Ok(None) | Err(_) => break,
            },
            _ = s.kill.notified() => {
                let _ = s.child.start_kill();
            }
        }
    }
    let status = match tokio::time::timeout(Duration::from_secs(5), s.child.wait()).await {
        Ok(Ok(status)) => status.to_string(),
        _ => {
            let _ = s.child.start_kill();
            match s.child.wait().await {
                Ok(status) => status.to_string(),
                Err(e) => format!("status unknown: {e}"),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), &mut s.stderr_done).await;
    let tail = lock(&s.stderr_tail).trim().to_owned();
    let why = if tail.is_empty() {
        format!("c7n driver (pid {}) ended: {status}", s.pid)
    } else {
        format!(
            "c7n driver (pid {}) ended: {status}; its stderr:\n{tail}",
            s.pid
        )
    };
    let waiters = {
        let mut p = lock(&s.pending);
        p.dead = Some(why.clone());
        std::mem::take(&mut p.waiters)
    };
    if !waiters.is_empty() {
        tracing::warn!(pid = s.pid, requests = waiters.len(), %status, "c7n driver ended with requests in flight");
    }
    for (_, w) in waiters {
        let _ = w.send(Err(why.clone()));
    }
    let _ = s.exited.send(true);
}

fn dispatch(line: &str, pid: u32, pending: &Mutex<Pending>) {
    match protocol::parse_line(line) {
        Ok(Incoming::Response { id, reply }) => {
            let waiter = lock(pending).waiters.remove(&id);
            if let Some(w) = waiter {
                let _ = w.send(Ok(reply));
            }
        }
        Ok(Incoming::Log {
            level,
            message,
            fields,
        }) => log(pid, &level, &message, &fields),
        Ok(other) => tracing::warn!(pid, "unexpected line from the c7n driver: {other:?}"),
        Err(e) => tracing::warn!(pid, "{e}"),
    }
}

fn log(pid: u32, level: &str, message: &str, fields: &Value) {
    match level {
        "error" => tracing::error!(pid, %fields, "c7n driver: {message}"),
        "warn" => tracing::warn!(pid, %fields, "c7n driver: {message}"),
        "info" => tracing::info!(pid, %fields, "c7n driver: {message}"),
        _ => tracing::debug!(pid, %fields, "c7n driver: {message}"),
    }
}
