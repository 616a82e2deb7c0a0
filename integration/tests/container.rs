//! The worker image as a container, processing one real job against moto: the invoker
//! (`czero invoke`) queues a job for a CloudTrail CreateBucket event, `docker run` of the
//! image takes it, remediates the bucket, writes c7n's output and exits when idle.
//!
//! Ignored: it needs Docker and the image (`cargo xtask dist --load`, or the release test that
//! `cargo xtask test` runs first). Without them it fails; `cargo xtask test` runs it only where
//! a Docker engine answers and says so when there is none.

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
/// The bucket the fixture event creates.
const FIXTURE: &str = "crates/invoker/fixtures/cloudtrail-createbucket.json";
const BUCKET: &str = "team-analytics-raw-2026";
/// The default policy's name (policies/s3-createbucket.yml).
const POLICY_NAME: &str = "s3-createbucket-remediate";
/// Generous: the container needs a few seconds, moto and Docker on a busy machine more.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn image() -> String {
    std::env::var("CZERO_E2E_IMAGE").unwrap_or_else(|_| "custodian-worker:latest".to_string())
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker client runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker and the worker image (`cargo xtask dist --load`); run by `cargo xtask test`"]
async fn worker_container_processes_one_job_against_moto() {
    let image = image();
    assert!(
        docker(&["info"]).status.success(),
        "no Docker engine answers `docker info`"
    );
    assert!(
        docker(&["image", "inspect", &image]).status.success(),
        "Docker has no image {image}: run `cargo xtask dist --load` (or set CZERO_E2E_IMAGE)"
    );

    // The deployment as Terraform and the deploy step leave it: queue with a DLQ, buckets,
    // the policies and the mapping; and the bucket a developer just created.
    let moto = Moto::start().expect("moto starts (run `cargo xtask test` once to install it)");
    let sdk = moto.sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
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
        .attributes(A::VisibilityTimeout, "60")
        .attributes(
            A::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for b in [POLICY_BUCKET, OUTPUT_BUCKET, BUCKET] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    czero_testkit::upload_project_policies(&s3, POLICY_BUCKET)
        .await
        .unwrap();

    // The invoker queues the job, as the Lambda would for this EventBridge event.
    let invoke = Command::new(bin("czero").unwrap())
        .args(["invoke", "--event"])
        .arg(project_root().join(FIXTURE))
        .envs(moto.env())
        .env("SQS_QUEUE_URL", &queue_url)
        .env("POLICY_BUCKET", POLICY_BUCKET)
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

    // The image, run as ECS would run it: the task definition's environment, nothing else.
    let name = format!("czero-one-job-{}", uuid::Uuid::new_v4().simple());
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
    cmd.args(["run", "--rm", "--network", "host", "--name", &name]);
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
    assert!(
        !docker(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("name={name}")
        ])
        .stdout
        .iter()
        .any(|b| !b.is_ascii_whitespace()),
        "container {name} was not removed"
    );

    // The default policy's remediation.
    let enc = s3
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket encryption set");
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let block = s3
        .get_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .expect("public access block set");
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    // Versioning is not read back: moto 5.2.5's GetBucketVersioning reply has a root element
    // the SDK rejects.
    let tags = s3.get_bucket_tagging().bucket(BUCKET).send().await.unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "custodian-zero" && t.value() == "remediated"),
        "tag missing: {:?}",
        tags.tag_set()
    );

    // c7n's output for the job: output/<job id>/<policy>/YYYY/MM/DD/HH/{resources.json.gz, …}.
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
    for file in [
        "resources.json.gz",
        "metadata.json.gz",
        "custodian-run.log.gz",
    ] {
        assert!(
            keys.iter().any(|k| k.ends_with(&format!("/{file}"))),
            "{file} missing from the output: {keys:?}"
        );
    }
    let resources_key = keys
        .iter()
        .find(|k| k.ends_with("/resources.json.gz"))
        .unwrap();
    let gz = s3
        .get_object()
        .bucket(OUTPUT_BUCKET)
        .key(resources_key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    // Its content is the engine's tests' business; here: a gzip stream, not an empty file.
    assert!(
        gz.len() > 20 && gz[..2] == [0x1f, 0x8b],
        "{resources_key} is not gzipped ({} bytes)",
        gz.len()
    );

    assert_eq!(depth(&sqs, &queue_url).await, 0, "queue not empty");
    assert_eq!(depth(&sqs, &dlq_url).await, 0, "DLQ not empty");
    eprintln!(
        "worker container {image}: 1 job (bucket {BUCKET}) remediated, {} output files, exit 0 after {:.1}s",
        keys.len(),
        elapsed.as_secs_f64()
    );
}

/// Visible + in-flight messages.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let (visible, in_flight) = czero_testkit::queue_depth(sqs, url).await.unwrap();
    visible + in_flight
}
