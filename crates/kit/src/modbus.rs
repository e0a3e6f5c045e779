//! Modbus TCP for energy sources: decoding 32-bit values from register pairs in any byte/word
//! order, SunSpec scale factors, and a small client (tokio-modbus) that keeps one connection,
//! applies a timeout to every step and reconnects after an error.

use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};
use twc_core::plugin::{BuildError, ErrorKind, PluginError};

/// How the four bytes A B C D of a 32-bit value (A most significant) are laid out over two
/// registers. Devices disagree: SunSpec uses `abcd`, Kostal's default is `cdab`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WordOrder {
    /// Big-endian: first register holds A B (SunSpec, Modbus convention).
    #[default]
    Abcd,
    /// Word-swapped: first register holds C D ("little-endian" in Kostal's manual).
    Cdab,
    /// Bytes swapped inside each register.
    Badc,
    /// Fully little-endian.
    Dcba,
}

/// The four bytes A B C D (A most significant) from two registers in `order`.
pub fn bytes_from(regs: [u16; 2], order: WordOrder) -> [u8; 4] {
    let [r0h, r0l] = regs[0].to_be_bytes();
    let [r1h, r1l] = regs[1].to_be_bytes();
    match order {
        WordOrder::Abcd => [r0h, r0l, r1h, r1l],
        WordOrder::Cdab => [r1h, r1l, r0h, r0l],
        WordOrder::Badc => [r0l, r0h, r1l, r1h],
        WordOrder::Dcba => [r1l, r1h, r0l, r0h],
    }
}

/// An IEEE-754 float from two registers.
pub fn f32_from(regs: [u16; 2], order: WordOrder) -> f32 {
    f32::from_be_bytes(bytes_from(regs, order))
}

/// An unsigned 32-bit value from two registers.
pub fn u32_from(regs: [u16; 2], order: WordOrder) -> u32 {
    u32::from_be_bytes(bytes_from(regs, order))
}

/// A signed 32-bit value from two registers.
pub fn i32_from(regs: [u16; 2], order: WordOrder) -> i32 {
    i32::from_be_bytes(bytes_from(regs, order))
}

/// A signed 16-bit value from one register.
pub fn i16_from(reg: u16) -> i16 {
    reg as i16
}

/// The two registers at `offset` of a block read, or an error naming the register.
pub fn pair(regs: &[u16], offset: usize) -> Result<[u16; 2], crate::ParseError> {
    match regs.get(offset..offset + 2) {
        Some(&[a, b]) => Ok([a, b]),
        _ => Err(crate::ParseError::protocol(format!(
            "register block too short for offset {offset}"
        ))),
    }
}

/// A SunSpec value with its scale factor: `value × 10^sf`. SunSpec marks a value the device lacks with
/// 0x8000 (i16) or 0xFFFF (u16); those give `None`.
pub fn sunspec_scaled(raw: i16, sf: i16) -> Option<f64> {
    if raw == i16::MIN || sf == i16::MIN || !(-10..=10).contains(&sf) {
        return None;
    }
    // Divide for negative factors: 2301 / 10 is exactly 230.1, 2301 × 0.1 is not.
    let v = f64::from(raw);
    Some(if sf < 0 {
        v / 10f64.powi(-i32::from(sf))
    } else {
        v * 10f64.powi(i32::from(sf))
    })
}

/// Check a `host:port` address in config (resolved at connect time).
pub fn check_address(section: &str, key: &str, address: &str) -> Result<(), BuildError> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(BuildError::new(
            section,
            format!("{key} must be host:port, e.g. \"192.168.1.60:1502\", got {address:?}"),
        )),
    }
}

/// A Modbus TCP client for one unit of one device, with one connection kept open.
pub struct ModbusTcp {
    plugin: String,
    address: String,
    unit: u8,
    timeout: Duration,
    ctx: Mutex<Option<Context>>,
}

impl ModbusTcp {
    /// A client for `address` (`host:port`) and `unit`; connects lazily.
    pub fn new(plugin: &str, address: &str, unit: u8, timeout: Duration) -> Self {
        ModbusTcp {
            plugin: plugin.to_string(),
            address: address.to_string(),
            unit,
            timeout,
            ctx: Mutex::new(None),
        }
    }

    fn err(&self, kind: ErrorKind, what: String) -> PluginError {
        self.err_unit(self.unit, kind, what)
    }

    fn err_unit(&self, unit: u8, kind: ErrorKind, what: String) -> PluginError {
        PluginError::new(
            kind,
            &self.plugin,
            format!("modbus {} unit {unit}: {what}", self.address),
        )
    }

