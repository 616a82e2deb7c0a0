################################################################################
# General
################################################################################

variable "tags" {
  description = "Tags added to every resource that takes tags"
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the invoker's and the worker's CloudWatch log groups, in days"
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "logs_kms_key_arn" {
  description = "KMS key ARN that encrypts the log groups; null keeps CloudWatch Logs' own encryption"
  type        = string
  default     = null
}

################################################################################
# Queue
################################################################################

variable "queue_name" {
  description = "Name of the job queue; the dead-letter queue is named \"<queue_name>-dlq\""
  type        = string
  default     = "custodian-jobs"
}

variable "queue_kms_key_arn" {
  description = "KMS key ARN for the queues; null uses SQS-managed encryption (SSE-SQS)"
  type        = string
  default     = null
}

variable "queue_message_retention_seconds" {
  description = "How long a job waits in the queue before SQS drops it, in seconds"
  type        = number
  default     = 345600

  validation {
    condition     = var.queue_message_retention_seconds >= 60 && var.queue_message_retention_seconds <= 1209600
    error_message = "queue_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "dlq_max_receive_count" {
  description = "Receives after which a job that keeps failing moves to the dead-letter queue (redrive maxReceiveCount)"
  type        = number
  default     = 5

  validation {
    condition     = var.dlq_max_receive_count >= 1 && var.dlq_max_receive_count <= 1000 && floor(var.dlq_max_receive_count) == var.dlq_max_receive_count
    error_message = "dlq_max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long a failed job stays in the dead-letter queue, in seconds"
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "queue_admin_arns" {
  description = "Principal ARNs (wildcards allowed) that may send to the queues besides their producers (the invoker, the worker for the DLQ), e.g. the role operators redrive the DLQ with; the account root always may"
  type        = list(string)
  default     = []
}

################################################################################
# Buckets
################################################################################

variable "policy_bucket_name" {
  description = "Name of the bucket holding policies and the policy mapping; null lets AWS derive a unique name from \"custodian-policies-\""
  type        = string
  default     = null
}

variable "output_bucket_name" {
  description = "Name of the bucket receiving the policies' c7n-style output; null lets AWS derive a unique name from \"custodian-output-\""
  type        = string
  default     = null
}

variable "bucket_kms_key_arn" {
  description = "KMS key ARN for both buckets' default encryption; null uses SSE-S3 (AES256)"
  type        = string
  default     = null
}

variable "enforce_tls" {
  description = "Attach a bucket policy to both buckets that denies every request not made over TLS. Turn off only for an emulator that speaks plain HTTP."
  type        = bool
  default     = true
}

variable "output_expiration_days" {
  description = "Days after which policy output objects expire"
  type        = number
  default     = 90

  validation {
    condition     = var.output_expiration_days >= 1 && floor(var.output_expiration_days) == var.output_expiration_days
    error_message = "output_expiration_days must be a whole number of at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten (noncurrent) object versions expire, in both buckets"
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of at least 1."
  }
}

variable "bucket_force_destroy" {
  description = "Let `terraform destroy` delete the buckets with their objects (for test stacks only)"
  type        = bool
  default     = false
}

variable "ledger_prefix" {
  description = "Worker env LEDGER_PREFIX: key prefix (no slashes) of the per-job done markers in the output bucket; they expire a day after the queue's retention"
  type        = string
  default     = "ledger"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*$", var.ledger_prefix))
    error_message = "ledger_prefix must be a non-empty key prefix without slashes (letters, digits, '.', '_', '-')."
  }
}

variable "protected_bucket_arns" {
  description = "Bucket ARNs (besides the module's policy and output buckets) the worker may never remediate: every native remediation action is denied on them and their objects"
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.protected_bucket_arns : can(regex("^arn:[a-z-]+:s3:::[^/]+$", a))])
    error_message = "protected_bucket_arns must be bucket ARNs (arn:<partition>:s3:::<bucket>), without an object path."
  }
}

################################################################################
# Invoker
################################################################################

