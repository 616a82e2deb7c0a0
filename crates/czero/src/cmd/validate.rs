//! `czero validate FILE...`: checks policy files as custodian-zero reads them. Prints every
//! error as `FILE:LINE:COL: path: message` and, as notes, the features that will run
//! through the `custodian` fallback. Exit code 0 when all files are valid, 1 otherwise.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Policy files (YAML or JSON).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Validates one file; returns the lines to print and whether it is valid.
pub fn check_file(path: &Path) -> Result<(Vec<String>, bool)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let origin = path.display().to_string();
    Ok(match czero_policy::parse_str(&origin, &text) {
        Ok(file) => {
            let mut lines = Vec::new();
            for p in &file.policies {
                for u in &p.unsupported {
                    lines.push(format!("{origin}:{}: note: policy `{}` uses {u}, which runs through the custodian fallback", u.line, p.name));
                }
            }
            (lines, true)
        }
        Err(errors) => (
            errors.errors.iter().map(ToString::to_string).collect(),
            false,
        ),
    })
}

pub fn run(args: Args) -> ExitCode {
    let mut ok = true;
    for f in &args.files {
        match check_file(f) {
            Ok((lines, valid)) => {
                for l in lines {
                    if valid {
                        println!("{l}")
                    } else {
                        eprintln!("{l}")
                    }
                }
                ok &= valid;
            }
            Err(e) => {
                eprintln!("{}: error: {e:#}", f.display());
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn shipped_policies_are_valid() {
        let dir = root().join("policies");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml") {
                let (lines, ok) = check_file(&p).unwrap();
                assert!(ok, "{}: {lines:?}", p.display());
                n += 1;
            }
        }
        assert!(n >= 5, "expected the example policies in {}", dir.display());
    }

    #[test]
    fn errors_and_notes_are_printed_with_positions() {
        let bad = root().join("crates/policy/fixtures/bad/many-errors.yml");
        let (lines, ok) = check_file(&bad).unwrap();
        assert!(!ok);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0]
                .ends_with("many-errors.yml:7:9: policies[0].filters[0].op: invalid op `bogus`"),
            "{lines:?}"
        );
        let good = root().join("crates/policy/fixtures/good/notify-fallback.yml");
        let (lines, ok) = check_file(&good).unwrap();
        assert!(ok);
        assert!(
            lines.iter().any(|l| l.ends_with(
                "notify-fallback.yml:8: note: policy `notify-owner` uses action `notify`, which runs through the custodian fallback"
            )),
            "{lines:?}"
        );
    }
}
