//! Member accounts, on moto (which keeps separate state per account for credentials obtained
//! by AssumeRole): a real `custodian-worker` in the central account takes a job for an event
//! from another account and region and acts there, through the member role; the same policy
//! through Cloud Custodian's own `policy.push(event)` with `mode.member-role` ends in the
//! same state; without a role the job goes to the DLQ and nothing changes anywhere.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use aws_sdk_s3::primitives::ByteStream;
use czero_job::{Envelope, JOB_VERSION, Job, PolicyRef};
use czero_testkit::Moto;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EVENT: &str = include_str!(
    "../../driver/tests/fixtures/events/cloudtrail-authorize-security-group-ingress.json"
);
const SSH_OPEN: &str = "tcp:22-22:0.0.0.0/0";
const CENTRAL: &str = "123456789012";
const MEMBER: &str = "222233334444";
const MEMBER_REGION: &str = "eu-west-1";
const ROLE: &str = "czero-member";

fn python() -> PathBuf {
    czero_testkit::python().expect("the project's Python (moto, c7n) must be installed")
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../driver/tests/py")
        .join(name)
}

/// An open-SSH policy; `member_role` adds c7n's `mode.member-role`.
fn policy(member_role: bool) -> String {
    let role = if member_role {
        "\n      member-role: arn:aws:iam::{account_id}:role/czero-member"
    } else {
        ""
    };
    format!(
        "policies:\n  - name: sg-ssh-open\n    resource: aws.security-group\n    mode:\n      type: cloudtrail{role}\n      events:\n        - source: ec2.amazonaws.com\n          event: AuthorizeSecurityGroupIngress\n          ids: requestParameters.groupId\n    filters:\n      - type: ingress\n        Ports: [22]\n        Cidr:\n          value: 0.0.0.0/0\n    actions:\n      - type: remove-permissions\n        ingress: matched\n"
    )
}

