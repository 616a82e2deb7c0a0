//! The engine's permission table (what each native feature calls, and the IAM actions each
//! call needs) lives in `czero-permissions`, beside the worker's and the invoker's, so
//! `cargo xtask permissions` builds without the AWS SDK. The tests here tie it to the
//! engine's own code; `tests/permissions.rs` runs every feature on moto against it.

pub use czero_permissions::engine::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::{AUGMENT_TABLE, actions::NATIVE};

    #[test]
    fn augment_rows_follow_the_augment_table() {
        let rows = feature_named(Kind::Resource, "aws.s3 augment")
            .map(|f| f.calls)
            .unwrap_or_default();
        assert_eq!(rows.len(), AUGMENT_TABLE.len());
        for (row, (method, _)) in rows.iter().zip(AUGMENT_TABLE) {
            // boto3's get_bucket_location is the SDK's GetBucketLocation.
            let op: String = method
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect::<String>())
                        .unwrap_or_default()
                })
                .collect();
            assert_eq!(row.operation, format!("s3.{op}"));
        }
    }

    #[test]
    fn every_native_action_has_a_row() {
        for (action, _) in NATIVE {
            assert!(
                feature_named(Kind::Action, action).is_some(),
                "action {action} runs natively but has no permissions row"
            );
        }
        for f in FEATURES.iter().filter(|f| f.kind == Kind::Action) {
            assert!(
                NATIVE.iter().any(|(a, _)| *a == f.name),
                "row for action {} which does not run natively",
                f.name
            );
        }
    }

    #[test]
    fn one_operation_needs_the_same_actions_everywhere() {
        let mut seen: Vec<(&str, &[&str])> = Vec::new();
        for c in FEATURES.iter().flat_map(|f| f.calls) {
            match seen.iter().find(|(op, _)| *op == c.operation) {
                Some((_, actions)) => assert_eq!(*actions, c.actions, "{}", c.operation),
                None => seen.push((c.operation, c.actions)),
            }
        }
    }

    #[test]
    fn remediation_actions_change_buckets_and_read_nothing() {
        let a = remediation_actions();
        for must in [
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketPolicy",
            "s3:DeleteBucket",
            "s3:DeleteObject",
            "s3:PutBucketTagging",
        ] {
            assert!(a.contains(&must), "{must} missing from {a:?}");
        }
        for never in [
            "s3:GetBucketTagging",
            "s3:ListBucket",
            "s3:PutObject",
            "s3:GetObject",
            "kms:DescribeKey",
        ] {
            assert!(!a.contains(&never), "{never} in {a:?}");
        }
    }
}
