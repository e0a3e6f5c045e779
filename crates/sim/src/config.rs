//! What a simulated slave and its car are: rotary switch, identity, firmware, the car's limits.

use twc_core::model::CentiAmps;
use twc_core::protocol::{ProtocolVersion, TwcId};

/// A simulated TWC Gen2 unit with its rotary switch at F (slave).
#[derive(Debug, Clone, PartialEq)]
pub struct SlaveConfig {
    /// Bus address. Real units ship with a random one.
    pub id: TwcId,
    /// Sign byte sent in link-ready (random on real units, constant until reset).
    pub sign: u8,
    /// Protocol 1 (14-byte frames, older firmware) or 2 (16-byte frames).
    pub version: ProtocolVersion,
    /// Maximum the unit advertises in its link-ready: 32 A on EU units, 80 A on US units.
    pub max_amps: CentiAmps,
    /// Serial number, 11 ASCII characters (`FD ED`).
    pub serial: String,
    /// Firmware version: major, minor, revision, build (`FD EC`).
    pub firmware: [u8; 4],
    /// Lifetime energy counter at start, whole kWh (`FD EB`).
    pub lifetime_kwh: u32,
    /// Phase A, B, C voltages (0 = phase not connected).
    pub volts: [u16; 3],
    /// Answer `FB EB` with the 20-byte reply of firmware 4.5.3 instead of the 16-byte one.
    pub long_kwh_reply: bool,
}

impl SlaveConfig {
    /// An EU unit (32 A, three-phase 230 V, protocol 2, firmware 4.5.3) with a random TWCID.
    pub fn eu() -> Self {
        SlaveConfig {
            id: twc_core::master::random_id(&[]),
            sign: rand::random(),
            version: ProtocolVersion::V2,
            max_amps: CentiAmps::from_amps(32),
            serial: "A18F0000001".into(),
            firmware: [4, 5, 3, 0],
            lifetime_kwh: 1000,
            volts: [230, 230, 230],
            long_kwh_reply: false,
        }
    }

    /// A US unit (80 A, single 240 V phase, protocol 2) with a random TWCID.
    pub fn us() -> Self {
        SlaveConfig {
            max_amps: CentiAmps::from_amps(80),
            volts: [240, 0, 0],
            ..SlaveConfig::eu()
        }
    }

    /// With this TWCID.
    pub fn with_id(mut self, id: TwcId) -> Self {
        self.id = id;
        self
    }

    /// With this protocol version.
    pub fn with_version(mut self, v: ProtocolVersion) -> Self {
        self.version = v;
        self
    }

    /// Watts per amp drawn: the sum of the connected phases' voltages.
    pub fn volts_sum(&self) -> f64 {
        self.volts.iter().map(|&v| f64::from(v)).sum()
    }
}

impl Default for SlaveConfig {
    fn default() -> Self {
        SlaveConfig::eu()
    }
}

/// The car behind a slave.
#[derive(Debug, Clone, PartialEq)]
pub struct CarConfig {
    /// True when the cable is in the car.
    pub plugged_in: bool,
    /// VIN the slave reports over CAN (`FD EE/EF/F1`); `None` = a non-Tesla (all zeros).
    pub vin: Option<String>,
    /// The car will not charge when offered less than this (5 or 6 A for a Tesla).
    pub min_amps: CentiAmps,
    /// Onboard charger limit: the car never draws more, whatever the offer.
    pub max_amps: CentiAmps,
    /// How fast the draw rises toward the offer, amps per second (lowering is immediate).
    pub ramp_amps_per_sec: f64,
    /// Usable battery size, kWh; with `soc_pct` the car stops when full.
    pub battery_kwh: Option<f64>,
    /// State of charge at plug-in, %.
    pub soc_pct: Option<f64>,
    /// Misbehaviour, for testing a master against cars that do not do as they are told.
    pub faults: CarFaults,
}

/// Ways a car (or a slave's firmware) can fail to follow the master. All off by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CarFaults {
    /// Keeps drawing this many amps when offered 0 A or less than its minimum (spec §6.10:
    /// some cars keep drawing at a 0 A limit), while plugged in and not stopped otherwise.
    pub draws_at_zero: f64,
    /// Draws this many amps more than offered (a car that ignores its pilot signal's level).
    pub overdraw: f64,
    /// Follows a lower offer only after this long (a slow or stubborn car).
    pub lower_after: std::time::Duration,
    /// Without heartbeats, stops this much later than [`crate::CAR_STOPS_AFTER`].
    pub stops_late_by: std::time::Duration,
}

/// A valid sample VIN (spec vector C08–C10).
pub const SAMPLE_VIN: &str = "5YJ3E1EA0KF000316";

