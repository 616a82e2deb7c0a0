//! The c7n driver: runs a policy the way Cloud Custodian's own Lambda runs it, in one
//! long-lived Python process, for any resource type and mode.
//!
//! **Why.** `custodian run` on an event-mode policy deploys a Lambda, and stripping the mode
//! and pinning ids with a filter of our own is wrong for every resource type whose id is not
//! `Name`. c7n evaluates an event with `policy.push(event)`: the mode's own
//! `resolve_resources` (CloudTrail ids, Security Hub ARNs, GuardDuty, instance and ASG state,
//! Health, Config), `assume_member`, filters and actions. The driver calls exactly that.
//!
//! **Design.** [`Driver`] owns one Python process, started lazily as `python -B -c <source>`
//! (the source, `py/czero_driver.py`, is compiled into this crate, and `-B` keeps Python
//! from writing bytecode: nothing is written outside the jobs' output directories, so it
//! runs on a read-only root filesystem). That process imports c7n once and
//! serves JSON lines on stdin/stdout, tagged with a request id so many jobs can be in flight.
//! Each job runs in a child forked from it: the import (about a second) is paid once, and
//! before forking the parent loads the policy's resource type, its schema and a boto3
//! session with the service's models, and loads and validates the policy, so every child
//! starts warm; a child cannot corrupt the parent's state, and killing it stops everything
//! the job was doing. Once idle, the driver forks the next child ahead of time; that spare
//! rehearses the last job (loads its policy, builds its client) so the pages a job touches
//! are already copied, then waits for its job on a pipe (a spare forked before something new
//! was loaded is thrown away). The parent stays single-threaded (forking a threaded process
//! is unsafe).
//!
//! **Timeouts and lifetimes.** A job past its timeout is killed inside the driver with
//! SIGKILL to its own process group, and [`DriverError::Timeout`] is returned: nothing keeps
//! remediating after the caller gave up. Dropping a [`Driver::run`] future kills its job too.
//! Every job sets `PR_SET_PDEATHSIG` so it dies with the driver; the driver sets it too and
//! exits, killing its jobs, when its stdin closes, so a worker killed with SIGKILL leaves no
//! orphans. The driver ignores SIGINT and SIGTERM: the worker decides when it stops
//! ([`Driver::shutdown`]). Linux delivers the parent-death signal when the *thread* that
//! spawned the process exits, so start the driver from async code on the runtime's threads
//! (as `run` and `probe` do), not from a short-lived `spawn_blocking` thread.
//!
//! **Restarts.** If the driver process dies, the requests in flight get
//! [`DriverError::Crashed`] (retryable) and the next request starts a new one.
//!
//! **Never the whole account.** In an event mode the resources come from c7n's
//! `resolve_resources`, which asks for the ids the event names (`get_resources(ids)`:
//! server-side id filters such as `GroupIds` or `InstanceIds`, or per-id calls like
//! `GetUser`). That relies on c7n itself, and the tests prove it for each mode with a
//! recording proxy in front of the emulator: no answer ever names a resource the event did
//! not. Without an event (a pull scan) the policy runs as `PullMode(policy).run()`, which
//! lists by design; `policy()` is never called (on a Lambda mode it provisions a Lambda).
//!
//! **Modes.** `--dryrun` runs the same push path with the policy's actions removed (c7n's
//! `LambdaMode.run_resource_set` ignores dryrun). `config-rule` takes an AWS Config rule
//! invocation (`invokingEvent`) as c7n does; an EventBridge Config event (configuration item
//! change, or compliance change) is resolved as `ConfigRuleMode.resolve_resources` does,
//! then filtered and acted on as `LambdaMode.run` does, and no evaluation is reported to AWS
//! Config (an EventBridge event has no result token; the run log says so).
//! `config-poll-rule` is [`DriverError::UnsupportedMode`] with an event: it reports to AWS
//! Config on Config's own schedule, which no event can drive (use `periodic`).
//!
//! **Output.** c7n's layout under `<output_dir>/<policy>/` (`resources.json`,
//! `metadata.json`, `custodian-run.log`, `action-*`), also when a push matched nothing, with
//! `"executor": {"name": "c7n-driver", "c7n": <version>, "mode": <mode>}` in `metadata.json`.
//! Credentials come from the inherited environment (`AWS_*`, `AWS_ENDPOINT_URL`), the region
//! from each [`Request`].

mod process;
mod protocol;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use protocol::DRIVER_SOURCE;

/// How to start the driver process.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Interpreter that can `import c7n`: CUSTODIAN_PYTHON, else `python3` on PATH.
    pub python: PathBuf,
    /// Extra environment for the driver process (it inherits the worker's otherwise).
    pub env: Vec<(String, String)>,
    /// Tail of a job's captured stdout/stderr kept, default 64 KiB.
    pub max_captured_bytes: usize,
    /// How long importing c7n may take before the start counts as failed (default 120 s).
    pub start_timeout: Duration,
    /// Past a job's own timeout (enforced inside the driver), how long to wait for the
    /// driver's answer before the driver counts as hung and is killed (default 30 s).
    pub grace: Duration,
}

impl Default for DriverConfig {
    fn default() -> DriverConfig {
        DriverConfig {
            python: PathBuf::from("python3"),
            env: Vec::new(),
            max_captured_bytes: 64 * 1024,
            start_timeout: Duration::from_secs(120),
            grace: Duration::from_secs(30),
        }
    }
}

