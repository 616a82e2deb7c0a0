//! `czero local` against moto: the stack Terraform deploys (VPC, subnet, queue + DLQ,
//! cluster, service at 0, scalable target 0..10, step policies, metric-math alarms, with or
//! without the scale-in guard) created through the SDK, jobs, and stand-in worker processes
//! (`examples/fake_task.rs`) that consume them. Time runs 30× faster.

// Test helpers outside #[test] functions may panic on failure too.
#![allow(clippy::unwrap_used)]

use anyhow::{Context, Result};
use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, PolicyType, ScalableDimension, ServiceNamespace,
    StepAdjustment, StepScalingPolicyConfiguration,
};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat,
};
use czero_local::{Emulator, LocalOptions, ProcessLauncher, Timeline, desired_sequence};
use czero_scaling::aws::{ScalingParams, scale_in_policy, scale_out_policy, scale_out_tiers};
use czero_scaling::sim::{SimConfig, simulate};
use pretty_assertions::assert_eq;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const CLUSTER: &str = "custodian-cluster";
const SERVICE: &str = "custodian-worker";
const QUEUE: &str = "custodian-jobs";
const SCALE: f64 = 30.0;

/// One EC2 Query call to moto (the project has no EC2 SDK; only three calls are needed).
async fn ec2(endpoint: &str, params: &[(&str, &str)], tag: &str) -> Result<String> {
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let body = reqwest::Client::new()
        .post(endpoint)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&form)
        .send()
        .await?
        .text()
        .await?;
    let open = format!("<{tag}>");
    let start = body
        .find(&open)
        .with_context(|| format!("no {tag} in {body}"))?
        + open.len();
    let end = body[start..].find('<').context("unterminated tag")? + start;
    Ok(body[start..end].to_owned())
}

/// The scale-in alarm's metric math with the scale-in guard, as Terraform writes it when
/// fast wake is on (`m3`: Container Insights' `RunningTaskCount` of the service).
const GUARD: &str = "IF(FILL(m3, 0) > 0, m1 + m2, 1)";

