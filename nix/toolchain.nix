# The Rust toolchain of both paths, exactly: rust-overlay's `rust-bin.stable.<rust>` for every
# Nix build (nix/packages.nix), `rustup toolchain install <rust>` in CI's cargo job. nixpkgs'
# own rustc is not used, so the release branch's rustc version does not matter.
# `cargo xtask test` checks that this is at least the workspace's rust-version and that CI's
# cargo job installs the same version. Builtins only, so xtask evaluates it without nixpkgs.
{
  rust = "1.95.0";
}
