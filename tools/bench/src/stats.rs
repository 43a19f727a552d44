//! Mean, median and 95th percentile of a row's times, and their ratios.

use std::time::Duration;

/// A row's figures, in µs (or ratios, from [`Stats::ratio_to`]).
pub struct Stats {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
}

impl Stats {
    pub fn of(times: &[Duration]) -> Stats {
        let mut us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let pick = |q: f64| us[((us.len() - 1) as f64 * q) as usize];
        Stats {
            mean: us.iter().sum::<f64>() / us.len() as f64,
            p50: pick(0.5),
            p95: pick(0.95),
        }
    }

    pub fn print(&self, label: &str) {
        println!(
            "{label:<40} {:>10.1} {:>10.1} {:>10.1}",
            self.mean, self.p50, self.p95
        );
    }
    /// Each figure over the same figure of `base`.
    pub fn ratio_to(&self, base: &Stats) -> Stats {
        Stats {
            mean: self.mean / base.mean,
            p50: self.p50 / base.p50,
            p95: self.p95 / base.p95,
        }
    }

    /// A row of [`Stats::ratio_to`] figures, in the columns of [`Stats::print`].
    pub fn print_ratio(&self, label: &str) {
        println!(
            "{label:<40} {:>9.2}× {:>9.2}× {:>9.2}×",
            self.mean, self.p50, self.p95
        );
    }
}
