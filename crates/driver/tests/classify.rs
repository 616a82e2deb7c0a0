//! The driver's failure classification (`classify` in py/czero_driver.py), run in the real
//! interpreter on real botocore and c7n exceptions: throttling, 5xx, connection and timeout
//! errors are retryable, anything else is not; the chain of causes counts.

use serde_json::Value;
use std::process::{Command, Stdio};

/// Loads DRIVER_SOURCE (from stdin) as a module, without running its main.
const HARNESS: &str = r#"
import json, sys, types
m = types.ModuleType("czero_driver")
exec(compile(sys.stdin.read(), "czero_driver.py", "exec"), m.__dict__)

from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError,
                                 NoCredentialsError, ReadTimeoutError)
from c7n.exceptions import PolicyExecutionError

def client_error(code, status):
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeThings")

def chained():
    try:
        try:
            raise client_error("Throttling", 400)
        except ClientError as e:
            raise PolicyExecutionError("action failed") from e
    except PolicyExecutionError as e:
        return e

cases = {
    "Throttling": client_error("Throttling", 400),
    "ThrottlingException": client_error("ThrottlingException", 400),
    "RequestLimitExceeded": client_error("RequestLimitExceeded", 503),
    "SlowDown": client_error("SlowDown", 503),
    "ServiceUnavailable": client_error("ServiceUnavailable", 503),
    "InternalError": client_error("InternalError", 500),
    "unknown code, 502": client_error("Mystery", 502),
    "AccessDenied": client_error("AccessDenied", 403),
    "InvalidGroup.NotFound": client_error("InvalidGroup.NotFound", 400),
    "EndpointConnectionError": EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    "ReadTimeoutError": ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    "ConnectTimeoutError": ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
    "ConnectionResetError": ConnectionResetError("reset by peer"),
    "NoCredentialsError": NoCredentialsError(),
    "ValueError": ValueError("bad value"),
    "KeyError": KeyError("detail"),
    "PolicyExecutionError from Throttling": chained(),
    "PolicyExecutionError": PolicyExecutionError("no cause"),
}
out = {}
for name, e in cases.items():
    j = m.classify(e, "cloudtrail")
    out[name] = [j.kind, j.error_type, j.retryable, j.mode]
print(json.dumps(out))
"#;

#[test]
fn retryable_means_throttling_5xx_connection_or_timeout() {
    let python = czero_testkit::python().expect("the project's Python (c7n) must be installed");
    let mut child = Command::new(python)
        .args(["-B", "-c", HARNESS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(czero_driver::DRIVER_SOURCE.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: [(&str, &str, bool); 18] = [
        ("Throttling", "botocore.exceptions.ClientError", true),
        (
            "ThrottlingException",
            "botocore.exceptions.ClientError",
            true,
        ),
        (
            "RequestLimitExceeded",
            "botocore.exceptions.ClientError",
            true,
        ),
        ("SlowDown", "botocore.exceptions.ClientError", true),
        (
            "ServiceUnavailable",
            "botocore.exceptions.ClientError",
            true,
        ),
        ("InternalError", "botocore.exceptions.ClientError", true),
        ("unknown code, 502", "botocore.exceptions.ClientError", true),
        ("AccessDenied", "botocore.exceptions.ClientError", false),
        (
            "InvalidGroup.NotFound",
            "botocore.exceptions.ClientError",
            false,
        ),
        (
            "EndpointConnectionError",
            "botocore.exceptions.EndpointConnectionError",
            true,
        ),
        (
            "ReadTimeoutError",
            "botocore.exceptions.ReadTimeoutError",
            true,
        ),
        (
            "ConnectTimeoutError",
            "botocore.exceptions.ConnectTimeoutError",
            true,
        ),
        ("ConnectionResetError", "ConnectionResetError", true),
        (
            "NoCredentialsError",
            "botocore.exceptions.NoCredentialsError",
            false,
        ),
        ("ValueError", "ValueError", false),
        ("KeyError", "KeyError", false),
        (
            "PolicyExecutionError from Throttling",
            "c7n.exceptions.PolicyExecutionError",
            true,
        ),
        (
            "PolicyExecutionError",
            "c7n.exceptions.PolicyExecutionError",
            false,
        ),
    ];
    for (name, error_type, retryable) in expected {
        assert_eq!(
            got[name],
            serde_json::json!(["Failed", error_type, retryable, "cloudtrail"]),
            "{name}"
        );
    }
    assert_eq!(got.as_object().map(|m| m.len()), Some(expected.len()));
}
