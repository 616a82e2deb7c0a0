//! Contract tests: every S3 call the engine makes, pinned by method, path and query
//! against a wiremock server, with S3's own error documents (fixtures/s3). The expected
//! bucket document (fixtures/s3/bucket-augmented.json) is what botocore's parser makes of
//! the same responses, so the engine's JSON matches what c7n's filters see. The KMS calls
//! (DescribeKey, ListAliases) are pinned the same way, by `X-Amz-Target` and JSON body.

mod common;

use czero_engine::s3::{self, Extras, S3, actions};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{header_regex, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/s3/", $name))
    };
}

const ALL_KEYS: [&str; 10] = [
    "Location",
    "Tags",
    "Policy",
    "Acl",
    "Replication",
    "Versioning",
    "Website",
    "Logging",
    "Notification",
    "Lifecycle",
];

/// The request names sub-resource `?sub` (the SDK sends it without a value).
struct Sub(String);

impl wiremock::Match for Sub {
    fn matches(&self, r: &Request) -> bool {
        r.url.query_pairs().any(|(k, _)| k == self.0)
    }
}

/// Path-style bucket address: `/<bucket>` or `/<bucket>/`.
struct OnBucket(String);

impl wiremock::Match for OnBucket {
    fn matches(&self, r: &Request) -> bool {
        r.url.path().trim_end_matches('/') == format!("/{}", self.0)
    }
}

fn on_bucket(b: &str) -> OnBucket {
    OnBucket(b.to_string())
}

fn xml(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/xml")
}

/// GET /<bucket>?<sub> answered with `resp`, expected exactly `times` times.
async fn get(server: &MockServer, bucket: &str, sub: &str, resp: ResponseTemplate, times: u64) {
    Mock::given(method("GET"))
        .and(on_bucket(bucket))
        .and(Sub(sub.to_string()))
        .respond_with(resp)
        .expect(times)
        .named(format!("GET /{bucket}?{sub}"))
        .mount(server)
        .await;
}

fn s3_for(server: &MockServer) -> S3 {
    S3::new(&czero_testkit::stub_config(&server.uri()), "us-east-1")
}

/// Every augment call and both lazy documents, with the given overrides by sub-resource.
async fn mount_all(server: &MockServer, overrides: &[(&str, ResponseTemplate)]) {
    let defaults: Vec<(&str, ResponseTemplate)> = vec![
        ("location", xml(200, fixture!("location.xml"))),
        ("tagging", xml(200, fixture!("tagging.xml"))),
        (
            "policy",
            ResponseTemplate::new(200).set_body_raw(
                fixture!("policy.json").as_bytes().to_vec(),
                "application/json",
            ),
        ),
        ("acl", xml(200, fixture!("acl.xml"))),
        ("replication", xml(200, fixture!("replication.xml"))),
        ("versioning", xml(200, fixture!("versioning.xml"))),
        ("website", xml(200, fixture!("website.xml"))),
        ("logging", xml(200, fixture!("logging.xml"))),
        ("notification", xml(200, fixture!("notification.xml"))),
        ("lifecycle", xml(200, fixture!("lifecycle.xml"))),
        ("encryption", xml(200, fixture!("encryption.xml"))),
        (
            "publicAccessBlock",
            xml(200, fixture!("public-access-block.xml")),
        ),
    ];
    for (sub, resp) in defaults {
        let resp = overrides
            .iter()
            .find(|(s, _)| *s == sub)
            .map(|(_, r)| r.clone())
            .unwrap_or(resp);
        get(server, "b1", sub, resp, 1).await;
    }
}

const BOTH: Extras = Extras {
    bucket_encryption: true,
    public_access_block: true,
};

#[tokio::test]
async fn augmentation_makes_each_call_once_and_matches_botocore_shapes() {
    let server = MockServer::start().await;
    mount_all(&server, &[]).await;
    let got = s3_for(&server)
        .augment(json!({"Name": "b1"}), &ALL_KEYS, BOTH)
        .await
        .unwrap()
        .unwrap();
    let want: Value = serde_json::from_str(fixture!("bucket-augmented.json")).unwrap();
    assert_eq!(got, want);
}

