//! TWCManager's WebIPC messages, without I/O: a request is `time` (u32) and `id` (u16) in the
//! machine's byte order, then ASCII text; the web page sends it as message type 2 and takes the
//! reply, the same `time` and `id` then text, as type 1. Commands get no reply; queries get one
//! message of at most 290 characters, or (`dumpState`) a message holding the packet count as one
//! byte followed by that many packets.

use std::time::Duration;
use twc_core::engine::Command;
use twc_core::model::{Schedule, ScheduleWindow, Settings, Status};
use twc_core::protocol::MessageCode;

/// Message type of requests (from the web page).
pub const REQUEST_TYPE: i64 = 2;
/// Message type of replies (to the web page).
pub const REPLY_TYPE: i64 = 1;
/// Longest reply text in one message (TWCManager's limit; the page reads 300 bytes).
pub const PACKET_CHARS: usize = 290;
/// `time` + `id`.
pub const HEADER_BYTES: usize = 6;

/// A request taken apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `getStatus`: the back-quote separated status line.
    GetStatus,
    /// `setNonScheduledAmps=N`: -1 = follow green energy, 0 = do not charge, N = charge at N A.
    SetNonScheduledAmps(i64),
    /// `setScheduledAmps=A\nstartTime=H:M\nendTime=H:M\ndays=BITMAP` (bit 0 = Monday).
    SetScheduledAmps {
        /// Amps; ≤ 0 turns the schedule off.
        amps: i64,
        /// Start, minutes after midnight (negative = none).
        start: i32,
        /// End, minutes after midnight.
        end: i32,
        /// Weekdays, bit 0 = Monday.
        days: u8,
    },
    /// `setResumeTrackGreenEnergyTime=H:M`.
    SetResumeTrackGreenEnergyTime,
    /// `sendTWCMsg=HEX`: a raw frame for the bus.
    SendTwcMsg(Vec<u8>),
    /// `getLastTWCMsgResponse`.
    GetLastTwcMsgResponse,
    /// `carApiEmailPassword=…` (the password is never kept, nor logged).
    CarApiEmailPassword,
    /// `setMasterHeartbeatData=HEX`.
    SetMasterHeartbeatData,
    /// `chargeNow`: the wiring maximum for 24 hours.
    ChargeNow,
    /// `chargeNowCancel`.
    ChargeNowCancel,
    /// `dumpState`.
    DumpState,
    /// `setDebugLevel=N`.
    SetDebugLevel(i64),
    /// Anything else (the text, cut to 60 characters, for the log).
    Unknown(String),
}

/// Split a raw message into (`time`, `id`, text). `None` when shorter than the header.
pub fn split(raw: &[u8]) -> Option<(u32, u16, &[u8])> {
    if raw.len() < HEADER_BYTES {
        return None;
    }
    let time = u32::from_ne_bytes(raw[0..4].try_into().ok()?);
    let id = u16::from_ne_bytes(raw[4..6].try_into().ok()?);
    Some((time, id, &raw[HEADER_BYTES..]))
}

/// A message with the header of the request it answers.
pub fn packet(time: u32, id: u16, text: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_BYTES + text.len());
    v.extend_from_slice(&time.to_ne_bytes());
    v.extend_from_slice(&id.to_ne_bytes());
    v.extend_from_slice(text);
    v
}

/// The messages that answer a query: one (cut to [`PACKET_CHARS`]), or for `packets` the
/// count byte and the packets.
pub fn reply_packets(time: u32, id: u16, text: &str, packets: bool) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    if !packets {
        return vec![packet(time, id, &bytes[..bytes.len().min(PACKET_CHARS)])];
    }
    let chunks: Vec<&[u8]> = bytes.chunks(PACKET_CHARS).take(255).collect();
    let mut out = vec![packet(time, id, &[chunks.len() as u8])];
    out.extend(chunks.into_iter().map(|c| packet(time, id, c)));
    out
}

