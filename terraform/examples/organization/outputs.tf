################################################################################
# custodian-zero (central account)
################################################################################

output "policy_bucket" {
  description = "Name of the policy bucket: upload config/policy-mappings.json and policies/ here"
  value       = module.custodian_zero.policy_bucket
}

output "ecr_repository_url" {
  description = "URL of the worker's ECR repository"
  value       = module.custodian_zero.ecr_repository_url
}

output "task_role_arn" {
  description = "Role of the worker tasks: the principal every member role trusts"
  value       = module.custodian_zero.task_role_arn
}

output "member_roles_configured" {
  description = "Whether the worker acts in other accounts through member roles"
  value       = module.custodian_zero.member_roles_configured
}

output "event_patterns" {
  description = "The central rules' patterns by rule name, for the forwarders of further member accounts"
  value       = module.custodian_zero.event_patterns
}

output "event_bus_arn" {
  description = "The central default bus the member accounts forward to"
  value       = data.aws_cloudwatch_event_bus.default.arn
}

################################################################################
# Member account
################################################################################

output "member_role_arn" {
  description = "The member account's role the worker assumes"
  value       = module.member_role.role_arn
}

output "forwarding_rule_arns" {
  description = "The member account's forwarding rules"
  value       = module.event_forwarder.rule_arns
}
