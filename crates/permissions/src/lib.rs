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

/// One API operation, the IAM actions it needs, where its resources are (`S`: the worker's
/// or the invoker's scopes) and why the component makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<S> {
    /// `service.Operation`, with what distinguishes a variant in parentheses.
    pub operation: &'static str,
    pub actions: &'static [&'static str],
    pub scope: S,
    pub why: &'static str,
}

const fn call<S>(
    operation: &'static str,
    actions: &'static [&'static str],
    scope: S,
    why: &'static str,
) -> Call<S> {
    Call {
        operation,
        actions,
        scope,
        why,
    }
}