fn int_after(text: &str) -> Option<i64> {
    let digits: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

fn hhmm(text: &str) -> Option<i32> {
    let (h, m) = text.trim().split_once(':')?;
    let h: i32 = h.trim().parse().ok()?;
    let m: i32 = m.trim().parse().ok()?;
    Some(if h < 0 { -1 } else { h * 60 + m })
}

fn hex(text: &str) -> Option<Vec<u8>> {
    let h: String = text.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    if h.is_empty() || !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect()
}

/// Take a request text apart (TWCManager's prefixes, exact).
pub fn parse(text: &[u8]) -> Request {
    let t = String::from_utf8_lossy(text);
    let t = t.trim_end_matches('\0');
    let unknown = || Request::Unknown(t.chars().take(60).collect());
    match t {
        "getStatus" => return Request::GetStatus,
        "getLastTWCMsgResponse" => return Request::GetLastTwcMsgResponse,
        "chargeNow" => return Request::ChargeNow,
        "chargeNowCancel" => return Request::ChargeNowCancel,
        "dumpState" => return Request::DumpState,
        _ => {}
    }
    if let Some(v) = t.strip_prefix("setNonScheduledAmps=") {
        return int_after(v).map_or_else(unknown, Request::SetNonScheduledAmps);
    }
    if let Some(v) = t.strip_prefix("setScheduledAmps=") {
        let mut lines = v.split('\n');
        let amps = lines.next().and_then(int_after);
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .map(str::to_string)
        };
        let (start, end, days) = (field("startTime="), field("endTime="), field("days="));
        return match (
            amps,
            start.as_deref().and_then(hhmm),
            end.as_deref().and_then(hhmm),
            days.as_deref().and_then(int_after),
        ) {
            (Some(amps), Some(start), Some(end), Some(days)) => Request::SetScheduledAmps {
                amps,
                start,
                end,
                days: (days & 0x7f) as u8,
            },
            _ => unknown(),
        };
    }
    if t.starts_with("setResumeTrackGreenEnergyTime=") {
        return Request::SetResumeTrackGreenEnergyTime;
    }
    if let Some(v) = t.strip_prefix("sendTWCMsg=") {
        return hex(v).map_or_else(unknown, Request::SendTwcMsg);
    }
    if t.starts_with("carApiEmailPassword=") {
        return Request::CarApiEmailPassword;
    }
    if t.starts_with("setMasterHeartbeatData=") {
        return Request::SetMasterHeartbeatData;
    }
    if let Some(v) = t.strip_prefix("setDebugLevel=") {
        return int_after(v).map_or_else(unknown, Request::SetDebugLevel);
    }
    unknown()
}

