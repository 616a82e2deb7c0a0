################################################################################
# General
################################################################################

output "region" {
  description = "Region the stack is deployed in"
  value       = local.region
}

################################################################################
# Queue
################################################################################

output "queue_url" {
  description = "URL of the job queue (SQS_QUEUE_URL)"
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the job queue"
  value       = aws_sqs_queue.this.arn
}

output "queue_name" {
  description = "Name of the job queue"
  value       = aws_sqs_queue.this.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue"
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue"
  value       = aws_sqs_queue.dlq.arn
}

output "invoker_failures_queue_url" {
  description = "URL of the queue holding events the invoker failed on (Lambda's on-failure records, for `czero replay --queue-url`); null when invoker_failure_destination_arn names another destination or there is no invoker"
  value       = try(aws_sqs_queue.invoker_failures[0].url, null)
}

output "invoker_failures_queue_arn" {
  description = "ARN of the invoker-failures queue (null when not created)"
  value       = try(aws_sqs_queue.invoker_failures[0].arn, null)
}

################################################################################
# Buckets
################################################################################

output "policy_bucket" {
  description = "Name of the policy bucket (POLICY_BUCKET)"
  value       = aws_s3_bucket.policy.id
}

output "output_bucket" {
  description = "Name of the output bucket (OUTPUT_BUCKET)"
  value       = aws_s3_bucket.output.id
}

################################################################################
# Invoker
################################################################################

output "invoker_function_name" {
  description = "Name of the invoker Lambda (null when create_invoker is false)"
  value       = try(aws_lambda_function.invoker[0].function_name, null)
}

output "invoker_function_arn" {
  description = "ARN of the invoker Lambda (null when create_invoker is false)"
  value       = try(aws_lambda_function.invoker[0].arn, null)
}

output "invoker_environment" {
  description = "Environment of the invoker, for running it elsewhere (locally, in tests)"
  value       = local.invoker_environment
}

################################################################################
# Events
################################################################################

output "event_rule_arns" {
  description = "EventBridge rules that invoke the invoker, by event kind"
  value       = { for k, r in aws_cloudwatch_event_rule.this : k => r.arn }
}

output "event_patterns" {
  description = "Event pattern (JSON) of each EventBridge rule, by rule name: member accounts forward the events these match to this account's default bus (the event-forwarder module)"
  value       = { for k, r in local.event_rules : "${var.invoker_name}-${k}" => jsonencode(r.pattern) }
}

################################################################################
# Worker
################################################################################

output "ecr_repository_url" {
  description = "URL of the worker's ECR repository (null when not created)"
  value       = try(aws_ecr_repository.worker[0].repository_url, null)
}

output "cluster_name" {
  description = "Name of the ECS cluster"
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster"
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the worker service"
  value       = aws_ecs_service.worker.name
}

output "task_definition_arn" {
  description = "ARN of the worker task definition"
  value       = aws_ecs_task_definition.worker.arn
}

output "worker_environment" {
  description = "Environment of the worker container, for running it elsewhere (locally, in tests); MEMBER_ROLE_EXTERNAL_ID, sensitive, is left out"
  value       = local.worker_environment
}

output "worker_log_group_name" {
  description = "Log group of the worker tasks"
  value       = aws_cloudwatch_log_group.worker.name
}

output "worker_security_group_id" {
  description = "Security group of the worker tasks"
  value       = aws_security_group.worker.id
}

################################################################################
# Autoscaling
################################################################################

output "autoscaling_resource_id" {
  description = "Application Auto Scaling resource id of the service (service/<cluster>/<service>)"
  value       = aws_appautoscaling_target.worker.resource_id
}

output "autoscaling_scale_out_policy_arn" {
  description = "ARN of the scale-out step policy"
  value       = aws_appautoscaling_policy.scale_out.arn
}

output "autoscaling_scale_in_policy_arn" {
  description = "ARN of the scale-in (to 0) step policy"
  value       = aws_appautoscaling_policy.scale_in.arn
}

output "autoscaling_scale_out_alarm_name" {
  description = "Alarm (backlog > 0) that drives the scale-out policy"
  value       = aws_cloudwatch_metric_alarm.scale_out.alarm_name
}

output "autoscaling_scale_in_alarm_name" {
  description = "Alarm (backlog 0 for the scale-in period) that drives the scale-in policy"
  value       = aws_cloudwatch_metric_alarm.scale_in.alarm_name
}

output "autoscaling_tiers" {
  description = "The scale-out tiers: capacity, lower_bound (inclusive) and upper_bound (exclusive) of the backlog"
  value       = module.scaling_tiers.tiers
}

################################################################################
# Alarms
################################################################################

output "alarm_names" {
  description = "Operational alarms by purpose"
  value = merge(
    {
      service_stuck_running = aws_cloudwatch_metric_alarm.service_stuck_running.alarm_name
      queue_backlog         = aws_cloudwatch_metric_alarm.queue_backlog.alarm_name
      dlq_not_empty         = aws_cloudwatch_metric_alarm.dlq_not_empty.alarm_name
    },
    local.create_invoker_failures_queue ? {
      invoker_failures_not_empty = aws_cloudwatch_metric_alarm.invoker_failures_not_empty[0].alarm_name
    } : {},
  )
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the operational alarms (null when there is none)"
  value       = local.alarm_topic_arn
}

output "alarm_topic_kms_key_arn" {
  description = "KMS key encrypting the alarm topic the module created (null when it created none)"
  value       = local.create_alarm_topic ? local.alarm_topic_kms_key : null
}

output "alarm_notifications" {
  description = "Who the operational alarms notify, in one sentence"
  value = (
    local.alarm_topic_arn == null
    ? "Alarms notify nobody: set alarm_email_endpoints or alarm_topic_arn."
    : length(local.alarm_email_endpoints) > 0
    ? "Alarms notify SNS topic ${local.alarm_topic_arn}, subscribed by ${join(", ", sort(tolist(local.alarm_email_endpoints)))} (each must confirm the subscription e-mail)."
    : "Alarms notify SNS topic ${local.alarm_topic_arn}."
  )
}

################################################################################
# IAM
################################################################################

output "invoker_role_arn" {
  description = "Role of the invoker Lambda (null when create_invoker is false)"
  value       = try(aws_iam_role.invoker[0].arn, null)
}

output "task_execution_role_arn" {
  description = "Role ECS uses to pull the worker image and ship its logs"
  value       = aws_iam_role.task_execution.arn
}

output "task_role_arn" {
  description = "Role of the worker tasks (its own CloudTrail events never trigger the invoker)"
  value       = aws_iam_role.task.arn
}

output "member_roles_configured" {
  description = "Whether the worker acts in other accounts through member roles (member_role_name is set: worker env MEMBER_ROLE_NAME, sts:AssumeRole on that role in every account)"
  value       = var.member_role_name != null
}

output "member_role_arns" {
  description = "Role ARNs (patterns) the worker may assume: the member role in every account and member_role_arns; empty when none"
  value       = local.member_role_arns
}

output "protected_bucket_arns" {
  description = "Buckets the worker role may never remediate (the module's two and protected_bucket_arns)"
  value       = local.protected_bucket_arns
}
