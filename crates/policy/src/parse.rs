//! Policy file validation: c7n's StructureParser and JSON schema checks for the parts we
//! know, every error with file, line, column and key path, all of them collected.

use crate::actions;
use crate::filters::Filter;
use crate::registry::{AWS_RESOURCES, MODES, S3_ACTIONS, S3_FILTERS, TRAIL_EVENTS};
use crate::value::{self, json_type, suggest};
use crate::yaml::{self, PosIndex, child_index, child_key};
use crate::{
    Action, FeatureKind, MaxResources, Mode, Policy, PolicyError, PolicyErrors, PolicyFile,
    TrailEvent, Unsupported,
};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;

const POLICY_KEYS: &[&str] = &[
    "name",
    "resource",
    "title",
    "description",
    "mode",
    "tags",
    "max-resources",
    "metadata",
    "query",
    "filters",
    "actions",
    "source",
    "conditions",
    "region",
    "start",
    "end",
    "tz",
    "max-resources-percent",
    "comments",
    "comment",
];

const LAMBDA_MODE_KEYS: &[&str] = &[
    "type",
    "execution-options",
    "function-prefix",
    "member-role",
    "packages",
    "layers",
    "concurrency",
    "runtime",
    "role",
    "handler",
    "pattern",
    "timeout",
    "memory",
    "environment",
    "tags",
    "dead_letter_config",
    "kms_key_arn",
    "tracing_config",
    "security_groups",
    "subnets",
];

struct Ctx<'a> {
    origin: &'a str,
    ix: &'a PosIndex,
    errors: Vec<PolicyError>,
    unsupported: Vec<Unsupported>,
}

impl Ctx<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        let (line, col) = self.ix.at(path);
        self.errors.push(PolicyError {
            file: self.origin.to_string(),
            line,
            col,
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn unsupported(&mut self, kind: FeatureKind, name: &str, path: &str) {
        let (line, _) = self.ix.at(path);
        self.unsupported.push(Unsupported {
            kind,
            name: name.to_string(),
            path: path.to_string(),
            line,
        });
    }

    fn string(&mut self, m: &Map<String, Value>, k: &str, path: &str) -> Option<String> {
        match m.get(k) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.err(
                    &child_key(path, k),
                    format!("`{k}` must be a string, found {}", json_type(v)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, m: &Map<String, Value>, k: &str, path: &str) -> Option<bool> {
        match m.get(k) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                self.err(
                    &child_key(path, k),
                    format!("`{k}` must be a boolean, found {}", json_type(v)),
                );
                None
            }
        }
    }

    fn strings(
        &mut self,
        m: &Map<String, Value>,
        k: &str,
        path: &str,
        allowed: Option<&[&str]>,
    ) -> Vec<String> {
        let p = child_key(path, k);
        match m.get(k) {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => {
                            if let Some(allowed) = allowed
                                && !allowed.contains(&s.as_str())
                            {
                                self.err(
                                    &child_index(&p, i),
                                    format!("`{s}` is not one of {}", allowed.join(", ")),
                                );
                                continue;
                            }
                            out.push(s.clone());
                        }
                        other => self.err(
                            &child_index(&p, i),
                            format!("expected a string, found {}", json_type(other)),
                        ),
                    }
                }
                out
            }
            Some(v) => {
                self.err(
                    &p,
                    format!("`{k}` must be a list of strings, found {}", json_type(v)),
                );
                Vec::new()
            }
        }
    }

    fn known_keys(&mut self, m: &Map<String, Value>, allowed: &[&str], what: &str, path: &str) {
        for k in m.keys() {
            if k != "type" && !allowed.contains(&k.as_str()) {
                self.err(
                    &child_key(path, k),
                    format!("unknown key `{k}` for {what}{}", suggest(k, allowed)),
                );
            }
        }
    }
}

