//! Numbers the way vendors really send them: JSON numbers, numbers as strings, `null`, and unit
//! suffixes such as `"1.2 kW"` or `"350 W"`.

use crate::ParseError;
use serde_json::Value;

/// Parse a plain decimal number (surrounding whitespace allowed). Rejects NaN and infinities, so
/// a garbage payload can never become a reading.
pub fn parse_f64(text: &str) -> Result<f64, ParseError> {
    let t = text.trim();
    let v: f64 = t
        .parse()
        .map_err(|_| ParseError::protocol(format!("not a number: {:?}", shorten(t))))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ParseError::protocol(format!(
            "not a finite number: {:?}",
            shorten(t)
        )))
    }
}

/// Parse a power with an optional unit suffix and return watts: `"350"`, `"350 W"`, `"1.2 kW"`,
/// `"1.2kW"`, `"0.5 MW"`. An unknown unit is an error (a reading in kWh or A must not pass as W).
pub fn parse_power_w(text: &str) -> Result<f64, ParseError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(t.len());
    // "1e3" keeps its exponent, but a lone trailing unit starting with e/E is not a concern for power.
    let (num, unit) = t.split_at(split);
    let v = parse_f64(num)
        .map_err(|_| ParseError::protocol(format!("not a power: {:?}", shorten(t))))?;
    Ok(v * unit_factor(unit.trim()).ok_or_else(|| {
        ParseError::protocol(format!(
            "unknown power unit {:?} in {:?}",
            unit.trim(),
            shorten(t)
        ))
    })?)
}

/// The factor that turns a value in `unit` into watts; `None` for a unit that is not power.
pub fn unit_factor(unit: &str) -> Option<f64> {
    match unit {
        "" | "W" | "w" => Some(1.0),
        "kW" | "kw" | "KW" => Some(1000.0),
        "MW" => Some(1_000_000.0),
        "mW" => Some(0.001),
        _ => None,
    }
}

/// A JSON value as watts: a number, or a string with an optional unit suffix. `null` is `None`
/// (vendors send it for "nothing measured", e.g. Fronius `P_PV` at night); anything else is an error.
pub fn value_power_w(v: &Value) -> Result<Option<f64>, ParseError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| ParseError::protocol(format!("not a finite number: {n}"))),
        Value::String(s) => parse_power_w(s).map(Some),
        other => Err(ParseError::protocol(format!(
            "expected a number, got {}",
            shorten(&other.to_string())
        ))),
    }
}

/// A JSON value as a plain number (string numbers accepted, no unit); `null` is `None`.
pub fn value_f64(v: &Value) -> Result<Option<f64>, ParseError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| ParseError::protocol(format!("not a finite number: {n}"))),
        Value::String(s) => parse_f64(s).map(Some),
        other => Err(ParseError::protocol(format!(
            "expected a number, got {}",
            shorten(&other.to_string())
        ))),
    }
}

/// Look up a JSON pointer (RFC 6901, e.g. `/Body/Data/Site/P_PV`); a missing key is an error naming it.
pub fn pointer<'a>(v: &'a Value, ptr: &str) -> Result<&'a Value, ParseError> {
    v.pointer(ptr)
        .ok_or_else(|| ParseError::protocol(format!("missing {ptr}")))
}

/// The number at `ptr` as watts (unit suffixes accepted); missing key is an error, `null` is `None`.
pub fn pointer_power_w(v: &Value, ptr: &str) -> Result<Option<f64>, ParseError> {
    value_power_w(pointer(v, ptr)?).map_err(|e| e.context(ptr))
}

/// The number at `ptr` as watts; missing key *or* `null` is an error.
pub fn require_power_w(v: &Value, ptr: &str) -> Result<f64, ParseError> {
    pointer_power_w(v, ptr)?.ok_or_else(|| ParseError::protocol(format!("{ptr} is null")))
}

/// The number at `ptr` (no unit); missing key is an error, `null` is `None`.
pub fn pointer_f64(v: &Value, ptr: &str) -> Result<Option<f64>, ParseError> {
    value_f64(pointer(v, ptr)?).map_err(|e| e.context(ptr))
}

