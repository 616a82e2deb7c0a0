//! What the invoker asks of AWS (every call `aws::SdkAws` makes) and the IAM actions that
//! authorize each, by where its resources are. `cargo xtask permissions` writes this table
//! into `terraform/modules/custodian-zero/permissions.json`, which the Terraform module
//! turns into the invoker's role (adding what Lambda itself needs: logs, the on-failure
//! destination, tracing).

/// Where a call's resources are; the Terraform module turns each into ARNs (a scope that
/// resolves to nothing, such as fast wake when it is off, grants nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The job queue (`SQS_QUEUE_URL`).
    JobQueue,
    /// The mapping and the policy files (the policy bucket's `policy_key_prefixes`).
    PolicyObjects,
    /// The policy bucket itself (listing, so a missing policy reads as 404).
    PolicyBucket,
    /// Claim checks: `jobs/` in `CLAIM_CHECK_BUCKET` (the policy bucket by default).
    ClaimChecks,
    /// The worker service (`WAKE_CLUSTER`/`WAKE_SERVICE`), only with fast wake.
    Service,
    /// The customer-managed KMS key of the buckets, when one is configured.
    BucketKey,
    /// The customer-managed KMS key of the queues, when one is configured.
    QueueKey,
}

impl Scope {
    /// The scope's name in `permissions.json`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::JobQueue => "job-queue",
            Scope::PolicyObjects => "policy-objects",
            Scope::PolicyBucket => "policy-bucket",
            Scope::ClaimChecks => "claim-checks",
            Scope::Service => "service",
            Scope::BucketKey => "bucket-key",
            Scope::QueueKey => "queue-key",
        }
    }
}

/// One call the invoker makes (`crate::Call`), scoped by this table's [`Scope`].
pub type Call = crate::Call<Scope>;
use crate::call;

use Scope::*;

/// Every call the invoker makes.
pub const CALLS: &[Call] = &[
    call(
        "s3.GetObject",
        &["s3:GetObject"],
        PolicyObjects,
        "read the mapping (revalidated with If-None-Match)",
    ),
    call(
        "s3.HeadObject",
        &["s3:GetObject"],
        PolicyObjects,
        "pin each selected policy to its ETag and version",
    ),
    call(
        "s3.HeadObject (missing)",
        &["s3:ListBucket"],
        PolicyBucket,
        "without ListBucket S3 answers 403 for a key that does not exist; with it a mapping naming a missing policy gets a 404 and the invoker says so",
    ),
    call(
        "s3.PutObject",
        &["s3:PutObject"],
        ClaimChecks,
        "store a job too large for one SQS message",
    ),
    call(
        "sqs.SendMessageBatch",
        &["sqs:SendMessage"],
        JobQueue,
        "queue the jobs (a batch is authorized per message by sqs:SendMessage)",
    ),
    call(
        "sqs.SendMessage",
        &["sqs:SendMessage"],
        JobQueue,
        "queue a single job",
    ),
    call(
        "ecs.DescribeServices",
        &["ecs:DescribeServices"],
        Service,
        "fast wake: is the service at 0?",
    ),
    call(
        "ecs.UpdateService",
        &["ecs:UpdateService"],
        Service,
        "fast wake: raise the service from 0 to 1",
    ),
    call(
        "kms.Decrypt (bucket key)",
        &["kms:Decrypt"],
        BucketKey,
        "the mapping and policies encrypted with the buckets' key",
    ),
    call(
        "kms.GenerateDataKey (bucket key)",
        &["kms:GenerateDataKey"],
        BucketKey,
        "claim checks are encrypted with the buckets' key",
    ),
    call(
        "kms.GenerateDataKey (queue key)",
        &["kms:GenerateDataKey", "kms:Decrypt"],
        QueueKey,
        "send to a queue encrypted with a customer key",
    ),
];
