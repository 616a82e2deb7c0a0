//! The fallback executor: a policy with a feature this engine does not run natively goes
//! through the real `custodian run`. Its `mode` is stripped (`custodian run` on an event
//! mode would deploy a Lambda) and, for an event, the buckets are pinned with a leading
//! value filter `{type: value, key: Name, op: in, value: [ids]}` (the S3 describe source
//! has no server-side id filter, so c7n still lists and augments every bucket before the
//! filter drops the others). It runs with `--cache-period 0`, `-s <tmp>` and `--region`,
//! and its output folder is copied to the destination unchanged.

use crate::run::Scope;
use crate::{ActionReport, Engine, EngineError, Executor, Output, RunReport};
use chrono::{DateTime, Utc};
use czero_policy::Policy;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `custodian` from the options, `CUSTODIAN_CLI`, or PATH; a configured path that does
/// not exist counts as not installed.
pub(crate) fn find_cli(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return p.is_file().then(|| p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("CUSTODIAN_CLI").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("custodian"))
        .find(|p| p.is_file())
}

/// The policy document `custodian run` gets: mode removed, resources pinned.
pub(crate) fn pinned_policy(raw: &Value, ids: Option<&[String]>) -> Value {
    let mut p = raw.clone();
    if let Value::Object(m) = &mut p {
        m.remove("mode");
        if let Some(ids) = ids {
            let pin = json!({"type": "value", "key": "Name", "op": "in", "value": ids});
            let mut filters = vec![pin];
            if let Some(Value::Array(f)) = m.get("filters") {
                filters.extend(f.iter().cloned());
            }
            m.insert("filters".into(), Value::Array(filters));
        }
    }
    json!({ "policies": [p] })
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    engine: &Engine,
    policy: &Policy,
    scope: Scope,
    output: &Output,
    feature: &str,
    started: Instant,
    started_at: DateTime<Utc>,
    execution_id: String,
) -> Result<RunReport, EngineError> {
    let name = policy.name.clone();
    let Some(cli) = find_cli(engine.options.custodian_cli.as_deref()) else {
        return Err(EngineError::CustodianMissing {
            policy: name,
            feature: feature.to_string(),
        });
    };
    tracing::info!(policy = %name, feature, cli = %cli.display(), "running through the custodian CLI");
    let fail = |message: String, retryable: bool| EngineError::Fallback {
        policy: name.clone(),
        message,
        retryable,
    };
    let tmp = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}"), false))?;
    let ids = match &scope {
        Scope::Ids(ids) => Some(ids.as_slice()),
        Scope::Scan => None,
        Scope::Event => {
            return Err(fail(
                "event modes of policies that do not run natively need Cloud Custodian's own event resolution".into(),
                false,
            ));
        }
    };
    let doc = pinned_policy(&policy.raw, ids);
    let policy_file = tmp.path().join("policy.json");
    let out_dir = tmp.path().join("out");
    tokio::fs::write(
        &policy_file,
        serde_json::to_vec_pretty(&doc).unwrap_or_default(),
    )
    .await
    .map_err(|e| fail(format!("{}: {e}", policy_file.display()), false))?;
    let mut cmd = tokio::process::Command::new(&cli);
    cmd.arg("run").arg("-s").arg(&out_dir).args([
        "--cache-period",
        "0",
        "--region",
        engine.region(),
    ]);
    if engine.options.dryrun {
        cmd.arg("--dryrun");
    }
    cmd.arg(&policy_file);
    let out = cmd
        .output()
        .await
        .map_err(|e| fail(format!("starting {}: {e}", cli.display()), false))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        // Throttling or 5xx surfacing through c7n is worth another try.
        let retryable = [
            "Throttl",
            "SlowDown",
            "ServiceUnavailable",
            "InternalError",
            "RequestTimeout",
            "EndpointConnectionError",
        ]
        .iter()
        .any(|p| stderr.contains(p));
        return Err(fail(
            format!("{} exited with {}: {tail}", cli.display(), out.status),
            retryable,
        ));
    }

    let folder = out_dir.join(&name);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut rd = tokio::fs::read_dir(&folder)
        .await
        .map_err(|e| fail(format!("reading {}: {e}", folder.display()), false))?;
    while let Ok(Some(entry)) = rd.next_entry().await {
        let path = entry.path();
        if path.is_file() {
            let body = tokio::fs::read(&path)
                .await
                .map_err(|e| fail(format!("reading {}: {e}", path.display()), false))?;
            files.push((entry.file_name().to_string_lossy().into_owned(), body));
        }
    }
    files.sort();
    let resources: Vec<String> = files
        .iter()
        .find(|(n, _)| n == "resources.json")
        .and_then(|(_, b)| serde_json::from_slice::<Vec<Value>>(b).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.get("Name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let actions = policy
        .raw
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| ActionReport {
            action: crate::s3::actions::action_data(a).0,
            resources: resources.len(),
            failed: 0,
            dryrun: engine.options.dryrun,
        })
        .filter(|_| !resources.is_empty())
        .collect();
    let output_location = output.write(&engine.s3, &name, started_at, &files).await?;
    Ok(RunReport {
        policy: name,
        resource_type: policy.resource.clone(),
        resources,
        actions,
        duration: started.elapsed(),
        executor: Executor::Fallback,
        output_location,
        execution_id,
        skipped: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_strips_mode_and_prepends_the_name_filter() {
        let raw = json!({"name": "p", "resource": "aws.s3", "mode": {"type": "cloudtrail"}, "filters": [{"tag:A": "present"}]});
        let doc = pinned_policy(&raw, Some(&["b1".to_string()]));
        let p = &doc["policies"][0];
        assert!(p.get("mode").is_none());
        assert_eq!(
            p["filters"][0],
            json!({"type": "value", "key": "Name", "op": "in", "value": ["b1"]})
        );
        assert_eq!(p["filters"][1], json!({"tag:A": "present"}));
        let doc = pinned_policy(&raw, None);
        assert_eq!(
            doc["policies"][0]["filters"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn configured_cli_must_exist() {
        assert_eq!(find_cli(Some(Path::new("/nonexistent/custodian"))), None);
        let f = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(find_cli(Some(f.path())), Some(f.path().to_path_buf()));
    }
}
