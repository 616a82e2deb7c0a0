//! The policy mapping (`POLICY_MAPPING_KEY` in `POLICY_BUCKET`): which policies an event
//! selects. Schema, validation, matching and the ETag-refreshed cache. See
//! docs/policy-mapping.md for the format and the precedence rules.

use crate::event::{SecurityEvent, Severity};
use crate::policies::PolicyFileError;
use czero_job::{FindingUpdate, is_safe_policy_key};
use czero_policy::PolicyFile;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// The mapping format this crate reads.
pub const MAPPING_VERSION: u32 = 1;

/// Largest mapping read: thousands of rules fit; anything larger is a mistake or an attack,
/// refused before it is parsed.
pub const MAX_MAPPING_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("{origin}: not valid JSON: {reason}")]
    Json { origin: String, reason: String },
    #[error("{origin}: {reason}")]
    Top { origin: String, reason: String },
    #[error("{origin}: rule {index} (`{name}`): {reason}")]
    Rule {
        origin: String,
        index: usize,
        name: String,
        reason: String,
    },
    #[error("{origin} is {size} bytes, over the {cap}-byte cap for a policy mapping")]
    TooLarge {
        origin: String,
        size: usize,
        cap: usize,
    },
    /// A policy file the mapping routes events to cannot be used; `by` names the rules (or
    /// the default) that route to it.
    #[error("{origin}: {by} sends events to {key}, which cannot be used: {source}")]
    PolicyFile {
        origin: String,
        by: String,
        key: String,
        source: PolicyFileError,
    },
    /// A policy that scans every resource of its type receives single-resource events.
    #[error("{0}")]
    ScanPolicy(Box<ScanPolicy>),
}

/// A policy the mapping sends events to although its mode scans every resource of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{origin}: {by} sends events to {file}, whose policy `{policy}` (line {line}) has mode \
     `{mode}`: it would scan and act on every resource of its type, not the ones the event \
     names; give it an event mode (cloudtrail, hub-finding, config-rule, ...) or route no \
     events to it"
)]
pub struct ScanPolicy {
    /// The mapping.
    pub origin: String,
    /// The rules (or the default) that send events to the file.
    pub by: String,
    pub file: String,
    pub policy: String,
    pub line: usize,
    pub mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: u32,
    #[serde(default)]
    description: Option<String>,
    rules: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    policies: Vec<String>,
    #[serde(default)]
    stop: bool,
    /// `resolve`, `notify` or `off`; read as text so an unknown value gets our own message.
    #[serde(default)]
    update_finding: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMatch {
    source: Option<Vec<String>>,
    detail_type: Option<Vec<String>>,
    event_name: Option<Vec<String>>,
    finding_type: Option<Vec<String>>,
    min_severity: Option<Severity>,
    resource_type: Option<Vec<String>>,
    account: Option<Vec<String>>,
    region: Option<Vec<String>>,
}

/// A string pattern: a glob (`*`, `?`) or, with the `re:` prefix, a regular expression.
/// Both match the whole value, case-sensitively.
#[derive(Debug, Clone)]
pub struct Pattern(Regex);

impl Pattern {
    pub fn new(p: &str) -> Result<Pattern, String> {
        if p.is_empty() {
            return Err("empty pattern".into());
        }
        let re = match p.strip_prefix("re:") {
            Some(r) => format!("^(?:{r})$"),
            None => format!(
                "^{}$",
                regex::escape(p).replace(r"\*", ".*").replace(r"\?", ".")
            ),
        };
        Regex::new(&re)
            .map(Pattern)
            .map_err(|e| format!("bad pattern `{p}`: {e}"))
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

/// One condition: any pattern matching any of the event's values.
#[derive(Debug, Clone)]
struct Cond(Vec<Pattern>);

impl Cond {
    fn any<'a>(&self, mut values: impl Iterator<Item = &'a str>) -> bool {
        values.any(|v| self.0.iter().any(|p| p.is_match(v)))
    }
}

#[derive(Debug, Clone, Default)]
struct Matcher {
    source: Option<Cond>,
    detail_type: Option<Cond>,
    event_name: Option<Cond>,
    finding_type: Option<Cond>,
    min_severity: Option<Severity>,
    resource_type: Option<Cond>,
    account: Option<Cond>,
    region: Option<Cond>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub policies: Vec<String>,
    pub stop: bool,
    /// What the worker does with the event's Security Hub findings after the job.
    pub update_finding: FindingUpdate,
    matcher: Matcher,
}

impl Rule {
    /// All conditions given must hold; an event lacking an attribute a condition names does
    /// not match it.
    pub fn matches(&self, e: &SecurityEvent) -> bool {
        let m = &self.matcher;
        let ok = |c: &Option<Cond>, vals: &[String]| {
            c.as_ref()
                .is_none_or(|c| c.any(vals.iter().map(String::as_str)))
        };
        let one = |c: &Option<Cond>, v: &str| c.as_ref().is_none_or(|c| c.any(std::iter::once(v)));
        one(&m.source, &e.source)
            && one(&m.detail_type, &e.detail_type)
            && m.event_name
                .as_ref()
                .is_none_or(|c| c.any(e.event_name.iter().map(String::as_str)))
            && ok(&m.finding_type, &e.finding_types)
            && m.min_severity
                .is_none_or(|min| e.severity.is_some_and(|s| s >= min))
            && ok(&m.resource_type, &e.resource_types)
            && ok(&m.account, &e.accounts)
            && ok(&m.region, &e.regions)
    }
}

/// A validated mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub rules: Vec<Rule>,
}

/// What the mapping chose for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Policy keys in rule order, without duplicates.
    pub policies: Vec<String>,
    /// Names of the rules that matched (empty when the default was used).
    pub rules: Vec<String>,
    pub defaulted: bool,
    /// The strongest `update_finding` of the matched rules (resolve, then notify, then off);
    /// off when the default was used.
    pub update_finding: FindingUpdate,
}

