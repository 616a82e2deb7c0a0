//! The chaos plan: everything a seed decides (fault rates, when each kill, freeze and
//! poison message happens, which events are delivered twice), and the generator behind it.

use czero_testkit::fault_proxy::{Action, Rule, When};
use std::fmt::Write as _;
use std::time::Duration;

/// SplitMix64: a tiny, portable, seeded generator; all a reproducible plan needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi.saturating_sub(lo) + 1)
    }

    /// A number in `[lo, hi)`.
    pub fn fraction(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    /// `k` distinct numbers below `n`, in increasing order.
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        let k = k.min(n);
        for i in 0..k {
            let j = i + (self.next_u64() % (n - i) as u64) as usize;
            all.swap(i, j);
        }
        let mut picked = all[..k].to_vec();
        picked.sort_unstable();
        picked
    }
}

/// How hard to shake the system.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub seed: u64,
    /// CreateBucket events, one new bucket and one job each.
    pub jobs: usize,
    /// The service's `max_capacity`: how many workers run at most.
    pub workers: u32,
    /// Signals sent to running workers, SIGKILL or SIGTERM at random (at least one of each
    /// when there are two or more).
    pub kills: usize,
    /// Emulator freezes (SIGSTOP, then SIGCONT after `pause`).
    pub pauses: usize,
    pub pause: Duration,
    /// Events invoked twice at once (a Lambda retry after a successful send).
    pub early_duplicates: usize,
    /// Events invoked again after their job's ledger marker says `done`.
    pub late_duplicates: usize,
    /// Simulated seconds per real second for the control plane and the worker timeouts.
    pub time_scale: f64,
    /// `czero invoke` processes at once while queueing.
    pub invoke_parallel: usize,
    /// Wall-clock limit for the whole run.
    pub max_duration: Duration,
}

impl ChaosOptions {
    /// `cargo xtask chaos`: 200 jobs, 4 workers, a 30 s freeze.
    pub fn full(seed: u64) -> Self {
        ChaosOptions {
            seed,
            jobs: 200,
            workers: 4,
            kills: 8,
            pauses: 1,
            pause: Duration::from_secs(30),
            early_duplicates: 10,
            late_duplicates: 10,
            time_scale: 30.0,
            invoke_parallel: 8,
            max_duration: Duration::from_secs(20 * 60),
        }
    }

    /// The version `cargo xtask test` runs: 30 jobs, 3 workers, a 4 s freeze.
    pub fn short(seed: u64) -> Self {
        ChaosOptions {
            seed,
            jobs: 30,
            workers: 3,
            kills: 3,
            pauses: 1,
            pause: Duration::from_secs(4),
            early_duplicates: 3,
            late_duplicates: 3,
            time_scale: 30.0,
            // Events trickle in (about 15 s for 30), so the kills find workers holding jobs
            // rather than a queue the workers emptied at once.
            invoke_parallel: 2,
            max_duration: Duration::from_secs(150),
        }
    }
}

/// A seed from the clock, for runs that do not ask for one (it is printed either way).
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Rng::new(nanos ^ u64::from(std::process::id())).next_u64()
}

/// `SIGKILL` (the OOM killer, a lost host) or `SIGTERM` (ECS stopping a task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Kill,
    Term,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "SIGKILL",
            Signal::Term => "SIGTERM",
        }
    }
    pub fn arg(self) -> &'static str {
        match self {
            Signal::Kill => "-KILL",
            Signal::Term => "-TERM",
        }
    }
}

/// One planned disruption, due once this fraction of the jobs is done.
#[derive(Debug, Clone, PartialEq)]
pub enum Disruption {
    Kill { at: f64, signal: Signal },
    Pause { at: f64, length: Duration },
    Poison { at: f64 },
}

impl Disruption {
    pub fn at(&self) -> f64 {
        match self {
            Disruption::Kill { at, .. }
            | Disruption::Pause { at, .. }
            | Disruption::Poison { at } => *at,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Disruption::Kill { at, signal } => {
                format!("{} a worker at {:.0}% done", signal.name(), at * 100.0)
            }
            Disruption::Pause { at, length } => format!(
                "freeze the emulator for {} s at {:.0}% done",
                length.as_secs(),
                at * 100.0
            ),
            Disruption::Poison { at } => {
                format!("queue a poison message at {:.0}% done", at * 100.0)
            }
        }
    }
}

/// A fault rule with the name its injections are counted under.
#[derive(Debug, Clone)]
pub struct Fault {
    pub rule: Rule,
    /// e.g. `SQS ReceiveMessage 400 RequestThrottled`.
    pub kind: String,
}

/// Everything the seed decides.
#[derive(Debug, Clone)]
pub struct Plan {
    pub faults: Vec<Fault>,
    /// In the order they become due.
    pub disruptions: Vec<Disruption>,
    /// Event indices invoked twice back to back.
    pub early_duplicates: Vec<usize>,
    /// Event indices invoked again once their job is done.
    pub late_duplicates: Vec<usize>,
}