/// Parses and validates a policy file. `origin` names the file in messages.
pub fn parse_str(origin: &str, text: &str) -> Result<PolicyFile, PolicyErrors> {
    let (doc, ix) = match yaml::load(text) {
        Ok(x) => x,
        Err(e) => {
            return Err(PolicyErrors {
                errors: vec![PolicyError {
                    file: origin.into(),
                    line: e.line,
                    col: e.col,
                    path: String::new(),
                    message: e.message,
                }],
            });
        }
    };
    let mut cx = Ctx {
        origin,
        ix: &ix,
        errors: Vec::new(),
        unsupported: Vec::new(),
    };
    let mut policies = Vec::new();
    match &doc {
        Value::Object(top) => {
            for k in top.keys() {
                if k != "policies" && k != "vars" {
                    cx.err(k, format!("unknown top-level key `{k}`: policy files have only `policies` and `vars`{}", suggest(k, &["policies", "vars"])));
                }
            }
            if let Some(v) = top.get("vars")
                && !v.is_object()
            {
                cx.err(
                    "vars",
                    format!("`vars` must be a mapping, found {}", json_type(v)),
                );
            }
            match top.get("policies") {
                None => cx.err("", "`policies` list missing"),
                Some(Value::Array(ps)) => {
                    if ps.is_empty() {
                        cx.err("policies", "`policies` is empty: no policy to run");
                    }
                    let mut seen: HashMap<String, String> = HashMap::new();
                    for (i, p) in ps.iter().enumerate() {
                        let path = child_index("policies", i);
                        if let Some(pol) = policy(&mut cx, p, &path) {
                            if let Some(first) = seen.get(&pol.name) {
                                let first = first.clone();
                                let (l, _) = ix.at(&first);
                                cx.err(
                                    &child_key(&path, "name"),
                                    format!(
                                        "duplicate policy name `{}` (first at line {l})",
                                        pol.name
                                    ),
                                );
                            } else {
                                seen.insert(pol.name.clone(), path.clone());
                            }
                            policies.push(pol);
                        }
                    }
                }
                Some(v) => cx.err(
                    "policies",
                    format!("`policies` must be a list, found {}", json_type(v)),
                ),
            }
        }
        other => cx.err(
            "",
            format!(
                "policy file must be a mapping with `policies`, found {}",
                json_type(other)
            ),
        ),
    }
    if cx.errors.is_empty() {
        Ok(PolicyFile { policies })
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.col));
        Err(PolicyErrors { errors: cx.errors })
    }
}

fn name_re() -> Option<Regex> {
    // c7n's `^[A-z][A-z0-9]*(-[A-z0-9]+)*$`: note `A-z` also admits `[\]^_` and backtick.
    Regex::new(r"^[A-z][A-z0-9]*(-[A-z0-9]+)*$").ok()
}

fn policy(cx: &mut Ctx, p: &Value, path: &str) -> Option<Policy> {
    let Value::Object(m) = p else {
        cx.err(
            path,
            format!("policy must be a mapping, found {}", json_type(p)),
        );
        return None;
    };
    let errors_before = cx.errors.len();
    cx.unsupported.clear();
    for k in m.keys() {
        if !POLICY_KEYS.contains(&k.as_str()) {
            cx.err(
                &child_key(path, k),
                format!("unknown policy key `{k}`{}", suggest(k, POLICY_KEYS)),
            );
        }
    }
    let name = match m.get("name") {
        None => {
            cx.err(path, "policy missing required key `name`");
            String::new()
        }
        Some(Value::String(s)) => {
            if !name_re().is_some_and(|r| r.is_match(s)) {
                cx.err(
                    &child_key(path, "name"),
                    format!("invalid policy name `{s}`: must match ^[A-z][A-z0-9]*(-[A-z0-9]+)*$"),
                );
            }
            s.clone()
        }
        Some(v) => {
            cx.err(
                &child_key(path, "name"),
                format!("`name` must be a string, found {}", json_type(v)),
            );
            String::new()
        }
    };
    let rpath = child_key(path, "resource");
    let resource = match m.get("resource") {
        None => {
            cx.err(path, "policy missing required key `resource`");
            String::new()
        }
        Some(Value::String(s)) => {
            let r = if s.contains('.') {
                s.clone()
            } else {
                format!("aws.{s}")
            };
            if r.starts_with("aws.") {
                if !AWS_RESOURCES.contains(&r.as_str()) {
                    cx.err(
                        &rpath,
                        format!("unknown resource type `{s}`{}", suggest(&r, AWS_RESOURCES)),
                    );
                } else if crate::resources::native(&r).is_none() {
                    cx.unsupported(FeatureKind::Resource, &r, &rpath);
                }
            } else {
                cx.unsupported(FeatureKind::Resource, &r, &rpath);
            }
            r
        }
        Some(Value::Array(a)) => {
            cx.unsupported(FeatureKind::Resource, "multiple resource types", &rpath);
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        }
        Some(v) => {
            cx.err(
                &rpath,
                format!("`resource` must be a string, found {}", json_type(v)),
            );
            String::new()
        }
    };
    let description = cx.string(m, "description", path);
    for k in ["title", "comment", "comments", "region", "tz"] {
        cx.string(m, k, path);
    }
    for k in [
        "region",
        "start",
        "end",
        "tz",
        "source",
        "max-resources-percent",
    ] {
        if m.contains_key(k) {
            cx.unsupported(FeatureKind::Other, k, &child_key(path, k));
        }
    }
    let mode = mode(cx, m, path, &name, &resource, description.as_deref());
    let member_role = member_role(cx, m, path);
    let tags = cx.strings(m, "tags", path, None);
    let metadata = match m.get("metadata") {
        None => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(v) => {
            cx.err(
                &child_key(path, "metadata"),
                format!("`metadata` must be a mapping, found {}", json_type(v)),
            );
            Value::Null
        }
    };
    let max_resources = max_resources(cx, m, path);
    let augment_keys = query(cx, m, path);
    let s3 = resource == "aws.s3";
    let filters = filter_list(cx, m.get("filters"), &child_key(path, "filters"), s3, false);
    let conditions = filter_list(
        cx,
        m.get("conditions"),
        &child_key(path, "conditions"),
        s3,
        true,
    );
    let actions = action_list(cx, m.get("actions"), &child_key(path, "actions"), &resource);
    if cx.errors.len() > errors_before {
        return None;
    }
    let (line, _) = cx.ix.at(path);
    Some(Policy {
        name,
        resource,
        mode,
        member_role,
        filters,
        actions,
        conditions,
        description,
        tags,
        metadata,
        max_resources,
        augment_keys,
        unsupported: std::mem::take(&mut cx.unsupported),
        raw: p.clone(),
        origin: cx.origin.to_string(),
        line,
    })
}

