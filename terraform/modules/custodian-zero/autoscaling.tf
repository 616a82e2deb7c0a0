################################################################################
# Autoscaling
################################################################################

# Step scaling, not the design document's target tracking: a target-tracking alarm fires
# only when the metric is above the target for 3 of 3 minutes, so a backlog of 1-5 jobs
# at target 5 would never wake a service at 0. Instead one alarm on `visible + in-flight
# > 0` drives ExactCapacity tiers that give min(max_capacity, ceil(backlog / target_value)),
# and a second alarm, backlog 0 for the scale-in period, sets the service to 0. An alarm
# that stays in ALARM re-runs its policy every minute, so capacity follows the backlog.

locals {
  autoscaling_resource_id = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"

  # Whole minutes of zero backlog before scale-in.
  autoscaling_scale_in_periods = max(1, ceil(var.scale_in_cooldown / 60))

  # The backlog the alarms see: messages waiting plus messages being worked on.
  autoscaling_backlog_metrics = {
    m1 = { queue = aws_sqs_queue.this.name, metric = "ApproximateNumberOfMessagesVisible" }
    m2 = { queue = aws_sqs_queue.this.name, metric = "ApproximateNumberOfMessagesNotVisible" }
  }

  # With fast wake the scale-in alarm must not undo the invoker's 0 -> 1: while the service
  # sits at 0 that alarm is in ALARM and re-runs its policy every minute, and the queue
  # metric lags the new message by a period or two. The "scale-in guard" counts an empty
  # queue only while a task runs (Container Insights' RunningTaskCount, missing = 0) and
  # reads 1 otherwise, so a service that was just woken keeps its task until that task has
  # run and the backlog has stayed 0 for the whole scale-in period.
  autoscaling_scale_in_expression = var.enable_fast_wake ? "IF(FILL(m3, 0) > 0, m1 + m2, 1)" : "m1 + m2"
}

module "scaling_tiers" {
  source = "./modules/scaling-tiers"

  target_value = var.target_value
  max_capacity = var.max_capacity
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = local.autoscaling_resource_id
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.min_capacity <= var.max_capacity
      error_message = "min_capacity must not exceed max_capacity."
    }
  }
}

resource "aws_appautoscaling_policy" "scale_out" {
  name               = "${var.service_name}-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = var.scale_out_cooldown
    metric_aggregation_type = "Maximum"

    dynamic "step_adjustment" {
      for_each = module.scaling_tiers.tiers

      content {
        metric_interval_lower_bound = step_adjustment.value.lower_bound
        metric_interval_upper_bound = step_adjustment.value.upper_bound
        scaling_adjustment          = step_adjustment.value.capacity
      }
    }
  }
}

resource "aws_appautoscaling_policy" "scale_in" {
  name               = "${var.service_name}-scale-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = var.scale_in_cooldown
    metric_aggregation_type = "Maximum"

    # Below the threshold AWS takes the upper bound as inclusive: backlog - 0 <= 0.
    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "scale_out" {
  alarm_name          = "${var.alarm_name_prefix}${var.service_name}-scale-out"
  alarm_description   = "Backlog (visible + in-flight jobs) above 0: set the task count from the step tiers"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  # An idle queue stops publishing metrics; no data means no backlog.
  treat_missing_data = "notBreaching"

  metric_query {
    id          = "backlog"
    expression  = "m1 + m2"
    label       = "Jobs visible and in flight"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = local.autoscaling_backlog_metrics

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/SQS"
        metric_name = metric_query.value.metric
        period      = 60
        stat        = "Maximum"
        dimensions = {
          QueueName = metric_query.value.queue
        }
      }
    }
  }

  alarm_actions = [aws_appautoscaling_policy.scale_out.arn]

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "scale_in" {
  alarm_name          = "${var.alarm_name_prefix}${var.service_name}-scale-in"
  alarm_description   = "Backlog 0 for the whole scale-in period: set the task count to 0"
  comparison_operator = "LessThanOrEqualToThreshold"
  threshold           = 0
  evaluation_periods  = local.autoscaling_scale_in_periods
  datapoints_to_alarm = local.autoscaling_scale_in_periods
  # Missing data must not count as "empty": SQS metrics lag when a queue becomes active
  # again, and a false scale-in would stop tasks that were just woken.
  treat_missing_data = "notBreaching"

  metric_query {
    id          = "backlog"
    expression  = local.autoscaling_scale_in_expression
    label       = var.enable_fast_wake ? "Jobs visible and in flight while a task runs (1 when none runs)" : "Jobs visible and in flight"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = local.autoscaling_backlog_metrics

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/SQS"
        metric_name = metric_query.value.metric
        period      = 60
        stat        = "Maximum"
        dimensions = {
          QueueName = metric_query.value.queue
        }
      }
    }
  }

  # The scale-in guard's task count (see `autoscaling_scale_in_expression`).
  dynamic "metric_query" {
    for_each = var.enable_fast_wake ? ["m3"] : []

    content {
      id = metric_query.value

      metric {
        namespace   = "ECS/ContainerInsights"
        metric_name = "RunningTaskCount"
        period      = 60
        stat        = "Maximum"
        dimensions = {
          ClusterName = aws_ecs_cluster.this.name
          ServiceName = aws_ecs_service.worker.name
        }
      }
    }
  }

  alarm_actions = [aws_appautoscaling_policy.scale_in.arn]

  lifecycle {
    precondition {
      condition     = !var.enable_fast_wake || var.container_insights != "disabled"
      error_message = "enable_fast_wake needs container_insights (the scale-in guard reads RunningTaskCount)."
    }
  }

  tags = var.tags
}
