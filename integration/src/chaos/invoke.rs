//! The event side of a chaos run: `czero invoke` per event, as EventBridge invokes the
//! Lambda, with the early duplicates invoked a second time, and what the queueing and the
//! disruption loop share.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the queueing task and the disruption loop share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Job id of each event once queued.
    pub jobs: Mutex<Vec<Option<String>>>,
    /// Queueing failed: the disruption loop stops.
    pub failed: AtomicBool,
    /// The emulator is frozen: start no invocation until it thaws.
    pub frozen: AtomicBool,
    pub early_sent: Mutex<usize>,
    pub invoke_retries: Mutex<usize>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// How to run the invoker: the `czero` binary and its environment (the emulator's
/// credentials and endpoint, and the Lambda's variables).
#[derive(Debug, Clone)]
pub(crate) struct Invoker {
    pub czero: PathBuf,
    pub env: Arc<Vec<(String, String)>>,
}

impl Invoker {
    /// `czero invoke --event FILE`; the queued job's id.
    async fn once(&self, file: &Path) -> Result<String> {
        let out = tokio::process::Command::new(&self.czero)
            .arg("invoke")
            .arg("--event")
            .arg(file)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("starting czero invoke")?;
        let name = file.display();
        if !out.status.success() {
            bail!(
                "czero invoke --event {name} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("czero invoke --event {name}: output is not JSON"))?;
        v["queued"]["jobId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("czero invoke --event {name} queued no job: {v}"))
    }

    /// Invokes with `file`, retried twice a second apart on failure, as EventBridge retries
    /// an asynchronous Lambda invocation that failed. A retry after a send that did succeed
    /// queues the job twice: a duplicate the ledger drops.
    pub async fn invoke(&self, file: &Path, shared: &Shared) -> Result<String> {
        let mut attempt = 0;
        loop {
            match self.once(file).await {
                Ok(job) => return Ok(job),
                Err(e) if attempt < 2 => {
                    attempt += 1;
                    *lock(&shared.invoke_retries) += 1;
                    eprintln!("[chaos] retrying an invocation: {e:#}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Invokes `file` again and checks that the invoker queued the same job (its id comes
    /// from the event id), which is what makes the copy a duplicate.
    pub async fn again(&self, i: usize, file: &Path, shared: &Shared) -> Result<String> {
        let again = self.invoke(file, shared).await?;
        let first = lock(&shared.jobs).get(i).cloned().flatten();
        if first.as_deref() != Some(again.as_str()) {
            bail!(
                "event {i} invoked twice gave jobs {first:?} and {again}: {}",
                "the invoker's job id is not deterministic"
            );
        }
        Ok(again)
    }
}

/// Invokes every event, `parallel` at a time, each early duplicate a second time right after
/// its chunk (a Lambda retry after a successful send). Waits while the emulator is frozen
/// before starting a chunk; invocations already running stall with it and then finish.
pub(crate) async fn queue_events(
    invoker: Invoker,
    files: Vec<PathBuf>,
    early: BTreeSet<usize>,
    parallel: usize,
    shared: Arc<Shared>,
) -> Result<()> {
    let result = async {
        let indices: Vec<usize> = (0..files.len()).collect();
        for chunk in indices.chunks(parallel.max(1)) {
            while shared.frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut set = tokio::task::JoinSet::new();
            for &i in chunk {
                let (invoker, file, shared) = (invoker.clone(), files[i].clone(), shared.clone());
                set.spawn(async move { (i, invoker.invoke(&file, &shared).await) });
            }
            while let Some(joined) = set.join_next().await {
                let (i, job) = joined.context("an invocation task panicked")?;
                lock(&shared.jobs)[i] = Some(job?);
            }
            for &i in chunk.iter().filter(|i| early.contains(i)) {
                invoker.again(i, &files[i], &shared).await?;
                *lock(&shared.early_sent) += 1;
            }
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        shared.failed.store(true, Ordering::SeqCst);
    }
    result
}
