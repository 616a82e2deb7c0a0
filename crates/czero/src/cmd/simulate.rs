//! `czero simulate`: replay the design document's scaling scenarios (or a trace, or a
//! standard workload) through the model of AWS in `czero-scaling`, and print the spec's
//! minute-by-minute table with cost, latency and relaunches; `--tuning` and
//! `--compare-idle-exit` print the experiments behind docs/tuning.md. Exit codes: 0 ok,
//! 2 bad options or an unreadable trace.

use anyhow::{Context, Result, bail};
use czero_scaling::experiments::{self, TuningRow};
use czero_scaling::scenario::Scenario;
use czero_scaling::sim::{Report, SimConfig, simulate};
use czero_scaling::{table, trace};
use plotters::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn get(self) -> bool {
        self == OnOff::On
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// The design document as AWS would run it: its scaling values, alarms alone wake the
    /// service, the worker exits when idle.
    Spec,
    /// Our deployment: 2-minute scale-in, fast wake with the scale-in guard, no idle exit.
    Recommended,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadArg {
    Sporadic,
    BurstyDay,
    Steady,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One of the spec's scenarios.
    #[arg(long, value_parser = ["idle", "single", "burst"], default_value = "single")]
    pub scenario: String,
    /// Arrival times instead of a scenario: JSON lines (`{"t": SECONDS}`) or CSV (first
    /// field in seconds; a non-numeric first line is a header).
    #[arg(long, value_name = "FILE", conflicts_with = "workload")]
    pub trace: Option<PathBuf>,
    /// A standard one-day workload instead of a scenario.
    #[arg(long, value_enum)]
    pub workload: Option<WorkloadArg>,
    /// Settings to start from; the flags below override them.
    #[arg(long, value_enum, default_value = "spec")]
    pub profile: Profile,
    /// The worker exits after MAX_EMPTY_RECEIVES empty receives.
    #[arg(long, value_enum)]
    pub idle_exit: Option<OnOff>,
    /// The invoker raises the service from 0 to 1 when it queues a job.
    #[arg(long, value_enum)]
    pub fast_wake: Option<OnOff>,
    /// The scale-in alarm counts an empty queue only while a task runs.
    #[arg(long, value_enum)]
    pub scale_in_guard: Option<OnOff>,
    /// Seconds between a metric period's end and the alarms seeing its datapoint.
    #[arg(long, value_name = "SECONDS")]
    pub metric_lag: Option<u64>,
    /// Seed for start-up and processing times (and generated workloads).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report (config, summary, timeline) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw queue, desired and running over time to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// The spec's tuning rows and ours on the standard workloads.
    #[arg(long, conflicts_with = "compare_idle_exit")]
    pub tuning: bool,
    /// Idle exit inside the service, on and off, on the scenarios and workloads.
    #[arg(long)]
    pub compare_idle_exit: bool,
}

pub fn run(args: Args) -> ExitCode {
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("czero simulate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn base_config(args: &Args) -> SimConfig {
    let row: TuningRow = match args.profile {
        Profile::Spec => experiments::spec_as_designed(),
        Profile::Recommended => experiments::recommended(),
    };
    let mut cfg = experiments::row_config(&row, args.seed);
    if let Some(v) = args.idle_exit {
        cfg.idle_exit = v.get();
    }
    if let Some(v) = args.fast_wake {
        cfg.fast_wake = v.get();
    }
    if let Some(v) = args.scale_in_guard {
        cfg.scale_in_guard = v.get();
    }
    if let Some(v) = args.metric_lag {
        cfg.metric_lag_s = v;
    }
    cfg
}

fn execute(args: &Args) -> Result<()> {
    if args.tuning {
        let results = experiments::tuning(args.seed);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&results)?);
        } else {
            print!("{}", experiments::tuning_table(&results));
        }
        return Ok(());
    }
    if args.compare_idle_exit {
        let results = experiments::compare_idle_exit(args.seed);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&results)?);
        } else {
            print!("{}", experiments::idle_exit_table(&results));
        }
        return Ok(());
    }
    let base = base_config(args);
    let (name, cfg, arrivals) = if let Some(path) = &args.trace {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading trace {}", path.display()))?;
        let arrivals = trace::parse(&text).with_context(|| format!("trace {}", path.display()))?;
        (path.display().to_string(), base, arrivals)
    } else if let Some(w) = args.workload {
        let w = match w {
            WorkloadArg::Sporadic => trace::Workload::Sporadic,
            WorkloadArg::BurstyDay => trace::Workload::BurstyDay,
            WorkloadArg::Steady => trace::Workload::Steady,
        };
        (w.name().to_owned(), base, w.arrivals(args.seed))
    } else {
        let Some(s) = Scenario::parse(&args.scenario) else {
            bail!(
                "--scenario {}: expected idle, single or burst",
                args.scenario
            );
        };
        (s.name().to_owned(), s.config(&base), s.arrivals())
    };
    let report = simulate(&cfg, &arrivals);
    if let Some(path) = &args.plot {
        let svg = plot(&report, &name)?;
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{name}: idle exit {}, fast wake {}, scale-in guard {}, metric lag {} s, seed {}",
            on_off(cfg.idle_exit),
            on_off(cfg.fast_wake),
            on_off(cfg.scale_in_guard),
            cfg.metric_lag_s,
            cfg.seed
        );
        print!("{}", table::timeline(&report));
        print!("{}", table::summary(&report));
    }
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Queue, desired and running per minute as an SVG document.
fn plot(report: &Report, name: &str) -> Result<String> {
    let rows = &report.timeline;
    let minutes = rows.last().map_or(1, |r| r.t_s / 60).max(1) as f64;
    let top = rows
        .iter()
        .map(|r| r.queue.max(u64::from(r.desired)).max(u64::from(r.running)))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 450)).into_drawing_area();
        let draw = |e: &dyn std::fmt::Display| anyhow::anyhow!("plot: {e}");
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("czero simulate: {name}"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..minutes, 0f64..top)
            .map_err(|e| draw(&e))?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc("messages / tasks")
            .draw()
            .map_err(|e| draw(&e))?;
        let series: [(&str, RGBColor, RowValue); 3] = [
            ("queue (visible + in flight)", BLUE, |r| r.queue as f64),
            ("desired", RED, |r| f64::from(r.desired)),
            ("running", GREEN, |r| f64::from(r.running)),
        ];
        for (label, color, value) in series {
            // Steps: a value holds until the next minute's row.
            let mut points = Vec::with_capacity(rows.len() * 2);
            for (i, r) in rows.iter().enumerate() {
                let x = r.t_s as f64 / 60.0;
                if i > 0 {
                    points.push((x, value(&rows[i - 1])));
                }
                points.push((x, value(r)));
            }
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| draw(&e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

/// Which number of a timeline row a plotted series shows.
type RowValue = fn(&czero_scaling::sim::Row) -> f64;
