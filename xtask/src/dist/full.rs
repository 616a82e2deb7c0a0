//! The full worker image: the slim image's layer unchanged, then a layer with CPython 3.11
//! from Debian's packages ([`debian`]), then a layer with c7n and its dependencies from the
//! locked wheels ([`wheels`]). The worker starts the Python driver as `$CUSTODIAN_PYTHON`;
//! `custodian` is on `PATH` as well.
//!
//! Bytecode: every module is compiled once at build time with the image's own interpreter
//! (`compileall --invalidation-mode unchecked-hash`, `PYTHONHASHSEED=0`, paths as in the
//! image). Importing c7n, boto3 and the security-group resources took 1.10 s from sources
//! and 0.23 s from these `.pyc` files (Debian's interpreter in an unpacked root, 2 idle
//! cores; 2.2 s against 0.6 s in a container on a busy machine); the driver pays that on
//! every start, so the 23 MB of `.pyc` (7.9 MB of the image compressed) are worth it.
//! Unchecked-hash `.pyc` carry no timestamp (the layer stays reproducible) and are never
//! revalidated against their sources, which nothing can change in an image;
//! `PYTHONDONTWRITEBYTECODE=1` keeps the interpreter from trying to write on a read-only root.

use super::package::{Body, LayerEntry};
use super::{debian, elf, wheels};
use crate::lock;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The full image's tag.
pub const TAG: &str = "full";

/// The environment of the full image: the slim image's (with `/usr/bin` on `PATH` for
/// `custodian`), the interpreter and where c7n is, and a Python that writes nothing outside
/// `/tmp` (no bytecode, no user site, `HOME` on the one writable mount).
pub fn env() -> Vec<String> {
    vec![
        "PATH=/:/usr/bin".to_owned(),
        format!("SSL_CERT_FILE=/{}", super::package::CA_PATH),
        format!("CUSTODIAN_PYTHON=/{}", debian::PYTHON),
        format!("PYTHONPATH=/{}", wheels::SITE_PACKAGES),
        "PYTHONDONTWRITEBYTECODE=1".to_owned(),
        "PYTHONNOUSERSITE=1".to_owned(),
        "HOME=/tmp".to_owned(),
    ]
}

/// The two layers the full image adds: Python, then site-packages.
#[derive(Debug)]
pub struct Layers {
    pub python: Vec<LayerEntry>,
    pub site_packages: Vec<LayerEntry>,
}

/// Fetches (or reuses from `cache`) the locked packages and wheels of `root`, unpacks them,
/// compiles their bytecode in `stage` (removed afterwards) and checks every shared object's
/// libraries are in the image. `pip_python` runs pip for a wheel the cache lacks.
pub fn layers(root: &Path, cache: &Path, pip_python: &Path, stage: &Path) -> Result<Layers> {
    let debs = lock::read_debian(root)?;
    let deb_paths = debian::fetch(&debs, cache)?;
    let mut python = debian::unpack(&deb_paths)?;

    let locked = lock::read_requirements(root)?;
    let wheel_paths = wheels::fetch(pip_python, root, &locked, cache)?;
    let mut site = wheels::unpack(&wheel_paths, wheels::SITE_PACKAGES)?;
    wheels::add_parents(&mut site, wheels::CUSTODIAN_SCRIPT);
    site.insert(
        wheels::CUSTODIAN_SCRIPT.to_owned(),
        LayerEntry::file(
            wheels::CUSTODIAN_SCRIPT,
            0o755,
            wheels::custodian_script(debian::PYTHON),
        ),
    );

    compile(stage, &mut python, &mut site)?;
    check_libraries(&python, &site)?;
    Ok(Layers {
        python: python.into_values().collect(),
        site_packages: site.into_values().collect(),
    })
}

