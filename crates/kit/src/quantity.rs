//! One channel per quantity (generation, consumption, grid, battery), as the generic EMS sources
//! configure them: where the value comes from (a URL, an MQTT topic, a Home Assistant entity, an
//! openHAB item) and how to read it (JSON pointer, scale, sign, timestamp pointer).
//!
//! Two config layouts exist and both are kept, so config files keep working:
//! - a table per quantity, `grid = { url = "...", pointer = "/power", scale = 1000.0, invert =
//!   true, timestamp_pointer = "/ts" }` (`[ems.url]`, `[ems.mqtt]`): [`ChannelConfig`] is that
//!   table, and [`channels_from_tables`] checks the four;
//! - flat keys, `grid_entity = "sensor.grid"` with `invert_grid = true` (`[ems.hass]`,
//!   `[ems.openhab]`): [`channels_from_keys`] turns them into the same [`ChannelConfig`]s.
//!
//! The address key (`url`, `topic`, `entity`, `item`) and what a valid address looks like come
//! from an [`Address`] type. Every error names the key (`grid.pointer`, `battery_item`) and what
//! was expected.

use crate::{ParseError, ValueSpec, num, timestamp};
use serde::de::{Deserialize, Deserializer, Error as _};
use std::fmt;
use std::marker::PhantomData;
use tokio::time::Instant;
use twc_core::model::Quantity;
use twc_core::plugin::BuildError;

/// What addresses a channel: its config key and what a valid value looks like.
pub trait Address {
    /// The key in a channel table (`url`, `topic`) and the suffix of a flat key
    /// (`generation_entity`, `grid_item`).
    const KEY: &'static str;
    /// `Err(expected)` when `address` is not valid, e.g. `Err("an exact topic without
    /// wildcards")`; the error then reads `grid.topic must be an exact topic without wildcards,
    /// got "a/#"`.
    fn check(address: &str) -> Result<(), &'static str>;
}

/// An `http://` or `https://` URL with a host (`[ems.url]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Url;

impl Address for Url {
    const KEY: &'static str = "url";
    fn check(address: &str) -> Result<(), &'static str> {
        if crate::http::is_http_url(address) {
            Ok(())
        } else {
            Err("an http:// or https:// URL with a host")
        }
    }
}

/// An exact MQTT topic (`[ems.mqtt]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic;

impl Address for Topic {
    const KEY: &'static str = "topic";
    fn check(address: &str) -> Result<(), &'static str> {
        if address.is_empty() || address.contains(['+', '#']) {
            Err("a non-empty exact topic without wildcards (+, #)")
        } else {
            Ok(())
        }
    }
}

/// The four quantities with their config keys, in reading order.
pub const QUANTITIES: [(Quantity, &str); 4] = [
    (Quantity::Generation, "generation"),
    (Quantity::Consumption, "consumption"),
    (Quantity::Grid, "grid"),
    (Quantity::Battery, "battery"),
];

/// Where one quantity comes from and how to read it. Deserializes from the table layout
/// (`{ <A::KEY> = "...", pointer, scale, invert, timestamp_pointer }`, unknown keys refused).
pub struct ChannelConfig<A> {
    /// The address (URL, topic, entity id, item name), under the key [`Address::KEY`].
    pub address: String,
    /// JSON pointer (e.g. `/power/now`); without it the body is a plain number, unit suffix
    /// allowed.
    pub pointer: Option<String>,
    /// Multiply by this (e.g. 1000 when the value is kW without a unit). Default 1.
    pub scale: f64,
    /// Negate, for a meter whose sign is opposite to ours (grid + import, battery + discharge).
    pub invert: bool,
    /// JSON pointer to when the value was measured (Unix seconds or milliseconds, or RFC 3339
    /// text), e.g. `/time`. Without it the value counts from its arrival.
    pub timestamp_pointer: Option<String>,
    _address: PhantomData<fn() -> A>,
}

impl<A> ChannelConfig<A> {
    /// A channel reading a plain number from `address`: no pointer, scale 1, not inverted.
    pub fn new(address: impl Into<String>) -> Self {
        ChannelConfig {
            address: address.into(),
            pointer: None,
            scale: 1.0,
            invert: false,
            timestamp_pointer: None,
            _address: PhantomData,
        }
    }

    /// The value part: pointer, scale, sign.
    pub fn spec(&self) -> ValueSpec {
        ValueSpec {
            pointer: self.pointer.clone(),
            scale: self.scale,
            invert: self.invert,
        }
    }

    /// The value in watts, in our sign convention.
    pub fn value(&self, body: &[u8]) -> Result<f64, ParseError> {
        self.spec().extract(body)
    }

    /// When the body says the value was measured, if the channel has a `timestamp_pointer`.
    pub fn measured_at(&self, body: &[u8]) -> Result<Option<Instant>, ParseError> {
        match &self.timestamp_pointer {
            Some(p) => timestamp::pointer_instant(&num::json(body)?, p),
            None => Ok(None),
        }
    }

