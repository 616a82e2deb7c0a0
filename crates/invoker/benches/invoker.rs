//! `cargo bench -p czero-invoker`: the invoker Lambda on this machine, each number beside a
//! baseline measured in the same run.
//!
//! (a) Handler time per event, network excluded: the real [`Invoker`] over an in-memory AWS,
//!     from the payload bytes to the serialised response, as the runtime drives it (decode
//!     the `EventBridgeEvent`, `handle`, encode the outcome; JSON logs formatted into a sink;
//!     the mapping cached and revalidated by ETag, as in a warm Lambda). p50 and p95 per
//!     fixture, against the 1 ms p50 goal and against the floor: `serde_json` decoding the
//!     same bytes to a `Value`, alone.
//! (b) Cold init: the release `bootstrap` spawned with a Lambda environment, timed to its
//!     first `GET /2018-06-01/runtime/invocation/next` on a fake Runtime API (a loopback
//!     listener); median of 20 against the 20 ms goal and against spawning `/bin/true` to
//!     exit.
//! (c) Size of the release `bootstrap` against the 8 MB goal, and of `target/dist/invoker.zip`
//!     when `cargo xtask dist` has produced it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use czero_invoker::aws::{Aws, AwsError, BatchOutcome, Fetched, ObjectMeta, OutMessage};
use czero_invoker::{Config, Invoker, Outcome};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MAPPING: &[u8] = include_bytes!("../../../config/policy-mappings.json");
/// The policy files the mapping names (read when the mapping is loaded, then cached).
const POLICIES: &[(&str, &[u8])] = &[
    (
        "policies/s3-sandbox-audit.yml",
        include_bytes!("../../../policies/s3-sandbox-audit.yml"),
    ),
    (
        "policies/s3-createbucket.yml",
        include_bytes!("../../../policies/s3-createbucket.yml"),
    ),
    (
        "policies/s3-global-grants.yml",
        include_bytes!("../../../policies/s3-global-grants.yml"),
    ),
    (
        "policies/s3-bucket-drift.yml",
        include_bytes!("../../../policies/s3-bucket-drift.yml"),
    ),
    (
        "policies/s3-hub-finding-public.yml",
        include_bytes!("../../../policies/s3-hub-finding-public.yml"),
    ),
    (
        "policies/s3-hub-policy-statements.yml",
        include_bytes!("../../../policies/s3-hub-policy-statements.yml"),
    ),
    (
        "policies/s3-config-unencrypted-mark.yml",
        include_bytes!("../../../policies/s3-config-unencrypted-mark.yml"),
    ),
];
const FIXTURES: &[(&str, &str)] = &[
    (
        "cloudtrail-createbucket",
        include_str!("../fixtures/cloudtrail-createbucket.json"),
    ),
    (
        "cloudtrail-putbucketacl-cross-account",
        include_str!("../fixtures/cloudtrail-putbucketacl-cross-account.json"),
    ),
    (
        "securityhub-multi-resource",
        include_str!("../fixtures/securityhub-multi-resource.json"),
    ),
    (
        "guardduty-s3-public (skip)",
        include_str!("../fixtures/guardduty-s3-public.json"),
    ),
    (
        "guardduty-ec2-cross-account (skip)",
        include_str!("../fixtures/guardduty-ec2-cross-account.json"),
    ),
    (
        "config-compliance",
        include_str!("../fixtures/config-compliance.json"),
    ),
    (
        "cloudtrail-createbucket-failed (skip)",
        include_str!("../fixtures/cloudtrail-createbucket-failed.json"),
    ),
    (
        "ec2-state-change (skip)",
        include_str!("../fixtures/ec2-state-change.json"),
    ),
];
const WARMUP: usize = 500;
const ITERATIONS: usize = 5_000;
const STARTS: usize = 20;
const HANDLER_GOAL: Duration = Duration::from_millis(1);
const INIT_GOAL: Duration = Duration::from_millis(20);
const SIZE_GOAL_BYTES: u64 = 8 * 1024 * 1024;
const ETAG: &str = "\"mapping-1\"";

/// The AWS the handler sees: the mapping and the policy files it names (each answering 304
/// to its own ETag), HeadObject for every policy, and a queue that only counts. Nothing is kept per
/// message, so memory stays flat.
#[derive(Debug, Default)]
struct MemAws {
    gets: AtomicUsize,
    heads: AtomicUsize,
    sent: AtomicUsize,
}

fn unsupported(op: &'static str) -> AwsError {
    AwsError {
        op,
        message: "not used by this benchmark".into(),
        retryable: false,
        not_found: false,
    }
}