impl DriverConfig {
    /// The defaults, with the interpreter from `CUSTODIAN_PYTHON` when it is set.
    pub fn from_env() -> DriverConfig {
        let mut config = DriverConfig::default();
        if let Some(p) = std::env::var_os("CUSTODIAN_PYTHON").filter(|p| !p.is_empty()) {
            config.python = PathBuf::from(p);
        }
        config
    }
}

/// What the running driver reports about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct C7nInfo {
    /// c7n's version (`c7n.version.version`).
    pub c7n_version: String,
    /// The interpreter's version, e.g. `3.11.7`.
    pub python_version: String,
    /// The interpreter as configured.
    pub python: PathBuf,
    /// `sys.executable` as the interpreter reports it.
    pub executable: String,
    /// The driver process.
    pub pid: u32,
    /// Seconds the driver took to import c7n.
    pub import_seconds: f64,
    /// When this driver process was started.
    pub started_at: SystemTime,
    /// Driver processes this [`Driver`] has started (1 until a restart).
    pub starts: u64,
    /// Jobs running now, with their process ids.
    pub running: Vec<RunningJob>,
    /// The child forked ahead of time for the next job, if one is waiting.
    pub spare: Option<u32>,
}

/// A job the driver is running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningJob {
    pub job_id: String,
    pub pid: u32,
}

/// One policy to run, with or without an event.
#[derive(Clone, Debug)]
pub struct Request {
    pub job_id: String,
    /// ONE policy mapping, as written.
    pub policy: serde_json::Value,
    /// None: pull scan.
    pub event: Option<serde_json::Value>,
    pub region: String,
    pub account_id: Option<String>,
    /// c7n writes `<output_dir>/<policy name>/`.
    pub output_dir: PathBuf,
    pub dryrun: bool,
    pub timeout: Duration,
    /// Temporary credentials the job acts with (a member role's session); `None`: the
    /// driver's own (the worker's). With them, c7n must not assume a role itself: the
    /// caller leaves `mode.member-role` out of the policy.
    pub credentials: Option<Credentials>,
}

/// AWS credentials handed to one job; `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What c7n did.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub policy: String,
    pub mode: String,
    pub resource_type: String,
    /// Ids (c7n `resource_type.id`) of the matched resources, as in resources.json.
    pub resource_ids: Vec<String>,
    /// Names of the actions c7n ran (empty in dryrun or when nothing matched).
    pub actions: Vec<String>,
    /// The job's time inside the driver, from handing it to its child to its result.
    pub seconds: f64,
    pub c7n_version: String,
    /// The tail of the job's stdout/stderr (c7n's log lines), at most `max_captured_bytes`.
    pub log_tail: String,
    /// `<output_dir>/<policy name>`, where c7n wrote its files.
    pub output_folder: PathBuf,
    /// Bytes the job wrote to stdout/stderr in all (`log_tail` keeps only the end).
    pub output_bytes: u64,
    /// The job's process id (gone by the time this is returned).
    pub pid: u32,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// No interpreter, or `import c7n` fails.
    #[error("c7n is not usable with {python}: {message}")]
    NotInstalled { python: String, message: String },
    /// c7n's loader/validation refused the policy.
    #[error("c7n refused the policy: {message}")]
    InvalidPolicy { message: String },
    #[error("mode {mode} cannot run through the c7n driver: {message}")]
    UnsupportedMode { mode: String, message: String },
    /// An exception during the run: its type, message and the job's log tail.
    #[error("c7n run failed with {error_type} (retryable: {retryable}): {message}")]
    Failed {
        message: String,
        error_type: String,
        retryable: bool,
    },
    /// The job was killed inside the driver.
    #[error("c7n job killed after its timeout of {after:?}")]
    Timeout { after: Duration },
    /// The driver or the job process died.
    #[error("c7n driver or job process died: {message}")]
    Crashed { message: String },
    #[error("c7n driver I/O: {0}")]
    Io(String),
}

impl DriverError {
    /// Timeout, Crashed and Io are worth another try, Failed when c7n's error was
    /// throttling, a 5xx, a connection or a timeout error; NotInstalled, InvalidPolicy and
    /// UnsupportedMode never are.
    pub fn is_retryable(&self) -> bool {
        match self {
            DriverError::NotInstalled { .. }
            | DriverError::InvalidPolicy { .. }
            | DriverError::UnsupportedMode { .. } => false,
            DriverError::Failed { retryable, .. } => *retryable,
            DriverError::Timeout { .. } | DriverError::Crashed { .. } | DriverError::Io(_) => true,
        }
    }
}

/// A handle to the driver process; clones share it.
#[derive(Clone, Debug)]
pub struct Driver {
    inner: Arc<process::Inner>,
}

impl Driver {
    /// Starts nothing: the process starts on first use.
    pub fn new(config: DriverConfig) -> Driver {
        Driver {
            inner: Arc::new(process::Inner::new(config)),
        }
    }

    /// Starts the driver if needed and asks it who it is.
    pub async fn probe(&self) -> Result<C7nInfo, DriverError> {
        self.inner.probe().await
    }

    /// Runs one policy in a forked child of the driver (starting or restarting the driver
    /// if needed). Concurrent calls run concurrently. Dropping the future kills the job.
    pub async fn run(&self, request: Request) -> Result<Response, DriverError> {
        self.inner.run(request).await
    }

    /// Closes the driver's stdin (it kills any job still running and exits) and waits for
    /// it, killing it if it has not exited within 10 s. The next request starts a new one.
    pub async fn shutdown(&self) {
        self.inner.shutdown().await
    }
}
