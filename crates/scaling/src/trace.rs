//! Arrival traces: the text format `czero simulate --trace` reads, and seeded workloads.
//!
//! A trace file lists arrival times in seconds from the start, one event per line, as
//! JSON lines (`{"t": 12.5}`) or CSV (first field is the time; a non-numeric first line is
//! a header). Blank lines and lines starting with `#` are skipped. Times need not be sorted.

use crate::rng::Rng;
use thiserror::Error;

/// A trace line that could not be read.
#[derive(Debug, Error, PartialEq)]
pub enum TraceError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// Parse a trace (JSON lines or CSV) into arrival times in seconds, sorted.
pub fn parse(text: &str) -> Result<Vec<f64>, TraceError> {
    let mut times = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let s = raw.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let t = if s.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(s).map_err(|e| TraceError::Line {
                line,
                reason: format!("invalid JSON: {e}"),
            })?;
            v.get("t")
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| TraceError::Line {
                    line,
                    reason: "field `t` (seconds, a number) is missing".to_owned(),
                })?
        } else {
            let field = s.split(',').next().unwrap_or_default().trim();
            match field.parse::<f64>() {
                Ok(t) => t,
                Err(_) if times.is_empty() && line == first_content_line(text) => continue,
                Err(_) => {
                    return Err(TraceError::Line {
                        line,
                        reason: format!("`{field}` is not a time in seconds"),
                    });
                }
            }
        };
        if !(t.is_finite() && t >= 0.0) {
            return Err(TraceError::Line {
                line,
                reason: format!("time {t} must be a finite number of seconds >= 0"),
            });
        }
        times.push(t);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn first_content_line(text: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        })
        .map_or(0, |i| i + 1)
}

/// Render arrival times as JSON lines (the format [`parse`] reads).
pub fn to_json_lines(times: &[f64]) -> String {
    let mut out = String::with_capacity(times.len() * 12);
    for t in times {
        out.push_str(&format!("{{\"t\":{t}}}\n"));
    }
    out
}

/// A named standard workload over one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One event every 30 minutes on average (Poisson), for a day.
    Sporadic,
    /// Bursts of 5–60 events (spread over 30 s) every 20 minutes on average, for a day.
    BurstyDay,
    /// One event every 30 s on average (Poisson), for a day.
    Steady,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Sporadic, Workload::BurstyDay, Workload::Steady];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Sporadic => "sporadic",
            Workload::BurstyDay => "bursty-day",
            Workload::Steady => "steady",
        }
    }

    /// Arrival times in seconds, sorted, generated from `seed`.
    pub fn arrivals(self, seed: u64) -> Vec<f64> {
        const DAY: f64 = 86_400.0;
        match self {
            Workload::Sporadic => poisson(seed, DAY, 1800.0),
            Workload::BurstyDay => bursts(seed, DAY, 1200.0, 5, 60, 30.0),
            Workload::Steady => poisson(seed, DAY, 30.0),
        }
    }
}

/// Poisson arrivals with mean gap `mean_gap_s` over `duration_s`.
pub fn poisson(seed: u64, duration_s: f64, mean_gap_s: f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        t += rng.exponential(mean_gap_s);
        if t >= duration_s {
            return out;
        }
        out.push(t);
    }
}

/// Bursts starting as a Poisson process (mean gap `mean_gap_s`), each of a uniform
/// `min_size..=max_size` events spread uniformly over `spread_s`.
pub fn bursts(
    seed: u64,
    duration_s: f64,
    mean_gap_s: f64,
    min_size: u32,
    max_size: u32,
    spread_s: f64,
) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        t += rng.exponential(mean_gap_s);
        if t >= duration_s {
            break;
        }
        let size = rng.range_u32(min_size, max_size);
        for _ in 0..size {
            out.push(t + rng.uniform(0.0, spread_s));
        }
    }
    out.sort_by(f64::total_cmp);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_lines_and_csv() {
        assert_eq!(
            parse("{\"t\": 3}\n\n# c\n{\"t\":1.5}\n"),
            Ok(vec![1.5, 3.0])
        );
        assert_eq!(
            parse("t,source\n0,cloudtrail\n60.5,hub\n"),
            Ok(vec![0.0, 60.5])
        );
        assert_eq!(parse("5\n2\n"), Ok(vec![2.0, 5.0]));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("1\nx\n").map(|_| ()).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("line 2: `x` is not a time in seconds"));
        let e = parse("{\"s\":1}").map(|_| ()).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("line 1: field `t` (seconds, a number) is missing")
        );
        assert!(parse("-1\n").is_err());
    }

    #[test]
    fn round_trips_json_lines() {
        // serde_json parses floats to within an ulp; the simulator's resolution is 1 ms.
        let times = Workload::BurstyDay.arrivals(7);
        let back = parse(&to_json_lines(&times)).unwrap_or_default();
        assert_eq!(back.len(), times.len());
        assert!(back.iter().zip(&times).all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn workloads_have_plausible_sizes() {
        let n = |w: Workload| w.arrivals(1).len();
        assert!((20..100).contains(&n(Workload::Sporadic)));
        assert!((1000..5000).contains(&n(Workload::BurstyDay)));
        assert!((2500..3300).contains(&n(Workload::Steady)));
    }
}
