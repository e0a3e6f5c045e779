//! The hub's order: no raise is queued while a lowering waits for its answer.

use super::*;
use crate::central::Limits;
use twc_core::model::LoadPointStatus;

fn hub() -> (Hub, Vec<mpsc::Receiver<Message>>) {
    let cfg = Arc::new(CentralConfig {
        allow_unknown: true,
        ..CentralConfig::default()
    });
    let mut hub = Hub {
        cfg,
        chargers: BTreeMap::new(),
        links: BTreeMap::new(),
        sent: BTreeMap::new(),
        next_tx: 0,
        msg_id: 0,
    };
    let mut rxs = Vec::new();
    for (i, id) in ["a", "b"].into_iter().enumerate() {
        let limits = Limits {
            max: 16.0,
            min: 6.0,
            phases: 1,
            password: String::new(),
        };
        let mut ch = Charger::new(id.into(), limits);
        ch.boot = Some(json!({}));
        ch.connectors.insert(1, Default::default());
        hub.chargers.insert(id.into(), ch);
        let (out, rx) = mpsc::channel(8);
        let (kill, _) = oneshot::channel();
        hub.links.insert(
            id.into(),
            Link {
                conn: i as u64,
                out,
                _kill: kill,
                queue: VecDeque::new(),
                in_flight: None,
                last_seen: Instant::now(),
            },
        );
        rxs.push(rx);
    }
    (hub, rxs)
}

fn status(a: f64, b: f64) -> Status {
    let lp = |n: &str, x: f64| LoadPointStatus {
        name: n.into(),
        allocated: CentiAmps::from_f64(x),
        ..Default::default()
    };
    Status {
        load_points: vec![lp("ocpp.a.1", a), lp("ocpp.b.1", b)],
        ..Default::default()
    }
}

fn limits_of(rx: &mut mpsc::Receiver<Message>) -> Vec<(String, f64)> {
    let mut v = Vec::new();
    while let Ok(m) = rx.try_recv() {
        let f: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        let p = &f[3]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0];
        v.push((
            f[1].as_str().unwrap().to_string(),
            p["limit"].as_f64().unwrap(),
        ));
    }
    v
}

#[tokio::test]
async fn a_raise_waits_until_every_lowering_was_answered() {
    let (mut hub, mut rxs) = hub();
    // First contact: both get their allocation (a first limit counts as a lowering).
    hub.sync_profiles(&status(16.0, 0.0));
    hub.pump();
    let a1 = limits_of(&mut rxs[0]);
    let b1 = limits_of(&mut rxs[1]);
    assert_eq!((a1[0].1, b1[0].1), (16.0, 0.0));
    for (id, r) in [("a", &a1[0].0), ("b", &b1[0].0)] {
        let text = rpc::result(r, &json!({"status": "Accepted"}));
        let conn = hub.links[id].conn;
        hub.event(
            Event::Text {
                id: id.into(),
                conn,
                text,
            },
            &mut Vec::new(),
        );
    }
    // a is lowered and b raised in the same allocation: only a's lowering goes out.
    hub.sync_profiles(&status(10.0, 6.0));
    hub.pump();
    let a2 = limits_of(&mut rxs[0]);
    assert_eq!(a2.iter().map(|x| x.1).collect::<Vec<_>>(), vec![10.0]);
    assert!(
        limits_of(&mut rxs[1]).is_empty(),
        "b raised before a's answer"
    );
    hub.sync_profiles(&status(10.0, 6.0));
    hub.pump();
    assert!(
        limits_of(&mut rxs[1]).is_empty(),
        "b raised before a's answer"
    );
    // a answers: now b is raised.
    let text = rpc::result(&a2[0].0, &json!({"status": "Accepted"}));
    let conn = hub.links["a"].conn;
    hub.event(
        Event::Text {
            id: "a".into(),
            conn,
            text,
        },
        &mut Vec::new(),
    );
    hub.sync_profiles(&status(10.0, 6.0));
    hub.pump();
    assert_eq!(
        limits_of(&mut rxs[1])
            .iter()
            .map(|x| x.1)
            .collect::<Vec<_>>(),
        vec![6.0]
    );
    assert!(hub.chargers["a"].profile_problem.is_none());
    // A refused profile is a problem shown on the charger.
    hub.sync_profiles(&status(8.0, 6.0));
    hub.pump();
    let a3 = limits_of(&mut rxs[0]);
    let text = rpc::result(&a3[0].0, &json!({"status": "Rejected"}));
    hub.event(
        Event::Text {
            id: "a".into(),
            conn,
            text,
        },
        &mut Vec::new(),
    );
    assert!(
        hub.chargers["a"]
            .profile_problem
            .as_deref()
            .is_some_and(|p| p.contains("Rejected")),
        "{:?}",
        hub.chargers["a"].profile_problem
    );
}
