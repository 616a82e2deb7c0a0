# The worker images. Both hold the static worker, CA certificates, a non-root user,
# /etc/hosts so `localhost` resolves without DNS, and a writable /tmp; `created` stays at the
# epoch (the default) so an image digest depends on its contents only.
#
# - worker-image (`custodian-worker:latest`): the worker alone, for policies that all run
#   natively.
# - worker-image-full (`custodian-worker:full`): plus nixpkgs' CPython 3.11 and c7n with its
#   dependencies at exactly the versions and sha256 of crates/driver/requirements.lock (the
#   wheels `cargo xtask dist` unpacks into its full image), with the same environment
#   variables as that image, for the Python driver (`$CUSTODIAN_PYTHON`).
{ pkgs, worker }:
let
  inherit (pkgs) lib;
  uid = "65532";
  etc = pkgs.runCommand "worker-etc" { } ''
    mkdir -p $out/etc
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${uid}:${uid}:nonroot:/home/nonroot:/sbin/nologin\n' > $out/etc/passwd
    printf 'root:x:0:\nnonroot:x:${uid}:\n' > $out/etc/group
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > $out/etc/hosts
    printf 'hosts: files dns\n' > $out/etc/nsswitch.conf
  '';

  slimEnv = [ "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" ];

  mkImage =
    { tag, env }:
    pkgs.dockerTools.buildLayeredImage {
      name = "custodian-worker";
      inherit tag;
      contents = [
        worker
        etc
        pkgs.dockerTools.caCertificates
      ];
      # Real directories in the top layer (contents are symlinked from the store, read-only).
      extraCommands = ''
        mkdir -p tmp home/nonroot
        chmod 1777 tmp
      '';
      fakeRootCommands = ''
        chown ${uid}:${uid} home/nonroot
      '';
      enableFakechroot = false;
      # Store paths named here (the interpreter, site-packages) are in the image's closure.
      config = {
        User = "${uid}:${uid}";
        Entrypoint = [ "${worker}/bin/custodian-worker" ];
        WorkingDir = "/tmp";
        Env = env;
      };
    };

  # The locked wheels include CPython 3.11 extension modules (cp311), so no other version will
  # do.
  python =
    pkgs.python311
      or (throw "this nixpkgs has no python311: the wheels of crates/driver/requirements.lock need CPython 3.11");

  locked = import ./wheels.nix ../crates/driver/requirements.lock;
  wheels = map (w: pkgs.fetchurl { inherit (w) url sha256; }) locked;

  # The wheels unpacked into one site-packages as pip would install them (purelib and platlib
  # at the top; scripts left out, `custodian` written as pip's launcher), the manylinux shared
  # objects pointed at nixpkgs' libgcc_s and glibc, and bytecode compiled once as in the
  # cargo-built image (unchecked-hash: nothing to revalidate in a read-only store).
  c7n = pkgs.stdenv.mkDerivation {
    pname = "c7n-site-packages";
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
    # libgcc_s.so.1 for the Rust extensions of cryptography and rpds-py.
    buildInputs = [ pkgs.stdenv.cc.cc.lib ];
    installPhase = ''
      runHook preInstall
      dest=$out/${python.sitePackages}
      mkdir -p "$dest" $out/bin
      for wheel in ${lib.concatMapStringsSep " " toString wheels}; do
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

  fullEnv = slimEnv ++ [
    "PATH=${c7n}/bin"
    "CUSTODIAN_PYTHON=${python.interpreter}"
    "PYTHONPATH=${c7n}/${python.sitePackages}"
    "PYTHONDONTWRITEBYTECODE=1"
    "PYTHONNOUSERSITE=1"
    "HOME=/tmp"
  ];

  worker-image = mkImage {
    tag = "latest";
    env = slimEnv;
  };
  worker-image-full = mkImage {
    tag = "full";
    env = fullEnv;
  };

  # `skopeo copy` into an `oci:` directory is byte-identical across runs (an `oci-archive:`
  # tar is not); this is what the deploy app pushes.
  oci =
    name: tag: image:
    pkgs.runCommand name { nativeBuildInputs = [ pkgs.skopeo ]; } ''
      skopeo --insecure-policy --tmpdir "$TMPDIR" copy \
        docker-archive:${image} oci:$out:${tag}
    '';
in
{
  inherit worker-image worker-image-full;
  worker-image-oci = oci "worker-image-oci" "latest" worker-image;
  worker-image-full-oci = oci "worker-image-full-oci" "full" worker-image-full;
}
