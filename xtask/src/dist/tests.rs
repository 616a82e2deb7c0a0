//! Packaging is checked on small inputs; the full pipeline (two release builds from two
//! checkouts, the image run in an empty root and in Docker) is `#[ignore]`d because it takes
//! two cold release builds, and `cargo xtask test` runs it after the main suite.

use super::package::{self, Image, ImageSpec, Layer, LayerEntry, digest};
use super::*;
use crate::dist::build;
use flate2::read::GzDecoder;
use std::io::Read;

fn sample_root() -> Vec<LayerEntry> {
    package::worker_root(b"\x7fELF fake worker", b"-----BEGIN CERTIFICATE-----\n")
}

fn one_layer(entries: Vec<LayerEntry>) -> Vec<Layer> {
    vec![Layer {
        entries,
        created_by: "cargo xtask dist".to_owned(),
    }]
}

fn untar(bytes: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let header = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, header, data)
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn zip_has_one_fixed_entry_and_no_extra_fields() {
    let body = b"#!/bin/sh\necho not really a lambda\n".repeat(100);
    let bytes = package::lambda_zip(&body).unwrap();
    assert_eq!(
        bytes,
        package::lambda_zip(&body).unwrap(),
        "zip is not deterministic"
    );

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "bootstrap");
    assert_eq!(entry.unix_mode(), Some(0o100755));
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    let time = entry.last_modified().unwrap();
    assert_eq!(
        (
            time.year(),
            time.month(),
            time.day(),
            time.hour(),
            time.minute()
        ),
        (1980, 1, 1, 0, 0)
    );
    assert_eq!(entry.extra_data().unwrap_or_default(), Vec::<u8>::new());
    let mut read_back = Vec::new();
    entry.read_to_end(&mut read_back).unwrap();
    assert_eq!(read_back, body);

    // The raw headers: local file header extra length (offset 28) and central directory
    // extra length (offset 30) are zero, so no timestamp or uid/gid field slipped in.
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    assert_eq!(&bytes[28..30], [0, 0]);
    let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    assert_eq!(&bytes[cd + 30..cd + 32], [0, 0]);
}

#[test]
fn layer_tar_is_sorted_owned_and_timeless() {
    let entries = sample_root();
    let mut shuffled = entries.clone();
    shuffled.reverse();
    let bytes = package::tar(&entries, 0).unwrap();
    assert_eq!(
        bytes,
        package::tar(&shuffled, 0).unwrap(),
        "input order leaked"
    );

    let files = untar(&bytes);
    let paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted);
    for required in [
        "custodian-worker",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "etc/group",
        "etc/hosts",
        "etc/nsswitch.conf",
        "tmp/",
    ] {
        assert!(
            paths.contains(&required),
            "{required} missing from {paths:?}"
        );
    }
    for (path, header, _) in &files {
        assert!(!path.starts_with('/'), "{path} is absolute");
        assert_eq!(header.mtime().unwrap(), 0, "{path}");
        assert_eq!(header.username().unwrap(), Some(""), "{path}");
        let uid = header.uid().unwrap();
        assert!(uid == 0 || uid == 65532, "{path} uid {uid}");
    }
    let mode = |p: &str| files.iter().find(|f| f.0 == p).unwrap().1.mode().unwrap();
    assert_eq!(mode("custodian-worker"), 0o755);
    assert_eq!(mode("tmp/"), 0o1777);

    let passwd = &files.iter().find(|f| f.0 == "etc/passwd").unwrap().2;
    assert!(String::from_utf8_lossy(passwd).contains(":65532:65532:"));
    let hosts = &files.iter().find(|f| f.0 == "etc/hosts").unwrap().2;
    assert!(String::from_utf8_lossy(hosts).starts_with("127.0.0.1\tlocalhost\n"));

    let with_epoch = package::tar(&entries, 315_532_800).unwrap();
    assert!(
        untar(&with_epoch)
            .iter()
            .all(|(_, h, _)| h.mtime().unwrap() == 315_532_800)
    );
}

#[test]
fn a_dynamically_linked_binary_is_recognised() {
    // This test executable is linked dynamically against glibc, as cargo builds it on any
    // host (a Nix build sandbox has no /bin/true to read); the shipped binaries must not be.
    let dynamic = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(build::needs_loader(&dynamic).unwrap());
    assert!(build::needs_loader(b"#!/bin/sh\n").is_err());
    // An ELF header with no program headers needs no loader.
    let mut header = vec![0u8; 64];
    header[..6].copy_from_slice(b"\x7fELF\x02\x01");
    header[0x36] = 56;
    assert!(!build::needs_loader(&header).unwrap());
}

