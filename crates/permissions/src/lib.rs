//! What custodian-zero asks of AWS: for each component (the engine's native features, the
//! worker, the invoker), every API operation it makes and the IAM actions AWS authorizes
//! that operation with, by where its resources are.
//!
//! Data only, no dependencies: `cargo xtask permissions` turns these tables into
//! `terraform/modules/custodian-zero/permissions.json` (from which Terraform builds the roles)
//! without building the AWS SDK. Each table is re-exported by its component
//! (`czero_engine::permissions`, `czero_worker::permissions`, `czero_invoker::permissions`),
//! whose tests tie it to the code that makes the calls.

pub mod engine;
pub mod invoker;
pub mod worker;
