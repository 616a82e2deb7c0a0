//! `cargo xtask dist`: the release artifacts without Nix — the invoker Lambda zip and the
//! worker's OCI image — built so that two checkouts of the same sources at different paths
//! produce the same bytes. The Nix flake (`nix build .#invoker-zip`, `.#worker-image`) is the
//! other path to the same artifacts; see `nix/`.
//!
//! The image's CA bundle is copied from the build host (`/etc/ssl/certs/ca-certificates.crt`,
//! Debian's `ca-certificates`), so the image digest also depends on that file's content.

use crate::{project_root, run_cmd};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

mod build;
mod package;

pub use build::BuildPlan;
use package::{Image, digest};

/// The host CA bundle copied into the image.
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Size goals from the design: a small Lambda zip and a small worker image.
const ZIP_GOAL_BYTES: u64 = 8 * 1024 * 1024;
const IMAGE_GOAL_BYTES: u64 = 20 * 1024 * 1024;

/// The nextest invocation `cargo xtask test` uses for the ignored end-to-end dist test.
pub const SLOW_TEST_ARGS: &[&str] = &[
    "nextest",
    "run",
    "--locked",
    "-p",
    "xtask",
    "--run-ignored",
    "only",
    "-E",
    "test(/^dist::/)",
    // Shows the measured sizes and digests; runs the (single, heavy) test serially.
    "--no-capture",
];

/// What `cargo xtask test` runs with the worker image as containers, once the slow test above
/// has built and loaded it: one real job against moto, and the end-to-end scenarios that
/// exercise the workers (0 → 1 → 0, a burst 0 → 5 → 0, SIGKILLed containers). The
/// control-plane-only scenarios run with processes in the main suite.
pub const CONTAINER_TEST_ARGS: &[&str] = &[
    "nextest",
    "run",
    "--locked",
    "-p",
    "czero-integration",
    "--run-ignored",
    "only",
    "-E",
    "test(=worker_container_processes_one_job_against_moto) | test(=worker_containers_scale_0_n_0)",
    // Prints each scenario's table; runs the two tests one after the other, as their timings
    // assume a machine to themselves.
    "--no-capture",
];

/// The image's reference in Docker after `docker load`.
pub fn image_ref() -> String {
    format!("{}:{}", package::IMAGE_NAME, package::IMAGE_TAG)
}

/// Runs [`CONTAINER_TEST_ARGS`] against the loaded image where a Docker engine answers, and
/// says plainly when none does (the tests themselves would fail without one).
pub fn container_tests(python: &Path) -> Result<()> {
    if !docker_available() {
        if docker_required() {
            bail!(
                "{DOCKER_REQUIRED_VAR} is set but no Docker engine answers `docker info`: the container tests cannot run"
            );
        }
        eprintln!(
            "== no Docker engine: the worker image was not run as a container; the end-to-end scenarios ran with processes only (set {DOCKER_REQUIRED_VAR}=1 to make this an error)"
        );
        return Ok(());
    }
    let image = image_ref();
    eprintln!(
        "== worker image {image} as containers: one job against moto; e2e scenarios single 0→1→0, burst 0→5→0, faults (docker kill)"
    );
    let start = std::time::Instant::now();
    run_cmd(
        Command::new("cargo")
            .args(CONTAINER_TEST_ARGS)
            .env("CZERO_E2E_IMAGE", &image)
            .env("CZERO_PYTHON", python),
    )?;
    eprintln!(
        "== worker containers ({image}): one job and 3 scenarios passed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct Args {
    /// Also load the image into the local Docker engine (`docker load`).
    #[arg(long)]
    pub load: bool,
}

/// What `dist` wrote, with the digests that identify it.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub zip: PathBuf,
    pub zip_sha256: String,
    pub zip_size: u64,
    pub layout: PathBuf,
    pub archive: PathBuf,
    pub archive_sha256: String,
    pub image_manifest_digest: String,
    pub image_config_digest: String,
    pub image_compressed_size: u64,
    pub binaries: build::Binaries,
}

