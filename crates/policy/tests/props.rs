//! Properties: `not` inverts, `eq`/`ne` are complementary, and the parser never panics on
//! arbitrary text or arbitrary YAML structures (the stable stand-in for the fuzz target).

use chrono::Utc;
use czero_policy::{EvalContext, Filter, ValueFilter, parse_str};
use proptest::prelude::*;
use serde_json::{Value, json};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z0-9./* -]{0,8}".prop_map(Value::String),
    ]
}

fn json_tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z:._-]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const OPS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not-in",
    "ni",
    "contains",
    "difference",
    "intersect",
    "glob",
    "regex",
];
const TYPES: &[&str] = &[
    "age",
    "expiration",
    "integer",
    "float",
    "size",
    "normalize",
    "swap",
    "date",
    "version",
    "unique_size",
];

fn ctx() -> EvalContext {
    EvalContext { now: Utc::now() }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn not_inverts_a_single_filter(v in scalar(), r in scalar(), op in prop::sample::select(OPS)) {
        let vf = match ValueFilter::new("k", Some(op), Some(v), None) { Ok(f) => f, Err(_) => return Ok(()) };
        let res = json!({"k": r});
        let f = Filter::Value(vf);
        let not = Filter::Not(vec![f.clone()]);
        if let (Ok(a), Ok(b)) = (f.matches(&res, &ctx()), not.matches(&res, &ctx())) {
            prop_assert_eq!(a, !b);
        }
    }

    #[test]
    fn eq_and_ne_are_complementary(v in scalar(), r in scalar()) {
        prop_assume!(!matches!(&v, Value::String(s) if ["absent", "present", "not-null", "empty"].contains(&s.as_str())));
        let res = json!({"k": r});
        let eq = ValueFilter::new("k", Some("eq"), Some(v.clone()), None).unwrap().matches(&res, Utc::now()).unwrap();
        let ne = ValueFilter::new("k", Some("ne"), Some(v), None).unwrap().matches(&res, Utc::now()).unwrap();
        prop_assert_ne!(eq, ne);
    }

    #[test]
    fn value_filters_never_panic(key in "[a-zA-Z:.\\[\\]*_-]{1,12}", v in json_tree(), res in json_tree(),
                                 op in prop::sample::select(OPS), vt in prop::option::of(prop::sample::select(TYPES))) {
        if let Ok(f) = ValueFilter::new(&key, Some(op), Some(v), vt) {
            let _ = f.matches(&res, Utc::now());
        }
    }

    #[test]
    fn parser_never_panics_on_text(text in "\\PC{0,200}") {
        let _ = parse_str("fuzz.yml", &text);
    }

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_str("fuzz.yml", &String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parser_never_panics_on_yaml_trees(tree in json_tree(), policy in json_tree()) {
        let _ = parse_str("t.yml", &serde_yaml::to_string(&tree).unwrap_or_default());
        let wrapped = json!({"policies": [policy]});
        let _ = parse_str("t.yml", &serde_yaml::to_string(&wrapped).unwrap_or_default());
        let mut p = json!({"name": "p", "resource": "s3"});
        if let (Value::Object(m), Value::Object(extra)) = (&mut p, &policy) {
            for (k, v) in extra { m.insert(k.clone(), v.clone()); }
        }
        let _ = parse_str("t.yml", &json!({"policies": [p]}).to_string());
    }

    #[test]
    fn parser_never_panics_on_policy_shaped_trees(filters in prop::collection::vec(json_tree(), 0..4),
                                                  actions in prop::collection::vec(json_tree(), 0..4),
                                                  mode in json_tree()) {
        let doc = json!({"policies": [{"name": "p", "resource": "aws.s3", "filters": filters, "actions": actions, "mode": mode}]});
        let _ = parse_str("t.yml", &doc.to_string());
        let doc = json!({"policies": [{"name": "p", "resource": "aws.s3", "filters": [{"type": "value", "key": "k", "value": mode}]}]});
        if let Ok(f) = parse_str("t.yml", &doc.to_string()) {
            for r in &filters { let _ = f.policies[0].filters[0].matches(r, &ctx()); }
        }
    }
}