fn mode(
    cx: &mut Ctx,
    m: &Map<String, Value>,
    path: &str,
    name: &str,
    resource: &str,
    description: Option<&str>,
) -> Mode {
    let mpath = child_key(path, "mode");
    let Some(mv) = m.get("mode") else {
        return Mode::Pull;
    };
    let Value::Object(mm) = mv else {
        cx.err(
            &mpath,
            "invalid `mode` declaration: must be a mapping with `type`",
        );
        return Mode::Pull;
    };
    let Some(t) = cx.string(mm, "type", &mpath) else {
        if !mm.contains_key("type") {
            cx.err(&mpath, "invalid `mode` declaration: missing `type`");
        }
        return Mode::Pull;
    };
    if !MODES.contains(&t.as_str()) {
        cx.err(
            &child_key(&mpath, "type"),
            format!("unknown mode type `{t}`{}", suggest(&t, MODES)),
        );
        return Mode::Pull;
    }
    let lambda = !matches!(t.as_str(), "pull");
    if lambda {
        let prefix = mm
            .get("function-prefix")
            .and_then(Value::as_str)
            .unwrap_or("custodian-");
        if prefix.len() + name.len() > 64 {
            cx.err(&child_key(path, "name"), format!("policy `{name}` is too long for a Lambda mode: prefix `{prefix}` + name exceeds 64 characters"));
        }
        if description.is_some_and(|d| d.len() > 256) {
            cx.err(
                &child_key(path, "description"),
                "Lambda mode policies have a max description length of 256",
            );
        }
    }
    match t.as_str() {
        "pull" => {
            cx.known_keys(mm, &[], "mode pull", &mpath);
            Mode::Pull
        }
        "cloudtrail" => {
            let mut keys: Vec<&str> = LAMBDA_MODE_KEYS.to_vec();
            keys.extend(["delay", "events"]);
            cx.known_keys(mm, &keys, "mode cloudtrail", &mpath);
            let epath = child_key(&mpath, "events");
            let mut events = Vec::new();
            match mm.get("events") {
                Some(Value::Array(a)) if !a.is_empty() => {
                    for (i, e) in a.iter().enumerate() {
                        let ep = child_index(&epath, i);
                        match e {
                            Value::String(s) => match TRAIL_EVENTS.iter().find(|(k, ..)| k == s) {
                                Some((k, src, ev, ids)) => events.push(TrailEvent {
                                    source: (*src).into(),
                                    event: (*ev).into(),
                                    ids: (*ids).into(),
                                    short_name: Some((*k).into()),
                                }),
                                None => {
                                    let names: Vec<&str> = TRAIL_EVENTS.iter().map(|t| t.0).collect();
                                    cx.err(&ep, format!(
                                        "event shortcut not defined: `{s}`{}; write it as {{source: ..., event: {s}, ids: ...}}",
                                        suggest(s, &names)
                                    ));
                                }
                            },
                            Value::Object(em) => {
                                cx.known_keys(em, &["source", "event", "ids"], "a cloudtrail event", &ep);
                                let mut get = |k: &str| -> Option<String> {
                                    let v = cx.string(em, k, &ep);
                                    if !em.contains_key(k) {
                                        cx.err(&ep, format!("cloudtrail event missing required key `{k}`"));
                                    }
                                    v
                                };
                                let (source, event, ids) = (get("source"), get("event"), get("ids"));
                                if let Some(ids) = &ids
                                    && let Err(e) = jmespath::compile(ids) {
                                        cx.err(&child_key(&ep, "ids"), format!("invalid JMESPath `{ids}`: {}", e.to_string().lines().next().unwrap_or_default()));
                                    }
                                if let (Some(source), Some(event), Some(ids)) = (source, event, ids) {
                                    events.push(TrailEvent { source, event, ids, short_name: None });
                                }
                            }
                            other => cx.err(&ep, format!("a cloudtrail event must be a short name or a mapping, found {}", json_type(other))),
                        }
                    }
                }
                Some(Value::Array(_)) | None | Some(Value::Null) => {
                    cx.err(&mpath, "cloudtrail mode requires `events` to subscribe to");
                }
                Some(v) => cx.err(
                    &epath,
                    format!("`events` must be a list, found {}", json_type(v)),
                ),
            }
            Mode::CloudTrail { events }
        }
        "hub-finding" | "hub-action" => {
            cx.known_keys(mm, LAMBDA_MODE_KEYS, &format!("mode {t}"), &mpath);
            if t == "hub-finding" {
                Mode::HubFinding
            } else {
                Mode::HubAction
            }
        }
        "periodic" => {
            lambda_keys(cx, mm, &["schedule"], &t, &mpath);
            cx.string(mm, "schedule", &mpath);
            Mode::Periodic
        }
        "schedule" => {
            let extra = [
                "schedule",
                "timezone",
                "start-date",
                "end-date",
                "scheduler-role",
                "group-name",
            ];
            lambda_keys(cx, mm, &extra, &t, &mpath);
            for k in extra {
                cx.string(mm, k, &mpath);
            }
            if !mm.contains_key("schedule") {
                cx.err(&mpath, "schedule mode requires `schedule`");
            }
            Mode::Schedule
        }
        "guard-duty" => {
            lambda_keys(cx, mm, &[], &t, &mpath);
            // c7n's GuardDutyMode.validate compares the resource *as written* with
            // ('account', 'ec2', 'iam-user'): `aws.ec2` is refused there too.
            let written = m
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or(resource);
            if !matches!(written, "account" | "ec2" | "iam-user") {
                cx.err(
                    &mpath,
                    format!(
                        "guard-duty mode supports only `resource: account`, `ec2` or `iam-user` (written so), not `{written}`"
                    ),
                );
            }
            Mode::GuardDuty
        }
        "config-rule" => {
            lambda_keys(cx, mm, &[], &t, &mpath);
            if mm.contains_key("pattern") {
                cx.err(
                    &child_key(&mpath, "pattern"),
                    "AWS Config does not support event pattern filtering",
                );
            }
            Mode::ConfigRule
        }
        "config-poll-rule" => {
            lambda_keys(cx, mm, &["schedule", "ignore-support-check"], &t, &mpath);
            let schedules = [
                "One_Hour",
                "Three_Hours",
                "Six_Hours",
                "Twelve_Hours",
                "TwentyFour_Hours",
            ];
            match cx.string(mm, "schedule", &mpath) {
                Some(s) if !schedules.contains(&s.as_str()) => cx.err(
                    &child_key(&mpath, "schedule"),
                    format!("`schedule` must be one of {}", schedules.join(", ")),
                ),
                Some(_) => {}
                None if !mm.contains_key("schedule") => {
                    cx.err(&mpath, "config-poll-rule schedule required")
                }
                None => {}
            }
            cx.boolean(mm, "ignore-support-check", &mpath);
            Mode::ConfigPollRule
        }
        "ec2-instance-state" => {
            lambda_keys(cx, mm, &["events"], &t, &mpath);
            let states = [
                "pending",
                "running",
                "shutting-down",
                "stopped",
                "stopping",
                "terminated",
            ];
            Mode::Ec2InstanceState {
                states: cx.strings(mm, "events", &mpath, Some(&states)),
            }
        }
        "asg-instance-state" => {
            lambda_keys(cx, mm, &["events"], &t, &mpath);
            let names: Vec<&str> = ASG_EVENTS.iter().map(|e| e.0).collect();
            let events = cx.strings(mm, "events", &mpath, Some(&names));
            Mode::AsgInstanceState {
                detail_types: events
                    .iter()
                    .filter_map(|e| ASG_EVENTS.iter().find(|x| x.0 == e))
                    .map(|x| x.1.to_string())
                    .collect(),
            }
        }
        "phd" => {
            lambda_keys(cx, mm, &["events", "categories", "statuses"], &t, &mpath);
            let categories = ["issue", "accountNotification", "scheduledChange"];
            let statuses = ["open", "upcoming", "closed"];
            let events = cx.strings(mm, "events", &mpath, None);
            let categories = cx.strings(mm, "categories", &mpath, Some(&categories));
            cx.strings(mm, "statuses", &mpath, Some(&statuses));
            Mode::Phd { events, categories }
        }
        // MODES lists exactly the twelve above; an unknown type was reported already.
        _ => Mode::Pull,
    }
}

