//! The policy files the mapping routes events to, as the invoker reads them: size-capped,
//! parsed with `czero-policy`, and kept across invocations by key and ETag (like the
//! mapping), so a warm invocation re-reads a file only after it changed.

use czero_policy::{PolicyErrors, PolicyFile};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Largest policy file read: hundreds of policies fit; the cap keeps a mistaken upload from
/// costing the Lambda its memory, and is checked before the file is parsed.
pub const MAX_POLICY_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyFileError {
    #[error("{origin} is {size} bytes, over the {cap}-byte cap for a policy file")]
    TooLarge {
        origin: String,
        size: u64,
        cap: usize,
    },
    #[error("{origin} is not UTF-8 text ({reason})")]
    NotUtf8 { origin: String, reason: String },
    /// Every error, each as `FILE:LINE:COL: path: message`.
    #[error("{0}")]
    Invalid(#[from] PolicyErrors),
}

/// `size` against [`MAX_POLICY_BYTES`] (a HeadObject's Content-Length, a file's length).
pub fn check_size(origin: &str, size: u64) -> Result<(), PolicyFileError> {
    if size > MAX_POLICY_BYTES as u64 {
        return Err(PolicyFileError::TooLarge {
            origin: origin.into(),
            size,
            cap: MAX_POLICY_BYTES,
        });
    }
    Ok(())
}

/// Parses a policy file read from `origin` (`s3://bucket/key` or a path), cap first.
pub fn parse_policy(origin: &str, bytes: &[u8]) -> Result<PolicyFile, PolicyFileError> {
    check_size(origin, bytes.len() as u64)?;
    let text = std::str::from_utf8(bytes).map_err(|e| PolicyFileError::NotUtf8 {
        origin: origin.into(),
        reason: e.to_string(),
    })?;
    Ok(czero_policy::parse_str(origin, text)?)
}

/// A parsed policy file and the object it was read from.
#[derive(Debug, Clone)]
pub struct CachedPolicy {
    pub etag: String,
    pub version_id: Option<String>,
    pub file: Arc<PolicyFile>,
}

/// Parsed policy files of a warm Lambda, one entry per key (the newest ETag seen).
#[derive(Debug, Default)]
pub struct PolicyCache {
    inner: Mutex<HashMap<String, CachedPolicy>>,
}

impl PolicyCache {
    pub fn get(&self, key: &str) -> Option<CachedPolicy> {
        self.inner.lock().ok()?.get(key).cloned()
    }

    pub fn store(&self, key: &str, entry: CachedPolicy) {
        if let Ok(mut g) = self.inner.lock() {
            g.insert(key.to_owned(), entry);
        }
    }

    /// How many files are cached (for logs and tests).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_checked_before_parsing() {
        let big = format!("# {}\npolicies: [", "x".repeat(MAX_POLICY_BYTES));
        let err = parse_policy("s3://b/policies/big.yml", big.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "s3://b/policies/big.yml is {} bytes, over the 524288-byte cap for a policy file",
                big.len()
            )
        );
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let err = parse_policy(
            "s3://b/policies/bad.yml",
            b"policies:\n  - name: x\n    resource: aws.s3\n    filters:\n      - type: value\n        key: a\n        op: bogus\n        value: 1\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s3://b/policies/bad.yml:7:9: policies[0].filters[0].op: invalid op"),
            "{err}"
        );
        let err = parse_policy("s3://b/policies/bin.yml", &[0xff, 0xfe]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s3://b/policies/bin.yml is not UTF-8 text"),
            "{err}"
        );
    }
}
