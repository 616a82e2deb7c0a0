//! Bad policy files report one clear error at the right place; good ones parse; the example
//! policies shipped in `policies/` validate.

use czero_policy::{FeatureKind, parse_str};

/// (file, text, expected `file:line:col: path` prefix, message fragment)
const BAD: &[(&str, &str, &str, &str)] = &[
    (
        "bad-yaml.yml",
        include_str!("../fixtures/bad/bad-yaml.yml"),
        "bad-yaml.yml:4:1",
        "invalid YAML",
    ),
    (
        "tabs.yml",
        include_str!("../fixtures/bad/tabs.yml"),
        "tabs.yml:2:1",
        "cannot start any token",
    ),
    (
        "top-not-mapping.yml",
        include_str!("../fixtures/bad/top-not-mapping.yml"),
        "top-not-mapping.yml:1:1",
        "must be a mapping",
    ),
    (
        "unknown-top-key.yml",
        include_str!("../fixtures/bad/unknown-top-key.yml"),
        "unknown-top-key.yml:1:1: policy",
        "unknown top-level key `policy`",
    ),
    (
        "missing-policies.yml",
        include_str!("../fixtures/bad/missing-policies.yml"),
        "missing-policies.yml:1:1",
        "`policies` list missing",
    ),
    (
        "empty-policies.yml",
        include_str!("../fixtures/bad/empty-policies.yml"),
        "empty-policies.yml:1:1: policies",
        "is empty",
    ),
    (
        "policies-not-list.yml",
        include_str!("../fixtures/bad/policies-not-list.yml"),
        "policies-not-list.yml:1:1: policies",
        "must be a list",
    ),
    (
        "unknown-policy-key.yml",
        include_str!("../fixtures/bad/unknown-policy-key.yml"),
        "unknown-policy-key.yml:4:5: policies[0].filter",
        "did you mean `filters`?",
    ),
    (
        "bad-name.yml",
        include_str!("../fixtures/bad/bad-name.yml"),
        "bad-name.yml:2:5: policies[0].name",
        "invalid policy name",
    ),
    (
        "duplicate-names.yml",
        include_str!("../fixtures/bad/duplicate-names.yml"),
        "duplicate-names.yml:4:5: policies[1].name",
        "duplicate policy name `same` (first at line 2)",
    ),
    (
        "missing-resource.yml",
        include_str!("../fixtures/bad/missing-resource.yml"),
        "missing-resource.yml:2:5: policies[0]",
        "missing required key `resource`",
    ),
    (
        "unknown-resource.yml",
        include_str!("../fixtures/bad/unknown-resource.yml"),
        "unknown-resource.yml:3:5: policies[0].resource",
        "did you mean `aws.s3`?",
    ),
    (
        "unknown-filter.yml",
        include_str!("../fixtures/bad/unknown-filter.yml"),
        "unknown-filter.yml:5:9: policies[0].filters[0]",
        "unknown filter `bucket-encyrption` for aws.s3; did you mean `bucket-encryption`?",
    ),
    (
        "unknown-action.yml",
        include_str!("../fixtures/bad/unknown-action.yml"),
        "unknown-action.yml:5:9: policies[0].actions[0]",
        "did you mean `set-bucket-encryption`?",
    ),
    (
        "bad-op.yml",
        include_str!("../fixtures/bad/bad-op.yml"),
        "bad-op.yml:7:9: policies[0].filters[0].op",
        "invalid op `equals`",
    ),
    (
        "bad-regex.yml",
        include_str!("../fixtures/bad/bad-regex.yml"),
        "bad-regex.yml:8:9: policies[0].filters[0].value",
        "invalid regex `(unclosed`",
    ),
    (
        "lookaround-regex.yml",
        include_str!("../fixtures/bad/lookaround-regex.yml"),
        "lookaround-regex.yml:8:9: policies[0].filters[0].value",
        "lookaround",
    ),
    (
        "bad-value-type.yml",
        include_str!("../fixtures/bad/bad-value-type.yml"),
        "bad-value-type.yml:7:9: policies[0].filters[0].value_type",
        "did you mean `age`?",
    ),
    (
        "unknown-mode.yml",
        include_str!("../fixtures/bad/unknown-mode.yml"),
        "unknown-mode.yml:5:7: policies[0].mode.type",
        "did you mean `cloudtrail`?",
    ),
    (
        "cloudtrail-no-events.yml",
        include_str!("../fixtures/bad/cloudtrail-no-events.yml"),
        "cloudtrail-no-events.yml:4:5: policies[0].mode",
        "requires `events`",
    ),
    (
        "bad-ids-jmespath.yml",
        include_str!("../fixtures/bad/bad-ids-jmespath.yml"),
        "bad-ids-jmespath.yml:9:11: policies[0].mode.events[0].ids",
        "invalid JMESPath",
    ),
    (
        "unknown-shortcut.yml",
        include_str!("../fixtures/bad/unknown-shortcut.yml"),
        "unknown-shortcut.yml:7:11: policies[0].mode.events[0]",
        "event shortcut not defined: `PutBucketPolicy`",
    ),
    (
        "filters-not-list.yml",
        include_str!("../fixtures/bad/filters-not-list.yml"),
        "filters-not-list.yml:4:5: policies[0].filters",
        "must be a list",
    ),
    (
        "wrong-type-bool.yml",
        include_str!("../fixtures/bad/wrong-type-bool.yml"),
        "wrong-type-bool.yml:6:9: policies[0].actions[0].enabled",
        "must be a boolean",
    ),
    (
        "unknown-action-key.yml",
        include_str!("../fixtures/bad/unknown-action-key.yml"),
        "unknown-action-key.yml:6:9: policies[0].actions[0].BlockPublicAcl",
        "did you mean `BlockPublicAcls`?",
    ),
    (
        "value-missing-key.yml",
        include_str!("../fixtures/bad/value-missing-key.yml"),
        "value-missing-key.yml:5:9: policies[0].filters[0]",
        "missing `key`",
    ),
    (
        "mark-for-op-bad-op.yml",
        include_str!("../fixtures/bad/mark-for-op-bad-op.yml"),
        "mark-for-op-bad-op.yml:6:9: policies[0].actions[0].op",
        "invalid op `stop`",
    ),
    (
        "bad-date-value.yml",
        include_str!("../fixtures/bad/bad-date-value.yml"),
        "bad-date-value.yml:9:9: policies[0].filters[0].value",
        "invalid date value",
    ),
    (
        "encryption-key-and-bucket-key.yml",
        include_str!("../fixtures/bad/encryption-key-and-bucket-key.yml"),
        "encryption-key-and-bucket-key.yml:5:9: policies[0].filters[0]",
        "cannot both be set",
    ),
    (
        "mode-unknown-key.yml",
        include_str!("../fixtures/bad/mode-unknown-key.yml"),
        "mode-unknown-key.yml:6:7: policies[0].mode.event",
        "unknown key `event`",
    ),
];

