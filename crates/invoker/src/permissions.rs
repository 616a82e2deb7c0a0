//! The invoker's permission table (every call `aws::SdkAws` makes, and the IAM actions each
//! needs) lives in `czero-permissions`, beside the engine's and the worker's, so
//! `cargo xtask permissions` builds without the AWS SDK.

pub use czero_permissions::invoker::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invoker_writes_only_claim_checks_and_jobs() {
        for c in CALLS {
            if c.actions.contains(&"s3:PutObject") {
                assert_eq!(c.scope, Scope::ClaimChecks, "{}", c.operation);
            }
            for a in c.actions {
                assert!(!a.starts_with("s3:Delete"), "{} needs {a}", c.operation);
            }
        }
    }
}
