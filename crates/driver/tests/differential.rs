//! The driver agrees with Cloud Custodian run in-process as its Lambda runs it
//! (`policy.push(event)`, tests/py/c7n_push.py) on the same moto state: the same resources
//! matched, the same action files written and the same state afterwards. moto's ids differ
//! between two seedings, so resources are compared by the role the seed gave them and the
//! state by names (tests/py/moto_state.py).

mod common;

use common::{FIXTURE_INSTANCE, FIXTURE_SG, event, policy};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

struct Case {
    scenario: &'static str,
    policy_yaml: &'static str,
    event_json: &'static str,
    /// (placeholder in the fixture, key of the seeded id that replaces it)
    replace: &'static [(&'static str, &'static str)],
}

const CASES: [Case; 3] = [
    Case {
        scenario: "sg",
        policy_yaml: fixture!("policies/sg-ssh-cloudtrail.yml"),
        event_json: fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        replace: &[(FIXTURE_SG, "sg")],
    },
    Case {
        scenario: "ec2",
        policy_yaml: fixture!("policies/ec2-runinstances.yml"),
        event_json: fixture!("events/cloudtrail-run-instances.json"),
        replace: &[(FIXTURE_INSTANCE, "instance")],
    },
    Case {
        scenario: "iam-user",
        policy_yaml: fixture!("policies/iam-user-createaccesskey.yml"),
        event_json: fixture!("events/cloudtrail-create-access-key.json"),
        replace: &[],
    },
];

/// Every id the seed printed, named by where it printed it (`sg`, `decoy_sgs[1]`, ...).
fn roles(ids: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Value::Object(m) = ids {
        for (k, v) in m {
            match v {
                Value::String(s) => out.push((s.clone(), k.clone())),
                Value::Array(a) => {
                    for (i, s) in a.iter().enumerate() {
                        if let Some(s) = s.as_str() {
                            out.push((s.to_owned(), format!("{k}[{i}]")));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn role_of(roles: &[(String, String)], id: &str) -> String {
    roles
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| format!("unseeded:{id}"))
}

fn action_files(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("action-"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_driver_agrees_with_c7n_push_in_process() {
    let moto = common::moto();
    let driver = common::driver(&moto);
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let policy_value = policy(case.policy_yaml);
        let name = policy_value["name"].as_str().unwrap().to_owned();

        // c7n in-process, as its Lambda handler runs the policy.
        common::reset(&moto).await;
        let ids = common::seed(&moto, case.scenario, "us-east-1");
        let replace: Vec<(&str, String)> = case
            .replace
            .iter()
            .map(|(from, key)| (*from, ids[*key].as_str().unwrap().to_owned()))
            .collect();
        let pairs: Vec<(&str, &str)> = replace.iter().map(|(f, t)| (*f, t.as_str())).collect();
        let ev = event(case.event_json, &pairs);
        let policy_file = tmp.path().join("policy.yml");
        let event_file = tmp.path().join("event.json");
        std::fs::write(&policy_file, case.policy_yaml).unwrap();
        std::fs::write(&event_file, serde_json::to_vec(&ev).unwrap()).unwrap();
        let c7n_out = tmp.path().join("c7n");
        let out = Command::new(common::python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/c7n_push.py"))
            .arg(&policy_file)
            .arg(&event_file)
            .arg(&c7n_out)
            .envs(common::aws_env(&moto, &moto.endpoint()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: c7n push failed: {}",
            case.scenario,
            String::from_utf8_lossy(&out.stderr)
        );
        let line: Value = serde_json::from_slice(&out.stdout).unwrap();
        let c7n_roles = roles(&ids);
        let c7n_matched: Vec<String> = line["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| role_of(&c7n_roles, v.as_str().unwrap()))
            .collect();
        let c7n_state = common::snapshot(&moto, "us-east-1");
        let c7n_actions = action_files(&c7n_out.join(&name));

        // The same through the driver, on a freshly seeded emulator.
        common::reset(&moto).await;
        let ids = common::seed(&moto, case.scenario, "us-east-1");
        let replace: Vec<(&str, String)> = case
            .replace
            .iter()
            .map(|(from, key)| (*from, ids[*key].as_str().unwrap().to_owned()))
            .collect();
        let pairs: Vec<(&str, &str)> = replace.iter().map(|(f, t)| (*f, t.as_str())).collect();
        let ev = event(case.event_json, &pairs);
        let driver_out = tmp.path().join("driver");
        let r = driver
            .run(common::request(policy_value.clone(), Some(ev), &driver_out))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.scenario));
        let driver_roles = roles(&ids);
        let driver_matched: Vec<String> = r
            .resource_ids
            .iter()
            .map(|id| role_of(&driver_roles, id))
            .collect();
        let driver_state = common::snapshot(&moto, "us-east-1");

        assert!(
            !c7n_matched.is_empty(),
            "{}: c7n matched nothing",
            case.scenario
        );
        assert_eq!(driver_matched, c7n_matched, "{}: resources", case.scenario);
        assert_eq!(
            driver_state, c7n_state,
            "{}: state afterwards",
            case.scenario
        );
        assert_eq!(
            action_files(&r.output_folder),
            c7n_actions,
            "{}: action files",
            case.scenario
        );
        // resources.json holds the same resources (ids by role).
        let id_key = match case.scenario {
            "sg" => "GroupId",
            "ec2" => "InstanceId",
            _ => "UserName",
        };
        let c7n_doc: Vec<String> = common::resource_ids(&c7n_out.join(&name), id_key)
            .iter()
            .map(|id| role_of(&c7n_roles, id))
            .collect();
        let driver_doc: Vec<String> = common::resource_ids(&r.output_folder, id_key)
            .iter()
            .map(|id| role_of(&driver_roles, id))
            .collect();
        assert_eq!(driver_doc, c7n_doc, "{}: resources.json", case.scenario);
    }
}
