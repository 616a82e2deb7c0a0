################################################################################
# General
################################################################################

variable "region" {
  description = "AWS region of the central stack: the Security Hub aggregation region of the administrator account"
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Tags added to every resource"
  type        = map(string)
  default     = { Project = "custodian-zero" }
}

variable "organization_id" {
  description = "ID of the AWS Organization (o-...) whose accounts may put events on the central bus"
  type        = string

  validation {
    condition     = can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must be an AWS Organizations id (o- and 10 to 32 lowercase letters or digits)."
  }
}

variable "member_account_role_arn" {
  description = "Role Terraform assumes to deploy the member part (e.g. arn:aws:iam::<member>:role/OrganizationAccountAccessRole)"
  type        = string
}

################################################################################
# Network
################################################################################

variable "vpc_id" {
  description = "VPC the worker tasks run in"
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints for SQS, S3, ECR, Logs, ECS and STS) for the worker tasks"
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

################################################################################
# IAM
################################################################################

variable "member_role_name" {
  description = "Name of the role in every member account the worker acts through"
  type        = string
  default     = "custodian-zero-member"
}

variable "member_role_external_id" {
  description = "External id the worker passes and the member roles require (null: none)"
  type        = string
  default     = null
  sensitive   = true
}

variable "member_audit_only" {
  description = "Give the member account an audit-only role: policies report, remediations fail there"
  type        = bool
  default     = false
}

variable "member_protected_bucket_arns" {
  description = "Buckets in the member account the worker may never remediate (e.g. the organization's CloudTrail bucket in the log archive account)"
  type        = list(string)
  default     = []
}
