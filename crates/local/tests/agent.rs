//! The task-protection endpoint over real HTTP, with the worker's request and response shapes.

// Test helpers outside #[test] functions may panic on failure too.
#![allow(clippy::unwrap_used)]

use czero_local::agent::{AgentServer, ProtectionBook};
use czero_local::clock::Clock;
use serde_json::{Value, json};

async fn server() -> (AgentServer, std::sync::Arc<ProtectionBook>, Clock) {
    let book = ProtectionBook::new();
    // 60×: one simulated minute is one real second.
    let clock = Clock::start(60.0);
    let server = AgentServer::start(book.clone(), clock).await.unwrap();
    book.register(
        "abc123",
        "arn:aws:ecs:us-east-1:123456789012:task/custodian-cluster/abc123",
    );
    (server, book, clock)
}

async fn put(url: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn protect_and_unprotect_like_the_ecs_agent() {
    let (server, book, clock) = server().await;
    let url = format!("{}/task-protection/v1/state", server.task_uri("abc123"));
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(url.ends_with("/v3/abc123/task-protection/v1/state"));

    let (status, body) = put(
        &url,
        json!({"ProtectionEnabled": true, "ExpiresInMinutes": 5}),
    )
    .await;
    assert_eq!(status, 200);
    let p = &body["protection"];
    assert_eq!(p["ProtectionEnabled"], json!(true));
    assert_eq!(
        p["TaskArn"],
        json!("arn:aws:ecs:us-east-1:123456789012:task/custodian-cluster/abc123")
    );
    // 5 simulated minutes at 60× end about 5 real seconds from now.
    let exp = chrono::DateTime::parse_from_rfc3339(p["ExpirationDate"].as_str().unwrap()).unwrap();
    let left = (exp.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    assert!((3_000..=5_500).contains(&left), "expires in {left} ms");
    assert!(book.is_protected("abc123", clock.now_s()));
    assert!(!book.is_protected("abc123", clock.now_s() + 301.0));

    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["protection"]["ProtectionEnabled"], json!(true));

    let (status, body) = put(&url, json!({"ProtectionEnabled": false})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"protection": {"ExpirationDate": null, "ProtectionEnabled": false,
            "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/custodian-cluster/abc123"}})
    );
    assert!(!book.is_protected("abc123", clock.now_s()));
}

#[tokio::test]
async fn default_expiry_is_two_hours() {
    let (server, book, clock) = server().await;
    let url = format!("{}/task-protection/v1/state", server.task_uri("abc123"));
    let (status, _) = put(&url, json!({"ProtectionEnabled": true})).await;
    assert_eq!(status, 200);
    let until = book.protected_until("abc123", clock.now_s()).unwrap();
    assert!(
        (until - clock.now_s() - 7200.0).abs() < 5.0,
        "until {until}"
    );
}

#[tokio::test]
async fn bad_requests_get_agent_style_errors() {
    let (server, _, _) = server().await;
    let url = format!("{}/task-protection/v1/state", server.task_uri("abc123"));
    let (status, body) = put(
        &url,
        json!({"ProtectionEnabled": true, "ExpiresInMinutes": 0}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["Code"], json!("InvalidParameterException"));
    assert_eq!(
        body["error"]["Message"],
        json!("ExpiresInMinutes must be between 1 and 2880, got 0")
    );

    let (status, body) = put(&url, json!({"ExpiresInMinutes": 3})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["Code"], json!("InvalidRequest"));

    let other = format!("{}/task-protection/v1/state", server.task_uri("nosuchtask"));
    let (status, body) = put(&other, json!({"ProtectionEnabled": true})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["Code"], json!("ResourceNotFoundException"));

    let resp = reqwest::get(format!("http://{}/v3/abc123/other", server.addr()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
