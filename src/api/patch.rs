//! Partial updates: absent fields stay as they are, `null` clears a nullable
//! field and is refused for a required one.

use poem_openapi::types::MaybeUndefined;
use serde::{Deserialize, Deserializer};

use crate::domain::patch::Patch;

/// serde `deserialize_with` for a PATCH field that may be absent but not
/// `null`: with `#[serde(default)]`, absence is `None` and `null` fails with
/// the field's name.
pub fn required<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A required PATCH field as a change.
pub fn change<T, U: From<T>>(value: Option<T>) -> Patch<U> {
    match value {
        None => Patch::Keep,
        Some(value) => Patch::Set(value.into()),
    }
}

/// A nullable PATCH field as a change: absent keeps, `null` clears.
pub fn nullable_change<T>(value: MaybeUndefined<T>) -> Patch<Option<T>> {
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Set(None),
        MaybeUndefined::Value(value) => Patch::Set(Some(value)),
    }
}
