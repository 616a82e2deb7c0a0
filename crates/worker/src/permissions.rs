//! The worker's own permission table (its queue, ledger, claim-check, protection, member-role
//! and finding calls, and the IAM actions each needs) lives in `czero-permissions`, beside the
//! engine's and the invoker's, so `cargo xtask permissions` builds without the AWS SDK.

pub use czero_permissions::worker::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_never_changes_the_queue_or_deletes_objects() {
        for c in CALLS {
            for a in c.actions {
                assert!(
                    !a.starts_with("s3:Delete")
                        && *a != "sqs:PurgeQueue"
                        && *a != "sqs:SetQueueAttributes",
                    "{} needs {a}",
                    c.operation
                );
            }
        }
    }

    #[test]
    fn writes_go_only_to_the_ledger_and_the_dlq() {
        for c in CALLS {
            if c.actions.contains(&"s3:PutObject") {
                assert_eq!(c.scope, Scope::Ledger, "{}", c.operation);
            }
            if c.actions.contains(&"sqs:SendMessage") {
                assert_eq!(c.scope, Scope::DeadLetterQueue, "{}", c.operation);
            }
        }
    }
}
