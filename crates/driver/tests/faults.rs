//! Failures: a job past its timeout, a job abandoned by its caller, the driver killed
//! mid-job, a worker killed with SIGKILL, a job printing megabytes, and interpreters that
//! cannot run c7n. Each checks what is left running afterwards.

mod common;

use common::{FIXTURE_SG, HTTPS_INTERNAL, SSH_OPEN, Setup, event, ingress, policy};
use czero_driver::{Driver, DriverConfig, DriverError};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The cloudtrail security-group policy, made to sleep `delay` seconds (c7n's own
/// `mode.delay`) before it resolves the group.
fn slow_policy(delay: u64) -> Value {
    let mut p = policy(fixture!("policies/sg-ssh-cloudtrail.yml"));
    p["mode"]["delay"] = json!(delay);
    p
}

fn sg_event(s: &Setup) -> Value {
    event(
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        &[(FIXTURE_SG, &s.id("sg"))],
    )
}

/// Polls `probe` until the driver reports a running job; returns (driver pid, job pid).
async fn running_job(driver: &Driver) -> (u32, u32) {
    for _ in 0..200 {
        let info = driver.probe().await.expect("probe");
        if let Some(j) = info.running.first() {
            return (info.pid, j.pid);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no job ever showed up as running");
}

#[tokio::test]
async fn a_job_past_its_timeout_is_killed_inside_the_driver() {
    let s = Setup::new("sg");
    let mut req = s.request(slow_policy(5), Some(sg_event(&s)));
    req.timeout = Duration::from_secs(2);
    s.driver.probe().await.unwrap(); // started, so the clock below times the job alone
    let started = Instant::now();
    let run = s.driver.run(req);
    let watch = running_job(&s.driver);
    let (result, (_, job_pid)) = tokio::join!(run, watch);
    let took = started.elapsed();
    match &result {
        Err(DriverError::Timeout { after }) => assert_eq!(*after, Duration::from_secs(2)),
        other => panic!("{other:?}"),
    }
    assert!(result.as_ref().unwrap_err().is_retryable());
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        common::gone(job_pid, Duration::from_millis(500)).await,
        "job {job_pid} still running"
    );
    assert!(s.driver.probe().await.unwrap().running.is_empty());
    // Past the moment the job would have woken up and acted: nothing was removed.
    tokio::time::sleep(
        Duration::from_secs(5).saturating_sub(started.elapsed()) + Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        ingress(&s.snapshot(), "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );
    // The driver itself is fine.
    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/sg-ssh-cloudtrail.yml")),
            Some(sg_event(&s)),
        ))
        .await
        .unwrap();
    assert_eq!(r.resource_ids, vec![s.id("sg")]);
    assert_eq!(s.driver.probe().await.unwrap().starts, 1);
}

#[tokio::test]
async fn dropping_a_run_kills_its_job() {
    let s = Setup::new("sg");
    let started = Instant::now();
    let run = s.driver.run(s.request(slow_policy(4), Some(sg_event(&s))));
    let job_pid = tokio::select! {
        r = run => panic!("the slow job finished: {r:?}"),
        (_, pid) = running_job(&s.driver) => pid,
    };
    // `run` is dropped here: the driver must kill the job.
    assert!(
        common::gone(job_pid, Duration::from_secs(2)).await,
        "job {job_pid} still running"
    );
    tokio::time::sleep(
        Duration::from_secs(4).saturating_sub(started.elapsed()) + Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        ingress(&s.snapshot(), "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );
}

#[tokio::test]
async fn a_killed_driver_fails_its_jobs_and_restarts_on_the_next_request() {
    let s = Setup::new("sg");
    let run = s.driver.run(s.request(slow_policy(4), Some(sg_event(&s))));
    let kill = async {
        let (driver_pid, job_pid) = running_job(&s.driver).await;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(driver_pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        (driver_pid, job_pid)
    };
    let (result, (driver_pid, job_pid)) = tokio::join!(run, kill);
    let e = result.unwrap_err();
    assert!(matches!(e, DriverError::Crashed { .. }), "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains(&driver_pid.to_string()), "{e}");
    // The job dies with the driver (PR_SET_PDEATHSIG) and never acts.
    assert!(
        common::gone(job_pid, Duration::from_secs(2)).await,
        "job {job_pid} outlived the driver"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        ingress(&s.snapshot(), "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );

    let r = s
        .driver
        .run(s.request(
            policy(fixture!("policies/sg-ssh-cloudtrail.yml")),
            Some(sg_event(&s)),
        ))
        .await
        .unwrap();
    assert_eq!(r.resource_ids, vec![s.id("sg")]);
    let info = s.driver.probe().await.unwrap();
    assert_eq!(info.starts, 2);
    assert_ne!(info.pid, driver_pid);
}

/// A worker killed with SIGKILL cannot stop its driver: the driver dies with it
/// (PR_SET_PDEATHSIG, and stdin closing) and takes its jobs along. The "worker" here is
/// tests/py/hold_driver.py, which starts the driver from this crate's source, as the
/// crate does, and starts a slow job.
#[tokio::test]
async fn a_sigkilled_worker_leaves_no_orphans() {
    let s = Setup::new("sg");
    let job = json!({
        "id": 1, "op": "run",
        "job": {"job_id": "orphan", "policy": slow_policy(4), "event": sg_event(&s),
                "region": "us-east-1", "account_id": "123456789012",
                "output_dir": s.out.path().to_str().unwrap(), "dryrun": false,
                "timeout": 60.0, "max_captured_bytes": 65536},
    });
    let mut worker = tokio::process::Command::new(common::python())
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/hold_driver.py"))
        .arg(job.to_string())
        .env("CZERO_DRIVER_SOURCE", czero_driver::DRIVER_SOURCE)
        .envs(common::aws_env(&s.moto, &s.moto.endpoint()))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = worker.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let pids: Value = serde_json::from_str(&line).unwrap();
    let driver_pid = pids["driver"].as_u64().unwrap() as u32;
    let job_pid = pids["job"].as_u64().unwrap() as u32;
    assert!(
        common::alive(driver_pid) && common::alive(job_pid),
        "{pids}"
    );

    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    assert!(
        common::gone(driver_pid, Duration::from_secs(3)).await,
        "driver {driver_pid} outlived its worker"
    );
    assert!(
        common::gone(job_pid, Duration::from_secs(3)).await,
        "job {job_pid} outlived its worker"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        ingress(&s.snapshot(), "web-ssh-open"),
        vec![SSH_OPEN, HTTPS_INTERNAL]
    );
}

/// c7n logs the ids it resolved from the event in one line. An event naming 150,000 of
/// them (none a security group, so nothing is looked up) makes the job print megabytes;
/// only the configured tail is kept.
#[tokio::test]
async fn a_job_printing_megabytes_keeps_only_the_tail() {
    let moto = common::moto();
    let mut config = common::config_for(common::aws_env(&moto, &moto.endpoint()));
    config.max_captured_bytes = 4096;
    let driver = Driver::new(config);
    let out = tempfile::tempdir().unwrap();
    let mut p = policy(fixture!("policies/sg-ssh-cloudtrail.yml"));
    p["mode"]["events"][0]["ids"] =
        json!("requestParameters.ipPermissions.items[].ipRanges.items[].cidrIp");
    let mut ev = event(
        fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
        &[],
    );
    let ranges: Vec<Value> = (0..150_000u32)
        .map(|i| json!({"cidrIp": format!("10.{}.{}.0/24", i / 256 % 256, i % 256)}))
        .collect();
    ev["detail"]["requestParameters"]["ipPermissions"]["items"][0]["ipRanges"]["items"] =
        json!(ranges);
    let r = driver
        .run(common::request(p, Some(ev), out.path()))
        .await
        .unwrap();
    assert!(r.resource_ids.is_empty());
    assert!(r.output_bytes > 2_000_000, "{}", r.output_bytes);
    assert!(r.log_tail.len() <= 4096, "{}", r.log_tail.len());
    assert!(
        r.log_tail
            .trim_end()
            .ends_with("Could not find resource ids"),
        "{}",
        r.log_tail
    );
    assert_eq!(DriverConfig::default().max_captured_bytes, 64 * 1024);
}

#[tokio::test]
async fn a_missing_interpreter_is_not_installed() {
    let driver = Driver::new(DriverConfig {
        python: "/nonexistent/bin/python3".into(),
        ..DriverConfig::default()
    });
    let e = driver.probe().await.unwrap_err();
    match &e {
        DriverError::NotInstalled { python, message } => {
            assert_eq!(python, "/nonexistent/bin/python3");
            assert!(message.contains("cannot start"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(!e.is_retryable());
}

/// A real interpreter without c7n: a fresh virtualenv made from the project's Python.
#[tokio::test]
async fn an_interpreter_without_c7n_is_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    let status = std::process::Command::new(common::python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(status.success());
    let python = venv.join("bin/python");
    let driver = Driver::new(DriverConfig {
        python: python.clone(),
        ..DriverConfig::default()
    });
    let s = Setup::new("sg");
    let e = driver
        .run(s.request(policy(fixture!("policies/sg-ssh-pull.yml")), None))
        .await
        .unwrap_err();
    match &e {
        DriverError::NotInstalled { python: p, message } => {
            assert_eq!(p, &python.display().to_string());
            assert!(message.contains("cannot import c7n"), "{message}");
            assert!(message.contains("No module named 'c7n'"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(!e.is_retryable());
    // Still not installed on the next try (nothing cached a half-started process).
    assert!(matches!(
        driver.probe().await,
        Err(DriverError::NotInstalled { .. })
    ));
}

#[tokio::test]
async fn concurrent_runs_are_multiplexed() {
    let s = Setup::new("sg");
    let mut groups: Vec<String> = s.ids["decoy_sgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    groups.push(s.id("sg"));
    let runs = groups.iter().enumerate().map(|(i, g)| {
        let ev = event(
            fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
            &[(FIXTURE_SG, g)],
        );
        let mut req = s.request(policy(fixture!("policies/sg-ssh-cloudtrail.yml")), Some(ev));
        req.job_id = format!("job-{i}");
        req.output_dir = s.out.path().join(format!("job-{i}"));
        s.driver.run(req)
    });
    let results = futures::future::join_all(runs).await;
    for (g, r) in groups.iter().zip(results) {
        assert_eq!(r.unwrap().resource_ids, vec![g.clone()]);
    }
    let state = s.snapshot();
    for name in ["web-ssh-open", "decoy-ssh-1", "decoy-ssh-2", "decoy-ssh-3"] {
        assert_eq!(ingress(&state, name), vec![HTTPS_INTERNAL], "{name}");
    }
    assert_eq!(s.driver.probe().await.unwrap().starts, 1);
}

/// Polls `probe` until the driver has a spare child; returns its pid.
async fn spare(driver: &Driver) -> u32 {
    for _ in 0..200 {
        if let Some(pid) = driver.probe().await.expect("probe").spare {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the driver never forked a spare child");
}

/// Once idle, the driver forks the next job's child ahead of time; the next job of the
/// same kind runs in it. A spare forked before a new resource type was loaded is thrown
/// away, and no spare outlives the driver.
#[tokio::test]
async fn the_next_job_runs_in_a_child_forked_ahead_of_time() {
    let s = Setup::new("all");
    let decoy = s.ids["decoy_sgs"][0].as_str().unwrap().to_owned();
    let sg_policy = policy(fixture!("policies/sg-ssh-cloudtrail.yml"));
    let ev = |g: &str| {
        event(
            fixture!("events/cloudtrail-authorize-security-group-ingress.json"),
            &[(FIXTURE_SG, g)],
        )
    };
    assert_eq!(
        s.driver.probe().await.unwrap().spare,
        None,
        "no job yet, no spare"
    );
    let first = s
        .driver
        .run(s.request(sg_policy.clone(), Some(ev(&decoy))))
        .await
        .unwrap();
    assert_eq!(first.resource_ids, vec![decoy]);

    let ready = spare(&s.driver).await;
    assert!(common::alive(ready));
    let second = s
        .driver
        .run(s.request(sg_policy, Some(ev(&s.id("sg")))))
        .await
        .unwrap();
    assert_eq!(second.pid, ready, "the job ran in the spare");
    assert_eq!(second.resource_ids, vec![s.id("sg")]);
    assert_eq!(second.actions, vec!["remove-permissions"]);

    // aws.ec2 is new to the driver: the spare lacks it and must not be used.
    let stale = spare(&s.driver).await;
    let third = s
        .driver
        .run(s.request(
            policy(fixture!("policies/ec2-runinstances.yml")),
            Some(event(
                fixture!("events/cloudtrail-run-instances.json"),
                &[(common::FIXTURE_INSTANCE, &s.id("instance"))],
            )),
        ))
        .await
        .unwrap();
    assert_ne!(third.pid, stale);
    assert_eq!(third.resource_ids, vec![s.id("instance")]);
    assert!(
        common::gone(stale, Duration::from_secs(2)).await,
        "stale spare {stale}"
    );

    // Neither a shutdown nor a SIGKILL of the driver leaves a spare behind.
    let last = spare(&s.driver).await;
    s.driver.shutdown().await;
    assert!(
        common::gone(last, Duration::from_secs(2)).await,
        "spare {last} outlived the driver's shutdown"
    );
    let again = s
        .driver
        .run(s.request(policy(fixture!("policies/sg-ssh-pull.yml")), None))
        .await
        .unwrap();
    assert_eq!(
        again.resource_ids.len(),
        2,
        "the two groups still open: {again:?}"
    );
    let last = spare(&s.driver).await;
    let driver_pid = s.driver.probe().await.unwrap().pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(driver_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        common::gone(last, Duration::from_secs(2)).await,
        "spare {last} outlived a SIGKILLed driver"
    );
}
