//! What a run leaves behind: c7n's output layout with the executor recorded, nothing
//! changed under dryrun, and the request's region used.

mod common;

use common::{FIXTURE_SG, HTTPS_INTERNAL, SSH_OPEN, Setup, event, ingress, policy};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

fn files(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder)
        .expect("output folder")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[tokio::test]
async fn output_has_c7ns_layout_and_names_the_executor() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let ev = event(
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        &[(FIXTURE_SG, &sg)],
    );
    let r = s
        .driver
        .run(s.request(policy(fixture!("policies/sg-ssh-cloudtrail.yml")), Some(ev)))
        .await
        .unwrap();
    assert_eq!(r.output_folder, s.out.path().join("sg-ssh-open-cloudtrail"));
    assert_eq!(
        files(&r.output_folder),
        BTreeSet::from(
            [
                "resources.json",
                "metadata.json",
                "custodian-run.log",
                "action-removepermissions"
            ]
            .map(String::from)
        )
    );
    let md = common::read_json(&r.output_folder, "metadata.json");
    assert_eq!(
        md["executor"],
        json!({"name": "c7n-driver", "c7n": r.c7n_version, "mode": "cloudtrail"})
    );
    assert_eq!(md["policy"]["name"], "sg-ssh-open-cloudtrail");
    assert_eq!(md["version"], r.c7n_version);
    assert_eq!(md["config"]["region"], "us-east-1");
    assert!(md["execution"]["duration"].as_f64().unwrap() > 0.0);

    let log = std::fs::read_to_string(r.output_folder.join("custodian-run.log")).unwrap();
    // The resolve phase (outside c7n's own log capture) and the actions, each line once.
    assert!(
        log.contains(&format!("Found resource ids:['{sg}']")),
        "{log}"
    );
    assert!(log.contains("invoking action:removepermissions"), "{log}");
    let lines: Vec<&str> = log.lines().collect();
    let unique: BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(lines.len(), unique.len(), "duplicated log lines: {log}");
    // What the job printed is also in the response.
    assert!(r.log_tail.contains("Found resource ids"), "{}", r.log_tail);
}

#[tokio::test]
async fn a_push_that_matches_nothing_still_leaves_a_record() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let ev = event(
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        &[(FIXTURE_SG, &sg)],
    );
    let policy = policy(fixture!("policies/sg-ssh-cloudtrail.yml"));
    let first = s
        .driver
        .run(s.request(policy.clone(), Some(ev.clone())))
        .await
        .unwrap();
    assert_eq!(first.resource_ids, vec![sg.clone()]);
    // The rule is gone now: the same event matches nothing, and the first run's
    // resources.json must not pass for the second's.
    let second = s.driver.run(s.request(policy, Some(ev))).await.unwrap();
    assert!(second.resource_ids.is_empty());
    assert!(second.actions.is_empty());
    assert_eq!(
        common::read_json(&second.output_folder, "resources.json"),
        json!([])
    );
    let md = common::read_json(&second.output_folder, "metadata.json");
    assert_eq!(md["executor"]["mode"], "cloudtrail");
    let log = std::fs::read_to_string(second.output_folder.join("custodian-run.log")).unwrap();
    assert!(log.contains("no resources matched"), "{log}");
}

#[tokio::test]
async fn dryrun_reports_matches_and_changes_nothing() {
    let s = Setup::new("sg");
    let sg = s.id("sg");
    let ev = event(
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        &[(FIXTURE_SG, &sg)],
    );
    let before = s.snapshot();

    let mut req = s.request(policy(fixture!("policies/sg-ssh-cloudtrail.yml")), Some(ev));
    req.dryrun = true;
    let r = s.driver.run(req).await.unwrap();
    assert_eq!(r.resource_ids, vec![sg.clone()]);
    assert!(r.actions.is_empty(), "{:?}", r.actions);
    assert_eq!(common::resource_ids(&r.output_folder, "GroupId"), vec![sg]);
    assert!(
        !files(&r.output_folder)
            .iter()
            .any(|f| f.starts_with("action-")),
        "{:?}",
        files(&r.output_folder)
    );
    let md = common::read_json(&r.output_folder, "metadata.json");
    assert_eq!(md["config"]["dryrun"], true);

    // A pull scan under dryrun too.
    let mut req = s.request(policy(fixture!("policies/sg-ssh-pull.yml")), None);
    req.dryrun = true;
    let r = s.driver.run(req).await.unwrap();
    assert_eq!(r.resource_ids.len(), 4);
    assert!(r.actions.is_empty());

    assert_eq!(s.snapshot(), before);
    assert_eq!(
        ingress(&s.snapshot(), "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );
}

#[tokio::test]
async fn the_request_region_is_where_c7n_looks() {
    let moto = common::moto();
    let ids = common::seed(&moto, "sg", "us-west-2");
    let sg = ids["sg"].as_str().unwrap().to_owned();
    let driver = common::driver(&moto);
    let out = tempfile::tempdir().unwrap();
    let mut ev = event(
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        &[(FIXTURE_SG, &sg)],
    );
    ev["region"] = json!("us-west-2");
    ev["detail"]["awsRegion"] = json!("us-west-2");
    let policy = policy(fixture!("policies/sg-ssh-cloudtrail.yml"));

    // The group exists only in us-west-2: asked in us-east-1, c7n finds nothing.
    let mut east = common::request(policy.clone(), Some(ev.clone()), out.path());
    east.region = "us-east-1".into();
    let r = driver.run(east).await;
    match r {
        Ok(r) => assert!(r.resource_ids.is_empty(), "{r:?}"),
        Err(e) => assert!(e.to_string().contains("InvalidGroup.NotFound"), "{e}"),
    }
    assert_eq!(
        ingress(&common::snapshot(&moto, "us-west-2"), "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );

    let mut west = common::request(policy, Some(ev), out.path());
    west.region = "us-west-2".into();
    let r = driver.run(west).await.unwrap();
    assert_eq!(r.resource_ids, vec![sg]);
    let md = common::read_json(&r.output_folder, "metadata.json");
    assert_eq!(md["config"]["region"], "us-west-2");
    assert_eq!(
        ingress(&common::snapshot(&moto, "us-west-2"), "web-ssh-open"),
        vec![HTTPS_INTERNAL]
    );
}

#[tokio::test]
async fn invalid_policies_are_refused_by_c7ns_loader() {
    let s = Setup::new("sg");
    let cases = [
        // Schema: an unknown filter type.
        json!({"name": "bad-filter", "resource": "aws.security-group",
               "filters": [{"type": "no-such-filter"}]}),
        // Structure: an unknown top-level key.
        json!({"name": "bad-key", "resource": "aws.security-group", "colour": "red"}),
        // An unknown resource type.
        json!({"name": "bad-resource", "resource": "aws.no-such-thing"}),
        // validate(): a cloudtrail mode without events.
        json!({"name": "no-events", "resource": "aws.security-group",
               "mode": {"type": "cloudtrail"}}),
        // Not a mapping at all.
        json!(["not", "a", "policy"]),
    ];
    for p in cases {
        let e = s.driver.run(s.request(p.clone(), None)).await.unwrap_err();
        assert!(
            matches!(e, czero_driver::DriverError::InvalidPolicy { .. }),
            "{p}: {e}"
        );
        assert!(!e.is_retryable());
    }
}
