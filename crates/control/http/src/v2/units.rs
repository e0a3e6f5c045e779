//! Values with a unit (`A` or `W`) whose bound depends on the unit: their schemas are written
//! out, one alternative per unit.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A grid-import limit. Its schema is written out (see [`value_per_unit`]) because the bound on
/// `value` depends on `unit`.
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct GridLimitView {
    /// Value in `unit`, ≥ 0: at most 1000 A or 1000000 W, and never above the configuration's
    /// `[grid]` limit in the same unit.
    pub(super) value: f64,
    /// `A` (per phase) or `W` (total).
    pub(super) unit: UnitView,
}

impl utoipa::PartialSchema for GridLimitView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        value_per_unit(
            "A grid-import limit: `value` ≥ 0 in `unit`, `A` (per phase, at most 1000) or `W` \
             (total, at most 1000000), and never above the configuration's `[grid]` limit in the \
             same unit.",
            (
                twc_core::model::bounds::MAX_GRID_IMPORT_A,
                twc_core::model::bounds::MAX_GRID_IMPORT_W,
            ),
            false,
        )
    }
}

impl ToSchema for GridLimitView {}

/// `{"value": number, "unit": "A" | "W"}` with one alternative per unit, since the bound on
/// `value` depends on the unit: `0 ..= max`, or with `signed` within `±max` and not 0.
pub(super) fn value_per_unit(
    description: &str,
    (max_a, max_w): (f64, f64),
    signed: bool,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{
        AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type,
    };
    let number = || ObjectBuilder::new().schema_type(Type::Number);
    let alt = |unit: &str, max: f64| -> Schema {
        let value: Schema = if signed {
            OneOfBuilder::new()
                .item(number().exclusive_minimum(Some(0.0)).maximum(Some(max)))
                .item(number().minimum(Some(-max)).exclusive_maximum(Some(0.0)))
                .into()
        } else {
            number().minimum(Some(0.0)).maximum(Some(max)).into()
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("value", value)
            .property(
                "unit",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([unit])),
            )
            .required("value")
            .required("unit")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    };
    OneOfBuilder::new()
        .description(Some(description))
        .item(alt("A", max_a))
        .item(alt("W", max_w))
        .into()
}

/// `A` or `W`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitView {
    /// Amps.
    A,
    /// Watts.
    W,
}
