//! c7n and its dependencies for the full image: the wheels pinned in
//! `crates/driver/requirements.lock`, fetched by pip (`--require-hashes`, so the lock is
//! exercised as pip reads it), checked again here, and unpacked as pip would install them
//! into one site-packages directory, but with fixed modes and no timestamps: an entry's
//! mode is 0755 when the wheel marks it executable, else 0644.

use super::package::LayerEntry;
use crate::lock::{self, Wheel};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the wheels are unpacked in the image (`PYTHONPATH`).
pub const SITE_PACKAGES: &str = "opt/c7n/site-packages";
/// c7n's console script, as pip would write it, so `custodian` is on `PATH` too.
pub const CUSTODIAN_SCRIPT: &str = "usr/bin/custodian";

/// Fetches every locked wheel into `cache/wheels` (pip skips what is already there) and
/// returns their paths in lock order, each checked against the lock's sha256.
pub fn fetch(python: &Path, root: &Path, wheels: &[Wheel], cache: &Path) -> Result<Vec<PathBuf>> {
    let dir = cache.join("wheels");
    let all_there = wheels
        .iter()
        .all(|w| verified(&dir.join(w.file_name()), &w.sha256));
    if !all_there {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        let lock_path = root.join(lock::REQUIREMENTS_LOCK);
        eprintln!(
            "$ pip download --require-hashes --no-deps -r {}",
            lock_path.display()
        );
        let status = Command::new(python)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--require-hashes", "--no-deps", "--dest"])
            .arg(&dir)
            .args(lock::pip_target_args())
            .arg("-r")
            .arg(&lock_path)
            .status()
            .with_context(|| format!("could not run pip with {}", python.display()))?;
        if !status.success() {
            bail!(
                "pip could not download the wheels of {}: {status}",
                lock_path.display()
            );
        }
    }
    let mut paths = Vec::new();
    for w in wheels {
        let path = dir.join(w.file_name());
        let bytes =
            std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != w.sha256 {
            let _ = std::fs::remove_file(&path);
            bail!(
                "{}: sha256 {got}, but {} pins {}",
                path.display(),
                lock::REQUIREMENTS_LOCK,
                w.sha256
            );
        }
        paths.push(path);
    }
    Ok(paths)
}

fn verified(path: &Path, sha256: &str) -> bool {
    std::fs::read(path).is_ok_and(|b| hex::encode(Sha256::digest(&b)) == sha256)
}

/// Where a wheel member goes below site-packages, or `None` for what is not installed.
/// `<name>.data/purelib/` and `platlib/` go to the top as pip puts them; `scripts/` are left
/// out (jmespath's `jp.py`: the driver imports modules, it runs no scripts); any other
/// `.data` scheme (headers, data) is an error rather than a silently missing file.
fn install_path(member: &str) -> Result<Option<String>> {
    let mut parts = member.splitn(3, '/');
    let top = parts.next().unwrap_or_default();
    if top.ends_with(".data") {
        let scheme = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default();
        return match scheme {
            "purelib" | "platlib" if !rest.is_empty() => Ok(Some(rest.to_owned())),
            "scripts" => Ok(None),
            _ => bail!("{member}: the `{scheme}` scheme is not installed into the image"),
        };
    }
    Ok(Some(member.to_owned()))
}

