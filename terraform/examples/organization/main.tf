# custodian-zero for a whole AWS Organization: one central stack (in the Security Hub
# administrator account, in its aggregation region) and, per member account and region,
# the rules that forward that account's events to the central bus and the role the worker
# acts through there. Here one member account stands for all; in practice the member part
# is applied once per account (and region, for the forwarder), or deployed by StackSets
# (see docs/organization.md).

################################################################################
# General
################################################################################

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

# The member account, through a role the organization's management account can assume
# there (OrganizationAccountAccessRole for accounts created by AWS Organizations).
provider "aws" {
  alias  = "member"
  region = var.region

  assume_role {
    role_arn = var.member_account_role_arn
  }

  default_tags {
    tags = var.tags
  }
}

locals {
  # Security Hub findings of every member and region arrive in the aggregation region of
  # the administrator account, and GuardDuty findings of the members in the delegated
  # administrator's own region: forwarding those from the members would queue every job
  # twice. CloudTrail calls and Config compliance changes reach EventBridge only in their
  # own account, so members forward them.
  forwarded_event_kinds = ["cloudtrail-s3", "config"]

  forwarded_event_patterns = {
    for name, pattern in module.custodian_zero.event_patterns : name => pattern
    if anytrue([for kind in local.forwarded_event_kinds : endswith(name, "-${kind}")])
  }
}

################################################################################
# custodian-zero (central account)
################################################################################

module "custodian_zero" {
  source = "../../modules/custodian-zero"

  vpc_id     = var.vpc_id
  subnet_ids = var.private_subnet_ids

  invoker_zip_path = var.invoker_zip_path
  enable_fast_wake = true

  worker_image = var.worker_image

  # Events of other accounts are acted on through their member role.
  member_role_name        = var.member_role_name
  member_role_external_id = var.member_role_external_id

  # Mapping rules with update_finding set the workflow status of the findings they handled.
  enable_security_hub_updates = true

  alarm_email_endpoints = var.alarm_email_endpoints
}

# Any account of the organization may put events on the central default bus; nobody else.
data "aws_cloudwatch_event_bus" "default" {
  name = "default"
}

data "aws_iam_policy_document" "organization_events" {
  statement {
    sid       = "OrganizationPutEvents"
    actions   = ["events:PutEvents"]
    resources = [data.aws_cloudwatch_event_bus.default.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalOrgID"
      values   = [var.organization_id]
    }
  }
}

# The bus has one policy: this replaces any other statement on the default bus.
resource "aws_cloudwatch_event_bus_policy" "organization" {
  event_bus_name = data.aws_cloudwatch_event_bus.default.name
  policy         = data.aws_iam_policy_document.organization_events.json
}

################################################################################
# Member account
################################################################################

module "member_role" {
  source = "../../modules/member-role"

  providers = {
    aws = aws.member
  }

  role_name       = var.member_role_name
  worker_role_arn = module.custodian_zero.task_role_arn
  external_id     = var.member_role_external_id
  audit_only      = var.member_audit_only

  protected_bucket_arns = var.member_protected_bucket_arns
}

module "event_forwarder" {
  source = "../../modules/event-forwarder"

  providers = {
    aws = aws.member
  }

  event_patterns = local.forwarded_event_patterns
  event_bus_arn  = data.aws_cloudwatch_event_bus.default.arn

  depends_on = [aws_cloudwatch_event_bus_policy.organization]
}
