//! The wire protocol with `py/czero_driver.py`: one JSON object per line each way. JSON
//! escapes control characters inside strings, so a serialized value never contains a raw
//! newline and a line is always exactly one message. Requests carry an id; answers name it.

use crate::{DriverError, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// The Python driver, run as `python -B -c DRIVER_SOURCE`.
pub const DRIVER_SOURCE: &str = include_str!("../py/czero_driver.py");

/// Bumped together with `PROTOCOL` in the Python source when messages change.
pub(crate) const PROTOCOL: u64 = 1;

/// How much of a job's output an error message carries (the whole tail is in the run log
/// and, on success, in [`Response::log_tail`]).
pub(crate) const ERROR_TAIL_BYTES: usize = 8 * 1024;

#[derive(Serialize)]
struct RunLine<'a> {
    id: u64,
    op: &'static str,
    job: Job<'a>,
}

#[derive(Serialize)]
struct Job<'a> {
    job_id: &'a str,
    policy: &'a Value,
    event: Option<&'a Value>,
    region: &'a str,
    account_id: Option<&'a str>,
    output_dir: &'a str,
    dryrun: bool,
    timeout: f64,
    max_captured_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<&'a crate::Credentials>,
}

#[derive(Serialize)]
struct OpLine {
    id: u64,
    op: &'static str,
}

/// The request line for `run`.
pub(crate) fn run_line(
    id: u64,
    request: &Request,
    max_captured_bytes: usize,
) -> Result<String, DriverError> {
    let output_dir = request.output_dir.to_str().ok_or_else(|| {
        DriverError::Io(format!(
            "output_dir {} is not valid UTF-8",
            request.output_dir.display()
        ))
    })?;
    let line = RunLine {
        id,
        op: "run",
        job: Job {
            job_id: &request.job_id,
            policy: &request.policy,
            event: request.event.as_ref(),
            region: &request.region,
            account_id: request.account_id.as_deref(),
            output_dir,
            dryrun: request.dryrun,
            timeout: request.timeout.as_secs_f64(),
            max_captured_bytes,
            credentials: request.credentials.as_ref(),
        },
    };
    encode(&line)
}

/// The request line for `probe` or `cancel`.
pub(crate) fn op_line(id: u64, op: &'static str) -> Result<String, DriverError> {
    encode(&OpLine { id, op })
}

fn encode<T: Serialize>(value: &T) -> Result<String, DriverError> {
    let mut line = serde_json::to_string(value)
        .map_err(|e| DriverError::Io(format!("encoding a request: {e}")))?;
    line.push('\n');
    Ok(line)
}

/// What the driver says about itself (the `ready` line and `probe` answers).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub(crate) struct Hello {
    #[serde(default)]
    pub protocol: u64,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub c7n: String,
    #[serde(default)]
    pub python: String,
    #[serde(default)]
    pub executable: String,
    #[serde(default)]
    pub import_seconds: f64,
    #[serde(default)]
    pub jobs: Vec<HelloJob>,
    #[serde(default)]
    pub spare: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub(crate) struct HelloJob {
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub pid: u32,
}

/// An answer to one request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub(crate) struct Reply {
    #[serde(default)]
    pub ok: bool,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<ErrorBody>,
    #[serde(default)]
    pub log_tail: String,
    #[serde(default)]
    pub output_bytes: u64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub pid: u32,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_type: String,
    #[serde(default)]
    pub retryable: bool,
    #[serde(default)]
    pub mode: String,
}

#[derive(Deserialize)]
struct JobResult {
    policy: String,
    mode: String,
    resource_type: String,
    #[serde(default)]
    resource_ids: Vec<String>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    c7n_version: String,
    #[serde(default)]
    output_folder: String,
}

/// One line from the driver.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    Ready(Hello),
    Fatal {
        kind: String,
        message: String,
    },
    Response {
        id: u64,
        reply: Reply,
    },
    Log {
        level: String,
        message: String,
        fields: Value,
    },
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    level: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: Value,
}

/// Parses one line from the driver's stdout.
pub(crate) fn parse_line(line: &str) -> Result<Incoming, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("unreadable line from the driver: {e}"))?;
    let env: Envelope = serde_json::from_value(value.clone())
        .map_err(|e| format!("line from the driver without a type: {e}"))?;
    match env.kind.as_str() {
        "ready" => serde_json::from_value(value)
            .map(Incoming::Ready)
            .map_err(|e| format!("unreadable ready line: {e}")),
        "fatal" => Ok(Incoming::Fatal {
            kind: value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            message: env.message,
        }),
        "response" => {
            let id = env.id.ok_or_else(|| "response without an id".to_owned())?;
            let reply = serde_json::from_value(value)
                .map_err(|e| format!("unreadable response {id}: {e}"))?;
            Ok(Incoming::Response { id, reply })
        }
        "log" => Ok(Incoming::Log {
            level: env.level,
            message: env.message,
            fields: env.fields,
        }),
        other => Err(format!("unknown line type {other:?} from the driver")),
    }
}

