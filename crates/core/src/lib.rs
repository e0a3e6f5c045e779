#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod combine;
pub mod config;
pub mod engine;
pub mod history;
pub mod logging;
pub mod master;
pub mod model;
pub mod planner;
pub mod plugin;
pub mod policy;
pub mod protocol;
pub mod settings_store;
pub mod share;
pub mod spy;
pub mod transport;
pub mod vehicles;

pub use async_trait::async_trait;
pub use inventory;
