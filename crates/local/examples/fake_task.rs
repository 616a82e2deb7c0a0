//! A stand-in worker for the control plane's tests: long-polls `SQS_QUEUE_URL`, protects
//! itself through `$ECS_AGENT_URI` while it holds a batch (like `custodian-worker`), takes
//! `PROCESS_MS` per message, deletes it, and repeats. It exits on SIGTERM (after finishing
//! the batch in hand) or, with `IDLE_EXIT=true`, after `MAX_EMPTY_RECEIVES` empty receives.

use aws_sdk_sqs::Client;
use std::time::Duration;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn protect(http: &reqwest::Client, agent: Option<&str>, on: bool) {
    let Some(agent) = agent else { return };
    let body = if on {
        serde_json::json!({"ProtectionEnabled": true, "ExpiresInMinutes": 10})
    } else {
        serde_json::json!({"ProtectionEnabled": false})
    };
    match http
        .put(format!("{agent}/task-protection/v1/state"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => eprintln!("fake task: protection answered {}", r.status()),
        Err(e) => eprintln!("fake task: protection failed: {e}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = std::env::var("SQS_QUEUE_URL")?;
    let wait: i32 = env_or("WAIT_TIME_SECONDS", 1);
    let process = Duration::from_millis(env_or("PROCESS_MS", 10));
    let idle_exit: bool = env_or("IDLE_EXIT", false);
    let max_empty: u32 = env_or("MAX_EMPTY_RECEIVES", 3);
    let agent = std::env::var("ECS_AGENT_URI").ok();
    let http = reqwest::Client::new();
    let sqs = Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut empty = 0;
    loop {
        let receive = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .send();
        let out = tokio::select! {
            out = receive => out?,
            _ = term.recv() => return Ok(()),
        };
        let messages = out.messages();
        if messages.is_empty() {
            empty += 1;
            if idle_exit && empty >= max_empty {
                eprintln!("fake task: no messages for extended period, exiting");
                return Ok(());
            }
            continue;
        }
        empty = 0;
        protect(&http, agent.as_deref(), true).await;
        for m in messages {
            tokio::time::sleep(process).await;
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        protect(&http, agent.as_deref(), false).await;
    }
}
