//! Decoding the SunSpec inverter (101–103, 111–113) and meter (201–204, 211–214) models from a
//! register block that starts at the model's `ID` register (offset 0; `L` is offset 1).

use twc_plugin_kit::ParseError;
use twc_plugin_kit::modbus::{WordOrder, f32_from};

/// SunSpec's "not implemented" for an int16 or a scale factor.
pub const NI_INT16: u16 = 0x8000;
/// SunSpec's "not implemented" for a uint16.
pub const NI_UINT16: u16 = 0xFFFF;

/// The two ways a SunSpec model encodes numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 16-bit integers with a scale factor register (`value × 10^SF`).
    IntSf,
    /// IEEE-754 float32 in two registers, big-endian (NaN = not implemented).
    Float,
}

/// What an inverter or meter model is: its encoding, phases and the registers we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelKind {
    /// The model id.
    pub id: u16,
    /// Integer + scale factor or float.
    pub encoding: Encoding,
    /// Phases the model describes (1 single, 2 split, 3 three-phase wye or delta).
    pub phases: usize,
    /// Whether it is a meter model (else an inverter model).
    pub meter: bool,
}

impl ModelKind {
    /// The inverter model with this id, if it is one.
    pub fn inverter(id: u16) -> Option<ModelKind> {
        let (encoding, phases) = match id {
            101..=103 => (Encoding::IntSf, usize::from(id - 100)),
            111..=113 => (Encoding::Float, usize::from(id - 110)),
            _ => return None,
        };
        Some(ModelKind {
            id,
            encoding,
            phases,
            meter: false,
        })
    }

    /// The meter model with this id, if it is one (204, delta, counts as three phases).
    pub fn meter(id: u16) -> Option<ModelKind> {
        let (encoding, phases) = match id {
            201..=204 => (Encoding::IntSf, usize::from(id - 200).min(3)),
            211..=214 => (Encoding::Float, usize::from(id - 210).min(3)),
            _ => return None,
        };
        Some(ModelKind {
            id,
            encoding,
            phases,
            meter: true,
        })
    }

    /// Registers to read from the model's `ID` register to cover every point we decode.
    pub fn registers(&self) -> u16 {
        match (self.meter, self.encoding) {
            (false, Encoding::IntSf) => 16, // … W 14, W_SF 15
            (false, Encoding::Float) => 24, // … W 22-23
            (true, Encoding::IntSf) => 23,  // … WphC 21, W_SF 22
            (true, Encoding::Float) => 36,  // … WphC 34-35
        }
    }
}

/// What an inverter model says.
#[derive(Debug, Clone, PartialEq)]
pub struct InverterValues {
    /// AC power, W (+ produced).
    pub power_w: Option<f64>,
    /// Phase-to-neutral voltages, V (`None` unless every phase is known).
    pub phase_voltages: Option<Vec<f64>>,
}

/// What a meter model says, in the meter's own sign.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterValues {
    /// Total real power, W.
    pub power_w: Option<f64>,
    /// Real power per phase, W.
    pub phase_power_w: Vec<Option<f64>>,
    /// Current per phase, A, as the meter reports it (signed or magnitude).
    pub phase_currents_a: Vec<Option<f64>>,
    /// Phase-to-neutral voltages, V.
    pub phase_voltages: Vec<Option<f64>>,
}

fn reg(block: &[u16], offset: usize) -> Result<u16, ParseError> {
    block
        .get(offset)
        .copied()
        .ok_or_else(|| ParseError::protocol(format!("model block too short for offset {offset}")))
}

/// A scale factor: `None` when not implemented, an error outside SunSpec's −10..=10.
pub fn scale_factor(raw: u16, name: &str) -> Result<Option<i32>, ParseError> {
    if raw == NI_INT16 {
        return Ok(None);
    }
    let sf = i32::from(raw as i16);
    if (-10..=10).contains(&sf) {
        Ok(Some(sf))
    } else {
        Err(ParseError::protocol(format!(
            "scale factor {name} is {sf}, outside -10..=10"
        )))
    }
}

fn apply(v: f64, sf: i32) -> f64 {
    // Divide for negative factors: 2301 / 10 is exactly 230.1, 2301 × 0.1 is not.
    if sf < 0 {
        v / 10f64.powi(-sf)
    } else {
        v * 10f64.powi(sf)
    }
}

/// An int16 point with its scale factor; `None` when either is "not implemented".
pub fn int16(raw: u16, sf: Option<i32>) -> Option<f64> {
    (raw != NI_INT16)
        .then_some(())
        .and(sf)
        .map(|sf| apply(f64::from(raw as i16), sf))
}

/// A uint16 point with its scale factor; `None` when either is "not implemented".
pub fn uint16(raw: u16, sf: Option<i32>) -> Option<f64> {
    (raw != NI_UINT16)
        .then_some(())
        .and(sf)
        .map(|sf| apply(f64::from(raw), sf))
}

/// A float32 point: `None` for NaN ("not implemented"), an error for an infinity.
pub fn float32(block: &[u16], offset: usize, name: &str) -> Result<Option<f64>, ParseError> {
    let v = f32_from(
        [reg(block, offset)?, reg(block, offset + 1)?],
        WordOrder::Abcd,
    );
    if v.is_nan() {
        Ok(None)
    } else if v.is_infinite() {
        Err(ParseError::protocol(format!(
            "{name} is not a finite number"
        )))
    } else {
        Ok(Some(f64::from(v)))
    }
}

