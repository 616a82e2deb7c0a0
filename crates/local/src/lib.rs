//! The local control plane: plays Application Auto Scaling and the ECS scheduler against an
//! AWS emulator, starting workers as containers or processes.
//!
//! moto records an ECS service's `desiredCount` but runs nothing and never evaluates alarms.
//! `czero local` fills that gap: it reads the scalable target, step policies and alarms
//! that Terraform put in the emulator (or a config file), reads the queue once per alarm
//! period, lets `czero_scaling`'s [`Autoscaler`](czero_scaling::aws::Autoscaler) decide (the
//! same model the simulator runs, so both agree by construction), writes the result with
//! `UpdateService`, and keeps that many worker tasks running: replacing tasks that exit,
//! stopping unprotected ones on scale-in, and serving each task the ECS agent's
//! task-protection endpoint. A time scale makes minutes of AWS behaviour take seconds.

pub mod agent;
pub mod clock;
pub mod control;
pub mod deployed;
pub mod emulator;
pub mod launcher;
pub mod scheduler;
pub mod setup;
pub mod timeline;

pub use control::{LocalError, LocalOptions, Summary, run};
pub use emulator::Emulator;
pub use launcher::{DockerLauncher, ProcessLauncher, TaskLauncher};
pub use setup::{ScalingSetup, load_config};
pub use timeline::{Row, Timeline, desired_sequence};
