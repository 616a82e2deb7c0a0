# The production module applied to a local AWS emulator (moto): every AWS service is sent
# to var.endpoint with fixed test credentials. The emulator records what Terraform creates
# (queue, buckets, service, scalable target, step policies, alarms); the local control plane
# plays Application Auto Scaling and the ECS scheduler on top of it.

################################################################################
# General
################################################################################

provider "aws" {
  region                      = var.region
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    applicationautoscaling = var.endpoint
    cloudwatch             = var.endpoint
    ec2                    = var.endpoint
    ecr                    = var.endpoint
    ecs                    = var.endpoint
    events                 = var.endpoint
    iam                    = var.endpoint
    kms                    = var.endpoint
    lambda                 = var.endpoint
    logs                   = var.endpoint
    s3                     = var.endpoint
    sns                    = var.endpoint
    sqs                    = var.endpoint
    sts                    = var.endpoint
  }
}

################################################################################
# Network
################################################################################

# The ECS service needs subnets that exist in the emulator.
resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:An emulator VPC carries no traffic; there is nothing to log
  cidr_block = "10.42.0.0/16"
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.this.id
  cidr_block = "10.42.1.0/24"
}

# A VPC's default security group should allow nothing.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

################################################################################
# custodian-zero
################################################################################

module "custodian_zero" {
  source = "../../modules/custodian-zero"

  vpc_id     = aws_vpc.this.id
  subnet_ids = [aws_subnet.private.id]

  worker_image     = var.worker_image
  worker_idle_exit = var.worker_idle_exit

  create_invoker   = var.create_invoker
  invoker_zip_path = var.invoker_zip_path
  enable_fast_wake = var.enable_fast_wake

  # Images are not pushed to the emulator; the test stack must be destroyable with objects in it.
  create_ecr_repository = false
  bucket_force_destroy  = true
  # The emulator speaks plain HTTP and enforces bucket policies, so a TLS-only policy would
  # deny every request (as AWS would over HTTP). Real deployments keep the default, true.
  enforce_tls = false

  target_value       = var.target_value
  max_capacity       = var.max_capacity
  scale_out_cooldown = var.scale_out_cooldown
  scale_in_cooldown  = var.scale_in_cooldown

  alarm_email_endpoints = var.alarm_email_endpoints
  policy_actions        = var.policy_actions
  protected_bucket_arns = var.protected_bucket_arns

  member_role_name            = var.member_role_name
  enable_security_hub_updates = var.enable_security_hub_updates
}