#[test]
fn gzip_header_has_no_time_and_no_name() {
    let gz = package::gzip(b"layer").unwrap();
    assert_eq!(&gz[..3], [0x1f, 0x8b, 8]);
    assert_eq!(gz[3] & 0x08, 0, "FNAME flag set");
    assert_eq!(&gz[4..8], [0, 0, 0, 0], "MTIME not zero");
    assert_eq!(gunzip(&gz), b"layer");
}

#[test]
fn image_descriptors_point_at_their_blobs() {
    let image = Image::new(&one_layer(sample_root()), &ImageSpec::slim(), 0).unwrap();
    let again = Image::new(&one_layer(sample_root()), &ImageSpec::slim(), 0).unwrap();
    assert_eq!(image.manifest_digest(), again.manifest_digest());

    let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"][0], "/custodian-worker");
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt".into())
    );
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        digest(&gunzip(&image.layers[0])).as_str()
    );

    let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    assert_eq!(manifest["config"]["digest"], digest(&image.config).as_str());
    assert_eq!(manifest["config"]["size"], image.config.len());
    assert_eq!(
        manifest["layers"][0]["digest"],
        digest(&image.layers[0]).as_str()
    );
    assert_eq!(manifest["layers"][0]["size"], image.layers[0].len());

    let index: serde_json::Value = serde_json::from_slice(&image.index).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(m["digest"], image.manifest_digest().as_str());
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );

    let files = image.layout_files();
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert!(names.contains(&"oci-layout") && names.contains(&"index.json"));
    for (path, bytes) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_eq!(digest(bytes), format!("sha256:{hex}"), "{path}");
        }
    }
}

#[test]
fn docker_archive_names_blobs_it_contains() {
    let image = Image::new(&one_layer(sample_root()), &ImageSpec::slim(), 0).unwrap();
    let archive = image.docker_archive(0).unwrap();
    assert_eq!(archive, image.docker_archive(0).unwrap());
    let files = untar(&archive);
    let file = |p: &str| {
        files
            .iter()
            .find(|f| f.0 == p)
            .unwrap_or_else(|| panic!("{p} not in archive"))
            .2
            .clone()
    };
    let legacy: serde_json::Value = serde_json::from_slice(&file("manifest.json")).unwrap();
    assert_eq!(legacy[0]["RepoTags"][0], "custodian-worker:latest");
    assert_eq!(file(legacy[0]["Config"].as_str().unwrap()), image.config);
    assert_eq!(
        file(legacy[0]["Layers"][0].as_str().unwrap()),
        image.layers[0]
    );
    assert_eq!(file("index.json"), image.index);
}

/// The full image's shape: the slim layer reused as its first layer (one blob in a
/// registry), one history line per layer, its own tag, and the Python environment.
#[test]
fn a_layered_image_keeps_its_layers_in_order() {
    let python = vec![
        LayerEntry::dir("usr", 0o755),
        LayerEntry::dir("usr/bin", 0o755),
        LayerEntry::file("usr/bin/python3.11", 0o755, b"\x7fELF python".as_slice()),
        LayerEntry::dir("lib64", 0o755),
        LayerEntry::symlink(
            "lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ),
    ];
    let site = vec![LayerEntry::file(
        "opt/c7n/site-packages/c7n/__init__.py",
        0o644,
        b"".as_slice(),
    )];
    let mut layers = one_layer(sample_root());
    layers.push(Layer {
        entries: python,
        created_by: "python".into(),
    });
    layers.push(Layer {
        entries: site,
        created_by: "site-packages".into(),
    });
    let spec = ImageSpec {
        tag: super::full::TAG.to_owned(),
        env: super::full::env(),
    };
    let image = Image::new(&layers, &spec, 0).unwrap();
    let slim = Image::new(&one_layer(sample_root()), &ImageSpec::slim(), 0).unwrap();
    assert_eq!(image.layers.len(), 3);
    assert_eq!(
        image.layers[0], slim.layers[0],
        "the slim layer is not reused as is"
    );
    assert_eq!(image.reference(), "custodian-worker:full");

    let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for var in [
        "CUSTODIAN_PYTHON=/usr/bin/python3.11",
        "PYTHONPATH=/opt/c7n/site-packages",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONNOUSERSITE=1",
        "HOME=/tmp",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(env.contains(&var), "{var} not in {env:?}");
    }
    assert_eq!(config["config"]["User"], "65532:65532");
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["cargo xtask dist", "python", "site-packages"]);
    let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    for (i, layer) in image.layers.iter().enumerate() {
        assert_eq!(manifest["layers"][i]["digest"], digest(layer).as_str());
        assert_eq!(
            config["rootfs"]["diff_ids"][i],
            digest(&gunzip(layer)).as_str()
        );
    }
    assert_eq!(
        image.compressed_size(),
        (image.layers.iter().map(Vec::len).sum::<usize>()
            + image.config.len()
            + image.manifest.len()) as u64
    );
    assert_eq!(
        image.uncompressed_size(),
        image
            .layers
            .iter()
            .map(|l| gunzip(l).len() as u64)
            .sum::<u64>()
    );

    // The link is a link, its target kept as written.
    let python_tar = untar(&gunzip(&image.layers[1]));
    let (_, header, _) = python_tar
        .iter()
        .find(|(p, _, _)| p == "lib64/ld-linux-x86-64.so.2")
        .unwrap();
    assert_eq!(header.entry_type(), tar::EntryType::Symlink);
    assert_eq!(
        header.link_name().unwrap().unwrap().to_str().unwrap(),
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    );

    let archive = untar(&image.docker_archive(0).unwrap());
    let legacy: serde_json::Value =
        serde_json::from_slice(&archive.iter().find(|f| f.0 == "manifest.json").unwrap().2)
            .unwrap();
    assert_eq!(legacy[0]["RepoTags"][0], "custodian-worker:full");
    assert_eq!(legacy[0]["Layers"].as_array().unwrap().len(), 3);
}

