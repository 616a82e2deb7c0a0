# The AWS provider of both paths: HashiCorp's release of terraform-provider-aws, the same
# bytes the cargo path installs from the registry or a provider mirror (`terraform init
# -plugin-dir`). nixpkgs' hashicorp_aws is a source build at whatever version the release
# branch carries (6.x), while every versions.tf asks for `~> 5.0`; `cargo xtask test` checks
# that `version` satisfies every versions.tf. Builtins only, so xtask evaluates it without
# nixpkgs.
#
# `hash` is the NAR hash of the release zip's contents (fetchzip with stripRoot = false:
# LICENSE.txt and terraform-provider-aws_v<version>_x5). Only linux_amd64 is pinned: the two
# files hashed have the h1: hash that `terraform init` records for the registry's 5.100.0
# linux_amd64 package (h1:edXOJWE4ORX8Fm+dpVpICzMZJat4AX0VRCAy/xkcOc0=, as in public
# .terraform.lock.hcl files); no other platform's contents could be checked.
{
  version = "5.100.0";
  platforms = {
    x86_64-linux = {
      os_arch = "linux_amd64";
      hash = "sha256-iakUDhMw/FKMo9QRF3f2+Qyp3UvcPgco8YxMAY9dQwA=";
    };
  };
}
