//! The Terraform stack: formatting, validation, checkov, the scale-out tiers for the
//! design document's tuning rows, and `terraform/examples/local` applied to moto, read back
//! through the AWS SDK (queues and who may send to them, service, scalable target, step
//! policies, alarms and the topic they notify, the EventBridge rule's pattern) and its
//! state (the roles, decided as IAM would), and destroyed again.

use anyhow::{Context, Result, anyhow, ensure};
use aws_sdk_applicationautoscaling::types::{ScalingPolicy, ServiceNamespace, StepAdjustment};
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm};
use czero_integration::iam::{Decision, decide};
use czero_integration::terraform::{
    LocalExample, Workspace, project_root, run_with_timeout, stub_invoker_zip,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const MODULE: &str = "modules/custodian-zero";
const TIERS_MODULE: &str = "modules/custodian-zero/modules/scaling-tiers";
const MEMBER_ROLE_MODULE: &str = "modules/member-role";
const FORWARDER_MODULE: &str = "modules/event-forwarder";

/// Every Terraform directory of the tree: checkov must have checked resources in each.
const TERRAFORM_DIRS: &[&str] = &[
    MODULE,
    MEMBER_ROLE_MODULE,
    FORWARDER_MODULE,
    "examples/complete",
    "examples/local",
    "examples/organization",
];

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

#[test]
fn organization_example_validates() -> Result<()> {
    init_and_validate("examples/organization")
}

#[test]
fn member_role_module_validates() -> Result<()> {
    init_and_validate(MEMBER_ROLE_MODULE)
}

#[test]
fn event_forwarder_module_validates() -> Result<()> {
    init_and_validate(FORWARDER_MODULE)
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
    let mut seen: Vec<String> = Vec::new();
    for r in &reports {
        for c in r["results"]["passed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            seen.push(c["file_path"].as_str().unwrap_or_default().to_string());
        }
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
    for dir in TERRAFORM_DIRS {
        assert!(
            seen.iter()
                .any(|f| f.trim_start_matches('/').starts_with(&format!("{dir}/"))),
            "checkov passed no check in terraform/{dir}"
        );
    }
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

#[test]
fn local_example_applies_to_moto_reads_back_and_destroys() -> Result<()> {
    let moto = czero_testkit::Moto::start()?;
    let scratch = tempfile::tempdir()?;
    let zip = stub_invoker_zip(scratch.path())?;

    let started = Instant::now();
    let stack = LocalExample::apply(
        &moto.endpoint(),
        &[
            ("create_invoker", "true".into()),
            ("invoker_zip_path", zip.display().to_string()),
            ("alarm_email_endpoints", format!("[\"{ALARM_EMAIL}\"]")),
            (
                "protected_bucket_arns",
                format!("[\"{OPERATOR_PROTECTED}\"]"),
            ),
            ("member_role_name", MEMBER_ROLE.into()),
            ("enable_security_hub_updates", "true".into()),
        ],
    )?;
    let applied = started.elapsed();

    let rt = tokio::runtime::Runtime::new()?;
    let config = moto.sdk_config();
    rt.block_on(read_back(&config, &stack))?;
    check_event_patterns(&moto, &stack)?;

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
    let state = terraform_state(stack.workspace(), LocalExample::DIR)?;
    // The test applies the example with member roles and Security Hub updates on.
    check_roles(stack, &state, true, true)?;
    check_queue_senders(config, stack).await?;
    check_invoker_failures(config, stack, &state).await?;
    check_alarm_topic(config, stack, &state).await?;
    check_ledger_expiry(config, stack).await?;
    Ok(())
}

const ALARM_EMAIL: &str = "security-oncall@example.com";
/// The role every member account gives the worker (`member_role_name`).
const MEMBER_ROLE: &str = "custodian-zero-member";
/// A member account of the organization, not the stack's own (123456789012).
const MEMBER_ACCOUNT: &str = "210987654321";
/// A bucket the operator lists in `protected_bucket_arns`.
const OPERATOR_PROTECTED: &str = "arn:aws:s3:::org-cloudtrail-logs";

/// `terraform show -json` in `dir`: the applied state, every module's resources in one list.
fn terraform_state(ws: &Workspace, dir: &str) -> Result<Vec<serde_json::Value>> {
    let raw = ws.run(
        dir,
        &["show", "-json", "-no-color"].map(String::from),
        Duration::from_secs(120),
    )?;
    let state: serde_json::Value = serde_json::from_str(&raw).context("terraform show -json")?;
    let mut out = Vec::new();
    let mut modules = vec![state["values"]["root_module"].clone()];
    while let Some(m) = modules.pop() {
        modules.extend(m["child_modules"].as_array().cloned().unwrap_or_default());
        out.extend(m["resources"].as_array().cloned().unwrap_or_default());
    }
    Ok(out)
}

/// The state's resources of `kind` (`aws_sqs_queue`, ...).
fn of_type<'a>(state: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    state.iter().filter(|r| r["type"] == kind).collect()
}

/// The role policy Terraform attached under `name`, as a document.
fn role_policy(state: &[serde_json::Value], name: &str) -> Result<serde_json::Value> {
    let r = of_type(state, "aws_iam_role_policy")
        .into_iter()
        .find(|r| r["values"]["name"] == name)
        .ok_or_else(|| anyhow!("no role policy `{name}`"))?;
    let text = r["values"]["policy"]
        .as_str()
        .ok_or_else(|| anyhow!("role policy `{name}` has no document"))?;
    Ok(serde_json::from_str(text)?)
}

fn permissions_json() -> Result<serde_json::Value> {
    let path = project_root().join("terraform/modules/custodian-zero/permissions.json");
    Ok(serde_json::from_str(&std::fs::read_to_string(&path)?)?)
}

fn json_strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

/// Changes something (rather than reading it).
fn is_change(action: &str) -> bool {
    let name = action.split_once(':').map_or(action, |(_, n)| n);
    !["Get", "List", "Describe", "Head"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The roles as IAM would decide them, wildcards matching as they do in AWS
/// (`arn:aws:s3:::*` reaches the output bucket): the worker can change no protected bucket
/// except by writing output and ledger markers, the actions of the default policy action
/// types reach other buckets, and the invoker reads policies and writes only claim checks.
/// With `member_roles` the worker may assume the member role in any account and no other
/// role; with `security_hub` it may update findings on this account's hub only; without
/// either, neither action is granted at all.
fn check_roles(
    stack: &LocalExample,
    state: &[serde_json::Value],
    member_roles: bool,
    security_hub: bool,
) -> Result<()> {
    let task = role_policy(state, "task")?;
    let invoker = role_policy(state, "invoker")?;
    let perms = permissions_json()?;
    let policy = format!("arn:aws:s3:::{}", stack.output_str("policy_bucket")?);
    let output = format!("arn:aws:s3:::{}", stack.output_str("output_bucket")?);
    let someone_elses = "arn:aws:s3:::some-team-bucket";

    // Every S3 action the worker's policy allows anywhere, and every remediation action.
    let mut actions: Vec<String> = json_strings(&perms["protected_bucket_deny"]);
    for st in task["Statement"].as_array().into_iter().flatten() {
        if st["Effect"] == "Allow" {
            let listed = match &st["Action"] {
                serde_json::Value::String(a) => vec![a.clone()],
                other => json_strings(other),
            };
            actions.extend(listed.into_iter().filter(|a| a.starts_with("s3:")));
        }
    }
    actions.sort();
    actions.dedup();
    let remediation = json_strings(&perms["protected_bucket_deny"]);
    ensure!(
        !remediation.is_empty(),
        "permissions.json lists no remediation action"
    );
    let mut problems = Vec::new();
    for bucket in [&policy, &output, &OPERATOR_PROTECTED.to_string()] {
        for resource in [bucket.clone(), format!("{bucket}/some/key")] {
            for action in &actions {
                let d = decide(&task, action, &resource, None)?;
                let worker_writes = bucket == &output
                    && resource != *bucket
                    && ["s3:PutObject", "s3:PutObjectAcl"].contains(&action.as_str());
                if remediation.contains(action) && d != Decision::Deny {
                    problems.push(format!("{action} on {resource}: {d:?}, not denied"));
                }
                if d == Decision::Allow && is_change(action) && !worker_writes {
                    problems.push(format!("the worker may {action} on protected {resource}"));
                }
            }
        }
    }
    // The deny is scoped: the same actions still reach other buckets (every remediation
    // action of the default policy action types; delete's only when enabled).
    for action in [
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketPolicy",
        "s3:PutBucketAcl",
    ] {
        if decide(&task, action, someone_elses, None)? != Decision::Allow {
            problems.push(format!("the worker may not {action} on {someone_elses}"));
        }
    }
    if decide(&task, "s3:DeleteBucket", someone_elses, None)? == Decision::Allow {
        problems
            .push("the worker may delete buckets though `delete` is not in policy_actions".into());
    }
    // What the worker and the invoker need on the module's buckets.
    let allowed = [
        (
            &task,
            "s3:GetObject",
            format!("{policy}/policies/s3-createbucket.yml"),
        ),
        (
            &task,
            "s3:GetObjectVersion",
            format!("{policy}/policies/s3-createbucket.yml"),
        ),
        (&task, "s3:GetObject", format!("{policy}/jobs/job-1.json")),
        (
            &task,
            "s3:PutObject",
            format!("{output}/p/2026/01/01/00/resources.json.gz"),
        ),
        (
            &task,
            "s3:PutObjectAcl",
            format!("{output}/p/2026/01/01/00/resources.json.gz"),
        ),
        (&task, "s3:PutObject", format!("{output}/ledger/job-1")),
        (&task, "s3:GetObject", format!("{output}/ledger/job-1")),
        (&task, "s3:ListBucket", output.clone()),
        (&task, "s3:ListAllMyBuckets", "arn:aws:s3:::*".to_string()),
        (
            &invoker,
            "s3:GetObject",
            format!("{policy}/config/policy-mappings.json"),
        ),
        (
            &invoker,
            "s3:GetObject",
            format!("{policy}/policies/s3-createbucket.yml"),
        ),
        (&invoker, "s3:ListBucket", policy.clone()),
        (
            &invoker,
            "s3:PutObject",
            format!("{policy}/jobs/job-1.json"),
        ),
    ];
    for (doc, action, resource) in &allowed {
        if decide(doc, action, resource, None)? != Decision::Allow {
            problems.push(format!("{action} on {resource} is not allowed"));
        }
    }
    let refused = [
        (
            &task,
            "s3:PutObject",
            format!("{policy}/policies/s3-createbucket.yml"),
        ),
        (
            &task,
            "s3:DeleteObject",
            format!("{policy}/jobs/job-1.json"),
        ),
        (
            &task,
            "s3:GetObject",
            format!("{output}/p/2026/01/01/00/resources.json.gz"),
        ),
        (
            &invoker,
            "s3:PutObject",
            format!("{policy}/policies/s3-createbucket.yml"),
        ),
        (&invoker, "s3:PutObject", format!("{output}/x")),
    ];
    for (doc, action, resource) in &refused {
        if decide(doc, action, resource, None)? == Decision::Allow {
            problems.push(format!("{action} on {resource} is allowed"));
        }
    }
    // Member roles: the configured name in every account, nothing else.
    let member = |account: &str, name: &str| format!("arn:aws:iam::{account}:role/{name}");
    let assume = [
        (member(MEMBER_ACCOUNT, MEMBER_ROLE), member_roles),
        (member("123456789012", MEMBER_ROLE), member_roles),
        (
            member(MEMBER_ACCOUNT, "OrganizationAccountAccessRole"),
            false,
        ),
        (member(MEMBER_ACCOUNT, &format!("not-{MEMBER_ROLE}")), false),
        (
            member(MEMBER_ACCOUNT, &format!("{MEMBER_ROLE}-admin")),
            false,
        ),
    ];
    for (role, want) in &assume {
        let d = decide(&task, "sts:AssumeRole", role, None)?;
        if (d == Decision::Allow) != *want {
            problems.push(format!("sts:AssumeRole on {role}: {d:?}"));
        }
    }
    // Security Hub: this account's hub, in any region (the aggregation region's).
    let hubs = [
        (
            "arn:aws:securityhub:us-east-1:123456789012:hub/default",
            security_hub,
        ),
        (
            "arn:aws:securityhub:eu-west-1:123456789012:hub/default",
            security_hub,
        ),
        (
            "arn:aws:securityhub:us-east-1:210987654321:hub/default",
            false,
        ),
    ];
    for (hub, want) in hubs {
        let d = decide(&task, "securityhub:BatchUpdateFindings", hub, None)?;
        if (d == Decision::Allow) != want {
            problems.push(format!("securityhub:BatchUpdateFindings on {hub}: {d:?}"));
        }
    }
    // Every action the tables list for this deployment is granted somewhere.
    let enabled = ["delete"];
    let off_scopes: Vec<&str> = [
        ("member-roles", member_roles),
        ("security-hub", security_hub),
    ]
    .into_iter()
    .filter_map(|(scope, on)| (!on).then_some(scope))
    .collect();
    let mut listed: Vec<String> = Vec::new();
    for role in ["worker", "engine"] {
        for e in perms[role].as_array().into_iter().flatten() {
            if e["kind"] == "action" && enabled.contains(&e["feature"].as_str().unwrap_or("")) {
                continue;
            }
            if off_scopes.contains(&e["scope"].as_str().unwrap_or("")) {
                continue;
            }
            listed.extend(json_strings(&e["actions"]));
        }
    }
    for a in listed {
        // The KMS scopes resolve to no key in the local example.
        if a.starts_with("kms:Decrypt") || a.starts_with("kms:GenerateDataKey") {
            continue;
        }
        let granted = task["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|st| {
                st["Effect"] == "Allow"
                    && match &st["Action"] {
                        serde_json::Value::String(x) => *x == a,
                        other => json_strings(other).contains(&a),
                    }
            });
        if !granted {
            problems.push(format!(
                "the worker role does not grant {a} (permissions.json)"
            ));
        }
    }
    assert!(problems.is_empty(), "roles:\n{}", problems.join("\n"));
    Ok(())
}

async fn queue_attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: aws_sdk_sqs::types::QueueAttributeName,
) -> Result<String> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    attrs
        .get(&name)
        .cloned()
        .ok_or_else(|| anyhow!("{url} has no {name:?}"))
}

/// Only each queue's producers may send to it: the invoker to the job queue and its failures
/// queue, the worker to the DLQ; the account root may still (an operator's redrive).
async fn check_queue_senders(config: &aws_config::SdkConfig, stack: &LocalExample) -> Result<()> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(config);
    let invoker = stack.output_str("invoker_role_arn")?;
    let worker = stack.output_str("task_role_arn")?;
    let root = "arn:aws:iam::123456789012:root";
    let stranger = "arn:aws:iam::123456789012:role/Developer";
    let queues = [
        (
            "queue",
            stack.output_str("queue_url")?,
            vec![invoker, root],
            vec![worker, stranger],
        ),
        (
            "dlq",
            stack.output_str("dlq_url")?,
            vec![worker, root],
            vec![invoker, stranger],
        ),
        (
            "invoker failures",
            stack.output_str("invoker_failures_queue_url")?,
            vec![invoker, root],
            vec![worker, stranger],
        ),
    ];
    for (name, url, senders, others) in queues {
        let policy: serde_json::Value =
            serde_json::from_str(&queue_attribute(&sqs, url, A::Policy).await?)?;
        let arn = queue_attribute(&sqs, url, A::QueueArn).await?;
        for p in senders {
            assert_ne!(
                decide(&policy, "sqs:SendMessage", &arn, Some(p))?,
                Decision::Deny,
                "{name}: {p} may not send"
            );
        }
        for p in others {
            assert_eq!(
                decide(&policy, "sqs:SendMessage", &arn, Some(p))?,
                Decision::Deny,
                "{name}: {p} may send"
            );
        }
        assert_ne!(
            decide(&policy, "sqs:ReceiveMessage", &arn, Some(stranger))?,
            Decision::Deny,
            "{name}: the queue policy denies more than SendMessage"
        );
    }
    Ok(())
}

