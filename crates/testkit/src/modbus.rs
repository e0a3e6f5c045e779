//! An in-process Modbus TCP server serving a register map, for EMS crates that read Modbus.

use std::collections::HashMap;
use std::future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_modbus::server::Service;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// Registers by address (holding and input registers share the map).
pub type Registers = HashMap<u16, u16>;

struct Map {
    units: HashMap<u8, Registers>,
    default: Option<u16>,
}

impl Map {
    fn read(&self, regs: &Registers, addr: u16, cnt: u16) -> Result<Vec<u16>, ExceptionCode> {
        (0..cnt)
            .map(|i| {
                let a = addr
                    .checked_add(i)
                    .ok_or(ExceptionCode::IllegalDataAddress)?;
                regs.get(&a)
                    .copied()
                    .or(self.default)
                    .ok_or(ExceptionCode::IllegalDataAddress)
            })
            .collect()
    }
}

impl Service for Map {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let Some(regs) = self.units.get(&req.slave) else {
            return future::ready(Err(ExceptionCode::GatewayTargetDevice));
        };
        future::ready(match req.request {
            Request::ReadHoldingRegisters(a, n) => {
                self.read(regs, a, n).map(Response::ReadHoldingRegisters)
            }
            Request::ReadInputRegisters(a, n) => {
                self.read(regs, a, n).map(Response::ReadInputRegisters)
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

/// Serve `regs` for unit id `unit` on a loopback port; other unit ids get an exception, and
/// addresses not in the map read as `default` or, when `None`, get `IllegalDataAddress`.
/// The server runs until the test's runtime ends.
pub async fn serve_registers(regs: Registers, unit: u8, default: Option<u16>) -> SocketAddr {
    serve_units(HashMap::from([(unit, regs)]), default).await
}

/// Serve one register map per unit id (a gateway such as a Victron GX or a Fronius datamanager,
/// whose meter answers on another unit id); unit ids not in `units` get an exception.
pub async fn serve_units(units: HashMap<u8, Registers>, default: Option<u16>) -> SocketAddr {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a Modbus test server: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("no local address: {e}"),
    };
    let map = Arc::new(Map { units, default });
    tokio::spawn(async move {
        let server = Server::new(listener);
        let new_service = move |_addr| Ok(Some(Arc::clone(&map)));
        let on_connected = move |stream, addr| {
            let ns = new_service.clone();
            async move { accept_tcp_connection(stream, addr, ns) }
        };
        let _ = server.serve(&on_connected, |_e| {}).await;
    });
    addr
}

/// A TCP server that accepts connections and never answers, for timeout tests.
pub async fn serve_silence() -> SocketAddr {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("no local address: {e}"),
    };
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Put a big-endian (ABCD) or word-swapped (CDAB) f32 at `addr`.
pub fn put_f32(regs: &mut Registers, addr: u16, v: f32, word_swapped: bool) {
    let b = v.to_be_bytes();
    let hi = u16::from_be_bytes([b[0], b[1]]);
    let lo = u16::from_be_bytes([b[2], b[3]]);
    let (first, second) = if word_swapped { (lo, hi) } else { (hi, lo) };
    regs.insert(addr, first);
    regs.insert(addr + 1, second);
}
