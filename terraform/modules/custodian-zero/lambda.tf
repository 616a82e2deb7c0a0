################################################################################
# Invoker
################################################################################

locals {
  # Events the invoker failed on go to their own queue unless the operator names a
  # destination (an SQS queue or SNS topic).
  create_invoker_failures_queue = var.create_invoker && var.invoker_failure_destination_arn == null
  invoker_failure_destination_arn = (
    var.invoker_failure_destination_arn != null ? var.invoker_failure_destination_arn :
    local.create_invoker_failures_queue ? aws_sqs_queue.invoker_failures[0].arn : null
  )

  invoker_environment = merge(
    {
      SQS_QUEUE_URL      = aws_sqs_queue.this.url
      POLICY_BUCKET      = aws_s3_bucket.policy.id
      POLICY_MAPPING_KEY = var.policy_mapping_key
      DEFAULT_POLICY_KEY = var.default_policy_key
      CLAIM_CHECK_BUCKET = aws_s3_bucket.policy.id
      # The worker's own API calls come back as CloudTrail events; the rules already leave
      # them out, and the invoker skips any that still arrive. The member role's entry has
      # `*` for the account, which the invoker reads as any account.
      EXCLUDE_PRINCIPAL_ARNS = join(",", concat([aws_iam_role.task.arn], var.member_role_name == null ? [] : [local.member_role_pattern]))
    },
    var.enable_fast_wake ? {
      WAKE_CLUSTER = var.cluster_name
      WAKE_SERVICE = var.service_name
    } : {},
  )
}

resource "aws_cloudwatch_log_group" "invoker" {
  count = var.create_invoker ? 1 : 0
  #checkov:skip=CKV_AWS_338:Retention is a variable (log_retention_days, 30 by default): logs are for troubleshooting, not an audit trail

  name              = "/aws/lambda/${var.invoker_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = var.tags
}

resource "aws_lambda_function" "invoker" {
  count = var.create_invoker ? 1 : 0
  #checkov:skip=CKV_AWS_117:The invoker calls only AWS APIs (S3, SQS, ECS); a VPC would add NAT or endpoints and cold-start latency for no isolation gain
  #checkov:skip=CKV_AWS_116:Failed asynchronous invocations go to the on-failure destination (the invoker-failures queue by default), which supersedes a Lambda DLQ
  #checkov:skip=CKV_AWS_115:Reserved concurrency is optional (invoker_reserved_concurrency): reserving it fails in accounts with the default limit
  #checkov:skip=CKV_AWS_173:The environment holds only resource names, no secrets; Lambda encrypts it at rest with an AWS-managed key
  #checkov:skip=CKV_AWS_272:The zip is built reproducibly from source and deployed by Terraform; code signing would need a signing profile outside this module

  function_name = var.invoker_name
  description   = "custodian-zero invoker: turns security events into queued policy jobs"
  role          = aws_iam_role.invoker[0].arn

  filename         = var.invoker_zip_path
  source_code_hash = var.invoker_zip_path == null ? null : filebase64sha256(var.invoker_zip_path)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.invoker_architecture]
  memory_size      = var.invoker_memory_size
  timeout          = var.invoker_timeout

  reserved_concurrent_executions = var.invoker_reserved_concurrency == null ? -1 : var.invoker_reserved_concurrency

  environment {
    variables = local.invoker_environment
  }

  tracing_config {
    mode = var.invoker_tracing_mode
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.invoker[0].name
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.invoker_zip_path != null
      error_message = "invoker_zip_path must be set when create_invoker is true."
    }
  }
}

# EventBridge invokes asynchronously: after Lambda's own retries, the failed event goes to
# the destination so it is never dropped silently (the invoker-failures alarm sees it, and
# `czero replay` re-invokes the function with it).
resource "aws_lambda_function_event_invoke_config" "invoker" {
  count = var.create_invoker ? 1 : 0

  function_name                = aws_lambda_function.invoker[0].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = local.invoker_failure_destination_arn
    }
  }
}
