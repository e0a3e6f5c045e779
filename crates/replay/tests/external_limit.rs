//! `Command::SetExternalLimit` (an OCPP central system's charging profile, …) inside the running
//! engine with two simulated TWCs (paused time): it lowers one slave or the site's budget, the
//! lowest of several sources wins, and no value can lift an offer above the wiring limits.

use std::time::Duration;
use twc_core::engine::{self, Command, CommandError, EngineConfig, EngineHandle};
use twc_core::master::MasterConfig;
use twc_core::model::{CentiAmps, Settings};
use twc_core::protocol::TwcId;
use twc_sim::{CarConfig, SimSlave, SlaveConfig, duplex_pair};

const A: TwcId = TwcId([0x30, 0x03]);
const B: TwcId = TwcId([0x31, 0x03]);

fn two_cars() -> (EngineHandle, twc_sim::SimHandle) {
    let slaves: Vec<SimSlave> = [A, B]
        .into_iter()
        .map(|id| SimSlave {
            slave: SlaveConfig::eu().with_id(id),
            car: CarConfig::tesla(),
        })
        .collect();
    let (comms, sim) = duplex_pair(slaves);
    let cfg = EngineConfig {
        master: MasterConfig {
            wiring_max_all: CentiAmps::from_amps(24),
            wiring_max_per_twc: CentiAmps::from_amps(16),
            ..MasterConfig::default()
        },
        ..EngineConfig::default()
    };
    let settings = Settings {
        non_scheduled_amps: 24.0,
        ..Settings::default()
    };
    let eng = engine::spawn(cfg, Box::new(comms), Vec::new(), settings);
    (eng.handle, sim)
}

/// Offered whole amps of A and B, after every round of the last `secs` seconds checked against
/// the wiring limits.
async fn settle(h: &EngineHandle, secs: u64) -> (u16, u16) {
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = h.status();
        let sum: u32 = s.slaves.iter().map(|s| u32::from(s.offered.0)).sum();
        assert!(sum <= 2400, "sum of offers {sum} cA above the 24 A wiring");
        for sl in &s.slaves {
            assert!(sl.offered.0 <= 1600, "{} offered {}", sl.id, sl.offered);
        }
    }
    let s = h.status();
    let get = |id| {
        s.slaves
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.offered.0 / 100)
            .unwrap_or(0)
    };
    (get(A), get(B))
}

fn limit(source: &str, slave: Option<TwcId>, amps: Option<f64>) -> Command {
    Command::SetExternalLimit {
        source: source.into(),
        slave,
        amps,
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_external_limit_lowers_and_never_lifts_above_the_wiring() {
    let (h, _sim) = two_cars();
    assert_eq!(settle(&h, 40).await, (12, 12));

    // One slave limited: the other gets the rest, up to its own cap.
    h.command(limit("ocpp", Some(A), Some(8.0))).await.unwrap();
    assert_eq!(settle(&h, 30).await, (8, 16));

    // A second source with a lower limit wins while it is set.
    h.command(limit("other", Some(A), Some(6.0))).await.unwrap();
    assert_eq!(settle(&h, 30).await, (6, 16));
    h.command(limit("other", Some(A), None)).await.unwrap();
    assert_eq!(settle(&h, 30).await, (8, 16));

    // A limit above the wiring lifts nothing.
    h.command(limit("ocpp", Some(A), Some(100.0)))
        .await
        .unwrap();
    h.command(limit("ocpp", None, Some(1000.0))).await.unwrap();
    assert_eq!(settle(&h, 30).await, (12, 12));

    // The site's budget: 13 A cannot give two cars 6 A each and the rest fairly, but never more.
    h.command(limit("ocpp", None, Some(13.0))).await.unwrap();
    let (a, b) = settle(&h, 30).await;
    assert!(a + b <= 13 && a + b >= 12, "({a}, {b})");

    assert_eq!(h.status().policy.limited_by.as_deref(), Some("ocpp"));

    // 0 A for the site stops both.
    h.command(limit("ocpp", None, Some(0.0))).await.unwrap();
    assert_eq!(settle(&h, 30).await, (0, 0));

    // Bad values are refused and change nothing.
    for bad in [f64::NAN, -1.0, f64::INFINITY] {
        let e = h.command(limit("ocpp", None, Some(bad))).await.unwrap_err();
        assert!(matches!(e, CommandError::Invalid(_)), "{e:?}");
    }
    let e = h.command(limit(" ", None, Some(5.0))).await.unwrap_err();
    assert!(e.to_string().contains("source"), "{e}");
    assert_eq!(settle(&h, 10).await, (0, 0));

    // Cleared: back to the policy's share.
    h.command(limit("ocpp", None, None)).await.unwrap();
    h.command(limit("ocpp", Some(A), None)).await.unwrap();
    assert_eq!(settle(&h, 40).await, (12, 12));
    assert_ne!(h.status().policy.limited_by.as_deref(), Some("ocpp"));
    h.command(Command::Shutdown).await.unwrap();
}
