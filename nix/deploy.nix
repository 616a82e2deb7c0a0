# `nix run .#deploy`: push the worker image to ECR, then apply Terraform with the Lambda zip
# and the image pinned by digest. Arguments after `--` go to `tofu apply` unchanged.
# WORKER_IMAGE=full pushes the full image (CPython and c7n, for policies that do not all run
# natively) instead of the slim one.
#
#   ECR_REPOSITORY=123456789012.dkr.ecr.us-east-1.amazonaws.com/custodian-worker \
#   TF_DIR=terraform/examples/complete \
#   nix run .#deploy -- -var-file=prod.tfvars
#
# The image is tagged with its manifest digest (the repository's tags are immutable) and the
# task definition references `repository@sha256:...`, so a deploy is exactly the built image.
#
# `nix run .#demo`: the README's demo (a burst of events on moto with the local control
# plane) with the emulator and OpenTofu from this flake.
{
  pkgs,
  rust,
  image,
  tools,
}:
let
  deploy = pkgs.writeShellApplication {
    name = "czero-deploy";
    runtimeInputs = [
      tools.tofu
      tools.awscli2
      tools.skopeo
      tools.jq
      pkgs.coreutils
    ];
    text = ''
      : "''${ECR_REPOSITORY:?set ECR_REPOSITORY to the worker repository URI (<account>.dkr.ecr.<region>.amazonaws.com/<name>)}"
      tf_dir="''${TF_DIR:-terraform/examples/complete}"
      case "''${WORKER_IMAGE:-slim}" in
        slim) layout=${image.worker-image-oci} ref=latest ;;
        full) layout=${image.worker-image-full-oci} ref=full ;;
        *) echo "WORKER_IMAGE must be slim or full" >&2; exit 2 ;;
      esac
      zip=${rust.invoker-zip}/invoker.zip

      digest="sha256:$(jq -r '.manifests[0].digest' "$layout/index.json" | cut -d: -f2)"
      tag="sha256-''${digest#sha256:}"
      registry="''${ECR_REPOSITORY%%/*}"
      region="$(cut -d. -f4 <<<"$registry")"

      echo "pushing $layout ($digest) to $ECR_REPOSITORY:$tag"
      aws ecr get-login-password --region "$region" \
        | skopeo login --username AWS --password-stdin "$registry"
      # --preserve-digests: fail rather than push a re-encoded image with another digest.
      skopeo copy --preserve-digests "oci:$layout:$ref" "docker://$ECR_REPOSITORY:$tag"

      echo "applying $tf_dir with $zip ($(sha256sum "$zip" | cut -d' ' -f1))"
      tofu -chdir="$tf_dir" init -input=false
      tofu -chdir="$tf_dir" apply \
        -var "invoker_zip_path=$zip" \
        -var "worker_image=$ECR_REPOSITORY@$digest" \
        "$@"
    '';
  };

  # The demo binary is built with the native toolchain: it drives moto, OpenTofu, `czero
  # local`, the invoker and the workers as processes on this machine.
  demoBin = rust.native.binary "czero-demo" "czero-integration";
  demo = pkgs.writeShellApplication {
    name = "czero-demo";
    runtimeInputs = [
      tools.tofu
      tools.python
      rust.czero
      rust.worker
      rust.invoker
    ];
    text = ''
      export CZERO_PYTHON=${tools.python}/bin/python3
      exec ${demoBin}/bin/czero-demo "$@"
    '';
  };
in
{
  deploy = {
    type = "app";
    program = "${deploy}/bin/czero-deploy";
  };
  demo = {
    type = "app";
    program = "${demo}/bin/czero-demo";
  };
}
