variable "target_value" {
  description = "Jobs (visible + in-flight messages) one task is expected to handle; tier k covers a backlog in ((k-1)*target_value, k*target_value]"
  type        = number

  validation {
    condition     = var.target_value >= 1 && var.target_value <= 1000
    error_message = "target_value must be between 1 and 1000: below 1, consecutive tiers would be empty."
  }
}

variable "max_capacity" {
  description = "Largest task count; the last tier is open-ended and sets this many tasks"
  type        = number

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 20 && floor(var.max_capacity) == var.max_capacity
    error_message = "max_capacity must be a whole number from 1 to 20 (AWS allows at most 20 step adjustments per policy)."
  }
}
