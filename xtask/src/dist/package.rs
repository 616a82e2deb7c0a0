//! Byte-for-byte deterministic packaging: the Lambda zip, the worker images' layers, their OCI
//! image layouts and `docker load`-able archives of the same blobs.
//!
//! Every timestamp, owner, mode and ordering is fixed here rather than taken from the file
//! system, so the output depends only on the layers' contents and `SOURCE_DATE_EPOCH`.

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
/// The repository name both images carry in their layouts and docker archives.
pub const IMAGE_NAME: &str = "custodian-worker";
/// The slim image's tag (the worker alone).
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

/// What a layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Dir,
    File(Vec<u8>),
    /// A symbolic link to this target, kept as written (absolute or relative).
    Symlink(String),
}

/// One file, directory or symbolic link of an image layer.
#[derive(Debug, Clone)]
pub struct LayerEntry {
    /// Relative path without a leading `/`; directories end with `/`.
    pub path: String,
    pub mode: u32,
    pub body: Body,
}

impl LayerEntry {
    pub fn dir(path: &str, mode: u32) -> Self {
        Self {
            path: format!("{}/", path.trim_end_matches('/')),
            mode,
            body: Body::Dir,
        }
    }

    pub fn file(path: &str, mode: u32, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            body: Body::File(contents.into()),
        }
    }

    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.to_owned(),
            mode: 0o777,
            body: Body::Symlink(target.to_owned()),
        }
    }

    /// The bytes a regular file holds (empty for directories and links).
    pub fn contents(&self) -> &[u8] {
        match &self.body {
            Body::File(bytes) => bytes,
            Body::Dir | Body::Symlink(_) => &[],
        }
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
        let added = match &entry.body {
            Body::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, &entry.path, std::io::empty())
            }
            Body::File(contents) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(contents.len() as u64);
                builder.append_data(&mut header, &entry.path, contents.as_slice())
            }
            Body::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &entry.path, target)
            }
        };
        added.with_context(|| format!("tar: could not add {}", entry.path))?;
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

/// One layer to build: its entries and the line its history entry carries.
#[derive(Debug, Clone)]
pub struct Layer {
    pub entries: Vec<LayerEntry>,
    pub created_by: String,
}

/// What distinguishes one image from another beyond its layers.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The tag under [`IMAGE_NAME`].
    pub tag: String,
    /// The configuration's `Env`, in order.
    pub env: Vec<String>,
}

impl ImageSpec {
    /// The slim image: the static worker and nothing that needs a loader.
    pub fn slim() -> Self {
        Self {
            tag: IMAGE_TAG.to_owned(),
            env: slim_env(),
        }
    }
}

/// The environment every worker image sets.
pub fn slim_env() -> Vec<String> {
    vec!["PATH=/".to_owned(), format!("SSL_CERT_FILE=/{CA_PATH}")]
}

/// The blobs of an image and the descriptors that tie them together.
#[derive(Debug, Clone)]
pub struct Image {
    pub tag: String,
    /// The gzipped layers, bottom first.
    pub layers: Vec<Vec<u8>>,
    /// The size of each layer before compression.
    pub layer_tar_sizes: Vec<u64>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub index: Vec<u8>,
}

impl Image {
    /// Builds the image from its layers, bottom first.
    pub fn new(layers: &[Layer], spec: &ImageSpec, mtime: u64) -> Result<Self> {
        let mut gzipped = Vec::new();
        let mut diff_ids = Vec::new();
        let mut layer_tar_sizes = Vec::new();
        for layer in layers {
            let layer_tar = tar(&layer.entries, mtime)?;
            diff_ids.push(digest(&layer_tar));
            layer_tar_sizes.push(layer_tar.len() as u64);
            gzipped.push(gzip(&layer_tar)?);
        }
        let history: Vec<Value> = layers
            .iter()
            .map(|l| json!({"created": "1970-01-01T00:00:00Z", "created_by": l.created_by}))
            .collect();
        let config = to_json(&json!({
            "created": "1970-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": USER,
                "Env": spec.env,
                "Entrypoint": [format!("/{WORKER_PATH}")],
                "WorkingDir": "/tmp",
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))?;
        let layer_descriptors: Vec<Value> = gzipped
            .iter()
            .map(|l| json!({"mediaType": MT_LAYER, "digest": digest(l), "size": l.len()}))
            .collect();
        let manifest = to_json(&json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": digest(&config), "size": config.len()},
            "layers": layer_descriptors,
        }))?;
        let index = to_json(&json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [{
                "mediaType": MT_MANIFEST,
                "digest": digest(&manifest),
                "size": manifest.len(),
                "annotations": {
                    "io.containerd.image.name": format!("{IMAGE_NAME}:{}", spec.tag),
                    "org.opencontainers.image.ref.name": spec.tag,
                },
            }],
        }))?;
        Ok(Self {
            tag: spec.tag.clone(),
            layers: gzipped,
            layer_tar_sizes,
            config,
            manifest,
            index,
        })
    }

    /// `name:tag` as Docker shows it after `docker load`.
    pub fn reference(&self) -> String {
        format!("{IMAGE_NAME}:{}", self.tag)
    }

    /// What a registry stores and a task pulls: the layers, the config and the manifest.
    pub fn compressed_size(&self) -> u64 {
        (self.layers.iter().map(Vec::len).sum::<usize>() + self.config.len() + self.manifest.len())
            as u64
    }

    /// The unpacked layers' tar size: roughly what the image takes on a host's disk.
    pub fn uncompressed_size(&self) -> u64 {
        self.layer_tar_sizes.iter().sum()
    }

    /// `(path, bytes)` of every file of the OCI image layout, sorted by path.
    pub fn layout_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![
            (blob_path(&self.config), self.config.clone()),
            (blob_path(&self.manifest), self.manifest.clone()),
            ("index.json".to_owned(), self.index.clone()),
            (
                "oci-layout".to_owned(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
        ];
        for layer in &self.layers {
            files.push((blob_path(layer), layer.clone()));
        }
        files.sort();
        // Two layers with the same bytes are one blob.
        files.dedup();
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
        let layers: Vec<String> = self.layers.iter().map(|l| blob_path(l)).collect();
        let legacy = to_json(&json!([{
            "Config": blob_path(&self.config),
            "RepoTags": [self.reference()],
            "Layers": layers,
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
