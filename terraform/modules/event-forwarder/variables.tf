################################################################################
# General
################################################################################

variable "tags" {
  description = "Tags added to every resource that takes tags"
  type        = map(string)
  default     = {}
}

################################################################################
# Events
################################################################################

variable "event_patterns" {
  description = "EventBridge patterns (JSON) by rule name, from the custodian-zero module's event_patterns output; leave out the kinds the central account already receives (Security Hub findings through cross-region aggregation, GuardDuty findings as the delegated administrator)"
  type        = map(string)
  nullable    = false

  validation {
    condition     = length(var.event_patterns) > 0 && alltrue([for p in values(var.event_patterns) : can(jsondecode(p))])
    error_message = "event_patterns must name at least one rule, each with a JSON pattern."
  }
}

variable "event_bus_arn" {
  description = "ARN of the central account's event bus (its default bus, whose policy lets the organization put events)"
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:events:[a-z0-9-]+:[0-9]{12}:event-bus/.+$", var.event_bus_arn))
    error_message = "event_bus_arn must be an EventBridge event bus ARN."
  }
}

################################################################################
# IAM
################################################################################

variable "create_role" {
  description = "Create the role EventBridge uses to put events on the central bus; false uses role_arn (one role for every region of the account)"
  type        = bool
  default     = true
}

variable "role_arn" {
  description = "Existing role (trusted by events.amazonaws.com, allowed events:PutEvents on event_bus_arn) when create_role is false"
  type        = string
  default     = null
}

variable "role_name_prefix" {
  description = "Name prefix of the created role"
  type        = string
  default     = "custodian-zero-forwarder"
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the created role"
  type        = string
  default     = null
}
