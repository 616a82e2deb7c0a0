################################################################################
# Events
################################################################################

locals {
  # The event kinds the invoker understands, each an EventBridge pattern.
  event_rules = {
    for name, rule in {
      "cloudtrail-s3" = {
        enabled     = length(var.cloudtrail_s3_event_names) > 0
        description = "CloudTrail S3 API calls that can weaken a bucket (CreateBucket and friends)"
        pattern = {
          source        = ["aws.s3"]
          "detail-type" = ["AWS API Call via CloudTrail"]
          detail = {
            eventSource = ["s3.amazonaws.com"]
            eventName   = var.cloudtrail_s3_event_names
          }
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
