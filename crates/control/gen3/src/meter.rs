//! The emulated meter: a Modbus RTU server presenting the Neurio meter a Gen3 commissioned with
//! an external meter polls, so that its own load management gives the car what we decide.
//!
//! Register map and identity as TWCManager 1.4's Gen3 controller documents them (it credits
//! Klangen82/tesla-wall-connector-control and a gist by LucaTNT): unit 1, holding registers
//! (0-based) 1.. "ENC" (maker), 11.. "WBI1001-CCDC" (model), 29.. "PWR", 32.. "4.2.9.9"
//! (firmware), 47.. "000000000" (serial), two ASCII characters per register, zero-padded;
//! 17–20, 28 and 39–46 read 0xFFFF; the power of CT1–CT3 at 0x88/0x8A/0x8C and the total at
//! 0x90, their currents at 0xF4/0xF6/0xF8 and the total at 0xFC, each an IEEE 754 float in two
//! registers, high word first. The Gen3 charges at up to its circuit's setting minus the house
//! load it reads, so we report `house = circuit − target` (all of the circuit to stop it).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Registers served (0..256 covers every address above).
pub const REGISTERS: usize = 0x100;
/// CT1..CT3 power, total power.
pub const REG_CT_POWER: [u16; 3] = [0x88, 0x8A, 0x8C];
/// Total power.
pub const REG_TOTAL_POWER: u16 = 0x90;
/// CT1..CT3 current.
pub const REG_CT_CURRENT: [u16; 3] = [0xF4, 0xF6, 0xF8];
/// Total current.
pub const REG_TOTAL_CURRENT: u16 = 0xFC;
/// Identity strings at their first register.
pub const IDENTITY: [(u16, &str); 5] = [
    (1, "ENC"),
    (11, "WBI1001-CCDC"),
    (29, "PWR"),
    (32, "4.2.9.9"),
    (47, "000000000"),
];
const NOT_PRESENT: [(u16, u16); 3] = [(17, 20), (28, 28), (39, 46)];

/// The register image a Gen3 reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image(pub Vec<u16>);

impl Default for Image {
    fn default() -> Self {
        let mut r = vec![0u16; REGISTERS];
        for (base, text) in IDENTITY {
            let mut b = text.as_bytes().to_vec();
            if b.len() % 2 == 1 {
                b.push(0);
            }
            for (i, pair) in b.chunks(2).enumerate() {
                r[usize::from(base) + i] = u16::from_be_bytes([pair[0], pair[1]]);
            }
        }
        for (a, b) in NOT_PRESENT {
            for x in a..=b {
                r[usize::from(x)] = 0xFFFF;
            }
        }
        Image(r)
    }
}

impl Image {
    fn put_f32(&mut self, reg: u16, v: f32) {
        let b = v.to_be_bytes();
        self.0[usize::from(reg)] = u16::from_be_bytes([b[0], b[1]]);
        self.0[usize::from(reg) + 1] = u16::from_be_bytes([b[2], b[3]]);
    }

    /// Read a float back (tests, diagnostics).
    pub fn f32_at(&self, reg: u16) -> f32 {
        let (h, l) = (self.0[usize::from(reg)], self.0[usize::from(reg) + 1]);
        let [a, b] = h.to_be_bytes();
        let [c, d] = l.to_be_bytes();
        f32::from_be_bytes([a, b, c, d])
    }

    /// Show a house load of `amps` per phase on `phases` phases at `volts`.
    pub fn set_house(&mut self, amps: f64, phases: u8, volts: f64) {
        let phases = phases.clamp(1, 3);
        let w = amps * volts;
        for i in 0..3u8 {
            let on = i < phases;
            self.put_f32(
                REG_CT_POWER[usize::from(i)],
                if on { w as f32 } else { 0.0 },
            );
            self.put_f32(
                REG_CT_CURRENT[usize::from(i)],
                if on { amps as f32 } else { 0.0 },
            );
        }
        self.put_f32(REG_TOTAL_POWER, (w * f64::from(phases)) as f32);
        self.put_f32(REG_TOTAL_CURRENT, (amps * f64::from(phases)) as f32);
    }
}

/// The house load (A per phase) that leaves a Gen3 on a `circuit` A setting `target` A:
/// the whole circuit when `target` is 0 (it stops).
pub fn house_amps(circuit: f64, target: f64) -> f64 {
    (circuit - target.clamp(0.0, circuit)).max(0.0)
}

/// Modbus CRC-16 (poly 0xA001, init 0xFFFF), sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// One request in `buf`: `Some((consumed, reply))` (reply `None` = not for us or not
/// answerable), or `None` when more bytes are needed. A frame with a bad CRC loses its first
/// byte (resynchronisation).
pub fn handle(buf: &[u8], unit: u8, image: &Image) -> Option<(usize, Option<Vec<u8>>)> {
    if buf.len() < 8 {
        return None;
    }
    let frame = &buf[..8];
    let crc = u16::from_le_bytes([frame[6], frame[7]]);
    if crc16(&frame[..6]) != crc {
        return Some((1, None));
    }
    if frame[0] != unit {
        return Some((8, None));
    }
    let fc = frame[1];
    let addr = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
    let count = usize::from(u16::from_be_bytes([frame[4], frame[5]]));
    let mut out = vec![unit];
    if fc != 3 && fc != 4 {
        out.extend([fc | 0x80, 0x01]); // illegal function
    } else if count == 0 || count > 125 || addr + count > REGISTERS {
        out.extend([fc | 0x80, 0x02]); // illegal data address
    } else {
        out.push(fc);
        out.push((count * 2) as u8);
        for r in &image.0[addr..addr + count] {
            out.extend(r.to_be_bytes());
        }
    }
    let c = crc16(&out);
    out.extend(c.to_le_bytes());
    Some((8, Some(out)))
}

/// The running meter: the image the engine's allocation is written to, and counters.
#[derive(Clone, Default)]
pub struct Meter {
    image: Arc<Mutex<Image>>,
    reads: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Meter {
    /// A meter showing nothing yet (a house load of 0 would let the Gen3 take its whole
    /// circuit: callers set the house before serving).
    pub fn new() -> Self {
        Meter::default()
    }
    /// Set the house load the Gen3 reads.
    pub fn set_house(&self, amps: f64, phases: u8, volts: f64) {
        self.image
            .lock()
            .expect("meter image")
            .set_house(amps, phases, volts);
    }
    /// A copy of the image.
    pub fn image(&self) -> Image {
        self.image.lock().expect("meter image").clone()
    }
    /// Requests answered so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    /// Stop serving (the serving thread ends within its read timeout).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Serve on an open byte stream until it fails or [`Meter::stop`]. Blocking: run it on
    /// its own thread. Read timeouts are part of the stream's setup.
    pub fn serve<S: Read + Write>(&self, port: &mut S, unit: u8) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 256];
        while !self.stop.load(Ordering::Relaxed) {
            match port.read(&mut chunk) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "hung up")),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::WouldBlock
                    ) =>
                {
                    // A gap: what is left is not a frame.
                    if buf.len() < 8 {
                        buf.clear();
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            loop {
                let image = self.image();
                match handle(&buf, unit, &image) {
                    None => break,
                    Some((used, reply)) => {
                        buf.drain(..used);
                        if let Some(r) = reply {
                            port.write_all(&r)?;
                            port.flush()?;
                            self.reads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Open a serial port for the meter (8N1, no flow control, short read timeout).
pub fn open_port(port: &str, baud: u32) -> io::Result<Box<dyn serialport::SerialPort>> {
    serialport::new(port, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(io::Error::other)
}
