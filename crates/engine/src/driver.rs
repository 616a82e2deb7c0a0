//! Policies the native engine cannot run go to Cloud Custodian itself, through the c7n
//! driver (`czero-driver`): c7n's own loader, its mode's event resolution
//! (`policy.push(event)`) and its filters and actions, in a forked child of one long-lived
//! Python process. The driver writes c7n's files into a private directory; they are
//! written to the run's output exactly as native runs write theirs.
//!
//! Without a driver, or with one whose Python cannot import c7n (the slim worker image),
//! such a policy fails at once with a reason that names the image that can run it.

use crate::run::{Scope, Start};
use crate::{ActionReport, Engine, EngineError, Executor, RunReport};
use czero_driver::{DriverError, Request};
use czero_policy::Policy;

/// The image that carries Cloud Custodian (operators grep for it).
pub const FULL_IMAGE: &str = "custodian-worker:full";

pub(crate) async fn run(
    engine: &Engine,
    policy: &Policy,
    start: Start<'_>,
    job_id: &str,
    feature: &str,
) -> Result<RunReport, EngineError> {
    let name = policy.name.clone();
    let Some(driver) = &engine.options.driver else {
        return Err(EngineError::NeedsFullImage {
            policy: name,
            feature: feature.to_string(),
            detail: "no Cloud Custodian driver is configured".into(),
        });
    };
    let tmp = tempfile::tempdir().map_err(|e| EngineError::Output {
        location: std::env::temp_dir().display().to_string(),
        message: format!("temporary directory for Cloud Custodian's output: {e}"),
        retryable: false,
    })?;
    let (event, event_mode) = match start.scope {
        Scope::Event => (start.event.cloned(), true),
        Scope::Scan => (None, false),
        // Ids are resolved here only for native policies; c7n resolves its own.
        Scope::Ids(_) => (start.event.cloned(), true),
    };
    tracing::info!(policy = %name, feature, job_id, "running through Cloud Custodian (c7n driver)");
    let request = Request {
        job_id: job_id.to_string(),
        policy: policy.raw.clone(),
        event,
        region: engine.region.clone(),
        account_id: engine.account_id(),
        output_dir: tmp.path().to_path_buf(),
        dryrun: engine.options.dryrun,
        timeout: engine.options.driver_timeout,
    };
    let response = driver
        .run(request)
        .await
        .map_err(|e| from_driver(&name, feature, e))?;

    let resources = response.resource_ids.clone();
    // c7n's push modes write nothing when no resource matched (the native engine neither).
    let output_location = if event_mode && resources.is_empty() {
        String::new()
    } else {
        let files =
            read_folder(&response.output_folder)
                .await
                .map_err(|e| EngineError::Output {
                    location: response.output_folder.display().to_string(),
                    message: e.to_string(),
                    retryable: false,
                })?;
        start
            .output
            .write(&engine.s3, &name, start.started_at, &files)
            .await?
    };
    let actions = if resources.is_empty() {
        Vec::new()
    } else if engine.options.dryrun {
        policy
            .action_types()
            .into_iter()
            .map(|action| ActionReport {
                action,
                resources: resources.len(),
                failed: 0,
                dryrun: true,
            })
            .collect()
    } else {
        response
            .actions
            .iter()
            .map(|a| ActionReport {
                action: a.clone(),
                resources: resources.len(),
                failed: 0,
                dryrun: false,
            })
            .collect()
    };
    Ok(RunReport {
        policy: name,
        resource_type: policy.resource.clone(),
        resources,
        actions,
        duration: start.started.elapsed(),
        executor: Executor::Driver,
        output_location,
        execution_id: start.execution_id,
        skipped: None,
    })
}

fn from_driver(policy: &str, feature: &str, e: DriverError) -> EngineError {
    let policy = policy.to_string();
    let retryable = e.is_retryable();
    match e {
        DriverError::NotInstalled { python, message } => EngineError::NeedsFullImage {
            policy,
            feature: feature.to_string(),
            detail: format!("{python} cannot import c7n: {message}"),
        },
        DriverError::InvalidPolicy { message } => EngineError::C7n {
            policy,
            kind: "InvalidPolicy",
            message: format!("Cloud Custodian refused the policy: {message}"),
            retryable,
        },
        e @ DriverError::UnsupportedMode { .. } => EngineError::C7n {
            policy,
            kind: "UnsupportedMode",
            message: e.to_string(),
            retryable,
        },
        e @ DriverError::Failed { .. } => EngineError::C7n {
            policy,
            kind: "C7nFailed",
            message: e.to_string(),
            retryable,
        },
        e @ DriverError::Timeout { .. } => EngineError::C7n {
            policy,
            kind: "Timeout",
            message: e.to_string(),
            retryable,
        },
        e @ (DriverError::Crashed { .. } | DriverError::Io(_)) => EngineError::C7n {
            policy,
            kind: "C7nCrashed",
            message: e.to_string(),
            retryable,
        },
    }
}

/// The files of c7n's output folder, sorted by name.
async fn read_folder(folder: &std::path::Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut rd = tokio::fs::read_dir(folder).await?;
    while let Some(entry) = rd.next_entry().await? {
        let path = entry.path();
        if entry.file_type().await?.is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                tokio::fs::read(&path).await?,
            ));
        }
    }
    files.sort();
    Ok(files)
}
