# The Rust builds. One `buildDepsOnly` per toolchain, one `buildPackage` per shipped binary
# (crane's quick-start-workspace pattern). The Lambda and the worker image need binaries that
# run without a /nix/store loader, so they are built static against musl with
# `crane.mkLib pkgs.pkgsStatic`; the `czero` CLI is an ordinary build for this machine.
#
# Both use the Rust toolchain of nix/toolchain.nix from rust-overlay, not nixpkgs' rustc:
# crane's overrideToolchain takes a function of the package set and splices it
# (lib/default.nix:28-46 and 134-150 at the locked crane), so under pkgsStatic the toolchain
# is the build machine's rustc; rust-overlay's profiles add the std of
# `stdenv.targetPlatform` (lib/rust-bin.nix:420-425, mkProfile), here
# x86_64-unknown-linux-musl; crane's mkCrossToolchainEnv (lib/mkCrossToolchainEnv.nix:52-64)
# sets CARGO_BUILD_TARGET and the musl C compiler for it. Every crane build uses cargo's
# release profile (CARGO_PROFILE defaults to release, setupHooks/configureCargoCommonVarsHook.sh:19).
{ pkgs, crane }:
let
  inherit (pkgs) lib;
  root = ../.;

  # The files nix/source.nix lists, each required to exist (a path that does not is an
  # error, lib/fileset/internal.nix `_coerce`; no maybeMissing): what a test reads cannot
  # silently drop out.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions (map (rel: root + "/${rel}") (import ./source.nix));
  };

  rustVersion = (import ./toolchain.nix).rust;
  toolchain =
    p:
    p.rust-bin.stable.${rustVersion}.default
      or (throw "rust-overlay has no stable ${rustVersion}: update the rust-overlay input");

  mkBuild =
    {
      craneLib,
      # Which packages' dependencies the shared dependency build compiles.
      depsArgs,
      # Whether it also compiles the dev-dependencies (for clippy --all-targets and tests).
      depsCheck,
    }:
    let
      common = {
        inherit src;
        pname = "custodian-zero";
        inherit (craneLib.crateNameFromCargoToml { cargoToml = ../Cargo.toml; }) version;
        strictDeps = true;
        cargoExtraArgs = depsArgs;
        # Identical inputs must give identical bytes: no timestamps, no build paths.
        SOURCE_DATE_EPOCH = "315532800";
        CARGO_INCREMENTAL = "0";
      };
      cargoArtifacts = craneLib.buildDepsOnly (common // { doCheck = depsCheck; });
      binary =
        pname: cargoPackage:
        craneLib.buildPackage (
          common
          // {
            inherit pname cargoArtifacts;
            cargoExtraArgs = "--locked -p ${cargoPackage}";
            # The workspace's tests run once, in the nextest check.
            doCheck = false;
          }
        );
    in
    {
      inherit craneLib common cargoArtifacts binary;
    };

  # Every workspace member's dependencies, dev-dependencies included, built once for clippy,
  # nextest and the native binaries: buildDepsOnly runs `cargo check --all-targets`, `cargo
  # build` and `cargo test --no-run` with cargoExtraArgs (lib/buildDepsOnly.nix:35, 77-86);
  # its default, `--locked` alone, would leave xtask's and the integration crate's
  # dependencies (not default members) to every later build.
  native = mkBuild {
    craneLib = (crane.mkLib pkgs).overrideToolchain toolchain;
    depsArgs = "--locked --workspace";
    depsCheck = true;
  };
  # Only what the two shipped static binaries link.
  static = mkBuild {
    craneLib = (crane.mkLib pkgs.pkgsStatic).overrideToolchain toolchain;
    depsArgs = "--locked -p czero-invoker -p czero-worker";
    depsCheck = false;
  };

  invoker = static.binary "bootstrap" "czero-invoker";
  worker = static.binary "custodian-worker" "czero-worker";
  czero = native.binary "czero" "czero";

  # A zip is reproducible only with a fixed mtime on every entry, no extra attributes (-X)
  # and a fixed time zone; cargo-lambda copies the binary's mtime and is not.
  invoker-zip = pkgs.runCommand "invoker-zip" { nativeBuildInputs = [ pkgs.zip ]; } ''
    mkdir -p work $out
    install -m 0755 ${invoker}/bin/bootstrap work/bootstrap
    touch -d '1980-01-01 00:00:00' work/bootstrap
    (cd work && TZ=UTC zip -X -9 $out/invoker.zip bootstrap)
    sha256sum $out/invoker.zip > $out/invoker.zip.sha256
  '';
in
{
  inherit
    src
    native
    invoker
    worker
    czero
    invoker-zip
    ;
}