/// c7n's `ASG_EVENT_MAPPING` (c7n/mu.py): asg-instance-state events to detail-types.
const ASG_EVENTS: [(&str, &str); 4] = [
    ("launch-success", "EC2 Instance Launch Successful"),
    ("launch-failure", "EC2 Instance Launch Unsuccessful"),
    ("terminate-success", "EC2 Instance Terminate Successful"),
    ("terminate-failure", "EC2 Instance Terminate Unsuccessful"),
];

/// `mode.member-role` (c7n's `LambdaMode` key): the role to act through in the account the
/// event came from, `{account_id}` (and, here, `{region}`) filled in from the event. Checked
/// as written with sample values substituted: an IAM role ARN, no other placeholders.
fn member_role(cx: &mut Ctx, m: &Map<String, Value>, path: &str) -> Option<String> {
    let mpath = child_key(path, "mode");
    let mm = m.get("mode")?.as_object()?;
    let role = cx.string(mm, "member-role", &mpath)?;
    let rpath = child_key(&mpath, "member-role");
    match crate::member_role::check_template(&role) {
        Ok(()) => Some(role),
        Err(why) => {
            cx.err(&rpath, format!("`member-role` {why}"));
            None
        }
    }
}

/// A Lambda mode's keys (`LambdaMode.schema`) plus the mode's own.
fn lambda_keys(cx: &mut Ctx, mm: &Map<String, Value>, extra: &[&str], t: &str, mpath: &str) {
    let mut keys: Vec<&str> = LAMBDA_MODE_KEYS.to_vec();
    keys.extend(extra);
    cx.known_keys(mm, &keys, &format!("mode {t}"), mpath);
}

