# The files the Rust build and its tests read, relative to the project root: the source
# fileset of every crane derivation (nix/packages.nix turns each into a path, and
# lib.fileset.unions fails on one that does not exist). `cargo xtask test` evaluates this list
# and fails when a string in the Rust code names a project file or directory outside it
# (include_str! targets, fixtures, test scripts, policies/, config/, the Terraform module):
# such a test would pass under cargo and fail in the Nix build sandbox. Builtins only, so
# xtask evaluates it without nixpkgs.
[
  "Cargo.toml"
  "Cargo.lock"
  ".cargo"
  ".config"
  "clippy.toml"
  "rustfmt.toml"
  "crates"
  "integration"
  "xtask"
  "config"
  "policies"
  "terraform"
  "flake.nix"
  "flake.lock"
  "nix"
  ".github/workflows"
]