/// The invoker's failed events go to their own encrypted queue, kept 14 days, watched by an
/// alarm; the invoker may write it.
async fn check_invoker_failures(
    config: &aws_config::SdkConfig,
    stack: &LocalExample,
    state: &[serde_json::Value],
) -> Result<()> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(config);
    let url = stack.output_str("invoker_failures_queue_url")?;
    assert!(url.ends_with("/custodian-invoker-failures"), "{url}");
    assert_eq!(
        queue_attribute(&sqs, url, A::MessageRetentionPeriod).await?,
        "1209600"
    );
    assert_eq!(
        queue_attribute(&sqs, url, A::SqsManagedSseEnabled).await?,
        "true"
    );
    let arn = queue_attribute(&sqs, url, A::QueueArn).await?;
    let config_res = of_type(state, "aws_lambda_function_event_invoke_config");
    let destination = config_res
        .first()
        .map(|r| r["values"]["destination_config"][0]["on_failure"][0]["destination"].clone())
        .ok_or_else(|| anyhow!("no event invoke config"))?;
    assert_eq!(destination, arn, "the invoker's on-failure destination");
    let invoker = role_policy(state, "invoker")?;
    assert_eq!(
        decide(&invoker, "sqs:SendMessage", &arn, None)?,
        Decision::Allow
    );
    let dlq = stack.output_str("dlq_arn")?;
    assert_ne!(
        decide(&invoker, "sqs:SendMessage", dlq, None)?,
        Decision::Allow,
        "the invoker may still write the job DLQ"
    );
    Ok(())
}