pub fn run(args: Args) -> Result<()> {
    let root = project_root();
    let plan = BuildPlan::for_root(&root)?;
    let artifacts = produce(&plan, &root.join("target").join("dist"))?;
    report(&artifacts);
    if args.load {
        if !docker_available() {
            bail!("--load: no Docker engine answers `docker info`");
        }
        run_cmd(
            Command::new("docker")
                .arg("load")
                .arg("-i")
                .arg(&artifacts.archive),
        )?;
    }
    Ok(())
}

/// Builds the binaries for `plan` and writes every artifact into `out`.
pub fn produce(plan: &BuildPlan, out: &Path) -> Result<Artifacts> {
    let binaries = plan.build()?;
    for bin in [&binaries.bootstrap, &binaries.worker] {
        let bytes = read(bin)?;
        if build::needs_loader(&bytes).with_context(|| format!("{}", bin.display()))? {
            bail!(
                "{} is dynamically linked: it would not start on the Lambda runtime or in the image",
                bin.display()
            );
        }
        let leaked = build::leaked_paths(plan, &bytes);
        if !leaked.is_empty() {
            bail!(
                "{} embeds build paths {leaked:?}: the path remapping missed them",
                bin.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;

    let zip_bytes = package::lambda_zip(&read(&binaries.bootstrap)?)?;
    let zip = out.join("invoker.zip");
    write(&zip, &zip_bytes)?;

    let ca = read(Path::new(HOST_CA_BUNDLE))?;
    let entries = package::worker_root(&read(&binaries.worker)?, &ca);
    let image = Image::new(&entries, plan.source_date_epoch)?;
    let layout = out.join("worker-image");
    image.write_layout(&layout)?;
    let archive_bytes = image.docker_archive(plan.source_date_epoch)?;
    let archive = out.join("worker-image.tar");
    write(&archive, &archive_bytes)?;

    Ok(Artifacts {
        zip_sha256: digest(&zip_bytes),
        zip_size: zip_bytes.len() as u64,
        zip,
        layout,
        archive_sha256: digest(&archive_bytes),
        archive,
        image_manifest_digest: image.manifest_digest(),
        image_config_digest: image.config_digest(),
        image_compressed_size: (image.layer.len() + image.config.len() + image.manifest.len())
            as u64,
        binaries,
    })
}

fn report(a: &Artifacts) {
    let ratio = |size: u64, goal: u64| size as f64 / goal as f64;
    println!(
        "{}\n  {}  {} bytes  {:.2}× the 8 MB goal",
        a.zip.display(),
        a.zip_sha256,
        a.zip_size,
        ratio(a.zip_size, ZIP_GOAL_BYTES)
    );
    println!(
        "{}\n  manifest {}  {} bytes compressed  {:.2}× the 20 MB goal\n  image id {}",
        a.layout.display(),
        a.image_manifest_digest,
        a.image_compressed_size,
        ratio(a.image_compressed_size, IMAGE_GOAL_BYTES),
        a.image_config_digest
    );
    for bin in [&a.binaries.bootstrap, &a.binaries.worker] {
        let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        println!("{}  {size} bytes (static, stripped)", bin.display());
    }
    println!(
        "{}  (docker load -i)\n  {}",
        a.archive.display(),
        a.archive_sha256
    );
}

/// Set (to anything but `0`) where the run claims to test the image as containers: a
/// missing Docker engine then fails the run instead of skipping those tests.
pub const DOCKER_REQUIRED_VAR: &str = "CZERO_REQUIRE_DOCKER";

/// Whether this run must have Docker ([`DOCKER_REQUIRED_VAR`]).
pub fn docker_required() -> bool {
    std::env::var(DOCKER_REQUIRED_VAR).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether a Docker engine answers.
pub fn docker_available() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("could not read {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests;
