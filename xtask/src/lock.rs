//! `cargo xtask lock`: the two lock files of the full worker image, and their readers.
//!
//! - `crates/driver/requirements.lock`: c7n and its dependency closure for CPython 3.11 on
//!   manylinux x86_64, one wheel each, pinned by version and sha256 in pip's
//!   `--require-hashes` format, each wheel's URL in a comment line below its hash (the Nix
//!   build fetches it from there). Regenerated from the test virtualenv: whatever c7n
//!   version `.venv` has is what the image gets, and the tests run the same one.
//! - `integration/moto/requirements.lock`: moto with its `server` extra (the AWS emulator of
//!   the tests) and the rest of its closure, in the same format, pinning nothing the c7n
//!   lock pins. The test virtualenv and the Nix checks' Python install both locks, so the
//!   two paths run one moto.
//! - `xtask/src/dist/debian.lock`: the Debian 12 packages the image's CPython is unpacked
//!   from, with exact versions and the sha256 of each `.deb`. Regenerated from apt's
//!   candidate versions (run `apt-get update` first).

use crate::{project_root, python};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Where the Python lock lives, relative to the project root.
pub const REQUIREMENTS_LOCK: &str = "crates/driver/requirements.lock";
/// Where the emulator's lock lives, relative to the project root.
pub const MOTO_LOCK: &str = "integration/moto/requirements.lock";
/// The root of the emulator's closure: moto with the extra its server needs.
pub const MOTO_ROOT: (&str, &[&str]) = ("moto", &["server"]);
/// Where the Debian lock lives, relative to the project root.
pub const DEBIAN_LOCK: &str = "xtask/src/dist/debian.lock";

/// The target the wheels are chosen for: CPython 3.11 on x86_64 with the glibc of Debian 12
/// (2.36). pip prefers the tags in the order given, so the newest manylinux comes first.
pub fn pip_target_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    .map(str::to_owned)
    .to_vec();
    for minor in (17..=36).rev() {
        args.push("--platform".to_owned());
        args.push(format!("manylinux_2_{minor}_x86_64"));
    }
    for legacy in ["manylinux2014", "manylinux2010", "manylinux1"] {
        args.push("--platform".to_owned());
        args.push(format!("{legacy}_x86_64"));
    }
    args
}

#[derive(clap::Args)]
pub struct Args {
    /// Which lock to regenerate (both when omitted).
    #[arg(value_enum)]
    pub which: Option<Which>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Which {
    /// crates/driver/requirements.lock and integration/moto/requirements.lock, from the
    /// closures of c7n and of moto[server] in `.venv`.
    Python,
    /// xtask/src/dist/debian.lock, from apt's candidate versions.
    Debian,
}

pub fn run(args: Args) -> Result<()> {
    let root = project_root();
    if matches!(args.which, None | Some(Which::Python)) {
        let python = python::venv_python();
        let c7n = resolve_closure(&python, ("c7n", &[]), &[])?;
        write(
            &root.join(REQUIREMENTS_LOCK),
            &format_requirements(C7N_HEADER, &c7n),
        )?;
        let moto = resolve_closure(&python, MOTO_ROOT, &c7n)?;
        write(
            &root.join(MOTO_LOCK),
            &format_requirements(MOTO_HEADER, &moto),
        )?;
    }
    if matches!(args.which, None | Some(Which::Debian)) {
        let text = generate_debian()?;
        write(&root.join(DEBIAN_LOCK), &text)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// requirements.lock

/// One pinned wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    /// The normalised project name (PEP 503: lower case, runs of `-_.` as `-`).
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub url: String,
}

impl Wheel {
    /// The wheel's file name, the last segment of its URL.
    pub fn file_name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }
}

/// PEP 503 normalisation.
pub fn normalise(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Reads `requirements.lock` as this module writes it: `name==version \`, then
/// `    --hash=sha256:<hex>`, then `    # <wheel url>`. Anything else but comments and blank
/// lines is an error naming the line, so a hand edit that the Nix reader would misread fails
/// here first.
pub fn parse_requirements(text: &str) -> Result<Vec<Wheel>> {
    struct Partial {
        line: usize,
        name: String,
        version: String,
        sha256: Option<String>,
        url: Option<String>,
    }
    let mut done = Vec::new();
    let mut current: Option<Partial> = None;
    let finish = |p: Partial, done: &mut Vec<Wheel>| -> Result<()> {
        let (Some(sha256), Some(url)) = (p.sha256, p.url) else {
            bail!(
                "line {}: {}=={} needs one --hash line and one wheel URL comment",
                p.line,
                p.name,
                p.version
            );
        };
        done.push(Wheel {
            name: p.name,
            version: p.version,
            sha256,
            url,
        });
        Ok(())
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(hash) = line.strip_prefix("--hash=sha256:") {
            let p = current
                .as_mut()
                .with_context(|| format!("line {n}: a hash before any requirement"))?;
            if p.sha256.is_some() {
                bail!("line {n}: {} has more than one hash", p.name);
            }
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("line {n}: `{hash}` is not a sha256 in hex");
            }
            p.sha256 = Some(hash.to_ascii_lowercase());
        } else if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim();
            if comment.starts_with("https://") {
                let p = current
                    .as_mut()
                    .with_context(|| format!("line {n}: a wheel URL before any requirement"))?;
                if p.sha256.is_none() || p.url.is_some() {
                    bail!(
                        "line {n}: the wheel URL of {} must follow its one hash",
                        p.name
                    );
                }
                if !comment.ends_with(".whl") {
                    bail!("line {n}: `{comment}` is not a wheel");
                }
                p.url = Some(comment.to_owned());
            }
        } else {
            let spec = line
                .strip_suffix('\\')
                .with_context(|| format!("line {n}: `{line}` should end with ` \\`"))?
                .trim();
            let (name, version) = spec
                .split_once("==")
                .with_context(|| format!("line {n}: `{spec}` is not name==version"))?;
            if let Some(p) = current.take() {
                finish(p, &mut done)?;
            }
            current = Some(Partial {
                line: n,
                name: normalise(name),
                version: version.trim().to_owned(),
                sha256: None,
                url: None,
            });
        }
    }
    if let Some(p) = current.take() {
        finish(p, &mut done)?;
    }
    for w in &done {
        let file = w.file_name();
        let stem = normalise(&w.name).replace('-', "_");
        let prefix = format!("{stem}-{}-", w.version);
        if !file.to_ascii_lowercase().starts_with(&prefix) {
            bail!(
                "{}=={}: the wheel {file} is of another project or version",
                w.name,
                w.version
            );
        }
    }
    if done.is_empty() {
        bail!("no requirements");
    }
    Ok(done)
}