fn check_header(block: &[u16], kind: &ModelKind) -> Result<(), ParseError> {
    let id = reg(block, 0)?;
    if id != kind.id {
        return Err(ParseError::transient(format!(
            "expected model {} but found {id}: the SunSpec map changed",
            kind.id
        )));
    }
    let len = reg(block, 1)?;
    if u32::from(len) + 2 < u32::from(kind.registers()) {
        return Err(ParseError::protocol(format!(
            "model {id} declares {len} registers, fewer than the standard's"
        )));
    }
    Ok(())
}

/// All phases or nothing: a list with an unknown phase would shift or zero a phase.
pub fn all_known(values: &[Option<f64>]) -> Option<Vec<f64>> {
    values.iter().copied().collect()
}

/// Decode an inverter model block (101–103 or 111–113).
pub fn decode_inverter(block: &[u16], kind: &ModelKind) -> Result<InverterValues, ParseError> {
    check_header(block, kind)?;
    let n = kind.phases;
    let (power, volts) = match kind.encoding {
        Encoding::IntSf => {
            let v_sf = scale_factor(reg(block, 13)?, "V_SF")?;
            let w_sf = scale_factor(reg(block, 15)?, "W_SF")?;
            let volts = (0..n)
                .map(|i| Ok(uint16(reg(block, 10 + i)?, v_sf)))
                .collect::<Result<Vec<_>, ParseError>>()?;
            (int16(reg(block, 14)?, w_sf), volts)
        }
        Encoding::Float => {
            let volts = (0..n)
                .map(|i| float32(block, 16 + 2 * i, "PhV"))
                .collect::<Result<Vec<_>, _>>()?;
            (float32(block, 22, "W")?, volts)
        }
    };
    Ok(InverterValues {
        power_w: power,
        phase_voltages: all_known(&volts),
    })
}

/// Decode a meter model block (201–204 or 211–214).
pub fn decode_meter(block: &[u16], kind: &ModelKind) -> Result<MeterValues, ParseError> {
    check_header(block, kind)?;
    let n = kind.phases;
    match kind.encoding {
        Encoding::IntSf => {
            let a_sf = scale_factor(reg(block, 6)?, "A_SF")?;
            let v_sf = scale_factor(reg(block, 15)?, "V_SF")?;
            let w_sf = scale_factor(reg(block, 22)?, "W_SF")?;
            let each = |start: usize, sf| {
                (0..n)
                    .map(|i| Ok(int16(reg(block, start + i)?, sf)))
                    .collect::<Result<Vec<_>, ParseError>>()
            };
            Ok(MeterValues {
                power_w: int16(reg(block, 18)?, w_sf),
                phase_power_w: each(19, w_sf)?,
                phase_currents_a: each(3, a_sf)?,
                phase_voltages: each(8, v_sf)?,
            })
        }
        Encoding::Float => {
            let each = |start: usize, name: &str| {
                (0..n)
                    .map(|i| float32(block, start + 2 * i, name))
                    .collect::<Result<Vec<_>, _>>()
            };
            Ok(MeterValues {
                power_w: float32(block, 28, "W")?,
                phase_power_w: each(30, "WphX")?,
                phase_currents_a: each(4, "AphX")?,
                phase_voltages: each(12, "PhVphX")?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_factors_and_sentinels() {
        assert_eq!(int16(2301, Some(-1)), Some(230.1));
        assert_eq!(int16((-150i16) as u16, Some(1)), Some(-1500.0));
        assert_eq!(int16(NI_INT16, Some(0)), None);
        assert_eq!(int16(100, None), None);
        assert_eq!(uint16(NI_UINT16, Some(0)), None);
        assert_eq!(uint16(40000, Some(0)), Some(40000.0));
        assert_eq!(scale_factor(NI_INT16, "W_SF").unwrap(), None);
        assert_eq!(scale_factor((-3i16) as u16, "W_SF").unwrap(), Some(-3));
        assert!(scale_factor(11, "W_SF").is_err());
        assert!(scale_factor((-11i16) as u16, "W_SF").is_err());
    }

    #[test]
    fn floats() {
        assert_eq!(float32(&[0x4000, 0x0000], 0, "W").unwrap(), Some(2.0));
        assert_eq!(float32(&[0x7FC0, 0x0000], 0, "W").unwrap(), None);
        assert!(float32(&[0x7F80, 0x0000], 0, "W").is_err());
        assert!(float32(&[0x7F80], 0, "W").is_err());
    }

    #[test]
    fn model_ids() {
        assert_eq!(ModelKind::inverter(103).map(|k| k.phases), Some(3));
        assert_eq!(
            ModelKind::inverter(111).map(|k| k.encoding),
            Some(Encoding::Float)
        );
        assert_eq!(ModelKind::inverter(104), None);
        assert_eq!(ModelKind::meter(204).map(|k| k.phases), Some(3));
        assert_eq!(ModelKind::meter(211).map(|k| k.phases), Some(1));
        assert_eq!(ModelKind::meter(103), None);
    }
}