#[tokio::test]
async fn calls_after_location_are_signed_for_the_bucket_region() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "location",
        xml(200, fixture!("location-eu.xml")),
        1,
    )
    .await;
    Mock::given(method("GET"))
        .and(on_bucket("b1"))
        .and(Sub("tagging".into()))
        .and(header_regex("authorization", "/eu-west-1/s3/aws4_request"))
        .respond_with(xml(200, fixture!("tagging.xml")))
        .expect(1)
        .mount(&server)
        .await;
    let got = s3_for(&server)
        .augment(
            json!({"Name": "b1"}),
            &["Location", "Tags"],
            Extras::default(),
        )
        .await
        .unwrap()
        .unwrap();
    // c7n normalises EU to eu-west-1 on the bucket.
    assert_eq!(got["Location"], json!({"LocationConstraint": "eu-west-1"}));
    assert_eq!(s3::bucket_region(&got), "eu-west-1");
}

#[tokio::test]
async fn us_east_1_location_is_null() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "location",
        xml(200, fixture!("location-us-east-1.xml")),
        1,
    )
    .await;
    get(
        &server,
        "b1",
        "tagging",
        xml(404, fixture!("error-NoSuchTagSet.xml")),
        1,
    )
    .await;
    let got = s3_for(&server)
        .augment(
            json!({"Name": "b1"}),
            &["Location", "Tags"],
            Extras::default(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        json!({"Name": "b1", "Location": {"LocationConstraint": null}, "Tags": []})
    );
}

/// (sub-resource, error fixture, status, key, value c7n stores)
const DEFAULTS: [(&str, &str, u16, &str, &str); 7] = [
    (
        "tagging",
        fixture!("error-NoSuchTagSet.xml"),
        404,
        "Tags",
        "[]",
    ),
    (
        "policy",
        fixture!("error-NoSuchBucketPolicy.xml"),
        404,
        "Policy",
        "null",
    ),
    (
        "website",
        fixture!("error-NoSuchWebsiteConfiguration.xml"),
        404,
        "Website",
        "null",
    ),
    (
        "lifecycle",
        fixture!("error-NoSuchLifecycleConfiguration.xml"),
        404,
        "Lifecycle",
        "null",
    ),
    (
        "replication",
        fixture!("error-ReplicationConfigurationNotFoundError.xml"),
        404,
        "Replication",
        "null",
    ),
    (
        "encryption",
        fixture!("error-ServerSideEncryptionConfigurationNotFoundError.xml"),
        404,
        "c7n:bucket-encryption",
        "{}",
    ),
    (
        "publicAccessBlock",
        fixture!("error-NoSuchPublicAccessBlockConfiguration.xml"),
        404,
        "c7n:PublicAccessBlock",
        // c7n seeds the annotation with every key false (s3.py, FilterPublicBlock).
        r#"{"BlockPublicAcls":false,"IgnorePublicAcls":false,"BlockPublicPolicy":false,"RestrictPublicBuckets":false}"#,
    ),
];

#[tokio::test]
async fn not_found_answers_give_c7n_defaults() {
    for (sub, body, status, key, want) in DEFAULTS {
        let server = MockServer::start().await;
        mount_all(&server, &[(sub, xml(status, body))]).await;
        let got = s3_for(&server)
            .augment(json!({"Name": "b1"}), &ALL_KEYS, BOTH)
            .await
            .unwrap()
            .unwrap();
        let want: Value = serde_json::from_str(want).unwrap();
        assert_eq!(got[key], want, "{sub}");
        assert!(got.get("c7n:DeniedMethods").is_none(), "{sub}");
    }
}

#[tokio::test]
async fn access_denied_is_recorded_in_denied_methods() {
    let server = MockServer::start().await;
    let denied = xml(403, fixture!("error-AccessDenied.xml"));
    mount_all(
        &server,
        &[
            ("policy", denied.clone()),
            ("acl", denied.clone()),
            ("publicAccessBlock", denied),
        ],
    )
    .await;
    let got = s3_for(&server)
        .augment(json!({"Name": "b1"}), &ALL_KEYS, BOTH)
        .await
        .unwrap()
        .unwrap();
    assert!(got.get("Policy").is_none());
    assert!(got.get("Acl").is_none());
    let mut methods: Vec<String> =
        serde_json::from_value(got["c7n:DeniedMethods"].clone()).unwrap();
    methods.sort();
    assert_eq!(
        methods,
        vec![
            "GetPublicAccessBlock",
            "get_bucket_acl",
            "get_bucket_policy"
        ]
    );
    // check-public-block falls back to every key false, as c7n does.
    assert_eq!(got["c7n:PublicAccessBlock"], s3::default_public_block());
}