    /// The value and, with a `timestamp_pointer`, when it was measured.
    pub fn read(&self, body: &[u8]) -> Result<(f64, Option<Instant>), ParseError> {
        Ok((self.value(body)?, self.measured_at(body)?))
    }
}

impl<A: Address> ChannelConfig<A> {
    /// Check the table under `key` (e.g. `grid`): the address, the pointers start with `/`, the
    /// scale is a finite non-zero number. Errors name `key.<field>`.
    pub fn validate(&self, section: &str, key: &str) -> Result<(), BuildError> {
        let bad = |field: &str, expected: &str, got: String| {
            Err(BuildError::new(
                section,
                format!("{key}.{field} must be {expected}, got {got}"),
            ))
        };
        if let Err(expected) = A::check(&self.address) {
            return bad(A::KEY, expected, format!("{:?}", self.address));
        }
        if let Some(p) = &self.pointer
            && !(p.is_empty() || p.starts_with('/'))
        {
            return bad(
                "pointer",
                "a JSON pointer starting with '/'",
                format!("{p:?}"),
            );
        }
        if !self.scale.is_finite() || self.scale == 0.0 {
            return bad("scale", "a non-zero number", self.scale.to_string());
        }
        if let Some(p) = &self.timestamp_pointer
            && !p.starts_with('/')
        {
            return bad(
                "timestamp_pointer",
                "a JSON pointer starting with '/'",
                format!("{p:?}"),
            );
        }
        Ok(())
    }
}

/// Check the tables of the four quantities (in [`QUANTITIES`] order: generation, consumption,
/// grid, battery) and pair the configured ones with their quantity. At least one must be set.
pub fn channels_from_tables<A: Address>(
    section: &str,
    tables: [&Option<ChannelConfig<A>>; 4],
) -> Result<Vec<(Quantity, ChannelConfig<A>)>, BuildError> {
    let mut out = Vec::new();
    for ((q, key), ch) in QUANTITIES.into_iter().zip(tables) {
        let Some(ch) = ch else { continue };
        ch.validate(section, key)?;
        out.push((q, ch.clone()));
    }
    if out.is_empty() {
        return Err(BuildError::new(
            section,
            format!(
                "no quantity configured: set at least one of generation, consumption, grid, battery = {{ {} = \"...\" }}",
                A::KEY
            ),
        ));
    }
    Ok(out)
}

/// The flat layout: `<quantity>_<A::KEY>` addresses (in [`QUANTITIES`] order) and `invert_grid`,
/// `invert_battery`, as channels reading plain values. At least one must be set; an invalid
/// address is named by its key (`grid_item`).
pub fn channels_from_keys<A: Address>(
    section: &str,
    addresses: [&Option<String>; 4],
    invert_grid: bool,
    invert_battery: bool,
) -> Result<Vec<(Quantity, ChannelConfig<A>)>, BuildError> {
    let mut out = Vec::new();
    for ((q, key), a) in QUANTITIES.into_iter().zip(addresses) {
        let Some(a) = a else { continue };
        if let Err(expected) = A::check(a) {
            return Err(BuildError::new(
                section,
                format!("{key}_{} must be {expected}, got {a:?}", A::KEY),
            ));
        }
        let mut ch = ChannelConfig::new(a.clone());
        ch.invert = match q {
            Quantity::Grid => invert_grid,
            Quantity::Battery => invert_battery,
            _ => false,
        };
        out.push((q, ch));
    }
    if out.is_empty() {
        let keys: Vec<String> = QUANTITIES
            .iter()
            .map(|(_, k)| format!("{k}_{}", A::KEY))
            .collect();
        return Err(BuildError::new(
            section,
            format!(
                "no {} configured: set at least one of {}",
                A::KEY,
                keys.join(", ")
            ),
        ));
    }
    Ok(out)
}

// Written by hand rather than derived: derives would bound `A` by the same trait, and `A` is
// only a marker.
impl<A> Clone for ChannelConfig<A> {
    fn clone(&self) -> Self {
        ChannelConfig {
            address: self.address.clone(),
            pointer: self.pointer.clone(),
            scale: self.scale,
            invert: self.invert,
            timestamp_pointer: self.timestamp_pointer.clone(),
            _address: PhantomData,
        }
    }
}

impl<A> PartialEq for ChannelConfig<A> {
    fn eq(&self, o: &Self) -> bool {
        self.address == o.address
            && self.pointer == o.pointer
            && self.scale == o.scale
            && self.invert == o.invert
            && self.timestamp_pointer == o.timestamp_pointer
    }
}

impl<A: Address> fmt::Debug for ChannelConfig<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field(A::KEY, &self.address)
            .field("pointer", &self.pointer)
            .field("scale", &self.scale)
            .field("invert", &self.invert)
            .field("timestamp_pointer", &self.timestamp_pointer)
            .finish()
    }
}

