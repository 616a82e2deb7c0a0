//! Real-shaped EventBridge events for the scenarios, as CloudTrail delivers them.

use serde_json::{Value, json};

/// The account moto reports for every resource.
pub const ACCOUNT: &str = "123456789012";

/// An "AWS API Call via CloudTrail" event for a successful `CreateBucket` of `bucket`.
pub fn create_bucket(bucket: &str, region: &str) -> Value {
    s3_call("CreateBucket", bucket, region)
}

/// A successful `PutBucketAcl` of `bucket` (the mapping sends it to the global-grants policy).
pub fn put_bucket_acl(bucket: &str, region: &str) -> Value {
    s3_call("PutBucketAcl", bucket, region)
}

/// The `userIdentity` CloudTrail records for a session of `role` (an IAM role ARN):
/// `sessionContext.sessionIssuer.arn` is the role.
pub fn assumed_role_identity(role: &str, session: &str) -> Value {
    let name = role.rsplit('/').next().unwrap_or(role);
    json!({
        "type": "AssumedRole",
        "principalId": format!("AROAEXAMPLEID:{session}"),
        "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}"),
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEKEY",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEID",
                "arn": role,
                "accountId": ACCOUNT,
                "userName": name
            },
            "attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"}
        }
    })
}

/// The `userIdentity` of a call by IAM user `name`: no session context at all.
pub fn iam_user_identity(name: &str) -> Value {
    json!({
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEID",
        "arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAEXAMPLEKEY",
        "userName": name
    })
}

/// The `userIdentity` of a call by the account's root user.
pub fn root_identity() -> Value {
    json!({
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": format!("arn:aws:iam::{ACCOUNT}:root"),
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAEXAMPLEKEY"
    })
}

/// A Security Hub "Findings - Imported" event with one finding on `bucket`.
pub fn security_hub_finding(bucket: &str, region: &str, severity: &str, types: &[&str]) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let time = now();
    let finding = format!(
        "arn:aws:securityhub:{region}:{ACCOUNT}:subscription/aws-foundational-security-best-practices/v/1.0.0/S3.8/finding/{id}"
    );
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": ACCOUNT,
        "time": time,
        "region": region,
        "resources": [format!("arn:aws:securityhub:{region}::product/aws/securityhub/{finding}")],
        "detail": {
            "findings": [{
                "SchemaVersion": "2018-10-08",
                "Id": finding,
                "ProductArn": format!("arn:aws:securityhub:{region}::product/aws/securityhub"),
                "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/S3.8",
                "AwsAccountId": ACCOUNT,
                "Types": types,
                "Title": "S3.8 S3 general purpose buckets should block public access",
                "Severity": {"Label": severity},
                "Resources": [{
                    "Type": "AwsS3Bucket",
                    "Id": format!("arn:aws:s3:::{bucket}"),
                    "Partition": "aws",
                    "Region": region
                }],
                "Compliance": {"Status": "FAILED"},
                "Workflow": {"Status": "NEW"},
                "RecordState": "ACTIVE"
            }]
        }
    })
}

/// An AWS Config "Config Rules Compliance Change" event: `bucket` became NON_COMPLIANT with
/// `rule`.
pub fn config_compliance(bucket: &str, region: &str, rule: &str) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let time = now();
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Config Rules Compliance Change",
        "source": "aws.config",
        "account": ACCOUNT,
        "time": time,
        "region": region,
        "resources": [],
        "detail": {
            "resourceId": bucket,
            "awsRegion": region,
            "awsAccountId": ACCOUNT,
            "configRuleName": rule,
            "messageType": "ComplianceChangeNotification",
            "newEvaluationResult": {
                "evaluationResultIdentifier": {
                    "evaluationResultQualifier": {
                        "configRuleName": rule,
                        "resourceType": "AWS::S3::Bucket",
                        "resourceId": bucket
                    },
                    "orderingTimestamp": time
                },
                "complianceType": "NON_COMPLIANT",
                "resultRecordedTime": time
            },
            "notificationCreationTime": time,
            "resourceType": "AWS::S3::Bucket"
        }
    })
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A successful S3 API call `event_name` on `bucket` by a developer's role session.
pub fn s3_call(event_name: &str, bucket: &str, region: &str) -> Value {
    s3_call_by(
        event_name,
        bucket,
        region,
        assumed_role_identity(
            &format!("arn:aws:iam::{ACCOUNT}:role/Developer"),
            "dev-session",
        ),
    )
}

/// A successful S3 API call `event_name` on `bucket` made by `identity` (a CloudTrail
/// `userIdentity`).
pub fn s3_call_by(event_name: &str, bucket: &str, region: &str, identity: Value) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let time = now();
    json!({
        "version": "0",
        "id": id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": time,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": time,
            "eventSource": "s3.amazonaws.com",
            "eventName": event_name,
            "awsRegion": region,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "[aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.debian]",
            "requestParameters": {
                "bucketName": bucket,
                "Host": format!("{bucket}.s3.amazonaws.com")
            },
            "responseElements": null,
            "additionalEventData": {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": "example",
                "bytesTransferredOut": 0
            },
            "requestID": id.replace('-', "").to_uppercase(),
            "eventID": id,
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": format!("{bucket}.s3.amazonaws.com")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bucket_names_the_bucket_where_c7n_looks() {
        let e = create_bucket("b-1", "us-east-1");
        assert_eq!(e["detail"]["requestParameters"]["bucketName"], "b-1");
        assert_eq!(e["detail"]["eventName"], "CreateBucket");
        assert_eq!(e["detail-type"], "AWS API Call via CloudTrail");
        assert!(e["detail"].get("errorCode").is_none());
        assert_ne!(create_bucket("b", "r")["id"], create_bucket("b", "r")["id"]);
    }
}
