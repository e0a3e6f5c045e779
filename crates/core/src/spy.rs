//! Listen-only bus monitor (`twcmanager spy`): decode and describe the traffic between a real
//! master and its slaves, for diagnosing installations. Never transmits.

use crate::plugin::{Comms, PluginError, Received};
use crate::protocol::{Frame, MasterCommand, Message, MessageCode, message::ascii};
use std::time::Duration;
use tokio::time::Instant;

fn command_name(c: MasterCommand) -> &'static str {
    match c.0 {
        0x00 => "no change",
        0x02 => "error",
        0x05 => "set limit (protocol 1)",
        0x06 => "raise 2 A",
        0x07 => "lower 2 A",
        0x08 => "acknowledge stop",
        0x09 => "set limit",
        _ => "unknown command",
    }
}

fn code_text(code: MessageCode) -> String {
    let [a, b] = code.0.to_be_bytes();
    format!("{a:02X} {b:02X}")
}

/// One line describing a decoded message, e.g.
/// `"FB E0 master 7777 → slave 1234 heartbeat: set limit 16.00 A (09)"`.
pub fn describe(msg: &Message) -> String {
    let code = code_text(msg.code());
    let body = match msg {
        Message::MasterLinkReady1 { master, sign } | Message::MasterLinkReady2 { master, sign } => {
            format!("master {master} link-ready, sign {sign:02X}")
        }
        Message::SlaveLinkReady {
            slave,
            sign,
            max_amps,
            version,
        } => format!(
            "slave {slave} link-ready, sign {sign:02X}, max {max_amps}, protocol {}",
            version.number()
        ),
        Message::MasterHeartbeat {
            master,
            slave,
            command,
            amps,
            master_plugged_in,
            ..
        } => {
            let mut s = format!(
                "master {master} → slave {slave} heartbeat: {} ({:02X})",
                command_name(*command),
                command.0
            );
            if command.carries_amps() {
                s.push_str(&format!(" {amps}"));
            }
            if *master_plugged_in {
                s.push_str(", master has a car");
            }
            s
        }
        Message::SlaveHeartbeat {
            slave,
            master,
            state,
            max,
            actual,
            ..
        } => format!(
            "slave {slave} → master {master} heartbeat: {} ({:02X}), limit {max}, car draws {actual}",
            state.name(),
            state.0
        ),
        Message::Idle => "idle broadcast".to_string(),
        Message::Query {
            code,
            master,
            slave,
            len,
        } => format!(
            "master {master} → slave {slave} query {} ({len} bytes)",
            query_name(*code)
        ),
        Message::LifetimeKwh {
            slave, kwh, volts, ..
        } => format!(
            "slave {slave} lifetime {kwh} kWh, {}/{}/{} V",
            volts[0], volts[1], volts[2]
        ),
        Message::Firmware { slave, version } => format!(
            "slave {slave} firmware {}.{}.{}.{}",
            version[0], version[1], version[2], version[3]
        ),
        Message::Serial { slave, serial } => format!("slave {slave} serial {serial:?}"),
        Message::VinPart { slave, part, chars } => {
            if chars.iter().all(|&c| c == 0) {
                format!("slave {slave} VIN part {part}: none (no Tesla, or CAN off)")
            } else {
                format!("slave {slave} VIN part {part}: {:?}", ascii(chars))
            }
        }
        Message::StartCharging { master, slave } => {
            format!("master {master} → slave {slave} start charging")
        }
        Message::StopCharging { master, slave } => {
            format!("master {master} → slave {slave} stop charging")
        }
        Message::StartAck { slave } => format!("slave {slave} acknowledges start"),
        Message::StopAck { slave } => format!("slave {slave} acknowledges stop"),
        Message::Unknown { payload, .. } => {
            format!(
                "unknown message, payload {}",
                crate::protocol::codec::hex(payload)
            )
        }
    };
    format!("{code} {body}")
}

fn query_name(code: MessageCode) -> &'static str {
    match code {
        MessageCode::QUERY_KWH => "lifetime kWh and voltage",
        MessageCode::QUERY_FIRMWARE => "firmware",
        MessageCode::QUERY_SERIAL => "serial number",
        MessageCode::QUERY_VIN1 => "VIN part 1",
        MessageCode::QUERY_VIN2 => "VIN part 2",
        MessageCode::QUERY_VIN3 => "VIN part 3",
        MessageCode::QUERY_FIRMWARE_OLD => "firmware (older)",
        MessageCode::QUERY_TSN => "(S)TSN",
        MessageCode::QUERY_MODEL => "model number",
        MessageCode::QUERY_PLUG => "plug state",
        _ => "unknown",
    }
}

/// One line for a received frame: its decoded description, or why it could not be decoded.
pub fn describe_frame(frame: &Frame) -> String {
    match Message::decode(frame) {
        Ok(m) => describe(&m),
        Err(e) => format!("{} malformed: {e}", code_text(MessageCode(frame.code()))),
    }
}

