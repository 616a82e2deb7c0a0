//! `cargo xtask dist`: the release artifacts without Nix — the invoker Lambda zip and the
//! worker's two OCI images — built so that two checkouts of the same sources at different
//! paths produce the same bytes. The slim image (`custodian-worker:latest`) is the static
//! worker alone, for policies that all run natively; the full one (`custodian-worker:full`)
//! adds CPython and c7n for the rest (see `full`). The Nix flake (`nix build .#invoker-zip`,
//! `.#worker-image`, `.#worker-image-full`) is the other path to the same artifacts; see `nix/`.
//!
//! The images' CA bundle is copied from the build host (`/etc/ssl/certs/ca-certificates.crt`,
//! Debian's `ca-certificates`), so the image digests also depend on that file's content.

use crate::{project_root, run_cmd};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

mod build;
mod debian;
mod elf;
mod full;
mod package;
mod wheels;

pub use build::BuildPlan;
use package::{Image, ImageSpec, Layer, digest};

/// The host CA bundle copied into the image.
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Size goals from the design: a small Lambda zip and small worker images (compressed, as a
/// registry stores them and a task pulls them).
const ZIP_GOAL_BYTES: u64 = 8 * 1024 * 1024;
const IMAGE_GOAL_BYTES: u64 = 20 * 1024 * 1024;
const FULL_IMAGE_GOAL_BYTES: u64 = 60 * 1024 * 1024;

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

/// What `cargo xtask test` runs with the worker images as containers, once the slow test above
/// has built and loaded them: one real job against moto, the end-to-end scenarios that
/// exercise the workers (0 → 1 → 0, a burst 0 → 5 → 0, SIGKILLed containers), and the full
/// image's Python and worker on a read-only root. The control-plane-only scenarios run with
/// processes in the main suite.
pub const CONTAINER_TEST_ARGS: &[&str] = &[
    "nextest",
    "run",
    "--locked",
    "-p",
    "czero-integration",
    "--run-ignored",
    "only",
    "-E",
    "test(=worker_container_processes_one_job_against_moto) | test(=worker_containers_scale_0_n_0) | test(=full_image_imports_c7n_on_a_read_only_root) | test(=full_image_runs_the_worker_on_a_read_only_root) | test(=full_image_container_remediates_an_open_security_group_against_moto)",
    // Prints each scenario's table; runs the tests one after the other, as the scenarios'
    // timings assume a machine to themselves.
    "--no-capture",
];

/// The slim image's reference in Docker after `docker load`.
pub fn image_ref() -> String {
    format!("{}:{}", package::IMAGE_NAME, package::IMAGE_TAG)
}

/// The full image's reference in Docker after `docker load`.
pub fn full_image_ref() -> String {
    format!("{}:{}", package::IMAGE_NAME, full::TAG)
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
    let full = full_image_ref();
    eprintln!(
        "== worker image {image} as containers: one job against moto; e2e scenarios single 0→1→0, burst 0→5→0, faults (docker kill); {full}: c7n and the worker on a read-only root"
    );
    let start = std::time::Instant::now();
    run_cmd(
        Command::new("cargo")
            .args(CONTAINER_TEST_ARGS)
            .env("CZERO_E2E_IMAGE", &image)
            .env("CZERO_E2E_FULL_IMAGE", &full)
            .env("CZERO_PYTHON", python),
    )?;
    eprintln!(
        "== worker containers ({image}, {full}): one job, 3 scenarios and 2 full-image checks passed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct Args {
    /// Also load both images into the local Docker engine (`docker load`):
    /// `custodian-worker:latest` (slim) and `custodian-worker:full`.
    #[arg(long)]
    pub load: bool,
}

/// One image as `dist` wrote it, with the digests that identify it.
#[derive(Debug, Clone)]
pub struct ImageArtifacts {
    /// `custodian-worker:<tag>`, as `docker load` names it.
    pub reference: String,
    pub layout: PathBuf,
    pub archive: PathBuf,
    pub archive_sha256: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub goal: u64,
}

/// What `dist` wrote.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub zip: PathBuf,
    pub zip_sha256: String,
    pub zip_size: u64,
    pub slim: ImageArtifacts,
    pub full: ImageArtifacts,
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
        for image in [&artifacts.slim, &artifacts.full] {
            run_cmd(
                Command::new("docker")
                    .arg("load")
                    .arg("-i")
                    .arg(&image.archive),
            )?;
        }
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
    let worker_layer = Layer {
        entries: package::worker_root(&read(&binaries.worker)?, &ca),
        created_by: "cargo xtask dist".to_owned(),
    };
    let slim = Image::new(
        std::slice::from_ref(&worker_layer),
        &ImageSpec::slim(),
        plan.source_date_epoch,
    )?;
    let slim = write_image(&slim, out, "worker-image", IMAGE_GOAL_BYTES, plan)?;

    let added = full::layers(
        &plan.root,
        &plan.cache_dir,
        &plan.pip_python,
        &out.join("worker-full.stage"),
    )?;
    let full_layers = [
        worker_layer,
        Layer {
            entries: added.python,
            created_by: format!(
                "cargo xtask dist: CPython 3.11 from {}",
                crate::lock::DEBIAN_LOCK
            ),
        },
        Layer {
            entries: added.site_packages,
            created_by: format!(
                "cargo xtask dist: c7n and its dependencies from {}",
                crate::lock::REQUIREMENTS_LOCK
            ),
        },
    ];
    let spec = ImageSpec {
        tag: full::TAG.to_owned(),
        env: full::env(),
    };
    let full = Image::new(&full_layers, &spec, plan.source_date_epoch)?;
    let full = write_image(&full, out, "worker-full", FULL_IMAGE_GOAL_BYTES, plan)?;

    Ok(Artifacts {
        zip_sha256: digest(&zip_bytes),
        zip_size: zip_bytes.len() as u64,
        zip,
        slim,
        full,
        binaries,
    })
}

/// Writes `image` as an OCI layout in `out/<name>/` and a docker archive `out/<name>.tar`.
fn write_image(
    image: &Image,
    out: &Path,
    name: &str,
    goal: u64,
    plan: &BuildPlan,
) -> Result<ImageArtifacts> {
    let layout = out.join(name);
    image.write_layout(&layout)?;
    let archive_bytes = image.docker_archive(plan.source_date_epoch)?;
    let archive = out.join(format!("{name}.tar"));
    write(&archive, &archive_bytes)?;
    Ok(ImageArtifacts {
        reference: image.reference(),
        layout,
        archive,
        archive_sha256: digest(&archive_bytes),
        manifest_digest: image.manifest_digest(),
        config_digest: image.config_digest(),
        compressed_size: image.compressed_size(),
        uncompressed_size: image.uncompressed_size(),
        goal,
    })
}

fn report(a: &Artifacts) {
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{}\n  {}  {} bytes  {:.2}× the 8 MB goal",
        a.zip.display(),
        a.zip_sha256,
        a.zip_size,
        a.zip_size as f64 / ZIP_GOAL_BYTES as f64
    );
    for image in [&a.slim, &a.full] {
        println!(
            "{} ({})\n  manifest {}  {} bytes compressed ({:.1} MB), {:.2}× the {:.0} MB goal; {:.1} MB unpacked\n  image id {}",
            image.layout.display(),
            image.reference,
            image.manifest_digest,
            image.compressed_size,
            mb(image.compressed_size),
            image.compressed_size as f64 / image.goal as f64,
            mb(image.goal),
            mb(image.uncompressed_size),
            image.config_digest
        );
    }
    for bin in [&a.binaries.bootstrap, &a.binaries.worker] {
        let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        println!("{}  {size} bytes (static, stripped)", bin.display());
    }
    for image in [&a.slim, &a.full] {
        println!(
            "{}  (docker load -i)\n  {}",
            image.archive.display(),
            image.archive_sha256
        );
    }
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
