//! The invoker: turns one EventBridge event into queued jobs.
