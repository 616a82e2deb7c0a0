# `nix develop`: the pinned Rust toolchain with clippy and rustfmt, every input of the cargo
# checks, and the tools the README uses: nextest, OpenTofu with the pinned AWS provider, the
# project's Python (c7n and moto from the locks), awscli2, skopeo, jq. The variables make
# `cargo nextest run` use them: CZERO_PYTHON for c7n and moto, CZERO_TERRAFORM and
# CZERO_TF_PLUGIN_DIR for the Terraform tests.
#
# Not here: LocalStack (moto is the emulator of every test, LocalStack's free edition has no
# ECS or Application Auto Scaling, and its package could not be checked to evaluate at the
# pinned nixpkgs) and checkov (the cargo path pins its own, `cargo xtask test` installs it).
{
  pkgs,
  rust,
  tools,
  checks,
}:
rust.native.craneLib.devShell {
  # The toolchain and every input of the cargo checks.
  inherit checks;
  packages = [
    tools.tofu
    tools.python
    tools.awscli2
    tools.skopeo
    tools.cargo-nextest
    tools.jq
    pkgs.rust-analyzer
  ];
  CZERO_PYTHON = "${tools.python}/bin/python";
  CZERO_TERRAFORM = "${tools.tofu}/bin/tofu";
  CZERO_TF_PLUGIN_DIR = tools.tofuPluginDir;
}