variable "create_invoker" {
  description = "Create the invoker Lambda and its EventBridge rules"
  type        = bool
  default     = true
}

variable "invoker_name" {
  description = "Name of the invoker Lambda function"
  type        = string
  default     = "custodian-invoker"
}

variable "invoker_zip_path" {
  description = "Path of the invoker's deployment zip (a `bootstrap` executable for provided.al2023); required when create_invoker is true"
  type        = string
  default     = null
}

variable "invoker_architecture" {
  description = "Instruction set the invoker binary was built for"
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.invoker_architecture)
    error_message = "invoker_architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "invoker_memory_size" {
  description = "Memory of the invoker Lambda, in MB"
  type        = number
  default     = 128

  validation {
    condition     = var.invoker_memory_size >= 128 && var.invoker_memory_size <= 10240
    error_message = "invoker_memory_size must be between 128 and 10240 MB."
  }
}

variable "invoker_timeout" {
  description = "Timeout of one invoker invocation, in seconds"
  type        = number
  default     = 30

  validation {
    condition     = var.invoker_timeout >= 1 && var.invoker_timeout <= 900
    error_message = "invoker_timeout must be between 1 and 900 seconds."
  }
}

variable "invoker_reserved_concurrency" {
  description = "Reserved concurrent executions of the invoker; null leaves it unreserved (EventBridge retries throttled events)"
  type        = number
  default     = null

  validation {
    condition     = var.invoker_reserved_concurrency == null ? true : var.invoker_reserved_concurrency >= 0
    error_message = "invoker_reserved_concurrency must be null or at least 0."
  }
}

variable "invoker_failure_destination_arn" {
  description = "SQS queue or SNS topic ARN receiving events the invoker failed on after Lambda's retries; null creates the \"<invoker_name>-failures\" queue (which `czero replay` reads)"
  type        = string
  default     = null
}

variable "invoker_tracing_mode" {
  description = "X-Ray tracing mode of the invoker (PassThrough or Active)"
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.invoker_tracing_mode)
    error_message = "invoker_tracing_mode must be \"PassThrough\" or \"Active\"."
  }
}

variable "policy_mapping_key" {
  description = "Key of the event-to-policy mapping in the policy bucket (invoker env POLICY_MAPPING_KEY)"
  type        = string
  default     = "config/policy-mappings.json"
}

variable "default_policy_key" {
  description = "Key of the policy used when the mapping has no entry for an event (invoker env DEFAULT_POLICY_KEY)"
  type        = string
  default     = "policies/s3-createbucket.yml"
}

variable "policy_key_prefixes" {
  description = "Key prefixes in the policy bucket that the invoker and the worker may read"
  type        = list(string)
  default     = ["config/", "policies/"]

  validation {
    condition     = length(var.policy_key_prefixes) > 0 && alltrue([for p in var.policy_key_prefixes : length(p) > 0 && !startswith(p, "/")])
    error_message = "policy_key_prefixes must list at least one non-empty prefix, none starting with \"/\"."
  }
}

variable "enable_fast_wake" {
  description = "Let the invoker raise the service from 0 to 1 task as soon as it queues a job (sets WAKE_CLUSTER and WAKE_SERVICE; adds the scale-in guard to the scale-in alarm, which needs container_insights)"
  type        = bool
  default     = false
}

################################################################################
# Events
################################################################################

# CloudTrail records the S3 API DeletePublicAccessBlock under the event name
# DeleteBucketPublicAccessBlock; both spellings are listed so the rule matches either.
variable "cloudtrail_s3_event_names" {
  description = "CloudTrail S3 API calls (eventName) that invoke the invoker"
  type        = list(string)
  default = [
    "CreateBucket",
    "PutBucketPolicy",
    "PutBucketAcl",
    "DeletePublicAccessBlock",
    "DeleteBucketPublicAccessBlock",
    "PutBucketEncryption",
    "DeleteBucketEncryption",
    # The shipped mapping's s3-settings-changed rule (config/policy-mappings.json).
    "PutBucketPublicAccessBlock",
    "PutBucketVersioning",
    "PutBucketTagging",
    "DeleteBucketTagging",
  ]
}

