################################################################################
# Alarms
################################################################################

# Who hears the alarms: an existing topic (alarm_topic_arn), or one the module creates when
# asked (create_alarm_topic) or when there are e-mail addresses to subscribe. CloudWatch
# cannot publish to a topic encrypted with the AWS-managed key alias/aws/sns (its key
# policy cannot be changed to let CloudWatch use it), so the created topic uses a
# customer-managed key whose policy lets cloudwatch.amazonaws.com encrypt with it: the
# operator's (alarm_topic_kms_key_arn) or one created here. With no topic the alarms still
# change state, but notify nobody: the `alarm_notifications` output says so.

locals {
  create_alarm_topic    = var.alarm_topic_arn == null && (var.create_alarm_topic || length(var.alarm_email_endpoints) > 0)
  create_alarm_kms_key  = local.create_alarm_topic && var.alarm_topic_kms_key_arn == null
  alarm_topic_kms_key   = local.create_alarm_kms_key ? aws_kms_key.alarms[0].arn : var.alarm_topic_kms_key_arn
  alarm_topic_arn       = var.alarm_topic_arn != null ? var.alarm_topic_arn : (local.create_alarm_topic ? aws_sns_topic.alarms[0].arn : null)
  alarm_email_endpoints = local.create_alarm_topic ? toset(var.alarm_email_endpoints) : toset([])
}

data "aws_iam_policy_document" "alarm_key" {
  count = local.create_alarm_kms_key ? 1 : 0

  # Without this statement nobody could administer the key (AWS's default key policy).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch encrypts each alarm notification it publishes to the topic. The statement
  # AWS documents for this, without conditions: the key encrypts nothing but this topic.
  statement {
    sid       = "CloudWatchPublishes"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "alarms" {
  count = local.create_alarm_kms_key ? 1 : 0

  description         = "custodian-zero: encrypts the alarm topic; CloudWatch may use it to publish"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.alarm_key[0].json

  tags = var.tags
}

resource "aws_kms_alias" "alarms" {
  count = local.create_alarm_kms_key ? 1 : 0

  name          = "alias/${var.alarm_name_prefix}custodian-alarms"
  target_key_id = aws_kms_key.alarms[0].key_id
}

resource "aws_sns_topic" "alarms" {
  count = local.create_alarm_topic ? 1 : 0

  name              = "${var.alarm_name_prefix}custodian-alarms"
  kms_master_key_id = local.alarm_topic_kms_key

  tags = var.tags
}

resource "aws_sns_topic_subscription" "alarms_email" {
  for_each = local.alarm_email_endpoints

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

# The design document's alarm reads DesiredTaskCount from AWS/ECS; AWS publishes that metric
# only with Container Insights, in ECS/ContainerInsights (dimensions ClusterName and
# ServiceName). The alarm keeps the document's name, statistic, period and threshold.
resource "aws_cloudwatch_metric_alarm" "service_stuck_running" {
  alarm_name          = "${var.alarm_name_prefix}ecs-service-stuck-running"
  alarm_description   = "The worker service has not scaled down for an hour (see the runbook: Service not scaling to zero)"
  namespace           = "ECS/ContainerInsights"
  metric_name         = "DesiredTaskCount"
  statistic           = "Average"
  period              = 600
  threshold           = 1
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 6
  treat_missing_data  = "notBreaching"

  dimensions = {
    ClusterName = aws_ecs_cluster.this.name
    ServiceName = aws_ecs_service.worker.name
  }

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "queue_backlog" {
  alarm_name          = "${var.alarm_name_prefix}sqs-queue-backlog"
  alarm_description   = "Jobs are waiting too long (see the runbook: Slow scale-up)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  statistic           = "Maximum"
  period              = 300
  threshold           = var.queue_age_alarm_threshold
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 2
  treat_missing_data  = "notBreaching"

  dimensions = {
    QueueName = aws_sqs_queue.this.name
  }

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.alarm_name_prefix}custodian-dlq-not-empty"
  alarm_description   = "A job failed for good and waits in the dead-letter queue (see the runbook: Messages in the DLQ)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"

  dimensions = {
    QueueName = aws_sqs_queue.dlq.name
  }

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "invoker_failures_not_empty" {
  count = local.create_invoker_failures_queue ? 1 : 0

  alarm_name          = "${var.alarm_name_prefix}custodian-invoker-failures-not-empty"
  alarm_description   = "The invoker failed on an event after Lambda's retries; it waits in the invoker-failures queue for `czero replay` (see the runbook: Events in the invoker-failures queue)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"

  dimensions = {
    QueueName = aws_sqs_queue.invoker_failures[0].name
  }

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = var.tags
}
