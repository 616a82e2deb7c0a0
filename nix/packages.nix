# The Rust builds. One `buildDepsOnly` per toolchain, one `buildPackage` per shipped binary
# (crane's quick-start-workspace pattern). The Lambda and the worker image need binaries that
# run without a /nix/store loader, so they are built static against musl with
# `crane.mkLib pkgs.pkgsStatic`; the `czero` CLI is an ordinary build for this machine.
{ pkgs, crane }:
let
  inherit (pkgs) lib;
  root = ../.;

  # Cargo sources plus the data files the crates load with include_str! (fixtures), the moto
  # launcher the tests start, and the Nix and Terraform files xtask's tidy tests read.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../.cargo/config.toml
      ../clippy.toml
      ../rustfmt.toml
      ../crates
      ../xtask
      (lib.fileset.maybeMissing ../integration)
      (lib.fileset.maybeMissing ../terraform)
      ../flake.nix
      ../flake.lock
      ../nix
    ];
  };

  mkBuild =
    craneLib:
    let
      common = {
        inherit src;
        pname = "custodian-zero";
        inherit (craneLib.crateNameFromCargoToml { cargoToml = ../Cargo.toml; }) version;
        strictDeps = true;
        # Identical inputs must give identical bytes: no timestamps, no build paths.
        SOURCE_DATE_EPOCH = "315532800";
        CARGO_INCREMENTAL = "0";
      };
      cargoArtifacts = craneLib.buildDepsOnly common;
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

  native = mkBuild (crane.mkLib pkgs);
  static = mkBuild (crane.mkLib pkgs.pkgsStatic);

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
