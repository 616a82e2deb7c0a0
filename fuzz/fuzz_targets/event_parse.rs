//! Any bytes as an EventBridge event, through both entry points the invoker has:
//! `parse_bytes` (what `czero invoke` reads from a file) and the Lambda path (the runtime
//! decodes `EventBridgeEvent<Value>`, the handler re-encodes it and calls `parse_event`).
//! Neither may panic; when both accept the document they must reach the same verdict; a
//! parsed event's resource ids are non-empty strings taken from the input.
//!
//! "Both accept the document": serde_json skips a field a struct does not declare without
//! validating its strings, so the typed decode accepts invalid UTF-8 or a lone surrogate in
//! an unknown field, where `parse_bytes` (which decodes everything) refuses the document as
//! not JSON. Lambda delivers valid JSON, so only valid documents are compared.
#![no_main]

use aws_lambda_events::eventbridge::EventBridgeEvent;
use czero_invoker::event::{EventError, Parsed, SecurityEvent, parse_bytes, parse_event};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Everything the invoker derives from an event, without the raw copy (the Lambda path's
/// copy is the re-encoded typed envelope, so it legitimately differs in unknown fields).
type Verdict = Result<Option<Summary>, EventError>;

#[derive(Debug, PartialEq)]
struct Summary {
    kind: &'static str,
    id: String,
    source: String,
    detail_type: String,
    account: String,
    region: String,
    event_name: Option<String>,
    finding_types: Vec<String>,
    severity: Option<String>,
    resource_types: Vec<String>,
    accounts: Vec<String>,
    regions: Vec<String>,
    resource_ids: Vec<String>,
}

fn summary(e: &SecurityEvent) -> Summary {
    Summary {
        kind: e.kind.as_str(),
        id: e.id.clone(),
        source: e.source.clone(),
        detail_type: e.detail_type.clone(),
        account: e.account.clone(),
        region: e.region.clone(),
        event_name: e.event_name.clone(),
        finding_types: e.finding_types.clone(),
        severity: e.severity.map(|s| format!("{s:?}")),
        resource_types: e.resource_types.clone(),
        accounts: e.accounts.clone(),
        regions: e.regions.clone(),
        resource_ids: e.resource_ids.clone(),
    }
}

fn verdict(r: &Result<Parsed, EventError>) -> Verdict {
    match r {
        Ok(Parsed::Event(e)) => Ok(Some(summary(e))),
        Ok(Parsed::Skip(_)) => Ok(None),
        Err(e) => Err(e.clone()),
    }
}

/// Every string anywhere in `v`.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let from_bytes = parse_bytes(data);
    if let Ok(Parsed::Event(e)) = &from_bytes {
        let mut seen = Vec::new();
        strings(&e.raw, &mut seen);
        for id in &e.resource_ids {
            assert!(!id.is_empty(), "empty resource id");
            assert!(seen.contains(id), "resource id {id:?} is not in the input");
        }
        assert!(!e.accounts.iter().any(String::is_empty));
        assert!(!e.regions.iter().any(String::is_empty));
    }
    let Ok(typed) = serde_json::from_slice::<EventBridgeEvent<Value>>(data) else {
        return;
    };
    let Ok(raw) = serde_json::to_value(&typed) else {
        return;
    };
    let from_lambda = parse_event(typed, raw);
    if !matches!(
        from_bytes,
        Err(EventError::Json(_) | EventError::TooLarge(_))
    ) {
        assert_eq!(verdict(&from_bytes), verdict(&from_lambda));
    }
});
