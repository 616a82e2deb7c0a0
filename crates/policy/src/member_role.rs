//! Member roles: the IAM role a job acts through in the account an event came from.
//!
//! c7n's `mode.member-role` is a template, `arn:aws:iam::{account_id}:role/NAME`, filled in
//! from the event (`LambdaMode.assume_member`: `member_role.format(account_id=...)`). We
//! accept `{region}` too. A deployment-wide default (a role *name*) becomes the same ARN
//! through [`role_arn`].

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 2] = ["{account_id}", "{region}"];

/// Checks a `member-role` template: once `{account_id}` and `{region}` are filled in, an
/// IAM role ARN; no other `{…}`. `Err` says what is wrong, to follow "`member-role` ".
pub fn check_template(template: &str) -> Result<(), String> {
    let filled = expand(template, "123456789012", "us-east-1");
    if let Some(i) = filled.find(['{', '}']) {
        let rest = &filled[i..];
        let end = rest.find('}').map_or(rest.len(), |e| e + 1);
        return Err(format!(
            "uses `{}`; only {} can be filled in",
            &rest[..end],
            PLACEHOLDERS.join(" and ")
        ));
    }
    if !is_role_arn(&filled) {
        return Err(format!(
            "`{template}` is not an IAM role ARN (arn:aws:iam::{{account_id}}:role/NAME)"
        ));
    }
    Ok(())
}

/// Fills in `{account_id}` and `{region}`.
pub fn expand(template: &str, account_id: &str, region: &str) -> String {
    template
        .replace("{account_id}", account_id)
        .replace("{region}", region)
}

/// The partition a region belongs to (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `arn:<partition>:iam::<account>:role/<name>` (`name` may carry a path: `a/b/NAME`).
pub fn role_arn(region: &str, account_id: &str, name: &str) -> String {
    format!(
        "arn:{}:iam::{account_id}:role/{}",
        partition(region),
        name.trim_start_matches('/')
    )
}

/// `true` for `arn:<partition>:iam::<12 digits>:role/<path/>name`, the characters IAM
/// allows in role names and paths.
pub fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") && !partition.starts_with("aws-iso") {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, name)) = rest.split_once(":role/") else {
        return false;
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.len() <= 576
        && name
            .split('/')
            .all(|seg| !seg.is_empty() && seg.chars().all(ok_char))
        && name.rsplit('/').next().is_some_and(|n| n.len() <= 64)
}

/// The account id in a role ARN.
pub fn role_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn templates() {
        for ok in [
            "arn:aws:iam::{account_id}:role/custodian-member",
            "arn:aws:iam::{account_id}:role/security/{region}-remediation",
            "arn:aws-us-gov:iam::{account_id}:role/x",
            "arn:aws:iam::123456789012:role/fixed",
        ] {
            assert_eq!(check_template(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("arn:aws:iam::{account}:role/x", "uses `{account}`"),
            ("arn:aws:iam::{account_id}:role/{name}", "uses `{name}`"),
            ("arn:aws:iam::{account_id}:user/x", "not an IAM role ARN"),
            ("custodian-member", "not an IAM role ARN"),
            ("arn:aws:iam::{account_id}:role/", "not an IAM role ARN"),
            ("arn:aws:iam::{account_id}:role/a b", "not an IAM role ARN"),
            ("arn:aws:sts::{account_id}:role/x", "not an IAM role ARN"),
        ] {
            let e = check_template(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn arns_follow_the_region_partition() {
        assert_eq!(
            role_arn("us-east-1", "111122223333", "m"),
            "arn:aws:iam::111122223333:role/m"
        );
        assert_eq!(
            role_arn("cn-north-1", "111122223333", "/ops/m"),
            "arn:aws-cn:iam::111122223333:role/ops/m"
        );
        assert_eq!(
            role_arn("us-gov-west-1", "111122223333", "m"),
            "arn:aws-us-gov:iam::111122223333:role/m"
        );
        assert_eq!(
            role_account("arn:aws:iam::111122223333:role/m"),
            Some("111122223333")
        );
    }

    proptest! {
        /// Any valid account and role name give a role ARN that checks out and names
        /// that account.
        #[test]
        fn built_arns_are_role_arns(account in "[0-9]{12}", name in "[A-Za-z0-9_+=,.@-]{1,64}",
                                    region in prop::sample::select(vec!["us-east-1", "cn-north-1", "us-gov-east-1"])) {
            let arn = role_arn(region, &account, &name);
            prop_assert!(is_role_arn(&arn), "{}", arn);
            prop_assert_eq!(role_account(&arn), Some(account.as_str()));
            prop_assert_eq!(expand("arn:aws:iam::{account_id}:role/x", &account, region),
                            format!("arn:aws:iam::{account}:role/x"));
        }
    }
}
