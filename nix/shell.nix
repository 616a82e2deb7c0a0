# `nix develop`: the checks' inputs (toolchain, clippy, rustfmt) plus the tools the README
# uses — nextest, OpenTofu with the AWS provider, moto, LocalStack's CLI, awscli2, skopeo,
# checkov.
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
    tools.checkov
    tools.localstack
    tools.cargo-nextest
    tools.jq
    pkgs.rust-analyzer
  ];
  CZERO_PYTHON = "${tools.python}/bin/python3";
}
