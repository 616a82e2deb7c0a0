//! IAM for the tests: identities on the emulator (an administrator, sessions of the roles
//! Terraform created) with moto's IAM enforcement switched on, EventBridge's
//! TestEventPattern, and an evaluator that decides a policy document the way IAM does for
//! the parts our documents use (Allow/Deny, `*` and `?` wildcards in actions and
//! resources, `aws:PrincipalArn` string conditions).
//!
//! The emulator calls go through `integration/moto/aws.py` (boto3): the workspace has no
//! Rust SDK for IAM, STS or EventBridge.

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Credentials of one identity, as environment variables give them to a process.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Identity {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (empty when the
    /// identity has none, which the SDKs read as absent, so an inherited token cannot leak in).
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with_prefix("")
    }

    /// The same variables with a prefix (`CZERO_TASK_` for `czero local`'s tasks).
    pub fn env_with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (
                format!("{prefix}AWS_ACCESS_KEY_ID"),
                self.access_key_id.clone(),
            ),
            (
                format!("{prefix}AWS_SECRET_ACCESS_KEY"),
                self.secret_access_key.clone(),
            ),
            (
                format!("{prefix}AWS_SESSION_TOKEN"),
                self.session_token.clone().unwrap_or_default(),
            ),
        ]
    }

    pub fn sdk_credentials(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "czero-test",
        )
    }
}

/// An administrator and a session of each role asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct Identities {
    pub admin: Identity,
    pub roles: BTreeMap<String, Identity>,
}

impl Identities {
    pub fn role(&self, arn: &str) -> Result<&Identity> {
        self.roles
            .get(arn)
            .ok_or_else(|| anyhow!("no session for role {arn}"))
    }
}

fn script() -> std::path::PathBuf {
    czero_testkit::project_root().join("integration/moto/aws.py")
}

fn run_script(args: &[&str], stdin: &str) -> Result<String> {
    let python = czero_testkit::python()?;
    let mut child = Command::new(&python)
        .arg(script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} {}", python.display(), script().display()))?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "aws.py {} failed: {}",
        args.first().copied().unwrap_or(""),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates an administrator, assumes each role, and (with `enforce`) switches moto's IAM
/// enforcement on. Must run before enforcement: it signs with moto's test credentials.
pub fn identities(endpoint: &str, enforce: bool, roles: &[&str]) -> Result<Identities> {
    let mut args = vec!["identities", endpoint];
    if enforce {
        args.push("--enforce");
    }
    args.extend_from_slice(roles);
    let out = run_script(&args, "")?;
    serde_json::from_str(&out).with_context(|| format!("aws.py identities printed {out}"))
}

/// Whether the deployed rule `rule` matches each event (EventBridge TestEventPattern).
pub fn test_event_pattern(
    endpoint: &str,
    caller: &Identity,
    rule: &str,
    events: &[Value],
) -> Result<Vec<bool>> {
    let out = run_script(
        &[
            "test-event-pattern",
            endpoint,
            &caller.access_key_id,
            &caller.secret_access_key,
            rule,
        ],
        &serde_json::to_string(events)?,
    )?;
    serde_json::from_str(&out).with_context(|| format!("aws.py test-event-pattern printed {out}"))
}

// ---------------------------------------------------------------------------------------
// Policy evaluation
// ---------------------------------------------------------------------------------------

/// What IAM decides for one request against one policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement matches and no Deny does.
    Allow,
    /// A Deny statement matches.
    Deny,
    /// Nothing matches: denied unless another policy allows it.
    NotAllowed,
}

