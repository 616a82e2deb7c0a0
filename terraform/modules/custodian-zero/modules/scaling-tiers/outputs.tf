output "tiers" {
  description = "Step adjustments in order: capacity (ExactCapacity), lower_bound (inclusive), upper_bound (exclusive, null on the last tier)"
  value       = local.tiers
}
