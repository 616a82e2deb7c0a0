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
