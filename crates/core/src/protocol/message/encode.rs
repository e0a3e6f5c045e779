//! Encoding messages to frames.

use super::*;

impl Message {
    /// Encode to a frame in its canonical length: link-readies 14 bytes from a master,
    /// heartbeats per `version`, queries 16 bytes unless they say otherwise, long replies 20.
    /// Dangerous codes are refused.
    pub fn encode(&self) -> Result<Frame, MessageError> {
        let mut b: Vec<u8> = Vec::with_capacity(20);
        let code = self.code();
        if code.is_dangerous() {
            return Err(MessageError::Refused(code));
        }
        b.extend_from_slice(&code.0.to_be_bytes());
        let target_len = match self {
            Message::MasterLinkReady1 { master, sign }
            | Message::MasterLinkReady2 { master, sign } => {
                b.extend_from_slice(&master.0);
                b.push(*sign);
                14
            }
            Message::SlaveLinkReady {
                slave,
                sign,
                max_amps,
                version,
            } => {
                b.extend_from_slice(&slave.0);
                b.push(*sign);
                b.extend_from_slice(&max_amps.0.to_be_bytes());
                version.frame_len()
            }
            Message::MasterHeartbeat {
                master,
                slave,
                command,
                amps,
                master_plugged_in,
                version,
            } => {
                b.extend_from_slice(&master.0);
                b.extend_from_slice(&slave.0);
                b.push(command.0);
                b.extend_from_slice(&amps.0.to_be_bytes());
                b.push(u8::from(*master_plugged_in));
                version.frame_len()
            }
            Message::SlaveHeartbeat {
                slave,
                master,
                state,
                max,
                actual,
                version,
            } => {
                b.extend_from_slice(&slave.0);
                b.extend_from_slice(&master.0);
                b.push(state.0);
                b.extend_from_slice(&max.0.to_be_bytes());
                b.extend_from_slice(&actual.0.to_be_bytes());
                version.frame_len()
            }
            Message::Idle => 14,
            Message::Query {
                master, slave, len, ..
            } => {
                b.extend_from_slice(&master.0);
                b.extend_from_slice(&slave.0);
                (*len).clamp(13, 20)
            }
            Message::LifetimeKwh {
                slave,
                kwh,
                volts,
                phase_current_bytes,
            } => {
                b.extend_from_slice(&slave.0);
                b.extend_from_slice(&kwh.to_be_bytes());
                for v in volts {
                    b.extend_from_slice(&v.to_be_bytes());
                }
                match phase_current_bytes {
                    Some(c) => {
                        b.extend_from_slice(c);
                        20
                    }
                    None => 16,
                }
            }
            Message::Firmware { slave, version } => {
                b.extend_from_slice(&slave.0);
                b.extend_from_slice(version);
                16
            }
            Message::Serial { slave, serial } => {
                b.extend_from_slice(&slave.0);
                let mut s = serial.as_bytes().to_vec();
                s.resize(11, 0);
                b.extend_from_slice(&s);
                20
            }
            Message::VinPart { slave, part, chars } => {
                b.extend_from_slice(&slave.0);
                let mut c = chars.clone();
                c.resize(if *part == 3 { 3 } else { 7 }, 0);
                b.extend_from_slice(&c);
                20
            }
            Message::StartCharging { master, slave } | Message::StopCharging { master, slave } => {
                b.extend_from_slice(&master.0);
                b.extend_from_slice(&slave.0);
                16
            }
            Message::StartAck { slave } | Message::StopAck { slave } => {
                b.extend_from_slice(&slave.0);
                16
            }
            Message::Unknown { payload, .. } => {
                b.extend_from_slice(payload);
                b.len() + 1
            }
        };
        if b.len() + 1 > target_len || !(13..=20).contains(&target_len) {
            return Err(MessageError::BadLength {
                code,
                len: b.len() + 1,
            });
        }
        b.resize(target_len - 1, 0);
        Ok(Frame::from_body(&b))
    }
}
