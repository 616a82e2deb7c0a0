//! Acting in the account and region an event came from.
//!
//! A job names the account and region of its resources ([`czero_job::Job::account`]). A
//! policy of an event mode runs there: through its `mode.member-role` when it names one
//! (c7n's `assume_member`, even in the worker's own account), else, for another account than
//! the worker's, through `MEMBER_ROLE_NAME` in that account. Nothing runs with the worker's
//! own credentials against another account's event: without a role that is a
//! non-retryable error naming the account. Scan modes (pull, periodic, schedule) run where
//! the worker is.
//!
//! [`Sessions`] calls STS AssumeRole once per (role, region) and keeps the credentials until
//! shortly before they expire; concurrent jobs for the same pair wait for one call. The
//! session name carries the job id that opened it (`czero-<job id>`), so a member account's
//! CloudTrail leads to the worker's log, where every job names the session it acted through.

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use czero_job::{Job, is_account_id, is_region};
use czero_policy::Policy;
use czero_policy::member_role;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Where one policy of a job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub account: String,
    pub region: String,
    /// The role to act through; `None`: the worker's own credentials.
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// The job's account or region is not one (a hand-made or corrupted job).
    #[error("job {job_id}: {what} `{value}` is not valid")]
    BadTarget {
        job_id: String,
        what: &'static str,
        value: String,
    },
    /// An event from another account, and no role to act there.
    #[error(
        "policy {policy}: the event is from account {account}, not this worker's ({own}), and neither `mode.member-role` nor MEMBER_ROLE_NAME names a role to act there; nothing ran"
    )]
    NoRole {
        policy: String,
        account: String,
        own: String,
    },
    /// STS refused or failed the AssumeRole call.
    #[error("cannot assume member role {role_arn} (account {account}, region {region}): {message}")]
    AssumeRole {
        role_arn: String,
        account: String,
        region: String,
        message: String,
        retryable: bool,
    },
}

impl MemberError {
    /// Only a throttled or failed STS call is worth retrying; a missing, untrusted or
    /// mistyped role stays so.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MemberError::AssumeRole {
                retryable: true,
                ..
            }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            MemberError::BadTarget { .. } => "BadTarget",
            MemberError::NoRole { .. } => "NoMemberRole",
            MemberError::AssumeRole { .. } => "MemberRole",
        }
    }
}

/// Decides where `policy` runs for `job`. `own_account` is the worker's account (when
/// known), `default_role` the `MEMBER_ROLE_NAME`, `own_region` the worker's region.
pub fn target(
    job: &Job,
    policy: &Policy,
    own_account: Option<&str>,
    default_role: Option<&str>,
    own_region: &str,
) -> Result<Target, MemberError> {
    let region = if job.region.is_empty() {
        own_region.to_owned()
    } else if is_region(&job.region) {
        job.region.clone()
    } else {
        return Err(MemberError::BadTarget {
            job_id: job.job_id.clone(),
            what: "region",
            value: job.region.clone(),
        });
    };
    let own = own_account.unwrap_or_default();
    if !policy.mode.is_event_mode() || job.account.is_empty() {
        return Ok(Target {
            account: own.to_owned(),
            region,
            role_arn: None,
        });
    }
    if !is_account_id(&job.account) {
        return Err(MemberError::BadTarget {
            job_id: job.job_id.clone(),
            what: "account",
            value: job.account.clone(),
        });
    }
    let account = job.account.clone();
    let role_arn = if let Some(t) = &policy.member_role {
        Some(member_role::expand(t, &account, &region))
    } else if own_account == Some(account.as_str()) {
        None
    } else if let Some(name) = default_role {
        Some(member_role::role_arn(&region, &account, name))
    } else if own_account.is_none() {
        // The worker's own account is unknown (GetCallerIdentity failed and AWS_ACCOUNT_ID
        // is unset) and no member role is configured: a single-account deployment.
        None
    } else {
        return Err(MemberError::NoRole {
            policy: policy.name.clone(),
            account,
            own: own.to_owned(),
        });
    };
    Ok(Target {
        account,
        region,
        role_arn,
    })
}

