#![doc = include_str!("../README.md")]

use serde::Deserialize;
use serde_json::Value;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig};
use twc_plugin_kit::http::{HttpClient, HttpOptions, Request, check_url, join};
use twc_plugin_kit::{HttpSource, ParseError, num, timestamp};

/// The registry name: the section is `[ems.p1monitor]`, the bin's feature `ems-p1monitor`.
pub const NAME: &str = "p1monitor";
/// Most rows `samples` may average (P1 Monitor stores one row about every 10 s).
pub const MAX_SAMPLES: u32 = 30;

/// `[ems.p1monitor]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P1monitorConfig {
    /// Base URL of the P1 Monitor web server, e.g. `http://p1mon.local`.
    pub url: String,
    /// Rows (newest first) averaged into one reading; 1 = the newest row only.
    #[serde(default = "one")]
    pub samples: u32,
    /// Phases of the grid connection: 0 = detect from the meter's values, 1 or 3 = fixed.
    #[serde(default)]
    pub phases: u8,
    /// HTTP options.
    #[serde(default)]
    pub http: HttpOptions,
}

fn one() -> u32 {
    1
}

/// How to turn `/api/v1/phase` rows into a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseOptions {
    /// Rows to average (newest first).
    pub samples: usize,
    /// 0 = detect, else 1 or 3.
    pub phases: u8,
}

impl Default for PhaseOptions {
    fn default() -> Self {
        PhaseOptions {
            samples: 1,
            phases: 0,
        }
    }
}

/// One phase of one row.
#[derive(Debug, Clone, Copy, Default)]
struct Phase {
    import_w: f64,
    export_w: f64,
    volts: f64,
    amps: f64,
}

impl Phase {
    fn present(&self) -> bool {
        self.volts > 0.0 || self.amps > 0.0 || self.import_w > 0.0 || self.export_w > 0.0
    }
}

fn field(row: &Value, key: &str) -> Result<f64, ParseError> {
    let v = row
        .get(key)
        .ok_or_else(|| ParseError::protocol(format!("missing {key} (is this /api/v1/phase?)")))?;
    let x = num::value_f64(v)
        .map_err(|e| e.context(key))?
        .ok_or_else(|| ParseError::protocol(format!("{key} is null")))?;
    if x < 0.0 {
        return Err(ParseError::protocol(format!(
            "{key} is negative ({x}); P1 Monitor reports magnitudes"
        )));
    }
    Ok(x)
}

fn phases_of(row: &Value) -> Result<[Phase; 3], ParseError> {
    let mut out = [Phase::default(); 3];
    for (i, p) in out.iter_mut().enumerate() {
        let n = i + 1;
        *p = Phase {
            import_w: field(row, &format!("CONSUMPTION_L{n}_W"))?,
            export_w: field(row, &format!("PRODUCTION_L{n}_W"))?,
            volts: field(row, &format!("L{n}_V"))?,
            amps: field(row, &format!("L{n}_A"))?,
        };
    }
    Ok(out)
}

