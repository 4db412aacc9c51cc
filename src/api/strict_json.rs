//! JSON request text read strictly, so the server accepts exactly what the
//! document describes:
//!
//! - [`parse`]: a duplicate object key is refused, naming it (`serde_json`
//!   keeps the last one, so `{"score": 3, "score": 11}` would pass as 11
//!   while a proxy or a log shows 3);
//! - [`refuse_nulls`]: `null` is refused for every property the document does
//!   not mark `nullable`, read from the same schema the document is built
//!   from, so the two cannot disagree.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, Mutex, OnceLock},
};

use poem_openapi::{
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorCode};

/// Parses JSON text into a value. A syntax error is 400 `malformed_json`;
/// a duplicate object key is 422 `validation_failed` naming the key (with
/// its path when it is nested, as `[2].score`).
pub fn parse(bytes: &[u8]) -> Result<Value, ApiError> {
    // Most bodies are fine: read them without tracking paths, and read a
    // refused one again to name where its duplicate is.
    match serde_json::from_slice::<StrictValue>(bytes) {
        Ok(StrictValue(value)) => return Ok(value),
        Err(err) if !err.is_data() => return Err(malformed(err)),
        Err(_) => {}
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, StrictValue>(&mut deserializer) {
        Ok(StrictValue(value)) => value,
        Err(err) if err.inner().is_data() => {
            // The only data error the visitor raises is a duplicate key.
            let message = err.inner().to_string();
            let key = message
                .strip_prefix(DUPLICATE_KEY)
                .and_then(|rest| rest.split('`').nth(1))
                .unwrap_or_default()
                .to_owned();
            let parent = err.path().to_string();
            let field = if parent == "." {
                key
            } else {
                format!("{parent}.{key}")
            };
            return Err(ApiError::validation(
                field,
                "appears more than once in the object",
            ));
        }
        Err(err) => return Err(malformed(err.into_inner())),
    };
    deserializer.end().map_err(malformed)?;
    Ok(value)
}

fn malformed(err: serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::MalformedJson,
        format!("request body is not valid JSON: {err}"),
        None,
    )
}

const DUPLICATE_KEY: &str = "duplicate key";

/// A `serde_json::Value` whose objects refuse a key given twice.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // JSON text has no NaN or infinity, so this is always a number.
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY} `{key}`")));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Refuses `null` for a property of `T`'s object schema that the document
/// does not mark `nullable` (an optional field may be absent, not `null`).
pub fn refuse_nulls<T: Type>(value: &Value) -> Result<(), ApiError> {
    let Value::Object(object) = value else {
        return Ok(());
    };
    let not_nullable = not_nullable_properties::<T>();
    match object
        .iter()
        .find(|(key, value)| value.is_null() && not_nullable.contains(key.as_str()))
    {
        Some((key, _)) => Err(ApiError::validation(
            key.as_str(),
            "must not be null; leave the field out instead",
        )),
        None => Ok(()),
    }
}

/// The properties of `T`'s schema that are not `nullable`, computed once per
/// type (by its schema name, unique in the document) from the registry the
/// document is built from.
pub(super) fn not_nullable_properties<T: Type>() -> Arc<HashSet<String>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<HashSet<String>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    let name = T::name();
    if let Some(properties) = cache.get(name.as_ref()) {
        return properties.clone();
    }
    cache
        .entry(name.into_owned())
        .or_insert_with(|| {
            let mut registry = Registry::new();
            T::register(&mut registry);
            let schema = match T::schema_ref() {
                MetaSchemaRef::Reference(name) => registry.schemas.get(&name).cloned(),
                MetaSchemaRef::Inline(schema) => Some(*schema),
            };
            let properties = schema.map(|s| s.properties).unwrap_or_default();
            Arc::new(
                properties
                    .into_iter()
                    .filter(|(_, property)| !is_nullable(property))
                    .map(|(name, _)| name.to_owned())
                    .collect(),
            )
        })
        .clone()
}

fn is_nullable(schema: &MetaSchemaRef) -> bool {
    match schema {
        MetaSchemaRef::Inline(schema) => {
            schema.nullable || schema.any_of.iter().chain(&schema.one_of).any(is_nullable)
        }
        MetaSchemaRef::Reference(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(result: Result<Value, ApiError>) -> (u16, Option<String>) {
        match result.unwrap_err() {
            ApiError::Unprocessable(body) => (422, body.0.error.field.0),
            ApiError::BadRequest(body) => (400, body.0.error.field.0),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_by_name() {
        assert_eq!(
            field(parse(br#"{"score": 3, "score": 11}"#)),
            (422, Some("score".into()))
        );
        assert_eq!(
            field(parse(br#"[{"a": 1}, {"a": 1, "b": {"c": 1, "c": 2}}]"#)),
            (422, Some("[1].b.c".into()))
        );
        // Escapes spelling the same key are the same key.
        assert_eq!(
            field(parse(br#"{"score": 3, "sc\u006fre": 4}"#)),
            (422, Some("score".into()))
        );
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let text =
            br#"{"a": [1, -2, 3.5, true, null, "x"], "b": {"c": {}}, "big": 18446744073709551615}"#;
        let strict = parse(text).unwrap();
        let lenient: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(strict, lenient);
        // The same key in different objects is no duplicate.
        assert!(parse(br#"[{"a": 1}, {"a": 2}]"#).is_ok());
    }

    #[test]
    fn syntax_errors_stay_bad_requests() {
        assert_eq!(field(parse(b"{")).0, 400);
        assert_eq!(field(parse(br#"{"a": 1} trailing"#)).0, 400);
        assert_eq!(field(parse(b"")).0, 400);
    }
}
