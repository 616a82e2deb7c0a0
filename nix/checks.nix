# `nix flake check`: fmt, clippy and the tests that can run in a Nix build sandbox, reusing
# the native dependency build, plus `tofu validate` of every Terraform root. The NixOS VM
# test of scenarios 1-3 is added in default.nix (tests/scale.nix).
#
# The sandbox has no network but loopback, no Docker and no registry, so nextest runs the
# `nix-sandbox` profile of .config/nextest.toml: unit and property tests, the wiremock
# contract tests, the moto tests and the differential tests against c7n (both from the
# project's locks, nix/python.nix). The `cargo-only` profile (Docker, Terraform applied to
# moto, checkov) runs on the cargo path; `cargo xtask test` checks that every test binary is
# in exactly one of the two.
{
  pkgs,
  rust,
  tools,
  python,
}:
let
  inherit (rust.native) craneLib common cargoArtifacts;
in
{
  inherit (rust) czero worker invoker-zip;

  fmt = craneLib.cargoFmt { inherit (common) src pname version; };

  # `cargoWithProfile clippy ${cargoExtraArgs} ${cargoClippyExtraArgs}` (crane
  # lib/cargoClippy.nix:24), cargoExtraArgs being common's `--locked --workspace`.
  clippy = craneLib.cargoClippy (
    common
    // {
      inherit cargoArtifacts;
      cargoClippyExtraArgs = "--all-targets -- --deny warnings";
    }
  );

  # `cargo nextest run --cargo-profile release ${cargoExtraArgs} ${cargoNextestExtraArgs}`
  # in the check phase (crane lib/cargoNextest.nix:65-70, doCheck defaulting to true at 44).
  nextest = craneLib.cargoNextest (
    common
    // {
      inherit cargoArtifacts;
      cargoNextestExtraArgs = "--profile nix-sandbox";
      nativeCheckInputs = [
        # nix-instantiate for xtask's static checks of the Nix files.
        pkgs.nix
        # pgrep, for the worker's driver tests.
        pkgs.procps
      ];
      # The tests find the project's Python at .venv/bin/python (czero_testkit::python) and
      # c7n's CLI at .venv/bin/custodian, as after `cargo xtask test`; HOME must be writable.
      preCheck = ''
        ln -s ${python.testVenv} .venv
        export HOME=$(mktemp -d)
      '';
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
        for dir in terraform/modules/*/ terraform/examples/*/; do
          [ -n "$(find "$dir" -maxdepth 1 -name '*.tf' -print -quit)" ] || continue
          echo "validating $dir"
          tofu -chdir="$dir" init -backend=false -input=false
          tofu -chdir="$dir" validate
        done
        touch $out
      '';
}
