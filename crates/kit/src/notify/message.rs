//! What a notification says: one [`Message`] per event worth telling a person about.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use twc_core::model::{ChargeSession, Event};

/// The kinds of notification; the `events` key enables each by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A car started charging.
    SessionStarted,
    /// A charge session ended (with its energy, and cost and solar share when the session
    /// carries them).
    SessionEnded,
    /// A charge plan will not reach, or did not reach, its target by departure.
    PlanMissed,
    /// A slave stopped answering, a meter went stale, a sink fails, the bus is lost, a car does
    /// not follow its offer.
    Fault,
}

impl Topic {
    /// Every topic, in the order the docs list them.
    pub const ALL: [Topic; 4] = [
        Topic::SessionStarted,
        Topic::SessionEnded,
        Topic::PlanMissed,
        Topic::Fault,
    ];

    /// The name in the `events` key.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::SessionStarted => "session_started",
            Topic::SessionEnded => "session_ended",
            Topic::PlanMissed => "plan_missed",
            Topic::Fault => "fault",
        }
    }

    /// The topic named `s`.
    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How urgent a notification is (ntfy's priorities 2, 3 and 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Informational (sessions).
    Low,
    /// Worth a look (a missed plan).
    Default,
    /// Something is wrong (faults).
    High,
}

/// One notification, ready for any channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// What kind.
    pub topic: Topic,
    /// One short line.
    pub title: String,
    /// The details, one or more lines.
    pub body: String,
    /// How urgent.
    pub priority: Priority,
    /// Short tags (ntfy shows them as emoji when they name one).
    pub tags: Vec<&'static str>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Equal keys are the same news: a repeat within the dedupe window is not sent.
    #[serde(skip)]
    pub key: String,
    /// The event as the engine emitted it (the generic webhook sends it along).
    pub event: Value,
}

/// The notification for `e`, or `None` when `e` is not one.
pub fn message_for(e: &Event) -> Option<Message> {
    let event = serde_json::to_value(e).unwrap_or(Value::Null);
    let m = |topic, title: String, body: String, priority, tags, at, key: String| Message {
        topic,
        title,
        body,
        priority,
        tags,
        at,
        key,
        event: event.clone(),
    };
    Some(match e {
        Event::SessionStarted { at, session } => m(
            Topic::SessionStarted,
            format!("Charging started at TWC {}", session.slave),
            format!("{} started charging.", car(session)),
            Priority::Low,
            vec!["electric_plug"],
            *at,
            format!("session_started|{}|{}", session.slave, session.started_at),
        ),
        Event::SessionEnded { at, session } => m(
            Topic::SessionEnded,
            format!("Charging ended at TWC {}", session.slave),
            session_summary(session, *at),
            Priority::Low,
            vec!["white_check_mark"],
            *at,
            format!("session_ended|{}|{}", session.slave, session.started_at),
        ),
        Event::PlanMissed {
            at,
            plan,
            departure,
            missing_kwh,
            passed,
        } => {
            let when = departure.format("%Y-%m-%d %H:%M UTC");
            let (title, body) = if *passed {
                (
                    format!("Charge plan {plan} missed its target"),
                    format!("Departure {when} passed with {missing_kwh:.1} kWh still missing."),
                )
            } else {
                (
                    format!("Charge plan {plan} will miss its target"),
                    format!(
                        "{missing_kwh:.1} kWh are still needed and cannot be charged by {when}; charging at the maximum."
                    ),
                )
            };
            m(
                Topic::PlanMissed,
                title,
                body,
                Priority::Default,
                vec!["alarm_clock"],
                *at,
                format!("plan_missed|{plan}|{}|{passed}", departure.timestamp()),
            )
        }
        Event::SlaveTimedOut { at, slave } => m(
            Topic::Fault,
            format!("TWC {slave} stopped answering"),
            format!(
                "TWC {slave} has not answered its heartbeats; it is offered nothing until it links again."
            ),
            Priority::High,
            vec!["warning"],
            *at,
            format!("fault|slave {slave}|timed out"),
        ),
        Event::Fault {
            at,
            component,
            message,
        } => m(
            Topic::Fault,
            format!("Fault in {component}"),
            message.clone(),
            Priority::High,
            vec!["warning"],
            *at,
            // The numbers in a message (amps, seconds) change while the fault flaps: the same
            // words from the same component are the same fault.
            format!(
                "fault|{component}|{}",
                message
                    .chars()
                    .filter(|c| !c.is_ascii_digit() && *c != '.')
                    .collect::<String>()
            ),
        ),
        _ => return None,
    })
}

fn car(s: &ChargeSession) -> String {
    match s.vin.as_deref() {
        Some(v) if !v.is_empty() => format!("The car {v}"),
        _ => "A car".into(),
    }
}

