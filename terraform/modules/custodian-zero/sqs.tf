################################################################################
# Queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.queue_name}-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds

  sqs_managed_sse_enabled           = var.queue_kms_key_arn == null ? true : null
  kms_master_key_id                 = var.queue_kms_key_arn
  kms_data_key_reuse_period_seconds = var.queue_kms_key_arn == null ? null : 300

  tags = var.tags
}

resource "aws_sqs_queue" "this" {
  name                       = var.queue_name
  visibility_timeout_seconds = local.queue_visibility_timeout
  message_retention_seconds  = var.queue_message_retention_seconds
  receive_wait_time_seconds  = var.wait_time_seconds

  sqs_managed_sse_enabled           = var.queue_kms_key_arn == null ? true : null
  kms_master_key_id                 = var.queue_kms_key_arn
  kms_data_key_reuse_period_seconds = var.queue_kms_key_arn == null ? null : 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.dlq_max_receive_count
  })

  tags = var.tags
}

# Events the invoker failed on after Lambda's retries, as Lambda's on-failure records
# ({requestContext, requestPayload, responseContext, responsePayload}): `czero replay`
# re-invokes the function with each requestPayload. Not the job DLQ, whose consumer (the
# worker) rejects anything that is not a job.
resource "aws_sqs_queue" "invoker_failures" {
  count = local.create_invoker_failures_queue ? 1 : 0

  name                      = "${var.invoker_name}-failures"
  message_retention_seconds = 1209600

  sqs_managed_sse_enabled           = var.queue_kms_key_arn == null ? true : null
  kms_master_key_id                 = var.queue_kms_key_arn
  kms_data_key_reuse_period_seconds = var.queue_kms_key_arn == null ? null : 300

  tags = var.tags
}

# Who may put messages on the queues. A job names policies the worker runs with its
# remediation role, so only the invoker may queue one; only the worker (a message that is
# not a job) may write the DLQ (SQS's own redrive needs no permission); only the invoker's
# Lambda destination may write its failures queue. Each queue denies SendMessage to every
# other principal, except the account root and queue_admin_arns (an operator redriving the
# DLQ sends with their own identity). Nothing else is denied: administrators still manage
# the queues.
locals {
  queue_admin_arns = concat(["arn:${local.partition}:iam::${local.account_id}:root"], var.queue_admin_arns)

  invoker_role_arns = var.create_invoker ? [aws_iam_role.invoker[0].arn] : []

  queue_senders = merge(
    {
      jobs = { queue = aws_sqs_queue.this, senders = concat(local.invoker_role_arns, local.queue_admin_arns) }
      # The invoker writes the DLQ too when it is the on-failure destination.
      dlq = {
        queue   = aws_sqs_queue.dlq
        senders = concat([aws_iam_role.task.arn], local.invoker_failure_destination_arn == aws_sqs_queue.dlq.arn ? local.invoker_role_arns : [], local.queue_admin_arns)
      }
    },
    local.create_invoker_failures_queue ? {
      invoker_failures = { queue = aws_sqs_queue.invoker_failures[0], senders = concat(local.invoker_role_arns, local.queue_admin_arns) }
    } : {},
  )
}

data "aws_iam_policy_document" "queue_senders" {
  for_each = local.queue_senders

  statement {
    sid       = "OnlyKnownSenders"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [each.value.queue.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotLike"
      variable = "aws:PrincipalArn"
      values   = each.value.senders
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  for_each = local.queue_senders

  queue_url = each.value.queue.url
  policy    = data.aws_iam_policy_document.queue_senders[each.key].json
}
