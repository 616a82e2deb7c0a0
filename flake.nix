{
  description = "custodian-zero: Cloud Custodian policies on AWS security events, in Rust, scaling to zero";

  # nixos-26.05 is the release branch crane is tested against (crane dropped 25.11). crane has
  # no inputs of its own, so there is no `crane.inputs.nixpkgs.follows` to set.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
  };

  outputs =
    { self, nixpkgs, crane }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      perSystem =
        f:
        nixpkgs.lib.genAttrs systems (
          system:
          f (
            import ./nix {
              inherit nixpkgs crane system;
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
