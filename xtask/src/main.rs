//! `cargo xtask`: the project's chores, one module per subcommand. `main` only dispatches.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

mod bench;
mod chaos;
mod demo;
mod dist;
mod e2e;
mod lock;
mod nix;
mod permissions;
mod python;
mod test;

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The full test suite, as CI runs it: fmt, clippy, nextest, Terraform and Nix checks.
    Test(test::Args),
    /// The design document's scenarios end to end on the local stack.
    E2e,
    /// The README's demo: a burst of events on the local stack, with a live table.
    Demo,
    /// Release artifacts without Nix: the invoker Lambda zip and the worker OCI images (slim,
    /// and full with CPython and c7n).
    Dist(dist::Args),
    /// Regenerate the full image's locks: crates/driver/requirements.lock (from .venv) and
    /// xtask/src/dist/debian.lock (from apt).
    Lock(lock::Args),
    /// Engine benchmark: czero vs Cloud Custodian per event, floor, start-up, RSS.
    BenchEngine,
    /// Worker benchmark: one release worker vs Cloud Custodian in-process on the same jobs.
    BenchWorker,
    /// Fallback benchmark: the c7n driver vs c7n in-process and one `custodian run` per event.
    BenchFallback,
    /// Write terraform/modules/custodian-zero/permissions.json from the permission tables.
    Permissions,
    /// The chaos run: 200 jobs through killed workers, a frozen emulator and injected faults.
    Chaos(chaos::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test(args) => test::run(args),
        Command::E2e => e2e::run(),
        Command::Demo => demo::run(),
        Command::Dist(args) => dist::run(args),
        Command::Lock(args) => lock::run(args),
        Command::BenchEngine => bench::engine(),
        Command::BenchWorker => bench::worker(),
        Command::BenchFallback => bench::fallback(),
        Command::Permissions => permissions::run(),
        Command::Chaos(args) => chaos::run(args),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command from the project root, echoing it, failing with its exit status.
pub fn run_cmd(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .current_dir(project_root())
        .status()
        .map_err(|e| anyhow::anyhow!("could not start `{}`: {e}", describe(cmd)))?;
    if !status.success() {
        anyhow::bail!("`{}` failed: {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &std::process::Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
