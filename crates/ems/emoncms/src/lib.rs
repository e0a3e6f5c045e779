#![doc = include_str!("../README.md")]

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use twc_core::model::{EnergyReading, Quantity};
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError, Secret};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{ParseError, num, set_quantity, timestamp};

/// The registry name: the section is `[ems.emoncms]`, the bin's feature `ems-emoncms`.
pub const NAME: &str = "emoncms";

/// `[ems.emoncms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmoncmsConfig {
    /// Base URL of EmonCMS, with its path if any: `http://emonpi.local`, `https://emoncms.org`,
    /// `http://server/emoncms`.
    pub url: String,
    /// Read API key (My Account); sent as `Authorization: Bearer`. Not needed for public feeds.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Feed id of the PV generation power (W).
    #[serde(default)]
    pub generation_feed: Option<u32>,
    /// Feed id of the house consumption power (W).
    #[serde(default)]
    pub consumption_feed: Option<u32>,
    /// Feed id of the grid power (W, + import / − export unless `invert_grid`).
    #[serde(default)]
    pub grid_feed: Option<u32>,
    /// The grid feed counts export as positive: turn it around.
    #[serde(default)]
    pub invert_grid: bool,
    /// Also ask each feed when its last value was written (`/feed/timevalue.json`), so a dead
    /// input goes stale. One more request per feed and read.
    #[serde(default = "yes")]
    pub check_time: bool,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn yes() -> bool {
    true
}

/// One configured feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    /// Which quantity it measures.
    pub quantity: Quantity,
    /// EmonCMS feed id.
    pub id: u32,
}

/// Parse `/feed/fetch.json?ids=…`: a JSON array with one entry per id, in the order asked.
/// A number (or numeric string) is the value; `false` means the feed does not exist or this key
/// may not read it (a Config error); `null` means the feed has no value (Transient).
pub fn parse_fetch(body: &[u8], feeds: &[Feed]) -> Result<Vec<f64>, ParseError> {
    let v = num::json(body)?;
    if let Some(msg) = v.get("message").and_then(Value::as_str) {
        return Err(refusal(msg));
    }
    let a = v
        .as_array()
        .ok_or_else(|| ParseError::protocol("expected a JSON array of feed values"))?;
    if a.len() != feeds.len() {
        return Err(ParseError::protocol(format!(
            "asked for {} feeds, got {} values",
            feeds.len(),
            a.len()
        )));
    }
    feeds
        .iter()
        .zip(a)
        .map(|(f, x)| match x {
            Value::Bool(false) => Err(ParseError::config(format!(
                "feed {} ({}) does not exist or this api_key may not read it",
                f.id,
                quantity_name(f.quantity)
            ))),
            Value::Null => Err(ParseError::transient(format!(
                "feed {} ({}) has no value",
                f.id,
                quantity_name(f.quantity)
            ))),
            other => num::value_f64(other)
                .map_err(|e| e.context(&format!("feed {}", f.id)))?
                .ok_or_else(|| ParseError::protocol("unreachable null")),
        })
        .collect()
}

/// EmonCMS answers a refused request with `{"success": false, "message": "…"}`.
fn refusal(msg: &str) -> ParseError {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("feed does not exist") {
        ParseError::config(format!("EmonCMS: {msg}"))
    } else if lower.contains("apikey") || lower.contains("username") || lower.contains("permission")
    {
        ParseError {
            kind: twc_core::plugin::ErrorKind::Auth,
            message: format!("EmonCMS: {msg} (check api_key)"),
        }
    } else {
        ParseError::protocol(format!("EmonCMS: {msg}"))
    }
}

/// Parse `/feed/timevalue.json?id=…`: `{"time": <Unix s>, "value": …}`, the feed's last write.
/// `null` time (a feed with no data) is Transient.
pub fn parse_timevalue(body: &[u8]) -> Result<Instant, ParseError> {
    let v = num::json(body)?;
    if let Some(msg) = v.get("message").and_then(Value::as_str) {
        return Err(refusal(msg));
    }
    timestamp::pointer_instant(&v, "/time")?
        .ok_or_else(|| ParseError::transient("the feed has no value yet (time is null)"))
}