variable "enable_security_hub_events" {
  description = "Invoke the invoker on Security Hub \"Security Hub Findings - Imported\" events"
  type        = bool
  default     = true
}

variable "enable_guardduty_events" {
  description = "Invoke the invoker on \"GuardDuty Finding\" events"
  type        = bool
  default     = true
}

variable "enable_config_events" {
  description = "Invoke the invoker on AWS Config \"Config Rules Compliance Change\" events"
  type        = bool
  default     = true
}

################################################################################
# Worker
################################################################################

variable "create_ecr_repository" {
  description = "Create an ECR repository for the worker image"
  type        = bool
  default     = true
}

variable "ecr_repository_name" {
  description = "Name of the worker's ECR repository"
  type        = string
  default     = "custodian-worker"
}

variable "ecr_kms_key_arn" {
  description = "KMS key ARN for the ECR repository; null uses the AWS-managed KMS key"
  type        = string
  default     = null
}

variable "worker_image_repository_arns" {
  description = "ARNs of ECR repositories (besides the one this module creates) that the task may pull the worker image from"
  type        = list(string)
  default     = []
}

variable "cluster_name" {
  description = "Name of the ECS cluster"
  type        = string
  default     = "custodian-cluster"
}

variable "container_insights" {
  description = "Container Insights on the cluster (enabled, enhanced or disabled); the ecs-service-stuck-running alarm reads its DesiredTaskCount metric"
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be \"enabled\", \"enhanced\" or \"disabled\"."
  }
}

variable "service_name" {
  description = "Name of the ECS service (and task family and container) running the worker"
  type        = string
  default     = "custodian-worker"
}

variable "worker_image" {
  description = "Worker container image, for example \"<account>.dkr.ecr.<region>.amazonaws.com/custodian-worker:<tag>\". Push the slim image when `czero validate --native` says every policy runs natively, the full one (custodian-worker:full, with Cloud Custodian) otherwise: the slim image sends a job that needs Cloud Custodian to the DLQ at once"
  type        = string
}

variable "worker_architecture" {
  description = "CPU architecture of the worker image (X86_64 or ARM64)"
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.worker_architecture)
    error_message = "worker_architecture must be \"X86_64\" or \"ARM64\"."
  }
}

variable "worker_cpu" {
  description = "Task CPU units (256 = 0.25 vCPU, the smallest Fargate size)"
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.worker_cpu)
    error_message = "worker_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "worker_memory" {
  description = "Task memory in MB (512 pairs with 256 CPU units)"
  type        = number
  default     = 512

  validation {
    condition     = var.worker_memory >= 512 && var.worker_memory <= 122880
    error_message = "worker_memory must be between 512 and 122880 MB (and a size Fargate allows for worker_cpu)."
  }
}

variable "worker_user" {
  description = "User (uid[:gid]) the worker container runs as; never root"
  type        = string
  default     = "65532:65532"

  validation {
    condition     = can(regex("^[1-9][0-9]*(:[0-9]+)?$", var.worker_user))
    error_message = "worker_user must be a numeric non-zero uid, optionally with \":gid\"."
  }
}

variable "max_empty_receives" {
  description = "Worker env MAX_EMPTY_RECEIVES: consecutive empty long polls before an idle worker exits (only when worker_idle_exit is true)"
  type        = number
  default     = 3

  validation {
    condition     = var.max_empty_receives >= 1 && var.max_empty_receives <= 100 && floor(var.max_empty_receives) == var.max_empty_receives
    error_message = "max_empty_receives must be a whole number from 1 to 100."
  }
}

variable "wait_time_seconds" {
  description = "Worker env WAIT_TIME_SECONDS: SQS long-poll duration"
  type        = number
  default     = 20

  validation {
    condition     = var.wait_time_seconds >= 0 && var.wait_time_seconds <= 20 && floor(var.wait_time_seconds) == var.wait_time_seconds
    error_message = "wait_time_seconds must be a whole number from 0 to 20 (the SQS maximum)."
  }
}