/// The values `update_finding` takes, strongest first.
const FINDING_UPDATES: [(&str, FindingUpdate); 3] = [
    ("resolve", FindingUpdate::Resolve),
    ("notify", FindingUpdate::Notify),
    ("off", FindingUpdate::Off),
];

/// The stronger of two rules' `update_finding`: resolve > notify > off.
fn strongest(a: FindingUpdate, b: FindingUpdate) -> FindingUpdate {
    let rank = |u: FindingUpdate| FINDING_UPDATES.iter().position(|(_, v)| *v == u);
    if rank(b) < rank(a) { b } else { a }
}

impl Mapping {
    /// Parses and validates; `origin` names the file in errors (`s3://bucket/key`).
    pub fn parse(origin: &str, bytes: &[u8]) -> Result<Mapping, MappingError> {
        if bytes.len() > MAX_MAPPING_BYTES {
            return Err(MappingError::TooLarge {
                origin: origin.into(),
                size: bytes.len(),
                cap: MAX_MAPPING_BYTES,
            });
        }
        let raw: RawFile = serde_json::from_slice(bytes).map_err(|e| MappingError::Json {
            origin: origin.into(),
            reason: e.to_string(),
        })?;
        let _ = raw.description;
        if raw.version != MAPPING_VERSION {
            return Err(MappingError::Top {
                origin: origin.into(),
                reason: format!(
                    "version {} is not supported (this invoker reads version {MAPPING_VERSION})",
                    raw.version
                ),
            });
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
        for (index, v) in raw.rules.into_iter().enumerate() {
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>")
                .to_owned();
            let err = |reason: String| MappingError::Rule {
                origin: origin.into(),
                index,
                name: name.clone(),
                reason,
            };
            let r: RawRule = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
            let _ = r.description;
            if r.name.trim().is_empty() {
                return Err(err("`name` is empty".into()));
            }
            if rules.iter().any(|x| x.name == r.name) {
                return Err(err("duplicate rule name".into()));
            }
            if r.policies.is_empty() {
                return Err(err("`policies` is empty".into()));
            }
            for p in &r.policies {
                if !is_safe_policy_key(p) {
                    return Err(err(format!(
                        "policy key `{p}` is not under `policies/` or contains `..`"
                    )));
                }
            }
            let cond =
                |key: &str, list: Option<Vec<String>>| -> Result<Option<Cond>, MappingError> {
                    match list {
                        None => Ok(None),
                        Some(l) if l.is_empty() => Err(err(format!(
                            "match.{key}: empty list (omit the key to match anything)"
                        ))),
                        Some(l) => l
                            .iter()
                            .map(|p| Pattern::new(p).map_err(|e| err(format!("match.{key}: {e}"))))
                            .collect::<Result<Vec<_>, _>>()
                            .map(|ps| Some(Cond(ps))),
                    }
                };
            let update_finding = match r.update_finding.as_deref() {
                None => FindingUpdate::Off,
                Some(v) => FINDING_UPDATES
                    .iter()
                    .find(|(name, _)| *name == v)
                    .map(|(_, u)| *u)
                    .ok_or_else(|| {
                        err(format!(
                            "update_finding: `{v}` is not one of `resolve`, `notify`, `off`"
                        ))
                    })?,
            };
            let m = r.matcher;
            let matcher = Matcher {
                source: cond("source", m.source)?,
                detail_type: cond("detailType", m.detail_type)?,
                event_name: cond("eventName", m.event_name)?,
                finding_type: cond("findingType", m.finding_type)?,
                min_severity: m.min_severity,
                resource_type: cond("resourceType", m.resource_type)?,
                account: cond("account", m.account)?,
                region: cond("region", m.region)?,
            };
            rules.push(Rule {
                name: r.name,
                policies: r.policies,
                stop: r.stop,
                update_finding,
                matcher,
            });
        }
        Ok(Mapping { rules })
    }

    /// Rules are evaluated in file order; every matching rule adds its policies (first
    /// occurrence wins the position); a matching rule with `stop: true` ends evaluation.
    /// No match selects `default_key`. The selection's `update_finding` is the strongest of
    /// the matched rules'.
    pub fn select(&self, e: &SecurityEvent, default_key: &str) -> Selection {
        let mut sel = Selection {
            policies: vec![],
            rules: vec![],
            defaulted: false,
            update_finding: FindingUpdate::Off,
        };
        for r in &self.rules {
            if !r.matches(e) {
                continue;
            }
            sel.rules.push(r.name.clone());
            sel.update_finding = strongest(sel.update_finding, r.update_finding);
            for p in &r.policies {
                if !sel.policies.contains(p) {
                    sel.policies.push(p.clone());
                }
            }
            if r.stop {
                break;
            }
        }
        if sel.policies.is_empty() {
            sel.policies.push(default_key.to_owned());
            sel.defaulted = true;
        }
        sel
    }
}

impl Mapping {
    /// Every policy key the mapping can send events to, in rule order, then `default_key`.
    pub fn keys(&self, default_key: &str) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        let all = self
            .rules
            .iter()
            .flat_map(|r| r.policies.iter().map(String::as_str))
            .chain(std::iter::once(default_key));
        for k in all {
            if !keys.iter().any(|x| x == k) {
                keys.push(k.to_owned());
            }
        }
        keys
    }

