# CPython 3.11 and the project's locked wheels, installed without pip:
#
# - c7n: crates/driver/requirements.lock (c7n and its closure) as one site-packages, plus
#   pip's `custodian` launcher; the full worker image puts it on PYTHONPATH.
# - testVenv: a virtualenv holding both locks, c7n's and integration/moto/requirements.lock
#   (moto[server] and the rest of its closure), with `bin/python` and `bin/custodian`: the
#   same environment `cargo xtask test` creates in .venv/. checks.nextest links it at .venv,
#   the VM test runs moto from it, `nix run .#demo` and `nix develop` use it as CZERO_PYTHON.
#
# nixpkgs' own python3Packages.moto is not used: the release branch carries whatever moto it
# carries, built for python3 (not 3.11), and the tests depend on moto 5.2.x's behaviour.
{ pkgs }:
let
  inherit (pkgs) lib;

  # The locked wheels include CPython 3.11 extension modules (cp311) for manylinux x86_64, so
  # no other interpreter or platform will do.
  python =
    pkgs.python311
      or (throw "this nixpkgs has no python311: the wheels of crates/driver/requirements.lock need CPython 3.11");

  c7nLock = import ./wheels.nix ../crates/driver/requirements.lock;
  motoLock = import ./wheels.nix ../integration/moto/requirements.lock;

  # The wheels unpacked into one site-packages as pip would install them (purelib and platlib
  # at the top; scripts left out, `custodian` written as pip's launcher), the manylinux shared
  # objects pointed at nixpkgs' libgcc_s and glibc, and bytecode compiled once as in the
  # cargo-built image (unchecked-hash: nothing to revalidate in a read-only store).
  sitePackages =
    { pname, locked }:
    pkgs.stdenv.mkDerivation {
      inherit pname;
      version = (lib.findFirst (w: w.name == "c7n") { version = "unknown"; } locked).version;
      dontUnpack = true;
      dontConfigure = true;
      dontBuild = true;
      # Keep the wheels' bytes: no stripping, no shebang rewriting.
      dontStrip = true;
      dontPatchShebangs = true;
      nativeBuildInputs = [
        pkgs.unzip
        pkgs.autoPatchelfHook
        python
      ];
      # libgcc_s.so.1 for the Rust extensions (cryptography, rpds-py, pydantic-core); every
      # other shared object of both locks needs only glibc.
      buildInputs = [ pkgs.stdenv.cc.cc.lib ];
      installPhase = ''
        runHook preInstall
        dest=$out/${python.sitePackages}
        mkdir -p "$dest" $out/bin
        for wheel in ${lib.concatMapStringsSep " " (w: toString (pkgs.fetchurl { inherit (w) url sha256; })) locked}; do
          unzip -q -o "$wheel" -d "$dest"
        done
        for data in "$dest"/*.data; do
          [ -e "$data" ] || continue
          for scheme in purelib platlib; do
            if [ -d "$data/$scheme" ]; then cp -r "$data/$scheme/." "$dest/"; fi
          done
          rm -rf "$data"
        done
        cat > $out/bin/custodian <<'EOF'
        #!${python.interpreter}
        # -*- coding: utf-8 -*-
        import re
        import sys
        from c7n.cli import main
        if __name__ == "__main__":
            sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
            sys.exit(main())
        EOF
        chmod 0755 $out/bin/custodian
        PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 ${python.interpreter} -m compileall -q \
          --invalidation-mode unchecked-hash "$dest"
        runHook postInstall
      '';
    };

  c7n = sitePackages {
    pname = "c7n-site-packages";
    locked = c7nLock;
  };

  testSite = sitePackages {
    pname = "czero-test-site-packages";
    locked = c7nLock ++ motoLock;
  };

  # `python -m venv` gives bin/python (a symlink to the interpreter) and pyvenv.cfg; a .pth
  # file puts the locked site-packages on its path. A separate derivation from the one
  # autoPatchelfHook runs in, which would otherwise follow the interpreter symlink.
  # `custodian` runs on the venv's python, so it sees the same packages.
  testVenv = pkgs.runCommand "czero-test-venv" { } ''
    ${python.interpreter} -m venv --without-pip $out
    echo ${testSite}/${python.sitePackages} > $out/${python.sitePackages}/czero-locked.pth
    {
      echo "#!$out/bin/python"
      cat <<'EOF'
    import re
    import sys
    from c7n.cli import main
    if __name__ == "__main__":
        sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
        sys.exit(main())
    EOF
    } > $out/bin/custodian
    chmod 0755 $out/bin/custodian
    $out/bin/python -c 'import boto3, moto; from c7n.version import version; print("c7n", version, "moto", moto.__version__)'
  '';
in
{
  inherit python c7n testVenv;
}
