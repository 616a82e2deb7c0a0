//! The design document's scenarios end to end: moto, Terraform, `czero local`, the invoker
//! and real workers. One stack, scenarios played in order, each timeline printed.
//!
//! Time runs 30× faster in the control plane (a 60 s period takes 2 s) and workers long-poll
//! for 1 s, so the whole suite takes minutes.

use anyhow::Result;
use czero_integration::scenario::{Report, Scenario, is_remediated, play};
use czero_integration::stack::{ControlPlane, Stack, StackOptions};
use std::time::Duration;

fn control_plane(image: Option<String>) -> ControlPlane {
    ControlPlane {
        time_scale: 30.0,
        timeline: "timeline.jsonl".into(),
        max_duration: Duration::from_secs(240),
        image,
        wait_time_seconds: 1,
        live: false,
        log: None,
        task_log_dir: None,
    }
}

/// Workers run as containers when Docker and the worker image (`cargo xtask dist --load`)
/// are there, as processes otherwise. `CZERO_E2E_IMAGE` names the image.
fn worker_image() -> Option<String> {
    let image = std::env::var("CZERO_E2E_IMAGE").ok()?;
    let ok = std::process::Command::new("docker")
        .args(["image", "inspect", &image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(image)
}

fn assert_drained(r: &Report) {
    let name = &r.scenario.name;
    assert_eq!(r.queue_left, (0, 0), "{name}: queue not empty");
    assert_eq!(r.dlq_left, (0, 0), "{name}: DLQ not empty");
    let last = r.observations.last().expect("observed the service");
    assert_eq!(
        (last.desired, last.running),
        (0, 0),
        "{name}: service did not return to 0"
    );
    let fixed = r.remediated();
    assert_eq!(
        fixed,
        r.buckets.len(),
        "{name}: not every bucket was remediated: {:?}",
        r.buckets
            .iter()
            .filter(|(_, s)| !is_remediated(s))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_play_as_the_design_document_says() -> Result<()> {
    let work = tempfile::tempdir()?;
    let stack = Stack::up(&StackOptions::default(), &|m| eprintln!("[e2e] {m}")).await?;
    let image = worker_image();
    eprintln!(
        "[e2e] workers run as {}",
        image
            .as_deref()
            .map_or("processes".to_string(), |i| format!("containers ({i})"))
    );
    let cp = control_plane(image);
    let quiet = |_: &_| {};

    // Scenario 1: idle. Nothing arrives; the service stays at 0 and no task starts.
    let r = play(&stack, &Scenario::idle(), &cp, work.path(), &quiet).await?;
    eprintln!("{}", r.table());
    assert!(!r.observations.is_empty());
    assert!(
        r.observations
            .iter()
            .all(|o| o.desired == 0 && o.running == 0),
        "idle: service left 0"
    );
    assert_eq!(r.graceful_exits, 0, "idle: a task ran");

    // Scenario 2 (spec Test 1): one CreateBucket → desired 1 → remediated → graceful exit → 0.
    let r = play(&stack, &Scenario::single(), &cp, work.path(), &quiet).await?;
    eprintln!("{}", r.table());
    assert_eq!(
        r.desired_sequence(),
        vec![0, 1, 0],
        "single: desired sequence"
    );
    assert!(
        r.graceful_exits >= 1,
        "single: no worker logged the graceful exit line"
    );
    assert!(r.output_keys > 0, "single: no output written");
    assert_drained(&r);

    // Scenario 3: 25 events at once → 5 tasks (the seed table) → back to 0.
    let r = play(&stack, &Scenario::burst(), &cp, work.path(), &quiet).await?;
    eprintln!("{}", r.table());
    assert_eq!(r.max_desired(), 5, "burst: 25 jobs must give 5 tasks");
    assert!(
        r.desired_sequence()
            .windows(2)
            .take(1)
            .all(|w| w[0] == 0 && w[1] > 0)
    );
    assert_drained(&r);

    // Spec Test 2: 20 invocations at once → 4 tasks → back to 0.
    let r = play(&stack, &Scenario::load_test(), &cp, work.path(), &quiet).await?;
    eprintln!("{}", r.table());
    assert_eq!(r.max_desired(), 4, "load test: 20 jobs must give 4 tasks");
    assert_drained(&r);

    // Faults: every running worker is SIGKILLed mid-burst; every job still completes.
    let mut faults_cp = cp.clone();
    faults_cp.image = None; // kill real processes, not docker clients
    let r = play(&stack, &Scenario::faults(), &faults_cp, work.path(), &quiet).await?;
    eprintln!("{}", r.table());
    assert!(r.killed >= 1, "faults: no worker was killed");
    assert_drained(&r);

    stack.destroy()
}
