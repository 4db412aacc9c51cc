//! Bulk request items read straight from JSON text into their type, without
//! the `serde_json::Value` tree [`strict_json`] builds first: that tree (a
//! map and a string for every key and value, then freed) was about a fifth
//! of the service's CPU in a bulk import on PostgreSQL (`perf`).
//!
//! Reading this way answers only when it is sure the `Value` route would
//! give the same items, and `None` otherwise (any error, whatever its
//! cause): the caller then reads the body the `Value` way, which names what
//! is wrong. So the one reading that reports errors stays the only one, and
//! this one only has to be at least as strict. It is:
//!
//! - a non-object is refused: the value is read as a map, never as a
//!   sequence (a derived struct would take an array, fields by position);
//! - `null` is refused for every property the document does not mark
//!   `nullable`, from the same set [`strict_json::refuse_nulls`] reads;
//! - a key given twice is refused: a derived struct refuses a field twice,
//!   and a [`FlatObject`] has nothing else that could hold one.

use std::{borrow::Cow, collections::HashSet, fmt, marker::PhantomData};

use poem_openapi::types::Type;
use serde::de::{
    self, value::MapAccessDeserializer, DeserializeOwned, DeserializeSeed, Deserializer,
    IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::strict_json;

/// A JSON object type whose properties are all scalars (strings, numbers,
/// booleans, enums and `Option`s of them) and which refuses unknown fields:
/// no property can hold an object, so no duplicate key can hide below the
/// top level. `tests::flat_objects_are_flat` checks each implementation
/// against its schema.
pub trait FlatObject: Type + DeserializeOwned {}

/// Reads one JSON object into `T`; `None` unless the `Value` route
/// ([`strict_json::parse`], then `refuse_nulls` and `T`'s `Deserialize`)
/// would read the same.
pub fn read<T: FlatObject>(bytes: &[u8]) -> Option<T> {
    let not_nullable = strict_json::not_nullable_properties::<T>();
    read_whole(bytes, ObjectSeed::<T>::new(&not_nullable))
}

/// Reads a JSON array of 1 to `max` objects into `T`s; `None` unless the
/// `Value` route would read every one of them the same.
pub fn read_items<T: FlatObject>(bytes: &[u8], max: usize) -> Option<Vec<T>> {
    let not_nullable = strict_json::not_nullable_properties::<T>();
    let item = ObjectSeed::<T>::new(&not_nullable);
    read_whole(bytes, ItemsSeed { item, max }).filter(|items| !items.is_empty())
}

/// What `seed` reads from the whole of `bytes`, trailing text refused.
fn read_whole<'de, S: DeserializeSeed<'de>>(bytes: &'de [u8], seed: S) -> Option<S::Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = seed.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// Why this reading gave up; never shown, the `Value` route says why.
const GIVE_UP: &str = "read through a value instead";

/// Reads a JSON object into `T`, refusing `null` for `not_nullable` keys.
struct ObjectSeed<'a, T> {
    not_nullable: &'a HashSet<String>,
    item: PhantomData<fn() -> T>,
}

impl<'a, T> ObjectSeed<'a, T> {
    fn new(not_nullable: &'a HashSet<String>) -> Self {
        ObjectSeed {
            not_nullable,
            item: PhantomData,
        }
    }
}

impl<T> Clone for ObjectSeed<'_, T> {
    fn clone(&self) -> Self {
        ObjectSeed::new(self.not_nullable)
    }
}

impl<'de, T: FlatObject> DeserializeSeed<'de> for ObjectSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        // As a map only: a JSON array is an error here, not a struct.
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: FlatObject> Visitor<'de> for ObjectSeed<'_, T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(NullRefusingMap {
            map,
            not_nullable: self.not_nullable,
            nullable: false,
        }))
    }
}

/// Reads a JSON array of at most `max` items with `item`.
struct ItemsSeed<'a, T> {
    item: ObjectSeed<'a, T>,
    max: usize,
}

