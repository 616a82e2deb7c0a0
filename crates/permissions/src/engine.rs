//! What the engine asks of AWS, per native feature: each API operation it makes (named as
//! `metadata.json`'s `api-stats` counts it, `service.Operation`) and the IAM actions AWS
//! authorizes that operation with. The names differ more often than not
//! (`GetBucketNotificationConfiguration` needs `s3:GetBucketNotification`,
//! `PutBucketEncryption` needs `s3:PutEncryptionConfiguration`, `DeleteObjects` needs
//! `s3:DeleteObject`), which is why this is a table and not a naming rule.
//!
//! `cargo xtask permissions` turns this table (with the worker's and the invoker's) into
//! `terraform/modules/custodian-zero/permissions.json`, from which Terraform builds the
//! worker role. `crates/engine/tests/permissions.rs` runs every feature on moto and requires the
//! operations it sees to be exactly the ones listed here, and compares each feature's
//! actions with the `permissions` c7n declares on the same class.

/// Where a call's resources are. The Terraform module turns each scope into ARNs
/// (`permissions.json` carries the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `*`: the action has no resource-level permissions (`s3:ListAllMyBuckets`,
    /// `kms:ListAliases`).
    Any,
    /// The buckets policies read and remediate (`arn:aws:s3:::*` by default).
    Buckets,
    /// The objects in those buckets (the `delete` action empties a bucket).
    Objects,
    /// The account's KMS keys (a policy's `key` is resolved with DescribeKey).
    KmsKeys,
    /// Objects the output writer puts in the output bucket.
    OutputObjects,
}

impl Scope {
    /// The scope's name in `permissions.json`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Any => "any",
            Scope::Buckets => "buckets",
            Scope::Objects => "objects",
            Scope::KmsKeys => "kms-keys",
            Scope::OutputObjects => "output-objects",
        }
    }
}

/// What part of a run a feature is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Fetching resources (`aws.s3` augmentation, the pull-mode listing).
    Resource,
    /// A filter (`type: bucket-encryption`, ...).
    Filter,
    /// An action (`type: set-bucket-encryption`, ...): these change resources.
    Action,
    /// Writing the run's output files.
    Output,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Resource => "resource",
            Kind::Filter => "filter",
            Kind::Action => "action",
            Kind::Output => "output",
        }
    }
}

/// One API operation and the IAM actions it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// As `api-stats` counts it: `s3.GetBucketAcl`, `kms.DescribeKey`.
    pub operation: &'static str,
    pub actions: &'static [&'static str],
    pub scope: Scope,
}

/// One native feature and every call it may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    pub kind: Kind,
    /// The filter's or action's `type` as a policy spells it; for resources and output a
    /// short name.
    pub name: &'static str,
    pub calls: &'static [Call],
    /// IAM actions c7n declares for the same class (`permissions` / `get_permissions()`)
    /// that this feature does not need, with why. Empty when the two agree.
    pub c7n_only: &'static [&'static str],
    /// IAM actions this feature needs that c7n does not declare.
    pub ours_only: &'static [&'static str],
    /// Why the two differ (empty when they agree).
    pub note: &'static str,
}