/// The alarms notify the topic; the topic's key lets CloudWatch encrypt with it.
async fn check_alarm_topic(
    config: &aws_config::SdkConfig,
    stack: &LocalExample,
    state: &[serde_json::Value],
) -> Result<()> {
    let topic = stack.output_str("alarm_topic_arn")?;
    let said = stack.output_str("alarm_notifications")?;
    assert!(
        said.contains(topic) && said.contains(ALARM_EMAIL),
        "alarm_notifications: {said}"
    );
    let names: Vec<String> = stack.outputs()["alarm_names"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.contains(&"custodian-invoker-failures-not-empty".to_string()),
        "{names:?}"
    );
    let cw = aws_sdk_cloudwatch::Client::new(config);
    let alarms = cw
        .describe_alarms()
        .set_alarm_names(Some(names.clone()))
        .send()
        .await?;
    assert_eq!(alarms.metric_alarms().len(), names.len(), "{names:?}");
    for a in alarms.metric_alarms() {
        let name = a.alarm_name().unwrap_or("?");
        assert_eq!(
            a.alarm_actions(),
            [topic.to_string()],
            "{name} alarm actions"
        );
        assert_eq!(a.ok_actions(), [topic.to_string()], "{name} OK actions");
        if name == "custodian-invoker-failures-not-empty" {
            assert!(
                a.dimensions()
                    .iter()
                    .any(|d| d.value() == Some("custodian-invoker-failures")),
                "{name} watches the invoker-failures queue"
            );
        }
    }
    let key_arn = stack.output_str("alarm_topic_kms_key_arn")?;
    let topics = of_type(state, "aws_sns_topic");
    assert_eq!(
        topics
            .first()
            .map(|t| t["values"]["kms_master_key_id"].clone()),
        Some(serde_json::json!(key_arn)),
        "the topic is encrypted with the module's key, not alias/aws/sns"
    );
    let subs = of_type(state, "aws_sns_topic_subscription");
    assert!(
        subs.iter()
            .any(|s| s["values"]["endpoint"] == ALARM_EMAIL && s["values"]["protocol"] == "email"),
        "no e-mail subscription for {ALARM_EMAIL}"
    );
    let kms = aws_sdk_kms::Client::new(config);
    let policy = kms
        .get_key_policy()
        .key_id(key_arn)
        .policy_name("default")
        .send()
        .await?;
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap_or("{}"))?;
    let grants_cloudwatch = |action: &str| {
        doc["Statement"].as_array().into_iter().flatten().any(|st| {
            st["Effect"] == "Allow"
                && st["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                && match &st["Action"] {
                    serde_json::Value::String(a) => czero_integration::iam::glob(a, action),
                    other => json_strings(other)
                        .iter()
                        .any(|a| czero_integration::iam::glob(a, action)),
                }
        })
    };
    for action in ["kms:Decrypt", "kms:GenerateDataKey"] {
        assert!(
            grants_cloudwatch(action),
            "the key policy does not let CloudWatch {action}: {doc}"
        );
    }
    Ok(())
}

