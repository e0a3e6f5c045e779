#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use twc_core::model::{EnergyReading, Quantity};
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{Channel, ChannelSource, ParseError, num, timestamp};

/// Registry name: `[ems.volkszaehler]`, feature `ems-volkszaehler`.
pub const NAME: &str = "volkszaehler";

/// How the middleware is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `data/<uuid>.json?from=now`: the value with its time.
    #[default]
    Json,
    /// `data/<uuid>.txt?from=now`: `"<value> W"`, no time (TWCManager's format).
    Txt,
}

impl Format {
    /// `"json"` or `"txt"`.
    pub fn parse(text: &str) -> Option<Format> {
        match text.trim() {
            "json" => Some(Format::Json),
            "txt" => Some(Format::Txt),
            _ => None,
        }
    }
    fn ext(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Txt => "txt",
        }
    }
}

fn default_format() -> String {
    "json".to_string()
}

/// `[ems.volkszaehler]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolkszaehlerConfig {
    /// The middleware's URL, e.g. `http://vz.local/middleware.php` (or `http://vz.local/api`).
    pub url: String,
    /// UUID of the channel with PV power, W.
    pub generation_uuid: Option<String>,
    /// UUID of the channel with grid power, W (+ import / − export unless `invert_grid`).
    pub grid_uuid: Option<String>,
    /// UUID of the channel with house consumption, W.
    pub consumption_uuid: Option<String>,
    /// The grid channel shows export as positive.
    #[serde(default)]
    pub invert_grid: bool,
    /// The PV channel shows production as negative.
    #[serde(default)]
    pub invert_generation: bool,
    /// UUIDs of channels with the grid current of each phase, A (L1, L2, L3).
    #[serde(default)]
    pub phase_current_uuids: Vec<String>,
    /// `json` (default, with the value's time) or `txt`.
    #[serde(default = "default_format")]
    pub format: String,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Parse `data/<uuid>.json?from=now`: the last tuple `[timestamp ms, value, count]` of
/// `data.tuples`, with its time.
pub fn parse_data_json(body: &[u8]) -> Result<(f64, Option<Instant>), ParseError> {
    let v = num::json(body)?;
    if let Some(e) = v.pointer("/exception/message").and_then(Value::as_str) {
        return Err(ParseError::config(format!("the middleware refused: {e}")));
    }
    let data = num::pointer(&v, "/data")?;
    let tuples = match data.get("tuples") {
        None | Some(Value::Null) => {
            return Err(ParseError::transient(
                "the channel has no recent value (no tuples)",
            ));
        }
        Some(Value::Array(t)) => t,
        Some(_) => return Err(ParseError::protocol("data.tuples is not a list")),
    };
    let last = tuples
        .last()
        .ok_or_else(|| ParseError::transient("the channel has no recent value (no tuples)"))?
        .as_array()
        .ok_or_else(|| ParseError::protocol("a tuple is not a list"))?;
    if last.len() < 2 {
        return Err(ParseError::protocol("a tuple has no value"));
    }
    let value = num::value_f64(&last[1])
        .map_err(|e| e.context("tuple value"))?
        .ok_or_else(|| ParseError::transient("the channel's value is null"))?;
    let at = timestamp::value_instant(&last[0]).map_err(|e| e.context("tuple time"))?;
    Ok((value, at))
}

/// Parse `data/<uuid>.txt?from=now`: `"<value> W"`. The unit is required: a body cut short
/// must not pass as a smaller number.
pub fn parse_data_txt(body: &[u8]) -> Result<f64, ParseError> {
    let t = std::str::from_utf8(body)
        .map_err(|_| ParseError::protocol("body is not text"))?
        .trim();
    if !t.ends_with('W') {
        return Err(ParseError::protocol(format!(
            "{:?} is not a power in W",
            t.chars().take(40).collect::<String>()
        )));
    }
    num::parse_power_w(t)
}

/// Parse a current channel's `data/<uuid>.txt?from=now`: `"<value> A"` (the unit is required).
pub fn parse_current_txt(body: &[u8]) -> Result<f64, ParseError> {
    let t = std::str::from_utf8(body)
        .map_err(|_| ParseError::protocol("body is not text"))?
        .trim();
    let Some(number) = t.strip_suffix('A') else {
        return Err(ParseError::protocol(format!(
            "{:?} is not a current in A",
            t.chars().take(40).collect::<String>()
        )));
    };
    num::parse_f64(number)
}