/// Reads and parses the project's `requirements.lock`.
pub fn read_requirements(root: &Path) -> Result<Vec<Wheel>> {
    read_lock(root, REQUIREMENTS_LOCK)
}

/// Reads and parses the emulator's lock, and checks that it pins nothing the c7n lock pins
/// (both are installed into one environment with `--no-deps`).
pub fn read_moto(root: &Path) -> Result<Vec<Wheel>> {
    let moto = read_lock(root, MOTO_LOCK)?;
    let c7n = read_requirements(root)?;
    let twice: Vec<&str> = moto
        .iter()
        .filter(|m| c7n.iter().any(|c| c.name == m.name))
        .map(|m| m.name.as_str())
        .collect();
    if !twice.is_empty() {
        bail!("{MOTO_LOCK} pins {twice:?}, which {REQUIREMENTS_LOCK} already pins");
    }
    if !moto.iter().any(|w| w.name == MOTO_ROOT.0) {
        bail!("{MOTO_LOCK} does not pin {}", MOTO_ROOT.0);
    }
    Ok(moto)
}

fn read_lock(root: &Path, rel: &str) -> Result<Vec<Wheel>> {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    parse_requirements(&text).with_context(|| format!("{}", path.display()))
}

const C7N_HEADER: &str = "\
# c7n and its dependency closure for CPython 3.11 on manylinux x86_64: exact versions
# and the sha256 of one wheel each; below each hash, that wheel's URL (nix/python.nix
# fetches it from there). The full worker image and the test virtualenv install it with
#   pip install --require-hashes --no-deps --only-binary=:all: -r crates/driver/requirements.lock
# Generated from .venv by `cargo xtask lock python`; do not edit by hand.
";

const MOTO_HEADER: &str = "\
# moto[server] (the AWS emulator the tests start) and the part of its dependency closure that
# crates/driver/requirements.lock does not pin, for CPython 3.11 on manylinux x86_64: exact
# versions and the sha256 of one wheel each; below each hash, that wheel's URL (nix/python.nix
# fetches it from there). The test virtualenv and the Nix checks' Python install both locks:
#   pip install --require-hashes --no-deps --only-binary=:all: \\
#     -r crates/driver/requirements.lock -r integration/moto/requirements.lock
# Generated from .venv by `cargo xtask lock python`; do not edit by hand.
";

