//! The Lambda's configuration, read once at cold start from the spec's environment variables.

use czero_job::is_safe_policy_key;

pub const SQS_QUEUE_URL: &str = "SQS_QUEUE_URL";
pub const POLICY_BUCKET: &str = "POLICY_BUCKET";
pub const POLICY_MAPPING_KEY: &str = "POLICY_MAPPING_KEY";
pub const DEFAULT_POLICY_KEY: &str = "DEFAULT_POLICY_KEY";
pub const CLAIM_CHECK_BUCKET: &str = "CLAIM_CHECK_BUCKET";
pub const WAKE_CLUSTER: &str = "WAKE_CLUSTER";
pub const WAKE_SERVICE: &str = "WAKE_SERVICE";
pub const EXCLUDE_PRINCIPAL_ARNS: &str = "EXCLUDE_PRINCIPAL_ARNS";

/// The spec's defaults for the two optional keys.
pub const DEFAULT_MAPPING_KEY: &str = "config/policy-mappings.json";
pub const DEFAULT_DEFAULT_POLICY: &str = "policies/s3-createbucket.yml";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
}

/// Where to raise a service at 0 after queueing (BRIEF §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wake {
    pub cluster: String,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub queue_url: String,
    pub policy_bucket: String,
    pub mapping_key: String,
    pub default_policy_key: String,
    /// Bucket for jobs too large for one message; the policy bucket unless set.
    pub claim_check_bucket: String,
    pub wake: Option<Wake>,
    /// Roles whose own API calls must not trigger jobs (the worker's: its remediations come
    /// back as CloudTrail events).
    pub exclude_principals: Vec<RoleArn>,
}

/// An IAM role ARN, `arn:<partition>:iam::<account>:role/<path/>name`, with the parts a
/// session of it is recognised by (`arn:<partition>:sts::<account>:assumed-role/name/...`
/// drops the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub arn: String,
    pub partition: String,
    pub account: String,
    pub name: String,
}

impl RoleArn {
    /// Also takes `*` for the account (`arn:aws:iam::*:role/NAME`): that role in every
    /// account, for the member roles jobs act through in other accounts.
    pub fn parse(s: &str) -> Result<RoleArn, String> {
        let any_account = s.split(':').nth(4) == Some("*");
        let concrete = if any_account {
            s.replacen(":*:", ":000000000000:", 1)
        } else {
            s.to_owned()
        };
        let a = crate::ids::arn(&concrete)?;
        let path = a
            .resource
            .strip_prefix("role/")
            .filter(|_| a.service == "iam")
            .ok_or("expected an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")?;
        if a.account.len() != 12 {
            return Err("expected a 12-digit account id".into());
        }
        let name = path.rsplit('/').next().unwrap_or_default();
        if name.is_empty() {
            return Err("the role ARN names no role".into());
        }
        Ok(RoleArn {
            arn: s.to_owned(),
            partition: a.partition.to_owned(),
            account: if any_account {
                "*".to_owned()
            } else {
                a.account.to_owned()
            },
            name: name.to_owned(),
        })
    }

    /// Whether `arn` is this role (in any account, for `*`).
    pub fn is(&self, arn: &str) -> bool {
        if self.account != "*" {
            return self.arn == arn;
        }
        let role_part = |s: &str| s.split_once(":role/").map(|(_, r)| r.to_owned());
        let Ok(other) = RoleArn::parse(arn) else {
            return false;
        };
        other.account != "*"
            && other.partition == self.partition
            && role_part(arn).is_some()
            && role_part(arn) == role_part(&self.arn)
    }

    /// Whether a session of `account` (whose ARN drops the role's path) is of this role.
    pub fn has_session(&self, partition: &str, account: &str, name: &str) -> bool {
        self.name == name
            && self.partition == partition
            && (self.account == "*" || self.account == account)
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads through `get` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let queue_url = get(SQS_QUEUE_URL).ok_or(ConfigError::Missing(SQS_QUEUE_URL))?;
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://"))
            || queue_url.contains(char::is_whitespace)
        {
            return Err(invalid(
                SQS_QUEUE_URL,
                &queue_url,
                "expected an http(s) queue URL",
            ));
        }
        let policy_bucket = get(POLICY_BUCKET).ok_or(ConfigError::Missing(POLICY_BUCKET))?;
        check_bucket(POLICY_BUCKET, &policy_bucket)?;
        let mapping_key = get(POLICY_MAPPING_KEY).unwrap_or_else(|| DEFAULT_MAPPING_KEY.into());
        if mapping_key.starts_with('/') || mapping_key.split('/').any(|s| s == ".." || s.is_empty())
        {
            return Err(invalid(
                POLICY_MAPPING_KEY,
                &mapping_key,
                "expected a plain S3 key without `..`, empty segments or a leading slash",
            ));
        }
        let default_policy_key =
            get(DEFAULT_POLICY_KEY).unwrap_or_else(|| DEFAULT_DEFAULT_POLICY.into());
        if !is_safe_policy_key(&default_policy_key) {
            return Err(invalid(
                DEFAULT_POLICY_KEY,
                &default_policy_key,
                "expected a key under `policies/` without `..`",
            ));
        }
        let claim_check_bucket = match get(CLAIM_CHECK_BUCKET) {
            Some(b) => {
                check_bucket(CLAIM_CHECK_BUCKET, &b)?;
                b
            }
            None => policy_bucket.clone(),
        };
        let wake = match (get(WAKE_CLUSTER), get(WAKE_SERVICE)) {
            (Some(cluster), Some(service)) => Some(Wake { cluster, service }),
            (None, None) => None,
            (Some(c), None) => {
                return Err(invalid(
                    WAKE_CLUSTER,
                    &c,
                    "WAKE_SERVICE must be set with it",
                ));
            }
            (None, Some(s)) => {
                return Err(invalid(
                    WAKE_SERVICE,
                    &s,
                    "WAKE_CLUSTER must be set with it",
                ));
            }
        };
        let mut exclude_principals = Vec::new();
        for arn in get(EXCLUDE_PRINCIPAL_ARNS)
            .iter()
            .flat_map(|v| v.split(','))
        {
            let arn = arn.trim();
            if arn.is_empty() {
                continue;
            }
            let role = RoleArn::parse(arn).map_err(|e| invalid(EXCLUDE_PRINCIPAL_ARNS, arn, &e))?;
            exclude_principals.push(role);
        }
        Ok(Config {
            queue_url,
            policy_bucket,
            mapping_key,
            default_policy_key,
            claim_check_bucket,
            wake,
            exclude_principals,
        })
    }
}