fn max_resources(cx: &mut Ctx, m: &Map<String, Value>, path: &str) -> Option<MaxResources> {
    let p = child_key(path, "max-resources");
    match m.get("max-resources")? {
        Value::Number(n) => match n.as_u64() {
            Some(a) if a >= 1 => Some(MaxResources::Amount(a)),
            _ => {
                cx.err(
                    &p,
                    format!("`max-resources` must be an integer >= 1, found {n}"),
                );
                None
            }
        },
        Value::Object(o) => {
            cx.known_keys(o, &["amount", "op", "percent"], "max-resources", &p);
            let amount = o.get("amount").and_then(Value::as_u64);
            let percent = o.get("percent").and_then(Value::as_f64);
            let op = o
                .get("op")
                .and_then(Value::as_str)
                .unwrap_or("or")
                .to_string();
            if !matches!(op.as_str(), "or" | "and") {
                cx.err(
                    &child_key(&p, "op"),
                    format!("max-resources op must be `or` or `and`, found `{op}`"),
                );
            }
            Some(MaxResources::Spec {
                amount,
                percent,
                op,
            })
        }
        v => {
            cx.err(
                &p,
                format!(
                    "`max-resources` must be an integer or a mapping, found {}",
                    json_type(v)
                ),
            );
            None
        }
    }
}

fn query(cx: &mut Ctx, m: &Map<String, Value>, path: &str) -> Option<Vec<String>> {
    let p = child_key(path, "query");
    let q = m.get("query")?;
    let Value::Array(items) = q else {
        cx.err(
            &p,
            format!("`query` must be a list of mappings, found {}", json_type(q)),
        );
        return None;
    };
    let mut keys = None;
    for (i, it) in items.iter().enumerate() {
        let ip = child_index(&p, i);
        let Value::Object(o) = it else {
            cx.err(
                &ip,
                format!("`query` entries must be mappings, found {}", json_type(it)),
            );
            continue;
        };
        for (k, v) in o {
            if k == "augment-keys" {
                let mut one = Map::new();
                one.insert(k.clone(), v.clone());
                keys = Some(cx.strings(&one, "augment-keys", &ip, None));
            } else {
                cx.unsupported(
                    FeatureKind::Other,
                    &format!("query {k}"),
                    &child_key(&ip, k),
                );
            }
        }
    }
    keys
}

