//! `czero`: run custodian-zero's pieces by hand. Each subcommand lives in `cmd/`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;

#[derive(Parser)]
#[command(
    name = "czero",
    version,
    about = "Cloud Custodian policies on events, scaling to zero"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Do exactly what the invoker Lambda does with one EventBridge event.
    Invoke(cmd::invoke::Args),
    /// Replay the events the invoker failed on, from its on-failure destination queue.
    Replay(cmd::replay::Args),
    /// Run policies natively (c7n output layout), like `custodian run`.
    Run(cmd::run::Args),
    /// Validate policy files; print every error as FILE:LINE:COL and fallback notes.
    Validate(cmd::validate::Args),
    /// Local control plane: Application Auto Scaling and the ECS scheduler against an emulator.
    Local(Box<cmd::local::Args>),
    /// Replay the spec's scaling scenarios (or a trace) through a model of AWS scaling.
    Simulate(cmd::simulate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Invoke(args) => cmd::invoke::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Local(args) => cmd::local::run(*args),
        Command::Simulate(args) => cmd::simulate::run(args),
    }
}
