//! The full image's CPython, from Debian 12's own packages: each `.deb` pinned in
//! `xtask/src/dist/debian.lock` is fetched from the URL the lock records (Debian's own
//! mirror, so the host needs no Debian apt configuration), or else with `apt-get download`
//! (nothing else can be pulled here: no registry, no `FROM python`), checked against its
//! sha256, and its data
//! tar read with `dpkg-deb --fsys-tarfile` into layer entries, without touching the disk's
//! timestamps or owners. What the worker never needs (documentation, test suites, extension
//! modules for terminals and databases, locale converters) is left out, by the table below.

use super::package::{Body, LayerEntry};
use crate::lock::{self, Deb};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the interpreter lands in the image.
pub const PYTHON: &str = "usr/bin/python3.11";
/// Its standard library.
pub const STDLIB: &str = "usr/lib/python3.11";
/// The directories the loader searches by default (Debian's multiarch library paths).
pub const LIBRARY_DIRS: [&str; 2] = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"];
/// The dynamic loader, by its real path (`/lib64/…` is a symbolic link to it).
pub const LOADER: &str = "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";

/// Paths left out of the layer, with the reason. A path is left out with everything below
/// it. Each must match something, so a stale line fails the build instead of lingering.
pub const EXCLUDED: &[(&str, &str)] = &[
    (
        "usr/share",
        "documentation, manual pages, lintian overrides",
    ),
    ("usr/lib/binfmt.d", "binfmt registration for the host"),
    (
        "etc/ld.so.conf.d",
        "read by ldconfig only; the image has no ld.so.cache",
    ),
    (
        "usr/lib/x86_64-linux-gnu/gconv",
        "iconv converters: Python has its own codecs",
    ),
    (
        "usr/lib/x86_64-linux-gnu/engines-3",
        "OpenSSL engines: nothing configures one",
    ),
    (
        "usr/lib/python3.11/test",
        "the standard library's test suite",
    ),
    ("usr/lib/python3.11/pydoc_data", "pydoc's topic index"),
    (
        "usr/lib/python3.11/venv",
        "virtualenv creation (no ensurepip here)",
    ),
    (
        "usr/lib/python3.11/turtle.py",
        "turtle graphics need tkinter",
    ),
    (
        "lib/x86_64-linux-gnu/libBrokenLocale.so.1",
        "glibc debugging and compatibility",
    ),
    (
        "lib/x86_64-linux-gnu/libc_malloc_debug.so.0",
        "glibc debugging",
    ),
    ("lib/x86_64-linux-gnu/libmemusage.so", "glibc profiling"),
    ("lib/x86_64-linux-gnu/libpcprofile.so", "glibc profiling"),
    ("lib/x86_64-linux-gnu/libthread_db.so.1", "debugger support"),
];

/// Extension modules left out: they link libraries the image does not carry (curses,
/// readline, Berkeley DB, NIS, crypt) or exist only for CPython's own tests.
pub const EXCLUDED_MODULES: &[&str] = &[
    "_crypt",
    "_ctypes_test",
    "_curses",
    "_curses_panel",
    "_dbm",
    "_testbuffer",
    "_testcapi",
    "_testclinic",
    "_testimportmultiple",
    "_testinternalcapi",
    "_testmultiphase",
    "_xxsubinterpreters",
    "_xxtestfuzz",
    "nis",
    "ossaudiodev",
    "readline",
    "xxlimited",
    "xxlimited_35",
];

fn excluded_paths() -> Vec<String> {
    EXCLUDED
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .chain(
            EXCLUDED_MODULES
                .iter()
                .map(|m| format!("{STDLIB}/lib-dynload/{m}.cpython-311-x86_64-linux-gnu.so")),
        )
        .collect()
}

fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Fetches every locked package into `cache` (once; later builds only re-check the hashes)
/// and returns the `.deb` paths in lock order.
pub fn fetch(debs: &[Deb], cache: &Path) -> Result<Vec<PathBuf>> {
    let dir = cache.join("debs");
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let path_of = |d: &Deb| {
        dir.join(format!(
            "{}_{}_amd64.deb",
            d.package,
            d.version.replace(':', "%3a")
        ))
    };
    let missing: Vec<&Deb> = debs
        .iter()
        .filter(|d| !verified(&path_of(d), &d.sha256))
        .collect();
    if !missing.is_empty()
        && let Err(first) = download(&missing, &dir)
    {
        // The lists may predate the lock (a fresh machine): refresh them once, as root.
        if !is_root() {
            return Err(first);
        }
        eprintln!("{first:#}\n$ apt-get update (then retrying)");
        let updated = Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success());
        if !updated {
            return Err(first.context("apt-get update failed"));
        }
        download(&missing, &dir)?;
    }
    let mut paths = Vec::new();
    for d in debs {
        let path = path_of(d);
        let bytes =
            std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != d.sha256 {
            // Leave no bad file in the cache for the next build to trust.
            let _ = std::fs::remove_file(&path);
            bail!(
                "{} {}: sha256 {got}, but {} pins {}: the mirror serves other bytes under this version; refresh with `apt-get update && cargo xtask lock debian`",
                d.package,
                d.version,
                lock::DEBIAN_LOCK,
                d.sha256
            );
        }
        paths.push(path);
    }
    Ok(paths)
}

