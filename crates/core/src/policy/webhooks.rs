//! Policy-change webhooks: which to call when the active policy changes.

use super::Webhook;

/// The webhooks to call when the active policy changes from `prev` (`None` = none yet) to `next`:
/// first every `exit` hook of `prev`, then every `enter` hook of `next`, each with its event name.
/// Nothing when the policy did not change. Pure: the `status.webhook` plugin makes the calls.
pub fn webhooks_for_change(
    hooks: &[Webhook],
    prev: Option<&str>,
    next: &str,
) -> Vec<(Webhook, String)> {
    let mut out = Vec::new();
    if prev == Some(next) {
        return out;
    }
    for w in hooks {
        if w.event == "exit" && prev.is_some_and(|p| w.policy == "*" || w.policy == p) {
            out.push((w.clone(), "exit".to_string()));
        }
    }
    for w in hooks {
        if w.event == "enter" && (w.policy == "*" || w.policy == next) {
            out.push((w.clone(), "enter".to_string()));
        }
    }
    out
}