#[test]
fn bad_files_name_file_line_and_key() {
    for (name, text, at, fragment) in BAD {
        let errs = parse_str(name, text).expect_err(name);
        let hit = errs
            .errors
            .iter()
            .map(ToString::to_string)
            .find(|e| e.starts_with(&format!("{at}:")) || e.starts_with(&format!("{at} ")));
        let Some(hit) = hit else {
            panic!("{name}: no error at `{at}` in:\n{errs}")
        };
        assert!(hit.contains(fragment), "{name}: `{hit}` lacks `{fragment}`");
    }
}

#[test]
fn all_errors_are_reported_not_just_the_first() {
    let errs = parse_str("many.yml", include_str!("../fixtures/bad/many-errors.yml")).unwrap_err();
    let text = errs.to_string();
    assert_eq!(errs.errors.len(), 3, "{text}");
    assert!(
        text.contains("many.yml:7:9: policies[0].filters[0].op: invalid op `bogus`"),
        "{text}"
    );
    assert!(
        text.contains("many.yml:10:9: policies[0].actions[0]: unknown action `nope`"),
        "{text}"
    );
    assert!(
        text.contains("many.yml:14:7: policies[1].mode.type"),
        "{text}"
    );
}

#[test]
fn valid_c7n_features_we_do_not_run_are_listed_not_rejected() {
    let f = parse_str(
        "g.yml",
        include_str!("../fixtures/good/notify-fallback.yml"),
    )
    .unwrap();
    let kinds: Vec<(FeatureKind, &str)> = f
        .policies
        .iter()
        .flat_map(|p| p.unsupported.iter().map(|u| (u.kind, u.name.as_str())))
        .collect();
    assert!(kinds.contains(&(FeatureKind::Action, "notify")));
    assert!(kinds.contains(&(FeatureKind::Resource, "aws.ec2")));
    // Every valid mode parses; whether it runs natively depends on the resource type.
    assert_eq!(f.policies[1].mode, czero_policy::Mode::Periodic);
    let gap = f.policies[1].native_gap().expect("ec2 is not native");
    assert_eq!(
        (gap.kind, gap.name.as_str()),
        (FeatureKind::Resource, "aws.ec2")
    );
    let gap = f.policies[0].native_gap().expect("notify is not native");
    assert_eq!(
        (gap.kind, gap.name.as_str()),
        (FeatureKind::Action, "notify")
    );
    // bucket-encryption with `key` runs natively (the engine resolves the key through KMS).
    assert_eq!(f.policies[0].unsupported.len(), 1);
    assert_eq!(f.policies[0].unsupported[0].line, 8);
}

