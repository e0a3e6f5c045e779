//! One link line per plugin feature, nothing else: a plugin crate the binary never names is not
//! linked, and its `inventory` registration would silently vanish.
#[cfg(feature = "ems-sim")]
use twc_ems_sim as _;
#[cfg(feature = "comms-rs485")]
use twc_comms_rs485 as _;
#[cfg(feature = "comms-tcp")]
use twc_comms_tcp as _;
