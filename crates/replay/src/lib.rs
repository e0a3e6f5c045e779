#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod adversary;
pub mod chart;
pub mod cli;
pub mod corpus;
pub mod generate;
pub mod metrics;
pub mod plan_month;
pub mod plan_solar;
pub mod reference;
pub mod run;
pub mod sessions;
pub mod simcar;
pub mod trace;

pub use generate::{DayKind, GenSpec, generate};
pub use metrics::{Accumulator, MetricParams, Metrics, Row, rows_csv};
pub use reference::{ReferenceConfig, run_reference};
pub use run::{Report, SimOptions, run};
pub use trace::{Trace, TraceStep};