pub fn format_requirements(header: &str, wheels: &[Wheel]) -> String {
    let mut out = String::from(header);
    for w in wheels {
        out.push_str(&format!(
            "{}=={} \\\n    --hash=sha256:{}\n    # {}\n",
            w.name, w.version, w.sha256, w.url
        ));
    }
    out
}

/// The dependency closure of the requirement named on the command line (`name extra,...`)
/// as installed in `python`'s environment, markers evaluated for that interpreter (CPython
/// 3.11 on Linux, as in the image), extras followed as pip follows them.
const CLOSURE_SCRIPT: &str = r#"
import importlib.metadata as md, sys
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name
if sys.version_info[:2] != (3, 11):
    sys.exit(f"the lock is for CPython 3.11; this is {sys.version.split()[0]}")
seen = {}
done = set()
todo = [(sys.argv[1], tuple(e for e in sys.argv[2].split(",") if e))]
while todo:
    name, extras = todo.pop()
    name = canonicalize_name(name)
    if (name, extras) in done:
        continue
    done.add((name, extras))
    dist = md.distribution(name)
    seen[name] = dist.version
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or any(
            req.marker.evaluate({"extra": e}) for e in ("",) + extras
        ):
            todo.append((req.name, tuple(sorted(req.extras))))
for name in sorted(seen):
    print(f"{name}=={seen[name]}")
"#;

