# `nix run .#deploy`: check the policies and the mapping, push the worker image to ECR, apply
# Terraform with the Lambda zip and the image pinned by digest, then upload the policies and
# the mapping the invoker reads. Arguments after `--` go to `tofu apply` unchanged.
# WORKER_IMAGE=full pushes the full image (CPython and c7n, for policies that do not all run
# natively) instead of the slim one.
#
#   ECR_REPOSITORY=123456789012.dkr.ecr.us-east-1.amazonaws.com/custodian-worker \
#   TF_DIR=terraform/examples/complete \
#   nix run .#deploy -- -var-file=prod.tfvars
#
# The policies and the mapping come from POLICY_ROOT (default: the working directory, like
# TF_DIR), laid out as the bucket is: every *.yml and *.yaml directly in policies/ goes to
# s3://<bucket>/policies/, config/policy-mappings.json to POLICY_MAPPING_KEY (the module's
# default, config/policy-mappings.json), as czero_testkit::upload_project_policies uploads
# them for the tests; so the mapping's keys name the files checked. The bucket is the Terraform
# root's `policy_bucket` output.
#
# The image is tagged with its manifest digest (the repository's tags are immutable) and the
# task definition references `repository@sha256:...`, so a deploy is exactly the built image.
#
# `nix run .#demo`: the README's demo (a burst of events on moto with the local control
# plane), with everything it reads from this flake: the project's Terraform, policies and
# mapping, moto from the locks, OpenTofu with the pinned AWS provider, czero and the worker.
{
  pkgs,
  rust,
  image,
  tools,
}:
let
  inherit (pkgs) lib;

  deploy = pkgs.writeShellApplication {
    name = "czero-deploy";
    runtimeInputs = [
      tools.tofu
      tools.awscli2
      tools.skopeo
      tools.jq
      rust.czero
      pkgs.coreutils
    ];
    text = ''
      : "''${ECR_REPOSITORY:?set ECR_REPOSITORY to the worker repository URI (<account>.dkr.ecr.<region>.amazonaws.com/<name>)}"
      tf_dir="''${TF_DIR:-terraform/examples/complete}"
      policy_root="''${POLICY_ROOT:-.}"
      policy_dir="$policy_root/policies"
      mapping="$policy_root/config/policy-mappings.json"
      mapping_key="''${POLICY_MAPPING_KEY:-config/policy-mappings.json}"
      case "''${WORKER_IMAGE:-slim}" in
        slim) layout=${image.worker-image-oci} ref=latest ;;
        full) layout=${image.worker-image-full-oci} ref=full ;;
        *) echo "WORKER_IMAGE must be slim or full" >&2; exit 2 ;;
      esac
      zip=${rust.invoker-zip}/invoker.zip

      shopt -s nullglob
      policies=("$policy_dir"/*.yml "$policy_dir"/*.yaml)
      if [ "''${#policies[@]}" -eq 0 ]; then
        echo "no *.yml or *.yaml policy in $policy_dir (set POLICY_ROOT)" >&2
        exit 2
      fi
      # Before anything changes in the account: every policy file, and the mapping with every
      # file it routes events to (its keys read under POLICY_ROOT), as the invoker loads them.
      czero validate "''${policies[@]}"
      czero validate --mapping "$mapping" --root "$policy_root"

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

      # The bucket exists only once applied; until the mapping is there the invoker fails
      # its events into the on-failure queue (`czero replay` re-sends them).
      bucket="$(tofu -chdir="$tf_dir" output -raw policy_bucket)"
      echo "uploading ''${#policies[@]} policies and $mapping to s3://$bucket"
      for policy in "''${policies[@]}"; do
        aws s3 cp --region "$region" "$policy" "s3://$bucket/policies/$(basename "$policy")"
      done
      aws s3 cp --region "$region" "$mapping" "s3://$bucket/$mapping_key"
    '';
  };

  # The demo binary is built with the native toolchain: it drives moto, OpenTofu, `czero
  # local`, the invoker and the workers as processes on this machine.
  demoBin = rust.native.binary "czero-demo" "czero-integration";

  # What the demo reads at run time (czero_testkit::project_root honours CZERO_PROJECT_ROOT):
  # the Terraform it applies to moto, the policies and mapping it uploads, moto's launcher.
  demoRoot = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../terraform
      ../policies
      ../config
      ../integration/moto
    ];
  };

  # `czero` and `custodian-worker` side by side (the harness looks for both in CZERO_BIN_DIR).
  demoBins = pkgs.symlinkJoin {
    name = "czero-demo-bins";
    paths = [
      rust.czero
      rust.worker
    ];
  };

  demo = pkgs.writeShellApplication {
    name = "czero-demo";
    runtimeInputs = [ pkgs.coreutils ];
    text = ''
      export CZERO_PROJECT_ROOT=${demoRoot}
      export CZERO_BIN_DIR=${demoBins}/bin
      export CZERO_PYTHON=${tools.python}/bin/python
      export CZERO_TERRAFORM=${tools.tofu}/bin/tofu
      export CZERO_TF_PLUGIN_DIR=${tools.tofuPluginDir}
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
