//! Combining the readings of several energy sources without double counting.
//!
//! TWCManager adds up every module, so two modules that both report generation count it twice.
//! Here the config says which source provides which quantity (`[site.sources]`):
//!
//! ```toml
//! [site.sources]
//! generation = "fronius"
//! grid = "fronius"
//! consumption = "hass"
//! battery = "powerwall"
//! # two PV systems on two inverters: add them up, explicitly
//! # generation = { sum = ["fronius", "solaredge"] }
//! ```
//!
//! Rules, all in [`combine`] (pure, no clock):
//! - An assigned quantity comes only from its source(s); if a source is stale or did not measure
//!   it, the quantity is missing (never 0, never taken from another source).
//! - A `sum` needs every member fresh and measuring; a partial sum is missing.
//! - An unassigned quantity is taken from the one fresh source that measures it; when two or more
//!   measure it, it is missing and a conflict is reported (set `[site.sources]` to choose).
//! - Grid power is only ever a measured value here; reconstructing it from consumption and
//!   generation is the policy's fallback ([`EnergyReading::grid_or_derived_w`]).
//! - Per-phase voltages and currents follow the grid source; SOC follows the battery source.
//! - The combined reading is as old as its oldest contributing reading.
//! - The combined reading is an estimate when any contributing reading is one.

use crate::model::{EnergyReading, Quantity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where one quantity comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pick {
    /// Exactly one source: `generation = "fronius"`.
    One(String),
    /// The sum of several sources: `generation = { sum = ["fronius", "solaredge"] }`.
    Sum {
        /// Source names to add up.
        sum: Vec<String>,
    },
    /// Several names without `sum`: always a config error (kept so the error can say so).
    Many(Vec<String>),
}

impl Pick {
    fn names(&self) -> &[String] {
        match self {
            Pick::One(n) => std::slice::from_ref(n),
            Pick::Sum { sum } | Pick::Many(sum) => sum,
        }
    }
}

/// `[site.sources]`: which source provides which quantity. Every key optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// PV generation.
    pub generation: Option<Pick>,
    /// House consumption.
    pub consumption: Option<Pick>,
    /// Grid import/export (used directly for the grid limit).
    pub grid: Option<Pick>,
    /// Home battery power and state of charge.
    pub battery: Option<Pick>,
}