/// Ledger markers expire a day after the queue's retention (4 days by default).
async fn check_ledger_expiry(config: &aws_config::SdkConfig, stack: &LocalExample) -> Result<()> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );
    let lc = s3
        .get_bucket_lifecycle_configuration()
        .bucket(stack.output_str("output_bucket")?)
        .send()
        .await?;
    let rule = lc
        .rules()
        .iter()
        .find(|r| r.id() == Some("expire-ledger"))
        .ok_or_else(|| anyhow!("no expire-ledger rule on the output bucket"))?;
    assert_eq!(
        rule.filter().and_then(|f| f.prefix()),
        Some("ledger/"),
        "expire-ledger filter"
    );
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(5));
    Ok(())
}

/// A CloudTrail event as a member account's trail records it (forwarded to the central bus).
fn in_member_account(mut event: serde_json::Value) -> serde_json::Value {
    event["account"] = MEMBER_ACCOUNT.into();
    let identity = &mut event["detail"]["userIdentity"];
    identity["accountId"] = MEMBER_ACCOUNT.into();
    if identity.get("sessionContext").is_some() {
        identity["sessionContext"]["sessionIssuer"]["accountId"] = MEMBER_ACCOUNT.into();
    }
    if let Some(arn) = identity["arn"].as_str() {
        identity["arn"] = arn
            .replace(":123456789012:", &format!(":{MEMBER_ACCOUNT}:"))
            .into();
    }
    event
}

