# The pinned tools shared by the checks, the apps, the VM test and the dev shell.
{ pkgs, python }:
let
  terraform = import ./terraform.nix { inherit pkgs; };
in
{
  # OpenTofu with HashiCorp's AWS provider at the version the cargo path uses.
  inherit (terraform) tofu;
  # Where that provider sits for `-plugin-dir` (CZERO_TF_PLUGIN_DIR of the integration
  # harness, which the demo runs).
  tofuPluginDir = "${terraform.tofu}/libexec/terraform-providers";
  # c7n and moto from the project's locks (nix/python.nix); `bin/python` runs moto's server
  # through integration/moto/server.py.
  python = python.testVenv;
  inherit (pkgs)
    awscli2
    skopeo
    cargo-nextest
    jq
    ;
}
