//! Properties of the event parser over arbitrary JSON and over mutated fixtures (a field
//! dropped, a type changed, a huge string, deep nesting):
//!
//! - it never panics, and the answer is a parsed event, a skip, or one clear error: a
//!   single line that names the field (`detail.findings[0].Resources[1].Id`), except for
//!   input that is not JSON at all, not an object, or over the size limit;
//! - for a mutated fixture the named field is the mutated one, or its parent or child;
//! - a parsed event's resource ids (and accounts, regions) are strings of the input;
//! - parsing is deterministic, and bytes and an already-decoded value parse alike.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use czero_invoker::event::{EventError, MAX_EVENT_BYTES, Parsed, parse_bytes, parse_value};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value};

const FIXTURES: [&str; 8] = [
    include_str!("../fixtures/cloudtrail-createbucket.json"),
    include_str!("../fixtures/cloudtrail-putbucketacl-cross-account.json"),
    include_str!("../fixtures/cloudtrail-createbucket-failed.json"),
    include_str!("../fixtures/securityhub-multi-resource.json"),
    include_str!("../fixtures/guardduty-s3-public.json"),
    include_str!("../fixtures/guardduty-ec2-cross-account.json"),
    include_str!("../fixtures/config-compliance.json"),
    include_str!("../fixtures/ec2-state-change.json"),
];

/// Keys and values the parser branches on, so random documents reach past the envelope.
const KEYS: &[&str] = &[
    "detail-type",
    "source",
    "detail",
    "id",
    "account",
    "region",
    "resources",
    "time",
    "version",
    "eventName",
    "errorCode",
    "recipientAccountId",
    "awsRegion",
    "requestParameters",
    "bucketName",
    "findings",
    "AwsAccountId",
    "Region",
    "Types",
    "Severity",
    "Label",
    "Resources",
    "Id",
    "Type",
    "type",
    "severity",
    "accountId",
    "resource",
    "resourceType",
    "s3BucketDetails",
    "name",
    "instanceDetails",
    "instanceId",
    "accessKeyDetails",
    "accessKeyId",
    "lambdaDetails",
    "functionArn",
    "resourceId",
    "configRuleName",
    "awsAccountId",
];
const DETAIL_TYPES: &[&str] = &[
    "AWS API Call via CloudTrail",
    "Security Hub Findings - Imported",
    "GuardDuty Finding",
    "Config Rules Compliance Change",
    "Scheduled Event",
];
const SOURCES: &[&str] = &[
    "aws.s3",
    "aws.securityhub",
    "aws.guardduty",
    "aws.config",
    "aws.ec2",
];
const WORDS: &[&str] = &[
    "CreateBucket",
    "HIGH",
    "CRITICAL",
    "low",
    "AwsS3Bucket",
    "arn:aws:s3:::b",
    "123456789012",
    "us-east-1",
    "2026-11-28T05:12:44Z",
    "",
];

// ---- paths, in the parser's notation -------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// `detail.findings[0].Id` back into segments (the parser's keys hold no `.` or `[`).
fn parse_path(s: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in s.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Seg::Key(key.to_owned()));
        }
        for p in pieces {
            out.push(Seg::Index(p.trim_end_matches(']').parse().unwrap()));
        }
    }
    out
}

fn all_paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    let children: Vec<(Seg, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, c)| (Seg::Key(k.clone()), c)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (Seg::Index(i), c))
            .collect(),
        _ => vec![],
    };
    for (seg, child) in children {
        prefix.push(seg);
        out.push(prefix.clone());
        all_paths(child, prefix, out);
        prefix.pop();
    }
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.get_mut(i),
    })
}

/// One names the other, its parent or its child: `a` equals `b` or is a prefix of it.
fn related(a: &[Seg], b: &[Seg]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

// ---- mutations ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    /// Replace with a value of another JSON type (the choice picks which).
    ChangeType(u8),
    /// Replace with a string of this many copies of the char.
    Huge(usize, char),
    /// Wrap in this many arrays (true) or single-key objects (false).
    Nest(usize, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Drop),
        any::<u8>().prop_map(Mutation::ChangeType),
        (
            prop_oneof![1usize..4096, 200_000usize..=1_100_000],
            select(vec!['a', 'é', '"', '\\', '\u{0}', '😀'])
        )
            .prop_map(|(n, c)| Mutation::Huge(n, c)),
        (1usize..300, any::<bool>()).prop_map(|(d, a)| Mutation::Nest(d, a)),
    ]
}