/// The deployed CloudTrail rule leaves out the worker's own calls, in this account and
/// through the member role in any other, and keeps everyone else's, users and root included
/// (they have no sessionIssuer), as EventBridge's TestEventPattern says.
fn check_event_patterns(moto: &czero_testkit::Moto, stack: &LocalExample) -> Result<()> {
    use czero_integration::events;
    let worker = stack.output_str("task_role_arn")?;
    let region = "us-east-1";
    let member_role = format!("arn:aws:iam::{MEMBER_ACCOUNT}:role/{MEMBER_ROLE}");
    let lookalike = format!("arn:aws:iam::{MEMBER_ACCOUNT}:role/not-{MEMBER_ROLE}");
    let patterns = &stack.outputs()["event_patterns"];
    let deployed: serde_json::Value = serde_json::from_str(
        patterns["custodian-invoker-cloudtrail-s3"]
            .as_str()
            .ok_or_else(|| {
                anyhow!("event_patterns has no custodian-invoker-cloudtrail-s3: {patterns}")
            })?,
    )?;
    ensure!(
        deployed["detail"]["eventSource"] == serde_json::json!(["s3.amazonaws.com"]),
        "event_patterns output is not the CloudTrail rule's pattern: {deployed}"
    );
    let cases = [
        (
            "the worker's own PutBucketEncryption",
            events::s3_call_by(
                "PutBucketEncryption",
                "b",
                region,
                events::assumed_role_identity(worker, "ecs-task"),
            ),
            false,
        ),
        (
            "an IAM user's CreateBucket",
            events::s3_call_by(
                "CreateBucket",
                "b",
                region,
                events::iam_user_identity("alice"),
            ),
            true,
        ),
        (
            "the root user's PutBucketPolicy",
            events::s3_call_by("PutBucketPolicy", "b", region, events::root_identity()),
            true,
        ),
        (
            "another role's DeleteBucketEncryption",
            events::s3_call_by(
                "DeleteBucketEncryption",
                "b",
                region,
                events::assumed_role_identity("arn:aws:iam::123456789012:role/Developer", "dev"),
            ),
            true,
        ),
        (
            "another role's GetObject (not a listed call)",
            events::s3_call("GetObject", "b", region),
            false,
        ),
        (
            "the worker's PutBucketEncryption through a member account's member role",
            in_member_account(events::s3_call_by(
                "PutBucketEncryption",
                "b",
                region,
                events::assumed_role_identity(&member_role, "czero-job-1"),
            )),
            false,
        ),
        (
            "a member account's own role's PutBucketPolicy",
            in_member_account(events::s3_call_by(
                "PutBucketPolicy",
                "b",
                region,
                events::assumed_role_identity(
                    &format!("arn:aws:iam::{MEMBER_ACCOUNT}:role/Developer"),
                    "dev",
                ),
            )),
            true,
        ),
        (
            "a role whose name only ends like the member role's",
            in_member_account(events::s3_call_by(
                "DeleteBucketEncryption",
                "b",
                region,
                events::assumed_role_identity(&lookalike, "x"),
            )),
            true,
        ),
        (
            "an IAM user's CreateBucket in a member account",
            in_member_account(events::s3_call_by(
                "CreateBucket",
                "b",
                region,
                events::iam_user_identity("bob"),
            )),
            true,
        ),
    ];
    let events: Vec<serde_json::Value> = cases.iter().map(|(_, e, _)| e.clone()).collect();
    let testing = czero_integration::iam::Identity {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    };
    let got = czero_integration::iam::test_event_pattern(
        &moto.endpoint(),
        &testing,
        "custodian-invoker-cloudtrail-s3",
        &events,
    )?;
    for ((what, _, want), got) in cases.iter().zip(got) {
        assert_eq!(got, *want, "cloudtrail-s3 rule on {what}");
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
    assert_eq!(
        env.get("CLAIM_CHECK_BUCKET").copied(),
        Some(stack.output_str("policy_bucket")?)
    );
    assert_eq!(env.get("AWS_ACCOUNT_ID").copied(), Some("123456789012"));
    assert_eq!(env.get("LEDGER_PREFIX").copied(), Some("ledger"));
    let invoker_env = &stack.outputs()["invoker_environment"];
    let worker_role = stack.output_str("task_role_arn")?;
    assert_eq!(
        invoker_env["EXCLUDE_PRINCIPAL_ARNS"].as_str(),
        Some(format!("{worker_role},arn:aws:iam::*:role/{MEMBER_ROLE}").as_str()),
        "the invoker skips the worker's own calls, in this account and through member roles"
    );
    assert_eq!(env.get("MEMBER_ROLE_NAME").copied(), Some(MEMBER_ROLE));
    assert!(
        !env.contains_key("MEMBER_ROLE_EXTERNAL_ID"),
        "no external id was configured"
    );
    assert_eq!(stack.outputs()["member_roles_configured"], true);
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

// ---------------------------------------------------------------------------------------
// The member-account modules applied to moto
// ---------------------------------------------------------------------------------------

/// A root applying the member-account modules to moto: the member role (with an external
/// id and a protected bucket), an audit-only one, and a forwarder.
const MEMBER_ACCOUNT_ROOT: &str = r#"
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    events = var.endpoint
    iam    = var.endpoint
    sts    = var.endpoint
  }
}