/// The body of a session-end notification: the car, the energy and the duration, then what
/// [`session_extras`] finds in the session record.
pub fn session_summary(s: &ChargeSession, ended: DateTime<Utc>) -> String {
    let mins = (ended - s.started_at).num_minutes().max(0);
    let mut out = format!(
        "{} charged {:.2} kWh in {} h {:02} min.",
        car(s),
        s.energy_kwh,
        mins / 60,
        mins % 60
    );
    // The engine's metrics, under the names the extension point reads; a share or cost the
    // engine could not measure (stale meter, no price) is left out, never shown as 0.
    let m = &s.metrics;
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        if m.unpriced_kwh == 0.0 && m.integrated_kwh > 0.0 && m.currency.is_some() {
            o.insert("cost".into(), m.grid_cost.into());
            o.insert("currency".into(), m.currency.clone().into());
        }
        if m.unmetered_kwh == 0.0 && m.integrated_kwh > 0.0 {
            o.insert(
                "solar_share".into(),
                (m.solar_kwh / m.integrated_kwh).into(),
            );
        }
        if let (Some(a), Some(b)) = (m.soc_start_pct, m.soc_end_pct) {
            o.insert("soc_start_pct".into(), a.into());
            o.insert("soc_end_pct".into(), b.into());
        }
    }
    for line in session_extras(&v) {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

/// **Extension point:** lines for what a session record carries beyond energy. Reads the
/// serialised session, so a field added to [`ChargeSession`] shows up without a change here
/// when it uses one of these names: `cost` (number) with `currency` (text), `solar_share`
/// (0..=1) or `solar_kwh` (number), `soc_start_pct`/`soc_end_pct`. Absent fields give no line.
pub fn session_extras(session: &Value) -> Vec<String> {
    let num = |k: &str| session.get(k).and_then(Value::as_f64);
    let mut lines = Vec::new();
    if let Some(cost) = num("cost") {
        let cur = session
            .get("currency")
            .and_then(Value::as_str)
            .unwrap_or("");
        lines.push(format!("Cost: {cost:.2} {cur}").trim_end().to_string());
    }
    match (num("solar_share"), num("solar_kwh")) {
        (Some(share), _) => lines.push(format!("Solar share: {:.0} %", share * 100.0)),
        (None, Some(kwh)) => lines.push(format!("Solar: {kwh:.2} kWh")),
        _ => {}
    }
    if let (Some(a), Some(b)) = (num("soc_start_pct"), num("soc_end_pct")) {
        lines.push(format!("State of charge: {a:.0} % → {b:.0} %"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use twc_core::protocol::TwcId;

    fn session(kwh: f64) -> ChargeSession {
        ChargeSession {
            slave: TwcId::from_u16(0x7777),
            vin: Some("5YJ3E1EA0KF000001".into()),
            started_at: "2026-11-02T17:00:00Z".parse().unwrap(),
            start_kwh: Some(100),
            energy_kwh: kwh,
            metrics: Default::default(),
        }
    }

    #[test]
    fn a_session_end_says_energy_and_duration() {
        let at = "2026-11-02T18:25:00Z".parse().unwrap();
        let m = message_for(&Event::SessionEnded {
            at,
            session: session(12.345),
        })
        .unwrap();
        assert_eq!(m.topic, Topic::SessionEnded);
        assert_eq!(m.title, "Charging ended at TWC 7777");
        assert_eq!(
            m.body,
            "The car 5YJ3E1EA0KF000001 charged 12.35 kWh in 1 h 25 min."
        );
    }

    #[test]
    fn a_session_end_says_the_engines_cost_solar_share_and_soc_and_leaves_out_unknowns() {
        let at = "2026-11-02T18:25:00Z".parse().unwrap();
        let mut s = session(10.0);
        s.metrics.integrated_kwh = 10.0;
        s.metrics.solar_kwh = 4.0;
        s.metrics.grid_cost = 1.8;
        s.metrics.currency = Some("EUR".into());
        s.metrics.soc_start_pct = Some(40.0);
        s.metrics.soc_end_pct = Some(80.0);
        let text = session_summary(&s, at);
        assert!(text.contains("Cost: 1.80 EUR"), "{text}");
        assert!(text.contains("Solar share: 40 %"), "{text}");
        assert!(text.contains("State of charge: 40 % → 80 %"), "{text}");
        s.metrics.unmetered_kwh = 1.0;
        s.metrics.unpriced_kwh = 2.0;
        let text = session_summary(&s, at);
        assert!(!text.contains("Cost") && !text.contains("Solar"), "{text}");
    }

    #[test]
    fn extras_show_cost_and_solar_share_when_the_record_has_them() {
        let v = serde_json::json!({"cost": 3.456, "currency": "EUR", "solar_share": 0.42});
        assert_eq!(
            session_extras(&v),
            vec![
                "Cost: 3.46 EUR".to_string(),
                "Solar share: 42 %".to_string()
            ]
        );
        assert!(session_extras(&serde_json::to_value(session(1.0)).unwrap()).is_empty());
    }

    #[test]
    fn a_flapping_fault_has_one_key_whatever_its_numbers() {
        let f = |msg: &str| {
            message_for(&Event::Fault {
                at: Utc::now(),
                component: "slave 7777".into(),
                message: msg.into(),
            })
            .unwrap()
            .key
        };
        assert_eq!(
            f("car draws 17.5 A, more than the limit 16.0 A"),
            f("car draws 18.1 A, more than the limit 16.0 A")
        );
        assert_ne!(f("car draws 17.5 A"), f("bus link lost"));
    }

    #[test]
    fn readings_are_not_notifications() {
        assert!(
            message_for(&Event::PolicyChanged {
                at: Utc::now(),
                from: "a".into(),
                to: "b".into(),
                reason: "c".into()
            })
            .is_none()
        );
    }
}
