################################################################################
# Worker
################################################################################

locals {
  worker_log_group_name = "/aws/ecs/${var.service_name}"

  worker_environment = merge(
    var.worker_environment,
    {
      SQS_QUEUE_URL       = aws_sqs_queue.this.url
      DLQ_URL             = aws_sqs_queue.dlq.url
      POLICY_BUCKET       = aws_s3_bucket.policy.id
      OUTPUT_BUCKET       = aws_s3_bucket.output.id
      MAX_EMPTY_RECEIVES  = tostring(var.max_empty_receives)
      WAIT_TIME_SECONDS   = tostring(var.wait_time_seconds)
      IDLE_EXIT           = tostring(var.worker_idle_exit)
      JOB_TIMEOUT_SECONDS = tostring(var.worker_job_timeout_seconds)
      # The receive asks for the queue's own visibility timeout, so the two cannot drift.
      VISIBILITY_TIMEOUT_SECONDS = tostring(local.queue_visibility_timeout)
      # The only bucket a claim-checked job may come from (under jobs/).
      CLAIM_CHECK_BUCKET = aws_s3_bucket.policy.id
      # set-statements formats {account_id} with it, as c7n does.
      AWS_ACCOUNT_ID = local.account_id
      # Per-job done markers, under this prefix in the output bucket.
      LEDGER_PREFIX = var.ledger_prefix
    },
    # For an event from another account the worker assumes this role there.
    var.member_role_name == null ? {} : { MEMBER_ROLE_NAME = var.member_role_name },
  )

  # The external id is sensitive, so it stays out of the worker_environment output; only
  # the task definition carries it.
  worker_container_environment = merge(
    local.worker_environment,
    nonsensitive(var.member_role_external_id == null) ? {} : { MEMBER_ROLE_EXTERNAL_ID = var.member_role_external_id },
  )

  worker_repository_arns = concat(
    var.create_ecr_repository ? [aws_ecr_repository.worker[0].arn] : [],
    var.worker_image_repository_arns,
  )
}

resource "aws_ecr_repository" "worker" {
  count = var.create_ecr_repository ? 1 : 0

  name                 = var.ecr_repository_name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.ecr_kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.cluster_name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "worker" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (log_retention_days, 30 by default): job results live in the output bucket, logs are for troubleshooting
  name              = local.worker_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = var.tags
}

resource "aws_ecs_task_definition" "worker" {
  family                   = var.service_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.worker_architecture
  }

  # The root filesystem is read-only; the worker's scratch space (the `custodian` fallback's
  # output directory) is this task-local volume.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = var.service_name
      image                  = var.worker_image
      essential              = true
      user                   = var.worker_user
      readonlyRootFilesystem = true
      # Fargate's maximum: a busy worker finishes its job after SIGTERM before SIGKILL.
      stopTimeout = 120
      environment = [for k in sort(keys(local.worker_container_environment)) : { name = k, value = local.worker_container_environment[k] }]
      mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.worker.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "worker"
        }
      }
    }
  ])

  tags = var.tags
}

resource "aws_security_group" "worker" {
  name_prefix = "${var.service_name}-"
  description = "custodian-zero worker tasks: no inbound, HTTPS out to AWS APIs"
  vpc_id      = var.vpc_id

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "worker_https" {
  for_each = toset(var.worker_egress_cidr_blocks)

  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_ecs_service" "worker" {
  name                               = var.service_name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.worker.arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = 0
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = concat([aws_security_group.worker.id], var.security_group_ids)
    assign_public_ip = var.assign_public_ip
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags

  # Application Auto Scaling (and the invoker's fast wake) own the desired count.
  lifecycle {
    ignore_changes = [desired_count]
  }
}
