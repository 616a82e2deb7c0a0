//! The spec's scenarios through the simulator.

use czero_scaling::scenario::Scenario;
use czero_scaling::sim::{SimConfig, simulate};
use czero_scaling::table;

#[test]
fn print_scenarios() {
    for s in Scenario::ALL {
        for idle_exit in [false, true] {
            let cfg = s.config(&SimConfig { idle_exit, ..SimConfig::default() });
            let r = simulate(&cfg, &s.arrivals());
            println!("== {} idle_exit={idle_exit}\n{}{}", s.name(), table::timeline(&r), table::summary(&r));
        }
    }
}