impl SourcesConfig {
    /// The pick for `q`, if configured.
    pub fn pick(&self, q: Quantity) -> Option<&Pick> {
        match q {
            Quantity::Generation => self.generation.as_ref(),
            Quantity::Consumption => self.consumption.as_ref(),
            Quantity::Grid => self.grid.as_ref(),
            Quantity::Battery => self.battery.as_ref(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Check against the names of the enabled sources; returns every problem at once, each
    /// naming the key (`site.sources.generation`).
    pub fn validate(&self, enabled: &[&str]) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        for q in QUANTITIES {
            let Some(p) = self.pick(q) else { continue };
            let key = format!("site.sources.{}", name(q));
            match p {
                Pick::Many(v) if v.len() == 1 => {}
                Pick::Many(v) => errs.push(format!(
                    "{key}: two or more sources ({}) for one quantity would be counted twice; \
                     pick one, or write {{ sum = [...] }} if they measure different things that add up",
                    v.join(", ")
                )),
                Pick::Sum { sum } if sum.is_empty() => {
                    errs.push(format!("{key}: sum needs at least one source"))
                }
                _ => {}
            }
            let names = p.names();
            for (i, n) in names.iter().enumerate() {
                if !enabled.contains(&n.as_str()) {
                    let mut known: Vec<&str> = enabled.to_vec();
                    known.sort_unstable();
                    errs.push(format!(
                        "{key}: {n:?} is not an enabled energy source (enabled: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
                if names[..i].contains(n) {
                    errs.push(format!("{key}: {n:?} is listed twice"));
                }
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

const QUANTITIES: [Quantity; 4] = [
    Quantity::Generation,
    Quantity::Consumption,
    Quantity::Grid,
    Quantity::Battery,
];

fn name(q: Quantity) -> &'static str {
    match q {
        Quantity::Generation => "generation",
        Quantity::Consumption => "consumption",
        Quantity::Grid => "grid",
        Quantity::Battery => "battery",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

fn value(r: &EnergyReading, q: Quantity) -> Option<f64> {
    match q {
        Quantity::Generation => r.generation_w,
        Quantity::Consumption => r.consumption_w,
        Quantity::Grid => r.grid_w,
        Quantity::Battery => r.battery_w,
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The result of [`combine`].
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    /// The combined reading, `None` when no quantity could be filled.
    pub reading: Option<EnergyReading>,
    /// Which sources each filled quantity came from.
    pub providers: BTreeMap<Quantity, Vec<String>>,
    /// Problems worth a warning (once per change): ambiguous unassigned quantities, assigned
    /// sources that are stale or did not measure their quantity.
    pub problems: Vec<String>,
}

/// Combine the **fresh** readings (the caller drops stale ones) by the rules in the module docs.
/// `fresh` is (source name, reading); order does not matter.
pub fn combine(cfg: &SourcesConfig, fresh: &[(&str, &EnergyReading)]) -> Combined {
    let mut providers = BTreeMap::new();
    let (reading, problems) = combine_into(cfg, fresh, Some(&mut providers));
    Combined {
        reading,
        providers,
        problems,
    }
}

/// [`combine`] without the providers (the engine, several times a second, needs only the
/// reading and the problems): the same reading and problems.
pub(crate) fn combine_reading(
    cfg: &SourcesConfig,
    fresh: &[(&str, &EnergyReading)],
) -> (Option<EnergyReading>, Vec<String>) {
    combine_into(cfg, fresh, None)
}

/// [`combine`], filling `providers` when given.
fn combine_into(
    cfg: &SourcesConfig,
    fresh: &[(&str, &EnergyReading)],
    mut providers: Option<&mut BTreeMap<Quantity, Vec<String>>>,
) -> (Option<EnergyReading>, Vec<String>) {
    let mut out = EnergyReading::default();
    let mut problems = Vec::new();
    let mut oldest: Option<tokio::time::Instant> = None;
    let find = |n: &str| fresh.iter().find(|(s, _)| *s == n).map(|(_, r)| *r);
    // One buffer for every quantity's sources, cleared for each.
    let mut from: Vec<(&str, &EnergyReading)> = Vec::new();

    for q in QUANTITIES {
        from.clear();
        match cfg.pick(q) {
            Some(p) => {
                let names = p.names();
                let got = &mut from;
                for n in names {
                    match find(n) {
                        Some(r) if value(r, q).is_some() => got.push((n.as_str(), r)),
                        Some(_) => {
                            problems.push(format!("{}: source {n:?} did not measure it", name(q)))
                        }
                        None => {
                            problems.push(format!("{}: source {n:?} has no fresh reading", name(q)))
                        }
                    }
                }
                if got.len() != names.len() {
                    continue;
                }
            }
            None => {
                let v = &mut from;
                v.extend(
                    fresh
                        .iter()
                        .filter(|(_, r)| value(r, q).is_some())
                        .map(|(n, r)| (*n, *r)),
                );
                if v.len() > 1 {
                    let mut names: Vec<&str> = v.iter().map(|(n, _)| *n).collect();
                    names.sort_unstable();
                    problems.push(format!(
                        "{}: measured by {}; set site.sources.{} to pick one (or a sum)",
                        name(q),
                        names.join(" and "),
                        name(q)
                    ));
                    continue;
                }
            }
        }
        if from.is_empty() {
            continue;
        }
        let total: f64 = from.iter().filter_map(|(_, r)| value(r, q)).sum();
        for (_, r) in &from {
            oldest = Some(oldest.map_or(r.measured_at, |o| o.min(r.measured_at)));
            out.estimated |= r.estimated;
        }
        match q {
            Quantity::Generation => out.generation_w = Some(total),
            Quantity::Consumption => out.consumption_w = Some(total),
            Quantity::Grid => {
                out.grid_w = Some(total);
                if let [(_, r)] = from.as_slice() {
                    out.phase_currents_a = r.phase_currents_a.clone();
                    out.phase_voltages = r.phase_voltages.clone();
                }
            }
            Quantity::Battery => {
                out.battery_w = Some(total);
                if let [(_, r)] = from.as_slice() {
                    out.battery_soc_pct = r.battery_soc_pct;
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
        if let Some(p) = providers.as_deref_mut() {
            p.insert(q, from.iter().map(|(n, _)| n.to_string()).collect());
        }
    }
    if out.phase_voltages.is_none() {
        // Voltage is the same wherever it is measured: take the first source (by name) with it.
        let mut with_v: Vec<&(&str, &EnergyReading)> = fresh
            .iter()
            .filter(|(_, r)| r.phase_voltages.is_some())
            .collect();
        with_v.sort_by_key(|(n, _)| *n);
        if let Some((_, r)) = with_v.first() {
            out.phase_voltages = r.phase_voltages.clone();
        }
    }
    // Islanded wins: one fresh source saying the grid is down is enough.
    out.grid_connected = fresh
        .iter()
        .filter_map(|(_, r)| r.grid_connected)
        .reduce(|a, b| a && b);
    let reading = oldest.map(|t| {
        out.measured_at = t;
        out
    });
    (reading, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    fn r(g: Option<f64>, c: Option<f64>, grid: Option<f64>) -> EnergyReading {
        EnergyReading {
            generation_w: g,
            consumption_w: c,
            grid_w: grid,
            ..EnergyReading::default()
        }
    }

    fn cfg(toml_text: &str) -> SourcesConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn one_islanded_source_marks_the_site_off_grid() {
        let pw = EnergyReading {
            grid_connected: Some(false),
            ..r(None, None, Some(0.0))
        };
        let inv = r(Some(3000.0), None, None);
        let c = combine(
            &SourcesConfig::default(),
            &[("powerwall", &pw), ("fronius", &inv)],
        );
        assert_eq!(c.reading.unwrap().grid_connected, Some(false));
        let c = combine(&SourcesConfig::default(), &[("fronius", &inv)]);
        assert_eq!(
            c.reading.unwrap().grid_connected,
            None,
            "unknown stays unknown"
        );
    }

    #[test]
    fn an_estimate_stays_an_estimate_when_combined() {
        let forecast = EnergyReading {
            estimated: true,
            ..r(Some(2000.0), None, None)
        };
        let meter = r(None, Some(500.0), Some(-100.0));
        let c = combine(
            &SourcesConfig::default(),
            &[("openweathermap", &forecast), ("p1monitor", &meter)],
        );
        assert!(
            c.reading.unwrap().estimated,
            "forecast generation is marked"
        );
        let c = combine(&SourcesConfig::default(), &[("p1monitor", &meter)]);
        assert!(!c.reading.unwrap().estimated, "measured values are not");
    }

    #[test]
    fn single_source_passes_through() {
        let a = r(Some(1111.0), Some(2814.74), Some(1703.74));
        let c = combine(&SourcesConfig::default(), &[("fronius", &a)]);
        let x = c.reading.unwrap();
        assert_eq!(x.generation_w, Some(1111.0));
        assert_eq!(x.grid_w, Some(1703.74));
        assert!(c.problems.is_empty());
    }

    #[test]
    fn assignment_avoids_double_counting() {
        let fronius = r(Some(1111.0), Some(2814.74), Some(1703.74));
        let hass = r(Some(1100.0), Some(3000.0), None);
        let cfg = cfg(r#"generation = "fronius"
grid = "fronius"
consumption = "hass""#);
        let c = combine(&cfg, &[("hass", &hass), ("fronius", &fronius)]);
        let x = c.reading.unwrap();
        assert_eq!(x.generation_w, Some(1111.0));
        assert_eq!(x.consumption_w, Some(3000.0));
        assert_eq!(x.grid_w, Some(1703.74));
        assert_eq!(
            c.providers[&Quantity::Consumption],
            vec!["hass".to_string()]
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    #[test]
    fn unassigned_quantity_from_two_sources_is_missing_not_doubled() {
        let a = r(Some(1000.0), None, None);
        let b = r(Some(500.0), Some(300.0), None);
        let c = combine(&SourcesConfig::default(), &[("a", &a), ("b", &b)]);
        let x = c.reading.unwrap();
        assert_eq!(x.generation_w, None);
        assert_eq!(x.consumption_w, Some(300.0));
        assert_eq!(c.problems.len(), 1);
        assert!(
            c.problems[0].contains("site.sources.generation"),
            "{:?}",
            c.problems
        );
    }

    #[test]
    fn sum_adds_when_asked_and_needs_every_member() {
        let a = r(Some(1000.0), None, None);
        let b = r(Some(500.0), None, None);
        let cfg = cfg(r#"generation = { sum = ["a", "b"] }"#);
        let c = combine(&cfg, &[("a", &a), ("b", &b)]);
        assert_eq!(c.reading.unwrap().generation_w, Some(1500.0));
        let c = combine(&cfg, &[("a", &a)]);
        assert!(c.reading.is_none());
        assert!(
            c.problems[0].contains("\"b\" has no fresh reading"),
            "{:?}",
            c.problems
        );
    }

    #[test]
    fn stale_assigned_source_is_not_replaced_by_another() {
        let hass = r(Some(900.0), None, Some(50.0));
        let cfg = cfg(r#"grid = "fronius""#);
        let c = combine(&cfg, &[("hass", &hass)]);
        let x = c.reading.unwrap();
        assert_eq!(x.grid_w, None, "grid must not come from hass");
        assert_eq!(x.generation_w, Some(900.0));
    }

    #[test]
    fn oldest_contribution_dates_the_result_and_phases_follow_grid() {
        let now = Instant::now();
        let mut a = r(Some(1.0), None, None);
        a.measured_at = now;
        a.phase_voltages = Some(vec![230.0]);
        let mut b = r(None, None, Some(2.0));
        b.measured_at = now - Duration::from_secs(7);
        b.phase_voltages = Some(vec![231.0, 232.0, 233.0]);
        b.phase_currents_a = Some(vec![1.0, 2.0, 3.0]);
        let c = combine(&SourcesConfig::default(), &[("a", &a), ("b", &b)]);
        let x = c.reading.unwrap();
        assert_eq!(x.measured_at, b.measured_at);
        assert_eq!(x.phase_voltages, Some(vec![231.0, 232.0, 233.0]));
        assert_eq!(x.phase_currents_a, Some(vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn battery_and_soc_follow_the_battery_source() {
        let mut pw = r(Some(6099.03), Some(734.15), Some(-5347.46));
        pw.battery_w = Some(-10.0);
        pw.battery_soc_pct = Some(39.4);
        let c = combine(&cfg(r#"battery = "powerwall""#), &[("powerwall", &pw)]);
        let x = c.reading.unwrap();
        assert_eq!(x.battery_w, Some(-10.0));
        assert_eq!(x.battery_soc_pct, Some(39.4));
    }

    #[test]
    fn nothing_fresh_is_nothing() {
        let c = combine(&SourcesConfig::default(), &[]);
        assert!(c.reading.is_none());
    }

    #[test]
    fn validation_names_keys_and_rejects_double_counting() {
        let cfg = cfg(r#"generation = ["fronius", "hass"]
grid = "fronius"
consumption = "nope"
battery = { sum = [] }"#);
        let errs = cfg.validate(&["fronius", "hass"]).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("site.sources.generation") && errs[0].contains("sum"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("\"nope\" is not an enabled")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("sum needs at least one")),
            "{errs:?}"
        );
        let ok = super::tests::cfg(r#"generation = { sum = ["fronius", "hass"] }"#);
        assert!(ok.validate(&["fronius", "hass"]).is_ok());
        let dup = super::tests::cfg(r#"generation = { sum = ["fronius", "fronius"] }"#);
        assert!(dup.validate(&["fronius"]).is_err());
        let bad: Result<SourcesConfig, _> = toml::from_str("solar = \"x\"");
        assert!(bad.is_err());
    }
}