variable "endpoint" {
  type = string
}

resource "aws_iam_role" "worker" {
  name = "custodian-worker-task"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ecs-tasks.amazonaws.com" } }]
  })
}

module "member_role" {
  source = "../modules/member-role"

  worker_role_arn       = aws_iam_role.worker.arn
  external_id           = "czero-ext-1"
  protected_bucket_arns = ["arn:aws:s3:::org-cloudtrail-logs"]
}

module "audit_role" {
  source = "../modules/member-role"

  role_name       = "custodian-zero-audit"
  worker_role_arn = aws_iam_role.worker.arn
  audit_only      = true
}

module "forwarder" {
  source = "../modules/event-forwarder"

  event_patterns = { "custodian-invoker-cloudtrail-s3" = jsonencode({ source = ["aws.s3"] }) }
  event_bus_arn  = "arn:aws:events:us-east-1:123456789012:event-bus/default"
}

output "worker_role_arn" {
  value = aws_iam_role.worker.arn
}

output "forwarder_role_arn" {
  value = module.forwarder.role_arn
}
"#;

#[test]
fn member_account_modules_apply_to_moto() -> Result<()> {
    let moto = czero_testkit::Moto::start()?;
    let ws = Workspace::new()?;
    let dir = "test-member-account";
    std::fs::create_dir_all(ws.path(dir))?;
    std::fs::write(ws.path(dir).join("main.tf"), MEMBER_ACCOUNT_ROOT)?;
    ws.init(dir)?;
    let vars = [("endpoint", moto.endpoint())];
    ws.apply(dir, &vars)?;
    let checked = check_member_account(&ws, dir);
    let destroyed = ws.destroy(dir, &vars);
    checked?;
    destroyed
}

