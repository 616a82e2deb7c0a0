//! The end-to-end harness: everything custodian-zero needs to run on one machine without
//! AWS. It starts moto, applies `terraform/examples/local` to it, uploads the example
//! policies and mapping, runs `czero local` (which starts workers), and feeds the invoker
//! real-shaped events. The tests in `tests/` and the `czero-demo` binary drive it; `chaos`
//! shakes it (kills, emulator freezes, injected faults, poison and duplicate messages) and
//! checks that nothing is lost (`cargo xtask chaos`, the `czero-chaos` binary).

pub mod chaos;
pub mod events;
pub mod iam;
pub mod scenario;
pub mod stack;
pub mod terraform;

pub use terraform::{LocalExample, Workspace};
