//! Counts API calls per operation for `metadata.json`'s `api-stats` (c7n counts them the
//! same way, keyed `service.Operation`).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<BTreeMap<String, u64>>>);

impl Calls {
    /// One S3 call.
    pub fn count(&self, operation: &str) {
        self.count_in("s3", operation);
    }

    /// One call to `service` (`kms`, ...).
    pub fn count_in(&self, service: &str, operation: &str) {
        let mut m = match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        *m.entry(format!("{service}.{operation}")).or_insert(0) += 1;
    }

    /// A snapshot as `{"s3.GetBucketAcl": 1, ...}`.
    pub fn snapshot(&self) -> Value {
        let m = match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::from(*v)))
                .collect::<Map<_, _>>(),
        )
    }
}
