#![doc = include_str!("../README.md")]

use chrono::{DateTime, Local, Timelike, Utc};
use serde::Deserialize;
use twc_core::model::EnergyReading;
use twc_core::plugin::{BuildError, EmsPlugin, EmsSource, PluginConfig, PluginError};

/// `[ems.sim]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// PV peak at solar noon on a clear day, W.
    pub peak_w: f64,
    /// House base load, W (without the chargers).
    pub base_load_w: f64,
    /// 0 = clear sky … 1 = mostly overcast.
    pub cloudiness: f64,
    /// Seed of the cloud and load pattern.
    pub seed: u64,
    /// Local hour PV starts.
    pub sunrise_hour: f64,
    /// Local hour PV ends.
    pub sunset_hour: f64,
    /// Simulated seconds per real second (1 = real time).
    pub time_scale: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            peak_w: 6000.0,
            base_load_w: 400.0,
            cloudiness: 0.3,
            seed: 1,
            sunrise_hour: 7.0,
            sunset_hour: 19.0,
            time_scale: 1.0,
        }
    }
}

impl SimConfig {
    fn validate(&self, section: &str) -> Result<(), BuildError> {
        let bad = |k: &str, v: f64, want: &str| {
            Err(BuildError::new(
                section,
                format!("{k} = {v}: expected {want}"),
            ))
        };
        if !(self.peak_w >= 0.0 && self.peak_w <= 1_000_000.0) {
            return bad("peak_w", self.peak_w, "watts between 0 and 1000000");
        }
        if !(self.base_load_w >= 0.0 && self.base_load_w <= 1_000_000.0) {
            return bad(
                "base_load_w",
                self.base_load_w,
                "watts between 0 and 1000000",
            );
        }
        if !(0.0..=1.0).contains(&self.cloudiness) {
            return bad(
                "cloudiness",
                self.cloudiness,
                "a number from 0 (clear) to 1 (overcast)",
            );
        }
        if !(0.0..24.0).contains(&self.sunrise_hour)
            || !(0.0..=24.0).contains(&self.sunset_hour)
            || self.sunset_hour <= self.sunrise_hour
        {
            return bad(
                "sunset_hour",
                self.sunset_hour,
                "an hour after sunrise_hour, both within 0..24",
            );
        }
        if !(self.time_scale > 0.0 && self.time_scale <= 100_000.0) {
            return bad("time_scale", self.time_scale, "a number > 0");
        }
        Ok(())
    }

    /// PV and house load (W) at a local time of day in hours (0..24).
    pub fn at(&self, hour: f64) -> (f64, f64) {
        let pv = if hour <= self.sunrise_hour || hour >= self.sunset_hour {
            0.0
        } else {
            let x = (hour - self.sunrise_hour) / (self.sunset_hour - self.sunrise_hour);
            let clear = self.peak_w * (std::f64::consts::PI * x).sin();
            clear * (1.0 - self.cloudiness * self.cloud(hour))
        };
        (pv, self.base_load_w + self.spike(hour))
    }

    /// 0 (no cloud) … 1 (thick cloud): a few overlapping passing clouds, repeatable per seed.
    fn cloud(&self, hour: f64) -> f64 {
        let s = self.seed as f64;
        let a = ((hour * 5.3 + s * 1.7).sin() * 0.5 + 0.5).powi(3);
        let b = ((hour * 13.1 + s * 0.9).sin() * 0.5 + 0.5).powi(4);
        let c = ((hour * 31.7 + s * 2.3).sin() * 0.5 + 0.5).powi(6);
        (0.5 * a + 0.3 * b + 0.2 * c).clamp(0.0, 1.0)
    }

    /// Appliances: a kettle every morning, an oven at dinner, a fridge cycling.
    fn spike(&self, hour: f64) -> f64 {
        let mut w = if (hour * 2.0 + self.seed as f64).sin() > 0.6 {
            120.0
        } else {
            0.0
        };
        if (7.5..7.6).contains(&hour) {
            w += 2000.0;
        }
        if (18.0..18.75).contains(&hour) {
            w += 2500.0;
        }
        w
    }
}

/// The simulated meter.
pub struct SimMeter {
    cfg: SimConfig,
    start_wall: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl SimMeter {
    /// A meter whose simulated clock starts now.
    pub fn new(cfg: SimConfig) -> Self {
        SimMeter {
            cfg,
            start_wall: Utc::now(),
            start: tokio::time::Instant::now(),
        }
    }

    fn local_hour(&self) -> f64 {
        let elapsed = self.start.elapsed().as_secs_f64() * self.cfg.time_scale;
        let t = self.start_wall + chrono::Duration::milliseconds((elapsed * 1000.0) as i64);
        let local = t.with_timezone(&Local);
        local.hour() as f64 + local.minute() as f64 / 60.0 + local.second() as f64 / 3600.0
    }
}

#[async_trait::async_trait]
impl EmsSource for SimMeter {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let (pv, load) = self.cfg.at(self.local_hour());
        Ok(EnergyReading {
            generation_w: Some(pv.round()),
            consumption_w: Some(load.round()),
            ..EnergyReading::now()
        })
    }
}

fn build(cfg: &PluginConfig) -> Result<Box<dyn EmsSource>, BuildError> {
    let c: SimConfig = cfg.parse()?;
    c.validate(&cfg.section)?;
    Ok(Box::new(SimMeter::new(c)))
}

inventory::submit! {
    EmsPlugin {
        name: "sim",
        summary: "simulated meter: PV day curve with passing clouds and a house load (for demos and tests)",
        example: include_str!("../example.toml"),
        build,
    }
}
