//! YAML to JSON with positions. serde_yaml gives the values; a second pass with
//! yaml-rust2's marked event parser records where every key and sequence item starts, so
//! validation errors can name `file:line:col` (serde_yaml's `Value` keeps no positions).

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Key path → (line, column), both 1-based.
#[derive(Debug, Default)]
pub(crate) struct PosIndex {
    pos: HashMap<String, (usize, usize)>,
    /// Plain scalars PyYAML (YAML 1.1, what c7n loads with) reads as booleans but YAML 1.2
    /// reads as strings: `yes`, `no`, `on`, `off` in their three spellings.
    yaml11_bools: Vec<(String, bool)>,
}

impl PosIndex {
    /// Position of `path`, else of its nearest indexed ancestor, else 1:1.
    pub(crate) fn at(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(v) = self.pos.get(p) {
                return *v;
            }
            match parent(p) {
                Some(q) => p = q,
                None => return self.pos.get("").copied().unwrap_or((1, 1)),
            }
        }
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
pub(crate) fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

pub(crate) fn child_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn child_index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A YAML syntax or structure error with its position.
#[derive(Debug)]
pub(crate) struct YamlError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parses one YAML document into JSON (merge keys `<<` applied, as PyYAML does).
pub(crate) fn load(text: &str) -> Result<(serde_json::Value, PosIndex), YamlError> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        YamlError {
            line,
            col,
            message: format!("invalid YAML: {e}"),
        }
    })?;
    value.apply_merge().map_err(|e| YamlError {
        line: 1,
        col: 1,
        message: format!("invalid YAML merge key: {e}"),
    })?;
    let index = index(text);
    let mut json = to_json(&value).map_err(|message| YamlError {
        line: 1,
        col: 1,
        message,
    })?;
    for (path, b) in &index.yaml11_bools {
        if let Some(slot) = lookup_mut(&mut json, path)
            && slot.is_string()
        {
            *slot = serde_json::Value::Bool(*b);
        }
    }
    Ok((json, index))
}

fn lookup_mut<'a>(v: &'a mut serde_json::Value, path: &str) -> Option<&'a mut serde_json::Value> {
    let mut cur = v;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let i: usize = r[..end].parse().ok()?;
            cur = cur.get_mut(i)?;
            rest = r[end + 1..].strip_prefix('.').unwrap_or(&r[end + 1..]);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            cur = cur.get_mut(&rest[..end])?;
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    Some(cur)
}

fn to_json(v: &serde_yaml::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(n.to_string()))
            }
        }
        Y::String(s) => J::String(s.clone()),
        Y::Sequence(s) => J::Array(s.iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Bool(b) => {
                        if *b {
                            "True".into()
                        } else {
                            "False".into()
                        }
                    }
                    Y::Number(n) => n.to_string(),
                    Y::Null => "None".into(),
                    _ => return Err("mapping keys must be scalars".into()),
                };
                out.insert(key, to_json(v)?);
            }
            J::Object(out)
        }
        Y::Tagged(t) => {
            return Err(format!(
                "YAML tag `{}` is not supported (c7n loads with safe_load)",
                t.tag
            ));
        }
    })
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
    /// A complex (non-scalar) mapping key: ignored.
    Skip,
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    out: PosIndex,
    /// Depth of nested structures inside a complex key.
    skip_depth: usize,
}

fn is_yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

impl Indexer {
    /// Path of the node starting now; `None` when the node is a mapping key.
    fn node_path(&mut self, scalar_key: Option<&str>, mark: Marker) -> Option<String> {
        let pos = (mark.line().max(1), mark.col() + 1);
        match self.stack.last_mut() {
            None => {
                self.out.pos.entry(String::new()).or_insert(pos);
                Some(String::new())
            }
            Some(Frame::Seq { path, next }) => {
                let p = child_index(path, *next);
                *next += 1;
                self.out.pos.insert(p.clone(), pos);
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    let k = scalar_key.unwrap_or("?").to_string();
                    self.out.pos.insert(child_key(path, &k), pos);
                    // A block mapping's start mark can lie past its first key.
                    if let Some(start) = self.out.pos.get_mut(path.as_str())
                        && pos < *start
                    {
                        *start = pos;
                    }
                    *key = Some(k);
                    None
                }
                Some(k) => Some(child_key(path, &k)),
            },
            Some(Frame::Skip) => None,
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.skip_depth > 0 {
            match ev {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.skip_depth += 1,
                Event::SequenceEnd | Event::MappingEnd => self.skip_depth -= 1,
                _ => {}
            }
            return;
        }
        match ev {
            Event::Scalar(s, style, _, _) => {
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                let path = self.node_path(Some(&s), mark);
                if let (Some(p), false, TScalarStyle::Plain) = (path, is_key, style)
                    && let Some(b) = is_yaml11_bool(&s)
                {
                    self.out.yaml11_bools.push((p, b));
                }
            }
            Event::Alias(_) => {
                self.node_path(Some("*alias"), mark);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                if is_key {
                    // A complex key: record it as `?` and skip its contents.
                    self.node_path(Some("?"), mark);
                    self.skip_depth = 1;
                    return;
                }
                let frame = match self.node_path(None, mark) {
                    Some(path) => {
                        if matches!(ev, Event::SequenceStart(..)) {
                            Frame::Seq { path, next: 0 }
                        } else {
                            Frame::Map { path, key: None }
                        }
                    }
                    None => Frame::Skip,
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

fn index(text: &str) -> PosIndex {
    let mut ix = Indexer::default();
    let mut parser = Parser::new_from_str(text);
    // A document yaml-rust2 cannot parse (serde_yaml could) just has no positions.
    let _ = parser.load(&mut ix, false);
    ix.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_items() {
        let text = "policies:\n  - name: a\n    filters:\n      - x: 1\n      - type: value\n        op: eq\n";
        let (_, ix) = load(text).unwrap();
        assert_eq!(ix.at("policies"), (1, 1));
        assert_eq!(ix.at("policies[0].name"), (2, 5));
        assert_eq!(ix.at("policies[0].filters[1].op"), (6, 9));
        assert_eq!(ix.at("policies[0].filters[1].nothere"), (5, 9));
    }

    #[test]
    fn yaml11_booleans_follow_pyyaml() {
        let (v, _) = load("a: yes\nb: 'yes'\nc: Off\nd: [on]\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": true, "b": "yes", "c": false, "d": [true]})
        );
    }

    #[test]
    fn merge_keys_apply() {
        let (v, _) = load("x: &b {a: 1}\ny:\n  <<: *b\n  c: 2\n").unwrap();
        assert_eq!(v["y"], serde_json::json!({"a": 1, "c": 2}));
    }
}
