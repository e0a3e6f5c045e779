//! One validator for runtime settings: the shared table (`twc_testkit::settings`) holds for
//! `Settings::validate`, and for the engine's whole-settings patch and replace, which apply it.

use twc_core::engine::{Command, patch_settings};
use twc_core::model::Settings;
use twc_testkit::settings::{case_limits, check_outcome, engine_for_cases, settings_cases};

#[test]
fn settings_validate_follows_the_table() {
    let mut wrong = Vec::new();
    for case in settings_cases() {
        let got = patch_settings(&Settings::default(), case.patch.clone())
            .map_err(|e| e.to_string())
            .and_then(|s| s.validate(&case_limits()).map_err(|e| e.to_string()));
        if let Err(e) = check_outcome(&case, got) {
            wrong.push(e);
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn the_engine_applies_it_to_every_patch_and_replace() {
    let eng = engine_for_cases().await;
    let h = &eng.handle;
    let mut wrong = Vec::new();
    for case in settings_cases() {
        let got = h
            .command(Command::PatchSettings(case.patch.clone()))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Err(e) = check_outcome(&case, got) {
            wrong.push(format!("patch: {e}"));
        }
        h.command(Command::ReplaceSettings(Box::default()))
            .await
            .unwrap();
        let whole = patch_settings(&Settings::default(), case.patch.clone()).unwrap();
        let got = h
            .command(Command::ReplaceSettings(Box::new(whole)))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Err(e) = check_outcome(&case, got) {
            wrong.push(format!("replace: {e}"));
        }
        // A refused change leaves the settings as they were.
        if case.refused.is_some() {
            assert_eq!(h.status().settings, Settings::default(), "{}", case.name);
        }
        h.command(Command::ReplaceSettings(Box::default()))
            .await
            .unwrap();
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    h.command(Command::Shutdown).await.unwrap();
}
