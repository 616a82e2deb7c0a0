# The pinned tools shared by the checks, the deploy app, the VM test and the dev shell.
# OpenTofu stands in for Terraform (Terraform >= 1.6 is unfree in nixpkgs and uncached).
{ pkgs }:
{
  tofu = pkgs.opentofu.withPlugins (p: [ p.hashicorp_aws ]);
  # moto's server plus the project's launcher (integration/moto/server.py) for its gaps.
  python = pkgs.python3.withPackages (
    ps: [ ps.moto ] ++ (ps.moto.optional-dependencies.server or [ ]) ++ [ ps.boto3 ]
  );
  inherit (pkgs)
    awscli2
    skopeo
    checkov
    localstack
    cargo-nextest
    jq
    ;
}
