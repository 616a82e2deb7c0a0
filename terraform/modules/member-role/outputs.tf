################################################################################
# IAM
################################################################################

output "role_arn" {
  description = "ARN of the member role"
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the member role (the central module's member_role_name)"
  value       = aws_iam_role.this.name
}

output "audit_only" {
  description = "Whether the role only reads"
  value       = var.audit_only
}

output "granted_actions" {
  description = "The IAM actions the role allows, by permissions.json scope (any, buckets, objects, kms-keys)"
  value       = { for k, v in local.grants : k => v if length(v) > 0 }
}