impl<'de, T: FlatObject> DeserializeSeed<'de> for ItemsSeed<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: FlatObject> Visitor<'de> for ItemsSeed<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
        while let Some(item) = seq.next_element_seed(self.item.clone())? {
            if items.len() == self.max {
                return Err(de::Error::custom(GIVE_UP));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// An object's entries, with `null` refused where the key is not nullable.
struct NullRefusingMap<'a, A> {
    map: A,
    not_nullable: &'a HashSet<String>,
    /// Whether the key read last may be `null`.
    nullable: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for NullRefusingMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(Key(key)) = self.map.next_key::<Key<'de>>()? else {
            return Ok(None);
        };
        self.nullable = !self.not_nullable.contains(key.as_ref());
        seed.deserialize(key.as_ref().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(NullChecked {
            seed,
            nullable: self.nullable,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// An object key, borrowed from the text unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(key)))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(key.to_owned())))
    }
}

/// A value read with `seed`, unless it is a `null` that is not allowed.
struct NullChecked<V> {
    seed: V,
    nullable: bool,
}

impl<'de, V: DeserializeSeed<'de>> DeserializeSeed<'de> for NullChecked<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        // serde_json answers `visit_none` for `null` and `visit_some` with
        // itself, unread, for anything else.
        deserializer.deserialize_option(self)
    }
}

