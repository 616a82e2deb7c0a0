//! The Terraform stack: formatting, validation, checkov, the scale-out tiers for the
//! design document's tuning rows, and `terraform/examples/local` applied to moto, read back
//! through the AWS SDK (queue, service, scalable target, step policies, alarms) and its
//! state (the roles' S3 permissions), and destroyed again.

use anyhow::{Context, Result, anyhow, ensure};
use aws_sdk_applicationautoscaling::types::{ScalingPolicy, ServiceNamespace, StepAdjustment};
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm};
use czero_integration::terraform::{LocalExample, Workspace, project_root, run_with_timeout};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const MODULE: &str = "modules/custodian-zero";
const TIERS_MODULE: &str = "modules/custodian-zero/modules/scaling-tiers";

// ---------------------------------------------------------------------------------------
// The seed's scaling contract and AWS's step-adjustment semantics
// ---------------------------------------------------------------------------------------

/// The design document's table: 0 → 0, 1–5 → 1, 6–10 → 2, …, capped at `max`.
fn seed_desired(backlog: u32, target: f64, max: u32) -> u32 {
    if backlog == 0 {
        return 0;
    }
    let wanted = (f64::from(backlog) / target).ceil() as u32;
    wanted.min(max)
}

/// A step as AWS stores it, bounds relative to the alarm threshold.
#[derive(Debug, Clone, Copy)]
struct Step {
    lower: Option<f64>,
    upper: Option<f64>,
    capacity: i64,
}

impl From<&StepAdjustment> for Step {
    fn from(s: &StepAdjustment) -> Self {
        Step {
            lower: s.metric_interval_lower_bound(),
            upper: s.metric_interval_upper_bound(),
            capacity: i64::from(s.scaling_adjustment()),
        }
    }
}

/// The step AWS picks for `metric` when an alarm with `threshold` is in ALARM. Above the
/// threshold the lower bound is inclusive and the upper exclusive; below it, the reverse.
fn step_for(steps: &[Step], metric: f64, threshold: f64, above: bool) -> Option<i64> {
    let d = metric - threshold;
    let hits: Vec<&Step> = steps
        .iter()
        .filter(|s| {
            if above {
                s.lower.is_none_or(|l| d >= l) && s.upper.is_none_or(|u| d < u)
            } else {
                s.lower.is_none_or(|l| d > l) && s.upper.is_none_or(|u| d <= u)
            }
        })
        .collect();
    assert!(hits.len() <= 1, "overlapping steps for {metric}: {hits:?}");
    hits.first().map(|s| s.capacity)
}

/// Does a CloudWatch alarm with this operator and threshold breach at `metric`?
fn breaches(op: &ComparisonOperator, threshold: f64, metric: f64) -> bool {
    match op {
        ComparisonOperator::GreaterThanThreshold => metric > threshold,
        ComparisonOperator::GreaterThanOrEqualToThreshold => metric >= threshold,
        ComparisonOperator::LessThanThreshold => metric < threshold,
        ComparisonOperator::LessThanOrEqualToThreshold => metric <= threshold,
        other => panic!("unexpected comparison operator {other:?}"),
    }
}

/// One tier as the `scaling-tiers` module outputs it.
#[derive(Debug, Deserialize)]
struct Tier {
    capacity: i64,
    lower_bound: f64,
    upper_bound: Option<f64>,
}

/// Every backlog from 1 to well past the last tier gets the seed's answer from the tiers.
fn check_tiers(tiers: &[Tier], target: f64, max: u32) {
    let steps: Vec<Step> = tiers
        .iter()
        .map(|t| Step {
            lower: Some(t.lower_bound),
            upper: t.upper_bound,
            capacity: t.capacity,
        })
        .collect();
    assert_eq!(tiers.len(), max as usize, "one tier per task count");
    assert_eq!(tiers[0].lower_bound, 0.0, "steps start at the threshold");
    for pair in tiers.windows(2) {
        assert_eq!(
            pair[0].upper_bound,
            Some(pair[1].lower_bound),
            "gap or overlap in {pair:?}"
        );
    }
    assert_eq!(
        tiers[tiers.len() - 1].upper_bound,
        None,
        "last tier is open-ended"
    );
    let top = (f64::from(max) * target * 1.5).ceil() as u32 + 10;
    for backlog in 1..=top {
        let got = step_for(&steps, f64::from(backlog), 0.0, true);
        let want = i64::from(seed_desired(backlog, target, max));
        assert_eq!(
            got,
            Some(want),
            "target_value={target} max_capacity={max}: backlog {backlog}"
        );
    }
}

