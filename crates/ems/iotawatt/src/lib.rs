#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num};

/// Registry name.
pub const NAME: &str = "iotawatt";
/// The status endpoint with outputs.
pub const STATUS: &str = "/status?outputs";

/// `[ems.iotawatt]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IotawattConfig {
    /// IoTaWatt base URL, e.g. `http://iotawatt.local`.
    pub url: String,
    /// Name of the output with PV power.
    pub generation_output: Option<String>,
    /// Name of the output with house consumption.
    pub consumption_output: Option<String>,
    /// Name of the output with grid power (+ import / − export unless `invert_grid`).
    pub grid_output: Option<String>,
    /// The grid output shows export as positive.
    #[serde(default)]
    pub invert_grid: bool,
    /// Name of an output in Volts (grid voltage).
    pub voltage_output: Option<String>,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

/// The output names to look up (a parsed config without the URL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// PV generation output.
    pub generation: Option<String>,
    /// Consumption output.
    pub consumption: Option<String>,
    /// Grid output.
    pub grid: Option<String>,
    /// Negate grid.
    pub invert_grid: bool,
    /// Voltage output.
    pub voltage: Option<String>,
}

/// Parse `GET /status?outputs` and pick the named outputs. A name that is not there is a
/// configuration error listing the outputs that are; a power output in other units is one too.
pub fn parse_status(body: &[u8], want: &Outputs) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let outputs = num::pointer(&v, "/outputs")?
        .as_array()
        .ok_or_else(|| ParseError::protocol("outputs is not a list"))?;
    let find = |name: &str, unit: &str| -> Result<f64, ParseError> {
        let o = outputs
            .iter()
            .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| {
                let names: Vec<&str> = outputs
                    .iter()
                    .filter_map(|o| o.get("name").and_then(Value::as_str))
                    .collect();
                ParseError::config(format!(
                    "no output named {name:?} (outputs: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })?;
        if let Some(u) = o.get("units").and_then(Value::as_str)
            && u != unit
        {
            return Err(ParseError::config(format!(
                "output {name:?} is in {u}, expected {unit}"
            )));
        }
        num::pointer_f64(o, "/value")?
            .ok_or_else(|| ParseError::transient(format!("output {name:?} has no value")))
    };
    let mut r = EnergyReading::default();
    if let Some(n) = &want.generation {
        r.generation_w = Some(find(n, "Watts")?);
    }
    if let Some(n) = &want.consumption {
        r.consumption_w = Some(find(n, "Watts")?);
    }
    if let Some(n) = &want.grid {
        let g = find(n, "Watts")?;
        r.grid_w = Some(if want.invert_grid { -g } else { g });
    }
    if let Some(n) = &want.voltage {
        r.phase_voltages = Some(vec![find(n, "Volts")?]);
    }
    Ok(r)
}

/// The rows of a `/query?select=[...]` answer, without and with `header=yes`:
/// `(labels, rows)`; labels are empty without a header. Query errors (`{"error": …}`) are errors.
pub fn parse_query(body: &[u8]) -> Result<(Vec<String>, Vec<Vec<Value>>), ParseError> {
    let v = num::json(body)?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(ParseError::config(format!("query refused: {e}")));
    }
    let (labels, data) = match &v {
        Value::Array(_) => (Vec::new(), &v),
        Value::Object(_) => (
            num::pointer(&v, "/labels")?
                .as_array()
                .ok_or_else(|| ParseError::protocol("labels is not a list"))?
                .iter()
                .map(|l| l.as_str().unwrap_or("").to_string())
                .collect(),
            num::pointer(&v, "/data")?,
        ),
        _ => {
            return Err(ParseError::protocol(
                "query answer is neither a list nor an object",
            ));
        }
    };
    let rows = data
        .as_array()
        .ok_or_else(|| ParseError::protocol("query data is not a list"))?
        .iter()
        .map(|r| {
            r.as_array()
                .cloned()
                .ok_or_else(|| ParseError::protocol("query row is not a list"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((labels, rows))
}

/// The single value of a `group=all` query for one series, e.g. `[[1111.2]]`.
pub fn parse_query_value(body: &[u8]) -> Result<f64, ParseError> {
    let (_, rows) = parse_query(body)?;
    let cell = rows
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| ParseError::protocol("query answer is empty"))?;
    num::value_f64(cell)?.ok_or_else(|| ParseError::transient("query value is null"))
}

/// Build from `[ems.iotawatt]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: IotawattConfig = cfg.parse()?;
    check_url(&cfg.section, "url", &c.url)?;
    let want = Outputs {
        generation: c.generation_output.clone(),
        consumption: c.consumption_output.clone(),
        grid: c.grid_output.clone(),
        invert_grid: c.invert_grid,
        voltage: c.voltage_output.clone(),
    };
    if want.generation.is_none() && want.consumption.is_none() && want.grid.is_none() {
        return Err(BuildError::new(
            &cfg.section,
            "no output configured: set at least one of generation_output, consumption_output, grid_output",
        ));
    }
    let client = HttpClient::new(NAME, &cfg.section, &c.http)?;
    Ok(Box::new(HttpSource::new(
        client,
        Request::get(join(&c.url, STATUS)),
        move |b| parse_status(b, &want),
    )))
}

inventory::submit! {
    EmsPlugin { name: NAME, summary: "IoTaWatt outputs by name (/status?outputs)",
        example: include_str!("../example.toml"), build }
}
