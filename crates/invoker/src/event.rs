//! EventBridge envelopes: which kind of security event this is, and what the mapping rules
//! match on (event name, finding types, severity, resource types, accounts, regions, ids).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

/// Larger than any EventBridge event (256 KB) with a wide margin; refuses runaway input.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

pub const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";
pub const SECURITY_HUB: &str = "Security Hub Findings - Imported";
pub const GUARDDUTY: &str = "GuardDuty Finding";
pub const CONFIG: &str = "Config Rules Compliance Change";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CloudTrail,
    SecurityHub,
    GuardDuty,
    Config,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CloudTrail => "cloudtrail",
            Kind::SecurityHub => "securityhub",
            Kind::GuardDuty => "guardduty",
            Kind::Config => "config",
        }
    }
}

/// Security Hub's severity labels, in order. GuardDuty's numeric severity maps onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn from_label(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_uppercase().as_str() {
            "INFORMATIONAL" => Severity::Informational,
            "LOW" => Severity::Low,
            "MEDIUM" => Severity::Medium,
            "HIGH" => Severity::High,
            "CRITICAL" => Severity::Critical,
            _ => return None,
        })
    }

    /// GuardDuty: 1.0–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0+ critical.
    fn from_guardduty(n: f64) -> Severity {
        match n {
            n if n >= 9.0 => Severity::Critical,
            n if n >= 7.0 => Severity::High,
            n if n >= 4.0 => Severity::Medium,
            n if n >= 1.0 => Severity::Low,
            _ => Severity::Informational,
        }
    }
}

/// A security event the invoker understands.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub kind: Kind,
    pub id: String,
    pub source: String,
    pub detail_type: String,
    /// The envelope's account and region (where the event was delivered from).
    pub account: String,
    pub region: String,
    /// CloudTrail `eventName`.
    pub event_name: Option<String>,
    /// Security Hub `Types[]`, GuardDuty `type`, Config `configRuleName`.
    pub finding_types: Vec<String>,
    /// Highest severity among the findings.
    pub severity: Option<Severity>,
    /// As the source reports them: `AwsS3Bucket`, `S3Bucket`, `AWS::S3::Bucket`.
    pub resource_types: Vec<String>,
    /// Accounts and regions of the resources (for cross-account findings these differ from
    /// the envelope's); always includes the envelope's own.
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub resource_ids: Vec<String>,
    /// Where the job acts: the account and region of the event's resources. GuardDuty's
    /// `detail.accountId`/`detail.region`, the (first) Security Hub finding's `AwsAccountId`/
    /// `Region` (see [`SecurityEvent::parts`]), else the envelope's.
    pub target_account: String,
    pub target_region: String,
    /// The whole event, passed on to the worker untouched.
    pub raw: Value,
}

impl SecurityEvent {
    /// One event per (account, region) its resources are in. Only a Security Hub event
    /// whose findings span several pairs has more than one part: each keeps that pair's
    /// findings (as c7n's hub-finding mode runs once per pair, each in its own account);
    /// every other event is its own single part.
    pub fn parts(&self) -> Result<Vec<SecurityEvent>, EventError> {
        if self.kind != Kind::SecurityHub {
            return Ok(vec![self.clone()]);
        }
        let findings = self
            .raw
            .pointer("/detail/findings")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut groups: Vec<((String, String), Vec<Value>)> = Vec::new();
        for f in findings {
            let key = finding_target(&f, &self.account, &self.region);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(f),
                None => groups.push((key, vec![f])),
            }
        }
        if groups.len() <= 1 {
            return Ok(vec![self.clone()]);
        }
        let mut parts = Vec::with_capacity(groups.len());
        for (_, list) in groups {
            let mut raw = self.raw.clone();
            if let Some(detail) = raw.get_mut("detail").and_then(Value::as_object_mut) {
                detail.insert("findings".into(), Value::Array(list));
            }
            match parse_value(raw)? {
                Parsed::Event(e) => parts.push(*e),
                // Only the findings changed: the kind cannot.
                Parsed::Skip(_) => return Ok(vec![self.clone()]),
            }
        }
        Ok(parts)
    }
}

