//! Could AWS have named a resource this? Ids come from the event, which anyone able to call
//! an API (or to put an event on the bus) shapes, so the invoker checks each resolved id
//! against the naming rules of its resource type before a job wakes the service: a bucket
//! named `../../etc/passwd` is not a bucket, and no worker should be started to find out.

/// Longest id accepted for a type without its own rules: far beyond any AWS resource name
/// or id (ARNs are at most 2048 characters), short enough to refuse padding.
pub const MAX_GENERIC_ID: usize = 1024;
/// IAM's documented ARN limit.
pub const MAX_ARN: usize = 2048;

/// Checks `id` for a resource of c7n type `resource` (`aws.s3`, `s3`, `aws.ec2`, ...).
/// `aws.s3` ids are bucket names (or `arn:aws:s3:::NAME`, which the engine reduces to
/// NAME); other ids are ARNs when they start with `arn:`, else checked by the generic rule.
pub fn check(resource: &str, id: &str) -> Result<(), String> {
    let canonical = czero_policy::native(resource).map(|s| s.names[0]);
    if canonical == Some("aws.s3") {
        let name = id.strip_prefix("arn:aws:s3:::").unwrap_or(id);
        return bucket_name(name);
    }
    if id.starts_with("arn:") {
        return arn(id).map(|_| ());
    }
    generic(id)
}

/// AWS's rules for general purpose bucket names: 3-63 characters of lowercase letters,
/// digits, `.` and `-`, starting and ending with a letter or digit, no `..`, not an IPv4
/// address, and none of the prefixes and suffixes S3 reserves. (Legacy us-east-1 names from
/// before March 2018 may break these rules; such buckets cannot be created today.)
pub fn bucket_name(name: &str) -> Result<(), String> {
    const PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    let n = name.len();
    if !(3..=63).contains(&n) {
        return Err(format!("a bucket name has 3 to 63 characters, not {n}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "a bucket name has only lowercase letters, digits, `.` and `-`, not {c:?}"
        ));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !name.starts_with(alnum) || !name.ends_with(alnum) {
        return Err("a bucket name starts and ends with a letter or digit".into());
    }
    if name.contains("..") {
        return Err("a bucket name has no two adjacent periods".into());
    }
    // Formatted as an IPv4 address: four dot-separated groups of digits (S3 refuses
    // `999.1.1.1` too, not only addresses that parse).
    let groups: Vec<&str> = name.split('.').collect();
    if groups.len() == 4
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err("a bucket name is not an IP address".into());
    }
    if let Some(p) = PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Err(format!("the prefix `{p}` is reserved by S3"));
    }
    if let Some(s) = SUFFIXES.iter().find(|s| name.ends_with(*s)) {
        return Err(format!("the suffix `{s}` is reserved by S3"));
    }
    Ok(())
}

