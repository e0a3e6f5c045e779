//! `GET /policy`: the active policy, why it matched, and the ordered list.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use twc_core::model::Status;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policy))
}

/// The active policy and the budget it produced.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyView {
    /// Name (TWCManager's names).
    name: String,
    /// Why it matched.
    reason: String,
    /// True when following green energy.
    is_green: bool,
    /// Amps the whole site may give the cars now, after every limit.
    budget_amps: f64,
    /// Amps the policy asked for before limits.
    policy_amps: Option<f64>,
    /// Which limit bound the budget (`wiring`, `grid`, `stale`), if any.
    limited_by: Option<String>,
    /// What sets the budget now: `wiring`, `grid`, `stale` (no fresh reading: safe current),
    /// `surplus` (green tracking follows the surplus) or `policy` (the policy's own amps).
    binding: String,
    /// TWCManager's action code: 1 fixed rate, 2 don't charge, 3 green.
    action: Option<u8>,
}

/// Which limit binds the budget: the engine's `limited_by` when a limit cut it, else what the
/// policy followed (the surplus, or missing data for a green policy).
pub(crate) fn binding(s: &Status) -> String {
    match &s.policy.limited_by {
        Some(limit) => limit.clone(),
        None if s.policy.is_green && s.policy.surplus_w.is_none() => "stale".into(),
        None if s.policy.is_green => "surplus".into(),
        None => "policy".into(),
    }
}

/// TWCManager's action code: 1 fixed rate, 2 don't charge, 3 green; `None` before the first
/// evaluation.
pub(crate) fn policy_action(s: &Status) -> Option<u8> {
    if s.policy.name.is_empty() {
        None
    } else if s.policy.is_green {
        Some(3)
    } else if s.policy.policy_amps.unwrap_or(0.0) > 0.0 {
        Some(1)
    } else {
        Some(2)
    }
}

pub(super) fn policy_view(s: &Status) -> PolicyView {
    PolicyView {
        name: s.policy.name.clone(),
        reason: s.policy.reason.clone(),
        is_green: s.policy.is_green,
        budget_amps: s.policy.budget.amps(),
        policy_amps: s.policy.policy_amps,
        limited_by: s.policy.limited_by.clone(),
        binding: binding(s),
        action: policy_action(s),
    }
}

/// A rule of the policy list.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyRule {
    /// Name.
    name: String,
    /// True when it is the one active now.
    active: bool,
}

/// The active policy and the list it was chosen from.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyDoc {
    /// What is active and why.
    active: PolicyView,
    /// The engine's ordered list (custom policies included); the first that matches wins.
    rules: Vec<PolicyRule>,
}

/// The active policy, why it matched, and the ordered list.
#[utoipa::path(get, path = "/policy", tag = "policy", responses((status = 200, body = PolicyDoc)))]
async fn get_policy(State(st): State<AppState>) -> Json<PolicyDoc> {
    let s = st.engine.status();
    let rules = s
        .policy
        .rules
        .iter()
        .map(|n| PolicyRule {
            name: n.clone(),
            active: *n == s.policy.name,
        })
        .collect();
    Json(PolicyDoc {
        active: policy_view(&s),
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::binding;
    use twc_core::model::Status;

    fn status(limited_by: Option<&str>, is_green: bool, surplus_w: Option<f64>) -> Status {
        let mut s = Status::default();
        s.policy.limited_by = limited_by.map(str::to_string);
        s.policy.is_green = is_green;
        s.policy.surplus_w = surplus_w;
        s
    }

    #[test]
    fn the_binding_limit_is_the_engines_cut_else_what_the_policy_followed() {
        assert_eq!(binding(&status(Some("wiring"), false, None)), "wiring");
        assert_eq!(binding(&status(Some("grid"), true, Some(900.0))), "grid");
        assert_eq!(binding(&status(Some("stale"), false, None)), "stale");
        // Green tracking without a fresh reading gives 0 A: the stale meter binds, not the sun.
        assert_eq!(binding(&status(None, true, None)), "stale");
        assert_eq!(binding(&status(None, true, Some(1200.0))), "surplus");
        assert_eq!(binding(&status(None, false, None)), "policy");
    }
}
