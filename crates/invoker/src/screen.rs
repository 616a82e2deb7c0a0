//! What stands between a routed event and a job: events caused by the worker's own
//! remediations, policy files that would do nothing with the event, and ids that no AWS
//! resource could have. Each is a skip with a reason, decided here without AWS calls, so the
//! service is never woken for a job that cannot do the right thing.

use crate::config::RoleArn;
use crate::ids;
use czero_policy::{EventError, Mode, Policy, PolicyFile};
use serde_json::Value;

/// The excluded role that made this CloudTrail call, if any: the session issuer's ARN
/// (`detail.userIdentity.sessionContext.sessionIssuer.arn`) is the role's, or the caller
/// (`detail.userIdentity.arn`) is a session of it, `arn:P:sts::ACCOUNT:assumed-role/NAME/S`
/// (a session ARN has no role path).
pub fn caused_by<'a>(event: &Value, excluded: &'a [RoleArn]) -> Option<&'a RoleArn> {
    if excluded.is_empty() {
        return None;
    }
    let who = event.get("detail")?.get("userIdentity")?;
    let issuer = who
        .pointer("/sessionContext/sessionIssuer/arn")
        .and_then(Value::as_str);
    if let Some(r) = issuer.and_then(|i| excluded.iter().find(|r| r.is(i))) {
        return Some(r);
    }
    let caller = ids::arn(who.get("arn")?.as_str()?).ok()?;
    let role = caller
        .resource
        .strip_prefix("assumed-role/")?
        .split('/')
        .next()?;
    (caller.service == "sts")
        .then(|| {
            excluded
                .iter()
                .find(|r| r.has_session(caller.partition, caller.account, role))
        })
        .flatten()
}

/// One selected policy file, by key.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub key: &'a str,
    pub file: &'a PolicyFile,
}

