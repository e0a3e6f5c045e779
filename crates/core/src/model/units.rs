use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

/// Current in hundredths of an ampere, as on the wire (`0C 80` = 32.00 A).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CentiAmps(pub u16);

impl CentiAmps {
    /// Zero.
    pub const ZERO: CentiAmps = CentiAmps(0);
    /// From whole amps (saturating).
    pub fn from_amps(a: u16) -> Self {
        CentiAmps(a.saturating_mul(100))
    }
    /// From fractional amps, rounded down to the centiamp, clamped to 0..=655.35.
    pub fn from_f64(a: f64) -> Self {
        if !a.is_finite() || a <= 0.0 {
            return CentiAmps(0);
        }
        CentiAmps((a * 100.0).floor().min(u16::MAX as f64) as u16)
    }
    /// As fractional amps.
    pub fn amps(self) -> f64 {
        self.0 as f64 / 100.0
    }
    /// Rounded down to whole amps (the car only likes whole amps, spec §6.5).
    pub fn floor_whole(self) -> Self {
        CentiAmps(self.0 - self.0 % 100)
    }
    /// Rounded down to a multiple of `step` (whole amps for a step of 1 A; a zero step leaves
    /// the value as it is).
    pub fn floor_to(self, step: CentiAmps) -> Self {
        if step.0 == 0 {
            self
        } else {
            CentiAmps(self.0 - self.0 % step.0)
        }
    }
    /// Saturating subtraction.
    pub fn saturating_sub(self, o: Self) -> Self {
        CentiAmps(self.0.saturating_sub(o.0))
    }
}

impl Add for CentiAmps {
    type Output = CentiAmps;
    fn add(self, o: Self) -> Self {
        CentiAmps(self.0.saturating_add(o.0))
    }
}

impl Sub for CentiAmps {
    type Output = CentiAmps;
    fn sub(self, o: Self) -> Self {
        self.saturating_sub(o)
    }
}

impl std::iter::Sum for CentiAmps {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(CentiAmps(0), |a, b| a + b)
    }
}

impl fmt::Display for CentiAmps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} A", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Debug for CentiAmps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Current in amperes (fractional), for configuration and policy arithmetic.
pub type Amps = f64;
/// Power in watts.
pub type Watts = f64;