/// Writes both trees into `stage`, runs the staged interpreter's `compileall` over the
/// standard library and site-packages, and adds each `.pyc` to the tree its source is in.
fn compile(
    stage: &Path,
    python: &mut BTreeMap<String, LayerEntry>,
    site: &mut BTreeMap<String, LayerEntry>,
) -> Result<()> {
    if stage.exists() {
        std::fs::remove_dir_all(stage)
            .with_context(|| format!("could not clear {}", stage.display()))?;
    }
    std::fs::create_dir_all(stage)
        .with_context(|| format!("could not create {}", stage.display()))?;
    let stage = stage
        .canonicalize()
        .with_context(|| format!("could not resolve {}", stage.display()))?;
    for entry in python.values().chain(site.values()) {
        write_staged(&stage, entry)?;
    }

    // Run through the staged loader and libraries, so the result depends on the packages
    // only, not on the host's Python or libc.
    let libs: Vec<String> = debian::LIBRARY_DIRS
        .iter()
        .map(|d| stage.join(d).display().to_string())
        .collect();
    let out = Command::new(stage.join(debian::LOADER))
        .arg("--library-path")
        .arg(libs.join(":"))
        .arg(stage.join(debian::PYTHON))
        // No site: nothing but the standard library is imported while compiling.
        .args(["-S", "-m", "compileall", "-q", "-f"])
        .args(["--invalidation-mode", "unchecked-hash"])
        .arg("-s")
        .arg(&stage)
        .args(["-p", "/"])
        .arg(stage.join(debian::STDLIB))
        .arg(stage.join(wheels::SITE_PACKAGES))
        .env_clear()
        .env("PYTHONHOME", stage.join("usr"))
        // Sets and frozensets in constants are marshalled in hash order.
        .env("PYTHONHASHSEED", "0")
        // compileall writes what it is told to; this stops the imports it makes from
        // leaving timestamp-based .pyc files that it would then take as up to date.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("LC_ALL", "C")
        .output()
        .context("could not run the staged Python")?;
    if !out.status.success() {
        bail!(
            "compileall in {} failed: {}\n{}{}",
            stage.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let needle = stage.display().to_string();
    let mut compiled = 0;
    for dir in [debian::STDLIB, wheels::SITE_PACKAGES] {
        for (rel, bytes) in pyc_files(&stage, &stage.join(dir))? {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                bail!("{rel} embeds the staging path {needle}");
            }
            let tree = if rel.starts_with(wheels::SITE_PACKAGES) {
                &mut *site
            } else {
                &mut *python
            };
            wheels::add_parents(tree, &rel);
            tree.insert(rel.clone(), LayerEntry::file(&rel, 0o644, bytes));
            compiled += 1;
        }
    }
    std::fs::remove_dir_all(&stage)
        .with_context(|| format!("could not remove {}", stage.display()))?;
    if compiled == 0 {
        bail!("compileall wrote no .pyc file");
    }
    Ok(())
}

fn write_staged(stage: &Path, entry: &LayerEntry) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = stage.join(entry.path.trim_end_matches('/'));
    let context = || format!("could not stage {}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(context)?;
    }
    match &entry.body {
        Body::Dir => std::fs::create_dir_all(&path).with_context(context)?,
        Body::File(bytes) => {
            std::fs::write(&path, bytes).with_context(context)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode | 0o200))
                .with_context(context)?;
        }
        // An absolute target points into the stage, as it will point into the image's root.
        Body::Symlink(target) => {
            let target = match target.strip_prefix('/') {
                Some(inside) => stage.join(inside),
                None => target.into(),
            };
            std::os::unix::fs::symlink(target, &path).with_context(context)?;
        }
    }
    Ok(())
}

/// Every `__pycache__/*.pyc` below `dir`, as (path relative to `stage`, bytes), sorted.
fn pyc_files(stage: &Path, dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("could not list {}", d.display()))?
        {
            let entry = entry.with_context(|| format!("could not list {}", d.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("could not stat {}", path.display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && path.extension().is_some_and(|e| e == "pyc")
                && d.file_name().is_some_and(|n| n == "__pycache__")
            {
                let rel = path
                    .strip_prefix(stage)
                    .with_context(|| format!("{} is outside the stage", path.display()))?
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                found.push((rel, bytes));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Every `DT_NEEDED` of every ELF file in the two layers must name a file or link in the
/// loader's default directories: what `ldd` would check, for the whole tree at once.
fn check_libraries(
    python: &BTreeMap<String, LayerEntry>,
    site: &BTreeMap<String, LayerEntry>,
) -> Result<()> {
    let available: std::collections::BTreeSet<&str> = python
        .keys()
        .filter_map(|p| {
            let (dir, name) = p.rsplit_once('/')?;
            debian::LIBRARY_DIRS.contains(&dir).then_some(name)
        })
        .collect();
    let mut missing = Vec::new();
    for entry in python.values().chain(site.values()) {
        let bytes = entry.contents();
        if !elf::is_elf(bytes) {
            continue;
        }
        let needed = elf::needed(bytes).with_context(|| entry.path.clone())?;
        for lib in needed {
            if !available.contains(lib.as_str()) {
                missing.push(format!("{} needs {lib}", entry.path));
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "shared libraries missing from the full image (add their package to lock::DEBIAN_PACKAGES or keep them in dist/debian.rs):\n{}",
            missing.join("\n")
        );
    }
    Ok(())
}