/// A member role's credentials for one region.
#[derive(Debug, Clone)]
pub struct Session {
    /// The worker's configuration with the role's credentials and the region.
    pub sdk: SdkConfig,
    pub role_arn: String,
    pub session_name: String,
    pub expires: SystemTime,
}

type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// Member-role sessions by (role, region), shared by every job of the worker.
#[derive(Debug, Clone)]
pub struct Sessions {
    sts: aws_sdk_sts::Client,
    base: SdkConfig,
    external_id: Option<String>,
    duration: Duration,
    slots: Arc<Mutex<HashMap<(String, String), Slot>>>,
    assumed: Arc<AtomicU64>,
}

/// Credentials are renewed this long before they expire, so no job starts with a session
/// that lapses under it.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(10 * 60);

/// How long a member session lasts (AssumeRole's default and every role's minimum maximum).
pub const SESSION_DURATION: Duration = Duration::from_secs(3600);

impl Sessions {
    pub fn new(base: &SdkConfig, external_id: Option<String>) -> Sessions {
        let conf = aws_sdk_sts::config::Builder::from(base)
            .retry_config(czero_engine::retry_config())
            .timeout_config(czero_engine::timeout_config())
            .build();
        Sessions {
            sts: aws_sdk_sts::Client::from_conf(conf),
            base: base.clone(),
            external_id,
            duration: SESSION_DURATION,
            slots: Arc::default(),
            assumed: Arc::default(),
        }
    }

    /// AssumeRole calls made so far (each one opened a session).
    pub fn assumed(&self) -> u64 {
        self.assumed.load(Ordering::Relaxed)
    }

    /// The session for `role_arn` in `region`: cached, or opened now by `job_id`.
    pub async fn get(
        &self,
        role_arn: &str,
        region: &str,
        job_id: &str,
    ) -> Result<Session, MemberError> {
        let slot = {
            let mut slots = match self.slots.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            slots
                .entry((role_arn.to_owned(), region.to_owned()))
                .or_default()
                .clone()
        };
        let mut held = slot.lock().await;
        if let Some(s) = held.as_ref()
            && s.expires > SystemTime::now() + REFRESH_BEFORE
        {
            return Ok(s.clone());
        }
        let session = self.assume(role_arn, region, job_id).await?;
        *held = Some(session.clone());
        Ok(session)
    }

    async fn assume(
        &self,
        role_arn: &str,
        region: &str,
        job_id: &str,
    ) -> Result<Session, MemberError> {
        let account = member_role::role_account(role_arn)
            .unwrap_or_default()
            .to_owned();
        let session_name = session_name(job_id);
        let fail = |message: String, retryable: bool| MemberError::AssumeRole {
            role_arn: role_arn.to_owned(),
            account: account.clone(),
            region: region.to_owned(),
            message,
            retryable,
        };
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(&session_name)
            .set_external_id(self.external_id.clone())
            .duration_seconds(self.duration.as_secs() as i32)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or_default().to_owned();
                let retryable = match &e {
                    aws_sdk_sts::error::SdkError::ServiceError(s) => {
                        s.raw().status().is_server_error()
                            || code.contains("Throttl")
                            || code == "RequestLimitExceeded"
                    }
                    // Timeouts, connection failures: the call may work next time.
                    _ => true,
                };
                fail(format!("{}", DisplayErrorContext(&e)), retryable)
            })?;
        self.assumed.fetch_add(1, Ordering::Relaxed);
        let c = out
            .credentials()
            .ok_or_else(|| fail("STS returned no credentials".into(), true))?;
        let expires = SystemTime::try_from(*c.expiration())
            .unwrap_or_else(|_| SystemTime::now() + self.duration);
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            Some(expires),
            "czero-member-role",
        );
        let sdk = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        tracing::info!(
            role_arn,
            account = %account,
            region,
            session_name = %session_name,
            job_id,
            "assumed member role"
        );
        Ok(Session {
            sdk,
            role_arn: role_arn.to_owned(),
            session_name,
            expires,
        })
    }
}