# A task that exits while the service's desired count is unchanged is replaced by the ECS
# scheduler, so idle exit inside a service buys relaunches, not savings; scale-in to 0 is the
# scale-in alarm's job. The default follows the simulator's measurements (docs/tuning.md).
variable "worker_idle_exit" {
  description = "Worker env IDLE_EXIT: exit after MAX_EMPTY_RECEIVES empty polls; false inside a service (ECS replaces exited tasks)"
  type        = bool
  default     = false
}

variable "worker_job_timeout_seconds" {
  description = "Worker env JOB_TIMEOUT_SECONDS: longest a job may run; the queue's visibility timeout is this plus 60 s"
  type        = number
  default     = 300

  validation {
    condition     = var.worker_job_timeout_seconds >= 1 && var.worker_job_timeout_seconds <= 43140 && floor(var.worker_job_timeout_seconds) == var.worker_job_timeout_seconds
    error_message = "worker_job_timeout_seconds must be a whole number from 1 to 43140 (visibility timeout at most 12 hours)."
  }
}

variable "worker_environment" {
  description = "Extra environment variables for the worker container (they cannot override the module's own)"
  type        = map(string)
  default     = {}
}

variable "subnet_ids" {
  description = "Subnets (private, with a route to AWS APIs through NAT or VPC endpoints) for the worker tasks"
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one subnet."
  }
}

variable "vpc_id" {
  description = "VPC of the subnets; the module creates the worker's security group there"
  type        = string
}

variable "worker_egress_cidr_blocks" {
  description = "CIDR blocks the worker may reach on HTTPS (443): AWS APIs through NAT or VPC endpoints"
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "security_group_ids" {
  description = "Extra security groups for the worker tasks"
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give worker tasks a public IP (only for public subnets without NAT)"
  type        = bool
  default     = false
}

################################################################################
# Autoscaling
################################################################################

variable "target_value" {
  description = "Jobs per task: a backlog (visible + in-flight) of b asks for min(max_capacity, ceil(b / target_value)) tasks"
  type        = number
  default     = 5

  validation {
    condition     = var.target_value >= 1 && var.target_value <= 1000
    error_message = "target_value must be between 1 and 1000."
  }
}

variable "min_capacity" {
  description = "Fewest tasks; 0 lets the service scale to zero"
  type        = number
  default     = 0

  validation {
    condition     = var.min_capacity >= 0 && floor(var.min_capacity) == var.min_capacity
    error_message = "min_capacity must be a whole number of at least 0."
  }
}

variable "max_capacity" {
  description = "Most tasks; one scale-out step per task count, so at most 20 (the AWS limit of step adjustments per policy)"
  type        = number
  default     = 10

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 20 && floor(var.max_capacity) == var.max_capacity
    error_message = "max_capacity must be a whole number from 1 to 20."
  }
}

variable "scale_out_cooldown" {
  description = "Seconds after a scale-out step before the scale-out policy acts again"
  type        = number
  default     = 60

  validation {
    condition     = var.scale_out_cooldown >= 0 && var.scale_out_cooldown <= 3600
    error_message = "scale_out_cooldown must be between 0 and 3600 seconds."
  }
}

variable "scale_in_cooldown" {
  description = "Seconds the backlog must stay 0 before the service scales to 0 (rounded up to whole minutes), and the scale-in policy's cooldown"
  type        = number
  default     = 300

  validation {
    condition     = var.scale_in_cooldown >= 60 && var.scale_in_cooldown <= 86400
    error_message = "scale_in_cooldown must be between 60 and 86400 seconds."
  }
}

################################################################################
# Alarms
################################################################################

variable "alarm_name_prefix" {
  description = "Prefix for every alarm name (empty keeps the runbook's names, such as \"sqs-queue-backlog\")"
  type        = string
  default     = ""
}

variable "create_alarm_topic" {
  description = "Create an SNS topic for the operational alarms even without alarm_email_endpoints (to subscribe other endpoints later); ignored when alarm_topic_arn is set"
  type        = bool
  default     = false
}

