//! c7n's `ValueFilter` (c7n/filters/core.py): key lookup, `value_type` conversion, the
//! special values and the operators, with Python's semantics.

use crate::dates::parse_date;
use crate::filters::EvalError;
use crate::pyre;
use crate::pyval::{self, Py, TypeErr, Uncaught};
use chrono::{DateTime, Duration, Utc};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use std::cmp::Ordering;

/// c7n's OPERATORS (aliases folded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Glob,
    Regex,
    RegexCase,
    In,
    NotIn,
    Contains,
    Difference,
    Intersect,
    Mod,
}

impl Op {
    pub(crate) const NAMES: &'static [&'static str] = &[
        "eq",
        "equal",
        "ne",
        "not-equal",
        "gt",
        "greater-than",
        "ge",
        "gte",
        "le",
        "lte",
        "lt",
        "less-than",
        "glob",
        "regex",
        "regex-case",
        "in",
        "ni",
        "not-in",
        "contains",
        "difference",
        "intersect",
        "mod",
    ];

    pub fn from_name(s: &str) -> Option<Op> {
        Some(match s {
            "eq" | "equal" => Op::Eq,
            "ne" | "not-equal" => Op::Ne,
            "gt" | "greater-than" => Op::Gt,
            "ge" | "gte" => Op::Gte,
            "le" | "lte" => Op::Lte,
            "lt" | "less-than" => Op::Lt,
            "glob" => Op::Glob,
            "regex" => Op::Regex,
            "regex-case" => Op::RegexCase,
            "in" => Op::In,
            "ni" | "not-in" => Op::NotIn,
            "contains" => Op::Contains,
            "difference" => Op::Difference,
            "intersect" => Op::Intersect,
            "mod" => Op::Mod,
            _ => return None,
        })
    }
}

/// c7n's VALUE_TYPES we evaluate (`resource_count` is a whole-set filter: unsupported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ValueType {
    Age,
    Expiration,
    Integer,
    Float,
    Size,
    UniqueSize,
    Normalize,
    Cidr,
    CidrSize,
    Swap,
    Date,
    Version,
    Expr,
}

impl ValueType {
    pub(crate) const ALL: &'static [&'static str] = &[
        "age",
        "integer",
        "expiration",
        "normalize",
        "size",
        "cidr",
        "cidr_size",
        "swap",
        "resource_count",
        "expr",
        "unique_size",
        "date",
        "version",
        "float",
    ];

    pub fn from_name(s: &str) -> Option<ValueType> {
        Some(match s {
            "age" => ValueType::Age,
            "expiration" => ValueType::Expiration,
            "integer" => ValueType::Integer,
            "float" => ValueType::Float,
            "size" => ValueType::Size,
            "unique_size" => ValueType::UniqueSize,
            "normalize" => ValueType::Normalize,
            "cidr" => ValueType::Cidr,
            "cidr_size" => ValueType::CidrSize,
            "swap" => ValueType::Swap,
            "date" => ValueType::Date,
            "version" => ValueType::Version,
            "expr" => ValueType::Expr,
            _ => return None,
        })
    }
}

/// A `value` (or `event`) filter.
#[derive(Debug, Clone, Serialize)]
pub struct ValueFilter {
    pub key: String,
    /// The policy value; `None` when not given (c7n compares with `None`).
    pub value: Option<Value>,
    pub op: Option<Op>,
    /// The op as written: c7n maps a missing value to `()` only for `in` and `not-in`
    /// (not for the `ni` alias).
    pub op_name: Option<String>,
    pub value_type: Option<ValueType>,
    pub value_regex: Option<String>,
    pub value_path: Option<String>,
    pub tag_key_transforms: Vec<String>,
    #[serde(skip)]
    pub(crate) op_regex: Option<Regex>,
    #[serde(skip)]
    pub(crate) glob: Option<Regex>,
    #[serde(skip)]
    pub(crate) capture: Option<Regex>,
}

