# The seed's scaling table, `desired = min(max_capacity, ceil(backlog / target_value))`, as
# step adjustments for an alarm `backlog > 0` (threshold 0, so bounds are backlog values).
#
# AWS compares `metric - threshold` against each step with the lower bound inclusive and the
# upper bound exclusive. The backlog (ApproximateNumberOf* counts) is a whole number, so the
# tier ((k-1)*t, k*t] is written as [floor((k-1)*t) + 1, floor(k*t) + 1). The first tier
# starts at 0 (AWS wants the steps to start at the threshold) and the last one is open-ended.
locals {
  tiers = [
    for k in range(1, var.max_capacity + 1) : {
      capacity    = k
      lower_bound = k == 1 ? 0 : floor((k - 1) * var.target_value) + 1
      upper_bound = k == var.max_capacity ? null : floor(k * var.target_value) + 1
    }
  ]
}
