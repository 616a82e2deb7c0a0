# Everything the flake exports for one system; flake.nix only maps it over the systems.
{
  nixpkgs,
  crane,
  rust-overlay,
  system,
}:
let
  # rust-overlay's default.nix is an overlay (final: prev: { rust-bin = ...; }); it adds
  # rust-bin and changes nothing nixpkgs builds.
  pkgs = import nixpkgs {
    inherit system;
    overlays = [ (import rust-overlay) ];
  };
  python = import ./python.nix { inherit pkgs; };
  rust = import ./packages.nix { inherit pkgs crane; };
  image = import ./image.nix {
    inherit pkgs python;
    inherit (rust) worker;
  };
  tools = import ./tools.nix { inherit pkgs python; };
  checks = import ./checks.nix {
    inherit pkgs rust tools python;
  };
  apps = import ./deploy.nix {
    inherit pkgs rust image tools;
  };
in
{
  packages = {
    inherit (rust) czero worker invoker-zip;
    inherit (image)
      worker-image
      worker-image-oci
      worker-image-full
      worker-image-full-oci
      ;
    default = rust.czero;
  };
  inherit apps;
  checks = checks // {
    scale = import ./tests/scale.nix {
      inherit pkgs rust tools;
    };
  };
  shell = import ./shell.nix {
    inherit pkgs rust tools;
    checks = {
      inherit (checks) clippy nextest;
    };
  };
  formatter = pkgs.nixfmt;
}
