//! One link line per plugin feature, nothing else: a plugin crate the binary never names is not
//! linked, and its `inventory` registration would silently vanish.
#[cfg(feature = "ems-sim")]
use twc_ems_sim as _;
