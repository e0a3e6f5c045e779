//! The Arduino's text, pure: `IrmsA<n> = <amps> EndA<n>` markers, one per clamp, as the
//! TWCManager2 fork's SCT013 module reads them. Clamps A0 (A1, A2) measure the house's
//! consumption, A3 (A4, A5) the PV generation, one clamp per phase.

use twc_core::model::EnergyReading;
use twc_plugin_kit::ParseError;

/// Clamps read: A0 to A5.
pub const CLAMPS: usize = 6;

/// What one text says of each clamp: `None` = no marker, `Some(None)` = a marker with an empty
/// value (the Arduino has none), `Some(Some(a))` = a current in A.
pub type Clamps = [Option<Option<f64>>; CLAMPS];

/// How the clamps are laid out and turned into watts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// 1 (A0, A3) or 3 (A0–A2, A3–A5).
    pub phases: usize,
    /// Volts per phase: watts = amps × volts.
    pub voltage: f64,
    /// Read the consumption clamps.
    pub consumption: bool,
    /// Read the generation clamps.
    pub generation: bool,
}

/// Find every `IrmsA<n> = <value> EndA<n>` marker. A text without any is garbage; a marker
/// without its end (a cut line), a value that is not a plain non-negative decimal, or the same
/// clamp twice is a `Protocol` error.
pub fn parse_clamps(text: &[u8]) -> Result<Clamps, ParseError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| ParseError::protocol("the clamp text is not UTF-8"))?;
    let mut out: Clamps = [None; CLAMPS];
    let mut found = false;
    let mut rest = text;
    while let Some(at) = rest.find("IrmsA") {
        found = true;
        let after = &rest[at + 5..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = after[..digits]
            .parse()
            .map_err(|_| ParseError::protocol("IrmsA without a clamp number"))?;
        let end = format!("EndA{n}");
        let body = &after[digits..];
        let stop = body
            .find(&end)
            .ok_or_else(|| ParseError::protocol(format!("IrmsA{n} without {end} (cut off?)")))?;
        let value = body[..stop]
            .trim()
            .strip_prefix('=')
            .ok_or_else(|| ParseError::protocol(format!("IrmsA{n}: no '=' before the value")))?
            .trim();
        let amps = if value.is_empty() {
            None
        } else if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            Some(value.parse::<f64>().map_err(|_| {
                ParseError::protocol(format!("IrmsA{n}: {value:?} is not a current"))
            })?)
        } else {
            return Err(ParseError::protocol(format!(
                "IrmsA{n}: {value:?} is not a current"
            )));
        };
        if n < CLAMPS {
            if out[n].is_some() {
                return Err(ParseError::protocol(format!("IrmsA{n} twice")));
            }
            out[n] = Some(amps);
        }
        rest = &body[stop + end.len()..];
    }
    if !found {
        return Err(ParseError::protocol(
            "no IrmsA<n> = <amps> EndA<n> marker in the text",
        ));
    }
    Ok(out)
}

/// The phase currents of a group starting at clamp `first`: every clamp must be there with a
/// value. An empty value (the Arduino has no measurement) is `Transient`, never 0 A.
fn group(c: &Clamps, first: usize, phases: usize, what: &str) -> Result<Vec<f64>, ParseError> {
    (first..first + phases)
        .map(|n| match c[n] {
            Some(Some(a)) => Ok(a),
            Some(None) => Err(ParseError::transient(format!(
                "{what} clamp A{n} has no value (empty IrmsA{n})"
            ))),
            None => Err(ParseError::protocol(format!(
                "no {what} clamp A{n} (IrmsA{n}) in the text"
            ))),
        })
        .collect()
}

/// The reading: consumption = Σ A0.. × volts, generation = Σ A3.. × volts, for the groups
/// that are read. No grid value and no phase currents: the clamps measure house load and PV
/// without a direction, not the grid connection.
pub fn to_reading(c: &Clamps, layout: &Layout) -> Result<EnergyReading, ParseError> {
    let mut r = EnergyReading::default();
    if layout.consumption {
        let a = group(c, 0, layout.phases, "consumption")?;
        r.consumption_w = Some(a.iter().sum::<f64>() * layout.voltage);
    }
    if layout.generation {
        let a = group(c, 3, layout.phases, "generation")?;
        r.generation_w = Some(a.iter().sum::<f64>() * layout.voltage);
    }
    Ok(r)
}

/// [`parse_clamps`] then [`to_reading`].
pub fn parse(text: &[u8], layout: &Layout) -> Result<EnergyReading, ParseError> {
    to_reading(&parse_clamps(text)?, layout)
}
