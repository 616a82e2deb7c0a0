################################################################################
# Buckets
################################################################################

locals {
  buckets = {
    policy = aws_s3_bucket.policy
    output = aws_s3_bucket.output
  }
}

resource "aws_s3_bucket" "policy" {
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket owned by the account's logging setup; CloudTrail data events cover reads of policies
  #checkov:skip=CKV_AWS_144:Policies are re-deployable from source control; cross-region replication adds cost without protecting anything unique
  #checkov:skip=CKV2_AWS_62:Nothing consumes notifications of new policy objects; the invoker reads the mapping on demand
  bucket        = var.policy_bucket_name
  bucket_prefix = var.policy_bucket_name == null ? "custodian-policies-" : null
  force_destroy = var.bucket_force_destroy

  tags = var.tags
}

resource "aws_s3_bucket" "output" {
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket owned by the account's logging setup; output is written only by the worker role
  #checkov:skip=CKV_AWS_144:Output is a run log that expires; cross-region replication adds cost without protecting anything unique
  #checkov:skip=CKV2_AWS_62:Nothing consumes notifications of new output objects
  bucket        = var.output_bucket_name
  bucket_prefix = var.output_bucket_name == null ? "custodian-output-" : null
  force_destroy = var.bucket_force_destroy

  tags = var.tags
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.bucket_kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.bucket_kms_key_arn
    }
    bucket_key_enabled = var.bucket_kms_key_arn != null
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket = each.value.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "bucket_tls_only" {
  for_each = var.enforce_tls ? local.buckets : {}

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      each.value.arn,
      "${each.value.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = var.enforce_tls ? local.buckets : {}

  bucket = each.value.id
  policy = data.aws_iam_policy_document.bucket_tls_only[each.key].json

  # S3 rejects a bucket policy while the public access block is being applied.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "policy" {
  bucket = aws_s3_bucket.policy.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Claim checks (jobs too large for an SQS message, written by the invoker under jobs/)
  # are read by the worker and never deleted by it: a message that fails goes to the DLQ
  # and must still find its job there. They expire a day after the longest a message can
  # live (a message keeps its enqueue time when redriven to the DLQ).
  rule {
    id     = "expire-claim-checks"
    status = "Enabled"

    filter {
      prefix = "jobs/"
    }

    expiration {
      days = ceil(max(var.queue_message_retention_seconds, var.dlq_message_retention_seconds) / 86400) + 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "output" {
  bucket = aws_s3_bucket.output.id

  rule {
    id     = "expire-output"
    status = "Enabled"

    filter {}

    expiration {
      days = var.output_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # A job's done marker only has to outlive every copy of its message: a delivery of a job
  # that is already done is skipped, and no message lives longer than the queue's
  # retention (a failed job goes to the DLQ without a marker).
  rule {
    id     = "expire-ledger"
    status = "Enabled"

    filter {
      prefix = "${var.ledger_prefix}/"
    }

    expiration {
      days = ceil(var.queue_message_retention_seconds / 86400) + 1
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