const fn call(operation: &'static str, actions: &'static [&'static str], scope: Scope) -> Call {
    Call {
        operation,
        actions,
        scope,
    }
}

const fn feature(kind: Kind, name: &'static str, calls: &'static [Call]) -> Feature {
    Feature {
        kind,
        name,
        calls,
        c7n_only: &[],
        ours_only: &[],
        note: "",
    }
}

use Scope::{Any, Buckets, KmsKeys, Objects, OutputObjects};

/// The ten augment calls of `s3::AUGMENT_TABLE`, in its order (GetBucketLocation first).
const AUGMENT: &[Call] = &[
    call("s3.GetBucketLocation", &["s3:GetBucketLocation"], Buckets),
    call("s3.GetBucketTagging", &["s3:GetBucketTagging"], Buckets),
    call("s3.GetBucketPolicy", &["s3:GetBucketPolicy"], Buckets),
    call("s3.GetBucketAcl", &["s3:GetBucketAcl"], Buckets),
    call(
        "s3.GetBucketReplication",
        &["s3:GetReplicationConfiguration"],
        Buckets,
    ),
    call(
        "s3.GetBucketVersioning",
        &["s3:GetBucketVersioning"],
        Buckets,
    ),
    call("s3.GetBucketWebsite", &["s3:GetBucketWebsite"], Buckets),
    call("s3.GetBucketLogging", &["s3:GetBucketLogging"], Buckets),
    call(
        "s3.GetBucketNotificationConfiguration",
        &["s3:GetBucketNotification"],
        Buckets,
    ),
    call(
        "s3.GetBucketLifecycleConfiguration",
        &["s3:GetLifecycleConfiguration"],
        Buckets,
    ),
];

const GET_ENCRYPTION: Call = call(
    "s3.GetBucketEncryption",
    &["s3:GetEncryptionConfiguration"],
    Buckets,
);
const GET_PUBLIC_BLOCK: Call = call(
    "s3.GetPublicAccessBlock",
    &["s3:GetBucketPublicAccessBlock"],
    Buckets,
);
const DESCRIBE_KEY: Call = call("kms.DescribeKey", &["kms:DescribeKey"], KmsKeys);
const LIST_ALIASES: Call = call("kms.ListAliases", &["kms:ListAliases"], Any);
/// Every tag action re-reads the tags and writes the whole set (c7n's `modify_bucket_tags`).
const TAG_CALLS: &[Call] = &[
    call("s3.GetBucketTagging", &["s3:GetBucketTagging"], Buckets),
    call("s3.PutBucketTagging", &["s3:PutBucketTagging"], Buckets),
];
const TAG_NOTE: &str = "c7n's BucketTag and RemoveBucketTag inherit ec2:CreateTags / ec2:DeleteTags from the generic tag actions; the calls they make are GetBucketTagging and PutBucketTagging";

/// Every native feature, in the order a run meets them.
pub const FEATURES: &[Feature] = &[
    Feature {
        note: "c7n's resource manager lists s3:ListAllMyBuckets for every policy; we list buckets only in a pull scan (its own row), never for an event",
        c7n_only: &["s3:ListAllMyBuckets"],
        ..feature(Kind::Resource, "aws.s3 augment", AUGMENT)
    },
    feature(
        Kind::Resource,
        "aws.s3 pull scan",
        &[call("s3.ListBuckets", &["s3:ListAllMyBuckets"], Any)],
    ),
    feature(
        Kind::Filter,
        "bucket-encryption",
        &[GET_ENCRYPTION, DESCRIBE_KEY, LIST_ALIASES],
    ),
    feature(Kind::Filter, "check-public-block", &[GET_PUBLIC_BLOCK]),
    // These read what the augment calls fetched (`Policy`, `Acl`, the bucket document) or
    // the event: no call of their own.
    feature(Kind::Filter, "has-statement", &[]),
    feature(Kind::Filter, "missing-policy-statement", &[]),
    feature(Kind::Filter, "global-grants", &[]),
    feature(Kind::Filter, "value", &[]),
    feature(Kind::Filter, "event", &[]),
    Feature {
        note: "enabled: false deletes the configuration (DeleteBucketEncryption, authorized by s3:PutEncryptionConfiguration); c7n's GetEncryptionConfiguration and ListAliases are never called by the action",
        c7n_only: &["kms:ListAliases", "s3:GetEncryptionConfiguration"],
        ..feature(
            Kind::Action,
            "set-bucket-encryption",
            &[
                call(
                    "s3.PutBucketEncryption",
                    &["s3:PutEncryptionConfiguration"],
                    Buckets,
                ),
                call(
                    "s3.DeleteBucketEncryption",
                    &["s3:PutEncryptionConfiguration"],
                    Buckets,
                ),
                DESCRIBE_KEY,
            ],
        )
    },
    feature(
        Kind::Action,
        "set-public-block",
        &[
            GET_PUBLIC_BLOCK,
            call(
                "s3.PutPublicAccessBlock",
                &["s3:PutBucketPublicAccessBlock"],
                Buckets,
            ),
        ],
    ),
    feature(
        Kind::Action,
        "delete-global-grants",
        &[call("s3.PutBucketAcl", &["s3:PutBucketAcl"], Buckets)],
    ),
    feature(
        Kind::Action,
        "toggle-versioning",
        &[call(
            "s3.PutBucketVersioning",
            &["s3:PutBucketVersioning"],
            Buckets,
        )],
    ),
    Feature {
        note: TAG_NOTE,
        c7n_only: &["ec2:CreateTags"],
        ours_only: &["s3:GetBucketTagging", "s3:PutBucketTagging"],
        ..feature(Kind::Action, "tag", TAG_CALLS)
    },
    Feature {
        note: TAG_NOTE,
        c7n_only: &["ec2:DeleteTags"],
        ours_only: &["s3:GetBucketTagging", "s3:PutBucketTagging"],
        ..feature(Kind::Action, "remove-tag", TAG_CALLS)
    },
    Feature {
        note: TAG_NOTE,
        c7n_only: &["ec2:DeleteTags"],
        ours_only: &["s3:GetBucketTagging", "s3:PutBucketTagging"],
        ..feature(Kind::Action, "unmark", TAG_CALLS)
    },
    Feature {
        note: TAG_NOTE,
        c7n_only: &["ec2:CreateTags"],
        ours_only: &["s3:GetBucketTagging", "s3:PutBucketTagging"],
        ..feature(Kind::Action, "mark-for-op", TAG_CALLS)
    },
    feature(
        Kind::Action,
        "set-statements",
        &[
            call("s3.PutBucketPolicy", &["s3:PutBucketPolicy"], Buckets),
            call("s3.DeleteBucketPolicy", &["s3:DeleteBucketPolicy"], Buckets),
        ],
    ),
    Feature {
        note: "c7n declares s3:* for delete; these are the calls it makes (versioned buckets: ListObjectVersions and DeleteObjects with version ids)",
        c7n_only: &["s3:*"],
        ours_only: &[
            "s3:AbortMultipartUpload",
            "s3:DeleteBucket",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:ListBucket",
            "s3:ListBucketMultipartUploads",
            "s3:ListBucketVersions",
            "s3:PutBucketVersioning",
            "s3:PutReplicationConfiguration",
        ],
        ..feature(
            Kind::Action,
            "delete",
            &[
                // Deleting the replication configuration is authorized by
                // s3:PutReplicationConfiguration.
                call(
                    "s3.DeleteBucketReplication",
                    &["s3:PutReplicationConfiguration"],
                    Buckets,
                ),
                call(
                    "s3.PutBucketVersioning",
                    &["s3:PutBucketVersioning"],
                    Buckets,
                ),
                call(
                    "s3.ListMultipartUploads",
                    &["s3:ListBucketMultipartUploads"],
                    Buckets,
                ),
                call(
                    "s3.AbortMultipartUpload",
                    &["s3:AbortMultipartUpload"],
                    Objects,
                ),
                call("s3.ListObjectVersions", &["s3:ListBucketVersions"], Buckets),
                call("s3.ListObjects", &["s3:ListBucket"], Buckets),
                // One DeleteObjects is authorized per key: s3:DeleteObject, and
                // s3:DeleteObjectVersion for the keys given with a version id.
                call(
                    "s3.DeleteObjects",
                    &["s3:DeleteObject", "s3:DeleteObjectVersion"],
                    Objects,
                ),
                call("s3.DeleteBucket", &["s3:DeleteBucket"], Buckets),
            ],
        )
    },
    Feature {
        note: "the writer sends x-amz-acl: bucket-owner-full-control, which S3 authorizes with s3:PutObjectAcl as well",
        ours_only: &["s3:PutObjectAcl"],
        ..feature(
            Kind::Output,
            "s3 output",
            &[call(
                "s3.PutObject",
                &["s3:PutObject", "s3:PutObjectAcl"],
                OutputObjects,
            )],
        )
    },
];

/// The feature of `kind` named `name`.
pub fn feature_named(kind: Kind, name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.kind == kind && f.name == name)
}

