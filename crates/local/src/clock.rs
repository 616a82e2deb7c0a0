//! Simulated time. `--time-scale N` makes one simulated second last `1/N` real seconds, so a
//! five-minute cooldown takes ten seconds at 30×. Every period, cooldown, alarm evaluation,
//! protection expiry and stop timeout in this crate is measured on this clock; the workers'
//! own long polls are not (they are real time, set through their environment).

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    scale: f64,
}

impl Clock {
    /// Starts the clock now. A `scale` that is not a positive finite number means 1.
    pub fn start(scale: f64) -> Self {
        Clock {
            start: Instant::now(),
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
        }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Simulated seconds since the start.
    pub fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.scale
    }

    /// How long `sim_s` simulated seconds last in real time.
    pub fn real(&self, sim_s: f64) -> Duration {
        Duration::from_secs_f64((sim_s / self.scale).max(0.0))
    }

    /// The real instant at which simulated time reaches `sim_s`.
    pub fn instant_at(&self, sim_s: f64) -> Instant {
        self.start + self.real(sim_s)
    }

    /// Sleeps until simulated time reaches `sim_s` (returns at once if it has).
    pub async fn sleep_until(&self, sim_s: f64) {
        tokio::time::sleep_until(self.instant_at(sim_s).into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_shrinks_real_durations() {
        let c = Clock::start(30.0);
        assert_eq!(c.real(300.0), Duration::from_secs(10));
        assert_eq!(Clock::start(0.0).scale(), 1.0);
        assert_eq!(Clock::start(f64::NAN).scale(), 1.0);
    }
}