/// The last `max` bytes of `s`, cut at a character boundary.
pub(crate) fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn with_tail(message: &str, log_tail: &str) -> String {
    let t = tail(log_tail, ERROR_TAIL_BYTES).trim_end();
    if t.is_empty() {
        message.to_owned()
    } else {
        format!(
            "{message}\n--- job output (last {} bytes) ---\n{t}",
            t.len()
        )
    }
}

/// Turns the driver's answer to a run into the caller's result.
pub(crate) fn into_result(reply: Reply, request: &Request) -> Result<Response, DriverError> {
    if reply.ok {
        let value = reply
            .result
            .ok_or_else(|| DriverError::Io("a successful answer without a result".into()))?;
        let r: JobResult = serde_json::from_value(value)
            .map_err(|e| DriverError::Io(format!("unreadable result: {e}")))?;
        let output_folder = if r.output_folder.is_empty() {
            request.output_dir.join(&r.policy)
        } else {
            PathBuf::from(r.output_folder)
        };
        return Ok(Response {
            policy: r.policy,
            mode: r.mode,
            resource_type: r.resource_type,
            resource_ids: r.resource_ids,
            actions: r.actions,
            seconds: reply.seconds,
            c7n_version: r.c7n_version,
            log_tail: reply.log_tail,
            output_folder,
            output_bytes: reply.output_bytes,
            pid: reply.pid,
        });
    }
    let e = reply.error.unwrap_or_default();
    Err(match e.kind.as_str() {
        "InvalidPolicy" => DriverError::InvalidPolicy {
            message: with_tail(&e.message, ""),
        },
        "UnsupportedMode" => DriverError::UnsupportedMode {
            mode: e.mode,
            message: e.message,
        },
        "Timeout" => DriverError::Timeout {
            after: request.timeout,
        },
        "Crashed" => DriverError::Crashed {
            message: with_tail(&e.message, &reply.log_tail),
        },
        "Failed" => DriverError::Failed {
            message: with_tail(&e.message, &reply.log_tail),
            error_type: e.error_type,
            retryable: e.retryable,
        },
        other => DriverError::Io(format!(
            "unknown error kind {other:?} from the driver: {}",
            e.message
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn request() -> Request {
        Request {
            job_id: "job-1".into(),
            policy: json!({"name": "p", "resource": "aws.ec2",
                           "description": "two\nlines, \"quoted\"\r\u{2028}"}),
            event: Some(json!({"detail": {"note": "a\nb"}})),
            region: "eu-west-1".into(),
            account_id: Some("123456789012".into()),
            output_dir: PathBuf::from("/tmp/out"),
            dryrun: true,
            timeout: Duration::from_millis(2500),
            credentials: None,
        }
    }

    #[test]
    fn a_request_is_exactly_one_line_and_round_trips() {
        let line = run_line(7, &request(), 4096).unwrap();
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(!line.contains('\r'));
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["op"], "run");
        assert_eq!(v["job"]["policy"], request().policy);
        assert_eq!(v["job"]["event"], request().event.unwrap());
        assert_eq!(v["job"]["region"], "eu-west-1");
        assert_eq!(v["job"]["account_id"], "123456789012");
        assert_eq!(v["job"]["output_dir"], "/tmp/out");
        assert_eq!(v["job"]["dryrun"], true);
        assert_eq!(v["job"]["timeout"], 2.5);
        assert_eq!(v["job"]["max_captured_bytes"], 4096);
        let mut pull = request();
        pull.event = None;
        pull.account_id = None;
        let v: Value = serde_json::from_str(&run_line(8, &pull, 1).unwrap()).unwrap();
        assert!(v["job"]["event"].is_null());
        assert!(v["job"]["account_id"].is_null());
        assert_eq!(
            op_line(9, "cancel").unwrap(),
            "{\"id\":9,\"op\":\"cancel\"}\n"
        );
    }

    #[test]
    fn lines_from_the_driver_parse_by_type() {
        let ready = parse_line(r#"{"type":"ready","protocol":1,"pid":42,"c7n":"0.9.53","python":"3.11.7","executable":"/usr/bin/python3","import_seconds":0.5,"jobs":[]}"#).unwrap();
        let Incoming::Ready(h) = ready else {
            panic!("{ready:?}")
        };
        assert_eq!((h.pid, h.c7n.as_str(), h.protocol), (42, "0.9.53", 1));

        let fatal =
            parse_line(r#"{"type":"fatal","kind":"NotInstalled","message":"no c7n"}"#).unwrap();
        assert_eq!(
            fatal,
            Incoming::Fatal {
                kind: "NotInstalled".into(),
                message: "no c7n".into()
            }
        );

        let resp = parse_line(r#"{"type":"response","id":3,"ok":true,"result":{"policy":"p"},"log_tail":"x","output_bytes":1,"seconds":0.25,"pid":99}"#).unwrap();
        let Incoming::Response { id, reply } = resp else {
            panic!("{resp:?}")
        };
        assert_eq!(
            (id, reply.ok, reply.pid, reply.seconds),
            (3, true, 99, 0.25)
        );

        let log = parse_line(
            r#"{"type":"log","level":"warn","message":"job killed: timeout","fields":{"pid":5}}"#,
        )
        .unwrap();
        assert_eq!(
            log,
            Incoming::Log {
                level: "warn".into(),
                message: "job killed: timeout".into(),
                fields: json!({"pid": 5})
            }
        );

        assert!(parse_line("not json").is_err());
        assert!(parse_line(r#"{"no":"type"}"#).is_err());
        assert!(parse_line(r#"{"type":"response","ok":true}"#).is_err());
        assert!(parse_line(r#"{"type":"mystery"}"#).is_err());
    }

    #[test]
    fn a_successful_reply_becomes_a_response() {
        let reply = Reply {
            ok: true,
            result: Some(json!({
                "policy": "p", "mode": "cloudtrail", "resource_type": "aws.security-group",
                "resource_ids": ["sg-1"], "actions": ["remove-permissions"],
                "c7n_version": "0.9.53", "output_folder": "/tmp/out/p"})),
            log_tail: "log".into(),
            output_bytes: 3,
            seconds: 0.1,
            pid: 12,
            error: None,
        };
        let r = into_result(reply, &request()).unwrap();
        assert_eq!(r.resource_ids, vec!["sg-1"]);
        assert_eq!(r.actions, vec!["remove-permissions"]);
        assert_eq!(r.output_folder, PathBuf::from("/tmp/out/p"));
        assert_eq!((r.pid, r.output_bytes, r.log_tail.as_str()), (12, 3, "log"));
    }

    fn failed(kind: &str, retryable: bool) -> DriverError {
        let reply = Reply {
            ok: false,
            error: Some(ErrorBody {
                kind: kind.into(),
                message: "boom".into(),
                error_type: "botocore.exceptions.ClientError".into(),
                retryable,
                mode: "config-poll-rule".into(),
            }),
            log_tail: "x".repeat(20_000) + "last line\n",
            ..Reply::default()
        };
        into_result(reply, &request()).unwrap_err()
    }

    #[test]
    fn error_replies_map_to_their_kind_and_retryability() {
        let cases: [(&str, bool, bool); 6] = [
            ("InvalidPolicy", true, false),
            ("UnsupportedMode", false, false),
            ("Failed", true, true),
            ("Failed", false, false),
            ("Timeout", false, true),
            ("Crashed", false, true),
        ];
        for (kind, retryable, expected) in cases {
            let e = failed(kind, retryable);
            assert_eq!(e.is_retryable(), expected, "{kind} {retryable}: {e}");
        }
        match failed("Timeout", false) {
            DriverError::Timeout { after } => assert_eq!(after, Duration::from_millis(2500)),
            e => panic!("{e}"),
        }
        match failed("UnsupportedMode", false) {
            DriverError::UnsupportedMode { mode, .. } => assert_eq!(mode, "config-poll-rule"),
            e => panic!("{e}"),
        }
        match failed("Failed", true) {
            DriverError::Failed {
                message,
                error_type,
                retryable,
            } => {
                assert!(retryable);
                assert_eq!(error_type, "botocore.exceptions.ClientError");
                assert!(message.starts_with("boom\n--- job output"));
                assert!(message.ends_with("last line"), "{message}");
                assert!(message.len() < ERROR_TAIL_BYTES + 100);
            }
            e => panic!("{e}"),
        }
        assert!(matches!(failed("Surprise", false), DriverError::Io(_)));
    }

    #[test]
    fn is_retryable_covers_every_variant() {
        let table = [
            (
                DriverError::NotInstalled {
                    python: "p".into(),
                    message: "m".into(),
                },
                false,
            ),
            (
                DriverError::InvalidPolicy {
                    message: "m".into(),
                },
                false,
            ),
            (
                DriverError::UnsupportedMode {
                    mode: "m".into(),
                    message: "m".into(),
                },
                false,
            ),
            (
                DriverError::Failed {
                    message: "m".into(),
                    error_type: "t".into(),
                    retryable: true,
                },
                true,
            ),
            (
                DriverError::Failed {
                    message: "m".into(),
                    error_type: "t".into(),
                    retryable: false,
                },
                false,
            ),
            (
                DriverError::Timeout {
                    after: Duration::from_secs(1),
                },
                true,
            ),
            (
                DriverError::Crashed {
                    message: "m".into(),
                },
                true,
            ),
            (DriverError::Io("m".into()), true),
        ];
        for (e, expected) in table {
            assert_eq!(e.is_retryable(), expected, "{e:?}");
        }
    }

    #[test]
    fn tails_cut_at_character_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        // 'é' is two bytes: a cut inside it moves forward.
        assert_eq!(tail("aéb", 2), "b");
        assert_eq!(tail("aéb", 3), "éb");
    }

    #[test]
    fn the_source_fits_in_one_argument_and_speaks_this_protocol() {
        // Linux refuses a single argv string over MAX_ARG_STRLEN (32 pages).
        assert!(DRIVER_SOURCE.len() < 128 * 1024, "{}", DRIVER_SOURCE.len());
        assert!(DRIVER_SOURCE.contains(&format!("\nPROTOCOL = {PROTOCOL}\n")));
    }
}
