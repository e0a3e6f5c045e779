#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod bus;
mod config;
mod serve;
mod slave;

pub use bus::{BusCounters, DUPLEX_BUFFER, SimBus, SimHandle, duplex_pair, duplex_pair_named};
pub use config::{
    CarConfig, CarFaults, FleetSpec, SAMPLE_VIN, SimSlave, SlaveConfig, sample_vin, vin_check_digit,
};
pub use serve::{Pty, SimArgs, connect_tcp, open_pty, run, serve_listener, serve_pty, serve_tcp};
pub use slave::{
    BURST_REPLY_DELAY, BURST_REPLY_SPACING, CAR_STOPS_AFTER, DRAW_SHORTFALL, LINK_LOST_AFTER,
    LINK_READY_INTERVAL, SlaveSim, SlaveSnapshot,
};

/// What can go wrong running the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Bad command-line or config input; the message names the option.
    #[error("{0}")]
    Usage(String),
    /// Creating or bridging the pseudo-terminal failed.
    #[error("pseudo-terminal: {0}")]
    Pty(String),
    /// Listening or connecting failed.
    #[error("network: {0}")]
    Net(String),
    /// I/O on the bus stream failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A reply could not be encoded (a bug).
    #[error("cannot encode a reply: {0}")]
    Encode(String),
    /// A handle call named a slave that does not exist.
    #[error("no slave {index} (the bus has {count})")]
    NoSuchSlave {
        /// The index asked for.
        index: usize,
        /// Slaves on the bus.
        count: usize,
    },
}