/// A finding's `AwsAccountId` and `Region`, each defaulting to the envelope's.
fn finding_target(f: &Value, account: &str, region: &str) -> (String, String) {
    let get = |k: &str, default: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(default)
            .to_owned()
    };
    (get("AwsAccountId", account), get("Region", region))
}

/// Why an event is skipped (logged and counted, never retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    UnknownKind {
        event_id: String,
        source: String,
        detail_type: String,
    },
    CallFailed {
        event_id: String,
        event_name: String,
        error_code: String,
    },
}

impl Skip {
    /// The skipped event's id (empty when the envelope has none), for the log line.
    pub fn event_id(&self) -> &str {
        match self {
            Skip::UnknownKind { event_id, .. } | Skip::CallFailed { event_id, .. } => event_id,
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::UnknownKind {
                source,
                detail_type,
                ..
            } => {
                write!(
                    f,
                    "unsupported event kind: source `{source}`, detail-type `{detail_type}`"
                )
            }
            Skip::CallFailed {
                event_name,
                error_code,
                ..
            } => {
                write!(
                    f,
                    "CloudTrail call {event_name} failed with {error_code}: nothing changed"
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Box<SecurityEvent>),
    Skip(Skip),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is {0} bytes, larger than the {MAX_EVENT_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("event is not valid JSON: {0}")]
    Json(String),
    #[error("event is not an EventBridge envelope: {0}")]
    Envelope(String),
    #[error("event field `{field}`: expected {expected}")]
    Field {
        field: String,
        expected: &'static str,
    },
}

/// Parses raw bytes (a file, a fuzz input) as one EventBridge event.
pub fn parse_bytes(bytes: &[u8]) -> Result<Parsed, EventError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge(bytes.len()));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| EventError::Json(e.to_string()))?;
    parse_value(value)
}

/// Parses a JSON value as an EventBridge event.
pub fn parse_value(value: Value) -> Result<Parsed, EventError> {
    let Some(obj) = value.as_object() else {
        return Err(EventError::Envelope("expected a JSON object".into()));
    };
    check_envelope(obj)?;
    let typed: EventBridgeEvent<Value> =
        serde_json::from_value(value.clone()).map_err(|e| EventError::Envelope(e.to_string()))?;
    parse_event(typed, value)
}

/// The envelope's own fields, checked before serde because serde's type errors do not say
/// which field they are about. Accepts exactly what `EventBridgeEvent` accepts.
fn check_envelope(obj: &serde_json::Map<String, Value>) -> Result<(), EventError> {
    for key in [
        "detail-type",
        "source",
        "version",
        "id",
        "account",
        "region",
    ] {
        let required = matches!(key, "detail-type" | "source");
        match obj.get(key) {
            None | Some(Value::String(_)) => {}
            Some(Value::Null) if !required => {}
            Some(_) => return Err(field(key, "a string")),
        }
    }
    match obj.get("time") {
        None | Some(Value::Null) => {}
        // The same parse chrono's deserializer uses.
        Some(Value::String(s)) if s.parse::<chrono::DateTime<chrono::Utc>>().is_ok() => {}
        Some(_) => return Err(field("time", "an RFC 3339 timestamp")),
    }
    match obj.get("resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
        Some(_) => return Err(field("resources", "an array of strings")),
    }
    Ok(())
}