fn type_of(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn of_type(t: u8) -> Value {
    match t {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => Value::from(-1.5),
        3 => Value::from("x"),
        4 => serde_json::json!(["x", 1]),
        _ => serde_json::json!({"Id": "x"}),
    }
}

fn apply(doc: &mut Value, path: &[Seg], m: &Mutation) {
    match m {
        Mutation::Drop => {
            let (last, parent) = path.split_last().unwrap();
            match (get_mut(doc, parent).unwrap(), last) {
                (Value::Object(o), Seg::Key(k)) => {
                    o.shift_remove(k);
                }
                (Value::Array(a), Seg::Index(i)) => {
                    a.remove(*i);
                }
                (p, s) => panic!("no {s:?} in {p}"),
            }
        }
        Mutation::ChangeType(choice) => {
            let target = get_mut(doc, path).unwrap();
            let current = type_of(target);
            let mut t = choice % 6;
            if t == current {
                t = (t + 1) % 6;
            }
            *target = of_type(t);
        }
        Mutation::Huge(n, c) => {
            *get_mut(doc, path).unwrap() = Value::String(c.to_string().repeat(*n));
        }
        Mutation::Nest(d, arrays) => {
            let target = get_mut(doc, path).unwrap();
            let mut v = target.take();
            for _ in 0..*d {
                v = if *arrays {
                    Value::Array(vec![v])
                } else {
                    let mut m = Map::new();
                    m.insert("n".into(), v);
                    Value::Object(m)
                };
            }
            *target = v;
        }
    }
}

// ---- the checks -----------------------------------------------------------------------

/// The field an error names, if it names one.
fn named(e: &EventError) -> Option<Vec<Seg>> {
    match e {
        EventError::Field { field, .. } => Some(parse_path(field)),
        EventError::Envelope(msg) => msg
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(|k| vec![Seg::Key(k.to_owned())]),
        _ => None,
    }
}

/// What holds for every input: determinism, agreement of the two entry points, resource
/// ids from the input, and errors that are one line and name a field where one exists.
/// Returns the size and both results for further checks.
fn check(
    doc: &Value,
) -> (
    usize,
    Result<Parsed, EventError>,
    Result<Parsed, EventError>,
) {
    let bytes = serde_json::to_vec(doc).unwrap();
    let from_bytes = parse_bytes(&bytes);
    assert_eq!(
        from_bytes,
        parse_bytes(&bytes),
        "parse_bytes is deterministic"
    );
    let from_value = parse_value(doc.clone());
    assert_eq!(
        from_value,
        parse_value(doc.clone()),
        "parse_value is deterministic"
    );
    match &from_bytes {
        Err(EventError::TooLarge(n)) => assert!(*n > MAX_EVENT_BYTES && *n == bytes.len()),
        // Only serde_json's nesting limit refuses JSON that serialised from a value.
        Err(EventError::Json(msg)) => {
            assert!(msg.contains("recursion limit"), "{msg}");
            assert!(depth(doc) > 100, "depth {}: {msg}", depth(doc));
        }
        other => assert_eq!(other, &from_value, "bytes and value parse alike"),
    }
    match &from_value {
        Ok(Parsed::Event(e)) => {
            let mut seen = Vec::new();
            strings(doc, &mut seen);
            for s in e.resource_ids.iter().chain(&e.accounts).chain(&e.regions) {
                assert!(!s.is_empty(), "empty id in {e:?}");
                assert!(seen.contains(s), "{s:?} is not a string of the input");
            }
            assert_eq!(&e.raw, doc, "the raw event is the input");
        }
        Ok(Parsed::Skip(s)) => assert!(!s.to_string().is_empty()),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "one line: {msg:?}");
            match e {
                EventError::Envelope(m) if m == "expected a JSON object" => {
                    assert!(!doc.is_object())
                }
                EventError::Envelope(_) | EventError::Field { .. } => {
                    let path = named(e).unwrap_or_else(|| panic!("names no field: {msg}"));
                    // The field is missing or wrong where it is named: its parent exists.
                    let parent = &path[..path.len() - 1];
                    assert!(get(doc, parent).is_some(), "{msg}: no parent in the input");
                }
                other => panic!("a decoded value cannot give {other}"),
            }
        }
    }
    (bytes.len(), from_bytes, from_value)
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(WORDS).prop_map(str::to_owned),
        select(DETAIL_TYPES).prop_map(str::to_owned),
        select(SOURCES).prop_map(str::to_owned),
        ".{0,12}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![select(KEYS).prop_map(str::to_owned), "[a-z]{1,6}"],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An envelope whose fields are mostly right, with an arbitrary detail.
