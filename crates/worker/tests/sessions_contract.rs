//! Contract tests for member-role sessions: the exact STS AssumeRole request, one call per
//! (role, region) for the life of the credentials, and how refusals and failures are told
//! apart (a refused role is final; a failed STS call is worth retrying).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use czero_worker::members::{MemberError, Sessions};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ROLE: &str = "arn:aws:iam::222233334444:role/czero-member";

fn credentials(expiration: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml")
        .set_body_string(format!(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAMEMBEREXAMPLE</AccessKeyId>
      <SecretAccessKey>secret</SecretAccessKey>
      <SessionToken>token</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::222233334444:assumed-role/czero-member/czero-job-1</Arn>
      <AssumedRoleId>AROAEXAMPLE:czero-job-1</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
        ))
}

fn sts_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "text/xml")
        .set_body_string(format!(
            r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>not authorized to perform: sts:AssumeRole on resource: {ROLE}</Message></Error><RequestId>r-2</RequestId></ErrorResponse>"#
        ))
}

fn sessions(server: &MockServer, external_id: Option<&str>) -> Sessions {
    Sessions::new(
        &czero_testkit::stub_config(&server.uri()),
        external_id.map(str::to_owned),
    )
}

#[tokio::test]
async fn one_assume_role_per_role_and_region_with_the_job_in_the_session_name() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(body_string_contains("Action=AssumeRole"))
        .and(body_string_contains(
            "RoleArn=arn%3Aaws%3Aiam%3A%3A222233334444%3Arole%2Fczero-member",
        ))
        .and(body_string_contains("RoleSessionName=czero-job-1"))
        .and(body_string_contains("ExternalId=ext-123"))
        .and(body_string_contains("DurationSeconds=3600"))
        .respond_with(credentials("2099-01-01T00:00:00Z"))
        .expect(2)
        .mount(&server)
        .await;
    let s = sessions(&server, Some("ext-123"));
    let first = s.get(ROLE, "eu-west-1", "job-1").await.unwrap();
    assert_eq!(first.session_name, "czero-job-1");
    assert_eq!(first.sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
    // Later jobs, and concurrent ones, reuse the session of the same (role, region).
    let (a, b) = tokio::join!(
        s.get(ROLE, "eu-west-1", "job-2"),
        s.get(ROLE, "eu-west-1", "job-3")
    );
    assert_eq!(a.unwrap().session_name, "czero-job-1");
    assert_eq!(b.unwrap().session_name, "czero-job-1");
    // Another region of the same account is another session (opened by job-1 again here,
    // so the mock's RoleSessionName matches).
    s.get(ROLE, "us-west-2", "job-1").await.unwrap();
    assert_eq!(s.assumed(), 2);
}

#[tokio::test]
async fn credentials_close_to_expiry_are_renewed() {
    let server = MockServer::start().await;
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .respond_with(credentials(&soon))
        .expect(2)
        .mount(&server)
        .await;
    let s = sessions(&server, None);
    s.get(ROLE, "eu-west-1", "job-1").await.unwrap();
    s.get(ROLE, "eu-west-1", "job-2").await.unwrap();
    assert_eq!(
        s.assumed(),
        2,
        "a session expiring within 10 minutes is not reused"
    );
}

#[tokio::test]
async fn a_refused_role_is_final_and_names_role_account_and_region() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .respond_with(sts_error(403, "AccessDenied"))
        .expect(1)
        .mount(&server)
        .await;
    let e = sessions(&server, None)
        .get(ROLE, "eu-west-1", "job-1")
        .await
        .unwrap_err();
    assert!(matches!(e, MemberError::AssumeRole { .. }), "{e:?}");
    assert_eq!(e.kind(), "MemberRole");
    assert!(!e.is_retryable());
    let text = e.to_string();
    for part in [ROLE, "222233334444", "eu-west-1", "AccessDenied"] {
        assert!(text.contains(part), "{part} in {text}");
    }
}

#[tokio::test]
async fn a_failing_sts_is_retried_later() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .respond_with(sts_error(500, "InternalFailure"))
        .mount(&server)
        .await;
    let e = sessions(&server, None)
        .get(ROLE, "eu-west-1", "job-1")
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.kind(), "MemberRole");
}