impl<'de, V: DeserializeSeed<'de>> Visitor<'de> for NullChecked<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        if !self.nullable {
            return Err(E::custom(GIVE_UP));
        }
        // The field reads `null` as it would from a `Value::Null`.
        self.seed.deserialize(().into_deserializer())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.seed.deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::{
        registry::{MetaSchemaRef, Registry},
        types::{Example, ToJSON},
    };

    use super::*;
    use crate::api::{
        encounter_imports::ImportEncounter, payload::parse_json, surveys::CreateSurveyInvitation,
    };

    /// Every property is a scalar or an enum of strings, and an unknown
    /// field is refused: what [`FlatObject`] promises.
    fn assert_flat<T: FlatObject + Example + ToJSON>() {
        let mut registry = Registry::new();
        T::register(&mut registry);
        let MetaSchemaRef::Reference(name) = T::schema_ref() else {
            panic!("{} is not a named object", T::name());
        };
        let schema = &registry.schemas[&name];
        assert!(!schema.properties.is_empty());
        for (property, schema) in &schema.properties {
            assert!(
                is_scalar(&registry, schema),
                "{}.{property} is not a scalar: {schema:?}",
                T::name()
            );
        }
        let mut example = T::example().to_json().expect("an example");
        example["no_such_field"] = 1.into();
        assert!(serde_json::from_value::<T>(example).is_err());
    }

    /// A scalar, an enum of strings, or a schema wrapping only those (a
    /// reference with its own description is wrapped in `allOf`).
    fn is_scalar(registry: &Registry, schema: &MetaSchemaRef) -> bool {
        match schema {
            MetaSchemaRef::Inline(schema) => {
                let wrapped: Vec<_> = schema
                    .all_of
                    .iter()
                    .chain(&schema.any_of)
                    .chain(&schema.one_of)
                    .collect();
                if wrapped.is_empty() {
                    return matches!(schema.ty, "string" | "integer" | "number" | "boolean");
                }
                // Beside the type, poem adds a schema that only describes.
                let describes = |inner: &MetaSchemaRef| {
                    matches!(inner, MetaSchemaRef::Inline(inner)
                        if inner.ty.is_empty() && inner.properties.is_empty()
                            && inner.items.is_none() && inner.all_of.is_empty()
                            && inner.any_of.is_empty() && inner.one_of.is_empty())
                };
                wrapped.iter().any(|inner| is_scalar(registry, inner))
                    && wrapped
                        .iter()
                        .all(|inner| describes(inner) || is_scalar(registry, inner))
            }
            MetaSchemaRef::Reference(name) => {
                let target = &registry.schemas[name];
                target.ty == "string" && !target.enum_items.is_empty()
            }
        }
    }

    #[test]
    fn flat_objects_are_flat() {
        assert_flat::<ImportEncounter>();
        assert_flat::<CreateSurveyInvitation>();
    }

    /// What reading `text` through a value gives, as text to compare.
    fn through_value(text: &str) -> Option<String> {
        parse_json::<ImportEncounter>(text.as_bytes())
            .ok()
            .map(|item| format!("{item:?}"))
    }

    #[test]
    fn an_object_reads_as_through_a_value_or_not_at_all() {
        let read_directly = [
            r#"{"candidate_external_ref": "A-1", "touchpoint_name": "Careers site", "occurred_at": "2026-10-28T18:30:00Z"}"#,
            r#"{"candidate_id": 7, "touchpoint_id": 3, "occurred_at": "2026-10-28T18:30:00.123456+02:00", "source": "review_import", "score": 0, "note": "tab\t \"quoted\" \\ é 😀"}"#,
            // Nullable properties may be null, as absent.
            r#"{"candidate_id": null, "candidate_external_ref": "A-1", "touchpoint_id": null, "touchpoint_name": "x", "occurred_at": "2026-10-28T18:30:00Z", "score": null, "note": null}"#,
            // Escapes in keys and values.
            r#"{"sc\u006fre": 10, "candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "note": "\u00e9\n"}"#,
            " {\"candidate_id\": 1, \"touchpoint_id\": 1, \"occurred_at\": \"2026-10-28T18:30:00Z\"} \n",
        ];
        for text in read_directly {
            let direct = read::<ImportEncounter>(text.as_bytes())
                .unwrap_or_else(|| panic!("not read directly: {text}"));
            assert_eq!(Some(format!("{direct:?}")), through_value(text), "{text}");
        }
        let left_to_the_value = [
            // `source` is not nullable; `occurred_at` is required.
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "source": null}"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": null}"#,
            // A key twice, also spelled with an escape.
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "score": 3, "score": 11}"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "score": 3, "sc\u006fre": 4}"#,
            // Not an object: a derived struct would read the array by position.
            r#"[1, null, 1, null, "2026-10-28T18:30:00Z", "review_import", 3, null]"#,
            r#""text""#,
            // Unknown field, wrong enum, wrong types, bad time, trailing text.
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "extra": 1}"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "source": 3}"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "score": 5.0}"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "score": 3000000000}"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28"}"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z"} x"#,
            r#"{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z""#,
            "",
        ];
        for text in left_to_the_value {
            assert!(
                read::<ImportEncounter>(text.as_bytes()).is_none(),
                "read directly: {text}"
            );
        }
    }

    #[test]
    fn items_read_as_through_a_value_or_not_at_all() {
        let item = |n: usize| {
            format!(
                r#"{{"candidate_external_ref": "A-{n}", "touchpoint_id": 2, "occurred_at": "2026-10-28T18:30:00Z", "score": {}}}"#,
                n % 11
            )
        };
        let text = format!("[{}, {}, {}]", item(1), item(2), item(3));
        let items = read_items::<ImportEncounter>(text.as_bytes(), 3).expect("read directly");
        let expected: Vec<_> = (1..=3)
            .map(|n| through_value(&item(n)).expect("a valid item"))
            .collect();
        let direct: Vec<_> = items.iter().map(|item| format!("{item:?}")).collect();
        assert_eq!(direct, expected);
        // More than the limit, none, not an array, or one item the value
        // would refuse: left to the value.
        assert!(read_items::<ImportEncounter>(text.as_bytes(), 2).is_none());
        assert!(read_items::<ImportEncounter>(b"[]", 3).is_none());
        assert!(read_items::<ImportEncounter>(item(1).as_bytes(), 3).is_none());
        let one_bad = format!(
            r#"[{}, {{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-10-28T18:30:00Z", "source": null}}]"#,
            item(1)
        );
        assert!(read_items::<ImportEncounter>(one_bad.as_bytes(), 3).is_none());
        let nested_array = format!("[[{}]]", item(1));
        assert!(read_items::<ImportEncounter>(nested_array.as_bytes(), 3).is_none());
    }
}