/// An ARN's six parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` with each part in its own
/// alphabet: partition `aws` or `aws-*`, service of lowercase letters, digits and `-`,
/// region empty or like `us-gov-west-1`, account empty, 12 digits or `aws` (AWS-managed
/// IAM policies), resource of printable ASCII without quotes, backslashes, angle or curly
/// brackets and with no `..` path segment.
pub fn arn(s: &str) -> Result<Arn<'_>, String> {
    if s.len() > MAX_ARN {
        return Err(format!("an ARN has at most {MAX_ARN} characters"));
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return Err("an ARN has six `:`-separated parts".into());
    };
    if arn != "arn" {
        return Err("an ARN starts with `arn:`".into());
    }
    let lower_digits = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let partition_ok = partition == "aws"
        || partition
            .strip_prefix("aws-")
            .is_some_and(|r| lower_digits(r) && !r.starts_with('-') && !r.ends_with('-'));
    if !partition_ok {
        return Err(format!("`{partition}` is not an AWS partition"));
    }
    if !(lower_digits(service) && service.len() <= 64) {
        return Err(format!("`{service}` is not an AWS service name"));
    }
    if !(region.is_empty() || is_region(region)) {
        return Err(format!("`{region}` is not an AWS region"));
    }
    let account_ok = account.is_empty()
        || account == "aws"
        || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()));
    if !account_ok {
        return Err(format!("`{account}` is not an AWS account id"));
    }
    if resource.is_empty() {
        return Err("an ARN names a resource".into());
    }
    if let Some(c) = resource
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '"' | '\\' | '<' | '>' | '{' | '}' | '`'))
    {
        return Err(format!("an ARN's resource has no {c:?}"));
    }
    if traverses(resource) {
        return Err("an ARN's resource has no `..` path segment".into());
    }
    Ok(Arn {
        partition,
        service,
        region,
        account,
        resource,
    })
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-3`, `eusc-de-east-1`.
fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    let n = parts.len();
    n >= 3
        && r.len() <= 32
        && parts[..n - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && !parts[n - 1].is_empty()
        && parts[n - 1].len() <= 2
        && parts[n - 1].chars().all(|c| c.is_ascii_digit())
}

/// The rule for types without their own: 1 to [`MAX_GENERIC_ID`] characters, no control
/// characters and no `..` path segment.
pub fn generic(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("an id is not empty".into());
    }
    let n = id.chars().count();
    if n > MAX_GENERIC_ID {
        return Err(format!(
            "an id has at most {MAX_GENERIC_ID} characters, not {n}"
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!("an id has no control character ({c:?})"));
    }
    if traverses(id) {
        return Err("an id has no `..` path segment".into());
    }
    Ok(())
}

/// A `..` segment between `/` or `\` separators (or at either end).
fn traverses(s: &str) -> bool {
    s.split(['/', '\\']).any(|seg| seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_as_aws_documents_them() {
        for ok in [
            "docexamplebucket1",
            "log-delivery-march-2020",
            "my-hosted-content",
            "docexamplewebsite.com",
            "www.docexamplewebsite.com",
            "my.example.s3.bucket",
            "abc",
            "a-b",
            "1.2.3",
            &"a".repeat(63),
        ] {
            assert_eq!(bucket_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("doc_example_bucket", "not '_'"),
            ("DocExampleBucket", "not 'D'"),
            ("doc-example-bucket-", "starts and ends"),
            ("-doc", "starts and ends"),
            ("ab", "3 to 63"),
            (&"a".repeat(64), "3 to 63"),
            ("my..bucket", "two adjacent periods"),
            ("192.168.5.4", "IP address"),
            ("999.01.1.1", "IP address"),
            ("xn--bucket", "prefix `xn--`"),
            ("sthree-configurator", "prefix `sthree-`"),
            ("amzn-s3-demo-bucket", "prefix `amzn-s3-demo-`"),
            ("bucket-s3alias", "suffix `-s3alias`"),
            ("bucket--ol-s3", "suffix `--ol-s3`"),
            ("bucket.mrap", "suffix `.mrap`"),
            ("bucket--x-s3", "suffix `--x-s3`"),
            ("bucket--table-s3", "suffix `--table-s3`"),
            ("../../etc/passwd", "not '/'"),
            ("", "3 to 63"),
        ] {
            let err = bucket_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn arns_by_part() {
        for ok in [
            "arn:aws:s3:::my-bucket",
            "arn:aws:s3:::my-bucket/key/with:colons",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
            "arn:aws-us-gov:iam::123456789012:role/path/name",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:fn:1",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:sts::123456789012:assumed-role/czero-worker/1700000000",
        ] {
            assert!(arn(ok).is_ok(), "{ok}: {:?}", arn(ok));
        }
        for (bad, why) in [
            ("arn:aws:s3::", "six"),
            ("arx:aws:s3:::b", "starts with `arn:`"),
            ("arn:gcp:s3:::b", "partition"),
            ("arn:aws-:s3:::b", "partition"),
            ("arn:aws:S3:::b", "service"),
            ("arn:aws:ec2:moon-1:123456789012:instance/i", "region"),
            ("arn:aws:ec2:us-east-1:1234:instance/i", "account"),
            ("arn:aws:s3:::", "names a resource"),
            ("arn:aws:s3:::b/../../etc/passwd", "`..`"),
            ("arn:aws:s3:::b c", "no ' '"),
            ("arn:aws:s3:::b\n", "no '\\n'"),
            ("arn:aws:s3:::{b}", "no '{'"),
        ] {
            let err = arn(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let a = arn("arn:aws:ec2:us-east-1:123456789012:instance/i-1").unwrap();
        assert_eq!(
            (a.partition, a.service, a.region, a.account, a.resource),
            ("aws", "ec2", "us-east-1", "123456789012", "instance/i-1")
        );
    }

    #[test]
    fn generic_ids() {
        for ok in ["i-0f1e2d3c4b5a69788", "my alarm", "sg-123", "a..b", "x/y"] {
            assert_eq!(generic(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a\u{0}b",
            "line\nbreak",
            "../x",
            "x/..",
            r"a\..\b",
            &"x".repeat(MAX_GENERIC_ID + 1),
        ] {
            assert!(generic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn check_picks_the_rule_by_type() {
        assert_eq!(check("aws.s3", "team-analytics-raw-2026"), Ok(()));
        assert_eq!(check("s3", "arn:aws:s3:::team-analytics-raw-2026"), Ok(()));
        assert!(check("aws.s3", "../../etc/passwd").is_err());
        assert!(check("aws.s3", "arn:aws:s3:::Bad_Bucket").is_err());
        assert_eq!(
            check("aws.ec2", "arn:aws:ec2:us-east-1:123456789012:instance/i-1"),
            Ok(())
        );
        assert!(check("aws.ec2", "arn:aws:ec2:us-east-1:1:instance/i-1").is_err());
        assert_eq!(check("aws.ec2", "i-0f1e2d3c4b5a69788"), Ok(()));
        assert!(check("aws.iam-user", "../../root").is_err());
    }
}
