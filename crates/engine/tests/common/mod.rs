//! Shared by the moto, differential and benchmark programs: an S3 client on the emulator,
//! the standard set of buckets in many states, and a snapshot of what a policy can change.
#![allow(dead_code)]

use anyhow::{Context, Result};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, BucketVersioningStatus, IndexDocument, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration, WebsiteConfiguration,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const CREATEBUCKET_EVENT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/events/cloudtrail-createbucket.json"
));

pub const AUTH_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// The CloudTrail CreateBucket event naming `bucket`.
pub fn createbucket_event(bucket: &str) -> Value {
    let mut ev: Value = serde_json::from_str(CREATEBUCKET_EVENT).unwrap_or(Value::Null);
    ev["detail"]["requestParameters"]["bucketName"] = json!(bucket);
    ev["detail"]["requestParameters"]["Host"] = json!(format!("{bucket}.s3.amazonaws.com"));
    ev
}

pub fn client(moto: &czero_testkit::Moto) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(&moto.sdk_config())
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

pub fn parse_policy(yaml: &str) -> Result<czero_policy::Policy> {
    let file = czero_policy::parse_str("test.yml", yaml).map_err(|e| anyhow::anyhow!("{e}"))?;
    file.policies
        .into_iter()
        .next()
        .context("no policy in the file")
}

fn tags(pairs: &[(&str, &str)]) -> Result<Tagging> {
    let mut set = Vec::new();
    for (k, v) in pairs {
        set.push(Tag::builder().key(*k).value(*v).build()?);
    }
    Ok(Tagging::builder().set_tag_set(Some(set)).build()?)
}

async fn encrypt(c: &Client, b: &str, algo: &str, key: Option<&str>) -> Result<()> {
    let d = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(algo))
        .set_kms_master_key_id(key.map(str::to_string))
        .build()?;
    let cfg = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(d)
                .build(),
        )
        .build()?;
    c.put_bucket_encryption()
        .bucket(b)
        .server_side_encryption_configuration(cfg)
        .send()
        .await?;
    Ok(())
}

async fn public_block(c: &Client, b: &str, v: [bool; 4]) -> Result<()> {
    let cfg = PublicAccessBlockConfiguration::builder()
        .block_public_acls(v[0])
        .ignore_public_acls(v[1])
        .block_public_policy(v[2])
        .restrict_public_buckets(v[3])
        .build();
    c.put_public_access_block()
        .bucket(b)
        .public_access_block_configuration(cfg)
        .send()
        .await?;
    Ok(())
}

pub fn bucket_policy(bucket: &str, sid: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": sid, "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
    .to_string()
}