variable "alarm_topic_arn" {
  description = "Existing SNS topic ARN the operational alarms notify; its key (if any) must let cloudwatch.amazonaws.com use it. Null: a topic is created when create_alarm_topic is true or alarm_email_endpoints is not empty, otherwise alarms notify nobody"
  type        = string
  default     = null
}

variable "alarm_email_endpoints" {
  description = "E-mail addresses subscribed to the alarm topic the module creates (each must confirm the subscription)"
  type        = list(string)
  default     = []
}

variable "alarm_topic_kms_key_arn" {
  description = "Customer-managed KMS key ARN for the created alarm topic; its key policy must let cloudwatch.amazonaws.com use kms:Decrypt and kms:GenerateDataKey*. Null creates such a key"
  type        = string
  default     = null
}

variable "queue_age_alarm_threshold" {
  description = "sqs-queue-backlog fires when the oldest job is older than this many seconds for 2 periods of 300 s"
  type        = number
  default     = 600

  validation {
    condition     = var.queue_age_alarm_threshold >= 60
    error_message = "queue_age_alarm_threshold must be at least 60 seconds."
  }
}

################################################################################
# IAM
################################################################################

variable "policy_actions" {
  description = "Policy action types (c7n `type:`) the worker role may perform natively; the IAM actions each needs come from permissions.json. `delete` (bucket and objects) is left out unless listed"
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
  description = "Extra IAM actions on policy_permission_resources, for policies the custodian fallback runs (features the engine does not run natively); the native ones come from permissions.json"
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.policy_permissions : can(regex("^[a-z0-9-]+:[A-Za-z][A-Za-z0-9]*$", a))])
    error_message = "policy_permissions must be exact \"service:Action\" entries (no wildcards: the module's own buckets are denied every changing S3 action listed here)."
  }
}

variable "policy_permission_resources" {
  description = "Bucket ARNs policies may read and remediate (objects: the same with \"/*\"); null means every S3 bucket of the partition (arn:<partition>:s3:::*). The module's buckets and protected_bucket_arns are denied all the same"
  type        = list(string)
  default     = null
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the module's IAM roles"
  type        = string
  default     = null
}

variable "member_role_name" {
  description = "Name (no path) of the role every member account of the organization gives the worker (the member-role module), worker env MEMBER_ROLE_NAME: for an event from another account the worker assumes arn:<partition>:iam::<account>:role/<name> and acts there. Null: the worker acts only in this account"
  type        = string
  default     = null

  validation {
    condition     = var.member_role_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.member_role_name))
    error_message = "member_role_name must be an IAM role name (1-64 of A-Z a-z 0-9 + = , . @ _ -), without a path."
  }
}

variable "member_role_external_id" {
  description = "External id the worker passes when it assumes a member role (worker env MEMBER_ROLE_EXTERNAL_ID); the member roles' trust policies must require the same value. Null: none"
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.member_role_external_id == null || (can(regex("^[A-Za-z0-9_+=,.@:/-]{2,}$", var.member_role_external_id)) && try(length(var.member_role_external_id) <= 1224, false))
    error_message = "member_role_external_id must be 2-1224 characters of A-Z a-z 0-9 _ + = , . @ : / -."
  }
}

variable "member_role_arns" {
  description = "Further role ARNs (wildcards allowed, e.g. \"arn:aws:iam::*:role/custodian-audit\") the worker may assume: the roles policies name in mode.member-role"
  type        = list(string)
  nullable    = false
  default     = []

  validation {
    condition     = alltrue([for a in var.member_role_arns : can(regex("^arn:[a-z-]+:iam::[0-9*]*:role/.+$", a))])
    error_message = "member_role_arns must be IAM role ARNs (arn:<partition>:iam::<account or *>:role/<name>)."
  }
}

variable "enable_security_hub_updates" {
  description = "Let the worker call securityhub:BatchUpdateFindings on this account's hub (mapping rules with update_finding set a finding's workflow status after its job). Off by default: the same call can also suppress findings, so a deployment opts in"
  type        = bool
  default     = false
}
