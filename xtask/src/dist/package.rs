//! Byte-for-byte deterministic packaging: the Lambda zip, the worker image's layer, its OCI
//! image layout and a `docker load`-able archive of the same blobs.
//!
//! Every timestamp, owner, mode and ordering is fixed here rather than taken from the file
//! system, so the output depends only on the binaries, the CA bundle and `SOURCE_DATE_EPOCH`.

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{Cursor, Write};
use std::path::Path;

/// The Lambda custom runtime's entry point inside the zip.
pub const LAMBDA_ENTRY: &str = "bootstrap";
/// Where the worker binary lives in the image, and its entry point.
pub const WORKER_PATH: &str = "custodian-worker";
/// The CA bundle path inside the image (Debian's layout, which rustls-native-certs and
/// `SSL_CERT_FILE` users expect).
pub const CA_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// The non-root user the worker runs as (the distroless `nonroot` convention).
pub const USER: &str = "65532:65532";
/// The tag carried by the image layout and the docker archive.
pub const IMAGE_NAME: &str = "custodian-worker";
pub const IMAGE_TAG: &str = "latest";

const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The Lambda zip: one entry `bootstrap`, mode 0755, DOS time 1980-01-01 00:00, no extra
/// fields (no extended timestamps, no uid/gid), deflated.
pub fn lambda_zip(bootstrap: &[u8]) -> Result<Vec<u8>> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .system(zip::System::Unix)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    writer
        .start_file(LAMBDA_ENTRY, options)
        .context("zip: could not start the bootstrap entry")?;
    writer
        .write_all(bootstrap)
        .context("zip: could not write the bootstrap entry")?;
    Ok(writer
        .finish()
        .context("zip: could not write the central directory")?
        .into_inner())
}

/// One file or directory of the image's single layer.
#[derive(Debug, Clone)]
pub struct LayerEntry {
    /// Relative path without a leading `/`; directories end with `/`.
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

impl LayerEntry {
    pub fn dir(path: &str, mode: u32) -> Self {
        Self {
            path: format!("{}/", path.trim_end_matches('/')),
            mode,
            contents: Vec::new(),
        }
    }

    pub fn file(path: &str, mode: u32, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            contents: contents.into(),
        }
    }

    fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }
}

/// The files of the worker's root file system: the static binary, CA certificates, a
/// non-root user, `/etc/hosts` and `nsswitch.conf` so `localhost` resolves from the file
/// (without them glibc asks DNS first and stalls in an empty root), and a writable `/tmp`.
pub fn worker_root(worker: &[u8], ca_bundle: &[u8]) -> Vec<LayerEntry> {
    vec![
        LayerEntry::file(WORKER_PATH, 0o755, worker),
        LayerEntry::dir("etc", 0o755),
        LayerEntry::file(
            "etc/group",
            0o644,
            "root:x:0:\nnonroot:x:65532:\n".as_bytes(),
        ),
        LayerEntry::file(
            "etc/hosts",
            0o644,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".as_bytes(),
        ),
        LayerEntry::file("etc/nsswitch.conf", 0o644, "hosts: files dns\n".as_bytes()),
        LayerEntry::file(
            "etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
                .as_bytes(),
        ),
        LayerEntry::dir("etc/ssl", 0o755),
        LayerEntry::dir("etc/ssl/certs", 0o755),
        LayerEntry::file(CA_PATH, 0o644, ca_bundle),
        LayerEntry::dir("home", 0o755),
        LayerEntry::dir("home/nonroot", 0o700),
        LayerEntry::dir("tmp", 0o1777),
    ]
}

/// A tar of `entries`, sorted by path, owned by root (except the non-root user's home), every
/// mtime `mtime`, no user or group names, ustar format.
pub fn tar(entries: &[LayerEntry], mtime: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&LayerEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut builder = tar::Builder::new(Vec::new());
    for entry in sorted {
        let mut header = tar::Header::new_ustar();
        header.set_mode(entry.mode);
        header.set_mtime(mtime);
        let owner = if entry.path.starts_with("home/nonroot") {
            65532
        } else {
            0
        };
        header.set_uid(owner);
        header.set_gid(owner);
        if entry.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(entry.contents.len() as u64);
        }
        builder
            .append_data(&mut header, &entry.path, entry.contents.as_slice())
            .with_context(|| format!("tar: could not add {}", entry.path))?;
    }
    builder.into_inner().context("tar: could not finish")
}