/// Python's `str()` of a float: `6.0`, `6.5`.
fn py(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn clock(minutes: Option<u16>) -> String {
    match minutes {
        Some(m) => format!("{:02}:{:02}", m / 60, m % 60),
        None => "-1:00".into(),
    }
}

/// TWCManager's non-scheduled amps: -1 = green, 0 = do not charge.
fn non_scheduled(s: &Settings) -> i64 {
    match s.non_scheduled_action.as_str() {
        "green" => -1,
        "stop" => 0,
        _ => s.non_scheduled_amps.round() as i64,
    }
}

/// The `getStatus` reply, field for field as TWCManager writes it.
pub fn status_line(st: &Status) -> String {
    let s = &st.settings;
    let charge_now = s.charge_now.map_or(0.0, |c| c.amps);
    let sched = &s.schedule;
    let first = sched.windows.first();
    let days: u8 = sched
        .windows
        .iter()
        .filter(|w| (1..=7).contains(&w.weekday))
        .fold(0, |b, w| b | 1 << (w.weekday - 1));
    let scheduled = if sched.enabled {
        sched.amps.round() as i64
    } else {
        -1
    };
    let mut line = format!(
        "{:.2}`{:.2}`{:.2}`{:.2}`{}`{}`{}`{}`{}`{}`0`{}",
        st.policy.budget.amps(),
        st.wiring_max_all.amps(),
        st.min_amps_per_twc.amps(),
        charge_now,
        non_scheduled(s),
        scheduled,
        clock(first.map(|w| w.start_minute)),
        clock(first.map(|w| w.end_minute)),
        days,
        clock(None),
        st.slaves.len(),
    );
    for sl in &st.slaves {
        line.push_str(&format!(
            "`{}~{}~{:.2}~{}~{}",
            sl.id,
            py(sl.max_amps.amps()),
            sl.actual.amps(),
            py(sl.offered.amps()),
            sl.state
        ));
    }
    line
}

/// What to do for a request: a command for the engine, a reply, or neither (with a log line).
#[derive(Debug, Clone)]
pub enum Action {
    /// Send this command to the engine (no reply: the page does not wait for one).
    Command(Command),
    /// Answer with this text (`true`: in packets).
    Reply(String, bool),
    /// Neither; the reason is logged.
    Refuse(String),
}

/// Decide what a request does, given the status now.
pub fn act(req: &Request, st: &Status) -> Action {
    match req {
        Request::GetStatus => Action::Reply(status_line(st), false),
        Request::SetNonScheduledAmps(n) => Action::Command(match *n {
            ..0 => Command::SetNonScheduled { action: Some("green".into()), amps: None },
            0 => Command::SetNonScheduled { action: Some("stop".into()), amps: None },
            n => Command::SetNonScheduled { action: Some("charge".into()), amps: Some(n as f64) },
        }),
        Request::SetScheduledAmps { amps, start, end, days } => {
            let on = *amps > 0 && *start >= 0 && *end >= 0;
            let windows = if on {
                (0..7u8)
                    .filter(|i| days & (1 << i) != 0)
                    .map(|i| ScheduleWindow {
                        weekday: i + 1,
                        start_minute: (*start).clamp(0, 1439) as u16,
                        end_minute: (*end).clamp(0, 1439) as u16,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Action::Command(Command::SetSchedule(Box::new(Schedule {
                enabled: on && !windows.is_empty(),
                amps: (*amps).max(0) as f64,
                windows,
                ..st.settings.schedule.clone()
            })))
        }
        Request::ChargeNow => Action::Command(Command::ChargeNow {
            amps: st.wiring_max_all.amps(),
            duration: Duration::from_secs(24 * 3600),
        }),
        Request::ChargeNowCancel => Action::Command(Command::CancelChargeNow),
        Request::SendTwcMsg(bytes) => {
            let code = match bytes.as_slice() {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                _ => return Action::Refuse("sendTWCMsg needs at least two bytes".into()),
            };
            if matches!(code, 0xFC19 | 0xFC1A | 0xFBE8) {
                return Action::Refuse(format!("sendTWCMsg {code:04X} could disable or crash the TWC; refused"));
            }
            // Only the queries the protocol spec marks safe reach the bus (the engine checks).
            Action::Command(Command::DebugQuery { slave: None, code: MessageCode(code) })
        }
        Request::GetLastTwcMsgResponse => Action::Reply(
            st.bus
                .last_reply
                .as_deref()
                .map(spaced_hex)
                .unwrap_or_else(|| "None".into()),
            false,
        ),
        Request::DumpState => Action::Reply(dump(st), true),
        Request::SetResumeTrackGreenEnergyTime => Action::Refuse(
            "setResumeTrackGreenEnergyTime has no equivalent; daytime green tracking is [policy] daytime_green".into(),
        ),
        Request::CarApiEmailPassword => Action::Refuse(
            "carApiEmailPassword: twcmanager has no Tesla API login (the password was not kept)".into(),
        ),
        Request::SetMasterHeartbeatData => Action::Refuse(
            "setMasterHeartbeatData would bypass the wiring limits; refused".into(),
        ),
        Request::SetDebugLevel(_) => Action::Refuse(
            "setDebugLevel: log levels are [logging.console] level or RUST_LOG".into(),
        ),
        Request::Unknown(t) => Action::Refuse(format!("unknown WebIPC request {t:?}")),
    }
}

/// "FD19…" (any separators) as TWCManager's "FD 19 …".
fn spaced_hex(h: &str) -> String {
    let digits: Vec<char> = h.chars().filter(char::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|c| c.iter().collect::<String>().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(" ")
}

fn dump(st: &Status) -> String {
    let mut s = format!(
        "policy={}, budget={:.2}, wiringMaxAmpsAllTWCs={:.2}, wiringMaxAmpsPerTWC={:.2}, minAmpsPerTWC={:.2}, linkUp={}, framesTx={}\n",
        st.policy.name,
        st.policy.budget.amps(),
        st.wiring_max_all.amps(),
        st.wiring_max_per_twc.amps(),
        st.min_amps_per_twc.amps(),
        st.bus.link_up,
        st.bus.frames_tx,
    );
    s.push_str("slaveTWCRoundRobin:\n");
    for sl in &st.slaves {
        s.push_str(&format!(
            "TWCID={} state={} ({}) maxAmps={} offered={:.2} actual={:.2} volts={:?} vin={}\n",
            sl.id,
            sl.state,
            sl.state_name,
            py(sl.max_amps.amps()),
            sl.offered.amps(),
            sl.actual.amps(),
            sl.volts,
            sl.vin.as_deref().unwrap_or("-"),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_packets() {
        let p = packet(1_700_000_000, 4242, b"getStatus");
        assert_eq!(p.len(), 6 + 9);
        assert_eq!(split(&p), Some((1_700_000_000, 4242, &b"getStatus"[..])));
        assert_eq!(split(b"abc"), None);
        let long = "x".repeat(700);
        let one = reply_packets(1, 2, &long, false);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].len(), 6 + PACKET_CHARS);
        let many = reply_packets(1, 2, &long, true);
        assert_eq!(many.len(), 4, "count + 290 + 290 + 120");
        assert_eq!(many[0][6], 3);
        assert_eq!(many[3].len(), 6 + 120);
    }

    #[test]
    fn requests_as_the_page_writes_them() {
        assert_eq!(parse(b"getStatus"), Request::GetStatus);
        assert_eq!(
            parse(b"setNonScheduledAmps=-1"),
            Request::SetNonScheduledAmps(-1)
        );
        assert_eq!(
            parse(b"setScheduledAmps=16\nstartTime=22:30\nendTime=6:00\ndays=96"),
            Request::SetScheduledAmps {
                amps: 16,
                start: 1350,
                end: 360,
                days: 96
            }
        );
        assert_eq!(
            parse(b"setScheduledAmps=-1\nstartTime=-1:00\nendTime=-1:00\ndays=0"),
            Request::SetScheduledAmps {
                amps: -1,
                start: -1,
                end: -1,
                days: 0
            }
        );
        assert_eq!(
            parse(b"sendTWCMsg=FB1B"),
            Request::SendTwcMsg(vec![0xFB, 0x1B])
        );
        assert!(matches!(parse(b"sendTWCMsg=FB1"), Request::Unknown(_)));
        assert!(matches!(parse(b"setScheduledAmps=16"), Request::Unknown(_)));
        assert_eq!(
            parse(b"carApiEmailPassword=a@b\nsecret"),
            Request::CarApiEmailPassword
        );
    }

    #[test]
    fn brick_frames_and_heartbeat_overrides_are_refused() {
        let st = Status::default();
        for req in [
            Request::SendTwcMsg(vec![0xFC, 0x19]),
            Request::SendTwcMsg(vec![0xFC, 0x1A]),
            Request::SendTwcMsg(vec![0xFB, 0xE8]),
            Request::SetMasterHeartbeatData,
        ] {
            assert!(matches!(act(&req, &st), Action::Refuse(_)), "{req:?}");
        }
        assert!(matches!(
            act(&Request::SendTwcMsg(vec![0xFB, 0x1B]), &st),
            Action::Command(_)
        ));
    }
}
