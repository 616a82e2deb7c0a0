//! Event → resource ids, as c7n's push modes resolve them (c7n/cwe.py `get_ids`,
//! c7n/resources/securityhub.py `resolve_findings`, c7n/mu.py event patterns).

use crate::Mode;
use crate::registry::TRAIL_EVENTS;
use crate::value::jmes;
use serde_json::Value;

/// The event cannot be resolved the way the policy's mode says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event has no `{0}`")]
    Missing(&'static str),
    #[error("mode `{0}` does not resolve resources from events")]
    NotPushMode(String),
    #[error("{0}")]
    Jmespath(String),
    #[error("Security Hub event detail-type `{0}` is not handled")]
    HubDetailType(String),
    #[error("Security Hub insight results need Security Hub API calls")]
    HubInsight,
    #[error("finding resource is malformed: {0}")]
    BadFinding(String),
}

const HUB_IMPORTED: &str = "Security Hub Findings - Imported";
const HUB_ACTION: &str = "Security Hub Findings - Custom Action";
const HUB_INSIGHT: &str = "Security Hub Insight Results";

const GUARD_DUTY: &str = "GuardDuty Finding";
const EC2_STATE: &str = "EC2 Instance State-change Notification";
const SCHEDULED: &str = "Scheduled Event";
/// AWS Config's EventBridge detail-types (c7n's own config-rule Lambda is invoked by AWS
/// Config directly, with `invokingEvent`; see [`config_ids`]).
pub const CONFIG_ITEM_CHANGE: &str = "Config Configuration Item Change";
pub const CONFIG_COMPLIANCE_CHANGE: &str = "Config Rules Compliance Change";

/// Would the EventBridge rule c7n deploys for `mode` deliver `event` (c7n/mu.py
/// `render_event_pattern`)? Scans match the scheduled events that start them; `pull`
/// matches nothing, since c7n deploys no rule for it.
pub fn matches_event(mode: &Mode, event: &Value) -> bool {
    let dt = event.get("detail-type").and_then(Value::as_str);
    let source = event.get("source").and_then(Value::as_str);
    let detail = event.get("detail");
    let detail_str = |k: &str| detail.and_then(|d| d.get(k)).and_then(Value::as_str);
    match mode {
        Mode::CloudTrail { events } => {
            if dt != Some("AWS API Call via CloudTrail")
                && dt != Some("AWS Console Sign In via CloudTrail")
            {
                return false;
            }
            let (src, name) = (detail_str("eventSource"), detail_str("eventName"));
            // c7n's pattern: eventSource in {all sources} and eventName in {all names};
            // a short name is used as written (so `CreateFunction` never matches Lambda's
            // `CreateFunction20150331`).
            let names = events
                .iter()
                .map(|e| e.short_name.as_deref().unwrap_or(&e.event));
            let sources_ok = events.iter().any(|e| Some(e.source.as_str()) == src);
            sources_ok && names.into_iter().any(|n| Some(n) == name)
        }
        Mode::HubFinding => source == Some("aws.securityhub") && dt == Some(HUB_IMPORTED),
        Mode::HubAction => {
            source == Some("aws.securityhub") && matches!(dt, Some(HUB_ACTION) | Some(HUB_INSIGHT))
        }
        Mode::GuardDuty => source == Some("aws.guardduty") && dt == Some(GUARD_DUTY),
        Mode::ConfigRule => {
            event.get("invokingEvent").is_some()
                || (source == Some("aws.config")
                    && matches!(
                        dt,
                        Some(CONFIG_ITEM_CHANGE) | Some(CONFIG_COMPLIANCE_CHANGE)
                    ))
        }
        Mode::Ec2InstanceState { states } => {
            source == Some("aws.ec2")
                && dt == Some(EC2_STATE)
                && detail_str("state").is_some_and(|s| states.iter().any(|x| x == s))
        }
        Mode::AsgInstanceState { detail_types } => {
            source == Some("aws.autoscaling")
                && dt.is_some_and(|d| detail_types.iter().any(|x| x == d))
        }
        Mode::Phd { events, categories } => {
            source == Some("aws.health")
                && (events.is_empty()
                    || detail_str("eventTypeCode").is_some_and(|c| events.iter().any(|e| e == c)))
                && (categories.is_empty()
                    || detail_str("eventTypeCategory")
                        .is_some_and(|c| categories.iter().any(|e| e == c)))
        }
        // A schedule delivers EventBridge's "Scheduled Event" (EventBridge Scheduler's
        // payload is whatever the schedule sets, so its source is not checked).
        Mode::Periodic | Mode::Schedule => dt == Some(SCHEDULED),
        // AWS Config invokes a config-poll-rule itself, with a ScheduledNotification.
        Mode::ConfigPollRule => event.get("invokingEvent").is_some(),
        Mode::Pull => false,
    }
}