/// gzip with a fixed header: mtime 0, no file name, best compression.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(bytes).context("gzip: write failed")?;
    encoder.finish().context("gzip: finish failed")
}

/// The blobs of a one-layer image and the descriptors that tie them together.
#[derive(Debug, Clone)]
pub struct Image {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub index: Vec<u8>,
}

impl Image {
    /// Builds the image from the root file system entries.
    pub fn new(entries: &[LayerEntry], mtime: u64) -> Result<Self> {
        let layer_tar = tar(entries, mtime)?;
        let layer = gzip(&layer_tar)?;
        let config = to_json(&json!({
            "created": "1970-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": USER,
                "Env": [
                    "PATH=/",
                    format!("SSL_CERT_FILE=/{CA_PATH}"),
                ],
                "Entrypoint": [format!("/{WORKER_PATH}")],
                "WorkingDir": "/tmp",
            },
            "rootfs": {"type": "layers", "diff_ids": [digest(&layer_tar)]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "cargo xtask dist"}],
        }))?;
        let manifest = to_json(&json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": MT_LAYER, "digest": digest(&layer), "size": layer.len()}],
        }))?;
        let index = to_json(&json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [{
                "mediaType": MT_MANIFEST,
                "digest": digest(&manifest),
                "size": manifest.len(),
                "annotations": {
                    "io.containerd.image.name": format!("{IMAGE_NAME}:{IMAGE_TAG}"),
                    "org.opencontainers.image.ref.name": IMAGE_TAG,
                },
            }],
        }))?;
        Ok(Self {
            layer,
            config,
            manifest,
            index,
        })
    }

    /// `(path, bytes)` of every file of the OCI image layout, sorted by path.
    pub fn layout_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![
            (blob_path(&self.config), self.config.clone()),
            (blob_path(&self.layer), self.layer.clone()),
            (blob_path(&self.manifest), self.manifest.clone()),
            ("index.json".to_owned(), self.index.clone()),
            (
                "oci-layout".to_owned(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
        ];
        files.sort();
        files
    }

    /// Writes the OCI image layout into `dir` (replacing what was there).
    pub fn write_layout(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("could not clear {}", dir.display()))?;
        }
        for (path, bytes) in self.layout_files() {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("could not create {}", parent.display()))?;
            }
            std::fs::write(&path, bytes)
                .with_context(|| format!("could not write {}", path.display()))?;
        }
        Ok(())
    }

    /// A tar that `docker load` reads on any engine: the OCI layout (Docker ≥ 25, skopeo's
    /// `oci-archive:`) plus the legacy `manifest.json` that older engines (20.10) use.
    pub fn docker_archive(&self, mtime: u64) -> Result<Vec<u8>> {
        let legacy = to_json(&json!([{
            "Config": blob_path(&self.config),
            "RepoTags": [format!("{IMAGE_NAME}:{IMAGE_TAG}")],
            "Layers": [blob_path(&self.layer)],
        }]))?;
        let mut entries = vec![
            LayerEntry::dir("blobs", 0o755),
            LayerEntry::dir("blobs/sha256", 0o755),
            LayerEntry::file("manifest.json", 0o644, legacy),
        ];
        for (path, bytes) in self.layout_files() {
            entries.push(LayerEntry::file(&path, 0o644, bytes));
        }
        tar(&entries, mtime)
    }

    /// The image's identity: the manifest digest (what a registry reports after a push).
    pub fn manifest_digest(&self) -> String {
        digest(&self.manifest)
    }

    /// The image ID `docker images` shows: the config digest.
    pub fn config_digest(&self) -> String {
        digest(&self.config)
    }
}

fn blob_path(bytes: &[u8]) -> String {
    format!("blobs/sha256/{}", hex::encode(Sha256::digest(bytes)))
}

fn to_json(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).context("could not serialise image JSON")
}