impl ValueFilter {
    /// A filter with `key`, `op` and `value` (for tests and programmatic use).
    pub fn new(
        key: &str,
        op: Option<&str>,
        value: Option<Value>,
        value_type: Option<&str>,
    ) -> Result<Self, String> {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), "value".into());
        m.insert("key".into(), key.into());
        if let Some(o) = op {
            m.insert("op".into(), o.into());
        }
        if let Some(v) = value {
            m.insert("value".into(), v);
        }
        if let Some(t) = value_type {
            m.insert("value_type".into(), t.into());
        }
        let mut errs = Vec::new();
        let f = build(&m, &mut errs, &mut Vec::new());
        match (f, errs.first()) {
            (Some(f), None) => Ok(f),
            (_, Some((_, e))) => Err(e.clone()),
            (None, None) => Err("invalid value filter".into()),
        }
    }

    /// Evaluates against one resource. `now` anchors `age` and `expiration`.
    pub fn matches(&self, resource: &Value, now: DateTime<Utc>) -> Result<bool, EvalError> {
        self.eval(resource, now).map_err(|Uncaught(m)| {
            EvalError::Python(format!("value filter key `{}`: {m}", self.key))
        })
    }

    fn eval(&self, resource: &Value, now: DateTime<Utc>) -> Result<bool, Uncaught> {
        let mut v = match &self.value_path {
            Some(p) => Py::from_json(&jmes(p, resource)?),
            None => self.value.as_ref().map(Py::from_json).unwrap_or(Py::None),
        };
        if !resource.is_object() {
            return Ok(false);
        }
        let mut r = self.resource_value(&self.key, resource)?;
        if self
            .op_name
            .as_deref()
            .is_some_and(|o| o == "in" || o == "not-in")
            && r.is_none()
        {
            r = Py::EmptyTuple;
        }
        if let Some(vt) = self.value_type {
            (v, r) = self.process_value_type(vt, v, r, resource, now)?;
        }
        if r.is_none() && v.is_str("absent") {
            return Ok(true);
        }
        if !r.is_none() && v.is_str("present") {
            return Ok(true);
        }
        if v.is_str("not-null") && r.truthy() {
            return Ok(true);
        }
        if v.is_str("empty") && !r.truthy() {
            return Ok(true);
        }
        let Some(op) = self.op else {
            return Ok(pyval::eq(&r, &v));
        };
        let ord = |want: fn(Ordering) -> bool| -> Result<bool, Uncaught> {
            match pyval::cmp(&r, &v) {
                Ok(Some(o)) => Ok(want(o)),
                Ok(None) | Err(Ok(TypeErr)) => Ok(false),
                Err(Err(u)) => Err(u),
            }
        };
        let caught = |x: Result<bool, TypeErr>| Ok(x.unwrap_or(false));
        match op {
            Op::Eq => Ok(pyval::eq(&r, &v)),
            Op::Ne => Ok(!pyval::eq(&r, &v)),
            Op::Gt => ord(|o| o == Ordering::Greater),
            Op::Gte => ord(|o| o != Ordering::Less),
            Op::Lt => ord(|o| o == Ordering::Less),
            Op::Lte => ord(|o| o != Ordering::Greater),
            Op::Glob => match (&r, &self.glob, &v) {
                (Py::Str(s), Some(g), _) => Ok(g.is_match(s)),
                (Py::Str(s), None, Py::Str(p)) => {
                    Ok(pyre::compile_glob(p).map_err(Uncaught)?.is_match(s))
                }
                _ => Ok(false),
            },
            Op::Regex | Op::RegexCase => match (&r, &self.op_regex, &v) {
                (Py::Str(s), Some(re), _) => Ok(re.is_match(s)),
                (Py::Str(s), None, Py::Str(p)) => Ok(pyre::compile_match(p, op == Op::Regex)
                    .map_err(Uncaught)?
                    .is_match(s)),
                (Py::Str(_), None, _) => Err(Uncaught("regex value must be a string".into())),
                _ => Ok(false),
            },
            Op::In => caught(pyval::contains(&v, &r)),
            Op::NotIn => caught(pyval::contains(&v, &r).map(|b| !b)),
            Op::Contains => caught(pyval::contains(&r, &v)),
            Op::Difference => caught(pyval::difference(&r, &v)),
            Op::Intersect => caught(pyval::intersect(&r, &v)),
            Op::Mod => match pyval::modulo(&r, &v) {
                Ok(b) => Ok(b),
                Err(Ok(TypeErr)) => Ok(false),
                Err(Err(u)) => Err(u),
            },
        }
    }

    /// `BaseValueFilter.get_resource_value` (+ `value_regex`).
    fn resource_value(&self, k: &str, i: &Value) -> Result<Py, Uncaught> {
        let r = if let Some(tk) = k.strip_prefix("tag:") {
            if let Some(tags) = i.get("Tags") {
                let Value::Array(tags) = tags else {
                    return Err(Uncaught(format!("resource Tags is not a list: {tags}")));
                };
                let mut found = Py::None;
                for t in tags {
                    let Value::Object(t) = t else {
                        return Err(Uncaught("resource Tags entry is not a mapping".into()));
                    };
                    let key = match t.get("Key") {
                        Some(Value::String(s)) if !self.tag_key_transforms.is_empty() => {
                            Some(Value::String(transform(&self.tag_key_transforms, s)))
                        }
                        Some(_)
                            if !self.tag_key_transforms.is_empty() && !t.contains_key("Value") =>
                        {
                            continue;
                        }
                        other => other.cloned(),
                    };
                    if key.as_ref().and_then(Value::as_str) == Some(tk) {
                        found = t.get("Value").map(Py::from_json).unwrap_or(Py::None);
                        break;
                    }
                }
                found
            } else if let Some(labels) = i.get("labels").or_else(|| i.get("tags")) {
                match labels {
                    Value::Object(m) => m
                        .iter()
                        .find(|(key, _)| transform(&self.tag_key_transforms, key) == tk)
                        .map(|(_, v)| Py::from_json(v))
                        .unwrap_or(Py::None),
                    Value::Null if i.get("labels").is_none() => Py::None,
                    other => {
                        return Err(Uncaught(format!(
                            "resource labels are not a mapping: {other}"
                        )));
                    }
                }
            } else {
                Py::None
            }
        } else if let Some(v) = i.get(k) {
            Py::from_json(v)
        } else {
            Py::from_json(&jmes(k, i)?)
        };
        Ok(match &self.capture {
            Some(re) => match &r {
                Py::Str(s) => match re.captures(s) {
                    Some(c) => c
                        .get(1)
                        .map(|m| Py::Str(m.as_str().to_string()))
                        .unwrap_or(Py::None),
                    None => Py::None,
                },
                _ => Py::None,
            },
            None => r,
        })
    }

    /// `ValueFilter.process_value_type(sentinel=v, value=r)` → (v, r).
    fn process_value_type(
        &self,
        vt: ValueType,
        v: Py,
        r: Py,
        resource: &Value,
        now: DateTime<Utc>,
    ) -> Result<(Py, Py), Uncaught> {
        Ok(match vt {
            ValueType::Normalize => match r {
                Py::Str(s) => (v, Py::Str(s.trim().to_lowercase())),
                r => (v, r),
            },
            ValueType::Expr => {
                let Py::Str(k) = &v else {
                    return Err(Uncaught("value_type expr needs a string value".into()));
                };
                (self.resource_value(k, resource)?, r)
            }
            ValueType::Integer => {
                let n = pyval::py_int(&pyval::py_str(&r)).unwrap_or(0);
                (v, Py::Int(n))
            }
            ValueType::Float => (
                v,
                Py::Float(pyval::py_float(&pyval::py_str(&r)).unwrap_or(0.0)),
            ),
            ValueType::Size => (v, Py::Int(pyval::len(&r).unwrap_or(0) as i128)),
            ValueType::UniqueSize => {
                let n = match &r {
                    Py::List(l) => {
                        if l.iter().any(|e| matches!(e, Py::List(_) | Py::Dict(_))) {
                            0
                        } else {
                            let mut seen: Vec<&Py> = Vec::new();
                            for e in l {
                                if !seen.iter().any(|s| pyval::eq(s, e)) {
                                    seen.push(e);
                                }
                            }
                            seen.len()
                        }
                    }
                    Py::Str(s) => {
                        let mut c: Vec<char> = s.chars().collect();
                        c.sort_unstable();
                        c.dedup();
                        c.len()
                    }
                    Py::Dict(d) => d.len(),
                    _ => 0,
                };
                (v, Py::Int(n as i128))
            }
            ValueType::Swap => (r, v),
            ValueType::Date => (opt_date(parse_date(&v)), opt_date(parse_date(&r))),
            ValueType::Age | ValueType::Expiration => {
                let sentinel = match v {
                    Py::DateTime(d) => d,
                    other => {
                        let days = match other {
                            Py::Int(i) => i as f64,
                            Py::Bool(b) => b as i32 as f64,
                            Py::Float(f) => f,
                            _ => {
                                return Err(Uncaught(format!(
                                    "unsupported type for timedelta days component: {}",
                                    pyval::py_str(&other)
                                )));
                            }
                        };
                        let delta =
                            Duration::microseconds((days * 86_400_000_000.0).round() as i64);
                        if vt == ValueType::Age {
                            now - delta
                        } else {
                            now + delta
                        }
                    }
                };
                let value = parse_date(&r).map(Py::DateTime).unwrap_or(Py::Int(0));
                if vt == ValueType::Age {
                    (value, Py::DateTime(sentinel))
                } else {
                    (Py::DateTime(sentinel), value)
                }
            }
            ValueType::Cidr => {
                let s = parse_cidr(&v)?;
                let val = parse_cidr(&r)?;
                if matches!(s, Py::Addr(_)) && matches!(val, Py::Net(_)) {
                    (val, s)
                } else {
                    (s, val)
                }
            }
            ValueType::CidrSize => match parse_cidr(&r)? {
                Py::Net(n) => (v, Py::Int(n.prefix_len() as i128)),
                Py::Addr(_) => {
                    return Err(Uncaught(
                        "'IPv4Address' object has no attribute 'prefixlen'".into(),
                    ));
                }
                Py::NetList(_) => {
                    return Err(Uncaught(
                        "'IPv4List' object has no attribute 'prefixlen'".into(),
                    ));
                }
                _ => (v, Py::Int(0)),
            },
            ValueType::Version => (pyval::loose_version(&v)?, pyval::loose_version(&r)?),
        })
    }
}