impl Aws for MemAws {
    async fn get_object(
        &self,
        _bucket: &str,
        key: &str,
        if_none_match: Option<&str>,
    ) -> Result<Fetched, AwsError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let (body, etag) = match POLICIES.iter().find(|(k, _)| *k == key) {
            Some((_, body)) => (*body, policy_etag(key)),
            None => (MAPPING, ETAG.to_owned()),
        };
        if if_none_match == Some(etag.as_str()) {
            return Ok(Fetched::NotModified);
        }
        Ok(Fetched::Object {
            body: body.to_vec(),
            etag: Some(etag),
            version_id: None,
        })
    }

    async fn head_object(&self, _bucket: &str, key: &str) -> Result<ObjectMeta, AwsError> {
        self.heads.fetch_add(1, Ordering::Relaxed);
        let size = POLICIES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, b)| b.len() as u64);
        Ok(ObjectMeta {
            etag: Some(policy_etag(key)),
            version_id: None,
            size,
        })
    }

    async fn put_object(&self, _bucket: &str, _key: &str, _body: Vec<u8>) -> Result<(), AwsError> {
        Err(unsupported("s3:PutObject"))
    }

    async fn send_message(&self, _queue_url: &str, msg: &OutMessage) -> Result<String, AwsError> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(format!("{n}-{}", msg.body.len()))
    }

    async fn send_message_batch(
        &self,
        _queue_url: &str,
        _msgs: &[OutMessage],
    ) -> Result<BatchOutcome, AwsError> {
        Err(unsupported("sqs:SendMessageBatch"))
    }

    async fn desired_count(&self, _cluster: &str, _service: &str) -> Result<i32, AwsError> {
        Err(unsupported("ecs:DescribeServices"))
    }

    async fn set_desired_count(
        &self,
        _cluster: &str,
        _service: &str,
        _desired: i32,
    ) -> Result<(), AwsError> {
        Err(unsupported("ecs:UpdateService"))
    }
}

fn policy_etag(key: &str) -> String {
    format!("\"etag-{}\"", key.len())
}

fn config() -> Result<Config, Box<dyn std::error::Error>> {
    let env = [
        (
            "SQS_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/czero-jobs",
        ),
        ("POLICY_BUCKET", "czero-policies"),
    ];
    Ok(Config::from_lookup(|k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    // The Lambda's JSON log format, written to a sink: formatting is part of the handler.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .json()
        .with_current_span(false)
        .without_time()
        .try_init();
    handler_time()?;
    cold_init()?;
    sizes()?;
    Ok(())
}

/// (a)
fn handler_time() -> Res<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let invoker = Invoker::new(MemAws::default(), config()?);
    println!(
        "(a) handler per event, in-memory AWS: bytes -> EventBridgeEvent -> handle -> response \
         bytes; {ITERATIONS} runs after {WARMUP} warm-up"
    );
    println!(
        "  {:<48} {:>8} {:>8} {:>10} {:>10} {:>10}",
        "fixture", "p50 µs", "p95 µs", "p50/1 ms", "floor µs", "p50/floor"
    );
    let mut worst = Duration::ZERO;
    for (name, json) in FIXTURES {
        let bytes = json.as_bytes();
        let sent_before = invoker.aws.sent.load(Ordering::Relaxed);
        let mut times = Vec::with_capacity(ITERATIONS);
        let mut last = None;
        for i in 0..WARMUP + ITERATIONS {
            let start = Instant::now();
            let payload: EventBridgeEvent<Value> = serde_json::from_slice(bytes)?;
            let outcome = rt
                .block_on(invoker.handle(LambdaEvent {
                    payload,
                    context: Context::default(),
                }))
                .map_err(|d| format!("{name}: {}: {}", d.error_type, d.error_message))?;
            let response = serde_json::to_vec(&outcome)?;
            let took = start.elapsed();
            std::hint::black_box(&response);
            if i >= WARMUP {
                times.push(took);
            }
            last = Some(outcome);
        }
        // The work happened: one message per run for events, none for skips.
        let sent = invoker.aws.sent.load(Ordering::Relaxed) - sent_before;
        let queued = matches!(last, Some(Outcome::Queued { .. }));
        let expected = if queued { WARMUP + ITERATIONS } else { 0 };
        if sent != expected {
            return Err(format!("{name}: {sent} messages sent, expected {expected}").into());
        }
        let mut floor = Vec::with_capacity(ITERATIONS);
        for i in 0..WARMUP + ITERATIONS {
            let start = Instant::now();
            let v: Value = serde_json::from_slice(bytes)?;
            let took = start.elapsed();
            std::hint::black_box(&v);
            drop(v);
            if i >= WARMUP {
                floor.push(took);
            }
        }
        times.sort();
        floor.sort();
        let (p50, p95, f50) = (
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&floor, 0.5),
        );
        worst = worst.max(p50);
        println!(
            "  {:<48} {:>8.1} {:>8.1} {:>10.4} {:>10.1} {:>9.1}×",
            format!("{name} ({} B)", bytes.len()),
            micros(p50),
            micros(p95),
            p50.as_secs_f64() / HANDLER_GOAL.as_secs_f64(),
            micros(f50),
            p50.as_secs_f64() / f50.as_secs_f64(),
        );
    }
    println!(
        "  slowest p50 {:.1} µs = {:.3}× the 1 ms goal ({}); GETs {} (the mapping and its {} \
         policy files once, then the mapping answered 304), policy HEADs {}",
        micros(worst),
        worst.as_secs_f64() / HANDLER_GOAL.as_secs_f64(),
        if worst <= HANDLER_GOAL {
            "met"
        } else {
            "NOT MET"
        },
        invoker.aws.gets.load(Ordering::Relaxed),
        POLICIES.len(),
        invoker.aws.heads.load(Ordering::Relaxed)
    );
    Ok(())
}

