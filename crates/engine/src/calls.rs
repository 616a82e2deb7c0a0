//! Counts API calls per operation for `metadata.json`'s `api-stats` (c7n counts them the
//! same way, keyed `service.Operation`).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<BTreeMap<String, u64>>>);

impl Calls {
    pub fn count(&self, operation: &str) {
        let mut m = match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        *m.entry(format!("s3.{operation}")).or_insert(0) += 1;
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
