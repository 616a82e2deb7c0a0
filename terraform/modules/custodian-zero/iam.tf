################################################################################
# IAM
################################################################################

# Every statement names its resources; the only wildcard resources are those AWS cannot
# scope (ecr:GetAuthorizationToken, s3:ListAllMyBuckets, kms:ListAliases, X-Ray) and the
# account's buckets that policies remediate.
#
# What the invoker and the worker call comes from permissions.json, which
# `cargo xtask permissions` generates from the code's own tables (crates/permissions,
# one per component): every entry names a scope, turned into ARNs here. A scope that
# resolves to no ARN (fast wake off, no customer-managed key) grants nothing.

locals {
  permissions = jsondecode(file("${path.module}/permissions.json"))

  policy_object_arns = [for p in var.policy_key_prefixes : "${aws_s3_bucket.policy.arn}/${p}*"]

  # Jobs too large for one SQS message are stored under jobs/ by the invoker and read by the
  # worker (czero_job::Job::claim_check_key); both get CLAIM_CHECK_BUCKET, the policy bucket.
  claim_check_arn = "${aws_s3_bucket.policy.arn}/jobs/*"

  remediated_bucket_arns = coalesce(var.policy_permission_resources, ["arn:${local.partition}:s3:::*"])

  # The same role name in every account of the organization (the worker builds the ARN from
  # the event's account), plus the roles policies name in mode.member-role.
  member_role_pattern = var.member_role_name == null ? null : "arn:${local.partition}:iam::*:role/${var.member_role_name}"
  member_role_arns    = concat(var.member_role_name == null ? [] : [local.member_role_pattern], var.member_role_arns)

  permission_scopes = {
    "any"               = ["*"]
    "job-queue"         = [aws_sqs_queue.this.arn]
    "dead-letter-queue" = [aws_sqs_queue.dlq.arn]
    "policy-objects"    = local.policy_object_arns
    "policy-bucket"     = [aws_s3_bucket.policy.arn]
    "claim-checks"      = [local.claim_check_arn]
    "ledger"            = ["${aws_s3_bucket.output.arn}/${var.ledger_prefix}/*"]
    "output-bucket"     = [aws_s3_bucket.output.arn]
    "output-objects"    = ["${aws_s3_bucket.output.arn}/*"]
    "tasks"             = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${var.cluster_name}/*"]
    "service"           = var.enable_fast_wake ? [local.service_arn] : []
    "bucket-key"        = compact([var.bucket_kms_key_arn])
    "queue-key"         = compact([var.queue_kms_key_arn])
    "buckets"           = local.remediated_bucket_arns
    "objects"           = [for a in local.remediated_bucket_arns : "${a}/*"]
    # DescribeKey on the account's own keys (an alias is authorized against its key).
    "kms-keys"     = ["arn:${local.partition}:kms:*:${local.account_id}:key/*"]
    "member-roles" = local.member_role_arns
    # BatchUpdateFindings on this account's hub, from any region (aggregated findings are
    # updated from the aggregation region).
    "security-hub" = var.enable_security_hub_updates ? ["arn:${local.partition}:securityhub:*:${local.account_id}:hub/default"] : []
  }

  permission_sids = {
    "any"               = "NoResourceLevelPermissions"
    "job-queue"         = "JobQueue"
    "dead-letter-queue" = "DeadLetterQueue"
    "policy-objects"    = "PolicyObjects"
    "policy-bucket"     = "PolicyBucket"
    "claim-checks"      = "ClaimChecks"
    "ledger"            = "Ledger"
    "output-bucket"     = "OutputBucket"
    "output-objects"    = "OutputObjects"
    "tasks"             = "ScaleInProtection"
    "service"           = "FastWake"
    "bucket-key"        = "BucketKey"
    "queue-key"         = "QueueKey"
    "buckets"           = "RemediatedBuckets"
    "objects"           = "RemediatedObjects"
    "kms-keys"          = "ResolveKmsKeys"
    "member-roles"      = "MemberRoles"
    "security-hub"      = "SecurityHubFindings"
  }

  # Scope -> sorted actions, for the scopes that resolve to at least one ARN.
  invoker_grants = {
    for scope in distinct([for g in local.permissions.invoker : g.scope]) :
    scope => sort(distinct(flatten([for g in local.permissions.invoker : g.actions if g.scope == scope])))
    if length(local.permission_scopes[scope]) > 0
  }

  # The worker's own calls, plus the engine's: resources, filters and output always, and
  # the actions of the policy action types this deployment runs (policy_actions).
  worker_entries = concat(
    local.permissions.worker,
    [for e in local.permissions.engine : e if e.kind != "action" || contains(var.policy_actions, e.feature)],
  )
  worker_grants = {
    for scope in distinct([for g in local.worker_entries : g.scope]) :
    scope => sort(distinct(flatten([for g in local.worker_entries : g.actions if g.scope == scope])))
    if length(local.permission_scopes[scope]) > 0
  }

  # The module's own buckets, and the operator's, are never remediated: the worker reads
  # policies and writes output and ledger markers there, and nothing else. The deny names
  # every action a native policy action can take on a bucket or its objects, and the
  # changing ones among policy_permissions.
  protected_bucket_arns = concat([aws_s3_bucket.policy.arn, aws_s3_bucket.output.arn], var.protected_bucket_arns)
  protected_deny_actions = sort(distinct(concat(
    local.permissions.protected_bucket_deny,
    [for a in var.policy_permissions : a if startswith(a, "s3:") && !can(regex("^s3:(Get|List|Describe)", a)) && !contains(["s3:PutObject", "s3:PutObjectAcl"], a)],
  )))
  # Object writes are the worker's only in the output bucket (output and ledger markers).
  protected_object_write_arns = [for b in concat([aws_s3_bucket.policy.arn], var.protected_bucket_arns) : "${b}/*" if b != aws_s3_bucket.output.arn]
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

  # What the invoker's code calls (permissions.json, from crates/permissions/src/invoker.rs).
  dynamic "statement" {
    for_each = local.invoker_grants

    content {
      sid       = local.permission_sids[statement.key]
      actions   = statement.value
      resources = local.permission_scopes[statement.key]
    }
  }

  # Lambda writes the on-failure destination with the function's own role.
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
  # What the worker and the engine call (permissions.json, from crates/permissions
  # src/worker.rs and src/engine.rs).
  dynamic "statement" {
    for_each = local.worker_grants

    content {
      sid       = local.permission_sids[statement.key]
      actions   = statement.value
      resources = local.permission_scopes[statement.key]
    }
  }

  # Actions the custodian fallback needs for features the engine does not run natively.
  dynamic "statement" {
    for_each = length(var.policy_permissions) > 0 ? [1] : []

    content {
      sid       = "ExtraPolicyPermissions"
      actions   = var.policy_permissions
      resources = local.remediated_bucket_arns
    }
  }

  statement {
    sid       = "ProtectedBuckets"
    effect    = "Deny"
    actions   = local.protected_deny_actions
    resources = flatten([for b in local.protected_bucket_arns : [b, "${b}/*"]])
  }

  dynamic "statement" {
    for_each = length(local.protected_object_write_arns) > 0 ? [1] : []

    content {
      sid       = "ProtectedObjects"
      effect    = "Deny"
      actions   = ["s3:PutObject", "s3:PutObjectAcl"]
      resources = local.protected_object_write_arns
    }
  }
}

resource "aws_iam_role" "task" {
  name_prefix          = "${var.service_name}-task-"
  description          = "custodian-zero worker: consume jobs, read policies, write output and ledger, remediate"
  assume_role_policy   = data.aws_iam_policy_document.task_assume.json
  permissions_boundary = var.permissions_boundary_arn

  tags = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json

  lifecycle {
    precondition {
      condition     = alltrue([for a in var.policy_actions : contains(local.permissions.policy_actions, a)])
      error_message = "policy_actions must name native policy actions: ${join(", ", local.permissions.policy_actions)}."
    }
  }
}
