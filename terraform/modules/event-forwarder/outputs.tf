################################################################################
# Events
################################################################################

output "rule_arns" {
  description = "The forwarding rules, by name"
  value       = { for k, r in aws_cloudwatch_event_rule.this : k => r.arn }
}

################################################################################
# IAM
################################################################################

output "role_arn" {
  description = "Role EventBridge puts events on the central bus with"
  value       = local.role_arn
}