impl Plan {
    pub fn new(rng: &mut Rng, opts: &ChaosOptions) -> Plan {
        let sqs = |op: &str, n: u64, action: Action, what: &str| Fault {
            rule: Rule::target(op, When::EveryNth(n), action),
            kind: format!("SQS {op} {what}"),
        };
        let s3 = |method: &str, n: u64, action: Action, what: &str| Fault {
            // Only S3 uses GET and PUT here (SQS and STS POST), so "/" selects S3 alone.
            rule: Rule::path(method, "/", When::EveryNth(n), action),
            kind: format!("S3 {method} {what}"),
        };
        // Rates of roughly 4-15%: the SDKs retry (5 attempts), so faults mostly cost retries,
        // and now and then a whole job attempt.
        let faults = vec![
            sqs(
                "ReceiveMessage",
                rng.range(7, 11),
                Action::Error(400, "RequestThrottled"),
                "400 RequestThrottled",
            ),
            sqs(
                "ReceiveMessage",
                rng.range(13, 19),
                Action::Status(500),
                "500 InternalError",
            ),
            sqs(
                "DeleteMessage",
                rng.range(7, 11),
                Action::Status(503),
                "503 ServiceUnavailable",
            ),
            sqs(
                "DeleteMessage",
                rng.range(13, 19),
                Action::Error(400, "ThrottlingException"),
                "400 ThrottlingException",
            ),
            sqs(
                "ChangeMessageVisibility",
                rng.range(5, 9),
                Action::Status(500),
                "500 InternalError",
            ),
            Fault {
                // The worker sends one message to the DLQ (the poison): fail its first try.
                rule: Rule::target("SendMessage", When::First(1), Action::Status(500)),
                kind: "SQS SendMessage 500 InternalError".into(),
            },
            s3(
                "GET",
                rng.range(17, 23),
                Action::Status(500),
                "500 InternalError",
            ),
            s3(
                "GET",
                rng.range(23, 31),
                Action::Error(503, "SlowDown"),
                "503 SlowDown",
            ),
            s3(
                "PUT",
                rng.range(11, 17),
                Action::Error(503, "SlowDown"),
                "503 SlowDown",
            ),
            s3(
                "PUT",
                rng.range(29, 37),
                Action::Status(500),
                "500 InternalError",
            ),
        ];

        let mut disruptions = Vec::new();
        for i in 0..opts.kills {
            // At least one of each signal, the rest at random.
            let signal = match i {
                0 => Signal::Kill,
                1 => Signal::Term,
                _ if rng.next_u64().is_multiple_of(2) => Signal::Kill,
                _ => Signal::Term,
            };
            disruptions.push(Disruption::Kill {
                at: rng.fraction(0.05, 0.85),
                signal,
            });
        }
        for _ in 0..opts.pauses {
            disruptions.push(Disruption::Pause {
                at: rng.fraction(0.3, 0.7),
                length: opts.pause,
            });
        }
        disruptions.push(Disruption::Poison {
            at: rng.fraction(0.1, 0.6),
        });
        disruptions.sort_by(|a, b| a.at().total_cmp(&b.at()));

        // Late duplicates come from the first half, so their originals finish (and the copy
        // is queued) while other work still keeps the service up.
        let first_half = (opts.jobs / 2).max(1);
        let late_duplicates = rng.sample(first_half, opts.late_duplicates);
        let early_duplicates = rng.sample(opts.jobs, opts.early_duplicates);
        Plan {
            faults,
            disruptions,
            early_duplicates,
            late_duplicates,
        }
    }

    pub fn describe(&self) -> String {
        let mut s = String::from("plan:\n");
        for f in &self.faults {
            let when = match f.rule.when {
                When::EveryNth(n) => format!("every {} request", ordinal(n)),
                When::First(k) => format!("the first {k} request(s)"),
                When::Always => "every request".into(),
            };
            let _ = writeln!(s, "  fault: {} on {when}", f.kind);
        }
        for d in &self.disruptions {
            let _ = writeln!(s, "  {}", d.describe());
        }
        let _ = writeln!(
            s,
            "  events delivered twice at once: {:?}\n  events delivered again after their job finished: {:?}",
            self.early_duplicates, self.late_duplicates
        );
        s
    }
}

/// `1st`, `2nd`, `3rd`, `11th`, `22nd`, …
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let opts = ChaosOptions::full(42);
        let a = Plan::new(&mut Rng::new(42), &opts);
        let b = Plan::new(&mut Rng::new(42), &opts);
        assert_eq!(a.describe(), b.describe());
        assert_ne!(a.describe(), Plan::new(&mut Rng::new(43), &opts).describe());
        assert_eq!(a.early_duplicates.len(), 10);
        assert_eq!(a.late_duplicates.len(), 10);
        assert!(a.late_duplicates.iter().all(|&i| i < 100));
        let kills: Vec<Signal> = a
            .disruptions
            .iter()
            .filter_map(|d| match d {
                Disruption::Kill { signal, .. } => Some(*signal),
                _ => None,
            })
            .collect();
        assert_eq!(kills.len(), 8);
        assert!(kills.contains(&Signal::Kill) && kills.contains(&Signal::Term));
        assert!(a.disruptions.windows(2).all(|w| w[0].at() <= w[1].at()));
        let poisons = a
            .disruptions
            .iter()
            .filter(|d| matches!(d, Disruption::Poison { .. }))
            .count();
        assert_eq!(poisons, 1);
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31, 111]
            .map(ordinal)
            .into();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st",
                "111th"
            ]
        );
    }

    #[test]
    fn sample_picks_distinct_indices_in_range() {
        let mut rng = Rng::new(7);
        let s = rng.sample(20, 20);
        assert_eq!(s, (0..20).collect::<Vec<_>>());
        let s = rng.sample(100, 10);
        assert_eq!(s.len(), 10);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s.iter().all(|&i| i < 100));
        assert_eq!(rng.sample(3, 5).len(), 3);
    }
}