/// Parse `/api/v1/phase?json=object`: rows of per-phase power drawn from (`CONSUMPTION_Ln_W`)
/// and fed into (`PRODUCTION_Ln_W`) the grid, voltages `Ln_V` and unsigned currents `Ln_A`.
///
/// The P1 port sits at the grid connection, so the reading is the grid only: `grid_w` =
/// Σ (import − export) (+ import / − export), per-phase currents signed the same way (an exporting
/// phase has a negative current), voltages per phase. Generation and consumption are not measured
/// here and stay empty. The reading counts from the oldest row used (`TIMESTAMP_UTC`).
pub fn parse_phase(body: &[u8], opts: PhaseOptions) -> Result<EnergyReading, ParseError> {
    let v = num::json(body)?;
    let rows = v
        .as_array()
        .ok_or_else(|| ParseError::protocol("expected a JSON array of rows (json=object)"))?;
    if rows.is_empty() {
        return Err(ParseError::transient("P1 Monitor returned no rows yet"));
    }
    let mut dated: Vec<(Option<f64>, &Value)> = Vec::with_capacity(rows.len());
    for row in rows {
        if !row.is_object() {
            return Err(ParseError::protocol("a row is not a JSON object"));
        }
        let ts = match row.get("TIMESTAMP_UTC") {
            None | Some(Value::Null) => None,
            Some(t) => num::value_f64(t).map_err(|e| e.context("TIMESTAMP_UTC"))?,
        };
        dated.push((ts, row));
    }
    // Newest first, whatever order the server used.
    dated.sort_by(|a, b| b.0.unwrap_or(0.0).total_cmp(&a.0.unwrap_or(0.0)));
    let used = &dated[..opts.samples.clamp(1, dated.len())];

    let mut sum = [Phase::default(); 3];
    let mut oldest = None;
    for (ts, row) in used {
        for (s, p) in sum.iter_mut().zip(phases_of(row)?) {
            s.import_w += p.import_w;
            s.export_w += p.export_w;
            s.volts += p.volts;
            s.amps += p.amps;
        }
        if let Some(t) = ts {
            let at = timestamp::value_instant(&Value::from(*t))
                .map_err(|e| e.context("TIMESTAMP_UTC"))?;
            oldest = timestamp::oldest(oldest, at);
        }
    }
    let n = used.len() as f64;
    let mean = sum.map(|p| Phase {
        import_w: p.import_w / n,
        export_w: p.export_w / n,
        volts: p.volts / n,
        amps: p.amps / n,
    });

    let phases = match opts.phases {
        0 if mean[1].present() || mean[2].present() => 3,
        0 => 1,
        p => usize::from(p),
    };
    let grid: f64 = mean.iter().map(|p| p.import_w - p.export_w).sum();
    let currents = mean[..phases]
        .iter()
        .map(|p| {
            if p.export_w > p.import_w {
                -p.amps
            } else {
                p.amps
            }
        })
        .collect();
    let volts: Vec<f64> = mean[..phases].iter().map(|p| p.volts).collect();
    let mut r = EnergyReading {
        grid_w: Some(grid),
        phase_currents_a: Some(currents),
        // A meter that does not report voltage sends 0 V: no voltages then, not 0 V.
        phase_voltages: volts.iter().all(|v| *v > 0.0).then_some(volts),
        ..EnergyReading::default()
    };
    if let Some(t) = oldest {
        r.measured_at = r.measured_at.min(t);
    }
    Ok(r)
}

/// The request for `samples` rows.
pub fn phase_url(base: &str, samples: u32) -> String {
    format!(
        "{}?limit={samples}&json=object&round=on",
        join(base, "/api/v1/phase")
    )
}

/// Build from `[ems.p1monitor]`.
pub fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: P1monitorConfig = cfg.parse()?;
    let s = &cfg.section;
    check_url(s, "url", &c.url)?;
    if !(1..=MAX_SAMPLES).contains(&c.samples) {
        return Err(BuildError::new(
            s,
            format!(
                "samples must be between 1 and {MAX_SAMPLES}, got {}",
                c.samples
            ),
        ));
    }
    if !matches!(c.phases, 0 | 1 | 3) {
        return Err(BuildError::new(
            s,
            format!("phases must be 0 (detect), 1 or 3, got {}", c.phases),
        ));
    }
    let client = HttpClient::new(NAME, s, &c.http)?;
    let opts = PhaseOptions {
        samples: c.samples as usize,
        phases: c.phases,
    };
    Ok(Box::new(HttpSource::new(
        client,
        Request::get(phase_url(&c.url, c.samples)),
        move |b| parse_phase(b, opts),
    )))
}

inventory::submit! {
    EmsPlugin {
        name: NAME,
        summary: "P1 Monitor (ztatz.nl): grid power and per-phase currents from the smart meter",
        example: include_str!("../example.toml"),
        build,
    }
}
