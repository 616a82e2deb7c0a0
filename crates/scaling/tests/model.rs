//! Properties of the AWS scaling model: bounds, cooldowns, scale-in to zero, and the seed
//! table reached both by the contract and by step scaling.

use czero_scaling::aws::{
    Autoscaler, Decision, SCALE_IN_POLICY, SCALE_OUT_POLICY, ScalingParams, scale_out_tiers,
};
use czero_scaling::contract;
use proptest::prelude::*;

/// The design document's table, written out independently of `contract::desired`.
fn seed_table(backlog: u64) -> u32 {
    if backlog == 0 {
        0
    } else {
        backlog.div_ceil(5).min(10) as u32
    }
}

/// Feed a constant backlog until nothing changes; the desired count it settles on.
fn steady_state(params: &ScalingParams, start: u32, backlog: u64) -> u32 {
    let mut a = Autoscaler::from_params(params);
    let mut desired = start;
    let periods = u64::from(params.scale_in_evaluation_periods)
        + (params.scale_in_cooldown_s.max(params.scale_out_cooldown_s) / params.period_s)
        + 4;
    for k in 1..=periods {
        if let Some(d) = a.observe(k * params.period_s, backlog as f64, desired) {
            desired = d;
        }
    }
    desired
}

#[test]
fn seed_table_holds_for_every_backlog_up_to_1000() {
    let params = ScalingParams::default();
    let policy_tiers = scale_out_tiers(params.target_value, params.max_capacity);
    for backlog in 0..=1000u64 {
        let want = seed_table(backlog);
        assert_eq!(
            contract::desired(backlog, 5.0, 10),
            want,
            "contract at {backlog}"
        );
        for start in [0, 3, 10] {
            assert_eq!(
                steady_state(&params, start, backlog),
                want,
                "autoscaler from {start} at backlog {backlog}"
            );
        }
        if backlog > 0 {
            let tier = policy_tiers
                .iter()
                .find(|t| t.contains(backlog as f64, true))
                .map(|t| t.capacity);
            assert_eq!(tier, Some(want), "tier at backlog {backlog}");
        }
    }
}

fn params_strategy() -> impl Strategy<Value = ScalingParams> {
    (
        0u32..3,
        1u32..25,
        prop_oneof![
            Just(1.0),
            Just(2.0),
            Just(2.5),
            Just(5.0),
            Just(10.0),
            0.3f64..20.0
        ],
        0u64..600,
        0u64..900,
        1u32..4,
        1u32..12,
    )
        .prop_map(
            |(min, span, target, out_cd, in_cd, out_ep, in_ep)| ScalingParams {
                min_capacity: min,
                max_capacity: min + span,
                target_value: target,
                scale_out_cooldown_s: out_cd,
                scale_in_cooldown_s: in_cd,
                period_s: 60,
                scale_out_evaluation_periods: out_ep,
                scale_in_evaluation_periods: in_ep,
            },
        )
}

fn backlogs() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(
        prop_oneof![3 => Just(0u64), 5 => 0u64..60, 1 => 0u64..2000],
        1..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Desired stays within [min, max], and cooldowns hold as the module defines them:
    /// no scale-in inside a scale-in or scale-out cooldown; inside a scale-out cooldown a
    /// scale-out only to more than the capacity that started it.
    #[test]
    fn bounds_and_cooldowns(params in params_strategy(), series in backlogs()) {
        let mut a = Autoscaler::from_params(&params);
        let mut desired = params.min_capacity;
        let mut out_cd: Option<(u64, u32)> = None; // (end, capacity set)
        let mut in_cd: Option<u64> = None;
        for (k, &b) in series.iter().enumerate() {
            let now = (k as u64 + 1) * params.period_s;
            let decision = a.evaluate(now, b as f64, desired);
            if let Decision::Scaled { policy, from, to } = decision {
                prop_assert_eq!(from, desired);
                prop_assert!(to >= params.min_capacity && to <= params.max_capacity);
                let cooldown = if policy == SCALE_OUT_POLICY {
                    params.scale_out_cooldown_s
                } else {
                    prop_assert_eq!(policy.as_str(), SCALE_IN_POLICY);
                    params.scale_in_cooldown_s
                };
                let in_out = out_cd.filter(|&(end, _)| now < end);
                let in_in = in_cd.filter(|&end| now < end);
                if to > from {
                    if let Some((_, set)) = in_out {
                        prop_assert!(to > set, "scale-out to {} inside cooldown of {}", to, set);
                    }
                    out_cd = Some((now + cooldown, to));
                    in_cd = None;
                } else {
                    prop_assert!(in_out.is_none(), "scale-in inside scale-out cooldown at {}", now);
                    prop_assert!(in_in.is_none(), "scale-in inside scale-in cooldown at {}", now);
                    in_cd = Some(now + cooldown);
                }
                desired = to;
            }
            prop_assert!(desired >= params.min_capacity && desired <= params.max_capacity);
        }
    }

    /// Once the backlog stays 0 past the scale-in alarm's periods and the cooldowns, the
    /// service is at its minimum (0 at the spec's settings).
    #[test]
    fn reaches_minimum_when_queue_stays_empty(params in params_strategy(), series in backlogs()) {
        let mut a = Autoscaler::from_params(&params);
        let mut desired = params.min_capacity;
        let mut k = 0u64;
        let mut feed = |b: u64, desired: &mut u32, a: &mut Autoscaler| {
            k += 1;
            if let Some(d) = a.observe(k * params.period_s, b as f64, *desired) {
                *desired = d;
            }
        };
        for &b in &series {
            feed(b, &mut desired, &mut a);
        }
        let quiet = u64::from(params.scale_in_evaluation_periods)
            + params.scale_in_cooldown_s.max(params.scale_out_cooldown_s).div_ceil(params.period_s)
            + 1;
        for _ in 0..quiet {
            feed(0, &mut desired, &mut a);
        }
        prop_assert_eq!(desired, params.min_capacity);
    }

    /// The steady state of step scaling is the contract, for any target and maximum.
    #[test]
    fn steady_state_is_the_contract(params in params_strategy(), backlog in 0u64..3000, start in 0u32..30) {
        let params = ScalingParams { min_capacity: 0, ..params };
        let start = start.min(params.max_capacity);
        prop_assert_eq!(
            steady_state(&params, start, backlog),
            contract::desired(backlog, params.target_value, params.max_capacity)
        );
    }

    /// Tiers start at 0, are contiguous, and every integer backlog lands in the contract's tier.
    #[test]
    fn tiers_agree_with_contract(target in 0.2f64..30.0, max in 1u32..25, backlog in 1u64..5000) {
        let tiers = scale_out_tiers(target, max);
        prop_assert_eq!(tiers[0].lower, Some(0.0));
        for w in tiers.windows(2) {
            prop_assert_eq!(w[0].upper, w[1].lower);
        }
        prop_assert_eq!(tiers.last().and_then(|t| t.upper), None);
        let hit = tiers.iter().find(|t| t.contains(backlog as f64, true)).map(|t| t.capacity);
        prop_assert_eq!(hit, Some(contract::desired(backlog, target, max)));
    }
}
