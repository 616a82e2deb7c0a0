//! SDK responses turned into the JSON boto3 returns for the same call (PascalCase keys,
//! `ResponseMetadata` dropped, absent members left out), so filters written against
//! c7n's resource dicts see the same document.

use aws_sdk_s3::operation::{
    get_bucket_acl::GetBucketAclOutput, get_bucket_encryption::GetBucketEncryptionOutput,
    get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput,
    get_bucket_location::GetBucketLocationOutput, get_bucket_logging::GetBucketLoggingOutput,
    get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
    get_bucket_replication::GetBucketReplicationOutput,
    get_bucket_versioning::GetBucketVersioningOutput, get_bucket_website::GetBucketWebsiteOutput,
    get_public_access_block::GetPublicAccessBlockOutput,
};
use aws_sdk_s3::types;
use aws_smithy_types::DateTime;
use serde_json::{Map, Value, json};

/// A JSON object built member by member, leaving out absent ones as botocore does.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Self {
        Self::default()
    }
    fn opt<V: Into<Value>>(mut self, key: &str, v: Option<V>) -> Self {
        if let Some(v) = v {
            self.0.insert(key.to_string(), v.into());
        }
        self
    }
    fn set<V: Into<Value>>(mut self, key: &str, v: V) -> Self {
        self.0.insert(key.to_string(), v.into());
        self
    }
    /// botocore leaves a list member out when the XML has no element for it.
    fn list(mut self, key: &str, v: Vec<Value>) -> Self {
        if !v.is_empty() {
            self.0.insert(key.to_string(), Value::Array(v));
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

/// boto3 turns timestamps into timezone-aware datetimes; c7n's JSON encoder writes them
/// with `isoformat()`.
pub fn iso(dt: &DateTime) -> Value {
    match chrono::DateTime::from_timestamp(dt.secs(), dt.subsec_nanos()) {
        Some(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)),
        None => Value::Null,
    }
}

pub fn location(o: &GetBucketLocationOutput) -> Value {
    // us-east-1 answers with an empty element, which botocore parses as None.
    let c = o
        .location_constraint()
        .map(|c| c.as_str())
        .filter(|s| !s.is_empty());
    json!({ "LocationConstraint": c })
}

pub fn tag(t: &types::Tag) -> Value {
    json!({ "Key": t.key(), "Value": t.value() })
}

pub fn tag_set(tags: &[types::Tag]) -> Value {
    Value::Array(tags.iter().map(tag).collect())
}

fn owner(o: &types::Owner) -> Value {
    Obj::new()
        .opt("DisplayName", o.display_name())
        .opt("ID", o.id())
        .done()
}

fn grantee(g: &types::Grantee) -> Value {
    Obj::new()
        .opt("DisplayName", g.display_name())
        .opt("EmailAddress", g.email_address())
        .opt("ID", g.id())
        .set("Type", g.r#type().as_str())
        .opt("URI", g.uri())
        .done()
}

fn grant(g: &types::Grant) -> Value {
    Obj::new()
        .opt("Grantee", g.grantee().map(grantee))
        .opt("Permission", g.permission().map(|p| p.as_str()))
        .done()
}

pub fn acl(o: &GetBucketAclOutput) -> Value {
    Obj::new()
        .opt("Owner", o.owner().map(owner))
        .set(
            "Grants",
            Value::Array(o.grants().iter().map(grant).collect()),
        )
        .done()
}

fn tag_and(prefix: Option<&str>, tags: &[types::Tag]) -> Value {
    Obj::new()
        .opt("Prefix", prefix)
        .list("Tags", tags.iter().map(tag).collect())
        .done()
}

// S3 still returns the rule-level `Prefix` the SDK marks deprecated; boto3 shows it.
#[allow(deprecated)]
pub fn replication(o: &GetBucketReplicationOutput) -> Value {
    let Some(cfg) = o.replication_configuration() else {
        return json!({});
    };
    let rules = cfg
        .rules()
        .iter()
        .map(|r| {
            let filter = r.filter().map(|f| {
                Obj::new()
                    .opt("Prefix", f.prefix())
                    .opt("Tag", f.tag().map(tag))
                    .opt("And", f.and().map(|a| tag_and(a.prefix(), a.tags())))
                    .done()
            });
            let dest = r.destination().map(|d| {
                Obj::new()
                    .set("Bucket", d.bucket())
                    .opt("Account", d.account())
                    .opt("StorageClass", d.storage_class().map(|s| s.as_str()))
                    .opt(
                        "AccessControlTranslation",
                        d.access_control_translation()
                            .map(|a| json!({ "Owner": a.owner().as_str() })),
                    )
                    .opt(
                        "EncryptionConfiguration",
                        d.encryption_configuration().map(|e| {
                            Obj::new()
                                .opt("ReplicaKmsKeyID", e.replica_kms_key_id())
                                .done()
                        }),
                    )
                    .done()
            });
            Obj::new()
                .opt("ID", r.id())
                .opt("Priority", r.priority())
                .opt("Prefix", r.prefix())
                .opt("Filter", filter)
                .set("Status", r.status().as_str())
                .opt(
                    "ExistingObjectReplication",
                    r.existing_object_replication()
                        .map(|e| json!({ "Status": e.status().as_str() })),
                )
                .opt("Destination", dest)
                .opt(
                    "DeleteMarkerReplication",
                    r.delete_marker_replication().map(|d| {
                        Obj::new()
                            .opt("Status", d.status().map(|s| s.as_str()))
                            .done()
                    }),
                )
                .done()
        })
        .collect();
    json!({ "ReplicationConfiguration": { "Role": cfg.role(), "Rules": Value::Array(rules) } })
}

pub fn versioning(o: &GetBucketVersioningOutput) -> Value {
    Obj::new()
        .opt("Status", o.status().map(|s| s.as_str()))
        .opt("MFADelete", o.mfa_delete().map(|s| s.as_str()))
        .done()
}

fn redirect(r: &types::Redirect) -> Value {
    Obj::new()
        .opt("HostName", r.host_name())
        .opt("HttpRedirectCode", r.http_redirect_code())
        .opt("Protocol", r.protocol().map(|p| p.as_str()))
        .opt("ReplaceKeyPrefixWith", r.replace_key_prefix_with())
        .opt("ReplaceKeyWith", r.replace_key_with())
        .done()
}

pub fn website(o: &GetBucketWebsiteOutput) -> Value {
    let rules = o
        .routing_rules()
        .iter()
        .map(|r| {
            Obj::new()
                .opt(
                    "Condition",
                    r.condition().map(|c| {
                        Obj::new()
                            .opt(
                                "HttpErrorCodeReturnedEquals",
                                c.http_error_code_returned_equals(),
                            )
                            .opt("KeyPrefixEquals", c.key_prefix_equals())
                            .done()
                    }),
                )
                .opt("Redirect", r.redirect().map(redirect))
                .done()
        })
        .collect();
    Obj::new()
        .opt(
            "RedirectAllRequestsTo",
            o.redirect_all_requests_to().map(|r| {
                Obj::new()
                    .set("HostName", r.host_name())
                    .opt("Protocol", r.protocol().map(|p| p.as_str()))
                    .done()
            }),
        )
        .opt(
            "IndexDocument",
            o.index_document().map(|d| json!({ "Suffix": d.suffix() })),
        )
        .opt(
            "ErrorDocument",
            o.error_document().map(|d| json!({ "Key": d.key() })),
        )
        .list("RoutingRules", rules)
        .done()
}

/// c7n selects `LoggingEnabled`; a response without it stays the (empty) response dict.
pub fn logging(o: &GetBucketLoggingOutput) -> Value {
    match o.logging_enabled() {
        None => json!({}),
        Some(l) => Obj::new()
            .set("TargetBucket", l.target_bucket())
            .list(
                "TargetGrants",
                l.target_grants()
                    .iter()
                    .map(|g| {
                        Obj::new()
                            .opt("Grantee", g.grantee().map(grantee))
                            .opt("Permission", g.permission().map(|p| p.as_str()))
                            .done()
                    })
                    .collect(),
            )
            .set("TargetPrefix", l.target_prefix())
            .done(),
    }
}

fn notification_filter(f: Option<&types::NotificationConfigurationFilter>) -> Option<Value> {
    let key = f?.key()?;
    let rules = key
        .filter_rules()
        .iter()
        .map(|r| {
            Obj::new()
                .opt("Name", r.name().map(|n| n.as_str()))
                .opt("Value", r.value())
                .done()
        })
        .collect();
    Some(json!({ "Key": { "FilterRules": Value::Array(rules) } }))
}

fn events(e: &[types::Event]) -> Value {
    Value::Array(e.iter().map(|e| Value::from(e.as_str())).collect())
}

pub fn notification(o: &GetBucketNotificationConfigurationOutput) -> Value {
    let topics = o
        .topic_configurations()
        .iter()
        .map(|c| {
            Obj::new()
                .opt("Id", c.id())
                .set("TopicArn", c.topic_arn())
                .set("Events", events(c.events()))
                .opt("Filter", notification_filter(c.filter()))
                .done()
        })
        .collect();
    let queues = o
        .queue_configurations()
        .iter()
        .map(|c| {
            Obj::new()
                .opt("Id", c.id())
                .set("QueueArn", c.queue_arn())
                .set("Events", events(c.events()))
                .opt("Filter", notification_filter(c.filter()))
                .done()
        })
        .collect();
    let lambdas = o
        .lambda_function_configurations()
        .iter()
        .map(|c| {
            Obj::new()
                .opt("Id", c.id())
                .set("LambdaFunctionArn", c.lambda_function_arn())
                .set("Events", events(c.events()))
                .opt("Filter", notification_filter(c.filter()))
                .done()
        })
        .collect();
    Obj::new()
        .list("TopicConfigurations", topics)
        .list("QueueConfigurations", queues)
        .list("LambdaFunctionConfigurations", lambdas)
        .opt(
            "EventBridgeConfiguration",
            o.event_bridge_configuration().map(|_| json!({})),
        )
        .done()
}

#[allow(deprecated)]
pub fn lifecycle(o: &GetBucketLifecycleConfigurationOutput) -> Value {
    let rules = o
        .rules()
        .iter()
        .map(|r| {
            let filter = r.filter().map(|f| {
                Obj::new()
                    .opt("Prefix", f.prefix())
                    .opt("Tag", f.tag().map(tag))
                    .opt("ObjectSizeGreaterThan", f.object_size_greater_than())
                    .opt("ObjectSizeLessThan", f.object_size_less_than())
                    .opt(
                        "And",
                        f.and().map(|a| {
                            let mut v = tag_and(a.prefix(), a.tags());
                            if let Value::Object(m) = &mut v {
                                if let Some(n) = a.object_size_greater_than() {
                                    m.insert("ObjectSizeGreaterThan".into(), n.into());
                                }
                                if let Some(n) = a.object_size_less_than() {
                                    m.insert("ObjectSizeLessThan".into(), n.into());
                                }
                            }
                            v
                        }),
                    )
                    .done()
            });
            let transitions = r
                .transitions()
                .iter()
                .map(|t| {
                    Obj::new()
                        .opt("Date", t.date().map(iso))
                        .opt("Days", t.days())
                        .opt("StorageClass", t.storage_class().map(|s| s.as_str()))
                        .done()
                })
                .collect();
            let nc_transitions = r
                .noncurrent_version_transitions()
                .iter()
                .map(|t| {
                    Obj::new()
                        .opt("NoncurrentDays", t.noncurrent_days())
                        .opt("StorageClass", t.storage_class().map(|s| s.as_str()))
                        .opt("NewerNoncurrentVersions", t.newer_noncurrent_versions())
                        .done()
                })
                .collect();
            Obj::new()
                .opt(
                    "Expiration",
                    r.expiration().map(|e| {
                        Obj::new()
                            .opt("Date", e.date().map(iso))
                            .opt("Days", e.days())
                            .opt(
                                "ExpiredObjectDeleteMarker",
                                e.expired_object_delete_marker(),
                            )
                            .done()
                    }),
                )
                .opt("ID", r.id())
                .opt("Prefix", r.prefix())
                .opt("Filter", filter)
                .set("Status", r.status().as_str())
                .list("Transitions", transitions)
                .list("NoncurrentVersionTransitions", nc_transitions)
                .opt(
                    "NoncurrentVersionExpiration",
                    r.noncurrent_version_expiration().map(|e| {
                        Obj::new()
                            .opt("NoncurrentDays", e.noncurrent_days())
                            .opt("NewerNoncurrentVersions", e.newer_noncurrent_versions())
                            .done()
                    }),
                )
                .opt(
                    "AbortIncompleteMultipartUpload",
                    r.abort_incomplete_multipart_upload().map(|a| {
                        Obj::new()
                            .opt("DaysAfterInitiation", a.days_after_initiation())
                            .done()
                    }),
                )
                .done()
        })
        .collect();
    Obj::new()
        .opt(
            "TransitionDefaultMinimumObjectSize",
            o.transition_default_minimum_object_size()
                .map(|s| s.as_str()),
        )
        .set("Rules", Value::Array(rules))
        .done()
}

pub fn encryption(o: &GetBucketEncryptionOutput) -> Value {
    let Some(cfg) = o.server_side_encryption_configuration() else {
        return json!({});
    };
    let rules = cfg
        .rules()
        .iter()
        .map(|r| {
            Obj::new()
                .opt(
                    "ApplyServerSideEncryptionByDefault",
                    r.apply_server_side_encryption_by_default().map(|d| {
                        Obj::new()
                            .set("SSEAlgorithm", d.sse_algorithm().as_str())
                            .opt("KMSMasterKeyID", d.kms_master_key_id())
                            .done()
                    }),
                )
                .opt("BucketKeyEnabled", r.bucket_key_enabled())
                .done()
        })
        .collect();
    json!({ "ServerSideEncryptionConfiguration": { "Rules": Value::Array(rules) } })
}

pub fn public_access_block(o: &GetPublicAccessBlockOutput) -> Value {
    match o.public_access_block_configuration() {
        None => json!({}),
        Some(c) => Obj::new()
            .opt("BlockPublicAcls", c.block_public_acls())
            .opt("IgnorePublicAcls", c.ignore_public_acls())
            .opt("BlockPublicPolicy", c.block_public_policy())
            .opt("RestrictPublicBuckets", c.restrict_public_buckets())
            .done(),
    }
}
