//! An in-memory [`Aws`] for handler tests and the benchmark: objects with ETags, a queue
//! that records messages, a service with a desired count, and injectable failures.

#![allow(clippy::unwrap_used)] // test support: a poisoned lock is a failed test

use czero_invoker::aws::{Aws, AwsError, BatchOutcome, Fetched, ObjectMeta, OutMessage};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Fake {
    pub objects: Mutex<HashMap<String, (Vec<u8>, String)>>,
    pub puts: Mutex<Vec<(String, String, Vec<u8>)>>,
    pub sent: Mutex<Vec<OutMessage>>,
    pub desired: Mutex<i32>,
    pub updates: Mutex<Vec<i32>>,
    /// `bucket/key` → version id, for objects in a "versioned" bucket.
    pub versions: Mutex<HashMap<String, String>>,
    pub gets: AtomicUsize,
    pub heads: AtomicUsize,
    pub not_modified: AtomicUsize,
    pub fail_send: Mutex<Option<AwsError>>,
    pub fail_describe: Mutex<Option<AwsError>>,
}

#[allow(dead_code)]
impl Fake {
    pub fn with_object(self, bucket: &str, key: &str, body: &[u8], etag: &str) -> Fake {
        self.set_object(bucket, key, body, etag);
        self
    }

    pub fn set_object(&self, bucket: &str, key: &str, body: &[u8], etag: &str) {
        self.objects
            .lock()
            .unwrap()
            .insert(format!("{bucket}/{key}"), (body.to_vec(), etag.to_owned()));
    }

    /// Stores every policy the mapping JSON names (and `extra`), each with the ETag
    /// `"etag-<key>"`, as a deployment uploads them next to the mapping: the project's file
    /// of that name, or `fixtures/policies/catch-all.yml` for keys the project has not.
    pub fn with_policies_of(self, bucket: &str, mapping: &str, extra: &[&str]) -> Fake {
        self.add_policies_of(bucket, mapping, extra);
        self
    }

    pub fn add_policies_of(&self, bucket: &str, mapping: &str, extra: &[&str]) {
        let v: serde_json::Value = serde_json::from_str(mapping).unwrap();
        let mut keys: Vec<String> = extra.iter().map(|k| k.to_string()).collect();
        for r in v["rules"].as_array().into_iter().flatten() {
            for p in r["policies"].as_array().into_iter().flatten() {
                keys.push(p.as_str().unwrap().to_owned());
            }
        }
        for k in keys {
            let body = policy_text(&k);
            self.set_object(bucket, &k, body.as_bytes(), &format!("\"etag-{k}\""));
        }
    }

    pub fn remove_object(&self, bucket: &str, key: &str) {
        self.objects
            .lock()
            .unwrap()
            .remove(&format!("{bucket}/{key}"));
    }

    pub fn sent(&self) -> Vec<OutMessage> {
        self.sent.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }
}

/// The project's policy file for `key`, or the catch-all test policy.
pub fn policy_text(key: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(key)).unwrap_or_else(|_| CATCH_ALL.to_owned())
}

pub const CATCH_ALL: &str = include_str!("../../fixtures/policies/catch-all.yml");

fn err(op: &'static str, message: &str, retryable: bool, not_found: bool) -> AwsError {
    AwsError {
        op,
        message: message.into(),
        retryable,
        not_found,
    }
}

impl Aws for Fake {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        if_none_match: Option<&str>,
    ) -> Result<Fetched, AwsError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let objects = self.objects.lock().unwrap();
        let Some((body, etag)) = objects.get(&format!("{bucket}/{key}")) else {
            return Err(err(
                "s3:GetObject",
                "NoSuchKey: The specified key does not exist.",
                false,
                true,
            ));
        };
        if if_none_match == Some(etag.as_str()) {
            self.not_modified.fetch_add(1, Ordering::Relaxed);
            return Ok(Fetched::NotModified);
        }
        let version_id = self
            .versions
            .lock()
            .unwrap()
            .get(&format!("{bucket}/{key}"))
            .cloned();
        Ok(Fetched::Object {
            body: body.clone(),
            etag: Some(etag.clone()),
            version_id,
        })
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, AwsError> {
        self.heads.fetch_add(1, Ordering::Relaxed);
        let path = format!("{bucket}/{key}");
        let objects = self.objects.lock().unwrap();
        let Some((body, etag)) = objects.get(&path) else {
            return Err(err("s3:HeadObject", "HTTP 404 NotFound", false, true));
        };
        Ok(ObjectMeta {
            etag: Some(etag.clone()),
            version_id: self.versions.lock().unwrap().get(&path).cloned(),
            size: Some(body.len() as u64),
        })
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), AwsError> {
        self.puts
            .lock()
            .unwrap()
            .push((bucket.into(), key.into(), body));
        Ok(())
    }

    async fn send_message(&self, _queue_url: &str, msg: &OutMessage) -> Result<String, AwsError> {
        if let Some(e) = self.fail_send.lock().unwrap().clone() {
            return Err(e);
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(msg.clone());
        Ok(format!("msg-{}", sent.len()))
    }

    async fn send_message_batch(
        &self,
        _queue_url: &str,
        msgs: &[OutMessage],
    ) -> Result<BatchOutcome, AwsError> {
        if let Some(e) = self.fail_send.lock().unwrap().clone() {
            return Err(e);
        }
        let mut sent = self.sent.lock().unwrap();
        let mut out = BatchOutcome::default();
        for m in msgs {
            sent.push(m.clone());
            out.sent.push((m.id.clone(), format!("msg-{}", sent.len())));
        }
        Ok(out)
    }

    async fn desired_count(&self, _cluster: &str, _service: &str) -> Result<i32, AwsError> {
        if let Some(e) = self.fail_describe.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(*self.desired.lock().unwrap())
    }

    async fn set_desired_count(
        &self,
        _cluster: &str,
        _service: &str,
        desired: i32,
    ) -> Result<(), AwsError> {
        self.updates.lock().unwrap().push(desired);
        *self.desired.lock().unwrap() = desired;
        Ok(())
    }
}
