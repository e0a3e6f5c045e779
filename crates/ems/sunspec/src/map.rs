//! Finding the SunSpec map of a unit: the "SunS" marker at a base address, then the chain of
//! models (`ID`, `L`, `L` registers of points) up to the end marker (`ID` 0xFFFF).

use twc_core::plugin::{ErrorKind, PluginError};
use twc_plugin_kit::modbus::ModbusTcp;

/// "SunS" in two registers.
pub const SUNS: [u16; 2] = [0x5375, 0x6E53];
/// Where SunSpec maps start, in the order they are tried.
pub const BASES: [u16; 3] = [40000, 0, 50000];
/// The end marker's model id.
pub const END: u16 = 0xFFFF;
/// More models than any device has: a chain longer than this is garbage.
pub const MAX_MODELS: usize = 64;

/// One model in a map: its id and the address of its `ID` register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelAt {
    /// Model id.
    pub id: u16,
    /// Address of the model's `ID` register.
    pub addr: u16,
    /// Registers of points after `ID` and `L`.
    pub len: u16,
}

/// A discovered map: its base and its models in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SunSpecMap {
    /// The base address holding "SunS".
    pub base: u16,
    /// Models in map order.
    pub models: Vec<ModelAt>,
}

impl SunSpecMap {
    /// The first model whose id satisfies `pred`.
    pub fn find(&self, pred: impl Fn(u16) -> bool) -> Option<ModelAt> {
        self.models.iter().copied().find(|m| pred(m.id))
    }

    /// The model ids, for error messages.
    pub fn ids(&self) -> String {
        let ids: Vec<String> = self.models.iter().map(|m| m.id.to_string()).collect();
        if ids.is_empty() {
            "none".into()
        } else {
            ids.join(", ")
        }
    }
}

fn err(kind: ErrorKind, unit: u8, what: String) -> PluginError {
    PluginError::new(kind, crate::NAME, format!("unit {unit}: {what}"))
}

/// Find the map of `unit`: try each base in `bases` for "SunS" (a base the device does not
/// serve answers with a Modbus exception and the next is tried; a broken link fails at once),
/// then walk the models. A device without an end marker ends its map with an exception.
pub async fn discover(bus: &ModbusTcp, unit: u8, bases: &[u16]) -> Result<SunSpecMap, PluginError> {
    for &base in bases {
        match bus.read_holding_from(unit, base, 2).await {
            Ok(r) if r == SUNS => return walk(bus, unit, base).await,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Unsupported => continue,
            Err(e) => return Err(e),
        }
    }
    let tried: Vec<String> = bases.iter().map(u16::to_string).collect();
    Err(err(
        ErrorKind::Config,
        unit,
        format!(
            "no SunSpec map (\"SunS\") at {}: check the unit id, the port and that SunSpec/Modbus is enabled on the device",
            tried.join(", ")
        ),
    ))
}

async fn walk(bus: &ModbusTcp, unit: u8, base: u16) -> Result<SunSpecMap, PluginError> {
    let mut models = Vec::new();
    let mut addr = base.checked_add(2);
    while let Some(at) = addr {
        if models.len() >= MAX_MODELS {
            break;
        }
        let header = match bus.read_holding_from(unit, at, 2).await {
            Ok(h) => h,
            Err(e) if e.kind() == ErrorKind::Unsupported && !models.is_empty() => {
                return Ok(SunSpecMap { base, models });
            }
            Err(e) => return Err(e),
        };
        let (id, len) = match header[..] {
            [id, len] => (id, len),
            _ => break,
        };
        if id == END {
            return Ok(SunSpecMap { base, models });
        }
        models.push(ModelAt { id, addr: at, len });
        addr = at.checked_add(2).and_then(|a| a.checked_add(len));
    }
    Err(err(
        ErrorKind::Protocol,
        unit,
        format!(
            "the SunSpec map at {base} has no end within the register space or {MAX_MODELS} models"
        ),
    ))
}