/// A JSON document Terraform stored as a string attribute.
fn document(resource: &serde_json::Value, attribute: &str) -> Result<serde_json::Value> {
    let text = resource["values"][attribute]
        .as_str()
        .ok_or_else(|| anyhow!("{} has no {attribute}", resource["address"]))?;
    Ok(serde_json::from_str(text)?)
}

/// The member roles trust only the worker's role (with the external id when one is set)
/// and allow exactly the enabled rows of the engine's table on this account's buckets and
/// keys, reads only when audit-only; the protected bucket is denied every remediation; the
/// forwarder may put events on the central bus and nowhere else.
fn check_member_account(ws: &Workspace, dir: &str) -> Result<()> {
    let state = terraform_state(ws, dir)?;
    let outputs = ws.outputs(dir)?;
    let worker = outputs["worker_role_arn"]
        .as_str()
        .ok_or_else(|| anyhow!("no worker_role_arn output"))?;
    let perms = permissions_json()?;
    let role = |name: &str| {
        of_type(&state, "aws_iam_role")
            .into_iter()
            .find(|r| r["values"]["name"] == name)
            .ok_or_else(|| anyhow!("no role {name}"))
    };
    let policy_of = |name: &str| -> Result<serde_json::Value> {
        let r = of_type(&state, "aws_iam_role_policy")
            .into_iter()
            .find(|r| r["values"]["role"] == name)
            .ok_or_else(|| anyhow!("no role policy on {name}"))?;
        document(r, "policy")
    };
    let mut problems = Vec::new();

    // Trust: the worker's role alone; the external id where it was set.
    for (name, external_id) in [
        ("custodian-zero-member", Some("czero-ext-1")),
        ("custodian-zero-audit", None),
    ] {
        let trust = document(role(name)?, "assume_role_policy")?;
        let statements = trust["Statement"].as_array().cloned().unwrap_or_default();
        ensure!(statements.len() == 1, "{name} trust: {trust}");
        let st = &statements[0];
        let principals = json_strings(&st["Principal"]["AWS"]);
        let principal = st["Principal"]["AWS"].as_str().map(str::to_owned);
        if principal.as_deref() != Some(worker) && principals != [worker.to_string()] {
            problems.push(format!(
                "{name} trusts {} instead of {worker}",
                st["Principal"]
            ));
        }
        let condition = &st["Condition"]["StringEquals"]["sts:ExternalId"];
        let got = condition
            .as_str()
            .map(str::to_owned)
            .or_else(|| json_strings(condition).first().cloned());
        if got.as_deref() != external_id {
            problems.push(format!("{name} external id condition: {}", st["Condition"]));
        }
    }

    // Permissions: the engine's rows for the scopes a member account has, against a
    // resource of each scope; enabled = every resource and filter row and the default
    // policy action types (not `delete`).
    let default_actions = [
        "set-bucket-encryption",
        "set-public-block",
        "delete-global-grants",
        "toggle-versioning",
        "tag",
        "remove-tag",
        "unmark",
        "mark-for-op",
        "set-statements",
    ];
    let sample = |scope: &str| match scope {
        "any" => Some("*"),
        "buckets" => Some("arn:aws:s3:::team-bucket"),
        "objects" => Some("arn:aws:s3:::team-bucket/some/key"),
        "kms-keys" => Some("arn:aws:kms:eu-west-1:123456789012:key/1234abcd"),
        _ => None,
    };
    let mut rows: Vec<(String, String, bool)> = Vec::new();
    for e in perms["engine"].as_array().into_iter().flatten() {
        let scope = e["scope"].as_str().unwrap_or_default();
        let Some(resource) = sample(scope) else {
            continue;
        };
        let enabled = e["kind"] != "action"
            || default_actions.contains(&e["feature"].as_str().unwrap_or_default());
        for a in json_strings(&e["actions"]) {
            rows.push((a, resource.to_string(), enabled));
        }
    }
    // An action is granted on a scope when any enabled row asks for it there.
    let wanted = |action: &str, resource: &str| {
        rows.iter()
            .any(|(a, r, on)| *on && a == action && r == resource)
    };
    let member = policy_of("custodian-zero-member")?;
    let audit = policy_of("custodian-zero-audit")?;
    let mut changes_checked = 0;
    for (action, resource, _) in &rows {
        let want = wanted(action, resource);
        let d = decide(&member, action, resource, None)?;
        if (d == Decision::Allow) != want {
            problems.push(format!("member role: {action} on {resource}: {d:?}"));
        }
        let want_audit = want && !is_change(action);
        let d = decide(&audit, action, resource, None)?;
        if (d == Decision::Allow) != want_audit {
            problems.push(format!("audit-only role: {action} on {resource}: {d:?}"));
        }
        if want && is_change(action) {
            changes_checked += 1;
        }
    }
    ensure!(
        changes_checked > 5,
        "only {changes_checked} remediation actions checked: is the engine table empty?"
    );
    if decide(
        &member,
        "kms:DescribeKey",
        "arn:aws:kms:eu-west-1:999999999999:key/1",
        None,
    )? == Decision::Allow
    {
        problems.push("the member role may describe another account's keys".into());
    }
    // The protected bucket: every remediation action and object write denied, reads not.
    let protected = "arn:aws:s3:::org-cloudtrail-logs";
    let mut denied = json_strings(&perms["protected_bucket_deny"]);
    denied.extend(["s3:PutObject".to_string(), "s3:PutObjectAcl".to_string()]);
    for resource in [protected.to_string(), format!("{protected}/AWSLogs/x")] {
        for action in &denied {
            let d = decide(&member, action, &resource, None)?;
            if d != Decision::Deny {
                problems.push(format!(
                    "member role: {action} on protected {resource}: {d:?}"
                ));
            }
        }
    }
    if decide(&member, "s3:GetBucketPolicy", protected, None)? != Decision::Allow {
        problems.push("the member role may not read the protected bucket's policy".into());
    }

    // The forwarder: its rule targets the central bus with its role, which may put events
    // there only.
    let bus = "arn:aws:events:us-east-1:123456789012:event-bus/default";
    let forwarder_role = outputs["forwarder_role_arn"]
        .as_str()
        .ok_or_else(|| anyhow!("no forwarder_role_arn output"))?;
    let targets = of_type(&state, "aws_cloudwatch_event_target");
    ensure!(targets.len() == 1, "{} forwarding targets", targets.len());
    if targets[0]["values"]["arn"] != bus || targets[0]["values"]["role_arn"] != forwarder_role {
        problems.push(format!("forwarding target: {}", targets[0]["values"]));
    }
    let name = forwarder_role.rsplit('/').next().unwrap_or_default();
    let forwarder = policy_of(name)?;
    if decide(&forwarder, "events:PutEvents", bus, None)? != Decision::Allow {
        problems.push("the forwarder may not put events on the central bus".into());
    }
    let other = "arn:aws:events:us-east-1:123456789012:event-bus/other";
    if decide(&forwarder, "events:PutEvents", other, None)? == Decision::Allow {
        problems.push(format!("the forwarder may put events on {other}"));
    }
    assert!(
        problems.is_empty(),
        "member account:\n{}",
        problems.join("\n")
    );
    Ok(())
}