fn opt_date(d: Option<DateTime<Utc>>) -> Py {
    d.map(Py::DateTime).unwrap_or(Py::None)
}

/// c7n's `parse_cidr`.
pub(crate) fn parse_cidr(v: &Py) -> Result<Py, Uncaught> {
    match v {
        Py::List(l) => Ok(Py::NetList(
            l.iter().map(parse_cidr).collect::<Result<_, _>>()?,
        )),
        Py::Str(s) => {
            if s.contains('/') {
                // IPv4Network(strict=True): host bits set or IPv6 → None.
                match s.parse::<ipnet::Ipv4Net>() {
                    Ok(n) if n.trunc() == n => Ok(Py::Net(ipnet::IpNet::V4(n))),
                    _ => Ok(Py::None),
                }
            } else {
                Ok(s.parse::<std::net::IpAddr>()
                    .map(Py::Addr)
                    .unwrap_or(Py::None))
            }
        }
        Py::Int(_) | Py::Float(_) | Py::Bool(_) | Py::None => Err(Uncaught(format!(
            "argument of type '{}' is not iterable",
            type_name(v)
        ))),
        other => Ok(other.clone()),
    }
}

fn type_name(v: &Py) -> &'static str {
    match v {
        Py::None => "NoneType",
        Py::Bool(_) => "bool",
        Py::Int(_) => "int",
        Py::Float(_) => "float",
        _ => "object",
    }
}