/// Every operation the table lists, sorted and without duplicates.
pub fn operations() -> Vec<&'static str> {
    let mut ops: Vec<&str> = FEATURES
        .iter()
        .flat_map(|f| f.calls.iter().map(|c| c.operation))
        .collect();
    ops.sort_unstable();
    ops.dedup();
    ops
}

/// The IAM actions a feature needs, sorted and without duplicates.
pub fn actions(feature: &Feature) -> Vec<&'static str> {
    let mut a: Vec<&str> = feature
        .calls
        .iter()
        .flat_map(|c| c.actions.iter().copied())
        .collect();
    a.sort_unstable();
    a.dedup();
    a
}

/// The IAM actions that change a bucket or its objects: what the module denies on its own
/// buckets. The read calls some actions make first (GetPublicAccessBlock, ListObjects...)
/// are left out: reading is harmless, and the augment reads them anyway.
pub fn remediation_actions() -> Vec<&'static str> {
    let mut a: Vec<&str> = FEATURES
        .iter()
        .filter(|f| f.kind == Kind::Action)
        .flat_map(|f| f.calls.iter())
        .filter(|c| matches!(c.scope, Scope::Buckets | Scope::Objects))
        .flat_map(|c| c.actions.iter().copied())
        .filter(|a| !is_read(a))
        .collect();
    a.sort_unstable();
    a.dedup();
    a
}

fn is_read(action: &str) -> bool {
    let name = action.split_once(':').map_or(action, |(_, n)| n);
    name.starts_with("Get") || name.starts_with("List") || name.starts_with("Describe")
}
