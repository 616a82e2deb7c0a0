//! Every one of c7n's twelve modes has an answer at the engine's door, the path every job
//! takes: it runs (natively for aws.s3, through Cloud Custodian otherwise), it is skipped
//! because its mode does not subscribe to the event, or it fails with its reason. Nothing
//! is a silent no-op. Each case runs on a fresh moto server with the driver's fixtures
//! (crates/driver/tests/fixtures) and its seeding script.

use czero_driver::{Driver, DriverConfig};
use czero_engine::{Engine, EngineError, EngineOptions, Executor, Output, RunReport};
use serde_json::Value;
use std::path::{Path, PathBuf};

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../driver/tests/fixtures/",
            $path
        ))
    };
}

fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../driver/tests")
}

fn python() -> PathBuf {
    czero_testkit::python().expect("the project's Python (moto, c7n) must be installed")
}

/// moto seeded with every scenario of the driver's tests; the ids it created.
fn seeded() -> (czero_testkit::Moto, Value) {
    let moto = czero_testkit::Moto::start().expect("moto must be installed for this test");
    let out = std::process::Command::new(python())
        .arg(driver_dir().join("py/moto_state.py"))
        .args(["seed", "all", "us-east-1"])
        .envs(moto.env())
        .output()
        .expect("running moto_state.py");
    assert!(
        out.status.success(),
        "seeding: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = serde_json::from_slice(&out.stdout).expect("moto_state.py prints JSON");
    (moto, ids)
}

/// What a policy can change in moto (moto_state.py's snapshot).
fn snapshot(moto: &czero_testkit::Moto) -> Value {
    let out = std::process::Command::new(python())
        .arg(driver_dir().join("py/moto_state.py"))
        .args(["snapshot", "us-east-1"])
        .envs(moto.env())
        .output()
        .expect("running moto_state.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("moto_state.py prints JSON")
}

fn engine(moto: &czero_testkit::Moto, python: Option<PathBuf>) -> Engine {
    let driver = python.map(|python| {
        Driver::new(DriverConfig {
            python,
            // One attempt per call: moto's missing Health API then fails at once.
            env: moto
                .env()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .chain([("AWS_MAX_ATTEMPTS".to_owned(), "1".to_owned())])
                .collect(),
            ..DriverConfig::default()
        })
    });
    Engine::new(
        &moto.sdk_config(),
        EngineOptions {
            region: "us-east-1".into(),
            driver,
            account_id: Some("123456789012".into()),
            ..EngineOptions::default()
        },
    )
}

fn policy(yaml: &str) -> czero_policy::Policy {
    czero_policy::parse_str("fixture.yml", yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .policies
        .remove(0)
}

/// An event fixture with the fixture ids replaced by the seeded ones.
fn event(json: &str, ids: &Value) -> Value {
    let mut text = json.to_owned();
    for (placeholder, key) in [
        ("sg-0c2f1e6a9b8d74d10", "sg"),
        ("i-0a1b2c3d4e5f60718", "instance"),
        ("i-0f1e2d3c4b5a69788", "asg_instance"),
    ] {
        if let Some(id) = ids[key].as_str() {
            text = text.replace(placeholder, id);
        }
    }
    serde_json::from_str(&text).expect("fixture event is JSON")
}

/// What a run came to, for the table.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// It ran on this executor and matched resources.
    Ran(Executor),
    /// It ran and matched nothing.
    RanEmpty(Executor),
    Skipped,
    Failed(&'static str),
}

fn outcome(r: Result<RunReport, EngineError>) -> (Outcome, String) {
    match r {
        Ok(r) if r.skipped.is_some() => (Outcome::Skipped, r.skipped.unwrap_or_default()),
        Ok(r) if r.resources.is_empty() => (Outcome::RanEmpty(r.executor), String::new()),
        Ok(r) => (Outcome::Ran(r.executor), format!("{:?}", r.resources)),
        Err(e) => (Outcome::Failed(e.kind()), e.to_string()),
    }
}

struct Case {
    mode: &'static str,
    policy: &'static str,
    event: Option<&'static str>,
    want: Outcome,
    /// Text the reason (skip or error) must contain.
    reason: &'static str,
}

#[tokio::test]
async fn every_mode_runs_or_says_why_not() {
    use Executor::{Driver as C7n, Native};
    let s3_periodic = "policies:\n  - name: s3-periodic\n    resource: aws.s3\n    mode:\n      type: periodic\n      schedule: rate(1 day)\n";
    let s3_config = "policies:\n  - name: s3-config\n    resource: aws.s3\n    mode:\n      type: config-rule\n";
    let cases = [
        Case {
            mode: "pull",
            policy: fixture!("policies/sg-ssh-pull.yml"),
            event: None,
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "pull (given an event)",
            policy: fixture!("policies/sg-ssh-pull.yml"),
            event: Some(fixture!(
                "events/cloudtrail-authorize-security-group-ingress.json"
            )),
            want: Outcome::Failed("PolicyError"),
            reason: "has no event mode",
        },
        Case {
            mode: "periodic",
            policy: fixture!("policies/sg-ssh-periodic.yml"),
            event: Some(fixture!("events/scheduled-event.json")),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "periodic (aws.s3)",
            policy: s3_periodic,
            event: Some(fixture!("events/scheduled-event.json")),
            want: Outcome::RanEmpty(Native),
            reason: "",
        },
        Case {
            mode: "schedule",
            policy: fixture!("policies/sg-ssh-schedule.yml"),
            event: Some(fixture!("events/scheduler-invocation.json")),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "cloudtrail",
            policy: fixture!("policies/sg-ssh-cloudtrail.yml"),
            event: Some(fixture!(
                "events/cloudtrail-authorize-security-group-ingress.json"
            )),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "cloudtrail (another API)",
            policy: fixture!("policies/sg-ssh-cloudtrail.yml"),
            event: Some(fixture!("events/cloudtrail-run-instances.json")),
            want: Outcome::Skipped,
            reason: "does not subscribe",
        },
        Case {
            mode: "hub-finding",
            policy: fixture!("policies/sg-ssh-hub-finding.yml"),
            event: Some(fixture!("events/securityhub-findings-imported.json")),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "hub-action",
            policy: fixture!("policies/ec2-hub-action.yml"),
            event: Some(fixture!("events/securityhub-findings-custom-action.json")),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "guard-duty",
            policy: fixture!("policies/ec2-guard-duty.yml"),
            event: Some(fixture!("events/guardduty-finding-ec2.json")),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "config-rule",
            policy: fixture!("policies/sg-ssh-config-rule.yml"),
            event: Some(fixture!("events/config-rules-compliance-change.json")),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "config-rule (aws.s3)",
            policy: s3_config,
            event: Some(fixture!("events/config-rules-compliance-change.json")),
            want: Outcome::Skipped,
            reason: "names no aws.s3 resource",
        },
        Case {
            mode: "config-poll-rule",
            policy: fixture!("policies/sg-ssh-config-poll-rule.yml"),
            event: Some(fixture!("events/scheduled-event.json")),
            want: Outcome::Failed("UnsupportedMode"),
            reason: "use mode periodic",
        },
        Case {
            mode: "ec2-instance-state",
            policy: fixture!("policies/ec2-instance-state.yml"),
            event: Some(fixture!("events/ec2-instance-state-change-running.json")),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        Case {
            mode: "asg-instance-state",
            policy: fixture!("policies/asg-instance-state.yml"),
            event: Some(fixture!(
                "events/autoscaling-instance-launch-successful.json"
            )),
            want: Outcome::Ran(C7n),
            reason: "",
        },
        // moto has no AWS Health API: c7n's resolution fails, and says so.
        Case {
            mode: "phd",
            policy: fixture!("policies/ec2-phd.yml"),
            event: Some(fixture!(
                "events/health-event-ec2-scheduled-retirement.json"
            )),
            want: Outcome::Failed("C7nFailed"),
            reason: "DescribeAffectedEntities",
        },
    ];
    let mut wrong = Vec::new();
    for case in cases {
        let (moto, ids) = seeded();
        let engine = engine(&moto, Some(python()));
        let out = tempfile::tempdir().unwrap();
        let ev = case.event.map(|e| event(e, &ids));
        let p = policy(case.policy);
        let r = engine
            .run(&p, ev.as_ref(), &Output::Dir(out.path().into()))
            .await;
        let (got, detail) = outcome(r);
        eprintln!("{}: {got:?} {detail}", case.mode);
        if got != case.want || !detail.contains(case.reason) {
            wrong.push(format!(
                "{}: expected {:?} ({:?}), got {got:?}: {detail}",
                case.mode, case.want, case.reason
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The slim image (no Python with c7n): a policy the engine cannot run natively fails at
/// once, non-retryable, naming the image that can run it; nothing is touched.
#[tokio::test]
async fn without_cloud_custodian_a_non_native_policy_names_the_full_image() {
    let (moto, ids) = seeded();
    let before = snapshot(&moto);
    for python in [None, Some(PathBuf::from("/nonexistent/python3"))] {
        let engine = engine(&moto, python.clone());
        let out = tempfile::tempdir().unwrap();
        let ev = event(
            fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
            &ids,
        );
        let err = engine
            .run(
                &policy(fixture!("policies/sg-ssh-cloudtrail.yml")),
                Some(&ev),
                &Output::Dir(out.path().into()),
            )
            .await
            .expect_err("no Cloud Custodian here");
        assert_eq!(err.kind(), "NeedsFullImage", "{python:?}: {err}");
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("needs the full worker image (custodian-worker:full)"),
            "{err}"
        );
        assert!(
            err.to_string().contains("resource `aws.security-group`"),
            "{err}"
        );
    }
    assert_eq!(snapshot(&moto), before);
}