/// The unpacked wheels as layer entries under `prefix`, keyed by path (directories without
/// their trailing `/`), with every parent directory.
pub fn unpack(wheels: &[PathBuf], prefix: &str) -> Result<BTreeMap<String, LayerEntry>> {
    let mut tree = BTreeMap::new();
    for wheel in wheels {
        let file = std::fs::File::open(wheel)
            .with_context(|| format!("could not open {}", wheel.display()))?;
        let mut archive = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a zip", wheel.display()))?;
        for i in 0..archive.len() {
            let mut member = archive
                .by_index(i)
                .with_context(|| format!("{}: entry {i}", wheel.display()))?;
            if member.is_dir() {
                continue;
            }
            let name = member
                .enclosed_name()
                .with_context(|| format!("{}: unsafe path in the wheel", wheel.display()))?
                .to_string_lossy()
                .into_owned();
            let Some(rel) = install_path(&name).with_context(|| format!("{}", wheel.display()))?
            else {
                continue;
            };
            let executable = member.unix_mode().is_some_and(|m| m & 0o111 != 0);
            let mut bytes = Vec::new();
            member
                .read_to_end(&mut bytes)
                .with_context(|| format!("{}: could not read {name}", wheel.display()))?;
            let path = format!("{prefix}/{rel}");
            if tree.contains_key(&path) {
                bail!(
                    "{path} is in two wheels (the second is {})",
                    wheel.display()
                );
            }
            add_parents(&mut tree, &path);
            tree.insert(
                path.clone(),
                LayerEntry::file(&path, if executable { 0o755 } else { 0o644 }, bytes),
            );
        }
    }
    Ok(tree)
}

/// Adds a 0755 directory entry for every parent of `path` not yet in `tree`.
pub fn add_parents(tree: &mut BTreeMap<String, LayerEntry>, path: &str) {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        end += i;
        let dir = &path[..end];
        tree.entry(dir.to_owned())
            .or_insert_with(|| LayerEntry::dir(dir, 0o755));
        end += 1;
    }
}

/// c7n's `custodian` entry point (`c7n.cli:main`) as pip's launcher writes it.
pub fn custodian_script(python: &str) -> Vec<u8> {
    format!(
        "#!/{python}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom c7n.cli import main\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit(main())\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_members_go_where_pip_puts_them() {
        assert_eq!(
            install_path("c7n/policy.py").unwrap().as_deref(),
            Some("c7n/policy.py")
        );
        assert_eq!(
            install_path("c7n-0.9.53.dist-info/METADATA")
                .unwrap()
                .as_deref(),
            Some("c7n-0.9.53.dist-info/METADATA")
        );
        assert_eq!(
            install_path("foo-1.0.data/platlib/foo/_x.so")
                .unwrap()
                .as_deref(),
            Some("foo/_x.so")
        );
        assert_eq!(
            install_path("jmespath-1.1.0.data/scripts/jp.py").unwrap(),
            None
        );
        assert!(install_path("foo-1.0.data/headers/foo.h").is_err());
    }

    #[test]
    fn parents_are_added_once() {
        let mut tree = BTreeMap::new();
        add_parents(&mut tree, "opt/c7n/site-packages/c7n/policy.py");
        add_parents(&mut tree, "opt/c7n/site-packages/c7n/cli.py");
        let keys: Vec<&str> = tree.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "opt",
                "opt/c7n",
                "opt/c7n/site-packages",
                "opt/c7n/site-packages/c7n"
            ]
        );
        assert!(
            tree.values()
                .all(|e| e.path.ends_with('/') && e.mode == 0o755)
        );
    }

    #[test]
    fn unpacking_fixes_modes_and_skips_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("demo-1.0-py3-none-any.whl");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        let opts = |mode| zip::write::SimpleFileOptions::default().unix_permissions(mode);
        use std::io::Write;
        writer.start_file("demo/__init__.py", opts(0o600)).unwrap();
        writer.write_all(b"x = 1\n").unwrap();
        writer.start_file("demo/_native.so", opts(0o775)).unwrap();
        writer.write_all(b"\x7fELF").unwrap();
        writer
            .start_file("demo-1.0.data/scripts/demo", opts(0o755))
            .unwrap();
        writer.write_all(b"#!python\n").unwrap();
        writer.finish().unwrap();

        let tree = unpack(&[wheel], "site").unwrap();
        let keys: Vec<&str> = tree.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "site",
                "site/demo",
                "site/demo/__init__.py",
                "site/demo/_native.so"
            ]
        );
        assert_eq!(tree["site/demo/__init__.py"].mode, 0o644);
        assert_eq!(tree["site/demo/_native.so"].mode, 0o755);
        assert_eq!(tree["site/demo/__init__.py"].contents(), b"x = 1\n");
    }
}
