################################################################################
# Alarms
################################################################################

resource "aws_sns_topic" "alarms" {
  count = var.create_alarm_topic ? 1 : 0

  name              = "${var.alarm_name_prefix}custodian-alarms"
  kms_master_key_id = "alias/aws/sns"

  tags = var.tags
}

resource "aws_sns_topic_subscription" "alarms_email" {
  for_each = var.create_alarm_topic ? toset(var.alarm_email_endpoints) : toset([])

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
  alarm_description   = "A job or an event failed for good and waits in the dead-letter queue (see the runbook: Messages in the DLQ)"
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
