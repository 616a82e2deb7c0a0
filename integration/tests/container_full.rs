//! The full worker image (`custodian-worker:full`: the worker, CPython and c7n) as a
//! container, run as ECS runs it with a read-only root: `--read-only --tmpfs /tmp`, as the
//! image's own non-root user.
//!
//! - `full_image_imports_c7n_on_a_read_only_root` and
//!   `full_image_runs_the_worker_on_a_read_only_root` check the image itself: the interpreter
//!   named by `CUSTODIAN_PYTHON` imports c7n and boto3 and loads a resource, and the worker
//!   starts.
//! - `full_image_container_remediates_an_open_security_group_against_moto` is one real job
//!   that only the Python driver can run (an `aws.security-group` policy), end to end against
//!   moto, like `worker_container_processes_one_job_against_moto` for the slim image.
//!
//! Ignored: they need Docker and the image (`cargo xtask dist --load`, or the release test
//! that `cargo xtask test` runs first); without them they fail.

// Test code: a panic is a failed test (helpers outside #[test] fns included).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_sqs::types::QueueAttributeName as A;
use czero_integration::scenario::GRACEFUL_EXIT_LINE;
use czero_integration::stack::bin;
use czero_testkit::{Moto, project_root};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POLICY_BUCKET: &str = "czero-policies";
const OUTPUT_BUCKET: &str = "czero-output";
/// An AuthorizeSecurityGroupIngress event; its group id is replaced by moto's.
const EVENT_FIXTURE: &str = "integration/fixtures/cloudtrail-authorize-sg-ingress.json";
const FIXTURE_GROUP_ID: &str = "sg-0a1b2c3d4e5f60718";
const POLICY_FIXTURE: &str = "integration/fixtures/sg-ssh-open-to-world.yml";
const POLICY_KEY: &str = "policies/sg-ssh-open-to-world.yml";
const MAPPING_FIXTURE: &str = "integration/fixtures/sg-policy-mappings.json";
const POLICY_NAME: &str = "sg-ssh-open-to-world";
/// The c7n version the image's lock pins (crates/driver/requirements.lock).
const C7N_VERSION: &str = "0.9.53";
/// Generous: the container needs a few seconds, moto and Docker on a busy machine more.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn image() -> String {
    std::env::var("CZERO_E2E_FULL_IMAGE").unwrap_or_else(|_| "custodian-worker:full".to_string())
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker client runs")
}

/// Fails unless a Docker engine answers and has the image.
fn require_image() -> String {
    let image = image();
    assert!(
        docker(&["info"]).status.success(),
        "no Docker engine answers `docker info`"
    );
    assert!(
        docker(&["image", "inspect", &image]).status.success(),
        "Docker has no image {image}: run `cargo xtask dist --load` (or set CZERO_E2E_FULL_IMAGE)"
    );
    image
}

/// One `Env` entry of the image's configuration.
fn image_env(image: &str, name: &str) -> String {
    let out = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        image,
    ]);
    assert!(out.status.success(), "docker image inspect {image}");
    let env: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    env.iter()
        .find_map(|e| e.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{image} sets no {name}: {env:?}"))
        .to_owned()
}