#[test]
fn step_semantics_pick_bounds_as_aws_does() {
    let steps = [
        Step {
            lower: Some(0.0),
            upper: Some(6.0),
            capacity: 1,
        },
        Step {
            lower: Some(6.0),
            upper: None,
            capacity: 2,
        },
    ];
    assert_eq!(step_for(&steps, 5.0, 0.0, true), Some(1));
    assert_eq!(
        step_for(&steps, 6.0, 0.0, true),
        Some(2),
        "lower bound inclusive above"
    );
    assert_eq!(step_for(&steps, 100.0, 0.0, true), Some(2));
    assert_eq!(step_for(&steps, -1.0, 0.0, true), None);
    let below = [Step {
        lower: None,
        upper: Some(0.0),
        capacity: 0,
    }];
    assert_eq!(
        step_for(&below, 0.0, 0.0, false),
        Some(0),
        "upper bound inclusive below"
    );
    assert_eq!(step_for(&below, 1.0, 0.0, false), None);
}

#[test]
fn seed_table_reads_as_the_design_document_says() {
    let rows = [
        (0, 0),
        (1, 1),
        (5, 1),
        (6, 2),
        (10, 2),
        (11, 3),
        (15, 3),
        (25, 5),
        (45, 9),
    ];
    for (backlog, desired) in rows {
        assert_eq!(seed_desired(backlog, 5.0, 10), desired, "backlog {backlog}");
    }
    assert_eq!(seed_desired(46, 5.0, 10), 10);
    assert_eq!(seed_desired(500, 5.0, 10), 10);
}

// ---------------------------------------------------------------------------------------
// Static checks: fmt, validate, checkov
// ---------------------------------------------------------------------------------------

#[test]
fn terraform_files_are_formatted() -> Result<()> {
    let ws = Workspace::new()?;
    ws.run(
        "",
        &["fmt", "-check", "-recursive", "-diff", "-no-color"].map(String::from),
        Duration::from_secs(60),
    )
    .context("`terraform fmt -recursive terraform/` would change these files")?;
    Ok(())
}

fn init_and_validate(dir: &str) -> Result<()> {
    let ws = Workspace::new()?;
    ws.init(dir)?;
    ws.validate(dir)
}

#[test]
fn module_validates() -> Result<()> {
    init_and_validate(MODULE)
}

#[test]
fn local_example_validates() -> Result<()> {
    init_and_validate("examples/local")
}

#[test]
fn complete_example_validates() -> Result<()> {
    init_and_validate("examples/complete")
}

/// checkov from `CZERO_CHECKOV`, else the pinned virtualenv `cargo xtask test` installs.
fn checkov() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CZERO_CHECKOV") {
        return Ok(PathBuf::from(p));
    }
    let venv = project_root().join(".czero/venv-checkov/bin/checkov");
    ensure!(
        venv.exists(),
        "checkov not found at {}: run `cargo xtask test` once (it installs it), or set CZERO_CHECKOV",
        venv.display()
    );
    Ok(venv)
}