impl CarConfig {
    /// A Tesla plugged in: VIN [`SAMPLE_VIN`], 5 A minimum, 32 A onboard charger, 2 A/s ramp.
    pub fn tesla() -> Self {
        CarConfig {
            plugged_in: true,
            vin: Some(SAMPLE_VIN.into()),
            min_amps: CentiAmps::from_amps(5),
            max_amps: CentiAmps::from_amps(32),
            ramp_amps_per_sec: 2.0,
            battery_kwh: None,
            soc_pct: None,
            faults: CarFaults::default(),
        }
    }

    /// No car: the cable hangs on the wall.
    pub fn none() -> Self {
        CarConfig {
            plugged_in: false,
            ..CarConfig::tesla()
        }
    }

    /// A non-Tesla car plugged in: reports no VIN (all zeros), 6 A minimum.
    pub fn non_tesla() -> Self {
        CarConfig {
            vin: None,
            min_amps: CentiAmps::from_amps(6),
            ..CarConfig::tesla()
        }
    }

    /// With this VIN.
    pub fn with_vin(mut self, vin: Option<&str>) -> Self {
        self.vin = vin.map(str::to_string);
        self
    }
}

impl Default for CarConfig {
    fn default() -> Self {
        CarConfig::tesla()
    }
}

/// One slave and its car, as handed to [`crate::SimBus::new`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimSlave {
    /// The unit.
    pub slave: SlaveConfig,
    /// Its car (possibly not plugged in).
    pub car: CarConfig,
}

pub use twc_core::protocol::message::vin_check_digit;

/// A valid Tesla-looking VIN numbered `n` (`n = 316` gives [`SAMPLE_VIN`]).
pub fn sample_vin(n: u32) -> String {
    let mut v: Vec<u8> = format!("5YJ3E1EA0KF{:06}", n % 1_000_000).into_bytes();
    if let Some(d) = vin_check_digit(&String::from_utf8_lossy(&v)) {
        v[8] = d;
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// A simple description of a group of slaves, shared by `twcmanager sim` and the Dummy plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSpec {
    /// How many slaves.
    pub count: usize,
    /// Protocol version of every slave.
    pub version: ProtocolVersion,
    /// Rated maximum of every slave.
    pub max_amps: CentiAmps,
    /// Car plugged in, per slave; missing entries mean no car.
    pub plugged_in: Vec<bool>,
    /// VIN per slave; missing entries get a generated valid VIN, `None` means a non-Tesla.
    pub vins: Vec<Option<String>>,
    /// Onboard charger limit of every car.
    pub car_max_amps: CentiAmps,
    /// Minimum current of every car.
    pub car_min_amps: CentiAmps,
    /// Ramp rate of every car, A/s.
    pub ramp_amps_per_sec: f64,
    /// Fixed TWCIDs per slave; missing entries are random.
    pub ids: Vec<TwcId>,
    /// Answer `FB EB` with 20-byte replies.
    pub long_kwh_reply: bool,
}

impl Default for FleetSpec {
    fn default() -> Self {
        FleetSpec {
            count: 2,
            version: ProtocolVersion::V2,
            max_amps: CentiAmps::from_amps(32),
            plugged_in: vec![true, false],
            vins: Vec::new(),
            car_max_amps: CentiAmps::from_amps(32),
            car_min_amps: CentiAmps::from_amps(5),
            ramp_amps_per_sec: 2.0,
            ids: Vec::new(),
            long_kwh_reply: false,
        }
    }
}

impl FleetSpec {
    /// The slaves this spec describes: distinct TWCIDs, serials `A18F0000001`…, US voltages for
    /// units rated above 32 A, EU three-phase otherwise.
    pub fn build(&self) -> Vec<SimSlave> {
        let mut out: Vec<SimSlave> = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let taken: Vec<TwcId> = out
                .iter()
                .map(|s| s.slave.id)
                .chain(self.ids.iter().copied())
                .collect();
            let id = self
                .ids
                .get(i)
                .copied()
                .unwrap_or_else(|| twc_core::master::random_id(&taken));
            let base = if self.max_amps > CentiAmps::from_amps(32) {
                SlaveConfig::us()
            } else {
                SlaveConfig::eu()
            };
            let slave = SlaveConfig {
                id,
                version: self.version,
                max_amps: self.max_amps,
                serial: format!("A18F{:07}", i + 1),
                firmware: match self.version {
                    ProtocolVersion::V1 => [4, 0, 0, 0],
                    _ => [4, 5, 3, 0],
                },
                lifetime_kwh: 1000 * (i as u32 + 1),
                long_kwh_reply: self.long_kwh_reply,
                ..base
            };
            let vin = match self.vins.get(i) {
                Some(v) => v.clone(),
                None => Some(sample_vin(316 + i as u32)),
            };
            let car = CarConfig {
                plugged_in: self.plugged_in.get(i).copied().unwrap_or(false),
                vin,
                min_amps: self.car_min_amps,
                max_amps: self.car_max_amps,
                ramp_amps_per_sec: self.ramp_amps_per_sec,
                battery_kwh: None,
                soc_pct: None,
                faults: CarFaults::default(),
            };
            out.push(SimSlave { slave, car });
        }
        out
    }
}