/// `docker run --rm --read-only --tmpfs /tmp` of `image` (as its own user), with `entrypoint`
/// when given; returns (success, stdout, stderr).
fn run_read_only(image: &str, entrypoint: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new("docker");
    cmd.args([
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--network",
        "none",
    ]);
    if let Some(e) = entrypoint {
        cmd.args(["--entrypoint", e]);
    }
    let out = cmd
        .arg(image)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker client runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs Docker and the full image (`cargo xtask dist --load`); run by `cargo xtask test`"]
fn full_image_imports_c7n_on_a_read_only_root() {
    let image = require_image();
    let user = docker(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532:65532");
    // The shell-less image cannot expand `$CUSTODIAN_PYTHON` itself: read it from the image's
    // configuration and make it the entry point, which is what the worker does.
    let python = image_env(&image, "CUSTODIAN_PYTHON");
    let started = Instant::now();
    let (ok, stdout, stderr) = run_read_only(
        &image,
        Some(&python),
        &[
            "-c",
            "import c7n, boto3; from c7n.resources import load_resources; load_resources(('aws.security-group',)); print(c7n.version.version)",
        ],
    );
    let elapsed = started.elapsed();
    assert!(ok, "{python} in {image}:\n{stdout}\n{stderr}");
    assert_eq!(stdout, C7N_VERSION, "stderr:\n{stderr}");
    // Not root, and nothing but the tmpfs is writable.
    let (ok, stdout, stderr) = run_read_only(
        &image,
        Some(&python),
        &[
            "-c",
            "import os, tempfile; print(os.getuid(), os.access('/', os.W_OK), os.access(tempfile.gettempdir(), os.W_OK))",
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "65532 False True");
    eprintln!(
        "{image}: {python} imported c7n {C7N_VERSION}, boto3 and aws.security-group on a read-only root in {:.1} s (container included)",
        elapsed.as_secs_f64()
    );
}

#[test]
#[ignore = "needs Docker and the full image (`cargo xtask dist --load`); run by `cargo xtask test`"]
fn full_image_runs_the_worker_on_a_read_only_root() {
    let image = require_image();
    let (ok, stdout, stderr) = run_read_only(&image, None, &["--version"]);
    assert!(
        ok,
        "custodian-worker --version in {image}:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.starts_with("custodian-worker "),
        "unexpected version line: {stdout}"
    );
    eprintln!("{image}: {stdout}");
}

/// Runs `code` with the project's Python (boto3) against moto; returns its stdout.
fn boto3(moto: &Moto, code: &str) -> String {
    let out = Command::new(czero_testkit::python().unwrap())
        .args(["-c", code])
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3 against moto:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The group's ingress rules open to 0.0.0.0/0 on port 22.
fn ssh_open_to_world(moto: &Moto, group_id: &str) -> usize {
    boto3(
        moto,
        &format!(
            "import boto3\n\
             g = boto3.client('ec2').describe_security_groups(GroupIds=['{group_id}'])['SecurityGroups'][0]\n\
             print(sum(1 for p in g['IpPermissions'] if p.get('FromPort') == 22 and any(r['CidrIp'] == '0.0.0.0/0' for r in p.get('IpRanges', []))))"
        ),
    )
    .parse()
    .unwrap()
}

/// The full image's worker runs a policy the native engine cannot (`aws.security-group`)
/// through Cloud Custodian (`$CUSTODIAN_PYTHON`, the c7n driver) on a read-only root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker and the full image; run by `cargo xtask test` after `dist --load`"]
async fn full_image_container_remediates_an_open_security_group_against_moto() {
    let image = require_image();
    let moto = Moto::start().expect("moto starts (run `cargo xtask test` once to install it)");
    let sdk = moto.sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );

    // A developer opens SSH to the world on a security group.
    let group_id = boto3(
        &moto,
        "import boto3\n\
         ec2 = boto3.client('ec2')\n\
         vpc = ec2.describe_vpcs()['Vpcs'][0]['VpcId']\n\
         g = ec2.create_security_group(GroupName='bastion', Description='bastion hosts', VpcId=vpc)['GroupId']\n\
         ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 22, 'ToPort': 22, 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])\n\
         print(g)",
    );
    assert_eq!(
        ssh_open_to_world(&moto, &group_id),
        1,
        "the rule to remove is there"
    );

    // The deployment: queue with a DLQ, buckets, the policy and a mapping that routes the
    // event to it.
    let dlq_url = sqs
        .create_queue()
        .queue_name("czero-jobs-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&A::QueueArn]
        .clone();
    let queue_url = sqs
        .create_queue()
        .queue_name("czero-jobs")
        .attributes(A::VisibilityTimeout, "120")
        .attributes(
            A::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for b in [POLICY_BUCKET, OUTPUT_BUCKET] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    for (key, file) in [
        (POLICY_KEY, POLICY_FIXTURE),
        ("config/policy-mappings.json", MAPPING_FIXTURE),
    ] {
        let body = std::fs::read(project_root().join(file)).unwrap();
        s3.put_object()
            .bucket(POLICY_BUCKET)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    // The EventBridge event CloudTrail sends for that call, naming moto's group.
    let event = std::fs::read_to_string(project_root().join(EVENT_FIXTURE))
        .unwrap()
        .replace(FIXTURE_GROUP_ID, &group_id);
    let dir = tempfile::tempdir().unwrap();
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, event).unwrap();
    let invoke = Command::new(bin("czero").unwrap())
        .args(["invoke", "--event"])
        .arg(&event_path)
        .envs(moto.env())
        .env("SQS_QUEUE_URL", &queue_url)
        .env("POLICY_BUCKET", POLICY_BUCKET)
        // This deployment holds one policy: the invoker checks every policy it can route
        // to, the default included, so the default is that policy too.
        .env("DEFAULT_POLICY_KEY", POLICY_KEY)
        .output()
        .unwrap();
    assert!(
        invoke.status.success(),
        "czero invoke: {}\n{}",
        invoke.status,
        String::from_utf8_lossy(&invoke.stderr)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&invoke.stdout).unwrap();
    assert_eq!(outcome["status"], "queued", "{outcome:#}");
    let job_id = outcome["queued"]["jobId"]
        .as_str()
        .unwrap_or_else(|| panic!("czero invoke names no job id: {outcome:#}"))
        .to_owned();
    assert_eq!(depth(&sqs, &queue_url).await, 1, "one job queued");

    // The image, run as ECS would run it: read-only root, /tmp writable, its own user.
    let name = format!("czero-full-job-{}", uuid::Uuid::new_v4().simple());
    let mut env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend(
        [
            ("SQS_QUEUE_URL", queue_url.as_str()),
            ("POLICY_BUCKET", POLICY_BUCKET),
            ("OUTPUT_BUCKET", OUTPUT_BUCKET),
            ("DLQ_URL", dlq_url.as_str()),
            ("MAX_EMPTY_RECEIVES", "1"),
            ("WAIT_TIME_SECONDS", "1"),
            ("LOG_FORMAT", "json"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--read-only", "--tmpfs", "/tmp"])
        .args(["--network", "host", "--name", &name]);
    for (k, v) in &env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    let started = Instant::now();
    let child = cmd
        .arg(&image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    while !waiter.is_finished() && started.elapsed() < RUN_TIMEOUT {
        std::thread::sleep(Duration::from_millis(100));
    }
    if !waiter.is_finished() {
        docker(&["kill", &name]);
    }
    let run = waiter.join().unwrap().unwrap();
    let elapsed = started.elapsed();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        elapsed < RUN_TIMEOUT,
        "the container did not exit within {RUN_TIMEOUT:?}:\n{log}"
    );
    assert!(
        run.status.success(),
        "the container exited with {}:\n{log}",
        run.status
    );
    assert!(
        log.lines().any(|l| l.contains(GRACEFUL_EXIT_LINE)),
        "the container did not log the idle-exit line:\n{log}"
    );

    // The remediation: the world-open SSH rule is gone.
    assert_eq!(
        ssh_open_to_world(&moto, &group_id),
        0,
        "the SSH rule is still open to the world:\n{log}"
    );

    // c7n's output for the job: output/<job id>/<policy>/…
    let keys: Vec<String> = s3
        .list_objects_v2()
        .bucket(OUTPUT_BUCKET)
        .prefix(format!("output/{job_id}/{POLICY_NAME}/"))
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert!(
        keys.iter().any(|k| k.ends_with("/resources.json.gz")),
        "resources.json.gz missing from the output: {keys:?}\n{log}"
    );

    assert_eq!(depth(&sqs, &queue_url).await, 0, "queue not empty");
    assert_eq!(depth(&sqs, &dlq_url).await, 0, "DLQ not empty");
    eprintln!(
        "full worker container {image}: 1 job (security group {group_id}) remediated, {} output files, exit 0 after {:.1}s",
        keys.len(),
        elapsed.as_secs_f64()
    );
}

/// Visible + in-flight messages.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let (visible, in_flight) = czero_testkit::queue_depth(sqs, url).await.unwrap();
    visible + in_flight
}
