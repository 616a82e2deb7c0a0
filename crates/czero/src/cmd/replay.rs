//! `czero replay --queue-url URL (--function-name NAME | --local) [--dry-run] [--max N]`:
//! replays the events the invoker Lambda failed on. Lambda keeps each failed asynchronous
//! invocation in the on-failure destination (an SQS queue) as a destination record
//! `{version, timestamp, requestContext, requestPayload, responseContext, responsePayload}`;
//! this command re-invokes the function with the original `requestPayload` (Invoke,
//! RequestResponse), or with `--local` runs the same handler in-process as `czero invoke`
//! does (the Lambda's environment variables configure it). A record is deleted only after
//! its replay succeeded; failed records and messages that are not destination records stay
//! on the queue (made visible again when the run ends). `--dry-run` lists what would be
//! replayed and changes nothing. Prints one line per record and a summary; exit code 1 when
//! a replay failed, 2 for bad configuration.

use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_types::error::display::DisplayErrorContext;
use czero_invoker::{Config, Invoker, Outcome, SdkAws, event};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The invoker's on-failure destination queue.
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    /// Re-invoke this Lambda function (name or ARN) with each record's original event.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "local",
        required_unless_present = "local"
    )]
    pub function_name: Option<String>,
    /// Run the invoker's handler in this process instead (configured by the Lambda's
    /// environment variables: SQS_QUEUE_URL, POLICY_BUCKET, ...).
    #[arg(long)]
    pub local: bool,
    /// List what would be replayed; invoke nothing, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replay at most this many records.
    #[arg(long, value_name = "N")]
    pub max: Option<usize>,
    /// Seconds a received record stays hidden from other readers while this run holds it.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub visibility_timeout: i32,
}

/// A Lambda destination record (the fields replay reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRecord {
    #[serde(default)]
    pub timestamp: Option<String>,
    pub request_context: RequestContext,
    pub request_payload: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub request_id: String,
    #[serde(default)]
    pub function_arn: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub approximate_invoke_count: Option<u64>,
}

impl DestinationRecord {
    /// Reads a message body; `Err` says why it is not a destination record.
    pub fn parse(body: &str) -> Result<DestinationRecord, String> {
        let r: DestinationRecord = serde_json::from_str(body)
            .map_err(|e| format!("not a Lambda destination record: {e}"))?;
        if r.request_payload.is_null() {
            return Err("not a Lambda destination record: no requestPayload".into());
        }
        Ok(r)
    }