fn filter_list(
    cx: &mut Ctx,
    v: Option<&Value>,
    path: &str,
    s3: bool,
    conditions: bool,
) -> Vec<Filter> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, f)| filter(cx, f, &child_index(path, i), s3, conditions))
            .collect(),
        Some(other) => {
            cx.err(path, format!("must be a list, found {}", json_type(other)));
            Vec::new()
        }
    }
}

fn filter(cx: &mut Ctx, f: &Value, path: &str, s3: bool, conditions: bool) -> Option<Filter> {
    let (name, data) = match f {
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("type".into(), Value::String(s.clone()));
            (s.clone(), m)
        }
        Value::Object(m) if m.len() == 1 && !m.contains_key("type") => {
            let (k, v) = m.iter().next()?;
            if matches!(k.as_str(), "and" | "or" | "not") {
                let inner = filter_list(cx, Some(v), &child_key(path, k), s3, conditions);
                if !v.is_array() {
                    return None;
                }
                return Some(match k.as_str() {
                    "and" => Filter::And(inner),
                    "or" => Filter::Or(inner),
                    _ => Filter::Not(inner),
                });
            }
            return value_filter(cx, m, path).map(Filter::Value);
        }
        Value::Object(m) => match m.get("type") {
            Some(Value::String(t)) => (t.clone(), m.clone()),
            Some(v) => {
                cx.err(
                    &child_key(path, "type"),
                    format!("filter `type` must be a string, found {}", json_type(v)),
                );
                return None;
            }
            None => {
                cx.err(
                    path,
                    "invalid filter: a mapping needs `type` (or exactly one `key: value`)",
                );
                return None;
            }
        },
        other => {
            cx.err(
                path,
                format!(
                    "filter must be a mapping or a string, found {}",
                    json_type(other)
                ),
            );
            return None;
        }
    };
    match name.as_str() {
        "value" => return value_filter(cx, &data, path).map(Filter::Value),
        "event" => return value_filter(cx, &data, path).map(Filter::Event),
        _ => {}
    }
    if conditions {
        cx.err(
            path,
            format!("conditions accept only value, event and boolean filters, found `{name}`"),
        );
        return None;
    }
    if !s3 {
        // Other resource types run through the fallback; c7n validates their filters.
        return Some(Filter::Unsupported(name));
    }
    let s3_names: Vec<&str> = S3_FILTERS.iter().map(|f| f.0).collect();
    if !s3_names.contains(&name.as_str()) {
        cx.err(
            path,
            format!(
                "unknown filter `{name}` for aws.s3{}",
                suggest(&name, &s3_names)
            ),
        );
        return None;
    }
    let before = cx.errors.len();
    let out = match name.as_str() {
        "bucket-encryption" => {
            cx.known_keys(
                &data,
                &["state", "crypto", "key", "bucket_key_enabled"],
                "filter bucket-encryption",
                path,
            );
            let state = cx.boolean(&data, "state", path).unwrap_or(true);
            let crypto = cx.string(&data, "crypto", path);
            if let Some(c) = &crypto
                && c != "AES256"
                && c != "aws:kms"
            {
                cx.err(
                    &child_key(path, "crypto"),
                    format!("`crypto` must be AES256 or aws:kms, found `{c}`"),
                );
            }
            let key = cx.string(&data, "key", path);
            let bke = cx.boolean(&data, "bucket_key_enabled", path);
            if data.get("bucket_key_enabled").is_some_and(|v| !v.is_null())
                && data.get("key").is_some_and(|v| !v.is_null())
            {
                cx.err(
                    path,
                    "key and bucket_key_enabled attributes cannot both be set",
                );
            }
            Filter::BucketEncryption {
                state,
                crypto,
                key,
                bucket_key_enabled: bke,
            }
        }
        "check-public-block" => {
            let keys = [
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            ];
            cx.known_keys(&data, &keys, "filter check-public-block", path);
            Filter::CheckPublicBlock {
                block_public_acls: cx.boolean(&data, "BlockPublicAcls", path),
                ignore_public_acls: cx.boolean(&data, "IgnorePublicAcls", path),
                block_public_policy: cx.boolean(&data, "BlockPublicPolicy", path),
                restrict_public_buckets: cx.boolean(&data, "RestrictPublicBuckets", path),
            }
        }
        "has-statement" => {
            cx.known_keys(
                &data,
                &["statement_ids", "statements"],
                "filter has-statement",
                path,
            );
            let statement_ids = cx.strings(&data, "statement_ids", path, None);
            let statements = statements(cx, &data, path);
            let templated = statements.iter().any(has_placeholder);
            let partial = statements.iter().any(|s| s.get("PartialMatch").is_some());
            if templated || partial {
                let why = if partial {
                    "has-statement with PartialMatch"
                } else {
                    "has-statement with {placeholders}"
                };
                cx.unsupported(FeatureKind::Filter, why, path);
                Filter::Unsupported("has-statement".into())
            } else {
                Filter::HasStatement {
                    statement_ids,
                    statements,
                }
            }
        }
        "missing-policy-statement" | "missing-statement" => {
            cx.known_keys(&data, &["statement_ids"], &format!("filter {name}"), path);
            Filter::MissingPolicyStatement {
                statement_ids: cx.strings(&data, "statement_ids", path, None),
            }
        }
        "global-grants" => {
            cx.known_keys(
                &data,
                &["allow_website", "operator", "permissions"],
                "filter global-grants",
                path,
            );
            let allow_website = cx.boolean(&data, "allow_website", path).unwrap_or(true);
            if let Some(op) = cx.string(&data, "operator", path)
                && op != "or"
                && op != "and"
            {
                cx.err(
                    &child_key(path, "operator"),
                    format!("`operator` must be or/and, found `{op}`"),
                );
            }
            let perms = ["READ", "WRITE", "WRITE_ACP", "READ_ACP", "FULL_CONTROL"];
            Filter::GlobalGrants {
                allow_website,
                permissions: cx.strings(&data, "permissions", path, Some(&perms)),
            }
        }
        other => {
            cx.unsupported(FeatureKind::Filter, other, path);
            Filter::Unsupported(other.to_string())
        }
    };
    (cx.errors.len() == before).then_some(out)
}