/// One line for anything a [`Comms`] receive produced.
pub fn describe_received(r: &Received) -> String {
    match r {
        Received::Frame(f) => describe_frame(f),
        Received::Dropped(e) => format!("dropped: {e}"),
    }
}

/// Options of [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpyOptions {
    /// Also print each frame's bytes in hex.
    pub hex: bool,
    /// Stop after this many lines (frames and drops); `None` = until cancelled.
    pub limit: Option<u64>,
}

impl Default for SpyOptions {
    fn default() -> Self {
        SpyOptions {
            hex: true,
            limit: None,
        }
    }
}

/// Listen on `comms` and hand one line per received frame (or dropped frame, or link event) to
/// `out`, prefixed with the seconds since the start. Never sends. A broken link is reported and
/// re-opened with backoff (0.5 s doubling to 5 s). Returns after `opts.limit` lines, if set.
pub async fn run(
    comms: &mut dyn Comms,
    opts: SpyOptions,
    mut out: impl FnMut(&str) + Send,
) -> Result<(), PluginError> {
    let start = Instant::now();
    let mut lines = 0u64;
    let mut backoff = Duration::from_millis(500);
    loop {
        if opts.limit.is_some_and(|l| lines >= l) {
            return Ok(());
        }
        let stamp = |start: Instant| format!("{:>9.3}", start.elapsed().as_secs_f64());
        match comms.recv().await {
            Ok(r) => {
                backoff = Duration::from_millis(500);
                let mut line = format!("{}  {}", stamp(start), describe_received(&r));
                if opts.hex
                    && let Received::Frame(f) = &r
                {
                    line.push_str(&format!("  [{}]", f.hex()));
                }
                out(&line);
                lines += 1;
            }
            Err(e) => {
                out(&format!(
                    "{}  link down: {} (retrying)",
                    stamp(start),
                    e.chain()
                ));
                loop {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if comms.reconnect().await.is_ok() {
                        out(&format!("{}  link up", stamp(start)));
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CentiAmps;
    use crate::protocol::{ProtocolVersion, SlaveState, TwcId};

    #[test]
    fn heartbeat_lines_name_both_ends_and_the_amps() {
        let m = Message::MasterHeartbeat {
            master: TwcId::from_u16(0x7777),
            slave: TwcId::from_u16(0x1234),
            command: MasterCommand::SET_LIMIT_V2,
            amps: CentiAmps::from_amps(16),
            master_plugged_in: false,
            version: ProtocolVersion::V2,
        };
        assert_eq!(
            describe(&m),
            "FB E0 master 7777 → slave 1234 heartbeat: set limit (09) 16.00 A"
        );
        let s = Message::SlaveHeartbeat {
            slave: TwcId::from_u16(0x1234),
            master: TwcId::from_u16(0x7777),
            state: SlaveState::CHARGING,
            max: CentiAmps::from_amps(16),
            actual: CentiAmps(1520),
            version: ProtocolVersion::V2,
        };
        let line = describe(&s);
        assert!(
            line.starts_with("FD E0 slave 1234 → master 7777 heartbeat: "),
            "{line}"
        );
        assert!(line.ends_with("limit 16.00 A, car draws 15.20 A"), "{line}");
    }

    #[tokio::test]
    async fn run_prints_one_line_per_frame_and_never_sends() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, mut far) = tokio::io::duplex(1024);
        let mut comms = crate::transport::StreamComms::new(near, "test");
        let lr = Message::SlaveLinkReady {
            slave: TwcId::from_u16(0x1234),
            sign: 0x56,
            max_amps: CentiAmps::from_amps(32),
            version: ProtocolVersion::V2,
        }
        .encode()
        .unwrap();
        let mut wire = lr.to_wire();
        wire.extend_from_slice(&[0xC0, 0xFD, 0xE2, 0x12, 0xC0]);
        far.write_all(&wire).await.unwrap();
        let mut lines = Vec::new();
        run(
            &mut comms,
            SpyOptions {
                hex: false,
                limit: Some(2),
            },
            |l| lines.push(l.to_string()),
        )
        .await
        .unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].ends_with("FD E2 slave 1234 link-ready, sign 56, max 32.00 A, protocol 2"),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with("dropped: truncated frame of 3 bytes"),
            "{lines:?}"
        );
        drop(comms);
        let mut rest = Vec::new();
        far.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "spy sent {rest:02X?}");
    }

    #[test]
    fn every_frame_gets_a_line_even_when_malformed() {
        // A slave link-ready of an odd length: known code, bad length.
        let f = Frame::from_body(&[
            0xFD, 0xE2, 0x12, 0x34, 0x56, 0x0C, 0x80, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let line = describe_frame(&f);
        assert!(line.starts_with("FD E2 "), "{line}");
        let d = describe_received(&Received::Dropped(crate::protocol::FrameError::Truncated(
            5,
        )));
        assert_eq!(d, "dropped: truncated frame of 5 bytes");
    }
}