/// `czero-<job id>`, in the characters and length STS allows (`[\w+=,.@-]`, 2–64).
pub fn session_name(job_id: &str) -> String {
    let id: String = job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = format!("czero-{id}");
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use czero_job::{FindingUpdate, JOB_VERSION};

    fn job(account: &str, region: &str) -> Job {
        Job {
            version: JOB_VERSION,
            job_id: "j-1".into(),
            event_id: "e".into(),
            source: "aws.s3".into(),
            detail_type: "AWS API Call via CloudTrail".into(),
            account: account.into(),
            region: region.into(),
            resource_ids: vec![],
            policies: vec![],
            received_at: chrono_now(),
            trace_id: None,
            event: serde_json::json!({}),
            update_finding: FindingUpdate::Off,
        }
    }

    fn chrono_now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(0, 0).unwrap_or_default()
    }

    fn policy(yaml: &str) -> Policy {
        czero_policy::parse_str("p.yml", yaml)
            .unwrap()
            .policies
            .remove(0)
    }

    const EVENT: &str = "policies:\n  - name: p\n    resource: aws.s3\n    mode: {type: cloudtrail, events: [CreateBucket]}\n";
    const WITH_ROLE: &str = "policies:\n  - name: p\n    resource: aws.s3\n    mode:\n      type: cloudtrail\n      events: [CreateBucket]\n      member-role: 'arn:aws:iam::{account_id}:role/{region}-fixer'\n";
    const PULL: &str = "policies:\n  - name: p\n    resource: aws.s3\n";
    const OWN: &str = "111111111111";
    const MEMBER: &str = "222222222222";

    #[test]
    fn own_account_runs_with_own_credentials() {
        let t = target(
            &job(OWN, "eu-west-1"),
            &policy(EVENT),
            Some(OWN),
            Some("m"),
            "us-east-1",
        )
        .unwrap();
        assert_eq!(t.role_arn, None);
        assert_eq!(t.region, "eu-west-1");
    }

    #[test]
    fn member_account_uses_the_default_role_in_its_partition() {
        let t = target(
            &job(MEMBER, "us-gov-west-1"),
            &policy(EVENT),
            Some(OWN),
            Some("czero-member"),
            "us-east-1",
        )
        .unwrap();
        assert_eq!(
            t.role_arn.as_deref(),
            Some("arn:aws-us-gov:iam::222222222222:role/czero-member")
        );
        assert_eq!(t.account, MEMBER);
    }

    #[test]
    fn the_policy_role_wins_even_in_the_own_account() {
        for account in [OWN, MEMBER] {
            let t = target(
                &job(account, "eu-west-1"),
                &policy(WITH_ROLE),
                Some(OWN),
                Some("czero-member"),
                "us-east-1",
            )
            .unwrap();
            assert_eq!(
                t.role_arn,
                Some(format!("arn:aws:iam::{account}:role/eu-west-1-fixer"))
            );
        }
    }

    #[test]
    fn member_account_without_a_role_is_refused() {
        let e = target(
            &job(MEMBER, "us-east-1"),
            &policy(EVENT),
            Some(OWN),
            None,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.kind(), "NoMemberRole");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains(MEMBER), "{e}");
    }

    #[test]
    fn scans_run_where_the_worker_is() {
        let t = target(
            &job(MEMBER, "eu-west-1"),
            &policy(PULL),
            Some(OWN),
            None,
            "us-east-1",
        )
        .unwrap();
        assert_eq!(t.role_arn, None);
        assert_eq!(t.account, OWN);
    }

    #[test]
    fn bad_accounts_and_regions_are_refused() {
        for (a, r) in [
            ("12", "us-east-1"),
            (MEMBER, "../etc"),
            ("x".repeat(12).as_str(), "us-east-1"),
        ] {
            let e = target(
                &job(a, r),
                &policy(EVENT),
                Some(OWN),
                Some("m"),
                "us-east-1",
            )
            .unwrap_err();
            assert_eq!(e.kind(), "BadTarget", "{a} {r}");
        }
    }

    #[test]
    fn session_names_fit_sts() {
        assert_eq!(session_name("abc"), "czero-abc");
        assert_eq!(session_name("a/b c"), "czero-a-b-c");
        let long = session_name(&"f".repeat(100));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("czero-"));
    }
}
