//! What the worker itself asks of AWS: each API operation and the IAM actions that
//! authorize it, by where its resources are. The policies' own calls (augment, filters,
//! actions, output) are the engine's table (`engine`); the worker's task role is the two
//! together. `cargo xtask permissions` writes both into
//! `terraform/modules/custodian-zero/permissions.json`, which the Terraform module turns
//! into the role.

/// Where a call's resources are; the Terraform module turns each into ARNs (a scope that
/// resolves to nothing, such as a KMS key that is not configured, grants nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The job queue (`SQS_QUEUE_URL`).
    JobQueue,
    /// The dead-letter queue (`DLQ_URL`).
    DeadLetterQueue,
    /// Policy files in the policy bucket (its `policy_key_prefixes`).
    PolicyObjects,
    /// Claim-checked jobs: `jobs/` in `CLAIM_CHECK_BUCKET` (the policy bucket by default).
    ClaimChecks,
    /// The job ledger: `<LEDGER_PREFIX>/` in the output bucket.
    Ledger,
    /// The output bucket itself (listing, so a missing ledger marker reads as 404).
    OutputBucket,
    /// The task's own ECS task (scale-in protection).
    Tasks,
    /// The customer-managed KMS key of the buckets, when one is configured.
    BucketKey,
    /// The customer-managed KMS key of the queues, when one is configured.
    QueueKey,
    /// The member-account roles jobs act through (`MEMBER_ROLE_NAME` in every account, and
    /// the roles policies name in `mode.member-role`); nothing when no member role is set.
    MemberRoles,
    /// Security Hub's hub in the central account (finding workflow updates).
    SecurityHub,
}

impl Scope {
    /// The scope's name in `permissions.json`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::JobQueue => "job-queue",
            Scope::DeadLetterQueue => "dead-letter-queue",
            Scope::PolicyObjects => "policy-objects",
            Scope::ClaimChecks => "claim-checks",
            Scope::Ledger => "ledger",
            Scope::OutputBucket => "output-bucket",
            Scope::Tasks => "tasks",
            Scope::BucketKey => "bucket-key",
            Scope::QueueKey => "queue-key",
            Scope::MemberRoles => "member-roles",
            Scope::SecurityHub => "security-hub",
        }
    }
}

/// One call the worker makes (`crate::Call`), scoped by this table's [`Scope`].
pub type Call = crate::Call<Scope>;
use crate::call;

use Scope::*;

/// Every call the worker makes (not counting the engine's).
pub const CALLS: &[Call] = &[
    call(
        "sqs.ReceiveMessage",
        &["sqs:ReceiveMessage"],
        JobQueue,
        "long-poll for jobs",
    ),
    call(
        "sqs.ChangeMessageVisibility",
        &["sqs:ChangeMessageVisibility"],
        JobQueue,
        "renew a running job's visibility; release jobs on shutdown",
    ),
    call(
        "sqs.DeleteMessage",
        &["sqs:DeleteMessage"],
        JobQueue,
        "delete a job once its output is written",
    ),
    call(
        "sqs.SendMessage",
        &["sqs:SendMessage"],
        DeadLetterQueue,
        "a message that is not a job goes to the DLQ with its reason",
    ),
    call(
        "s3.GetObject",
        &["s3:GetObject"],
        PolicyObjects,
        "read a policy file (revalidated with If-None-Match)",
    ),
    call(
        "s3.GetObject (versionId)",
        &["s3:GetObjectVersion"],
        PolicyObjects,
        "read a policy at the version the invoker pinned",
    ),
    call(
        "s3.GetObject (claim check)",
        &["s3:GetObject"],
        ClaimChecks,
        "read a job too large for one SQS message; never deleted by the worker",
    ),
    call(
        "s3.PutObject (ledger)",
        &["s3:PutObject"],
        Ledger,
        "write a job's done marker (conditional put)",
    ),
    call(
        "s3.GetObject (ledger)",
        &["s3:GetObject"],
        Ledger,
        "read a job's done marker before running it again",
    ),
    call(
        "s3.GetObject (ledger, missing)",
        &["s3:ListBucket"],
        OutputBucket,
        "without ListBucket S3 answers 403 for a marker that does not exist, which reads as a permission error instead of `not done`",
    ),
    call(
        "ecs.UpdateTaskProtection",
        &["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"],
        Tasks,
        "the ECS agent's task-protection endpoint calls these with the task role",
    ),
    call(
        "kms.Decrypt (bucket key)",
        &["kms:Decrypt"],
        BucketKey,
        "policies, claim checks and ledger markers encrypted with the buckets' key",
    ),
    call(
        "kms.GenerateDataKey (bucket key)",
        &["kms:GenerateDataKey"],
        BucketKey,
        "output objects and ledger markers are encrypted with the buckets' key",
    ),
    call(
        "kms.Decrypt (queue key)",
        &["kms:Decrypt"],
        QueueKey,
        "receive from a queue encrypted with a customer key; send to its DLQ",
    ),
    call(
        "kms.GenerateDataKey (queue key)",
        &["kms:GenerateDataKey"],
        QueueKey,
        "send to a DLQ encrypted with a customer key",
    ),
    call(
        "sts.AssumeRole (member role)",
        &["sts:AssumeRole"],
        MemberRoles,
        "act in the account and region an event came from, through that account's member role",
    ),
    call(
        "securityhub.BatchUpdateFindings",
        &["securityhub:BatchUpdateFindings"],
        SecurityHub,
        "after a job for a Security Hub finding, set its workflow status (mapping rule `update_finding`)",
    ),
];