/// The Terraform example's resources, through the SDK; with `guard` the scale-in alarm
/// carries the scale-in guard. Returns the queue URL.
async fn deploy(moto: &czero_testkit::Moto, params: &ScalingParams, guard: bool) -> Result<String> {
    let config = moto.sdk_config();
    let endpoint = moto.endpoint();
    let vpc = ec2(
        &endpoint,
        &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
        "vpcId",
    )
    .await?;
    let subnet = ec2(
        &endpoint,
        &[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", "10.0.1.0/24"),
        ],
        "subnetId",
    )
    .await?;
    let sg = ec2(
        &endpoint,
        &[
            ("Action", "CreateSecurityGroup"),
            ("VpcId", &vpc),
            ("GroupName", "worker"),
            ("GroupDescription", "worker"),
        ],
        "groupId",
    )
    .await?;

    let sqs = aws_sdk_sqs::Client::new(&config);
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{QUEUE}-dlq"))
        .send()
        .await?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(dlq.queue_url().context("dlq url")?)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .context("dlq arn")?;
    let queue = sqs
        .create_queue()
        .queue_name(QUEUE)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "300",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}"#),
        )
        .send()
        .await?;
    let queue_url = queue.queue_url().context("queue url")?.to_owned();

    let ecs = aws_sdk_ecs::Client::new(&config);
    ecs.create_cluster().cluster_name(CLUSTER).send().await?;
    let td = ecs
        .register_task_definition()
        .family(SERVICE)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("worker")
                .image("custodian-worker:latest")
                .essential(true)
                .build(),
        )
        .send()
        .await?;
    let td_arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .context("td arn")?;
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition(td_arn)
        .desired_count(0)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(
            aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .subnets(&subnet)
                        .security_groups(&sg)
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;

    let aas = aws_sdk_applicationautoscaling::Client::new(&config);
    let rid = format!("service/{CLUSTER}/{SERVICE}");
    aas.register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&rid)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(i32::try_from(params.min_capacity)?)
        .max_capacity(i32::try_from(params.max_capacity)?)
        .send()
        .await?;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let step = |lower: Option<f64>, upper: Option<f64>, capacity: u32| {
        StepAdjustment::builder()
            .set_metric_interval_lower_bound(lower)
            .set_metric_interval_upper_bound(upper)
            .scaling_adjustment(i32::try_from(capacity).unwrap_or(i32::MAX))
            .build()
    };
    let policies = [
        (
            "scale-out",
            params.scale_out_cooldown_s,
            scale_out_tiers(params.target_value, params.max_capacity)
                .iter()
                .map(|t| step(t.lower, t.upper, t.capacity))
                .collect::<Result<Vec<_>, _>>()?,
            ComparisonOperator::GreaterThanThreshold,
            params.scale_out_evaluation_periods,
        ),
        (
            "scale-in",
            params.scale_in_cooldown_s,
            vec![step(None, Some(0.0), 0)?],
            ComparisonOperator::LessThanOrEqualToThreshold,
            params.scale_in_evaluation_periods,
        ),
    ];
    for (suffix, cooldown, steps, comparison, periods) in policies {
        let guarded = guard && suffix == "scale-in";
        let policy = aas
            .put_scaling_policy()
            .policy_name(format!("{SERVICE}-{suffix}"))
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&rid)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::StepScaling)
            .step_scaling_policy_configuration(
                StepScalingPolicyConfiguration::builder()
                    .adjustment_type(AdjustmentType::ExactCapacity)
                    .cooldown(i32::try_from(cooldown)?)
                    .metric_aggregation_type(MetricAggregationType::Maximum)
                    .set_step_adjustments(Some(steps))
                    .build(),
            )
            .send()
            .await?;
        let metric = |id: &str, name: &str| {
            MetricDataQuery::builder()
                .id(id)
                .return_data(false)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace("AWS/SQS")
                                .metric_name(name)
                                .dimensions(
                                    Dimension::builder().name("QueueName").value(QUEUE).build(),
                                )
                                .build(),
                        )
                        .period(i32::try_from(params.period_s).unwrap_or(60))
                        .stat("Maximum")
                        .build(),
                )
                .build()
        };
        let running = MetricDataQuery::builder()
            .id("m3")
            .return_data(false)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("ECS/ContainerInsights")
                            .metric_name("RunningTaskCount")
                            .dimensions(
                                Dimension::builder()
                                    .name("ClusterName")
                                    .value(CLUSTER)
                                    .build(),
                            )
                            .dimensions(
                                Dimension::builder()
                                    .name("ServiceName")
                                    .value(SERVICE)
                                    .build(),
                            )
                            .build(),
                    )
                    .period(i32::try_from(params.period_s).unwrap_or(60))
                    .stat("Maximum")
                    .build(),
            )
            .build();
        cw.put_metric_alarm()
            .alarm_name(format!("{SERVICE}-{suffix}"))
            .comparison_operator(comparison)
            .threshold(0.0)
            .evaluation_periods(i32::try_from(periods)?)
            .datapoints_to_alarm(i32::try_from(periods)?)
            .treat_missing_data("notBreaching")
            .set_metrics(Some(
                [
                    Some(
                        MetricDataQuery::builder()
                            .id("backlog")
                            .expression(if guarded { GUARD } else { "m1 + m2" })
                            .return_data(true)
                            .build(),
                    ),
                    Some(metric("m1", "ApproximateNumberOfMessagesVisible")),
                    Some(metric("m2", "ApproximateNumberOfMessagesNotVisible")),
                    guarded.then_some(running),
                ]
                .into_iter()
                .flatten()
                .collect(),
            ))
            .alarm_actions(policy.policy_arn())
            .send()
            .await?;
    }
    Ok(queue_url)
}

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("czero_local=debug")
        .with_test_writer()
        .try_init();
}

async fn send_jobs(moto: &czero_testkit::Moto, queue_url: &str, n: usize) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config());
    for i in 0..n {
        sqs.send_message()
            .queue_url(queue_url)
            .message_body(format!(r#"{{"job":{i}}}"#))
            .send()
            .await?;
    }
    Ok(())
}

/// `target/<profile>/examples/fake_task`, built by cargo along with the tests.
fn fake_task() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = profile_dir.join("examples/fake_task");
    assert!(
        path.exists(),
        "{} is missing: build with `cargo test` or `cargo nextest run`",
        path.display()
    );
    path
}

