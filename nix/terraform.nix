# OpenTofu with exactly the AWS provider the cargo path uses (nix/aws-provider.nix).
# OpenTofu stands in for Terraform: Terraform >= 1.6 is unfree in nixpkgs and not cached.
#
# nixpkgs' opentofu.withPlugins (pkgs/by-name/op/opentofu/package.nix, `pluggable`) takes
# derivations laid out as nixpkgs' terraform-providers builds them (mkProvider's postInstall,
# pkgs/applications/networking/cluster/terraform-providers/default.nix),
#   $out/libexec/terraform-providers/registry.terraform.io/<namespace>/<type>/<version>/<os_arch>/<binary>
# wraps every file found there under registry.opentofu.org (where OpenTofu looks for
# `hashicorp/aws`), and sets NIX_TERRAFORM_PLUGIN_DIR, which its provider-path patch appends
# to `tofu init`'s -plugin-dir list: `tofu init` sees that directory only, never a registry.
{ pkgs }:
let
  pin = import ./aws-provider.nix;
  inherit (pin) version;
  system = pkgs.stdenv.hostPlatform.system;
  platform =
    pin.platforms.${system}
      or (throw "nix/aws-provider.nix pins terraform-provider-aws ${version} for ${builtins.concatStringsSep ", " (builtins.attrNames pin.platforms)} only, not ${system}");

  aws = pkgs.stdenvNoCC.mkDerivation {
    pname = "terraform-provider-aws";
    inherit version;
    # stripRoot = false: fetchzip moves the unpacked directory itself to $out
    # (pkgs/build-support/fetchzip/default.nix, postFetch), so $out holds the zip's two files.
    src = pkgs.fetchzip {
      url = "https://releases.hashicorp.com/terraform-provider-aws/${version}/terraform-provider-aws_${version}_${platform.os_arch}.zip";
      inherit (platform) hash;
      stripRoot = false;
    };
    dontUnpack = true;
    dontConfigure = true;
    dontBuild = true;
    # HashiCorp's binary as released (static, CGO off): no strip, no patchelf.
    dontFixup = true;
    installPhase = ''
      runHook preInstall
      dir=$out/libexec/terraform-providers/registry.terraform.io/hashicorp/aws/${version}/${platform.os_arch}
      mkdir -p "$dir"
      install -m 0755 "$src/terraform-provider-aws_v${version}_x5" "$dir/"
      runHook postInstall
    '';
    passthru.provider-source-address = "registry.terraform.io/hashicorp/aws";
  };
in
{
  inherit aws;
  tofu = pkgs.opentofu.withPlugins (_: [ aws ]);
}
