//! The permission table (`czero_engine::permissions`) against what the engine really does:
//! every native filter, action, augment and output path runs on moto, and the operations
//! each run counts in `metadata.json`'s `api-stats` must be listed in the table under the
//! features that policy uses; every operation the table lists must have been seen. So the
//! table can neither miss a call (a role built from it would be denied) nor keep one the
//! code no longer makes. A second test compares each feature's IAM actions with the
//! `permissions` Cloud Custodian declares on the same class.

mod common;

use anyhow::{Context, Result, anyhow, ensure};
use aws_sdk_s3::types::{
    BucketVersioningStatus, Destination, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus, VersioningConfiguration,
};
use common::{client, createbucket_event, parse_policy, seed, seed_kms};
use czero_engine::permissions::{self, FEATURES, Kind};
use czero_engine::{Engine, EngineOptions, Output};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/policies/",
            $name,
            ".yml"
        ))
    };
}

/// One run: a policy, and the event it runs for (none: a pull-mode scan).
struct Case {
    policy: &'static str,
    event_bucket: Option<&'static str>,
}

const fn pull(policy: &'static str) -> Case {
    Case {
        policy,
        event_bucket: None,
    }
}

/// In order: each run leaves buckets in the state the next one looks for.
fn cases() -> Vec<Case> {
    vec![
        // bucket-encryption with a key: GetBucketEncryption, DescribeKey, ListAliases.
        pull(fixture!("kms-alias-filter")),
        // global-grants, delete-global-grants.
        pull(fixture!("global-grants")),
        // delete: replication, versioning, multipart uploads, versions, plain objects (before
        // anything versions the plain bucket or gives it a policy that denies plain HTTP).
        pull(DELETE),
        // has-statement; set-statements removing the last statement: DeleteBucketPolicy.
        pull(fixture!("remove-deny-http")),
        // missing-policy-statement, not, value; set-statements adding one: PutBucketPolicy.
        pull(fixture!("require-https")),
        // check-public-block; set-public-block with the block already read.
        pull(fixture!("public-block-any-off")),
        // An event: no ListBuckets. set-public-block reads the block itself; encryption,
        // versioning and tag.
        Case {
            policy: fixture!("createbucket"),
            event_bucket: Some("fresh"),
        },
        Case {
            policy: EVENT_FILTER,
            event_bucket: Some("fresh"),
        },
        // set-bucket-encryption enabled: false, then a KMS key by alias.
        pull(DECRYPT),
        pull(fixture!("kms-alias-encrypt")),
        pull(fixture!("enable-versioning")),
        pull(fixture!("remove-env-tag")),
        pull(UNMARK),
        pull(MARK),
    ]
}

const EVENT_FILTER: &str = r#"
policies:
  - name: event-filter
    resource: aws.s3
    mode:
      type: cloudtrail
      events: [CreateBucket]
    filters:
      - type: event
        key: detail.eventName
        value: CreateBucket
    actions:
      - type: tag
        key: Seen
        value: "yes"
"#;

const DECRYPT: &str = r#"
policies:
  - name: decrypt
    resource: aws.s3
    filters:
      - Name: enc-aes
    actions:
      - type: set-bucket-encryption
        enabled: false
"#;

const UNMARK: &str = r#"
policies:
  - name: unmark
    resource: aws.s3
    filters:
      - "tag:maid_status": present
    actions:
      - unmark
"#;

const MARK: &str = r#"
policies:
  - name: mark
    resource: aws.s3
    filters:
      - Name: plain
    actions:
      - type: mark-for-op
        op: delete
        days: 3
"#;

const DELETE: &str = r#"
policies:
  - name: delete-doomed
    resource: aws.s3
    filters:
      - type: value
        key: Name
        op: regex
        value: "^doomed-"
    actions:
      - delete
"#;

/// The buckets `DELETE` empties and removes: a versioned one with objects, a replication
/// configuration and a multipart upload in progress, and a plain one with objects.
async fn seed_doomed(s3: &aws_sdk_s3::Client) -> Result<()> {
    for b in ["doomed-versioned", "doomed-plain", "replica"] {
        s3.create_bucket().bucket(b).send().await.context(b)?;
    }
    for b in ["doomed-versioned", "replica"] {
        s3.put_bucket_versioning()
            .bucket(b)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
    }
    for (b, key) in [
        ("doomed-versioned", "a.txt"),
        ("doomed-versioned", "a.txt"),
        ("doomed-plain", "b.txt"),
    ] {
        s3.put_object()
            .bucket(b)
            .key(key)
            .body(b"x".to_vec().into())
            .send()
            .await?;
    }
    let rule = ReplicationRule::builder()
        .id("all")
        .status(ReplicationRuleStatus::Enabled)
        .priority(1)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .destination(
            Destination::builder()
                .bucket("arn:aws:s3:::replica")
                .build()?,
        )
        .delete_marker_replication(
            aws_sdk_s3::types::DeleteMarkerReplication::builder()
                .status(aws_sdk_s3::types::DeleteMarkerReplicationStatus::Disabled)
                .build(),
        )
        .build()?;
    s3.put_bucket_replication()
        .bucket("doomed-versioned")
        .replication_configuration(
            ReplicationConfiguration::builder()
                .role("arn:aws:iam::123456789012:role/replication")
                .rules(rule)
                .build()?,
        )
        .send()
        .await
        .context("PutBucketReplication")?;
    s3.create_multipart_upload()
        .bucket("doomed-versioned")
        .key("big.bin")
        .send()
        .await
        .context("CreateMultipartUpload")?;
    Ok(())
}