fn task_env(
    moto: &czero_testkit::Moto,
    queue_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("SQS_QUEUE_URL".into(), queue_url.to_owned()));
    env.push(("WAIT_TIME_SECONDS".into(), "1".into()));
    env.push(("PROCESS_MS".into(), "10".into()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

fn options(queue_url: &str, setup: czero_local::ScalingSetup) -> LocalOptions {
    LocalOptions {
        cluster: CLUSTER.into(),
        service: SERVICE.into(),
        queue_url: queue_url.to_owned(),
        setup,
        time_scale: SCALE,
        stop_timeout_s: 30.0,
        until_idle: true,
        // A cap, far above the ≈ 7 simulated minutes a burst takes.
        duration_s: Some(1800.0),
        // moto 5.2.5 cannot RunTask an awsvpc task definition (HTTP 500), see `emulator`.
        record_tasks: false,
        arn_base: "arn:aws:ecs:us-east-1:123456789012".into(),
        metric_lag_s: 0,
    }
}

/// Polls `DescribeServices` and keeps the desired counts moto reports, changes only.
fn watch_desired(emulator: Emulator) -> (Arc<Mutex<Vec<u32>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let handle = tokio::spawn(async move {
        loop {
            if let Ok(info) = emulator.service(CLUSTER, SERVICE).await {
                let mut v = out.lock().unwrap();
                if v.last() != Some(&info.desired) {
                    v.push(info.desired);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    (seen, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_deployed_policies_from_the_emulator() -> Result<()> {
    logs();
    let moto = czero_testkit::Moto::start()?;
    let params = ScalingParams::default();
    deploy(&moto, &params, false).await?;
    let emulator = Emulator::new(&moto.sdk_config());
    let setup = emulator.read_setup(CLUSTER, SERVICE).await?;
    assert_eq!(
        (setup.min_capacity, setup.max_capacity, setup.period_s),
        (0, 10, 60)
    );
    assert_eq!(setup.queue_name.as_deref(), Some(QUEUE));
    let mut out = scale_out_policy(&params);
    out.name = format!("{SERVICE}-scale-out");
    let mut inp = scale_in_policy(&params);
    inp.name = format!("{SERVICE}-scale-in");
    assert_eq!(setup.policies, vec![out, inp]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_25_matches_the_simulator_and_shows_in_describe_services() -> Result<()> {
    logs();
    let moto = czero_testkit::Moto::start()?;
    let params = ScalingParams::default();
    let queue_url = deploy(&moto, &params, false).await?;
    let emulator = Emulator::new(&moto.sdk_config());
    let setup = emulator.read_setup(CLUSTER, SERVICE).await?;
    send_jobs(&moto, &queue_url, 25).await?;

    let (seen, watcher) = watch_desired(emulator.clone());
    let dir = tempfile::tempdir()?;
    let timeline_path = dir.path().join("timeline.jsonl");
    let mut timeline = Timeline::new(Some(Box::new(std::fs::File::create(&timeline_path)?)), None);
    let launcher = ProcessLauncher::new(fake_task(), Vec::new(), task_env(&moto, &queue_url, &[]));
    let summary = czero_local::run(
        &emulator,
        launcher,
        &options(&queue_url, setup),
        &mut timeline,
        std::future::pending(),
    )
    .await?;
    watcher.abort();
    // The run may end between two polls: read the final state once more.
    let last = emulator.service(CLUSTER, SERVICE).await?;
    {
        let mut v = seen.lock().unwrap();
        if v.last() != Some(&last.desired) {
            v.push(last.desired);
        }
    }

    // The simulator, fed the same arrivals, with tasks like the stand-in: fast start, fast
    // jobs, no idle exit, and no metric lag (the control plane reads the queue directly).
    let sim = simulate(
        &SimConfig {
            scaling: params,
            metric_lag_s: 0,
            start_latency_s: (0.5, 2.0),
            processing_s: (0.2, 0.5),
            wait_time_s: 30.0,
            idle_exit: false,
            ..SimConfig::default()
        },
        &[0.0; 25],
    );
    let mut sim_sequence: Vec<u32> = Vec::new();
    for row in &sim.timeline {
        if sim_sequence.last() != Some(&row.desired) {
            sim_sequence.push(row.desired);
        }
    }

    assert_eq!(sim_sequence, vec![0, 5, 0], "simulator");
    assert_eq!(
        summary.desired_sequence, sim_sequence,
        "control plane vs simulator; rows: {:#?}",
        summary.rows
    );
    assert_eq!(desired_sequence(&summary.rows), sim_sequence);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![0, 5, 0],
        "describe-services desiredCount"
    );
    assert_eq!(
        (summary.starts, summary.relaunches, summary.max_running),
        (5, 0, 5)
    );

    // Scale-in after five empty one-minute datapoints, as the simulator says.
    let zero_at = summary
        .rows
        .iter()
        .find(|r| r.desired == 0 && r.t > 0.0)
        .map(|r| r.t)
        .context("no scale-in")?;
    let sim_zero_at = sim
        .timeline
        .iter()
        .skip_while(|r| r.desired == 0)
        .find(|r| r.desired == 0)
        .map(|r| r.t_s);
    assert!(
        (419.0..=450.0).contains(&zero_at),
        "scale-in at {zero_at} s"
    );
    assert_eq!(sim_zero_at, Some(420));

    // Every job was done and the queue is empty.
    let counts = emulator.queue_counts(&queue_url).await?;
    assert_eq!((counts.visible, counts.not_visible), (0, 0));

    // The timeline file holds the same rows as JSON lines.
    let text = std::fs::read_to_string(&timeline_path)?;
    let rows: Vec<czero_local::Row> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(rows, summary.rows);
    assert_eq!(rows[0].queue_visible, 25);

    // What `describe-services` shows on moto: runningCount is a copy of desiredCount made by
    // UpdateService (moto runs nothing), so it says 0 at the end, not what ran.
    let info = emulator.service(CLUSTER, SERVICE).await?;
    assert_eq!((info.desired, info.running), (0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_exit_inside_a_service_causes_relaunches() -> Result<()> {
    // BRIEF §2.2: a task that exits while the desired count is unchanged is replaced.
    logs();
    let moto = czero_testkit::Moto::start()?;
    let queue_url = deploy(&moto, &ScalingParams::default(), false).await?;
    let emulator = Emulator::new(&moto.sdk_config());
    let setup = emulator.read_setup(CLUSTER, SERVICE).await?;
    send_jobs(&moto, &queue_url, 7).await?;
    let env = task_env(
        &moto,
        &queue_url,
        &[("IDLE_EXIT", "true"), ("MAX_EMPTY_RECEIVES", "1")],
    );
    let launcher = ProcessLauncher::new(fake_task(), Vec::new(), env);
    let mut timeline = Timeline::in_memory();
    let summary = czero_local::run(
        &emulator,
        launcher,
        &options(&queue_url, setup),
        &mut timeline,
        std::future::pending(),
    )
    .await?;
    assert_eq!(summary.desired_sequence, vec![0, 2, 0]);
    // Each task idles out about once per real second (30 simulated) for the 5 minutes
    // before scale-in; every exit is replaced.
    assert!(
        summary.relaunches >= 4,
        "relaunches: {}; rows: {:#?}",
        summary.relaunches,
        summary.rows
    );
    assert_eq!(summary.starts, 2 + summary.relaunches);
    assert!(summary.rows.iter().any(|r| r.action.contains("relaunched")));
    Ok(())
}

/// When the job arrives: an idle service for 7 minutes (the unguarded scale-in alarm has
/// been in ALARM since minute 6), mid-period.
const ARRIVAL_S: f64 = 450.0;
/// Datapoints reach the alarms a period after it ends, as CloudWatch's SQS metrics do.
const LAG_S: u64 = 60;

/// Desired counts in order of change, from the simulator's timeline actions: the minute
/// rows alone would miss a wake undone within the same minute.
fn sim_desired_changes(report: &czero_scaling::sim::Report) -> Vec<u32> {
    let mut seq = vec![report.timeline.first().map_or(0, |r| r.desired)];
    for row in &report.timeline {
        for part in row.action.split("; ") {
            if !["Fast wake", "Scale out", "Scale in"]
                .iter()
                .any(|p| part.starts_with(p))
            {
                continue;
            }
            let to: u32 = part.rsplit('→').next().unwrap().trim().parse().unwrap();
            if seq.last() != Some(&to) {
                seq.push(to);
            }
        }
    }
    seq
}

/// One job into a service idle at 0; right after queueing it the invoker's fast wake
/// (DescribeServices, then UpdateService 0 → 1). The simulator gets the same arrival, fast
/// wake and metric lag. With the guard both keep the woken task; without it both let the
/// scale-in alarm, in ALARM since the service went idle, undo the wake at its next
/// evaluation, before the lagging datapoint shows the job.
async fn fast_wake_agrees_with_the_simulator(guard: bool) -> Result<()> {
    logs();
    let moto = czero_testkit::Moto::start()?;
    let params = ScalingParams::default();
    let queue_url = deploy(&moto, &params, guard).await?;
    let emulator = Emulator::new(&moto.sdk_config());
    let setup = emulator.read_setup(CLUSTER, SERVICE).await?;
    assert_eq!(setup.has_scale_in_guard(), guard);
    let mut opts = options(&queue_url, setup);
    opts.metric_lag_s = LAG_S;

    let (seen, watcher) = watch_desired(emulator.clone());
    let launcher = ProcessLauncher::new(fake_task(), Vec::new(), task_env(&moto, &queue_url, &[]));
    let mut timeline = Timeline::in_memory();
    let arrive = async {
        tokio::time::sleep(std::time::Duration::from_secs_f64(ARRIVAL_S / SCALE)).await;
        send_jobs(&moto, &queue_url, 1).await?;
        let before = emulator.service(CLUSTER, SERVICE).await?.desired;
        anyhow::ensure!(before == 0, "service at {before} when the job arrived");
        emulator.set_desired(CLUSTER, SERVICE, 1).await?;
        anyhow::Ok(())
    };
    let (summary, arrived) = tokio::join!(
        czero_local::run(
            &emulator,
            launcher,
            &opts,
            &mut timeline,
            std::future::pending()
        ),
        arrive
    );
    arrived?;
    let summary = summary?;
    watcher.abort();
    let last = emulator.service(CLUSTER, SERVICE).await?;
    {
        let mut v = seen.lock().unwrap();
        if v.last() != Some(&last.desired) {
            v.push(last.desired);
        }
    }

    let sim = simulate(
        &SimConfig {
            scaling: params,
            metric_lag_s: LAG_S,
            fast_wake: true,
            scale_in_guard: guard,
            start_latency_s: (0.5, 2.0),
            processing_s: (0.2, 0.5),
            wait_time_s: 30.0,
            idle_exit: false,
            // Past the last datapoint that could scale out again.
            min_duration_s: 1200.0,
            ..SimConfig::default()
        },
        &[ARRIVAL_S],
    );
    let expected = if guard {
        vec![0, 1, 0]
    } else {
        // Woken, undone, scaled out again by the backlog alarm, scaled in.
        vec![0, 1, 0, 1, 0]
    };
    assert_eq!(sim_desired_changes(&sim), expected, "simulator");
    assert_eq!(
        summary.desired_sequence, expected,
        "control plane vs simulator; rows: {:#?}",
        summary.rows
    );
    assert_eq!(
        *seen.lock().unwrap(),
        expected,
        "describe-services desiredCount"
    );
    assert_eq!(
        (summary.starts, summary.relaunches),
        (u32::try_from(sim.summary.launches)?, 0)
    );

    // Each scale-in at the simulator's time (its rows are whole minutes; the control plane
    // evaluates on its first tick after the datapoint is due).
    let sim_scale_ins: Vec<f64> = sim
        .timeline
        .iter()
        .filter(|r| r.action.contains("Scale in"))
        .map(|r| r.t_s as f64)
        .collect();
    let local_scale_ins: Vec<f64> = summary
        .rows
        .iter()
        .filter(|r| r.action.contains("Scale in"))
        .map(|r| r.t)
        .collect();
    assert_eq!(
        local_scale_ins.len(),
        sim_scale_ins.len(),
        "{local_scale_ins:?} vs {sim_scale_ins:?}"
    );
    for (local, sim) in local_scale_ins.iter().zip(&sim_scale_ins) {
        assert!(
            (*sim..=sim + 30.0).contains(local),
            "scale-in at {local} s, simulator {sim} s; rows: {:#?}",
            summary.rows
        );
    }
    assert_eq!(sim_scale_ins.last().copied(), Some(840.0));

    let counts = emulator.queue_counts(&queue_url).await?;
    assert_eq!((counts.visible, counts.not_visible), (0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_wake_with_the_scale_in_guard_matches_the_simulator() -> Result<()> {
    fast_wake_agrees_with_the_simulator(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_wake_without_the_guard_is_undone_as_in_the_simulator() -> Result<()> {
    fast_wake_agrees_with_the_simulator(false).await
}
