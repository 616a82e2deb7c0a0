# `nix flake check`: the same gates as `cargo xtask test`, reusing the native dependency
# build, plus `tofu validate` of every Terraform root. The NixOS VM test is added in
# default.nix (tests/scale.nix).
{
  pkgs,
  rust,
  tools,
}:
let
  inherit (rust.native) craneLib common cargoArtifacts;
in
{
  inherit (rust) czero worker invoker-zip;

  fmt = craneLib.cargoFmt { inherit (common) src pname version; };

  clippy = craneLib.cargoClippy (
    common
    // {
      inherit cargoArtifacts;
      cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings";
    }
  );

  # Tests that need moto find it through CZERO_PYTHON, as under `cargo xtask test`.
  nextest = craneLib.cargoNextest (
    common
    // {
      inherit cargoArtifacts;
      cargoNextestExtraArgs = "--workspace";
      # nix-instantiate for xtask's parse check; python with moto for the emulator tests.
      nativeCheckInputs = [
        tools.python
        pkgs.nix
      ];
      CZERO_PYTHON = "${tools.python}/bin/python3";
    }
  );

  terraform-validate =
    pkgs.runCommand "terraform-validate"
      {
        nativeBuildInputs = [ tools.tofu ];
      }
      ''
        cp -r ${../terraform} terraform
        chmod -R u+w terraform
        for dir in terraform/modules/custodian-zero terraform/examples/*/; do
          [ -n "$(find "$dir" -maxdepth 1 -name '*.tf' -print -quit)" ] || continue
          echo "validating $dir"
          tofu -chdir="$dir" init -backend=false -input=false
          tofu -chdir="$dir" validate
        done
        touch $out
      '';
}