#[test]
fn checkov_finds_no_failed_check_and_every_skip_has_a_reason() -> Result<()> {
    let ws = Workspace::new()?;
    let mut cmd = Command::new(checkov()?);
    cmd.arg("-d")
        .arg(ws.path(""))
        .args([
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ])
        .env("BC_SKIP_MAPPING", "TRUE");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(300))?;
    let report: serde_json::Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("checkov printed no JSON report; stderr:\n{}", out.stderr))?;
    // One framework gives one object; several give a list.
    let reports = match report {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    let mut passed = 0;
    for r in &reports {
        let summary = &r["summary"];
        let failed: Vec<String> = r["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["file_path"]))
            .collect();
        assert!(
            failed.is_empty(),
            "checkov failed checks:\n{}",
            failed.join("\n")
        );
        assert_eq!(
            summary["parsing_errors"], 0,
            "checkov could not parse some files"
        );
        for skip in r["results"]["skipped_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let reason = skip["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or("");
            assert!(
                reason.trim().len() > 10,
                "skip of {} on {} has no reason",
                skip["check_id"],
                skip["resource"]
            );
        }
        passed += summary["passed"].as_u64().unwrap_or(0);
    }
    assert!(
        passed > 100,
        "checkov ran only {passed} checks: did it see the module?"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Scale-out tiers for other settings (terraform console on the tiers module: no provider)
// ---------------------------------------------------------------------------------------

fn tiers_for(ws: &Workspace, target: f64, max: u32) -> Result<Vec<Tier>> {
    let printed = ws.console(
        TIERS_MODULE,
        &[
            ("target_value", target.to_string()),
            ("max_capacity", max.to_string()),
        ],
        "jsonencode(local.tiers)",
    )?;
    // The console prints the JSON as a quoted string literal.
    let json: String =
        serde_json::from_str(&printed).with_context(|| format!("console printed {printed}"))?;
    serde_json::from_str(&json).with_context(|| format!("tiers JSON {json}"))
}

#[test]
fn tiers_give_the_seed_table_for_every_tuning_row() -> Result<()> {
    let ws = Workspace::new()?;
    ws.init(TIERS_MODULE)?;
    // The spec's defaults and its tuning rows (Low, Medium, High, Latency-sensitive), plus
    // edges: a fractional target, a single task, the 20-step maximum.
    let cases = [
        (5.0, 10),
        (5.0, 3),
        (10.0, 20),
        (2.0, 15),
        (2.5, 4),
        (1.0, 1),
        (1.0, 20),
        (7.0, 6),
    ];
    for (target, max) in cases {
        let tiers = tiers_for(&ws, target, max)?;
        check_tiers(&tiers, target, max);
    }
    Ok(())
}

#[test]
fn tiers_reject_settings_step_scaling_cannot_express() -> Result<()> {
    let ws = Workspace::new()?;
    ws.init(TIERS_MODULE)?;
    for (target, max, message) in [
        (0.5, 10, "target_value must be between 1 and 1000"),
        (5.0, 21, "max_capacity must be a whole number from 1 to 20"),
        (5.0, 0, "max_capacity must be a whole number from 1 to 20"),
    ] {
        let err = tiers_for(&ws, target, max)
            .err()
            .ok_or_else(|| anyhow!("target_value={target} max_capacity={max} was accepted"))?;
        let text = format!("{err:#}").replace('\n', " ");
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(message), "expected `{message}` in: {text}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The local example applied to moto
// ---------------------------------------------------------------------------------------

const QUEUE: &str = "custodian-jobs";
const CLUSTER: &str = "custodian-cluster";
const SERVICE: &str = "custodian-worker";
const RESOURCE_ID: &str = "service/custodian-cluster/custodian-worker";

/// A minimal Lambda zip (a `bootstrap` script) so the emulator registers the invoker and
/// its EventBridge rules; nothing runs it here.
fn invoker_zip(dir: &std::path::Path) -> Result<PathBuf> {
    let bootstrap = dir.join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\nexit 0\n").context("writing bootstrap")?;
    let zip = dir.join("invoker.zip");
    let python = czero_testkit::python()?;
    let out = run_with_timeout(
        Command::new(python).current_dir(dir).args([
            "-m",
            "zipfile",
            "-c",
            "invoker.zip",
            "bootstrap",
        ]),
        Duration::from_secs(60),
    )?;
    ensure!(out.success, "zipping bootstrap failed: {}", out.stderr);
    Ok(zip)
}

#[test]
fn local_example_applies_to_moto_reads_back_and_destroys() -> Result<()> {
    let moto = czero_testkit::Moto::start()?;
    let scratch = tempfile::tempdir()?;
    let zip = invoker_zip(scratch.path())?;

    let started = Instant::now();
    let stack = LocalExample::apply(
        &moto.endpoint(),
        &[
            ("create_invoker", "true".into()),
            ("invoker_zip_path", zip.display().to_string()),
        ],
    )?;
    let applied = started.elapsed();

    let rt = tokio::runtime::Runtime::new()?;
    let config = moto.sdk_config();
    rt.block_on(read_back(&config, &stack))?;

    let started = Instant::now();
    stack.destroy()?;
    let destroyed = started.elapsed();
    rt.block_on(check_gone(&config))?;
    eprintln!("terraform apply on moto: {applied:.1?}; destroy: {destroyed:.1?}");
    Ok(())
}

async fn read_back(config: &aws_config::SdkConfig, stack: &LocalExample) -> Result<()> {
    let queue_url = stack.output_str("queue_url")?;
    let dlq_arn = stack.output_str("dlq_arn")?;
    check_queue(config, queue_url, dlq_arn, stack.output_str("dlq_url")?).await?;
    check_service(config, stack).await?;
    check_scaling(config, stack).await?;
    ensure!(
        stack.output_str("invoker_function_name")? == "custodian-invoker",
        "invoker not created: {:?}",
        stack.outputs()["invoker_function_name"]
    );
    check_s3_permissions(stack)?;
    Ok(())
}

/// Each role policy Terraform applied, by name, as `Sid -> (actions, resources)`.
type Statements = std::collections::BTreeMap<String, (Vec<String>, Vec<String>)>;

fn role_policies(stack: &LocalExample) -> Result<std::collections::BTreeMap<String, Statements>> {
    let raw = stack.workspace().run(
        LocalExample::DIR,
        &["show", "-json", "-no-color"].map(String::from),
        Duration::from_secs(120),
    )?;
    let state: serde_json::Value = serde_json::from_str(&raw).context("terraform show -json")?;
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    };
    let mut out = std::collections::BTreeMap::new();
    let mut modules = vec![&state["values"]["root_module"]];
    while let Some(m) = modules.pop() {
        modules.extend(m["child_modules"].as_array().into_iter().flatten());
        for r in m["resources"].as_array().into_iter().flatten() {
            if r["type"] != "aws_iam_role_policy" {
                continue;
            }
            let doc: serde_json::Value = serde_json::from_str(
                r["values"]["policy"]
                    .as_str()
                    .ok_or_else(|| anyhow!("{} has no policy", r["address"]))?,
            )?;
            let mut statements = Statements::new();
            for st in doc["Statement"].as_array().into_iter().flatten() {
                let mut actions = strings(&st["Action"]);
                let mut resources = strings(&st["Resource"]);
                actions.sort();
                resources.sort();
                statements.insert(
                    st["Sid"].as_str().unwrap_or_default().to_owned(),
                    (actions, resources),
                );
            }
            let name = r["values"]["name"].as_str().unwrap_or_default().to_owned();
            out.insert(name, statements);
        }
    }
    Ok(out)
}

/// What the invoker and the worker do in the policy bucket, and nothing more: the invoker
/// reads the mapping, HEADs policies, lists (for 404s) and writes claim checks; the worker
/// reads policies at pinned versions and claim checks, and deletes nothing.
fn check_s3_permissions(stack: &LocalExample) -> Result<()> {
    let bucket = format!("arn:aws:s3:::{}", stack.output_str("policy_bucket")?);
    let policies = role_policies(stack)?;
    let s3 = |role: &str| -> Result<Statements> {
        Ok(policies
            .get(role)
            .ok_or_else(|| anyhow!("no role policy `{role}` in {:?}", policies.keys()))?
            .iter()
            .filter(|(_, (actions, _))| actions.iter().any(|a| a.starts_with("s3:")))
            .map(|(sid, v)| (sid.clone(), v.clone()))
            .collect())
    };
    let pair = |actions: &[&str], resources: &[String]| {
        (
            actions.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            resources.to_vec(),
        )
    };
    let readable = [format!("{bucket}/config/*"), format!("{bucket}/policies/*")];
    let claim_checks = [format!("{bucket}/jobs/*")];
    let expected_invoker: Statements = [
        ("ReadPolicies".into(), pair(&["s3:GetObject"], &readable)),
        (
            "MissingKeysAre404".into(),
            pair(&["s3:ListBucket"], std::slice::from_ref(&bucket)),
        ),
        (
            "WriteClaimChecks".into(),
            pair(&["s3:PutObject"], &claim_checks),
        ),
    ]
    .into();
    assert_eq!(
        s3("invoker")?,
        expected_invoker,
        "invoker role, S3 statements"
    );
    let task = s3("task")?;
    assert_eq!(
        task.get("ReadPolicies"),
        Some(&pair(&["s3:GetObject", "s3:GetObjectVersion"], &readable)),
        "worker role reads pinned policy versions"
    );
    assert_eq!(
        task.get("ReadClaimChecks"),
        Some(&pair(&["s3:GetObject"], &claim_checks)),
        "worker role reads claim checks"
    );
    for (sid, (actions, resources)) in &task {
        if resources.iter().any(|r| r.starts_with(&bucket)) {
            assert!(
                actions.iter().all(|a| a.starts_with("s3:Get")),
                "worker statement {sid} may change the policy bucket: {actions:?}"
            );
        }
    }
    Ok(())
}

async fn check_queue(
    config: &aws_config::SdkConfig,
    queue_url: &str,
    dlq_arn: &str,
    dlq_url: &str,
) -> Result<()> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(config);
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let redrive: serde_json::Value = serde_json::from_str(
        attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .ok_or_else(|| anyhow!("queue has no RedrivePolicy"))?,
    )?;
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn);
    assert_eq!(redrive["maxReceiveCount"].as_i64(), Some(5));
    let attr = |name: QueueAttributeName| attrs.get(&name).map(String::as_str);
    assert_eq!(attr(QueueAttributeName::SqsManagedSseEnabled), Some("true"));
    // The worker's job timeout (300 s) plus the margin.
    assert_eq!(attr(QueueAttributeName::VisibilityTimeout), Some("360"));
    assert_eq!(
        attr(QueueAttributeName::ReceiveMessageWaitTimeSeconds),
        Some("20")
    );

    let dlq = sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(QueueAttributeName::SqsManagedSseEnabled)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    assert_eq!(
        dlq.get(&QueueAttributeName::SqsManagedSseEnabled)
            .map(String::as_str),
        Some("true"),
        "the DLQ is encrypted too"
    );
    Ok(())
}

async fn check_service(config: &aws_config::SdkConfig, stack: &LocalExample) -> Result<()> {
    let ecs = aws_sdk_ecs::Client::new(config);
    let services = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await?;
    let service = services
        .services()
        .first()
        .ok_or_else(|| anyhow!("service {SERVICE} not found in {CLUSTER}"))?;
    assert_eq!(
        service.desired_count(),
        0,
        "the service starts at zero tasks"
    );
    assert_eq!(service.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let vpc = service
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .ok_or_else(|| anyhow!("service has no awsvpc configuration"))?;
    assert!(
        !vpc.subnets().is_empty(),
        "service runs in the example's subnet"
    );
    assert_eq!(
        vpc.assign_public_ip().map(|a| a.as_str()),
        Some("DISABLED"),
        "no public IP by default"
    );

    let task_def = service
        .task_definition()
        .ok_or_else(|| anyhow!("service has no task definition"))?;
    let td = ecs
        .describe_task_definition()
        .task_definition(task_def)
        .send()
        .await?
        .task_definition
        .ok_or_else(|| anyhow!("task definition {task_def} not found"))?;
    assert_eq!(td.cpu(), Some("256"));
    assert_eq!(td.memory(), Some("512"));
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    let container = td
        .container_definitions()
        .first()
        .ok_or_else(|| anyhow!("task definition has no container"))?;
    assert_eq!(container.readonly_root_filesystem(), Some(true));
    assert_eq!(container.stop_timeout(), Some(120));
    let user = container.user().unwrap_or("root");
    assert!(
        !user.is_empty() && user != "root" && !user.starts_with("0"),
        "the worker must not run as root (user {user:?})"
    );
    let env: std::collections::BTreeMap<&str, &str> = container
        .environment()
        .iter()
        .filter_map(|kv| Some((kv.name()?, kv.value()?)))
        .collect();
    assert_eq!(
        env.get("SQS_QUEUE_URL").copied(),
        Some(stack.output_str("queue_url")?)
    );
    assert_eq!(
        env.get("POLICY_BUCKET").copied(),
        Some(stack.output_str("policy_bucket")?)
    );
    assert_eq!(
        env.get("OUTPUT_BUCKET").copied(),
        Some(stack.output_str("output_bucket")?)
    );
    assert_eq!(
        env.get("DLQ_URL").copied(),
        Some(stack.output_str("dlq_url")?)
    );
    assert_eq!(env.get("JOB_TIMEOUT_SECONDS").copied(), Some("300"));
    assert_eq!(env.get("MAX_EMPTY_RECEIVES").copied(), Some("3"));
    assert_eq!(env.get("WAIT_TIME_SECONDS").copied(), Some("20"));
    assert_eq!(env.get("IDLE_EXIT").copied(), Some("false"));
    let log = container
        .log_configuration()
        .ok_or_else(|| anyhow!("container has no log configuration"))?;
    assert_eq!(log.log_driver().as_str(), "awslogs");
    assert_eq!(
        log.options()
            .and_then(|o| o.get("awslogs-group"))
            .map(String::as_str),
        Some("/aws/ecs/custodian-worker")
    );
    Ok(())
}

async fn check_scaling(config: &aws_config::SdkConfig, stack: &LocalExample) -> Result<()> {
    let aas = aws_sdk_applicationautoscaling::Client::new(config);
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(RESOURCE_ID)
        .send()
        .await?;
    let target = targets
        .scalable_targets()
        .first()
        .ok_or_else(|| anyhow!("no scalable target for {RESOURCE_ID}"))?;
    assert_eq!((target.min_capacity(), target.max_capacity()), (0, 10));

    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(RESOURCE_ID)
        .send()
        .await?;
    let policy = |arn: &str| -> Result<ScalingPolicy> {
        policies
            .scaling_policies()
            .iter()
            .find(|p| p.policy_arn() == arn)
            .cloned()
            .ok_or_else(|| anyhow!("scaling policy {arn} not found"))
    };
    let scale_out = policy(stack.output_str("autoscaling_scale_out_policy_arn")?)?;
    let scale_in = policy(stack.output_str("autoscaling_scale_in_policy_arn")?)?;
    for (p, cooldown) in [(&scale_out, 60), (&scale_in, 300)] {
        let c = p
            .step_scaling_policy_configuration()
            .ok_or_else(|| anyhow!("{} is not a step policy", p.policy_name()))?;
        assert_eq!(
            c.adjustment_type().map(|a| a.as_str()),
            Some("ExactCapacity")
        );
        assert_eq!(
            c.metric_aggregation_type().map(|a| a.as_str()),
            Some("Maximum")
        );
        assert_eq!(c.cooldown(), Some(cooldown), "{}", p.policy_name());
    }
    let steps = |p: &ScalingPolicy| -> Vec<Step> {
        p.step_scaling_policy_configuration()
            .map(|c| c.step_adjustments().iter().map(Step::from).collect())
            .unwrap_or_default()
    };
    let (out_steps, in_steps) = (steps(&scale_out), steps(&scale_in));

    let cw = aws_sdk_cloudwatch::Client::new(config);
    let out_name = stack.output_str("autoscaling_scale_out_alarm_name")?;
    let in_name = stack.output_str("autoscaling_scale_in_alarm_name")?;
    let alarms = cw
        .describe_alarms()
        .alarm_names(out_name)
        .alarm_names(in_name)
        .alarm_names("ecs-service-stuck-running")
        .alarm_names("sqs-queue-backlog")
        .alarm_names("custodian-dlq-not-empty")
        .send()
        .await?;
    let alarm = |name: &str| -> Result<MetricAlarm> {
        alarms
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name))
            .cloned()
            .ok_or_else(|| anyhow!("alarm {name} not found"))
    };
    let out_alarm = alarm(out_name)?;
    let in_alarm = alarm(in_name)?;
    check_backlog_alarm(&out_alarm, scale_out.policy_arn(), 1, false)?;
    // The local example turns fast wake on, so the scale-in alarm carries the guard.
    check_backlog_alarm(&in_alarm, scale_in.policy_arn(), 5, true)?;

    // The whole loop as AWS runs it, against the seed's table: whichever alarm breaches at
    // this backlog runs its policy, and the policy's matching step gives the task count.
    for backlog in 0..=60u32 {
        let b = f64::from(backlog);
        let mut decided = Vec::new();
        for (a, steps) in [(&out_alarm, &out_steps), (&in_alarm, &in_steps)] {
            let op = a
                .comparison_operator()
                .ok_or_else(|| anyhow!("alarm without operator"))?;
            let threshold = a
                .threshold()
                .ok_or_else(|| anyhow!("alarm without threshold"))?;
            if breaches(op, threshold, b) {
                let above = matches!(
                    op,
                    ComparisonOperator::GreaterThanThreshold
                        | ComparisonOperator::GreaterThanOrEqualToThreshold
                );
                decided.push(step_for(steps, b, threshold, above));
            }
        }
        let want = i64::from(seed_desired(backlog, 5.0, 10));
        assert_eq!(decided, vec![Some(want)], "backlog {backlog}");
    }

    // The operational alarms, as the design document defines them (namespace corrected).
    let stuck = alarm("ecs-service-stuck-running")?;
    assert_eq!(stuck.namespace(), Some("ECS/ContainerInsights"));
    assert_eq!(stuck.metric_name(), Some("DesiredTaskCount"));
    assert_eq!(stuck.statistic().map(|s| s.as_str()), Some("Average"));
    assert_eq!(
        (
            stuck.period(),
            stuck.threshold(),
            stuck.evaluation_periods()
        ),
        (Some(600), Some(1.0), Some(6))
    );
    assert!(
        stuck
            .dimensions()
            .iter()
            .any(|d| d.name() == Some("ServiceName") && d.value() == Some(SERVICE))
    );
    let backlog = alarm("sqs-queue-backlog")?;
    assert_eq!(backlog.namespace(), Some("AWS/SQS"));
    assert_eq!(backlog.metric_name(), Some("ApproximateAgeOfOldestMessage"));
    assert_eq!(backlog.statistic().map(|s| s.as_str()), Some("Maximum"));
    assert_eq!(
        (
            backlog.period(),
            backlog.threshold(),
            backlog.evaluation_periods()
        ),
        (Some(300), Some(600.0), Some(2))
    );
    assert_eq!(
        backlog.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanThreshold)
    );
    let dlq = alarm("custodian-dlq-not-empty")?;
    assert!(
        dlq.dimensions()
            .iter()
            .any(|d| d.value() == Some(&format!("{QUEUE}-dlq")))
    );
    Ok(())
}