    async fn connect(&self) -> Result<Context, PluginError> {
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(self.timeout, tokio::net::lookup_host(&self.address))
                .await
                .map_err(|_| self.err(ErrorKind::Transient, "name lookup timed out".into()))?
                .map_err(|e| self.err(ErrorKind::Transient, format!("cannot resolve: {e}")))?
                .collect();
        let addr = addrs
            .first()
            .copied()
            .ok_or_else(|| self.err(ErrorKind::Config, "address resolves to nothing".into()))?;
        tokio::time::timeout(
            self.timeout,
            tokio_modbus::client::tcp::connect_slave(addr, Slave(self.unit)),
        )
        .await
        .map_err(|_| self.err(ErrorKind::Transient, "connect timed out".into()))?
        .map_err(|e| self.err(ErrorKind::Transient, format!("cannot connect: {e}")))
    }

    /// Read `count` holding registers (function 3) from `addr`.
    pub async fn read_holding(&self, addr: u16, count: u16) -> Result<Vec<u16>, PluginError> {
        self.read(self.unit, addr, count, false).await
    }

    /// Read `count` input registers (function 4) from `addr`.
    pub async fn read_input(&self, addr: u16, count: u16) -> Result<Vec<u16>, PluginError> {
        self.read(self.unit, addr, count, true).await
    }

    /// Read `count` holding registers from another unit id of the same device, over the same
    /// connection (a gateway such as a Victron GX or a Fronius datamanager serves several units,
    /// and some devices accept only one connection).
    pub async fn read_holding_from(
        &self,
        unit: u8,
        addr: u16,
        count: u16,
    ) -> Result<Vec<u16>, PluginError> {
        self.read(unit, addr, count, false).await
    }

    /// Read `count` input registers from another unit id over the same connection.
    pub async fn read_input_from(
        &self,
        unit: u8,
        addr: u16,
        count: u16,
    ) -> Result<Vec<u16>, PluginError> {
        self.read(unit, addr, count, true).await
    }

    async fn read(
        &self,
        unit: u8,
        addr: u16,
        count: u16,
        input: bool,
    ) -> Result<Vec<u16>, PluginError> {
        let mut guard = self.ctx.lock().await;
        if guard.is_none() {
            *guard = Some(self.connect().await?);
        }
        let Some(ctx) = guard.as_mut() else {
            return Err(self.err_unit(unit, ErrorKind::Transient, "not connected".into()));
        };
        ctx.set_slave(Slave(unit));
        let fut = async {
            if input {
                ctx.read_input_registers(addr, count).await
            } else {
                ctx.read_holding_registers(addr, count).await
            }
        };
        let what = format!("read {count} registers at {addr}");
        let res = tokio::time::timeout(self.timeout, fut).await;
        match res {
            Err(_) => {
                *guard = None;
                Err(self.err_unit(unit, ErrorKind::Transient, format!("{what}: timed out")))
            }
            Ok(Err(e)) => {
                *guard = None;
                Err(self.err_unit(unit, ErrorKind::Transient, format!("{what}: {e}")))
            }
            Ok(Ok(Err(code))) => {
                let kind = match code {
                    ExceptionCode::IllegalDataAddress | ExceptionCode::IllegalFunction => {
                        ErrorKind::Unsupported
                    }
                    ExceptionCode::ServerDeviceBusy | ExceptionCode::GatewayTargetDevice => {
                        ErrorKind::Transient
                    }
                    _ => ErrorKind::Protocol,
                };
                Err(self.err_unit(unit, kind, format!("{what}: device answered {code:?}")))
            }
            Ok(Ok(Ok(regs))) if regs.len() == usize::from(count) => Ok(regs),
            Ok(Ok(Ok(regs))) => Err(self.err_unit(
                unit,
                ErrorKind::Protocol,
                format!("{what}: got {} registers", regs.len()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_in_every_order() {
        // 6012.5 = 0x45BBE400
        assert_eq!(f32_from([0x45BB, 0xE400], WordOrder::Abcd), 6012.5);
        assert_eq!(f32_from([0xE400, 0x45BB], WordOrder::Cdab), 6012.5);
        assert_eq!(f32_from([0xBB45, 0x00E4], WordOrder::Badc), 6012.5);
        assert_eq!(f32_from([0x00E4, 0xBB45], WordOrder::Dcba), 6012.5);
    }

    #[test]
    fn integers() {
        assert_eq!(u32_from([0x0001, 0x0002], WordOrder::Abcd), 0x0001_0002);
        assert_eq!(u32_from([0x0001, 0x0002], WordOrder::Cdab), 0x0002_0001);
        assert_eq!(i32_from([0xFFFF, 0xFFFE], WordOrder::Abcd), -2);
        assert_eq!(i16_from(65136), -400);
        assert_eq!(sunspec_scaled(12345, -2), Some(123.45));
        assert_eq!(sunspec_scaled(-32768, 0), None);
        assert!(pair(&[1, 2, 3], 2).is_err());
        assert_eq!(pair(&[1, 2, 3], 1).unwrap(), [2, 3]);
    }

    #[test]
    fn addresses() {
        assert!(check_address("ems.k", "address", "192.168.1.2:1502").is_ok());
        assert!(check_address("ems.k", "address", "inverter.local:502").is_ok());
        assert!(check_address("ems.k", "address", "192.168.1.2").is_err());
        assert!(check_address("ems.k", "address", ":502").is_err());
    }
}