/// moto's environment with the member role's credentials: calls land in the member account.
async fn member_env(moto: &Moto) -> Vec<(&'static str, String)> {
    let sts = aws_sdk_sts::Client::new(&moto.sdk_config());
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{MEMBER}:role/{ROLE}"))
        .role_session_name("test-seed")
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    let mut env: Vec<(&'static str, String)> = moto
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .collect();
    env.push(("AWS_ACCESS_KEY_ID", c.access_key_id().to_owned()));
    env.push(("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_owned()));
    env.push(("AWS_SESSION_TOKEN", c.session_token().to_owned()));
    env
}

fn moto_state(env: &[(&'static str, String)], args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(script("moto_state.py"))
        .args(args)
        .env_remove("AWS_SESSION_TOKEN")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The ingress rules of each security group by name, in one account and region.
fn ingress(env: &[(&'static str, String)], region: &str) -> Value {
    let state = moto_state(env, &["snapshot", region]);
    state["security_groups"].clone()
}

fn open(groups: &Value, name: &str) -> bool {
    groups[name]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == SSH_OPEN)
}

/// The event: AuthorizeSecurityGroupIngress on `group` in the member account and region.
fn event(group: &str) -> Value {
    let mut e: Value = serde_json::from_str(&EVENT.replace("sg-0c2f1e6a9b8d74d10", group)).unwrap();
    e["account"] = MEMBER.into();
    e["region"] = MEMBER_REGION.into();
    e["detail"]["recipientAccountId"] = MEMBER.into();
    e["detail"]["awsRegion"] = MEMBER_REGION.into();
    e
}

struct Stack {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    queue_url: String,
    dlq_url: String,
    member: Vec<(&'static str, String)>,
    /// In the member account and region: the group the event names, and a decoy.
    group: String,
    decoy: String,
    logs: tempfile::TempDir,
}

async fn stack(policy_text: &str) -> Stack {
    let moto = Moto::start().expect("moto starts");
    let sdk = moto.sdk_config();
    let sqs = czero_worker::sqs_client(&sdk);
    let s3 = czero_worker::s3_client(&sdk);
    let mut urls = Vec::new();
    for q in ["dlq", "jobs"] {
        urls.push(
            sqs.create_queue()
                .queue_name(q)
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap(),
        );
    }
    for b in ["policies", "output"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    s3.put_object()
        .bucket("policies")
        .key("policies/sg.yml")
        .body(ByteStream::from(policy_text.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
    // The central account has groups of the same names, open the same way, in its own
    // region: only a job acting in the wrong account could touch them.
    moto_state(&moto.env(), &["seed", "sg", "us-east-1"]);
    let member = member_env(&moto).await;
    let ids = moto_state(&member, &["seed", "sg", MEMBER_REGION]);
    Stack {
        group: ids["sg"].as_str().unwrap().to_owned(),
        decoy: ids["decoy_sgs"][0].as_str().unwrap().to_owned(),
        moto,
        sqs,
        s3,
        dlq_url: urls.remove(0),
        queue_url: urls.remove(0),
        member,
        logs: tempfile::tempdir().unwrap(),
    }
}

impl Stack {
    async fn queue_job(&self, job_id: &str, group: &str) {
        let job = Job {
            version: JOB_VERSION,
            job_id: job_id.into(),
            event_id: format!("event-{job_id}"),
            source: "aws.ec2".into(),
            detail_type: "AWS API Call via CloudTrail".into(),
            account: MEMBER.into(),
            region: MEMBER_REGION.into(),
            resource_ids: vec![group.into()],
            policies: vec![PolicyRef {
                key: "policies/sg.yml".into(),
                etag: None,
                version_id: None,
            }],
            received_at: chrono::Utc::now(),
            trace_id: None,
            update_finding: Default::default(),
            event: event(group),
        };
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(Envelope::Inline { job }.encode().unwrap())
            .send()
            .await
            .unwrap();
    }

    fn worker(&self, extra: &[(&str, &str)]) -> (Child, PathBuf) {
        let log = self.logs.path().join("worker.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custodian-worker"));
        cmd.envs(self.moto.env())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCOUNT_ID", CENTRAL)
            .env("SQS_QUEUE_URL", &self.queue_url)
            .env("DLQ_URL", &self.dlq_url)
            .env("POLICY_BUCKET", "policies")
            .env("OUTPUT_BUCKET", "output")
            .env("WAIT_TIME_SECONDS", "1")
            .env("MAX_EMPTY_RECEIVES", "2")
            .env("CUSTODIAN_PYTHON", python())
            .env("LOG_FORMAT", "json")
            .env_remove("ECS_AGENT_URI")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        (cmd.spawn().unwrap(), log)
    }

    async fn depth(&self, url: &str) -> u64 {
        let (v, f) = czero_testkit::queue_depth(&self.sqs, url).await.unwrap();
        v + f
    }

    /// The `resources.json` ids the worker wrote for `job_id` (in the central bucket).
    async fn output_ids(&self, job_id: &str) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket("output")
            .prefix(format!("output/{job_id}/"))
            .send()
            .await
            .unwrap();
        let key = listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .find(|k| k.ends_with("resources.json.gz"))
            .unwrap_or_else(|| panic!("no resources.json for {job_id}"))
            .to_owned();
        let body = self
            .s3
            .get_object()
            .bucket("output")
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .unwrap();
        let resources: Vec<Value> = serde_json::from_str(&text).unwrap();
        resources
            .iter()
            .map(|r| r["GroupId"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn wait_exit(child: &mut Child, limit: Duration, log: &Path) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("worker still running after {limit:?}:\n{}", read(log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two jobs for the member account's region: each acts there (the named group's rule goes,
/// the same-named groups of the central account keep theirs), through one AssumeRole whose
/// session names the first job; output lands in the central bucket.
#[tokio::test]
async fn member_events_act_in_the_member_account_and_region() {
    let st = stack(&policy(false)).await;
    assert!(open(&ingress(&st.member, MEMBER_REGION), "web-ssh-open"));
    st.queue_job("member-job-1", &st.group).await;
    st.queue_job("member-job-2", &st.decoy).await;
    let (mut w, log) = st.worker(&[("MEMBER_ROLE_NAME", ROLE), ("WORKER_CONCURRENCY", "1")]);
    wait_exit(&mut w, Duration::from_secs(180), &log).await;
    let text = read(&log);
    assert_eq!(text.matches("\"job done\"").count(), 2, "{text}");
    assert_eq!(
        text.matches("\"assumed member role\"").count(),
        1,
        "one AssumeRole for the (account, region): {text}"
    );
    assert!(
        text.contains("\"session_name\":\"czero-member-job-1\"")
            && text.contains(&format!(
                "\"role_arn\":\"arn:aws:iam::{MEMBER}:role/{ROLE}\""
            )),
        "{text}"
    );
    let member = ingress(&st.member, MEMBER_REGION);
    assert!(!open(&member, "web-ssh-open"), "{member}");
    assert!(!open(&member, "decoy-ssh-1"), "{member}");
    let central = ingress(&st.moto.env(), "us-east-1");
    for name in ["web-ssh-open", "decoy-ssh-1", "decoy-ssh-2"] {
        assert!(open(&central, name), "central {name} untouched: {central}");
    }
    assert_eq!(st.output_ids("member-job-1").await, vec![st.group.clone()]);
    assert_eq!(st.depth(&st.queue_url).await, 0);
    assert_eq!(st.depth(&st.dlq_url).await, 0);
}

/// An event from another account with no member role configured: the job goes to the DLQ
/// at once, naming the account, and no group in either account changed.
#[tokio::test]
async fn without_a_member_role_nothing_runs_and_the_job_is_dead_lettered() {
    let st = stack(&policy(false)).await;
    st.queue_job("orphan-job", &st.group).await;
    let (mut w, log) = st.worker(&[]);
    wait_exit(&mut w, Duration::from_secs(120), &log).await;
    let text = read(&log);
    assert!(
        text.contains("NoMemberRole") && text.contains(MEMBER),
        "{text}"
    );
    assert!(open(&ingress(&st.member, MEMBER_REGION), "web-ssh-open"));
    assert!(open(&ingress(&st.moto.env(), "us-east-1"), "web-ssh-open"));
    assert_eq!(st.depth(&st.queue_url).await, 0);
    let m = st
        .sqs
        .receive_message()
        .queue_url(&st.dlq_url)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let msg = &m.messages()[0];
    let attrs = msg.message_attributes().unwrap();
    assert_eq!(
        attrs["czero-dead-letter-kind"].string_value(),
        Some("NoMemberRole")
    );
}

/// The same policy with `mode.member-role`, run by Cloud Custodian's own `policy.push(event)`
/// (which assumes the member role itself) on one group and by the worker on its twin:
/// the same resources, the same final state in the member account, nothing changed in the
/// central one.
#[tokio::test]
async fn member_role_agrees_with_c7n_push() {
    let st = stack(&policy(true)).await;
    // c7n on the decoy.
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.yml");
    std::fs::write(&policy_file, policy(true)).unwrap();
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, event(&st.decoy).to_string()).unwrap();
    let out = Command::new(python())
        .arg(script("c7n_push.py"))
        .arg(&policy_file)
        .arg(&event_file)
        .arg(dir.path().join("out"))
        .args(["1", MEMBER_REGION])
        .envs(st.moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c7n: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(c7n["resources"], serde_json::json!([st.decoy]), "{c7n}");
    // The worker on the group the fixture names (no MEMBER_ROLE_NAME: the policy's role).
    st.queue_job("push-twin", &st.group).await;
    let (mut w, log) = st.worker(&[]);
    wait_exit(&mut w, Duration::from_secs(180), &log).await;
    let text = read(&log);
    assert!(text.contains("\"job done\""), "{text}");
    assert_eq!(st.output_ids("push-twin").await, vec![st.group.clone()]);
    let member = ingress(&st.member, MEMBER_REGION);
    assert_eq!(
        member["web-ssh-open"]["ingress"], member["decoy-ssh-1"]["ingress"],
        "c7n and the worker leave the twins alike: {member}"
    );
    assert!(!open(&member, "web-ssh-open"), "{member}");
    assert!(open(&member, "decoy-ssh-2"), "untouched decoy: {member}");
    let central = ingress(&st.moto.env(), "us-east-1");
    for name in ["web-ssh-open", "decoy-ssh-1", "decoy-ssh-2"] {
        assert!(open(&central, name), "central {name} untouched: {central}");
    }
}