fn verified(path: &Path, sha256: &str) -> bool {
    std::fs::read(path).is_ok_and(|b| hex::encode(Sha256::digest(&b)) == sha256)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Each package from its locked URL (curl), then `apt-get download` for any left.
fn download(debs: &[&Deb], dir: &Path) -> Result<()> {
    let mut left: Vec<&Deb> = Vec::new();
    for d in debs {
        let name = format!("{}_{}_amd64.deb", d.package, d.version.replace(':', "%3a"));
        let fetched = d.url.as_deref().is_some_and(|url| {
            eprintln!("$ curl -fsSL --retry 3 -o {name} {url}");
            Command::new("curl")
                .args(["-fsSL", "--retry", "3", "-o"])
                .arg(dir.join(&name))
                .arg(url)
                .status()
                .is_ok_and(|s| s.success())
        });
        if !fetched {
            left.push(d);
        }
    }
    if left.is_empty() {
        return Ok(());
    }
    apt_download(&left, dir)
}

/// `apt-get download` of each package at its pinned version, renamed into `dir`.
fn apt_download(debs: &[&Deb], dir: &Path) -> Result<()> {
    let scratch = dir.join("download");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("could not clear {}", scratch.display()))?;
    }
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("could not create {}", scratch.display()))?;
    let specs: Vec<String> = debs
        .iter()
        .map(|d| format!("{}:amd64={}", d.package, d.version))
        .collect();
    eprintln!("$ apt-get download {}", specs.join(" "));
    let out = Command::new("apt-get")
        .current_dir(&scratch)
        // Root downloads into a directory the `_apt` user cannot write; say so once, quietly.
        .args(["-o", "APT::Sandbox::User=root", "download", "-q"])
        .args(&specs)
        .output()
        .context("could not run apt-get (the full image needs Debian's apt)")?;
    if !out.status.success() {
        bail!(
            "apt-get download failed: {}\nA pinned version is not on the configured mirror: refresh {} with `apt-get update && cargo xtask lock debian`",
            String::from_utf8_lossy(&out.stderr).trim(),
            lock::DEBIAN_LOCK
        );
    }
    for d in debs {
        // apt names the file `<package>_<version, ':' as %3a>_<arch>.deb`.
        let name = format!("{}_{}_amd64.deb", d.package, d.version.replace(':', "%3a"));
        let from = scratch.join(&name);
        std::fs::rename(&from, dir.join(&name))
            .with_context(|| format!("apt-get download did not write {}", from.display()))?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// The union of the packages' files, less [`EXCLUDED`] and [`EXCLUDED_MODULES`], as layer
/// entries keyed by path (directories without their trailing `/`).
pub fn unpack(debs: &[PathBuf]) -> Result<BTreeMap<String, LayerEntry>> {
    let mut tree: BTreeMap<String, LayerEntry> = BTreeMap::new();
    let excluded = excluded_paths();
    let mut used = vec![false; excluded.len()];
    for deb in debs {
        let out = Command::new("dpkg-deb")
            .arg("--fsys-tarfile")
            .arg(deb)
            .output()
            .context("could not run dpkg-deb (the full image needs Debian's dpkg)")?;
        if !out.status.success() {
            bail!(
                "dpkg-deb --fsys-tarfile {}: {}",
                deb.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut archive = tar::Archive::new(out.stdout.as_slice());
        let entries = archive
            .entries()
            .with_context(|| format!("{}: not a tar", deb.display()))?;
        for entry in entries {
            let mut entry = entry.with_context(|| format!("{}: bad tar entry", deb.display()))?;
            let raw = entry
                .path()
                .with_context(|| format!("{}: bad path", deb.display()))?
                .to_string_lossy()
                .into_owned();
            let path = raw
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned();
            if path.is_empty() {
                continue;
            }
            if path.split('/').any(|c| c == ".." || c.is_empty()) {
                bail!("{}: unsafe path {raw}", deb.display());
            }
            if let Some(i) = excluded.iter().position(|x| is_under(&path, x)) {
                used[i] = true;
                continue;
            }
            let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
            let kind = entry.header().entry_type();
            let new = if kind.is_dir() {
                LayerEntry::dir(&path, mode)
            } else if kind.is_symlink() {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .with_context(|| format!("{}: link {path} without a target", deb.display()))?
                    .to_string_lossy()
                    .into_owned();
                LayerEntry::symlink(&path, &target)
            } else if kind.is_hard_link() {
                // A second name for a file already read: store the bytes again (tar order
                // puts the first name first).
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .with_context(|| {
                        format!("{}: hard link {path} without a target", deb.display())
                    })?
                    .to_string_lossy()
                    .trim_start_matches("./")
                    .to_owned();
                let Some(first) = tree.get(&target) else {
                    bail!(
                        "{}: hard link {path} to {target}, which is not (yet) unpacked",
                        deb.display()
                    );
                };
                LayerEntry::file(&path, mode, first.contents().to_vec())
            } else if kind.is_file() {
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("{}: could not read {path}", deb.display()))?;
                LayerEntry::file(&path, mode, bytes)
            } else {
                bail!(
                    "{}: {path} is a {kind:?}, not a file, directory or link",
                    deb.display()
                );
            };
            match tree.get(&path) {
                // Packages share directories (usr/, usr/lib/, …).
                Some(old) if old.body == Body::Dir && new.body == Body::Dir => {}
                Some(old) if old.body != new.body || old.mode != new.mode => {
                    bail!(
                        "{path} differs between two packages (the second is {})",
                        deb.display()
                    )
                }
                _ => {
                    tree.insert(path, new);
                }
            }
        }
    }
    let stale: Vec<&String> = excluded
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(x, _)| x)
        .collect();
    if !stale.is_empty() {
        bail!("exclusions that match nothing in the packages (update dist/debian.rs): {stale:?}");
    }
    for required in [PYTHON, LOADER, "lib64/ld-linux-x86-64.so.2", STDLIB] {
        if !tree.contains_key(required) {
            bail!("the packages of {} have no {required}", lock::DEBIAN_LOCK);
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_cover_a_path_and_what_is_below_it() {
        assert!(is_under("usr/share", "usr/share"));
        assert!(is_under("usr/share/doc/libc6/copyright", "usr/share"));
        assert!(!is_under("usr/shared", "usr/share"));
        assert!(!is_under("usr", "usr/share"));
        let paths = excluded_paths();
        assert!(paths.contains(
            &"usr/lib/python3.11/lib-dynload/_curses.cpython-311-x86_64-linux-gnu.so".to_owned()
        ));
        // `_curses` must not also drop `_curses_panel` by prefix (each is listed on its own).
        assert!(!is_under(
            "usr/lib/python3.11/lib-dynload/_curses_panel.cpython-311-x86_64-linux-gnu.so",
            "usr/lib/python3.11/lib-dynload/_curses.cpython-311-x86_64-linux-gnu.so"
        ));
    }
}
