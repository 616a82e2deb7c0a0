################################################################################
# General
################################################################################

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # A message stays invisible for the longest job plus a margin, so a slow job is never
  # handed to a second worker while the first is still on it.
  queue_visibility_timeout = var.worker_job_timeout_seconds + 60

  service_arn = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:service/${var.cluster_name}/${var.service_name}"

  alarm_actions = local.alarm_topic_arn == null ? [] : [local.alarm_topic_arn]
}