/// The standard buckets, each in a different state a policy may look at.
pub async fn seed(c: &Client) -> Result<()> {
    let names = [
        "plain",
        "enc-aes",
        "enc-kms",
        "pab-partial",
        "pab-full",
        "tagged",
        "public-read",
        "auth-write",
        "with-policy",
        "versioned",
        "website",
        "marked",
    ];
    for b in names {
        c.create_bucket()
            .bucket(b)
            .send()
            .await
            .with_context(|| format!("creating {b}"))?;
    }
    encrypt(c, "enc-aes", "AES256", None).await?;
    encrypt(
        c,
        "enc-kms",
        "aws:kms",
        Some("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
    )
    .await?;
    public_block(c, "pab-partial", [true, false, false, false]).await?;
    public_block(c, "pab-full", [true, true, true, true]).await?;
    c.put_bucket_tagging()
        .bucket("tagged")
        .tagging(tags(&[("Owner", "security"), ("Env", "prod")])?)
        .send()
        .await?;
    c.put_bucket_acl()
        .bucket("public-read")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await?;
    c.put_bucket_acl()
        .bucket("auth-write")
        .grant_write(format!("uri=\"{AUTH_USERS}\""))
        .grant_full_control(
            "id=\"75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a\"",
        )
        .send()
        .await?;
    c.put_bucket_policy()
        .bucket("with-policy")
        .policy(bucket_policy("with-policy", "DenyHttp"))
        .send()
        .await?;
    c.put_bucket_versioning()
        .bucket("versioned")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await?;
    for body in ["one", "two"] {
        c.put_object()
            .bucket("versioned")
            .key("a.txt")
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await?;
    }
    c.delete_object()
        .bucket("versioned")
        .key("a.txt")
        .send()
        .await?;
    c.put_object()
        .bucket("marked")
        .key("b.txt")
        .body(ByteStream::from(b"x".to_vec()))
        .send()
        .await?;
    c.put_bucket_website()
        .bucket("website")
        .website_configuration(
            WebsiteConfiguration::builder()
                .index_document(IndexDocument::builder().suffix("index.html").build()?)
                .build(),
        )
        .send()
        .await?;
    c.put_bucket_acl()
        .bucket("website")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await?;
    c.put_bucket_tagging()
        .bucket("marked")
        .tagging(tags(&[(
            "maid_status",
            "Resource does not meet policy: delete@2026/01/01",
        )])?)
        .send()
        .await?;
    Ok(())
}

/// Creates `n` extra plain buckets (`filler-0001`, ...).
pub async fn seed_fillers(c: &Client, from: usize, to: usize) -> Result<()> {
    for i in from..to {
        c.create_bucket()
            .bucket(format!("filler-{i:04}"))
            .send()
            .await?;
    }
    Ok(())
}

/// What the policies can change, per bucket: encryption, public access block, tags, ACL
/// grants, bucket policy, versioning. Missing buckets are absent from the map.
pub async fn snapshot(c: &Client, endpoint: &str) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let list = c.list_buckets().send().await?;
    for b in list.buckets() {
        let name = b.name().unwrap_or_default().to_string();
        let enc = match c.get_bucket_encryption().bucket(&name).send().await {
            Ok(o) => o
                .server_side_encryption_configuration()
                .map(|cfg| {
                    cfg.rules()
                        .iter()
                        .map(|r| {
                            let d = r.apply_server_side_encryption_by_default();
                            json!({
                                "algo": d.map(|d| d.sse_algorithm().as_str().to_string()),
                                "key": d.and_then(|d| d.kms_master_key_id()),
                                "bucket_key": r.bucket_key_enabled(),
                            })
                        })
                        .collect::<Vec<_>>()
                })
                .map(Value::from)
                .unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let pab = match c.get_public_access_block().bucket(&name).send().await {
            Ok(o) => o
                .public_access_block_configuration()
                .map(|p| {
                    json!([
                        p.block_public_acls(),
                        p.ignore_public_acls(),
                        p.block_public_policy(),
                        p.restrict_public_buckets()
                    ])
                })
                .unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let tags: BTreeMap<String, String> = match c.get_bucket_tagging().bucket(&name).send().await
        {
            Ok(o) => o
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let mut grants: Vec<String> = match c.get_bucket_acl().bucket(&name).send().await {
            Ok(o) => o
                .grants()
                .iter()
                .map(|g| {
                    let who = g
                        .grantee()
                        .and_then(|x| x.uri().or(x.id()))
                        .unwrap_or_default();
                    format!(
                        "{who} {}",
                        g.permission().map(|p| p.as_str()).unwrap_or_default()
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        grants.sort();
        let policy = match c.get_bucket_policy().bucket(&name).send().await {
            Ok(o) => o
                .policy()
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
                .unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let versioning = versioning_status(endpoint, &name).await?;
        out.insert(
            name,
            json!({"encryption": enc, "public_block": pab, "tags": tags, "grants": grants, "policy": policy, "versioning": versioning}),
        );
    }
    Ok(out)
}

/// The bucket's versioning status, read from the raw response: moto 5.2 names the root
/// `<GetBucketVersioningResponse>`, which the SDK refuses to parse.
async fn versioning_status(endpoint: &str, bucket: &str) -> Result<Option<String>> {
    let body = reqwest::get(format!("{endpoint}/{bucket}?versioning"))
        .await?
        .text()
        .await?;
    Ok(body
        .split("<Status>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .map(str::to_string))
}

/// Names in a c7n `resources.json`, sorted.
pub fn resource_names(resources_json: &str) -> Vec<String> {
    let v: Vec<Value> = serde_json::from_str(resources_json).unwrap_or_default();
    let mut names: Vec<String> = v
        .iter()
        .filter_map(|r| r.get("Name").and_then(Value::as_str).map(str::to_string))
        .collect();
    names.sort();
    names
}

/// POST /moto-api/reset: every service back to empty.
pub async fn reset(moto: &czero_testkit::Moto) -> Result<()> {
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", moto.endpoint()))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "moto reset: {}", r.status());
    Ok(())
}

/// The alias [`seed_kms`] creates.
pub const KMS_ALIAS: &str = "alias/czero-test";

/// A customer KMS key with alias [`KMS_ALIAS`], and bucket `enc-kms-alias` whose default
/// encryption names the key by that alias. moto's random generator is seeded first, so
/// the key id (and ARN) is the same after every reset: two runs can compare bucket states.
/// Returns the key ARN.
pub async fn seed_kms(moto: &czero_testkit::Moto, s3: &Client) -> Result<String> {
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/seed?a=7", moto.endpoint()))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "moto seed: {}", r.status());
    let kms = aws_sdk_kms::Client::new(&moto.sdk_config());
    let key = kms
        .create_key()
        .description("czero test key")
        .send()
        .await
        .context("CreateKey")?;
    let meta = key.key_metadata().context("CreateKey: no KeyMetadata")?;
    let arn = meta.arn().context("CreateKey: no Arn")?.to_string();
    kms.create_alias()
        .alias_name(KMS_ALIAS)
        .target_key_id(meta.key_id())
        .send()
        .await
        .context("CreateAlias")?;
    s3.create_bucket()
        .bucket("enc-kms-alias")
        .send()
        .await
        .context("creating enc-kms-alias")?;
    encrypt(s3, "enc-kms-alias", "aws:kms", Some(KMS_ALIAS)).await?;
    Ok(arn)
}