fn transform(ts: &[String], key: &str) -> String {
    let mut k = key.to_string();
    for t in ts {
        k = match t.as_str() {
            "capitalize" => {
                let mut c = k.chars();
                match c.next() {
                    Some(f) => f
                        .to_uppercase()
                        .chain(c.flat_map(char::to_lowercase))
                        .collect(),
                    None => k,
                }
            }
            "lower" => k.to_lowercase(),
            "upper" => k.to_uppercase(),
            "strip" => k.trim().to_string(),
            "title" => {
                let mut out = String::new();
                let mut prev_cased = false;
                for ch in k.chars() {
                    if ch.is_alphabetic() {
                        if prev_cased {
                            out.extend(ch.to_lowercase());
                        } else {
                            out.extend(ch.to_uppercase());
                        }
                        prev_cased = true;
                    } else {
                        out.push(ch);
                        prev_cased = false;
                    }
                }
                out
            }
            "nospaces" => k.replace(' ', ""),
            "nounderscores" => k.replace('_', ""),
            "nodashes" => k.replace('-', ""),
            _ => k,
        };
    }
    k
}

/// JMESPath search (c7n's custom `split`/`from_json` functions are not available).
pub(crate) fn jmes(expr: &str, data: &Value) -> Result<Value, Uncaught> {
    let e =
        jmespath::compile(expr).map_err(|e| Uncaught(format!("invalid JMESPath `{expr}`: {e}")))?;
    let r = e
        .search(data)
        .map_err(|e| Uncaught(format!("JMESPath `{expr}`: {e}")))?;
    serde_json::to_value(&*r).map_err(|e| Uncaught(format!("JMESPath `{expr}`: {e}")))
}

