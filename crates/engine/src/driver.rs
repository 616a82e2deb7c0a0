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
    let (policy_data, credentials) = match &engine.options.member_role {
        None => (policy.raw.clone(), None),
        Some(role) => (
            without_member_role(&policy.raw),
            Some(member_credentials(engine, &name, role).await?),
        ),
    };
    let request = Request {
        job_id: job_id.to_string(),
        policy: policy_data,
        event,
        region: engine.region.clone(),
        account_id: engine.account_id(),
        output_dir: tmp.path().to_path_buf(),
        dryrun: engine.options.dryrun,
        timeout: engine.options.driver_timeout,
        credentials,
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

/// The policy without `mode.member-role`: the engine already acts through that role.
fn without_member_role(raw: &serde_json::Value) -> serde_json::Value {
    let mut data = raw.clone();
    if let Some(mode) = data
        .get_mut("mode")
        .and_then(serde_json::Value::as_object_mut)
    {
        mode.remove("member-role");
    }
    data
}

/// The member session's credentials, for Cloud Custodian to act with.
async fn member_credentials(
    engine: &Engine,
    policy: &str,
    role: &str,
) -> Result<czero_driver::Credentials, EngineError> {
    use aws_credential_types::provider::ProvideCredentials;
    let fail = |message: String| EngineError::C7n {
        policy: policy.to_string(),
        kind: "MemberRole",
        message: format!("member role {role}: {message}"),
        retryable: true,
    };
    let provider = engine
        .credentials
        .as_ref()
        .ok_or_else(|| fail("the engine has no credentials to hand to Cloud Custodian".into()))?;
    let c = provider
        .provide_credentials()
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(czero_driver::Credentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: c.session_token().map(str::to_string),
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