fn quantity_name(q: Quantity) -> &'static str {
    match q {
        Quantity::Generation => "generation_feed",
        Quantity::Consumption => "consumption_feed",
        Quantity::Grid => "grid_feed",
        _ => "feed",
    }
}

/// Turn the values (in `feeds` order) into a reading.
pub fn reading(feeds: &[Feed], values: &[f64], invert_grid: bool) -> EnergyReading {
    let mut r = EnergyReading::default();
    for (f, v) in feeds.iter().zip(values) {
        let v = match f.quantity {
            // A PV or house clamp reads a few negative watts at night: that is 0 W.
            Quantity::Generation | Quantity::Consumption => v.max(0.0),
            _ if invert_grid => -v,
            _ => *v,
        };
        set_quantity(&mut r, f.quantity, v);
    }
    r
}

/// The source.
pub struct Emoncms {
    client: HttpClient,
    base: String,
    key: Option<Secret>,
    feeds: Vec<Feed>,
    invert_grid: bool,
    check_time: bool,
}

impl Emoncms {
    fn request(&self, path_and_query: &str) -> Request {
        let r = Request::get(join(&self.base, path_and_query));
        match &self.key {
            Some(k) => r.bearer(k.expose()),
            None => r,
        }
    }
}

#[async_trait]
impl EmsSource for Emoncms {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let ids: Vec<String> = self.feeds.iter().map(|f| f.id.to_string()).collect();
        let req = self.request(&format!("/feed/fetch.json?ids={}", ids.join(",")));
        let values = self
            .client
            .fetch(&req, |b| parse_fetch(b, &self.feeds))
            .await?;
        let mut at = Instant::now();
        if self.check_time {
            for f in &self.feeds {
                let req = self.request(&format!("/feed/timevalue.json?id={}", f.id));
                let t = self
                    .client
                    .fetch(&req, |b| {
                        parse_timevalue(b).map_err(|e| e.context(&format!("feed {}", f.id)))
                    })
                    .await?;
                at = at.min(t);
            }
        }
        let mut r = reading(&self.feeds, &values, self.invert_grid);
        r.measured_at = at;
        Ok(r)
    }
}

/// Build from `[ems.emoncms]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: EmoncmsConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    let feeds: Vec<Feed> = [
        (Quantity::Consumption, c.consumption_feed),
        (Quantity::Generation, c.generation_feed),
        (Quantity::Grid, c.grid_feed),
    ]
    .into_iter()
    .filter_map(|(quantity, id)| id.map(|id| Feed { quantity, id }))
    .collect();
    if feeds.is_empty() {
        return Err(BuildError::new(
            s,
            "set at least one of generation_feed, consumption_feed, grid_feed (feed ids, numbers)",
        ));
    }
    for (i, f) in feeds.iter().enumerate() {
        if let Some(g) = feeds[..i].iter().find(|g| g.id == f.id) {
            return Err(BuildError::new(
                s,
                format!(
                    "{} and {} are both feed {}; one feed measures one quantity",
                    quantity_name(g.quantity),
                    quantity_name(f.quantity),
                    f.id
                ),
            ));
        }
    }
    if c.invert_grid && c.grid_feed.is_none() {
        return Err(BuildError::new(
            s,
            "invert_grid is set but grid_feed is not",
        ));
    }
    if c.api_key.as_ref().is_some_and(|k| k.expose().is_empty()) {
        return Err(BuildError::new(
            s,
            "api_key must not be empty (leave it out for public feeds)",
        ));
    }
    Ok(Box::new(Emoncms {
        client: HttpClient::new(NAME, s, &c.http)?,
        base: c.url,
        key: c.api_key,
        feeds,
        invert_grid: c.invert_grid,
        check_time: c.check_time,
    }))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "EmonCMS / Open Energy Monitor feeds: generation, consumption, grid",
        example: include_str!("../example.toml"),
        build,
    }
}
