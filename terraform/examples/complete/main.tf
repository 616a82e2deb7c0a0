# custodian-zero in a real AWS account: an existing VPC with private subnets, the invoker
# zip and the worker image built from this repository, the design document's scaling
# defaults, fast wake on, and an SNS topic for the operational alarms.

################################################################################
# General
################################################################################

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

################################################################################
# custodian-zero
################################################################################

module "custodian_zero" {
  source = "../../modules/custodian-zero"

  vpc_id     = var.vpc_id
  subnet_ids = var.private_subnet_ids

  invoker_zip_path = var.invoker_zip_path
  enable_fast_wake = true

  worker_image = var.worker_image

  # The design document's "Medium volume" row.
  target_value       = 5
  min_capacity       = 0
  max_capacity       = 10
  scale_out_cooldown = 60
  scale_in_cooldown  = 300

  create_alarm_topic    = true
  alarm_email_endpoints = var.alarm_email_endpoints
}