fn arb_envelope() -> impl Strategy<Value = Value> {
    let field = |s: BoxedStrategy<Value>| prop_oneof![8 => s, 1 => arb_json()];
    (
        field(select(DETAIL_TYPES).prop_map(Value::from).boxed()),
        field(select(SOURCES).prop_map(Value::from).boxed()),
        prop::option::of(field(arb_string().prop_map(Value::from).boxed())),
        prop::option::of(field(
            prop::collection::vec(arb_string().prop_map(Value::from), 0..3)
                .prop_map(Value::Array)
                .boxed(),
        )),
        prop::option::of(arb_json()),
    )
        .prop_map(|(dt, src, id, resources, detail)| {
            let mut m = Map::new();
            m.insert("detail-type".into(), dt);
            m.insert("source".into(), src);
            if let Some(id) = id {
                m.insert("id".into(), id);
            }
            if let Some(r) = resources {
                m.insert("resources".into(), r);
            }
            if let Some(d) = detail {
                m.insert("detail".into(), d);
            }
            Value::Object(m)
        })
}

fn fixture(i: usize) -> Value {
    serde_json::from_str(FIXTURES[i]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_parse_or_name_the_mutated_field(
        which in 0..FIXTURES.len(),
        at in any::<Index>(),
        m in mutation(),
    ) {
        let mut doc = fixture(which);
        let mut paths = Vec::new();
        all_paths(&doc, &mut Vec::new(), &mut paths);
        let path = at.get(&paths).clone();
        apply(&mut doc, &path, &m);
        let (len, from_bytes, from_value) = check(&doc);
        match (&from_bytes, &m) {
            (Err(EventError::TooLarge(_)), Mutation::Huge(..)) => {}
            (Err(EventError::TooLarge(_)), _) => panic!("{len} bytes too large after {m:?}"),
            (Err(EventError::Json(_)), Mutation::Nest(..)) => {}
            (Err(e), _) if !matches!(e, EventError::Field { .. } | EventError::Envelope(_)) => {
                panic!("{m:?} at {}: {e}", render(&path))
            }
            _ => {}
        }
        // The decoded value has no size or depth limit: its error must name the mutation.
        match &from_value {
            Err(e @ (EventError::Field { .. } | EventError::Envelope(_))) => {
                let field = named(e).unwrap();
                prop_assert!(
                    related(&field, &path),
                    "{m:?} at {} but the error names {}: {e}",
                    render(&path),
                    render(&field)
                );
            }
            Err(e) => panic!("{m:?} at {}: {e}", render(&path)),
            Ok(_) => {}
        }
    }

    #[test]
    fn arbitrary_envelopes_parse_or_name_a_field(doc in arb_envelope()) {
        let _ = check(&doc);
    }

    #[test]
    fn arbitrary_json_never_panics(doc in arb_json()) {
        let _ = check(&doc);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let a = parse_bytes(&bytes);
        prop_assert_eq!(&a, &parse_bytes(&bytes));
        if let Err(e) = &a {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }
}

/// The mutations do what they say (a property over a no-op mutation would pass vacuously).
#[test]
fn mutations_change_the_document() {
    let base = fixture(3);
    let path = parse_path("detail.findings[0].Resources[1].Id");
    assert_eq!(render(&path), "detail.findings[0].Resources[1].Id");
    for m in [
        Mutation::Drop,
        Mutation::ChangeType(3),
        Mutation::Nest(2, true),
        Mutation::Nest(1, false),
    ] {
        let mut doc = base.clone();
        apply(&mut doc, &path, &m);
        assert_ne!(doc, base, "{m:?}");
        let err = parse_value(doc).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("detail.findings[0].Resources[1].Id"),
            "{m:?}: {msg}"
        );
    }
    let mut doc = base.clone();
    apply(&mut doc, &path, &Mutation::Huge(10, 'a'));
    match parse_value(doc).unwrap() {
        Parsed::Event(e) => assert_eq!(e.resource_ids[1], "aaaaaaaaaa"),
        Parsed::Skip(s) => panic!("{s}"),
    }
    // Nesting past serde_json's limit is refused as JSON, before any field is read.
    let mut doc = base.clone();
    apply(&mut doc, &parse_path("detail"), &Mutation::Nest(200, true));
    let bytes = serde_json::to_vec(&doc).unwrap();
    assert!(
        matches!(parse_bytes(&bytes), Err(EventError::Json(m)) if m.contains("recursion limit"))
    );
}
