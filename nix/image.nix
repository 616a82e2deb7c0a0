# The worker image: the static worker, CA certificates, a non-root user, /etc/hosts so
# `localhost` resolves without DNS, and a writable /tmp. `created` stays at the epoch (the
# default) so the image digest depends on its contents only.
{ pkgs, worker }:
let
  uid = "65532";
  etc = pkgs.runCommand "worker-etc" { } ''
    mkdir -p $out/etc
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${uid}:${uid}:nonroot:/home/nonroot:/sbin/nologin\n' > $out/etc/passwd
    printf 'root:x:0:\nnonroot:x:${uid}:\n' > $out/etc/group
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > $out/etc/hosts
    printf 'hosts: files dns\n' > $out/etc/nsswitch.conf
  '';
  worker-image = pkgs.dockerTools.buildLayeredImage {
    name = "custodian-worker";
    tag = "latest";
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
    config = {
      User = "${uid}:${uid}";
      Entrypoint = [ "${worker}/bin/custodian-worker" ];
      WorkingDir = "/tmp";
      Env = [ "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" ];
    };
  };
  # `skopeo copy` into an `oci:` directory is byte-identical across runs (an `oci-archive:`
  # tar is not); this is what the deploy app pushes.
  worker-image-oci =
    pkgs.runCommand "worker-image-oci" { nativeBuildInputs = [ pkgs.skopeo ]; }
      ''
        skopeo --insecure-policy --tmpdir "$TMPDIR" copy \
          docker-archive:${worker-image} oci:$out:latest
      '';
in
{
  inherit worker-image worker-image-oci;
}