    /// Who sends events to `key`, for messages: "rule `a`, rule `b`", "the default policy
    /// (DEFAULT_POLICY_KEY)", or both.
    pub fn routes_to(&self, key: &str, default_key: &str) -> String {
        let mut by: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.policies.iter().any(|p| p == key))
            .map(|r| format!("rule `{}`", r.name))
            .collect();
        if key == default_key {
            by.push("the default policy (DEFAULT_POLICY_KEY)".into());
        }
        by.join(", ")
    }

    /// The policies of `file` (at `key`) that the mapping must not send events to: those
    /// whose mode scans every resource of the type (pull, periodic, schedule,
    /// config-poll-rule). One error per such policy, naming the rules and the policy.
    pub fn scan_policies(
        &self,
        origin: &str,
        default_key: &str,
        key: &str,
        file: &PolicyFile,
    ) -> Vec<MappingError> {
        file.policies
            .iter()
            .filter(|p| !p.mode.is_event_mode())
            .map(|p| {
                MappingError::ScanPolicy(Box::new(ScanPolicy {
                    origin: origin.into(),
                    by: self.routes_to(key, default_key),
                    file: p.origin.clone(),
                    policy: p.name.clone(),
                    line: p.line,
                    mode: p.mode.name().into(),
                }))
            })
            .collect()
    }
}

/// The mapping kept across invocations of a warm Lambda, refreshed when its ETag changes.
#[derive(Debug, Default)]
pub struct MappingCache {
    inner: Mutex<Option<(Option<String>, Arc<Mapping>)>>,
}

impl MappingCache {
    /// The cached ETag, if any (sent as `If-None-Match`).
    pub fn etag(&self) -> Option<String> {
        self.inner
            .lock()
            .ok()?
            .as_ref()
            .and_then(|(e, _)| e.clone())
    }

    pub fn get(&self) -> Option<Arc<Mapping>> {
        self.inner.lock().ok()?.as_ref().map(|(_, m)| m.clone())
    }