/// The wheels of `root`'s closure in `python`'s environment (one each, chosen for the image's
/// target), leaving out the projects `exclude` pins.
fn resolve_closure(
    python: &Path,
    (name, extras): (&str, &[&str]),
    exclude: &[Wheel],
) -> Result<Vec<Wheel>> {
    let out = Command::new(python)
        .args(["-c", CLOSURE_SCRIPT, name, &extras.join(",")])
        .output()
        .with_context(|| format!("could not run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{}: could not list {name}'s dependencies (run `cargo xtask test` once to create .venv): {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let listed = String::from_utf8(out.stdout).context("the closure listing is not UTF-8")?;
    let pins: String = listed
        .lines()
        .filter(|l| {
            let pinned = l.split("==").next().map(normalise);
            !exclude.iter().any(|w| Some(&w.name) == pinned.as_ref())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let work = project_root().join("target").join("lock").join(name);
    std::fs::create_dir_all(&work)
        .with_context(|| format!("could not create {}", work.display()))?;
    let pins_path = work.join("pins.txt");
    let report_path = work.join("report.json");
    std::fs::write(&pins_path, &pins)
        .with_context(|| format!("could not write {}", pins_path.display()))?;
    // A dry run resolves each pin to the one wheel pip would pick for the image's target
    // and reports its URL and sha256, without downloading the wheels.
    let status = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
        ])
        .args(["--no-deps", "--disable-pip-version-check", "--target"])
        .arg(work.join("unused-target"))
        .args(pip_target_args())
        .arg("--report")
        .arg(&report_path)
        .arg("-r")
        .arg(&pins_path)
        .status()
        .context("could not run pip")?;
    if !status.success() {
        bail!(
            "pip could not resolve every pin of {} to a wheel",
            pins_path.display()
        );
    }
    let report: Value = serde_json::from_slice(
        &std::fs::read(&report_path)
            .with_context(|| format!("could not read {}", report_path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", report_path.display()))?;
    let mut wheels = Vec::new();
    for item in report["install"].as_array().into_iter().flatten() {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        let version = item["metadata"]["version"].as_str().unwrap_or_default();
        let url = item["download_info"]["url"].as_str().unwrap_or_default();
        let sha256 = item["download_info"]["archive_info"]["hashes"]["sha256"]
            .as_str()
            .unwrap_or_default();
        if name.is_empty() || url.is_empty() || sha256.is_empty() {
            bail!("pip's report has an entry without name, URL or sha256: {item}");
        }
        wheels.push(Wheel {
            name: normalise(name),
            version: version.to_owned(),
            sha256: sha256.to_owned(),
            url: url.to_owned(),
        });
    }
    wheels.sort_by(|a, b| a.name.cmp(&b.name));
    let expected = pins.lines().filter(|l| !l.trim().is_empty()).count();
    if wheels.len() != expected {
        bail!("pip reported {} wheels for {expected} pins", wheels.len());
    }
    // What we write must read back the same (and so must satisfy the Nix reader's format).
    if parse_requirements(&format_requirements("", &wheels))? != wheels {
        bail!("the generated lock does not read back");
    }
    Ok(wheels)
}

// ---------------------------------------------------------------------------------------------
// debian.lock

/// One pinned Debian package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deb {
    pub package: String,
    pub version: String,
    pub sha256: String,
    /// Where Debian serves the file (`apt-get download --print-uris`), so a build needs no
    /// Debian apt configuration on the host (CI runs on Ubuntu).
    pub url: Option<String>,
}

/// The packages the full image's CPython is unpacked from, and why each is there (found with
/// `ldd` on the interpreter, the extension modules kept and the wheels' shared objects;
/// `dist::full` checks every `DT_NEEDED` against the image on each build).
pub const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("python3.11-minimal", "the interpreter, /usr/bin/python3.11"),
    ("libpython3.11-minimal", "the core of the standard library"),
    (
        "libpython3.11-stdlib",
        "the rest of the standard library and its extension modules",
    ),
    ("libc6", "glibc: the loader, libc, libm"),
    (
        "libgcc-s1",
        "libgcc_s.so.1 for the Rust extensions of cryptography and rpds-py",
    ),
    ("libssl3", "ssl and hashlib: botocore speaks HTTPS"),
    ("libffi8", "ctypes"),
    ("zlib1g", "zlib; the interpreter links it"),
    (
        "libexpat1",
        "pyexpat; the interpreter links it, botocore parses XML",
    ),
    ("libbz2-1.0", "bz2"),
    ("liblzma5", "lzma"),
    ("libuuid1", "uuid's fast path"),
    ("libsqlite3-0", "sqlite3: c7n.cache imports it"),
];

pub fn parse_debian(text: &str) -> Result<Vec<Deb>> {
    let mut debs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (package, version, sha256, url) = match fields.as_slice() {
            [p, v, s] => (p, v, s, None),
            [p, v, s, u] if u.starts_with("https://") || u.starts_with("http://") => {
                (p, v, s, Some((*u).to_owned()))
            }
            _ => bail!(
                "line {}: expected `package version sha256 [url]`, got `{line}`",
                i + 1
            ),
        };
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("line {}: `{sha256}` is not a sha256 in hex", i + 1);
        }
        debs.push(Deb {
            package: (*package).to_owned(),
            version: (*version).to_owned(),
            sha256: sha256.to_ascii_lowercase(),
            url,
        });
    }
    Ok(debs)
}

/// Reads the project's Debian lock and checks it covers exactly [`DEBIAN_PACKAGES`].
pub fn read_debian(root: &Path) -> Result<Vec<Deb>> {
    let path = root.join(DEBIAN_LOCK);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let debs = parse_debian(&text).with_context(|| format!("{}", path.display()))?;
    let mut locked: Vec<&str> = debs.iter().map(|d| d.package.as_str()).collect();
    let mut wanted: Vec<&str> = DEBIAN_PACKAGES.iter().map(|(p, _)| *p).collect();
    locked.sort_unstable();
    wanted.sort_unstable();
    if locked != wanted {
        bail!(
            "{} pins {locked:?} but the image needs {wanted:?}: run `cargo xtask lock debian`",
            path.display()
        );
    }
    Ok(debs)
}

pub fn format_debian(debs: &[Deb]) -> String {
    let mut out = String::from(
        "# Debian 12 (bookworm) packages the full worker image's CPython is unpacked from: exact\n\
         # versions, the sha256 of each .deb (checked after download) and where Debian serves it.\n\
         # Refresh (when a version has left the mirror): apt-get update && cargo xtask lock debian\n\
         # package                version                    sha256  url\n",
    );
    for d in debs {
        out.push_str(&format!("{:<24} {:<26} {}", d.package, d.version, d.sha256));
        if let Some(u) = &d.url {
            out.push_str(&format!(" {u}"));
        }
        out.push('\n');
    }
    out
}

/// One field of an `apt-cache show` record.
fn field<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn generate_debian() -> Result<String> {
    let mut debs = Vec::new();
    for (package, _) in DEBIAN_PACKAGES {
        // The candidate apt would install: the newest version, security updates included.
        let out = Command::new("apt-cache")
            .args(["show", "--no-all-versions", &format!("{package}:amd64")])
            .output()
            .context("could not run apt-cache (this needs Debian's apt)")?;
        let record = String::from_utf8_lossy(&out.stdout);
        let (Some(version), Some(sha256)) = (field(&record, "Version"), field(&record, "SHA256"))
        else {
            bail!(
                "apt-cache knows no candidate for {package} (run `apt-get update`): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        };
        // `'URL' file size SHA256:...`: the URL apt would fetch this version from.
        let uris = Command::new("apt-get")
            .args([
                "download",
                "--print-uris",
                &format!("{package}:amd64={version}"),
            ])
            .output()
            .context("could not run apt-get")?;
        let url = String::from_utf8_lossy(&uris.stdout).lines().find_map(|l| {
            l.strip_prefix('\'')?
                .split_once('\'')
                .map(|(u, _)| u.to_owned())
        });
        if url.is_none() {
            bail!("apt-get download --print-uris gives no URL for {package} {version}");
        }
        debs.push(Deb {
            package: (*package).to_owned(),
            version: version.to_owned(),
            sha256: sha256.to_owned(),
            url,
        });
    }
    debs.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(format_debian(&debs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "6029205678bdd9c1c728a155f5f9ecf5812393f969eef58807641a2bc2aa5b19";

    fn wheel(name: &str, version: &str, file: &str) -> Wheel {
        Wheel {
            name: name.to_owned(),
            version: version.to_owned(),
            sha256: SHA.to_owned(),
            url: format!("https://files.pythonhosted.org/packages/46/bd/{file}"),
        }
    }

    #[test]
    fn names_are_normalised_as_pep_503_says() {
        assert_eq!(normalise("PyYAML"), "pyyaml");
        assert_eq!(normalise("typing_extensions"), "typing-extensions");
        assert_eq!(
            normalise("jsonschema.specifications"),
            "jsonschema-specifications"
        );
        assert_eq!(normalise("a--_b"), "a-b");
    }

    #[test]
    fn requirements_round_trip() {
        let wheels = vec![
            wheel("argcomplete", "3.7.2", "argcomplete-3.7.2-py3-none-any.whl"),
            wheel(
                "python-dateutil",
                "2.9.0.post0",
                "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
            ),
            wheel(
                "pyyaml",
                "6.0.3",
                "pyyaml-6.0.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            ),
        ];
        let text = format_requirements(C7N_HEADER, &wheels);
        assert_eq!(parse_requirements(&text).unwrap(), wheels);
        assert!(text.contains("argcomplete==3.7.2 \\\n    --hash=sha256:6029"));
    }

    #[test]
    fn requirements_errors_name_the_line() {
        let good = format_requirements(
            MOTO_HEADER,
            &[wheel("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl")],
        );
        let check = |text: &str, expected: &str| {
            let err = format!("{:#}", parse_requirements(text).unwrap_err());
            assert!(err.contains(expected), "{err:?} lacks {expected:?}\n{text}");
        };
        check(&good.replace(" \\\n", "\n"), "should end with");
        check(
            &good.replace("    # https", "    # see https"),
            "needs one --hash line and one wheel URL",
        );
        check(&good.replace(SHA, "abc"), "is not a sha256");
        check(
            &good.replace("six-1.17.0-py2", "six-1.16.0-py2"),
            "is of another project or version",
        );
        check(
            &format!("{good}    --hash=sha256:{SHA}\n"),
            "more than one hash",
        );
        check("# nothing\n", "no requirements");
    }

    #[test]
    fn debian_round_trip_and_errors() {
        let debs = vec![
            Deb {
                package: "zlib1g".into(),
                version: "1:1.2.13.dfsg-1".into(),
                sha256: SHA.into(),
                url: None,
            },
            Deb {
                package: "libffi8".into(),
                version: "3.4.4-1".into(),
                sha256: SHA.into(),
                url: Some(
                    "http://deb.debian.org/debian/pool/main/libf/libffi/libffi8_3.4.4-1_amd64.deb"
                        .into(),
                ),
            },
        ];
        let text = format_debian(&debs);
        assert_eq!(parse_debian(&text).unwrap(), debs);
        let err = parse_debian("zlib1g 1:1.2.13.dfsg-1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn apt_cache_fields_are_read() {
        let record = "Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\nSHA256: abc\n";
        assert_eq!(field(record, "Version"), Some("1:1.2.13.dfsg-1"));
        assert_eq!(field(record, "SHA256"), Some("abc"));
        assert_eq!(field(record, "MD5sum"), None);
    }

    /// The committed locks read back, and the Debian one pins exactly the packages listed.
    #[test]
    fn project_locks_are_well_formed() {
        let root = project_root();
        let wheels = read_requirements(&root).unwrap();
        assert!(
            wheels.iter().any(|w| w.name == "c7n"),
            "c7n is not in the lock"
        );
        let mut names: Vec<&str> = wheels.iter().map(|w| w.name.as_str()).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(names, sorted, "requirements are not sorted");
        names.dedup();
        assert_eq!(names.len(), wheels.len(), "a project is pinned twice");
        let moto = read_moto(&root).unwrap();
        assert!(moto.windows(2).all(|w| w[0].name < w[1].name));
        read_debian(&root).unwrap();
    }
}