#[tokio::test]
async fn a_missing_bucket_is_skipped() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "location",
        xml(404, fixture!("error-NoSuchBucket.xml")),
        1,
    )
    .await;
    let got = s3_for(&server)
        .augment(json!({"Name": "b1"}), &ALL_KEYS, BOTH)
        .await
        .unwrap();
    assert!(got.is_none());
}

#[tokio::test]
async fn augment_keys_limit_the_calls() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "location",
        xml(200, fixture!("location.xml")),
        1,
    )
    .await;
    get(
        &server,
        "b1",
        "tagging",
        xml(200, fixture!("tagging.xml")),
        1,
    )
    .await;
    get(
        &server,
        "b1",
        "website",
        xml(200, fixture!("website.xml")),
        1,
    )
    .await;
    for sub in [
        "policy",
        "acl",
        "replication",
        "versioning",
        "logging",
        "notification",
        "lifecycle",
        "encryption",
        "publicAccessBlock",
    ] {
        get(&server, "b1", sub, xml(200, ""), 0).await;
    }
    let keys = s3::augment_keys(Some(&["Website".to_string()]));
    let got = s3_for(&server)
        .augment(json!({"Name": "b1"}), &keys, Extras::default())
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(names, vec!["Name", "Location", "Tags", "Website"]);
}

#[tokio::test]
async fn slow_down_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(on_bucket("b1"))
        .and(Sub("location".into()))
        .respond_with(xml(503, fixture!("error-SlowDown.xml")))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    get(
        &server,
        "b1",
        "location",
        xml(200, fixture!("location.xml")),
        1,
    )
    .await;
    get(
        &server,
        "b1",
        "tagging",
        xml(200, fixture!("tagging.xml")),
        1,
    )
    .await;
    let got = s3_for(&server)
        .augment(
            json!({"Name": "b1"}),
            &["Location", "Tags"],
            Extras::default(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got["Location"],
        json!({"LocationConstraint": "eu-central-1"})
    );
}

#[tokio::test]
async fn persistent_500s_fail_retryable_after_five_attempts() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "location",
        xml(200, fixture!("location.xml")),
        1,
    )
    .await;
    get(
        &server,
        "b1",
        "tagging",
        xml(500, fixture!("error-InternalError.xml")),
        5,
    )
    .await;
    let err = s3_for(&server)
        .augment(
            json!({"Name": "b1"}),
            &["Location", "Tags"],
            Extras::default(),
        )
        .await
        .unwrap_err();
    assert!(err.retryable, "{err}");
    assert_eq!(err.code.as_deref(), Some("InternalError"));
    assert_eq!(err.operation, "GetBucketTagging");
}

#[tokio::test]
async fn access_denied_on_an_action_is_not_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(on_bucket("b1"))
        .and(Sub("encryption".into()))
        .respond_with(xml(403, fixture!("error-AccessDenied.xml")))
        .expect(1)
        .mount(&server)
        .await;
    let err = run_action(
        &server,
        json!({"type": "set-bucket-encryption"}),
        json!({"Name": "b1"}),
    )
    .await
    .unwrap_err();
    assert!(!err.retryable);
}

#[tokio::test]
async fn list_buckets_gives_names_and_creation_dates() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(xml(200, fixture!("list-buckets.xml")))
        .expect(1)
        .mount(&server)
        .await;
    let got = s3_for(&server).list_buckets().await.unwrap();
    assert_eq!(
        got,
        vec![
            json!({"Name": "b1", "CreationDate": "2026-01-02T03:04:05+00:00"}),
            json!({"Name": "b2", "CreationDate": "2026-02-03T04:05:06+00:00"}),
        ]
    );
}

// ---- actions ---------------------------------------------------------------------------

async fn run_action(
    server: &MockServer,
    action: Value,
    mut bucket: Value,
) -> Result<Option<Value>, s3::ApiError> {
    let (t, data) = actions::action_data(&action);
    let args = actions::FormatArgs {
        account_id: Some("123456789012".into()),
        region: "us-east-1".into(),
        now: chrono::Utc::now(),
        kms_key_arns: Default::default(),
    };
    actions::run(&s3_for(server), &t, &data, &mut bucket, &args).await
}

