//! Python's data model, as far as c7n's value filter needs it: equality across int, float
//! and bool, ordering that raises `TypeError` between unrelated types (c7n turns that into
//! "no match"), truthiness, `in`, and the objects `value_type` produces (datetimes, IP
//! networks, loose versions).

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde_json::Value;
use std::cmp::Ordering;
use std::net::IpAddr;

/// A component of a `LooseVersion`: a number or a run of letters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VerPart {
    Num(i128),
    Alpha(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Py {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    Dict(Vec<(String, Py)>),
    /// `()`: what c7n substitutes for a missing value under `in` / `not-in`.
    EmptyTuple,
    DateTime(DateTime<Utc>),
    /// Only `IPv4Network`s: c7n's `parse_cidr` uses its IPv4Network class for any `/`.
    Net(IpNet),
    Addr(IpAddr),
    /// c7n's `IPv4List` (a parsed list of CIDRs/addresses; unparseable items are `None`).
    NetList(Vec<Py>),
    /// `LooseVersion(None)` has no components: comparing it raises `AttributeError`.
    Version(Option<Vec<VerPart>>),
}

/// Python raised `TypeError` (c7n's value filter catches it: no match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeErr;

/// Python raised something c7n does not catch: the filter (and the policy run) fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uncaught(pub String);

impl Py {
    pub(crate) fn from_json(v: &Value) -> Py {
        match v {
            Value::Null => Py::None,
            Value::Bool(b) => Py::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Py::Int(i as i128)
                } else if let Some(u) = n.as_u64() {
                    Py::Int(u as i128)
                } else {
                    Py::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Py::Str(s.clone()),
            Value::Array(a) => Py::List(a.iter().map(Py::from_json).collect()),
            Value::Object(m) => Py::Dict(
                m.iter()
                    .map(|(k, v)| (k.clone(), Py::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub(crate) fn is_none(&self) -> bool {
        matches!(self, Py::None)
    }

    pub(crate) fn is_str(&self, s: &str) -> bool {
        matches!(self, Py::Str(x) if x == s)
    }

    fn number(&self) -> Option<f64> {
        match self {
            Py::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Py::Int(i) => Some(*i as f64),
            Py::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn int(&self) -> Option<i128> {
        match self {
            Py::Bool(b) => Some(*b as i128),
            Py::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Python's `bool(x)`.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Py::None | Py::EmptyTuple => false,
            Py::Bool(b) => *b,
            Py::Int(i) => *i != 0,
            Py::Float(f) => *f != 0.0,
            Py::Str(s) => !s.is_empty(),
            Py::List(l) | Py::NetList(l) => !l.is_empty(),
            Py::Dict(d) => !d.is_empty(),
            Py::DateTime(_) | Py::Net(_) | Py::Addr(_) | Py::Version(_) => true,
        }
    }

    fn hashable(&self) -> bool {
        !matches!(self, Py::List(_) | Py::Dict(_) | Py::NetList(_))
    }
}

/// Python's `a == b`.
pub(crate) fn eq(a: &Py, b: &Py) -> bool {
    match (a, b) {
        (Py::None, Py::None) | (Py::EmptyTuple, Py::EmptyTuple) => true,
        (Py::Str(x), Py::Str(y)) => x == y,
        (Py::List(x), Py::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q)),
        (Py::Dict(x), Py::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && eq(v, v2)))
        }
        (Py::DateTime(x), Py::DateTime(y)) => x == y,
        (Py::Net(x), Py::Net(y)) => x == y,
        (Py::Addr(x), Py::Addr(y)) => x == y,
        (Py::Version(Some(x)), Py::Version(Some(y))) => x == y,
        _ => match (a.int(), b.int()) {
            (Some(x), Some(y)) => x == y,
            _ => match (a.number(), b.number()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        },
    }
}

/// Python's ordering: `Ok(None)` when unordered (NaN), `Err` for `TypeError`.
pub(crate) fn cmp(a: &Py, b: &Py) -> Result<Option<Ordering>, Result<TypeErr, Uncaught>> {
    let te = Err(Ok(TypeErr));
    match (a, b) {
        (Py::Str(x), Py::Str(y)) => Ok(Some(x.cmp(y))),
        (Py::List(x), Py::List(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !eq(p, q) {
                    return cmp(p, q);
                }
            }
            Ok(Some(x.len().cmp(&y.len())))
        }
        (Py::EmptyTuple, Py::EmptyTuple) => Ok(Some(Ordering::Equal)),
        (Py::DateTime(x), Py::DateTime(y)) => Ok(Some(x.cmp(y))),
        (Py::Net(x), Py::Net(y)) => {
            if x.addr().is_ipv4() != y.addr().is_ipv4() {
                return te;
            }
            Ok(Some(
                (x.network(), x.netmask()).cmp(&(y.network(), y.netmask())),
            ))
        }
        (Py::Addr(x), Py::Addr(y)) => {
            if x.is_ipv4() != y.is_ipv4() {
                return te;
            }
            Ok(Some(x.cmp(y)))
        }
        (Py::Version(x), Py::Version(y)) => {
            let (Some(x), Some(y)) = (x, y) else {
                return Err(Err(Uncaught(
                    "LooseVersion has no attribute 'version'".into(),
                )));
            };
            for (p, q) in x.iter().zip(y) {
                match (p, q) {
                    (VerPart::Num(m), VerPart::Num(n)) if m != n => return Ok(Some(m.cmp(n))),
                    (VerPart::Alpha(m), VerPart::Alpha(n)) if m != n => return Ok(Some(m.cmp(n))),
                    (VerPart::Num(_), VerPart::Alpha(_)) | (VerPart::Alpha(_), VerPart::Num(_)) => {
                        return te;
                    }
                    _ => {}
                }
            }
            Ok(Some(x.len().cmp(&y.len())))
        }
        _ => match (a.int(), b.int()) {
            (Some(x), Some(y)) => Ok(Some(x.cmp(&y))),
            _ => match (a.number(), b.number()) {
                (Some(x), Some(y)) => Ok(x.partial_cmp(&y)),
                _ => te,
            },
        },
    }
}

/// Python's `item in container`.
pub(crate) fn contains(container: &Py, item: &Py) -> Result<bool, TypeErr> {
    match container {
        Py::List(l) => Ok(l.iter().any(|e| eq(item, e))),
        Py::EmptyTuple => Ok(false),
        Py::Str(s) => match item {
            Py::Str(i) => Ok(s.contains(i.as_str())),
            _ => Err(TypeErr),
        },
        Py::Dict(d) => {
            if !item.hashable() {
                return Err(TypeErr);
            }
            Ok(match item {
                Py::Str(i) => d.iter().any(|(k, _)| k == i),
                _ => false,
            })
        }
        Py::Net(n) => Ok(net_contains(n, item)),
        Py::NetList(l) => {
            if item.is_none() {
                return Ok(false);
            }
            let in_nets = l
                .iter()
                .any(|e| matches!(e, Py::Net(n) if net_contains(n, item)));
            let in_addrs = l
                .iter()
                .any(|e| matches!(e, Py::Addr(a) if a.is_ipv4() && eq(item, e)));
            Ok(in_nets || in_addrs)
        }
        _ => Err(TypeErr),
    }
}

/// c7n's `IPv4Network.__contains__`: networks by supernet, addresses by membership.
fn net_contains(n: &IpNet, item: &Py) -> bool {
    match item {
        Py::Net(m) => n.addr().is_ipv4() == m.addr().is_ipv4() && n.contains(m),
        Py::Addr(a) => n.contains(a),
        _ => false,
    }
}

/// Python's `set(x)` for the set operators.
fn as_set(x: &Py) -> Result<Vec<Py>, TypeErr> {
    let items: Vec<Py> = match x {
        Py::List(l) => l.clone(),
        Py::Str(s) => s.chars().map(|c| Py::Str(c.to_string())).collect(),
        Py::Dict(d) => d.iter().map(|(k, _)| Py::Str(k.clone())).collect(),
        Py::EmptyTuple => Vec::new(),
        _ => return Err(TypeErr),
    };
    if items.iter().all(Py::hashable) {
        Ok(items)
    } else {
        Err(TypeErr)
    }
}

/// `bool(set(x).difference(y))`.
pub(crate) fn difference(x: &Py, y: &Py) -> Result<bool, TypeErr> {
    let (xs, ys) = (as_set(x)?, as_set(y)?);
    Ok(xs.iter().any(|a| !ys.iter().any(|b| eq(a, b))))
}

/// `bool(set(x).intersection(y))`.
pub(crate) fn intersect(x: &Py, y: &Py) -> Result<bool, TypeErr> {
    let (xs, ys) = (as_set(x)?, as_set(y)?);
    Ok(xs.iter().any(|a| ys.iter().any(|b| eq(a, b))))
}

/// `bool(x % y)`.
pub(crate) fn modulo(x: &Py, y: &Py) -> Result<bool, Result<TypeErr, Uncaught>> {
    if let (Some(a), Some(b)) = (x.int(), y.int()) {
        if b == 0 {
            return Err(Err(Uncaught("integer division or modulo by zero".into())));
        }
        return Ok(a % b != 0);
    }
    match (x.number(), y.number()) {
        (Some(a), Some(b)) => {
            if b == 0.0 {
                return Err(Err(Uncaught("float modulo".into())));
            }
            let r = a % b;
            Ok(r != 0.0)
        }
        (None, _) if matches!(x, Py::Str(s) if s.contains('%')) => Err(Err(Uncaught(
            "`mod` with a %-format string resource value is not supported".into(),
        ))),
        _ => Err(Ok(TypeErr)),
    }
}

/// Python `len(x)`.
pub(crate) fn len(x: &Py) -> Option<usize> {
    match x {
        Py::Str(s) => Some(s.chars().count()),
        Py::List(l) | Py::NetList(l) => Some(l.len()),
        Py::Dict(d) => Some(d.len()),
        Py::EmptyTuple => Some(0),
        _ => None,
    }
}

/// Python `str(x)` for the scalars `value_type: integer/float` convert.
pub(crate) fn py_str(x: &Py) -> String {
    match x {
        Py::None => "None".into(),
        Py::Bool(b) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        Py::Int(i) => i.to_string(),
        Py::Float(f) => py_float_repr(*f),
        Py::Str(s) => s.clone(),
        Py::List(_) | Py::NetList(_) => "[...]".into(),
        Py::Dict(_) => "{...}".into(),
        Py::EmptyTuple => "()".into(),
        Py::DateTime(d) => d.to_rfc3339(),
        Py::Net(n) => n.to_string(),
        Py::Addr(a) => a.to_string(),
        Py::Version(_) => "version".into(),
    }
}

fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Python `int(s)` for a stripped string: optional sign, digits, single underscores.
pub(crate) fn py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: i128 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Python `float(s)` for a stripped string.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        let v = if body == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if lower.starts_with('-') { -v } else { v });
    }
    if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let clean: String = t.chars().filter(|c| *c != '_').collect();
    if clean.is_empty()
        || !clean
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
    {
        return None;
    }
    clean.parse().ok()
}

/// `LooseVersion(s).version`.
pub(crate) fn loose_version(x: &Py) -> Result<Py, Uncaught> {
    let s = match x {
        Py::Str(s) if s.is_empty() => return Ok(Py::Version(None)),
        Py::Str(s) => s,
        p if !p.truthy() => return Ok(Py::Version(None)),
        _ => return Err(Uncaught("LooseVersion needs a string".into())),
    };
    let mut parts = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, parts: &mut Vec<VerPart>| {
        if !cur.is_empty() {
            let p = match cur.parse::<i128>() {
                Ok(n) if cur.chars().all(|c| c.is_ascii_digit()) => VerPart::Num(n),
                _ => VerPart::Alpha(cur.clone()),
            };
            parts.push(p);
            cur.clear();
        }
    };
    // component_re = (\d+ | [a-z]+ | \.): split keeps the separators; other characters
    // stay glued into the text between matches.
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let class = |c: char| {
            if c.is_ascii_digit() {
                1
            } else if c.is_ascii_lowercase() {
                2
            } else if c == '.' {
                3
            } else {
                0
            }
        };
        let k = class(c);
        if k == 0 {
            // Text that no component matches: collected until the next match.
            let start = i;
            while i < chars.len() && class(chars[i]) == 0 {
                i += 1;
            }
            flush(&mut cur, &mut parts);
            cur.extend(&chars[start..i]);
            flush(&mut cur, &mut parts);
            continue;
        }
        flush(&mut cur, &mut parts);
        if k == 3 {
            i += 1;
            continue;
        }
        while i < chars.len() && class(chars[i]) == k {
            cur.push(chars[i]);
            i += 1;
        }
        flush(&mut cur, &mut parts);
    }
    flush(&mut cur, &mut parts);
    Ok(Py::Version(Some(parts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_equality_and_ordering() {
        assert!(eq(&Py::Bool(true), &Py::Int(1)));
        assert!(eq(&Py::Int(2), &Py::Float(2.0)));
        assert!(!eq(&Py::Str("1".into()), &Py::Int(1)));
        assert_eq!(cmp(&Py::Str("a".into()), &Py::Int(1)), Err(Ok(TypeErr)));
        assert_eq!(cmp(&Py::Float(f64::NAN), &Py::Int(1)), Ok(None));
    }

    #[test]
    fn loose_versions() {
        let v = loose_version(&Py::Str("1.10.2b".into())).unwrap();
        let Py::Version(Some(p)) = v else { panic!() };
        assert_eq!(
            p,
            vec![
                VerPart::Num(1),
                VerPart::Num(10),
                VerPart::Num(2),
                VerPart::Alpha("b".into())
            ]
        );
    }

    #[test]
    fn int_and_float_parsing_follow_python() {
        assert_eq!(py_int(" 1_000 "), Some(1000));
        assert_eq!(py_int("3.5"), None);
        assert_eq!(py_float("1e3"), Some(1000.0));
        assert_eq!(py_float("True"), None);
    }
}
