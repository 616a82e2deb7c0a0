################################################################################
# General
################################################################################

variable "endpoint" {
  description = "URL of the AWS emulator (moto) every AWS service is sent to"
  type        = string
  default     = "http://127.0.0.1:5000"
}

variable "region" {
  description = "Region the emulator pretends to be"
  type        = string
  default     = "us-east-1"
}

################################################################################
# Invoker
################################################################################

variable "create_invoker" {
  description = "Register the invoker Lambda and its EventBridge rules in the emulator (the emulator stores it; running it needs Docker)"
  type        = bool
  default     = false
}

variable "invoker_zip_path" {
  description = "Path of the invoker's deployment zip; required when create_invoker is true"
  type        = string
  default     = null
}

variable "enable_fast_wake" {
  description = "Let the invoker raise the service from 0 to 1 as soon as it queues a job"
  type        = bool
  default     = true
}

################################################################################
# Worker
################################################################################

variable "worker_image" {
  description = "Worker image recorded in the task definition (the local control plane runs the worker itself)"
  type        = string
  default     = "custodian-worker:local"
}

variable "worker_idle_exit" {
  description = "Worker env IDLE_EXIT"
  type        = bool
  default     = false
}

################################################################################
# Autoscaling
################################################################################

variable "target_value" {
  description = "Jobs per task"
  type        = number
  default     = 5
}

variable "max_capacity" {
  description = "Most tasks"
  type        = number
  default     = 10
}

variable "scale_out_cooldown" {
  description = "Seconds between scale-out steps"
  type        = number
  default     = 60
}

variable "scale_in_cooldown" {
  description = "Seconds of zero backlog before scaling to 0"
  type        = number
  default     = 300
}

################################################################################
# Alarms
################################################################################

variable "alarm_email_endpoints" {
  description = "E-mail addresses subscribed to the alarm topic (none: alarms notify nobody)"
  type        = list(string)
  default     = []
}

################################################################################
# IAM
################################################################################

variable "policy_actions" {
  description = "Policy action types the worker role may perform (null: the module's default)"
  type        = list(string)
  default     = null
}

variable "protected_bucket_arns" {
  description = "Further buckets the worker may never remediate"
  type        = list(string)
  default     = []
}

variable "member_role_name" {
  description = "Role the worker assumes in other accounts (worker env MEMBER_ROLE_NAME); null: none"
  type        = string
  default     = null
}

variable "enable_security_hub_updates" {
  description = "Let the worker update Security Hub findings (BatchUpdateFindings)"
  type        = bool
  default     = false
}