fn invalid(var: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.into(),
        reason: reason.into(),
    }
}

/// S3 bucket naming rules (the subset that catches typos: length and characters).
fn check_bucket(var: &'static str, b: &str) -> Result<(), ConfigError> {
    let ok_chars = b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&b.len()) && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(invalid(
            var,
            b,
            "expected an S3 bucket name (3-63 lowercase letters, digits, `-` or `.`)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        (
            SQS_QUEUE_URL,
            "https://sqs.us-east-1.amazonaws.com/123456789012/czero-jobs",
        ),
        (POLICY_BUCKET, "czero-policies"),
    ];

    #[test]
    fn defaults_follow_the_spec() {
        let c = cfg(&BASE).unwrap();
        assert_eq!(c.mapping_key, "config/policy-mappings.json");
        assert_eq!(c.default_policy_key, "policies/s3-createbucket.yml");
        assert_eq!(c.claim_check_bucket, "czero-policies");
        assert_eq!(c.wake, None);
    }

    #[test]
    fn each_bad_variable_is_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], SQS_QUEUE_URL),
            (&[(SQS_QUEUE_URL, "not a url")], SQS_QUEUE_URL),
            (&[(SQS_QUEUE_URL, "https://q")], POLICY_BUCKET),
            (
                &[(SQS_QUEUE_URL, "https://q"), (POLICY_BUCKET, "Bad_Bucket")],
                POLICY_BUCKET,
            ),
            (
                &[BASE[0], BASE[1], (DEFAULT_POLICY_KEY, "config/x.yml")],
                DEFAULT_POLICY_KEY,
            ),
            (
                &[BASE[0], BASE[1], (DEFAULT_POLICY_KEY, "policies/../x.yml")],
                DEFAULT_POLICY_KEY,
            ),
            (
                &[BASE[0], BASE[1], (POLICY_MAPPING_KEY, "../m.json")],
                POLICY_MAPPING_KEY,
            ),
            (&[BASE[0], BASE[1], (WAKE_CLUSTER, "c")], WAKE_CLUSTER),
            (&[BASE[0], BASE[1], (WAKE_SERVICE, "s")], WAKE_SERVICE),
            (
                &[BASE[0], BASE[1], (CLAIM_CHECK_BUCKET, "x")],
                CLAIM_CHECK_BUCKET,
            ),
            (
                &[BASE[0], BASE[1], (EXCLUDE_PRINCIPAL_ARNS, "czero-worker")],
                EXCLUDE_PRINCIPAL_ARNS,
            ),
            (
                &[
                    BASE[0],
                    BASE[1],
                    (
                        EXCLUDE_PRINCIPAL_ARNS,
                        "arn:aws:sts::123456789012:assumed-role/czero-worker/s",
                    ),
                ],
                EXCLUDE_PRINCIPAL_ARNS,
            ),
            (
                &[
                    BASE[0],
                    BASE[1],
                    (EXCLUDE_PRINCIPAL_ARNS, "arn:aws:iam::123:role/czero-worker"),
                ],
                EXCLUDE_PRINCIPAL_ARNS,
            ),
        ];
        for (pairs, var) in cases {
            let err = cfg(pairs).unwrap_err();
            assert!(err.to_string().contains(var), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn excluded_principals_are_role_arns_separated_by_commas() {
        let c = cfg(&[
            BASE[0],
            BASE[1],
            (
                EXCLUDE_PRINCIPAL_ARNS,
                " arn:aws:iam::123456789012:role/czero-worker ,,\
                 arn:aws-us-gov:iam::210987654321:role/service-role/ops/remediator",
            ),
        ])
        .unwrap();
        let got: Vec<(&str, &str, &str)> = c
            .exclude_principals
            .iter()
            .map(|r| (r.partition.as_str(), r.account.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("aws", "123456789012", "czero-worker"),
                ("aws-us-gov", "210987654321", "remediator")
            ]
        );
        assert_eq!(
            c.exclude_principals[1].arn,
            "arn:aws-us-gov:iam::210987654321:role/service-role/ops/remediator"
        );
        assert!(cfg(&BASE).unwrap().exclude_principals.is_empty());
    }

    #[test]
    fn wake_needs_both() {
        let c = cfg(&[
            BASE[0],
            BASE[1],
            (WAKE_CLUSTER, "czero"),
            (WAKE_SERVICE, "worker"),
        ])
        .unwrap();
        assert_eq!(
            c.wake,
            Some(Wake {
                cluster: "czero".into(),
                service: "worker".into()
            })
        );
    }
}
