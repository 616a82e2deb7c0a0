# Everything the flake exports for one system; flake.nix only maps it over the systems.
{
  nixpkgs,
  crane,
  system,
}:
let
  pkgs = nixpkgs.legacyPackages.${system};
  rust = import ./packages.nix { inherit pkgs crane; };
  image = import ./image.nix {
    inherit pkgs;
    inherit (rust) worker;
  };
  tools = import ./tools.nix { inherit pkgs; };
  checks = import ./checks.nix {
    inherit pkgs rust tools;
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