/// Parse a body as JSON.
pub fn json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError::protocol(format!("invalid JSON: {e}")))
}

/// How to turn a payload into one value: optional JSON pointer, scale factor and sign.
/// Shared by the generic sources (`url`, `mqtt`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    /// JSON pointer into the payload; `None` means the payload is a plain number (unit suffix allowed).
    pub pointer: Option<String>,
    /// Multiply by this (e.g. 1000 for kW without a unit suffix).
    pub scale: f64,
    /// Negate (for a meter whose sign is opposite to ours).
    pub invert: bool,
}

impl Default for ValueSpec {
    fn default() -> Self {
        ValueSpec {
            pointer: None,
            scale: 1.0,
            invert: false,
        }
    }
}

impl ValueSpec {
    /// Extract the value in watts from a payload.
    pub fn extract(&self, body: &[u8]) -> Result<f64, ParseError> {
        let raw = match &self.pointer {
            None => {
                let text = std::str::from_utf8(body)
                    .map_err(|_| ParseError::protocol("payload is not UTF-8"))?;
                parse_power_w(text)?
            }
            Some(p) => {
                let v = json(body)?;
                pointer_power_w(&v, p)?
                    .ok_or_else(|| ParseError::protocol(format!("{p} is null")))?
            }
        };
        let v = raw * self.scale;
        Ok(if self.invert { -v } else { v })
    }
}

pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        let mut t: String = s.chars().take(40).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

/// Check that a configured number `key` is finite and within `lo..=hi`; `section` names the
/// config section in the error.
pub fn check_range(
    section: &str,
    key: &str,
    v: f64,
    lo: f64,
    hi: f64,
) -> Result<(), twc_core::plugin::BuildError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(twc_core::plugin::BuildError::new(
            section,
            format!("{key} must be between {lo} and {hi}, got {v}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_as_vendors_send_them() {
        assert_eq!(parse_power_w("350 W").unwrap(), 350.0);
        assert_eq!(parse_power_w("1.2 kW").unwrap(), 1200.0);
        assert_eq!(parse_power_w("1.2kW").unwrap(), 1200.0);
        assert_eq!(parse_power_w("  1111.0\n").unwrap(), 1111.0);
        assert_eq!(parse_power_w("-5520.8 W").unwrap(), -5520.8);
        assert_eq!(parse_power_w("1e3").unwrap(), 1000.0);
        assert!(parse_power_w("NaN").is_err());
        assert!(parse_power_w("NaN-garbage").is_err());
        assert!(parse_power_w("unavailable").is_err());
        assert!(parse_power_w("12 kWh").is_err());
        assert!(parse_power_w("").is_err());
        assert!(parse_power_w("inf").is_err());
    }

    #[test]
    fn json_values() {
        let v = json!({"a": "2.5 kW", "b": null, "c": 7, "d": "8", "e": [1], "f": true});
        assert_eq!(pointer_power_w(&v, "/a").unwrap(), Some(2500.0));
        assert_eq!(pointer_power_w(&v, "/b").unwrap(), None);
        assert_eq!(pointer_power_w(&v, "/c").unwrap(), Some(7.0));
        assert_eq!(pointer_f64(&v, "/d").unwrap(), Some(8.0));
        assert!(pointer_power_w(&v, "/e").is_err());
        assert!(pointer_power_w(&v, "/f").is_err());
        let e = pointer_power_w(&v, "/zz").unwrap_err();
        assert!(e.to_string().contains("/zz"), "{e}");
        assert!(require_power_w(&v, "/b").is_err());
    }

    #[test]
    fn value_spec() {
        let s = ValueSpec {
            pointer: Some("/power".into()),
            scale: 1000.0,
            invert: true,
        };
        assert_eq!(s.extract(br#"{"power": 1.5}"#).unwrap(), -1500.0);
        assert!(s.extract(b"{}").is_err());
        assert!(s.extract(b"garbage").is_err());
        assert_eq!(ValueSpec::default().extract(b"1111 W").unwrap(), 1111.0);
    }
}