/// The features a policy uses, as `(kind, name)` rows of the table: the augment always, the
/// scan in pull mode, each filter (nested ones too) and each action, the output.
fn features_of(yaml: &str) -> Result<BTreeSet<(&'static str, String)>> {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml)?;
    let p: Value = serde_json::to_value(&doc["policies"][0])?;
    let mut out = BTreeSet::from([
        ("resource", "aws.s3 augment".to_string()),
        ("output", "s3 output".to_string()),
    ]);
    let mode = p["mode"]["type"].as_str().unwrap_or("pull");
    if mode == "pull" {
        out.insert(("resource", "aws.s3 pull scan".to_string()));
    }
    fn filters(list: &Value, out: &mut BTreeSet<(&'static str, String)>) {
        for f in list.as_array().into_iter().flatten() {
            let Some(m) = f.as_object() else { continue };
            match m.get("type").and_then(Value::as_str) {
                Some(t) => {
                    out.insert(("filter", t.to_string()));
                }
                None => {
                    let blocks: Vec<&Value> = ["and", "or", "not"]
                        .iter()
                        .filter_map(|k| m.get(*k))
                        .collect();
                    if blocks.is_empty() {
                        out.insert(("filter", "value".to_string()));
                    }
                    for b in blocks {
                        filters(b, out);
                    }
                }
            }
        }
    }
    filters(&p["filters"], &mut out);
    for a in p["actions"].as_array().into_iter().flatten() {
        let t = match a {
            Value::String(s) => s.clone(),
            other => other["type"].as_str().unwrap_or_default().to_string(),
        };
        out.insert(("action", t));
    }
    Ok(out)
}

fn kind(name: &str) -> Kind {
    match name {
        "resource" => Kind::Resource,
        "filter" => Kind::Filter,
        "action" => Kind::Action,
        _ => Kind::Output,
    }
}

/// The operations the table lists for these features.
fn table_operations(features: &BTreeSet<(&'static str, String)>) -> Result<BTreeSet<String>> {
    let mut ops = BTreeSet::new();
    for (k, name) in features {
        let f = permissions::feature_named(kind(k), name)
            .ok_or_else(|| anyhow!("the permission table has no {k} `{name}`"))?;
        ops.extend(f.calls.iter().map(|c| c.operation.to_string()));
    }
    Ok(ops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_the_engine_makes_is_in_the_table_and_every_entry_is_made() -> Result<()> {
    let moto = czero_testkit::Moto::start().context("moto must be installed for this test")?;
    let s3 = client(&moto);
    seed(&s3).await?;
    seed_kms(&moto, &s3).await?;
    seed_doomed(&s3).await?;
    s3.create_bucket().bucket("fresh").send().await?;
    s3.create_bucket().bucket("output").send().await?;
    let engine = Engine::new(
        &moto.sdk_config(),
        EngineOptions {
            dryrun: false,
            region: "us-east-1".into(),
            ..EngineOptions::default()
        },
    );
    let out = tempfile::tempdir()?;

    // The output writer's PutObject happens after api-stats are taken (metadata.json is one
    // of the files it writes), so it is seen by what lands in the bucket. First, before a
    // policy gives the bucket a statement that denies plain HTTP (moto enforces it).
    let policy = parse_policy(fixture!("kms-encrypted"))?;
    engine
        .run(&policy, None, &Output::parse("s3://output/runs")?)
        .await?;
    let listed = s3
        .list_objects_v2()
        .bucket("output")
        .prefix("runs/kms-encrypted/")
        .send()
        .await?;
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    ensure!(
        keys.iter().any(|k| k.ends_with("/metadata.json.gz")),
        "the S3 output writer wrote no metadata.json.gz: {keys:?}"
    );
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    seen.entry("s3.PutObject".into())
        .or_default()
        .push(policy.name.clone());

    for case in cases() {
        let policy = parse_policy(case.policy)?;
        let event = case.event_bucket.map(createbucket_event);
        let report = engine
            .run(&policy, event.as_ref(), &Output::Dir(out.path().into()))
            .await
            .with_context(|| format!("policy {}", policy.name))?;
        ensure!(
            !report.resources.is_empty(),
            "policy {} matched nothing: the run exercised none of its actions",
            policy.name
        );
        let md: Value = serde_json::from_slice(&std::fs::read(
            out.path().join(&policy.name).join("metadata.json"),
        )?)?;
        let made: BTreeSet<String> = md["api-stats"]
            .as_object()
            .ok_or_else(|| anyhow!("{}: metadata.json has no api-stats", policy.name))?
            .keys()
            .cloned()
            .collect();
        let features = features_of(case.policy)?;
        let listed = table_operations(&features)?;
        let missing: Vec<&String> = made.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "policy {} made {missing:?}, which the permission table does not list for its features {features:?}",
            policy.name
        );
        if case.event_bucket.is_some() {
            assert!(
                !made.contains("s3.ListBuckets"),
                "policy {} listed buckets in an event mode",
                policy.name
            );
        }
        for op in made {
            seen.entry(op).or_default().push(policy.name.clone());
        }
    }

    let never: Vec<&str> = permissions::operations()
        .into_iter()
        .filter(|op| !seen.contains_key(*op))
        .collect();
    assert!(
        never.is_empty(),
        "the permission table lists {never:?}, which no run made (seen: {:?})",
        seen.keys().collect::<Vec<_>>()
    );
    Ok(())
}

/// A minimal policy entry for each filter and action, for c7n's validation.
fn c7n_data(kind: Kind, name: &str) -> Value {
    match (kind, name) {
        (Kind::Filter, "bucket-encryption") => json!({"type": name, "state": false}),
        (Kind::Filter, "has-statement" | "missing-policy-statement") => {
            json!({"type": name, "statement_ids": ["x"]})
        }
        (Kind::Filter, "value") => json!({"type": name, "key": "Name", "value": "x"}),
        (Kind::Filter, "event") => json!({"type": name, "key": "detail.eventName", "value": "x"}),
        (Kind::Action, "tag") => json!({"type": name, "key": "k", "value": "v"}),
        (Kind::Action, "remove-tag") => json!({"type": name, "tags": ["k"]}),
        (Kind::Action, "mark-for-op") => json!({"type": name, "op": "delete", "days": 1}),
        (Kind::Action, "set-statements") => json!({"type": name, "statements": []}),
        _ => json!({"type": name}),
    }
}

#[test]
fn each_feature_needs_what_c7n_declares_except_the_differences_noted() -> Result<()> {
    // The pull scan is c7n's resource manager too (its ListAllMyBuckets); it is compared
    // with the augment row.
    let compared: Vec<_> = FEATURES
        .iter()
        .filter(|f| f.name != "aws.s3 pull scan")
        .collect();
    let request: Vec<Value> = compared
        .iter()
        .map(|f| json!({"kind": f.kind.name(), "name": f.name, "data": c7n_data(f.kind, f.name)}))
        .collect();
    let script = czero_testkit::project_root().join("crates/engine/tests/py/c7n_permissions.py");
    let mut child = std::process::Command::new(czero_testkit::python()?)
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting the c7n permissions script")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("no stdin")?;
        stdin.write_all(serde_json::to_string(&request)?.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "c7n_permissions.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c7n: BTreeMap<String, Vec<String>> = serde_json::from_slice(&out.stdout)?;
    let lower = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|a| a.to_lowercase()).collect() };
    let mut problems = Vec::new();
    for f in compared {
        let key = format!("{} {}", f.kind.name(), f.name);
        let theirs: BTreeSet<String> = c7n
            .get(&key)
            .ok_or_else(|| anyhow!("c7n printed nothing for {key}"))?
            .iter()
            .map(|a| a.to_lowercase())
            .collect();
        let ours = lower(&permissions::actions(f));
        let only_c7n: BTreeSet<String> = theirs.difference(&ours).cloned().collect();
        let only_ours: BTreeSet<String> = ours.difference(&theirs).cloned().collect();
        if only_c7n != lower(f.c7n_only) || only_ours != lower(f.ours_only) {
            problems.push(format!(
                "{key}: c7n alone declares {only_c7n:?} (table says {:?}); we alone need {only_ours:?} (table says {:?})",
                f.c7n_only, f.ours_only
            ));
        }
        if (!f.c7n_only.is_empty() || !f.ours_only.is_empty()) && f.note.is_empty() {
            problems.push(format!("{key}: differs from c7n without a note saying why"));
        }
    }
    let scan = permissions::feature_named(Kind::Resource, "aws.s3 pull scan")
        .ok_or_else(|| anyhow!("no pull scan row"))?;
    let manager = lower(
        &c7n["resource aws.s3 augment"]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    for a in permissions::actions(scan) {
        if !manager.contains(&a.to_lowercase()) {
            problems.push(format!(
                "pull scan needs {a}, which c7n's resource manager does not declare"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