/// A string with `{...}` that c7n formats with account/region/bucket values.
fn has_placeholder(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('{'),
        Value::Array(a) => a.iter().any(has_placeholder),
        Value::Object(m) => m.values().any(has_placeholder),
        _ => false,
    }
}

fn statements(cx: &mut Ctx, data: &Map<String, Value>, path: &str) -> Vec<Value> {
    let p = child_key(path, "statements");
    let Some(v) = data.get("statements") else {
        return Vec::new();
    };
    let Value::Array(a) = v else {
        cx.err(
            &p,
            format!("`statements` must be a list, found {}", json_type(v)),
        );
        return Vec::new();
    };
    for (i, s) in a.iter().enumerate() {
        let sp = child_index(&p, i);
        match s {
            Value::Object(m) => match m.get("Effect") {
                Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
                Some(e) => cx.err(
                    &child_key(&sp, "Effect"),
                    format!("`Effect` must be Allow or Deny, found {e}"),
                ),
                None => cx.err(&sp, "statement missing required key `Effect`"),
            },
            other => cx.err(
                &sp,
                format!("a statement must be a mapping, found {}", json_type(other)),
            ),
        }
    }
    a.clone()
}

fn value_filter(cx: &mut Ctx, data: &Map<String, Value>, path: &str) -> Option<crate::ValueFilter> {
    let mut errs = Vec::new();
    let mut unsup = Vec::new();
    let f = value::build(data, &mut errs, &mut unsup);
    for (k, m) in errs {
        let p = if k.is_empty() {
            path.to_string()
        } else {
            child_key(path, &k)
        };
        cx.err(&p, m);
    }
    for (k, name) in &unsup {
        let kind = if k == "value_type" {
            FeatureKind::ValueType
        } else {
            FeatureKind::Other
        };
        cx.unsupported(kind, name, &child_key(path, k));
    }
    f
}

