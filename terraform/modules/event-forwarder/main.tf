# A member account's half of event delivery: EventBridge rules with the central stack's
# patterns (the custodian-zero module's event_patterns output) that send what they match
# to the central account's event bus, where the invoker's rules pick it up. One per member
# account and region: CloudTrail and Config events reach EventBridge only in the account and
# region they happen in.

################################################################################
# General
################################################################################

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  role_arn   = var.create_role ? aws_iam_role.this[0].arn : var.role_arn
}

################################################################################
# Events
################################################################################

resource "aws_cloudwatch_event_rule" "this" {
  for_each = var.event_patterns

  name          = each.key
  description   = "custodian-zero: forward to the central event bus"
  event_pattern = each.value

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = var.event_patterns

  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "custodian-zero-central-bus"
  arn       = var.event_bus_arn
  # EventBridge needs a role to put events on another account's bus.
  role_arn = local.role_arn

  lifecycle {
    precondition {
      condition     = local.role_arn != null
      error_message = "role_arn must be set when create_role is false."
    }
  }
}

################################################################################
# IAM
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "PutEventsOnTheCentralBus"
    actions   = ["events:PutEvents"]
    resources = [var.event_bus_arn]
  }
}

resource "aws_iam_role" "this" {
  count = var.create_role ? 1 : 0

  name_prefix          = "${var.role_name_prefix}-"
  description          = "custodian-zero: EventBridge forwards security events to the central bus"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  count = var.create_role ? 1 : 0

  name   = "put-events"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.this.json
}
