//! Shared by the driver's tests and benchmark: fixtures, a private moto server with seeded
//! state (tests/py/moto_state.py), a driver pointed at it, and a recording proxy.
#![allow(dead_code)]

pub mod proxy;

use czero_driver::{Driver, DriverConfig, Request};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The text of a file under tests/fixtures/.
#[macro_export]
macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
    };
}

/// The one policy in a fixture policy file (YAML), as JSON.
pub fn policy(yaml: &str) -> Value {
    let doc: Value = serde_yaml::from_str(yaml).expect("fixture policy is YAML");
    doc["policies"][0].clone()
}

/// An event fixture with the placeholder ids it names replaced by the seeded ones.
pub fn event(json: &str, replace: &[(&str, &str)]) -> Value {
    let mut text = json.to_owned();
    for (from, to) in replace {
        assert!(text.contains(from), "fixture does not name {from}");
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).expect("fixture event is JSON")
}

/// The ids the fixtures use for the resources the tests create.
pub const FIXTURE_SG: &str = "sg-0c2f1e6a9b8d74d10";
pub const FIXTURE_INSTANCE: &str = "i-0a1b2c3d4e5f60718";
pub const FIXTURE_ASG_INSTANCE: &str = "i-0f1e2d3c4b5a69788";

pub fn python() -> PathBuf {
    czero_testkit::python().expect("the project's Python (moto, c7n) must be installed")
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// A private moto server.
pub fn moto() -> czero_testkit::Moto {
    czero_testkit::Moto::start().expect("moto must be installed for this test")
}

/// Environment for a process talking to `endpoint` (moto, or a proxy in front of it).
pub fn aws_env(moto: &czero_testkit::Moto, endpoint: &str) -> Vec<(String, String)> {
    moto.env()
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "AWS_ENDPOINT_URL" {
                endpoint.to_owned()
            } else {
                v
            };
            (k.to_owned(), v)
        })
        .collect()
}

/// Runs tests/py/moto_state.py against `endpoint`, returning its JSON output.
fn state(moto: &czero_testkit::Moto, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(script("moto_state.py"))
        .args(args)
        .envs(aws_env(moto, &moto.endpoint()))
        .output()
        .expect("running moto_state.py");
    assert!(
        out.status.success(),
        "moto_state.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("moto_state.py prints JSON")
}

/// Creates a scenario's resources (sg, ec2, iam-user, asg, all) and returns their ids.
pub fn seed(moto: &czero_testkit::Moto, scenario: &str, region: &str) -> Value {
    state(moto, &["seed", scenario, region])
}

/// What a policy can change, keyed by names.
pub fn snapshot(moto: &czero_testkit::Moto, region: &str) -> Value {
    state(moto, &["snapshot", region])
}

/// Empties the emulator.
pub async fn reset(moto: &czero_testkit::Moto) {
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", moto.endpoint()))
        .send()
        .await
        .expect("moto reset");
    assert!(r.status().is_success(), "moto reset: {}", r.status());
}

pub fn config_for(env: Vec<(String, String)>) -> DriverConfig {
    DriverConfig {
        python: python(),
        env,
        ..DriverConfig::default()
    }
}

/// A driver whose jobs talk to `moto`.
pub fn driver(moto: &czero_testkit::Moto) -> Driver {
    Driver::new(config_for(aws_env(moto, &moto.endpoint())))
}

pub fn request(policy: Value, event: Option<Value>, out: &Path) -> Request {
    Request {
        job_id: format!(
            "test-{}",
            policy["name"].as_str().unwrap_or("policy").to_owned()
        ),
        policy,
        event,
        region: "us-east-1".into(),
        account_id: Some("123456789012".into()),
        output_dir: out.to_path_buf(),
        dryrun: false,
        timeout: Duration::from_secs(120),
        credentials: None,
    }
}

/// Whether a process is still running (a zombie nobody reaped yet counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            !matches!(state, "Z" | "X")
        }
        Err(_) => false,
    }
}

/// Waits up to `within` for a process to be gone.
pub async fn gone(pid: u32, within: Duration) -> bool {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !alive(pid)
}

/// The JSON file c7n wrote under `<folder>/<name>`.
pub fn read_json(folder: &Path, name: &str) -> Value {
    let path = folder.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ids in a resources.json, by the resource type's id key.
pub fn resource_ids(folder: &Path, id_key: &str) -> Vec<String> {
    read_json(folder, "resources.json")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.get(id_key).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The ingress rules of the named security group in a snapshot.
pub fn ingress(state: &Value, group: &str) -> Vec<String> {
    state["security_groups"][group]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

pub const SSH_OPEN: &str = "tcp:22-22:0.0.0.0/0";
pub const HTTPS_INTERNAL: &str = "tcp:443-443:10.0.0.0/8";

/// A moto server seeded with a scenario, a driver pointed at it and an output directory.
pub struct Setup {
    pub moto: czero_testkit::Moto,
    pub driver: Driver,
    pub ids: Value,
    pub out: tempfile::TempDir,
}

impl Setup {
    pub fn new(scenario: &str) -> Setup {
        let moto = moto();
        let ids = seed(&moto, scenario, "us-east-1");
        let driver = driver(&moto);
        Setup {
            moto,
            driver,
            ids,
            out: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A seeded id by its key in moto_state.py's output (`sg`, `instance`, ...).
    pub fn id(&self, key: &str) -> String {
        self.ids[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.ids))
            .to_owned()
    }

    pub fn request(&self, policy: Value, event: Option<Value>) -> Request {
        request(policy, event, self.out.path())
    }

    pub fn snapshot(&self) -> Value {
        snapshot(&self.moto, "us-east-1")
    }
}
