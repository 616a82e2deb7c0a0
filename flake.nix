{
  description = "custodian-zero: Cloud Custodian policies on AWS security events, in Rust, scaling to zero";

  # nixos-26.05 is the release branch crane is tested against (crane's lib/default.nix
  # requires nixpkgs >= 26.05). crane has no inputs of its own, so there is no
  # `crane.inputs.nixpkgs.follows` to set. rust-overlay gives the exact Rust toolchain of
  # nix/toolchain.nix; it is imported as a plain overlay (its default.nix), so its own flake
  # and its nixpkgs input are never evaluated or locked.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      flake = false;
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
      rust-overlay,
    }:
    let
      # x86_64 only: the AWS provider zip (nix/aws-provider.nix) and the manylinux wheels of
      # the Python locks are pinned and checked for x86_64 Linux alone, as `cargo xtask dist`
      # builds for x86_64 alone.
      systems = [ "x86_64-linux" ];
      perSystem =
        f:
        nixpkgs.lib.genAttrs systems (
          system:
          f (
            import ./nix {
              inherit
                nixpkgs
                crane
                rust-overlay
                system
                ;
            }
          )
        );
    in
    {
      packages = perSystem (p: p.packages);
      apps = perSystem (p: p.apps);
      checks = perSystem (p: p.checks);
      devShells = perSystem (p: { default = p.shell; });
      formatter = perSystem (p: p.formatter);
    };
}
