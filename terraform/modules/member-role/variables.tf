################################################################################
# General
################################################################################

variable "tags" {
  description = "Tags added to the role"
  type        = map(string)
  default     = {}
}

################################################################################
# IAM
################################################################################

variable "role_name" {
  description = "Name of the role (no path): the central module's member_role_name, the same in every account"
  type        = string
  default     = "custodian-zero-member"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be an IAM role name (1-64 of A-Z a-z 0-9 + = , . @ _ -), without a path."
  }
}

variable "worker_role_arn" {
  description = "ARN of the worker's task role in the central account (the custodian-zero module's task_role_arn output); the only principal that may assume this role"
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/.+$", var.worker_role_arn))
    error_message = "worker_role_arn must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)."
  }
}

variable "external_id" {
  description = "External id the worker must pass to assume the role (the central module's member_role_external_id). Null: none required"
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.external_id == null || (can(regex("^[A-Za-z0-9_+=,.@:/-]{2,}$", var.external_id)) && try(length(var.external_id) <= 1224, false))
    error_message = "external_id must be 2-1224 characters of A-Z a-z 0-9 _ + = , . @ : / -."
  }
}

variable "audit_only" {
  description = "Grant only the reads (Get, List, Describe, Head) of the permission table: policies find and report, remediation actions fail with AccessDenied in this account"
  type        = bool
  default     = false
}

variable "policy_actions" {
  description = "Policy action types (c7n `type:`) the role may perform; the IAM actions each needs come from permissions.json. `delete` (bucket and objects) is left out unless listed. Ignored for changing actions when audit_only"
  type        = list(string)
  nullable    = false
  default = [
    "set-bucket-encryption",
    "set-public-block",
    "delete-global-grants",
    "toggle-versioning",
    "tag",
    "remove-tag",
    "unmark",
    "mark-for-op",
    "set-statements",
  ]
}

variable "policy_permissions" {
  description = "Extra IAM actions on policy_permission_resources, for policies the custodian fallback runs (only the reads among them when audit_only)"
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for a in var.policy_permissions : can(regex("^[a-z0-9-]+:[A-Za-z][A-Za-z0-9]*$", a))])
    error_message = "policy_permissions must be exact \"service:Action\" entries (no wildcards: protected buckets are denied every changing S3 action listed here)."
  }
}

variable "policy_permission_resources" {
  description = "Bucket ARNs policies may read and remediate in this account (objects: the same with \"/*\"); null means every S3 bucket (arn:<partition>:s3:::*). protected_bucket_arns are denied all the same"
  type        = list(string)
  default     = null
}

variable "protected_bucket_arns" {
  description = "Bucket ARNs the worker may never remediate in this account (such as the organization's CloudTrail bucket): every remediation action and object write is denied on them and their objects"
  type        = list(string)
  nullable    = false
  default     = []
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the role"
  type        = string
  default     = null
}
