################################################################################
# General
################################################################################

variable "region" {
  description = "AWS region to deploy to"
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Tags added to every resource"
  type        = map(string)
  default     = { Project = "custodian-zero" }
}

################################################################################
# Network
################################################################################

variable "vpc_id" {
  description = "VPC the worker tasks run in"
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints for SQS, S3, ECR, Logs and ECS) for the worker tasks"
  type        = list(string)
}

################################################################################
# Invoker
################################################################################

variable "invoker_zip_path" {
  description = "Path of the invoker's deployment zip (from `nix build .#invoker-zip` or `cargo xtask dist`)"
  type        = string
}

################################################################################
# Worker
################################################################################

variable "worker_image" {
  description = "Worker image URI, pushed to the module's ECR repository (custodian-worker) under an immutable tag"
  type        = string
}

################################################################################
# Alarms
################################################################################

variable "alarm_email_endpoints" {
  description = "E-mail addresses that receive the operational alarms"
  type        = list(string)
  default     = []
}
