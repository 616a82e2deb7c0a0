//! Where a chaos run plays: the Terraform-applied local stack, or the same resources made
//! with direct API calls ([`BareStack`]) when a minute of Terraform is too long.

use crate::stack::Stack;
use anyhow::{Context, Result};
use aws_config::SdkConfig;
use czero_testkit::Moto;
use std::collections::BTreeMap;

/// The deployment a chaos run drives: what Terraform (or [`BareStack`]) created in moto.
#[derive(Debug, Clone)]
pub struct Target {
    /// How it was made, for the summary.
    pub stack: String,
    /// moto's endpoint.
    pub endpoint: String,
    pub sdk: SdkConfig,
    /// Credentials and region for our binaries (their endpoint is set separately).
    pub aws_env: Vec<(String, String)>,
    pub queue_url: String,
    pub dlq_url: String,
    pub policy_bucket: String,
    pub output_bucket: String,
    pub cluster: String,
    pub service: String,
    /// The task definition's environment (before time scaling).
    pub worker_env: BTreeMap<String, String>,
    pub invoker_env: BTreeMap<String, String>,
}

impl Target {
    /// The Terraform-applied local stack.
    pub fn of(stack: &Stack) -> Target {
        Target {
            stack: "terraform/examples/local applied to moto".into(),
            endpoint: stack.endpoint(),
            sdk: stack.sdk.clone(),
            aws_env: stack.aws_env(),
            queue_url: stack.out.queue_url.clone(),
            dlq_url: stack.out.dlq_url.clone(),
            policy_bucket: stack.out.policy_bucket.clone(),
            output_bucket: stack.out.output_bucket.clone(),
            cluster: stack.out.cluster.clone(),
            service: stack.out.service.clone(),
            worker_env: stack.out.worker_env.clone(),
            invoker_env: stack.out.invoker_env.clone(),
        }
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    /// The worker environment with the timings scaled as the control plane scales time
    /// (a job timeout of 300 s becomes 10 s at 30×), the long poll shortened, JSON logs,
    /// and every AWS call sent to `endpoint` (the fault proxy).
    pub fn task_env(&self, time_scale: f64, endpoint: &str) -> BTreeMap<String, String> {
        let mut env = self.worker_env.clone();
        env.insert("WAIT_TIME_SECONDS".into(), "1".into());
        for (key, default, floor) in [
            ("JOB_TIMEOUT_SECONDS", 300.0, 2.0),
            ("VISIBILITY_TIMEOUT_SECONDS", 360.0, 4.0),
            ("SHUTDOWN_GRACE_SECONDS", 90.0, 1.0),
        ] {
            let aws: f64 = env.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
            let scaled = (aws / time_scale).ceil().max(floor);
            env.insert(key.into(), (scaled as u64).to_string());
        }
        env.insert("LOG_FORMAT".into(), "json".into());
        env.insert("AWS_ENDPOINT_URL".into(), endpoint.into());
        env
    }
}

/// A stack made with direct API calls instead of Terraform (seconds instead of a minute),
/// with the module's defaults: queue and DLQ (redrive after 5 receives), versioned policy
/// bucket, output bucket, cluster and service at desired 0.
#[derive(Debug)]
pub struct BareStack {
    pub target: Target,
    _moto: Moto,
}

impl BareStack {
    pub async fn up() -> Result<BareStack> {
        let moto = Moto::start().context("starting moto")?;
        let sdk = moto.sdk_config();
        let aws_env = moto
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut target = Target {
            stack: "moto without Terraform (the module's defaults)".into(),
            endpoint: moto.endpoint(),
            sdk,
            aws_env,
            queue_url: String::new(),
            dlq_url: String::new(),
            policy_bucket: "chaos-policies".into(),
            output_bucket: "chaos-output".into(),
            cluster: "custodian-cluster".into(),
            service: "custodian-worker".into(),
            worker_env: BTreeMap::new(),
            invoker_env: BTreeMap::new(),
        };
        use aws_sdk_sqs::types::QueueAttributeName as Q;
        let sqs = target.sqs();
        let dlq_url = sqs
            .create_queue()
            .queue_name("custodian-jobs-dlq")
            .send()
            .await
            .context("creating the DLQ")?
            .queue_url
            .context("CreateQueue returned no URL")?;
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(Q::QueueArn)
            .send()
            .await
            .context("reading the DLQ's ARN")?
            .attributes
            .and_then(|mut a| a.remove(&Q::QueueArn))
            .context("the DLQ has no QueueArn")?;
        let queue_url = sqs
            .create_queue()
            .queue_name("custodian-jobs")
            .attributes(Q::VisibilityTimeout, "360")
            .attributes(
                Q::RedrivePolicy,
                serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
                    .to_string(),
            )
            .send()
            .await
            .context("creating the job queue")?
            .queue_url
            .context("CreateQueue returned no URL")?;
        let s3 = target.s3();
        for b in [&target.policy_bucket, &target.output_bucket] {
            s3.create_bucket()
                .bucket(b)
                .send()
                .await
                .with_context(|| format!("creating bucket {b}"))?;
        }
        s3.put_bucket_versioning()
            .bucket(&target.policy_bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .context("versioning the policy bucket")?;
        czero_testkit::upload_project_policies(&s3, &target.policy_bucket).await?;

        let ecs = target.ecs();
        ecs.create_cluster()
            .cluster_name(&target.cluster)
            .send()
            .await
            .context("creating the ECS cluster")?;
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("worker")
            .image("custodian-worker:latest")
            .memory(512)
            .build();
        ecs.register_task_definition()
            .family("custodian-worker")
            .container_definitions(container)
            .send()
            .await
            .context("registering the task definition")?;
        ecs.create_service()
            .cluster(&target.cluster)
            .service_name(&target.service)
            .task_definition("custodian-worker")
            .desired_count(0)
            .send()
            .await
            .context("creating the ECS service")?;

        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        target.worker_env = env(&[
            ("SQS_QUEUE_URL", &queue_url),
            ("DLQ_URL", &dlq_url),
            ("POLICY_BUCKET", &target.policy_bucket),
            ("OUTPUT_BUCKET", &target.output_bucket),
            ("MAX_EMPTY_RECEIVES", "3"),
            ("WAIT_TIME_SECONDS", "20"),
            ("IDLE_EXIT", "true"),
            ("JOB_TIMEOUT_SECONDS", "300"),
            ("VISIBILITY_TIMEOUT_SECONDS", "360"),
        ]);
        target.invoker_env = env(&[
            ("SQS_QUEUE_URL", &queue_url),
            ("POLICY_BUCKET", &target.policy_bucket),
            ("POLICY_MAPPING_KEY", "config/policy-mappings.json"),
            ("DEFAULT_POLICY_KEY", "policies/s3-createbucket.yml"),
            ("WAKE_CLUSTER", &target.cluster),
            ("WAKE_SERVICE", &target.service),
        ]);
        target.queue_url = queue_url;
        target.dlq_url = dlq_url;
        Ok(BareStack {
            target,
            _moto: moto,
        })
    }
}
