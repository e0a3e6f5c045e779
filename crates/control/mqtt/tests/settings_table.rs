//! MQTT accepts and refuses settings exactly as the shared table says (`twc_testkit::settings`):
//! the surface only parses, the engine's one validator decides. Every case goes through the
//! `settings` topic, and the schedule cases through the `schedule` topic too.

use serde_json::Value;
use twc_control_mqtt::{Action, parse};
use twc_core::engine::{Command, EngineHandle};
use twc_testkit::settings::{check_outcome, engine_for_cases, settings_cases};

async fn send(h: &EngineHandle, name: &str, payload: &str) -> Result<(), String> {
    let current = h.status().settings;
    let cmd = match parse(name, payload, &current, false)? {
        Action::Command(c) => c,
        Action::Settings(_, patch) => Command::PatchSettings(patch),
    };
    h.command(cmd).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn mqtt_follows_the_shared_settings_table() {
    let eng = engine_for_cases().await;
    let h = &eng.handle;
    let mut wrong = Vec::new();
    for case in settings_cases() {
        let got = send(h, "settings", &case.patch.to_string()).await;
        if let Err(e) = check_outcome(&case, got) {
            wrong.push(format!("settings: {e}"));
        }
        h.command(Command::ReplaceSettings(Box::default()))
            .await
            .unwrap();
        if let Value::Object(m) = &case.patch
            && m.len() == 1
            && let Some(schedule) = m.get("schedule")
        {
            let got = send(h, "schedule", &schedule.to_string()).await;
            if let Err(e) = check_outcome(&case, got) {
                wrong.push(format!("schedule: {e}"));
            }
            h.command(Command::ReplaceSettings(Box::default()))
                .await
                .unwrap();
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    h.command(Command::Shutdown).await.unwrap();
}
