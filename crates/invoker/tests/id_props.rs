//! Properties of the id validators (`czero_invoker::ids`):
//!
//! - every name built by AWS's bucket-naming grammar is accepted, and whatever is accepted
//!   obeys each rule (length, alphabet, ends, no `..`, not an IPv4 address, no reserved
//!   prefix or suffix), checked independently of the validator's own code;
//! - one forbidden character, `..`, or a path separator put into a valid name rejects it;
//! - an ARN assembled from valid parts is accepted and splits back into those parts; one
//!   part replaced by junk rejects it;
//! - the generic rule never accepts a control character, a `..` path segment or an
//!   unbounded length, and accepts any other non-empty printable id.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use czero_invoker::ids::{MAX_GENERIC_ID, arn, bucket_name, check, generic};
use proptest::prelude::*;

const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// AWS's rules, written out again as the oracle.
fn obeys_bucket_rules(n: &str) -> bool {
    let b = n.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !n.contains("..")
        && !is_ipv4(n)
        && !RESERVED_PREFIXES.iter().any(|p| n.starts_with(p))
        && !RESERVED_SUFFIXES.iter().any(|s| n.ends_with(s))
}

fn is_ipv4(n: &str) -> bool {
    let parts: Vec<&str> = n.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Names from the grammar: alphanumeric ends, `.`/`-` inside, no `..`.
fn bucket() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]|\\.[a-z0-9]){1,61}[a-z0-9]"
        .prop_filter("61 characters at most inside", |s| s.len() <= 63)
        .prop_filter("reserved or an address", |s| obeys_bucket_rules(s))
}

fn partition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("aws".to_string()),
        Just("aws-cn".to_string()),
        Just("aws-us-gov".to_string()),
        Just("aws-iso-b".to_string()),
    ]
}

fn region() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{2}-(gov-)?(east|west|north|south|central|southeast)-[1-9]",
    ]
}

fn account() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[0-9]{12}"]
}

fn arn_resource() -> impl Strategy<Value = String> {
    "[a-z]{1,12}(/[A-Za-z0-9_+=,.@-]{1,20}){0,3}(:[0-9]{1,3})?"
        .prop_filter("no `..` segment", |s| !s.split('/').any(|x| x == ".."))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn grammar_names_are_accepted(name in bucket()) {
        prop_assert_eq!(bucket_name(&name), Ok(()));
        prop_assert_eq!(check("aws.s3", &name), Ok(()));
        let arn_form = format!("arn:aws:s3:::{name}");
        prop_assert_eq!(check("s3", &arn_form), Ok(()));
    }

    #[test]
    fn accepted_names_obey_every_rule(name in "[a-z0-9.\\-_A-Z/ ]{0,70}") {
        prop_assert_eq!(bucket_name(&name).is_ok(), obeys_bucket_rules(&name), "{}", name);
    }

    #[test]
    fn arbitrary_text_is_judged_like_the_oracle(name in any::<String>()) {
        prop_assert_eq!(bucket_name(&name).is_ok(), obeys_bucket_rules(&name));
    }

    #[test]
    fn one_bad_character_rejects_a_name(
        name in bucket(),
        at in any::<prop::sample::Index>(),
        bad in prop_oneof![
            Just("/"), Just("\\"), Just(".."), Just("_"), Just("A"), Just(" "),
            Just("\n"), Just("\u{0}"), Just("é"), Just("%2e"),
        ],
    ) {
        let i = at.index(name.len() + 1);
        let mutated = format!("{}{bad}{}", &name[..i], &name[i..]);
        prop_assert!(bucket_name(&mutated).is_err(), "{:?}", mutated);
    }

    #[test]
    fn arns_from_valid_parts_round_trip(
        p in partition(),
        svc in "[a-z][a-z0-9-]{1,20}",
        r in region(),
        a in account(),
        res in arn_resource(),
    ) {
        let s = format!("arn:{p}:{svc}:{r}:{a}:{res}");
        let parsed = arn(&s).unwrap();
        prop_assert_eq!(
            (parsed.partition, parsed.service, parsed.region, parsed.account, parsed.resource),
            (p.as_str(), svc.as_str(), r.as_str(), a.as_str(), res.as_str())
        );
        prop_assert_eq!(check("aws.ec2", &s), Ok(()));
    }

    #[test]
    fn one_junk_part_rejects_an_arn(
        p in partition(),
        r in region(),
        a in account(),
        res in arn_resource(),
        which in 0usize..5,
        junk in prop_oneof![
            Just("us east 1"), Just(""), Just("../.."), Just("a\nb"), Just("{x}"), Just("é"),
        ],
    ) {
        let mut parts = [p, "ec2".to_string(), r, a, res];
        // Junk in every part; only region and account may be empty.
        if junk.is_empty() && matches!(which, 2 | 3) {
            return Ok(());
        }
        parts[which] = junk.to_string();
        let s = format!("arn:{}", parts.join(":"));
        prop_assert!(arn(&s).is_err(), "{:?}", s);
    }

    #[test]
    fn the_generic_rule_bounds_ids(id in any::<String>()) {
        let ok = generic(&id).is_ok();
        let expected = !id.is_empty()
            && id.chars().count() <= MAX_GENERIC_ID
            && !id.chars().any(char::is_control)
            && !id.split(['/', '\\']).any(|s| s == "..");
        prop_assert_eq!(ok, expected, "{:?}", id);
    }

    #[test]
    fn control_characters_and_traversal_are_never_generic_ids(
        id in "[a-z0-9-]{1,20}",
        bad in prop_oneof![Just("\u{7}"), Just("\u{1b}[2J"), Just("/../"), Just("\\..\\")],
    ) {
        let inside = format!("{id}{bad}{id}");
        let after = format!("{id}{bad}");
        prop_assert!(generic(&inside).is_err());
        prop_assert!(check("aws.iam-user", &after).is_err());
    }
}
