################################################################################
# IAM
################################################################################

# Every statement names its resources; the only wildcard resources are those AWS cannot
# scope (ecr:GetAuthorizationToken, kms:ListAliases) and the account's buckets that
# policies remediate.

locals {
  policy_object_arns = [for p in var.policy_key_prefixes : "${aws_s3_bucket.policy.arn}/${p}*"]

  # Jobs too large for one SQS message are stored here by the invoker and read by the
  # worker (czero_job::Job::claim_check_key; the invoker's CLAIM_CHECK_BUCKET is left unset,
  # so the policy bucket holds them).
  claim_check_arn = "${aws_s3_bucket.policy.arn}/jobs/*"

  policy_permission_resources = coalesce(var.policy_permission_resources, ["arn:${local.partition}:s3:::*"])

  kms_key_arns = compact([var.queue_kms_key_arn, var.bucket_kms_key_arn])
}

data "aws_iam_policy_document" "invoker_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "invoker" {
  count = var.create_invoker ? 1 : 0

  statement {
    sid       = "QueueJobs"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]
  }

  # GetObject of the mapping, and HeadObject of each selected policy to pin its ETag and
  # version in the job (HeadObject needs s3:GetObject; it reads the current version only).
  statement {
    sid       = "ReadPolicies"
    actions   = ["s3:GetObject"]
    resources = local.policy_object_arns
  }

  # Without ListBucket S3 answers 403 for a key that does not exist, which reads as a
  # permission error; with it, a mapping naming a missing policy gets a 404 and the invoker
  # reports "does not exist". It reveals key names only, in a bucket whose policies and
  # mapping this role reads anyway.
  statement {
    sid       = "MissingKeysAre404"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.policy.arn]
  }

  statement {
    sid       = "WriteClaimChecks"
    actions   = ["s3:PutObject"]
    resources = [local.claim_check_arn]
  }

  # The on-failure destination is written with the function's own role.
  statement {
    sid       = "FailureDestination"
    actions   = startswith(local.invoker_failure_destination_arn, "arn:${local.partition}:sns:") ? ["sns:Publish"] : ["sqs:SendMessage"]
    resources = [local.invoker_failure_destination_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.invoker[0].arn}:*"]
  }

  dynamic "statement" {
    for_each = var.enable_fast_wake ? [1] : []

    content {
      sid       = "FastWake"
      actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
      resources = [local.service_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = local.kms_key_arns
    }
  }

  dynamic "statement" {
    for_each = var.invoker_tracing_mode == "Active" ? [1] : []

    content {
      sid = "Tracing"
      #checkov:skip=CKV_AWS_356:X-Ray trace segments have no resource ARN to scope to
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role" "invoker" {
  count = var.create_invoker ? 1 : 0

  name_prefix          = "${var.invoker_name}-"
  description          = "custodian-zero invoker Lambda"
  assume_role_policy   = data.aws_iam_policy_document.invoker_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

resource "aws_iam_role_policy" "invoker" {
  count = var.create_invoker ? 1 : 0

  name   = "invoker"
  role   = aws_iam_role.invoker[0].id
  policy = data.aws_iam_policy_document.invoker[0].json
}

data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "task_execution" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken has no resource-level permissions
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(local.worker_repository_arns) > 0 ? [1] : []

    content {
      sid       = "PullWorkerImage"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = local.worker_repository_arns
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:*"]
  }
}

resource "aws_iam_role" "task_execution" {
  name_prefix          = "${var.service_name}-exec-"
  description          = "custodian-zero worker: ECS pulls the image and ships logs"
  assume_role_policy   = data.aws_iam_policy_document.task_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

resource "aws_iam_role_policy" "task_execution" {
  name   = "task-execution"
  role   = aws_iam_role.task_execution.id
  policy = data.aws_iam_policy_document.task_execution.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid = "ConsumeJobs"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.this.arn]
  }

  # A message that is not a job goes straight to the DLQ with its reason.
  statement {
    sid       = "RejectToDlq"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  # GetObjectVersion: jobs pin each policy to the version the invoker saw (the bucket is
  # versioned), and the worker fetches that version.
  statement {
    sid       = "ReadPolicies"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = local.policy_object_arns
  }

  # The worker reads claim-checked jobs and never deletes them (no s3:DeleteObject).
  statement {
    sid       = "ReadClaimChecks"
    actions   = ["s3:GetObject"]
    resources = [local.claim_check_arn]
  }

  statement {
    sid       = "WriteOutput"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.output.arn}/*"]
  }

  # The ECS agent's task-protection endpoint calls these with the task role.
  statement {
    sid       = "ScaleInProtection"
    actions   = ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${var.cluster_name}/*"]
  }

  statement {
    sid       = "PolicyActions"
    actions   = var.policy_permissions
    resources = local.policy_permission_resources
  }

  # set-bucket-encryption and the bucket-encryption filter name a KMS key by id, ARN or
  # alias; as c7n does, the engine resolves it with DescribeKey in the bucket's region (the
  # filter also lists the key's aliases). Read-only; DescribeKey only on the account's own
  # keys (an alias is authorized against the key it names).
  statement {
    sid       = "ResolveKmsKeys"
    actions   = ["kms:DescribeKey"]
    resources = ["arn:${local.partition}:kms:*:${local.account_id}:key/*"]
  }

  # ListAliases cannot be scoped to resources in IAM.
  statement {
    sid       = "ListKmsAliases"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(local.kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = local.kms_key_arns
    }
  }
}

resource "aws_iam_role" "task" {
  name_prefix          = "${var.service_name}-task-"
  description          = "custodian-zero worker: consume jobs, read policies, write output, remediate"
  assume_role_policy   = data.aws_iam_policy_document.task_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
