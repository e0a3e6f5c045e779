//! One link line per plugin feature, nothing else: a plugin crate the binary never names is not
//! linked, and its `inventory` registration would silently vanish.
#[cfg(feature = "comms-dummy")]
use twc_comms_dummy as _;
#[cfg(feature = "comms-rs485")]
use twc_comms_rs485 as _;
#[cfg(feature = "comms-tcp")]
use twc_comms_tcp as _;
#[cfg(feature = "control-http")]
use twc_control_http as _;
#[cfg(feature = "control-mqtt")]
use twc_control_mqtt as _;
#[cfg(feature = "ems-enphase")]
use twc_ems_enphase as _;
#[cfg(feature = "ems-fronius")]
use twc_ems_fronius as _;
#[cfg(feature = "ems-hass")]
use twc_ems_hass as _;
#[cfg(feature = "ems-iotawatt")]
use twc_ems_iotawatt as _;
#[cfg(feature = "ems-kostal")]
use twc_ems_kostal as _;
#[cfg(feature = "ems-mqtt")]
use twc_ems_mqtt as _;
#[cfg(feature = "ems-openhab")]
use twc_ems_openhab as _;
#[cfg(feature = "ems-powerwall")]
use twc_ems_powerwall as _;
#[cfg(feature = "ems-sim")]
use twc_ems_sim as _;
#[cfg(feature = "ems-solaredge")]
use twc_ems_solaredge as _;
#[cfg(feature = "ems-url")]
use twc_ems_url as _;
#[cfg(feature = "logging-console")]
use twc_logging_console as _;
#[cfg(feature = "logging-csv")]
use twc_logging_csv as _;
#[cfg(feature = "logging-files")]
use twc_logging_files as _;
#[cfg(feature = "logging-mysql")]
use twc_logging_mysql as _;
#[cfg(feature = "logging-sentry")]
use twc_logging_sentry as _;
#[cfg(feature = "logging-sqlite")]
use twc_logging_sqlite as _;
#[cfg(feature = "status-hass")]
use twc_status_hass as _;
#[cfg(feature = "status-mqtt")]
use twc_status_mqtt as _;
#[cfg(feature = "status-webhook")]
use twc_status_webhook as _;
