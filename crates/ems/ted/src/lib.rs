#![doc = include_str!("../README.md")]

use chrono::{NaiveDateTime, TimeZone};
use serde::Deserialize;
use tokio::time::Instant;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num, timestamp};

/// Registry name: `[ems.ted]`, feature `ems-ted`.
pub const NAME: &str = "ted";
/// The latest second of every MTU as CSV (TWCManager's request).
pub const EXPORT: &str = "/history/export.csv?T=1&D=0&M=1&C=1";

fn default_generation_mtu() -> Option<String> {
    Some("Solar".to_string())
}

/// `[ems.ted]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TedConfig {
    /// The TED gateway's base URL, e.g. `http://ted5000.local`.
    pub url: String,
    /// Name of the MTU on the PV feed (`""` for none).
    #[serde(default = "default_generation_mtu")]
    pub generation_mtu: Option<String>,
    /// Name of an MTU on the house load.
    pub consumption_mtu: Option<String>,
    /// Name of an MTU at the grid connection (net: + import / − export).
    pub grid_mtu: Option<String>,
    /// The generation MTU shows production as positive (TED's default is negative).
    #[serde(default)]
    pub invert_generation: bool,
    /// User name when the gateway's security is on.
    pub username: Option<String>,
    /// Password when the gateway's security is on.
    pub password: Option<Secret>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Which MTU rows to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mtus {
    /// PV feed.
    pub generation: Option<String>,
    /// House load.
    pub consumption: Option<String>,
    /// Grid connection.
    pub grid: Option<String>,
    /// Generation shows production as positive.
    pub invert_generation: bool,
}

/// One row of the export.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// MTU name.
    pub mtu: String,
    /// Power, W (TED sends kW).
    pub power_w: f64,
    /// When the row was measured.
    pub measured_at: Instant,
}

/// Parse the local time of a row (`11/11/2017 14:20:43`, month/day/year).
pub fn parse_ted_time(text: &str) -> Result<Instant, ParseError> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%m/%d/%Y %H:%M:%S")
        .map_err(|_| ParseError::protocol(format!("{text:?} is not a TED time")))?;
    let at = chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| ParseError::protocol(format!("{text:?} does not exist here")))?;
    Ok(timestamp::instant_of(at.with_timezone(&chrono::Utc)))
}

/// Parse `history/export.csv`: a header `MTU, Time, Power, Cost, Voltage`, then one row per MTU.
pub fn parse_export(body: &[u8]) -> Result<Vec<Row>, ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError::protocol("body is not text"))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| ParseError::protocol("empty export"))?
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ParseError::protocol(format!("the export has no {name:?} column")))
    };
    let (mtu, time, power) = (col("mtu")?, col("time")?, col("power")?);
    let mut rows = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < header.len() {
            return Err(ParseError::protocol(format!("short row {line:?}")));
        }
        let kw = num::parse_f64(f[power]).map_err(|e| e.context(f[mtu]))?;
        rows.push(Row {
            mtu: f[mtu].to_string(),
            power_w: kw * 1000.0,
            measured_at: parse_ted_time(f[time]).map_err(|e| e.context(f[mtu]))?,
        });
    }
    if rows.is_empty() {
        return Err(ParseError::transient("the export has no rows"));
    }
    Ok(rows)
}

/// Pick the configured MTUs from the export: generation ≥ 0 (TED shows it negative), consumption
/// as measured, grid + import / − export; as old as the oldest row used.
pub fn parse_reading(body: &[u8], want: &Mtus) -> Result<EnergyReading, ParseError> {
    let rows = parse_export(body)?;
    let mut r = EnergyReading::default();
    let mut oldest: Option<Instant> = None;
    let mut find = |name: &str| -> Result<f64, ParseError> {
        let row = rows
            .iter()
            .find(|x| x.mtu.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let have: Vec<&str> = rows.iter().map(|x| x.mtu.as_str()).collect();
                ParseError::config(format!("no MTU named {name:?} (MTUs: {})", have.join(", ")))
            })?;
        oldest = timestamp::oldest(oldest, Some(row.measured_at));
        Ok(row.power_w)
    };
    if let Some(n) = &want.generation {
        let p = find(n)?;
        // A positive value on a generation MTU is the inverter's own draw (at night): no
        // production, not production.
        let produced = if want.invert_generation { p } else { -p };
        r.generation_w = Some(produced.max(0.0));
    }
    if let Some(n) = &want.consumption {
        let p = find(n)?;
        if p < 0.0 {
            return Err(ParseError::protocol(format!(
                "consumption MTU {n:?} shows {p} W: set it up as a load MTU"
            )));
        }
        r.consumption_w = Some(p);
    }
    if let Some(n) = &want.grid {
        r.grid_w = Some(find(n)?);
    }
    if let Some(t) = oldest {
        r.measured_at = r.measured_at.min(t);
    }
    Ok(r)
}

fn mtu_name(n: Option<String>) -> Option<String> {
    n.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Build from `[ems.ted]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: TedConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let want = Mtus {
        generation: mtu_name(c.generation_mtu),
        consumption: mtu_name(c.consumption_mtu),
        grid: mtu_name(c.grid_mtu),
        invert_generation: c.invert_generation,
    };
    if want.generation.is_none() && want.consumption.is_none() && want.grid.is_none() {
        return Err(BuildError::new(
            &cfg.section,
            "no MTU configured: set at least one of generation_mtu, consumption_mtu, grid_mtu",
        ));
    }
    let mut request = Request::get(join(&c.url, EXPORT));
    match (&c.username, &c.password) {
        (Some(u), Some(p)) => request = request.basic_auth(u, p.expose()),
        (None, None) => {}
        _ => {
            return Err(BuildError::new(
                &cfg.section,
                "username and password go together (the gateway's security login)",
            ));
        }
    }
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    Ok(Box::new(HttpSource::new(client, request, move |b| {
        parse_reading(b, &want)
    })))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "TED5000 MTUs by name (history/export.csv)",
        example: include_str!("../example.toml"),
        build,
    }
}
