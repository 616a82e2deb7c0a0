# The worker images. Both hold the static worker, CA certificates, a non-root user,
# /etc/hosts so `localhost` resolves without DNS, and a writable /tmp; `created` stays at the
# epoch (the default) so an image digest depends on its contents only.
#
# - worker-image (`custodian-worker:latest`): the worker alone, for policies that all run
#   natively.
# - worker-image-full (`custodian-worker:full`): plus nixpkgs' CPython 3.11 and c7n with its
#   dependencies at exactly the versions and sha256 of crates/driver/requirements.lock (the
#   wheels `cargo xtask dist` unpacks into its full image; nix/python.nix), with the same
#   environment variables as that image, for the Python driver (`$CUSTODIAN_PYTHON`).
#
# The OCI layouts (worker-image-oci, worker-image-full-oci) are what `nix run .#deploy` pushes
# and what CI compares across two runners.
{
  pkgs,
  worker,
  python,
}:
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

  inherit (python) c7n;
  cpython = python.python;

  fullEnv = slimEnv ++ [
    "PATH=${c7n}/bin"
    "CUSTODIAN_PYTHON=${cpython.interpreter}"
    "PYTHONPATH=${c7n}/${cpython.sitePackages}"
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
