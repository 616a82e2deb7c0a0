################################################################################
# custodian-zero
################################################################################

output "region" {
  description = "Region of the emulated stack"
  value       = var.region
}

output "endpoint" {
  description = "URL of the emulator"
  value       = var.endpoint
}

output "queue_url" {
  description = "URL of the job queue"
  value       = module.custodian_zero.queue_url
}

output "queue_arn" {
  description = "ARN of the job queue"
  value       = module.custodian_zero.queue_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue"
  value       = module.custodian_zero.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue"
  value       = module.custodian_zero.dlq_arn
}

output "invoker_failures_queue_url" {
  description = "URL of the invoker-failures queue (null without the invoker)"
  value       = module.custodian_zero.invoker_failures_queue_url
}

output "policy_bucket" {
  description = "Name of the policy bucket"
  value       = module.custodian_zero.policy_bucket
}

output "output_bucket" {
  description = "Name of the output bucket"
  value       = module.custodian_zero.output_bucket
}

output "cluster_name" {
  description = "Name of the ECS cluster"
  value       = module.custodian_zero.cluster_name
}

output "service_name" {
  description = "Name of the worker service"
  value       = module.custodian_zero.service_name
}

output "invoker_function_name" {
  description = "Name of the invoker Lambda (null when not created)"
  value       = module.custodian_zero.invoker_function_name
}

output "invoker_environment" {
  description = "Environment for running the invoker locally"
  value       = module.custodian_zero.invoker_environment
}

output "worker_environment" {
  description = "Environment for running the worker locally"
  value       = module.custodian_zero.worker_environment
}

output "autoscaling_resource_id" {
  description = "Application Auto Scaling resource id of the service"
  value       = module.custodian_zero.autoscaling_resource_id
}

output "autoscaling_scale_out_policy_arn" {
  description = "ARN of the scale-out step policy"
  value       = module.custodian_zero.autoscaling_scale_out_policy_arn
}

output "autoscaling_scale_in_policy_arn" {
  description = "ARN of the scale-in step policy"
  value       = module.custodian_zero.autoscaling_scale_in_policy_arn
}

output "autoscaling_scale_out_alarm_name" {
  description = "Alarm that drives the scale-out policy"
  value       = module.custodian_zero.autoscaling_scale_out_alarm_name
}

output "autoscaling_scale_in_alarm_name" {
  description = "Alarm that drives the scale-in policy"
  value       = module.custodian_zero.autoscaling_scale_in_alarm_name
}

output "autoscaling_tiers" {
  description = "The scale-out tiers"
  value       = module.custodian_zero.autoscaling_tiers
}

output "alarm_names" {
  description = "Operational alarms by purpose"
  value       = module.custodian_zero.alarm_names
}

output "alarm_topic_arn" {
  description = "SNS topic the operational alarms notify (null: nobody)"
  value       = module.custodian_zero.alarm_topic_arn
}

output "alarm_topic_kms_key_arn" {
  description = "KMS key of the created alarm topic"
  value       = module.custodian_zero.alarm_topic_kms_key_arn
}

output "alarm_notifications" {
  description = "Who the operational alarms notify"
  value       = module.custodian_zero.alarm_notifications
}

output "event_rule_arns" {
  description = "EventBridge rules that invoke the invoker, by event kind"
  value       = module.custodian_zero.event_rule_arns
}

output "event_patterns" {
  description = "The rules' patterns (JSON) by rule name"
  value       = module.custodian_zero.event_patterns
}

output "invoker_role_arn" {
  description = "Role of the invoker (null when not created)"
  value       = module.custodian_zero.invoker_role_arn
}

output "task_role_arn" {
  description = "Role of the worker tasks"
  value       = module.custodian_zero.task_role_arn
}

output "protected_bucket_arns" {
  description = "Buckets the worker may never remediate"
  value       = module.custodian_zero.protected_bucket_arns
}

output "member_roles_configured" {
  description = "Whether the worker acts in other accounts through member roles"
  value       = module.custodian_zero.member_roles_configured
}

output "member_role_arns" {
  description = "Role ARNs (patterns) the worker may assume"
  value       = module.custodian_zero.member_role_arns
}