/// Mounts `METHOD /b1?sub` → 200 and returns after the action ran the body it received.
async fn expect_write(server: &MockServer, verb: &str, sub: &str) {
    Mock::given(method(verb))
        .and(on_bucket("b1"))
        .and(Sub(sub.to_string()))
        .respond_with(ResponseTemplate::new(if verb == "DELETE" {
            204
        } else {
            200
        }))
        .expect(1)
        .named(format!("{verb} /b1?{sub}"))
        .mount(server)
        .await;
}

async fn body_of(server: &MockServer, verb: &str, sub: &str) -> String {
    let reqs: Vec<Request> = server.received_requests().await.unwrap_or_default();
    let r = reqs
        .iter()
        .find(|r| r.method.as_str() == verb && r.url.query_pairs().any(|(k, _)| k == sub))
        .unwrap_or_else(|| panic!("no {verb} ?{sub} request"));
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The text of each `<Tag>` (`Key=Value`) in a Tagging body, in order.
fn tags_in(body: &str) -> Vec<String> {
    body.split("<Tag>")
        .skip(1)
        .map(|t| {
            let k = t
                .split("<Key>")
                .nth(1)
                .and_then(|s| s.split("</Key>").next())
                .unwrap_or("");
            let v = t
                .split("<Value>")
                .nth(1)
                .and_then(|s| s.split("</Value>").next())
                .unwrap_or("");
            format!("{k}={v}")
        })
        .collect()
}

#[tokio::test]
async fn set_bucket_encryption_puts_aes256_with_bucket_key() {
    let server = MockServer::start().await;
    expect_write(&server, "PUT", "encryption").await;
    run_action(
        &server,
        json!({"type": "set-bucket-encryption"}),
        json!({"Name": "b1"}),
    )
    .await
    .unwrap();
    let body = body_of(&server, "PUT", "encryption").await;
    assert!(
        body.contains("<SSEAlgorithm>AES256</SSEAlgorithm>"),
        "{body}"
    );
    assert!(
        body.contains("<BucketKeyEnabled>true</BucketKeyEnabled>"),
        "{body}"
    );
}

#[tokio::test]
async fn set_bucket_encryption_disabled_deletes_it() {
    let server = MockServer::start().await;
    expect_write(&server, "DELETE", "encryption").await;
    run_action(
        &server,
        json!({"type": "set-bucket-encryption", "enabled": false}),
        json!({"Name": "b1"}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn set_public_block_merges_with_the_cached_configuration() {
    let server = MockServer::start().await;
    expect_write(&server, "PUT", "publicAccessBlock").await;
    let bucket = json!({"Name": "b1", "c7n:PublicAccessBlock": {
        "BlockPublicAcls": true, "IgnorePublicAcls": false, "BlockPublicPolicy": false, "RestrictPublicBuckets": false}});
    run_action(
        &server,
        json!({"type": "set-public-block", "BlockPublicPolicy": true}),
        bucket,
    )
    .await
    .unwrap();
    let body = body_of(&server, "PUT", "publicAccessBlock").await;
    for want in [
        "<BlockPublicAcls>true</BlockPublicAcls>",
        "<IgnorePublicAcls>false</IgnorePublicAcls>",
        "<BlockPublicPolicy>true</BlockPublicPolicy>",
        "<RestrictPublicBuckets>false</RestrictPublicBuckets>",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
}

#[tokio::test]
async fn set_public_block_reads_the_configuration_when_not_cached() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "publicAccessBlock",
        xml(
            404,
            fixture!("error-NoSuchPublicAccessBlockConfiguration.xml"),
        ),
        1,
    )
    .await;
    expect_write(&server, "PUT", "publicAccessBlock").await;
    run_action(
        &server,
        json!({"type": "set-public-block"}),
        json!({"Name": "b1"}),
    )
    .await
    .unwrap();
    let body = body_of(&server, "PUT", "publicAccessBlock").await;
    assert_eq!(body.matches(">true<").count(), 4, "{body}");
}

#[tokio::test]
async fn tag_rereads_and_merges_existing_tags() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "tagging",
        xml(200, fixture!("tagging.xml")),
        1,
    )
    .await;
    expect_write(&server, "PUT", "tagging").await;
    run_action(
        &server,
        json!({"type": "tag", "key": "Env", "value": "dev"}),
        json!({"Name": "b1", "Tags": []}),
    )
    .await
    .unwrap();
    let body = body_of(&server, "PUT", "tagging").await;
    assert_eq!(tags_in(&body), vec!["Env=dev", "Owner=security"]);
}

#[tokio::test]
async fn remove_tag_keeps_the_others() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "tagging",
        xml(200, fixture!("tagging.xml")),
        1,
    )
    .await;
    expect_write(&server, "PUT", "tagging").await;
    run_action(
        &server,
        json!({"type": "remove-tag", "tags": ["Owner"]}),
        json!({"Name": "b1"}),
    )
    .await
    .unwrap();
    assert_eq!(
        tags_in(&body_of(&server, "PUT", "tagging").await),
        vec!["Env=prod"]
    );
}