/// Generation from a PV channel: ≥ 0 (a negative value is the inverter's own draw).
fn generation(v: f64, invert: bool) -> f64 {
    (if invert { -v } else { v }).max(0.0)
}

/// Fill in consumption = generation + grid when the site has no consumption channel; a negative
/// sum (the two values disagree) leaves it unknown rather than 0 W.
pub fn derive_consumption(r: &mut EnergyReading) {
    if r.consumption_w.is_none()
        && let (Some(g), Some(n)) = (r.generation_w, r.grid_w)
        && g + n >= 0.0
    {
        r.consumption_w = Some(g + n);
    }
}

/// The source: one request per channel.
pub struct Volkszaehler {
    channels: ChannelSource,
    client: HttpClient,
    currents: Vec<Request>,
    format: Format,
}

#[async_trait]
impl EmsSource for Volkszaehler {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let mut r = self.channels.read().await?;
        derive_consumption(&mut r);
        if self.currents.is_empty() {
            return Ok(r);
        }
        let mut amps = Vec::with_capacity(self.currents.len());
        for req in &self.currents {
            let (a, at) = match self.format {
                Format::Json => self.client.fetch(req, parse_data_json).await?,
                Format::Txt => (self.client.fetch(req, parse_current_txt).await?, None),
            };
            let arrived = Instant::now();
            r.measured_at = r.measured_at.min(at.map_or(arrived, |t| t.min(arrived)));
            // Meters give magnitudes: every phase counts as importing, the safe side for the
            // grid limit.
            amps.push(a.abs());
        }
        r.phase_currents_a = Some(amps);
        Ok(r)
    }
}

fn check_uuid(section: &str, key: &str, uuid: &str) -> Result<(), BuildError> {
    let ok = uuid.len() >= 8 && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(BuildError::new(
            section,
            format!(
                "{key} must be a channel UUID such as \"57acbef0-88a9-11e4-934f-6b0f9ecd95a8\", got {uuid:?}"
            ),
        ))
    }
}

/// Build from `[ems.volkszaehler]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: VolkszaehlerConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let format = Format::parse(&c.format).ok_or_else(|| {
        BuildError::new(
            &cfg.section,
            format!("format must be \"json\" or \"txt\", got {:?}", c.format),
        )
    })?;
    let ext = format.ext();
    let mut channels = Vec::new();
    for (key, uuid, quantity) in [
        ("generation_uuid", &c.generation_uuid, Quantity::Generation),
        ("grid_uuid", &c.grid_uuid, Quantity::Grid),
        (
            "consumption_uuid",
            &c.consumption_uuid,
            Quantity::Consumption,
        ),
    ] {
        let Some(uuid) = uuid.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            continue;
        };
        check_uuid(&cfg.section, key, uuid)?;
        let request = Request::get(join(&c.url, &format!("data/{uuid}.{ext}?from=now")));
        let (inv_grid, inv_gen) = (c.invert_grid, c.invert_generation);
        let signed = move |v: f64| match quantity {
            Quantity::Generation => generation(v, inv_gen),
            Quantity::Grid if inv_grid => -v,
            _ => v,
        };
        channels.push(match format {
            Format::Json => Channel::timed(quantity, request, move |b| {
                parse_data_json(b).map(|(v, at)| (signed(v), at))
            }),
            Format::Txt => Channel::new(quantity, request, move |b| parse_data_txt(b).map(signed)),
        });
    }
    if channels.is_empty() {
        return Err(BuildError::new(
            &cfg.section,
            "no channel configured: set at least one of generation_uuid, grid_uuid, consumption_uuid",
        ));
    }
    let mut currents = Vec::new();
    if !c.phase_current_uuids.is_empty() {
        if c.grid_uuid.is_none() || !matches!(c.phase_current_uuids.len(), 1 | 3) {
            return Err(BuildError::new(
                &cfg.section,
                "phase_current_uuids must list 1 or 3 channel UUIDs (L1, L2, L3) and needs grid_uuid",
            ));
        }
        for uuid in &c.phase_current_uuids {
            check_uuid(&cfg.section, "phase_current_uuids", uuid.trim())?;
            currents.push(Request::get(join(
                &c.url,
                &format!("data/{}.{ext}?from=now", uuid.trim()),
            )));
        }
    }
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    Ok(Box::new(Volkszaehler {
        channels: ChannelSource::new(client.clone(), channels),
        client,
        currents,
        format,
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "Volkszähler middleware channels by UUID (PV, grid, consumption)",
        example: include_str!("../example.toml"),
        build,
    }
}