pub(crate) const KEYS: &[&str] = &[
    "type",
    "key",
    "value_type",
    "default",
    "value_regex",
    "value_from",
    "value",
    "op",
    "value_path",
    "tag_key_transforms",
];

const TRANSFORMS: &[&str] = &[
    "noop",
    "capitalize",
    "lower",
    "strip",
    "title",
    "upper",
    "nospaces",
    "nounderscores",
    "nodashes",
];

/// Builds a value filter from its mapping, as `ValueFilter.validate` checks it. Errors are
/// (sub-key, message); features needing I/O are (sub-key, name) in `unsupported`.
pub(crate) fn build(
    data: &serde_json::Map<String, Value>,
    errs: &mut Vec<(String, String)>,
    unsupported: &mut Vec<(String, String)>,
) -> Option<ValueFilter> {
    let before = errs.len();
    // `{key: value}` (or a lone `{type: value}`): k, v = the single item.
    if data.len() == 1 {
        let (k, v) = data.iter().next()?;
        return Some(ValueFilter {
            key: k.clone(),
            value: Some(v.clone()),
            op: None,
            op_name: None,
            value_type: None,
            value_regex: None,
            value_path: None,
            tag_key_transforms: Vec::new(),
            op_regex: None,
            glob: None,
            capture: None,
        });
    }
    for k in data.keys() {
        if !KEYS.contains(&k.as_str()) {
            errs.push((
                k.clone(),
                format!("unknown key `{k}` in value filter{}", suggest(k, KEYS)),
            ));
        }
    }
    let get_str = |k: &str, errs: &mut Vec<(String, String)>| -> Option<String> {
        match data.get(k) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errs.push((
                    k.into(),
                    format!("`{k}` must be a string, found {}", json_type(other)),
                ));
                None
            }
        }
    };
    let vt_name = get_str("value_type", errs);
    let value_type = match vt_name.as_deref() {
        None => None,
        Some("resource_count") => {
            unsupported.push(("value_type".into(), "resource_count".into()));
            None
        }
        Some(n) => match ValueType::from_name(n) {
            Some(t) => Some(t),
            None => {
                errs.push((
                    "value_type".into(),
                    format!("invalid value_type `{n}`{}", suggest(n, ValueType::ALL)),
                ));
                None
            }
        },
    };
    if value_type == Some(ValueType::Date)
        && parse_date(&data.get("value").map(Py::from_json).unwrap_or(Py::None)).is_none()
    {
        errs.push((
            "value".into(),
            format!(
                "value_type: date with invalid date value: {}",
                data.get("value").cloned().unwrap_or(Value::Null)
            ),
        ));
    }
    let key = get_str("key", errs);
    if key.is_none() && !data.contains_key("key") && vt_name.as_deref() != Some("resource_count") {
        errs.push((String::new(), "missing `key` in value filter".into()));
    }
    if !data.contains_key("value")
        && !data.contains_key("value_from")
        && !data.contains_key("value_path")
    {
        errs.push((String::new(), "missing `value` in value filter".into()));
    }
    // c7n registers JMESPath functions `split` and `from_json`; the jmespath crate lacks them.
    for k in ["key", "value_path"] {
        if let Some(Value::String(e)) = data.get(k)
            && (e.contains("split(") || e.contains("from_json("))
        {
            unsupported.push((k.into(), "JMESPath function split/from_json".into()));
        }
    }
    if data.contains_key("value_from") {
        unsupported.push(("value_from".into(), "value_from".into()));
    }
    let op_name = get_str("op", errs);
    let op = match op_name.as_deref() {
        None => None,
        Some(n) => match Op::from_name(n) {
            Some(o) => Some(o),
            None => {
                errs.push((
                    "op".into(),
                    format!("invalid op `{n}`{}", suggest(n, Op::NAMES)),
                ));
                None
            }
        },
    };
    let mut op_regex = None;
    let mut glob = None;
    match (op, data.get("value")) {
        (Some(o @ (Op::Regex | Op::RegexCase)), Some(Value::String(p))) if value_type.is_none() => {
            match pyre::compile_match(p, o == Op::Regex) {
                Ok(r) => op_regex = Some(r),
                Err(e) => errs.push(("value".into(), e)),
            }
        }
        (Some(Op::Regex | Op::RegexCase), Some(v)) if !v.is_string() && value_type.is_none() => {
            errs.push((
                "value".into(),
                format!("invalid regex: expected a string, found {}", json_type(v)),
            ));
        }
        (Some(Op::Glob), Some(Value::String(p))) if value_type.is_none() => {
            match pyre::compile_glob(p) {
                Ok(g) => glob = Some(g),
                Err(e) => errs.push(("value".into(), e)),
            }
        }
        _ => {}
    }
    let value_regex = get_str("value_regex", errs);
    let mut capture = None;
    if let Some(p) = &value_regex {
        match pyre::compile_match(p, false) {
            Ok(r) => {
                if r.captures_len() != 2 {
                    errs.push((
                        "value_regex".into(),
                        format!("value_regex must have a single capturing group: `{p}`"),
                    ));
                }
                capture = Some(r);
            }
            Err(e) => errs.push(("value_regex".into(), e)),
        }
    }
    let value_path = get_str("value_path", errs);
    if let Some(p) = &value_path
        && let Err(e) = jmespath::compile(p)
    {
        errs.push((
            "value_path".into(),
            format!(
                "invalid JMESPath `{p}`: {}",
                e.to_string().lines().next().unwrap_or_default()
            ),
        ));
    }
    let mut tag_key_transforms = Vec::new();
    match data.get("tag_key_transforms") {
        None => {}
        Some(Value::Array(a)) => {
            for (i, t) in a.iter().enumerate() {
                match t.as_str() {
                    Some(s) if TRANSFORMS.contains(&s) => tag_key_transforms.push(s.to_string()),
                    _ => errs.push((
                        format!("tag_key_transforms[{i}]"),
                        format!("invalid tag_key_transforms entry {t}"),
                    )),
                }
            }
        }
        Some(other) => errs.push((
            "tag_key_transforms".into(),
            format!("must be a list, found {}", json_type(other)),
        )),
    }
    if errs.len() > before {
        return None;
    }
    Some(ValueFilter {
        key: key.unwrap_or_default(),
        value: data.get("value").cloned(),
        op,
        op_name,
        value_type,
        value_regex,
        value_path,
        tag_key_transforms,
        op_regex,
        glob,
        capture,
    })
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// `; did you mean `x`?` for the closest candidate, if close enough.
pub(crate) fn suggest(word: &str, candidates: &[&str]) -> String {
    let best = candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 2.max(word.len() / 3) && d > 0 => format!("; did you mean `{c}`?"),
        _ => String::new(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}