/// Classifies a typed envelope; `raw` is the same event as JSON (kept for the job).
pub fn parse_event(ev: EventBridgeEvent<Value>, raw: Value) -> Result<Parsed, EventError> {
    let kind = match (ev.detail_type.as_str(), ev.source.as_str()) {
        (CLOUDTRAIL, s) if s.starts_with("aws.") => Kind::CloudTrail,
        (SECURITY_HUB, "aws.securityhub") => Kind::SecurityHub,
        (GUARDDUTY, "aws.guardduty") => Kind::GuardDuty,
        (CONFIG, "aws.config") => Kind::Config,
        _ => {
            return Ok(Parsed::Skip(Skip::UnknownKind {
                event_id: ev.id.unwrap_or_default(),
                source: ev.source,
                detail_type: ev.detail_type,
            }));
        }
    };
    let detail = &ev.detail;
    if !detail.is_object() {
        return Err(field("detail", "an object"));
    }
    let account = ev.account.clone().unwrap_or_default();
    let region = ev.region.clone().unwrap_or_default();
    let mut e = SecurityEvent {
        kind,
        id: ev.id.clone().unwrap_or_default(),
        source: ev.source.clone(),
        detail_type: ev.detail_type.clone(),
        account: account.clone(),
        region: region.clone(),
        event_name: None,
        finding_types: vec![],
        severity: None,
        resource_types: vec![],
        accounts: vec![],
        regions: vec![],
        resource_ids: vec![],
        target_account: account.clone(),
        target_region: region.clone(),
        raw,
    };
    match kind {
        Kind::CloudTrail => {
            let name = req_str(detail, "eventName")?;
            if let Some(code) = opt_str(detail, "errorCode")? {
                return Ok(Parsed::Skip(Skip::CallFailed {
                    event_id: e.id.clone(),
                    event_name: name,
                    error_code: code,
                }));
            }
            push_opt(&mut e.accounts, opt_str(detail, "recipientAccountId")?);
            push_opt(&mut e.regions, opt_str(detail, "awsRegion")?);
            let params = detail.get("requestParameters").filter(|v| !v.is_null());
            if let Some(p) = params {
                if !p.is_object() {
                    return Err(field("detail.requestParameters", "an object"));
                }
                if let Some(b) = opt_str_at(p, "bucketName", "detail.requestParameters.bucketName")?
                {
                    e.resource_ids.push(b);
                }
            }
            if e.resource_ids.is_empty() {
                e.resource_ids = ev.resources.clone().unwrap_or_default();
            }
            e.event_name = Some(name);
        }
        Kind::SecurityHub => {
            let findings = detail
                .get("findings")
                .and_then(Value::as_array)
                .ok_or_else(|| field("detail.findings", "an array"))?;
            if findings.is_empty() {
                return Err(field("detail.findings", "at least one finding"));
            }
            (e.target_account, e.target_region) = finding_target(&findings[0], &account, &region);
            for (i, f) in findings.iter().enumerate() {
                let at = |k: &str| format!("detail.findings[{i}].{k}");
                if !f.is_object() {
                    return Err(field(&format!("detail.findings[{i}]"), "an object"));
                }
                push_opt(
                    &mut e.accounts,
                    opt_str_at(f, "AwsAccountId", &at("AwsAccountId"))?,
                );
                push_opt(&mut e.regions, opt_str_at(f, "Region", &at("Region"))?);
                for t in str_list(f, "Types", &at("Types"))? {
                    push_unique(&mut e.finding_types, t);
                }
                if let Some(sev) = f.get("Severity").filter(|v| !v.is_null()) {
                    let label = sev
                        .get("Label")
                        .and_then(Value::as_str)
                        .and_then(Severity::from_label)
                        .ok_or_else(|| {
                            field(
                                &at("Severity.Label"),
                                "INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL",
                            )
                        })?;
                    e.severity = e.severity.max(Some(label));
                }
                let resources = f
                    .get("Resources")
                    .and_then(Value::as_array)
                    .ok_or_else(|| field(&at("Resources"), "an array"))?;
                for (j, r) in resources.iter().enumerate() {
                    let rat = |k: &str| format!("detail.findings[{i}].Resources[{j}].{k}");
                    if !r.is_object() {
                        return Err(field(
                            &format!("detail.findings[{i}].Resources[{j}]"),
                            "an object",
                        ));
                    }
                    push_unique(&mut e.resource_ids, req_str_at(r, "Id", &rat("Id"))?);
                    push_opt(&mut e.resource_types, opt_str_at(r, "Type", &rat("Type"))?);
                    push_opt(&mut e.regions, opt_str_at(r, "Region", &rat("Region"))?);
                }
            }
        }
        Kind::GuardDuty => {
            e.finding_types.push(req_str(detail, "type")?);
            match detail.get("severity") {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let n = v
                        .as_f64()
                        .ok_or_else(|| field("detail.severity", "a number"))?;
                    e.severity = Some(Severity::from_guardduty(n));
                }
            }
            push_opt(&mut e.accounts, opt_str(detail, "accountId")?);
            push_opt(&mut e.regions, opt_str(detail, "region")?);
            // c7n's GuardDutyMode.get_member_account_id: the finding's account.
            if let Some(a) = opt_str(detail, "accountId")? {
                e.target_account = a;
            }
            if let Some(r) = opt_str(detail, "region")? {
                e.target_region = r;
            }
            let res = detail
                .get("resource")
                .filter(|v| v.is_object())
                .ok_or_else(|| field("detail.resource", "an object"))?;
            push_opt(
                &mut e.resource_types,
                opt_str_at(res, "resourceType", "detail.resource.resourceType")?,
            );
            e.resource_ids = guardduty_ids(res)?;
        }
        Kind::Config => {
            e.resource_ids.push(req_str(detail, "resourceId")?);
            push_opt(&mut e.resource_types, opt_str(detail, "resourceType")?);
            push_opt(&mut e.finding_types, opt_str(detail, "configRuleName")?);
            push_opt(&mut e.accounts, opt_str(detail, "awsAccountId")?);
            push_opt(&mut e.regions, opt_str(detail, "awsRegion")?);
        }
    }
    push_unique(&mut e.accounts, account);
    push_unique(&mut e.regions, region);
    e.accounts.retain(|a| !a.is_empty());
    e.regions.retain(|r| !r.is_empty());
    Ok(Parsed::Event(Box::new(e)))
}