/// IAM's wildcard match: `*` any run of characters (`/` included), `?` one character.
pub fn glob(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // Iterative match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Does the statement's condition hold for a request by `principal`? Only the operators our
/// documents use are understood; anything else is an error, never silently "true".
fn condition_holds(condition: &Value, principal: Option<&str>) -> Result<bool> {
    let Some(ops) = condition.as_object() else {
        return Ok(true);
    };
    for (op, keys) in ops {
        for (key, values) in keys.as_object().into_iter().flatten() {
            ensure!(
                key.eq_ignore_ascii_case("aws:PrincipalArn"),
                "condition key {key} is not understood by this evaluator"
            );
            let principal =
                principal.ok_or_else(|| anyhow!("condition on {key} needs a principal"))?;
            let values = strings(values);
            let any_like = values.iter().any(|v| glob(v, principal));
            let any_equal = values.iter().any(|v| v == principal);
            let holds = match op.as_str() {
                "StringLike" | "ArnLike" => any_like,
                "StringNotLike" | "ArnNotLike" => !any_like,
                "StringEquals" | "ArnEquals" => any_equal,
                "StringNotEquals" | "ArnNotEquals" => !any_equal,
                other => bail!("condition operator {other} is not understood by this evaluator"),
            };
            if !holds {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![&doc["Statement"]],
        _ => Vec::new(),
    }
}

/// Decides `action` on `resource` by `principal` (for resource policies and conditions)
/// against one document. `NotAction`/`NotResource`/`NotPrincipal` are refused: our
/// documents do not use them.
pub fn decide(
    doc: &Value,
    action: &str,
    resource: &str,
    principal: Option<&str>,
) -> Result<Decision> {
    let mut allowed = false;
    for st in statements(doc) {
        for not in ["NotAction", "NotResource", "NotPrincipal"] {
            ensure!(
                st.get(not).is_none(),
                "{not} is not understood by this evaluator"
            );
        }
        let actions = strings(&st["Action"]);
        if !actions
            .iter()
            .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
        {
            continue;
        }
        if !strings(&st["Resource"]).iter().any(|r| glob(r, resource)) {
            continue;
        }
        if let Some(p) = st.get("Principal") {
            let listed: Vec<String> = match p {
                Value::String(s) => vec![s.clone()],
                Value::Object(m) => m.values().flat_map(strings).collect(),
                _ => Vec::new(),
            };
            let matches = listed
                .iter()
                .any(|l| l == "*" || principal.is_some_and(|pr| l == pr));
            if !matches {
                continue;
            }
        }
        if let Some(c) = st.get("Condition")
            && !condition_holds(c, principal)?
        {
            continue;
        }
        match st["Effect"].as_str() {
            Some("Deny") => return Ok(Decision::Deny),
            Some("Allow") => allowed = true,
            other => bail!("statement with Effect {other:?}"),
        }
    }
    Ok(if allowed {
        Decision::Allow
    } else {
        Decision::NotAllowed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob("arn:aws:s3:::*", "arn:aws:s3:::custodian-output-1"));
        assert!(glob("arn:aws:s3:::*", "arn:aws:s3:::b/key/with/slashes"));
        assert!(glob(
            "arn:aws:s3:::b/policies/*",
            "arn:aws:s3:::b/policies/x.yml"
        ));
        assert!(!glob(
            "arn:aws:s3:::b/policies/*",
            "arn:aws:s3:::b/config/x"
        ));
        assert!(glob("s3:Put*", "s3:PutObject"));
        assert!(glob("arn:aws:s3:::b?", "arn:aws:s3:::b1"));
        assert!(!glob("arn:aws:s3:::b?", "arn:aws:s3:::b"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acd"));
    }

    /// The evaluator is what the protected-bucket test leans on: it must see that
    /// `arn:aws:s3:::*` reaches a module bucket when nothing denies it.
    #[test]
    fn a_bucket_wildcard_allows_unless_a_deny_names_the_bucket() -> Result<()> {
        let allow = json!({"Effect": "Allow", "Action": ["s3:PutBucketPolicy"], "Resource": "arn:aws:s3:::*"});
        let deny = json!({"Effect": "Deny", "Action": ["s3:PutBucketPolicy"], "Resource": ["arn:aws:s3:::out", "arn:aws:s3:::out/*"]});
        let open = json!({"Statement": [allow.clone()]});
        let closed = json!({"Statement": [allow, deny]});
        assert_eq!(
            decide(&open, "s3:PutBucketPolicy", "arn:aws:s3:::out", None)?,
            Decision::Allow
        );
        assert_eq!(
            decide(&closed, "s3:PutBucketPolicy", "arn:aws:s3:::out", None)?,
            Decision::Deny
        );
        assert_eq!(
            decide(&closed, "s3:PutBucketPolicy", "arn:aws:s3:::other", None)?,
            Decision::Allow
        );
        assert_eq!(
            decide(&closed, "s3:GetObject", "arn:aws:s3:::out/x", None)?,
            Decision::NotAllowed
        );
        Ok(())
    }

    #[test]
    fn principal_conditions_decide_queue_policies() -> Result<()> {
        let doc = json!({"Statement": [{
            "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sqs:SendMessage",
            "Resource": "arn:aws:sqs:us-east-1:1:q",
            "Condition": {"StringNotLike": {"aws:PrincipalArn": ["arn:aws:iam::1:role/invoker", "arn:aws:iam::1:root"]}}
        }]});
        let q = "arn:aws:sqs:us-east-1:1:q";
        assert_eq!(
            decide(
                &doc,
                "sqs:SendMessage",
                q,
                Some("arn:aws:iam::1:role/other")
            )?,
            Decision::Deny
        );
        assert_eq!(
            decide(
                &doc,
                "sqs:SendMessage",
                q,
                Some("arn:aws:iam::1:role/invoker")
            )?,
            Decision::NotAllowed
        );
        assert_eq!(
            decide(
                &doc,
                "sqs:ReceiveMessage",
                q,
                Some("arn:aws:iam::1:role/other")
            )?,
            Decision::NotAllowed
        );
        let unknown = json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(decide(&unknown, "s3:GetObject", "arn:aws:s3:::b/k", None).is_err());
        Ok(())
    }
}