/// Without a topic or e-mail addresses the alarms have no actions, and the module says so
/// plainly in `alarm_notifications` (from the plan: nothing is created).
#[test]
fn alarms_without_a_topic_notify_nobody_and_the_module_says_so() -> Result<()> {
    let moto = czero_testkit::Moto::start()?;
    let ws = Workspace::new()?;
    ws.init(LocalExample::DIR)?;
    ws.run(
        LocalExample::DIR,
        &[
            "plan".to_string(),
            "-out=nobody.plan".to_string(),
            "-no-color".to_string(),
            "-var".to_string(),
            format!("endpoint={}", moto.endpoint()),
        ],
        Duration::from_secs(300),
    )?;
    let raw = ws.run(
        LocalExample::DIR,
        &["show", "-json", "-no-color", "nobody.plan"].map(String::from),
        Duration::from_secs(120),
    )?;
    let plan: serde_json::Value =
        serde_json::from_str(&raw).context("terraform show -json plan")?;
    let said = plan["planned_values"]["outputs"]["alarm_notifications"]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(
        said.starts_with("Alarms notify nobody"),
        "alarm_notifications: {said:?}"
    );
    let mut alarms = 0;
    for change in plan["resource_changes"].as_array().into_iter().flatten() {
        let t = change["type"].as_str().unwrap_or_default();
        assert!(
            t != "aws_sns_topic" && t != "aws_kms_key",
            "{} planned without alarm_email_endpoints",
            change["address"]
        );
        let name = change["change"]["after"]["alarm_name"]
            .as_str()
            .unwrap_or_default();
        if t == "aws_cloudwatch_metric_alarm" && !name.contains("scale") {
            alarms += 1;
            // An empty set is planned as null or [].
            let actions = &change["change"]["after"]["alarm_actions"];
            assert!(
                actions.is_null() || actions.as_array().is_some_and(Vec::is_empty),
                "{name} notifies {actions}"
            );
        }
    }
    assert!(alarms >= 3, "only {alarms} operational alarms planned");
    Ok(())
}