/// Copies the project's files (tracked and untracked-but-not-ignored, as `git` lists them)
/// into `dest`.
fn snapshot(dest: &Path) {
    let root = project_root();
    let listed = Command::new("git")
        .current_dir(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .unwrap();
    assert!(listed.status.success(), "git ls-files failed");
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let rel = Path::new(std::str::from_utf8(name).unwrap());
        let from = root.join(rel);
        // Listed but deleted in the working tree.
        if !from.is_file() {
            continue;
        }
        let to = dest.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
}

/// Sets every file's modification time under `dir` to now.
fn touch_tree(dir: &Path) {
    let now = std::time::SystemTime::now();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            touch_tree(&entry.path());
        } else {
            std::fs::File::options()
                .write(true)
                .open(entry.path())
                .unwrap()
                .set_modified(now)
                .unwrap();
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The plan for `root`, one of `roots`: every plan maps all of them and builds into
/// `target_dir`, so the dependencies are compiled once for all.
fn plan(root: &Path, roots: &[&Path], target_dir: &Path) -> BuildPlan {
    let mut plan = BuildPlan::for_root(root).unwrap();
    plan.remap_roots = roots.iter().map(|r| r.canonicalize().unwrap()).collect();
    plan.target_dir = target_dir.to_path_buf();
    plan.source_date_epoch = 0;
    plan.offline = true;
    // One download of the packages and wheels for both checkouts (each file is checked
    // against its lock's sha256 on use).
    plan.cache_dir = project_root().join("target").join("dist-cache");
    plan
}

/// Two checkouts at different paths must give the same zip and the same images. The
/// dependencies never see a checkout path (only their registry sources, remapped, and the
/// target directory), so both builds share one target directory outside the checkouts and
/// compile the dependencies once; the workspace's crates, where the checkout path is, are
/// compiled from each. That the target directory does not leak is checked on the bytes:
/// `produce` refuses a binary that contains it, a checkout or the cargo home.
///
/// Cargo names a workspace crate's artifacts by its path relative to the workspace, so the
/// second checkout's crates map onto the first's files; the second checkout's sources are
/// touched after the first build, which makes cargo compile them again, and the test
/// requires both binaries to have been written again by the second build.
#[test]
#[ignore = "two cold release builds; run by `cargo xtask test`"]
fn artifacts_are_identical_from_two_checkouts() {
    let work = tempfile::Builder::new()
        .prefix("czero-dist-")
        .tempdir_in("/tmp")
        .unwrap();
    let a = work.path().join("a");
    let b = work.path().join("second-checkout").join("custodian-zero");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    snapshot(&a);
    // B is copied from A, so both see the same sources even while the tree is being edited.
    copy_tree(&a, &b);

    let target = work.path().join("target");
    let roots = [a.as_path(), b.as_path()];
    let first = produce(&plan(&a, &roots, &target), &a.join("target/dist")).unwrap();
    report(&first);
    let written = |bin: &Path| std::fs::metadata(bin).unwrap().modified().unwrap();
    let first_written = [&first.binaries.bootstrap, &first.binaries.worker].map(|b| written(b));
    touch_tree(&b);
    let second = produce(&plan(&b, &roots, &target), &b.join("target/dist")).unwrap();
    for (bin, before) in [&second.binaries.bootstrap, &second.binaries.worker]
        .into_iter()
        .zip(first_written)
    {
        assert!(
            written(bin) > before,
            "{} was not built again from the second checkout",
            bin.display()
        );
    }
    assert_eq!(first.zip_sha256, second.zip_sha256, "invoker.zip differs");
    for (one, two) in [(&first.slim, &second.slim), (&first.full, &second.full)] {
        let name = &one.reference;
        assert_eq!(one.manifest_digest, two.manifest_digest, "{name} differs");
        assert_eq!(
            one.archive_sha256, two.archive_sha256,
            "{name}'s docker archive differs"
        );
        let files = |layout: &Path| {
            let mut v: Vec<_> = walk(layout)
                .into_iter()
                .map(|(p, d)| (p, digest(&d)))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            files(&one.layout),
            files(&two.layout),
            "{name}'s layouts differ"
        );
        assert!(
            one.compressed_size <= one.goal,
            "{name}: {} bytes compressed, over its goal of {}",
            one.compressed_size,
            one.goal
        );
    }

    // Static, and no build path in the shipped binaries (produce() refuses both; check the
    // bytes here too). The second build wrote its binaries over the first's, in the same
    // place; the images hold the first's.
    for bin in [&second.binaries.bootstrap, &second.binaries.worker] {
        let bytes = std::fs::read(bin).unwrap();
        assert!(
            !build::needs_loader(&bytes).unwrap(),
            "{} needs a loader",
            bin.display()
        );
        let target = target.to_str().unwrap();
        for needle in [
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            target,
            "/root/",
            "/home/",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} contains {needle}",
                bin.display()
            );
        }
    }

    let version = run_in_empty_root(&first.slim, &["/custodian-worker", "--version"]);
    assert!(version.starts_with("custodian-worker "), "{version}");
    // The full image's interpreter, in a root with nothing but its layers.
    let c7n = run_in_empty_root(
        &first.full,
        &[
            "/usr/bin/python3.11",
            "-c",
            "import c7n.version, boto3; from c7n.resources import load_resources; load_resources(('aws.security-group',)); print(c7n.version.version)",
        ],
    );
    assert_eq!(c7n, "0.9.53");
    let cli = run_in_empty_root(&first.full, &["/usr/bin/custodian", "version"]);
    assert_eq!(cli, "0.9.53");
    if docker_available() {
        run_image_in_docker(&first);
    } else {
        assert!(
            !super::docker_required(),
            "{} is set but no Docker engine answers",
            super::DOCKER_REQUIRED_VAR
        );
        eprintln!("no Docker engine: the images were run in an empty root only");
    }
}

fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            for (p, d) in walk(&entry.path()) {
                out.push((format!("{}/{p}", entry.file_name().to_string_lossy()), d));
            }
        } else {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    out
}

/// Unpacks the image's layers in order into an empty directory and runs `argv` there under
/// `chroot` with the image's environment and nothing else: no loader, no libc, nothing but
/// the layers. Returns the trimmed stdout.
fn run_in_empty_root(image: &ImageArtifacts, argv: &[&str]) -> String {
    let blob = |digest: &str| {
        std::fs::read(
            image
                .layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&image.manifest_digest)).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let root = tempfile::tempdir().unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let bytes = blob(layer["digest"].as_str().unwrap());
        let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
        archive.set_overwrite(true);
        archive.unpack(root.path()).unwrap();
    }
    // Resolve `chroot` from our PATH: after env_clear() the child has none, and std looks
    // the program up in the child's environment.
    let find = |name: &str| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    let chroot = find("chroot").expect("chroot (coreutils) is installed");
    // `env -i K=V ... chroot ROOT ARGV`: only the image's environment reaches the program
    // (sudo would drop variables set on it). chroot needs root: CI runners run as a user
    // with password-less sudo.
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut cmd = if is_root {
        Command::new(find("env").expect("env (coreutils) is installed"))
    } else {
        let mut c = Command::new(find("sudo").expect("root, or sudo, to chroot"));
        c.arg("-n")
            .arg(find("env").expect("env (coreutils) is installed"));
        c
    };
    cmd.arg("-i").env_clear();
    for var in config["config"]["Env"].as_array().unwrap() {
        cmd.arg(var.as_str().unwrap());
    }
    cmd.arg(chroot).arg(root.path()).args(argv);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{argv:?} in an empty root with {}'s layers: {}\n{}{}",
        image.reference,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    eprintln!("{} in an empty root: {argv:?} → {stdout}", image.reference);
    stdout
}

/// Loads both images (they stay loaded: `cargo xtask test` then runs them as containers, see
/// `dist::container_tests`) and runs the worker's `--version` in each.
fn run_image_in_docker(artifacts: &Artifacts) {
    for image in [&artifacts.slim, &artifacts.full] {
        let load = Command::new("docker")
            .arg("load")
            .arg("-i")
            .arg(&image.archive)
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "docker load: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let run = Command::new("docker")
            .args(["run", "--rm", "--network", "host"])
            .arg(&image.reference)
            .arg("--version")
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "docker run {}: {}\n{}",
            image.reference,
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        let inspect = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}"])
            .arg(&image.reference)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&inspect.stdout).trim(),
            image.config_digest,
            "Docker's image id of {} is not the config digest",
            image.reference
        );
    }
}
