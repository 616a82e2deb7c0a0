//! Real-shaped EventBridge events for the scenarios, as CloudTrail delivers them.

use serde_json::{Value, json};

/// The account moto reports for every resource.
pub const ACCOUNT: &str = "123456789012";

/// An "AWS API Call via CloudTrail" event for a successful `CreateBucket` of `bucket`.
pub fn create_bucket(bucket: &str, region: &str) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
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
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLEID:dev-session",
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/Developer/dev-session"),
                "accountId": ACCOUNT,
                "accessKeyId": "ASIAEXAMPLEKEY",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLEID",
                        "arn": format!("arn:aws:iam::{ACCOUNT}:role/Developer"),
                        "accountId": ACCOUNT,
                        "userName": "Developer"
                    },
                    "attributes": {"creationDate": time, "mfaAuthenticated": "false"}
                }
            },
            "eventTime": time,
            "eventSource": "s3.amazonaws.com",
            "eventName": "CreateBucket",
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