/// Resource ids named by `event` for `mode`: for cloudtrail, c7n's `get_ids` (a single value
/// becomes a list; falsy values — null, "", 0, [] — are dropped); for hub modes, the
/// resource ARNs of the findings (deduplicated, sorted); for the instance-state modes,
/// c7n's `get_ids`; for config-rule, the resource id AWS Config names.
pub fn resource_ids(mode: &Mode, event: &Value) -> Result<Vec<String>, EventError> {
    match mode {
        Mode::CloudTrail { events } => trail_ids(events, event),
        Mode::HubFinding | Mode::HubAction => hub_arns(event),
        Mode::Ec2InstanceState { .. } => Ok(flatten(
            event
                .get("detail")
                .and_then(|d| d.get("instance-id"))
                .cloned()
                .unwrap_or(Value::Null),
        )),
        Mode::AsgInstanceState { .. } => Ok(flatten(
            event
                .get("detail")
                .and_then(|d| d.get("AutoScalingGroupName"))
                .cloned()
                .unwrap_or(Value::Null),
        )),
        Mode::ConfigRule => config_ids(event),
        other => Err(EventError::NotPushMode(other.name().to_string())),
    }
}

/// The AWS Config resource type an event is about (`AWS::S3::Bucket`).
fn config_type(event: &Value) -> Option<String> {
    if let Some(inv) = event.get("invokingEvent") {
        let parsed: Value = match inv {
            Value::String(s) => serde_json::from_str(s).ok()?,
            other => other.clone(),
        };
        return parsed
            .pointer("/configurationItem/resourceType")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    let detail = event.get("detail")?;
    detail
        .get("resourceType")
        .or_else(|| detail.pointer("/configurationItem/resourceType"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The resource an AWS Config event is about: `detail.resourceId` of a compliance change,
/// `detail.configurationItem.resourceId` of an item change, or the configuration item of a
/// rule invocation's `invokingEvent` (a JSON string).
fn config_ids(event: &Value) -> Result<Vec<String>, EventError> {
    if let Some(inv) = event.get("invokingEvent") {
        let parsed: Value = match inv {
            Value::String(s) => serde_json::from_str(s)
                .map_err(|e| EventError::BadFinding(format!("invokingEvent: {e}")))?,
            other => other.clone(),
        };
        return Ok(flatten(
            parsed
                .pointer("/configurationItem/resourceId")
                .cloned()
                .ok_or(EventError::Missing(
                    "invokingEvent.configurationItem.resourceId",
                ))?,
        ));
    }
    let detail = event.get("detail").ok_or(EventError::Missing("detail"))?;
    if let Some(id) = detail.get("resourceId") {
        return Ok(flatten(id.clone()));
    }
    detail
        .pointer("/configurationItem/resourceId")
        .cloned()
        .map(flatten)
        .ok_or(EventError::Missing("detail.resourceId"))
}

fn trail_ids(events: &[crate::TrailEvent], event: &Value) -> Result<Vec<String>, EventError> {
    let detail = event.get("detail").ok_or(EventError::Missing("detail"))?;
    let name = detail
        .get("eventName")
        .ok_or(EventError::Missing("detail.eventName"))?;
    let source = detail
        .get("eventSource")
        .ok_or(EventError::Missing("detail.eventSource"))?;
    let mut ids = Value::Array(Vec::new());
    for e in events {
        if e.short_name.is_some() {
            // c7n quirk: for any short name it looks the *event's* eventName up in the
            // short-name table and uses that entry, whichever short name was listed.
            let hit = name
                .as_str()
                .and_then(|n| TRAIL_EVENTS.iter().find(|(k, ..)| *k == n));
            if let Some((_, _, _, q)) = hit {
                ids = jmes(&format!("detail.{q}"), event).map_err(|u| EventError::Jmespath(u.0))?;
                return Ok(flatten(ids));
            }
            continue;
        }
        if Some(e.event.as_str()) != name.as_str() || Some(e.source.as_str()) != source.as_str() {
            continue;
        }
        let target = if e.ids.starts_with("detail.") {
            event
        } else {
            detail
        };
        ids = jmes(&e.ids, target).map_err(|u| EventError::Jmespath(u.0))?;
        if truthy(&ids) {
            break;
        }
    }
    Ok(flatten(ids))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn flatten(ids: Value) -> Vec<String> {
    let list = match ids {
        Value::Array(a) => a,
        other => vec![other],
    };
    list.into_iter()
        .filter(truthy)
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `SecurityHub.resolve_findings` for imported and custom-action findings.
fn hub_arns(event: &Value) -> Result<Vec<String>, EventError> {
    let dt = event
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or(EventError::Missing("detail-type"))?;
    match dt {
        HUB_IMPORTED | HUB_ACTION => {}
        HUB_INSIGHT => return Err(EventError::HubInsight),
        other => return Err(EventError::HubDetailType(other.to_string())),
    }
    let findings = event
        .get("detail")
        .and_then(|d| d.get("findings"))
        .and_then(Value::as_array)
        .ok_or(EventError::Missing("detail.findings"))?;
    let mut out: Vec<String> = Vec::new();
    for f in findings {
        let resources = f
            .get("Resources")
            .and_then(Value::as_array)
            .ok_or(EventError::Missing("detail.findings[].Resources"))?;
        let account = f
            .get("AwsAccountId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for r in resources {
            let id = r
                .get("Id")
                .and_then(Value::as_str)
                .ok_or(EventError::Missing("detail.findings[].Resources[].Id"))?;
            let rtype = r.get("Type").and_then(Value::as_str).unwrap_or_default();
            let region = r.get("Region").and_then(Value::as_str).unwrap_or_default();
            let arn = if id.starts_with("AWS") && rtype == "AwsIamAccessKey" {
                let d = r.get("Details").and_then(|d| d.get("AwsIamAccessKey"));
                let label = d
                    .and_then(|d| d.get("PrincipalName").or_else(|| d.get("UserName")))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        EventError::BadFinding(format!(
                            "access key {id} without PrincipalName/UserName"
                        ))
                    })?;
                format!("arn:{}:iam::{account}:user/{label}", partition(region))
            } else if !id.starts_with("arn") {
                if rtype == "AwsEc2Instance" {
                    format!(
                        "arn:{}:ec2:{region}:{account}:instance/{id}",
                        partition(region)
                    )
                } else {
                    // c7n logs "security hub unknown id" and skips it.
                    continue;
                }
            } else {
                id.to_string()
            };
            if !out.contains(&arn) {
                out.push(arn);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// c7n's `Arn.parse`: (service, resource).
fn parse_arn(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 3 {
        return None;
    }
    let service = parts[2].to_string();
    let last = parts.get(5).copied().unwrap_or("");
    if parts.len() < 6 {
        return Some((service, String::new()));
    }
    let resource = if matches!(
        service.as_str(),
        "s3" | "apigateway" | "execute-api" | "emr-serverless"
    ) {
        last.to_string()
    } else if let Some((_, r)) = last.split_once('/') {
        r.to_string()
    } else if let Some((_, r)) = last.split_once(':') {
        r.to_string()
    } else {
        last.to_string()
    };
    Some((service, resource))
}

/// The ARN service of a resource type (only the ones the engine runs natively).
fn service_of(resource: &str) -> Option<&'static str> {
    crate::resources::native(resource).map(|s| s.arn_service)
}

pub(crate) fn policy_resource_ids(
    mode: &Mode,
    resource: &str,
    event: &Value,
) -> Result<Vec<String>, EventError> {
    let ids = resource_ids(mode, event)?;
    if matches!(mode, Mode::ConfigRule) {
        // AWS Config names the resource's type: keep the ids only when it is the policy's
        // (c7n's config source compares the configuration item's type the same way).
        let Some(spec) = crate::resources::native(resource) else {
            return Ok(ids);
        };
        return Ok(if config_type(event).as_deref() == Some(spec.config_type) {
            ids
        } else {
            Vec::new()
        });
    }
    if !matches!(mode, Mode::HubFinding | Mode::HubAction) {
        return Ok(ids);
    }
    let Some(service) = service_of(resource) else {
        return Ok(ids);
    };
    let mut out = Vec::new();
    for a in ids {
        if let Some((svc, res)) = parse_arn(&a)
            && svc == service
            && !out.contains(&res)
        {
            out.push(res);
        }
    }
    Ok(out)
}
