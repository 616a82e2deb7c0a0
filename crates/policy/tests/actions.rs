//! aws.s3 actions: c7n's defaults and class names.

use czero_policy::{Action, parse_str};

fn actions(yaml: &str) -> Vec<Action> {
    let doc = format!("policies:\n  - name: p\n    resource: s3\n    actions:\n{yaml}");
    parse_str("a.yml", &doc)
        .unwrap_or_else(|e| panic!("{e}"))
        .policies
        .remove(0)
        .actions
}

#[test]
fn defaults_follow_c7n() {
    let a = actions(
        "      - set-bucket-encryption\n      - set-public-block\n      - delete-global-grants\n      - toggle-versioning\n      - remove-tag\n      - type: mark-for-op\n        op: delete\n      - delete\n",
    );
    assert_eq!(
        a[0],
        Action::SetBucketEncryption {
            enabled: true,
            crypto: "AES256".into(),
            key: None,
            bucket_key: true
        }
    );
    assert_eq!(
        a[1],
        Action::SetPublicBlock {
            state: true,
            block_public_acls: None,
            ignore_public_acls: None,
            block_public_policy: None,
            restrict_public_buckets: None
        }
    );
    let Action::DeleteGlobalGrants { grantees } = &a[2] else {
        panic!("{:?}", a[2])
    };
    assert_eq!(grantees.len(), 2);
    assert_eq!(a[3], Action::ToggleVersioning { enabled: true });
    assert_eq!(
        a[4],
        Action::RemoveTag {
            tags: vec!["maid_status".into()]
        }
    );
    assert_eq!(
        a[5],
        Action::MarkForOp {
            tag: "maid_status".into(),
            op: "delete".into(),
            days: 0.0,
            hours: 0.0,
            msg: "Resource does not meet policy: {op}@{action_date}".into(),
            tz: "utc".into()
        }
    );
    assert_eq!(
        a[6],
        Action::Delete {
            remove_contents: true
        }
    );
}

#[test]
fn tag_forms_merge() {
    let a = actions(
        "      - type: tag\n        key: Owner\n        value: sec\n      - type: tag\n        tags: {A: x, B: 2}\n      - type: tag\n        tag: T\n        value: v\n",
    );
    assert_eq!(
        a[0],
        Action::Tag {
            tags: vec![("Owner".into(), "sec".into())]
        }
    );
    assert_eq!(
        a[1],
        Action::Tag {
            tags: vec![("A".into(), "x".into()), ("B".into(), "2".into())]
        }
    );
    assert_eq!(
        a[2],
        Action::Tag {
            tags: vec![("T".into(), "v".into())]
        }
    );
}

#[test]
fn class_names_are_c7n_s() {
    let a = actions(
        "      - set-bucket-encryption\n      - tag\n      - type: mark-for-op\n        op: delete\n      - remove-tag\n      - delete\n      - type: set-statements\n        statements: []\n      - notify\n",
    );
    let names: Vec<_> = a.iter().map(Action::c7n_class_name).collect();
    assert_eq!(
        names,
        [
            Some("SetBucketEncryption"),
            Some("BucketTag"),
            Some("MarkBucketForOp"),
            Some("RemoveBucketTag"),
            Some("DeleteBucket"),
            Some("SetPolicyStatement"),
            Some("Notify")
        ]
    );
    assert!(matches!(&a[6], Action::Unsupported { name, .. } if name == "notify"));
}

#[test]
fn bad_parameters_are_errors() {
    for (yaml, want) in [
        (
            "      - type: set-bucket-encryption\n        crypto: DES\n",
            "actions[0].crypto",
        ),
        (
            "      - type: set-bucket-encryption\n        key: alias/x\n",
            "actions[0].key",
        ),
        (
            "      - type: tag\n        key: a\n        tag: b\n        value: c\n",
            "can't specify both",
        ),
        (
            "      - type: mark-for-op\n        op: delete\n        days: -1\n",
            "actions[0].days",
        ),
        (
            "      - type: set-statements\n        remove: some\n",
            "actions[0].remove",
        ),
        ("      - type: tag\n        msg: x\n", "unknown key `msg`"),
    ] {
        let doc = format!("policies:\n  - name: p\n    resource: s3\n    actions:\n{yaml}");
        let e = parse_str("a.yml", &doc).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml}: {e}");
    }
}