    pub fn store(&self, etag: Option<String>, mapping: Mapping) -> Arc<Mapping> {
        let m = Arc::new(mapping);
        if let Ok(mut g) = self.inner.lock() {
            *g = Some((etag, m.clone()));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Parsed, parse_value};
    use serde_json::json;

    fn mapping(rules: Value) -> Result<Mapping, MappingError> {
        let file = json!({"version": 1, "rules": rules});
        Mapping::parse("s3://b/m.json", file.to_string().as_bytes())
    }

    fn rule(name: &str, update: Option<&str>) -> Value {
        let mut r = json!({"name": name, "policies": [format!("policies/{name}.yml")]});
        if let Some(u) = update {
            r["update_finding"] = json!(u);
        }
        r
    }

    fn hub_event() -> SecurityEvent {
        let ev = json!({
            "version": "0", "id": "e-1", "detail-type": "Security Hub Findings - Imported",
            "source": "aws.securityhub", "account": "111122223333", "region": "us-east-1",
            "time": "2026-01-01T00:00:00Z", "resources": [],
            "detail": {"findings": [{
                "Id": "f-1", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
                "AwsAccountId": "111122223333", "Region": "us-east-1",
                "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b"}]
            }]}
        });
        match parse_value(ev).unwrap() {
            Parsed::Event(e) => *e,
            Parsed::Skip(s) => panic!("skipped: {s}"),
        }
    }

    #[test]
    fn update_finding_is_read_per_rule_and_off_by_default() {
        let m = mapping(json!([
            rule("a", None),
            rule("b", Some("resolve")),
            rule("c", Some("notify")),
            rule("d", Some("off")),
        ]))
        .unwrap();
        let got: Vec<FindingUpdate> = m.rules.iter().map(|r| r.update_finding).collect();
        assert_eq!(
            got,
            [
                FindingUpdate::Off,
                FindingUpdate::Resolve,
                FindingUpdate::Notify,
                FindingUpdate::Off
            ]
        );
    }

    #[test]
    fn an_unknown_update_finding_names_the_rule_and_the_value() {
        for bad in [json!("RESOLVE"), json!("resolved"), json!(""), json!(true)] {
            let mut r = rule("hub-s3", None);
            r["update_finding"] = bad.clone();
            let err = mapping(json!([rule("first", None), r]))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("s3://b/m.json: rule 1 (`hub-s3`): "),
                "{bad}: {err}"
            );
            if bad.is_string() {
                assert!(
                    err.contains(&format!(
                        "update_finding: `{}` is not one of `resolve`, `notify`, `off`",
                        bad.as_str().unwrap()
                    )),
                    "{err}"
                );
            } else {
                assert!(err.contains("invalid type"), "{err}");
            }
        }
    }

    /// Every pair of matched rules, in both orders: the stronger wins, whatever the order.
    #[test]
    fn the_selection_takes_the_strongest_of_the_matched_rules() {
        let values = [None, Some("off"), Some("notify"), Some("resolve")];
        let rank = |v: Option<&str>| match v {
            Some("resolve") => (2, FindingUpdate::Resolve),
            Some("notify") => (1, FindingUpdate::Notify),
            _ => (0, FindingUpdate::Off),
        };
        let e = hub_event();
        for a in values {
            for b in values {
                let m = mapping(json!([rule("a", a), rule("b", b)])).unwrap();
                let sel = m.select(&e, "policies/default.yml");
                assert_eq!(sel.rules, ["a", "b"]);
                let want = if rank(b).0 > rank(a).0 {
                    rank(b).1
                } else {
                    rank(a).1
                };
                assert_eq!(sel.update_finding, want, "{a:?} then {b:?}");
            }
        }
    }

    #[test]
    fn rules_that_do_not_match_or_come_after_stop_do_not_count() {
        let e = hub_event();
        let mut other = rule("other-source", Some("resolve"));
        other["match"] = json!({"source": ["aws.config"]});
        let mut stop = rule("stop-here", Some("notify"));
        stop["stop"] = json!(true);
        let m = mapping(json!([other, stop, rule("after-stop", Some("resolve"))])).unwrap();
        let sel = m.select(&e, "policies/default.yml");
        assert_eq!(sel.rules, ["stop-here"]);
        assert_eq!(sel.update_finding, FindingUpdate::Notify);

        let mut only = rule("config-only", Some("resolve"));
        only["match"] = json!({"source": ["aws.config"]});
        let sel = mapping(json!([only]))
            .unwrap()
            .select(&e, "policies/default.yml");
        assert!(sel.defaulted);
        assert_eq!(
            sel.update_finding,
            FindingUpdate::Off,
            "the default never updates"
        );
    }
}