/// (b)
fn cold_init() -> Res<()> {
    let bootstrap = PathBuf::from(env!("CARGO_BIN_EXE_bootstrap"));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let api = listener.local_addr()?.to_string();
    let (tx, rx) = mpsc::channel::<Result<Instant, String>>();
    // The fake Runtime API: notes when each connection's request line arrives and never
    // answers, so the bootstrap waits for an event until it is killed.
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming() {
            let result = stream
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    let mut line = String::new();
                    BufReader::new(&s)
                        .read_line(&mut line)
                        .map_err(|e| e.to_string())?;
                    Ok((Instant::now(), line, s))
                })
                .and_then(|(at, line, s)| {
                    if line.starts_with("GET /2018-06-01/runtime/invocation/next ") {
                        // Held open: the bootstrap waits on it until it is killed.
                        open.push(s);
                        Ok(at)
                    } else {
                        Err(format!("unexpected request: {line:?}"))
                    }
                });
            if tx.send(result).is_err() {
                break;
            }
        }
    });
    let home = std::env::temp_dir().join("czero-invoker-bench-home");
    let mut inits = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let mut cmd = Command::new(&bootstrap);
        cmd.env_clear()
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", api.as_str()),
                ("AWS_LAMBDA_FUNCTION_NAME", "custodian-invoker"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/custodian-invoker"),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "AKIDBENCH"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("AWS_SESSION_TOKEN", "bench"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                (
                    "SQS_QUEUE_URL",
                    "https://sqs.us-east-1.amazonaws.com/123456789012/czero-jobs",
                ),
                ("POLICY_BUCKET", "czero-policies"),
            ])
            // Lambda has no ~/.aws; neither may the bench read the developer's.
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn()?;
        let got = rx.recv_timeout(Duration::from_secs(10));
        let _ = child.kill();
        let output = child.wait_with_output()?;
        match got {
            Ok(Ok(at)) => inits.push(at.duration_since(start)),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                return Err(format!(
                    "bootstrap made no `next` request within 10 s ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                )
                .into());
            }
        }
    }
    let mut trues = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let start = Instant::now();
        let status = Command::new("/bin/true")
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        trues.push(start.elapsed());
        if !status.success() {
            return Err("/bin/true failed".into());
        }
    }
    inits.sort();
    trues.sort();
    let (med, base) = (percentile(&inits, 0.5), percentile(&trues, 0.5));
    println!(
        "(b) cold init: spawn -> first GET /2018-06-01/runtime/invocation/next, {STARTS} starts"
    );
    println!(
        "  bootstrap   median {:.2} ms (min {:.2}, max {:.2}) = {:.3}× the 20 ms goal ({})",
        millis(med),
        millis(inits[0]),
        millis(inits[inits.len() - 1]),
        med.as_secs_f64() / INIT_GOAL.as_secs_f64(),
        if med <= INIT_GOAL { "met" } else { "NOT MET" }
    );
    println!(
        "  /bin/true   median {:.2} ms spawn -> exit; bootstrap/true {:.1}×",
        millis(base),
        med.as_secs_f64() / base.as_secs_f64()
    );
    Ok(())
}

/// `.symtab` is what `strip` removes; its name survives only in an unstripped binary.
fn has_symtab(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b".symtab\0")
}

/// (c)
fn sizes() -> Res<()> {
    let bootstrap = Path::new(env!("CARGO_BIN_EXE_bootstrap"));
    let bytes = std::fs::read(bootstrap)?;
    let size = bytes.len() as u64;
    let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
    println!("(c) size against the 8 MB (8 MiB) goal");
    println!(
        "  bootstrap   {} bytes ({:.2} MiB, {}) = {:.3}× the goal ({})  [{}]",
        size,
        mib(size),
        if has_symtab(&bytes) {
            "NOT stripped"
        } else {
            "stripped"
        },
        size as f64 / SIZE_GOAL_BYTES as f64,
        if size <= SIZE_GOAL_BYTES {
            "met"
        } else {
            "NOT MET"
        },
        bootstrap.display()
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let zip = target.join("dist/invoker.zip");
    match std::fs::metadata(&zip) {
        Ok(m) => {
            let when = m
                .modified()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
                .unwrap_or_default();
            println!(
                "  invoker.zip {} bytes ({:.2} MiB) = {:.3}× the goal ({})  [cargo xtask dist, \
                 {when}]",
                m.len(),
                mib(m.len()),
                m.len() as f64 / SIZE_GOAL_BYTES as f64,
                if m.len() <= SIZE_GOAL_BYTES {
                    "met"
                } else {
                    "NOT MET"
                },
            );
        }
        Err(_) => println!(
            "  invoker.zip not found at {} (run `cargo xtask dist`)",
            zip.display()
        ),
    }
    Ok(())
}
