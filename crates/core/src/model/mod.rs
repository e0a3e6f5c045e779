//! Domain types shared by the engine and every plugin.
//!
//! Sign conventions, stated once: **grid power is positive when importing** from the grid and
//! negative when exporting; generation and consumption are ≥ 0; battery power is positive while
//! the battery **discharges** (feeds the house) and negative while it charges.

mod load_point;
mod reading;
mod session;
mod settings;
mod status;
mod units;

pub use load_point::{
    LoadPointDetails, LoadPointMeasurement, LoadPointReport, LoadPointState, LoadPointStatus,
    ident_of,
};
pub use reading::{EnergyReading, Quantity};
pub use session::{PriceNow, SessionMetrics, cost, pv_surplus_w, solar_share};
pub use settings::{
    ChargeNow, ConsumptionOffset, GridLimit, HomeLocation, OffsetUnit, Schedule, ScheduleWindow,
    Settings, SettingsError, SettingsLimits, bounds,
};
pub use status::{
    BusStatus, ChargeSession, Event, PolicyStatus, SitePower, SlaveStatus, SourceStatus, Status,
};
pub use units::{Amps, CentiAmps, Watts};

/// A slave's bus address; the protocol's TWCID.
pub type SlaveId = crate::protocol::TwcId;