#[tokio::test]
async fn mark_for_op_tags_on_a_bucket_without_tags() {
    let server = MockServer::start().await;
    get(
        &server,
        "b1",
        "tagging",
        xml(404, fixture!("error-NoSuchTagSet.xml")),
        1,
    )
    .await;
    expect_write(&server, "PUT", "tagging").await;
    run_action(
        &server,
        json!({"type": "mark-for-op", "op": "delete", "days": 1}),
        json!({"Name": "b1"}),
    )
    .await
    .unwrap();
    let tags = tags_in(&body_of(&server, "PUT", "tagging").await);
    assert_eq!(tags.len(), 1);
    assert!(
        tags[0].starts_with("maid_status=Resource does not meet policy: delete@"),
        "{tags:?}"
    );
}

#[tokio::test]
async fn tag_skips_buckets_whose_tags_are_denied() {
    let server = MockServer::start().await;
    get(&server, "b1", "tagging", xml(200, ""), 0).await;
    run_action(
        &server,
        json!({"type": "tag", "key": "A", "value": "1"}),
        json!({"Name": "b1", "c7n:DeniedMethods": ["get_bucket_tagging"]}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn delete_global_grants_keeps_owner_grants() {
    let server = MockServer::start().await;
    expect_write(&server, "PUT", "acl").await;
    let acl: Value = serde_json::from_str(fixture!("bucket-augmented.json"))
        .map(|b: Value| b["Acl"].clone())
        .unwrap();
    let out = run_action(
        &server,
        json!("delete-global-grants"),
        json!({"Name": "b1", "Acl": acl, "Website": null}),
    )
    .await
    .unwrap();
    assert_eq!(out.map(|b| b["Name"].clone()), Some(json!("b1")));
    let body = body_of(&server, "PUT", "acl").await;
    assert!(
        !body.contains("AllUsers") && !body.contains("AuthenticatedUsers"),
        "{body}"
    );
    assert!(body.contains("FULL_CONTROL"), "{body}");
}

#[tokio::test]
async fn delete_global_grants_keeps_public_read_on_websites() {
    let server = MockServer::start().await;
    expect_write(&server, "PUT", "acl").await;
    let acl: Value = serde_json::from_str(fixture!("bucket-augmented.json"))
        .map(|b: Value| b["Acl"].clone())
        .unwrap();
    run_action(
        &server,
        json!("delete-global-grants"),
        json!({"Name": "b1", "Acl": acl, "Website": {"IndexDocument": {"Suffix": "i"}}}),
    )
    .await
    .unwrap();
    let body = body_of(&server, "PUT", "acl").await;
    assert!(
        body.contains("AllUsers") && !body.contains("AuthenticatedUsers"),
        "{body}"
    );
}

#[tokio::test]
async fn toggle_versioning_enables_a_never_versioned_bucket() {
    let server = MockServer::start().await;
    expect_write(&server, "PUT", "versioning").await;
    run_action(
        &server,
        json!({"type": "toggle-versioning", "enabled": true}),
        json!({"Name": "b1", "Versioning": {}}),
    )
    .await
    .unwrap();
    assert!(
        body_of(&server, "PUT", "versioning")
            .await
            .contains("<Status>Enabled</Status>")
    );
}

#[tokio::test]
async fn toggle_versioning_leaves_an_enabled_bucket_alone() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    run_action(
        &server,
        json!({"type": "toggle-versioning"}),
        json!({"Name": "b1", "Versioning": {"Status": "Enabled"}}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn set_statements_adds_formatted_statements() {
    let server = MockServer::start().await;
    expect_write(&server, "PUT", "policy").await;
    let action = json!({"type": "set-statements", "statements": [{
        "Sid": "DenyHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": "arn:aws:s3:::{bucket_name}/*", "Condition": {"Bool": {"aws:SecureTransport": false}}}]});
    let out = run_action(&server, action, json!({"Name": "b1", "Policy": null}))
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&body_of(&server, "PUT", "policy").await).unwrap();
    assert_eq!(body["Statement"][0]["Resource"], json!("arn:aws:s3:::b1/*"));
    assert_eq!(out.map(|o| o["Name"].clone()), Some(json!("b1")));
}

#[tokio::test]
async fn set_statements_removing_the_last_statement_deletes_the_policy() {
    let server = MockServer::start().await;
    expect_write(&server, "DELETE", "policy").await;
    let bucket = json!({"Name": "b1", "Policy": fixture!("policy.json")});
    run_action(
        &server,
        json!({"type": "set-statements", "remove": ["DenyHttp"]}),
        bucket,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn set_statements_already_present_makes_no_call() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let policy: Value = serde_json::from_str(fixture!("policy.json")).unwrap();
    let action = json!({"type": "set-statements", "statements": policy["Statement"].clone()});
    let out = run_action(
        &server,
        action,
        json!({"Name": "b1", "Policy": fixture!("policy.json")}),
    )
    .await
    .unwrap();
    assert_eq!(out, None);
}

#[tokio::test]
async fn delete_with_contents_removes_versions_then_the_bucket() {
    let server = MockServer::start().await;
    let ns = r#"xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;
    expect_write(&server, "PUT", "versioning").await;
    get(&server, "b1", "uploads", xml(200, &format!(r#"<ListMultipartUploadsResult {ns}><Bucket>b1</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"#)), 1).await;
    let versions = format!(
        r#"<ListVersionsResult {ns}><Name>b1</Name><IsTruncated>false</IsTruncated><Version><Key>a.txt</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest></Version><DeleteMarker><Key>b.txt</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest></DeleteMarker></ListVersionsResult>"#
    );
    get(&server, "b1", "versions", xml(200, &versions), 1).await;
    Mock::given(method("POST"))
        .and(on_bucket("b1"))
        .and(Sub("delete".into()))
        .respond_with(xml(200, &format!("<DeleteResult {ns}></DeleteResult>")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(on_bucket("b1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let bucket = json!({"Name": "b1", "Versioning": {"Status": "Enabled"}, "Replication": null});
    run_action(
        &server,
        json!({"type": "delete", "remove-contents": true}),
        bucket,
    )
    .await
    .unwrap();
    let body = body_of(&server, "POST", "delete").await;
    assert!(
        body.contains("<VersionId>v1</VersionId>") && body.contains("<VersionId>v2</VersionId>"),
        "{body}"
    );
}

#[tokio::test]
async fn output_to_s3_is_gzipped_under_the_hour_folder() {
    // Exercised through the public output type: PUT <prefix>/<policy>/YYYY/MM/DD/HH/<file>.gz
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(wiremock::matchers::path_regex(
            r"^/out-bucket/runs/pol/\d{4}/\d{2}/\d{2}/\d{2}/resources\.json\.gz$",
        ))
        .and(wiremock::matchers::header(
            "x-amz-acl",
            "bucket-owner-full-control",
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let out = czero_engine::Output::parse("s3://out-bucket/runs").unwrap();
    let files = vec![("resources.json".to_string(), b"[]".to_vec())];
    let loc = out
        .write(&s3_for(&server), "pol", chrono::Utc::now(), &files)
        .await
        .unwrap();
    assert!(loc.starts_with("s3://out-bucket/runs/pol/"), "{loc}");
    // Regression: SSE-S3 was forced on every object, overriding a bucket's KMS key.
    let put = &server.received_requests().await.unwrap()[0];
    assert!(
        !put.headers.contains_key("x-amz-server-side-encryption"),
        "the bucket's default encryption applies"
    );
    let reqs = server.received_requests().await.unwrap_or_default();
    let mut gz = flate2::read::GzDecoder::new(&reqs[0].body[..]);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut gz, &mut text).unwrap();
    assert_eq!(text, "[]");
}

// ---- KMS keys ----------------------------------------------------------------------------

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
/// The key `encryption.xml` names.
const KEY_ARN: &str =
    "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn kms_json(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_raw(body.to_string().into_bytes(), "application/x-amz-json-1.1")
}

/// `TrentService.<op>` with `body` (JSON, compared whole), answered with `resp`, signed
/// for `region`, expected `times` times.
async fn kms_call(
    server: &MockServer,
    op: &str,
    body: Value,
    region: &str,
    resp: ResponseTemplate,
    times: u64,
) {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(wiremock::matchers::header(
            "x-amz-target",
            format!("TrentService.{op}").as_str(),
        ))
        .and(header_regex(
            "authorization",
            &format!("/{region}/kms/aws4_request"),
        ))
        .and(wiremock::matchers::body_json(body))
        .respond_with(resp)
        .expect(times)
        .named(format!("kms {op}"))
        .mount(server)
        .await;
}

fn describe_key_answer(key_id: &str, arn: &str) -> ResponseTemplate {
    kms_json(
        200,
        json!({"KeyMetadata": {"AWSAccountId": "123456789012", "KeyId": key_id, "Arn": arn,
            "Enabled": true, "KeyManager": "CUSTOMER", "KeyState": "Enabled",
            "KeyUsage": "ENCRYPT_DECRYPT", "Description": ""}}),
    )
}

/// KMS's answer for an alias that does not exist.
fn alias_not_found(alias: &str) -> ResponseTemplate {
    kms_json(
        400,
        json!({"__type": "NotFoundException",
            "message": format!("Alias arn:aws:kms:eu-central-1:123456789012:{alias} is not found.")}),
    )
}

/// Every augment call for b1 (in eu-central-1) and GetBucketEncryption, once each.
async fn mount_bucket_with_encryption(server: &MockServer) {
    for (sub, resp) in [
        ("location", xml(200, fixture!("location.xml"))),
        ("tagging", xml(200, fixture!("tagging.xml"))),
        (
            "policy",
            ResponseTemplate::new(200).set_body_raw(
                fixture!("policy.json").as_bytes().to_vec(),
                "application/json",
            ),
        ),
        ("acl", xml(200, fixture!("acl.xml"))),
        ("replication", xml(200, fixture!("replication.xml"))),
        ("versioning", xml(200, fixture!("versioning.xml"))),
        ("website", xml(200, fixture!("website.xml"))),
        ("logging", xml(200, fixture!("logging.xml"))),
        ("notification", xml(200, fixture!("notification.xml"))),
        ("lifecycle", xml(200, fixture!("lifecycle.xml"))),
        ("encryption", xml(200, fixture!("encryption.xml"))),
    ] {
        get(server, "b1", sub, resp, 1).await;
    }
}

/// Runs `filters`/`actions` as a CreateBucket policy named `kms-policy` for bucket b1.
async fn run_policy(
    server: &MockServer,
    filters: Value,
    actions: Value,
) -> (
    Result<czero_engine::RunReport, czero_engine::EngineError>,
    tempfile::TempDir,
) {
    let doc = json!({"policies": [{
        "name": "kms-policy", "resource": "aws.s3",
        "mode": {"type": "cloudtrail", "events": ["CreateBucket"]},
        "filters": filters, "actions": actions,
    }]});
    let policy = common::parse_policy(&doc.to_string()).expect("valid policy");
    let engine = czero_engine::Engine::new(
        &czero_testkit::stub_config(&server.uri()),
        czero_engine::EngineOptions {
            region: "us-east-1".into(),
            ..Default::default()
        },
    );
    let out = tempfile::tempdir().expect("temporary directory");
    let r = engine
        .run(
            &policy,
            Some(&common::createbucket_event("b1")),
            &czero_engine::Output::Dir(out.path().to_path_buf()),
        )
        .await;
    (r, out)
}

#[tokio::test]
async fn set_bucket_encryption_puts_the_arn_describe_key_gives_for_an_alias() {
    let server = MockServer::start().await;
    mount_bucket_with_encryption(&server).await;
    // Resolved in the bucket's region, once for the run; ListAliases is not needed.
    kms_call(
        &server,
        "DescribeKey",
        json!({"KeyId": "alias/czero"}),
        "eu-central-1",
        describe_key_answer(KEY_ID, KEY_ARN),
        1,
    )
    .await;
    kms_call(
        &server,
        "ListAliases",
        json!({"KeyId": KEY_ID}),
        "eu-central-1",
        kms_json(200, json!({"Aliases": []})),
        0,
    )
    .await;
    expect_write(&server, "PUT", "encryption").await;
    let (r, out) = run_policy(
        &server,
        json!([{"type": "bucket-encryption", "crypto": "aws:kms"}]),
        json!([{"type": "set-bucket-encryption", "crypto": "aws:kms", "key": "alias/czero"}]),
    )
    .await;
    let report = r.unwrap();
    assert_eq!(report.resources, vec!["b1"]);
    let body = body_of(&server, "PUT", "encryption").await;
    assert!(
        body.contains(&format!("<KMSMasterKeyID>{KEY_ARN}</KMSMasterKeyID>")),
        "{body}"
    );
    assert!(
        body.contains("<SSEAlgorithm>aws:kms</SSEAlgorithm>"),
        "{body}"
    );
    let md: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("kms-policy/metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(md["api-stats"]["kms.DescribeKey"], json!(1));
}

#[tokio::test]
async fn an_alias_that_does_not_exist_is_one_error_naming_it_and_the_policy() {
    let server = MockServer::start().await;
    mount_bucket_with_encryption(&server).await;
    kms_call(
        &server,
        "DescribeKey",
        json!({"KeyId": "alias/missing"}),
        "eu-central-1",
        alias_not_found("alias/missing"),
        1,
    )
    .await;
    // No bucket is changed.
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .named("no PUT")
        .mount(&server)
        .await;
    let (r, out) = run_policy(
        &server,
        json!([{"type": "bucket-encryption", "crypto": "aws:kms"}]),
        json!([{"type": "set-bucket-encryption", "crypto": "aws:kms", "key": "alias/missing"}]),
    )
    .await;
    let err = r.unwrap_err();
    assert!(
        matches!(err, czero_engine::EngineError::Kms { .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.starts_with("policy kms-policy: set-bucket-encryption: KMS key `alias/missing` does not exist in eu-central-1"),
        "{msg}"
    );
    assert!(msg.contains("NotFoundException"), "{msg}");
    let log = std::fs::read_to_string(out.path().join("kms-policy/custodian-run.log")).unwrap();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" - ERROR - ")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(errors[0].contains("alias/missing"), "{log}");
}

#[tokio::test]
async fn bucket_encryption_filter_compares_the_resolved_key() {
    for (arn, want) in [
        (KEY_ARN, vec!["b1"]),
        (
            "arn:aws:kms:eu-central-1:123456789012:key/ffffffff-0000-0000-0000-000000000000",
            vec![],
        ),
    ] {
        let server = MockServer::start().await;
        mount_bucket_with_encryption(&server).await;
        let key_id = arn.rsplit('/').next().unwrap_or_default();
        kms_call(
            &server,
            "DescribeKey",
            json!({"KeyId": "alias/czero"}),
            "eu-central-1",
            describe_key_answer(key_id, arn),
            1,
        )
        .await;
        kms_call(
            &server,
            "ListAliases",
            json!({"KeyId": key_id}),
            "eu-central-1",
            kms_json(
                200,
                json!({"Aliases": [{"AliasName": "alias/czero", "TargetKeyId": key_id,
                    "AliasArn": "arn:aws:kms:eu-central-1:123456789012:alias/czero"}],
                    "Truncated": false}),
            ),
            1,
        )
        .await;
        let (r, _out) = run_policy(
            &server,
            json!([{"type": "bucket-encryption", "crypto": "aws:kms", "key": "alias/czero"}]),
            json!([]),
        )
        .await;
        assert_eq!(r.unwrap().resources, want, "key {arn}");
    }
}

#[tokio::test]
async fn a_filter_key_that_does_not_exist_fails_before_filtering() {
    let server = MockServer::start().await;
    mount_bucket_with_encryption(&server).await;
    kms_call(
        &server,
        "DescribeKey",
        json!({"KeyId": "alias/missing"}),
        "eu-central-1",
        alias_not_found("alias/missing"),
        1,
    )
    .await;
    let (r, _out) = run_policy(
        &server,
        json!([{"type": "bucket-encryption", "crypto": "aws:kms", "key": "alias/missing", "state": false}]),
        json!([]),
    )
    .await;
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.starts_with("policy kms-policy: filter bucket-encryption: KMS key `alias/missing` does not exist in eu-central-1"),
        "{msg}"
    );
}
