//! What the engine's SDK clients share: one retry and timeout policy, and a client per
//! region built lazily from one configuration (so `AWS_ENDPOINT_URL` applies to all).

use aws_sdk_s3::config::Region;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Throttling (SlowDown, 503) and 5xx are retried in the SDK's standard mode: 5 attempts,
/// exponential backoff with jitter from 200 ms (the SDK's 1 s default is tuned for bulk
/// jobs, not one event). Adaptive mode was measured to hold later calls back for seconds
/// after a single SlowDown, which one event cannot afford.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(200))
}

pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(60))
        .build()
}

/// Clients by region, shared by every clone.
#[derive(Debug)]
pub(crate) struct PerRegion<C>(Arc<Mutex<HashMap<String, C>>>);

impl<C> Clone for PerRegion<C> {
    fn clone(&self) -> Self {
        PerRegion(Arc::clone(&self.0))
    }
}

impl<C> Default for PerRegion<C> {
    fn default() -> Self {
        PerRegion(Arc::new(Mutex::new(HashMap::new())))
    }
}

impl<C: Clone> PerRegion<C> {
    /// The client for `region`, built by `build` the first time.
    pub(crate) fn get(&self, region: &str, build: impl FnOnce(Region) -> C) -> C {
        let mut map = match self.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(region.to_string())
            .or_insert_with(|| build(Region::new(region.to_string())))
            .clone()
    }
}
