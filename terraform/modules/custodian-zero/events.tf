################################################################################
# Events
################################################################################

locals {
  # The worker's own remediation calls (PutBucketEncryption, PutPublicAccessBlock, ...) are
  # CloudTrail events too; without this they would queue jobs for the buckets it just
  # fixed. An assumed role's calls carry userIdentity.sessionContext.sessionIssuer.arn (the
  # role); calls by IAM users and the root have no sessionIssuer, and `anything-but` never
  # matches a missing field, so the second branch keeps them.
  #
  # With member roles the worker's calls in a member account are made by that account's
  # member role, whatever the account. The filters of one field are ORed, so excluding both
  # needs a single `anything-but`: with a `wildcard` list (EventBridge event buses accept
  # `anything-but` with `wildcard`, a value or a list; moto's matcher too), the worker's role
  # exactly and the member role in any account. The worker's role has no path and its name
  # cannot contain `*`, so as a wildcard its ARN matches only itself.
  # (Through JSON: the two branches are of different types.)
  exclude_worker_arns = jsondecode(
    local.member_role_pattern == null
    ? jsonencode({ "anything-but" = [aws_iam_role.task.arn] })
    : jsonencode({ "anything-but" = { wildcard = [aws_iam_role.task.arn, local.member_role_pattern] } })
  )
  exclude_worker_calls = {
    "$or" = [
      { userIdentity = { sessionContext = { sessionIssuer = { arn = [local.exclude_worker_arns] } } } },
      { userIdentity = { sessionContext = { sessionIssuer = { arn = [{ exists = false }] } } } },
    ]
  }

  # The event kinds the invoker understands, each an EventBridge pattern.
  event_rules = {
    for name, rule in {
      "cloudtrail-s3" = {
        enabled     = length(var.cloudtrail_s3_event_names) > 0
        description = "CloudTrail S3 API calls that can weaken a bucket (CreateBucket and friends)"
        pattern = {
          source        = ["aws.s3"]
          "detail-type" = ["AWS API Call via CloudTrail"]
          detail = merge(
            {
              eventSource = ["s3.amazonaws.com"]
              eventName   = var.cloudtrail_s3_event_names
            },
            local.exclude_worker_calls,
          )
        }
      }
      "securityhub" = {
        enabled     = var.enable_security_hub_events
        description = "Security Hub findings imported"
        pattern = {
          source        = ["aws.securityhub"]
          "detail-type" = ["Security Hub Findings - Imported"]
        }
      }
      "guardduty" = {
        enabled     = var.enable_guardduty_events
        description = "GuardDuty findings"
        pattern = {
          source        = ["aws.guardduty"]
          "detail-type" = ["GuardDuty Finding"]
        }
      }
      "config" = {
        enabled     = var.enable_config_events
        description = "AWS Config rule compliance changes"
        pattern = {
          source        = ["aws.config"]
          "detail-type" = ["Config Rules Compliance Change"]
        }
      }
    } : name => rule if var.create_invoker && rule.enabled
  }
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each = local.event_rules

  name          = "${var.invoker_name}-${each.key}"
  description   = each.value.description
  event_pattern = jsonencode(each.value.pattern)

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = local.event_rules

  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "invoker"
  arn       = aws_lambda_function.invoker[0].arn
}

resource "aws_lambda_permission" "events" {
  for_each = local.event_rules

  statement_id  = "AllowEventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.invoker[0].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.key].arn
}