#[test]
fn anchors_and_merge_keys_resolve() {
    let f = parse_str("a.yml", include_str!("../fixtures/good/anchors-vars.yml")).unwrap();
    assert_eq!(f.policies.len(), 2);
    assert_eq!(f.policies[0].resource, "aws.s3");
    assert_eq!(f.policies[0].filters.len(), 1);
    assert_eq!(f.policies[1].resource, "aws.s3");
}

const EXAMPLES: &[(&str, &str)] = &[
    (
        "s3-createbucket.yml",
        include_str!("../../../policies/s3-createbucket.yml"),
    ),
    (
        "s3-hub-finding-public.yml",
        include_str!("../../../policies/s3-hub-finding-public.yml"),
    ),
    (
        "s3-audit-tags.yml",
        include_str!("../../../policies/s3-audit-tags.yml"),
    ),
    (
        "s3-policy-statements.yml",
        include_str!("../../../policies/s3-policy-statements.yml"),
    ),
    (
        "s3-global-grants.yml",
        include_str!("../../../policies/s3-global-grants.yml"),
    ),
    (
        "s3-unencrypted-mark.yml",
        include_str!("../../../policies/s3-unencrypted-mark.yml"),
    ),
];

#[test]
fn example_policies_validate_and_run_natively() {
    for (name, text) in EXAMPLES {
        let f = parse_str(name, text).unwrap_or_else(|e| panic!("{e}"));
        for p in &f.policies {
            assert!(p.unsupported.is_empty(), "{name}: {:?}", p.unsupported);
        }
    }
    let f = parse_str("d", EXAMPLES[0].1).unwrap();
    assert_eq!(f.policies[0].actions.len(), 4);
    let classes: Vec<_> = f.policies[0]
        .actions
        .iter()
        .map(|a| a.c7n_class_name().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "SetBucketEncryption",
            "SetPublicBlock",
            "ToggleVersioning",
            "BucketTag"
        ]
    );
}

#[test]
fn c7n_only_jmespath_functions_go_to_the_fallback() {
    let doc = r#"{"policies": [{"name": "p", "resource": "s3", "filters": [{"type": "value", "key": "split('-', Name)[0]", "value": "prod"}]}]}"#;
    let p = parse_str("j.yml", doc).unwrap().policies.remove(0);
    assert_eq!(p.unsupported.len(), 1);
    assert_eq!(p.unsupported[0].kind, FeatureKind::Other);
    assert_eq!(p.unsupported[0].path, "policies[0].filters[0].key");
}