impl<'de, A: Address> Deserialize<'de> for ChannelConfig<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut ch = ChannelConfig::new(String::new());
        let mut address = None;
        for (k, v) in table {
            let field = |e: serde_json::Error| D::Error::custom(format!("{k}: {e}"));
            match k.as_str() {
                "pointer" => ch.pointer = serde_json::from_value(v).map_err(field)?,
                "scale" => ch.scale = serde_json::from_value(v).map_err(field)?,
                "invert" => ch.invert = serde_json::from_value(v).map_err(field)?,
                "timestamp_pointer" => {
                    ch.timestamp_pointer = serde_json::from_value(v).map_err(field)?;
                }
                key if key == A::KEY => address = Some(serde_json::from_value(v).map_err(field)?),
                _ => {
                    return Err(D::Error::custom(format!(
                        "unknown field `{k}`, expected one of `{}`, `pointer`, `scale`, `invert`, `timestamp_pointer`",
                        A::KEY
                    )));
                }
            }
        }
        ch.address = address.ok_or_else(|| D::Error::missing_field(A::KEY))?;
        Ok(ch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de<A: Address>(json: serde_json::Value) -> Result<ChannelConfig<A>, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn tables_deserialize_with_their_address_key() {
        let ch: ChannelConfig<Topic> = de(serde_json::json!({
            "topic": "a/b", "pointer": "/p", "scale": 1000, "invert": true, "timestamp_pointer": "/ts"
        }))
        .unwrap();
        assert_eq!(ch.address, "a/b");
        assert_eq!(ch.pointer.as_deref(), Some("/p"));
        assert_eq!(ch.scale, 1000.0);
        assert!(ch.invert);
        assert_eq!(ch.timestamp_pointer.as_deref(), Some("/ts"));
        let ch: ChannelConfig<Url> = de(serde_json::json!({ "url": "http://h" })).unwrap();
        assert_eq!(ch, ChannelConfig::new("http://h"));

        let e = de::<Url>(serde_json::json!({ "topic": "a" })).unwrap_err();
        assert!(
            e.contains("unknown field `topic`") && e.contains("`url`"),
            "{e}"
        );
        let e = de::<Url>(serde_json::json!({ "pointer": "/a" })).unwrap_err();
        assert!(e.contains("missing field `url`"), "{e}");
        let e = de::<Url>(serde_json::json!({ "url": "http://h", "scale": "x" })).unwrap_err();
        assert!(e.starts_with("scale:"), "{e}");
    }

    #[test]
    fn validation_names_the_key_and_what_was_expected() {
        let check = |ch: ChannelConfig<Url>| ch.validate("ems.url", "grid").unwrap_err().message;
        let e = check(ChannelConfig::new("h"));
        assert!(e.contains("grid.url must be an http://"), "{e}");
        let mut ch = ChannelConfig::new("http://h");
        ch.pointer = Some("power".into());
        assert!(check(ch.clone()).contains("grid.pointer must be a JSON pointer"));
        ch.pointer = None;
        ch.scale = 0.0;
        assert!(check(ch.clone()).contains("grid.scale must be a non-zero number, got 0"));
        ch.scale = 1.0;
        ch.timestamp_pointer = Some("ts".into());
        assert!(check(ch.clone()).contains("grid.timestamp_pointer"));
        ch.timestamp_pointer = Some("/ts".into());
        ch.validate("ems.url", "grid").unwrap();
    }

    #[test]
    fn tables_and_flat_keys_pair_quantities_and_refuse_none() {
        let g = Some(ChannelConfig::<Topic>::new("g"));
        let out = channels_from_tables("ems.mqtt", [&None, &None, &g, &None]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, Quantity::Grid);
        let e = channels_from_tables::<Topic>("ems.mqtt", [&None, &None, &None, &None])
            .unwrap_err()
            .message;
        assert!(e.contains("generation") && e.contains("topic = "), "{e}");

        let (g, b) = (Some("a".to_string()), Some("b".to_string()));
        let out = channels_from_keys::<Topic>("s", [&g, &None, &g, &b], true, false).unwrap();
        let inverted: Vec<_> = out.iter().map(|(q, c)| (*q, c.invert)).collect();
        assert_eq!(
            inverted,
            [
                (Quantity::Generation, false),
                (Quantity::Grid, true),
                (Quantity::Battery, false)
            ]
        );
        let bad = Some("a/#".to_string());
        let e = channels_from_keys::<Topic>("s", [&None, &None, &bad, &None], false, false)
            .unwrap_err()
            .message;
        assert!(
            e.contains("grid_topic must be") && e.contains("\"a/#\""),
            "{e}"
        );
        let e = channels_from_keys::<Topic>("s", [&None, &None, &None, &None], false, false)
            .unwrap_err()
            .message;
        assert!(e.contains("generation_topic, consumption_topic"), "{e}");
    }

    #[test]
    fn reads_value_and_timestamp() {
        let mut ch = ChannelConfig::<Url>::new("http://h");
        ch.pointer = Some("/p".into());
        ch.invert = true;
        ch.timestamp_pointer = Some("/ts".into());
        let (v, at) = ch.read(br#"{"p": 2, "ts": 1700000000}"#).unwrap();
        assert_eq!(v, -2.0);
        assert!(at.is_some());
        assert_eq!(
            ChannelConfig::<Url>::new("u").read(b"5 W").unwrap(),
            (5.0, None)
        );
    }
}
