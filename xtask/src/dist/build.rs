//! The deterministic release build of the two shipped binaries, without Nix.
//!
//! Reproducibility rests on three things: `--locked` (same dependency graph), a fixed
//! environment (`CARGO_INCREMENTAL=0`, `SOURCE_DATE_EPOCH`, `TZ=UTC`), and path remapping so
//! that neither the checkout, the target directory nor `CARGO_HOME` (registry sources appear
//! in panic locations) leaks into the binaries. The flags are passed through
//! `CARGO_ENCODED_RUSTFLAGS` so paths with spaces survive; with `--target`, they apply to the
//! shipped code only, not to build scripts and proc macros.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The only target installed here; `+crt-static` makes it a static-pie binary that runs in an
/// empty root (the Lambda `provided.al2023` runtime and a scratch image alike).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Where a checkout, its target directory and the cargo home appear inside the binaries.
pub const REMAPPED_ROOT: &str = "/build";
pub const REMAPPED_TARGET: &str = "/target";
pub const REMAPPED_CARGO_HOME: &str = "/cargo";

/// One build: which checkout, into which target directory, with which `SOURCE_DATE_EPOCH`.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    pub root: PathBuf,
    /// Every checkout path mapped to `/build` (`root` alone for one build). Two builds of two
    /// checkouts that list both, in the same order, pass identical flags to rustc, so they
    /// can share one target directory's dependencies: only the workspace's own crates, whose
    /// sources are the paths that differ, are compiled twice.
    pub remap_roots: Vec<PathBuf>,
    pub target_dir: PathBuf,
    pub cargo_home: PathBuf,
    pub source_date_epoch: u64,
    /// Pass `--offline` (tests: the registry cache is enough, the network may be absent).
    pub offline: bool,
    /// Where downloaded `.deb` files and wheels are kept between builds (each is checked
    /// against its lock's sha256 on every use, so a shared cache cannot change the output).
    pub cache_dir: PathBuf,
    /// The Python whose pip downloads the locked wheels.
    pub pip_python: PathBuf,
}

/// Paths of the release binaries a build produced.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub bootstrap: PathBuf,
    pub worker: PathBuf,
}

impl BuildPlan {
    /// The plan for `root` with its own `target/dist-build` (kept apart from the dev cache,
    /// which the different RUSTFLAGS would otherwise invalidate on every switch).
    pub fn for_root(root: &Path) -> Result<Self> {
        let root = root
            .canonicalize()
            .with_context(|| format!("checkout {} not found", root.display()))?;
        let venv = crate::python::venv_python();
        let pip_python = if venv.exists() {
            venv
        } else {
            std::env::var_os("PYTHON").map_or_else(|| "python3".into(), PathBuf::from)
        };
        Ok(Self {
            remap_roots: vec![root.clone()],
            target_dir: root.join("target").join("dist-build"),
            cache_dir: root.join("target").join("dist-cache"),
            pip_python,
            root,
            cargo_home: cargo_home()?,
            source_date_epoch: source_date_epoch()?,
            offline: false,
        })
    }

    /// The `-C`/`--remap-path-prefix` flags, most general first: rustc applies the last
    /// matching prefix, so a target dir or cargo home inside the checkout still maps to its own
    /// name.
    pub fn rustflags(&self) -> Vec<String> {
        let mut flags = vec!["-C".to_owned(), "target-feature=+crt-static".to_owned()];
        flags.extend(
            self.remap_roots
                .iter()
                .map(|r| format!("--remap-path-prefix={}={REMAPPED_ROOT}", r.display())),
        );
        flags.extend([
            format!(
                "--remap-path-prefix={}={REMAPPED_TARGET}",
                self.target_dir.display()
            ),
            format!(
                "--remap-path-prefix={}={REMAPPED_CARGO_HOME}",
                self.cargo_home.display()
            ),
        ]);
        flags
    }

    /// Runs `cargo build` for `bootstrap` and `custodian-worker` and returns their paths.
    pub fn build(&self) -> Result<Binaries> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.root)
            .args(["build", "--locked", "--release", "--target", TARGET])
            .args(["-p", "czero-invoker", "--bin", "bootstrap"])
            .args(["-p", "czero-worker", "--bin", "custodian-worker"])
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env("CARGO_ENCODED_RUSTFLAGS", self.rustflags().join("\u{1f}"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS")
            .env("CARGO_INCREMENTAL", "0")
            .env("SOURCE_DATE_EPOCH", self.source_date_epoch.to_string())
            .env("TZ", "UTC")
            .env("LC_ALL", "C");
        if self.offline {
            cmd.arg("--offline");
        }
        eprintln!(
            "$ (cd {} && CARGO_TARGET_DIR={} cargo build --locked --release --target {TARGET} -p czero-invoker -p czero-worker)",
            self.root.display(),
            self.target_dir.display()
        );
        let status = cmd
            .status()
            .context("could not start cargo for the release build")?;
        if !status.success() {
            bail!("release build in {} failed: {status}", self.root.display());
        }
        let dir = self.target_dir.join(TARGET).join("release");
        Ok(Binaries {
            bootstrap: dir.join("bootstrap"),
            worker: dir.join("custodian-worker"),
        })
    }
}

/// `CARGO_HOME`, or cargo's default `~/.cargo`.
pub fn cargo_home() -> Result<PathBuf> {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(h) => PathBuf::from(h),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?)
                .join(".cargo")
        }
    };
    Ok(home.canonicalize().unwrap_or(home))
}

/// `SOURCE_DATE_EPOCH` if set (Nix and Debian builders set it), else 0: the artifacts then
/// depend on the sources alone, not on when or whether they were committed.
pub fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{s}` is not a number of seconds")),
        _ => Ok(0),
    }
}

/// Absolute build paths that must not appear in a shipped binary.
pub fn leaked_paths(plan: &BuildPlan, binary: &[u8]) -> Vec<String> {
    let mut needles: Vec<String> = plan
        .remap_roots
        .iter()
        .chain([&plan.root, &plan.target_dir, &plan.cargo_home])
        .map(|p| p.display().to_string())
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        needles.push(PathBuf::from(home).join(".cargo").display().to_string());
    }
    needles
        .into_iter()
        .filter(|n| n.len() > 1 && contains(binary, n.as_bytes()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether an ELF executable needs a program interpreter (a dynamic loader such as
/// `/lib64/ld-linux-x86-64.so.2`). The Lambda runtime and a scratch image have none, so a
/// binary with a `PT_INTERP` header would not start there.
pub fn needs_loader(elf: &[u8]) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    // 64-bit little-endian ELF only: the one target this build produces.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!("not a 64-bit little-endian ELF file");
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        bail!("truncated ELF header");
    };
    for i in 0..usize::from(phnum) {
        let at = usize::try_from(phoff)? + i * usize::from(phentsize);
        match u32_at(at) {
            Some(PT_INTERP) => return Ok(true),
            Some(_) => {}
            None => bail!("program header {i} lies outside the file"),
        }
    }
    Ok(false)
}