/// A scaling alarm: metric math `m1 + m2` over the queue's visible and in-flight counts
/// (60 s, Maximum), one action, the given policy. With `guard` (the scale-in alarm when
/// fast wake is on) the sum counts only while the service runs a task, by Container
/// Insights' `RunningTaskCount` as `m3`.
fn check_backlog_alarm(
    alarm: &MetricAlarm,
    policy_arn: &str,
    periods: i32,
    guard: bool,
) -> Result<()> {
    let name = alarm.alarm_name().unwrap_or("?");
    assert_eq!(
        alarm.alarm_actions(),
        [policy_arn.to_string()],
        "{name} actions"
    );
    assert_eq!(
        alarm.evaluation_periods(),
        Some(periods),
        "{name} evaluation periods"
    );
    assert_eq!(alarm.threshold(), Some(0.0), "{name} threshold");
    let metrics = alarm.metrics();
    let expr = metrics
        .iter()
        .find(|m| m.return_data() == Some(true))
        .ok_or_else(|| anyhow!("{name} returns no metric"))?;
    let expected = if guard {
        "IF(FILL(m3, 0) > 0, m1 + m2, 1)"
    } else {
        "m1 + m2"
    };
    assert_eq!(expr.expression(), Some(expected), "{name} expression");
    let running = metrics.iter().find(|m| m.id() == Some("m3"));
    if guard {
        let stat = running
            .and_then(|m| m.metric_stat())
            .ok_or_else(|| anyhow!("{name} has no metric m3"))?;
        let metric = stat
            .metric()
            .ok_or_else(|| anyhow!("{name} m3 has no metric"))?;
        assert_eq!(
            (metric.namespace(), metric.metric_name()),
            (Some("ECS/ContainerInsights"), Some("RunningTaskCount")),
            "{name} m3"
        );
        assert_eq!((stat.period(), stat.stat()), (Some(60), Some("Maximum")));
        let mut dims: Vec<(String, String)> = metric
            .dimensions()
            .iter()
            .map(|d| {
                (
                    d.name().unwrap_or("").to_string(),
                    d.value().unwrap_or("").to_string(),
                )
            })
            .collect();
        dims.sort();
        assert_eq!(
            dims,
            [
                ("ClusterName".to_string(), CLUSTER.to_string()),
                ("ServiceName".to_string(), SERVICE.to_string())
            ],
            "{name} m3 dimensions"
        );
    } else {
        assert!(running.is_none(), "{name} has an unexpected m3");
    }
    let mut names = Vec::new();
    for id in ["m1", "m2"] {
        let stat = metrics
            .iter()
            .find(|m| m.id() == Some(id))
            .and_then(|m| m.metric_stat())
            .ok_or_else(|| anyhow!("{name} has no metric {id}"))?;
        let metric = stat
            .metric()
            .ok_or_else(|| anyhow!("{name} {id} has no metric"))?;
        assert_eq!(metric.namespace(), Some("AWS/SQS"));
        assert_eq!((stat.period(), stat.stat()), (Some(60), Some("Maximum")));
        assert!(
            metric
                .dimensions()
                .iter()
                .any(|d| d.name() == Some("QueueName") && d.value() == Some(QUEUE)),
            "{name} {id} watches {QUEUE}"
        );
        names.push(metric.metric_name().unwrap_or("").to_string());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesVisible"
        ]
    );
    Ok(())
}

async fn check_gone(config: &aws_config::SdkConfig) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let queues = sqs.list_queues().queue_name_prefix(QUEUE).send().await?;
    ensure!(
        queues.queue_urls().is_empty(),
        "queues left after destroy: {:?}",
        queues.queue_urls()
    );
    let aas = aws_sdk_applicationautoscaling::Client::new(config);
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .send()
        .await?;
    ensure!(
        targets.scalable_targets().is_empty(),
        "scalable target left after destroy"
    );
    let cw = aws_sdk_cloudwatch::Client::new(config);
    let alarms = cw.describe_alarms().send().await?;
    ensure!(
        alarms.metric_alarms().is_empty(),
        "alarms left after destroy: {:?}",
        alarms
            .metric_alarms()
            .iter()
            .map(|a| a.alarm_name())
            .collect::<Vec<_>>()
    );
    Ok(())
}
