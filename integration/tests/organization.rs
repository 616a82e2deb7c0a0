//! One deployment for an organization, at scale under `czero local`: CloudTrail events from
//! 50 member accounts in 4 regions arrive in one burst (200 events, one new bucket each,
//! created in its own account and region). `terraform/examples/local` is applied with
//! `member_role_name`, so every worker the control plane starts acts in another account
//! through that role. The run must remediate every bucket; every job must act through its
//! event's account's role in its event's region; and each worker may call AssumeRole at most
//! once per (account, region) (its sessions last an hour, far longer than the run).
//!
//! moto resolves bucket names across accounts, so the buckets' state alone cannot tell which
//! credentials acted: the workers' own log lines (`acting through member role`, `assumed
//! member role`) say which role and region each job used, and those are checked against the
//! event each job came from.

use anyhow::{Context, Result, ensure};
use czero_integration::events;
use czero_integration::scenario::play_events;
use czero_integration::stack::{ControlPlane, Stack, StackOptions};
use czero_invoker::event::Parsed;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const ROLE: &str = "czero-member";
const ACCOUNTS: u64 = 50;
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];

fn account(i: u64) -> String {
    format!("{:012}", 100_000_000_000 + i)
}

fn bucket(account: &str, region: &str) -> String {
    format!("org-{account}-{region}")
}

/// Creates `bucket(account, region)` in that account (a session of its member role, as moto
/// keys state by the credentials' account) and region.
async fn create_member_bucket(stack: &Stack, account: &str, region: &str) -> Result<()> {
    let sts = aws_sdk_sts::Client::new(&stack.sdk);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{ROLE}"))
        .role_session_name("seed")
        .send()
        .await
        .context("AssumeRole for seeding")?;
    let c = out.credentials().context("no credentials")?;
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "seed",
    );
    let sdk = stack
        .sdk
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let mut req = s3.create_bucket().bucket(bucket(account, region));
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    req.send()
        .await
        .with_context(|| format!("creating {} in {account}", bucket(account, region)))?;
    Ok(())
}

/// A CloudTrail CreateBucket event from `account` in `region`.
fn event(account: &str, region: &str) -> Value {
    let mut e = events::create_bucket(&bucket(account, region), region);
    e["account"] = account.into();
    e["detail"]["recipientAccountId"] = account.into();
    e
}

fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines().filter_map(|l| serde_json::from_str(l).ok())
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_accounts_in_four_regions_each_job_acts_in_its_own() -> Result<()> {
    let opts = StackOptions {
        member_role_name: Some(ROLE.into()),
        ..StackOptions::default()
    };
    let stack = Stack::up(&opts, &|m| eprintln!("[organization] {m}")).await?;
    let mut pairs = Vec::new();
    for i in 0..ACCOUNTS {
        for region in REGIONS {
            pairs.push((account(i), region.to_owned()));
        }
    }
    for (a, r) in &pairs {
        create_member_bucket(&stack, a, r).await?;
    }
    let burst: Vec<Value> = pairs.iter().map(|(a, r)| event(a, r)).collect();
    let work = tempfile::tempdir()?;
    // 5x, not the scenarios' 30x: the job timeout scales with it (300 s on AWS, 60 s here),
    // and 200 jobs each assuming a role and remediating through one emulator on two busy
    // cores took more than 10 s apiece at 30x (timed out, redriven), and at 10x a few still
    // passed 30 s three times and reached the DLQ while a release build shared the cores.
    let cp = ControlPlane {
        time_scale: 5.0,
        timeline: "timeline.jsonl".into(),
        max_duration: Duration::from_secs(900),
        image: None,
        wait_time_seconds: 1,
        live: false,
        log: None,
        task_log_dir: None,
    };
    let run = play_events(&stack, "organization", &burst, &cp, work.path()).await?;
    eprintln!(
        "[organization] {} events from {} accounts x {} regions in {:.1?}",
        burst.len(),
        ACCOUNTS,
        REGIONS.len(),
        run.elapsed
    );

    // Every bucket remediated, nothing left behind.
    let mut missed = Vec::new();
    for (a, r) in &pairs {
        let b = bucket(a, r);
        let st = stack.bucket_state(&b).await?;
        if !(st.encrypted && st.public_access_blocked) {
            missed.push(b);
        }
    }
    ensure!(missed.is_empty(), "not remediated: {missed:?}");
    ensure!(run.queue_left == (0, 0), "queue left {:?}", run.queue_left);
    ensure!(run.dlq_left == (0, 0), "DLQ left {:?}", run.dlq_left);

    // Each job acted through its own account's role, in its own region: the invoker derives
    // a job's id from its event, so each id names the pair its event came from.
    let mut want: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (e, (a, r)) in burst.iter().zip(&pairs) {
        let Parsed::Event(parsed) = czero_invoker::event::parse_value(e.clone())? else {
            anyhow::bail!("the invoker skips {e}");
        };
        want.insert(
            czero_invoker::handler::job_id(&parsed),
            (a.clone(), r.clone()),
        );
    }
    let mut acted: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for v in json_lines(&run.task_logs) {
        if field(&v, "message") == "acting through member role" {
            acted.insert(
                field(&v, "job_id").to_owned(),
                (
                    field(&v, "account").to_owned(),
                    field(&v, "region").to_owned(),
                    field(&v, "role_arn").to_owned(),
                ),
            );
        }
    }
    let mut wrong = Vec::new();
    for (job, (a, r)) in &want {
        let role = format!("arn:aws:iam::{a}:role/{ROLE}");
        match acted.get(job) {
            Some((ga, gr, grole)) if ga == a && gr == r && grole == &role => {}
            got => wrong.push(format!("job {job} for {a} {r}: acted as {got:?}")),
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} of {} jobs did not act in their own account and region: {:?}",
        wrong.len(),
        want.len(),
        &wrong[..wrong.len().min(5)]
    );
    let covered: BTreeSet<(String, String)> = acted
        .values()
        .map(|(a, r, _)| (a.clone(), r.clone()))
        .collect();
    ensure!(
        covered.len() == pairs.len(),
        "{} distinct (account, region) pairs acted in, want {}",
        covered.len(),
        pairs.len()
    );

    // AssumeRole at most once per (account, region) per worker.
    let tasks = work.path().join("organization").join("tasks");
    let mut workers = 0;
    let mut calls = 0;
    for entry in std::fs::read_dir(&tasks)? {
        let text = std::fs::read_to_string(entry?.path())?;
        let mut per_pair: BTreeMap<(String, String), usize> = BTreeMap::new();
        for v in json_lines(&text).filter(|v| field(v, "message") == "assumed member role") {
            *per_pair
                .entry((
                    field(&v, "role_arn").to_owned(),
                    field(&v, "region").to_owned(),
                ))
                .or_default() += 1;
            calls += 1;
        }
        if let Some((pair, n)) = per_pair.iter().find(|(_, n)| **n > 1) {
            anyhow::bail!("a worker called AssumeRole {n} times for {pair:?}");
        }
        workers += 1;
    }
    eprintln!(
        "[organization] {workers} workers, {calls} AssumeRole calls for {} pairs (at most one per pair per worker)",
        pairs.len()
    );
    ensure!(
        calls >= pairs.len(),
        "{calls} AssumeRole calls for {} pairs",
        pairs.len()
    );
    Ok(())
}