fn action_list(cx: &mut Ctx, v: Option<&Value>, path: &str, resource: &str) -> Vec<Action> {
    let items = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            cx.err(
                path,
                format!("`actions` must be a list, found {}", json_type(other)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, a) in items.iter().enumerate() {
        let ap = child_index(path, i);
        let (name, data) = match a {
            Value::String(s) => (s.clone(), Map::new()),
            Value::Object(m) => match m.get("type") {
                Some(Value::String(t)) => (t.clone(), m.clone()),
                Some(v) => {
                    cx.err(
                        &child_key(&ap, "type"),
                        format!("action `type` must be a string, found {}", json_type(v)),
                    );
                    continue;
                }
                None => {
                    cx.err(&ap, "action mapping missing `type`");
                    continue;
                }
            },
            other => {
                cx.err(
                    &ap,
                    format!(
                        "action must be a mapping or a string, found {}",
                        json_type(other)
                    ),
                );
                continue;
            }
        };
        if resource != "aws.s3" {
            out.push(Action::Unsupported {
                name,
                raw: a.clone(),
            });
            continue;
        }
        let names: Vec<&str> = S3_ACTIONS.iter().map(|x| x.0).collect();
        if !names.contains(&name.as_str()) {
            cx.err(
                &ap,
                format!(
                    "unknown action `{name}` for aws.s3{}",
                    suggest(&name, &names)
                ),
            );
            continue;
        }
        let Some(keys) = actions::schema_keys(&name) else {
            cx.unsupported(FeatureKind::Action, &name, &ap);
            out.push(Action::Unsupported {
                name,
                raw: a.clone(),
            });
            continue;
        };
        let before = cx.errors.len();
        cx.known_keys(&data, keys, &format!("action {name}"), &ap);
        action_types(cx, &name, &data, &ap);
        if cx.errors.len() == before {
            out.push(actions::build(&name, &data, a));
        }
    }
    out
}

fn action_types(cx: &mut Ctx, name: &str, d: &Map<String, Value>, ap: &str) {
    let bools: &[&str] = match name {
        "set-bucket-encryption" => &["enabled", "bucket-key"],
        "set-public-block" => &[
            "state",
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        ],
        "toggle-versioning" => &["enabled"],
        "delete" => &["remove-contents"],
        _ => &[],
    };
    for k in bools {
        cx.boolean(d, k, ap);
    }
    match name {
        "set-bucket-encryption" => {
            if let Some(c) = cx.string(d, "crypto", ap)
                && c != "AES256"
                && c != "aws:kms"
            {
                cx.err(
                    &child_key(ap, "crypto"),
                    format!("`crypto` must be AES256 or aws:kms, found `{c}`"),
                );
            }
            if cx.string(d, "key", ap).is_some()
                && d.get("crypto").and_then(Value::as_str) != Some("aws:kms")
            {
                cx.err(&child_key(ap, "key"), "`key` requires `crypto: aws:kms`");
            }
        }
        "delete-global-grants" | "remove-tag" | "unmark" | "untag" => {
            cx.strings(
                d,
                if name == "delete-global-grants" {
                    "grantees"
                } else {
                    "tags"
                },
                ap,
                None,
            );
        }
        "tag" => {
            for k in ["key", "tag"] {
                cx.string(d, k, ap);
            }
            if d.get("key").is_some_and(|v| !v.is_null() && v != "")
                && d.get("tag").is_some_and(|v| !v.is_null() && v != "")
            {
                cx.err(ap, "can't specify both `key` and `tag`, choose one");
            }
            if let Some(t) = d.get("tags")
                && !t.is_object()
            {
                cx.err(
                    &child_key(ap, "tags"),
                    format!("`tags` must be a mapping, found {}", json_type(t)),
                );
            }
        }
        "mark-for-op" => {
            for k in ["tag", "msg", "tz"] {
                cx.string(d, k, ap);
            }
            for k in ["days", "hours"] {
                match d.get(k) {
                    None => {}
                    Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => {}
                    Some(v) => cx.err(
                        &child_key(ap, k),
                        format!("`{k}` must be a number >= 0, found {v}"),
                    ),
                }
            }
            let op = cx.string(d, "op", ap);
            let names: Vec<&str> = S3_ACTIONS.iter().map(|x| x.0).collect();
            match op {
                Some(o) if names.contains(&o.as_str()) => {}
                Some(o) => cx.err(
                    &child_key(ap, "op"),
                    format!(
                        "mark-for-op specifies invalid op `{o}`{}",
                        suggest(&o, &names)
                    ),
                ),
                None if !d.contains_key("op") => cx.err(
                    ap,
                    "mark-for-op needs `op` (c7n's default `stop` is not an aws.s3 action)",
                ),
                None => {}
            }
            if let Some(tz) = d.get("tz").and_then(Value::as_str)
                && !matches!(tz.to_ascii_lowercase().as_str(), "utc" | "gmt" | "z")
            {
                cx.unsupported(
                    FeatureKind::Other,
                    &format!("mark-for-op tz {tz}"),
                    &child_key(ap, "tz"),
                );
            }
        }
        "set-statements" => {
            statements(cx, d, ap);
            if let Some(r) = d.get("remove") {
                let ok = matches!(r, Value::String(s) if s == "matched" || s == "*")
                    || matches!(r, Value::Array(a) if a.iter().all(Value::is_string));
                if !ok {
                    cx.err(
                        &child_key(ap, "remove"),
                        "`remove` must be `matched`, `*` or a list of statement ids",
                    );
                }
            }
        }
        _ => {}
    }
}
