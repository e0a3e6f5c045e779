#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num, timestamp};

/// Registry name: `[ems.smartme]`, feature `ems-smartme`.
pub const NAME: &str = "smartme";
/// The smart-me cloud.
pub const DEFAULT_URL: &str = "https://smart-me.com";
/// The device endpoint; the serial number goes into the query.
pub const DEVICE_BY_SERIAL: &str = "/api/DeviceBySerial";

/// A serial number as written in the config: `serial = 1234567` or `serial = "1234567"`.
fn serial_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(t) => Some(t.trim().to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty() && s.chars().all(|ch| ch.is_ascii_alphanumeric()))
}

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

/// `[ems.smartme]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmartmeConfig {
    /// API base URL; the cloud unless you proxy it.
    #[serde(default = "default_url")]
    pub url: String,
    /// smart-me account user name (HTTP Basic).
    pub username: String,
    /// smart-me account password.
    pub password: Secret,
    /// Serial number of the meter at the grid connection (printed on the meter and in the app):
    /// a number or text.
    pub serial: Value,
    /// The meter counts export as positive (mounted the other way round).
    #[serde(default)]
    pub invert_grid: bool,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Parse a `DeviceBySerial` answer of a meter at the grid connection: grid = `ActivePower`
/// (+ import / − export, in `ActivePowerUnit`), per-phase voltages and currents (signed by each
/// phase's active power), measured at `ValueDate`.
pub fn parse_device(body: &[u8], invert_grid: bool) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    if !v.is_object() {
        return Err(ParseError::protocol("the answer is not a device object"));
    }
    let unit = match v.get("ActivePowerUnit") {
        Some(Value::String(u)) => u.trim().to_string(),
        _ => return Err(ParseError::protocol("missing ActivePowerUnit")),
    };
    let factor = num::unit_factor(&unit)
        .ok_or_else(|| ParseError::protocol(format!("ActivePowerUnit {unit:?} is not a power")))?;
    let sign = if invert_grid { -1.0 } else { 1.0 };
    let power = |key: &str| -> Result<Option<f64>, ParseError> {
        match v.get(key) {
            None => Ok(None),
            Some(x) => Ok(num::value_f64(x)
                .map_err(|e| e.context(key))?
                .map(|p| p * factor * sign)),
        }
    };
    let grid = power("ActivePower")?
        .ok_or_else(|| ParseError::transient("the meter reports no ActivePower"))?;
    let mut r = EnergyReading {
        grid_w: Some(grid),
        ..EnergyReading::default()
    };
    let phases = ["L1", "L2", "L3"];
    let volts = phases
        .iter()
        .map(|p| num::pointer_f64(&v, &format!("/Voltage{p}")).ok().flatten())
        .collect::<Option<Vec<f64>>>();
    r.phase_voltages = volts.filter(|v| v.iter().any(|x| *x > 0.0));
    let mut amps = Vec::new();
    for p in phases {
        let Some(a) = v.get(format!("Current{p}")) else {
            break;
        };
        let Some(a) = num::value_f64(a).map_err(|e| e.context(&format!("Current{p}")))? else {
            break;
        };
        // The meter gives magnitudes; a phase exporting has a negative active power. Without
        // one the current counts as import, the safe side for a grid limit.
        let exporting = power(&format!("ActivePower{p}"))?.is_some_and(|w| w < 0.0);
        amps.push(if exporting { -a.abs() } else { a.abs() });
    }
    if amps.len() == 3 {
        r.phase_currents_a = Some(amps);
    }
    match v.get("ValueDate") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => {
            let at = timestamp::parse_rfc3339(t).map_err(|e| e.context("ValueDate"))?;
            r.measured_at = r.measured_at.min(timestamp::instant_of(at));
        }
        Some(_) => return Err(ParseError::protocol("ValueDate is not text")),
    }
    Ok(r)
}

/// Build from `[ems.smartme]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: SmartmeConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let serial = serial_text(&c.serial).ok_or_else(|| {
        BuildError::new(
            &cfg.section,
            format!(
                "serial must be the meter's serial number (letters and digits), got {}",
                c.serial
            ),
        )
    })?;
    if c.username.trim().is_empty() || c.password.is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "username and password must be your smart-me account's (HTTP Basic)",
        ));
    }
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    let request = Request::get(format!(
        "{}?serial={serial}",
        join(&c.url, DEVICE_BY_SERIAL)
    ))
    .basic_auth(&c.username, c.password.expose());
    let invert = c.invert_grid;
    Ok(Box::new(HttpSource::new(client, request, move |b| {
        parse_device(b, invert)
    })))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "smart-me cloud meter at the grid connection (DeviceBySerial)",
        example: include_str!("../example.toml"),
        build,
    }
}