/// Which of `files` (by index) would act on `event`: a file is kept when one of its policies
/// subscribes to the event (c7n's EventBridge pattern for its mode) and names at least one
/// resource of the policy's type in it, or has a mode only c7n resolves (the worker hands
/// those to Cloud Custodian). `Err` is the reason to skip the event: no file is kept, or an
/// id is not a valid name for its type (the worker resolves ids from the event again and
/// would act on it too, so one such id rejects the event).
pub fn keep(event: &Value, files: &[Candidate<'_>]) -> Result<Vec<usize>, String> {
    let mut kept = Vec::new();
    let mut why = Vec::new();
    for (i, c) in files.iter().enumerate() {
        let mut runs = false;
        for p in &c.file.policies {
            match acts_on(p, event) {
                Ok(()) => runs = true,
                Err(Reject::Idle(reason)) => why.push(format!("{}: `{}` {reason}", c.key, p.name)),
                Err(Reject::BadId { id, reason }) => {
                    return Err(format!(
                        "event names `{}`, which is not a valid {} id ({reason}; policy `{}` in {})",
                        printable(&id),
                        p.resource,
                        p.name,
                        c.key
                    ));
                }
            }
        }
        if runs {
            kept.push(i);
        }
    }
    if kept.is_empty() {
        return Err(format!(
            "no selected policy would act on this event: {}",
            why.join("; ")
        ));
    }
    Ok(kept)
}

enum Reject {
    /// The policy does nothing with this event.
    Idle(String),
    BadId {
        id: String,
        reason: String,
    },
}

fn acts_on(p: &Policy, event: &Value) -> Result<(), Reject> {
    if !czero_policy::matches_event(&p.mode, event) {
        return Err(Reject::Idle(format!(
            "({}) does not subscribe to it",
            mode_label(&p.mode)
        )));
    }
    let ids = match p.resource_ids(event) {
        Ok(ids) => ids,
        // Only c7n resolves these (guard-duty, phd, insight results): queue as before.
        Err(EventError::NotPushMode(_) | EventError::HubInsight) => return Ok(()),
        Err(e) => {
            return Err(Reject::Idle(format!(
                "({}) cannot resolve resources from it: {e}",
                mode_label(&p.mode)
            )));
        }
    };
    if !config_type_matches(p, event) {
        return Err(Reject::Idle(format!(
            "({}) is about {}, not the event's {}",
            mode_label(&p.mode),
            p.resource,
            config_resource_type(event).unwrap_or_default()
        )));
    }
    for id in &ids {
        if let Err(reason) = ids::check(&p.resource, id) {
            return Err(Reject::BadId {
                id: id.clone(),
                reason,
            });
        }
    }
    if ids.is_empty() {
        return Err(Reject::Idle(format!(
            "({}) finds no {} resource in it",
            mode_label(&p.mode),
            p.resource
        )));
    }
    Ok(())
}

fn mode_label(m: &Mode) -> String {
    match m {
        Mode::CloudTrail { events } => {
            let names: Vec<&str> = events
                .iter()
                .map(|e| e.short_name.as_deref().unwrap_or(&e.event))
                .collect();
            format!("cloudtrail {}", names.join(", "))
        }
        other => other.name().to_owned(),
    }
}

/// AWS Config's resource type for each natively run c7n type (c7n's
/// `resource_type.config_type`): a config-rule event about another type names none of the
/// policy's resources, although its `resourceId` resolves.
const CONFIG_TYPES: &[(&str, &str)] = &[("aws.s3", "AWS::S3::Bucket")];

fn config_resource_type(event: &Value) -> Option<String> {
    if let Some(t) = event
        .pointer("/detail/resourceType")
        .or_else(|| event.pointer("/detail/configurationItem/resourceType"))
        .and_then(Value::as_str)
    {
        return Some(t.to_owned());
    }
    let inv = event.get("invokingEvent")?;
    let parsed: Value = match inv {
        Value::String(s) => serde_json::from_str(s).ok()?,
        other => other.clone(),
    };
    parsed
        .pointer("/configurationItem/resourceType")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn config_type_matches(p: &Policy, event: &Value) -> bool {
    if p.mode != Mode::ConfigRule {
        return true;
    }
    let canonical = czero_policy::native(&p.resource).map_or(p.resource.as_str(), |s| s.names[0]);
    let Some((_, want)) = CONFIG_TYPES.iter().find(|(t, _)| *t == canonical) else {
        return true;
    };
    config_resource_type(event).is_none_or(|t| t == *want)
}

/// An id as it may be logged: control characters escaped, at most 200 characters.
fn printable(id: &str) -> String {
    let escaped: String = id.escape_debug().collect();
    match escaped.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &escaped[..i]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roles() -> Vec<RoleArn> {
        vec![RoleArn::parse("arn:aws:iam::123456789012:role/workers/czero-worker").unwrap()]
    }

    fn trail(identity: Value) -> Value {
        json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
               "detail": {"eventSource": "s3.amazonaws.com", "eventName": "PutBucketEncryption",
                          "userIdentity": identity}})
    }

    #[test]
    fn own_worker_by_session_issuer_or_session_arn() {
        let r = roles();
        let issuer = trail(json!({"type": "AssumedRole",
            "arn": "arn:aws:sts::123456789012:assumed-role/czero-worker/task-1",
            "sessionContext": {"sessionIssuer": {"type": "Role",
                "arn": "arn:aws:iam::123456789012:role/workers/czero-worker"}}}));
        assert_eq!(caused_by(&issuer, &r), Some(&r[0]));
        let session_only = trail(json!({"type": "AssumedRole",
            "arn": "arn:aws:sts::123456789012:assumed-role/czero-worker/task-1"}));
        assert_eq!(caused_by(&session_only, &r), Some(&r[0]));
        for (case, who) in [
            (
                "another role",
                json!({"arn": "arn:aws:sts::123456789012:assumed-role/Developer/alice",
                "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::123456789012:role/Developer"}}}),
            ),
            (
                "same role name, other account",
                json!({"arn": "arn:aws:sts::210987654321:assumed-role/czero-worker/x"}),
            ),
            (
                "an IAM user of that name",
                json!({"arn": "arn:aws:iam::123456789012:user/czero-worker"}),
            ),
            (
                "the path is not the name",
                json!({"arn": "arn:aws:sts::123456789012:assumed-role/workers/x"}),
            ),
            ("no identity", json!(null)),
        ] {
            assert_eq!(caused_by(&trail(who), &r), None, "{case}");
        }
        assert_eq!(caused_by(&issuer, &[]), None);
    }

    #[test]
    fn member_role_in_any_account() {
        let r = vec![RoleArn::parse("arn:aws:iam::*:role/czero-member").unwrap()];
        for who in [
            json!({"arn": "arn:aws:sts::210987654321:assumed-role/czero-member/czero-job-1",
                   "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::210987654321:role/czero-member"}}}),
            json!({"arn": "arn:aws:sts::111122223333:assumed-role/czero-member/czero-job-2"}),
        ] {
            assert_eq!(caused_by(&trail(who.clone()), &r), Some(&r[0]), "{who}");
        }
        for (case, who) in [
            (
                "another role",
                json!({"arn": "arn:aws:sts::210987654321:assumed-role/Admin/x",
                       "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::210987654321:role/Admin"}}}),
            ),
            (
                "a longer name",
                json!({"sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::210987654321:role/czero-member-2"}}}),
            ),
            (
                "another partition",
                json!({"arn": "arn:aws-cn:sts::210987654321:assumed-role/czero-member/x"}),
            ),
        ] {
            assert_eq!(caused_by(&trail(who), &r), None, "{case}");
        }
        assert!(RoleArn::parse("arn:aws:iam::*:user/x").is_err());
    }

    #[test]
    fn printable_escapes_and_bounds() {
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(printable(&"x".repeat(300)).len(), 203);
    }
}
