################################################################################
# custodian-zero
################################################################################

output "queue_url" {
  description = "URL of the job queue"
  value       = module.custodian_zero.queue_url
}

output "policy_bucket" {
  description = "Bucket to upload policies and config/policy-mappings.json to"
  value       = module.custodian_zero.policy_bucket
}

output "output_bucket" {
  description = "Bucket receiving the policies' output"
  value       = module.custodian_zero.output_bucket
}

output "ecr_repository_url" {
  description = "Repository to push the worker image to"
  value       = module.custodian_zero.ecr_repository_url
}

output "cluster_name" {
  description = "ECS cluster"
  value       = module.custodian_zero.cluster_name
}

output "service_name" {
  description = "Worker service"
  value       = module.custodian_zero.service_name
}

output "invoker_function_name" {
  description = "Invoker Lambda"
  value       = module.custodian_zero.invoker_function_name
}

output "alarm_topic_arn" {
  description = "SNS topic of the operational alarms"
  value       = module.custodian_zero.alarm_topic_arn
}

output "alarm_notifications" {
  description = "Who the operational alarms notify"
  value       = module.custodian_zero.alarm_notifications
}

output "invoker_failures_queue_url" {
  description = "Events the invoker failed on, for `czero replay --queue-url`"
  value       = module.custodian_zero.invoker_failures_queue_url
}