    /// `event <id> (<source>, <detail-type>)` of the payload, for the report.
    pub fn describe(&self) -> String {
        let field = |k: &str| {
            self.request_payload
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        let to = match &self.request_context.function_arn {
            Some(f) => format!(" to {f}"),
            None => String::new(),
        };
        let mut s = format!(
            "request {}{to}: event {} ({}, {})",
            self.request_context.request_id,
            field("id"),
            field("source"),
            field("detail-type")
        );
        if let Some(c) = &self.request_context.condition {
            s.push_str(&format!(", {c}"));
        }
        if let Some(n) = self.request_context.approximate_invoke_count {
            s.push_str(&format!(" after {n} attempts"));
        }
        if let Some(t) = &self.timestamp {
            s.push_str(&format!(" at {t}"));
        }
        s
    }
}

/// Where a record's event is replayed.
enum Target {
    Lambda {
        client: aws_sdk_lambda::Client,
        function: String,
    },
    Local(Box<Invoker<SdkAws>>),
}

impl Target {
    /// Replays one event; `Ok` carries a one-line result.
    async fn replay(&self, payload: &Value) -> Result<String, String> {
        match self {
            Target::Lambda { client, function } => {
                let bytes = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
                let out = client
                    .invoke()
                    .function_name(function)
                    .invocation_type(InvocationType::RequestResponse)
                    .payload(Blob::new(bytes))
                    .send()
                    .await
                    .map_err(|e| {
                        format!("lambda:Invoke {function}: {}", DisplayErrorContext(&e))
                    })?;
                let response = out
                    .payload()
                    .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
                    .unwrap_or_default();
                match out.function_error() {
                    Some(kind) => Err(format!("{function} failed ({kind}): {response}")),
                    None => Ok(summarise(&response)),
                }
            }
            Target::Local(invoker) => {
                let parsed = event::parse_value(payload.clone()).map_err(|e| e.to_string())?;
                let outcome = invoker
                    .process(parsed, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(outcome_words(&outcome))
            }
        }
    }
}

/// The Lambda's answer (the handler's Outcome as JSON) in a few words.
fn summarise(response: &str) -> String {
    match serde_json::from_str::<Value>(response) {
        Ok(v) => match (v.get("status"), v.get("reason"), v.pointer("/job/jobId")) {
            (Some(Value::String(s)), Some(Value::String(r)), _) => format!("{s}: {r}"),
            (Some(Value::String(s)), _, Some(Value::String(j))) => format!("{s} job {j}"),
            _ => format!("answered {response:.200}"),
        },
        Err(_) => format!("answered {response:.200}"),
    }
}

fn outcome_words(o: &Outcome) -> String {
    match o {
        Outcome::Queued { job, .. } => format!("queued job {}", job.job_id),
        Outcome::Skipped { reason, .. } => format!("skipped: {reason}"),
        Outcome::Split { parts, .. } => format!(
            "split per account and region: {}",
            parts
                .iter()
                .map(outcome_words)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

#[derive(Debug, Default)]
struct Tally {
    replayed: usize,
    failed: usize,
    skipped: usize,
}

pub fn run(args: Args) -> ExitCode {
    czero_invoker::init_tracing();
    // The handler's configuration is checked first, as `czero invoke` does.
    let config = if args.local {
        match Config::from_env() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("czero replay: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    if args.visibility_timeout < 1 || args.visibility_timeout > 43_200 {
        eprintln!("czero replay: --visibility-timeout must be 1..=43200 seconds");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("czero replay: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(replay(&args, config)) {
        Ok(t) => {
            if args.dry_run {
                println!(
                    "would replay {}, skipped {} (dry run: nothing invoked or deleted)",
                    t.replayed, t.skipped
                );
            } else {
                println!(
                    "replayed {}, failed {}, skipped {}",
                    t.replayed, t.failed, t.skipped
                );
            }
            if t.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("czero replay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn replay(args: &Args, config: Option<Config>) -> anyhow::Result<Tally> {
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let target = match (&args.function_name, config) {
        (_, Some(c)) => Target::Local(Box::new(Invoker::new(SdkAws::new(&sdk), c))),
        (Some(f), None) => Target::Lambda {
            client: aws_sdk_lambda::Client::new(&sdk),
            function: f.clone(),
        },
        (None, None) => anyhow::bail!("--function-name or --local is required"),
    };
    let mut tally = Tally::default();
    // Records received and kept (failed, skipped, or listed by a dry run): made visible again
    // at the end, so one run sees each record once.
    let mut held: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let limit = args.max.unwrap_or(usize::MAX);
    while tally.replayed + tally.failed < limit {
        let got = sqs
            .receive_message()
            .queue_url(&args.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(args.visibility_timeout)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
            .with_context(|| format!("sqs:ReceiveMessage {}", args.queue_url))?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let mut fresh = 0;
        for m in messages {
            let (Some(id), Some(handle)) = (m.message_id, m.receipt_handle) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                held.push(handle);
                continue;
            }
            fresh += 1;
            if tally.replayed + tally.failed >= limit {
                // Over --max: released untouched, with the rest of this batch.
                held.push(handle);
                continue;
            }
            let record = match DestinationRecord::parse(m.body.as_deref().unwrap_or("")) {
                Ok(r) => r,
                Err(why) => {
                    println!("skipped message {id}: {why}");
                    tally.skipped += 1;
                    held.push(handle);
                    continue;
                }
            };
            if args.dry_run {
                println!("would replay {}", record.describe());
                tally.replayed += 1;
                held.push(handle);
                continue;
            }
            match target.replay(&record.request_payload).await {
                Ok(result) => {
                    let deleted = sqs
                        .delete_message()
                        .queue_url(&args.queue_url)
                        .receipt_handle(&handle)
                        .send()
                        .await;
                    match deleted {
                        Ok(_) => {
                            println!("replayed {}: {result}", record.describe());
                            tally.replayed += 1;
                        }
                        Err(e) => {
                            println!(
                                "failed {}: replayed ({result}) but not deleted: {}",
                                record.describe(),
                                DisplayErrorContext(&e)
                            );
                            tally.failed += 1;
                        }
                    }
                }
                Err(e) => {
                    println!("failed {}: {e}", record.describe());
                    tally.failed += 1;
                    held.push(handle);
                }
            }
        }
        if fresh == 0 {
            // Only records this run already holds came back (their visibility ran out).
            break;
        }
    }
    for handle in held {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(&args.queue_url)
            .receipt_handle(&handle)
            .visibility_timeout(0)
            .send()
            .await
        {
            eprintln!(
                "czero replay: releasing a record: {} (it becomes visible again after the \
                 visibility timeout)",
                DisplayErrorContext(&e)
            );
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_records_are_read_and_other_messages_are_not() {
        let body = r#"{"version":"1.0","timestamp":"2026-11-28T05:13:01.121Z",
            "requestContext":{"requestId":"e8d1-42","functionArn":"arn:aws:lambda:us-east-1:123456789012:function:czero-invoker:$LATEST",
              "condition":"RetriesExhausted","approximateInvokeCount":3},
            "requestPayload":{"id":"6f87","source":"aws.s3","detail-type":"AWS API Call via CloudTrail"},
            "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
            "responsePayload":{"errorType":"czero.Retryable.PolicyMissing","errorMessage":"..."}}"#;
        let r = DestinationRecord::parse(body).unwrap();
        assert_eq!(
            r.describe(),
            "request e8d1-42 to arn:aws:lambda:us-east-1:123456789012:function:czero-invoker:$LATEST: \
             event 6f87 (aws.s3, AWS API Call via CloudTrail), RetriesExhausted after 3 attempts \
             at 2026-11-28T05:13:01.121Z"
        );
        for (body, why) in [
            ("{}", "missing field `requestContext`"),
            (r#"{"jobId":"x"}"#, "missing field `requestContext`"),
            ("not json", "not a Lambda destination record"),
            (
                r#"{"requestContext":{"requestId":"r"},"requestPayload":null}"#,
                "no requestPayload",
            ),
        ] {
            let err = DestinationRecord::parse(body).unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
    }

    #[test]
    fn answers_are_summarised() {
        assert_eq!(
            summarise(r#"{"status":"skipped","eventId":"e","reason":"no selected policy"}"#),
            "skipped: no selected policy"
        );
        assert_eq!(summarise("null"), "answered null");
    }
}
