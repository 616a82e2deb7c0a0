//! Scaling: the contract `desired(backlog)`, a model of how AWS actually reaches it
//! (CloudWatch periods, step scaling, cooldowns, Fargate start-up, ECS task replacement),
//! and a discrete-event simulator over that model. No I/O and nothing about AWS SDKs.

pub mod aws;
pub mod contract;
pub mod experiments;
pub mod price;
mod rng;
pub mod scenario;
pub mod sim;
pub mod table;
pub mod trace;