/// The resource a GuardDuty finding names, by its `resourceType`.
fn guardduty_ids(res: &Value) -> Result<Vec<String>, EventError> {
    let mut ids = Vec::new();
    if let Some(buckets) = res.get("s3BucketDetails").filter(|v| !v.is_null()) {
        let list = buckets
            .as_array()
            .ok_or_else(|| field("detail.resource.s3BucketDetails", "an array"))?;
        for (i, b) in list.iter().enumerate() {
            let at = format!("detail.resource.s3BucketDetails[{i}].name");
            push_opt(&mut ids, opt_str_at(b, "name", &at)?);
        }
    }
    let singles = [
        ("instanceDetails", "instanceId"),
        ("accessKeyDetails", "accessKeyId"),
        ("eksClusterDetails", "name"),
        ("rdsDbInstanceDetails", "dbInstanceIdentifier"),
        ("lambdaDetails", "functionArn"),
    ];
    for (obj, key) in singles {
        if let Some(o) = res.get(obj).filter(|v| v.is_object()) {
            push_opt(
                &mut ids,
                opt_str_at(o, key, &format!("detail.resource.{obj}.{key}"))?,
            );
        }
    }
    Ok(ids)
}

fn field(name: &str, expected: &'static str) -> EventError {
    EventError::Field {
        field: name.into(),
        expected,
    }
}

fn req_str(detail: &Value, key: &str) -> Result<String, EventError> {
    req_str_at(detail, key, &format!("detail.{key}"))
}

fn req_str_at(v: &Value, key: &str, path: &str) -> Result<String, EventError> {
    opt_str_at(v, key, path)?.ok_or_else(|| field(path, "a non-empty string"))
}

fn opt_str(detail: &Value, key: &str) -> Result<Option<String>, EventError> {
    opt_str_at(detail, key, &format!("detail.{key}"))
}

/// Absent or null is `None`; any other non-string is an error naming the field.
fn opt_str_at(v: &Value, key: &str, path: &str) -> Result<Option<String>, EventError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(field(path, "a string")),
    }
}

fn str_list(v: &Value, key: &str, path: &str) -> Result<Vec<String>, EventError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| field(path, "an array of strings"))
            })
            .collect(),
        Some(_) => Err(field(path, "an array of strings")),
    }
}

fn push_opt(list: &mut Vec<String>, v: Option<String>) {
    if let Some(v) = v {
        push_unique(list, v);
    }
}

fn push_unique(list: &mut Vec<String>, v: String) {
    if !list.contains(&v) {
        list.push(v);
    }
}
